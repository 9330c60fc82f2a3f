"""Paired bootstrap intervals of ranking metrics, computed with resampling weights in O(n) a round.

Resampling customers with replacement is the same as giving each customer a
multinomial count as weight. With the scores ranked once, ROC AUC and
precision in the top share under such weights need only sums over groups
of tied scores, so 1,000 rounds on 10,000 customers take about a second
instead of a sort per round and method. With all weights 1 the results
equal `metrics.roc_auc` and `metrics.precision_at_top`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scoring.valuemodel.arrays import FloatArray, IntArray, as_float


@dataclass(frozen=True)
class Ranked:
    """Scores ranked once: `group` numbers the distinct scores from the lowest (0) up."""

    labels: npt.NDArray[np.bool_]
    group: IntArray
    groups: int

    @classmethod
    def of(cls, labels: npt.ArrayLike, scores: npt.ArrayLike) -> Ranked:
        values, group = np.unique(as_float(scores), return_inverse=True)
        return cls(np.asarray(labels, dtype=np.bool_), group.astype(np.int64), int(values.size))

    def _by_group(self, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        positive = np.bincount(self.group, weights=weights * self.labels, minlength=self.groups)
        negative = np.bincount(self.group, weights=weights * ~self.labels, minlength=self.groups)
        return positive.astype(np.float64), negative.astype(np.float64)

    def roc_auc(self, weights: FloatArray) -> float:
        """Weighted P(score of a positive > score of a negative), ties 1/2; NaN with one class only."""
        positive, negative = self._by_group(weights)
        below = np.cumsum(negative) - negative  # negative weight strictly below each group
        total = float(positive.sum()) * float(negative.sum())
        return float(np.sum(positive * (below + 0.5 * negative)) / total) if total > 0 else math.nan

    def precision_at_top(self, weights: FloatArray, share: float = 0.2) -> float:
        """Weighted share of positives among the top ceil(share x total weight), the tied group pro rata.

        Weights must be whole numbers (counts) for the cut to match `metrics.precision_at_top`.
        """
        positive, negative = self._by_group(weights)
        size = positive + negative
        k = math.ceil(share * round(float(size.sum())))  # as metrics.precision_at_top: ceil(share x n)
        above = np.cumsum(size[::-1])[::-1] - size  # weight strictly above each group
        cut = int(np.flatnonzero((above < k) & (above + size >= k))[0])
        taken = k - float(above[cut])
        hits = float(positive[cut + 1 :].sum()) + taken * float(positive[cut] / size[cut])
        return hits / k


def paired_intervals(
    labels: npt.ArrayLike,
    scores: Mapping[str, npt.ArrayLike],
    candidate: str,
    rounds: int,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, tuple[float, float]]]:
    """For each other method: the `level` interval of candidate - method on ROC AUC and precision@20%.

    Customers are resampled with replacement (`rounds` times, seeded), the same
    resample for every method. Keys: method, then "roc_auc" / "precision_at_20".
    """
    ranked = {name: Ranked.of(labels, s) for name, s in scores.items()}
    n = int(np.asarray(labels).size)
    rng = np.random.default_rng(seed)
    diffs: dict[str, dict[str, list[float]]] = {m: {"roc_auc": [], "precision_at_20": []} for m in scores}
    for _ in range(rounds):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        mine = ranked[candidate].roc_auc(weights), ranked[candidate].precision_at_top(weights)
        for name in scores:
            if name == candidate:
                continue
            diffs[name]["roc_auc"].append(mine[0] - ranked[name].roc_auc(weights))
            diffs[name]["precision_at_20"].append(mine[1] - ranked[name].precision_at_top(weights))
    tail = (1.0 - level) / 2.0
    return {
        name: {metric: _quantiles(values, tail) for metric, values in by_metric.items()}
        for name, by_metric in diffs.items()
        if name != candidate
    }


def _quantiles(values: list[float], tail: float) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)])
    if finite.size == 0:
        return (math.nan, math.nan)
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)
