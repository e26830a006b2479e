"""Cheap, on-the-fly image modalities computed from a visible image (the MINIMA-style data engine).

Every modality maps a uint8 image ``(H, W)`` or ``(H, W, 3)`` RGB to a uint8 ``(H, W)``
grayscale image of the SAME size, and every operation is photometric and local
(point-wise maps, symmetric filters, a down/up resize through the same ratio), so
pixel (x, y) of the output shows the scene point at pixel (x, y) of the input and
matching ground truth (homographies, depth-based correspondences) carries over exactly.

Randomised modalities draw their parameters from an explicit ``numpy.random.Generator``
so a data pipeline is reproducible from its seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from distillmatch_core.thermal_normalization import to_gray

# The two classes the matcher's CEFG modality classifier knows (config.CEFGConfig.modalities).
VISIBLE = "visible"
INFRARED = "infrared"


def visible_to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3|4) RGB -> uint8 (H, W) luma (ITU-R 601 weights)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"procedural modalities expect a uint8 image, got {image.dtype}")
    return np.ascontiguousarray(to_gray(image))


def grayscale(image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """The visible image itself, as gray: the 'unmodified' modality."""
    return visible_to_gray(image)


def inverted_intensity(image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """255 - gray: the cheapest proxy of the contrast reversals between visible and thermal images
    (sky bright vs. cold-dark, shadowed warm walls, 'black-hot' palettes)."""
    return 255 - visible_to_gray(image)


# ----------------------------------------------------------------------------- XDoG sketch


@dataclass
class XDoGRanges:
    """Parameter ranges of the eXtended Difference-of-Gaussians sketch (Winnemoeller et al. 2012).

    The sharpened image S = (1 + p) G_sigma * I - p G_{k sigma} * I is soft-thresholded:
    white where S >= epsilon, 1 + tanh(phi (S - epsilon)) below it; small ``phi`` gives
    shaded pencil strokes, large ``phi`` nearly binary line art.
    """

    sigma: Tuple[float, float] = (0.6, 1.4)
    k: float = 1.6
    p: Tuple[float, float] = (12.0, 30.0)
    # epsilon is relative to the image mean so dark and bright scenes both get lines.
    epsilon_rel: Tuple[float, float] = (0.15, 0.7)
    phi: Tuple[float, float] = (8.0, 60.0)


def xdog_sketch(image: np.ndarray, rng: np.random.Generator, ranges: XDoGRanges | None = None) -> np.ndarray:
    """uint8 image -> uint8 (H, W) sketch: dark strokes on white along intensity edges."""
    r = ranges or XDoGRanges()
    gray = visible_to_gray(image).astype(np.float32) / 255.0
    sigma = float(rng.uniform(*r.sigma))
    p = float(rng.uniform(*r.p))
    phi = float(rng.uniform(*r.phi))
    # ksize (0, 0) lets OpenCV size the kernel from sigma; symmetric kernels -> no shift.
    g1 = cv2.GaussianBlur(gray, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    g2 = cv2.GaussianBlur(gray, (0, 0), sigma * r.k, borderType=cv2.BORDER_REFLECT)
    sharpened = (1.0 + p) * g1 - p * g2
    epsilon = float(rng.uniform(*r.epsilon_rel)) * float(gray.mean())
    out = np.where(sharpened >= epsilon, 1.0, 1.0 + np.tanh(phi * (sharpened - epsilon)))
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- thermal sensor model


@dataclass
class ThermalSensorRanges:
    """Parameter ranges of the low-resolution uncooled-microbolometer model.

    The model is not radiometric (a visible image has no temperatures); it reproduces
    what makes thermal frames hard to match: soft optics, few pixels, fixed-pattern
    column/row noise, temporal noise, low contrast and polarity/gamma changes.
    """

    optics_blur_sigma: Tuple[float, float] = (0.5, 1.8)
    # Sensor-to-image scale: e.g. a 160x120 core shown at 640x480 is 4.
    downsample_factor: Tuple[float, float] = (1.5, 4.0)
    gamma: Tuple[float, float] = (0.6, 1.6)
    invert_probability: float = 0.3
    # Output occupies this fraction of the 0..255 range (thermal scenes are low contrast).
    contrast: Tuple[float, float] = (0.3, 0.8)
    column_noise_std: Tuple[float, float] = (0.0, 6.0)
    row_noise_std: Tuple[float, float] = (0.0, 2.0)
    # Per-pixel gain non-uniformity (relative std).
    gain_nonuniformity_std: Tuple[float, float] = (0.0, 0.03)
    temporal_noise_std: Tuple[float, float] = (1.0, 5.0)
    # Low-frequency shading (vignetting / narcissus), peak-to-peak in DN.
    shading_amplitude: Tuple[float, float] = (0.0, 20.0)


def thermal_sensor_model(image: np.ndarray, rng: np.random.Generator,
                         ranges: ThermalSensorRanges | None = None) -> np.ndarray:
    """uint8 image -> uint8 (H, W) simulated low-resolution thermal frame of the same size."""
    r = ranges or ThermalSensorRanges()
    gray = visible_to_gray(image).astype(np.float32) / 255.0
    h, w = gray.shape

    gray = np.power(gray, float(rng.uniform(*r.gamma)))
    if rng.random() < r.invert_probability:
        gray = 1.0 - gray
    gray = cv2.GaussianBlur(gray, (0, 0), float(rng.uniform(*r.optics_blur_sigma)), borderType=cv2.BORDER_REFLECT)

    # Down then up through the same ratio: OpenCV's half-pixel-centre convention makes the
    # round trip geometrically an identity, so only resolution is lost, never alignment.
    factor = float(rng.uniform(*r.downsample_factor))
    small_w, small_h = max(1, int(round(w / factor))), max(1, int(round(h / factor)))
    if (small_w, small_h) != (w, h):
        small = cv2.resize(gray, (small_w, small_h), interpolation=cv2.INTER_AREA)
        gray = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    contrast = float(rng.uniform(*r.contrast))
    centre = float(rng.uniform(0.5 * contrast, 1.0 - 0.5 * contrast))
    dn = (centre + (gray - float(gray.mean())) * contrast) * 255.0

    gain = 1.0 + rng.normal(0.0, float(rng.uniform(*r.gain_nonuniformity_std)), size=(h, w))
    dn = dn * gain.astype(np.float32)
    dn += rng.normal(0.0, float(rng.uniform(*r.column_noise_std)), size=(1, w)).astype(np.float32)
    dn += rng.normal(0.0, float(rng.uniform(*r.row_noise_std)), size=(h, 1)).astype(np.float32)
    dn += _radial_shading(h, w, float(rng.uniform(*r.shading_amplitude)), rng)
    dn += rng.normal(0.0, float(rng.uniform(*r.temporal_noise_std)), size=(h, w)).astype(np.float32)
    return np.clip(dn + 0.5, 0, 255).astype(np.uint8)


def _radial_shading(h: int, w: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 smooth bowl centred near the image centre, peak-to-peak ``amplitude``."""
    if amplitude <= 0:
        return np.zeros((h, w), np.float32)
    cy = h * float(rng.uniform(0.35, 0.65))
    cx = w * float(rng.uniform(0.35, 0.65))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d2 = ((yy - cy) / max(h, 1)) ** 2 + ((xx - cx) / max(w, 1)) ** 2
    d2 /= max(float(d2.max()), 1e-6)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return (sign * amplitude * (d2 - 0.5)).astype(np.float32)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class ProceduralModality:
    """A named procedural modality and the class the CEFG classifier should predict for it."""

    name: str
    label: str  # VISIBLE or INFRARED
    apply: Callable[[np.ndarray, np.random.Generator], np.ndarray] = field(compare=False)


# Labels: thermal-looking outputs are "infrared". Inverted intensity counts as infrared because
# polarity reversal is the dominant visible->thermal appearance change it imitates; a sketch is
# structure extracted from the visible image, so it stays "visible".
PROCEDURAL_MODALITIES: Dict[str, ProceduralModality] = {
    "grayscale": ProceduralModality("grayscale", VISIBLE, grayscale),
    "inverted": ProceduralModality("inverted", INFRARED, inverted_intensity),
    "sketch": ProceduralModality("sketch", VISIBLE, xdog_sketch),
    "thermal_sim": ProceduralModality("thermal_sim", INFRARED, thermal_sensor_model),
}
