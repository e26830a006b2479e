"""Category-enhanced feature guidance, CEFG (Sec. 3.2).

Inputs per image: F_Res^1/2 (B, C1, H/2, W/2) and F_Res^1/8 (B, C3, H/8, W/8).
A Restormer encodes the 1/2 map into shallow tokens on the 1/8 grid; a learnable
category token joins them through two transformer layers and is split off as the
modality head; each image's deep features receive the OTHER image's head
(cross-injection) and pass through non-shared TransferA (image 0) / TransferB
(image 1), or one shared block (``shared_transfer``); the result is added to F_Res^1/8
and fused by convolutions.
Outputs: enhanced F_Res^1/8 for both images and modality logits (B, n_modalities).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import CEFGConfig
from distillmatch_core.model.restormer import RestormerBlock
from distillmatch_core.model.transformer_layers import PreNormBlock


class CEFG(nn.Module):
    def __init__(self, cfg: CEFGConfig, half_channels: int, coarse_channels: int):
        super().__init__()
        c = coarse_channels
        if cfg.token_stride not in (8, 16):
            raise ValueError(f"cefg.token_stride must be 8 (the paper) or 16, got {cfg.token_stride}")
        self.token_stride = cfg.token_stride
        # 1/2 -> 1/8 patchify first, so the Restormer runs on the 1/8 grid (N = H/8 * W/8 tokens).
        self.to_coarse = nn.Conv2d(half_channels, c, kernel_size=4, stride=4)
        self.restormer = RestormerBlock(c, num_heads=cfg.num_heads)
        # Shared start token: the modality must be read from the image, not handed in.
        self.category_token = nn.Parameter(torch.zeros(1, 1, c))
        nn.init.trunc_normal_(self.category_token, std=0.02)
        self.encoder = nn.ModuleList([PreNormBlock(c, cfg.num_heads, 2.0, cfg.attention)
                                      for _ in range(cfg.num_transformer_layers)])
        self.classifier = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, c // 2), nn.GELU(),
                                        nn.Linear(c // 2, len(cfg.modalities)))
        self.transfer_b = PreNormBlock(c, cfg.num_heads, 2.0, cfg.attention)
        # Shared: one module under both names, so shared and non-shared checkpoints have one layout
        # (as coarse_matching's proj0/proj1); see _keep_transfer_b for loading a non-shared one.
        self.transfer_a = self.transfer_b if cfg.shared_transfer else PreNormBlock(c, cfg.num_heads, 2.0,
                                                                                   cfg.attention)
        if cfg.shared_transfer:
            self._register_load_state_dict_pre_hook(self._keep_transfer_b)
        self.fuse = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 1))

    def encode(self, half: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, C1, H/2, W/2) -> deep tokens (B, N, C3), category head (B, 1, C3)."""
        tokens = self.to_coarse(half)  # (B, C3, H/8, W/8)
        if self.token_stride == 16:
            tokens = F.avg_pool2d(tokens, 2, ceil_mode=True)  # (B, C3, ceil(H/16), ceil(W/16))
        shallow = self.restormer(tokens).flatten(2).transpose(1, 2)
        x = torch.cat([self.category_token.expand(shallow.shape[0], -1, -1), shallow], dim=1)
        for block in self.encoder:
            x = block(x)
        return x[:, 1:], x[:, :1]

    def forward(self, half0: torch.Tensor, half1: torch.Tensor, coarse0: torch.Tensor, coarse1: torch.Tensor):
        deep0, head0 = self.encode(half0)
        deep1, head1 = self.encode(half1)
        logits0 = self.classifier(head0[:, 0])
        logits1 = self.classifier(head1[:, 0])
        enhanced0 = self.transfer_a(deep0 + head1)
        enhanced1 = self.transfer_b(deep1 + head0)
        out0 = coarse0 + self.fuse(coarse0 + self._to_map(enhanced0, coarse0))
        out1 = coarse1 + self.fuse(coarse1 + self._to_map(enhanced1, coarse1))
        return out0, out1, logits0, logits1

    @staticmethod
    def _keep_transfer_b(state_dict, prefix, *_):
        """Loading non-shared weights into the shared block keeps TransferB's (the infrared side's: it
        learned the harder modality, and measured better on both images than TransferA's, model card)
        instead of whichever of the two aliases happens to load last."""
        for key in [k for k in state_dict if k.startswith(prefix + "transfer_b.")]:
            state_dict[prefix + "transfer_a." + key[len(prefix + "transfer_b."):]] = state_dict[key]

    def _to_map(self, tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(B, N, C3) tokens of CEFG's grid -> (B, C3, h, w), the shape of ``like`` (the 1/8 map)."""
        b, c, h, w = like.shape
        if self.token_stride == 8:
            return tokens.transpose(1, 2).reshape(b, c, h, w)
        coarse = tokens.transpose(1, 2).reshape(b, c, (h + 1) // 2, (w + 1) // 2)
        return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
