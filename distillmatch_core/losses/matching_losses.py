"""Matching losses: coarse focal (Eq. 6), fine focal (Eq. 7), sub-pixel (Eq. 8 / transfer error).

Focal loss on a probability matrix against a {0, 1} ground truth, over matches AND
non-matches (the whole matrix), normalised separately so a few hundred positives are
not drowned by millions of negatives.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

from distillmatch_core.supervision.pair_geometry import PairGeometry


def focal_loss(prob: torch.Tensor, gt: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
               pos_weight: float = 1.0, neg_weight: float = 1.0) -> torch.Tensor:
    """prob, gt: same shape; returns pos_weight * mean_pos + neg_weight * mean_neg (0 if a set is empty).

    Dense arithmetic rather than boolean indexing: on a (B, L0, L1) matrix, masked gathers
    (nonzero + index) cost far more than one fused multiply.
    """
    p = prob.clamp(1e-6, 1 - 1e-6)
    pos = (gt > 0.5).to(p.dtype)
    neg = 1.0 - pos
    n_pos = pos.sum()
    n_neg = neg.sum()
    loss_pos = (-alpha * (1 - p) ** gamma * p.log() * pos).sum() / n_pos.clamp(min=1)
    loss_neg = (-(1 - alpha) * p ** gamma * (1 - p).log() * neg).sum() / n_neg.clamp(min=1)
    return pos_weight * loss_pos + neg_weight * loss_neg


def coarse_focal_loss(log_prob: torch.Tensor, gt_pairs: Tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                      alpha: float = 0.25, gamma: float = 2.0, pos_weight: float = 1.0,
                      neg_weight: float = 1.0) -> torch.Tensor:
    """Focal loss of one (B, L0, L1) log-probability matrix against GT matches (b, i, j).

    Same value as ``focal_loss(prob, gt)`` but positives are gathered by index and the dense
    negative term is summed once then corrected at the positives: a few passes over the
    matrix instead of a dozen, which is most of a CPU training step.
    """
    log_p = log_prob.clamp(min=math.log(1e-6), max=math.log(1 - 1e-6))
    p = log_p.exp()
    neg_terms = -(1 - alpha) * p ** gamma * torch.log1p(-p)
    b, i, j = gt_pairs
    n_pos = b.numel()
    n_neg = log_p.numel() - n_pos
    neg_sum = neg_terms.sum()
    if n_pos:
        lp_pos = log_p[b, i, j]
        p_pos = lp_pos.exp()
        loss_pos = (-alpha * (1 - p_pos) ** gamma * lp_pos).sum() / n_pos
        neg_sum = neg_sum - neg_terms[b, i, j].sum()
    else:
        loss_pos = log_p.new_zeros(())
    return pos_weight * loss_pos + neg_weight * neg_sum / max(n_neg, 1)


def coarse_loss(log_prob0: torch.Tensor, log_prob1: torch.Tensor, gt_pairs, weight0: float, weight1: float,
                **focal_kwargs) -> torch.Tensor:
    """Eq. 6 on the row-softmax P0 and column-softmax P1 (given as log-probabilities, (B, L0, L1))."""
    return (weight0 * coarse_focal_loss(log_prob0, gt_pairs, **focal_kwargs)
            + weight1 * coarse_focal_loss(log_prob1, gt_pairs, **focal_kwargs))


def coarse_nll(log_prob0: torch.Tensor, log_prob1: torch.Tensor, gt_pairs) -> torch.Tensor:
    """Mean negative log dual-softmax probability, -(log P0 + log P1) / 2, at the GT coarse matches.

    Not in the paper: an extra recipe term. With alpha = 0.25 and gamma = 2, the focal term's
    gradient at a positive with p = 0.4 is about a fifth of this term's. This term keeps the full
    gradient on every positive, to make a small CPU-budget model's coarse distribution peak.
    """
    b, i, j = gt_pairs
    if b.numel() == 0:
        return log_prob0.sum() * 0.0
    return -(log_prob0[b, i, j] + log_prob1[b, i, j]).mean() / 2


def fine_nll(fine_sim: torch.Tensor, fine_gt: torch.Tensor) -> torch.Tensor:
    """The same term for the fine windows: fine_sim (M, W2, W2) logits, fine_gt (M, W2, W2) {0, 1}.

    Every window element with a true correspondence is one classification over the other window,
    in both directions, as the double softmax P^f = softmax_rows * softmax_cols.
    """
    pos = fine_gt > 0.5
    if not pos.any():
        return fine_sim.sum() * 0.0
    log_p = torch.log_softmax(fine_sim, dim=2) + torch.log_softmax(fine_sim, dim=1)
    return -(log_p * pos).sum() / pos.sum() / 2


def fine_loss(fine_prob: torch.Tensor, fine_gt: torch.Tensor, **focal_kwargs) -> torch.Tensor:
    """Eq. 7 averaged over coarse matches whose window holds at least one true correspondence."""
    has_gt = fine_gt.flatten(1).any(dim=1)
    if not has_gt.any():
        return fine_prob.sum() * 0.0
    return focal_loss(fine_prob[has_gt], fine_gt[has_gt], **focal_kwargs)


def fine_expectation_loss(expectation: torch.Tensor, variance: torch.Tensor, target: torch.Tensor,
                          valid: torch.Tensor) -> torch.Tensor:
    """LoFTR's fine loss, for the expectation head (not the paper's Eq. 7): squared distance of the
    heatmap expectation (M, 2) to the true position (M, 2), window cells, weighted by the inverse
    standard deviation of the heatmap (M,) normalised to mean 1 and without gradient, so confident
    heatmaps count more and the model cannot lower the loss by widening them. Mean over ``valid``."""
    if not valid.any():
        return expectation.sum() * 0.0
    weight = 1.0 / variance[valid].detach().clamp(min=1e-6).sqrt()
    weight = weight / weight.mean()
    return (weight * ((expectation[valid] - target[valid]) ** 2).sum(dim=-1)).mean()


def subpixel_loss(geometry: PairGeometry, b_ids: torch.Tensor, kpts0: torch.Tensor, kpts1: torch.Tensor,
                  mask: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Eq. 8: mean geometric error of refined matches selected by ``mask`` (M,), times ``scale``."""
    if not mask.any():
        return kpts0.sum() * 0.0
    b = b_ids[mask]
    err = geometry.subpixel_error(b, kpts0[mask], kpts1[mask])
    # Robust cap at 4 px: a wrong fine match should not dominate the refinement gradient.
    return torch.minimum(err, geometry.subpixel_error_cap(b, 4.0)).mean() * scale
