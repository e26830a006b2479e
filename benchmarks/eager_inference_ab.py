"""The torch backend's eager inference path against the plain one, interleaved in one process.

    python benchmarks/eager_inference_ab.py [--weights default] [--size 640x480] [--rounds 12] [--compile]
        [--bf16] [--sift 640x480]

"plain" is the model as trained, with the exported graph's selection run eagerly: the full (L0, L1)
confidence matrix and ``select_coarse_matches``. "eager" is what ``Matcher`` runs with the torch backend:
``optimize_for_inference`` (folded BatchNorms, fused semantic head, channels-last texture ResNet) and
``DistillMatch.forward`` (blockwise selection). Both call the same ``FineMatching``, which chunks its
matches at eager inference in either case, so that rewrite's gain is not in the ratio. Both get the same real dev pair; rounds alternate the two, so the VM's drift between
minutes (up to 40 % here) hits both alike. Prints each variant's median and the agreement of their matches.
``--compile`` adds "compiled": the eager path with ``compile_for_inference`` (``torch_compile=True``), compiled
before the timed rounds. ``--sift WxH`` adds OpenCV SIFT + ratio test on the same pair's frames at WxH, in the same
rounds: each path's time as a multiple of SIFT's is then the median of per-round ratios, taken seconds apart, where
``benchmark_backends.py`` (separate processes, for peak memory) takes them minutes apart. ``--bf16`` adds the eager
(and compiled) path with ``cpu_bf16=True``: the texture ResNet, the student ViT and the selection's normaliser
pass in bfloat16.
"""
from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402

from distillmatch_core.checkpoint import load_model  # noqa: E402
from distillmatch_core.cli.export_command import parse_size  # noqa: E402
from distillmatch_core.matcher import resolve_weights  # noqa: E402
from distillmatch_core.model.coarse_matching import select_coarse_matches  # noqa: E402
from distillmatch_core.model.distillmatch import DistillMatch  # noqa: E402
from distillmatch_core.model.inference_optimization import compile_for_inference, optimize_for_inference  # noqa: E402
from benchmark_backends import sift_on_frames  # noqa: E402
from stage_breakdown import network_argument_parser, network_inputs, parse_network_arguments  # noqa: E402


def plain_matches(model: DistillMatch, x0: torch.Tensor, x1: torch.Tensor):
    """The dense path: -> i_ids, j_ids (M,) and keypoints1 (M, 2)."""
    feats = model.extract(x0, x1)
    gh, gw = int(feats["grid"][0]), int(feats["grid"][1])
    c = model.cfg.coarse
    b_ids, i_ids, j_ids, _ = select_coarse_matches(model.coarse_confidence(feats), (gh, gw), (gh, gw), c.threshold,
                                                   c.border_rm).flatten_valid()
    fine = model.fine(feats["half0"], feats["half1"], feats["quarter0"], feats["quarter1"], feats["coarse_tokens0"],
                      feats["coarse_tokens1"], b_ids, i_ids, j_ids, gw, gw)
    return i_ids, j_ids, fine["keypoints1"]


def eager_matches(model: DistillMatch, x0: torch.Tensor, x1: torch.Tensor):
    out = model(x0, x1)
    return out["i_ids"], out["j_ids"], out["keypoints1"]


def main(argv=None) -> int:
    p = network_argument_parser(__doc__, "checkpoint or 'default'")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--compile", action="store_true", help="also time the eager path compiled by torch.compile")
    p.add_argument("--bf16", action="store_true",
                   help="also time the eager (and with --compile the compiled) path with cpu_bf16=True")
    p.add_argument("--sift", default=None, metavar="WxH", type=parse_size,
                   help="also time SIFT + ratio test on the pair's frames at WxH, interleaved (ratios per round)")
    args = parse_network_arguments(p, argv)
    h, w = args.size
    try:
        plain, _, _ = load_model(resolve_weights(args.weights))
    except (OSError, ValueError, RuntimeError) as exc:
        p.error(f"cannot load --weights {args.weights!r}: {exc}")
    eager = optimize_for_inference(copy.deepcopy(plain), torch.device("cpu"))
    try:
        x0, x1 = network_inputs((h, w), args.pair)
    except (OSError, IndexError, ValueError) as exc:
        p.error(f"cannot load dev pair {args.pair}: {exc}")
    variants = {"plain": lambda: plain_matches(plain, x0, x1), "eager": lambda: eager_matches(eager, x0, x1)}
    if args.compile:
        compiled = copy.deepcopy(eager)
        compile_for_inference(compiled)
        variants["compiled"] = lambda: eager_matches(compiled, x0, x1)
    if args.bf16:
        eager_bf16 = optimize_for_inference(copy.deepcopy(plain), torch.device("cpu"), bfloat16_feature_extractors=True)
        variants["eager bf16"] = lambda: eager_matches(eager_bf16, x0, x1)
        if args.compile:
            compiled_bf16 = copy.deepcopy(eager_bf16)
            compile_for_inference(compiled_bf16)
            variants["compiled bf16"] = lambda: eager_matches(compiled_bf16, x0, x1)
    if args.sift:
        import cv2

        from distillmatch_core.data.splits import load_split
        from distillmatch_core.image_io import read_image

        cv2.setNumThreads(args.threads)
        pair = load_split("dev")[args.pair]
        sift = sift_on_frames(read_image(pair.visible_path), read_image(pair.infrared_path), args.sift)
    timed = {**variants, "sift": sift} if args.sift else variants
    times = {name: [] for name in timed}
    with torch.inference_mode():
        results = {name: run() for name, run in timed.items()}  # warm-up, and the outputs compared below
        for _ in range(max(1, args.rounds)):
            for name, run in timed.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) * 1e3)
    pairs = {name: {(int(i), int(j)): k for i, j, k in zip(*results[name])} for name in variants}
    print(f"{args.weights} at {w}x{h}, dev pair {args.pair}, {args.threads} threads, {args.rounds} interleaved rounds\n")
    print("| path | median ms | min ms | matches |\n|---|--:|--:|--:|")
    for name in variants:
        print(f"| {name} | {statistics.median(times[name]):.1f} | {min(times[name]):.1f} | {len(pairs[name])} |")
    if args.sift:
        print(f"| SIFT + ratio test at {args.sift[1]}x{args.sift[0]} | {statistics.median(times['sift']):.1f} | "
              f"{min(times['sift']):.1f} | {results['sift']} |\n")
        for name in variants:
            ratios = [t / s for t, s in zip(times[name], times["sift"])]
            print(f"{name}: {statistics.median(ratios):.2f}x SIFT (median of per-round ratios; range "
                  f"{min(ratios):.2f}-{max(ratios):.2f})")
    print()
    for name, reference in (("eager", "plain"), ("compiled", "eager"), ("eager bf16", "eager"),
                            ("compiled bf16", "compiled")):
        if name not in variants:
            continue
        shared = pairs[reference].keys() & pairs[name].keys()
        shift = max((float((pairs[reference][m] - pairs[name][m]).abs().max()) for m in shared), default=0.0)
        ratio = statistics.median(times[name]) / statistics.median(times[reference])
        print(f"{name} / {reference}: {ratio:.2f}; matches in both: {len(shared)}; largest keypoint difference among "
              f"them: {shift:.2e} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
