"""`social_posts` against the local fake platforms: exactly one post per platform, whatever fails."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from montage_pipeline.platform.models import PostState, SocialConnection, SocialPlatform, SocialPost
from montage_pipeline.publishing.tokens import TokenCipher
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek
from montage_pipeline_tests.social_support import KEY, Fakes, post_week, start_fakes

YT, TT, IG = SocialPlatform.YOUTUBE, SocialPlatform.TIKTOK, SocialPlatform.INSTAGRAM


@pytest.fixture(autouse=True)
def _http_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests-oauthlib refuses http:// unless told it is a test: the fakes are plain HTTP on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def week(built_week: BuiltWeek) -> BuiltWeek:
    return built_week


@pytest.fixture
def fakes(week: BuiltWeek) -> Iterator[Fakes]:
    yield from start_fakes(week)


def _posts(week: BuiltWeek) -> dict[SocialPlatform, SocialPost]:
    with week.session() as s:
        return {p.platform: p for p in s.scalars(select(SocialPost)).all()}


def _sha(week: BuiltWeek, name: str) -> str:
    return hashlib.sha256((week.cache / "weeks" / WEEK / "mixed_audio" / name).read_bytes()).hexdigest()


def test_each_platform_gets_exactly_one_post_of_the_right_file(week: BuiltWeek, fakes: Fakes) -> None:
    result = post_week(week, fakes)
    assert result.success
    for fake in (fakes.youtube, fakes.tiktok, fakes.instagram):
        assert [p["account_id"].split("-")[0] for p in fake.posts] == ["ace"]  # only the opted-in Creator+
    assert fakes.youtube.posts[0]["sha256"] == _sha(week, "final_landscape.mp4")
    assert fakes.tiktok.posts[0]["sha256"] == _sha(week, "final_portrait_unbranded.mp4")  # no branding
    assert fakes.instagram.posts[0]["sha256"] == _sha(week, "final_portrait.mp4")
    assert fakes.tiktok.posts[0]["metadata"]["mode"] == "inbox"  # a draft, the default
    meta = fakes.youtube.posts[0]["metadata"]
    assert meta["status"]["privacyStatus"] == "unlisted"
    assert meta["snippet"]["title"] == "Weekly Highlights — Apex week · January 27, 2025"
    assert "@ace" in meta["snippet"]["description"]
    assert fakes.youtube.posts[0]["thumbnail_bytes"] > 0
    posts = _posts(week)
    assert {p: posts[p].state for p in posts} == {
        YT: PostState.PUBLISHED,
        TT: PostState.PUBLISHED,
        IG: PostState.PUBLISHED,
    }
    assert (posts[YT].url or "").startswith("https://www.youtube.com/watch?v=")
    assert "instagram.com/reel/" in (posts[IG].url or "")
    rows = result.output_for_node("social_posts")
    assert {r.state for r in rows} == {"published"} and len(rows) == 3
    meta_out = result.asset_materializations_for_node("social_posts")[0].metadata
    assert meta_out["posts_succeeded"].value == 3 and meta_out["posts_failed"].value == 0

    again = post_week(week, fakes)  # a rerun posts nothing new
    assert again.success
    assert [len(f.posts) for f in (fakes.youtube, fakes.tiktok, fakes.instagram)] == [1, 1, 1]


FAULTS = ["500", "429", "drop", "lost_response", "expire_token"]
# Where each platform is hit: the step that creates the remote object or sends the bytes.
STEPS = {
    YT: [("POST", "/upload/youtube/v3/videos"), ("PUT", "/upload/youtube/v3/videos")],
    TT: [("POST", "/inbox/video/init/"), ("PUT", "/upload/")],
    IG: [("POST", "/media"), ("POST", "/media_publish")],
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("platform", [YT, TT, IG])
def test_every_fault_ends_with_exactly_one_post(
    week: BuiltWeek, fakes: Fakes, platform: SocialPlatform, fault: str
) -> None:
    fake = fakes.of(platform)
    for method, path in STEPS[platform]:
        if fault == "expire_token" and path == "/upload/":
            continue  # TikTok's upload URL carries no token
        fake.inject(fault, method=method, path_contains=path)
    enabled = {p.value: p == platform for p in (YT, TT, IG)}
    result = post_week(week, fakes, enabled=enabled)
    assert result.success
    post = _posts(week)[platform]
    if (platform, fault) == (IG, "expire_token"):
        # An expired long-lived Instagram token cannot be refreshed (only live ones can): the post
        # stops at once with a state that says what to do, and nothing is posted twice or half.
        assert not fake.posts
        assert post.state == PostState.FAILED and "reconnect" in (post.last_error or "")
        return
    assert len(fake.posts) == 1, fake.requests_log
    assert post.state == PostState.PUBLISHED
    assert post.claimed_by is None  # the lease was given back
    assert not fake.faults  # every injected fault was met


def test_a_crash_mid_upload_resumes_the_same_session(week: BuiltWeek, fakes: Fakes) -> None:
    # Every chunk fails for the whole first run: the session URL is saved, nothing is posted.
    fakes.youtube.inject("drop", method="PUT", path_contains="/upload/youtube/v3/videos", times=1000)
    first = post_week(week, fakes, enabled={"tiktok": False, "instagram": False}, raise_on_error=False)
    assert not first.success
    post = _posts(week)[YT]
    assert post.state == PostState.UPLOADING and post.remote_handle and not fakes.youtube.posts
    fakes.youtube.faults.clear()
    second = post_week(week, fakes, enabled={"tiktok": False, "instagram": False})
    assert second.success
    starts = [r for r in fakes.youtube.requests_log if r[0] == "POST" and r[1].endswith("/videos")]
    assert len(starts) == 1  # no second upload session: the retry resumed the saved one
    assert len(fakes.youtube.posts) == 1


def test_quota_and_limits_stop_a_post_with_a_clear_state(week: BuiltWeek, fakes: Fakes) -> None:
    fakes.youtube.inject("quota", method="POST", path_contains="/upload/youtube/v3/videos", times=10)
    fakes.instagram.quota_total = 0
    result = post_week(week, fakes, enabled={"tiktok": False})
    assert result.success  # the week is published; the posts say why they failed
    posts = _posts(week)
    assert posts[YT].state == PostState.FAILED and "quotaExceeded" in (posts[YT].last_error or "")
    assert posts[IG].state == PostState.FAILED and "publishing_limit" in (posts[IG].last_error or "")
    starts = [r for r in fakes.youtube.requests_log if r[0] == "POST" and r[1].endswith("/videos")]
    assert len(starts) == 1  # no retry storm against a spent quota
    meta = result.asset_materializations_for_node("social_posts")[0].metadata
    assert meta["posts_failed"].value == 2


def test_tokens_refresh_before_expiry_and_tiktoks_rotation_is_stored(week: BuiltWeek) -> None:
    from datetime import timedelta

    for fakes in start_fakes(week, expires_in=timedelta(seconds=30)):  # inside the refresh margin
        old = fakes.tokens[("ace", TT)]["refresh_token"]
        assert post_week(week, fakes).success
        cipher = TokenCipher(KEY)
        with week.session() as s:
            conn = s.scalars(
                select(SocialConnection).where(
                    SocialConnection.platform == TT, SocialConnection.account_id == "ace-tiktok"
                )
            ).one()
            stored_refresh = cipher.decrypt(conn.refresh_token_encrypted or b"")
            stored_access = cipher.decrypt(conn.access_token_encrypted or b"")
        assert stored_refresh != old and stored_refresh in fakes.tiktok.refresh_tokens  # the rotated one
        assert old not in fakes.tiktok.refresh_tokens
        assert fakes.tiktok.account_for(stored_access) == "ace-tiktok"
        assert [len(f.posts) for f in (fakes.youtube, fakes.tiktok, fakes.instagram)] == [1, 1, 1]


def test_no_secret_reaches_logs_metadata_or_errors(
    week: BuiltWeek, fakes: Fakes, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for refreshing in (fakes.youtube, fakes.tiktok):
        refreshing.inject("expire_token")  # refreshed: the new tokens must stay out of sight too
    for fake in (fakes.youtube, fakes.tiktok, fakes.instagram):
        fake.inject("500", times=2)
    fakes.instagram.quota_total = 0  # one post fails, with its error stored
    result = post_week(week, fakes)
    out, err = capfd.readouterr()
    captured = caplog.text + out + err
    records = "".join(str(e) for e in result.all_events)
    with week.session() as s:
        errors = " ".join(p.last_error or "" for p in s.scalars(select(SocialPost)).all())
    assert "publishing_limit" in errors
    for secret in fakes.all_secrets():
        assert secret not in captured
        assert secret not in records
        assert secret not in errors
