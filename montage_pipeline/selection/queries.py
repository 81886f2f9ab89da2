"""The platform queries of the selection stage."""

from __future__ import annotations

from datetime import datetime
from numbers import Real

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from montage_pipeline.platform.models import Job, JobKind, JobStatus, Render, RenderFormat, User
from montage_pipeline.selection.rows import EligibleJob


def _job_score(scoring: object) -> float | None:
    if isinstance(scoring, dict):
        value = scoring.get("score")
        if isinstance(value, Real) and not isinstance(value, bool):
            return min(1.0, max(0.0, float(value)))
    return None


def eligible_jobs_in_window(
    session: Session, start: datetime, end: datetime, max_jobs: int
) -> list[EligibleJob]:
    """Successful upload jobs created in [start, end), newest first, at most `max_jobs` (the seed's query).

    Montage jobs never count: they are the pipeline's own output. Each job carries its newest landscape
    render (None when it has none; selection rejects it with a reason).
    """
    newest_render = (
        select(Render.id)
        .where(Render.job_id == Job.id, Render.format == RenderFormat.LANDSCAPE)
        .order_by(Render.created_at.desc(), Render.id.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    render = aliased(Render)
    query = (
        select(Job, User, render)
        .outerjoin(User, User.id == Job.user_id)
        .outerjoin(render, render.id == newest_render)
        .where(
            Job.status == JobStatus.SUCCESS,
            Job.kind == JobKind.UPLOAD,
            Job.created_at >= start,
            Job.created_at < end,
        )
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(max_jobs)
    )
    rows = []
    for job, user, rnd in session.execute(query):
        rows.append(
            EligibleJob(
                job_id=job.id,
                user_id=job.user_id,
                user_handle=user.handle if user else None,
                user_opted_out=bool(user and user.opted_out_of_featuring),
                created_at=job.created_at,
                game=job.game,
                title=job.title,
                job_score=_job_score(job.scoring),
                views=job.views,
                likes=job.likes,
                render_path=rnd.path if rnd else None,
                render_duration=rnd.duration if rnd else None,
            )
        )
    return rows
