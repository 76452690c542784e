"""ActionFormer-style label assignment: which pyramid points learn which ground-truth segment.

Every point of every pyramid level (index t on level l, stride s = 2**l) sits at position t*s on
the level-0 feature grid. A point is positive for a ground-truth segment [start, end] when
  1. it lies strictly inside the segment's centre region: [c - r*s, c + r*s] clipped to
     [start, end], with c the segment's centre and r the centre radius, and
  2. the larger of its distances to the start and the end lies in its level's regression range
     [reg_min, reg_max] (closed), so each level learns segments of its own scale.
When several segments qualify, the shortest wins; segments within 1e-3 of the shortest length
all give their class (multi-hot class target), and the regression target is the first of them.
Regression targets are (t*s - start, end - t*s) divided by s, as the model predicts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

# Segments whose lengths differ by at most this (grid units) count as equally short.
LENGTH_TIE_TOLERANCE = 1e-3


@dataclass
class Points:
    """All pyramid points concatenated level by level (finest first), t ascending within a level.

    This is the order of `torch.cat([level for level in output.cls_logits], dim=1)`.
    """

    positions: Tensor  # (P,) float: t * stride, in level-0 grid units
    strides: Tensor  # (P,) float: the stride of the point's level
    reg_min: Tensor  # (P,) float: the level's regression range, in level-0 grid units
    reg_max: Tensor  # (P,) float

    def __len__(self) -> int:
        return self.positions.shape[0]

    def to(self, device: torch.device | str) -> Points:
        return Points(*(values.to(device) for values in (self.positions, self.strides, self.reg_min, self.reg_max)))


class Targets(NamedTuple):
    """Training targets for P points (a leading batch dim B from `assign_batch`)."""

    cls_targets: Tensor  # (P, K) float 0/1, multi-hot on length ties, all 0 for negatives
    reg_targets: Tensor  # (P, 2) float: (left, right) distances in units of the point's stride; 0 for negatives
    positive: Tensor  # (P,) bool


def make_points(
    level_lengths: list[int],
    strides: list[int],
    regression_ranges: list[list[float]],
    device: torch.device | str = "cpu",
) -> Points:
    """The points of a pyramid whose level l has `level_lengths[l]` steps and stride `strides[l]`."""
    if not len(level_lengths) == len(strides) == len(regression_ranges):
        raise ValueError(
            f"make_points: {len(level_lengths)} level lengths, {len(strides)} strides and "
            f"{len(regression_ranges)} regression ranges; expected one of each per pyramid level"
        )
    positions, point_strides, reg_min, reg_max = [], [], [], []
    for length, stride, (low, high) in zip(level_lengths, strides, regression_ranges):
        positions.append(torch.arange(length, dtype=torch.float32, device=device) * stride)
        point_strides.append(torch.full((length,), float(stride), device=device))
        reg_min.append(torch.full((length,), float(low), device=device))
        reg_max.append(torch.full((length,), float(high), device=device))
    return Points(torch.cat(positions), torch.cat(point_strides), torch.cat(reg_min), torch.cat(reg_max))


def assign_targets(
    points: Points,
    gt_segments: Tensor,
    gt_labels: Tensor,
    num_classes: int,
    center_radius: float = 1.5,
    valid: Tensor | None = None,
) -> Targets:
    """Targets of one video: `gt_segments` (N, 2) [start, end] in level-0 grid units, `gt_labels` (N,).

    `valid` (P,) bool marks real (unpadded) points; invalid points are never positive.
    Vectorised over points x segments (a P x N matrix); N = 0 gives all-negative targets.
    """
    num_points = len(points)
    device = points.positions.device
    if gt_segments.ndim != 2 or gt_segments.shape[1] != 2 or gt_labels.shape != gt_segments.shape[:1]:
        raise ValueError(
            f"assign_targets: expected segments (N, 2) and labels (N,), got {tuple(gt_segments.shape)} "
            f"and {tuple(gt_labels.shape)}"
        )
    if gt_labels.numel() and (int(gt_labels.min()) < 0 or int(gt_labels.max()) >= num_classes):
        raise ValueError(f"assign_targets: labels must be in [0, {num_classes}), got {gt_labels.tolist()}")
    if gt_segments.shape[0] == 0:
        return Targets(
            torch.zeros(num_points, num_classes, device=device),
            torch.zeros(num_points, 2, device=device),
            torch.zeros(num_points, dtype=torch.bool, device=device),
        )

    gt_segments = gt_segments.to(device=device, dtype=torch.float32)
    starts, ends = gt_segments[:, 0][None, :], gt_segments[:, 1][None, :]  # (1, N)
    positions, strides = points.positions[:, None], points.strides[:, None]  # (P, 1)
    to_start, to_end = positions - starts, ends - positions  # (P, N)

    centres = 0.5 * (starts + ends)
    region_start = torch.maximum(centres - center_radius * strides, starts)
    region_end = torch.minimum(centres + center_radius * strides, ends)
    in_centre_region = (positions > region_start) & (positions < region_end)
    largest_distance = torch.maximum(to_start, to_end)
    in_range = (largest_distance >= points.reg_min[:, None]) & (largest_distance <= points.reg_max[:, None])
    qualifies = in_centre_region & in_range
    if valid is not None:
        qualifies &= valid.to(device)[:, None]

    lengths = (ends - starts).expand(num_points, -1)
    lengths = torch.where(qualifies, lengths, torch.inf)
    shortest, shortest_index = lengths.min(dim=1)  # argmin: the first of equally short segments
    positive = torch.isfinite(shortest)
    winners = (lengths <= shortest[:, None] + LENGTH_TIE_TOLERANCE) & positive[:, None]  # (P, N)

    one_hot = torch.nn.functional.one_hot(gt_labels.to(device).long(), num_classes).float()  # (N, K)
    cls_targets = (winners.float() @ one_hot).clamp(max=1.0)
    distances = torch.stack([to_start, to_end], dim=2)  # (P, N, 2)
    reg_targets = distances[torch.arange(num_points, device=device), shortest_index] / points.strides[:, None]
    reg_targets = reg_targets * positive[:, None]
    return Targets(cls_targets, reg_targets, positive)


def assign_batch(
    points: Points,
    gt_segments: list[Tensor],
    gt_labels: list[Tensor],
    num_classes: int,
    center_radius: float = 1.5,
    valid: Tensor | None = None,
) -> Targets:
    """`assign_targets` for each video of a batch, stacked to (B, P, K), (B, P, 2), (B, P).

    `valid` (B, P) bool marks the unpadded points of each video.
    """
    if len(gt_segments) != len(gt_labels):
        raise ValueError(f"assign_batch: {len(gt_segments)} segment tensors but {len(gt_labels)} label tensors")
    per_video = [
        assign_targets(
            points, segments, labels, num_classes, center_radius, None if valid is None else valid[b]
        )
        for b, (segments, labels) in enumerate(zip(gt_segments, gt_labels))
    ]
    return Targets(*(torch.stack(parts) for parts in zip(*per_video)))
