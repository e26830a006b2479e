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
        q, k = elu_plus_one(q), elu_plus_one(k)
        s = v.shape[1]
        kv = torch.einsum("bshd,bshv->bhdv", k, v / s)  # v / s keeps fp16 in range on long sequences
        # The factor s that undoes v / s goes into the normaliser z (B, L, H), not onto the output (B, L, H, D):
        # one pass over the output fewer.
        z = s / (torch.einsum("blhd,bhd->blh", q, k.sum(dim=1)) + self.eps)
        return torch.einsum("blhd,bhdv,blh->blhv", q, kv, z)


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """elu(x) + 1, the linear attention's feature map, as relu(x) + exp(min(x, 0)): the same values (to float
    rounding) from two vectorised kernels, where torch's CPU elu (expm1) took ~8x as long (1.6 against 0.2 ms on
    a (1, 4800, 4, 16) tensor, 24 calls per 640x480 pair)."""
    return F.relu(x) + x.clamp(max=0).exp()


# Key length up to which SoftmaxAttention uses its explicit form. The fine stage's windows (35 keys, thousands of
# sequences per call) are far below it, the student ViT's 1/16 grid (hundreds to thousands of tokens) above it.
SHORT_SEQUENCE = 64


class SoftmaxAttention(nn.Module):
    """Scaled dot-product attention; over short key sequences (<= SHORT_SEQUENCE) in the explicit form
    (``explicit_softmax_attention``), which on a CPU beats the fused SDPA kernel there: that kernel is built for long
    sequences and pays per-sequence overhead (fine stage at 640x480, 1681 matches, 2-core CPU: 0.84x the time
    eager; torch.compile also fuses the explicit form's transposes, scaling and softmax, ~0.86x)."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, L|S, D)
        if k.shape[2] <= SHORT_SEQUENCE:
            return explicit_softmax_attention(q, k, v).transpose(1, 2)
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2)


def explicit_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (B, H, L, D), k / v (B, H, S, D) -> (B, H, L, D): softmax(q k^T / sqrt(D)) v, as matrix products."""
    weights = torch.softmax((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2), dim=-1)  # (B, H, L, S)
    return weights @ v


def build_attention(kind: str) -> nn.Module:
    if kind == "linear":
        return LinearAttention()
    if kind == "softmax":
        return SoftmaxAttention()
    raise ValueError(f"unknown attention type {kind!r}; use 'linear' or 'softmax'")
