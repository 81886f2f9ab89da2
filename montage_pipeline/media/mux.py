"""Put the soundtrack into a rendered video: the soundtrack encoded once (AAC-LC 48 kHz stereo), then
its packets and the video's copied as they are into each final.

Packets are interleaved by time as they are written (no whole-file buffering), the moov goes first
(faststart) and no edit list is written. The audio is cut or padded to the video's duration, so the two
streams end within one frame of each other.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.aac_segments import AAC_FRAME, RATE, encode_aac
from montage_pipeline.media.audio_specs import MeasuredAudio, measure_audio
from montage_pipeline.media.mix import MixReport, master

AAC_OPTIONS = {"aac_pns": "0"}  # see `encode_soundtrack`


def video_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.duration is not None and video.time_base is not None
        return float(video.duration * video.time_base)


def fit_to(pcm: np.ndarray, duration_s: float, fade_out_s: float = 0.0) -> np.ndarray:
    """The soundtrack cut or padded to exactly `duration_s`, with an optional fade-out at the end: the
    samples themselves (no copy) when they already are that."""
    n = round(duration_s * RATE)
    if pcm.shape[1] == n and fade_out_s <= 0 and pcm.dtype == np.float32:
        return pcm
    out = np.zeros((2, n), dtype=np.float32)
    m = min(n, pcm.shape[1])
    out[:, :m] = pcm[:, :m]
    if fade_out_s > 0:
        k = min(n, round(fade_out_s * RATE))
        out[:, n - k :] *= np.linspace(1, 0, k, dtype=np.float32)
    return out


def encode_soundtrack(
    pcm: np.ndarray, path: Path, bitrate: int = 320_000, segments: int | None = None
) -> None:
    """AAC-LC 48 kHz stereo in an M4A whose timeline is the video's: `mux` copies these packets as they are.

    AAC encoders put 1024 priming samples in front, stamped with negative timestamps. Left so, a muxer
    shifts every stream, and without an edit list the MP4 muxer absorbs that shift in the first video
    sample's duration: a variable frame rate that platforms flag. Instead the first 1024 samples of the
    soundtrack (silence under the title card) make way for the priming, so every decoded sample still
    lands at its own time and the packets start at 0. No edit list, like the finals.

    Perceptual noise substitution is off (`aac_pns=0`): it replaces noise-like bands with noise the
    decoder makes up, a low-bitrate tool that at 320 kbit/s only adds error. With it, FFmpeg's encoder
    now and then put a click 4-5 dB over the master's peak (a +2.2 dBTP sample in a -3 dBTP master), so
    the encoded true peak jumped unpredictably with the smallest change of the master and
    `master_and_encode` limited the whole soundtrack ever harder (three rounds, -6.5 dBTP) to get under
    the ceiling; without it the encoder's overshoot stays near 0.5 dB and one round holds.

    The encode runs in segments on several cores at once (`aac_segments`: ~6 s of one core for a 90 s
    track otherwise); the segments follow from the length (`segments` overrides), so the packets do not
    depend on the machine.
    """
    # From frame 1 on: frame 0's samples make way for the encoder's priming.
    encoded = encode_aac(pcm, bitrate, AAC_OPTIONS, first=1, segments=segments)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart", "use_editlist": "0"}) as out:
        stream = out.add_stream("aac", rate=RATE, layout="stereo", options=dict(AAC_OPTIONS))
        stream.bit_rate = bitrate
        stream.codec_context.extradata = encoded.extradata
        for frame in encoded.frames:
            packet = av.Packet(frame.data)
            packet.pts = packet.dts = frame.index * AAC_FRAME
            packet.duration = frame.duration
            packet.time_base = Fraction(1, RATE)
            packet.stream = stream
            out.mux(packet)
    tmp.replace(path)


def _timed(
    packets: Iterator[av.Packet], source: av.stream.Stream, target: av.stream.Stream, rank: int
) -> Iterator[tuple[float, int, av.Packet, av.stream.Stream]]:
    """(time, rank, packet, output stream) for each real packet of one input stream, in file order."""
    assert source.time_base is not None
    for packet in packets:
        if packet.dts is not None:
            yield float(packet.dts * source.time_base), rank, packet, target


def mux(video_path: Path, audio_path: Path, out_path: Path) -> None:
    """The video's packets and the encoded soundtrack's packets, both copied, interleaved by time.

    Encoding once and copying is what lets two cuts of the same length share one soundtrack.
    """
    tmp = out_path.with_name(f".{out_path.stem}.partial{out_path.suffix}")
    with (
        av.open(str(video_path)) as video_src,
        av.open(str(audio_path)) as audio_src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart", "use_editlist": "0"}) as out,
    ):
        vin, ain = video_src.streams.video[0], audio_src.streams.audio[0]
        vout, aout = out.add_stream_from_template(vin), out.add_stream_from_template(ain)
        # Audio before video at equal times (rank 0 before 1), as a player wants the sound ready.
        streams = heapq.merge(
            _timed(audio_src.demux(ain), ain, aout, 0),
            _timed(video_src.demux(vin), vin, vout, 1),
            key=lambda item: (item[0], item[1]),
        )
        for _, _, packet, stream in streams:
            packet.stream = stream
            out.mux(packet)
    tmp.replace(out_path)


@dataclass(frozen=True, slots=True)
class EncodedSoundtrack:
    path: Path  # the M4A whose packets `mux` copies
    report: MixReport
    encoded_peak_dbtp: float  # measured on the decoded AAC
    rounds: int  # master + encode passes it took to keep the encoded true peak under the ceiling
    # The mastered PCM that was encoded: shorter cuts are cut from it (`encode_cut`). None for one read
    # back from the media store, whose other lengths were encoded when it was made.
    mastered: np.ndarray | None
    # The encoded file's audio as the spec check measures it, by its packets' digest: every final these
    # packets are muxed into is checked from it (`AudioMeasurements`). None: not measured (older manifest).
    measured: MeasuredAudio | None = None


def master_and_encode(
    mixed: np.ndarray, audio_path: Path, ceiling_dbtp: float = -1.0, bitrate: int = 320_000
) -> EncodedSoundtrack:
    """Master, encode, and measure the *encoded* audio: if AAC pushed the true peak over the ceiling,
    master again with the limiter lowered by the excess. Loudness stays at the target; only peaks come
    down."""
    margin, rounds = 1.0, 0
    while True:
        rounds += 1
        soundtrack, report = master(mixed, limiter_dbtp=ceiling_dbtp - margin)
        measured = _encode_and_measure(soundtrack, audio_path, bitrate)
        if measured.true_peak_dbtp <= ceiling_dbtp or rounds == 4:  # the check reports a peak still over
            break
        margin += measured.true_peak_dbtp - ceiling_dbtp + 0.2
    return EncodedSoundtrack(audio_path, report, measured.true_peak_dbtp, rounds, soundtrack, measured)


def _encode_and_measure(pcm: np.ndarray, audio_path: Path, bitrate: int) -> MeasuredAudio:
    """Encode, then measure the encoded file as the spec check does (its true peak is ebur128's)."""
    encode_soundtrack(pcm, audio_path, bitrate)
    return measure_audio(audio_path)


def encode_cut(
    full: EncodedSoundtrack,
    duration_s: float,
    fade_out_s: float,
    audio_path: Path,
    ceiling_dbtp: float = -1.0,
    bitrate: int = 320_000,
) -> EncodedSoundtrack | None:
    """A shorter cut of an already mastered soundtrack, encoded: None if the encoder pushed its true peak
    over the ceiling (the caller masters that cut on its own).

    Cutting and fading a master only lowers its peaks and moves its loudness by the little the dropped
    tail weighed, so one master serves every cut length: mastering is most of the soundtrack's time.
    """
    if full.mastered is None:
        raise ValueError(f"{full.path.name}: no mastered samples to cut a {duration_s:.3f} s copy from")
    cut = fit_to(full.mastered, duration_s, fade_out_s=fade_out_s)
    measured = _encode_and_measure(cut, audio_path, bitrate)
    if measured.true_peak_dbtp > ceiling_dbtp:
        return None
    return EncodedSoundtrack(audio_path, full.report, measured.true_peak_dbtp, 0, cut, measured)
