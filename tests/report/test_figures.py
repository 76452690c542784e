"""Figures: what is drawn equals the numbers given, and files are written reproducibly."""

import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.path import Path as MplPath

from mgrec.evaluate.analysis import (
    ERROR_TYPES,
    analyze,
    analyze_hard_set,
    f1_threshold_curve,
    precision_recall_curves,
)
from mgrec.records import Detection, Segment
from mgrec.report.figures import (
    _drawing,
    balance_figure,
    class_histogram_figure,
    confusion_figure,
    f1_threshold_figure,
    false_negative_figure,
    false_positive_figure,
    pr_curves_figure,
    save_figure,
    score_histogram_figure,
    sensitivity_figure,
    svg_bytes,
    training_curves_figure,
    write_analysis_figures,
)

NAMES = ["zero", "one"]


SEGMENTS = [Segment("v", 10.0, 20.0, 0, "zero"), Segment("v", 40.0, 41.0, 1, "one"), Segment("v", 60, 63, 1, "one")]
DETECTIONS = [
    Detection("v", 10.0, 20.0, 0, "zero", 0.9),
    Detection("v", 11.0, 14.0, 0, "zero", 0.8),
    Detection("v", 40.0, 41.0, 0, "zero", 0.7),
    Detection("v", 80.0, 81.0, 1, "one", 0.6),
    Detection("v", 60.0, 63.0, 1, "one", 0.5),
]


@pytest.fixture(scope="module")
def analysis():
    return analyze({"v": SEGMENTS}, {"v": DETECTIONS}, {"v": 100.0})


def bar_heights(axes) -> list[float]:
    return [patch.get_height() for container in axes.containers for patch in container]


def test_false_negative_bars_are_the_rates(analysis):
    figure = false_negative_figure(analysis)
    (axes,) = figure.axes
    expected = [
        0.0 if rate is None else 100 * rate
        for name in analysis.characteristics
        for rate in analysis.characteristics[name].false_negative_rates
    ]
    assert bar_heights(axes) == pytest.approx(expected)
    assert any(text.get_text() == "n/a" for text in axes.texts)
    assert 100.0 in expected  # the 1 s class-1 segment is missed


def test_false_positive_profile_stacks_to_100_and_shows_the_gains(analysis):
    figure = false_positive_figure(analysis)
    left, right = figure.axes[:2]
    assert len(left.containers) == len(ERROR_TYPES)
    heights = np.array([[patch.get_height() for patch in container] for container in left.containers])
    totals = [sum(counts.values()) for counts in analysis.false_positives.counts]
    assert heights.sum(axis=0) == pytest.approx([100.0 if total else 0.0 for total in totals])
    gains = [100 * analysis.false_positives.removal_gain[name] for name in ERROR_TYPES[1:]]
    assert bar_heights(right) == pytest.approx(gains)


def test_sensitivity_bars_and_reference_line(analysis):
    figure = sensitivity_figure(analysis)
    left = figure.axes[0]
    expected = [0.0 if v is None else 100 * v for c in analysis.characteristics.values() for v in c.map_n]
    assert bar_heights(left) == pytest.approx(expected)
    dashed = [line for line in left.lines if line.get_linestyle() == "--"]
    assert dashed and dashed[0].get_ydata()[0] == pytest.approx(100 * analysis.map_n)


def test_class_histogram_before_and_after():
    figure = class_histogram_figure(["a", "b", "c"], [40, 3, 0], [40, 12, 0], "eq1, α = 16")
    (axes,) = figure.axes
    assert [[patch.get_width() for patch in c] for c in axes.containers] == [[40, 3, 0], [40, 12, 0]]
    off = class_histogram_figure(["a", "b"], [5, 1], None)
    assert len(off.axes[0].containers) == 1
    assert "balancing off" in off.axes[0].get_title()


