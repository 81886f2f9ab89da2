"""Where the pipeline's media lives: a local folder (embedded) or an S3 bucket (production).

Files are streamed (boto3 managed multipart transfers), never read whole into memory or pickled. Keys
are POSIX paths relative to the store's prefix; anything that could climb out of it is refused.
"""

from __future__ import annotations

import hashlib
import shutil
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr


def _safe_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or ".." in parts or "\\" in key:
        raise ValueError(f"media key {key!r} must be a relative path without '..'")
    return str(PurePosixPath(*parts))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class MediaStore(dg.ConfigurableResource, ABC):
    """The interface the media IO manager and the export stage use."""

    @abstractmethod
    def put_file(self, local: Path, key: str, content_type: str | None = None) -> None: ...

    @abstractmethod
    def get_file(self, key: str, local: Path) -> None: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int | None: ...

    @abstractmethod
    def uri(self, key: str) -> str: ...


class LocalMediaStore(MediaStore):
    """A folder standing in for S3 in the embedded profile; writes are atomic (temp file, rename)."""

    root: str

    def _path(self, key: str) -> Path:
        return Path(self.root) / _safe_key(key)

    def put_file(self, local: Path, key: str, content_type: str | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        shutil.copyfile(local, tmp)
        tmp.replace(target)

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), local)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


class S3MediaStore(MediaStore):
    """An S3 (or S3-compatible: MinIO, moto) bucket through dagster-aws's `S3Resource`."""

    s3: S3Resource
    bucket: str
    prefix: str = "montage/"

    _client: Any = PrivateAttr(default=None)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    def put_file(self, local: Path, key: str, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else None
        self.client.upload_file(str(local), self.bucket, self._key(key), ExtraArgs=extra)

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.partial")
        self.client.download_file(self.bucket, self._key(key), str(tmp))
        tmp.replace(local)

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return int(head["ContentLength"])

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
