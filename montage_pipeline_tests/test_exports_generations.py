"""A week's exports as whole generations, under faults and concurrent runs (real Postgres and S3 server).

What a user must never see: a row pointing at a mix of two builds, or at files that are not all there.
Every test here leaves the shared `built_week` as it found it (the original thumbnails published).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest
import requests
from PIL import Image
from sqlalchemy import create_engine, select, text

from montage_pipeline.api.app import create_app
from montage_pipeline.highlights.edl_export import PRIVATE_SPAN_FIELDS
from montage_pipeline.platform.models import WeeklyMontage
from montage_pipeline.platform.montage_record import LOCK_CLASS, week_lock
from montage_pipeline.publishing.exports import export_url
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek, export_week
from montage_pipeline_tests.s3_fault_proxy import S3FaultProxy
from montage_pipeline_tests.test_api import serving
from montage_pipeline_tests.test_exports_parts import seconds_left

THUMBNAILS = {
    "thumbnail_landscape.jpg": f"weeks/{WEEK}/landscape_render/thumbnail.jpg",
    "thumbnail_portrait.jpg": f"weeks/{WEEK}/portrait_render/thumbnail.jpg",
}


class FailingAfter(S3FaultProxy):
    """S3 that accepts `passes` uploads, then fails every upload until `heal()` (an outage mid-export)."""

    def __init__(self, upstream: str, passes: int) -> None:
        super().__init__(upstream)
        self.passes = passes
        self.healed = False

    def _take(self) -> bool:
        with self._lock:
            if self.healed:
                return False
            if self.passes > 0:
                self.passes -= 1
                return False
            self.failed += 1
            return True

    def heal(self) -> None:
        with self._lock:
            self.healed = True


def _keys(week: BuiltWeek, prefix: str) -> list[str]:
    """What the bucket holds under a folder of the store (listed with boto3, not our own code)."""
    s3 = boto3.client("s3", endpoint_url=week.endpoint, region_name="us-east-1")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=week.bucket, Prefix=f"montage/{prefix}")
    return sorted(o["Key"].removeprefix("montage/") for page in pages for o in page.get("Contents", []))


def _random_jpeg(path: Path) -> str:
    Image.frombytes("RGB", (64, 36), os.urandom(64 * 36 * 3)).save(path, quality=90)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _row(week: BuiltWeek) -> WeeklyMontage:
    with week.session() as s:
        return s.scalars(select(WeeklyMontage)).one()


def _folder(stored: str | None) -> str:
    """The folder of the export a row value names: a key, or (before generations) a URL to one."""
    assert stored is not None
    found = re.search(r"(exports/[^?]*/)[^/?]+(?:\?|$)", stored)
    assert found, stored
    return found.group(1)


def _published_set(week: BuiltWeek) -> dict[str, str]:
    """name -> sha256 of the bytes in the folder the row's landscape lives in (the set users get)."""
    row = _row(week)
    folder = _folder(row.render_path_landscape)
    assert _folder(row.render_path_portrait) == folder
    store = week.store()
    names = [k.removeprefix(folder) for k in _keys(week, folder)]
    return {n: store.stored_sha256(folder + n) for n in names if "/" not in n}


def _assert_row_describes_one_complete_generation(week: BuiltWeek) -> dict[str, Any]:
    row = _row(week)
    assert row.export_generation and row.export_files
    folder = f"exports/{row.job_id}/{row.export_generation}/"
    store = week.store()
    assert _keys(week, folder) == sorted(f["key"] for f in row.export_files.values())
    for name, f in row.export_files.items():
        assert f["key"] == folder + name
        head = store.head(f["key"])
        assert head is not None and head.size == f["size_bytes"]
        assert store.stored_sha256(f["key"]) == f["sha256"]
    assert (row.render_path_landscape, row.render_path_portrait) == (
        folder + "final_landscape.mp4",
        folder + "final_portrait.mp4",
    )
    return row.export_files


def _staging(week: BuiltWeek) -> list[str]:
    return [k for k in _keys(week, "exports/") if "/.staging/" in k]


