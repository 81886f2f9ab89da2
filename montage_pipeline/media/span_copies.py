"""A render that copies the spans it shares with an earlier render's file instead of encoding them again.

Why: the long cut shows most of the main cut's moments exactly as the main cut does (`highlights.cuts`),
so its landscape render would decode, filter and encode again frames the main landscape render has just
encoded, at the same size and settings. Those spans are encoded in the main file as closed-GOP pieces
(`OutputSpec.pieces`: an IDR picture where the span starts and where the next one starts); the long
render encodes only the spans in between (`render` on chunks, as the chunked render does), copies the
shared pieces' packets, and joins everything by stream copy (`render_chunks.join_chunks`). A copied
span is the same picture a fresh render would make when both cuts show the same source frame on every
output frame: `shared_spans` only pairs such spans.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from montage_pipeline.media.overlay import DEFAULT_PALETTE, Palette
from montage_pipeline.media.reframe import CropPlan
from montage_pipeline.media.render import (
    EncodeSettings,
    OutputSpec,
    RenderChunk,
    RenderReport,
    RenderSpan,
    SpanPiece,
    render,
)
from montage_pipeline.media.render_chunks import join_chunks, join_reports

log = logging.getLogger(__name__)

# Two spans whose output frames map to source times this close show the same source frames. Float
# rounding only: a 60 fps source's frames sit exactly on a 30 fps grid's times, so any real difference
# (an EDL time rounded to 0.1 ms) takes the neighbouring frame on every other output frame.
SAME_TIME_S = 1e-9


def frame_at(t: float, fps: int) -> int:
    """The first output frame at or after `t` seconds: where a render starts whatever begins at `t`."""
    return math.ceil(t * fps - 1e-9)


def span_frames(spans: Sequence[RenderSpan], intro_s: float, fps: int) -> list[tuple[int, int]]:
    """Each span's output frames [first, end) in a single-pass render: a span starts where the frames
    before it end (the title card's, then the previous span's), and ends at its out-point's frame."""
    out = []
    previous_end = intro_s
    for span in spans:
        first, end = frame_at(previous_end, fps), frame_at(span.montage_out_s, fps)
        out.append((first, end))
        previous_end = span.montage_out_s
    return out


def source_offset(span: RenderSpan, first_frame: int, fps: int) -> float:
    """The source time of the span's first output frame: output frame first + i shows the newest source
    frame at or before this + i / fps."""
    return span.source_in_s + first_frame / fps - span.montage_in_s


def shared_spans(
    spans: Sequence[RenderSpan],
    intro_s: float,
    other: Sequence[RenderSpan],
    other_intro_s: float,
    fps: int,
) -> dict[int, int]:
    """Which of `spans` (by index) another render of `other` already makes frame for frame (the index in
    `other`): same source and rotation, the same source frame on every output frame, the same credit, and
    a hard cut into it in both (a dissolve mixes in the previous span). Its frame count may differ by one
    (the two cuts' beat grids fall differently on the frame grid) when the span after it is encoded: that
    span then starts a frame earlier or later, which is how far any cut already lands from its beat."""
    frames = span_frames(spans, intro_s, fps)
    other_frames = span_frames(other, other_intro_s, fps)
    candidates: dict[int, tuple[int, bool]] = {}  # index -> (other's index, same frame count)
    for i, span in enumerate(spans):
        if span.transition_in == "dissolve":
            continue
        for j, theirs in enumerate(other):
            count, their_count = frames[i][1] - frames[i][0], other_frames[j][1] - other_frames[j][0]
            if (
                theirs.source_path == span.source_path
                and theirs.rotation == span.rotation
                and theirs.credit == span.credit
                and theirs.transition_in != "dissolve"
                and count > 0
                and abs(count - their_count) <= 1
                and abs(
                    source_offset(span, frames[i][0], fps) - source_offset(theirs, other_frames[j][0], fps)
                )
                < SAME_TIME_S
            ):
                candidates[i] = (j, count == their_count)
                break
    shared: dict[int, int] = {}
    for i in sorted(candidates, reverse=True):
        j, same_count = candidates[i]
        if same_count or (i + 1 < len(spans) and i + 1 not in shared):
            shared[i] = j
    return dict(sorted(shared.items()))


def copy_piece(source: Path, piece: SpanPiece, fps: int, out: Path) -> None:
    """The piece's packets from `source`, moved to start at 0, as a file of its own (a join's part).
    `ValueError` if the file does not hold the piece as a closed GOP run of exactly its frames."""
    end = piece.first_frame + piece.frames
    options = {"use_editlist": "0"}  # as the encoder writes its files: the join reads the packets' own times
    with av.open(str(source)) as src, av.open(str(out), "w", format="mp4", options=options) as dst:
        video = src.streams.video[0]
        stream = dst.add_stream_from_template(video)
        tb = video.time_base
        assert tb is not None
        start = video.start_time or 0
        shift = round(Fraction(piece.first_frame, fps) / tb)
        copied = 0
        for packet in src.demux(video):
            if packet.dts is None or packet.pts is None:
                continue
            k = round((packet.pts - start) * tb * fps)
            if k >= end and copied:
                break  # the next piece's IDR: a closed GOP has nothing of this piece after it
            if k < piece.first_frame or k >= end:
                continue
            if not copied and not packet.is_keyframe:
                raise ValueError(f"{source.name}: frame {k} opens the piece but is not a keyframe")
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = stream
            dst.mux(packet)
            copied += 1
    if copied != piece.frames:
        raise ValueError(f"{source.name}: {copied} frames where the piece has {piece.frames}")


