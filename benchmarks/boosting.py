"""Fit gradient-boosted regression trees (squared error, weighted rows) into a `TreeEnsemble`.

Small and plain on purpose: the excitement model has a few dozen inputs and some ten thousand rows per
fit, so histogram splits on quantile bins (as LightGBM and scikit-learn's HistGradientBoosting do) in
numpy fit a model in seconds. Each tree is grown level by level to a fixed depth; a node splits on the
bin boundary with the largest drop in weighted squared error, unless a side would hold less than
`min_leaf` of the weight. Leaves take the weighted mean residual, shrunk by the learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from montage_pipeline.media.boosted_trees import TreeEnsemble


@dataclass(frozen=True)
class BoostingParams:
    depth: int = 3
    rounds: int = 150
    learning_rate: float = 0.1
    bins: int = 32
    min_leaf: float = 0.01  # the smallest share of the total weight a leaf may hold
    subsample: float = 1.0  # share of rows each tree sees (1: all)
    seed: int = 0


def _bin_edges(x: np.ndarray, bins: int) -> list[np.ndarray]:
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    return [np.unique(np.quantile(x[:, j], quantiles)) for j in range(x.shape[1])]


def _best_split(
    codes: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, g: np.ndarray, w: np.ndarray, min_leaf: float
) -> tuple[int, int] | None:
    """(input, bin) of the best split of these rows, or None: one histogram over every input at once."""
    total_bins = int(offsets[-1] + sizes[-1])
    flat = (codes + offsets[None, :]).ravel()
    hist_g = np.bincount(flat, weights=np.repeat(g * w, codes.shape[1]), minlength=total_bins)
    hist_w = np.bincount(flat, weights=np.repeat(w, codes.shape[1]), minlength=total_bins)
    tot_g, tot_w = float((g * w).sum()), float(w.sum())
    best: tuple[float, int, int] | None = None
    for j, (start, size) in enumerate(zip(offsets, sizes, strict=True)):
        left_g = np.cumsum(hist_g[start : start + size])[:-1]
        left_w = np.cumsum(hist_w[start : start + size])[:-1]
        ok = (left_w >= min_leaf) & (tot_w - left_w >= min_leaf)
        if not ok.any():
            continue
        right_g, right_w = tot_g - left_g, np.maximum(tot_w - left_w, 1e-12)
        gain = np.where(ok, left_g**2 / np.maximum(left_w, 1e-12) + right_g**2 / right_w, -1.0)
        k = int(np.argmax(gain))
        if gain[k] > 0 and (best is None or gain[k] > best[0]):
            best = (float(gain[k]), j, k)
    return None if best is None else (best[1], best[2])


def fit_trees(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, inputs: list[str], params: BoostingParams = BoostingParams()
) -> TreeEnsemble:
    """Boosted trees of `params.depth` fitted to y (weights w), as a complete-tree `TreeEnsemble`."""
    w = w / w.sum()
    edges = _bin_edges(x, params.bins)
    codes = np.stack([np.searchsorted(e, x[:, j], side="left") for j, e in enumerate(edges)], axis=1)
    sizes = np.array([len(e) + 1 for e in edges])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    internal, nodes = 2**params.depth - 1, 2 ** (params.depth + 1) - 1
    base = float((w * y).sum())
    pred = np.full(len(y), base)
    rng = np.random.default_rng(params.seed)
    features, thresholds, values = [], [], []
    for _ in range(params.rounds):
        residual = y - pred
        rows = np.arange(len(y))
        if params.subsample < 1.0:
            rows = np.sort(rng.choice(len(y), int(params.subsample * len(y)), replace=False))
        feature = np.zeros(internal, dtype=np.int64)
        threshold = np.full(internal, np.inf)
        value = np.zeros(nodes)
        members = {0: rows}
        for node in range(nodes):
            idx = members.pop(node)
            weight = w[idx].sum()
            if weight > 0:
                value[node] = float((residual[idx] * w[idx]).sum() / weight) * params.learning_rate
            else:  # an empty side: no row reaches it, it repeats its parent
                value[node] = value[(node - 1) // 2] if node else 0.0
            if node >= internal:
                continue
            split = None
            if len(idx):
                split = _best_split(codes[idx], offsets, sizes, residual[idx], w[idx], params.min_leaf)
            if split is None:  # no useful split: every row goes left, both children repeat this value
                members[2 * node + 1], members[2 * node + 2] = idx, idx[:0]
                continue
            j, k = split
            feature[node], threshold[node] = j, float(edges[j][k])
            right = codes[idx, j] > k
            members[2 * node + 1], members[2 * node + 2] = idx[~right], idx[right]
        tree = TreeEnsemble(tuple(inputs), 0.0, params.depth, feature[None], threshold[None], value[None])
        pred = pred + tree.predict(x)
        features.append(feature)
        thresholds.append(threshold)
        values.append(value)
    return TreeEnsemble(
        tuple(inputs), base, params.depth, np.array(features), np.array(thresholds), np.array(values)
    )
