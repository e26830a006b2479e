"""3DG-STFM student training: the DistillMatch ``Trainer`` with a frozen teacher matcher in the loss.

Everything but the loss of a batch is the DistillMatch trainer's (data stream, AdamW + warm-up /
cosine, clipping, AMP, DDP, exact resume, logs, validation of the student on the dev split, best
checkpoint). Per step:

1. the student's supervised terms, ``supervised_forward`` with lambda_0 / lambda_1 as the coarse /
   fine weights; its fine stage runs on a sample of ground-truth coarse matches;
2. the teacher on the same batch with those SAME coarse matches forced into its fine stage, so
   both models' fine windows cover the same pixels;
3. + lambda_2 L_MQD (coarse similarities) + lambda_3 L_att (fine heatmaps).

Without ``distillation.teacher_checkpoint`` step 2-3 are skipped: the student trains alone on the
same objective and data, the baseline of the comparison. A model built with
``extra_input_channels=1`` (a privileged teacher being trained) gets the privileged channel too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import torch

from distillmatch_core.distillation.frozen_teacher_matcher import FrozenTeacherMatcher
from distillmatch_core.distillation.matcher_distillation_config import MatcherDistillationTrainConfig
from distillmatch_core.distillation.privileged_input import privileged_inputs
from distillmatch_core.distillation.student_objective import (add_teacher_terms, student_supervised_loss_config,
                                                              teacher_terms)
from distillmatch_core.training.supervision_step import supervised_forward
from distillmatch_core.training.trainer import Trainer


def prepare_data_config(cfg: MatcherDistillationTrainConfig) -> None:
    """Check the data can feed the privileged channel, and turn on what it needs."""
    kind = cfg.distillation.extra_input
    if kind == "thermal":
        if cfg.data.dataset != "homography_pairs":
            raise ValueError("distillation.extra_input 'thermal' needs data.dataset: homography_pairs "
                             "(the aligned counterparts come from its aligned sources)")
        # Recorded in the run's train_config.yaml like any other setting.
        cfg.data.homography.aligned_counterparts = True
    elif kind == "depth" and cfg.data.dataset != "megadepth":
        raise ValueError("distillation.extra_input 'depth' needs depth-supervised data (data.dataset: megadepth)")


class MatcherDistillationTrainer(Trainer):
    def __init__(self, cfg: MatcherDistillationTrainConfig, resume: Optional[Path] = None, quiet: bool = False):
        cfg.distillation.validate()
        prepare_data_config(cfg)
        student_cfg = cfg.model_config()
        if student_cfg.extra_input_channels not in (0, 1):
            raise ValueError(f"model.extra_input_channels must be 0 or 1, got {student_cfg.extra_input_channels}")
        if student_cfg.extra_input_channels and cfg.distillation.extra_input == "none":
            raise ValueError("the model takes an extra input channel: set distillation.extra_input "
                             "to 'depth' or 'thermal'")
        if student_cfg.extra_input_channels and cfg.validation.interval:
            # Validation runs the RGB-thermal inference API, which feeds one channel.
            raise ValueError("a model with a privileged input channel cannot be validated on the dev split; "
                             "set validation.interval: 0")
        super().__init__(cfg, resume=resume, quiet=quiet)
        self.distillation = cfg.distillation
        self.student_loss_cfg = student_supervised_loss_config(cfg.loss, cfg.distillation)
        self.matcher_teacher: Optional[FrozenTeacherMatcher] = None
        if cfg.distillation.has_teacher:
            self.matcher_teacher = FrozenTeacherMatcher(Path(cfg.distillation.teacher_checkpoint), self.ctx.device,
                                                        cfg.distillation.extra_input)
            self.matcher_teacher.check_student(self.model_cfg)
        elif cfg.distillation.extra_input != "none" and not student_cfg.extra_input_channels:
            raise ValueError(f"distillation.extra_input is {cfg.distillation.extra_input!r} but neither a teacher "
                             "nor the model takes an extra channel")
        if self.ctx.is_main and not quiet:
            teacher = self.matcher_teacher.path if self.matcher_teacher else "none (student trained alone)"
            print(f"matcher distillation: teacher {teacher}, extra input {cfg.distillation.extra_input}", flush=True)

    def _lineage(self) -> Dict[str, Any]:
        lineage = super()._lineage()
        t = self.matcher_teacher
        lineage["matcher_teacher"] = str(t.path) if t else "none"
        lineage["matcher_teacher_commit"] = t.lineage.get("commit", "unknown") if t else "none"
        lineage["extra_input"] = self.distillation.extra_input
        return lineage

    def compute_loss_terms(self, batch: Dict[str, torch.Tensor]):
        teacher_features = self.feature_teacher_targets(batch)
        step_seed = self.step_seed()
        kind = self.distillation.extra_input
        # Built once: the student (when privileged) and the teacher read the same tensors.
        extended = privileged_inputs(batch, kind) if kind != "none" else None
        student_inputs = extended if self.model_cfg.extra_input_channels else None
        with torch.autocast(device_type=self.ctx.device.type, dtype=torch.float16, enabled=self.use_amp):
            terms, outputs, sup = supervised_forward(self.ddp_model, batch, self.student_loss_cfg,
                                                     self.cfg.max_fine_matches, step_seed, teacher_features,
                                                     student_inputs)
            if self.matcher_teacher is None:
                return terms, sup
            teacher_inputs = extended if self.matcher_teacher.privileged else None
            teacher_out = self.matcher_teacher(batch, (outputs["b_ids"], outputs["i_ids"], outputs["j_ids"]),
                                               teacher_inputs)
            distill = teacher_terms(self.distillation, self.cfg.loss, outputs, teacher_out, sup,
                                    self.model_cfg.fine.window_size)
        return add_teacher_terms(terms, distill, self.distillation), sup
