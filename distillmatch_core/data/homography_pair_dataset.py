"""Training pairs from aligned cross-modal images (or single RGB photos) under random homographies.

The path that lets users without MegaDepth train on their own rig: each aligned
visible/thermal pair (or an RGB photo, whose infrared side the modality sampler
synthesises) is cropped, rendered into a modality pair, and both images are warped
by independent random homographies; the ground truth H_0to1 is exact.

Every sample is a pure function of (seed, global sample index), so training is
reproducible and resumes exactly without any data-loader state. Files are read
per sample: nothing loads the dataset into memory.

Sample: image0/image1 (1, H, W) float32 in [0, 1]; H_0to1 (3, 3); content0/1 (H, W) bool
(pixels that show scene, not warp borders); modality0/1 () long; index () long; with
``aligned_counterparts``, counterpart0/1 (1, H, W) float32: the other image's rendering warped
into this image's geometry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from distillmatch_core.data.modality_sampler import ModalitySampler, ModalitySamplerConfig
from distillmatch_core.data.photometric_augmentation import PhotometricConfig, gray_jitter, hsv_jitter
from distillmatch_core.data.splits import AlignedPair
from distillmatch_core.evaluation.random_homography import HomographyRanges, sample_homography, warp_image
from distillmatch_core.image_io import read_image
from distillmatch_core.training.sample_stream import epoch_position

MODALITY_CLASSES = ("visible", "infrared")


@dataclass
class HomographyPairDataConfig:
    image_size: Tuple[int, int] = (320, 240)  # (W, H), multiples of 8
    min_crop_fraction: float = 0.6  # random crop of the source, then resize: scale variety
    homography_strength: float = 1.0  # image 1: the paper's full ranges at 1.0
    image0_strength: float = 0.35  # image 0 is warped too, so neither side is always upright
    # The ranges both homographies are drawn from (at strength 1): the paper's by default.
    ranges: HomographyRanges = field(default_factory=HomographyRanges)
    curriculum_start: float = 0.6  # strength multiplier at step 0 ...
    curriculum_steps: int = 1500  # ... reaching 1.0 after this many steps
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    modality: ModalitySamplerConfig = field(default_factory=ModalitySamplerConfig)
    # Also emit counterpart0/1: each image's cross-modal counterpart, pixel-aligned with it (the
    # privileged channel of a 3DG-STFM teacher, distillation/privileged_input.py). Draws no random
    # numbers, so every other key of a sample is unchanged.
    aligned_counterparts: bool = False


@dataclass(frozen=True)
class SourceItem:
    """One source: an aligned pair (infrared given) or an RGB photo (infrared_path None)."""

    visible_path: Path
    infrared_path: Optional[Path]
    key: str


def items_from_pairs(pairs: Sequence[AlignedPair]) -> List[SourceItem]:
    return [SourceItem(p.visible_path, p.infrared_path, p.key) for p in pairs]


def items_from_photos(folder: Path) -> List[SourceItem]:
    exts = {".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp"}
    return [SourceItem(p, None, f"photo/{p.name}") for p in sorted(Path(folder).iterdir())
            if p.suffix.lower() in exts]


def random_crop_box(w: int, h: int, out_w: int, out_h: int, rng: np.random.Generator,
                    min_fraction: float) -> Tuple[int, int, int, int]:
    """A crop of the output's aspect ratio covering min_fraction..1 of the largest such crop."""
    aspect = out_w / out_h
    cw, ch = (w, int(round(w / aspect))) if w / h < aspect else (int(round(h * aspect)), h)
    f = rng.uniform(min_fraction, 1.0)
    cw, ch = max(8, int(cw * f)), max(8, int(ch * f))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return x0, y0, cw, ch


