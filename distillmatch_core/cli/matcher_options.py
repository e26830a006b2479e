"""Command-line options shared by every command that runs the matcher."""
from __future__ import annotations

import argparse
from typing import Optional

from distillmatch_core.matcher import BACKENDS

from distillmatch_core.cli.errors import CliError


def add_matcher_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default="default",
                        help="checkpoint (.pt), ONNX file or TensorRT source; 'default' = the shipped lite model")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="inference backend (default: onnxruntime for .onnx, tensorrt for .engine/.plan/.trt, "
                             "torch otherwise)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--size", type=int, default=None,
                        help="longer image side fed to the network (default: the model's inference size; 0 = as is)")
    add_max_matches_argument(parser)


def add_max_matches_argument(parser) -> None:
    parser.add_argument("--max-matches", type=int, default=None, metavar="N",
                        help="torch backend: keep at most N matches, the most confident (default: every match)")


def add_cpu_bf16_argument(parser) -> None:
    parser.add_argument("--bf16", action="store_true",
                        help="torch backend on a CPU with bfloat16 in hardware: texture ResNet, student ViT and the "
                             "coarse selection's normaliser pass in bfloat16 (cpu_bf16=True; node parameter cpu_bf16)")


def checked_max_matches(value: Optional[int]) -> Optional[int]:
    """``--max-matches`` as given (None: every match), refused with a CLI message below 1."""
    if value is not None and value < 1:
        raise CliError(f"--max-matches {value} is invalid (at least 1; leave it out for every match)")
    return value


def load_matcher_from_args(args: argparse.Namespace):
    from distillmatch_core.checkpoint import CheckpointError
    from distillmatch_core.matcher import Matcher

    if args.size is not None and (args.size < 0 or 0 < args.size < 64):
        raise CliError(f"--size {args.size} is invalid (0 = original resolution, otherwise at least 64)")
    try:
        return Matcher.from_pretrained(args.weights, device=args.device, backend=args.backend, size=args.size,
                                       max_matches=checked_max_matches(args.max_matches))
    except (FileNotFoundError, CheckpointError, ImportError, RuntimeError, ValueError) as exc:
        raise CliError(str(exc)) from None
