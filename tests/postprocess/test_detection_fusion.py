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


def _fused_by_every_cluster(members, iou_threshold):
    """The fusion as the module docstring states it, each detection's tIoU taken with every cluster of its class (the
    library skips clusters apart from it: their tIoU of 0 is below any positive threshold)."""
    from mgrec.postprocess import detection_fusion as fusion

    pool = sorted(((d, m) for m, ranked in enumerate(members) for d in ranked), key=lambda item: -item[0].score)
    clusters = {}
    for detection, member in pool:
        best, best_overlap = None, iou_threshold
        for cluster in clusters.setdefault(detection.label_id, []):
            if member in cluster.members:
                continue
            overlap = fusion._tiou(cluster.start, cluster.end, detection.start, detection.end)
            if overlap >= best_overlap and (best is None or overlap > best_overlap):
                best, best_overlap = cluster, overlap
        if best is None:
            best = fusion._Cluster(detection)
            clusters[detection.label_id].append(best)
        best.add(detection, member)
    return sorted((fusion._fused(c, len(members)) for per_class in clusters.values() for c in per_class),
                  key=lambda d: -d.score)


@pytest.mark.parametrize("iou_threshold", [0.5, 0.1, 0.9])
def test_skipping_clusters_apart_from_a_detection_changes_no_fused_list(iou_threshold):
    import random

    rng = random.Random(iou_threshold)
    for _ in range(20):
        members = []
        for _ in range(rng.randint(1, 3)):
            ranked = []
            for _ in range(rng.randint(0, 40)):
                start = rng.uniform(0, 30)
                ranked.append(det(start, start + rng.uniform(0.1, 3), rng.random(), rng.randint(0, 2)))
            members.append(sorted(ranked, key=lambda d: -d.score))
        assert fuse_detections(members, iou_threshold) == _fused_by_every_cluster(members, iou_threshold)
