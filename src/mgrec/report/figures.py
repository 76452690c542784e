"""Figures of a run: DETAD-style error analysis, precision-recall and F1-threshold curves, class
histogram, class balancing, training curves, confusion matrix; and the score histogram of a page of detections.

Every function returns a matplotlib `Figure` built without pyplot (no global figure registry, no
GUI backend), so figures can be made in any process and are freed with the object. `save_figure`
writes PNG and SVG; `svg_bytes` renders SVG in memory for the HTML report. SVG text stays text
(smaller files, selectable labels), SVG ids are seeded and the layout is fixed at the first save (`_fix_layout`),
so the output is reproducible: one figure gives the same SVG however often, and after whatever, it is drawn. Text
from the data goes through `plain`, so that a "$" in a name is never read as math and a bidi
override never reverses the text after it; names (classes, splits, a balancing method) through `class_text`, which
also cuts them to `MAX_FIGURE_NAME_CHARS`.
"""

from __future__ import annotations

import colorsys
import contextlib
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath
from matplotlib.ticker import MaxNLocator

from mgrec.evaluate.analysis import ERROR_NAMES, ERROR_TYPES, ErrorAnalysis, PRCurve, ThresholdCurve
from mgrec.files import atomic_write, counted, part_of
from mgrec.terminal import one_line

CHARACTERISTIC_NAMES = {
    "relative_length": "Relative length (× class median)",
    "coverage": "Coverage (of the video)",
    "length": "Length (s)",
    "instances": "# Instances (per video)",
}
CHARACTERISTIC_COLORS = {"relative_length": "#3b6fb6", "coverage": "#5b8fd6", "length": "#d6457a",
                         "instances": "#b86b25"}
ERROR_COLORS = {
    "true_positive": "#2f9e44",
    "double_detection": "#a9d18e",
    "wrong_label": "#2f6db5",
    "localization": "#f4a3a0",
    "confusion": "#d62f2f",
    "background": "#9ecae1",
}
_SAVE_SETTINGS = {"svg.fonttype": "none", "svg.hashsalt": "mgrec", "font.size": 9}


def plain(text: str) -> str:
    """`text` drawn as written: matplotlib reads "$...$" as math (and fails on bad math). Control
    characters, line breaks, tabs and bidi overrides and isolates are drawn as escapes (`\\u202e`, `\\n`:
    `mgrec.terminal.one_line`), as in the page around the figures: raw, a crafted class name would reverse the text
    after it, or a class `a\\nb` be drawn on two lines."""
    return one_line(text).replace("$", r"\$")


# The most characters of a class name a figure draws: a longer one is cut, with "…" (the page's tables give it whole).
# Whole, a legend of 150-character names left the score histogram's axes no width (matplotlib: "axes sizes collapsed
# to zero"), and names of 70 halved them.
MAX_FIGURE_NAME_CHARS = 40


def class_text(name: str) -> str:
    """A class name, or any other name from the files (a split, a balancing method), as a figure draws it: `plain`, cut
    to `MAX_FIGURE_NAME_CHARS` characters (the escapes of control characters counted as drawn)."""
    text = one_line(name)
    if len(text) > MAX_FIGURE_NAME_CHARS:
        text = text[: MAX_FIGURE_NAME_CHARS - 1] + "…"
    return plain(text)


@contextlib.contextmanager
def _drawing():
    """The settings every figure is drawn with. A class name in a script the font lacks (CJK, emoji)
    is drawn as boxes (the HTML tables show it exactly): matplotlib's warning for each missing glyph,
    one per character and figure, would flood stderr, so it is left out."""
    with matplotlib.rc_context(_SAVE_SETTINGS), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        yield


def _fix_layout(figure: Figure) -> None:
    """Place the figure's parts once, then keep them where they are: each drawing of a figure with a constrained
    layout placed them again, starting from where the last drawing left them, and at the dpi of that drawing (the
    PNG's 150, the SVG's 72), so a second drawing of one figure, or its SVG after its PNG, moved things by
    thousandths of a point (`mgrec analyze`'s SVG differed from the report's of the same figure, and from itself
    drawn twice). Done in every figure's first save, at the figure's own dpi, it makes the SVG a function of the
    figure alone."""
    if figure.get_layout_engine() is None or isinstance(figure.get_layout_engine(), PlaceHolderLayoutEngine):
        return  # no layout, or one fixed already
    with _drawing():
        figure.draw_without_rendering()
    figure.set_layout_engine("none")


