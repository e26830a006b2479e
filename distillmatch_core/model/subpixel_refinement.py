"""Sub-pixel refinement, SRM (Sec. 3.4): MLP on the two matched window features -> tanh offsets.

(M, 2*d) -> (M, 4) offsets in units of the fine grid step (one 1/2-resolution pixel),
(dx0, dy0, dx1, dy1), each in (-1, 1).
"""
from __future__ import annotations

import torch
from torch import nn


class SubpixelRefinement(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * d_model, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 4))
        nn.init.zeros_(self.mlp[-1].weight)  # start at "no correction"
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, feat0: torch.Tensor, feat1: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mlp(torch.cat([feat0, feat1], dim=-1)))
