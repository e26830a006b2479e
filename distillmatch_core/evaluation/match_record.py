"""What every protocol keeps of one matched pair, for precision figures and match visualisations."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class MatchRecord:
    keypoints0: np.ndarray  # (N, 2) float64 pixels of the evaluated image0
    keypoints1: np.ndarray  # (N, 2) float64 pixels of the evaluated image1
    correct: np.ndarray  # (N,) bool, the match agrees with the ground truth
    # The evaluated images are kept only for the few pairs that get visualised.
    image0: Optional[np.ndarray] = None
    image1: Optional[np.ndarray] = None

    @property
    def num_matches(self) -> int:
        return len(self.keypoints0)

    @property
    def precision(self) -> float:
        """Fraction of correct matches; NaN when there are none (no evidence either way)."""
        return float(np.mean(self.correct)) if len(self.correct) else float("nan")
