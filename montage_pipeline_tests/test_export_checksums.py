"""Exports verified by the store's own checksum: S3's full-object CRC-32, above and below the multipart
threshold, against the real S3 test server (moto in server mode); a failed verification leaves nothing."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import uuid
import zlib
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from dagster_aws.s3 import S3Resource

from montage_pipeline.defs.resources.media_store import S3MediaStoreResource
from montage_pipeline.publishing.exports import ExportFile, publish_file, publish_generation
from montage_pipeline.storage.hashing import file_digests
from montage_pipeline.storage.media_store import MediaStore, S3MediaStore, VerificationError

MULTIPART_THRESHOLD = TransferConfig().multipart_threshold  # boto3's managed uploads: 8 MiB


@pytest.fixture
def bucket(s3_endpoint: str) -> tuple[str, S3MediaStore]:
    name = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    s3 = S3Resource(endpoint_url=s3_endpoint, region_name="us-east-1")
    return name, S3MediaStoreResource(s3=s3, bucket=name).store()


@pytest.mark.parametrize("size", [MULTIPART_THRESHOLD + 1_234_567, 100_000])
def test_an_export_carries_s3s_full_object_checksum_of_its_bytes(
    bucket: tuple[str, S3MediaStore], s3_endpoint: str, tmp_path: Path, size: int
) -> None:
    name, store = bucket
    data = os.urandom(size)
    path = tmp_path / "final_landscape.mp4"
    path.write_bytes(data)
    generation = publish_generation(store, 12, [ExportFile(path.name, path, "video/mp4", "public")])
    (published,) = generation.files
    assert published.uploaded and published.size_bytes == size

    # Read with plain boto3: what S3 itself holds and reports, not what our store says.
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    head = s3.head_object(Bucket=name, Key=f"montage/{published.key}", ChecksumMode="ENABLED")
    expected_crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert head["ChecksumCRC32"] == expected_crc
    if size > MULTIPART_THRESHOLD:
        assert head["ETag"].strip('"').endswith("-2")  # a multipart upload ...
        assert head["ChecksumType"] == "FULL_OBJECT"  # ... checksummed as one object, not per part
    body = s3.get_object(Bucket=name, Key=f"montage/{published.key}")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == published.sha256 == hashlib.sha256(data).hexdigest()
    assert head["Metadata"]["sha256"] == published.sha256

    # A second export of the same bytes trusts the stored checksum, and uploads nothing.
    again = publish_generation(store, 12, [ExportFile(path.name, path, "video/mp4", "public")])
    assert again.generation == generation.generation and not again.files[0].uploaded


def test_the_s3_check_refuses_other_bytes(bucket: tuple[str, S3MediaStore], tmp_path: Path) -> None:
    _, store = bucket
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1))
    digests = file_digests(path)
    store.put_verified(path, "exports/1/g/f.bin", digests)
    with pytest.raises(VerificationError, match="CRC-32"):
        store.verify("exports/1/g/f.bin", dataclasses.replace(digests, crc32=digests.crc32 ^ 1))
    with pytest.raises(VerificationError, match="bytes"):
        store.verify("exports/1/g/f.bin", dataclasses.replace(digests, size=digests.size + 1))
    with pytest.raises(VerificationError, match="nothing stored"):
        store.verify("exports/1/g/missing.bin", digests)


def test_a_file_that_does_not_verify_is_not_left_in_its_generation(store: MediaStore, tmp_path: Path) -> None:
    path = tmp_path / "edl.json"
    path.write_bytes(b"{}" * 1000)
    real = file_digests(path)
    # As if the file changed between hashing and uploading: the store holds other bytes than hashed.
    wrong = dataclasses.replace(real, sha256="0" * 64, crc32=real.crc32 ^ 1)
    item = ExportFile(path.name, path, "application/json", "public")
    with pytest.raises(VerificationError):
        publish_file(store, 12, "gen", item, wrong)
    assert store.head("exports/12/gen/edl.json") is None
