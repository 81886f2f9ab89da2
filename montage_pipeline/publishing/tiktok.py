"""TikTok: Content Posting API v2 with FILE_UPLOAD, through requests-oauthlib.

The default sends the video to the creator's inbox as a draft (the route TikTok allows an unaudited
app; the creator finishes the post in the app); `direct` posts publicly within the privacy levels the
creator allows. `creator_info/query` runs first: its maximum duration and privacy options decide
whether and how we may post. The publish_id and upload URL are saved before any bytes go out; a retry
asks the status endpoint how many bytes arrived and continues from that chunk. Each chunk and each
status poll renews the outbox lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

import requests
from requests_oauthlib import OAuth2Session

from montage_pipeline.platform.models import PostState
from montage_pipeline.publishing.content import PostContent
from montage_pipeline.publishing.credentials import ConnectionTokens, NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.outbox import PostProgress

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DONE = {"SEND_TO_USER_INBOX", "PUBLISH_COMPLETE"}


def chunk_plan(
    size: int, preferred: int, min_chunk: int = 5 * MIB, max_chunk: int = 64 * MIB
) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) by TikTok's media transfer rules.

    Under the minimum the file goes whole; otherwise chunks of `preferred` bytes (clamped to the allowed
    range), the last one taking the remainder, at most 1000 chunks.
    """
    if size < min_chunk:
        return size, 1
    chunk = min(max(preferred, min_chunk), max_chunk, size)
    while size // chunk > 1000:
        chunk = min(chunk * 2, max_chunk)
    return chunk, size // chunk


def chunk_ranges(size: int, chunk: int, count: int) -> list[tuple[int, int]]:
    return [(i * chunk, (size if i == count - 1 else (i + 1) * chunk) - 1) for i in range(count)]


