"""The `montage` command's guards: only asset tables can be dropped; imports stay in their folder and cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from montage_pipeline.cli import asset_tables, main
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.models import Job


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
