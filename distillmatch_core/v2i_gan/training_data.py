"""Training batches for V2I-GAN from the aligned RGB-thermal pairs (data.splits).

The data set is small (a few hundred pairs), so every pair is decoded and resized once into
memory; batches are random crops drawn with an explicit numpy Generator. In unpaired (cycle)
mode the infrared crop comes from an independently drawn pair, so the cycle variant really
learns without correspondence, as it would on unaligned data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from distillmatch_core.data.splits import AlignedPair, load_split
from distillmatch_core.image_io import read_image
from distillmatch_core.thermal_normalization import normalize_to_uint8_gray
from distillmatch_core.v2i_gan.config import V2IGanDataConfig


@dataclass
class ResizedPair:
    key: str
    visible: np.ndarray  # uint8 (h, w, 3) RGB
    infrared: np.ndarray  # uint8 (h, w)


def read_pair_uint8(pair: AlignedPair) -> Tuple[np.ndarray, np.ndarray]:
    """-> (visible uint8 (H, W, 3) RGB, infrared uint8 (H, W)); infrared resized to the visible size."""
    visible = read_image(pair.visible_path)
    if visible.dtype != np.uint8:
        visible = normalize_to_uint8_gray(visible)
    if visible.ndim == 2:
        visible = np.repeat(visible[..., None], 3, axis=2)
    infrared = normalize_to_uint8_gray(read_image(pair.infrared_path))
    if infrared.shape != visible.shape[:2]:
        infrared = cv2.resize(infrared, (visible.shape[1], visible.shape[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(visible), infrared


def resize_short_side(image: np.ndarray, short_side: int, min_hw: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """Resize so min(H, W) == short_side and H >= min_hw[0], W >= min_hw[1] (aspect kept)."""
    h, w = image.shape[:2]
    scale = max(short_side / min(h, w), min_hw[0] / h, min_hw[1] / w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def load_resized_pairs(pairs: Sequence[AlignedPair], short_side: int,
                       min_hw: Tuple[int, int] = (0, 0)) -> List[ResizedPair]:
    out = []
    for pair in pairs:
        visible, infrared = read_pair_uint8(pair)
        out.append(ResizedPair(pair.key, resize_short_side(visible, short_side, min_hw),
                               resize_short_side(infrared, short_side, min_hw)))
    return out


class RandomCropBatches:
    """Random (visible, infrared) crop batches: visible (B, 3, h, w), infrared (B, 1, h, w) in [-1, 1]."""

    def __init__(self, pairs: List[ResizedPair], crop_hw: Tuple[int, int], horizontal_flip: bool = True):
        if not pairs:
            raise ValueError("no training pairs")
        self.pairs = pairs
        self.crop_hw = tuple(crop_hw)
        self.horizontal_flip = horizontal_flip
        for p in pairs:
            if p.visible.shape[0] < crop_hw[0] or p.visible.shape[1] < crop_hw[1]:
                raise ValueError(f"{p.key}: image {p.visible.shape[:2]} is smaller than the crop {crop_hw}")

    @classmethod
    def from_config(cls, cfg: V2IGanDataConfig, source: Optional[Path] = None) -> "RandomCropBatches":
        pairs = load_split(cfg.split, Path(cfg.source) if cfg.source else source)
        if cfg.max_pairs:
            pairs = pairs[: cfg.max_pairs]
        return cls(load_resized_pairs(pairs, cfg.short_side, tuple(cfg.crop_size)), tuple(cfg.crop_size),
                   cfg.horizontal_flip)

    def _crop(self, image: np.ndarray, flip: bool, corner: Tuple[int, int]) -> np.ndarray:
        y, x = corner
        ch, cw = self.crop_hw
        crop = image[y:y + ch, x:x + cw]
        return crop[:, ::-1] if flip else crop

    def _random_corner(self, image: np.ndarray, rng: np.random.Generator) -> Tuple[int, int]:
        return (int(rng.integers(0, image.shape[0] - self.crop_hw[0] + 1)),
                int(rng.integers(0, image.shape[1] - self.crop_hw[1] + 1)))

    def batch(self, batch_size: int, rng: np.random.Generator, paired: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        visible, infrared = [], []
        for _ in range(batch_size):
            vis_pair = self.pairs[int(rng.integers(len(self.pairs)))]
            ir_pair = vis_pair if paired else self.pairs[int(rng.integers(len(self.pairs)))]
            corner = self._random_corner(vis_pair.visible, rng)
            flip = self.horizontal_flip and bool(rng.random() < 0.5)
            visible.append(self._crop(vis_pair.visible, flip, corner))
            if not paired:
                corner = self._random_corner(ir_pair.infrared, rng)
                flip = self.horizontal_flip and bool(rng.random() < 0.5)
            infrared.append(self._crop(ir_pair.infrared, flip, corner))
        vis = torch.from_numpy(np.ascontiguousarray(np.stack(visible))).permute(0, 3, 1, 2).float() / 127.5 - 1
        ir = torch.from_numpy(np.ascontiguousarray(np.stack(infrared)))[:, None].float() / 127.5 - 1
        return vis, ir
