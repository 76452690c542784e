"""F1 of a hard set of detections against ground truth: the MiGA rule and a strict variant.

Both rules pool their counts over all videos (micro average): precision = correct / #predictions,
recall = correct / #ground truth, F1 = 2PR / (P + R + 1e-7), as the MiGA organisers' starter kit
does. A prediction can only match a ground-truth segment of the same video and the same class, and
only when their temporal IoU is strictly greater than the threshold (`F1_TIOU_THRESHOLD`, the
challenge's 0.3, by default; compared with `matching.tiou_above`, which allows for the rounding
of times in seconds).

- `f1_miga` reproduces the starter kit (`THDutils.tester_SMG`): every ground-truth segment counts as
  found when *some* prediction of its class overlaps it by more than the threshold. Matched
  predictions are not used up, so one prediction may find several ground-truth segments and
  `correct` may exceed the number of predictions (precision > 1 is possible). Because nothing is
  used up, the result does not depend on the order of the predictions.
- `f1_strict` matches one to one: predictions in descending score order each take the unmatched
  ground-truth segment of their class with the highest tIoU (`matching.greedy_match`).

Both count the hard set: the detections with score >= the score threshold (`hard_set`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mgrec.config import PostprocessConfig
from mgrec.errors import InputError
from mgrec.evaluate.matching import (
    bounds,
    check_f1_tiou,
    check_records,
    greedy_match,
    label_ids,
    same_class_tiou,
    scores,
    tiou_above,
    tiou_matrix,
)
from mgrec.files import brief, is_finite_real, listed
from mgrec.records import Detection, Segment

# The MiGA challenge's tIoU threshold: both F1 rules, their threshold tuning and the confusion matrix.
F1_TIOU_THRESHOLD = 0.3
# The starter kit's guard against 0/0 in the F1 formula.
F1_EPSILON = 1e-7


def hard_set(detections: Iterable[Detection], score_threshold: float,
             class_thresholds: Sequence[float] | None = None) -> list[Detection]:
    """The set F1 is computed on: the detections with score >= `score_threshold` (or, with
    `class_thresholds`, >= the threshold of their class, by label id), in their order. A NaN threshold kept
    nothing without a word, and a label id past the class thresholds was an IndexError (a negative one took the
    bar of another class): both are refused, the detection named. An infinite bar is one: inf keeps nothing (of its
    class), -inf everything."""
    if class_thresholds is None:
        if not _is_bar(score_threshold):
            raise InputError(f"score_threshold: expected a number (inf keeps nothing, -inf everything), got "
                             f"{brief(score_threshold)}")
        return [d for d in detections if d.score >= score_threshold]
    bars = listed(class_thresholds, "class_thresholds", "one number per class")
    if not bars or not all(_is_bar(bar) for bar in bars):
        raise InputError(f"class_thresholds: expected one number per class (not NaN), got {brief(bars)}")
    detections = listed(detections, "detections", "a list of Detection")
    count = len(bars)
    outside = next((d for d in detections if not (type(d.label_id) is int and 0 <= d.label_id < count)
                    and (isinstance(d.label_id, bool) or not isinstance(d.label_id, numbers.Integral)
                         or not 0 <= d.label_id < count)), None)  # an int in range passes at the first question
    if outside is not None:
        raise InputError(f"detection of {brief(outside.video_id)} at {outside.start} s: label_id "
                         f"{brief(outside.label_id)} has no class threshold (class_thresholds holds {len(bars)}: "
                         f"label ids 0 to {len(bars) - 1})")
    return [d for d in detections if d.score >= bars[d.label_id]]


def _is_bar(value: object) -> bool:
    """A score threshold: a real number, infinite ones included, not NaN (which kept nothing without a word)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def bar_words(score_threshold: float, class_thresholds: Sequence[float] | None = None) -> str:
    """The hard set's bar in words, to follow "score >=": "0.41", or "its class's threshold (0.2 to 0.6)"."""
    if class_thresholds is None:
        return f"{score_threshold:.4g}"
    return f"its class's threshold ({min(class_thresholds):.4g} to {max(class_thresholds):.4g})"


def threshold_phrase(score_threshold: float, class_thresholds: Sequence[float] | None = None) -> str:
    """"score threshold 0.41", or "score >= its class's threshold (0.2 to 0.6)" (`bar_words`)."""
    if class_thresholds is None:
        return f"score threshold {score_threshold:.4g}"
    return f"score >= {bar_words(score_threshold, class_thresholds)}"


