"""Turn scored windows into the montage's timeline on a beat grid. Pure functions, no I/O.

1. **Pick**: candidates by effective score (window score × (1 + prior_weight × (prior − 0.5))), greedily, with
   the per-user cap, a game-diversity penalty and a cap on any one game's share of the clips, until the
   clips' natural lengths fill the target or `max_clips` is reached (at least `min_clips` when the week
   has them). A clip whose best moment scores under `min_score` (no action worth showing) is only padded
   in while the clips already chosen fill less than `dull_fill_share` of the target: a shorter montage of
   action beats one with dull spans.
2. **Tempo**: from config, else drawn from `tempo_range_bpm` with the week key as seed, so a rerun of a
   week gets the same grid. Beat k sits at k × 60/bpm seconds of montage time; the title card takes the
   first `intro_beats`.
3. **Fit**: each span's length becomes a whole number of beats (every cut lands on a beat), then beats
   are taken from or given to spans until intro + spans equals the target (in beats), respecting each
   span's bounds (min/max length, the clip's own duration, and no more than `max_stretch` × its window:
   growing a span past its action only adds dull seconds, so a week short of worthy clips ends shorter
   than the target, with a note). Shrinking takes from the weakest spans first, growing gives to the
   strongest.
4. **Order**: open strong (the second best), build (the rest in rising score), close on the best.
5. **Place**: within each span the source in-point slides so that the peak lands on a downbeat (the
   first beat of a bar) where the clip allows; cuts stay on beats because only source times move.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field

from montage_pipeline.media.windows import Window
from montage_pipeline.rules import RULES

BEATS_PER_BAR = 4


@dataclass(frozen=True, slots=True)
class Candidate:
    clip_id: str
    user_id: int
    game: str
    duration_s: float
    window: Window
    prior: float  # 0..1, from the selection rank (job score, engagement, recency)
    prior_weight: float = RULES.prior_weight
    # The engagement prior's factor (0.9..1.1, see highlights/engagement_prior.py); 1.0: no history.
    engagement: float = 1.0

    @property
    def effective_score(self) -> float:
        """The content score, moved by at most ±prior_weight/2 of itself by the prior: a tie-break;
        then by the engagement factor."""
        return self.window.score * (1.0 + self.prior_weight * (self.prior - 0.5)) * self.engagement


@dataclass(frozen=True, slots=True)
class TimelineRules:
    # The defaults are `rules.RULES` (see there what each means).
    target_s: float = RULES.target_duration_s
    min_clips: int = RULES.min_clips
    max_clips: int = RULES.max_clips
    per_user_cap: int = RULES.per_user_cap
    game_diversity_penalty: float = RULES.game_diversity_penalty
    max_game_share: float = RULES.max_game_share
    min_score: float = RULES.min_score
    min_len_s: float = RULES.min_window_s
    max_len_s: float = RULES.max_window_s
    intro_beats: int = RULES.intro_beats
    tempo_bpm: float | None = None
    tempo_range_bpm: tuple[int, int] = (RULES.tempo_min_bpm, RULES.tempo_max_bpm)
    min_lead_s: float = 1.0
    # A span grows past its window's own length by at most this factor to fill the target (None: up to
    # max_len_s). Stretched spans show the dull seconds around the action: a week with too few worthy
    # clips (the per-user cap, quiet uploads) gets a shorter cut instead.
    max_stretch: float | None = 1.0
    # Dull clips (under min_score) are padded in only while the chosen ones fill less than this share of
    # the target: a shorter cut of action beats one with a player walking in it.
    dull_fill_share: float = 0.5


@dataclass(frozen=True, slots=True)
class PlacedSpan:
    candidate: Candidate
    order: int
    source_in_s: float
    source_out_s: float
    montage_in_s: float
    montage_out_s: float
    in_beat: int
    out_beat: int
    peak_montage_s: float
    peak_on_downbeat: bool


@dataclass(frozen=True, slots=True)
class Timeline:
    tempo_bpm: float
    beat_s: float
    intro_s: float
    spans: tuple[PlacedSpan, ...]
    target_s: float
    notes: tuple[str, ...] = field(default=())
    not_picked: tuple[tuple[Candidate, str], ...] = field(default=())

    @property
    def total_s(self) -> float:
        return self.spans[-1].montage_out_s if self.spans else self.intro_s


def choose_tempo(week_key: str, rules: TimelineRules) -> float:
    if rules.tempo_bpm:
        return float(rules.tempo_bpm)
    lo, hi = rules.tempo_range_bpm
    return float(random.Random(zlib.crc32(week_key.encode())).randint(lo, hi))


def pick(
    candidates: list[Candidate], rules: TimelineRules, content_s: float | None = None
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    """The clips of the cut, and those left out with why. `content_s`: the seconds the spans must fill."""
    content_s = rules.target_s if content_s is None else content_s
    remaining = sorted(candidates, key=lambda c: (-c.effective_score, c.clip_id))
    chosen: list[Candidate] = []
    left_out: list[tuple[Candidate, str]] = []
    per_user: dict[int, int] = {}
    per_game: dict[str, int] = {}
    natural = 0.0
    game_cap = math.ceil(rules.max_game_share * rules.max_clips)
    held_back: set[str] = set()
    while remaining and len(chosen) < rules.max_clips:
        if len(chosen) >= rules.min_clips and natural >= rules.target_s:
            break

        def effective(c: Candidate) -> float:
            return c.effective_score * (1 - rules.game_diversity_penalty) ** per_game.get(c.game, 0)

        open_games = [c for c in remaining if per_game.get(c.game, 0) < game_cap]
        best = max(open_games or remaining, key=effective)
        if open_games:  # clips that beat this pick but for their game being full
            held_back.update(c.clip_id for c in remaining if effective(c) > effective(best))
        if best.effective_score < rules.min_score:
            room = sum(_longest(c, rules) for c in chosen)
            if room >= content_s * rules.dull_fill_share:  # only dull clips left; the cut has enough
                break
        remaining.remove(best)
        if per_user.get(best.user_id, 0) >= rules.per_user_cap:
            left_out.append((best, "user_cap"))
            continue
        chosen.append(best)
        per_user[best.user_id] = per_user.get(best.user_id, 0) + 1
        per_game[best.game] = per_game.get(best.game, 0) + 1
        natural += best.window.length_s

    def reason(c: Candidate) -> str:
        if c.effective_score < rules.min_score:
            return "too_dull"
        return "game_cap" if c.clip_id in held_back else "not_needed"

    left_out += [(c, reason(c)) for c in remaining]
    return chosen, left_out


def _longest(c: Candidate, rules: TimelineRules) -> float:
    """The longest span a clip may give: its window stretched by `max_stretch`, within max_len_s."""
    longest = min(rules.max_len_s, c.duration_s)
    if rules.max_stretch is not None:
        longest = min(longest, max(rules.min_len_s, c.window.length_s * rules.max_stretch))
    return longest


def _bounds(c: Candidate, rules: TimelineRules, beat: float) -> tuple[int, int]:
    longest = _longest(c, rules)
    hi = max(1, math.floor(longest / beat + 1e-9))
    lo = min(hi, max(1, math.ceil(min(rules.min_len_s, c.duration_s) / beat - 1e-9)))
    return lo, hi


def fit_lengths(chosen: list[Candidate], target_beats: int, rules: TimelineRules, beat: float) -> list[int]:
    """Whole-beat lengths near each window's natural length whose sum is `target_beats` where possible."""
    bounds = [_bounds(c, rules, beat) for c in chosen]
    beats = [
        min(hi, max(lo, round(c.window.length_s / beat))) for c, (lo, hi) in zip(chosen, bounds, strict=True)
    ]
    scores = [c.effective_score for c in chosen]
    total = sum(beats)
    while total > target_beats:
        shrinkable = [i for i, (lo, _) in enumerate(bounds) if beats[i] > lo]
        if not shrinkable:
            break
        i = max(shrinkable, key=lambda k: beats[k] * (1.5 - scores[k]))
        beats[i] -= 1
        total -= 1
    while total < target_beats:
        growable = [i for i, (_, hi) in enumerate(bounds) if beats[i] < hi]
        if not growable:
            break
        i = max(growable, key=lambda k: (scores[k] + 0.5) / beats[k])
        beats[i] += 1
        total += 1
    return beats


