"""Inference-only rewrites of a trained DistillMatch: same outputs (to float rounding), less CPU time.

* BatchNorm is folded into the convolution in front of it (torch's ``fuse_conv_bn_eval``): in eval mode
  a BatchNorm is a per-channel affine map, so the pair is one convolution and a whole pass over each
  map disappears. The texture ResNet has a BatchNorm after every convolution, on maps up to 1/2
  resolution.
* On a CPU the texture ResNet runs in channels-last memory format. Its maps are thin (16-64 channels) and large;
  oneDNN's channels-last kernels for them are several times faster than the default layout's on a CPU
  (measured at 640x480 on the 2-core development CPU: a 16-channel 3x3 convolution on the 1/2 map, 18 ms
  in NCHW, 4 ms channels-last; the ResNet, about 100 ms -> 55 ms together with the folding). The rest of
  the network works on token sequences, where the layout does not apply.
* The student's output head and STFA's compression of its features are two linear maps with only a bilinear
  resampling between them, which is linear too and commutes with them (its weights sum to one, so biases pass
  through): they become one map (64 -> 64 in the lite model) on the student's grid (1/16 there), and STFA
  resamples 64 channels instead of the student resampling 384 (``fuse_semantic_head``). The fused model's ``student_features`` are therefore
  STFA's compressed semantic features on the student's grid, not F_stu.

Training, checkpoints and export use the model as trained: the inference backend applies this to its
own copy after loading (ONNX Runtime and TensorRT fold BatchNorm and choose layouts themselves).

Optional, because it moves the matches by bf16 rounding (``cpu_bf16``): on a CPU with bfloat16 in hardware, the
texture ResNet and student ViT under bf16 autocast (``BFloat16Autocast``) and the eager selection's normaliser pass
with bf16 products, the rest in float32. Measured at 640x480 (before the selection pass joined, which added 0.91x):
0.86-0.96x the eager time, about 0.9x the compiled time in most runs (one of five: 1.12x); 96 % of the coarse
matches unchanged; dev AUC equal within noise over three seeds (docs/benchmarks.md).

Optional, because compiling costs start-up time (``compile_for_inference``): the trunk (``DistillMatch.extract``:
ResNet, student, CEFG, STFA, coarse attention and descriptors) and the fine stage's window attention and head,
compiled by ``torch.compile`` (Inductor) with weight freezing. On a CPU Inductor generates fused C++ loops for the
many small element-wise and normalisation ops between the matrix products, and freezing lets oneDNN pre-pack the
convolution and linear weights. Measured on the 2-core development CPU at 640x480: the trunk about 0.72-0.77x its
eager time (about 270 -> 200 ms), with outputs equal to 5e-6; the fine stage's attention and head about 0.86x, its
window gathering compiled as well another ~0.88x of the stage. The first call, and each new input size, compiles for
1-2 minutes.
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, Dict

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(module: nn.Module) -> int:
    """Folds every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into that convolution
    (the BatchNorm becomes an Identity, so module indices and names stay). In place; eval mode only.
    -> the number of BatchNorms folded."""
    if module.training:
        raise ValueError("fold_batch_norms needs a model in eval mode: folding freezes the BatchNorm statistics")
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
                folded += 1
    return folded


def fuse_semantic_head(model: nn.Module) -> bool:
    """student.head (Linear D -> 384) then STFA's compress (1x1 conv 384 -> C) -> one Linear D -> C as the student's
    head, compress an Identity, and the student's resampling left to STFA. In place; eval mode only.
    -> whether it applied (not without STFA)."""
    if model.training:
        raise ValueError("fuse_semantic_head needs a model in eval mode")
    if model.stfa is None:
        return False
    head, compress = model.student.head, model.stfa.caa.compress
    w_c = compress.weight[:, :, 0, 0]  # (C, 384)
    fused = nn.Linear(head.in_features, w_c.shape[0]).to(head.weight.device)
    with torch.no_grad():
        fused.weight.copy_(w_c @ head.weight)
        fused.bias.copy_(w_c @ head.bias + compress.bias)
    model.student.head, model.student.out_dim = fused, w_c.shape[0]
    model.student.resample_to_coarse_grid = False
    model.stfa.caa.compress = nn.Identity()
    return True


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic in hardware (AMX tiles or AVX512-BF16), where oneDNN's bf16
    convolutions and matrix products beat float32; elsewhere bf16 is emulated and slower than float32."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)  # private helpers: absent ones count as no


class BFloat16Autocast(nn.Module):
    """Wraps a module to run under CPU bfloat16 autocast and return its floating outputs (a tensor or a tuple of
    them) in float32, so the modules after it compute as before. (A wrapper module rather than a patched
    ``forward``: it survives ``copy.deepcopy`` and shows in the module tree.)"""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    @staticmethod
    def _float32(value):
        return value.float() if torch.is_tensor(value) and value.is_floating_point() else value

    def forward(self, *args, **kwargs):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            out = self.module(*args, **kwargs)
        return tuple(self._float32(v) for v in out) if isinstance(out, tuple) else self._float32(out)


def optimize_for_inference(model: nn.Module, device: torch.device, bfloat16_feature_extractors: bool = False
                           ) -> nn.Module:
    """A DistillMatch in eval mode -> the same model with its BatchNorms folded, the semantic head fused and, on a
    CPU, the texture ResNet's weights channels-last (a convolution with channels-last weights runs, and returns,
    channels-last whatever its input's layout). The layout change is CPU-only: it was measured there, not on a
    GPU. In place; the model must not be trained or saved afterwards (its state dict differs from the trained one).

    ``bfloat16_feature_extractors`` (CPU only; see ``cpu_has_native_bfloat16``): the texture ResNet and the student
    ViT run in bfloat16, everything after them in float32. Those two are the network's convolutions and its widest
    matrix products; the modules after them move the matches when run in bf16 (CEFG, STFA and the coarse attention
    gave 1912 coarse matches instead of 1681 at 640x480), so they stay float32. The eager selection's first pass,
    which only sums exp(S) for the normalisers, runs its products in bf16 too (``mutual_maxima_blockwise``)."""
    fold_batch_norms(model)
    fuse_semantic_head(model)
    if device.type == "cpu":
        model.backbone.to(memory_format=torch.channels_last)
        if bfloat16_feature_extractors:
            model.backbone = BFloat16Autocast(model.backbone)
            model.student = BFloat16Autocast(model.student)
            model.bf16_selection_sums = True
    return model


class _CompiledWithFallback:
    """Callables compiled by torch.compile (Inductor, weight freezing) that fall back to their eager form, for
    good and with one warning, when the compiler is unusable here (Inductor needs a C++ compiler on a CPU,
    Triton on a GPU): same results, eager speed."""

    def __init__(self):
        self.failed = False

    def wrap(self, eager: Callable, dynamic: bool) -> Callable:
        from torch._dynamo.exc import TorchDynamoException
        from torch._inductor import config as inductor_config

        compiled = torch.compile(eager, dynamic=dynamic)

        @functools.wraps(eager)
        def call(*args, **kwargs):
            if not self.failed:
                try:
                    # Freezing applies when a graph is compiled, which happens inside a call (the first, a new size).
                    with inductor_config.patch(freezing=True):
                        return compiled(*args, **kwargs)
                except TorchDynamoException as exc:
                    self.failed = True
                    message = str(exc).splitlines()[0] if str(exc) else ""
                    warnings.warn(f"torch.compile failed, the model runs eager (same results, slower): "
                                  f"{type(exc).__name__}: {message}", RuntimeWarning, stacklevel=2)
            return eager(*args, **kwargs)

        return call


def compile_for_inference(model: nn.Module) -> None:
    """Compiles, on this instance and in place (eval mode only), the parts of the network that torch.compile
    speeds up: the trunk (``model.extract``: images -> features and coarse descriptors) with static shapes, and
    the fine stage's window gathering (``model.fine._tokens``) and per-window attention and head
    (``model.fine._match_windows``) with a dynamic number of matches. The coarse selection stays eager (compiled, its
    blocks ran slower).

    Each new input size compiles the trunk once more: use this for a fixed-size stream (a camera, the node, a
    bag), not for a set of images of many sizes."""
    if model.training:
        raise ValueError("compile_for_inference needs a model in eval mode: freezing bakes the weights into the graph")
    compiler = _CompiledWithFallback()
    model.extract = compiler.wrap(model.extract, dynamic=False)
    model.fine._tokens = compiler.wrap(model.fine._tokens, dynamic=True)
    model.fine._match_windows = compiler.wrap(model.fine._match_windows, dynamic=True)
