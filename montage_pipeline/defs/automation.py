"""The weekly job and its Monday schedule.

`build_schedule_from_partitioned_job(job, hour_of_day=2)` on weekly partitions with `day_offset=1` gives
cron `0 2 * * 1`: the Monday 02:00 UTC tick targets the week that ended two hours earlier (the seed built
the week that had just started: two hours of uploads, a bug we do not copy). The tick runs in the
partitions' timezone (`MONTAGE_WEEK_TIMEZONE`, see partitions.py); Dagster allows no other for a
partitioned job's schedule, which keeps "02:00 on Monday" two hours after the week's end.
"""

from __future__ import annotations

import dagster as dg

from montage_pipeline.defs.location_settings import settings
from montage_pipeline.settings import ScheduleSettings


@dg.failure_hook(required_resource_keys={"platform_db"})
def mark_montage_job_failed(context: dg.HookContext) -> None:
    """The platform's montage job row follows the run: a failed step is reported to the montage record,
    which decides (steps after the export do not fail the montage)."""
    from montage_pipeline.platform.montage_record import MontageEvent, record_status

    run = context.instance.get_run_by_id(context.run_id)
    week = run.tags.get("dagster/partition") if run else None
    if not week:
        return
    with context.resources.platform_db.session() as session:
        failed = record_status(session, week, MontageEvent.RUN_FAILED, [context.op.name])
    if failed is not None:
        context.log.error(f"week {week}: step {context.op.name} failed; the montage job is marked FAILED")


weekly_montage_job = dg.define_asset_job(
    name="weekly_montage_job",
    selection=dg.AssetSelection.groups("montage"),
    description="Builds one week's montage, from the week's uploads to the published files.",
    # Never two runs of the same week at once (dagster.yaml's tag_concurrency_limits reads this tag).
    tags={"montage/job": "weekly"},
    hooks={mark_montage_job_failed},
)


def build_weekly_schedule(
    schedule: ScheduleSettings,
) -> dg.ScheduleDefinition | dg.UnresolvedPartitionedAssetScheduleDefinition:
    """Monday 02:00 in the weeks' timezone by default; `MONTAGE_SCHEDULE_HOUR` / `MONTAGE_SCHEDULE_MINUTE`
    move the tick, `MONTAGE_SCHEDULE_DEFAULT_STATUS` (RUNNING in production) decides if it starts on."""
    return dg.build_schedule_from_partitioned_job(
        weekly_montage_job,
        name="weekly_montage_schedule",
        hour_of_day=schedule.hour,
        minute_of_hour=schedule.minute,
        default_status=dg.DefaultScheduleStatus[schedule.default_status],
        description="Builds the week that just ended, every Monday.",
    )


weekly_montage_schedule = build_weekly_schedule(settings.schedule)
