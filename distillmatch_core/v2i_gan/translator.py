"""Inference wrapper: translate a uint8 visible image with a V2I-GAN generator.

The generator runs at the scale it was trained at (or a given ``max_side``) and its output is
resized back to the input size, so the translation keeps the input's geometry pixel for pixel:
``V2IGanTranslator`` is the ``generator`` callable ``ModalitySampler`` accepts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from distillmatch_core.v2i_gan.checkpoint import VISIBLE_TO_INFRARED, load_generator
from distillmatch_core.v2i_gan.generator import V2IGenerator
from distillmatch_core.v2i_gan.image_tensors import gray_to_tensor, rgb_to_tensor, tensor_to_uint8


def default_generator_path() -> Path:
    """The visible->infrared generator shipped in distillmatch_core/assets."""
    return Path(__file__).resolve().parents[1] / "assets" / "v2i_gan_generator.pt"


class V2IGanTranslator:
    """uint8 (H, W, 3) RGB (or (H, W) gray) -> uint8 (H, W) pseudo-infrared of the same size.

    ``max_side``: the generator sees the image downscaled so its long side is at most this
    (never upscaled); None -> the long side it was trained at, recorded in the checkpoint.
    """

    def __init__(self, generator: V2IGenerator, max_side: Optional[int] = None, device: str = "cpu"):
        self.generator = generator.to(device).eval()
        self.max_side = max_side
        self.device = device

    @classmethod
    def from_checkpoint(cls, path: str | Path, max_side: Optional[int] = None,
                        device: str = "cpu") -> "V2IGanTranslator":
        generator, info = load_generator(path, map_location=device)
        if info.get("direction") != VISIBLE_TO_INFRARED:
            raise ValueError(f"{path}: generator direction is {info.get('direction')!r}, "
                             f"expected {VISIBLE_TO_INFRARED!r}")
        if not max_side:
            max_side = int(info.get("metadata", {}).get("training_long_side", 0)) or None
        return cls(generator, max_side=max_side, device=device)

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        h, w = image.shape[:2]
        work = image
        scale = 1.0
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
            work = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        in_channels = self.generator.cfg.in_channels
        x = rgb_to_tensor(work) if in_channels == 3 else gray_to_tensor(work)
        x = x.to(self.device)
        m = self.generator.cfg.size_multiple
        wh, ww = x.shape[-2:]
        # Pad to a multiple of m and to at least 4 m, so the bottleneck keeps >= 4 cells for the
        # reflect-padded convolutions even on tiny inputs.
        pad_h = max((-wh) % m, 4 * m - wh)
        pad_w = max((-ww) % m, 4 * m - ww)
        if pad_h or pad_w:
            # Reflect needs pad < size; replicate is the fallback for tiny inputs.
            mode = "reflect" if pad_h < wh and pad_w < ww else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.generator(x)[..., :wh, :ww]
        out = tensor_to_uint8(y)
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return out
