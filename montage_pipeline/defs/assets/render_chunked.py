"""The render as steps (MONTAGE_RENDER_CHUNKS=n, n ≥ 2), so an executor's workers share a week's render:

    plan_render ──(one dynamic output per job)──> render_chunk[chunk_0] ... ──(collect)──> join_render

`plan_render` splits the main cut (landscape and portrait) at hard cuts into up to n pieces; a short or
long cut in the selection is a job of its own, rendered whole (the short cannot ride on a piece of the
main pass as it does in the single step). Each `render_chunk` step renders its pieces, uploads them to
the media store under `runs/<run id>/render/<job>/` and hands on a small `JobSummary`; `join_render`
downloads the pieces, joins them by stream copy, reviews each output as the single step does and yields
the same outputs, metadata and blocking `meets_platform_spec` checks. Every step plans the render again
from the same inputs (the plan holds local paths and action tracks, not rows); nothing passes between
steps but the media store and the database. See `highlights/render_pieces.py`.
"""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.assets.render_common import (
    ALL_OUTPUTS,
    CHECK,
    CUT_EDL_ASSETS,
    RenderConfig,
    RenderInputs,
    asset_outs,
    check_specs,
    render_inputs,
    report_week,
)
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.render_pieces import (
    JobSummary,
    RenderJob,
    join_outputs,
    plan_jobs,
    render_job,
    split_plan,
    store_pieces,
)
from montage_pipeline.highlights.render_plan import LONG, SHORT, BrandingFileError, RenderPlan
from montage_pipeline.highlights.renders import plan_week
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

# The small values between the steps: the code location's default IO manager (StepRowsIOManager).
ROWS_IO = "io_manager"
TAGS = {"stage": "render"}


def _plan(
    log: dg.DagsterLogManager,
    config: RenderConfig,
    store: MediaStore,
    week: str,
    spans: list[EditSpan],
    scenes: list[SceneSegment],
    selected: list[str],
    workdir: Path,
) -> tuple[RenderPlan, RenderInputs]:
    """The same plan in every step (paths under this step's own `workdir`). Without `scenes` the
    portraits have no action tracks: enough for the plan's shape and times, not for rendering."""
    inputs = render_inputs(log, config, store, week, spans)
    try:
        plan = plan_week(
            spans,
            scenes,
            store,
            selected,
            inputs.title,
            inputs.options,
            workdir,
            short=inputs.short.spans if SHORT in selected else (),
            long=inputs.long.spans if LONG in selected else (),
        )
    except BrandingFileError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    return split_plan(plan), inputs


