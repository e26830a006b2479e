"""The frozen teacher matcher of 3DG-STFM: any DistillMatch checkpoint, run on the student's batch.

Teacher and student may differ in every width and depth. What the two distillation losses need
in common is checked once, when the teacher is loaded:

* the coarse grid: both models work at 1/8 (``ModelConfig.coarse_stride``), so on the same images
  their (B, L0, L1) similarity matrices index the same cell pairs (L_MQD);
* the fine window size: run on the SAME coarse matches, element a of window m is the same pixel
  for both models, so their (M, w*w, w*w) fine similarities correspond (L_att);
* the input: one gray channel, or image + privileged channel for an ``extra_input_channels=1``
  teacher (see privileged_input.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from distillmatch_core.checkpoint import load_model
from distillmatch_core.config import ModelConfig
from distillmatch_core.distillation.privileged_input import privileged_inputs

CoarsePairs = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (b_ids, i_ids, j_ids), each (M,)


class FrozenTeacherMatcher:
    """Not an ``nn.Module`` on purpose: its weights never enter the student's optimiser, state dict,
    DDP wrapper or checkpoints."""

    def __init__(self, checkpoint: Path, device: torch.device, extra_input: str = "none"):
        self.path = Path(checkpoint)
        model, self.config, payload = load_model(self.path, str(device))
        self.model = model.eval().requires_grad_(False)
        self.lineage = dict(payload.get("lineage", {}))
        self.extra_input = extra_input
        channels = self.config.extra_input_channels
        if channels not in (0, 1):
            raise ValueError(f"teacher {self.path} takes {channels} extra input channels; 0 or 1 are supported")
        if channels == 1 and extra_input == "none":
            raise ValueError(f"teacher {self.path} was built with an extra input channel; set "
                             "distillation.extra_input to 'depth' or 'thermal' (what it was trained with)")
        if channels == 0 and extra_input != "none":
            raise ValueError(f"distillation.extra_input is {extra_input!r} but teacher {self.path} takes no extra "
                             "channel (extra_input_channels: 0)")

    @property
    def privileged(self) -> bool:
        return self.config.extra_input_channels > 0

    def check_student(self, student: ModelConfig) -> None:
        if student.coarse_stride != self.config.coarse_stride:
            raise ValueError(f"teacher coarse stride {self.config.coarse_stride} != student "
                             f"{student.coarse_stride}: their similarity matrices would not share a grid")
        if student.fine.window_size != self.config.fine.window_size:
            raise ValueError(f"teacher fine window {self.config.fine.window_size} != student "
                             f"{student.fine.window_size}: their fine heatmaps would not correspond")

    @torch.no_grad()
    def __call__(self, batch: Dict[str, torch.Tensor], coarse_pairs: CoarsePairs,
                 inputs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Teacher outputs on ``batch`` with the student's coarse matches forced into its fine stage.

        ``inputs`` overrides the network input (already-built privileged inputs); by default the
        batch images, plus the privileged channel when the teacher takes one.
        """
        if inputs is None:
            inputs = (privileged_inputs(batch, self.extra_input) if self.privileged
                      else (batch["image0"], batch["image1"]))
        return self.model(*inputs, coarse_pairs=coarse_pairs)
