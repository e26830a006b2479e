"""Benchmarks of the paper (Sec. 4.2-4.4): homography, relative pose and zero-shot protocols.

The training loop's validation calls ``evaluate_homography`` (and can prepare
the warped cases once with ``prepare_warped_pairs``); training augmentation
reuses ``sample_homography``. None of these import matplotlib or torch.
"""
from distillmatch_core.evaluation.auc import error_auc
from distillmatch_core.evaluation.homography_protocol import evaluate_homography
from distillmatch_core.evaluation.methods import MatchFunction
from distillmatch_core.evaluation.pose_protocol import evaluate_pose
from distillmatch_core.evaluation.random_homography import sample_homography, warp_image
from distillmatch_core.evaluation.warped_pairs import prepare_warped_pairs
from distillmatch_core.evaluation.zero_shot_protocol import evaluate_zero_shot

__all__ = ["MatchFunction", "error_auc", "evaluate_homography", "evaluate_pose", "evaluate_zero_shot",
           "prepare_warped_pairs", "sample_homography", "warp_image"]
