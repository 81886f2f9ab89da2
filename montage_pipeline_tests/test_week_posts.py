"""`publishing/week_posts.py` without Dagster: the week's outbox worked through against the local fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import SocialConnection, SocialPlatform, User
from montage_pipeline.publishing.exports import ExportedFile
from montage_pipeline.publishing.posting import PlatformClient
from montage_pipeline.publishing.tokens import TokenCipher
from montage_pipeline.publishing.week_posts import PostOptions, post_content, post_week
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek
from montage_pipeline_tests.social_support import KEY, Fakes, social_resources, start_fakes

OPTIONS = PostOptions(attempts_per_post=4, backoff_base_s=0.02)


@pytest.fixture(autouse=True)
def _http_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fakes are plain HTTP on 127.0.0.1


@pytest.fixture
def fakes(built_week: BuiltWeek) -> Iterator[Fakes]:
    yield from start_fakes(built_week)


def _clients(fakes: Fakes) -> dict[SocialPlatform, PlatformClient]:
    resources = social_resources(fakes)
    clients = {p: resources[p.value].client() for p in SocialPlatform}
    assert all(c is not None for c in clients.values())
    return clients


def _no_key() -> TokenCipher:
    raise AssertionError("the tokens' key was asked for with every platform off")


def test_each_featured_creator_is_posted_once_per_platform(
    built_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    engine = create_engine(built_week.db_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    files = built_week.finals(tmp_path)
    exports = built_week.stored_rows("s3_exports", ExportedFile)
    spans = built_week.stored_rows("scored_highlights", EditSpan)
    try:

        def run() -> list[str]:
            posts = post_week(
                sessions,
                built_week.store(),
                WEEK,
                _clients(fakes),
                lambda: TokenCipher(KEY),
                exports,
                files,
                spans,
                worker="core-test",
                options=OPTIONS,
            )
            assert posts.open_rows == []
            return sorted(f"{r.platform}:{r.user_handle}:{r.state}" for r in posts.rows)

        done = ["instagram:ace:published", "tiktok:ace:published", "youtube:ace:published"]
        assert run() == done
        assert run() == done  # a second pass finds every post final and posts nothing
        assert [len(f.posts) for f in (fakes.youtube, fakes.tiktok, fakes.instagram)] == [1, 1, 1]
        assert fakes.youtube.posts[0]["thumbnail_bytes"] > 0
    finally:
        engine.dispose()


def test_with_every_platform_off_nothing_is_posted_and_no_key_is_needed(
    built_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    engine = create_engine(built_week.db_url)
    try:
        posts = post_week(
            sessionmaker(engine, expire_on_commit=False),
            built_week.store(),
            WEEK,
            {},
            _no_key,
            built_week.stored_rows("s3_exports", ExportedFile),
            built_week.finals(tmp_path),
            built_week.stored_rows("scored_highlights", EditSpan),
            worker="core-test",
            options=OPTIONS,
        )
    finally:
        engine.dispose()
    assert (posts.rows, posts.targets, posts.added) == ([], 0, 0)
    assert [len(f.posts) for f in (fakes.youtube, fakes.tiktok, fakes.instagram)] == [0, 0, 0]


def test_the_post_content_falls_back_to_the_branded_portrait_and_no_thumbnail(
    built_week: BuiltWeek, tmp_path: Path
) -> None:
    files = built_week.finals(tmp_path)
    exports = built_week.stored_rows("s3_exports", ExportedFile)
    spans = built_week.stored_rows("scored_highlights", EditSpan)
    store = built_week.store()
    full = post_content(WEEK, exports, files, spans, store, 3600, tmp_path)
    assert full.portrait_unbranded == files["final_portrait_unbranded.mp4"]
    assert full.thumbnail is not None and full.thumbnail.stat().st_size > 0
    assert full.title == "Weekly Highlights — Apex week · January 27, 2025" and "@ace" in full.description
    bare = post_content(
        WEEK,
        [e for e in exports if e.name != "thumbnail_landscape.jpg"],
        {n: p for n, p in files.items() if n != "final_portrait_unbranded.mp4"},
        spans,
        store,
        3600,
        tmp_path,
    )
    assert bare.portrait_unbranded == files["final_portrait.mp4"] and bare.thumbnail is None
    assert bare.duration_s == full.duration_s > 0


def _set_handles(engine: Engine, handles: dict[tuple[str, SocialPlatform], str]) -> None:
    with Session(engine) as s, s.begin():
        for (user, platform), handle in handles.items():
            connection = s.scalars(
                select(SocialConnection)
                .join(User, User.id == SocialConnection.user_id)
                .where(User.handle == user, SocialConnection.platform == platform)
            ).one()
            connection.remote_handle = handle


def test_the_theme_and_the_creators_handles_reach_the_platforms(
    built_week: BuiltWeek, fakes: Fakes, tmp_path: Path
) -> None:
    engine = create_engine(built_week.db_url)
    # ace has a known handle on YouTube and TikTok, none on Instagram; dusk's TikTok handle is not in
    # TikTok's alphabet, so dusk is credited by platform handle only, never @mentioned with it.
    _set_handles(
        engine,
        {
            ("ace", SocialPlatform.YOUTUBE): "@AceOnYT",
            ("ace", SocialPlatform.TIKTOK): "ace.tok",
            ("dusk", SocialPlatform.TIKTOK): "dusk<script>",
        },
    )
    clients = _clients(fakes)
    # Direct posting: TikTok takes the title (an inbox upload leaves the text to the creator).
    direct = social_resources(fakes)["tiktok"].model_copy(update={"mode": "direct"}).client()
    assert direct is not None
    clients[SocialPlatform.TIKTOK] = direct
    try:
        posts = post_week(
            sessionmaker(engine, expire_on_commit=False),
            built_week.store(),
            WEEK,
            clients,
            lambda: TokenCipher(KEY),
            built_week.stored_rows("s3_exports", ExportedFile),
            built_week.finals(tmp_path),
            built_week.stored_rows("scored_highlights", EditSpan),
            worker="theme-test",
            options=OPTIONS,
        )
    finally:
        engine.dispose()
    assert posts.open_rows == []
    snippet = fakes.youtube.posts[0]["metadata"]["snippet"]
    assert snippet["title"] == "Weekly Highlights — Apex week · January 27, 2025"
    assert "This week's theme: Apex." in snippet["description"]
    assert "On YouTube: @AceOnYT" in snippet["description"] and "ace.tok" not in snippet["description"]
    tiktok_title = fakes.tiktok.posts[0]["metadata"]["post_info"]["title"]
    assert "Apex week" in tiktok_title and tiktok_title.endswith(" @ace.tok")
    assert "script" not in tiktok_title and "<" not in tiktok_title
    caption = fakes.instagram.posts[0]["metadata"]["caption"]
    assert "Apex week" in caption and "AceOnYT" not in caption and "ace.tok" not in caption
