"""Perceptual fingerprints: the same moment re-encoded (identical files are found by their sha256,
`storage/hashing.py`).

A re-upload of the same moment (a teammate's copy, a re-encode at another size or bitrate, a copy
trimmed by a few seconds) has other bytes but the same pictures at the same relative times. The visual
fingerprint is a 64-bit DCT perceptual hash (pHash) of every keyframe, with its time. Decoding only
keyframes (`skip_frame="NONKEY"`) costs about a tenth of a full decode; encoders place keyframes at the
same scene cuts and regular intervals, so two encodes of one clip share most keyframe times. Two
fingerprints are compared at the time shift that matches them best, which also finds copies trimmed at a
keyframe (how editors cut without re-encoding). Known limit: a copy trimmed at an arbitrary frame *and*
re-encoded has keyframes at new content positions and is not recognised; that needs a dense decode,
which selection cannot afford for every candidate.

A pHash match alone is not proof on real gameplay: two different rounds in one arena with a fixed camera
(ViZDoom's defend_the_center, seed 101 of ../shared/gameplay_kit) matched at a median distance of 0.03,
as close as a re-encode (0.016), and the week's best clip was dropped as a "copy". A match is therefore
confirmed: by the audio (the loudness envelopes agree at the same shift: a copy carries the same sound)
when both clips have audio, else by a finer 256-bit hash of the same keyframes (16×16 frequencies: the
sprites that tell two rounds apart), on which those rounds stay at ≥ 0.12 and a re-encode at 0.016.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.audio_batches import BatchedResampler

HASH_SIZE = 32  # the frame is reduced to 32×32 gray; the 8×8 lowest DCT frequencies make the hash
FINE_SIZE = 64  # the confirming hash: 64×64 gray, the 16×16 lowest frequencies
FINE_FREQS = 16
FINE_THRESHOLD = 0.08
MATCH_WINDOW_S = 0.35  # keyframes this close in time (after the shift) are compared
AUDIO_STEP_S = 0.25
AUDIO_RATE = 8000
AUDIO_AGREEMENT = 0.8  # correlation of two loudness envelopes (dB) that makes them one recording
MIN_AUDIO_STEPS = 8
# Calibrated on synthetic gameplay (test_probe_and_fingerprint.py): re-encodes at another size and CRF
# and copies trimmed by 2.5 s match at a median distance ≤ 0.05; different clips stay ≥ 0.33.
DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class VisualFingerprint:
    times_s: tuple[float, ...]
    hashes: tuple[int, ...]  # 64-bit pHash per keyframe
    fine: tuple[int, ...] = ()  # 256-bit hash per keyframe, to confirm a match (not stored in the DB)
    audio_db: tuple[float, ...] = ()  # loudness per AUDIO_STEP_S, empty without audio (not stored)

    def to_hex(self) -> str:
        """Compact text for a DB column: `time:hash` pairs (the confirming hashes and sound are not kept)."""
        return " ".join(f"{t:.3f}:{h:016x}" for t, h in zip(self.times_s, self.hashes, strict=True))

    @classmethod
    def from_hex(cls, text: str) -> VisualFingerprint:
        pairs = [p.split(":") for p in text.split()]
        return cls(tuple(float(t) for t, _ in pairs), tuple(int(h, 16) for _, h in pairs))


def phash(gray: np.ndarray, size: int = HASH_SIZE, freqs: int = 8) -> int:
    import cv2  # see media.LAZY_LIBRARIES

    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    dct = cv2.dct(small)[:freqs, :freqs]
    bits = (dct > np.median(dct[1:].ravel())).ravel()  # median without the DC row: robust to brightness
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def audio_envelope(path: Path) -> tuple[float, ...]:
    """Loudness (dB) per AUDIO_STEP_S of the first audio track; empty without one. Costs ~1 % of a video
    decode: only the audio stream is demuxed."""
    levels = _LevelSteps(round(AUDIO_STEP_S * AUDIO_RATE))
    resampler: BatchedResampler | None = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return ()
            resampler = BatchedResampler("flt", "mono", AUDIO_RATE)
            for frame in container.decode(container.streams.audio[0]):
                levels.add(resampler.resample(frame))
    except av.error.FFmpegError:
        pass  # a damaged tail: what decoded still fingerprints the sound
    if resampler is not None:
        levels.add(resampler.rest())
    return tuple(levels.db)


class _LevelSteps:
    """RMS level (dB) of each whole `step` of mono samples, fed in chunks of any length."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.pending = np.zeros(0, dtype=np.float32)
        self.db: list[float] = []

    def add(self, chunks: list[np.ndarray]) -> None:
        if not chunks:
            return
        pcm = np.concatenate([self.pending, *(c.reshape(-1) for c in chunks)])
        whole = len(pcm) // self.step * self.step
        steps = pcm[:whole].reshape(-1, self.step).astype(np.float64)
        self.db += [round(20 * math.log10(math.sqrt(ms) + 1e-6), 2) for ms in np.mean(steps**2, axis=1)]
        self.pending = pcm[whole:]


