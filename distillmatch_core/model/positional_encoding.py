"""2-D sine-cosine positional encodings (ViT-style for tokens, LoFTR-style for feature maps)."""
from __future__ import annotations


import torch


def sincos_2d(height: int, width: int, dim: int, device=None, dtype=torch.float32,
              temperature: float = 10000.0) -> torch.Tensor:
    """-> (height*width, dim): [sin(y), cos(y), sin(x), cos(x)] bands, row-major token order."""
    if dim % 4:
        raise ValueError(f"positional encoding dim {dim} must be divisible by 4")
    y, x = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                          torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    quarter = dim // 4
    omega = torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter - 1, 1)
    omega = 1.0 / (temperature ** omega)
    y = y.reshape(-1, 1) * omega[None]
    x = x.reshape(-1, 1) * omega[None]
    pe = torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1)
    return pe.to(dtype)


def add_sincos_to_map(feat: torch.Tensor) -> torch.Tensor:
    """feat (B, C, H, W) -> feat + PE (B, C, H, W); C must be divisible by 4."""
    b, c, h, w = feat.shape
    pe = sincos_2d(h, w, c, feat.device, feat.dtype).t().reshape(1, c, h, w)
    return feat + pe
