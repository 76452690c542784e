"""A detector trained end to end from decoded clips: a frozen clip encoder with trainable adapters,
then the feature detector (AdaTAD's route; `data.videos` in the config).

    frames (B, T, F, H, W, 3) uint8, mask (B, 1, T)
      -> the encoder on the valid clips only (padding clips are never encoded)
      -> features (B, C, T), zero where the mask is False
      -> the detector, exactly as on extracted features

The encoder is any module taking uint8 clips (1, N, F, H, W, 3) to (1, N, C) features and naming
its frozen part by `frozen_prefixes` (`mgrec.extract.adapters.AdaptedVideoMAE`: the VideoMAE and its
pooling norm). Built by the CLI and handed in, so that training never imports the extraction code.

What a run stores: the state dict of this module holds the detector (`detector.*`) and the
encoder's trainable part (`encoder.adapters.*`) only; the frozen backbone's weights stay in their
own file and are never copied into a checkpoint. An EMA copy (`ema_copy`) shares the frozen
backbone instead of holding a second one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mgrec.errors import InputError

# The feature recipe name of an end-to-end run (its `feature_recipe.json`): VideoMAE with the run's adapters.
ADAPTED_BACKBONE = "videomae-adapted"
DETECTOR_PREFIX = "detector."
ENCODER_PREFIX = "encoder."


class EndToEndDetector(nn.Module):
    def __init__(self, encoder: nn.Module, detector: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.detector = detector

    def frozen_modules(self) -> dict[str, nn.Module]:
        """The encoder's frozen children by name (`frozen_prefixes`): never trained, never saved."""
        frozen = getattr(self.encoder, "frozen_prefixes", ())
        return {name: module for name, module in self.encoder.named_children() if name in frozen}

    def encode(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Features (B, C, T) of the valid clips of `frames` (B, T, F, H, W, 3); zeros where `mask` is False."""
        if frames.ndim != 6 or tuple(mask.shape) != (frames.shape[0], 1, frames.shape[1]):
            raise InputError(f"frames {tuple(frames.shape)} with mask {tuple(mask.shape)}: expected frames (B, T, "
                             "F, H, W, 3) and a mask (B, 1, T) of the same B and T")
        valid = mask[:, 0]
        if not valid.any():
            # Nothing to encode (a batch of padding only): the encoder is never called on zero clips, which
            # it cannot take; the features are all padding, zero as everywhere else.
            return frames.new_zeros(frames.shape[0], self.detector.input_dim, frames.shape[1], dtype=torch.float32)
        features = self.encoder(frames[valid][None])[0]  # (N, C): one pass over every valid clip of the batch
        out = features.new_zeros(frames.shape[0], frames.shape[1], features.shape[-1])
        out[valid] = features
        return out.transpose(1, 2)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor):
        return self.detector(self.encode(frames, mask).float(), mask)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """The detector's groups, plus the adapters: matrices and conv kernels decay, biases and scales not."""
        groups = self.detector.param_groups(weight_decay)
        trainable = [(name, p) for name, p in self.encoder.named_parameters() if p.requires_grad]
        groups.append({"params": [p for _, p in trainable if p.ndim > 1], "weight_decay": weight_decay})
        groups.append({"params": [p for _, p in trainable if p.ndim <= 1], "weight_decay": 0.0})
        return [group for group in groups if group["params"]]

    # -- what a checkpoint holds --------------------------------------------------------------

    def state_dict(self, *args, **kwargs):
        full = super().state_dict(*args, **kwargs)
        frozen = tuple(f"{kwargs.get('prefix', '')}{ENCODER_PREFIX}{name}." for name in self.frozen_modules())
        for key in [k for k in full if k.startswith(frozen)]:
            del full[key]
        return full

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        own = self.state_dict()
        if strict:
            missing, unexpected = sorted(set(own) - set(state_dict)), sorted(set(state_dict) - set(own))
            if missing or unexpected:
                raise RuntimeError(f"end-to-end state dict: missing keys {missing[:3]}, unexpected keys "
                                   f"{unexpected[:3]}")
        return super().load_state_dict(state_dict, strict=False, assign=assign)


def ema_copy(model: nn.Module) -> nn.Module:
    """A deep copy for the weights' moving average, in eval mode and without gradients; an end-to-end
    model's frozen backbone is shared, not copied (it never changes, and it is most of the memory)."""
    frozen = model.frozen_modules().values() if isinstance(model, EndToEndDetector) else ()
    memo = {id(module): module for module in frozen}
    return copy.deepcopy(model, memo).eval().requires_grad_(False)


def detector_of(model: nn.Module) -> nn.Module:
    """The feature detector inside `model` (the model itself when it reads features)."""
    return model.detector if isinstance(model, EndToEndDetector) else model


def split_state(state: dict[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """An end-to-end checkpoint's state -> (the detector's state, the encoder's trainable state), each
    without its prefix; InputError naming `source` when it holds no detector (not an end-to-end run's)."""
    detector = {k[len(DETECTOR_PREFIX):]: v for k, v in state.items() if k.startswith(DETECTOR_PREFIX)}
    encoder = {k[len(ENCODER_PREFIX):]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    if not detector or len(detector) + len(encoder) != len(state):
        raise InputError(f"{source}: not the weights of an end-to-end run (expected only detector.* and encoder.* "
                         "tensors)")
    return detector, encoder
