"""The media store backends: a local folder and S3 over HTTP (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from montage_pipeline.resources.media_store import LocalMediaStore, MediaStore, S3MediaStore, file_sha256


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
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="media-test")
    return S3MediaStore(s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1"), bucket="media-test")


def test_files_round_trip_byte_for_byte(store: MediaStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as fh:  # larger than boto3's multipart threshold (8 MiB)
        for i in range(10):
            fh.write(bytes([i]) * (1 << 20))
    assert not store.exists("weeks/2025-01-27/big.bin")
    store.put_file(source, "weeks/2025-01-27/big.bin", content_type="application/octet-stream")
    assert store.exists("weeks/2025-01-27/big.bin")
    assert store.size("weeks/2025-01-27/big.bin") == source.stat().st_size
    back = tmp_path / "back" / "big.bin"
    store.get_file("weeks/2025-01-27/big.bin", back)
    assert file_sha256(back) == file_sha256(source)


@pytest.mark.parametrize("key", ["../escape.bin", "/abs.bin", "a/../../b.bin", ""])
def test_keys_cannot_escape_the_store(store: MediaStore, tmp_path: Path, key: str) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="relative path"):
        store.put_file(source, key)
