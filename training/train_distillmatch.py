#!/usr/bin/env python3
"""Train DistillMatch: ``python training/train_distillmatch.py training/configs/lite_rgbt.yaml``.

Many processes: ``torchrun --nproc_per_node N training/train_distillmatch.py CONFIG`` (gloo on CPU,
NCCL on GPU). Resume: ``--resume OUT/last.pt``. Override any key: ``--set optim.lr=1e-3``.
Same as ``distillmatch train CONFIG``.
"""
import sys

from distillmatch_core.cli.train_command import main

if __name__ == "__main__":
    sys.exit(main())
