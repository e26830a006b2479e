"""The part of each image that the other camera also sees, predicted from the two cameras' intrinsics.

Why: the network loses even the shared part's matches when one image shows much content the other lacks (a
thermal camera whose field of view is 1.5x narrower than the RGB camera's: dev AUC@10px 0.0 for the phase-9
model; model card). Matching inside these regions (``Matcher.match(..., roi0=, roi1=)``) shows the network what
both cameras see, as in its training pairs. Measured (training/probe_unshared_content.py, phase 9, 1.5x): AUC@10 from
0.0 to about 6: the magnification itself still costs most of the accuracy, so this mitigates, it does not fix.

The prediction assumes the cameras share their optical centre and axis: a ray that enters one camera enters the
other one at the pixel the infinite homography K_other K_this^-1 gives. A real rig's baseline and the axes'
misalignment move the footprint by a few percent of the image, which ``margin`` absorbs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from distillmatch_core.evaluation.geometric_errors import apply_homography, image_corners
from distillmatch_core.pixel_region import Region


@dataclass(frozen=True)
class SharedViewConfig:
    """Matching inside the part both cameras see (the node's ``shared_view.*`` parameters)."""

    enabled: bool = True
    margin: float = 0.05  # of the footprint's size, added on each side


def box_region(points: np.ndarray, image_size: Tuple[int, int], margin: float,
               min_crop: float = 0.9) -> Optional[Region]:
    """The bounding box of (N, 2) pixel ``points``, grown by ``margin`` of its size on each side and clipped to
    the (width, height) image; None when it covers at least ``min_crop`` of both sides (cropping would change
    nothing worth the risk) or misses the image."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    width, height = image_size
    if not np.isfinite(points).all():
        return None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    grow_x, grow_y = margin * (x1 - x0), margin * (y1 - y0)
    x0, x1 = max(0.0, x0 - grow_x), min(width - 1.0, x1 + grow_x)
    y0, y1 = max(0.0, y0 - grow_y), min(height - 1.0, y1 + grow_y)
    if x1 <= x0 or y1 <= y0:
        return None
    left, top = int(np.floor(x0)), int(np.floor(y0))
    region = Region(left, top, int(np.ceil(x1)) - left + 1, int(np.ceil(y1)) - top + 1)
    if region.width >= min_crop * width and region.height >= min_crop * height:
        return None
    return region


def footprint_region(H_other_to_this: np.ndarray, this_size: Tuple[int, int], other_size: Tuple[int, int],
                     margin: float) -> Optional[Region]:
    """The region of this image where the other image's corners land under the (3, 3) homography (``box_region``
    of that footprint); None for the whole image. this_size, other_size: (width, height)."""
    return box_region(apply_homography(H_other_to_this, image_corners(*other_size)), this_size, margin)


def shared_region(K_this: np.ndarray, this_size: Tuple[int, int], K_other: np.ndarray,
                  other_size: Tuple[int, int], margin: float = SharedViewConfig.margin) -> Optional[Region]:
    """The region of this image that the other camera sees: its footprint under the infinite homography
    K_this K_other^-1 (shared centre and axis); None for the whole image. this_size, other_size: (width, height)."""
    H = np.asarray(K_this, np.float64) @ np.linalg.inv(np.asarray(K_other, np.float64))
    return footprint_region(H, this_size, other_size, margin)


def shared_regions(K0: np.ndarray, size0: Tuple[int, int], K1: np.ndarray, size1: Tuple[int, int],
                   margin: float = SharedViewConfig.margin) -> Tuple[Optional[Region], Optional[Region]]:
    """(region of image 0, region of image 1) both cameras see; None for an image to be matched whole.

    size0, size1: (width, height). Usually one camera's whole view lies inside the other's, so only the wider
    image is cropped."""
    return shared_region(K0, size0, K1, size1, margin), shared_region(K1, size1, K0, size0, margin)