def montage_order(chosen: list[Candidate]) -> list[Candidate]:
    """Open strong (second best), build (rising), close on the best."""
    ranked = sorted(chosen, key=lambda c: (c.effective_score, c.clip_id))
    if len(ranked) < 3:
        return ranked
    best, second = ranked[-1], ranked[-2]
    return [second, *ranked[:-2], best]


def _place(
    c: Candidate, montage_in_beat: int, n_beats: int, beat: float, rules: TimelineRules
) -> tuple[float, bool]:
    """The source in-point: the window's own lead-in, slid (≤ 2 beats) to put the peak on a downbeat."""
    length = n_beats * beat
    lo_in, hi_in = 0.0, max(0.0, c.duration_s - length)
    # Keep the window's own lead-in, but never so much that a shortened span ends before the peak.
    min_tail = min(1.5, length * 0.25)
    lead = min(max(c.window.peak_s - c.window.start_s, min(rules.min_lead_s, length / 2)), length - min_tail)
    preferred = min(hi_in, max(lo_in, c.window.peak_s - lead))
    best: tuple[float, float] | None = None
    for k in range(montage_in_beat + 1, montage_in_beat + n_beats):
        if k % BEATS_PER_BAR:
            continue
        lead = (k - montage_in_beat) * beat
        source_in = c.window.peak_s - lead
        if not lo_in - 1e-6 <= source_in <= hi_in + 1e-6 or lead < min(rules.min_lead_s, length / 2):
            continue
        shift = abs(source_in - preferred)
        if shift <= 2 * beat + 1e-6 and (best is None or shift < best[0]):
            best = (shift, source_in)
    if best is not None:
        return min(hi_in, max(lo_in, best[1])), True
    return preferred, False


