"""From EDL rows to a render plan: the outputs and their sizes, the render spans (action tracks for the
portrait crop, the Shorts limit) and which outputs share one decode pass."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from montage_pipeline.highlights.analysis_cache import load_key
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.media.overlay import DEFAULT_PALETTE, Palette
from montage_pipeline.media.reframe import ActionTrack
from montage_pipeline.media.render import EncodeSettings, OutputSpec, RenderSpan, SubCut
from montage_pipeline.media.span_copies import shared_spans
from montage_pipeline.storage.media_store import MediaStore

PORTRAIT_MAX_S = 180.0  # YouTube Shorts' limit, also fine for Reels and TikTok


def output_fps(spans: Sequence[EditSpan], configured: int) -> int:
    """The configured rate, else 60 when most of the montage's sources are 60 fps, else 30."""
    if configured:
        return configured
    votes = Counter(60 if s.source_fps > 45 else 30 for s in spans)
    return 60 if votes[60] > votes[30] else 30


def action_tracks(
    spans: Sequence[EditSpan], scenes: Sequence[SceneSegment], store: MediaStore
) -> dict[str, ActionTrack]:
    keys = {s.clip_id: s.analysis_key for s in scenes}
    tracks: dict[str, ActionTrack] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip_id in {s.clip_id for s in spans}:
            if clip_id in keys and (analysis := load_key(store, keys[clip_id], Path(tmp))) is not None:
                t = analysis.tracks
                tracks[clip_id] = ActionTrack(t.frame_times_s, t.action_x, t.action_spread)
    return tracks


def render_spans(
    spans: Sequence[EditSpan], tracks: dict[str, ActionTrack], max_duration_s: float | None = None
) -> list[RenderSpan]:
    """Render spans in montage order; with `max_duration_s`, the montage is cut there (on a beat)."""
    out: list[RenderSpan] = []
    for s in sorted(spans, key=lambda s: s.order):
        out_m, out_src = s.montage_out_s, s.source_out_s
        if max_duration_s is not None and out_m > max_duration_s:
            keep_beats = int((max_duration_s - s.montage_in_s) / s.beat_s)
            if keep_beats < 4:  # under a bar left: stop before this span
                break
            out_m = s.montage_in_s + keep_beats * s.beat_s
            out_src = s.source_in_s + keep_beats * s.beat_s
        out.append(
            RenderSpan(
                source_path=Path(s.source_path),
                source_in_s=s.source_in_s,
                source_out_s=out_src,
                montage_in_s=s.montage_in_s,
                montage_out_s=out_m,
                credit=s.credit,
                rotation=s.source_rotation,
                peak_montage_s=s.peak_montage_s if s.peak_montage_s < out_m else None,
                score=s.score,
                action=tracks.get(s.clip_id),
                transition_in=s.transition_in,
                transition_s=s.transition_s,
            )
        )
        if out_m < s.montage_out_s:
            break
    return out


LANDSCAPE = "landscape_render"
OUTPUTS = {LANDSCAPE: (1920, 1080), "portrait_render": (1080, 1920)}
UNBRANDED = "portrait_unbranded"  # the portrait without branding, rendered beside a branded one
# The other cuts' renders (highlights/cuts.py): the short in portrait, the long YouTube cut in landscape.
SHORT = "short_portrait_render"
LONG = "long_landscape_render"
CUT_OUTPUTS = {SHORT: (1080, 1920), LONG: (1920, 1080)}
SHORT_UNBRANDED = "short_portrait_unbranded"
PORTRAITS = ("portrait_render", SHORT)


class BrandingFileError(ValueError):
    """A configured branding image is not a file."""


@dataclass(frozen=True, slots=True)
class RenderOptions:
    fps: int = 0  # 0: 60 when most sources are 60 fps, else 30
    crf: int = 21
    preset: str = "veryfast"
    portrait_layout: str = "follow"  # "follow", "blur_fill" or "center"
    width_scale: float = 1.0  # render smaller (e.g. 0.5) for previews and tests
    branding_logo: str | None = None  # shown on the branded renders; adds an unbranded portrait
    intro_image: str | None = None  # branded title card background
    outro_image: str | None = None  # branded end card, shown for outro_s seconds
    outro_s: float = 2.0
    palette: Palette = DEFAULT_PALETTE  # the title card's colours (the week's theme)


