"""Where a DistillMatch forward pass spends its time, stage by stage, on this machine.

    python benchmarks/stage_breakdown.py [--weights default] [--size 640x480] [--threads 2] [--repeats 5]
    python benchmarks/stage_breakdown.py --weights preset:paper --size 640x480

Times the real eager forward (``DistillMatch.forward`` in eval mode) on a real RGB-thermal pair of
the dev split, fitted into the given input size as the ``Matcher`` does, through forward hooks on
its stages, so nothing is re-implemented here: texture ResNet, student ViT, CEFG, STFA (both images), the coarse linear-attention layers, the coarse descriptors
(projections and normalisation; eager inference never forms S = d0 d1^T), the fine stage with sub-pixel
refinement, and what remains (the blockwise mutual-nearest-neighbour selection, which lives in
``DistillMatch.forward``). The model is prepared as the torch backend prepares it (``optimize_for_inference``).
Medians over ``--repeats`` after one warm-up; the table is the guide for choosing where a faster
config should save (docs/benchmarks.md). Run it on an idle machine. The input matters: the fine
stage's cost grows with the number of matches, which random images (``--random``) hardly have.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from distillmatch_core.checkpoint import load_model  # noqa: E402
from distillmatch_core.cli.export_command import parse_size  # noqa: E402
from distillmatch_core.config import preset  # noqa: E402
from distillmatch_core.matcher import resolve_weights  # noqa: E402
from distillmatch_core.model.distillmatch import DistillMatch, count_parameters  # noqa: E402
from distillmatch_core.model.inference_optimization import optimize_for_inference  # noqa: E402

# (label, attribute path on DistillMatch); nested stages are subtracted from their parent.
STAGES = (("texture ResNet", "backbone"), ("student ViT", "student"), ("CEFG", "cefg"), ("STFA", "stfa"),
          ("coarse attention layers", "coarse.transformer"), ("coarse descriptors", "coarse"),
          ("fine + sub-pixel", "fine"))
NESTED = {"coarse descriptors": "coarse attention layers"}
REMAINDER = "coarse selection (rest)"


def build_model(weights: str) -> Tuple[DistillMatch, int]:
    """-> the model as the torch backend runs it (``optimize_for_inference``), and its trained parameter count."""
    if weights.startswith("preset:"):
        model = DistillMatch(preset(weights.split(":", 1)[1])).eval()
    else:
        model, _, _ = load_model(resolve_weights(weights))
    n_params = count_parameters(model)  # before the inference rewrites fold parameters away
    return optimize_for_inference(model.eval(), torch.device("cpu")), n_params


def find_stage(model: torch.nn.Module, path: str):
    """The submodule at a dotted path, or None where a stage is disabled (its attribute is None)."""
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def network_inputs(size, pair_index: Optional[int] = None):
    """-> (1, 1, H, W) canvases: dev-split pair ``pair_index`` prepared as the Matcher does, or random."""
    h, w = size
    if pair_index is None:
        return torch.rand(1, 1, h, w), torch.rand(1, 1, h, w)
    from distillmatch_core.data.splits import load_split
    from distillmatch_core.image_io import read_image
    from distillmatch_core.image_preprocessing import prepare_pair
    from distillmatch_core.thermal_normalization import ThermalNormalization

    pair = load_split("dev")[pair_index]
    canvas0, canvas1, _, _ = prepare_pair(read_image(pair.visible_path), read_image(pair.infrared_path),
                                          ThermalNormalization(), longer_side=max(h, w), fixed_size=(h, w))
    return torch.from_numpy(canvas0), torch.from_numpy(canvas1)


def time_stages(model: DistillMatch, inputs, repeats: int) -> Dict[str, List[float]]:
    """inputs: two (1, 1, H, W) canvases -> stage label -> per-repeat milliseconds (incl. "total" and the
    remainder) and "matches" (per repeat)."""
    spent: Dict[str, float] = defaultdict(float)
    started: Dict[str, float] = {}
    handles = []
    for label, path in STAGES:
        module = find_stage(model, path)
        if module is None:  # a disabled stage (e.g. cefg.enabled: false)
            continue

        def pre(_m, _inp, label=label):
            started[label] = time.perf_counter()

        def post(_m, _inp, _out, label=label):
            spent[label] += time.perf_counter() - started[label]

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    x0, x1 = inputs
    runs: Dict[str, List[float]] = defaultdict(list)
    try:
        with torch.inference_mode():
            for rep in range(repeats + 1):
                spent.clear()
                t0 = time.perf_counter()
                matches = int(model(x0, x1)["match_valid"].sum())
                total = time.perf_counter() - t0
                if rep == 0:
                    continue  # warm-up
                for child, parent in NESTED.items():
                    spent[child] -= spent.get(parent, 0.0)
                for label, seconds in spent.items():
                    runs[label].append(seconds * 1e3)
                runs[REMAINDER].append((total - sum(spent.values())) * 1e3)
                runs["total"].append(total * 1e3)
                runs["matches"].append(matches)
    finally:
        for handle in handles:
            handle.remove()
    return runs


def network_argument_parser(doc: str, weights_help: str) -> argparse.ArgumentParser:
    """The options of the scripts that time one dev pair (this one, eager_inference_ab.py): --weights, --size,
    --threads, --pair."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--weights", default="default", help=weights_help)
    p.add_argument("--size", type=parse_size, default="640x480", help="WxH of the network input (multiples of 8)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pair", type=int, default=0, help="index of the dev-split pair to match")
    return p


def parse_network_arguments(p: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parses, checks --size and sets torch's thread count."""
    args = p.parse_args(argv)
    h, w = args.size
    if w % 8 or h % 8 or w <= 0 or h <= 0:
        p.error(f"--size must be WxH with positive multiples of 8, got {w}x{h}")
    torch.set_num_threads(args.threads)
    return args


def main(argv=None) -> int:
    p = network_argument_parser(__doc__, "checkpoint, 'default', or preset:NAME (random weights)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--random", action="store_true", help="random images instead of the dev pair")
    args = parse_network_arguments(p, argv)
    h, w = args.size
    try:
        model, n_params = build_model(args.weights)
    except (OSError, ValueError, RuntimeError) as exc:  # missing / corrupt / mismatched weights, unknown preset
        p.error(f"cannot load --weights {args.weights!r}: {exc}")
    try:
        inputs = network_inputs((h, w), None if args.random else args.pair)
    except (OSError, IndexError, ValueError) as exc:  # no ../shared data, pair index out of range
        p.error(f"cannot load dev pair {args.pair} ({exc}); pass --random for random images")
    runs = time_stages(model, inputs, max(1, args.repeats))
    total = statistics.median(runs["total"])
    source = "random images" if args.random else f"dev pair {args.pair}"
    print(f"{args.weights}: {n_params / 1e6:.2f} M parameters, input {w}x{h} ({source}, "
          f"{runs['matches'][-1]} matches), {args.threads} threads, median of {args.repeats}\n")
    print("| stage | ms | share |\n|---|--:|--:|")
    for label in [s for s, _ in STAGES if s in runs] + [REMAINDER]:
        ms = statistics.median(runs[label])
        print(f"| {label} | {ms:.1f} | {100 * ms / total:.0f} % |")
    print(f"| **total** | **{total:.1f}** | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
