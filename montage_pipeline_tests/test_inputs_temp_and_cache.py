"""Nothing piles up: the media cache is bounded and private under the data folder; posting cleans its temp."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation of the assets at runtime.

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile, MediaIOManager
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import LocalMediaStoreResource
from montage_pipeline_tests.publish_support import BuiltWeek
from montage_pipeline_tests.social_support import Fakes, post_week, start_fakes

WEEKS = ["2025-01-27", "2025-02-03", "2025-02-10"]
VIDEO_BYTES = 1_000_000
loaded: dict[str, MediaBundle] = {}
source_dir: list[Path] = []


@dg.asset(partitions_def=weekly_partitions, io_manager_key="media_io_manager")
def clip_bundle(context: dg.AssetExecutionContext) -> MediaBundle:
    video = source_dir[-1] / f"{context.partition_key}.mp4"
    video.write_bytes(os.urandom(VIDEO_BYTES))
    return MediaBundle({"video.mp4": MediaFile(video, "video/mp4")})


@dg.asset(partitions_def=weekly_partitions, io_manager_key="media_io_manager")
def uses_bundle(context: dg.AssetExecutionContext, clip_bundle: MediaBundle) -> None:
    loaded[context.partition_key] = clip_bundle


def _run(io_manager: MediaIOManager, week: str) -> Path:
    result = dg.materialize(
        [clip_bundle, uses_bundle], partition_key=week, resources={"media_io_manager": io_manager}
    )
    assert result.success
    return loaded[week]["video.mp4"].path


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    source_dir.append(tmp_path / "src")
    source_dir[-1].mkdir()
    return source_dir[-1]


def test_the_media_cache_lives_privately_under_the_data_folder(
    tmp_path: Path, sources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from montage_pipeline.defs.resources.wiring import build_resources
    from montage_pipeline.settings import load_settings

    # The code location's IO manager, as the wiring builds it from the settings.
    io_manager = build_resources(load_settings({"MONTAGE_HOME": str(tmp_path / "home")}))["media_io_manager"]
    io_manager = MediaIOManager(
        media_store=LocalMediaStoreResource(root=str(tmp_path / "media")), cache_dir=io_manager.cache_dir
    )
    cached = _run(io_manager, WEEKS[0])
    cache = tmp_path / "home" / "cache" / "media"
    assert cached.is_relative_to(cache) and cached.stat().st_size == VIDEO_BYTES
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_the_media_cache_evicts_the_least_recently_used_files(tmp_path: Path, sources: Path) -> None:
    cache = tmp_path / "cache"
    io_manager = MediaIOManager(
        media_store=LocalMediaStoreResource(root=str(tmp_path / "media")),
        cache_dir=str(cache),
        cache_max_bytes=int(2.5 * VIDEO_BYTES),  # room for two weeks' videos, not three
    )
    first, second = _run(io_manager, WEEKS[0]), _run(io_manager, WEEKS[1])
    assert first.exists() and second.exists()
    os.utime(second, (1, 1))  # the second week is now the least recently used one...
    again = _run(io_manager, WEEKS[0])  # ...and the first week, just reloaded, the most recent
    assert again == first
    third = _run(io_manager, WEEKS[2])
    assert third.exists() and first.exists() and not second.exists()
    videos = [p for p in cache.rglob("*.mp4")]
    assert sum(p.stat().st_size for p in videos) <= 2.5 * VIDEO_BYTES and len(videos) == 2
    # An evicted bundle is downloaded again, whole, when it is needed.
    assert _run(io_manager, WEEKS[1]).stat().st_size == VIDEO_BYTES


@pytest.fixture
def fakes(built_week: BuiltWeek, monkeypatch: pytest.MonkeyPatch) -> Iterator[Fakes]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fakes speak plain HTTP on 127.0.0.1
    yield from start_fakes(built_week)


def test_social_posts_leaves_no_temp_folder(
    built_week: BuiltWeek, fakes: Fakes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # this run's temp folders, and only them, here
    result = post_week(built_week, fakes)
    assert result.success
    assert fakes.youtube.posts and fakes.youtube.posts[0]["thumbnail_bytes"] > 0  # a thumbnail went through
    assert sorted(p.name for p in temp.glob("montage-post-*")) == []
