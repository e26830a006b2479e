"""Photometric augmentation: the paper's random HSV jitter on RGB, and gray-level jitter per image.

Purely per-pixel (plus a symmetric blur), so geometry and ground truth are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class PhotometricConfig:
    hue_shift: float = 10.0  # degrees of OpenCV's 0-180 hue
    saturation_scale: float = 0.3
    value_scale: float = 0.3
    brightness: float = 0.2  # additive, fraction of 255
    contrast: float = 0.3
    gamma: float = 0.3
    noise_std: float = 6.0  # max std in gray levels
    blur_probability: float = 0.3


def hsv_jitter(rgb: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> jittered uint8 RGB (Sec. 4.1's hue/saturation/value adjustment)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        return rgb
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_shift, cfg.hue_shift)) % 180
    hsv[..., 1] *= 1 + rng.uniform(-cfg.saturation_scale, cfg.saturation_scale)
    hsv[..., 2] *= 1 + rng.uniform(-cfg.value_scale, cfg.value_scale)
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def gray_jitter(gray: np.ndarray, rng: np.random.Generator, cfg: PhotometricConfig) -> np.ndarray:
    """uint8 (H, W) -> uint8 (H, W): contrast, brightness, gamma, optional blur, gaussian noise."""
    x = gray.astype(np.float32) / 255.0
    x = (x - 0.5) * (1 + rng.uniform(-cfg.contrast, cfg.contrast)) + 0.5
    x = x + rng.uniform(-cfg.brightness, cfg.brightness)
    x = np.clip(x, 0, 1) ** np.exp(rng.uniform(-cfg.gamma, cfg.gamma))
    if rng.random() < cfg.blur_probability:
        sigma = rng.uniform(0.3, 1.5)
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x * 255.0 + rng.normal(0, rng.uniform(0, cfg.noise_std), size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)
