"""The weekly partitions every montage asset carries.

Keys are the Monday a week starts (`2025-01-27`); the window is [Monday 00:00, next Monday 00:00) UTC,
as the platform's seed defines a week. No hour offset: an offset would move the window itself, not the
schedule (the schedule's `hour_of_day=2` does that, see automation.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

FIRST_WEEK = "2024-01-01"  # a Monday; the earliest week that can be built or backfilled

weekly_partitions = dg.WeeklyPartitionsDefinition(start_date=FIRST_WEEK, day_offset=1, timezone="UTC")


def week_window(partition_key: str) -> tuple[datetime, datetime]:
    """[start, end) of a week key as aware UTC datetimes, computed by the partitions definition itself."""
    window = weekly_partitions.time_window_for_partition_key(partition_key)
    return window.start.astimezone(UTC), window.end.astimezone(UTC)


def week_start_of(moment: datetime) -> datetime:
    """Monday 00:00 UTC of the week that contains `moment`."""
    moment = moment.astimezone(UTC)
    monday = moment - timedelta(days=moment.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def parse_week(key: str) -> datetime:
    """Validate a week key (a Monday, ISO date) and return its start; raises ValueError with the reason."""
    try:
        start = datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"week {key!r} is not an ISO date like 2025-01-27") from exc
    if start.weekday() != 0:
        raise ValueError(f"week {key!r} is a {start:%A}: weeks start on Monday")
    return start
