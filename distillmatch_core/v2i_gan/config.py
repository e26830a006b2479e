"""Typed configuration of V2I-GAN (networks, losses, training run), loadable from YAML.

``V2IGanTrainingConfig`` is the top level; ``training/configs/v2i_gan.yaml`` holds the
values used for the shipped generator. Round-trips through ``distillmatch_core.config``'s
``to_dict`` / ``from_dict`` (unknown keys are an error, missing keys default).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Tuple

from distillmatch_core.config import from_dict, load_yaml

CYCLE = "cycle"  # unpaired CycleGAN-style training (two generators, two discriminators)
PAIRED = "paired"  # aligned pairs: reconstruction L1 + adversarial (visible->infrared only)
TRAINING_MODES = (CYCLE, PAIRED)


@dataclass
class SemanticExtractorConfig:
    """Frozen stand-in for the DINOv2 features of the paper (no VFM weights are available offline).

    A fixed multi-scale bank of oriented (Gabor) filters; their local energy, pooled to the
    encoder's bottleneck grid, is a texture/layout descriptor the STFA block attends to.
    """

    orientations: int = 4
    # Filters run on the image average-pooled by working_downsample (cheap large wavelengths);
    # wavelengths are in pixels of that working resolution (x2 in input pixels by default).
    working_downsample: int = 2
    wavelengths: Tuple[float, ...] = (4.0, 8.0)
    stride: int = 4  # output grid = input / stride, the generator bottleneck


@dataclass
class GeneratorConfig:
    # The trainer sets in/out channels per direction (G_VI: 3 -> 1, G_IV: 1 -> 3).
    in_channels: int = 3
    out_channels: int = 1
    base_channels: int = 16
    num_downsamples: int = 2  # bottleneck at 1 / 2**num_downsamples
    num_residual_blocks: int = 3
    # STFA (model.stfa.STFA) at the bottleneck; "linear" attention keeps it O(N) for any image size.
    use_semantic_aggregation: bool = True
    stfa_heads: int = 4
    stfa_attention: str = "linear"
    semantic: SemanticExtractorConfig = field(default_factory=SemanticExtractorConfig)

    @property
    def size_multiple(self) -> int:
        """Input H and W must be multiples of this (the translator pads)."""
        return 2 ** self.num_downsamples


@dataclass
class DiscriminatorConfig:
    """PatchGAN: each output cell judges a receptive field of about 34 x 34 input pixels."""

    base_channels: int = 16
    num_layers: int = 3


@dataclass
class LossWeights:
    adversarial: float = 1.0
    cycle: float = 10.0
    identity: float = 0.5  # relative to cycle, as in CycleGAN (identity weight = 0.5 * cycle)
    gradient_alignment: float = 2.0
    reconstruction: float = 10.0  # paired mode only
    # Structure tensors are smoothed over this Gaussian sigma (pixels) before comparison.
    structure_sigma: float = 1.5


@dataclass
class V2IGanDataConfig:
    split: str = "train"
    # Empty -> the shared data manifest (data.splits.load_pairs default).
    source: str = ""
    # Images are resized so the short side is this long (160x120 for the 4:3 sets, the
    # resolution of common uncooled thermal cores), then randomly cropped to (height, width).
    short_side: int = 120
    crop_size: Tuple[int, int] = (96, 128)
    horizontal_flip: bool = True
    max_pairs: int = 0  # 0 = all


@dataclass
class V2IGanTrainingConfig:
    mode: str = CYCLE
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    losses: LossWeights = field(default_factory=LossWeights)
    data: V2IGanDataConfig = field(default_factory=V2IGanDataConfig)
    batch_size: int = 4
    learning_rate: float = 2.0e-4
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    max_steps: int = 100000
    max_minutes: float = 8.0  # wall-clock budget; whichever of steps/minutes ends first
    num_threads: int = 1
    seed: int = 0
    log_every: int = 20
    output_dir: str = "outputs/v2i_gan"

    def __post_init__(self) -> None:
        if self.mode not in TRAINING_MODES:
            raise ValueError(f"unknown V2I-GAN training mode {self.mode!r}; use one of {TRAINING_MODES}")


def training_config_from_dict(data: Dict[str, Any] | None) -> V2IGanTrainingConfig:
    return from_dict(V2IGanTrainingConfig, data)


def load_training_config(path: str | Path) -> V2IGanTrainingConfig:
    return training_config_from_dict(load_yaml(path))


def generator_config_from_dict(data: Dict[str, Any]) -> GeneratorConfig:
    return from_dict(GeneratorConfig, data)