def chunked_montage_renders(chunks: int) -> dg.AssetsDefinition:
    """`montage_renders` as a graph of a plan step, one step per job and a join step (module docstring)."""

    @dg.op(
        ins={
            "scored_highlights": dg.In(list[EditSpan]),
            **{name: dg.In(dg.Nothing) for name in CUT_EDL_ASSETS},
        },
        out=dg.DynamicOut(RenderJob, io_manager_key=ROWS_IO),
        tags=TAGS,
    )
    def plan_render(
        context: dg.OpExecutionContext,
        config: RenderConfig,
        scored_highlights: list[EditSpan],
        media_store: MediaStoreResource,
    ) -> Iterator[dg.DynamicOutput[RenderJob]]:
        """The jobs: the main cut in up to `chunks` pieces at hard cuts, the other cuts whole."""
        chosen = {k.to_user_string() for k in context.selected_asset_keys}
        selected = [n for n in ALL_OUTPUTS if n in chosen]
        with tempfile.TemporaryDirectory(prefix="montage-render-plan-") as tmp:
            plan, _ = _plan(
                context.log,
                config,
                media_store.store(),
                context.partition_key,
                scored_highlights,
                [],
                selected,
                Path(tmp),
            )
        for job in plan_jobs(plan, chunks, selected):
            spans = "; ".join(
                f"{'+'.join(plan.groups[p.group].names)} spans {p.first_span}–{p.end_span - 1}"
                for p in job.pieces
            )
            context.log.info(f"{job.key}: {spans or 'nothing to render'}")
            yield dg.DynamicOutput(job, mapping_key=job.key)

    # A render that failed on a worker's disk or the media store is retried (on any worker); a bad
    # branding file is a `Failure` without retries.
    @dg.op(
        out=dg.Out(JobSummary, io_manager_key=ROWS_IO),
        pool="render",
        tags=TAGS,
        retry_policy=dg.RetryPolicy(
            max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
        ),
    )
    def render_chunk(
        context: dg.OpExecutionContext,
        config: RenderConfig,
        job: RenderJob,
        scored_highlights: list[EditSpan],
        scene_segments: list[SceneSegment],
        media_store: MediaStoreResource,
    ) -> JobSummary:
        """The job's pieces, rendered in this step's own temp folder and uploaded for the join."""
        store = media_store.store()
        workdir = Path(tempfile.mkdtemp(prefix="montage-render-chunk-"))
        try:
            plan, _ = _plan(
                context.log,
                config,
                store,
                context.partition_key,
                scored_highlights,
                scene_segments,
                job.selected,
                workdir,
            )

            def progress(done: int, total: int) -> None:
                context.log.info(f"{job.key}: rendered span {done}/{total}")

            reports = render_job(plan, job, progress)
            summary = store_pieces(
                store, keys.render_piece_prefix(context.run_id, job.key), job, reports, workdir
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        for piece in summary.pieces:
            context.log.info(f"{job.key}: {piece.name}: {piece.frames} frames in {piece.seconds:.1f}s")
        return summary

    @dg.op(
        ins={"scored_highlights": dg.In(list[EditSpan]), "summaries": dg.In(list[JobSummary])},
        out={
            **{
                name: dg.Out(MediaBundle, io_manager_key="media_io_manager", is_required=False)
                for name in ALL_OUTPUTS
            },
            **{f"{name}_{CHECK}": dg.Out(dg.Nothing, is_required=False) for name in ALL_OUTPUTS},
        },
        tags=TAGS,
    )
    def join_render(
        context: dg.OpExecutionContext,
        config: RenderConfig,
        scored_highlights: list[EditSpan],
        summaries: list[JobSummary],
        media_store: MediaStoreResource,
    ) -> Iterator[dg.Output[MediaBundle] | dg.AssetCheckResult]:
        """The pieces joined into each selected output, reviewed and reported as the single step does."""
        selected = [n for n in ALL_OUTPUTS if n in context.selected_output_names]
        store = media_store.store()
        workdir = Path(tempfile.mkdtemp(prefix="montage-render-join-"))
        try:
            plan, inputs = _plan(
                context.log, config, store, context.partition_key, scored_highlights, [], selected, workdir
            )
            rendered = join_outputs(plan, summaries, store, workdir)
            pieces = {p.name: 0 for s in summaries for p in s.pieces}
            for s in summaries:
                for p in s.pieces:
                    pieces[p.name] += 1
            passes = {name: f"{n} chunk steps, joined" if n > 1 else "own step" for name, n in pieces.items()}
            yield from report_week(context.log, rendered, inputs, selected, passes)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _config(config: dict[str, object]) -> dict[str, object]:
        """The asset's config (as the single step takes it) handed to every step of the graph."""
        return {op: {"config": config} for op in ("plan_render", "render_chunk", "join_render")}

    mapping = dg.ConfigMapping(config_fn=_config, config_schema=RenderConfig.to_config_schema())

    @dg.graph_multi_asset(
        name="montage_renders",
        outs=asset_outs(),
        ins={name: dg.AssetIn(name, dagster_type=dg.Nothing) for name in CUT_EDL_ASSETS},
        partitions_def=weekly_partitions,
        group_name="montage",
        can_subset=True,
        check_specs=check_specs(),
        config=mapping,
    )
    def montage_renders(
        scored_highlights: list[EditSpan],
        scene_segments: list[SceneSegment],
        short_highlights: None,
        long_highlights: None,
    ) -> dict[str, object]:
        jobs = plan_render(
            scored_highlights=scored_highlights,
            short_highlights=short_highlights,
            long_highlights=long_highlights,
        )
        summaries = jobs.map(lambda job: render_chunk(job, scored_highlights, scene_segments)).collect()
        joined = join_render(scored_highlights, summaries)
        return {name: getattr(joined, name) for name in ALL_OUTPUTS} | {
            f"{name}_{CHECK}": getattr(joined, f"{name}_{CHECK}") for name in ALL_OUTPUTS
        }

    return montage_renders
