"""Mutual Query Divergence, L_MQD (3DG-STFM Eq. 4-5): coarse-level matcher-to-matcher distillation.

The coarse similarity S (B, L0, L1) is not one distribution but 2*hw query distributions: row i
is "where does cell i of image 0 go in image 1" and column j the reverse query. Relations between
entries of different rows or columns mean nothing for matching, so each query is distilled on its
own, never the flattened matrix:

    L_MQD = T^2 / n * sum_q w_q * KL( softmax(o_T[q] / T) || softmax(o_S[q] / T) ),  n = B * (L0 + L1)

* o = the similarity logits a model feeds its softmax (``DistillMatch.forward(...)["sim_matrix"]``,
  already divided by the model's own coarse temperature); teacher and student may have different
  coarse temperatures and widths, only the grid must be shared.
* KL direction: KL(teacher || student), the response-based KD of Hinton et al. that the paper says
  it builds on. Eq. 4 as printed, -sum p_S log p_T, equals KL(student || teacher) + H(student): it
  is not zero when the two models agree, and its entropy term rewards a sharper student whatever
  the teacher says. The KL is zero exactly at agreement.
* T^2 keeps the gradient magnitude independent of T (Hinton et al.), so lambda_MQD need not be
  re-tuned when T changes. The paper does not print T; its authors' released code uses T = 2.
* w_q is the focal term of Eq. 2 on the student's standard (T = 1) query probability p_S, per query:
  a query with a ground-truth match (y = 1) gets alpha * (1 - p_S(match))^gamma, one without
  (y = 0: occluded / outside the other image) gets (1 - alpha) * (max p_S)^gamma, the confidence the
  student puts on its best wrong answer. Weighting whole queries (not single entries) keeps each
  term a true divergence: zero exactly when the two query distributions agree, never negative.
  The weights are constants (no gradient): they say where to learn, they are not an objective.
* The teacher is detached here whatever the caller does: gradient reaches the student only.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

GtPairs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (b_ids, i_ids, j_ids), each (M,)


def query_divergences(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """KL(teacher || student) of every softened query distribution.

    logits (B, L0, L1) -> row queries (B, L0) (image 0 -> 1), column queries (B, L1) (image 1 -> 0).
    """
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    per_query = []
    for dim in (2, 1):
        log_ps = F.log_softmax(s, dim=dim)
        log_pt = F.log_softmax(t, dim=dim)
        per_query.append((log_pt.exp() * (log_pt - log_ps)).sum(dim=dim))
    return per_query[0], per_query[1]


@torch.no_grad()
def query_focal_weights(student_logits: torch.Tensor, gt_pairs: GtPairs, alpha: float, gamma: float,
                        student_log_probs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal weight of every row query (B, L0) and column query (B, L1); see the module docstring.

    ``student_log_probs`` = the student's own (row, column) log-softmax at T = 1, (B, L0, L1) each,
    when the caller already has them (training-mode ``log_prob0`` / ``log_prob1``): saves two
    passes over the (L0, L1) matrix.
    """
    if student_log_probs is None:
        s = student_logits.float()
        student_log_probs = (F.log_softmax(s, dim=2), F.log_softmax(s, dim=1))
    log_p_rows, log_p_cols = (lp.detach().float() for lp in student_log_probs)
    # Unmatched queries first; matched ones are overwritten below (GT pairs are mutual NNs, so a
    # row or column appears at most once).
    row_w = (1 - alpha) * log_p_rows.amax(dim=2).exp() ** gamma
    col_w = (1 - alpha) * log_p_cols.amax(dim=1).exp() ** gamma
    b, i, j = gt_pairs
    if b.numel():
        row_w[b, i] = alpha * (1 - log_p_rows[b, i, j].exp()) ** gamma
        col_w[b, j] = alpha * (1 - log_p_cols[b, i, j].exp()) ** gamma
    return row_w, col_w


def mutual_query_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, gt_pairs: GtPairs,
                            temperature: float = 2.0, alpha: float = 0.25, gamma: float = 2.0,
                            student_log_probs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                            ) -> torch.Tensor:
    """L_MQD, a scalar: focal-weighted KL over all B * (L0 + L1) query distributions, times T^2.

    student_logits, teacher_logits: (B, L0, L1) coarse similarity logits on the same 1/8 grids;
    gt_pairs: ground-truth coarse matches (b_ids, i_ids, j_ids), each (M,).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student {tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)} "
                         "similarity matrices differ: run both on the same images (they share the 1/8 grid)")
    if temperature <= 0:
        raise ValueError(f"MQD temperature must be > 0, got {temperature}")
    kl_rows, kl_cols = query_divergences(student_logits, teacher_logits, temperature)
    w_rows, w_cols = query_focal_weights(student_logits, gt_pairs, alpha, gamma, student_log_probs)
    n_queries = kl_rows.numel() + kl_cols.numel()
    weighted = (w_rows * kl_rows).sum() + (w_cols * kl_cols).sum()
    return weighted / n_queries * temperature ** 2
