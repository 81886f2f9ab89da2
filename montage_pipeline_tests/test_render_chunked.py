"""The render as steps (MONTAGE_RENDER_CHUNKS=n) against the single-step render of the same week: same
outputs, frames, durations, bundles and passed spec checks; the main cut in several chunk steps, the
short in a step of its own, the pieces passed through the media store; then `portrait_render` alone
(a subset of the graph multi-asset) without touching the other outputs."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import dagster as dg
import pytest

from montage_pipeline.defs.assets.analysis import scene_segments, scored_highlights
from montage_pipeline.defs.assets.cuts import short_highlights
from montage_pipeline.defs.assets.render import single_step_montage_renders
from montage_pipeline.defs.assets.render_chunked import chunked_montage_renders
from montage_pipeline.defs.assets.selection import eligible_jobs, selected_clips
from montage_pipeline.defs.executors import render_pool_ops
from montage_pipeline.defs.io_managers.media_io_manager import MediaIOManager
from montage_pipeline.defs.io_managers.step_rows_io_manager import StepRowsIOManager
from montage_pipeline.defs.io_managers.table_io_manager import TableIOManager
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline.defs.resources.platform_db import PlatformDatabase
from montage_pipeline.defs.resources.upload_storage import UploadStorage
from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.migrate import upgrade
from montage_pipeline.settings import load_settings
from montage_pipeline_tests.selection_support import add_upload

WEEK = "2025-01-27"
RENDERED = ("landscape_render", "portrait_render", "short_portrait_render")
CONFIG = {
    "scored_highlights": {"config": {"target_duration_s": 30.0, "min_clips": 3}},
    "short_highlights": {"config": {"target_duration_s": 15.0}},
    "montage_renders": {"config": {"width_scale": 1 / 6, "fps": 30}},
}


def _resources(db_url: str, uploads: Path, media: Path, cache: Path) -> dict[str, object]:
    store = LocalMediaStoreResource(root=str(media))
    return {
        "platform_db": PlatformDatabase(url=db_url),
        "table_io_manager": TableIOManager(url=db_url),
        "upload_storage": UploadStorage(root=str(uploads)),
        "settings": load_settings(),
        "media_store": store,
        "media_io_manager": MediaIOManager(media_store=store, cache_dir=str(cache)),
        "io_manager": StepRowsIOManager(media_store=store),
    }


def _render(
    renders: dg.AssetsDefinition,
    resources: dict[str, object],
    selection: tuple[str, ...] = RENDERED,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    upstream = [eligible_jobs, selected_clips, scene_segments, scored_highlights, short_highlights]
    return dg.materialize(
        [*upstream, renders],
        selection=list(selection),
        partition_key=WEEK,
        resources=resources,
        run_config={"ops": {"montage_renders": CONFIG["montage_renders"]}},
        instance=instance,
    )


def _stored(root: Path) -> dict[str, tuple[int, int]]:
    """Each stored file under `root`: (size, mtime in ns)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_chunk_steps_build_the_single_step_render(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    upgrade(db_url)
    uploads = tmp_path / "uploads"
    with PlatformDatabase(url=db_url).session() as s:
        for i in range(4):
            rel = f"u/clip_{i}.mp4"
            write_clip(uploads / rel, plan_clip(12.0, 30, seed=700 + i, width=320, height=180))
            add_upload(
                s, f"gamer{i}", rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), "Valorant"
            )
    one, many = tmp_path / "media_single", tmp_path / "media_chunked"
    built = dg.materialize(
        [eligible_jobs, selected_clips, scene_segments, scored_highlights, short_highlights],
        partition_key=WEEK,
        resources=_resources(db_url, uploads, one, tmp_path / "cache0"),
        run_config={"ops": {k: v for k, v in CONFIG.items() if k != "montage_renders"}},
    )
    assert built.success
    shutil.copytree(one, many)  # the same analysis cache, theme and short EDL for both forms

    single = _render(single_step_montage_renders(), _resources(db_url, uploads, one, tmp_path / "c1"))
    instance = dg.DagsterInstance.ephemeral()
    chunked_renders = chunked_montage_renders(3)
    chunked_resources = _resources(db_url, uploads, many, tmp_path / "c2")
    chunked = _render(chunked_renders, chunked_resources, instance=instance)
    assert single.success and chunked.success

    # The main cut in several chunk steps (split at hard cuts), the short in its own, then the join.
    steps = {e.step_key for e in chunked.all_events if e.event_type_value == "STEP_START"}
    chunk_steps = {s for s in steps if str(s).startswith("montage_renders.render_chunk[chunk_")}
    assert len(chunk_steps) >= 2, steps
    assert {"montage_renders.plan_render", "montage_renders.join_render"} <= steps
    assert "montage_renders.render_chunk[short_portrait_render]" in steps

    for result in (single, chunked):
        checks = {
            e.asset_check_evaluation_data.asset_key.to_user_string(): e.asset_check_evaluation_data.passed
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        }
        assert checks == dict.fromkeys(RENDERED, True)

    meta = {
        form: {
            m.asset_key.to_user_string(): m.metadata
            for m in result.asset_materializations_for_node("montage_renders")
        }
        for form, result in (("single", single), ("chunked", chunked))
    }
    for name in RENDERED:
        ours, theirs = meta["chunked"][name], meta["single"][name]
        for key in ("frames", "duration_s", "fps", "size", "spec_failures", "title"):
            assert ours[key].value == theirs[key].value, (name, key)
        assert ours["spec_failures"].value == "none"
        a, b = (root / "weeks" / WEEK / name for root in (many, one))
        assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
        assert _frames(a / "video.mp4") == _frames(b / "video.mp4") == theirs["frames"].value
    assert str(meta["chunked"]["landscape_render"]["decode_pass"].value).endswith("chunk steps, joined")

    # A subset of the graph multi-asset: `portrait_render` alone, after the full build. Dagster runs
    # only the steps it needs (no short's step); the other outputs are neither rematerialized nor
    # touched in the store.
    others = {name: _stored(many / "weeks" / WEEK / name) for name in RENDERED if name != "portrait_render"}
    landscape = dg.AssetKey("landscape_render")
    before = len(instance.fetch_materializations(landscape, limit=100).records)
    assert before == 1
    portrait = _render(chunked_renders, chunked_resources, ("portrait_render",), instance)
    assert portrait.success
    steps = {e.step_key for e in portrait.all_events if e.event_type_value == "STEP_START"}
    assert "montage_renders.render_chunk[short_portrait_render]" not in steps, steps
    assert {"montage_renders.plan_render", "montage_renders.join_render"} <= steps, steps
    # The chunk steps rendered the portrait's pieces only (the main pass without its landscape).
    pieces = many / "runs" / portrait.run_id / "render"
    assert {p.parent.name for p in pieces.glob("chunk_*/*/video.mp4")} == {"portrait_render"}
    made = {
        m.asset_key.to_user_string(): m.metadata
        for m in portrait.asset_materializations_for_node("montage_renders")
    }
    assert set(made) == {"portrait_render"}
    evaluated = [
        (e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.passed)
        for e in portrait.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert evaluated == [("portrait_render", True)]
    for key in ("frames", "duration_s", "fps", "size", "spec_failures"):
        assert made["portrait_render"][key].value == meta["chunked"]["portrait_render"][key].value, key
    again = many / "weeks" / WEEK / "portrait_render" / "video.mp4"
    assert _frames(again) == meta["chunked"]["portrait_render"]["frames"].value
    assert len(instance.fetch_materializations(landscape, limit=100).records) == before
    assert {name: _stored(many / "weeks" / WEEK / name) for name in others} == others


def test_both_forms_are_the_same_assets_in_the_catalogue() -> None:
    """Keys, kinds, tags, owners, code version, deps and blocking checks: what the UI and the steps
    after the render see does not change; only the chunk steps take the render pool."""
    forms = (single_step_montage_renders(), chunked_montage_renders(2))
    specs = [sorted(a.specs, key=lambda s: s.key.to_user_string()) for a in forms]
    for ours, theirs in zip(*specs, strict=True):
        for field in ("key", "partitions_def", "code_version", "owners", "tags", "kinds", "group_name"):
            assert getattr(ours, field) == getattr(theirs, field), field
        assert {d.asset_key for d in ours.deps} == {d.asset_key for d in theirs.deps}
    assert [(c.key, c.blocking) for c in forms[0].check_specs] == [
        (c.key, c.blocking) for c in forms[1].check_specs
    ]
    assert {a.get_io_manager_key_for_asset_key(k) for a in forms for k in a.keys} == {"media_io_manager"}
    assert render_pool_ops(dg.Definitions(assets=[forms[1]])) == {"render_chunk"}


@pytest.mark.parametrize("value", ["", "0", "1", "3"])
def test_render_chunks_setting(value: str) -> None:
    assert load_settings({"MONTAGE_RENDER_CHUNKS": value}).executor.render_chunks == int(value or 0)
