"""``distillmatch bag-eval``: replay a recorded RGB + thermal bag through the matcher and report."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

from distillmatch_core.cli.errors import CliError
from distillmatch_core.cli.matcher_options import add_cpu_bf16_argument

if TYPE_CHECKING:
    from distillmatch_core.ros_interface.node_parameters import ModelLoadConfig

DESCRIPTION = """\
Replay a ROS 2 bag (sqlite3 or MCAP) holding RGB and thermal images
(sensor_msgs/Image or CompressedImage) through the matcher, offline and
without ROS. Frames are paired exactly as the live node pairs them
(approximate time, --slop). OUT_DIR receives report.json, pairs.csv, plots/,
output_bag/ (the node's output topics, rosbag2 format 8) and, with --video,
overlay.mp4. Thresholds can come from the node's parameter file (--params).
The input bag is never modified. See docs/bag_eval.md.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from distillmatch_core.ros_interface.node_parameters import BACKENDS
    from distillmatch_core.rosbag.topic_names import DEFAULT_NODE_NAME, DEFAULT_RGB_TOPIC, DEFAULT_THERMAL_TOPIC
    from distillmatch_core.rosbag.typestore_selection import DEFAULT_TYPESTORE, TYPESTORES

    parser = subparsers.add_parser("bag-eval", help="evaluate the matcher on a recorded RGB + thermal rosbag",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input_bag", metavar="INPUT_BAG", type=Path, help="bag folder, or its .db3 / .mcap file")
    topics = parser.add_argument_group("topics")
    topics.add_argument("--rgb-topic", default=DEFAULT_RGB_TOPIC, help="RGB image topic (default: %(default)s)")
    topics.add_argument("--thermal-topic", default=DEFAULT_THERMAL_TOPIC,
                        help="thermal image topic (default: %(default)s)")
    topics.add_argument("--rgb-camera-info-topic", default=None,
                        help="default: <rgb namespace>/camera_info if the bag has it; '' to ignore camera info")
    topics.add_argument("--thermal-camera-info-topic", default=None,
                        help="default: <thermal namespace>/camera_info if the bag has it; '' to ignore")
    topics.add_argument("--typestore", choices=sorted(TYPESTORES), default=DEFAULT_TYPESTORE,
                        help="message definitions used to read and write (default: %(default)s)")
    model = parser.add_argument_group("matcher (default: the node's parameter defaults or --params)")
    model.add_argument("--weights", default=None, help="model name or path (node default: 'default')")
    model.add_argument("--backend", choices=BACKENDS, default=None, help="inference backend (node default: auto)")
    model.add_argument("--device", default=None, help="cpu, cuda or cuda:N (node default: cpu)")
    model.add_argument("--size", type=int, default=None, help="matcher input size (node default: 0 = the model's inference size)")
    model.add_argument("--max-matches", type=int, default=None, metavar="N",
                       help="torch backend: keep at most N matches per frame (node default: 0 = every match)")
    model.add_argument("--compile", action="store_true",
                       help="torch backend: compile the network with torch.compile (faster per frame; the "
                            "first frame waits 1-2 minutes for the compiler; node parameter torch_compile)")
    add_cpu_bf16_argument(model)
    model.add_argument("--params", type=Path, default=None,
                       help="node parameter file (config/matcher.yaml format) for thresholds, filter and sync")
    sync = parser.add_argument_group("pairing")
    sync.add_argument("--slop", type=float, default=None,
                      help="largest RGB/thermal stamp difference in seconds, as the node's 'slop' (default 0.05)")
    sync.add_argument("--queue-size", type=int, default=None, help="synchroniser queue per input (default 10)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, default=None, help="output folder (default: ./<bag name>_eval)")
    out.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    out.add_argument("--reference-homography", type=Path, default=None, metavar="H.txt",
                     help="3x3 thermal->RGB homography from rig calibration (whitespace-separated text)")
    out.add_argument("--video", action="store_true", help="also write overlay.mp4 of the matches")
    out.add_argument("--video-fps", type=float, default=10.0, help="frame rate of overlay.mp4 (default 10)")
    out.add_argument("--output-storage", choices=("sqlite3", "mcap"), default="sqlite3",
                     help="storage of output_bag (default sqlite3: replays on Humble without plugins)")
    out.add_argument("--include-inputs", action="store_true",
                     help="copy the input image and camera_info topics into output_bag")
    out.add_argument("--node-name", default=DEFAULT_NODE_NAME,
                     help="output topics are /<namespace>/<node-name>/<output> (default: %(default)s)")
    out.add_argument("--namespace", default="", help="namespace of the output topics (default: none)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _parameter_values(args: argparse.Namespace) -> Dict[str, Any]:
    from distillmatch_core.ros_interface.node_parameters import SPECS_BY_NAME, default_values, load_parameter_file

    values = default_values()
    if args.params is not None:
        if not args.params.is_file():
            raise CliError(f"parameter file not found: {args.params}")
        try:
            from_file = load_parameter_file(args.params)
        except Exception as exc:  # noqa: BLE001 - YAML errors of several kinds
            raise CliError(f"cannot read parameter file {args.params}: {exc}") from None
        unknown = sorted(set(from_file) - set(SPECS_BY_NAME) - {"use_sim_time"})
        if unknown:
            raise CliError(f"{args.params}: unknown parameters {', '.join(unknown)}")
        values.update({k: v for k, v in from_file.items() if k in SPECS_BY_NAME})
    overrides = {"weights": args.weights, "backend": args.backend, "device": args.device, "input_size": args.size,
                 "max_matches": args.max_matches, "torch_compile": True if args.compile else None,
                 "cpu_bf16": True if args.bf16 else None,
                 "slop": None if args.slop is None else float(args.slop), "queue_size": args.queue_size}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values


def _matcher_factory(model: "ModelLoadConfig"):
    weights, backend, device = model.weights, model.backend, model.device

    def create():
        try:
            from distillmatch_core import Matcher
        except ImportError as exc:
            raise CliError(f"the matcher is not available in this installation: {exc}") from None
        try:
            return Matcher.from_pretrained(weights, **model.matcher_options())  # as the node
        except FileNotFoundError as exc:
            raise CliError(f"model weights not found ({weights!r}): {exc}") from None
        except (ValueError, RuntimeError, ImportError, OSError) as exc:
            raise CliError(f"could not load the matcher (weights={weights!r}, backend={backend}, "
                           f"device={device}): {exc}") from None
    return create


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.ros_interface.node_parameters import ParameterValidationError, config_from_values
    from distillmatch_core.rosbag.bag_errors import BagError
    from distillmatch_core.rosbag.bag_eval import BagEvalConfig, load_reference_homography, run_bag_eval

    try:
        node_config = config_from_values(_parameter_values(args))
    except ParameterValidationError as exc:
        raise CliError(str(exc)) from None
    reference = None
    if args.reference_homography is not None:
        try:
            reference = load_reference_homography(args.reference_homography)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    out_dir = args.out if args.out is not None else Path(f"{Path(args.input_bag).absolute().name or 'bag'}_eval")
    model = node_config.model
    config = BagEvalConfig(
        input_bag=args.input_bag, out_dir=out_dir, rgb_topic=args.rgb_topic, thermal_topic=args.thermal_topic,
        rgb_camera_info_topic=args.rgb_camera_info_topic, thermal_camera_info_topic=args.thermal_camera_info_topic,
        pairing=node_config.pairing, processing=node_config.processing, typestore=args.typestore,
        node_name=args.node_name, namespace=args.namespace, output_storage=args.output_storage,
        reference_homography=reference,
        reference_homography_source=str(args.reference_homography) if args.reference_homography else "",
        video=args.video, video_fps=args.video_fps, include_inputs=args.include_inputs, overwrite=args.overwrite,
        progress=not args.no_progress,
        matcher_info={"weights": model.weights, "backend": model.backend, "device": model.device,
                      "size": model.input_size, "max_matches": model.max_matches,
                      "torch_compile": model.torch_compile, "cpu_bf16": model.cpu_bf16})
    try:
        result = run_bag_eval(config, _matcher_factory(model))
    except BagError as exc:
        raise CliError(str(exc)) from None
    counts = result.report["counts"]
    summary = result.report["summary"]
    print(f"pairs: {counts['pairs']} ({counts['unpaired_rgb']} RGB and {counts['unpaired_thermal']} thermal "
          f"frames unpaired), failed: {counts['pairs_failed']}, with homography: {counts['pairs_with_homography']}")
    if summary["matches"]["count"]:
        print(f"matches median {summary['matches']['median']:.0f}, inliers median "
              f"{summary['inliers']['median']:.0f}, processing time median "
              f"{summary['processing_time_s']['median'] * 1000:.1f} ms")
    drift = summary["homography_stability"]["corner_drift_px"]
    if drift["count"]:
        print(f"homography corner drift between pairs: median {drift['median']:.2f} px, p95 {drift['p95']:.2f} px")
    if result.report["reference"]:
        error = result.report["reference"]["corner_error_px"]
        if error["count"]:
            print(f"corner error vs. reference: median {error['median']:.2f} px")
    print(f"results in {result.out_dir}")
    if result.succeeded_pairs == 0:
        print(f"every pair failed; first error: {result.report['first_error']}")
        return 1
    return 0
