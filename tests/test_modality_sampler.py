"""Tests of the cross-modal data engine: procedural modalities and the per-pair modality sampler."""
from __future__ import annotations

import warnings
from collections import Counter

import cv2
import numpy as np
import pytest

from distillmatch_core.data.modality_sampler import (
    PSEUDO_INFRARED,
    REAL_THERMAL,
    ModalitySampler,
    ModalitySamplerConfig,
    known_modalities,
    modality_label,
)
from distillmatch_core.data.procedural_modalities import PROCEDURAL_MODALITIES

# Chi-square critical values at p = 0.001 by degrees of freedom (a seeded test; this only
# guards against a systematically wrong distribution, not bad luck).
CHI2_CRITICAL_P001 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52, 6: 22.46}


def fake_generator(rgb: np.ndarray) -> np.ndarray:
    """Stands in for the V2I-GAN: a half-resolution inverted, blurred gray image (exercises resize-back)."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return 255 - cv2.GaussianBlur(small, (0, 0), 0.8)


def random_rgb(rng: np.random.Generator, h: int = 16, w: int = 16) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def only(name: str, visible_side: str = "grayscale", **kwargs) -> ModalitySamplerConfig:
    return ModalitySamplerConfig(weights={name: 1.0}, visible_side_weights={visible_side: 1.0},
                                 pseudo_infrared_generator="", **kwargs)


# ----------------------------------------------------------------------------- shapes and ranges


@pytest.mark.parametrize("name", sorted(PROCEDURAL_MODALITIES))
@pytest.mark.parametrize("shape", [(37, 53, 3), (37, 53)])
def test_procedural_modality_shape_dtype(name, shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    out = PROCEDURAL_MODALITIES[name].apply(image, rng)
    assert out.shape == (37, 53) and out.dtype == np.uint8


@pytest.mark.parametrize("name", [n for n in known_modalities()])
def test_sampler_outputs_gray_uint8_of_input_size(name):
    rng = np.random.default_rng(1)
    rgb = random_rgb(rng, 29, 41)
    thermal16 = rng.integers(20000, 24000, size=(29, 41), dtype=np.uint16)  # radiometric counts
    sampler = ModalitySampler(only(name, visible_side="sketch"), generator=fake_generator)
    for _ in range(3):
        im0, im1, lab0, lab1 = sampler.sample_pair(rgb, thermal16, rng)
        for im in (im0, im1):
            assert im.shape == (29, 41) and im.dtype == np.uint8
        assert lab0 == "visible" and lab1 == modality_label(name)
        assert lab1 in ("visible", "infrared")


def test_labels_follow_modality_kind():
    assert modality_label(REAL_THERMAL) == "infrared"
    assert modality_label(PSEUDO_INFRARED) == "infrared"
    assert modality_label("thermal_sim") == "infrared"
    assert modality_label("inverted") == "infrared"
    assert modality_label("grayscale") == "visible"
    assert modality_label("sketch") == "visible"


def test_invalid_configuration_and_inputs_raise():
    with pytest.raises(ValueError, match="unknown modality"):
        ModalitySampler(ModalitySamplerConfig(weights={"depth": 1.0}, pseudo_infrared_generator=""))
    with pytest.raises(ValueError, match=">= 0"):
        ModalitySampler(ModalitySamplerConfig(weights={"sketch": -1.0}, pseudo_infrared_generator=""))
    sampler = ModalitySampler(only(REAL_THERMAL))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sizes differ"):
        sampler.sample_pair(random_rgb(rng, 16, 16), np.zeros((8, 8), np.uint8), rng)
    with pytest.raises(ValueError, match="no modality is available"):
        sampler.sample_pair(random_rgb(rng), None, rng)  # only real thermal configured, none given


# ----------------------------------------------------------------------------- frequencies


def chi_square(counts: Counter, weights: dict, n: int) -> float:
    total = sum(weights.values())
    return sum((counts.get(k, 0) - n * w / total) ** 2 / (n * w / total) for k, w in weights.items())


def test_infrared_side_frequencies_follow_weights():
    weights = {REAL_THERMAL: 1.0, "grayscale": 1.0, "inverted": 0.5, "sketch": 0.5, "thermal_sim": 1.0,
               PSEUDO_INFRARED: 1.0}
    cfg = ModalitySamplerConfig(weights=weights)
    sampler = ModalitySampler(cfg, generator=fake_generator)
    rng = np.random.default_rng(123)
    rgb, thermal = random_rgb(rng, 8, 8), random_rgb(rng, 8, 8)[..., 0]
    n = 2000
    counts = Counter(sampler.sample_pair_detailed(rgb, thermal, rng).modality1 for _ in range(n))
    assert set(counts) == set(weights)
    assert chi_square(counts, weights, n) < CHI2_CRITICAL_P001[len(weights) - 1]


def test_frequencies_renormalise_over_available_modalities():
    """No thermal image in the sample and no generator: those two drop out of the mix."""
    weights = {REAL_THERMAL: 5.0, PSEUDO_INFRARED: 5.0, "grayscale": 1.0, "sketch": 3.0}
    with pytest.warns(RuntimeWarning, match="pseudo_infrared"):
        sampler = ModalitySampler(ModalitySamplerConfig(weights=weights, pseudo_infrared_generator=""))
    rng = np.random.default_rng(7)
    rgb = random_rgb(rng, 8, 8)
    n = 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once at construction, never per sample
        counts = Counter(sampler.sample_pair_detailed(rgb, None, rng).modality1 for _ in range(n))
    available = {"grayscale": 1.0, "sketch": 3.0}
    assert set(counts) == set(available)
    assert chi_square(counts, available, n) < CHI2_CRITICAL_P001[1]


def test_visible_side_frequencies_follow_weights():
    visible = {"grayscale": 4.0, "sketch": 1.0, "inverted": 1.0, "thermal_sim": 2.0}
    cfg = ModalitySamplerConfig(weights={REAL_THERMAL: 1.0}, visible_side_weights=visible,
                                pseudo_infrared_generator="")
    sampler = ModalitySampler(cfg)
    rng = np.random.default_rng(5)
    rgb, thermal = random_rgb(rng, 8, 8), random_rgb(rng, 8, 8)[..., 0]
    n = 2000
    samples = [sampler.sample_pair_detailed(rgb, thermal, rng) for _ in range(n)]
    counts = Counter(s.modality0 for s in samples)
    assert chi_square(counts, visible, n) < CHI2_CRITICAL_P001[len(visible) - 1]
    labels = Counter(s.label0 for s in samples)
    # grayscale + sketch are visible-like, inverted + thermal_sim infrared-like.
    assert abs(labels["visible"] / n - 5 / 8) < 0.04


def test_missing_generator_checkpoint_warns_and_skips(tmp_path):
    cfg = ModalitySamplerConfig(weights={PSEUDO_INFRARED: 1.0, "sketch": 1.0},
                                pseudo_infrared_generator=str(tmp_path / "missing.pt"))
    with pytest.warns(RuntimeWarning, match="not found"):
        sampler = ModalitySampler(cfg)
    rng = np.random.default_rng(0)
    assert {sampler.sample_pair_detailed(random_rgb(rng), None, rng).modality1 for _ in range(20)} == {"sketch"}


# ----------------------------------------------------------------------------- leak prevention


@pytest.mark.parametrize("name", ["grayscale", "inverted", REAL_THERMAL])
def test_identical_pair_is_never_produced_by_default(name):
    rng = np.random.default_rng(11)
    sampler = ModalitySampler(ModalitySamplerConfig(weights={name: 1.0}, visible_side_weights={name: 1.0},
                                                    pseudo_infrared_generator=""))
    for _ in range(20):
        rgb = random_rgb(rng)
        thermal = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # worst case: thermal equals the visible gray
        s = sampler.sample_pair_detailed(rgb, thermal, rng)
        assert not np.array_equal(s.image0, s.image1)
        assert s.modality0 != name  # the only configured choice leaked, so the fallback was used


def test_identical_pair_redraws_image0_from_the_remaining_weights():
    rng = np.random.default_rng(3)
    cfg = ModalitySamplerConfig(weights={"grayscale": 1.0}, visible_side_weights={"grayscale": 9.0, "sketch": 1.0},
                                pseudo_infrared_generator="")
    sampler = ModalitySampler(cfg)
    rgb = random_rgb(rng)
    assert {sampler.sample_pair_detailed(rgb, None, rng).modality0 for _ in range(30)} == {"sketch"}


def test_identical_pair_allowed_when_asked():
    rng = np.random.default_rng(0)
    sampler = ModalitySampler(only("grayscale", allow_identical_pair=True))
    im0, im1, _, _ = sampler.sample_pair(random_rgb(rng), None, rng)
    assert np.array_equal(im0, im1)


def test_default_config_never_leaks():
    rng = np.random.default_rng(9)
    sampler = ModalitySampler(ModalitySamplerConfig(), generator=fake_generator)
    rgb = random_rgb(rng, 12, 12)
    for _ in range(300):
        im0, im1, _, _ = sampler.sample_pair(rgb, None, rng)
        assert not np.array_equal(im0, im1)


# ----------------------------------------------------------------------------- geometry preservation

H_GT = np.array([[1.06, 0.04, 4.0],
                 [-0.03, 0.97, -3.0],
                 [2.0e-4, -1.5e-4, 1.0]])


def blob_image(h: int, w: int, x: float, y: float) -> np.ndarray:
    """(H, W, 3) uint8: a bright Gaussian blob at (x, y) on a dark, slightly tinted background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = 200.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.3 ** 2))
    rgb = np.stack([40 + blob, 50 + blob, 45 + blob], axis=2)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def locate_feature(image: np.ndarray) -> np.ndarray:
    """(x, y) of the one compact feature of a gray image, whatever its polarity or noise.

    Row/column medians remove fixed-pattern stripes; the centroid of the strongest
    deviation component is polarity-free and also finds the centre of a sketch's ring.
    """
    img = image.astype(np.float32)
    img = img - np.median(img, axis=0, keepdims=True)
    img = img - np.median(img, axis=1, keepdims=True)
    dev = np.abs(cv2.GaussianBlur(img, (0, 0), 1.5))
    mask = (dev >= 0.5 * dev.max()).astype(np.uint8)
    _, labels = cv2.connectedComponents(mask)
    peak = np.unravel_index(int(np.argmax(dev)), dev.shape)
    component = labels == labels[peak]
    ys, xs = np.nonzero(component)
    weights = dev[ys, xs]
    return np.array([np.sum(xs * weights) / weights.sum(), np.sum(ys * weights) / weights.sum()])


def project(H: np.ndarray, pt: np.ndarray) -> np.ndarray:
    p = H @ np.array([pt[0], pt[1], 1.0])
    return p[:2] / p[2]


@pytest.mark.parametrize("name", sorted(PROCEDURAL_MODALITIES) + [PSEUDO_INFRARED, REAL_THERMAL])
def test_keypoint_warped_after_sampler_lands_on_ground_truth(name):
    h, w = 96, 112
    kp = np.array([47.0, 41.0])
    rgb = blob_image(h, w, *kp)
    thermal = 255 - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # aligned: same scene point, other look
    sampler = ModalitySampler(only(name, visible_side="sketch"), generator=fake_generator)
    expected1 = project(H_GT, kp)
    for seed in range(8):
        rng = np.random.default_rng(seed)
        im0, im1, _, _ = sampler.sample_pair(rgb, thermal, rng)
        # image 0 is untouched geometrically; image 1 is warped by the ground-truth homography.
        assert np.linalg.norm(locate_feature(im0) - kp) < 0.75
        warped1 = cv2.warpPerspective(im1, H_GT, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        found = locate_feature(warped1)
        assert np.linalg.norm(found - expected1) < 0.75, (name, seed, found, expected1)
