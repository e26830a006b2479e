"""Robust temporal average of thermal->RGB homographies for a rigid camera rig.

On a rigid rig the true homography (for a scene far away relative to the
baseline) is constant, so per-frame estimates differ only by noise and the
occasional wrong fit on a textureless or repetitive frame. The filter keeps the
last N accepted estimates and publishes their per-corner median.

Homographies are compared through where they send the four corners of the
thermal image (in RGB pixels): the matrix entries themselves have wildly
different scales, whereas corner distance is a pixel error users can reason
about. An estimate whose mean corner distance to the current average exceeds
a threshold is an outlier and is not added; if outliers keep coming (the rig
was re-mounted or the scene depth changed) the history is reset so the filter
follows the new geometry instead of freezing on the old one.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class HomographyFilterConfig:
    enabled: bool = True
    window_size: int = 5  # accepted estimates averaged
    outlier_corner_distance_px: float = 25.0  # mean corner distance beyond which an estimate is rejected
    min_history_for_rejection: int = 3  # accept everything until this many estimates exist
    max_consecutive_rejections: int = 10  # then the history is reset to follow a changed rig


@dataclass
class FilteredHomography:
    H: Optional[np.ndarray]  # (3, 3) thermal -> RGB, H[2, 2] == 1; None if nothing usable yet
    accepted: bool  # the new estimate joined the history
    reset: bool  # the history was cleared before this estimate
    corner_distance_px: Optional[float]  # new estimate vs. previous average; None without history
    history_size: int


def image_corners(width: int, height: int) -> np.ndarray:
    """(4, 2) float64 pixel corners (x, y) of a width x height image, clockwise from top-left."""
    return np.array([[0.0, 0.0], [width - 1.0, 0.0], [width - 1.0, height - 1.0], [0.0, height - 1.0]])


def project_points(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points through a (3, 3) homography -> (N, 2); points at infinity become inf."""
    pts = np.hstack([np.asarray(points, dtype=np.float64), np.ones((len(points), 1))])
    mapped = pts @ np.asarray(H, dtype=np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return mapped[:, :2] / mapped[:, 2:3]


def mean_corner_distance(H_a: np.ndarray, H_b: np.ndarray, width: int, height: int) -> float:
    """Mean distance (pixels of the target image) between the corners sent by two homographies."""
    corners = image_corners(width, height)
    diff = project_points(H_a, corners) - project_points(H_b, corners)
    distance = float(np.mean(np.linalg.norm(diff, axis=1)))
    return distance if np.isfinite(distance) else float("inf")


def homography_from_four_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact homography (H[2, 2] = 1) sending four (4, 2) points ``src`` to ``dst``, in float64.

    cv2.getPerspectiveTransform works in float32, which leaves micro-pixel
    errors that accumulate when the average is fed back as a reference.
    """
    A = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(np.asarray(src, np.float64), np.asarray(dst, np.float64))):
        A[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        A[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(A, b), 1.0).reshape(3, 3)


def normalize_homography(H: np.ndarray) -> np.ndarray:
    H = np.asarray(H, dtype=np.float64).reshape(3, 3)
    return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H


class HomographyTemporalFilter:
    """Not thread-safe: owned by the inference thread (or the offline evaluation loop)."""

    def __init__(self, config: HomographyFilterConfig = HomographyFilterConfig()):
        self.config = config
        self._corner_history: Deque[np.ndarray] = deque(maxlen=max(1, config.window_size))
        self._image_size: Optional[Tuple[int, int]] = None
        self._consecutive_rejections = 0

    def set_config(self, config: HomographyFilterConfig) -> None:
        """Runtime parameter change: keeps the newest estimates that still fit the new window."""
        self.config = config
        self._corner_history = deque(self._corner_history, maxlen=max(1, config.window_size))

    def reset(self) -> None:
        self._corner_history.clear()
        self._consecutive_rejections = 0

    @property
    def history_size(self) -> int:
        return len(self._corner_history)

    def current(self) -> Optional[np.ndarray]:
        """The averaged homography, or None before the first accepted estimate."""
        if not self._corner_history or self._image_size is None:
            return None
        median_corners = np.median(np.stack(self._corner_history), axis=0)
        try:
            return homography_from_four_points(image_corners(*self._image_size), median_corners)
        except np.linalg.LinAlgError:
            return None  # median corners collinear: no usable average

    def update(self, H: np.ndarray, thermal_size: Tuple[int, int]) -> FilteredHomography:
        """Feeds one estimate (thermal -> RGB, for a thermal image of ``thermal_size`` = (w, h))."""
        H = normalize_homography(H)
        if not self.config.enabled:
            return FilteredHomography(H, accepted=True, reset=False, corner_distance_px=None, history_size=0)
        reset = False
        if self._image_size != tuple(thermal_size):
            # A different thermal resolution makes stored corners meaningless.
            self.reset()
            self._image_size = (int(thermal_size[0]), int(thermal_size[1]))
        corners = project_points(H, image_corners(*self._image_size))
        if not np.all(np.isfinite(corners)):
            return self._rejected(None, reset)
        distance = None
        average = self.current()
        if average is not None:
            distance = mean_corner_distance(H, average, *self._image_size)
        is_outlier = (distance is not None and len(self._corner_history) >= self.config.min_history_for_rejection
                      and distance > self.config.outlier_corner_distance_px)
        if is_outlier:
            self._consecutive_rejections += 1
            if self._consecutive_rejections <= self.config.max_consecutive_rejections:
                return self._rejected(distance, reset)
            self.reset()
            reset = True
        self._consecutive_rejections = 0
        self._corner_history.append(corners)
        return FilteredHomography(self.current(), accepted=True, reset=reset, corner_distance_px=distance,
                                  history_size=len(self._corner_history))

    def _rejected(self, distance: Optional[float], reset: bool) -> FilteredHomography:
        average = self.current()
        return FilteredHomography(average, accepted=False, reset=reset, corner_distance_px=distance,
                                  history_size=len(self._corner_history))
