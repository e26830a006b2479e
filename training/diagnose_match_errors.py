#!/usr/bin/env python3
"""Where a model's matching error comes from: coarse cells or fine refinement, modality or geometry.

    python training/diagnose_match_errors.py --weights default --size 320 --strengths 0,1 --limit 24 \
        --plot runs/coarse_offsets.png

For aligned pairs of a split (image 1 warped by the homography protocol's random homography at each
``--strength``; 0 keeps the pair aligned, so only the modality gap remains), it prints the share of
matches within 3 / 8 / 12 / 24 / 48 px of the true transfer at the protocol's 640 px, per data set, for
the model's refined keypoints ("fine") and for the centres of its coarse matches ("coarse": the 1/8-grid
anchors, every coarse match kept). If the two rows agree, the fine stage adds nothing. The coarse rows also
give the mean signed offset of image 1's keypoints from the truth: a model without a spatial bias has ~(0, 0).

"one-cell shift" moves each aligned pair's image 1 by exactly one coarse cell right and down and counts the
coarse matches on the right cell, next to the aligned pair: the content is the same, only its position in the
image changes, so a gap between the two is an absolute-position prior (the positional encodings).

"same image" matches each pair's visible image with itself (both sides "visible") and counts the coarse
matches that land on their own cell: a symmetric network gets 100 %, whatever its training. Less means the
two images' feature maps are shifted against each other (the non-shared CEFG Transfer blocks did that).

``--plot`` draws, per strength, where the coarse matches land relative to the true cell: the share of matches
at each offset of whole grid cells, (0, 0) in the centre. A bias shows as an off-centre mass.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

THRESHOLDS = (3, 8, 12, 24, 48)  # off the coarse grid's exact error steps (16, 22.6 px at 320)
PLOT_RADIUS = 3  # cells each side of the true cell in --plot; farther offsets are counted at the edge


class CoarseAnchorKeypoints(torch.nn.Module):
    """A DistillMatch model whose output keypoints are its coarse matches' cell anchors (the supervision's
    convention, fine_matching.cell_anchor), so the backend and the Matcher's mapping stay the real ones."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.cfg = model.cfg

    def forward(self, image0: torch.Tensor, image1: torch.Tensor, **options) -> Dict[str, torch.Tensor]:
        from distillmatch_core.model.fine_matching import cell_anchor
        out = self.model(image0, image1, **options)
        grid_w = int(out["grid"][1])
        out["keypoints0"] = cell_anchor(out["i_ids"], grid_w)
        out["keypoints1"] = cell_anchor(out["j_ids"], grid_w)
        out["match_valid"] = torch.ones_like(out["match_valid"])
        return out


def right_cell_share(coarse_matcher, image0: np.ndarray, image1: np.ndarray, shift_px: float,
                     cell_px: float) -> float:
    """Share of coarse matches on the right cell when image 1 is translated by ``shift_px`` right and
    down. A whole number of cells keeps the content on the same sub-cell grid as the aligned pair, so
    only the position in the image changes: what a translation-equivariant matcher does not notice."""
    import cv2
    h, w = image1.shape[:2]
    moved = cv2.warpAffine(image1, np.float32([[1, 0, shift_px], [0, 1, shift_px]]), (w, h))
    r = coarse_matcher.match(image0, moved)
    inside = np.all(r.keypoints0 + shift_px < [w, h], axis=1)  # points pushed out of image 1 have no match
    if not inside.any():
        return 0.0
    right = np.all(np.abs(r.keypoints1 - r.keypoints0 - shift_px) < cell_px / 2, axis=1)
    return float(np.mean(right[inside]))


def error_row(residuals: List[np.ndarray]) -> str:
    r = np.concatenate(residuals) if residuals else np.zeros(0)
    if r.size == 0:
        return "no matches"
    shares = "  ".join(f"<{t:>2} px {100 * np.mean(r < t):5.1f} %" for t in THRESHOLDS)
    return f"{r.size / len(residuals):6.0f}/pair  {shares}  median {np.median(r):6.1f} px"


def finite_offsets(offsets: List[np.ndarray]) -> np.ndarray:
    """Per-pair (N, 2) signed offsets (keypoint1 - true transfer) -> one (M, 2) array of the finite ones."""
    o = np.concatenate(offsets) if offsets else np.zeros((0, 2))
    return o[np.isfinite(o).all(axis=1)]


def mean_offset(offsets: List[np.ndarray]) -> str:
    o = finite_offsets(offsets)
    return "" if len(o) == 0 else f"  mean offset ({o[:, 0].mean():+5.1f}, {o[:, 1].mean():+5.1f}) px"


