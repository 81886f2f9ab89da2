"""The week's cut as a complete OpenTimelineIO timeline, and its exports through OTIO's own adapters.

What an editor finishing the cut by hand needs, laid out as the render and the mix made it:
- V1: a gap for the title card, one clip per span (with a SMPTE dissolve `Transition` where the span
  dissolves in: the outgoing clip plays on past its out-point, as the renderer does it), a gap for the
  end card;
- A1: the same clips' game audio (a gap where a clip has none), with the same transitions (crossfades);
- A2: the music, the soundtrack file over the whole cut;
- markers at each span's peak (on the clip) and at the title and end cards (on the stack), metadata
  saying what each span is (creator, game, score), media references with their available ranges and
  rates.

Where the media is comes from the caller as `SourceMedia` per span (the server's files for the internal
timeline, the editor package's relative paths for the public one); a span without one gets a
`MissingReference` named after the clip, which an editor relinks by hand.

Formats (`write_exports`): `.otio` carries everything; FCP 7 XML (`.xml`, what Premiere imports) the
three tracks, transitions and markers; FCPXML (`.fcpxml`, Final Cut Pro X and Resolve) the three tracks
and the clips but no transitions (otio-fcpx-xml-adapter 1.0.0 writes none); CMX 3600 (`.edl`) only V1
(the format has one picture track and 8-character reel names), with the dissolves and the clip and file
names as comments, its timecodes at the cut's rate (the format does not state it).

Clip in/out points are in the cut's frames (30 fps); each reference's available range is in its media's
own rate. With sources at another rate than the cut's, otio-fcpx-xml-adapter 1.0.0 reads its own
FCPXML's picture track back empty (the file holds it); the other formats read back whole.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import opentimelineio as otio

from montage_pipeline.highlights.rows import EditSpan

# Adapter name for each exported file; what each carries is in the module's docstring.
EXPORT_FORMATS = {
    "montage.otio": "otio_json",
    "montage.xml": "fcp_xml",
    "montage.fcpxml": "fcpx_xml",
    "montage.edl": "cmx_3600",
}
EXPORT_TYPES = {
    "montage.otio": "application/json",
    "montage.xml": "application/xml",
    "montage.fcpxml": "application/xml",
    "montage.edl": "text/plain",
}
VIDEO, GAME_AUDIO, MUSIC = "V1", "A1", "A2"


@dataclass(frozen=True, slots=True)
class SourceMedia:
    """A media file the timeline references: where, and which stretch of the original clip it holds."""

    url: str  # a file URI, or a path relative to the timeline file
    start_s: float  # the original clip's time at the file's time 0 (a trimmed copy starts later)
    duration_s: float | None  # the file's length (None: not known here, no available range)
    rate: float  # its frame rate (audio files: the timeline's)


def clip_name(span: EditSpan) -> str:
    return f"{span.order:02d} {span.credit}"


def reel_name(span: EditSpan) -> str:
    """CMX 3600's reel: at most 8 characters of letters and digits, one per span."""
    return f"CLIP{span.order:03d}"


def file_stem(span: EditSpan) -> str:
    """A portable file name for the span's media: the order, the creator and the game."""
    slug = re.sub(r"[^a-z0-9]+", "_", f"{span.user_handle} {span.game}".lower()).strip("_")
    return f"{span.order:02d}_{slug or 'clip'}"


class _Frames:
    """Seconds to frames at the timeline's rate; every position is rounded once, so clips abut."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, seconds: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(round(seconds * self.rate), self.rate)

    def span(self, start_s: float, end_s: float) -> otio.opentime.TimeRange:
        start = self(start_s)
        return otio.opentime.TimeRange(start, self(end_s) - start)


def _reference(span: EditSpan, media: SourceMedia | None, kind: str) -> otio.core.MediaReference:
    if media is None:  # the editor relinks to their own copy of the clip; the name says which one
        return otio.schema.MissingReference(name=clip_name(span))
    if media.duration_s is None:
        return otio.schema.ExternalReference(target_url=media.url)
    available = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, media.rate),
        otio.opentime.RationalTime(round(media.duration_s * media.rate), media.rate),
    )
    return otio.schema.ExternalReference(target_url=media.url, available_range=available)


def _about(span: EditSpan, public: bool) -> dict[str, Any]:
    about: dict[str, Any] = {
        "order": span.order,
        "creator": span.user_handle,
        "game": span.game,
        "score": span.score,
        "credit": span.credit,
        "score_breakdown": dict(span.score_breakdown),
        "montage_in_s": span.montage_in_s,
        "montage_out_s": span.montage_out_s,
    }
    if not public:
        about["clip_id"] = span.clip_id
    return about


def _clip(
    span: EditSpan, media: SourceMedia | None, frames: _Frames, public: bool, kind: str
) -> otio.schema.Clip:
    offset = media.start_s if media else 0.0
    start = frames(span.source_in_s - offset)
    length = frames(span.montage_out_s) - frames(span.montage_in_s)  # the place it fills in the cut
    clip = otio.schema.Clip(
        name=clip_name(span),
        media_reference=_reference(span, media, kind),
        source_range=otio.opentime.TimeRange(start, length),
        metadata={"montage": _about(span, public), "cmx_3600": {"reel": reel_name(span)}},
    )
    if kind == "video":
        clip.markers.append(
            otio.schema.Marker(
                name=f"peak {span.credit}",
                marked_range=otio.opentime.TimeRange(frames(span.peak_source_s - offset), frames(0)),
                color=otio.schema.MarkerColor.RED,
                metadata={"montage": {"peak_montage_s": span.peak_montage_s}},
            )
        )
    return clip


def _dissolve(span: EditSpan, frames: _Frames) -> otio.schema.Transition | None:
    """The renderer's dissolve: at the cut, the outgoing clip plays on under the incoming one."""
    if span.transition_in != "dissolve" or span.transition_s <= 0:
        return None
    return otio.schema.Transition(
        name=f"dissolve into {span.order:02d}",
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=frames(0),
        out_offset=frames(span.transition_s),
    )


