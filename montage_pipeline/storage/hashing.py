"""The one sha256 helper: a file's content hash, read in chunks (never the whole file in memory).

Selection fingerprints uploads with it, the media IO manager writes it into manifests, exports name their
generations with it. Exports also take the file's CRC-32 in the same pass (`file_digests`): the
full-object checksum S3 computes itself, so an upload is verified without reading it back.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """The hex sha256 of a stream of byte chunks (a file, or an object read back from a store)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path, chunk_size: int = CHUNK_BYTES) -> str:
    """The hex sha256 of a file's bytes."""
    with path.open("rb") as fh:
        return sha256_chunks(iter(lambda: fh.read(chunk_size), b""))


@dataclass(frozen=True, slots=True)
class FileDigests:
    """What a file's bytes must hash to in a store: its size, sha256 and full-object CRC-32."""

    size: int
    sha256: str
    crc32: int

    @property
    def crc32_base64(self) -> str:
        """The CRC-32 as S3 writes it (`x-amz-checksum-crc32`: the 4 big-endian bytes, base64)."""
        return base64.b64encode(self.crc32.to_bytes(4, "big")).decode()


def file_digests(path: Path, chunk_size: int = CHUNK_BYTES) -> FileDigests:
    """Size, sha256 and CRC-32 of a file, in one streaming pass."""
    sha, crc, size = hashlib.sha256(), 0, 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return FileDigests(size, sha.hexdigest(), crc)
