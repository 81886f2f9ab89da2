"""Why the cut is what it is: each pick beside the best clip left out, for a reviewer to trust or overrule.

Plain functions over the timeline and the EDL (no Dagster): `scored_highlights` shows their rows as
tables and JSON on its asset page.
"""

from __future__ import annotations

from collections.abc import Sequence

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.timeline import Candidate, Timeline

REASONS = {
    "user_cap": "the creator already has the most clips a week allows",
    "game_cap": "its game already fills the most of the cut one game may",
    "not_needed": "the montage was full with stronger clips",
    "too_dull": "no action worth showing: the stronger clips fill the montage",
}


def _top_features(breakdown: dict[str, float], n: int = 3) -> str:
    """The features that added most to the window's excitement, e.g. `level +0.21, busy +0.08`."""
    features = {k: v for k, v in breakdown.items() if k not in ("peak", "prior", "content", "engagement")}
    top = sorted(features.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{k} {v:+.2f}" for k, v in top if v > 0) or "—"


def best_left_out(timeline: Timeline) -> tuple[Candidate, str] | None:
    return max(timeline.not_picked, key=lambda cr: cr[0].effective_score, default=None)


Cell = str | int | float

# (column, type) of each table, in the order shown.
PICKS_COLUMNS = (
    ("#", "integer"),
    ("clip", "string"),
    ("credit", "string"),
    ("source window", "string"),
    ("montage", "string"),
    ("score", "float"),
    ("content", "float"),
    ("prior", "float"),
    ("what scored", "string"),
    ("vs best left out", "string"),
)
LEFT_OUT_COLUMNS = (("clip", "string"), ("score", "float"), ("best window", "string"), ("why not", "string"))


def picks_rows(spans: Sequence[EditSpan], timeline: Timeline) -> list[dict[str, Cell]]:
    """One row per span: the window, its score and what made it, and its margin over the best left out."""
    left = best_left_out(timeline)
    rival = left[0].effective_score if left else None
    rows: list[dict[str, Cell]] = []
    for s in spans:
        b = s.score_breakdown
        if rival is None:
            margin = "nothing left out"
        elif s.score >= rival:
            margin = f"+{s.score - rival:.3f}"
        else:  # a weaker clip is in because the stronger one hit the per-user cap or game diversity
            margin = f"{s.score - rival:.3f} (it was {left[1]})" if left else ""
        values: tuple[Cell, ...] = (
            s.order,
            s.clip_id,
            s.credit,
            f"{s.source_in_s:.1f}–{s.source_out_s:.1f}s (peak {s.peak_source_s:.1f}s)",
            f"{s.montage_in_s:.1f}–{s.montage_out_s:.1f}s",
            round(s.score, 3),
            round(b.get("content", 0), 3),
            round(b.get("prior", 0), 2),
            _top_features(b),
            margin,
        )
        rows.append(dict(zip((name for name, _ in PICKS_COLUMNS), values, strict=True)))
    return rows


def left_out_rows(timeline: Timeline) -> list[dict[str, Cell]]:
    """The analysed clips not in the cut, strongest first, and why each is out."""
    return [
        {
            "clip": c.clip_id,
            "score": round(c.effective_score, 3),
            "best window": f"{c.window.start_s:.1f}–{c.window.end_s:.1f}s",
            "why not": REASONS.get(reason, reason),
        }
        for c, reason in sorted(timeline.not_picked, key=lambda cr: -cr[0].effective_score)
    ]


def left_out_json(timeline: Timeline) -> list[dict[str, object]]:
    return [
        {
            "clip_id": c.clip_id,
            "reason": reason,
            "score": round(c.effective_score, 4),
            "window": [c.window.start_s, c.window.end_s],
        }
        for c, reason in sorted(timeline.not_picked, key=lambda cr: -cr[0].effective_score)
    ]
