"""Area under the cumulative error curve, as reported by LoFTR / SuperGlue-style benchmarks.

For a threshold ``t`` the curve "fraction of pairs with error <= e" is integrated
from 0 to ``t`` (trapezoids through the sorted errors) and divided by ``t``, so a
method that is exact on every pair scores 100 %. Failed pairs carry an infinite
error: they never enter the curve but still count in the denominator, which is
what makes the AUC punish a method that gives up.
"""
from __future__ import annotations

from typing import Dict, Iterable, Sequence, Tuple

import numpy as np


def _sorted_errors(errors: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(errors), dtype=np.float64).reshape(-1)
    # NaN means "no estimate" just as inf does; keep both out of the curve, in the count.
    return np.sort(np.where(np.isnan(values), np.inf, values))


def cumulative_error_curve(errors: Iterable[float]) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted finite errors -> (errors (M+1,), recall (M+1,)) starting at (0, 0).

    ``recall[i]`` is the fraction of ALL pairs (failures included) with error <= ``errors[i]``.
    """
    values = _sorted_errors(errors)
    n = len(values)
    finite = values[np.isfinite(values)]
    x = np.concatenate([[0.0], finite])
    y = np.concatenate([[0.0], np.arange(1, len(finite) + 1) / max(n, 1)])
    return x, y


def error_auc(errors: Iterable[float], thresholds: Sequence[float]) -> Dict[float, float]:
    """AUC in percent of the cumulative error curve up to each threshold.

    errors: per-pair errors (px or degrees); ``inf``/``NaN`` for a failed pair.
    Returns ``{threshold: auc_percent}``; an empty error list gives 0 for every threshold.
    """
    x, y = cumulative_error_curve(errors)
    out: Dict[float, float] = {}
    for threshold in thresholds:
        if threshold <= 0:
            raise ValueError(f"AUC thresholds must be positive, got {threshold}")
        if len(x) == 1:  # no pairs, or every pair failed
            out[threshold] = 0.0
            continue
        below = int(np.searchsorted(x, threshold, side="right"))
        # Close the curve at the threshold with the recall reached so far (a flat last segment).
        xs = np.concatenate([x[:below], [threshold]])
        ys = np.concatenate([y[:below], [y[below - 1]]])
        area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) * 0.5))
        out[threshold] = 100.0 * area / threshold
    return out
