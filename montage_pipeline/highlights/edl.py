"""From the week's analysed candidates to the edit decision list (EDL). Dagster-free.

Glue between the selection rows, the per-clip analyses, and the pure media functions: excitement per
clip normalised over the week, the best window per clip, then the beat-grid timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from montage_pipeline.highlights.rows import EditSpan
from montage_pipeline.media.analysis import ClipAnalysis
from montage_pipeline.media.excitement import (
    TrackInput,
    WeekScale,
    bin_features,
    excitement_curve,
)
from montage_pipeline.media.timeline import Candidate, Timeline, TimelineRules, build_timeline
from montage_pipeline.media.windows import Window, WindowRules, best_window
from montage_pipeline.rules import RULES
from montage_pipeline.selection.rows import SelectedClip


def track_input(analysis: ClipAnalysis) -> TrackInput:
    t = analysis.tracks
    return TrackInput(
        duration_s=analysis.duration_s,
        has_audio=analysis.has_audio,
        frame_times_s=t.frame_times_s,
        motion=t.motion,
        flash=t.flash,
        redness=t.redness,
        audio_step_s=t.audio_step_s,
        loudness_db=t.loudness_db,
        onset=t.onset,
        cut_times_s=tuple(s.start_s for s in analysis.scenes[1:]),
    )


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    clip: SelectedClip
    candidate: Candidate


def score_candidates(
    clips: Sequence[SelectedClip],
    analyses: dict[str, ClipAnalysis],
    window_rules: WindowRules,
    *,
    prior_weight: float = RULES.prior_weight,
) -> list[ScoredCandidate]:
    """The best window of every analysed clip, scored against the whole week's scale."""
    usable = [c for c in clips if c.clip_id in analyses]
    inputs = {c.clip_id: track_input(analyses[c.clip_id]) for c in usable}
    binned = {cid: bin_features(track) for cid, track in inputs.items()}
    scale = WeekScale.of(list(binned.values()))
    top_rank = max((c.rank_score for c in usable), default=0.0)
    scored = []
    for clip in usable:
        track = inputs[clip.clip_id]
        curve = excitement_curve(binned[clip.clip_id], scale)
        window = best_window(curve, track.duration_s, track.cut_times_s, window_rules)
        prior = clip.rank_score / top_rank if top_rank > 0 else 0.5
        candidate = Candidate(
            clip.clip_id, clip.user_id, clip.game, track.duration_s, window, prior, prior_weight
        )
        scored.append(ScoredCandidate(clip, candidate))
    return scored


def newest_candidates(clips: Sequence[SelectedClip], rules: TimelineRules) -> list[ScoredCandidate]:
    """The seed's baseline: the newest clips, each from its start (no content scoring)."""
    newest = sorted(clips, key=lambda c: (c.created_at, c.job_id), reverse=True)[: rules.max_clips]
    share = rules.target_s / max(1, len(newest))
    out = []
    for rank, clip in enumerate(newest):
        length = min(clip.duration_s, max(rules.min_len_s, min(rules.max_len_s, share)))
        score = 1.0 - rank / max(1, len(newest))  # newest first
        window = Window(0.0, length, length / 2, score, score, score, {}, "none", "none")
        out.append(
            ScoredCandidate(
                clip, Candidate(clip.clip_id, clip.user_id, clip.game, clip.duration_s, window, 1.0)
            )
        )
    return out


def edit_spans(
    timeline: Timeline, scored: Sequence[ScoredCandidate], transition: str = "cut", transition_s: float = 0.0
) -> list[EditSpan]:
    by_id = {s.clip.clip_id: s.clip for s in scored}
    spans = []
    for placed in timeline.spans:
        clip = by_id[placed.candidate.clip_id]
        window = placed.candidate.window
        breakdown = {
            **window.breakdown,
            "content": round(window.score, 4),
            "peak": round(window.peak_value, 4),
            "prior": round(placed.candidate.prior, 4),
        }
        if placed.candidate.engagement != 1.0:  # only a week the engagement prior moved says so
            breakdown["engagement"] = round(placed.candidate.engagement, 4)
        spans.append(
            EditSpan(
                order=placed.order,
                clip_id=clip.clip_id,
                job_id=clip.job_id,
                user_id=clip.user_id,
                user_handle=clip.user_handle,
                game=clip.game,
                source_path=clip.path,
                source_sha256=clip.sha256,
                source_in_s=placed.source_in_s,
                source_out_s=placed.source_out_s,
                montage_in_s=placed.montage_in_s,
                montage_out_s=placed.montage_out_s,
                peak_source_s=window.peak_s,
                peak_montage_s=placed.peak_montage_s,
                peak_on_downbeat=placed.peak_on_downbeat,
                in_beat=placed.in_beat,
                out_beat=placed.out_beat,
                tempo_bpm=timeline.tempo_bpm,
                beat_s=round(timeline.beat_s, 6),
                intro_s=round(timeline.intro_s, 6),
                score=round(placed.candidate.effective_score, 4),
                score_breakdown=breakdown,
                credit=f"@{clip.user_handle} · {clip.game}",
                transition_in="cut" if placed.order == 1 else transition,
                transition_s=0.0 if placed.order == 1 or transition == "cut" else transition_s,
                source_fps=clip.fps,
                source_width=clip.width,
                source_height=clip.height,
                source_rotation=clip.rotation,
                source_has_audio=clip.has_audio,
            )
        )
    return spans


def build_edl(
    week: str,
    scored: Sequence[ScoredCandidate],
    rules: TimelineRules,
    *,
    keep_order: bool = False,
    transition: str = "cut",
    transition_s: float = 0.0,
) -> tuple[Timeline, list[EditSpan]]:
    timeline = build_timeline([s.candidate for s in scored], week, rules, keep_order=keep_order)
    return timeline, edit_spans(timeline, scored, transition, transition_s)
