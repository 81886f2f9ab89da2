"""Render the week's edit decision list into finished H.264 videos, both formats from one decode.

Each EDL span is decoded once: seek to the keyframe before its in-point, decode forward, stop at its
out-point, on a thread of its own a few frames ahead of the filtering (`_DecodeAhead`). Every output
frame (constant frame rate) takes the newest source frame at or before its time, which turns any
source rate, VFR included, into the output's rate. Frames stay in C: scaling, cropping, blur-fill,
rotation and overlays run in one FFmpeg filter graph per span and output, and the encoder takes the
graph's frames directly. Only per-span scalars and one small thumbnail per span are kept, so memory
does not grow with the montage's length.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
import numpy as np
from av.filter.context import FilterContext
from PIL import Image

from montage_pipeline.media.cores import usable_cores
from montage_pipeline.media.heap import give_back_freed_memory
from montage_pipeline.media.overlay import (
    DEFAULT_PALETTE,
    Palette,
    cover,
    logo_image,
    logo_position,
    lower_third,
    safe_position,
    title_card,
)
from montage_pipeline.media.reframe import ActionTrack, CropPlan, plan_crop
from montage_pipeline.media.specs import MAX_STILL_S, SpecReport, StillDetector, _small_luma, inspect_video

log = logging.getLogger(__name__)

CREDIT_SECONDS = 3.0
THUMB_SIZE = (320, 180)
STILL_SAMPLE_HZ = 15  # still-test samples per second of output: 1 s stills are found to ±0.07 s


@dataclass(frozen=True, slots=True)
class RenderSpan:
    source_path: Path
    source_in_s: float
    source_out_s: float
    montage_in_s: float
    montage_out_s: float
    credit: str
    rotation: int = 0
    peak_montage_s: float | None = None
    score: float = 0.0
    action: ActionTrack | None = None
    transition_in: str = "cut"  # or "dissolve" from the previous span
    transition_s: float = 0.0


@dataclass(frozen=True, slots=True)
class OutputSpec:
    path: Path
    width: int
    height: int
    layout: str = "fit"  # landscape: "fit"; portrait: "follow", "blur_fill" or "center"
    credits: bool = True
    # Branding; all None for the unbranded variant (TikTok forbids added branding).
    logo: Path | None = None
    intro_image: Path | None = None  # the title card's background
    outro_image: Path | None = None  # shown for `outro_s` after the last span
    outro_s: float = 0.0
    # Spans (indices) encoded as closed-GOP pieces another cut copies instead of encoding them again: an
    # IDR picture on the span's first frame and on the frame after it, its still runs measured on their own.
    pieces: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class EncodeSettings:
    fps: int = 30
    crf: int = 21
    preset: str = "veryfast"
    maxrate_kbps: int | None = None  # default: YouTube's 1080p recommendation for the frame rate
    # The macroblock partitions libx264 searches. The preset's own list adds p8x8 and b8x8 (sub-8x8
    # motion): on engine gameplay at the bitrate cap that costs 14 % more encode time for 0.02 dB PSNR
    # and 0.0001 SSIM (benchmarks/bench_render.py, "Quality" table); superfast's list, kept here.
    partitions: str = "i8x8,i4x4"


@dataclass(frozen=True, slots=True)
class SubCut:
    """A shorter cut taken from the main pass's decoded frames (shared decoding): its span i lies inside
    the main span `parents[i]` (same source, a contained time range), and `parents` rises, so the main
    pass meets the sub-cut's spans in the sub-cut's own order. Its outputs get their own title card,
    filter graphs (credits, crop) and encoders; nothing is decoded twice."""

    outputs: Sequence[OutputSpec]
    spans: Sequence[RenderSpan]
    parents: Sequence[int]
    title: str
    intro_s: float


@dataclass(frozen=True, slots=True)
class SpanPiece:
    """A span of a rendered file that is a closed-GOP piece of its own (`OutputSpec.pieces`)."""

    first_frame: int
    frames: int
    still_spans: tuple[tuple[float, float], ...]  # every still run, in seconds from the piece's start


@dataclass(slots=True)
class RenderReport:
    path: Path
    width: int
    height: int
    fps: int
    frames: int = 0
    duration_s: float = 0.0
    seconds: float = 0.0
    size_bytes: int = 0
    span_first_frames: list[int] = field(default_factory=list)
    span_thumbnails: list[Image.Image] = field(default_factory=list)
    best_frame: Image.Image | None = None
    crop_plans: list[CropPlan] = field(default_factory=list)
    # Black or frozen stretches (start, end seconds), measured on the frames as they were encoded.
    still_spans: tuple[tuple[float, float], ...] = ()
    pieces: dict[int, SpanPiece] = field(default_factory=dict)  # by span index (`OutputSpec.pieces`)
    copied_spans: int = 0  # spans copied from another render's file (`media.span_copies`)

    @property
    def bitrate_kbps(self) -> float:
        return self.size_bytes * 8 / 1000 / self.duration_s if self.duration_s else 0.0

    @property
    def speed_x_realtime(self) -> float:
        return self.duration_s / self.seconds if self.seconds else 0.0


def encoded_spec(report: RenderReport) -> SpecReport:
    """The rendered file's spec from its bytes and packets, with the black/frozen stretches measured on
    the frames as they were encoded: the platform check without decoding the file a second time."""
    return replace(inspect_video(report.path, stills=False), black_or_frozen_spans=report.still_spans)


def _is_landscape_16_9(w: int, h: int) -> bool:
    return abs(w / h - 16 / 9) < 0.01


@dataclass(frozen=True, slots=True)
class RenderChunk:
    """Spans [first_span, end_span) of an EDL as one closed-GOP piece of the output file.

    The piece starts at output frame `first_frame` (its pictures keep the whole file's frame numbers, so
    credit plates and crops move exactly as in a single-step render); the first chunk carries the title
    card, the last the end card. `media.render_chunks` plans chunks at hard cuts and joins them.
    """

    first_span: int
    end_span: int
    first_frame: int


def encoder_threads(encoders: int) -> int:
    """libx264's threads per encoder when `encoders` encode at once: the cores this process may use
    shared out, at least one. Each encoder also runs on a thread of its own (`_Encoder`), so two or more
    single-threaded encoders already fill two cores, without frame threading's extra memory (about 50 MB
    per encoder at 1080p) and its less efficient use of the CPU."""
    return max(1, usable_cores() // max(1, encoders))


def decoder_threads(encoders: int) -> int:
    """The source decoder's threads when `encoders` encode at once: one when the encoders already fill
    the cores (more decoder threads then only queue for the same cores, and FFmpeg's frame threads each
    hold frames of their own: 20 MB less for three 1080p outputs on two cores, in the same seconds;
    README, "The whole week"), else 0 (FFmpeg decides)."""
    return 1 if encoders >= usable_cores() else 0


class _Encoder:
    """One output file: libx264 High 4:2:0, closed GOP of fps/2, 2 B-frames, faststart, no edit list.

    Its frames are encoded and muxed on a thread of its own (PyAV releases the GIL while libx264 works),
    fed through a short queue, so the outputs encode side by side while the render decodes and filters
    the next frames. `threads`: libx264's own threads (0: libx264 decides)."""

    # At most this many pictures wait per encoder (about 3 MB each at 1080p). Two keep the encoders as
    # busy as four and eight did (three 1080p outputs on two cores, the bench week's render: 95 s with
    # two against 96-97 s with four, two interleaved pairs), for 18 MiB less than four (PSS of the
    # render's process: 730 against 748 MiB).
    QUEUE_FRAMES = 2

    def __init__(
        self,
        spec: OutputSpec,
        settings: EncodeSettings,
        first_frame: int = 0,
        still_min_s: float = MAX_STILL_S,
        threads: int = 0,
    ) -> None:
        self.spec, self.settings, self.first_frame = spec, settings, first_frame
        self.tmp = spec.path.with_name(f".{spec.path.stem}.partial{spec.path.suffix}")
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(
            str(self.tmp), "w", format="mp4", options={"movflags": "+faststart", "use_editlist": "0"}
        )
        fps = settings.fps
        stream = self.container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.thread_type = "FRAME"  # PyAV's default (slices) is 11–20 % slower
        if threads:
            stream.codec_context.thread_count = threads
        maxrate = settings.maxrate_kbps or (12_000 if fps > 30 else 8_000)
        gop = max(1, fps // 2)
        stream.options = {
            "preset": settings.preset,
            "crf": str(settings.crf),
            "profile": "high",
            "g": str(gop),
            "keyint_min": str(gop),
            "bf": "2",
            "maxrate": f"{maxrate}k",
            "bufsize": f"{2 * maxrate}k",
            "forced-idr": "1",  # a picture sent as I starts a closed GOP (`keep_piece`)
            "x264-params": f"scenecut=0:open-gop=0:partitions={settings.partitions}"
            ":colorprim=bt709:transfer=bt709:colormatrix=bt709:range=tv",
        }
        self.stream = stream
        self.frames = first_frame  # the output's frame number, counted over the whole file
        # The spec check's still test runs here, on every STILL_SAMPLE_HZ-th of a second of the frames
        # being encoded, instead of decoding the finished file again (~10 s per 90 s output at 1080p).
        self.stills = StillDetector(still_min_s)
        self._sample_every = max(1, round(fps / STILL_SAMPLE_HZ))
        self._keys: set[int] = set()  # frame numbers encoded as IDR pictures
        self._piece: tuple[int, int, int, StillDetector] | None = None  # (span, first, end, its stills)
        self.pieces: dict[int, SpanPiece] = {}
        self._queue: queue.Queue[tuple[av.VideoFrame, int, bool] | None] = queue.Queue(self.QUEUE_FRAMES)
        self._error: BaseException | None = None
        self._stopping = False
        self._finished = False
        self._worker = threading.Thread(
            target=self._encode_queued, name=f"encode-{spec.path.stem}", daemon=True
        )
        self._worker.start()

    def keep_piece(self, span: int, first: int, end: int) -> None:
        """Encode frames [first, end) as a closed-GOP piece of their own (IDR pictures at `first` and at
        `end`), with their still runs measured apart, so that another cut can copy its packets."""
        self._finish_piece()
        self._keys.update((first, end))
        self._piece = (span, first, end, StillDetector(0.0))

    def _finish_piece(self) -> None:
        if self._piece is not None:
            span, first, end, stills = self._piece
            fps = self.settings.fps
            self.pieces[span] = SpanPiece(first, end - first, stills.finish((end - first) / fps))
            self._piece = None

    def encode(self, frame: av.VideoFrame) -> None:
        """Queue the frame as the output's next picture. The frame is not changed until its turn comes
        (one object may be queued again, as a held picture is)."""
        if self._piece is not None and self.frames >= self._piece[2]:
            self._finish_piece()
        if self.frames % self._sample_every == 0:
            luma = _small_luma(frame)
            self.stills.feed(self.frames / self.settings.fps, luma)
            if self._piece is not None and self.frames >= self._piece[1]:
                self._piece[3].feed((self.frames - self._piece[1]) / self.settings.fps, luma)
        self._put((frame, self.frames - self.first_frame, self.frames in self._keys))
        self.frames += 1

    def _put(self, item: tuple[av.VideoFrame, int, bool] | None) -> None:
        if not _offer(self._queue, item, lambda: self._error is not None, 0.5):
            raise RuntimeError(f"encoding {self.spec.path.name} failed: {self._error}") from self._error

    def _encode_queued(self) -> None:
        time_base = Fraction(1, self.settings.fps)
        try:
            while (item := self._queue.get()) is not None:
                if self._stopping:
                    continue  # an aborted render: drop what is queued
                frame, pts, key = item
                frame.pts, frame.time_base = pts, time_base
                # Never the source's frame types; an IDR where a piece starts or ends.
                frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
                self.container.mux(self.stream.encode(frame))
            if not self._stopping:
                self.container.mux(self.stream.encode(None))
        except BaseException as exc:  # handed to the render's thread by the next encode or close
            self._error = exc
            while self._queue.get() is not None:  # let the render's thread reach close or abort
                pass

    def finish(self) -> None:
        """Send the end: the encoder's thread flushes libx264's delayed pictures and the muxer while the
        render's thread goes on (`close` waits for it). Finishing every output first and then closing
        each flushes them side by side instead of one after another."""
        if not self._finished:
            self._finished = True
            self._finish_piece()
            self._put(None)

    def close(self) -> None:
        self.finish()
        self._worker.join()
        if self._error is not None:
            raise RuntimeError(f"encoding {self.spec.path.name} failed: {self._error}") from self._error
        self.container.close()
        self.tmp.replace(self.spec.path)

    def abort(self) -> None:
        self._stopping = True
        while self._worker.is_alive():  # it ends at the next None it takes
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=0.1)
            self._worker.join(timeout=0.1)
        with contextlib.suppress(Exception):  # a half-written file, removed below
            self.container.close()
        self.tmp.unlink(missing_ok=True)


