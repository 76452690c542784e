"""Temporal IoU and greedy one-to-one matching: the primitives every score in mgrec is built on.

F1 (both rules), ActivityNet AP, the confusion matrix, the DETAD error analysis and the online
detector's re-detection rule all compare segments through `tiou_matrix` and decide "does this
pair overlap enough?" through `tiou_above` or `tiou_at_least`, and the one-to-one rules pair
segments with `greedy_match`.

Each metric keeps its own comparison: the MiGA F1 counts a match when tIoU > t (the organisers'
starter kit), ActivityNet AP and DETAD when tIoU >= t. Both allow the same `TIOU_TOLERANCE`:
times in seconds computed as frame / fps carry rounding errors, so a tIoU that is exactly the
threshold in frames can come out a hair above it (frames [2, 12] and [2, 5] at 28 fps give
0.30000000000000004, which "> 0.3" would count) or a hair below it. The tolerance is far below
the smallest gap between distinct tIoU values of integer frame spans, so it only ever undoes
such rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mgrec.errors import InputError
from mgrec.files import brief
from mgrec.records import Detection, Segment

TIOU_TOLERANCE = 1e-9


def bounds(items: Sequence[Segment | Detection]) -> np.ndarray:
    """(N, 2) array of (start, end) seconds: `_bounds_reference`'s array, a column at a time (an array of a million
    (start, end) tuples took 4 times as long; every score of a ranked list calls it for each video)."""
    count = len(items)
    result = np.empty((count, 2), dtype=np.float64)
    result[:, 0] = np.fromiter((item.start for item in items), dtype=np.float64, count=count)
    result[:, 1] = np.fromiter((item.end for item in items), dtype=np.float64, count=count)
    return result


def _bounds_reference(items: Sequence[Segment | Detection]) -> np.ndarray:
    """`bounds` as its definition (tests/evaluate/test_matching.py checks them equal)."""
    return np.array([(item.start, item.end) for item in items], dtype=np.float64).reshape(-1, 2)


def label_ids(items: Sequence[Segment | Detection]) -> np.ndarray:
    return np.array([item.label_id for item in items], dtype=np.int64)


def scores(detections: Sequence[Detection]) -> np.ndarray:
    return np.array([d.score for d in detections], dtype=np.float64)


def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise temporal IoU of intervals `a` (N, 2) and `b` (M, 2) as (start, end) rows -> (N, M).

    0 where two intervals do not overlap or both are empty. One-vs-many is the case N = 1.
    """
    a, b = intervals(a, "a"), intervals(b, "b")
    intersection = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None
    )
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - intersection
    safe_union = np.where(union > 0, union, 1.0)
    return np.where(union > 0, intersection / safe_union, 0.0)


def intervals(value: object, name: str) -> np.ndarray:
    """`value` as an (N, 2) float64 array of (start, end) rows, or an InputError naming `name` and the row: a (2N,)
    array was paired up as N intervals, an (N, 3) one cut into rows of two, and a start after its end or a NaN gave a
    tIoU of 0, each without a word. Empty input of any shape is no interval. A torch tensor is read from its
    device."""
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected (start, end) rows of numbers, an (N, 2) array, got "
                         f"{brief(value)}") from None
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputError(f"{name}: expected an (N, 2) array of (start, end) rows, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1) | (array[:, 0] > array[:, 1]))
    if bad.size:
        row = int(bad[0])
        raise InputError(f"{name} row {row}: expected finite times with start <= end, got "
                         f"[{float(array[row, 0])!r}, {float(array[row, 1])!r}]")
    return array


def check_records(per_video: object, name: str, scored: bool, num_classes: int | None = None) -> None:
    """The records a metric is given in Python, checked once per call, video by video and vectorised: a mapping
    {video_id: list of Segment (`scored` False) or Detection}, each with finite times, start <= end, an integer
    label_id >= 0 (and < `num_classes` where the metric knows the class count) and, for a detection, a finite score.
    Before, a start after its end or a NaN time scored as a miss, a NaN score ranked nowhere in F1 and first in AP, a
    negative label_id was a class of its own, a float one was cut to an int, and a list of dicts was an
    AttributeError deep inside: each a number or a traceback, not what was wrong. `name` names the argument."""
    kind = "Detection" if scored else "Segment"
    if not isinstance(per_video, Mapping):
        raise InputError(f"{name}: expected a mapping {{video_id: [{kind}, ...]}}, got {type(per_video).__name__}")
    for video_id, items in per_video.items():
        place = f"{name} [{brief(video_id)}]"
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            raise InputError(f"{place}: expected a list of {kind}, got {type(items).__name__}")
        if not items:
            continue
        fields = ("start", "end", "label_id", "score") if scored else ("start", "end", "label_id")
        try:
            times = bounds(items)
            labels = np.array([item.label_id for item in items])
            values = scores(items) if scored else np.zeros(len(items))
        except AttributeError:
            index = next(i for i, item in enumerate(items) if not all(hasattr(item, key) for key in fields))
            raise InputError(f"{place} #{index}: expected a {kind} (mgrec.records; load_predictions and "
                             f"load_annotations read files into them), got {brief(items[index])}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{place}: expected numbers for start, end, label_id{' and score' if scored else ''} "
                             f"({exc})") from None
        bad = np.flatnonzero(~np.isfinite(times).all(axis=1) | (times[:, 0] > times[:, 1]))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected finite times with start <= end, got "
                             f"[{items[index].start!r}, {items[index].end!r}]")
        if labels.dtype.kind not in "iu":  # 1.5 was cut to class 1, True was class 1
            index = next((i for i, item in enumerate(items) if not _integral(item.label_id)), None)
            if index is not None:
                raise InputError(f"{place} #{index}: expected an integer label_id, got {brief(items[index].label_id)}")
            labels = np.array([int(item.label_id) for item in items], dtype=np.int64)  # e.g. torch's 0-d tensors
        limit = "" if num_classes is None else f" and < {num_classes} (the number of classes)"
        bad = np.flatnonzero((labels < 0) | (labels >= (np.iinfo(np.int64).max if num_classes is None
                                                         else num_classes)))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected a label_id >= 0{limit}, got {items[index].label_id!r}")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected a finite score, got {items[index].score!r}")


