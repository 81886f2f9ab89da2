"""The posting outbox on both backends: one worker per post, leases that run out, guarded writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.platform.models import PostState, SocialConnection, SocialPlatform, SocialPost, User
from montage_pipeline.publishing.outbox import (
    LeaseLostError,
    PostProgress,
    PostTarget,
    claim_next,
    ensure_rows,
)

WEEK = datetime(2025, 1, 27, tzinfo=UTC)


def _setup(url: str) -> tuple[sessionmaker[Session], list[PostTarget]]:
    sessions = sessionmaker(create_engine(url), expire_on_commit=False)
    with sessions() as s, s.begin():
        user = User(handle="ace", email="ace@example.com")
        s.add(user)
        s.flush()
        targets = []
        for platform in SocialPlatform:
            conn = SocialConnection(user_id=user.id, platform=platform, account_id=f"ace-{platform.value}")
            s.add(conn)
            s.flush()
            targets.append(PostTarget(platform, conn.id, user.id, conn.account_id))
    return sessions, targets


def test_rows_are_made_once_whatever_the_repeats(db_url: str) -> None:
    sessions, targets = _setup(db_url)
    with sessions() as s, s.begin():
        assert ensure_rows(s, WEEK, targets) == 3
    with sessions() as s, s.begin():
        assert ensure_rows(s, WEEK, targets) == 0
        assert len(s.scalars(select(SocialPost)).all()) == 3


def test_two_workers_never_hold_the_same_post(db_url: str) -> None:
    sessions, targets = _setup(db_url)
    with sessions() as s, s.begin():
        ensure_rows(s, WEEK, targets)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(3):
        for worker in ("a", "b"):
            with sessions() as s, s.begin():
                post = claim_next(s, WEEK, worker, skip=claimed[worker])
            if post is not None:
                claimed[worker].append(post.id)
    assert sorted(claimed["a"] + claimed["b"]) == sorted(set(claimed["a"] + claimed["b"]))
    assert len(claimed["a"] + claimed["b"]) == 3


def test_postgres_skips_a_row_another_transaction_has_locked(pg_url: str) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(pg_url)
    sessions, targets = _setup(pg_url)
    with sessions() as s, s.begin():
        ensure_rows(s, WEEK, targets[:2])
    holder = sessions()
    holder.begin()
    first = claim_next(holder, WEEK, "a")  # not committed: the row stays locked
    assert first is not None
    with sessions() as s, s.begin():
        second = claim_next(s, WEEK, "b")
    assert second is not None and second.id != first.id  # SKIP LOCKED: no wait, the other row
    holder.rollback()
    holder.close()


def test_a_lapsed_lease_passes_to_the_next_worker_and_the_old_one_cannot_write(db_url: str) -> None:
    sessions, targets = _setup(db_url)
    with sessions() as s, s.begin():
        ensure_rows(s, WEEK, targets[:1])
    with sessions() as s, s.begin():
        crashed = claim_next(s, WEEK, "crashed", lease=timedelta(seconds=-1))  # already run out
    assert crashed is not None
    old = PostProgress(sessions, crashed, "crashed")
    with sessions() as s, s.begin():
        taken = claim_next(s, WEEK, "next")
    assert taken is not None and taken.id == crashed.id and taken.attempts == 2
    with pytest.raises(LeaseLostError):
        old.save(state=PostState.UPLOADING)
    fresh = PostProgress(sessions, taken, "next")
    fresh.save(remote_handle="https://upload/session", state=PostState.UPLOADING)
    fresh.release()
    with sessions() as s:
        row = s.get(SocialPost, taken.id)
        assert row is not None
        assert (row.state, row.remote_handle, row.claimed_by) == (
            PostState.UPLOADING,
            "https://upload/session",
            None,
        )


def test_a_live_lease_keeps_other_workers_out(db_url: str) -> None:
    sessions, targets = _setup(db_url)
    with sessions() as s, s.begin():
        ensure_rows(s, WEEK, targets[:1])
    with sessions() as s, s.begin():
        assert claim_next(s, WEEK, "a") is not None
    with sessions() as s, s.begin():
        assert claim_next(s, WEEK, "b") is None
    with sessions() as s, s.begin():
        assert claim_next(s, WEEK, "a") is not None  # the holder itself (a step retry) may resume