class _SpanGraph:
    """The filter graph taking one span's decoded frames to one output's frames."""

    def __init__(
        self,
        spec: OutputSpec,
        span: RenderSpan,
        src_w: int,
        src_h: int,
        src_format: str,
        fps: int,
        crop: CropPlan,
    ) -> None:
        W, H = spec.width, spec.height
        g = av.filter.Graph()
        tb = self.tb = Fraction(1, fps)
        self.src = g.add_buffer(width=src_w, height=src_h, format=av.VideoFormat(src_format), time_base=tb)
        node = self.src
        w, h = src_w, src_h
        if span.rotation in (90, 270):
            node = self._chain(g, node, "transpose", "clock" if span.rotation == 90 else "cclock")
            w, h = h, w
        elif span.rotation == 180:
            node = self._chain(g, node, "hflip")
            node = self._chain(g, node, "vflip")
        portrait_out = H > W
        fill = (not portrait_out and not _is_landscape_16_9(w, h)) or (
            portrait_out and (crop.mode == "blur_fill" or spec.layout == "blur_fill" or w <= h * 9 / 16 + 2)
        )
        if fill and not (portrait_out and abs(w / h - W / H) < 0.01):
            node = self._blur_fill(g, node, W, H)
        elif portrait_out:
            cw = min(w, round(h * W / H) // 2 * 2)
            x0, x1 = crop.x_start, crop.x_end
            if spec.layout == "center":
                x0 = x1 = 0.5
            t0, dur = span.montage_in_s, max(span.montage_out_s - span.montage_in_s, 1e-3)
            left = f"({x0}+({x1}-{x0})*clip((t-{t0})/{dur},0,1))*{w}-{cw}/2"
            node = self._chain(g, node, "crop", f"{cw}:{h}:'clip({left},0,{w - cw})':0")
            node = self._chain(g, node, "scale", f"{W}:{H}:flags=bicubic")
        else:
            node = self._chain(g, node, "scale", f"{W}:{H}:flags=bicubic")
        node = self._chain(g, node, "format", "yuv420p")
        self.stills: list[tuple[FilterContext, Image.Image]] = []
        if spec.credits and span.credit:
            plate = lower_third(span.credit, W, H)
            t0 = span.montage_in_s
            node = self._overlay_still(
                g, node, plate, safe_position(plate, W, H), f"between(t,{t0},{t0 + CREDIT_SECONDS})"
            )
        if spec.logo is not None:
            logo = logo_image(spec.logo, W, H)
            node = self._overlay_still(g, node, logo, logo_position(logo, W, H), None)
        self.sink = g.add("buffersink")
        node.link_to(self.sink)
        g.configure()
        self.graph = g
        self.stills_pushed = False

    def _overlay_still(
        self,
        g: av.filter.Graph,
        node: FilterContext,
        image: Image.Image,
        at: tuple[int, int],
        enable: str | None,
    ) -> FilterContext:
        """Composite a still RGBA picture in the graph (pushed once; eof_action=repeat keeps it)."""
        src = g.add_buffer(
            width=image.width, height=image.height, format=av.VideoFormat("rgba"), time_base=self.tb
        )
        args = f"x={at[0]}:y={at[1]}:eof_action=repeat" + (f":enable='{enable}'" if enable else "")
        overlay = g.add("overlay", args)
        node.link_to(overlay, 0, 0)
        src.link_to(overlay, 0, 1)
        self.stills.append((src, image))
        return self._chain(g, overlay, "format", "yuv420p")

    @staticmethod
    def _chain(g: av.filter.Graph, node: FilterContext, name: str, args: str | None = None) -> FilterContext:
        nxt = g.add(name, args) if args is not None else g.add(name)
        node.link_to(nxt)
        return nxt

    def _blur_fill(self, g: av.filter.Graph, node: FilterContext, W: int, H: int) -> FilterContext:
        """The picture fitted whole over a blurred, zoomed copy of itself: no black bars."""
        split = g.add("split")
        node.link_to(split)
        bg_w, bg_h = max(2, W // 8 // 2 * 2), max(2, H // 8 // 2 * 2)
        bg = g.add("scale", f"{bg_w}:{bg_h}:force_original_aspect_ratio=increase")
        split.link_to(bg, 0, 0)
        crop = self._chain(g, bg, "crop", f"{bg_w}:{bg_h}")
        blur = self._chain(g, crop, "gblur", "sigma=4")
        up = self._chain(g, blur, "scale", f"{W}:{H}")
        fg = g.add("scale", f"{W}:{H}:force_original_aspect_ratio=decrease:flags=bicubic")
        split.link_to(fg, 1, 0)
        overlay = g.add("overlay", "x=(W-w)/2:y=(H-h)/2")
        up.link_to(overlay, 0, 0)
        fg.link_to(overlay, 0, 1)
        return overlay

    def run(self, frame: av.VideoFrame, pts: int) -> Iterator[av.VideoFrame]:
        if not self.stills_pushed:
            for src, image in self.stills:
                still = av.VideoFrame.from_image(image)
                still.pts = 0
                src.push(still)
                src.push(None)  # one still picture; eof_action=repeat keeps it
            self.stills_pushed = True
        frame.pts = pts
        self.src.push(frame)
        while True:
            try:
                out = self.sink.pull()
                assert isinstance(out, av.VideoFrame)
                yield out
            except (av.error.BlockingIOError, av.error.EOFError):
                return


def _decode_span(span: RenderSpan, threads: int = 0) -> Generator[tuple[float, av.VideoFrame], None, None]:
    """(source time, frame) from the keyframe before the in-point up to the out-point, decoded on
    `threads` threads (0: FFmpeg decides)."""
    with av.open(str(span.source_path)) as container:
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        video.thread_count = threads
        assert video.time_base is not None
        start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
        container.seek(int((start + span.source_in_s) / video.time_base), stream=video, backward=True)
        for frame in container.decode(video):
            if frame.time is None:
                continue
            t = float(frame.time) - start
            yield t, frame
            if t >= span.source_out_s:
                return


class _DecodeAhead:
    """The render's spans decoded one after another on a thread of their own, up to DEPTH frames ahead of
    the render's thread.

    Why: the render's thread used to decode, filter and feed the encoders in turn, so each span's seek
    and pre-roll (the frames from the keyframe before its in-point, decoded and dropped) held up the
    filtering. Now it only filters: on two 1080p outputs of generated clips its CPU time went from 10.6 s
    to 4.4 s per 42 s montage, and the render from 37.1 to 36.6 s (README, "The whole week"). Where the
    encoders have more cores to themselves, that one thread is what bounds the render. The frames are
    the ones `_decode_span` gives, in the same order; at most DEPTH of them wait per span, and only the
    span being rendered and the next one hold any (about 3 MB per 1080p frame)."""

    DEPTH = 1  # one frame keeps the encoders as busy as two and four did (three interleaved pairs each)

    def __init__(self, spans: Sequence[RenderSpan], threads: int) -> None:
        self._spans = list(spans)
        self._threads = threads
        self._queues: list[queue.Queue[object]] = [queue.Queue(self.DEPTH) for _ in self._spans]
        self._released = [threading.Event() for _ in self._spans]  # the render is done with span i
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._decode_all, name="decode-ahead", daemon=True)
        self._thread.start()

    def frames(self, index: int) -> Generator[tuple[float, av.VideoFrame], None, None]:
        """Span `index`'s (source time, frame) pairs; closing the iterator early stops its decode."""
        q = self._queues[index]
        try:
            while (item := self._get(q)) is not _SPAN_END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self._released[index].set()
            _drain(q)

    def _get(self, q: queue.Queue[object]) -> object:
        while True:
            try:
                return q.get(timeout=1.0)
            except queue.Empty:
                if not self._thread.is_alive() and q.empty():
                    raise RuntimeError("the render's decoder stopped before the span's end") from None

    def close(self) -> None:
        """Stop decoding and let go of every frame still waiting."""
        self._closed.set()
        self._thread.join()
        for q in self._queues:
            _drain(q)

    def _decode_all(self) -> None:
        for index, span in enumerate(self._spans):
            q, released = self._queues[index], self._released[index]
            try:
                with contextlib.closing(_decode_span(span, self._threads)) as frames:
                    for item in frames:
                        if not self._put(q, item, released):
                            break
                    else:
                        self._put(q, _SPAN_END, released)
            except BaseException as exc:
                if released.is_set():
                    continue  # past the last frame the render took: a decode in line never got there
                self._put(q, exc, released)  # the render's thread raises it and stops the render
                return
            if released.is_set():
                _drain(q)
            if self._closed.is_set():
                return

    def _put(self, q: queue.Queue[object], item: object, released: threading.Event) -> bool:
        return _offer(q, item, lambda: self._closed.is_set() or released.is_set(), 0.1)


_SPAN_END = object()


def _offer(q: queue.Queue[Any], item: object, give_up: Callable[[], bool], every_s: float) -> bool:
    """Put `item` on the bounded queue, waiting while it is full; False, without putting it, once
    `give_up()` (checked every `every_s`) says its reader has stopped or failed."""
    while not give_up():
        try:
            q.put(item, timeout=every_s)
            return True
        except queue.Full:
            continue
    return False


def _drain(q: queue.Queue[object]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            q.get_nowait()


def render(
    spans: Sequence[RenderSpan],
    outputs: Sequence[OutputSpec],
    settings: EncodeSettings,
    *,
    title: str,
    intro_s: float,
    progress: Callable[[int, int], None] | None = None,
    palette: Palette = DEFAULT_PALETTE,
    sub: SubCut | None = None,
    chunk: RenderChunk | None = None,
) -> list[RenderReport]:
    """Render the spans into every output in one pass over the sources; with `chunk`, only that piece;
    with `sub` (whole renders only), the sub-cut's outputs too, from the same decoded frames (their
    reports follow the main outputs')."""
    started = time.perf_counter()
    fps = settings.fps
    chunk = chunk or RenderChunk(0, len(spans), 0)
    whole = (chunk.first_span, chunk.end_span) == (0, len(spans))
    # A piece reports every still run, so that the join can measure stretches that cross a seam.
    if sub is not None and not whole:
        raise ValueError("a sub-cut rides on a whole render, not on a chunk")
    threads = encoder_threads(len(outputs) + (len(sub.outputs) if sub else 0))
    encoders = [
        _Encoder(o, settings, chunk.first_frame, MAX_STILL_S if whole else 0.0, threads) for o in outputs
    ]
    reports = [RenderReport(o.path, o.width, o.height, fps) for o in outputs]
    sub_encoders = [_Encoder(o, settings, threads=threads) for o in sub.outputs] if sub else []
    sub_reports = [RenderReport(o.path, o.width, o.height, fps) for o in sub.outputs] if sub else []
    best = max(range(len(spans)), key=lambda i: spans[i].score) if spans else -1
    ahead = _DecodeAhead(
        spans[chunk.first_span : chunk.end_span], decoder_threads(len(encoders) + len(sub_encoders))
    )
    try:
        cards = [(enc, title, intro_s) for enc in encoders] if chunk.first_span == 0 else []
        cards += [(enc, sub.title, sub.intro_s) for enc in sub_encoders] if sub is not None else []
        _title_frames(cards, fps, palette)
        sub_best = max(range(len(sub.spans)), key=lambda j: sub.spans[j].score) if sub and sub.spans else -1
        for index in range(chunk.first_span, chunk.end_span):
            rider = None
            if sub is not None and index in sub.parents:
                j = list(sub.parents).index(index)
                rider = _Rider(sub.spans[j], sub_encoders, sub_reports, j == sub_best)
            frames = ahead.frames(index - chunk.first_span)
            _render_span(
                index, spans[index], frames, spans, outputs, encoders, reports, settings, index == best, rider
            )
            if progress:
                progress(index + 1, len(spans))
        if chunk.end_span == len(spans):
            _still_frames(
                [
                    (enc, _outro_still(enc.spec), round(enc.spec.outro_s * fps))
                    for enc in (*encoders, *sub_encoders)
                    if enc.spec.outro_image is not None and enc.spec.outro_s > 0
                ]
            )
        for enc in (*encoders, *sub_encoders):
            enc.finish()
        for enc in (*encoders, *sub_encoders):
            enc.close()
    except BaseException:
        for enc in (*encoders, *sub_encoders):
            enc.abort()
        raise
    finally:
        ahead.close()
    elapsed = time.perf_counter() - started
    for report, enc in zip((*reports, *sub_reports), (*encoders, *sub_encoders), strict=True):
        report.frames = enc.frames - enc.first_frame
        report.duration_s = report.frames / fps
        report.still_spans = enc.stills.finish(enc.frames / fps)
        report.pieces = dict(enc.pieces)
        report.seconds = elapsed
        report.size_bytes = report.path.stat().st_size
    # The pass's frames and x264's buffers are freed: hand their pages back before the next step.
    give_back_freed_memory()
    return reports + sub_reports


def _title_frames(cards: Sequence[tuple[_Encoder, str, float]], fps: int, palette: Palette) -> None:
    """Each encoder's title card (encoder, title, seconds) as its first pictures."""
    stills = []
    for enc, title, intro_s in cards:
        spec = enc.spec
        background = Image.open(spec.intro_image) if spec.intro_image else None
        card = title_card(spec.width, spec.height, title, background=background, palette=palette)
        still = av.VideoFrame.from_image(card).reformat(format="yuv420p")
        stills.append((enc, still, math.ceil(intro_s * fps - 1e-9)))
    _still_frames(stills)


def _outro_still(spec: OutputSpec) -> av.VideoFrame:
    assert spec.outro_image is not None
    outro = cover(Image.open(spec.outro_image), spec.width, spec.height)
    return av.VideoFrame.from_image(outro).reformat(format="yuv420p")


def _still_frames(stills: Sequence[tuple[_Encoder, av.VideoFrame, int]]) -> None:
    """Each encoder's picture (encoder, picture, count) that many times, a picture to every encoder in
    turn: each encoder's queue holds two pictures, so feeding one encoder all of its pictures first
    left the others idle (a 3 s title card on three 1080p outputs: 4.8 s one encoder after another,
    2.8 s in turn)."""
    for i in range(max((count for _, _, count in stills), default=0)):
        for enc, still, count in stills:
            if i < count:
                enc.encode(still)


@dataclass(slots=True)
class _Rider:
    """A sub-cut span riding on the main span being decoded: its encoders take the main pass's frames
    from `k_lo` on (main frame numbers) through their own graphs."""

    span: RenderSpan
    encoders: Sequence[_Encoder]
    reports: Sequence[RenderReport]
    is_best: bool
    k_lo: int = 0
    frames: int = 0  # how many frames the sub-cut's span takes
    frames_total: int = 0  # the sub-cut's encoders' frame count once this span is in

    def place(self, main: RenderSpan, first_k: int, last_k: int, fps: int) -> RenderSpan:
        """Where the span sits in the main pass, and the span its graphs see (in main-pass time)."""
        self.frames_total = math.ceil(self.span.montage_out_s * fps - 1e-9)
        self.frames = self.frames_total - self.encoders[0].frames
        k = round((self.span.source_in_s - main.source_in_s + main.montage_in_s) * fps)
        self.k_lo = max(first_k, min(k, last_k - self.frames))
        return replace(self.span, montage_in_s=self.k_lo / fps, montage_out_s=(self.k_lo + self.frames) / fps)


def _span_frames(
    span: RenderSpan,
    frames: Generator[tuple[float, av.VideoFrame], None, None],
    outputs: Sequence[OutputSpec],
    fps: int,
    first_k: int,
    last_k: int,
    crop: CropPlan,
    rider: tuple[RenderSpan, Sequence[OutputSpec], CropPlan, int, int] | None = None,
) -> Iterator[tuple[int, list[av.VideoFrame], list[av.VideoFrame]]]:
    """(output index, one frame per output, one per rider output) for k in [first_k, last_k): the newest
    of the span's decoded `frames` at or before each output frame's time, through each output's filter
    graph. A rider (its span in main-pass time, outputs, crop, frames [k_lo, k_hi)) gets the same decoded
    frames. `frames` is closed at the end."""
    graphs: list[_SpanGraph] = []
    rider_graphs: list[_SpanGraph] = []
    current: av.VideoFrame | None = None
    try:
        pending: tuple[float, av.VideoFrame] | None = next(frames, None)
        for k in range(first_k, last_k):
            target = span.source_in_s + (k / fps - span.montage_in_s)
            while pending is not None and pending[0] <= target + 1e-6:
                current = pending[1]
                pending = next(frames, None)
            if current is None:  # nothing at or before the in-point (a seek past the start): take the first
                if pending is None:
                    raise ValueError(
                        f"{span.source_path.name}: no frame in {span.source_in_s}–{span.source_out_s}s"
                    )
                current = pending[1]
                pending = next(frames, None)
            if not graphs:
                fmt = current.format.name
                graphs = [_SpanGraph(o, span, current.width, current.height, fmt, fps, crop) for o in outputs]
            outs = [_pull(graph, current, k) for graph in graphs]
            rides: list[av.VideoFrame] = []
            if rider is not None and rider[3] <= k < rider[4]:
                if not rider_graphs:
                    rspan, routs, rcrop = rider[0], rider[1], rider[2]
                    fmt = current.format.name
                    rider_graphs = [
                        _SpanGraph(o, rspan, current.width, current.height, fmt, fps, rcrop) for o in routs
                    ]
                rides = [_pull(graph, current, k) for graph in rider_graphs]
            yield k, outs, rides
    finally:
        frames.close()


def _pull(graph: _SpanGraph, frame: av.VideoFrame, k: int) -> av.VideoFrame:
    produced = list(graph.run(frame, k))
    if not produced:
        raise RuntimeError(f"the filter graph gave no frame for output frame {k}")
    return produced[-1]


def _blend(incoming: av.VideoFrame, outgoing: av.VideoFrame, alpha: float) -> av.VideoFrame:
    """A dissolve step on 4:2:0 pictures; only the few frames of a transition pay for numpy."""
    mix = incoming.to_ndarray().astype(np.float32) * alpha + outgoing.to_ndarray().astype(np.float32) * (
        1 - alpha
    )
    return av.VideoFrame.from_ndarray(np.round(mix).astype(np.uint8), format="yuv420p")


def _render_span(
    index: int,
    span: RenderSpan,
    frames: Generator[tuple[float, av.VideoFrame], None, None],
    spans: Sequence[RenderSpan],
    outputs: Sequence[OutputSpec],
    encoders: Sequence[_Encoder],
    reports: Sequence[RenderReport],
    settings: EncodeSettings,
    is_best: bool,
    rider: _Rider | None = None,
) -> None:
    fps = settings.fps
    first_k = encoders[0].frames
    last_k = math.ceil(span.montage_out_s * fps - 1e-9)
    crop = plan_crop(span.action, span.source_in_s, span.source_out_s)
    peak_k = round(span.peak_montage_s * fps) if span.peak_montage_s is not None else (first_k + last_k) // 2
    for report in reports:
        report.span_first_frames.append(first_k)
        report.crop_plans.append(crop)
    for enc in encoders:
        if index in enc.spec.pieces and span.transition_in != "dissolve":
            enc.keep_piece(index, first_k, last_k)
    riding = None
    if rider is not None:
        seen = rider.place(span, first_k, last_k, fps)
        rcrop = plan_crop(rider.span.action, rider.span.source_in_s, rider.span.source_out_s)
        for report in rider.reports:
            report.span_first_frames.append(rider.encoders[0].frames)
            report.crop_plans.append(rcrop)
        riding = (seen, [e.spec for e in rider.encoders], rcrop, rider.k_lo, rider.k_lo + rider.frames)
    incoming = _span_frames(span, frames, outputs, fps, first_k, last_k, crop, riding)
    outgoing: Iterator[tuple[int, list[av.VideoFrame], list[av.VideoFrame]]] | None = None
    n_mix = 0
    if span.transition_in == "dissolve" and span.transition_s > 0 and index > 0:
        # The previous clip plays on past its out-point under the incoming one.
        prev = spans[index - 1]
        n_mix = min(round(span.transition_s * fps), last_k - first_k)
        tail = replace(
            prev,
            source_in_s=prev.source_out_s,
            source_out_s=prev.source_out_s + span.transition_s + 1 / fps,
            montage_in_s=span.montage_in_s,
            montage_out_s=span.montage_in_s + span.transition_s,
            credit="",
        )
        prev_crop = plan_crop(prev.action, prev.source_in_s, prev.source_out_s)
        # The tail is short and rare: decoded here, beside the incoming span's frames.
        tail_frames = _decode_span(tail, decoder_threads(len(encoders)))
        outgoing = _span_frames(tail, tail_frames, outputs, fps, first_k, first_k + n_mix, prev_crop)
    last_rides: list[av.VideoFrame] = []
    for k, fresh, rides in incoming:
        if rider is not None and rides:
            _encode_rides(rider, rides, k == rider.k_lo)
            last_rides = rides
        outs = fresh
        if outgoing is not None and k < first_k + n_mix:
            _, olds, _ = next(outgoing)
            alpha = (k - first_k + 1) / (n_mix + 1)
            outs = [_blend(new, old, alpha) for new, old in zip(fresh, olds, strict=True)]
        for out, enc, report in zip(outs, encoders, reports, strict=True):
            if k == first_k:
                report.span_thumbnails.append(out.to_image().resize(_thumb(out.width, out.height)))
            if is_best and k == min(max(peak_k, first_k), last_k - 1):
                report.best_frame = out.to_image()
            enc.encode(out)

    if rider is not None:
        while last_rides and rider.encoders[0].frames < rider.frames_total:
            _encode_rides(rider, last_rides, False)  # a frame short at the main span's end: hold it


def _encode_rides(rider: _Rider, rides: Sequence[av.VideoFrame], first: bool) -> None:
    peak = rider.span.peak_montage_s
    for out, enc, report in zip(rides, rider.encoders, rider.reports, strict=True):
        if enc.frames >= rider.frames_total:
            continue
        if first:
            report.span_thumbnails.append(out.to_image().resize(_thumb(out.width, out.height)))
        if rider.is_best and peak is not None and enc.frames == round(peak * enc.settings.fps):
            report.best_frame = out.to_image()
        enc.encode(out)


def _thumb(w: int, h: int) -> tuple[int, int]:
    return THUMB_SIZE if w >= h else (THUMB_SIZE[1] * 9 // 16 * 2 // 2, THUMB_SIZE[1])


def contact_sheet(thumbnails: Sequence[Image.Image], columns: int = 5) -> Image.Image:
    """One small frame per span in a grid, for the asset's page in the UI."""
    if not thumbnails:
        return Image.new("RGB", THUMB_SIZE)
    tw, th = thumbnails[0].size
    rows = math.ceil(len(thumbnails) / columns)
    sheet = Image.new("RGB", (min(columns, len(thumbnails)) * tw, rows * th), (16, 16, 20))
    for i, thumb in enumerate(thumbnails):
        sheet.paste(thumb, ((i % columns) * tw, (i // columns) * th))
    return sheet