def test_training_curves_plot_the_records():
    records = [
        {"kind": "train", "epoch": e, "loss": 3.0 - e, "cls_loss": 2.0 - e / 2, "reg_loss": 1.0} for e in range(3)
    ]
    records.append({"kind": "val", "epoch": 2, "f1": 0.25, "f1_miga": 0.3, "average_mAP": 0.1})
    figure = training_curves_figure(records)
    left, right = figure.axes
    loss = next(line for line in left.lines if line.get_label() == "loss")
    assert list(loss.get_xdata()) == [0, 1, 2] and list(loss.get_ydata()) == [3.0, 2.0, 1.0]
    f1 = next(line for line in right.lines if line.get_label() == "f1")
    assert list(f1.get_ydata()) == [25.0]
    empty = training_curves_figure(records[:3])
    assert any("no validation" in text.get_text() for text in empty.axes[1].texts)


def test_training_curves_of_records_whose_values_are_all_null_draw_no_empty_legend(recwarn):
    """A metrics log whose losses and scores are all null (edited by hand, or an epoch that lost its numbers) made
    matplotlib warn "No artists with labels found to put in legend" twice, in the middle of `mgrec report`."""
    records = [{"kind": "train", "epoch": 0, "loss": None}, {"kind": "val", "epoch": 0, "f1": None}]
    left, right = training_curves_figure(records).axes
    assert left.get_legend() is None and right.get_legend() is None
    assert any(text.get_text() == "no validation scores" for text in right.texts)
    assert any(text.get_text() == "no training losses" for text in left.texts)
    assert not [w for w in recwarn if "No artists with labels" in str(w.message)]


def test_training_curves_of_no_records_say_so_in_both_panels():
    # an empty metrics.jsonl (or one of validation records alone) drew an empty loss panel, without a word, under
    # "Mean training losses per epoch"
    for records, left_words, right_words in (([], "no training records", "no validation records"),
                                              ([{"kind": "val", "epoch": 0, "f1": 0.5}], "no training records", None)):
        left, right = training_curves_figure(records).axes
        assert [text.get_text() for text in left.texts] == [left_words]
        assert [text.get_text() for text in right.texts] == ([right_words] if right_words else [])


def test_confusion_colours_are_row_shares_with_counts_written():
    figure = confusion_figure(NAMES, [[3, 1], [0, 0]], background=[2, 2])
    axes = figure.axes[0]
    shares = np.asarray(axes.images[0].get_array())
    assert shares == pytest.approx(np.array([[0.75, 0.25], [0.0, 0.0], [0.5, 0.5]]))
    assert sorted(text.get_text() for text in axes.texts) == ["1", "2", "2", "3"]
    assert axes.get_yticklabels()[-1].get_text().startswith("no segment")


@pytest.mark.slow
def test_written_figures_are_png_and_svg_and_reproducible(analysis, tmp_path):
    paths = write_analysis_figures(analysis, tmp_path / "a", prefix="test_")
    assert [p.name for p in paths] == [
        f"test_{stem}.{ext}" for stem in ("false_negatives", "false_positives", "sensitivity") for ext in ("png", "svg")
    ]
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            ElementTree.fromstring(data)
    # no date, seeded ids: the same figure gives the same bytes
    assert paths[1].read_bytes() == svg_bytes(false_negative_figure(analysis))


def test_a_figure_gives_the_same_svg_drawn_again_and_after_its_png(analysis, tmp_path):
    """The constrained layout placed a figure's parts again at each drawing, from where the last one left them and at
    its dpi: the SVG of a figure drawn twice, or after its PNG (`mgrec analyze`), differed from the report's."""
    gt, found = {"v": SEGMENTS}, {"v": DETECTIONS}
    makers = {
        "false positives": lambda: false_positive_figure(analysis),
        "F1 threshold": lambda: f1_threshold_figure(f1_threshold_curve(gt, found), 0.4, "val", "test"),
        "PR curves": lambda: pr_curves_figure(precision_recall_curves(gt, found), NAMES, 0.4),
        "confusion": lambda: confusion_figure(NAMES, [[3, 1], [0, 2]], [1, 0], [0, 1], [4, 3]),
    }
    for name, make in makers.items():
        figure = make()
        first = svg_bytes(figure)
        assert svg_bytes(figure) == first, name
        assert save_figure(make(), tmp_path / "figure")[1].read_bytes() == first, name


