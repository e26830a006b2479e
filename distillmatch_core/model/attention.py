"""Attention kernels shared by every transformer in the model.

``linear`` is LoFTR's elu+1 kernel attention, O(N) in the number of tokens, which
is what makes full-resolution 1/8 grids affordable on a CPU; ``softmax`` is
standard scaled dot-product attention (the paper's default for ViT-style blocks).
Shapes: q (B, L, H, D), k/v (B, S, H, D) -> (B, L, H, D).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearAttention(nn.Module):
    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = F.elu(q) + 1
        k = F.elu(k) + 1
        s = v.shape[1]
        v = v / s  # keeps fp16 in range on long sequences
        kv = torch.einsum("bshd,bshv->bhdv", k, v)
        z = 1.0 / (torch.einsum("blhd,bhd->blh", q, k.sum(dim=1)) + self.eps)
        return torch.einsum("blhd,bhdv,blh->blhv", q, kv, z) * s


class SoftmaxAttention(nn.Module):
    def __init__(self):
        super().__init__()
        # Set by inference_optimization.compile_for_inference on the fine stage's layers: there, thousands of
        # 35-token sequences per call, torch.compile fuses the explicit form's transposes, scaling and softmax
        # around batched matrix products, while the fused SDPA kernel (built for long sequences) is an opaque
        # call with per-sequence overhead (fine stage at 640x480 on the 2-core CPU: about 0.86x the time).
        self.explicit = False

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, L|S, D)
        if self.explicit:
            weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1)  # (B, H, L, S)
            return (weights @ v).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2)


def build_attention(kind: str) -> nn.Module:
    if kind == "linear":
        return LinearAttention()
    if kind == "softmax":
        return SoftmaxAttention()
    raise ValueError(f"unknown attention type {kind!r}; use 'linear' or 'softmax'")
