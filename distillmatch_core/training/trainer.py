"""The DistillMatch training loop: one CPU, one GPU or many (torchrun DDP).

AdamW + warm-up/cosine schedule, gradient clipping, mixed precision on CUDA, exact
resume (model, optimiser, scheduler, RNG, step; data is a pure function of the step),
CSV + TensorBoard logs, a progress bar, periodic validation with the evaluation code on
the dev split, and best-checkpoint selection. Output folder:
``last.pt`` (training state), ``best.pt`` (model only), ``metrics.csv``, ``validation.csv``,
``tensorboard/``, ``train_config.yaml``.
"""
from __future__ import annotations

import csv
import math
import random
import signal
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from distillmatch_core.checkpoint import CheckpointError, git_commit, load_model, read_checkpoint, save_checkpoint
from distillmatch_core.config import ModelConfig
from distillmatch_core.model.distillmatch import DistillMatch, count_parameters
from distillmatch_core.training.distributed import DistributedContext, init_distributed, shutdown_distributed
from distillmatch_core.training.lr_schedule import warmup_cosine
from distillmatch_core.training.sample_stream import StepBatchSampler
from distillmatch_core.training.supervision_step import supervised_forward
from distillmatch_core.training.train_config import TrainConfig, config_as_dict


def build_dataset(cfg: TrainConfig, seed: int, world_size: int = 1):
    """The configured training dataset (streams from disk)."""
    from distillmatch_core.data import splits

    d = cfg.data
    if d.dataset == "homography_pairs":
        from distillmatch_core.data.homography_pair_dataset import (HomographyPairDataset, items_from_pairs,
                                                                    items_from_photos)
        items = []
        for src in d.pair_sources:
            if src.startswith("shared:"):
                items += items_from_pairs(splits.load_split(src.split(":", 1)[1]))
            else:
                items += items_from_pairs(splits.load_pairs(Path(src)))
        for folder in d.photo_folders:
            path = splits.default_data_root() / "rgb" if folder == "shared:rgb" else Path(folder)
            if not path.is_dir():
                raise FileNotFoundError(f"photo folder not found: {path} (data.photo_folders)")
            items += items_from_photos(path)
        return HomographyPairDataset(items, d.homography, seed=seed, batch_size=cfg.batch_size * world_size)
    if d.dataset == "megadepth":
        from distillmatch_core.data.megadepth_dataset import MegaDepthDataset
        return MegaDepthDataset(d.megadepth, seed=seed)
    raise ValueError(f"unknown dataset {d.dataset!r}; use homography_pairs or megadepth")


def build_teacher(model_cfg: ModelConfig, device: torch.device):
    if not model_cfg.teacher.enabled:
        return None
    from distillmatch_core.model.vfm_teacher import VFMTeacher
    return VFMTeacher(model_cfg.teacher).to(device)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _single_threaded_worker(_: int) -> None:
    # Loader workers share the cores with the training step; torch ops in them must not fan out.
    torch.set_num_threads(1)


