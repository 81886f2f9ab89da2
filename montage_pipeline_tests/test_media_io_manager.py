"""Media assets travel as files through the media store (local folder, and S3 over HTTP via moto)."""

import os
from pathlib import Path

import dagster as dg

from montage_pipeline.defs.io_managers.media_io_manager import MediaBundle, MediaFile, MediaIOManager
from montage_pipeline.defs.partitions import weekly_partitions
from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.storage.hashing import file_sha256

received: dict[str, MediaBundle] = {}
workdir: list[Path] = []


@dg.asset(partitions_def=weekly_partitions, io_manager_key="media_io_manager")
def rendered(context: dg.AssetExecutionContext) -> MediaBundle:
    out = workdir[-1]
    video = out / "video.mp4"
    video.write_bytes(os.urandom(9 * 1024 * 1024 + 17))  # over the multipart threshold
    thumb = out / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8jpeg")
    return MediaBundle(
        {"video.mp4": MediaFile(video, "video/mp4"), "thumb.jpg": MediaFile(thumb, "image/jpeg")}
    )


@dg.asset(partitions_def=weekly_partitions, io_manager_key="media_io_manager")
def consumer(context: dg.AssetExecutionContext, rendered: MediaBundle) -> None:
    received[context.partition_key] = rendered


def test_bundles_round_trip_through_the_store(store_resource: MediaStoreResource, tmp_path: Path) -> None:
    io_manager = MediaIOManager(media_store=store_resource, cache_dir=str(tmp_path / "cache"))
    store = store_resource.store()
    workdir.append(tmp_path / "work")
    workdir[-1].mkdir()
    result = dg.materialize(
        [rendered, consumer], partition_key="2025-01-27", resources={"media_io_manager": io_manager}
    )
    assert result.success
    bundle = received["2025-01-27"]
    assert set(bundle.files) == {"video.mp4", "thumb.jpg"}
    source = tmp_path / "work" / "video.mp4"
    assert file_sha256(bundle["video.mp4"].path) == file_sha256(source)
    assert bundle["video.mp4"].path.is_relative_to(tmp_path / "cache")
    assert store.exists("weeks/2025-01-27/rendered/video.mp4")
    meta = result.asset_materializations_for_node("rendered")[0].metadata
    assert meta["media_files"].value == 2
