"""A fitted ensemble of gradient-boosted regression trees, evaluated with numpy: prediction and why.

The excitement model is such an ensemble (fitted by `benchmarks/boosting.py`; a linear model of the same
inputs could not tell a player firing at nothing from one whose shots land: both are loud and busy, and
only combinations of the features separate them). Every tree is stored complete to a fixed depth (a node
that was not split sends every row left, and its subtree repeats its value), so all trees are walked for
all rows at once with array indexing: no Python loop per row or per tree.

`contributions` splits each prediction over the inputs (Saabas' path attribution): each split on the
path moves the prediction from the parent's value to the child's, and that move is credited to the input
the split tested. The base value plus the contributions is the prediction, so the asset page can show
what made a moment score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TreeEnsemble:
    inputs: tuple[str, ...]  # the column names of the input matrix
    base: float  # the prediction before any tree
    depth: int
    feature: np.ndarray  # (trees, 2**depth - 1): the input column each internal node tests
    threshold: np.ndarray  # (trees, 2**depth - 1): go right when the input is above it
    value: np.ndarray  # (trees, 2**(depth+1) - 1): each node's value (the leaves are the last 2**depth)

    def __post_init__(self) -> None:
        internal, nodes = 2**self.depth - 1, 2 ** (self.depth + 1) - 1
        if self.feature.shape[1:] != (internal,) or self.threshold.shape != self.feature.shape:
            raise ValueError("tree ensemble: internal node arrays do not match the depth")
        if self.value.shape != (len(self.feature), nodes):
            raise ValueError("tree ensemble: node values do not match the depth")
        if len(self.feature) and int(self.feature.max()) >= len(self.inputs):
            raise ValueError("tree ensemble: a node tests an input the model does not have")

    @property
    def trees(self) -> int:
        return len(self.feature)

    def _paths(self, x: np.ndarray) -> np.ndarray:
        """(rows, trees, depth + 1): the node each row visits at each level of each tree."""
        rows, trees = len(x), self.trees
        tree_ix = np.arange(trees)[None, :]
        node = np.zeros((rows, trees), dtype=np.int64)
        path = [node]
        for _ in range(self.depth):
            column = self.feature[tree_ix, node]  # (rows, trees)
            right = np.take_along_axis(x, column, axis=1) > self.threshold[tree_ix, node]
            node = 2 * node + 1 + right
            path.append(node)
        return np.stack(path, axis=2)

    def predict(self, x: np.ndarray) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        leaves = self._paths(x)[:, :, -1]
        return self.base + self.value[np.arange(self.trees)[None, :], leaves].sum(axis=1)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows, inputs): each input's share of each row's prediction (they sum to prediction - root)."""
        out = np.zeros((len(x), len(self.inputs)))
        if not len(x):
            return out
        path = self._paths(x)
        tree_ix = np.arange(self.trees)[None, :]
        rows = np.arange(len(x))[:, None]
        for level in range(self.depth):
            parent, child = path[:, :, level], path[:, :, level + 1]
            moved = self.value[tree_ix, child] - self.value[tree_ix, parent]
            np.add.at(out, (rows, self.feature[tree_ix, parent]), moved)
        return out

    @property
    def root(self) -> float:
        """The prediction when no split has looked at the row: base plus every tree's root value."""
        return self.base + float(self.value[:, 0].sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": list(self.inputs),
            "base": self.base,
            "depth": self.depth,
            "feature": self.feature.tolist(),
            "threshold": [[round(float(t), 6) for t in row] for row in self.threshold],
            "value": [[round(float(v), 6) for v in row] for row in self.value],
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> TreeEnsemble:
        depth = int(spec["depth"])
        return cls(
            inputs=tuple(str(i) for i in spec["inputs"]),
            base=float(spec["base"]),
            depth=depth,
            feature=np.asarray(spec["feature"], dtype=np.int64).reshape(-1, 2**depth - 1),
            threshold=np.asarray(spec["threshold"], dtype=np.float64).reshape(-1, 2**depth - 1),
            value=np.asarray(spec["value"], dtype=np.float64).reshape(-1, 2 ** (depth + 1) - 1),
        )
