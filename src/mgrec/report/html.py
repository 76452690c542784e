"""A run's results as one self-contained HTML page, and its error-analysis figures as files.

`write_report(run_dir, split)` reads the run directory (config.yaml, classes.json,
eval_<split>.json, detections_<split>.json, metrics.jsonl) and the annotations named by
`data.annotations` in the config, and writes RUN_DIR/report_<split>.html: headline scores, an
interactive timeline per video (ground truth against the hard set of detections), the per-class
table, the confusion matrix, the DETAD error analysis, the class histogram before and after label
augmentation and the training curves. The page needs no network: CSS and JS are inlined, figures
are SVG data URIs, and every text from the data is escaped.

`analyze_run(run_dir, split)` writes the error-analysis figures (PNG and SVG) and the numbers
behind them to RUN_DIR/analysis/<split>_*.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from matplotlib.figure import Figure

from mgrec.config import Config
from mgrec.data.annotations import load_annotations
from mgrec.data.augment import augment_annotations, class_histogram
from mgrec.errors import InputError, where
from mgrec.evaluate.analysis import ErrorAnalysis, analyze
from mgrec.evaluate.f1 import F1_TIOU_THRESHOLD, apply_score_threshold, f1_strict
from mgrec.evaluate.matching import tiou_matrix
from mgrec.evaluate.predictions import load_predictions
from mgrec.files import atomic_write_text, read_json
from mgrec.records import AnnotationSet, Detection, Segment
from mgrec.report.figures import (
    class_histogram_figure,
    confusion_figure,
    false_negative_figure,
    false_positive_figure,
    sensitivity_figure,
    svg_bytes,
    training_curves_figure,
    write_analysis_figures,
)
from mgrec.run import RunDir

# What the report reads from eval_<split>.json (the "Scores" contract).
_SCORE_KEYS = (
    "num_predictions", "score_threshold", "f1", "precision", "recall", "f1_miga", "average_mAP", "mAP",
    "per_class", "confusion",
)


@dataclass
class RunData:
    """Everything the report shows about one split of one run."""

    run_dir: Path
    split: str
    config: Config
    classes: list[str]
    annotations: AnnotationSet
    ground_truth: dict[str, list[Segment]]  # every video of the split, possibly without segments
    ranked: dict[str, list[Detection]]  # detections_<split>.json

    def video_durations(self) -> dict[str, float]:
        return {v: self.annotations.videos[v].duration for v in self.ground_truth}


def load_run(run_dir: str | Path, split: str = "test", annotations: str | Path | None = None) -> RunData:
    """Config, classes, annotations and ranked detections of `split` of a run directory.

    `annotations` overrides the config's `data.annotations` (a relative path there is read from
    the current directory, as `mgrec train` did).
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: not a run directory")
    run_dir = run.path
    config = run.read_config()
    classes_path = run.classes_path
    classes = run.read_classes()
    annotations_path = Path(annotations) if annotations is not None else Path(config.data.annotations)
    if not str(annotations_path) or str(annotations_path) == ".":
        raise InputError(f"{where(run_dir / 'config.yaml', key='data.annotations')}: no annotations file given")
    if not annotations_path.is_file():
        raise InputError(
            f"{where(run_dir / 'config.yaml', key='data.annotations')}: {annotations_path} not found "
            f"(relative paths are read from the current directory {Path.cwd()}); pass the annotations file explicitly"
        )
    annotation_set = load_annotations(annotations_path)
    if annotation_set.classes != classes:
        raise InputError(
            f"{classes_path}: the run's classes differ from those of {annotations_path} "
            f"({len(classes)} vs {len(annotation_set.classes)} classes); is this the run's annotations file?"
        )
    video_ids = annotation_set.video_ids(split)
    if not video_ids:
        raise InputError(
            f"{annotations_path}: no videos in split {split!r} (splits: {', '.join(annotation_set.subsets())})"
        )
    detections_path = run.detections_path(split)
    if not detections_path.is_file():
        raise InputError(f"{detections_path}: not found; expected the run's detections on split {split!r} "
                         "(written by mgrec evaluate)")
    ranked = load_predictions(detections_path, classes)
    unknown = sorted(set(ranked) - set(video_ids))
    if unknown:
        raise InputError(
            f"{detections_path}: detections for {len(unknown)} video(s) outside split {split!r} of "
            f"{annotations_path}: {', '.join(unknown[:5])}"
        )
    return RunData(
        run_dir=run_dir,
        split=split,
        config=config,
        classes=classes,
        annotations=annotation_set,
        ground_truth={v: list(annotation_set.segments.get(v, [])) for v in video_ids},
        ranked={v: list(ranked.get(v, [])) for v in video_ids},
    )