def build_timeline(
    candidates: list[Candidate],
    week_key: str,
    rules: TimelineRules | None = None,
    *,
    keep_order: bool = False,
) -> Timeline:
    """The montage timeline. `keep_order` (the seed's baseline) keeps the candidates' order and in-points."""
    rules = rules or TimelineRules()
    bpm = choose_tempo(week_key, rules)
    beat = 60.0 / bpm
    intro_s = rules.intro_beats * beat
    target_beats = max(0, round(rules.target_s / beat) - rules.intro_beats)
    chosen, left_out = pick(candidates, rules, target_beats * beat)
    notes: list[str] = []
    lengths = fit_lengths(chosen, target_beats, rules, beat)
    # Too much material even at minimum lengths: drop the weakest clips while above min_clips.
    while sum(lengths) > target_beats and len(chosen) > rules.min_clips:
        weakest = min(chosen, key=lambda c: c.effective_score)
        chosen.remove(weakest)
        left_out.append((weakest, "not_needed"))
        lengths = fit_lengths(chosen, target_beats, rules, beat)
    total = (rules.intro_beats + sum(lengths)) * beat
    if chosen and abs(total - rules.target_s) > 0.05 * rules.target_s:
        notes.append(
            f"montage is {total:.1f}s for a {rules.target_s:.0f}s target: "
            + (
                "the week has too little usable footage"
                if total < rules.target_s
                else "too many clips for the target"
            )
        )
    by_clip = dict(zip((c.clip_id for c in chosen), lengths, strict=True))
    spans: list[PlacedSpan] = []
    cursor = rules.intro_beats
    for order, c in enumerate(chosen if keep_order else montage_order(chosen), start=1):
        n = by_clip[c.clip_id]
        source_in, on_downbeat = (
            (c.window.start_s, False) if keep_order else _place(c, cursor, n, beat, rules)
        )
        m_in, m_out = cursor * beat, (cursor + n) * beat
        spans.append(
            PlacedSpan(
                candidate=c,
                order=order,
                source_in_s=round(source_in, 4),
                source_out_s=round(min(c.duration_s, source_in + n * beat), 4),
                montage_in_s=round(m_in, 4),
                montage_out_s=round(m_out, 4),
                in_beat=cursor,
                out_beat=cursor + n,
                peak_montage_s=round(m_in + (c.window.peak_s - source_in), 4),
                peak_on_downbeat=on_downbeat,
            )
        )
        cursor += n
    return Timeline(bpm, beat, intro_s, tuple(spans), rules.target_s, tuple(notes), tuple(left_out))
