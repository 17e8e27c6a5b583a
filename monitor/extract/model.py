"""The block classifier: a forest of gradient-boosted decision trees (trained by
tools/train_extract.py, shipped as data/blocks.json.gz) over each block's features,
evaluated in C (_forest.c), else with numpy over all blocks and trees at once."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor import speedups
from monitor.extract.features import NAMES, Matrix

MODEL_FILE = "data/blocks.json.gz"

_c_margins: Callable[..., bytes] | None
_c_forest = speedups.load("monitor.extract._forest")  # None: the numpy walk, same values
_c_margins = None if _c_forest is None else _c_forest.margins


@dataclass(frozen=True)
class Forest:
    """Trees as flat node arrays: node `i` sends a row to `left[i]` when its feature
    `feature[i]` is at most `threshold[i]`, else to `right[i]`; a leaf sends a row to
    itself and holds its `value`. `roots` are the trees' first nodes."""

    feature: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    roots: npt.NDArray[np.int64]
    depth: int
    bias: float

    @cached_property
    def _c_arrays(self) -> tuple[bytes, ...]:
        return (self.feature.astype(np.int32).tobytes(), self.threshold.tobytes(),
                self.left.astype(np.int32).tobytes(), self.right.astype(np.int32).tobytes(),
                self.value.tobytes(), self.roots.astype(np.int32).tobytes())

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Forest:
        return cls(np.asarray(raw["feature"], dtype=np.int64),
                   np.asarray(raw["threshold"], dtype=np.float64),
                   np.asarray(raw["left"], dtype=np.int64),
                   np.asarray(raw["right"], dtype=np.int64),
                   np.asarray(raw["value"], dtype=np.float64),
                   np.asarray(raw["roots"], dtype=np.int64), int(raw["depth"]),
                   float(raw["bias"]))

    def probability(self, rows: Matrix, use_c: bool = True) -> npt.NDArray[np.float64]:
        """Each row's probability of being article text."""
        if not len(rows):
            return np.zeros(0)
        if use_c and _c_margins is not None:
            sums = np.frombuffer(_c_margins(
                np.ascontiguousarray(rows, dtype=np.float32), len(rows), rows.shape[1],
                *self._c_arrays), dtype=np.float64)
            return np.asarray(1 / (1 + np.exp(-(sums + self.bias))))
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        index = np.arange(len(rows))[:, None]
        for _ in range(self.depth):
            goes_left = rows[index, self.feature[node]] <= self.threshold[node]
            node = np.where(goes_left, self.left[node], self.right[node])
        margin = self.value[node].sum(axis=1) + self.bias
        return np.asarray(1 / (1 + np.exp(-margin)))


@dataclass(frozen=True)
class Classifier:
    """The forest, and the probability from which a block is kept."""

    forest: Forest
    cut: float

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Classifier:
        if raw["features"] != NAMES:
            raise ValueError("extract: the block model was trained on other features; "
                             "run tools/train_extract.py")
        return cls(Forest.from_dict(raw["forest"]), float(raw["cut"]))

    def probability(self, rows: Matrix) -> npt.NDArray[np.float64]:
        """Each block's probability of being article text."""
        return self.forest.probability(rows)


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    data = resources.files("monitor.extract").joinpath(MODEL_FILE).read_bytes()
    return Classifier.from_dict(json.loads(gzip.decompress(data)))
