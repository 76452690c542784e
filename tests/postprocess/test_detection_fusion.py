"""Detection-level fusion (`mgrec.postprocess.detection_fusion`): one member's list comes back unchanged, identical
members give it again, boundaries are score-weighted, a member is never counted twice in one gesture."""

from dataclasses import replace

import pytest

from mgrec.postprocess.detection_fusion import fuse_detections
from mgrec.records import Detection


def det(start, end, score, label_id=0, frames=None):
    return Detection("v", start, end, label_id, f"c{label_id}", score,
                     *(frames if frames is not None else (round(start * 25), round(end * 25))))


RANKED = [det(1.0, 2.0, 0.9), det(5.0, 6.0, 0.7, 1), det(1.1, 2.1, 0.5), det(8.0, 8.4, 0.3, 2)]  # by score


def test_one_member_comes_back_unchanged_and_identical_members_give_it_again():
    assert fuse_detections([RANKED]) == RANKED  # bit for bit, in the same order
    assert fuse_detections([RANKED, list(RANKED), list(RANKED)]) == RANKED
    assert fuse_detections([]) == []
    assert fuse_detections([[], []]) == []


def test_agreeing_members_are_averaged_by_score_and_a_lone_detection_keeps_its_share():
    a = [det(1.0, 2.0, 0.8)]
    b = [det(1.2, 2.4, 0.4), det(6.0, 7.0, 0.6)]
    fused = fuse_detections([a, b])
    assert len(fused) == 2
    together, alone = fused
    assert together.start == pytest.approx((0.8 * 1.0 + 0.4 * 1.2) / 1.2)
    assert together.end == pytest.approx((0.8 * 2.0 + 0.4 * 2.4) / 1.2)
    assert together.score == pytest.approx((0.8 + 0.4) / 2)
    assert (together.start_frame, together.end_frame) == (round((0.8 * 25 + 0.4 * 30) / 1.2),
                                                          round((0.8 * 50 + 0.4 * 60) / 1.2))
    assert (alone.start, alone.end, alone.score) == (6.0, 7.0, pytest.approx(0.3))


def test_classes_below_the_overlap_and_a_members_own_detections_stay_apart():
    a = [det(1.0, 2.0, 0.9), det(1.05, 2.05, 0.6)]  # one member's two overlapping detections: never one gesture
    b = [det(1.0, 2.0, 0.8, label_id=1), det(1.6, 3.0, 0.7)]  # another class; tIoU 0.2 with a[0]
    fused = fuse_detections([a, b], iou_threshold=0.5)
    assert sorted((d.label_id, d.start, d.end) for d in fused) == [
        (0, 1.0, 2.0), (0, 1.05, 2.05), (0, 1.6, 3.0), (1, 1.0, 2.0)]
    assert fused == sorted(fused, key=lambda d: -d.score)


def test_a_detection_joins_the_gesture_it_overlaps_most():
    a = [det(0.0, 1.0, 0.9), det(1.0, 2.0, 0.8)]
    b = [det(0.9, 2.0, 0.7)]  # tIoU 0.09 with a[0], 0.91 with a[1]
    first, second = sorted(fuse_detections([a, b], iou_threshold=0.05), key=lambda d: d.start)
    assert (first.start, first.end, first.score) == (0.0, 1.0, pytest.approx(0.45))
    assert second.start == pytest.approx((0.8 * 1.0 + 0.7 * 0.9) / 1.5)
    assert second.score == pytest.approx(0.75)


def test_detections_without_frames_fuse_without_frames():
    a = [replace(det(1.0, 2.0, 0.8), start_frame=None, end_frame=None)]
    b = [det(1.0, 2.0, 0.4)]
    (fused,) = fuse_detections([a, b])
    assert (fused.start_frame, fused.end_frame) == (None, None)


def close(fused, reference):
    """Equal lists, their floats to 1e-12 (the reference sums with `sum`, which Python 3.12+ compensates)."""
    assert [(d.video_id, d.label_id, d.label, d.start_frame, d.end_frame) for d in fused] == [
        (d.video_id, d.label_id, d.label, d.start_frame, d.end_frame) for d in reference]
    for a, b in zip(fused, reference):
        assert (a.start, a.end, a.score) == pytest.approx((b.start, b.end, b.score), rel=0, abs=1e-12)