@pytest.fixture
def new_thumbnails(built_week: BuiltWeek, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A rebuild with different thumbnails (a new build of the week); the originals come back after."""
    week = built_week
    store = week.store()
    originals, shas = {}, {}
    for name, key in THUMBNAILS.items():
        originals[key] = tmp_path / f"original-{name}"
        store.get_file(key, originals[key])
        fresh = tmp_path / f"new-{name}"
        shas[name] = _random_jpeg(fresh)  # never built before: a generation of its own
        store.put_file(fresh, key, content_type="image/jpeg")
    try:
        yield shas
    finally:
        for key, path in originals.items():
            store.put_file(path, key, content_type="image/jpeg")
        assert export_week(week).success


@pytest.mark.parametrize("passes", [1, 5])
def test_a_rebuild_failing_half_way_leaves_the_published_generation_whole(
    built_week: BuiltWeek, new_thumbnails: dict[str, str], passes: int
) -> None:
    week = built_week
    before_row = _row(week)
    before = _published_set(week)
    proxy = FailingAfter(week.endpoint, passes)
    with proxy:
        failed = export_week(week, endpoint=proxy.url, raise_on_error=False)
        assert not failed.success and proxy.failed > 0
        # Until every file verified, the row and the files it describes are the previous build's.
        after_row = _row(week)
        assert (after_row.render_path_landscape, after_row.render_path_portrait) == (
            before_row.render_path_landscape,
            before_row.render_path_portrait,
        )
        assert _published_set(week) == before
        assert not _staging(week)
        proxy.heal()
        assert export_week(week, endpoint=proxy.url).success
    files = _assert_row_describes_one_complete_generation(week)
    assert {n: files[n]["sha256"] for n in THUMBNAILS} == new_thumbnails
    # The generation it replaced is kept whole (links handed out a moment ago keep working).
    assert _row(week).export_generation != before_row.export_generation
    old_folder = _folder(before_row.render_path_landscape)
    assert {n: week.store().stored_sha256(old_folder + n) for n in before} == before


def test_old_generations_are_collected_keeping_the_last_good_one(
    built_week: BuiltWeek, new_thumbnails: dict[str, str], tmp_path: Path
) -> None:
    week = built_week
    first = _row(week).export_generation
    assert export_week(week).success
    second = _row(week).export_generation
    third_thumb = tmp_path / "third.jpg"
    _random_jpeg(third_thumb)
    week.store().put_file(third_thumb, THUMBNAILS["thumbnail_landscape.jpg"], content_type="image/jpeg")
    result = export_week(week)
    assert result.success
    row = _row(week)
    third = row.export_generation
    assert len({first, second, third}) == 3
    folders = {k.split("/")[2] for k in _keys(week, f"exports/{row.job_id}/")}
    assert folders == {second, third}
    collected = result.asset_materializations_for_node("s3_exports")[0].metadata["objects_collected"].value
    assert isinstance(collected, int) and collected > 0
    _assert_row_describes_one_complete_generation(week)


def _waiting_for_week_lock(week: BuiltWeek) -> int:
    engine = create_engine(week.db_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE d.datname = current_database() AND l.locktype = 'advisory' "
                        "AND l.classid = :c AND NOT l.granted"
                    ),
                    {"c": LOCK_CLASS},
                )
            )
    finally:
        engine.dispose()


def _until(condition: Any, what: str, limit_s: float = 300) -> None:
    """Wait for `condition()`; the limit only keeps a broken test from hanging the suite."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def test_a_second_writer_of_the_week_waits_for_the_first(
    built_week: BuiltWeek, new_thumbnails: dict[str, str]
) -> None:
    week = built_week
    before_row, before = _row(week), _published_set(week)
    engine = create_engine(week.db_url)
    try:
        with week_lock(engine, WEEK, 10):
            thread, out = _in_thread(lambda: export_week(week))
            _until(lambda: _waiting_for_week_lock(week) == 1, "the export waits for the week's lock")
            # Waiting, it has touched nothing: no staging object, no new file, the same row.
            assert not _staging(week)
            assert _published_set(week) == before
            assert _row(week).export_generation == before_row.export_generation
        thread.join(300)
    finally:
        engine.dispose()
    assert out and out[0].success
    files = _assert_row_describes_one_complete_generation(week)
    assert {n: files[n]["sha256"] for n in THUMBNAILS} == new_thumbnails


def test_a_writer_that_cannot_get_the_week_fails_saying_why(
    built_week: BuiltWeek, new_thumbnails: dict[str, str]
) -> None:
    week = built_week
    before_row, before = _row(week), _published_set(week)
    config = {"ops": {"s3_exports": {"config": {"week_lock_timeout_s": 0.5}}}}
    engine = create_engine(week.db_url)
    try:
        with week_lock(engine, WEEK, 10):
            result = export_week(week, raise_on_error=False, run_config=config)
    finally:
        engine.dispose()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert f"week {WEEK} is being written by another run" in str(failure.event_specific_data)
    assert _published_set(week) == before and not _staging(week)
    assert _row(week).export_generation == before_row.export_generation


