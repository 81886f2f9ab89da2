"""How exciting each moment of a clip is, from the analysis feature tracks. Pure numpy, no I/O.

Per bin (0.5 s) of each clip, raw features from the one analysis pass:

- audio: `level` (mean loudness, dBFS), `rise` (peak loudness above the clip's quiet floor, dB),
  `onset` (peak spectral flux: shots, impacts), `busy` (mean spectral flux: sustained fire);
- video: `motion` (mean motion energy), `flash` (peak brightness jump: muzzle flashes, explosions),
  `red` (peak red-tint jump: the damage and death tint games lay over the picture), `jerk` (mean
  change of motion per 1/30 s on a uniform time grid, so 60 fps and variable-frame-rate clips read like
  30 fps ones: recoil and hits shake the camera, walking pans it smoothly),
  `cuts` (scene cuts within ±2 s).

Features are put on the week's scale (`WeekScale`): loudness relative to the week's loudest moments (so
a quiet clip's door sound stays quiet), the others divided by their 99th percentile over every bin of
the week's clips, with a floor so a calm week does not blow its noise up to full scale. Each feature
enters the model at three time scales (the bin, a 2 s and a 6 s neighbourhood) and as its clip mean.

The excitement of a bin is an ensemble of gradient-boosted regression trees over those inputs
(`boosted_trees.TreeEnsemble`), clipped to 0..1, fitted on real engine gameplay against the game's own
counters (`benchmarks/fit_excitement.py`, which writes `excitement_model.json`). Clips without an audio
track use an ensemble fitted on the video features alone, against the same ground truth, so both kinds
of clip score on one scale. Each bin's excitement splits over the features that made it
(`ExcitementModel.contributions`): the breakdown the asset page shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from montage_pipeline.media.analysis import jump_above_recent
from montage_pipeline.media.boosted_trees import TreeEnsemble

BIN_S = 0.5
MODEL_FILE = "excitement_model.json"  # written by benchmarks/fit_excitement.py
AUDIO_FEATURES = ("level", "rise", "onset", "busy")
VIDEO_FEATURES = ("motion", "flash", "red", "jerk", "cuts")
FEATURES = AUDIO_FEATURES + VIDEO_FEATURES
CONTEXT_S = (2.0, 6.0)  # neighbourhoods a feature is also averaged over
CLIP_MEAN = True  # each feature's mean over the whole clip is an input too
LOUDNESS_RANGE_DB = 36.0  # `level` maps [week's loud reference - range, reference] to 0..1
RISE_CAP_DB = 30.0
CUT_RADIUS_S = 2.0
RED_WINDOW_S = 1.0
JERK_GRID_S = 1 / 30
SCALE_PERCENTILE = 99.0
SILENCE_DB = -90.0
# The smallest value that counts as full scale: an onset flux of 2, a mean luma change of 4 %, a 10 %
# brightness jump, a 2 % red-tint jump, a motion change of 2 %, one cut nearby.
SCALE_FLOOR = {
    "onset": 2.0,
    "busy": 1.0,
    "motion": 0.04,
    "flash": 0.1,
    "red": 0.02,
    "jerk": 0.02,
    "cuts": 1.0,
}


@dataclass(frozen=True, slots=True)
class TrackInput:
    """What excitement needs of one clip's analysis (a subset of `analysis.ClipAnalysis`)."""

    duration_s: float
    has_audio: bool
    frame_times_s: np.ndarray
    motion: np.ndarray
    flash: np.ndarray
    redness: np.ndarray
    audio_step_s: float
    loudness_db: np.ndarray
    onset: np.ndarray
    cut_times_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BinnedFeatures:
    bin_s: float
    has_audio: bool
    raw: dict[str, np.ndarray] = field(default_factory=dict)  # feature -> per-bin raw value

    @property
    def n_bins(self) -> int:
        return len(next(iter(self.raw.values()))) if self.raw else 0


