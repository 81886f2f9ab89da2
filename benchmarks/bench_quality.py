"""Montage quality on real gameplay: the cut against the kit's ground truth, the seed's rule and an oracle.

    python benchmarks/bench_quality.py --kit WEEK [--kit WEEK ...] [--kit-tools ../shared/gameplay_kit]

Each WEEK_DIR is a week made by `../shared/gameplay_kit/make_week.py` (with `manifest.py` run on it). For
each week: a fresh embedded profile (SQLite + a local folder), `montage seed import` of the kit's
`clips.json` (bad files included, no score, views or likes), then `eligible_jobs → selected_clips →
scene_segments → scored_highlights` through Dagster, exactly as the weekly job runs them. The cut's EDL
is scored by the kit's own `quality.py`: the share of spans holding an action event (kill, death, hit,
damage) and a kill or death, and the mean ground-truth excitement of the chosen seconds, beside the
seed's rule (newest clips from their start) and an oracle that knows the truth. The analysis time is
set beside the floor: the ffmpeg CLI decoding every clip the week analysed, two at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import dagster as dg
from _common import ffmpeg, run_parallel, timed
from gameplay_weeks import KIT_TOOLS, quality_module
from sqlalchemy.orm import Session

from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.seed_import import import_engine, import_manifest

WEEK = "2025-03-03"  # the kit's manifest dates its clips in this week
ASSETS = ["eligible_jobs", "selected_clips", "scene_segments", "scored_highlights"]


def build_week(kit: Path, workdir: Path, scene_config: dict[str, object] | None = None) -> dict[str, object]:
    """Import the kit's week into a fresh embedded profile and build it through `scored_highlights`."""
    home = workdir / "montage"
    home.mkdir(parents=True)
    url = f"sqlite:///{home / 'platform.sqlite'}"
    upgrade(url)
    with Session(import_engine(url)) as session, session.begin():  # `montage seed import`'s own engine
        report = import_manifest(session, home / "storage", WEEK, kit / "clips.json")
    from montage_pipeline.defs.code_location import build_definitions

    defs = build_definitions({"MONTAGE_HOME": str(home)})
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=WEEK,
            instance=instance,
            asset_selection=[dg.AssetKey(a) for a in ASSETS],
            run_config={"ops": {"scene_segments": {"config": scene_config}}} if scene_config else None,
        )
        wall = time.perf_counter() - started
        assert result.success
        analysis_s = next(
            float(e.event_specific_data.duration_ms or 0) / 1000  # type: ignore[union-attr]
            for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS" and e.step_key == "scene_segments"
        )
    clips = result.output_for_node("selected_clips")
    spans = result.output_for_node("scored_highlights")
    # Map each span back to the kit's file name through the import's copy (same file name).
    by_job = {c.job_id: c for c in clips}
    kit_names = {Path(e["path"]).name: e["path"] for e in json.loads((kit / "clips.json").read_text())}
    edl = []
    for s in spans:
        name = Path(by_job[s.job_id].render_path).name
        original = kit_names.get(name) or kit_names.get(name.rsplit("_", 1)[0] + Path(name).suffix, name)
        edl.append((original, s.source_in_s, s.source_out_s))
    return {
        "imported": len(report.imported),
        "clips": clips,
        "edl": edl,
        "analysis_s": analysis_s,
        "wall_s": wall,
    }


def floor_decode(paths: list[str]) -> float | None:
    binary = ffmpeg()
    if not binary:
        return None
    commands = [[binary, "-v", "error", "-threads", "1", "-i", p, "-f", "null", "-"] for p in paths]
    return timed(lambda: run_parallel(commands, 2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kit", type=Path, action="append", default=[], help="a kit week (repeatable)")
    parser.add_argument("--kit-tools", type=Path, default=KIT_TOOLS)
    parser.add_argument(
        "--scene-config",
        type=json.loads,
        help="scene_segments' run config as JSON, e.g. '{\"skip_loop_filter\": false}'",
    )
    parser.add_argument("--edl-out", type=Path, help="write each week's EDL as JSON into this folder")
    args = parser.parse_args()
    if not args.kit:  # `make bench` runs every script without arguments
        print(
            "no --kit given: make gameplay weeks with ../shared/gameplay_kit/make_week.py (see its README), "
            "then pass each folder with --kit"
        )
        return
    quality = quality_module(args.kit_tools)
    rows = []
    for kit in args.kit:
        if not (kit / "clips.json").exists():
            subprocess.run(["python3", str(args.kit_tools / "manifest.py"), str(kit)], check=True)
        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            print(f"building {kit.name} ...", flush=True)
            built = build_week(kit, Path(tmp), args.scene_config)
            floor = floor_decode([c.path for c in built["clips"]])  # type: ignore[attr-defined]
        if args.edl_out:
            args.edl_out.mkdir(parents=True, exist_ok=True)
            (args.edl_out / f"{kit.name}.json").write_text(json.dumps(built["edl"], indent=1))
        truth = quality.load_gt(str(kit))
        ours = quality.summarize(truth, built["edl"])
        seed = quality.summarize(truth, quality.baseline(truth))
        oracle = quality.summarize(truth, quality.oracle(truth))
        rows.append((kit.name, built, ours, seed, oracle, floor))

    print(
        "\n| week | clips analysed | spans | cut s (oracle s) | action share | kill/death share | excitement "
        "| × oracle "
        "| seed rule: action / kill-death / × oracle | oracle excitement | analysis s | CLI decode s "
        "| ratio |"
    )
    print("|" + "---|" * 13)
    sums = [0.0] * 6
    for name, built, ours, seed, oracle, floor in rows:
        ratio = ours["mean_excitement"] / max(oracle["mean_excitement"], 1e-9)
        seed_ratio = seed["mean_excitement"] / max(oracle["mean_excitement"], 1e-9)
        analysis_s = float(built["analysis_s"])  # type: ignore[arg-type]
        print(
            f"| {name} | {len(built['clips'])} | {ours['spans']} "  # type: ignore[arg-type]
            f"| {ours['seconds']:.0f} ({oracle['seconds']:.0f}) "
            f"| {ours['with_action_event']:.2f} "
            f"| {ours['with_kill_or_death']:.2f} | {ours['mean_excitement']:.3f} | {ratio:.2f} "
            f"| {seed['with_action_event']:.2f} / {seed['with_kill_or_death']:.2f} / {seed_ratio:.2f} "
            f"| {oracle['mean_excitement']:.3f} | {analysis_s:.1f} "
            f"| {floor if floor is None else round(floor, 1)} "
            f"| {'—' if not floor else f'{analysis_s / floor:.2f}×'} |"
        )
        for i, v in enumerate(
            (
                ours["with_action_event"],
                ours["with_kill_or_death"],
                ratio,
                seed["with_action_event"],
                seed_ratio,
            )
        ):
            sums[i] += float(v)
        sums[5] += 1
    n = sums[5]
    print(
        f"| **mean of {int(n)}** | | | | **{sums[0] / n:.2f}** | **{sums[1] / n:.2f}** | "
        f"| **{sums[2] / n:.2f}** "
        f"| {sums[3] / n:.2f} / — / {sums[4] / n:.2f} | | | | |"
    )
    print("\naim: action share >= 0.90 and excitement >= 0.90x the oracle's on every week")


if __name__ == "__main__":
    main()
