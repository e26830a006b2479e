"""Modality cross-entropy on the CEFG category heads, L_ce (Eq. 5). logits (B, n_mod), labels (B,) long."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def modality_loss(logits0: torch.Tensor, labels0: torch.Tensor, logits1: torch.Tensor,
                  labels1: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits0, labels0) + F.cross_entropy(logits1, labels1)
