"""``distillmatch match IMG0 IMG1``: correspondences, homography, inliers and timing for one pair."""
from __future__ import annotations

import argparse
from pathlib import Path

from distillmatch_core.cli.errors import CliError
from distillmatch_core.cli.matcher_options import add_matcher_arguments, load_matcher_from_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("match", help="match two images (RGB and thermal) and fit a homography",
                              description="Match IMG0 (reference, usually RGB) with IMG1 (usually thermal).")
    p.add_argument("image0", type=Path)
    p.add_argument("image1", type=Path)
    p.add_argument("--out", type=Path, default=None, help="write the visualisation PNG here")
    p.add_argument("--json", type=Path, default=None, help="write matches, homography and inliers as JSON")
    p.add_argument("--modality0", default="visible", help="visible | infrared (default visible)")
    p.add_argument("--modality1", default="infrared", help="visible | infrared (default infrared)")
    p.add_argument("--ransac-threshold", type=float, default=3.0, help="MAGSAC++ threshold in pixels")
    for k in (0, 1):
        p.add_argument(f"--roi{k}", type=parse_region, default=None, metavar="X,Y,W,H",
                       help=f"match only inside this region of IMG{k} (pixels), e.g. the part of the wider image "
                            "that the other camera sees; keypoints stay in whole-image pixels")
    add_matcher_arguments(p)
    p.set_defaults(func=run)


def parse_region(text: str):
    """"X,Y,W,H" -> (x, y, width, height); whether it lies inside the image is checked by ``Matcher.match``."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H as four integers, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.cli.matching_report import report_dict, summary_lines, visualization, write_json
    from distillmatch_core.image_io import ImageReadError, read_image, write_image

    try:
        image0 = read_image(args.image0)
        image1 = read_image(args.image1)
    except ImageReadError as exc:
        raise CliError(str(exc)) from None
    matcher = load_matcher_from_args(args)
    try:
        result = matcher.match(image0, image1, args.modality0, args.modality1, roi0=args.roi0, roi1=args.roi1)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    estimate = result.homography(args.ransac_threshold)
    print("\n".join(summary_lines(result, estimate)))
    try:
        if args.json:
            write_json(args.json, report_dict(result, estimate))
            print(f"wrote {args.json}")
        if args.out:
            write_image(args.out, visualization(image0, image1, result, estimate))
            print(f"wrote {args.out}")
    except OSError as exc:
        raise CliError(f"cannot write output: {exc}") from None
    return 0
