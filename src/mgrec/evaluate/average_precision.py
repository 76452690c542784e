"""Detection average precision per class at several tIoU thresholds (ActivityNet style).

For each class, all its predictions are ranked by descending score (ties keep the order of the
videos in the prediction dict, then the list order). At each tIoU threshold, each prediction in
turn takes the unmatched ground-truth segment of the same class and video with the highest tIoU,
if that tIoU >= threshold (ActivityNet uses >=, unlike the MiGA F1's >; both through
`mgrec.evaluate.matching`); each ground-truth segment is matched at most once per threshold. AP is
the area under the interpolated precision-recall curve (`interpolated_ap`: precision replaced by
its running maximum from the right, as in VOC 2011 / ActivityNet).

mAP at a threshold is the mean AP over the classes that have ground truth: a class with ground
truth but no predictions has AP 0, and a class without ground truth is left out (NaN in `ap`).
Duplicate ground-truth segments are scored as given: finding and reporting them is the data
checker's job, not the metric's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mgrec.errors import InputError
from mgrec.evaluate.matching import (
    bounds,
    check_records,
    greedy_match,
    label_ids,
    scores,
    tiou_at_least,
    tiou_matrix,
)
from mgrec.files import listed
from mgrec.records import Detection, Segment
from mgrec.smg_csv import decimal_number

DEFAULT_TIOU_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
# The tIoU thresholds each benchmark averages its mAP over (THUMOS14's are mgrec's default).
TIOU_PRESETS = {
    "thumos": DEFAULT_TIOU_THRESHOLDS,
    "activitynet": tuple(round(0.5 + 0.05 * i, 2) for i in range(10)),  # 0.5:0.05:0.95
    "epic": (0.1, 0.2, 0.3, 0.4, 0.5),
}


def parse_tious(text: str) -> tuple[float, ...]:
    """`--tious`: a preset name (`TIOU_PRESETS`) or comma-separated thresholds in (0, 1], e.g. 0.3,0.5,0.7;
    returned sorted, without repeats."""
    if text in TIOU_PRESETS:
        return TIOU_PRESETS[text]
    try:
        values = [decimal_number(part) for part in text.split(",")]  # ASCII digits: not 0_5, not ٠.٥
    except ValueError:
        values = []
    if not _tious_problem(values):
        _refuse_one_name_for_two(values, f"--tious {text}: ")
        return tuple(sorted(set(values)))
    raise InputError(f"--tious {text}: expected {', '.join(TIOU_PRESETS)}, or tIoU thresholds in (0, 1] separated by "
                     "commas (0.3,0.5,0.7)")


def tiou_key(threshold: float) -> str:
    """The name of a tIoU threshold's mAP in a scores dict (`mAP`: {"0.3": ..., "0.5": ...})."""
    return f"{threshold:g}"


def _refuse_one_name_for_two(values: Iterable[float], prefix: str) -> None:
    """Two different thresholds that `tiou_key` names alike (0.3 and 0.3000001): the scores' `mAP` kept one of them,
    while average mAP was the mean over both, a threshold the table and the JSON did not show."""
    named: dict[str, float] = {}
    for value in sorted(set(values)):
        other = named.setdefault(tiou_key(value), value)
        if other != value:
            raise InputError(f"{prefix}tIoU thresholds {other!r} and {value!r} are one threshold in the scores, which "
                             f"name each by 6 significant digits ({tiou_key(value)!r}); give thresholds that differ "
                             "there")


def _tious_problem(values: Sequence[float]) -> bool:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return True
    values = list(values)
    return not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1
                                 for v in values)  # NaN fails too


def check_tious(values: Sequence[float]) -> None:
    """tIoU thresholds given in Python: at least one, each in (0, 1] (an empty list was an IndexError, 1.5 an
    average mAP of 0)."""
    if _tious_problem(values):
        raise InputError(f"tIoU thresholds: expected one or more numbers in (0, 1], got {values!r}")
    _refuse_one_name_for_two(values, "")