def _metric_settings(validation: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The validation settings a score depends on (how often it is measured is not one)."""
    return None if validation is None else {k: v for k, v in validation.items() if k != "interval"}


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: Optional[Path] = None, quiet: bool = False):
        cfg.validate()
        self.cfg = cfg
        self.ctx: DistributedContext = init_distributed(cfg.device)
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        torch.set_flush_denormal(True)  # softmax tails underflow to denormals, which crawl on x86 CPUs
        set_seed(cfg.seed + self.ctx.rank)
        self.out = Path(cfg.output_dir)
        self.quiet = quiet
        self.model_cfg = cfg.model_config()
        self.model = DistillMatch(self.model_cfg).to(self.ctx.device)
        if cfg.init_weights:
            self._load_init_weights(Path(cfg.init_weights))
        frozen = set(cfg.frozen_modules)
        for name, module in self.model.named_children():
            if name in frozen:
                module.requires_grad_(False)
        self.dataset = build_dataset(cfg, cfg.seed, self.ctx.world_size)
        self.teacher = build_teacher(self.model_cfg, self.ctx.device)
        self.optimizer = torch.optim.AdamW(self.trainable_parameters(), lr=cfg.optim.lr,
                                           betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay)
        o = cfg.optim
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, o.warmup_steps, cfg.total_steps, o.min_lr_ratio))
        self.use_amp = cfg.amp and self.ctx.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        self.best_metric = -math.inf
        if resume is not None:
            self._load_state(resume)
        self.ddp_model = self.model
        if self.ctx.enabled:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.ctx.device.index] if self.ctx.device.type == "cuda" else None,
                find_unused_parameters=True)
        self._stop_requested = False

    def _load_init_weights(self, path: Path) -> None:
        """Weights of another run as the start. Parameters the checkpoint has and this model lacks are
        dropped (e.g. the paper head's SRM when fine-tuning the expectation head); every parameter
        this model has must be in the checkpoint with the same shape, except those under the prefixes of
        ``init_weights_fresh``, which keep their initialisation when missing or of another shape."""
        pretrained, _, _ = load_model(path)
        source, own = pretrained.state_dict(), self.model.state_dict()
        fresh = tuple(self.cfg.init_weights_fresh)
        unloadable = [k for k in own if k not in source or source[k].shape != own[k].shape]
        refused = [k for k in unloadable if not k.startswith(fresh)]  # startswith(()) is False
        if refused:
            raise CheckpointError(f"init_weights {path} was trained with another model config than "
                                  f"{self.cfg.model} (it lacks, or has another shape for, {', '.join(refused[:4])}"
                                  f"{' ...' if len(refused) > 4 else ''}; init_weights_fresh names parameters "
                                  "that may start fresh)")
        self.model.load_state_dict({k: v for k, v in source.items() if k in own and k not in unloadable},
                                   strict=False)
        if self.ctx.is_main and not self.quiet:
            dropped = [k for k in source if k not in own]
            if dropped:
                print(f"init_weights: dropped {len(dropped)} tensors this model does not have "
                      f"({', '.join(sorted({k.rsplit('.', 2)[0] for k in dropped}))})", flush=True)
            if unloadable:
                print(f"init_weights: {len(unloadable)} tensors start fresh ({', '.join(unloadable[:6])}"
                      f"{' ...' if len(unloadable) > 6 else ''})", flush=True)

    def trainable_parameters(self) -> List[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def _keep_frozen_layers_in_eval(self) -> None:
        """BatchNorm and dropout inside frozen modules stay in eval mode, so frozen means the same
        function: no running-statistics drift. The modules themselves stay in training mode, because
        that mode also selects outputs (the coarse log-probabilities the loss logs)."""
        for name, module in self.model.named_children():
            if name in self.cfg.frozen_modules:
                for sub in module.modules():
                    if isinstance(sub, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.Dropout)):
                        sub.eval()

    # ------------------------------------------------------------------ state
    def _training_state(self) -> Dict[str, Any]:
        return {"step": self.step, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": {"torch": torch.get_rng_state()}, "best_metric": self.best_metric,
                "train_config": config_as_dict(self.cfg)}

    def _lineage(self) -> Dict[str, Any]:
        d = self.cfg.data
        return {"commit": git_commit(), "dataset": d.dataset, "pair_sources": list(d.pair_sources),
                "photo_folders": list(d.photo_folders), "step": self.step,
                "teacher": self.model_cfg.teacher.model_name if self.model_cfg.teacher.enabled else "none",
                "world_size": self.ctx.world_size, "device": str(self.ctx.device)}

    def sync_buffers(self) -> None:
        """Give every rank rank 0's BatchNorm statistics (DDP syncs gradients, not buffers after a step)."""
        if self.ctx.enabled:
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def save(self, name: str = "last.pt", with_training_state: bool = True) -> Path:
        """Called by every rank (buffers are synchronised collectively); rank 0 writes."""
        path = self.out / name
        self.sync_buffers()
        if self.ctx.is_main:
            save_checkpoint(path, self.model, self.model_cfg, self._lineage(),
                            self._training_state() if with_training_state else None)
        return path

    def _load_state(self, path: Path) -> None:
        payload = read_checkpoint(path)
        if "training" not in payload:
            raise ValueError(f"{path} holds no training state; use init_weights to start from its weights")
        self.model.load_state_dict(payload["state_dict"])
        t = payload["training"]
        self.optimizer.load_state_dict(t["optimizer"])
        self.scheduler.load_state_dict(t["scheduler"])
        self.scaler.load_state_dict(t["scaler"])
        torch.set_rng_state(t["rng"]["torch"])
        self.step = int(t["step"])
        self.best_metric = float(t["best_metric"])
        if _metric_settings(t.get("train_config", {}).get("validation")) != \
                _metric_settings(config_as_dict(self.cfg)["validation"]):
            # A best score measured under other validation settings ranks nothing here.
            self.best_metric = -math.inf

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, float]:
        self.ddp_model.train()
        self._keep_frozen_layers_in_eval()
        batch = {k: v.to(self.ctx.device, non_blocking=True) for k, v in batch.items()}
        terms, sup = self.compute_loss_terms(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["loss"]).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable_parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["grad_norm"] = float(grad_norm)
        out["lr"] = self.scheduler.get_last_lr()[0]
        out["gt_matches"] = float(sup["num_gt_matches"])
        return out

    # The loss of one batch is a hook: the 3DG-STFM student trainer
    # (distillation/matcher_distillation_trainer.py) adds its teacher terms there.
    def feature_teacher_targets(self, batch: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """VFM teacher features of both images (2B, C, h, w), or None without a VFM teacher."""
        if self.teacher is None:
            return None
        with torch.no_grad():
            return self.teacher(torch.cat([batch["image0"], batch["image1"]], 0))

    def step_seed(self) -> int:
        return self.cfg.seed * 1_000_003 + self.step * 131 + self.ctx.rank

    def compute_loss_terms(self, batch: Dict[str, torch.Tensor]):
        """-> (loss terms incl. "loss", supervision) of one batch already on the device."""
        teacher_features = self.feature_teacher_targets(batch)
        step_seed = self.step_seed()
        with torch.autocast(device_type=self.ctx.device.type, dtype=torch.float16, enabled=self.use_amp):
            terms, _, sup = supervised_forward(self.ddp_model, batch, self.cfg.loss, self.cfg.max_fine_matches,
                                               step_seed, teacher_features)
        return terms, sup

    # ------------------------------------------------------------------ validation
    def validate(self) -> Dict[str, float]:
        from distillmatch_core.backends.torch_backend import TorchBackend
        from distillmatch_core.data.splits import load_split
        from distillmatch_core.evaluation.homography_protocol import evaluate_homography
        from distillmatch_core.matcher import Matcher

        v = self.cfg.validation
        pairs = load_split(v.split, Path(v.source) if v.source else None)
        self.model.eval()
        matcher = Matcher(TorchBackend.from_model(self.model, str(self.ctx.device)),
                          size=v.network_size or v.size)

        def match_fn(image0, image1):
            r = matcher.match(image0, image1, "visible", "infrared")
            return r.keypoints0, r.keypoints1

        metrics = evaluate_homography(match_fn, pairs, size=v.size, seed=v.seed, limit=v.limit, progress=False)
        self.model.train()
        return metrics

    # ------------------------------------------------------------------ loop
    def batches(self) -> DataLoader:
        """Batches of the steps still to run (from ``self.step`` to ``total_steps``), for this rank."""
        cfg = self.cfg
        sampler = StepBatchSampler(cfg.batch_size, self.step, cfg.total_steps, self.ctx.rank, self.ctx.world_size)
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=cfg.data.num_workers,
                          persistent_workers=False, pin_memory=self.ctx.device.type == "cuda",
                          worker_init_fn=_single_threaded_worker)

    def fit(self) -> Dict[str, Any]:
        cfg = self.cfg
        is_main = self.ctx.is_main
        if is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "train_config.yaml", "w", encoding="utf-8") as fh:
                yaml.safe_dump(config_as_dict(cfg), fh, sort_keys=False)
        loader = self.batches()
        writer = None
        if is_main:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(self.out / "tensorboard"))
        metrics_file = self.out / "metrics.csv"
        val_file = self.out / "validation.csv"
        start_time = time.time()
        # Every rank listens: torchrun forwards SIGTERM to all of them, and the stop is agreed below.
        previous = signal.signal(signal.SIGTERM, self._request_stop)
        bar = tqdm(total=cfg.total_steps, initial=self.step, disable=not is_main or self.quiet,
                   desc="train", dynamic_ncols=True)
        if is_main:
            print(f"model {count_parameters(self.model) / 1e6:.2f} M parameters, device {self.ctx.device}, "
                  f"world size {self.ctx.world_size}, starting at step {self.step}", flush=True)
        last_log: Dict[str, float] = {}
        reason = ""
        try:
            for batch in loader:
                t0 = time.time()
                log = self.train_step(batch)
                log["step_seconds"] = time.time() - t0
                last_log = log
                bar.update(1)
                if is_main and (self.step % cfg.log_interval == 0 or self.step == cfg.total_steps):
                    bar.set_postfix(loss=f"{log['loss']:.4f}", lr=f"{log['lr']:.2e}")
                    self._append_csv(metrics_file, {"step": self.step, "time_min": (time.time() - start_time) / 60,
                                                    **log})
                    for k, v in log.items():
                        writer.add_scalar(f"train/{k}", v, self.step)
                if cfg.validation.interval and self.step % cfg.validation.interval == 0:
                    self._run_validation(val_file, writer)
                if self.step % cfg.checkpoint_interval == 0:
                    self.save()
                out_of_time = bool(cfg.max_minutes) and (time.time() - start_time) / 60 >= cfg.max_minutes
                at_stop_step = bool(cfg.stop_after_steps) and self.step >= cfg.stop_after_steps
                if self._agree(self._stop_requested or out_of_time or at_stop_step):
                    reason = "SIGTERM" if self._stop_requested else ("time limit" if out_of_time else
                                                                     "stop_after_steps")
                    break
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            bar.close()
            if reason and is_main:
                print(f"stopping at step {self.step} ({reason}); saving last.pt", flush=True)
            # Validate before the final save, so last.pt records the best score it may have set; a
            # stop on request (SIGTERM, Ctrl-C) skips it to exit promptly.
            if reason not in ("SIGTERM", "interrupted") and cfg.validation.interval \
                    and self.step % cfg.validation.interval != 0:
                self._run_validation(val_file, writer)
            self.save()
            if writer is not None:
                writer.close()
            signal.signal(signal.SIGTERM, previous)
            shutdown_distributed()
        return {"step": self.step, "last": last_log, "best_metric": self.best_metric}

    def _agree(self, flag: bool) -> bool:
        """True on every rank if it is true on any (stop decisions must be collective under DDP)."""
        if not self.ctx.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.ctx.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def _run_validation(self, val_file: Path, writer) -> None:
        """Rank 0 validates; every rank joins the (collective) best-checkpoint save."""
        improved = False
        if self.ctx.is_main:
            t0 = time.time()
            metrics = {k: float(v) for k, v in self.validate().items()}
            value = metrics.get(self.cfg.validation.metric, float("nan"))
            improved = value > self.best_metric
            if improved:
                self.best_metric = value
            self._append_csv(val_file, {"step": self.step, "seconds": time.time() - t0, "best": int(improved),
                                        **metrics})
            for k, v in metrics.items():
                writer.add_scalar(f"val/{k}", v, self.step)
            print(f"\nvalidation @ step {self.step}: {self.cfg.validation.metric} = {value:.2f} "
                  f"({'new best' if improved else f'best {self.best_metric:.2f}'})", flush=True)
        if self._agree(improved):
            self.save("best.pt", with_training_state=False)

    def _request_stop(self, *_: Any) -> None:
        self._stop_requested = True

    @staticmethod
    def _append_csv(path: Path, row: Dict[str, Any]) -> None:
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
