"""The week's montage as the platform sees it: a weekly_montage `jobs` row and its `weekly_montages` row.

The frontend reads `weekly_montages`; the `jobs` row lets the platform show the montage's progress like
any other job. Both are keyed by the week (`weekly_montages.week_start` is unique), so reruns and
concurrent steps of one week update the same rows instead of adding new ones.

Admins edit two fields of the row, `is_featured` and `title` (`feature`, `retitle`): the Dagster admin jobs
and the read API's admin routes both call these, so an edit means the same from either side.

Whoever writes a week's exports or switches its row holds `week_lock` for that week: runs launched
outside the run queue (`dagster asset materialize` runs in-process) still meet there, and the second one
waits, or fails saying why, instead of interleaving its files with the first one's.
"""

from __future__ import annotations

import enum
import fcntl
import time as clock
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, overload

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from montage_pipeline.media.overlay import montage_title
from montage_pipeline.platform.models import Job, JobKind, JobStatus, WeeklyMontage
from montage_pipeline.weeks import week_row_key

# pg_advisory_lock(classid, objid): a class of our own ("MONT"), and the week's day number as the object.
LOCK_CLASS = 0x4D4F4E54
SQLITE_POLL_S = 0.2


class WeekLockedError(RuntimeError):
    """Another run holds the week's lock and did not let go in time."""


def _week_number(week: str) -> int:
    return date.fromisoformat(week).toordinal()


@contextmanager
def week_lock(engine: Engine, week: str, timeout_s: float) -> Iterator[None]:
    """Hold the week's lock for the block; wait up to `timeout_s` for it, then raise `WeekLockedError`.

    PostgreSQL: a session-level advisory lock on a connection of its own, kept out of any transaction,
    so the block's own sessions commit freely and the lock goes with the connection if the process dies.
    SQLite (the embedded profile, one machine): `flock` on a file beside the database, which the kernel
    also releases with the process.
    """
    if engine.dialect.name == "postgresql":
        with _pg_week_lock(engine, week, timeout_s):
            yield
    elif engine.dialect.name == "sqlite":
        with _sqlite_week_lock(engine, week, timeout_s):
            yield
    else:
        raise NotImplementedError(f"no week lock for {engine.dialect.name}")


@contextmanager
def _pg_week_lock(engine: Engine, week: str, timeout_s: float) -> Iterator[None]:
    params = {"c": LOCK_CLASS, "o": _week_number(week)}
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    reusable = False
    try:
        # lock_timeout applies to advisory locks too (0 would mean "wait forever" to PostgreSQL).
        wait_ms = max(1, int(timeout_s * 1000))
        conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": f"{wait_ms}ms"})
        try:
            conn.execute(text("SELECT pg_advisory_lock(:c, :o)"), params)
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) != "55P03":  # lock_not_available
                raise
            holder = conn.scalar(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
                    "AND objid = :o AND granted"
                ),
                params,
            )
            raise WeekLockedError(
                f"week {week} is being written by another run (PostgreSQL backend pid {holder}); "
                f"gave up after {timeout_s:g} s"
            ) from None
        try:
            conn.execute(text("RESET lock_timeout"))
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"), params)
            reusable = True
    finally:
        if not reusable:  # never hand a connection that may still hold the lock back to the pool
            conn.invalidate()
        conn.close()


