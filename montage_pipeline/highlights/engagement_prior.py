"""The engagement prior: which games, creators and moment types drew viewers, as a bounded nudge to the
next weeks' picks. Dagster-free; docs/selection_and_scoring.md explains it for admins.

1. **Each week's engagement** (the `PRIOR_WEEKS` weeks before the one being cut): every published post's
   counts on its `SETTLE_DAYS`-th measured day (or its latest, if younger), as
   views + LIKE_WEIGHT x likes + COMMENT_WEIGHT x comments, divided by the mean of its platform's
   posts over those weeks (a TikTok view and a YouTube view are not worth the same); the week's score
   is the mean over its posts, scaled so the weeks average 1.
2. **Per game, creator and moment type**: the mean score of the weeks that featured it, weighted by its
   share of each montage's screen time (`engagement_exposure`), shrunk toward 1 by how many weeks it
   was seen in (n / (n + SHRINK_WEEKS)), and clamped to [FLOOR, CEIL].
3. **Per candidate**: the product of its game's, creator's and moment type's factors, clamped again.
   It multiplies the candidate's effective score *after* the selection gates (opt-outs and caps are
   enforced by `selected_clips` and by the timeline's pick, which still applies them) and never across
   `min_score`: a dull clip is left as it is, and a worthy clip is never pushed under the line.

No history (or a single week: nothing to compare) gives every factor exactly 1: the cut is unchanged.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from montage_pipeline.highlights.edl import ScoredCandidate
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.platform.models import EngagementExposure, PostEngagement
from montage_pipeline.weeks import week_row_key

PRIOR_WEEKS = 8
SETTLE_DAYS = 7
LIKE_WEIGHT = 10.0
COMMENT_WEIGHT = 20.0
SHRINK_WEEKS = 2.0
FLOOR, CEIL = 0.9, 1.1
KINDS = ("game", "creator", "moment")

# The excitement feature that scored most in a window names its moment type.
MOMENT_TYPES = {
    "level": "loud",
    "rise": "loud",
    "onset": "shots",
    "busy": "firefight",
    "motion": "movement",
    "jerk": "impacts",
    "flash": "explosions",
    "red": "damage",
    "cuts": "fast cuts",
}


def moment_type(breakdown: dict[str, float]) -> str:
    """The kind of moment a window shows, from the feature that added most to its excitement."""
    features = [(v, k) for k, v in breakdown.items() if k in MOMENT_TYPES]
    if not features or max(features)[0] <= 0:
        return "calm"
    return MOMENT_TYPES[max(features)[1]]


@dataclass(frozen=True, slots=True)
class Exposure:
    kind: str
    value: str
    share: float
    clips: int


def exposure_of(spans: Sequence[EditSpan]) -> list[Exposure]:
    """What a montage featured, by game, creator (user id) and moment type, with screen-time shares."""
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    clips: dict[tuple[str, str], int] = defaultdict(int)
    total = sum(s.montage_out_s - s.montage_in_s for s in spans) or 1.0
    for s in spans:
        length = s.montage_out_s - s.montage_in_s
        for key in (
            ("game", s.game),
            ("creator", str(s.user_id)),
            ("moment", moment_type(s.score_breakdown)),
        ):
            seconds[key] += length
            clips[key] += 1
    return [Exposure(k, v, round(sec / total, 6), clips[(k, v)]) for (k, v), sec in sorted(seconds.items())]


def record_exposure(session: Session, week: str, spans: Sequence[EditSpan]) -> list[Exposure]:
    """Replace the week's exposure rows with what its montage (`spans`) features."""
    week_start = week_row_key(week)
    session.execute(delete(EngagementExposure).where(EngagementExposure.week_start == week_start))
    found = exposure_of(spans)
    session.add_all(
        EngagementExposure(week_start=week_start, kind=e.kind, value=e.value, share=e.share, clips=e.clips)
        for e in found
    )
    return found


@dataclass(frozen=True, slots=True)
class PostCounts:
    week_start: datetime
    post_id: int
    platform: str
    day: date
    views: int
    likes: int
    comments: int


@dataclass(frozen=True, slots=True)
class EngagementPrior:
    """Factors per (kind, value); anything not in it is 1."""

    factors: dict[tuple[str, str], float] = field(default_factory=dict)
    week_scores: dict[str, float] = field(default_factory=dict)

    def factor(self, game: str, user_id: int, moment: str) -> float:
        f = 1.0
        for key in (("game", game), ("creator", str(user_id)), ("moment", moment)):
            f *= self.factors.get(key, 1.0)
        return min(CEIL, max(FLOOR, f)) if f != 1.0 else 1.0


