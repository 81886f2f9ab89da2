"""Dagster's Celery executor, really run: a week's steps on two Celery workers through RabbitMQ.

The production profile (PostgreSQL for Dagster's instance and the tables, the S3 server for media), the
broker these machines run (127.0.0.1:5672, guest/guest), two `dagster-celery worker` processes with one
task slot each and their own temp and cache folders, and `dagster asset materialize` as the run's
orchestrator. The module builds its week once (a few minutes), with one worker killed as the render
starts on it, and its tests check that one build. It listens on a queue of its own, so parallel runs
on one broker never take each other's steps.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import boto3
import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.defs.executors import CELERY_CONFIG_SOURCE, celery_config
from montage_pipeline.platform.models import WeeklyMontage
from montage_pipeline.settings import ExecutorSettings, Secret
from montage_pipeline_tests.databases import dagster_instance_env, fresh_database

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WEEK = "2025-01-27"
BROKER = os.environ.get("MONTAGE_TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
SMALL_RENDER = '{"ops": {"montage_renders": {"config": {"width_scale": 0.25, "fps": 30}}}}'
# Under `pytest -n 2 --dist loadgroup` (make test) the module's tests run on one xdist worker, so the
# module-scoped week is built once, not once per worker.
pytestmark = [pytest.mark.xdist_group("celery_week"), pytest.mark.long]
STEPS = (
    "selected_clips",
    "scene_segments",
    "scored_highlights",
    "montage_renders",
    "mixed_audio",
    "s3_exports",
)


def test_the_workers_config_says_what_the_executor_says() -> None:
    """Workers started from deploy/celery_worker.yaml ack late and give a dead worker's task back, as the
    executor's own app does; a mismatch would leave steps waiting or lost."""
    worker = yaml.safe_load((REPO / "deploy" / "celery_worker.yaml").read_text())["execution"]["config"]
    ours = celery_config(ExecutorSettings(celery_broker=Secret("MONTAGE_CELERY_BROKER", "amqp://x")))
    assert worker["broker"] == ours["broker"] == {"env": "MONTAGE_CELERY_BROKER"}
    assert worker["backend"] == ours["backend"]
    assert worker["config_source"] == CELERY_CONFIG_SOURCE
    assert ours["config_source"]["task_default_queue"] == "dagster"