class TikTokClient:
    def __init__(
        self,
        api_url: str,
        client_key: str,
        client_secret: str,
        mode: Literal["inbox", "direct"] = "inbox",
        privacy_level: str = "SELF_ONLY",
        chunk_bytes: int = 10 * MIB,
        min_chunk_bytes: int = 5 * MIB,
        poll_interval_s: float = 2.0,
        max_polls: int = 60,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._client_key = client_key
        self._client_secret = client_secret
        self.mode = mode
        self.privacy_level = privacy_level
        self.chunk_bytes = chunk_bytes
        self.min_chunk_bytes = min_chunk_bytes
        self.poll_interval_s = poll_interval_s
        self.max_polls = max_polls
        self._sleep = sleep

    def secrets(self) -> list[str]:
        return [self._client_secret]

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens:
        """TikTok's refresh grant; it returns a *new* refresh token, which the caller stores at once."""
        if not refresh_token:
            raise PermanentPostError("reconnect", "tiktok connection has no refresh token")
        # Explicit form body: requests-oauthlib's auto refresh would send client_id, TikTok wants client_key.
        resp = requests.post(
            f"{self.api_url}/v2/oauth/token/",
            data={
                "client_key": self._client_key,
                "client_secret": self._client_secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            },
            timeout=30,
        )
        if resp.status_code in (400, 401):
            raise PermanentPostError("reconnect", f"tiktok refused the refresh ({resp.json().get('error')})")
        if resp.status_code != 200:
            raise _transient(resp)
        body = resp.json()
        return NewTokens(body["access_token"], int(body["expires_in"]), body.get("refresh_token"))

    def _api(self, token: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        session = OAuth2Session(self._client_key, token={"access_token": token, "token_type": "Bearer"})
        resp = session.post(
            f"{self.api_url}{path}",
            json=payload,
            headers={"Content-Type": "application/json; charset=UTF-8"},
            timeout=60,
        )
        body: dict[str, Any] = resp.json() if resp.content else {}
        code = (body.get("error") or {}).get("code", "ok")
        if resp.status_code == 401 or code in {"access_token_invalid", "scope_not_authorized"}:
            if code == "scope_not_authorized":
                raise PermanentPostError(code, "the creator did not grant video upload")
            raise TokenExpiredError(f"tiktok: {code}")
        if (
            resp.status_code == 429
            or resp.status_code >= 500
            or code in {"rate_limit_exceeded", "internal_error"}
        ):
            raise _transient(resp, code)
        if resp.status_code != 200 or code != "ok":
            raise PermanentPostError(
                str(code), (body.get("error") or {}).get("message") or str(resp.status_code)
            )
        data: dict[str, Any] = body.get("data") or {}
        return data

    def publish(
        self, content: PostContent, progress: PostProgress, tokens: ConnectionTokens, account: str
    ) -> None:
        token = tokens.get()
        post = progress.post
        video = content.portrait_unbranded
        size = video.stat().st_size
        if post.remote_id is None:
            creator = self._api(token, "/v2/post/publish/creator_info/query/", {})
            max_s = creator.get("max_video_post_duration_sec")
            if max_s and content.portrait_duration_s > float(max_s):
                raise PermanentPostError(
                    "too_long", f"{content.portrait_duration_s:.0f}s is over the creator's {max_s}s limit"
                )
            chunk, count = chunk_plan(size, self.chunk_bytes, self.min_chunk_bytes)
            source = {
                "source": "FILE_UPLOAD",
                "video_size": size,
                "chunk_size": chunk,
                "total_chunk_count": count,
            }
            if self.mode == "direct":
                options = creator.get("privacy_level_options") or []
                if self.privacy_level not in options:
                    raise PermanentPostError("privacy_level", f"{self.privacy_level} is not one of {options}")
                payload: dict[str, Any] = {
                    "post_info": {
                        "title": content.caption_for("tiktok"),
                        "privacy_level": self.privacy_level,
                        "disable_comment": bool(creator.get("comment_disabled")),
                        "disable_duet": bool(creator.get("duet_disabled")),
                        "disable_stitch": bool(creator.get("stitch_disabled")),
                    },
                    "source_info": source,
                }
                init = self._api(token, "/v2/post/publish/video/init/", payload)
            else:
                init = self._api(token, "/v2/post/publish/inbox/video/init/", {"source_info": source})
            # Saved before a single byte is sent: a retry continues this upload, never starts another.
            progress.save(
                remote_id=init["publish_id"],
                remote_handle=init["upload_url"],
                state=PostState.UPLOADING,
                progress={"chunk_size": chunk, "chunk_count": count, "mode": self.mode},
            )
        status = self._api(token, "/v2/post/publish/status/fetch/", {"publish_id": post.remote_id})
        if status.get("status") == "FAILED":
            raise PermanentPostError("failed", f"tiktok: {status.get('fail_reason') or 'processing failed'}")
        received = int(status.get("uploaded_bytes") or 0)
        if status.get("status") not in DONE and received < size:
            self._upload(video, size, received, progress)
        self._await(token, progress)

    def _upload(self, video: Any, size: int, received: int, progress: PostProgress) -> None:
        post = progress.post
        chunk, count = int(post.progress["chunk_size"]), int(post.progress["chunk_count"])
        assert post.remote_handle is not None
        with open(video, "rb") as fh:
            for first, last in chunk_ranges(size, chunk, count):
                if last < received:
                    continue  # TikTok has this chunk
                fh.seek(first)
                data = fh.read(last - first + 1)
                resp = requests.put(
                    post.remote_handle,
                    data=data,
                    headers={
                        "Content-Type": "video/mp4",
                        "Content-Length": str(len(data)),
                        "Content-Range": f"bytes {first}-{last}/{size}",
                    },
                    timeout=300,
                )
                if resp.status_code not in (201, 206):
                    if resp.status_code in (404, 410):
                        raise PermanentPostError("upload_expired", "tiktok upload URL expired (1 hour)")
                    raise _transient(resp)
                progress.save(progress={"uploaded_bytes": last + 1})

    def _await(self, token: str, progress: PostProgress) -> None:
        post = progress.post
        progress.save(state=PostState.PROCESSING)
        for _ in range(self.max_polls):
            status = self._api(token, "/v2/post/publish/status/fetch/", {"publish_id": post.remote_id})
            state = status.get("status")
            if state in DONE:
                ids = status.get("publicaly_available_post_id") or []  # sic: TikTok's spelling
                url = f"https://www.tiktok.com/video/{ids[0]}" if ids else None
                progress.save(state=PostState.PUBLISHED, url=url, progress={"tiktok_status": state})
                return
            if state == "FAILED":
                raise PermanentPostError(
                    "failed", f"tiktok: {status.get('fail_reason') or 'processing failed'}"
                )
            self._sleep(self.poll_interval_s)
            progress.heartbeat()  # polling can outlast a lease: keep it
        raise TransientPostError("tiktok is still processing the video")


def _transient(resp: requests.Response, code: str | None = None) -> TransientPostError:
    retry = resp.headers.get("Retry-After")
    wait = float(retry) if retry and retry.isdigit() else None
    return TransientPostError(f"tiktok {resp.status_code} {code or ''}".strip(), wait)
