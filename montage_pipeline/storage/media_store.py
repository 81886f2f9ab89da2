"""Where the pipeline's media lives: a local folder (embedded) or an S3 bucket (production).

Plain Python, no Dagster: the cores (analysis cache, render plan, exports) take a `MediaStore`, and the
Dagster resource in `defs/resources/media_store.py` only builds one from its config. Files are streamed
(boto3 managed multipart transfers), never read whole into memory or pickled. Keys are POSIX paths
relative to the store's prefix (their layout: `keys.py`); anything that could climb out of it is refused.

`put_verified` stores a file and proves the store holds exactly its bytes: the folder store reads its copy
back; the S3 store uploads with a full-object CRC-32 checksum (S3 checks every request's bytes on the way
in and keeps the whole object's CRC-32) and compares that with the CRC-32 taken locally, with one
`head_object`, instead of downloading the object again.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from montage_pipeline.storage.hashing import FileDigests, file_sha256, sha256_chunks

log = logging.getLogger(__name__)


class VerificationError(OSError):
    """The store holds different bytes from the ones sent."""


def _safe_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or ".." in parts or "\\" in key:
        raise ValueError(f"media key {key!r} must be a relative path without '..'")
    return str(PurePosixPath(*parts))


def _partial(target: Path) -> Path:
    """A temp name of its own beside `target`, a dot-file (never listed as an object): two writers of
    one file, or two runs sharing the media cache, never share or delete each other's partial file."""
    name = target.name if target.name.startswith(".") else f".{target.name}"
    return target.with_name(f"{name}.{uuid.uuid4().hex}.partial")


@dataclass(frozen=True, slots=True)
class StoredObject:
    size: int
    metadata: dict[str, str]


class MediaStore(ABC):
    """The interface the media IO manager, the analysis cache, the render plan and the exports use."""

    @abstractmethod
    def put_file(
        self,
        local: Path,
        key: str,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store a file; the object appears whole or not at all (multipart completes atomically)."""

    @abstractmethod
    def head(self, key: str) -> StoredObject | None: ...

    @abstractmethod
    def stored_sha256(self, key: str) -> str:
        """The sha256 of the bytes the store holds, read back in a stream (verification, not trust)."""

    @abstractmethod
    def verify(self, key: str, digests: FileDigests) -> None:
        """Raise `VerificationError` unless `key` holds exactly the bytes `digests` describes."""

    def put_verified(
        self,
        local: Path,
        key: str,
        digests: FileDigests,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """`put_file`, then `verify`: `digests` are the local file's, taken before the upload."""
        self.put_file(local, key, content_type, cache_control, metadata)
        self.verify(key, digests)

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def url(self, key: str, expires_s: int | None = None, public_base_url: str | None = None) -> str:
        """A URL a person or a platform can fetch: public (base URL + key) or presigned for expires_s."""

    @abstractmethod
    def get_file(self, key: str, local: Path) -> None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder, e.g. `exports/12/`), sorted."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def size(self, key: str) -> int | None:
        head = self.head(key)
        return head.size if head else None

    @abstractmethod
    def uri(self, key: str) -> str: ...


class LocalMediaStore(MediaStore):
    """A folder standing in for S3 in the embedded profile; writes are atomic (temp file, rename)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalMediaStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def put_file(
        self,
        local: Path,
        key: str,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _partial(target)
        try:
            shutil.copyfile(local, tmp)
            sidecar = self._meta_path(key)
            if metadata:
                meta_tmp = _partial(sidecar)
                meta_tmp.write_text(json.dumps(metadata, sort_keys=True))
                meta_tmp.replace(sidecar)
            else:
                sidecar.unlink(missing_ok=True)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    def _meta_path(self, key: str) -> Path:
        path = self._path(key)
        return path.with_name(f".{path.name}.meta.json")

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        sidecar = self._meta_path(key)
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        return StoredObject(path.stat().st_size, meta)

    def stored_sha256(self, key: str) -> str:
        return file_sha256(self._path(key))

    def verify(self, key: str, digests: FileDigests) -> None:
        # A local copy is cheap to read back: size and sha256 of the file itself.
        size = self.size(key)
        if size != digests.size:
            raise VerificationError(
                f"{key}: stored {size if size is not None else 'nothing'}, sent {digests.size}"
            )
        stored = self.stored_sha256(key)
        if stored != digests.sha256:
            raise VerificationError(f"{key}: stored sha256 {stored[:12]}…, sent {digests.sha256[:12]}…")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)

    def url(self, key: str, expires_s: int | None = None, public_base_url: str | None = None) -> str:
        if public_base_url:
            return f"{public_base_url.rstrip('/')}/{_safe_key(key)}"
        return self.uri(key)

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = _partial(local)  # readers never see half a file
        try:
            shutil.copyfile(self._path(key), tmp)
            tmp.replace(local)
        finally:
            tmp.unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        root = self.root
        base = root / _safe_key(prefix)
        if not base.is_dir():
            return []
        # Dot-files are this store's own sidecars and partial writes, not objects.
        return sorted(
            p.relative_to(root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def uri(self, key: str) -> str:
        return self._path(key).resolve().as_uri()


def _missing(exc: Exception) -> bool:
    """A botocore ClientError that says the key holds nothing."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


