"""``distillmatch demo``: match the generated RGB / 16-bit thermal example with the shipped model."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from distillmatch_core.cli.errors import CliError
from distillmatch_core.cli.matcher_options import add_matcher_arguments, load_matcher_from_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="match the built-in RGB-thermal example and write the results",
                              description="Render the built-in RGB + 16-bit thermal street scene (known "
                                          "homography), match it and write the visualisation, the homography "
                                          "and its corner error against the ground truth.")
    p.add_argument("--out", type=Path, default=Path("distillmatch_demo"), help="output folder")
    add_matcher_arguments(p)
    p.set_defaults(func=run)


def corner_error(H_est: np.ndarray, H_true: np.ndarray, width: int, height: int) -> float:
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [width - 1, height - 1, 1], [0, height - 1, 1]], float)
    a = corners @ H_est.T
    b = corners @ H_true.T
    return float(np.mean(np.linalg.norm(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:], axis=1)))


def run(args: argparse.Namespace) -> int:
    from distillmatch_core.cli.matching_report import report_dict, summary_lines, visualization, write_json
    from distillmatch_core.demo_scene import render_demo_pair
    from distillmatch_core.image_io import write_image

    pair = render_demo_pair()
    matcher = load_matcher_from_args(args)
    result = matcher.match(pair.rgb, pair.thermal, "visible", "infrared")
    estimate = result.homography(3.0)
    print("demo: RGB 640x480 (8-bit colour) vs thermal 640x512 (16-bit radiometric counts)")
    print("\n".join(summary_lines(result, estimate)))
    extra = {"ground_truth_homography": pair.H_rgb_to_thermal.tolist()}
    if estimate is not None:
        err = corner_error(estimate.H, pair.H_rgb_to_thermal, 640, 480)
        extra["mean_corner_error_px"] = err
        print(f"mean corner error against the ground truth: {err:.2f} px")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_image(args.out / "rgb.png", pair.rgb)
        write_image(args.out / "thermal_16bit.png", pair.thermal)
        write_image(args.out / "matches.png", visualization(pair.rgb, pair.thermal, result, estimate))
        write_json(args.out / "matches.json", report_dict(result, estimate, extra))
        if estimate is not None:
            np.savetxt(args.out / "homography.txt", estimate.H, header="thermal = H @ rgb (pixels, row-major)")
    except OSError as exc:
        raise CliError(f"cannot write to {args.out}: {exc}") from None
    print(f"wrote {args.out}/matches.png, matches.json and homography.txt")
    return 0
