"""Loudness and true peak as the streaming platforms measure them: FFmpeg's `ebur128` filter through PyAV.

The filter implements ITU-R BS.1770-4 and EBU R128 exactly: K-weighting, the 400 ms blocks of the
integrated loudness with its absolute (-70 LUFS) and relative (-10 LU) gates, short-term loudness (3 s
window), the loudness range of EBU Tech 3342 and the true peak (4× oversampled at 48 kHz). It reports
its figures as `lavfi.r128.*` metadata on the frames it passes on, one frame every 100 ms; the last
frame carries the figures of the whole signal. Every figure that is reported, checked or computed a gain
from comes from here, so the master aims at the number the checks read. The meter takes the signal a
block at a time (`LoudnessMeter`): a soundtrack is never held whole to be measured.

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
BLOCK = 1 << 16  # samples handed to the meter at a time by `measure_loudness`


@dataclass(frozen=True, slots=True)
class Loudness:
    integrated_lufs: float  # gated; SILENT_LUFS when nothing is louder than the absolute gate
    loudness_range_lu: float  # EBU Tech 3342 (10th to 95th percentile of gated short-term loudness)
    true_peak_dbtp: float  # SILENT_DB for digital silence
    sample_peak_dbfs: float
    short_term_lufs: tuple[float, ...]  # one per 100 ms, each over the 3 s ending there, from 3 s on


def _db(linear: float) -> float:
    if math.isnan(linear):  # not measured
        return linear
    return 20 * math.log10(linear) if linear > 0 else SILENT_DB


class LoudnessMeter:
    """`ebur128` fed chunk by chunk: a whole soundtrack is measured without being held in memory (a
    decoded file is read frame by frame, a master block by block). Channels are in FFmpeg's default layout
    for their count (mono, stereo, ...)."""

    def __init__(self, channels: int, rate: int = RATE, peaks: bool = True) -> None:
        """`peaks=False` measures loudness only (3× quicker); the result's peaks are then NaN."""
        self.channels, self.rate = channels, rate
        self.samples = 0
        self._layout = f"{channels}c"
        self._step = round(SHORT_TERM_STEP_S * rate)  # the filter's own frame length: more only costs time
        self._pending = np.zeros((channels, 0), np.float32)
        self._pushed = 0
        self._reports: list[dict[str, str]] = []
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(
            sample_rate=rate, format="fltp", layout=self._layout, time_base=Fraction(1, rate)
        )
        meter = self._graph.add("ebur128", f"peak={'true+sample' if peaks else 'none'}:metadata=1")
        self._graph.link_nodes(source, meter, self._graph.add("abuffersink"))
        self._graph.configure()

    def _drain(self) -> None:
        while True:
            try:
                metadata = self._graph.pull().metadata
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            if "lavfi.r128.I" in metadata:  # a frame that closed a 100 ms step
                self._reports.append(dict(metadata))

    def _push_steps(self, samples: np.ndarray) -> np.ndarray:
        """Push every whole step of `samples`; return what is left (less than a step)."""
        whole = samples.shape[1] - samples.shape[1] % self._step
        for i in range(0, whole, self._step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, i : i + self._step], dtype=np.float32), "fltp", self._layout
            )
            frame.sample_rate, frame.pts, frame.time_base = self.rate, self._pushed, Fraction(1, self.rate)
            self._graph.push(frame)
            self._pushed += self._step
            self._drain()
        return samples[:, whole:]

    def add(self, pcm: np.ndarray) -> None:
        """The next samples, float (channels, n)."""
        if pcm.shape[0] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {pcm.shape[0]}")
        self.samples += pcm.shape[1]
        if self._pending.shape[1]:
            pcm = np.concatenate([self._pending, pcm], axis=1)
        self._pending = self._push_steps(pcm).copy()

    def result(self) -> Loudness:
        """The figures of everything added (the meter cannot take more afterwards)."""
        n = self.samples
        if n == 0:
            return Loudness(SILENT_LUFS, 0.0, SILENT_DB, SILENT_DB, ())
        whole = n // self._step  # steps the signal fills: BS.1770's blocks end on these, a partial is none
        # Zeros after the signal complete the last step and flush the oversampler, so the true peak sees
        # every sample (the filter reports only when a step closes); the loudness is read from step `whole`.
        tail = np.zeros((self.channels, (-n) % self._step + 2 * self._step), np.float32)
        self._push_steps(np.concatenate([self._pending, tail], axis=1))
        self._pending = np.zeros((self.channels, 0), np.float32)
        self._graph.push(None)
        self._drain()
        reports = self._reports
        peaks = reports[-1]
        loudness = reports[whole - 1] if whole else {"lavfi.r128.I": str(SILENT_LUFS), "lavfi.r128.LRA": "0"}
        # Report k closes at (k + 1) × 100 ms; the short-term window is full from 3 s on.
        full = round(SHORT_TERM_WINDOW_S / SHORT_TERM_STEP_S) - 1
        return Loudness(
            integrated_lufs=float(loudness["lavfi.r128.I"]),
            loudness_range_lu=float(loudness["lavfi.r128.LRA"]),
            true_peak_dbtp=_db(float(peaks.get("lavfi.r128.true_peak", math.nan))),
            sample_peak_dbfs=_db(float(peaks.get("lavfi.r128.sample_peak", math.nan))),
            short_term_lufs=tuple(float(r["lavfi.r128.S"]) for r in reports[full:whole]),
        )


def measure_loudness(pcm: np.ndarray, rate: int = RATE, peaks: bool = True) -> Loudness:
    """EBU R128 figures of float PCM shaped (channels, samples), fed to the meter a block at a time."""
    meter = LoudnessMeter(pcm.shape[0], rate, peaks)
    for i in range(0, pcm.shape[1], BLOCK):
        meter.add(pcm[:, i : i + BLOCK])
    return meter.result()


def integrated_loudness(pcm: np.ndarray, rate: int = RATE) -> float:
    """The integrated loudness (LUFS) alone: what a gain is computed from. SILENT_LUFS when nothing
    passes the absolute gate."""
    return measure_loudness(pcm, rate, peaks=False).integrated_lufs


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
