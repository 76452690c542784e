"""Detection losses: sigmoid focal loss for classes, 1D DIoU loss for boundaries (ActionFormer).

Both sums are divided by an exponential moving average of the number of positive points, which
keeps the loss scale steady when a batch happens to hold few or many actions.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mgrec.config import TrainConfig

# Keeps divisions finite for degenerate (zero-length) segments.
EPS = 1e-8
# Weight of the old value in the positive-count moving average.
NORMALISER_MOMENTUM = 0.9


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Focal loss summed over all elements: alpha_t * (1 - p_t)^gamma * BCE(logits, targets).

    p_t is the predicted probability of the target (p for target 1, 1 - p for target 0) and
    alpha_t = alpha for target 1, 1 - alpha for target 0; alpha < 0 turns the weighting off.
    Soft targets (label smoothing) are interpolated the same way.
    """
    logits, targets = logits.float(), targets.float()
    probs = torch.sigmoid(logits)
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_target = probs * targets + (1 - probs) * (1 - targets)
    loss = cross_entropy * (1 - p_target) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss.sum()


def diou_loss_1d(pred_offsets: Tensor, target_offsets: Tensor) -> Tensor:
    """1D distance-IoU loss summed over M pairs of (left, right) distances from the same point (M, 2).

    Per pair: 1 - IoU + (distance between the centres / length of the enclosing segment)^2.
    Distances must be non-negative.
    """
    pred_offsets, target_offsets = pred_offsets.float(), target_offsets.float()
    pred_left, pred_right = pred_offsets[:, 0], pred_offsets[:, 1]
    target_left, target_right = target_offsets[:, 0], target_offsets[:, 1]

    intersection = torch.minimum(pred_left, target_left) + torch.minimum(pred_right, target_right)
    union = (pred_left + pred_right) + (target_left + target_right) - intersection
    iou = intersection / union.clamp(min=EPS)

    enclosing = torch.maximum(pred_left, target_left) + torch.maximum(pred_right, target_right)
    # Each centre lies at (right - left) / 2 from the point.
    centre_distance = 0.5 * ((pred_right - pred_left) - (target_right - target_left))
    loss = 1 - iou + centre_distance**2 / (enclosing**2).clamp(min=EPS)
    return loss.sum()


def smooth_labels(targets: Tensor, epsilon: float) -> Tensor:
    """Label smoothing for K sigmoid classes: targets * (1 - epsilon) + epsilon / (K + 1)."""
    return targets * (1 - epsilon) + epsilon / (targets.shape[-1] + 1)


class LossParts(NamedTuple):
    total: Tensor  # cls + reg_loss_weight * reg, what to backpropagate
    cls: Tensor  # normalised focal loss (detached values are what to log)
    reg: Tensor  # normalised DIoU loss
    num_pos: float  # the positive count that updated the normaliser


class DetectionLoss:
    """Focal + DIoU loss over all pyramid points, normalised by a moving average of #positives.

    The normaliser N starts at `cfg.init_loss_norm` and is updated on every call as
    N = 0.9 * N + 0.1 * max(#positives, 1): call it once per training step, not for validation.
    Save `loss_norm` with the checkpoint to resume exactly.

    Under DDP each rank sees its own batch: all-reduce (sum) the positive count over ranks
    and pass it as `num_pos_override`, so every rank keeps the same normaliser.
    """

    def __init__(self, cfg: TrainConfig):
        self.focal_alpha = cfg.focal_alpha
        self.focal_gamma = cfg.focal_gamma
        self.label_smoothing = cfg.label_smoothing
        self.reg_loss_weight = cfg.reg_loss_weight
        self.loss_norm = float(cfg.init_loss_norm)

    def __call__(
        self,
        cls_logits: Tensor,
        offsets: Tensor,
        cls_targets: Tensor,
        reg_targets: Tensor,
        positive: Tensor,
        valid: Tensor,
        num_pos_override: float | Tensor | None = None,
    ) -> LossParts:
        """Loss of a batch with all levels concatenated: logits (B, P, K), offsets (B, P, 2),
        targets from `assign_batch`, `valid` (B, P) bool for unpadded points.

        The class loss covers every valid point; the regression loss only positive ones.
        """
        positive = positive & valid
        num_pos = float(positive.sum()) if num_pos_override is None else float(num_pos_override)
        self.loss_norm = NORMALISER_MOMENTUM * self.loss_norm + (1 - NORMALISER_MOMENTUM) * max(num_pos, 1.0)

        targets = cls_targets[valid]
        if self.label_smoothing > 0:
            targets = smooth_labels(targets, self.label_smoothing)
        cls_loss = sigmoid_focal_loss(cls_logits[valid], targets, self.focal_alpha, self.focal_gamma) / self.loss_norm
        # With no positives this is an empty sum: 0, still connected to the graph.
        reg_loss = diou_loss_1d(offsets[positive], reg_targets[positive]) / self.loss_norm
        return LossParts(cls_loss + self.reg_loss_weight * reg_loss, cls_loss, reg_loss, num_pos)