def save_figure(figure: Figure, path_without_suffix: Path) -> list[Path]:
    """Write `<path>.png` (150 dpi) and `<path>.svg`; returns both paths. Each is written whole or not at all
    (`atomic_write`), and a folder that cannot be written is an `InputError` naming the file."""
    paths = []
    _fix_layout(figure)
    with _drawing():
        for suffix, options in zip(FIGURE_ENDINGS, ({"dpi": 150}, {"metadata": {"Date": None}})):
            path = path_without_suffix.with_suffix(suffix)
            atomic_write(path, lambda temp: figure.savefig(temp, format=suffix[1:], bbox_inches="tight", **options))
            paths.append(path)
    return paths


def svg_bytes(figure: Figure) -> bytes:
    """The figure as an SVG document."""
    buffer = io.BytesIO()
    _fix_layout(figure)
    with _drawing():
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return buffer.getvalue()


def text_inches(texts: Sequence[str], fontsize: float) -> float:
    """The width in inches of the widest line of `texts` drawn at `fontsize`: what a figure sized by its labels
    (bins, panel titles) must give them."""
    measure, font = TextToPath(), FontProperties(size=fontsize)
    return max((measure.get_text_width_height_descent(line, font, ismath=False)[0] for text in texts
                for line in text.split("\n")), default=0.0) / 72  # points


# The space between two neighbouring labels a figure sized by its labels leaves, in points (about a space's width)
LABEL_GAP_POINTS = 4.0


def _tidy(axes) -> None:
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    axes.yaxis.grid(True, linestyle=":", linewidth=0.8)
    axes.set_axisbelow(True)


def bin_tick_labels(analysis: ErrorAnalysis, name: str) -> list[str]:
    """Under each bin of a characteristic: its label, its edges and its number of segments."""
    characteristic = analysis.characteristics[name]
    return [
        f"{label}\n{edges}\n{count}"
        for label, edges, count in zip(characteristic.bins.labels, characteristic.bins.ranges(),
                                       characteristic.gt_counts)
    ]


# The bins' tick labels and the characteristics' names are drawn at these sizes
BIN_LABEL_FONTSIZE = 7


def _grouped_bars_units(analysis: ErrorAnalysis) -> float:
    """The width of `_grouped_bars`' x axis in bar slots: a slot per bin, one between groups, margins at both ends."""
    bars = sum(len(c.bins) for c in analysis.characteristics.values())
    return bars + len(analysis.characteristics) - 0.4


def _grouped_bars_inches(analysis: ErrorAnalysis) -> float:
    """The width of `_grouped_bars`' axes that gives each bin's tick label (its widest line) its slot and a gap: at a
    fixed figure width the default bins' "(0.8, 1.25]" and "(1.25, 2]" touched in the sensitivity figure, and more
    or wider bins would run into each other."""
    labels = [label for name in analysis.characteristics for label in bin_tick_labels(analysis, name)]
    slot = text_inches(labels, BIN_LABEL_FONTSIZE) + LABEL_GAP_POINTS / 72
    return slot * _grouped_bars_units(analysis)


def _grouped_bars(axes, analysis: ErrorAnalysis, values_of, ylabel: str) -> None:
    """One group of bars per characteristic, a gap between groups, the value above each bar; the characteristics'
    names above the axes."""
    x = 0
    ticks, tick_labels = [], []
    names = list(analysis.characteristics)
    for name in names:
        values = values_of(analysis.characteristics[name])
        positions = np.arange(x, x + len(values))
        heights = [0.0 if v is None else 100 * v for v in values]
        bars = axes.bar(positions, heights, color=CHARACTERISTIC_COLORS.get(name, "#777777"), width=0.8)
        for bar, value in zip(bars, values):
            text = "n/a" if value is None else f"{100 * value:.1f}"
            axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1.5, text, ha="center", fontsize=7)
        # Above the axes, not at y = 104 inside them: there the value over a bar of 98-100 % ran into the name
        # (in the room the title's pad leaves: placed by the layout too, its place moved from one drawing to the next)
        axes.annotate(CHARACTERISTIC_NAMES.get(name, name), (positions.mean(), 1.0), xycoords=("data", "axes fraction"),
                      xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=9, weight="bold",
                      in_layout=False)
        ticks.extend(positions)
        tick_labels.extend(bin_tick_labels(analysis, name))
        if name != names[-1]:
            axes.axvline(positions[-1] + 1, color="gray", linestyle=":", linewidth=1)
        x = positions[-1] + 2
    axes.set_xticks(ticks, tick_labels, fontsize=BIN_LABEL_FONTSIZE)
    axes.set_ylim(0, 108)
    axes.set_xlabel("bin: label, edges (lower edge excluded, upper included), number of ground-truth segments",
                    fontsize=8)
    axes.set_xlim(-0.8, x - 1.2)
    axes.set_ylabel(ylabel)
    _tidy(axes)


