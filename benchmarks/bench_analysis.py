"""Analysis speed: ours (all features, one pass) beside the decode floor and PySceneDetect's default.

    .venv/bin/python benchmarks/bench_analysis.py [--clips 6 --duration 20 --fps 60 --size 1920x1080]

Rows, all on the same generated 1080p H.264 clips, in one run:
- floor: the ffmpeg CLI only decoding the video (`ffmpeg -i clip -map 0:v:0 -f null -`), clips one after
  another and two at a time (Debian's ffmpeg, for this benchmark only; rows skipped if absent);
- PySceneDetect's default API usage, `detect(path, AdaptiveDetector())`, clip after clip;
- ours cold: `analyze_clips` with every feature, two worker processes (and one process for reference);
- ours warm: hashing each file and loading its cached analysis (what a rerun of a week does).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE, bench_clips, ffmpeg, run_parallel, table, timed

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
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
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
    nonref = timed(lambda: analyze_clips(clips, workers=2, skip_nonref=True))
    rows.append(
        (
            "ours cold, 2 processes, skip non-reference frames",
            nonref,
            frames / nonref,
            ratio(nonref, floor_par),
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
        f"\n{args.clips} clips × {args.duration:g}s, {w}×{h} @ {args.fps} fps H.264 "
        f"({frames:,} frames), 2 cores\n"
    )
    print(table(rows, ("run", "wall s", "frames/s", "ratio")))


if __name__ == "__main__":
    main()
