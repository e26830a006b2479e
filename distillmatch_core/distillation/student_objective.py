"""The 3DG-STFM student objective (Eq. 9): lambda_0 L_c + lambda_1 L_f + lambda_2 L_MQD + lambda_3 L_att.

The supervised part is DistillMatch's own (``supervised_forward``), with lambda_0 / lambda_1 in
place of ``loss.lambda_c`` / ``loss.lambda_f``; this module adds the two teacher terms.
"""
from __future__ import annotations

import dataclasses
from typing import Dict

import torch

from distillmatch_core.config import LossConfig
from distillmatch_core.distillation.matcher_distillation_config import MatcherDistillationConfig
from distillmatch_core.losses.attentive_loss import fine_attentive_loss
from distillmatch_core.losses.mutual_query_divergence import mutual_query_divergence


def student_supervised_loss_config(loss: LossConfig, distillation: MatcherDistillationConfig) -> LossConfig:
    """``loss`` with lambda_c / lambda_f replaced by 3DG-STFM's lambda_0 / lambda_1."""
    return dataclasses.replace(loss, lambda_c=distillation.lambda_coarse, lambda_f=distillation.lambda_fine)


def teacher_terms(distillation: MatcherDistillationConfig, loss: LossConfig, student: Dict[str, torch.Tensor],
                  teacher: Dict[str, torch.Tensor], supervision: Dict[str, torch.Tensor],
                  window: int) -> Dict[str, torch.Tensor]:
    """-> {"mqd": L_MQD, "attentive": L_att}.

    ``student`` / ``teacher``: ``DistillMatch.forward`` outputs on the same images and coarse
    matches (``sim_matrix`` (B, L0, L1), ``fine_sim`` (M, w*w, w*w); the student in training mode, so
    with ``log_prob0/1``); ``supervision`` from ``supervised_forward`` (``gt_pairs``, ``fine_valid`` (M, w*w)).
    """
    log_probs = (student["log_prob0"], student["log_prob1"])
    mqd = mutual_query_divergence(student["sim_matrix"], teacher["sim_matrix"], supervision["gt_pairs"],
                                  distillation.temperature, loss.focal_alpha, loss.focal_gamma, log_probs)
    attentive = fine_attentive_loss(student["fine_sim"], teacher["fine_sim"], supervision["fine_valid"], window)
    return {"mqd": mqd, "attentive": attentive}


def add_teacher_terms(terms: Dict[str, torch.Tensor], distill: Dict[str, torch.Tensor],
                      distillation: MatcherDistillationConfig) -> Dict[str, torch.Tensor]:
    """Supervised ``terms`` (with "loss" = the weighted supervised sum) -> all terms, "supervised" (that
    sum) and "loss" = supervised + lambda_2 L_MQD + lambda_3 L_att."""
    out = dict(terms)
    out.update(distill)
    out["supervised"] = terms["loss"]
    out["loss"] = (terms["loss"] + distillation.lambda_mqd * distill["mqd"]
                   + distillation.lambda_attentive * distill["attentive"])
    return out
