"""Side-by-side visualisation of matches (the node's debug image and bag-eval's video frames)."""
from __future__ import annotations

import cv2
import numpy as np

INLIER_COLOR = (40, 220, 60)  # RGB
OUTLIER_COLOR = (230, 50, 50)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def draw_match_overlay(rgb: np.ndarray, thermal: np.ndarray, keypoints_rgb: np.ndarray,
                       keypoints_thermal: np.ndarray, inliers: np.ndarray, max_lines: int = 300,
                       caption: str = "") -> np.ndarray:
    """RGB (H, W[, 3]) uint8 left, thermal (h, w[, 3]) uint8 right -> (max(H, h), W + w, 3) uint8 RGB.

    Inliers are drawn green, outliers red; at most ``max_lines`` evenly
    subsampled matches keep the picture readable.
    """
    left, right = _as_rgb(rgb), _as_rgb(thermal)
    height = max(left.shape[0], right.shape[0])
    canvas = np.zeros((height, left.shape[1] + right.shape[1], 3), dtype=np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1]:] = right
    keypoints_rgb = np.asarray(keypoints_rgb, dtype=np.float64).reshape(-1, 2)
    keypoints_thermal = np.asarray(keypoints_thermal, dtype=np.float64).reshape(-1, 2)
    inliers = np.asarray(inliers, dtype=bool).reshape(-1)
    n = len(keypoints_rgb)
    indices = np.arange(n) if n <= max_lines else np.linspace(0, n - 1, max_lines).astype(int)
    offset = left.shape[1]
    for i in indices:
        color = INLIER_COLOR if inliers[i] else OUTLIER_COLOR
        p0 = (int(round(keypoints_rgb[i, 0])), int(round(keypoints_rgb[i, 1])))
        p1 = (int(round(keypoints_thermal[i, 0])) + offset, int(round(keypoints_thermal[i, 1])))
        cv2.line(canvas, p0, p1, color, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, 2, color, -1, cv2.LINE_AA)
    text = caption or f"{n} matches, {int(inliers.sum())} inliers"
    cv2.putText(canvas, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
