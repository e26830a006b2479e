"""Robust temporal averaging of thermal -> RGB homographies."""
import numpy as np
import pytest

from distillmatch_core.ros_interface.homography_filter import (HomographyFilterConfig, HomographyTemporalFilter,
                                                               mean_corner_distance, project_points)

SIZE = (160, 120)
TRUE_H = np.array([[1.02, 0.01, 5.0], [-0.015, 0.99, -3.0], [1e-5, 2e-5, 1.0]])


def shifted(H, dx, dy=0.0):
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]) @ H


def test_corner_distance_of_a_translation_is_its_length():
    assert mean_corner_distance(shifted(TRUE_H, 3, 4), TRUE_H, *SIZE) == pytest.approx(5.0)
    assert mean_corner_distance(TRUE_H, TRUE_H * 7.0, *SIZE) == pytest.approx(0.0, abs=1e-9)  # scale-invariant


def test_median_of_noisy_estimates_is_close_to_truth():
    rng = np.random.default_rng(0)
    filt = HomographyTemporalFilter(HomographyFilterConfig(window_size=9))
    for _ in range(9):
        out = filt.update(shifted(TRUE_H, *rng.normal(0, 1.0, 2)), SIZE)
        assert out.accepted
    assert mean_corner_distance(out.H, TRUE_H, *SIZE) < 1.0
    assert out.history_size == 9
    assert out.H[2, 2] == pytest.approx(1.0)


def test_outlier_is_rejected_and_does_not_move_the_average():
    filt = HomographyTemporalFilter(HomographyFilterConfig(window_size=5, outlier_corner_distance_px=10.0))
    for dx in (0.0, 0.5, -0.5):
        filt.update(shifted(TRUE_H, dx), SIZE)
    before = filt.current()
    out = filt.update(shifted(TRUE_H, 60.0), SIZE)
    assert not out.accepted and out.corner_distance_px == pytest.approx(60.0, abs=0.6)
    np.testing.assert_allclose(out.H, before)
    assert filt.history_size == 3


def test_single_outlier_inside_window_cannot_drag_the_median():
    # Accepted before the history is long enough to judge: the median still ignores it.
    filt = HomographyTemporalFilter(HomographyFilterConfig(window_size=5, min_history_for_rejection=3))
    filt.update(TRUE_H, SIZE)
    filt.update(shifted(TRUE_H, 80.0), SIZE)
    out = filt.update(TRUE_H, SIZE)
    assert mean_corner_distance(out.H, TRUE_H, *SIZE) < 1e-6


def test_persistent_change_resets_the_filter():
    config = HomographyFilterConfig(window_size=5, outlier_corner_distance_px=10.0, max_consecutive_rejections=3)
    filt = HomographyTemporalFilter(config)
    for _ in range(5):
        filt.update(TRUE_H, SIZE)
    moved = shifted(TRUE_H, 40.0)
    results = [filt.update(moved, SIZE) for _ in range(4)]
    assert [r.accepted for r in results] == [False, False, False, True]
    assert results[-1].reset and results[-1].history_size == 1
    assert mean_corner_distance(results[-1].H, moved, *SIZE) < 1e-6


def test_window_keeps_only_the_newest_estimates():
    filt = HomographyTemporalFilter(HomographyFilterConfig(window_size=3, outlier_corner_distance_px=1000.0))
    for dx in (0.0, 1.0, 2.0, 3.0, 4.0):
        out = filt.update(shifted(TRUE_H, dx), SIZE)
    assert out.history_size == 3
    assert mean_corner_distance(out.H, shifted(TRUE_H, 3.0), *SIZE) < 1e-6  # median of 2, 3, 4


def test_disabled_filter_passes_estimates_through():
    filt = HomographyTemporalFilter(HomographyFilterConfig(enabled=False))
    filt.update(TRUE_H, SIZE)
    out = filt.update(shifted(TRUE_H, 50.0), SIZE)
    assert out.accepted
    np.testing.assert_allclose(out.H, shifted(TRUE_H, 50.0) / shifted(TRUE_H, 50.0)[2, 2])


def test_new_thermal_size_restarts_history():
    filt = HomographyTemporalFilter()
    filt.update(TRUE_H, SIZE)
    filt.update(TRUE_H, SIZE)
    out = filt.update(shifted(TRUE_H, 90.0), (320, 240))
    assert out.accepted and out.history_size == 1


def test_degenerate_estimate_sending_corners_to_infinity_is_rejected():
    filt = HomographyTemporalFilter()
    filt.update(TRUE_H, SIZE)
    degenerate = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1.0 / 159.0, 0, 1.0]])  # right edge at infinity
    assert not np.all(np.isfinite(project_points(degenerate, np.array([[159.0, 0.0]]))))
    out = filt.update(degenerate, SIZE)
    assert not out.accepted and filt.history_size == 1


def test_runtime_window_change_keeps_newest():
    filt = HomographyTemporalFilter(HomographyFilterConfig(window_size=5, outlier_corner_distance_px=1000.0))
    for dx in range(5):
        filt.update(shifted(TRUE_H, float(dx)), SIZE)
    filt.set_config(HomographyFilterConfig(window_size=1, outlier_corner_distance_px=1000.0))
    assert filt.history_size == 1
    assert mean_corner_distance(filt.current(), shifted(TRUE_H, 4.0), *SIZE) < 1e-6
