"""Choosing a deterministic subset of evaluation pairs for ``--limit``."""
from __future__ import annotations

from typing import List, Optional, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def select_evenly(items: Sequence[T], limit: Optional[int]) -> List[T]:
    """``limit`` items spread evenly over the ordered list (all of them if limit is None or large).

    Pairs are listed set by set, so taking the first N would evaluate only the first set;
    an even spread keeps every set represented in a quick run or a cheap validation.
    """
    items = list(items)
    if limit is None or limit >= len(items):
        return items
    if limit <= 0:
        return []
    positions = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in positions]
