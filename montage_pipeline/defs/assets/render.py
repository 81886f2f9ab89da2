"""`landscape_render` and `portrait_render` (the main cut), `short_portrait_render` and
`long_landscape_render` (the other cuts): each EDL rendered to platform spec. The short rides on the main
cut's decode pass when they are materialized together (its spans lie inside the main cut's); the long
cut has a pass of its own. A cut without spans (the long cut of a thin week) is an empty bundle with
its reason, so the steps after it run for the other cuts.

MONTAGE_RENDER_CHUNKS picks the form (read once, as the code location loads): unset or 0, one step
(below); n ≥ 2, a graph of a plan step, n chunk steps and a join step (`render_chunked.py`). Same keys,
config, bundles, metadata and checks either way (`render_common.py`).
"""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.assets.render_chunked import chunked_montage_renders
from montage_pipeline.defs.assets.render_common import (
    ALL_OUTPUTS,
    CUT_EDL_ASSETS,
    RenderConfig,
    asset_outs,
    check_specs,
    render_inputs,
    report_week,
)
from montage_pipeline.defs.executors import FILLS_CORES
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle
from montage_pipeline.defs.location_settings import settings as location_settings
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.render_plan import LONG, SHORT, BrandingFileError
from montage_pipeline.highlights.renders import render_week
from montage_pipeline.highlights.rows import EditSpan, SceneSegment


def single_step_montage_renders() -> dg.AssetsDefinition:
    """The render as one step: every selected output in as few decode passes as the plan allows."""

    @dg.multi_asset(
        name="montage_renders",
        partitions_def=weekly_partitions,
        group_name="montage",
        can_subset=True,
        pool="render",
        op_tags=FILLS_CORES,  # `cores_filled_at_once` counts it (executors.py)
        outs=asset_outs(),
        deps=list(CUT_EDL_ASSETS),
        check_specs=check_specs(),
    )
    def montage_renders(
        context: dg.AssetExecutionContext,
        config: RenderConfig,
        scored_highlights: list[EditSpan],
        scene_segments: list[SceneSegment],
        media_store: MediaStoreResource,
    ) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
        chosen = context.op_execution_context.selected_output_names
        selected = [n for n in ALL_OUTPUTS if n in chosen]
        store = media_store.store()
        inputs = render_inputs(context.log, config, store, context.partition_key, scored_highlights)

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
                    inputs.title,
                    inputs.options,
                    workdir,
                    progress,
                    short=inputs.short.spans if SHORT in selected else (),
                    long=inputs.long.spans if LONG in selected else (),
                )
            except BrandingFileError as exc:
                raise dg.Failure(str(exc), allow_retries=False) from None
            passes = {o.name: "shared with the main cut" for o in rendered if o.shared_decode}
            yield from report_week(context.log, rendered, inputs, selected, passes)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    return montage_renders


# The form MONTAGE_RENDER_CHUNKS picks; the single step stays the default.
montage_renders = (
    chunked_montage_renders(location_settings.executor.render_chunks)
    if location_settings.executor.render_chunks >= 2
    else single_step_montage_renders()
)
