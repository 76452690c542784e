"""The detector: encoder (feature pyramid) -> per-level LayerNorm -> detection head.

Three variants behind one interface (`build_detector(ModelConfig)`):
- `mgrec`: DyFADet's DynE encoder with the paper's multi-scale spatial-temporal attention head;
- `dyfadet`: DynE encoder with DyFADet's dynamic (DFA) cross-scale head;
- `actionformer`: local-attention transformer encoder with ActionFormer's conv head.
The neck between encoder and head is a channel LayerNorm per level (DyFADet's "identity" neck).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mgrec.config import MODEL_VARIANTS, ModelConfig
from mgrec.errors import InputError
from mgrec.model.blocks import ChannelLayerNorm, apply_mask
from mgrec.model.encoders import PyramidEncoder, build_encoder
from mgrec.model.heads import DetectionHead, build_head


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


class Detector(nn.Module):
    """Features (B, C, T) and a mask (B, 1, T) -> `DetectorOutput`. T must divide by `max_div_factor`."""

    def __init__(self, cfg: ModelConfig, encoder: PyramidEncoder, head: DetectionHead) -> None:
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
        batch, channels, length = features.shape
        if channels != self.input_dim:
            raise ValueError(f"features have {channels} channels, the model expects input_dim={self.input_dim}")
        if mask.shape != (batch, 1, length) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool of shape {(batch, 1, length)}, got {mask.dtype} {tuple(mask.shape)}")
        if length % self.max_div_factor != 0:
            raise ValueError(f"sequence length {length} is not a multiple of max_div_factor={self.max_div_factor}")
        # Padded positions may hold anything (zeros, noise, even NaN); the blocks expect zeros.
        x = torch.where(mask, features, 0.0)
        feats, masks = self.encoder(x, mask)
        feats = [apply_mask(norm(f), m) for norm, f, m in zip(self.neck, feats, masks)]
        cls_logits, offsets = self.head(feats, masks)
        return DetectorOutput(cls_logits, offsets, [m.squeeze(1) for m in masks], list(self.strides))

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW parameter groups: decay on conv/linear weights only (not on biases, norms,
        LayerScales, regression Scales or fusion weights), as in the released training code."""
        decay, no_decay = [], []
        for module in self.modules():
            for name, param in module.named_parameters(recurse=False):
                if isinstance(module, (nn.Conv1d, nn.Linear)) and name == "weight":
                    decay.append(param)
                else:
                    no_decay.append(param)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _check(cfg: ModelConfig) -> None:
    """Model settings that the blocks cannot work with, reported by config key."""

    def fail(key: str, expected: str) -> None:
        raise InputError(f"model config [model.{key}]: expected {expected}, got {getattr(cfg, key)!r}")

    if cfg.variant not in MODEL_VARIANTS:
        fail("variant", "one of " + ", ".join(MODEL_VARIANTS))
    for key in ("input_dim", "num_classes", "embed_dim", "mlp_dim", "head_dim", "num_levels", "head_layers"):
        if getattr(cfg, key) < 1:
            fail(key, "a positive integer")
    if cfg.stem_layers < 0:
        fail("stem_layers", "a non-negative integer")
    for key in ("head_kernel", "window_size", "attention_kernel", "transformer_window"):
        if getattr(cfg, key) < 1 or getattr(cfg, key) % 2 != 1:
            fail(key, "an odd positive integer (centred kernels/windows)")
    if cfg.kernel_expansion <= 0:
        fail("kernel_expansion", "a positive number")
    if not 0.0 <= cfg.drop_path < 1.0:
        fail("drop_path", "a rate in [0, 1)")
    if not 0.0 < cfg.cls_prior < 1.0:
        fail("cls_prior", "a probability in (0, 1)")
    if cfg.attention_mlp_ratio < 1:
        fail("attention_mlp_ratio", "a positive integer")
    if cfg.transformer_heads < 1 or cfg.embed_dim % cfg.transformer_heads != 0:
        fail("transformer_heads", f"a positive divisor of embed_dim={cfg.embed_dim}")


def build_detector(cfg: ModelConfig) -> Detector:
    """The detector for `cfg.variant` (mgrec, dyfadet or actionformer)."""
    _check(cfg)
    return Detector(cfg, build_encoder(cfg), build_head(cfg))
