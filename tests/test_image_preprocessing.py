"""Resize + pad to the network and back is exact; static inputs are fitted, never stretched."""
import numpy as np
import pytest

from distillmatch_core.image_preprocessing import ResizeInfo, prepare_pair
from distillmatch_core.thermal_normalization import ThermalNormalization, normalize_to_uint8_gray


@pytest.mark.parametrize("size,shape", [((480, 640), (480, 640)), ((512, 640), (300, 375)), ((243, 317), (97, 131))])
def test_mapping_roundtrip_is_exact(size, shape):
    info = ResizeInfo(original_size=size, resized_size=shape)
    pts = np.random.default_rng(0).uniform(0, 1, (50, 2)) * [size[1] - 1, size[0] - 1]
    back = info.to_original(info.to_network(pts))
    assert np.allclose(back, pts, atol=1e-9)


def test_coarse_cell_maps_to_the_same_scene_point_under_resize_and_pad():
    # A bright dot at a known original location must land where the mapping says after resize+pad.
    h, w = 512, 640
    img = np.zeros((h, w), np.uint16)
    img[300:304, 200:204] = 60000  # centre (201.5, 301.5)
    img0 = np.zeros((480, 640), np.uint8)
    c0, c1, i0, i1 = prepare_pair(img0, img, ThermalNormalization(), longer_side=320)
    assert c0.shape == c1.shape and c0.shape[-1] % 8 == 0 and c0.shape[-2] % 8 == 0
    net = c1[0, 0]
    ys, xs = np.nonzero(net > 0.5 * net.max())
    centre_net = np.array([[xs.mean(), ys.mean()]])
    assert np.allclose(i1.to_original(centre_net), [[201.5, 301.5]], atol=0.6)
    # Padding is on the right/bottom only: nothing beyond the resized image.
    rh, rw = i1.resized_size
    assert np.all(c1[0, 0, rh:, :] == 0) and np.all(c1[0, 0, :, rw:] == 0)


def test_static_input_is_fitted_not_stretched():
    img = np.zeros((300, 900), np.uint8)
    c0, c1, i0, _ = prepare_pair(img, img, ThermalNormalization(), fixed_size=(240, 320))
    assert c0.shape == (1, 1, 240, 320)
    sx, sy = i0.scale_xy
    assert abs(sx - sy) / sx < 0.02  # aspect preserved


def test_thermal_normalisation_uses_percentiles_not_full_range():
    rng = np.random.default_rng(0)
    counts = (7000 + rng.normal(0, 200, (64, 64))).astype(np.uint16)  # a narrow band of 16-bit counts
    out = normalize_to_uint8_gray(counts)
    assert out.dtype == np.uint8
    assert out.max() - out.min() > 200  # stretched, not ~27 grey levels as counts/257 would give
    assert np.ptp(counts.astype(float) / 257) < 30


def test_normalisation_rejects_empty_and_odd_inputs():
    with pytest.raises(ValueError):
        normalize_to_uint8_gray(np.zeros((0, 10), np.uint8))
    with pytest.raises(ValueError):
        normalize_to_uint8_gray(np.zeros((4, 4, 2), np.uint8))
    out = normalize_to_uint8_gray(np.full((8, 8), np.nan, np.float32))
    assert out.dtype == np.uint8
