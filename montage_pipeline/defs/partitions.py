"""The weekly partitions every montage asset carries.

Keys are the Monday a week starts (`2025-01-27`); the window is [Monday 00:00, next Monday 00:00) in
the weeks' timezone, UTC by default as the platform's seed defines a week. `MONTAGE_WEEK_TIMEZONE` (an
IANA name such as `America/New_York`) moves both the window and the schedule's tick to local time:
Dagster runs a partitioned job's schedule in its partitions' timezone, so the two cannot disagree. Set it
once, before the first week is built: a week built under one timezone is a different window under
another. No hour offset: an offset would move the window itself, not the schedule (the schedule's
`hour_of_day=2` does that, see automation.py).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

FIRST_WEEK = "2024-01-01"  # a Monday; the earliest week that can be built or backfilled


def week_timezone() -> str:
    """The IANA timezone weeks are cut in (`MONTAGE_WEEK_TIMEZONE`, default UTC); a bad name fails loudly."""
    name = os.environ.get("MONTAGE_WEEK_TIMEZONE", "").strip() or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"MONTAGE_WEEK_TIMEZONE={name!r} is not an IANA timezone name") from exc
    return name


weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_WEEK, day_offset=1, timezone=week_timezone()
)


def week_window(partition_key: str) -> tuple[datetime, datetime]:
    """[start, end) of a week key as aware UTC datetimes, computed by the partitions definition itself."""
    window = weekly_partitions.time_window_for_partition_key(partition_key)
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


def week_start_of(moment: datetime) -> datetime:
    """The start (as an aware UTC datetime) of the week that contains `moment`."""
    key = weekly_partitions.get_partition_key_for_timestamp(moment.timestamp())
    return week_window(key)[0]


def parse_week(key: str) -> datetime:
    """Validate a week key (a Monday, ISO date) and return its start in UTC; raises ValueError with the
    reason."""
    try:
        day = datetime.strptime(key, "%Y-%m-%d")
    except ValueError as exc:
        raise ValueError(f"week {key!r} is not an ISO date like 2025-01-27") from exc
    if day.weekday() != 0:
        raise ValueError(f"week {key!r} is a {day:%A}: weeks start on Monday")
    return week_window(key)[0]
