"""Transformer building blocks on token sequences (B, N, C)."""
from __future__ import annotations

import torch
from torch import nn

from distillmatch_core.model.attention import build_attention


class AttentionLayer(nn.Module):
    """LoFTR-style encoder layer: message = MLP([x, attn(x, source)]), x + norm(message).

    Used for self attention (source is x) and cross attention (source is the other image).
    """

    def __init__(self, d_model: int, num_heads: int, attention: str = "linear"):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.attention = build_attention(attention)
        self.merge = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * d_model, 2 * d_model, bias=False), nn.ReLU(inplace=True),
            nn.Linear(2 * d_model, d_model, bias=False),
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """x (B, L, C), source (B, S, C) -> (B, L, C)."""
        b = x.shape[0]
        l, s = x.shape[1], source.shape[1]
        q = self.q_proj(x).view(b, l, self.num_heads, self.head_dim)
        k = self.k_proj(source).view(b, s, self.num_heads, self.head_dim)
        v = self.v_proj(source).view(b, s, self.num_heads, self.head_dim)
        message = self.attention(q, k, v).reshape(b, l, self.num_heads * self.head_dim)
        message = self.norm1(self.merge(message))
        message = self.norm2(self.mlp(torch.cat([x, message], dim=-1)))
        return x + message


class PreNormBlock(nn.Module):
    """ViT block: x + attn(LN(x)); x + MLP(LN(x)). Used by the student ViT and CEFG."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, attention: str = "softmax"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attention = build_attention(attention)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, C) -> (B, N, C)."""
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.num_heads, c // self.num_heads).unbind(2)
        x = x + self.proj(self.attention(q, k, v).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))
