"""The render split into chunks at hard cuts, each its own closed-GOP H.264 piece, joined by stream copy.

Why: one week's render is the longest single step; cut at hard cuts, its pieces can be encoded by
different workers and joined without re-encoding into the file a single-step render makes (same size,
frame count, settings and spec). A chunk never starts on a dissolve, because a dissolve needs the
previous clip's frames, so every piece is self-contained. The pieces keep the whole file's frame
numbers, and x264 starts each one with an IDR picture, so a join is a concatenation of packets with
their timestamps moved by the frames before them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av

from montage_pipeline.media.render import RenderChunk, RenderReport, RenderSpan
from montage_pipeline.media.specs import MAX_STILL_S


def plan_chunks(spans: Sequence[RenderSpan], fps: int, intro_s: float, chunks: int) -> list[RenderChunk]:
    """At most `chunks` pieces of about equal length, split only where a span starts with a hard cut."""
    if not spans:
        return [RenderChunk(0, 0, 0)]
    cuts = [i for i in range(1, len(spans)) if spans[i].transition_in != "dissolve"]
    total = spans[-1].montage_out_s
    starts: list[int] = [0]
    for n in range(1, max(1, chunks)):
        goal = intro_s + (total - intro_s) * n / chunks  # where the n-th piece would start if cuts were free
        later = [i for i in cuts if i > starts[-1]]
        if not later:
            break
        nearest = min(later, key=lambda i: abs(spans[i].montage_in_s - goal))
        if nearest not in starts:
            starts.append(nearest)
    ends = [*starts[1:], len(spans)]
    return [
        RenderChunk(first, end, 0 if first == 0 else _first_frame(spans[first - 1], fps))
        for first, end in zip(starts, ends, strict=True)
    ]


def _first_frame(previous: RenderSpan, fps: int) -> int:
    """The output frame after `previous` ends: where a single-step render would start the next span."""
    return math.ceil(previous.montage_out_s * fps - 1e-9)


def join_chunks(parts: Sequence[Path], out: Path) -> None:
    """Concatenate the pieces' packets into `out` (faststart, no edit list), written atomically."""
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart", "use_editlist": "0"}
    try:
        with av.open(str(tmp), "w", format="mp4", options=options) as dst:
            stream = None
            offset = Fraction(0)  # seconds of picture before this piece
            for part in parts:
                with av.open(str(part)) as src:
                    video = src.streams.video[0]
                    assert video.time_base is not None and video.average_rate
                    if stream is None:
                        stream = dst.add_stream_from_template(video)
                    shift = round(offset / video.time_base)
                    for packet in src.demux(video):
                        if packet.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        packet.pts = None if packet.pts is None else packet.pts + shift
                        packet.dts += shift
                        packet.stream = stream
                        dst.mux(packet)
                    offset += video.frames / video.average_rate
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def join_reports(reports: Sequence[RenderReport], path: Path) -> RenderReport:
    """One output's chunk reports as the report a single-step render of the joined file would give."""
    first = reports[0]
    frames = sum(r.frames for r in reports)
    best = next((r.best_frame for r in reports if r.best_frame is not None), None)
    return replace(
        first,
        path=path,
        frames=frames,
        duration_s=frames / first.fps,
        seconds=sum(r.seconds for r in reports),
        size_bytes=path.stat().st_size,
        span_first_frames=[k for r in reports for k in r.span_first_frames],
        span_thumbnails=[t for r in reports for t in r.span_thumbnails],
        best_frame=best,
        crop_plans=[c for r in reports for c in r.crop_plans],
        still_spans=_merge_at_seams([s for r in reports for s in r.still_spans], _seams(reports)),
    )


def _seams(reports: Sequence[RenderReport]) -> list[float]:
    """Where each piece after the first starts, in seconds of the joined file (the pieces are contiguous)."""
    seams, frames = [], 0
    for r in reports[:-1]:
        frames += r.frames
        seams.append(frames / r.fps)
    return seams


def _merge_at_seams(
    runs: list[tuple[float, float]], seams: Sequence[float]
) -> tuple[tuple[float, float], ...]:
    """The pieces' still runs joined where one ends and the next starts at a seam (a piece's detector
    closes a run at its end, the next piece's opens one at its start), kept when longer than
    MAX_STILL_S. Runs that touch inside a piece stay apart: there the detector saw the picture change
    (a still title card followed by a calm first shot is two runs, not one)."""
    tolerance = 2e-3  # the detector rounds its times to the millisecond

    def at_seam(t: float) -> bool:
        return any(abs(t - seam) < tolerance for seam in seams)

    merged: list[tuple[float, float]] = []
    for a, b in sorted(runs):
        if merged and abs(a - merged[-1][1]) < tolerance and at_seam(a):
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple((a, b) for a, b in merged if b - a > MAX_STILL_S)
