"""Classical baselines: OpenCV SIFT and ORB with nearest-neighbour matching and Lowe's ratio test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from distillmatch_core.thermal_normalization import normalize_to_uint8_gray


@dataclass(frozen=True)
class RatioMatcherOptions:
    # 4000 features: comparable to the number of coarse cells DistillMatch sees at 640x480 (80x60).
    max_features: int = 4000
    ratio: float = 0.8  # Lowe's ratio test (nearest / second-nearest descriptor distance)


class _RatioTestMatcher:
    """Detect + describe both images, keep nearest neighbours that pass the ratio test."""

    norm_type = cv2.NORM_L2

    def __init__(self, options: RatioMatcherOptions = RatioMatcherOptions()):
        self.options = options
        self._detector = self._create_detector(options)
        self._matcher = cv2.BFMatcher(self.norm_type)

    def _create_detector(self, options: RatioMatcherOptions):
        raise NotImplementedError

    def _describe(self, image: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        gray = normalize_to_uint8_gray(image)
        keypoints, descriptors = self._detector.detectAndCompute(gray, None)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float64).reshape(-1, 2)
        return points, descriptors

    def __call__(self, image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Images of any depth -> (N, 2), (N, 2) float64 matched pixel coordinates."""
        points0, descriptors0 = self._describe(image0)
        points1, descriptors1 = self._describe(image1)
        empty = (np.zeros((0, 2)), np.zeros((0, 2)))
        # The ratio test needs two neighbours in image1.
        if descriptors0 is None or descriptors1 is None or len(points0) == 0 or len(points1) < 2:
            return empty
        pairs = self._matcher.knnMatch(descriptors0, descriptors1, k=2)
        kept = [best for best, second in (p for p in pairs if len(p) == 2)
                if best.distance < self.options.ratio * second.distance]
        if not kept:
            return empty
        index0 = np.array([m.queryIdx for m in kept])
        index1 = np.array([m.trainIdx for m in kept])
        return points0[index0], points1[index1]


class SiftRatioMatcher(_RatioTestMatcher):
    norm_type = cv2.NORM_L2

    def _create_detector(self, options: RatioMatcherOptions):
        return cv2.SIFT_create(nfeatures=options.max_features)


class OrbRatioMatcher(_RatioTestMatcher):
    norm_type = cv2.NORM_HAMMING

    def _create_detector(self, options: RatioMatcherOptions):
        return cv2.ORB_create(nfeatures=options.max_features)
