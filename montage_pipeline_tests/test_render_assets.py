"""The render assets on a planted week: both formats in the media store, spec checks passed."""

from pathlib import Path

import av
import dagster as dg
import pytest
from PIL import Image

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.audio import mixed_audio, soundtrack
from montage_pipeline.defs.assets.render import montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_generated_uploads

WEEK = "2025-01-27"


def test_a_week_renders_to_both_formats(sqlite_url: str, tmp_path: Path) -> None:
    upgrade(sqlite_url)
    root = tmp_path / "storage"
    db = PlatformDatabase(url=sqlite_url)
    with db.session() as s:
        add_generated_uploads(s, root, 4, 12.0, seed=700)
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (200, 100), (255, 0, 200, 255)).save(logo)
    Image.new("RGB", (640, 360), (0, 200, 60)).save(tmp_path / "outro.png")
    store = LocalMediaStoreResource(root=str(tmp_path / "media"))
    result = dg.materialize(
        [
            eligible_jobs,
            selected_clips,
            scene_segments,
            scored_highlights,
            soundtrack,
            montage_renders,
            mixed_audio,
        ],
        partition_key=WEEK,
        resources={
            "platform_db": db,
            "table_io_manager": TableIOManager(url=sqlite_url),
            "upload_storage": UploadStorage(root=str(root)),
            "settings": load_settings(),
            "media_store": store,
            "media_io_manager": MediaIOManager(media_store=store, cache_dir=str(tmp_path / "cache")),
        },
        run_config={
            "ops": {
                "scored_highlights": {"config": {"target_duration_s": 30.0, "min_clips": 3}},
                "montage_renders": {
                    "config": {
                        "width_scale": 1 / 6,
                        "fps": 30,
                        "branding_logo": str(logo),
                        "outro_image": str(tmp_path / "outro.png"),
                        "outro_s": 1.5,
                    }
                },
            }
        },
    )
    assert result.success
    spans = result.output_for_node("scored_highlights")
    total = spans[-1].montage_out_s
    checks = {
        e.asset_check_evaluation_data.asset_key.to_user_string(): e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    # The other cuts' outputs report too: without their EDLs (short_highlights and long_highlights were
    # not run) they are empty bundles whose check has nothing to hold to the spec.
    assert checks == {
        "landscape_render": True,
        "portrait_render": True,
        "short_portrait_render": True,
        "long_landscape_render": True,
        "mixed_audio": True,
    }
    for name, size in (("landscape_render", (320, 180)), ("portrait_render", (180, 320))):
        folder = tmp_path / "media" / "weeks" / WEEK / name
        expected = {"video.mp4", "thumbnail.jpg", "contact_sheet.jpg", "manifest.json"}
        if name == "portrait_render":
            expected.add("video_unbranded.mp4")  # TikTok's copy: no added branding
        assert {p.name for p in folder.iterdir()} == expected
        with av.open(str(folder / "video.mp4")) as c:
            v = c.streams.video[0]
            assert (v.width, v.height) == size
            assert v.duration is not None and v.time_base is not None
            assert float(v.duration * v.time_base) == pytest.approx(total + 1.5, abs=0.05)  # + the end card
            assert not c.streams.audio  # the mix adds the soundtrack
        meta = next(
            m
            for m in result.asset_materializations_for_node("montage_renders")
            if m.asset_key.to_user_string() == name
        ).metadata
        assert meta["spec_failures"].value == "none"
        assert str(meta["contact_sheet"].value).startswith("![contact sheet](data:image/jpeg;base64,")

    portrait = tmp_path / "media" / "weeks" / WEEK / "portrait_render"
    magenta = []
    for video in ("video.mp4", "video_unbranded.mp4"):
        with av.open(str(portrait / video)) as c:
            frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 200).to_ndarray(format="rgb24")
        pink = (frame[..., 0] > 200) & (frame[..., 1] < 80) & (frame[..., 2] > 150)
        magenta.append(int(pink.sum()))
    assert magenta[0] > 50 and magenta[1] == 0  # the logo is on the branded render only

    final = tmp_path / "media" / "weeks" / WEEK / "mixed_audio"
    assert {p.name for p in final.iterdir()} >= {
        "final_landscape.mp4",
        "final_portrait.mp4",
        "final_portrait_unbranded.mp4",
        "soundtrack.m4a",
        "loudness.png",
    }
    for name in ("final_landscape.mp4", "final_portrait.mp4", "final_portrait_unbranded.mp4"):
        with av.open(str(final / name)) as c:
            a, v = c.streams.audio[0], c.streams.video[0]
            assert (a.codec_context.name, a.rate, a.channels) == ("aac", 48000, 2)
            assert v.codec_context.name == "h264"
    meta = result.asset_materializations_for_node("mixed_audio")[0].metadata
    assert abs(float(meta["loudness_lufs"].value) + 14) <= 1.0  # type: ignore[arg-type]
    assert float(meta["true_peak_dbtp"].value) <= -1.0  # type: ignore[arg-type]
    # Two cut lengths (with the end card; the unbranded copy without it): the mix is mastered once and the
    # shorter copy is cut from that master (mastered again only if its encoded peak came out over).
    assert 1 <= int(meta["master_rounds"].value) <= 8  # type: ignore[arg-type]
    assert meta["audio_failures"].value == "none"
    # Rendered at another rate and with an end card than `soundtrack` planned for: remade after the render.
    assert str(meta["soundtrack_made"].value).startswith("made after the render: no soundtrack prepared for")
