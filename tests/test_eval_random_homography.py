"""The paper's random homography sampler: ranges, strength, reproducibility, centring, warping."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from distillmatch_core.evaluation.geometric_errors import apply_homography
from distillmatch_core.evaluation.random_homography import (HomographyParameters, HomographyRanges,
                                                            homography_from_parameters, sample_homography,
                                                            sample_homography_parameters, warp_image)

WIDTH, HEIGHT = 640, 480
IDENTITY_PARAMS = dict(translation_x=0.0, translation_y=0.0, rotation_deg=0.0, scale=1.0, shear=0.0,
                       perspective_x=0.0, perspective_y=0.0)


def draws(n: int, strength: float = 1.0):
    rng = np.random.default_rng(123)
    return [sample_homography_parameters(WIDTH, HEIGHT, rng, strength) for _ in range(n)]


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_parameters_stay_within_the_paper_ranges(strength):
    params = draws(400, strength)
    limits = {
        "translation_x": 0.1 * WIDTH, "translation_y": 0.1 * HEIGHT, "rotation_deg": 20.0,
        "shear": 0.1, "perspective_x": 0.003, "perspective_y": 0.003,
    }
    for name, limit in limits.items():
        values = np.abs([getattr(p, name) for p in params])
        assert values.max() <= limit * strength + 1e-12, name
        assert values.max() > 0.9 * limit * strength, name  # the range is actually used
    scales = np.array([p.scale for p in params])
    assert scales.min() >= 1 - 0.2 * strength and scales.max() <= 1 + 0.2 * strength
    assert scales.min() < 1 - 0.18 * strength and scales.max() > 1 + 0.18 * strength


def test_zero_strength_is_the_identity_and_bad_strength_is_rejected():
    np.testing.assert_allclose(sample_homography(WIDTH, HEIGHT, 5, strength=0.0), np.eye(3), atol=1e-12)
    with pytest.raises(ValueError):
        sample_homography(WIDTH, HEIGHT, 5, strength=1.5)


def test_reproducible_from_the_seed():
    a = sample_homography(WIDTH, HEIGHT, np.random.default_rng(7))
    b = sample_homography(WIDTH, HEIGHT, np.random.default_rng(7))
    c = sample_homography(WIDTH, HEIGHT, np.random.default_rng(8))
    assert a.dtype == np.float64 and a.shape == (3, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, sample_homography(WIDTH, HEIGHT, 7))  # an int seed works too
    assert not np.allclose(a, c)


def test_rotation_and_scale_are_about_the_image_centre():
    centre = np.array([[WIDTH / 2.0, HEIGHT / 2.0]])
    corner = np.array([[0.0, 0.0]])
    params = HomographyParameters(**{**IDENTITY_PARAMS, "rotation_deg": 20.0, "scale": 1.2})
    H = homography_from_parameters(params, WIDTH, HEIGHT)
    np.testing.assert_allclose(apply_homography(H, centre), centre, atol=1e-9)
    moved = apply_homography(H, corner)[0] - centre[0]
    original = corner[0] - centre[0]
    assert np.linalg.norm(moved) == pytest.approx(1.2 * np.linalg.norm(original))
    angle = math.degrees(math.atan2(moved[1], moved[0]) - math.atan2(original[1], original[0]))
    assert angle == pytest.approx(20.0)  # +20 deg in x-right / y-down pixel axes (clockwise as displayed)


def test_translation_is_in_pixels_and_perspective_in_normalised_coordinates():
    params = HomographyParameters(**{**IDENTITY_PARAMS, "translation_x": 30.0, "translation_y": -12.0})
    H = homography_from_parameters(params, WIDTH, HEIGHT)
    np.testing.assert_allclose(apply_homography(H, [[5.0, 7.0]]), [[35.0, -5.0]], atol=1e-9)
    params = HomographyParameters(**{**IDENTITY_PARAMS, "perspective_x": 0.003})
    H = homography_from_parameters(params, WIDTH, HEIGHT)
    # The right edge (normalised u = 1) gets the full 0.3 % foreshortening relative to the centre.
    right = apply_homography(H, [[float(WIDTH), HEIGHT / 2.0]])[0, 0]
    assert right - WIDTH / 2.0 == pytest.approx((WIDTH / 2.0) / 1.003)


def test_full_strength_corner_displacement_is_bounded():
    worst = 0.0
    corners = np.array([[0.0, 0.0], [WIDTH, 0.0], [WIDTH, HEIGHT], [0.0, HEIGHT]])
    for seed in range(200):
        H = sample_homography(WIDTH, HEIGHT, seed)
        worst = max(worst, np.abs(apply_homography(H, corners) - corners).max())
    # translation 64 + rotation/scale/shear of a 400 px half-diagonal: well under one image size.
    assert 20.0 < worst < 450.0


def test_warp_image_moves_content_by_the_homography():
    image = np.zeros((HEIGHT, WIDTH), np.float32)
    x, y = 200.0, 150.0
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    image[:] = np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * 2.5 ** 2))
    H = sample_homography(WIDTH, HEIGHT, 11)
    warped = warp_image(image, H)
    assert warped.shape == image.shape and warped.dtype == np.float32
    m = cv2.moments(warped)
    expected = apply_homography(H, [[x, y]])[0]
    assert m["m10"] / m["m00"] == pytest.approx(expected[0], abs=0.1)
    assert m["m01"] / m["m00"] == pytest.approx(expected[1], abs=0.1)
    # Channel layout and integer depths survive.
    assert warp_image(np.zeros((HEIGHT, WIDTH, 1), np.uint16), H).shape == (HEIGHT, WIDTH, 1)
    assert warp_image(np.zeros((HEIGHT, WIDTH, 3), np.uint8), H, (100, 120)).shape == (100, 120, 3)


def test_log_uniform_scale_is_symmetric_in_magnification():
    """scale_log_uniform: scale in [1 / (1 + d), 1 + d], magnifying as often as shrinking; strength narrows it."""
    ranges = HomographyRanges(scale_delta=0.7, scale_log_uniform=True)
    rng = np.random.default_rng(7)
    scales = np.array([sample_homography_parameters(WIDTH, HEIGHT, rng, 1.0, ranges).scale for _ in range(2000)])
    assert scales.min() >= 1 / 1.7 - 1e-12 and scales.max() <= 1.7 + 1e-12
    assert scales.min() < 1 / 1.65 and scales.max() > 1.65
    assert abs(np.mean(scales > 1) - 0.5) < 0.05 and abs(np.median(np.log(scales))) < 0.05
    half = [sample_homography_parameters(WIDTH, HEIGHT, rng, 0.5, ranges).scale for _ in range(200)]
    assert 1.7 ** -0.5 - 1e-12 <= min(half) and max(half) <= 1.7 ** 0.5 + 1e-12
    # The other terms are drawn in the same order from the same generator as the paper's sampler.
    a = sample_homography_parameters(WIDTH, HEIGHT, 9, 1.0, ranges)
    b = sample_homography_parameters(WIDTH, HEIGHT, 9)
    assert a.rotation_deg == b.rotation_deg and a.perspective_y == b.perspective_y and a.scale != b.scale


def test_custom_ranges():
    ranges = HomographyRanges(rotation_deg=0.0, translation_fraction=0.0, scale_delta=0.0, shear=0.0,
                              perspective=0.0)
    np.testing.assert_allclose(sample_homography(WIDTH, HEIGHT, 3, ranges=ranges), np.eye(3), atol=1e-12)
