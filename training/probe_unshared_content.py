#!/usr/bin/env python3
"""How a model copes when one image shows content the other lacks, as between cameras of different field of view.

    python training/probe_unshared_content.py --weights default runs/lite_fov_from_p9/packaged.pt --limit 57

Each pair of the split gets the homography protocol's random homography of ``--seed`` with its scale term fixed
to 1, and is matched under these conditions (``--keep`` is the central fraction of each side that stays):

  protocol, scale 1           the pair as the protocol makes it
  infrared border black       image 1 black outside its centre: image 0 shows content image 1 lacks
  visible border black        image 0 black outside its centre: image 1 shows content image 0 lacks
  only shared content         image 1's border black, and image 0 black wherever image 1 is
  infrared 1.5x               the scale term 1.5 instead (`distillmatch eval homography --scale 1.5`): a thermal
                              camera of narrower field of view; image 0's border has no counterpart
  infrared 1.5x, unseen black the same with image 0 black where image 1 does not see
  infrared 1.5x, shared view +M
                              the same matched inside the box around image 1's footprint in image 0, grown by
                              M of its size on each side (``Matcher.match(roi0=...)``, as the ROS node does with
                              the cameras' intrinsics, ``common_field_of_view``), for each M of ``--margins``

Black borders without unshared content ("only shared content") are the control: a model that loses accuracy in
the two "border black" rows but not there is thrown by unshared content, not by the borders. Prints AUC@10/@20 px
(mean corner error, as the protocol) and the share of matches within 5 px of the truth, per condition and model.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np

CONDITIONS = ("protocol, scale 1", "infrared border black", "visible border black", "only shared content",
              "infrared 1.5x", "infrared 1.5x, unseen black")


def shared_view_condition(margin: float) -> str:
    return f"infrared 1.5x, shared view +{100 * margin:g} %"


def central_mask(height: int, width: int, keep: float) -> np.ndarray:
    """(H, W) bool: True inside the central ``keep`` fraction of each side."""
    kept_h, kept_w = int(round(height * keep)), int(round(width * keep))
    y0, x0 = (height - kept_h) // 2, (width - kept_w) // 2
    mask = np.zeros((height, width), bool)
    mask[y0:y0 + kept_h, x0:x0 + kept_w] = True
    return mask


def seen_in_image0(mask1: np.ndarray, H_true: np.ndarray) -> np.ndarray:
    """(H, W) bool of image 0: pixels whose counterpart under ``H_true`` (image 0 -> image 1) lies in ``mask1``."""
    from distillmatch_core.evaluation.random_homography import warp_image
    return warp_image(mask1.astype(np.uint8) * 255, np.linalg.inv(H_true)) > 127


def blacked(image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = image.copy()
    out[~keep] = 0
    return out


def true_footprint_region(case, margin: float):
    """The box of image 0 around image 1's footprint under ``case.H_true``, grown by ``margin``; None if whole."""
    from distillmatch_core.common_field_of_view import footprint_region
    h0, w0 = case.image0.shape[:2]
    h1, w1 = case.image1.shape[:2]
    return footprint_region(np.linalg.inv(case.H_true), (w0, h0), (w1, h1), margin)


def condition_cases(scale1, magnified, keep: float, margins=()) -> Dict[str, Tuple[object, object]]:
    """Two protocol cases of one pair (scale term 1 and 1.5) -> (``WarpedPair``, region of image 0 to match in or
    None) per condition."""
    h, w = scale1.image0.shape[:2]
    centre = central_mask(h, w, keep)
    full = np.ones((h, w), bool)

    def case(base, keep0, keep1):
        return dataclasses.replace(base, image0=blacked(base.image0, keep0), image1=blacked(base.image1, keep1))

    cases = {
        "protocol, scale 1": scale1,
        "infrared border black": case(scale1, full, centre),
        "visible border black": case(scale1, centre, full),
        "only shared content": case(scale1, seen_in_image0(centre, scale1.H_true), centre),
        "infrared 1.5x": magnified,
        "infrared 1.5x, unseen black": case(magnified, seen_in_image0(full, magnified.H_true), full),
    }
    out = {name: (c, None) for name, c in cases.items()}
    for margin in margins:
        out[shared_view_condition(margin)] = (magnified, true_footprint_region(magnified, margin))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", default=["default"], help="checkpoints (.pt) or 'default'")
    parser.add_argument("--size", type=int, default=None, help="network longer side (default: each model's)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, default=None, help="pairs, spread evenly over the data sets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=float, default=2 / 3, help="central fraction of each side kept")
    parser.add_argument("--margins", default="0,0.05,0.1",
                        help="comma-separated margins of the shared-view rows ('' for none)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from distillmatch_core.data.splits import load_split
    from distillmatch_core.evaluation.distillmatch_method import load_matcher
    from distillmatch_core.evaluation.homography_protocol import (HomographyProtocolOptions, evaluate_warped_pair,
                                                                  summarize_homography)
    from distillmatch_core.evaluation.methods import MethodError
    from distillmatch_core.evaluation.pair_selection import select_evenly
    from distillmatch_core.evaluation.warped_pairs import prepare_warped_pair
    from distillmatch_core.image_io import ImageReadError

    torch.set_num_threads(args.threads)
    try:
        if not 0.1 <= args.keep < 1.0:
            raise ValueError(f"--keep must be in [0.1, 1), got {args.keep}")
        margins = [float(m) for m in args.margins.split(",") if m.strip()]
        if any(m < 0 for m in margins):
            raise ValueError(f"--margins must be >= 0, got {args.margins}")
        matchers = {w: load_matcher(w, None, "cpu", args.size) for w in args.weights}
        pairs = select_evenly(load_split(args.split), args.limit)
    except (MethodError, FileNotFoundError, ValueError) as exc:
        print(f"probe_unshared_content: error: {exc}", file=sys.stderr)
        return 2
    options = HomographyProtocolOptions(seed=args.seed)
    results: Dict[str, Dict[str, List]] = defaultdict(lambda: defaultdict(list))
    for pair in tqdm(pairs, desc="pairs", unit="pair", dynamic_ncols=True):
        try:
            cases = condition_cases(prepare_warped_pair(pair, 640, args.seed, scale=1.0),
                                    prepare_warped_pair(pair, 640, args.seed, scale=1.5), args.keep, margins)
        except ImageReadError as exc:
            print(f"skipping {pair.key}: {exc}", file=sys.stderr)
            continue
        for weights, matcher in matchers.items():
            for condition, (case, region) in cases.items():
                def match(image0, image1, region=region):
                    r = matcher.match(image0, image1, roi0=region)
                    return r.keypoints0, r.keypoints1

                results[weights][condition].append(evaluate_warped_pair(match, case, options))
    print(f"{len(pairs)} {args.split} pairs, seed {args.seed}, central {args.keep:.2f} of each side kept; "
          f"AUC@10 / AUC@20 px, % of matches within 5 px")
    conditions = list(CONDITIONS) + [shared_view_condition(m) for m in margins]
    width = max(len(c) for c in conditions)
    print(f"{'condition':{width}s}  " + "  ".join(f"{w[-34:]:>34s}" for w in args.weights))
    for condition in conditions:
        cells = []
        for weights in args.weights:
            s = summarize_homography(results[weights][condition])
            cells.append(f"{s['auc@10px']:6.1f} / {s['auc@20px']:5.1f}, {s['precision_percent']:5.1f} %")
        print(f"{condition:{width}s}  " + "  ".join(f"{c:>34s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