def test_bin_edges_are_printed_under_the_bars_and_the_set_is_named(analysis):
    (axes,) = false_negative_figure(analysis).axes
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels[:2] == [f"XS\n[0, 0.5]\n{analysis.characteristics['relative_length'].gt_counts[0]}",
                          f"S\n(0.5, 0.8]\n{analysis.characteristics['relative_length'].gt_counts[1]}"]
    assert "XL\n(9.75, ∞)\n1" in labels  # the 10 s segment
    assert axes.get_title().startswith("False negative analysis of the ranked list, tIoU ≥ 0.5")
    hard = analyze_hard_set({"v": SEGMENTS}, {"v": DETECTIONS}, {"v": 100.0}, 0.65)
    assert "hard set (score ≥ 0.65), tIoU > 0.3" in false_positive_figure(hard).axes[0].get_title()


def test_confusion_has_class_names_on_both_axes_and_a_missed_column():
    names = ["zero", "one $\\frac{$"]  # a "$" in a name must not be read as math
    figure = confusion_figure(names, [[3, 1], [0, 0]], background=[2, 2], missed=[1, 4], instances=[4, 4])
    axes = figure.axes[0]
    columns = [label.get_text() for label in axes.get_xticklabels()]
    rows = [label.get_text() for label in axes.get_yticklabels()]
    assert columns == ["0  zero", "1  one \\$\\frac{\\$", "missed"]
    assert rows[:2] == columns[:2] and rows[2].startswith("no segment")
    assert np.asarray(axes.images[1].get_array()).ravel() == pytest.approx([0.25, 1.0])
    assert sorted(text.get_text() for text in axes.texts) == ["1", "1", "2", "2", "3", "4"]
    assert all(text.get_fontsize() >= 8 for text in axes.texts)
    ElementTree.fromstring(svg_bytes(figure))  # renders


def test_a_confusion_of_many_classes_shows_the_most_frequent_and_sums_the_others():
    # 500 classes took 8 GB and 70 s to draw; every count stays in the figure, the rare classes' summed
    from mgrec.report.figures import MAX_CONFUSION_CLASSES, fold_classes

    count = MAX_CONFUSION_CLASSES + 3
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, size=(count, count))
    instances = np.arange(count)[::-1] + 10  # class 0 the most frequent
    background, missed = rng.integers(0, 5, size=count), rng.integers(0, 5, size=count)
    kept, folded, folded_background, folded_missed, folded_instances = fold_classes(matrix, background, missed,
                                                                                    instances)
    assert kept == list(range(MAX_CONFUSION_CLASSES))
    assert folded.shape == (MAX_CONFUSION_CLASSES + 1,) * 2 and folded.sum() == matrix.sum()
    assert folded[-1, -1] == matrix[MAX_CONFUSION_CLASSES:, MAX_CONFUSION_CLASSES:].sum()
    assert folded_background.sum() == background.sum() and folded_missed.sum() == missed.sum()
    assert folded_instances[-1] == instances[MAX_CONFUSION_CLASSES:].sum()
    figure = confusion_figure([f"c{i}" for i in range(count)], matrix, background, missed, instances)
    columns = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert columns[-2:] == ["the other 3 classes", "missed"] and len(columns) == MAX_CONFUSION_CLASSES + 2
    assert "the other classes' corner counts their detections among themselves" in figure.axes[0].get_title()


def test_the_class_histogram_of_many_classes_ranks_them_in_a_figure_of_fixed_height():
    # a bar per class made 500 classes a 141-inch figure, its labels unreadable
    from mgrec.report.figures import MAX_HISTOGRAM_BARS

    count = 500
    before = [(count - c) % 97 for c in range(count)]
    after = [max(n, 5) for n in before]
    figure = class_histogram_figure([f"class {c}" for c in range(count)], before, after, "repeat factor")
    assert figure.get_figheight() < 5
    (axes,) = figure.axes
    instances, anchors = axes.lines
    assert list(instances.get_ydata()) == sorted(before, reverse=True)
    assert list(anchors.get_ydata()) == [after[c] for c in sorted(range(count), key=lambda c: -before[c])]
    assert "most class 16 (96)" in axes.get_title() and "fewest class 403 (0)" in axes.get_title()
    few = class_histogram_figure([f"c{c}" for c in range(MAX_HISTOGRAM_BARS)], [1] * MAX_HISTOGRAM_BARS, None)
    assert len(few.axes[0].containers) == 1  # still a bar per class up to the limit


