"""The torch backend's inference rewrites keep the outputs: folded BatchNorms, channels-last ResNet, fused semantic
head, fine stage in chunks, and the optional torch.compile of the network (with its eager fallback)."""
import copy
import warnings

import pytest
import torch

from distillmatch_core.config import preset
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.model.inference_optimization import (BFloat16Autocast, fold_batch_norms,
                                                             optimize_for_inference)


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


def test_bfloat16_feature_extractors_compute_in_bf16_and_hand_on_float32():
    model = trained_looking_model()
    fp32 = optimize_for_inference(copy.deepcopy(model), torch.device("cpu"))
    bf16 = optimize_for_inference(copy.deepcopy(model), torch.device("cpu"), bfloat16_feature_extractors=True)
    assert isinstance(bf16.backbone, BFloat16Autocast) and isinstance(bf16.student, BFloat16Autocast)
    assert not isinstance(bf16.cefg, BFloat16Autocast)  # the modules after them stay float32
    assert bf16.bf16_selection_sums and not fp32.bf16_selection_sums and not model.bf16_selection_sums
    seen = []
    bf16.backbone.module.stem[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    x0, x1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    with torch.inference_mode():
        ref_feats, feats = fp32.backbone(x0), bf16.backbone(x0)
        ref_sem, sem = fp32.student(x0), bf16.student(x0)
        out = bf16(x0, x1)
    assert seen[0] == torch.bfloat16  # the convolutions ran in bf16 ...
    for a, b in [*zip(ref_feats, feats), (ref_sem, sem)]:  # ... and hand on float32 within bf16 rounding
        assert b.dtype == torch.float32
        assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.05 * float(a.abs().max()))
    assert out["keypoints1"].dtype == torch.float32 and len(out["i_ids"]) > 0
    # A copy's wrapper runs the copy's weights (a patched forward would still call the original's).
    copied = copy.deepcopy(bf16)
    with torch.no_grad():
        copied.backbone.module.stem[0].weight.zero_()
    with torch.inference_mode():
        assert torch.equal(bf16.backbone(x0)[0], feats[0]) and not torch.equal(copied.backbone(x0)[0], feats[0])


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


def _compiler_available() -> bool:
    import shutil

    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


@pytest.mark.slow
@pytest.mark.skipif(not _compiler_available(), reason="torch.compile's CPU backend (Inductor) needs a C++ compiler")
def test_compiled_network_gives_the_same_features_and_matches():
    from torch._dynamo.utils import counters

    from distillmatch_core.model.inference_optimization import compile_for_inference

    model = optimize_for_inference(trained_looking_model(), torch.device("cpu"))
    compiled = copy.deepcopy(model)
    compile_for_inference(compiled)
    x0, x1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    frames_before = counters["frames"]["ok"]
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the eager fallback's warning would fail the test
        ref, out = model(x0, x1), compiled(x0, x1)
    assert counters["frames"]["ok"] >= frames_before + 3  # dynamo compiled the trunk and the fine stage's two parts
    for key in ("coarse_desc0", "coarse_desc1", "half0", "quarter1", "coarse_tokens0", "fine_score"):
        assert torch.allclose(ref[key], out[key], atol=1e-4), key
    assert len(ref["i_ids"]) > 0
    assert torch.equal(out["i_ids"], ref["i_ids"]) and torch.equal(out["j_ids"], ref["j_ids"])
    assert torch.allclose(out["keypoints1"], ref["keypoints1"], atol=1e-3)


def test_network_runs_eager_after_one_warning_when_the_compiler_fails(monkeypatch):
    """No C++ compiler (or Triton) where the package is deployed: one warning, then the eager network's results."""
    from torch._dynamo.exc import BackendCompilerFailed

    from distillmatch_core.model import inference_optimization

    calls = []

    def unusable_compiler(fn, **kwargs):
        def compiled(*args, **kwargs):
            calls.append(args)
            raise BackendCompilerFailed(lambda *a: None, RuntimeError("no working C++ compiler"), None)
        return compiled

    monkeypatch.setattr(inference_optimization.torch, "compile", unusable_compiler)
    model = trained_looking_model()
    fallback = copy.deepcopy(model)
    inference_optimization.compile_for_inference(fallback)
    x0, x1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    with torch.inference_mode():
        ref = model(x0, x1)
        with pytest.warns(RuntimeWarning, match="runs eager"):
            out = fallback(x0, x1)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # once only
            again = fallback(x0, x1)
    assert len(calls) == 1  # the compiler is not retried on every frame
    for result in (out, again):
        assert torch.equal(result["i_ids"], ref["i_ids"])
        assert torch.allclose(result["keypoints1"], ref["keypoints1"], atol=1e-5)


def test_compile_for_inference_refuses_training_mode():
    from distillmatch_core.model.inference_optimization import compile_for_inference

    with pytest.raises(ValueError, match="eval mode"):
        compile_for_inference(trained_looking_model().train())


@pytest.mark.parametrize("keys", [35, 100])  # the explicit form (<= SHORT_SEQUENCE keys) and the fused kernel
def test_softmax_attention_equals_the_fused_kernel_at_every_length(keys):
    import torch.nn.functional as F

    from distillmatch_core.model.attention import SHORT_SEQUENCE, SoftmaxAttention, explicit_softmax_attention

    assert 35 <= SHORT_SEQUENCE < 100
    torch.manual_seed(0)
    q, k, v = torch.randn(6, 25, 4, 8), torch.randn(6, keys, 4, 8), torch.randn(6, keys, 4, 8)  # (B, L|S, H, D)
    ref = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, H, L, D)
    assert torch.allclose(explicit_softmax_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)), ref,
                          atol=1e-5)
    out = SoftmaxAttention()(q, k, v)
    assert out.shape == (6, 25, 4, 8)
    assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


def test_linear_attention_equals_loftrs_elu_plus_one_formula():
    import torch.nn.functional as F

    from distillmatch_core.model.attention import LinearAttention, elu_plus_one

    torch.manual_seed(0)
    x = torch.randn(1000) * 5
    assert torch.allclose(elu_plus_one(x), F.elu(x) + 1, rtol=1e-6, atol=1e-7)
    q, k, v = torch.randn(2, 50, 4, 16), torch.randn(2, 70, 4, 16), torch.randn(2, 70, 4, 16)
    fq, fk = F.elu(q) + 1, F.elu(k) + 1  # LoFTR's form: sum_s phi(q) phi(k_s)^T v_s / sum_s phi(q) phi(k_s)^T
    ref = torch.einsum("blhd,bshd,bshv->blhv", fq, fk, v) / (torch.einsum("blhd,bshd->blh", fq, fk)[..., None] + 1e-6)
    assert torch.allclose(LinearAttention()(q, k, v), ref, rtol=1e-4, atol=1e-5)
