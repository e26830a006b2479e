"""Original image -> network input and back: resize to a longer side, pad to the stride, map keypoints.

Pixel-centre convention throughout: a network pixel x covers original coordinate
(x + 0.5) * (w / new_w) - 0.5, which is exact for any resize ratio and for padding
(padding is added on the right/bottom, so it never shifts coordinates).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np

from distillmatch_core.thermal_normalization import ThermalNormalization, normalize_to_uint8_gray


@dataclass(frozen=True)
class ResizeInfo:
    original_size: Tuple[int, int]  # (H, W) of the caller's image
    resized_size: Tuple[int, int]  # (H, W) after resizing, before padding

    @property
    def scale_xy(self) -> Tuple[float, float]:
        """Original pixels per network pixel, (sx, sy)."""
        return (self.original_size[1] / self.resized_size[1], self.original_size[0] / self.resized_size[0])

    def to_original(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) network-input pixels -> (N, 2) original pixels."""
        sx, sy = self.scale_xy
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5], axis=1)

    def to_network(self, pts: np.ndarray) -> np.ndarray:
        sx, sy = self.scale_xy
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return np.stack([(pts[:, 0] + 0.5) / sx - 0.5, (pts[:, 1] + 0.5) / sy - 0.5], axis=1)

    def inside_resized(self, pts: np.ndarray) -> np.ndarray:
        """(N,) bool: network points that fall on the image, not on the padding."""
        h, w = self.resized_size
        return (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)


def fit_size(h: int, w: int, longer_side: Optional[int], box: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """New (H, W): longer side scaled to ``longer_side``, or fit inside ``box`` (H, W) keeping aspect."""
    if box is not None:
        s = min(box[0] / h, box[1] / w)
    elif longer_side:
        s = longer_side / max(h, w)
    else:
        s = 1.0
    return max(8, int(round(h * s))), max(8, int(round(w * s)))


def prepare_gray(image: np.ndarray, normalization: ThermalNormalization, new_size: Tuple[int, int]
                 ) -> Tuple[np.ndarray, ResizeInfo]:
    """Any supported image -> (new_H, new_W) float32 in [0, 1] and its ResizeInfo."""
    gray = normalize_to_uint8_gray(image, normalization)
    h, w = gray.shape
    nh, nw = new_size
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (nw, nh), interpolation=interp)
    return gray.astype(np.float32) / 255.0, ResizeInfo((h, w), (nh, nw))


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) -> (height, width), zeros on the right and bottom."""
    out = np.zeros((height, width), dtype=image.dtype)
    out[:image.shape[0], :image.shape[1]] = image
    return out


def round_up(x: int, stride: int = 8) -> int:
    return (x + stride - 1) // stride * stride


def prepare_pair(image0: np.ndarray, image1: np.ndarray, normalization: ThermalNormalization,
                 longer_side: Optional[int] = 640, fixed_size: Optional[Tuple[int, int]] = None):
    """Both images -> one (1, 1, H, W) float32 canvas each (same H, W, multiples of 8) + ResizeInfos.

    ``fixed_size`` (H, W) is a static engine's input: each image is fitted inside it, never stretched.
    """
    infos, grays = [], []
    for image in (image0, image1):
        image = np.asarray(image)
        if image.ndim < 2 or min(image.shape[:2]) == 0:
            raise ValueError(f"empty image of shape {image.shape}")
        size = fit_size(image.shape[0], image.shape[1], longer_side, fixed_size)
        gray, info = prepare_gray(image, normalization, size)
        grays.append(gray)
        infos.append(info)
    if fixed_size is not None:
        H, W = fixed_size
    else:
        H = round_up(max(g.shape[0] for g in grays))
        W = round_up(max(g.shape[1] for g in grays))
    canvases = [pad_to(g, H, W)[None, None] for g in grays]
    return canvases[0], canvases[1], infos[0], infos[1]
