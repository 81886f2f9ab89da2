"""`scene_segments` as one step per clip (MONTAGE_ANALYSIS_FANOUT=per_clip) against the in-step form.

A planted week is selected once; one clip is then damaged on disk (after its verification, as a disk
or a partial upload could). Both forms analyse the same selection into media stores of their own, the
per-clip one into a bucket on the S3 server, so the rows passed between its steps go through S3.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from montage_pipeline.defs.assets.analysis import in_step_scene_segments
from montage_pipeline.defs.assets.analysis_fanout import mapping_keys, per_clip_scene_segments
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.executors import render_pool_ops
from montage_pipeline.defs.io_managers.step_rows_io_manager import StepRowsIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import (
    LocalMediaStoreResource,
    MediaStoreResource,
    S3MediaStoreResource,
)
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_upload

WEEK = "2025-01-27"
MONDAY = datetime(2025, 1, 27, tzinfo=UTC)


def _resources(db_url: str, root: Path, media: MediaStoreResource) -> dict[str, object]:
    return {
        "platform_db": PlatformDatabase(url=db_url),
        "table_io_manager": TableIOManager(url=db_url),
        "upload_storage": UploadStorage(root=str(root)),
        "settings": load_settings(),
        "media_store": media,
        "io_manager": StepRowsIOManager(media_store=media),
    }


def _bucket(endpoint: str) -> S3MediaStoreResource:
    name = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return S3MediaStoreResource(s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"), bucket=name)


def _analyse(
    asset: dg.AssetsDefinition, db_url: str, root: Path, media: MediaStoreResource
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [asset, eligible_jobs, selected_clips],
        selection=[asset.key],
        partition_key=WEEK,
        resources=_resources(db_url, root, media),
    )


def test_each_clip_is_a_step_and_the_table_is_the_in_step_one(tmp_path: Path, s3_endpoint: str) -> None:
    db_url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    upgrade(db_url)
    root = tmp_path / "uploads"
    db = PlatformDatabase(url=db_url)
    with db.session() as s:
        for i in range(4):
            rel = f"uploads/clip_{i}.mp4"
            write_clip(root / rel, plan_clip(6.0 + i, 30, seed=40 + i, width=160, height=90))
            add_upload(s, f"player{i}", rel, MONDAY + timedelta(hours=i), "Valorant")
    selection = dg.materialize(
        [eligible_jobs, selected_clips],
        partition_key=WEEK,
        resources=_resources(db_url, root, LocalMediaStoreResource(root=str(tmp_path / "sel"))),
    )
    clips = selection.output_for_node("selected_clips")
    assert len(clips) == 4
    damaged = clips[1]
    Path(damaged.path).write_bytes(Path(damaged.path).read_bytes()[:300])  # header only, no frames

    in_step = _analyse(
        in_step_scene_segments(), db_url, root, LocalMediaStoreResource(root=str(tmp_path / "a"))
    )
    per_clip = _analyse(per_clip_scene_segments(), db_url, root, _bucket(s3_endpoint))
    assert in_step.success and per_clip.success

    # One analysis step per clip, named after the clip, beside the listing and the assembly.
    started = {e.step_key for e in per_clip.all_events if e.event_type_value == "STEP_START"}
    keys = mapping_keys([c.clip_id for c in clips])
    assert started == {
        "scene_segments.list_clips",
        "scene_segments.assemble_segments",
        *(f"scene_segments.analyse_clip[{k}]" for k in keys),
    }

    # The same table and the same figures; the damaged clip is left out with its reason, not a failure.
    assert per_clip.output_for_node("scene_segments") == in_step.output_for_node("scene_segments")
    ours = per_clip.asset_materializations_for_node("scene_segments")[0].metadata
    theirs = in_step.asset_materializations_for_node("scene_segments")[0].metadata
    for key in ("clips_analysed", "clips_cached", "clips_failed", "scenes", "frames_decoded"):
        assert ours[key].value == theirs[key].value, key
    assert ours["clips_analysed"].value == 3 and ours["clips_failed"].value == 1
    failures = ours["analysis_failures"].value
    assert isinstance(failures, dict)
    assert list(failures) == [damaged.clip_id] and failures[damaged.clip_id]
    assert failures == theirs["analysis_failures"].value
    assert {r.clip_id for r in per_clip.output_for_node("scene_segments")} == {
        c.clip_id for c in clips if c is not damaged
    }


def test_a_rerun_takes_every_clip_from_the_cache(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    upgrade(db_url)
    root = tmp_path / "uploads"
    with PlatformDatabase(url=db_url).session() as s:
        for i in range(2):
            rel = f"uploads/clip_{i}.mp4"
            write_clip(root / rel, plan_clip(5.0, 30, seed=70 + i, width=160, height=90))
            add_upload(s, f"player{i}", rel, MONDAY + timedelta(hours=i), "Apex Legends")
    media = LocalMediaStoreResource(root=str(tmp_path / "media"))
    first = dg.materialize(
        [per_clip_scene_segments(), eligible_jobs, selected_clips],
        partition_key=WEEK,
        resources=_resources(db_url, root, media),
    )
    again = _analyse(per_clip_scene_segments(), db_url, root, media)
    meta = again.asset_materializations_for_node("scene_segments")[0].metadata
    assert meta["clips_cached"].value == 2 and meta["clips_analysed"].value == 0
    assert again.output_for_node("scene_segments") == first.output_for_node("scene_segments")


def test_the_asset_config_reaches_every_clip_step(tmp_path: Path) -> None:
    """The run config of the in-step form (`ops: scene_segments: config:`) configures the per-clip one."""
    db_url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    upgrade(db_url)
    root = tmp_path / "uploads"
    with PlatformDatabase(url=db_url).session() as s:
        write_clip(root / "uploads/c.mp4", plan_clip(5.0, 30, seed=90, width=160, height=90))
        add_upload(s, "player", "uploads/c.mp4", MONDAY, "Apex Legends")
    media = LocalMediaStoreResource(root=str(tmp_path / "media"))
    result = dg.materialize(
        [per_clip_scene_segments(), eligible_jobs, selected_clips],
        partition_key=WEEK,
        resources=_resources(db_url, root, media),
        run_config={"ops": {"scene_segments": {"config": {"detector": "content", "analysis_width": 160}}}},
    )
    keys = {r.analysis_key for r in result.output_for_node("scene_segments")}
    assert len(keys) == 1 and "detector=content" in keys.pop()


@pytest.mark.parametrize("ids", [["a-1", "a_1", "a.1"], ["", "x" * 80]])
def test_mapping_keys_are_valid_and_unique(ids: list[str]) -> None:
    keys = mapping_keys(ids)
    assert len(set(keys)) == len(ids)
    assert all(k and all(ch.isalnum() or ch == "_" for ch in k) for k in keys)


def test_both_forms_are_the_same_asset_in_the_catalogue() -> None:
    """Key, partitions, code version, owners, tags, kinds, column schema, group and the IO manager of
    the table: what the UI, the automation and the downstream assets see does not change."""
    specs = [next(iter(a.specs)) for a in (in_step_scene_segments(), per_clip_scene_segments())]
    fields = ("key", "partitions_def", "code_version", "owners", "tags", "kinds", "group_name")
    for field in fields:
        assert getattr(specs[0], field) == getattr(specs[1], field), field
    assert specs[0].metadata == specs[1].metadata and specs[0].deps == specs[1].deps
    io_managers = {
        a.get_io_manager_key_for_asset_key(a.key)
        for a in (in_step_scene_segments(), per_clip_scene_segments())
    }
    assert io_managers == {"table_io_manager"}
    # The k8s executor's per-step config reads the pools of every asset's ops, graphs' too.
    pools = {op.pool for op in per_clip_scene_segments().node_def.iterate_op_defs()}
    assert pools == {"analysis", None}
    assert render_pool_ops(dg.Definitions(assets=[per_clip_scene_segments()])) == set()
