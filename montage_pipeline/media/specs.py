"""Measure a rendered video the way a platform's ingest would, and list what breaks the spec.

Checked: size, constant frame rate in 23–60, H.264 High 4:2:0, closed GOPs (every keyframe an IDR
picture), the index (moov) before the media data (faststart), no edit list, duration against a target,
and no black or frozen stretch longer than a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from montage_pipeline.media.analysis import plane_view

BLACK_LUMA = 0.08  # mean luma (0..1, video range included) under which a frame counts as black
FROZEN_DIFF = 0.0015  # mean absolute luma change under which two frames count as the same picture
MAX_STILL_S = 1.0
SMALL_SIDE = 90  # the short side of the picture the still test compares


@dataclass(frozen=True, slots=True)
class SpecReport:
    width: int
    height: int
    fps: float
    constant_fps: bool
    codec: str
    profile: str
    pix_fmt: str
    closed_gop: bool
    gop_frames: int  # the longest distance between keyframes
    moov_before_mdat: bool
    has_edit_list: bool
    duration_s: float
    black_or_frozen_spans: tuple[tuple[float, float], ...]


def _top_level_boxes(path: Path) -> list[tuple[str, int, int]]:
    """(type, offset, size) of the MP4's top-level boxes."""
    boxes = []
    with path.open("rb") as fh:
        offset = 0
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
            elif size == 0:
                size = path.stat().st_size - offset
            boxes.append((kind.decode("latin-1"), offset, size))
            offset += size
            fh.seek(offset)
    return boxes


def _nal_types(packet: bytes) -> set[int]:
    """NAL unit types in a length-prefixed (AVCC) H.264 packet."""
    types, i = set(), 0
    while i + 4 <= len(packet):
        n = int.from_bytes(packet[i : i + 4], "big")
        if i + 4 < len(packet):
            types.add(packet[i + 4] & 0x1F)
        i += 4 + n
    return types


def inspect_video(path: Path, stills: bool = True) -> SpecReport:
    """The file's spec; `stills=False` skips the decode pass that finds black or frozen stretches."""
    boxes = _top_level_boxes(path)
    kinds = [b[0] for b in boxes]
    moov_first = "moov" in kinds and "mdat" in kinds and kinds.index("moov") < kinds.index("mdat")
    has_elst = False
    for kind, offset, size in boxes:
        if kind == "moov":
            with path.open("rb") as fh:
                fh.seek(offset)
                has_elst = b"elst" in fh.read(size)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        cc = video.codec_context
        keyframe_gaps, closed, since, pts = [], True, 0, []
        for packet in container.demux(video):
            if packet.size == 0:
                continue
            if packet.pts is not None:
                pts.append(packet.pts)
            if packet.is_keyframe:
                keyframe_gaps.append(since)
                since = 0
                closed &= 5 in _nal_types(bytes(packet))
            since += 1
        keyframe_gaps.append(since)
        tb = float(video.time_base) if video.time_base else 0.0
        deltas = np.diff(np.sort(np.array(pts))) * tb
        constant = bool(deltas.size == 0 or np.ptp(deltas) < 1e-3)
        fps = float(video.average_rate or 0)
        duration = float(video.duration * video.time_base) if video.duration and video.time_base else 0.0
        info = (video.width, video.height, cc.name, str(video.profile or ""), str(cc.pix_fmt or ""))
    still_spans = _still_spans(path) if stills else ()
    return SpecReport(
        width=info[0],
        height=info[1],
        fps=fps,
        constant_fps=constant,
        codec=info[2],
        profile=info[3],
        pix_fmt=info[4],
        closed_gop=closed,
        gop_frames=max(keyframe_gaps[1:] or [0]),
        moov_before_mdat=moov_first,
        has_edit_list=has_elst,
        duration_s=duration,
        black_or_frozen_spans=still_spans,
    )


