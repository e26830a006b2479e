"""Aligned cross-modal pairs turned into test cases with a known homography.

The visible image (image 0) is kept as is; the infrared image (image 1) is
warped by a random homography drawn from a generator seeded by the run seed and
the pair's key, so a pair gets the same homography whatever ``--limit`` or
ordering selects it, and on every validation run of the training loop.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Iterable, List, Optional, Union

import numpy as np

from distillmatch_core.data.splits import AlignedPair
from distillmatch_core.evaluation.image_preparation import resize_image, resize_longer_side
from distillmatch_core.evaluation.random_homography import (homography_from_parameters, sample_homography_parameters,
                                                          warp_image)
from distillmatch_core.image_io import read_image


@dataclass
class WarpedPair:
    dataset: str
    pair_id: str
    image0: np.ndarray  # (H, W[, C]) visible image at protocol resolution, original depth
    image1: np.ndarray  # (H, W[, C]) infrared image at the same resolution, warped by H_true
    H_true: np.ndarray  # (3, 3) float64, pixels of image0 -> pixels of image1


def pair_generator(seed: int, pair_key: str) -> np.random.Generator:
    """Random generator that depends only on the run seed and the pair (crc32 is stable across runs)."""
    return np.random.default_rng([int(seed), zlib.crc32(pair_key.encode("utf-8"))])


def load_aligned_images(pair: AlignedPair, size: Optional[int]):
    """Both images of an aligned pair, resized so image 0's longer side is ``size``.

    Image 1 is resized to exactly image 0's size: pixel alignment is what makes the pair
    "aligned", so a lower-resolution thermal frame is assumed to cover the same field of view.
    """
    image0, _ = resize_longer_side(read_image(pair.visible_path), size)
    image1, _ = resize_image(read_image(pair.infrared_path), image0.shape[1], image0.shape[0])
    return image0, image1


def prepare_warped_pair(pair: AlignedPair, size: Optional[int] = 640, seed: int = 0,
                        strength: float = 1.0, scale: Optional[float] = None) -> WarpedPair:
    """Read, resize and warp one aligned pair (raises ``ImageReadError`` for unreadable files).

    ``scale``: the homography's scale term is this value instead of its random draw (every other term is the
    seed's draw, unchanged): the infrared image magnified (> 1) or shrunk, as between two cameras whose fields of
    view differ."""
    image0, image1 = load_aligned_images(pair, size)
    height, width = image0.shape[:2]
    params = sample_homography_parameters(width, height, pair_generator(seed, pair.key), strength)
    if scale is not None:
        params = dataclasses.replace(params, scale=float(scale))
    H_true = homography_from_parameters(params, width, height)
    return WarpedPair(pair.set_name, pair.pair_id, image0, warp_image(image1, H_true), H_true)


def as_warped_pair(pair: Union[AlignedPair, "WarpedPair"], size: Optional[int], seed: int,
                   strength: float = 1.0, scale: Optional[float] = None) -> "WarpedPair":
    """A prepared case as is, an aligned pair prepared with these settings."""
    return pair if isinstance(pair, WarpedPair) else prepare_warped_pair(pair, size, seed, strength, scale)


def prepare_warped_pairs(pairs: Iterable[AlignedPair], size: Optional[int] = 640, seed: int = 0,
                         strength: float = 1.0) -> List[WarpedPair]:
    """All cases in memory, for callers (validation) that evaluate the same pairs repeatedly."""
    return [prepare_warped_pair(p, size, seed, strength) for p in pairs]
