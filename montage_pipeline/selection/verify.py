"""Verify each eligible job's render: inside the storage root, present, a real decodable video.

Runs in a thread pool: PyAV decodes and hashes release the GIL, so two files are checked at once on two
cores. Every failure becomes a Rejection with a stable reason code; nothing raises for bad input.
The probe's `ClipLimits` (file size, frame size, duration, bytes per second, decoded frame density, HDR)
bound what one upload may cost: the deployment's (`settings.clip_limits`, the `MONTAGE_CLIP_*` variables)
as the asset passes them, else the defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.media.cores import usable_cores
from montage_pipeline.media.fingerprint import VisualFingerprint, visual_fingerprint, with_sound
from montage_pipeline.media.paths import UnsafePathError, resolve_inside
from montage_pipeline.media.probe import ClipLimits, ClipProbe, ProbeError, probe_clip
from montage_pipeline.selection.rows import EligibleJob, Rejection
from montage_pipeline.storage.hashing import file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerifiedClip:
    job: EligibleJob
    path: Path
    probe: ClipProbe
    sha256: str
    fingerprint: VisualFingerprint


def reject(job: EligibleJob, reason: str, detail: str) -> Rejection:
    return Rejection(job.job_id, job.user_handle, job.render_path, reason, detail)


def verify_job(
    job: EligibleJob, storage_root: Path, min_duration_s: float, limits: ClipLimits | None = None
) -> VerifiedClip | Rejection:
    """Check one job's render; a Rejection says why it cannot be used (`limits`: default `ClipLimits()`)."""
    limits = limits or ClipLimits()
    if job.user_opted_out:
        # Checked before touching the file: an opted-out user's clip is never read.
        return reject(job, "user_opted_out", "the user opted out of being featured")
    if job.user_id is None or job.user_handle is None:
        return reject(job, "no_user", "the job has no user to credit")
    if not job.render_path:
        return reject(job, "no_render", "the job has no landscape render")
    try:
        path = resolve_inside(storage_root, job.render_path)
    except UnsafePathError as exc:
        return reject(job, "outside_storage_root", str(exc))
    try:
        probe = probe_clip(path, min_duration_s=min_duration_s, limits=limits)
        # The sound that confirms a picture match is read later, only for clips that match (ranking).
        return VerifiedClip(job, path, probe, file_sha256(path), visual_fingerprint(path, sound=False))
    except ProbeError as exc:
        return reject(job, exc.reason, exc.detail)
    except OSError as exc:
        return reject(job, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")


def sound_of(clip: VerifiedClip) -> VisualFingerprint:
    """The clip's fingerprint with its audio envelope read in (`ranking.build_pool` asks for it when the
    clip's pictures match another's); a clip without audio keeps none."""
    return with_sound(clip.fingerprint, clip.path) if clip.probe.has_audio else clip.fingerprint


def verify_jobs(
    jobs: Iterable[EligibleJob],
    storage_root: Path,
    min_duration_s: float,
    on_result: Callable[[VerifiedClip | Rejection], None] | None = None,
    workers: int | None = None,
    limits: ClipLimits | None = None,
) -> list[VerifiedClip | Rejection]:
    """Verify all jobs, in the input order, `workers` at a time (default: one per core)."""
    workers = workers or usable_cores()
    limits = limits or ClipLimits()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
        results = []
        for result in pool.map(lambda j: verify_job(j, storage_root, min_duration_s, limits), jobs):
            if on_result:
                on_result(result)
            results.append(result)
    return results
