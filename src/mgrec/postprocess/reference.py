"""The post-processing as plain loops, one candidate at a time: the definitions the fast forms compute.

Read these to learn what the post-processing does; detection and training's validation run the
fast forms.
- `decode_reference`: every (level, point, class) visited in turn, as ActionFormer's decoding is
  described; `mgrec.postprocess.decode.decode_video` returns the same candidates in the same order
  with the level's whole tensor at once (tests/postprocess/test_decode.py checks it).
- `nms_reference`: class-wise (Soft-)NMS as the textbook greedy loop; `mgrec.postprocess.nms.nms`
  returns the same kept candidates, scores, labels and order, bit for bit
  (tests/postprocess/test_nms.py checks it), but advances all classes at once and only updates the
  candidates that can overlap a pick.
- `vote_boundaries_reference`: boundary voting after NMS (`postprocess.voting`), each kept segment's ends the
  score-weighted mean of its class's candidates overlapping it enough; `mgrec.postprocess.nms.vote_boundaries`
  returns the same (tests/postprocess/test_nms.py checks it), visiting only the candidates that can overlap enough.
- `fuse_detections_reference`: detection-level fusion of several members' ranked lists, each cluster's
  boundaries taken as the score-weighted mean of its detections again whenever one joins, and each detection's
  tIoU taken with every cluster of its class; `mgrec.postprocess.detection_fusion.fuse_detections` returns the
  same fused list (tests/postprocess/test_detection_fusion.py checks it) with running sums, skipping clusters
  apart from the detection.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import RawDetections
from mgrec.records import Detection


def decode_reference(
    cls_logits: list[Tensor], offsets: list[Tensor], masks: list[Tensor], strides: list[int], cfg: PostprocessConfig
) -> RawDetections:
    """Candidates of one video before NMS, one (level, point, class) at a time; float64 results.

    For each pyramid level l (stride s, finest first), with logits (T_l, K), offsets (T_l, 2) and
    mask (T_l,):
    1. every valid point t and class k whose score sigmoid(logit[t, k]) is > `cfg.pre_nms_thresh` is
       a candidate;
    2. the candidates are ranked by score, highest first; among equal scores the earlier point, then
       the lower class, comes first; the first `cfg.pre_nms_topk` are kept;
    3. a kept candidate's segment is [t*s - left*s, t*s + right*s] on the level-0 grid, with
       (left, right) = offsets[t] in units of s; it is dropped when it is no longer than
       `cfg.min_duration`.
    """
    segments: list[tuple[float, float]] = []
    scores: list[float] = []
    labels: list[int] = []
    for logits, level_offsets, mask, stride in zip(cls_logits, offsets, masks, strides):
        candidates = []
        # torch's sigmoid, as the fast path: two roundings of one formula could order near-equal scores
        # differently, and the ranking among them is what is defined here
        level_scores = torch.sigmoid(logits.to(torch.float64)).tolist()
        for t, row in enumerate(level_scores):
            for k, score in enumerate(row):
                if mask[t] and score > cfg.pre_nms_thresh:
                    candidates.append((score, t, k))
        candidates.sort(key=lambda candidate: -candidate[0])  # a stable sort: (t, k) order among equal scores
        for score, t, k in candidates[: cfg.pre_nms_topk]:
            left, right = level_offsets[t].tolist()
            start, end = t * stride - left * stride, t * stride + right * stride
            if end - start > cfg.min_duration:
                segments.append((start, end))
                scores.append(score)
                labels.append(k)
    return RawDetections(
        segments=torch.tensor(segments, dtype=torch.float64).reshape(-1, 2),
        scores=torch.tensor(scores, dtype=torch.float64),
        labels=torch.tensor(labels, dtype=torch.long),
    )


def _tiou(start: float, end: float, starts: Tensor, ends: Tensor) -> Tensor:
    """tIoU of [start, end] with each [starts[i], ends[i]], in their dtype; 0 where the union is empty (two empty
    segments)."""
    intersection = (torch.clamp(ends, max=end) - torch.clamp(starts, min=start)).clamp(min=0)
    union = (ends - starts) + (end - start) - intersection
    return intersection / union.clamp(min=torch.finfo(union.dtype).tiny)


def nms_reference(
    segments: Tensor, scores: Tensor, labels: Tensor, cfg: PostprocessConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """Class-wise NMS, one pick at a time; returns (segments (M, 2), scores (M,), labels (M,)) ranked.

    Repeat until `cfg.max_detections` are kept or none is left: pick the candidate with the highest
    current score (ties: the lower class, then the earlier input position) and keep it; then, among
    the remaining candidates of its class,
    - hard NMS (`cfg.nms == "hard"`): remove those whose IoU with the pick is > `cfg.iou_threshold`;
    - Soft-NMS (`"soft"`): multiply each score by exp(-IoU^2 / `cfg.sigma`), and stop as soon as the
      highest score left is below `cfg.min_score`.
    Computed in the input's dtype on its device (`nms` computes float16/bfloat16 in float32).
    """
    current = scores.clone()
    starts, ends = segments[:, 0], segments[:, 1]
    # Scores only fall, so once the highest is below min_score no later pick can be kept.
    min_kept = cfg.min_score if cfg.nms == "soft" else -math.inf
    kept: list[int] = []
    kept_scores: list[float] = []
    while len(kept) < cfg.max_detections and current.numel():
        best = current.max()  # removed and kept candidates are -inf
        if best == -math.inf or float(best) < min_kept:
            break
        tied = torch.nonzero(current == best).squeeze(1)
        pick = int(tied[torch.argmin(labels[tied] * len(current) + tied)])  # the lowest class, then position
        kept.append(pick)
        kept_scores.append(float(best))
        current[pick] = -math.inf

        iou = _tiou(*segments[pick].tolist(), starts, ends)
        same_class = labels == labels[pick]
        if cfg.nms == "hard":
            current[same_class & (iou > cfg.iou_threshold)] = -math.inf
        else:
            # Only live candidates decay: -inf times a decay that underflowed to 0 would be NaN.
            decays = same_class & (current > -math.inf)
            current = torch.where(decays, current * torch.exp(iou.square() / -cfg.sigma), current)
    index = torch.tensor(kept, dtype=torch.long, device=segments.device)
    return segments[index], torch.tensor(kept_scores, dtype=scores.dtype, device=scores.device), labels[index]


def vote_boundaries_reference(kept_segments: Tensor, kept_labels: Tensor, segments: Tensor, scores: Tensor,
                              labels: Tensor, threshold: float) -> Tensor:
    """Boundary voting after NMS, one kept segment at a time, in float64: the kept segment [a, b] of class c becomes

        sum_j w_j [s_j, e_j] / sum_j w_j   over the candidates j of class c with tIoU([a, b], [s_j, e_j]) >= threshold,

    w_j the candidate's score before NMS. `mgrec.postprocess.nms.vote_boundaries` visits only the candidates that
    can reach the tIoU."""
    kept64, segments64, scores64 = kept_segments.double(), segments.double(), scores.double()
    starts, ends = segments64[:, 0], segments64[:, 1]
    voted = kept64.clone()
    for row in range(len(kept64)):
        iou = _tiou(*kept64[row].tolist(), starts, ends)
        voters = (labels == kept_labels[row]) & (iou >= threshold)
        total = scores64[voters].sum()
        if total > 0:
            voted[row] = (scores64[voters, None] * segments64[voters]).sum(dim=0) / total
    return voted.to(kept_segments.dtype)


def fuse_detections_reference(members: list[list[Detection]], iou_threshold: float) -> list[Detection]:
    """One video's ranked lists of M members fused (the definition in `mgrec.postprocess.detection_fusion`).

    1. Every member's detections, pooled, from the highest score down (a stable sort: among equal scores, member 0's
       first, each in its own order).
    2. A detection joins, among the clusters of its class that hold no detection of its member yet, the one whose
       segment it overlaps most, where that tIoU is at least `iou_threshold` (the first such cluster among equal
       overlaps); otherwise it starts a cluster.
    3. A cluster's segment (and frames, where each of its detections has them) is the score-weighted mean of its
       detections' boundaries, written as the first detection's value plus the weighted mean of the differences
       (so that equal values give it exactly); with a score sum of 0 or less, the first detection's value.
    4. A cluster becomes one detection of the first detection's video, class and label, with score (sum of its
       scores) / M, written as first * (n / M) + sum(score - first) / M; frames rounded to whole frames.
    5. The fused detections, from the highest score down; among equal scores, those of the class met first in the
       pool come first, each class's in the order its clusters started.
    """
    def mean(values: list[float], scores: list[float]) -> float:
        total = sum(scores)
        if total <= 0:
            return values[0]
        return values[0] + sum(s * (v - values[0]) for v, s in zip(values, scores)) / total

    def segment(cluster: list[tuple[Detection, int]]) -> tuple[float, float]:
        scores = [d.score for d, _ in cluster]
        return mean([d.start for d, _ in cluster], scores), mean([d.end for d, _ in cluster], scores)

    pool = sorted(((d, m) for m, ranked in enumerate(members) for d in ranked), key=lambda item: -item[0].score)
    clusters: list[list[tuple[Detection, int]]] = []
    for detection, member in pool:
        best, best_overlap = None, iou_threshold
        for cluster in clusters:
            if cluster[0][0].label_id != detection.label_id or any(m == member for _, m in cluster):
                continue
            start, end = segment(cluster)
            inter = max(0.0, min(end, detection.end) - max(start, detection.start))
            union = max(end, detection.end) - min(start, detection.start)
            overlap = inter / union if union > 0 else 0.0
            if overlap >= best_overlap and (best is None or overlap > best_overlap):
                best, best_overlap = cluster, overlap
        if best is None:
            clusters.append([(detection, member)])
        else:
            best.append((detection, member))
    met = list(dict.fromkeys(detection.label_id for detection, _ in pool))  # the classes in the order they are met
    fused = []
    for cluster in sorted(clusters, key=lambda cluster: met.index(cluster[0][0].label_id)):  # stable: started order
        first, scores = cluster[0][0], [d.score for d, _ in cluster]
        start, end = segment(cluster)
        start_frame = end_frame = None
        if all(d.start_frame is not None and d.end_frame is not None for d, _ in cluster):
            start_frame = round(mean([d.start_frame for d, _ in cluster], scores))
            end_frame = round(mean([d.end_frame for d, _ in cluster], scores))
        score = first.score * (len(cluster) / len(members)) + sum(s - first.score for s in scores) / len(members)
        fused.append(Detection(first.video_id, start, end, first.label_id, first.label, score, start_frame, end_frame))
    return sorted(fused, key=lambda d: -d.score)
