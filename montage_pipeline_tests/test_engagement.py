"""The engagement loop end to end: a posted week read from the fakes over a simulated month by the daily
schedule, one failing post isolated, and the next week's prior moved by what drew viewers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import select

from montage_pipeline.defs.assets.engagement import post_engagement
from montage_pipeline.defs.assets.publish import s3_exports, social_posts
from montage_pipeline.defs.automation import weekly_montage_schedule
from montage_pipeline.defs.engagement_automation import engagement_schedule
from montage_pipeline.defs.resources.social import TikTokResource
from montage_pipeline.highlights.engagement_prior import CEIL, Exposure, load_prior
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import (
    EngagementExposure,
    PostEngagement,
    PostState,
    SocialConnection,
    SocialPlatform,
    SocialPost,
)
from montage_pipeline.publishing.engagement import PostMeasurement, store
from montage_pipeline.publishing.errors import PermanentPostError, TokenExpiredError, TransientPostError
from montage_pipeline.publishing.instagram import InstagramClient
from montage_pipeline.publishing.stats import Counts, InstagramStats, NotFoundError, TikTokStats, YouTubeStats
from montage_pipeline.publishing.tiktok import TikTokClient
from montage_pipeline.publishing.youtube import YouTubeClient
from montage_pipeline.weeks import week_row_key
from montage_pipeline_tests.fake_social import InstagramFake, TikTokFake, YouTubeFake
from montage_pipeline_tests.publish_support import BUILT, WEEK, BuiltWeek
from montage_pipeline_tests.social_support import Fakes, social_resources, start_fakes

POSTED = date(2025, 2, 3)  # the Monday WEEK ended: its posts go out that day
EARLIER_WEEK = "2025-01-20"


@pytest.fixture
def fakes(built_week: BuiltWeek, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fakes speak plain HTTP on 127.0.0.1
    yield from start_fakes(built_week)


def _resources(week: BuiltWeek, fakes: Fakes) -> dict[str, Any]:
    social = social_resources(fakes)
    # Posted publicly (not as an inbox draft): only a public TikTok has a video id to read.
    social["tiktok"] = TikTokResource(
        enabled=True,
        client_key="test-client-id",
        client_secret="test-client-secret",
        api_url=fakes.tiktok.url,
        mode="direct",
        privacy_level="PUBLIC_TO_EVERYONE",
        chunk_bytes=128 * 1024,
        min_chunk_bytes=64 * 1024,
        poll_interval_s=0.05,
    )
    return week.resources(**social)


def _measure(
    week: BuiltWeek, fakes: Fakes, request: dg.RunRequest, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    config = request.run_config["ops"]["post_engagement"]["config"]
    return dg.materialize(
        [*BUILT, s3_exports, social_posts, post_engagement],
        selection=[post_engagement],
        partition_key=request.partition_key,
        resources=_resources(week, fakes),
        run_config={"ops": {"post_engagement": {"config": {**config, "backoff_base_s": 0.01}}}},
        instance=instance,
    )


def _ticks(days: list[date]) -> dict[date, list[dg.RunRequest]]:
    """The run requests of the engagement schedule's 06:00 tick on each day, evaluated as the daemon does."""
    from montage_pipeline.definitions import defs

    schedule, repository = defs.get_schedule_def("engagement_schedule"), defs.get_repository_def()
    found: dict[date, list[dg.RunRequest]] = {}
    for day in days:
        tick = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)
        context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repository)
        found[day] = list(schedule.evaluate_tick(context).run_requests or [])
    return found


def test_the_schedule_asks_for_a_week_on_each_of_the_thirty_days_after_it_was_posted() -> None:
    assert engagement_schedule.cron_schedule == "0 6 * * *"
    # It starts on or off with the weekly schedule (MONTAGE_SCHEDULE_DEFAULT_STATUS).
    assert engagement_schedule.default_status == weekly_montage_schedule.default_status
    ticks = _ticks([POSTED + timedelta(days=d) for d in range(-3, 40)])
    asked = [day for day, requests in ticks.items() if WEEK in [r.partition_key for r in requests]]
    assert asked == [POSTED + timedelta(days=d) for d in range(30)]
    # On 2025-02-10 the weeks that ended 0..29 days earlier: from the one ended 2025-01-13 on.
    weeks = _ticks([date(2025, 2, 10)])[date(2025, 2, 10)]
    assert [r.partition_key for r in weeks] == [
        "2025-01-06",
        "2025-01-13",
        "2025-01-20",
        "2025-01-27",
        "2025-02-03",
    ]
    assert {r.run_config["ops"]["post_engagement"]["config"]["day"] for r in weeks} == {"2025-02-10"}


