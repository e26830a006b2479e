#!/usr/bin/env python3
"""Where a model's matching error comes from: coarse cells or fine refinement, modality or geometry.

    python training/diagnose_match_errors.py --weights default --size 320 --strengths 0,1 --limit 24

For aligned pairs of a split (image 1 warped by the homography protocol's random homography at each
``--strength``; 0 keeps the pair aligned, so only the modality gap remains), it prints the share of
matches within 3 / 8 / 12 / 24 / 48 px of the true transfer at the protocol's 640 px, per data set, for
the model's refined keypoints ("fine") and for the centres of its coarse matches ("coarse": the 1/8-grid
anchors, every coarse match kept). If the two rows agree, the fine stage adds nothing.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Dict, List

import numpy as np
import torch

THRESHOLDS = (3, 8, 12, 24, 48)  # off the coarse grid's exact error steps (16, 22.6 px at 320)


class CoarseAnchorKeypoints(torch.nn.Module):
    """A DistillMatch model whose output keypoints are its coarse matches' cell anchors (the supervision's
    convention, fine_matching.cell_anchor), so the backend and the Matcher's mapping stay the real ones."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.cfg = model.cfg

    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> Dict[str, torch.Tensor]:
        from distillmatch_core.model.fine_matching import cell_anchor
        out = self.model(image0, image1)
        grid_w = int(out["grid"][1])
        out["keypoints0"] = cell_anchor(out["i_ids"], grid_w)
        out["keypoints1"] = cell_anchor(out["j_ids"], grid_w)
        out["match_valid"] = torch.ones_like(out["match_valid"])
        return out


def error_row(residuals: List[np.ndarray]) -> str:
    r = np.concatenate(residuals) if residuals else np.zeros(0)
    if r.size == 0:
        return "no matches"
    shares = "  ".join(f"<{t:>2} px {100 * np.mean(r < t):5.1f} %" for t in THRESHOLDS)
    return f"{r.size / len(residuals):6.0f}/pair  {shares}  median {np.median(r):6.1f} px"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default", help="checkpoint (.pt) or 'default'")
    parser.add_argument("--size", type=int, default=None, help="network longer side (default: the model's)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=24, help="pairs, spread evenly over the data sets")
    parser.add_argument("--strengths", default="0,1", help="comma-separated homography strengths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from distillmatch_core.backends.torch_backend import TorchBackend
    from distillmatch_core.checkpoint import CheckpointError
    from distillmatch_core.data.splits import load_split
    from distillmatch_core.evaluation.geometric_errors import transfer_residuals
    from distillmatch_core.evaluation.pair_selection import select_evenly
    from distillmatch_core.evaluation.warped_pairs import prepare_warped_pair
    from distillmatch_core.image_io import ImageReadError
    from distillmatch_core.matcher import Matcher

    torch.set_num_threads(args.threads)
    try:
        strengths = [float(s) for s in args.strengths.split(",")]
        fine = Matcher.from_pretrained(args.weights, backend="torch", size=args.size)
        pairs = select_evenly(load_split(args.split), args.limit)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"diagnose_match_errors: error: {exc}", file=sys.stderr)
        return 2
    coarse = Matcher(TorchBackend.from_model(CoarseAnchorKeypoints(fine.backend.model)), fine.size)
    print(f"{args.weights}: network size {fine.size}, {len(pairs)} {args.split} pairs, errors at 640 px")
    for strength in strengths:
        residuals: Dict[str, Dict[str, List[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        for pair in pairs:
            try:
                case = prepare_warped_pair(pair, 640, args.seed, strength)
            except ImageReadError as exc:
                print(f"skipping {pair.key}: {exc}", file=sys.stderr)
                continue
            for name, matcher in (("fine", fine), ("coarse", coarse)):
                r = matcher.match(case.image0, case.image1)
                res = transfer_residuals(case.H_true, r.keypoints0, r.keypoints1)
                residuals[name]["all"].append(res)
                residuals[name][case.dataset].append(res)
        print(f"\nhomography strength {strength:g}")
        for name in ("fine", "coarse"):
            for dataset, values in sorted(residuals[name].items(), key=lambda kv: kv[0] != "all"):
                print(f"  {name:6s} {dataset:10s} {error_row(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
