"""Analysis speed: ours (all features, one pass) beside the decode floor and PySceneDetect's default.

    .venv/bin/python benchmarks/bench_analysis.py [--clips 6 --duration 20 --fps 60 --size 1920x1080]

Rows, all on the same generated 1080p H.264 clips, in one run:
- floor: the ffmpeg CLI only decoding the video (`ffmpeg -i clip -map 0:v:0 -f null -`), clips one after
  another and two at a time (Debian's ffmpeg, for this benchmark only; rows skipped if absent);
- PySceneDetect's default API usage, `detect(path, AdaptiveDetector())`, clip after clip;
- ours cold: `analyze_clips` with every feature, two worker processes (and one process for reference);
- ours warm: hashing each file and loading its cached analysis (what a rerun of a week does).

Then what skipping H.264's deblocking filter changes in what the analysis finds, clip by clip (today's
decode against the same with the filter on): the cuts (matched within one frame), the motion track's
correlation and the largest difference of each per-frame track. `--clips-dir DIR` analyses DIR's
`clip_*.mp4` (e.g. a gameplay-kit week, ../shared/gameplay_kit/make_week.py) instead of generated clips.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE, bench_clips, ffmpeg, markdown_table, run_parallel, table, timed

from montage_pipeline.media.analysis import ClipAnalysis, analyze_clip, analyze_clips
from montage_pipeline.storage.hashing import file_sha256


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--workdir", type=Path, default=CACHE)
    parser.add_argument("--clips-dir", type=Path, help="analyse this folder's clip_*.mp4 instead")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    if args.clips_dir:
        clips = sorted(args.clips_dir.glob("clip_*.mp4"))[: args.clips]
        frames = sum(_frame_count(c) for c in clips)
    else:
        clips = bench_clips(args.clips, args.duration, args.fps, (w, h), args.workdir)
        frames = round(args.clips * args.duration * args.fps)
    rows: list[tuple[str, float, float | None, str]] = []

    floor_seq = floor_par = None
    binary = ffmpeg()
    if binary:
        commands = [
            [binary, "-v", "error", "-threads", "0", "-i", str(c), "-map", "0:v:0", "-f", "null", "-"]
            for c in clips
        ]
        floor_seq = timed(lambda: [subprocess.run(cmd, check=True) for cmd in commands])
        floor_par = timed(lambda: run_parallel(commands, 2))
        rows.append(("floor: ffmpeg CLI decode, one clip at a time", floor_seq, frames / floor_seq, "1.00×"))
        rows.append(("floor: ffmpeg CLI decode, two clips at a time", floor_par, frames / floor_par, "1.00×"))
    else:
        print("ffmpeg not on PATH: floor rows skipped (apt-get install ffmpeg)", file=sys.stderr)

    def ratio(seconds: float, floor: float | None) -> str:
        return f"{seconds / floor:.2f}× floor" if floor else "—"

    from scenedetect import AdaptiveDetector, detect

    psd = timed(lambda: [detect(str(c), AdaptiveDetector()) for c in clips])
    rows.append(
        (
            "PySceneDetect default: detect(path, AdaptiveDetector()), cuts only",
            psd,
            frames / psd,
            ratio(psd, floor_seq),
        )
    )

    one = timed(lambda: [analyze_clip(c) for c in clips])
    rows.append(
        ("ours cold, 1 process (frame threads), all features", one, frames / one, ratio(one, floor_seq))
    )
    results: list[ClipAnalysis | Exception] = []
    cold = timed(lambda: results.extend(analyze_clips(clips, workers=2)))
    rows.append(("ours cold, 2 processes, all features", cold, frames / cold, ratio(cold, floor_par)))
    filtered: list[ClipAnalysis | Exception] = []
    deblocked = timed(lambda: filtered.extend(analyze_clips(clips, workers=2, skip_loop_filter=False)))
    rows.append(
        (
            "ours cold, 2 processes, deblocking filter on (before)",
            deblocked,
            frames / deblocked,
            ratio(deblocked, floor_par),
        )
    )

    cache = Path(tempfile.mkdtemp(prefix="analysis-cache-"))
    try:
        for clip, result in zip(clips, results, strict=True):
            assert isinstance(result, ClipAnalysis), result
            result.save(cache / f"{file_sha256(clip)}.npz")
        warm = timed(lambda: [ClipAnalysis.load(cache / f"{file_sha256(c)}.npz") for c in clips])
    finally:
        shutil.rmtree(cache)
    rows.append(
        ("ours warm: sha256 + cached analysis", warm, frames / warm, f"{cold / warm:.0f}× faster than cold")
    )

    print(
        f"\n{len(clips)} clips from {args.clips_dir} ({frames:,} frames), 2 cores\n"
        if args.clips_dir
        else f"\n{args.clips} clips × {args.duration:g}s, {w}×{h} @ {args.fps} fps H.264 "
        f"({frames:,} frames), 2 cores\n"
    )
    print(table(rows, ("run", "wall s", "frames/s", "ratio")))
    print("\nWhat skipping the deblocking filter changes (today's analysis against the filter on):\n")
    print(
        markdown_table(
            [_difference(c.name, a, b) for c, a, b in zip(clips, results, filtered, strict=True)],
            (
                "clip",
                "cuts today / filter on / matched",
                "motion corr",
                "max |Δ| motion",
                "max |Δ| brightness",
                "max |Δ| redness",
            ),
        )
    )


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def _difference(name: str, today: object, before: object) -> tuple[str, str, str, str, str, str]:
    """One clip's row: cuts both ways and how many match within a frame, and the tracks' differences."""
    assert isinstance(today, ClipAnalysis) and isinstance(before, ClipAnalysis), (today, before)
    frame = 1.0 / today.fps + 1e-6
    cuts_a = [s.start_s for s in today.scenes[1:]]
    cuts_b = [s.start_s for s in before.scenes[1:]]
    matched = sum(any(abs(a - b) <= frame for b in cuts_b) for a in cuts_a)
    ta, tb = today.tracks, before.tracks
    corr = float(np.corrcoef(ta.motion, tb.motion)[0, 1]) if len(ta.motion) > 2 else 1.0

    def most(x: np.ndarray, y: np.ndarray) -> str:
        return f"{float(np.abs(x - y).max()):.4f}" if len(x) else "—"

    return (
        name,
        f"{len(cuts_a)} / {len(cuts_b)} / {matched}",
        f"{corr:.4f}",
        most(ta.motion, tb.motion),
        most(ta.brightness, tb.brightness),
        most(ta.redness, tb.redness),
    )


if __name__ == "__main__":
    main()
