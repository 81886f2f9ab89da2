"""`eligible_jobs` and `selected_clips`: the week's uploads and the verified, ranked candidate pool."""

import functools
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import dagster as dg

from montage_pipeline.defs.catalog import OWNERS, Cell, stage_tags, table_metadata, table_value
from montage_pipeline.defs.location_settings import settings_metadata
from montage_pipeline.defs.partitions import weekly_partitions, window
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.platform.montage_record import MontageEvent, record_status
from montage_pipeline.rules import RULES
from montage_pipeline.selection.queries import eligible_jobs_in_window
from montage_pipeline.selection.ranking import RankingRules, build_pool, newest_pool
from montage_pipeline.selection.rows import EligibleJob, Rejection, SelectedClip
from montage_pipeline.selection.verify import VerifiedClip, sound_of, verify_jobs
from montage_pipeline.settings import Settings

# The assets' code version: bump it when the same inputs give other rows.
SELECTION_VERSION = "1"


class EligibleJobsConfig(dg.Config):
    max_jobs: int = 50


class SelectedClipsConfig(dg.Config):
    # "newest" keeps the seed's rule (the newest `newest_max_clips`, nothing analysed first) for comparison.
    policy: Literal["ranked", "newest"] = "ranked"
    newest_max_clips: int = RULES.newest_max_clips
    min_clip_duration_s: float = RULES.min_clip_duration_s
    weight_job_score: float = RULES.weight_job_score
    weight_engagement: float = RULES.weight_engagement
    weight_recency: float = RULES.weight_recency


def _log_verified(context: dg.AssetExecutionContext, result: VerifiedClip | Rejection) -> None:
    """One line per clip as verification goes: what it is, or why it is out."""
    if isinstance(result, Rejection):
        context.log.warning(f"job {result.job_id}: rejected ({result.reason}): {result.detail}")
        return
    p = result.probe
    context.log.info(
        f"job {result.job.job_id}: ok, {p.duration_s:.1f}s {p.width}x{p.height}@{p.fps:.0f}"
        f"{' VFR' if p.variable_fps else ''}{'' if p.has_audio else ' (no audio)'}"
    )


def _pool(
    verified: list[VerifiedClip], config: SelectedClipsConfig, week_start: datetime
) -> tuple[list[SelectedClip], list[Rejection]]:
    """The week's candidates under the configured policy, and the clips the policy leaves out."""
    if config.policy == "newest":
        return newest_pool(verified, config.newest_max_clips)
    rules = RankingRules(
        weight_job_score=config.weight_job_score,
        weight_engagement=config.weight_engagement,
        weight_recency=config.weight_recency,
    )
    return build_pool(verified, week_start, rules, sound=sound_of)


def _pool_metadata(
    considered: int, rows: list[SelectedClip], rejections: list[Rejection], policy: str
) -> dict[str, Any]:
    by_reason = Counter(r.reason.split(":")[0] for r in rejections)
    return {
        "clips_considered": considered,
        "clips_selected": len(rows),
        "clips_rejected": len(rejections),
        "pool_duration_s": round(sum(r.duration_s for r in rows), 2),
        "policy": policy,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rejections": _rejections_table(rejections),
        "rejected": dg.MetadataValue.json(
            [
                {"job_id": r.job_id, "user": r.user_handle, "reason": r.reason, "detail": r.detail}
                for r in rejections
            ]
        ),
    }


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"postgres", "python"},
    code_version=SELECTION_VERSION,
    owners=OWNERS,
    tags=stage_tags("selection", "table"),
    metadata=table_metadata(EligibleJob),
    io_manager_key="table_io_manager",
    description="Successful upload jobs created in the week, newest first, with their landscape render.",
)
def eligible_jobs(
    context: dg.AssetExecutionContext, config: EligibleJobsConfig, platform_db: PlatformDatabase
) -> dg.Output[list[EligibleJob]]:
    start, end = window(context.partition_key)
    context.log.info(
        f"Starting weekly montage compilation for week {start:%Y-%m-%d} "
        f"([{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC)"
    )
    with platform_db.session() as session:
        jobs = eligible_jobs_in_window(session, start, end, config.max_jobs)
        selection = context.run.asset_selection
        if selection is None or dg.AssetKey("s3_exports") in selection:
            # This run builds the week through to its export: the platform shows the montage job running.
            record_status(session, context.partition_key, MontageEvent.BUILD_STARTED)
    if not jobs:
        context.log.warning("No successful jobs found for weekly montage")
    else:
        context.log.info(f"Found {len(jobs)} successful jobs for the weekly montage")
    return dg.Output(
        jobs,
        metadata={
            "jobs_found": len(jobs),
            "jobs_with_render": sum(1 for j in jobs if j.render_path),
            "users": len({j.user_id for j in jobs}),
            "window": f"[{start.isoformat()}, {end.isoformat()})",
            **({"skip_reason": "No successful jobs found for weekly montage"} if not jobs else {}),
        },
    )


