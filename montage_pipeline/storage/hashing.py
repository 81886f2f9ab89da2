"""The one sha256 helper: a file's content hash, read in chunks (never the whole file in memory).

Selection fingerprints uploads with it, the media IO manager writes it into manifests, exports name their
generations and verify their uploads with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
