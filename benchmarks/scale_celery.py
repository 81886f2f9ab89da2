"""bench_scale.py's Celery mode: a week's heavy steps on Dagster's Celery executor, 1 worker on 1 core
against 2 workers on a core each (`taskset`).

The production profile as the Celery tests run it: PostgreSQL for Dagster's instance and the tables
(throwaway databases on the local server), an S3 server (moto, in this process) for media and the rows
between steps, the local RabbitMQ broker. The week is seeded once; each configuration then runs
selection → per-clip analysis → scoring → the chunked render (MONTAGE_ANALYSIS_FANOUT=per_clip,
MONTAGE_RENDER_CHUNKS=n) from a cold analysis cache, with `dagster asset materialize` as the run's
orchestrator (not pinned: it only submits tasks and polls) and workers with their own temp and cache
folders.

Figures from Dagster's event log (the workers write their steps' events to the shared instance as they
happen): the analysis and render wall times (first task submitted to last step done), the run's wall
time, and per step Dagster's orchestration overhead: STEP_START minus the later of the task's submission
and the end of the previous step on the same worker (broker delivery, the worker loading the run and
building the step's plan; time spent queued behind another step is not overhead).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
from _common import markdown_table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WEEK = "2025-01-27"
BROKER = os.environ.get("MONTAGE_TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
SELECTION = "eligible_jobs,selected_clips,scene_segments,scored_highlights,landscape_render,portrait_render"
CONFIGURATIONS = {"1 worker, 1 core": ("0",), "2 workers, a core each": ("0", "1")}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def _wait_for(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def _start_worker(env: dict[str, str], home: Path, name: str, core: str) -> subprocess.Popen[bytes]:
    """A `dagster-celery` worker with one task slot, pinned to `core`, with its own temp and cache."""
    (home / "tmp").mkdir(parents=True)
    worker_env = {**env, "MONTAGE_HOME": str(home / "montage"), "TMPDIR": str(home / "tmp")}
    args = ["taskset", "-c", core, str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
    args += ["-y", str(REPO / "deploy" / "celery_worker.yaml"), "-q", env["MONTAGE_CELERY_QUEUE"], "-n", name]
    args += ["--", "--concurrency=1", "--without-gossip", "--without-mingle"]
    log = home / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=worker_env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    _wait_for(lambda: "ready." in log.read_text(errors="replace"), 180, f"worker {name} ready")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


class _S3Requests(logging.Handler):
    """Counts the S3 server's requests by method (moto logs one line per request through werkzeug)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        for method in ("GET", "PUT", "HEAD", "POST", "DELETE"):
            if f'"{method} ' in record.getMessage():
                self.counts[method] = self.counts.get(method, 0) + 1


def _stored_mb(endpoint: str, bucket: str) -> dict[str, float]:
    """MB in the bucket by top folder under the prefix (analysis cache, runs/, weeks/)."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    sizes: dict[str, float] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            top = next((p for p in ("analysis", "runs", "weeks") if f"/{p}/" in f"/{obj['Key']}"), "other")
            sizes[top] = sizes.get(top, 0.0) + obj["Size"] / 1e6
    return sizes


def _clear_between_runs(endpoint: str, bucket: str) -> None:
    """Remove every cached clip analysis (so each configuration decodes the week's clips) and the last
    run's step values and pieces (so the bucket's `runs/` holds one run's)."""
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if "/analysis/" in f"/{obj['Key']}" or "/runs/" in f"/{obj['Key']}":
                s3.delete_object(Bucket=bucket, Key=obj["Key"])


def _stage(step_key: str) -> str | None:
    if step_key.startswith("scene_segments"):
        return "analysis"
    if step_key.startswith("montage_renders"):
        return "render"
    return None


@dataclass
class _Step:
    """One step's moments in the event log."""

    submit: float | None = None  # the orchestrator sent the task to the broker
    worker: str = "?"
    start: float | None = None
    end: float | None = None


def _timings(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, _Step], dict[str, float]]:
    steps: dict[str, _Step] = {}
    run: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind, t = event.event_type_value, record.timestamp
        if kind in ("PIPELINE_START", "PIPELINE_SUCCESS"):
            run[kind] = t
        if not event.step_key:
            continue
        step = steps.setdefault(str(event.step_key), _Step())
        message = event.message or record.user_message or ""
        if kind == "ENGINE_EVENT" and message.startswith("Submitting celery task"):
            step.submit = step.submit if step.submit is not None else t
        elif kind == "ENGINE_EVENT" and "Executing steps" in message:  # "[CeleryExecutor] Executing ..."
            meta = event.engine_event_data.metadata if event.engine_event_data else {}
            worker = meta.get("Celery worker")
            step.worker = str(worker.value) if worker is not None else "?"
        elif kind == "STEP_START":
            step.start = step.start if step.start is not None else t
        elif kind == "STEP_SUCCESS":
            step.end = t
    return steps, run


