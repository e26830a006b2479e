"""Texture branch: multi-scale ResNet producing F_Res at 1/2, 1/4 and 1/8 (Sec. 3.1).

Input (B, 1, H, W) grayscale in [0, 1] (modality-agnostic: thermal has one channel);
outputs (B, C1, H/2, W/2), (B, C2, H/4, W/4), (B, C3, H/8, W/8).
The 1/8 map receives a top-down path from nothing coarser, but 1/2 and 1/4 get
the 1/8 context back through a light FPN-style merge so that fine windows see
more than their local patch (as LoFTR's ResNet-FPN).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import TextureBackboneConfig


def conv_bn_relu(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def make_stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [BasicBlock(cin, cout, stride)] + [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class TextureBackbone(nn.Module):
    def __init__(self, cfg: TextureBackboneConfig, in_channels: int = 1):
        super().__init__()
        c1, c2, c3 = cfg.channels
        n1, n2, n3 = cfg.blocks_per_stage
        self.stem = conv_bn_relu(in_channels, cfg.stem_channels, stride=2)  # 1/2
        self.stage1 = make_stage(cfg.stem_channels, c1, n1, 1)  # 1/2
        self.stage2 = make_stage(c1, c2, n2, 2)  # 1/4
        self.stage3 = make_stage(c2, c3, n3, 2)  # 1/8
        self.lateral2 = nn.Conv2d(c3, c2, 1, bias=False)
        self.merge2 = conv_bn_relu(c2, c2)
        self.lateral1 = nn.Conv2d(c2, c1, 1, bias=False)
        self.merge1 = conv_bn_relu(c1, c1)
        self.out_channels = (c1, c2, c3)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x1 = self.stage1(self.stem(image))
        x2 = self.stage2(x1)
        x3 = self.stage3(x2)
        x2 = self.merge2(x2 + F.interpolate(self.lateral2(x3), size=x2.shape[-2:], mode="bilinear",
                                            align_corners=False))
        x1 = self.merge1(x1 + F.interpolate(self.lateral1(x2), size=x1.shape[-2:], mode="bilinear",
                                            align_corners=False))
        return x1, x2, x3
