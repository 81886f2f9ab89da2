"""The render stage spread over steps: the plan cut into jobs, one job's pieces rendered and stored, and
the pieces joined back into the outputs a single-step render gives (MONTAGE_RENDER_CHUNKS).

    plan_jobs ──> render_job + store_pieces (one worker each) ──> join_outputs (downloads, joins, reviews)

The main cut's groups (landscape, portrait) are split at hard cuts into `chunks` pieces (`media.
render_chunks`); job `chunk_<i>` renders piece i of every such group, so the landscape and the portrait
of one stretch of the week share one decode pass as they do in a single step. A short cannot ride on a
piece of the main pass (it needs the whole pass), and the long cut has spans of its own: each gets a job
of its own, rendered whole. What a job hands on is a `JobSummary` (small rows: the pieces' store keys and
figures); the pieces themselves and their thumbnails go through the media store, so a job may run on
any worker and the join on another.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from montage_pipeline.highlights.render_plan import CUT_OUTPUTS, RenderGroup, RenderPlan
from montage_pipeline.highlights.renders import RenderedOutput, finish_reports, render_group
from montage_pipeline.media.render import RenderChunk, RenderReport
from montage_pipeline.media.render_chunks import join_chunks, join_reports, plan_chunks
from montage_pipeline.storage.media_store import MediaStore


@dataclass(frozen=True, slots=True)
class GroupPiece:
    """Spans [first_span, end_span) of the plan's group `group`, starting at output frame `first_frame`."""

    group: int
    first_span: int
    end_span: int
    first_frame: int


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One render step's work: its pieces (of one or more groups) and its place in the joins' order."""

    index: int
    key: str  # the step's mapping key: chunk_<i>, or the output of a group rendered whole
    pieces: list[GroupPiece]
    selected: list[str]  # the run's selected outputs: every step plans the same render from them


@dataclass(frozen=True, slots=True)
class PieceReport:
    """One output's piece as a job rendered it: where it is stored and what the join needs of its report."""

    name: str  # the output (a plan output name)
    video_key: str
    width: int
    height: int
    fps: int
    frames: int
    seconds: float
    span_first_frames: list[int]
    still_spans: list[tuple[float, float]]
    thumbnail_keys: list[str]  # one small picture per span, for the contact sheet
    best_frame_key: str | None  # the week's best moment, in the piece that holds it


@dataclass(frozen=True, slots=True)
class JobSummary:
    index: int
    key: str
    pieces: list[PieceReport]
    seconds: float  # the job's render time


def split_plan(plan: RenderPlan) -> RenderPlan:
    """The plan with a short riding on a main pass given a group of its own: a piece of the main pass
    cannot carry it (`render` refuses a sub-cut on a chunk)."""
    groups: list[RenderGroup] = []
    for group in plan.groups:
        if group.sub is None:
            groups.append(group)
            continue
        groups.append(dataclasses.replace(group, sub=None, sub_names=()))
        groups.append(RenderGroup(group.sub_names, list(group.sub.spans), intro_s=group.sub.intro_s))
    return dataclasses.replace(plan, groups=groups)


def _is_main(group: RenderGroup) -> bool:
    return not any(n in CUT_OUTPUTS for n in group.names)


def plan_jobs(plan: RenderPlan, chunks: int, selected: Sequence[str]) -> list[RenderJob]:
    """The main cut's groups in up to `chunks` pieces each (cut at hard cuts), piece i of every group in
    job `chunk_<i>`; every other group whole, in a job of its own. A plan with nothing to render gives
    one empty job, so the join still runs and reports the skipped cuts."""
    fps = plan.settings.fps
    by_chunk: dict[int, list[GroupPiece]] = {}
    whole: list[tuple[str, GroupPiece]] = []
    for g, group in enumerate(plan.groups):
        if not _is_main(group):
            whole.append((group.names[0], GroupPiece(g, 0, len(group.spans), 0)))
            continue
        intro_s = plan.intro_s if group.intro_s is None else group.intro_s
        for i, c in enumerate(plan_chunks(group.spans, fps, intro_s, chunks)):
            by_chunk.setdefault(i, []).append(GroupPiece(g, c.first_span, c.end_span, c.first_frame))
    keyed = [(f"chunk_{i}", pieces) for i, pieces in sorted(by_chunk.items())]
    keyed += [(key, [piece]) for key, piece in whole]
    jobs = [RenderJob(i, key, pieces, list(selected)) for i, (key, pieces) in enumerate(keyed)]
    return jobs or [RenderJob(0, "none", [], list(selected))]


