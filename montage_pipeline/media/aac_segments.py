"""A soundtrack's AAC encoded in segments on several cores at once, the segments joined where their two
encoders framed the audio alike.

FFmpeg's AAC encoder (the `twoloop` coder the soundtrack keeps for its quality) runs on one core at about
15× real time: ~6 s of a 90 s soundtrack, most of the `soundtrack` step. AAC-LC frames carry nothing
from one frame to the next but the overlap of their windows: a decoder adds each frame's second half to
the next frame's first half, and the MDCT's time-domain aliasing cancels there when both frames were
transformed from the same samples with matching windows. So each segment's encoder starts `WARM_UP`
frames early (its psychoacoustic model and rate control settle on the audio before the boundary) and runs
`OVERLAP` frames past its end, and the two encoders' packets are joined at the first frame past the
boundary whose previous frame both encoded with the same long window (`join_frame`, read from each
frame's `ics_info`). Where no frame in the overlap qualifies, the track is encoded in one piece.

The segments follow from the track's length alone (`segments_for`), never from the machine's cores, so a
soundtrack made beside the render, after it, or on another worker gives the same packets.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from montage_pipeline.media.cores import usable_cores

log = logging.getLogger(__name__)

RATE = 48_000
AAC_FRAME = 1024  # samples per AAC-LC frame
SEGMENT_S = 45.0  # a track is cut into segments of about this length (one segment under 1.5 of them)
MAX_SEGMENTS = 8
WARM_UP = 128  # frames (2.7 s) each later segment's encoder sees before its boundary
OVERLAP = 32  # frames each earlier segment's encoder runs past its boundary, where the join is looked for
ONLY_LONG = 0  # ics_info's window_sequence of a plain long window
CPE = 1  # the syntax element of a channel pair (stereo)


@dataclass(frozen=True, slots=True)
class AacFrame:
    """One encoded AAC frame: its index on the track (pts / 1024), its bytes and its duration in samples."""

    index: int
    data: bytes
    duration: int


@dataclass(frozen=True, slots=True)
class EncodedAac:
    frames: list[AacFrame]  # in order, every index once
    extradata: bytes  # the AudioSpecificConfig every segment's encoder wrote (the same settings)


def window_of(frame: bytes) -> tuple[int, int] | None:
    """(window_sequence, window_shape) of a stereo frame whose two channels share one window (a channel
    pair with `common_window`), read from the start of its raw data block; None for any other frame."""
    if len(frame) < 2:
        return None
    bits = int.from_bytes(frame[:2], "big")
    element, common_window = bits >> 13, (bits >> 8) & 1
    if element != CPE or not common_window:
        return None
    return (bits >> 5) & 3, (bits >> 4) & 1


def segments_for(n_frames: int) -> int:
    """How many segments a track of `n_frames` is encoded in: one per ~`SEGMENT_S` seconds."""
    seconds = n_frames * AAC_FRAME / RATE
    return max(1, min(MAX_SEGMENTS, round(seconds / SEGMENT_S)))


def join_frame(before: Mapping[int, AacFrame], after: Mapping[int, AacFrame], boundary: int) -> int | None:
    """The first frame index j from `boundary` on where `after` can take over from `before`: frame j-1
    has the same long window in both (so frame j's first half overlaps `before`'s frame j-1 as it would
    its own), and `before` ran a few frames past j (its last frames see the end of its input). None
    when no frame in the overlap qualifies."""
    last = max(before) - 3
    for j in range(boundary, last + 1):
        a, b = before.get(j - 1), after.get(j - 1)
        if a is None or b is None or j not in after:
            continue
        window = window_of(a.data)
        if window is not None and window[0] == ONLY_LONG and window == window_of(b.data):
            return j
    return None


def _encoder(bitrate: int, options: Mapping[str, str]) -> av.audio.codeccontext.AudioCodecContext:
    codec = av.CodecContext.create("aac", "w")
    assert isinstance(codec, av.audio.codeccontext.AudioCodecContext)
    codec.sample_rate = RATE
    codec.layout = "stereo"
    codec.format = "fltp"
    codec.bit_rate = bitrate
    codec.time_base = Fraction(1, RATE)
    codec.options = dict(options)
    codec.open()
    return codec


def encode_frames(
    pcm: np.ndarray, first: int, end: int, bitrate: int, options: Mapping[str, str]
) -> tuple[dict[int, AacFrame], bytes]:
    """Frames [first, end) of `pcm` (frame j is samples [1024 j, 1024 j + 1024)) through one encoder:
    its packets by frame index (from `first` - 1, the encoder's priming) and its extradata."""
    codec = _encoder(bitrate, options)
    out: dict[int, AacFrame] = {}

    def take(packets: list[av.Packet]) -> None:
        for packet in packets:
            assert packet.pts is not None
            index = packet.pts // AAC_FRAME
            out[index] = AacFrame(index, bytes(packet), packet.duration or 0)

    for j in range(first, end):
        chunk = np.ascontiguousarray(pcm[:, j * AAC_FRAME : (j + 1) * AAC_FRAME], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = j * AAC_FRAME
        take(codec.encode(frame))
    take(codec.encode(None))
    return out, bytes(codec.extradata or b"")


def encode_aac(
    pcm: np.ndarray, bitrate: int, options: Mapping[str, str], first: int = 1, segments: int | None = None
) -> EncodedAac:
    """`pcm` (stereo float32 at 48 kHz) from frame `first` on, encoded in `segments` (default
    `segments_for` its length) on up to one thread per core, joined into one track's frames."""
    end = -(-pcm.shape[1] // AAC_FRAME)
    count = segments or segments_for(end - first)
    bounds = [first + round(i * (end - first) / count) for i in range(count)] + [end]
    if count > 1 and min(b - a for a, b in itertools.pairwise(bounds)) <= WARM_UP + OVERLAP:
        bounds = [first, end]
    ranges = [
        (max(first, a - WARM_UP) if i else a, min(end, b + OVERLAP))
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    with ThreadPoolExecutor(max_workers=min(len(ranges), usable_cores())) as pool:
        parts = list(pool.map(lambda r: encode_frames(pcm, r[0], r[1], bitrate, options), ranges))
    joined = dict(parts[0][0])
    for boundary, (part, _) in zip(bounds[1:-1], parts[1:], strict=False):
        j = join_frame(joined, part, boundary)
        if j is None:
            log.warning("no frame to join AAC segments at frame %d: the track encoded in one piece", boundary)
            return encode_aac(pcm, bitrate, options, first, segments=1)
        joined = {i: f for i, f in joined.items() if i < j} | {i: f for i, f in part.items() if i >= j}
    return EncodedAac([joined[i] for i in sorted(joined)], parts[0][1])
