"""A cut's soundtrack, stage by stage: seconds and peak memory (tracemalloc, above the stage's inputs),
against the track's own size, so a whole-track copy shows as 1.0×.

The music is the generated week's on a 6 s beat of cuts; the game audio is seeded noise with loud
bursts (a stand-in: its loudness moves and its peaks fall between samples, which is what the limiter
works on). Issue 17's bound: the soundtrack of the 247 s long cut must fit beside the rest of the week
in 1 GiB.

    python benchmarks/bench_soundtrack.py --seconds 247
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import markdown_table

from montage_pipeline.media import mix
from montage_pipeline.media.music import generate, plan_for_week
from montage_pipeline.media.mux import master_and_encode


def _game(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    n = round(seconds * mix.RATE)
    game = np.empty((2, n), np.float32)
    for a in range(0, n, mix.BLOCK):  # made a block at a time: the stand-in should not skew the peak
        b = min(n, a + mix.BLOCK)
        t = np.arange(a, b) / mix.RATE
        loud = (np.sin(2 * np.pi * 0.3 * t) > 0.5) * 0.5 + 0.05
        game[:, a:b] = rng.standard_normal((2, b - a)) * loud * 0.3
    return game


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=247.0, help="the cut's length")
    args = parser.parse_args()
    cuts = [4.0 + 6 * i for i in range(int(args.seconds // 6) - 1)]
    plan = plan_for_week("2025-01-27", 120.0, args.seconds, 4.0, cuts, [0.6] * (len(cuts) + 1))
    rows: list[list[str]] = []
    track_bytes = round(args.seconds * mix.RATE) * 2 * 4

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - base
        rows.append([name, f"{seconds:.1f}", f"{peak / 1e6:.0f}", f"{peak / track_bytes:.1f}×"])
        return out

    tracemalloc.start()
    music = stage("music (generated)", functools.partial(generate, plan))
    game = _game(args.seconds)
    music *= stage("ducking envelope", functools.partial(mix.duck_gain, game))
    mixed = stage("combine (pydub)", functools.partial(mix.combine, music, game, out=music))
    music = game = np.zeros((2, 0), np.float32)  # only the mix goes on, as in `build_mix`
    stage("master", functools.partial(mix.master, mixed))
    with tempfile.TemporaryDirectory() as tmp:
        encoded = stage(
            "master + AAC encode + true peak of the file",
            functools.partial(master_and_encode, mixed, Path(tmp) / "soundtrack.m4a"),
        )
    tracemalloc.stop()
    print(f"\n{args.seconds:g} s stereo at 48 kHz: {track_bytes / 1e6:.0f} MB per float32 copy\n")
    print(markdown_table(rows, ["stage", "s", "peak MB above its inputs", "× the track"]))
    report = encoded.report
    print(
        f"\nmaster: {report.integrated_lufs} LUFS, {report.true_peak_dbtp} dBTP; encoded true peak "
        f"{encoded.encoded_peak_dbtp:.2f} dBTP in {encoded.rounds} round(s)"
    )


if __name__ == "__main__":
    main()
