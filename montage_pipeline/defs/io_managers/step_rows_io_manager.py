"""An IO manager for the small values one op hands the next inside a graph (job lists, summaries).

On Dagster's Celery executor each step runs in another process, perhaps on another machine, so nothing
may pass in memory or through a local folder: the value is written as JSON into the media store (S3 in
production) under `runs/<run id>/<step key>/<output>`. Only small rows go through here — a clip's
analysis stays in the analysis cache and media in the media IO manager; `MAX_BYTES` enforces it.
JSON, not pickle: reading the store never runs code, and only the row types named here come back.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.analysis_cache import AnalysisJob
from montage_pipeline.highlights.render_pieces import GroupPiece, JobSummary, PieceReport, RenderJob
from montage_pipeline.highlights.rows import SceneSegment
from montage_pipeline.highlights.scene_table import ClipSummary
from montage_pipeline.storage import keys

MAX_BYTES = 1_000_000  # rows, not payloads: a larger value is a bug in the op that made it
ROW_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (AnalysisJob, ClipSummary, SceneSegment, RenderJob, GroupPiece, JobSummary, PieceReport)
}


def encode(value: Any) -> Any:
    """`value` as JSON-able data; dataclasses, tuples and paths tagged so `decode` restores them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if type(value).__name__ not in ROW_TYPES:
            raise TypeError(f"{type(value).__name__} is not a row type this IO manager passes")
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__row__": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot pass a {type(value).__name__} between steps")


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if "__tuple__" in data:
            return tuple(decode(v) for v in data["__tuple__"])
        if "__path__" in data:
            return Path(data["__path__"])
        fields = {k: decode(v) for k, v in data.items() if k != "__row__"}
        return ROW_TYPES[data["__row__"]](**fields)
    return data


def _key(context: dg.OutputContext) -> str:
    return keys.step_output_key(context.run_id, context.step_key, context.name, context.mapping_key)


class StepRowsIOManager(dg.ConfigurableIOManager):
    media_store: MediaStoreResource

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        data = json.dumps(encode(obj), separators=(",", ":")).encode()
        if len(data) > MAX_BYTES:
            raise ValueError(f"{context.step_key}.{context.name} is {len(data)} bytes; steps pass rows only")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "value.json"
            local.write_bytes(data)
            self.media_store.store().put_file(local, _key(context), content_type="application/json")

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        assert upstream is not None, "rows come from another step's output"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "value.json"
            self.media_store.store().get_file(_key(upstream), local)
            return decode(json.loads(local.read_bytes()))
