"""The expectation fine head (LoFTR's, fine.head = "expectation"), its supervision and loss, and
training only the fine stage on a frozen coarse matcher (frozen_modules, init_weights across heads)."""
import copy

import pytest
import torch

from distillmatch_core.checkpoint import CheckpointError, save_checkpoint
from distillmatch_core.config import LossConfig, preset
from distillmatch_core.losses.matching_losses import fine_expectation_loss
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.model.fine_matching import FineMatching, cell_anchor
from distillmatch_core.supervision.fine_supervision import fine_expectation_target
from distillmatch_core.supervision.pair_geometry import HomographyGeometry
from distillmatch_core.training.supervision_step import supervised_forward

from test_training import tiny_train_config


def expectation_config(base="tiny"):
    cfg = copy.deepcopy(preset(base))
    cfg.fine.head = "expectation"
    cfg.fine.threshold = 0.0
    return cfg


def test_expectation_head_lands_on_the_window_element_its_anchor_matches():
    torch.manual_seed(0)
    head = FineMatching(expectation_config().fine, 8, 12, 16).eval()
    m, n, d = 3, 25, 8
    w1 = torch.nn.functional.normalize(torch.randn(m, n, d), dim=-1) * 50  # far apart: a near one-hot heatmap
    targets = torch.tensor([0, 12, 19])  # top-left corner, centre, row 3 column 4
    w0 = torch.zeros(m, n, d)
    w0[:, n // 2] = w1[torch.arange(m), targets]
    i_ids, j_ids = torch.tensor([5, 6, 7]), torch.tensor([15, 16, 17])
    out = head._expectation(w0, w1, i_ids, j_ids, 10, 10)
    offsets_px = torch.tensor([[-4.0, -4.0], [0.0, 0.0], [4.0, 2.0]])
    assert torch.allclose(out["keypoints0"], cell_anchor(i_ids, 10))  # image 0 keeps the anchor
    assert torch.allclose(out["keypoints1"], cell_anchor(j_ids, 10) + offsets_px, atol=1e-3)
    assert torch.equal(out["fine_index1"], targets)
    assert torch.all(out["fine_variance"] < 1e-3) and torch.all(out["fine_score"] > 0.99)
    assert "fine_sim" not in out and not hasattr(head.subpixel, "mlp")  # inference: no SRM, no full matrix


def test_expectation_head_runs_eager_and_static_alike():
    cfg = expectation_config()
    cfg.coarse.threshold = 0.0
    model = DistillMatch(cfg).eval()
    assert model.fine.subpixel is None
    x0, x1 = torch.rand(1, 1, 64, 80), torch.rand(1, 1, 64, 80)
    with torch.no_grad():
        eager = model(x0, x1)
        k0, k1, _, valid = model.match_static(x0, x1, max_matches=80)
    assert eager["i_ids"].numel() > 0
    got = {tuple(p) for p in torch.cat([k0[0], k1[0]], 1)[valid[0]].round(decimals=3).tolist()}
    want = {tuple(p) for p in torch.cat([eager["keypoints0"], eager["keypoints1"]], 1).round(decimals=3).tolist()}
    assert got == want
    # Image 1's keypoint is an expectation over the 5 x 5 window: at most 4 px from its cell anchor.
    assert (eager["keypoints1"] - cell_anchor(eager["j_ids"], 10)).abs().max() <= 4.0 + 1e-4


def test_expectation_target_is_where_the_anchor_lands_in_window_cells():
    Hs = torch.tensor([[[1.0, 0, 3.0], [0, 1, -2.0], [0, 0, 1]]])  # (+3, -2) px = (+1.5, -1) half-res cells
    geo = HomographyGeometry(Hs, (64, 80), (64, 80))
    b, i = torch.tensor([0, 0]), torch.tensor([35, 35])
    j = torch.tensor([35, 36])  # the true cell, and the next one to the right (8 px = 4 cells away)
    target, valid = fine_expectation_target(geo, b, i, j, 10, 10, 5)
    assert torch.allclose(target, torch.tensor([[1.5, -1.0], [-2.5, -1.0]]))
    assert valid.tolist() == [True, False]  # -2.5 cells is outside the +-2 window


def test_expectation_loss_vanishes_at_the_target_and_leaves_the_variance_alone():
    target = torch.tensor([[0.5, -1.0], [1.0, 1.0], [3.0, 0.0]])
    valid = torch.tensor([True, True, False])
    variance = torch.tensor([0.5, 2.0, 1.0], requires_grad=True)
    exact = target.clone().requires_grad_(True)
    assert float(fine_expectation_loss(exact, variance, target, valid).detach()) == pytest.approx(0.0)
    off = (target + torch.tensor([[1.0, 0.0], [1.0, 0.0], [5.0, 5.0]])).requires_grad_(True)
    loss = fine_expectation_loss(off, variance, target, valid)
    # weights 1/std normalised to mean 1 over the valid rows: the confident row counts double.
    w = torch.tensor([0.5, 2.0]).rsqrt()
    assert float(loss) == pytest.approx(float((w / w.mean()).mean()))
    loss.backward()
    assert variance.grad is None or float(variance.grad.abs().sum()) == 0.0
    assert float(off.grad[2].abs().sum()) == 0.0  # the invalid row does not train
    assert float(fine_expectation_loss(off, variance, target, torch.zeros(3, dtype=torch.bool))) == 0.0


def test_expectation_head_loss_terms_and_fitting(synthetic_homography_batch):
    torch.manual_seed(0)
    model = DistillMatch(expectation_config()).train()
    loss_cfg = LossConfig()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    errors = []
    for _ in range(30):
        terms, outputs, _ = supervised_forward(model, synthetic_homography_batch, loss_cfg, 64, 0)
        assert "subpixel" not in terms and outputs["fine_sim"].shape[1:] == (25, 25)
        expected = loss_cfg.lambda_c * terms["coarse"] + loss_cfg.lambda_f * terms["fine"] \
            + loss_cfg.lambda_ce * terms["modality"]
        assert torch.allclose(terms["loss"], expected)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        errors.append(float(terms["fine_error_cells"]))
    assert errors[-1] < errors[0] / 2, errors


def _save(model, path):
    save_checkpoint(path, model, model.cfg, {"dataset": "test"})
    return path


def test_training_only_the_fine_head_on_a_frozen_matcher(tmp_path, data_root):
    from distillmatch_core.config import to_dict
    from distillmatch_core.training.trainer import Trainer
    torch.manual_seed(0)
    paper_head = _save(DistillMatch(preset("tiny")), tmp_path / "coarse_matcher.pt")
    frozen = ["backbone", "student", "cefg", "stfa", "coarse"]
    cfg = tiny_train_config(tmp_path / "run", model=to_dict(expectation_config()), frozen_modules=frozen,
                            init_weights=str(paper_head), total_steps=3)
    trainer = Trainer(cfg, quiet=True)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in trainer.model.fine.parameters()}
    for batch in trainer.batches():
        trainer.train_step(batch)
    after = trainer.model.state_dict()
    changed = {k.split(".")[0] for k in after if not torch.equal(before[k], after[k])}
    assert changed == {"fine"}  # BatchNorm running statistics of the frozen backbone included


