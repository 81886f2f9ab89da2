"""Every asset's value of a built week loads from a script, through the code location's own Definitions.

`Definitions.load_asset_value` calls the IO managers without a run: no input name, no input annotation.
The table IO manager then rebuilds the rows from the type the asset declares.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, inspect, text

from montage_pipeline.defs.code_location import build_definitions
from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle
from montage_pipeline.highlights.rows import EditSpan, SceneSegment
from montage_pipeline.publishing.exports import ExportedFile
from montage_pipeline.publishing.posting import SocialPostRow
from montage_pipeline.selection.rows import EligibleJob, SelectedClip
from montage_pipeline.storage.hashing import file_sha256
from montage_pipeline_tests.publish_support import WEEK, BuiltWeek

ROWS = {
    "eligible_jobs": EligibleJob,
    "selected_clips": SelectedClip,
    "scene_segments": SceneSegment,
    "scored_highlights": EditSpan,
    "short_highlights": EditSpan,
    "long_highlights": EditSpan,
    "s3_exports": ExportedFile,
    "social_posts": SocialPostRow,
}
MEDIA = {"landscape_render", "portrait_render", "soundtrack", "mixed_audio"}
# The other cuts' renders: files, or (this built week has no short or long EDL) an explicit skip.
CUT_MEDIA = {"short_portrait_render", "long_landscape_render"}
# No value through an IO manager: its rows are the platform's own `post_engagement` table.
PLATFORM_TABLES = {"post_engagement"}


def _stored_rows(db_url: str, asset: str) -> int:
    """How many rows the week has in the asset's table (0 when the asset was never materialized)."""
    engine = create_engine(db_url)
    try:
        if not inspect(engine).has_table(f"montage_{asset}"):
            return 0
        with engine.connect() as conn:
            query = text(f"SELECT count(*) FROM montage_{asset} WHERE partition_key = :week")
            return int(conn.execute(query, {"week": WEEK}).scalar_one())
    finally:
        engine.dispose()


def test_every_asset_of_a_built_week_loads_from_a_script(
    built_week: BuiltWeek, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production profile pointed at the built week: its database, bucket and storage root.
    env = {
        "MONTAGE_PROFILE": "production",
        "MONTAGE_DATABASE_URL": built_week.db_url,
        "MONTAGE_STORAGE_ROOT": str(built_week.root),
        "MONTAGE_S3_BUCKET": built_week.bucket,
        "MONTAGE_S3_ENDPOINT_URL": built_week.endpoint,
        "MONTAGE_S3_REGION": "us-east-1",
    }
    monkeypatch.setenv("MONTAGE_DATABASE_URL", built_week.db_url)  # read by the resources' EnvVar
    monkeypatch.setenv("MONTAGE_HOME", str(tmp_path / "home"))  # the media IO manager's cache
    defs = build_definitions(env)
    keys = {key.to_user_string(): key for key in defs.resolve_all_asset_keys()}
    assert set(keys) == set(ROWS) | MEDIA | CUT_MEDIA | PLATFORM_TABLES, "a new asset: say what its value is"

    with dg.instance_for_test() as instance:
        values = {
            name: defs.load_asset_value(key, partition_key=WEEK, instance=instance)
            for name, key in keys.items()
            if name not in PLATFORM_TABLES
        }

    for name, row_type in ROWS.items():
        rows = values[name]
        assert isinstance(rows, list), name
        assert len(rows) == _stored_rows(built_week.db_url, name), name
        assert all(isinstance(row, row_type) for row in rows), name
    for name in ("eligible_jobs", "selected_clips", "scene_segments", "scored_highlights", "s3_exports"):
        assert values[name], f"the built week has {name}"
    for name in MEDIA:
        bundle = values[name]
        assert isinstance(bundle, MediaBundle) and bundle.files, name
        for media in bundle.files.values():
            assert media.path.is_file() and media.path.stat().st_size == media.size_bytes, name
            assert file_sha256(media.path) == media.sha256, name
    assert "final_landscape.mp4" in values["mixed_audio"].files  # type: ignore[attr-defined]
    assert "soundtracks.json" in values["soundtrack"].files  # type: ignore[attr-defined]
    for name in CUT_MEDIA:
        bundle = values[name]
        assert isinstance(bundle, MediaBundle) and (bool(bundle.files) != bool(bundle.skip_reason)), name
