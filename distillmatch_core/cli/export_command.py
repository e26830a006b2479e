"""``distillmatch export onnx [--weights W] [--size 640x480] [--max-matches K] OUT.onnx``.

Writes the static-shape inference graph of a checkpoint (student path, top-K match slots
with a validity mask, fine matching and sub-pixel refinement inside the graph), checked
by the ONNX checker and audited for deployment traps; see docs/deployment.md.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Tuple

from distillmatch_core.cli.errors import CliError

FORMATS = ("onnx",)


def parse_size(text: str) -> Tuple[int, int]:
    """'640x480' (WIDTHxHEIGHT, as cameras are named) -> (H, W)."""
    try:
        w_text, h_text = text.lower().replace(" ", "").split("x")
        return int(h_text), int(w_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from distillmatch_core.export.export_defaults import DEFAULT_INPUT_SIZE, DEFAULT_MAX_MATCHES, DEFAULT_OPSET

    parser = subparsers.add_parser(
        "export", help="export a checkpoint for deployment (ONNX)",
        description="Export a DistillMatch checkpoint to a static-shape graph for ONNX Runtime / TensorRT.")
    formats = parser.add_subparsers(dest="format", metavar="FORMAT")
    onnx_parser = formats.add_parser(
        "onnx", help="static-shape ONNX graph (ONNX Runtime, TensorRT)",
        description="Trace the checkpoint's inference path with a fixed input size and a fixed number of match "
                    "slots; outputs keypoints0, keypoints1, confidence, valid.")
    onnx_parser.add_argument("output", type=Path, metavar="OUT.onnx", help="file to write")
    onnx_parser.add_argument("--weights", default="default",
                             help="checkpoint to export (default: the packaged model, 'default')")
    h, w = DEFAULT_INPUT_SIZE
    onnx_parser.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                             help="static network input, multiples of 8 (default: 4:3 at the checkpoint's inference "
                                  f"size, {w}x{h} for a 640 model); images of other sizes are fitted into it by "
                                  "the Matcher")
    onnx_parser.add_argument("--max-matches", type=int, default=DEFAULT_MAX_MATCHES, metavar="K",
                             help=f"match slots in the graph (default: {DEFAULT_MAX_MATCHES}; TensorRT 8.x "
                                  "accepts at most 1024, 10.x 3840)")
    onnx_parser.add_argument("--coarse-only", action="store_true",
                             help="leave the fine stage out: keypoints are the coarse cells' anchors; faster, "
                                  "less accurate (the shipped model: AUC@10px 32.5 instead of 36.3 on the dev split)")
    onnx_parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                             help=f"ONNX opset (default: {DEFAULT_OPSET}, what TensorRT's parser reads)")
    parser.set_defaults(func=run)


def default_input_size(weights) -> Tuple[int, int]:
    """(H, W): 4:3 with the checkpoint's inference size as the longer side (what the model was tuned for)."""
    from distillmatch_core.checkpoint import CheckpointError, read_checkpoint
    from distillmatch_core.config import model_config_from_dict
    try:
        longer = model_config_from_dict(read_checkpoint(weights)["model_config"]).inference_size
    except (CheckpointError, KeyError, ValueError, TypeError):
        from distillmatch_core.export.export_defaults import DEFAULT_INPUT_SIZE
        return DEFAULT_INPUT_SIZE  # export_onnx reports the unreadable checkpoint itself
    return (longer * 3 // 4 // 8 * 8, longer // 8 * 8)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "format", None) != "onnx":
        raise CliError("choose a format: distillmatch export onnx [--weights W] [--size 640x480] "
                       "[--max-matches K] OUT.onnx")
    try:
        importlib.import_module("onnx")  # fail here with an install hint, not mid-export
        from distillmatch_core.export.onnx_export import OnnxExportError, OnnxExportOptions, export_onnx
        from distillmatch_core.matcher import resolve_weights
    except ImportError as exc:
        raise CliError(f"export needs torch and the 'onnx' package (pip install onnx): {exc}") from None
    if args.output.suffix.lower() != ".onnx":
        raise CliError(f"output {args.output} should end in .onnx")
    try:
        weights = resolve_weights(args.weights)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    if weights.suffix.lower() == ".onnx":
        raise CliError(f"{weights} is already an ONNX file; --weights takes a checkpoint (.pt)")
    size = tuple(args.size) if args.size else default_input_size(weights)
    options = OnnxExportOptions(input_size=size, max_matches=args.max_matches, opset=args.opset,
                                refine=False if args.coarse_only else None)
    try:
        report = export_onnx(weights, args.output, options)
    except (OnnxExportError, ValueError, OSError) as exc:  # CheckpointError is a ValueError
        # One line: torch's load errors span several (the first one names the problem).
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CliError(f"cannot export {weights}: {first_line}") from None
    info = report.info
    h, w = info.input_size
    print(f"wrote {report.path} ({report.path.stat().st_size / 1e6:.1f} MB) in {report.seconds:.1f} s: "
          f"input {w}x{h}, {info.max_matches} match slots"
          f"{'' if info.model_config['fine'].get('refine', True) else ' (coarse only)'}, opset {info.opset}, "
          f"{sum(report.op_counts.values())} nodes, no deployment traps found")
    print(f"source {weights} (sha256 {info.source_checkpoint_sha256[:12]}...)")
    print(f"run it: Matcher.from_pretrained({str(report.path)!r}, backend='onnxruntime')")
    return 0
