"""Homography protocol (paper Sec. 4.3) on pixel-aligned cross-modal pairs.

Per pair: warp the infrared image by a known random homography, match it
against the visible image, fit a homography with USAC MAGSAC++, and measure
the mean reprojection error of the four image corners. AUC at 3/5/10/20 px
covers both threshold sets of the paper (3/5/10 for UAV, 5/10/20 otherwise).
A pair without an estimate counts as an infinite error.

``evaluate_homography`` is the entry point of the training loop's validation;
it imports neither matplotlib nor torch.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from distillmatch_core.data.splits import AlignedPair
from distillmatch_core.evaluation.auc import error_auc
from distillmatch_core.evaluation.case_iteration import iterate_cases
from distillmatch_core.evaluation.geometric_errors import mean_corner_error, transfer_residuals
from distillmatch_core.evaluation.match_record import MatchRecord
from distillmatch_core.evaluation.methods import MatchFunction, run_matcher
from distillmatch_core.evaluation.pair_selection import select_evenly
from distillmatch_core.evaluation.summary_statistics import median_with_failures, mean_or_nan, nan_mean
from distillmatch_core.evaluation.warped_pairs import WarpedPair, as_warped_pair
from distillmatch_core.robust_geometry import estimate_homography

HOMOGRAPHY_AUC_THRESHOLDS = (3.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class HomographyProtocolOptions:
    size: Optional[int] = 640  # longer image side; None keeps the original resolution
    seed: int = 0
    strength: float = 1.0  # scales the paper's homography ranges
    scale: Optional[float] = None  # the homography's scale term fixed to this (warped_pairs.prepare_warped_pair)
    ransac_threshold: float = 3.0  # px, MAGSAC++
    auc_thresholds: Tuple[float, ...] = HOMOGRAPHY_AUC_THRESHOLDS
    correct_threshold: float = 5.0  # px under the true homography (the paper's NCM criterion)
    keep_images_per_dataset: int = 0  # pairs per dataset whose images are kept for visualisation


@dataclass
class HomographyPairResult:
    dataset: str
    pair_id: str
    num_inliers: int
    corner_error: float  # mean corner error in px; inf when no homography was found
    match_seconds: float
    matches: MatchRecord


def evaluate_warped_pair(match_fn: MatchFunction, case: WarpedPair, options: HomographyProtocolOptions,
                         keep_images: bool = False) -> HomographyPairResult:
    matched = run_matcher(match_fn, case.image0, case.image1)
    height, width = case.image0.shape[:2]
    estimate = estimate_homography(matched.keypoints0, matched.keypoints1, options.ransac_threshold)
    if estimate is None:
        corner_error, num_inliers = float("inf"), 0
    else:
        corner_error = mean_corner_error(estimate.H, case.H_true, width, height)
        num_inliers = estimate.num_inliers
    correct = transfer_residuals(case.H_true, matched.keypoints0, matched.keypoints1) < options.correct_threshold
    record = MatchRecord(matched.keypoints0, matched.keypoints1, correct,
                         case.image0 if keep_images else None, case.image1 if keep_images else None)
    return HomographyPairResult(case.dataset, case.pair_id, num_inliers, corner_error, matched.seconds, record)


def run_homography_protocol(match_fn: MatchFunction, pairs: Iterable[Union[AlignedPair, WarpedPair]],
                            options: HomographyProtocolOptions = HomographyProtocolOptions(),
                            progress: bool = False, description: str = "homography"
                            ) -> List[HomographyPairResult]:
    """Per-pair results; ``pairs`` may be prepared ``WarpedPair`` cases (then size/seed/strength/scale are theirs)."""
    prepare = functools.partial(as_warped_pair, size=options.size, seed=options.seed, strength=options.strength,
                                scale=options.scale)
    cases = iterate_cases(pairs, prepare, options.keep_images_per_dataset, progress, description)
    return [evaluate_warped_pair(match_fn, case, options, keep) for case, keep in cases]


def summarize_homography(results: Sequence[HomographyPairResult],
                         auc_thresholds: Sequence[float] = HOMOGRAPHY_AUC_THRESHOLDS) -> Dict[str, float]:
    """Flat metrics dict: ``auc@{t}px`` (percent), failures, medians, precision and time."""
    errors = [r.corner_error for r in results]
    summary: Dict[str, float] = {"pairs": len(results)}
    for threshold, auc in error_auc(errors, auc_thresholds).items():
        summary[f"auc@{threshold:g}px"] = auc
    summary["failures"] = int(sum(not np.isfinite(e) for e in errors))
    summary["median_corner_error_px"] = median_with_failures(errors)
    summary["median_matches"] = median_with_failures([r.matches.num_matches for r in results])
    summary["median_inliers"] = median_with_failures([r.num_inliers for r in results])
    summary["precision_percent"] = 100.0 * nan_mean([r.matches.precision for r in results])
    summary["mean_time_ms"] = 1000.0 * mean_or_nan([r.match_seconds for r in results])
    return summary


def evaluate_homography(match_fn: MatchFunction, pairs: Sequence[Union[AlignedPair, WarpedPair]],
                        size: Optional[int] = 640, seed: int = 0, limit: Optional[int] = None,
                        progress: bool = True) -> Dict[str, float]:
    """Homography metrics of one matcher on aligned pairs (or on prepared ``WarpedPair`` cases).

    ``limit`` evaluates that many pairs spread evenly over ``pairs``. Returns e.g.
    ``{"pairs": 57, "auc@3px": ..., "auc@5px": ..., "auc@10px": ..., "auc@20px": ..., "failures": ...,
    "median_corner_error_px": ..., "median_matches": ..., "median_inliers": ...,
    "precision_percent": ..., "mean_time_ms": ...}``.
    """
    options = HomographyProtocolOptions(size=size, seed=seed)
    results = run_homography_protocol(match_fn, select_evenly(pairs, limit), options, progress)
    return summarize_homography(results, options.auc_thresholds)