class HomographyPairDataset(Dataset):
    def __init__(self, items: Sequence[SourceItem], cfg: HomographyPairDataConfig, seed: int = 0,
                 batch_size: int = 1, sampler: Optional[ModalitySampler] = None):
        if not items:
            raise ValueError("no training sources: check the data paths / split")
        w, h = cfg.image_size
        if w % 8 or h % 8:
            raise ValueError(f"image_size {cfg.image_size} must be multiples of 8")
        self.items = list(items)
        self.cfg = cfg
        self.seed = seed
        self.batch_size = batch_size  # converts a sample index into a training step (curriculum)
        self.sampler = sampler or ModalitySampler(cfg.modality)

    def __len__(self) -> int:
        # Indices are global sample counters; any non-negative int is valid.
        return 2 ** 62

    def item_for(self, index: int) -> SourceItem:
        return self.items[epoch_position(index, len(self.items), self.seed)]

    def strength(self, index: int) -> float:
        step = index // max(1, self.batch_size)
        c = self.cfg
        ramp = min(1.0, step / max(1, c.curriculum_steps))
        return c.curriculum_start + (1.0 - c.curriculum_start) * ramp

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 11, int(index)])
        item = self.item_for(int(index))
        visible = read_image(item.visible_path)
        thermal = read_image(item.infrared_path) if item.infrared_path is not None else None
        out_w, out_h = self.cfg.image_size
        hgt, wid = visible.shape[:2]
        x0, y0, cw, ch = random_crop_box(wid, hgt, out_w, out_h, rng, self.cfg.min_crop_fraction)
        visible = _crop_resize(_to_rgb_uint8(visible), x0, y0, cw, ch, out_w, out_h)
        if thermal is not None:
            if thermal.shape[:2] != (hgt, wid):
                thermal = cv2.resize(thermal, (wid, hgt), interpolation=cv2.INTER_AREA)
            thermal = _crop_resize(thermal, x0, y0, cw, ch, out_w, out_h)
        visible = hsv_jitter(visible, rng, self.cfg.photometric)
        img0, img1, label0, label1 = self.sampler.sample_pair(visible, thermal, rng)
        img0 = gray_jitter(img0, rng, self.cfg.photometric)
        img1 = gray_jitter(img1, rng, self.cfg.photometric)
        s = self.strength(int(index))
        H0 = sample_homography(out_w, out_h, rng, min(1.0, s * self.cfg.image0_strength), self.cfg.ranges)
        H1 = sample_homography(out_w, out_h, rng, min(1.0, s * self.cfg.homography_strength), self.cfg.ranges)
        ones = np.full((out_h, out_w), 255, np.uint8)
        warped0, warped1 = warp_image(img0, H0), warp_image(img1, H1)
        content0 = warp_image(ones, H0, interpolation=cv2.INTER_NEAREST) > 0
        content1 = warp_image(ones, H1, interpolation=cv2.INTER_NEAREST) > 0
        H_0to1 = H1 @ np.linalg.inv(H0)
        sample = {
            "image0": torch.from_numpy(warped0.astype(np.float32) / 255.0)[None],
            "image1": torch.from_numpy(warped1.astype(np.float32) / 255.0)[None],
            "H_0to1": torch.from_numpy((H_0to1 / H_0to1[2, 2]).astype(np.float32)),
            "content0": torch.from_numpy(content0),
            "content1": torch.from_numpy(content1),
            "modality0": torch.tensor(MODALITY_CLASSES.index(label0)),
            "modality1": torch.tensor(MODALITY_CLASSES.index(label1)),
            "index": torch.tensor(int(index)),
        }
        if self.cfg.aligned_counterparts:
            # Before warping, img0 and img1 are pixel-aligned renderings of one crop: warping each
            # by the OTHER image's homography puts it in that image's geometry.
            sample["counterpart0"] = torch.from_numpy(warp_image(img1, H0).astype(np.float32) / 255.0)[None]
            sample["counterpart1"] = torch.from_numpy(warp_image(img0, H1).astype(np.float32) / 255.0)[None]
        return sample


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        from distillmatch_core.thermal_normalization import normalize_to_uint8_gray
        image = normalize_to_uint8_gray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _crop_resize(image: np.ndarray, x0: int, y0: int, cw: int, ch: int, out_w: int, out_h: int) -> np.ndarray:
    crop = image[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if cw > out_w else cv2.INTER_LINEAR
    return cv2.resize(crop, (out_w, out_h), interpolation=interp)
