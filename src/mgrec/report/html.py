"""A run's results as one self-contained HTML page, and its error-analysis figures as files.

`write_report(run_dir, split)` reads the run directory (config.yaml, classes.json,
eval_<split>.json, detections_<split>.json, postprocess.json, metrics.jsonl) and the annotations
named by `data.annotations` in the config, and writes RUN_DIR/report_<split>.html: headline
scores, an interactive timeline per video (ground truth against the hard set of detections, every
detection drawn up to MAX_TIMELINE_DETECTIONS a video, its highest-scoring beyond: overlapping ones get sub-lanes of
their own), the per-class table with AP at each
tIoU, the F1-against-threshold curve and the per-class precision-recall curves, the confusion
matrix, the DETAD error analysis of the hard set and of the ranked list, the class histogram
before and after class balancing, the training curves and the provenance of the results. The
page needs no network: CSS and JS are inlined, figures are SVG data URIs, and every text from the
data is escaped by `escape` (bidi overrides and isolates shown as `\\u202e`, line breaks as `\\n`, as on the
terminal).

`analyze_run(run_dir, split)` writes the error-analysis figures (PNG and SVG) and the numbers
behind them to RUN_DIR/analysis/<split>_*.
"""

from __future__ import annotations

import base64
import heapq
import html
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from matplotlib.figure import Figure

import mgrec
from mgrec.config import Config, split_name
from mgrec.data.annotations import load_annotations
from mgrec.data.augment import class_histogram
from mgrec.data.balance import ClassBalancer
from mgrec.errors import InputError, where
from mgrec.evaluate.analysis import (
    ErrorAnalysis,
    PRCurve,
    ThresholdCurve,
    analyze,
    analyze_hard_set,
    f1_threshold_curve,
    precision_recall_curves,
)
from mgrec.evaluate.average_precision import APResult, average_precision
from mgrec.evaluate.compare import member_differences
from mgrec.evaluate.f1 import F1_TIOU_THRESHOLD, Match, apply_score_threshold, bar_words, f1_strict
from mgrec.evaluate.matching import tiou_matrix
from mgrec.evaluate.predictions import load_predictions, read_predictions_info
from mgrec.evaluate.scoring import ground_truth_digest
from mgrec.files import (
    atomic_write_text,
    brief,
    counted,
    file_sha256,
    is_stream,
    json_or_none,
    output_target,
    part_of,
    resolve_path,
    shell_word,
)
from mgrec.records import AnnotationSet, Detection, Segment
from mgrec.report.figures import (
    ANALYSIS_FIGURE_STEMS,
    CHARACTERISTIC_NAMES,
    FIGURE_ENDINGS,
    balance_figure,
    class_histogram_figure,
    class_hsl,
    confusion_figure,
    f1_threshold_figure,
    false_negative_figure,
    false_positive_figure,
    pr_curves_figure,
    save_figure,
    sensitivity_figure,
    svg_bytes,
    training_curves_figure,
    write_analysis_figures,
)
from mgrec.run import RunDir, checkpoint_option, present, run_data_path, same_scored_set, scored_sets_words
from mgrec.terminal import one_line

NOT_RECORDED = "not recorded"
# Height of one timeline lane in CSS pixels (ground truth and detections get as many as they need).
LANE_PIXELS = 22
# A video's timeline draws at most this many detections, its highest-scoring: a file of 10^6 detections (another
# tool's, every candidate kept) made a 100 MB page of 600 lanes per video, which no browser opens
MAX_TIMELINE_DETECTIONS = 2000


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
    annotations_path: Path
    checkpoint: str = "best"  # whose evaluation: detections_<split>[_last].json, eval_<split>[_last].json

    def video_durations(self) -> dict[str, float]:
        return {v: self.annotations.videos[v].duration for v in self.ground_truth}


def load_run(run_dir: str | Path, split: str = "test", annotations: str | Path | None = None,
             checkpoint: str = "best") -> RunData:
    """Config, classes, annotations and ranked detections of `split` of a run directory (those `mgrec evaluate
    --checkpoint CHECKPOINT` wrote).

    `annotations` overrides the config's `data.annotations` (a relative path there is read from
    the current directory, as `mgrec train` did).
    """
    split = split_name(split)
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise InputError(f"{run.path}: not a run directory")
    run.refuse_unfinished()  # a killed training has no detections to show: said so, not "run mgrec evaluate"
    run_dir = run.path
    config = run.read_config()
    classes_path = run.classes_path
    classes = run.read_classes()
    annotations_path = run_data_path(run_dir, "data.annotations",
                                     annotations if annotations is not None else config.data.annotations,
                                     "pass the annotations file explicitly: --annotations FILE",
                                     moved="pass its new place: --annotations FILE")
    annotation_set = load_annotations(annotations_path, default_fps=config.data.fps)
    if annotation_set.classes != classes:
        raise InputError(
            f"{classes_path}: the run's classes differ from those of {annotations_path} "
            f"({len(classes)} vs {counted(len(annotation_set.classes), 'class')}); is this the run's annotations file?"
        )
    video_ids = annotation_set.split_video_ids(split, annotations_path)
    run.check_held_out(split, video_ids)
    # Both the report and `mgrec analyze` analyse the errors against the ground truth; without any,
    # the analysis could only say "no ground-truth segments", naming neither the file nor the split.
    if not any(annotation_set.segments.get(v) for v in video_ids):
        raise InputError(
            f"{annotations_path}: no ground-truth segments in split {split!r} ({counted(len(video_ids), 'video')}, "
            "none labelled): nothing to analyse; are these the annotations the run was evaluated on?"
        )
    detections_path = run.detections_path(split, checkpoint)
    if not present(detections_path):
        raise InputError(f"{detections_path}: not found; expected the run's detections on split {split!r}: run "
                         f"`mgrec evaluate {shell_word(run_dir)} --split {shell_word(split)}"
                         f"{checkpoint_option(checkpoint)}` first (it writes them)")
    ranked = load_predictions(detections_path, classes)
    check_evaluated_detections(detections_path, ranked, video_ids, split, checkpoint)
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
        annotations_path=annotations_path,
        checkpoint=checkpoint,
    )


def check_evaluated_detections(path: Path, ranked: dict[str, list[Detection]], video_ids: list[str], split: str,
                               checkpoint: str) -> None:
    """The run's detections file of `split` must be what `mgrec evaluate` writes there: the ranked list of that split
    and checkpoint (as its `mgrec` block records, where it does), with an entry for every video of the split (an empty
    list where nothing was found). Analysed without an eval file to cross-check it (`analyze` needs none), a hard set,
    another split's or checkpoint's file, or one whose videos were cut out were analysed as this split's ranked list,
    exit 0: every missing video's gestures counted as missed."""
    again = "evaluate the run again (mgrec evaluate writes it)"
    info = read_predictions_info(path)
    for key, want in (("set", "ranked"), ("split", split), ("checkpoint", checkpoint)):
        if info.get(key) is not None and info[key] != want:
            raise InputError(f"{where(path, key=f'mgrec.{key}')}: {brief(info[key])}, expected {want!r} (the ranked "
                             f"list of split {split!r} that mgrec evaluate writes here); {again}")
    missing = [video for video in video_ids if video not in ranked]
    if missing:
        raise InputError(f"{path}: no entry for {counted(len(missing), 'video')} of split {split!r} "
                         f"({', '.join(map(brief, missing[:3]))}{', ...' if len(missing) > 3 else ''}), where mgrec "
                         f"evaluate writes one per video (an empty list where it found nothing); {again}")


