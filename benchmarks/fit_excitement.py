"""Fit the excitement model on weeks of real gameplay; check it on weeks it never saw.

    python benchmarks/fit_excitement.py --fit DIR [--fit DIR ...] --check DIR [--check DIR ...] [--write]

Each DIR is a week made by `../shared/gameplay_kit/make_week.py` (one seed per week). The procedure:

1. Analyse every valid clip of every week with the pipeline's own analysis (cached under --cache).
2. Put each week's features on that week's scale (`WeekScale`) and build the model inputs per 0.5 s bin.
3. Target: the kit's ground-truth excitement of the second each bin falls in (from the game's counters,
   never from pixels or sound).
4. Gradient-boosted trees (`boosting.py`: squared error, depth 3, 150 rounds, learning rate 0.1) for two
   models: audio+video on the clips that have audio, and video-only on every clip (so a clip without
   audio scores on the same scale). Each week weighs the same whatever its length, so no one week
   dominates. A ridge regression of the same inputs is fitted beside them as the baseline to beat.
5. Print R² and rank correlation per week for the --fit weeks and the --check weeks; with --write, save
   the models to `montage_pipeline/media/excitement_model.json`.

`--lowo` instead cuts each --fit week with models fitted on the other fit weeks (leave one week out) and
prints each cut's excitement against the kit's oracle, for the ridge baseline and each --depth/--rounds
given: how the model and its size were chosen without touching the held-out weeks.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from boosting import BoostingParams, fit_trees
from gameplay_weeks import KitWeek, analyses, load_week, offline_cut, quality_module

from montage_pipeline.highlights.edl import track_input
from montage_pipeline.media import excitement
from montage_pipeline.media.excitement import (
    FEATURES,
    MODEL_FILE,
    VIDEO_FEATURES,
    ExcitementModel,
    WeekScale,
    bin_features,
    input_names,
    model_inputs,
    per_feature,
)

MODEL_PATH = Path(excitement.__file__).with_name(MODEL_FILE)
RIDGE = 3.0  # the baseline's ridge strength, chosen by leave-one-week-out over the fit weeks (1, 3, 10, 30)
PARAMS = (
    BoostingParams()
)  # depth 3, 150 rounds: chosen by leave-one-week-out (see docs/selection_and_scoring.md)

Rows = tuple[np.ndarray, np.ndarray, np.ndarray]


def week_rows(week: KitWeek, cache: Path, names: tuple[str, ...], audio_only: bool) -> Rows:
    """Inputs, targets and per-row weights (each week sums to 1) of one week's bins."""
    found = analyses(week, cache)
    binned = {c.file: bin_features(track_input(found[c.file])) for c in week.clips}
    scale = WeekScale.of(list(binned.values()))
    xs, ys = [], []
    for clip in week.clips:
        b = binned[clip.file]
        if audio_only and not b.has_audio:
            continue
        x = model_inputs(scale.normalise(b), names, b.bin_s)
        truth = clip.excitement
        seconds = np.minimum((np.arange(b.n_bins) + 0.5) * b.bin_s, len(truth) - 1).astype(int)
        xs.append(x)
        ys.append(truth[seconds])
    x, y = np.concatenate(xs), np.concatenate(ys)
    return x, y, np.full(len(y), 1.0 / len(y))


def _stack(rows: list[Rows]) -> Rows:
    return (
        np.concatenate([r[0] for r in rows]),
        np.concatenate([r[1] for r in rows]),
        np.concatenate([r[2] for r in rows]),
    )


@dataclass(frozen=True)
class RidgeModel:
    """The baseline: a ridge regression of the same inputs (what the trees must beat to earn their place)."""

    features: tuple[str, ...]
    intercept: float
    coefficients: np.ndarray

    def contributions(self, features: dict[str, np.ndarray], bin_s: float) -> dict[str, np.ndarray]:
        return per_feature(model_inputs(features, self.features, bin_s) * self.coefficients, self.features)


def fit_ridge(rows: list[Rows], names: tuple[str, ...], ridge: float = RIDGE) -> RidgeModel:
    x, y, w = _stack(rows)
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = ridge * np.eye(design.shape[1]) * w.sum() / len(w)
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    weighted = design * w[:, None]
    beta = np.linalg.solve(design.T @ weighted + penalty, weighted.T @ y)
    return RidgeModel(names, float(beta[0]), beta[1:])


def fit_boosted(rows: list[Rows], names: tuple[str, ...], params: BoostingParams = PARAMS) -> ExcitementModel:
    x, y, w = _stack(rows)
    return ExcitementModel(names, fit_trees(x, y, w, input_names(names), params))


def _predict(model: ExcitementModel | RidgeModel, x: np.ndarray) -> np.ndarray:
    if isinstance(model, ExcitementModel):
        return np.clip(model.trees.predict(x), 0, 1)
    return np.clip(model.intercept + x @ model.coefficients, 0, 1)


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def report(label: str, model: ExcitementModel | RidgeModel, rows: list[Rows], names: list[str]) -> None:
    for name, (x, y, _) in zip(names, rows, strict=True):
        pred = _predict(model, x)
        r2 = 1 - float(((pred - y) ** 2).sum()) / float(((y - y.mean()) ** 2).sum())
        print(f"| {label} | {name} | {len(y)} | {r2:.3f} | {_rank_corr(pred, y):.3f} |")


