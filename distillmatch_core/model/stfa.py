"""Semantic and texture feature aggregation, STFA = CAA then SAA (Sec. 3.3).

texture F_T (B, C, h, w) and semantic F_S (B, Cs, h', w') -> F_T + SAA(F_T, CAA(F_S, F_T)), (B, C, h, w).
CAA: semantic tokens query texture tokens along the channel axis (a C x C map),
after F_S is resampled to F_T's grid and compressed to C channels.
SAA: convolutional Q (from F_T) / K, V (from F_T^CAA), attention along positions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import STFAConfig
from distillmatch_core.model.attention import build_attention


class ChannelAttentionAggregation(nn.Module):
    def __init__(self, channels: int, semantic_channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.compress = nn.Conv2d(semantic_channels, channels, 1)
        self.mlp_s = nn.Sequential(nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, channels))
        self.mlp_t = nn.Sequential(nn.Linear(channels, channels), nn.GELU(), nn.Linear(channels, channels))
        self.norm_s = nn.LayerNorm(channels)
        self.norm_t = nn.LayerNorm(channels)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.proj = nn.Linear(channels, channels)

    def forward(self, texture: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        b, c, h, w = texture.shape
        s = self.compress(semantic)
        if s.shape[-2:] != (h, w):
            s = F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False)
        s = self.norm_s(self.mlp_s(s.flatten(2).transpose(1, 2)))  # (B, N, C)
        t = self.norm_t(self.mlp_t(texture.flatten(2).transpose(1, 2)))
        hd = c // self.num_heads
        q = F.normalize(s.transpose(1, 2).reshape(b, self.num_heads, hd, h * w), dim=-1)
        k = F.normalize(t.transpose(1, 2).reshape(b, self.num_heads, hd, h * w), dim=-1)
        v = t.transpose(1, 2).reshape(b, self.num_heads, hd, h * w)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)  # (B, heads, hd, hd)
        out = (attn @ v).reshape(b, c, h * w).transpose(1, 2)
        return self.proj(out).transpose(1, 2).reshape(b, c, h, w)


def conv_projection(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False),
                         nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False))


class SpatialAttentionAggregation(nn.Module):
    def __init__(self, channels: int, num_heads: int, attention: str):
        super().__init__()
        self.num_heads = num_heads
        self.proj_q = conv_projection(channels)
        self.proj_k = conv_projection(channels)
        self.proj_v = conv_projection(channels)
        self.attention = build_attention(attention)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, texture: torch.Tensor, aggregated: torch.Tensor) -> torch.Tensor:
        b, c, h, w = texture.shape

        def tokens(x: torch.Tensor) -> torch.Tensor:
            return x.flatten(2).transpose(1, 2).reshape(b, h * w, self.num_heads, c // self.num_heads)

        out = self.attention(tokens(self.proj_q(texture)), tokens(self.proj_k(aggregated)),
                             tokens(self.proj_v(aggregated)))
        return self.out(out.reshape(b, h * w, c).transpose(1, 2).reshape(b, c, h, w))


class STFA(nn.Module):
    def __init__(self, cfg: STFAConfig, channels: int, semantic_channels: int):
        super().__init__()
        self.caa = ChannelAttentionAggregation(channels, semantic_channels, cfg.num_heads)
        self.saa = SpatialAttentionAggregation(channels, cfg.num_heads, cfg.spatial_attention)

    def forward(self, texture: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        return texture + self.saa(texture, self.caa(texture, semantic))
