"""How close a pseudo-infrared image is to the real, aligned infrared image.

Metrics per image pair (both uint8 (H, W), same size):
* ``l1``: mean absolute difference in gray levels (0..255), lower is better;
* ``ssim``: mean structural similarity (Wang et al. 2004, Gaussian window sigma 1.5), higher is better;
* ``intensity_emd``: 1-D earth mover's distance between the intensity histograms, in gray levels
  (appearance statistics regardless of alignment), lower is better;
* ``gradient_emd``: the same between Sobel gradient-magnitude histograms (texture/edge statistics:
  thermal images are smoother than visible ones), lower is better.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import cv2
import numpy as np

from distillmatch_core.data.splits import AlignedPair
from distillmatch_core.v2i_gan.training_data import read_pair_uint8, resize_short_side

METRIC_NAMES = ("l1", "ssim", "intensity_emd", "gradient_emd")
# Which direction is better per metric (for reports).
HIGHER_IS_BETTER = {"l1": False, "ssim": True, "intensity_emd": False, "gradient_emd": False}


def structural_similarity(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def histogram_emd(a: np.ndarray, b: np.ndarray, value_range: tuple, bins: int = 64) -> float:
    """1-D Wasserstein-1 distance between the value distributions of a and b, in value units."""
    ha, edges = np.histogram(a, bins=bins, range=value_range)
    hb, _ = np.histogram(b, bins=bins, range=value_range)
    cdf_a = np.cumsum(ha) / max(ha.sum(), 1)
    cdf_b = np.cumsum(hb) / max(hb.sum(), 1)
    return float(np.abs(cdf_a - cdf_b).sum() * (edges[1] - edges[0]))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    img = image.astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.sqrt(gx * gx + gy * gy)


def translation_quality(prediction: np.ndarray, target: np.ndarray) -> Dict[str, float]:
    """uint8 (H, W) prediction and real infrared -> {metric: value}."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in size")
    return {
        "l1": float(np.abs(prediction.astype(np.float32) - target.astype(np.float32)).mean()),
        "ssim": structural_similarity(prediction, target),
        "intensity_emd": histogram_emd(prediction, target, (0, 256)),
        "gradient_emd": histogram_emd(gradient_magnitude(prediction), gradient_magnitude(target), (0, 128)),
    }


def evaluate_translators(pairs: Sequence[AlignedPair], translators: Dict[str, Callable[[np.ndarray], np.ndarray]],
                         short_side: int = 120) -> Dict[str, Dict]:
    """Each translator (uint8 RGB (H, W, 3) -> uint8 (H, W)) on every pair, at one common scale.

    -> {name: {"mean": {metric: value}, "per_image": [{"key", metric...}]}}
    """
    results: Dict[str, Dict] = {name: {"per_image": []} for name in translators}
    for pair in pairs:
        visible, infrared = read_pair_uint8(pair)
        visible = resize_short_side(visible, short_side)
        infrared = resize_short_side(infrared, short_side)
        for name, translate in translators.items():
            metrics = translation_quality(translate(visible), infrared)
            results[name]["per_image"].append({"key": pair.key, **metrics})
    for name, res in results.items():
        rows: List[Dict] = res["per_image"]
        res["mean"] = {m: float(np.mean([r[m] for r in rows])) for m in METRIC_NAMES} if rows else {}
    return results


def grayscale_baseline(visible: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY)


def inverted_grayscale_baseline(visible: np.ndarray) -> np.ndarray:
    return 255 - cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY)


BASELINES = {"grayscale": grayscale_baseline, "inverted_grayscale": inverted_grayscale_baseline}


class AffineGrayscaleBaseline:
    """infrared ~ gain * gray + offset, least squares over a set of pairs (fit on train, test on dev).

    The strongest trivial baseline for L1: it captures the global brightness/contrast shift between
    the domains (the thermal frames here are mostly darker) and nothing else, so a learned translator
    must beat it to show it learned more than a global intensity map.
    """

    def __init__(self, gain: float, offset: float):
        self.gain, self.offset = float(gain), float(offset)

    @classmethod
    def fit(cls, pairs: Sequence[AlignedPair], short_side: int = 120) -> "AffineGrayscaleBaseline":
        sums = np.zeros(5)  # n, sum x, sum y, sum xx, sum xy
        for pair in pairs:
            visible, infrared = read_pair_uint8(pair)
            x = grayscale_baseline(resize_short_side(visible, short_side)).astype(np.float64).ravel()
            y = resize_short_side(infrared, short_side).astype(np.float64).ravel()
            sums += (x.size, x.sum(), y.sum(), (x * x).sum(), (x * y).sum())
        n, sx, sy, sxx, sxy = sums
        gain = (n * sxy - sx * sy) / max(n * sxx - sx * sx, 1e-9)
        return cls(gain, (sy - gain * sx) / max(n, 1))

    def __call__(self, visible: np.ndarray) -> np.ndarray:
        gray = grayscale_baseline(visible).astype(np.float32)
        return np.clip(self.gain * gray + self.offset + 0.5, 0, 255).astype(np.uint8)


class HistogramMatchedGrayscaleBaseline:
    """gray -> monotone tone curve mapping each image's own intensity CDF onto the pooled infrared
    CDF of a set of pairs (fit on train). A global remap with no spatial reasoning: a learned
    translator's histogram distances are only meaningful if they beat this."""

    def __init__(self, target_cdf: np.ndarray):
        self.target_cdf = np.asarray(target_cdf, dtype=np.float64)  # (256,)

    @classmethod
    def fit(cls, pairs: Sequence[AlignedPair], short_side: int = 120) -> "HistogramMatchedGrayscaleBaseline":
        hist = np.zeros(256)
        for pair in pairs:
            _, infrared = read_pair_uint8(pair)
            hist += np.bincount(resize_short_side(infrared, short_side).ravel(), minlength=256)
        return cls(np.cumsum(hist) / max(hist.sum(), 1))

    def __call__(self, visible: np.ndarray) -> np.ndarray:
        gray = grayscale_baseline(visible)
        cdf = np.cumsum(np.bincount(gray.ravel(), minlength=256)) / gray.size
        lut = np.searchsorted(self.target_cdf, cdf, side="left").clip(0, 255).astype(np.uint8)
        return lut[gray]
