"""Typed configuration of 3DG-STFM matcher-to-matcher distillation, loadable from YAML.

A distillation config is an ordinary training config (``TrainConfig``: model = the student,
data, optimiser, steps, validation) plus a ``distillation`` section. With no teacher checkpoint
the same loop trains the student alone on the same objective minus the teacher terms: that is
the baseline a distilled student must beat (``training/configs/slim_alone.yaml``).

Student objective (3DG-STFM Eq. 9): lambda_0 L_c + lambda_1 L_f + lambda_2 L_MQD + lambda_3 L_att.
L_c and L_f are DistillMatch's own supervised coarse and fine losses; lambda_0 / lambda_1 replace
``loss.lambda_c`` / ``loss.lambda_f`` (so a distillation YAML must not set those two). The
DistillMatch terms 3DG-STFM's LoFTR has no counterpart for (sub-pixel refinement, modality
classification, VFM feature distillation if enabled) keep their ``loss.*`` weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List

from distillmatch_core.config import from_dict, load_yaml
from distillmatch_core.training.train_config import TrainConfig, apply_override

# Privileged channel appended to the input of a network built with ``extra_input_channels=1``.
EXTRA_INPUTS = ("none", "depth", "thermal")


@dataclass
class MatcherDistillationConfig:
    # A DistillMatch checkpoint (any preset; loaded with checkpoint.load_model and frozen).
    # "" trains the student alone (lambda_2, lambda_3 unused).
    teacher_checkpoint: str = ""
    # 3DG-STFM Sec. 3.5, outdoor (MegaDepth) weights; the paper's indoor (ScanNet) lambda_mqd is 4.0.
    lambda_coarse: float = 0.25  # lambda_0
    lambda_fine: float = 0.25  # lambda_1
    lambda_mqd: float = 1.0  # lambda_2
    lambda_attentive: float = 0.25  # lambda_3
    # Softening of both models' coarse query distributions in L_MQD. The paper does not print it;
    # its authors' released code uses 2.
    temperature: float = 2.0
    # "none" | "depth" (MegaDepth data: the pair's depth maps, scaled to [0, 1] per pair) |
    # "thermal" (homography-pair data: each image gets the other image's modality, pixel-aligned
    # with it; see distillation/privileged_input.py). Fed to every network that was built with
    # extra_input_channels=1: the teacher, or the model being trained when training such a teacher.
    extra_input: str = "none"

    def validate(self) -> None:
        if self.extra_input not in EXTRA_INPUTS:
            raise ValueError(f"distillation.extra_input must be one of {EXTRA_INPUTS}, got {self.extra_input!r}")
        if self.temperature <= 0:
            raise ValueError(f"distillation.temperature must be > 0, got {self.temperature}")
        for name in ("lambda_coarse", "lambda_fine", "lambda_mqd", "lambda_attentive"):
            if getattr(self, name) < 0:
                raise ValueError(f"distillation.{name} must be >= 0, got {getattr(self, name)}")

    @property
    def has_teacher(self) -> bool:
        return bool(self.teacher_checkpoint)


@dataclass
class MatcherDistillationTrainConfig(TrainConfig):
    """``TrainConfig`` (the student's training) + the ``distillation`` section."""

    distillation: MatcherDistillationConfig = field(default_factory=MatcherDistillationConfig)


# loss.* keys superseded by distillation.lambda_coarse / lambda_fine: one source of truth per weight.
SUPERSEDED_LOSS_KEYS = {"lambda_c": "lambda_coarse", "lambda_f": "lambda_fine"}


def load_matcher_distillation_config(path: str | Path, overrides: List[str] | None = None
                                     ) -> MatcherDistillationTrainConfig:
    """YAML (+ ``key.sub=value`` overrides) -> validated config; unknown keys are an error."""
    data = load_yaml(path)
    for item in overrides or []:
        apply_override(data, item)
    for key, replacement in SUPERSEDED_LOSS_KEYS.items():
        if key in (data.get("loss") or {}):
            raise ValueError(f"{path}: loss.{key} is not used by matcher distillation; "
                             f"set distillation.{replacement} (3DG-STFM's lambda) instead")
    cfg = from_dict(MatcherDistillationTrainConfig, data)
    cfg.distillation.validate()
    cfg.model_config()  # fail on a bad student model section before any work
    return cfg
