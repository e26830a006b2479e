"""Student ViT: the lightweight semantic branch distilled from the VFM teacher (Sec. 3.1).

(B, 1, H, W) -> F_stu (B, out_dim, H/8, W/8). Patch embedding -> 2-D sine-cosine
positional encoding -> encoder blocks -> decoder blocks -> linear head. A patch
size larger than 8 (CPU configs) runs the transformer on a coarser grid and
bilinearly resamples to 1/8, exactly as the teacher's 1/14 grid is resampled.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import StudentConfig
from distillmatch_core.model.positional_encoding import random_grid_offsets, sincos_2d
from distillmatch_core.model.transformer_layers import PreNormBlock


class StudentViT(nn.Module):
    def __init__(self, cfg: StudentConfig, in_channels: int = 1):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.patch_embed = nn.Conv2d(in_channels, cfg.embed_dim, cfg.patch_size, cfg.patch_size)
        self.encoder = nn.ModuleList([PreNormBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.attention)
                                      for _ in range(cfg.encoder_depth)])
        self.decoder = nn.ModuleList([PreNormBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, cfg.attention)
                                      for _ in range(cfg.decoder_depth)])
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.out_dim)
        self.out_dim = cfg.out_dim
        self.train_pe_jitter = cfg.train_pe_jitter
        # F_stu lives on the 1/8 grid (the teacher's, for the distillation loss). An inference copy whose
        # consumer resamples anyway turns this off (inference_optimization.fuse_semantic_head).
        self.resample_to_coarse_grid = True

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        x = self.patch_embed(image)  # (B, D, H/p, W/p)
        gh, gw = x.shape[-2:]
        offset = random_grid_offsets(b, self.train_pe_jitter if self.training else 0.0, x.device)
        # (HW, D) without an offset, (B, HW, D) with one: both broadcast onto the (B, HW, D) tokens.
        x = x.flatten(2).transpose(1, 2) + sincos_2d(gh, gw, x.shape[1], x.device, x.dtype, offset=offset)
        for block in self.encoder:
            x = block(x)
        for block in self.decoder:
            x = block(x)
        x = self.head(self.norm(x))  # (B, P, out_dim)
        x = x.transpose(1, 2).reshape(b, self.out_dim, gh, gw)
        if self.resample_to_coarse_grid and (gh, gw) != (h // 8, w // 8):
            x = F.interpolate(x, size=(h // 8, w // 8), mode="bilinear", align_corners=False)
        return x
