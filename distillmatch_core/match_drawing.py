"""Drawing correspondences: side-by-side canvases, match lines, colour maps and checkerboard blends.

One implementation serves the CLI (colour by confidence), evaluation (correct / wrong), the
ROS debug image and bag-eval's video (inlier / outlier).
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from distillmatch_core.thermal_normalization import normalize_to_uint8_gray

GOOD_RGB = (40, 220, 60)
BAD_RGB = (235, 40, 40)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any supported image -> (H, W, 3) uint8; colour kept for 8-bit RGB, others normalised to grey."""
    image = np.asarray(image)
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] >= 3:
        return np.ascontiguousarray(image[..., :3])
    gray = normalize_to_uint8_gray(image)
    return np.repeat(gray[..., None], 3, axis=2)


def side_by_side(image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, int]:
    """-> (max(H0, H1), W0 + W1, 3) uint8 RGB canvas and the x offset of image1."""
    left, right = as_rgb_uint8(image0), as_rgb_uint8(image1)
    canvas = np.zeros((max(left.shape[0], right.shape[0]), left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1]:] = right
    return canvas, left.shape[1]


def binary_colors(mask: np.ndarray, good=GOOD_RGB, bad=BAD_RGB) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool).reshape(-1)
    return np.where(mask[:, None], np.array(good, np.uint8)[None], np.array(bad, np.uint8)[None])


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """(N,) in [0, 1] -> (N, 3) uint8 RGB along the turbo colour map (blue low, red high)."""
    c = np.clip(np.asarray(confidence, dtype=np.float32).reshape(-1), 0, 1)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]
    return lut[(c * 255).astype(np.int64)]


def draw_matches(canvas: np.ndarray, offset: int, keypoints0: np.ndarray, keypoints1: np.ndarray,
                 colors: np.ndarray, max_lines: int = 300, seed: int = 0) -> np.ndarray:
    """Draw at most ``max_lines`` (a seeded random subset) lines on ``canvas`` in place and return it."""
    k0 = np.asarray(keypoints0, dtype=np.float64).reshape(-1, 2)
    k1 = np.asarray(keypoints1, dtype=np.float64).reshape(-1, 2)
    order = np.arange(len(k0))
    if len(order) > max_lines:
        order = np.sort(np.random.default_rng(seed).choice(order, max_lines, replace=False))
    for i in order:
        color = tuple(int(v) for v in colors[i])
        p0 = (int(round(k0[i, 0])), int(round(k0[i, 1])))
        p1 = (int(round(k1[i, 0])) + offset, int(round(k1[i, 1])))
        cv2.line(canvas, p0, p1, color, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, p1, 2, color, -1, cv2.LINE_AA)
    return canvas


def put_caption(canvas: np.ndarray, text: str, origin: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """White text on a dark box (legible on bright and dark images alike), in place."""
    if not text:
        return canvas
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    x, y = origin
    cv2.rectangle(canvas, (x, y), (x + w + 12, y + h + base + 10), (0, 0, 0), -1)
    cv2.putText(canvas, text, (x + 6, y + h + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def render_matches(image0: np.ndarray, image1: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray,
                   colors: np.ndarray, max_lines: int = 300, seed: int = 0, caption: Optional[str] = None
                   ) -> np.ndarray:
    canvas, offset = side_by_side(image0, image1)
    draw_matches(canvas, offset, keypoints0, keypoints1, colors, max_lines, seed)
    return put_caption(canvas, caption or "")


def checkerboard_blend(image0: np.ndarray, image1: np.ndarray, H_1to0: np.ndarray, tiles: int = 8) -> np.ndarray:
    """Image1 warped into image0's plane by ``H_1to0``, interleaved with image0 in a checkerboard.

    Edges that continue across tile borders show a correct alignment at a glance.
    """
    base = as_rgb_uint8(image0)
    h, w = base.shape[:2]
    warped = cv2.warpPerspective(as_rgb_uint8(image1), np.asarray(H_1to0, np.float64), (w, h))
    tile = max(8, max(h, w) // tiles)
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // tile + xx // tile) % 2).astype(bool)
    out = base.copy()
    out[board] = warped[board]
    return out
