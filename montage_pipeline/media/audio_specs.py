"""Measure a finished file's soundtrack as a streaming platform would, and list what fails.

Loudness, loudness range and true peak are FFmpeg's `ebur128` figures (`media/loudness.py`).

Decoding is a function of the decoder and the packets: audio whose packets are the same bytes decodes to
the same samples. So a measurement is kept by the digest of the packets it was made on
(`AudioMeasurements`), and a file that carries those packets again (the soundtrack muxed into each
render, then checked by the export gate) is read for its digest, a demux without decoding, instead of
being decoded and metered again (~1 s per 180 s final). Any other audio is measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from montage_pipeline.media.loudness import LoudnessMeter
from montage_pipeline.media.mix import RATE

log = logging.getLogger(__name__)

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


def _chunks(container: av.container.InputContainer, hasher: Any = None) -> Iterator[np.ndarray]:
    """The first audio stream decoded frame by frame; each packet goes to `hasher` too when given."""
    audio = container.streams.audio[0]
    for packet in container.demux(audio):
        if hasher is not None:
            _hash_packet(hasher, packet)
        for frame in packet.decode():
            pcm = frame.to_ndarray()
            channels = frame.layout.nb_channels
            pcm = pcm.reshape(channels, -1) if frame.format.is_planar else pcm.reshape(-1, channels).T
            yield pcm.astype(np.float32, copy=False)


def _joined(chunks: Iterator[np.ndarray], samples: int) -> Iterator[np.ndarray]:
    """Consecutive chunks joined into blocks of at least `samples` (the last may be shorter). Measuring a
    decoded AAC frame (1024 samples) at a time spent more in the per-call overhead of the meter and the
    scans than in measuring: a 90 s soundtrack measured 1.40 s frame by frame, 0.8 s by the second. A
    change of channel count ends a block, so the meter still sees it and says what is wrong."""
    held: list[np.ndarray] = []
    count = 0
    for pcm in chunks:
        if held and pcm.shape[0] != held[0].shape[0]:
            yield np.concatenate(held, axis=1)
            held, count = [], 0
        held.append(pcm)
        count += pcm.shape[1]
        if count >= samples:
            yield np.concatenate(held, axis=1)
            held, count = [], 0
    if held:
        yield np.concatenate(held, axis=1)


def decode_audio(path: Path) -> np.ndarray:
    """The file's whole audio as float32 (channels, samples) at its own rate."""
    chunks = list(decoded_chunks(path))
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), np.float32)


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
    return measure_audio(path).report


@dataclass(frozen=True, slots=True)
class MeasuredAudio:
    """A file's audio measured, with the digest of the packets it was measured on (`audio_digest`)."""

    digest: str
    report: AudioSpecReport
    true_peak_dbtp: float  # unrounded (the report's is rounded to 0.01 dB, as the checks print it)


