"""The week's theme: picked from the cut or an admin's setting, on the title card, in the music choice."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import av
import dagster as dg
import numpy as np
from PIL import Image

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.render import montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.highlights.theme import (
    KNOWN_PALETTES,
    cut_for_theme,
    derived_palette,
    most_featured_game,
    palette_for,
    resolve_theme,
    slugify,
)
from montage_pipeline.media.music import generate, plan_for_week
from montage_pipeline.media.music_library import RATE, TrackBeats, week_track_path
from montage_pipeline.media.overlay import DEFAULT_PALETTE, title_card
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.media.timeline import Timeline
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.platform.themes import set_theme
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_upload

WEEK = "2025-01-27"
SPAN = EditSpan(
    order=1, clip_id="c", job_id=1, user_id=1, user_handle="u", game="", source_path="/x.mp4",
    source_sha256="0" * 64, source_in_s=0.0, source_out_s=4.0, montage_in_s=0.0, montage_out_s=4.0,
    peak_source_s=1.0, peak_montage_s=1.0, peak_on_downbeat=True, in_beat=0, out_beat=8, tempo_bpm=120.0,
    beat_s=0.5, intro_s=2.0, score=0.5, score_breakdown={}, credit="@u", transition_in="cut",
    transition_s=0.0, source_fps=30.0, source_width=320, source_height=180, source_rotation=0,
    source_has_audio=True,
)  # fmt: skip


def _spans(*games_and_seconds: tuple[str, float]) -> list[EditSpan]:
    spans, t = [], 2.0
    for i, (game, seconds) in enumerate(games_and_seconds):
        spans.append(
            dataclasses.replace(SPAN, order=i + 1, game=game, montage_in_s=t, montage_out_s=t + seconds)
        )
        t += seconds
    return spans


def test_the_theme_is_the_game_with_the_most_screen_time() -> None:
    # Quake has more clips, Doom more seconds: seconds win; spellings of one game count together.
    spans = _spans(("Quake", 3.0), ("Doom", 6.0), ("Quake", 3.0), ("doom ", 1.0), ("DOOM", 0.5))
    assert most_featured_game(spans) == ("Doom", 7.5)
    theme = resolve_theme(spans, None)
    assert (theme.name, theme.source, theme.slug) == ("Doom", "most_featured", "doom")
    assert theme.title(WEEK) == "Weekly Highlights — Doom week · January 27, 2025"
    # A tie goes to the name first in the alphabet, whatever the order of the cut.
    assert most_featured_game(_spans(("Tetris", 5.0), ("Quake", 5.0)))[0] == "Quake"  # type: ignore[index]
    assert most_featured_game(_spans(("Quake", 5.0), ("Tetris", 5.0)))[0] == "Quake"  # type: ignore[index]
    # An admin's setting wins; a cut without games has no theme and keeps the seed's title.
    assert resolve_theme(spans, "Retro shooters").source == "admin"
    bare = resolve_theme(_spans(("", 5.0)), None)
    assert (bare.source, bare.title(WEEK), bare.palette) == (
        "none",
        "Weekly Highlights - January 27, 2025",
        DEFAULT_PALETTE,
    )


def test_palettes_are_shipped_for_known_games_and_derived_the_same_way_for_others() -> None:
    assert slugify("Apex Legends") == "apex-legends" and slugify("Pokémon Go!") == "pokemon-go"
    assert palette_for("doom") == KNOWN_PALETTES["doom"]
    derived = palette_for("stardew-valley")
    assert derived == derived_palette("stardew-valley") != derived_palette("hades")
    assert max(derived.dark) < 60 < max(derived.light)  # a dark card behind light text
    assert min(derived.text) > 200


def test_a_theme_with_its_own_music_folder_takes_its_track_from_there(tmp_path: Path) -> None:
    library = tmp_path / "music"
    (library / "doom").mkdir(parents=True)
    for name in ("a.wav", "b.mp3", "doom/riff.flac", "doom/cover.jpg"):
        (library / name).write_bytes(b"")  # chosen by name only; nothing here is decoded
    assert week_track_path(library, WEEK, "doom") == library / "doom" / "riff.flac"
    assert week_track_path(library, WEEK, "quake") in {library / "a.wav", library / "b.mp3"}  # no folder
    assert week_track_path(library, WEEK, None) in {library / "a.wav", library / "b.mp3"}
    (library / "empty").mkdir()
    assert week_track_path(library, WEEK, "empty") in {library / "a.wav", library / "b.mp3"}
    assert week_track_path(None, WEEK, "doom") is None


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24").astype(np.float64)


def _mse(frame: np.ndarray, card: Image.Image) -> float:
    return float(((frame - np.asarray(card, dtype=np.float64)) ** 2).mean())


def _materialize(selection: list[str], db_url: str, tmp_path: Path) -> dg.ExecuteInProcessResult:
    store = LocalMediaStoreResource(root=str(tmp_path / "media"))
    return dg.materialize(
        [eligible_jobs, selected_clips, scene_segments, scored_highlights, montage_renders],
        selection=selection,
        partition_key=WEEK,
        resources={
            "platform_db": PlatformDatabase(url=db_url),
            "table_io_manager": TableIOManager(url=db_url),
            "upload_storage": UploadStorage(root=str(tmp_path / "storage")),
            "settings": load_settings(),
            "media_store": store,
            "media_io_manager": MediaIOManager(media_store=store, cache_dir=str(tmp_path / "cache")),
        },
        run_config={
            "ops": {
                "scored_highlights": {"config": {"target_duration_s": 24.0, "min_clips": 3}},
                "montage_renders": {"config": {"width_scale": 1 / 6, "fps": 30}},
            }
        },
    )


def _theme_metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    (mat,) = result.asset_materializations_for_node("scored_highlights")
    return {k: mat.metadata[k].value for k in ("theme", "theme_source")}


def test_the_theme_reaches_the_title_card_from_the_cut_and_from_an_admin(db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    db = PlatformDatabase(url=db_url)
    with db.session() as s:
        for i, game in enumerate(["Doom", "Doom", "Doom", "Quake"]):
            rel = f"u/clip_{i}.mp4"
            write_clip(tmp_path / "storage" / rel, plan_clip(8.0, 30, seed=820 + i, width=320, height=180))
            add_upload(s, f"player{i}", rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), game)
    upstream = ["eligible_jobs", "selected_clips", "scene_segments"]
    video = tmp_path / "media" / "weeks" / WEEK / "landscape_render" / "video.mp4"

    result = _materialize([*upstream, "scored_highlights", "landscape_render"], db_url, tmp_path)
    assert result.success
    seconds: dict[str, float] = defaultdict(float)
    for span in result.output_for_node("scored_highlights"):
        seconds[span.game] += span.montage_out_s - span.montage_in_s
    most = max(seconds, key=lambda g: seconds[g])
    assert _theme_metadata(result) == {"theme": most, "theme_source": "most_featured"}
    title = f"Weekly Highlights — {most} week · January 27, 2025"
    (render,) = result.asset_materializations_for_node("montage_renders")
    assert render.metadata["title"].value == title
    frame = _first_frame(video)
    h, w = frame.shape[:2]
    themed = title_card(w, h, title, palette=palette_for(slugify(most)))
    assert _mse(frame, themed) < 60  # the card as drawn, through the H.264 encode
    assert _mse(frame, themed) * 4 < _mse(frame, title_card(w, h, "Weekly Highlights - January 27, 2025"))

    with db.session() as s:
        set_theme(s, WEEK, "Retro Arena", "test")
    again = _materialize(["scored_highlights", "landscape_render"], db_url, tmp_path)
    assert again.success
    assert _theme_metadata(again) == {"theme": "Retro Arena", "theme_source": "admin"}
    retro_title = "Weekly Highlights — Retro Arena week · January 27, 2025"
    frame = _first_frame(video)
    retro = title_card(w, h, retro_title, palette=derived_palette("retro-arena"))
    assert _mse(frame, retro) < 60
    # The text itself changed, not only the colours: the same colours with the old title are further off.
    assert _mse(frame, retro) * 2 < _mse(
        frame, title_card(w, h, title, palette=derived_palette("retro-arena"))
    )


def _write_track(path: Path, bpm: int) -> None:
    beat = 60 / bpm
    music = generate(plan_for_week("lib", bpm, 20.0, 0.0, [8 * beat * k for k in range(1, 4)], [0.8] * 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout="stereo")
        data = (np.clip(music, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1).copy()
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_a_most_featured_theme_with_its_own_music_is_cut_again_on_that_tracks_beat(tmp_path: Path) -> None:
    library = tmp_path / "music"
    _write_track(library / "house.wav", 110)
    _write_track(library / "doom" / "riff.wav", 138)
    cuts: list[float | None] = []

    def cut(track: TrackBeats | None) -> tuple[Timeline, list[EditSpan]]:
        """The week as the timeline would cut it: Doom leads whatever the tempo; the tempo is recorded."""
        cuts.append(track.tempo_bpm if track else None)
        return cast(Timeline, None), _spans(("Doom", 8.0), ("Quake", 4.0))

    themed = cut_for_theme(cut, WEEK, None, library)
    assert (themed.theme.name, themed.theme.source) == ("Doom", "most_featured")
    assert themed.track is not None and themed.track.path == library / "doom" / "riff.wav"
    assert [round(t or 0) for t in cuts] == [110, 138]  # first on the library's track, then on Doom's
    cuts.clear()
    admin = cut_for_theme(cut, WEEK, "Quake", library)  # known up front; no Quake folder: one cut
    assert (admin.theme.source, [round(t or 0) for t in cuts]) == ("admin", [110])
    cuts.clear()
    fixed = cut_for_theme(cut, WEEK, None, library, follow_track=False)  # a fixed tempo in the config
    assert (fixed.track, cuts, fixed.theme.name) == (None, [None], "Doom")
