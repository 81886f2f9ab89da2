"""Loudness and true peak as the streaming platforms measure them: FFmpeg's `ebur128` filter through PyAV.

The filter implements ITU-R BS.1770-4 and EBU R128 exactly: K-weighting, the 400 ms blocks of the
integrated loudness with its absolute (-70 LUFS) and relative (-10 LU) gates, short-term loudness (3 s
window), the loudness range of EBU Tech 3342 and the true peak (4× oversampled at 48 kHz). It reports
its figures as `lavfi.r128.*` metadata on the frames it passes on, one frame every 100 ms; the last
frame carries the figures of the whole signal. pyloudnorm stays where a gain is computed (`mix.master`);
every figure that is reported or checked comes from here.

Resolution: the filter prints its values with three decimals, so a peak is known to ±0.0005 of full
scale (±0.005 dB at -1 dBTP, coarser for quiet signals); loudness to 0.001 LU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw

RATE = 48_000
SHORT_TERM_STEP_S = 0.1  # the filter reports every 100 ms
SHORT_TERM_WINDOW_S = 3.0
SILENT_LUFS = -70.0  # what the filter reports when no block passes the absolute gate
SILENT_DB = -120.0  # a peak of digital silence


@dataclass(frozen=True, slots=True)
class Loudness:
    integrated_lufs: float  # gated; SILENT_LUFS when nothing is louder than the absolute gate
    loudness_range_lu: float  # EBU Tech 3342 (10th to 95th percentile of gated short-term loudness)
    true_peak_dbtp: float  # SILENT_DB for digital silence
    sample_peak_dbfs: float
    short_term_lufs: tuple[float, ...]  # one per 100 ms, each over the 3 s ending there, from 3 s on


def _db(linear: float) -> float:
    return 20 * math.log10(linear) if linear > 0 else SILENT_DB


def measure_loudness(pcm: np.ndarray, rate: int = RATE) -> Loudness:
    """EBU R128 figures of float PCM shaped (channels, samples), channels in FFmpeg's default layout
    for their count (mono, stereo, ...)."""
    channels, n = pcm.shape
    if n == 0:
        return Loudness(SILENT_LUFS, 0.0, SILENT_DB, SILENT_DB, ())
    layout = f"{channels}c"
    graph = av.filter.Graph()
    source = graph.add_abuffer(sample_rate=rate, format="fltp", layout=layout, time_base=Fraction(1, rate))
    meter = graph.add("ebur128", "peak=true+sample:metadata=1")
    graph.link_nodes(source, meter, graph.add("abuffersink"))
    graph.configure()

    reports: list[dict[str, str]] = []

    def drain() -> None:
        while True:
            try:
                metadata = graph.pull().metadata
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if "lavfi.r128.I" in metadata:  # a frame that closed a 100 ms step
                reports.append(dict(metadata))

    step = round(SHORT_TERM_STEP_S * rate)  # the filter's own frame length: pushing more only costs time
    whole = n // step  # steps the signal fills: BS.1770's blocks end on these, a partial step is no block
    # Zeros after the signal complete the last step and flush the oversampler, so the true peak sees every
    # sample (the filter reports only when a step closes); the loudness is read from step `whole`.
    tail = (-n) % step + 2 * step
    samples = np.concatenate([pcm.astype(np.float32), np.zeros((channels, tail), np.float32)], axis=1)
    for i in range(0, samples.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, i : i + step]), "fltp", layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, i, Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    peaks = reports[-1]
    loudness = reports[whole - 1] if whole else {"lavfi.r128.I": str(SILENT_LUFS), "lavfi.r128.LRA": "0"}
    # Report k closes at (k + 1) × 100 ms; the short-term window is full from 3 s on.
    full = round(SHORT_TERM_WINDOW_S / SHORT_TERM_STEP_S) - 1
    return Loudness(
        integrated_lufs=float(loudness["lavfi.r128.I"]),
        loudness_range_lu=float(loudness["lavfi.r128.LRA"]),
        true_peak_dbtp=_db(float(peaks["lavfi.r128.true_peak"])),
        sample_peak_dbfs=_db(float(peaks["lavfi.r128.sample_peak"])),
        short_term_lufs=tuple(float(r["lavfi.r128.S"]) for r in reports[full:whole]),
    )


def loudness_plot(
    short_term_lufs: tuple[float, ...], target_lufs: float, width: int = 900, height: int = 220
) -> Image.Image:
    """Short-term loudness over time, with the target line: where the mix is too quiet or too loud."""
    img = Image.new("RGB", (width, height), (18, 18, 24))
    draw = ImageDraw.Draw(img)

    def y(lufs: float) -> float:
        lufs = lufs if math.isfinite(lufs) else -40.0
        return height - (max(-40.0, min(0.0, lufs)) + 40) / 40 * height

    draw.line([(0, y(target_lufs)), (width, y(target_lufs))], fill=(90, 160, 90), width=1)
    values = short_term_lufs
    points = [(i * width / max(1, len(values) - 1), y(v)) for i, v in enumerate(values)]
    if len(points) > 1:
        draw.line(points, fill=(240, 200, 80), width=2)
    draw.text((6, 4), f"short-term loudness (LUFS, 3 s), target {target_lufs:g}", fill=(200, 200, 210))
    return img
