"""Reading a posted video's views, likes and comments back from each platform. Dagster-free.

- YouTube Data API v3 `videos.list` (`part=statistics`, up to 50 ids a call): a video that is gone is
  simply missing from `items`, so it is reported as not found on its own.
- TikTok `POST /v2/video/query/` (`fields=id,view_count,like_count,comment_count`, body
  `{"filters": {"video_ids": [...]}}`, up to 20 ids, scope `video.list`).
- Instagram Graph media insights, `GET /{media-id}/insights?metric=views,likes,comments`, one media a
  call: one media's error never touches another's.

Each reader answers per id (counts or the error for that id) and raises the posting errors
(`TransientPostError`, `TokenExpiredError`, `PermanentPostError`) for a failure of the whole call; the
token refresh is the posting clients' own (`refresh`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import requests

from montage_pipeline.publishing.credentials import NewTokens
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.instagram import InstagramClient
from montage_pipeline.publishing.tiktok import TikTokClient
from montage_pipeline.publishing.youtube import YouTubeClient, classify

TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Counts:
    views: int
    likes: int
    comments: int


class NotFoundError(PermanentPostError):
    """The platform does not know the video (deleted, private, or never made public)."""

    def __init__(self, video_id: str) -> None:
        super().__init__("not_found", f"the platform has no video {video_id}")


# Per video id: its counts, or why they could not be read.
Reading = dict[str, Counts | PermanentPostError]


class StatsReader(Protocol):
    batch_size: int

    def secrets(self) -> list[str]: ...

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens: ...

    def read(self, token: str, account: str, video_ids: Sequence[str]) -> Reading: ...


def _int(value: Any) -> int:
    """Counts arrive as strings (YouTube) or numbers; a missing one (hidden likes) reads as 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    return float(value) if value and value.isdigit() else None


C = TypeVar("C", YouTubeClient, TikTokClient, InstagramClient)


class _ClientStats(Generic[C]):
    """What every reader borrows from its platform's posting client: the secrets to scrub, token refresh."""

    def __init__(self, client: C) -> None:
        self._client: C = client

    def secrets(self) -> list[str]:
        return self._client.secrets()

    def refresh(self, refresh_token: str | None, current: str) -> NewTokens:
        return self._client.refresh(refresh_token, current)


class YouTubeStats(_ClientStats[YouTubeClient]):
    batch_size = 50

    def read(self, token: str, account: str, video_ids: Sequence[str]) -> Reading:
        resp = requests.get(
            f"{self._client.api_url}youtube/v3/videos",
            params={"part": "statistics", "id": ",".join(video_ids), "maxResults": str(len(video_ids))},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )
        if resp.status_code != 200:
            raise classify(resp.status_code, resp.content, resp.headers.get("Retry-After"))
        items = {str(i.get("id")): i.get("statistics") or {} for i in _json(resp, "youtube").get("items", [])}
        return {
            vid: Counts(_int(s.get("viewCount")), _int(s.get("likeCount")), _int(s.get("commentCount")))
            if (s := items.get(vid)) is not None
            else NotFoundError(vid)
            for vid in video_ids
        }


class TikTokStats(_ClientStats[TikTokClient]):
    batch_size = 20
    FIELDS = "id,view_count,like_count,comment_count"

    def read(self, token: str, account: str, video_ids: Sequence[str]) -> Reading:
        resp = requests.post(
            f"{self._client.api_url}/v2/video/query/",
            params={"fields": self.FIELDS},
            json={"filters": {"video_ids": list(video_ids)}},
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"},
            timeout=TIMEOUT_S,
        )
        body = _json(resp, "tiktok") if resp.content else {}
        code = (body.get("error") or {}).get("code", "ok")
        if resp.status_code == 401 or code == "access_token_invalid":
            raise TokenExpiredError(f"tiktok: {code}")
        if (
            resp.status_code == 429
            or resp.status_code >= 500
            or code in {"rate_limit_exceeded", "internal_error"}
        ):
            raise TransientPostError(f"tiktok {resp.status_code} {code}", _retry_after(resp))
        if resp.status_code != 200 or code != "ok":
            raise PermanentPostError(
                str(code), (body.get("error") or {}).get("message") or str(resp.status_code)
            )
        videos = {str(v.get("id")): v for v in (body.get("data") or {}).get("videos") or []}
        return {
            vid: Counts(_int(v.get("view_count")), _int(v.get("like_count")), _int(v.get("comment_count")))
            if (v := videos.get(vid)) is not None
            else NotFoundError(vid)
            for vid in video_ids
        }


class InstagramStats(_ClientStats[InstagramClient]):
    batch_size = 1  # insights are read one media at a time
    METRICS = "views,likes,comments"

    def read(self, token: str, account: str, video_ids: Sequence[str]) -> Reading:
        return {vid: self._one(token, vid) for vid in video_ids}

    def _one(self, token: str, media_id: str) -> Counts | PermanentPostError:
        c = self._client
        resp = requests.get(
            f"{c.graph_url}/{c.api_version}/{media_id}/insights",
            params={"metric": self.METRICS},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
        )
        body = _json(resp, "instagram") if resp.content else {}
        error = body.get("error") or {}
        code = error.get("code")
        if code == 190:
            raise TokenExpiredError("instagram: access token expired or invalid")
        if resp.status_code == 429 or resp.status_code >= 500 or code in (1, 2, 4, 17, 32, 613):
            raise TransientPostError(f"instagram {resp.status_code} code {code}", _retry_after(resp))
        if code == 100 and error.get("error_subcode") == 33:
            return NotFoundError(media_id)
        if resp.status_code != 200:
            return PermanentPostError(f"graph_{code}", str(error.get("message") or resp.status_code))
        # An unavailable metric is left out of `data` (not 0): it reads as 0 until the platform has it.
        values = {m.get("name"): (m.get("values") or [{}])[0].get("value") for m in body.get("data") or []}
        return Counts(_int(values.get("views")), _int(values.get("likes")), _int(values.get("comments")))


def _json(resp: requests.Response, platform: str) -> dict[str, Any]:
    """The answer's JSON object; anything else (a proxy's error page) is a transient failure."""
    try:
        body = resp.json()
    except ValueError:
        raise TransientPostError(f"{platform} {resp.status_code}: the answer is not JSON") from None
    if not isinstance(body, dict):
        raise TransientPostError(f"{platform} {resp.status_code}: unexpected answer")
    return body
