#!/usr/bin/env python3
"""3DG-STFM matcher-to-matcher distillation: a frozen teacher matcher trains a (smaller) student.

``python training/train_matcher_distillation.py training/configs/slim_distilled.yaml``; the
baseline, the same student trained alone: ``... training/configs/slim_alone.yaml``.
Resume: ``--resume OUT/last.pt``. Override any key: ``--set total_steps=2``. See docs/distillation.md.
"""
import sys

from distillmatch_core.distillation.distillation_command import main

if __name__ == "__main__":
    sys.exit(main())
