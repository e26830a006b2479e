"""Error measures against ground-truth geometry: homography corners, relative pose, epipolar residuals."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(3, 3) homography, (N, 2) points -> (N, 2) float64; points mapped to infinity become inf."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ np.asarray(H, np.float64).T
    w = homogeneous[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        mapped = homogeneous[:, :2] / w
    mapped[~np.isfinite(mapped).all(axis=1) | (np.abs(w[:, 0]) < 1e-12)] = np.inf
    return mapped


def image_corners(width: int, height: int) -> np.ndarray:
    """(4, 2) centres of the four corner pixels, clockwise from top-left."""
    return np.array([[0.0, 0.0], [width - 1.0, 0.0], [width - 1.0, height - 1.0], [0.0, height - 1.0]])


def mean_corner_error(H_estimated: np.ndarray, H_true: np.ndarray, width: int, height: int) -> float:
    """Mean distance (px) between the image-0 corners mapped by the estimate and by the truth."""
    corners = image_corners(width, height)
    error = np.linalg.norm(apply_homography(H_estimated, corners) - apply_homography(H_true, corners), axis=1)
    value = float(np.mean(error))
    return value if np.isfinite(value) else float("inf")


def transfer_residuals(H_true: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray) -> np.ndarray:
    """(N,) distance (px) between ``H_true(keypoints0)`` and ``keypoints1``."""
    keypoints1 = np.asarray(keypoints1, dtype=np.float64).reshape(-1, 2)
    residual = np.linalg.norm(apply_homography(H_true, keypoints0) - keypoints1, axis=1)
    return np.where(np.isfinite(residual), residual, np.inf)


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle (degrees) of the rotation ``R_a^T R_b``."""
    cos = (np.trace(np.asarray(R_a).T @ np.asarray(R_b)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def vector_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) between two 3-vectors; 0 when either is (near) zero."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm < 1e-12:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(a @ b / norm, -1.0, 1.0))))


def relative_pose_error(R_estimated: np.ndarray, t_estimated: np.ndarray, T_true: np.ndarray,
                        min_true_translation: float = 0.0) -> Tuple[float, float]:
    """(rotation error, translation-direction error) in degrees for an estimate camera0 -> camera1.

    T_true: (4, 4) ground-truth transform camera0 -> camera1. The essential matrix fixes the
    translation only up to sign, so the direction error is folded into [0, 90]. A true
    translation shorter than ``min_true_translation`` has no direction; its error is 0.
    """
    T_true = np.asarray(T_true, dtype=np.float64)
    R_true, t_true = T_true[:3, :3], T_true[:3, 3]
    rotation_error = rotation_angle_deg(R_estimated, R_true)
    if np.linalg.norm(t_true) <= min_true_translation:
        return rotation_error, 0.0
    translation_error = vector_angle_deg(t_estimated, t_true)
    return rotation_error, min(translation_error, 180.0 - translation_error)


def pose_error_deg(R_estimated: np.ndarray, t_estimated: np.ndarray, T_true: np.ndarray) -> float:
    """The pose-AUC error: max of the rotation and translation-direction errors (degrees)."""
    return max(relative_pose_error(R_estimated, t_estimated, T_true))


def essential_from_pose(T_0to1: np.ndarray) -> np.ndarray:
    """(3, 3) essential matrix ``[t]x R`` of a (4, 4) transform camera0 -> camera1."""
    T_0to1 = np.asarray(T_0to1, dtype=np.float64)
    t = T_0to1[:3, 3]
    t_cross = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return t_cross @ T_0to1[:3, :3]


def symmetric_epipolar_distance(keypoints0: np.ndarray, keypoints1: np.ndarray, K0: np.ndarray,
                                K1: np.ndarray, T_0to1: np.ndarray) -> np.ndarray:
    """(N,) symmetric squared epipolar distance in normalised camera coordinates (LoFTR convention).

    Small values (LoFTR counts < 5e-4 as correct) mean the match agrees with the true pose.
    """
    def normalized(points: np.ndarray, K: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        K = np.asarray(K, dtype=np.float64)
        return np.stack([(points[:, 0] - K[0, 2]) / K[0, 0], (points[:, 1] - K[1, 2]) / K[1, 1],
                         np.ones(len(points))], axis=1)

    x0, x1 = normalized(keypoints0, K0), normalized(keypoints1, K1)
    E = essential_from_pose(T_0to1)
    line1 = x0 @ E.T  # epipolar lines in image 1
    line0 = x1 @ E  # epipolar lines in image 0
    algebraic = np.sum(x1 * line1, axis=1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = algebraic * (1.0 / (line1[:, 0] ** 2 + line1[:, 1] ** 2)
                                + 1.0 / (line0[:, 0] ** 2 + line0[:, 1] ** 2))
    return np.where(np.isfinite(distance), distance, np.inf)