def false_negative_figure(analysis: ErrorAnalysis) -> Figure:
    """False-negative rate per bin of each characteristic (bins: label, edges, #segments)."""
    # as wide as its bins' labels need (and the y axis's labels, about an inch)
    figure = Figure(figsize=(max(10.0, _grouped_bars_inches(analysis) + 1.2), 3.5), layout="constrained")
    axes = figure.add_subplot()
    _grouped_bars(axes, analysis, lambda c: c.false_negative_rates, "False negatives (%)")
    axes.set_title(f"False negative analysis of the {analysis.describe()}: "
                   f"{part_of(len(analysis.missed), analysis.num_ground_truth, 'segment')} missed", fontsize=10, pad=20)
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
    left.set_title(f"False positive profile of the {analysis.describe()}", fontsize=10)
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
    # The bars' panel as wide as its bins' labels need, the range panel 1.8 inches; 2.4 inches for both y axes' labels
    bars = max(8.0, _grouped_bars_inches(analysis))
    figure = Figure(figsize=(bars + 1.8 + 2.4, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [bars, 1.8]})
    _grouped_bars(left, analysis, lambda c: c.map_n, "mAP$_N$ (%)")
    base = 100 * analysis.map_n
    left.axhline(base, color="black", linestyle="--", linewidth=1)
    left.set_title(f"Sensitivity analysis of the {analysis.describe()} (dashed: all segments, {base:.1f})",
                   fontsize=10, pad=20)

    names = list(analysis.characteristics)
    for x, name in enumerate(names):
        values = [100 * v for v in analysis.characteristics[name].map_n if v is not None]
        if not values:
            continue
        low, high = min(values), max(values)
        right.plot([x, x], [low, high], color=CHARACTERISTIC_COLORS.get(name, "#777777"), linewidth=6,
                   solid_capstyle="butt", marker="_", markersize=16, markeredgewidth=2)
        # the lowest hangs below its end, the highest stands above its: centred on them, a range of 3 points drew
        # the two over each other
        right.text(x + 0.15, low, f"{low:.1f}", fontsize=7, va="top" if high > low else "center")
        if high > low:
            right.text(x + 0.15, high, f"{high:.1f}", fontsize=7, va="bottom")
    right.axhline(base, color="black", linestyle="--", linewidth=1)
    right.set_xticks(range(len(names)), [CHARACTERISTIC_NAMES.get(n, n).split(" (")[0] for n in names],
                     rotation=30, ha="right", fontsize=8)
    right.set_xlim(-0.6, len(names) - 0.2)
    right.set_ylim(0, 105)
    right.set_ylabel("mAP$_N$ range (%)")
    _tidy(right)
    return figure


# The precision-recall figure draws at most this many classes' panels: its layout time grows faster than the
# panels (measured on the 2-core machine: 25 classes 5 s, 100 classes 31 s, 200 classes 136 s; a 500-class report
# did not finish in 5 minutes).
MAX_PR_PANELS = 40


PR_TITLE_FONTSIZE = 8
# The width a precision-recall panel's title does not get of its column, in inches: the constrained layout's pads on
# both sides of the panel (3 points each) and its share of the space between panels
PR_PANEL_PADDING = 0.25


def _pr_panel_title(curves: Mapping[float, Mapping[int, PRCurve]], classes: Sequence[str], label_id: int,
                    middle: float | None) -> str:
    """A precision-recall panel's title: the class, its number of segments and its AP at the middle tIoU."""
    any_curve = next(iter(c for by_class in curves.values() for c in [by_class.get(label_id)] if c), None)
    ap = f", AP@{middle:g} {100 * curves[middle][label_id].ap:.1f}" if middle is not None and any_curve else ""
    count = any_curve.num_gt if any_curve else 0
    return f"{label_id} {class_text(classes[label_id])}" + f"\n{counted(count, 'segment')}{ap}"


