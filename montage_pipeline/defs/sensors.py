"""Sensors: alert on a failed week, notice uploads a built week missed, email the featured creators.

None of them rebuilds anything on its own: a published week changes only when an admin says so.
Every retry is bounded: the alert webhook is tried a few times and then given up (logged, and counted
on the failed run's tags) instead of failing the sensor on every tick; a creator email that fails is
tried again on later ticks, at most `MAX_EMAIL_ATTEMPTS` times in all.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import requests
from sqlalchemy import MetaData, Table, or_, select, update
from sqlalchemy.exc import IntegrityError, NoSuchTableError
from sqlalchemy.orm import Session

from montage_pipeline.defs.admin import rebuild_week_job
from montage_pipeline.defs.automation import weekly_montage_job
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.partitions import window
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.defs.resources.notify import AlertWebhook, Mailer
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.platform.models import Job, JobStatus, MontageNotification, User, WeeklyMontage
from montage_pipeline.platform.montage_record import MontageEvent, record_status
from montage_pipeline.publishing.exports import export_url
from montage_pipeline.selection.queries import eligible_jobs_in_window
from montage_pipeline.settings import Settings

RECENT_WEEKS = 6
ALERT_ATTEMPTS = 3
ALERT_RETRY_S = 0.5  # doubled after each failed try; the sensor's whole evaluation must stay short
ALERT_FAILURES_TAG = "montage/alert_webhook_failures"
MAX_EMAIL_ATTEMPTS = 3  # ticks are 10 minutes apart: a broken address is not retried for weeks
# A claim still 'sending' after this had its sender die mid-send (a tick lasts seconds): delivery is
# unknown, so it is tried again as a counted attempt (an email may arrive twice; never zero times).
STALE_SENDING = timedelta(minutes=30)
EMAIL_LINK_EXPIRES_S = 7 * 24 * 3600  # a presigned link in an email lives as long as S3 allows


def _deliver_alert(webhook: AlertWebhook, text: str, **fields: object) -> str | None:
    """Send the alert, retrying a few times; None when delivered (or no webhook), else why not.

    The reason names the error and status only: a webhook URL (Slack's, for one) is a secret.
    """
    reason = None
    for attempt in range(ALERT_ATTEMPTS):
        if attempt:
            time.sleep(ALERT_RETRY_S * 2 ** (attempt - 1))
        try:
            webhook.send(text, **fields)
            return None
        except requests.RequestException as exc:
            status = exc.response.status_code if exc.response is not None else None
            reason = type(exc).__name__ + (f" {status}" if status else "")
    return reason


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
    if week:  # the montage record decides: a failed post does not fail the published montage
        with platform_db.session() as session:
            record_status(session, week, MontageEvent.RUN_FAILED, steps)
    failed = _deliver_alert(alert_webhook, text, week=week, steps=steps, run_id=context.dagster_run.run_id)
    if failed is not None:
        # Raising would repeat this run's alert on every tick, forever: give up, and say so where
        # an operator looks (this log and the failed run's tags).
        context.log.error(
            f"alert webhook failed {ALERT_ATTEMPTS} times ({failed}); the alert is in this log only"
        )
        context.instance.add_run_tags(context.dagster_run.run_id, {ALERT_FAILURES_TAG: str(ALERT_ATTEMPTS)})


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
            start, end = window(week)
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
    context: dg.SensorEvaluationContext,
    platform_db: PlatformDatabase,
    mailer: Mailer,
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.SkipReason | None:
    if not mailer.enabled:
        return dg.SkipReason("creator emails are off (MONTAGE_SMTP_HOST is not set)")
    sent = 0
    with platform_db.session() as session:
        weeks = [
            (m.week_start, m.title, m.render_path_landscape, list(m.featured_user_ids or []))
            for m in _published_weeks(session, datetime.now(UTC))
        ]
    for week_start, title, stored, user_ids in weeks:
        # The row holds the export's key: the link is minted now (public base URL, else presigned).
        url = (
            export_url(media_store.store(), stored, EMAIL_LINK_EXPIRES_S, settings.public_base_url)
            if stored
            else ""
        )
        for user_id in user_ids:
            with platform_db.session() as session:
                user = session.get(User, user_id)
                if user is None or user.opted_out_of_featuring or user.notifications_opt_out:
                    continue
                if not _claim_email(session, week_start, user_id):
                    continue
                email, handle = user.email, user.handle
            error = None
            try:
                mailer.send(
                    email,
                    f"You're in {title}!",
                    f"Hi @{handle},\n\nyour clip made this week's highlights: {title}.\nWatch it: {url}\n\n"
                    "You get this email because you were featured. Turn these emails off in your settings.",
                )
                sent += 1
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
            with platform_db.session() as session:
                row = session.scalars(
                    select(MontageNotification).where(
                        MontageNotification.week_start == week_start, MontageNotification.user_id == user_id
                    )
                ).one()
                row.attempts += 1
                if error is None:
                    row.status, row.sent_at, row.last_error = "sent", datetime.now(UTC), None
                else:  # a later tick tries again while attempts are left
                    row.status, row.last_error = "failed", error[:1000]
                    last = "; giving up" if row.attempts >= MAX_EMAIL_ATTEMPTS else ""
                    context.log.warning(
                        f"email to user {user_id} for {week_start:%Y-%m-%d} failed "
                        f"(attempt {row.attempts}/{MAX_EMAIL_ATTEMPTS}{last}): {error}"
                    )
    context.log.info(f"{sent} creator emails sent")
    return None


def _claim_email(session: Session, week_start: datetime, user_id: int) -> bool:
    """Take the (week, user) email for this tick: a new one, a failed one with attempts left, or one
    whose sender died while sending (claimed long ago, still 'sending'; that try counts).

    The insert (unique key) or the conditional update is the claim: a second tick finds it taken.
    """
    now = datetime.now(UTC)
    try:
        with session.begin_nested():
            session.add(
                MontageNotification(
                    week_start=week_start, user_id=user_id, status="sending", attempts=0, claimed_at=now
                )
            )
        return True
    except IntegrityError:
        pass
    mine = (MontageNotification.week_start == week_start, MontageNotification.user_id == user_id)
    retried = session.execute(
        update(MontageNotification)
        .where(
            *mine, MontageNotification.status == "failed", MontageNotification.attempts < MAX_EMAIL_ATTEMPTS
        )
        .values(status="sending", claimed_at=now)
    )
    if retried.rowcount:  # type: ignore[attr-defined]
        return True
    stale = (
        *mine,
        MontageNotification.status == "sending",
        or_(MontageNotification.claimed_at.is_(None), MontageNotification.claimed_at < now - STALE_SENDING),
    )
    died = "the sender stopped while sending (delivery unknown)"
    abandoned = session.execute(
        update(MontageNotification)
        .where(*stale, MontageNotification.attempts + 1 < MAX_EMAIL_ATTEMPTS)
        .values(claimed_at=now, attempts=MontageNotification.attempts + 1, last_error=died)
    )
    if abandoned.rowcount:  # type: ignore[attr-defined]
        return True
    session.execute(  # no attempt left for it: ended, with the reason
        update(MontageNotification)
        .where(*stale)
        .values(status="failed", attempts=MontageNotification.attempts + 1, last_error=died)
    )
    return False
