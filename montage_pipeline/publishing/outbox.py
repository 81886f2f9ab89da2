"""The social posting outbox: one `social_posts` row per (week, platform, connection), leased to one worker.

A worker claims the next open row of a week (`FOR UPDATE SKIP LOCKED` on Postgres, so concurrent
workers never pick the same row; an atomic conditional UPDATE on SQLite), holds it under a lease, and
writes every step (the remote handle before any bytes are sent, then progress, then the final state)
through updates guarded by its lease. A worker that crashes leaves a lease that runs out; the next
claim resumes from the saved handle instead of starting a second post.

A live worker keeps its lease: every saved step renews it, and the clients call `heartbeat()` between
polls and chunks, so long work (an upload, a platform still processing) never lets it lapse. The lease
is longer than any single request's timeout. A worker whose lease was taken anyway finds out at its
next save or heartbeat (`LeaseLostError`) and stops without touching the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import PostState, SocialPlatform, SocialPost

OPEN_STATES = (PostState.PENDING, PostState.CLAIMED, PostState.UPLOADING, PostState.PROCESSING)
FINAL_STATES = (PostState.PUBLISHED, PostState.FAILED, PostState.SKIPPED)
DEFAULT_LEASE = timedelta(minutes=15)


class LeaseLostError(RuntimeError):
    """Another worker holds this post now (our lease ran out); stop without touching it."""


@dataclass(frozen=True, slots=True)
class PostTarget:
    platform: SocialPlatform
    connection_id: int
    user_id: int
    account_id: str


@dataclass(slots=True)
class ClaimedPost:
    """A snapshot of a claimed row; clients read their resume state from it."""

    id: int
    platform: SocialPlatform
    connection_id: int
    state: PostState
    remote_handle: str | None
    remote_id: str | None
    url: str | None
    attempts: int
    progress: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None


def ensure_rows(session: Session, week_start: datetime, targets: Iterable[PostTarget]) -> int:
    """Insert the missing rows (the unique key makes this safe to repeat and to race); returns how many."""
    added = 0
    for target in targets:
        exists = session.scalar(
            select(SocialPost.id).where(
                SocialPost.week_start == week_start,
                SocialPost.platform == target.platform,
                SocialPost.connection_id == target.connection_id,
            )
        )
        if exists is not None:
            continue
        try:
            with session.begin_nested():
                session.add(
                    SocialPost(
                        week_start=week_start,
                        platform=target.platform,
                        connection_id=target.connection_id,
                        state=PostState.PENDING,
                    )
                )
            added += 1
        except IntegrityError:
            pass  # another worker inserted it first
    return added


def _claimable(now: datetime, worker: str) -> Any:
    return and_(
        SocialPost.state.in_(OPEN_STATES),
        or_(
            SocialPost.claimed_by.is_(None),
            SocialPost.claimed_by == worker,
            SocialPost.lease_expires_at.is_(None),
            SocialPost.lease_expires_at < now,
        ),
    )


def claim_next(
    session: Session,
    week_start: datetime,
    worker: str,
    skip: Iterable[int] = (),
    lease: timedelta = DEFAULT_LEASE,
) -> ClaimedPost | None:
    """Lease the next open post of the week to `worker` (commit the session to make it stick)."""
    now = datetime.now(UTC)
    query = (
        select(SocialPost.id)
        .where(SocialPost.week_start == week_start, _claimable(now, worker), SocialPost.id.not_in(list(skip)))
        .order_by(SocialPost.id)
    )
    postgres = session.get_bind().dialect.name == "postgresql"
    for post_id in session.scalars(
        query.limit(1).with_for_update(skip_locked=True) if postgres else query
    ).all():
        # On Postgres the row is locked already; elsewhere the WHERE clause makes the claim atomic.
        claimed = session.execute(
            update(SocialPost)
            .where(SocialPost.id == post_id, _claimable(now, worker))
            .values(
                claimed_by=worker,
                lease_expires_at=now + lease,
                attempts=SocialPost.attempts + 1,
                updated_at=now,
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            row = session.get(SocialPost, post_id, populate_existing=True)
            assert row is not None
            return ClaimedPost(
                row.id,
                row.platform,
                row.connection_id,
                row.state,
                row.remote_handle,
                row.remote_id,
                row.url,
                row.attempts,
                dict(row.progress or {}),
                row.last_error,
            )
    return None


class PostProgress:
    """Writes one claimed post's steps, each in its own committed transaction, guarded by the lease."""

    def __init__(
        self,
        sessions: Callable[[], Session],
        post: ClaimedPost,
        worker: str,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._sessions = sessions
        self.post = post
        self.worker = worker
        self._lease = lease

    def save(self, **values: Any) -> None:
        """Persist fields (state, remote_handle, remote_id, url, progress, last_error) and renew the lease."""
        now = datetime.now(UTC)
        if "progress" in values:
            values["progress"] = {**self.post.progress, **values["progress"]}
        with self._sessions() as session, session.begin():
            done = session.execute(
                update(SocialPost)
                .where(SocialPost.id == self.post.id, SocialPost.claimed_by == self.worker)
                .values(**values, lease_expires_at=now + self._lease, updated_at=now)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLostError(f"post {self.post.id} is no longer leased to {self.worker}")
        for key, value in values.items():
            if key in ClaimedPost.__slots__:
                setattr(self.post, key, value)

    def heartbeat(self) -> None:
        """Renew the lease while working (between polls, chunks); `LeaseLostError` if it was taken."""
        self.save()

    def release(self, **values: Any) -> None:
        """Save the last values and give the lease up (final state, or a transient failure to retry)."""
        self.save(**values)
        with self._sessions() as session, session.begin():
            session.execute(
                update(SocialPost)
                .where(SocialPost.id == self.post.id, SocialPost.claimed_by == self.worker)
                .values(claimed_by=None, lease_expires_at=None)
            )
