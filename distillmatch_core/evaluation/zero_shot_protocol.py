"""Zero-shot protocol (paper Sec. 4.4) for pairs of other modalities under a known transform.

The pairs are pixel-aligned (any two modalities, same format as the RGB-thermal
sets); image 1 is warped by a known random homography exactly as in the
homography protocol (``strength=0`` keeps them aligned, i.e. the identity).
Each match's residual is its distance to the ground-truth transfer of its
image-0 point: NCM counts residuals < 5 px, RMSE is taken over those correct
matches. Nothing is fitted, so the numbers judge the raw matches.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from distillmatch_core.data.splits import AlignedPair
from distillmatch_core.evaluation.case_iteration import iterate_cases
from distillmatch_core.evaluation.geometric_errors import transfer_residuals
from distillmatch_core.evaluation.match_record import MatchRecord
from distillmatch_core.evaluation.methods import MatchFunction, run_matcher
from distillmatch_core.evaluation.pair_selection import select_evenly
from distillmatch_core.evaluation.summary_statistics import mean_or_nan, median_with_failures, nan_mean
from distillmatch_core.evaluation.warped_pairs import WarpedPair, as_warped_pair


@dataclass(frozen=True)
class ZeroShotProtocolOptions:
    size: Optional[int] = 640
    seed: int = 0
    strength: float = 1.0
    scale: Optional[float] = None  # the homography's scale term fixed to this (warped_pairs.prepare_warped_pair)
    correct_threshold: float = 5.0  # px, the paper's NCM criterion
    keep_images_per_dataset: int = 0


@dataclass
class ZeroShotPairResult:
    dataset: str
    pair_id: str
    residuals: np.ndarray  # (N,) px, per match, under the true transform
    match_seconds: float
    matches: MatchRecord

    @property
    def num_correct(self) -> int:
        return int(self.matches.correct.sum())

    @property
    def rmse(self) -> float:
        """RMSE (px) of the correct matches; NaN without any."""
        correct = self.residuals[self.matches.correct]
        return float(np.sqrt(np.mean(correct ** 2))) if correct.size else float("nan")


def run_zero_shot_protocol(match_fn: MatchFunction, pairs: Iterable[Union[AlignedPair, WarpedPair]],
                           options: ZeroShotProtocolOptions = ZeroShotProtocolOptions(),
                           progress: bool = False, description: str = "zero-shot") -> List[ZeroShotPairResult]:
    results = []
    prepare = functools.partial(as_warped_pair, size=options.size, seed=options.seed, strength=options.strength,
                                scale=options.scale)
    for case, keep in iterate_cases(pairs, prepare, options.keep_images_per_dataset, progress, description):
        matched = run_matcher(match_fn, case.image0, case.image1)
        residuals = transfer_residuals(case.H_true, matched.keypoints0, matched.keypoints1)
        record = MatchRecord(matched.keypoints0, matched.keypoints1, residuals < options.correct_threshold,
                             case.image0 if keep else None, case.image1 if keep else None)
        results.append(ZeroShotPairResult(case.dataset, case.pair_id, residuals, matched.seconds, record))
    return results


def summarize_zero_shot(results: Sequence[ZeroShotPairResult]) -> Dict[str, float]:
    """NCM (mean and median per pair), mean per-pair RMSE of correct matches, and context figures."""
    ncm = [r.num_correct for r in results]
    return {
        "pairs": len(results),
        "mean_ncm": mean_or_nan(ncm),
        "median_ncm": median_with_failures(ncm),
        # Pairs without a correct match have no RMSE; they are counted instead of averaged.
        "mean_rmse_px": nan_mean([r.rmse for r in results]),
        "pairs_without_correct": int(sum(n == 0 for n in ncm)),
        "median_matches": median_with_failures([r.matches.num_matches for r in results]),
        "precision_percent": 100.0 * nan_mean([r.matches.precision for r in results]),
        "mean_time_ms": 1000.0 * mean_or_nan([r.match_seconds for r in results]),
    }


def evaluate_zero_shot(match_fn: MatchFunction, pairs: Sequence[Union[AlignedPair, WarpedPair]],
                       size: Optional[int] = 640, seed: int = 0, limit: Optional[int] = None,
                       progress: bool = True) -> Dict[str, float]:
    """Zero-shot NCM / RMSE of one matcher on aligned pairs of any two modalities."""
    options = ZeroShotProtocolOptions(size=size, seed=seed)
    return summarize_zero_shot(run_zero_shot_protocol(match_fn, select_evenly(pairs, limit), options, progress))
