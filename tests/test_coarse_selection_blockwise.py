"""Eager coarse selection without the (L0, L1) matrix gives the dense selection's matches."""
import pytest
import torch
import torch.nn.functional as F

from distillmatch_core.model.coarse_matching import (confidence_from_similarity, matches_from_row_maxima,
                                                     mutual_maxima_blockwise, select_coarse_matches)


def descriptors(seed: int):
    """Two batches of unit descriptors on 15x20 and 14x25 grids; 200 cells of image 0 have a noisy copy
    in image 1, the rest are unrelated (so some rows are mutual and some are not)."""
    g = torch.Generator().manual_seed(seed)
    d0 = F.normalize(torch.randn(2, 300, 16, generator=g), dim=-1)
    related = d0[:, :200] + 0.3 * torch.randn(2, 200, 16, generator=g)
    d1 = F.normalize(torch.cat([related, torch.randn(2, 150, 16, generator=g)], 1), dim=-1)
    return d0, d1


def as_set(m):
    return {(b, int(i), int(j)) for b in range(m.valid.shape[0])
            for i, j, v in zip(m.i_ids[b], m.j_ids[b], m.valid[b]) if v}


@pytest.mark.parametrize("match_type", ["dual_softmax", "softmax"])
@pytest.mark.parametrize("block_rows", [1, 7, 128, 1000])  # single rows, a ragged last block, one block
def test_blockwise_maxima_match_the_dense_confidence(match_type, block_rows):
    d0, d1 = descriptors(0)
    temperature = 0.05
    conf = confidence_from_similarity(d0 @ d1.transpose(1, 2) / temperature, match_type)  # (2, 300, 350)
    ref_val, ref_idx = conf.max(dim=2)
    ref_mutual = ref_val >= torch.gather(conf.amax(dim=1), 1, ref_idx)

    row_val, row_idx, mutual = mutual_maxima_blockwise(d0, d1, temperature, match_type, block_rows)
    assert row_val.shape == row_idx.shape == mutual.shape == (2, 300)
    assert torch.allclose(row_val, ref_val, rtol=1e-4, atol=1e-7)  # log domain: rounding differs
    assert torch.equal(mutual, ref_mutual) and torch.equal(row_idx[mutual], ref_idx[ref_mutual])
    assert 50 < int(mutual.sum()) < mutual.numel()

    dense = select_coarse_matches(conf, (15, 20), (14, 25), 0.01, 1, max_matches=40)
    blockwise = matches_from_row_maxima(row_val, row_idx, mutual, (15, 20), (14, 25), 0.01, 1, max_matches=40)
    assert as_set(blockwise) == as_set(dense) and len(as_set(dense)) > 20
    assert torch.allclose(blockwise.confidence, dense.confidence, rtol=1e-4, atol=1e-7)
