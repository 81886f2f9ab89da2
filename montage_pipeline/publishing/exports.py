"""Publishing files to the media store's `exports/` area, verified, without ever exposing a bad object.

Each file goes to a staging key first, is verified there (size, and sha256 of the bytes read back),
then copied server-side to its final key, whose metadata carries the sha256. A failure at any point
leaves the final key as it was: either the previous good export or nothing. A final key already
holding the same bytes is left untouched, so a rerun changes nothing that was good.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.resources.media_store import MediaStore, file_sha256

log = logging.getLogger(__name__)

SHA_META = "sha256"
STAGING = ".staging"


class ExportVerificationError(OSError):
    """The store holds different bytes from the ones sent."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One local file to publish under `exports/{job_id}/{name}`."""

    name: str
    path: Path
    content_type: str
    cache_control: str


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """A row of `s3_exports`: one published object, as verified after upload."""

    week: str
    job_id: int
    name: str
    key: str
    uri: str
    url: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded: bool  # False: the final key already held these exact bytes


def export_key(job_id: int, name: str) -> str:
    return f"exports/{job_id}/{name}"


def _verify(store: MediaStore, key: str, size: int, sha: str) -> None:
    head = store.head(key)
    if head is None or head.size != size:
        raise ExportVerificationError(f"{key}: stored {head.size if head else 'nothing'} bytes, sent {size}")
    stored = store.stored_sha256(key)
    if stored != sha:
        raise ExportVerificationError(f"{key}: stored sha256 {stored[:12]}…, sent {sha[:12]}…")


def publish_file(store: MediaStore, job_id: int, item: ExportFile) -> tuple[str, int, str, bool]:
    """Put one file at its final key, verified; returns (key, size, sha256, uploaded)."""
    key = export_key(job_id, item.name)
    size, sha = item.path.stat().st_size, file_sha256(item.path)
    current = store.head(key)
    if current is not None and current.size == size and current.metadata.get(SHA_META) == sha:
        _verify(store, key, size, sha)  # the metadata says so; the bytes must too
        log.info("%s unchanged (sha256 %s…)", key, sha[:12])
        return key, size, sha, False
    staging = export_key(job_id, f"{STAGING}/{item.name}")
    try:
        store.put_file(item.path, staging, item.content_type, item.cache_control, {SHA_META: sha})
        _verify(store, staging, size, sha)
        store.copy_object(staging, key)
        head = store.head(key)
        if head is None or head.size != size or head.metadata.get(SHA_META) != sha:
            raise ExportVerificationError(f"{key}: the copy from staging does not match")
    finally:
        try:
            store.delete(staging)
        except Exception as exc:  # a leftover staging object is harmless; the real error matters more
            log.warning("could not delete %s: %s", staging, exc)
    log.info("%s published (%d bytes, sha256 %s…)", key, size, sha[:12])
    return key, size, sha, True
