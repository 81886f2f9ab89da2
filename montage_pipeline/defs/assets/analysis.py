"""`scene_segments` and `scored_highlights`: find each clip's best moment and cut the week on the beat."""

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from montage_pipeline.defs.assets.analysis_common import (
    SceneSegmentsConfig,
    analysis_options,
    asset_attributes,
    log_outcome,
    table_output,
)
from montage_pipeline.defs.assets.analysis_fanout import per_clip_scene_segments
from montage_pipeline.defs.catalog import OWNERS, stage_tags, table_metadata, table_value
from montage_pipeline.defs.location_settings import settings as location_settings
from montage_pipeline.defs.location_settings import settings_metadata
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.highlights import explain
from montage_pipeline.highlights.analysis_cache import (
    AnalysisJob,
    AnalysisOutcome,
    analyze_with_cache,
    load_key,
)
from montage_pipeline.highlights.edl import (
    ScoredCandidate,
    build_edl,
    newest_candidates,
    score_candidates,
)
from montage_pipeline.highlights.edl_export import store_edl
from montage_pipeline.highlights.engagement_prior import (
    EngagementPrior,
    PriorEffect,
    apply_prior,
    load_prior,
)
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.highlights.scene_table import summarise
from montage_pipeline.highlights.theme import ThemedCut, cut_for_theme, store_theme
from montage_pipeline.media.analysis import ClipAnalysis
from montage_pipeline.media.cores import usable_cores
from montage_pipeline.media.music_library import TrackBeats
from montage_pipeline.media.timeline import Timeline, TimelineRules
from montage_pipeline.media.windows import WindowRules
from montage_pipeline.platform.themes import admin_theme
from montage_pipeline.rules import RULES
from montage_pipeline.selection.rows import SelectedClip
from montage_pipeline.settings import Settings
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

# scored_highlights' code version: bump it when the same inputs give another cut. scene_segments'
# is the analysis code's own version (media/analysis.py), which also keys the analysis cache.
EDL_VERSION = "1"


class ScoredHighlightsConfig(dg.Config):
    policy: Literal["ranked", "newest"] = "ranked"
    target_duration_s: float | None = None  # default: settings (WEEKLY_MONTAGE_DURATION, 180)
    # Every default is `rules.RULES` (each rule is explained there).
    min_clips: int = RULES.min_clips
    min_score: float = RULES.min_score
    max_clips: int = RULES.max_clips
    per_user_cap: int = RULES.per_user_cap
    game_diversity_penalty: float = RULES.game_diversity_penalty
    max_game_share: float = RULES.max_game_share
    min_window_s: float = RULES.min_window_s
    max_window_s: float = RULES.max_window_s
    lead_in_s: float = RULES.lead_in_s
    tempo_bpm: float | None = None  # default: drawn from tempo_min_bpm..tempo_max_bpm, seeded by the week
    tempo_min_bpm: int = RULES.tempo_min_bpm
    tempo_max_bpm: int = RULES.tempo_max_bpm
    intro_beats: int = RULES.intro_beats
    transition: Literal["cut", "dissolve"] = "cut"
    dissolve_s: float = RULES.dissolve_s
    preferred_window_s: float = RULES.preferred_window_s
    prior_weight: float = RULES.prior_weight
    # True: spans stretch (up to max_window_s) and dull clips pad in until the cut is the target length;
    # False (default): a week short of worthy clips gets a shorter cut of action, with a note.
    fill_target: bool = False
    # The engagement prior (highlights/engagement_prior.py): a bounded nudge from past weeks' views.
    engagement_prior: bool = True


def _analyse(
    context: dg.AssetExecutionContext,
    clips: list[SelectedClip],
    media_store: MediaStore,
    workers: int,
    **options: object,
) -> list[AnalysisOutcome]:
    jobs = [AnalysisJob(c.clip_id, c.sha256, Path(c.path)) for c in clips]
    return analyze_with_cache(
        jobs,
        media_store,
        workers=workers or usable_cores(),
        on_outcome=lambda outcome: log_outcome(context.log, outcome),
        **options,
    )


def in_step_scene_segments() -> dg.AssetsDefinition:
    """`scene_segments` as one step: the week's clips analysed by local worker processes."""

    @dg.asset(io_manager_key="table_io_manager", pool="analysis", **asset_attributes())
    def scene_segments(
        context: dg.AssetExecutionContext,
        config: SceneSegmentsConfig,
        selected_clips: list[SelectedClip],
        media_store: MediaStoreResource,
    ) -> dg.Output[list[SceneSegment]]:
        outcomes = _analyse(
            context, selected_clips, media_store.store(), config.workers, **analysis_options(config)
        )
        sha = {c.clip_id: c.sha256 for c in selected_clips}
        return table_output([summarise(o, sha[o.clip_id]) for o in outcomes])

    return scene_segments


