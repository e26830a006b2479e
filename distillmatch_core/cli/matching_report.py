"""What ``match`` and ``demo`` print and write for one matched pair: summary, JSON, visualisation."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from distillmatch_core.match_drawing import checkerboard_blend, confidence_colors, put_caption, render_matches
from distillmatch_core.match_result import MatchResult
from distillmatch_core.robust_geometry import HomographyEstimate


def summary_lines(result: MatchResult, estimate: Optional[HomographyEstimate]) -> list:
    lines = [f"matches: {len(result)}"]
    if estimate is None:
        lines.append("homography: not found (too few consistent matches)")
    else:
        lines.append(f"inliers: {estimate.num_inliers} ({100.0 * estimate.num_inliers / max(1, len(result)):.0f} %)")
        lines.append("homography image0 -> image1:")
        lines += ["  " + "  ".join(f"{v: .6g}" for v in row) for row in estimate.H]
    t = result.timings
    lines.append(f"time: {1000 * t.get('total', 0):.0f} ms (network {1000 * t.get('network', 0):.0f} ms)")
    return lines


def report_dict(result: MatchResult, estimate: Optional[HomographyEstimate], extra: Dict[str, Any] = None):
    data = result.to_dict()
    data["homography"] = None if estimate is None else estimate.H.tolist()
    data["inliers"] = None if estimate is None else estimate.inliers.tolist()
    data.update(extra or {})
    return data


def write_json(path: Path, data: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def visualization(image0: np.ndarray, image1: np.ndarray, result: MatchResult,
                  estimate: Optional[HomographyEstimate]) -> np.ndarray:
    """Top: matches coloured by confidence; bottom: image1 warped onto image0 in a checkerboard."""
    n_inl = 0 if estimate is None else estimate.num_inliers
    top = render_matches(image0, image1, result.keypoints0, result.keypoints1,
                         confidence_colors(result.confidence),
                         caption=f"{len(result)} matches, {n_inl} inliers (colour = confidence)")
    if estimate is None:
        return top
    blend = put_caption(checkerboard_blend(image0, image1, np.linalg.inv(estimate.H)),
                        "image1 warped onto image0 (checkerboard)")
    canvas = np.zeros((top.shape[0] + blend.shape[0], max(top.shape[1], blend.shape[1]), 3), np.uint8)
    canvas[:top.shape[0], :top.shape[1]] = top
    canvas[top.shape[0]:, :blend.shape[1]] = blend
    return canvas
