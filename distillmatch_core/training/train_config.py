"""Typed training configuration, loadable from YAML (``training/configs/*.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from distillmatch_core.config import LossConfig, from_dict, load_yaml, model_config_from_dict, to_dict
from distillmatch_core.data.homography_pair_dataset import HomographyPairDataConfig
from distillmatch_core.data.megadepth_dataset import MegaDepthDataConfig


# DistillMatch's top-level modules (attribute names), the units ``frozen_modules`` freezes.
MODULE_NAMES = ("backbone", "student", "cefg", "stfa", "coarse", "fine")


@dataclass
class OptimConfig:
    lr: float = 6.0e-3  # paper (batch 1 x 3 GPUs)
    weight_decay: float = 0.1
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05  # cosine decay to this fraction of lr
    grad_clip: float = 1.0


@dataclass
class TrainDataConfig:
    dataset: str = "homography_pairs"  # "homography_pairs" | "megadepth"
    # Aligned pairs: "shared:train" (the fixed split of ../shared/data), a manifest CSV or a folder.
    pair_sources: List[str] = field(default_factory=lambda: ["shared:train"])
    # RGB photos whose infrared side the modality sampler synthesises ("shared:rgb" or folders).
    photo_folders: List[str] = field(default_factory=lambda: ["shared:rgb"])
    homography: HomographyPairDataConfig = field(default_factory=HomographyPairDataConfig)
    megadepth: MegaDepthDataConfig = field(default_factory=MegaDepthDataConfig)
    num_workers: int = 1


@dataclass
class ValidationConfig:
    interval: int = 500  # steps; 0 disables
    split: str = "dev"
    source: str = ""  # "" = shared data
    limit: int = 20
    size: int = 640  # longer side of the protocol's images (errors are measured at this scale)
    # Longer side fed to the network; 0 = ``size``. A model trained on small crops is validated at
    # the scale it will be shipped at, or the metric ranks checkpoints by a scale it never saw.
    network_size: int = 0
    seed: int = 0
    metric: str = "auc@10px"


@dataclass
class TrainConfig:
    model: Dict[str, Any] = field(default_factory=lambda: {"preset": "paper"})
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    batch_size: int = 1  # per process
    total_steps: int = 10000  # length of the learning-rate schedule
    stop_after_steps: int = 0  # end the run at this step (0 = total_steps), schedule unchanged
    max_fine_matches: int = 256  # GT coarse matches per batch sent to the fine stage
    seed: int = 0
    output_dir: str = "runs/distillmatch"
    log_interval: int = 20
    checkpoint_interval: int = 250
    max_minutes: float = 0.0  # stop (with a checkpoint) after this wall time; 0 = no limit
    amp: bool = True  # mixed precision on CUDA only
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    num_threads: int = 0  # torch CPU threads; 0 = torch default
    # Load weights (not optimiser state) from a checkpoint before step 0, e.g. to fine-tune.
    init_weights: str = ""
    # Parameter-name prefixes (e.g. "fine.pointwise_layers.") that may be missing from init_weights or
    # have another shape there: they keep their fresh initialisation. Every other parameter must load,
    # so a wrong checkpoint still fails at once. For a redesigned stage on trained weights.
    init_weights_fresh: List[str] = field(default_factory=list)
    # Top-level modules of DistillMatch (backbone, student, cefg, stfa, coarse, fine) that do not
    # train: no gradient, no optimiser state, BatchNorm kept in eval mode. E.g. train a new fine
    # head on a trained coarse matcher without moving its coarse matches.
    frozen_modules: List[str] = field(default_factory=list)

    def model_config(self):
        return model_config_from_dict(self.model)

    def validate(self) -> None:
        """Reject values that would only fail (or divide by zero) hours into a run."""
        positive = {"batch_size": self.batch_size, "total_steps": self.total_steps,
                    "log_interval": self.log_interval, "checkpoint_interval": self.checkpoint_interval,
                    "max_fine_matches": self.max_fine_matches}
        bad = [f"{k}={v} (must be > 0)" for k, v in positive.items() if not isinstance(v, int) or v <= 0]
        if self.validation.interval < 0:
            bad.append(f"validation.interval={self.validation.interval} (must be >= 0)")
        unknown = sorted(set(self.frozen_modules) - set(MODULE_NAMES))
        if unknown:
            bad.append(f"frozen_modules={unknown} (choose from {list(MODULE_NAMES)})")
        elif set(MODULE_NAMES) <= set(self.frozen_modules):
            bad.append("frozen_modules freezes every module (nothing would train)")
        if self.data.dataset not in ("homography_pairs", "megadepth"):
            bad.append(f"data.dataset={self.data.dataset!r} (homography_pairs or megadepth)")
        if bad:
            raise ValueError("invalid training config: " + ", ".join(bad))


def load_train_config(path: str | Path, overrides: List[str] | None = None) -> TrainConfig:
    data = load_yaml(path)
    for item in overrides or []:
        apply_override(data, item)
    return from_dict(TrainConfig, data)


def apply_override(data: Dict[str, Any], item: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into a nested dict."""
    import yaml

    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.sub=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {item!r}: {p} is not a mapping")
    node[parts[-1]] = yaml.safe_load(value)


def config_as_dict(cfg: TrainConfig) -> Dict[str, Any]:
    return to_dict(cfg)