# The form MONTAGE_ANALYSIS_FANOUT picks (read once, as the code location loads): `in_step` (default)
# or `per_clip` (analysis_fanout.py). Same key, config, table and metadata either way.
scene_segments = (
    per_clip_scene_segments()
    if location_settings.executor.analysis_fanout == "per_clip"
    else in_step_scene_segments()
)


def _load_analyses(
    context: dg.AssetExecutionContext,
    clips: list[SelectedClip],
    scenes: list[SceneSegment],
    media_store: MediaStore,
) -> dict[str, ClipAnalysis]:
    """The analyses scene_segments stored (by the keys in its rows); any lost entry is recomputed."""
    keys = {s.clip_id: s.analysis_key for s in scenes}
    analyses: dict[str, ClipAnalysis] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            loaded = load_key(media_store, keys[clip.clip_id], Path(tmp))
            if loaded is not None:
                analyses[clip.clip_id] = loaded
    missing = [c for c in clips if c.clip_id not in analyses]
    if missing:
        context.log.warning(f"{len(missing)} cached analyses are gone; recomputing them with default options")
        for outcome in _analyse(context, missing, media_store, 0, **analysis_options(SceneSegmentsConfig())):
            if outcome.analysis is not None:
                analyses[outcome.clip_id] = outcome.analysis
    return analyses


@dg.asset(
    partitions_def=weekly_partitions,
    group_name="montage",
    kinds={"postgres", "python", "otio"},
    code_version=EDL_VERSION,
    owners=OWNERS,
    tags=stage_tags("analysis", "table"),
    metadata=table_metadata(EditSpan),
    io_manager_key="table_io_manager",
    output_required=False,
    # The generator's annotation names no type: declared here so a script can load the rows.
    dagster_type=dg.List[EditSpan],
    description="The edit decision list: each clip's best window, ordered and cut on the music's beat grid.",
)
def scored_highlights(
    context: dg.AssetExecutionContext,
    config: ScoredHighlightsConfig,
    selected_clips: list[SelectedClip],
    scene_segments: list[SceneSegment],
    media_store: MediaStoreResource,
    platform_db: PlatformDatabase,
    settings: dg.ResourceParam[Settings],
) -> Iterator[dg.Output[list[EditSpan]]]:
    week = context.partition_key
    store = media_store.store()
    analysed_ids = {s.clip_id for s in scene_segments}
    clips = [c for c in selected_clips if c.clip_id in analysed_ids]
    with platform_db.session() as session:
        admin = admin_theme(session, week)
        prior = load_prior(session, week) if config.engagement_prior and config.policy == "ranked" else None
    scored = _candidates(
        context, config, clips, scene_segments, store, _timeline_rules(config, settings, None)
    )
    effects: list[PriorEffect] = []
    if prior is not None:
        scored, effects = apply_prior(scored, prior, config.min_score)

    def cut(track: TrackBeats | None) -> tuple[Timeline, list[EditSpan]]:
        rules = _timeline_rules(config, settings, track.tempo_bpm if track else None)
        keep_order = config.policy == "newest"
        return build_edl(
            week,
            scored,
            rules,
            keep_order=keep_order,
            transition=config.transition,
            transition_s=config.dissolve_s,
        )

    themed = cut_for_theme(cut, week, admin, settings.music_library, follow_track=not config.tempo_bpm)
    timeline, spans, track, theme = themed.timeline, themed.spans, themed.track, themed.theme
    if track is not None:
        context.log.info(f"music: {track.path.name} at {track.tempo_bpm:g} BPM; the cuts follow its beats")
    rules = _timeline_rules(config, settings, track.tempo_bpm if track else None)
    if not spans:
        context.log.warning(f"No usable highlight in week {week}; the montage stops here")
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=week,
                metadata={"skip_reason": "no analysed clip to cut"},
            )
        )
        return
    for note in timeline.notes:
        context.log.warning(note)
    store_edl(store, week, spans)
    store_theme(store, week, theme)
    context.log.info(f"theme: {theme.name or 'none'} ({theme.source})")
    metadata = _cut_metadata(themed, rules.target_s, config, len(scored), store, week, settings)
    yield dg.Output(spans, metadata={**metadata, **prior_metadata(prior, effects)})


