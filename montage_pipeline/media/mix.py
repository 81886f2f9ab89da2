"""The montage's soundtrack: game audio per span, music ducked under the action, mastered for streaming.

- Game audio: each span's audio decoded with PyAV and resampled to 48 kHz stereo (mono and 44.1 kHz
  sources too; clips without audio give silence), loudness-matched per clip (ITU-R BS.1770, FFmpeg's
  `ebur128` as everywhere, `media/loudness.py`) so every player sounds equally loud, with 10 ms fades
  at each cut and a crossfade under dissolves.
- Ducking: a sidechain envelope of the game track (10 ms attack, 400 ms release) lowers the music by
  up to `duck_db` while the game is loud.
- The two tracks are combined with pydub (PCM in, PCM out; pydub never calls ffmpeg here) at 32-bit
  sample width, so the master's gain does not raise 16-bit quantisation noise with the quiet passages.
- Master: integrated loudness to -14 LUFS, then a look-ahead limiter on the 4× oversampled signal keeps
  the true peak at or under -1 dBTP, measured on the encoded file. The reported loudness, loudness range
  and true peak are FFmpeg's `ebur128` figures (`media/loudness.py`).
- Memory: the passes over the whole track (mixing, oversampling, loudness, the ducking and limiter
  filters) go a block (`BLOCK`) at a time and the mix is written into the music's buffer, so mastering
  holds about two copies of the track beside its input (the 247 s long cut: ~100 MB each) where the
  whole-track passes held twenty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.audio_batches import BatchedResampler
from montage_pipeline.media.cores import usable_cores
from montage_pipeline.media.loudness import (
    SILENT_DB,
    SILENT_LUFS,
    Loudness,
    integrated_loudness,
    measure_loudness,
)

log = logging.getLogger(__name__)

RATE = 48_000
CLIP_LUFS = -20.0
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
FADE_S = 0.01
BLOCK = 5 * RATE  # samples per block of the whole-track passes: a few MB each, whole milliseconds
OVERSAMPLE_MARGIN = 64  # neighbours a block is oversampled with: resample_poly's filter reaches 10
# How far under its ceiling the limiter aims: `ebur128` reads inter-sample peaks ~0.1 dB over the envelope.
LIMIT_MARGIN_DB = 0.25


@dataclass(frozen=True, slots=True)
class AudioSpan:
    source_path: Path
    source_in_s: float
    source_out_s: float
    montage_in_s: float
    montage_out_s: float
    has_audio: bool
    crossfade_in_s: float = 0.0  # under a dissolve from the previous span


@dataclass(frozen=True, slots=True)
class MixReport:
    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float
    duration_s: float


def decode_span_audio(span: AudioSpan) -> np.ndarray:
    """Stereo float32 (2, n) at 48 kHz for [in, out) of the source; silence when it has no audio."""
    n = round((span.source_out_s - span.source_in_s) * RATE)
    out = np.zeros((2, n), dtype=np.float32)
    if not span.has_audio:
        return out
    try:
        with av.open(str(span.source_path)) as container:
            if not container.streams.audio:
                return out
            stream = container.streams.audio[0]
            assert stream.time_base is not None
            start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
            resampler = BatchedResampler("fltp", "stereo", RATE)
            container.seek(int((start + max(0.0, span.source_in_s - 0.5)) / stream.time_base), stream=stream)
            chunks: list[np.ndarray] = []
            first: float | None = None
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if first is None:
                    first = float(frame.time) - start
                chunks += resampler.resample(frame)
                if float(frame.time) - start > span.source_out_s + 0.1:
                    break
            chunks += resampler.flush()
        if first is None or not chunks:
            return out
        # Samples are contiguous from the first decoded frame on: place them by that frame's time.
        pcm = np.concatenate(chunks, axis=1)
        i = round((first - span.source_in_s) * RATE)
        a, b = max(0, i), min(n, i + pcm.shape[1])
        if b > a:
            out[:, a:b] = pcm[:, a - i : b - i]
    except av.error.FFmpegError as exc:
        log.warning("%s: audio unreadable (%s); using silence", span.source_path.name, exc)
    return out


def _loudness_match(pcm: np.ndarray) -> np.ndarray:
    if pcm.shape[1] < int(0.4 * RATE) or not np.any(pcm):
        return pcm
    loudness = integrated_loudness(pcm)
    if loudness <= SILENT_LUFS:  # nothing over the absolute gate: leave it quiet
        return pcm
    return (pcm * 10 ** ((CLIP_LUFS - loudness) / 20)).astype(np.float32)


def game_track(spans: Sequence[AudioSpan], duration_s: float) -> np.ndarray:
    """All spans' game audio on the montage timeline, loudness-matched, with fades at every cut.

    Under a dissolve the outgoing clip's audio plays on past its out-point and fades out while the
    incoming one fades in (a crossfade), like the pictures.
    """
    track = np.zeros((2, round(duration_s * RATE)), dtype=np.float32)
    fade = int(FADE_S * RATE)
    for index, span in enumerate(spans):
        tail_s = spans[index + 1].crossfade_in_s if index + 1 < len(spans) else 0.0
        extended = replace(
            span, source_out_s=span.source_out_s + tail_s, montage_out_s=span.montage_out_s + tail_s
        )
        pcm = _loudness_match(decode_span_audio(extended))
        n = pcm.shape[1]
        ramp_in = max(fade, int(span.crossfade_in_s * RATE))
        ramp_out = max(fade, int(tail_s * RATE))
        env = np.ones(n, dtype=np.float32)
        env[: min(ramp_in, n)] = np.linspace(0, 1, min(ramp_in, n))
        env[max(0, n - ramp_out) :] *= np.linspace(1, 0, min(ramp_out, n))
        i = round(span.montage_in_s * RATE)
        j = min(track.shape[1], i + n)
        track[:, i:j] += (pcm * env)[:, : j - i]
    return track


def _blocks(n: int, margin: int) -> Iterator[tuple[int, int, int, int]]:
    """(a, b, lo, hi) per `BLOCK` of n samples: the block [a, b) and the span [lo, hi) it is read with,
    `margin` neighbours either side where the track has them."""
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        yield a, b, max(0, a - margin), min(n, b + margin)


def duck_gain(
    game: np.ndarray, duck_db: float = 9.0, attack_s: float = 0.01, release_s: float = 0.4
) -> np.ndarray:
    """Per-sample music gain: 1 when the game is quiet, down to -duck_db while it is loud.

    The level is followed every millisecond (a 20 ms moving average sampled every 48 samples), worked
    out a block at a time, so only the gain itself is a whole-track array.
    """
    from scipy.ndimage import uniform_filter1d  # see media.LAZY_LIBRARIES

    n = game.shape[1]
    step = RATE // 1000
    window = int(0.02 * RATE)
    level = np.empty(-(-n // step), dtype=np.float32)
    for a, b, lo, hi in _blocks(n, window):  # BLOCK is whole milliseconds: each starts on a sampled point
        power = np.square(game[0, lo:hi])
        for channel in game[1:]:
            power += np.square(channel[lo:hi])
        power /= game.shape[0]
        averaged = uniform_filter1d(power, size=window)[a - lo : b - lo : step]
        level[a // step : a // step + len(averaged)] = averaged
    # A moving average of squares can dip a hair under zero in float arithmetic: clamp before the root.
    np.sqrt(np.maximum(level, 0.0, out=level), out=level)
    db = 20 * np.log10(level + 1e-9)
    amount = np.clip((db + 40) / 25, 0, 1)  # -40 dBFS: no ducking; -15 dBFS and louder: full ducking
    # Fast attack, slow release: a one-pole follower that rises fast and falls slowly.
    a_up, a_down = np.exp(-1 / (attack_s * RATE)), np.exp(-1 / (release_s * RATE))
    follow = np.empty_like(amount)
    acc = 0.0
    up, down = a_up**step, a_down**step
    for k, v in enumerate(amount):
        acc = v + (acc - v) * (up if v > acc else down)
        follow[k] = acc
    # One gain per millisecond, spread to its samples (the last millisecond may be cut short).
    return np.repeat((10 ** (-duck_db * follow / 20)).astype(np.float32), step)[:n]


def combine(
    music: np.ndarray,
    game: np.ndarray,
    music_gain_db: float = -4.0,
    sample_width: int = 4,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Overlay the ducked music and the game audio with pydub, as integer PCM of `sample_width` bytes.

    32-bit (the default) keeps what the master needs: it raises the mix by 10 dB or more, and at 16 bits
    a quiet passage (a fade, ambience under -60 dBFS) would carry its quantisation noise up with it.
    `out` takes the mix instead of a new array; it may be `music` or `game` (each block is read before
    it is written), which saves a whole-track copy.
    """
    from pydub import AudioSegment  # imported here: pydub warns at import when no ffmpeg is on PATH

    full_scale = 2 ** (8 * sample_width - 1) - 1
    dtype = f"<i{sample_width}"

    def segment(pcm: np.ndarray) -> AudioSegment:
        # float64 before scaling: 2**31 - 1 rounds up to 2**31 in float32 and would wrap at full scale.
        data = np.round(np.clip(pcm, -1, 1).T.astype(np.float64) * full_scale).astype(dtype).tobytes()
        return AudioSegment(data=data, sample_width=sample_width, frame_rate=RATE, channels=2)

    n = min(music.shape[1], game.shape[1])
    target = np.zeros((2, n), dtype=np.float32) if out is None else out[:, :n]
    # A block at a time (overlay and gain act sample by sample): the whole track as float64 and bytes
    # would be ten copies of it. pydub cuts a segment to whole milliseconds, so the blocks are whole
    # milliseconds too: only the last one loses its fraction of a millisecond, as the whole track would.
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        # Headroom before summing: the master stage sets the final level.
        mixed = segment(game[:, a:b] * 0.5).overlay(segment(music[:, a:b] * 0.5).apply_gain(music_gain_db))
        samples = np.frombuffer(mixed.raw_data, dtype=dtype).reshape(-1, 2).T[:, : b - a]
        target[:, a : a + samples.shape[1]] = samples / full_scale
        target[:, a + samples.shape[1] : b] = 0.0
    return target


