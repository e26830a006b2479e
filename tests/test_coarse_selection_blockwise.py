"""Eager coarse selection without the (L0, L1) matrix gives the dense selection's matches."""
import pytest
import torch
import torch.nn.functional as F

from distillmatch_core.model.coarse_matching import (confidence_from_similarity, matches_from_row_maxima,
                                                     mutual_maxima_blockwise, select_coarse_matches)


def descriptors(seed: int, dim: int = 16, l0: int = 300, related: int = 200, l1: int = 350):
    """Two batches of unit descriptors; ``related`` cells of image 0 have a noisy copy in image 1, the rest are
    unrelated (so some rows are mutual and some are not)."""
    g = torch.Generator().manual_seed(seed)
    d0 = F.normalize(torch.randn(2, l0, dim, generator=g), dim=-1)
    copies = d0[:, :related] + 0.3 * torch.randn(2, related, dim, generator=g)
    d1 = F.normalize(torch.cat([copies, torch.randn(2, l1 - related, dim, generator=g)], 1), dim=-1)
    return d0, d1


def dense_maxima(conf):
    """The reference from the full matrix: each row's maximum (B, L0), its column, and whether it is mutual."""
    ref_val, ref_idx = conf.max(dim=2)
    return ref_val, ref_idx, ref_val >= torch.gather(conf.amax(dim=1), 1, ref_idx)


def as_set(m):
    return {(b, int(i), int(j)) for b in range(m.valid.shape[0])
            for i, j, v in zip(m.i_ids[b], m.j_ids[b], m.valid[b]) if v}


@pytest.mark.parametrize("match_type", ["dual_softmax", "softmax"])
@pytest.mark.parametrize("block_rows", [1, 7, 128, 1000])  # single rows, a ragged last block, one block
def test_blockwise_maxima_match_the_dense_confidence(match_type, block_rows):
    d0, d1 = descriptors(0)
    temperature = 0.05
    conf = confidence_from_similarity(d0 @ d1.transpose(1, 2) / temperature, match_type)  # (2, 300, 350)
    ref_val, ref_idx, ref_mutual = dense_maxima(conf)

    row_val, row_idx, mutual = mutual_maxima_blockwise(d0, d1, temperature, match_type, block_rows)
    assert row_val.shape == row_idx.shape == mutual.shape == (2, 300)
    assert torch.allclose(row_val, ref_val, rtol=1e-4, atol=1e-7)  # log domain: rounding differs
    assert torch.equal(mutual, ref_mutual) and torch.equal(row_idx[mutual], ref_idx[ref_mutual])
    assert 50 < int(mutual.sum()) < mutual.numel()

    dense = select_coarse_matches(conf, (15, 20), (14, 25), 0.01, 1, max_matches=40)
    blockwise = matches_from_row_maxima(row_val, row_idx, mutual, (15, 20), (14, 25), 0.01, 1, max_matches=40)
    assert as_set(blockwise) == as_set(dense) and len(as_set(dense)) > 20
    assert torch.allclose(blockwise.confidence, dense.confidence, rtol=1e-4, atol=1e-7)


def test_blockwise_selection_at_the_shipped_scale():
    """64 channels, T = 0.05 and 60x80 grids, the shapes of a 640x480 pair: still exactly the dense matches.
    (Real descriptors are harder: tests/test_eager_inference_ab.py compares the two paths on a dev pair.)"""
    d0, d1 = descriptors(1, dim=64, l0=4800, related=3000, l1=4800)
    d0, d1 = d0[:1], d1[:1]
    conf = confidence_from_similarity(d0 @ d1.transpose(1, 2) / 0.05, "dual_softmax")
    ref_val, ref_idx, ref_mutual = dense_maxima(conf)
    row_val, row_idx, mutual = mutual_maxima_blockwise(d0, d1, 0.05, "dual_softmax")
    assert int(ref_mutual.sum()) > 1000
    assert torch.equal(mutual, ref_mutual) and torch.equal(row_idx[mutual], ref_idx[ref_mutual])


def test_blockwise_maxima_ignore_autocast():
    """Under an autocast context (e.g. a caller's bf16 on a CPU) the selection still runs in float32."""
    d0, d1 = descriptors(2)
    ref = mutual_maxima_blockwise(d0, d1, 0.05, "dual_softmax")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mutual_maxima_blockwise(d0.bfloat16(), d1.bfloat16(), 0.05, "dual_softmax")
    ref_bf = mutual_maxima_blockwise(d0.bfloat16().float(), d1.bfloat16().float(), 0.05, "dual_softmax")
    assert out[0].dtype == torch.float32
    for a, b in zip(out, ref_bf):
        assert torch.equal(a, b)
    assert int(ref[2].sum()) > 50


@pytest.mark.parametrize("match_type", ["dual_softmax", "softmax"])
def test_bf16_normaliser_pass_keeps_nearly_the_dense_selection(match_type):
    """cpu_bf16's first pass (normalisers from bf16 products): confidences within a few per cent, and nearly all
    of the dense selection's matches; exact equality is not expected (bf16 rounds S / T by up to ~0.04)."""
    d0, d1 = descriptors(4, dim=64, l0=600, related=400, l1=650)
    conf = confidence_from_similarity(d0 @ d1.transpose(1, 2) / 0.05, match_type)
    dense = select_coarse_matches(conf, (20, 30), (26, 25), 0.01, 1)
    row_val, row_idx, mutual = mutual_maxima_blockwise(d0, d1, 0.05, match_type, bf16_sums=True)
    assert row_val.dtype == torch.float32
    ref_val = conf.amax(dim=2)
    assert float(((row_val - ref_val).abs() / ref_val).max()) < 0.15
    low = as_set(matches_from_row_maxima(row_val, row_idx, mutual, (20, 30), (26, 25), 0.01, 1))
    ref = as_set(dense)
    assert len(ref) > 300 and len(low & ref) >= 0.97 * len(ref) and len(low - ref) <= 0.03 * len(ref)
