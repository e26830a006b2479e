"""The shared view of two cameras from their intrinsics, and matching inside regions (Matcher.match roi0/roi1)."""
import numpy as np
import pytest
import torch

from distillmatch_core.backends.torch_backend import TorchBackend
from distillmatch_core.common_field_of_view import shared_region, shared_regions
from distillmatch_core.config import preset
from distillmatch_core.matcher import Matcher
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.pixel_region import Region


def intrinsics(f: float, width: int, height: int) -> np.ndarray:
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def test_a_narrow_camera_crops_the_wide_image_only():
    wide, narrow = intrinsics(400.0, 640, 480), intrinsics(600.0, 640, 480)  # 1.5x narrower field of view
    region_wide, region_narrow = shared_regions(wide, (640, 480), narrow, (640, 480), margin=0.0)
    assert region_narrow is None
    # The narrow view is the central 2/3 of the wide image: x 106.5..532.5, y 79.8..399.2.
    assert region_wide == Region(106, 79, 428, 322)
    grown = shared_region(wide, (640, 480), narrow, (640, 480), margin=0.1)
    assert grown.x < 70 and grown.width > 500
    assert shared_region(wide, (640, 480), narrow, (640, 480), margin=0.5) is None  # clipped to the whole image


def test_equal_views_and_views_that_miss_each_other_are_not_cropped():
    K = intrinsics(500.0, 640, 480)
    assert shared_regions(K, (640, 480), K, (640, 480)) == (None, None)
    elsewhere = K.copy()
    elsewhere[0, 2] = 5000.0  # a principal point far outside: the footprint misses the image
    assert shared_region(K, (640, 480), elsewhere, (640, 480), margin=0.0) is None
    with pytest.raises(ValueError, match="margin"):
        shared_region(K, (640, 480), K, (640, 480), margin=-0.1)


@pytest.fixture(scope="module")
def tiny_matcher():
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.coarse.threshold = cfg.fine.threshold = 0.0
    return Matcher(TorchBackend.from_model(DistillMatch(cfg).eval()), size=0)


def test_matching_inside_regions_is_matching_the_crops_with_offset_keypoints(tiny_matcher):
    rng = np.random.default_rng(0)
    image0 = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    image1 = rng.integers(0, 255, (80, 112), dtype=np.uint8)
    whole = tiny_matcher.match(image0[16:80, 8:104], image1[8:72, 16:80])
    inside = tiny_matcher.match(image0, image1, roi0=Region(8, 16, 96, 64), roi1=(16, 8, 64, 64))
    assert len(whole) > 0 and len(inside) == len(whole)
    np.testing.assert_allclose(inside.keypoints0, whole.keypoints0 + [8, 16])
    np.testing.assert_allclose(inside.keypoints1, whole.keypoints1 + [16, 8])
    assert inside.image0_shape == (96, 128) and inside.image1_shape == (80, 112)


@pytest.mark.parametrize("roi", [(0, 0, 0, 10), (-1, 0, 10, 10), (120, 0, 16, 16), (0, 90, 16, 16)])
def test_a_region_outside_the_image_is_a_clear_error(tiny_matcher, roi):
    image = np.zeros((96, 128), np.uint8)
    with pytest.raises(ValueError, match=r"roi0 .* not a non-empty region inside the 128x96 image"):
        tiny_matcher.match(image, image, roi0=roi)
