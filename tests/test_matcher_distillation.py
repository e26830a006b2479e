"""3DG-STFM matcher-to-matcher distillation: MQD, attentive loss, the student trainer, configs, data hook."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distillmatch_core.checkpoint import save_checkpoint
from distillmatch_core.config import ModelConfig, preset
from distillmatch_core.distillation.matcher_distillation_config import (MatcherDistillationConfig,
                                                                        MatcherDistillationTrainConfig,
                                                                        load_matcher_distillation_config)
from distillmatch_core.distillation.matcher_distillation_trainer import MatcherDistillationTrainer
from distillmatch_core.distillation.privileged_input import pair_normalized_depth
from distillmatch_core.losses.attentive_loss import CELL_QUANTISATION_VARIANCE, attentive_loss, fine_attentive_loss
from distillmatch_core.model.fine_matching import heatmap_moments
from distillmatch_core.losses.mutual_query_divergence import mutual_query_divergence, query_divergences
from distillmatch_core.model.distillmatch import DistillMatch

REPO = Path(__file__).resolve().parents[1]
SIZE = 96  # synthetic images: 12 x 12 coarse cells


def coarse_logits(seed: int, b: int = 2, l0: int = 20, l1: int = 24) -> torch.Tensor:
    return torch.randn(b, l0, l1, generator=torch.Generator().manual_seed(seed)) * 4.0


GT = (torch.tensor([0, 0, 1]), torch.tensor([1, 5, 7]), torch.tensor([2, 9, 3]))


# ----------------------------------------------------------------------------- MQD


def test_mqd_is_zero_for_equal_logits():
    s = coarse_logits(0)
    assert float(mutual_query_divergence(s, s.clone(), GT)) == pytest.approx(0.0, abs=1e-7)


def test_mqd_grows_with_divergence():
    s = coarse_logits(0)
    noise = coarse_logits(1)
    values = [float(mutual_query_divergence(s, s + k * noise, GT)) for k in (0.05, 0.2, 0.5, 1.0, 2.0)]
    assert values[0] > 0
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_mqd_gradient_reaches_only_the_student():
    student = coarse_logits(0).requires_grad_(True)
    teacher = coarse_logits(2).requires_grad_(True)
    mutual_query_divergence(student, teacher, GT).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_mqd_treats_rows_and_columns_as_separate_queries():
    # Per-query softmaxes: a constant added to one teacher row moves no row query (softmax is
    # shift-invariant) but every column query; a global constant moves nothing. A single softmax
    # over the flattened matrix would see the row shift and miss nothing of the column structure.
    s = coarse_logits(0)
    row_shift = torch.zeros_like(s)
    row_shift[:, 3] = 2.0
    kl_rows, kl_cols = query_divergences(s, s + row_shift, temperature=2.0)
    assert float(kl_rows.abs().max()) < 1e-6 and float(kl_cols.min()) > 0
    assert float(mutual_query_divergence(s, s + 5.0, GT)) == pytest.approx(0.0, abs=1e-6)


def test_mqd_rejects_different_grids():
    with pytest.raises(ValueError, match="grid"):
        mutual_query_divergence(coarse_logits(0, l0=20), coarse_logits(0, l0=16), GT)


def test_teacher_terms_use_the_students_own_log_probabilities():
    from distillmatch_core.config import LossConfig
    from distillmatch_core.distillation.student_objective import teacher_terms

    s, t = coarse_logits(0), coarse_logits(1)
    fine_s, fine_t = torch.randn(4, 25, 25), torch.randn(4, 25, 25)
    student = {"sim_matrix": s, "fine_sim": fine_s, "log_prob0": torch.log_softmax(s, 2),
               "log_prob1": torch.log_softmax(s, 1)}
    terms = teacher_terms(MatcherDistillationConfig(), LossConfig(), student, {"sim_matrix": t, "fine_sim": fine_t},
                          {"fine_valid": torch.ones(4, 25, dtype=torch.bool), "gt_pairs": GT}, window=5)
    direct = mutual_query_divergence(s, t, GT, MatcherDistillationConfig().temperature)
    assert float(terms["mqd"]) == pytest.approx(float(direct), rel=1e-5)


# ----------------------------------------------------------------------------- attentive loss


def test_heatmap_moments_of_hand_made_distributions():
    window = 5
    one_hot = torch.zeros(window * window)
    one_hot[3 * window + 4] = 1.0  # row 3, column 4 -> (x, y) = (+2, +1) cells from the centre
    two_points = torch.zeros(window * window)
    two_points[2 * window + 0] = 0.5  # (-2, 0)
    two_points[2 * window + 4] = 0.5  # (+2, 0)
    mean, var = heatmap_moments(torch.stack([one_hot, two_points]), window)
    assert torch.allclose(mean, torch.tensor([[2.0, 1.0], [0.0, 0.0]]))
    assert torch.allclose(var, torch.tensor([0.0, 4.0]))


def test_attentive_loss_matches_the_gaussian_closed_form():
    # Eq. 7 is Eq. 6 (the Gaussian KL) minus its variance-only terms.
    mu_s = torch.tensor([[0.3, 0.0], [-1.0, 0.0], [2.0, 0.0]])
    mu_t = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.2, 0.0]])
    sigma_s = torch.tensor([0.6, 1.1, 0.9])
    sigma_t = torch.tensor([0.8, 0.5, 1.5])
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu_s[:, 0], sigma_s),
                                           torch.distributions.Normal(mu_t[:, 0], sigma_t))
    variance_only = torch.log(sigma_t / sigma_s) + sigma_s ** 2 / (2 * sigma_t ** 2) - 0.5
    expected = (kl - variance_only).mean()
    got = attentive_loss(mu_s, mu_t, sigma_t ** 2)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    by_hand = np.mean([0.09 / (2 * 0.64), 2.25 / (2 * 0.25), 0.64 / (2 * 2.25)])
    assert float(got) == pytest.approx(by_hand, rel=1e-5)


def test_attentive_loss_floors_the_teacher_variance():
    got = attentive_loss(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), torch.zeros(1))
    assert float(got) == pytest.approx(1.0 / (2 * CELL_QUANTISATION_VARIANCE))


def test_attentive_loss_ignores_variance_gradients():
    mu_s = torch.tensor([[0.5, -0.5]], requires_grad=True)
    mu_t = torch.tensor([[0.0, 0.0]], requires_grad=True)
    var_t = torch.tensor([1.0], requires_grad=True)
    attentive_loss(mu_s, mu_t, var_t).backward()
    assert var_t.grad is None and mu_t.grad is None
    assert torch.allclose(mu_s.grad, torch.tensor([[0.5, -0.5]]))  # d/dmu ||mu - mu_t||^2 / 2

    # On heatmaps: a student whose heatmaps only widen (same expectation) is not penalised more,
    # so the optimiser has nothing to gain from the variance.
    window, n = 5, 25
    teacher_sim = torch.randn(3, n, n, generator=torch.Generator().manual_seed(3))
    sharp = torch.randn(3, n, n, generator=torch.Generator().manual_seed(4))
    valid = torch.ones(3, n, dtype=torch.bool)
    symmetric = (sharp + sharp.flip(2)) / 2  # each row symmetric about the centre: mean 0
    wide = symmetric * 0.1
    loss_sharp = fine_attentive_loss(symmetric, teacher_sim, valid, window)
    loss_wide = fine_attentive_loss(wide, teacher_sim, valid, window)
    assert float(loss_sharp) == pytest.approx(float(loss_wide), rel=1e-5)

    student_sim = sharp.clone().requires_grad_(True)
    teacher_sim.requires_grad_(True)
    fine_attentive_loss(student_sim, teacher_sim, valid, window).backward()
    assert teacher_sim.grad is None
    assert student_sim.grad.abs().sum() > 0


def test_attentive_loss_uses_only_valid_heatmaps():
    n = 25
    s = torch.randn(2, n, n, generator=torch.Generator().manual_seed(5), requires_grad=True)
    t = torch.randn(2, n, n, generator=torch.Generator().manual_seed(6))
    none_valid = fine_attentive_loss(s, t, torch.zeros(2, n, dtype=torch.bool), 5)
    assert float(none_valid.detach()) == 0.0
    none_valid.backward()  # still connected to the student graph
    mask = torch.zeros(2, n, dtype=torch.bool)
    mask[1, 7] = True
    s2 = s.detach().clone()
    s2[0] = torch.randn(n, n, generator=torch.Generator().manual_seed(7))  # invalid heatmaps may change
    with torch.no_grad():
        assert float(fine_attentive_loss(s2, t, mask, 5)) == pytest.approx(float(fine_attentive_loss(s, t, mask, 5)))


# ----------------------------------------------------------------------------- student trainer


def random_texture(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    noise = rng.random((size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min() + 1e-6)


def small_homography(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    angle = math.radians(rng.uniform(-8, 8))
    c = size / 2
    to_centre = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], np.float64)
    rot = np.array([[math.cos(angle), -math.sin(angle), 0], [math.sin(angle), math.cos(angle), 0], [0, 0, 1]])
    back = np.array([[1, 0, c + rng.uniform(-4, 4)], [0, 1, c + rng.uniform(-4, 4)], [0, 0, 1]])
    return back @ rot @ to_centre


def synthetic_batch(batch: int = 2, seed: int = 0, counterparts: bool = False):
    """Keys as data/homography_pair_dataset.py produces them (image1 = image0 warped by H_0to1)."""
    rng = np.random.default_rng(seed)
    keys = {k: [] for k in ("image0", "image1", "H_0to1", "content0", "content1", "counterpart0", "counterpart1")}
    for _ in range(batch):
        img0 = random_texture(rng)
        H = small_homography(rng)
        img1 = cv2.warpPerspective(img0, H, (SIZE, SIZE))
        content1 = cv2.warpPerspective(np.ones((SIZE, SIZE), np.uint8), H, (SIZE, SIZE),
                                       flags=cv2.INTER_NEAREST) > 0
        keys["image0"].append(torch.from_numpy(img0)[None])
        keys["image1"].append(torch.from_numpy(img1)[None])
        keys["H_0to1"].append(torch.from_numpy(H.astype(np.float32)))
        keys["content0"].append(torch.ones(SIZE, SIZE, dtype=torch.bool))
        keys["content1"].append(torch.from_numpy(content1))
        # Stand-in for the other modality, aligned with each image.
        keys["counterpart0"].append(torch.from_numpy(1.0 - img0)[None])
        keys["counterpart1"].append(torch.from_numpy(1.0 - img1)[None])
    out = {k: torch.stack(v) for k, v in keys.items()}
    if not counterparts:
        del out["counterpart0"], out["counterpart1"]
    out["modality0"] = torch.zeros(batch, dtype=torch.long)
    out["modality1"] = torch.ones(batch, dtype=torch.long)
    return out


def save_random_teacher(path: Path, cfg: ModelConfig, seed: int = 123) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(path, DistillMatch(cfg), cfg, {"commit": "test"})
    return path


def tiny_trainer(tmp_path: Path, teacher: str, teacher_cfg: ModelConfig | None = None,
                 extra_input: str = "none") -> MatcherDistillationTrainer:
    if teacher:
        save_random_teacher(Path(teacher), teacher_cfg or preset("tiny"))
    cfg = MatcherDistillationTrainConfig(
        model={"preset": "tiny"}, distillation=MatcherDistillationConfig(teacher_checkpoint=teacher,
                                                                        extra_input=extra_input),
        total_steps=1000, max_fine_matches=10_000, device="cpu", num_threads=1, output_dir=str(tmp_path / "run"))
    cfg.optim.lr = 3e-3
    cfg.optim.warmup_steps = 0
    cfg.validation.interval = 0
    return MatcherDistillationTrainer(cfg, quiet=True)


def test_distillation_step_lowers_the_student_loss(tmp_path):
    trainer = tiny_trainer(tmp_path, str(tmp_path / "teacher.pt"))
    teacher_before = {k: v.clone() for k, v in trainer.matcher_teacher.model.state_dict().items()}
    batch = synthetic_batch()
    logs = [trainer.train_step(batch) for _ in range(8)]
    for key in ("mqd", "attentive", "supervised", "coarse", "fine", "loss"):
        assert key in logs[0] and math.isfinite(logs[0][key]), key
    assert logs[0]["mqd"] > 0 and logs[0]["attentive"] > 0
    # train_step reports the loss before its update; all GT pairs go to the fine stage every step,
    # so the batch and its supervision are identical and the losses comparable.
    assert logs[-1]["loss"] < logs[0]["loss"], [round(log["loss"], 4) for log in logs]
    teacher_after = trainer.matcher_teacher.model.state_dict()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)
    assert not any(p.requires_grad for p in trainer.matcher_teacher.model.parameters())


def test_student_alone_has_no_teacher_terms(tmp_path):
    trainer = tiny_trainer(tmp_path, "")
    log = trainer.train_step(synthetic_batch())
    assert "mqd" not in log and math.isfinite(log["loss"])
    # lambda_0 / lambda_1 replace loss.lambda_c / lambda_f in the supervised objective.
    assert trainer.student_loss_cfg.lambda_c == 0.25 and trainer.student_loss_cfg.lambda_f == 0.25


def test_privileged_thermal_teacher_step_runs(tmp_path):
    teacher_cfg = preset("tiny")
    teacher_cfg.extra_input_channels = 1
    trainer = tiny_trainer(tmp_path, str(tmp_path / "teacher.pt"), teacher_cfg, extra_input="thermal")
    log = trainer.train_step(synthetic_batch(counterparts=True))
    assert math.isfinite(log["mqd"]) and math.isfinite(log["attentive"])
    with pytest.raises(KeyError, match="counterpart"):
        trainer.train_step(synthetic_batch(counterparts=False))


def test_training_a_privileged_teacher_feeds_it_the_extra_channel(tmp_path):
    cfg = MatcherDistillationTrainConfig(
        model={"preset": "tiny", "extra_input_channels": 1},
        distillation=MatcherDistillationConfig(extra_input="thermal"),
        device="cpu", num_threads=1, output_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="validation.interval"):
        MatcherDistillationTrainer(cfg, quiet=True)
    cfg.validation.interval = 0
    trainer = MatcherDistillationTrainer(cfg, quiet=True)
    assert cfg.data.homography.aligned_counterparts  # switched on for the data stream
    assert math.isfinite(trainer.train_step(synthetic_batch(counterparts=True))["loss"])


def test_teacher_and_student_must_share_the_fine_window(tmp_path):
    teacher_cfg = preset("tiny")
    teacher_cfg.fine.window_size = 3
    with pytest.raises(ValueError, match="window"):
        tiny_trainer(tmp_path, str(tmp_path / "teacher.pt"), teacher_cfg)


def test_privileged_teacher_needs_extra_input(tmp_path):
    teacher_cfg = preset("tiny")
    teacher_cfg.extra_input_channels = 1
    with pytest.raises(ValueError, match="extra input"):
        tiny_trainer(tmp_path, str(tmp_path / "teacher.pt"), teacher_cfg)


def test_pair_normalized_depth_shares_one_scale():
    d0 = torch.tensor([[[0.0, 2.0], [4.0, 1.0]]])
    d1 = torch.tensor([[[8.0, 0.0], [2.0, 2.0]]])
    n0, n1 = pair_normalized_depth(d0, d1)
    assert n0.shape == (1, 1, 2, 2) and float(n1.max()) == 1.0 and float(n0[0, 0, 1, 0]) == 0.5


# ----------------------------------------------------------------------------- configs and data


@pytest.mark.parametrize("name", ["slim_distilled", "slim_alone"])
def test_shipped_configs_load_and_match(name):
    cfg = load_matcher_distillation_config(REPO / "training" / "configs" / f"{name}.yaml")
    assert cfg.model_config().coarse.layer_names == preset("slim").coarse.layer_names
    assert len(preset("slim").coarse.layer_names) * 2 == len(preset("lite").coarse.layer_names)
    assert cfg.distillation.has_teacher == (name == "slim_distilled")


def test_the_two_slim_configs_differ_only_in_teacher_and_output():
    from distillmatch_core.config import to_dict

    a = to_dict(load_matcher_distillation_config(REPO / "training/configs/slim_distilled.yaml"))
    b = to_dict(load_matcher_distillation_config(REPO / "training/configs/slim_alone.yaml"))
    assert a["distillation"].pop("teacher_checkpoint") and not b["distillation"].pop("teacher_checkpoint")
    assert a.pop("output_dir") != b.pop("output_dir")
    assert a == b


def test_compression_config_starts_from_the_shipped_teacher_minus_half_its_coarse_layers():
    from distillmatch_core.checkpoint import load_model

    cfg = load_matcher_distillation_config(REPO / "training/configs/compress_lite_half_coarse.yaml")
    teacher, _, _ = load_model(REPO / cfg.distillation.teacher_checkpoint)
    assert cfg.init_weights == cfg.distillation.teacher_checkpoint
    student = DistillMatch(cfg.model_config())
    assert 2 * len(student.cfg.coarse.layer_names) == len(teacher.cfg.coarse.layer_names)
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    assert not result.missing_keys  # every student tensor comes from the teacher
    assert {k.split(".")[3] for k in result.unexpected_keys} == {"2", "3"}  # coarse.transformer.layers.N


def test_config_rejects_superseded_loss_weights(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {preset: tiny}\nloss: {lambda_c: 0.5}\n")
    with pytest.raises(ValueError, match="lambda_coarse"):
        load_matcher_distillation_config(path)


def test_dataset_aligned_counterparts(tmp_path):
    from distillmatch_core.data.homography_pair_dataset import (HomographyPairDataConfig, HomographyPairDataset,
                                                                items_from_photos)
    from distillmatch_core.evaluation.random_homography import warp_image
    from synthetic_images import inverted_only_modalities, write_blurred_photos

    write_blurred_photos(tmp_path, 2, 80, 80)
    modality = inverted_only_modalities()
    plain = HomographyPairDataConfig(image_size=(64, 64), modality=modality)
    with_cp = HomographyPairDataConfig(image_size=(64, 64), modality=modality, aligned_counterparts=True)
    items = items_from_photos(tmp_path)
    a = HomographyPairDataset(items, plain, seed=1)[3]
    b = HomographyPairDataset(items, with_cp, seed=1)[3]
    assert set(b) - set(a) == {"counterpart0", "counterpart1"}
    assert all(torch.equal(a[k], b[k]) for k in a)  # no extra random draws
    # counterpart0 lives in image 0's geometry: carried by H_0to1 it lands on image 1.
    moved = warp_image(b["counterpart0"][0].numpy(), b["H_0to1"].numpy().astype(np.float64))
    inner = cv2.erode(b["content1"].numpy().astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    inner &= cv2.erode((moved > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    err = np.abs(moved - b["image1"][0].numpy())[inner].mean()
    assert inner.sum() > 500 and err < 0.05, err