def test_the_readers_speak_each_platforms_statistics_protocol() -> None:
    youtube, tiktok, instagram = (YouTubeFake().start(), TikTokFake().start(), InstagramFake().start())
    try:
        yt_token = youtube.issue_tokens("ace-youtube")["access_token"]
        youtube.videos["vid1"] = {"kind": "youtube#video", "id": "vid1"}
        youtube.audience.audience["vid1"] = 9_000
        youtube.audience.clock = time.time()
        youtube.audience.publish("vid1")
        reader = YouTubeStats(YouTubeClient(youtube.url, f"{youtube.url}/token", "test-client-id", "s"))
        youtube.audience.advance(3)
        first = reader.read(yt_token, "ace-youtube", ["vid1", "gone"])
        youtube.audience.advance(3)
        later = reader.read(yt_token, "ace-youtube", ["vid1"])
        assert isinstance(first["vid1"], Counts) and isinstance(later["vid1"], Counts)
        assert 0 < first["vid1"].views < later["vid1"].views <= 9_000  # grows toward the audience
        assert later["vid1"].likes > 0 and later["vid1"].comments > 0
        assert isinstance(first["gone"], NotFoundError)  # missing from items: that video alone
        youtube.inject("429", retry_after=7)
        with pytest.raises(TransientPostError) as limited:
            reader.read(yt_token, "ace-youtube", ["vid1"])
        assert limited.value.retry_after_s == 7
        youtube.expire_access_tokens()
        with pytest.raises(TokenExpiredError):
            reader.read(yt_token, "ace-youtube", ["vid1"])

        tt_token = tiktok.issue_tokens("ace-tiktok")["access_token"]
        tt_reader = TikTokStats(TikTokClient(tiktok.url, "test-client-id", "s"))
        with pytest.raises(PermanentPostError):  # TikTok's own limit: 20 ids a query
            tt_reader.read(tt_token, "ace-tiktok", [str(i) for i in range(21)])
        assert isinstance(tt_reader.read(tt_token, "ace-tiktok", ["123"])["123"], NotFoundError)

        ig_token = instagram.issue_tokens("ace-instagram")["access_token"]
        ig_reader = InstagramStats(InstagramClient(instagram.url, instagram.url))
        assert isinstance(ig_reader.read(ig_token, "ace-instagram", ["1789"])["1789"], NotFoundError)
    finally:
        for fake in (youtube, tiktok, instagram):
            fake.stop()


def _rows(week: BuiltWeek) -> list[PostEngagement]:
    with week.session() as s:
        return list(
            s.scalars(select(PostEngagement).order_by(PostEngagement.social_post_id, PostEngagement.day))
        )