def _cut_metadata(
    themed: ThemedCut,
    target_s: float,
    config: ScoredHighlightsConfig,
    clips_analysed: int,
    store: MediaStore,
    week: str,
    settings: Settings,
) -> dict[str, Any]:
    """What `scored_highlights` shows: the cut's figures, its music and theme, the picks and the rest."""
    timeline, spans, theme = themed.timeline, themed.spans, themed.theme
    return {
        "montage_duration_s": round(timeline.total_s, 2),
        "target_duration_s": target_s,
        "clips_in_montage": len(spans),
        "tempo_bpm": timeline.tempo_bpm,
        "music_track": _track_name(themed.track, settings),
        "theme": theme.name or "none",
        "theme_source": theme.source,
        "theme_screen_time_s": theme.screen_time_s,
        "peaks_on_downbeat": sum(s.peak_on_downbeat for s in spans),
        "mean_score": round(sum(s.score for s in spans) / len(spans), 4),
        "policy": config.policy,
        "clips_analysed": clips_analysed,
        "picks": table_value(explain.PICKS_COLUMNS, explain.picks_rows(spans, timeline)),
        "left_out": table_value(explain.LEFT_OUT_COLUMNS, explain.left_out_rows(timeline)),
        "not_picked": dg.MetadataValue.json(explain.left_out_json(timeline)),
        "notes": "; ".join(timeline.notes) or "none",
        "edl_json": store.uri(keys.edl_json_key(week)),
        "edl_otio": store.uri(keys.edl_otio_key(week)),
        **settings_metadata(settings),
    }


def _track_name(track: TrackBeats | None, settings: Settings) -> str:
    """The track's path inside the library (a theme's folder shows), or "generated"."""
    if track is None:
        return "generated"
    library = settings.music_library
    return track.path.relative_to(library).as_posix() if library else track.path.name


def _candidates(
    context: dg.AssetExecutionContext,
    config: ScoredHighlightsConfig,
    clips: list[SelectedClip],
    scene_segments: list[SceneSegment],
    store: MediaStore,
    rules: TimelineRules,
) -> list[ScoredCandidate]:
    """Each clip's best window: scored from its cached analysis, or (policy `newest`) from the start."""
    if config.policy == "newest":
        return newest_candidates(clips, rules)
    analyses = _load_analyses(context, clips, scene_segments, store)
    windows = WindowRules(
        min_len_s=config.min_window_s,
        max_len_s=config.max_window_s,
        preferred_len_s=config.preferred_window_s,
        lead_in_s=config.lead_in_s,
    )
    return score_candidates(clips, analyses, windows, prior_weight=config.prior_weight)


def _timeline_rules(
    config: ScoredHighlightsConfig, settings: Settings, track_bpm: float | None
) -> TimelineRules:
    """The edit's rules from the run config, the target length from the settings when unset, the tempo
    from the config or the week's music track."""
    rules = TimelineRules(
        target_s=config.target_duration_s or settings.target_duration_s,
        min_clips=config.min_clips,
        min_score=config.min_score,
        max_clips=config.max_clips,
        per_user_cap=config.per_user_cap,
        game_diversity_penalty=config.game_diversity_penalty,
        max_game_share=config.max_game_share,
        min_len_s=config.min_window_s,
        max_len_s=config.max_window_s,
        intro_beats=config.intro_beats,
        tempo_bpm=config.tempo_bpm or track_bpm,
        tempo_range_bpm=(config.tempo_min_bpm, config.tempo_max_bpm),
    )
    if config.fill_target or config.policy == "newest":  # the seed's rule always filled the target
        rules = dataclasses.replace(rules, max_stretch=None, dull_fill_share=1.0)
    return rules


def prior_metadata(prior: EngagementPrior | None, effects: list[PriorEffect]) -> dict[str, Any]:
    """What the engagement prior did this week: its factors, and each clip it touched."""
    if prior is None:
        return {"engagement_prior": "off"}
    return {
        "engagement_weeks": len(prior.week_scores),
        "engagement_factors": dg.MetadataValue.json(
            {f"{kind}:{value}": f for (kind, value), f in sorted(prior.factors.items())}
        ),
        "prior_clips_moved": sum(e.rank_before != e.rank_after for e in effects),
        "engagement_prior": table_value(
            (
                ("clip", "string"),
                ("game", "string"),
                ("creator", "integer"),
                ("moment", "string"),
                ("factor", "float"),
                ("rank before", "integer"),
                ("rank after", "integer"),
            ),
            [
                {
                    "clip": e.clip_id,
                    "game": e.game,
                    "creator": e.user_id,
                    "moment": e.moment,
                    "factor": e.factor,
                    "rank before": e.rank_before,
                    "rank after": e.rank_after,
                }
                for e in effects
            ],
        ),
    }
