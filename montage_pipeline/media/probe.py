"""Verify an uploaded clip by decoding it, and record the facts later stages need.

Opening a file proves little: a truncated MP4 whose index (moov) sits at the front opens fine, reports
its full duration and fails only when decoding reaches the missing bytes; a still image renamed `.mp4`
opens as a one-frame "video". So a probe decodes frames at the start *and* after a seek near the end,
and only a clip that decodes through both is usable. It stays cheap: two short decodes, never the clip.

Uploads are untrusted, so every cost is bounded by `ClipLimits` before the work it protects: the file
size before opening, the frame size and the claimed duration before decoding, and the bytes per second of
claimed duration (a 2 GB file "of 4 s" is padding or a decoder bomb). The container's duration is a claim,
not a fact: the frames actually decoded in both windows must come at least `min_decoded_fps` apart, so
eight frames stretched over ten hours are `sparse_frames`, not a ten-hour clip.

HDR and 10-bit: the probe records `bit_depth`, `pix_fmt` and `color_transfer` of every clip.
- 10-bit SDR (e.g. yuv420p10le, BT.709) is handled: analysis reformats non-4:2:0-8-bit frames and the
  renderer's filter graph converts to yuv420p, which for SDR only rounds away the extra precision.
- HDR (PQ / SMPTE ST 2084 or HLG / ARIB STD-B67 transfer) is rejected as `hdr_unsupported`. Converting it
  to the montage's 8-bit BT.709 needs linearisation and tone mapping (zscale + tonemap); this FFmpeg
  build has no zscale, and a plain format conversion leaves the picture grey and washed out. A clear
  rejection is better than a silently wrong montage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from montage_pipeline.rules import RULES
from montage_pipeline.settings import LIMIT_ENV_VARS, ClipLimits  # the limits are settings

__all__ = ["LIMIT_ENV_VARS", "ClipLimits", "ClipProbe", "ProbeError", "probe_clip"]

log = logging.getLogger(__name__)

IMAGE_CODECS = frozenset(
    {"png", "mjpeg", "jpeg2000", "bmp", "gif", "tiff", "webp", "jpegls", "qoi", "ppm", "pgm"}
)
START_FRAMES = 24  # frames decoded at the start: enough to see the frame rate's regularity
END_WINDOW_S = 1.5  # how far before the reported end the tail decode starts
# FFmpeg's AVColorTransferCharacteristic values of the HDR transfers.
HDR_TRANSFERS = {16: "smpte2084", 18: "arib-std-b67"}
TRANSFER_NAMES = {1: "bt709", 2: "unknown", 6: "smpte170m", 8: "linear", 13: "srgb", 14: "bt2020-10"}
MB = 1_000_000


class ProbeError(Exception):
    """A clip that cannot be used; `reason` is a stable machine code shown in the UI."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ClipProbe:
    duration_s: float
    fps: float
    variable_fps: bool
    width: int
    height: int
    rotation: int  # display rotation in degrees: 0, 90, 180 or 270
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    video_codec: str
    size_bytes: int
    has_b_frames: bool
    pix_fmt: str  # the decoded frames' pixel format, e.g. yuv420p or yuv420p10le
    bit_depth: int  # bits per luma sample: 8, or 10 for 10-bit sources (handled, see the module doc)
    color_transfer: str  # transfer characteristic: bt709, unknown, ...; HDR ones are rejected

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, after rotation."""
        return (self.height, self.width) if self.rotation in (90, 270) else (self.width, self.height)


def _looks_like_mp4(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(12)
    return len(head) >= 8 and head[4:8] in (b"ftyp", b"mdat", b"moov", b"free", b"wide")


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        if _looks_like_mp4(path):
            # An MP4 signature that FFmpeg cannot open is almost always a cut-off upload whose index
            # (written last without faststart) never arrived.
            raise ProbeError("truncated", f"MP4 without a readable index ({type(exc).__name__})") from exc
        raise ProbeError("not_a_video", f"not a media file FFmpeg can read ({type(exc).__name__})") from exc


def _normalise_rotation(degrees: float) -> int:
    return round(degrees / 90.0) * 90 % 360


def _transfer_name(value: int | None) -> str:
    if value is None:
        return "unknown"
    return HDR_TRANSFERS.get(value) or TRANSFER_NAMES.get(value) or f"trc{value}"


def _check_frame_size(width: int, height: int, limits: ClipLimits) -> None:
    if max(width, height) > limits.max_side_px or width * height > limits.max_pixels:
        raise ProbeError(
            "frame_too_large",
            f"{width}x{height} is over the limit ({limits.max_side_px} px a side, "
            f"{limits.max_pixels:,} pixels a frame)",
        )


def _check_density(times: list[float], limits: ClipLimits, where: str) -> None:
    """Frames must actually come at the claimed pace: a few frames cannot stand for a long clip."""
    if len(times) < 2:
        return
    span = max(times) - min(times)
    rate = (len(times) - 1) / span if span > 0 else float("inf")
    if rate < limits.min_decoded_fps:
        raise ProbeError(
            "sparse_frames",
            f"{len(times)} frames decoded over {span:.2f}s {where} ({rate:.3g} fps, "
            f"under {limits.min_decoded_fps:g}): the container's duration is not backed by frames",
        )


def _file_size(path: Path, limits: ClipLimits) -> int:
    """The file's size, once it is known to exist, hold something and fit the size limit."""
    if not path.exists():
        raise ProbeError("missing", "the file does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty", "the file is empty (0 bytes)")
    if size > limits.max_file_bytes:
        raise ProbeError(
            "file_too_large", f"{size / MB:,.1f} MB is over the {limits.max_file_bytes / MB:,.1f} MB limit"
        )
    return size


