"""V2I-GAN losses: LSGAN adversarial, cycle consistency, identity, paired reconstruction and the
structured gradient alignment loss (Sec. 3.5).

All images are (B, C, H, W) tensors in [-1, 1]; every loss returns a scalar tensor.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- adversarial (LSGAN)


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least squares GAN: real patches -> 1, generated patches -> 0 (halved as in CycleGAN)."""
    return 0.5 * (F.mse_loss(real_scores, torch.ones_like(real_scores))
                  + F.mse_loss(fake_scores, torch.zeros_like(fake_scores)))


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator wants its patches scored as real (1)."""
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))


# ----------------------------------------------------------------------------- reconstruction-type


def cycle_consistency_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between x and G_back(G_forward(x))."""
    return F.l1_loss(reconstructed, original)


def identity_loss(output: torch.Tensor, target_domain_input: torch.Tensor) -> torch.Tensor:
    """L1 between G(y) and y for y already in G's target domain, compared in gray.

    Channel counts differ between domains (3 visible, 1 infrared), so both sides are reduced to
    their channel mean: the identity constraint is on intensity, colour cannot be recovered.
    """
    return F.l1_loss(output.mean(dim=1, keepdim=True), target_domain_input.mean(dim=1, keepdim=True))


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Paired training: L1 to the aligned real image (L1 keeps edges sharper than L2)."""
    return F.l1_loss(output, target)


# ----------------------------------------------------------------------------- structured gradient alignment


def image_gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> Sobel (gx, gy), each (B, C, H, W), replicate-padded."""
    c = image.shape[1]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=image.device,
                      dtype=image.dtype) / 8.0
    weight = torch.stack([kx, kx.t()])[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    g = F.conv2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), weight, groups=c)
    return g[:, 0::2], g[:, 1::2]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), replicate borders."""
    if sigma <= 0:
        return x
    radius = max(1, int(round(3 * sigma)))
    coords = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
                    groups=c)


def structure_tensor(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) -> (B, 3, H, W) smoothed [Jxx, Jxy, Jyy], summed over channels.

    Outer products of gradients are sign-free: an edge whose polarity flips between the
    visible and the thermal image (common) has the same tensor. Summing over channels makes
    the same definition work for RGB, gray and one-hot segmentation maps.
    """
    gx, gy = image_gradients(image)
    j = torch.stack([(gx * gx).sum(1), (gx * gy).sum(1), (gy * gy).sum(1)], dim=1)
    return gaussian_blur(j, sigma)


def segmentation_to_one_hot(segmentation: torch.Tensor, num_classes: Optional[int] = None) -> torch.Tensor:
    """(B, H, W) integer labels -> (B, K, H, W) float one-hot; (B, K, H, W) is passed through."""
    if segmentation.dim() == 4:
        return segmentation.float()
    k = int(num_classes or int(segmentation.max().item()) + 1)
    return F.one_hot(segmentation.long().clamp_min(0), k).permute(0, 3, 1, 2).float()


def structured_gradient_alignment_loss(source: torch.Tensor, output: torch.Tensor,
                                       segmentation: Optional[torch.Tensor] = None,
                                       sigma: float = 1.5, eps: float = 1e-8) -> torch.Tensor:
    """1 - cosine similarity of local structure tensors, weighted by the reference's edge strength.

    Reference structure: the segmentation map's class boundaries when ``segmentation`` is given
    ((B, H, W) labels or (B, K, H, W) one-hot/probabilities, at the output's size), else the
    ``source`` image's own gradients (B, Cs, H, W). ``output`` (B, Co, H, W) is asked to have edges
    of the same orientation wherever the reference has edges; where the reference is flat the
    output is free (thermal images legitimately lose visible texture), and edge polarity and
    contrast are free too (they are what the translation changes).
    """
    reference = segmentation_to_one_hot(segmentation) if segmentation is not None else source
    if reference.shape[-2:] != output.shape[-2:]:
        raise ValueError(f"reference {tuple(reference.shape[-2:])} and output {tuple(output.shape[-2:])} sizes differ")
    t_ref = structure_tensor(reference.to(output.dtype), sigma)
    t_out = structure_tensor(output, sigma)
    inner = t_ref[:, 0] * t_out[:, 0] + 2 * t_ref[:, 1] * t_out[:, 1] + t_ref[:, 2] * t_out[:, 2]
    norm_ref = t_ref[:, 0] ** 2 + 2 * t_ref[:, 1] ** 2 + t_ref[:, 2] ** 2
    norm_out = t_out[:, 0] ** 2 + 2 * t_out[:, 1] ** 2 + t_out[:, 2] ** 2
    cosine = inner / torch.sqrt((norm_ref + eps) * (norm_out + eps))
    # Weight by the reference edge strength (trace), a constant w.r.t. the generator.
    weight = (t_ref[:, 0] + t_ref[:, 2]).detach()
    return ((1.0 - cosine) * weight).sum() / weight.sum().clamp_min(eps)
