"""The daily engagement job and its schedule: every posted week is read once a day for 30 days.

A week is posted on the Monday its window ends (the weekly schedule's 02:00 tick); the 06:00 tick of
that day and of the 29 days after it request the week's `post_engagement` partition, with the day in
the run config, so the counts land under the tick's day even when the run starts late. From the 30th
day on the week is no longer requested: its counts have settled and the platforms' quotas are spared.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime

import dagster as dg

from montage_pipeline.defs.assets.engagement import post_engagement
from montage_pipeline.defs.location_settings import settings
from montage_pipeline.defs.partitions import weekly_partitions, window

ENGAGEMENT_DAYS = 30

engagement_job = dg.define_asset_job(
    name="engagement_job",
    selection=dg.AssetSelection.assets(post_engagement),
    description="Reads one posted week's views, likes and comments from the platforms.",
)


def weeks_to_measure(today: date, keys: Sequence[str]) -> list[str]:
    """The weeks whose posts are 0..29 days old on `today` (posted on the day the week ended)."""
    return [k for k in keys if 0 <= (today - window(k)[1].date()).days < ENGAGEMENT_DAYS]


@dg.schedule(
    job=engagement_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    # On with the weekly schedule: MONTAGE_SCHEDULE_DEFAULT_STATUS (RUNNING in production).
    default_status=dg.DefaultScheduleStatus[settings.schedule.default_status],
    description="Every day: the engagement of each week posted in the last 30 days.",
)
def engagement_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    tick: datetime = context.scheduled_execution_time
    today = tick.date()
    keys = weekly_partitions.get_partition_keys(current_time=tick)[-6:]
    for week in weeks_to_measure(today, keys):
        yield dg.RunRequest(
            run_key=f"{week}:{today.isoformat()}",
            partition_key=week,
            run_config={"ops": {"post_engagement": {"config": {"day": today.isoformat()}}}},
        )
