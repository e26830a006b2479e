"""Coarse-level matching at 1/8 (Sec. 3.4, CMM).

Features (B, C, h, w) of both images -> LoFTR linear-attention self/cross layers ->
linear projections -> similarity S (B, L0, L1) / temperature -> matching
probabilities (row softmax P0, column softmax P1; dual-softmax P0*P1 selectable)
-> matches above theta_c that are mutual nearest neighbours, away from the border.

Selection is written once, in a static-shape form (per-row TopK(k=1) instead of
argmax, top-K rows with a validity mask instead of nonzero), so the eager path
and the ONNX/TensorRT graph are the same code and never form flattened L0*L1
pair indices (they overflow fp16 in TensorRT: 4800^2 > 65504).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from distillmatch_core.config import CoarseMatchingConfig
from distillmatch_core.model.positional_encoding import add_sincos_to_map, random_grid_offsets
from distillmatch_core.model.transformer_layers import AttentionLayer


class CoarseTransformer(nn.Module):
    """(B, L0, C), (B, L1, C) -> same shapes, after interleaved self / cross layers."""

    def __init__(self, cfg: CoarseMatchingConfig):
        super().__init__()
        self.layer_names = list(cfg.layer_names)
        for name in self.layer_names:
            if name not in ("self", "cross"):
                raise ValueError(f"coarse layer_names must be 'self' or 'cross', got {name!r}")
        self.layers = nn.ModuleList([AttentionLayer(cfg.d_model, cfg.num_heads, "linear")
                                     for _ in self.layer_names])

    def forward(self, f0: torch.Tensor, f1: torch.Tensor):
        for layer, name in zip(self.layers, self.layer_names):
            if name == "self":
                f0, f1 = layer(f0, f0), layer(f1, f1)
            else:
                f0, f1 = layer(f0, f1), layer(f1, f0)
        return f0, f1


@dataclass
class CoarseMatches:
    """Static-shape coarse matches: K candidate rows per batch item.

    i_ids, j_ids: (B, K) long indices into the 1/8 grids of image 0 / image 1;
    confidence: (B, K); valid: (B, K) bool (threshold, mutual NN, border).
    """

    i_ids: torch.Tensor
    j_ids: torch.Tensor
    confidence: torch.Tensor
    valid: torch.Tensor

    def flatten_valid(self):
        """-> b_ids, i_ids, j_ids, confidence, each (M,), the valid matches only (eager use)."""
        b_ids, k_ids = torch.nonzero(self.valid, as_tuple=True)
        return b_ids, self.i_ids[b_ids, k_ids], self.j_ids[b_ids, k_ids], self.confidence[b_ids, k_ids]


def border_mask(h: int, w: int, border: int, device) -> torch.Tensor:
    """(h*w,) bool, False within ``border`` cells of the grid edge."""
    ys = torch.arange(h, device=device)
    xs = torch.arange(w, device=device)
    ok_y = (ys >= border) & (ys < h - border)
    ok_x = (xs >= border) & (xs < w - border)
    return (ok_y[:, None] & ok_x[None, :]).reshape(-1)


def column_max(conf: torch.Tensor) -> torch.Tensor:
    """(B, L0, L1) -> (B, L1), the maximum over L0.

    Eager: ``amax`` (no index tensor, much faster than ``max()`` on CPU). In an exported graph,
    ONNX Runtime's CPU ReduceMax over a non-last axis takes ~150 ms on a 4800^2 matrix; elementwise
    Max of the two halves until few rows are left, then a ReduceMax over those, gives the same values
    in ~40 ms (a transpose first is no faster). For an odd row count the halves share the middle row:
    max is idempotent, so the overlap changes nothing.
    """
    if torch.onnx.is_in_onnx_export():
        while conf.shape[1] > 64:
            rows = conf.shape[1]
            half = (rows + 1) // 2
            conf = torch.maximum(conf[:, :half], conf[:, rows - half:])
    return conf.amax(dim=1)


def column_holding_value(row_val: torch.Tensor, col_val: torch.Tensor):
    """Row maxima (..., L0) and column maxima (..., L1) -> for each row, a column whose maximum equals the row's
    (..., L0), and whether one exists (..., L0): a lookup among the sorted column maxima, no pass over a matrix."""
    sorted_col, order = col_val.sort(dim=-1)
    pos = torch.searchsorted(sorted_col, row_val).clamp_(max=col_val.shape[-1] - 1)
    return torch.gather(order, -1, pos), torch.gather(sorted_col, -1, pos) == row_val


def mutual_rows_from_maxima(conf: torch.Tensor, col_val: torch.Tensor):
    """conf (B, L0, L1), its column maxima col_val (B, L1) -> row maxima (B, L0), their columns (B, L0) and
    whether each row's maximum is also its column's (B, L0): the mutual nearest neighbours.

    Without an index pass over the matrix: row i is mutual with column j exactly when its maximum equals
    column j's maximum and conf[i, j] holds it, so j is found by looking the row maximum up among the L1
    column maxima and confirmed with one gather. On a CPU ``amax`` is ~4x faster than ``max`` with indices
    (4800^2: 6.6 ms against 25.6 ms). Confident matches saturate: many columns can share one maximum (e.g.
    1.0), so a row whose lookup lands on another column of its value gets a real argmax (few rows). Rows
    that are not mutual get an arbitrary column. Where a row's maximum itself is tied between columns, the
    column may differ from ``max``'s first index; both are mutual nearest neighbours then.
    """
    row_val = conf.amax(dim=2)
    row_idx, hit = column_holding_value(row_val, col_val)
    holds = torch.gather(conf, 2, row_idx[..., None])[..., 0] == row_val
    b_ids, r_ids = torch.nonzero(hit & ~holds, as_tuple=True)
    if len(b_ids):
        row_idx[b_ids, r_ids] = conf[b_ids, r_ids].argmax(dim=1)
    mutual = torch.gather(col_val, 1, row_idx) == row_val
    return row_val, row_idx, mutual


def select_coarse_matches(conf: torch.Tensor, grid0: tuple, grid1: tuple, threshold: float, border: int,
                          max_matches: Optional[int] = None) -> CoarseMatches:
    """conf (B, L0, L1) -> CoarseMatches with K = max_matches (or L0) rows."""
    b, l0, l1 = conf.shape
    col_val = column_max(conf)  # (B, L1)
    if torch.onnx.is_in_onnx_export():
        row_val, row_idx = conf.topk(1, dim=2)  # (B, L0, 1): TopK not ArgMax (ORT CUDA fallback)
        row_val, row_idx = row_val[..., 0], row_idx[..., 0]
        mutual = row_val >= torch.gather(col_val, 1, row_idx)  # the chosen column's best score
    else:
        row_val, row_idx, mutual = mutual_rows_from_maxima(conf, col_val)
    return matches_from_row_maxima(row_val, row_idx, mutual, grid0, grid1, threshold, border, max_matches)


def matches_from_row_maxima(row_val: torch.Tensor, row_idx: torch.Tensor, mutual: torch.Tensor, grid0: tuple,
                            grid1: tuple, threshold: float, border: int,
                            max_matches: Optional[int] = None) -> CoarseMatches:
    """Each row's best confidence (B, L0), its column (B, L0) and whether the two are mutual nearest
    neighbours (B, L0) -> CoarseMatches: threshold and border applied, the K most confident rows first."""
    b, l0 = row_val.shape
    ok0 = border_mask(grid0[0], grid0[1], border, row_val.device)[None].expand(b, -1)
    ok1 = torch.gather(border_mask(grid1[0], grid1[1], border, row_val.device)[None].expand(b, -1), 1, row_idx)
    valid = mutual & ok0 & ok1 & (row_val > threshold)
    score = torch.where(valid, row_val, torch.zeros_like(row_val))
    k = l0 if max_matches is None else min(int(max_matches), l0)
    top_score, i_ids = score.topk(k, dim=1)
    j_ids = torch.gather(row_idx, 1, i_ids)
    top_valid = torch.gather(valid, 1, i_ids)
    return CoarseMatches(i_ids=i_ids, j_ids=j_ids, confidence=top_score, valid=top_valid)


def mutual_maxima_blockwise(desc0: torch.Tensor, desc1: torch.Tensor, temperature: float, match_type: str,
                            block_rows: int = 128, bf16_sums: bool = False):
    """Unit descriptors desc0 (B, L0, d), desc1 (B, L1, d) -> for each row of the confidence matrix of
    ``confidence_from_similarity``: its maximum (B, L0), that maximum's column (B, L0), and whether it is
    also its column's maximum (B, L0), without forming the (L0, L1) matrix.

    Why: at 640x480 the dense path writes and re-reads a 4800^2 matrix (92 MB) some eight times, and a
    whole-matrix product that large runs at a third of the speed of the same product in cache-sized row
    blocks on a CPU. Here the similarity is formed block by block, twice, and never leaves the cache:
    pass 1 sums exp(S) per row and per column; pass 2 forms log-confidences directly from one product
    of descriptors augmented with the log-normalisers (log P = 2S - log r_i - log c_j for dual softmax,
    S - log r_i for softmax, so no exp and no elementwise pass) and takes row and column maxima.
    Measured on the 2-core CPU at 640x480: ~70 ms against ~120 ms for similarity + selection. (On a GPU
    the dense path is one large kernel per step and stays the better choice: DistillMatch.forward.)
    The log domain and the blocked sums round differently from the dense path, so a row whose best two
    columns tie to float precision could pick the other one; the tests compare with the dense selection.

    ``bf16_sums`` (``cpu_bf16``): the first pass's products in bfloat16, on CPUs with bf16 in hardware. They only set
    the row and column normalisers: bf16's rounding of S / T (up to ~0.04 at |S / T| = 20) moves the
    log-normalisers by a few hundredths, the confidences by a few per cent; the second pass stays float32. Pass 1
    measured 25 against 40 ms at 640x480 (AVX512-BF16, 2 cores).
    """
    with torch.autocast(device_type=desc0.device.type, enabled=False):  # exp(S) reaches e^(1/T): float32 only
        return _mutual_maxima_blockwise(desc0.float(), desc1.float(), temperature, match_type, block_rows, bf16_sums)


def _mutual_maxima_blockwise(desc0: torch.Tensor, desc1: torch.Tensor, temperature: float, match_type: str,
                             block_rows: int, bf16_sums: bool):
    b, l0, _ = desc0.shape
    l1 = desc1.shape[1]
    row_val = desc0.new_empty(b, l0)
    row_idx = torch.empty(b, l0, dtype=torch.long, device=desc0.device)
    mutual = torch.empty(b, l0, dtype=torch.bool, device=desc0.device)
    col_val = desc0.new_empty(b, l1)
    block = desc0.new_empty(min(block_rows, l0), l1)
    low = torch.empty_like(block, dtype=torch.bfloat16) if bf16_sums else None  # pass 1 products in bf16
    for k in range(b):
        d0 = desc0[k] * (1.0 / temperature)  # (L0, d)
        d1t = desc1[k].t().contiguous()  # (d, L1)
        row_sum = desc0.new_empty(l0)
        col_sum = desc0.new_zeros(l1)
        d0_low, d1t_low = (d0.bfloat16(), d1t.bfloat16()) if bf16_sums else (None, None)
        for start in range(0, l0, block_rows):
            rows = block[:min(block_rows, l0 - start)]
            if bf16_sums:
                rows.copy_(torch.matmul(d0_low[start:start + len(rows)], d1t_low, out=low[:len(rows)]))
            else:
                torch.matmul(d0[start:start + len(rows)], d1t, out=rows)
            rows.exp_()  # |S| <= 1/T: no max subtraction needed (see CoarseMatching.__init__)
            torch.sum(rows, dim=1, out=row_sum[start:start + len(rows)])
            col_sum.add_(rows.sum(dim=0))
        ones0, ones1 = d0.new_ones(l0, 1), d1t.new_ones(1, l1)
        if match_type == "dual_softmax":
            a0 = torch.cat([2.0 * d0, -row_sum.log()[:, None], ones0], dim=1)
            a1 = torch.cat([d1t, ones1, -col_sum.log()[None]], dim=0)
        else:
            a0 = torch.cat([d0, -row_sum.log()[:, None]], dim=1)
            a1 = torch.cat([d1t, ones1], dim=0)
        col_max = col_val[k].fill_(-float("inf"))
        for start in range(0, l0, block_rows):
            rows = block[:min(block_rows, l0 - start)]
            stop = start + len(rows)
            torch.matmul(a0[start:stop], a1, out=rows)  # log-confidences of the block
            torch.amax(rows, dim=1, out=row_val[k, start:stop])  # amax: no index pass (max() costs ~4x)
            torch.maximum(col_max, rows.amax(dim=0), out=col_max)
        row_idx[k], mutual[k] = _mutual_columns(row_val[k], col_max, a0, a1)
    return row_val.exp_(), row_idx, mutual


def _mutual_columns(row_val: torch.Tensor, col_val: torch.Tensor, a0: torch.Tensor, a1: torch.Tensor):
    """Row and column maxima (L0,), (L1,) of the matrix a0 @ a1 -> each row's column (L0,) where it is a mutual
    nearest neighbour, and whether it is (L0,).

    As mutual_rows_from_maxima, but the matrix is gone: a row is mutual exactly when its maximum is also a
    column's maximum (both are the same computed entries, so they compare exactly), and the column is found by
    looking the value up among the sorted column maxima. The entry is then recomputed as a dot product to confirm
    it is this row's (a different summation order: compared with a tolerance); a row whose value another
    column's maximum shares by coincidence gets its row recomputed (few rows, if any).
    """
    idx, hit = column_holding_value(row_val, col_val)
    terms = a0 * a1.t()[idx]  # (L0, K): the looked-up entry of every row, as its products
    entry = terms.sum(dim=1)
    # Rounding scales with the terms, not with their sum: 2S/T and the log-normalisers (tens) nearly cancel.
    tolerance = 1e-5 * terms.abs().sum(dim=1)
    mutual = hit & ((entry - row_val).abs() <= tolerance)
    for r in torch.nonzero(hit & ~mutual)[:, 0].tolist():
        row = a0[r] @ a1
        idx[r] = row.argmax()
        scale = (a0[r] * a1[:, idx[r]]).abs().sum()
        mutual[r] = bool((col_val[idx[r]] - row[idx[r]]).abs() <= 1e-5 * scale)
    return idx, mutual


class CoarseMatching(nn.Module):
    def __init__(self, cfg: CoarseMatchingConfig, in_channels: int):
        super().__init__()
        self.cfg = cfg
        self.input_proj = nn.Identity() if in_channels == cfg.d_model else nn.Conv2d(in_channels, cfg.d_model, 1)
        self.transformer = CoarseTransformer(cfg)
        self.proj0 = nn.Linear(cfg.d_model, cfg.d_model)
        self.proj1 = self.proj0  # one projection: both images live in one descriptor space
        if cfg.match_type not in ("softmax", "dual_softmax"):
            raise ValueError(f"coarse match_type must be softmax or dual_softmax, got {cfg.match_type!r}")
        # The confidence exponentiates S without max subtraction (|S| <= 1/T): exp(1/T), and
        # exp(2/T) for dual softmax, must stay finite in float32 (< exp(88.7)).
        min_temperature = (2.0 if cfg.match_type == "dual_softmax" else 1.0) / 88.0
        if not cfg.temperature >= min_temperature:
            raise ValueError(f"coarse temperature {cfg.temperature} is below {min_temperature:.4f}, where "
                             f"{cfg.match_type} confidences overflow float32")

    def forward(self, feat0: torch.Tensor, feat1: torch.Tensor, similarity: bool = True) -> Dict[str, torch.Tensor]:
        """feat (B, C, h, w) -> tokens (B, L, d), unit descriptors coarse_desc0/1 (B, L, d), sim_matrix
        (B, L0, L1) unless ``similarity`` is False (eval only: eager selection works blockwise from the
        descriptors, mutual_maxima_blockwise) and, in training, log_prob0/1 (row / column log-softmax).
        The confidence matrix for selection is ``confidence(sim)``."""
        f0, f1 = self.transformer(self._tokens(feat0), self._tokens(feat1))
        # Cosine similarity bounds |S| by 1/temperature, so one exp() serves both softmax
        # directions without max-subtraction passes over the (L0, L1) matrix, which dominate
        # CPU time at 640x480 (4800^2 entries, memory bound).
        d0 = F.normalize(self.proj0(f0), dim=-1)
        d1 = F.normalize(self.proj1(f1), dim=-1)
        out = {"coarse_tokens0": f0, "coarse_tokens1": f1, "coarse_desc0": d0, "coarse_desc1": d1}
        if not (similarity or self.training):
            return out
        # 1/temperature is folded into d0: one pass over (L0, L1) fewer.
        sim = torch.bmm(d0 * (1.0 / self.cfg.temperature), d1.transpose(1, 2))  # (B, L0, L1)
        out["sim_matrix"] = sim
        if self.training:
            # The losses work on log-probabilities; the (L0, L1) confidence is only needed for
            # selecting matches, which training does not do (the fine stage gets GT cells).
            out["log_prob0"] = torch.log_softmax(sim.float(), dim=2)
            out["log_prob1"] = torch.log_softmax(sim.float(), dim=1)
        return out

    def _tokens(self, feat: torch.Tensor) -> torch.Tensor:
        """feat (B, C, h, w) -> (B, h*w, d): projected, plus the positional encoding, whose offset is
        drawn per image in training (each image its own, so absolute position says nothing across them)."""
        jitter = self.cfg.train_pe_jitter if self.training else 0.0
        x = add_sincos_to_map(self.input_proj(feat), random_grid_offsets(feat.shape[0], jitter, feat.device))
        return x.flatten(2).transpose(1, 2)

    def confidence(self, sim: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """(B, L0, L1) similarity -> matching confidence of this model's match type."""
        return confidence_from_similarity(sim, self.cfg.match_type, in_place)


