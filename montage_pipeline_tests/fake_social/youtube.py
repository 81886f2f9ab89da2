"""A local YouTube Data API v3: Google's refresh grant, resumable `videos.insert` with 308s, thumbnails.

Only the resumable protocol is served, because it is the one whose failure modes matter: a session
URL that outlives a dropped chunk, `Content-Range: bytes */total` status queries, and a final chunk
whose answer is lost while the video exists. A session creates its video exactly once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Unpack

from montage_pipeline_tests.fake_social.base import (
    COMMON_FAULTS,
    BadRequest,
    FakeServer,
    Request,
    Response,
    ServerOptions,
)

UPLOAD = "/upload/youtube/v3/videos"
THUMBNAILS = "/upload/youtube/v3/thumbnails/set"
SCOPE = "https://www.googleapis.com/auth/youtube.upload"
PRIVACY = ("public", "unlisted", "private")
MAX_TITLE = 100
MAX_LIST_IDS = 50
MAX_DESCRIPTION_BYTES = 5000
VIDEO_ID_CHARS = string.ascii_letters + string.digits + "-_"
CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")

# kind -> (HTTP status, reason, domain, message)
ERRORS: dict[str, tuple[int, str, str, str]] = {
    "invalid_token": (401, "authError", "global", "Request had invalid authentication credentials."),
    "expired_token": (401, "authError", "global", "Request had invalid authentication credentials."),
    "rate_limit": (429, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"),
    "server": (503, "backendError", "global", "Backend Error"),
    "bad_request": (400, "badRequest", "global", "Bad Request"),
    "not_found": (404, "notFound", "global", "Not Found"),
    "video_not_found": (404, "videoNotFound", "youtube.thumbnail", "The video could not be found."),
    "forbidden": (403, "forbidden", "youtube.video", "The request is not properly authorized."),
    "invalid_metadata": (400, "invalidVideoMetadata", "youtube.video", "The request metadata is invalid."),
    "quota": (
        403,
        "quotaExceeded",
        "youtube.quota",
        "The request cannot be completed because you have exceeded your quota.",
    ),
    "upload_limit": (
        400,
        "uploadLimitExceeded",
        "youtube.video",
        "The user has exceeded the number of videos they may upload.",
    ),
}


@dataclass
class _Session:
    account: str
    metadata: dict[str, Any]
    total: int | None  # None until the client tells (X-Upload-Content-Length or a Content-Range total)
    data: bytearray = field(default_factory=bytearray)
    video_id: str | None = None


class YouTubeFake(FakeServer):
    """`sessions` by upload_id, `videos` (resources) by video id; `posts` as on `FakeServer`."""

    fault_kinds = COMMON_FAULTS | {"quota", "upload_limit"}

    def __init__(self, **options: Unpack[ServerOptions]) -> None:
        super().__init__(**options)
        self.sessions: dict[str, _Session] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self._status_polls: dict[str, int] = {}

    def expire_session(self, upload_id: str) -> None:
        """The session answers 404 from now on, as Google's do after about a week."""
        with self.lock:
            self.sessions.pop(upload_id, None)

    def api_error(self, kind: str, message: str | None = None, status: int | None = None) -> Response:
        default_status, reason, domain, default_message = ERRORS[kind]
        code, text = status or default_status, message or default_message
        error = {
            "code": code,
            "message": text,
            "errors": [{"reason": reason, "domain": domain, "message": text}],
        }
        return Response.json(code, {"error": error})

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("POST", "/token"):
            return self._token(request.params())
        if route == ("PUT", UPLOAD):
            return self._put(request)  # the session URL is the credential; a bearer is checked if sent
        account = self.authenticate(request)
        if route == ("POST", UPLOAD):
            return self._start(request, account)
        if route == ("POST", THUMBNAILS):
            return self._thumbnail(request, account)
        if route == ("GET", "/youtube/v3/videos"):
            ids = [i for i in request.query.get("id", "").split(",") if i]
            if len(ids) > MAX_LIST_IDS:
                raise BadRequest(f"at most {MAX_LIST_IDS} ids per videos.list call")
            if "statistics" in request.query.get("part", "").split(","):
                items = [self._statistics(i) for i in ids if i in self.videos]  # unknown ids: left out
                return Response.json(200, {"kind": "youtube#videoListResponse", "items": items})
            items = [self._video_for_status_query(i) for i in ids if i in self.videos]
            return Response.json(200, {"kind": "youtube#videoListResponse", "items": items})
        if route == ("GET", "/youtube/v3/channels"):
            channel = {"kind": "youtube#channel", "id": f"UC-{account}"}
            return Response.json(200, {"kind": "youtube#channelListResponse", "items": [channel]})
        return self.api_error("not_found", f"No route for {request.method} {request.path}")

    def _token(self, form: dict[str, str]) -> Response:
        """Google's refresh grant: a new access token; the refresh token stays the same."""
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response.json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if form.get("grant_type") != "refresh_token":
            return Response.json(
                400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
            )
        account = self.refresh_tokens.get(form.get("refresh_token", ""))
        if account is None:
            return Response.json(
                400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            )
        return Response.json(
            200,
            {
                "access_token": self.mint_access_token(account),
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": SCOPE,
            },
        )

    def _start(self, request: Request, account: str) -> Response:
        if request.query.get("uploadType") != "resumable":
            raise BadRequest("this server takes uploadType=resumable only")
        if not request.query.get("part"):
            raise BadRequest("Required parameter: part")
        declared = request.headers.get("x-upload-content-length")
        if declared is not None and not declared.strip().isdigit():
            raise BadRequest("X-Upload-Content-Length must be a byte count")
        media_type = request.headers.get("x-upload-content-type", "video/*")
        if not (media_type.startswith("video/") or media_type == "application/octet-stream"):
            raise BadRequest(f"Media type '{media_type}' is not supported.")
        metadata = request.json()
        problem = _metadata_problem(metadata)
        if problem:
            return self.api_error("invalid_metadata", problem)
        upload_id = secrets.token_urlsafe(24)
        self.sessions[upload_id] = _Session(account, metadata, int(declared) if declared else None)
        location = f"{self.url}{UPLOAD}?uploadType=resumable&upload_id={upload_id}"
        return Response(200, headers={"Location": location})

    def _put(self, request: Request) -> Response:
        session = self.sessions.get(request.query.get("upload_id", ""))
        if session is None:
            return self.api_error("not_found", "The upload session does not exist or has expired.")
        if request.bearer() is not None and self.authenticate(request) != session.account:
            return self.api_error("forbidden")
        if session.video_id is not None:  # finished: any PUT, a status query included, gets the video
            return Response.json(200, self.videos[session.video_id])
        header = request.headers.get("content-range")
        total: int | None
        if header is None:  # single shot: the body is the whole video
            first, last, total = 0, len(request.body) - 1, len(request.body)
        else:
            match = CONTENT_RANGE.fullmatch(header.strip())
            if match is None:
                raise BadRequest(f"Invalid Content-Range: {header}")
            first_s, last_s, total_s = match.groups()
            total = None if total_s == "*" else int(total_s)
            if first_s is None:  # status query: "bytes */total"
                if request.body:
                    raise BadRequest("a status query has no body")
                self._learn_total(session, total)
                return self._progress(session)
            first, last = int(first_s), int(last_s)
        if last < first or len(request.body) != last - first + 1:
            raise BadRequest(
                f"Content-Range {first}-{last} does not match a body of {len(request.body)} bytes"
            )
        self._learn_total(session, total)
        if session.total is not None and last >= session.total:
            raise BadRequest(f"bytes {first}-{last} lie beyond the declared {session.total} bytes")
        received = len(session.data)
        if first > received:
            raise BadRequest(f"the chunk starts at byte {first} but {received} bytes were received")
        session.data += request.body[received - first :]  # an overlap keeps only the new tail
        return self._progress(session)

    def _learn_total(self, session: _Session, total: int | None) -> None:
        if total is None:
            return
        if session.total is not None and total != session.total:
            raise BadRequest(f"the upload is {session.total} bytes, not {total}")
        session.total = total

    def _progress(self, session: _Session) -> Response:
        """308 with the received range while bytes are missing; the video, made once, when all are in."""
        received = len(session.data)
        if session.total is None or received < session.total:
            return Response(308, headers={"Range": f"bytes=0-{received - 1}"} if received else {})
        video_id = "".join(secrets.choice(VIDEO_ID_CHARS) for _ in range(11))
        session.video_id = video_id
        self.audience.publish(video_id)
        self.videos[video_id] = {
            "kind": "youtube#video",
            "id": video_id,
            "snippet": session.metadata.get("snippet"),
            "status": {**(session.metadata.get("status") or {}), "uploadStatus": "uploaded"},
        }
        self.posts.append(
            {
                "account_id": session.account,
                "id": video_id,
                "bytes": received,
                "sha256": hashlib.sha256(session.data).hexdigest(),
                "metadata": session.metadata,
            }
        )
        return Response.json(200, self.videos[video_id])

    def _video_for_status_query(self, video_id: str) -> dict[str, Any]:
        """ "uploaded" for the first `processing_polls` queries, then "processed"."""
        polls = self._status_polls.get(video_id, 0)
        self._status_polls[video_id] = polls + 1
        video = self.videos[video_id]
        if polls >= self.processing_polls:
            video["status"]["uploadStatus"] = "processed"
        return video

    def _statistics(self, video_id: str) -> dict[str, Any]:
        """The video's counts now (strings, as the real API sends them)."""
        views, likes, comments = self.audience.counts(video_id)
        stats = {
            "viewCount": str(views),
            "likeCount": str(likes),
            "favoriteCount": "0",
            "commentCount": str(comments),
        }
        return {"kind": "youtube#video", "id": video_id, "statistics": stats}

    def delete_video(self, video_id: str) -> None:
        """The creator deleted the video: it no longer appears in videos.list."""
        with self.lock:
            self.videos.pop(video_id, None)

    def _thumbnail(self, request: Request, account: str) -> Response:
        video_id = request.query.get("videoId", "")
        post = next((p for p in self.posts if p["id"] == video_id), None)
        if post is None:
            return self.api_error("video_not_found", f"The video {video_id!r} could not be found.")
        if post["account_id"] != account:
            return self.api_error("forbidden", "The thumbnail can't be set for the specified video.")
        if not request.body:
            raise BadRequest("Media upload request has no image")
        post["thumbnail_bytes"] = len(request.body)
        post["thumbnail_sha256"] = hashlib.sha256(request.body).hexdigest()
        default = {"url": f"https://i.ytimg.com/vi/{video_id}/default.jpg", "width": 120, "height": 90}
        return Response.json(200, {"kind": "youtube#thumbnailSetResponse", "items": [{"default": default}]})


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    snippet, status = metadata.get("snippet"), metadata.get("status")
    if not isinstance(snippet, dict) or not isinstance(status, dict):
        return "a video resource needs snippet and status"
    title = snippet.get("title")
    if not isinstance(title, str) or not title.strip():
        return "snippet.title is required"
    if len(title) > MAX_TITLE:
        return f"snippet.title is {len(title)} characters; at most {MAX_TITLE}"
    description = snippet.get("description") or ""
    if not isinstance(description, str):
        return "snippet.description must be a string"
    if len(description.encode()) > MAX_DESCRIPTION_BYTES:
        return f"snippet.description is {len(description.encode())} bytes; at most {MAX_DESCRIPTION_BYTES}"
    if any(ch in text for text in (title, description) for ch in "<>"):
        return "snippet.title and snippet.description may not contain < or >"
    privacy = status.get("privacyStatus")
    if privacy not in PRIVACY:
        return f"status.privacyStatus must be one of {', '.join(PRIVACY)}"
    if status.get("publishAt") and privacy != "private":
        return "status.publishAt needs status.privacyStatus = private"
    return None