def test_init_weights_needs_every_parameter_of_the_new_model(tmp_path, data_root):
    from distillmatch_core.config import to_dict
    from distillmatch_core.training.trainer import Trainer
    expectation = _save(DistillMatch(expectation_config()), tmp_path / "expectation.pt")
    # The paper head's SRM is not in an expectation-head checkpoint: refused, with what is missing.
    cfg = tiny_train_config(tmp_path / "run", init_weights=str(expectation))
    with pytest.raises(CheckpointError, match="fine.subpixel"):
        Trainer(cfg, quiet=True)
    other_preset = _save(DistillMatch(preset("slim")), tmp_path / "slim.pt")
    cfg = tiny_train_config(tmp_path / "run2", model=to_dict(expectation_config()), init_weights=str(other_preset))
    with pytest.raises(CheckpointError, match="another model config"):
        Trainer(cfg, quiet=True)


def test_init_weights_fresh_lets_a_redesigned_fine_stage_start_from_trained_weights(tmp_path, data_root):
    """A fine stage without attention on a paper-design checkpoint: its new pointwise blocks and its
    25-slot embedding (35 in the checkpoint) are refused unless named fresh; then everything else loads."""
    from distillmatch_core.config import to_dict
    from distillmatch_core.training.trainer import Trainer
    torch.manual_seed(0)
    trained = DistillMatch(preset("tiny"))
    path = _save(trained, tmp_path / "paper_fine.pt")
    pointwise = preset("tiny")
    pointwise.fine.attention = "none"
    cfg = tiny_train_config(tmp_path / "run", model=to_dict(pointwise), init_weights=str(path))
    with pytest.raises(CheckpointError, match="fine.pointwise_layers"):
        Trainer(cfg, quiet=True)
    cfg = tiny_train_config(tmp_path / "run2", model=to_dict(pointwise), init_weights=str(path),
                            init_weights_fresh=["fine.pointwise_layers."])
    with pytest.raises(CheckpointError, match="fine.slot_embedding"):  # 35 slots in the checkpoint, 25 here
        Trainer(cfg, quiet=True)
    cfg = tiny_train_config(tmp_path / "run3", model=to_dict(pointwise), init_weights=str(path),
                            init_weights_fresh=["fine.pointwise_layers.", "fine.slot_embedding"])
    model = Trainer(cfg, quiet=True).model
    source = trained.state_dict()
    for name, value in model.state_dict().items():
        if name.startswith(("fine.pointwise_layers.", "fine.slot_embedding")):
            assert name not in source or value.shape != source[name].shape
        else:
            assert torch.equal(value, source[name]), name


@pytest.mark.parametrize("frozen, message", [(["texture"], "choose from"),
                                             (["backbone", "student", "cefg", "stfa", "coarse", "fine"],
                                              "nothing would train")])
def test_frozen_modules_are_checked(tmp_path, frozen, message):
    with pytest.raises(ValueError, match=message):
        tiny_train_config(tmp_path, frozen_modules=frozen).validate()


def test_frozen_module_names_are_the_networks_modules():
    from distillmatch_core.training.train_config import MODULE_NAMES
    assert {name for name, _ in DistillMatch(preset("tiny")).named_children()} == set(MODULE_NAMES)
