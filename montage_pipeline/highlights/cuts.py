"""The week's other cuts, from the same analysis and beat-grid rules as the main one. Dagster-free.

- The **short** (portrait, 15–60 s, default 30 s) is the main cut's strongest spans: each main span is a
  candidate whose "clip" is that span's own source range, so a short span always lies inside a main span
  (same source, time range contained). `media.timeline.build_timeline` picks them strongest first (the
  per-user cap; no game penalty: the main cut already balanced the games), fits them to the short's own
  beat grid (the main's tempo, its own title card and cut points) and orders them by the main cut's rule
  (open on the second best, build, close on the best). When the short holds the main's two best spans
  its order is the main's order restricted to its spans, which lets the render cut it from the main
  pass's decoded frames (`render_plan.short_parents`).
- The **long** YouTube cut (landscape, 3–10 min) is every good moment of the week (windows scoring at
  least `min_score`), each at its own window length, never stretched and never padded with dull clips.
  A moment the main cut also shows is shown as the main cut shows it (its source range and length in
  beats; `as_in_main`), so the long cut's render copies it from the main landscape file instead of
  encoding it again (`media.span_copies`). It is skipped, with its reason, when the good material does
  not reach the long cut's minimum (`thin_week`) or when it would barely add to the main cut
  (`no_gain_over_main`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from montage_pipeline.highlights.edl import ScoredCandidate, build_edl
from montage_pipeline.highlights.render_plan import output_fps
from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.span_copies import frame_at
from montage_pipeline.media.timeline import (
    BEATS_PER_BAR,
    Candidate,
    PlacedSpan,
    Timeline,
    TimelineRules,
    build_timeline,
)
from montage_pipeline.media.windows import Window
from montage_pipeline.rules import RULES
from montage_pipeline.storage import keys
from montage_pipeline.storage.media_store import MediaStore

SHORT_RANGE_S = (15.0, 60.0)
LONG_RANGE_S = (180.0, 600.0)
THIN_WEEK = "thin_week"
NO_GAIN = "no_gain_over_main"
CUTS = ("short", "main", "long")


@dataclass(frozen=True, slots=True)
class ShortRules:
    target_s: float = 30.0
    intro_beats: int = 4  # a shorter title card than the main cut's 8 beats
    min_len_s: float = 3.0  # the least of a main span the short keeps
    max_clips: int = 8


@dataclass(frozen=True, slots=True)
class LongRules:
    min_s: float = LONG_RANGE_S[0]
    max_s: float = LONG_RANGE_S[1]
    min_gain_s: float = 60.0  # the long cut must run at least this much longer than the main cut
    min_score: float = RULES.min_score  # a window scoring less is dull: never in the long cut
    max_clips: int = 60
    per_user_cap: int = 4


@dataclass(frozen=True, slots=True)
class LongCut:
    spans: list[EditSpan]  # empty when skipped
    skip_reason: str | None  # THIN_WEEK or NO_GAIN when skipped
    good_s: float  # seconds of good material in the week (the windows scoring ≥ min_score)
    detail: str  # why, in words
    timeline: Timeline | None = None


def check_short_target(target_s: float) -> None:
    lo, hi = SHORT_RANGE_S
    if not lo <= target_s <= hi:
        raise ValueError(f"the short cut is {lo:g}–{hi:g} s long, not {target_s:g} s")


def _span_candidate(span: EditSpan) -> Candidate:
    """A main span as a candidate clip that *is* its source range: the short cannot leave it."""
    length = span.source_out_s - span.source_in_s
    peak = min(max(span.peak_source_s - span.source_in_s, 0.0), length)
    window = Window(0.0, length, peak, span.score, span.score, span.score, {}, "none", "none")
    return Candidate(span.clip_id, span.user_id, span.game, length, window, 0.5, prior_weight=0.0)


def short_cut(
    main: Sequence[EditSpan], week: str, rules: ShortRules = ShortRules()
) -> tuple[Timeline, list[EditSpan]]:
    """The short cut of the main cut's `main` spans; `ValueError` for a target outside 15–60 s."""
    check_short_target(rules.target_s)
    ordered = sorted(main, key=lambda s: s.order)
    if not ordered:
        raise ValueError("the main cut has no span to take a short from")
    timeline_rules = TimelineRules(
        target_s=rules.target_s,
        min_clips=1,
        max_clips=rules.max_clips,
        per_user_cap=RULES.per_user_cap,
        game_diversity_penalty=0.0,
        max_game_share=1.0,
        min_score=0.0,
        min_len_s=rules.min_len_s,
        max_len_s=RULES.max_window_s,
        intro_beats=rules.intro_beats,
        tempo_bpm=ordered[0].tempo_bpm,
    )
    timeline = build_timeline([_span_candidate(s) for s in ordered], week, timeline_rules)
    by_clip = {s.clip_id: s for s in ordered}
    return timeline, [_retimed(by_clip[p.candidate.clip_id], p, timeline) for p in timeline.spans]


