"""tIoU, the two threshold comparisons and greedy one-to-one matching: hand cases and brute force."""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgrec.errors import InputError
from mgrec.evaluate.average_precision import average_precision
from mgrec.evaluate.f1 import f1_miga, f1_strict, tune_score_threshold
from mgrec.evaluate.matching import (
    greedy_match,
    same_class_tiou,
    tiou,
    tiou_above,
    tiou_at_least,
    tiou_matrix,
)
from mgrec.records import Detection, Segment


def test_tiou_values():
    assert tiou(0, 10, 5, 15) == pytest.approx(5 / 15)
    assert tiou(0, 10, 2, 4) == pytest.approx(0.2)  # contained
    assert tiou(0, 10, 10, 20) == 0.0  # touching
    assert tiou(0, 10, 12, 20) == 0.0  # apart
    assert tiou(3, 3, 3, 3) == 0.0  # empty


def exact_tiou(a, b):
    intersection = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - intersection
    return Fraction(intersection, union) if union else Fraction(0)


def test_tiou_matrix_equals_exact_fractions():
    rng = np.random.default_rng(0)
    a = np.sort(rng.integers(0, 20, size=(7, 2)), axis=1)
    b = np.sort(rng.integers(0, 20, size=(5, 2)), axis=1)
    expected = [[float(exact_tiou(x, y)) for y in b.tolist()] for x in a.tolist()]
    np.testing.assert_allclose(tiou_matrix(a, b), expected, rtol=0, atol=1e-12)
    assert tiou_matrix(a[:1], b).shape == (1, 5)
    assert tiou_matrix(np.zeros((0, 2)), b).shape == (0, 5)


def test_comparisons_forgive_the_rounding_of_seconds_only():
    # Frames [2, 12] and [2, 5] at 28 fps: exactly 0.3 in frames, 0.30000000000000004 in seconds.
    rounded_up = tiou(2 / 28, 12 / 28, 2 / 28, 5 / 28)
    assert rounded_up > 0.3 and not tiou_above(rounded_up, 0.3)
    assert tiou_at_least(np.nextafter(0.5, 0.0), 0.5) and not tiou_above(0.5, 0.5)
    assert tiou_above(0.3001, 0.3) and not tiou_at_least(0.4999, 0.5)


def test_segments_that_do_not_overlap_never_match_at_the_smallest_thresholds():
    """`--tious 1e-9` took 0 >= 1e-9 - tolerance: every same-class prediction apart from its gesture a hit (mAP 69
    became 94)."""
    assert not tiou_at_least(0.0, 1e-9).any() and not tiou_at_least(0.0, 1e-300).any()
    assert tiou_at_least(1e-12, 1e-12) and not tiou_above(0.0, 1e-300)


def test_same_class_tiou_never_matches_across_classes():
    a = [Segment("v", 0.0, 10.0, 0, "a"), Segment("v", 0.0, 10.0, 1, "b")]
    b = [Detection("v", 0.0, 10.0, 1, "b", 0.9)]
    overlaps = same_class_tiou(a, b)
    assert overlaps[1, 0] == 1.0 and overlaps[0, 0] == -np.inf
    assert not tiou_at_least(overlaps[0, 0], 0.0) and not tiou_above(overlaps[0, 0], -1.0)
    assert same_class_tiou([], b).shape == (0, 1)


def test_rows_in_order_each_take_their_best_free_column():
    overlaps = np.array([[0.6, 0.9], [0.2, 0.95]])
    # Row 0 goes first and takes column 1 though row 1 overlaps it more; row 1 has nothing left above 0.3.
    assert greedy_match(overlaps, overlaps > 0.3) == [(0, 1)]
    # The pair that overlaps most first: (1, 1), then row 0 takes column 0.
    assert greedy_match(overlaps, overlaps > 0.3, best_pair_first=True) == [(1, 1), (0, 0)]


def test_ties_go_to_the_lower_column_then_the_lower_row():
    overlaps = np.full((2, 2), 0.5)
    assert greedy_match(overlaps, overlaps > 0.3) == [(0, 0), (1, 1)]
    assert greedy_match(overlaps, overlaps > 0.3, best_pair_first=True) == [(0, 0), (1, 1)]
    assert greedy_match(np.zeros((0, 3)), np.zeros((0, 3), dtype=bool)) == []