@dataclass(frozen=True, slots=True)
class SharedSpan:
    """A span another render already encoded as a piece of its file, and what its report says of it."""

    source: Path  # that render's file
    piece: SpanPiece
    thumbnail: Image.Image
    crop: CropPlan


def shared_from(report: RenderReport, index: int) -> SharedSpan:
    """Span `index` of the rendered `report` (one of its `OutputSpec.pieces`)."""
    piece = report.pieces[index]
    first = report.span_first_frames.index(piece.first_frame)
    return SharedSpan(report.path, piece, report.span_thumbnails[first], report.crop_plans[first])


def render_copying(
    spans: Sequence[RenderSpan],
    output: OutputSpec,
    settings: EncodeSettings,
    shared: dict[int, SharedSpan],
    *,
    title: str,
    intro_s: float,
    palette: Palette = DEFAULT_PALETTE,
    progress: Callable[[int, int], None] | None = None,
) -> RenderReport:
    """The spans rendered into `output` as `render` would, but the `shared` spans (by index) copied from
    the files that hold them: the spans in between are encoded in runs (the first with the title card,
    the last with the end card), then all pieces are joined by stream copy."""
    started = time.perf_counter()
    fps = settings.fps
    runs: list[tuple[int, int]] = []  # [first, end) spans; a shared span is a run of one
    for i in range(len(spans)):
        if i in shared or not runs or runs[-1][1] - 1 in shared:
            runs.append((i, i + 1))
        else:
            runs[-1] = (runs[-1][0], i + 1)
    if (not runs or 0 in shared) and frame_at(intro_s, fps) > 0:
        runs.insert(0, (0, 0))  # the title card on its own
    if spans and len(spans) - 1 in shared and output.outro_image is not None and output.outro_s > 0:
        runs.append((len(spans), len(spans)))  # the end card on its own
    parts: list[Path] = []
    reports: list[RenderReport] = []
    best = max(range(len(spans)), key=lambda i: spans[i].score) if spans else -1
    try:
        for n, (first, end) in enumerate(runs):
            part = output.path.with_name(f".{output.path.stem}.part{n}{output.path.suffix}")
            parts.append(part)
            start = sum(r.frames for r in reports)  # a copied span may end a frame off its planned end
            if end - first == 1 and first in shared:
                reports.append(_copied(shared[first], spans[first], start, output, fps, part, first == best))
            else:
                chunk = RenderChunk(first, end, start)
                reports.extend(
                    render(
                        spans,
                        [replace(output, path=part)],
                        settings,
                        title=title,
                        intro_s=intro_s,
                        palette=palette,
                        chunk=chunk,
                    )
                )
            if progress and end > first:
                progress(end, len(spans))
        kept = [(p, r) for p, r in zip(parts, reports, strict=True) if r.frames]
        if len({_stream_header(p) for p, _ in kept}) > 1:
            raise ValueError("the copied pieces' H.264 headers differ from this encoder's")
        join_chunks([p for p, _ in kept], output.path)
    except ValueError as exc:  # a file that does not hold its pieces as this encoder writes them
        log.warning("%s: encoding it whole, copying nothing: %s", output.path.name, exc)
        (whole,) = render(spans, [output], settings, title=title, intro_s=intro_s, palette=palette)
        return whole
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    joined = join_reports([r for _, r in kept], output.path)
    joined.seconds = time.perf_counter() - started
    joined.copied_spans = len(shared)
    return joined


def _stream_header(path: Path) -> bytes:
    """The file's H.264 parameter sets (the avcC record): pieces with other ones cannot be joined."""
    with av.open(str(path)) as container:
        return bytes(container.streams.video[0].codec_context.extradata or b"")


def _copied(
    shared: SharedSpan, span: RenderSpan, start: int, output: OutputSpec, fps: int, part: Path, best: bool
) -> RenderReport:
    """The shared span's piece copied into `part`, reported as a render of it starting at frame `start`."""
    copy_piece(shared.source, shared.piece, fps, part)
    offset = start / fps
    report = RenderReport(
        part,
        output.width,
        output.height,
        fps,
        frames=shared.piece.frames,
        duration_s=shared.piece.frames / fps,
        size_bytes=part.stat().st_size,
        span_first_frames=[start],
        span_thumbnails=[shared.thumbnail],
        crop_plans=[shared.crop],
        still_spans=tuple((round(a + offset, 3), round(b + offset, 3)) for a, b in shared.piece.still_spans),
    )
    if best:  # the picture `render` would keep: the peak's frame, else the span's middle one
        frames = shared.piece.frames
        peak = frames // 2 if span.peak_montage_s is None else round(span.peak_montage_s * fps) - start
        report.best_frame = _frame_at(part, min(max(peak, 0), frames - 1))
    return report


def _frame_at(path: Path, index: int) -> Image.Image | None:
    """Picture `index` of a short file (decoded from its start)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        for n, frame in enumerate(container.decode(video)):
            if n >= index:
                return frame.to_image()
    return None
