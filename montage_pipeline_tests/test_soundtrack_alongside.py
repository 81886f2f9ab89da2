"""The soundtrack made while the render runs (`soundtrack`) is the soundtrack `mixed_audio` would have
made after it: same packets in every final, the short's included; a stale one is made again."""

from pathlib import Path

import av
import dagster as dg
import pytest

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.audio import mixed_audio, soundtrack
from montage_pipeline.defs.assets.cuts import long_highlights, short_highlights
from montage_pipeline.defs.assets.render import montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.highlights.cuts import load_cut
from montage_pipeline.highlights.prepared_soundtrack import PREPARED, MixSettings, finish_cut, mix_maker
from montage_pipeline.highlights.soundtrack import AUDIO_MEASUREMENTS, cut_renders
from montage_pipeline.media.audio_specs import AudioMeasurements, audio_digest
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.settings import load_settings
from montage_pipeline.storage.media_store import LocalMediaStore
from montage_pipeline_tests.selection_support import add_generated_uploads

WEEK = "2025-01-27"


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.mark.long
def test_the_soundtrack_made_beside_the_render_is_the_one_made_after_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    upgrade(sqlite_url)
    root = tmp_path / "storage"
    db = PlatformDatabase(url=sqlite_url)
    with db.session() as s:
        add_generated_uploads(s, root, 4, 12.0, seed=900)
    store = LocalMediaStoreResource(root=str(tmp_path / "media"))
    resources = {
        "platform_db": db,
        "table_io_manager": TableIOManager(url=sqlite_url),
        "upload_storage": UploadStorage(root=str(root)),
        "settings": load_settings(),
        "media_store": store,
        "media_io_manager": MediaIOManager(media_store=store, cache_dir=str(tmp_path / "cache")),
    }
    assets = [
        eligible_jobs,
        selected_clips,
        scene_segments,
        scored_highlights,
        short_highlights,
        long_highlights,
        soundtrack,
        montage_renders,
        mixed_audio,
    ]
    result = dg.materialize(
        assets,
        partition_key=WEEK,
        resources=resources,
        run_config={
            "ops": {
                "scored_highlights": {"config": {"target_duration_s": 30.0, "min_clips": 3}},
                "short_highlights": {"config": {"target_duration_s": 15.0}},
                "montage_renders": {"config": {"width_scale": 1 / 6}},
            }
        },
    )
    assert result.success
    meta = result.asset_materializations_for_node("mixed_audio")[0].metadata
    assert meta["soundtrack_made"].value == PREPARED
    assert meta["short_soundtrack_made"].value == PREPARED
    assert meta["audio_failures"].value == "none"
    # Every final carries its soundtrack's packets: its check is the soundtrack's own measurement, and
    # the measurements go beside the finals for the export gate, one per distinct soundtrack.
    assert meta["finals_audio_from_soundtrack"].value == "3 of 3"
    measured = AudioMeasurements.read(
        tmp_path / "media" / "weeks" / WEEK / "mixed_audio" / AUDIO_MEASUREMENTS
    )
    finals_digests = {
        audio_digest(tmp_path / "media" / "weeks" / WEEK / "mixed_audio" / name)[0]
        for name in ("final_landscape.mp4", "final_portrait.mp4", "final_short_portrait.mp4")
    }
    assert finals_digests <= set(measured.reports)

    # The same cuts' soundtracks made after the render, from the renders' own lengths.
    spans = result.output_for_node("scored_highlights")
    weeks = tmp_path / "media" / "weeks" / WEEK
    finals = weeks / "mixed_audio"
    make = mix_maker(WEEK, load_settings().music_library, MixSettings(), None)
    renders = {
        "final_landscape.mp4": weeks / "landscape_render" / "video.mp4",
        "final_portrait.mp4": weeks / "portrait_render" / "video.mp4",
    }
    after = finish_cut("main", spans, renders, None, make, tmp_path / "after", MixSettings().bitrate)
    assert after.made.startswith("made after the render")
    short = load_cut(LocalMediaStore(tmp_path / "media"), WEEK, "short").spans
    short_after = finish_cut(
        "short",
        short,
        cut_renders("short", {"video.mp4": weeks / "short_portrait_render" / "video.mp4"}),
        None,
        make,
        tmp_path / "after-short",
        MixSettings().bitrate,
    )
    compared = {**after.done.finals, **short_after.done.finals}
    assert set(compared) == {"final_landscape.mp4", "final_portrait.mp4", "final_short_portrait.mp4"}
    for name, remade in compared.items():
        packets = _audio_packets(finals / name)
        assert len(packets) > 100
        assert packets == _audio_packets(remade), name

    # scored_highlights rerun with another length: the prepared soundtrack no longer fits its EDL.
    rerun = dg.materialize(
        assets,
        partition_key=WEEK,
        resources=resources,
        selection=["scored_highlights", "landscape_render", "portrait_render", "mixed_audio"],
        run_config={
            "ops": {
                "scored_highlights": {"config": {"target_duration_s": 24.0, "min_clips": 3}},
                "montage_renders": {"config": {"width_scale": 1 / 6}},
            }
        },
    )
    assert rerun.success
    meta = rerun.asset_materializations_for_node("mixed_audio")[0].metadata
    assert (
        meta["soundtrack_made"].value
        == "made after the render: the main EDL changed since the soundtrack was made"
    )
    assert meta["audio_failures"].value == "none"
    duration = meta["duration_s"].value
    assert isinstance(duration, float)
    assert duration == pytest.approx(rerun.output_for_node("scored_highlights")[-1].montage_out_s, abs=0.05)
