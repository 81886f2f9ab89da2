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
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from _common import ffmpeg, markdown_table

from montage_pipeline.media import mix
from montage_pipeline.media.aac_segments import AAC_FRAME, segments_for
from montage_pipeline.media.audio_specs import decode_audio, measure_audio
from montage_pipeline.media.music import generate, plan_for_week
from montage_pipeline.media.mux import encode_soundtrack, master_and_encode


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
    assert encoded.mastered is not None
    print("\nThe AAC encode of that master, in one piece and in segments on every core (`aac_segments`):\n")
    print(
        markdown_table(
            _encodes(encoded.mastered), ["encode", "s", "SNR against the master, dB", "dBTP", "LUFS"]
        )
    )


def _encodes(mastered: np.ndarray) -> list[list[str]]:
    """The master encoded each way (the ffmpeg CLI from a WAV of it, when installed): seconds, and what
    the decoded file keeps of the master."""
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ways: dict[str, Callable[[Path], Any]] = {
            "one piece (one core)": functools.partial(encode_soundtrack, mastered, segments=1),
            f"{segments_for(mastered.shape[1] // AAC_FRAME)} segments": functools.partial(
                encode_soundtrack, mastered
            ),
        }
        cli = ffmpeg()
        if cli is not None:
            wav = Path(tmp) / "master.wav"
            _write_wav(mastered, wav)
            ways["ffmpeg CLI, same encoder and options"] = lambda out: subprocess.run(
                [
                    cli,
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(wav),
                    "-c:a",
                    "aac",
                    "-b:a",
                    "320k",
                    "-aac_pns",
                    "0",
                    str(out),
                ],
                check=True,
            )
        for name, encode in ways.items():
            out = Path(tmp) / f"{len(rows)}.m4a"
            start = time.perf_counter()
            encode(out)
            seconds = time.perf_counter() - start
            snr = _snr(mastered, decode_audio(out))
            measured = measure_audio(out).report
            rows.append(
                [
                    name,
                    f"{seconds:.2f}",
                    f"{snr:.2f}",
                    f"{measured.true_peak_dbtp:.2f}",
                    f"{measured.integrated_lufs:.2f}",
                ]
            )
    return rows


def _snr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """The decoded file's signal-to-error ratio against the master, at the lag where they line up (the
    CLI's file keeps the encoder's priming in front, trimmed by an edit list; ours puts it in place of
    the master's first frame)."""
    a, n = 4 * AAC_FRAME, min(reference.shape[1], decoded.shape[1]) - 8 * AAC_FRAME

    def at(lag: int) -> float:
        ref = reference[:, a : a + n].astype(np.float64)
        error = ref - decoded[:, a + lag : a + lag + n]
        return float(10 * np.log10((ref**2).sum() / (error**2).sum()))

    return max(at(lag) for lag in (-AAC_FRAME, 0, AAC_FRAME))


def _write_wav(pcm: np.ndarray, path: Path) -> None:
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=mix.RATE, layout="stereo")
        for i in range(0, pcm.shape[1], 48_000):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, i : i + 48_000].T.reshape(1, -1)), format="flt", layout="stereo"
            )
            frame.sample_rate = mix.RATE
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


if __name__ == "__main__":
    main()
