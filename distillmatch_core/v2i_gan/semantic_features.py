"""Frozen semantic-feature extractor feeding the generator's STFA block.

The paper aggregates DINOv2 features into the V2I-GAN encoder. No VFM weights can be
downloaded on the machine this package was built on, so the default extractor is a
fixed, non-learned bank of multi-scale oriented Gabor filters whose local energy is
pooled to the bottleneck grid: a layout/texture descriptor, not semantics. Anything
with the same interface (e.g. a frozen DINOv2 or the matcher's student ViT) can be
injected instead through ``V2IGenerator(semantic_extractor=...)``.

Interface: image (B, C_in, H, W) in [-1, 1] -> features (B, out_channels, H / stride, W / stride).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.v2i_gan.config import SemanticExtractorConfig


def gabor_kernel(wavelength: float, theta: float, phase: float, size: int) -> torch.Tensor:
    """(size, size) zero-mean, unit-L1 Gabor kernel; sigma tied to the wavelength (one octave)."""
    sigma = 0.56 * wavelength
    half = size // 2
    coords = torch.arange(-half, half + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    x_rot = xx * math.cos(theta) + yy * math.sin(theta)
    y_rot = -xx * math.sin(theta) + yy * math.cos(theta)
    envelope = torch.exp(-(x_rot ** 2 + y_rot ** 2) / (2 * sigma ** 2))
    kernel = envelope * torch.cos(2 * math.pi * x_rot / wavelength + phase)
    kernel = kernel - kernel.mean()  # flat regions give no response
    return kernel / kernel.abs().sum().clamp_min(1e-8)


class GaborEnergyExtractor(nn.Module):
    """Gray image -> pooled quadrature-pair Gabor energy per (wavelength, orientation), plus local mean."""

    def __init__(self, cfg: SemanticExtractorConfig):
        super().__init__()
        if cfg.stride % cfg.working_downsample:
            raise ValueError("SemanticExtractorConfig.stride must be a multiple of working_downsample")
        self.working_downsample = cfg.working_downsample
        self.pool_after = cfg.stride // cfg.working_downsample
        size = int(2 * math.ceil(2.0 * 0.56 * max(cfg.wavelengths)) + 1)
        kernels = []
        for wavelength in cfg.wavelengths:
            for k in range(cfg.orientations):
                theta = math.pi * k / cfg.orientations
                kernels.append(gabor_kernel(wavelength, theta, 0.0, size))
                kernels.append(gabor_kernel(wavelength, theta, math.pi / 2, size))
        # A buffer, not a parameter: frozen by construction and saved with the generator.
        self.register_buffer("kernels", torch.stack(kernels)[:, None])  # (2 * filters, 1, k, k)
        self.out_channels = len(cfg.wavelengths) * cfg.orientations + 1

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        gray = image.mean(dim=1, keepdim=True) if image.shape[1] > 1 else image
        if self.working_downsample > 1:
            gray = F.avg_pool2d(gray, self.working_downsample)
        pad = min(self.kernels.shape[-1] // 2, gray.shape[-1] - 1, gray.shape[-2] - 1)
        padded = F.pad(gray, (pad, pad, pad, pad), mode="reflect")
        responses = F.conv2d(padded, self.kernels, padding=self.kernels.shape[-1] // 2 - pad)
        even, odd = responses[:, 0::2], responses[:, 1::2]
        energy = torch.sqrt(even ** 2 + odd ** 2 + 1e-6)
        # log-compress so strong edges do not dominate the channel statistics downstream.
        energy = torch.log1p(10.0 * energy)
        features = torch.cat([energy, gray], dim=1)
        return F.avg_pool2d(features, self.pool_after) if self.pool_after > 1 else features


def build_semantic_extractor(cfg: SemanticExtractorConfig) -> nn.Module:
    extractor = GaborEnergyExtractor(cfg)
    extractor.requires_grad_(False)
    return extractor
