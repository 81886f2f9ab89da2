"""A local Instagram Graph API for Reels: publishing limit, containers fetched from a URL, publish, media.

Instagram pulls the video from a URL rather than taking bytes, so the fake really fetches it (http,
https or file) in the background and checks it is an MP4: a presigned URL that does not work fails
here as it would there. Publishing is the one step that creates a post; it is refused for a container
that is not FINISHED, so publishing twice cannot happen silently.

Besides the common faults, `publish_race` has another client publish the container just before the
matching request is handled, as a second worker holding the same post would.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Unpack
from urllib.parse import urlsplit

from montage_pipeline_tests.fake_social.base import (
    COMMON_FAULTS,
    BadRequest,
    FakeServer,
    Fault,
    Refused,
    Request,
    Response,
    ServerOptions,
)

DAY_S = 86400
LONG_LIVED_S = 60 * DAY_S
MAX_CAPTION = 2200
INSIGHT_METRICS = {"views", "likes", "comments"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STATUS_TEXT = {
    "IN_PROGRESS": "In Progress",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been successfully published.",
    "EXPIRED": "Expired: Media was not published within 24 hours.",
}

# kind -> (HTTP status, code, error_subcode, message)
ERRORS: dict[str, tuple[int, int, int | None, str]] = {
    "invalid_token": (400, 190, None, "Invalid OAuth access token - Cannot parse access token"),
    "expired_token": (400, 190, 463, "Error validating access token: Session has expired."),
    "rate_limit": (429, 4, None, "Application request limit reached"),
    "server": (503, 2, None, "Service temporarily unavailable"),
    "bad_request": (400, 100, None, "Invalid parameter"),
    "not_found": (400, 100, 33, "Unsupported request: the object does not exist or cannot be loaded."),
    "not_ready": (400, 9007, 2207027, "Media ID is not available: the media is not ready for publishing."),
    "already_published": (400, 9007, None, "The media has already been published."),
    "unusable": (400, 9007, None, "The media cannot be published (its container is in error or expired)."),
    "publish_limit": (400, 9, 2207042, "The account reached the maximum number of posts for 24 hours."),
}


@dataclass
class _Container:
    account: str
    video_url: str
    metadata: dict[str, Any]  # caption, share_to_feed, cover_url, thumb_offset as given
    status_code: str = "IN_PROGRESS"
    status: str = STATUS_TEXT["IN_PROGRESS"]
    fetched: tuple[str, str] | None = None  # (status_code, status) the fetch ended with
    polls: int = 0
    size: int = 0
    sha256: str = ""
    media_id: str | None = None


@dataclass
class _Media:
    account: str
    caption: str
    published_at: float = field(default_factory=time.time)
    permalink: str = field(
        default_factory=lambda: f"https://www.instagram.com/reel/{secrets.token_urlsafe(8)}/"
    )

    @property
    def timestamp(self) -> str:
        return datetime.fromtimestamp(self.published_at, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class InstagramFake(FakeServer):
    """`containers` and `media` by id; `quota_total` may be changed while running."""

    fault_kinds = COMMON_FAULTS | {"publish_race"}

    def __init__(
        self,
        *,
        quota_total: int = 50,
        api_version: str = "v21.0",
        fetch_timeout_s: float = 30.0,
        **options: Unpack[ServerOptions],
    ) -> None:
        super().__init__(**options)
        self.quota_total = quota_total
        self.api_version = api_version
        self.fetch_timeout_s = fetch_timeout_s
        self.containers: dict[str, _Container] = {}
        self.media: dict[str, _Media] = {}

    def expire_container(self, container_id: str) -> None:
        """The container cannot be published any more, as after Instagram's 24 hours."""
        with self.lock:
            container = self.containers[container_id]
            container.status_code, container.status = "EXPIRED", STATUS_TEXT["EXPIRED"]

    def quota_usage(self, account_id: str) -> int:
        """Posts published by the account in the last 24 hours."""
        with self.lock:
            since = time.time() - DAY_S
            return sum(1 for m in self.media.values() if m.account == account_id and m.published_at > since)

    def _respond(self, request: Request, fault: Fault | None) -> Response | None:
        if fault is not None and fault.kind == "publish_race":
            with contextlib.suppress(Refused, BadRequest):  # the request itself reports what is wrong
                self._publish(request.params().get("creation_id", ""), self.authenticate(request))
            return self._handle(request)
        return super()._respond(request, fault)

    def request_token(self, request: Request) -> str | None:
        return request.bearer() or request.params().get("access_token")

    def api_error(self, kind: str, message: str | None = None, status: int | None = None) -> Response:
        default_status, code, subcode, default_message = ERRORS[kind]
        error: dict[str, Any] = {
            "message": message or default_message,
            "type": "OAuthException",
            "code": code,
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        error["fbtrace_id"] = secrets.token_urlsafe(16)
        return Response.json(status or default_status, {"error": error})

    def handle(self, request: Request) -> Response:
        params = request.params()
        prefix = f"/{self.api_version}/"
        if request.method == "GET" and request.path in (
            "/refresh_access_token",
            f"{prefix}refresh_access_token",
        ):
            return self._refresh(request, params)
        account = self.authenticate(request)
        if not request.path.startswith(prefix):
            return self.api_error("not_found", f"Unknown path {request.path}")
        node, _, edge = request.path.removeprefix(prefix).strip("/").partition("/")
        route = (request.method, edge)
        if route == ("GET", "insights"):
            return self._insights(node, account, params)
        if edge and node != account:
            return self.api_error("not_found", f"Object with ID '{node}' does not exist or cannot be loaded.")
        if route == ("GET", "content_publishing_limit"):
            config = {"quota_total": self.quota_total, "quota_duration": DAY_S}
            return Response.json(
                200, {"data": [{"quota_usage": self.quota_usage(account), "config": config}]}
            )
        if route == ("POST", "media"):
            return self._create(params, account)
        if route == ("GET", "media"):
            return Response.json(200, {"data": self._recent_media(account)})
        if route == ("POST", "media_publish"):
            return self._publish(params.get("creation_id", ""), account)
        if route == ("GET", ""):
            return self._node(node, account)
        return self.api_error("not_found", f"Unsupported {request.method} request to {request.path}")

    def _refresh(self, request: Request, params: dict[str, str]) -> Response:
        """A live long-lived token buys a new one; the old one stays valid. Expired ones cannot."""
        account = self.authenticate(request)
        if params.get("grant_type") != "ig_refresh_token":
            raise BadRequest("grant_type must be ig_refresh_token")
        token = self.mint_access_token(account)
        return Response.json(200, {"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_S})

    def _create(self, params: dict[str, str], account: str) -> Response:
        if params.get("media_type") != "REELS":
            raise BadRequest("media_type must be REELS")
        if not params.get("video_url"):
            raise BadRequest("video_url is required")
        caption = params.get("caption", "")
        if len(caption) > MAX_CAPTION:
            raise BadRequest(f"caption is over {MAX_CAPTION} characters")
        share = params.get("share_to_feed", "true").lower()
        if share not in ("true", "false"):
            raise BadRequest("share_to_feed must be true or false")
        metadata: dict[str, Any] = {"caption": caption, "share_to_feed": share == "true"}
        if params.get("cover_url"):
            metadata["cover_url"] = params["cover_url"]
        if params.get("thumb_offset"):
            if not params["thumb_offset"].isdigit():
                raise BadRequest("thumb_offset must be milliseconds")
            metadata["thumb_offset"] = int(params["thumb_offset"])
        container_id = _graph_id()
        container = _Container(account, params["video_url"], metadata)
        self.containers[container_id] = container
        threading.Thread(target=self._fetch, args=(container,), name="instagram-fetch", daemon=True).start()
        return Response.json(200, {"id": container_id})

    def _fetch(self, container: _Container) -> None:
        try:
            data = _download(container.video_url, self.fetch_timeout_s)
        except (OSError, ValueError):  # urllib's errors are OSErrors; ValueError: not a URL it can open
            data, outcome = b"", ("ERROR", "ERROR: could not fetch video")
        else:
            outcome = (
                ("FINISHED", STATUS_TEXT["FINISHED"])
                if data[4:8] == b"ftyp"
                else ("ERROR", "ERROR: not an MP4")
            )
        with self.lock:
            container.size, container.sha256 = len(data), hashlib.sha256(data).hexdigest()
            container.fetched = outcome

    def _settle(self, container: _Container, poll: bool) -> None:
        """IN_PROGRESS for the first `processing_polls` status queries, then the fetch's outcome."""
        if container.status_code != "IN_PROGRESS":
            return
        if container.fetched is not None and container.polls >= self.processing_polls:
            container.status_code, container.status = container.fetched
        elif poll:
            container.polls += 1

    def _node(self, node: str, account: str) -> Response:
        container = self.containers.get(node)
        if container is not None and container.account == account:
            self._settle(container, poll=True)
            return Response.json(
                200, {"id": node, "status_code": container.status_code, "status": container.status}
            )
        media = self.media.get(node)
        if media is not None and media.account == account:
            return Response.json(200, {"id": node, "permalink": media.permalink})
        return self.api_error("not_found", f"Object with ID '{node}' does not exist or cannot be loaded.")

    def _insights(self, media_id: str, account: str, params: dict[str, str]) -> Response:
        """Media insights: one entry per requested metric, lifetime values."""
        media = self.media.get(media_id)
        if media is None or media.account != account:
            return self.api_error(
                "not_found", f"Object with ID '{media_id}' does not exist or cannot be loaded."
            )
        metrics = [m for m in params.get("metric", "").split(",") if m]
        if not metrics or any(m not in INSIGHT_METRICS for m in metrics):
            raise BadRequest(f"metric must be a list of {sorted(INSIGHT_METRICS)}")
        counts = dict(zip(("views", "likes", "comments"), self.audience.counts(media_id), strict=True))
        data = [
            {
                "name": m,
                "period": "lifetime",
                "values": [{"value": counts[m]}],
                "title": m.title(),
                "description": f"The number of {m} on the media.",
                "id": f"{media_id}/insights/{m}/lifetime",
            }
            for m in metrics
        ]
        return Response.json(200, {"data": data})

    def delete_media(self, media_id: str) -> None:
        """The creator deleted the reel: its insights answer "does not exist" from now on."""
        with self.lock:
            self.media.pop(media_id, None)

    def _publish(self, creation_id: str, account: str) -> Response:
        if not creation_id:
            raise BadRequest("creation_id is required")
        container = self.containers.get(creation_id)
        if container is None or container.account != account:
            return self.api_error("not_found", f"Object with ID '{creation_id}' does not exist.")
        self._settle(container, poll=False)
        refusal = {"IN_PROGRESS": "not_ready", "PUBLISHED": "already_published"}.get(container.status_code)
        if refusal is None and container.status_code != "FINISHED":
            refusal = "unusable"
        if refusal is not None:
            return self.api_error(refusal)
        if self.quota_usage(account) >= self.quota_total:
            return self.api_error("publish_limit")
        media_id = _graph_id()
        self.media[media_id] = _Media(account, container.metadata["caption"])
        self.audience.publish(media_id)
        container.status_code, container.status = "PUBLISHED", STATUS_TEXT["PUBLISHED"]
        container.media_id = media_id
        self.posts.append(
            {
                "account_id": account,
                "id": media_id,
                "bytes": container.size,
                "sha256": container.sha256,
                "metadata": container.metadata,
            }
        )
        return Response.json(200, {"id": media_id})

    def _recent_media(self, account: str) -> list[dict[str, Any]]:
        """Newest first, so a client can find a publish whose answer it lost."""
        mine = [(media_id, m) for media_id, m in reversed(self.media.items()) if m.account == account]
        return [{"id": media_id, "caption": m.caption, "timestamp": m.timestamp} for media_id, m in mine]


def _download(url: str, timeout_s: float) -> bytes:
    """The bytes at an http(s) or file URL; loopback URLs bypass any proxy set in the environment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "file"):
        raise ValueError(f"cannot fetch a {parts.scheme!r} URL")
    handlers = [urllib.request.ProxyHandler({})] if parts.hostname in LOOPBACK else []
    with urllib.request.build_opener(*handlers).open(url, timeout=timeout_s) as resp:
        data: bytes = resp.read()
    return data


def _graph_id() -> str:
    return str(17_000_000_000_000_000 + secrets.randbelow(10**15))
