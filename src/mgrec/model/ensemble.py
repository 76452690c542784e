"""Several detectors with one pyramid, run as one: per-point class probabilities and offsets averaged.

For members m = 1..M that share the feature grid and the pyramid (levels, strides), at every point
of every level and for every class k:

    p_k     = (1/M) sum_m sigmoid(logit_{m,k})
    offsets = (1/M) sum_m offsets_m

The output is a `DetectorOutput` whose logits are logit(p_k) (computed in float64, so that an
ensemble of one detector gives back its own logits), so decoding and NMS run once, exactly as for
a single detector: an ensemble is used wherever a detector is (offline, online, evaluation).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mgrec.model.detector import Detector, DetectorOutput

# Probabilities are kept inside [EPS, 1 - EPS] before the logit: it stays finite.
EPS = 1e-12


def mean_probability_logits(logits: list[Tensor]) -> Tensor:
    """logit(mean_m sigmoid(logits[m])), in the dtype of the first member's logits."""
    probability = torch.stack([member.double().sigmoid() for member in logits]).mean(0)
    return torch.logit(probability.clamp(EPS, 1 - EPS)).to(logits[0].dtype)


class EnsembleDetector(nn.Module):
    """Members with the same strides, classes and input size; `forward` as `Detector.forward`."""

    def __init__(self, members: list[Detector]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for member in members[1:]:
            if member.strides != first.strides:
                raise ValueError(f"members have different pyramids (strides {first.strides} and {member.strides})")
        self.members = nn.ModuleList(members)
        self.strides = first.strides
        self.max_div_factor = first.max_div_factor
        self.input_dim = first.input_dim

    def forward(self, x: Tensor, mask: Tensor) -> DetectorOutput:
        outputs = [member(x, mask) for member in self.members]
        levels = range(len(self.strides))
        return DetectorOutput(
            cls_logits=[mean_probability_logits([o.cls_logits[level] for o in outputs]) for level in levels],
            offsets=[torch.stack([o.offsets[level] for o in outputs]).mean(0) for level in levels],
            masks=outputs[0].masks,
            strides=outputs[0].strides,
        )
