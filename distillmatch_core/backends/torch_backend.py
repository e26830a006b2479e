"""Eager PyTorch backend: CPU or CUDA, fp16 autocast on CUDA."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from distillmatch_core.checkpoint import load_model
from distillmatch_core.model.inference_optimization import (compile_for_inference, cpu_has_native_bfloat16,
                                                                 optimize_for_inference)


class TorchBackend:
    name = "torch"
    input_size: Optional[Tuple[int, int]] = None  # dynamic shapes

    def __init__(self, weights: Path, device: str = "cpu", fp16: Optional[bool] = None,
                 coarse_threshold: Optional[float] = None, fine_threshold: Optional[float] = None,
                 max_matches: Optional[int] = None, refine: Optional[bool] = None, torch_compile: bool = False,
                 cpu_bf16: bool = False):
        """``coarse_threshold`` / ``fine_threshold`` / ``refine`` override the checkpoint's theta_c / theta_f /
        ``fine.refine`` (False: keypoints are the coarse cell anchors, the fine stage is skipped).
        ``max_matches``: at most that many matches per pair, the most confident coarse ones (as an exported
        graph's K slots): a latency bound for large inputs. None keeps every match.
        ``torch_compile``: compile the network with torch.compile (``compile_for_inference``): faster per frame,
        but the first frame, and the first of each new size, waits 1-2 minutes for the compiler.
        ``cpu_bf16``: on a CPU, the texture ResNet, the student ViT and the selection's normaliser pass in bfloat16
        (``optimize_for_inference``): faster where the CPU has bf16 in hardware (AMX or AVX512-BF16), with the
        matches moved by bf16 rounding; off by default, so the torch backend stays the float32 reference the
        exported graphs are checked against. Ignored on CUDA, which autocasts the whole network to fp16 (``fp16``)."""
        if max_matches is not None and int(max_matches) < 1:
            raise ValueError(f"max_matches must be at least 1 (or None for every match), got {max_matches}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available to torch")
        self.device = torch.device(device)
        self.model, self.config, self.payload = load_model(weights, device)
        self.cpu_bf16 = self.device.type == "cpu" and bool(cpu_bf16)
        if self.cpu_bf16 and not cpu_has_native_bfloat16():
            warnings.warn("cpu_bf16: this CPU has no bfloat16 hardware (AMX, AVX512-BF16); emulated bf16 is slower "
                          "than float32", RuntimeWarning, stacklevel=2)
        # Same outputs, less CPU time (its module docstring); with cpu_bf16, outputs within bf16 rounding.
        optimize_for_inference(self.model, self.device, bfloat16_feature_extractors=self.cpu_bf16)
        if torch_compile:
            compile_for_inference(self.model)
        if coarse_threshold is not None:
            self.config.coarse.threshold = float(coarse_threshold)
        if fine_threshold is not None:
            self.config.fine.threshold = float(fine_threshold)
        if refine is not None:
            self.config.fine.refine = bool(refine)
        self.fp16 = self.device.type == "cuda" if fp16 is None else fp16
        self.max_matches = None if max_matches is None else int(max_matches)

    @classmethod
    def from_model(cls, model: torch.nn.Module, device: str = "cpu") -> "TorchBackend":
        """Wrap an in-memory model (training-time validation)."""
        obj = cls.__new__(cls)
        obj.device = torch.device(device)
        obj.model, obj.config, obj.payload = model, model.cfg, {}
        obj.fp16 = obj.cpu_bf16 = False
        obj.max_matches = None
        return obj

    @torch.inference_mode()
    def run(self, image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1, 1, H, W) float32 canvases -> keypoints0/1 (N, 2) network pixels, confidence (N,)."""
        t0 = torch.from_numpy(image0).to(self.device)
        t1 = torch.from_numpy(image1).to(self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.fp16):
            out = self.model(t0, t1, max_matches=self.max_matches)
        valid = out["match_valid"]
        return (out["keypoints0"][valid].float().cpu().numpy(), out["keypoints1"][valid].float().cpu().numpy(),
                out["coarse_confidence"][valid].float().cpu().numpy())
