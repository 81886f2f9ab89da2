"""`montage seed import`: register an existing folder of videos as a week's successful upload jobs.

The manifest is a JSON list of objects: `path` (relative to the manifest), `user`, `game`, `created_at`
(ISO 8601, UTC) and optional `title`, `score` (0..1), `views`, `likes`, `tier`. Unknown users are created.
A bad entry is reported with its index and reason and the others are still imported; nothing is
half-written for an entry (each entry is one savepoint), whether the entry fails our checks or the
database's (a value too long for its column, an integer out of range).

A manifest is input from outside: every `path` must resolve, symlinks followed, inside the manifest's
folder (or the `import_root` given), and no file over `max_file_bytes` is read. Files outside the storage
root are copied in as the entry's last step; a copy whose entry is then rolled back (its savepoint, or
the whole transaction) is deleted again, so only entries that commit leave files behind.

On SQLite the import needs real savepoints: pysqlite's own transaction handling starts transactions
late and lets `RELEASE SAVEPOINT` commit, so a failure later in the import would leave the entries before
it committed. `import_engine` applies SQLAlchemy's documented pysqlite recipe (no implicit transactions,
an explicit `BEGIN` on each begin) and `import_manifest` refuses a SQLite session without it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
from sqlalchemy import Connection, Engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from montage_pipeline.media.paths import UnsafePathError, resolve_inside
from montage_pipeline.platform.engine import make_engine
from montage_pipeline.platform.models import (
    Job,
    JobKind,
    JobStatus,
    Render,
    RenderFormat,
    SubscriptionTier,
    User,
)
from montage_pipeline.settings import ClipLimits
from montage_pipeline.weeks import DEFAULT_TIMEZONE, parse_week, week_window

REQUIRED = ("path", "user", "game", "created_at")
DEFAULT_MAX_FILE_BYTES = ClipLimits().max_file_bytes  # verification would refuse a larger file anyway
BIGINT_MAX = 2**63 - 1


def _width(column: Any) -> int:
    length = column.type.length
    assert isinstance(length, int)
    return length


# The column widths of models.py: checked here so SQLite (which does not enforce them) and Postgres agree.
HANDLE_WIDTH = _width(User.__table__.c.handle)
GAME_WIDTH = _width(Job.__table__.c.game)
TITLE_WIDTH = _width(Job.__table__.c.title)


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (not JSON, not a list)."""


@dataclass(slots=True)
class ImportReport:
    imported: list[int] = field(default_factory=list)  # job ids
    errors: list[str] = field(default_factory=list)  # "entry 3: reason"
    copied: list[Path] = field(default_factory=list)  # files copied into the storage root

    def summary(self) -> str:
        lines = [f"imported {len(self.imported)} jobs, {len(self.errors)} entries rejected"]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)


def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's pysqlite savepoint recipe: stop pysqlite from beginning (and committing) on its own...
    dbapi_connection.isolation_level = None


def _emit_begin(conn: Connection) -> None:
    # ...and begin explicitly whenever SQLAlchemy begins, so SAVEPOINT/RELEASE nest inside it.
    conn.exec_driver_sql("BEGIN")


def import_engine(url: str) -> Engine:
    """The platform engine for an import: `make_engine`, plus working savepoints on SQLite."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _no_implicit_transactions)
        event.listen(engine, "begin", _emit_begin)
    return engine


def _require_savepoints(session: Session) -> None:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    if engine.dialect.name == "sqlite" and not event.contains(engine, "begin", _emit_begin):
        raise ValueError(
            "on SQLite, import through an engine from seed_import.import_engine (real savepoints)"
        )


def _parse_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError("created_at must be an ISO 8601 string")
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"created_at {raw!r} has no timezone; give UTC, e.g. 2025-01-28T14:03:00Z")
    return value.astimezone(UTC)


def _text(entry: dict[str, Any], name: str, width: int) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} {value!r} must be a string")
    if "\x00" in value:  # Postgres refuses NUL in text, SQLite would store it
        raise ValueError(f"{name} contains a NUL character")
    if len(value) > width:
        raise ValueError(f"{name} is {len(value)} characters long, over the {width} allowed")
    return value


def _count(entry: dict[str, Any], name: str) -> int | None:
    value = entry.get(name)
    if value is None:
        return None
    # bool is an int in Python: `true` is not a view count.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
        raise ValueError(f"{name} {value!r} must be an integer in 0..{BIGINT_MAX}")
    return value


def _source(base: Path, import_root: Path, raw: Any, max_file_bytes: int) -> Path:
    """The manifest's file, refused unless it resolves inside `import_root` and is a small enough file."""
    if not isinstance(raw, str):
        raise ValueError(f"path {raw!r} must be a string")
    try:
        source = resolve_inside(import_root, str(base / raw))
    except UnsafePathError as exc:
        raise ValueError(f"path {raw!r} is refused: it must stay inside {import_root} ({exc})") from exc
    if not source.is_file():
        raise ValueError(f"file {raw!r} not found next to the manifest")
    size = source.stat().st_size
    if size > max_file_bytes:
        raise ValueError(f"file {raw!r} is {size:,} bytes, over the {max_file_bytes:,}-byte import limit")
    return source


def _target(source: Path, storage_root: Path, week: str) -> Path | None:
    """Where a file outside the storage root is copied to (a free name); None when it is already inside."""
    try:
        resolve_inside(storage_root, str(source))
        return None
    except UnsafePathError:
        target_dir = storage_root / "imports" / week
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        n = 1
        while target.exists():
            target = target_dir / f"{source.stem}_{n}{source.suffix}"
            n += 1
        return target


