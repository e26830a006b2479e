"""Checkpoint -> static-shape ONNX graph of ``DistillMatch.match_static`` (student path only).

Graph interface (see ``onnx_metadata``):
  inputs  image0, image1      (1, 1, H, W) float32 in [0, 1], H and W multiples of 8
  outputs keypoints0, keypoints1 (1, K, 2) float32, network-input pixels (x, y)
          confidence          (1, K) float32, coarse matching confidence
          valid               (1, K) bool, slot holds a match (coarse + fine thresholds passed)
K = min(max_matches, (H/8)*(W/8)); the K slots are the top-K coarse candidates by score,
so every shape is fixed at export time and no op has a data-dependent output shape.

The VFM teacher is never part of ``DistillMatch`` (it lives in the trainer), so the
exported graph is the student network by construction.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn

from distillmatch_core.checkpoint import load_model
from distillmatch_core.config import to_dict
from distillmatch_core.export.attention_rewrite import replace_linear_attention
from distillmatch_core.export.export_defaults import DEFAULT_INPUT_SIZE, DEFAULT_MAX_MATCHES, DEFAULT_OPSET
from distillmatch_core.export.graph_audit import GraphFinding, audit_graph, op_type_counts
from distillmatch_core.export.onnx_metadata import INPUT_NAMES, OUTPUT_NAMES, ExportedModelInfo
from distillmatch_core.version import CHECKPOINT_FORMAT_VERSION, __version__


class OnnxExportError(RuntimeError):
    """The checkpoint could not be exported, or the exported graph failed a check."""


@dataclass(frozen=True)
class OnnxExportOptions:
    input_size: Tuple[int, int] = DEFAULT_INPUT_SIZE  # (H, W) of the static network input
    max_matches: int = DEFAULT_MAX_MATCHES
    opset: int = DEFAULT_OPSET
    # False: a graph without the fine stage, whose keypoints are the coarse cell anchors (fine.refine,
    # config.py); None keeps the checkpoint's setting.
    refine: Optional[bool] = None
    # Refuse to write a graph in which ``audit_graph`` finds a deployment trap.
    strict_audit: bool = True


@dataclass
class OnnxExportReport:
    path: Path
    info: ExportedModelInfo
    op_counts: Counter = field(default_factory=Counter)
    findings: List[GraphFinding] = field(default_factory=list)
    seconds: float = 0.0


class StaticMatchGraph(nn.Module):
    """The traced module: (image0, image1) -> (keypoints0, keypoints1, confidence, valid)."""

    def __init__(self, model: nn.Module, max_matches: int):
        super().__init__()
        self.model = model
        self.max_matches = int(max_matches)

    def forward(self, image0: torch.Tensor, image1: torch.Tensor):
        return self.model.match_static(image0, image1, self.max_matches)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def validate_options(options: OnnxExportOptions) -> None:
    h, w = options.input_size
    if h % 8 or w % 8 or h < 16 or w < 16:
        raise ValueError(f"input size {w}x{h} (WxH): both sides must be multiples of 8 and at least 16")
    if options.max_matches < 1:
        raise ValueError(f"max_matches must be at least 1, got {options.max_matches}")
    if options.opset < 17:
        # Below 17 LayerNorm is decomposed into Reduce/Pow/Sqrt, the fp16 trap export_defaults explains.
        raise ValueError(f"opset {options.opset} is too old; use 17 or newer")


def export_onnx(weights: Path, output: Path, options: OnnxExportOptions = OnnxExportOptions()) -> OnnxExportReport:
    """Export ``weights`` (a DistillMatch checkpoint) to ``output`` (.onnx); returns what was written."""
    import onnx

    validate_options(options)
    started = time.perf_counter()
    weights, output = Path(weights), Path(output)
    model, config, _ = load_model(weights, "cpu")
    if options.refine is not None:
        config.fine.refine = bool(options.refine)  # the model's own config object: in the graph and its metadata
    graph_model = copy.deepcopy(model)  # the rewrite below must never touch the caller's model
    replace_linear_attention(graph_model)
    h, w = options.input_size
    slots = min(options.max_matches, (h // 8) * (w // 8))  # select_coarse_matches caps K at L0 too
    wrapper = StaticMatchGraph(graph_model, slots).eval()
    generator = torch.Generator().manual_seed(0)
    dummy = (torch.rand(1, 1, h, w, generator=generator), torch.rand(1, 1, h, w, generator=generator))

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    try:
        _trace_to_onnx(wrapper, dummy, tmp, options.opset)
        proto = onnx.load(str(tmp))
        info = ExportedModelInfo(
            input_size=(h, w), max_matches=slots, model_config=to_dict(config), package_version=__version__,
            checkpoint_format_version=CHECKPOINT_FORMAT_VERSION, source_checkpoint_sha256=file_sha256(weights),
            opset=options.opset)
        del proto.metadata_props[:]
        for key, value in info.to_properties().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = (f"DistillMatch {__version__} static matcher: {w}x{h} input, {slots} match slots, "
                            f"from {weights.name}")
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise OnnxExportError(f"the exported graph fails the ONNX checker: {exc}") from None
        findings = audit_graph(proto)
        if findings and options.strict_audit:
            listed = "; ".join(str(f) for f in findings[:5])
            raise OnnxExportError(f"the exported graph has {len(findings)} deployment trap(s): {listed}")
        onnx.save(proto, str(tmp))
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return OnnxExportReport(path=output, info=info, op_counts=op_type_counts(proto), findings=findings,
                            seconds=time.perf_counter() - started)


def _trace_to_onnx(module: nn.Module, dummy: tuple, path: Path, opset: int) -> None:
    kwargs = dict(input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), opset_version=opset,
                  do_constant_folding=True)
    # The TorchScript tracer, not the torch.export-based exporter (the default from torch 2.9): tracing
    # records exactly the shapes of the dummy input, which is the static graph wanted here, and the
    # dynamo exporter needs the optional onnxscript package.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns on every Python int/bool taken from a tensor *shape*; with static shapes those
        # are the constants wanted. A branch on tensor *values* would be caught by audit_graph instead.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(module, dummy, str(path), **kwargs)


def read_exported_info(path: Path) -> ExportedModelInfo:
    """Metadata of an exported file (needs the ``onnx`` package)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return ExportedModelInfo.from_properties({p.key: p.value for p in proto.metadata_props}, source=str(path))
