"""A backfill of many weeks through the run queue of each instance we ship (production: the repo-root
dagster.yaml; embedded: .dagster_home/dagster.yaml).

Dagster's own queue daemon decides what starts; only the launcher records launches instead of starting
processes. What an admin expects from a 6-week backfill plus a manual rerun of one of its weeks: at most
`max_concurrent_runs` at once, and never two runs of the same week at the same time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, create_test_daemon_workspace_context
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

ROOT = Path(__file__).resolve().parents[1]
WEEKS = ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-02-03", "2025-02-10"]


@pytest.mark.parametrize("instance_yaml", ["dagster.yaml", ".dagster_home/dagster.yaml"])
def test_a_backfill_of_many_weeks_stays_within_the_run_limits(instance_yaml: str) -> None:
    shipped = yaml.safe_load((ROOT / instance_yaml).read_text())
    overrides = {
        "concurrency": shipped["concurrency"],
        "run_launcher": {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"},
    }
    limit = shipped["concurrency"]["runs"]["max_concurrent_runs"]
    with dg.instance_for_test(overrides=overrides) as instance:
        origin = RemoteJobOrigin(
            RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("montage_pipeline"), "__repository__"),
            "weekly_montage_job",
        )
        queued: dict[str, str] = {}
        # A manual rerun of the first week is queued right behind it, then the rest of the backfill.
        for week in [WEEKS[0], *WEEKS]:
            run = create_run_for_test(
                instance,
                job_name="weekly_montage_job",
                status=DagsterRunStatus.QUEUED,
                remote_job_origin=origin,
                tags={"dagster/partition": week, "dagster/backfill": "bf1", "montage/job": "weekly"},
            )
            queued[run.run_id] = week
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        rounds: list[list[str]] = []
        with create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as context:
            while len(rounds) < len(queued) and sum(map(len, rounds)) < len(queued):
                list(daemon.run_iteration(context))
                in_flight = [r for r in instance.get_runs() if r.status == DagsterRunStatus.STARTING]
                assert len(in_flight) <= limit
                weeks = Counter(r.tags["dagster/partition"] for r in in_flight)
                assert max(weeks.values(), default=0) <= 1, f"two runs of one week at once: {weeks}"
                rounds.append(sorted(queued[r.run_id] for r in in_flight))
                for run in in_flight:  # this round's runs finish before the next tick
                    instance.report_dagster_event(
                        DagsterEvent(DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name), run.run_id
                    )
    # The limit binds: the first tick starts `limit` weeks and holds the rerun back behind its week.
    assert rounds[0] == WEEKS[:limit]
    assert sorted(w for r in rounds for w in r) == sorted(queued.values())  # every run ran, once
    assert WEEKS[0] in rounds[1]  # the rerun, first in line once its week was done
    assert len(rounds[1]) == min(limit, len(queued) - limit)  # and the queue keeps the slots full