def _lay_out(
    track: otio.schema.Track,
    spans: Sequence[EditSpan],
    sources: Mapping[int, SourceMedia],
    frames: _Frames,
    public: bool,
    kind: str,
) -> None:
    """Clips at their montage positions (gaps where nothing plays), dissolves between them."""
    at = frames(0)
    for i, span in enumerate(spans):
        start = frames(span.montage_in_s)
        if start > at:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(frames(0), start - at)))
        if kind == "audio" and not span.source_has_audio:
            item: otio.core.Item = otio.schema.Gap(
                source_range=frames.span(span.montage_in_s, span.montage_out_s)
            )
        else:
            item = _clip(span, sources.get(span.order), frames, public, kind)
        dissolve = _dissolve(span, frames) if i > 0 else None
        # A dissolve joins two clips (on A1 a crossfade, only where both have sound).
        if (
            dissolve is not None
            and isinstance(item, otio.schema.Clip)
            and isinstance(track[-1], otio.schema.Clip)
        ):
            track.append(dissolve)
        track.append(item)
        at = frames(span.montage_out_s)


def editor_timeline(
    week: str,
    spans: Sequence[EditSpan],
    *,
    sources: Mapping[int, SourceMedia] | None = None,
    music: SourceMedia | None = None,
    duration_s: float | None = None,
    rate: float = 30.0,
    public: bool = False,
) -> otio.schema.Timeline:
    """The complete timeline of the week's cut.

    `sources` maps each span's `order` to its media (absent: a `MissingReference`); `music` is the
    soundtrack (absent: no music track); `duration_s` is the cut's full length, so the end card after
    the last span gets its gap and marker.
    """
    frames = _Frames(rate)
    ordered = sorted(spans, key=lambda s: s.order)
    timeline = otio.schema.Timeline(name=f"Weekly Highlights {week}")
    timeline.metadata["montage"] = {"week": week, "tempo_bpm": ordered[0].tempo_bpm if ordered else None}
    video = otio.schema.Track(name=VIDEO, kind=otio.schema.TrackKind.Video)
    audio = otio.schema.Track(name=GAME_AUDIO, kind=otio.schema.TrackKind.Audio)
    _lay_out(video, ordered, sources or {}, frames, public, "video")
    _lay_out(audio, ordered, sources or {}, frames, public, "audio")
    timeline.tracks.extend([video, audio])
    end = frames(ordered[-1].montage_out_s) if ordered else frames(0)
    full = max(end, frames(duration_s)) if duration_s is not None else end
    if full > end:
        video.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(frames(0), full - end)))
    if music is not None:
        timeline.tracks.append(_music_track(music, frames, full))
    _card_markers(timeline, ordered, frames, end, full)
    return timeline


def _music_track(music: SourceMedia, frames: _Frames, full: otio.opentime.RationalTime) -> otio.schema.Track:
    track = otio.schema.Track(name=MUSIC, kind=otio.schema.TrackKind.Audio)
    available = frames(music.duration_s or 0.0)
    length = min(full, available) if full.value > 0 else available
    track.append(
        otio.schema.Clip(
            name="soundtrack",
            media_reference=otio.schema.ExternalReference(
                target_url=music.url,
                available_range=otio.opentime.TimeRange(frames(0), available),
            ),
            source_range=otio.opentime.TimeRange(frames(0), length),
            metadata={"montage": {"kind": "music"}},
        )
    )
    return track


def _card_markers(
    timeline: otio.schema.Timeline,
    spans: Sequence[EditSpan],
    frames: _Frames,
    end: otio.opentime.RationalTime,
    full: otio.opentime.RationalTime,
) -> None:
    if spans and spans[0].intro_s > 0:
        timeline.tracks.markers.append(
            otio.schema.Marker(
                name="title card",
                marked_range=frames.span(0.0, spans[0].intro_s),
                color=otio.schema.MarkerColor.BLUE,
            )
        )
    if full > end:
        timeline.tracks.markers.append(
            otio.schema.Marker(
                name="end card",
                marked_range=otio.opentime.TimeRange(end, full - end),
                color=otio.schema.MarkerColor.BLUE,
            )
        )


def media_length(path: Path) -> float:
    """A media file's length as its container states it (seconds)."""
    with av.open(str(path)) as container:
        return float(container.duration or 0) / av.time_base


def video_only(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy with the picture track alone, for CMX 3600 (one picture track; its writer edits the copy)."""
    copied = otio.schema.Timeline(name=timeline.name, metadata=copy.deepcopy(timeline.metadata))
    for marker in timeline.tracks.markers:
        copied.tracks.markers.append(copy.deepcopy(marker))
    for track in timeline.video_tracks():
        copied.tracks.append(copy.deepcopy(track))
    return copied


def write_exports(timeline: otio.schema.Timeline, folder: Path) -> dict[str, Path]:
    """The timeline in every exported format, each through OpenTimelineIO's adapter; name -> path."""
    out = {}
    for name, adapter in EXPORT_FORMATS.items():
        path = folder / name
        source = video_only(timeline) if adapter == "cmx_3600" else copy.deepcopy(timeline)
        # CMX 3600 states no rate: its timecodes are the cut's frames.
        extra = {"rate": timeline.duration().rate} if adapter == "cmx_3600" else {}
        otio.adapters.write_to_file(source, str(path), adapter_name=adapter, **extra)
        out[name] = path
    return out