@dataclass(frozen=True, slots=True)
class RenderGroup:
    """Outputs that share a span list: one decode pass feeds all their encoders (and, with `sub`, the
    short's encoders from the same decoded frames)."""

    names: tuple[str, ...]
    spans: list[RenderSpan]
    intro_s: float | None = None  # None: the plan's (the main cut's)
    sub: SubCut | None = None
    sub_names: tuple[str, ...] = ()
    # Spans (index -> index in the `copies_from` output's spans) copied from that output's file, rendered
    # in an earlier group, instead of encoded again (`media.span_copies`; whole renders only).
    copies: dict[int, int] = field(default_factory=dict)
    copies_from: str = ""


@dataclass(frozen=True, slots=True)
class RenderPlan:
    outputs: dict[str, OutputSpec]  # by output name (an asset, or UNBRANDED)
    groups: list[RenderGroup]
    settings: EncodeSettings
    title: str
    intro_s: float
    outro_s: float  # 0 without an end card
    total_s: float  # the edit's length, before the end card
    palette: Palette = DEFAULT_PALETTE  # the title card's colours
    # The other cuts' own (edit length, title card length), by output name; the rest are the main cut's.
    cut_times: dict[str, tuple[float, float]] = field(default_factory=dict)

    def times(self, name: str) -> tuple[float, float]:
        """The output's edit length (before the end card) and title card length."""
        return self.cut_times.get(name, (self.total_s, self.intro_s))


def end_card_s(options: RenderOptions) -> float:
    """The end card's seconds on the branded renders: `outro_s` with an outro image, else none."""
    return options.outro_s if options.outro_image else 0.0


def renders_unbranded(options: RenderOptions) -> bool:
    """Whether each branded portrait gets an unbranded copy beside it (what TikTok receives): when any
    branding is set. The copy has no end card."""
    return bool(options.branding_logo or options.intro_image or options.outro_image)


def branding_files(options: RenderOptions) -> dict[str, Path]:
    """The configured branding images by role; `BrandingFileError` if one is not a file."""
    branding = {
        key: Path(value)
        for key, value in (
            ("logo", options.branding_logo),
            ("intro_image", options.intro_image),
            ("outro_image", options.outro_image),
        )
        if value
    }
    for key, path in branding.items():
        if not path.is_file():
            raise BrandingFileError(f"{key} {path} is not a file")
    return branding


def output_specs(
    selected: Sequence[str], options: RenderOptions, branding: dict[str, Path], outro_s: float, workdir: Path
) -> dict[str, OutputSpec]:
    """Each selected output at its platform size (times `width_scale`, kept even), and the unbranded
    portrait when the portrait is branded."""
    specs: dict[str, OutputSpec] = {}
    for name in selected:
        w, h = {**OUTPUTS, **CUT_OUTPUTS}[name]
        w, h = (round(w * options.width_scale / 2) * 2, round(h * options.width_scale / 2) * 2)
        layout = options.portrait_layout if name in PORTRAITS else "fit"
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
        if name in PORTRAITS and renders_unbranded(options):
            unbranded = UNBRANDED if name == "portrait_render" else SHORT_UNBRANDED
            specs[unbranded] = OutputSpec(workdir / f"{name}_unbranded.mp4", w, h, layout=layout)
    return specs