def _retimed(main: EditSpan, placed: PlacedSpan, timeline: Timeline) -> EditSpan:
    """The main span, trimmed to the placed range (offsets inside it) on the short's grid."""
    return dataclasses.replace(
        main,
        order=placed.order,
        source_in_s=round(main.source_in_s + placed.source_in_s, 4),
        source_out_s=round(main.source_in_s + placed.source_out_s, 4),
        montage_in_s=placed.montage_in_s,
        montage_out_s=placed.montage_out_s,
        peak_montage_s=placed.peak_montage_s,
        peak_on_downbeat=placed.peak_on_downbeat,
        in_beat=placed.in_beat,
        out_beat=placed.out_beat,
        tempo_bpm=timeline.tempo_bpm,
        beat_s=round(timeline.beat_s, 6),
        intro_s=round(timeline.intro_s, 6),
        transition_in="cut",
        transition_s=0.0,
    )


def long_cut(
    scored: Sequence[ScoredCandidate],
    main: Sequence[EditSpan],
    week: str,
    base: TimelineRules,
    rules: LongRules = LongRules(),
) -> LongCut:
    """The long cut of every good candidate, or why there is none. `base`: the main cut's rules."""
    good = [s for s in scored if s.candidate.effective_score >= rules.min_score]
    good_s = sum(min(base.max_len_s, s.candidate.window.length_s) for s in good)
    main_s = max((s.montage_out_s for s in main), default=0.0)
    tempo = main[0].tempo_bpm if main else base.tempo_bpm
    beat = 60.0 / tempo if tempo else 0.5
    intro_s = base.intro_beats * beat
    if intro_s + good_s < rules.min_s:
        detail = f"{good_s:.0f}s of good moments for a {rules.min_s:.0f}s minimum"
        return LongCut([], THIN_WEEK, good_s, detail)
    long_rules = dataclasses.replace(
        base,
        target_s=min(rules.max_s, intro_s + good_s),
        min_clips=1,
        max_clips=rules.max_clips,
        per_user_cap=rules.per_user_cap,
        min_score=rules.min_score,
        tempo_bpm=tempo,
        max_stretch=1.0,
        dull_fill_share=0.0,  # never a dull clip to fill the length
    )
    timeline, spans = build_edl(week, good, long_rules)
    if timeline.total_s < rules.min_s:
        detail = f"the good moments the rules allow make {timeline.total_s:.0f}s, under {rules.min_s:.0f}s"
        return LongCut([], THIN_WEEK, good_s, detail, timeline)
    if abs(timeline.total_s - long_rules.target_s) > 0.01:  # the target the fit reached, exactly
        long_rules = dataclasses.replace(long_rules, target_s=timeline.total_s)
        timeline, spans = build_edl(week, good, long_rules)
    shown = as_in_main(spans, main, output_fps(main, 0)) if main else spans
    if rules.min_s <= shown[-1].montage_out_s <= rules.max_s:
        spans = shown
    total_s = spans[-1].montage_out_s
    if total_s < main_s + rules.min_gain_s or {s.clip_id for s in spans} <= {s.clip_id for s in main}:
        detail = f"{total_s:.0f}s against the main cut's {main_s:.0f}s, no new moment worth it"
        return LongCut([], NO_GAIN, good_s, detail, timeline)
    return LongCut(spans, None, good_s, f"{len(spans)} moments, {total_s:.0f}s", timeline)


def _trimmed(span: EditSpan, beats: int, beat: float) -> EditSpan | None:
    """The span `beats` shorter at its end, or None when that would leave under two beats or end it less
    than a beat after its peak."""
    out_beat = span.out_beat - beats
    m_out = round(out_beat * beat, 4)
    if out_beat - span.in_beat < 2 or span.peak_montage_s > m_out - beat:
        return None
    cut = span.montage_out_s - m_out
    return dataclasses.replace(
        span, out_beat=out_beat, montage_out_s=m_out, source_out_s=round(span.source_out_s - cut, 4)
    )


