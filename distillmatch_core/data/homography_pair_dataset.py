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

from distillmatch_core.data.field_of_view_crops import (FieldOfViewConfig, crop_resize, paired_crop_boxes,
                                                        random_crop_box)
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
    # Off by default (the paper's shared crop): a share of pairs whose images show crops of different size and
    # centre, as cameras of different field of view (data/field_of_view_crops.py).
    field_of_view: FieldOfViewConfig = field(default_factory=FieldOfViewConfig)
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
        fov = self.cfg.field_of_view
        # No draw for the field of view unless it is on: samples of configs without it are unchanged.
        paired = fov.probability > 0 and rng.uniform() < fov.probability
        if paired:
            box0, box1 = paired_crop_boxes(wid, hgt, out_w, out_h, rng, self.cfg.min_crop_fraction, fov)
            region = box0.union(box1)
            # Rendered so that image 0's crop keeps the output's resolution, as the shared crop is.
            k = out_w / box0.width
            size = (max(8, round(region.width * k)), max(8, round(region.height * k)))
        else:
            box0 = box1 = region = random_crop_box(wid, hgt, out_w, out_h, rng, self.cfg.min_crop_fraction)
            size = (out_w, out_h)
        visible = crop_resize(_to_rgb_uint8(visible), region, *size)
        if thermal is not None:
            if thermal.shape[:2] != (hgt, wid):
                thermal = cv2.resize(thermal, (wid, hgt), interpolation=cv2.INTER_AREA)
            thermal = crop_resize(thermal, region, *size)
        visible = hsv_jitter(visible, rng, self.cfg.photometric)
        img0, img1, label0, label1 = self.sampler.sample_pair(visible, thermal, rng)
        img0 = gray_jitter(img0, rng, self.cfg.photometric)
        img1 = gray_jitter(img1, rng, self.cfg.photometric)
        # crop_0to1: pixels of image 0 -> pixels of image 1 before their homographies (identity for a shared crop).
        # full0/1 keep both renderings of the whole region for the counterparts.
        full0, full1 = img0, img1
        crop_0to1 = np.eye(3)
        if paired:
            r0, r1 = box0.within(region, size), box1.within(region, size)
            img0, img1 = crop_resize(full0, r0, out_w, out_h), crop_resize(full1, r1, out_w, out_h)
            crop_0to1 = np.linalg.inv(r1.pixel_map(out_w, out_h)) @ r0.pixel_map(out_w, out_h)
        s = self.strength(int(index))
        H0 = sample_homography(out_w, out_h, rng, min(1.0, s * self.cfg.image0_strength), self.cfg.ranges)
        H1 = sample_homography(out_w, out_h, rng, min(1.0, s * self.cfg.homography_strength), self.cfg.ranges)
        ones = np.full((out_h, out_w), 255, np.uint8)
        warped0, warped1 = warp_image(img0, H0), warp_image(img1, H1)
        content0 = warp_image(ones, H0, interpolation=cv2.INTER_NEAREST) > 0
        content1 = warp_image(ones, H1, interpolation=cv2.INTER_NEAREST) > 0
        H_0to1 = H1 @ crop_0to1 @ np.linalg.inv(H0)
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
            # Each image's cross-modal counterpart: the other rendering cut at this image's crop, warped by this
            # image's homography.
            other0, other1 = full1, full0
            if paired:
                other0, other1 = crop_resize(full1, r0, out_w, out_h), crop_resize(full0, r1, out_w, out_h)
            sample["counterpart0"] = torch.from_numpy(warp_image(other0, H0).astype(np.float32) / 255.0)[None]
            sample["counterpart1"] = torch.from_numpy(warp_image(other1, H1).astype(np.float32) / 255.0)[None]
        return sample


def _to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        from distillmatch_core.thermal_normalization import normalize_to_uint8_gray
        image = normalize_to_uint8_gray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])
