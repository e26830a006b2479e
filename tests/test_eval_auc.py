"""AUC of cumulative error curves against values computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from distillmatch_core.evaluation.auc import cumulative_error_curve, error_auc

INF = float("inf")


def test_two_successes_two_failures_by_hand():
    # Curve through (0,0) (1,.25) (2,.5), flat to t. Areas: t=1: .125; t=2: .125+.375; t=4: .5+.5*2.
    auc = error_auc([1.0, 2.0, INF, INF], thresholds=[1.0, 2.0, 4.0])
    assert auc[1.0] == pytest.approx(12.5)
    assert auc[2.0] == pytest.approx(25.0)
    assert auc[4.0] == pytest.approx(37.5)


def test_order_does_not_matter_and_nan_counts_as_failure():
    assert error_auc([INF, 2.0, float("nan"), 1.0], [4.0]) == pytest.approx(error_auc([1.0, 2.0, INF, INF], [4.0]))


def test_single_error_between_thresholds():
    # One pair with error 1: triangle up to 1 (area .5) then full recall to 2 (area 1) -> 1.5 / 2.
    assert error_auc([1.0], [2.0])[2.0] == pytest.approx(75.0)
    # The same pair scores nothing at a threshold below its error.
    assert error_auc([1.0], [0.5])[0.5] == pytest.approx(0.0)


def test_exact_estimates_score_100_and_failures_score_0():
    assert error_auc([0.0, 0.0, 0.0], [3.0, 5.0]) == {3.0: pytest.approx(100.0), 5.0: pytest.approx(100.0)}
    assert error_auc([INF, INF], [5.0]) == {5.0: 0.0}
    assert error_auc([], [5.0]) == {5.0: 0.0}


def test_failures_scale_the_auc_down_proportionally():
    errors = [0.5, 1.5, 3.0, 7.0]
    with_failures = error_auc(errors + [INF] * 4, [5.0, 10.0])
    without = error_auc(errors, [5.0, 10.0])
    for threshold in (5.0, 10.0):
        assert with_failures[threshold] == pytest.approx(without[threshold] / 2.0)


def test_cumulative_curve_counts_failures_in_the_denominator():
    x, y = cumulative_error_curve([2.0, INF, 1.0, INF])
    np.testing.assert_allclose(x, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(y, [0.0, 0.25, 0.5])


def test_thresholds_must_be_positive():
    with pytest.raises(ValueError):
        error_auc([1.0], [0.0])
    assert math.isclose(error_auc([1.0], [1.0])[1.0], 50.0)
