"""One supervised forward pass: batch -> ground truth -> model -> every loss term.

Shared by the DistillMatch trainer and the 3DG-STFM student trainer, so both supervise
the matcher identically.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from distillmatch_core.config import LossConfig
from distillmatch_core.losses.total_loss import total_loss
from distillmatch_core.supervision.coarse_supervision import coarse_ground_truth
from distillmatch_core.supervision.fine_supervision import fine_expectation_target, fine_ground_truth
from distillmatch_core.supervision.pair_geometry import DepthGeometry, HomographyGeometry, PairGeometry


def batch_geometry(batch: Dict[str, torch.Tensor]) -> PairGeometry:
    size0 = tuple(batch["image0"].shape[-2:])
    size1 = tuple(batch["image1"].shape[-2:])
    if "H_0to1" in batch:
        return HomographyGeometry(batch["H_0to1"], size0, size1, batch.get("content0"), batch.get("content1"))
    if "depth0" in batch:
        return DepthGeometry(batch["depth0"], batch["depth1"], batch["K0"], batch["K1"], batch["T_0to1"])
    raise KeyError("batch has neither H_0to1 (homography) nor depth0/K0/T_0to1 (depth) ground truth")


def sample_fine_pairs(gt_pairs: Tuple[torch.Tensor, ...], max_pairs: int, generator: torch.Generator):
    """At most ``max_pairs`` of the GT coarse matches (the fine stage trains on true cells, as LoFTR)."""
    b_ids, i_ids, j_ids = gt_pairs
    if len(b_ids) > max_pairs:
        keep = torch.randperm(len(b_ids), generator=generator)[:max_pairs].to(b_ids.device)
        keep = keep.sort().values
        b_ids, i_ids, j_ids = b_ids[keep], i_ids[keep], j_ids[keep]
    return b_ids, i_ids, j_ids


def supervised_forward(model: torch.nn.Module, batch: Dict[str, torch.Tensor], loss_cfg: LossConfig,
                       max_fine_matches: int, step_seed: int,
                       teacher_features: Optional[torch.Tensor] = None,
                       model_inputs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                       ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """-> (loss terms incl. "loss", model outputs, supervision tensors).

    ``model_inputs`` replaces (image0, image1) as network input (e.g. with an extra depth channel).
    """
    image0, image1 = batch["image0"], batch["image1"]
    b, _, h, w = image0.shape
    grid = (h // 8, w // 8)
    geometry = batch_geometry(batch)
    with torch.no_grad():
        gt_pairs = coarse_ground_truth(geometry, b, grid, grid, image0.device)
        gen = torch.Generator().manual_seed(int(step_seed))
        pairs = sample_fine_pairs(gt_pairs, max_fine_matches, gen)
        fine_cfg = _unwrap(model).cfg.fine
        # fine_gt also serves the paper head's loss and 3DG-STFM's attentive loss (fine_valid); the
        # expectation head's target is computed only for that head.
        fine_gt, fine_valid = fine_ground_truth(geometry, *pairs, grid[1], grid[1], fine_cfg.window_size)
        fine_target = (fine_expectation_target(geometry, *pairs, grid[1], grid[1], fine_cfg.window_size)
                       if fine_cfg.head == "expectation" else None)
    inputs = model_inputs if model_inputs is not None else (image0, image1)
    outputs = model(*inputs, coarse_pairs=pairs)
    terms = total_loss(loss_cfg, outputs, gt_pairs, fine_gt, geometry,
                       batch.get("modality0"), batch.get("modality1"), teacher_features, fine_target)
    supervision = {"gt_pairs": gt_pairs, "fine_gt": fine_gt, "fine_valid": fine_valid,
                   "num_gt_matches": torch.tensor(len(gt_pairs[0]))}
    return terms, outputs, supervision


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