def test_a_posted_week_is_read_daily_for_thirty_days_and_steers_the_next_week(
    built_week: BuiltWeek, fakes: Fakes
) -> None:
    week = built_week
    posted = dg.materialize(
        [*BUILT, s3_exports, social_posts],
        selection=[social_posts],
        partition_key=WEEK,
        resources=_resources(week, fakes),
        run_config={"ops": {"social_posts": {"config": {"attempts_per_post": 4, "backoff_base_s": 0.02}}}},
    )
    assert posted.success
    with week.session() as s:
        posts = {
            p.platform: p
            for p in s.scalars(select(SocialPost).where(SocialPost.state == PostState.PUBLISHED))
        }
    assert set(posts) == set(SocialPlatform)
    ig_media = posts[SocialPlatform.INSTAGRAM].remote_id
    assert ig_media is not None
    for fake in (fakes.youtube, fakes.tiktok, fakes.instagram):
        fake.audience.default_audience = 50_000
        fake.audience.clock = time.time()

    requested: list[date] = []
    last: dg.ExecuteInProcessResult | None = None
    ticks = _ticks([POSTED + timedelta(days=d) for d in range(35)])
    for day, (today, requests) in enumerate(ticks.items()):
        for fake in (fakes.youtube, fakes.tiktok, fakes.instagram):
            fake.audience.clock = time.time() + day * 86400  # the platforms' clock: `day` days after posting
        if day == 5:
            fakes.youtube.inject("429", method="GET", path_contains="/youtube/v3/videos", retry_after=0)
        if day == 10:
            fakes.instagram.delete_media(ig_media)  # the creator deleted the reel
        if day == 15:  # the platforms refuse every token issued so far: refreshed, then read
            fakes.youtube.expire_access_tokens()
            fakes.tiktok.expire_access_tokens()
        for request in requests:
            if request.partition_key != WEEK:
                continue
            requested.append(today)
            last = _measure(week, fakes, request)
            assert last.success

    # Requested every day for 30 days from the day the week was posted, never after.
    assert requested == [POSTED + timedelta(days=d) for d in range(30)]
    rows = _rows(week)
    by_platform: dict[str, list[PostEngagement]] = {}
    for r in rows:
        by_platform.setdefault(r.platform, []).append(r)
    assert {p: len(v) for p, v in by_platform.items()} == {"youtube": 30, "tiktok": 30, "instagram": 30}
    for platform in ("youtube", "tiktok"):
        views = [r.views or 0 for r in by_platform[platform]]
        assert all(r.views is not None for r in by_platform[platform])
        assert views == sorted(views) and views[-1] > views[0]  # growing, day after day
        assert [r.day for r in by_platform[platform]] == requested
    instagram = by_platform["instagram"]
    assert all(r.views is not None and r.error is None for r in instagram[:10])
    assert all(r.views is None and "not_found" in (r.error or "") for r in instagram[10:])

    assert last is not None
    metadata = last.asset_materializations_for_node("post_engagement")[0].metadata
    assert metadata["posts_measured"].value == 2
    assert metadata["posts_failed"].value == 1
    last_views = (by_platform["youtube"][-1].views or 0) + (by_platform["tiktok"][-1].views or 0)
    assert metadata["views"].value == last_views
    assert metadata["post_success_rate"].value == 1.0
    assert metadata["clips_per_montage"].value == float(
        len(built_week.stored_rows("scored_highlights", EditSpan))
    )

    # No token reaches the stored errors or the run's events.
    events = "".join(str(e) for e in last.all_events)
    for secret in fakes.all_secrets():
        assert all(secret not in (r.error or "") for r in rows)
        assert secret not in events

    # A rerun of the last day replaces its rows: nothing is counted twice. On an instance that holds
    # the week's render, its render time is plotted beside the engagement.
    with dg.instance_for_test() as instance:
        render = dg.AssetMaterialization(
            "landscape_render", partition=WEEK, metadata={"render_seconds": 12.5}
        )
        instance.report_runless_asset_event(render)
        again = _measure(
            week,
            fakes,
            dg.RunRequest(
                partition_key=WEEK,
                run_config={"ops": {"post_engagement": {"config": {"day": requested[-1].isoformat()}}}},
            ),
            instance,
        )
    assert again.success
    assert len(_rows(week)) == len(rows)
    assert (
        again.asset_materializations_for_node("post_engagement")[0].metadata["render_seconds"].value == 12.5
    )

    # An earlier week featured another game and drew a tenth of the viewers.
    _an_earlier_quieter_week(week)
    with week.session() as s:
        exposure = {
            (e.kind, e.value)
            for e in s.scalars(
                select(EngagementExposure).where(EngagementExposure.week_start == week_row_key(WEEK))
            )
        }
        assert ("game", "Apex") in exposure
        prior = load_prior(s, "2025-02-03")
    apex, doom = prior.factors[("game", "Apex")], prior.factors[("game", "Doom")]
    assert 1.0 < apex <= CEIL
    assert doom < 1.0
    assert prior.factor("Apex", 0, "calm") == apex


def _an_earlier_quieter_week(week: BuiltWeek) -> None:
    """Week 2025-01-20: a Doom montage posted on the same accounts, with 5,000 views per post."""
    week_start = week_row_key(EARLIER_WEEK)
    with week.session() as s, s.begin():
        measured = []
        for platform in SocialPlatform:
            conn = s.scalars(
                select(SocialConnection).where(
                    SocialConnection.platform == platform, SocialConnection.account_id.like("ace-%")
                )
            ).one()
            post = SocialPost(
                week_start=week_start, platform=platform, connection_id=conn.id, state=PostState.PUBLISHED
            )
            s.add(post)
            s.flush()
            measured += [
                PostMeasurement(
                    post.id,
                    platform.value,
                    conn.id,
                    "x",
                    date(2025, 1, 27) + timedelta(days=d),
                    5_000,
                    300,
                    50,
                    None,
                )
                for d in range(30)
            ]
        store(s, week_start, measured)
        for e in (Exposure("game", "Doom", 1.0, 5),):
            s.add(
                EngagementExposure(
                    week_start=week_start, kind=e.kind, value=e.value, share=e.share, clips=e.clips
                )
            )
