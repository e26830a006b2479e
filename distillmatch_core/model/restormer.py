"""Restormer block (MDTA channel attention + gated-Dconv FFN), as CEFG's shallow encoder (Sec. 3.2).

Attention is across channels (a C x C map per head), so its cost is linear in
the number of pixels: the right tool on the large 1/2-resolution map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelLayerNorm(nn.Module):
    """LayerNorm over C of a (B, C, H, W) map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MDTA(nn.Module):
    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.qkv_dw = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3, bias=False)
        self.proj = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q = F.normalize(q.reshape(b, self.num_heads, c // self.num_heads, h * w), dim=-1)
        k = F.normalize(k.reshape(b, self.num_heads, c // self.num_heads, h * w), dim=-1)
        v = v.reshape(b, self.num_heads, c // self.num_heads, h * w)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class GDFN(nn.Module):
    def __init__(self, channels: int, expansion: float = 2.0):
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, 1, bias=False)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.dw(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * g)


class RestormerBlock(nn.Module):
    """(B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, num_heads: int, ffn_expansion: float = 2.0):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels {channels} not divisible by heads {num_heads}")
        self.norm1 = ChannelLayerNorm(channels)
        self.attn = MDTA(channels, num_heads)
        self.norm2 = ChannelLayerNorm(channels)
        self.ffn = GDFN(channels, ffn_expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))