def read_scores(path: Path) -> dict:
    """eval_<split>.json, checked for the keys the report shows."""
    if not path.is_file():
        raise InputError(f"{path}: not found; expected the run's scores (written by mgrec evaluate)")
    scores = read_json(path, "scores")
    missing = [key for key in _SCORE_KEYS if not isinstance(scores, dict) or key not in scores]
    if missing:
        raise InputError(f"{path}: missing key(s) {', '.join(missing)}; expected the output of mgrec evaluate")
    return scores


def run_analysis(run: RunData) -> ErrorAnalysis:
    """DETAD's error analysis of the run's ranked detections at tIoU 0.5 with the default bins."""
    return analyze(run.ground_truth, run.ranked, run.video_durations())


def analyze_run(run_dir: str | Path, split: str = "test", annotations: str | Path | None = None) -> list[Path]:
    """Write the error-analysis figures (PNG, SVG) and their numbers (JSON) to RUN_DIR/analysis/<split>_*."""
    run = load_run(run_dir, split, annotations)
    analysis = run_analysis(run)
    out_dir = run.run_dir / "analysis"
    paths = write_analysis_figures(analysis, out_dir, prefix=f"{split}_")
    summary = out_dir / f"{split}_analysis.json"
    atomic_write_text(summary, json.dumps(analysis.to_json(), indent=1))
    return [*paths, summary]


# ---------------------------------------------------------------------------------------------
# Page parts


def _asset(name: str) -> str:
    return resources.files("mgrec.report").joinpath(name).read_text(encoding="utf-8")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _figure_html(figure: Figure, alt: str, caption: str) -> str:
    data = base64.b64encode(svg_bytes(figure)).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def class_color(label_id: int) -> str:
    """A distinct colour per class: hues a golden angle apart, two lightness levels."""
    hue = (label_id * 137.508) % 360
    lightness = 48 if label_id % 2 == 0 else 62
    return f"hsl({hue:.0f}, 68%, {lightness}%)"


def _class_css(num_classes: int) -> str:
    return "\n".join(
        f".c{i} {{ fill: {class_color(i)}; background: {class_color(i)}; }}" for i in range(num_classes)
    )


def _headline(scores: dict, run: RunData) -> str:
    cards = [
        ("F1 (one-to-one)", scores["f1"]),
        ("F1 (MiGA rule)", scores["f1_miga"]),
        ("precision", scores["precision"]),
        ("recall", scores["recall"]),
        ("average mAP", scores["average_mAP"]),
    ]
    card_html = "".join(
        f'<div class="card"><div class="value">{_percent(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for label, value in cards
    )
    maps = " · ".join(f"mAP@{html.escape(str(t))} {_percent(v)}" for t, v in scores["mAP"].items())
    return (
        f'<div class="cards">{card_html}</div>'
        f'<p class="note">{len(run.ground_truth)} videos, {sum(map(len, run.ground_truth.values()))} ground-truth '
        f"segments; F1, precision and recall are on the hard set: the "
        f"{scores['num_predictions']} detections with score ≥ {scores['score_threshold']:.4g}, matched "
        f"one to one (or by the MiGA starter-kit rule) to a segment of the same class with tIoU &gt; "
        f"{F1_TIOU_THRESHOLD:g}. mAP is on the ranked detections: {maps}.</p>"
    )


def _per_class_table(scores: dict) -> str:
    rows = sorted(scores["per_class"].items(), key=lambda item: item[1]["label_id"])
    body = "".join(
        f'<tr><td class="num">{row["label_id"]}</td><td>{html.escape(name)}</td>'
        f'<td class="num">{row["instances"]}</td><td class="num">{_percent(row["ap"])}</td>'
        f'<td class="num">{_percent(row["f1"])}</td><td class="num">{_percent(row["precision"])}</td>'
        f'<td class="num">{_percent(row["recall"])}</td></tr>'
        for name, row in rows
    )
    return (
        '<table class="per-class"><thead><tr><th>id</th><th>class</th><th>instances</th><th>AP</th><th>F1</th>'
        f"<th>precision</th><th>recall</th></tr></thead><tbody>{body}</tbody></table>"
        '<p class="note">AP is averaged over the mAP tIoU thresholds; F1, precision and recall are one to one on '
        "the hard set. All values in %.</p>"
    )


