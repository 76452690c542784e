"""Class-wise (Soft-)NMS as the textbook greedy loop: the definition that `nms.nms` computes faster.

Read this one to learn what the post-processing does. `mgrec.postprocess.nms.nms` returns the same
kept candidates, scores, labels and order, bit for bit (tests/postprocess/test_nms.py checks it), but
advances all classes at once and only updates the candidates that can overlap a pick, which is what
detection and training's validation run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mgrec.config import PostprocessConfig


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
