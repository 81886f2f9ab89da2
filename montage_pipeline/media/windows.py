"""The best window of a clip: its densest stretch of action, with lead-in, whole streaks, clean boundaries.

The window is the stretch of `preferred_len_s` with the highest mean excitement (the moments a viewer
would pick), grown to hold the whole streak of action around its peak (peaks closer than `streak_gap_s`
merge into one streak) up to `max_len_s`, and started at least `lead_in_s` before the streak so a viewer
sees it coming. Its boundaries then move (within `snap_radius_s`) to a scene cut, or else to the calmest
nearby moment, and never into the middle of action. The window's score is the mean excitement of the
densest stretch, so clips compare on the same length whatever their streaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from montage_pipeline.media.excitement import ExcitementCurve
from montage_pipeline.rules import RULES


@dataclass(frozen=True, slots=True)
class WindowRules:
    min_len_s: float = RULES.min_window_s
    max_len_s: float = RULES.max_window_s
    preferred_len_s: float = RULES.preferred_window_s
    lead_in_s: float = RULES.lead_in_s
    tail_s: float = 1.5
    streak_ratio: float = 0.6  # bins at ≥ this share of the peak belong to the action
    streak_gap_s: float = 3.0  # quieter gaps up to this long do not end a streak
    snap_radius_s: float = 1.5
    min_lead_s: float = 1.0  # a boundary snap never leaves less lead-in than this


@dataclass(frozen=True, slots=True)
class Window:
    start_s: float
    end_s: float
    peak_s: float
    peak_value: float
    mean_value: float
    score: float
    breakdown: dict[str, float]  # mean normalised feature values inside the window
    start_snapped_to: str  # "cut", "calm" or "none"
    end_snapped_to: str

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def _streak(values: np.ndarray, peak: int, threshold: float, gap_bins: int) -> tuple[int, int]:
    """First and last bin of the run of action around `peak`, bridging gaps up to `gap_bins`."""
    lo = hi = peak
    i, quiet = peak - 1, 0
    while i >= 0 and quiet <= gap_bins:
        if values[i] >= threshold:
            lo, quiet = i, 0
        else:
            quiet += 1
        i -= 1
    i, quiet = peak + 1, 0
    while i < len(values) and quiet <= gap_bins:
        if values[i] >= threshold:
            hi, quiet = i, 0
        else:
            quiet += 1
        i += 1
    return lo, hi


def _fit_length(
    start: float, end: float, peak: float, duration: float, rules: WindowRules
) -> tuple[float, float]:
    max_len = min(rules.max_len_s, duration)
    min_len = min(rules.min_len_s, duration)
    if end - start > max_len:  # keep the peak with its lead-in, drop the far end of the streak
        start = max(start, min(peak - rules.lead_in_s, end - max_len))
        end = start + max_len
    if end - start < min_len:  # grow around the peak, a bit more before than after
        deficit = min_len - (end - start)
        start -= 0.6 * deficit
        end += 0.4 * deficit
    if start < 0:
        end, start = end - start, 0.0
    if end > duration:
        start, end = max(0.0, start - (end - duration)), duration
    return start, end


def _snap(
    t: float, lo: float, hi: float, cuts: tuple[float, ...], curve: ExcitementCurve, calm_limit: float
) -> tuple[float, str]:
    """Move a boundary to a scene cut in [lo, hi], else to the calmest bin edge there if it is calm."""
    near = [c for c in cuts if lo <= c <= hi]
    if near:
        return min(near, key=lambda c: abs(c - t)), "cut"
    edges = np.arange(np.ceil(lo / curve.bin_s), np.floor(hi / curve.bin_s) + 1) * curve.bin_s
    if len(edges):
        values = np.array([curve.at(e) for e in edges])
        best = int(np.argmin(values + 0.01 * np.abs(edges - t)))  # ties: the nearest
        if values[best] <= calm_limit:
            return float(edges[best]), "calm"
    return t, "none"


def _densest(values: np.ndarray, length: int) -> tuple[int, int, float]:
    """First bin, end bin and mean of the `length`-bin stretch with the highest mean.

    Stretches that tie (a short burst in an otherwise still clip fits in many of them) go to the middle
    one, which centres the burst: the earliest would show the dull seconds before it, the latest those
    after it.
    """
    length = max(1, min(length, len(values)))
    sums = np.convolve(values, np.ones(length), mode="valid")
    best = float(sums.max())
    tied = np.flatnonzero(sums >= best - 1e-9 * max(1.0, abs(best)))
    start = int(tied[len(tied) // 2])
    return start, start + length, float(sums[start]) / length


def best_window(
    curve: ExcitementCurve,
    duration_s: float,
    cut_times_s: tuple[float, ...],
    rules: WindowRules | None = None,
) -> Window:
    rules = rules or WindowRules()
    values = curve.excitement
    bin_s = curve.bin_s
    preferred = min(max(rules.preferred_len_s, rules.min_len_s), rules.max_len_s, duration_s)
    dense_start, dense_end, dense_mean = _densest(values, round(preferred / bin_s))
    peak_bin = dense_start + int(np.argmax(values[dense_start:dense_end]))
    peak_value = float(values[peak_bin])
    peak_s = min(duration_s, (peak_bin + 0.5) * bin_s)
    lo, hi = _streak(values, peak_bin, rules.streak_ratio * peak_value, round(rules.streak_gap_s / bin_s))
    start = min(dense_start * bin_s, lo * bin_s - rules.lead_in_s)
    end = max(dense_end * bin_s, (hi + 1) * bin_s + rules.tail_s)
    start, end = _fit_length(max(start, 0.0), min(end, duration_s), peak_s, duration_s, rules)

    calm = 0.5 * peak_value
    r = rules.snap_radius_s
    start_snap, start_how = _snap(
        start, max(0.0, start - r), min(start + r, peak_s - rules.min_lead_s), cut_times_s, curve, calm
    )
    # The end only moves later (never cuts the action short), and only onto a cut or a calm moment.
    end_snap, end_how = _snap(
        end,
        max(end - 0.25 * r, peak_s + rules.min_lead_s),
        min(duration_s, end + r),
        cut_times_s,
        curve,
        calm,
    )
    if rules.min_len_s <= end_snap - start_snap <= rules.max_len_s or end_snap - start_snap == duration_s:
        start, end = start_snap, end_snap
    else:
        start_how = end_how = "none"

    i0, i1 = int(start / bin_s), max(int(start / bin_s) + 1, int(np.ceil(end / bin_s)))
    mean_value = float(values[i0:i1].mean()) if i1 > i0 else peak_value
    breakdown = {f: round(float(v[i0:i1].mean()), 4) for f, v in curve.features.items()} if i1 > i0 else {}
    return Window(
        start_s=round(start, 3),
        end_s=round(end, 3),
        peak_s=round(peak_s, 3),
        peak_value=peak_value,
        mean_value=mean_value,
        score=dense_mean,
        breakdown=breakdown,
        start_snapped_to=start_how,
        end_snapped_to=end_how,
    )
