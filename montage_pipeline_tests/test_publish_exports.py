"""`s3_exports` on the real Postgres and the S3 server: verified files, the weekly_montages row, reruns."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest
import requests
from sqlalchemy import select

from montage_pipeline.platform.models import Job, JobKind, JobStatus, WeeklyMontage
from montage_pipeline.publishing.exports import export_url
from montage_pipeline.selection.queries import eligible_jobs_in_window
from montage_pipeline.weeks import week_window
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek, export_week
from montage_pipeline_tests.s3_fault_proxy import S3FaultProxy

FILES = {
    "final_landscape.mp4",
    "final_portrait.mp4",
    "final_portrait_unbranded.mp4",
    "thumbnail_landscape.jpg",
    "thumbnail_portrait.jpg",
    "edl.json",
    "montage.otio",
    "montage.xml",
    "montage.fcpxml",
    "montage.edl",
    "editor_package.zip",
}


@pytest.fixture
def week(built_week: BuiltWeek) -> BuiltWeek:
    return built_week


def _objects(week: BuiltWeek, prefix: str) -> dict[str, dict]:
    s3 = boto3.client("s3", endpoint_url=week.endpoint, region_name="us-east-1")
    listing = s3.list_objects_v2(Bucket=week.bucket, Prefix=f"montage/{prefix}")
    return {o["Key"].removeprefix("montage/"): o for o in listing.get("Contents", [])}


def _montage(week: BuiltWeek) -> tuple[WeeklyMontage, Job]:
    with week.session() as s:
        row = s.scalars(select(WeeklyMontage)).one()
        job = s.get(Job, row.job_id)
        assert job is not None
        return row, job


def test_a_week_publishes_verified_files_and_its_row(week: BuiltWeek) -> None:
    result = export_week(week)
    assert result.success
    rows = result.output_for_node("s3_exports")
    assert {r.name for r in rows} == FILES
    meta = result.asset_materializations_for_node("s3_exports")[0].metadata
    package = next(r for r in rows if r.name == "editor_package.zip")
    assert meta["editor_package_bytes"].value == package.size_bytes > 0
    row, job = _montage(week)
    assert (job.kind, job.status) == (JobKind.WEEKLY_MONTAGE, JobStatus.SUCCESS)
    generation = f"exports/{job.id}/{row.export_generation}/"
    assert {r.key for r in rows} == {generation + n for n in FILES}
    assert row.export_files is not None and set(row.export_files) == FILES
    assert not [k for k in _objects(week, f"exports/{job.id}/") if "/.staging/" in k]
    mixed = week.cache / "weeks" / WEEK / "mixed_audio"
    s3 = boto3.client("s3", endpoint_url=week.endpoint, region_name="us-east-1")
    for name in ("final_landscape.mp4", "final_portrait.mp4"):
        body = s3.get_object(Bucket=week.bucket, Key=f"montage/{generation}{name}")
        data = body["Body"].read()
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256((mixed / name).read_bytes()).hexdigest()
        assert body["ContentType"] == "video/mp4"
        assert body["CacheControl"].startswith("public")
    # The row holds the two files' keys (URLs are minted when read), and the seed's fields.
    for key, name in (
        (row.render_path_landscape, "final_landscape.mp4"),
        (row.render_path_portrait, "final_portrait.mp4"),
    ):
        assert key == generation + name
        fetched = requests.get(export_url(week.store(), key, 60), timeout=10)
        assert fetched.status_code == 200
        assert hashlib.sha256(fetched.content).hexdigest() == next(r.sha256 for r in rows if r.name == name)
    assert row.title == "Weekly Highlights — Apex week · January 27, 2025"  # every clip is Apex
    ids = week.user_ids()
    assert row.featured_user_ids and set(row.featured_user_ids) <= {
        ids[h] for h in ("ace", "blaze", "cobalt", "dusk")
    }
    assert ids["ember"] not in row.featured_user_ids  # opted out of featuring
    assert row.clip_count == len(row.featured_user_ids)  # one clip each this week
    assert row.total_duration is not None and 28 < row.total_duration < 40
    assert row.is_featured is False


def test_a_rerun_changes_nothing_that_was_good(week: BuiltWeek) -> None:
    first = export_week(week)
    before = _objects(week, "exports/")
    row_before, _ = _montage(week)
    again = export_week(week)
    assert again.success
    meta = again.asset_materializations_for_node("s3_exports")[0].metadata
    assert meta["files_uploaded"].value == 0
    assert meta["files_unchanged"].value == len(FILES)
    after = _objects(week, "exports/")
    assert {k: v["LastModified"] for k, v in after.items()} == {
        k: v["LastModified"] for k, v in before.items()
    }
    row_after, _ = _montage(week)
    assert row_after.id == row_before.id and row_after.job_id == row_before.job_id
    assert first.success


def test_the_montage_job_is_never_an_eligible_upload(week: BuiltWeek) -> None:
    export_week(week)
    start, end = week_window(WEEK)
    _, job = _montage(week)
    with week.session() as s:
        jobs = eligible_jobs_in_window(s, start, end, 100)
    assert job.id not in {j.job_id for j in jobs}


def test_an_s3_failure_mid_upload_leaves_the_final_key_alone_and_a_retry_completes(
    week: BuiltWeek, tmp_path: Path
) -> None:
    export_week(week)
    row, _ = _montage(week)
    key = row.render_path_landscape
    assert key is not None
    good = _objects(week, key)[key]
    # The generation the row points at lost its landscape file; the network fails on the way back.
    week.store().delete(key)
    with S3FaultProxy(week.endpoint) as proxy:
        proxy.fail_puts(100)
        failed = export_week(week, endpoint=proxy.url, raise_on_error=False)
        assert not failed.success
        assert proxy.failed > 0
        assert key not in _objects(week, key)  # no partial object at the final key
        assert not [k for k in _objects(week, "exports/") if "/.staging/" in k]
        proxy.fail_puts(0)
        retried = export_week(week, endpoint=proxy.url)
        assert retried.success
    now = _objects(week, key)[key]
    assert now["Size"] == good["Size"] and now["ETag"] == good["ETag"]


def test_an_export_that_fails_its_checks_never_replaces_a_published_one(week: BuiltWeek) -> None:
    export_week(week)
    row_before, _ = _montage(week)
    key = row_before.render_path_portrait
    assert key is not None
    before = _objects(week, key)[key]
    # Replace the portrait in mixed_audio's stored bundle with a file that is not faststart-ready video.
    store = week.store()
    bundle = f"weeks/{WEEK}/mixed_audio"
    manifest_path = week.cache / "manifest.json"
    store.get_file(f"{bundle}/manifest.json", manifest_path)
    original = week.cache / "portrait_backup.mp4"
    store.get_file(f"{bundle}/final_portrait.mp4", original)
    broken = week.cache / "broken.mp4"
    broken.write_bytes(original.read_bytes()[: original.stat().st_size // 2])
    import json

    manifest = json.loads(manifest_path.read_text())
    saved = dict(manifest["final_portrait.mp4"])
    manifest["final_portrait.mp4"].update(
        sha256=hashlib.sha256(broken.read_bytes()).hexdigest(), size_bytes=broken.stat().st_size
    )
    manifest_path.write_text(json.dumps(manifest))
    store.put_file(broken, f"{bundle}/final_portrait.mp4")
    store.put_file(manifest_path, f"{bundle}/manifest.json")
    try:
        result = export_week(week, raise_on_error=False)
        assert not result.success
        failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "final_portrait.mp4" in str(failure[0].event_specific_data)
        after = _objects(week, key)[key]
        assert after["ETag"] == before["ETag"]
        row_after, job_after = _montage(week)
        assert row_after.render_path_portrait == row_before.render_path_portrait
        assert row_after.export_generation == row_before.export_generation
        assert job_after.status == JobStatus.FAILED
    finally:
        manifest["final_portrait.mp4"] = saved
        manifest_path.write_text(json.dumps(manifest))
        store.put_file(original, f"{bundle}/final_portrait.mp4")
        store.put_file(manifest_path, f"{bundle}/manifest.json")
    assert export_week(week).success
    assert _montage(week)[1].status == JobStatus.SUCCESS
