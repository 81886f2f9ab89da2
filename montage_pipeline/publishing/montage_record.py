"""The week's montage as the platform sees it: a weekly_montage `jobs` row and its `weekly_montages` row.

The frontend reads `weekly_montages`; the `jobs` row lets the platform show the montage's progress like
any other job. Both are keyed by the week (`weekly_montages.week_start` is unique), so reruns and
concurrent steps of one week update the same rows instead of adding new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from montage_pipeline.media.overlay import montage_title
from montage_pipeline.platform.models import Job, JobKind, JobStatus, WeeklyMontage


def week_start_dt(week: str) -> datetime:
    return datetime.combine(date.fromisoformat(week), time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MontageFacts:
    """What was actually built, for the row the frontend shows."""

    title: str
    clip_count: int
    total_duration: float
    featured_user_ids: list[int]
    render_path_landscape: str
    render_path_portrait: str


def default_title(week: str) -> str:
    return montage_title(date.fromisoformat(week))


def montage_row(session: Session, week: str) -> WeeklyMontage | None:
    return session.scalar(select(WeeklyMontage).where(WeeklyMontage.week_start == week_start_dt(week)))


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
                row = WeeklyMontage(week_start=week_start_dt(week), job_id=job.id, title=default_title(week))
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


def set_job_status(session: Session, week: str, status: JobStatus) -> int:
    """Move the week's montage job to `status`; returns its id."""
    _, job = ensure_montage_job(session, week)
    job.status = status
    return job.id


def record_published(session: Session, week: str, facts: MontageFacts) -> WeeklyMontage:
    """Fill the week's row from what was built; `is_featured` (an admin's choice) is left alone."""
    row, job = ensure_montage_job(session, week)
    row.title = facts.title
    row.clip_count = facts.clip_count
    row.total_duration = round(facts.total_duration, 3)
    row.featured_user_ids = facts.featured_user_ids
    row.render_path_landscape = facts.render_path_landscape
    row.render_path_portrait = facts.render_path_portrait
    job.title = facts.title
    job.status = JobStatus.SUCCESS
    return row
