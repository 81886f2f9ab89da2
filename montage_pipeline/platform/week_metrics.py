"""The seed's "metrics to track" for one week, read from the platform's tables (Dagster-free), so the
`post_engagement` asset page plots them week by week beside the engagement itself."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from montage_pipeline.platform.models import Job, JobKind, JobStatus, PostState, SocialPost, WeeklyMontage
from montage_pipeline.weeks import week_row_key, week_window


def week_metrics(session: Session, week: str, timezone: str = "UTC") -> dict[str, float]:
    """upload_success_rate (uploads of the week that processed), clips_per_montage and
    post_success_rate (outbox posts published); a metric without data is left out, not reported as 0."""
    start, end = week_window(week, timezone)
    out: dict[str, float] = {}
    statuses = dict(
        session.execute(
            select(Job.status, func.count())
            .where(Job.kind == JobKind.UPLOAD, Job.created_at >= start, Job.created_at < end)
            .group_by(Job.status)
        ).all()
    )
    uploads = sum(statuses.values())
    if uploads:
        out["upload_success_rate"] = round(statuses.get(JobStatus.SUCCESS, 0) / uploads, 4)
    key = week_row_key(week)
    clips = session.scalar(select(WeeklyMontage.clip_count).where(WeeklyMontage.week_start == key))
    if clips is not None:
        out["clips_per_montage"] = float(clips)
    states = list(session.scalars(select(SocialPost.state).where(SocialPost.week_start == key)))
    if states:
        out["post_success_rate"] = round(sum(s == PostState.PUBLISHED for s in states) / len(states), 4)
    return out
