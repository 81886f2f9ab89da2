from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.models import Job, JobKind, JobStatus, Render, SubscriptionTier, User
from montage_pipeline.platform.seed_import import ManifestError, import_manifest


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
    engine = create_engine(db_url)
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
    engine = create_engine(db_url)
    with Session(engine) as session, pytest.raises(ManifestError, match="JSON list"):
        import_manifest(session, tmp_path, "2025-01-27", manifest)
    engine.dispose()
