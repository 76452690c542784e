import math

import numpy as np
import pytest

from mgrec.config import BalanceConfig
from mgrec.data.augment import repeat_factors
from mgrec.data.balance import (
    ClassBalancer,
    adaptive_weights,
    anchor_probabilities,
    lvis_repeat_factors,
    rarity,
)
from mgrec.data.datasets import VideoSample, draw_training_crops
from mgrec.timeline import FeatureGrid

COUNTS = [100, 10, 1, 0]  # a hand-made long tail, and an absent class


def test_lvis_repeat_factor_on_a_hand_made_histogram():
    # shares 100/111, 10/111, 1/111; t = 0.1: sqrt(0.1 * 111 / Z) where that exceeds 1
    assert lvis_repeat_factors(COUNTS, 0.1) == pytest.approx([1.0, math.sqrt(1.11), math.sqrt(11.1), 1.0])
    assert lvis_repeat_factors(COUNTS, 0.001) == [1.0, 1.0, 1.0, 1.0]  # every class above t


def test_adaptive_weights_are_rarity_times_relative_difficulty():
    assert rarity(COUNTS) == pytest.approx([1.0, math.sqrt(10), 10.0, 1.0])
    # difficulty relative to the mean over present classes (0.4): 0.5, 1, 1.5; the absent class is ignored
    weights = adaptive_weights(COUNTS, [0.2, 0.4, 0.6, 99.0])
    assert weights[:3] == pytest.approx([0.5, math.sqrt(10), 15.0])
    assert adaptive_weights(COUNTS, [1.0] * 4)[:3] == pytest.approx(rarity(COUNTS)[:3])  # before any epoch


def test_eq1_replicates_anchors_and_draws_uniformly():
    balancer = ClassBalancer(BalanceConfig("eq1", alpha=16), COUNTS)
    assert balancer.replication() == repeat_factors(COUNTS, 16) == [1, 2, 5, 1]
    assert balancer.weights() is None
    assert ClassBalancer(BalanceConfig("repeat_factor"), COUNTS).replication() == [1, 1, 1, 1]
    assert ClassBalancer(BalanceConfig(), COUNTS).effective_weights() == [1.0] * 4


def test_crop_shares_follow_the_weights_and_sum_to_one():
    balancer = ClassBalancer(BalanceConfig("eq1", alpha=16), COUNTS)
    shares = balancer.crop_shares()
    assert sum(shares) == pytest.approx(1.0)
    assert shares == pytest.approx([100 / 125, 20 / 125, 5 / 125, 0.0])


def test_adaptive_difficulty_is_a_moving_average_that_survives_resume():
    balancer = ClassBalancer(BalanceConfig("adaptive", difficulty_momentum=0.5), [10, 10, 10])
    balancer.update([8.0, 1.0, 0.0], [10.0, 10.0, 0.0])  # the first epoch replaces the prior 1.0
    assert balancer.difficulty == pytest.approx([0.8, 0.1, 1.0])  # no positives: kept
    balancer.update([2.0, 1.0, 3.0], [10.0, 10.0, 10.0])
    assert balancer.difficulty == pytest.approx([0.5, 0.1, 0.65])
    # same sizes: the harder a class, the more crops it anchors
    shares = balancer.crop_shares()
    assert shares[2] > shares[0] > shares[1]
    restored = ClassBalancer(BalanceConfig("adaptive", difficulty_momentum=0.5), [10, 10, 10])
    restored.load_state(balancer.state())
    assert restored.weights() == balancer.weights() and restored.epochs_seen == 2
    with pytest.raises(ValueError, match="2 classes"):
        restored.load_state({"difficulty": [1.0, 1.0], "epochs_seen": 1})


def test_the_fixed_methods_ignore_the_learning_signal():
    balancer = ClassBalancer(BalanceConfig("repeat_factor"), COUNTS)
    before = balancer.weights()
    balancer.update([5.0] * 4, [10.0] * 4)
    assert balancer.weights() == before


def test_weighted_draws_follow_the_class_weights():
    grid = FeatureGrid(fps=10.0, stride=1, window=1)
    video = VideoSample("v", np.zeros((1000, 2), np.float32), np.array([[100.0, 110.0], [800.0, 810.0]]),
                        np.array([0, 1]), grid)
    labels = np.array([0, 1])
    probabilities = anchor_probabilities(labels, [1.0, 9.0])
    assert probabilities.tolist() == pytest.approx([0.1, 0.9])
    crops = draw_training_crops([video], [(0, 0), (0, 1)], 4000, 100, np.random.default_rng(3), probabilities)
    assert len(crops) == 4000  # balancing moves crops between classes, never adds any
    assert 0.88 < sum(c.start > 500 for c in crops) / len(crops) < 0.92
    assert anchor_probabilities(labels, None) is None
