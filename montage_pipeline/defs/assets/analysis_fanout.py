"""`scene_segments` as one step per clip (MONTAGE_ANALYSIS_FANOUT=per_clip), so an executor's workers
share a week's analysis: Celery workers on several machines, or the multiprocess executor's processes.

    list_clips ──(one dynamic output per clip)──> analyse_clip[<clip>] ... ──(collect)──> assemble_segments

Each `analyse_clip` step reads the analysis cache first, analyses the clip otherwise and stores the full
analysis there; what it hands on is a `ClipSummary` (the clip's scene rows and cost). The small values
between the steps go through the media store (`StepRowsIOManager`, the code location's "io_manager"),
never memory or a local folder.
A clip that cannot be decoded is a summary with its reason, not a failed step: the run goes on.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.assets.analysis_common import (
    SceneSegmentsConfig,
    analysis_options,
    asset_attributes,
    log_outcome,
    table_output,
)
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.analysis_cache import AnalysisJob, analyze_with_cache
from montage_pipeline.highlights.rows import SceneSegment
from montage_pipeline.highlights.scene_table import ClipSummary, summarise
from montage_pipeline.selection.rows import SelectedClip

# The code location's default IO manager is the rows one (resources/wiring.py); named here, not left
# implicit, as Dagster also asks for it by this key for the graph's own output.
ROWS_IO = "io_manager"


def mapping_keys(clip_ids: list[str]) -> list[str]:
    """A step name per clip: the id with anything but letters, digits and _ replaced (Dagster's rule),
    made unique by the clip's position when two ids sanitise alike."""
    seen: set[str] = set()
    out = []
    for i, clip_id in enumerate(clip_ids):
        key = re.sub(r"[^A-Za-z0-9_]", "_", clip_id)[:60] or "clip"
        if key in seen:
            key = f"{key}_{i}"
        seen.add(key)
        out.append(key)
    return out


@dg.op(
    out={
        "clips": dg.DynamicOut(AnalysisJob, io_manager_key=ROWS_IO),
        "order": dg.Out(list[str], io_manager_key=ROWS_IO),
    },
    tags={"stage": "analysis"},
)
def list_clips(selected_clips: list[SelectedClip]) -> Iterator[dg.DynamicOutput[AnalysisJob] | dg.Output]:
    """One small job row per selected clip (id, hash, path), and the week's clip order for the table."""
    ids = [c.clip_id for c in selected_clips]
    yield dg.Output(ids, output_name="order")
    for clip, key in zip(selected_clips, mapping_keys(ids), strict=True):
        yield dg.DynamicOutput(
            AnalysisJob(clip.clip_id, clip.sha256, Path(clip.path)), mapping_key=key, output_name="clips"
        )


# A clip that cannot be decoded is not retried (its summary says why); a media store that failed to
# answer is: the step reads and writes the cache and its summary over the network.
@dg.op(
    out=dg.Out(ClipSummary, io_manager_key=ROWS_IO),
    pool="analysis",
    tags={"stage": "analysis"},
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
    ),
)
def analyse_clip(
    context: dg.OpExecutionContext,
    config: SceneSegmentsConfig,
    clip: AnalysisJob,
    media_store: MediaStoreResource,
) -> ClipSummary:
    """One clip, from the cache or decoded here (with the decoder's own threads); its summary."""
    outcome = analyze_with_cache(
        [clip], media_store.store(), workers=1, on_outcome=None, **analysis_options(config)
    )[0]
    log_outcome(context.log, outcome)
    return summarise(outcome, clip.sha256)


@dg.op(out=dg.Out(list[SceneSegment], io_manager_key="table_io_manager"), tags={"stage": "analysis"})
def assemble_segments(order: list[str], summaries: list[ClipSummary]) -> dg.Output[list[SceneSegment]]:
    """The week's table in the selection's order, with the same metadata as the in-step analysis."""
    by_id = {s.clip_id: s for s in summaries}
    return table_output([by_id[clip_id] for clip_id in order if clip_id in by_id])


def _config(config: dict[str, object]) -> dict[str, object]:
    """The asset's config (as the in-step form takes it) handed to every `analyse_clip` step."""
    return {"analyse_clip": {"config": config}}


def per_clip_scene_segments() -> dg.AssetsDefinition:
    """`scene_segments` as a graph of one analysis step per clip (see the module docstring)."""
    mapping = dg.ConfigMapping(config_fn=_config, config_schema=SceneSegmentsConfig.to_config_schema())

    @dg.graph_asset(config=mapping, **asset_attributes())
    def scene_segments(selected_clips: list[SelectedClip]) -> list[SceneSegment]:
        clips, order = list_clips(selected_clips)
        return assemble_segments(order, clips.map(analyse_clip).collect())

    return scene_segments
