"""The excitement model's tree ensemble: predictions walk the trees, explanations add up, files round-trip."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from montage_pipeline.media import excitement
from montage_pipeline.media.boosted_trees import TreeEnsemble

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from boosting import BoostingParams, fit_trees


def _two_trees() -> TreeEnsemble:
    # Tree 0 splits on input 0 at 0.5, then on input 1 at 0.2 (left) or leaves the right side unsplit.
    # Tree 1 splits on input 1 at 0.7 only.
    inf = np.inf
    return TreeEnsemble(
        inputs=("a", "b"),
        base=0.1,
        depth=2,
        feature=np.array([[0, 1, 0], [1, 0, 0]]),
        threshold=np.array([[0.5, 0.2, inf], [0.7, inf, inf]]),
        value=np.array(
            [
                [0.0, -0.1, 0.2, -0.2, 0.05, 0.2, 0.2],
                [0.0, -0.05, 0.1, -0.05, -0.05, 0.1, 0.1],
            ]
        ),
    )


def test_prediction_follows_each_tree_to_its_leaf() -> None:
    model = _two_trees()
    x = np.array([[0.1, 0.1], [0.1, 0.9], [0.9, 0.1], [0.9, 0.9]])
    # Hand-walked: tree 0 leaves -0.2 / 0.05 / 0.2 / 0.2; tree 1 leaves -0.05 / 0.1 / -0.05 / 0.1.
    expected = 0.1 + np.array([-0.2 - 0.05, 0.05 + 0.1, 0.2 - 0.05, 0.2 + 0.1])
    assert model.predict(x) == pytest.approx(expected)


def test_contributions_add_up_to_the_prediction_and_credit_the_tested_input() -> None:
    model = _two_trees()
    x = np.array([[0.1, 0.1], [0.9, 0.9]])
    parts = model.contributions(x)
    assert model.root + parts.sum(axis=1) == pytest.approx(model.predict(x))
    # Row 0: tree 0 moves 0 -> -0.1 on input a, -0.1 -> -0.2 on b; tree 1 moves 0 -> -0.05 on b.
    assert parts[0] == pytest.approx([-0.1, -0.15])


def test_a_saved_ensemble_loads_back_the_same() -> None:
    model = _two_trees()
    again = TreeEnsemble.from_dict(model.to_dict())
    x = np.random.default_rng(1).random((50, 2))
    assert again.predict(x) == pytest.approx(model.predict(x))


def test_a_malformed_ensemble_is_refused() -> None:
    spec = _two_trees().to_dict()
    spec["feature"] = [[0, 1, 5], [1, 0, 0]]  # input 5 does not exist
    with pytest.raises(ValueError, match="input"):
        TreeEnsemble.from_dict(spec)


def test_boosting_learns_an_interaction_a_line_cannot() -> None:
    """Loud and busy is exciting only when the shots land: the product of two inputs, learnt from rows."""
    rng = np.random.default_rng(7)
    x = rng.random((4000, 3))
    y = (x[:, 0] > 0.5) * (x[:, 1] > 0.5) * 0.8
    model = fit_trees(x, y, np.ones(len(y)), ["loud", "lands", "noise"], BoostingParams(rounds=60))
    test = rng.random((1000, 3))
    truth = (test[:, 0] > 0.5) * (test[:, 1] > 0.5) * 0.8
    assert np.abs(model.predict(test) - truth).mean() < 0.05
    # The input that never matters gets (almost) no credit.
    credit = np.abs(model.contributions(test)).mean(axis=0)
    assert credit[2] < 0.05 * credit[:2].min()


def test_the_shipped_models_match_the_features_they_read() -> None:
    for model, features in (
        (excitement.AUDIO_MODEL, excitement.FEATURES),
        (excitement.VIDEO_MODEL, excitement.VIDEO_FEATURES),
    ):
        assert model.features == features
        assert model.trees.trees > 0, (
            "the shipped excitement model has no trees: run benchmarks/fit_excitement.py --write"
        )
