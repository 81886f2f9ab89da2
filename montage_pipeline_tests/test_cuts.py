"""Cuts of every length: a small demo week makes the short, the main and the long cut, each through the
spec gate and the export; the short lies inside the main cut; a thin week skips the long cut without
stopping the rest; posting picks the configured cut per platform (the local fake platforms)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.audio import mixed_audio, soundtrack
from montage_pipeline.defs.assets.cuts import long_highlights, short_highlights
from montage_pipeline.defs.assets.publish import s3_exports, social_posts
from montage_pipeline.defs.assets.render import montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.highlights.cuts import StoredCut, load_cut, store_cut
from montage_pipeline.highlights.render_plan import render_spans
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.mux import video_duration
from montage_pipeline.media.span_copies import shared_spans
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import Job, SubscriptionTier
from montage_pipeline.publishing.exports import ExportedFile
from montage_pipeline.publishing.gate import export_failures
from montage_pipeline.settings import SettingsError, load_settings, parse_post_cuts
from montage_pipeline.storage.media_store import LocalMediaStore
from montage_pipeline_tests.databases import fresh_database
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek
from montage_pipeline_tests.selection_support import add_upload
from montage_pipeline_tests.social_support import Fakes, social_resources, start_fakes

ASSETS = [
    eligible_jobs,
    selected_clips,
    scene_segments,
    scored_highlights,
    short_highlights,
    long_highlights,
    soundtrack,
    montage_renders,
    mixed_audio,
    s3_exports,
]
# Small on purpose: a 24 s main cut, a 15 s short, and a "long" cut whose bounds are scaled down with
# the week (the real ones are 3–10 min); renders at 1/6 of the platform size.
CUT_CONFIG: dict[str, Any] = {
    "ops": {
        "scored_highlights": {"config": {"target_duration_s": 24.0, "min_clips": 2}},
        "short_highlights": {"config": {"target_duration_s": 15.0}},
        "long_highlights": {
            "config": {"min_duration_s": 30.0, "max_duration_s": 120.0, "min_gain_s": 8.0, "per_user_cap": 2}
        },
        "montage_renders": {"config": {"width_scale": 1 / 6, "fps": 30}},
    }
}
# handle -> game; the publishing tests' creators (ace may be posted for) plus three more uploads.
UPLOADS = {
    "ace": "Apex",
    "blaze": "Apex",
    "cobalt": "Doom",
    "dusk": "Doom",
    "fox": "Apex",
    "gale": "Doom",
    "hawk": "Apex",
    "ember": "Doom",
}
VIDEOS = ("final_landscape.mp4", "final_portrait.mp4", "final_short_portrait.mp4", "final_long_landscape.mp4")


BUILDS: dict[str, dg.ExecuteInProcessResult] = {}  # the build run of each week (by bucket)


def _config(**long_config: float) -> dict[str, Any]:
    out: dict[str, Any] = {"ops": {k: {"config": dict(v["config"])} for k, v in CUT_CONFIG["ops"].items()}}
    out["ops"]["long_highlights"]["config"].update(long_config)
    return out


@pytest.fixture(scope="module")
def cut_week(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[BuiltWeek]:
    """Eight creators' uploads, built through the export with all three cuts."""
    tmp = tmp_path_factory.mktemp("cut_week")
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    with fresh_database() as url:
        upgrade(url)
        week = BuiltWeek(url, s3_endpoint, bucket, tmp / "storage", tmp / "cache")
        with week.session() as s, s.begin():
            for i, (handle, game) in enumerate(UPLOADS.items()):
                rel = f"{handle}/clip.mp4"
                write_clip(week.root / rel, plan_clip(10.0, 30, seed=900 + i, width=320, height=180))
                job_id = add_upload(
                    s, handle, rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), game
                )
                job = s.get(Job, job_id)
                assert job is not None and job.user is not None
                job.user.subscription_tier = (
                    SubscriptionTier.CREATOR_PLUS if handle == "ace" else SubscriptionTier.FREE
                )
                job.user.opted_out_of_featuring = handle == "ember"
                if handle == "ace":
                    job.views, job.likes = 100_000, 9_000
        result = dg.materialize(ASSETS, partition_key=WEEK, resources=week.resources(), run_config=_config())
        assert result.success
        BUILDS[bucket] = result
        yield week


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Each check's verdict in the run, as "asset:check"."""
    verdicts = {}
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.asset_check_evaluation_data
            verdicts[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
    return verdicts


def _meta(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for m in result.get_asset_materialization_events():
        data = m.materialization
        if data.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in data.metadata.items()}
    raise AssertionError(f"{asset} did not materialize")


def _rematerialize(week: BuiltWeek, selection: list[Any], config: dict[str, Any], **extra: Any) -> Any:
    ops = {a.op.name for a in selection}
    return dg.materialize(
        [*ASSETS, social_posts] if social_posts in selection else ASSETS,
        selection=selection,
        partition_key=WEEK,
        resources=week.resources(**extra),
        run_config={"ops": {k: v for k, v in config["ops"].items() if k in ops}},
    )


def test_a_demo_week_makes_three_cuts_each_through_the_spec_gate(cut_week: BuiltWeek, tmp_path: Path) -> None:
    exports = {r.name: r for r in cut_week.stored_rows("s3_exports", ExportedFile)}
    for name in VIDEOS:  # exported, named per cut
        assert name in exports, f"{name} was not exported"
        assert exports[name].key.endswith(f"/{name}")
    assert "thumbnail_short_portrait.jpg" in exports and "thumbnail_long_landscape.jpg" in exports
    files = cut_week.finals(tmp_path)
    for name in VIDEOS:  # each final file passes the platform gate on its exact bytes
        if "portrait" in name:
            assert export_failures(files[name], "portrait") == [], name
        else:
            assert export_failures(files[name], "landscape") == [], name
    short_s, main_s, long_s = (
        video_duration(files[n])
        for n in ("final_short_portrait.mp4", "final_landscape.mp4", "final_long_landscape.mp4")
    )
    assert 14.0 <= short_s <= 16.5  # the 15 s short (on whole beats)
    assert abs(main_s - 24.0) < 1.5
    assert long_s >= main_s + 8.0  # the long cut adds good moments the main cut has no room for


def test_every_cut_has_its_blocking_spec_check_and_the_short_shares_the_main_decode(
    cut_week: BuiltWeek,
) -> None:
    result = BUILDS[cut_week.bucket]
    checks = _checks(result)
    for asset in ("landscape_render", "portrait_render", "short_portrait_render", "long_landscape_render"):
        assert checks[f"{asset}:meets_platform_spec"] is True
    assert checks["mixed_audio:meets_audio_spec"] is True
    assert _meta(result, "short_portrait_render")["decode_pass"] == "shared with the main cut"
    assert _meta(result, "long_landscape_render")["decode_pass"] == "own"
    mix = _meta(result, "mixed_audio")
    assert mix["short_cut"].endswith("s") and mix["long_cut"].endswith("s")  # each cut mixed and mastered
    assert abs(mix["short_loudness_lufs"] - -14.0) <= 1.0 and abs(mix["long_loudness_lufs"] - -14.0) <= 1.0


def test_the_shorts_spans_lie_inside_the_main_cuts(cut_week: BuiltWeek) -> None:
    main = cut_week.stored_rows("scored_highlights", EditSpan)
    short = cut_week.stored_rows("short_highlights", EditSpan)
    assert 1 <= len(short) < len(main) or len(short) <= len(main)
    by_clip = {s.clip_id: s for s in main}
    for s in short:
        m = by_clip[s.clip_id]  # a span of the main cut
        assert s.source_path == m.source_path
        assert m.source_in_s - 1e-3 <= s.source_in_s < s.source_out_s <= m.source_out_s + 1e-3
        # on the short's own beat grid: whole beats of the main's tempo
        assert s.tempo_bpm == m.tempo_bpm
        beats = (s.montage_out_s - s.montage_in_s) / s.beat_s
        assert abs(beats - round(beats)) < 1e-3
    ordered = sorted(short, key=lambda s: s.order)
    assert ordered[0].montage_in_s == pytest.approx(ordered[0].intro_s, abs=1e-3)
    # The strongest of the main cut close the short, as they close the main cut.
    assert ordered[-1].clip_id == max(main, key=lambda s: s.score).clip_id
    strongest = sorted(main, key=lambda s: -s.score)[: len(short)]
    assert {s.clip_id for s in short} == {s.clip_id for s in strongest}


def test_a_cut_made_from_another_main_cut_is_not_used(cut_week: BuiltWeek, tmp_path: Path) -> None:
    """`scored_highlights` rerun alone: the stored short no longer matches, so renders and posts skip it."""
    main = cut_week.stored_rows("scored_highlights", EditSpan)
    short = cut_week.stored_rows("short_highlights", EditSpan)
    store = LocalMediaStore(tmp_path / "media")
    store_cut(store, WEEK, "short", StoredCut(short, None), main)
    assert load_cut(store, WEEK, "short", main).spans == short
    rerun = [dataclasses.replace(main[0], source_in_s=main[0].source_in_s + 0.5), *main[1:]]
    stale = load_cut(store, WEEK, "short", rerun)
    assert (
        stale.spans == [] and stale.skip_reason is not None and "rerun short_highlights" in stale.skip_reason
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fakes(cut_week: BuiltWeek, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fakes are plain HTTP on 127.0.0.1
    yield from start_fakes(cut_week)


def _post(week: BuiltWeek, fakes: Fakes, post_cuts: str | None) -> dg.ExecuteInProcessResult:
    settings = load_settings()
    if post_cuts is not None:
        settings = dataclasses.replace(settings, post_cuts=parse_post_cuts(post_cuts))
    config = _config()
    config["ops"]["social_posts"] = {"config": {"attempts_per_post": 4, "backoff_base_s": 0.02}}
    return _rematerialize(week, [social_posts], config, settings=settings, **social_resources(fakes))


def test_posting_sends_the_short_to_tiktok_and_reels_and_the_main_cut_to_youtube_by_default(
    cut_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    files = cut_week.finals(tmp_path)
    result = _post(cut_week, fakes, None)
    assert result.success
    assert fakes.youtube.posts[0]["sha256"] == _sha(files["final_landscape.mp4"])
    assert fakes.tiktok.posts[0]["sha256"] == _sha(files["final_short_portrait.mp4"])
    assert fakes.instagram.posts[0]["sha256"] == _sha(files["final_short_portrait.mp4"])
    assert _meta(result, "social_posts")["cuts_posted"] == "youtube=main, tiktok=short, instagram=short"


def test_posting_follows_the_configured_cut_per_platform(
    cut_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    files = cut_week.finals(tmp_path)
    result = _post(cut_week, fakes, "youtube=long,tiktok=main,instagram=short")
    assert result.success
    assert fakes.youtube.posts[0]["sha256"] == _sha(files["final_long_landscape.mp4"])
    assert fakes.tiktok.posts[0]["sha256"] == _sha(files["final_portrait.mp4"])
    assert fakes.instagram.posts[0]["sha256"] == _sha(files["final_short_portrait.mp4"])
    description = fakes.youtube.posts[0]["metadata"]["snippet"]["description"]
    assert "@ace" in description


def test_post_cuts_setting_refuses_what_a_platform_cannot_post() -> None:
    assert dict(parse_post_cuts("")) == {"youtube": "main", "tiktok": "short", "instagram": "short"}
    assert dict(parse_post_cuts("youtube=long")) == {
        "youtube": "long",
        "tiktok": "short",
        "instagram": "short",
    }
    with pytest.raises(SettingsError, match="tiktok cannot post the 'long' cut"):
        parse_post_cuts("tiktok=long")
    with pytest.raises(SettingsError, match="'myspace=main' is not platform=cut"):
        parse_post_cuts("myspace=main")
    with pytest.raises(SettingsError, match="MONTAGE_POST_CUTS"):
        load_settings({"MONTAGE_POST_CUTS": "youtube"})
    with pytest.raises(SettingsError, match=r"MONTAGE_SHORT_DURATION=90 is outside 15\.\.60"):
        load_settings({"MONTAGE_SHORT_DURATION": "90"})


def test_the_long_cut_shows_the_main_cuts_moments_as_the_main_cut_does_and_copies_them(
    cut_week: BuiltWeek,
) -> None:
    """A moment in both cuts is the main cut's span (its source range, to under a frame, and its length
    in beats) in the long cut, and the long render copies such spans from the main landscape file."""
    main = sorted(cut_week.stored_rows("scored_highlights", EditSpan), key=lambda s: s.order)
    long = sorted(cut_week.stored_rows("long_highlights", EditSpan), key=lambda s: s.order)
    by_clip = {s.clip_id: s for s in main}
    both = [s for s in long if s.clip_id in by_clip]
    assert both and len(both) < len(long)  # the long cut has moments of its own too
    for s in both:
        m = by_clip[s.clip_id]
        assert abs(s.source_in_s - m.source_in_s) < 1 / 30 and abs(s.source_out_s - m.source_out_s) < 1 / 30
        assert s.out_beat - s.in_beat == m.out_beat - m.in_beat
    for a, b in itertools.pairwise(long):  # still one contiguous cut on the beat grid
        assert b.montage_in_s == pytest.approx(a.montage_out_s, abs=1e-3)
    fps = 30  # CUT_CONFIG's render rate
    shared = shared_spans(
        render_spans(long, {}), long[0].intro_s, render_spans(main, {}), main[0].intro_s, fps
    )
    copied = _meta(BUILDS[cut_week.bucket], "long_landscape_render")["copied_spans"]
    assert copied == len(shared) >= 1
    assert _meta(BUILDS[cut_week.bucket], "landscape_render")["copied_spans"] == 0


def test_a_long_cut_that_adds_too_little_is_skipped_with_its_reason(cut_week: BuiltWeek) -> None:
    result = _rematerialize(cut_week, [long_highlights], _config(min_gain_s=500.0))
    assert result.success
    assert _meta(result, "long_highlights")["skip_reason"] == "no_gain_over_main"
    assert result.output_for_node("long_highlights") == []


def test_a_thin_week_skips_the_long_cut_and_the_rest_still_runs(
    cut_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    config = _config(min_duration_s=600.0, max_duration_s=600.0)
    config["ops"]["social_posts"] = {"config": {"attempts_per_post": 4, "backoff_base_s": 0.02}}
    settings = dataclasses.replace(load_settings(), post_cuts=parse_post_cuts("youtube=long"))
    result = _rematerialize(
        cut_week,
        [long_highlights, montage_renders, mixed_audio, s3_exports, social_posts],
        config,
        settings=settings,
        **social_resources(fakes),
    )
    assert result.success
    long_meta = _meta(result, "long_highlights")
    assert long_meta["skip_reason"] == "thin_week" and long_meta["dagster/row_count"] == 0
    assert _meta(result, "long_landscape_render")["skip_reason"] == "thin_week"  # an explicit empty cut
    assert _checks(result)["long_landscape_render:meets_platform_spec"] is True
    for asset in ("mixed_audio", "s3_exports", "social_posts"):  # not skipped downstream of it
        _meta(result, asset)
    assert _meta(result, "mixed_audio")["long_cut"] == "skipped: thin_week"
    names = {r.name for r in result.output_for_node("s3_exports")}
    assert "final_long_landscape.mp4" not in names and "thumbnail_long_landscape.jpg" not in names
    assert "final_short_portrait.mp4" in names
    # YouTube was set to the long cut: with none this week, it posts the main cut.
    files = cut_week.finals(tmp_path)
    assert fakes.youtube.posts[0]["sha256"] == _sha(files["final_landscape.mp4"])
    assert _meta(result, "social_posts")["cuts_posted"].startswith("youtube=main")
