"""YouTube: a resumable `videos.insert` through google-api-python-client, resumed from the stored session URL.

The session is opened by hand (the library's first `next_chunk` would open it *and* send bytes in one
call), its URL saved in the outbox, and only then are chunks sent with `next_chunk()`. Every attempt
starts by asking the session where it is (`Content-Range: bytes */size`): a dropped chunk, a crash or a
lost final response all resume there, and a finished upload answers with the video instead of making
a second one. A session that expired before any byte was sent is replaced; one that expired after
bytes went out may have made a video whose answer was lost, so the post ends FAILED (`needs_admin`)
instead of uploading a second video: an admin checks the channel first. Quota and upload-limit errors
end the post with a clear state: no retry storm. Title, description and tags are fitted to YouTube's
rules on the way out.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import httplib2
import requests
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload, build_http

from montage_pipeline.platform.models import PostState
from montage_pipeline.publishing.content import PostContent, fit_description, fit_tags, fit_title
from montage_pipeline.publishing.credentials import ConnectionTokens, NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.outbox import PostProgress

log = logging.getLogger(__name__)

WATCH_URL = "https://www.youtube.com/watch?v={id}"

PERMANENT_REASONS = {
    "quotaExceeded",
    "dailyLimitExceeded",
    "uploadLimitExceeded",
    "forbidden",
    "invalidVideoMetadata",
    "youtubeSignupRequired",
}
GAMING_CATEGORY = "20"


@cache
def _discovery_document() -> dict[str, Any]:
    """The YouTube Data API v3 discovery document packaged with the library (no network)."""
    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "youtube.v3.json"
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


class _ReplayableUpload(MediaFileUpload):
    """Hands each chunk over as bytes, not as a slice of the open file.

    httplib2 quietly sends a request again when its connection turns out dead (a stale keep-alive, a
    lost answer); a file slice is used up by then and the resend carries no body, so the request
    hangs until the timeout. Bytes go out whole the second time, and YouTube keeps only what is new.
    """

    def has_stream(self) -> bool:
        return False


def _reason(status: int, content: bytes | str) -> str:
    try:
        body = json.loads(content)
        errors = body.get("error", {}).get("errors") or [{}]
        return str(errors[0].get("reason") or body["error"].get("status") or status)
    except (ValueError, AttributeError, KeyError, TypeError):
        return str(status)


def classify(status: int, content: bytes | str, retry_after: str | None = None) -> Exception:
    """The error a platform answer means for us."""
    reason = _reason(status, content)
    if status == 401:
        return TokenExpiredError(f"youtube: {reason}")
    if reason in PERMANENT_REASONS:
        return PermanentPostError(reason, f"youtube refused the upload ({status})")
    if status == 429 or status >= 500 or reason in {"rateLimitExceeded", "backendError"}:
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return TransientPostError(f"youtube {status} {reason}", wait)
    return PermanentPostError(reason, f"youtube answered {status}")


class YouTubeClient:
    def __init__(
        self,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        privacy: str = "unlisted",
        publish_at: str | None = None,
        chunk_bytes: int = 8 * 1024 * 1024,
        timeout_s: float = 120.0,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.privacy = privacy
        self.publish_at = publish_at
        self.chunk_bytes = max(256 * 1024, chunk_bytes // (256 * 1024) * (256 * 1024))  # Google's unit
        self.timeout_s = timeout_s

    def secrets(self) -> list[str]:
        return [self._client_secret]

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens:
        """Google's refresh grant; the refresh token itself does not change."""
        if not refresh_token:
            raise PermanentPostError("reconnect", "youtube connection has no refresh token")
        resp = requests.post(
            self.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            timeout=30,
        )
        if resp.status_code in (400, 401):
            raise PermanentPostError("reconnect", f"google refused the refresh ({resp.json().get('error')})")
        if resp.status_code != 200:
            raise classify(resp.status_code, resp.content, resp.headers.get("Retry-After"))
        body = resp.json()
        return NewTokens(body["access_token"], int(body.get("expires_in", 3600)))

    def _service(self, token: str) -> tuple[Any, AuthorizedHttp]:
        doc = dict(_discovery_document(), rootUrl=self.api_url, mtlsRootUrl=self.api_url)
        # The library's transport treats 308 as "resume incomplete", not a redirect.
        transport = build_http()
        transport.timeout = self.timeout_s
        # Our token source refreshes; the transport must not try (it has no refresh token).
        http = AuthorizedHttp(Credentials(token=token), http=transport, max_refresh_attempts=0)
        return build_from_document(doc, http=http), http

    def _body(self, content: PostContent) -> dict[str, Any]:
        status: dict[str, Any] = {"privacyStatus": self.privacy, "selfDeclaredMadeForKids": False}
        if self.publish_at:
            status = {**status, "privacyStatus": "private", "publishAt": self.publish_at}
        return {
            "snippet": {
                "title": fit_title(content.title),
                "description": fit_description(content.description),
                "tags": list(fit_tags(content.tags)),
                "categoryId": GAMING_CATEGORY,
            },
            "status": status,
        }

    def publish(
        self, content: PostContent, progress: PostProgress, tokens: ConnectionTokens, account: str
    ) -> None:
        """One attempt, resuming from whatever the outbox row says was done; raises PostError types."""
        token = tokens.get()
        try:
            self._attempt(content, progress, token)
        except HttpError as exc:
            raise classify(exc.resp.status, exc.content, exc.resp.get("retry-after")) from None
        except (OSError, httplib2.HttpLib2Error) as exc:
            raise TransientPostError(f"youtube: {type(exc).__name__}") from None

    def _attempt(self, content: PostContent, progress: PostProgress, token: str) -> None:
        youtube, http = self._service(token)
        if progress.post.remote_id is None:
            self._upload(youtube, http, content, progress)
        if content.thumbnail is not None and not progress.post.progress.get("thumbnail"):
            _set_thumbnail(youtube, content.thumbnail, progress)
        progress.save(state=PostState.PUBLISHED)

    def _upload(self, youtube: Any, http: Any, content: PostContent, progress: PostProgress) -> None:
        """The video through one resumable session, resumed wherever a previous attempt stopped."""
        post = progress.post
        media = _ReplayableUpload(
            str(content.landscape), mimetype="video/mp4", chunksize=self.chunk_bytes, resumable=True
        )
        request = youtube.videos().insert(
            part="snippet,status", body=self._body(content), media_body=media, notifySubscribers=False
        )
        size = media.size()
        if post.remote_handle is None:
            _open_session(http, request, size, progress)
        assert post.remote_handle is not None
        request.resumable_uri = post.remote_handle
        video = _resume(http, request, size, progress)
        if video is None and not post.progress.get("bytes_sent"):
            progress.save(progress={"bytes_sent": True})  # from here a video may exist unseen
        while video is None:
            status, video = request.next_chunk()
            if status is not None:
                progress.save(progress={"uploaded_bytes": status.resumable_progress})
        video_id = str(video["id"])
        progress.save(
            remote_id=video_id,
            url=WATCH_URL.format(id=video_id),
            state=PostState.PROCESSING,
            progress={"uploaded_bytes": size},
        )


