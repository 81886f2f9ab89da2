"""Week keys: the one meaning of "a week", without Dagster.

A key is the Monday a week starts (`2025-01-27`); the week is [Monday 00:00, next Monday 00:00) in the
weeks' timezone, UTC by default as the platform's seed defines a week. A deployment may cut weeks at
local midnight instead (`MONTAGE_WEEK_TIMEZONE`, an IANA name such as `America/New_York`, read with the
other settings in `settings.py`; callers pass `settings.week_timezone`), so a week that crosses a
daylight-saving change lasts 167 or 169 hours. Set it once, before the first week is built: a week built
under one timezone is a different window under another.

The seeder, the importer and the pipeline all read weeks here; the Dagster partitions
(`defs/partitions.py`) are built from the same start and timezone, and a test checks that both agree.
This module reads no environment: without a timezone, a week is the seed's UTC week.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FIRST_WEEK = "2024-01-01"  # a Monday; the earliest week that can be built or backfilled
DEFAULT_TIMEZONE = "UTC"  # the seed's week


def _monday(key: str) -> date:
    """The date a week key names; raises ValueError saying what is wrong with it."""
    try:
        day = datetime.strptime(key, "%Y-%m-%d").date()
    except ValueError as exc:
        raise ValueError(f"week {key!r} is not an ISO date like 2025-01-27") from exc
    if day.weekday() != 0:
        raise ValueError(f"week {key!r} is a {day:%A}: weeks start on Monday")
    return day


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """Local midnight of `day` in `tz`, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_row_key(key: str) -> datetime:
    """The instant the platform's tables store for a week: the key's Monday at 00:00 UTC.

    `weekly_montages.week_start`, `social_posts.week_start` and `montage_notifications.week_start` hold
    it. It names the week (one row per week, whatever the weeks' timezone); it is not where the week's
    window starts when weeks are cut at another timezone's midnight (`week_window` gives that).
    """
    return datetime.combine(_monday(key), time(0), tzinfo=UTC)


def week_window(key: str, timezone: str = DEFAULT_TIMEZONE) -> tuple[datetime, datetime]:
    """[start, end) of a week key as aware UTC datetimes: local Monday midnight to the next one."""
    monday = _monday(key)
    tz = ZoneInfo(timezone)
    return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)


def parse_week(key: str, timezone: str = DEFAULT_TIMEZONE) -> datetime:
    """Validate a week key (a Monday, ISO date) and return its start in UTC; raises ValueError with the
    reason."""
    return week_window(key, timezone)[0]


def week_key(moment: datetime, timezone: str = DEFAULT_TIMEZONE) -> str:
    """The key of the week that contains `moment` (naive datetimes are read as the machine's local time,
    as `datetime.timestamp` reads them)."""
    local = moment.astimezone(ZoneInfo(timezone))
    return (local.date() - timedelta(days=local.weekday())).isoformat()