def _checked_duration(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, size: int, limits: ClipLimits
) -> float:
    """The stream's duration, once it is known to exist and to fit the length and bitrate limits."""
    duration = _duration(container, video)
    if duration is None or duration <= 0:
        raise ProbeError("not_a_video", "the stream has no duration")
    if duration > limits.max_duration_s:
        raise ProbeError("too_long", f"{duration:,.1f}s is over the {limits.max_duration_s:g}s limit")
    if size / duration > limits.max_bytes_per_s:
        raise ProbeError(
            "bitrate_too_high",
            f"{size / MB:,.1f} MB for {duration:.2f}s is {size / duration / MB:,.2f} MB/s, over the "
            f"{limits.max_bytes_per_s / MB:g} MB/s limit",
        )
    return duration


def probe_clip(
    path: Path, *, min_duration_s: float = RULES.min_clip_duration_s, limits: ClipLimits | None = None
) -> ClipProbe:
    """Facts of a usable clip, or ProbeError with the reason it is not usable.

    `limits` defaults to `ClipLimits()`; each is checked before the work it protects (module doc).
    """
    limits = limits or ClipLimits()
    size = _file_size(path, limits)
    with _open(path) as container:
        if not container.streams.video:
            raise ProbeError("not_a_video", "the file has no video stream")
        video = container.streams.video[0]
        codec = video.codec_context.name
        if codec in IMAGE_CODECS:
            raise ProbeError("not_a_video", f"a still image ({codec}), not a video")
        _check_frame_size(video.codec_context.width, video.codec_context.height, limits)
        _check_transfer(video.codec_context.color_trc)
        duration = _checked_duration(container, video, size, limits)
        video.thread_type = "AUTO"
        # Only frame times, sizes and formats are read, never pixels: the deblocking filter (~20 % of an
        # H.264 decode) is skipped.
        video.codec_context.options = {"skip_loop_filter": "all"}
        start = _decode_start(container, video, limits)
        if len(start.times) < 2:
            raise ProbeError("not_a_video", f"only {len(start.times)} decodable frame(s)")
        _check_density(start.times, limits, "at the start")
        if duration < min_duration_s:
            raise ProbeError("too_short", f"{duration:.2f}s is under the {min_duration_s:g}s minimum")
        last = _decode_tail(container, video, duration, limits)
        # The tail must reach the end: a file that stops decoding early lost its last bytes.
        if last is None or last < duration - max(1.0, 0.1 * duration):
            reached = "no frame" if last is None else f"frames up to {last:.2f}s"
            raise ProbeError("truncated", f"decoding near the end gave {reached} of {duration:.2f}s")
        deltas = np.diff(np.array(start.times))
        fps = float(video.average_rate) if video.average_rate else (1.0 / float(np.median(deltas)))
        variable = bool(len(deltas) > 2 and (np.ptp(deltas) > 0.25 * float(np.median(deltas))))
        audio = container.streams.audio[0] if container.streams.audio else None
        return ClipProbe(
            duration_s=round(duration, 4),
            fps=round(fps, 4),
            variable_fps=variable,
            width=video.codec_context.width,
            height=video.codec_context.height,
            rotation=start.rotation,
            has_audio=audio is not None,
            audio_rate=audio.rate if audio is not None else None,
            audio_channels=audio.channels if audio is not None else None,
            video_codec=codec,
            size_bytes=size,
            has_b_frames=bool(video.codec_context.has_b_frames),
            pix_fmt=start.pix_fmt,
            bit_depth=start.bit_depth,
            color_transfer=start.color_transfer,
        )


