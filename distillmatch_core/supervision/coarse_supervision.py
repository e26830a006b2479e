"""Coarse ground truth: mutual nearest neighbours between the two 1/8 grids under the true geometry.

-> the GT match list (b_ids, i_ids, j_ids), each (M,); ``dense_ground_truth`` makes the (B, L0, L1) matrix.
Cell x of a grid is anchored at pixel 8x (see fine_matching.py for the convention).
"""
from __future__ import annotations

from typing import Tuple

import torch

from distillmatch_core.supervision.pair_geometry import PairGeometry


def grid_anchors(h: int, w: int, batch: int, device, stride: int = 8) -> torch.Tensor:
    """-> (B, h*w, 2) anchor pixels (x, y), row-major."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    pts = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1).float() * stride
    return pts[None].expand(batch, -1, -1)


def nearest_cell(pts: torch.Tensor, h: int, w: int, stride: int = 8) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 2) pixels -> (B, N) flat cell index and in-grid mask."""
    cell = torch.round(pts / stride).long()
    ok = (cell[..., 0] >= 0) & (cell[..., 0] < w) & (cell[..., 1] >= 0) & (cell[..., 1] < h)
    idx = cell[..., 1].clamp(0, h - 1) * w + cell[..., 0].clamp(0, w - 1)
    return idx, ok


def coarse_ground_truth(geometry: PairGeometry, batch: int, grid0: Tuple[int, int], grid1: Tuple[int, int],
                        device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h0, w0 = grid0
    h1, w1 = grid1
    pts0 = grid_anchors(h0, w0, batch, device)
    pts1 = grid_anchors(h1, w1, batch, device)
    w01, ok01 = geometry.warp01(pts0)
    w10, ok10 = geometry.warp10(pts1)
    j_of_i, in1 = nearest_cell(w01, h1, w1)
    i_of_j, in0 = nearest_cell(w10, h0, w0)
    ok_i = ok01 & in1
    ok_j = ok10 & in0
    back = torch.gather(i_of_j, 1, j_of_i)  # the cell that j maps back to
    back_ok = torch.gather(ok_j, 1, j_of_i)
    l0 = h0 * w0
    mutual = ok_i & back_ok & (back == torch.arange(l0, device=device)[None])
    b_ids, i_ids = torch.nonzero(mutual, as_tuple=True)
    j_ids = j_of_i[b_ids, i_ids]
    return b_ids, i_ids, j_ids


def dense_ground_truth(gt_pairs, batch: int, l0: int, l1: int, device) -> torch.Tensor:
    """(b_ids, i_ids, j_ids) -> (B, L0, L1) float {0, 1} matrix."""
    conf_gt = torch.zeros(batch, l0, l1, device=device)
    conf_gt[gt_pairs[0], gt_pairs[1], gt_pairs[2]] = 1.0
    return conf_gt
