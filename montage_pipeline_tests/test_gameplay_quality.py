"""Montage quality on real engine gameplay: short clips cut from a gameplay-kit week, with the game's truth.

The clips (`gameplay/clips/`, made by `gameplay/make_fixtures.py`) are ViZDoom footage that no part of
this project generated; `truth.json` holds each one's per-second excitement and events from the game's
own counters. These tests pin what issue 13 asked for: action beats walking, the best clip makes the cut
whatever its upload time, a clip with no audio can win on its pictures.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import av
import dagster as dg
import pytest

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.highlights.edl import ScoredCandidate, score_candidates
from montage_pipeline.media.analysis import analyze_clip
from montage_pipeline.media.fingerprint import (
    DEFAULT_THRESHOLD,
    are_near_duplicates,
    best_alignment,
    visual_fingerprint,
)
from montage_pipeline.media.windows import WindowRules
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.selection.rows import SelectedClip
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_upload

CLIPS = Path(__file__).resolve().parent / "gameplay" / "clips"
TRUTH: dict[str, dict[str, Any]] = json.loads((CLIPS / "truth.json").read_text())
ACTION = {"kill", "death", "hit", "damage"}
WEEK = "2025-03-03"
MONDAY = datetime(2025, 3, 3, tzinfo=UTC)


def truth_mean(name: str) -> float:
    ex = TRUTH[name]["excitement"]
    return sum(ex) / len(ex)


def events_in(name: str, start: float, end: float) -> set[str]:
    return {e["kind"] for e in TRUTH[name]["events"] if start <= e["t"] <= end}


@pytest.fixture(scope="module")
def scored() -> dict[str, ScoredCandidate]:
    """Every fixture scored as one week, through the same code `scored_highlights` runs."""
    analyses = {name: analyze_clip(CLIPS / name) for name in TRUTH}
    clips = [
        SelectedClip(
            clip_id=name,
            job_id=i,
            user_id=i,
            user_handle=f"p{i}",
            game="Doom",
            created_at=MONDAY,
            render_path=name,
            path=str(CLIPS / name),
            duration_s=a.duration_s,
            fps=a.fps,
            variable_fps=False,
            width=a.width,
            height=a.height,
            rotation=0,
            has_audio=a.has_audio,
            size_bytes=0,
            sha256="",
            visual_hash="",
            job_score=None,
            views=None,
            likes=None,
            rank=1,
            rank_score=1.0,
            selection_reason="",
        )
        for i, (name, a) in enumerate(analyses.items(), start=1)
    ]
    return {s.clip.clip_id: s for s in score_candidates(clips, analyses, WindowRules(preferred_len_s=8.0))}


def test_the_fixtures_are_what_they_claim() -> None:
    assert truth_mean("defend_action.mp4") > 0.8 and truth_mean("no_audio_action.mp4") > 0.8
    assert truth_mean("explore_walking.mp4") < 0.05 and truth_mean("maze_walking.mp4") < 0.05
    assert not TRUTH["no_audio_action.mp4"]["has_audio"]


@pytest.mark.parametrize("action", ["defend_action.mp4", "deathmatch_combat.mp4", "no_audio_action.mp4"])
@pytest.mark.parametrize("walking", ["explore_walking.mp4", "maze_walking.mp4"])
def test_a_clip_full_of_action_beats_a_walking_clip(
    scored: dict[str, ScoredCandidate], action: str, walking: str
) -> None:
    assert scored[action].candidate.window.score > 2 * scored[walking].candidate.window.score + 0.1


def test_the_scores_order_clips_as_the_game_does(scored: dict[str, ScoredCandidate]) -> None:
    ours = sorted(scored, key=lambda n: scored[n].candidate.window.score, reverse=True)
    truth = sorted(scored, key=truth_mean, reverse=True)
    assert set(ours[:3]) == set(truth[:3])  # the three action clips first, the two walks last


@pytest.mark.parametrize("name", ["defend_action.mp4", "deathmatch_combat.mp4", "no_audio_action.mp4"])
def test_each_window_lands_on_action(scored: dict[str, ScoredCandidate], name: str) -> None:
    w = scored[name].candidate.window
    assert events_in(name, w.start_s, w.end_s) & ACTION
    assert events_in(name, w.peak_s - 1.5, w.peak_s + 1.5) & ACTION  # the peak is on an event


def test_a_clip_without_audio_is_scored_on_its_pictures(scored: dict[str, ScoredCandidate]) -> None:
    silent = scored["no_audio_action.mp4"]
    assert not silent.clip.has_audio
    assert silent.candidate.window.score >= 0.5  # on the same scale as clips with sound: a kill is ~0.7
    assert set(silent.candidate.window.breakdown) == {"motion", "flash", "red", "jerk", "cuts"}


def _build(db_url: str, root: Path, media: Path, highlights: dict[str, Any]) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [eligible_jobs, selected_clips, scene_segments, scored_highlights],
        partition_key=WEEK,
        resources={
            "platform_db": PlatformDatabase(url=db_url),
            "table_io_manager": TableIOManager(url=db_url),
            "upload_storage": UploadStorage(root=str(root)),
            "settings": load_settings(),
            "media_store": LocalMediaStoreResource(root=str(media)),
        },
        run_config={"ops": {"scored_highlights": {"config": highlights}}},
    )


def test_the_weeks_best_clips_make_the_cut_even_when_oldest(sqlite_url: str, tmp_path: Path) -> None:
    """The best clip is the oldest upload and the no-audio clip the second oldest: the seed's rule
    (newest first) leaves both out; the content-first montage puts both in and the walks out."""
    upgrade(sqlite_url)
    root = tmp_path / "storage"
    (root / "uploads").mkdir(parents=True)
    oldest_first = [
        "defend_action.mp4",
        "no_audio_action.mp4",
        "deathmatch_combat.mp4",
        "explore_walking.mp4",
        "maze_walking.mp4",
    ]
    with PlatformDatabase(url=sqlite_url).session() as s:
        for i, name in enumerate(oldest_first):
            shutil.copy(CLIPS / name, root / "uploads" / name)
            add_upload(s, f"player{i}", f"uploads/{name}", MONDAY + timedelta(days=i, hours=3), "Doom")
    config = {"target_duration_s": 20.0, "min_clips": 1, "max_clips": 2, "min_window_s": 6.0}
    ranked = _build(sqlite_url, root, tmp_path / "media", config)
    assert ranked.success
    assert len(ranked.output_for_node("selected_clips")) == 5  # every clip was analysed
    spans = ranked.output_for_node("scored_highlights")
    assert {Path(s.source_path).name for s in spans} == {"defend_action.mp4", "no_audio_action.mp4"}
    for span in spans:
        assert events_in(Path(span.source_path).name, span.source_in_s, span.source_out_s) & ACTION
    meta = ranked.asset_materializations_for_node("scored_highlights")[0].metadata
    assert "vs best left out" in str(meta["picks"].value)
    not_picked = cast(list[dict[str, Any]], meta["not_picked"].value)
    assert {e["reason"] for e in not_picked} <= {"not_needed", "too_dull"} and len(not_picked) == 3

    newest = _build(sqlite_url, root, tmp_path / "media", {**config, "policy": "newest"})
    seed_rule = {Path(s.source_path).name for s in newest.output_for_node("scored_highlights")}
    assert seed_rule == {"explore_walking.mp4", "maze_walking.mp4"}  # what the seed's rule would post


def _reencode(src: Path, dst: Path, size: tuple[int, int]) -> Path:
    """A re-upload: the same file decoded and encoded again at another size and quality, sound included."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = size[0], size[1], "yuv420p"
        vout.options = {"crf": "34", "preset": "ultrafast", "g": "60"}
        aout = out.add_stream("aac", rate=48000, layout="stereo")
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        for frame in inp.decode(vin, ain):
            if isinstance(frame, av.VideoFrame):
                small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                small.pts, small.time_base = frame.pts, frame.time_base
                out.mux(vout.encode(small))
            elif isinstance(frame, av.AudioFrame):
                frame.pts = None
                for chunk in resampler.resample(frame):
                    out.mux(aout.encode(chunk))
        out.mux(vout.encode())
        out.mux(aout.encode())
    return dst


def test_two_rounds_in_one_arena_are_not_copies_but_a_reupload_is(tmp_path: Path) -> None:
    """Both defend_the_center rounds show one room from a fixed camera: an 8×8 pHash alone called them
    copies (the week's best clip was dropped as one); sound and finer hashes tell them apart."""
    best = visual_fingerprint(CLIPS / "defend_action.mp4")
    other_round = visual_fingerprint(CLIPS / "no_audio_action.mp4")
    assert best_alignment(best, other_round)[0] <= DEFAULT_THRESHOLD  # the coarse hash is fooled
    assert not are_near_duplicates(best, other_round)
    reupload = visual_fingerprint(_reencode(CLIPS / "defend_action.mp4", tmp_path / "copy.mp4", (256, 144)))
    assert are_near_duplicates(best, reupload)
    walking = visual_fingerprint(CLIPS / "explore_walking.mp4")
    assert not are_near_duplicates(best, walking)
