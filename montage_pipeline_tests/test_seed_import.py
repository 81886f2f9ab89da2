from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.models import Job, JobKind, JobStatus, Render, SubscriptionTier, User
from montage_pipeline.platform.seed_import import ManifestError, import_engine, import_manifest


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("import_src") / "a.mp4"
    write_clip(path, plan_clip(4.0, 30, seed=5, width=160, height=90))
    return path


def test_import_registers_good_entries_and_reports_bad_ones(db_url: str, tmp_path: Path, clip: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    storage = tmp_path / "storage"
    storage.mkdir()
    manifest = folder / "clips.json"
    manifest.write_text(
        json.dumps(
            [
                {
                    "path": "a.mp4",
                    "user": "@neo",
                    "game": "Apex Legends",
                    "created_at": "2025-01-28T14:03:00Z",
                    "score": 0.7,
                    "views": 120,
                    "likes": 9,
                    "tier": "creator_plus",
                },
                {
                    "path": "a.mp4",
                    "user": "trin",
                    "game": "Apex Legends",
                    "created_at": "2025-01-29T10:00:00+01:00",
                },
                {"path": "gone.mp4", "user": "neo", "game": "X", "created_at": "2025-01-28T14:03:00Z"},
                {"path": "a.mp4", "user": "neo", "game": "X", "created_at": "2025-02-03T00:00:00Z"},
                {"path": "a.mp4", "user": "neo", "game": "X", "created_at": "2025-01-28T14:03:00"},
                {"path": "a.mp4", "user": "neo", "created_at": "2025-01-28T14:03:00Z"},
                {
                    "path": "a.mp4",
                    "user": "neo",
                    "game": "X",
                    "created_at": "2025-01-28T14:03:00Z",
                    "score": 7,
                },
                "not an object",
            ]
        )
    )
    engine = import_engine(db_url)
    with Session(engine) as session, session.begin():
        report = import_manifest(session, storage, "2025-01-27", manifest)
    assert len(report.imported) == 2
    assert [e.split(":")[0] for e in report.errors] == [f"entry {i}" for i in range(2, 8)]
    assert "not found" in report.errors[0]
    assert "outside the week" in report.errors[1]
    assert "no timezone" in report.errors[2]
    assert "missing game" in report.errors[3]
    assert "0..1" in report.errors[4]

    with Session(engine) as session:
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        assert len(jobs) == 2  # nothing half-written for the bad entries
        assert all(j.status == JobStatus.SUCCESS and j.kind == JobKind.UPLOAD for j in jobs)
        assert jobs[0].scoring == {"score": 0.7} and jobs[0].views == 120
        neo = session.scalar(select(User).where(User.handle == "neo"))
        assert neo is not None and neo.subscription_tier == SubscriptionTier.CREATOR_PLUS
        renders = session.scalars(select(Render).order_by(Render.id)).all()
        for render in renders:  # copied inside the storage root, path stored relative to it
            assert not Path(render.path).is_absolute()
            assert (storage / render.path).read_bytes() == clip.read_bytes()
            assert render.duration == pytest.approx(4.0, abs=0.1)
    engine.dispose()


def test_a_manifest_that_is_not_a_list_is_refused(db_url: str, tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text('{"path": "a.mp4"}')
    engine = import_engine(db_url)
    with Session(engine) as session, pytest.raises(ManifestError, match="JSON list"):
        import_manifest(session, tmp_path, "2025-01-27", manifest)
    engine.dispose()


GOOD: dict[str, object] = {"user": "neo", "game": "Apex Legends", "created_at": "2025-01-28T14:03:00Z"}


def _manifest(folder: Path, entries: Sequence[object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "clips.json"
    manifest.write_text(json.dumps(entries))
    return manifest


def _imported_files(storage: Path) -> list[Path]:
    return sorted(p for p in (storage / "imports").rglob("*") if p.is_file()) if storage.exists() else []


def test_paths_must_stay_inside_the_manifest_folder(db_url: str, tmp_path: Path, clip: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(clip.read_bytes())
    (folder / "link.mp4").symlink_to(outside)
    (folder / "sub").mkdir()
    storage = tmp_path / "storage"
    entries = [
        {**GOOD, "path": "a.mp4"},
        {**GOOD, "path": "../secret.mp4"},
        {**GOOD, "path": str(outside)},
        {**GOOD, "path": "link.mp4"},
        {**GOOD, "path": "../../../../../../../../etc/passwd"},
        {**GOOD, "path": "/etc/passwd"},
        {**GOOD, "path": "sub/../a.mp4"},  # climbs, but stays inside
    ]
    manifest = _manifest(folder, entries)
    engine = import_engine(db_url)
    with Session(engine) as session, session.begin():
        report = import_manifest(session, storage, "2025-01-27", manifest)
    assert len(report.imported) == 2
    assert [e.split(":")[0] for e in report.errors] == [f"entry {i}" for i in range(1, 6)]
    assert all("must stay inside" in e for e in report.errors)
    assert [p.read_bytes() == clip.read_bytes() for p in _imported_files(storage)] == [True, True]

    # A configured import root widens the folder: the file next to `drop/` is now allowed.
    with Session(engine) as session, session.begin():
        wider = import_manifest(
            session, storage, "2025-01-27", _manifest(folder, entries[1:2]), import_root=tmp_path
        )
    assert len(wider.imported) == 1 and not wider.errors
    assert len(_imported_files(storage)) == 3
    engine.dispose()


def test_files_over_the_size_cap_are_refused(db_url: str, tmp_path: Path, clip: Path) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    manifest = _manifest(folder, [{**GOOD, "path": "a.mp4"}])
    size = clip.stat().st_size
    engine = import_engine(db_url)
    with Session(engine) as session, session.begin():
        capped = import_manifest(
            session, tmp_path / "storage", "2025-01-27", manifest, max_file_bytes=size - 1
        )
    assert (
        not capped.imported and "import limit" in capped.errors[0] and f"{size:,} bytes" in capped.errors[0]
    )
    assert _imported_files(tmp_path / "storage") == []
    with Session(engine) as session, session.begin():
        fits = import_manifest(session, tmp_path / "storage", "2025-01-27", manifest, max_file_bytes=size)
    assert len(fits.imported) == 1 and not fits.errors
    engine.dispose()


def test_values_the_database_cannot_hold_are_reported_and_skipped(
    db_url: str, tmp_path: Path, clip: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    entry = {**GOOD, "path": "a.mp4"}
    bad = [
        {**entry, "user": "x" * 65},
        {**entry, "views": 2**70},
        {**entry, "likes": -1},
        {**entry, "title": 5},
        {**entry, "title": {"text": "hi"}},
        {**entry, "title": "t" * 256},
        {**entry, "game": "g" * 129},
        {**entry, "game": "Apex\u0000"},
        {**entry, "views": True},
        {**entry, "likes": 1.5},
        {**entry, "score": True},
        {**entry, "user": 42},
        {**entry, "tier": "platinum"},
        {**entry, "tier": ["free"]},
    ]
    manifest = _manifest(folder, [{**entry, "user": "x" * 64}, *bad, {**entry, "title": "ok"}])
    storage = tmp_path / "storage"
    engine = import_engine(db_url)
    with Session(engine) as session, session.begin():
        report = import_manifest(session, storage, "2025-01-27", manifest)
    assert [e.split(":")[0] for e in report.errors] == [f"entry {i}" for i in range(1, len(bad) + 1)]
    assert len(report.imported) == 2
    with Session(engine) as session:
        jobs = session.scalars(select(Job).order_by(Job.id)).all()
        assert [j.title for j in jobs] == ["Apex Legends clip by @" + "x" * 64, "ok"]
        assert session.scalar(select(User.handle).where(User.handle.like("xxx%"))) == "x" * 64
        assert len(session.scalars(select(Render)).all()) == 2
    assert len(_imported_files(storage)) == 2  # files only for the entries that went in
    engine.dispose()


def _refuse_game(engine_url: str, game: str) -> None:
    """A rule of the platform's own database that we do not check: a trigger refusing one game."""
    engine = create_engine(engine_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_game BEFORE INSERT ON jobs "
                    f"WHEN NEW.game = '{game}' BEGIN SELECT RAISE(ABORT, 'game is banned'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_game() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.game = '{game}' THEN RAISE EXCEPTION 'game is banned'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_game BEFORE INSERT ON jobs "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_game()"
                )
            )
    engine.dispose()


def test_an_entry_the_database_refuses_is_skipped_and_gets_no_file(
    db_url: str, tmp_path: Path, clip: Path
) -> None:
    _refuse_game(db_url, "Banned")
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    entries = [
        {**GOOD, "path": "a.mp4", "user": "first"},
        {**GOOD, "path": "a.mp4", "user": "refused", "game": "Banned"},
        {**GOOD, "path": "a.mp4", "user": "last"},
    ]
    storage = tmp_path / "storage"
    engine = import_engine(db_url)
    with Session(engine) as session, session.begin():
        report = import_manifest(session, storage, "2025-01-27", _manifest(folder, entries))
    assert len(report.imported) == 2
    assert len(report.errors) == 1 and report.errors[0].startswith("entry 1: the database refused it")
    assert "game is banned" in report.errors[0]
    with Session(engine) as session:
        assert sorted(session.scalars(select(User.handle))) == ["first", "last"]  # "refused" rolled back
    assert len(_imported_files(storage)) == 2
    engine.dispose()


def test_a_rolled_back_import_leaves_no_rows_and_no_files(db_url: str, tmp_path: Path, clip: Path) -> None:
    """On SQLite too: without real savepoints, each entry's RELEASE would already have committed it."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(clip.read_bytes())
    entries = [{**GOOD, "path": "a.mp4", "user": f"u{i}"} for i in range(3)]
    entries.insert(1, {**GOOD, "path": "a.mp4", "views": -5})
    storage = tmp_path / "storage"
    engine = import_engine(db_url)
    with Session(engine) as session:
        session.begin()
        report = import_manifest(session, storage, "2025-01-27", _manifest(folder, entries))
        assert len(report.imported) == 3 and len(_imported_files(storage)) == 3
        session.rollback()  # e.g. the operator interrupts, or the final commit fails
    with Session(engine) as session:
        assert session.scalars(select(Job)).all() == []
        assert session.scalars(select(User)).all() == []
    assert _imported_files(storage) == []
    engine.dispose()


def test_sqlite_without_real_savepoints_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    manifest = _manifest(tmp_path / "drop", [])
    engine = create_engine(sqlite_url)
    with Session(engine) as session, pytest.raises(ValueError, match="import_engine"):
        import_manifest(session, tmp_path / "storage", "2025-01-27", manifest)
    engine.dispose()
