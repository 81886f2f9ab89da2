"""A week's analysis, in one step against one step per clip: wall time and Dagster's cost per step; with
`--celery`, the week's heavy steps (per-clip analysis, the chunked render) on Dagster's Celery executor,
1 worker on 1 core against 2 workers on a core each (`scale_celery.py`).

    .venv/bin/python benchmarks/bench_scale.py [--clips 8 --size 960x540]
    .venv/bin/python benchmarks/bench_scale.py --celery [--clips 8 --size 640x360 --chunks 2 --target 60]

One generated week on the embedded profile, selected once; then `scene_segments` alone, from a cold
analysis cache each time, in four ways, each in a fresh process (the form is read when the code
location loads, MONTAGE_ANALYSIS_FANOUT):
- in_step, multiprocess executor: one step (2 local worker processes inside it), the step's process
  started afresh (spawn) and forked from a preloaded server (forkserver, the code location's default);
- per_clip, in-process executor: every clip step in the run's own process, one after another;
- per_clip, multiprocess executor, max_concurrent 1 and 2: a process per clip step;
- per_clip, multiprocess executor with `start_method: forkserver`: each step forks from a server process
  that imported the code location once, instead of starting Python afresh.

Figures from Dagster's event log: the analysis wall time (first step launched to last step done), the
run's wall time, and per clip step the launch → start overhead (STEP_WORKER_STARTING → STEP_START: a
fresh Python process importing the code location) and the step's own duration.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))

WEEK = "2025-01-27"
MODES = {
    "in_step, multiprocess (spawn)": ("in_step", "multiprocess", 2),
    "in_step, multiprocess (forkserver: the default executor)": ("in_step", "forkserver", 2),
    "per_clip, in-process": ("per_clip", "in_process", 1),
    "per_clip, multiprocess, max_concurrent 1": ("per_clip", "multiprocess", 1),
    "per_clip, multiprocess, max_concurrent 2": ("per_clip", "multiprocess", 2),
    "per_clip, multiprocess (forkserver), max_concurrent 2": ("per_clip", "forkserver", 2),
}


def analysis_job() -> dg.JobDefinition:
    """`scene_segments` alone, in the form this process's environment picks (the child's)."""
    from montage_pipeline.defs.code_location import build_definitions

    # Dagster's own multiprocess executor, so each mode sets its start method (the code location's
    # default executor always forks from a preloaded server).
    job = dg.define_asset_job(
        "bench_analysis", selection=["scene_segments"], executor_def=dg.multiprocess_executor
    )
    defs = dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("bench_analysis")


def _is_analysis(step_key: str | None) -> bool:
    return bool(step_key) and str(step_key).startswith("scene_segments")


def _figures(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The run's figures from its event log (timestamps in seconds)."""
    events = [r.dagster_event for r in instance.all_logs(run_id) if r.dagster_event is not None]
    stamps = {
        r.dagster_event.event_type_value: r.timestamp for r in instance.all_logs(run_id) if r.dagster_event
    }
    by_step: dict[str, dict[str, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and _is_analysis(event.step_key):
            by_step.setdefault(str(event.step_key), {}).setdefault(event.event_type_value, record.timestamp)
    first = min(min(s.values()) for s in by_step.values())
    last = max(s.get("STEP_SUCCESS", 0.0) for s in by_step.values())
    clip_steps = {k: v for k, v in by_step.items() if "analyse_clip" in k or k == "scene_segments"}
    launch = [
        v["STEP_START"] - v["STEP_WORKER_STARTING"]
        for v in clip_steps.values()
        if "STEP_WORKER_STARTING" in v
    ]
    own = [v["STEP_SUCCESS"] - v["STEP_START"] for v in clip_steps.values()]
    materialization = next(
        e for e in events if e.event_type_value == "ASSET_MATERIALIZATION" and _is_analysis(e.step_key)
    )
    meta = materialization.event_specific_data.materialization.metadata  # type: ignore[union-attr]
    return {
        "steps": len(by_step),
        "analysis_wall_s": last - first,
        "run_wall_s": stamps["PIPELINE_SUCCESS"] - stamps["PIPELINE_START"],
        "launch_to_start_s": launch,
        "step_s": own,
        "clips_analysed": meta["clips_analysed"].value,
        "analysis_seconds": meta["analysis_seconds"].value,
    }


def _child(executor: str, concurrent: int, instance_dir: Path) -> None:
    """One measured run in this (fresh) process; prints its figures as JSON on the last line."""
    from montage_pipeline.defs.location_settings import settings

    shutil.rmtree(settings.profile.home / "media" / "analysis", ignore_errors=True)  # cold cache
    instance_dir.mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(instance_dir)) as instance:
        if executor == "in_process":
            in_process = analysis_job().execute_in_process(partition_key=WEEK, instance=instance)
            run_id = in_process.run_id
            assert in_process.success
        else:
            multiprocess: dict[str, object] = {"max_concurrent": concurrent, "start_method": {"spawn": {}}}
            if executor == "forkserver":  # steps fork from a server that imported the code location once
                multiprocess["start_method"] = {
                    "forkserver": {"preload_modules": ["montage_pipeline.definitions"]}
                }
            config = {"execution": {"config": multiprocess}}
            with dg.execute_job(
                dg.reconstructable(analysis_job),
                instance,
                run_config=config,
                tags={"dagster/partition": WEEK},
            ) as result:
                assert result.success
                run_id = result.run_id
        print(json.dumps(_figures(instance, run_id)))


def _seed(home: Path, clips: int, size: tuple[int, int]) -> None:
    from sqlalchemy.orm import Session

    from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
    from montage_pipeline.defs.code_location import build_definitions
    from montage_pipeline.platform.engine import make_engine
    from montage_pipeline.platform.migrate import upgrade
    from montage_pipeline.platform.seed_demo import seed_demo

    url = f"sqlite:///{home / 'platform.sqlite'}"
    upgrade(url)
    with Session(make_engine(url)) as session, session.begin():
        seed_demo(session, home / "storage", WEEK, clips=clips, size=size, seed=7)
    defs = build_definitions()
    job = dg.define_asset_job("select", selection=[eligible_jobs.key, selected_clips.key])
    defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    assert defs.resolve_job_def("select").execute_in_process(partition_key=WEEK).success


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--size", default="960x540")
    parser.add_argument(
        "--child", nargs=3, metavar=("EXECUTOR", "CONCURRENT", "INSTANCE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--celery", action="store_true", help="1 against 2 pinned Celery workers")
    parser.add_argument("--chunks", type=int, default=2, help="--celery: MONTAGE_RENDER_CHUNKS")
    parser.add_argument("--target", type=float, default=60.0, help="--celery: the main cut's target s")
    parser.add_argument(
        "--render-scale", type=float, default=1 / 3, help="--celery: the render's width_scale"
    )
    args = parser.parse_args()
    if args.celery:
        from scale_celery import run_celery_mode

        run_celery_mode(args.clips, args.size, args.chunks, args.target, args.render_scale)
        return
    if args.child:
        _child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return
    w, h = (int(v) for v in args.size.split("x"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    home = workdir / "montage"
    home.mkdir()
    os.environ["MONTAGE_HOME"] = str(home)
    print(f"seeding {args.clips} clips at {args.size} and selecting them ...", flush=True)
    _seed(home, args.clips, (w, h))
    rows = []
    for i, (name, (fanout, executor, concurrent)) in enumerate(MODES.items()):
        print(f"{name} ...", flush=True)
        env = {**os.environ, "MONTAGE_HOME": str(home), "MONTAGE_ANALYSIS_FANOUT": fanout}
        cmd = [sys.executable, __file__, "--child", executor, str(concurrent), str(workdir / f"instance{i}")]
        done = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-4000:]}")
        rows.append((name, json.loads(done.stdout.strip().splitlines()[-1])))
    shutil.rmtree(workdir, ignore_errors=True)

    base = rows[0][1]["analysis_wall_s"]
    print(f"\n{args.clips} generated clips at {args.size}, cold analysis cache, {os.cpu_count()} cores\n")
    headers = (
        "analysis run",
        "steps",
        "analysis wall s",
        "vs in_step",
        "launch → start per step s (mean / max)",
        "step own s (mean)",
        "decode s (sum)",
    )
    print("| " + " | ".join(headers) + " |\n|" + "---|" * len(headers))
    for name, f in rows:
        launch = f["launch_to_start_s"]
        over = f"{statistics.mean(launch):.2f} / {max(launch):.2f}" if launch else "— (in process)"
        print(
            f"| {name} | {f['steps']} | {f['analysis_wall_s']:.1f} | {f['analysis_wall_s'] / base:.2f}× | "
            f"{over} | {statistics.mean(f['step_s']):.2f} | {f['analysis_seconds']:.1f} |"
        )


if __name__ == "__main__":
    main()