def cell_offset_shares(offsets: List[np.ndarray], cell_px: float) -> np.ndarray:
    """Signed pixel offsets -> (2R+1, 2R+1) percentage of matches per whole-cell offset (row = dy)."""
    o = finite_offsets(offsets)
    cells = np.clip(np.round(o / cell_px).astype(int), -PLOT_RADIUS, PLOT_RADIUS) + PLOT_RADIUS
    counts = np.zeros((2 * PLOT_RADIUS + 1,) * 2)
    np.add.at(counts, (cells[:, 1], cells[:, 0]), 1)
    return 100.0 * counts / max(1, len(o))


def plot_offset_shares(path: Path, title: str, shares: Dict[str, np.ndarray]) -> None:
    from matplotlib.figure import Figure  # a bare Figure: Agg, no pyplot state

    figure = Figure(figsize=(3.6 * len(shares), 3.8), dpi=120)
    axes = np.atleast_1d(figure.subplots(1, len(shares)))
    ticks = np.arange(-PLOT_RADIUS, PLOT_RADIUS + 1)
    for ax, (label, grid) in zip(axes, shares.items()):
        ax.imshow(grid, cmap="viridis", vmin=0.0, extent=(-PLOT_RADIUS - 0.5, PLOT_RADIUS + 0.5,
                                                         PLOT_RADIUS + 0.5, -PLOT_RADIUS - 0.5))
        for (row, col), value in np.ndenumerate(grid):
            if value >= 0.5:
                ax.text(col - PLOT_RADIUS, row - PLOT_RADIUS, f"{value:.0f}", ha="center", va="center",
                        fontsize=7, color="white" if value < grid.max() / 2 else "black")
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("x offset (cells)")
        ax.set_ylabel("y offset (cells, down)")
        ax.set_title(label, fontsize=9)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="default", help="checkpoint (.pt) or 'default'")
    parser.add_argument("--size", type=int, default=None, help="network longer side (default: the model's)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=24, help="pairs, spread evenly over the data sets")
    parser.add_argument("--strengths", default="0,1", help="comma-separated homography strengths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the coarse matches' cell offsets")
    args = parser.parse_args(argv)

    from distillmatch_core.backends.torch_backend import TorchBackend
    from distillmatch_core.checkpoint import CheckpointError
    from distillmatch_core.data.splits import load_split
    from distillmatch_core.evaluation.geometric_errors import apply_homography, transfer_residuals
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
    same_cell: List[float] = []
    right_cell: Dict[str, List[float]] = defaultdict(list)
    cell_px = 8.0 * 640 / fine.size  # one coarse cell at the protocol's 640 px
    shares: Dict[str, np.ndarray] = {}
    for strength in strengths:
        residuals: Dict[str, Dict[str, List[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        offsets: Dict[str, List[np.ndarray]] = defaultdict(list)
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
                if name == "coarse":
                    offset = r.keypoints1 - apply_homography(case.H_true, r.keypoints0)
                    offsets["all"].append(offset)
                    offsets[case.dataset].append(offset)
            if strength == strengths[0]:
                r = coarse.match(case.image0, case.image0, modality1="visible")
                if len(r.keypoints0):
                    same_cell.append(float(np.mean(np.all(r.keypoints0 == r.keypoints1, axis=1))))
                aligned = case if strength == 0 else prepare_warped_pair(pair, 640, args.seed, 0.0)
                for name, shift in (("aligned", 0.0), ("shifted", cell_px)):
                    right_cell[name].append(right_cell_share(coarse, aligned.image0, aligned.image1, shift, cell_px))
        print(f"\nhomography strength {strength:g}")
        for name in ("fine", "coarse"):
            for dataset, values in sorted(residuals[name].items(), key=lambda kv: kv[0] != "all"):
                extra = mean_offset(offsets[dataset]) if name == "coarse" else ""
                print(f"  {name:6s} {dataset:10s} {error_row(values)}{extra}")
        shares[f"homography strength {strength:g}"] = cell_offset_shares(offsets["all"], cell_px)
    if same_cell:
        print(f"\nsame image: {100 * np.mean(same_cell):.1f} % of coarse matches on their own cell "
              f"(mean over {len(same_cell)} images)")
    if right_cell:
        print(f"one-cell shift: {100 * np.mean(right_cell['shifted']):.1f} % of coarse matches on the right cell "
              f"when image 1 moves by one cell right and down; {100 * np.mean(right_cell['aligned']):.1f} % "
              f"aligned (mean over {len(right_cell['aligned'])} pairs; a model without an absolute-position "
              f"prior scores about the same)")
    if args.plot is not None:
        plot_offset_shares(args.plot, f"{args.weights}: coarse matches per cell offset from the truth, % "
                                      f"({len(pairs)} {args.split} pairs, 1 cell = {cell_px:g} px)", shares)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
