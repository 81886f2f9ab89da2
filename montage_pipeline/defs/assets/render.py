"""`landscape_render` and `portrait_render`: the EDL rendered to platform spec, from one decode pass."""

import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Literal

import dagster as dg
from PIL import Image

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.render_plan import PORTRAIT_MAX_S, action_tracks, output_fps, render_spans
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.media.overlay import montage_title
from montage_pipeline.media.render import EncodeSettings, OutputSpec, RenderReport, contact_sheet, render
from montage_pipeline.media.specs import inspect_video, spec_failures

OUTPUTS = {"landscape_render": (1920, 1080), "portrait_render": (1080, 1920)}
CHECK = "meets_platform_spec"
UNBRANDED = "portrait_unbranded"
# The renders' code version: bump it when the same cut gives other pictures.
RENDER_VERSION = "1"


class RenderConfig(dg.Config):
    fps: int = 0  # 0: 60 when most sources are 60 fps, else 30
    crf: int = 21
    preset: str = "veryfast"
    portrait_layout: Literal["follow", "blur_fill", "center"] = "follow"
    title: str | None = None  # default: "Weekly Highlights - <Month> <day>, <year>"
    width_scale: float = 1.0  # render smaller (e.g. 0.5) for previews and tests; 1.0 is the platform size
    # A PNG logo (with alpha) shown on the branded renders; the portrait bundle then also carries
    # `video_unbranded.mp4`, which is what TikTok receives (it forbids added branding).
    branding_logo: str | None = None
    intro_image: str | None = None  # branded title card background
    outro_image: str | None = None  # branded end card, shown for outro_s seconds
    outro_s: float = 2.0


