"""Freed memory goes back to the system after a media pass, so a step that follows in the same process
does not start on top of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from montage_pipeline.media.heap import _malloc_trim


@pytest.mark.skipif(_malloc_trim() is None, reason="glibc's malloc_trim only")
def test_freed_heap_pages_are_handed_back() -> None:
    """200 MB of blocks under glibc's mmap threshold, freed but for the last one: the heap cannot shrink
    from its top, so the pages stay resident until they are handed back."""
    script = textwrap.dedent(
        """
        from montage_pipeline.media.heap import give_back_freed_memory

        def rss() -> float:
            return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

        blocks = [bytearray(100_000) for _ in range(2000)]
        keep = blocks[-1]
        del blocks
        held = rss()
        give_back_freed_memory()
        print(held, rss())
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    held, after = (float(v) for v in run.stdout.split())
    assert held - after > 150, f"{held:.0f} MiB resident before, {after:.0f} after"
