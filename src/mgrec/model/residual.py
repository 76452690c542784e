"""Residual-branch helpers shared by DyFADet's DynE layer and ActionFormer's transformer block.

Both wrap each residual branch in an "affine drop-path": a learnable per-channel scale
(LayerScale) followed by stochastic depth.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# The LayerScale start value of DyFADet's/ActionFormer's "affine drop-path" residuals: a new
# residual branch starts close to the identity and grows as training needs it.
LAYER_SCALE_INIT = 1e-4


class LayerScale(nn.Module):
    """A learnable per-channel scale on a residual branch (starts at `init`)."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale[:, None].to(x.dtype)  # the dtype rule of `mgrec.model.masking`


class DropPath(nn.Module):
    """Stochastic depth: while training, drop a residual branch for a random subset of samples."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"drop-path rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        kept = torch.rand(x.shape[0], 1, 1, device=x.device) < keep
        return x * kept.to(x.dtype) / keep


def residual_branch(dim: int, drop_path: float, layer_scale: bool) -> nn.Module:
    """DyFADet's "affine drop-path" (LayerScale then stochastic depth), or the plain identity."""
    parts = []
    if layer_scale:
        parts.append(LayerScale(dim, LAYER_SCALE_INIT))
    if drop_path > 0.0:
        parts.append(DropPath(drop_path))
    return nn.Sequential(*parts)
