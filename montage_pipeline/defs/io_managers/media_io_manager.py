"""An IO manager for media assets: files streamed to and from the media store, never pickled.

An asset returns a `MediaBundle` (named local files). The IO manager uploads each file to
`weeks/<week>/<asset>/<name>` with managed (multipart) transfers and writes a small manifest beside them
(names, sizes, sha256). Loading downloads the files into a local cache folder, reusing a cached copy whose
size and sha256 match the manifest, and returns the bundle with local paths.

The cache is bounded: after each load the least recently used files (other than the bundle just loaded)
are deleted until it holds at most `cache_max_bytes`. It lives under the data folder (`MONTAGE_HOME`, by
default `.montage/`; the wiring passes it as `cache_dir`), private to its owner, not at a fixed path in
the shared system temp folder where another user could read the week's videos or plant files first.
"""

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.defs.resources.media_store import MediaStoreResource
from montage_pipeline.profiles import default_home
from montage_pipeline.storage import keys
from montage_pipeline.storage.hashing import file_sha256
from montage_pipeline.storage.media_store import MediaStore

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DEFAULT_CACHE_MAX_BYTES = 20_000_000_000  # a few weeks of 1080p renders


def default_cache_dir() -> Path:
    """`.montage/cache/media` in the checkout; the code location passes `<MONTAGE_HOME>/cache/media`
    (`resources/wiring.py`)."""
    return default_home() / "cache" / "media"


def evict_least_recently_used(root: Path, max_bytes: int, keep: set[Path]) -> list[Path]:
    """Delete the oldest-used files under `root` (by mtime) until it holds `max_bytes`; `keep` stays.

    Emptied folders are left: another process may be about to download into them.
    """
    files = []
    for path in root.rglob("*"):
        try:
            if path.is_file():
                stat = path.stat()
                files.append((stat.st_mtime, stat.st_size, path))
        except FileNotFoundError:  # another process evicted it meanwhile
            continue
    total = sum(size for _, size, _ in files)
    removed = []
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        if path in keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    size_bytes: int | None = None


SKIPPED = "__skipped__"  # the manifest's entry for a bundle that stands for a cut not made
# An input with this metadata set (`dg.AssetIn(metadata={OPTIONAL_INPUT: True})`) loads as a skipped
# bundle when its asset was never materialized for the week (a cut rendered later, or not at all).
OPTIONAL_INPUT = "montage/optional_cut"


@dataclass(frozen=True, slots=True)
class MediaBundle:
    files: dict[str, MediaFile] = field(default_factory=dict)
    # A cut that was not made (the long cut of a thin week): no files, and why. An explicit output, so
    # the steps after it run for the other cuts (Dagster skips the downstream of a missing output).
    skip_reason: str | None = None

    def __getitem__(self, name: str) -> MediaFile:
        return self.files[name]


class MediaIOManager(dg.ConfigurableIOManager):
    media_store: MediaStoreResource
    cache_dir: str = ""  # default: `default_cache_dir()`, under the data folder
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES

    def _prefix(self, context: dg.OutputContext | dg.InputContext) -> str:
        assert context.asset_key is not None
        week = context.asset_partition_key if context.has_asset_partitions else keys.UNPARTITIONED_WEEK
        return keys.asset_prefix(week, context.asset_key.path)

    def _store(self) -> MediaStore:
        return self.media_store.store()

    def _cache(self) -> Path:
        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        return root

    def handle_output(self, context: dg.OutputContext, obj: MediaBundle | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, MediaBundle):
            raise TypeError(f"media assets return a MediaBundle, got {type(obj).__name__}")
        prefix, store = self._prefix(context), self._store()
        manifest: dict[str, Any] = {SKIPPED: {"reason": obj.skip_reason}} if obj.skip_reason else {}
        for name, media in obj.files.items():
            sha = media.sha256 or file_sha256(media.path)
            size = media.path.stat().st_size
            store.put_file(media.path, f"{prefix}/{name}", content_type=media.content_type)
            stored = store.size(f"{prefix}/{name}")
            if stored != size:
                raise OSError(f"upload of {name} stored {stored} bytes, expected {size}")
            manifest[name] = {"sha256": sha, "size_bytes": size, "content_type": media.content_type}
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / MANIFEST
            local.write_text(json.dumps(manifest, indent=2, sort_keys=True))
            store.put_file(local, f"{prefix}/{MANIFEST}", content_type="application/json")
        context.add_output_metadata(
            {
                "media_files": len(obj.files),
                "media_bytes": sum(m.get("size_bytes", 0) for m in manifest.values()),
                "media_location": store.uri(prefix),
            }
        )

    def load_input(self, context: dg.InputContext) -> MediaBundle:
        prefix, store = self._prefix(context), self._store()
        root = self._cache()
        cache = root / prefix
        cache.mkdir(parents=True, exist_ok=True)
        optional = context.definition_metadata and context.definition_metadata.get(OPTIONAL_INPUT)
        if optional and not store.exists(f"{prefix}/{MANIFEST}"):
            return MediaBundle(skip_reason=f"{prefix} was never materialized")
        store.get_file(f"{prefix}/{MANIFEST}", cache / MANIFEST)
        manifest = json.loads((cache / MANIFEST).read_text())
        skipped = manifest.pop(SKIPPED, None)
        files = {}
        for name, entry in manifest.items():
            local = cache / name
            fresh = (
                local.is_file()
                and local.stat().st_size == entry["size_bytes"]
                and file_sha256(local) == entry["sha256"]
            )
            if fresh:
                os.utime(local)  # used now: the eviction keeps recently used files
            else:
                store.get_file(f"{prefix}/{name}", local)
                if file_sha256(local) != entry["sha256"]:
                    raise OSError(f"{prefix}/{name}: downloaded bytes do not match the manifest's sha256")
            files[name] = MediaFile(local, entry["content_type"], entry["sha256"], entry["size_bytes"])
        keep = {f.path for f in files.values()} | {cache / MANIFEST}
        evicted = evict_least_recently_used(root, self.cache_max_bytes, keep)
        if evicted:
            message = f"media cache over {self.cache_max_bytes:,} bytes: evicted {len(evicted)} files"
            # A load from a script (`Definitions.load_asset_value`) has no run, so no run log.
            (context.log if context.has_input_name else log).info(message)
        return MediaBundle(files, skipped["reason"] if skipped else None)
