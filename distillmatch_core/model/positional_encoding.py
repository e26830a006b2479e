"""2-D sine-cosine positional encodings (ViT-style for tokens, LoFTR-style for feature maps).

Both images of a pair get the same encoding at the same grid position, so a network can learn
"matches sit at the same place in both images": an identity prior that is wrong whenever the
views differ (before phase 5, the shipped lite model matched a pair shifted by exactly one cell
worse than the aligned pair, see its model card). ``offset`` shifts an image's encoding coordinates; drawn
independently per image in training (``random_grid_offsets``), it makes the absolute encoding
useless across images while positions within one image keep their relative geometry.
"""
from __future__ import annotations

from typing import Optional

import torch


def sincos_2d(height: int, width: int, dim: int, device=None, dtype=torch.float32,
              temperature: float = 10000.0, offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    """-> (height*width, dim): [sin(y), cos(y), sin(x), cos(x)] bands, row-major token order;
    with ``offset`` (B, 2) = (dy, dx) grid units added to the coordinates: (B, height*width, dim)."""
    if dim % 4:
        raise ValueError(f"positional encoding dim {dim} must be divisible by 4")
    y, x = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                          torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    quarter = dim // 4
    omega = torch.arange(quarter, device=device, dtype=torch.float32) / max(quarter - 1, 1)
    omega = 1.0 / (temperature ** omega)
    y, x = y.reshape(-1, 1), x.reshape(-1, 1)  # (HW, 1)
    if offset is not None:
        offset = offset.to(device=device, dtype=torch.float32)
        y = y[None] + offset[:, None, 0:1]  # (B, HW, 1)
        x = x[None] + offset[:, None, 1:2]
    y, x = y * omega, x * omega
    pe = torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=-1)
    return pe.to(dtype)


def add_sincos_to_map(feat: torch.Tensor, offset: Optional[torch.Tensor] = None) -> torch.Tensor:
    """feat (B, C, H, W) -> feat + PE (B, C, H, W); C must be divisible by 4; ``offset`` (B, 2) or None."""
    b, c, h, w = feat.shape
    pe = sincos_2d(h, w, c, feat.device, feat.dtype, offset=offset)
    pe = pe.transpose(-1, -2).reshape(-1, c, h, w)  # (1 or B, C, H, W)
    return feat + pe


def random_grid_offsets(batch: int, max_offset: float, device=None) -> Optional[torch.Tensor]:
    """(batch, 2) offsets uniform in [-max_offset, max_offset] grid units (torch's global RNG, so a
    resumed run draws the same ones); None when ``max_offset`` is 0."""
    if max_offset <= 0:
        return None
    return (torch.rand(batch, 2, device=device) * 2.0 - 1.0) * max_offset
