"""Publishing a week's files to the media store as one immutable generation, verified file by file.

A build's files go to `exports/{job_id}/{generation}/{name}`, where the generation is derived from the
content (the names and sha256 of every file): a rebuild with different bytes writes beside the
published generation instead of over it, and a rerun with the same bytes finds its generation already
there and changes nothing. Each file is uploaded straight to its key in the generation (its sha256 in
the object's metadata) and verified by the store (`MediaStore.put_verified`: on S3 the object's own
full-object CRC-32 against the one taken locally in the same pass as the sha256, with no download; in a
folder by reading the copy back). Nothing points at a generation until the caller switches the week's
row to it, once every file verified; a failure at any point leaves the published generation as it was.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.storage.hashing import FileDigests, file_digests, sha256_chunks
from montage_pipeline.storage.keys import export_key, exports_prefix
from montage_pipeline.storage.media_store import MediaStore, VerificationError

log = logging.getLogger(__name__)

SHA_META = "sha256"
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


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


def publish_file(
    store: MediaStore, job_id: int, generation: str, item: ExportFile, digests: FileDigests
) -> PublishedFile:
    """Put one file into its generation, verified (`VerificationError` if the store holds other bytes).

    The generation's name is a hash of its files, so its keys only ever receive these bytes, and an
    object that fails verification is deleted: a key holds verified bytes or nothing.
    """
    key = export_key(job_id, generation, item.name)
    sha, size = digests.sha256, digests.size
    current = store.head(key)
    if current is not None and current.size == size and current.metadata.get(SHA_META) == sha:
        try:
            store.verify(key, digests)  # the metadata says so; the store's checksum (or the bytes) must too
            log.info("%s unchanged (sha256 %s…)", key, sha[:12])
            return PublishedFile(item.name, key, item.content_type, size, sha, uploaded=False)
        except VerificationError as exc:
            log.warning("%s; uploading it again", exc)
    try:
        store.put_verified(item.path, key, digests, item.content_type, item.cache_control, {SHA_META: sha})
    except VerificationError:
        try:
            store.delete(key)
        except Exception as exc:  # the verification failure is the error to report
            log.warning("could not delete %s: %s", key, exc)
        raise
    log.info("%s published (%d bytes, sha256 %s…, CRC-32 %s)", key, size, sha[:12], digests.crc32_base64)
    return PublishedFile(item.name, key, item.content_type, size, sha, uploaded=True)


def publish_generation(store: MediaStore, job_id: int, items: Sequence[ExportFile]) -> ExportGeneration:
    """Every file into the generation its content names; raises if any file does not verify."""
    digests = {item.name: file_digests(item.path) for item in items}
    generation = generation_id((name, d.sha256) for name, d in digests.items())
    files = tuple(publish_file(store, job_id, generation, item, digests[item.name]) for item in items)
    return ExportGeneration(job_id, generation, files)


def collect_garbage(store: MediaStore, job_id: int, keep: set[str]) -> list[str]:
    """Delete the week's generations not in `keep`, and any `.staging` folder an older version left;
    returns the deleted keys.

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
