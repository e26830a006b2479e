"""Attentive loss, L_att (3DG-STFM Eq. 6-7): fine-level matcher-to-matcher distillation.

A fine heatmap is the distribution, over the w x w window of image 1, of where one element of
image 0's window lands: the softmax of that element's row of the fine similarity
(``DistillMatch.forward(...)["fine_sim"]``, (M, w*w, w*w)) - LoFTR's "one centre point correlated
with all points of the other window", here for every element of the window, because DistillMatch
picks its fine match among all (a, b) element pairs, not only the centre.

Teacher and student heatmaps are read as Gaussians N(mu, sigma^2) (expectation and total variance
of the heatmap). The Gaussian KL (Eq. 6)

    log(sigma_t / sigma_s) + (sigma_s^2 + (mu_s - mu_t)^2) / (2 sigma_t^2) - 1/2

would let the optimiser lower the loss by inflating variances, so neither variance carries
gradient; what remains to optimise is Eq. 7:

    L_att = mean over valid heatmaps of ||mu_s - mu_t||^2 / (2 sigma_t^2)

an L2 pull of the student's expectation to the teacher's, weighted towards the teacher's
confident (low-variance) heatmaps. The ratio is unit-free (both sides scale with the square of
the length unit); moments are computed in window cells. ``sigma_t^2`` is floored at the
quantisation variance of one cell (1/12 per axis): a discrete heatmap cannot localise better than
its cell, and an unfloored weight 1/(2 sigma_t^2) would explode on one-hot teacher heatmaps.
"""
from __future__ import annotations

import torch

from distillmatch_core.model.fine_matching import heatmap_moments

# Variance of a uniform distribution over one window cell, both axes: 2 * 1/12 (cells^2).
CELL_QUANTISATION_VARIANCE = 2.0 / 12.0


def attentive_loss(student_mean: torch.Tensor, teacher_mean: torch.Tensor, teacher_variance: torch.Tensor,
                   min_variance: float = CELL_QUANTISATION_VARIANCE) -> torch.Tensor:
    """Eq. 7 on given Gaussians: mean of ||mu_s - mu_t||^2 / (2 max(sigma_t^2, min_variance)).

    student_mean, teacher_mean (N, 2); teacher_variance (N,). Only ``student_mean`` gets gradient.
    N = 0 gives a zero that stays connected to the student graph.
    """
    if student_mean.shape[0] == 0:
        return student_mean.sum() * 0.0
    weight = 1.0 / (2.0 * teacher_variance.detach().clamp(min=min_variance))
    sq_dist = ((student_mean - teacher_mean.detach()) ** 2).sum(dim=-1)
    return (weight * sq_dist).mean()


def fine_heatmaps(fine_sim_rows: torch.Tensor) -> torch.Tensor:
    """(..., n) rows of the fine similarity logits (row a of match m: window-0 element a against
    the n elements of window 1) -> (..., n) heatmaps over window 1."""
    return torch.softmax(fine_sim_rows.float(), dim=-1)


def fine_attentive_loss(student_fine_sim: torch.Tensor, teacher_fine_sim: torch.Tensor, valid: torch.Tensor,
                        window: int, min_variance: float = CELL_QUANTISATION_VARIANCE) -> torch.Tensor:
    """L_att over the heatmaps ``valid`` (M, n) selects.

    student_fine_sim, teacher_fine_sim: (M, n, n), n = window^2, computed on the SAME coarse matches
    (so element a of match m is the same pixel for both models). ``valid`` marks the window-0
    elements whose true correspondence lies inside window 1 (``fine_ground_truth``'s second
    output): elsewhere the teacher's heatmap has no right answer to teach.
    """
    if student_fine_sim.shape != teacher_fine_sim.shape:
        raise ValueError(f"student {tuple(student_fine_sim.shape)} and teacher {tuple(teacher_fine_sim.shape)} "
                         "fine similarities differ: both models need the same window size and coarse matches")
    if valid.shape != student_fine_sim.shape[:2]:
        raise ValueError(f"valid mask {tuple(valid.shape)} does not fit fine similarity "
                         f"{tuple(student_fine_sim.shape)}")
    with torch.no_grad():  # (K, n) rows of the K valid heatmaps
        teacher_mean, teacher_variance = heatmap_moments(fine_heatmaps(teacher_fine_sim[valid]), window)
    student_mean, _ = heatmap_moments(fine_heatmaps(student_fine_sim[valid]), window)
    return attentive_loss(student_mean, teacher_mean, teacher_variance, min_variance)
