"""Decode the detector's per-level outputs into ranked candidate segments on the level-0 grid.

The model predicts, at every point t of pyramid level l (stride s = 2**l), class logits and the
distances (left, right) to the action's start and end in units of s. The point sits at t*s on
the level-0 feature grid, so its segment is [t*s - left*s, t*s + right*s]. Converting grid
units to seconds and frames is `mgrec.timeline`'s job, not this module's.

`mgrec.postprocess.video.detect_video` runs the network, `decode_video`, then class-wise
(Soft-)NMS (`mgrec.postprocess.nms`): the ranked list used for mAP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mgrec.config import PostprocessConfig


@dataclass
class RawDetections:
    """Detections of one video on the level-0 feature grid (not yet in seconds)."""

    segments: Tensor  # (N, 2) float: [start, end] in level-0 grid units
    scores: Tensor  # (N,) float in [0, 1]
    labels: Tensor  # (N,) long: 0-based class ids
    points: Tensor | None = None  # (N,) float: the position of the point each came from (level-0 grid units)

    def __len__(self) -> int:
        return self.scores.shape[0]


def decode_video(
    cls_logits: list[Tensor],
    offsets: list[Tensor],
    masks: list[Tensor],
    strides: list[int],
    cfg: PostprocessConfig,
) -> RawDetections:
    """Candidates of one video before NMS, level by level (finest level first).

    Per level: scores are sigmoid(logits) at valid (unmasked) points; every (point, class) pair
    with score > `cfg.pre_nms_thresh` is a candidate; the `cfg.pre_nms_topk` highest are kept
    (ties: the earlier point, then the lower class, wins); segments no longer than
    `cfg.min_duration` grid units are dropped. Inputs per level: logits (T_l, K), offsets (T_l, 2),
    mask (T_l,) bool. bf16/fp16 inputs are decoded in float32; float64 stays float64.

    The same as `mgrec.postprocess.reference.decode_reference`, the per-point loop that defines it,
    computed a level at a time (tests/postprocess/test_decode.py checks that they agree).
    """
    if not len(cls_logits) == len(offsets) == len(masks) == len(strides):
        raise ValueError(
            f"decode_video: got {len(cls_logits)} logits, {len(offsets)} offsets, {len(masks)} masks and "
            f"{len(strides)} strides; expected one of each per pyramid level"
        )
    all_segments, all_scores, all_labels, all_points = [], [], [], []
    for logits, level_offsets, mask, stride in zip(cls_logits, offsets, masks, strides):
        num_classes = logits.shape[1]
        probs = torch.sigmoid(logits.to(torch.promote_types(logits.dtype, torch.float32)))
        is_candidate = (probs > cfg.pre_nms_thresh) & mask[:, None]
        flat_index = _top_k(probs.flatten(), is_candidate.flatten(), cfg.pre_nms_topk)
        flat_scores = probs.flatten()[flat_index]

        point_index = torch.div(flat_index, num_classes, rounding_mode="floor")
        position = (point_index * stride).to(probs.dtype)
        distances = level_offsets[point_index].to(probs.dtype) * stride
        segments = torch.stack([position - distances[:, 0], position + distances[:, 1]], dim=1)
        long_enough = (segments[:, 1] - segments[:, 0]) > cfg.min_duration

        all_segments.append(segments[long_enough])
        all_scores.append(flat_scores[long_enough])
        all_labels.append((flat_index % num_classes)[long_enough])
        all_points.append(position[long_enough])
    return RawDetections(torch.cat(all_segments), torch.cat(all_scores), torch.cat(all_labels), torch.cat(all_points))


def _top_k(scores: Tensor, is_candidate: Tensor, k: int) -> Tensor:
    """Indices of the `k` highest scores among the candidates, highest first; ties: the lower index first."""
    if scores.shape[0] > k:
        # Sorting them all would be most of the decoding time: sort only those scoring at least
        # the k-th highest candidate (ties included, so the order among them is kept).
        candidate_scores = scores.masked_fill(~is_candidate, -float("inf"))
        kth = torch.kthvalue(candidate_scores, scores.shape[0] - k + 1).values  # (faster than topk here)
        is_candidate = is_candidate & (scores >= kth)
    index = torch.nonzero(is_candidate).squeeze(1)
    # A stable sort keeps the index (point, class) order among equal scores: reproducible results.
    return index[torch.sort(scores[index], descending=True, stable=True).indices[:k]]
