"""The render stage as one call: plan the outputs, render them in as few decode passes as the plan allows,
and review each (thumbnail, contact sheet, the platform spec checks) into what the assets report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from montage_pipeline.highlights.render_plan import (
    PORTRAIT_MAX_S,
    PORTRAITS,
    SHORT,
    SHORT_UNBRANDED,
    UNBRANDED,
    RenderGroup,
    RenderOptions,
    RenderPlan,
    action_tracks,
    plan_renders,
)
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.media.render import RenderChunk, RenderReport, contact_sheet, encoded_spec, render
from montage_pipeline.media.span_copies import render_copying, shared_from
from montage_pipeline.media.specs import SpecReport, spec_failures
from montage_pipeline.storage.media_store import MediaStore

THUMBNAIL_SIZES = {"landscape": (1280, 720), "portrait": (1080, 1920)}
THUMBNAIL_MAX_BYTES = 2_000_000


@dataclass(frozen=True, slots=True)
class RenderedOutput:
    """One asset's render, reviewed: its bundle's files, its contact sheet and the spec check's verdict."""

    name: str
    report: RenderReport
    files: dict[str, tuple[Path, str]]  # name in the bundle -> (local path, content type)
    contact_sheet: Image.Image
    spec: SpecReport
    failures: list[str]  # empty: the check passes
    shared_decode: bool = False  # cut from another output's decode pass (the short on the main pass)


def render_week(
    spans: Sequence[EditSpan],
    scenes: Sequence[SceneSegment],
    store: MediaStore,
    selected: Sequence[str],
    title: str,
    options: RenderOptions,
    workdir: Path,
    progress: Callable[[int, int], None] | None = None,
    short: Sequence[EditSpan] = (),
    long: Sequence[EditSpan] = (),
) -> list[RenderedOutput]:
    """Render the selected outputs (names in `render_plan.OUTPUTS` and `CUT_OUTPUTS`) into `workdir` and
    review them. The short and the long cut render only when their spans are given.

    Raises `BrandingFileError` before any work when a configured branding image is missing.
    """
    plan = plan_week(spans, scenes, store, selected, title, options, workdir, short, long)
    reports = run_plan(plan, progress)
    return finish_reports(plan, reports, workdir, {n for g in plan.groups for n in g.sub_names})


def plan_week(
    spans: Sequence[EditSpan],
    scenes: Sequence[SceneSegment],
    store: MediaStore,
    selected: Sequence[str],
    title: str,
    options: RenderOptions,
    workdir: Path,
    short: Sequence[EditSpan] = (),
    long: Sequence[EditSpan] = (),
) -> RenderPlan:
    """The render plan of the selected outputs into `workdir`, with the portraits' action tracks read
    from the analysis cache. The same inputs give the same plan on any worker (the chunked render
    plans again in every step instead of passing the plan around)."""
    portraits = any(n in selected for n in PORTRAITS)
    tracks = action_tracks([*spans, *short], scenes, store) if portraits else {}
    return plan_renders(spans, tracks, selected, title, options, workdir, short, long)


def finish_reports(
    plan: RenderPlan, reports: dict[str, RenderReport], workdir: Path, riders: set[str] | None = None
) -> list[RenderedOutput]:
    """Each rendered output reviewed (the unbranded copies go into their branded output's bundle)."""
    unbranded = {"portrait_render": reports.pop(UNBRANDED, None), SHORT: reports.pop(SHORT_UNBRANDED, None)}
    return [
        dataclasses.replace(
            review_render(name, report, plan, workdir, unbranded.get(name)),
            shared_decode=name in (riders or set()),
        )
        for name, report in reports.items()
    ]


def render_group(
    plan: RenderPlan,
    group: RenderGroup,
    progress: Callable[[int, int], None] | None = None,
    chunk: RenderChunk | None = None,
) -> list[RenderReport]:
    """One group of the plan in one pass over its sources: whole (the short riding on it when the plan
    says so; its reports follow the group's), or only `chunk` of it."""
    return render(
        group.spans,
        [plan.outputs[n] for n in group.names],
        plan.settings,
        title=plan.title,
        intro_s=plan.intro_s if group.intro_s is None else group.intro_s,
        progress=progress,
        palette=plan.palette,
        sub=group.sub if chunk is None else None,
        chunk=chunk,
    )


