"""`montage seed import`: register an existing folder of videos as a week's successful upload jobs.

The manifest is a JSON list of objects: `path` (relative to the manifest), `user`, `game`, `created_at`
(ISO 8601, UTC) and optional `score` (0..1), `views`, `likes`, `tier`. Unknown users are created. A bad
entry is reported with its index and reason and the others are still imported; nothing is half-written
for an entry (each entry is one savepoint).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from sqlalchemy import select
from sqlalchemy.orm import Session

from montage_pipeline.media.paths import UnsafePathError, resolve_inside
from montage_pipeline.partitions import parse_week, week_window
from montage_pipeline.platform.models import (
    Job,
    JobKind,
    JobStatus,
    Render,
    RenderFormat,
    SubscriptionTier,
    User,
)

REQUIRED = ("path", "user", "game", "created_at")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (not JSON, not a list)."""


@dataclass(slots=True)
class ImportReport:
    imported: list[int] = field(default_factory=list)  # job ids
    errors: list[str] = field(default_factory=list)  # "entry 3: reason"

    def summary(self) -> str:
        lines = [f"imported {len(self.imported)} jobs, {len(self.errors)} entries rejected"]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)


def _parse_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError("created_at must be an ISO 8601 string")
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"created_at {raw!r} has no timezone; give UTC, e.g. 2025-01-28T14:03:00Z")
    return value.astimezone(UTC)


def _stored_path(source: Path, storage_root: Path, week: str) -> str:
    """The path to record: relative to the storage root; files outside it are copied in first."""
    try:
        resolved = resolve_inside(storage_root, str(source))
        return str(resolved.relative_to(storage_root.resolve()))
    except UnsafePathError:
        target_dir = storage_root / "imports" / week
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        n = 1
        while target.exists():
            target = target_dir / f"{source.stem}_{n}{source.suffix}"
            n += 1
        shutil.copy2(source, target)
        return str(target.resolve().relative_to(storage_root.resolve()))


def _container_duration(path: Path) -> float | None:
    try:
        with av.open(str(path)) as container:
            return container.duration / 1_000_000 if container.duration else None
    except (av.error.FFmpegError, OSError):
        return None  # selection probes properly and rejects the file with its reason


def import_manifest(session: Session, storage_root: Path, week: str, manifest: Path) -> ImportReport:
    parse_week(week)
    start, end = week_window(week)  # a DST week is 167 or 169 hours long in a local timezone
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from exc
    if not isinstance(entries, list):
        raise ManifestError(f"manifest {manifest} must hold a JSON list of objects")
    report = ImportReport()
    base = manifest.parent.resolve()
    for index, entry in enumerate(entries):
        try:
            job_id = _import_entry(session, storage_root, week, base, entry, start, end)
        except (ValueError, TypeError, OSError) as exc:
            report.errors.append(f"entry {index}: {exc}")
        else:
            report.imported.append(job_id)
    return report


def _import_entry(
    session: Session, storage_root: Path, week: str, base: Path, entry: Any, start: datetime, end: datetime
) -> int:
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    missing = [k for k in REQUIRED if not entry.get(k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    created_at = _parse_time(entry["created_at"])
    if not start <= created_at < end:
        raise ValueError(f"created_at {created_at.isoformat()} is outside the week {week}")
    source = (base / str(entry["path"])).resolve()
    if not source.is_file():
        raise ValueError(f"file {entry['path']!r} not found next to the manifest")
    tier = SubscriptionTier(entry.get("tier", SubscriptionTier.FREE.value))
    score = entry.get("score")
    if score is not None and not (isinstance(score, int | float) and 0 <= score <= 1):
        raise ValueError(f"score {score!r} must be a number in 0..1")
    for name in ("views", "likes"):
        if entry.get(name) is not None and not (isinstance(entry[name], int) and entry[name] >= 0):
            raise ValueError(f"{name} {entry[name]!r} must be a non-negative integer")

    with session.begin_nested():
        handle = str(entry["user"]).lstrip("@")
        user = session.scalar(select(User).where(User.handle == handle))
        if user is None:
            user = User(handle=handle, email=f"{handle}@example.com", subscription_tier=tier)
            session.add(user)
            session.flush()
        job = Job(
            user_id=user.id,
            status=JobStatus.SUCCESS,
            kind=JobKind.UPLOAD,
            created_at=created_at,
            game=str(entry["game"]),
            title=entry.get("title") or f"{entry['game']} clip by @{handle}",
            scoring={"score": float(score)} if score is not None else None,
            views=entry.get("views"),
            likes=entry.get("likes"),
        )
        session.add(job)
        session.flush()
        stored = _stored_path(source, storage_root, week)
        session.add(
            Render(
                job_id=job.id,
                format=RenderFormat.LANDSCAPE,
                path=stored,
                duration=_container_duration(source),
            )
        )
        session.flush()
        return job.id
