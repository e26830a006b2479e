"""The paper's random homography (Sec. 4.3), shared by evaluation and training augmentation.

A homography is composed in normalised coordinates centred on the image:
``u = (x - c) / s`` with ``c`` the image centre and ``s`` half the LONGER side.
One isotropic scale ``s`` (not W/2 and H/2 separately) keeps rotations rigid on
non-square images, and it is what makes the paper's perspective range
(±0.003) a gentle keystone rather than a fold: in pixels the same coefficient
would be ~300 times stronger on a 640 px image.

In normalised coordinates ``H_n = P · T · R · Sh · S`` (scale, then shear,
rotation, translation about the centre, then perspective), and the pixel-space
matrix is ``N⁻¹ · H_n · N``. It maps pixel coordinates of the original image
to pixel coordinates of the warped image, i.e. ``cv2.warpPerspective(img, H)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import cv2
import numpy as np

SeedLike = Union[int, np.random.Generator, None]


@dataclass(frozen=True)
class HomographyRanges:
    """Half-widths of the uniform ranges at ``strength = 1`` (paper defaults)."""

    translation_fraction: float = 0.10  # of the image width (x) and height (y)
    rotation_deg: float = 20.0
    scale_delta: float = 0.20  # scale in [1 - d, 1 + d]; with scale_log_uniform in [1 / (1 + d), 1 + d]
    shear: float = 0.10  # shear angle in radians (x-shear, tan applied)
    perspective: float = 0.003  # last-row coefficients, normalised coordinates
    # Not the paper's (False reproduces it): the scale's log uniform in +-log(1 + scale_delta), so magnifying by
    # a factor is as likely as shrinking by it. For wide ranges (a thermal camera whose field of view is much
    # narrower or wider than the visible one's), where [1 - d, 1 + d] would be lopsided or reach zero.
    scale_log_uniform: bool = False


@dataclass(frozen=True)
class HomographyParameters:
    """One draw of the sampler, in the units of ``HomographyRanges``."""

    translation_x: float  # pixels
    translation_y: float  # pixels
    rotation_deg: float
    scale: float
    shear: float  # radians
    perspective_x: float
    perspective_y: float


def sample_homography_parameters(width: int, height: int, rng: SeedLike = None, strength: float = 1.0,
                                 ranges: Optional[HomographyRanges] = None) -> HomographyParameters:
    """Uniform draw of every parameter; ``strength`` in [0, 1] scales all half-widths."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    ranges = ranges or HomographyRanges()
    rng = np.random.default_rng(rng)

    def uniform(half_width: float) -> float:
        return float(rng.uniform(-half_width, half_width)) * strength

    # Fixed draw order: reproducibility across versions depends on it.
    return HomographyParameters(
        translation_x=uniform(ranges.translation_fraction) * width,
        translation_y=uniform(ranges.translation_fraction) * height,
        rotation_deg=uniform(ranges.rotation_deg),
        scale=(math.exp(uniform(math.log1p(ranges.scale_delta))) if ranges.scale_log_uniform
               else 1.0 + uniform(ranges.scale_delta)),
        shear=uniform(ranges.shear),
        perspective_x=uniform(ranges.perspective),
        perspective_y=uniform(ranges.perspective),
    )


def normalization_matrix(width: int, height: int) -> np.ndarray:
    """(3, 3) pixel -> centred coordinates divided by half the longer side."""
    half = max(width, height) / 2.0
    return np.array([[1.0 / half, 0.0, -width / 2.0 / half],
                     [0.0, 1.0 / half, -height / 2.0 / half],
                     [0.0, 0.0, 1.0]])


def homography_from_parameters(params: HomographyParameters, width: int, height: int) -> np.ndarray:
    """(3, 3) float64 pixel-space homography original -> warped, normalised so H[2, 2] = 1."""
    half = max(width, height) / 2.0
    angle = math.radians(params.rotation_deg)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    scale = np.diag([params.scale, params.scale, 1.0])
    shear = np.array([[1.0, math.tan(params.shear), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rotation = np.array([[cos_a, -sin_a, 0.0], [sin_a, cos_a, 0.0], [0.0, 0.0, 1.0]])
    translation = np.array([[1.0, 0.0, params.translation_x / half],
                            [0.0, 1.0, params.translation_y / half],
                            [0.0, 0.0, 1.0]])
    perspective = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0],
                            [params.perspective_x, params.perspective_y, 1.0]])
    normalized = perspective @ translation @ rotation @ shear @ scale
    to_normalized = normalization_matrix(width, height)
    H = np.linalg.inv(to_normalized) @ normalized @ to_normalized
    return H / H[2, 2]


def sample_homography(width: int, height: int, rng: SeedLike = None, strength: float = 1.0,
                      ranges: Optional[HomographyRanges] = None) -> np.ndarray:
    """(3, 3) float64 homography mapping pixels of the original image to the warped image.

    ``rng``: a ``np.random.Generator`` (advanced by the draw) or an int seed.
    ``strength`` in [0, 1] scales every range (0 gives the identity), for curriculum augmentation.
    """
    params = sample_homography_parameters(width, height, rng, strength, ranges)
    return homography_from_parameters(params, width, height)


def warp_image(image: np.ndarray, H: np.ndarray, output_size: Optional[Tuple[int, int]] = None,
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp (H, W[, C]) image with homography ``H``; output (height, width) defaults to the input's.

    Pixels that come from outside the original are 0. Works for uint8, uint16 and float32.
    """
    height, width = image.shape[:2] if output_size is None else output_size
    warped = cv2.warpPerspective(image, np.asarray(H, dtype=np.float64), (int(width), int(height)),
                                 flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # OpenCV drops a trailing singleton channel; keep the caller's layout.
    if image.ndim == 3 and warped.ndim == 2:
        warped = warped[..., None]
    return warped
