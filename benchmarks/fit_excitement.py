"""Fit the excitement model on weeks of real gameplay; check it on weeks it never saw.

    python benchmarks/fit_excitement.py --fit DIR [--fit DIR ...] --check DIR [--check DIR ...] [--write]

Each DIR is a week made by `../shared/gameplay_kit/make_week.py` (one seed per week). The procedure:

1. Analyse every valid clip of every week with the pipeline's own analysis (cached under --cache).
2. Put each week's features on that week's scale (`WeekScale`) and build the model inputs per 0.5 s bin.
3. Target: the kit's ground-truth excitement of the second each bin falls in (from the game's counters,
   never from pixels or sound).
4. Ridge regression (closed form, inputs as they are: all are 0..1) for two models: audio+video on the
   clips that have audio, and video-only on every clip (so a clip without audio scores on the same scale).
   Each week weighs the same whatever its length, so no one week dominates.
5. Print R² and rank correlation per week for the --fit weeks and the --check weeks; with --write, save
   the coefficients to `montage_pipeline/media/excitement_model.py`.

`--lowo` instead cuts each --fit week with models fitted on the other fit weeks (leave one week out) and
prints each cut's excitement against the kit's oracle, for the --ridge and --diversity values given: how
the ridge strength and the cut's game-diversity factor were chosen without touching the held-out weeks.
"""

from __future__ import annotations

import argparse
import pprint
import textwrap
from pathlib import Path

import numpy as np
from gameplay_weeks import KitWeek, analyses, load_week, offline_cut, quality_module

from montage_pipeline.highlights.edl import track_input
from montage_pipeline.media import excitement
from montage_pipeline.media.excitement import (
    FEATURES,
    VIDEO_FEATURES,
    LinearModel,
    WeekScale,
    bin_features,
    input_names,
    model_inputs,
)
from montage_pipeline.media.timeline import TimelineRules

MODEL_FILE = Path(__file__).resolve().parents[1] / "montage_pipeline" / "media" / "excitement_model.py"
RIDGE = 3.0  # chosen by leave-one-week-out over the fit weeks (1, 3, 10, 30): 3 to 10 tie, 30 loses


def week_rows(week: KitWeek, cache: Path, names: tuple[str, ...], audio_only: bool) -> tuple[np.ndarray, ...]:
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


def fit(rows: list[tuple[np.ndarray, ...]], ridge: float = RIDGE) -> tuple[float, np.ndarray]:
    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    w = np.concatenate([r[2] for r in rows])
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = ridge * np.eye(design.shape[1]) * w.sum() / len(w)
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    weighted = design * w[:, None]
    beta = np.linalg.solve(design.T @ weighted + penalty, weighted.T @ y)
    return float(beta[0]), beta[1:]


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def report(label: str, model: LinearModel, rows: list[tuple[np.ndarray, ...]], names: list[str]) -> None:
    for name, (x, y, _) in zip(names, rows, strict=True):
        pred = np.clip(model.intercept + x @ np.asarray(model.coefficients), 0, 1)
        r2 = 1 - float(((pred - y) ** 2).sum()) / float(((y - y.mean()) ** 2).sum())
        print(f"| {label} | {name} | {len(y)} | {r2:.3f} | {_rank_corr(pred, y):.3f} |")


MODELS = (("WITH_AUDIO", FEATURES, True), ("VIDEO_ONLY", VIDEO_FEATURES, False))  # (name, inputs, audio only)


def fit_model(
    rows: list[tuple[np.ndarray, ...]], names: tuple[str, ...], ridge: float = RIDGE
) -> LinearModel:
    intercept, beta = fit(rows, ridge)
    return LinearModel(names, intercept, tuple(float(b) for b in beta))


def fit_models(weeks: list[KitWeek], cache: Path, ridge: float = RIDGE) -> dict[str, LinearModel]:
    return {
        key: fit_model([week_rows(w, cache, names, audio_only) for w in weeks], names, ridge)
        for key, names, audio_only in MODELS
    }


