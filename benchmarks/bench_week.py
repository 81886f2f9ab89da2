"""The whole week, measured: a generated week end to end on the embedded profile, cold and warm.

Ours: every asset of `weekly_montage_job` in one process (analysis fans out to 2 workers), seconds per
asset, peak memory and how many cores the machine kept busy while each step ran (read from /proc/stat,
machine-wide: run it on a quiet machine; under 2 on these 2 cores is idle capacity the step leaves).
Memory per step: in-process, this process's RSS while the step ran; under `--executor multiprocess`,
the step's own process with every process under it (its analysis workers), as PSS (the pages a forked
step shares with the fork server counted once), sampled from /proc. The last line adds every process
of the cold week at once: in-process, this one; under `--executor multiprocess`, the process that runs
the week (a fresh interpreter that imports what Dagster's run worker imports, `week_location.py`), the
fork server and the steps, this harness not counted.
Warm: the analysis rerun on the same clips (cached by content hash). The floor, in the same run: the
ffmpeg CLI decoding every candidate clip once (two at a time, one per core) plus rendering every output
the week made, each from its own EDL (one `-filter_complex` each, same x264 settings): the main cut's
landscape and portrait, and the short's portrait and the long cut's landscape when the week has those
cuts (the ratio against the main cut's two alone is printed too). The CLI does no analysis, no music, no
mastering, no checks: it is a floor, not a competitor.
Debian's ffmpeg is used for this benchmark only.

The cuts (README, "Cuts of every length"): the extra time each cut adds, a row per cut. Its EDL step
(from the run), the render stage run again on the same EDLs as plain Python (the main cut's two outputs
alone; with the short riding on that pass; the short alone, i.e. without the shared decoding; the long
cut's own pass) and its own mix and master.

    python benchmarks/bench_week.py --clips 10
    python benchmarks/bench_week.py --clips 10 --executor multiprocess --no-cut-rows

The week is built in a temporary folder, removed at the end (0.5–1.6 GB of clips and renders) unless
`--keep`.

`--executor multiprocess` runs the week as the schedule does: the code location's own executor (steps
forked from a preloaded server, two at a time), so steps without a dependency between them overlap,
but the steps that fill the cores (the render, `soundtrack`) one at a time, as the executor does by
default (`--cores-filled-at-once 0` runs those two side by side); the default runs every step in this
process, one after another.
    python benchmarks/bench_week.py --clips 8 --size 640x360 --duration 30 --short 15 \
        --long-min 45 --long-gain 20 --render-scale 0.333 --no-floor
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import dagster as dg
from _common import ffmpeg, markdown_table, run_parallel, timed
from bench_render import cli_command, similarity
from sqlalchemy.orm import Session
from week_location import WEEK, week_defs

from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.prepared_soundtrack import MixSettings, finish_cut, mix_maker
from montage_pipeline.highlights.render_plan import (
    CUT_OUTPUTS,
    LONG,
    PORTRAIT_MAX_S,
    SHORT,
    RenderOptions,
    output_fps,
    render_spans,
)
from montage_pipeline.highlights.renders import render_week
from montage_pipeline.highlights.soundtrack import cut_renders
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.seed_demo import seed_demo
from montage_pipeline.storage.media_store import LocalMediaStore


def _executor_config(cores_filled_at_once: int | None) -> dict[str, Any]:
    """The run config's executor part: the location's multiprocess executor, as configured by default
    or with `cores_filled_at_once` (steps tagged as filling the cores, at once)."""
    if cores_filled_at_once is None:
        return {}
    return {"execution": {"config": {"cores_filled_at_once": cores_filled_at_once}}}


def _step_events(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    """The run's step events (DagsterEvent), read from the event log once."""
    return [
        entry.dagster_event
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None and entry.dagster_event.step_key
    ]


def _step_seconds(events: list[Any]) -> dict[str, float]:
    """Each step's own duration, as Dagster recorded it, in the order the steps ended."""
    return {
        event.step_key: float(event.step_success_data.duration_ms or 0) / 1000
        for event in events
        if event.event_type_value == "STEP_SUCCESS"
    }


