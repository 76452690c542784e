"""Class-wise 1D non-maximum suppression: hard NMS and Gaussian Soft-NMS, in pure PyTorch.

Both methods are the same greedy loop: pick the highest current score, keep it, then lower the
scores of the remaining candidates of the same class according to their IoU with the pick
(hard: drop those with IoU > iou_threshold; soft: multiply by exp(-IoU^2 / sigma)). Each
iteration is a handful of vector operations, and memory stays O(N) (no N x N IoU matrix).

Candidates are grouped by class once, so an iteration only touches the picked class's slice.
Classes never influence each other, so the result is the per-class result of the released
C++ `nms_1d_cpu` extension of ActionFormer/DyFADet merged and ranked by score. One deliberate
difference: Soft-NMS drops every candidate whose score is below `min_score` when it would be
picked, also one that was never decayed (the release only drops decayed ones).

Ties in score are broken by class id, then by input position (the first one wins).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from mgrec.config import PostprocessConfig


def segment_iou(start: float, end: float, starts: Tensor, ends: Tensor) -> Tensor:
    """IoU of the segment [start, end] with each segment [starts[i], ends[i]]; 0 where the union is empty."""
    intersection = (torch.clamp(ends, max=end) - torch.clamp(starts, min=start)).clamp_(min=0)
    union = (ends - starts).add_(end - start).sub_(intersection)
    # Two zero-length segments have an empty union; they do not overlap.
    return intersection.div_(union.clamp_(min=torch.finfo(union.dtype).tiny))


def nms(segments: Tensor, scores: Tensor, labels: Tensor, cfg: PostprocessConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Class-wise NMS of candidates; returns (segments (M, 2), scores (M,), labels (M,)) ranked by score.

    `cfg.nms == "hard"`: a candidate is removed when its IoU with a kept one of the same class is
    > `cfg.iou_threshold`; scores are unchanged. `cfg.nms == "soft"`: Gaussian Soft-NMS, each
    candidate's score is multiplied by exp(-IoU^2 / `cfg.sigma`) for every kept one of the same
    class (picked before it), and candidates whose score falls below `cfg.min_score` are dropped.
    At most `cfg.max_detections` are returned. Works on any device and floating dtype.
    """
    if segments.ndim != 2 or segments.shape[1] != 2:
        raise ValueError(f"nms: segments must have shape (N, 2), got {tuple(segments.shape)}")
    if scores.shape != segments.shape[:1] or labels.shape != segments.shape[:1]:
        raise ValueError(
            f"nms: scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must have shape ({segments.shape[0]},)"
        )
    if torch.isnan(scores).any():
        raise ValueError("nms: scores contain NaN (the model output is broken)")
    if not torch.isfinite(segments).all():
        raise ValueError("nms: segments contain NaN or infinity (the model output is broken)")
    if cfg.nms == "hard":
        min_kept_score = -float("inf")  # hard NMS keeps every unsuppressed candidate, however low
    elif cfg.nms == "soft":
        min_kept_score = cfg.min_score
    else:
        raise ValueError(f"nms: postprocess.nms must be 'soft' or 'hard', got {cfg.nms!r}")

    # Group by class (stable, so input order is kept within a class): an iteration then works
    # on a contiguous slice, about 1/K of the candidates.
    order = torch.argsort(labels, stable=True)
    segments, labels = segments[order], labels[order]
    current = scores[order].clone()
    starts, ends = segments[:, 0].contiguous(), segments[:, 1].contiguous()
    # Per-candidate values read once per iteration are cheaper from Python lists than from tensors.
    segment_list, label_list = segments.tolist(), labels.tolist()
    class_counts = torch.bincount(labels).tolist() if labels.numel() else []
    class_ends = list(itertools.accumulate(class_counts))

    removed = -float("inf")  # the current score of kept and suppressed candidates
    kept_positions: list[int] = []
    kept_scores: list[float] = []
    while len(kept_positions) < cfg.max_detections and current.numel():
        position = int(torch.argmax(current))
        score = float(current[position])
        if score == removed or score < min_kept_score:
            break  # picks come in non-increasing score order, so nothing later qualifies either
        kept_positions.append(position)
        kept_scores.append(score)
        current[position] = removed

        label = label_list[position]
        first, stop = class_ends[label] - class_counts[label], class_ends[label]
        iou = segment_iou(*segment_list[position], starts[first:stop], ends[first:stop])
        class_scores = current[first:stop]  # a view: the updates below change `current`
        if cfg.nms == "hard":
            class_scores.masked_fill_(iou > cfg.iou_threshold, removed)
        else:
            class_scores.mul_(iou.square_().div_(-cfg.sigma).exp_())

    positions = torch.tensor(kept_positions, dtype=torch.long, device=segments.device)
    kept = torch.tensor(kept_scores, dtype=scores.dtype, device=scores.device)
    return segments[positions], kept, labels[positions]