def brute_rows_in_order(overlaps, hits):
    taken, pairs = set(), []
    for row in range(overlaps.shape[0]):
        free = [c for c in range(overlaps.shape[1]) if hits[row, c] and c not in taken]
        if free:
            column = max(free, key=lambda c: (overlaps[row, c], -c))
            taken.add(column)
            pairs.append((row, column))
    return pairs


def brute_best_pair_first(overlaps, hits):
    pairs = []
    candidates = [(r, c) for r, c in itertools.product(*map(range, overlaps.shape)) if hits[r, c]]
    while candidates:
        row, column = min(candidates, key=lambda rc: (-overlaps[rc], rc[0], rc[1]))
        pairs.append((row, column))
        candidates = [(r, c) for r, c in candidates if r != row and c != column]
    return pairs


@settings(max_examples=200, deadline=None)
@given(
    shape=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    data=st.data(),
    threshold=st.sampled_from([0.0, 0.3, 0.5]),
)
def test_greedy_match_equals_the_plain_loops(shape, data, threshold):
    values = st.sampled_from([0.0, 0.25, 0.3, 0.5, 0.75, 1.0])  # small grids: ties are common
    overlaps = np.array(data.draw(st.lists(values, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])))
    overlaps = overlaps.reshape(shape)
    hits = tiou_at_least(overlaps, threshold)
    assert greedy_match(overlaps, hits) == brute_rows_in_order(overlaps, hits)
    assert greedy_match(overlaps, hits, best_pair_first=True) == brute_best_pair_first(overlaps, hits)


def test_bounds_a_column_at_a_time_are_the_array_of_pairs():
    """`bounds` builds its (N, 2) array a column at a time (an array of a million (start, end) tuples took 4 times
    as long); times of every type the scores take (float, int, numpy's, Fraction) give the same array, empty too."""
    import random

    from mgrec.evaluate.matching import bounds
    from mgrec.records import _bounds_reference

    rng = random.Random(0)
    kinds = [float, int, np.float32, np.float64, lambda v: Fraction(v).limit_denominator(1000)]
    for size in (0, 1, 2, 17):
        items = [Segment("v", rng.choice(kinds)(rng.uniform(0, 9)), rng.choice(kinds)(rng.uniform(10, 20)), 0, "a")
                 for _ in range(size)]
        expected = _bounds_reference(items)
        found = bounds(items)
        assert found.shape == expected.shape == (size, 2) and found.dtype == expected.dtype
        assert found.tobytes() == expected.tobytes()


# ------------------------------------------------------------------------------- inputs given in Python


@pytest.mark.parametrize("a, expected", [
    (np.array([1.0, 2.0, 3.0, 4.0]), r"a: expected an \(N, 2\) array .* got shape \(4,\)"),  # was 2 intervals
    (np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), r"a: expected an \(N, 2\) array .* got shape \(2, 3\)"),
    (np.array([[0.0, 1.0], [2.0, 1.0]]), r"a row 1: expected finite times with start <= end, got \[2.0, 1.0\]"),
    (np.array([[np.nan, 1.0]]), r"a row 0: expected finite times"),
    ([("x", 1.0)], r"a: expected \(start, end\) rows of numbers"),
])
def test_tiou_matrix_refuses_what_is_no_interval_array(a, expected):
    """A (2N,) array was read as N intervals and an (N, 3) one cut into rows of two; a start after its end and a NaN
    gave tIoU 0: each a number, not an error."""
    with pytest.raises(InputError, match=expected):
        tiou_matrix(a, np.array([[1.0, 2.0]]))


def test_tiou_matrix_takes_a_tensor_and_an_empty_list():
    torch = pytest.importorskip("torch")
    assert tiou_matrix(torch.tensor([[1.0, 2.0]]), np.array([[1.0, 2.0]])).tolist() == [[1.0]]
    assert tiou_matrix([], np.array([[1.0, 2.0]])).shape == (0, 1)


GT = {"v": [Segment("v", 1.0, 2.0, 0, "a"), Segment("v", 3.0, 4.0, 1, "b")]}


def _det(start=1.0, end=2.0, label_id=0, score=0.9):
    return Detection("v", start, end, label_id, "a", score)


