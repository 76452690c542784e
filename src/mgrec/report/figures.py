"""Figures of a run: DETAD-style error analysis, class histogram, training curves, confusion matrix.

Every function returns a matplotlib `Figure` built without pyplot (no global figure registry, no
GUI backend), so figures can be made in any process and are freed with the object. `save_figure`
writes PNG and SVG; `svg_bytes` renders SVG in memory for the HTML report. SVG text stays text
(smaller files, selectable labels) and SVG ids are seeded, so the output is reproducible.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mgrec.evaluate.analysis import CHARACTERISTICS, ERROR_NAMES, ERROR_TYPES, ErrorAnalysis

CHARACTERISTIC_NAMES = {"coverage": "Coverage", "length": "Length", "instances": "# Instances"}
CHARACTERISTIC_COLORS = {"coverage": "#3b6fb6", "length": "#d6457a", "instances": "#b86b25"}
ERROR_COLORS = {
    "true_positive": "#2f9e44",
    "double_detection": "#a9d18e",
    "wrong_label": "#2f6db5",
    "localization": "#f4a3a0",
    "confusion": "#d62f2f",
    "background": "#9ecae1",
}
_SAVE_SETTINGS = {"svg.fonttype": "none", "svg.hashsalt": "mgrec", "font.size": 9}


def save_figure(figure: Figure, path_without_suffix: Path) -> list[Path]:
    """Write `<path>.png` (150 dpi) and `<path>.svg`; returns both paths."""
    paths = []
    with matplotlib.rc_context(_SAVE_SETTINGS):
        for suffix, options in ((".png", {"dpi": 150}), (".svg", {"metadata": {"Date": None}})):
            path = path_without_suffix.with_suffix(suffix)
            figure.savefig(path, bbox_inches="tight", **options)
            paths.append(path)
    return paths


def svg_bytes(figure: Figure) -> bytes:
    """The figure as an SVG document."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_SAVE_SETTINGS):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def _tidy(axes) -> None:
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.yaxis.grid(True, linestyle=":", linewidth=0.8)
    axes.set_axisbelow(True)


def _grouped_bars(axes, analysis: ErrorAnalysis, values_of, ylabel: str) -> None:
    """One group of bars per characteristic, a gap between groups, the value above each bar."""
    x = 0
    ticks, tick_labels = [], []
    for name in CHARACTERISTICS:
        characteristic = analysis.characteristics[name]
        values = values_of(characteristic)
        positions = np.arange(x, x + len(values))
        heights = [0.0 if v is None else 100 * v for v in values]
        bars = axes.bar(positions, heights, color=CHARACTERISTIC_COLORS[name], width=0.8)
        for bar, value in zip(bars, values):
            text = "n/a" if value is None else f"{100 * value:.1f}"
            axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1.5, text, ha="center", fontsize=7)
        axes.text(positions.mean(), 104, CHARACTERISTIC_NAMES[name], ha="center", fontsize=9, weight="bold")
        ticks.extend(positions)
        tick_labels.extend(
            f"{label}\n{count}" for label, count in zip(characteristic.bins.labels, characteristic.gt_counts)
        )
        if name != CHARACTERISTICS[-1]:
            axes.axvline(positions[-1] + 1, color="gray", linestyle=":", linewidth=1)
        x = positions[-1] + 2
    axes.set_xticks(ticks, tick_labels, fontsize=8)
    axes.set_ylim(0, 112)
    axes.set_xlabel("bin (label and number of ground-truth segments)", fontsize=8)
    axes.set_xlim(-0.8, x - 1.2)
    axes.set_ylabel(ylabel)
    _tidy(axes)


def false_negative_figure(analysis: ErrorAnalysis) -> Figure:
    """False-negative rate per bin of coverage, length and instance count (bins: label, #segments)."""
    figure = Figure(figsize=(9, 3.2), layout="constrained")
    axes = figure.add_subplot()
    _grouped_bars(axes, analysis, lambda c: c.false_negative_rates, "False negatives (%)")
    axes.set_title(f"False negative analysis at tIoU {analysis.tiou:g}", fontsize=10, pad=16)
    return figure