def apply_score_threshold(pred: Mapping[str, list[Detection]], threshold: float,
                          class_thresholds: Sequence[float] | None = None) -> dict[str, list[Detection]]:
    """`hard_set` of every video; every video is kept, possibly empty."""
    return {video_id: hard_set(items, threshold, class_thresholds) for video_id, items in pred.items()}


@dataclass(frozen=True)
class F1Result:
    """Pooled counts and the precision, recall and F1 derived from them."""

    correct: int
    num_gt: int
    num_pred: int
    precision: float
    recall: float
    f1: float

    @classmethod
    def from_counts(cls, correct: int, num_gt: int, num_pred: int) -> F1Result:
        precision = correct / num_pred if num_pred else 0.0
        recall = correct / num_gt if num_gt else 0.0
        f1 = 2 * precision * recall / (precision + recall + F1_EPSILON)
        return cls(int(correct), int(num_gt), int(num_pred), precision, recall, f1)


@dataclass(frozen=True)
class Match:
    """One prediction matched to one ground-truth segment; indices into the per-video lists."""

    video_id: str
    pred_index: int
    gt_index: int
    tiou: float


@dataclass(frozen=True)
class StrictF1Result:
    """`f1_strict` output: pooled counts, counts per class id and the matches themselves."""

    overall: F1Result
    per_class: dict[int, F1Result]  # every class id that occurs in the ground truth or predictions
    matches: list[Match]


def _video_ids(gt: Mapping[str, list], pred: Mapping[str, list]) -> list[str]:
    """Ground-truth videos first, then videos that only have predictions (all false positives)."""
    return list(gt) + [v for v in pred if v not in gt]


def _found_by(gt_items: list[Segment], pred_items: list[Detection], tiou_threshold: float) -> np.ndarray:
    """(num_gt, num_pred) bool: the prediction finds the ground-truth segment under the MiGA rule. The definition
    `_found_by_class` computes in blocks (tests/evaluate/test_f1.py checks them equal)."""
    return tiou_above(same_class_tiou(gt_items, pred_items), tiou_threshold)


