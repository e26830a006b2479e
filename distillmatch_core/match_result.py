"""What ``Matcher.match`` returns: correspondences in original-image pixels plus geometry helpers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from distillmatch_core.robust_geometry import (HomographyEstimate, PoseEstimate, estimate_homography,
                                               estimate_relative_pose)


@dataclass
class MatchResult:
    keypoints0: np.ndarray  # (N, 2) float32, x/y pixels in ORIGINAL image0
    keypoints1: np.ndarray  # (N, 2) float32, x/y pixels in ORIGINAL image1
    confidence: np.ndarray  # (N,) float32 in [0, 1]
    image0_shape: tuple = (0, 0)  # (H, W) of the original image0
    image1_shape: tuple = (0, 0)
    timings: Dict[str, float] = field(default_factory=dict)  # seconds per stage

    def __post_init__(self) -> None:
        self.keypoints0 = np.asarray(self.keypoints0, dtype=np.float32).reshape(-1, 2)
        self.keypoints1 = np.asarray(self.keypoints1, dtype=np.float32).reshape(-1, 2)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if not (len(self.keypoints0) == len(self.keypoints1) == len(self.confidence)):
            raise ValueError("keypoints0, keypoints1 and confidence must have the same length")

    def __len__(self) -> int:
        return len(self.keypoints0)

    @property
    def num_matches(self) -> int:
        return len(self)

    def filter(self, mask: np.ndarray) -> "MatchResult":
        mask = np.asarray(mask, dtype=bool)
        return MatchResult(self.keypoints0[mask], self.keypoints1[mask], self.confidence[mask],
                           self.image0_shape, self.image1_shape, dict(self.timings))

    def homography(self, ransac_threshold: float = 3.0, **kwargs: Any) -> Optional[HomographyEstimate]:
        """Homography image0 -> image1 (OpenCV USAC MAGSAC++), or None with too few matches."""
        return estimate_homography(self.keypoints0, self.keypoints1, ransac_threshold, **kwargs)

    def relative_pose(self, K0: np.ndarray, K1: np.ndarray, ransac_threshold: float = 3.0,
                      **kwargs: Any) -> Optional[PoseEstimate]:
        """Essential matrix and pose camera0 -> camera1 (unit translation), or None."""
        return estimate_relative_pose(self.keypoints0, self.keypoints1, K0, K1, ransac_threshold, **kwargs)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "num_matches": len(self),
            "image0_shape": list(self.image0_shape),
            "image1_shape": list(self.image1_shape),
            "keypoints0": self.keypoints0.tolist(),
            "keypoints1": self.keypoints1.tolist(),
            "confidence": self.confidence.tolist(),
            "timings": self.timings,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)
