"""The `montage` command's guards: only asset tables can be dropped; imports stay in their folder and cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from montage_pipeline.cli import asset_tables, main
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.models import (
    Job,
    PostState,
    SocialConnection,
    SocialPlatform,
    SocialPost,
    SubscriptionTier,
    User,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded profile in a temp folder, migrated."""
    for var in ("MONTAGE_PROFILE", "MONTAGE_STORAGE_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MONTAGE_HOME", str(tmp_path / "home"))
    assert main(["db", "upgrade"]) == 0
    return tmp_path / "home"


def _tables(home: Path) -> set[str]:
    engine = create_engine(f"sqlite:///{home / 'platform.sqlite'}")
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_asset_tables_are_the_table_io_managers_tables() -> None:
    tables = asset_tables()
    assert {"montage_eligible_jobs", "montage_selected_clips", "montage_social_posts"} <= set(tables)
    assert "montage_notifications" not in tables  # a platform table with the asset prefix
    assert not any(t.startswith("montage_landscape_render") for t in tables)  # media, not a table


def test_drop_table_refuses_platform_tables(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = create_engine(f"sqlite:///{home / 'platform.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE montage_selected_clips (id INTEGER)"))
    engine.dispose()
    for table in ("montage_notifications", "montage_anything", "users", "alembic_version"):
        assert main(["db", "drop-table", table]) == 2
        assert "not an asset table" in capsys.readouterr().err
    assert {"montage_notifications", "users", "montage_selected_clips"} <= _tables(home)
    assert main(["db", "drop-table", "montage_selected_clips"]) == 0
    assert "dropped montage_selected_clips" in capsys.readouterr().out
    assert "montage_selected_clips" not in _tables(home) and "montage_notifications" in _tables(home)


def test_seed_import_takes_an_import_root_and_a_size_cap(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = tmp_path / "uploads" / "drop"
    drop.mkdir(parents=True)
    clip = tmp_path / "uploads" / "a.mp4"  # next to the manifest's folder, not in it
    write_clip(clip, plan_clip(3.5, 30, seed=2, width=96, height=54))
    manifest = drop / "clips.json"
    entry = {"path": "../a.mp4", "user": "neo", "game": "X", "created_at": "2025-01-28T14:03:00Z"}
    manifest.write_text(json.dumps([entry]))
    args = ["seed", "import", "--week", "2025-01-27", "--manifest", str(manifest)]

    assert main(args) == 0
    assert "imported 0 jobs, 1 entries rejected" in capsys.readouterr().out
    wider = [*args, "--import-root", str(tmp_path / "uploads")]
    size_mb = clip.stat().st_size / 1_000_000
    assert main([*wider, "--max-file-mb", f"{size_mb * 0.9:.6f}"]) == 0
    assert "import limit" in capsys.readouterr().out
    assert main([*wider, "--max-file-mb", f"{size_mb * 1.1:.6f}"]) == 0
    assert "imported 1 jobs, 0 entries rejected" in capsys.readouterr().out
    engine = create_engine(f"sqlite:///{home / 'platform.sqlite'}")
    with Session(engine) as session:
        assert len(session.scalars(select(Job)).all()) == 1
    engine.dispose()
    with pytest.raises(SystemExit):
        main([*wider, "--max-file-mb", "0"])


def test_posts_lists_retries_and_records_what_an_admin_found(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(f"sqlite:///{home / 'platform.sqlite'}")
    with Session(engine) as s, s.begin():
        user = User(handle="ace", email="ace@example.com", subscription_tier=SubscriptionTier.CREATOR_PLUS)
        s.add(user)
        s.flush()
        ids = []
        for platform in (SocialPlatform.YOUTUBE, SocialPlatform.TIKTOK):
            conn = SocialConnection(user_id=user.id, platform=platform, account_id=f"ace-{platform.value}")
            s.add(conn)
            s.flush()
            post = SocialPost(
                week_start=datetime(2025, 1, 27, tzinfo=UTC),
                platform=platform,
                connection_id=conn.id,
                state=PostState.FAILED,
                attempts=3,
                remote_handle="https://upload.example/session",
                last_error="needs_admin: the youtube upload session expired after video bytes were sent",
            )
            s.add(post)
            s.flush()
            ids.append(post.id)
    yt, tt = ids
    assert main(["posts", "list", "--week", "2025-01-27"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:5] for line in listed] == [
        [str(yt), "2025-01-27", "youtube", "ace-youtube", "failed"],
        [str(tt), "2025-01-27", "tiktok", "ace-tiktok", "failed"],
    ]
    assert "needs_admin" in listed[0]

    assert main(["posts", "mark-published", str(yt), "vid123"]) == 0
    assert "https://www.youtube.com/watch?v=vid123" in capsys.readouterr().out
    assert main(["posts", "retry", str(tt)]) == 0
    assert main(["posts", "retry", str(yt)]) == 2
    assert "already published" in capsys.readouterr().err
    assert main(["posts", "retry", "999999"]) == 2
    assert "no post 999999" in capsys.readouterr().err
    with Session(engine) as s:
        youtube, tiktok = s.get(SocialPost, yt), s.get(SocialPost, tt)
        assert youtube is not None and tiktok is not None
        assert (youtube.state, youtube.remote_id) == (PostState.PUBLISHED, "vid123")
        assert (tiktok.state, tiktok.attempts, tiktok.remote_handle) == (PostState.PENDING, 0, None)
    assert main(["posts", "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [str(tt)]
    engine.dispose()
