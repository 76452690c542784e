"""A second opinion on each detection's class: a classifier of whole gestures (`postprocess.second_opinion`).

On unseen subjects most of the demo's errors are one exercise taken for another at a true gesture. The
detector decides a class at each point from the context its layers see; this classifier looks at the
whole detected stretch at once, pooled into one vector (`segment_descriptor`), and each detection's score
s becomes

    s' = s ** (1 - w) * p ** w,     p = the classifier's probability of the detection's class on its stretch,

w = `postprocess.second_opinion` (0: off). The ranked list is sorted again by s'; the score threshold is
tuned on val on these scores, as on any others. Since p <= 1, s' <= s ** (1 - w): a candidate scoring below
threshold ** (1 / (1 - w)) before can never reach the threshold after (`lowest_score_that_can_pass`), which is
what lets a stream drop such candidates early.

The classifier is a multinomial logistic regression (class-weighted cross-entropy, L2 penalty, fitted by
LBFGS from zeros): convex and deterministic, so every seed of a run on the same data gets the same one (up to
float rounding). Applied after training it narrowed the seed spread of the demo default's test F1 (1.12 against
1.87 over four splits, `benchmarks/after_training.py --groups segment_classifier`); trained with, it is level
with the default on val and not narrower on every split (docs/quality.md, "Beyond the 2025 recipe"), so it is opt-in.
It is fitted once, before training, on the train split's gestures (each also with `JITTER` copies whose ends
move by up to a fifth of its length, as detected ends are off), on the features the network reads
(standardised per video where `data.normalize: video`), and saved in the run (`second_opinion.safetensors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from mgrec.config import Config
from mgrec.errors import InputError
from mgrec.records import Detection
from mgrec.run import RunDir, load_into
from mgrec.timeline import FeatureGrid

JITTER = 3  # moved copies of each training gesture
JITTER_SHARE = 0.2  # each end moves by up to this share of the gesture's length
WEIGHT_DECAY = 1e-2  # L2 penalty on the classifier's matrix
PARTS = 3  # the stretch's consecutive parts whose means the descriptor holds (order within the gesture)


def descriptor_dim(channels: int) -> int:
    """Length of `segment_descriptor` for features of `channels` channels."""
    return (3 + PARTS) * channels + 1


def stretch_steps(start: float, end: float, length: int) -> tuple[int, int]:
    """The whole steps [first, last) a stretch [start, end] (fractional feature indices) covers in a video of
    `length` steps: widened to whole steps, at least one, clipped to the video."""
    first = int(np.clip(np.floor(start), 0, length - 1))
    return first, int(np.clip(np.ceil(end), first + 1, length))


def segment_descriptor(features: np.ndarray, start: float, end: float) -> np.ndarray:
    """(T, C) features pooled over the steps of [start, end] (`stretch_steps`): mean, std and max per channel,
    the means of PARTS consecutive parts (a part too short to hold a step takes the whole stretch's mean), and
    log(steps): (3 + PARTS) C + 1."""
    first, last = stretch_steps(start, end, features.shape[0])
    stretch = features[first:last].astype(np.float64)
    parts = [part.mean(0) if len(part) else stretch.mean(0) for part in np.array_split(stretch, PARTS)]
    return np.concatenate([stretch.mean(0), stretch.std(0), stretch.max(0), *parts, [np.log(last - first)]])


class SegmentClassifier(torch.nn.Module):
    """Class probabilities of a stretch of features: softmax(W (d - mean) / std + b), d its descriptor.

    Buffers only (mean, std, weight, bias: what `second_opinion.safetensors` holds); `fit` makes one."""

    def __init__(self, descriptor_dim: int, num_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(descriptor_dim, dtype=torch.float64))
        self.register_buffer("std", torch.ones(descriptor_dim, dtype=torch.float64))
        self.register_buffer("weight", torch.zeros(num_classes, descriptor_dim, dtype=torch.float64))
        self.register_buffer("bias", torch.zeros(num_classes, dtype=torch.float64))

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    @classmethod
    def fit(cls, videos: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], num_classes: int,
            seed: int = 0) -> SegmentClassifier:
        """Fitted on videos given as (features (T, C), segments (N, 2) in feature steps, labels (N,)): every
        gesture and its JITTER moved copies (moves drawn from `seed`), classes weighted n / (K n_c)."""
        rng = np.random.default_rng(seed)
        descriptors, labels = [], []
        for features, segments, classes in videos:
            for (start, end), label in zip(segments, classes):
                moves = [(0.0, 0.0)] + [tuple(rng.uniform(-JITTER_SHARE, JITTER_SHARE, 2) * (end - start))
                                        for _ in range(JITTER)]
                for move_start, move_end in moves:
                    descriptors.append(segment_descriptor(features, start + move_start, end + move_end))
                    labels.append(int(label))
        if not descriptors:
            raise InputError("postprocess.second_opinion: the train split has no labelled gesture to fit the "
                             "whole-gesture classifier on; label some, or set postprocess.second_opinion: 0")
        x = torch.from_numpy(np.stack(descriptors))
        y = torch.tensor(labels)
        classifier = cls(x.shape[1], num_classes)
        classifier.mean.copy_(x.mean(0))
        classifier.std.copy_(x.std(0) + 1e-6)
        x = (x - classifier.mean) / classifier.std
        counts = torch.bincount(y, minlength=num_classes).to(torch.float64)
        class_weight = counts.sum() / (num_classes * counts.clamp(min=1.0))
        weight = torch.zeros_like(classifier.weight, requires_grad=True)
        bias = torch.zeros_like(classifier.bias, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=300, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            value = (torch.nn.functional.cross_entropy(x @ weight.T + bias, y, weight=class_weight)
                     + WEIGHT_DECAY * weight.pow(2).sum())
            value.backward()
            return value

        with torch.enable_grad():  # detection runs under inference mode; the fit needs gradients
            optimizer.step(loss)
        classifier.weight.copy_(weight.detach())
        classifier.bias.copy_(bias.detach())
        return classifier

    def probabilities(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities of N descriptors (N, D)."""
        x = (torch.from_numpy(np.asarray(descriptors, dtype=np.float64)) - self.mean) / self.std
        return torch.softmax(x @ self.weight.T + self.bias, dim=-1).numpy()


@dataclass(frozen=True)
class SecondOpinion:
    """A run's classifier and its weight w (`postprocess.second_opinion`), as detection applies them."""

    classifier: SegmentClassifier
    weight: float

    def rescored(self, detections: list[Detection], features: np.ndarray, grid: FeatureGrid,
                 standardize: Callable[[np.ndarray], np.ndarray] | None = None) -> list[Detection]:
        """A video's detections with each score s made s ** (1 - w) * p ** w (p: the classifier's probability of
        the detection's class on its stretch of `features`, through `standardize` as the network reads them),
        sorted by the new scores (ties keep their order)."""
        if not detections or self.weight == 0:
            return detections
        descriptors = []
        for d in detections:
            start, end = grid.seconds_to_index(d.start), grid.seconds_to_index(d.end)
            # the stretch alone goes through `standardize` (a per-channel affine map): a long video is not copied
            first, last = stretch_steps(start, end, len(features))
            stretch = features[first:last] if standardize is None else standardize(features[first:last])
            descriptors.append(segment_descriptor(stretch, start - first, end - first))
        probability = self.classifier.probabilities(np.stack(descriptors))
        w = self.weight
        scores = [d.score ** (1 - w) * float(probability[i, d.label_id]) ** w for i, d in enumerate(detections)]
        order = sorted(range(len(detections)), key=lambda i: -scores[i])
        return [replace(detections[i], score=scores[i]) for i in order]


# What a fitted classifier's buffers can hold: `fit` adds 1e-6 to every std, and its L2-penalised weights on
# standardised descriptors stay far below the bound. Outside these, probabilities are NaN or all-or-nothing.
MIN_STD, MAX_PARAMETER = 1e-6, 1e6


def run_second_opinion(run: RunDir, config: Config) -> SecondOpinion | None:
    """The second opinion a run's detections are rescored with (its `postprocess.second_opinion` weight and kept
    classifier), or None where the weight is 0."""
    weight = config.postprocess.second_opinion
    return SecondOpinion(run_classifier(run, config), weight) if weight > 0 else None


def run_classifier(run: RunDir, config: Config) -> SegmentClassifier:
    """The whole-gesture classifier a run keeps (`second_opinion.safetensors`), checked against its config's
    feature and class counts, and for values no fit makes (a std below MIN_STD, a weight or bias beyond
    MAX_PARAMETER): those give NaN or saturated probabilities, so every rescored score would be wrong."""
    classifier = SegmentClassifier(descriptor_dim(config.data.feature_dim), config.model.num_classes)
    load_into(classifier, run.read_second_opinion(config), run.second_opinion_path)
    problems = [f"std down to {classifier.std.min().item():.3g} (a fit gives at least {MIN_STD:g})"
                if classifier.std.min() < MIN_STD else None,
                *(f"{name} up to {values.abs().max().item():.3g} in size (a fit stays below {MAX_PARAMETER:g})"
                  for name, values in (("weight", classifier.weight), ("bias", classifier.bias))
                  if values.abs().max() > MAX_PARAMETER)]
    problems = [p for p in problems if p]
    if problems:
        raise InputError(f"{run.second_opinion_path}: {'; '.join(problems)}: not a fitted whole-gesture classifier "
                         "(damaged or edited); the run's detections cannot be rescored with it")
    return classifier


def lowest_score_that_can_pass(threshold: float, weight: float) -> float:
    """The least score before the second opinion that can reach `threshold` after it: threshold ** (1 / (1 -
    weight)), since the new score is at most s ** (1 - weight); a hair below it (float rounding of the rescoring,
    where the classifier's probability rounds to 1)."""
    return threshold ** (1.0 / (1.0 - weight)) * (1 - 1e-9) if weight > 0 else threshold
