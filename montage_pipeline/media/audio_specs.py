"""Measure a finished file's soundtrack as a streaming platform would, and list what fails.

Loudness, loudness range and true peak are FFmpeg's `ebur128` figures (`media/loudness.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.loudness import Loudness, LoudnessMeter
from montage_pipeline.media.mix import RATE

SILENCE = 10 ** (-90 / 20)  # digital silence: below -90 dBFS
CLIP = 0.999


@dataclass(frozen=True, slots=True)
class AudioSpecReport:
    codec: str
    sample_rate: int
    channels: int
    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float
    audio_duration_s: float
    video_duration_s: float
    video_fps: float
    longest_silence_s: float
    clipped_samples: int
    short_term_lufs: tuple[float, ...]  # every 100 ms from 3 s on (`Loudness.short_term_lufs`)


def decoded_chunks(path: Path) -> Iterator[np.ndarray]:
    """The file's audio frame by frame, float32 (channels, samples) at its own rate."""
    with av.open(str(path)) as container:
        yield from _chunks(container)


def _chunks(container: av.container.InputContainer) -> Iterator[np.ndarray]:
    for frame in container.decode(audio=0):
        pcm = frame.to_ndarray()
        channels = frame.layout.nb_channels
        pcm = pcm.reshape(channels, -1) if frame.format.is_planar else pcm.reshape(-1, channels).T
        yield pcm.astype(np.float32, copy=False)


def decode_audio(path: Path) -> np.ndarray:
    """The file's whole audio as float32 (channels, samples) at its own rate."""
    chunks = list(decoded_chunks(path))
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)


def measure_file(path: Path) -> Loudness:
    """The file's EBU R128 figures, read frame by frame (never the whole soundtrack in memory)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        meter = LoudnessMeter(stream.channels, stream.rate)
        for pcm in _chunks(container):
            meter.add(pcm)
    return meter.result()


@dataclass
class _SilenceScan:
    """The longest run of digital silence, kept across chunks (a run can span many frames)."""

    current: int = 0
    longest: int = 0

    def add(self, quiet: np.ndarray) -> None:
        loud = np.flatnonzero(~quiet)
        if not loud.size:
            self.current += len(quiet)
        else:
            self.longest = max(self.longest, self.current + int(loud[0]), _longest_run(quiet[loud[0] :]))
            self.current = len(quiet) - 1 - int(loud[-1])
        self.longest = max(self.longest, self.current)


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def inspect_audio(path: Path) -> AudioSpecReport:
    """The file's soundtrack as a platform's checks see it, read frame by frame."""
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        video = container.streams.video[0] if container.streams.video else None
        codec, rate, channels = audio.codec_context.name, audio.rate, audio.channels
        v_dur = (
            float(video.duration * video.time_base) if video and video.duration and video.time_base else 0.0
        )
        v_fps = float(video.average_rate) if video and video.average_rate else 30.0
        meter = LoudnessMeter(channels, rate)
        silence = _SilenceScan()
        clipped = 0
        for pcm in _chunks(container):
            meter.add(pcm)
            magnitude = np.abs(pcm)
            silence.add(magnitude.max(axis=0) < SILENCE)
            clipped += int((magnitude >= CLIP).sum())
    loudness = meter.result()
    return AudioSpecReport(
        codec=codec,
        sample_rate=rate,
        channels=channels,
        integrated_lufs=round(loudness.integrated_lufs, 2),
        true_peak_dbtp=round(loudness.true_peak_dbtp, 2),
        loudness_range_lu=round(loudness.loudness_range_lu, 2),
        audio_duration_s=meter.samples / rate,
        video_duration_s=v_dur,
        video_fps=v_fps,
        longest_silence_s=silence.longest / rate,
        clipped_samples=clipped,
        short_term_lufs=loudness.short_term_lufs,
    )


def audio_failures(report: AudioSpecReport) -> list[str]:
    failures = []
    if abs(report.integrated_lufs - (-14.0)) > 1.0:
        failures.append(f"integrated loudness {report.integrated_lufs} LUFS, expected -14 ±1")
    if report.true_peak_dbtp > -1.0:
        failures.append(f"true peak {report.true_peak_dbtp} dBTP over -1")
    if (report.codec, report.sample_rate, report.channels) != ("aac", RATE, 2):
        failures.append(
            f"audio {report.codec} {report.sample_rate} Hz {report.channels} ch, expected AAC 48 kHz stereo"
        )
    # One video frame, plus the 1024 priming samples an AAC encoder puts in front (no edit list hides them).
    if (
        report.video_duration_s
        and abs(report.audio_duration_s - report.video_duration_s) > 1.0 / report.video_fps + 1024 / RATE
    ):
        failures.append(f"audio {report.audio_duration_s:.3f}s vs video {report.video_duration_s:.3f}s")
    if report.longest_silence_s > 2.0:
        failures.append(f"{report.longest_silence_s:.1f}s of digital silence")
    if report.clipped_samples:
        failures.append(f"{report.clipped_samples} clipped samples")
    return failures
