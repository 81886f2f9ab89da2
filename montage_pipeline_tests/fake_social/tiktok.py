"""A local TikTok Content Posting API v2: rotating refresh tokens, creator_info, FILE_UPLOAD chunks, status.

The chunk layout rules of TikTok's media transfer guide are enforced at init and on every chunk,
because a client that gets them wrong fails only against the real service otherwise. The refresh
token rotates on every use, as TikTok's does: a client that loses the new one loses the account.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Unpack

from montage_pipeline_tests.fake_social.base import BadRequest, FakeServer, Request, Response, ServerOptions

MIB = 1024 * 1024
MAX_CHUNKS = 1000
MAX_QUERY_IDS = 20
OAUTH_PATH = "/v2/oauth/token/"
UPLOAD = "/upload/"
SCOPE = "user.info.basic,video.upload,video.publish"
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")

# kind -> (HTTP status, error code, message)
ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_token": (
        401,
        "access_token_invalid",
        "The access token is invalid or not found in the request.",
    ),
    "expired_token": (401, "access_token_invalid", "The access token has expired."),
    "rate_limit": (429, "rate_limit_exceeded", "The API rate limit was exceeded."),
    "server": (500, "internal_error", "Something went wrong. Please try again later."),
    "bad_request": (400, "invalid_params", "The request parameters are invalid."),
    "not_found": (404, "not_found", "Not found."),
    "range": (416, "invalid_params", "The Content-Range does not match the upload."),
    "invalid_publish_id": (400, "invalid_publish_id", "The publish_id does not exist."),
}


@dataclass
class _Publish:
    account: str
    mode: str  # "inbox" or "direct"
    size: int
    chunk: int
    count: int
    post_info: dict[str, Any]
    data: bytearray = field(default_factory=bytearray)
    outcome: str | None = None  # the final status once every byte is in
    fail_reason: str = ""
    post_id: int | None = None
    polls_after_upload: int = 0

    def chunk_range(self, index: int) -> tuple[int, int]:
        last = self.size - 1 if index == self.count - 1 else (index + 1) * self.chunk - 1
        return index * self.chunk, last


class TikTokFake(FakeServer):
    """`publishes` by publish_id; `uploads` maps an upload URL's upload_id to its publish_id."""

    def __init__(
        self,
        *,
        max_video_post_duration_sec: int = 600,
        privacy_level_options: tuple[str, ...] = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"),
        min_chunk_bytes: int = 5 * MIB,
        max_chunk_bytes: int = 64 * MIB,
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(**options)
        self.max_video_post_duration_sec = max_video_post_duration_sec
        self.privacy_level_options = list(privacy_level_options)
        self.min_chunk_bytes = min_chunk_bytes
        self.max_chunk_bytes = max_chunk_bytes
        self.publishes: dict[str, _Publish] = {}
        self.uploads: dict[str, str] = {}

    def api_error(self, kind: str, message: str | None = None, status: int | None = None) -> Response:
        default_status, code, default_message = ERRORS[kind]
        error = {"code": code, "message": message or default_message, "log_id": _log_id()}
        return Response.json(status or default_status, {"data": {}, "error": error})

    def _ok(self, data: dict[str, Any]) -> Response:
        return Response.json(200, {"data": data, "error": {"code": "ok", "message": "", "log_id": _log_id()}})

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("POST", OAUTH_PATH):
            return self._token(request.params())
        if route == ("PUT", UPLOAD):
            return self._upload(request)  # the upload URL is the credential
        account = self.authenticate(request)
        if route == ("POST", "/v2/post/publish/creator_info/query/"):
            return self._ok(self._creator_info(account))
        if route == ("POST", "/v2/post/publish/inbox/video/init/"):
            return self._init(request.json(), account, "inbox")
        if route == ("POST", "/v2/post/publish/video/init/"):
            return self._init(request.json(), account, "direct")
        if route == ("POST", "/v2/post/publish/status/fetch/"):
            return self._status(request.json(), account)
        if route == ("POST", "/v2/video/query/"):
            return self._query(request, account)
        return self.api_error("not_found", f"No route for {request.method} {request.path}")

    def _token(self, form: dict[str, str]) -> Response:
        """The refresh grant; the refresh token is spent and a new one issued (rotation)."""
        if form.get("client_key") != self.client_id or form.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "Client key or secret is incorrect.")
        if form.get("grant_type") != "refresh_token":
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be refresh_token.")
        account = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if account is None:
            return _oauth_error(400, "invalid_grant", "Refresh token is invalid or expired.")
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens[refresh] = account
        return Response.json(
            200,
            {
                "access_token": self.mint_access_token(account),
                "expires_in": 86400,
                "open_id": account,
                "refresh_expires_in": 31536000,
                "refresh_token": refresh,
                "scope": SCOPE,
                "token_type": "Bearer",
            },
        )

    def _creator_info(self, account: str) -> dict[str, Any]:
        return {
            "creator_avatar_url": f"https://p16-sign.tiktokcdn.com/{account}.jpeg",
            "creator_username": account,
            "creator_nickname": account.title(),
            "privacy_level_options": self.privacy_level_options,
            "comment_disabled": False,
            "duet_disabled": False,
            "stitch_disabled": True,
            "max_video_post_duration_sec": self.max_video_post_duration_sec,
        }

    def _init(self, payload: dict[str, Any], account: str, mode: str) -> Response:
        source = payload.get("source_info")
        if not isinstance(source, dict) or source.get("source") != "FILE_UPLOAD":
            raise BadRequest("source_info.source must be FILE_UPLOAD")
        size, chunk, count = (_int(source, key) for key in ("video_size", "chunk_size", "total_chunk_count"))
        problem = self._chunk_problem(size, chunk, count)
        if problem:
            raise BadRequest(problem)
        post_info: dict[str, Any] = {}
        if mode == "direct":
            post_info = payload.get("post_info") or {}
            if (
                not isinstance(post_info, dict)
                or post_info.get("privacy_level") not in self.privacy_level_options
            ):
                raise BadRequest(f"post_info.privacy_level must be one of {self.privacy_level_options}")
        prefix = "v_inbox_file~v2." if mode == "inbox" else "v_pub_file~v2."
        publish_id, upload_id = prefix + str(secrets.randbelow(10**19)), secrets.token_urlsafe(24)
        self.publishes[publish_id] = _Publish(account, mode, size, chunk, count, post_info)
        self.uploads[upload_id] = publish_id
        return self._ok({"publish_id": publish_id, "upload_url": f"{self.url}{UPLOAD}?upload_id={upload_id}"})

    def _chunk_problem(self, size: int, chunk: int, count: int) -> str | None:
        """What breaks TikTok's chunk rules, or None."""
        low, high = self.min_chunk_bytes, self.max_chunk_bytes
        if size <= 0:
            return "video_size must be positive"
        if size < low:
            if (chunk, count) != (size, 1):
                return f"a video under {low} bytes goes whole: chunk_size = video_size, total_chunk_count = 1"
            return None
        if not low <= chunk <= high:
            return f"chunk_size must be within {low}..{high} bytes"
        if chunk > size:
            return "chunk_size must not exceed video_size"
        if count != size // chunk:
            return f"total_chunk_count must be video_size // chunk_size = {size // chunk}"
        if count > MAX_CHUNKS:
            return f"at most {MAX_CHUNKS} chunks"
        return None

    def _upload(self, request: Request) -> Response:
        publish_id = self.uploads.get(request.query.get("upload_id", ""))
        if publish_id is None:
            return self.api_error("not_found", "The upload_url does not exist or has expired.")
        pub = self.publishes[publish_id]
        content_type = request.headers.get("content-type", "").partition(";")[0].strip()
        if content_type not in VIDEO_TYPES:
            raise BadRequest(f"Content-Type must be one of {sorted(VIDEO_TYPES)}")
        match = CONTENT_RANGE.fullmatch(request.headers.get("content-range", "").strip())
        if match is None:
            raise BadRequest("Content-Range must be 'bytes first-last/total'")
        first, last, total = (int(g) for g in match.groups())
        if total != pub.size:
            raise BadRequest(f"the total in Content-Range is {total}; video_size was {pub.size}")
        if len(request.body) != last - first + 1:
            raise BadRequest(
                f"Content-Range {first}-{last} does not match a body of {len(request.body)} bytes"
            )
        index = min(first // pub.chunk, pub.count - 1)
        if (first, last) != pub.chunk_range(index):
            expected = "-".join(map(str, pub.chunk_range(index)))
            return self.api_error(
                "range", f"bytes {first}-{last} are not a chunk of the layout (expected {expected})"
            )
        received = len(pub.data)
        if last < received:  # a chunk sent again: accepted, nothing counted twice
            return Response(206 if pub.outcome is None else 201)
        if first != received:
            return self.api_error("range", f"expected the chunk starting at byte {received}")
        pub.data += request.body
        if len(pub.data) < pub.size:
            return Response(206)
        self._complete(publish_id, pub)
        return Response(201)

    def _complete(self, publish_id: str, pub: _Publish) -> None:
        """Every byte is in: the post exists (once), unless the file is not a video TikTok reads."""
        if not _looks_like_video(pub.data):
            pub.outcome, pub.fail_reason = "FAILED", "file_format_check_failed"
            return
        pub.outcome = "SEND_TO_USER_INBOX" if pub.mode == "inbox" else "PUBLISH_COMPLETE"
        pub.post_id = 7 * 10**18 + secrets.randbelow(10**18)
        self.audience.publish(str(pub.post_id))
        self.posts.append(
            {
                "account_id": pub.account,
                "id": publish_id,
                "bytes": len(pub.data),
                "sha256": hashlib.sha256(pub.data).hexdigest(),
                "metadata": {"mode": pub.mode, "post_info": pub.post_info},
            }
        )

    def _query(self, request: Request, account: str) -> Response:
        """Display API video query: the caller's own public videos among `filters.video_ids` (max 20)."""
        fields = [f for f in request.query.get("fields", "").split(",") if f]
        if not fields:
            raise BadRequest("fields is required")
        ids = (request.json().get("filters") or {}).get("video_ids")
        if not isinstance(ids, list) or not ids or len(ids) > MAX_QUERY_IDS:
            raise BadRequest(f"filters.video_ids must list 1..{MAX_QUERY_IDS} ids")
        mine = {str(p.post_id) for p in self.publishes.values() if p.account == account and p.post_id}
        videos = []
        for vid in (str(i) for i in ids):
            if vid in mine:
                views, likes, comments = self.audience.counts(vid)
                full = {"id": vid, "view_count": views, "like_count": likes, "comment_count": comments}
                videos.append({k: v for k, v in full.items() if k in fields})
        return self._ok({"videos": videos, "cursor": 0, "has_more": False})

    def _status(self, payload: dict[str, Any], account: str) -> Response:
        pub = self.publishes.get(str(payload.get("publish_id")))
        if pub is None or pub.account != account:
            return self.api_error("invalid_publish_id")
        status, post_ids = "PROCESSING_UPLOAD", list[int]()
        if pub.outcome is not None:
            if pub.polls_after_upload < self.processing_polls:
                pub.polls_after_upload += 1
            else:
                status = pub.outcome
                post_ids = [pub.post_id] if pub.post_id is not None and status == "PUBLISH_COMPLETE" else []
        return self._ok(
            {
                "status": status,
                "fail_reason": pub.fail_reason if status == "FAILED" else "",
                "publicaly_available_post_id": post_ids,  # sic: TikTok's spelling
                "uploaded_bytes": len(pub.data),
            }
        )


def _int(source: dict[str, Any], key: str) -> int:
    value = source.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"source_info.{key} must be an integer")
    return value


def _looks_like_video(data: bytes | bytearray) -> bool:
    """MP4/MOV (an `ftyp` box first) or WebM (EBML magic)."""
    return data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"


def _oauth_error(status: int, error: str, description: str) -> Response:
    return Response.json(status, {"error": error, "error_description": description, "log_id": _log_id()})


def _log_id() -> str:
    return secrets.token_hex(16).upper()