@pytest.mark.parametrize("pred, expected", [
    ({"v": [_det(2.0, 1.0)]}, r"pred \['v'\] #0: expected finite times with start <= end, got \[2.0, 1.0\]"),
    ({"v": [_det(float("nan"), 2.0)]}, r"pred \['v'\] #0: expected finite times"),
    ({"v": [_det(), _det(score=float("nan"))]}, r"pred \['v'\] #1: expected a finite score, got nan"),
    ({"v": [_det(score=float("inf"))]}, r"pred \['v'\] #0: expected a finite score, got inf"),
    ({"v": [_det(label_id=-1)]}, r"pred \['v'\] #0: expected a label_id >= 0"),
    ({"v": [_det(label_id=1.5)]}, r"pred \['v'\] #0: expected an integer label_id, got 1.5"),  # was class 1
    ({"v": [{"segment": [1, 2], "label_id": 0, "score": 0.9}]}, r"pred \['v'\] #0: expected a Detection"),
    ([_det()], r"pred: expected a mapping \{video_id: \[Detection, \.\.\.\]\}, got list"),
    ({"v": _det()}, r"pred \['v'\]: expected a list of Detection, got Detection"),
])
@pytest.mark.parametrize("metric", ["f1_strict", "f1_miga", "average_precision", "tune_score_threshold"])
def test_metrics_refuse_hostile_records(metric, pred, expected):
    """Each was a wrong number without a word (a start after its end a miss, a NaN score ranked first in AP and
    nowhere in F1, label -1 a class of its own) or an AttributeError deep inside."""
    call = {"f1_strict": lambda: f1_strict(GT, pred), "f1_miga": lambda: f1_miga(GT, pred),
            "average_precision": lambda: average_precision(GT, pred, 2),
            "tune_score_threshold": lambda: tune_score_threshold(GT, pred)}[metric]
    with pytest.raises(InputError, match=expected):
        call()


def test_average_precision_checks_labels_against_the_classes():
    with pytest.raises(InputError, match=r"pred \['v'\] #0: expected a label_id >= 0 and < 2 \(the number"):
        average_precision(GT, {"v": [_det(label_id=2)]}, 2)
    with pytest.raises(InputError, match=r"gt \['v'\] #1: expected a label_id >= 0 and < 1"):
        average_precision(GT, {}, 1)  # GT has class 1
    with pytest.raises(InputError, match="num_classes: expected an integer >= 1, got 0"):
        average_precision(GT, {}, 0)


@pytest.mark.parametrize("tious", [[1.5], [], [0], [float("nan")]])
def test_average_precision_refuses_tious_outside_0_1(tious):
    """[1.5] gave an average mAP of 0, [] NaN, [0] counted every touching pair."""
    with pytest.raises(InputError, match=r"tIoU thresholds: expected one or more numbers in \(0, 1\]"):
        average_precision(GT, {"v": [_det()]}, 2, tious)


@pytest.mark.parametrize("threshold", [1.5, 1.0, -1, float("nan"), "0.3", True])
@pytest.mark.parametrize("metric", [f1_strict, f1_miga])
def test_f1_refuses_a_tiou_threshold_outside_0_1(metric, threshold):
    """1.5 and NaN gave F1 0, -1 matched segments that do not overlap."""
    with pytest.raises(InputError, match=r"tiou_threshold: expected a number in \[0, 1\)"):
        metric(GT, {"v": [_det()]}, threshold)


def test_metrics_take_what_is_well_formed():
    """Empty predictions, numpy and torch scalars, integral floats, and videos absent from either side still score."""
    torch = pytest.importorskip("torch")
    assert f1_strict(GT, {}).overall.f1 == 0.0
    assert f1_strict(GT, {"w": [Detection("w", 1.0, 2.0, 0, "a", 0.9)]}).overall.num_pred == 1
    scalar = Detection("v", np.float32(1.0), torch.tensor(2.0), np.int64(0), "a", torch.tensor(0.9))
    assert f1_strict(GT, {"v": [scalar]}).overall.correct == 1
    assert average_precision(GT, {"v": [_det(label_id=0.0)]}, 2).mAP[0.3] == 0.5
    from mgrec.evaluate.matching import check_records  # here: the module collects without it
    check_records({"v": [], "w": ()}, "pred", scored=True)