@dataclass(frozen=True)
class APResult:
    thresholds: tuple[float, ...]
    ap: np.ndarray  # (num_thresholds, num_classes); NaN for classes without ground truth
    mAP: dict[float, float]  # threshold -> mean AP over classes with ground truth
    average_mAP: float  # mean of mAP over the thresholds


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the PR curve after replacing precision by its maximum at any higher recall.

    `precision` and `recall` are the values after each ranked prediction (recall non-decreasing).
    """
    padded_precision = np.concatenate([[0.0], precision, [0.0]])
    padded_recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(padded_precision[::-1])[::-1]
    return float(np.sum(np.diff(padded_recall) * envelope[1:]))


def _true_positives(overlaps: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(num_thresholds, num_pred) bool: matched at each threshold, each threshold on its own.

    `overlaps` is (num_pred, num_gt) with predictions in ranked order.
    """
    is_tp = np.zeros((thresholds.size, overlaps.shape[0]), dtype=bool)
    for t, threshold in enumerate(thresholds):
        for row, _ in greedy_match(overlaps, tiou_at_least(overlaps, threshold)):
            is_tp[t, row] = True
    return is_tp


def average_precision(
    gt: Mapping[str, Sequence[Segment]],
    pred: Mapping[str, Sequence[Detection]],
    num_classes: int,
    tiou_thresholds: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
) -> APResult:
    """AP per class and threshold, mAP per threshold and its mean; label ids in [0, num_classes).

    Predictions of videos absent from `gt` are false positives. Matching is independent per
    video, so it runs per video and class; the ranking that builds the PR curve is per class. The records
    (`matching.check_records`), the class count and the thresholds (`check_tious`) are checked first.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise InputError(f"num_classes: expected an integer >= 1, got {num_classes!r}")
    check_records(gt, "gt", scored=False, num_classes=num_classes)
    check_records(pred, "pred", scored=True, num_classes=num_classes)
    tiou_thresholds = listed(tiou_thresholds, "tiou_thresholds", "one or more numbers in (0, 1]")
    check_tious(tiou_thresholds)
    return _average_precision(gt, pred, int(num_classes), tiou_thresholds)


def _average_precision(gt: Mapping[str, Sequence[Segment]], pred: Mapping[str, Sequence[Detection]],
                       num_classes: int, tiou_thresholds: Sequence[float]) -> APResult:
    """`average_precision` of checked records and thresholds (`mgrec.evaluate.scoring.score` checks its own)."""
    thresholds = np.asarray(tiou_thresholds, dtype=np.float64)
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for video_id, items in gt.items():
        labels = label_ids(items)
        _check_label_range(labels, num_classes, video_id)
        num_gt += np.bincount(labels, minlength=num_classes)

    class_scores: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    class_tp: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    for video_id, items in pred.items():
        if not items:
            continue
        pred_labels, pred_scores, pred_bounds = label_ids(items), scores(items), bounds(items)
        _check_label_range(pred_labels, num_classes, video_id)
        gt_items = gt.get(video_id, [])
        gt_labels, gt_bounds = label_ids(gt_items), bounds(gt_items)
        for label in np.unique(pred_labels).tolist():
            index = np.flatnonzero(pred_labels == label)
            index = index[np.argsort(-pred_scores[index], kind="stable")]
            overlaps = tiou_matrix(pred_bounds[index], gt_bounds[gt_labels == label])
            class_scores[label].append(pred_scores[index])
            class_tp[label].append(_true_positives(overlaps, thresholds))

    ap = np.full((thresholds.size, num_classes), np.nan)
    for label in np.flatnonzero(num_gt > 0).tolist():
        if not class_scores[label]:
            ap[:, label] = 0.0
            continue
        ranked = np.argsort(-np.concatenate(class_scores[label]), kind="stable")
        is_tp = np.concatenate(class_tp[label], axis=1)[:, ranked]
        tp = np.cumsum(is_tp, axis=1)
        fp = np.cumsum(~is_tp, axis=1)
        precision = tp / (tp + fp)
        recall = tp / num_gt[label]
        for t in range(thresholds.size):
            ap[t, label] = interpolated_ap(precision[t], recall[t])

    has_gt = num_gt > 0
    mean_ap = {
        float(t): float(ap[i, has_gt].mean()) if has_gt.any() else float("nan") for i, t in enumerate(thresholds)
    }
    average = float(np.mean(list(mean_ap.values()))) if mean_ap else float("nan")
    return APResult(thresholds=tuple(float(t) for t in thresholds), ap=ap, mAP=mean_ap, average_mAP=average)


def _check_label_range(labels: np.ndarray, num_classes: int, video_id: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"video {video_id}: label ids must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )
