"""Category-frequency label augmentation (paper Eq. 1): hand-computed factors and replication."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mgrec.data.augment import class_histogram, repeat_factor, repeat_factors
from mgrec.errors import InputError
from mgrec.records import Segment


@pytest.mark.parametrize(
    "count, alpha, expected",
    [
        (9, 100, 5),  # log2(11.1) = 3.47 -> 4, + 1
        (50, 100, 2),  # log2(2) = 1 exactly -> 1, + 1
        (25, 100, 3),  # log2(4) = 2 exactly -> 2, + 1 (not 3 + 1)
        (51, 100, 2),  # log2(1.96) = 0.97 -> 1, + 1
        (99, 100, 2),
        (1, 100, 8),  # log2(100) = 6.64 -> 7, + 1
        (1, 8, 4),  # log2(8) = 3 exactly
        (125, 1000, 4),  # log2(8) = 3 exactly
        (100, 100, 1),  # not rare
        (150, 100, 1),
        (0, 100, 1),  # absent class: nothing to replicate
    ],
)
def test_repeat_factor_hand_computed(count, alpha, expected):
    assert repeat_factor(count, alpha) == expected


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_repeat_factor_is_the_smallest_sufficient_doubling(count, alpha):
    factor = repeat_factor(count, alpha)
    if count >= alpha:
        assert factor == 1
    else:
        doublings = factor - 1  # = ceil(log2(alpha / count))
        assert doublings >= 1
        assert count * 2**doublings >= alpha > count * 2 ** (doublings - 1)


def test_repeat_factor_rejects_bad_arguments():
    with pytest.raises(ValueError):
        repeat_factor(3, 0)
    with pytest.raises(ValueError):
        repeat_factor(-1, 10)


def test_repeat_factors_from_list_and_dict():
    assert repeat_factors([9, 50, 25, 100, 150, 0], 100) == [5, 2, 3, 1, 1, 1]
    assert repeat_factors({0: 9, 3: 50}, 100) == [5, 1, 1, 2]


def _segment(video_id, label_id, start):
    return Segment(video_id, start, start + 1.0, label_id, f"c{label_id}", source=f"{video_id}:{start}")


def test_class_histogram_counts_every_video():
    data = {
        "a": [_segment("a", 0, 0), _segment("a", 1, 1), _segment("a", 0, 2)],
        "b": [_segment("b", 2, 0), _segment("b", 0, 1), _segment("b", 2, 2)],
        "empty": [],
    }
    assert class_histogram(data, 4) == [3, 1, 2, 0]


def test_class_histogram_rejects_unknown_label():
    with pytest.raises(InputError, match="a:5.0: label_id 7 is outside 0..3"):
        class_histogram({"a": [_segment("a", 7, 5.0)]}, 4)
