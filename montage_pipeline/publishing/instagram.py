"""Instagram Reels through the Graph API: a container from a URL Instagram can fetch, polled, then published.

`content_publishing_limit` is read first: a spent daily quota ends the post with a clear state instead
of failing at publish time. The container id is saved before publishing; a retry whose publish answer
was lost finds the container PUBLISHED and reconciles the media id from the account's recent media
(matched by the caption) instead of publishing twice. So does a publish that Instagram refuses because
the container was published already (by an earlier attempt whose answer was lost, or by a worker
that held the post before us): the post is PUBLISHED, not FAILED. Polling renews the outbox lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests

from montage_pipeline.platform.models import PostState
from montage_pipeline.publishing.content import PostContent
from montage_pipeline.publishing.credentials import ConnectionTokens, NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.outbox import PostProgress

log = logging.getLogger(__name__)

LONG_LIVED_S = 60 * 24 * 3600


class InstagramClient:
    def __init__(
        self,
        graph_url: str,
        refresh_url: str,
        api_version: str = "v21.0",
        poll_interval_s: float = 3.0,
        max_polls: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.refresh_url = refresh_url.rstrip("/")
        self.api_version = api_version
        self.poll_interval_s = poll_interval_s
        self.max_polls = max_polls
        self._sleep = sleep

    def secrets(self) -> list[str]:
        return []

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens:
        """Long-lived Instagram tokens refresh themselves (no separate refresh token)."""
        resp = requests.get(
            f"{self.refresh_url}/refresh_access_token",
            params={"grant_type": "ig_refresh_token", "access_token": current},
            timeout=30,
        )
        if resp.status_code == 400:
            raise PermanentPostError("reconnect", "instagram refused to refresh the token (expired)")
        if resp.status_code != 200:
            raise _transient(resp)
        body = resp.json()
        return NewTokens(body["access_token"], int(body.get("expires_in", LONG_LIVED_S)))

    def _call(
        self, method: str, token: str, path: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        resp = requests.request(
            method,
            f"{self.graph_url}/{self.api_version}/{path}",
            params=params if method == "GET" else None,
            data=params if method != "GET" else None,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        body: dict[str, Any] = resp.json() if resp.content else {}
        error = body.get("error") or {}
        code = error.get("code")
        if code == 190:
            raise TokenExpiredError("instagram: access token expired or invalid")
        if resp.status_code == 429 or resp.status_code >= 500 or code in (1, 2, 4, 17, 32, 613):
            return_wait = resp.headers.get("Retry-After")
            raise TransientPostError(
                f"instagram {resp.status_code} code {code}", float(return_wait) if return_wait else None
            )
        if resp.status_code != 200:
            raise PermanentPostError(f"graph_{code}", str(error.get("message") or resp.status_code))
        return body

    def publish(
        self, content: PostContent, progress: PostProgress, tokens: ConnectionTokens, account: str
    ) -> None:
        token = tokens.get()
        post = progress.post
        if post.remote_id is not None:
            progress.save(state=PostState.PUBLISHED)
            return
        if post.remote_handle is not None:
            container = self._call("GET", token, post.remote_handle, {"fields": "status_code,status"})
            code = container.get("status_code")
            if code == "PUBLISHED":  # our publish went through; its answer was lost
                self._reconcile(token, account, content, progress)
                return
            if code in ("ERROR", "EXPIRED"):
                log.warning("container %s is %s; creating a new one", post.remote_handle, code)
                progress.save(remote_handle=None, state=PostState.CLAIMED)
        if post.remote_handle is None:
            self._check_quota(token, account)
            created = self._call(
                "POST",
                token,
                f"{account}/media",
                {
                    "media_type": "REELS",
                    "video_url": content.portrait_url,
                    "caption": content.caption_for("instagram"),
                    "share_to_feed": "true",
                },
            )
            progress.save(remote_handle=str(created["id"]), state=PostState.PROCESSING)
        if self._await_container(token, progress) == "PUBLISHED":
            self._reconcile(token, account, content, progress)
            return
        self._check_quota(token, account)
        try:
            published = self._call(
                "POST", token, f"{account}/media_publish", {"creation_id": post.remote_handle}
            )
        except PermanentPostError as exc:
            # 9007 also means "not ready" or "expired": only a container that is PUBLISHED was ours.
            if exc.code != "graph_9007" or self._container_status(token, progress) != "PUBLISHED":
                raise
            log.warning("container %s was published already; reconciling", post.remote_handle)
            self._reconcile(token, account, content, progress)
            return
        self._finish(token, str(published["id"]), progress)

    def _check_quota(self, token: str, account: str) -> None:
        limit = self._call(
            "GET", token, f"{account}/content_publishing_limit", {"fields": "config,quota_usage"}
        )
        entry = (limit.get("data") or [{}])[0]
        used, total = entry.get("quota_usage", 0), (entry.get("config") or {}).get("quota_total", 50)
        if used >= total:
            raise PermanentPostError("publishing_limit", f"{used}/{total} posts in the last 24 hours")

    def _container_status(self, token: str, progress: PostProgress) -> str | None:
        container = self._call("GET", token, str(progress.post.remote_handle), {"fields": "status_code"})
        code = container.get("status_code")
        return None if code is None else str(code)

    def _await_container(self, token: str, progress: PostProgress) -> str:
        for _ in range(self.max_polls):
            container = self._call(
                "GET", token, str(progress.post.remote_handle), {"fields": "status_code,status"}
            )
            code = container.get("status_code")
            if code in ("FINISHED", "PUBLISHED"):
                return str(code)
            if code in ("ERROR", "EXPIRED"):
                progress.save(remote_handle=None)
                raise PermanentPostError("container_error", str(container.get("status") or code))
            self._sleep(self.poll_interval_s)
            progress.heartbeat()  # up to max_polls × (interval + timeout): longer than a lease
        raise TransientPostError("instagram is still processing the container")

    def _reconcile(self, token: str, account: str, content: PostContent, progress: PostProgress) -> None:
        recent = self._call("GET", token, f"{account}/media", {"fields": "id,caption,timestamp"})
        match = next(
            (m for m in recent.get("data", []) if m.get("caption") == content.caption_for("instagram")), None
        )
        if match is None:
            raise TransientPostError("instagram says published but the media is not listed yet")
        self._finish(token, str(match["id"]), progress)

    def _finish(self, token: str, media_id: str, progress: PostProgress) -> None:
        progress.save(remote_id=media_id, state=PostState.PROCESSING)
        link = self._call("GET", token, media_id, {"fields": "permalink"})
        progress.save(state=PostState.PUBLISHED, url=link.get("permalink"))


def _transient(resp: requests.Response) -> TransientPostError:
    retry = resp.headers.get("Retry-After")
    return TransientPostError(
        f"instagram {resp.status_code}", float(retry) if retry and retry.isdigit() else None
    )