def _open_session(http: Any, request: Any, size: int, progress: PostProgress) -> None:
    """Start the resumable upload session and save its URL before a single byte of video is sent."""
    headers = {
        **request.headers,
        "X-Upload-Content-Type": "video/mp4",
        "X-Upload-Content-Length": str(size),
        "content-length": str(request.body_size),
    }
    resp, body = http.request(request.uri, method="POST", body=request.body, headers=headers)
    if resp.status != 200 or "location" not in resp:
        raise classify(resp.status, body, resp.get("retry-after"))
    # Saved before a single byte of video is sent: every retry resumes this session.
    progress.save(remote_handle=resp["location"], state=PostState.UPLOADING)


def _resume(http: Any, request: Any, size: int, progress: PostProgress) -> dict[str, Any] | None:
    """Ask the session how far it got: the video if it finished earlier (its answer was lost), else
    None with `request` set to resume from the last byte it holds."""
    post = progress.post
    assert post.remote_handle is not None
    resp, body = http.request(
        post.remote_handle, "PUT", headers={"Content-Range": f"bytes */{size}", "content-length": "0"}
    )
    if resp.status in (200, 201):
        video: dict[str, Any] = json.loads(body)  # finished earlier; its response was lost
        return video
    if resp.status == 308:
        request.resumable_progress = int(resp["range"].split("-")[1]) + 1 if "range" in resp else 0
        return None
    if resp.status in (404, 410):
        if post.progress.get("bytes_sent"):
            # Its last answer may have been lost after the video was made: a new session could
            # post the week twice. Only an admin who has looked at the channel may retry.
            raise PermanentPostError(
                "needs_admin",
                "the youtube upload session expired after video bytes were sent; check the "
                "channel for the video before resetting this post",
            )
        # No byte ever went through this session, so it made no video: start over.
        progress.save(remote_handle=None, state=PostState.CLAIMED)
        raise TransientPostError("youtube upload session expired; a new one starts")
    raise classify(resp.status, body, resp.get("retry-after"))


def _set_thumbnail(youtube: Any, thumbnail: Path, progress: PostProgress) -> None:
    """The custom thumbnail; a channel that may not set one still gets its video."""
    post = progress.post
    try:
        youtube.thumbnails().set(
            videoId=post.remote_id, media_body=MediaFileUpload(str(thumbnail), "image/jpeg")
        ).execute()
        progress.save(progress={"thumbnail": "set"})
    except HttpError as exc:
        error = classify(exc.resp.status, exc.content)
        if not isinstance(error, PermanentPostError):
            raise
        log.warning("thumbnail for %s not set: %s", post.remote_id, error)
        progress.save(progress={"thumbnail": f"refused: {error.code}"})
