"""The media store backends: a local folder and S3 over HTTP (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from montage_pipeline.storage.hashing import file_sha256
from montage_pipeline.storage.media_store import MediaStore


def test_files_round_trip_byte_for_byte(store: MediaStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as fh:  # larger than boto3's multipart threshold (8 MiB)
        for i in range(10):
            fh.write(bytes([i]) * (1 << 20))
    assert not store.exists("weeks/2025-01-27/big.bin")
    store.put_file(source, "weeks/2025-01-27/big.bin", content_type="application/octet-stream")
    assert store.exists("weeks/2025-01-27/big.bin")
    assert store.size("weeks/2025-01-27/big.bin") == source.stat().st_size
    back = tmp_path / "back" / "big.bin"
    store.get_file("weeks/2025-01-27/big.bin", back)
    assert file_sha256(back) == file_sha256(source)


@pytest.mark.parametrize("key", ["../escape.bin", "/abs.bin", "a/../../b.bin", ""])
def test_keys_cannot_escape_the_store(store: MediaStore, tmp_path: Path, key: str) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="relative path"):
        store.put_file(source, key)


def test_list_keys_lists_objects_under_a_folder(store: MediaStore, tmp_path: Path) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    for key in ("exports/1/a/f.mp4", "exports/1/.staging/run/f.mp4", "exports/12/a/f.mp4", "weeks/w/f"):
        store.put_file(source, key, metadata={"sha256": "x"})
    # A folder's own keys only (not exports/12/ for exports/1/), sidecar files never listed.
    assert store.list_keys("exports/1/") == ["exports/1/.staging/run/f.mp4", "exports/1/a/f.mp4"]
    assert store.list_keys("exports/1") == store.list_keys("exports/1/")
    assert store.list_keys("nothing/") == []


def test_runs_downloading_one_file_into_a_shared_cache_at_once_all_get_it_whole(
    store: MediaStore, tmp_path: Path
) -> None:
    """Two runs on one machine share the media cache (the CLI beside the daemon's run of the week)."""
    source = tmp_path / "manifest.bin"
    source.write_bytes(os.urandom(3 << 20))
    store.put_file(source, "weeks/2025-01-27/mixed_audio/manifest.bin")
    cache = tmp_path / "cache" / "manifest.bin"
    for _ in range(3):
        start = threading.Barrier(6)

        def fetch(start: threading.Barrier) -> None:
            start.wait()
            store.get_file("weeks/2025-01-27/mixed_audio/manifest.bin", cache)

        with ThreadPoolExecutor(6) as pool:
            for done in [pool.submit(fetch, start) for _ in range(6)]:
                done.result()  # no run fails on another's partial file
        assert file_sha256(cache) == file_sha256(source)
        assert [p.name for p in cache.parent.iterdir()] == ["manifest.bin"]  # no partial left behind
