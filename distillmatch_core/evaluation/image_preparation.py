"""Bringing evaluation images to the protocol resolution, and undistorting calibrated images."""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np


def longer_side_size(width: int, height: int, longer_side: Optional[int]) -> Tuple[int, int]:
    """(width, height) after scaling so the longer side is ``longer_side`` (None/0: unchanged)."""
    if not longer_side:
        return width, height
    scale = longer_side / max(width, height)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def resize_image(image: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, Tuple[float, float]]:
    """(H, W[, C]) -> (height, width[, C]) and the (sx, sy) factors new = old * s."""
    old_height, old_width = image.shape[:2]
    if (old_width, old_height) == (width, height):
        return image, (1.0, 1.0)
    # INTER_AREA is the anti-aliasing choice when shrinking; it degrades to bilinear when enlarging.
    shrinking = width * height < old_width * old_height
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if image.ndim == 3 and resized.ndim == 2:
        resized = resized[..., None]
    return resized, (width / old_width, height / old_height)


def resize_longer_side(image: np.ndarray, longer_side: Optional[int]) -> Tuple[np.ndarray, Tuple[float, float]]:
    """Scale (H, W[, C]) so its longer side is ``longer_side``; returns the image and (sx, sy)."""
    height, width = image.shape[:2]
    return resize_image(image, *longer_side_size(width, height, longer_side))


def scale_intrinsics(K: np.ndarray, scale_xy: Tuple[float, float]) -> np.ndarray:
    """(3, 3) intrinsics of an image resized by (sx, sy), with OpenCV's pixel-centre convention.

    cv2.resize maps pixel centres as x' = (x + 0.5) * s - 0.5, so the principal point moves
    by that rule and the focal lengths simply scale.
    """
    sx, sy = scale_xy
    K = np.asarray(K, dtype=np.float64).copy()
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K


def undistort_image(image: np.ndarray, K: np.ndarray, distortion: Optional[np.ndarray]
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Remove lens distortion; returns the undistorted image and its (3, 3) pinhole intrinsics.

    The new camera matrix keeps only valid pixels (alpha = 0, as the METU-VisTIR / XoFTR
    evaluation does), so no black border enters the matcher. Zero/empty coefficients are a no-op.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if distortion is None:
        return image, K
    distortion = np.asarray(distortion, dtype=np.float64).ravel()
    if distortion.size == 0 or not np.any(distortion):
        return image, K
    height, width = image.shape[:2]
    K_new, _ = cv2.getOptimalNewCameraMatrix(K, distortion, (width, height), 0, (width, height))
    undistorted = cv2.undistort(image, K, distortion, None, K_new)
    if image.ndim == 3 and undistorted.ndim == 2:
        undistorted = undistorted[..., None]
    return undistorted, K_new
