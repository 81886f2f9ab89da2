"""Window choice and the beat-grid timeline on hand-made feature tracks (no video needed)."""

from __future__ import annotations

import numpy as np
import pytest

from montage_pipeline.media.excitement import (
    TrackInput,
    WeekScale,
    bin_features,
    excitement_curve,
)
from montage_pipeline.media.timeline import Candidate, TimelineRules, build_timeline, choose_tempo
from montage_pipeline.media.windows import Window, WindowRules, best_window


def calm_track(
    duration: float, bursts: list[tuple[float, float]], cuts: tuple[float, ...] = ()
) -> TrackInput:
    """30 fps video and 50 ms audio tracks: calm everywhere except loud, fast, bright bursts."""
    rng = np.random.default_rng(7)
    t = np.arange(0, duration, 1 / 30)
    motion = 0.01 + 0.005 * rng.random(len(t))
    flash = np.zeros(len(t))
    at = np.arange(0, duration, 0.05)
    loud = -40 + rng.normal(0, 1, len(at))
    onset = 0.05 * rng.random(len(at))
    for start, end in bursts:
        v = (t >= start) & (t < end)
        motion[v] = 0.2
        flash[v & (t < start + 0.2)] = 0.8
        a = (at >= start) & (at < end)
        loud[a] = -12
        onset[(at >= start) & (at < start + 0.1)] = 1.0
    return TrackInput(
        duration,
        True,
        t,
        motion.astype(np.float32),
        flash.astype(np.float32),
        np.full(len(t), 0.5, dtype=np.float32),
        0.05,
        loud.astype(np.float32),
        onset.astype(np.float32),
        cuts,
    )


def window_of(track: TrackInput, rules: WindowRules | None = None) -> Window:
    binned = bin_features(track)
    curve = excitement_curve(binned, WeekScale.of([binned]))
    return best_window(curve, track.duration_s, track.cut_times_s, rules)


def test_a_calm_clip_with_one_burst_is_cut_around_the_burst() -> None:
    w = window_of(calm_track(40.0, [(21.0, 23.0)]))
    assert w.start_s <= 21.0 - 1.0  # lead-in before the action
    assert w.end_s >= 23.0  # the action is not cut short
    assert 21.0 <= w.peak_s <= 23.0
    assert 6.0 <= w.length_s <= 20.0


def test_nearby_peaks_merge_into_one_streak() -> None:
    w = window_of(calm_track(60.0, [(30.0, 31.0), (32.5, 33.5), (50.0, 50.5)]))
    assert w.start_s <= 29.0 and w.end_s >= 33.5


def test_boundaries_snap_to_a_scene_cut_and_not_into_action() -> None:
    free = window_of(calm_track(40.0, [(21.0, 23.0)]))
    cut = round(free.start_s - 0.6, 2)  # a scene cut just before where the window would start
    w = window_of(calm_track(40.0, [(21.0, 23.0)], cuts=(cut,)))
    assert w.start_s == pytest.approx(cut)
    assert w.start_snapped_to == "cut"
    # A cut inside the action is never a boundary: the window still holds all of it, with its lead-in.
    inside = window_of(calm_track(40.0, [(21.0, 23.0)], cuts=(22.0,)))
    assert inside.start_s <= 20.0 and inside.end_s >= 23.0


def test_a_short_burst_in_a_still_clip_sits_in_the_middle_of_its_window() -> None:
    w = window_of(calm_track(40.0, [(21.0, 23.0)]))
    before, after = 21.0 - w.start_s, w.end_s - 23.0
    assert before >= 2.0  # the lead-in
    assert abs(before - after) <= 3.0, (w.start_s, w.end_s)  # not all dull seconds on one side


def test_windows_fit_short_clips() -> None:
    w = window_of(calm_track(5.0, [(2.0, 3.0)]))
    assert w.start_s == 0.0 and w.end_s == pytest.approx(5.0)


def _window(length: float, peak_at: float, score: float) -> Window:
    return Window(10.0, 10.0 + length, 10.0 + peak_at, score, score, score, {}, "none", "none")


def _candidates(n: int, users: int = 10) -> list[Candidate]:
    rng = np.random.default_rng(3)
    return [
        Candidate(
            clip_id=f"job-{i}",
            user_id=i % users,
            game=["A", "B", "C"][i % 3],
            duration_s=40.0,
            window=_window(float(rng.uniform(8, 16)), float(rng.uniform(2, 6)), float(rng.uniform(0.2, 0.9))),
            prior=float(rng.uniform(0, 1)),
        )
        for i in range(n)
    ]


def test_timeline_fills_the_target_on_the_beat_grid() -> None:
    rules = TimelineRules(target_s=180.0)
    tl = build_timeline(_candidates(24), "2025-01-27", rules)
    assert 120 <= tl.tempo_bpm <= 140
    assert abs(tl.total_s - 180.0) <= 0.05 * 180.0
    assert 10 <= len(tl.spans) <= 15
    for span in tl.spans:
        assert span.montage_in_s == pytest.approx(span.in_beat * tl.beat_s, abs=1e-3)  # cuts on beats
        assert span.source_out_s - span.source_in_s == pytest.approx(
            span.montage_out_s - span.montage_in_s, abs=1e-3
        )
        assert span.source_in_s >= 0 and span.source_out_s <= span.candidate.duration_s
        assert span.source_in_s < span.candidate.window.peak_s < span.source_out_s  # the peak is in the span
        if span.peak_on_downbeat:
            assert round(span.peak_montage_s / tl.beat_s) % 4 == 0
    assert sum(s.peak_on_downbeat for s in tl.spans) >= len(tl.spans) * 0.7
    users = [s.candidate.user_id for s in tl.spans]
    assert max(users.count(u) for u in users) <= 2
    scores = [s.candidate.effective_score for s in tl.spans]
    assert scores[-1] == max(scores)  # close on the best
    assert scores[0] == sorted(scores)[-2]  # open strong
    assert scores[1:-1] == sorted(scores[1:-1])  # build


