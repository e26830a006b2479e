"""Fine-level matching, FMM (Sec. 3.4), and the coordinates it produces.

For each coarse match (b, i, j) it gathers, for both images, the 1x1 coarse
token, a 3x3 window of the 1/4 map and a 5x5 window of the 1/2 map, all centred
on the cell's anchor pixel (8x, 8y) of the network input; the 35 tokens pass
self- and cross-attention, the two 5x5 sets give a 25x25 similarity S^f, and a
double softmax gives P^f. The best (a, b) pair (TopK k=1, not ArgMax) above
theta_f is the fine match; SRM adds sub-pixel offsets.

``FineMatchingConfig.attention`` (not the paper's design unless "self_cross") trades that context for CPU
time: "cross" drops the self-attention, "cross_one_way" also image 0's cross-attention (image 1's window attends to
image 0's tokens, image 0's are used as projected), "none" all attention (the 5x5 tokens, each plus its cell's coarse
token, pass pointwise MLPs; no 1/4 window).

``FineMatchingConfig.head = "expectation"`` (not the paper's head) is LoFTR's instead: the centre
element of window 0 (the cell anchor itself) is correlated with the 25 elements of window 1 and the
keypoint in image 1 is the heatmap's expectation. A 25-way soft-argmax degrades gracefully when the
heatmap is broad (it stays near the anchor), where a 625-way hard pick of (a, b) is either right or
up to a window away; a small CPU-trained model never learned the paper's head (model card).

Coordinate convention (exact for the strided convs used): coarse cell x <-> pixel 8x;
1/2-map index u <-> pixel 2u; 1/4-map index v <-> pixel 4v.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import FineMatchingConfig
from distillmatch_core.model.subpixel_refinement import SubpixelRefinement
from distillmatch_core.model.transformer_layers import AttentionLayer

HALF_STEP = 2.0  # pixels per 1/2-map index
QUARTER_STEP = 4.0
FINE_CHUNK = 512  # matches per pass through the attention layers and head at eager inference


def window_offsets(window: int, step: float, device) -> torch.Tensor:
    """(window*window, 2) pixel offsets (x, y) of a window's elements from its centre, row-major."""
    r = torch.arange(window, device=device, dtype=torch.float32) - (window - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1) * step


