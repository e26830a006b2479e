"""L_total = lambda_KD L_KD + lambda_ce L_ce + lambda_c L_c + lambda_f L_f + lambda_sub L_sub (Sec. 3.6)."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from distillmatch_core.config import LossConfig
from distillmatch_core.losses.distillation_loss import distillation_loss
from distillmatch_core.losses.matching_losses import (coarse_loss, coarse_nll, fine_expectation_loss, fine_loss,
                                                     fine_nll, subpixel_loss)
from distillmatch_core.losses.modality_loss import modality_loss
from distillmatch_core.supervision.pair_geometry import PairGeometry


def total_loss(cfg: LossConfig, outputs: Dict[str, torch.Tensor], coarse_gt_pairs, fine_gt: torch.Tensor,
               geometry: PairGeometry, modality0: Optional[torch.Tensor] = None,
               modality1: Optional[torch.Tensor] = None,
               teacher_features: Optional[torch.Tensor] = None,
               fine_target: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """``outputs`` from ``DistillMatch.forward`` (training mode) run with GT coarse pairs;
    ``coarse_gt_pairs`` = all GT coarse matches (b_ids, i_ids, j_ids). ``fine_target`` (target (M, 2),
    valid (M,)) from ``fine_expectation_target`` supervises the expectation head, whose L_f and L_sub
    are one term (LoFTR's). Returns every term and "loss"."""
    focal = dict(alpha=cfg.focal_alpha, gamma=cfg.focal_gamma)
    terms: Dict[str, torch.Tensor] = {}
    terms["coarse"] = coarse_loss(outputs["log_prob0"], outputs["log_prob1"], coarse_gt_pairs, cfg.coarse_weight_0,
                                  cfg.coarse_weight_1, pos_weight=cfg.coarse_pos_weight,
                                  neg_weight=cfg.coarse_neg_weight, **focal)
    if "fine_expectation" in outputs:
        loss = cfg.lambda_c * terms["coarse"] + _expectation_head_terms(cfg, outputs, fine_target, terms)
    else:
        loss = cfg.lambda_c * terms["coarse"] + _paper_head_terms(cfg, outputs, fine_gt, geometry, terms)
    if cfg.coarse_nll_weight:
        terms["coarse_nll"] = coarse_nll(outputs["log_prob0"], outputs["log_prob1"], coarse_gt_pairs)
        loss = loss + cfg.coarse_nll_weight * terms["coarse_nll"]
    if cfg.fine_nll_weight:
        terms["fine_nll"] = fine_nll(outputs["fine_sim"], fine_gt)
        loss = loss + cfg.fine_nll_weight * terms["fine_nll"]
    if modality0 is not None and "modality_logits0" in outputs:
        terms["modality"] = modality_loss(outputs["modality_logits0"], modality0, outputs["modality_logits1"],
                                          modality1)
        loss = loss + cfg.lambda_ce * terms["modality"]
    if teacher_features is not None:
        kd = distillation_loss(teacher_features, outputs["student_features"], cfg.kd_alpha, cfg.kd_beta,
                               cfg.kd_gamma, cfg.kl_temperature)
        terms.update(kd)
        loss = loss + cfg.lambda_kd * kd["kd"]
    terms["loss"] = loss
    return terms


def _paper_head_terms(cfg: LossConfig, outputs: Dict[str, torch.Tensor], fine_gt: torch.Tensor,
                      geometry: PairGeometry, terms: Dict[str, torch.Tensor]) -> torch.Tensor:
    """L_f (Eq. 7) and L_sub (Eq. 8) of the paper's double-softmax head, into ``terms``; their weighted sum."""
    terms["fine"] = fine_loss(outputs["fine_prob"], fine_gt, pos_weight=cfg.fine_pos_weight,
                              neg_weight=cfg.fine_neg_weight, alpha=cfg.focal_alpha, gamma=cfg.focal_gamma)
    # Only fine matches that are right up to the window quantisation: refinement cannot repair a
    # wrong (a, b) choice, and its gradient would then fight the fine matching loss for the features.
    a, b = outputs["fine_index0"], outputs["fine_index1"]
    rows = torch.arange(a.shape[0], device=a.device)
    chosen_valid = fine_gt[rows, a, b] > 0.5
    # The paper's lambda_sub multiplies an epipolar error in normalised coordinates; pixel^2
    # transfer errors are brought to that scale so the default weight stays meaningful.
    scale = cfg.subpixel_pixel_scale if geometry.error_in_pixels else 1.0
    terms["subpixel"] = subpixel_loss(geometry, outputs["b_ids"], outputs["keypoints0"], outputs["keypoints1"],
                                      chosen_valid, scale)
    return cfg.lambda_f * terms["fine"] + cfg.lambda_sub * terms["subpixel"]


def _expectation_head_terms(cfg: LossConfig, outputs: Dict[str, torch.Tensor],
                            fine_target: Optional[Tuple[torch.Tensor, torch.Tensor]],
                            terms: Dict[str, torch.Tensor]) -> torch.Tensor:
    """The expectation head's one fine term (LoFTR's; it is its own sub-pixel refinement) into ``terms``."""
    if fine_target is None:
        raise ValueError("the expectation fine head needs fine_target (fine_expectation_target)")
    target, valid = fine_target
    terms["fine"] = fine_expectation_loss(outputs["fine_expectation"], outputs["fine_variance"], target, valid)
    with torch.no_grad():  # logged: how far the refined keypoints are from the truth, in window cells
        err = (outputs["fine_expectation"][valid] - target[valid]).norm(dim=-1)
        terms["fine_error_cells"] = err.mean() if err.numel() else err.sum()
    return cfg.lambda_f * terms["fine"]
