"""A week's `scene_segments` table from per-clip analysis summaries, whichever way the clips were analysed.

A summary is the small part of one clip's analysis that the table needs (its scenes, what it cost, or
why it failed); the feature tracks stay in the analysis cache. The in-step analysis and the per-clip
steps both reduce their outcomes to summaries and assemble the table here, so both give the same rows
and the same metadata. A summary is small enough to pass between steps on any executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from montage_pipeline.highlights.analysis_cache import AnalysisOutcome
from montage_pipeline.highlights.rows import SceneSegment


@dataclass(frozen=True, slots=True)
class ClipSummary:
    clip_id: str
    cached: bool
    error: str | None  # None: analysed (or cached); else why the clip was left out
    frames_decoded: int  # 0 when cached or failed
    seconds: float  # decode time of a fresh analysis; 0 when cached or failed
    scenes: tuple[SceneSegment, ...]


def summarise(outcome: AnalysisOutcome, sha256: str) -> ClipSummary:
    """The table's rows and the cost figures of one clip's outcome."""
    a = outcome.analysis
    if a is None:
        return ClipSummary(outcome.clip_id, False, outcome.error or "no analysis", 0, 0.0, ())
    scenes = tuple(
        SceneSegment(
            outcome.clip_id,
            sha256,
            i,
            round(s.start_s, 4),
            round(s.end_s, 4),
            round(s.cut_score, 4),
            outcome.key,
        )
        for i, s in enumerate(a.scenes)
    )
    fresh = not outcome.cached
    return ClipSummary(
        outcome.clip_id,
        outcome.cached,
        None,
        a.frames_decoded if fresh else 0,
        a.seconds if fresh else 0.0,
        scenes,
    )


def scene_table(summaries: list[ClipSummary]) -> tuple[list[SceneSegment], dict[str, Any]]:
    """The rows in the summaries' order, and the figures `scene_segments` reports (docs/metrics.md);
    `analysis_failures` maps each failed clip to its reason."""
    rows = [row for s in summaries for row in s.scenes]
    fresh = [s for s in summaries if s.error is None and not s.cached]
    failed = [s for s in summaries if s.error is not None]
    return rows, {
        "clips_analysed": len(fresh),
        "clips_cached": sum(1 for s in summaries if s.cached),
        "clips_failed": len(failed),
        "analysis_failures": {s.clip_id: s.error for s in failed},
        "analysis_seconds": round(sum(s.seconds for s in fresh), 2),
        "frames_decoded": sum(s.frames_decoded for s in fresh),
        "scenes": len(rows),
    }