def heatmap_moments(heatmap: torch.Tensor, window: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """heatmap (..., window*window) probabilities -> expectation (..., 2) and total variance (...)
    (var_x + var_y), in window cells from the window centre."""
    coords = window_offsets(window, 1.0, heatmap.device)  # (n, 2) cells, row-major like fine_sim
    mean = heatmap @ coords
    second = heatmap @ (coords ** 2).sum(dim=1)
    variance = (second - (mean ** 2).sum(dim=-1)).clamp(min=0.0)
    return mean, variance


def cell_anchor(ids: torch.Tensor, grid_w: int, stride: int = 8) -> torch.Tensor:
    """(M,) flat 1/8-grid indices -> (M, 2) anchor pixels (x, y) in the network input."""
    return torch.stack([(ids % grid_w).float(), torch.div(ids, grid_w, rounding_mode="floor").float()],
                       dim=-1) * stride


def anchor_matches(i_ids: torch.Tensor, j_ids: torch.Tensor, grid_w0: int, grid_w1: int) -> Dict[str, torch.Tensor]:
    """The fine stage's outputs when it is skipped (``FineMatchingConfig.refine`` False): keypoints0/1
    (M, 2) are the coarse cells' anchors, every match valid, fine_score 1."""
    ones = torch.ones(i_ids.shape, device=i_ids.device)
    return {"keypoints0": cell_anchor(i_ids, grid_w0), "keypoints1": cell_anchor(j_ids, grid_w1),
            "fine_score": ones, "fine_valid": ones > 0}


def gather_windows(feat: torch.Tensor, b_ids: torch.Tensor, ids: torch.Tensor, grid_w: int, kernel: int,
                   stride: int, proj: nn.Conv2d) -> torch.Tensor:
    """feat (B, C, stride*gh, stride*gw) -> (M, kernel*kernel, d): ``proj`` (a 1x1 conv) of the
    kernel x kernel windows centred on map position (stride*y, stride*x) of each 1/8 cell (x, y);
    positions outside the map are zero (as zero padding of the projected map). kernel // 2 < stride.

    Gathers the M windows first and projects only those: unfolding the whole projected map computed
    and copied every cell's window (L of them) to keep M, which was most of the fine stage's CPU time.
    The map is cut into one stride x stride tile per 1/8 cell; a window lies inside the 2x2 tiles of
    its cell and the cells above / left of it, so four tile indices (at most B*L, never a flattened
    pixel index of up to B*h*w: the fp16 index range of graph_audit.py) and a fixed crop give it.
    """
    b, c, h, w = feat.shape
    s, radius = stride, kernel // 2
    gh, gw = h // s, grid_w
    tiles = feat.reshape(b, c, gh, s, gw, s).permute(0, 2, 4, 3, 5, 1).reshape(b * gh * gw, s, s, c)
    cy = torch.div(ids, grid_w, rounding_mode="floor")
    cx = ids % grid_w
    dy = torch.tensor([-1, -1, 0, 0], device=feat.device)
    dx = torch.tensor([-1, 0, -1, 0], device=feat.device)
    # (M, 4): the 2x2 tiles, row-major. A tile beyond the top / left edge is clamped onto the map: its
    # pixels are exactly those outside the map, which ``inside`` zeroes below.
    ty, tx = (cy[:, None] + dy).clamp(min=0), (cx[:, None] + dx).clamp(min=0)
    tile_ids = b_ids[:, None] * (gh * gw) + ty * gw + tx
    block = tiles[tile_ids].reshape(-1, 2, 2, s, s, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, 2 * s, 2 * s, c)
    window = block[:, s - radius:s + radius + 1, s - radius:s + radius + 1].reshape(-1, kernel * kernel, c)
    # The zero padding of the projected map: zero, not the projection's bias.
    r = torch.arange(kernel, device=feat.device) - radius
    inside_y = (cy[:, None] * s + r >= 0)[:, :, None]
    inside_x = (cx[:, None] * s + r >= 0)[:, None, :]
    inside = (inside_y & inside_x).reshape(-1, kernel * kernel)  # (M, k*k); bottom / right always inside
    projected = F.linear(window, proj.weight[:, :, 0, 0], proj.bias)
    return projected * inside[..., None].to(projected.dtype)


class PointwiseBlock(nn.Module):
    """(M, n, d) -> (M, n, d): x + LayerNorm(MLP(x)), each token on its own (``fine.attention`` "none")."""

    def __init__(self, d_model: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.ReLU(inplace=True),
                                 nn.Linear(2 * d_model, d_model))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.mlp(x))


