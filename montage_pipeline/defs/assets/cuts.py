"""`short_highlights` and `long_highlights`: the week's short and long cuts' EDLs, beside the main one.

Thin: each reads the main cut (and, for the long one, the week's analysed candidates), calls one
function of `highlights/cuts.py` and reports. A skipped long cut is an empty EDL with its reason in
metadata (and in the media store for the steps after it), never a missing output: the renders, the mix,
the export and the posts still run for the other cuts. Each also leaves its spans in the media store
(`highlights/cuts.py`, `weeks/{week}/cuts/{cut}.json`), which the steps after it read: they depend on
these assets without loading them, so a run or test of the main cut alone needs neither.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from montage_pipeline.defs.assets.analysis import (
    ScoredHighlightsConfig,
    _candidates,
    _timeline_rules,
)
from montage_pipeline.defs.catalog import OWNERS, stage_tags, table_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.highlights.cuts import (
    LONG_RANGE_S,
    LongRules,
    ShortRules,
    StoredCut,
    long_cut,
    short_cut,
    store_cut,
)
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.rules import RULES
from montage_pipeline.selection.rows import SelectedClip
from montage_pipeline.settings import Settings

CUTS_VERSION = "1"


class ShortHighlightsConfig(dg.Config):
    target_duration_s: float | None = None  # 15–60; default: settings (MONTAGE_SHORT_DURATION, 30)
    intro_beats: int = 4
    min_span_s: float = 3.0


class LongHighlightsConfig(dg.Config):
    min_duration_s: float = LONG_RANGE_S[0]  # under this much good material: skipped, `thin_week`
    max_duration_s: float = LONG_RANGE_S[1]
    min_gain_s: float = 60.0  # shorter than the main cut plus this: skipped, `no_gain_over_main`
    min_score: float = RULES.min_score  # dull windows never go in
    max_clips: int = 60
    per_user_cap: int = 4


def _spans_metadata(spans: list[EditSpan]) -> dict[str, Any]:
    return {
        "dagster/row_count": len(spans),
        "montage_duration_s": round(max((s.montage_out_s for s in spans), default=0.0), 2),
        "clips_in_cut": len(spans),
        "mean_score": round(sum(s.score for s in spans) / len(spans), 4) if spans else 0.0,
    }


# What both cut EDLs are, as assets: week tables of EditSpan rows beside the main cut's.
_CUT_EDL_ASSET: dict[str, Any] = dict(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"postgres", "python"},
    code_version=CUTS_VERSION,
    owners=OWNERS,
    tags=stage_tags("analysis", "table"),
    metadata=table_metadata(EditSpan),
    io_manager_key="table_io_manager",
    dagster_type=dg.List[EditSpan],
)


@dg.asset(
    **_CUT_EDL_ASSET,
    description="The short cut's EDL (portrait, 15–60 s): the main cut's strongest spans, inside them, "
    "re-timed on the short's own beat grid.",
)
def short_highlights(
    context: dg.AssetExecutionContext,
    config: ShortHighlightsConfig,
    scored_highlights: list[EditSpan],
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> dg.Output[list[EditSpan]]:
    week = context.partition_key
    rules = ShortRules(
        target_s=config.target_duration_s or settings.short_duration_s,
        intro_beats=config.intro_beats,
        min_len_s=config.min_span_s,
    )
    try:
        timeline, spans = short_cut(scored_highlights, week, rules)
    except ValueError as exc:
        raise dg.Failure(f"no short cut for {week}: {exc}", allow_retries=False) from None
    stored = StoredCut(spans, None, f"{timeline.total_s:.1f}s")
    store_cut(media_store.store(), week, "short", stored, scored_highlights)
    for note in timeline.notes:
        context.log.warning(f"short: {note}")
    return dg.Output(
        spans,
        metadata={
            **_spans_metadata(spans),
            "target_duration_s": rules.target_s,
            "main_spans_used": len(spans),
            "main_spans": len(scored_highlights),
            "notes": "; ".join(timeline.notes) or "none",
        },
    )


@dg.asset(
    **_CUT_EDL_ASSET,
    description="The long YouTube cut's EDL (landscape, 3–10 min) of every good moment of the week, or "
    "no rows with the reason (`thin_week`, `no_gain_over_main`): never padded with dull footage.",
)
def long_highlights(
    context: dg.AssetExecutionContext,
    config: LongHighlightsConfig,
    selected_clips: list[SelectedClip],
    scene_segments: list[SceneSegment],
    scored_highlights: list[EditSpan],
    media_store: MediaStoreResource,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[list[EditSpan]]]:
    week = context.partition_key
    store = media_store.store()
    analysed = {s.clip_id for s in scene_segments}
    clips = [c for c in selected_clips if c.clip_id in analysed]
    main_rules = ScoredHighlightsConfig()  # the main cut's window and timeline rules, by default
    base = _timeline_rules(main_rules, settings, None)
    scored = _candidates(context, main_rules, clips, scene_segments, store, base)
    rules = LongRules(
        min_s=config.min_duration_s,
        max_s=config.max_duration_s,
        min_gain_s=config.min_gain_s,
        min_score=config.min_score,
        max_clips=config.max_clips,
        per_user_cap=config.per_user_cap,
    )
    cut = long_cut(scored, scored_highlights, week, base, rules)
    store_cut(store, week, "long", StoredCut(cut.spans, cut.skip_reason, cut.detail), scored_highlights)
    if cut.skip_reason:
        context.log.info(f"no long cut for {week}: {cut.skip_reason} ({cut.detail})")
    yield dg.Output(
        cut.spans,
        metadata={
            **_spans_metadata(cut.spans),
            "skip_reason": cut.skip_reason or "none",
            "detail": cut.detail,
            "good_material_s": round(cut.good_s, 1),
            "candidates": len(scored),
        },
    )
