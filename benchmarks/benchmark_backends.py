"""Latency and peak memory of DistillMatch through torch and ONNX Runtime, with SIFT as the reference.

    python benchmarks/benchmark_backends.py [--weights default] [--sizes 640x480,320x256] [--repeats 10]
    python benchmarks/benchmark_backends.py --weights default,preset:paper --backends torch --sizes 640x480

``--weights`` takes a comma-separated list; ``preset:NAME`` is a randomly initialised model of that
preset (latency and memory do not depend on the weights), so the paper's configuration can be
timed next to the shipped ``lite`` model without training it.

Every configuration (backend x input size, and SIFT per size) runs in a fresh Python
subprocess, so peak RSS is that configuration's alone (an ONNX Runtime process never
imports torch) and no allocator or thread-pool state carries over. Each one matches the
same real RGB-thermal pair of the dev split: ``--warmup`` untimed runs, then ``--repeats``
timed ``Matcher.match`` calls (preprocessing + network + mapping back), median reported.
Both DistillMatch backends get the identical static canvas (WxH), so they do the same work;
SIFT runs on the pair resized to WxH. "x SIFT" is median latency / SIFT's median at that size.
``--sift-size 640x480`` instead times SIFT once, on the pair at that (camera) size, and every row's
ratio is to it: what matching 640x480 frames costs when the network runs at a smaller canvas (the
model's calibrated canvas, 544x408 for the shipped lite; the Matcher resizes the frames and maps keypoints back).
``--torch-compile`` adds torch with its network compiled by torch.compile (its first call compiles: see the
"first call s" column). torch runs the eager path (every match, or the --torch-max-matches most confident, as the graph's
slots); the ONNX graph keeps at most --max-matches, so the "matches" column can differ when a model
finds more.

The static ONNX graphs are exported first, in this process, into ``--work-dir``.
Run it on an otherwise idle machine: a training job on the same cores inflates every number.

``--rounds N`` runs the whole sequence (SIFT, then every configuration) N times and reports, per
configuration, the median over rounds of its median latency and of its ratio to the SIFT time of the
same round, with the ratio's range. On a shared VM the speed of the whole machine drifts by 10-40 %
between minutes, and a ratio to a SIFT time measured minutes earlier inherits that drift.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@dataclass
class MeasureSpec:
    method: str  # "torch" | "onnxruntime" | "sift"
    weights: str  # checkpoint (torch) or .onnx (onnxruntime); unused for sift
    size: Tuple[int, int]  # (H, W)
    image0: str
    image1: str
    threads: int
    warmup: int
    repeats: int
    max_matches: int = 0  # torch only: keep the most confident N matches; 0 = every match
    coarse_only: bool = False  # torch only (graphs are exported so): skip the fine stage (refine=False)
    torch_compile: bool = False  # torch only: the network compiled by torch.compile (TorchBackend's torch_compile)
    cpu_bf16: bool = False  # torch only: TorchBackend's cpu_bf16 (bfloat16 where it pays)


@dataclass
class Measurement:
    method: str
    weights_name: str
    size: Tuple[int, int]
    median_ms: float
    p90_ms: float
    network_ms: Optional[float]  # DistillMatch only: median of the network stage
    load_s: float
    peak_rss_mb: float
    matches: int
    first_call_s: float = 0.0  # the first (warm-up) match: includes torch.compile's compilation


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux: VmHWM, which belongs to the address space and so starts
    afresh at exec; ru_maxrss would still carry the parent's peak from before the fork."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2 ** 20  # Linux: KiB, macOS: bytes


# ---------------------------------------------------------------------------------------------- child


def sift_on_frames(image0, image1, size: Tuple[int, int]):
    """The reference: -> a callable matching the two images, resized to ``size`` (H, W), with OpenCV SIFT + ratio
    test and returning the number of matches."""
    import cv2

    from distillmatch_core.evaluation.classical_matchers import SiftRatioMatcher

    h, w = size
    frame0 = cv2.resize(image0, (w, h), interpolation=cv2.INTER_AREA)
    frame1 = cv2.resize(image1, (w, h), interpolation=cv2.INTER_AREA)
    sift = SiftRatioMatcher()
    return lambda: len(sift(frame0, frame1)[0])


def measure(spec: MeasureSpec) -> Measurement:
    """Runs inside the fresh subprocess."""
    import cv2

    from distillmatch_core.image_io import read_image

    cv2.setNumThreads(spec.threads)
    image0, image1 = read_image(spec.image0), read_image(spec.image1)
    h, w = spec.size
    started = time.perf_counter()
    if spec.method == "sift":
        sift = sift_on_frames(image0, image1, spec.size)

        def run_once():
            return sift(), None
    else:
        from distillmatch_core.matcher import Matcher

        if spec.method == "torch":
            import torch

            torch.set_num_threads(spec.threads)
            matcher = Matcher.from_pretrained(spec.weights, backend="torch", device="cpu",
                                              max_matches=spec.max_matches or None,
                                              refine=False if spec.coarse_only else None,
                                              torch_compile=spec.torch_compile, cpu_bf16=spec.cpu_bf16)
            # The same static canvas as the ONNX graph, so both backends run the same network input.
            matcher.backend.input_size = (h, w)
        else:
            matcher = Matcher.from_pretrained(spec.weights, backend="onnxruntime", device="cpu",
                                              threads=spec.threads)

        def run_once():
            result = matcher.match(image0, image1)
            return len(result), result.timings["network"]
    load_s = time.perf_counter() - started
    first_call_s = 0.0
    for index in range(spec.warmup):
        t0 = time.perf_counter()
        run_once()
        if index == 0:
            first_call_s = time.perf_counter() - t0
    totals, networks, matches = [], [], 0
    for _ in range(spec.repeats):
        t0 = time.perf_counter()
        matches, network = run_once()
        totals.append(time.perf_counter() - t0)
        if network is not None:
            networks.append(network)
    totals.sort()
    name = Path(spec.weights).stem if spec.weights else ""
    if spec.method == "torch" and spec.max_matches:
        name += f"_k{spec.max_matches}"
    if spec.method == "torch" and spec.coarse_only:
        name += "_coarse"
    if spec.method == "torch" and spec.torch_compile:
        name += "_compiled"
    if spec.method == "torch" and spec.cpu_bf16:
        name += "_bf16"
    return Measurement(method=spec.method, weights_name=name,
                       size=spec.size, median_ms=1e3 * statistics.median(totals),
                       p90_ms=1e3 * totals[min(len(totals) - 1, int(0.9 * len(totals)))],
                       network_ms=1e3 * statistics.median(networks) if networks else None, load_s=load_s,
                       peak_rss_mb=peak_rss_mb(), matches=matches, first_call_s=first_call_s)


def measure_in_subprocess(spec: MeasureSpec, nice: int) -> Measurement:
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads))
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", json.dumps(asdict(spec))]
    if nice:
        command = ["nice", "-n", str(nice)] + command
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(REPO_ROOT))
    if done.returncode != 0:
        raise RuntimeError(f"{spec.method} {spec.size} failed:\n{done.stderr.strip()[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["size"] = tuple(data["size"])
    return Measurement(**data)


# ---------------------------------------------------------------------------------------------- parent


def resolve_benchmark_weights(spec: str, work_dir: Path) -> Path:
    """A checkpoint path / "default", or ``preset:NAME``: a random-weights checkpoint of that preset."""
    from distillmatch_core.matcher import resolve_weights

    if not spec.startswith("preset:"):
        return resolve_weights(spec)
    import torch

    from distillmatch_core.checkpoint import save_checkpoint
    from distillmatch_core.config import preset
    from distillmatch_core.model.distillmatch import DistillMatch

    name = spec.split(":", 1)[1]
    cfg = preset(name)
    path = work_dir / f"{name}_random.pt"
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    save_checkpoint(path, DistillMatch(cfg), cfg, {"note": "random weights, for timing only"})
    return path


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    """'640x480,320x240' -> [(H, W), ...], each part parsed as ``distillmatch export --size``."""
    from distillmatch_core.cli.export_command import parse_size

    return [parse_size(part) for part in text.split(",")]


def machine_summary(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for module in ("torch", "onnxruntime", "cv2"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} missing")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} logical cores, {threads} thread(s) per run, load average {load}; "
            f"Python {platform.python_version()}, {', '.join(versions)}")


def row_name(r: Measurement) -> str:
    return "SIFT + ratio test" if r.method == "sift" else f"distillmatch {r.weights_name} ({r.method})"


def sift_ratio(row: Measurement, results: List[Measurement], sift_size: Optional[Tuple[int, int]]) -> float:
    """``row``'s median over SIFT's among ``results`` (one run or round), at ``sift_size`` or the row's own
    size; NaN where SIFT was not timed."""
    size = sift_size or row.size
    reference = next((r.median_ms for r in results if r.method == "sift" and r.size == size), 0.0)
    return row.median_ms / reference if reference > 0 else float("nan")


def ratio_header(sift_size: Optional[Tuple[int, int]]) -> str:
    return "x SIFT" if sift_size is None else f"x SIFT {sift_size[1]}x{sift_size[0]}"


def format_table(results: List[Measurement], sift_size: Optional[Tuple[int, int]] = None) -> str:
    """``sift_size`` (H, W): every ratio is to SIFT at that size; None: to SIFT at the row's own size."""
    lines = [f"| method | input (WxH) | median ms | p90 ms | network ms | {ratio_header(sift_size)} | peak RSS MB | load s | "
             "first call s | matches |",
             "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        ratio = sift_ratio(r, results, sift_size)
        network = f"{r.network_ms:.1f}" if r.network_ms is not None else "-"
        lines.append(f"| {row_name(r)} | {r.size[1]}x{r.size[0]} | {r.median_ms:.1f} | {r.p90_ms:.1f} | {network} | "
                     f"{ratio:.2f} | {r.peak_rss_mb:.0f} | {r.load_s:.2f} | {r.first_call_s:.2f} | {r.matches} |")
    return "\n".join(lines)


def format_rounds_table(rounds: List[List[Measurement]], sift_size: Optional[Tuple[int, int]] = None) -> str:
    """Each round: the same configurations in the same order. Per configuration: median over rounds of the
    median latency, of the ratio to the same round's SIFT (at ``sift_size``, or at the row's own size), and
    the ratio's min-max over rounds."""
    lines = [f"| method | input (WxH) | median ms | {ratio_header(sift_size)} (median of rounds) | x SIFT range | "
             "peak RSS MB | matches |", "|---|---|--:|--:|--:|--:|--:|"]
    for index, first in enumerate(rounds[0]):
        rows = [results[index] for results in rounds]
        ratios = [sift_ratio(row, results, sift_size) for results, row in zip(rounds, rows)]
        lines.append(f"| {row_name(first)} | {first.size[1]}x{first.size[0]} | {statistics.median(r.median_ms for r in rows):.1f} | "
                     f"{statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} | "
                     f"{max(r.peak_rss_mb for r in rows):.0f} | {first.matches} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="default", help="DistillMatch checkpoint (.pt); default: packaged")
    parser.add_argument("--sizes", default="640x480,320x256", help="comma-separated WxH network inputs")
    parser.add_argument("--backends", default="torch,onnxruntime", help="comma-separated DistillMatch backends")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per configuration (>= 5 for figures)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads per configuration")
    parser.add_argument("--pair", type=int, default=0, help="index of the dev-split pair to match")
    parser.add_argument("--max-matches", type=int, default=1024, help="match slots of the exported graphs")
    parser.add_argument("--torch-max-matches", type=int, default=0,
                        help="torch keeps at most this many matches, the most confident (0 = every match)")
    parser.add_argument("--coarse-only", action="store_true",
                        help="DistillMatch without its fine stage: torch refine=False, graphs exported --coarse-only")
    parser.add_argument("--torch-compile", action="store_true",
                        help="also time torch with its network compiled (torch_compile=True; needs a C++ compiler); "
                             "its first call, which compiles, is in the 'first call s' column")
    parser.add_argument("--cpu-bf16", action="store_true",
                        help="also time torch with cpu_bf16=True (texture ResNet, student ViT, selection normalisers "
                             "in bf16), compiled too with --torch-compile")
    parser.add_argument("--sift-size", default=None, metavar="WxH",
                        help="time SIFT once, at this (camera) size, and give every ratio to it "
                             "(default: SIFT at each network size)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the ONNX exports go (default: temp)")
    parser.add_argument("--nice", type=int, default=0, help="run each measurement under nice -n N")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every configuration this many times, interleaved; ratios to each round's SIFT")
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args(argv)

    if args.measure:
        data = json.loads(args.measure)
        data["size"] = tuple(data["size"])
        print(json.dumps(asdict(measure(MeasureSpec(**data)))))
        return 0

    from distillmatch_core.data.splits import load_split
    from distillmatch_core.export.onnx_export import OnnxExportOptions, export_onnx

    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.repeats < 5:
        print(f"note: --repeats {args.repeats} is a smoke run; use >= 5 for figures", file=sys.stderr)
    pair = load_split("dev")[args.pair]
    sizes = parse_sizes(args.sizes)
    sift_size = parse_sizes(args.sift_size)[0] if args.sift_size else None
    sift_sizes = [sift_size] if sift_size else sizes
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distillmatch_bench_"))
    weights_list = [resolve_benchmark_weights(w.strip(), work_dir) for w in args.weights.split(",") if w.strip()]
    print(f"pair {pair.key}; weights {', '.join(map(str, weights_list))}; {machine_summary(args.threads)}")

    specs: List[MeasureSpec] = []
    for size, weights in [(s, None) for s in sift_sizes] + [(s, w) for s in sizes for w in weights_list]:
        h, w = size
        if weights is None:  # SIFT once per size, first
            specs.append(MeasureSpec("sift", "", size, str(pair.visible_path), str(pair.infrared_path),
                                     args.threads, args.warmup, args.repeats))
            continue
        if "torch" in backends:
            specs.append(MeasureSpec("torch", str(weights), size, str(pair.visible_path), str(pair.infrared_path),
                                     args.threads, args.warmup, args.repeats, args.torch_max_matches,
                                     args.coarse_only))
            if args.torch_compile:
                specs.append(replace(specs[-1], torch_compile=True))
            if args.cpu_bf16:
                specs.append(replace(specs[-1], cpu_bf16=True))
        if "onnxruntime" in backends:
            suffix = "_coarse" if args.coarse_only else ""
            onnx_path = work_dir / f"{weights.stem}_{w}x{h}_k{args.max_matches}{suffix}.onnx"
            export_onnx(weights, onnx_path, OnnxExportOptions(input_size=size, max_matches=args.max_matches,
                                                              refine=False if args.coarse_only else None))
            specs.append(MeasureSpec("onnxruntime", str(onnx_path), size, str(pair.visible_path),
                                     str(pair.infrared_path), args.threads, args.warmup, args.repeats))

    rounds: List[List[Measurement]] = []
    for round_index in range(args.rounds):
        if args.rounds > 1:
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
        results: List[Measurement] = []
        for spec in specs:
            result = measure_in_subprocess(spec, args.nice)
            print(f"  {spec.method:12s} {spec.size[1]}x{spec.size[0]}: median {result.median_ms:.1f} ms, peak RSS "
                  f"{result.peak_rss_mb:.0f} MB, {result.matches} matches", flush=True)
            results.append(result)
        rounds.append(results)

    print()
    print(format_table(rounds[0], sift_size) if len(rounds) == 1 else format_rounds_table(rounds, sift_size))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_summary(args.threads), "pair": pair.key,
                                         "weights": [str(w) for w in weights_list],
                                         "results": [asdict(r) for r in rounds[0]],
                                         "rounds": [[asdict(r) for r in results] for results in rounds]},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