def false_positive_figure(analysis: ErrorAnalysis) -> Figure:
    """Error breakdown of the slices 1G..10G (stacked) and the mAP_N gain of removing each error."""
    profile = analysis.false_positives
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    fractions = profile.fractions
    positions = np.arange(len(fractions))
    bottom = np.zeros(len(fractions))
    for name in ERROR_TYPES:
        heights = np.array([100 * f[name] for f in fractions])
        left.bar(positions, heights, bottom=bottom, color=ERROR_COLORS[name], label=ERROR_NAMES[name], width=0.85)
        bottom += heights
    for k, counts in enumerate(profile.counts):
        if not sum(counts.values()):
            left.text(k, 2, "none", ha="center", fontsize=7, rotation=90, color="gray")
    left.set_xticks(positions, [f"{k + 1}G" for k in positions])
    left.set_ylim(0, 100)
    left.set_xlabel("Top predictions (G: ground-truth segments per class)")
    left.set_ylabel("Error breakdown (%)")
    left.set_title(f"False positive profile at tIoU {analysis.tiou:g}", fontsize=10)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    _tidy(left)

    names = [n for n in ERROR_TYPES if n != "true_positive"]
    gains = [100 * profile.removal_gain[n] for n in names]
    bars = right.bar(range(len(names)), gains, color=[ERROR_COLORS[n] for n in names])
    for bar, gain in zip(bars, gains):
        right.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), f"{gain:.1f}", ha="center", va="bottom",
                   fontsize=8)
    right.set_xticks(range(len(names)), [ERROR_NAMES[n] for n in names], rotation=30, ha="right", fontsize=8)
    right.set_ylabel("mAP$_N$ improvement (%)")
    right.set_title("Removing error impact", fontsize=10)
    right.set_ylim(0, max(1.0, max(gains) * 1.2))
    _tidy(right)
    return figure


def sensitivity_figure(analysis: ErrorAnalysis) -> Figure:
    """mAP_N per bin of each characteristic, and its min-max range against the overall mAP_N."""
    figure = Figure(figsize=(11, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [4, 1]})
    _grouped_bars(left, analysis, lambda c: c.map_n, "mAP$_N$ (%)")
    base = 100 * analysis.map_n
    left.axhline(base, color="black", linestyle="--", linewidth=1)
    left.set_title(f"Sensitivity analysis at tIoU {analysis.tiou:g} (dashed: all segments, {base:.1f})",
                   fontsize=10, pad=16)

    for x, name in enumerate(CHARACTERISTICS):
        values = [100 * v for v in analysis.characteristics[name].map_n if v is not None]
        if not values:
            continue
        low, high = min(values), max(values)
        right.plot([x, x], [low, high], color=CHARACTERISTIC_COLORS[name], linewidth=6, solid_capstyle="butt",
                   marker="_", markersize=16, markeredgewidth=2)
        for value in {low, high}:
            right.text(x + 0.15, value, f"{value:.1f}", fontsize=7, va="center")
    right.axhline(base, color="black", linestyle="--", linewidth=1)
    right.set_xticks(range(len(CHARACTERISTICS)), [CHARACTERISTIC_NAMES[n] for n in CHARACTERISTICS],
                     rotation=30, ha="right", fontsize=8)
    right.set_xlim(-0.6, len(CHARACTERISTICS) - 0.2)
    right.set_ylim(0, 105)
    right.set_ylabel("mAP$_N$ range (%)")
    _tidy(right)
    return figure


