"""Command line of matcher distillation: ``training/train_matcher_distillation.py CONFIG``.

Same flags as ``distillmatch train`` (``--resume``, ``--set key=value``, ``--output-dir``,
``--quiet``); the config is a ``MatcherDistillationTrainConfig`` YAML.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from distillmatch_core.cli.train_command import run_training, standalone_main


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.distillation.matcher_distillation_config import load_matcher_distillation_config
    from distillmatch_core.distillation.matcher_distillation_trainer import MatcherDistillationTrainer
    return run_training(args, load_matcher_distillation_config,
                        lambda cfg, resume, quiet: MatcherDistillationTrainer(cfg, resume=resume, quiet=quiet))


def main(argv: Optional[List[str]] = None) -> int:
    return standalone_main("train_matcher_distillation", __doc__, run, argv)