def test_class_histogram_legend_does_not_cover_the_axis_label():
    figure = class_histogram_figure([f"class {i}" for i in range(7)], [545, 325, 227, 169, 122, 69, 54],
                                    [545, 325, 227, 169, 244, 207, 162], "eq1, α = 160")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (axes,) = figure.axes
    label = axes.xaxis.label.get_window_extent(renderer)
    legend = figure.legends[0].get_window_extent(renderer)
    assert not label.overlaps(legend)
    assert legend.y1 <= label.y0


def test_pr_curves_one_panel_per_class_and_the_operating_point():
    curves = precision_recall_curves({"v": SEGMENTS}, {"v": DETECTIONS}, tious=[0.3, 0.5])
    figure = pr_curves_figure(curves, NAMES, score_threshold=0.65)
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert len(panels) == 2
    zero = panels[0]
    # class 0: ranked 0.9 (TP), 0.8 (FP), 0.7 (FP): at 0.65 all three, precision 1/3, recall 1
    dots = [line for line in zero.lines if line.get_marker() == "o"]
    assert len(dots) == 2
    assert [line.get_xdata()[0] for line in dots] == pytest.approx([1.0, 1.0])
    assert [line.get_ydata()[0] for line in dots] == pytest.approx([100 / 3, 100 / 3])
    assert "0 zero" in zero.get_title() and "\n1 segment," in zero.get_title()  # was "1 segments"


def test_pr_curves_of_many_classes_show_the_most_frequent_and_say_so():
    # a 500-class report did not finish in 5 minutes: the figure's layout time grows faster than its panels
    from mgrec.evaluate.analysis import PRCurve
    from mgrec.report.figures import MAX_PR_PANELS

    count = MAX_PR_PANELS + 5
    curves = {0.5: {label_id: PRCurve(label_id, 0.5, num_gt=label_id + 1, scores=np.array([0.9]),
                                      precision=np.array([1.0]), recall=np.array([1.0 / (label_id + 1)]))
                    for label_id in range(count)}}
    figure = pr_curves_figure(curves, [f"c{i}" for i in range(count)], score_threshold=0.5)
    titles = [axes.get_title() for axes in figure.axes if axes.get_visible()]
    assert len(titles) == MAX_PR_PANELS
    assert titles[0].startswith("5 c5") and titles[-1].startswith(f"{count - 1} c{count - 1}")  # the most segments
    (legend,) = figure.legends
    assert legend.get_title().get_text() == (f"the {MAX_PR_PANELS} classes with the most ground-truth segments, of "
                                             f"{count} (every class's AP is in the per-class table)")
    # the note was a suptitle the constrained layout drew over the legend of the tIoUs (a 500-class run)
    assert not overlapping_figure_texts(figure)


# The space two texts of a figure must leave between them along their lines, in points: the default bins' labels
# "(0.8, 1.25]" and "(1.25, 2]", 1.4 points apart, read as one word
TEXT_GAP_POINTS = 3.0


def _text_outline(text, renderer) -> MplPath:
    """The rectangle a (possibly rotated) text covers, in pixels, widened by half of `TEXT_GAP_POINTS` at both ends
    of its lines: the axis-aligned box of a rotated label covers its neighbour's though the words are apart."""
    box = text.get_window_extent(renderer)
    rotation = text.get_rotation()
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    half_width = flat.width / 2 + renderer.points_to_pixels(TEXT_GAP_POINTS / 2)
    half_height = flat.height / 2
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    x, y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2  # a rotated rectangle's centre is its box's
    return MplPath([(x + dx * cos - dy * sin, y + dx * sin + dy * cos)
                    for dx, dy in ((-half_width, -half_height), (half_width, -half_height), (half_width, half_height),
                                   (-half_width, half_height))])


def _box_outline(artist, renderer) -> MplPath:
    box = artist.get_window_extent(renderer)
    return MplPath([(box.x0, box.y0), (box.x1, box.y0), (box.x1, box.y1), (box.x0, box.y1)])


