"""Deterministic sample indices for step-based training (exact resume without loader state).

Step s of rank r draws global sample indices s*B*W + r*B + k, k < B; datasets derive
everything random from the index, so the batch of any step is known without replay.
"""
from __future__ import annotations

import functools
from typing import Iterator, List

from torch.utils.data import Sampler


class StepBatchSampler(Sampler[List[int]]):
    def __init__(self, batch_size: int, start_step: int, total_steps: int, rank: int = 0, world_size: int = 1):
        self.batch_size = batch_size
        self.start_step = start_step
        self.total_steps = total_steps
        self.rank = rank
        self.world_size = world_size

    def batch_indices(self, step: int) -> List[int]:
        base = step * self.batch_size * self.world_size + self.rank * self.batch_size
        return list(range(base, base + self.batch_size))

    def __iter__(self) -> Iterator[List[int]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch_indices(step)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


def epoch_position(index: int, n: int, seed: int) -> int:
    """Global sample index -> position in a dataset of n items, a fresh permutation every epoch."""
    epoch, pos = divmod(int(index), n)
    return int(_epoch_permutation(n, seed, epoch)[pos])


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int):
    import numpy as np

    return np.random.default_rng([seed, 7, epoch]).permutation(n)
