"""Verify an uploaded clip by decoding it, and record the facts later stages need.

Opening a file proves little: a truncated MP4 whose index (moov) sits at the front opens fine, reports
its full duration and fails only when decoding reaches the missing bytes; a still image renamed `.mp4`
opens as a one-frame "video". So a probe decodes frames at the start *and* after a seek near the end,
and only a clip that decodes through both is usable. It stays cheap: two short decodes, never the clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

IMAGE_CODECS = frozenset(
    {"png", "mjpeg", "jpeg2000", "bmp", "gif", "tiff", "webp", "jpegls", "qoi", "ppm", "pgm"}
)
START_FRAMES = 24  # frames decoded at the start: enough to see the frame rate's regularity
END_WINDOW_S = 1.5  # how far before the reported end the tail decode starts


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


def probe_clip(path: Path, *, min_duration_s: float = 3.0) -> ClipProbe:
    """Facts of a usable clip, or ProbeError with the reason it is not usable."""
    if not path.exists():
        raise ProbeError("missing", "the file does not exist")
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("empty", "the file is empty (0 bytes)")
    with _open(path) as container:
        if not container.streams.video:
            raise ProbeError("not_a_video", "the file has no video stream")
        video = container.streams.video[0]
        codec = video.codec_context.name
        if codec in IMAGE_CODECS:
            raise ProbeError("not_a_video", f"a still image ({codec}), not a video")
        duration = _duration(container, video)
        if duration is None or duration <= 0:
            raise ProbeError("not_a_video", "the stream has no duration")
        video.thread_type = "AUTO"
        times, rotation = _decode_start(container, video)
        if len(times) < 2:
            raise ProbeError("not_a_video", f"only {len(times)} decodable frame(s)")
        if duration < min_duration_s:
            raise ProbeError("too_short", f"{duration:.2f}s is under the {min_duration_s:g}s minimum")
        last = _decode_tail(container, video, duration)
        # The tail must reach the end: a file that stops decoding early lost its last bytes.
        if last is None or last < duration - max(1.0, 0.1 * duration):
            reached = "no frame" if last is None else f"frames up to {last:.2f}s"
            raise ProbeError("truncated", f"decoding near the end gave {reached} of {duration:.2f}s")
        deltas = np.diff(np.array(times))
        fps = float(video.average_rate) if video.average_rate else (1.0 / float(np.median(deltas)))
        variable = bool(len(deltas) > 2 and (np.ptp(deltas) > 0.25 * float(np.median(deltas))))
        audio = container.streams.audio[0] if container.streams.audio else None
        return ClipProbe(
            duration_s=round(duration, 4),
            fps=round(fps, 4),
            variable_fps=variable,
            width=video.codec_context.width,
            height=video.codec_context.height,
            rotation=rotation,
            has_audio=audio is not None,
            audio_rate=audio.rate if audio is not None else None,
            audio_channels=audio.channels if audio is not None else None,
            video_codec=codec,
            size_bytes=size,
            has_b_frames=bool(video.codec_context.has_b_frames),
        )


def _duration(container: av.container.InputContainer, video: av.video.stream.VideoStream) -> float | None:
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _decode_start(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> tuple[list[float], int]:
    times: list[float] = []
    rotation = 0
    try:
        for frame in container.decode(video):
            if frame.time is not None:
                times.append(float(frame.time))
            if len(times) == 1:
                rotation = _normalise_rotation(frame.rotation)
            if len(times) >= START_FRAMES:
                break
    except av.error.FFmpegError as exc:
        if len(times) < 2:
            raise ProbeError("not_a_video", f"the first frames do not decode ({type(exc).__name__})") from exc
    return times, rotation


def _decode_tail(
    container: av.container.InputContainer, video: av.video.stream.VideoStream, duration: float
) -> float | None:
    assert video.time_base is not None
    start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    target = start + max(0.0, duration - END_WINDOW_S)
    last: float | None = None
    try:
        container.seek(int(target / video.time_base), stream=video, backward=True, any_frame=False)
        for frame in container.decode(video):
            if frame.time is not None:
                last = float(frame.time) - start + (1.0 / float(video.average_rate or 30))
    except av.error.FFmpegError as exc:
        log.info("tail decode failed: %s", exc)
        return last
    return last
