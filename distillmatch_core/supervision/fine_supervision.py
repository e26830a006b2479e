"""Fine ground truth inside the 5x5 windows of each coarse match.

For window element a of image 0 (pixel anchor0 + offset_a), its true position in image 1 is
rounded to the nearest element b of image 1's window; (a, b) is a positive when it lands inside.
-> fine_gt (M, W2, W2) float {0, 1}, and for each a the (M, W2) validity of its correspondence.

The expectation head (fine.head = "expectation") is supervised by ``fine_expectation_target``
instead: where image 0's cell anchor truly lands in image 1, in window cells from window 1's centre.
"""
from __future__ import annotations

from typing import Tuple

import torch

from distillmatch_core.model.fine_matching import HALF_STEP, cell_anchor, window_offsets
from distillmatch_core.supervision.pair_geometry import PairGeometry


def fine_ground_truth(geometry: PairGeometry, b_ids: torch.Tensor, i_ids: torch.Tensor, j_ids: torch.Tensor,
                      grid_w0: int, grid_w1: int, window: int) -> Tuple[torch.Tensor, torch.Tensor]:
    device = i_ids.device
    m = i_ids.shape[0]
    n = window * window
    offs = window_offsets(window, HALF_STEP, device)  # (n, 2)
    pts0 = cell_anchor(i_ids, grid_w0)[:, None] + offs[None]  # (M, n, 2)
    fine_gt = torch.zeros(m, n, n, device=device)
    if m == 0:
        return fine_gt, torch.zeros(m, n, dtype=torch.bool, device=device)
    warped, valid = geometry.warp01_matches(b_ids, pts0)
    local = (warped - cell_anchor(j_ids, grid_w1)[:, None]) / HALF_STEP + (window - 1) / 2  # window units
    cell = torch.round(local).long()
    inside = (cell >= 0).all(-1) & (cell < window).all(-1) & valid
    b_idx = cell[..., 1].clamp(0, window - 1) * window + cell[..., 0].clamp(0, window - 1)
    rows = torch.nonzero(inside, as_tuple=True)
    fine_gt[rows[0], rows[1], b_idx[rows]] = 1.0
    return fine_gt, inside


def fine_expectation_target(geometry: PairGeometry, b_ids: torch.Tensor, i_ids: torch.Tensor, j_ids: torch.Tensor,
                            grid_w0: int, grid_w1: int, window: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """-> target (M, 2) (x, y) in window cells from window 1's centre, and valid (M,): the anchor's
    correspondence exists and lies inside the window (|x|, |y| <= (window - 1) / 2, as LoFTR)."""
    m = i_ids.shape[0]
    if m == 0:
        return torch.zeros(m, 2, device=i_ids.device), torch.zeros(m, dtype=torch.bool, device=i_ids.device)
    warped, valid = geometry.warp01_matches(b_ids, cell_anchor(i_ids, grid_w0)[:, None])
    target = (warped[:, 0] - cell_anchor(j_ids, grid_w1)) / HALF_STEP
    inside = (target.abs() <= (window - 1) / 2).all(dim=-1) & valid[:, 0]
    return target, inside
