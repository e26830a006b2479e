"""Side-by-side match images with lines coloured by correctness (green correct, red wrong)."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from distillmatch_core.thermal_normalization import normalize_to_uint8_gray

CORRECT_RGB = (40, 220, 60)
WRONG_RGB = (235, 40, 40)


def render_matches(image0: np.ndarray, image1: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray,
                   correct: np.ndarray, max_lines: int = 300, seed: int = 0,
                   caption: Optional[str] = None) -> np.ndarray:
    """-> (max(H0, H1), W0 + W1, 3) uint8 RGB canvas.

    Images of any depth are shown as normalised grey so the coloured lines stand out;
    at most ``max_lines`` matches (a seeded random subset) are drawn to stay readable.
    """
    gray0, gray1 = normalize_to_uint8_gray(image0), normalize_to_uint8_gray(image1)
    height = max(gray0.shape[0], gray1.shape[0])
    width0 = gray0.shape[1]
    canvas = np.zeros((height, width0 + gray1.shape[1]), dtype=np.uint8)
    canvas[:gray0.shape[0], :width0] = gray0
    canvas[:gray1.shape[0], width0:] = gray1
    canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2RGB)

    keypoints0 = np.asarray(keypoints0, dtype=np.float64).reshape(-1, 2)
    keypoints1 = np.asarray(keypoints1, dtype=np.float64).reshape(-1, 2)
    correct = np.asarray(correct, dtype=bool).reshape(-1)
    order = np.arange(len(keypoints0))
    if len(order) > max_lines:
        order = np.sort(np.random.default_rng(seed).choice(order, max_lines, replace=False))
    for index in order:
        start = (int(round(keypoints0[index, 0])), int(round(keypoints0[index, 1])))
        end = (int(round(keypoints1[index, 0])) + width0, int(round(keypoints1[index, 1])))
        colour = CORRECT_RGB if correct[index] else WRONG_RGB
        cv2.line(canvas, start, end, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, start, 2, colour, -1, cv2.LINE_AA)
        cv2.circle(canvas, end, 2, colour, -1, cv2.LINE_AA)
    if caption:
        # A dark box under the text keeps it legible on bright and dark images alike.
        (text_width, text_height), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(canvas, (0, 0), (text_width + 12, text_height + baseline + 10), (0, 0, 0), -1)
        cv2.putText(canvas, caption, (6, text_height + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas
