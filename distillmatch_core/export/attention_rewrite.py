"""Export-time replacement of the linear-attention kernel by an equivalent built from MatMul.

``model/attention.py``'s ``LinearAttention`` is written with ``torch.einsum``, and one of
its contractions has three operands (``blhd,bhdv,blh->blhv``). ONNX exports that as a
3-input ``Einsum``, which older TensorRT ONNX parsers reject (their Einsum layer takes at
most two inputs; JetPack 5 ships TensorRT 8.5) and which runtimes generally execute
slower than batched MatMul. The replacement below computes the same function with
transposes, MatMul and ReduceSum only. It is swapped into a *copy* of the model just
before tracing, so the eager model (training, the torch backend) and its parameter
names are untouched; the two differ only by float summation order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.model.attention import LinearAttention


class MatmulLinearAttention(nn.Module):
    """Same maths as ``LinearAttention``: q (B, L, H, D), k (B, S, H, D), v (B, S, H, V) -> (B, L, H, V)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = (F.elu(q) + 1).transpose(1, 2)  # (B, H, L, D)
        k = (F.elu(k) + 1).transpose(1, 2)  # (B, H, S, D)
        s = v.shape[1]
        v = (v / s).transpose(1, 2)  # (B, H, S, V); /s keeps fp16 in range on long sequences
        kv = torch.matmul(k.transpose(2, 3), v)  # (B, H, D, V)
        z = 1.0 / (torch.matmul(q, k.sum(dim=2).unsqueeze(-1)) + self.eps)  # (B, H, L, 1)
        return (torch.matmul(q, kv) * z * s).transpose(1, 2)


def replace_linear_attention(model: nn.Module) -> int:
    """Swap every ``LinearAttention`` inside ``model`` (in place) -> number replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LinearAttention):
                setattr(parent, name, MatmulLinearAttention(child.eps))
                replaced += 1
    return replaced
