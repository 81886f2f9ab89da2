from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from montage_pipeline.defs.automation import build_weekly_schedule
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.settings import ScheduleSettings
from montage_pipeline.weeks import FIRST_WEEK, parse_week, week_key, week_row_key, week_window


def test_a_week_is_monday_to_monday_utc() -> None:
    start, end = week_window("2025-01-27")
    assert start == datetime(2025, 1, 27, tzinfo=UTC)
    assert end == datetime(2025, 2, 3, tzinfo=UTC)
    assert (
        weekly_partitions.get_partition_key_for_timestamp(
            datetime(2025, 2, 2, 23, 59, 59, tzinfo=UTC).timestamp()
        )
        == "2025-01-27"
    )
    assert (
        weekly_partitions.get_partition_key_for_timestamp(datetime(2025, 2, 3, tzinfo=UTC).timestamp())
        == "2025-02-03"
    )
    assert week_window(week_key(datetime(2025, 2, 2, 23, 59, 59, tzinfo=UTC)))[0] == start


def test_week_keys_are_validated() -> None:
    assert parse_week("2025-01-27") == datetime(2025, 1, 27, tzinfo=UTC)
    with pytest.raises(ValueError, match="Tuesday"):
        parse_week("2025-01-28")
    with pytest.raises(ValueError, match="ISO date"):
        parse_week("27/01/2025")


def test_the_platform_rows_key_a_week_by_its_monday_at_utc_midnight_whatever_the_timezone() -> None:
    """One row per week in weekly_montages / social_posts / notifications: the key's Monday 00:00 UTC,
    which is the window's start only for UTC weeks (New York's week starts five hours later)."""
    assert week_row_key("2025-01-27") == datetime(2025, 1, 27, tzinfo=UTC) == week_window("2025-01-27")[0]
    new_york = week_window("2025-01-27", "America/New_York")[0]
    assert new_york == datetime(2025, 1, 27, 5, tzinfo=UTC) != week_row_key("2025-01-27")
    with pytest.raises(ValueError, match="Tuesday"):
        week_row_key("2025-01-28")


@pytest.mark.parametrize(
    "timezone",
    ["UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "America/Santiago"],
)
def test_dagster_free_weeks_cut_the_same_weeks_as_the_partitions(timezone: str) -> None:
    """`weeks.py` (seeder, importer, sensors) and the partitions definition agree, week by week, on the
    window and on which week an instant falls in, also across daylight-saving changes."""
    partitions = dg.WeeklyPartitionsDefinition(start_date=FIRST_WEEK, day_offset=1, timezone=timezone)
    keys = partitions.get_partition_keys(current_time=datetime(2027, 1, 1, tzinfo=UTC))
    assert len(keys) > 150
    for key in keys:
        window = partitions.time_window_for_partition_key(key)
        start, end = week_window(key, timezone)
        assert (start, end) == (window.start.astimezone(UTC), window.end.astimezone(UTC)), key
        for moment in (start, start + timedelta(hours=80), end - timedelta(seconds=1)):
            assert week_key(moment, timezone) == key
            assert partitions.get_partition_key_for_timestamp(moment.timestamp()) == key
            assert week_window(week_key(moment, timezone), timezone)[0] == start


def test_monday_0200_tick_builds_the_week_that_just_ended() -> None:
    schedule = build_weekly_schedule(ScheduleSettings())
    from montage_pipeline.definitions import defs

    resolved = defs.get_schedule_def(schedule.name)
    assert resolved.cron_schedule == "0 2 * * 1"
    assert resolved.execution_timezone == "UTC"
    # Both closed here: a context left open re-enters its instance's state storage when it is collected,
    # which breaks every later Definitions load in this process.
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2025, 2, 3, 2, 0, tzinfo=UTC)
        ) as context,
    ):
        result = resolved.evaluate_tick(context)
    assert result.run_requests is not None
    assert [r.partition_key for r in result.run_requests] == ["2025-01-27"]


_LOCAL_TICK = """
import json
from datetime import datetime
from zoneinfo import ZoneInfo
import dagster as dg
from montage_pipeline.definitions import defs
from montage_pipeline.settings import load_settings
from montage_pipeline.weeks import week_window
schedule = defs.get_schedule_def("weekly_montage_schedule")
tick = datetime(2025, 2, 3, 2, 0, tzinfo=ZoneInfo("America/New_York"))
with dg.instance_for_test() as instance:
    result = schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
    )
start, end = week_window("2025-01-27", load_settings().week_timezone)
print(json.dumps({
    "cron": schedule.cron_schedule,
    "timezone": schedule.execution_timezone,
    "keys": [r.partition_key for r in result.run_requests or []],
    "window": [start.isoformat(), end.isoformat()],
}))
"""


def _definitions_in(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_week_timezone_moves_window_and_tick_together() -> None:
    """A platform in New York cuts weeks at local midnight and ticks Monday 02:00 local time."""
    done = _definitions_in({"MONTAGE_WEEK_TIMEZONE": "America/New_York"}, _LOCAL_TICK)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["cron"] == "0 2 * * 1"
    assert seen["timezone"] == "America/New_York"
    assert seen["keys"] == ["2025-01-27"]
    assert seen["window"] == ["2025-01-27T05:00:00+00:00", "2025-02-03T05:00:00+00:00"]


def test_unknown_week_timezone_fails_at_load_naming_the_variable() -> None:
    done = _definitions_in({"MONTAGE_WEEK_TIMEZONE": "Mars/Olympus"}, "import montage_pipeline.definitions")
    assert done.returncode != 0
    assert "MONTAGE_WEEK_TIMEZONE='Mars/Olympus' is not an IANA timezone name" in done.stderr
