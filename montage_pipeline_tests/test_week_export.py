"""`publishing/week_export.py` without Dagster: the gate, the week's lock, a generation and the row's switch.

The finals are the shared built week's real `mixed_audio` files, exported here into a fresh platform
database (PostgreSQL and SQLite) and a fresh store (a folder and a bucket on the S3 server), so the
shared week's own export is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import Job, JobStatus, WeeklyMontage
from montage_pipeline.platform.montage_record import WeekLockedError, week_lock
from montage_pipeline.publishing.week_export import (
    EDITOR_FILES,
    ExportGatedError,
    ExportOptions,
    WeekExport,
    export_week,
)
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek

OPTIONS = ExportOptions(week_lock_timeout_s=10.0)
VIDEOS = {"final_landscape.mp4", "final_portrait.mp4", "final_portrait_unbranded.mp4"}


@pytest.fixture(scope="module")
def finals(built_week: BuiltWeek, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return built_week.finals(tmp_path_factory.mktemp("finals"))


@pytest.fixture(scope="module")
def spans(built_week: BuiltWeek) -> list[EditSpan]:
    return built_week.stored_rows("scored_highlights", EditSpan)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def _row_and_job(engine: Engine) -> tuple[WeeklyMontage | None, Job | None]:
    with Session(engine) as s:
        row = s.scalars(select(WeeklyMontage)).one_or_none()
        job = s.get(Job, row.job_id) if row and row.job_id else None
        return row, job


def _thumbnail(store: MediaStore, tmp_path: Path, colour: tuple[int, int, int]) -> None:
    path = tmp_path / f"thumb-{colour}.jpg"
    Image.new("RGB", (64, 36), colour).save(path)
    store.put_file(path, keys.asset_file_key(WEEK, "landscape_render", "thumbnail.jpg"))


def test_a_file_failing_the_gate_is_recorded_and_nothing_is_published(
    engine: Engine, store: MediaStore, finals: dict[str, Path], spans: list[EditSpan], tmp_path: Path
) -> None:
    broken = tmp_path / "final_portrait.mp4"
    broken.write_bytes(finals["final_portrait.mp4"].read_bytes()[:4096])
    with pytest.raises(ExportGatedError) as refused:
        export_week(store, engine, WEEK, {**finals, "final_portrait.mp4": broken}, spans, OPTIONS)
    assert set(refused.value.failures) == {"final_portrait.mp4"}
    assert str(refused.value).startswith(f"not exporting {WEEK}: final_portrait.mp4: unreadable")
    row, job = _row_and_job(engine)
    assert row is not None and row.export_generation is None
    assert job is not None and job.status == JobStatus.FAILED
    assert store.list_keys("exports/") == []


def test_a_week_held_by_another_writer_raises_and_records_nothing(
    engine: Engine, store: MediaStore, finals: dict[str, Path], spans: list[EditSpan]
) -> None:
    short = ExportOptions(week_lock_timeout_s=0.3)
    busy = f"week {WEEK} is being written by another run"
    with week_lock(engine, WEEK, 10), pytest.raises(WeekLockedError, match=busy):
        export_week(store, engine, WEEK, finals, spans, short)
    assert _row_and_job(engine) == (None, None)
    assert store.list_keys("exports/") == []


def test_an_export_publishes_one_generation_and_switches_the_row_to_it(
    engine: Engine, store: MediaStore, finals: dict[str, Path], spans: list[EditSpan], tmp_path: Path
) -> None:
    first = export_week(store, engine, WEEK, finals, spans, OPTIONS)
    # No thumbnails in this fresh store: the videos, the public edit and the editor package only.
    assert {r.name for r in first.rows} == VIDEOS | {"edl.json", *EDITOR_FILES}
    assert all(r.uploaded and r.generation == first.generation for r in first.rows)
    assert all(r.key.startswith(f"exports/{first.job_id}/{first.generation}/") for r in first.rows)
    assert first.clip_count == len({s.clip_id for s in spans}) and first.collected == []
    assert first.featured_user_ids == list(
        dict.fromkeys(s.user_id for s in sorted(spans, key=lambda s: s.order))
    )
    _assert_row_is(engine, first)

    again = export_week(store, engine, WEEK, finals, spans, OPTIONS)  # the same bytes: nothing changes
    assert again.generation == first.generation and not any(r.uploaded for r in again.rows)
    assert again.montage_id == first.montage_id and again.collected == []

    _thumbnail(store, tmp_path, (200, 10, 10))
    second = export_week(store, engine, WEEK, finals, spans, OPTIONS)
    assert "thumbnail_landscape.jpg" in {r.name for r in second.rows}
    assert second.generation != first.generation and second.collected == []  # the replaced one is kept
    _assert_row_is(engine, second)

    _thumbnail(store, tmp_path, (10, 200, 10))
    third = export_week(store, engine, WEEK, finals, spans, OPTIONS)
    assert third.collected and all(f"/{first.generation}/" in k for k in third.collected)
    generations = {k.split("/")[2] for k in store.list_keys(f"exports/{third.job_id}/")}
    assert generations == {second.generation, third.generation}
    _assert_row_is(engine, third)


def _assert_row_is(engine: Engine, export: WeekExport) -> None:
    row, job = _row_and_job(engine)
    assert row is not None and job is not None
    assert (row.id, row.job_id, row.export_generation) == (
        export.montage_id,
        export.job_id,
        export.generation,
    )
    assert job.status == JobStatus.SUCCESS
    assert row.clip_count == export.clip_count and row.featured_user_ids == export.featured_user_ids
    assert row.total_duration == round(export.duration_s, 3)
    by_name = {r.name: r for r in export.rows}
    assert row.render_path_landscape == by_name["final_landscape.mp4"].key
    assert row.render_path_portrait == by_name["final_portrait.mp4"].key
    assert row.export_files == {
        r.name: {"key": r.key, "size_bytes": r.size_bytes, "sha256": r.sha256, "content_type": r.content_type}
        for r in export.rows
    }
