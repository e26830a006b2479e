"""Per-pair records of a bag evaluation and the statistics, JSON and CSV made from them.

Homography quality without ground truth is judged by stability: on a rigid
rig the thermal->RGB homography is constant, so the drift of the projected
thermal-image corners between consecutive frames (RGB pixels) should stay
small. With a reference homography from rig calibration, the corner error
against it is reported too. Both use the mean distance of the four thermal
corners, so the numbers are pixels in the RGB image.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from distillmatch_core.ros_interface.homography_filter import mean_corner_distance


@dataclass
class PairRecord:
    index: int
    rgb_stamp_ns: int
    thermal_stamp_ns: int
    rgb_log_time_ns: int  # record time of the RGB message in the input bag (= output bag timestamp)
    num_matches: int = 0
    num_inliers: int = 0
    match_time_s: float = 0.0
    processing_time_s: float = 0.0  # decode + match + geometry + messages
    homography: Optional[np.ndarray] = None  # (3, 3) published (filtered) thermal -> RGB
    homography_estimate: Optional[np.ndarray] = None  # (3, 3) this pair's own fit
    thermal_size: Optional[Tuple[int, int]] = None  # (w, h)
    corner_drift_px: Optional[float] = None  # own fit vs. previous pair's own fit
    published_corner_drift_px: Optional[float] = None  # published vs. previous published
    reference_corner_error_px: Optional[float] = None  # published vs. reference
    has_relative_pose: bool = False
    error: str = ""

    @property
    def stamp_difference_s(self) -> float:
        return (self.thermal_stamp_ns - self.rgb_stamp_ns) / 1e9

    @property
    def inlier_ratio(self) -> Optional[float]:
        return self.num_inliers / self.num_matches if self.num_matches else None


def fill_geometry_metrics(records: Sequence[PairRecord], reference: Optional[np.ndarray]) -> None:
    """Sets corner drift (between consecutive pairs that both have a homography) and reference error."""
    previous_estimate: Optional[PairRecord] = None
    previous_published: Optional[PairRecord] = None
    for record in records:
        if record.thermal_size is None:
            continue
        w, h = record.thermal_size
        if record.homography_estimate is not None:
            if previous_estimate is not None and previous_estimate.thermal_size == record.thermal_size:
                record.corner_drift_px = mean_corner_distance(record.homography_estimate,
                                                              previous_estimate.homography_estimate, w, h)
            previous_estimate = record
        if record.homography is not None:
            if previous_published is not None and previous_published.thermal_size == record.thermal_size:
                record.published_corner_drift_px = mean_corner_distance(record.homography,
                                                                        previous_published.homography, w, h)
            previous_published = record
            if reference is not None:
                record.reference_corner_error_px = mean_corner_distance(record.homography, reference, w, h)


def summarize(values: Iterable[Optional[float]]) -> Dict[str, Any]:
    """Count, mean, std, min, percentiles and max of the finite values (None when there are none)."""
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None, "p5": None, "median": None, "p95": None,
                "max": None}
    p5, median, p95 = np.percentile(data, [5, 50, 95])
    return {"count": int(data.size), "mean": float(data.mean()), "std": float(data.std()),
            "min": float(data.min()), "p5": float(p5), "median": float(median), "p95": float(p95),
            "max": float(data.max())}


def build_summary(records: Sequence[PairRecord]) -> Dict[str, Any]:
    ok = [r for r in records if not r.error]
    return {
        "matches": summarize(r.num_matches for r in ok),
        "inliers": summarize(r.num_inliers for r in ok),
        "inlier_ratio": summarize(r.inlier_ratio for r in ok),
        "match_time_s": summarize(r.match_time_s for r in ok),
        "processing_time_s": summarize(r.processing_time_s for r in ok),
        "stamp_difference_s": summarize(r.stamp_difference_s for r in records),
        "homography_stability": {
            "corner_drift_px": summarize(r.corner_drift_px for r in records),
            "published_corner_drift_px": summarize(r.published_corner_drift_px for r in records),
        },
    }


def _matrix_or_none(H: Optional[np.ndarray]) -> Optional[List[List[float]]]:
    return None if H is None else np.asarray(H, dtype=np.float64).tolist()


CSV_COLUMNS = ["pair_index", "rgb_stamp_ns", "thermal_stamp_ns", "stamp_difference_s", "num_matches",
               "num_inliers", "inlier_ratio", "match_time_s", "processing_time_s", "homography_ok",
               *[f"h{r}{c}" for r in range(3) for c in range(3)], "corner_drift_px", "published_corner_drift_px",
               "reference_corner_error_px", "relative_pose", "error"]


def _csv_number(value: Optional[float], digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def write_pairs_csv(records: Sequence[PairRecord], path: Path) -> None:
    """One row per pair; h00..h22 are the published thermal -> RGB homography (empty without one)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            h_values = [""] * 9 if r.homography is None else [f"{v:.10g}" for v in np.ravel(r.homography)]
            writer.writerow([r.index, r.rgb_stamp_ns, r.thermal_stamp_ns, f"{r.stamp_difference_s:.9f}",
                             r.num_matches, r.num_inliers, _csv_number(r.inlier_ratio),
                             _csv_number(r.match_time_s), _csv_number(r.processing_time_s),
                             int(r.homography is not None), *h_values, _csv_number(r.corner_drift_px),
                             _csv_number(r.published_corner_drift_px), _csv_number(r.reference_corner_error_px),
                             int(r.has_relative_pose), r.error])


def read_pairs_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_report_json(report: Dict[str, Any], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=2, allow_nan=False, default=_json_default)
        fh.write("\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