def _small_luma(frame: av.VideoFrame) -> np.ndarray:
    """The luma plane area-averaged by a whole factor to about 90 px on its short side, 0..1.

    A whole factor keeps OpenCV on its fast block-average path (0.6 ms for a 1080p frame in either
    orientation, against 3 ms for a fractional one), so the encoder can afford it on every sample.
    """
    import cv2  # see media.LAZY_LIBRARIES

    k = max(1, min(frame.width, frame.height) // SMALL_SIDE)
    size = (max(2, frame.width // k), max(2, frame.height // k))
    if frame.format.name in ("yuv420p", "yuvj420p"):
        luma = plane_view(frame.planes[0])
        small = cv2.resize(luma[: size[1] * k, : size[0] * k], size, interpolation=cv2.INTER_AREA)
    else:
        small = frame.reformat(width=size[0], height=size[1], format="gray").to_ndarray()
    return small.astype(np.float32) / 255


class StillDetector:
    """Stretches longer than MAX_STILL_S where the picture is black or does not change, fed frame by frame.

    "Does not change" is measured against the first picture of the stretch, as ffmpeg's freezedetect
    does, not against the previous frame: a slow pan at 60 fps moves less per frame than the threshold
    but far more than it within a second, while a held picture stays at the encoder's noise level.
    Streaming, so the renderer measures its own frames while it encodes them (no second decode) and
    the file check below decodes with the same rule.
    """

    def __init__(self, min_s: float = MAX_STILL_S) -> None:
        self.min_s = min_s  # 0 keeps every still run (a render chunk's, for the join to measure across seams)
        self.spans: list[tuple[float, float]] = []
        self._start: float | None = None
        self._anchor: np.ndarray | None = None  # the picture a frozen stretch would be holding
        self._anchor_t = 0.0

    def feed(self, t: float, luma: np.ndarray) -> None:
        """The small luma picture (from `_small_luma`) shown at `t` seconds."""
        black = float(luma.mean()) < BLACK_LUMA
        frozen = self._anchor is not None and float(np.abs(luma - self._anchor).mean()) < FROZEN_DIFF
        if not black and not frozen:
            self._anchor, self._anchor_t = luma, t  # a new picture: later frames are compared with it
        still = black or frozen
        if still and self._start is None:
            self._start = t if black else self._anchor_t
        elif not still and self._start is not None:
            self._close(t)

    def finish(self, end_t: float) -> tuple[tuple[float, float], ...]:
        """The stretches found, closing one still open at `end_t` (the end of the picture)."""
        if self._start is not None:
            self._close(end_t)
        return tuple(self.spans)

    def _close(self, t: float) -> None:
        assert self._start is not None
        if t - self._start > self.min_s:
            self.spans.append((round(self._start, 3), round(t, 3)))
        self._start = None


def _still_spans(path: Path) -> tuple[tuple[float, float], ...]:
    """The file's black or frozen stretches, decoding its reference frames (dense enough for 1 s)."""
    detector = StillDetector()
    t = 0.0
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        video.codec_context.skip_frame = "NONREF"
        for frame in container.decode(video):
            t = float(frame.time or 0.0)
            detector.feed(t, _small_luma(frame))
    return detector.finish(t)


def spec_failures(
    report: SpecReport,
    *,
    width: int,
    height: int,
    target_duration_s: float | None = None,
    tolerance: float = 0.05,
    max_duration_s: float | None = None,
    allowed_stills: tuple[tuple[float, float], ...] = (),
) -> list[str]:
    """What a platform would reject, in words; empty when the file passes."""
    failures = []
    if (report.width, report.height) != (width, height):
        failures.append(f"size {report.width}x{report.height}, expected {width}x{height}")
    if not 23 <= report.fps <= 60 or not report.constant_fps:
        failures.append(f"frame rate {report.fps:g} fps{' (variable)' if not report.constant_fps else ''}")
    if report.codec != "h264" or report.profile.lower() != "high" or report.pix_fmt != "yuv420p":
        failures.append(f"codec {report.codec} {report.profile} {report.pix_fmt}, expected h264 High yuv420p")
    if not report.closed_gop:
        failures.append("open GOP: a keyframe that is not an IDR picture")
    if report.fps and report.gop_frames > round(report.fps / 2):
        failures.append(f"GOP of {report.gop_frames} frames, more than half the frame rate")
    if not report.moov_before_mdat:
        failures.append("moov after mdat: not faststart")
    if report.has_edit_list:
        failures.append("the file has an edit list")
    if target_duration_s and abs(report.duration_s - target_duration_s) > tolerance * target_duration_s:
        failures.append(f"duration {report.duration_s:.1f}s outside {target_duration_s:g}s ±{tolerance:.0%}")
    if max_duration_s and report.duration_s > max_duration_s:
        failures.append(f"duration {report.duration_s:.1f}s over the {max_duration_s:g}s limit")
    for a, b in report.black_or_frozen_spans:
        if not any(x <= a and b <= y for x, y in allowed_stills):
            failures.append(f"black or frozen from {a:.1f}s to {b:.1f}s")
    return failures