def week_scores(posts: Iterable[PostCounts]) -> dict[datetime, float]:
    """Each week's engagement relative to the others (mean 1), from its posts' settled counts."""
    by_post: dict[int, list[PostCounts]] = defaultdict(list)
    for p in posts:
        by_post[p.post_id].append(p)
    settled: list[tuple[datetime, str, float]] = []
    for rows in by_post.values():
        rows.sort(key=lambda r: r.day)
        pick = rows[min(SETTLE_DAYS, len(rows)) - 1]
        settled.append(
            (
                pick.week_start,
                pick.platform,
                pick.views + LIKE_WEIGHT * pick.likes + COMMENT_WEIGHT * pick.comments,
            )
        )
    per_platform: dict[str, list[float]] = defaultdict(list)
    for _, platform, value in settled:
        per_platform[platform].append(value)
    platform_mean = {p: sum(v) / len(v) for p, v in per_platform.items()}
    ratios: dict[datetime, list[float]] = defaultdict(list)
    for week, platform, value in settled:
        if platform_mean[platform] > 0:
            ratios[week].append(value / platform_mean[platform])
    scores = {w: sum(r) / len(r) for w, r in ratios.items()}
    mean = sum(scores.values()) / len(scores) if scores else 0.0
    return {w: s / mean for w, s in scores.items()} if mean > 0 else {}


def compute_prior(
    scores: dict[datetime, float], exposure: Iterable[tuple[datetime, Exposure]]
) -> EngagementPrior:
    """Factors from week scores and what each week featured (see the module's docstring)."""
    weighted: dict[tuple[str, str], float] = defaultdict(float)
    shares: dict[tuple[str, str], float] = defaultdict(float)
    weeks: dict[tuple[str, str], int] = defaultdict(int)
    for week, e in exposure:
        if week not in scores or e.share <= 0:
            continue
        key = (e.kind, e.value)
        weighted[key] += e.share * scores[week]
        shares[key] += e.share
        weeks[key] += 1
    factors: dict[tuple[str, str], float] = {}
    if len(scores) >= 2:  # one week has nothing to be compared with
        for key, share in shares.items():
            n = weeks[key]
            relative = weighted[key] / share
            shrunk = 1.0 + (relative - 1.0) * n / (n + SHRINK_WEEKS)
            factors[key] = round(min(CEIL, max(FLOOR, shrunk)), 4)
    return EngagementPrior(
        {k: f for k, f in factors.items() if f != 1.0},
        {w.date().isoformat(): round(s, 4) for w, s in sorted(scores.items())},
    )


def load_prior(session: Session, week: str) -> EngagementPrior:
    """The prior for cutting `week`: from the PRIOR_WEEKS weeks before it."""
    end = week_row_key(week)
    start = end - timedelta(weeks=PRIOR_WEEKS)
    rows = session.scalars(
        select(PostEngagement).where(
            PostEngagement.week_start >= start,
            PostEngagement.week_start < end,
            PostEngagement.views.is_not(None),
        )
    ).all()
    posts = [
        PostCounts(
            r.week_start, r.social_post_id, r.platform, r.day, r.views or 0, r.likes or 0, r.comments or 0
        )
        for r in rows
    ]
    exposure = session.scalars(
        select(EngagementExposure).where(
            EngagementExposure.week_start >= start, EngagementExposure.week_start < end
        )
    ).all()
    return compute_prior(
        week_scores(posts), [(e.week_start, Exposure(e.kind, e.value, e.share, e.clips)) for e in exposure]
    )


@dataclass(frozen=True, slots=True)
class PriorEffect:
    """What the prior did to one candidate (for the asset page)."""

    clip_id: str
    game: str
    user_id: int
    moment: str
    factor: float
    rank_before: int
    rank_after: int


def apply_prior(
    scored: Sequence[ScoredCandidate], prior: EngagementPrior, min_score: float
) -> tuple[list[ScoredCandidate], list[PriorEffect]]:
    """The candidates with their engagement factors, and the effect on each one the prior touched."""
    out: list[ScoredCandidate] = []
    for s in scored:
        c = s.candidate
        factor = prior.factor(c.game, c.user_id, moment_type(c.window.breakdown))
        base = c.effective_score
        if base < min_score or base * factor < min_score:
            factor = 1.0  # the prior never moves a clip across min_score, either way
        out.append(
            s
            if factor == 1.0
            else dataclasses.replace(s, candidate=dataclasses.replace(c, engagement=factor))
        )
    before = _ranks(scored)
    after = _ranks(out)
    effects = [
        PriorEffect(
            s.candidate.clip_id,
            s.candidate.game,
            s.candidate.user_id,
            moment_type(s.candidate.window.breakdown),
            round(s.candidate.engagement, 4),
            before[s.candidate.clip_id],
            after[s.candidate.clip_id],
        )
        for s in out
        if s.candidate.engagement != 1.0 or before[s.candidate.clip_id] != after[s.candidate.clip_id]
    ]
    return out, sorted(effects, key=lambda e: e.rank_after)


def _ranks(scored: Sequence[ScoredCandidate]) -> dict[str, int]:
    order = sorted(scored, key=lambda s: (-s.candidate.effective_score, s.candidate.clip_id))
    return {s.candidate.clip_id: i for i, s in enumerate(order, start=1)}