def _bar_words(threshold: float, class_thresholds: list[float] | None) -> str:
    """`f1.bar_words`, saying where per-class thresholds come from."""
    return bar_words(threshold, class_thresholds) + ("" if class_thresholds is None else ", tuned per class")


def check_one_evaluation(run: RunData, point: OperatingPoint, scores: dict, eval_path: Path) -> None:
    """`InputError` when the run's scores file does not describe its detections against the ground truth loaded:
    the hard set of the detections (`point`, cut at the scores' thresholds) is not the size the scores counted
    (one of them edited, or written by another evaluate; a video's detections gone), or the scores counted other
    instances per class, or found another number of them, than these detections do in the loaded annotations
    (`report --annotations` with a file the run was not evaluated on: its page would show one file's scores
    beside another's ground truth)."""
    hard = sum(len(items) for items in point.hard.values())
    detections = RunDir(run.run_dir).detections_path(run.split, run.checkpoint)
    again = (f"evaluate the run again (`mgrec evaluate {shell_word(run.run_dir)} --split {shell_word(run.split)}"
             f"{checkpoint_option(run.checkpoint)}`)")
    recorded = scores.get("detections_sha256")  # evaluate writes it since its scores come last
    if recorded is not None and recorded != file_sha256(detections):
        raise InputError(f"{eval_path} names other detections than {detections} (not the bytes evaluate wrote: "
                         f"rewritten since, by another evaluate or by hand, or evaluate stopped between the two); "
                         f"{again}")
    if hard != scores["num_predictions"]:
        raise InputError(f"{detections} and {eval_path} do not agree (a hard set of {hard} detections against "
                         f"num_predictions {scores['num_predictions']}); {again}")
    scored = {entry["label_id"]: entry["instances"] for entry in scores["per_class"].values()}
    loaded = Counter(s.label_id for items in run.ground_truth.values() for s in items)
    scored_found = round(float(scores["recall"]) * sum(scored.values()))
    bar = (" (at one threshold: the run's per-class ones cannot be given to score)" if scores.get("class_thresholds")
           else f" --score-threshold {float(scores['score_threshold'])!r}")
    remedy = (f"report the run on the annotations it was evaluated on (edited since? evaluate the run again: mgrec "
              f"evaluate), or score its detections against this file: mgrec score --gt "
              f"{shell_word(run.annotations_path)} --pred {shell_word(detections)} --split "
              f"{shell_word(run.split)}{bar}")
    if any(scored.get(c, 0) != loaded[c] for c in range(len(run.classes))) or scored_found != len(point.matches):
        raise InputError(
            f"{eval_path} was not scored against {run.annotations_path}: it counts "
            f"{counted(sum(scored.values()), 'instance')} "
            f"of split {run.split!r} and finds {scored_found}, the file has {sum(loaded.values())} and the same "
            f"detections find {len(point.matches)}; {remedy}")
    # the same counts and finds may still be of other segments (a gesture's times edited, one relabelled where
    # neither is found): the digest of what the scores were counted against tells them apart, where it is recorded
    digest = scores.get("ground_truth_sha256")
    if digest is not None and digest != ground_truth_digest(run.ground_truth, run.classes):
        raise InputError(
            f"{eval_path} was not scored against {run.annotations_path}: the same "
            f"{counted(sum(scored.values()), 'instance')} "
            f"of split {run.split!r}, {scored_found} found, but other videos, times or labels (its "
            f"ground_truth_sha256 is not this file's); {remedy}")


def evaluation_of(run: RunData) -> dict | None:
    """The scores of the run's split and checkpoint (eval_<split>.json, checked by `RunDir.read_eval`), None where
    the run was not evaluated on it."""
    run_files = RunDir(run.run_dir)
    if not present(run_files.eval_path(run.split, run.checkpoint)):
        return None
    return run_files.read_eval(run.split, run.classes, run.checkpoint)


def hard_set_bar_of(run: RunData, scores: dict | None) -> tuple[float, list[float] | None]:
    """The hard set's score threshold and per-class thresholds (None: the one threshold for all): those of the run's
    `scores` (`evaluation_of`), else the run's tuned ones, else the config's."""
    if scores is not None:
        return float(scores["score_threshold"]), scores.get("class_thresholds")
    post = RunDir(run.run_dir).read_postprocess(run.config)
    return post.score_threshold, post.class_thresholds


@dataclass
class OperatingPoint:
    """The hard set of a run's detections and its one-to-one F1 matches: what the timelines, the
    confusion matrix's "missed" column and the hard-set error analysis show."""

    threshold: float
    hard: dict[str, list[Detection]]
    matches: list[Match]
    matched_gt: dict[str, set[int]] = field(default_factory=dict)  # video -> indices into its segments
    matched_det: dict[str, set[int]] = field(default_factory=dict)  # video -> indices into its hard set
    class_thresholds: list[float] | None = None  # each class's bar instead of `threshold`, where the run has them

    @classmethod
    def of(cls, run: RunData, threshold: float, class_thresholds: list[float] | None = None) -> OperatingPoint:
        hard = apply_score_threshold(run.ranked, threshold, class_thresholds)
        matches = f1_strict(run.ground_truth, hard, F1_TIOU_THRESHOLD).matches
        point = cls(threshold, hard, matches, {v: set() for v in run.ground_truth}, {v: set() for v in hard},
                    class_thresholds)
        for match in matches:
            point.matched_gt[match.video_id].add(match.gt_index)
            point.matched_det[match.video_id].add(match.pred_index)
        return point

    @property
    def bar(self) -> str:
        """The hard set's bar in words, after "score ≥"."""
        return _bar_words(self.threshold, self.class_thresholds)

    def missed_per_class(self, run: RunData) -> list[int]:
        missed = [0] * len(run.classes)
        for video_id, segments in run.ground_truth.items():
            for index, segment in enumerate(segments):
                missed[segment.label_id] += index not in self.matched_gt[video_id]
        return missed


def run_analysis(run: RunData) -> ErrorAnalysis:
    """DETAD's error analysis of the run's ranked detections at tIoU 0.5 with the default bins."""
    return analyze(run.ground_truth, run.ranked, run.video_durations())


def run_hard_set_analysis(run: RunData, threshold: float, class_thresholds: list[float] | None = None
                          ) -> ErrorAnalysis:
    """The same analysis of the hard set, matched as F1 matches it (its misses are the timelines')."""
    return analyze_hard_set(run.ground_truth, run.ranked, run.video_durations(), threshold,
                            class_thresholds=class_thresholds)


