"""What both forms of `scene_segments` share: its config, its catalogue entry, and the step's reporting.

`scene_segments` is built in one of two forms (MONTAGE_ANALYSIS_FANOUT): one step analysing the whole
week (`analysis.py`) or a graph of one step per clip (`analysis_fanout.py`). Same key, config, catalogue
entry, IO manager and metadata, so the rest of the pipeline cannot tell them apart.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg

from montage_pipeline.defs.catalog import OWNERS, stage_tags, table_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.highlights.analysis_cache import AnalysisOutcome
from montage_pipeline.highlights.rows import SceneSegment
from montage_pipeline.highlights.scene_table import ClipSummary, scene_table
from montage_pipeline.media.analysis import ANALYSIS_VERSION

DESCRIPTION = "Scene cuts of every candidate clip, from one low-resolution decode pass (cached by hash)."


class SceneSegmentsConfig(dg.Config):
    detector: Literal["adaptive", "content"] = "adaptive"
    analysis_width: int = 320
    # Decode reference frames only: ~1.45x faster on B-frame streams, cut accuracy unchanged on our tests.
    skip_nonref: bool = True
    # Skip H.264's deblocking filter in the analysis decode: ~20 % faster at 1080p, invisible at 320 px.
    skip_loop_filter: bool = True
    workers: int = 0  # 0: one per core (in-step analysis only; a per-clip step analyses one clip)


def analysis_options(config: SceneSegmentsConfig) -> dict[str, object]:
    return {
        "analysis_width": config.analysis_width,
        "detector": config.detector,
        "skip_nonref": config.skip_nonref,
        "skip_loop_filter": config.skip_loop_filter,
    }


def asset_attributes() -> dict[str, Any]:
    """The catalogue entry both forms declare (the IO manager and pool sit on the step that needs them)."""
    return {
        "name": "scene_segments",
        "partitions_def": weekly_partitions,
        "group_name": "montage",
        "kinds": {"postgres", "pyav", "scenedetect"},
        # The analysis code's own version, which also keys the analysis cache.
        "code_version": str(ANALYSIS_VERSION),
        "owners": OWNERS,
        "tags": stage_tags("analysis", "table"),
        "metadata": table_metadata(SceneSegment),
        "description": DESCRIPTION,
    }


def log_outcome(log: dg.DagsterLogManager, outcome: AnalysisOutcome) -> None:
    """One line per clip in the run's log: its scenes and cost, or why it failed."""
    if outcome.error:
        log.warning(f"{outcome.clip_id}: analysis failed: {outcome.error}")
    elif outcome.analysis is not None:
        a = outcome.analysis
        how = "cached" if outcome.cached else f"analysed in {a.seconds:.1f}s ({a.frames_decoded} frames)"
        log.info(f"{outcome.clip_id}: {len(a.scenes)} scenes, {how}")


def table_output(summaries: list[ClipSummary]) -> dg.Output[list[SceneSegment]]:
    """The week's table and the metadata docs/metrics.md lists, from the clips' summaries in order."""
    rows, figures = scene_table(summaries)
    figures["analysis_failures"] = dg.MetadataValue.json(figures["analysis_failures"])
    return dg.Output(rows, metadata=figures)
