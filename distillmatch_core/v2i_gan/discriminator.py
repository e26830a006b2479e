"""PatchGAN discriminator (D_I judges infrared, D_V judges visible images).

Each output cell scores one overlapping input patch, so the adversarial loss acts on local
texture/statistics (what makes an image look thermal) and leaves global layout to the
cycle / reconstruction / gradient-alignment losses.

Boundary: image (B, C, H, W) in [-1, 1] -> raw LSGAN scores (B, 1, H / 2**(num_layers-1) - 2, ...).
"""
from __future__ import annotations

from torch import nn

from distillmatch_core.v2i_gan.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, cfg: DiscriminatorConfig):
        super().__init__()
        c = cfg.base_channels
        layers = [nn.Conv2d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        width = c
        for i in range(1, cfg.num_layers):
            stride = 2 if i < cfg.num_layers - 1 else 1
            next_width = min(width * 2, c * 8)
            layers += [nn.Conv2d(width, next_width, 4, stride=stride, padding=1, bias=False),
                       nn.InstanceNorm2d(next_width, affine=True), nn.LeakyReLU(0.2, inplace=True)]
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image):
        return self.net(image)