@dataclass
class CeleryWeek:
    env: dict[str, str]
    tmp: Path
    db_url: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start_workers(self, *names: str) -> None:
        """Start the workers side by side (each takes seconds to boot), then wait until each is ready."""
        for name in names:
            self.spawn_worker(name)
        for name in names:
            _wait_for(partial(self.booted, name), 120, f"worker {name} ready")
            assert self.workers[name].poll() is None, self.log(name).read_text(errors="replace")[-3000:]

    def booted(self, name: str) -> bool:
        """The worker said it is ready, or it died trying."""
        text = self.log(name).read_text(errors="replace")
        return "ready." in text or self.workers[name].poll() is not None

    def spawn_worker(self, name: str) -> None:
        home = self.tmp / name
        (home / "tmp").mkdir(parents=True)
        env = {**self.env, "MONTAGE_HOME": str(home / "montage"), "TMPDIR": str(home / "tmp")}
        args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
        args += [
            "-y",
            str(REPO / "deploy" / "celery_worker.yaml"),
            "-q",
            env["MONTAGE_CELERY_QUEUE"],
            # A node name unique on the broker: another run's worker "w1" on this host holds the
            # exclusive `w1@host.celery.pidbox` queue, and a second one would die on RESOURCE_LOCKED.
            "-n",
            f"{name}-{env['MONTAGE_CELERY_QUEUE']}",
        ]
        args += ["--", "--concurrency=1", "--without-gossip", "--without-mingle"]
        with self.log(name).open("wb") as out:
            self.workers[name] = subprocess.Popen(
                args, env=env, cwd=self.tmp, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def steps_run_by(self, name: str) -> set[str]:
        """Steps this worker started (a worker's log carries the Dagster events of the steps it runs)."""
        text = self.log(name).read_text(errors="replace")
        return {s for s in STEPS if f'Started execution of step "{s}"' in text}

    def checks(self) -> list[str]:
        """Each check's result as the workers logged it: 'meets_platform_spec landscape_render passed'."""
        text = "".join(self.log(name).read_text(errors="replace") for name in self.workers)
        found = re.findall(r"Asset check '(\w+)' on '(\w+)' (\w+)", text)
        return [" ".join(m) for m in found]

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait(30)

    def stop(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)

    def materialize(self) -> subprocess.Popen[bytes]:
        # Everything up to the export (every step in STEPS and what they read); the posts and their
        # engagement after it add nothing to what this module checks of the executor.
        args = [str(BIN / "dagster"), "asset", "materialize", "--select", "*s3_exports", "--partition", WEEK]
        args += ["-m", "montage_pipeline.definitions", "--config-json", SMALL_RENDER]
        with self.log("run").open("wb") as out:
            return subprocess.Popen(args, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def montage(self) -> WeeklyMontage | None:
        engine = create_engine(self.db_url)
        try:
            with Session(engine) as session:
                return session.scalars(select(WeeklyMontage)).one_or_none()
        finally:
            engine.dispose()


def _wait_for(done: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def celery_db_urls() -> Iterator[tuple[str, str]]:
    """The platform's database and the Dagster instance's, fresh for this module's one week."""
    with fresh_database() as platform_url, fresh_database() as instance_url:
        yield platform_url, instance_url


@pytest.fixture(scope="module")
def celery_week(
    tmp_path_factory: pytest.TempPathFactory, celery_db_urls: tuple[str, str], s3_endpoint: str
) -> Iterator[CeleryWeek]:
    """A seeded week (4 small clips) on the production profile and a Dagster instance on PostgreSQL."""
    tmp_path = tmp_path_factory.mktemp("celery_week")
    pg_url, instance_url = celery_db_urls
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    env = {
        **os.environ,
        **dagster_instance_env(tmp_path / "dagster_home", instance_url),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the workers run `celery`
        "MONTAGE_PROFILE": "production",
        "MONTAGE_HOME": str(tmp_path / "orchestrator"),
        "MONTAGE_DATABASE_URL": pg_url,
        "MONTAGE_STORAGE_ROOT": str(tmp_path / "uploads"),
        "MONTAGE_S3_BUCKET": bucket,
        "MONTAGE_S3_ENDPOINT_URL": s3_endpoint,
        "MONTAGE_S3_REGION": "us-east-1",
        "WEEKLY_MONTAGE_DURATION": "20",
        "MONTAGE_EXECUTOR": "celery",
        "MONTAGE_CELERY_BROKER": BROKER,
        "MONTAGE_CELERY_QUEUE": f"montage-test-{uuid.uuid4().hex[:8]}",
    }
    _run([str(BIN / "montage"), "db", "upgrade"], env)
    # The instance's tables, made once before the two workers boot side by side: each would otherwise
    # create them on the empty database at once, and the second died on "type event_logs already exists".
    _run([str(BIN / "dagster"), "instance", "migrate"], env)
    _run([str(BIN / "montage"), "seed", "demo", "--week", WEEK, "--clips", "4", "--size", "320x180"], env)
    week = CeleryWeek(env, tmp_path, pg_url)
    try:
        yield week
    finally:
        week.stop()


@dataclass
class KilledWeek:
    """The week as two workers built it, one of them SIGKILLed as the render step started on it."""

    week: CeleryWeek
    run: subprocess.Popen[bytes]
    victim: str
    survivor: str


@pytest.fixture(scope="module")
def killed_week(celery_week: CeleryWeek) -> KilledWeek:
    """One build shared by this module's tests (a 4-clip week through Celery costs minutes): both
    workers take steps, and the one that starts the render is killed there, mid-week."""
    celery_week.start_workers("w1", "w2")
    run = celery_week.materialize()

    def renders_started() -> str | None:
        for name in ("w1", "w2"):
            if 'Started execution of step "montage_renders"' in celery_week.log(name).read_text(
                errors="replace"
            ):
                return name
        return None

    _wait_for(
        lambda: renders_started() is not None or run.poll() is not None, 600, "the render step to start"
    )
    victim = renders_started()
    assert victim is not None, celery_week.log("run").read_text(errors="replace")[-3000:]
    celery_week.kill(victim)
    run.wait(900)
    return KilledWeek(celery_week, run, victim, "w2" if victim == "w1" else "w1")


def test_a_week_is_built_by_two_celery_workers(killed_week: KilledWeek) -> None:
    """The run succeeds, its blocking checks pass on the workers and the export row is written."""
    week, run = killed_week.week, killed_week.run
    output = week.log("run").read_text(errors="replace")
    assert run.returncode == 0 and "RUN_SUCCESS" in output, output[-4000:]
    # The blocking checks ran on the workers and passed (a failed one would have stopped the run).
    checks = week.checks()
    for output_name in ("landscape_render", "portrait_render", "mixed_audio"):
        assert any(c.split()[1:] == [output_name, "passed"] for c in checks), checks
    montage = week.montage()
    assert montage is not None and montage.render_path_landscape and montage.render_path_portrait
    assert montage.export_files and "final_landscape.mp4" in montage.export_files
    by_worker = {name: week.steps_run_by(name) for name in ("w1", "w2")}
    assert by_worker["w1"] | by_worker["w2"] == set(STEPS), by_worker
    # Each step ran once, but the render, which the killed worker had started.
    assert by_worker["w1"] & by_worker["w2"] == {"montage_renders"}, by_worker
    # Both workers took steps of their own besides that render (the broker shares the week's steps).
    assert by_worker["w1"] - {"montage_renders"} and by_worker["w2"] - {"montage_renders"}, by_worker


def test_a_step_on_a_worker_that_dies_is_run_again_by_the_other(killed_week: KilledWeek) -> None:
    week = killed_week.week
    assert week.workers[killed_week.victim].returncode == -signal.SIGKILL
    assert "montage_renders" in week.steps_run_by(killed_week.survivor)
    # The rerun finished on the survivor, and everything after the render ran there too.
    survivor_log = week.log(killed_week.survivor).read_text(errors="replace")
    assert 'Finished execution of step "montage_renders"' in survivor_log, survivor_log[-3000:]
    assert {"mixed_audio", "s3_exports"} <= week.steps_run_by(killed_week.survivor)


def test_the_chunked_render_is_shared_by_two_workers(celery_week: CeleryWeek) -> None:
    """MONTAGE_RENDER_CHUNKS=2 on the orchestrator and the workers (a queue of its own, so the other
    tests' workers, loaded without it, never take these steps): the worker that starts the first chunk
    step is SIGKILLed right then; the broker gives that step's task (acknowledged only when it ends) to
    the other worker, which renders the chunk again, the pieces pass through S3 and the join's blocking
    checks pass."""
    env = {
        **celery_week.env,
        "MONTAGE_RENDER_CHUNKS": "2",
        "MONTAGE_CELERY_QUEUE": f"montage-chunks-{uuid.uuid4().hex[:8]}",
    }
    week = CeleryWeek(env, celery_week.tmp / "chunked", celery_week.db_url)
    week.tmp.mkdir()
    # The instance's pools allow one step each by default: two workers need two render slots.
    _run([str(BIN / "dagster"), "instance", "concurrency", "set", "render", "2"], env)
    chunk = re.compile(r'Started execution of step "montage_renders\.render_chunk\[(chunk_\d+)\]"')

    def first_chunk() -> tuple[str, str] | None:
        for name in ("w1", "w2"):
            started = chunk.search(week.log(name).read_text(errors="replace"))
            if started:
                return name, started.group(1)
        return None

    try:
        week.start_workers("w1", "w2")
        args = [str(BIN / "dagster"), "asset", "materialize", "-m", "montage_pipeline.definitions"]
        args += ["--select", "eligible_jobs,selected_clips,scene_segments,scored_highlights"]
        args[-1] += ",landscape_render,portrait_render"
        args += ["--partition", WEEK, "--config-json", SMALL_RENDER]
        with week.log("run").open("wb") as out:
            run = subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        _wait_for(lambda: first_chunk() is not None or run.poll() is not None, 600, "a chunk step")
        started = first_chunk()
        assert started is not None, week.log("run").read_text(errors="replace")[-3000:]
        victim, killed = started
        week.kill(victim)
        # S3 keeps seconds: anything stored from this second on was not the dead worker's.
        killed_at = datetime.now(UTC).replace(microsecond=0)
        run.wait(900)
    finally:
        week.stop()
    survivor = "w2" if victim == "w1" else "w1"
    output = week.log("run").read_text(errors="replace")
    assert run.returncode == 0 and "RUN_SUCCESS" in output, output[-4000:]
    # The broker redelivered the task, not Dagster's retry policy: the step never failed.
    assert "STEP_UP_FOR_RETRY" not in output and "STEP_FAILURE" not in output, output[-4000:]
    logs = {n: week.log(n).read_text(errors="replace") for n in ("w1", "w2")}
    by_worker = {n: set(chunk.findall(text)) for n, text in logs.items()}
    # The dead worker got as far as starting its chunk; the survivor rendered every chunk, that one too.
    assert by_worker[victim] == {killed}, by_worker
    assert by_worker[survivor] == {"chunk_0", "chunk_1"}, by_worker
    done = f'Finished execution of step "montage_renders.render_chunk[{killed}]"'
    assert done in logs[survivor] and done not in logs[victim]
    assert 'Finished execution of step "montage_renders.join_render"' in logs[survivor]
    checks = week.checks()
    for name in ("landscape_render", "portrait_render"):
        assert f"meets_platform_spec {name} passed" in checks, checks
    s3 = boto3.client("s3", endpoint_url=env["MONTAGE_S3_ENDPOINT_URL"], region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=env["MONTAGE_S3_BUCKET"])["Contents"]
    names = {o["Key"] for o in listed}
    for name in ("landscape_render", "portrait_render"):
        bundle = {k.rsplit("/", 1)[1] for k in names if f"/weeks/{WEEK}/{name}/" in f"/{k}"}
        assert bundle == {"video.mp4", "thumbnail.jpg", "contact_sheet.jpg", "manifest.json"}, bundle
    # The killed chunk's pieces, via S3, were all stored after the kill: by the survivor.
    pieces = [o for o in listed if f"/render/{killed}/" in f"/{o['Key']}"]
    assert {"landscape_render", "portrait_render"} <= {o["Key"].split("/")[-2] for o in pieces}, pieces
    assert all(o["LastModified"] >= killed_at for o in pieces), (killed_at, pieces)
