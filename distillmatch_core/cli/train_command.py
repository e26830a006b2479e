"""``distillmatch train CONFIG [--resume last.pt] [--set key=value ...]``.

``run_training`` is shared with the 3DG-STFM student trainer (distillation/distillation_command.py):
both load a YAML config, build a trainer, fit, and turn expected failures into one-line errors.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

from distillmatch_core.cli.errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="training YAML (training/configs/*.yaml)")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue from a last.pt training checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set total_steps=2000 (repeatable)")
    parser.add_argument("--output-dir", default=None, help="shortcut for --set output_dir=...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train or fine-tune a DistillMatch model",
                              description="Train DistillMatch from a YAML config (see training/configs).")
    add_arguments(p)
    p.set_defaults(func=run)


def run_training(args: argparse.Namespace, load_config: Callable[[Any, List[str]], Any],
                 make_trainer: Callable[[Any, Any, bool], Any]) -> int:
    from distillmatch_core.checkpoint import CheckpointError
    from distillmatch_core.model.vfm_teacher import TeacherUnavailableError

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    try:
        cfg = load_config(args.config, overrides)
        cfg.model_config()  # validate the model section before any work
    except (FileNotFoundError, ValueError, TypeError) as exc:
        raise CliError(str(exc)) from None
    expected = (CheckpointError, TeacherUnavailableError, FileNotFoundError)
    try:
        # Construction checks config, data and teachers: its ValueErrors are configuration errors.
        # During fit() a ValueError would be a bug and keeps its traceback.
        trainer = make_trainer(cfg, args.resume, args.quiet)
    except expected + (ValueError,) as exc:
        raise CliError(str(exc)) from None
    try:
        result = trainer.fit()
    except expected as exc:
        raise CliError(str(exc)) from None
    print(f"finished at step {result['step']}; best {cfg.validation.metric} = {result['best_metric']:.2f}; "
          f"outputs in {cfg.output_dir}")
    return 0


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.training.train_config import load_train_config
    from distillmatch_core.training.trainer import Trainer
    return run_training(args, load_train_config, lambda cfg, resume, quiet: Trainer(cfg, resume, quiet))


def standalone_main(prog: str, description: str, run_fn: Callable[[argparse.Namespace], int],
                    argv: Optional[List[str]] = None) -> int:
    """Entry of the scripts in training/ (also what torchrun launches)."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_fn(args)
    except CliError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main("train_distillmatch", __doc__, run, argv)