@pytest.mark.parametrize("iou_threshold", [0.5, 0.1, 0.9])
def test_the_fast_fusion_is_the_reference_s_on_random_lists(iou_threshold):
    """Running sums and the skip of clusters apart from a detection (the update of a streamed ensemble fuses two
    full ranked lists) against the definition, each cluster's means taken again whenever a detection joins."""
    import random

    from mgrec.postprocess.reference import fuse_detections_reference

    rng = random.Random(iou_threshold)
    for trial in range(40):
        members = []
        for _ in range(rng.randint(1, 4)):
            ranked = []
            for _ in range(rng.randint(0, 40)):
                start = rng.uniform(0, 30)
                detection = det(start, start + rng.uniform(0.1, 3), rng.choice([rng.random(), 0.5, 0.0]),
                                rng.randint(0, 2))
                ranked.append(detection if rng.random() > 0.1 else replace(detection, start_frame=None))
            members.append(sorted(ranked, key=lambda d: -d.score))
        fused = fuse_detections(members, iou_threshold)
        close(fused, fuse_detections_reference(members, iou_threshold))
    assert fuse_detections_reference([RANKED, list(RANKED)], 0.5) == fuse_detections([RANKED, list(RANKED)]) == RANKED


def test_equal_fused_scores_keep_the_order_of_the_class_met_first():
    # the order among equal scores decides what a cut at max_detections keeps (shifted passes fuse, then cut): the
    # class met first in the pool comes first, as the fusion has always ordered them (a rewrite took the order the
    # clusters were started in, the same values in another order)
    ranked = [det(0.0, 1.0, 0.9, 0), det(5.0, 6.0, 0.5, 1), det(10.0, 11.0, 0.5, 0)]
    fused = fuse_detections([ranked])
    assert [(d.label_id, d.start) for d in fused] == [(0, 0.0), (0, 10.0), (1, 5.0)]
    from mgrec.postprocess.reference import fuse_detections_reference

    assert fuse_detections_reference([ranked], 0.5) == fused


def test_fusion_called_from_python_refuses_what_it_would_fuse_into_a_wrong_list():
    """A start after its end was fused into its cluster's means (a fused segment ending before it starts), a NaN score
    summed into a NaN fused score, and an iou_threshold of 1.5 fused nothing (-1: detections apart joined), each
    without a word. Each member's list is checked at once, per call; mgrec's own callers fuse unchecked."""
    from mgrec.errors import InputError

    cases = [
        (([[det(2.0, 1.0, 0.9)], RANKED], 0.5), r"fuse_detections: members \[0\] #0: expected finite times with "
                                                r"start <= end, got \[2.0, 1.0\]"),
        (([RANKED, [det(1.0, 2.0, 0.9), det(1.0, 2.0, float("nan"))]], 0.5),
         r"fuse_detections: members \[1\] #1: expected a finite score, got nan"),
        (([RANKED, [det(float("nan"), 2.0, 0.9, frames=(0, 50))]], 0.5), r"members \[1\] #0: expected finite times"),
        (([RANKED, RANKED], 1.5), r"fuse_detections: iou_threshold: expected a tIoU in \(0, 1\] .*got 1.5"),
        (([RANKED, RANKED], -1), r"iou_threshold: expected a tIoU in \(0, 1\] .*got -1"),
        (([RANKED, RANKED], float("nan")), r"iou_threshold: expected a tIoU in \(0, 1\] .*got nan"),
        (([RANKED, RANKED], True), r"iou_threshold: expected a tIoU in \(0, 1\] .*got True"),
        ((RANKED, 0.5), r"got one list of Detection \(one member: give \[its list\]\)"),
        (([RANKED, [{"segment": [1, 2]}]], 0.5), r"members \[1\] #0: expected a Detection"),
    ]
    for (members, iou), message in cases:
        with pytest.raises(InputError, match=message):
            fuse_detections(members, iou)
    assert fuse_detections([RANKED, list(RANKED)], 1) == RANKED  # 1: identical boundaries still join
