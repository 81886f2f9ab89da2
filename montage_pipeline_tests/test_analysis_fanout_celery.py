"""A week's per-clip analysis (MONTAGE_ANALYSIS_FANOUT=per_clip) shared by two real Celery workers.

The production profile (PostgreSQL for Dagster's instance and the tables, the S3 server for media and
for the rows between the steps), the broker these machines run, two `dagster-celery worker` processes
with one task slot each, their own temp and cache folders, on a queue of this test's own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from sqlalchemy import create_engine, text

from montage_pipeline_tests.databases import dagster_instance_env, fresh_database

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WEEK = "2025-01-27"
BROKER = os.environ.get("MONTAGE_TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
CLIP_STEP = re.compile(r'Started execution of step "(scene_segments\.analyse_clip\[\w+\])"')


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _wait_for(done: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def env(tmp_path: Path, pg_url: str, s3_endpoint: str) -> Iterator[dict[str, str]]:
    """A seeded week (4 small clips) on the production profile, Dagster's instance on PostgreSQL."""
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    with fresh_database() as instance_url:
        values = {
            **os.environ,
            **dagster_instance_env(tmp_path / "dagster_home", instance_url),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MONTAGE_PROFILE": "production",
            "MONTAGE_HOME": str(tmp_path / "orchestrator"),
            "MONTAGE_DATABASE_URL": pg_url,
            "MONTAGE_STORAGE_ROOT": str(tmp_path / "uploads"),
            "MONTAGE_S3_BUCKET": bucket,
            "MONTAGE_S3_ENDPOINT_URL": s3_endpoint,
            "MONTAGE_S3_REGION": "us-east-1",
            "MONTAGE_EXECUTOR": "celery",
            "MONTAGE_ANALYSIS_FANOUT": "per_clip",  # the orchestrator and every worker alike
            "MONTAGE_CELERY_BROKER": BROKER,
            "MONTAGE_CELERY_QUEUE": f"montage-fanout-{uuid.uuid4().hex[:8]}",
        }
        _run([str(BIN / "montage"), "db", "upgrade"], values)
        _run(
            [str(BIN / "montage"), "seed", "demo", "--week", WEEK, "--clips", "4", "--size", "320x180"],
            values,
        )
        # The instance's pools allow one step each by default: two workers need two analysis slots.
        _run([str(BIN / "dagster"), "instance", "concurrency", "set", "analysis", "2"], values)
        yield values


def _spawn_worker(env: dict[str, str], tmp: Path, name: str) -> subprocess.Popen[bytes]:
    home = tmp / name
    (home / "tmp").mkdir(parents=True)
    worker_env = {**env, "MONTAGE_HOME": str(home / "montage"), "TMPDIR": str(home / "tmp")}
    args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
    args += ["-y", str(REPO / "deploy" / "celery_worker.yaml"), "-q", env["MONTAGE_CELERY_QUEUE"], "-n", name]
    args += ["--", "--concurrency=1", "--without-gossip", "--without-mingle"]
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env=worker_env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(tmp: Path, name: str) -> None:
    log = tmp / f"{name}.log"
    _wait_for(lambda: "ready." in log.read_text(errors="replace"), 120, f"worker {name} ready")


@pytest.mark.long
def test_two_workers_share_the_weeks_clip_steps(env: dict[str, str], tmp_path: Path) -> None:
    workers = {}
    try:
        for name in ("w1", "w2"):  # side by side: each takes seconds to boot
            workers[name] = _spawn_worker(env, tmp_path, name)
        for name in workers:
            _wait_ready(tmp_path, name)
        args = [str(BIN / "dagster"), "asset", "materialize", "-m", "montage_pipeline.definitions"]
        args += ["--select", "eligible_jobs,selected_clips,scene_segments", "--partition", WEEK]
        out = _run(args, env)
        assert "RUN_SUCCESS" in out, out[-3000:]
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)

    by_worker = {n: CLIP_STEP.findall((tmp_path / f"{n}.log").read_text(errors="replace")) for n in workers}
    assert by_worker["w1"] and by_worker["w2"], f"one worker analysed every clip: {by_worker}"
    steps = by_worker["w1"] + by_worker["w2"]
    assert len(steps) == len(set(steps)), by_worker  # each clip analysed once
    engine = create_engine(env["MONTAGE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            selected = conn.execute(text("SELECT count(*) FROM montage_selected_clips")).scalar_one()
            analysed = conn.execute(
                text("SELECT count(DISTINCT clip_id) FROM montage_scene_segments")
            ).scalar_one()
    finally:
        engine.dispose()
    assert len(steps) == selected == analysed  # the assembled table holds every clip the workers analysed
