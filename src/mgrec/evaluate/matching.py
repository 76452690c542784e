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

from collections.abc import Sequence

import numpy as np

from mgrec.errors import InputError
from mgrec.files import brief

# bounds, scores and check_records live with the records, where mgrec.postprocess may use them too; the metrics
# import them from here as before
from mgrec.records import Detection, Segment, bounds, check_records, scores  # noqa: F401

TIOU_TOLERANCE = 1e-9


def label_ids(items: Sequence[Segment | Detection]) -> np.ndarray:
    return np.array([item.label_id for item in items], dtype=np.int64)


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
