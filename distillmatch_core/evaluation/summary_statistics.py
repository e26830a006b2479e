"""Robust aggregates for result tables: empty or all-failed inputs give NaN/inf, never a warning."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def median_with_failures(values: Iterable[float]) -> float:
    """Median where an infinite value counts as larger than all others (so failures raise it)."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return float("nan")
    return float(np.median(np.where(np.isnan(array), np.inf, array)))


def mean_or_nan(values: Iterable[float]) -> float:
    array = np.asarray(list(values), dtype=np.float64)
    return float(array.mean()) if array.size else float("nan")


def nan_mean(values: Iterable[float]) -> float:
    """Mean over the non-NaN values (pairs without matches have no precision)."""
    array = np.asarray(list(values), dtype=np.float64)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else float("nan")
