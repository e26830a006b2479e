"""PNG plots of a bag evaluation over time.

Uses matplotlib's object API on an Agg canvas, never ``pyplot``, so no GUI
backend is touched (headless robots and CI) and no global figure state leaks.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from distillmatch_core.rosbag.eval_report import PairRecord


def _time_axis(records: Sequence[PairRecord]) -> np.ndarray:
    """Seconds since the first pair's RGB stamp."""
    if not records:
        return np.zeros(0)
    t0 = records[0].rgb_stamp_ns
    return np.array([(r.rgb_stamp_ns - t0) / 1e9 for r in records])


def _values(records: Sequence[PairRecord], attribute: str) -> np.ndarray:
    return np.array([np.nan if getattr(r, attribute) is None else float(getattr(r, attribute)) for r in records])


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    # Fixed margins: tight_layout costs a full extra layout pass per figure.
    figure.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.15)
    figure.savefig(path, dpi=100)
    return path


def _time_series_figure(records: Sequence[PairRecord], series: Sequence[tuple], ylabel: str, title: str):
    """One time axis, one line per (attribute, label, scale); -> (figure, axes, time axis)."""
    t = _time_axis(records)
    figure = Figure(figsize=(8, 3.5))
    ax = figure.add_subplot(1, 1, 1)
    for attribute, label, scale in series:
        ax.plot(t, scale * _values(records, attribute), ".-", label=label)
    ax.set_xlabel("time since first pair (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if any(label for _, label, _ in series):
        ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return figure, ax, t


def plot_matches(records: Sequence[PairRecord], path: Path) -> Path:
    figure, ax, t = _time_series_figure(records, [("num_matches", "matches", 1), ("num_inliers", "homography inliers", 1)],
                                        "count", "Matches and inliers per pair")
    failed = [i for i, r in enumerate(records) if r.error]
    if failed:
        ax.plot(t[failed], np.zeros(len(failed)), "rx", label="failed pair")
        ax.legend(loc="upper right")
    return _save(figure, path)


def plot_latency(records: Sequence[PairRecord], path: Path) -> Path:
    figure, _, _ = _time_series_figure(records, [("processing_time_s", "whole pair", 1000),
                                                 ("match_time_s", "matcher", 1000)], "ms", "Processing time per pair")
    return _save(figure, path)


def plot_stability(records: Sequence[PairRecord], path: Path) -> Path:
    figure, _, _ = _time_series_figure(records, [("corner_drift_px", "per-pair estimate", 1),
                                                 ("published_corner_drift_px", "published (filtered)", 1)],
                                       "mean corner drift (RGB px)", "Homography stability between consecutive pairs")
    return _save(figure, path)


def plot_reference_error(records: Sequence[PairRecord], path: Path) -> Path:
    figure, _, _ = _time_series_figure(records, [("reference_corner_error_px", "", 1)], "mean corner error (RGB px)",
                                       "Published homography vs. reference")
    return _save(figure, path)


def write_plots(records: Sequence[PairRecord], folder: Path, with_reference: bool) -> List[Path]:
    """All plots into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: List[Optional[Path]] = [
        plot_matches(records, folder / "matches_inliers.png"),
        plot_latency(records, folder / "processing_time.png"),
        plot_stability(records, folder / "homography_stability.png"),
        plot_reference_error(records, folder / "reference_error.png") if with_reference else None,
    ]
    return [p for p in paths if p is not None]
