"""What both forms of the render share: its config, its catalogue entry (outputs and blocking checks),
the inputs every render step gathers the same way, and the reporting of each output.

The render is built in one of two forms (MONTAGE_RENDER_CHUNKS): one step rendering every selected
output (`render.py`, the default) or a graph of a plan step, one step per chunk and a join step
(`render_chunked.py`). Same keys, config, IO manager, metadata and checks, so the rest of the pipeline
cannot tell them apart.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import dagster as dg

from montage_pipeline.defs.assets.ui import image_markdown
from montage_pipeline.defs.catalog import OWNERS, stage_tags
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile
from montage_pipeline.highlights.cuts import StoredCut, load_cut
from montage_pipeline.highlights.render_plan import CUT_OUTPUTS, LONG, OUTPUTS, SHORT, RenderOptions
from montage_pipeline.highlights.renders import RenderedOutput
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.theme import load_theme
from montage_pipeline.storage.media_store import MediaStore

CHECK = "meets_platform_spec"
# The renders' code version: bump it when the same cut gives other pictures.
RENDER_VERSION = "1"
ALL_OUTPUTS = (*OUTPUTS, *CUT_OUTPUTS)
# The other cuts' spans are read from the media store (`load_cut`): a cut not made yet renders as an
# empty bundle with the reason, and a run of the main cut alone does not need those assets.
CUT_EDL_ASSETS = ("short_highlights", "long_highlights")


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


_DESCRIPTIONS = {
    **{
        name: f"The montage at {w}×{h}, H.264 without audio (the mix adds it)."
        for name, (w, h) in OUTPUTS.items()
    },
    SHORT: "The short cut (portrait, 15–60 s), H.264 without audio; cut from the main pass's decoded "
    "frames when rendered with the main cut in one step.",
    LONG: "The long YouTube cut (landscape, 3–10 min), H.264 without audio, or an empty bundle with the "
    "reason the week has none.",
}


def asset_outs() -> dict[str, dg.AssetOut]:
    """The four outputs, as both forms declare them."""
    return {
        name: dg.AssetOut(
            io_manager_key="media_io_manager",
            kinds={"pyav", "video"},
            code_version=RENDER_VERSION,
            owners=OWNERS,
            tags=stage_tags("render", "media"),
            is_required=False,
            description=_DESCRIPTIONS[name],
        )
        for name in ALL_OUTPUTS
    }


def check_specs() -> list[dg.AssetCheckSpec]:
    """The spec gate on every output: blocking, so a failed render is never mixed or published."""
    return [dg.AssetCheckSpec(CHECK, asset=name, blocking=True) for name in ALL_OUTPUTS]


@dataclass(frozen=True, slots=True)
class RenderInputs:
    """What a render step needs besides the EDL, gathered the same way on every worker."""

    title: str
    options: RenderOptions
    short: StoredCut
    long: StoredCut


def render_inputs(
    log: dg.DagsterLogManager, config: RenderConfig, store: MediaStore, week: str, spans: list[EditSpan]
) -> RenderInputs:
    short, long = (load_cut(store, week, cut, spans) for cut in ("short", "long"))
    theme = load_theme(store, week, spans)
    title = config.title or theme.title(week)
    log.info(f"title card: {title!r} (theme: {theme.name or 'none'}, {theme.source})")
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
    return RenderInputs(title, options, short, long)


def skipped(
    log: dg.DagsterLogManager, name: str, reason: str
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    """A cut the week does not have: an empty bundle with the reason; nothing to hold to the spec."""
    log.info(f"{name}: not rendered: {reason}")
    yield dg.Output(MediaBundle(skip_reason=reason), output_name=name, metadata={"skip_reason": reason})
    yield dg.AssetCheckResult(
        asset_key=name, check_name=CHECK, passed=True, metadata={"skipped": reason, "failures": "none"}
    )


def report(
    log: dg.DagsterLogManager, output: RenderedOutput, title: str, decode_pass: str
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    """The output's bundle with the metadata a person wants to see, and its spec check."""
    name, rep, spec, failures = output.name, output.report, output.spec, output.failures
    bundle = MediaBundle({n: MediaFile(path, kind) for n, (path, kind) in output.files.items()})
    log.info(
        f"{name}: {rep.duration_s:.1f}s, {rep.frames} frames, {rep.speed_x_realtime:.2f}x realtime, "
        f"{rep.size_bytes / 1e6:.1f} MB"
    )
    yield dg.Output(
        bundle,
        output_name=name,
        metadata={
            "duration_s": round(rep.duration_s, 3),
            "frames": rep.frames,
            "fps": rep.fps,
            "size": f"{rep.width}x{rep.height}",
            "render_seconds": round(rep.seconds, 2),
            "render_speed_x": round(rep.speed_x_realtime, 3),
            "file_size_mb": round(rep.size_bytes / 1e6, 2),
            "bitrate_kbps": round(rep.bitrate_kbps),
            "contact_sheet": dg.MetadataValue.md(image_markdown(output.contact_sheet, "contact sheet")),
            "spec_failures": "; ".join(failures) or "none",
            "title": title,
            "decode_pass": decode_pass,
            "copied_spans": rep.copied_spans,  # the long cut's moments copied from the main landscape
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


def report_week(
    log: dg.DagsterLogManager,
    rendered: list[RenderedOutput],
    inputs: RenderInputs,
    selected: list[str],
    decode_pass: dict[str, str],
) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
    """Every selected output's report, the cuts the week has not got as skipped ones."""
    for output in rendered:
        yield from report(log, output, inputs.title, decode_pass.get(output.name, "own"))
    done = {o.name for o in rendered}
    for name, cut in ((SHORT, inputs.short), (LONG, inputs.long)):
        if name in selected and name not in done:
            yield from skipped(log, name, cut.skip_reason or "not rendered")