def test_two_concurrent_export_runs_of_a_week_end_with_one_generation(
    built_week: BuiltWeek, new_thumbnails: dict[str, str]
) -> None:
    week = built_week
    start = threading.Barrier(2)

    def run() -> dg.ExecuteInProcessResult:
        start.wait()
        return export_week(week, raise_on_error=False)

    runs = [_in_thread(run) for _ in range(2)]
    for thread, _ in runs:
        thread.join(600)
    results = [out[0] for _, out in runs]
    assert all(r.success for r in results)
    # Not even a retried step: neither run saw the other's files (a shared staging key deleted under a
    # run is a NoSuchKey its retry would hide).
    trouble = {"STEP_UP_FOR_RETRY", "STEP_FAILURE"}
    assert not [e.message for r in results for e in r.all_events if e.event_type_value in trouble]
    files = _assert_row_describes_one_complete_generation(week)
    meta = [r.asset_materializations_for_node("s3_exports")[0].metadata for r in results]
    # One run wrote the generation; the other waited for the week and found it complete.
    assert sorted(m["files_uploaded"].value for m in meta) == [0, len(files)]
    assert {m["export_generation"].value for m in meta} == {_row(week).export_generation}
    assert {n: files[n]["sha256"] for n in THUMBNAILS} == new_thumbnails
    assert not _staging(week)
    with week.session() as s:
        assert s.scalar(text("SELECT count(*) FROM weekly_montages")) == 1


def test_the_row_keeps_keys_and_the_api_mints_working_urls(built_week: BuiltWeek) -> None:
    week = built_week
    assert export_week(week).success
    row = _row(week)
    assert row.export_files is not None
    for stored in (row.render_path_landscape, row.render_path_portrait):
        assert stored is not None and "://" not in stored and "X-Amz" not in stored  # nothing to expire
    store = week.store()
    app = create_app(week.db_url, admin_token=None, media_urls=lambda key: export_url(store, key, 300))
    with serving(app) as base:
        latest = requests.get(f"{base}/v2/weekly-montages/latest", timeout=10).json()
    for field, name in (
        ("render_path_landscape", "final_landscape.mp4"),
        ("render_path_portrait", "final_portrait.mp4"),
    ):
        url = latest[field]
        assert seconds_left(url) <= 300  # minted for this answer
        fetched = requests.get(url, timeout=10)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == row.export_files[name]["sha256"]


def _all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _all_keys(v)}
    return set()


def test_the_public_edl_and_otio_name_no_server_path_or_platform_id(
    built_week: BuiltWeek, tmp_path: Path
) -> None:
    week = built_week
    assert export_week(week).success
    row = _row(week)
    folder = _folder(row.render_path_landscape)
    store = week.store()
    texts = {}
    for name in ("edl.json", "montage.otio"):
        store.get_file(folder + name, tmp_path / name)
        texts[name] = (tmp_path / name).read_text()
    with week.session() as s:
        job_ids = {str(r[0]) for r in s.execute(text("SELECT id FROM jobs WHERE kind = 'upload'"))}
    for name, body in texts.items():
        doc = json.loads(body)
        assert not _all_keys(doc) & PRIVATE_SPAN_FIELDS, name
        assert str(week.root) not in body and "file://" not in body, name
        assert not re.search(r'"/(?:tmp|home|root|work|var)/', body), name
    edl = json.loads(texts["edl.json"])
    assert edl["week"] == WEEK and edl["spans"]
    for span in edl["spans"]:
        assert span["credit"].startswith("@") and span["source_out_s"] > span["source_in_s"]
    otio_doc = json.loads(texts["montage.otio"])
    clips = [c for c in otio_doc["tracks"]["children"][0]["children"] if c["OTIO_SCHEMA"].startswith("Clip")]
    assert len(clips) == len(edl["spans"])
    for clip in clips:  # relinked to the editor package's media by relative paths
        reference = clip["media_references"][clip["active_media_reference_key"]]
        assert reference["OTIO_SCHEMA"].startswith("ExternalReference")
        assert reference["target_url"].startswith("media/") and reference["available_range"]
        assert "clip_id" not in clip["metadata"]["montage"] and clip["metadata"]["montage"]["creator"]
    assert job_ids and texts  # the ids exist in the database; none of them is a field of the files
    # The internal EDL stays whole in the media store for the pipeline.
    store.get_file(f"weeks/{WEEK}/edl.json", tmp_path / "internal.json")
    internal = json.loads((tmp_path / "internal.json").read_text())
    assert {"source_path", "user_id", "job_id"} <= set(internal["spans"][0])
