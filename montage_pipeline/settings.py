"""Settings read from the environment that are not deployment wiring (see profiles.py for that)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TARGET_DURATION_S = 180.0


def target_duration_s() -> float:
    """The montage's target length: env `WEEKLY_MONTAGE_DURATION` (seconds), else 180."""
    raw = os.environ.get("WEEKLY_MONTAGE_DURATION", "").strip()
    if not raw:
        return DEFAULT_TARGET_DURATION_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"WEEKLY_MONTAGE_DURATION={raw!r} is not a number of seconds") from exc
    if not 15 <= value <= 3600:
        raise ValueError(f"WEEKLY_MONTAGE_DURATION={value:g} is outside 15..3600 seconds")
    return value


def music_library() -> Path | None:
    """A folder of music tracks (env `MONTAGE_MUSIC_LIBRARY`); None: generate the music instead."""
    raw = os.environ.get("MONTAGE_MUSIC_LIBRARY", "").strip()
    if not raw:
        return None
    folder = Path(raw).expanduser()
    if not folder.is_dir():
        raise ValueError(f"MONTAGE_MUSIC_LIBRARY={raw!r} is not a folder")
    return folder