def _save_thumbnail(image: Image.Image, size: tuple[int, int], path: Path) -> None:
    """A cover-cropped JPEG at the platform's thumbnail size, under 2 MB."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    resized = image.resize((round(image.width * scale), round(image.height * scale)))
    left, top = (resized.width - w) // 2, (resized.height - h) // 2
    cropped = resized.crop((left, top, left + w, top + h)).convert("RGB")
    for quality in (90, 80, 70, 60):
        cropped.save(path, format="JPEG", quality=quality)
        if path.stat().st_size < 2_000_000:
            return


@dg.multi_asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    can_subset=True,
    pool="render",
    outs={
        name: dg.AssetOut(
            io_manager_key="media_io_manager",
            kinds={"pyav", "video"},
            code_version=RENDER_VERSION,
            owners=OWNERS,
            tags=stage_tags("render", "media"),
            is_required=False,
            description=f"The montage at {w}×{h}, H.264 without audio (the mix adds it).",
        )
        for name, (w, h) in OUTPUTS.items()
    },
    check_specs=[dg.AssetCheckSpec(CHECK, asset=name, blocking=True) for name in OUTPUTS],
)
def montage_renders(
    context: dg.AssetExecutionContext,
    config: RenderConfig,
    scored_highlights: list[EditSpan],
    scene_segments: list[SceneSegment],
    media_store: MediaStoreResource,
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    week = context.partition_key
    selected = [n for n in OUTPUTS if n in context.op_execution_context.selected_output_names]
    fps = output_fps(scored_highlights, config.fps)
    title = config.title or montage_title(date.fromisoformat(week))
    intro_s = scored_highlights[0].intro_s
    total_s = max(s.montage_out_s for s in scored_highlights)
    tracks = (
        action_tracks(scored_highlights, scene_segments, media_store.store())
        if "portrait_render" in selected
        else {}
    )
    workdir = Path(tempfile.mkdtemp(prefix="montage-render-"))
    try:
        branding = {
            key: Path(value)
            for key, value in (
                ("logo", config.branding_logo),
                ("intro_image", config.intro_image),
                ("outro_image", config.outro_image),
            )
            if value
        }
        for key, path in branding.items():
            if not path.is_file():
                raise dg.Failure(f"{key} {path} is not a file", allow_retries=False)
        outro_s = config.outro_s if "outro_image" in branding else 0.0
        specs: dict[str, OutputSpec] = {}
        for name in selected:
            w, h = OUTPUTS[name]
            w, h = (round(w * config.width_scale / 2) * 2, round(h * config.width_scale / 2) * 2)
            layout = config.portrait_layout if name == "portrait_render" else "fit"
            specs[name] = OutputSpec(
                workdir / f"{name}.mp4",
                w,
                h,
                layout=layout,
                logo=branding.get("logo"),
                intro_image=branding.get("intro_image"),
                outro_image=branding.get("outro_image"),
                outro_s=outro_s,
            )
            if name == "portrait_render" and branding:
                specs[UNBRANDED] = OutputSpec(workdir / f"{name}_unbranded.mp4", w, h, layout=layout)
        settings = EncodeSettings(fps=fps, crf=config.crf, preset=config.preset)

        def progress(done: int, total: int) -> None:
            context.log.info(f"rendered span {done}/{total}")

        landscape_spans = render_spans(scored_highlights, tracks)
        portrait_spans = render_spans(scored_highlights, tracks, max_duration_s=PORTRAIT_MAX_S - outro_s)
        groups: dict[str, list[str]] = {}  # outputs that share a span list render in one decode pass
        for name in specs:
            groups.setdefault("landscape" if name == "landscape_render" else "portrait", []).append(name)
        if portrait_spans == landscape_spans and len(groups) == 2:
            groups = {"all": [n for names in groups.values() for n in names]}
        reports: dict[str, RenderReport] = {}
        for key, names in groups.items():
            spans = portrait_spans if key == "portrait" else landscape_spans
            done = render(
                spans, [specs[n] for n in names], settings, title=title, intro_s=intro_s, progress=progress
            )
            reports.update(zip(names, done, strict=True))
        unbranded = reports.pop(UNBRANDED, None)
        for name, report in reports.items():
            extra = unbranded if name == "portrait_render" else None
            yield from _report(context, name, report, workdir, total_s, intro_s, outro_s, extra)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _report(
    context: dg.AssetExecutionContext,
    name: str,
    report: RenderReport,
    workdir: Path,
    total_s: float,
    intro_s: float,
    outro_s: float,
    unbranded: RenderReport | None = None,
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    portrait = name == "portrait_render"
    thumb = workdir / f"{name}_thumbnail.jpg"
    _save_thumbnail(
        report.best_frame or report.span_thumbnails[0], (1080, 1920) if portrait else (1280, 720), thumb
    )
    sheet = contact_sheet(report.span_thumbnails)
    sheet_path = workdir / f"{name}_contact_sheet.jpg"
    sheet.convert("RGB").save(sheet_path, format="JPEG", quality=80)
    spec = inspect_video(report.path)
    target = min(total_s + outro_s, PORTRAIT_MAX_S) if portrait else total_s + outro_s
    # The title card and the end card are still pictures on purpose.
    stills = ((0.0, intro_s + 0.2), (report.duration_s - outro_s - 0.2, report.duration_s + 0.1))
    failures = spec_failures(
        spec,
        width=report.width,
        height=report.height,
        target_duration_s=target,
        max_duration_s=PORTRAIT_MAX_S if portrait else None,
        allowed_stills=stills,
    )
    files = {
        "video.mp4": MediaFile(report.path, "video/mp4"),
        "thumbnail.jpg": MediaFile(thumb, "image/jpeg"),
        "contact_sheet.jpg": MediaFile(sheet_path, "image/jpeg"),
    }
    if unbranded is not None:
        files["video_unbranded.mp4"] = MediaFile(unbranded.path, "video/mp4")
        failures += [
            f"unbranded: {f}"
            for f in spec_failures(
                inspect_video(unbranded.path),
                width=report.width,
                height=report.height,
                target_duration_s=target,
                max_duration_s=PORTRAIT_MAX_S,
                allowed_stills=((0.0, intro_s + 0.2),),
            )
        ]
    bundle = MediaBundle(files)
    context.log.info(
        f"{name}: {report.duration_s:.1f}s, {report.frames} frames, {report.speed_x_realtime:.2f}x realtime, "
        f"{report.size_bytes / 1e6:.1f} MB"
    )
    yield dg.Output(
        bundle,
        output_name=name,
        metadata={
            "duration_s": round(report.duration_s, 3),
            "frames": report.frames,
            "fps": report.fps,
            "size": f"{report.width}x{report.height}",
            "render_seconds": round(report.seconds, 2),
            "render_speed_x": round(report.speed_x_realtime, 3),
            "file_size_mb": round(report.size_bytes / 1e6, 2),
            "bitrate_kbps": round(report.bitrate_kbps),
            "contact_sheet": dg.MetadataValue.md(image_markdown(sheet, "contact sheet")),
            "spec_failures": "; ".join(failures) or "none",
        },
    )
    yield dg.AssetCheckResult(
        asset_key=name,
        check_name=CHECK,
        passed=not failures,
        metadata={
            "failures": "; ".join(failures) or "none",
            "gop_frames": spec.gop_frames,
            "closed_gop": spec.closed_gop,
            "faststart": spec.moov_before_mdat,
            "profile": spec.profile,
        },
    )
