"""The torch backend's inference rewrites keep the outputs: folded BatchNorms, channels-last ResNet, fused semantic
head, fine stage in chunks."""
import copy

import pytest
import torch

from distillmatch_core.config import preset
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.model.inference_optimization import fold_batch_norms, optimize_for_inference


def trained_looking_model():
    """A tiny model whose BatchNorms have non-trivial statistics and affine parameters (fresh ones are the
    identity map, which any folding would get right)."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.coarse.threshold = 0.0  # random weights: accept any mutual nearest neighbour
    model = DistillMatch(cfg)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_optimized_model_gives_the_same_matches():
    model = trained_looking_model()
    optimized = optimize_for_inference(copy.deepcopy(model), torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in optimized.backbone.modules())
    assert optimized.backbone.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x0, x1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    with torch.inference_mode():
        ref, out = model(x0, x1), optimized(x0, x1)
        ref_feats, feats = model.backbone(x0), optimized.backbone(x0)
    for a, b in zip(ref_feats, feats):
        assert torch.allclose(a, b, atol=1e-5)
    assert len(ref["i_ids"]) > 0
    assert torch.equal(out["i_ids"], ref["i_ids"]) and torch.equal(out["j_ids"], ref["j_ids"])
    assert torch.allclose(out["keypoints1"], ref["keypoints1"], atol=1e-3)


def test_folding_counts_and_refuses_training_mode():
    model = trained_looking_model()
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert fold_batch_norms(model) == n_bn > 0  # every BatchNorm of the network follows a convolution
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(trained_looking_model().train())


def test_fine_stage_in_chunks_gives_the_same_matches(monkeypatch):
    from distillmatch_core.model import fine_matching

    model = trained_looking_model()
    x0, x1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    with torch.inference_mode():
        whole = model(x0, x1)
        monkeypatch.setattr(fine_matching, "FINE_CHUNK", 4)  # several chunks and a ragged last one
        chunked = model(x0, x1)
    assert len(whole["i_ids"]) > 8 and len(whole["i_ids"]) % 4
    assert whole.keys() == chunked.keys()
    for key in ("fine_index0", "fine_index1", "match_valid"):
        assert torch.equal(whole[key], chunked[key]), key
    for key in ("keypoints0", "keypoints1", "fine_score", "fine_prob", "subpixel_offsets"):  # GEMM blocking
        assert torch.allclose(whole[key], chunked[key], rtol=1e-5, atol=1e-6), key      # rounds differently


def test_fused_semantic_head_gives_stfa_the_same_features():
    """tiny's student has patch 8 (no resampling); a patch-16 copy checks the resampling that moves into STFA."""
    from distillmatch_core.model.inference_optimization import fuse_semantic_head

    for patch in (8, 16):
        torch.manual_seed(0)
        cfg = preset("tiny")
        cfg.student.patch_size = patch
        model = DistillMatch(cfg).eval()
        fused = copy.deepcopy(model)
        assert fuse_semantic_head(fused)
        x = torch.rand(2, 1, 96, 128)
        texture = torch.rand(2, cfg.texture.channels[2], 12, 16)
        with torch.inference_mode():
            ref = model.stfa(texture, model.student(x))
            out = fused.stfa(texture, fused.student(x))
        assert torch.allclose(ref, out, atol=1e-5), patch
