"""The data contracts of the selection stage: the rows `eligible_jobs` and `selected_clips` hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EligibleJob:
    """A successful upload job of the week, with its landscape render (the seed's query)."""

    job_id: int
    user_id: int | None
    user_handle: str | None
    user_opted_out: bool
    created_at: datetime
    game: str | None
    title: str | None
    job_score: float | None  # the platform's own clip score, 0..1, when it has one
    views: int | None
    likes: int | None
    render_path: str | None  # as stored: relative to the storage root
    render_duration: float | None


@dataclass(frozen=True, slots=True)
class SelectedClip:
    """A verified candidate for the montage, ranked; the final cut is chosen once content is scored."""

    clip_id: str
    job_id: int
    user_id: int
    user_handle: str
    game: str
    created_at: datetime
    render_path: str
    path: str  # resolved absolute path inside the storage root
    duration_s: float
    fps: float
    variable_fps: bool
    width: int
    height: int
    rotation: int
    has_audio: bool
    size_bytes: int
    sha256: str
    visual_hash: str  # perceptual fingerprint (hex), for near-duplicate checks across stages
    job_score: float | None
    views: int | None
    likes: int | None
    rank: int
    rank_score: float
    selection_reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A candidate left out, and why (shown in the UI; never a silent drop)."""

    job_id: int
    user_handle: str | None
    render_path: str | None
    reason: str  # stable code: missing, outside_storage_root, empty, not_a_video, truncated, ...
    detail: str