def overlapping_figure_texts(figure) -> list[tuple[str, str]]:
    """The pairs of the figure's texts drawn over (or against) each other (`drawn_figure_texts`)."""
    return overlapping_texts(drawn_figure_texts(figure))


def overlapping_texts(named: list[tuple[str, MplPath]]) -> list[tuple[str, str]]:
    return [(a, b) for i, (a, path_a) in enumerate(named) for b, path_b in named[i + 1:]
            if path_a.intersects_path(path_b, filled=True)]


def texts_outside_the_canvas(figure, named: list[tuple[str, MplPath]]) -> list[str]:
    """The texts of `named` (`drawn_figure_texts`) that reach past the edge of the figure's canvas, or come closer to
    it than half of `TEXT_GAP_POINTS`: a title wider than the figure, a legend wider than its panels. The saved files
    (`bbox_inches="tight"`) grow to hold them, so the figure is no longer the size it was laid out at: its axes off
    centre, the page's figure wider than the rest."""
    box = figure.bbox
    return [name for name, path in named
            if not all(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1 for x, y in path.vertices)]


def drawn_figure_texts(figure) -> list[tuple[str, MplPath]]:
    """The figure's texts as drawn, each with the outline it covers (`_text_outline`; a legend's box): its own
    (suptitle, supxlabel, supylabel), its legends, and every visible axes' titles, axis labels, tick labels in view,
    texts and legends."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    with _drawing():  # as the figures are saved
        figure.draw(renderer)  # the constrained layout places them
        named = []

        def add(text) -> None:
            if text.get_visible() and text.get_text():
                named.append((text.get_text(), _text_outline(text, renderer)))

        for text in figure.texts:
            add(text)
        named += [(f"legend {n}", _box_outline(legend, renderer)) for n, legend in enumerate(figure.legends)]
        for axes in figure.axes:
            if not axes.get_visible():
                continue
            for text in (axes.title, axes._left_title, axes._right_title, axes.xaxis.label, axes.yaxis.label,
                         *axes.texts):
                add(text)
            if axes.get_legend() is not None:
                named.append(("axes legend", _box_outline(axes.get_legend(), renderer)))
            for axis in (axes.xaxis, axes.yaxis):
                low, high = sorted(axis.get_view_interval())
                slack = 1e-9 * (high - low + 1)
                for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                    if low - slack <= tick.get_loc() <= high + slack:  # the ticks outside the view are not drawn
                        add(tick.label1)
                        add(tick.label2)
    return named


def _classes_data(count: int, names: list[str]):
    """Ground truth and detections of `count` classes over four videos, of every length bin, and a video of 210
    segments of class 0 (the upper instance bins)."""
    rng = np.random.default_rng(count)
    gt, detections = {}, {}
    for v in range(4):
        segments, found, start = [], [], 0.0
        for c in range(count):
            for k in range(1 + (c + v) % 2):
                length = (0.4, 1.0, 3.0, 6.0, 8.0, 12.0)[(c + k + v) % 6]
                segments.append(Segment(f"v{v}", start, start + length, c, names[c]))
                found.append(Detection(f"v{v}", start + 0.1 * k, start + length, c, names[c], float(rng.random())))
                other = (c + 1) % count
                found.append(Detection(f"v{v}", start + length + 1, start + length + 2, other, names[other],
                                       float(rng.random())))
                start += length + 3
        gt[f"v{v}"], detections[f"v{v}"] = segments, found
    gt["many"] = [Segment("many", 2.0 * i, 2.0 * i + 1, 0, names[0]) for i in range(210)]
    detections["many"] = [Detection("many", s.start, s.end, 0, names[0], 0.5) for s in gt["many"][::2]]
    durations = {video: max(s.end for s in segments) + 5 for video, segments in gt.items()}
    return gt, detections, durations


@pytest.mark.parametrize("count, long_names", [(1, False), (7, False), (7, True), (60, True), (500, True)])
def test_no_two_texts_of_any_figure_overlap_nor_leave_the_canvas_at_any_class_count(count, long_names):
    """Every figure of the report and of `mgrec analyze`, for 1 to 500 classes, with names of 60 characters:
    the sensitivity figure's bin labels ran into each other ("(0.8, 1.25](1.25, 2]"), the values over full bars into
    the characteristics' names, a range's two ends into each other, long class names' PR panel titles into their
    neighbours, the folded corner of a 500-class confusion matrix (5393108) over its neighbours' counts. Past the
    canvas: the legend of one class's PR curves, the last PR panel's title of long names, and the title of the
    500-class histogram, naming two long names."""
    names = [f"class {c} {'x' * 60}"[:60] if long_names else f"c{c}" for c in range(count)]
    gt, detections, durations = _classes_data(count, names)
    instances = [sum(s.label_id == c for segments in gt.values() for s in segments) for c in range(count)]
    records = [{"kind": "balance", "epoch": e, "method": "repeat_factor", "crop_shares": [1 / count] * count}
               for e in range(3)]
    records += [{"kind": "train", "epoch": e, "loss": 1 / (e + 1), "cls_loss": 0.5, "reg_loss": 0.5}
                for e in range(3)]
    records += [{"kind": "val", "epoch": e, "f1": 0.3, "f1_miga": 0.4, "average_mAP": 0.2} for e in range(3)]
    scores = [[d.score for found in detections.values() for d in found if d.label_id == c] for c in range(count)]
    matrix = np.random.default_rng(1).integers(0, 50, size=(count, count))
    makers = {
        "class histogram": lambda: class_histogram_figure(names, instances, [1.5 * n for n in instances], "eq1"),
        "class balancing": lambda: balance_figure(names, records),
        "score histogram": lambda: score_histogram_figure(names, scores, 0.4),
        "confusion": lambda: confusion_figure(names, matrix, matrix.sum(0) % 7, matrix.sum(1) % 11, matrix.sum(1)),
    }
    if count <= 60:  # the figures of 500 classes are those of 60 (the analysis's; the PR curves' 40 panels)
        ranked, hard = analyze(gt, detections, durations), analyze_hard_set(gt, detections, durations, 0.4)
        makers |= {
            **{f"{which} {make.__name__}": (lambda make=make, analysis=analysis: make(analysis))
               for which, analysis in (("ranked", ranked), ("hard", hard))
               for make in (false_negative_figure, false_positive_figure, sensitivity_figure)},
            "PR curves": lambda: pr_curves_figure(precision_recall_curves(gt, detections, tious=[0.3, 0.5, 0.7]),
                                                  names, 0.4),
            "F1 threshold": lambda: f1_threshold_figure(f1_threshold_curve(gt, detections), 0.4, names[-1], "test"),
            "training curves": lambda: training_curves_figure(records),
        }
        if count == 60:  # 60 classes of PR curves, like 500, took seconds: the confusion of 500 tells as much
            del makers["confusion"]
    overlaps, outside = {}, {}
    for name, make in makers.items():
        figure = make()
        named = drawn_figure_texts(figure)
        if found := overlapping_texts(named):
            overlaps[name] = found
        if found := texts_outside_the_canvas(figure, named):
            outside[name] = found
    assert not overlaps
    assert not outside


def test_f1_threshold_figure_plots_the_curve_and_marks_both_thresholds():
    curve = f1_threshold_curve({"v": SEGMENTS}, {"v": DETECTIONS})
    figure = f1_threshold_figure(curve, 0.65, "val", "test")
    (axes,) = figure.axes
    f1_line = next(line for line in axes.lines if line.get_label() == "F1 (one-to-one)")
    assert list(f1_line.get_ydata()[1:-1]) == pytest.approx(list(100 * curve.f1))
    assert f1_line.get_drawstyle() == "steps-pre"
    verticals = {line.get_label(): line.get_xdata()[0] for line in axes.lines if line.get_label().startswith(
        ("tuned", "best"))}
    tuned = next(label for label in verticals if label.startswith("tuned on val: 0.65"))
    assert verticals[tuned] == 0.65
    best = next(label for label in verticals if label.startswith("best on test"))
    assert verticals[best] == pytest.approx(curve.best_threshold)


def test_f1_threshold_figure_of_logit_scores_spans_them_and_draws_its_thresholds():
    # another tool's logits (`score --pred ... --analysis`): the axis was [0, 1], the curve drawn from 0 back to the
    # lowest logit and forth again, and the thresholds in use and best (-0.5, -1.2) outside it, not drawn
    logits = [Detection(d.video_id, d.start, d.end, d.label_id, d.label, value)
              for d, value in zip(DETECTIONS, (2.5, 1.0, -0.5, -1.2, -3.0))]
    curve = f1_threshold_curve({"v": SEGMENTS}, {"v": logits})
    figure = f1_threshold_figure(curve, -0.5, None, "test")
    (axes,) = figure.axes
    low, high = axes.get_xlim()
    assert low < -3.0 and high > 2.5
    f1_line = next(line for line in axes.lines if line.get_label() == "F1 (one-to-one)")
    assert np.all(np.diff(f1_line.get_xdata()) > 0)  # left to right, never back
    verticals = [line.get_xdata()[0] for line in axes.lines if line.get_label().startswith(("in use", "best"))]
    assert verticals == [curve.best_threshold, -0.5] and all(low < x < high for x in verticals)
    # probabilities keep their axis: from 0 to a little past the highest score
    figure = f1_threshold_figure(f1_threshold_curve({"v": SEGMENTS}, {"v": DETECTIONS}), 0.65, "val", "test")
    assert figure.axes[0].get_xlim() == pytest.approx((0.0, 1.0))


def test_training_curves_share_the_epoch_axis():
    records = [{"kind": "train", "epoch": e, "loss": 1.0} for e in range(3)] + [{"kind": "val", "epoch": 2, "f1": 0.5}]
    left, right = training_curves_figure(records).axes
    assert left.get_xlim() == right.get_xlim()


def test_class_names_in_scripts_the_font_lacks_draw_without_a_flood_of_warnings(recwarn):
    import numpy as np

    from mgrec.report.figures import class_histogram_figure, svg_bytes

    svg = svg_bytes(class_histogram_figure(["挥手", "😀 wave", "nod"], np.array([3, 4, 5]), None, None))
    assert b"<svg" in svg
    assert not [w for w in recwarn if "missing from font" in str(w.message)]


def test_a_figure_that_cannot_be_written_is_an_input_error_naming_it_and_leaves_nothing(tmp_path):
    # `mgrec analyze` on a read-only run folder: a raw OSError traceback from matplotlib's savefig
    from matplotlib.figure import Figure

    from mgrec.errors import InputError

    blocker = tmp_path / "analysis"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(InputError, match=r"analysis/test_false_negatives\.png"):
        save_figure(Figure(), blocker / "test_false_negatives")
    paths = save_figure(Figure(), tmp_path / "fig")
    assert [p.name for p in paths] == ["fig.png", "fig.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and b"<svg" in paths[1].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysis", "fig.png", "fig.svg"]  # no temporaries


def test_long_class_names_are_cut_in_figures_and_leave_the_axes_their_width(recwarn):
    """The score histogram of `report --detections` with a 150-character class name: its legend was wider than the
    figure, the layout gave up (matplotlib: "axes sizes collapsed to zero") and the legend was drawn over the bars."""
    from mgrec.report.figures import MAX_FIGURE_NAME_CHARS, class_text, score_histogram_figure

    names = ["Scratching or touching facial parts other than the eyes " * 3, "b$x$\u202e" + "c" * 80, "nod"]
    figure = score_histogram_figure(names, [[0.5, 0.6], [0.7], [0.9]], 0.4)
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    (axes,) = figure.axes
    plot, legend = axes.get_window_extent(renderer), figure.legends[0].get_window_extent(renderer)
    assert not plot.overlaps(legend) and plot.width > 0.5 * figure.bbox.width
    assert not [w for w in recwarn if "collapsed" in str(w.message)]
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == [class_text(name) for name in names] and labels[2] == "nod"
    assert len(labels[0]) == MAX_FIGURE_NAME_CHARS and labels[0].endswith("…")
    assert labels[1].startswith(r"b\$x\$\u202ec")  # still drawn as written, not as math, nor reversed
    for figure in (class_histogram_figure(names, [3, 4, 5], None), confusion_figure(names, np.eye(3, dtype=int))):
        figure.draw(FigureCanvasAgg(figure).get_renderer())
        assert not [w for w in recwarn if "collapsed" in str(w.message)]


def test_names_from_the_files_in_figure_titles_and_legends_are_drawn_plain_and_cut(recwarn):
    # a balance record's method '$\frac{$' (metrics.jsonl edited) stopped the report on matplotlib's math parser
    # (ParseSyntaxException), and a threshold_tuned_on of 30000 characters collapsed the F1 figure's axes
    # ("constrained_layout not applied because axes sizes collapsed to zero")
    from mgrec.report.figures import MAX_FIGURE_NAME_CHARS, balance_figure

    shares = [{"kind": "balance", "epoch": 0, "method": "$\\frac{$", "crop_shares": [0.5, 0.5]}]
    figure = balance_figure(NAMES, shares)
    svg_bytes(figure)  # drawn
    assert figure.axes[0].get_title() == "Crops anchored on each class (\\$\\frac{\\$)"
    long = "m" * 30000
    title = balance_figure(NAMES, [{**shares[0], "method": long}]).axes[0].get_title()
    assert title == f"Crops anchored on each class ({'m' * (MAX_FIGURE_NAME_CHARS - 1)}…)"
    figure = f1_threshold_figure(f1_threshold_curve({"v": SEGMENTS}, {"v": DETECTIONS}), 0.65, "v" * 30000,
                                 "$test" + "t" * 30000)
    svg_bytes(figure)
    (axes,) = figure.axes
    labels = [line.get_label() for line in axes.lines]
    assert f"tuned on {'v' * (MAX_FIGURE_NAME_CHARS - 1)}…: 0.65 (F1 " in " ".join(labels)
    assert any(label.startswith("best on \\$test") and "…: " in label for label in labels)
    assert max(map(len, [axes.get_title(), *labels])) < 120
    assert not [w for w in recwarn if "collapsed" in str(w.message)]


def test_the_class_balancing_figure_of_many_classes_draws_those_with_the_largest_share_and_says_so():
    # 500 classes: 500 lines in tab20's 20 colours (every 20th alike) and a legend taller than the figure, which
    # showed classes 239-260 alone
    from mgrec.report.figures import balance_figure

    count, drawn = 500, 20  # as many lines as tab20 has colours (MAX_BALANCE_LINES)
    shares = np.full(count, 0.5 / (count - 3))
    shares[[7, 250, 499]] = [0.2, 0.2, 0.1]  # the classes the balancer favours
    records = [{"kind": "balance", "epoch": epoch, "method": "repeat_factor", "crop_shares": shares.tolist()}
               for epoch in range(3)]
    figure = balance_figure([f"c{index}" for index in range(count)], records)
    (axes,) = figure.axes
    labels = [line.get_label() for line in axes.lines]
    assert len(labels) == drawn and {"7  c7", "250  c250", "499  c499"} <= set(labels)
    assert len({tuple(line.get_color()) for line in axes.lines}) == drawn  # no two alike
    assert axes.get_title() == (f"Crops anchored on each class (repeat_factor)\nthe {drawn} of {count} "
                                "classes with the largest share")
    few = balance_figure(NAMES, [{"kind": "balance", "epoch": 0, "method": "none", "crop_shares": [0.5, None]}])
    assert [line.get_label() for line in few.axes[0].lines] == ["0  zero", "1  one"]  # every class, as before
    assert few.axes[0].get_title() == "Crops anchored on each class (none)"


def test_the_score_histogram_of_many_classes_stacks_those_with_the_most_detections_and_the_others_as_one():
    # 500 classes with detections: 500 stacked bands and a legend taller than the figure naming the first 20 alone
    from mgrec.report.figures import score_histogram_figure

    count, kept = 500, 19  # and one band of the others: the 20 rows of legend the figure holds
    scores = [[0.5] * (30 if c in (3, 250, 499) else 1) for c in range(count)]
    figure = score_histogram_figure([f"c{c}" for c in range(count)], scores, 0.4)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert len(labels) == kept + 1 and {"c3", "c250", "c499"} <= set(labels)
    assert labels[-1] == f"the other {count - kept} classes"
    (axes,) = figure.axes
    assert sum(patch.get_height() for patch in axes.patches) == sum(map(len, scores))  # every detection counted
