"""The cores' Python log lines reach the run's event log, with each shipped instance's `python_logs`."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from montage_pipeline_tests.publish_support import BuiltWeek, export_week

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("instance_yaml", ["dagster.yaml", ".dagster_home/dagster.yaml"])
def test_a_cores_log_line_shows_in_the_materialisations_event_log(
    built_week: BuiltWeek, instance_yaml: str
) -> None:
    python_logs = yaml.safe_load((ROOT / instance_yaml).read_text())["python_logs"]
    assert "montage_pipeline" in python_logs["managed_python_loggers"]
    with dg.instance_for_test(overrides={"python_logs": python_logs}) as instance:
        result = export_week(built_week, instance=instance)
        assert result.success
        entries = instance.all_logs(result.run_id)
    # publishing/exports.py logs each file with logging.getLogger(__name__), not with context.log.
    line = re.compile(r"exports/\S+ (unchanged|published) \(")
    core = [e for e in entries if e.dagster_event is None and line.search(e.user_message)]
    assert core, [e.user_message for e in entries if e.dagster_event is None]
    assert {e.step_key for e in core} == {"s3_exports"}
    assert {e.level for e in core} == {logging.INFO}
