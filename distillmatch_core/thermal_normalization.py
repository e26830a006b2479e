"""Robust intensity normalisation of arbitrary-depth images to uint8 grayscale.

Radiometric thermal frames are 16-bit counts that occupy a narrow band of the
range (a 65535 linear scale leaves them nearly black), so they are stretched
between low/high percentiles instead. 8-bit images pass through unchanged
unless CLAHE is requested.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class ThermalNormalization:
    low_percentile: float = 1.0
    high_percentile: float = 99.0
    clahe: bool = False
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: int = 8

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return normalize_to_uint8_gray(image, self)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) with C in {1, 3, 4} -> (H, W), same dtype. Colour order assumed RGB(A)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"unsupported image shape {image.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    if image.shape[2] == 1:
        return image[..., 0]
    rgb = image[..., :3].astype(np.float32)
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(gray), info.min, info.max).astype(image.dtype)
    return gray.astype(image.dtype)


def percentile_stretch(gray: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """(H, W) any numeric dtype -> (H, W) uint8 via a percentile clip; non-finite pixels become 0."""
    data = gray.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(gray.shape, dtype=np.uint8)
    lo, hi = np.percentile(data[finite], [low, high])
    if hi - lo < 1e-6:
        hi = lo + 1.0
    out = (np.where(finite, data, lo) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8)


def normalize_to_uint8_gray(image: np.ndarray, cfg: ThermalNormalization | None = None) -> np.ndarray:
    """Any supported image (uint8/uint16/float, 1/3/4 channels) -> (H, W) uint8 grayscale."""
    cfg = cfg or ThermalNormalization()
    image = np.asarray(image)
    if image.size == 0 or min(image.shape[:2]) == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"unsupported image dtype {image.dtype}")
    gray = to_gray(image)
    if gray.dtype == np.uint8:
        out = gray
    else:
        out = percentile_stretch(gray, cfg.low_percentile, cfg.high_percentile)
    if cfg.clahe:
        clahe = cv2.createCLAHE(clipLimit=cfg.clahe_clip_limit, tileGridSize=(cfg.clahe_tile_grid,) * 2)
        out = clahe.apply(out)
    return np.ascontiguousarray(out)