def _container_duration(path: Path) -> float | None:
    try:
        with av.open(str(path)) as container:
            return container.duration / 1_000_000 if container.duration else None
    except (av.error.FFmpegError, OSError):
        return None  # selection probes properly and rejects the file with its reason


def import_manifest(
    session: Session,
    storage_root: Path,
    week: str,
    manifest: Path,
    *,
    import_root: Path | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    timezone: str = DEFAULT_TIMEZONE,
) -> ImportReport:
    """Add the manifest's good entries to the session's transaction; the caller commits.

    `import_root` (default: the manifest's folder) is where every listed file must be. Files copied into
    the storage root are deleted again if the transaction rolls back instead of committing.
    """
    parse_week(week)
    _require_savepoints(session)
    start, end = week_window(week, timezone)  # a DST week is 167 or 169 hours long in a local timezone
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from exc
    if not isinstance(entries, list):
        raise ManifestError(f"manifest {manifest} must hold a JSON list of objects")
    report = ImportReport()
    base = manifest.parent.resolve()
    root = (import_root or base).resolve()

    # Savepoints and flushes fire these events too; only the outermost transaction decides the copies' fate.
    def forget_copies(session_: Session) -> None:
        if not session_.in_nested_transaction():
            report.copied.clear()

    def remove_copies(_session: Session, previous: SessionTransaction) -> None:
        if previous.parent is not None:  # a savepoint, or a failed flush inside one
            return
        for path in report.copied:
            path.unlink(missing_ok=True)
        report.copied.clear()

    # Both stay registered for the session's life: after the commit or rollback the list is empty.
    event.listen(session, "after_commit", forget_copies)
    event.listen(session, "after_soft_rollback", remove_copies)
    for index, entry in enumerate(entries):
        copied: list[Path] = []
        try:
            job_id = _import_entry(
                session, storage_root, week, base, root, max_file_bytes, entry, start, end, copied
            )
        except (ValueError, TypeError, OSError, SQLAlchemyError) as exc:
            for path in copied:
                path.unlink(missing_ok=True)
            report.errors.append(f"entry {index}: {_reason(exc)}")
        else:
            report.imported.append(job_id)
            report.copied += copied
    return report


def _reason(exc: Exception) -> str:
    if isinstance(exc, SQLAlchemyError):
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"the database refused it: {detail}"
    return str(exc)


@dataclass(frozen=True)
class _Entry:
    """One manifest entry, checked: what the platform's rows need."""

    created_at: datetime
    source: Path
    tier: SubscriptionTier
    score: float | None
    handle: str
    game: str | None
    title: str
    views: int | None
    likes: int | None


def _checked_entry(
    entry: Any, week: str, base: Path, import_root: Path, max_file_bytes: int, start: datetime, end: datetime
) -> _Entry:
    """The entry's fields, each checked, or a ValueError saying which one is wrong."""
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    missing = [k for k in REQUIRED if not entry.get(k)]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    created_at = _parse_time(entry["created_at"])
    if not start <= created_at < end:
        raise ValueError(f"created_at {created_at.isoformat()} is outside the week {week}")
    source = _source(base, import_root, entry["path"], max_file_bytes)
    tier_raw = entry.get("tier", SubscriptionTier.FREE.value)
    if tier_raw not in {t.value for t in SubscriptionTier}:
        raise ValueError(f"tier {tier_raw!r} must be one of {', '.join(t.value for t in SubscriptionTier)}")
    score = entry.get("score")
    if score is not None and (
        isinstance(score, bool) or not (isinstance(score, int | float) and 0 <= score <= 1)
    ):
        raise ValueError(f"score {score!r} must be a number in 0..1")
    user_raw = entry["user"]
    handle = user_raw.lstrip("@") if isinstance(user_raw, str) else ""
    if not 1 <= len(handle) <= HANDLE_WIDTH:
        raise ValueError(f"user {user_raw!r} must be a handle of 1..{HANDLE_WIDTH} characters")
    game = _text(entry, "game", GAME_WIDTH)
    return _Entry(
        created_at=created_at,
        source=source,
        tier=SubscriptionTier(tier_raw),
        score=float(score) if score is not None else None,
        handle=handle,
        game=game,
        title=_text(entry, "title", TITLE_WIDTH) or f"{game} clip by @{handle}",
        views=_count(entry, "views"),
        likes=_count(entry, "likes"),
    )


def _import_entry(
    session: Session,
    storage_root: Path,
    week: str,
    base: Path,
    import_root: Path,
    max_file_bytes: int,
    entry: Any,
    start: datetime,
    end: datetime,
    copied: list[Path],
) -> int:
    e = _checked_entry(entry, week, base, import_root, max_file_bytes, start, end)
    with session.begin_nested():
        user = session.scalar(select(User).where(User.handle == e.handle))
        if user is None:
            user = User(handle=e.handle, email=f"{e.handle}@example.com", subscription_tier=e.tier)
            session.add(user)
            session.flush()
        job = Job(
            user_id=user.id,
            status=JobStatus.SUCCESS,
            kind=JobKind.UPLOAD,
            created_at=e.created_at,
            game=e.game,
            title=e.title,
            scoring={"score": e.score} if e.score is not None else None,
            views=e.views,
            likes=e.likes,
        )
        session.add(job)
        session.flush()
        target = _target(e.source, storage_root, week)
        stored = target or e.source
        session.add(
            Render(
                job_id=job.id,
                format=RenderFormat.LANDSCAPE,
                path=str(stored.resolve().relative_to(storage_root.resolve())),
                duration=_container_duration(e.source),
            )
        )
        session.flush()
        if target is not None:  # last: only an entry the database took gets its file
            copied.append(target)
            shutil.copy2(e.source, target)
        return job.id
