"""Where each training image's crop lies in the source image.

By default both images show one crop (the paper's setup). A ``FieldOfViewConfig`` gives a share of the samples
two crops of different size and centre, as two cameras whose fields of view and optical axes differ see a scene:
each image then holds content the other lacks. Why: phase 9, trained on shared crops only, loses even the matches
of the shared part when one image shows content the other does not (a thermal camera 1.5x narrower than the RGB
one: dev AUC@10px 0.0; see the model card), and training on relative scale alone did not teach it otherwise.

Boxes are ``pixel_region.Region``s; their ``pixel_map`` follows cv2.resize's pixel-centre convention, so ground truth
built from it is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from distillmatch_core.pixel_region import Region


@dataclass
class FieldOfViewConfig:
    probability: float = 0.0  # share of samples whose images get their own crops; 0 = one shared crop (paper)
    ratio_max: float = 1.7  # image 1's crop side / image 0's is log-uniform in [1 / ratio_max, ratio_max]
    centre_shift: float = 0.25  # the narrower crop's centre: uniform within +-this fraction of the wider crop

    def __post_init__(self):
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"field_of_view.probability must be in [0, 1], got {self.probability}")
        if self.ratio_max < 1.0:
            raise ValueError(f"field_of_view.ratio_max must be >= 1, got {self.ratio_max}")
        if self.centre_shift < 0.0:
            raise ValueError(f"field_of_view.centre_shift must be >= 0, got {self.centre_shift}")


def random_crop_box(w: int, h: int, out_w: int, out_h: int, rng: np.random.Generator,
                    min_fraction: float) -> Region:
    """A crop of the output's aspect ratio covering min_fraction..1 of the largest such crop."""
    aspect = out_w / out_h
    cw, ch = (w, int(round(w / aspect))) if w / h < aspect else (int(round(h * aspect)), h)
    f = rng.uniform(min_fraction, 1.0)
    cw, ch = max(8, int(cw * f)), max(8, int(ch * f))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return Region(x0, y0, cw, ch)


def paired_crop_boxes(w: int, h: int, out_w: int, out_h: int, rng: np.random.Generator, min_fraction: float,
                      cfg: FieldOfViewConfig) -> Tuple[Region, Region]:
    """(box0, box1) in a (w, h) source: the wider camera's crop as ``random_crop_box`` draws it, the narrower one's
    its side divided by a ratio log-uniform in [1, ratio_max], centred within +-centre_shift of the wider crop's
    size from its centre (kept inside the source). Which image is the wider one is a fair coin (the ratio's sign)."""
    outer = random_crop_box(w, h, out_w, out_h, rng, min_fraction)
    log_r = float(rng.uniform(-np.log(cfg.ratio_max), np.log(cfg.ratio_max)))
    shrink = float(np.exp(-abs(log_r)))
    iw, ih = max(8, int(round(outer.width * shrink))), max(8, int(round(outer.height * shrink)))
    shift = rng.uniform(-cfg.centre_shift, cfg.centre_shift, size=2)
    cx, cy = outer.x + outer.width * (0.5 + shift[0]), outer.y + outer.height * (0.5 + shift[1])
    inner = Region(int(np.clip(round(cx - iw / 2), 0, w - iw)), int(np.clip(round(cy - ih / 2), 0, h - ih)), iw, ih)
    return (inner, outer) if log_r > 0 else (outer, inner)  # log_r > 0: image 1 sees the wider field


def crop_resize(image: np.ndarray, box: Region, out_w: int, out_h: int) -> np.ndarray:
    interp = cv2.INTER_AREA if box.width > out_w else cv2.INTER_LINEAR
    return cv2.resize(box.cut(image), (out_w, out_h), interpolation=interp)
