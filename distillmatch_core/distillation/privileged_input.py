"""Training-time privileged input: image + one extra channel, for a 3DG-STFM-style teacher.

3DG-STFM's teacher sees RGB-D and teaches an RGB student. Here a network built with
``extra_input_channels=1`` gets (B, 2, H, W) inputs: the gray image, then

* ``"depth"`` (depth-supervised data, e.g. MegaDepth): the image's depth map, divided by the
  largest depth of the PAIR (the paper normalises MegaDepth's relative depths to [0, 1] per
  pair), so both images share one scale and zero (no depth / padding) stays zero.
* ``"thermal"`` (homography-pair data): the image's cross-modal counterpart, pixel-aligned with it.
  The data engine renders both images of a sample from one aligned source crop before warping
  them by independent homographies H0, H1; ``counterpart0`` is image 1's rendering warped by H0
  (the thermal side seen in image 0's geometry) and ``counterpart1`` image 0's rendering warped
  by H1 (the visible side in image 1's geometry). So each image also carries the OTHER modality,
  aligned, which closes the modality gap for the teacher the way depth closes the geometric one;
  the student never sees it. The dataset emits these keys when
  ``data.homography.aligned_counterparts`` is true (the distillation trainer turns it on).
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch


def pair_normalized_depth(depth0: torch.Tensor, depth1: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """depth0/1 (B, H, W), >= 0 -> (B, 1, H, W) each in [0, 1], one scale per pair."""
    scale = torch.maximum(depth0.flatten(1).amax(dim=1), depth1.flatten(1).amax(dim=1)).clamp(min=1e-6)
    scale = scale[:, None, None, None]
    return depth0[:, None].clamp(min=0) / scale, depth1[:, None].clamp(min=0) / scale


def extra_channels(batch: Dict[str, torch.Tensor], kind: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """The privileged channel of image 0 and image 1, (B, 1, H, W) each."""
    if kind == "depth":
        if "depth0" not in batch:
            raise KeyError("extra_input 'depth' needs depth0/depth1 in the batch (depth-supervised data such as "
                           "data.dataset: megadepth)")
        return pair_normalized_depth(batch["depth0"].float(), batch["depth1"].float())
    if kind == "thermal":
        if "counterpart0" not in batch:
            raise KeyError("extra_input 'thermal' needs counterpart0/counterpart1 in the batch "
                           "(homography-pair data with data.homography.aligned_counterparts: true)")
        return batch["counterpart0"].float(), batch["counterpart1"].float()
    raise ValueError(f"no privileged channel for extra_input {kind!r}; use 'depth' or 'thermal'")


def privileged_inputs(batch: Dict[str, torch.Tensor], kind: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(image0, image1) (B, 1, H, W) -> (B, 2, H, W) each: image, then its privileged channel."""
    extra0, extra1 = extra_channels(batch, kind)
    return torch.cat([batch["image0"], extra0], dim=1), torch.cat([batch["image1"], extra1], dim=1)
