"""Training: a tiny model overfits one batch, resume is exact, two-process DDP keeps ranks identical."""
import math
import os
import socket

import pytest
import torch

from distillmatch_core.config import LossConfig, preset, to_dict
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.training.supervision_step import supervised_forward
from distillmatch_core.training.train_config import TrainConfig, from_dict


def test_tiny_model_overfits_one_batch(synthetic_homography_batch):
    torch.manual_seed(0)
    model = DistillMatch(preset("tiny")).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss_cfg = LossConfig(lambda_sub=0.0)  # sub-pixel needs a fine stage that already works
    losses = []
    for step in range(40):
        terms, _, _ = supervised_forward(model, synthetic_homography_batch, loss_cfg, 64, 0)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"]))
    assert losses[-1] < losses[0] / 3, losses


def tiny_train_config(out_dir, **overrides) -> TrainConfig:
    data = {
        "model": {"preset": "tiny"},
        "data": {"pair_sources": ["shared:dev"], "photo_folders": [], "num_workers": 0,
                 "homography": {"image_size": [96, 64], "modality": {"pseudo_infrared_generator": ""}}},
        "validation": {"interval": 0},
        "batch_size": 2, "total_steps": 4, "max_fine_matches": 32, "log_interval": 1,
        "checkpoint_interval": 1000, "output_dir": str(out_dir), "num_threads": 1,
        "optim": {"lr": 1e-3, "warmup_steps": 1},
    }
    data.update(overrides)
    return from_dict(TrainConfig, data)


def test_resume_reproduces_the_next_steps_exactly(tmp_path, data_root):
    from distillmatch_core.training.trainer import Trainer
    a = Trainer(tiny_train_config(tmp_path / "a"), quiet=True)
    losses_a = []
    for i, batch in enumerate(a.batches()):
        losses_a.append(a.train_step(batch)["loss"])
        if i == 1:
            checkpoint = a.save()
    b = Trainer(tiny_train_config(tmp_path / "b"), resume=checkpoint, quiet=True)
    assert b.step == 2
    losses_b = [b.train_step(batch)["loss"] for batch in b.batches()]
    assert losses_b == losses_a[2:]


def test_resume_keeps_the_best_score_only_under_the_same_validation(tmp_path, data_root):
    from distillmatch_core.training.trainer import Trainer
    a = Trainer(tiny_train_config(tmp_path / "a"), quiet=True)
    a.best_metric = 5.0
    checkpoint = a.save()
    assert Trainer(tiny_train_config(tmp_path / "b"), resume=checkpoint, quiet=True).best_metric == 5.0
    rarer = tiny_train_config(tmp_path / "b", validation={"interval": 1000})
    assert Trainer(rarer, resume=checkpoint, quiet=True).best_metric == 5.0
    other = tiny_train_config(tmp_path / "c", validation={"interval": 0, "network_size": 64})
    assert Trainer(other, resume=checkpoint, quiet=True).best_metric == -math.inf


def test_validation_feeds_the_network_at_its_own_size(tmp_path, data_root, monkeypatch):
    import numpy as np

    from distillmatch_core.backends.torch_backend import TorchBackend
    from distillmatch_core.evaluation import homography_protocol
    from distillmatch_core.training.trainer import Trainer
    shapes = []
    real_run = TorchBackend.run
    monkeypatch.setattr(TorchBackend, "run", lambda self, c0, c1: shapes.append(c0.shape) or real_run(self, c0, c1))

    def fake_evaluate(match_fn, pairs, size, **kwargs):
        match_fn(np.zeros((size * 3 // 4, size), np.uint8), np.zeros((size * 3 // 4, size), np.uint8))
        return {"auc@10px": 0.0}

    monkeypatch.setattr(homography_protocol, "evaluate_homography", fake_evaluate)
    cfg = tiny_train_config(tmp_path, validation={"interval": 0, "size": 128, "network_size": 64, "limit": 1})
    Trainer(cfg, quiet=True).validate()
    assert max(shapes[0][-2:]) == 64


def test_fit_writes_logs_and_checkpoints(tmp_path, data_root):
    from distillmatch_core.checkpoint import read_checkpoint
    from distillmatch_core.training.trainer import Trainer
    cfg = tiny_train_config(tmp_path, total_steps=2)
    result = Trainer(cfg, quiet=True).fit()
    assert result["step"] == 2
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3  # header + 2 steps
    assert (tmp_path / "train_config.yaml").is_file() and any((tmp_path / "tensorboard").iterdir())
    payload = read_checkpoint(tmp_path / "last.pt")
    assert payload["training"]["step"] == 2 and payload["lineage"]["dataset"] == "homography_pairs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str, cfg_dict: dict) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(world),
                       "RANK": str(rank), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    from distillmatch_core.training.trainer import Trainer
    trainer = Trainer(from_dict(TrainConfig, cfg_dict), quiet=True)
    for batch in trainer.batches():
        trainer.train_step(batch)
    trainer.sync_buffers()  # as fit() does before every checkpoint
    torch.save(trainer.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path, data_root):
    cfg = to_dict(tiny_train_config(tmp_path, total_steps=3))
    torch.multiprocessing.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), cfg), nprocs=2, join=True)
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    initial = DistillMatch(preset("tiny")).state_dict()
    moved = False
    for k in s0:
        assert torch.equal(s0[k], s1[k]), f"ranks differ at {k}"
        if s0[k].is_floating_point() and not torch.equal(s0[k], initial[k]):
            moved = True
    assert moved


@pytest.mark.parametrize("name", ["lite_rgbt", "lite_rgbt_nll", "lite_rgbt_shared", "lite_rgbt_pe_jitter",
                                  "lite_rgbt_fine_expectation", "paper_megadepth"])
def test_shipped_training_configs_load_and_point_at_committed_files(name):
    from pathlib import Path

    from distillmatch_core.training.train_config import load_train_config
    repo = Path(__file__).resolve().parents[1]
    cfg = load_train_config(repo / "training" / "configs" / f"{name}.yaml")
    cfg.validate()
    model = DistillMatch(cfg.model_config())
    assert sum(p.numel() for p in model.parameters()) > 0
    if cfg.init_weights:  # a recipe that starts from a committed state must find it in a clean checkout
        assert (repo / cfg.init_weights).is_file(), cfg.init_weights
