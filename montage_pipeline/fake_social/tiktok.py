"""A local TikTok Content Posting API: rotating refresh tokens, creator_info, FILE_UPLOAD chunks, status."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from montage_pipeline.fake_social.base import FakeServer, Request, Response

MIB = 1024 * 1024


@dataclass
class _Publish:
    account: str
    mode: str
    size: int
    chunk: int
    count: int
    post_info: dict[str, Any]
    upload_id: str
    data: bytearray = field(default_factory=bytearray)
    complete: bool = False
    polls_after_complete: int = 0
    post_id: int | None = None


class TikTokFake(FakeServer):
    def __init__(
        self,
        max_video_post_duration_sec: int = 600,
        privacy_level_options: tuple[str, ...] = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"),
        min_chunk_bytes: int = 5 * MIB,
        max_chunk_bytes: int = 64 * MIB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_video_post_duration_sec = max_video_post_duration_sec
        self.privacy_level_options = list(privacy_level_options)
        self.min_chunk_bytes = min_chunk_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.publishes: dict[str, _Publish] = {}
        self.uploads: dict[str, str] = {}  # upload_id -> publish_id

    def error(self, status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
        code = {
            "token": "access_token_invalid",
            "rate": "rate_limit_exceeded",
            "server": "internal_error",
        }.get(kind, kind)
        body = {"data": {}, "error": {"code": code, "message": message, "log_id": secrets.token_hex(8)}}
        return Response.json(status, body, {"Retry-After": str(retry_after)} if retry_after else None)

    def _ok(self, data: dict[str, Any]) -> Response:
        return Response.json(
            200, {"data": data, "error": {"code": "ok", "message": "", "log_id": secrets.token_hex(8)}}
        )

    def handle(self, request: Request) -> Response:
        if request.path == "/v2/oauth/token/" and request.method == "POST":
            return self._token(request.form())
        if request.path == "/upload/" and request.method == "PUT":
            return self._upload(request)
        account = self.account_for(request.bearer())
        if account is None:
            return self.error(401, "token", "The access token is invalid or not found in the request.")
        if request.path == "/v2/post/publish/creator_info/query/":
            return self._ok(
                {
                    "creator_avatar_url": f"{self.url}/avatar/{account}.jpg",
                    "creator_username": account,
                    "creator_nickname": account.title(),
                    "privacy_level_options": self.privacy_level_options,
                    "comment_disabled": False,
                    "duet_disabled": False,
                    "stitch_disabled": True,
                    "max_video_post_duration_sec": self.max_video_post_duration_sec,
                }
            )
        if request.path == "/v2/post/publish/inbox/video/init/":
            return self._init(request.json(), account, "inbox")
        if request.path == "/v2/post/publish/video/init/":
            return self._init(request.json(), account, "direct")
        if request.path == "/v2/post/publish/status/fetch/":
            return self._status(request.json(), account)
        return self.error(404, "not_found", f"no route {request.method} {request.path}")

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("client_key") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response.json(
                401, {"error": "invalid_client", "error_description": "client_key or secret wrong"}
            )
        with self.lock:
            account = self.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation: used once
            if form.get("grant_type") != "refresh_token" or account is None:
                return Response.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "refresh_token is invalid",
                        "log_id": "x",
                    },
                )
            access, refresh = self.new_access_token(account), secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = account
        return Response.json(
            200,
            {
                "access_token": access,
                "expires_in": 86400,
                "open_id": account,
                "refresh_expires_in": 31536000,
                "refresh_token": refresh,
                "scope": "user.info.basic,video.upload,video.publish",
                "token_type": "Bearer",
            },
        )

    def _init(self, payload: dict[str, Any], account: str, mode: str) -> Response:
        source = payload.get("source_info") or {}
        if source.get("source") != "FILE_UPLOAD":
            return self.error(400, "invalid_params", "source must be FILE_UPLOAD")
        size, chunk, count = (
            int(source.get(k) or 0) for k in ("video_size", "chunk_size", "total_chunk_count")
        )
        problem = self._chunk_problem(size, chunk, count)
        if problem:
            return self.error(400, "invalid_params", problem)
        post_info = payload.get("post_info") or {}
        if mode == "direct" and post_info.get("privacy_level") not in self.privacy_level_options:
            return self.error(400, "invalid_params", "privacy_level is not one of the creator's options")
        prefix = "v_inbox_file~v2." if mode == "inbox" else "v_pub_file~v2."
        publish_id, upload_id = prefix + secrets.token_hex(8), secrets.token_urlsafe(12)
        with self.lock:
            self.publishes[publish_id] = _Publish(account, mode, size, chunk, count, post_info, upload_id)
            self.uploads[upload_id] = publish_id
        return self._ok({"publish_id": publish_id, "upload_url": f"{self.url}/upload/?upload_id={upload_id}"})

    def _chunk_problem(self, size: int, chunk: int, count: int) -> str | None:
        if size <= 0:
            return "video_size must be positive"
        if size < self.min_chunk_bytes:
            return (
                None if (chunk, count) == (size, 1) else "a video under the minimum goes whole in one chunk"
            )
        if not self.min_chunk_bytes <= chunk <= self.max_chunk_bytes:
            return f"chunk_size must be within {self.min_chunk_bytes}..{self.max_chunk_bytes} bytes"
        if count != size // chunk:
            return f"total_chunk_count must be video_size // chunk_size = {size // chunk}"
        if count > 1000:
            return "at most 1000 chunks"
        if size - (count - 1) * chunk > 2 * self.max_chunk_bytes:
            return "the last chunk is too large"
        return None

    def _upload(self, request: Request) -> Response:
        with self.lock:
            publish_id = self.uploads.get(request.query.get("upload_id", ""))
            if publish_id is None:
                return self.error(404, "not_found", "upload_url not found or expired")
            pub = self.publishes[publish_id]
            span, _, total = request.headers.get("content-range", "").removeprefix("bytes ").partition("/")
            first_s, _, last_s = span.partition("-")
            try:
                first, last, size = int(first_s), int(last_s), int(total)
            except ValueError:
                return self.error(400, "invalid_params", "Content-Range must be bytes first-last/total")
            index = first // pub.chunk if pub.chunk else 0
            expected_last = pub.size - 1 if index == pub.count - 1 else (index + 1) * pub.chunk - 1
            if (
                size != pub.size
                or first != index * pub.chunk
                or last != expected_last
                or len(request.body) != last - first + 1
            ):
                return self.error(400, "invalid_params", "chunk does not follow the declared chunk layout")
            if first < len(pub.data):  # a chunk already received, sent again: accept, change nothing
                return Response(201 if pub.complete else 206)
            if first != len(pub.data):
                return self.error(416, "invalid_params", f"expected the chunk at {len(pub.data)}")
            pub.data += request.body
            if len(pub.data) < pub.size:
                return Response(206)
            pub.complete = True
            pub.post_id = secrets.randbelow(10**18)
            self.posts.append(
                {
                    "account_id": pub.account,
                    "id": publish_id,
                    "bytes": len(pub.data),
                    "sha256": hashlib.sha256(pub.data).hexdigest(),
                    "metadata": {"mode": pub.mode, "post_info": pub.post_info},
                }
            )
            return Response(201)

    def _status(self, payload: dict[str, Any], account: str) -> Response:
        with self.lock:
            pub = self.publishes.get(str(payload.get("publish_id")))
            if pub is None or pub.account != account:
                return self.error(400, "invalid_publish_id", "publish_id not found")
            status = "PROCESSING_UPLOAD"
            ids: list[int] = []
            if pub.complete:
                if pub.polls_after_complete < self.processing_polls:
                    pub.polls_after_complete += 1
                elif pub.mode == "inbox":
                    status = "SEND_TO_USER_INBOX"
                else:
                    status, ids = "PUBLISH_COMPLETE", [pub.post_id or 0]
            return self._ok(
                {
                    "status": status,
                    "fail_reason": "",
                    "publicaly_available_post_id": ids,
                    "uploaded_bytes": len(pub.data),
                }
            )