def _legend(classes: list[str]) -> str:
    items = "".join(
        f'<span><span class="swatch c{i}"></span>{html.escape(name)}</span>' for i, name in enumerate(classes)
    )
    return f'<div class="legend">{items}</div>'


def _bar(kind: str, video_id: str, item: Segment | Detection, lane: int, missed: bool, title: str) -> str:
    classes = f"{kind} c{item.label_id}" + (" miss" if missed else "")
    return (
        f'<rect class="{classes}" data-video="{html.escape(video_id)}" x="{item.start:.3f}" y="{lane + 0.12:.2f}" '
        f'width="{max(item.end - item.start, 0.0):.3f}" height="0.76"><title>{html.escape(title)}</title></rect>'
    )


def _video_timeline(
    video_id: str,
    duration: float,
    segments: list[Segment],
    hard: list[Detection],
    matched_gt: set[int],
    matched_det: set[int],
) -> str:
    """One video: ground-truth lane (top) and hard-set detection lane (bottom) in one SVG."""
    bars = []
    for index, segment in enumerate(segments):
        found = index in matched_gt
        title = (
            f"{segment.label} · {segment.start:.2f}–{segment.end:.2f} s · ground truth · "
            f"{'found' if found else 'missed'}"
        )
        bars.append(_bar("gt-bar", video_id, segment, 0, not found, title))
    overlaps = tiou_matrix([(d.start, d.end) for d in hard], [(s.start, s.end) for s in segments])
    for index, detection in enumerate(hard):
        if segments:
            nearest = int(overlaps[index].argmax())
            best = f"best tIoU {overlaps[index, nearest]:.2f} with {segments[nearest].label}"
        else:
            best = "no ground truth in this video"
        matched = index in matched_det
        title = (
            f"{detection.label} · {detection.start:.2f}–{detection.end:.2f} s · score {detection.score:.3f} · "
            f"{best} · {'matched' if matched else 'not matched'}"
        )
        bars.append(_bar("det-bar", video_id, detection, 1, not matched, title))
    escaped = html.escape(video_id)
    found = len(matched_gt)
    return (
        f'<section class="video" data-video="{escaped}"><h3>{escaped}<span class="counts">'
        f"{len(segments)} segments ({found} found) · {len(hard)} detections ({len(matched_det)} matched) · "
        f"{duration:.1f} s</span></h3>"
        '<div class="lanes"><div class="lane-names"><span>ground truth</span><span>detections</span></div><div>'
        f'<svg class="timeline" data-video="{escaped}" data-duration="{duration:.3f}" viewBox="0 0 {duration:.3f} 2" '
        'preserveAspectRatio="none" role="img">'
        f'<line class="lane-split" x1="0" y1="1" x2="{duration:.3f}" y2="1"></line>{"".join(bars)}</svg>'
        '<svg class="axis"></svg></div></div></section>'
    )


def _timelines(run: RunData, threshold: float) -> str:
    hard = apply_score_threshold(run.ranked, threshold)
    matches = f1_strict(run.ground_truth, hard, F1_TIOU_THRESHOLD).matches
    sections = []
    for video_id, segments in run.ground_truth.items():
        detections = hard[video_id]
        ends = [item.end for item in [*segments, *detections]]
        duration = max([run.annotations.videos[video_id].duration, *ends])
        matched_gt = {m.gt_index for m in matches if m.video_id == video_id}
        matched_det = {m.pred_index for m in matches if m.video_id == video_id}
        sections.append(_video_timeline(video_id, duration, segments, detections, matched_gt, matched_det))
    return (
        f"{_legend(run.classes)}"
        '<p class="note">Hover a bar for its class, times, score and best tIoU; mouse wheel zooms, drag pans, '
        f"double-click resets. Detections are the hard set (score ≥ {threshold:.4g}). A dashed red outline marks a "
        f"missed segment or an unmatched detection (one-to-one, same class, tIoU &gt; {F1_TIOU_THRESHOLD:g}).</p>"
        + "".join(sections)
    )