def as_in_main(spans: Sequence[EditSpan], main: Sequence[EditSpan], fps: int) -> list[EditSpan]:
    """The cut's spans (on the main cut's beat grid) with every moment the main cut shows with a hard cut
    taken as the main cut shows it: its source range and its length in beats. The spans after it move
    by whole beats; the span before it gives up to three beats at its end so that the moment's peak
    stays on a downbeat as in the main cut. The source range moves by under one frame at `fps` (the
    renders' rate), so that each output frame of the span shows the same source frame as in the main
    cut, and the render can copy it."""
    by_clip = {m.clip_id: m for m in main if m.transition_in == "cut"}
    out: list[EditSpan] = []
    ordered = sorted(spans, key=lambda s: s.order)
    if not ordered:
        return []
    beat = 60.0 / ordered[0].tempo_bpm
    cursor = ordered[0].in_beat
    for span in ordered:
        m = by_clip.get(span.clip_id)
        if m is None or m.source_path != span.source_path or span.transition_in != "cut":
            beats, source_in, source_out, lead, peak_source = (
                span.out_beat - span.in_beat,
                span.source_in_s,
                span.source_out_s,
                span.peak_montage_s - span.montage_in_s,
                span.peak_source_s,
            )
        else:
            beats, lead, peak_source = (
                m.out_beat - m.in_beat,
                m.peak_montage_s - m.montage_in_s,
                m.peak_source_s,
            )
            late = (cursor - m.in_beat) % BEATS_PER_BAR  # beats past where its peak meets a downbeat
            if late and out and out[-1].clip_id not in by_clip and (trimmed := _trimmed(out[-1], late, beat)):
                out[-1] = trimmed  # the span before gives up those beats at its end
                cursor -= late
            m_in = round(cursor * beat, 4)
            # Where each cut's frame grid falls in the span: move the source by the difference.
            shift = (frame_at(m.montage_in_s, fps) / fps - m.montage_in_s) - (
                frame_at(m_in, fps) / fps - m_in
            )
            shift = shift if m.source_in_s + shift >= 0 else 0.0
            # Not rounded: a source frame sits exactly on the grid's times when the source's rate is a
            # multiple of the output's, and a rounding of 0.1 ms would take its neighbour instead.
            source_in, source_out = m.source_in_s + shift, m.source_out_s + shift
        m_in, m_out = round(cursor * beat, 4), round((cursor + beats) * beat, 4)
        peak_beat = (m_in + lead) / beat
        out.append(
            dataclasses.replace(
                span,
                source_in_s=source_in,
                source_out_s=source_out,
                montage_in_s=m_in,
                montage_out_s=m_out,
                in_beat=cursor,
                out_beat=cursor + beats,
                peak_source_s=peak_source,
                peak_montage_s=round(m_in + lead, 4),
                peak_on_downbeat=abs(peak_beat - round(peak_beat)) < 1e-3 and round(peak_beat) % 4 == 0,
            )
        )
        cursor += beats
    return out


def spans_inside(short: Sequence[EditSpan], main: Sequence[EditSpan], tolerance_s: float = 1e-3) -> bool:
    """Whether every short span lies inside a main span of the same clip (same source file)."""
    by_clip = {s.clip_id: s for s in main}
    for s in short:
        m = by_clip.get(s.clip_id)
        if m is None or m.source_path != s.source_path:
            return False
        if s.source_in_s < m.source_in_s - tolerance_s or s.source_out_s > m.source_out_s + tolerance_s:
            return False
    return True


def cut_key(week: str, cut: str) -> str:
    """Where a cut's EDL step leaves its spans (or why it has none) for the steps after it."""
    return f"{keys.week_prefix(week)}/cuts/{cut}.json"


@dataclass(frozen=True, slots=True)
class StoredCut:
    spans: list[EditSpan]
    skip_reason: str | None  # why there are no spans (THIN_WEEK, NO_GAIN, or the step never ran)
    detail: str = ""


def main_fingerprint(main: Sequence[EditSpan]) -> str:
    """Which main cut a cut was made from: a rerun of `scored_highlights` alone changes it."""
    raw = json.dumps([dataclasses.asdict(s) for s in main], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def store_cut(store: MediaStore, week: str, cut: str, stored: StoredCut, main: Sequence[EditSpan]) -> None:
    """The cut's spans and verdict as `weeks/{week}/cuts/{cut}.json`, replaced on every run, with the
    fingerprint of the main cut it was made from."""
    document = {
        "week": week,
        "cut": cut,
        "main_edl": main_fingerprint(main),
        "skip_reason": stored.skip_reason,
        "detail": stored.detail,
        "spans": [dataclasses.asdict(s) for s in stored.spans],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.json"
        path.write_text(json.dumps(document, sort_keys=True))
        store.put_file(path, cut_key(week, cut), content_type="application/json")


def load_cut(store: MediaStore, week: str, cut: str, main: Sequence[EditSpan] | None = None) -> StoredCut:
    """The cut its EDL step stored; no spans, with the reason, when there is none or the step never ran,
    or (given `main`) when it was made from another main cut: `scored_highlights` rerun without it, so
    its spans may no longer lie inside the main cut's."""
    key = cut_key(week, cut)
    if not store.exists(key):
        return StoredCut([], f"no {cut} EDL for {week} (materialize {cut}_highlights)")
    with tempfile.TemporaryDirectory() as tmp:
        store.get_file(key, Path(tmp) / "cut.json")
        document = json.loads((Path(tmp) / "cut.json").read_text())
    if main is not None and document.get("main_edl") != main_fingerprint(main):
        return StoredCut([], f"stale: the {cut} EDL was made from another main cut (rerun {cut}_highlights)")
    spans = [EditSpan(**raw) for raw in document["spans"]]
    reason = document.get("skip_reason") or (None if spans else f"the {cut} cut has no span")
    return StoredCut(spans, reason, document.get("detail", ""))