def render_job(
    plan: RenderPlan, job: RenderJob, progress: Callable[[int, int], None] | None = None
) -> dict[str, RenderReport]:
    """The job's pieces rendered into the plan's workdir paths (one decode pass per group), by output."""
    reports: dict[str, RenderReport] = {}
    for piece in job.pieces:
        group = plan.groups[piece.group]
        chunk = RenderChunk(piece.first_span, piece.end_span, piece.first_frame)
        done = render_group(plan, group, progress, chunk)
        reports.update(zip(group.names, done, strict=True))
    return reports


def store_pieces(
    store: MediaStore, prefix: str, job: RenderJob, reports: dict[str, RenderReport], workdir: Path
) -> JobSummary:
    """Upload each piece and its thumbnails under `prefix` (the run's folder for this job)."""
    pieces = []
    for name, r in reports.items():
        video_key = f"{prefix}/{name}/video.mp4"
        store.put_file(r.path, video_key, content_type="video/mp4")
        thumbs = [
            _put_image(store, image, f"{prefix}/{name}/span_{i:03d}.png", workdir)
            for i, image in enumerate(r.span_thumbnails)
        ]
        best = (
            None
            if r.best_frame is None
            else _put_image(store, r.best_frame, f"{prefix}/{name}/best.png", workdir)
        )
        pieces.append(
            PieceReport(
                name=name,
                video_key=video_key,
                width=r.width,
                height=r.height,
                fps=r.fps,
                frames=r.frames,
                seconds=r.seconds,
                span_first_frames=list(r.span_first_frames),
                still_spans=list(r.still_spans),
                thumbnail_keys=thumbs,
                best_frame_key=best,
            )
        )
    seconds = max((p.seconds for p in pieces), default=0.0)
    return JobSummary(job.index, job.key, pieces, seconds)


def _put_image(store: MediaStore, image: Image.Image, key: str, workdir: Path) -> str:
    local = workdir / "upload.png"
    image.save(local, format="PNG")
    store.put_file(local, key, content_type="image/png")
    return key


def _get_image(store: MediaStore, key: str, workdir: Path) -> Image.Image:
    local = workdir / "download.png"
    store.get_file(key, local)
    with Image.open(local) as image:
        return image.copy()


def join_outputs(
    plan: RenderPlan, summaries: Sequence[JobSummary], store: MediaStore, workdir: Path
) -> list[RenderedOutput]:
    """Every output's pieces, in the jobs' order, downloaded and joined by stream copy into the plan's
    path, their reports merged, and each output reviewed as a single-step render is."""
    by_name: dict[str, list[PieceReport]] = {}
    for summary in sorted(summaries, key=lambda s: s.index):
        for piece in summary.pieces:
            by_name.setdefault(piece.name, []).append(piece)
    reports: dict[str, RenderReport] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for name in plan.outputs:
            if name not in by_name:
                continue
            parts = [_download(store, p, Path(tmp) / f"{name}_{i}.mp4") for i, p in enumerate(by_name[name])]
            out = plan.outputs[name].path
            join_chunks([r.path for r in parts], out)
            reports[name] = join_reports(parts, out)
    return finish_reports(plan, reports, workdir)


def _download(store: MediaStore, piece: PieceReport, local: Path) -> RenderReport:
    """The piece's file, and its report as `render` gave it (what `join_reports` merges)."""
    store.get_file(piece.video_key, local)
    return RenderReport(
        path=local,
        width=piece.width,
        height=piece.height,
        fps=piece.fps,
        frames=piece.frames,
        duration_s=piece.frames / piece.fps,
        seconds=piece.seconds,
        size_bytes=local.stat().st_size,
        span_first_frames=list(piece.span_first_frames),
        span_thumbnails=[_get_image(store, k, local.parent) for k in piece.thumbnail_keys],
        best_frame=None
        if piece.best_frame_key is None
        else _get_image(store, piece.best_frame_key, local.parent),
        still_spans=tuple((a, b) for a, b in piece.still_spans),
    )