def visual_fingerprint(path: Path, *, max_keyframes: int = 120, sound: bool = True) -> VisualFingerprint:
    """The keyframes' hashes and, with `sound`, the audio envelope that confirms a match. Without it the
    envelope is left for `with_sound`, to be read only for a clip whose pictures match another's: the
    audio decode was as costly as the keyframes' (selection checks every clip of the week, and few match).
    """
    times: list[float] = []
    hashes: list[int] = []
    fine: list[int] = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        video.codec_context.skip_frame = "NONKEY"
        start = (
            float(video.start_time * video.time_base)
            if video.start_time is not None and video.time_base
            else 0.0
        )
        try:
            for frame in container.decode(video):
                if frame.time is None:
                    continue
                gray = frame.reformat(width=128, height=72, format="gray", interpolation="AREA").to_ndarray()
                times.append(round(float(frame.time) - start, 3))
                hashes.append(phash(gray))
                fine.append(phash(gray, FINE_SIZE, FINE_FREQS))
                if len(times) >= max_keyframes:
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: the keyframes before it still fingerprint the clip
    return VisualFingerprint(tuple(times), tuple(hashes), tuple(fine), audio_envelope(path) if sound else ())


def with_sound(fingerprint: VisualFingerprint, path: Path) -> VisualFingerprint:
    """The fingerprint with the audio envelope of `path` (the file it was made from) read in, when it was
    made without one (`visual_fingerprint(..., sound=False)`); a file without audio keeps it empty."""
    if fingerprint.audio_db:
        return fingerprint
    return dataclasses.replace(fingerprint, audio_db=audio_envelope(path))


def _hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _pairs(a: VisualFingerprint, b: VisualFingerprint, shift: float) -> list[tuple[int, int]]:
    """Indices of a's and b's keyframes that meet when b is moved `shift` seconds later."""
    tb = np.array(b.times_s)
    pairs = []
    for i, t in enumerate(a.times_s):
        j = int(np.argmin(np.abs(tb + shift - t)))
        if abs(tb[j] + shift - t) <= MATCH_WINDOW_S:
            pairs.append((i, j))
    return pairs


def best_alignment(
    a: VisualFingerprint, b: VisualFingerprint, *, max_shift_s: float = 10.0
) -> tuple[float, float]:
    """(median normalised Hamming distance 0..1, shift s) at the best shift; (1.0, 0.0) if none aligns.

    The median, not the mean: around a scene cut two encoders may put the keyframe one frame apart, on
    either side of the cut, and one such pair must not make a copy look different.
    """
    if not a.hashes or not b.hashes:
        return 1.0, 0.0
    shifts = sorted({round(x - y, 1) for x in a.times_s for y in b.times_s if abs(x - y) <= max_shift_s})
    best = (1.0, 0.0)
    min_pairs = max(1, min(2, len(a.hashes), len(b.hashes)))  # short clips may share only two keyframes
    for shift in shifts:
        pairs = _pairs(a, b, shift)
        overlap = len(pairs) / min(len(a.hashes), len(b.hashes))
        if len(pairs) >= min_pairs and overlap >= 0.5:
            d = float(np.median([_hamming(a.hashes[i], b.hashes[j]) / 64.0 for i, j in pairs]))
            best = min(best, (d, shift))
    return best


def _audio_agrees(a: tuple[float, ...], b: tuple[float, ...], shift: float) -> bool:
    """Whether two loudness envelopes are one recording when b is moved `shift` seconds later."""
    k = round(shift / AUDIO_STEP_S)
    x, y = (np.array(a[k:]), np.array(b)) if k >= 0 else (np.array(a), np.array(b[-k:]))
    n = min(len(x), len(y))
    if n < MIN_AUDIO_STEPS:
        return True  # too short to tell: the pictures decide
    x, y = x[:n], y[:n]
    if x.std() < 1e-6 or y.std() < 1e-6:
        return bool(np.abs(x - y).mean() < 3.0)  # flat sound: equal levels or not
    return float(np.corrcoef(x, y)[0, 1]) >= AUDIO_AGREEMENT


def _fine_distance(a: VisualFingerprint, b: VisualFingerprint, shift: float) -> float:
    pairs = _pairs(a, b, shift)
    bits = FINE_FREQS * FINE_FREQS
    return float(np.median([_hamming(a.fine[i], b.fine[j]) / bits for i, j in pairs])) if pairs else 1.0


def are_near_duplicates(
    a: VisualFingerprint, b: VisualFingerprint, *, threshold: float = DEFAULT_THRESHOLD
) -> bool:
    """The same moment: the pictures match at some shift, and the sound (or the fine pictures) agree."""
    shift = matching_shift(a, b, threshold=threshold)
    return shift is not None and confirmed(a, b, shift)


def matching_shift(
    a: VisualFingerprint, b: VisualFingerprint, *, threshold: float = DEFAULT_THRESHOLD
) -> float | None:
    """The shift (s) at which the pictures match, None when they do not: the first half of
    `are_near_duplicates`, which needs no sound."""
    distance, shift = best_alignment(a, b)
    return shift if distance <= threshold else None


def confirmed(a: VisualFingerprint, b: VisualFingerprint, shift: float) -> bool:
    """Whether pictures that match at `shift` are one recording: the sound agrees when both have it,
    else the fine hashes."""
    if a.audio_db and b.audio_db:
        return _audio_agrees(a.audio_db, b.audio_db, shift)
    if a.fine and b.fine:
        return _fine_distance(a, b, shift) <= FINE_THRESHOLD
    return True  # a fingerprint read back from the DB (no fine hashes): the pictures decide