def write_analysis_figures(analysis: ErrorAnalysis, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """Write the false-negative, false-positive and sensitivity figures as PNG and SVG:
    `<out_dir>/<prefix>false_negatives.png` etc."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, make in (
        ("false_negatives", false_negative_figure),
        ("false_positives", false_positive_figure),
        ("sensitivity", sensitivity_figure),
    ):
        paths.extend(save_figure(make(analysis), out_dir / f"{prefix}{stem}"))
    return paths


def class_histogram_figure(
    classes: Sequence[str], before: Sequence[int], after: Sequence[int] | None, alpha: int | None = None
) -> Figure:
    """Training instances per class before and after label augmentation (paper Fig. 1)."""
    count = len(classes)
    figure = Figure(figsize=(8, 0.28 * count + 1.4), layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(count)
    height = 0.4 if after is not None else 0.7
    axes.barh(rows - (height / 2 if after is not None else 0), before, height=height, color="#8c9db5",
              label="before augmentation")
    if after is not None:
        axes.barh(rows + height / 2, after, height=height, color="#d6457a", label=f"after augmentation (α = {alpha})")
    axes.set_yticks(rows, [f"{i}  {name}" for i, name in enumerate(classes)], fontsize=8)
    axes.invert_yaxis()
    for container in axes.containers:
        axes.bar_label(container, padding=2, fontsize=6)
    axes.set_xlabel("training instances")
    title = "Class histogram of the training split" + ("" if after is not None else " (augmentation off)")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    axes.xaxis.grid(True, linestyle=":", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    return figure


def training_curves_figure(records: Sequence[Mapping]) -> Figure:
    """Training losses per epoch and validation F1 / mAP per epoch, from metrics.jsonl records."""
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    for key, color in (("loss", "black"), ("cls_loss", "#d6457a"), ("reg_loss", "#3b6fb6")):
        points = [(r["epoch"], r[key]) for r in train if key in r]
        if points:
            epochs, values = zip(*points)
            left.plot(epochs, values, marker=".", color=color, label=key)
    left.set_xlabel("epoch")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("training loss")
    left.set_title("Training loss", fontsize=10)
    if train:
        left.legend(fontsize=8)
    _tidy(left)
    for key, color in (("f1", "#2f9e44"), ("f1_miga", "#a9d18e"), ("average_mAP", "#3b6fb6")):
        points = [(r["epoch"], 100 * r[key]) for r in val if r.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            right.plot(epochs, values, marker="o", color=color, label=key)
    right.set_xlabel("epoch")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_ylabel("validation score (%)")
    right.set_title("Validation", fontsize=10)
    if val:
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no validation records", ha="center", va="center", transform=right.transAxes)
    _tidy(right)
    return figure


def confusion_figure(labels: Sequence[str], matrix: Sequence[Sequence[int]],
                     background: Sequence[int] | None = None) -> Figure:
    """Heat map of ground-truth class (rows) against predicted class (columns), with counts.

    Colours are row-normalised (each row's share), so rare classes are as readable as common
    ones. `background` (predictions that overlap no segment, per predicted class) is an extra row.
    """
    counts = np.asarray(matrix, dtype=np.int64).reshape(len(labels), len(labels))
    row_names = [f"{i}  {name}" for i, name in enumerate(labels)]
    if background is not None:
        counts = np.vstack([counts, np.asarray(background, dtype=np.int64)[None, :]])
        row_names.append("no segment (background)")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    size = 0.32 * len(labels) + 2.5
    figure = Figure(figsize=(size + 2.5, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for (row, column), value in np.ndenumerate(counts):
        if value:
            color = "white" if shares[row, column] > 0.6 else "black"
            axes.text(column, row, str(value), ha="center", va="center", fontsize=6, color=color)
    axes.set_xticks(range(len(labels)), [str(i) for i in range(len(labels))], fontsize=7)
    axes.set_yticks(range(len(row_names)), row_names, fontsize=7)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("ground-truth class")
    axes.set_title("Confusion matrix of the hard set (colour: share of the row)", fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.04)
    return figure