def analyze_run(run_dir: str | Path, split: str = "test", annotations: str | Path | None = None,
                checkpoint: str = "best") -> list[Path]:
    """Write the error-analysis figures (PNG, SVG) and their numbers (JSON) to RUN_DIR/analysis/<split>_*
    (of the detections `mgrec evaluate --checkpoint CHECKPOINT` wrote; for `last`, <split>_last_*).

    The DETAD figures of the ranked list are `<split>_false_negatives` etc., those of the hard set
    `<split>_hard_set_false_negatives` etc.; `<split>_f1_threshold` and `<split>_pr_curves` are the
    curves around the operating point; `<split>_analysis.json` holds the numbers of both analyses.
    """
    run = load_run(run_dir, split, annotations, checkpoint)
    split = run.split  # as the annotations name it (`split_name`)
    scores = evaluation_of(run)
    threshold, class_thresholds = hard_set_bar_of(run, scores)
    if scores is not None:  # as the report: `--annotations` of a file the run was not evaluated on is refused
        check_one_evaluation(run, OperatingPoint.of(run, threshold, class_thresholds), scores,
                             RunDir(run.run_dir).eval_path(split, checkpoint))
    return write_error_analysis(run.ground_truth, run.ranked, run.video_durations(), run.classes, split,
                                threshold, class_thresholds, _tuned_on(run, scores), RunDir(run.run_dir).analysis_dir,
                                {"annotations": str(run.annotations_path), "checkpoint": checkpoint},
                                stem=analysis_stem(split, checkpoint))


def analysis_stem(split: str, checkpoint: str = "best") -> str:
    """What the names of a run's analysis files start with: the split, and `_last` for the last checkpoint's."""
    return split if checkpoint == "best" else f"{split}_{checkpoint}"


def write_error_analysis(ground_truth: dict[str, list[Segment]], ranked: dict[str, list[Detection]],
                         durations: dict[str, float], classes: list[str], split: str, threshold: float,
                         class_thresholds: list[float] | None, tuned_on: str | None, out_dir: Path,
                         sources: dict[str, object], stem: str | None = None) -> list[Path]:
    """The error analysis of one split's ranked detections and of their hard set (cut at `threshold`, or per class)
    against its ground truth: figures (PNG, SVG) and numbers (`<stem>_analysis.json`, with `sources`: which files
    it was made of) in `out_dir`, for a run (`analyze_run`) and for any predictions file (`mgrec score
    --analysis`). `stem` starts every file's name (default: the split)."""
    stem = split if stem is None else stem
    refuse_replacing_files_not_an_analysis(out_dir, stem)
    ranked_analysis = analyze(ground_truth, ranked, durations)
    hard = analyze_hard_set(ground_truth, ranked, durations, threshold, class_thresholds=class_thresholds)
    summary = out_dir / f"{stem}_analysis.json"
    # first the mark of an analysis under way (an earlier one's numbers are gone from then on), last the numbers: a
    # folder an analysis was stopped in says so, and the next analysis may replace what it left
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(summary, json.dumps({"split": split, **sources, "complete": False}, indent=1))
    paths = write_analysis_figures(ranked_analysis, out_dir, prefix=f"{stem}_")
    paths += write_analysis_figures(hard, out_dir, prefix=f"{stem}_hard_set_")
    paths += save_figure(f1_threshold_figure(f1_threshold_curve(ground_truth, ranked), threshold, tuned_on, split),
                         out_dir / f"{stem}_f1_threshold")
    paths += save_figure(pr_curves_figure(precision_recall_curves(ground_truth, ranked), classes, threshold,
                                          class_thresholds), out_dir / f"{stem}_pr_curves")
    atomic_write_text(summary, json.dumps({"split": split, **sources, "complete": True, "score_threshold": threshold,
                                           "class_thresholds": class_thresholds,
                                           "ranked_list": ranked_analysis.to_json(), "hard_set": hard.to_json()},
                                          indent=1))
    return [*paths, summary]


def error_analysis_names(split: str) -> list[str]:
    """The names of the files `write_error_analysis` writes for `split` (a stem: `mgrec analyze --checkpoint last`
    writes `<split>_last_*`; `mgrec score --analysis` the split's own): what may be replaced when a folder holds an
    earlier analysis, and nothing else."""
    stems = [f"{split}_{stem}" for stem in ANALYSIS_FIGURE_STEMS]
    stems += [f"{split}_hard_set_{stem}" for stem in ANALYSIS_FIGURE_STEMS]
    stems += [f"{split}_f1_threshold", f"{split}_pr_curves"]
    return [f"{stem}{ending}" for stem in stems for ending in FIGURE_ENDINGS] + [f"{split}_analysis.json"]


def refuse_replacing_files_not_an_analysis(folder: Path, stem: str, shown: str | None = None,
                                           remedy: str = "move them, or choose another folder") -> None:
    """Before any work: `folder` may hold an earlier analysis's files of the names `write_error_analysis` writes
    (`error_analysis_names(stem)`; finished, or marked as stopped part-way), which a new one replaces, but no other
    file of those names: the user's own `test_analysis.json` or figure there (in a run's analysis/ too) was replaced
    without a word; nor a symbolic link, which would carry the write onto what it names. `shown`: how the message
    names the folder (`--analysis FOLDER`; default: the folder); `remedy`, the way out the message offers."""
    present = [path for path in (folder / name for name in error_analysis_names(stem))
               if path.is_symlink() or path.exists()]
    for path in present:
        if path.is_symlink():
            raise InputError(f"{path}: is a symbolic link (to {brief(os.readlink(path))}) where the analysis writes "
                             "its own file, which would replace what the link names; remove the link")
    if present and not is_error_analysis(folder / f"{stem}_analysis.json"):  # an analysis's mark, first and last
        raise InputError(f"{shown or folder} holds {len(present)} file(s) of the names the analysis writes that "
                         f"no finished mgrec analysis wrote (first: {brief(present[0].name)}); {remedy}")


def is_error_analysis(path: Path) -> bool:
    """Whether `path` is a plain file `write_error_analysis` wrote (`<split>_analysis.json`, its numbers, or the mark of
    an analysis stopped part-way): the mark of a folder whose files of the analysis's names an analysis wrote, and a
    new one may replace."""
    if path.is_symlink() or not path.is_file():
        return False
    document = json_or_none(path)
    # "complete": false marks one stopped part-way; analyses written before the mark have their numbers
    return isinstance(document, dict) and "split" in document and (
        "complete" in document or {"ranked_list", "hard_set"} <= set(document))


def _tuned_on(run: RunData, scores: dict | None) -> str | None:
    """The split the hard set's threshold was tuned on, as far as the run directory says: as its `scores` record it
    (`evaluation_of`), else as postprocess.json does."""
    if scores is not None and "threshold_tuned_on" in scores:
        return scores["threshold_tuned_on"]
    tuning = RunDir(run.run_dir).read_tuning()
    return tuning.get("tuned_on") if tuning else None


# ---------------------------------------------------------------------------------------------
# Page parts


def escape(text: str) -> str:
    """Text from the data (video ids, class names, paths, values) for the page: the one escaper.

    Beyond HTML's own characters, control characters and the bidi embeddings, overrides and isolates
    (U+202A-U+202E, U+2066-U+2069, and the marks U+200E/U+200F) are shown as escapes (`\\u202e`), as
    on the terminal (`mgrec.terminal.visible`): raw, a crafted video id would reverse the text after
    it, so that the page shows another id, another class or other numbers than the data holds. Line breaks
    and tabs too (`\\n`, `mgrec.terminal.one_line`): the page shows them as a space, so that a class
    `a\\nb` looked like another, `a b`. The config's block of lines is `escape_lines`'."""
    return html.escape(one_line(text))


def escape_lines(text: str) -> str:
    """A text of lines from the data (the run's config.yaml) for a `<pre>` block: `escape`, its lines kept."""
    return "\n".join(map(escape, text.split("\n")))