def render_groups(
    names: Sequence[str], landscape: list[RenderSpan], portrait: list[RenderSpan]
) -> list[RenderGroup]:
    """The landscape and the portrait outputs in a group each, or all in one when their spans match
    (the portrait is only cut shorter past the Shorts limit)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        if name in (*CUT_OUTPUTS, SHORT_UNBRANDED):
            continue
        groups.setdefault("landscape" if name == "landscape_render" else "portrait", []).append(name)
    if portrait == landscape and len(groups) == 2:
        groups = {"all": [n for group in groups.values() for n in group]}
    return [
        RenderGroup(tuple(group), portrait if key == "portrait" else landscape)
        for key, group in groups.items()
    ]


def short_parents(short: Sequence[RenderSpan], main: Sequence[RenderSpan]) -> list[int] | None:
    """For each short span the main span it lies in (same source, contained range), or None when the
    short cannot ride on a pass over `main` (a span outside it, or an order the main pass cannot meet)."""
    parents: list[int] = []
    for s in short:
        found = [
            i
            for i, m in enumerate(main)
            if m.source_path == s.source_path
            and m.source_in_s - 1e-3 <= s.source_in_s
            and s.source_out_s <= m.source_out_s + 1e-3
        ]
        if not found or (parents and found[0] <= parents[-1]):
            return None
        parents.append(found[0])
    return parents


def plan_renders(
    spans: Sequence[EditSpan],
    tracks: dict[str, ActionTrack],
    selected: Sequence[str],
    title: str,
    options: RenderOptions,
    workdir: Path,
    short: Sequence[EditSpan] = (),
    long: Sequence[EditSpan] = (),
) -> RenderPlan:
    """What to render for the selected outputs (names in OUTPUTS and CUT_OUTPUTS) into `workdir`, and in
    which passes. The short rides on a main pass (one decode) when one is selected and it fits inside;
    the long cut, which has spans of its own, gets a pass of its own that copies the spans the main
    landscape render makes frame for frame (that render keeps them as closed-GOP pieces)."""
    branding = branding_files(options)
    outro_s = end_card_s(options)
    selected = [n for n in selected if (n != SHORT or short) and (n != LONG or long)]
    specs = output_specs(selected, options, branding, outro_s, workdir)
    landscape = render_spans(spans, tracks)
    portrait = render_spans(spans, tracks, max_duration_s=PORTRAIT_MAX_S - outro_s)
    groups = render_groups(list(specs), landscape, portrait)
    cut_times: dict[str, tuple[float, float]] = {}
    if SHORT in specs:
        short_names = tuple(n for n in (SHORT, SHORT_UNBRANDED) if n in specs)
        short_spans = render_spans(short, tracks)
        cut_times[SHORT] = (max(s.montage_out_s for s in short), short[0].intro_s)
        host = next((g for g in groups if short_parents(short_spans, g.spans) is not None), None)
        if host is not None:
            parents = short_parents(short_spans, host.spans) or []
            sub = SubCut([specs[n] for n in short_names], short_spans, parents, title, short[0].intro_s)
            groups[groups.index(host)] = dataclasses.replace(host, sub=sub, sub_names=short_names)
        else:
            groups.append(RenderGroup(short_names, short_spans, intro_s=short[0].intro_s))
    fps = output_fps(spans, options.fps)
    if LONG in specs:
        cut_times[LONG] = (max(s.montage_out_s for s in long), long[0].intro_s)
        long_spans = render_spans(long, tracks)
        copies = _copies_from_main(specs, long_spans, long[0].intro_s, landscape, spans[0].intro_s, fps)
        if copies:
            main = specs[LANDSCAPE]
            specs[LANDSCAPE] = dataclasses.replace(main, pieces=tuple(sorted(set(copies.values()))))
        group = RenderGroup((LONG,), long_spans, long[0].intro_s, copies=copies, copies_from=LANDSCAPE)
        groups.append(group)
    return RenderPlan(
        outputs=specs,
        groups=groups,
        settings=EncodeSettings(fps=fps, crf=options.crf, preset=options.preset),
        title=title,
        intro_s=spans[0].intro_s,
        outro_s=outro_s,
        total_s=max(s.montage_out_s for s in spans),
        palette=options.palette,
        cut_times=cut_times,
    )


def _copies_from_main(
    specs: dict[str, OutputSpec],
    long: Sequence[RenderSpan],
    long_intro_s: float,
    landscape: Sequence[RenderSpan],
    intro_s: float,
    fps: int,
) -> dict[int, int]:
    """The long cut's spans the main landscape render makes frame for frame, when both are rendered
    and their outputs differ only by file (same size, layout, credits and branding)."""
    if LANDSCAPE not in specs or LONG not in specs:
        return {}
    anywhere = Path()
    long_spec, main_spec = (dataclasses.replace(specs[n], path=anywhere) for n in (LONG, LANDSCAPE))
    if long_spec != main_spec:
        return {}
    return shared_spans(long, long_intro_s, landscape, intro_s, fps)


def planned_lengths(
    spans: Sequence[EditSpan],
    options: RenderOptions,
    short: Sequence[EditSpan] = (),
    long: Sequence[EditSpan] = (),
) -> dict[str, list[float]]:
    """Each cut's render lengths in seconds, from its EDL alone (the full-length render first): what the
    renders of `plan_renders` with these options will measure, so that their soundtracks can be made
    while they render. A render's frames run to the last span's out-point (then the end card), at the
    main cut's rate."""
    fps = output_fps(spans, options.fps)
    outro_s = end_card_s(options)
    outro_frames = round(outro_s * fps)

    def length(cut: Sequence[RenderSpan] | Sequence[EditSpan], end_card: bool = True) -> float:
        frames = math.ceil(max(s.montage_out_s for s in cut) * fps - 1e-9)
        return (frames + (outro_frames if end_card else 0)) / fps

    portrait = render_spans(spans, {}, max_duration_s=PORTRAIT_MAX_S - outro_s)
    unbranded = renders_unbranded(options)
    lengths = {"main": [length(spans), length(portrait)]}
    if unbranded:
        lengths["main"].append(length(portrait, end_card=False))
    if short:
        lengths["short"] = [length(short)] + ([length(short, end_card=False)] if unbranded else [])
    if long:
        lengths["long"] = [length(long)]
    return lengths
