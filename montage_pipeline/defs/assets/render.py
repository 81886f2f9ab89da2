"""`landscape_render` and `portrait_render` (the main cut), `short_portrait_render` and
`long_landscape_render` (the other cuts): each EDL rendered to platform spec. The short rides on the main
cut's decode pass when they are materialized together (its spans lie inside the main cut's); the long
cut has a pass of its own. A cut without spans (the long cut of a thin week) is an empty bundle with
its reason, so the steps after it run for the other cuts."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import dagster as dg

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.render_plan import (
    CUT_OUTPUTS,
    LONG,
    OUTPUTS,
    SHORT,
    BrandingFileError,
    RenderOptions,
)
from montage_pipeline.highlights.renders import RenderedOutput, render_week
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.highlights.theme import load_theme

CHECK = "meets_platform_spec"
# The renders' code version: bump it when the same cut gives other pictures.
RENDER_VERSION = "1"


class RenderConfig(dg.Config):
    fps: int = 0  # 0: 60 when most sources are 60 fps, else 30
    crf: int = 21
    preset: str = "veryfast"
    portrait_layout: Literal["follow", "blur_fill", "center"] = "follow"
    title: str | None = (
        None  # default: the theme's, "Weekly Highlights — <Theme> week · <Month> <day>, <year>"
    )
    width_scale: float = 1.0  # render smaller (e.g. 0.5) for previews and tests; 1.0 is the platform size
    # A PNG logo (with alpha) shown on the branded renders; the portrait bundle then also carries
    # `video_unbranded.mp4`, which is what TikTok receives (it forbids added branding).
    branding_logo: str | None = None
    intro_image: str | None = None  # branded title card background
    outro_image: str | None = None  # branded end card, shown for outro_s seconds
    outro_s: float = 2.0


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
    }
    | {
        SHORT: dg.AssetOut(
            io_manager_key="media_io_manager",
            kinds={"pyav", "video"},
            code_version=RENDER_VERSION,
            owners=OWNERS,
            tags=stage_tags("render", "media"),
            is_required=False,
            description="The short cut (portrait, 15–60 s), H.264 without audio; cut from the main pass's "
            "decoded frames when rendered with the main cut.",
        ),
        LONG: dg.AssetOut(
            io_manager_key="media_io_manager",
            kinds={"pyav", "video"},
            code_version=RENDER_VERSION,
            owners=OWNERS,
            tags=stage_tags("render", "media"),
            is_required=False,
            description="The long YouTube cut (landscape, 3–10 min), H.264 without audio, or an empty "
            "bundle with the reason the week has none.",
        ),
    },
    # The other cuts' spans are read from the media store (`load_cut`): a cut not made yet renders as
    # an empty bundle with the reason, and a run of the main cut alone does not need those assets.
    deps=["short_highlights", "long_highlights"],
    check_specs=[dg.AssetCheckSpec(CHECK, asset=name, blocking=True) for name in (*OUTPUTS, *CUT_OUTPUTS)],
)
def montage_renders(
    context: dg.AssetExecutionContext,
    config: RenderConfig,
    scored_highlights: list[EditSpan],
    scene_segments: list[SceneSegment],
    media_store: MediaStoreResource,
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    chosen = context.op_execution_context.selected_output_names
    selected = [n for n in (*OUTPUTS, *CUT_OUTPUTS) if n in chosen]
    store = media_store.store()
    week = context.partition_key
    short, long = (load_cut(store, week, cut, scored_highlights) for cut in ("short", "long"))
    theme = load_theme(store, context.partition_key, scored_highlights)
    title = config.title or theme.title(context.partition_key)
    context.log.info(f"title card: {title!r} (theme: {theme.name or 'none'}, {theme.source})")
    options = RenderOptions(
        fps=config.fps,
        crf=config.crf,
        preset=config.preset,
        portrait_layout=config.portrait_layout,
        width_scale=config.width_scale,
        branding_logo=config.branding_logo,
        intro_image=config.intro_image,
        outro_image=config.outro_image,
        outro_s=config.outro_s,
        palette=theme.palette,
    )

    def progress(done: int, total: int) -> None:
        context.log.info(f"rendered span {done}/{total}")

    workdir = Path(tempfile.mkdtemp(prefix="montage-render-"))
    try:
        try:
            rendered = render_week(
                scored_highlights,
                scene_segments,
                store,
                selected,
                title,
                options,
                workdir,
                progress,
                short=short.spans if SHORT in selected else (),
                long=long.spans if LONG in selected else (),
            )
        except BrandingFileError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from None
        for output in rendered:
            yield from _report(context, output, title)
        done = {o.name for o in rendered}
        for name, cut in ((SHORT, short), (LONG, long)):
            if name in selected and name not in done:
                yield from _skipped(context, name, cut.skip_reason or "not rendered")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _skipped(
    context: dg.AssetExecutionContext, name: str, reason: str
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    """A cut the week does not have: an empty bundle with the reason; nothing to hold to the spec."""
    context.log.info(f"{name}: not rendered: {reason}")
    yield dg.Output(MediaBundle(skip_reason=reason), output_name=name, metadata={"skip_reason": reason})
    yield dg.AssetCheckResult(
        asset_key=name, check_name=CHECK, passed=True, metadata={"skipped": reason, "failures": "none"}
    )


def _report(
    context: dg.AssetExecutionContext, output: RenderedOutput, title: str
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    name, report, spec, failures = output.name, output.report, output.spec, output.failures
    bundle = MediaBundle({n: MediaFile(path, kind) for n, (path, kind) in output.files.items()})
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
            "contact_sheet": dg.MetadataValue.md(image_markdown(output.contact_sheet, "contact sheet")),
            "spec_failures": "; ".join(failures) or "none",
            "title": title,
            "decode_pass": "shared with the main cut" if output.shared_decode else "own",
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
