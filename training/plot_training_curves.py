#!/usr/bin/env python3
"""Overlay training curves of several runs (their ``metrics.csv``) in one figure.

    python training/plot_training_curves.py runs/slim_alone runs/slim_distilled \
        --columns coarse_nll,fine --labels alone,distilled --out runs/slim_curves.png

Each run is a training output folder (or its ``metrics.csv``). One panel per column, x = step; the
raw values are drawn faintly and a centred moving average (``--smooth`` logged points) over them,
because single-batch losses of a homography stream jump by a factor of two from step to step and
the trend is what a comparison of runs is about. Runs that lack a column are skipped in that panel
with a note; a column no run has is an error.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


class CurveError(ValueError):
    """A run folder, metrics file or column that cannot be plotted."""


def metrics_path(run: Path) -> Path:
    path = run / "metrics.csv" if run.is_dir() else run
    if not path.is_file():
        raise CurveError(f"{run}: no metrics.csv (pass a training output folder or its metrics.csv)")
    return path


def read_metrics(path: Path) -> Dict[str, np.ndarray]:
    """metrics.csv -> column name -> float array (rows with an empty or non-numeric cell become NaN)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "step" not in rows[0]:
        raise CurveError(f"{path}: empty, or no 'step' column")
    columns: Dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = []
        for row in rows:
            try:
                values.append(float(row[name]))
            except (TypeError, ValueError):
                values.append(np.nan)
        columns[name] = np.asarray(values)
    return columns


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred mean over ``window`` points, NaN-aware, same length (shorter windows at the ends)."""
    window = min(window, len(values))  # np.convolve's "same" output has the longer input's length
    if window <= 1:
        return values
    finite = np.isfinite(values)
    kernel = np.ones(window)
    sums = np.convolve(np.where(finite, values, 0.0), kernel, mode="same")
    counts = np.convolve(finite.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def plot_curves(runs: Sequence[Path], columns: Sequence[str], out: Path, labels: Optional[Sequence[str]] = None,
                smooth: int = 10) -> List[str]:
    """Writes the figure to ``out``; returns notes on runs skipped in a panel."""
    from matplotlib.figure import Figure  # a bare Figure: Agg, no pyplot state

    labels = list(labels) if labels else [Path(r).name or str(r) for r in runs]
    if len(labels) != len(runs):
        raise CurveError(f"{len(labels)} labels for {len(runs)} runs")
    data = [read_metrics(metrics_path(Path(r))) for r in runs]
    notes: List[str] = []
    fig = Figure(figsize=(5.0 * len(columns), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(columns), squeeze=False)[0]
    for ax, column in zip(axes, columns):
        if not any(column in d for d in data):
            raise CurveError(f"no run has a column {column!r}; columns of {runs[0]}: {', '.join(data[0])}")
        for i, (label, d) in enumerate(zip(labels, data)):
            if column not in d:
                notes.append(f"{label}: no column {column!r}, left out of that panel")
                continue
            colour = f"C{i}"
            ax.plot(d["step"], d[column], color=colour, alpha=0.2, linewidth=0.8)
            ax.plot(d["step"], moving_average(d[column], smooth), color=colour, linewidth=1.8, label=label)
        ax.set_xlabel("step")
        ax.set_title(column)
        ax.grid(alpha=0.3)
        ax.legend()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return notes


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="training output folders (or metrics.csv files)")
    p.add_argument("--columns", default="loss", help="comma-separated metrics.csv columns, one panel each")
    p.add_argument("--labels", default=None, help="comma-separated legend labels, one per run")
    p.add_argument("--smooth", type=int, default=10, help="moving-average window in logged points")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    try:
        if not columns:
            raise CurveError("--columns names no column")
        notes = plot_curves(args.runs, columns, args.out, labels, args.smooth)
    except (CurveError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
