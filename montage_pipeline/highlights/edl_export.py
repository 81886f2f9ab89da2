"""Write the week's edit decision list as JSON and as OpenTimelineIO, for people and editors.

The OTIO file opens in DaVinci Resolve, Premiere (through its OTIO import) and other editors: one video
track of clips referencing the source files with their in/out points, gaps for the title card, and a
marker on each span's peak.

Two versions of each: the internal one (kept in the media store for the pipeline) names the source
files by their absolute server paths and carries platform ids; the public one (`public=True`, what is
exported) keeps the edit itself and the credits, and drops those: no paths, no user, job or clip ids,
no source hashes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import opentimelineio as otio

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

# Fields of an EditSpan that identify the server or the platform's records, not the edit.
PRIVATE_SPAN_FIELDS = frozenset({"clip_id", "job_id", "user_id", "source_path", "source_sha256"})


def _span_dict(span: EditSpan, public: bool) -> dict[str, Any]:
    fields = asdict(span)
    return {k: v for k, v in fields.items() if k not in PRIVATE_SPAN_FIELDS} if public else fields


def edl_document(week: str, spans: Sequence[EditSpan], public: bool = False) -> dict[str, Any]:
    first = spans[0] if spans else None
    return {
        "week": week,
        "tempo_bpm": first.tempo_bpm if first else None,
        "beat_s": first.beat_s if first else None,
        "intro_s": first.intro_s if first else None,
        "duration_s": spans[-1].montage_out_s if spans else 0.0,
        "spans": [_span_dict(s, public) for s in spans],
    }


def write_json(path: Path, week: str, spans: Sequence[EditSpan], public: bool = False) -> None:
    path.write_text(json.dumps(edl_document(week, spans, public), indent=2, sort_keys=True))


def _media_reference(span: EditSpan, public: bool) -> otio.core.MediaReference:
    if public:  # the editor relinks to their own copy of the clip; the name says which one
        return otio.schema.MissingReference(name=f"{span.order:02d} {span.credit}")
    return otio.schema.ExternalReference(target_url=Path(span.source_path).resolve().as_uri())


def to_otio(
    week: str, spans: Sequence[EditSpan], rate: float = 30.0, public: bool = False
) -> otio.schema.Timeline:
    def rt(seconds: float) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(round(seconds * rate), rate)

    timeline = otio.schema.Timeline(name=f"Weekly Highlights {week}")
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    if spans:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0), rt(spans[0].intro_s))))
    for span in spans:
        about: dict[str, Any] = {"score": span.score, "credit": span.credit}
        if not public:
            about["clip_id"] = span.clip_id
        clip = otio.schema.Clip(
            name=f"{span.order:02d} {span.credit}",
            media_reference=_media_reference(span, public),
            source_range=otio.opentime.TimeRange(
                rt(span.source_in_s), rt(span.source_out_s - span.source_in_s)
            ),
            metadata={"montage": about},
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


def write_otio(path: Path, week: str, spans: Sequence[EditSpan], public: bool = False) -> None:
    otio.adapters.write_to_file(to_otio(week, spans, public=public), str(path))


def store_edl(store: MediaStore, week: str, spans: Sequence[EditSpan]) -> None:
    """The week's internal EDL as `weeks/{week}/edl.json` and `montage.otio` in the media store."""
    with tempfile.TemporaryDirectory() as tmp:
        json_path, otio_path = Path(tmp) / "edl.json", Path(tmp) / "montage.otio"
        write_json(json_path, week, spans)
        write_otio(otio_path, week, spans)
        store.put_file(json_path, keys.edl_json_key(week), content_type="application/json")
        store.put_file(otio_path, keys.edl_otio_key(week), content_type="application/json")
