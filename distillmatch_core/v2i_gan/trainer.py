"""One optimisation step of V2I-GAN, in either training mode.

``cycle`` (the paper, unpaired): G_VI, G_IV, D_I, D_V with adversarial + cycle + identity +
structured gradient alignment losses. ``paired`` (aligned pairs exist here): G_VI and D_I
with reconstruction L1 + adversarial + gradient alignment.

Batches: visible (B, 3, H, W), infrared (B, 1, H, W), both in [-1, 1]; in cycle mode the
two need not show the same scene. Optional segmentation (B, H, W) labels of the visible image
switch the gradient alignment reference from image gradients to class boundaries.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import torch
from torch import nn

from distillmatch_core.v2i_gan.config import CYCLE, PAIRED, V2IGanTrainingConfig
from distillmatch_core.v2i_gan.discriminator import PatchDiscriminator
from distillmatch_core.v2i_gan.generator import V2IGenerator
from distillmatch_core.v2i_gan.losses import (
    cycle_consistency_loss,
    identity_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    reconstruction_loss,
    structured_gradient_alignment_loss,
)


class V2IGanTrainer(nn.Module):
    """Owns the networks and optimisers; ``step`` updates generators then discriminators."""

    def __init__(self, cfg: V2IGanTrainingConfig):
        super().__init__()
        self.cfg = cfg
        gen_vi = dataclasses.replace(cfg.generator, in_channels=3, out_channels=1)
        self.g_vi = V2IGenerator(gen_vi)
        self.d_i = PatchDiscriminator(1, cfg.discriminator)
        self.g_iv: Optional[V2IGenerator] = None
        self.d_v: Optional[PatchDiscriminator] = None
        if cfg.mode == CYCLE:
            self.g_iv = V2IGenerator(dataclasses.replace(cfg.generator, in_channels=1, out_channels=3))
            self.d_v = PatchDiscriminator(3, cfg.discriminator)
        generators = [m for m in (self.g_vi, self.g_iv) if m is not None]
        discriminators = [m for m in (self.d_i, self.d_v) if m is not None]
        betas = (cfg.adam_beta1, cfg.adam_beta2)
        self.optim_g = torch.optim.Adam([p for m in generators for p in m.parameters() if p.requires_grad],
                                        lr=cfg.learning_rate, betas=betas)
        self.optim_d = torch.optim.Adam([p for m in discriminators for p in m.parameters()],
                                        lr=cfg.learning_rate, betas=betas)

    # ------------------------------------------------------------------ losses

    def generator_losses(self, visible: torch.Tensor, infrared: torch.Tensor,
                         segmentation: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Weighted generator loss terms (key "total" is their sum) and the fakes for the D step."""
        w = self.cfg.losses
        out: Dict[str, torch.Tensor] = {}
        fake_ir = self.g_vi(visible)
        out["fake_infrared"] = fake_ir
        out["adv_vi"] = w.adversarial * lsgan_generator_loss(self.d_i(fake_ir))
        out["grad_vi"] = w.gradient_alignment * structured_gradient_alignment_loss(
            visible, fake_ir, segmentation, sigma=w.structure_sigma)
        if self.cfg.mode == PAIRED:
            out["rec_vi"] = w.reconstruction * reconstruction_loss(fake_ir, infrared)
        else:
            assert self.g_iv is not None and self.d_v is not None
            fake_vis = self.g_iv(infrared)
            out["fake_visible"] = fake_vis
            out["adv_iv"] = w.adversarial * lsgan_generator_loss(self.d_v(fake_vis))
            out["grad_iv"] = w.gradient_alignment * structured_gradient_alignment_loss(
                infrared, fake_vis, sigma=w.structure_sigma)
            out["cycle_v"] = w.cycle * cycle_consistency_loss(self.g_iv(fake_ir), visible)
            out["cycle_i"] = w.cycle * cycle_consistency_loss(self.g_vi(fake_vis), infrared)
            if w.identity > 0:
                # G_VI fed an infrared image (as 3 equal channels) should leave it unchanged, and vice versa.
                out["idt_vi"] = w.identity * w.cycle * identity_loss(self.g_vi(infrared.expand(-1, 3, -1, -1)),
                                                                     infrared)
                out["idt_iv"] = w.identity * w.cycle * identity_loss(self.g_iv(visible.mean(1, keepdim=True)),
                                                                     visible)
        out["total"] = sum(v for k, v in out.items() if not k.startswith("fake_"))
        return out

    def discriminator_losses(self, visible: torch.Tensor, infrared: torch.Tensor,
                             fake_infrared: torch.Tensor,
                             fake_visible: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        out = {"d_i": lsgan_discriminator_loss(self.d_i(infrared), self.d_i(fake_infrared.detach()))}
        if self.d_v is not None and fake_visible is not None:
            out["d_v"] = lsgan_discriminator_loss(self.d_v(visible), self.d_v(fake_visible.detach()))
        out["total"] = sum(out.values())
        return out

    # ------------------------------------------------------------------ optimisation

    def step(self, visible: torch.Tensor, infrared: torch.Tensor,
             segmentation: Optional[torch.Tensor] = None) -> Dict[str, float]:
        """One generator update then one discriminator update -> loss values (floats) for logging."""
        self.train()
        # Discriminators are fixed while the generators step (their grads would be discarded anyway).
        for d in (self.d_i, self.d_v):
            if d is not None:
                d.requires_grad_(False)
        g = self.generator_losses(visible, infrared, segmentation)
        self.optim_g.zero_grad(set_to_none=True)
        g["total"].backward()
        self.optim_g.step()
        for d in (self.d_i, self.d_v):
            if d is not None:
                d.requires_grad_(True)
        d_losses = self.discriminator_losses(visible, infrared, g["fake_infrared"], g.get("fake_visible"))
        self.optim_d.zero_grad(set_to_none=True)
        d_losses["total"].backward()
        self.optim_d.step()
        log = {k: float(v.detach()) for k, v in g.items() if not k.startswith("fake_")}
        log["g_total"] = log.pop("total")
        log.update({k: float(v.detach()) for k, v in d_losses.items() if k != "total"})
        return log

    @staticmethod
    def content_loss_keys(mode: str) -> tuple:
        """The non-adversarial terms that must fall on a fixed batch (adversarial ones oscillate)."""
        if mode == PAIRED:
            return ("rec_vi", "grad_vi")
        return ("cycle_v", "cycle_i", "grad_vi", "grad_iv", "idt_vi", "idt_iv")