def _launch_week(run_config: dict[str, Any]) -> str:
    """Run the cold week in a fresh process, as Dagster's run worker would (`week_location.py`), and
    return its run id: the harness's own imports (the clip generator's OpenCV and SciPy) stay out of the
    week's processes."""
    here = Path(__file__).resolve().parent
    path = os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, str(here / "week_location.py"), json.dumps(run_config)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["success"], f"the week's run {report['run_id']} failed"
    return str(report["run_id"])


def _step_windows(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float, float]]:
    """(step, start, end) of every step of the run that ended (Unix times), as Dagster's UI reads them."""
    return [
        (stats.step_key, stats.start_time, stats.end_time)
        for stats in instance.get_run_step_stats(run_id)
        if stats.start_time is not None and stats.end_time is not None
    ]


def _steps_running_s(windows: list[tuple[str, float, float]]) -> float:
    """Seconds during which at least one step was running: the union of the steps' start-to-end times
    (`_step_windows`), so steps that overlap (the multiprocess executor) are not counted twice."""
    total, reached = 0.0, float("-inf")
    for begin, end in sorted((b, e) for _, b, e in windows):
        total += max(0.0, end - max(begin, reached))
        reached = max(reached, end)
    return total


def _busy_cpu_s() -> float:
    """Seconds the machine's CPUs have been busy since boot (all cores; /proc/stat less idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Resident memory and the machine's busy CPU every 100 ms, in a thread: which step holds the week's
    peak, and which leaves cores idle (the analysis workers are other processes, so the CPU is read
    machine-wide: run it on a quiet machine). Memory is sampled for this process and for every process
    under it, so that under the multiprocess executor each step's own process (and its analysis workers)
    is measured too. The proportional set size is read every PSS_EVERY-th sample only: reading a
    process's /proc/<pid>/smaps_rollup walks all its mappings under the lock its threads' page faults
    and mmap calls take: read every 100 ms it cost a render ~3 % of its time (the same render with the
    sampler on and off); a step's memory stays near its peak for seconds, so 0.5 s still catches it."""

    PSS_EVERY = 5

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (unix time, MiB of this process, busy CPU s)
        self.trees: dict[int, float] = {}  # descendant pid → the most MiB (PSS) its process tree held
        self.whole_peak = 0.0  # the most MiB (PSS) this process and all under it held at once
        self.below_peak = 0.0  # the same without this process: a week launched in a process of its own
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        tick = 0
        while not self._stop.wait(0.1):
            tick += 1
            self.samples.append((time.time(), _rss_mib(me), _busy_cpu_s()))
            if tick % self.PSS_EVERY:
                continue
            children = _children_below(me)
            pss = {pid: _pss_mib(pid) for pid in children}
            for pid in children:
                if pid != me:
                    self.trees[pid] = max(self.trees.get(pid, 0.0), _tree_mib(pid, children, pss))
            whole = _tree_mib(me, children, pss)
            self.whole_peak = max(self.whole_peak, whole)
            self.below_peak = max(self.below_peak, whole - pss.get(me, 0.0))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def per_step(
        self, windows: list[tuple[str, float, float]], pids: dict[str, int]
    ) -> dict[str, tuple[float | None, float]]:
        """Each step's peak memory and the cores the machine kept busy on average while it ran. A step
        run in a process of its own (the multiprocess executor) is measured as that process's tree (None
        if it ended before its PSS was read); one run here, as this process while it ran (steps run one
        after another in-process). `windows`: `_step_windows`; `pids`: `_step_pids`."""
        me = os.getpid()
        peaks: dict[str, tuple[float | None, float]] = {}
        for step, begin, end in windows:
            window = [(t, mib, cpu) for t, mib, cpu in self.samples if begin <= t <= end]
            if len(window) < 2:
                continue
            cores = (window[-1][2] - window[0][2]) / max(window[-1][0] - window[0][0], 1e-3)
            pid = pids.get(step, me)
            peak = max(mib for _, mib, _ in window) if pid == me else self.trees.get(pid)
            peaks[step] = (peak, cores)
        return peaks