def leave_one_week_out(weeks: list[KitWeek], cache: Path, ridges: list[float], factors: list[float]) -> None:
    """Each week cut by models fitted on the others: its excitement × the oracle's, per setting."""
    judge = quality_module()
    print("| ridge | diversity | " + " | ".join(w.name for w in weeks) + " | mean | worst |")
    print("|---" * (len(weeks) + 4) + "|")
    ratios: dict[tuple[float, float], list[float]] = {(r, f): [] for r in ridges for f in factors}
    for held in weeks:
        found = analyses(held, cache)
        truth = judge.load_gt(str(held.root))
        oracle = judge.summarize(truth, judge.oracle(truth))["mean_excitement"]
        for ridge in ridges:
            models = fit_models([w for w in weeks if w is not held], cache, ridge)
            excitement.AUDIO_MODEL, excitement.VIDEO_MODEL = models["WITH_AUDIO"], models["VIDEO_ONLY"]
            for factor in factors:
                spans = offline_cut(held, found, timeline_rules=TimelineRules(game_diversity_penalty=factor))
                ours = judge.summarize(truth, spans)["mean_excitement"]
                ratios[(ridge, factor)].append(ours / max(oracle, 1e-9))
    for (ridge, factor), row in ratios.items():
        cells = " | ".join(f"{r:.2f}" for r in row)
        print(f"| {ridge:g} | {factor:g} | {cells} | {np.mean(row):.3f} | {min(row):.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fit", type=Path, action="append", required=True, help="a week to fit on")
    parser.add_argument("--check", type=Path, action="append", default=[], help="a week to check on")
    parser.add_argument("--cache", type=Path, default=Path(".montage/fit-cache"))
    parser.add_argument("--write", action="store_true", help="save the fitted model")
    parser.add_argument("--lowo", action="store_true", help="leave-one-week-out cuts of the fit weeks")
    parser.add_argument("--ridge", type=float, action="append", help=f"with --lowo (default {RIDGE})")
    parser.add_argument("--diversity", type=float, action="append", help="with --lowo (default 0.1)")
    args = parser.parse_args()
    fit_weeks = [load_week(p) for p in args.fit]
    check_weeks = [load_week(p) for p in args.check]
    if args.lowo:
        leave_one_week_out(fit_weeks, args.cache, args.ridge or [RIDGE], args.diversity or [0.1])
        return
    models = {}
    print("| model | week | bins | R² | rank corr |\n|---|---|---|---|---|")
    for key, names, audio_only in MODELS:
        train = [week_rows(w, args.cache, names, audio_only) for w in fit_weeks]
        models[key] = model = fit_model(train, names)
        report(f"{key} (fit)", model, train, [w.name for w in fit_weeks])
        held = [week_rows(w, args.cache, names, audio_only) for w in check_weeks]
        report(f"{key} (check)", model, held, [w.name for w in check_weeks])
    if args.write:
        body = [
            '"""The excitement model, fitted on real gameplay by benchmarks/fit_excitement.py."""',
            "",
            *textwrap.wrap(
                f"Fitted on: {', '.join(w.name for w in fit_weeks)}; checked on: "
                f"{', '.join(w.name for w in check_weeks) or 'none'}; ridge {RIDGE}.",
                width=100,
                initial_indent="# ",
                subsequent_indent="# ",
            ),
        ]
        for key, model in models.items():
            spec = {
                "features": list(model.features),
                "intercept": round(model.intercept, 6),
                "coefficients": [round(c, 6) for c in model.coefficients],
                "inputs": input_names(model.features),
            }
            body.append(f"{key} = {pprint.pformat(spec, width=105, sort_dicts=False)}")
        MODEL_FILE.write_text("\n".join(body) + "\n")
        print(f"wrote {MODEL_FILE}")


if __name__ == "__main__":
    main()
