"""The media store as Dagster resources: config the UI shows, building the plain store in `storage/`.

`LocalMediaStoreResource` (embedded profile) and `S3MediaStoreResource` (production, through
dagster-aws's `S3Resource`) are interchangeable under the `media_store` key; assets, sensors and the
media IO manager call `store()` and hand the plain `MediaStore` to the cores, as `social.py` does for
the platform clients.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from montage_pipeline.storage.media_store import LocalMediaStore, MediaStore, S3MediaStore


class MediaStoreResource(dg.ConfigurableResource, ABC):
    """Builds the media store; the cores never see the resource."""

    @abstractmethod
    def store(self) -> MediaStore: ...


class LocalMediaStoreResource(MediaStoreResource):
    """A folder standing in for S3 in the embedded profile."""

    root: str

    def store(self) -> LocalMediaStore:
        return LocalMediaStore(self.root)


class S3MediaStoreResource(MediaStoreResource):
    """A bucket (S3, MinIO, moto) under a key prefix; the client comes from `S3Resource`."""

    s3: S3Resource
    bucket: str
    prefix: str = "montage/"

    _store: S3MediaStore | None = PrivateAttr(default=None)

    def store(self) -> S3MediaStore:
        if self._store is None:
            self._store = S3MediaStore(
                self.s3.get_client(), self.bucket, self.prefix, presigner=self._sigv4_client
            )
        return self._store

    def _sigv4_client(self) -> Any:
        """A client on the same settings that presigns with SigV4 (see `S3MediaStore`)."""
        import boto3
        from botocore.config import Config

        s3 = self.s3
        return boto3.session.Session(profile_name=s3.profile_name).client(
            "s3",
            region_name=s3.region_name,
            endpoint_url=s3.endpoint_url,
            use_ssl=s3.use_ssl,
            verify=s3.verify,
            aws_access_key_id=s3.aws_access_key_id,
            aws_secret_access_key=s3.aws_secret_access_key,
            aws_session_token=s3.aws_session_token,
            config=Config(signature_version="s3v4"),
        )
