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

from mgrec.config import Config, ModelConfig
from mgrec.errors import InputError
from mgrec.model.detector import Detector, DetectorOutput, build_detector, upgrade_state_dict
from mgrec.model.end_to_end import split_state
from mgrec.run import RunDir, load_into

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

    def forward(self, x: Tensor, mask: Tensor) -> DetectorOutput:
        outputs = [member(x, mask) for member in self.members]
        levels = range(len(self.strides))
        return DetectorOutput(
            cls_logits=[mean_probability_logits([o.cls_logits[level] for o in outputs]) for level in levels],
            offsets=[torch.stack([o.offsets[level] for o in outputs]).mean(0) for level in levels],
            masks=outputs[0].masks,
            strides=outputs[0].strides,
        )


def build_model(cfg: ModelConfig, ensemble_members: int | None = None) -> nn.Module:
    """The network of a run: one detector, or an ensemble of `ensemble_members` detectors of `cfg`."""
    if ensemble_members is None:
        return build_detector(cfg)
    return EnsembleDetector([build_detector(cfg) for _ in range(ensemble_members)])


def load_run_network(run: RunDir, checkpoint: str = "best") -> tuple[Config, list[str], nn.Module]:
    """A finished run's config, classes and network (one detector, or the members of a run made by
    `mgrec ensemble`) with the EMA weights of `checkpoint`, in eval mode on the CPU."""
    run.require_finished(checkpoint)
    run.read_format_version()
    config = run.read_config()
    classes = run.read_classes(expected_count=config.model.num_classes)
    ensemble = run.read_ensemble()
    if ensemble is not None and ensemble.get("fusion") == "detections":
        raise InputError(f"{run.path} fuses its members' detections: it has no single network (detect, evaluate "
                         "and report take it; other uses take one of its members, in members/)")
    weights, _ = run.read_weights(checkpoint, use_ema=True)
    if ensemble:  # counted before that many detectors are built: an edited count of 10**9 would exhaust memory
        held = {key.split(".")[1] for key in weights if key.startswith("members.")}
        if len(held) != ensemble["members"]:
            raise InputError(f"{run.format_path} [ensemble.members]: {ensemble['members']}, but "
                             f"{run.weights_path(checkpoint)} holds {len(held)} members")
    model = build_model(config.model, ensemble["members"] if ensemble else None)
    if config.end_to_end:  # its features come from the adapted backbone (extraction reads the adapters)
        weights, _ = split_state(weights, str(run.weights_path(checkpoint)))
    load_into(model, weights, run.weights_path(checkpoint), upgrade=upgrade_state_dict)
    return config, classes, model.eval()
