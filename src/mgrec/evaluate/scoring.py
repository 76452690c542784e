"""All scores of one set of predictions against ground truth, as the `mgrec score --json` dict.

mAP is computed on the ranked list; F1, precision, recall (strict and MiGA rules), the per-class
F1 and the confusion matrix on the hard set (predictions with score >= the score threshold,
`f1.hard_set`), at the challenge's tIoU threshold `f1.F1_TIOU_THRESHOLD`.
The keys are the "Scores" contract in docs/contracts.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import numbers
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mgrec.config import THRESHOLD_RULES, PostprocessConfig, canonical_subset, class_thresholds_problem, split_name
from mgrec.errors import InputError, where
from mgrec.evaluate.average_precision import DEFAULT_TIOU_THRESHOLDS, _average_precision, check_tious, tiou_key
from mgrec.evaluate.f1 import (
    F1_TIOU_THRESHOLD,
    _f1_miga,
    _f1_strict,
    apply_score_threshold,
    bar_words,
    threshold_phrase,
    tune_thresholds,
)
from mgrec.evaluate.matching import bounds, label_ids, tiou_above, tiou_matrix
from mgrec.evaluate.predictions import (
    MGREC_KEY,
    is_csv_table,
    is_results_json,
    load_predictions_with_info,
    repeats_words,
    segment_problem,
)
from mgrec.files import (
    as_real,
    brief,
    callable_argument,
    counted,
    is_finite_real,
    is_number,
    listed,
    name_key,
    number_refusal,
    part_of,
    spelling_hint,
)
from mgrec.records import AnnotationSet, Detection, Segment, check_class_list, segment_rows
from mgrec.terminal import cell, columns


def restrict_to_videos(
    pred: Mapping[str, list[Detection]], video_ids: Iterable[str]
) -> dict[str, list[Detection]]:
    """Only the predictions of the given videos (e.g. one split); videos without any get []."""
    return {video_id: list(pred.get(video_id, [])) for video_id in video_ids}


def coverage_note(gt: Mapping[str, list[Segment]], predicted: Iterable[str], split: str = "") -> str | None:
    """A line for the user when a predictions file covers only some of the scored videos, else None.

    `gt`: the scored videos (a split); `predicted`: the video ids the predictions file holds. `score`
    counts every ground truth of an uncovered video as missed, which is right for a detector that
    found nothing there and wrong for a file made for other videos (detect run on 2 of 6): the score
    is kept, and the user is told how much of it comes from videos the file never saw."""
    predicted = set(predicted)
    uncovered = [video_id for video_id in gt if video_id not in predicted]
    if not uncovered:
        return None
    missed = sum(len(gt[video_id]) for video_id in uncovered)
    shown = ", ".join(uncovered[:5]) + (", ..." if len(uncovered) > 5 else "")
    other = "the other one" if len(uncovered) == 1 else f"the other {len(uncovered)}"
    return (f"predictions cover {part_of(len(gt) - len(uncovered), len(gt), 'video')}"
            f"{' of split ' + split if split else ''}; {other} ({shown}) count{'s' * (len(uncovered) == 1)} as all "
            f"missed ({counted(missed, 'ground-truth segment')}; `mgrec score --videos` scores only the videos named)")


def _training_split_of(run: object) -> str | None:
    """The train split of the run a predictions file records (`mgrec detect` writes its path), where that run is
    at hand; None otherwise (a file of another tool, a run moved away: nothing to say)."""
    if not isinstance(run, str) or not run:
        return None
    from mgrec.run import RunDir  # here: the metrics themselves need no torch, which mgrec.run loads

    try:
        return RunDir(run).read_config().data.train_split
    except (InputError, OSError):
        return None


def _check_items(items: Sequence[Segment | Detection], classes: list[str], what: str,
                 video_id: str) -> Sequence[Segment | Detection]:
    """What the file readers refuse, for segments and detections given in Python: a label of the class list, a
    finite start >= 0 before its end (`segment_problem`), a finite score (a NaN one was left out of F1 but counted
    in AP). An item of the plain form (what the readers make: exact types, fields in range) passes at once; any
    other is asked each question by `_check_items_reference`, which names what is wrong: a million detections were
    checked at 5 us each, half of what scoring them took. Returns `items`, where an item's fields were numbers of
    another kind (numpy's scalars, 0-d torch tensors: `mgrec.files.as_real`) with that item made of Python's."""
    kinds = (Detection,) if what == "prediction" else (Segment, Detection)
    count = len(classes)
    result = items
    for index, item in enumerate(items):
        if type(item) in kinds:
            label_id, start, end = item.label_id, item.start, item.end
            score = item.score if type(item) is Detection else 0.0
            if (item.video_id == video_id and type(label_id) is int and 0 <= label_id < count
                    and classes[label_id] == item.label and type(start) is float and type(end) is float
                    and 0.0 <= start < end < math.inf and type(score) is float and -math.inf < score < math.inf):
                continue
        plain = _check_items_reference(items[index:index + 1], classes, what, video_id, first_index=index)[0]
        if plain is not item:
            if result is items:
                result = list(items)
            result[index] = plain
    return result


def _check_items_reference(items: Sequence[Segment | Detection], classes: list[str], what: str, video_id: str,
                           first_index: int = 0) -> list[Segment | Detection]:
    """`_check_items`, each question asked of each item (`first_index`: the index of items[0] in its video's list,
    for the message): the definition of what is refused and of what is made plain (tests/evaluate/test_scoring.py
    checks them equal). A field of 0-d tensors is read as the metrics read it (`as_real`): refused, "expected a finite
    start before its end, got [tensor(1.), tensor(2.)]" named no fault."""
    kind = Detection if what == "prediction" else (Segment, Detection)
    result: list[Segment | Detection] = []
    for index, item in enumerate(items, start=first_index):
        if not isinstance(item, kind):
            raise InputError(f"video {video_id} {what} #{index}: expected a "
                             f"{'Detection' if kind is Detection else 'Segment'}, got {brief(item)}")
        place = getattr(item, "source", "") or f"video {video_id} {what} #{index}"
        if item.video_id != video_id:  # scored under its key: a record of another video there is a mix-up
            raise InputError(f"{place}: its video_id {brief(item.video_id)} is not the video it is listed under "
                             f"({brief(video_id)}); OfflineDetector.detect names an array's detections 'video' "
                             "unless given video_id=")
        label_id = as_real(item.label_id)
        if type(label_id) is not int or not 0 <= label_id < len(classes) or classes[label_id] != item.label:
            why = f" (label_id: {number_refusal(item.label_id)})" if label_id is None else ""
            raise InputError(
                f"{place}: label_id {item.label_id} / label {item.label!r} does not match the class list {classes}"
                f"{why}"
            )
        problem = segment_problem(item.start, item.end)
        if problem is not None:
            raise InputError(f"{place}: {problem}")
        fields = {"label_id": label_id, "start": as_real(item.start), "end": as_real(item.end)}
        if isinstance(item, Detection):
            fields["score"] = as_real(item.score)
            if not is_finite_real(fields["score"]):
                why = f" (score: {number_refusal(item.score)})" if fields["score"] is None else ""
                raise InputError(f"{place}: expected a finite score, got {item.score!r}{why}")
        changed = {name: value for name, value in fields.items() if value is not getattr(item, name)}
        result.append(dataclasses.replace(item, **changed) if changed else item)
    return result


def _listed_per_video(value: Mapping[str, Iterable], name: str, expected: str) -> dict[str, list]:
    """{video_id: its list}, each list read once: `score` checks each, then scores it (an iterator given there was
    checked, and then scored as empty)."""
    return {video_id: listed(items, f"{name} [{brief(video_id)}]", expected) for video_id, items in value.items()}


def confusion_counts(
    gt: Mapping[str, list[Segment]], hard: Mapping[str, list[Detection]], num_classes: int,
    tiou_threshold: float = F1_TIOU_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """(matrix (K, K) rows = ground-truth class, columns = predicted class; background (K,)).

    Each prediction counts once: for the ground-truth segment of any class with the highest tIoU
    in its video (the first such segment on ties) if that tIoU > threshold, else as `background`
    in its predicted-class column. Predictions are taken `CONFUSION_ROWS` at a time (each row's answer is its own):
    a hard set of 166,000 detections in a video of 70 gestures made 93 MB tIoU arrays, several at once.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    background = np.zeros(num_classes, dtype=np.int64)
    for video_id, items in hard.items():
        if not items:
            continue
        pred_labels = label_ids(items)
        gt_items = gt.get(video_id, [])
        if not gt_items:
            np.add.at(background, pred_labels, 1)
            continue
        pred_bounds, gt_bounds, gt_labels = bounds(items), bounds(gt_items), label_ids(gt_items)
        for first in range(0, len(items), CONFUSION_ROWS):
            rows = slice(first, first + CONFUSION_ROWS)
            overlaps = tiou_matrix(pred_bounds[rows], gt_bounds)
            nearest = overlaps.argmax(axis=1)
            overlapping = tiou_above(overlaps[np.arange(len(overlaps)), nearest], tiou_threshold)
            labels = pred_labels[rows]
            np.add.at(matrix, (gt_labels[nearest[overlapping]], labels[overlapping]), 1)
            np.add.at(background, labels[~overlapping], 1)
    return matrix, background


# How many predictions `confusion_counts` compares with a video's ground truth at once (8192 x 100 gestures: 6.5 MB)
CONFUSION_ROWS = 8192


def recorded_thresholds(info: Mapping, pred_path: str | Path, num_classes: int) -> tuple[float, list[float] | None]:
    """The score threshold (and per-class ones) a ranked list of `mgrec detect --all` records
    (`mgrec.evaluate.predictions.read_predictions_info`)."""
    threshold, per_class = info.get("score_threshold"), info.get("class_thresholds")
    # a run's thresholds bound its probabilities, as its postprocess.json holds them (an edited -1 scored the whole
    # ranked list as the hard set, F1 23 for a run of 72, under "the threshold it records")
    if not (is_number(threshold) and 0 <= threshold <= 1):
        raise InputError(f"{where(pred_path, key='mgrec.score_threshold')}: expected a number in [0, 1] (the run's "
                         f"threshold, as mgrec detect records it), got {brief(threshold)}")
    problem = class_thresholds_problem(per_class, num_classes)
    if problem is not None:
        raise InputError(f"{where(pred_path, key='mgrec.class_thresholds')}: expected {problem}")
    return float(threshold), None if per_class is None else [float(t) for t in per_class]


def score(
    gt: Mapping[str, list[Segment]],
    ranked: Mapping[str, list[Detection]],
    classes: list[str],
    score_threshold: float,
    split: str = "",
    class_thresholds: Sequence[float] | None = None,
    tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
) -> dict:
    """Every score of `ranked` against `gt` (the keys of the Scores contract).

    Videos in `gt` without predictions have none; predictions of videos not in `gt` are an error
    (restrict them first with `restrict_to_videos`). `num_predictions` counts the hard set, the
    predictions F1 is computed on: score >= `score_threshold`, or with `class_thresholds` (one per class,
    by label id) >= the threshold of the detection's class. AP of a class without ground truth is None
    (JSON null). mAP is at each of `tiou_thresholds`, and averaged over them (`average_mAP`, and each class's
    `ap`).
    """
    for name, value in (("ground truth", gt), ("predictions", ranked)):
        if not isinstance(value, Mapping):  # detect() returns one video's list
            raise InputError(f"{name}: expected a mapping {{video_id: [...]}}, got {type(value).__name__} (one "
                             "video's list: give {video_id: its list})")
    classes = check_class_list(classes)  # one name twice merged the rows of its two label ids
    if not is_finite_real(score_threshold):  # True is no threshold of 1.0
        raise InputError(f"score threshold must be a finite number, got {score_threshold!r}")
    tiou_thresholds = listed(tiou_thresholds, "tIoU thresholds", "one or more numbers in (0, 1]")
    check_tious(tiou_thresholds)
    # each once, as `--tious` and `score_file` take them: a repeat was one key of `mAP` but counted twice in average mAP
    tiou_thresholds = list(dict.fromkeys(tiou_thresholds))
    if class_thresholds is not None:
        expected = f"{len(classes)} finite numbers (one per class)"
        class_thresholds = listed(class_thresholds, "per-class score thresholds", expected)
        if len(class_thresholds) != len(classes) or not all(is_finite_real(t) for t in class_thresholds):
            raise InputError(f"per-class score thresholds: expected {expected}, got {brief(class_thresholds)}")
    gt = _listed_per_video(gt, "ground truth", "a list of Segment")
    ranked = _listed_per_video(ranked, "predictions", "a list of Detection")
    unknown = sorted(set(ranked) - set(gt))
    if unknown:
        shown = ", ".join(brief(video) for video in unknown[:10])  # quoted: a space or newline in an id shows
        shown += f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise InputError(
            f"predictions for {len(unknown)} video(s) without ground truth{' in split ' + split if split else ''}: "
            f"{shown}; restrict the predictions to the scored videos first"
        )
    num_ground_truth = sum(len(items) for items in gt.values())
    if num_ground_truth == 0:
        raise InputError(f"no ground-truth segments{' in split ' + split if split else ''}: nothing to score against")
    # each checked, and made of Python's numbers where its fields were others (0-d tensors): the metrics, the digest
    # and the hard set then read what the file readers would give them
    gt = {video_id: _check_items(items, classes, "ground truth", video_id) for video_id, items in gt.items()}
    ranked = {video_id: _check_items(items, classes, "prediction", video_id) for video_id, items in ranked.items()}

    ranked = restrict_to_videos(ranked, gt)
    hard = apply_score_threshold(ranked, score_threshold, class_thresholds)
    # the records were checked above (`_check_items`): the metrics' own checks would read them all again
    strict = _f1_strict(gt, hard, F1_TIOU_THRESHOLD)
    miga = _f1_miga(gt, hard, F1_TIOU_THRESHOLD)
    ap = _average_precision(gt, ranked, len(classes), tiou_thresholds)
    matrix, background = confusion_counts(gt, hard, len(classes))

    per_class = {}
    for label_id, name in enumerate(classes):
        counts = strict.per_class.get(label_id)
        class_ap = [ap.ap[t, label_id] for t in range(len(ap.thresholds))]
        per_class[name] = {
            "label_id": label_id,
            "instances": counts.num_gt if counts else 0,
            # AP of a class is its mean over the tIoU thresholds, like average_mAP.
            "ap": None if math.isnan(class_ap[0]) else float(np.mean(class_ap)),
            # a class with neither instances nor detections has no F1 to give (None, shown as "-", as its AP); one
            # with either has: 2TP / (2TP + FP + FN), 0 for false positives alone or misses alone
            "f1": counts.f1 if counts else None,
            # a ratio over nothing is none (F1Result's 0.0, kept for the pooled counts that tuning reads): a class
            # without instances has no recall, as it has no AP (its 0.00 read as every gesture of it missed), and one
            # with nothing detected as it in the hard set no precision (its 0.00 read as every detection wrong)
            "precision": counts.precision if counts and counts.num_pred else None,
            "recall": counts.recall if counts and counts.num_gt else None,
        }

    return {
        "split": split,
        "num_videos": len(gt),
        "num_ground_truth": num_ground_truth,
        "ground_truth_sha256": ground_truth_digest(gt, classes),
        "num_predictions": strict.overall.num_pred,
        "score_threshold": float(score_threshold),
        "class_thresholds": None if class_thresholds is None else [float(t) for t in class_thresholds],
        "f1": strict.overall.f1,
        "precision": strict.overall.precision,
        "recall": strict.overall.recall,
        "f1_miga": miga.f1,
        "precision_miga": miga.precision,
        "recall_miga": miga.recall,
        "mAP": {tiou_key(t): value for t, value in ap.mAP.items()},
        "average_mAP": ap.average_mAP,
        "per_class": per_class,
        "confusion": {"labels": list(classes), "matrix": matrix.tolist(), "background": background.tolist()},
    }


def ground_truth_digest(gt: Mapping[str, list[Segment]], classes: list[str]) -> str:
    """The sha256 of what a score was counted against: each video's id and its segments (seconds to the microsecond,
    class name). Two scores of one split with the same counts may still have been made against other videos or
    labels (ids renamed, gestures relabelled); `mgrec.run.same_scored_set` tells them apart by this. The digest is
    written into every eval_/online_<split>.json and compared with those written before, so its formula is a file
    format: one sha256 over each video's id and rows. Hashing a digest of each video's rows instead (a refactor)
    changed every value, and `mgrec compare` refused a run evaluated before it beside one evaluated after as "scored
    on different test sets" (the report hid its streamed scores likewise), on the same annotations."""
    per_video = sorted((video_id, segment_rows((s.start, s.end, classes[s.label_id]) for s in items))
                       for video_id, items in gt.items())
    return hashlib.sha256(json.dumps(per_video).encode()).hexdigest()


def bar_of(result: dict) -> str:
    """The hard set's bar of a scores dict in words (`f1.bar_words`)."""
    return bar_words(result["score_threshold"], result.get("class_thresholds"))


def val_scores_phrase(metrics: dict, tuned_on: str | None, class_thresholds: list[float] | None = None) -> str:
    """"F1 73.43%, F1 (MiGA rule) 73.43%, average mAP 65.34% at score threshold 0.32 (tuned on val)": a run's (or an
    ensemble's) val scores as training and `mgrec ensemble` print them; `metrics` in fractions, as files keep them."""
    return (f"F1 {100 * metrics['f1']:.2f}%, F1 (MiGA rule) {100 * metrics['f1_miga']:.2f}%, average mAP "
            f"{100 * metrics['average_mAP']:.2f}% at {threshold_phrase(metrics['score_threshold'], class_thresholds)} "
            f"(tuned on {tuned_on})")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def format_score_table(result: dict) -> str:
    """The headline numbers and a per-class table (name, instances, AP, F1, P, R) for a terminal."""
    maps = "  ".join(f"@{key} {_percent(value)}" for key, value in result["mAP"].items())
    only = result.get("videos")
    only = "" if not only else f" ({', '.join(only[:5])}{', ...' if len(only) > 5 else ''} only)"
    lines = [
        f"split {result['split'] or '-'}{only}: {counted(result['num_videos'], 'video')}, {result['num_ground_truth']} "
        "ground-truth "
        f"segments, {result['num_predictions']} predictions with score >= {bar_of(result)}",
        f"F1 (one-to-one, tIoU > {F1_TIOU_THRESHOLD:g}) {_percent(result['f1'])}  precision "
        f"{_percent(result['precision'])}  recall {_percent(result['recall'])}",
        f"F1 (MiGA rule, tIoU > {F1_TIOU_THRESHOLD:g})  {_percent(result['f1_miga'])}  precision "
        f"{_percent(result['precision_miga'])}  "
        f"recall {_percent(result['recall_miga'])}"
        # the starter kit's rule, kept as the challenge scores: a prediction is not used up by the gesture it finds
        + ("  (above 100: by the MiGA rule one prediction may find several gestures)"
           if result["precision_miga"] > 1 else ""),
        f"mAP {maps}  average {_percent(result['average_mAP'])}",
        "",
    ]
    width = max([len("class")] + [min(columns(name), 48) for name in result["per_class"]])
    lines.append(f"{'id':>3}  {'class':<{width}}  {'inst':>5}  {'AP':>6}  {'F1':>6}  {'P':>6}  {'R':>6}    (AP: "
                 "averaged over the mAP's tIoUs; F1, P, R: at the F1's; -: none, as "
                 "a class without instances has no AP or R, one without hard-set detections no P)")
    for name, row in result["per_class"].items():
        lines.append(
            f"{row['label_id']:>3}  {cell(name, width, 48)}  {row['instances']:>5}  {_percent(row['ap']):>6}  "
            f"{_percent(row['f1']):>6}  {_percent(row['precision']):>6}  {_percent(row['recall']):>6}"
        )
    return "\n".join(lines)


def check_threshold_options(tune_on: str | None, thresholds: str, threshold_shrinkage: object,
                            score_threshold: object) -> None:
    """The threshold options of `mgrec score` (`score_file`) that go together: a given threshold or one tuned, per
    class only when tuned, a shrinkage only for per-class thresholds and a number >= 0 (NaN turned every class's
    threshold into the global one without a word). Each named as the call and the command line name it."""
    if thresholds not in THRESHOLD_RULES:
        raise InputError(f"thresholds (--thresholds) {brief(thresholds)}: expected one of {', '.join(THRESHOLD_RULES)}")
    if score_threshold is not None and (isinstance(score_threshold, bool) or not isinstance(score_threshold,
                                                                                            numbers.Real)
                                        or not math.isfinite(score_threshold)):
        raise InputError(f"score_threshold (--score-threshold): expected a finite number, got {brief(score_threshold)}")
    if tune_on and score_threshold is not None:
        raise InputError(f"score_threshold (--score-threshold) {score_threshold:g} and tune_on (--tune-on) {tune_on}: "
                         "tuning chooses the threshold; give one of them")
    if thresholds == "per_class" and not tune_on:
        raise InputError("thresholds per_class (--thresholds per_class) tunes the per-class thresholds on a split: "
                         "give tune_on (--tune-on SPLIT)")
    if threshold_shrinkage is not None:
        if thresholds != "per_class":
            raise InputError("threshold_shrinkage (--threshold-shrinkage) pulls per-class thresholds toward the global "
                             "one: it needs thresholds per_class (--thresholds per_class)")
        if (isinstance(threshold_shrinkage, bool) or not isinstance(threshold_shrinkage, numbers.Real)
                or not math.isfinite(threshold_shrinkage) or threshold_shrinkage < 0):
            raise InputError("threshold_shrinkage (--threshold-shrinkage): expected a finite number >= 0 (instances "
                             f"of val a class's threshold is pulled toward the global one by), got "
                             f"{brief(threshold_shrinkage)}")


def check_tuning_split(tune_on: str | None, split: str) -> None:
    """Refuse tuning the F1 threshold on the split being scored (`mgrec evaluate` and `mgrec score --tune-on`):
    a threshold chosen on the answers makes the F1 look better than any new video would score."""
    if tune_on is not None and canonical_subset(tune_on) == canonical_subset(split):
        hint = "e.g. val" if canonical_subset(split) != "val" else "val tunes the threshold a test score uses: " \
                                                                   "--split test --tune-on val"
        raise InputError(f"--tune-on {tune_on} is the split being scored; tune on another split ({hint})")


class TuningData(NamedTuple):
    """What a threshold was tuned on (`check_tuning_data`): the split, its videos, their ground-truth segments and the
    detections of them; `str` says all but the split in words (and a word where the detections are fewer than the
    gestures), `_asdict()` is `score --json`'s `tuning_data`."""

    split: str
    num_videos: int
    num_ground_truth: int
    num_predictions: int

    def __str__(self) -> str:
        # fewer candidates than gestures: a hard set or a cut list, which tuning can only cut further
        few = ("; fewer detections than gestures there: a hard set or a truncated list (the threshold can only rise "
               "above its lowest score), where tuning wants the ranked list of every candidate (`mgrec detect RUN "
               "FEATURES --all`)" if self.num_predictions < self.num_ground_truth else "")
        return (f"{counted(self.num_videos, 'video')}, {counted(self.num_ground_truth, 'ground-truth segment')} and "
                f"{counted(self.num_predictions, 'detection')}{few}")


def check_tuning_data(ground_truth: Mapping[str, list[Segment]], ranked: Mapping[str, list[Detection]], tune_on: str,
                      annotations: object, predictions: object) -> TuningData:
    """The one rule of what an F1 threshold may be tuned on (`mgrec score --tune-on`, `mgrec evaluate --tune-on`):
    refused where every threshold scores F1 0 there, so the one chosen is arbitrary (above every score, an empty
    hard set; or 0): a split without gestures (`annotations`: the file, for the message), or one where no detection
    (of `predictions`) finds any of them. Else what it was tuned on (in words: "6 videos, 304 ground-truth segments
    and 1 detection"), for the caller to say: a threshold tuned on one detection, silently, scored a test F1 of 0.5."""
    gestures = sum(map(len, ground_truth.values()))
    if not gestures:
        raise InputError(f"{annotations}: split {tune_on!r} has no gestures to tune the threshold on")
    detections = sum(len(ranked.get(video, [])) for video in ground_truth)
    # greedy one-to-one matching at a threshold keeps the full list's matches scoring above it: none there, none at any
    if not _f1_strict(ground_truth, {video: ranked.get(video, []) for video in ground_truth},
                      F1_TIOU_THRESHOLD).matches:
        raise InputError(f"{predictions}: its {counted(detections, 'detection')} of split {tune_on!r} find none of its "
                         f"{counted(gestures, 'ground-truth segment')} (tIoU > {F1_TIOU_THRESHOLD:g}): every threshold "
                         "scores F1 0 there, so there is nothing to tune; check they are of these videos (classes, "
                         "seconds or frames), or score at a given threshold instead")
    return TuningData(tune_on, len(ground_truth), gestures, detections)


# How far a detection's frames may be from its seconds before `score_file` says so, in frames.
FRAMES_SLACK = 1.5


def score_file(annotations: AnnotationSet, gt_path: str | Path, pred_path: str | Path, split: str = "test",
               tune_on: str | None = None, thresholds: str = "global", threshold_shrinkage: float | None = None,
               score_threshold: float | None = None, tious: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
               note: Callable[[str], None] | None = None, videos: Iterable[str] | None = None) -> dict:
    """`mgrec score`: the predictions file `pred_path` (any format `load_predictions` reads) scored against
    `annotations` (read from `gt_path`: `mgrec.data.annotations.load_annotations`) on `split`, at
    `score_threshold` (when not given, every detection of the file: 0, or the lowest score where the file
    holds negative scores, logits) or at the threshold(s) tuned on the split `tune_on` (`thresholds`:
    global or per_class, `threshold_shrinkage` for per_class); `tious`: the thresholds mAP averages over.
    `videos`: score only these videos of `split` (one streamed video, a camera's share), each one of the split's;
    the result's `videos` lists them (null: the whole split). The split tuned on is tuned on whole.

    Refused: predictions of videos the annotations do not list, a split (scored or tuned on) that the file does
    not cover at all (every gesture would count as missed). `note` receives one line for each thing worth saying
    that is not an error: a hard set given for mAP, detections starting after their video ends (frames read as
    seconds?), a file covering only part of a split, a threshold above every score; by default they go to stderr,
    as `mgrec score` prints them."""
    callable_argument(note, "score_file: note", optional=True)
    if note is None:
        def note(line: str) -> None:
            print(f"note: {line}", file=sys.stderr)
    split, tune_on, tious = _checked_score_arguments(annotations, gt_path, pred_path, split, tune_on, thresholds,
                                                     threshold_shrinkage, score_threshold, tious)
    only = None if videos is None else _checked_videos(videos, annotations, gt_path, split)
    fps = {video: entry.fps for video, entry in annotations.videos.items()}
    predictions, info = load_predictions_with_info(pred_path, annotations.classes, fps_by_video=fps)
    _note_the_file(predictions, annotations, fps, info, pred_path, gt_path, note)

    def split_of(name: str) -> tuple[dict[str, list[Segment]], dict[str, list[Detection]]]:
        ids = annotations.split_video_ids(name, gt_path)
        if name == split and only is not None:
            ids = [video for video in ids if video in only]
        if not any(v in predictions for v in ids):
            # Scoring (or tuning on) a split the file does not cover would silently count every
            # gesture as missed, and tune the threshold to 0.
            tuning = name != split  # --tune-on's split: a file of the scored split's videos alone cannot tune
            raise InputError(f"no predictions for split {name} in {pred_path} (it covers {len(predictions)} "
                             f"video(s), none of the {len(ids)} of split {name!r})"
                             + ("; to tune on it, score a ranked list of both splits' videos: `mgrec detect RUN "
                                "FEATURES --all --out ranked.json`" if tuning else ""))
        scored = {v: annotations.segments.get(v, []) for v in ids}
        partial = coverage_note(scored, predictions, name)  # a partial file scores its missing videos as all missed
        if partial:
            note(f"{pred_path}: {partial}")
        return scored, restrict_to_videos(predictions, ids)

    # `mgrec detect --all` of a run, scored with no threshold given or tuned: at its own threshold, as `evaluate`
    # would score it (scored at 0, the whole ranked list was the hard set: F1 24 for a run of F1 72, without a word);
    # its hard set (`detect` without --all) at that threshold too, which it was cut at (scored at 0, the same F1, the
    # result said "score >= 0" and recorded a threshold of 0)
    recorded = (score_threshold is None and not tune_on and info.get("set") in ("ranked", "hard")
                and "score_threshold" in info)
    threshold, class_thresholds = score_threshold, None
    if recorded:
        threshold, class_thresholds = recorded_thresholds(info, pred_path, len(annotations.classes))
        tuned = info.get("threshold_tuned_on")
        if info.get("set") == "ranked":
            note(f"{pred_path} is the ranked list of a run: F1 at the threshold it records ({threshold:.4g}"
                 f"{', tuned on ' + str(tuned) if tuned else ''}{', and one per class' if class_thresholds else ''}); "
                 "--score-threshold 0 counts every detection, --tune-on SPLIT tunes one on SPLIT of --gt")
        else:  # a hard set holds nothing below its bar: what does was added to it, and is not counted
            total = sum(map(len, predictions.values()))
            below = total - sum(map(len, apply_score_threshold(predictions, threshold, class_thresholds).values()))
            if below:
                note(f"{part_of(below, total, 'detection')} in {pred_path} score{'s' * (below == 1)} below the "
                     "threshold it records as its "
                     f"hard set's ({bar_words(threshold, class_thresholds)}): edited, or joined from another file? "
                     "They are not counted; --score-threshold 0 counts every detection")
    tuned_gt: dict[str, list[Segment]] = {}
    tuned_with: TuningData | None = None
    if tune_on:
        tuned_gt, tune_pred = split_of(tune_on)
        tuned_with = check_tuning_data(tuned_gt, tune_pred, tune_on, gt_path, pred_path)
        rule = PostprocessConfig(thresholds=thresholds)
        if threshold_shrinkage is not None:
            rule = dataclasses.replace(rule, threshold_shrinkage=threshold_shrinkage)
        threshold, class_thresholds = tune_thresholds(tuned_gt, tune_pred, len(annotations.classes), rule)
        note(f"{threshold_phrase(threshold, class_thresholds)} tuned on split {tune_on} of {pred_path}: {tuned_with}")
    gt, pred = split_of(split)
    _note_the_split(predictions, gt, tuned_gt, info, split, tune_on, pred_path, note, restricted=only is not None)
    scores = {d.score for items in pred.values() for d in items}
    if threshold is None:  # every detection of the split counts: 0 for probabilities, the lowest score for
        threshold = min(0.0, min(scores, default=0.0))  # logits (a bar of 0 dropped negative scores without a word)
        if info.get("set") == "ranked":  # it says what it holds, and not where to cut it: F1 24 for 64, no word
            note(f"{pred_path} holds a ranked list (its {MGREC_KEY}.set) but records no score threshold, and none was "
                 "given: F1 counts every candidate of the list, far too many for a hard set; give --score-threshold "
                 "T, or --tune-on SPLIT to tune one on SPLIT of --gt")
        elif info.get("set") is None and _may_be_a_ranked_list(pred_path, scores):
            note(f"{pred_path} records no score threshold and none was given: F1 counts every detection, as it "
                 "should for a hard set; for a ranked list (every candidate, as other tools write, or `mgrec detect "
                 "--all`) it is far too low: give --score-threshold T, or --tune-on SPLIT to tune one on SPLIT of --gt")
    _note_the_scores(pred, scores, threshold, class_thresholds, split, pred_path, note)
    result = score(gt, pred, annotations.classes, threshold, split=split, class_thresholds=class_thresholds,
                   tiou_thresholds=tious)
    # where the threshold came from, as eval_<split>.json says it: the split tuned on here, the one the file records
    # (a run's ranked list scored at its own threshold), or None (given, or every detection)
    result["threshold_tuned_on"] = tune_on or (info.get("threshold_tuned_on") if recorded else None)
    result["videos"] = None if only is None else list(gt)
    # what the threshold was tuned on, as the note on stderr says it: a script reading the JSON had the split's name
    # alone, not that it held one detection (null: not tuned here)
    result["tuning_data"] = None if tuned_with is None else tuned_with._asdict()
    if Path(pred_path).is_dir() and result["num_predictions"] and result["f1"] == 0:
        shifted = _shifted_class_f1(gt, pred, annotations.classes, threshold)
        if shifted is not None:  # SMG's class column counts from 1: a folder written from 0 scores nothing
            note(f"F1 is 0, but with every class id of {pred_path} one {shifted[0]} it would be {shifted[1]:.2%}: were "
                 "the classes written from 0? SMG label files number them 1 to K")
    return result


def _checked_videos(videos: object, annotations: AnnotationSet, gt_path: str | Path, split: str) -> set[str]:
    """`score_file`'s `videos` (`mgrec score --videos`): video ids of the scored split, at least one. A video of
    another split, or of none, is refused by name (left out, its gestures would silently not be scored)."""
    if isinstance(videos, (str, bytes)) or not isinstance(videos, Iterable):
        raise InputError(f"videos: expected a list of video ids, got {brief(videos)}")
    videos = list(videos)
    if not videos or not all(isinstance(video, str) and video for video in videos):
        raise InputError(f"videos: expected one or more video ids (non-empty str), got {brief(videos)}")
    in_split = set(annotations.split_video_ids(split, gt_path))
    for video in videos:
        if video in in_split:
            continue
        if video in annotations.videos:
            raise InputError(f"videos: {brief(video)} is a video of split {annotations.videos[video].subset!r} of "
                             f"{gt_path}, not of split {split!r}, the one scored (--split)")
        raise InputError(f"videos: {brief(video)} is not a video of {gt_path}{_video_hint(video, in_split)}")
    return set(videos)


def _video_hint(video: str, in_split: set[str]) -> str:
    """Where a video id named (`--videos`) is none of the split's: the one it looks like. A look-alike letter
    (Cyrillic 'е' for 'e', pasted from a document) printed as the id itself, and 'is not a video' of a name that
    reads the same said nothing the user could act on: its differences are shown, escaped."""
    alike = {name_key(known): known for known in sorted(in_split)}
    close = alike.get(name_key(video))
    if close is None:
        matches = difflib.get_close_matches(video, sorted(in_split), n=1, cutoff=0.8)
        close = matches[0] if matches else None
    if close is None:
        return "" if video.isascii() else f" (it holds characters outside ASCII: {ascii(video)})"
    shown = spelling_hint(video, close) or (
        "" if video.isascii() and close.isascii() else f" ({ascii(video)} and {ascii(close)} differ)")
    return f"; did you mean {brief(close)}?{shown}"


def _may_be_a_ranked_list(pred_path: str | Path, scores: set[float]) -> bool:
    """Whether predictions without a recorded set may be a ranked list: a results JSON, a CSV table, or a folder of
    SMG files with a score column (its scores not all one value: three-column files, all 1.0, are a hard set). A
    stream's JSON lines are its hard set."""
    if Path(pred_path).is_dir():
        return len(scores) > 1
    return is_results_json(pred_path) or is_csv_table(pred_path)


def _checked_score_arguments(annotations: object, gt_path: str | Path, pred_path: object, split: object,
                             tune_on: object, thresholds: str, threshold_shrinkage: object, score_threshold: object,
                             tious: object) -> tuple[str, str | None, tuple[float, ...]]:
    """`score_file`'s arguments, refused by name where they cannot be scored with; the split names as the
    annotations name them, and the tIoU thresholds sorted and once each."""
    if not isinstance(annotations, AnnotationSet):
        raise InputError(f"annotations: expected the AnnotationSet of {gt_path} (mgrec.data.annotations."
                         f"load_annotations), got {type(annotations).__name__}")
    if not isinstance(pred_path, (str, os.PathLike)):
        raise InputError(f"pred_path: expected a path (str or pathlib.Path), got {type(pred_path).__name__}")
    split = split_name(split, "split")  # `testing` is `test`, as in the annotations; a plain name
    tune_on = None if tune_on is None else split_name(tune_on, "tune_on (--tune-on)")
    check_threshold_options(tune_on, thresholds, threshold_shrinkage, score_threshold)
    # one threshold given as a number (True is no threshold: score refuses it); any iterable of numbers
    if isinstance(tious, numbers.Real) and not isinstance(tious, bool):
        tious = [tious]
    tious = tuple(tious) if isinstance(tious, Iterable) and not isinstance(tious, (str, bytes)) else tious
    check_tious(tious)
    check_tuning_split(tune_on, split)  # as evaluate: no threshold chosen on the answers
    return split, tune_on, tuple(sorted(set(tious)))


def _affix_hint(unknown: list[str], videos: Iterable[str], gt_path: str | Path) -> str:
    """Where the unknown video ids are the annotations' own with something before or after them, or theirs without
    it (ActivityNet's `v_` of its videos' file names, OpenTAD's and ActionFormer's prefixes, a file ending `.mp4`
    kept in the id), that said: the message listed the ids alone, and the same ids in two spellings read as a
    different set of videos."""
    known = set(videos)
    first = unknown[0]
    for inner, outer, whose in ((video, first, "the predictions' ids have") for video in known if video in first):
        before, after = outer.split(inner, 1)
        if all(u.startswith(before) and u.endswith(after) and u[len(before):len(u) - len(after)] in known
               for u in unknown):
            return (f"; each is a video of {gt_path} with {_affix_words(before, after)}: {whose} it and the "
                    f"annotations' do not ({brief(first)} is {brief(inner)}); write the predictions' ids as the "
                    "annotations' do")
    for video in (video for video in known if first in video and video != first):
        before, after = video.split(first, 1)
        if all(before + u + after in known for u in unknown):
            return (f"; each is a video of {gt_path} without {_affix_words(before, after)}: the annotations' ids "
                    f"have it and the predictions' do not ({brief(first)} is {brief(video)}); write the predictions' "
                    "ids as the annotations' do")
    return ""


def _affix_words(before: str, after: str) -> str:
    return " and ".join(words for words in (f"{brief(before)} before" if before else "",
                                            f"{brief(after)} after" if after else "") if words)


def _note_the_file(predictions: dict[str, list[Detection]], annotations: AnnotationSet, fps: dict[str, float],
                   info: dict, pred_path: str | Path, gt_path: str | Path, note: Callable[[str], None]) -> None:
    """What a predictions file says of itself before any split is scored: which set it holds (a hard set scored
    for mAP), videos the annotations do not list (refused), frames that disagree with the seconds at each video's
    `fps`, detections after their video's end (segments in frames read as seconds)."""
    if info.get("set") == "hard":
        note(f"{pred_path} holds the hard set (what `mgrec detect` writes by default): its mAP is lower than the "
             "ranked list's; `mgrec detect --all` writes the ranked list")
    elif is_csv_table(pred_path):
        note(f"{pred_path} is a CSV table, which does not record whether it holds the hard set (`mgrec detect`'s "
             "default) or the ranked list (`--all`): mAP means what it should for a ranked list only")
    unknown = sorted(set(predictions) - set(annotations.videos))
    if unknown:
        alike = {name_key(video): video for video in annotations.videos}
        spelt = next(((video, alike[name_key(video)]) for video in unknown if name_key(video) in alike), None)
        raise InputError(f"{pred_path}: predictions for {len(unknown)} video(s) not in {gt_path}: "
                         f"{', '.join(brief(video) for video in unknown[:10])}"
                         + ("" if spelt is None else f"; {brief(spelt[0])} reads as its video {brief(spelt[1])}"
                            f"{spelling_hint(*spelt)}: give both one spelling")
                         + (_affix_hint(unknown, annotations.videos, gt_path) if spelt is None else ""))
    # frames that say another time than the seconds: one of the two is wrong, and only the seconds are scored (a
    # frame and a half of slack: fused detections' rounded mean frames drift from their mean seconds by over one)
    astray = [d for video, items in predictions.items() for d in items if d.start_frame is not None
              and max(abs(d.start_frame / fps[video] - d.start), abs(d.end_frame / fps[video] - d.end))
              > FRAMES_SLACK / fps[video]]
    if astray:
        first = astray[0]
        one = len(astray) == 1
        whose = "video's" if one else "videos'"
        note(f"{counted(len(astray), 'detection')} in {pred_path} {'has' if one else 'have'} a segment(frames) more "
             f"than {FRAMES_SLACK:g} frames away from {'its' if one else 'their'} segment in seconds at the "
             f"{whose} fps (first: {first.video_id} [{first.start:g}, "
             f"{first.end:g}] s, frames [{first.start_frame}, {first.end_frame}] at {fps[first.video_id]:g} fps); "
             "the seconds are scored")
    # a file joined to itself (`cat a.csv a.csv`, a folder's files doubled) halved F1 without a word: each copy is
    # scored, as a false positive wherever its first is matched (the JSON lines of a stream are refused instead)
    repeated = repeats_words(predictions, pred_path)
    if repeated:
        note(f"{repeated}: each copy is scored, as a false positive where the first is matched; a file joined to "
             "itself, or written twice?")
    # segments in frames read as seconds score 0 without a word: they start after the videos end
    late = [d for video, items in predictions.items() for d in items
            if d.start > annotations.videos[video].duration + 1.0]
    if late:
        first = late[0]
        one = len(late) == 1
        note(f"{part_of(len(late), sum(map(len, predictions.values())), 'detection')} in {pred_path} "
             f"{'starts after its' if one else 'start after their'} video ends (first: {first.video_id} at "
             f"{first.start:g} s, {gt_path} gives it "
             f"{annotations.videos[first.video_id].duration:g} s); "
             + ("frames at another fps, or the label files of other videos?" if Path(pred_path).is_dir()
                else "are their segments in frames, not seconds?"))


def _note_the_split(predictions: dict[str, list[Detection]], gt: dict[str, list[Segment]],
                    tuned_gt: dict[str, list[Segment]], info: dict, split: str, tune_on: str | None,
                    pred_path: str | Path, note: Callable[[str], None], restricted: bool = False) -> None:
    """What is worth saying of the scored split: the split the run that made the file trained on, and
    predictions of videos neither scored nor tuned on (left out, where ActivityNet's evaluator counts them)."""
    trained_on = _training_split_of(info.get("run"))
    if trained_on is not None and canonical_subset(trained_on) == split:  # as `evaluate` says it
        note(f"split {split} is the split the run that made {pred_path} trained on (data.train_split "
             f"{trained_on!r}): its scores say how closely the run fits the videos it learnt from, not how it does "
             "on new ones")
    outside = [video for video, items in predictions.items() if items and video not in gt and video not in tuned_gt]
    where = f"the videos scored of split {split}" if restricted else f"split {split}"
    if outside:  # ActivityNet's evaluator counts them as false positives; scoring one split leaves them out
        shown = ", ".join(brief(video) for video in outside[:3]) + (", ..." if len(outside) > 3 else "")
        note(f"{pred_path}: the {sum(len(predictions[v]) for v in outside)} predictions of {len(outside)} video(s) "
             f"outside {where} ({shown}) are not scored ({'--videos' if restricted else '--split'} names the videos "
             f"scored{', --tune-on those tuned on' if tune_on else ''})")


def _note_the_scores(pred: dict[str, list[Detection]], scores: set[float], threshold: float,
                     class_thresholds: list[float] | None, split: str, pred_path: str | Path,
                     note: Callable[[str], None]) -> None:
    """What the scored split's scores make of mAP and F1: one score for all (mAP in the file's order), ties
    (broken by the file's order), a threshold above every score (an empty hard set)."""
    if len(scores) == 1 and sum(map(len, pred.values())) > 1:
        note(f"every detection of split {split} in {pred_path} has the score {next(iter(scores)):g} (a file "
             "without scores, as SMG label files are?): mAP ranks them in the file's order, so it says little; "
             "F1 does not depend on the order")
    elif tied := _tied_detections(pred):  # scores rounded by another tool: the file's order breaks their ties
        note(f"{tied} detections of split {split} in {pred_path} share their score with another of their class: mAP "
             "ranks tied detections in the file's order (as ActivityNet's evaluator does), so another order of the "
             "same detections may give a slightly different mAP; F1 does not depend on the order")
    highest = max(scores, default=None)
    if class_thresholds is None and highest is not None and threshold > highest:  # scores may be logits
        note(f"the score threshold {threshold:.4g} is above every score of split {split} in {pred_path} (the "
             f"highest is {highest:.4g}): the hard set is empty and F1 is 0")


def _tied_detections(pred: Mapping[str, list[Detection]]) -> int:
    """How many detections share their (class, score) with another detection: average precision ranks a class's
    detections over every video by score, and breaks ties by their order."""
    counts = Counter((d.label_id, d.score) for items in pred.values() for d in items)
    return sum(n for n in counts.values() if n > 1)


def _shifted_class_f1(gt: Mapping[str, list[Segment]], pred: Mapping[str, list[Detection]], classes: list[str],
                      threshold: float) -> tuple[str, float] | None:
    """The F1 of `pred` with every class id one lower or one higher (where all stay in range), the better of the two
    when it is above 0; None otherwise."""
    best = None
    for step, word in ((1, "higher"), (-1, "lower")):
        moved = {video: [dataclasses.replace(d, label_id=d.label_id + step, label=classes[d.label_id + step])
                         for d in items] for video, items in pred.items()
                 if all(0 <= d.label_id + step < len(classes) for d in items)}
        if len(moved) != len(pred):
            continue
        f1 = score(gt, moved, classes, threshold)["f1"]
        if f1 > 0 and (best is None or f1 > best[1]):
            best = (word, f1)
    return best
