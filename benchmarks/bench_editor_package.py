"""The editor package's build time and size: ours (PyAV stream copy, timelines, zip) beside the ffmpeg CLI.

    .venv/bin/python benchmarks/bench_editor_package.py [--spans 10 --clip-seconds 20 --size 1920x1080]

A week of `--spans` generated clips (cached in benchmarks/.cache), one span of 5 s from each, dissolves
between them and a 2 s title card. Rows: our whole package (`editor_package.build_package`: the trims
with 1 s handles, the soundtrack copy, four timeline formats, the zip), our trims alone, and the ffmpeg
CLI trimming the same ranges with `-ss … -to … -c copy` (Debian's ffmpeg, for this benchmark only; it
writes no timelines and no zip, so the comparison favours it). Each row prints wall seconds and the bytes
written; the last column is the row's time over the CLI's.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import bench_clips, ffmpeg

from montage_pipeline.highlights.editor_package import HANDLE_S, build_package, trim_copy
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.mux import RATE, encode_soundtrack
from montage_pipeline_tests.test_exports_parts import _span

SPAN_S, IN_S, INTRO_S = 5.0, 6.0, 2.0


def week_spans(clips: list[Path]) -> list[EditSpan]:
    spans = []
    for i, clip in enumerate(clips):
        at = INTRO_S + SPAN_S * i
        spans.append(
            replace(
                _span(i + 1, clip),
                source_in_s=IN_S,
                source_out_s=IN_S + SPAN_S,
                montage_in_s=at,
                montage_out_s=at + SPAN_S,
                peak_source_s=IN_S + 2,
                peak_montage_s=at + 2,
                transition_in="dissolve" if i else "cut",
                transition_s=0.5 if i else 0.0,
            )
        )
    return spans


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=10)
    parser.add_argument("--clip-seconds", type=float, default=20.0)
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    clips = bench_clips(args.spans, args.clip_seconds, 30, (w, h))
    spans = week_spans(clips)
    cut_s = INTRO_S + SPAN_S * len(spans)
    work = Path(tempfile.mkdtemp(prefix="bench-editor-"))
    try:
        soundtrack = work / "soundtrack.m4a"
        t = np.arange(round(cut_s * RATE)) / RATE
        tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        encode_soundtrack(np.stack([tone, tone]), soundtrack)
        rows = []
        start = time.perf_counter()
        package = build_package("2025-01-27", spans, soundtrack, work / "ours", duration_s=cut_s)
        rows.append(
            (
                "ours: whole package (trims, timelines, zip)",
                time.perf_counter() - start,
                package.zip_path.stat().st_size,
            )
        )
        (work / "trims").mkdir()
        start = time.perf_counter()
        for s in spans:
            trim_copy(
                Path(s.source_path), work / "trims" / f"{s.order:02d}.mp4", s.source_in_s, s.source_out_s
            )
        rows.append(
            ("ours: trims only (PyAV stream copy)", time.perf_counter() - start, folder_bytes(work / "trims"))
        )
        binary = ffmpeg()
        cli: float | None = None
        if binary:
            (work / "cli").mkdir()
            start = time.perf_counter()
            for s in spans:
                subprocess.run(
                    [
                        binary,
                        "-v",
                        "error",
                        "-y",
                        "-ss",
                        f"{max(0.0, s.source_in_s - HANDLE_S):.3f}",
                        "-to",
                        f"{s.source_out_s + HANDLE_S:.3f}",
                        "-i",
                        s.source_path,
                        "-c",
                        "copy",
                        str(work / "cli" / f"{s.order:02d}.mp4"),
                    ],
                    check=True,
                )
            cli = time.perf_counter() - start
            rows.append(("ffmpeg CLI: trims only (-c copy)", cli, folder_bytes(work / "cli")))
        source_bytes = sum(Path(s.source_path).stat().st_size for s in spans)
        print(
            f"{len(spans)} spans of {SPAN_S:g} s (+{HANDLE_S:g} s handles) from {args.clip_seconds:g} s "
            f"{w}x{h} clips ({source_bytes / 1e6:.1f} MB of sources)\n"
        )
        print("| build | seconds | MB | vs CLI |")
        print("|---|---|---|---|")
        for name, seconds, size in rows:
            ratio = f"{seconds / cli:.2f}x" if cli else "—"
            print(f"| {name} | {seconds:.2f} | {size / 1e6:.1f} | {ratio} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
