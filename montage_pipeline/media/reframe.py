"""Where a 9:16 crop window sits in a 16:9 shot, per shot: a still crop or a slow pan, never a whip.

From the analysis' action track (the horizontal centre of motion energy and its spread, per frame) each
span gets one decision: when the action is too wide for a 9:16 window (spread above `wide_spread`) the
span is shown whole over a blurred fill; when the action stays put the crop is still; otherwise it pans
linearly from where the action starts to where it ends, at most `max_speed` frame widths per second.
Motion spread over the whole frame (first-person games) pulls the centre toward the middle, where the
crosshair is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class ActionTrack:
    times_s: np.ndarray  # source times
    action_x: np.ndarray  # 0..1
    action_spread: np.ndarray  # 0..1


@dataclass(frozen=True, slots=True)
class CropPlan:
    mode: str  # "still", "pan" or "blur_fill"
    x_start: float  # centre of the crop window, 0..1 of the source width, at the span's start
    x_end: float  # ... and at its end


def plan_crop(
    track: ActionTrack | None,
    source_in_s: float,
    source_out_s: float,
    *,
    wide_spread: float = 0.3,
    still_tolerance: float = 0.06,
    max_speed: float = 0.05,
    centre_pull: float = 0.5,
) -> CropPlan:
    if track is None or len(track.times_s) == 0:
        return CropPlan("still", 0.5, 0.5)
    inside = (track.times_s >= source_in_s) & (track.times_s < source_out_s)
    xs, spread = track.action_x[inside], track.action_spread[inside]
    if xs.size == 0:
        return CropPlan("still", 0.5, 0.5)
    if float(np.median(spread)) > wide_spread:
        return CropPlan("blur_fill", 0.5, 0.5)
    # Widely spread motion says little about where to look: weigh the centre (crosshair) more.
    pull = np.clip(spread / max(wide_spread, 1e-6), 0, 1) * centre_pull
    centred = xs * (1 - pull) + 0.5 * pull
    half = max(1, len(centred) // 3)
    start, end = float(np.median(centred[:half])), float(np.median(centred[-half:]))
    if abs(end - start) < still_tolerance:
        x = float(np.median(centred))
        return CropPlan("still", x, x)
    duration = max(source_out_s - source_in_s, 1e-3)
    limit = max_speed * duration
    end = start + float(np.clip(end - start, -limit, limit))
    return CropPlan("pan", start, end)
