"""Homography and relative pose recovery on synthetic correspondences with known ground truth."""
import cv2
import numpy as np

from distillmatch_core.match_result import MatchResult
from distillmatch_core.robust_geometry import estimate_homography, estimate_relative_pose


def test_homography_recovered_despite_outliers():
    rng = np.random.default_rng(1)
    H = np.array([[0.95, 0.08, 12.0], [-0.05, 1.02, -7.0], [2e-5, -1e-5, 1.0]])
    p0 = rng.uniform(0, 640, (300, 2))
    p1 = cv2.perspectiveTransform(p0[None], H)[0] + rng.normal(0, 0.3, (300, 2))
    p1[:90] = rng.uniform(0, 640, (90, 2))  # 30 % outliers
    est = MatchResult(p0, p1, np.ones(300)).homography(3.0)
    corners = np.array([[[0, 0], [639, 0], [639, 479], [0, 479]]], float)
    err = np.linalg.norm(cv2.perspectiveTransform(corners, est.H) - cv2.perspectiveTransform(corners, H), axis=-1)
    assert err.mean() < 1.0
    assert est.inliers[90:].mean() > 0.95 and est.inliers[:90].mean() < 0.1


def test_too_few_matches_gives_none():
    assert estimate_homography(np.zeros((3, 2)), np.zeros((3, 2))) is None
    assert estimate_relative_pose(np.zeros((4, 2)), np.zeros((4, 2)), np.eye(3), np.eye(3)) is None


def test_relative_pose_recovered():
    rng = np.random.default_rng(2)
    K0 = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    K1 = np.array([[450.0, 0, 330], [0, 450, 250], [0, 0, 1]])
    R, _ = cv2.Rodrigues(np.array([0.05, -0.1, 0.02]))
    t = np.array([0.5, 0.05, 0.1])
    X = np.c_[rng.uniform(-3, 3, 400), rng.uniform(-2, 2, 400), rng.uniform(4, 10, 400)]
    x0 = (K0 @ X.T).T
    x1 = (K1 @ (R @ X.T + t[:, None])).T
    p0, p1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
    pose = estimate_relative_pose(p0 + rng.normal(0, 0.2, p0.shape), p1, K0, K1, 1.0)
    rot_err = np.degrees(np.arccos(np.clip((np.trace(pose.R.T @ R) - 1) / 2, -1, 1)))
    t_err = np.degrees(np.arccos(np.clip(pose.t @ (t / np.linalg.norm(t)), -1, 1)))
    assert rot_err < 0.5 and t_err < 2.0
    assert abs(np.linalg.norm(pose.t) - 1) < 1e-6


def test_estimates_depend_on_the_set_of_correspondences_not_their_order():
    """MAGSAC samples by index: the same matches in another order (e.g. ties in confidence, which float rounding
    can reorder) must give the same estimate, with the inlier mask in the caller's order."""
    rng = np.random.default_rng(3)
    H = np.array([[0.97, 0.05, 8.0], [-0.03, 1.01, -4.0], [1e-5, 2e-5, 1.0]])
    p0 = rng.uniform(0, 640, (400, 2))
    p1 = cv2.perspectiveTransform(p0[None], H)[0] + rng.normal(0, 1.5, (400, 2))
    p1[:160] = rng.uniform(0, 640, (160, 2))  # 40 % outliers: sampling matters
    perm = rng.permutation(400)
    a, b = estimate_homography(p0, p1), estimate_homography(p0[perm], p1[perm])
    assert np.array_equal(a.H, b.H) and np.array_equal(a.inliers[perm], b.inliers)
    # Without the canonical order OpenCV itself gives another estimate for the permuted input.
    h_a, _ = cv2.findHomography(p0, p1, cv2.USAC_MAGSAC, 3.0, confidence=0.99999, maxIters=10000)
    h_b, _ = cv2.findHomography(p0[perm], p1[perm], cv2.USAC_MAGSAC, 3.0, confidence=0.99999, maxIters=10000)
    assert not np.array_equal(h_a, h_b)

    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    pa, pb = estimate_relative_pose(p0, p1, K, K), estimate_relative_pose(p0[perm], p1[perm], K, K)
    assert np.array_equal(pa.E, pb.E) and np.array_equal(pa.inliers[perm], pb.inliers)