def test_tempo_is_stable_per_week_and_configurable() -> None:
    rules = TimelineRules()
    assert choose_tempo("2025-01-27", rules) == choose_tempo("2025-01-27", rules)
    assert len({choose_tempo(f"2025-0{m}-0{d}", rules) for m in range(1, 10) for d in range(1, 8)}) > 5
    assert choose_tempo("2025-01-27", TimelineRules(tempo_bpm=128)) == 128


def test_a_thin_week_says_it_is_short() -> None:
    tl = build_timeline(_candidates(3), "2025-01-27", TimelineRules(target_s=180.0))
    assert len(tl.spans) == 3
    assert tl.total_s < 171
    assert tl.notes and "too little usable footage" in tl.notes[0]


def test_a_week_short_of_worthy_clips_gets_a_shorter_cut_not_stretched_spans_or_a_dull_clip() -> None:
    """Four creators with action under a cap of two give eight clips: not 180 s of action. The spans keep
    their windows' length and the walking clip (score 0) stays out; with fill_target's rules both give."""
    action = [
        Candidate(f"fight-{i}", i % 4, ["A", "B"][i % 2], 40.0, _window(12.0, 4.0, 0.8 - 0.02 * i), 0.5)
        for i in range(8)
    ]
    walking = Candidate("walk", 5, "C", 40.0, _window(12.0, 6.0, 0.0), 0.5)
    tl = build_timeline([*action, walking], "2025-01-27", TimelineRules(target_s=180.0))
    assert {s.candidate.clip_id for s in tl.spans} == {c.clip_id for c in action}
    assert all(s.source_out_s - s.source_in_s <= s.candidate.window.length_s + 1e-6 for s in tl.spans)
    assert tl.total_s < 120 and "too little usable footage" in tl.notes[0]
    assert [reason for c, reason in tl.not_picked if c.clip_id == "walk"] == ["too_dull"]

    filled = build_timeline(
        [*action, walking], "2025-01-27", TimelineRules(target_s=180.0, max_stretch=None, dull_fill_share=1.0)
    )
    assert abs(filled.total_s - 180.0) <= 0.05 * 180.0
    assert "walk" in {s.candidate.clip_id for s in filled.spans}


def test_one_game_never_fills_more_than_its_share_while_another_game_has_a_clip() -> None:
    """Twelve strong clips of one game and ten weaker of another: the cap keeps the cut mixed, and a week
    with one game only still fills its cut."""
    strong = [Candidate(f"a-{i}", i, "A", 40.0, _window(12.0, 4.0, 0.9 - 0.01 * i), 0.5) for i in range(12)]
    weaker = [Candidate(f"b-{i}", 20 + i, "B", 40.0, _window(12.0, 4.0, 0.4), 0.5) for i in range(10)]
    rules = TimelineRules(target_s=180.0, max_clips=15, max_game_share=0.5)
    tl = build_timeline([*strong, *weaker], "2025-01-27", rules)
    games = [s.candidate.game for s in tl.spans]
    assert games.count("A") == 8 and games.count("B") == 7
    assert {reason for c, reason in tl.not_picked if c.game == "A"} == {"game_cap"}

    alone = build_timeline(strong, "2025-01-27", rules)
    assert len(alone.spans) >= 10


def test_jerk_reads_the_same_at_30_fps_60_fps_and_a_variable_frame_rate() -> None:
    """The same camera shake sampled at 30 fps, 60 fps and irregular intervals gives the same `jerk`
    (a per-frame difference would halve at 60 fps and jump with every irregular interval)."""

    def shake(t: np.ndarray) -> np.ndarray:  # motion: smooth panning, then shaking from 10 s
        return 0.05 + 0.04 * np.where(t >= 10.0, np.sin(2 * np.pi * 3 * t), 0.0)

    rng = np.random.default_rng(5)
    vfr = np.cumsum(rng.uniform(1 / 60, 1 / 12, 400))
    jerk = {}
    for name, t in {
        "30": np.arange(0, 20, 1 / 30),
        "60": np.arange(0, 20, 1 / 60),
        "vfr": vfr[vfr < 20],
    }.items():
        track = TrackInput(
            20.0,
            False,
            t,
            shake(t).astype(np.float32),
            np.zeros(len(t), np.float32),
            np.full(len(t), 0.5, np.float32),
            0.05,
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            (),
        )
        jerk[name] = bin_features(track).raw["jerk"]
    calm, shaking = slice(2, 18), slice(22, 38)  # bins of 0.5 s
    for name in ("60", "vfr"):
        assert jerk[name][shaking].mean() == pytest.approx(jerk["30"][shaking].mean(), rel=0.15)
        assert jerk[name][calm].mean() < 0.2 * jerk[name][shaking].mean()