MODELS = (("with_audio", FEATURES, True), ("video_only", VIDEO_FEATURES, False))  # (name, inputs, audio only)
Fitter = Callable[[list[Rows], tuple[str, ...]], ExcitementModel | RidgeModel]


def fit_models(weeks: list[KitWeek], cache: Path, fitter: Fitter) -> dict[str, ExcitementModel | RidgeModel]:
    return {
        key: fitter([week_rows(w, cache, names, audio_only) for w in weeks], names)
        for key, names, audio_only in MODELS
    }


def leave_one_week_out(weeks: list[KitWeek], cache: Path, candidates: dict[str, Fitter]) -> None:
    """Each week cut by models fitted on the others: its excitement × the oracle's, per candidate model."""
    judge = quality_module()
    print("| model | " + " | ".join(w.name for w in weeks) + " | mean | worst |")
    print("|---" * (len(weeks) + 3) + "|")
    ratios: dict[str, list[float]] = {label: [] for label in candidates}
    shipped = excitement.AUDIO_MODEL, excitement.VIDEO_MODEL
    try:
        for held in weeks:
            found = analyses(held, cache)
            truth = judge.load_gt(str(held.root))
            oracle = judge.summarize(truth, judge.oracle(truth))["mean_excitement"]
            for label, fitter in candidates.items():
                models = fit_models([w for w in weeks if w is not held], cache, fitter)
                excitement.AUDIO_MODEL = models["with_audio"]  # type: ignore[assignment]
                excitement.VIDEO_MODEL = models["video_only"]  # type: ignore[assignment]
                ours = judge.summarize(truth, offline_cut(held, found))["mean_excitement"]
                ratios[label].append(ours / max(oracle, 1e-9))
    finally:
        excitement.AUDIO_MODEL, excitement.VIDEO_MODEL = shipped
    for label, row in ratios.items():
        cells = " | ".join(f"{r:.2f}" for r in row)
        print(f"| {label} | {cells} | {np.mean(row):.3f} | {min(row):.3f} |")


def _write(models: dict[str, ExcitementModel], fit_weeks: list[KitWeek], check_weeks: list[KitWeek]) -> None:
    document = {
        "fitted_on": [w.name for w in fit_weeks],
        "checked_on": [w.name for w in check_weeks],
        "params": vars(PARAMS),
        "models": {key: model.to_dict() for key, model in models.items()},
    }
    MODEL_PATH.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fit", type=Path, action="append", required=True, help="a week to fit on")
    parser.add_argument("--check", type=Path, action="append", default=[], help="a week to check on")
    parser.add_argument("--cache", type=Path, default=Path(".montage/fit-cache"))
    parser.add_argument("--write", action="store_true", help="save the fitted model")
    parser.add_argument("--lowo", action="store_true", help="leave-one-week-out cuts of the fit weeks")
    parser.add_argument("--depth", type=int, action="append", help=f"with --lowo (default {PARAMS.depth})")
    parser.add_argument("--rounds", type=int, action="append", help=f"with --lowo (default {PARAMS.rounds})")
    parser.add_argument(
        "--min-leaf", type=float, action="append", help=f"with --lowo (default {PARAMS.min_leaf})"
    )
    args = parser.parse_args()
    fit_weeks = [load_week(p) for p in args.fit]
    check_weeks = [load_week(p) for p in args.check]
    if args.lowo:
        candidates: dict[str, Fitter] = {"ridge (baseline)": fit_ridge}
        for depth, rounds, min_leaf in itertools.product(
            args.depth or [PARAMS.depth], args.rounds or [PARAMS.rounds], args.min_leaf or [PARAMS.min_leaf]
        ):
            params = replace(PARAMS, depth=depth, rounds=rounds, min_leaf=min_leaf)
            label = f"trees depth {depth}, {rounds} rounds, min leaf {min_leaf:g}"
            candidates[label] = functools.partial(fit_boosted, params=params)
        leave_one_week_out(fit_weeks, args.cache, candidates)
        return
    models: dict[str, ExcitementModel] = {}
    print("| model | week | bins | R² | rank corr |\n|---|---|---|---|---|")
    for key, names, audio_only in MODELS:
        train = [week_rows(w, args.cache, names, audio_only) for w in fit_weeks]
        held = [week_rows(w, args.cache, names, audio_only) for w in check_weeks]
        baseline = fit_ridge(train, names)
        models[key] = model = fit_boosted(train, names)
        for label, m in ((f"{key} trees", model), (f"{key} ridge", baseline)):
            report(f"{label} (fit)", m, train, [w.name for w in fit_weeks])
            report(f"{label} (check)", m, held, [w.name for w in check_weeks])
    if args.write:
        _write(models, fit_weeks, check_weeks)


if __name__ == "__main__":
    main()
