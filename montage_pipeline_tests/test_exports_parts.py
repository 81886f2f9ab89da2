"""The parts of publishing a week that need no built week: the week lock, the migration of old rows,
the public EDL, generations in a store, and the read API minting URLs from keys."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from dagster_aws.s3 import S3Resource
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from montage_pipeline.api.app import create_app
from montage_pipeline.defs.resources.media_store import S3MediaStoreResource
from montage_pipeline.highlights.edl_export import PRIVATE_SPAN_FIELDS, edl_document, to_otio
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.models import WeeklyMontage
from montage_pipeline.platform.montage_record import WeekLockedError, week_lock
from montage_pipeline.publishing.exports import (
    ExportFile,
    collect_garbage,
    export_url,
    publish_generation,
)
from montage_pipeline.storage.media_store import MediaStore, S3MediaStore
from montage_pipeline_tests.test_api import MONTAGE_KEYS, serving

WEEK = "2025-01-27"


def test_the_week_lock_admits_one_writer_at_a_time(db_url: str) -> None:
    engine = create_engine(db_url)
    acquired = threading.Event()

    def second() -> None:
        with week_lock(engine, WEEK, 120):
            acquired.set()

    try:
        with week_lock(engine, WEEK, 5):
            busy = f"week {WEEK} is being written by another run"
            with pytest.raises(WeekLockedError, match=busy), week_lock(engine, WEEK, 0.2):
                pass
            with week_lock(engine, "2025-02-03", 0.2):  # another week is free
                pass
            waiter = threading.Thread(target=second, daemon=True)
            waiter.start()
            assert not acquired.is_set()  # cannot have it while we hold it
        waiter.join(120)
        assert acquired.is_set()
        with week_lock(engine, WEEK, 0.2):  # released by both
            pass
    finally:
        engine.dispose()


def test_a_failed_holder_releases_the_week(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with pytest.raises(RuntimeError, match="boom"), week_lock(engine, WEEK, 5):
            raise RuntimeError("boom")
        with week_lock(engine, WEEK, 0.2):
            pass
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
def test_the_migration_turns_stored_presigned_urls_into_keys(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(backend)
    upgrade(url, "0004")
    presigned = (
        "http://127.0.0.1:9000/media-abc/montage/exports/12/final_landscape.mp4"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604800&X-Amz-Signature=abc123"
    )
    public = "https://cdn.example.com/montage/exports/12/final_portrait.mp4"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO weekly_montages (week_start, render_path_landscape, render_path_portrait, "
                    "is_featured, created_at) VALUES (:week, :landscape, :portrait, :featured, :created)"
                ),
                {
                    "week": datetime(2025, 1, 27),
                    "landscape": presigned,
                    "portrait": public,
                    "featured": False,
                    "created": datetime(2025, 2, 1),
                },
            )
        upgrade(url)
        with Session(engine) as s:
            row = s.scalars(select(WeeklyMontage)).one()
            assert row.render_path_landscape == "exports/12/final_landscape.mp4"  # presigned to its key
            assert row.render_path_portrait == public  # a URL that does not expire stays
            assert row.export_generation is None and row.export_files is None
    finally:
        engine.dispose()


def _span(order: int, source: Path) -> EditSpan:
    return EditSpan(
        order=order,
        clip_id=f"clip-{order}",
        job_id=4000 + order,
        user_id=7000 + order,
        user_handle=f"user{order}",
        game="Apex",
        source_path=str(source),
        source_sha256="f" * 64,
        source_in_s=1.0,
        source_out_s=4.0,
        montage_in_s=2.0 + 3 * order,
        montage_out_s=5.0 + 3 * order,
        peak_source_s=2.5,
        peak_montage_s=3.5 + 3 * order,
        peak_on_downbeat=True,
        in_beat=0,
        out_beat=4,
        tempo_bpm=120.0,
        beat_s=0.5,
        intro_s=2.0,
        score=0.8,
        score_breakdown={"motion": 0.5},
        credit=f"@user{order} · Apex",
        transition_in="cut",
        transition_s=0.0,
        source_fps=30.0,
        source_width=1920,
        source_height=1080,
        source_rotation=0,
        source_has_audio=True,
    )


def test_the_public_edit_keeps_the_edit_and_drops_paths_and_ids(tmp_path: Path) -> None:
    spans = [_span(i, tmp_path / "storage" / f"user{i}" / "clip.mp4") for i in range(3)]
    public = json.dumps(edl_document(WEEK, spans, public=True))
    otio_public = to_otio(WEEK, spans, public=True).to_json_string()
    for body in (public, otio_public):
        assert str(tmp_path) not in body and "file://" not in body
        for span in spans:
            assert f'"{span.clip_id}"' not in body
            assert str(span.job_id) not in body and str(span.user_id) not in body
    doc = json.loads(public)
    assert all(not PRIVATE_SPAN_FIELDS & set(s) for s in doc["spans"])
    assert [s["credit"] for s in doc["spans"]] == [s.credit for s in spans]
    assert [s["montage_in_s"] for s in doc["spans"]] == [s.montage_in_s for s in spans]
    # The pipeline's own copy still names the sources.
    internal = json.dumps(edl_document(WEEK, spans))
    assert str(spans[0].source_path) in internal and str(spans[0].user_id) in internal
    assert Path(spans[0].source_path).resolve().as_uri() in to_otio(WEEK, spans).to_json_string()


def _files(tmp_path: Path, tag: str) -> list[ExportFile]:
    out = []
    for name in ("final_landscape.mp4", "final_portrait.mp4", "edl.json"):
        path = tmp_path / tag / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{tag}:{name}".encode() * 100)
        out.append(ExportFile(name, path, "application/octet-stream", "public"))
    return out


def test_generations_are_content_addressed_and_collected(store: MediaStore, tmp_path: Path) -> None:
    first = publish_generation(store, 12, _files(tmp_path, "a"))
    again = publish_generation(store, 12, _files(tmp_path, "a"))
    assert again.generation == first.generation and not any(f.uploaded for f in again.files)
    second = publish_generation(store, 12, _files(tmp_path, "b"))
    assert second.generation != first.generation and all(f.uploaded for f in second.files)
    for gen in (first, second):
        for f in gen.files:
            assert f.key == f"exports/12/{gen.generation}/{f.name}"
            assert store.stored_sha256(f.key) == f.sha256
    assert not [k for k in store.list_keys("exports/12/") if "/.staging/" in k]
    third = publish_generation(store, 12, _files(tmp_path, "c"))
    deleted = collect_garbage(store, 12, {third.generation, second.generation})
    assert sorted(deleted) == sorted(f.key for f in first.files)
    assert {k.split("/")[2] for k in store.list_keys("exports/12/")} == {second.generation, third.generation}


@pytest.fixture
def bucket_store(s3_endpoint: str) -> S3MediaStore:
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    s3 = S3Resource(endpoint_url=s3_endpoint, region_name="us-east-1")
    return S3MediaStoreResource(s3=s3, bucket=bucket).store()


def seconds_left(url: str) -> float:
    """Seconds a presigned URL has left: a SigV4 URL (S3 refuses SigV2 on new buckets) names it."""
    query = parse_qs(urlsplit(url).query)
    assert query.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query, url
    return float(query["X-Amz-Expires"][0])


def test_the_api_mints_urls_for_stored_keys_when_it_answers(
    db_url: str, bucket_store: S3MediaStore, tmp_path: Path
) -> None:
    video = tmp_path / "l.mp4"
    video.write_bytes(b"landscape" * 1000)
    keys = {
        "landscape": "exports/3/gen1/final_landscape.mp4",
        "portrait": "exports/3/gen1/final_portrait.mp4",
    }
    for key in keys.values():
        bucket_store.put_file(video, key, "video/mp4")
    engine = create_engine(db_url)
    with Session(engine) as s, s.begin():
        s.add(
            WeeklyMontage(
                week_start=datetime(2025, 1, 27, tzinfo=UTC),
                title="Weekly",
                featured_user_ids=[],
                render_path_landscape=keys["landscape"],
                render_path_portrait=keys["portrait"],
            )
        )
    engine.dispose()
    presigning = create_app(db_url, None, media_urls=lambda key: export_url(bucket_store, key, 120))
    with serving(presigning) as base:
        latest = requests.get(f"{base}/v2/weekly-montages/latest", timeout=10).json()
        listed = requests.get(f"{base}/v2/weekly-montages", timeout=10).json()["items"][0]
    assert set(latest) == MONTAGE_KEYS
    for body in (latest, listed):
        for field in ("render_path_landscape", "render_path_portrait"):
            assert seconds_left(body[field]) <= 120  # minted for this answer, not stored
            fetched = requests.get(body[field], timeout=10)
            assert fetched.status_code == 200
            assert (
                hashlib.sha256(fetched.content).hexdigest() == hashlib.sha256(video.read_bytes()).hexdigest()
            )
    cdn = create_app(
        db_url, None, media_urls=lambda key: export_url(bucket_store, key, 120, "https://cdn.example.com/")
    )
    with serving(cdn) as base:
        latest = requests.get(f"{base}/v2/weekly-montages/latest", timeout=10).json()
    assert latest["render_path_landscape"] == f"https://cdn.example.com/montage/{keys['landscape']}"
