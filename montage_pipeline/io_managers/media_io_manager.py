"""An IO manager for media assets: files streamed to and from the media store, never pickled.

An asset returns a `MediaBundle` (named local files). The IO manager uploads each file to
`weeks/<week>/<asset>/<name>` with managed (multipart) transfers and writes a small manifest beside
them (names, sizes, sha256). Loading downloads the files into a local cache folder, reusing a cached copy
whose size and sha256 match the manifest, and returns the bundle with local paths.
"""

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from montage_pipeline.resources.media_store import MediaStore, file_sha256

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class MediaFile:
    path: Path
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class MediaBundle:
    files: dict[str, MediaFile] = field(default_factory=dict)

    def __getitem__(self, name: str) -> MediaFile:
        return self.files[name]


class MediaIOManager(dg.ConfigurableIOManager):
    media_store: MediaStore
    cache_dir: str = ""  # default: a folder under the system temp dir

    def _prefix(self, context: dg.OutputContext | dg.InputContext) -> str:
        assert context.asset_key is not None
        week = context.asset_partition_key if context.has_asset_partitions else "all"
        return f"weeks/{week}/{'/'.join(context.asset_key.path)}"

    def _cache(self) -> Path:
        root = Path(self.cache_dir) if self.cache_dir else Path(tempfile.gettempdir()) / "montage-media-cache"
        root.mkdir(parents=True, exist_ok=True)
        return root

    def handle_output(self, context: dg.OutputContext, obj: MediaBundle | None) -> None:
        if obj is None:
            return
        if not isinstance(obj, MediaBundle):
            raise TypeError(f"media assets return a MediaBundle, got {type(obj).__name__}")
        prefix = self._prefix(context)
        manifest: dict[str, Any] = {}
        for name, media in obj.files.items():
            sha = media.sha256 or file_sha256(media.path)
            size = media.path.stat().st_size
            self.media_store.put_file(media.path, f"{prefix}/{name}", content_type=media.content_type)
            stored = self.media_store.size(f"{prefix}/{name}")
            if stored != size:
                raise OSError(f"upload of {name} stored {stored} bytes, expected {size}")
            manifest[name] = {"sha256": sha, "size_bytes": size, "content_type": media.content_type}
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / MANIFEST
            local.write_text(json.dumps(manifest, indent=2, sort_keys=True))
            self.media_store.put_file(local, f"{prefix}/{MANIFEST}", content_type="application/json")
        context.add_output_metadata(
            {
                "media_files": len(manifest),
                "media_bytes": sum(m["size_bytes"] for m in manifest.values()),
                "media_location": self.media_store.uri(prefix),
            }
        )

    def load_input(self, context: dg.InputContext) -> MediaBundle:
        prefix = self._prefix(context)
        cache = self._cache() / prefix
        cache.mkdir(parents=True, exist_ok=True)
        self.media_store.get_file(f"{prefix}/{MANIFEST}", cache / MANIFEST)
        manifest = json.loads((cache / MANIFEST).read_text())
        files = {}
        for name, entry in manifest.items():
            local = cache / name
            fresh = (
                local.is_file()
                and local.stat().st_size == entry["size_bytes"]
                and file_sha256(local) == entry["sha256"]
            )
            if not fresh:
                self.media_store.get_file(f"{prefix}/{name}", local)
                if file_sha256(local) != entry["sha256"]:
                    raise OSError(f"{prefix}/{name}: downloaded bytes do not match the manifest's sha256")
            files[name] = MediaFile(local, entry["content_type"], entry["sha256"], entry["size_bytes"])
        return MediaBundle(files)
