"""The detector: encoder (feature pyramid) -> per-level LayerNorm -> detection head.

The encoder reads one or several input streams (`model.fusion`: `mgrec.model.fusion`).
Three variants behind one interface (`build_detector(ModelConfig)`):
- `mgrec`: DyFADet's DynE encoder with the paper's multi-scale spatial-temporal attention head;
- `dyfadet`: DynE encoder with DyFADet's dynamic (DFA) cross-scale head;
- `actionformer`: local-attention transformer encoder with ActionFormer's conv head.
The neck between encoder and head is a channel LayerNorm per level (DyFADet's "identity" neck).
`mgrec.model.reference.ReferenceDetector` runs the same parameters through the paper-shaped forward.

Weights are stored as the detector's state dict; `upgrade_state_dict` reads the dicts of the earlier
state format 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mgrec.config import ModelConfig, check_model
from mgrec.devices import float32_default
from mgrec.errors import InputError
from mgrec.model.fusion import build_encoder
from mgrec.model.heads import DetectionHead, build_head
from mgrec.model.masking import apply_mask
from mgrec.model.norm import ChannelLayerNorm

# The layout of the detector's state dict, format 2: the DFA gate and the DynE depthwise kernels are named
# parameters; in format 1 they were nn.Conv1d modules (`upgrade_state_dict` reads it).


@dataclass
class DetectorOutput:
    """Per pyramid level l (stride 2**l), all time-major.

    cls_logits[l]: (B, T_l, K) raw class logits; offsets[l]: (B, T_l, 2) non-negative distances
    from each position to the segment start and end, in units of that level's stride;
    masks[l]: (B, T_l) bool, True at real positions; strides[l] = 2**l.
    """

    cls_logits: list[Tensor]
    offsets: list[Tensor]
    masks: list[Tensor]
    strides: list[int]


# How far a compiled network's logits may stray from the network's own (torch.compile is checked against it before
# it is used, in training and in streaming): float sums in another order move them by about 1e-5 in float32; bf16's
# 8-bit mantissa by far more.
COMPILED_LOGIT_TOLERANCE = {None: 1e-3, torch.bfloat16: 0.1}


def logits_apart(own: DetectorOutput, other: DetectorOutput) -> float:
    """The largest difference between two outputs' class logits at the points inside the video (`own.masks`):
    what padding holds is never decoded."""
    return max((float((a.detach().float() - b.detach().float()).abs()[m].max()) for a, b, m in
                zip(own.cls_logits, other.cls_logits, own.masks) if m.any()), default=0.0)


class Detector(nn.Module):
    """Features (B, C, T) and a mask (B, 1, T) -> `DetectorOutput`. T must divide by `max_div_factor`."""

    def __init__(self, cfg: ModelConfig, encoder: nn.Module, head: DetectionHead) -> None:
        super().__init__()
        self.input_dim = cfg.input_dim
        self.strides = [2**level for level in range(cfg.num_levels)]
        # Every level halves T exactly; the local attention pads internally, so the largest
        # stride is the only constraint for all variants.
        self.max_div_factor = self.strides[-1]
        self.encoder = encoder
        self.neck = nn.ModuleList([ChannelLayerNorm(cfg.embed_dim) for _ in self.strides])
        self.head = head

    def forward(self, features: Tensor, mask: Tensor) -> DetectorOutput:
        features = self._checked_features(features)
        batch, channels, length = features.shape
        if channels != self.input_dim:
            raise InputError(f"features have {channels} channels, the model expects input_dim={self.input_dim}")
        if not isinstance(mask, Tensor) or mask.shape != (batch, 1, length) or mask.dtype != torch.bool:
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
            raise InputError(f"mask must be a bool tensor of shape {(batch, 1, length)}, got {got}")
        if length == 0 or length % self.max_div_factor != 0:
            raise InputError(f"sequence length {length} is not a positive multiple of "
                             f"max_div_factor={self.max_div_factor}")
        # Padded positions may hold anything (zeros, noise, even NaN); the blocks expect zeros.
        x = torch.where(mask, features, 0.0)
        feats, masks = self.encoder(x, mask)
        feats = [apply_mask(norm(f), m) for norm, f, m in zip(self.neck, feats, masks)]
        cls_logits, offsets = self.head(feats, masks)
        return DetectorOutput(cls_logits, offsets, [m.squeeze(1) for m in masks], list(self.strides))

    def _checked_features(self, features: object) -> Tensor:
        """Features as the network's weights take them: a real tensor (B, C, T), in the weights' dtype (a float64
        or float16 tensor was a dtype error deep inside a convolution; a numpy array a TypeError of torch.where).
        Under an autocast, the autocast then casts for each operation as before."""
        if not isinstance(features, Tensor):
            hint = ": torch.from_numpy(array) makes one" if type(features).__module__ == "numpy" else ""
            raise InputError(f"features must be a torch tensor (B, C, T), got {type(features).__name__}{hint}")
        if features.dim() != 3:
            raise InputError(f"features must be a tensor of shape (B, C, T), got shape {tuple(features.shape)}"
                             + (": add the batch dim with features[None]" if features.dim() == 2 else ""))
        if features.is_complex() or features.dtype == torch.bool:
            raise InputError(f"features must be real numbers, got {features.dtype}")
        dtype = next(self.parameters()).dtype
        return features if features.dtype == dtype else features.to(dtype)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: decay on the conv kernels and linear matrices only, as in the
        released training code; not on biases, norms, LayerScales, regression Scales or fusion
        weights. The kernels and matrices are exactly the parameters of two or more dims (the
        others are per-channel vectors or scalars). Each group keeps `parameters()` order."""
        decay = [p for p in self.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.parameters() if p.dim() < 2]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_detector(cfg: ModelConfig) -> Detector:
    """The detector for `cfg.variant` (mgrec, dyfadet or actionformer)."""
    if not isinstance(cfg, ModelConfig):  # build_detector(config) of a whole Config: "no attribute 'variant'"
        raise InputError(f"build_detector takes a model config (config.model), got {type(cfg).__name__}")
    check_model(cfg)  # also run when a config file is loaded, naming the file
    with float32_default():
        return Detector(cfg, build_encoder(cfg), build_head(cfg))


# State format 1 -> 2: the DFA gate's conv became the DFA's own parameters, and the five DynE
# depthwise convs became parameters of the layer's token mixer. Shapes are unchanged.
_RENAMED_IN_FORMAT_2 = [
    (re.compile(r"(^|\.)gate_logits\.(weight|bias)$"), r"\1gate_\2"),
    (
        re.compile(r"(^|\.)(instance_gate|instance_value|window_gate|window_conv|expanded_conv)\.(weight|bias)$"),
        r"\1mixer.\2_\3",
    ),
]


def upgrade_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A detector state dict of state format 1 or 2 -> format 2 (today's).

    Format 1 -> 2 renames, shapes unchanged:
        <dfa>.gate_logits.weight / .bias           -> <dfa>.gate_weight / gate_bias
        <dyne>.<kernel>.weight / .bias             -> <dyne>.mixer.<kernel>_weight / _bias
    for <kernel> in instance_gate, instance_value, window_gate, window_conv, expanded_conv.
    Keys may carry any prefix (such as the `ema.` of a weights file). Pure: a new dict in the same
    order, holding the same tensors; a dict already in format 2 comes back equal (idempotent).
    """
    upgraded = {}
    for key, value in state.items():
        for pattern, replacement in _RENAMED_IN_FORMAT_2:
            key = pattern.sub(replacement, key)
        upgraded[key] = value
    return upgraded