def _children_below(root: int) -> dict[int, list[int]]:
    """Every process under `root`, each with its own children (from /proc/<pid>/task/*/children)."""
    found: dict[int, list[int]] = {}
    below = [root]
    while below:
        pid = below.pop()
        kids: list[int] = []
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                kids += [int(k) for k in task.read_text().split()]
            except OSError:  # the thread or the process ended meanwhile
                continue
        found[pid] = kids
        below += [k for k in kids if k not in found]
    return found


def _tree_mib(pid: int, children: dict[int, list[int]], mib: dict[int, float]) -> float:
    """`mib` of `pid` and of every process under it, summed."""
    return mib.get(pid, 0.0) + sum(_tree_mib(child, children, mib) for child in children.get(pid, []))


def _pss_mib(pid: int) -> float:
    """The process's proportional set size in MiB (pages shared with other processes, such as those a
    forked step shares with the executor's fork server, counted once over all of them); 0 when it has
    ended."""
    return _proc_mib(pid, "smaps_rollup", "Pss:")


def _rss_mib(pid: int) -> float:
    """The process's resident memory in MiB; 0 when it has ended."""
    return _proc_mib(pid, "status", "VmRSS:")


def _proc_mib(pid: int, file: str, field: str) -> float:
    """A kB figure of /proc/<pid>/<file>, in MiB; 0 when the process has ended."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _step_pids(events: list[Any]) -> dict[str, int]:
    """The process each step ran in, as its STEP_START event recorded it."""
    return {
        event.step_key: event.pid
        for event in events
        if event.event_type_value == "STEP_START" and event.pid is not None
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--duration", type=float, default=90.0, help="target montage seconds")
    parser.add_argument("--short", type=float, default=30.0, help="the short cut's seconds (15–60)")
    parser.add_argument("--long-min", type=float, default=180.0, help="the long cut's least seconds")
    parser.add_argument("--long-gain", type=float, default=60.0, help="the long cut's least gain over main")
    parser.add_argument("--render-scale", type=float, default=1.0, help="render size / platform size")
    parser.add_argument("--no-floor", action="store_true", help="skip the ffmpeg CLI floor")
    parser.add_argument("--no-cut-rows", action="store_true", help="skip rendering each cut again")
    parser.add_argument(
        "--long-copies",
        action="store_true",
        help="render the long cut again with and without the spans copied from the main landscape, "
        "and each against a near-lossless render of its EDL (needs ffmpeg)",
    )
    parser.add_argument(
        "--executor",
        choices=("in_process", "multiprocess"),
        default="in_process",
        help="in_process: each step in turn here; multiprocess: the code location's executor",
    )
    parser.add_argument(
        "--cores-filled-at-once",
        type=int,
        help="multiprocess: the executor's cores_filled_at_once (default 1; 0: the soundtrack beside the "
        "render)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the week's files (a temporary folder)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-week-"))
    try:
        run_week(args, workdir)
    finally:
        if args.keep:
            print(f"the week's files: {workdir}")
        else:  # 0.5–1.6 GB of clips, renders and floor outputs per run
            shutil.rmtree(workdir, ignore_errors=True)


def run_week(args: argparse.Namespace, workdir: Path) -> None:
    """Seed, build and measure the week in `workdir`, then print the tables."""
    w, h = (int(v) for v in args.size.split("x"))
    # The code location reads only this mapping (settings.py): the target length must be in it.
    env = {
        "MONTAGE_HOME": str(workdir / "montage"),
        "WEEKLY_MONTAGE_DURATION": str(args.duration),
        "MONTAGE_SHORT_DURATION": str(round(args.short)),
    }
    long_config = {"min_duration_s": args.long_min, "min_gain_s": args.long_gain}
    cut_config = {
        "ops": {
            "long_highlights": {"config": long_config},
            "montage_renders": {"config": {"width_scale": args.render_scale}},
        }
    }
    (workdir / "montage").mkdir()
    url = f"sqlite:///{workdir / 'montage' / 'platform.sqlite'}"
    upgrade(url)
    print(f"seeding {args.clips} clips at {args.size} ...", flush=True)
    with Session(make_engine(url)) as session, session.begin():
        seed_demo(session, workdir / "montage" / "storage", WEEK, clips=args.clips, size=(w, h), seed=7)

    os.environ.update(env)  # the executor's step processes build the code location from it
    defs = week_defs()
    job = defs.resolve_job_def("bench_week")
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        with RssSampler() as rss:
            if args.executor == "multiprocess":  # the location's executor: steps forked, two at a time
                run_id = _launch_week({**cut_config, **_executor_config(args.cores_filled_at_once)})
            else:
                cold = job.execute_in_process(partition_key=WEEK, instance=instance, run_config=cut_config)
                assert cold.success
                run_id = cold.run_id
        cold_s = time.perf_counter() - start
        events = _step_events(instance, run_id)  # the event log, read once for all that follows
        windows = _step_windows(instance, run_id)
        step_rss = rss.per_step(windows, _step_pids(events))
        steps = _step_seconds(events)
        steps_running_s = _steps_running_s(windows)
        clips, spans, scenes = (
            cast(list[Any], defs.load_asset_value(name, partition_key=WEEK, instance=instance))
            for name in ("selected_clips", "scored_highlights", "scene_segments")
        )
        warm_start = time.perf_counter()
        warm = job.execute_in_process(
            partition_key=WEEK, instance=instance, asset_selection=[dg.AssetKey("scene_segments")]
        )
        warm_s = time.perf_counter() - warm_start
        assert warm.success
        warm_steps = _step_seconds(_step_events(instance, warm.run_id))
        if args.long_copies and (binary := ffmpeg()):
            long_copies(
                spans,
                LocalMediaStore(workdir / "montage" / "media"),
                workdir / "long_copies",
                RenderOptions(width_scale=args.render_scale),
                binary,
            )
        if not args.no_cut_rows:
            cut_rows(
                spans,
                scenes,
                steps,
                LocalMediaStore(workdir / "montage" / "media"),
                workdir / "cuts",
                RenderOptions(width_scale=args.render_scale),
            )
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    fps = output_fps(spans, 0)  # what our render chose
    floor_rows: list[tuple[str, float]] = []
    binary = None if args.no_floor else ffmpeg()
    if binary:
        decode = [[binary, "-v", "error", "-threads", "1", "-i", c.path, "-f", "null", "-"] for c in clips]
        floor_rows.append(
            (
                f"ffmpeg CLI: decode {len(clips)} candidates, 2 at a time",
                timed(lambda: run_parallel(decode, 2)),
            )
        )
        out = workdir / "floor"
        out.mkdir()
        store = LocalMediaStore(workdir / "montage" / "media")
        # Every output the week rendered, each by its own CLI run from its own EDL: the main cut's two,
        # then the short's portrait and the long cut's landscape when the week made those cuts.
        outputs = [
            ("landscape", spans, (1920, 1080), None),
            ("portrait", spans, (1080, 1920), PORTRAIT_MAX_S),
            *[
                (f"{cut} cut's {'portrait' if size[0] < size[1] else 'landscape'}", cut_spans, size, None)
                for cut, size in (("short", CUT_OUTPUTS[SHORT]), ("long", CUT_OUTPUTS[LONG]))
                if (cut_spans := load_cut(store, WEEK, cut, spans).spans)
            ],
        ]
        for name, edl, (ow, oh), limit in outputs:
            rs = render_spans(edl, {}, max_duration_s=limit)
            # At the main cut's rate, as our render makes every cut (`plan_renders`).
            cmd = cli_command(binary, rs, edl[0].intro_s, out / f"{name}.mp4", ow, oh, fps, "veryfast")
            floor_rows.append(
                (
                    f"ffmpeg CLI: render {name} from the EDL",
                    timed(functools.partial(subprocess.run, cmd, check=True)),
                )
            )
    floor_s = sum(s for _, s in floor_rows)
    # The floor before the cuts (issue 12): the decode and the main cut's two outputs only.
    main_floor_s = sum(s for _, s in floor_rows[:3])

    print(
        f"\nweek {WEEK}: {args.clips} generated clips at {args.size}, {len(clips)} candidates, "
        f"{len(spans)} spans, montage {spans[-1].montage_out_s:.0f} s at {fps} fps\n"
    )
    memory = "peak memory, MiB (the step's process tree, PSS; in-process: this process's RSS while it ran)"
    print(f"| step | ours cold s | {memory} | cores busy (machine) |")
    print("|---|---|---|---|")
    for step, seconds in steps.items():
        peak_mib, cores_busy = step_rss.get(step, (None, None))
        peak = f"{peak_mib:.0f}" if peak_mib is not None else ""
        cores = f"{cores_busy:.2f}" if cores_busy is not None else ""
        print(f"| {step} | {seconds:.1f} | {peak} | {cores} |")
    # Wall time with no step running (the steps' own seconds overlap under the multiprocess executor).
    print(f"| between and around the steps (Dagster's own work) | {cold_s - steps_running_s:.1f} | | |")
    print(f"| **whole week (wall)** | **{cold_s:.1f}** | | |")
    print()
    if floor_rows:
        print("| floor | s |")
        print("|---|---|")
        for name, seconds in floor_rows:
            print(f"| {name} | {seconds:.1f} |")
        print(f"| **floor total** | **{floor_s:.1f}** |")
        print(f"\nwhole week cold / floor: {cold_s / floor_s:.2f}×")
        if len(floor_rows) > 3:
            print(
                f"against the main cut's two outputs alone ({main_floor_s:.1f} s): "
                + f"{cold_s / main_floor_s:.2f}×"
            )
    cold_analysis = steps.get("scene_segments", 0.0)
    warm_analysis = warm_steps.get("scene_segments", warm_s)
    speedup = cold_analysis / max(warm_analysis, 1e-3)
    print(f"analysis cold {cold_analysis:.1f} s, warm {warm_analysis:.2f} s: {speedup:.0f}× faster")
    if args.executor == "multiprocess":  # the week ran in processes of its own, launched from here
        every = "the cold week's processes at once (PSS, sampled; this harness not counted) "
        every += f"{rss.below_peak:.0f} MiB"
    else:
        every = f"all the cold week's processes at once (PSS, sampled) {rss.whole_peak:.0f} MiB"
    print(f"peak memory: this process {peak_self:.0f} MB, largest child {peak_children:.0f} MB; {every}")


def long_copies(
    spans: list[Any], store: LocalMediaStore, out: Path, options: RenderOptions, binary: str
) -> None:
    """The long cut's render with the spans it shares with the main landscape copied from that file,
    against the same EDL encoded whole: the seconds it adds to the main landscape render, and each file's
    SSIM and PSNR against a near-lossless render of the EDL."""
    long = load_cut(store, WEEK, "long", spans).spans
    if not long:
        print("\nno long cut this week: nothing to copy")
        return

    def render_s(
        selected: list[str], tag: str, opts: RenderOptions = options
    ) -> tuple[float, dict[str, Any]]:
        workdir = out / tag
        workdir.mkdir(parents=True)
        start = time.perf_counter()
        rendered = render_week(spans, [], store, selected, "bench", opts, workdir, long=long)
        return time.perf_counter() - start, {r.name: r for r in rendered}

    main_s, _ = render_s(["landscape_render"], "main")
    both_s, both = render_s(["landscape_render", LONG], "both")
    whole_s, whole = render_s([LONG], "whole")
    _, reference = render_s([LONG], "reference", dataclasses.replace(options, crf=1, preset="ultrafast"))
    copied = both[LONG].report.copied_spans
    ref_path = reference[LONG].report.path
    rows = []
    for name, seconds, rendered in (
        (f"copying {copied} of {len(long)} spans from the main landscape", both_s - main_s, both[LONG]),
        ("encoded whole (the long cut alone)", whole_s, whole[LONG]),
    ):
        ssim, psnr = similarity(binary, rendered.report.path, ref_path)
        size = rendered.report.size_bytes / 1e6
        rows.append((name, f"{seconds:.1f}", f"{size:.1f}", f"{ssim:.5f}", f"{psnr:.2f}"))
    print(
        f"\nthe long cut's landscape ({long[-1].montage_out_s:.0f} s); "
        f"the main landscape alone: {main_s:.1f} s"
    )
    print(markdown_table(rows, ("long render", "s", "MB", "SSIM", "PSNR dB")))


def cut_rows(
    spans: list[Any],
    scenes: list[Any],
    steps: dict[str, float],
    store: LocalMediaStore,
    out: Path,
    options: RenderOptions,
    repeat: int = 2,
) -> None:
    """A row per cut: what it adds to the week (EDL step, render, mix), the renders run again here."""
    short, long = load_cut(store, WEEK, "short"), load_cut(store, WEEK, "long")
    main_outputs = ["landscape_render", "portrait_render"]

    def render_s(selected: list[str]) -> tuple[float, list]:
        """The best of `repeat` runs: on a shared machine the slower ones measure the neighbours."""
        best, rendered = float("inf"), []
        for attempt in range(repeat):
            workdir = out / f"{'_'.join(selected)}-{attempt}"
            workdir.mkdir(parents=True)
            start = time.perf_counter()
            rendered = render_week(
                spans, scenes, store, selected, "bench", options, workdir, short=short.spans, long=long.spans
            )
            best = min(best, time.perf_counter() - start)
        return best, rendered

    main_s, _ = render_s(main_outputs)
    rows = []
    if short.spans:
        shared_s, rendered = render_s([*main_outputs, SHORT])
        alone_s, _ = render_s([SHORT])
        shared = next(r for r in rendered if r.name == SHORT).shared_decode
        mix_s = _mix_seconds("short", short.spans, next(r for r in rendered if r.name == SHORT), out)
        rows.append(("short", steps.get("short_highlights", 0.0), shared_s - main_s, alone_s, shared, mix_s))
    if long.spans:
        long_s, rendered = render_s([LONG])
        mix_s = _mix_seconds("long", long.spans, rendered[0], out)
        rows.append(("long", steps.get("long_highlights", 0.0), long_s, long_s, False, mix_s))
    print(f"\nthe main cut's render (both aspects, one pass, best of {repeat}): {main_s:.1f} s")
    print(
        "| cut | length s | EDL step s | render extra s | render alone s | decode | mix + master s "
        "| total extra s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for cut, edl_s, extra_s, alone_s, shared, mix_s in rows:
        length = max(s.montage_out_s for s in (short if cut == "short" else long).spans)
        decode = "shared with main" if shared else "own pass"
        total = edl_s + extra_s + mix_s
        print(
            f"| {cut} | {length:.0f} | {edl_s:.1f} | {extra_s:.1f} | {alone_s:.1f} | {decode} | {mix_s:.1f} "
            f"| {total:.1f} |"
        )
    if not long.spans:
        print(f"| long | — | {steps.get('long_highlights', 0.0):.1f} | skipped: {long.skip_reason} | | | | |")


def _mix_seconds(cut: str, spans: list, rendered: object, out: Path) -> float:
    files = {name: path for name, (path, _) in rendered.files.items()}  # type: ignore[attr-defined]
    start = time.perf_counter()
    make = mix_maker(WEEK, None, MixSettings(), None)
    finish_cut(cut, spans, cut_renders(cut, files), None, make, out / f"mix-{cut}", MixSettings().bitrate)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
