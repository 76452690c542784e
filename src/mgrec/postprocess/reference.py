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
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import RawDetections


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

        start, end = segments[pick].tolist()
        intersection = (torch.clamp(ends, max=end) - torch.clamp(starts, min=start)).clamp(min=0)
        union = (ends - starts) + (end - start) - intersection
        iou = intersection / union.clamp(min=torch.finfo(union.dtype).tiny)  # two empty segments: IoU 0
        same_class = labels == labels[pick]
        if cfg.nms == "hard":
            current[same_class & (iou > cfg.iou_threshold)] = -math.inf
        else:
            # Only live candidates decay: -inf times a decay that underflowed to 0 would be NaN.
            decays = same_class & (current > -math.inf)
            current = torch.where(decays, current * torch.exp(iou.square() / -cfg.sigma), current)
    index = torch.tensor(kept, dtype=torch.long, device=segments.device)
    return segments[index], torch.tensor(kept_scores, dtype=scores.dtype, device=scores.device), labels[index]
