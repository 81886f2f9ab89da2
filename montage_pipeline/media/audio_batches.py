"""Decoded audio resampled about a second at a time instead of a frame at a time.

PyAV's `AudioResampler` runs an FFmpeg filter graph, and each call pays for a push, a pull and the
`EAGAIN` that ends it as a Python exception: about 50 µs per call. A decoder hands out frames of 1024
samples (AAC), 47 a second at 48 kHz, so resampling a clip frame by frame cost more than decoding it
(a 43 s clip to 8 kHz mono: decode 0.09 s, resampling frame by frame 0.20 s, by the second 0.03 s).
Batching gives the same samples: the resampler keeps its filter state across calls, so where the input
is split does not change what comes out (`test_audio_batches.py` compares them sample for sample).
"""

from __future__ import annotations

import av
import numpy as np

BATCH_S = 1.0  # seconds of input per resampler call


class BatchedResampler:
    """`av.AudioResampler(format, layout, rate)` fed `BATCH_S` of decoded frames at a time; `resample` and
    `flush` return the converted samples as `AudioFrame.to_ndarray()` arrays, in order.

    Frames are batched while they share format, layout and rate; a frame that changes them starts a new
    batch, which the resampler rejects with its own `ValueError` when that batch is converted, as it
    would have rejected the frame.
    """

    def __init__(self, format: str, layout: str, rate: int, batch_s: float = BATCH_S) -> None:
        self._resampler = av.AudioResampler(format=format, layout=layout, rate=rate)
        self._batch_s = batch_s
        self._arrays: list[np.ndarray] = []
        self._first: av.AudioFrame | None = None  # the batch's first frame: its format, layout, rate, pts
        self._samples = 0

    def resample(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """Take one decoded frame; whatever a full batch gave (often nothing)."""
        out: list[np.ndarray] = []
        if self._first is not None and not _same_kind(frame, self._first):
            out = self._convert()
        if frame.samples == 0:
            return out
        if self._first is None:
            self._first = frame
        self._arrays.append(frame.to_ndarray())
        self._samples += frame.samples
        if self._samples >= self._batch_s * frame.sample_rate:
            out += self._convert()
        return out

    def rest(self) -> list[np.ndarray]:
        """The batch in hand, converted; the resampler keeps its delayed samples (a few ms)."""
        return self._convert()

    def flush(self) -> list[np.ndarray]:
        """The batch in hand and the resampler's delayed samples: the end of the stream."""
        return self._convert() + [f.to_ndarray() for f in self._resampler.resample(None)]

    def _convert(self) -> list[np.ndarray]:
        first = self._first
        if first is None:
            return []
        batch = av.AudioFrame.from_ndarray(
            np.concatenate(self._arrays, axis=1), format=first.format.name, layout=first.layout.name
        )
        batch.sample_rate, batch.time_base, batch.pts = first.sample_rate, first.time_base, first.pts
        self._arrays, self._first, self._samples = [], None, 0
        return [f.to_ndarray() for f in self._resampler.resample(batch)]


def _same_kind(a: av.AudioFrame, b: av.AudioFrame) -> bool:
    return (a.format.name, a.layout.name, a.sample_rate) == (b.format.name, b.layout.name, b.sample_rate)
