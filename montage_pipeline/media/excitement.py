"""How exciting each moment of a clip is, from the analysis feature tracks. Pure numpy, no I/O.

Per bin (default 0.5 s) of each clip, five raw features:

- `loud`: the bin's peak short-term loudness in dB above the clip's median loudness (a clip's own level
  does not matter, its transients do), capped at 30 dB;
- `onset`: the bin's peak audio onset strength (attacks: shots, impacts);
- `motion`: the bin's mean motion energy (fast camera and object motion);
- `flash`: the bin's peak brightness jump (muzzle flashes, explosions);
- `cuts`: scene cuts within ±2 s (the clip's own editing rhythm).

Each feature is divided by its 99th percentile over *all bins of the week's clips* (`WeekScale`, with
a floor per feature so a week of calm footage does not blow its noise up to full scale) and clipped to
0..1, so one very loud or very busy clip does not drown the others. Then

    instant    = Σ weight_f · feature_f
    excitement = (1 - sustain) · instant + sustain · moving_average(instant, 3 s)

The moving-average term rewards sustained action over a lone spike. Weights are `ExcitementWeights`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEATURES = ("loud", "onset", "motion", "flash", "cuts")
LOUD_CAP_DB = 30.0
CUT_RADIUS_S = 2.0
SUSTAIN_WINDOW_S = 3.0
SCALE_PERCENTILE = 99.0
# The smallest value that counts as full scale: 12 dB above a clip's median, an onset of 0.3, a mean
# luma change of 4 %, a 10 % brightness jump, one cut nearby.
SCALE_FLOOR = {"loud": 12.0, "onset": 0.3, "motion": 0.04, "flash": 0.1, "cuts": 1.0}


@dataclass(frozen=True, slots=True)
class ExcitementWeights:
    loud: float = 0.30
    onset: float = 0.15
    motion: float = 0.25
    flash: float = 0.15
    cuts: float = 0.15
    sustain: float = 0.35

    def as_dict(self) -> dict[str, float]:
        return {f: getattr(self, f) for f in FEATURES}


@dataclass(frozen=True, slots=True)
class TrackInput:
    """What excitement needs of one clip's analysis (a subset of `analysis.ClipAnalysis`)."""

    duration_s: float
    frame_times_s: np.ndarray
    motion: np.ndarray
    flash: np.ndarray
    audio_step_s: float
    loudness_db: np.ndarray
    onset: np.ndarray
    cut_times_s: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BinnedFeatures:
    bin_s: float
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
        np.maximum.at(out, idx, values)
    else:
        sums = np.bincount(idx, weights=values, minlength=n_bins)
        counts = np.bincount(idx, minlength=n_bins)
        out = np.divide(sums, counts, out=np.zeros(n_bins), where=counts > 0)
    return out


def bin_features(track: TrackInput, bin_s: float = 0.5) -> BinnedFeatures:
    n_bins = max(1, int(np.ceil(track.duration_s / bin_s)))
    motion = _bin_reduce(track.frame_times_s, track.motion.astype(np.float64), n_bins, bin_s, "mean")
    flash = _bin_reduce(track.frame_times_s, track.flash.astype(np.float64), n_bins, bin_s, "max")
    audio_times = np.arange(len(track.loudness_db)) * track.audio_step_s
    if len(track.loudness_db):
        floor = float(np.median(track.loudness_db))
        above = np.clip(track.loudness_db.astype(np.float64) - floor, 0.0, LOUD_CAP_DB)
    else:
        above = np.zeros(0)
    loud = _bin_reduce(audio_times, above, n_bins, bin_s, "max")
    onset = _bin_reduce(audio_times, track.onset.astype(np.float64), n_bins, bin_s, "max")
    centres = (np.arange(n_bins) + 0.5) * bin_s
    cuts = np.zeros(n_bins)
    for t in track.cut_times_s:
        cuts += np.abs(centres - t) <= CUT_RADIUS_S
    return BinnedFeatures(
        bin_s, {"loud": loud, "onset": onset, "motion": motion, "flash": flash, "cuts": cuts}
    )


@dataclass(frozen=True, slots=True)
class WeekScale:
    """Each raw feature's full-scale value for the week: the normaliser shared by every clip."""

    full_scale: dict[str, float]

    @classmethod
    def of(cls, binned: list[BinnedFeatures]) -> WeekScale:
        full = {}
        for f in FEATURES:
            values = np.concatenate([b.raw[f] for b in binned]) if binned else np.zeros(0)
            high = float(np.percentile(values, SCALE_PERCENTILE)) if values.size else 0.0
            full[f] = max(high, SCALE_FLOOR[f])
        return cls(full)


@dataclass(frozen=True, slots=True)
class ExcitementCurve:
    bin_s: float
    excitement: np.ndarray  # per bin, ≥ 0 (≈ 0..1)
    features: dict[str, np.ndarray]  # normalised per-bin features, 0..1

    def at(self, t: float) -> float:
        i = min(len(self.excitement) - 1, max(0, int(t / self.bin_s)))
        return float(self.excitement[i])


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) == 0:
        return values
    kernel = np.ones(width) / width
    return np.convolve(
        np.pad(values, (width // 2, width - 1 - width // 2), mode="edge"), kernel, mode="valid"
    )


def excitement_curve(binned: BinnedFeatures, scale: WeekScale, weights: ExcitementWeights) -> ExcitementCurve:
    features = {}
    for f in FEATURES:
        features[f] = np.clip(binned.raw[f] / scale.full_scale[f], 0.0, 1.0)
    instant = sum((w * features[f] for f, w in weights.as_dict().items()), start=np.zeros(binned.n_bins))
    width = max(1, round(SUSTAIN_WINDOW_S / binned.bin_s))
    excitement = (1 - weights.sustain) * instant + weights.sustain * _moving_average(instant, width)
    return ExcitementCurve(binned.bin_s, excitement, features)
