"""The DistillMatch network: texture ResNet + student ViT -> CEFG -> STFA -> coarse -> fine -> sub-pixel.

Inputs: image0, image1 (B, 1 + extra, H, W) float in [0, 1], H and W multiples of 8,
both of the same size (the inference API pads). The VFM teacher is not part of
this module: it is a training-time target held by the trainer, so checkpoints
and deployed graphs never contain it.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from distillmatch_core.config import ModelConfig
from distillmatch_core.model.cefg import CEFG
from distillmatch_core.model.coarse_matching import (CoarseMatching, matches_from_row_maxima, mutual_maxima_blockwise,
                                                     select_coarse_matches)
from distillmatch_core.model.fine_matching import FineMatching, anchor_matches
from distillmatch_core.model.stfa import STFA
from distillmatch_core.model.student_vit import StudentViT
from distillmatch_core.model.texture_backbone import TextureBackbone


class DistillMatch(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        in_ch = 1 + cfg.extra_input_channels
        self.backbone = TextureBackbone(cfg.texture, in_ch)
        c1, c2, c3 = self.backbone.out_channels
        self.student = StudentViT(cfg.student, in_ch)
        self.cefg = CEFG(cfg.cefg, c1, c3) if cfg.cefg.enabled else None
        self.stfa = STFA(cfg.stfa, c3, cfg.student.out_dim) if cfg.stfa.enabled else None
        self.coarse = CoarseMatching(cfg.coarse, c3)
        self.fine = FineMatching(cfg.fine, c1, c2, cfg.coarse.d_model)
        # Eager CPU selection's first pass in bf16 (mutual_maxima_blockwise): set with cpu_bf16 by
        # inference_optimization.optimize_for_inference, never in training.
        self.bf16_selection_sums = False

    # ------------------------------------------------------------------ shared trunk
    def extract(self, image0: torch.Tensor, image1: torch.Tensor, similarity: bool = True) -> Dict[str, torch.Tensor]:
        """Features of both images up to the coarse descriptors and (unless ``similarity`` is False, eval only)
        the coarse similarity."""
        if image0.shape != image1.shape:
            raise ValueError(f"image0 {tuple(image0.shape)} and image1 {tuple(image1.shape)} must have one shape")
        if image0.shape[-1] % 8 or image0.shape[-2] % 8:
            raise ValueError(f"image size {tuple(image0.shape[-2:])} must be a multiple of 8")
        b = image0.shape[0]
        half, quarter, coarse = self.backbone(torch.cat([image0, image1], dim=0))
        semantic = self.student(torch.cat([image0, image1], dim=0))  # F_stu (2B, 384, H/8, W/8)
        half0, half1 = half[:b], half[b:]
        coarse0, coarse1 = coarse[:b], coarse[b:]
        out: Dict[str, torch.Tensor] = {"student_features": semantic}
        if self.cefg is not None:
            coarse0, coarse1, out["modality_logits0"], out["modality_logits1"] = self.cefg(
                half0, half1, coarse0, coarse1)
        if self.stfa is not None:
            coarse0 = self.stfa(coarse0, semantic[:b])
            coarse1 = self.stfa(coarse1, semantic[b:])
        out.update(self.coarse(coarse0, coarse1, similarity))
        out.update({"half0": half0, "half1": half1, "quarter0": quarter[:b], "quarter1": quarter[b:]})
        out["grid"] = torch.tensor(coarse0.shape[-2:])
        return out

    def _fine(self, feats: Dict[str, torch.Tensor], b_ids, i_ids, j_ids) -> Dict[str, torch.Tensor]:
        grid_w = int(feats["grid"][1])
        if not (self.training or self.cfg.fine.refine):
            return anchor_matches(i_ids, j_ids, grid_w, grid_w)
        return self.fine(feats["half0"], feats["half1"], feats["quarter0"], feats["quarter1"],
                         feats["coarse_tokens0"], feats["coarse_tokens1"], b_ids, i_ids, j_ids, grid_w, grid_w)

    def coarse_confidence(self, feats: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Moves feats["sim_matrix"] to feats["conf_matrix"] (B, L0, L1), computed in its memory:
        at 640x480 a second 4800^2 buffer is 92 MB and most of the coarse stage's time."""
        conf = self.coarse.confidence(feats.pop("sim_matrix").detach(), in_place=True)
        feats["conf_matrix"] = conf
        return conf

    # ------------------------------------------------------------------ training / eager inference
    def forward(self, image0: torch.Tensor, image1: torch.Tensor,
                coarse_pairs: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
                max_matches: Optional[int] = None) -> Dict[str, torch.Tensor]:
        """Eager forward. ``coarse_pairs`` (b_ids, i_ids, j_ids) overrides the predicted coarse matches
        for the fine stage (training feeds ground-truth coarse matches there, as LoFTR).
        ``max_matches``: keep at most that many coarse matches per image pair, the most confident (the
        exported graph's K slots), so the fine stage's cost is bounded; None keeps every match.

        Adds: b_ids, i_ids, j_ids, coarse_confidence (M,), fine outputs (M, ...), keypoints0/1 (M, 2)
        in network-input pixels and match_valid (M,) = fine probability above theta_f.
        Without ``coarse_pairs`` the model must be in eval mode; on a CPU the output then has no (L0, L1) matrix,
        on a GPU ``sim_matrix`` is replaced by ``conf_matrix`` (B, L0, L1).
        """
        # On a CPU, selection works blockwise from the descriptors (the same matches as the exported graph's
        # select_coarse_matches(coarse_confidence(...)), without the (L0, L1) matrix); on a GPU the matrix is cheap.
        blockwise = coarse_pairs is None and image0.device.type == "cpu"
        feats = self.extract(image0, image1, similarity=not blockwise)
        gh, gw = int(feats["grid"][0]), int(feats["grid"][1])
        c = self.cfg.coarse
        if coarse_pairs is None:
            if blockwise:
                maxima = mutual_maxima_blockwise(feats["coarse_desc0"], feats["coarse_desc1"], c.temperature,
                                                 c.match_type, bf16_sums=self.bf16_selection_sums)
                predicted = matches_from_row_maxima(*maxima, (gh, gw), (gh, gw), c.threshold, c.border_rm, max_matches)
            else:
                predicted = select_coarse_matches(self.coarse_confidence(feats), (gh, gw), (gh, gw), c.threshold,
                                                  c.border_rm, max_matches)
            b_ids, i_ids, j_ids, conf = predicted.flatten_valid()
        else:
            b_ids, i_ids, j_ids = coarse_pairs
            conf = feats["sim_matrix"][b_ids, i_ids, j_ids].detach()  # (training: a score, not a probability)
        feats.update({"b_ids": b_ids, "i_ids": i_ids, "j_ids": j_ids, "coarse_confidence": conf})
        fine = self._fine(feats, b_ids, i_ids, j_ids)
        feats.update(fine)
        feats["match_valid"] = fine["fine_valid"]
        return feats

    # ------------------------------------------------------------------ static graph (export)
    def match_static(self, image0: torch.Tensor, image1: torch.Tensor, max_matches: int):
        """Static-shape inference for ONNX/TensorRT.

        -> keypoints0, keypoints1 (B, K, 2) network-input pixels, confidence (B, K), valid (B, K) bool.
        """
        feats = self.extract(image0, image1)
        gh, gw = int(feats["grid"][0]), int(feats["grid"][1])
        m = select_coarse_matches(self.coarse_confidence(feats), (gh, gw), (gh, gw), self.cfg.coarse.threshold,
                                  self.cfg.coarse.border_rm, max_matches)
        b, k = m.i_ids.shape
        b_ids = torch.arange(b, device=image0.device).repeat_interleave(k)
        fine = self._fine(feats, b_ids, m.i_ids.reshape(-1), m.j_ids.reshape(-1))
        valid = m.valid & fine["fine_valid"].reshape(b, k)
        return (fine["keypoints0"].reshape(b, k, 2), fine["keypoints1"].reshape(b, k, 2),
                m.confidence, valid)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
