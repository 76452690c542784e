"""Focal and DIoU losses against hand-computed values; the normalised detection loss."""

import math

import pytest
import torch

from mgrec.config import TrainConfig
from mgrec.train.losses import DetectionLoss, diou_loss_1d, sigmoid_focal_loss, smooth_labels


def focal_by_hand(logit, target, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-logit))
    if target == 1:
        return -alpha * (1 - p) ** gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def test_focal_loss_two_element_hand_value():
    # logit 0, target 1: p = 0.5 -> 0.25 * 0.5^2 * ln 2 = 0.0433217...
    # logit 2, target 0: p = 0.8808 -> 0.75 * 0.8808^2 * ln(1 + e^2) = 1.2375...
    loss = sigmoid_focal_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))
    p = 1 / (1 + math.exp(-2))
    assert loss.item() == pytest.approx(0.25 * 0.25 * math.log(2) + 0.75 * p**2 * math.log(1 + math.exp(2)))
    assert loss.item() == pytest.approx(1.280880, abs=1e-6)


def test_focal_loss_with_gamma_zero_and_no_alpha_is_binary_cross_entropy():
    logits, targets = torch.tensor([[-1.0, 0.3], [2.0, 4.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    assert sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0).item() == pytest.approx(expected.item())


def test_focal_loss_down_weights_easy_examples():
    easy = sigmoid_focal_loss(torch.tensor([-6.0]), torch.tensor([0.0]))
    hard = sigmoid_focal_loss(torch.tensor([2.0]), torch.tensor([0.0]))
    assert easy.item() == pytest.approx(focal_by_hand(-6.0, 0))
    assert easy.item() < 1e-5 < hard.item()


def test_diou_is_zero_for_identical_segments():
    offsets = torch.tensor([[1.0, 3.0], [0.5, 0.5], [7.0, 0.0]])
    assert diou_loss_1d(offsets, offsets.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_diou_hand_value():
    # Pred [-1, 1], target [-1, 3] around the same point: IoU = 2 / 4; centres 0 and 1, enclosing
    # length 4 -> 1 - 0.5 + (1 / 4)^2 = 0.5625.
    loss = diou_loss_1d(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 3.0]]))
    assert loss.item() == pytest.approx(0.5625)


def test_diou_disjoint_segments_exceed_one():
    # Pred [0, 1] (left 0, right 1) vs target [-2, 0] (left 2, right 0): no overlap, centres 0.5 and -1,
    # enclosing [-2, 1] of length 3 -> 1 - 0 + (1.5 / 3)^2 = 1.25.
    loss = diou_loss_1d(torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0, 0.0]]))
    assert loss.item() == pytest.approx(1.25)


def test_diou_sums_over_pairs_and_is_finite_for_zero_length():
    pred = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    target = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    assert diou_loss_1d(pred, target).item() == pytest.approx(0.5625 + 1.0)


def test_smooth_labels():
    smoothed = smooth_labels(torch.tensor([[1.0, 0.0, 0.0]]), 0.1)
    assert smoothed[0].tolist() == pytest.approx([0.9 + 0.025, 0.025, 0.025])  # 0.1 / (3 + 1) = 0.025


def batch_inputs():
    # Two videos, three points each, two classes. Video 0: point 1 positive (class 1). Video 1: point 2
    # is padding, with a wild logit that must not matter.
    cls_logits = torch.tensor([[[0.0, -1.0], [1.0, 2.0], [-3.0, 0.5]], [[0.5, 0.5], [-2.0, 1.0], [50.0, -50.0]]])
    offsets = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]], [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
    cls_targets = torch.zeros(2, 3, 2)
    cls_targets[0, 1, 1] = 1
    reg_targets = torch.zeros(2, 3, 2)
    reg_targets[0, 1] = torch.tensor([1.0, 3.0])
    positive = torch.tensor([[False, True, False], [False, False, False]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    return cls_logits, offsets, cls_targets, reg_targets, positive, valid


def test_detection_loss_values_and_normaliser():
    cls_logits, offsets, cls_targets, reg_targets, positive, valid = batch_inputs()
    loss = DetectionLoss(TrainConfig(init_loss_norm=100.0, reg_loss_weight=2.0))
    parts = loss(cls_logits, offsets, cls_targets, reg_targets, positive, valid)

    norm = 0.9 * 100 + 0.1 * 1  # one positive
    focal = sum(
        focal_by_hand(logit, target)
        for logit, target in zip(cls_logits[valid].flatten().tolist(), cls_targets[valid].flatten().tolist())
    )
    assert loss.loss_norm == pytest.approx(norm)
    assert parts.num_pos == 1
    assert parts.cls.item() == pytest.approx(focal / norm, rel=1e-5)
    assert parts.reg.item() == pytest.approx(0.5625 / norm, rel=1e-5)
    assert parts.total.item() == pytest.approx((focal + 2.0 * 0.5625) / norm, rel=1e-5)

    # The moving average continues from the updated value; no positives count as one.
    loss(cls_logits, offsets, cls_targets, reg_targets, torch.zeros_like(positive), valid)
    assert loss.loss_norm == pytest.approx(0.9 * norm + 0.1 * 1)
    loss(cls_logits, offsets, cls_targets, reg_targets, positive, valid, num_pos_override=torch.tensor(7.0))
    assert loss.loss_norm == pytest.approx(0.9 * (0.9 * norm + 0.1) + 0.1 * 7)


def test_padded_points_do_not_contribute():
    cls_logits, offsets, cls_targets, reg_targets, positive, valid = batch_inputs()
    reference = DetectionLoss(TrainConfig())(cls_logits, offsets, cls_targets, reg_targets, positive, valid)
    cls_logits[1, 2] = torch.tensor([-50.0, 50.0])
    positive_on_padding = positive.clone()
    positive_on_padding[1, 2] = True  # a positive flag on padding is ignored too
    changed = DetectionLoss(TrainConfig())(cls_logits, offsets, cls_targets, reg_targets, positive_on_padding, valid)
    assert changed.total.item() == pytest.approx(reference.total.item())
    assert changed.num_pos == 1


def test_label_smoothing_changes_the_class_targets():
    cls_logits, offsets, cls_targets, reg_targets, positive, valid = batch_inputs()
    loss = DetectionLoss(TrainConfig(label_smoothing=0.1))
    parts = loss(cls_logits, offsets, cls_targets, reg_targets, positive, valid)
    targets = smooth_labels(cls_targets[valid], 0.1)
    expected = sigmoid_focal_loss(cls_logits[valid], targets) / (0.9 * 100 + 0.1)
    assert parts.cls.item() == pytest.approx(expected.item())
    assert targets.min().item() == pytest.approx(0.1 / 3)


def test_no_positives_still_backpropagates():
    cls_logits, offsets, cls_targets, reg_targets, positive, valid = batch_inputs()
    cls_logits.requires_grad_(True)
    offsets.requires_grad_(True)
    no_positives = torch.zeros_like(positive)
    parts = DetectionLoss(TrainConfig())(cls_logits, offsets, cls_targets, reg_targets, no_positives, valid)
    assert parts.reg.item() == 0.0
    parts.total.backward()
    assert offsets.grad is not None and offsets.grad.abs().sum() == 0
    assert cls_logits.grad[valid].abs().sum() > 0 and cls_logits.grad[~valid].abs().sum() == 0
