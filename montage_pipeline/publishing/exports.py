"""Publishing a week's files to the media store as one immutable generation, verified file by file.

A build's files go to `exports/{job_id}/{generation}/{name}`, where the generation is derived from the
content (the names and sha256 of every file): a rebuild with different bytes writes beside the
published generation instead of over it, and a rerun with the same bytes finds its generation already
there and changes nothing. Each file goes to a staging key of its own run first
(`exports/{job_id}/.staging/{token}/{name}`), is read back and compared (size and sha256), then copied
server-side into the generation, whose objects carry the sha256 in their metadata. Nothing points at a
generation until the caller switches the week's row to it, once every file verified; a failure at any
point leaves the published generation as it was.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.storage.hashing import file_sha256, sha256_chunks
from montage_pipeline.storage.keys import export_key, exports_prefix, staging_key
from montage_pipeline.storage.media_store import MediaStore

log = logging.getLogger(__name__)

SHA_META = "sha256"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ExportVerificationError(OSError):
    """The store holds different bytes from the ones sent."""


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One local file to publish as `{name}` in the week's generation."""

    name: str
    path: Path
    content_type: str
    cache_control: str


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """One file of a generation as verified in the store."""

    name: str
    key: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded: bool  # False: the generation already held these exact bytes


@dataclass(frozen=True, slots=True)
class ExportGeneration:
    job_id: int
    generation: str
    files: tuple[PublishedFile, ...]

    def key(self, name: str) -> str:
        return next(f.key for f in self.files if f.name == name)

    def manifest(self) -> dict[str, dict[str, object]]:
        """What the week's row records about each file (`weekly_montages.export_files`)."""
        return {
            f.name: {
                "key": f.key,
                "size_bytes": f.size_bytes,
                "sha256": f.sha256,
                "content_type": f.content_type,
            }
            for f in self.files
        }


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """A row of `s3_exports`: one published object, as verified after upload."""

    week: str
    job_id: int
    generation: str
    name: str
    key: str
    uri: str
    url: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded: bool  # False: the generation already held these exact bytes


def generation_id(shas: Iterable[tuple[str, str]]) -> str:
    """The id of a set of (name, sha256): the same files give the same id, any change a new one."""
    return sha256_chunks(f"{name}\0{sha}\n".encode() for name, sha in sorted(shas))[:20]


def export_url(store: MediaStore, stored: str, expires_s: int, public_base_url: str | None = None) -> str:
    """A fetchable URL for what the row stores: a key (minted now) or a URL written by the platform."""
    if _URL.match(stored):
        return stored
    return store.url(stored, expires_s, public_base_url or None)


def _verify(store: MediaStore, key: str, size: int, sha: str) -> None:
    head = store.head(key)
    if head is None or head.size != size:
        raise ExportVerificationError(f"{key}: stored {head.size if head else 'nothing'} bytes, sent {size}")
    stored = store.stored_sha256(key)
    if stored != sha:
        raise ExportVerificationError(f"{key}: stored sha256 {stored[:12]}…, sent {sha[:12]}…")


def publish_file(
    store: MediaStore, job_id: int, generation: str, item: ExportFile, sha: str, token: str
) -> PublishedFile:
    """Put one file into its generation, verified; `token` names this run's staging folder."""
    key = export_key(job_id, generation, item.name)
    size = item.path.stat().st_size
    current = store.head(key)
    if current is not None and current.size == size and current.metadata.get(SHA_META) == sha:
        _verify(store, key, size, sha)  # the metadata says so; the bytes must too
        log.info("%s unchanged (sha256 %s…)", key, sha[:12])
        return PublishedFile(item.name, key, item.content_type, size, sha, uploaded=False)
    staging = staging_key(job_id, token, item.name)
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
        except Exception as exc:  # a leftover staging object is collected later; the real error matters
            log.warning("could not delete %s: %s", staging, exc)
    log.info("%s published (%d bytes, sha256 %s…)", key, size, sha[:12])
    return PublishedFile(item.name, key, item.content_type, size, sha, uploaded=True)


def publish_generation(
    store: MediaStore, job_id: int, items: Sequence[ExportFile], token: str
) -> ExportGeneration:
    """Every file into the generation its content names; raises if any file does not verify."""
    shas = {item.name: file_sha256(item.path) for item in items}
    generation = generation_id(shas.items())
    files = tuple(publish_file(store, job_id, generation, item, shas[item.name], token) for item in items)
    return ExportGeneration(job_id, generation, files)


def collect_garbage(store: MediaStore, job_id: int, keep: set[str]) -> list[str]:
    """Delete the week's generations not in `keep`, and staging leftovers; returns the deleted keys.

    Call it holding the week's lock (no other run is writing) and only after the row switched: `keep`
    holds the generation the row points at and the one it replaced. Files of the older flat layout
    (`exports/{job_id}/{name}`) are left alone: a row written before generations may still name them.
    """
    prefix = exports_prefix(job_id)
    deleted = []
    for key in store.list_keys(prefix):
        parts = key.removeprefix(prefix).split("/")
        if len(parts) < 2 or parts[0] in keep:
            continue
        try:
            store.delete(key)
            deleted.append(key)
        except Exception as exc:  # garbage left for the next run is harmless
            log.warning("could not delete %s: %s", key, exc)
    return deleted
