"""Point assignment: hand cases from the ActionFormer rules and a per-point brute-force reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mgrec.data.check import unlearnable_segments
from mgrec.train.assign import Points, assign_batch, assign_targets, make_points

RANGES = [[0, 4], [4, 8], [8, 16]]


def positives_of(targets):
    return torch.nonzero(targets.positive).squeeze(1).tolist()


def test_make_points_positions_strides_and_ranges():
    points = make_points([4, 2], [1, 2], [[0, 4], [4, 10000]])
    assert points.positions.tolist() == [0, 1, 2, 3, 0, 2]
    assert points.strides.tolist() == [1, 1, 1, 1, 2, 2]
    assert points.reg_min.tolist() == [0, 0, 0, 0, 4, 4]
    assert points.reg_max.tolist() == [4, 4, 4, 4, 10000, 10000]
    assert len(points) == 6


def test_length_six_segment_with_default_ranges():
    # GT [10, 16], centre 13. Level 0 (stride 1): centre region (11.5, 14.5) -> t = 12, 13, 14, largest
    # distances 4, 3, 4, all in [0, 4]. Level 1 (stride 2): region [10, 16] -> positions 12, 14 (t = 6, 7),
    # largest distance 4 in [4, 8]. Level 2 (stride 4): position 12 has largest distance 4, not in [8, 16].
    points = make_points([32, 16, 8], [1, 2, 4], RANGES)
    targets = assign_targets(points, torch.tensor([[10.0, 16.0]]), torch.tensor([2]), num_classes=3)
    assert positives_of(targets) == [12, 13, 14, 32 + 6, 32 + 7]
    assert targets.reg_targets[[12, 13, 14, 38, 39]].tolist() == [[2, 4], [3, 3], [4, 2], [1, 2], [2, 1]]
    assert targets.cls_targets[[12, 38]].tolist() == [[0, 0, 1], [0, 0, 1]]
    assert targets.cls_targets.sum() == 5  # negatives have all-zero class targets
    assert targets.reg_targets[~targets.positive].abs().sum() == 0


def test_regression_range_decides_the_level():
    points = make_points([32, 16, 8], [1, 2, 4], [[0, 3], [4, 8], [8, 16]])
    targets = assign_targets(points, torch.tensor([[10.0, 16.0]]), torch.tensor([0]), num_classes=1)
    assert positives_of(targets) == [13, 38, 39]  # t = 12 and 14 reach 4 > 3


@pytest.mark.parametrize(
    "radius, expected", [(1.5, [9, 10, 11]), (3.0, list(range(8, 13))), (100.0, list(range(1, 20)))]
)
def test_centre_radius_limits_positives_to_the_middle(radius, expected):
    points = make_points([32], [1], [[0, 100]])
    targets = assign_targets(points, torch.tensor([[0.0, 20.0]]), torch.tensor([0]), 1, center_radius=radius)
    assert positives_of(targets) == expected  # the segment's own boundaries (0, 20) are never inside


def test_shortest_segment_wins_and_equal_lengths_give_multi_hot():
    points = make_points([32], [1], [[0, 100]])
    segments = torch.tensor([[0.0, 20.0], [8.0, 12.0], [9.0, 13.0]])  # lengths 20, 4, 4
    targets = assign_targets(points, segments, torch.tensor([0, 1, 2]), 3, center_radius=100.0)
    assert targets.cls_targets[5].tolist() == [1, 0, 0]  # only the long one covers 5
    assert targets.reg_targets[5].tolist() == [5, 15]
    assert targets.cls_targets[9].tolist() == [0, 1, 0]  # 9 is a boundary of the third
    assert targets.reg_targets[9].tolist() == [1, 3]
    assert targets.cls_targets[10].tolist() == [0, 1, 1]  # a tie: both classes, regression of the first
    assert targets.reg_targets[10].tolist() == [2, 2]
    assert targets.cls_targets[12].tolist() == [0, 0, 1]


@pytest.mark.parametrize("third_length, multi_hot", [(4.0005, True), (4.01, False)])
def test_length_tie_tolerance(third_length, multi_hot):
    points = make_points([32], [1], [[0, 100]])
    segments = torch.tensor([[8.0, 12.0], [9.0, 9.0 + third_length]])
    targets = assign_targets(points, segments, torch.tensor([0, 1]), 2, center_radius=100.0)
    assert targets.cls_targets[10].tolist() == ([1, 1] if multi_hot else [1, 0])


def test_padded_points_are_never_positive():
    points = make_points([32], [1], [[0, 100]])
    valid = torch.arange(32) < 11
    targets = assign_targets(points, torch.tensor([[0.0, 20.0]]), torch.tensor([0]), 1, valid=valid)
    assert positives_of(targets) == [9, 10]


def test_no_ground_truth_gives_all_negative_targets():
    points = make_points([8, 4], [1, 2], [[0, 4], [4, 100]])
    targets = assign_targets(points, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 5)
    assert targets.cls_targets.shape == (12, 5) and targets.cls_targets.sum() == 0
    assert targets.reg_targets.shape == (12, 2) and targets.reg_targets.sum() == 0
    assert targets.positive.shape == (12,) and not targets.positive.any()


def test_label_out_of_range_is_an_error():
    points = make_points([8], [1], [[0, 100]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        assign_targets(points, torch.tensor([[1.0, 5.0]]), torch.tensor([2]), 2)


def test_assign_batch_stacks_per_video_targets():
    points = make_points([16, 8], [1, 2], [[0, 4], [4, 100]])
    segments = [torch.tensor([[2.0, 6.0], [8.0, 14.0]]), torch.zeros(0, 2)]
    labels = [torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long)]
    valid = torch.ones(2, 24, dtype=torch.bool)
    valid[0, 11] = False  # a point that would be positive
    batch = assign_batch(points, segments, labels, 2, valid=valid)
    assert batch.cls_targets.shape == (2, 24, 2) and batch.reg_targets.shape == (2, 24, 2)
    assert batch.positive.shape == (2, 24)
    for b in range(2):
        single = assign_targets(points, segments[b], labels[b], 2, valid=valid[b])
        for stacked, alone in zip(batch, single):
            assert torch.equal(stacked[b], alone)
    assert batch.positive[0].any() and not batch.positive[0, 11] and not batch.positive[1].any()


# ---- brute force: one point, one segment at a time --------------------------------------------


def assign_py(points: Points, segments, labels, num_classes, radius):
    # float32 scalars, so that boundary comparisons round exactly as the float32 tensors do.
    segments = [(np.float32(start), np.float32(end)) for start, end in segments]
    cls_targets, reg_targets, positive = [], [], []
    for position, stride, low, high in zip(
        points.positions.numpy(), points.strides.numpy(), points.reg_min.numpy(), points.reg_max.numpy()
    ):
        qualifying = []
        for (start, end), label in zip(segments, labels):
            centre = (start + end) / 2
            inside = max(centre - radius * stride, start) < position < min(centre + radius * stride, end)
            largest = max(position - start, end - position)
            if inside and low <= largest <= high:
                qualifying.append((end - start, label, (position - start) / stride, (end - position) / stride))
        row = [0.0] * num_classes
        if qualifying:
            shortest = min(length for length, *_ in qualifying)
            winners = [q for q in qualifying if q[0] <= shortest + 1e-3]
            for _, label, _, _ in winners:
                row[label] = 1.0
            first_shortest = next(q for q in qualifying if q[0] == shortest)
            reg_targets.append([first_shortest[2], first_shortest[3]])
        else:
            reg_targets.append([0.0, 0.0])
        cls_targets.append(row)
        positive.append(bool(qualifying))
    return cls_targets, reg_targets, positive


grid_value = st.one_of(st.integers(0, 40).map(float), st.floats(0, 40, width=32))


@settings(max_examples=100, deadline=None)
@given(
    gts=st.lists(st.tuples(grid_value, grid_value, st.integers(0, 2)), max_size=6),
    radius=st.sampled_from([0.5, 1.5, 4.0]),
)
def test_assign_matches_brute_force(gts, radius):
    points = make_points([40, 20, 10], [1, 2, 4], [[0, 4], [2, 8], [8, 10000]])  # overlapping ranges too
    segments = [(min(a, b), max(a, b)) for a, b, _ in gts]
    labels = [label for _, _, label in gts]
    segment_tensor = torch.tensor(segments, dtype=torch.float32).reshape(-1, 2)
    targets = assign_targets(points, segment_tensor, torch.tensor(labels, dtype=torch.long), 3, radius)
    cls_targets, reg_targets, positive = assign_py(points, segments, labels, 3, radius)
    assert targets.positive.tolist() == positive
    assert targets.cls_targets.tolist() == cls_targets
    assert targets.reg_targets.flatten().tolist() == pytest.approx([x for row in reg_targets for x in row], abs=1e-5)


@settings(max_examples=200, deadline=None)
@given(start=st.floats(0.0, 40.0), length=st.floats(0.01, 30.0), radius=st.sampled_from([0.5, 1.5, 2.5]))
def test_unlearnable_segments_is_assign_targets_over_every_crop_start(start, length, radius):
    # The pure rule `data check` and `train` warn with, against the assignment itself: a segment alone is learnable
    # when, for some crop start (any whole step), some point of some level is positive for it.
    segment = np.array([[start, start + length]])
    strides = [1, 2, 4]
    unlearnable = bool(unlearnable_segments(segment, strides, RANGES, radius)[0])
    learned = False
    for offset in range(max(strides)):  # a crop starting at `offset` mod the top stride
        points = make_points([96 // s for s in strides], strides, RANGES)
        shifted = torch.tensor(segment, dtype=torch.float32) + offset
        targets = assign_targets(points, shifted, torch.tensor([0]), 1, center_radius=radius)
        learned |= bool(targets.positive.any())
    assert unlearnable == (not learned)


def test_unlearnable_segments_of_a_huge_centre_radius_takes_what_the_segments_need(monkeypatch):
    # `train.center_radius: 1e9` (the whole segment as its centre region): `data check` and `train` asked for
    # (N, 2e9) positions, a raw _ArrayMemoryError traceback (864 GiB)
    import mgrec.data.check as check

    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 500, 300)
    segments = np.stack([starts, starts + rng.uniform(0.2, 40, 300)], axis=1)
    expected = unlearnable_segments(segments, [1, 2, 4], RANGES, 25.0)  # past every segment's half length
    assert expected.any() and not expected.all()
    assert unlearnable_segments(segments, [1, 2, 4], RANGES, 1e9).tolist() == expected.tolist()
    assert unlearnable_segments(segments, [1, 2, 4], RANGES, 1e300).tolist() == expected.tolist()
    whole = unlearnable_segments(segments, [1, 2, 4], RANGES, 1.5)
    monkeypatch.setattr(check, "_POSITIONS_PER_BLOCK", 100)  # blocks of a few segments: the same answers
    assert unlearnable_segments(segments, [1, 2, 4], RANGES, 1.5).tolist() == whole.tolist()
    assert unlearnable_segments(segments, [1, 2, 4], RANGES, 1e9).tolist() == expected.tolist()
    assert unlearnable_segments(np.zeros((0, 2)), [1, 2, 4], RANGES, 1e9).tolist() == []


def test_a_segment_within_one_step_is_unlearnable_and_one_across_a_step_is_not():
    segments = np.array([[10.3, 10.9], [10.0, 11.0], [10.0, 11.01], [9.9, 11.0], [3.0, 9.0]])
    assert unlearnable_segments(segments, [1, 2, 4], RANGES).tolist() == [True, True, False, False, False]
