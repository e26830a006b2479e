"""``distillmatch train CONFIG [--resume last.pt] [--set key=value ...]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from distillmatch_core.cli.errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="training YAML (training/configs/*.yaml)")
    parser.add_argument("--resume", type=Path, default=None, help="continue from a last.pt training checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set total_steps=2000 (repeatable)")
    parser.add_argument("--output-dir", default=None, help="shortcut for --set output_dir=...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or fine-tune a DistillMatch model",
                              description="Train DistillMatch from a YAML config (see training/configs).")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.checkpoint import CheckpointError
    from distillmatch_core.training.train_config import load_train_config

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    try:
        cfg = load_train_config(args.config, overrides)
        cfg.model_config()  # validate early
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    from distillmatch_core.model.vfm_teacher import TeacherUnavailableError
    from distillmatch_core.training.trainer import Trainer
    try:
        trainer = Trainer(cfg, resume=args.resume, quiet=args.quiet)
        result = trainer.fit()
    except (CheckpointError, TeacherUnavailableError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    print(f"finished at step {result['step']}; best {cfg.validation.metric} = {result['best_metric']:.2f}; "
          f"outputs in {cfg.output_dir}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Stand-alone entry (training/train_distillmatch.py, torchrun)."""
    parser = argparse.ArgumentParser(prog="train_distillmatch", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CliError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return exc.exit_code
