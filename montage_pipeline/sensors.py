"""Sensors: alert on a failed week, notice uploads a built week missed, email the featured creators.

None of them rebuilds anything on its own: a published week changes only when an admin says so.
"""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import IntegrityError, NoSuchTableError
from sqlalchemy.orm import Session

from montage_pipeline.admin import rebuild_week_job
from montage_pipeline.automation import weekly_montage_job
from montage_pipeline.io_managers.table_io_manager import TableIOManager
from montage_pipeline.partitions import week_window
from montage_pipeline.platform.models import Job, JobStatus, MontageNotification, User, WeeklyMontage
from montage_pipeline.publishing.montage_record import set_job_status
from montage_pipeline.resources.notify import AlertWebhook, Mailer
from montage_pipeline.resources.platform_db import PlatformDatabase
from montage_pipeline.selection.queries import eligible_jobs_in_window

RECENT_WEEKS = 6


@dg.run_failure_sensor(
    monitored_jobs=[weekly_montage_job, rebuild_week_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed week: an alert naming the week and the step (log, and the webhook if set).",
)
def montage_failure_alert(
    context: dg.RunFailureSensorContext, alert_webhook: AlertWebhook, platform_db: PlatformDatabase
) -> None:
    week = context.dagster_run.tags.get("dagster/partition")
    steps = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    where = ", ".join(steps) or "the run itself"
    text = (
        f"Weekly montage for {week or 'an unknown week'} failed at {where}: {context.failure_event.message}"
    )
    context.log.error(text)
    if week and steps != ["social_posts"]:  # a failed post does not fail the published montage
        with platform_db.session() as session:
            set_job_status(session, week, JobStatus.FAILED)
    alert_webhook.send(text, week=week, steps=steps, run_id=context.dagster_run.run_id)


def _published_weeks(session: Session, now: datetime) -> list[WeeklyMontage]:
    since = now - timedelta(weeks=RECENT_WEEKS)
    return list(
        session.scalars(
            select(WeeklyMontage)
            .join(Job, Job.id == WeeklyMontage.job_id)
            .where(
                WeeklyMontage.week_start >= since,
                WeeklyMontage.render_path_landscape.is_not(None),
                Job.status == JobStatus.SUCCESS,
            )
            .order_by(WeeklyMontage.week_start)
        )
    )


@dg.sensor(
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Uploads of a published week that its montage did not consider; recorded, not rebuilt.",
)
def late_uploads(
    context: dg.SensorEvaluationContext,
    platform_db: PlatformDatabase,
    table_io_manager: dg.ResourceParam[TableIOManager],
) -> dg.SensorResult:
    reported: dict[str, list[int]] = json.loads(context.cursor or "{}")
    events: list[dg.AssetObservation] = []
    with platform_db.session() as session:
        for montage in _published_weeks(session, datetime.now(UTC)):
            week = f"{montage.week_start:%Y-%m-%d}"
            considered = _considered_job_ids(table_io_manager, week)
            if considered is None:
                continue
            start, end = week_window(week)
            now_eligible = {j.job_id for j in eligible_jobs_in_window(session, start, end, 10_000)}
            late = sorted(now_eligible - considered - set(reported.get(week, [])))
            if late:
                reported[week] = sorted(set(reported.get(week, [])) | set(late))
                context.log.warning(f"week {week}: {len(late)} uploads arrived after its montage: {late}")
                events.append(
                    dg.AssetObservation(
                        asset_key="eligible_jobs",
                        partition=week,
                        metadata={
                            "late_uploads": len(reported[week]),
                            "late_job_ids": ", ".join(map(str, reported[week])),
                            "action": "rebuild the week with rebuild_week_job to include them",
                        },
                    )
                )
    return dg.SensorResult(asset_events=events, cursor=json.dumps(reported, sort_keys=True))


def _considered_job_ids(tables: TableIOManager, week: str) -> set[int] | None:
    try:
        table = Table(
            tables.table_name(dg.AssetKey("eligible_jobs")), MetaData(), autoload_with=tables.engine
        )
    except NoSuchTableError:
        return None
    with tables.engine.connect() as conn:
        rows = conn.execute(select(table.c.job_id).where(table.c.partition_key == week)).all()
    return {int(r[0]) for r in rows}


@dg.sensor(
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Emails each featured creator once per published week (their opt-out respected).",
)
def notify_featured_creators(
    context: dg.SensorEvaluationContext, platform_db: PlatformDatabase, mailer: Mailer
) -> dg.SkipReason | None:
    if not mailer.enabled:
        return dg.SkipReason("creator emails are off (MONTAGE_SMTP_HOST is not set)")
    sent = 0
    with platform_db.session() as session:
        weeks = [
            (m.week_start, m.title, m.render_path_landscape, list(m.featured_user_ids or []))
            for m in _published_weeks(session, datetime.now(UTC))
        ]
    for week_start, title, url, user_ids in weeks:
        for user_id in user_ids:
            with platform_db.session() as session:
                user = session.get(User, user_id)
                if user is None or user.opted_out_of_featuring or user.notifications_opt_out:
                    continue
                try:
                    with session.begin_nested():  # the claim: a second sensor tick finds it and moves on
                        session.add(
                            MontageNotification(week_start=week_start, user_id=user_id, status="sending")
                        )
                except IntegrityError:
                    continue
                email, handle = user.email, user.handle
            try:
                mailer.send(
                    email,
                    f"You're in {title}!",
                    f"Hi @{handle},\n\nyour clip made this week's highlights: {title}.\nWatch it: {url}\n\n"
                    "You get this email because you were featured. Turn these emails off in your settings.",
                )
                status = "sent"
                sent += 1
            except OSError as exc:
                context.log.warning(f"email to user {user_id} for {week_start:%Y-%m-%d} failed: {exc}")
                status = "failed"
            with platform_db.session() as session:
                row = session.scalars(
                    select(MontageNotification).where(
                        MontageNotification.week_start == week_start, MontageNotification.user_id == user_id
                    )
                ).one()
                if status == "failed":
                    session.delete(row)  # not sent: the next tick tries again
                else:
                    row.status, row.sent_at = status, datetime.now(UTC)
    context.log.info(f"{sent} creator emails sent")
    return None
