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


def public_base_url() -> str | None:
    """Where exports are public (a CDN or public bucket, env `MONTAGE_PUBLIC_BASE_URL`); None: presign."""
    return os.environ.get("MONTAGE_PUBLIC_BASE_URL", "").strip() or None


def url_expires_s() -> int:
    """How long a presigned export link handed out by the API lives (env `MONTAGE_URL_EXPIRES_S`, 24 h)."""
    raw = os.environ.get("MONTAGE_URL_EXPIRES_S", "").strip() or str(24 * 3600)
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"MONTAGE_URL_EXPIRES_S={raw!r} is not a whole number of seconds") from exc
    if not 60 <= value <= 7 * 24 * 3600:
        raise ValueError(f"MONTAGE_URL_EXPIRES_S={value} is outside 60..604800 seconds (S3's limit)")
    return value