@contextmanager
def _sqlite_week_lock(engine: Engine, week: str, timeout_s: float) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        raise NotImplementedError("a week lock needs a SQLite database file")
    path = Path(database).resolve()
    folder = path.with_name(f"{path.name}.locks")
    folder.mkdir(parents=True, exist_ok=True)
    deadline = clock.monotonic() + timeout_s
    # Each holder opens the file itself: flock locks an open file description, so two threads of one
    # process exclude each other as two processes do.
    with (folder / f"week-{week}.lock").open("a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock.monotonic() >= deadline:
                    raise WeekLockedError(
                        f"week {week} is being written by another run (lock file {fh.name}); "
                        f"gave up after {timeout_s:g} s"
                    ) from None
                clock.sleep(SQLITE_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class MontageFacts:
    """What was actually built, for the row the frontend shows."""

    title: str
    clip_count: int
    total_duration: float
    featured_user_ids: list[int]
    render_path_landscape: str  # the object key of the landscape export
    render_path_portrait: str
    export_generation: str | None = None
    export_files: dict[str, Any] | None = None


def default_title(week: str) -> str:
    return montage_title(date.fromisoformat(week))


def montage_row(session: Session, week: str) -> WeeklyMontage | None:
    return session.scalar(select(WeeklyMontage).where(WeeklyMontage.week_start == week_row_key(week)))


def ensure_montage_job(session: Session, week: str) -> tuple[WeeklyMontage, Job]:
    """The week's montage row and its job row, created (job PENDING) if this is the week's first run.

    Two steps racing to create the row meet on the unique `week_start`: the loser rolls back its
    savepoint and reads the winner's row.
    """
    row = montage_row(session, week)
    if row is None:
        try:
            with session.begin_nested():
                job = Job(kind=JobKind.WEEKLY_MONTAGE, status=JobStatus.PENDING, title=default_title(week))
                session.add(job)
                session.flush()
                row = WeeklyMontage(week_start=week_row_key(week), job_id=job.id, title=default_title(week))
                session.add(row)
                session.flush()
        except IntegrityError:
            row = montage_row(session, week)
            assert row is not None
    found = session.get(Job, row.job_id) if row.job_id is not None else None
    if found is not None:
        job = found
    else:  # a row written by the platform's own seed without a job: give it one
        job = Job(
            kind=JobKind.WEEKLY_MONTAGE, status=JobStatus.PENDING, title=row.title or default_title(week)
        )
        session.add(job)
        session.flush()
        row.job_id = job.id
    return row, job


class MontageEvent(enum.StrEnum):
    """What happened to a week's build, as far as its montage job row is concerned."""

    BUILD_STARTED = "build_started"  # a run that goes on to the export began
    EXPORT_STARTED = "export_started"  # the export passed the gate and holds the week's lock
    EXPORT_GATED = "export_gated"  # the gate refused a final file: nothing was published
    EXPORTED = "exported"  # the row switched to the new generation
    RUN_FAILED = "run_failed"  # steps of a run failed (the hook: one; the sensor: all; none: the run)


# Steps after the export: the montage is published by then, so their failure does not fail it.
AFTER_EXPORT_STEPS = frozenset({"social_posts"})

_STATUS_AFTER = {
    MontageEvent.BUILD_STARTED: JobStatus.PROCESSING,
    MontageEvent.EXPORT_STARTED: JobStatus.PROCESSING,
    MontageEvent.EXPORT_GATED: JobStatus.FAILED,
    MontageEvent.EXPORTED: JobStatus.SUCCESS,
}


def montage_status(event: MontageEvent, failed_steps: Collection[str] = ()) -> JobStatus | None:
    """The week's montage job status after `event`; None when the event leaves it as it is."""
    if event is MontageEvent.RUN_FAILED:
        if failed_steps and set(failed_steps) <= AFTER_EXPORT_STEPS:
            return None
        return JobStatus.FAILED
    return _STATUS_AFTER[event]


@overload
def record_status(
    session: Session,
    week: str,
    event: Literal[MontageEvent.BUILD_STARTED, MontageEvent.EXPORT_STARTED, MontageEvent.EXPORT_GATED],
) -> int: ...
@overload
def record_status(
    session: Session, week: str, event: MontageEvent, failed_steps: Collection[str] = ()
) -> int | None: ...
def record_status(
    session: Session, week: str, event: MontageEvent, failed_steps: Collection[str] = ()
) -> int | None:
    """Write the status `montage_status` decides onto the week's montage job: its one writer.

    The pipeline's steps, the export gate, the weekly job's failure hook and the run-failure sensor all
    report here. Returns the job's id; None when the event leaves the job alone (nothing is written
    then, not even a new row).
    """
    status = montage_status(event, failed_steps)
    if status is None:
        return None
    _, job = ensure_montage_job(session, week)
    job.status = status
    return job.id


def record_published(session: Session, week: str, facts: MontageFacts) -> WeeklyMontage:
    """Fill the week's row from what was built; `is_featured` (an admin's choice) is left alone.

    The session's one transaction switches the row to the new generation whole: every field or none.
    """
    row, job = ensure_montage_job(session, week)
    row.export_generation = facts.export_generation
    row.export_files = facts.export_files
    row.title = facts.title
    row.clip_count = facts.clip_count
    row.total_duration = round(facts.total_duration, 3)
    row.featured_user_ids = facts.featured_user_ids
    row.render_path_landscape = facts.render_path_landscape
    row.render_path_portrait = facts.render_path_portrait
    job.title = facts.title
    record_status(session, week, MontageEvent.EXPORTED)
    return row


TITLE_MAX_CHARS = 255  # the column's length


class MontageEditError(ValueError):
    """An admin's edit the row cannot take (the message says why)."""


def clean_title(title: str) -> str:
    """The title as stored: stripped, 1 to `TITLE_MAX_CHARS` characters, else `MontageEditError`."""
    cleaned = title.strip()
    if not cleaned or len(cleaned) > TITLE_MAX_CHARS:
        raise MontageEditError(f"the title must be 1 to {TITLE_MAX_CHARS} characters")
    return cleaned


def feature(row: WeeklyMontage, featured: bool) -> None:
    """Mark the montage featured (or not) for the frontend; an admin's field the pipeline never writes."""
    row.is_featured = featured


def retitle(row: WeeklyMontage, title: str) -> str:
    """Change the title the frontend shows (published videos keep theirs); returns it as stored."""
    row.title = clean_title(title)
    return row.title
