"""A local Instagram Graph API for Reels: publishing limit, containers fetched from a URL, publish, media."""

from __future__ import annotations

import hashlib
import secrets
import threading
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from montage_pipeline.fake_social.base import FakeServer, Request, Response


@dataclass
class _Container:
    account: str
    caption: str
    video_url: str
    status_code: str = "IN_PROGRESS"
    status: str = "In progress"
    polls: int = 0
    fetched: bool = False
    size: int = 0
    sha256: str = ""
    media_id: str | None = None


class InstagramFake(FakeServer):
    def __init__(self, quota_total: int = 50, api_version: str = "v21.0", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quota_total = quota_total
        self.quota_usage: dict[str, int] = {}
        self.api_version = api_version
        self.containers: dict[str, _Container] = {}
        self.media: dict[str, dict[str, Any]] = {}

    def expire_container(self, container_id: str) -> None:
        with self.lock:
            self.containers[container_id].status_code = "EXPIRED"

    def error(self, status: int, kind: str, message: str, retry_after: int | None = None) -> Response:
        code, subcode, http = {
            "token": (190, 463, 400),
            "rate": (4, None, 429),
            "server": (2, None, status),
        }.get(kind, (100, None, status))
        body: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": secrets.token_hex(6),
        }
        if subcode:
            body["error_subcode"] = subcode
        return Response.json(
            http, {"error": body}, {"Retry-After": str(retry_after)} if retry_after else None
        )

    def _graph_error(self, code: int, message: str, subcode: int | None = None) -> Response:
        body: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "f"}
        if subcode:
            body["error_subcode"] = subcode
        return Response.json(400, {"error": body})

    def handle(self, request: Request) -> Response:
        params = request.form()
        token = request.bearer() or params.get("access_token")
        if request.path == "/refresh_access_token" and request.method == "GET":
            account = self.account_for(token)
            if account is None or params.get("grant_type") != "ig_refresh_token":
                return self.error(400, "token", "Error validating access token: Session has expired")
            with self.lock:
                new = self.new_access_token(account)
            return Response.json(200, {"access_token": new, "token_type": "bearer", "expires_in": 5184000})
        account = self.account_for(token)
        if account is None:
            return self.error(400, "token", "Error validating access token: Session has expired")
        prefix = f"/{self.api_version}/"
        if not request.path.startswith(prefix):
            return self._graph_error(100, f"unknown path {request.path}")
        parts = request.path.removeprefix(prefix).strip("/").split("/")
        if len(parts) == 2 and parts[0] == account:
            edge = parts[1]
            if edge == "content_publishing_limit" and request.method == "GET":
                used = self.quota_usage.get(account, 0)
                return Response.json(
                    200,
                    {
                        "data": [
                            {
                                "quota_usage": used,
                                "config": {"quota_total": self.quota_total, "quota_duration": 86400},
                            }
                        ]
                    },
                )
            if edge == "media" and request.method == "POST":
                return self._create(params, account)
            if edge == "media" and request.method == "GET":
                mine = [m for m in self.media.values() if m["account"] == account]
                return Response.json(
                    200, {"data": [{k: m[k] for k in ("id", "caption", "timestamp")} for m in reversed(mine)]}
                )
            if edge == "media_publish" and request.method == "POST":
                return self._publish(params.get("creation_id", ""), account)
        if len(parts) == 1 and request.method == "GET":
            with self.lock:
                if parts[0] in self.containers:
                    c = self._poll(parts[0])
                    return Response.json(
                        200, {"id": parts[0], "status_code": c.status_code, "status": c.status}
                    )
                if parts[0] in self.media:
                    m = self.media[parts[0]]
                    return Response.json(200, {"id": m["id"], "permalink": m["permalink"]})
        return self._graph_error(100, f"Unsupported request {request.method} {request.path}", 33)

    def _create(self, params: dict[str, str], account: str) -> Response:
        if params.get("media_type") != "REELS" or not params.get("video_url"):
            return self._graph_error(100, "media_type must be REELS with a video_url")
        container_id = str(secrets.randbelow(10**17))
        container = _Container(account, params.get("caption", ""), params["video_url"])
        with self.lock:
            self.containers[container_id] = container
        threading.Thread(target=self._fetch, args=(container,), daemon=True).start()
        return Response.json(200, {"id": container_id})

    def _fetch(self, container: _Container) -> None:
        try:
            with urllib.request.urlopen(container.video_url, timeout=30) as resp:  # noqa: S310 (http/file by design)
                data = resp.read()
            ok, why = data[4:8] == b"ftyp", "not an MP4"
        except Exception:
            data, ok, why = b"", False, "could not fetch video"
        with self.lock:
            container.fetched = True
            container.size, container.sha256 = len(data), hashlib.sha256(data).hexdigest()
            if not ok:
                container.status_code, container.status = "ERROR", f"ERROR: {why}"

    def _poll(self, container_id: str) -> _Container:
        c = self.containers[container_id]
        if c.status_code == "IN_PROGRESS" and c.fetched:
            if c.polls >= self.processing_polls:
                c.status_code, c.status = "FINISHED", "Finished"
            c.polls += 1
        return c

    def _publish(self, creation_id: str, account: str) -> Response:
        with self.lock:
            c = self.containers.get(creation_id)
            if c is None or c.account != account:
                return self._graph_error(100, "creation_id not found")
            if c.status_code == "PUBLISHED":
                return self._graph_error(9007, "The media has already been published", 2207008)
            if c.status_code != "FINISHED":
                return self._graph_error(9007, "Media ID is not available", 2207027)
            if self.quota_usage.get(account, 0) >= self.quota_total:
                return self._graph_error(9, "reached maximum number of posts", 2207042)
            media_id = str(secrets.randbelow(10**17))
            c.status_code, c.status, c.media_id = "PUBLISHED", "Published", media_id
            self.quota_usage[account] = self.quota_usage.get(account, 0) + 1
            self.media[media_id] = {
                "id": media_id,
                "account": account,
                "caption": c.caption,
                "timestamp": datetime.now(UTC).isoformat(),
                "permalink": f"https://www.instagram.com/reel/{secrets.token_urlsafe(8)}/",
            }
            self.posts.append(
                {
                    "account_id": account,
                    "id": media_id,
                    "bytes": c.size,
                    "sha256": c.sha256,
                    "metadata": {"caption": c.caption},
                }
            )
        return Response.json(200, {"id": media_id})
