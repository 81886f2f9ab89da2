"""Write the week's edit decision list as JSON and as OpenTimelineIO, for people and editors.

The OTIO file opens in DaVinci Resolve, Premiere (through its OTIO import) and other editors: the complete
timeline of `editor_timeline` (picture with its dissolves, game audio, markers at the peaks and the title
card, what each span is). The editor package (`editor_package`) writes the same timeline relinked to its
trimmed media, in every exported format.

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

from montage_pipeline.highlights.editor_timeline import (
    EXPORT_TYPES,
    SourceMedia,
    editor_timeline,
    media_length,
    write_exports,
)
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


def _server_sources(spans: Sequence[EditSpan], rate: float) -> dict[int, SourceMedia]:
    """The source files on this server, each with its length where the file is here to measure."""
    sources = {}
    for span in spans:
        path = Path(span.source_path)
        length = media_length(path) if path.is_file() else None
        sources[span.order] = SourceMedia(path.resolve().as_uri(), 0.0, length, span.source_fps or rate)
    return sources


def to_otio(
    week: str, spans: Sequence[EditSpan], rate: float = 30.0, public: bool = False
) -> otio.schema.Timeline:
    """The complete timeline (`editor_timeline`): internally over the server's files, publicly with
    `MissingReference`s named after the clips (the editor package's timelines carry relinkable ones)."""
    sources = None if public else _server_sources(spans, rate)
    return editor_timeline(week, spans, sources=sources, rate=rate, public=public)


def write_otio(path: Path, week: str, spans: Sequence[EditSpan], public: bool = False) -> None:
    otio.adapters.write_to_file(to_otio(week, spans, public=public), str(path))


def store_edl(store: MediaStore, week: str, spans: Sequence[EditSpan]) -> None:
    """The week's internal EDL as `weeks/{week}/edl.json` and `montage.otio` in the media store, and
    beside them the same timeline as `montage.xml` (FCP 7), `montage.fcpxml` and `montage.edl` (CMX 3600)
    over the server's files (a cut without spans: the JSON and the OTIO file only)."""
    with tempfile.TemporaryDirectory() as tmp:
        json_path, otio_path = Path(tmp) / "edl.json", Path(tmp) / "montage.otio"
        write_json(json_path, week, spans)
        store.put_file(json_path, keys.edl_json_key(week), content_type="application/json")
        if not spans:
            write_otio(otio_path, week, spans)
            store.put_file(otio_path, keys.edl_otio_key(week), content_type="application/json")
            return
        for name, path in write_exports(to_otio(week, spans), Path(tmp)).items():
            store.put_file(path, keys.edl_export_key(week, name), content_type=EXPORT_TYPES[name])
