"""``distillmatch eval {homography,pose,zero-shot}``: the paper's benchmarks for any method.

Each sub-command runs every ``--method`` on the same pairs and writes a Markdown
and CSV table (one row per method x dataset), per-pair results, an error-curve
plot per dataset and a few match visualisations to ``--out``.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from distillmatch_core.cli.errors import CliError
from distillmatch_core.cli.matcher_options import (add_cpu_bf16_argument, add_max_matches_argument,
                                                   checked_max_matches)
from distillmatch_core.matcher import BACKENDS

PROTOCOLS = ("homography", "pose", "zero-shot")
DEFAULT_METHODS = ("sift", "orb")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="benchmark matchers: homography, relative pose, zero-shot",
        description="Benchmark DistillMatch checkpoints and baselines with the paper's protocols.")
    protocols = parser.add_subparsers(dest="protocol", metavar="PROTOCOL")

    homography = protocols.add_parser(
        "homography", help="random homographies on aligned RGB-thermal pairs (AUC of corner error)",
        description="Warp the infrared image of each aligned pair by a seeded random homography, match, fit a "
                    "homography (MAGSAC++) and report AUC of the mean corner error at 3/5/10/20 px.")
    _add_common_options(homography)
    _add_aligned_pair_options(homography, default_split="dev")

    pose = protocols.add_parser(
        "pose", help="relative pose on METU-VisTIR / MegaDepth indices (AUC of pose error)",
        description="Match each indexed pair, estimate the essential matrix and report AUC of max(R, t) angle "
                    "error at 5/10/20 degrees.")
    _add_common_options(pose)
    pose.add_argument("--data", type=Path, required=True,
                      help="a scene index .npz (METU-VisTIR or MegaDepth scene_info) or a folder of them")
    pose.add_argument("--image-root", type=Path, default=None,
                      help="folder the index's image paths are relative to (default: searched upwards "
                           "from the index folder)")
    pose.add_argument("--index-format", choices=("auto", "metu-vistir", "megadepth"), default="auto")
    pose.add_argument("--estimator", choices=("magsac", "ransac"), default="magsac",
                      help="robust essential-matrix estimator (default: USAC MAGSAC++)")

    zero_shot = protocols.add_parser(
        "zero-shot", help="NCM / RMSE on aligned pairs of other modalities under a known transform",
        description="Warp image 1 of each aligned pair by a known homography and count matches whose residual "
                    "is < 5 px (NCM) and their RMSE.")
    _add_common_options(zero_shot)
    _add_aligned_pair_options(zero_shot, default_split="all")
    zero_shot.add_argument("--modality0", default="visible", help="modality of image 0 (for DistillMatch)")
    zero_shot.add_argument("--modality1", default="infrared", help="modality of image 1 (for DistillMatch)")

    parser.set_defaults(func=run)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", action="append", dest="methods", metavar="METHOD",
                        help="sift | orb | distillmatch | package.module:factory (factory() returns a function "
                             "(image0, image1) -> (keypoints0, keypoints1)); repeatable; default: sift and orb")
    parser.add_argument("--weights", default=None,
                        help="DistillMatch checkpoint / .onnx / engine for --method distillmatch (default: "
                             "the packaged 'default')")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="DistillMatch backend (default: onnxruntime for .onnx, tensorrt for engines, torch otherwise)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--size", type=int, default=640, help="longer image side in pixels; 0 keeps the original")
    add_max_matches_argument(parser)
    add_cpu_bf16_argument(parser)
    parser.add_argument("--matcher-size", type=int, default=None,
                        help="longer side DistillMatch resizes its inputs to internally (default: the model's "
                             "inference size); keypoints are still reported at the protocol's resolution")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate N pairs spread evenly over the ordered list of pairs")
    parser.add_argument("--seed", default="0",
                        help="seed of the random homographies, or a comma list (0,1,2): the protocol then runs once "
                             "per seed and every metric is computed over the pooled pairs (one seed's 57 dev pairs "
                             "move AUC@10px by up to 13 points)")
    parser.add_argument("--ransac-threshold", type=float, default=3.0, help="robust fitting threshold in pixels")
    parser.add_argument("--visualizations", type=int, default=2, metavar="N",
                        help="match images drawn for the first N pairs of each dataset and method")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: outputs/eval/<protocol>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_aligned_pair_options(parser: argparse.ArgumentParser, default_split: str) -> None:
    parser.add_argument("--data", type=Path, default=None,
                        help="manifest CSV (set,pair_id,visible_path,infrared_path) or a folder with visible/ "
                             "and infrared/ (default: the shared developer data)")
    parser.add_argument("--split", choices=("dev", "train", "all"), default=default_split,
                        help=f"which part of the data (see docs/dev_split.md; default: {default_split})")
    parser.add_argument("--strength", type=float, default=1.0,
                        help="scales the paper's random homography ranges, in [0, 1]")
    parser.add_argument("--scale", type=float, default=None, metavar="S",
                        help="fix the random homography's scale to S in [0.1, 10] (every other term keeps the "
                             "seed's draw): the infrared image magnified (S > 1) or shrunk, as between cameras whose "
                             "fields of view differ (default: the paper's random scale, 0.8-1.2)")


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    if getattr(args, "protocol", None) not in PROTOCOLS:
        raise CliError(f"choose a protocol: {', '.join(PROTOCOLS)} (see distillmatch eval --help)")
    _check_common_options(args)

    # Imported here so `distillmatch --help` stays fast.
    from distillmatch_core.evaluation import benchmark
    from distillmatch_core.evaluation.methods import MethodError
    from distillmatch_core.evaluation.pose_pair_spec import PoseIndexError
    from distillmatch_core.evaluation.reporting import markdown_table, write_report
    from distillmatch_core.image_io import ImageReadError

    try:
        if args.protocol == "homography":
            definition, results, notes = _run_homography(args)
        elif args.protocol == "pose":
            definition, results, notes = _run_pose(args)
        else:
            definition, results, notes = _run_zero_shot(args)
        report = benchmark.build_report(definition, results, notes)
        out_dir = args.out if args.out is not None else Path("outputs") / "eval" / args.protocol
        written = write_report(out_dir, report, describe_command(args))
    except (MethodError, PoseIndexError, ImageReadError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None

    print(markdown_table(report.rows, report.columns))
    print(f"\nwrote {out_dir}/results.md, results.csv, pairs.csv, {len(written['plots'])} curve plot(s) and "
          f"{len(written['visualizations'])} match image(s)")
    return 0


def _check_common_options(args: argparse.Namespace) -> None:
    args.methods = list(args.methods or DEFAULT_METHODS)
    if args.size < 0 or 0 < args.size < 32:
        raise CliError(f"--size must be 0 (original resolution) or at least 32, got {args.size}")
    if args.matcher_size is not None and args.matcher_size < 64:
        raise CliError(f"--matcher-size must be at least 64, got {args.matcher_size}")
    if args.limit is not None and args.limit <= 0:
        raise CliError(f"--limit must be positive, got {args.limit}")
    if args.ransac_threshold <= 0:
        raise CliError(f"--ransac-threshold must be positive, got {args.ransac_threshold}")
    if args.visualizations < 0:
        raise CliError(f"--visualizations must be >= 0, got {args.visualizations}")
    if not 0.0 <= getattr(args, "strength", 1.0) <= 1.0:
        raise CliError(f"--strength must be in [0, 1], got {args.strength}")
    scale = getattr(args, "scale", None)
    if scale is not None and not 0.1 <= scale <= 10.0:  # also refuses nan
        raise CliError(f"--scale must be in [0.1, 10], got {scale}")
    if args.weights is not None and "distillmatch" not in args.methods:
        raise CliError("--weights is only used by --method distillmatch; add it or drop --weights")
    if len(set(args.methods)) != len(args.methods):
        raise CliError("each --method may be given only once")
    args.seeds = _parse_seeds(args.seed)


def _parse_seeds(text: str) -> List[int]:
    try:
        seeds = [int(part) for part in str(text).split(",")]
    except ValueError:
        raise CliError(f"--seed must be an integer or a comma list of integers, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise CliError(f"--seed {text} names a seed twice")
    return seeds


def _over_seeds(args: argparse.Namespace, run_one_seed: Callable[[int, int], list]) -> list:
    """run_one_seed(seed, match images to keep per dataset) -> per-pair results, for each seed of --seed, pooled.
    With several seeds each pair id gets its seed (pair@seedS) and only the first seed keeps match images. The
    metrics are then those of the pooled pairs: the AUC of all seeds' errors together, which is close to the mean
    of the seeds' AUCs but not equal to it (the AUC interpolates the error curve between samples; phase 7 on dev,
    seeds 0-2: pooled AUC@10px 29.76, mean 30.30)."""
    pooled = []
    for index, seed in enumerate(args.seeds):
        results = run_one_seed(seed, args.visualizations if index == 0 else 0)
        if len(args.seeds) > 1:
            results = [dataclasses.replace(r, pair_id=f"{r.pair_id}@seed{seed}") for r in results]
        pooled.extend(results)
    return pooled


def _seed_note(args: argparse.Namespace) -> str:
    if len(args.seeds) == 1:
        return f"seed {args.seeds[0]}"
    return f"seeds {args.seed} pooled (each pair once per seed, the metrics over all of them)"


def _size(args: argparse.Namespace) -> Optional[int]:
    return args.size or None


def _resolve_methods(args: argparse.Namespace, modality0: str, modality1: str) -> List[Tuple[str, Any]]:
    """(name, match function) per --method; DistillMatch is told the modalities of this data."""
    from distillmatch_core.evaluation.methods import MethodOptions, resolve_method

    options = MethodOptions(weights=args.weights or "default", backend=args.backend, device=args.device,
                            size=args.matcher_size, modality0=modality0, modality1=modality1,
                            max_matches=checked_max_matches(args.max_matches), cpu_bf16=args.bf16)
    methods = [resolve_method(spec, options) for spec in args.methods]
    return [(m.name, m.match) for m in methods]


def _load_aligned_pairs(args: argparse.Namespace) -> list:
    from distillmatch_core.data.splits import load_split
    from distillmatch_core.evaluation.pair_selection import select_evenly

    try:
        pairs = load_split(args.split, args.data)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise CliError(f"cannot read pairs from {args.data or 'the shared data'}: {exc}") from None
    pairs = select_evenly(pairs, args.limit)
    if not pairs:
        raise CliError(f"no pairs in split {args.split!r} of {args.data or 'the shared data'}")
    return pairs


def _run_each_method(args: argparse.Namespace, methods: Sequence[Tuple[str, Any]],
                     run_one: Callable[[Any, str, int, int], list]) -> Dict[str, list]:
    """run_one(match function, method name, seed, match images to keep) -> per-pair results; -> each method's
    results over the seeds of --seed (``_over_seeds``)."""
    return {name: _over_seeds(args, lambda seed, keep: run_one(match_fn, name, seed, keep))
            for name, match_fn in methods}


def _run_homography(args: argparse.Namespace):
    from distillmatch_core.evaluation.benchmark import HOMOGRAPHY
    from distillmatch_core.evaluation.homography_protocol import (HomographyProtocolOptions,
                                                                  run_homography_protocol)

    pairs = _load_aligned_pairs(args)
    methods = _resolve_methods(args, "visible", "infrared")

    def one_seed(fn, name: str, seed: int, keep_images: int) -> list:
        options = HomographyProtocolOptions(size=_size(args), seed=seed, strength=args.strength, scale=args.scale,
                                            ransac_threshold=args.ransac_threshold,
                                            keep_images_per_dataset=keep_images)
        return run_homography_protocol(fn, pairs, options, progress=not args.no_progress,
                                       description=f"{name} homography, seed {seed}")

    results = _run_each_method(args, methods, one_seed)
    notes = [f"AUC (%) of the mean corner error; {len(pairs)} pairs of split `{args.split}`, longer side "
             f"{args.size or 'original'}, {_seed_note(args)}, {_homography_note(args)}, "
             f"MAGSAC++ threshold {args.ransac_threshold:g} px; a pair without a homography counts as infinite "
             "error. Precision: matches within 5 px of the true transfer."]
    return HOMOGRAPHY, results, notes


def _homography_note(args: argparse.Namespace) -> str:
    note = f"homography strength {args.strength:g}"
    return note if args.scale is None else f"{note} with its scale fixed to {args.scale:g}"


def _run_zero_shot(args: argparse.Namespace):
    from distillmatch_core.evaluation.benchmark import ZERO_SHOT
    from distillmatch_core.evaluation.zero_shot_protocol import ZeroShotProtocolOptions, run_zero_shot_protocol

    pairs = _load_aligned_pairs(args)
    methods = _resolve_methods(args, args.modality0, args.modality1)

    def one_seed(fn, name: str, seed: int, keep_images: int) -> list:
        options = ZeroShotProtocolOptions(size=_size(args), seed=seed, strength=args.strength, scale=args.scale,
                                          keep_images_per_dataset=keep_images)
        return run_zero_shot_protocol(fn, pairs, options, progress=not args.no_progress,
                                      description=f"{name} zero-shot, seed {seed}")

    results = _run_each_method(args, methods, one_seed)
    notes = [f"NCM: matches with residual < 5 px under the known transform; RMSE over those, averaged over pairs "
             f"with at least one. {len(pairs)} pairs of split `{args.split}`, longer side {args.size or 'original'}, "
             f"{_seed_note(args)}, {_homography_note(args)}."]
    return ZERO_SHOT, results, notes


def _run_pose(args: argparse.Namespace):
    from distillmatch_core.evaluation.benchmark import POSE
    from distillmatch_core.evaluation.pair_selection import select_evenly
    from distillmatch_core.evaluation.pose_index import load_pose_index
    from distillmatch_core.evaluation.pose_protocol import PoseProtocolOptions, run_pose_protocol

    specs = select_evenly(load_pose_index(args.data, args.image_root, args.index_format), args.limit)
    if not specs:
        raise CliError(f"no pairs in {args.data}")
    options = PoseProtocolOptions(size=_size(args), ransac_threshold=args.ransac_threshold,
                                  estimator=args.estimator, keep_images_per_dataset=args.visualizations)
    # MegaDepth is RGB-RGB and METU-VisTIR RGB-thermal: DistillMatch must be told per group of pairs.
    groups: Dict[Tuple[str, str], list] = {}
    for spec in specs:
        groups.setdefault((spec.modality0, spec.modality1), []).append(spec)
    results: Dict[str, list] = {}
    for (modality0, modality1), group in groups.items():
        for name, match_fn in _resolve_methods(args, modality0, modality1):
            results.setdefault(name, []).extend(run_pose_protocol(
                match_fn, group, options, progress=not args.no_progress, description=f"{name} pose"))
    notes = [f"AUC (%) of max(rotation, translation-direction) error; {len(specs)} pairs, longer side "
             f"{args.size or 'original'}, essential matrix with {args.estimator} at {args.ransac_threshold:g} px; "
             "a pair without a pose counts as infinite error. Precision: symmetric epipolar distance < 5e-4."]
    return POSE, results, notes


def describe_command(args: argparse.Namespace) -> str:
    """The run as a reproducible command line, options that shape the numbers always spelled out."""
    parts = ["distillmatch", "eval", args.protocol]
    for method in args.methods:
        parts += ["--method", method]
    if "distillmatch" in args.methods:
        parts += ["--weights", args.weights or "default"]
        if args.backend is not None:
            parts += ["--backend", args.backend]
        parts += ["--device", args.device]
        if args.max_matches is not None:
            parts += ["--max-matches", str(args.max_matches)]
        if args.bf16:
            parts.append("--bf16")
    if args.protocol == "pose":
        parts += ["--data", str(args.data)]
        if args.image_root is not None:
            parts += ["--image-root", str(args.image_root)]
        parts += ["--index-format", args.index_format, "--estimator", args.estimator]
    else:
        if args.data is not None:
            parts += ["--data", str(args.data)]
        parts += ["--split", args.split]
        if args.strength != 1.0:
            parts += ["--strength", f"{args.strength:g}"]
        if args.scale is not None:
            parts += ["--scale", f"{args.scale:g}"]
        if args.protocol == "zero-shot":
            parts += ["--modality0", args.modality0, "--modality1", args.modality1]
    parts += ["--size", str(args.size), "--seed", str(args.seed)]
    if args.matcher_size:
        parts += ["--matcher-size", str(args.matcher_size)]
    if args.ransac_threshold != 3.0:
        parts += ["--ransac-threshold", f"{args.ransac_threshold:g}"]
    if args.limit is not None:
        parts += ["--limit", str(args.limit)]
    return " ".join(shlex.quote(p) for p in parts)
