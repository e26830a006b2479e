"""``distillmatch`` command line: one sub-command per module ``cli/<name>_command.py``."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from distillmatch_core.cli.errors import CliError

# (sub-command, module) in help order; a module exposes add_parser(subparsers) and run(args) -> int.
COMMAND_MODULES = [
    "match_command",
    "demo_command",
    "eval_command",
    "train_command",
    "export_command",
    "translate_command",
    "bag_eval_command",
    "make_bag_command",
]


def build_parser() -> argparse.ArgumentParser:
    from distillmatch_core.version import __version__
    parser = argparse.ArgumentParser(prog="distillmatch", description="RGB-thermal matching with DistillMatch")
    parser.add_argument("--version", action="version", version=f"distillmatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"distillmatch_core.cli.{name}").add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"distillmatch {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"distillmatch {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
