"""Relative pose protocol (paper Sec. 4.2): essential matrix from matches, AUC of the pose error.

Per pair: read both images, undistort them with their calibration (METU-VisTIR),
resize to the protocol's longer side (intrinsics follow), match, estimate the
essential matrix robustly and decompose it, and score the max of the rotation
and translation-direction angle errors. AUC at 5/10/20 degrees; a pair without
an estimate counts as an infinite error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from distillmatch_core.evaluation.auc import error_auc
from distillmatch_core.evaluation.case_iteration import iterate_cases
from distillmatch_core.evaluation.geometric_errors import relative_pose_error, symmetric_epipolar_distance
from distillmatch_core.evaluation.image_preparation import resize_longer_side, scale_intrinsics, undistort_image
from distillmatch_core.evaluation.match_record import MatchRecord
from distillmatch_core.evaluation.methods import MatchFunction, run_matcher
from distillmatch_core.evaluation.pair_selection import select_evenly
from distillmatch_core.evaluation.pose_pair_spec import PosePairSpec
from distillmatch_core.evaluation.summary_statistics import mean_or_nan, median_with_failures, nan_mean
from distillmatch_core.image_io import read_image
from distillmatch_core.robust_geometry import estimate_relative_pose

POSE_AUC_THRESHOLDS = (5.0, 10.0, 20.0)
# "ransac" is plain RANSAC as in the LoFTR evaluation code; "magsac" is USAC MAGSAC++.
ROBUST_ESTIMATORS = {"magsac": cv2.USAC_MAGSAC, "ransac": cv2.RANSAC}


@dataclass(frozen=True)
class PoseProtocolOptions:
    size: Optional[int] = 640  # longer image side (the paper's test resolution)
    ransac_threshold: float = 3.0  # px; the paper's value for METU-VisTIR
    estimator: str = "magsac"  # a key of ROBUST_ESTIMATORS
    auc_thresholds: Tuple[float, ...] = POSE_AUC_THRESHOLDS
    # Symmetric epipolar distance (normalised coordinates) under which a match is correct (LoFTR's).
    epipolar_threshold: float = 5e-4
    keep_images_per_dataset: int = 0


@dataclass
class PoseCase:
    dataset: str
    pair_id: str
    image0: np.ndarray  # (H0, W0[, C]) undistorted, resized
    image1: np.ndarray  # (H1, W1[, C])
    K0: np.ndarray  # (3, 3) intrinsics of image0 as evaluated
    K1: np.ndarray
    T_0to1: np.ndarray  # (4, 4)


@dataclass
class PosePairResult:
    dataset: str
    pair_id: str
    num_inliers: int
    rotation_error: float  # degrees; inf when no pose was found
    translation_error: float  # degrees (direction, sign-folded); inf when no pose was found
    match_seconds: float
    matches: MatchRecord

    @property
    def pose_error(self) -> float:
        return max(self.rotation_error, self.translation_error)


def load_pose_case(spec: PosePairSpec, size: Optional[int] = 640) -> PoseCase:
    """Read, undistort and resize both images of a pair; the intrinsics follow each step."""
    def prepare(path, K, distortion):
        image, K_undistorted = undistort_image(read_image(path), K, distortion)
        image, scale = resize_longer_side(image, size)
        return image, scale_intrinsics(K_undistorted, scale)

    image0, K0 = prepare(spec.image0_path, spec.K0, spec.distortion0)
    image1, K1 = prepare(spec.image1_path, spec.K1, spec.distortion1)
    return PoseCase(spec.dataset, spec.pair_id, image0, image1, K0, K1, np.asarray(spec.T_0to1, np.float64))


def evaluate_pose_case(match_fn: MatchFunction, case: PoseCase, options: PoseProtocolOptions,
                       keep_images: bool = False) -> PosePairResult:
    if options.estimator not in ROBUST_ESTIMATORS:
        raise ValueError(f"unknown estimator {options.estimator!r}; use one of {sorted(ROBUST_ESTIMATORS)}")
    matched = run_matcher(match_fn, case.image0, case.image1)
    estimate = estimate_relative_pose(matched.keypoints0, matched.keypoints1, case.K0, case.K1,
                                      options.ransac_threshold, method=ROBUST_ESTIMATORS[options.estimator])
    if estimate is None:
        rotation_error = translation_error = float("inf")
        num_inliers = 0
    else:
        rotation_error, translation_error = relative_pose_error(estimate.R, estimate.t, case.T_0to1)
        num_inliers = estimate.num_inliers
    epipolar = symmetric_epipolar_distance(matched.keypoints0, matched.keypoints1, case.K0, case.K1, case.T_0to1)
    record = MatchRecord(matched.keypoints0, matched.keypoints1, epipolar < options.epipolar_threshold,
                         case.image0 if keep_images else None, case.image1 if keep_images else None)
    return PosePairResult(case.dataset, case.pair_id, num_inliers, rotation_error, translation_error,
                          matched.seconds, record)


def run_pose_protocol(match_fn: MatchFunction, pairs: Iterable[PosePairSpec],
                      options: PoseProtocolOptions = PoseProtocolOptions(), progress: bool = False,
                      description: str = "pose") -> List[PosePairResult]:
    cases = iterate_cases(pairs, lambda spec: load_pose_case(spec, options.size), options.keep_images_per_dataset,
                          progress, description)
    return [evaluate_pose_case(match_fn, case, options, keep) for case, keep in cases]


def summarize_pose(results: Sequence[PosePairResult],
                   auc_thresholds: Sequence[float] = POSE_AUC_THRESHOLDS) -> Dict[str, float]:
    """Flat metrics dict: ``auc@{t}deg`` (percent), failures, medians, precision and time."""
    errors = [r.pose_error for r in results]
    summary: Dict[str, float] = {"pairs": len(results)}
    for threshold, auc in error_auc(errors, auc_thresholds).items():
        summary[f"auc@{threshold:g}deg"] = auc
    summary["failures"] = int(sum(not np.isfinite(e) for e in errors))
    summary["median_rotation_error_deg"] = median_with_failures([r.rotation_error for r in results])
    summary["median_translation_error_deg"] = median_with_failures([r.translation_error for r in results])
    summary["median_matches"] = median_with_failures([r.matches.num_matches for r in results])
    summary["median_inliers"] = median_with_failures([r.num_inliers for r in results])
    summary["precision_percent"] = 100.0 * nan_mean([r.matches.precision for r in results])
    summary["mean_time_ms"] = 1000.0 * mean_or_nan([r.match_seconds for r in results])
    return summary


def evaluate_pose(match_fn: MatchFunction, pairs: Sequence[PosePairSpec], size: Optional[int] = 640,
                  limit: Optional[int] = None, progress: bool = True) -> Dict[str, float]:
    """Pose metrics of one matcher on index pairs (see ``pose_index.load_pose_index``)."""
    options = PoseProtocolOptions(size=size)
    results = run_pose_protocol(match_fn, select_evenly(pairs, limit), options, progress)
    return summarize_pose(results, options.auc_thresholds)
