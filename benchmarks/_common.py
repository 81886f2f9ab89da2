"""Shared helpers for the benchmark scripts: a cache of generated clips and a Markdown table."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from montage_pipeline.media.synth import plan_clip, write_clip

CACHE = Path(__file__).resolve().parent / ".cache"


def bench_clips(
    n: int, duration: float, fps: int, size: tuple[int, int], workdir: Path = CACHE
) -> list[Path]:
    """`n` synthetic gameplay clips (reused across runs when already generated)."""
    folder = workdir / f"clips_{size[0]}x{size[1]}_{fps}fps_{duration:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip_{i:02d}.mp4"
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
            write_clip(path, plan_clip(duration, fps, seed=9000 + i, width=size[0], height=size[1]))
        paths.append(path)
    return paths


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def run_parallel(commands: Sequence[Sequence[str]], jobs: int) -> None:
    """Run commands `jobs` at a time, failing loudly if one fails."""
    pending = list(commands)
    running: list[subprocess.Popen[bytes]] = []
    while pending or running:
        while pending and len(running) < jobs:
            running.append(subprocess.Popen(pending.pop(0)))
        proc = running.pop(0)
        if proc.wait() != 0:
            raise RuntimeError(f"{proc.args!r} failed")


def markdown_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Rows of already formatted cells as a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def table(rows: list[tuple[str, float, float | None, str]], headers: tuple[str, ...]) -> str:
    """(name, seconds, per second or None, ratio) rows, seconds and rates formatted."""
    return markdown_table(
        [
            (name, f"{seconds:.2f}", f"{per_second:,.0f}" if per_second is not None else "—", ratio)
            for name, seconds, per_second, ratio in rows
        ],
        headers,
    )