def _found_by_class(gt_items: list[Segment], pred_items: list[Detection],
                    tiou_threshold: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """`_found_by` of one video, one class at a time: (its ground-truth indices, its prediction indices, their block
    of `_found_by`); the pairs of different classes, never a hit, are not computed. The whole matrix was computed
    and then masked: a hard set of 166,000 detections of a video with 70 gestures made 93 MB arrays, seven classes'
    work for one."""
    gt_labels, pred_labels = label_ids(gt_items), label_ids(pred_items)
    gt_bounds, pred_bounds = bounds(gt_items), bounds(pred_items)
    for label in np.unique(gt_labels).tolist():
        gt_index, pred_index = np.flatnonzero(gt_labels == label), np.flatnonzero(pred_labels == label)
        if pred_index.size:
            hits = tiou_above(tiou_matrix(gt_bounds[gt_index], pred_bounds[pred_index]), tiou_threshold)
            yield gt_index, pred_index, hits


def _found(gt_items: list[Segment], pred_items: list[Detection], tiou_threshold: float) -> np.ndarray:
    """(num_gt,) bool: the ground-truth segment is found by some prediction (`_found_by(...).any(axis=1)`)."""
    found = np.zeros(len(gt_items), dtype=bool)
    for gt_index, _, hits in _found_by_class(gt_items, pred_items, tiou_threshold):
        found[gt_index] = hits.any(axis=1)
    return found


def _found_at(gt_items: list[Segment], pred_items: list[Detection], tiou_threshold: float) -> np.ndarray:
    """(num_gt,) the highest score of the predictions that find each ground-truth segment, -inf where none does
    (`np.where(_found_by(...), scores, -inf).max(axis=1)`)."""
    found_at = np.full(len(gt_items), -np.inf)
    pred_scores = scores(pred_items)
    for gt_index, pred_index, hits in _found_by_class(gt_items, pred_items, tiou_threshold):
        found_at[gt_index] = np.where(hits, pred_scores[pred_index][None, :], -np.inf).max(axis=1)
    return found_at


def f1_miga(
    gt: Mapping[str, list[Segment]],
    pred: Mapping[str, list[Detection]],
    tiou_threshold: float = F1_TIOU_THRESHOLD,
) -> F1Result:
    """F1 by the MiGA starter-kit rule (non-consuming matching, counts pooled over videos).

    A ground-truth segment is correct when any prediction of the same video and class has
    tIoU > `tiou_threshold`. Predictions of videos absent from `gt` count as false positives. The records and
    the threshold are checked first (`matching.check_records`, `matching.check_f1_tiou`).
    """
    check_metric_inputs(gt, pred, tiou_threshold)
    return _f1_miga(gt, pred, tiou_threshold)


def check_metric_inputs(gt: object, pred: object, tiou_threshold: object | None = None,
                        num_classes: int | None = None) -> None:
    """What every metric of this module checks of its arguments, once per call (`matching.check_records`)."""
    check_records(gt, "gt", scored=False, num_classes=num_classes)
    check_records(pred, "pred", scored=True, num_classes=num_classes)
    if tiou_threshold is not None:
        check_f1_tiou(tiou_threshold)


def _f1_miga(gt: Mapping[str, list[Segment]], pred: Mapping[str, list[Detection]],
             tiou_threshold: float) -> F1Result:
    """`f1_miga` of checked records (`mgrec.evaluate.scoring.score` checks its own once)."""
    correct = num_gt = num_pred = 0
    for video_id in _video_ids(gt, pred):
        gt_items, pred_items = gt.get(video_id, []), pred.get(video_id, [])
        num_gt += len(gt_items)
        num_pred += len(pred_items)
        if gt_items and pred_items:
            correct += int(_found(gt_items, pred_items, tiou_threshold).sum())
    return F1Result.from_counts(correct, num_gt, num_pred)


def f1_strict(
    gt: Mapping[str, list[Segment]],
    pred: Mapping[str, list[Detection]],
    tiou_threshold: float = F1_TIOU_THRESHOLD,
) -> StrictF1Result:
    """F1 with one-to-one matching, pooled over videos, plus counts per class and the matches.

    Within each video and class, predictions are taken in descending score order (ties keep their
    list order); each matches the unmatched ground-truth segment with the highest tIoU, provided
    that tIoU is strictly greater than `tiou_threshold` (the same strict rule as `f1_miga`).
    Predictions of videos absent from `gt` count as false positives. The records and the threshold are checked
    first, as `f1_miga`'s.
    """
    check_metric_inputs(gt, pred, tiou_threshold)
    return _f1_strict(gt, pred, tiou_threshold)


def _f1_strict(gt: Mapping[str, list[Segment]], pred: Mapping[str, list[Detection]],
               tiou_threshold: float) -> StrictF1Result:
    """`f1_strict` of checked records."""
    matches: list[Match] = []
    gt_per_class: dict[int, int] = {}
    pred_per_class: dict[int, int] = {}
    correct_per_class: dict[int, int] = {}
    for video_id in _video_ids(gt, pred):
        gt_items, pred_items = gt.get(video_id, []), pred.get(video_id, [])
        gt_labels, pred_labels = label_ids(gt_items), label_ids(pred_items)
        for label in gt_labels.tolist():
            gt_per_class[label] = gt_per_class.get(label, 0) + 1
        for label in pred_labels.tolist():
            pred_per_class[label] = pred_per_class.get(label, 0) + 1
        if not gt_items or not pred_items:
            continue
        gt_bounds, pred_bounds, pred_scores = bounds(gt_items), bounds(pred_items), scores(pred_items)
        for label in np.unique(pred_labels).tolist():
            gt_index = np.flatnonzero(gt_labels == label)
            if gt_index.size == 0:
                continue
            pred_index = np.flatnonzero(pred_labels == label)
            pred_index = pred_index[np.argsort(-pred_scores[pred_index], kind="stable")]
            overlaps = tiou_matrix(pred_bounds[pred_index], gt_bounds[gt_index])
            for row, column in greedy_match(overlaps, tiou_above(overlaps, tiou_threshold)):
                matches.append(
                    Match(video_id, int(pred_index[row]), int(gt_index[column]), float(overlaps[row, column]))
                )
                correct_per_class[label] = correct_per_class.get(label, 0) + 1
    per_class = {
        label: F1Result.from_counts(
            correct_per_class.get(label, 0), gt_per_class.get(label, 0), pred_per_class.get(label, 0)
        )
        for label in sorted(set(gt_per_class) | set(pred_per_class))
    }
    overall = F1Result.from_counts(len(matches), sum(gt_per_class.values()), sum(pred_per_class.values()))
    return StrictF1Result(overall=overall, per_class=per_class, matches=matches)


def _best_threshold(candidates: np.ndarray, correct: np.ndarray, num_pred: np.ndarray, num_gt: int) -> float:
    """The candidate with the highest F1; the highest such candidate on ties. `F1Result.from_counts`'s arithmetic on
    every candidate at once, operation for operation, so each F1 is the same float (`_best_threshold_reference`,
    one F1Result per candidate, is the definition; tests/evaluate/test_f1.py checks them equal): tuning on a ranked
    list of a million distinct scores made a million F1Results."""
    correct = np.asarray(correct, dtype=np.int64).astype(np.float64)
    num_pred = np.asarray(num_pred, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(num_pred > 0, correct / num_pred, 0.0)
    recall = correct / num_gt if num_gt else np.zeros_like(correct)
    f1_values = 2 * precision * recall / (precision + recall + F1_EPSILON)
    best = np.flatnonzero(f1_values == f1_values.max())
    return float(np.asarray(candidates)[best].max())


def _best_threshold_reference(candidates: np.ndarray, correct: np.ndarray, num_pred: np.ndarray,
                              num_gt: int) -> float:
    """`_best_threshold` as its definition: one `F1Result.from_counts` per candidate."""
    f1_values = np.array(
        [F1Result.from_counts(int(c), num_gt, int(n)).f1 for c, n in zip(correct, num_pred)]
    )
    best = np.flatnonzero(f1_values == f1_values.max())
    return float(candidates[best].max())


def tune_score_threshold(
    gt: Mapping[str, list[Segment]],
    ranked_pred: Mapping[str, list[Detection]],
    metric: str = "f1",
    tiou_threshold: float = F1_TIOU_THRESHOLD,
) -> float:
    """The score threshold whose hard set (score >= threshold) maximises F1 on this data.

    `metric` is "f1" (`f1_strict`) or "f1_miga". The candidates are all distinct prediction scores
    and the search is exact, from one matching pass:
    - f1_miga: a ground-truth segment is found at threshold t when its best-scoring matching
      prediction has score >= t;
    - f1: greedy matching in descending score order never looks at lower-scored predictions, so the
      hard set at t keeps exactly the matches of the full ranked list whose prediction scores >= t.
    Ties in F1 go to the higher threshold. Without predictions every threshold gives F1 = 0 and
    0.0 is returned.
    """
    if metric not in ("f1", "f1_miga"):
        raise InputError(f"score-threshold metric must be 'f1' or 'f1_miga', got {metric!r}")
    check_metric_inputs(gt, ranked_pred, tiou_threshold)
    return _tune_score_threshold(gt, ranked_pred, metric, tiou_threshold)


def _tune_score_threshold(gt: Mapping[str, list[Segment]], ranked_pred: Mapping[str, list[Detection]], metric: str,
                          tiou_threshold: float) -> float:
    """`tune_score_threshold` of checked records."""
    video_ids = _video_ids(gt, ranked_pred)
    all_scores = np.concatenate([scores(ranked_pred.get(v, [])) for v in video_ids] + [np.zeros(0)])
    if all_scores.size == 0:
        return 0.0
    num_gt = sum(len(gt.get(v, [])) for v in video_ids)
    if metric == "f1_miga":
        # Per ground-truth segment: the highest score among the predictions that find it.
        found_at = [np.full(0, -np.inf)]
        for video_id in video_ids:
            gt_items, pred_items = gt.get(video_id, []), ranked_pred.get(video_id, [])
            if gt_items and pred_items:
                found_at.append(_found_at(gt_items, pred_items, tiou_threshold))
        match_scores = np.concatenate(found_at)
    else:
        strict = _f1_strict(gt, ranked_pred, tiou_threshold)
        match_scores = np.array([ranked_pred[m.video_id][m.pred_index].score for m in strict.matches])
    candidates = np.unique(all_scores)
    # Counts of values >= each candidate, from sorted arrays.
    num_pred = all_scores.size - np.searchsorted(np.sort(all_scores), candidates, side="left")
    correct = match_scores.size - np.searchsorted(np.sort(match_scores), candidates, side="left")
    return _best_threshold(candidates, correct, num_pred, num_gt)


def tune_class_thresholds(
    gt: Mapping[str, list[Segment]],
    ranked_pred: Mapping[str, list[Detection]],
    num_classes: int,
    global_threshold: float,
    shrinkage: float,
    tiou_threshold: float = F1_TIOU_THRESHOLD,
    rounds: int = 3,
) -> list[float]:
    """One score threshold per class, for the strict F1 pooled over all classes, shrunk toward the
    global one.

    Strict matching is class by class, so the hard set at thresholds t_c keeps exactly the matches
    of the ranked list whose score >= the threshold of their class (as in `tune_score_threshold`).
    Coordinate ascent from `global_threshold`: each class in turn takes the candidate (one of its
    scores, or above all of them) that maximises the pooled F1 with the other classes' thresholds
    fixed (ties: the higher), for `rounds` passes. Then t_c = (n_c t_c + k t) / (n_c + k), with n_c
    the class's ground-truth instances here and k = `shrinkage`: a class seen a few times keeps
    nearly the global threshold. A class without predictions keeps the global threshold.
    """
    _check_shrinkage(shrinkage)
    check_metric_inputs(gt, ranked_pred, tiou_threshold, num_classes)
    return _tune_class_thresholds(gt, ranked_pred, num_classes, global_threshold, shrinkage, tiou_threshold, rounds)


def _check_shrinkage(shrinkage: object) -> None:
    """Refuse a shrinkage that is no finite number >= 0 (NaN made n + k > 0 false: every class silently got the
    global threshold)."""
    if not (is_finite_real(shrinkage) and shrinkage >= 0):
        raise InputError(f"threshold shrinkage: expected a finite number >= 0, got {shrinkage!r}")


def _tune_class_thresholds(gt: Mapping[str, list[Segment]], ranked_pred: Mapping[str, list[Detection]],
                           num_classes: int, global_threshold: float, shrinkage: float, tiou_threshold: float,
                           rounds: int) -> list[float]:
    """`tune_class_thresholds` of checked records and shrinkage."""
    strict = _f1_strict(gt, ranked_pred, tiou_threshold)
    video_ids = _video_ids(gt, ranked_pred)
    all_scores = [[] for _ in range(num_classes)]
    for video_id in video_ids:
        for d in ranked_pred.get(video_id, []):
            all_scores[d.label_id].append(d.score)
    match_scores = [[] for _ in range(num_classes)]
    for m in strict.matches:
        d = ranked_pred[m.video_id][m.pred_index]
        match_scores[d.label_id].append(d.score)
    pred_sorted = [np.sort(np.array(s, dtype=np.float64)) for s in all_scores]
    match_sorted = [np.sort(np.array(s, dtype=np.float64)) for s in match_scores]
    num_gt = [0] * num_classes
    for video_id in video_ids:
        for segment in gt.get(video_id, []):
            num_gt[segment.label_id] += 1

    def at_or_above(values: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
        return values.size - np.searchsorted(values, threshold, side="left")

    thresholds = [float(global_threshold)] * num_classes
    total_gt = sum(num_gt)
    for _ in range(rounds):
        for c in range(num_classes):
            if pred_sorted[c].size == 0:
                continue
            correct = [int(at_or_above(match_sorted[k], thresholds[k])) for k in range(num_classes)]
            predicted = [int(at_or_above(pred_sorted[k], thresholds[k])) for k in range(num_classes)]
            correct_rest, predicted_rest = sum(correct) - correct[c], sum(predicted) - predicted[c]
            # a bar just above the class's top score (none kept); above the largest float there is none
            with np.errstate(over="ignore"):
                above = np.nextafter(pred_sorted[c][-1], np.inf)
            candidates = np.unique(pred_sorted[c]) if np.isinf(above) else np.append(np.unique(pred_sorted[c]), above)
            thresholds[c] = _best_threshold(candidates, correct_rest + at_or_above(match_sorted[c], candidates),
                                            predicted_rest + at_or_above(pred_sorted[c], candidates), total_gt)
    # (n t_c + k t) / (n + k), written so that k = 0 gives t_c exactly
    return [t + (global_threshold - t) * (shrinkage / (n + shrinkage)) if n + shrinkage > 0 else float(global_threshold)
            for n, t in zip(num_gt, thresholds)]


def tune_thresholds(
    gt: Mapping[str, list[Segment]],
    ranked_pred: Mapping[str, list[Detection]],
    num_classes: int,
    post: PostprocessConfig,
) -> tuple[float, list[float] | None]:
    """The hard set's bars tuned on this data, as `post.thresholds` asks: the global score threshold
    (`tune_score_threshold`) and the per-class ones. "per_class" tunes those too (`tune_class_thresholds`,
    shrunk toward the global one by `post.threshold_shrinkage`); "global" keeps `post.class_thresholds`, which
    are None unless set by hand (then they, not the tuned global threshold, cut the hard set)."""
    if post.thresholds not in ("global", "per_class"):
        raise InputError(f"postprocess.thresholds must be 'global' or 'per_class', got {post.thresholds!r}")
    check_metric_inputs(gt, ranked_pred, F1_TIOU_THRESHOLD, num_classes if post.thresholds == "per_class" else None)
    threshold = _tune_score_threshold(gt, ranked_pred, "f1", F1_TIOU_THRESHOLD)  # the records checked once
    if post.thresholds == "global":
        return threshold, post.class_thresholds
    shrinkage = post.threshold_shrinkage
    _check_shrinkage(shrinkage)
    return threshold, _tune_class_thresholds(gt, ranked_pred, num_classes, threshold, shrinkage, F1_TIOU_THRESHOLD, 3)
