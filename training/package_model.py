#!/usr/bin/env python3
"""Package a trained checkpoint as a shippable model, with thresholds calibrated on the TRAIN split.

    python training/package_model.py runs/lite_rgbt/last.pt distillmatch_core/assets/distillmatch_lite.pt

The coarse threshold theta_c (and the inference size) are chosen by the homography protocol's
AUC@10px on pairs of the training split (never the dev split, which reports the result; differences
smaller than one pair's worth are ties, see selection_key), then
written into the model config; the optimiser state is dropped and the lineage records the source
checkpoint, its step and the calibration table (also written as OUT.calibration.json).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import torch

from distillmatch_core.backends.torch_backend import TorchBackend
from distillmatch_core.checkpoint import load_model, save_checkpoint
from distillmatch_core.data.splits import load_split
from distillmatch_core.evaluation.homography_protocol import evaluate_homography
from distillmatch_core.evaluation.warped_pairs import prepare_warped_pairs
from distillmatch_core.matcher import Matcher


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def selection_key(row: dict, n_pairs: int) -> tuple:
    """Rank a calibration row: AUC@10px, then AUC@20px, then AUC@5px, then the median corner error.

    AUCs count in whole pairs: one pair moves an AUC by at most 100 / n_pairs points, so smaller
    differences are ties (near-zero AUC@10px on a few pairs otherwise picks a setting by one lucky pair).
    """
    def pairs(auc: float) -> int:
        return math.floor(auc * n_pairs / 100.0 + 1e-9)

    return (pairs(row["auc@10px"]), pairs(row["auc@20px"]), pairs(row["auc@5px"]), -row["median_corner_error_px"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--limit", type=int, default=16, help="training pairs used for calibration")
    parser.add_argument("--sizes", default="640", help="comma-separated inference sizes to compare")
    parser.add_argument("--coarse-thresholds", default="0.01,0.02,0.05,0.1,0.2")
    parser.add_argument("--fine-thresholds", default="", help="comma-separated theta_f values (default: keep)")
    parser.add_argument("--seed", type=int, default=1, help="homography seed of the calibration cases")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    model, cfg, payload = load_model(args.checkpoint)
    fine_thresholds = [float(t) for t in args.fine_thresholds.split(",") if t] or [cfg.fine.threshold]
    pairs = load_split("train")
    stride = len(pairs) / min(args.limit, len(pairs))
    cases = prepare_warped_pairs([pairs[int(i * stride)] for i in range(min(args.limit, len(pairs)))],
                                 size=640, seed=args.seed)
    table = []
    grid = [(int(size), float(tc), tf) for size in args.sizes.split(",")
            for tc in args.coarse_thresholds.split(",") for tf in fine_thresholds]
    for size, thr_c, thr_f in grid:
        cfg.coarse.threshold, cfg.fine.threshold = thr_c, thr_f
        matcher = Matcher(TorchBackend.from_model(model), size=size)

        def match_fn(a, b):
            r = matcher.match(a, b)
            return r.keypoints0, r.keypoints1

        metrics = evaluate_homography(match_fn, cases, progress=False)
        row = {"size": size, "coarse_threshold": thr_c, "fine_threshold": thr_f,
               **{k: float(v) for k, v in metrics.items()}}
        table.append(row)
        print(f"size {size:4d} theta_c {thr_c:.3f} theta_f {thr_f:.3f}: AUC@5/10/20 {row['auc@5px']:.1f} / "
              f"{row['auc@10px']:.1f} / {row['auc@20px']:.1f}, median corner error "
              f"{row['median_corner_error_px']:.1f} px, median matches {row['median_matches']:.0f}", flush=True)
    best = max(table, key=lambda r: selection_key(r, len(cases)))
    cfg.coarse.threshold, cfg.fine.threshold = best["coarse_threshold"], best["fine_threshold"]
    cfg.inference_size = best["size"]
    lineage = dict(payload.get("lineage", {}))
    lineage.update({"source_checkpoint": str(args.checkpoint), "source_sha256": sha256(args.checkpoint),
                    "calibration": {"split": "train", "pairs": len(cases), "seed": args.seed,
                                    "chosen": best, "metric": "auc@10px"},
                    })
    save_checkpoint(args.output, model, cfg, lineage)
    args.output.with_suffix(".calibration.json").write_text(json.dumps(table, indent=1))
    print(f"chosen: size {best['size']}, theta_c {best['coarse_threshold']}, theta_f {best['fine_threshold']} "
          f"(train AUC@10px {best['auc@10px']:.1f}); "
          f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