def confidence_from_similarity(sim: torch.Tensor, match_type: str, in_place: bool = False) -> torch.Tensor:
    """(B, L0, L1) similarity -> matching confidence (row softmax, or dual softmax P0 * P1).

    Dual softmax is computed as exp(S)^2 / (row sum * column sum): in-place multiplies by
    reciprocals on one buffer instead of separate P0, P1 and product tensors. At 640x480 each
    pass over the 4800^2 matrix costs ~10-15 ms on a 2-core CPU and divisions cost ~3x more.
    ``in_place`` reuses ``sim``'s memory (fp32 only): a fresh 92 MB buffer costs page faults too.
    """
    e = sim.exp_() if in_place and sim.dtype == torch.float32 else sim.float().exp()
    row_inv = e.sum(dim=2, keepdim=True).reciprocal_()  # (B, L0, 1)
    if match_type != "dual_softmax":
        return e.mul_(row_inv)
    # Column sums as a (1 x L0) @ (L0 x L1) product: a reduction across rows walks the matrix with
    # stride L1, GEMV streams it (2.7x faster in torch, and ONNX Runtime's ReduceSum is slower still).
    col_inv = torch.matmul(e.new_ones(e.shape[0], 1, e.shape[1]), e).reciprocal_()  # (B, 1, L1)
    return e.mul_(e).mul_(row_inv).mul_(col_inv)  # mul_(e), not square_(): pow's kernel is ~1.4x slower
