"""A posted week's engagement, read from the platforms and stored once per post and UTC day. Dagster-free.

The week's published posts are grouped by connection (each platform answers only with its owner's
token) and read in batches of the platform's size. Failures stay where they happen: a video the
platform no longer has fails alone; a batch's refused token, rate limit or outage fails that batch's
posts only, after backoff (`with_backoff`, honouring Retry-After) and one token refresh; the other
connections are still read. Every post gets its row for the day: counts, or the error instead. A rerun
of the same day replaces the day's rows (upsert on (post, day)), so nothing is counted twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import groupby

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import (
    PostEngagement,
    PostState,
    SocialConnection,
    SocialPlatform,
    SocialPost,
)
from montage_pipeline.publishing.backoff import with_backoff
from montage_pipeline.publishing.credentials import ConnectionTokens, MissingTokenError
from montage_pipeline.publishing.errors import PostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.stats import Counts, Reading, StatsReader
from montage_pipeline.publishing.tokens import TokenCipher, TokenKeyError, quiet_token_loggers, scrub

log = logging.getLogger(__name__)
quiet_token_loggers()

TIKTOK_VIDEO = re.compile(r"/video/(\d+)")


@dataclass(frozen=True, slots=True)
class PostMeasurement:
    """One post on one day: its counts, or the error that kept them from being read."""

    post_id: int
    platform: str
    connection_id: int
    remote_id: str | None
    day: date
    views: int | None
    likes: int | None
    comments: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class _Target:
    post_id: int
    platform: SocialPlatform
    connection_id: int
    account: str
    video_id: str | None


def video_id(platform: SocialPlatform, remote_id: str | None, url: str | None) -> str | None:
    """The id the platform's statistics are read by. TikTok's outbox holds the publish_id; the video's
    own id is in the public URL (an inbox draft has none until the creator posts it)."""
    if platform is SocialPlatform.TIKTOK:
        match = TIKTOK_VIDEO.search(url or "")
        return match.group(1) if match else None
    return remote_id


def published_posts(session: Session, week_start: datetime) -> list[_Target]:
    rows = session.execute(
        select(SocialPost, SocialConnection)
        .join(SocialConnection, SocialConnection.id == SocialPost.connection_id)
        .where(SocialPost.week_start == week_start, SocialPost.state == PostState.PUBLISHED)
        .order_by(SocialPost.platform, SocialPost.connection_id, SocialPost.id)
    ).all()
    return [
        _Target(p.id, p.platform, p.connection_id, c.account_id, video_id(p.platform, p.remote_id, p.url))
        for p, c in rows
    ]


def measure_week(
    sessions: Callable[[], Session],
    week_start: datetime,
    day: date,
    readers: dict[SocialPlatform, StatsReader],
    cipher: Callable[[], TokenCipher],
    attempts: int = 4,
    backoff_base_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PostMeasurement]:
    """Read every published post of the week for `day`, store the rows, and return them."""
    with sessions() as session:
        targets = published_posts(session, week_start)
    found: list[PostMeasurement] = []
    for (platform, connection_id), group in groupby(targets, key=lambda t: (t.platform, t.connection_id)):
        posts = list(group)
        reader = readers.get(platform)
        if reader is None:
            found += [_failed(t, day, f"{platform.value} is not enabled") for t in posts]
            continue
        readable = [t for t in posts if t.video_id]
        found += [
            _failed(t, day, "no public video to read (a TikTok inbox draft)") for t in posts if not t.video_id
        ]
        found += _measure_connection(
            sessions, connection_id, readable, day, reader, cipher, attempts, backoff_base_s, sleep
        )
    with sessions() as session, session.begin():
        store(session, week_start, found)
    return found


def _measure_connection(
    sessions: Callable[[], Session],
    connection_id: int,
    posts: Sequence[_Target],
    day: date,
    reader: StatsReader,
    cipher: Callable[[], TokenCipher],
    attempts: int,
    backoff_base_s: float,
    sleep: Callable[[float], None],
) -> list[PostMeasurement]:
    if not posts:
        return []
    try:
        tokens = ConnectionTokens(sessions, connection_id, cipher(), reader.refresh)
    except TokenKeyError as exc:
        return [_failed(t, day, f"reconnect: {exc}") for t in posts]
    out: list[PostMeasurement] = []
    for start in range(0, len(posts), reader.batch_size):
        batch = posts[start : start + reader.batch_size]
        ids = [t.video_id or "" for t in batch]
        what = f"{batch[0].platform.value} stats of connection {connection_id}"

        def attempt(ids: list[str] = ids, account: str = batch[0].account) -> Reading:
            try:
                return reader.read(tokens.get(), account, ids)
            except TokenExpiredError:
                tokens.get(force_refresh=True, stale=tokens.current)
                raise TransientPostError("access token refreshed", retry_after_s=0) from None

        try:
            reading = with_backoff(attempt, what, attempts=attempts, base_s=backoff_base_s, sleep=sleep)
        except (PostError, MissingTokenError, TokenKeyError) as exc:
            reading = None
            error = scrub(str(exc), [*tokens.secrets(), *reader.secrets()])
        except Exception as exc:  # one connection's surprise must not stop the others being read
            reading = None
            error = (
                f"unexpected {type(exc).__name__}: {scrub(str(exc), [*tokens.secrets(), *reader.secrets()])}"
            )
        for target in batch:
            if reading is None:
                out.append(_failed(target, day, error))
                continue
            result = reading[target.video_id or ""]
            out.append(
                _counted(target, day, result)
                if isinstance(result, Counts)
                else _failed(target, day, str(result))
            )
    for m in out:
        if m.error:
            log.warning("%s post %d: not measured: %s", m.platform, m.post_id, m.error)
        else:
            log.info(
                "%s post %d: %d views, %d likes, %d comments",
                m.platform,
                m.post_id,
                m.views,
                m.likes,
                m.comments,
            )
    return out


def _counted(t: _Target, day: date, c: Counts) -> PostMeasurement:
    return PostMeasurement(
        t.post_id, t.platform.value, t.connection_id, t.video_id, day, c.views, c.likes, c.comments, None
    )


def _failed(t: _Target, day: date, error: str) -> PostMeasurement:
    return PostMeasurement(
        t.post_id, t.platform.value, t.connection_id, t.video_id, day, None, None, None, error
    )


def store(session: Session, week_start: datetime, rows: Sequence[PostMeasurement]) -> None:
    """Upsert the day's rows: one per (post, day), the latest reading wins."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    values = [
        {
            "social_post_id": r.post_id,
            "platform": r.platform,
            "remote_id": r.remote_id,
            "week_start": week_start,
            "day": r.day,
            "views": r.views,
            "likes": r.likes,
            "comments": r.comments,
            "error": r.error,
            "measured_at": now,
        }
        for r in rows
    ]
    statement = insert(PostEngagement).values(values)
    # A failed rerun keeps the day's earlier counts (with its error beside them); a reading replaces all.
    updated = {
        **{
            k: func.coalesce(statement.excluded[k], PostEngagement.__table__.c[k])
            for k in ("views", "likes", "comments")
        },
        **{k: statement.excluded[k] for k in ("remote_id", "error", "measured_at")},
    }
    session.execute(statement.on_conflict_do_update(index_elements=["social_post_id", "day"], set_=updated))
