"""Method resolution, output validation, --limit selection, and the classical baselines on any depth."""
from __future__ import annotations

import numpy as np
import pytest

from distillmatch_core.evaluation.classical_matchers import OrbRatioMatcher, SiftRatioMatcher
from distillmatch_core.evaluation.methods import (MethodError, as_keypoint_arrays, resolve_method,
                                                  run_matcher)
from distillmatch_core.evaluation.pair_selection import select_evenly
from distillmatch_core.evaluation.geometric_errors import transfer_residuals
from distillmatch_core.evaluation.random_homography import sample_homography, warp_image
from distillmatch_core.match_result import MatchResult
from synthetic_images import textured_image




def test_builtin_names_and_unknown_methods():
    assert resolve_method("sift").name == "sift"
    assert resolve_method(" orb ").name == "orb"
    with pytest.raises(MethodError, match="unknown method"):
        resolve_method("akaze")
    with pytest.raises(MethodError, match="package.module:factory"):
        resolve_method(":factory")


def test_plugin_factory_is_called_once():
    spec = f"{__name__}:identity_matcher_factory"  # this module's importable name under pytest
    method = resolve_method(spec)
    assert method.name == spec
    k0, k1 = method.match(np.zeros((4, 4)), np.zeros((4, 4)))
    np.testing.assert_array_equal(k0, k1)


def identity_matcher_factory():
    return lambda image0, image1: (np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]))


def test_outputs_are_validated_and_match_results_accepted():
    result = MatchResult(np.ones((3, 2)), np.zeros((3, 2)), np.ones(3))
    k0, k1 = as_keypoint_arrays(result)
    assert k0.shape == (3, 2) and k0.dtype == np.float64
    assert as_keypoint_arrays(([], []))[0].shape == (0, 2)
    with pytest.raises(MethodError):
        as_keypoint_arrays(np.zeros((3, 2)))
    with pytest.raises(MethodError):
        as_keypoint_arrays((np.zeros((3, 3)), np.zeros((3, 3))))
    timed = run_matcher(lambda a, b: (np.zeros((2, 2)), np.ones((2, 2))), None, None)
    assert timed.seconds >= 0.0 and timed.keypoints1.shape == (2, 2)


def test_select_evenly_spreads_over_the_list():
    items = list(range(10))
    assert select_evenly(items, None) == items
    assert select_evenly(items, 20) == items
    assert select_evenly(items, 3) == [0, 4, 9] or select_evenly(items, 3) == [0, 5, 9]
    assert select_evenly(items, 1) == [0]
    assert select_evenly(items, 0) == []


@pytest.mark.parametrize("matcher_type", [SiftRatioMatcher, OrbRatioMatcher])
@pytest.mark.parametrize("depth", ["uint8_rgb", "uint16", "float32"])
def test_classical_baselines_accept_any_depth(matcher_type, depth):
    gray = textured_image(7)
    image = {"uint8_rgb": np.dstack([gray] * 3), "uint16": gray.astype(np.uint16) * 50 + 500,
             "float32": gray.astype(np.float32) / 255.0 * 0.2 + 0.3}[depth]
    H = sample_homography(gray.shape[1], gray.shape[0], 1, strength=0.3)
    k0, k1 = matcher_type()(image, warp_image(image, H))
    assert k0.shape == k1.shape and k0.shape[1] == 2
    assert np.sum(transfer_residuals(H, k0, k1) < 3.0) >= 20


def test_classical_baselines_survive_featureless_images():
    blank = np.zeros((64, 64), np.uint8)
    for matcher in (SiftRatioMatcher(), OrbRatioMatcher()):
        k0, k1 = matcher(blank, blank)
        assert k0.shape == (0, 2) and k1.shape == (0, 2)
