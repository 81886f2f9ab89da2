"""The engagement prior: bounded, shrunk by sample size, exactly 1 without history, never across min_score."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.highlights.edl import ScoredCandidate
from montage_pipeline.highlights.engagement_prior import (
    CEIL,
    FLOOR,
    EngagementPrior,
    Exposure,
    PostCounts,
    apply_prior,
    compute_prior,
    week_scores,
)
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.media.timeline import Candidate, TimelineRules, build_timeline
from montage_pipeline.media.windows import Window
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import (
    EngagementExposure,
    PostState,
    SocialConnection,
    SocialPlatform,
    SocialPost,
)
from montage_pipeline.publishing.engagement import PostMeasurement, store
from montage_pipeline.rules import RULES
from montage_pipeline.selection.rows import SelectedClip
from montage_pipeline.settings import load_settings
from montage_pipeline.weeks import week_row_key
from montage_pipeline_tests.selection_support import add_upload

WEEK_A = datetime(2025, 1, 13, tzinfo=UTC)
WEEK_B = datetime(2025, 1, 20, tzinfo=UTC)


def _scored(clip_id: str, user_id: int, game: str, score: float, feature: str = "onset") -> ScoredCandidate:
    window = Window(1.0, 6.0, 3.0, score, score, score, {feature: 0.5, "motion": 0.1}, "cut", "cut")
    clip = SelectedClip(
        clip_id,
        1,
        user_id,
        f"user{user_id}",
        game,
        datetime(2025, 1, 28, tzinfo=UTC),
        "x.mp4",
        "/x.mp4",
        10.0,
        30.0,
        False,
        320,
        180,
        0,
        True,
        1,
        "0" * 64,
        "0" * 16,
        None,
        None,
        None,
        1,
        0.5,
        "ranked",
    )
    return ScoredCandidate(clip, Candidate(clip_id, user_id, game, 10.0, window, 0.5))


def _posts(week: datetime, views: int, post_id: int, platform: str = "youtube") -> list[PostCounts]:
    """A post measured for 10 days, its views rising to `views` by day 7."""
    first = date(2025, 2, 1)
    return [
        PostCounts(week, post_id, platform, first + timedelta(days=d), views * min(d + 1, 7) // 7, 0, 0)
        for d in range(10)
    ]


def test_a_game_that_drew_viewers_gets_a_bounded_factor_above_one() -> None:
    # Week A featured Doom and got 1.2x the views of week B, which featured Apex.
    scores = week_scores([*_posts(WEEK_A, 12_000, 1), *_posts(WEEK_B, 10_000, 2)])
    assert scores[WEEK_A] > 1 > scores[WEEK_B]
    exposure = [(WEEK_A, Exposure("game", "Doom", 1.0, 5)), (WEEK_B, Exposure("game", "Apex", 1.0, 5))]
    prior = compute_prior(scores, exposure)
    doom, apex = prior.factors[("game", "Doom")], prior.factors[("game", "Apex")]
    assert 1.0 < doom <= CEIL
    assert FLOOR <= apex < 1.0
    # Seen in one week only, the factor is shrunk toward 1: a third of the raw ratio's distance.
    assert doom == round(1 + (scores[WEEK_A] - 1) / 3, 4)
    assert prior.factor("Doom", 7, "calm") == doom


def test_more_weeks_of_evidence_move_the_factor_further() -> None:
    weeks = [WEEK_A - timedelta(weeks=i) for i in range(6)]
    posts = [p for i, w in enumerate(weeks) for p in _posts(w, 11_000 if i % 2 else 10_000, i)]
    scores = week_scores(posts)
    one = compute_prior(scores, [(weeks[1], Exposure("game", "Doom", 1.0, 3))])
    three = compute_prior(scores, [(w, Exposure("game", "Doom", 1.0, 3)) for w in weeks[1::2]])
    assert 1.0 < one.factors[("game", "Doom")] < three.factors[("game", "Doom")] <= CEIL


def test_platforms_are_compared_with_themselves() -> None:
    # TikTok counts ten times YouTube's, yet week A did better on both: A scores above B.
    posts = [
        *_posts(WEEK_A, 2_000, 1, "youtube"),
        *_posts(WEEK_A, 20_000, 2, "tiktok"),
        *_posts(WEEK_B, 1_000, 3, "youtube"),
        *_posts(WEEK_B, 10_000, 4, "tiktok"),
    ]
    scores = week_scores(posts)
    assert scores[WEEK_A] > scores[WEEK_B]


def test_no_history_leaves_every_score_and_the_cut_unchanged() -> None:
    prior = compute_prior(week_scores([]), [])
    assert prior == EngagementPrior()
    scored = [_scored(f"c{i}", i, "Apex" if i % 2 else "Doom", 0.3 + 0.05 * i) for i in range(8)]
    applied, effects = apply_prior(scored, prior, min_score=0.2)
    assert applied == scored and effects == []
    rules = TimelineRules(target_s=30.0, min_clips=3, tempo_bpm=120)
    before = build_timeline([s.candidate for s in scored], "2025-02-03", rules)
    after = build_timeline([s.candidate for s in applied], "2025-02-03", rules)
    assert after == before


def test_the_prior_never_lifts_a_dull_clip_over_min_score_nor_breaks_the_user_cap() -> None:
    prior = EngagementPrior({("game", "Doom"): CEIL, ("creator", "1"): CEIL})
    dull = _scored("dull", 9, "Doom", 0.19)  # x 1.1 would be 0.209, over min_score 0.2
    capped = [_scored(f"ace{i}", 1, "Doom", 0.6 + 0.01 * i) for i in range(4)]
    rest = [_scored(f"r{i}", 10 + i, "Apex", 0.62 + 0.01 * i) for i in range(4)]
    applied, effects = apply_prior([dull, *capped, *rest], prior, min_score=0.2)
    by_id = {s.candidate.clip_id: s.candidate for s in applied}
    assert by_id["dull"].engagement == 1.0 and by_id["dull"].effective_score < 0.2
    assert by_id["ace0"].engagement == CEIL  # game x creator = 1.21, clamped to 1.1
    moved = {e.clip_id for e in effects if e.rank_before != e.rank_after}
    assert "ace0" in moved  # 0.60 x 1.1 now ranks above the Apex clips
    rules = TimelineRules(
        target_s=60.0,
        min_clips=3,
        max_clips=12,
        per_user_cap=2,
        min_score=0.2,
        tempo_bpm=120,
        dull_fill_share=0.0,
    )
    timeline = build_timeline([s.candidate for s in applied], "2025-02-03", rules)
    chosen = [p.candidate.clip_id for p in timeline.spans]
    assert "dull" not in chosen
    assert sum(c.startswith("ace") for c in chosen) == 2  # the per-creator cap holds
    assert dict((c.clip_id, r) for c, r in timeline.not_picked)["dull"] == "too_dull"


# -- On the asset page: `scored_highlights` on a planted week, with and without engagement history ------

PLANTED_WEEK = "2025-01-27"
GAMES = ("Apex Legends", "Valorant")


@pytest.fixture(scope="module")
def planted_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("prior_week")
    rels = []
    for i in range(6):
        rel = f"uploads/clip_{i}.mp4"
        write_clip(root / rel, plan_clip(12.0 + 2 * i, 30, seed=500 + i, width=320, height=180))
        rels.append(rel)
    return root, rels


def _cut(db_url: str, root: Path, media: Path, **config: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [eligible_jobs, selected_clips, scene_segments, scored_highlights],
        partition_key=PLANTED_WEEK,
        resources={
            "platform_db": PlatformDatabase(url=db_url),
            "table_io_manager": TableIOManager(url=db_url),
            "upload_storage": UploadStorage(root=str(root)),
            "settings": load_settings(),
            "media_store": LocalMediaStoreResource(root=str(media)),
        },
        run_config={
            "ops": {"scored_highlights": {"config": {"target_duration_s": 40.0, "min_clips": 3, **config}}}
        },
    )


def _history(db_url: str, creator: int) -> None:
    """Two earlier weeks: one featured Valorant and `creator` and drew 3x the views of the other (Apex)."""
    engine = create_engine(db_url)
    with Session(engine) as s, s.begin():
        conn = SocialConnection(user_id=creator, platform=SocialPlatform.YOUTUBE, account_id="acct")
        s.add(conn)
        s.flush()
        for week, views, game, featured in (
            ("2025-01-13", 30_000, "Valorant", str(creator)),
            ("2025-01-20", 10_000, "Apex Legends", "999"),
        ):
            start = week_row_key(week)
            post = SocialPost(
                week_start=start,
                platform=SocialPlatform.YOUTUBE,
                connection_id=conn.id,
                state=PostState.PUBLISHED,
            )
            s.add(post)
            s.flush()
            first = start.date() + timedelta(days=7)
            store(
                s,
                start,
                [
                    PostMeasurement(
                        post.id, "youtube", conn.id, "v", first + timedelta(days=d), views, 0, 0, None
                    )
                    for d in range(10)
                ],
            )
            for kind, value in (("game", game), ("creator", featured)):
                s.add(EngagementExposure(week_start=start, kind=kind, value=value, share=1.0, clips=4))
    engine.dispose()


def test_scored_highlights_shows_what_the_prior_did_and_is_unchanged_without_history(
    pg_url: str, planted_clips: tuple[Path, list[str]], tmp_path: Path
) -> None:
    upgrade(pg_url)
    root, rels = planted_clips
    with PlatformDatabase(url=pg_url).session() as s:
        for i, rel in enumerate(rels):
            add_upload(
                s, f"player{i}", rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), GAMES[i % 2]
            )
    media = tmp_path / "media"
    without = _cut(pg_url, root, media, engagement_prior=False)
    plain = _cut(pg_url, root, media)  # no history: the prior is exactly 1
    assert plain.output_for_node("scored_highlights") == without.output_for_node("scored_highlights")
    meta = plain.asset_materializations_for_node("scored_highlights")[0].metadata
    assert meta["engagement_weeks"].value == 0 and meta["prior_clips_moved"].value == 0
    assert meta["engagement_factors"].value == {}

    spans = plain.output_for_node("scored_highlights")
    valorant_creator = next(s.user_id for s in spans if s.game == "Valorant")
    _history(pg_url, valorant_creator)
    steered = _cut(pg_url, root, media)
    meta = steered.asset_materializations_for_node("scored_highlights")[0].metadata
    factors = meta["engagement_factors"].value
    assert isinstance(factors, dict)
    assert 1.0 < factors["game:Valorant"] <= CEIL
    assert FLOOR <= factors["game:Apex Legends"] < 1.0
    assert factors[f"creator:{valorant_creator}"] > 1.0
    table = meta["engagement_prior"]
    assert isinstance(table, dg.TableMetadataValue) and table.records  # one row per clip it touched
    by_clip = {r.data["clip"]: r.data for r in table.records}
    clips = {c.clip_id: c for c in steered.output_for_node("selected_clips")}
    for clip_id, row in by_clip.items():
        factor = float(str(row["factor"]))
        assert (factor > 1.0) == (clips[clip_id].game == "Valorant"), row
        assert FLOOR <= factor <= CEIL
    min_score = RULES.min_score
    for span in steered.output_for_node("scored_highlights"):
        factor = span.score_breakdown.get("engagement", 1.0)
        if factor != 1.0:  # a clip the prior moved was over min_score before it, and stays over it
            assert span.score >= min_score and span.score / factor >= min_score - 1e-3
