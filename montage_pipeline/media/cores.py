"""How many cores this process may use: the one count the render's encoders, the mix's true-peak
workers, the AAC segments, the analysis pool, the verification threads and the demo's clip writers
size themselves by."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the OS reports one (a container's
    or `taskset`'s limit, which `os.cpu_count()` ignores), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