def _check_transfer(color_trc: int | None) -> None:
    if color_trc in HDR_TRANSFERS:
        kind = "PQ" if HDR_TRANSFERS[color_trc] == "smpte2084" else "HLG"
        raise ProbeError(
            "hdr_unsupported",
            f"HDR video ({kind}, {HDR_TRANSFERS[color_trc]} transfer): the montage is 8-bit SDR and this "
            "clip would come out washed out; upload its SDR version",
        )


def _duration(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float | None:
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


@dataclass(frozen=True, slots=True)
class _StartFrames:
    times: list[float]
    rotation: int
    pix_fmt: str
    bit_depth: int
    color_transfer: str


def _decode_start(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, limits: ClipLimits
) -> _StartFrames:
    times: list[float] = []
    rotation = 0
    pix_fmt, bit_depth, transfer = "", 8, _transfer_name(video.codec_context.color_trc)
    try:
        for frame in container.decode(video):
            _check_frame_size(frame.width, frame.height, limits)
            if not pix_fmt:  # the first frame decides: the stream header may not say
                pix_fmt = frame.format.name
                bit_depth = frame.format.components[0].bits
                _check_transfer(frame.color_trc)
                if frame.color_trc != 2:  # 2: unspecified in the frame, keep the stream's value
                    transfer = _transfer_name(frame.color_trc)
            if frame.time is not None:
                times.append(float(frame.time))
            if len(times) == 1:
                rotation = _normalise_rotation(frame.rotation)
            if len(times) >= START_FRAMES:
                break
    except av.error.FFmpegError as exc:
        if len(times) < 2:
            raise ProbeError("not_a_video", f"the first frames do not decode ({type(exc).__name__})") from exc
    return _StartFrames(times, rotation, pix_fmt, bit_depth, transfer)


def _decode_tail(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    duration: float,
    limits: ClipLimits,
) -> float | None:
    assert video.time_base is not None
    start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    target = start + max(0.0, duration - END_WINDOW_S)
    last: float | None = None
    times: list[float] = []
    try:
        container.seek(int(target / video.time_base), stream=video, backward=True, any_frame=False)
        for frame in container.decode(video):
            _check_frame_size(frame.width, frame.height, limits)
            if frame.time is not None:
                times.append(float(frame.time))
                last = float(frame.time) - start + (1.0 / float(video.average_rate or 30))
    except av.error.FFmpegError as exc:
        log.info("tail decode failed: %s", exc)
    _check_density(times, limits, "at the end")
    return last