class FineMatching(nn.Module):
    def __init__(self, cfg: FineMatchingConfig, half_channels: int, quarter_channels: int, coarse_dim: int):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.window = cfg.window_size
        if self.window not in (1, 3, 5, 7):
            # gather_windows takes a window from the 2x2 tiles of 1/8 cells around it (4 px at 1/2).
            raise ValueError(f"fine.window_size must be 1, 3, 5 or 7 (the paper: 5), got {self.window}")
        if cfg.attention not in ("self_cross", "cross", "cross_one_way", "none"):
            raise ValueError(f"fine.attention must be 'self_cross', 'cross', 'cross_one_way' or 'none', "
                             f"not {cfg.attention!r}")
        self.half_proj = nn.Conv2d(half_channels, d, 1)
        self.coarse_proj = nn.Linear(coarse_dim, d)
        # Without attention the 1/4 window's tokens could not reach the 1/2 window's, so it is not built.
        self.quarter_proj = nn.Conv2d(quarter_channels, d, 1) if cfg.attention != "none" else None
        n_tokens = self.window ** 2 + (0 if self.quarter_proj is None else 1 + 9)
        self.slot_embedding = nn.Parameter(torch.zeros(1, n_tokens, d))
        nn.init.trunc_normal_(self.slot_embedding, std=0.02)
        attention_layers = 0 if cfg.attention == "none" else cfg.num_layers
        self.self_layers = nn.ModuleList([AttentionLayer(d, cfg.num_heads, "softmax")
                                          for _ in range(attention_layers if cfg.attention == "self_cross" else 0)])
        self.cross_layers = nn.ModuleList([AttentionLayer(d, cfg.num_heads, "softmax")
                                           for _ in range(attention_layers)])
        self.pointwise_layers = nn.ModuleList([PointwiseBlock(d) for _ in range(cfg.num_layers - attention_layers)])
        self.out_proj = nn.Linear(d, d)
        self.temperature = 0.1
        if cfg.head not in ("double_softmax", "expectation"):
            raise ValueError(f"fine.head must be 'double_softmax' or 'expectation', not {cfg.head!r}")
        # The expectation head is already sub-pixel; it has no SRM.
        self.subpixel = SubpixelRefinement(d, cfg.subpixel_hidden) if cfg.head == "double_softmax" else None

    def _tokens(self, half, quarter, coarse_tokens, b_ids, ids, grid_w):
        """-> (M, n_tokens, d): [coarse token, 3x3 at 1/4, window at 1/2], or with ``attention`` "none"
        the 1/2 window's tokens plus the coarse token."""
        c = self.coarse_proj(coarse_tokens.reshape(-1, coarse_tokens.shape[-1])[b_ids * coarse_tokens.shape[1] + ids])
        h = gather_windows(half, b_ids, ids, grid_w, self.window, 4, self.half_proj)
        if self.quarter_proj is None:
            return h + c[:, None] + self.slot_embedding
        q = gather_windows(quarter, b_ids, ids, grid_w, 3, 2, self.quarter_proj)
        return torch.cat([c[:, None], q, h], dim=1) + self.slot_embedding

    def forward(self, half0: torch.Tensor, half1: torch.Tensor, quarter0: torch.Tensor, quarter1: torch.Tensor,
                coarse_tokens0: torch.Tensor, coarse_tokens1: torch.Tensor, b_ids: torch.Tensor,
                i_ids: torch.Tensor, j_ids: torch.Tensor, grid_w0: int, grid_w1: int) -> Dict[str, torch.Tensor]:
        """Returns fine_index0/1 (M,), fine_score (M,), fine_valid (M,) and keypoints0/1 (M, 2) in
        network-input pixels; the paper's head also fine_prob (M, W2, W2), fine_sim (M, W2, W2) and
        subpixel_offsets (M, 4); the expectation head fine_expectation (M, 2) and fine_variance (M,) in
        window cells, and fine_sim only in training mode (3DG-STFM's attentive loss reads it)."""
        t0 = self._tokens(half0, quarter0, coarse_tokens0, b_ids, i_ids, grid_w0)
        t1 = self._tokens(half1, quarter1, coarse_tokens1, b_ids, j_ids, grid_w1)
        if self.training or torch.onnx.is_in_onnx_export() or len(i_ids) <= FINE_CHUNK:
            return self._match_windows(t0, t1, i_ids, j_ids, grid_w0, grid_w1)
        # Eager inference: matches are independent from here on, and in chunks the (chunk, 35, d) activations
        # stay in cache (measured at 640x480, 1681 matches, 2-core CPU: ~10-20 % less time for this stage).
        chunks = [self._match_windows(t0[rows], t1[rows], i_ids[rows], j_ids[rows], grid_w0, grid_w1)
                  for rows in (slice(start, start + FINE_CHUNK) for start in range(0, len(i_ids), FINE_CHUNK))]
        return {key: torch.cat([chunk[key] for chunk in chunks]) for key in chunks[0]}

    def _match_windows(self, t0: torch.Tensor, t1: torch.Tensor, i_ids: torch.Tensor, j_ids: torch.Tensor,
                       grid_w0: int, grid_w1: int) -> Dict[str, torch.Tensor]:
        """Window tokens t0, t1 (M, n_tokens, d) of M matches -> forward's outputs for them."""
        n = self.window ** 2
        last = len(self.cross_layers) - 1
        for layer, cross_layer in enumerate(self.cross_layers):
            if self.self_layers:
                t0, t1 = self.self_layers[layer](t0, t0), self.self_layers[layer](t1, t1)
            # Only the 1/2 windows' tokens leave the last layer: their queries suffice there (the
            # other 10 tokens still serve as keys), 10/35 of that layer's per-token work saved.
            q0, q1 = (t0[:, -n:], t1[:, -n:]) if layer == last else (t0, t1)
            t0, t1 = (q0 if self.cfg.attention == "cross_one_way" else cross_layer(q0, t1)), cross_layer(q1, t0)
        for block in self.pointwise_layers:
            t0, t1 = block(t0), block(t1)
        w0 = self.out_proj(t0)
        w1 = self.out_proj(t1)
        d = w0.shape[-1]
        if self.subpixel is None:
            return self._expectation(w0, w1, i_ids, j_ids, grid_w0, grid_w1)
        sim = torch.einsum("mad,mbd->mab", w0, w1) / d / self.temperature
        prob = torch.softmax(sim, dim=2) * torch.softmax(sim, dim=1)  # double softmax, (M, n, n)
        score, flat = prob.reshape(prob.shape[0], n * n).topk(1, dim=1)
        score, flat = score[:, 0], flat[:, 0]
        a = torch.div(flat, n, rounding_mode="floor")
        bb = flat - a * n
        feat_a = torch.gather(w0, 1, a[:, None, None].expand(-1, 1, d))[:, 0]
        feat_b = torch.gather(w1, 1, bb[:, None, None].expand(-1, 1, d))[:, 0]
        offsets = self.subpixel(feat_a, feat_b)
        grid = window_offsets(self.window, HALF_STEP, prob.device)
        kpts0 = cell_anchor(i_ids, grid_w0) + grid[a] + offsets[:, :2] * HALF_STEP
        kpts1 = cell_anchor(j_ids, grid_w1) + grid[bb] + offsets[:, 2:] * HALF_STEP
        return {"fine_prob": prob, "fine_sim": sim, "fine_index0": a, "fine_index1": bb, "fine_score": score,
                "fine_valid": score > self.cfg.threshold, "subpixel_offsets": offsets,
                "keypoints0": kpts0, "keypoints1": kpts1}

    def _expectation(self, w0: torch.Tensor, w1: torch.Tensor, i_ids: torch.Tensor, j_ids: torch.Tensor,
                     grid_w0: int, grid_w1: int) -> Dict[str, torch.Tensor]:
        """w0, w1 (M, W2, d) window features -> image 1's keypoint as the expectation of the heatmap of
        window 0's centre element (the anchor) over window 1."""
        n, d = w0.shape[1], w0.shape[2]
        centre = n // 2
        # Inference needs only the anchor's row of the similarity; training also returns every row.
        if self.training:
            sim = torch.einsum("mad,mbd->mab", w0, w1) / d / self.temperature  # (M, W2, W2)
            heat_logits = sim[:, centre]
        else:
            sim = None
            heat_logits = torch.einsum("md,mbd->mb", w0[:, centre], w1) / d / self.temperature  # (M, W2)
        heatmap = torch.softmax(heat_logits, dim=1)
        mean, variance = heatmap_moments(heatmap, self.window)
        score, index1 = heatmap.topk(1, dim=1)  # TopK, not ArgMax (ONNX Runtime CUDA falls back on ArgMax)
        kpts0 = cell_anchor(i_ids, grid_w0)
        kpts1 = cell_anchor(j_ids, grid_w1) + mean * HALF_STEP
        score = score[:, 0]
        out = {"fine_expectation": mean, "fine_variance": variance, "fine_score": score,
               "fine_valid": score > self.cfg.threshold, "fine_index0": torch.full_like(index1[:, 0], centre),
               "fine_index1": index1[:, 0], "keypoints0": kpts0, "keypoints1": kpts1}
        if sim is not None:
            out["fine_sim"] = sim
        return out
