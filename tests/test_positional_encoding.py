"""Sine-cosine positional encodings and their training-time jitter (train_pe_jitter)."""
import copy

import torch

from distillmatch_core.config import preset
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.model.positional_encoding import add_sincos_to_map, random_grid_offsets, sincos_2d


def test_an_offset_moves_the_encoding_by_whole_grid_steps():
    base = sincos_2d(6, 8, 16).reshape(6, 8, 16)
    moved = sincos_2d(6, 8, 16, offset=torch.tensor([[2.0, 3.0], [0.0, 0.0]])).reshape(2, 6, 8, 16)
    assert torch.allclose(moved[0, :4, :5], base[2:, 3:], atol=1e-5)  # position (y, x) now encodes (y+2, x+3)
    assert torch.allclose(moved[1], base)
    feat = torch.zeros(2, 16, 6, 8)
    assert torch.allclose(add_sincos_to_map(feat)[1], base.permute(2, 0, 1))
    assert torch.allclose(add_sincos_to_map(feat, torch.tensor([[2.0, 3.0], [0.0, 0.0]]))[0, :, :4, :5],
                          base[2:, 3:].permute(2, 0, 1), atol=1e-5)


def test_offsets_are_bounded_and_off_by_default():
    torch.manual_seed(0)
    offsets = random_grid_offsets(1000, 5.0)
    assert offsets.shape == (1000, 2) and offsets.abs().max() <= 5.0 and offsets.std() > 2.0
    assert random_grid_offsets(4, 0.0) is None


def _jittered_tiny():
    cfg = copy.deepcopy(preset("tiny"))
    cfg.student.train_pe_jitter = 4.0
    cfg.coarse.train_pe_jitter = 8.0
    return cfg


def test_jitter_acts_in_training_only():
    torch.manual_seed(0)
    plain = DistillMatch(preset("tiny"))
    jittered = DistillMatch(_jittered_tiny())
    jittered.load_state_dict(plain.state_dict())  # the jitter is no parameter: same weights, same checkpoints
    x0, x1 = torch.rand(1, 1, 64, 80), torch.rand(1, 1, 64, 80)

    def similarity(model):
        with torch.no_grad():
            return model.extract(x0, x1)["sim_matrix"]

    plain.eval(), jittered.eval()
    assert torch.equal(similarity(plain), similarity(jittered))  # inference is the paper's network
    plain.train(), jittered.train()
    assert torch.equal(similarity(plain), similarity(plain))
    first, second = similarity(jittered), similarity(jittered)
    assert not torch.allclose(first, second)  # a new offset for every image, every step
