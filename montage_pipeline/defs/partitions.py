"""The weekly partitions every montage asset carries.

Keys are the Monday a week starts (`2025-01-27`); the window is [Monday 00:00, next Monday 00:00) in the
weeks' timezone, UTC by default as the platform's seed defines a week. `MONTAGE_WEEK_TIMEZONE` (an IANA
name such as `America/New_York`, read with the other settings) moves both the window and the schedule's
tick to local time: Dagster runs a partitioned job's schedule in its partitions' timezone, so the two
cannot disagree. Set it once, before the first week is built: a week built under one timezone is a
different window under another. No hour offset: an offset would move the window itself, not the schedule
(the schedule's `hour_of_day=2` does that, see automation.py).

The start, the timezone and the windows come from `montage_pipeline.weeks`, which the seeder and the
importer use without Dagster; `test_partitions_and_schedule.py` checks that both cut the same weeks.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from montage_pipeline.defs.location_settings import settings
from montage_pipeline.weeks import FIRST_WEEK, week_window

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK, day_offset=1, timezone=settings.week_timezone
)


def window(week: str) -> tuple[datetime, datetime]:
    """[start, end) of a partition key as aware UTC datetimes, in the partitions' timezone."""
    return week_window(week, weekly_partitions.timezone)
