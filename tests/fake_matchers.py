"""Deterministic stand-ins for ``distillmatch_core.Matcher`` used by the ROS and rosbag tests.

``FakeHomographyMatcher`` returns a grid of correspondences that follow a
known RGB -> thermal homography exactly, plus a fixed fraction of gross
outliers, so every downstream number (inliers, homography, aligned image) is
predictable; ``FakeStereoMatcher`` returns projections of 3D points into two
calibrated cameras with a known relative pose. Both run in milliseconds.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from distillmatch_core.match_result import MatchResult


class FakeHomographyMatcher:
    def __init__(self, H_rgb_to_thermal: Optional[np.ndarray] = None, grid: Tuple[int, int] = (10, 8),
                 outlier_fraction: float = 0.1, fail_on_calls: Tuple[int, ...] = ()):
        # None: the identity scaled between the two image sizes (aligned pairs).
        self.H = None if H_rgb_to_thermal is None else np.asarray(H_rgb_to_thermal, dtype=np.float64)
        self.grid = grid
        self.outlier_fraction = outlier_fraction
        self.fail_on_calls = set(fail_on_calls)
        self.calls: List[dict] = []

    def homography_for(self, rgb_shape: tuple, thermal_shape: tuple) -> np.ndarray:
        if self.H is not None:
            return self.H
        sx = thermal_shape[1] / rgb_shape[1]
        sy = thermal_shape[0] / rgb_shape[0]
        return np.diag([sx, sy, 1.0])

    def match(self, image0: np.ndarray, image1: np.ndarray, modality0: str = "visible",
              modality1: str = "infrared", roi0=None, roi1=None) -> MatchResult:
        """``roi0``/``roi1`` are recorded, not applied: the correspondences cover the whole images."""
        call = len(self.calls)
        self.calls.append({"shape0": image0.shape, "dtype0": image0.dtype, "shape1": image1.shape,
                           "dtype1": image1.dtype, "modality0": modality0, "modality1": modality1,
                           "roi0": roi0, "roi1": roi1})
        if call in self.fail_on_calls:
            raise RuntimeError(f"simulated matcher failure on call {call}")
        h0, w0 = image0.shape[:2]
        gx, gy = self.grid
        xs, ys = np.meshgrid(np.linspace(0.1 * w0, 0.9 * w0, gx), np.linspace(0.1 * h0, 0.9 * h0, gy))
        kp0 = np.stack([xs.ravel(), ys.ravel()], axis=1)
        H = self.homography_for(image0.shape, image1.shape)
        projected = np.hstack([kp0, np.ones((len(kp0), 1))]) @ H.T
        kp1 = projected[:, :2] / projected[:, 2:3]
        n_outliers = int(round(self.outlier_fraction * len(kp0)))
        if n_outliers:
            # Every k-th match is moved far away in a fixed, non-homographic pattern.
            idx = np.linspace(0, len(kp0) - 1, n_outliers).astype(int)
            kp1[idx] += np.stack([40 + 7 * np.arange(n_outliers), -35 + 11 * (np.arange(n_outliers) % 5)], axis=1)
        confidence = np.linspace(1.0, 0.5, len(kp0))
        return MatchResult(kp0, kp1, confidence, image0_shape=(h0, w0), image1_shape=image1.shape[:2],
                           timings={"total": 0.0})


class FakeStereoMatcher:
    """Projections of fixed random 3D points into two calibrated cameras (x_thermal = R x_rgb + t)."""

    def __init__(self, R: np.ndarray, t: np.ndarray, K_rgb: np.ndarray, K_thermal: np.ndarray, points: int = 200):
        self.R, self.t, self.K_rgb, self.K_thermal = R, t, K_rgb, K_thermal
        rng = np.random.default_rng(3)
        self.points = np.column_stack([rng.uniform(-2, 2, points), rng.uniform(-1.5, 1.5, points),
                                       rng.uniform(4, 12, points)])

    @staticmethod
    def _project(K: np.ndarray, points: np.ndarray) -> np.ndarray:
        uvw = points @ K.T
        return uvw[:, :2] / uvw[:, 2:3]

    def match(self, image0: np.ndarray, image1: np.ndarray, modality0: str = "visible",
              modality1: str = "infrared") -> MatchResult:
        in_thermal = self.points @ self.R.T + self.t
        return MatchResult(self._project(self.K_rgb, self.points), self._project(self.K_thermal, in_thermal),
                           np.ones(len(self.points)), image0_shape=image0.shape[:2], image1_shape=image1.shape[:2])