def _asset(name: str) -> str:
    return resources.files("mgrec.report").joinpath(name).read_text(encoding="utf-8")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def figure_html(figure: Figure, alt: str, caption: str) -> str:
    data = base64.b64encode(svg_bytes(figure)).decode("ascii")
    return (
        f'<figure><img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def class_color(label_id: int) -> str:
    """A class's colour as CSS (`figures.class_hsl`)."""
    hue, saturation, lightness = class_hsl(label_id)
    return f"hsl({hue:.0f}, {saturation:.0f}%, {lightness:.0f}%)"


def _class_css(num_classes: int) -> str:
    return "\n".join(
        f".c{i} {{ fill: {class_color(i)}; background: {class_color(i)}; }}" for i in range(num_classes)
    )


def _headline(scores: dict, run: RunData, point: OperatingPoint) -> str:
    cards = [
        ("F1 (one-to-one)", scores["f1"]),
        ("F1 (MiGA rule)", scores["f1_miga"]),
        ("precision", scores["precision"]),
        ("recall", scores["recall"]),
        ("average mAP", scores["average_mAP"]),
    ]
    card_html = "".join(
        f'<div class="card"><div class="value">{_percent(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
        for label, value in cards
    )
    maps = " · ".join(f"mAP@{escape(str(t))} {_percent(v)}" for t, v in scores["mAP"].items())
    num_gt = sum(map(len, run.ground_truth.values()))
    missed = num_gt - len(point.matches)
    return (
        f'<div class="cards">{card_html}</div>'
        f'<p class="note">{counted(len(run.ground_truth), "video")}, {counted(num_gt, "ground-truth segment")}; '
        "F1, precision and recall are on the <b>hard set</b>: the "
        f"{scores['num_predictions']} detections with score ≥ {escape(point.bar)}, matched "
        f"one to one (or by the MiGA starter-kit rule) to a segment of the same class with tIoU &gt; "
        f"{F1_TIOU_THRESHOLD:g}. One to one, the hard set misses {part_of(missed, num_gt, 'segment')}: the "
        f"dashed ground-truth bars of the timelines. mAP is on the <b>ranked list</b> (all "
        f"{sum(map(len, run.ranked.values()))} detections): {maps}. All values in %.</p>"
    )


def _heat(value: float | None) -> str:
    """A table cell whose background deepens with `value` in [0, 1]."""
    if value is None:
        return '<td class="num">–</td>'
    shade = f"rgba(47, 109, 181, {0.08 + 0.6 * value:.2f})"
    return f'<td class="num heat" style="background: {shade}">{_percent(value)}</td>'


def _per_class_table(scores: dict, ap: APResult, missed: list[int]) -> str:
    rows = sorted(scores["per_class"].items(), key=lambda item: item[1]["label_id"])
    header = "".join(f"<th>AP@{t:g}</th>" for t in ap.thresholds)
    body = []
    for name, row in rows:
        label_id = row["label_id"]
        has_gt = not math.isnan(ap.ap[0, label_id])  # AP is NaN for a class without ground truth
        at_tiou = "".join(_heat(float(ap.ap[t, label_id]) if has_gt else None) for t in range(len(ap.thresholds)))
        body.append(
            f'<tr><td class="num">{label_id}</td><td>{escape(name)}</td>'
            f'<td class="num">{row["instances"]}</td><td class="num">{missed[label_id]}</td>{at_tiou}'
            f'<td class="num">{_percent(row["ap"])}</td>'
            f'<td class="num">{_percent(row["f1"])}</td><td class="num">{_percent(row["precision"])}</td>'
            f'<td class="num">{_percent(row["recall"])}</td></tr>'
        )
    return (
        '<table class="per-class"><thead><tr><th>id</th><th>class</th><th>instances</th><th>missed</th>'
        f"{header}<th>AP</th><th>F1</th><th>precision</th><th>recall</th></tr></thead><tbody>{''.join(body)}</tbody>"
        "</table>"
        '<p class="note">AP@t: AP of the ranked list at tIoU ≥ t (shaded by value); AP: its mean over these '
        "thresholds. Missed, F1, precision and recall are one to one on the hard set (missed: segments no "
        "detection matched). –: none to give: a class without instances in the split has no AP or recall (and no "
        "F1 without detections either), one without detections in the hard set no precision. All values in %.</p>"
    )


def _fusion_gates(scores: dict) -> str:
    """Per class, how far the gated fusion let the auxiliary streams in (mean gate inside its instances)."""
    gates = scores["fusion_gates"]

    def gate(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    rows = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{gate(value)}</td>"
        f"<td>{_percent(scores['per_class'].get(name, {}).get('f1'))}</td></tr>"
        for name, value in gates.get("per_class", {}).items()
    )
    rows += f"<tr><td><i>background</i></td><td>{gate(gates.get('background'))}</td><td></td></tr>"
    streams = ", ".join(map(str, gates.get("streams", [])))
    return (f"<p>Gated fusion injects the auxiliary stream(s) <b>{escape(streams)}</b> into the main one as "
            "x + g &middot; P(a) at every pyramid level. The table gives the mean gate g at level 0 (stride 1) over "
            "the feature steps inside each class's ground-truth instances of this split: higher means the "
            f"auxiliary streams were let in more there ({counted(gates.get('videos', 0), 'video')}"
            + (f"; {gates['skipped_long_videos']} longer than one pass left out" if gates.get("skipped_long_videos")
               else "") + ").</p>"
            f"<table><tr><th>class</th><th>mean gate</th><th>F1</th></tr>{rows}</table>")


def _online_beside(scores: dict, online_scores: dict, run: RunDir, split: str, checkpoint: str) -> str:
    """`_online`, where the streamed scores counted the set the offline ones did; else a note saying they did not
    (the split's labels or videos changed between the two evaluations: side by side they compared nothing)."""
    if same_scored_set(online_scores, scores):
        return _online(scores, online_scores)
    return (f"<p>{escape(str(run.online_eval_path(split, checkpoint)))} was scored on another set of split "
            f"{escape(split)} ({escape(scored_sets_words(online_scores, scores, ('streamed', 'offline')))}): run "
            f"<code>mgrec evaluate {escape(shell_word(run.path))} --split "
            f"{escape(shell_word(split))} --online{checkpoint_option(checkpoint)}</code> again to set the streamed "
            "scores beside these.</p>")


def _online(scores: dict, online_scores: dict) -> str:
    """The online track beside the offline scores: `mgrec evaluate --online`'s F1 of the streams' emissions, per
    class too, with how late and how costly they came."""
    online = online_scores["online"]
    latency, compute = online["latency_seconds"], online["compute_ms_per_update"]

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    headline = "".join(
        f"<tr><td>{escape(label)}</td><td>{_percent(scores[key])}</td><td>{_percent(online_scores[key])}</td></tr>"
        for label, key in (("F1 (one-to-one)", "f1"), ("F1 (MiGA rule)", "f1_miga"), ("precision", "precision"),
                           ("recall", "recall")))
    per_class = "".join(
        f"<tr><td>{escape(str(name))}</td><td>{row.get('instances', 0)}</td><td>{_percent(row.get('f1'))}</td>"
        f"<td>{_percent(online_scores['per_class'].get(name, {}).get('f1'))}</td></tr>"
        # by label id, as the main per-class table: the file's order (that of its writer) listed them otherwise
        for name, row in sorted(scores["per_class"].items(), key=lambda item: item[1]["label_id"]))
    return (
        f"<p>Every video of the split replayed as a live stream (<code>mgrec evaluate --online</code>, as "
        f"<code>mgrec stream</code> does): a gesture is reported once, {online['lookahead']:g} s after its end, by a "
        f"network that sees the last {online['window_seconds']:.1f} s only; the emissions are scored as the hard set "
        f"is offline. Latency from a gesture's end to its report: mean {seconds(latency['mean'])} s, median "
        f"{seconds(latency['median'])} s, p95 {seconds(latency['p95'])} s, max {seconds(latency['max'])} s, over the "
        f"{online['decided_while_streaming']} gestures decided while streaming ({online['decided_at_the_end']} more "
        f"were decided by the ends of the videos). Compute per update: mean {compute['mean']:.1f} ms over "
        f"{online['updates']} updates ({escape(str(online_scores.get('inference_precision', '')))}, the machine of "
        "the evaluation). Values in %.</p>"
        f"<table><tr><th></th><th>offline</th><th>streamed</th></tr>{headline}</table>"
        f"<table><tr><th>class</th><th>instances</th><th>F1 offline</th><th>F1 streamed</th></tr>{per_class}</table>"
    )


def legend(classes: list[str]) -> str:
    items = "".join(
        f'<span><span class="swatch c{i}"></span>{escape(name)}</span>' for i, name in enumerate(classes)
    )
    return f'<div class="legend">{items}</div>'


def assign_lanes(items: list[Segment] | list[Detection]) -> list[int]:
    """A lane per item such that no two items of a lane overlap (touching ones may share): by start
    time, each item goes to the first lane free at its start, which needs the fewest lanes."""
    order = sorted(range(len(items)), key=lambda i: (items[i].start, items[i].end))
    # Starts only grow, so a lane free at one item's start stays free for every later one: the busy lanes wait in a
    # heap by end, the free ones in a heap by number (a scan of every lane per item took 10 s for 20k overlapping
    # detections)
    busy: list[tuple[float, int]] = []
    free: list[int] = []
    count = 0
    lanes = [0] * len(items)
    for i in order:
        while busy and busy[0][0] <= items[i].start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lanes[i] = heapq.heappop(free)
        else:
            lanes[i], count = count, count + 1
        heapq.heappush(busy, (items[i].end, lanes[i]))
    return lanes


def _bar(kind: str, item: Segment | Detection, lane: int, missed: bool, title: str) -> str:
    # no video id of its own: its timeline's <svg data-video> names it once (each bar naming it made one video of 2000
    # detections and a 10000-character id a 20 MB page)
    classes = f"{kind} c{item.label_id}" + (" miss" if missed else "")
    return (
        f'<rect class="{classes}" x="{item.start:.3f}" y="{lane + 0.12:.2f}" '
        f'width="{max(item.end - item.start, 0.0):.3f}" height="0.76"><title>{escape(title)}</title></rect>'
    )


def video_timeline(
    video_id: str,
    duration: float,
    segments: list[Segment] | None,
    hard: list[Detection],
    matched_gt: set[int] = frozenset(),
    matched_det: set[int] = frozenset(),
) -> str:
    """One video: ground-truth lanes (top) and hard-set detection lanes (bottom) in one SVG; every
    item that overlaps another of its group gets a sub-lane of its own, so none drawn is hidden. Of more than
    MAX_TIMELINE_DETECTIONS detections, the highest-scoring are drawn, and the counts say how many are not (they count
    every one). `segments` None: a video without ground truth (`mgrec.report.detections`), its detections alone, none
    marked unmatched."""
    truth = segments is not None
    segments = segments or []
    undrawn = max(0, len(hard) - MAX_TIMELINE_DETECTIONS)
    if undrawn:  # the highest-scoring, in their order; the counts stay those of every detection
        counted_hard, counted_matched = len(hard), len(matched_det)
        kept = sorted(sorted(range(len(hard)), key=lambda i: -hard[i].score)[:MAX_TIMELINE_DETECTIONS])
        matched_det = {new for new, old in enumerate(kept) if old in matched_det}
        hard = [hard[i] for i in kept]
    gt_lanes, det_lanes = assign_lanes(segments), assign_lanes(hard)
    num_gt_lanes = max(gt_lanes, default=0) + 1 if truth else 0
    num_det_lanes = max(det_lanes, default=0) + 1
    rows = num_gt_lanes + num_det_lanes
    bars = []
    for index, segment in enumerate(segments):
        found = index in matched_gt
        title = (
            f"{segment.label} · {segment.start:.2f}–{segment.end:.2f} s · ground truth · "
            f"{'found' if found else 'missed'}"
        )
        bars.append(_bar("gt-bar", segment, gt_lanes[index], not found, title))
    overlaps = tiou_matrix([(d.start, d.end) for d in hard], [(s.start, s.end) for s in segments])
    for index, detection in enumerate(hard):
        title = f"{detection.label} · {detection.start:.2f}–{detection.end:.2f} s · score {detection.score:.3f}"
        matched = index in matched_det
        if truth and segments:
            nearest = int(overlaps[index].argmax())
            title += (f" · best tIoU {overlaps[index, nearest]:.2f} with {segments[nearest].label} · "
                      f"{'matched' if matched else 'not matched'}")
        elif truth:
            title += " · no ground truth in this video · not matched"
        bars.append(_bar("det-bar", detection, num_gt_lanes + det_lanes[index], truth and not matched,
                         title))
    escaped = escape(video_id)
    height = rows * LANE_PIXELS
    lanes_note = f", {num_det_lanes} lanes" if num_det_lanes > 1 else ""
    if undrawn:
        lanes_note += f", the {len(hard)} highest-scoring drawn, {undrawn} not"
    number, matched_number = (counted_hard, counted_matched) if undrawn else (len(hard), len(matched_det))
    if truth:
        counts = (f"{counted(len(segments), 'segment')} ({len(matched_gt)} found) · {counted(number, 'detection')} "
                  f"({matched_number} matched{lanes_note})")
        names = (f'<span style="flex: {num_gt_lanes}">ground truth</span>'
                 f'<span style="flex: {num_det_lanes}">detections</span>')
        split = f'<line class="lane-split" x1="0" y1="{num_gt_lanes}" x2="{duration:.3f}" y2="{num_gt_lanes}"></line>'
    else:
        counts = f"{counted(number, 'detection')}{' (' + lanes_note[2:] + ')' if lanes_note else ''}"
        names, split = f'<span style="flex: {num_det_lanes}">detections</span>', ""
    return (
        f'<section class="video" data-video="{escaped}"><h3>{escaped}<span class="counts">'
        f"{counts} · {duration:.1f} s</span></h3>"
        f'<div class="lanes"><div class="lane-names" style="height: {height}px">{names}</div><div>'
        f'<svg class="timeline" data-video="{escaped}" data-duration="{duration:.3f}" data-rows="{rows}" '
        f'viewBox="0 0 {duration:.3f} {rows}" style="height: {height}px" preserveAspectRatio="none" role="img">'
        f'{split}{"".join(bars)}</svg><svg class="axis"></svg></div></div></section>'
    )


def _timelines(run: RunData, point: OperatingPoint) -> str:
    sections = []
    for video_id, segments in run.ground_truth.items():
        detections = point.hard[video_id]
        ends = [item.end for item in [*segments, *detections]]
        duration = max([run.annotations.videos[video_id].duration, *ends])
        sections.append(video_timeline(video_id, duration, segments, detections, point.matched_gt[video_id],
                                        point.matched_det[video_id]))
    # "every one of them" was said too of a video whose timeline draws only its highest-scoring (its counts said so)
    crowded = sum(len(items) > MAX_TIMELINE_DETECTIONS for items in point.hard.values())
    which = ("every one of them" if not crowded else
             f"every one of them but in {counted(crowded, 'video')} of more than {MAX_TIMELINE_DETECTIONS}, whose "
             f"timelines draw their {MAX_TIMELINE_DETECTIONS} highest-scoring (their counts say how many are not "
             "drawn; the scores count them all)")
    return (
        f"{legend(run.classes)}"
        '<p class="note">Hover a bar for its class, times, score and best tIoU; mouse wheel zooms, drag pans, '
        f"double-click resets. Detections are the hard set (score ≥ {escape(point.bar)}), {which}: "
        "detections that overlap get lanes of their own. A dashed red outline marks a missed segment or an "
        f"unmatched detection (one-to-one, same class, tIoU &gt; {F1_TIOU_THRESHOLD:g}).</p>"
        + "".join(sections)
    )


def _operating_point(run: RunData, point: OperatingPoint, tuned_on: str | None) -> str:
    curve: ThresholdCurve = f1_threshold_curve(run.ground_truth, run.ranked)
    curves: dict[float, dict[int, PRCurve]] = precision_recall_curves(run.ground_truth, run.ranked)
    split = escape(run.split)
    where_tuned = f"tuned on {escape(str(tuned_on))}" if tuned_on else "not tuned on another split"
    summary = ""
    if len(curve.thresholds):
        used, best = curve.at(point.threshold), curve.best_threshold
        best_f1 = curve.at(best).f1
        used_f1 = used.f1 if used is not None else 0.0
        summary = (
            f" At the threshold in use, {point.threshold:.4g} ({where_tuned}), F1 on {split} is "
            f"{_percent(used_f1)}; the best threshold on {split} itself would be {best:.4g} with F1 "
            f"{_percent(best_f1)} ({100 * (best_f1 - used_f1):.2f} points more)."
        )
        if point.class_thresholds is not None:  # the curve moves one threshold for every class
            summary = (f" This run's hard set takes a threshold per class ({escape(point.bar)}); the curve moves "
                       f"one threshold for all classes, and the dashed line is the global one ({where_tuned}) "
                       f"beside which they were tuned: there F1 on {split} would be {_percent(used_f1)}, the best "
                       f"single threshold on {split} itself {best:.4g} with F1 {_percent(best_f1)}.")
    f1_figure = figure_html(
        f1_threshold_figure(curve, point.threshold, tuned_on, run.split),
        "F1 against the score threshold",
        "One-to-one F1, precision and recall of the hard set (the detections with score ≥ the threshold) at "
        f"every threshold, on {split}." + summary + " A flat F1 around the dashed line means the tuned "
        "threshold is not critical.",
    )
    pr_figure = figure_html(
        pr_curves_figure(curves, run.classes, point.threshold, point.class_thresholds),
        "precision-recall curves per class",
        "Precision against recall of each class's ranked detections, one curve per tIoU threshold of mAP "
        "(ActivityNet matching, tIoU ≥ t); the area under each (interpolated) is that class's AP at t. A dot "
        f"marks where the score threshold ({escape(point.bar)}) cuts each curve: the hard set's precision "
        "and recall at that tIoU.",
    )
    return f1_figure + pr_figure


def _bins_table(analysis: ErrorAnalysis, classes: list[str]) -> str:
    rows = []
    for name, characteristic in analysis.characteristics.items():
        bins = " · ".join(
            f"<b>{escape(label)}</b> {escape(edges)}: {count}"
            for label, edges, count in zip(characteristic.bins.labels, characteristic.bins.ranges(),
                                           characteristic.gt_counts)
        )
        rows.append(f"<tr><td>{escape(CHARACTERISTIC_NAMES.get(name, name))}</td><td>{bins}</td></tr>")
    medians = ", ".join(
        f"{escape(classes[label_id])} {value:.2f} s" for label_id, value in analysis.median_lengths.items()
    )
    return (
        '<table class="bins"><thead><tr><th>characteristic</th><th>bins: label, edges: ground-truth segments</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        '<p class="note">A bin holds the values above its lower edge up to and including its upper edge (the first '
        "also its lower edge). Relative length is a segment's length over the median length of its class in this "
        f"split: {medians}. Coverage (length / video duration, DETAD's first characteristic) is not used: its "
        "THUMOS-14 bins (up to 2 %, 4 %, 6 %, 8 % of the video) put nearly every micro-gesture in the first bin.</p>"
    )


def _analysis_figures(analysis: ErrorAnalysis) -> str:
    what = escape(analysis.describe())
    fn = figure_html(
        false_negative_figure(analysis),
        f"false negative analysis of the {analysis.which}",
        f"{what}: share of ground-truth segments no detection finds, per bin of relative length, length and "
        "number of same-class segments in the video. Under each bin: its label, edges and number of segments.",
    )
    fp = figure_html(
        false_positive_figure(analysis),
        f"false positive analysis of the {analysis.which}",
        f"{what}: left, what the detections of rank (k-1)·G..k·G of each class are (G: its number of "
        "ground-truth segments); right, gain in mAP<sub>N</sub> when the detections of one error type are removed.",
    )
    sensitivity = figure_html(
        sensitivity_figure(analysis),
        f"sensitivity analysis of the {analysis.which}",
        f"{what}: normalised mAP (mAP<sub>N</sub>, N = {analysis.instances_per_class:.1f} segments per class) of "
        "the segments in each bin; right: range over the bins. A flat profile means the detector is robust to "
        "that characteristic.",
    )
    return fn + fp + sensitivity


def _error_analysis(hard: ErrorAnalysis, ranked: ErrorAnalysis, classes: list[str]) -> str:
    return (
        '<p class="note">DETAD-style diagnosis (Alwassel et al., ECCV 2018), computed by mgrec (definitions in '
        "<code>mgrec.evaluate.analysis</code>) twice: on the hard set, the detections F1 counts, and on the "
        "ranked list, all detections, as DETAD and mAP see them. Each figure names its set.</p>"
        '<h3 id="errors-hard">The hard set (the operating point)</h3>'
        f'<p class="note">The {hard.num_predictions} detections with score ≥ '
        f"{escape(_bar_words(hard.score_threshold, hard.class_thresholds))}, matched "
        f"one to one as F1 matches them (same class, tIoU &gt; {hard.tiou:g}); every match counts. It misses "
        f"{part_of(len(hard.missed), hard.num_ground_truth, 'segment')}: exactly the dashed ground-truth bars of the "
        "timelines.</p>"
        + _analysis_figures(hard)
        + '<h3 id="errors-ranked">The ranked list (DETAD\'s setting)</h3>'
        f'<p class="note">All {ranked.num_predictions} detections, matched as mAP matches them (same class, tIoU '
        f"≥ {ranked.tiou:g}); as in DETAD, a match counts as finding its segment only where its class's "
        f"precision<sub>N</sub> is above 5 %. {part_of(len(ranked.missed), ranked.num_ground_truth, 'segment')} "
        f"{'is' if len(ranked.missed) == 1 else 'are'} missed.</p>"
        + _analysis_figures(ranked)
        + '<h3 id="errors-bins">Bins</h3>'
        + _bins_table(ranked, classes)
    )


def _class_histogram(run: RunData) -> str:
    train_split = run.config.data.train_split
    train = run.annotations.subset(train_split).segments
    if not train:
        return (
            f'<p class="note">The annotations hold no videos of the training split '
            f"{escape(repr(train_split))}: no class histogram.</p>"
        )
    balance = run.config.balance
    before = class_histogram(train, len(run.classes))
    after, label = None, None
    if balance.method != "none":
        weights = ClassBalancer(balance, before).effective_weights()
        after = [count * weight for count, weight in zip(before, weights)]
        label = f"eq1, α = {balance.alpha}" if balance.method == "eq1" else balance.method
    caption = "Instances per class in the training split" + (
        f", and the crop anchors they weigh after class balancing ({escape(label)}"
        + ("; paper Eq. 1" if balance.method == "eq1" else "")
        + ("; at the first epoch: its later weights are plotted under Training" * (balance.method == "adaptive"))
        + ")."
        if after is not None
        else "; class balancing off (balance.method is none)."
    )
    return figure_html(class_histogram_figure(run.classes, before, after, label), "class histogram", caption)


def _training_curves(run_dir: Path, classes: list[str]) -> str:
    run = RunDir(run_dir)
    if not run.metrics_path.is_file():
        return '<p class="note">No metrics.jsonl in the run directory: no training curves.</p>'
    records = run.read_metrics(num_classes=len(classes))
    parts = figure_html(
        training_curves_figure(records),
        "training curves",
        "Mean training losses per epoch, and the validation scores computed every <code>train.eval_every</code> "
        "epochs (F1 at the score threshold tuned on val).",
    )
    if any(r.get("kind") == "balance" for r in records):
        parts += figure_html(
            balance_figure(classes, records), "class balancing",
            "What the class balancer did: each class's expected share of the training crops, per epoch "
            "(<code>crop_shares</code> of the <code>balance</code> records in metrics.jsonl).",
        )
    return parts


def _confusion(scores: dict, run: RunData, point: OperatingPoint) -> str:
    confusion = scores["confusion"]
    instances = [scores["per_class"].get(name, {}).get("instances", 0) for name in confusion["labels"]]
    return figure_html(
        confusion_figure(confusion["labels"], confusion["matrix"], confusion.get("background"),
                         point.missed_per_class(run), instances),
        "confusion matrix",
        "Each hard-set detection is counted once, against the ground-truth segment (any class) it overlaps most "
        f"if that tIoU &gt; {F1_TIOU_THRESHOLD:g}; otherwise in the background row. The missed column counts the "
        "ground-truth segments of each class that no detection matched one to one (the dashed bars of the "
        "timelines); its colour is their share of the class's segments.",
    )


# ---------------------------------------------------------------------------------------------
# Provenance


def _text(value: object) -> str:
    """A provenance value as escaped text; missing ones (older eval files) say so."""
    return NOT_RECORDED if value is None or value == "" else escape(str(value))


def threshold_origin(scores: dict, tuning: dict | None) -> str:
    """Where the hard set's threshold came from, in words (plain text)."""
    if "threshold_tuned_on" not in scores:
        return NOT_RECORDED
    tuned_on = scores["threshold_tuned_on"]
    if tuned_on is None:
        return "not tuned: the config's postprocess.score_threshold"
    text = f"tuned on {tuned_on}"
    if tuning is not None and tuning.get("tuned_on") == tuned_on:
        epoch = tuning.get("selected_epoch")
        text += " at training" + (f" (selected epoch {epoch}; postprocess.json)" if epoch is not None else "")
    else:
        text += " by mgrec evaluate --tune-on"
    return text


def _provenance_record(scores: dict) -> dict:
    record = scores.get("provenance")
    return record if isinstance(record, dict) else {}


def _provenance_line(scores: dict, tuning: dict | None) -> str:
    record = _provenance_record(scores)
    commit = record.get("git_commit")
    return (
        f'<p class="sub provenance-line">checkpoint {_text(scores.get("checkpoint"))} · score threshold '
        f"{float(scores['score_threshold']):.4g}, {escape(threshold_origin(scores, tuning))} · evaluated "
        f"{_text(record.get('date'))} with mgrec {_text(record.get('mgrec'))}"
        f"{' (commit ' + escape(str(commit)[:12]) + ')' if commit else ''} · "
        f'<a href="#provenance">provenance</a></p>'
    )


def training_data(run: RunData) -> str:
    """What the run trained on besides its annotations: pseudo-labelled videos (and whether they are
    the test subjects' own), or an ensemble's members."""
    run_dir = RunDir(run.run_dir)
    ensemble = run_dir.read_ensemble()
    if ensemble is not None:
        text = f"an ensemble of {ensemble['members']} runs: {', '.join(map(str, ensemble.get('sources', [])))}"
        differ = member_differences(run_dir)
        if differ:  # its config.yaml (below) is its first member's
            said = "; ".join(f"{key} {', '.join(map(str, values))}" for key, values in list(differ.items())[:5])
            text += (f"; its members' configs differ ({said}{'; ...' if len(differ) > 5 else ''}): config.yaml "
                     "below is the first member's")
        for member in ensemble.get("pseudo_labelled") or []:  # ensembles made before it was recorded: none
            text += (f"; {member.get('member')} also trained on pseudo-labels of the unlabelled videos in "
                     f"{member.get('unlabeled')}")
            if member.get("transductive"):
                text += ": TRANSDUCTIVE, these are the test subjects' own videos (their labels were never read)"
        return text
    pseudo = run.config.pseudo_labels
    text = f"the {run.config.data.train_split} split of the annotations"
    if not pseudo.unlabeled:
        return text
    text += (f", and pseudo-labels of the unlabelled videos in {pseudo.unlabeled} (labelled by "
             f"{pseudo.teacher or 'a teacher trained first'}; {run_dir.pseudo_labels_path.name})")
    if pseudo.transductive:
        text += ": TRANSDUCTIVE, these are the test subjects' own videos (their labels were never read)"
    return text


def _provenance(run: RunData, scores: dict, tuning: dict | None) -> str:
    record = _provenance_record(scores)
    recorded = scores.get("run")
    here = resolve_path(run.run_dir)
    name = RunDir(run.run_dir).eval_path(run.split, run.checkpoint).name
    if isinstance(recorded, str) and recorded and not Path(recorded).is_absolute():
        # an eval file of an earlier mgrec recorded the run as typed (`mgrec evaluate run`), relative to a folder
        # it does not name: the folder the file is in, and what it records
        recorded = (f"{here} ({name} records it as {recorded}, relative to the folder mgrec evaluate ran in)")
    elif isinstance(recorded, str) and recorded and os.path.realpath(recorded) != str(here):
        # the run moved (renamed, copied to another machine) since it was evaluated: the page named the old folder,
        # which may be on no machine the reader has, as the run it shows
        recorded = f"{here} (evaluated at {recorded}, as {name} records; moved or copied since)"
    rows = [
        ("run directory", _text(recorded or str(resolve_path(run.run_dir)))),
        ("split", escape(run.split)),
        ("checkpoint", _text(scores.get("checkpoint"))),
        ("score threshold", f"{float(scores['score_threshold']):.6g}"),
        ("threshold tuned", escape(threshold_origin(scores, tuning))),
        ("training data", escape(training_data(run))),
        ("evaluated by", f"<code>{_text(record.get('command'))}</code>"),
        ("date (UTC)", _text(record.get("date"))),
        ("mgrec version", _text(record.get("mgrec"))),
        ("git commit", _text(record.get("git_commit"))
         + (" (uncommitted changes)" if str(record.get("git_commit") or "").endswith("+dirty") else "")),
        ("machine", _text(record.get("machine"))),
        ("torch", _text(record.get("torch"))),
        ("CPU threads", _text(record.get("threads"))),
        ("report made with", f"mgrec {escape(mgrec.__version__)}"),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    config_path = RunDir(run.run_dir).config_path
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    whose = ("the resolved config of the ensemble's first member" if RunDir(run.run_dir).read_ensemble() is not None
             else "the resolved config the run was trained with")
    return (
        f'<table class="provenance"><tbody>{table}</tbody></table>'
        f'<p class="note">From eval_{escape(run.split)}.json (written by <code>mgrec evaluate</code>) and '
        "postprocess.json; “not recorded” marks what an older eval file does not hold.</p>"
        f"<details><summary>config.yaml: {whose}</summary>"
        f'<pre class="config">{escape_lines(config_text)}</pre></details>'
    )


# How every page of mgrec's begins (`page_html`), and the titles its two writers give it: what tells an earlier page
# of mgrec's, which a report may write again, from a file of the user's at its name
PAGE_HEAD = '<!DOCTYPE html>\n<html lang="en" data-js-errors="0"><head><meta charset="utf-8">'
PAGE_TITLES = ("mgrec report: ", "mgrec detections: ")


def is_report_page(path: str | Path) -> bool:
    """Whether the file at `path` is a page an mgrec report wrote (its head and title as `page_html` writes them,
    the title of `write_report` or `write_detections_report`), or empty (nothing there to lose)."""
    with open(path, "rb") as handle:
        head = handle.read(len(PAGE_HEAD) + 200)
    if not head:
        return True
    return any(head.startswith(f"{PAGE_HEAD}<title>{html.escape(title)}".encode()) for title in PAGE_TITLES)


def refuse_replacing_a_file_not_a_page(out: str | Path, shown: str = "--out") -> None:
    """Before any work: the page goes to `out`, which may hold an earlier page of mgrec's (written again, as reports
    are) but no other file: the user's own `notes.html`, a page another tool or a browser's "save as" wrote, the
    user's file at the run's `report_test.html` were replaced without a word. A pipe or descriptor (`/dev/stdout`)
    is not a file there; a link is judged by the file it names, which the page would replace. `shown`: how the
    message names the output (`--out X`, or the default name it took)."""
    out = Path(out)
    if is_stream(out) or not out.is_file():
        return
    try:
        own = is_report_page(out)
    except OSError:  # a file that cannot be read cannot be written either: check_writable's, with its reason
        return
    if not own:
        named = f"{out} (a link to {output_target(out)})" if out.is_symlink() else str(out)
        raise InputError(f"{shown}: {named} is there already and is not a page an mgrec report wrote (an mgrec page "
                         f"begins {PAGE_HEAD[:15]!r} ... <title>mgrec report: ...); the report would replace it: "
                         "choose another --out, or move that file away")


def page_html(title: str, subtitle: str, sections: list[tuple[str, str, str]], num_classes: int) -> str:
    """A whole self-contained page: `title`, the `subtitle` HTML under it, a link bar to the `sections` (anchor, name,
    HTML) and the sections; the timelines' script, the error counter and the class colours inlined."""
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name, _ in sections)
    body = "".join(f'<h2 id="{anchor}">{name}</h2>{content}' for anchor, name, content in sections)
    return (
        f"{PAGE_HEAD}<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<script>{_asset('errors.js')}</script>"
        f"<style>{_asset('report.css')}\n{_class_css(num_classes)}</style></head><body>"
        f"<h1>{escape(title)}</h1>{subtitle}<nav>{nav}</nav>{body}"
        f"<script>{_asset('timeline.js')}</script></body></html>\n"
    )


def write_report(
    run_dir: str | Path, split: str = "test", out: str | Path | None = None, annotations: str | Path | None = None,
    checkpoint: str = "best",
) -> Path:
    """Write the self-contained HTML report of `split` of a run (of the evaluation of `checkpoint`: `mgrec evaluate
    --checkpoint last` writes its own scores and detections); returns its path.

    Default output: RUN_DIR/report_<split>.html (report_<split>_last.html). `annotations` overrides the config's
    `data.annotations`.
    """
    if out is not None:  # before the work (the default name is known once the split's name is read)
        refuse_replacing_a_file_not_a_page(out)
    run = load_run(run_dir, split, annotations, checkpoint)
    split = run.split  # as the annotations name it (`split_name`)
    run_files = RunDir(run.run_dir)
    if out is None:
        refuse_replacing_a_file_not_a_page(run_files.report_path(split, checkpoint), "the report")
    scores = run_files.read_eval(split, run.classes, checkpoint)
    point = OperatingPoint.of(run, float(scores["score_threshold"]), scores.get("class_thresholds"))
    check_one_evaluation(run, point, scores, run_files.eval_path(split, checkpoint))
    tuning = run_files.read_tuning()
    tuned_on = _tuned_on(run, scores)
    ranked_analysis, hard_analysis = run_analysis(run), run_hard_set_analysis(run, point.threshold,
                                                                               point.class_thresholds)
    ap = average_precision(run.ground_truth, run.ranked, len(run.classes))
    online_scores = run_files.read_online_eval(split, run.classes, checkpoint)
    title = f"mgrec report: {run.config.name} on {split}"
    sections = [
        ("scores", "Scores", _headline(scores, run, point)),
        ("timelines", "Timelines", _timelines(run, point)),
        ("classes", "Per class", _per_class_table(scores, ap, point.missed_per_class(run))),
        *([("fusion", "Fusion gates", _fusion_gates(scores))] if "fusion_gates" in scores else []),
        *([("online", "Online (streamed)", _online_beside(scores, online_scores, run_files, split, checkpoint))]
          if online_scores is not None else []),
        ("threshold", "Threshold and PR curves", _operating_point(run, point, tuned_on)),
        ("confusion", "Confusion matrix", _confusion(scores, run, point)),
        ("errors", "Error analysis", _error_analysis(hard_analysis, ranked_analysis, run.classes)),
        ("histogram", "Class histogram", _class_histogram(run)),
        ("training", "Training", _training_curves(run.run_dir, run.classes)),
        ("provenance", "Provenance", _provenance(run, scores, tuning)),
    ]
    subtitle = (f'<p class="sub">run <code>{escape(resolve_path(run.run_dir).name)}</code> · model '
                f"{escape(run.config.model.variant)} · split {escape(split)} · "
                f"{counted(len(run.classes), 'class')}</p>{_provenance_line(scores, tuning)}")
    page = page_html(title, subtitle, sections, len(run.classes))
    out_path = Path(out) if out is not None else run_files.report_path(split, checkpoint)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_path, page)
    return out_path