def pr_curves_figure(
    curves: Mapping[float, Mapping[int, PRCurve]], classes: Sequence[str], score_threshold: float | None = None,
    class_thresholds: Sequence[float] | None = None,
) -> Figure:
    """One panel per class with ground truth: its precision-recall curve at each tIoU, and a dot
    where the score threshold (or, with `class_thresholds`, the class's own) cuts each curve (the hard set's
    precision and recall at that tIoU). Beyond `MAX_PR_PANELS` classes, those with the most ground-truth segments,
    and the figure says so."""
    tious = sorted(curves)
    label_ids = sorted({label_id for by_class in curves.values() for label_id in by_class})
    shown_of = len(label_ids)
    if shown_of > MAX_PR_PANELS:
        segments = {label_id: max(by_class[label_id].num_gt for by_class in curves.values() if label_id in by_class)
                    for label_id in label_ids}
        label_ids = sorted(sorted(label_ids, key=lambda label_id: -segments[label_id])[:MAX_PR_PANELS])
    columns = max(1, min(4, len(label_ids)))
    rows = max(1, math.ceil(len(label_ids) / columns))
    middle = tious[len(tious) // 2] if tious else None
    titles = [_pr_panel_title(curves, classes, label_id, middle) for label_id in label_ids]
    # A column as wide as its widest title needs: at 2.7 inches the titles of 40-character class names ran into
    # each other. With the room the constrained layout keeps around each panel (PR_PANEL_PADDING): without it, the
    # last column's title of long names reached past the figure's right edge
    column = max(2.7, text_inches(titles, PR_TITLE_FONTSIZE) + LABEL_GAP_POINTS / 72 + PR_PANEL_PADDING)
    figure = Figure(figsize=(column * columns + 0.6, 2.35 * rows + 0.8), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    colors = colormaps["viridis"](np.linspace(0.0, 0.85, max(1, len(tious))))
    for n, axes in enumerate(grid.flat):
        if n >= len(label_ids):
            axes.set_visible(False)
            continue
        label_id = label_ids[n]
        for tiou, color in zip(tious, colors):
            curve = curves[tiou].get(label_id)
            if curve is None or not len(curve.recall):
                continue
            axes.plot(curve.recall, 100 * curve.precision, color=color, linewidth=1.2)
            bar = class_thresholds[label_id] if class_thresholds is not None else score_threshold
            point = curve.at_threshold(bar) if bar is not None else None
            if point is not None:
                axes.plot([point[1]], [100 * point[0]], marker="o", markersize=4.5, color=color,
                          markeredgecolor="black", markeredgewidth=0.7, linestyle="none")
        axes.set_title(titles[n], fontsize=PR_TITLE_FONTSIZE)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 102)
        axes.grid(True, linestyle=":", linewidth=0.6)
        axes.tick_params(labelsize=7)
    figure.supxlabel("recall", fontsize=9)
    figure.supylabel("precision (%)", fontsize=9)
    handles = [Line2D([], [], color=color, label=f"tIoU ≥ {tiou:g}") for tiou, color in zip(tious, colors)]
    if score_threshold is not None or class_thresholds is not None:
        bar = f"{score_threshold:.3g}" if class_thresholds is None else "the class's threshold"
        handles.append(Line2D([], [], color="gray", marker="o", markeredgecolor="black", linestyle="none",
                              label=f"score ≥ {bar} (the hard set)"))
    # Which classes are shown is the legend's title, not a suptitle: the constrained layout stacks no suptitle
    # above an "outside upper" figure legend, so the two were drawn over each other (a 500-class run)
    shown = (f"the {len(label_ids)} classes with the most ground-truth segments, of {shown_of} (every class's AP is "
             "in the per-class table)") if shown_of > len(label_ids) else None
    legend = figure.legend(handles=handles, loc="outside upper center", ncol=len(handles), fontsize=8,
                           frameon=False, title=shown, title_fontsize=9)
    # A figure as wide as its legend, measured: the legend of one class's panel (2.7 inches, four entries in a row)
    # reached past both edges of the figure
    legend_inches = legend.get_window_extent(FigureCanvasAgg(figure).get_renderer()).width / figure.dpi
    if legend_inches + 0.2 > figure.get_figwidth():
        figure.set_figwidth(legend_inches + 0.2)
    return figure


def _threshold_axis(curve: ThresholdCurve, score_threshold: float | None) -> tuple[float, float]:
    """The span of the F1-against-threshold axis: from 0 to a little past the highest score or the threshold (scores
    above the highest all give an empty hard set), within [0, 1] for probabilities; for scores outside [0, 1] (another
    tool's logits, `score --pred`) from a little before the lowest to a little past the highest. The axis was [0, 1]
    for any scores: the curve of logits drawn back and forth, and the thresholds of logits (-0.48) not drawn at all."""
    marks = [float(t) for t in (score_threshold,) if t is not None]
    values = [*(curve.thresholds.tolist() if len(curve.thresholds) else []), *marks]
    if all(0.0 <= v <= 1.0 for v in values):
        top = max(values, default=1.0)
        return 0.0, min(1.0, max(top * 1.15, 0.05))
    low, high = min(values), max(values)
    margin = 0.05 * (high - low) or 0.05
    return low - margin, high + margin


def f1_threshold_figure(
    curve: ThresholdCurve, score_threshold: float | None, tuned_on: str | None, split: str
) -> Figure:
    """F1, precision and recall of the hard set against the score threshold, with the threshold in
    use (tuned on `tuned_on`) and the best one on this split marked."""
    figure = Figure(figsize=(9, 3.4), layout="constrained")
    axes = figure.add_subplot()
    left, right = _threshold_axis(curve, score_threshold)
    if len(curve.thresholds):
        # The hard set at t is the detections with score >= t: constant on (previous score, score],
        # empty above the highest score.
        x = np.concatenate([[left], curve.thresholds, [right]])
        for values, name, color, width in (
            (curve.precision, "precision", "#9ecae1", 1.0),
            (curve.recall, "recall", "#f4a3a0", 1.0),
            (curve.f1, "F1 (one-to-one)", "#2f9e44", 1.8),
        ):
            y = 100 * np.concatenate([[values[0]], values, [0.0]])
            axes.plot(x, y, drawstyle="steps-pre", color=color, linewidth=width, label=name)
        best = curve.best_threshold
        best_f1 = curve.at(best)
        axes.axvline(best, color="#2f9e44", linestyle=":", linewidth=1.2,
                     label=f"best on {class_text(split)}: {best:.3g} (F1 {100 * best_f1.f1:.1f})")
        if score_threshold is not None:
            used = curve.at(score_threshold)
            where = f"tuned on {class_text(tuned_on)}" if tuned_on else "in use"
            axes.axvline(score_threshold, color="black", linestyle="--", linewidth=1.2,
                         label=f"{where}: {score_threshold:.3g} (F1 {100 * (used.f1 if used else 0.0):.1f})")
    else:
        axes.text(0.5, 0.5, "no detections", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlim(left, right)
    axes.set_ylim(0, 102)
    axes.set_xlabel("score threshold (the hard set: detections with score ≥ threshold)")
    axes.set_ylabel("%")
    axes.set_title(f"F1 against the score threshold on {class_text(split)}", fontsize=10)
    if axes.get_legend_handles_labels()[0]:  # none without detections ("No artists with labels" on stderr)
        axes.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _tidy(axes)
    return figure


# The names of DETAD's three figures (`write_analysis_figures`), and the endings `save_figure` writes each in
ANALYSIS_FIGURE_STEMS = ("false_negatives", "false_positives", "sensitivity")
FIGURE_ENDINGS = (".png", ".svg")


def write_analysis_figures(analysis: ErrorAnalysis, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """Write the false-negative, false-positive and sensitivity figures as PNG and SVG:
    `<out_dir>/<prefix>false_negatives.png` etc."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    makers = (false_negative_figure, false_positive_figure, sensitivity_figure)
    for stem, make in zip(ANALYSIS_FIGURE_STEMS, makers):
        paths.extend(save_figure(make(analysis), out_dir / f"{prefix}{stem}"))
    return paths


def class_hsl(label_id: int) -> tuple[float, float, float]:
    """A distinct colour per class (hue in degrees, saturation and lightness in %): hues a golden angle apart, two
    lightness levels. The pages' bars and swatches (`mgrec.report.html.class_color`) and the figures share it."""
    return (label_id * 137.508) % 360, 68.0, 48.0 if label_id % 2 == 0 else 62.0


def _class_rgb(label_id: int) -> tuple[float, float, float]:
    hue, saturation, lightness = class_hsl(label_id)
    return colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)


# The score histogram stacks at most this many classes, the rest as one band (20 rows of legend, what its height
# holds): 500 classes were 500 bands, and the legend, taller than the figure, named the first 20 of them alone
MAX_HISTOGRAM_CLASSES = 19


def score_histogram_figure(classes: Sequence[str], scores: Sequence[Sequence[float]],
                           threshold: float | None = None) -> Figure:
    """Detection scores stacked by class (`scores[c]`: class c's), in bins of 0.05 over [0, 1], with the
    hard set's `threshold` as a line where there is one."""
    figure = Figure(figsize=(8, 3.2), layout="constrained")
    axes = figure.add_subplot()
    shown = [c for c in range(len(classes)) if len(scores[c])]
    values = [np.clip(scores[c], 0.0, 1.0) for c in shown]
    colors, labels = [_class_rgb(c) for c in shown], [class_text(classes[c]) for c in shown]
    if len(shown) > MAX_HISTOGRAM_CLASSES:  # those with the most detections, the others stacked as one grey band
        kept = sorted(sorted(shown, key=lambda c: -len(scores[c]))[:MAX_HISTOGRAM_CLASSES])
        others = sorted(set(shown) - set(kept))
        values = [np.clip(scores[c], 0.0, 1.0) for c in kept] + [np.clip(np.concatenate([scores[c] for c in others]),
                                                                         0.0, 1.0)]
        colors = [_class_rgb(c) for c in kept] + [(0.75, 0.75, 0.75)]
        labels = [class_text(classes[c]) for c in kept] + [f"the other {len(others)} classes"]
    if shown:
        axes.hist(values, bins=np.linspace(0.0, 1.0, 21), stacked=True, color=colors, label=labels)
        figure.legend(fontsize=7, loc="outside right upper", frameon=False)
    if threshold is not None:
        axes.axvline(threshold, color="#333333", linestyle="--", linewidth=1.0)
    axes.set_xlim(0.0, 1.0)
    axes.set_xlabel("score")
    axes.set_ylabel("detections")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _tidy(axes)
    return figure


def class_histogram_figure(
    classes: Sequence[str], before: Sequence[int], after: Sequence[float] | None, balance: str | None = None
) -> Figure:
    """Training instances per class before and after class balancing (paper Fig. 1 for eq1); `balance`
    names the method in the legend (e.g. "eq1, α = 160"). Beyond `MAX_HISTOGRAM_BARS` classes, a bar per class made the
    figure a bar's height per class tall (500 classes: 141 inches); the classes are then ranked instead
    (`class_rank_figure`)."""
    count = len(classes)
    if count > MAX_HISTOGRAM_BARS:
        return class_rank_figure(classes, before, after, balance)
    figure = Figure(figsize=(8, 0.28 * count + 1.6), layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(count)
    height = 0.4 if after is not None else 0.7
    axes.barh(rows - (height / 2 if after is not None else 0), before, height=height, color="#8c9db5",
              label="training instances")
    if after is not None:
        axes.barh(rows + height / 2, after, height=height, color="#d6457a", label=f"crop anchors after {balance}")
    axes.set_yticks(rows, [f"{i}  {class_text(name)}" for i, name in enumerate(classes)], fontsize=8)
    axes.invert_yaxis()
    for container in axes.containers:
        axes.bar_label(container, padding=2, fontsize=6, fmt="%.4g")
    axes.set_xlabel("training instances")
    title = "Class histogram of the training split" + ("" if after is not None else " (class balancing off)")
    axes.set_title(title, fontsize=10)
    # A figure legend placed "outside": the constrained layout makes room for it below the axis
    # label (a legend anchored under the axes overlapped the label).
    figure.legend(fontsize=8, loc="outside lower center", ncol=2, frameon=False)
    axes.xaxis.grid(True, linestyle=":", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.spines["top"].set_visible(False)
    axes.spines["right"].set_visible(False)
    return figure


def class_rank_figure(
    classes: Sequence[str], before: Sequence[int], after: Sequence[float] | None, balance: str | None = None
) -> Figure:
    """The class histogram of many classes: training instances (and crop anchors after balancing) per class, the
    classes ranked from the most instances to the fewest on a log scale, the long tail as one curve; the title names
    the most and the least frequent class."""
    counts = np.asarray(before, dtype=float)
    order = np.argsort(-counts, kind="stable")
    ranks = np.arange(1, len(classes) + 1)
    first, last = order[0], order[-1]
    balanced = "" if after is not None else " (class balancing off)"
    # The two names on a line of their own, and the figure as wide as the title needs: on one line, the title of two
    # long names (40 characters, as figures cut them) reached past both edges of the 8-inch figure
    title = (f"Class histogram of the training split{balanced}\nmost {class_text(classes[first])} "
             f"({counts[first]:.4g}), fewest {class_text(classes[last])} ({counts[last]:.4g})")
    figure = Figure(figsize=(max(8.0, text_inches([title], 10) + 0.4), 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(ranks, counts[order], color="#8c9db5", drawstyle="steps-mid", label="training instances")
    if after is not None:
        axes.plot(ranks, np.asarray(after, dtype=float)[order], color="#d6457a", drawstyle="steps-mid",
                  label=f"crop anchors after {balance}")
    axes.set_yscale("symlog", linthresh=1.0)  # a class without instances stays on the plot, at 0
    axes.set_xlim(1, max(len(classes), 2))
    axes.set_xlabel(f"the {len(classes)} classes, from the most training instances to the fewest")
    axes.set_ylabel("training instances")
    axes.set_title(title, fontsize=10)
    figure.legend(fontsize=8, loc="outside lower center", ncol=2, frameon=False)
    _tidy(axes)
    return figure


# The class histogram draws a bar per class up to this many classes (about a page tall), then ranks them
MAX_HISTOGRAM_BARS = 60

# The class balancing figure draws at most this many classes' lines, as many as tab20 has colours: with 500 classes the
# colours repeated every 20 lines and the legend, taller than the figure, showed classes 239-260 alone
MAX_BALANCE_LINES = 20


def balance_figure(classes: Sequence[str], records: Sequence[Mapping]) -> Figure:
    """Each class's share of the training crops per epoch, from the `balance` records of metrics.jsonl
    (what the class balancer did; flat lines for the fixed methods, moving ones for adaptive). Beyond
    `MAX_BALANCE_LINES` classes, those with the largest share at any epoch are drawn, and the title says how many."""
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    axes = figure.add_subplot()
    rows = [r for r in records if r.get("kind") == "balance" and isinstance(r.get("crop_shares"), list)]
    epochs = [r["epoch"] for r in rows]
    colors = colormaps["tab20"]
    # a class the log does not give (null: not finite when logged) is a gap in its line
    shares = np.array([[100 * r["crop_shares"][c] if c < len(r["crop_shares"]) and r["crop_shares"][c] is not None
                        else np.nan for r in rows] for c in range(len(classes))], dtype=float).reshape(len(classes),
                                                                                                   len(rows))
    drawn = list(range(len(classes)))
    if len(classes) > MAX_BALANCE_LINES:  # the largest peaks, in class order; a class never logged comes last
        peaks = np.where(np.isnan(shares), -1.0, shares).max(axis=1, initial=-1.0)
        drawn = sorted(sorted(drawn, key=lambda c: -peaks[c])[:MAX_BALANCE_LINES])
    for index, c in enumerate(drawn):
        axes.plot(epochs, shares[c], marker=".", color=colors(index % 20), label=f"{c}  {class_text(classes[c])}")
    axes.set_xlabel("epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("share of training crops (%)")
    method = rows[0].get("method", "") if rows else ""  # as metrics.jsonl gives it: '$\\frac{$' failed as math
    # on a line of its own: on the method's, the title of a figure whose legend of long names narrowed the axes ran
    # into the legend (500 classes of 60 characters)
    which = (f"\nthe {len(drawn)} of {len(classes)} classes with the largest share" if len(drawn) < len(classes)
             else "")
    axes.set_title(f"Crops anchored on each class ({class_text(str(method))}){which}", fontsize=10)
    figure.legend(fontsize=7, loc="outside right center", frameon=False)
    _tidy(axes)
    return figure


def training_curves_figure(records: Sequence[Mapping]) -> Figure:
    """Training losses per epoch and validation F1 / mAP per epoch, from metrics.jsonl records."""
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    # One epoch axis for both: a single validation record would otherwise get an axis of its own.
    left, right = figure.subplots(1, 2, sharex=True)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    for key, color in (("loss", "black"), ("cls_loss", "#d6457a"), ("reg_loss", "#3b6fb6")):
        points = [(r["epoch"], r[key]) for r in train if r.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            left.plot(epochs, values, marker=".", color=color, label=key)
    left.set_xlabel("epoch")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel("training loss")
    left.set_title("Training loss", fontsize=10)
    if left.lines:  # records whose values are all null draw nothing: matplotlib warned of an empty legend
        left.legend(fontsize=8)
    else:  # as the validation panel says: an empty metrics.jsonl drew an empty panel without a word
        left.text(0.5, 0.5, "no training losses" if train else "no training records", ha="center", va="center",
                  transform=left.transAxes)
    _tidy(left)
    for key, color in (("f1", "#2f9e44"), ("f1_miga", "#a9d18e"), ("average_mAP", "#3b6fb6")):
        points = [(r["epoch"], 100 * r[key]) for r in val if r.get(key) is not None]
        if points:
            epochs, values = zip(*points)
            right.plot(epochs, values, marker="o", color=color, label=key)
    right.set_xlabel("epoch")
    right.set_ylabel("validation score (%)")
    right.set_title("Validation", fontsize=10)
    if right.lines:
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no validation scores" if val else "no validation records", ha="center", va="center",
                   transform=right.transAxes)
    _tidy(right)
    return figure


# The confusion matrix draws at most this many classes, the rest summed into one row and column (`fold_classes`).
MAX_CONFUSION_CLASSES = 30


def fold_classes(matrix: np.ndarray, background: Sequence[int] | None, missed: Sequence[int] | None,
                 instances: Sequence[int] | None, keep: int = MAX_CONFUSION_CLASSES
                 ) -> tuple[list[int], np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The `keep` classes with the most instances (ground truth: `instances`, else the matrix's row sums), in
    label order, and the counts with every other class summed into one last row and column: (kept ids, matrix
    (keep + 1, keep + 1), background, missed, instances, each with the folded classes' sum last). Every count of
    the input is in the output once."""
    weight = np.asarray(instances if instances is not None else matrix.sum(axis=1), dtype=np.int64)
    kept = sorted(int(i) for i in np.argsort(-weight, kind="stable")[:keep])
    rest = np.setdiff1d(np.arange(len(matrix)), kept)

    def fold(vector):
        if vector is None:
            return None
        vector = np.asarray(vector, dtype=np.int64)
        return np.append(vector[kept], vector[rest].sum())

    rows = np.vstack([matrix[kept], matrix[rest].sum(axis=0, keepdims=True)])
    folded = np.hstack([rows[:, kept], rows[:, rest].sum(axis=1, keepdims=True)])
    return kept, folded, fold(background), fold(missed), fold(instances)


def confusion_figure(
    labels: Sequence[str],
    matrix: Sequence[Sequence[int]],
    background: Sequence[int] | None = None,
    missed: Sequence[int] | None = None,
    instances: Sequence[int] | None = None,
) -> Figure:
    """Heat map of ground-truth class (rows) against predicted class (columns), with counts.

    Colours are row-normalised (each row's share), so rare classes are as readable as common
    ones. `background` (predictions that overlap no segment, per predicted class) is an extra row;
    `missed` (ground-truth segments of each class that no detection matched) an extra column,
    coloured by its share of the class's `instances` (or of the largest count without them).
    Class names label both axes. Beyond `MAX_CONFUSION_CLASSES` classes, those with the most instances are shown and
    the others are summed into one "other classes" row and column (`fold_classes`): a 500-class matrix took 8 GB
    and 70 s to draw.
    """
    ids = list(range(len(labels)))
    counts = np.asarray(matrix, dtype=np.int64).reshape(len(labels), len(labels))
    folded = len(labels) > MAX_CONFUSION_CLASSES
    if folded:
        ids, counts, background, missed, instances = fold_classes(counts, background, missed, instances)
    names = [f"{i}  {class_text(labels[i])}" for i in ids] + ([f"the other {len(labels) - len(ids)} classes"] if folded
                                                          else [])
    count = len(names)
    row_names = list(names)
    if background is not None:
        counts = np.vstack([counts, np.asarray(background, dtype=np.int64)[None, :]])
        row_names.append("no segment (background)")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    columns = count + (missed is not None)
    font = 8.5 if count <= 12 else (7 if count <= 24 else 5.5)
    # A cell as wide as its longest count needs: the folded classes' corner of a 500-class run (5393108) ran over its
    # neighbours
    widest = str(max(int(counts.max(initial=0)), int(np.max(missed, initial=0)) if missed is not None else 0))
    cell = max(0.5 if count <= 12 else 0.32, text_inches([widest], font) + LABEL_GAP_POINTS / 72)
    label_room = min(2.6, 0.07 * max([len(name) for name in row_names] + [8]))
    figure = Figure(figsize=(cell * columns + label_room + 2.4, cell * len(row_names) + label_room + 0.9),
                    layout="constrained")
    axes = figure.add_subplot()
    blues, reds = colormaps["Blues"], colormaps["Reds"]
    axes.imshow(shares, cmap=blues, vmin=0, vmax=1, aspect="auto", extent=(-0.5, count - 0.5, len(row_names) - 0.5,
                                                                           -0.5))

    def write(column: int, row: int, value: int, shade: float) -> None:
        axes.text(column, row, str(value), ha="center", va="center", fontsize=font,
                  color="white" if shade > 0.55 else "#1d232b")

    for (row, column), value in np.ndenumerate(counts):
        if value:
            write(column, row, int(value), shares[row, column])
    if missed is not None:
        missed_counts = np.asarray(missed, dtype=np.int64).reshape(count)
        base = np.asarray(instances, dtype=np.float64) if instances is not None else np.full(count, missed_counts.max())
        missed_shares = np.divide(missed_counts, base, out=np.zeros(count), where=base > 0)
        axes.imshow(missed_shares[:, None], cmap=reds, vmin=0, vmax=1, aspect="auto",
                    extent=(count - 0.5, count + 0.5, count - 0.5, -0.5))
        for row, value in enumerate(missed_counts):
            write(count, row, int(value), missed_shares[row])
        axes.axvline(count - 0.5, color="white", linewidth=3)
    if background is not None:
        axes.axhline(count - 0.5, color="white", linewidth=3)
    axes.set_xlim(-0.5, columns - 0.5)
    axes.set_ylim(len(row_names) - 0.5, -0.5)
    column_names = list(names)
    if missed is not None:
        column_names.append("missed")
    axes.set_xticks(range(columns), column_names, fontsize=8, rotation=40, ha="right", rotation_mode="anchor")
    axes.set_yticks(range(len(row_names)), row_names, fontsize=8)
    axes.tick_params(length=0)
    axes.set_aspect("equal")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("ground-truth class")
    title = "Confusion matrix of the hard set"
    if folded:
        title += (f"\n(the {len(ids)} classes with the most instances; the other classes' corner counts their "
                  "detections among themselves, right class or not)")
    axes.set_title(title, fontsize=10)
    figure.colorbar(ScalarMappable(Normalize(0, 1), blues), ax=axes, fraction=0.04, pad=0.02,
                    label="share of the row")
    if missed is not None:
        figure.colorbar(ScalarMappable(Normalize(0, 1), reds), ax=axes, fraction=0.04, pad=0.02,
                        label="share missed")
    return figure