class S3MediaStore(MediaStore):
    """An S3 (or S3-compatible: MinIO, moto) bucket through a boto3 client.

    `presigner` makes the client that signs URLs (called once, when the first URL is minted); without
    one, `client` signs them. It must sign with SigV4: boto3 still presigns SigV2 in us-east-1 unless
    told, and S3 refuses SigV2 for buckets made since 2020 (and in every region opened since 2014).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "montage/",
        presigner: Callable[[], Any] | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self._make_presigner = presigner
        self._presigner: Any = None

    def __repr__(self) -> str:
        return f"S3MediaStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @classmethod
    def connect(
        cls,
        bucket: str,
        prefix: str = "montage/",
        endpoint_url: str | None = None,
        region_name: str | None = None,
    ) -> S3MediaStore:
        """A store on a boto3 client of its own (credentials from the environment, SigV4 throughout),
        for code that runs outside Dagster such as the read API."""
        import boto3
        from botocore.config import Config

        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region_name, config=Config(signature_version="s3v4")
        )
        return cls(client, bucket, prefix)

    @property
    def presigner(self) -> Any:
        if self._presigner is None:
            self._presigner = self._make_presigner() if self._make_presigner else self.client
        return self._presigner

    def _key(self, key: str) -> str:
        return self.prefix + _safe_key(key)

    @staticmethod
    def _extra_args(
        content_type: str | None, cache_control: str | None, metadata: dict[str, str] | None
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if cache_control:
            extra["CacheControl"] = cache_control
        if metadata:
            extra["Metadata"] = metadata
        return extra

    def put_file(
        self,
        local: Path,
        key: str,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        extra = self._extra_args(content_type, cache_control, metadata)
        self.client.upload_file(str(local), self.bucket, self._key(key), ExtraArgs=extra or None)

    def put_verified(
        self,
        local: Path,
        key: str,
        digests: FileDigests,
        content_type: str | None = None,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        # botocore checksums each request's body (PutObject, or every UploadPart of a managed multipart
        # upload above 8 MiB) and S3 refuses a body that does not match; with FULL_OBJECT the parts'
        # CRCs combine into the whole object's, which `verify` compares with ours. The value is not sent
        # up front: a store that keeps what it is told without checking it (moto) would then only echo it.
        # CRC-32 because botocore computes it with zlib; CRC-32C and CRC-64/NVME (the other full-object
        # algorithms) need the awscrt extra (boto3[crt]), which this project does not install.
        extra = self._extra_args(content_type, cache_control, metadata)
        extra.update(ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
        self.client.upload_file(str(local), self.bucket, self._key(key), ExtraArgs=extra)
        self.verify(key, digests)

    def head(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return StoredObject(int(head["ContentLength"]), dict(head.get("Metadata") or {}))

    def stored_sha256(self, key: str) -> str:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        return sha256_chunks(body.iter_chunks(1 << 20))

    def verify(self, key: str, digests: FileDigests) -> None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if _missing(exc):
                raise VerificationError(f"{key}: nothing stored, sent {digests.size} bytes") from exc
            raise
        size = int(head["ContentLength"])
        if size != digests.size:
            raise VerificationError(f"{key}: stored {size} bytes, sent {digests.size}")
        crc = head.get("ChecksumCRC32")
        if crc and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            if crc != digests.crc32_base64:
                raise VerificationError(f"{key}: stored CRC-32 {crc}, sent {digests.crc32_base64}")
            return
        # No full-object CRC-32 (an object stored before, or a store that keeps none or only a composite
        # of its parts): read the bytes back.
        log.info("%s has no full-object CRC-32 (%s); reading it back", key, head.get("ChecksumType"))
        stored = self.stored_sha256(key)
        if stored != digests.sha256:
            raise VerificationError(f"{key}: stored sha256 {stored[:12]}…, sent {digests.sha256[:12]}…")

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url(self, key: str, expires_s: int | None = None, public_base_url: str | None = None) -> str:
        if public_base_url:
            return f"{public_base_url.rstrip('/')}/{self._key(key)}"
        return str(
            self.presigner.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires_s or 7 * 24 * 3600,
            )
        )

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = _partial(local)
        try:
            self.client.download_file(self.bucket, self._key(key), str(tmp))
            tmp.replace(local)
        finally:
            tmp.unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix).rstrip("/") + "/"
        )
        return sorted(
            obj["Key"].removeprefix(self.prefix) for page in pages for obj in page.get("Contents", [])
        )

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
