"""uint8 numpy images <-> generator tensors in [-1, 1]."""
from __future__ import annotations

import numpy as np
import torch


def rgb_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) RGB or (H, W) gray -> (1, 3, H, W) float32 in [-1, 1] (gray is replicated)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] < 3:
        raise ValueError(f"expected (H, W, 3) RGB or (H, W) gray, got shape {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float()
    return (t / 127.5 - 1.0)[None]


def gray_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) -> (1, 1, H, W) float32 in [-1, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"expected a uint8 (H, W) image, got {image.dtype} {image.shape}")
    return (torch.from_numpy(np.ascontiguousarray(image)).float() / 127.5 - 1.0)[None, None]


def tensor_to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) in [-1, 1] -> uint8 (H, W) for C == 1, (H, W, C) RGB otherwise."""
    t = tensor.detach().float().cpu()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got {tuple(t.shape)}")
        t = t[0]
    out = ((t.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).numpy()
    return out[0] if out.shape[0] == 1 else np.ascontiguousarray(out.transpose(1, 2, 0))
