"""Content hashes: sha256 for identical files, perceptual fingerprints for the same moment re-encoded.

A re-upload of the same moment (a teammate's copy, a re-encode at another size or bitrate, a copy
trimmed by a few seconds) has other bytes but the same pictures at the same relative times. The visual
fingerprint is a 64-bit DCT perceptual hash (pHash) of every keyframe, with its time. Decoding only
keyframes (`skip_frame="NONKEY"`) costs about a tenth of a full decode; encoders place keyframes at the
same scene cuts and regular intervals, so two encodes of one clip share most keyframe times. Two
fingerprints are compared at the time shift that matches them best, which also finds copies trimmed at a
keyframe (how editors cut without re-encoding). Known limit: a copy trimmed at an arbitrary frame *and*
re-encoded has keyframes at new content positions and is not recognised; that needs a dense decode,
which selection cannot afford for every candidate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

HASH_SIZE = 32  # the frame is reduced to 32×32 gray; the 8×8 lowest DCT frequencies make the hash
MATCH_WINDOW_S = 0.35  # keyframes this close in time (after the shift) are compared
# Calibrated on synthetic gameplay (test_probe_and_fingerprint.py): re-encodes at another size and CRF
# and copies trimmed by 2.5 s match at a median distance ≤ 0.05; different clips stay ≥ 0.33.
DEFAULT_THRESHOLD = 0.2


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class VisualFingerprint:
    times_s: tuple[float, ...]
    hashes: tuple[int, ...]  # 64-bit pHash per keyframe

    def to_hex(self) -> str:
        """Compact text for a DB column: `time:hash` pairs."""
        return " ".join(f"{t:.3f}:{h:016x}" for t, h in zip(self.times_s, self.hashes, strict=True))

    @classmethod
    def from_hex(cls, text: str) -> VisualFingerprint:
        pairs = [p.split(":") for p in text.split()]
        return cls(tuple(float(t) for t, _ in pairs), tuple(int(h, 16) for _, h in pairs))


def phash(gray: np.ndarray) -> int:
    small = cv2.resize(gray, (HASH_SIZE, HASH_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
    dct = cv2.dct(small)[:8, :8]
    bits = (dct > np.median(dct[1:].ravel())).ravel()  # median without the DC term: robust to brightness
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def visual_fingerprint(path: Path, *, max_keyframes: int = 120) -> VisualFingerprint:
    times: list[float] = []
    hashes: list[int] = []
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
                if len(times) >= max_keyframes:
                    break
        except av.error.FFmpegError:
            pass  # a damaged tail: the keyframes before it still fingerprint the clip
    return VisualFingerprint(tuple(times), tuple(hashes))


def _hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def fingerprint_distance(a: VisualFingerprint, b: VisualFingerprint, *, max_shift_s: float = 10.0) -> float:
    """Median normalised Hamming distance (0..1) at the best time shift; 1.0 when they cannot be aligned.

    The median, not the mean: around a scene cut two encoders may put the keyframe one frame apart, on
    either side of the cut, and one such pair must not make a copy look different.
    """
    if not a.hashes or not b.hashes:
        return 1.0
    ta, tb = np.array(a.times_s), np.array(b.times_s)
    shifts = {round(float(x - y), 1) for x in ta for y in tb if abs(x - y) <= max_shift_s}
    best = 1.0
    min_pairs = max(1, min(2, len(ta), len(tb)))  # short clips may share only two keyframes
    for shift in shifts:
        dists = []
        for t, h in zip(ta, a.hashes, strict=True):
            j = int(np.argmin(np.abs(tb + shift - t)))
            if abs(tb[j] + shift - t) <= MATCH_WINDOW_S:
                dists.append(_hamming(h, b.hashes[j]) / 64.0)
        overlap = len(dists) / min(len(ta), len(tb))
        if len(dists) >= min_pairs and overlap >= 0.5:
            best = min(best, float(np.median(dists)))
    return best


def are_near_duplicates(
    a: VisualFingerprint, b: VisualFingerprint, *, threshold: float = DEFAULT_THRESHOLD
) -> bool:
    return fingerprint_distance(a, b) <= threshold
