"""Rank verified clips into the week's candidate pool. No Dagster, and no I/O but the caller's `sound`.

Content comes first: every verified clip of the week goes on to analysis, and the montage is cut from
what the clips hold (`highlights/`). What this module adds is a *prior*, the platform's own view of a
clip before its content is seen, which can tip a close call between two clips of similar content
(`Candidate.effective_score`) but never gates one out. Each term is in 0..1:

    prior = w_job * job_score + w_engagement * engagement + w_recency * recency

- `job_score`: the platform's own clip score when the job has one, else the week's median of those
  present (0.5 if none): an unscored clip is neither favoured nor punished.
- `engagement`: log(1 + views) + 3 * log(1 + likes), divided by the week's maximum (likes weigh more:
  they are a deliberate act); a clip without counts gets the week's median.
- `recency`: position of the upload in the week (0 = Monday 00:00, 1 = Sunday 24:00), the seed's
  tie-breaker kept as a small term.

Identical files (same sha256) and near-duplicates (perceptual fingerprints) are the only clips left out
here, in favour of the sharper copy (more pixels), or the better-ranked one when both are the same size.
The sound that confirms a picture match is read through the caller's `sound`, and only for the clips
whose pictures match another's (`build_pool`).
The per-user cap and game diversity are applied when the cut is picked, with the content scores known.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from montage_pipeline.media.fingerprint import VisualFingerprint, confirmed, matching_shift
from montage_pipeline.rules import RULES
from montage_pipeline.selection.rows import Rejection, SelectedClip
from montage_pipeline.selection.verify import VerifiedClip, reject


@dataclass(frozen=True, slots=True)
class RankingRules:
    weight_job_score: float = RULES.weight_job_score
    weight_engagement: float = RULES.weight_engagement
    weight_recency: float = RULES.weight_recency
    near_duplicate_threshold: float | None = None  # None: the fingerprint module's calibrated default


@dataclass(frozen=True, slots=True)
class ScoredClip:
    clip: VerifiedClip
    score: float
    job_term: float
    engagement_term: float
    recency_term: float


def _engagement(views: int | None, likes: int | None) -> float | None:
    if views is None and likes is None:
        return None
    return math.log1p(max(0, views or 0)) + 3.0 * math.log1p(max(0, likes or 0))


def score_clips(clips: list[VerifiedClip], week_start: datetime, rules: RankingRules) -> list[ScoredClip]:
    """Score every clip with the documented formula; sorted best first (ties: newest, then larger)."""
    job_scores = [c.job.job_score for c in clips if c.job.job_score is not None]
    job_default = statistics.median(job_scores) if job_scores else 0.5
    raw_eng = [_engagement(c.job.views, c.job.likes) for c in clips]
    present = [e for e in raw_eng if e is not None]
    eng_max = max(present) if present else 0.0
    eng_default = statistics.median(present) if present else 0.0
    week_seconds = 7 * 24 * 3600.0
    scored = []
    for clip, eng in zip(clips, raw_eng, strict=True):
        job_term = clip.job.job_score if clip.job.job_score is not None else job_default
        eng_value = eng if eng is not None else eng_default
        eng_term = eng_value / eng_max if eng_max > 0 else 0.0
        recency = (clip.job.created_at - week_start).total_seconds() / week_seconds
        recency_term = min(1.0, max(0.0, recency))
        score = (
            rules.weight_job_score * job_term
            + rules.weight_engagement * eng_term
            + rules.weight_recency * recency_term
        )
        scored.append(ScoredClip(clip, score, job_term, eng_term, recency_term))
    scored.sort(
        key=lambda s: (
            -s.score,
            -s.clip.job.created_at.timestamp(),
            -(s.clip.probe.width * s.clip.probe.height),
            -s.clip.job.job_id,
        )
    )
    return scored


def _clip_id(clip: VerifiedClip) -> str:
    return f"job-{clip.job.job_id}"


# A clip's fingerprint with the sound that confirms a picture match (`fingerprint.with_sound`).
SoundOf = Callable[[VerifiedClip], VisualFingerprint]


def _duplicate_of(
    candidate: ScoredClip, kept: list[ScoredClip], threshold: float | None, sound: SoundOf
) -> str | None:
    for other in kept:
        if other.clip.sha256 == candidate.clip.sha256:
            return _clip_id(other.clip)
        kwargs = {} if threshold is None else {"threshold": threshold}
        shift = matching_shift(candidate.clip.fingerprint, other.clip.fingerprint, **kwargs)
        if shift is not None and confirmed(sound(candidate.clip), sound(other.clip), shift):
            return _clip_id(other.clip)
    return None


def build_pool(
    clips: list[VerifiedClip],
    week_start: datetime,
    rules: RankingRules,
    sound: SoundOf | None = None,
) -> tuple[list[SelectedClip], list[Rejection]]:
    """The ranked candidate pool and the clips left out, each with its reason.

    `sound` gives a clip's fingerprint with its sound when its pictures match another clip's (the caller
    reads the file: `verify.sound_of`); each clip's is asked for once at most. Without it the
    fingerprints are taken as they are.
    """
    known: dict[int, VisualFingerprint] = {}

    def sound_once(clip: VerifiedClip) -> VisualFingerprint:
        if clip.job.job_id not in known:
            known[clip.job.job_id] = sound(clip) if sound is not None else clip.fingerprint
        return known[clip.job.job_id]

    ranked = score_clips(clips, week_start, rules)
    rejections: list[Rejection] = []
    kept: list[ScoredClip] = []
    # Of copies of one moment the sharper one is kept (ties: the better-ranked): the montage shows it.
    # sorted() is stable, so clips of equal size stay in rank order.
    for candidate in sorted(ranked, key=lambda s: -(s.clip.probe.width * s.clip.probe.height)):
        original = _duplicate_of(candidate, kept, rules.near_duplicate_threshold, sound_once)
        if original is None:
            kept.append(candidate)
        else:
            rejections.append(
                reject(
                    candidate.clip.job,
                    f"near_duplicate_of:{original}",
                    "the same moment as a sharper or better-ranked clip",
                )
            )
    unique = [s for s in ranked if s in kept]
    return [_to_row(s, rank) for rank, s in enumerate(unique, start=1)], rejections


def _to_row(s: ScoredClip, rank: int) -> SelectedClip:
    c, job, probe = s.clip, s.clip.job, s.clip.probe
    assert job.user_id is not None and job.user_handle is not None and job.render_path is not None
    reason = (
        f"prior rank {rank}: {s.score:.3f} (job {s.job_term:.2f}, engagement {s.engagement_term:.2f}, "
        f"recency {s.recency_term:.2f})"
    )
    return SelectedClip(
        clip_id=_clip_id(c),
        job_id=job.job_id,
        user_id=job.user_id,
        user_handle=job.user_handle,
        game=job.game or "unknown",
        created_at=job.created_at,
        render_path=job.render_path,
        path=str(c.path),
        duration_s=probe.duration_s,
        fps=probe.fps,
        variable_fps=probe.variable_fps,
        width=probe.width,
        height=probe.height,
        rotation=probe.rotation,
        has_audio=probe.has_audio,
        size_bytes=probe.size_bytes,
        sha256=c.sha256,
        visual_hash=c.fingerprint.to_hex(),
        job_score=job.job_score,
        views=job.views,
        likes=job.likes,
        rank=rank,
        rank_score=round(s.score, 6),
        selection_reason=reason,
    )


def newest_pool(clips: list[VerifiedClip], max_clips: int) -> tuple[list[SelectedClip], list[Rejection]]:
    """The seed's rule, kept for comparison: newest first, the first `max_clips`, nothing else."""
    ordered = sorted(clips, key=lambda c: (c.job.created_at, c.job.job_id), reverse=True)
    rows = [
        replace(
            _to_row(ScoredClip(clip, 0.0, 0.0, 0.0, 0.0), rank),
            selection_reason=f"rank {rank}: newest first (policy newest)",
        )
        for rank, clip in enumerate(ordered[:max_clips], start=1)
    ]
    rejections = [
        reject(c.job, "not_needed", f"policy newest keeps the {max_clips} newest")
        for c in ordered[max_clips:]
    ]
    return rows, rejections
