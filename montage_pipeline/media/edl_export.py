"""Write the week's edit decision list as JSON and as OpenTimelineIO, for people and editors.

The OTIO file opens in DaVinci Resolve, Premiere (through its OTIO import) and other editors: one video
track of clips referencing the source files with their in/out points, gaps for the title card, and a
marker on each span's peak.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import opentimelineio as otio

from montage_pipeline.highlights.rows import EditSpan


def edl_document(week: str, spans: Sequence[EditSpan]) -> dict[str, Any]:
    first = spans[0] if spans else None
    return {
        "week": week,
        "tempo_bpm": first.tempo_bpm if first else None,
        "beat_s": first.beat_s if first else None,
        "intro_s": first.intro_s if first else None,
        "duration_s": spans[-1].montage_out_s if spans else 0.0,
        "spans": [asdict(s) for s in spans],
    }


def write_json(path: Path, week: str, spans: Sequence[EditSpan]) -> None:
    path.write_text(json.dumps(edl_document(week, spans), indent=2, sort_keys=True))


def to_otio(week: str, spans: Sequence[EditSpan], rate: float = 30.0) -> otio.schema.Timeline:
    def rt(seconds: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(round(seconds * rate), rate)

    timeline = otio.schema.Timeline(name=f"Weekly Highlights {week}")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    if spans:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(spans[0].intro_s))))
    for span in spans:
        media = otio.schema.ExternalReference(target_url=Path(span.source_path).resolve().as_uri())
        clip = otio.schema.Clip(
            name=f"{span.order:02d} {span.credit}",
            media_reference=media,
            source_range=otio.opentime.TimeRange(
                rt(span.source_in_s), rt(span.source_out_s - span.source_in_s)
            ),
            metadata={"montage": {"clip_id": span.clip_id, "score": span.score, "credit": span.credit}},
        )
        clip.markers.append(
            otio.schema.Marker(
                name="peak",
                marked_range=otio.opentime.TimeRange(rt(span.peak_source_s), rt(0)),
                color=otio.schema.MarkerColor.RED,
            )
        )
        track.append(clip)
    return timeline


def write_otio(path: Path, week: str, spans: Sequence[EditSpan]) -> None:
    otio.adapters.write_to_file(to_otio(week, spans), str(path))