_REJECTION_COLUMNS = (("job", "integer"), ("user", "string"), ("reason", "string"), ("detail", "string"))
_SELECTED_COLUMNS = (
    ("prior rank", "integer"),
    ("clip", "string"),
    ("user", "string"),
    ("game", "string"),
    ("duration_s", "float"),
    ("size", "string"),
    ("prior", "float"),
    ("why", "string"),
)


def _rejections_table(rejections: list[Rejection]) -> dg.TableMetadataValue:
    rows: list[dict[str, Cell]] = [
        {"job": r.job_id, "user": r.user_handle or "—", "reason": r.reason, "detail": r.detail[:120]}
        for r in rejections
    ]
    return table_value(_REJECTION_COLUMNS, rows)


def _selected_table(rows: list[SelectedClip]) -> dg.TableMetadataValue:
    cells: list[dict[str, Cell]] = [
        {
            "prior rank": r.rank,
            "clip": r.clip_id,
            "user": f"@{r.user_handle}",
            "game": r.game,
            "duration_s": round(r.duration_s, 1),
            "size": f"{r.width}×{r.height}@{r.fps:.0f}",
            "prior": round(r.rank_score, 3),
            "why": r.selection_reason,
        }
        for r in rows
    ]
    return table_value(_SELECTED_COLUMNS, cells)


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"postgres", "pyav"},
    code_version=SELECTION_VERSION,
    owners=OWNERS,
    tags=stage_tags("selection", "table"),
    metadata=table_metadata(SelectedClip),
    io_manager_key="table_io_manager",
    output_required=False,
    # The generator's annotation names no type: declared here so a script can load the rows.
    dagster_type=dg.List[SelectedClip],
    pool="analysis",
    description="Every verified, de-duplicated, consent-checked clip of the week, with its prior.",
)
def selected_clips(
    context: dg.AssetExecutionContext,
    config: SelectedClipsConfig,
    eligible_jobs: list[EligibleJob],
    upload_storage: UploadStorage,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[list[SelectedClip]]]:
    results = verify_jobs(
        eligible_jobs,
        upload_storage.root_path,
        config.min_clip_duration_s,
        on_result=functools.partial(_log_verified, context),
        limits=settings.clip_limits,
    )
    verified = [r for r in results if isinstance(r, VerifiedClip)]
    rows, left_out = _pool(verified, config, window(context.partition_key)[0])
    rejections = [r for r in results if isinstance(r, Rejection)] + left_out
    metadata = {
        **_pool_metadata(len(eligible_jobs), rows, rejections, config.policy),
        **settings_metadata(settings),
    }
    if not rows:
        reason = (
            "No successful jobs found for weekly montage"
            if not eligible_jobs
            else f"None of the {len(eligible_jobs)} eligible clips is usable"
        )
        context.log.warning(f"{reason}; the montage stops here for week {context.partition_key}")
        # No output: downstream steps are skipped (the run still succeeds); the observation shows why.
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=context.partition_key,
                metadata={**metadata, "skip_reason": reason},
            )
        )
        return
    context.log.info(f"Selected {len(rows)} candidate clips ({metadata['pool_duration_s']}s) for the week")
    yield dg.Output(rows, metadata={**metadata, "selected": _selected_table(rows)})