def _class_histogram(run: RunData) -> str:
    train_split = run.config.data.train_split
    train = run.annotations.subset(train_split).segments
    if not train:
        return (
            f'<p class="note">The annotations hold no videos of the training split '
            f"{html.escape(repr(train_split))}: no class histogram.</p>"
        )
    alpha = run.config.data.augment_alpha
    before = class_histogram(train, len(run.classes))
    after = class_histogram(augment_annotations(train, len(run.classes), alpha), len(run.classes)) if alpha else None
    caption = "Instances per class in the training split" + (
        f", before and after category-frequency augmentation with α = {alpha} (paper Eq. 1)."
        if alpha
        else "; augmentation off (data.augment_alpha is null)."
    )
    return _figure_html(class_histogram_figure(run.classes, before, after, alpha), "class histogram", caption)


def _training_curves(run_dir: Path) -> str:
    run = RunDir(run_dir)
    if not run.metrics_path.is_file():
        return '<p class="note">No metrics.jsonl in the run directory: no training curves.</p>'
    return _figure_html(
        training_curves_figure(run.read_metrics()),
        "training curves",
        "Mean training losses per epoch, and the validation scores computed every <code>train.eval_every</code> "
        "epochs (F1 at the score threshold tuned on val).",
    )


def _error_analysis(analysis: ErrorAnalysis) -> str:
    fn = _figure_html(
        false_negative_figure(analysis),
        "false negative analysis",
        f"Share of ground-truth segments that no detection finds at tIoU {analysis.tiou:g}, per bin of coverage "
        "(length / video duration), length (s) and number of same-class segments in the video. Under each bin: "
        "its label and number of segments.",
    )
    fp = _figure_html(
        false_positive_figure(analysis),
        "false positive analysis",
        "Left: what the detections of rank (k-1)·G..k·G of each class are (G: its number of ground-truth "
        "segments). Right: gain in mAP<sub>N</sub> when the detections of one error type are removed.",
    )
    sensitivity = _figure_html(
        sensitivity_figure(analysis),
        "sensitivity analysis",
        f"Normalised mAP (mAP<sub>N</sub>, N = {analysis.instances_per_class:.1f} segments per class) of the "
        "segments in each bin; right: range over the bins. A flat profile means the detector is robust to that "
        "characteristic.",
    )
    return (
        '<p class="note">DETAD-style diagnosis (Alwassel et al., ECCV 2018) of the ranked detections, computed by '
        "mgrec; definitions in <code>mgrec.evaluate.analysis</code>.</p>" + fn + fp + sensitivity
    )


def _confusion(scores: dict) -> str:
    confusion = scores["confusion"]
    return _figure_html(
        confusion_figure(confusion["labels"], confusion["matrix"], confusion.get("background")),
        "confusion matrix",
        "Each hard-set detection is counted once, against the ground-truth segment (any class) it overlaps most "
        f"if that tIoU &gt; {F1_TIOU_THRESHOLD:g}; otherwise in the background row.",
    )


def write_report(
    run_dir: str | Path, split: str = "test", out: str | Path | None = None, annotations: str | Path | None = None
) -> Path:
    """Write the self-contained HTML report of `split` of a run; returns its path.

    Default output: RUN_DIR/report_<split>.html. `annotations` overrides the config's
    `data.annotations`.
    """
    run = load_run(run_dir, split, annotations)
    scores = read_scores(RunDir(run.run_dir).eval_path(split))
    analysis = run_analysis(run)
    title = f"mgrec report: {run.config.name} on {split}"
    sections = [
        ("scores", "Scores", _headline(scores, run)),
        ("timelines", "Timelines", _timelines(run, float(scores["score_threshold"]))),
        ("classes", "Per class", _per_class_table(scores)),
        ("confusion", "Confusion matrix", _confusion(scores)),
        ("errors", "Error analysis", _error_analysis(analysis)),
        ("histogram", "Class histogram", _class_histogram(run)),
        ("training", "Training", _training_curves(run.run_dir)),
    ]
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name, _ in sections)
    body = "".join(f'<h2 id="{anchor}">{name}</h2>{content}' for anchor, name, content in sections)
    page = (
        '<!DOCTYPE html>\n<html lang="en" data-js-errors="0"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<script>{_asset('errors.js')}</script>"
        f"<style>{_asset('report.css')}\n{_class_css(len(run.classes))}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="sub">run <code>{html.escape(run.run_dir.resolve().name)}</code> · model '
        f"{html.escape(run.config.model.variant)} · split {html.escape(split)} · "
        f"{len(run.classes)} classes</p><nav>{nav}</nav>{body}"
        f"<script>{_asset('timeline.js')}</script></body></html>\n"
    )
    out_path = Path(out) if out is not None else RunDir(run.run_dir).report_path(split)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, page)
    return out_path