def _bin_reduce(times: np.ndarray, values: np.ndarray, n_bins: int, bin_s: float, how: str) -> np.ndarray:
    out = np.zeros(n_bins, dtype=np.float64)
    if len(values) == 0:
        return out
    idx = np.clip((times / bin_s).astype(np.int64), 0, n_bins - 1)
    if how == "max":
        out[:] = -np.inf
        np.maximum.at(out, idx, values)
        out[np.isinf(out)] = 0.0
    else:
        sums = np.bincount(idx, weights=values, minlength=n_bins)
        counts = np.bincount(idx, minlength=n_bins)
        out = np.divide(sums, counts, out=np.zeros(n_bins), where=counts > 0)
    return out


def _jerk(times: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Change of motion between samples JERK_GRID_S apart (motion interpolated onto a uniform grid)."""
    if len(motion) < 2:
        return times, np.zeros(len(motion))
    grid = np.arange(times[0], times[-1] + 1e-9, JERK_GRID_S)
    on_grid = np.interp(grid, times, motion)
    return grid, np.abs(np.diff(on_grid, prepend=on_grid[:1]))


def bin_features(track: TrackInput, bin_s: float = BIN_S) -> BinnedFeatures:
    n_bins = max(1, int(np.ceil(track.duration_s / bin_s)))
    times = track.frame_times_s
    motion = track.motion.astype(np.float64)
    jerk_times, jerk = _jerk(times, motion)
    red = jump_above_recent(times, track.redness, RED_WINDOW_S).astype(np.float64)
    raw = {
        "motion": _bin_reduce(times, motion, n_bins, bin_s, "mean"),
        "flash": _bin_reduce(times, track.flash.astype(np.float64), n_bins, bin_s, "max"),
        "red": _bin_reduce(times, red, n_bins, bin_s, "max"),
        "jerk": _bin_reduce(jerk_times, jerk, n_bins, bin_s, "mean"),
    }
    centres = (np.arange(n_bins) + 0.5) * bin_s
    cuts = np.zeros(n_bins)
    for t in track.cut_times_s:
        cuts += np.abs(centres - t) <= CUT_RADIUS_S
    raw["cuts"] = cuts
    has_audio = track.has_audio and len(track.loudness_db) > 0
    if has_audio:
        audio_times = np.arange(len(track.loudness_db)) * track.audio_step_s
        db = np.maximum(track.loudness_db.astype(np.float64), SILENCE_DB)
        quiet_floor = float(np.percentile(db, 20))
        raw["level"] = _bin_reduce(audio_times, db, n_bins, bin_s, "mean")
        raw["rise"] = np.clip(
            _bin_reduce(audio_times, db, n_bins, bin_s, "max") - quiet_floor, 0, RISE_CAP_DB
        )
        flux = track.onset.astype(np.float64)
        raw["onset"] = _bin_reduce(audio_times, flux, n_bins, bin_s, "max")
        raw["busy"] = _bin_reduce(audio_times, flux, n_bins, bin_s, "mean")
        # Bins past the end of the audio (a shorter audio track) are silence, not mean loudness.
        covered = min(n_bins, int(np.ceil(len(db) * track.audio_step_s / bin_s)))
        raw["level"][covered:] = SILENCE_DB
    else:
        for f in AUDIO_FEATURES:
            raw[f] = np.zeros(n_bins)
    return BinnedFeatures(bin_s, has_audio, raw)


@dataclass(frozen=True, slots=True)
class WeekScale:
    """Each raw feature's full-scale value for the week: the normaliser shared by every clip."""

    full_scale: dict[str, float]
    loud_reference_db: float

    @classmethod
    def of(cls, binned: list[BinnedFeatures]) -> WeekScale:
        full = {}
        for f, floor in SCALE_FLOOR.items():
            values = np.concatenate([b.raw[f] for b in binned]) if binned else np.zeros(0)
            high = float(np.percentile(values, SCALE_PERCENTILE)) if values.size else 0.0
            full[f] = max(high, floor)
        levels = [b.raw["level"] for b in binned if b.has_audio]
        reference = float(np.percentile(np.concatenate(levels), SCALE_PERCENTILE)) if levels else -20.0
        return cls(full, reference)

    def normalise(self, binned: BinnedFeatures) -> dict[str, np.ndarray]:
        """Each feature on 0..1 for this week."""
        out = {f: np.clip(binned.raw[f] / self.full_scale[f], 0.0, 1.0) for f in SCALE_FLOOR}
        low = self.loud_reference_db - LOUDNESS_RANGE_DB
        out["level"] = np.clip((binned.raw["level"] - low) / LOUDNESS_RANGE_DB, 0.0, 1.0)
        out["rise"] = binned.raw["rise"] / RISE_CAP_DB
        if not binned.has_audio:
            for f in AUDIO_FEATURES:
                out[f] = np.zeros(binned.n_bins)
        return out


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) == 0:
        return values
    kernel = np.ones(width) / width
    return np.convolve(
        np.pad(values, (width // 2, width - 1 - width // 2), mode="edge"), kernel, mode="valid"
    )


def model_inputs(features: dict[str, np.ndarray], names: tuple[str, ...], bin_s: float) -> np.ndarray:
    """The model's input matrix (bins × inputs): each feature at each time scale, then its clip mean."""
    columns = []
    for f in names:
        x = features[f]
        columns.append(x)
        columns += [_moving_average(x, max(1, round(s / bin_s))) for s in CONTEXT_S]
        if CLIP_MEAN:
            columns.append(np.full_like(x, float(x.mean()) if len(x) else 0.0))
    return np.stack(columns, axis=1) if columns else np.zeros((0, 0))


def input_names(names: tuple[str, ...]) -> list[str]:
    suffixes = ("", *(f"@{s:g}s" for s in CONTEXT_S), *(("@clip",) if CLIP_MEAN else ()))
    return [f"{f}{suffix}" for f in names for suffix in suffixes]


@dataclass(frozen=True, slots=True)
class ExcitementModel:
    """Gradient-boosted trees over the named features' inputs (`model_inputs`), clipped to 0..1."""

    features: tuple[str, ...]
    trees: TreeEnsemble

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ExcitementModel:
        features = tuple(str(f) for f in spec["features"])
        trees = TreeEnsemble.from_dict(spec["trees"])
        if list(trees.inputs) != input_names(features):
            raise ValueError("excitement model: its trees' inputs do not match its features")
        return cls(features, trees)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "trees": self.trees.to_dict()}

    @property
    def intercept(self) -> float:
        """What every bin starts from before its features move it (the trees' root value)."""
        return self.trees.root

    def contributions(self, features: dict[str, np.ndarray], bin_s: float) -> dict[str, np.ndarray]:
        """Per feature, its share of each bin's excitement (all its time scales together)."""
        return per_feature(
            self.trees.contributions(model_inputs(features, self.features, bin_s)), self.features
        )


def per_feature(per_input: np.ndarray, features: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-input shares (bins × inputs, in `model_inputs` order) summed per feature over its time scales."""
    k = 1 + len(CONTEXT_S) + CLIP_MEAN
    return {f: per_input[:, i * k : (i + 1) * k].sum(axis=1) for i, f in enumerate(features)}


def load_models(text: str) -> dict[str, ExcitementModel]:
    """The shipped models by name (`with_audio`, `video_only`) from the JSON the fit script writes."""
    return {name: ExcitementModel.from_dict(spec) for name, spec in json.loads(text)["models"].items()}


_SHIPPED = load_models(resources.files(__package__).joinpath(MODEL_FILE).read_text())
AUDIO_MODEL = _SHIPPED["with_audio"]
VIDEO_MODEL = _SHIPPED["video_only"]


@dataclass(frozen=True, slots=True)
class ExcitementCurve:
    bin_s: float
    excitement: np.ndarray  # per bin, 0..1: the model's estimate of how exciting the moment is
    features: dict[str, np.ndarray]  # per feature, its contribution to each bin's excitement
    model: str  # "audio+video" or "video"

    def at(self, t: float) -> float:
        i = min(len(self.excitement) - 1, max(0, int(t / self.bin_s)))
        return float(self.excitement[i])


def excitement_curve(binned: BinnedFeatures, scale: WeekScale) -> ExcitementCurve:
    model = AUDIO_MODEL if binned.has_audio else VIDEO_MODEL
    parts = model.contributions(scale.normalise(binned), binned.bin_s)
    total = model.intercept + sum(parts.values(), start=np.zeros(binned.n_bins))
    return ExcitementCurve(
        binned.bin_s,
        np.clip(total, 0.0, 1.0),
        parts,
        "audio+video" if binned.has_audio else "video",
    )
