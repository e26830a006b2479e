"""``distillmatch make-bag``: turn two folders of RGB and thermal frames into a ROS 2 bag."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from distillmatch_core.cli.errors import CliError

DESCRIPTION = """\
Write a ROS 2 bag (rosbag2 format 8, sqlite3 or MCAP) from a folder of RGB
frames and a folder of thermal frames, paired by sorted file name (frames
whose name exists in one folder only are written on that topic only). Frame k
is stamped start + k/rate. See docs/bag_eval.md.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from distillmatch_core.rosbag.make_bag import THERMAL_ENCODINGS
    from distillmatch_core.rosbag.topic_names import DEFAULT_RGB_TOPIC, DEFAULT_THERMAL_TOPIC
    from distillmatch_core.rosbag.typestore_selection import DEFAULT_TYPESTORE, TYPESTORES

    parser = subparsers.add_parser("make-bag", help="build a rosbag from folders of RGB and thermal frames",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rgb_dir", metavar="RGB_DIR", type=Path)
    parser.add_argument("thermal_dir", metavar="THERMAL_DIR", type=Path)
    parser.add_argument("out_bag", metavar="OUT_BAG", type=Path, help="bag folder to create")
    parser.add_argument("--rate", type=float, required=True, metavar="HZ", help="frame rate of the stamps")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3",
                        help="storage format (default: %(default)s)")
    parser.add_argument("--thermal-encoding", choices=THERMAL_ENCODINGS, default="mono16",
                        help="thermal image encoding; 8-bit files become mono16 as v*257 (default: %(default)s)")
    parser.add_argument("--compressed", action="store_true",
                        help="write sensor_msgs/CompressedImage (JPEG RGB, lossless PNG thermal)")
    parser.add_argument("--rgb-topic", default=None,
                        help=f"default {DEFAULT_RGB_TOPIC} (with --compressed: {DEFAULT_RGB_TOPIC}/compressed)")
    parser.add_argument("--thermal-topic", default=None, help=f"default {DEFAULT_THERMAL_TOPIC} (likewise)")
    parser.add_argument("--rgb-frame-id", default="rgb_camera", help="header frame_id (default: %(default)s)")
    parser.add_argument("--thermal-frame-id", default="thermal_camera", help="(default: %(default)s)")
    parser.add_argument("--rgb-calibration", type=Path, default=None, metavar="YAML",
                        help="ROS camera calibration YAML; writes CameraInfo on <rgb namespace>/camera_info")
    parser.add_argument("--thermal-calibration", type=Path, default=None, metavar="YAML",
                        help="likewise for the thermal camera")
    parser.add_argument("--start-time", type=float, default=1_700_000_000.0, metavar="SECONDS",
                        help="stamp of the first frame, seconds since the epoch (default: %(default).0f)")
    parser.add_argument("--thermal-offset-ms", type=float, default=0.0,
                        help="constant thermal stamp offset, emulating unsynchronised cameras")
    parser.add_argument("--thermal-jitter-ms", type=float, default=0.0,
                        help="uniform random thermal stamp jitter in [-J, +J] ms")
    parser.add_argument("--seed", type=int, default=0, help="seed of the jitter (default: %(default)s)")
    parser.add_argument("--typestore", choices=sorted(TYPESTORES), default=DEFAULT_TYPESTORE,
                        help="message definitions to write (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT_BAG")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.rosbag.bag_errors import BagError
    from distillmatch_core.rosbag.make_bag import MakeBagConfig, make_bag
    from distillmatch_core.rosbag.topic_names import DEFAULT_RGB_TOPIC, DEFAULT_THERMAL_TOPIC

    suffix = "/compressed" if args.compressed else ""
    config = MakeBagConfig(
        rgb_dir=args.rgb_dir, thermal_dir=args.thermal_dir, output=args.out_bag, rate_hz=args.rate,
        storage=args.storage, thermal_encoding=args.thermal_encoding,
        rgb_topic=args.rgb_topic or DEFAULT_RGB_TOPIC + suffix,
        thermal_topic=args.thermal_topic or DEFAULT_THERMAL_TOPIC + suffix,
        rgb_frame_id=args.rgb_frame_id, thermal_frame_id=args.thermal_frame_id, compressed=args.compressed,
        rgb_calibration=args.rgb_calibration, thermal_calibration=args.thermal_calibration,
        start_time_s=args.start_time, thermal_offset_s=args.thermal_offset_ms / 1000.0,
        thermal_jitter_s=args.thermal_jitter_ms / 1000.0, seed=args.seed, typestore=args.typestore,
        overwrite=args.overwrite, progress=not args.no_progress)
    if config.thermal_jitter_s < 0:
        raise CliError("--thermal-jitter-ms must be >= 0")
    try:
        summary = make_bag(config)
    except BagError as exc:
        raise CliError(str(exc)) from None
    topics = ", ".join(f"{topic} ({count})" for topic, count in sorted(summary.topics.items()))
    print(f"wrote {summary.output}: {summary.frames} frames over {summary.duration_s:.2f} s; {topics}")
    return 0
