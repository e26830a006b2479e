"""V2I-GAN generator: encoder-decoder with semantic aggregation (STFA) in the encoder (Sec. 3.5).

Encoder: a 7x7 stem, ``num_downsamples`` stride-2 conv blocks (multi-scale texture), residual
blocks at the bottleneck, then STFA aggregating frozen semantic features into the bottleneck
texture features. Decoder: bilinear up-sampling blocks, each fused with the encoder feature of
the same scale (concatenate + conv) so edges are placed where the input has them, and a 7x7
output conv with tanh.

Boundary: image (B, in_channels, H, W) in [-1, 1], H and W multiples of 2**num_downsamples
-> image (B, out_channels, H, W) in [-1, 1].
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import STFAConfig
from distillmatch_core.v2i_gan.config import GeneratorConfig
from distillmatch_core.v2i_gan.semantic_features import build_semantic_extractor


def conv_norm_act(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    # Instance norm: the translation must not depend on batch statistics (batch size 1 at inference).
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, padding_mode="reflect", bias=False),
        nn.InstanceNorm2d(out_ch, affine=True),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleFusionBlock(nn.Module):
    """(B, C_in, h, w) + skip (B, C_skip, 2h, 2w) -> (B, C_out, 2h, 2w).

    Bilinear up-sampling + conv instead of transposed conv: no checkerboard artefacts.
    """

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int):
        super().__init__()
        self.reduce = conv_norm_act(in_ch, out_ch)
        self.fuse = conv_norm_act(out_ch + skip_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([self.reduce(x), skip], dim=1))


def build_stfa(cfg: GeneratorConfig, channels: int, semantic_channels: int) -> nn.Module:
    """The matcher's STFA (CAA then SAA) reused as the generator's semantic aggregation hook."""
    from distillmatch_core.model.stfa import STFA
    return STFA(STFAConfig(num_heads=cfg.stfa_heads, spatial_attention=cfg.stfa_attention), channels,
                semantic_channels)


class V2IGenerator(nn.Module):
    """Translator between visible (3 channels) and infrared (1 channel) images.

    ``semantic_extractor``: frozen module image -> (B, Cs, h', w') (default: Gabor energy bank);
    ``semantic_aggregation``: module (texture (B, C, h, w), semantic (B, Cs, h', w')) -> (B, C, h, w)
    (default: model.stfa.STFA). Both are injection hooks, e.g. for a DINOv2 teacher.
    """

    def __init__(self, cfg: GeneratorConfig, semantic_extractor: Optional[nn.Module] = None,
                 semantic_aggregation: Optional[nn.Module] = None):
        super().__init__()
        self.cfg = cfg
        c = cfg.base_channels
        widths = [c * 2 ** i for i in range(cfg.num_downsamples + 1)]  # e.g. 16, 32, 64
        self.stem = conv_norm_act(cfg.in_channels, widths[0], kernel=7)
        self.down = nn.ModuleList(conv_norm_act(widths[i], widths[i + 1], stride=2)
                                  for i in range(cfg.num_downsamples))
        self.bottleneck = nn.Sequential(*[ResidualBlock(widths[-1]) for _ in range(cfg.num_residual_blocks)])
        self.semantic_extractor: Optional[nn.Module] = None
        self.semantic_aggregation: Optional[nn.Module] = None
        if cfg.use_semantic_aggregation:
            self.semantic_extractor = semantic_extractor or build_semantic_extractor(cfg.semantic)
            self.semantic_extractor.requires_grad_(False)
            semantic_channels = int(getattr(self.semantic_extractor, "out_channels"))
            self.semantic_aggregation = semantic_aggregation or build_stfa(cfg, widths[-1], semantic_channels)
        self.up = nn.ModuleList(UpsampleFusionBlock(widths[i + 1], widths[i], widths[i])
                                for i in reversed(range(cfg.num_downsamples)))
        self.head = nn.Conv2d(widths[0], cfg.out_channels, 7, padding=3, padding_mode="reflect")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        m = self.cfg.size_multiple
        if image.shape[-2] % m or image.shape[-1] % m:
            raise ValueError(f"V2IGenerator input H, W must be multiples of {m}, got {tuple(image.shape[-2:])}")
        x = self.stem(image)
        skips: List[torch.Tensor] = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        if self.semantic_aggregation is not None:
            # The extractor is frozen (no parameters to train) but gradients still flow to the input,
            # which matters in the cycle G_IV(G_VI(x)).
            semantic = self.semantic_extractor(image)
            x = self.semantic_aggregation(x, semantic)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(x, skip)
        return torch.tanh(self.head(x))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
