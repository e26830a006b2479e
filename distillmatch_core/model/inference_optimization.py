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
"""
from __future__ import annotations

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


def optimize_for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """A DistillMatch in eval mode -> the same model with its BatchNorms folded, the semantic head fused and, on a
    CPU, the texture ResNet's weights channels-last (a convolution with channels-last weights runs, and returns,
    channels-last whatever its input's layout). The layout change is CPU-only: it was measured there, not on a
    GPU. In place; the model must not be trained or saved afterwards (its state dict differs from the trained one)."""
    fold_batch_norms(model)
    fuse_semantic_head(model)
    if device.type == "cpu":
        model.backbone.to(memory_format=torch.channels_last)
    return model
