"""Writing benchmark results: Markdown and CSV tables, error-curve plots, match visualisations.

matplotlib is imported only inside ``plot_error_curves`` (no pyplot, no backend switch),
so the protocols and the training loop never pay for it.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from distillmatch_core.evaluation.auc import cumulative_error_curve
from distillmatch_core.match_drawing import binary_colors, render_matches
from distillmatch_core.image_io import write_image


@dataclass(frozen=True)
class TableColumn:
    key: str  # key in a result row
    header: str  # Markdown header
    format: str = "{:.2f}"


@dataclass(frozen=True)
class CurveAxis:
    label: str  # x-axis label, e.g. "mean corner error (px)"
    max_error: float  # the plot's x range


@dataclass
class Visualization:
    dataset: str
    method: str
    pair_id: str
    image0: np.ndarray
    image1: np.ndarray
    keypoints0: np.ndarray  # (N, 2)
    keypoints1: np.ndarray  # (N, 2)
    correct: np.ndarray  # (N,) bool


@dataclass
class BenchmarkReport:
    """Everything one ``distillmatch eval`` run writes."""

    title: str
    columns: Sequence[TableColumn]
    rows: List[Dict[str, Any]]  # one per method x dataset
    pair_rows: List[Dict[str, Any]]  # one per method x pair
    curve_axis: CurveAxis
    curves: Dict[str, Dict[str, np.ndarray]]  # dataset -> method -> per-item errors (inf = failure)
    visualizations: List[Visualization] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # Markdown lines under the table


def format_cell(value: Any, fmt: str) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return fmt.format(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[TableColumn]) -> str:
    lines = ["| " + " | ".join(c.header for c in columns) + " |",
             "|" + "|".join("---" if i < 2 else "--:" for i in range(len(columns))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(row.get(c.key), c.format) for c in columns) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(keys), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})


def file_stem(text: str) -> str:
    """A readable file-name fragment of a method or dataset name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "unnamed"


def plot_error_curves(path: Path, title: str, curves: Mapping[str, np.ndarray], axis: CurveAxis) -> None:
    """One line per method: fraction of items (failures included) with error <= x."""
    # A bare Figure renders with Agg and touches no global pyplot state or backend setting.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.0), dpi=120)
    ax = figure.subplots()
    for method, errors in curves.items():
        x, y = cumulative_error_curve(errors)
        shown = x <= axis.max_error
        # Extend the last step to the plot edge so a method that stops improving stays visible.
        ax.step(np.append(x[shown], axis.max_error), 100.0 * np.append(y[shown], y[shown][-1]),
                where="post", label=method)
    ax.set_xlim(0.0, axis.max_error)
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel(axis.label)
    ax.set_ylabel("cumulative fraction (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)


def write_report(out_dir: Path, report: BenchmarkReport, command_line: str) -> Dict[str, List[Path]]:
    """Write results.md, results.csv, pairs.csv, curves_<dataset>.png and matches/*.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: Dict[str, List[Path]] = {"tables": [], "plots": [], "visualizations": []}

    table = markdown_table(report.rows, report.columns)
    markdown = [f"# {report.title}", "", f"Command: `{command_line}`", "", table, ""]
    markdown += report.notes
    (out_dir / "results.md").write_text("\n".join(markdown).rstrip() + "\n", encoding="utf-8")
    write_csv(out_dir / "results.csv", report.rows, [c.key for c in report.columns])
    pair_keys = list(report.pair_rows[0]) if report.pair_rows else ["method", "dataset", "pair_id"]
    write_csv(out_dir / "pairs.csv", report.pair_rows, pair_keys)
    written["tables"] += [out_dir / "results.md", out_dir / "results.csv", out_dir / "pairs.csv"]

    for dataset, curves in report.curves.items():
        path = out_dir / f"curves_{file_stem(dataset)}.png"
        plot_error_curves(path, f"{report.title}: {dataset}", curves, report.curve_axis)
        written["plots"].append(path)

    for item in report.visualizations:
        path = out_dir / "matches" / f"{file_stem(item.dataset)}__{file_stem(item.pair_id)}__{file_stem(item.method)}.png"
        correct = np.asarray(item.correct, dtype=bool)
        caption = f"{item.method}: {len(correct)} matches, {int(correct.sum())} correct"
        write_image(path, render_matches(item.image0, item.image1, item.keypoints0, item.keypoints1,
                                         binary_colors(correct), caption=caption))
        written["visualizations"].append(path)
    return written
