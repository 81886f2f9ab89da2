"""Resolve paths read from the platform database inside the storage root, refusing everything else.

A render path is data written by other systems; a `../`, an absolute path elsewhere or a symlink that
leads out of the storage root must never let the pipeline read (and later publish) arbitrary files.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class UnsafePathError(ValueError):
    """The path does not stay inside the storage root."""


def resolve_inside(root: Path, stored_path: str) -> Path:
    """The real path of `stored_path` (relative to `root`, or absolute but under it), symlinks followed.

    Raises UnsafePathError when the result is not inside `root`. The file need not exist.
    """
    if not stored_path or "\x00" in stored_path:
        raise UnsafePathError("empty path or NUL byte in path")
    real_root = root.resolve()
    candidate = Path(stored_path)
    if not candidate.is_absolute():
        if ".." in PurePosixPath(stored_path).parts:
            raise UnsafePathError(f"path {stored_path!r} climbs out with '..'")
        candidate = real_root / candidate
    real = candidate.resolve()  # follows symlinks, also through parent folders
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"path {stored_path!r} resolves outside the storage root")
    return real
