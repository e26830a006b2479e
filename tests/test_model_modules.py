"""Shapes and dtypes at every module boundary (tiny config), gradient flow, frozen teacher."""
import copy

import pytest
import torch
import torch.nn.functional as F

from distillmatch_core.config import preset
from distillmatch_core.model.coarse_matching import confidence_from_similarity
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.training.supervision_step import supervised_forward

B, H, W = 2, 96, 128


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return preset("tiny")


def with_fine_attention(cfg, attention: str):
    """A copy of ``cfg`` (the fixture is shared by the module) with another fine.attention."""
    cfg = copy.deepcopy(cfg)
    cfg.fine.attention = attention
    return cfg


def test_module_boundary_shapes(tiny):
    model = DistillMatch(tiny).eval()
    x = torch.rand(2 * B, 1, H, W)
    half, quarter, coarse = model.backbone(x)
    c1, c2, c3 = tiny.texture.channels
    assert half.shape == (2 * B, c1, H // 2, W // 2)
    assert quarter.shape == (2 * B, c2, H // 4, W // 4)
    assert coarse.shape == (2 * B, c3, H // 8, W // 8)
    semantic = model.student(x)
    assert semantic.shape == (2 * B, tiny.student.out_dim, H // 8, W // 8) and semantic.dtype == torch.float32
    e0, e1, l0, l1 = model.cefg(half[:B], half[B:], coarse[:B], coarse[B:])
    assert e0.shape == e1.shape == (B, c3, H // 8, W // 8)
    assert l0.shape == l1.shape == (B, len(tiny.cefg.modalities))
    fused = model.stfa(e0, semantic[:B])
    assert fused.shape == (B, c3, H // 8, W // 8)
    out = model.coarse(fused, model.stfa(e1, semantic[B:]))
    L = (H // 8) * (W // 8)
    assert out["coarse_tokens0"].shape == (B, L, tiny.coarse.d_model)
    conf = model.coarse.confidence(out["sim_matrix"])
    assert conf.shape == (B, L, L)
    assert torch.all(conf >= 0) and torch.all(conf <= 1)


@pytest.mark.parametrize("size", [(96, 128), (104, 136)])  # 12x16 and 13x17 cells: an odd 1/8 grid pools with ceil
def test_cefg_on_the_16_grid_keeps_the_1_8_shapes_and_its_weights(tiny, size):
    cfg = copy.deepcopy(tiny)
    cfg.cefg.token_stride = 16
    torch.manual_seed(0)
    paper, pooled = DistillMatch(tiny).eval(), DistillMatch(cfg).eval()
    pooled.load_state_dict(paper.state_dict())  # strict: the same parameters, so it starts from trained weights
    h, w = size
    x = torch.rand(2 * B, 1, h, w)
    with torch.no_grad():
        half, _, coarse = pooled.backbone(x)
        e0, e1, l0, l1 = pooled.cefg(half[:B], half[B:], coarse[:B], coarse[B:])
        r0, _, _, _ = paper.cefg(half[:B], half[B:], coarse[:B], coarse[B:])
    assert e0.shape == e1.shape == r0.shape == (B, tiny.texture.channels[2], h // 8, w // 8)
    assert l0.shape == (B, len(tiny.cefg.modalities))
    assert not torch.allclose(e0, r0)  # the guidance really comes from the coarser grid
    assert torch.isfinite(e0).all() and torch.isfinite(e1).all()


def test_cefg_token_stride_is_checked(tiny):
    cfg = copy.deepcopy(tiny)
    cfg.cefg.token_stride = 4
    with pytest.raises(ValueError, match="token_stride"):
        DistillMatch(cfg)


def test_too_small_coarse_temperature_is_refused(tiny):
    import copy
    cfg = copy.deepcopy(tiny)
    cfg.coarse.match_type, cfg.coarse.temperature = "dual_softmax", 0.02
    with pytest.raises(ValueError, match="overflow"):
        DistillMatch(cfg)
    cfg.coarse.match_type = "softmax"  # exp(1/T) alone is still finite at 0.02
    conf = DistillMatch(cfg).coarse.confidence(torch.full((1, 3, 3), 1 / 0.02))
    assert torch.isfinite(conf).all()


@pytest.mark.parametrize("match_type", ["softmax", "dual_softmax"])
@pytest.mark.parametrize("in_place", [False, True])
def test_confidence_is_the_softmax_product(match_type, in_place):
    sim = torch.randn(2, 12, 9) * 5
    expected = torch.softmax(sim, dim=2)
    if match_type == "dual_softmax":
        expected = expected * torch.softmax(sim, dim=1)
    given = sim.clone()
    conf = confidence_from_similarity(given, match_type, in_place=in_place)
    assert torch.allclose(conf, expected, rtol=1e-5, atol=1e-8)
    assert (conf.data_ptr() == given.data_ptr()) == in_place  # in place reuses the buffer, else leaves it
    if not in_place:
        assert torch.equal(given, sim)


def test_eager_and_static_outputs(tiny):
    import copy
    cfg = copy.deepcopy(tiny)
    cfg.coarse.threshold = 0.0  # random weights: accept any mutual nearest neighbour
    model = DistillMatch(cfg).eval()
    x0, x1 = torch.rand(1, 1, H, W), torch.rand(1, 1, H, W)
    with torch.no_grad():
        out = model(x0, x1)
        k0, k1, conf, valid = model.match_static(x0, x1, max_matches=(H // 8) * (W // 8))
    m = out["i_ids"].shape[0]
    assert m > 0
    # The static graph's valid slots are exactly the eager matches (top-K covers them all here).
    valid_static = valid[0]
    assert int(valid_static.sum()) == int(out["match_valid"].sum())
    eager = {tuple(p) for p in out["keypoints0"][out["match_valid"]].round(decimals=3).tolist()}
    static = {tuple(p) for p in k0[0][valid_static].round(decimals=3).tolist()}
    assert eager == static
    assert out["keypoints0"].shape == (m, 2) and out["fine_prob"].shape == (m, 25, 25)
    assert out["subpixel_offsets"].abs().max() <= 1
    k_slots = (H // 8) * (W // 8)
    assert k0.shape == k1.shape == (1, k_slots, 2) and conf.shape == valid.shape == (1, k_slots)
    assert valid.dtype == torch.bool
    # Fine keypoints stay within their windows: at most 4 px + 2 px sub-pixel from the cell anchor.
    anchor = torch.stack([out["i_ids"] % (W // 8), out["i_ids"] // (W // 8)], -1).float() * 8
    assert (out["keypoints0"] - anchor).abs().max() <= 6.0 + 1e-4


@pytest.mark.parametrize("fine_attention", ["self_cross", "cross", "cross_one_way", "none"])
def test_gradients_reach_every_trainable_parameter(tiny, synthetic_homography_batch, fine_attention):
    model = DistillMatch(with_fine_attention(tiny, fine_attention)).train()
    teacher_like = torch.randn(2 * B, tiny.student.out_dim, H // 8, W // 8)
    terms, _, sup = supervised_forward(model, synthetic_homography_batch, _loss_cfg(), 64, 0,
                                       teacher_features=teacher_like)
    assert int(sup["num_gt_matches"]) > 0
    terms["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or
                                                                               not torch.isfinite(p.grad).all())]
    assert not missing, f"no gradient reaches: {missing}"
    zero = [n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() == 0]
    # The sub-pixel head's last layer starts at zero, so only its own weights may see zero upstream grads.
    assert all("subpixel" in n for n in zero), zero


def _loss_cfg():
    from distillmatch_core.config import LossConfig
    return LossConfig()


def test_teacher_is_frozen_and_lands_on_the_coarse_grid():
    timm = pytest.importorskip("timm")
    from distillmatch_core.config import TeacherConfig
    from distillmatch_core.model.vfm_teacher import VFMTeacher
    cfg = TeacherConfig(pretrained=False)
    vit = timm.create_model(cfg.model_name, pretrained=False, num_classes=0, dynamic_img_size=True,
                            depth=1)  # the real architecture, one block: fast
    teacher = VFMTeacher(cfg, model=vit).train()
    assert teacher.patch_size == 14 and teacher.num_prefix_tokens == 5  # cls + 4 registers
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not teacher.vfm.training
    x = torch.rand(1, 1, 64, 96, requires_grad=True)
    f = teacher(x)
    assert f.shape == (1, 384, 8, 12)
    assert not f.requires_grad


def test_teacher_without_weights_fails_clearly(tmp_path):
    from distillmatch_core.config import TeacherConfig
    from distillmatch_core.model.vfm_teacher import TeacherUnavailableError, create_vfm
    with pytest.raises(TeacherUnavailableError, match="not found"):
        create_vfm(TeacherConfig(weights_path=str(tmp_path / "missing.safetensors")))


def test_dinov3_teacher_is_selectable():
    timm = pytest.importorskip("timm")
    if "vit_small_patch16_dinov3" not in timm.list_models("vit_small_patch16_dinov3*"):
        pytest.skip("this timm has no DINOv3 models")
    from distillmatch_core.config import TeacherConfig
    from distillmatch_core.model.vfm_teacher import VFMTeacher
    cfg = TeacherConfig(model_name="vit_small_patch16_dinov3", pretrained=False)
    vit = timm.create_model(cfg.model_name, pretrained=False, num_classes=0, dynamic_img_size=True, depth=1)
    f = VFMTeacher(cfg, model=vit)(torch.rand(1, 1, 64, 64))
    assert f.shape == (1, 384, 8, 8)


def test_rejects_bad_input_sizes(tiny):
    model = DistillMatch(tiny).eval()
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.rand(1, 1, 60, 64), torch.rand(1, 1, 60, 64))
    with pytest.raises(ValueError, match="one shape"):
        model(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 72))


def test_total_loss_includes_every_term(tiny, synthetic_homography_batch):
    model = DistillMatch(tiny).train()
    terms, _, _ = supervised_forward(model, synthetic_homography_batch, _loss_cfg(), 64, 0,
                                     teacher_features=torch.randn(2 * B, tiny.student.out_dim, H // 8, W // 8))
    for key in ("coarse", "fine", "subpixel", "modality", "kd_mse", "kd_gram", "kd_kl", "kd", "loss"):
        assert key in terms and torch.isfinite(terms[key])
    cfg = _loss_cfg()
    expected = (cfg.lambda_c * terms["coarse"] + cfg.lambda_f * terms["fine"] + cfg.lambda_sub * terms["subpixel"]
                + cfg.lambda_ce * terms["modality"] + cfg.lambda_kd * terms["kd"])
    assert torch.allclose(terms["loss"], expected)


def _shared_transfer_config(tiny):
    import copy
    cfg = copy.deepcopy(tiny)
    cfg.cefg.shared_transfer = True
    cfg.coarse.threshold = 0.0  # random weights: accept any mutual nearest neighbour
    return cfg


def test_shared_transfer_matches_identical_images_cell_to_cell(tiny):
    # With one Transfer block the network is symmetric in its two images, so the same image on both
    # sides cannot produce a relative shift between the feature maps: every coarse match is (i, i).
    torch.manual_seed(1)
    model = DistillMatch(_shared_transfer_config(tiny)).eval()
    x = torch.rand(1, 1, H, W)
    with torch.no_grad():
        out = model(x, x.clone())
    assert out["i_ids"].numel() > 0
    assert torch.equal(out["i_ids"], out["j_ids"])


def test_shared_transfer_loads_non_shared_weights_keeping_transfer_b(tiny):
    torch.manual_seed(2)
    separate = DistillMatch(tiny)
    shared = DistillMatch(_shared_transfer_config(tiny))
    assert shared.cefg.transfer_a is shared.cefg.transfer_b
    n_transfer = sum(p.numel() for p in separate.cefg.transfer_b.parameters())
    assert sum(p.numel() for p in shared.parameters()) == sum(p.numel() for p in separate.parameters()) - n_transfer
    state = separate.state_dict()
    a_before = {k: v.clone() for k, v in state.items() if k.startswith("cefg.transfer_a.")}
    assert any(not torch.equal(v, state[k.replace("transfer_a", "transfer_b")]) for k, v in a_before.items())
    shared.load_state_dict(state)
    expected = dict(separate.cefg.transfer_b.named_parameters())
    assert all(torch.equal(p, expected[n]) for n, p in shared.cefg.transfer_a.named_parameters())
    assert all(torch.equal(state[k], v) for k, v in a_before.items())  # the caller's dict is untouched


def test_fine_windows_are_the_projected_maps_windows_zero_padded():
    """gather_windows (gather M windows, then project) == project the whole map, zero-pad, unfold, pick."""

    from distillmatch_core.model.fine_matching import gather_windows

    torch.manual_seed(1)
    proj = torch.nn.Conv2d(6, 5, 1)
    grid_w, n_cells = 8, 48  # a 48x64 input: 6x8 coarse cells
    b_ids = torch.tensor([0, 1, 1, 0, 1])
    ids = torch.tensor([0, 47, 7, 40, 21])  # four corner cells (windows cross the border) and one inside
    for kernel, stride in ((5, 4), (3, 2)):  # the 1/2 map's 5x5 windows, the 1/4 map's 3x3
        feat = torch.randn(2, 6, 6 * stride, 8 * stride)
        with torch.no_grad():
            unfolded = F.unfold(proj(feat), kernel_size=kernel, stride=stride, padding=kernel // 2)
            expected = unfolded.transpose(1, 2).reshape(2 * n_cells, 5, kernel * kernel)[b_ids * n_cells + ids]
            got = gather_windows(feat, b_ids, ids, grid_w, kernel, stride, proj)
        assert got.shape == (5, kernel * kernel, 5)
        assert torch.allclose(got, expected.transpose(1, 2), atol=1e-5)
        assert (got[0, 0] == 0).all()  # the top-left cell's window corner lies outside the map


@pytest.mark.parametrize("fine_attention", ["self_cross", "cross", "cross_one_way"])
def test_last_fine_layer_needs_only_the_window_queries(tiny, fine_attention):
    """The fine stage's output equals running its last cross layer on all 35 tokens and slicing (one way:
    image 0's tokens skip the cross layer)."""
    model = DistillMatch(with_fine_attention(tiny, fine_attention)).eval()
    assert len(model.fine.self_layers) == (1 if fine_attention == "self_cross" else 0)
    fine = model.fine
    x0, x1 = torch.rand(1, 1, H, W), torch.rand(1, 1, H, W)
    ids = torch.tensor([14, 30, 45])
    b_ids = torch.zeros_like(ids)
    with torch.no_grad():
        feats = model.extract(x0, x1)
        grid_w = int(feats["grid"][1])
        out = model._fine(feats, b_ids, ids, ids.flip(0))
        t0 = fine._tokens(feats["half0"], feats["quarter0"], feats["coarse_tokens0"], b_ids, ids, grid_w)
        t1 = fine._tokens(feats["half1"], feats["quarter1"], feats["coarse_tokens1"], b_ids, ids.flip(0), grid_w)
        for layer, cross_layer in enumerate(fine.cross_layers):
            if fine_attention == "self_cross":
                t0, t1 = fine.self_layers[layer](t0, t0), fine.self_layers[layer](t1, t1)
            t0, t1 = (t0 if fine_attention == "cross_one_way" else cross_layer(t0, t1)), cross_layer(t1, t0)
        n = fine.window ** 2
        sim = torch.einsum("mad,mbd->mab", fine.out_proj(t0[:, -n:]), fine.out_proj(t1[:, -n:]))
    assert torch.allclose(out["fine_sim"], sim / fine.out_proj.out_features / fine.temperature, atol=1e-5)


def test_fine_stage_without_attention_sees_neither_the_quarter_map_nor_the_other_window(tiny):
    """fine.attention "none": image 0's window features depend on image 0's 1/2 map and coarse token
    only (no 1/4 window, no attention to image 1), so the similarity row of a window-0 element changes
    with image 1 only through image 1's own features."""
    model = DistillMatch(with_fine_attention(tiny, "none")).eval()
    fine = model.fine
    assert fine.quarter_proj is None and not fine.self_layers and not fine.cross_layers
    assert len(fine.pointwise_layers) == model.cfg.fine.num_layers
    x0, x1 = torch.rand(1, 1, H, W), torch.rand(1, 1, H, W)
    ids = torch.tensor([14, 30, 45])
    b_ids = torch.zeros_like(ids)
    with torch.no_grad():
        feats = model.extract(x0, x1)
        out = model._fine(feats, b_ids, ids, ids.flip(0))
        assert out["fine_sim"].shape == (3, 25, 25) and out["keypoints1"].shape == (3, 2)
        scrambled = dict(feats, quarter0=torch.randn_like(feats["quarter0"]),
                         quarter1=torch.randn_like(feats["quarter1"]))
        assert torch.equal(model._fine(scrambled, b_ids, ids, ids.flip(0))["fine_sim"], out["fine_sim"])
        # The similarity rebuilt from each image's own tokens alone: nothing crosses between the windows.
        t0 = fine._tokens(feats["half0"], None, feats["coarse_tokens0"], b_ids, ids, int(feats["grid"][1]))
        for block in fine.pointwise_layers:
            t0 = block(t0)
        w0 = fine.out_proj(t0)
        t1 = fine._tokens(feats["half1"], None, feats["coarse_tokens1"], b_ids, ids.flip(0), int(feats["grid"][1]))
        for block in fine.pointwise_layers:
            t1 = block(t1)
        sim = torch.einsum("mad,mbd->mab", w0, fine.out_proj(t1)) / w0.shape[-1] / fine.temperature
    assert torch.allclose(out["fine_sim"], sim, atol=1e-5)


def test_unknown_fine_attention_is_refused(tiny):
    with pytest.raises(ValueError, match="fine.attention"):
        DistillMatch(with_fine_attention(tiny, "local"))


def test_refine_off_gives_cell_anchors_at_inference_and_still_trains_the_fine_stage(tiny, synthetic_homography_batch):
    import copy
    cfg = copy.deepcopy(tiny)
    cfg.coarse.threshold = 0.0
    cfg.fine.refine = False
    model = DistillMatch(cfg).eval()
    x0, x1 = torch.rand(1, 1, H, W), torch.rand(1, 1, H, W)
    calls = []
    handle = model.fine.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = model(x0, x1)
        k0, k1, _, valid = model.match_static(x0, x1, max_matches=8)
    assert not calls  # the fine stage did not run
    grid_w = W // 8
    for kpts, ids in ((out["keypoints0"], out["i_ids"]), (out["keypoints1"], out["j_ids"])):
        assert torch.equal(kpts, torch.stack([ids % grid_w, ids // grid_w], -1).float() * 8)
    assert out["match_valid"].all() and out["match_valid"].numel() > 0
    assert k0.shape == (1, 8, 2) and valid.any()
    model.train()
    supervised_forward(model, synthetic_homography_batch, _loss_cfg(), 16, 0)
    handle.remove()
    assert calls  # training still runs (and so trains) the fine stage


def test_column_max_in_export_form_equals_amax(monkeypatch):
    from distillmatch_core.model import coarse_matching

    conf = torch.rand(2, 4800, 37)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    for rows in (4800, 3468, 867, 65, 96, 1):  # 544x408 has 3468 cells: odd after two halvings
        assert torch.equal(coarse_matching.column_max(conf[:, :rows]), conf[:, :rows].amax(dim=1))


@pytest.mark.parametrize("temperature", [0.05, 1.0])  # peaked (many mutual rows) and flat (few)
def test_mutual_rows_from_maxima_equal_the_argmax_definition(temperature):
    """Mutual nearest neighbours found without an argmax pass: the same rows, columns and maxima as
    row argmax + "the chosen column's maximum is this row's"."""
    from distillmatch_core.model.coarse_matching import mutual_rows_from_maxima

    torch.manual_seed(0)
    d0 = F.normalize(torch.randn(2, 300, 16), dim=-1)
    d1 = F.normalize(torch.cat([d0[:, :200] + 0.3 * torch.randn(2, 200, 16), torch.randn(2, 150, 16)], 1), dim=-1)
    conf = confidence_from_similarity(d0 @ d1.transpose(1, 2) / temperature, "dual_softmax")  # (2, 300, 350)
    col_val = conf.amax(dim=1)
    ref_val, ref_idx = conf.max(dim=2)
    ref_mutual = ref_val >= torch.gather(col_val, 1, ref_idx)
    row_val, row_idx, mutual = mutual_rows_from_maxima(conf, col_val)
    assert torch.equal(row_val, ref_val) and torch.equal(mutual, ref_mutual)
    assert torch.equal(row_idx[mutual], ref_idx[ref_mutual])
    assert 0 < int(mutual.sum()) < mutual.numel()


def test_mutual_rows_from_maxima_with_saturated_confidences():
    """Confident matches saturate to one float value (1.0 in float32): many columns share their maximum,
    and every one of those matches must still be found."""
    from distillmatch_core.model.coarse_matching import mutual_rows_from_maxima

    torch.manual_seed(0)
    conf = torch.rand(1, 40, 50) * 0.5
    rows, cols = torch.randperm(40)[:12], torch.randperm(50)[:12]
    conf[0, rows, cols] = 1.0
    conf[0, rows[0], cols[1]] = 0.9  # not a maximum of its row or column: changes nothing
    col_val = conf.amax(dim=1)
    row_val, row_idx, mutual = mutual_rows_from_maxima(conf, col_val)
    assert mutual[0, rows].all() and torch.equal(row_idx[0, rows], cols) and (row_val[0, rows] == 1.0).all()
    ref_val, ref_idx = conf.max(dim=2)  # the other mutual rows: those of the random rest
    assert torch.equal(mutual, ref_val >= torch.gather(col_val, 1, ref_idx))


@pytest.mark.parametrize("window", [4, 9])
def test_fine_window_sizes_beyond_the_tiles_are_refused(tiny, window):
    import copy
    cfg = copy.deepcopy(tiny)
    cfg.fine.window_size = window
    with pytest.raises(ValueError, match="window_size"):
        DistillMatch(cfg)