def measure_audio(path: Path) -> MeasuredAudio:
    """Decode and measure the file's first audio stream, hashing its packets on the way (one pass)."""
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        codec, rate, channels = audio.codec_context.name, audio.rate, audio.channels
        hasher = _packet_hasher(audio)
        meter = LoudnessMeter(channels, rate)
        silence = _SilenceScan()
        clipped = 0
        for pcm in _joined(_chunks(container, hasher), rate):
            meter.add(pcm)
            magnitude = np.abs(pcm)
            silence.add(magnitude.max(axis=0) < SILENCE)
            clipped += int((magnitude >= CLIP).sum())
        v_dur, v_fps = _video_timing(container)
    loudness = meter.result()
    report = AudioSpecReport(
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
    return MeasuredAudio(hasher.hexdigest(), report, loudness.true_peak_dbtp)


def audio_digest(path: Path) -> tuple[str, float, float]:
    """The digest of the file's first audio stream (`_packet_hasher`) and its video's duration and frame
    rate, read without decoding anything."""
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        hasher = _packet_hasher(audio)
        for packet in container.demux(audio):
            _hash_packet(hasher, packet)
        return hasher.hexdigest(), *_video_timing(container)


class AudioMeasurements:
    """Measurements by the digest of the audio they were made on: `inspect` decodes only audio it has
    not seen. Written beside the files they describe (`write`), so a later step reuses them; a file
    whose packets differ in any byte has another digest and is measured."""

    def __init__(self, measured: Mapping[str, AudioSpecReport] | None = None) -> None:
        self.reports: dict[str, AudioSpecReport] = dict(measured or {})
        self.reused = 0  # files `inspect` answered from a digest

    def add(self, measured: MeasuredAudio) -> None:
        self.reports[measured.digest] = measured.report

    def inspect(self, path: Path) -> AudioSpecReport:
        """`inspect_audio(path)`, without decoding when its packets were measured before."""
        if self.reports:
            digest, v_dur, v_fps = audio_digest(path)
            if digest in self.reports:
                self.reused += 1
                return dataclasses.replace(self.reports[digest], video_duration_s=v_dur, video_fps=v_fps)
        measured = measure_audio(path)
        self.add(measured)
        return measured.report

    def write(self, path: Path) -> Path:
        document = {digest: report_fields(report) for digest, report in self.reports.items()}
        path.write_text(json.dumps(document, sort_keys=True))
        return path

    @classmethod
    def read(cls, path: Path | None) -> AudioMeasurements:
        """The measurements `write` left at `path`; none when there is no file, or (with a warning) when
        it cannot be read: they only spare a decode, so without them every file is measured."""
        if path is None:
            return cls()
        try:
            document: dict[str, dict[str, Any]] = json.loads(path.read_text())
            return cls({digest: report_from_fields(fields) for digest, fields in document.items()})
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "audio measurements %s unreadable (%s: %s): measuring every file",
                path.name,
                type(exc).__name__,
                exc,
            )
            return cls()


def report_fields(report: AudioSpecReport) -> dict[str, Any]:
    """The report as JSON-ready fields (`report_from_fields` reads them back)."""
    return dataclasses.asdict(report)


def report_from_fields(fields: Mapping[str, Any]) -> AudioSpecReport:
    return AudioSpecReport(**{**fields, "short_term_lufs": tuple(fields["short_term_lufs"])})


def _packet_hasher(stream: av.audio.stream.AudioStream) -> Any:
    """A SHA-256 started with what decoding depends on besides the packets: the decoder's version and
    the stream's codec parameters (codec, rate, channels, sample format, extradata)."""
    context = stream.codec_context
    hasher = hashlib.sha256()
    header = (
        f"libavcodec {av.library_versions['libavcodec']}|{context.name}|{stream.rate}|"
        f"{stream.channels}|{context.format.name if context.format else ''}|"
    )
    hasher.update(header.encode())
    hasher.update(bytes(context.extradata or b""))
    return hasher


def _hash_packet(hasher: Any, packet: av.Packet) -> None:
    """Each packet's length, bytes, flags and side data, in order. Not its timestamps or duration: a
    muxer may move them (the MP4 muxer stretches the first audio packet's duration to meet the video's
    start), and an AAC decoder's samples do not depend on them."""
    if not packet.size:  # the demuxer's end-of-stream marker
        return
    hasher.update(struct.pack("<q??", packet.size, packet.is_discard, packet.is_corrupt))
    hasher.update(bytes(packet))
    for side in packet.iter_sidedata():
        hasher.update(str(side.data_type).encode())
        hasher.update(bytes(side))


def _video_timing(container: av.container.InputContainer) -> tuple[float, float]:
    """The first video stream's duration (0 without one) and frame rate (30 when it does not say)."""
    video = container.streams.video[0] if container.streams.video else None
    duration = (
        float(video.duration * video.time_base) if video and video.duration and video.time_base else 0.0
    )
    return duration, float(video.average_rate) if video and video.average_rate else 30.0


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
