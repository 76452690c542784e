"""Detection-level fusion of several detectors' ranked lists for one video (a `mgrec ensemble` of runs
whose networks or inputs differ, so that their outputs cannot be averaged point by point).

Weighted boundary fusion, in one dimension: all members' detections of a class, from the most
confident down, join the cluster whose fused segment they overlap most (tIoU >= `iou_threshold`)
among the clusters that hold nothing of their member yet; otherwise they start a cluster. A cluster
becomes one detection:

    start, end = score-weighted means of its members' boundaries
    score      = (sum of its members' scores) / M      (a member that missed counts 0)

so agreement raises a detection above what any single member gives it relative to the others, and
a detection that only one of M members makes keeps 1/M of its score. One member's list comes back
unchanged, and M identical lists give that list again (bit for bit: the means are taken relative to
the first member's boundary, so equal values add zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mgrec.errors import InputError
from mgrec.files import brief, is_finite_real
from mgrec.records import Detection, check_records

# Detections of two members are one gesture from this tIoU on (that of hard NMS, postprocess.iou_threshold's default).
FUSION_IOU = 0.5


@dataclass
class _Cluster:
    """The detections of one gesture so far, at most one per member. Its boundaries (and frames) are the score-weighted
    means of theirs, kept as running sums of score x (value - the first detection's value), so that each detection
    joins in constant time and equal values add zero; `mgrec.postprocess.reference.fuse_detections_reference` takes
    each mean over the whole cluster again, and is equal to this (tests/postprocess/test_detection_fusion.py)."""

    first: Detection
    members: set[int] = field(default_factory=set)
    start: float = 0.0
    end: float = 0.0
    score_sum: float = 0.0  # sum of the members' scores, in the order they joined
    score_shift: float = 0.0  # sum of (score - the first score)
    shifts: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # start, end, start frame, end frame
    has_frames: bool = True  # every detection so far has both frames

    def add(self, detection: Detection, member: int) -> None:
        first, score = self.first, detection.score
        self.members.add(member)
        self.score_sum += score
        self.score_shift += score - first.score
        shifts = self.shifts
        shifts[0] += score * (detection.start - first.start)
        shifts[1] += score * (detection.end - first.end)
        self.has_frames = self.has_frames and detection.start_frame is not None and detection.end_frame is not None
        if self.has_frames:
            shifts[2] += score * (detection.start_frame - first.start_frame)
            shifts[3] += score * (detection.end_frame - first.end_frame)
        self.start, self.end = self.mean(first.start, 0), self.mean(first.end, 1)

    def mean(self, first_value: float, which: int) -> float:
        """Score-weighted mean of a boundary, as an offset from the first detection's (equal values give it)."""
        return first_value + self.shifts[which] / self.score_sum if self.score_sum > 0 else first_value


def _tiou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else 0.0


def fuse_detections(members: Sequence[Sequence[Detection]], iou_threshold: float = FUSION_IOU) -> list[Detection]:
    """One video's detections of M members (each a ranked list) -> the fused ranked list (see the module
    docstring), by score, highest first.

    Checked once per call, each member's list at once (`mgrec.records.check_records`): a start after its end
    was fused into a cluster's means (a fused segment ending before it starts), a NaN score was summed into its
    cluster's (a NaN fused score, ranked anywhere), and an `iou_threshold` of 1.5 never joined anything (or -1 joined
    detections that do not overlap), each without a word. mgrec's own callers, whose lists come from its decoding,
    call `_fuse_detections`."""

    if isinstance(members, (str, bytes, Mapping)) or not isinstance(members, Sequence):
        raise InputError(f"fuse_detections: members: expected a list of the members' ranked lists (each a list of "
                         f"Detection), got {type(members).__name__}")
    if members and isinstance(members[0], Detection):
        raise InputError("fuse_detections: members: expected a list of the members' ranked lists, got one list of "
                         "Detection (one member: give [its list])")
    check_records(dict(enumerate(members)), "fuse_detections: members", scored=True)
    if not is_finite_real(iou_threshold) or not 0 < iou_threshold <= 1:
        raise InputError(f"fuse_detections: iou_threshold: expected a tIoU in (0, 1] (detections of two members join "
                         f"from it on), got {brief(iou_threshold)}")
    return _fuse_detections(members, float(iou_threshold))


def _fuse_detections(members: Sequence[Sequence[Detection]], iou_threshold: float = FUSION_IOU) -> list[Detection]:
    """`fuse_detections` of lists and a threshold known good (mgrec's own detections, a checked fusion_iou)."""
    count = len(members)
    if count == 0:
        return []
    pool = sorted(((d, m) for m, ranked in enumerate(members) for d in ranked), key=lambda item: -item[0].score)
    clusters: dict[int, list[_Cluster]] = {}  # by class, in the order the classes are met
    apart_never_joins = iou_threshold > 0  # a tIoU of 0 is below the threshold
    for detection, member in pool:
        start, end = detection.start, detection.end
        best, best_overlap = None, iou_threshold
        for cluster in clusters.setdefault(detection.label_id, []):
            # apart, or holding this member's already: the test before the tIoU's call took a stream's fusion of two
            # full ranked lists from about 22 to 16 ms per update (the demo's test video, one thread), the result
            # unchanged
            if member in cluster.members or (apart_never_joins and (cluster.end <= start or cluster.start >= end)):
                continue
            overlap = _tiou(cluster.start, cluster.end, start, end)
            if overlap >= best_overlap and (best is None or overlap > best_overlap):
                best, best_overlap = cluster, overlap
        if best is None:
            best = _Cluster(detection)
            clusters[detection.label_id].append(best)
        best.add(detection, member)
    fused = [_fused(cluster, count) for per_class in clusters.values() for cluster in per_class]
    return sorted(fused, key=lambda d: -d.score)


def _fused(cluster: _Cluster, count: int) -> Detection:
    first = cluster.first
    start_frame = end_frame = None
    if cluster.has_frames:
        start_frame, end_frame = round(cluster.mean(first.start_frame, 2)), round(cluster.mean(first.end_frame, 3))
    # (sum of scores) / M, written around the first score so that M equal scores give it exactly
    score = first.score * (len(cluster.members) / count) + cluster.score_shift / count
    return Detection(first.video_id, cluster.start, cluster.end, first.label_id, first.label, score, start_frame,
                     end_frame)