def _integral(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        return float(value).is_integer()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def check_f1_tiou(threshold: object) -> None:
    """The F1 rules' tIoU threshold: a number in [0, 1). They count tIoU > threshold, so 1 (or more) matched nothing
    and a negative one matched segments that do not overlap; NaN matched nothing, each an F1 of 0 without a word."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not 0 <= threshold < 1:
        raise InputError(f"tiou_threshold: expected a number in [0, 1) (F1 counts tIoU > it), got {brief(threshold)}")


def tiou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    """Temporal IoU of one pair of intervals (`tiou_matrix` of one row and one column)."""
    return float(tiou_matrix([(a_start, a_end)], [(b_start, b_end)])[0, 0])


def same_class_tiou(a: Sequence[Segment | Detection], b: Sequence[Segment | Detection]) -> np.ndarray:
    """(len(a), len(b)) tIoU where the classes agree and -inf where they differ.

    -inf is below every threshold under both comparisons: a pair of different classes never matches.
    """
    overlaps = tiou_matrix(bounds(a), bounds(b))
    same_class = label_ids(a)[:, None] == label_ids(b)[None, :]
    return np.where(same_class, overlaps, -np.inf)


def tiou_above(tious: np.ndarray, threshold: float) -> np.ndarray:
    """tIoU > threshold, up to rounding: the MiGA F1's comparison."""
    return np.asarray(tious) > threshold + TIOU_TOLERANCE


def tiou_at_least(tious: np.ndarray, threshold: float) -> np.ndarray:
    """tIoU >= threshold, up to rounding: ActivityNet's (and DETAD's) comparison. Segments that do not overlap
    never match: a threshold within the tolerance of 0 (`--tious 1e-9`) made every same-class pair a hit."""
    tious = np.asarray(tious)
    return (tious >= threshold - TIOU_TOLERANCE) & (tious > 0)


def greedy_match(overlaps: np.ndarray, hits: np.ndarray, best_pair_first: bool = False) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of rows to columns; returns the matched (row, column) pairs.

    `overlaps` (R, C) holds the tIoU of every pair and `hits` (R, C, bool) says which pairs may
    match at all (the metric's comparison with its threshold). The candidate pairs are visited in
    priority order and a pair is matched when neither its row nor its column is matched yet:

    - by default, rows in their given order (the metrics pass predictions by descending score),
      each row's candidates by descending tIoU: every row in turn takes the free column it
      overlaps most;
    - with `best_pair_first`, all candidates by descending tIoU, then row: the pair that overlaps
      most is matched first (the online detector's re-detection rule, where neither side is ranked).

    Equal tIoUs go to the lower column, then (with `best_pair_first`) the lower row. Pairs come out
    in the order they were matched.
    """
    rows, columns = np.nonzero(hits)
    tious = np.asarray(overlaps)[rows, columns]
    if best_pair_first:
        order = np.lexsort((columns, rows, -tious))
    else:
        order = np.lexsort((columns, -tious, rows))
    matched_rows: set[int] = set()
    matched_columns: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for row, column in zip(rows[order].tolist(), columns[order].tolist()):
        if row not in matched_rows and column not in matched_columns:
            matched_rows.add(row)
            matched_columns.add(column)
            pairs.append((row, column))
    return pairs
