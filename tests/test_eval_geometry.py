"""Corner, pose and epipolar errors against known transforms; intrinsics under resizing."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from distillmatch_core.evaluation.geometric_errors import (apply_homography, mean_corner_error,
                                                           pose_error_deg, relative_pose_error,
                                                           symmetric_epipolar_distance, transfer_residuals)
from distillmatch_core.evaluation.image_preparation import resize_longer_side, scale_intrinsics


def rotation_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]])


def transform(R: np.ndarray, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


H_TRUE = np.array([[1.05, 0.08, 12.0], [-0.06, 0.97, -7.0], [2e-5, -1e-5, 1.0]])


def test_corner_error_of_a_translated_estimate_is_the_translation_length():
    assert mean_corner_error(translation(3.0, 4.0) @ H_TRUE, H_TRUE, 640, 480) == pytest.approx(5.0)
    assert mean_corner_error(H_TRUE, H_TRUE, 640, 480) == pytest.approx(0.0, abs=1e-9)


def test_corner_error_uses_the_four_corner_pixels():
    # Scaling about the origin by 2 moves corner (x, y) by |(x, y)|: corners of a 11x21 image.
    expected = np.mean([0.0, 10.0, math.hypot(10.0, 20.0), 20.0])
    assert mean_corner_error(np.diag([2.0, 2.0, 1.0]), np.eye(3), 11, 21) == pytest.approx(expected)


def test_degenerate_estimate_is_an_infinite_error():
    collapsing = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # sends x=0 to infinity
    assert mean_corner_error(collapsing, np.eye(3), 100, 100) == math.inf
    assert np.isinf(apply_homography(collapsing, [[0.0, 5.0]])).all()


def test_transfer_residuals():
    points = np.array([[10.0, 20.0], [100.0, 50.0]])
    moved = apply_homography(H_TRUE, points) + np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(transfer_residuals(H_TRUE, points, moved), [0.0, 5.0], atol=1e-9)


def test_pose_error_against_known_rotations_and_translations():
    T_true = transform(rotation_y(10.0), [2.0, 0.0, 0.0])
    a = math.radians(4.0)
    rotation_err, translation_err = relative_pose_error(rotation_y(13.0), [math.cos(a), math.sin(a), 0.0], T_true)
    assert rotation_err == pytest.approx(3.0, abs=1e-6)
    assert translation_err == pytest.approx(4.0, abs=1e-6)
    # The essential matrix fixes the translation only up to sign: a flipped direction is exact.
    assert relative_pose_error(rotation_y(10.0), [-1.0, 0.0, 0.0], T_true) == pytest.approx((0.0, 0.0), abs=1e-6)
    # A 120-degree direction error folds to 60.
    b = math.radians(120.0)
    assert relative_pose_error(rotation_y(10.0), [math.cos(b), math.sin(b), 0.0], T_true)[1] == pytest.approx(60.0)
    assert pose_error_deg(rotation_y(13.0), [math.cos(a), math.sin(a), 0.0], T_true) == pytest.approx(4.0)


def test_pure_rotation_has_no_translation_error():
    T_true = transform(rotation_y(5.0), [0.0, 0.0, 0.0])
    assert relative_pose_error(rotation_y(5.0), [0.3, 0.1, 0.9], T_true) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_epipolar_distance_is_zero_for_true_projections_only():
    K0 = np.array([[300.0, 0.0, 160.0], [0.0, 310.0, 120.0], [0.0, 0.0, 1.0]])
    K1 = np.array([[280.0, 0.0, 150.0], [0.0, 280.0, 130.0], [0.0, 0.0, 1.0]])
    T = transform(rotation_y(7.0), [0.5, 0.05, 0.1])
    points = np.random.default_rng(0).uniform([-1, -1, 4], [1, 1, 8], size=(50, 3))
    in1 = points @ T[:3, :3].T + T[:3, 3]
    k0 = (points[:, :2] / points[:, 2:]) * K0[[0, 1], [0, 1]] + K0[:2, 2]
    k1 = (in1[:, :2] / in1[:, 2:]) * K1[[0, 1], [0, 1]] + K1[:2, 2]
    assert symmetric_epipolar_distance(k0, k1, K0, K1, T).max() < 1e-12
    assert symmetric_epipolar_distance(k0, k1 + [0.0, 10.0], K0, K1, T).min() > 5e-4


def test_intrinsics_follow_opencv_resizing():
    # A blob at a known sub-pixel position, shrunk with INTER_AREA: its centroid moves as the
    # principal point does in scale_intrinsics.
    height, width, x, y = 300, 400, 231.3, 97.6
    v, u = np.mgrid[0:height, 0:width]
    image = np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * 3.0 ** 2)).astype(np.float32)
    resized, scale = resize_longer_side(image, 320)
    assert resized.shape == (240, 320)
    moments = cv2.moments(resized)
    K = scale_intrinsics(np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]]), scale)
    assert moments["m10"] / moments["m00"] == pytest.approx(K[0, 2], abs=0.02)
    assert moments["m01"] / moments["m00"] == pytest.approx(K[1, 2], abs=0.02)