def figures(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The run's wall times and per-step overhead from its event log (timestamps in seconds)."""
    steps, run = _timings(instance, run_id)
    done = {
        k: (s.submit, s.start, s.end, s.worker)
        for k, s in steps.items()
        if s.submit is not None and s.start is not None and s.end is not None
    }
    overhead = []
    for submit, start, _, worker in done.values():
        previous_end = max((e for _, st, e, w in done.values() if w == worker and e <= start), default=0.0)
        overhead.append(start - max(submit, previous_end))

    def wall(stage: str) -> float:
        mine = [v for k, v in done.items() if _stage(k) == stage]
        return max(v[2] for v in mine) - min(v[0] for v in mine)

    return {
        "steps": len(done),
        "analysis_steps": sum(1 for k in done if _stage(k) == "analysis"),
        "render_steps": sum(1 for k in done if _stage(k) == "render"),
        "analysis_wall_s": wall("analysis"),
        "render_wall_s": wall("render"),
        "run_wall_s": run["PIPELINE_SUCCESS"] - run["PIPELINE_START"],
        "overhead_s": overhead,
        "events": len(instance.all_logs(run_id)),
        "workers": sorted({v[3] for v in done.values()}),
    }


def run_celery_mode(clips: int, size: str, chunks: int, target_s: float, render_scale: float) -> None:
    """Seed once, run each configuration, print the table."""
    from moto.server import ThreadedMotoServer

    sys.path.insert(0, str(REPO))  # the suite's throwaway PostgreSQL databases
    from montage_pipeline_tests.databases import dagster_instance_env, fresh_database

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    rows: list[tuple[str, dict[str, object]]] = []
    requests = _S3Requests()
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.addHandler(requests)
    werkzeug.propagate = False  # counted, not printed
    with ExitStack() as stack:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        stack.callback(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        instance_url = stack.enter_context(fresh_database())
        tables_url = stack.enter_context(fresh_database())
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-celery-")))
        env = {
            **os.environ,
            **dagster_instance_env(work / "dagster_home", instance_url),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "MONTAGE_PROFILE": "production",
            "MONTAGE_HOME": str(work / "orchestrator"),
            "MONTAGE_DATABASE_URL": tables_url,
            "MONTAGE_STORAGE_ROOT": str(work / "uploads"),
            "MONTAGE_S3_BUCKET": bucket,
            "MONTAGE_S3_ENDPOINT_URL": endpoint,
            "MONTAGE_S3_REGION": "us-east-1",
            "MONTAGE_EXECUTOR": "celery",
            "MONTAGE_ANALYSIS_FANOUT": "per_clip",
            "MONTAGE_RENDER_CHUNKS": str(chunks),
            "MONTAGE_CELERY_BROKER": BROKER,
            "MONTAGE_CELERY_QUEUE": f"bench-scale-{uuid.uuid4().hex[:8]}",
        }
        montage = str(BIN / "montage")
        print(f"seeding {clips} clips at {size} ...", flush=True)
        _run([montage, "db", "upgrade"], env)
        _run([montage, "seed", "demo", "--week", WEEK, "--clips", str(clips), "--size", size], env)
        # The instance's pools allow one step each by default: two workers need two slots per pool.
        for pool in ("analysis", "render"):
            _run([str(BIN / "dagster"), "instance", "concurrency", "set", pool, "2"], env)
        config = {
            "ops": {
                "scored_highlights": {"config": {"target_duration_s": target_s, "min_clips": min(3, clips)}},
                "montage_renders": {"config": {"width_scale": render_scale, "fps": 30}},
            }
        }
        for label, cores in CONFIGURATIONS.items():
            print(f"{label} ...", flush=True)
            _clear_between_runs(endpoint, bucket)
            requests.counts = {}
            homes = work / f"workers-{len(cores)}"
            workers = []
            try:
                for i, core in enumerate(cores):
                    workers.append(
                        _start_worker(env, homes / f"w{i + 1}", f"w{i + 1}-{uuid.uuid4().hex[:4]}", core)
                    )
                args = [str(BIN / "dagster"), "asset", "materialize", "-m", "montage_pipeline.definitions"]
                args += ["--select", SELECTION, "--partition", WEEK, "--config-json", json.dumps(config)]
                out = _run(args, env)
                if "RUN_SUCCESS" not in out:
                    raise SystemExit(out[-3000:])
            finally:
                for proc in workers:
                    _stop(proc)
            found = _latest_run_figures(env)
            found["s3_requests"] = dict(requests.counts)
            found["stored_mb"] = _stored_mb(endpoint, bucket)
            rows.append((label, found))
            print(json.dumps({label: found}), flush=True)  # the raw figures, for docs/scale.md
    _print_table(rows, clips, size, chunks, target_s, render_scale)


def _latest_run_figures(env: dict[str, str]) -> dict[str, object]:
    """The figures of the instance's newest run (the one just made), read with the run's environment."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_")})
    try:
        with dg.DagsterInstance.get() as instance:
            run = instance.get_runs(limit=1)[0]
            return figures(instance, run.run_id)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _print_table(
    rows: list[tuple[str, dict[str, object]]],
    clips: int,
    size: str,
    chunks: int,
    target_s: float,
    scale: float,
) -> None:
    base = rows[0][1]
    print(
        f"\n{clips} generated clips at {size}, cold analysis cache; per-clip analysis, the main cut "
        f"({target_s:.0f} s target) rendered at width_scale {scale:g} in up to {chunks} chunk steps; "
        f"Dagster's Celery executor, {os.cpu_count()} cores\n"
    )
    headers = (
        "workers",
        "steps (analysis / render)",
        "analysis wall s",
        "render wall s",
        "run wall s",
        "speed-up analysis / render / run",
        "launch → start per step s (mean / max)",
    )
    cells: list[tuple[str, ...]] = []
    for name, f in rows:
        over: list[float] = f["overhead_s"]  # type: ignore[assignment]
        speed = " / ".join(
            f"{float(base[k]) / float(f[k]):.2f}×"  # type: ignore[arg-type]
            for k in ("analysis_wall_s", "render_wall_s", "run_wall_s")
        )
        cells.append(
            (
                name,
                f"{f['steps']} ({f['analysis_steps']} / {f['render_steps']})",
                f"{f['analysis_wall_s']:.1f}",
                f"{f['render_wall_s']:.1f}",
                f"{f['run_wall_s']:.1f}",
                speed,
                f"{statistics.mean(over):.2f} / {max(over):.2f}",
            )
        )
    print(markdown_table(cells, headers))
    for name, f in rows:
        print(
            f"\n{name}: {f['events']} event log entries; S3 requests {f['s3_requests']}; "
            f"stored MB {json.dumps({k: round(v, 2) for k, v in f['stored_mb'].items()})}"  # type: ignore[attr-defined]
        )
