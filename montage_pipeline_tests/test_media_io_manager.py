"""Media assets travel as files through the media store (local folder, and S3 over HTTP via moto)."""

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from montage_pipeline.io_managers.media_io_manager import MediaBundle, MediaFile, MediaIOManager
from montage_pipeline.partitions import weekly_partitions
from montage_pipeline.resources.media_store import LocalMediaStore, MediaStore, S3MediaStore, file_sha256

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


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "local":
        return LocalMediaStore(root=str(tmp_path / "media"))
    endpoint = request.getfixturevalue("s3_endpoint")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="bundles")
    return S3MediaStore(s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"), bucket="bundles")


def test_bundles_round_trip_through_the_store(store: MediaStore, tmp_path: Path) -> None:
    io_manager = MediaIOManager(media_store=store, cache_dir=str(tmp_path / "cache"))
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