def run_plan(plan: RenderPlan, progress: Callable[[int, int], None] | None = None) -> dict[str, RenderReport]:
    """Each group of the plan in one pass over its sources (the short riding on a main pass when the
    plan says so); the reports by output name."""
    reports: dict[str, RenderReport] = {}
    for group in plan.groups:
        source = reports.get(group.copies_from)
        if group.copies and source is not None and len(group.names) == 1 and group.sub is None:
            shared = {i: shared_from(source, j) for i, j in group.copies.items() if j in source.pieces}
            done = [
                render_copying(
                    group.spans,
                    plan.outputs[group.names[0]],
                    plan.settings,
                    shared,
                    title=plan.title,
                    intro_s=plan.intro_s if group.intro_s is None else group.intro_s,
                    palette=plan.palette,
                    progress=progress,
                )
            ]
        else:
            done = render_group(plan, group, progress)
        reports.update(zip((*group.names, *group.sub_names), done, strict=True))
    return reports


def review_render(
    name: str, report: RenderReport, plan: RenderPlan, workdir: Path, unbranded: RenderReport | None = None
) -> RenderedOutput:
    """The render's thumbnail and contact sheet (written to `workdir`) and its platform spec failures."""
    portrait = name in PORTRAITS
    thumb = workdir / f"{name}_thumbnail.jpg"
    save_thumbnail(
        report.best_frame or report.span_thumbnails[0],
        THUMBNAIL_SIZES["portrait" if portrait else "landscape"],
        thumb,
    )
    sheet = contact_sheet(report.span_thumbnails)
    sheet_path = workdir / f"{name}_contact_sheet.jpg"
    sheet.convert("RGB").save(sheet_path, format="JPEG", quality=80)
    spec = encoded_spec(report)
    total_s, intro_s = plan.times(name)
    target = total_s + plan.outro_s
    if portrait:
        target = min(target, PORTRAIT_MAX_S)
    # The title card and the end card are still pictures on purpose.
    stills = (
        (0.0, intro_s + 0.2),
        (report.duration_s - plan.outro_s - 0.2, report.duration_s + 0.1),
    )
    failures = spec_failures(
        spec,
        width=report.width,
        height=report.height,
        target_duration_s=target,
        max_duration_s=PORTRAIT_MAX_S if portrait else None,
        allowed_stills=stills,
    )
    files = {
        "video.mp4": (report.path, "video/mp4"),
        "thumbnail.jpg": (thumb, "image/jpeg"),
        "contact_sheet.jpg": (sheet_path, "image/jpeg"),
    }
    if unbranded is not None:
        files["video_unbranded.mp4"] = (unbranded.path, "video/mp4")
        failures += [f"unbranded: {f}" for f in _unbranded_failures(unbranded, report, target, intro_s)]
    return RenderedOutput(name, report, files, sheet, spec, failures)


def _unbranded_failures(
    unbranded: RenderReport, branded: RenderReport, target_s: float, intro_s: float
) -> list[str]:
    """The unbranded portrait against the branded one's size and length; it has no end card."""
    return spec_failures(
        encoded_spec(unbranded),
        width=branded.width,
        height=branded.height,
        target_duration_s=target_s,
        max_duration_s=PORTRAIT_MAX_S,
        allowed_stills=((0.0, intro_s + 0.2),),
    )


def save_thumbnail(image: Image.Image, size: tuple[int, int], path: Path) -> None:
    """A cover-cropped JPEG at the platform's thumbnail size, under 2 MB."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    left, top = (resized.width - w) // 2, (resized.height - h) // 2
    cropped = resized.crop((left, top, left + w, top + h)).convert("RGB")
    for quality in (90, 80, 70, 60):
        cropped.save(path, format="JPEG", quality=quality)
        if path.stat().st_size < THUMBNAIL_MAX_BYTES:
            return
