"""Helpers for the selection tests: a bank of small real clips and a way to add platform rows."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from montage_pipeline.media.synth import plan_clip, write_clip
from montage_pipeline.platform.models import (
    Job,
    JobKind,
    JobStatus,
    Render,
    RenderFormat,
    SubscriptionTier,
    User,
)
from montage_pipeline.selection.rows import EligibleJob

SIZE = (320, 180)


@dataclass(frozen=True)
class ClipBank:
    root: Path  # holds the files; copy into a storage root per test

    def path(self, name: str) -> Path:
        return self.root / name


def make_clip_bank(root: Path) -> ClipBank:
    """Distinct good clips, a re-encoded copy, and the bad files a real week brings."""
    root.mkdir(parents=True, exist_ok=True)
    w, h = SIZE
    for i in range(6):
        write_clip(root / f"good_{i}.mp4", plan_clip(6.0, 30, seed=1000 + i, width=w, height=h))
    original = plan_clip(6.0, 30, seed=1000, width=256, height=144)
    write_clip(root / "reencoded_good_0.mp4", original, crf=30)
    write_clip(root / "short.mp4", plan_clip(2.0, 30, seed=77, width=w, height=h))
    shutil.copy(root / "good_1.mp4", root / "truncated.mp4")
    with (root / "truncated.mp4").open("r+b") as fh:
        fh.truncate(int((root / "good_1.mp4").stat().st_size * 0.55))
    (root / "empty.mp4").write_bytes(b"")
    Image.new("RGB", (320, 180), (200, 40, 40)).save(root / "still.png")
    shutil.copy(root / "still.png", root / "still_image.mp4")
    return ClipBank(root)


class PlatformRows:
    """Adds users, jobs and renders to a platform database in committed transactions."""

    def __init__(self, url: str, storage_root: Path, bank: ClipBank) -> None:
        self.engine = create_engine(url)
        self.storage_root = storage_root
        self.bank = bank
        self._users: dict[str, int] = {}

    def user(self, handle: str, opted_out: bool = False) -> int:
        if handle not in self._users:
            with Session(self.engine) as s, s.begin():
                u = User(
                    handle=handle,
                    email=f"{handle}@example.com",
                    subscription_tier=SubscriptionTier.FREE,
                    opted_out_of_featuring=opted_out,
                )
                s.add(u)
                s.flush()
                self._users[handle] = u.id
        return self._users[handle]

    def job(
        self,
        handle: str,
        created_at: datetime,
        clip: str | None = "good_0.mp4",
        *,
        stored_path: str | None = None,
        status: JobStatus = JobStatus.SUCCESS,
        kind: JobKind = JobKind.UPLOAD,
        game: str = "Valorant",
        score: float | None = None,
        opted_out: bool = False,
    ) -> int:
        """A job; `clip` is copied from the bank into the storage root (under a per-job name)."""
        user_id = self.user(handle, opted_out)
        with Session(self.engine) as s, s.begin():
            job = Job(
                user_id=user_id,
                status=status,
                kind=kind,
                created_at=created_at,
                game=game,
                scoring={"score": score} if score is not None else None,
            )
            s.add(job)
            s.flush()
            path = stored_path
            if path is None and clip is not None:
                path = f"uploads/{handle}/{job.id}_{clip}"
                target = self.storage_root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if (self.bank.root / clip).exists():
                    shutil.copy(self.bank.path(clip), target)
            if path is not None:
                s.add(Render(job_id=job.id, format=RenderFormat.LANDSCAPE, path=path))
            return job.id

    def close(self) -> None:
        self.engine.dispose()


def add_upload(session: Session, handle: str, rel_path: str, created_at: datetime, game: str) -> int:
    """A successful upload job of a new user, with its landscape render at `rel_path`."""
    user = User(handle=handle, email=f"{handle}@example.com")
    session.add(user)
    session.flush()
    job = Job(
        user_id=user.id, status=JobStatus.SUCCESS, kind=JobKind.UPLOAD, created_at=created_at, game=game
    )
    session.add(job)
    session.flush()
    session.add(Render(job_id=job.id, format=RenderFormat.LANDSCAPE, path=rel_path))
    return job.id


def add_generated_uploads(
    session: Session, root: Path, clips: int, seconds: float, seed: int, game: str = "Valorant"
) -> None:
    """`clips` generated 320×180 30 fps clips under `root/u/`, one upload each by its own creator, an hour
    apart from Tuesday 2025-01-28 (inside the week of 2025-01-27)."""
    for i in range(clips):
        rel = f"u/clip_{i}.mp4"
        write_clip(root / rel, plan_clip(seconds, 30, seed=seed + i, width=320, height=180))
        add_upload(session, f"gamer{i}", rel, datetime(2025, 1, 28, tzinfo=UTC) + timedelta(hours=i), game)


def eligible_job(
    job_id: int, path: str, created_at: datetime = datetime(2025, 1, 28, tzinfo=UTC)
) -> EligibleJob:
    """A job of the week by one consenting user, whose render is `path` (relative to the storage root)."""
    return EligibleJob(
        job_id=job_id,
        user_id=1,
        user_handle="neo",
        user_opted_out=False,
        created_at=created_at,
        game="Apex Legends",
        title=None,
        job_score=None,
        views=None,
        likes=None,
        render_path=path,
        render_duration=None,
    )
