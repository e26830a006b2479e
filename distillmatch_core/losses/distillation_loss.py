"""Knowledge distillation from the VFM teacher to the student ViT, L_KD (Eq. 1-4).

F_tea, F_stu: (B, C, h, w). The teacher is detached here as well as frozen, so no
gradient can reach it whatever the caller does.
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F


def normalized_mse(f_tea: torch.Tensor, f_stu: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean over the B*h*w feature vectors of ||t/|t| - s/|s|||^2."""
    t = F.normalize(f_tea.detach(), dim=1)
    s = F.normalize(f_stu, dim=1)
    return ((t - s) ** 2).sum(dim=1).mean()


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, C), G = F F^T / (h w)."""
    b, c, h, w = f.shape
    flat = f.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def gram_loss(f_tea: torch.Tensor, f_stu: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean squared difference of the Gram matrices (over their B*C*C elements)."""
    return ((gram_matrix(f_tea.detach()) - gram_matrix(f_stu)) ** 2).mean()


def kl_loss(f_tea: torch.Tensor, f_stu: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Eq. 3: D_KL(F_tea || F_stu) of the per-location channel distributions (softmax over C)."""
    log_p_tea = F.log_softmax(f_tea.detach() / temperature, dim=1)
    log_p_stu = F.log_softmax(f_stu / temperature, dim=1)
    kl = (log_p_tea.exp() * (log_p_tea - log_p_stu)).sum(dim=1)
    return kl.mean() * temperature ** 2


def distillation_loss(f_tea: torch.Tensor, f_stu: torch.Tensor, alpha: float, beta: float, gamma: float,
                      temperature: float = 1.0) -> Dict[str, torch.Tensor]:
    """Eq. 4: L_KD = alpha * MSE + beta * Gram + gamma * KL."""
    if f_tea.shape != f_stu.shape:
        raise ValueError(f"teacher {tuple(f_tea.shape)} and student {tuple(f_stu.shape)} features differ in shape")
    mse = normalized_mse(f_tea, f_stu)
    gram = gram_loss(f_tea, f_stu)
    kl = kl_loss(f_tea, f_stu, temperature)
    return {"kd_mse": mse, "kd_gram": gram, "kd_kl": kl, "kd": alpha * mse + beta * gram + gamma * kl}
