"""`scene_segments` and `scored_highlights` on a planted week, through the real IO managers."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import opentimelineio as otio
import pytest

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.media.synth import PlantedTimeline, plan_clip, write_clip
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_upload

WEEK = "2025-01-27"
MONDAY = datetime(2025, 1, 27, tzinfo=UTC)
ASSETS = [eligible_jobs, selected_clips, scene_segments, scored_highlights]


@pytest.fixture(scope="module")
def week_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, PlantedTimeline]]:
    root = tmp_path_factory.mktemp("planted_week")
    planted = {}
    for i in range(6):
        rel = f"uploads/clip_{i}.mp4"
        planted[rel] = write_clip(
            root / rel, plan_clip(14.0 + 2 * i, 30, seed=300 + i, width=320, height=180)
        )
    return root, planted


def _seed(db_url: str, root: Path, planted: dict[str, PlantedTimeline]) -> None:
    db = PlatformDatabase(url=db_url)
    with db.session() as s:
        for i, rel in enumerate(planted):
            add_upload(
                s, f"player{i}", rel, MONDAY + timedelta(hours=5 + i), ["Apex Legends", "Valorant"][i % 2]
            )


def _build(
    db_url: str, root: Path, media: Path, highlights: dict[str, Any] | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        partition_key=WEEK,
        resources={
            "platform_db": PlatformDatabase(url=db_url),
            "table_io_manager": TableIOManager(url=db_url),
            "upload_storage": UploadStorage(root=str(root)),
            "settings": load_settings(),
            "media_store": LocalMediaStoreResource(root=str(media)),
        },
        run_config={
            "ops": {
                "scored_highlights": {
                    "config": {"target_duration_s": 60.0, "min_clips": 3, **(highlights or {})}
                }
            }
        },
    )


def test_the_edl_cuts_each_clip_around_its_planted_action(db_url: str, week_clips, tmp_path: Path) -> None:
    root, planted = week_clips
    _seed(db_url, root, planted)
    media = tmp_path / "media"
    result = _build(db_url, root, media)
    assert result.success
    scenes = result.output_for_node("scene_segments")
    spans = result.output_for_node("scored_highlights")
    by_path = {str((root / rel).resolve()): tl for rel, tl in planted.items()}

    assert {s.clip_id for s in scenes} == {c.clip_id for c in result.output_for_node("selected_clips")}
    for span in spans:
        tl = by_path[span.source_path]
        actions = [e.start_s for e in tl.events if e.kind in ("flash", "loud")]
        assert any(span.source_in_s <= t <= span.source_out_s for t in actions), (span.clip_id, actions)
        assert min(abs(span.peak_source_s - t) for t in actions) <= 1.0
        assert span.credit.startswith("@player") and " · " in span.credit
    total = spans[-1].montage_out_s
    assert abs(total - 60.0) <= 3.0
    beat = spans[0].beat_s
    for span in spans:
        assert span.montage_in_s / beat == pytest.approx(round(span.montage_in_s / beat), abs=1e-3)
    assert [s.order for s in spans] == list(range(1, len(spans) + 1))
    assert spans[-1].score == max(s.score for s in spans)

    doc = json.loads((media / "weeks" / WEEK / "edl.json").read_text())
    assert [s["clip_id"] for s in doc["spans"]] == [s.clip_id for s in spans]
    timeline = otio.adapters.read_from_file(str(media / "weeks" / WEEK / "montage.otio"))
    clips = list(timeline.video_tracks()[0].find_clips())
    assert len(clips) == len(spans)
    assert clips[0].source_range.start_time.to_seconds() == pytest.approx(spans[0].source_in_s, abs=0.05)
    # Beside it the editors' other formats, read back through OTIO's adapters: the same clips.
    for name, extra in (("montage.xml", {}), ("montage.edl", {"rate": 30})):
        other = otio.adapters.read_from_file(str(media / "weeks" / WEEK / name), **extra)
        assert [c.name for c in other.video_tracks()[0].find_clips()] == [c.name for c in clips], name

    mat = result.asset_materializations_for_node("scene_segments")[0].metadata
    assert mat["clips_analysed"].value == 6 and mat["clips_cached"].value == 0
    rerun = _build(db_url, root, media)  # a rerun of the week reads every analysis from the cache
    again = rerun.asset_materializations_for_node("scene_segments")[0].metadata
    assert again["clips_analysed"].value == 0 and again["clips_cached"].value == 6
    assert rerun.output_for_node("scored_highlights") == spans


def test_scene_rows_match_the_planted_cuts(sqlite_url: str, week_clips, tmp_path: Path) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    root, planted = week_clips
    _seed(sqlite_url, root, planted)
    result = _build(sqlite_url, root, tmp_path / "media")
    scenes = result.output_for_node("scene_segments")
    selected = {c.clip_id: c for c in result.output_for_node("selected_clips")}
    for clip_id, clip in selected.items():
        rel = str(Path(clip.path).relative_to(root.resolve()))
        starts = [s.start_s for s in scenes if s.clip_id == clip_id and s.scene_index > 0]
        for cut in planted[rel].cut_times_s:
            assert min(abs(s - cut) for s in starts) <= 1 / 30 + 1e-6
        ends = sorted((s.scene_index, s.end_s) for s in scenes if s.clip_id == clip_id)
        assert ends[-1][1] == pytest.approx(clip.duration_s, abs=0.05)


def test_the_newest_policy_is_the_seed_baseline(sqlite_url: str, week_clips, tmp_path: Path) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    root, planted = week_clips
    _seed(sqlite_url, root, planted)
    result = _build(sqlite_url, root, tmp_path / "media", {"policy": "newest"})
    spans = result.output_for_node("scored_highlights")
    created = {c.clip_id: c.created_at for c in result.output_for_node("selected_clips")}
    assert [created[s.clip_id] for s in spans] == sorted((created[s.clip_id] for s in spans), reverse=True)
    assert all(s.source_in_s == 0.0 for s in spans)


def test_with_a_music_library_the_cuts_follow_the_tracks_tempo(
    sqlite_url: str, week_clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from montage_pipeline.media.music import generate, plan_for_week
    from montage_pipeline.platform.migrate import upgrade
    from montage_pipeline_tests.media.test_audio import _write_wav

    library = tmp_path / "library"
    library.mkdir()
    beat = 60 / 131
    track = generate(plan_for_week("t", 131, 40.0, 0.0, [8 * beat * k for k in range(1, 9)], [0.8] * 9))
    _write_wav(library / "anthem.wav", np.asarray(track))
    monkeypatch.setenv("MONTAGE_MUSIC_LIBRARY", str(library))
    upgrade(sqlite_url)
    root, planted = week_clips
    _seed(sqlite_url, root, planted)
    result = _build(sqlite_url, root, tmp_path / "media")
    spans = result.output_for_node("scored_highlights")
    assert spans[0].tempo_bpm == pytest.approx(131, abs=1.0)
    meta = result.asset_materializations_for_node("scored_highlights")[0].metadata
    assert meta["music_track"].value == "anthem.wav"


def test_target_duration_comes_from_the_environment(
    sqlite_url: str, week_clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from montage_pipeline.platform.migrate import upgrade

    upgrade(sqlite_url)
    root, planted = week_clips
    _seed(sqlite_url, root, planted)
    monkeypatch.setenv("WEEKLY_MONTAGE_DURATION", "40")
    result = _build(sqlite_url, root, tmp_path / "media", {"target_duration_s": None})
    mat = result.asset_materializations_for_node("scored_highlights")[0].metadata
    assert mat["target_duration_s"].value == 40.0
    assert abs(result.output_for_node("scored_highlights")[-1].montage_out_s - 40.0) <= 2.0
