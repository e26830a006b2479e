#!/usr/bin/env python3
"""Slim trained alone vs slim distilled (3DG-STFM Table 5, our data): dev-split accuracy and CPU latency.

    python benchmarks/compare_slim_distillation.py \\
        --alone runs/slim_alone/last.pt --distilled runs/slim_distilled/last.pt \\
        --teacher distillmatch_core/assets/distillmatch_lite.pt --output /tmp/slim_distillation.md

Accuracy: ``evaluate_homography`` (the homography protocol of docs/benchmarks.md: dev split,
longer side 640, random homography seeded by --seed and the pair) on the SAME prepared cases for
every model. Latency: ``Matcher.match`` on CPU at the same size, after warm-up, models interleaved
call by call so background load hits them alike; the median over all timed calls is reported,
for the network alone and end to end (preprocessing included). The load average is printed with
the table because a busy machine inflates every number.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from distillmatch_core.checkpoint import CheckpointError, git_commit
from distillmatch_core.data.splits import load_split
from distillmatch_core.evaluation import evaluate_homography
from distillmatch_core.evaluation.pair_selection import select_evenly
from distillmatch_core.evaluation.warped_pairs import WarpedPair, prepare_warped_pairs
from distillmatch_core.matcher import Matcher
from distillmatch_core.model.distillmatch import count_parameters


@dataclass
class Candidate:
    label: str
    path: Path
    matcher: Optional[Matcher] = None
    accuracy: Optional[Dict[str, float]] = None
    network_ms: Optional[List[float]] = None
    total_ms: Optional[List[float]] = None

    @property
    def config(self):
        return self.matcher.backend.config

    @property
    def parameters_m(self) -> float:
        return count_parameters(self.matcher.backend.model) / 1e6

    @property
    def coarse_attention_layers(self) -> int:
        # 3DG-STFM's L_c counts one self + one cross attention as one layer.
        return len(self.config.coarse.layer_names) // 2


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alone", type=Path, required=True, help="slim checkpoint trained alone (slim_alone.yaml)")
    p.add_argument("--distilled", type=Path, required=True, help="slim checkpoint distilled (slim_distilled.yaml)")
    p.add_argument("--teacher", type=Path, default=None, help="optional: the teacher, as a reference row")
    p.add_argument("--split", default="dev", choices=["dev", "train", "all"])
    p.add_argument("--data", type=Path, default=None, help="manifest / folder instead of ../shared/data")
    p.add_argument("--size", type=int, default=640, help="longer image side of the protocol's images")
    p.add_argument("--matcher-size", type=int, default=None,
                   help="longer side each matcher runs at (default: each model's inference size)")
    p.add_argument("--seed", type=int, default=0, help="homography seed of the protocol")
    p.add_argument("--limit", type=int, default=None, help="evaluate this many pairs spread over the split")
    p.add_argument("--latency-pairs", type=int, default=4, help="pairs timed for latency")
    p.add_argument("--latency-repeats", type=int, default=5, help="timed calls per pair and model")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per model first")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (the deployment's core count)")
    p.add_argument("--output", type=Path, default=None, help="also write the Markdown report here")
    return p.parse_args(argv)


def evaluate_accuracy(candidate: Candidate, cases: List[WarpedPair], size: int, seed: int) -> None:
    def match_fn(image0, image1):
        result = candidate.matcher.match(image0, image1, "visible", "infrared")
        return result.keypoints0, result.keypoints1

    print(f"[{candidate.label}] homography protocol on {len(cases)} pairs", flush=True)
    # Prepared cases carry their own size / seed; the arguments only document the protocol.
    candidate.accuracy = evaluate_homography(match_fn, cases, size=size, seed=seed, progress=True)


def measure_latency(candidates: List[Candidate], cases: List[WarpedPair], repeats: int, warmup: int) -> None:
    for c in candidates:
        c.network_ms, c.total_ms = [], []
        for _ in range(warmup):
            c.matcher.match(cases[0].image0, cases[0].image1, "visible", "infrared")
    print(f"latency: {len(cases)} pairs x {repeats} calls per model, interleaved", flush=True)
    for case in cases:
        for _ in range(repeats):
            for c in candidates:
                timings = c.matcher.match(case.image0, case.image1, "visible", "infrared").timings
                c.network_ms.append(1000.0 * timings["network"])
                c.total_ms.append(1000.0 * timings["total"])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def markdown_report(candidates: List[Candidate], args: argparse.Namespace, n_pairs: int, n_latency: int,
                    load_before: float, load_after: float) -> str:
    rows = ["| model | checkpoint | params (M) | coarse layers L_c | AUC@3px | AUC@5px | AUC@10px | AUC@20px "
            "| failures | median err px | precision % | CPU network ms | CPU total ms |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for c in candidates:
        a = c.accuracy
        rows.append(f"| {c.label} | `{c.path}` | {c.parameters_m:.2f} | {c.coarse_attention_layers} "
                    f"| {a['auc@3px']:.2f} | {a['auc@5px']:.2f} | {a['auc@10px']:.2f} | {a['auc@20px']:.2f} "
                    f"| {int(a['failures'])} | {a['median_corner_error_px']:.1f} | {a['precision_percent']:.1f} "
                    f"| {statistics.median(c.network_ms):.0f} | {statistics.median(c.total_ms):.0f} |")
    by_label = {c.label: c for c in candidates}
    alone, distilled = by_label["slim alone"], by_label["slim distilled"]
    delta = ", ".join(f"{k} {distilled.accuracy[k] - alone.accuracy[k]:+.2f}"
                      for k in ("auc@3px", "auc@5px", "auc@10px", "auc@20px"))
    command = " ".join(["python benchmarks/compare_slim_distillation.py"] + sys.argv[1:])
    return "\n".join([
        "### Slim trained alone vs slim distilled (3DG-STFM)",
        "",
        f"Homography protocol on the `{args.split}` split ({n_pairs} pairs, longer side {args.size} px, "
        f"seed {args.seed}); latency = median of {n_latency} `Matcher.match` calls per model at the same size, "
        f"torch backend, {args.threads} CPU threads, models interleaved.",
        "",
        *rows,
        "",
        f"Distilled minus alone (AUC points): {delta}.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, Python "
        f"{platform.python_version()}; load average {load_before:.1f} before / {load_after:.1f} after "
        "(background load inflates the ms columns). Commit "
        f"`{git_commit()[:12]}`. Command: `{command}`",
        "",
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    candidates = [Candidate("slim alone", args.alone), Candidate("slim distilled", args.distilled)]
    if args.teacher is not None:
        candidates.append(Candidate("teacher", args.teacher))
    try:
        for c in candidates:
            c.matcher = Matcher.from_pretrained(c.path, device="cpu", backend="torch", size=args.matcher_size)
        pairs = select_evenly(load_split(args.split, args.data), args.limit)
    except (FileNotFoundError, CheckpointError, ValueError) as exc:
        print(f"compare_slim_distillation: error: {exc}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    print(f"preparing {len(pairs)} {args.split} pairs at {args.size} px", flush=True)
    cases = prepare_warped_pairs(pairs, args.size, args.seed)
    for c in candidates:
        evaluate_accuracy(c, cases, args.size, args.seed)
    latency_cases = select_evenly(cases, args.latency_pairs)
    measure_latency(candidates, latency_cases, args.latency_repeats, args.warmup)
    report = markdown_report(candidates, args, len(cases), len(latency_cases) * args.latency_repeats,
                             load_before, os.getloadavg()[0])
    print("\n" + report)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
