"""A local YouTube Data API: Google's OAuth refresh grant, resumable `videos.insert` with 308s, thumbnails."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from montage_pipeline.fake_social.base import FakeServer, Request, Response

UPLOAD = "/upload/youtube/v3/videos"


@dataclass
class _Session:
    account: str
    total: int
    metadata: dict[str, Any]
    data: bytearray = field(default_factory=bytearray)
    video: dict[str, Any] | None = None


class YouTubeFake(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sessions: dict[str, _Session] = {}
        self.videos: dict[str, dict[str, Any]] = {}

    def expire_session(self, upload_id: str) -> None:
        with self.lock:
            self.sessions.pop(upload_id, None)

    def error(self, status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
        reason, domain = {
            "token": ("authError", "global"),
            "rate": ("rateLimitExceeded", "youtube.quota"),
            "server": ("backendError", "global"),
            "quota": ("quotaExceeded", "youtube.quota"),
            "upload_limit": ("uploadLimitExceeded", "youtube.video"),
        }.get(kind, (kind, "global"))
        body = {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"reason": reason, "domain": domain, "message": message}],
            }
        }
        return Response.json(status, body, {"Retry-After": str(retry_after)} if retry_after else None)

    def handle(self, request: Request) -> Response:
        if request.path == "/token" and request.method == "POST":
            return self._token(request.form())
        if request.path == UPLOAD and request.method == "PUT":
            return self._put(request)  # the session URL is the credential; a bearer is checked if sent
        account = self.account_for(request.bearer())
        if account is None:
            return self.error(401, "token", "Request had invalid authentication credentials.")
        if request.path == UPLOAD and request.method == "POST":
            return self._start(request, account)
        if request.path == "/upload/youtube/v3/thumbnails/set" and request.method == "POST":
            return self._thumbnail(request)
        if request.path == "/youtube/v3/videos" and request.method == "GET":
            ids = request.query.get("id", "").split(",")
            return Response.json(200, {"items": [self.videos[i] for i in ids if i in self.videos]})
        if request.path == "/youtube/v3/channels" and request.method == "GET":
            return Response.json(200, {"items": [{"id": f"UC-{account}"}]})
        return self.error(404, "notFound", f"no route {request.method} {request.path}")

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response.json(401, {"error": "invalid_client"})
        with self.lock:
            account = self.refresh_tokens.get(form.get("refresh_token", ""))
            if form.get("grant_type") != "refresh_token" or account is None:
                return Response.json(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            token = self.new_access_token(account)
        scope = "https://www.googleapis.com/auth/youtube.upload"
        return Response.json(
            200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer", "scope": scope}
        )

    def _start(self, request: Request, account: str) -> Response:
        if request.query.get("uploadType") != "resumable":
            return self.error(400, "badRequest", "uploadType must be resumable")
        metadata = request.json()
        snippet, status = metadata.get("snippet") or {}, metadata.get("status") or {}
        title = snippet.get("title") or ""
        privacy = status.get("privacyStatus", "public")
        if (
            not title
            or len(title) > 100
            or privacy not in ("public", "unlisted", "private")
            or (status.get("publishAt") and privacy != "private")
        ):
            return self.error(400, "invalidVideoMetadata", "invalid video metadata")
        upload_id = secrets.token_urlsafe(12)
        with self.lock:
            self.sessions[upload_id] = _Session(
                account, int(request.headers["x-upload-content-length"]), metadata
            )
        location = f"{self.url}{UPLOAD}?uploadType=resumable&upload_id={upload_id}"
        return Response(200, b"", {"Location": location})

    def _range(self, session: _Session) -> dict[str, str]:
        return {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}

    def _put(self, request: Request) -> Response:
        upload_id = request.query.get("upload_id", "")
        with self.lock:
            session = self.sessions.get(upload_id)
            if session is None:
                return self.error(404, "notFound", "upload session not found")
            bearer = request.bearer()
            if bearer is not None and self.account_for(bearer) != session.account:
                return self.error(401, "token", "Request had invalid authentication credentials.")
            if session.video is not None:
                return Response.json(200, session.video)
            content_range = request.headers.get("content-range", "")
            if content_range.startswith("bytes */"):
                return Response(308, b"", self._range(session))
            start = int(content_range.removeprefix("bytes ").partition("-")[0]) if content_range else 0
            received = len(session.data)
            if start > received:
                return self.error(400, "badRequest", f"chunk starts at {start}, {received} bytes received")
            session.data += request.body[received - start :]
            if len(session.data) < session.total:
                return Response(308, b"", self._range(session))
            video_id = secrets.token_urlsafe(8)[:11]
            session.video = {
                "kind": "youtube#video",
                "id": video_id,
                "snippet": session.metadata.get("snippet"),
                "status": {**(session.metadata.get("status") or {}), "uploadStatus": "uploaded"},
            }
            self.videos[video_id] = session.video
            self.posts.append(
                {
                    "account_id": session.account,
                    "id": video_id,
                    "bytes": len(session.data),
                    "sha256": hashlib.sha256(session.data).hexdigest(),
                    "metadata": session.metadata,
                }
            )
            return Response.json(200, session.video)

    def _thumbnail(self, request: Request) -> Response:
        video_id = request.query.get("videoId", "")
        with self.lock:
            post = next((p for p in self.posts if p["id"] == video_id), None)
            if post is None:
                return self.error(404, "videoNotFound", "video not found")
            post["thumbnail_bytes"] = len(request.body)
        return Response.json(
            200,
            {
                "kind": "youtube#thumbnailSetResponse",
                "items": [{"default": {"url": f"{self.url}/vi/{video_id}/default.jpg"}}],
            },
        )
