"""Frozen vision-foundation-model teacher (DINOv2 ViT-S/14 with registers, or DINOv3 ViT-S/16).

Training only: the student replaces it at inference, so a deployed model never
needs these weights. (B, 1, H, W) in [0, 1] -> F_tea (B, 384, H/8, W/8).
The input is resized by patch/8 (7/8 for /14, 2x for /16) so the patch grid
lands on the 1/8 grid, then the patch tokens are bilinearly resampled to exactly
(H/8, W/8) (Sec. 3.1).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import TeacherConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TeacherUnavailableError(RuntimeError):
    """Weights could not be found locally nor fetched from the hub."""


def create_vfm(cfg: TeacherConfig) -> nn.Module:
    """timm's real loading path: a local file via ``pretrained_cfg_overlay``, else the HF hub."""
    import timm

    kwargs = dict(num_classes=0, dynamic_img_size=True)
    if not cfg.pretrained:
        return timm.create_model(cfg.model_name, pretrained=False, **kwargs)
    if cfg.weights_path:
        path = Path(cfg.weights_path).expanduser()
        if not path.is_file():
            raise TeacherUnavailableError(f"teacher weights file not found: {path}")
        kwargs["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        return timm.create_model(cfg.model_name, pretrained=True, **kwargs)
    except Exception as exc:  # network, missing hub cache, wrong file: all mean "no teacher"
        raise TeacherUnavailableError(
            f"could not load pretrained {cfg.model_name} ({exc}); pass teacher.weights_path=<file> "
            "or disable distillation with teacher.enabled=false") from exc


class VFMTeacher(nn.Module):
    def __init__(self, cfg: TeacherConfig, model: nn.Module | None = None):
        super().__init__()
        self.vfm = model if model is not None else create_vfm(cfg)
        patch = self.vfm.patch_embed.patch_size
        self.patch_size = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.num_prefix_tokens = int(getattr(self.vfm, "num_prefix_tokens", 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.vfm.parameters():
            p.requires_grad_(False)
        self.vfm.eval()

    def train(self, mode: bool = True) -> "VFMTeacher":
        super().train(mode)
        self.vfm.eval()  # frozen: dropout / stochastic depth stay off
        return self

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        gh, gw = h // 8, w // 8
        x = image[:, :1].expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        x = F.interpolate(x, size=(gh * self.patch_size, gw * self.patch_size), mode="bilinear",
                          align_corners=False)
        tokens = self.vfm.forward_features(x)[:, self.num_prefix_tokens:]  # (B, gh*gw, C)
        feat = tokens.transpose(1, 2).reshape(b, -1, gh, gw)
        return feat.float()
