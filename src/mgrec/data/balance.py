"""Class balancing: how often each class anchors a training crop (`balance.method`).

Training crops are drawn around annotation entries, the anchors (`mgrec.data.datasets`). A method
gives every class c a weight w_c, and an anchor of class c is drawn with probability proportional
to w_c. The number of crops per epoch never changes: balancing moves crops between classes, it does
not train longer. With Z_c the training instances of class c:

- none:          w_c = 1.
- eq1:           w_c = R_c = ceil(log2(alpha / Z_c)) + 1 for Z_c < alpha, else 1 (the paper's Eq. 1,
                 `mgrec.data.augment`); done by listing each anchor R_c times and drawing uniformly,
                 exactly as mgrec always did, so eq1 runs draw the same crops as before.
- repeat_factor: w_c = max(1, sqrt(t / f_c)), f_c = Z_c / sum_k Z_k the class's share of instances
                 (the LVIS repeat-factor rule, applied to instances, where mgrec samples).
- adaptive:      w_c = rarity_c x difficulty_c, recomputed every epoch, with no threshold:
                 rarity_c = sqrt(max_k Z_k / Z_c), and difficulty_c = D_c / mean_k D_k, where D_c is a
                 moving average over epochs of the class's missed probability on the training crops:
                 the mean of 1 - sigmoid(logit_c) over the pyramid points whose target is class c.
                 A class the network already finds gets fewer crops than its rarity alone would give;
                 one it keeps missing gets more. Before the first epoch D_c = 1 (rarity alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mgrec.config import BalanceConfig
from mgrec.data.augment import repeat_factors


def lvis_repeat_factors(counts: Sequence[int], threshold: float) -> list[float]:
    """max(1, sqrt(t / f_c)) per class, f_c its share of all instances (1 for an absent class)."""
    total = sum(counts)
    return [max(1.0, math.sqrt(threshold / (count / total))) if count else 1.0 for count in counts]


def rarity(counts: Sequence[int]) -> list[float]:
    """sqrt(max_k Z_k / Z_c): 1 for the most frequent class (1 for an absent class: it has no anchors)."""
    most = max(counts, default=0)
    return [math.sqrt(most / count) if count else 1.0 for count in counts]


def adaptive_weights(counts: Sequence[int], difficulty: Sequence[float]) -> list[float]:
    """rarity_c x difficulty_c / mean difficulty over the classes that have instances."""
    present = [d for count, d in zip(counts, difficulty) if count]
    mean = sum(present) / len(present) if present else 1.0
    relative = [d / mean if mean > 0 else 1.0 for d in difficulty]
    return [r * d for r, d in zip(rarity(counts), relative)]


class ClassBalancer:
    """Per-class anchor weights of one training run, and (adaptive) the difficulty it tracks.

    `replication()` is what eq1 lists each anchor with; `weights()` the per-class weights that
    repeat_factor and adaptive draw with (None: uniform draws over the listed anchors). After each
    epoch, `update(missed_sum, positives)` takes the epoch's per-class sums of missed probability
    and counts of positive points; `state()` / `load_state()` carry the difficulty across --resume.
    """

    def __init__(self, cfg: BalanceConfig, counts: Sequence[int]):
        self.cfg, self.counts = cfg, list(counts)
        self.difficulty = [1.0] * len(self.counts)
        self.epochs_seen = 0

    def replication(self) -> list[int]:
        """How many times each class's anchors are listed (eq1's R_c; 1 otherwise)."""
        if self.cfg.method == "eq1":
            return repeat_factors(self.counts, self.cfg.alpha)
        return [1] * len(self.counts)

    def weights(self) -> list[float] | None:
        """w_c for weighted draws, or None where anchors are drawn uniformly (none, eq1)."""
        if self.cfg.method == "repeat_factor":
            return lvis_repeat_factors(self.counts, self.cfg.repeat_threshold)
        if self.cfg.method == "adaptive":
            return adaptive_weights(self.counts, self.difficulty)
        return None

    def effective_weights(self) -> list[float]:
        """The factor by which each class's share of crops is multiplied, whatever the method."""
        weights = self.weights()
        return [float(w) for w in (weights if weights is not None else self.replication())]

    def crop_shares(self) -> list[float]:
        """Expected fraction of an epoch's crops anchored on each class."""
        mass = [count * w for count, w in zip(self.counts, self.effective_weights())]
        total = sum(mass)
        return [m / total if total else 0.0 for m in mass]

    def update(self, missed_sum: Sequence[float], positives: Sequence[float]) -> None:
        """Fold one epoch's per-class missed probability into the moving average (adaptive only).

        A class without positive points this epoch keeps its difficulty."""
        if self.cfg.method != "adaptive":
            return
        keep = self.cfg.difficulty_momentum if self.epochs_seen else 0.0  # the first epoch replaces the prior
        for c, (missed, count) in enumerate(zip(missed_sum, positives)):
            if count > 0:
                self.difficulty[c] = keep * self.difficulty[c] + (1 - keep) * float(missed) / float(count)
        self.epochs_seen += 1

    def state(self) -> dict:
        return {"difficulty": list(self.difficulty), "epochs_seen": self.epochs_seen}

    def load_state(self, state: dict | None) -> None:
        """Restore `state()`; None (a run saved before balancing existed) keeps the start values."""
        if state is None:
            return
        difficulty = [float(d) for d in state["difficulty"]]
        if len(difficulty) != len(self.counts):
            raise ValueError(f"balance state for {len(difficulty)} classes, the run has {len(self.counts)}")
        self.difficulty, self.epochs_seen = difficulty, int(state["epochs_seen"])


def anchor_probabilities(anchor_labels: np.ndarray, class_weights: Sequence[float] | None) -> np.ndarray | None:
    """Probability of drawing each anchor, proportional to its class's weight (None: uniform)."""
    if class_weights is None or len(anchor_labels) == 0:
        return None
    weights = np.asarray(class_weights, dtype=np.float64)[anchor_labels]
    return weights / weights.sum()
