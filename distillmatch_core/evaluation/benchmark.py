"""From per-pair protocol results of several methods to one ``BenchmarkReport``.

A ``ProtocolDefinition`` says how a protocol's per-pair results become table
rows (per method x dataset, plus an "all" row when there are several datasets),
per-pair CSV rows and error curves; the CLI runs the protocol and hands the
results here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Sequence

import numpy as np

from distillmatch_core.evaluation.homography_protocol import HomographyPairResult, summarize_homography
from distillmatch_core.evaluation.pose_protocol import PosePairResult, summarize_pose
from distillmatch_core.evaluation.reporting import BenchmarkReport, CurveAxis, TableColumn, Visualization
from distillmatch_core.evaluation.zero_shot_protocol import ZeroShotPairResult, summarize_zero_shot

ALL_DATASETS = "all"


@dataclass(frozen=True)
class ProtocolDefinition:
    title: str
    columns: Sequence[TableColumn]
    curve_axis: CurveAxis
    summarize: Callable[[Sequence[Any]], Dict[str, float]]
    curve_values: Callable[[Sequence[Any]], np.ndarray]  # the errors whose cumulative curve is plotted
    pair_row: Callable[[Any], Dict[str, Any]]


_LEAD = [TableColumn("method", "method", "{}"), TableColumn("dataset", "dataset", "{}"),
         TableColumn("pairs", "pairs", "{:d}")]
_TAIL = [TableColumn("precision_percent", "precision %", "{:.1f}"), TableColumn("mean_time_ms", "ms/pair", "{:.0f}")]


def _homography_pair_row(r: HomographyPairResult) -> Dict[str, Any]:
    return {"dataset": r.dataset, "pair_id": r.pair_id, "corner_error_px": r.corner_error,
            "matches": r.matches.num_matches, "inliers": r.num_inliers, "precision": r.matches.precision,
            "match_ms": 1000.0 * r.match_seconds}


def _pose_pair_row(r: PosePairResult) -> Dict[str, Any]:
    return {"dataset": r.dataset, "pair_id": r.pair_id, "pose_error_deg": r.pose_error,
            "rotation_error_deg": r.rotation_error, "translation_error_deg": r.translation_error,
            "matches": r.matches.num_matches, "inliers": r.num_inliers, "precision": r.matches.precision,
            "match_ms": 1000.0 * r.match_seconds}


def _zero_shot_pair_row(r: ZeroShotPairResult) -> Dict[str, Any]:
    return {"dataset": r.dataset, "pair_id": r.pair_id, "ncm": r.num_correct, "rmse_px": r.rmse,
            "matches": r.matches.num_matches, "precision": r.matches.precision,
            "match_ms": 1000.0 * r.match_seconds}


HOMOGRAPHY = ProtocolDefinition(
    title="Homography estimation",
    columns=_LEAD + [TableColumn("auc@3px", "AUC@3px"), TableColumn("auc@5px", "AUC@5px"),
                     TableColumn("auc@10px", "AUC@10px"), TableColumn("auc@20px", "AUC@20px"),
                     TableColumn("failures", "failures", "{:d}"),
                     TableColumn("median_corner_error_px", "median err px", "{:.1f}"),
                     TableColumn("median_matches", "matches", "{:.0f}"),
                     TableColumn("median_inliers", "inliers", "{:.0f}")] + _TAIL,
    curve_axis=CurveAxis("mean corner error (px)", 20.0),
    summarize=summarize_homography,
    curve_values=lambda results: np.array([r.corner_error for r in results], dtype=np.float64),
    pair_row=_homography_pair_row,
)

POSE = ProtocolDefinition(
    title="Relative pose estimation",
    columns=_LEAD + [TableColumn("auc@5deg", "AUC@5°"), TableColumn("auc@10deg", "AUC@10°"),
                     TableColumn("auc@20deg", "AUC@20°"), TableColumn("failures", "failures", "{:d}"),
                     TableColumn("median_rotation_error_deg", "median R err °", "{:.2f}"),
                     TableColumn("median_translation_error_deg", "median t err °", "{:.2f}"),
                     TableColumn("median_matches", "matches", "{:.0f}"),
                     TableColumn("median_inliers", "inliers", "{:.0f}")] + _TAIL,
    curve_axis=CurveAxis("pose error, max(R, t) (degrees)", 20.0),
    summarize=summarize_pose,
    curve_values=lambda results: np.array([r.pose_error for r in results], dtype=np.float64),
    pair_row=_pose_pair_row,
)

ZERO_SHOT = ProtocolDefinition(
    title="Zero-shot matching under a known transform",
    columns=_LEAD + [TableColumn("mean_ncm", "mean NCM", "{:.1f}"), TableColumn("median_ncm", "median NCM", "{:.0f}"),
                     TableColumn("mean_rmse_px", "RMSE px", "{:.2f}"),
                     TableColumn("pairs_without_correct", "pairs w/o correct", "{:d}"),
                     TableColumn("median_matches", "matches", "{:.0f}")] + _TAIL,
    curve_axis=CurveAxis("match residual under the true transform (px)", 10.0),
    summarize=summarize_zero_shot,
    curve_values=lambda results: (np.concatenate([r.residuals for r in results]) if results else np.zeros(0)),
    pair_row=_zero_shot_pair_row,
)


def _by_dataset(results: Sequence[Any]) -> Dict[str, List[Any]]:
    grouped: Dict[str, List[Any]] = {}
    for result in results:
        grouped.setdefault(result.dataset, []).append(result)
    return grouped


def build_report(protocol: ProtocolDefinition, results_by_method: Mapping[str, Sequence[Any]],
                 notes: Sequence[str] = ()) -> BenchmarkReport:
    """Rows grouped by dataset (methods side by side), then an "all" block if there are several datasets."""
    datasets: List[str] = []
    for results in results_by_method.values():
        for name in _by_dataset(results):
            if name not in datasets:
                datasets.append(name)
    if len(datasets) > 1:
        datasets.append(ALL_DATASETS)

    rows, curves = [], {}
    for dataset in datasets:
        curves[dataset] = {}
        for method, results in results_by_method.items():
            subset = list(results) if dataset == ALL_DATASETS else _by_dataset(results).get(dataset, [])
            if not subset:
                continue
            rows.append({"method": method, "dataset": dataset, **protocol.summarize(subset)})
            curves[dataset][method] = protocol.curve_values(subset)

    pair_rows, visualizations = [], []
    for method, results in results_by_method.items():
        for result in results:
            pair_rows.append({"method": method, **protocol.pair_row(result)})
            record = result.matches
            if record.image0 is not None:
                visualizations.append(Visualization(result.dataset, method, result.pair_id, record.image0,
                                                    record.image1, record.keypoints0, record.keypoints1,
                                                    record.correct))
    return BenchmarkReport(protocol.title, protocol.columns, rows, pair_rows, protocol.curve_axis, curves,
                           visualizations, list(notes))
