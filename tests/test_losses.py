"""Every loss term is zero / minimal where it should be and positive where it should not."""
import math

import torch

from distillmatch_core.losses.distillation_loss import distillation_loss, gram_loss, kl_loss, normalized_mse
from distillmatch_core.losses.matching_losses import (coarse_focal_loss, coarse_nll, fine_loss, fine_nll, focal_loss,
                                                      subpixel_loss)
from distillmatch_core.losses.modality_loss import modality_loss
from distillmatch_core.supervision.pair_geometry import HomographyGeometry


def test_distillation_terms_vanish_for_identical_features_only():
    f = torch.randn(2, 16, 4, 5)
    for fn in (normalized_mse, gram_loss, kl_loss):
        assert float(fn(f, f.clone())) < 1e-6
        assert float(fn(f, torch.randn_like(f))) > 1e-3
    # MSE is on L2-normalised vectors: a rescaled student is already perfect for it.
    assert float(normalized_mse(f, 3 * f)) < 1e-6
    terms = distillation_loss(f, torch.randn_like(f), alpha=100, beta=0.5, gamma=0.25)
    expected = 100 * terms["kd_mse"] + 0.5 * terms["kd_gram"] + 0.25 * terms["kd_kl"]
    assert torch.allclose(terms["kd"], expected)


def test_distillation_gradient_never_reaches_the_teacher():
    t = torch.randn(1, 8, 3, 3, requires_grad=True)
    s = torch.randn(1, 8, 3, 3, requires_grad=True)
    distillation_loss(t, s, 1, 1, 1)["kd"].backward()
    assert t.grad is None and s.grad is not None


def test_modality_loss_small_for_confident_correct_large_for_wrong():
    good = torch.tensor([[10.0, -10.0]])
    bad = torch.tensor([[-10.0, 10.0]])
    vis, ir = torch.tensor([0]), torch.tensor([1])
    assert float(modality_loss(good, vis, -good, ir)) < 1e-3
    assert float(modality_loss(bad, vis, -bad, ir)) > 10


def test_coarse_focal_matches_dense_focal_and_orders_correctly():
    torch.manual_seed(0)
    sim = torch.randn(2, 12, 12) * 3
    log_p = torch.log_softmax(sim, dim=2)
    gt = (torch.tensor([0, 1, 1]), torch.tensor([3, 5, 7]), torch.tensor([2, 5, 1]))
    dense = torch.zeros(2, 12, 12)
    dense[gt] = 1
    assert torch.allclose(coarse_focal_loss(log_p, gt), focal_loss(log_p.exp(), dense), rtol=1e-4)
    # Every row matched (a permutation): a peaked matrix at the GT has (almost) no loss.
    perm = torch.randperm(12)
    full = (torch.zeros(12, dtype=torch.long), torch.arange(12), perm)
    perfect = torch.full((1, 12, 12), -30.0)
    perfect[full] = 0.0
    assert float(coarse_focal_loss(torch.log_softmax(perfect, dim=2), full)) < 1e-6
    assert float(coarse_focal_loss(torch.log_softmax(sim[:1], dim=2), full)) > 1e-3


def test_fine_loss_ignores_windows_without_ground_truth():
    prob = torch.full((3, 25, 25), 1 / 625)
    gt = torch.zeros(3, 25, 25)
    assert float(fine_loss(prob, gt)) == 0.0
    gt[0, 12, 12] = 1
    perfect = torch.zeros(3, 25, 25)
    perfect[0, 12, 12] = 1
    assert float(fine_loss(perfect, gt)) < 1e-5 < float(fine_loss(prob, gt))


def test_coarse_nll_is_mean_dual_log_probability_at_ground_truth():
    torch.manual_seed(0)
    sim = torch.randn(2, 6, 6) * 2
    lp0, lp1 = torch.log_softmax(sim, dim=2), torch.log_softmax(sim, dim=1)
    gt = (torch.tensor([0, 1]), torch.tensor([1, 4]), torch.tensor([3, 0]))
    expected = -(lp0[0, 1, 3] + lp1[0, 1, 3] + lp0[1, 4, 0] + lp1[1, 4, 0]) / 4
    assert torch.allclose(coarse_nll(lp0, lp1, gt), expected)
    # Raising a GT logit lowers the term; no GT gives a zero that still back-propagates.
    sharper = sim.clone()
    sharper[0, 1, 3] += 5
    assert coarse_nll(torch.log_softmax(sharper, 2), torch.log_softmax(sharper, 1), gt) < expected
    empty = (torch.tensor([], dtype=torch.long),) * 3
    sim.requires_grad_(True)
    zero = coarse_nll(torch.log_softmax(sim, 2), torch.log_softmax(sim, 1), empty)
    zero.backward()
    assert float(zero.detach()) == 0.0 and sim.grad is not None


def test_fine_nll_counts_every_positive_in_both_directions():
    sim = torch.zeros(2, 25, 25)
    gt = torch.zeros(2, 25, 25)
    gt[0, 3, 7] = gt[0, 4, 8] = 1
    # Uniform logits: each direction is a 25-way guess.
    assert math.isclose(float(fine_nll(sim, gt)), math.log(25), rel_tol=1e-5)
    sim[0, 3, 7] = sim[0, 4, 8] = 20.0
    assert float(fine_nll(sim, gt)) < 1e-3
    assert float(fine_nll(sim, torch.zeros_like(gt))) == 0.0


def test_subpixel_loss_zero_for_exact_matches_and_grows_with_error():
    H = torch.tensor([[[1.1, 0.02, 5.0], [0.01, 0.95, -3.0], [1e-4, 0.0, 1.0]]])
    geo = HomographyGeometry(H, (100, 120), (100, 120))
    p0 = torch.tensor([[10.0, 20.0], [50.0, 60.0]])
    p1 = geo.warp01(p0[None])[0][0]
    b = torch.zeros(2, dtype=torch.long)
    mask = torch.ones(2, dtype=torch.bool)
    assert float(subpixel_loss(geo, b, p0, p1, mask)) < 1e-8
    assert float(subpixel_loss(geo, b, p0, p1 + 1.0, mask)) > float(subpixel_loss(geo, b, p0, p1 + 0.5, mask)) > 0
    assert math.isclose(float(subpixel_loss(geo, b, p0, p1, ~mask)), 0.0)
