"""`eligible_jobs` and `selected_clips` on real clips, against PostgreSQL and SQLite."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import dagster as dg
import pytest
from sqlalchemy import create_engine, text

from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.media.fingerprint import VisualFingerprint
from montage_pipeline.platform.models import JobKind, JobStatus
from montage_pipeline.selection.ranking import RankingRules, build_pool
from montage_pipeline.selection.rows import SelectedClip
from montage_pipeline.selection.verify import VerifiedClip, sound_of, verify_job
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import ClipBank, PlatformRows, eligible_job, make_clip_bank

WEEK = "2025-01-27"
MONDAY = datetime(2025, 1, 27, tzinfo=UTC)


@pytest.fixture(scope="session")
def bank(tmp_path_factory: pytest.TempPathFactory) -> ClipBank:
    return make_clip_bank(tmp_path_factory.mktemp("clip_bank"))


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def rows(db_url: str, storage: Path, bank: ClipBank) -> Iterator[PlatformRows]:
    platform = PlatformRows(db_url, storage, bank)
    yield platform
    platform.close()


@dg.asset(partitions_def=weekly_partitions, io_manager_key="table_io_manager")
def next_stage(selected_clips: list[SelectedClip]) -> list[SelectedClip]:
    """Stands in for the analysis stage: it must be skipped when a week has nothing to select."""
    return selected_clips


def build_week(
    db_url: str,
    storage: Path,
    week: str = WEEK,
    selection: dict[str, Any] | None = None,
    max_jobs: int = 50,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [eligible_jobs, selected_clips, next_stage],
        partition_key=week,
        resources={
            "platform_db": PlatformDatabase(url=db_url),
            "table_io_manager": TableIOManager(url=db_url),
            "upload_storage": UploadStorage(root=str(storage)),
            "settings": load_settings(),
        },
        run_config={
            "ops": {
                "eligible_jobs": {"config": {"max_jobs": max_jobs}},
                "selected_clips": {"config": selection or {}},
            }
        },
        raise_on_error=True,
    )


def selected(result: dg.ExecuteInProcessResult) -> list[Any]:
    return result.output_for_node("selected_clips")


def rejected(result: dg.ExecuteInProcessResult) -> dict[int, str]:
    mat = result.asset_materializations_for_node("selected_clips")
    if mat:
        entries = cast(list[dict[str, Any]], mat[0].metadata["rejected"].value)
    else:
        observation = next(
            e.asset_observation_data.asset_observation
            for e in result.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        )
        entries = cast(list[dict[str, Any]], observation.metadata["rejected"].value)
    return {e["job_id"]: e["reason"] for e in entries}


def test_week_window_boundaries_and_job_filters(db_url: str, storage: Path, rows: PlatformRows) -> None:
    first = rows.job("ana", MONDAY)  # Monday 00:00:00 belongs to this week
    last = rows.job("ana", MONDAY + timedelta(days=7) - timedelta(seconds=1), "good_1.mp4")  # Sunday 23:59:59
    rows.job("ana", MONDAY - timedelta(seconds=1), "good_2.mp4")  # previous week
    next_week = rows.job("ana", MONDAY + timedelta(days=7), "good_3.mp4")  # next Monday 00:00:00
    rows.job("ben", MONDAY + timedelta(days=1), "good_4.mp4", status=JobStatus.FAILED)
    rows.job("ben", MONDAY + timedelta(days=1), "good_4.mp4", status=JobStatus.PROCESSING)
    rows.job("ben", MONDAY + timedelta(days=2), "good_5.mp4", kind=JobKind.WEEKLY_MONTAGE)

    jobs = build_week(db_url, storage).output_for_node("eligible_jobs")
    assert [j.job_id for j in jobs] == [last, first]  # newest first, nothing else
    assert jobs[0].render_path and jobs[0].render_path.endswith("good_1.mp4")

    nxt = build_week(db_url, storage, week="2025-02-03").output_for_node("eligible_jobs")
    assert [j.job_id for j in nxt] == [next_week]


def test_max_jobs_keeps_the_newest(db_url: str, storage: Path, rows: PlatformRows) -> None:
    ids = [rows.job(f"u{i}", MONDAY + timedelta(hours=i), f"good_{i}.mp4") for i in range(4)]
    jobs = build_week(db_url, storage, max_jobs=2).output_for_node("eligible_jobs")
    assert [j.job_id for j in jobs] == [ids[3], ids[2]]


def test_every_kind_of_bad_file_is_rejected_with_its_reason(
    db_url: str, storage: Path, rows: PlatformRows, tmp_path: Path
) -> None:
    t = MONDAY + timedelta(days=2)
    good = rows.job("ana", t, "good_0.mp4")
    expected = {
        rows.job("ben", t, "not_there.mp4"): "missing",
        rows.job("cy", t, "empty.mp4"): "empty",
        rows.job("dee", t, "still_image.mp4"): "not_a_video",
        rows.job("eve", t, "truncated.mp4"): "truncated",
        rows.job("fay", t, "short.mp4"): "too_short",
        rows.job("gus", t, None, stored_path="../outside.mp4"): "outside_storage_root",
        rows.job("hal", t, None, stored_path="/etc/hostname"): "outside_storage_root",
        rows.job("ivy", t, None): "no_render",
    }
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(rows.bank.path("good_2.mp4").read_bytes())
    (storage / "link.mp4").symlink_to(outside)
    expected[rows.job("jay", t, None, stored_path="link.mp4")] = "outside_storage_root"

    result = build_week(db_url, storage)
    assert result.success  # bad clips never fail the week
    assert [c.job_id for c in selected(result)] == [good]
    reasons = rejected(result)
    assert {job: reasons.get(job) for job in expected} == expected
    mat = result.asset_materializations_for_node("selected_clips")[0]
    assert mat.metadata["clips_rejected"].value == len(expected)
    table = mat.metadata["rejections"]
    assert isinstance(table, dg.TableMetadataValue)
    assert "truncated" in {r.data["reason"] for r in table.records}


def test_probe_facts_and_hashes_are_recorded(db_url: str, storage: Path, rows: PlatformRows) -> None:
    rows.job("ana", MONDAY + timedelta(days=1), "good_0.mp4")
    rows.job("ben", MONDAY + timedelta(days=1), "good_1.mp4")
    clips = selected(build_week(db_url, storage))
    assert len(clips) == 2
    for clip in clips:
        assert (clip.width, clip.height) == (320, 180)
        assert clip.fps == pytest.approx(30, abs=0.01)
        assert clip.duration_s == pytest.approx(6.0, abs=0.1)
        assert clip.has_audio and not clip.variable_fps
        assert len(clip.sha256) == 64 and clip.visual_hash
        assert Path(clip.path).is_file() and Path(clip.path).is_relative_to(storage.resolve())
    assert clips[0].sha256 != clips[1].sha256


def test_a_reencoded_reupload_is_a_near_duplicate(db_url: str, storage: Path, rows: PlatformRows) -> None:
    original = rows.job("ana", MONDAY + timedelta(days=1), "good_0.mp4", score=0.5)
    # The smaller re-encode ranks higher, but the montage should show the sharper copy.
    copy = rows.job("ben", MONDAY + timedelta(days=2), "reencoded_good_0.mp4", score=0.95)
    identical = rows.job("cy", MONDAY + timedelta(days=3), "good_0.mp4", score=0.1)
    other = rows.job("dee", MONDAY + timedelta(days=1), "good_3.mp4", score=0.5)
    result = build_week(db_url, storage)
    assert sorted(c.job_id for c in selected(result)) == sorted([original, other])
    reasons = rejected(result)
    assert reasons[copy] == f"near_duplicate_of:job-{original}"
    assert reasons[identical] == f"near_duplicate_of:job-{original}"


def test_opted_out_users_are_never_selected(db_url: str, storage: Path, rows: PlatformRows) -> None:
    kept = rows.job("ana", MONDAY + timedelta(days=1), "good_0.mp4")
    shy = rows.job("quinn", MONDAY + timedelta(days=1), "good_1.mp4", score=1.0, opted_out=True)
    result = build_week(db_url, storage)
    assert [c.job_id for c in selected(result)] == [kept]
    assert rejected(result)[shy] == "user_opted_out"


def test_every_clip_goes_on_to_analysis_ranked_by_its_prior(
    db_url: str, storage: Path, rows: PlatformRows
) -> None:
    # Before issue 13 the pool was cut here by metadata (a per-user cap and twice the target duration),
    # so clips whose content was never seen were dropped. Now every clip goes on; the cap is applied
    # when the cut is picked, with the content scores known (test_gameplay_quality.py).
    t = MONDAY + timedelta(days=1)
    prolific = [
        rows.job("ana", t + timedelta(hours=i), f"good_{i}.mp4", score=0.9 - i * 0.1) for i in range(4)
    ]
    other = rows.job("ben", t, "good_4.mp4", score=0.3)
    result = build_week(db_url, storage)
    clips = selected(result)
    assert [c.job_id for c in clips] == [*prolific, other]
    assert [c.rank for c in clips] == [1, 2, 3, 4, 5]
    assert [c.rank_score for c in clips] == sorted((c.rank_score for c in clips), reverse=True)
    assert rejected(result) == {}

    newest = selected(build_week(db_url, storage, selection={"policy": "newest", "newest_max_clips": 2}))
    assert [c.job_id for c in newest] == [prolific[3], prolific[2]]  # the seed's rule: newest first


def test_rerunning_a_week_leaves_exactly_one_set_of_rows(
    db_url: str, storage: Path, rows: PlatformRows
) -> None:
    rows.job("ana", MONDAY + timedelta(days=1), "good_0.mp4")
    rows.job("ben", MONDAY + timedelta(days=2), "good_1.mp4")
    for _ in range(2):
        build_week(db_url, storage)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        for table, count in (("montage_eligible_jobs", 2), ("montage_selected_clips", 2)):
            n = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE partition_key = :w"), {"w": WEEK}
            ).scalar_one()
            assert n == count, table
    engine.dispose()


def test_an_empty_week_stops_cleanly(db_url: str, storage: Path, rows: PlatformRows) -> None:
    rows.job("ana", MONDAY - timedelta(days=1), "good_0.mp4")  # last week only
    result = build_week(db_url, storage)
    assert result.success
    assert result.output_for_node("eligible_jobs") == []
    assert result.asset_materializations_for_node("eligible_jobs")[0].metadata["dagster/row_count"].value == 0
    assert result.asset_materializations_for_node("selected_clips") == []
    assert result.asset_materializations_for_node("next_stage") == []  # downstream skipped, not failed
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"next_stage"}
    observation = next(
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    )
    assert observation.metadata["skip_reason"].value == "No successful jobs found for weekly montage"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def test_the_sound_is_read_only_for_clips_whose_pictures_match(bank: ClipBank) -> None:
    """Verification leaves the audio envelope out (it cost as much as the keyframes); ranking reads it
    for the pair whose pictures match, and that pair's sound still decides."""
    names = ["good_0.mp4", "reencoded_good_0.mp4", "good_3.mp4", "good_4.mp4"]
    verified = [
        verify_job(eligible_job(i, name, MONDAY + timedelta(days=1, hours=i)), bank.root, min_duration_s=3.0)
        for i, name in enumerate(names)
    ]
    assert all(isinstance(v, VerifiedClip) and not v.fingerprint.audio_db for v in verified)
    asked: list[str] = []

    def sound(clip: VerifiedClip) -> VisualFingerprint:
        asked.append(clip.path.name)
        return sound_of(clip)

    rows, left_out = build_pool(cast(list[VerifiedClip], verified), MONDAY, RankingRules(), sound=sound)
    assert sorted(asked) == ["good_0.mp4", "reencoded_good_0.mp4"]
    assert [r.job_id for r in left_out] == [1] and left_out[0].reason == "near_duplicate_of:job-0"
    assert sorted(r.job_id for r in rows) == [0, 2, 3]