def true_peak_db(pcm: np.ndarray) -> float:
    """True peak (dBTP) of 48 kHz PCM, as FFmpeg's `ebur128` measures it."""
    return measure_loudness(pcm, RATE).true_peak_dbtp


def _true_peak_envelope(pcm: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude on either channel among its 4× oversampled points (BS.1770):
    where the limiter must act. The figure it is judged by is `ebur128`'s (`_limit`).

    Oversampled a block at a time: the whole track at 4× in float64 would be 8× the track (760 MB for
    the 247 s long cut). Each block is resampled with `OVERSAMPLE_MARGIN` neighbours on either side,
    more than the interpolation filter reaches, so every point is what the whole-track pass gives.
    """
    from scipy.signal import resample_poly  # see media.LAZY_LIBRARIES

    n = pcm.shape[1]
    envelope = np.empty(n, dtype=np.float32)

    def fill(block: tuple[int, int, int, int]) -> None:
        a, b, lo, hi = block
        over = resample_poly(pcm[:, lo:hi], 4, 1, axis=1)
        over = np.abs(over, out=over).max(axis=0)  # in place: a block's oversampled copy is ~15 MB
        k = 4 * (a - lo)
        envelope[a:b] = over[k : k + 4 * (b - a)].reshape(-1, 4).max(axis=1)

    # The blocks are independent and SciPy's polyphase filter lets go of the GIL: a block per core at a
    # time (the 90 s main cut: 1.05 -> 0.53 s on two idle cores, the same envelope to the bit).
    with ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="true-peak") as pool:
        for _ in pool.map(fill, _blocks(n, OVERSAMPLE_MARGIN)):
            pass
    return envelope


def _limiter_gain(envelope: np.ndarray, ceiling_dbtp: float, scale: float = 1.0) -> np.ndarray:
    """Look-ahead gain that holds `envelope` × `scale` under the ceiling: the minimum needed within ±5 ms
    of each sample, smoothed (no clicks) by a moving average no wider than that window, so it stays at
    or under what every peak needs."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d  # see media.LAZY_LIBRARIES

    ceiling = 10 ** (ceiling_dbtp / 20)
    look = int(0.005 * RATE)
    # One mono array, worked in place (SciPy's 1-D filters read each line into a buffer first).
    gain = np.multiply(envelope, np.float32(scale), dtype=np.float32)
    np.maximum(gain, 1e-9, out=gain)
    np.divide(ceiling, gain, out=gain)
    np.minimum(gain, 1.0, out=gain)
    _filter_in_blocks(minimum_filter1d, gain, 2 * look + 1)
    _filter_in_blocks(uniform_filter1d, gain, look)
    return np.minimum(gain, 1.0, out=gain)


def _filter_in_blocks(filter1d: Callable[..., np.ndarray], line: np.ndarray, size: int) -> None:
    """`line` replaced by `filter1d(line, size)` (SciPy's 1-D minimum or moving average), a block at a
    time. SciPy copies a whole line into two float64 buffers (183 MB for the 247 s long cut, out of
    tracemalloc's sight); each block is filtered with `size` neighbours either side instead, more than
    the filter reaches, so every point sees what the whole-line pass sees. The neighbours before a block
    are kept as they were before the previous block overwrote them."""
    n = len(line)
    before = line[:0].copy()  # the original samples just before the block
    for a, b, _, hi in _blocks(n, size):  # the neighbours before come from `before`, not the line
        segment = np.concatenate((before, line[a:hi]))
        filtered = filter1d(segment, size=size)[len(before) : len(before) + b - a]
        before = line[max(0, b - size) : b].copy()
        line[a:b] = filtered


def master(pcm: np.ndarray, limiter_dbtp: float = CEILING_DBTP - 1.0) -> tuple[np.ndarray, MixReport]:
    """-14 LUFS integrated, true peak ≤ `limiter_dbtp` (oversampled look-ahead limiter).

    The default leaves 1 dB for the AAC encoder, which overshoots on sharp transients; `master_and_encode`
    measures the encoded file and tightens this when that is not enough. The true-peak envelope scales
    with a gain, so it is oversampled once and each loudness iteration only rescales it; the limited
    result is then measured for real (the limiter's own gain moves inter-sample peaks a little).
    """
    if pcm.dtype != np.float32 or not np.isfinite(pcm).all():  # else read as it is: no whole-track copy
        pcm = np.nan_to_num(pcm).astype(np.float32, copy=False)
    loud = integrated_loudness(pcm)
    if loud <= SILENT_LUFS:  # nothing over the absolute gate: nothing to master
        return pcm, MixReport(SILENT_LUFS, SILENT_DB, 0.0, pcm.shape[1] / RATE)
    envelope = _true_peak_envelope(pcm)
    gain_db = TARGET_LUFS - loud
    # Gain to the target, limit the peaks, measure: limiting lowers the loudness a little, so add that back.
    # Each further step is scaled by how much loudness the last step's gain bought (a secant step): the
    # more the limiter bites, the less a dB of gain adds. One whole-track measure fewer than adding back
    # the shortfall alone (three instead of four on the bench week's cuts), and closer to the target.
    out = np.empty_like(pcm)  # one buffer for every iteration's result
    last: tuple[float, float] | None = None  # the previous iteration's (gain dB, loudness)
    for _ in range(6):
        gain = 10 ** (gain_db / 20)
        scale = _limiter_gain(envelope, limiter_dbtp - LIMIT_MARGIN_DB, gain)
        scale *= gain
        np.multiply(pcm, scale, out=out)
        del scale
        loud = integrated_loudness(out)
        if abs(loud - TARGET_LUFS) <= 0.1:
            break
        step = TARGET_LUFS - loud
        if last is not None and gain_db != last[0]:
            step /= min(1.0, max(0.25, (loud - last[1]) / (gain_db - last[0])))
        last = (gain_db, loud)
        gain_db += step
    out, measured = _limit(out, limiter_dbtp)
    report = MixReport(
        round(measured.integrated_lufs, 2),
        round(measured.true_peak_dbtp, 2),
        round(measured.loudness_range_lu, 2),
        out.shape[1] / RATE,
    )
    return out, report


def _limit(pcm: np.ndarray, ceiling_dbtp: float) -> tuple[np.ndarray, Loudness]:
    """The signal with its true peak ≤ `ceiling_dbtp` as `ebur128` measures it (limited in place), and
    that measurement.

    `ebur128`'s interpolation reads inter-sample peaks a little higher than the envelope's (~0.1 dB on
    real mixes), so each pass aims under the ceiling by what the last one overshot, plus a margin: one
    pass, where a fixed step of 0.1 dB took two or three (a whole-track measure and envelope each).
    """
    out = pcm
    aim = ceiling_dbtp - LIMIT_MARGIN_DB
    for attempt in range(5):
        measured = measure_loudness(out, RATE)
        if measured.true_peak_dbtp <= ceiling_dbtp or attempt == 4:
            break
        aim -= measured.true_peak_dbtp - ceiling_dbtp + LIMIT_MARGIN_DB
        out *= _limiter_gain(_true_peak_envelope(out), aim)
    return out, measured
