"""The weekly partitions every montage asset carries.

Keys are the Monday a week starts (`2025-01-27`); the window is [Monday 00:00, next Monday 00:00) in
the weeks' timezone, UTC by default as the platform's seed defines a week. `MONTAGE_WEEK_TIMEZONE` (an
IANA name such as `America/New_York`) moves both the window and the schedule's tick to local time:
Dagster runs a partitioned job's schedule in its partitions' timezone, so the two cannot disagree. Set it
once, before the first week is built: a week built under one timezone is a different window under
another. No hour offset: an offset would move the window itself, not the schedule (the schedule's
`hour_of_day=2` does that, see automation.py).

The start, the timezone and the windows come from `montage_pipeline.weeks`, which the seeder and the
importer use without Dagster; `test_partitions_and_schedule.py` checks that both cut the same weeks.
"""

from __future__ import annotations

import dagster as dg

from montage_pipeline.weeks import FIRST_WEEK, week_timezone

weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK, day_offset=1, timezone=week_timezone()
)
