"""The paper's spatial-temporal attention (Sec. 3.4, Eq. 4 and 5), read for 1D features.

The paper's module is CBAM's, written for 2D feature maps. On (B, C, T) clip features its two
branches become:
- Eq. 4, the paper's "temporal attention", pools over time, so it yields one gate per CHANNEL:
      a_T = sigmoid(MLP(AvgPool_T(F)) + MLP(MaxPool_T(F))),   MLP = C -> C/ratio -> C (ReLU),
  one MLP shared by both pooled vectors;
- Eq. 5, the paper's "spatial attention", pools over channels, so it yields one gate per TIME STEP:
      a_S = sigmoid(Conv_k([AvgPool_C(F); MaxPool_C(F)])),     a 2 -> 1 conv over time, kernel k (7).
They are applied one after the other, channel gate first (as in CBAM): F' = a_T * F, out = a_S(F') * F'.
Both respect the mask: the time pooling uses real positions only, and the (2, T) maps are zeroed at
padded positions before the conv, so padding never reaches a real position's gate.

Reference: `reference.spatial_temporal_attention`. The detection head runs this module on its
packed pyramid through `heads.attend_paths` (per-level pooling, a per-position scale, the three
paths of a tower layer in one pass).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mgrec.model.masking import apply_mask, masked_max, masked_mean, max_over


class SpatialTemporalAttention(nn.Module):
    """CBAM-style attention of the paper on (B, C, T) features with a (B, 1, T) mask (Eq. 4, 5)."""

    def __init__(self, dim: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"attention kernel must be odd, got {kernel_size}")
        hidden = max(1, dim // mlp_ratio)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.time_conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Channel gate (Eq. 4), then time gate (Eq. 5); zero at padded positions."""
        x = x * self.channel_gate(masked_mean(x, mask), masked_max(x, mask))
        return x * apply_mask(self.time_gate(x, mask), mask)

    def channel_gate(self, mean: Tensor, peak: Tensor) -> Tensor:
        """Eq. 4: (B, C, S) gates in (0, 1) from the time-pooled features (B, C, S), S pooled stretches."""
        pooled = torch.stack([mean, peak], dim=1).transpose(2, 3)  # (B, 2, S, C)
        return torch.sigmoid(self.channel_mlp(pooled).sum(dim=1)).transpose(1, 2)

    def time_gate(self, x: Tensor, mask: Tensor) -> Tensor:
        """Eq. 5: (B, 1, T) gates in (0, 1) from the channel-pooled maps (not masked)."""
        maps = torch.cat([x.mean(dim=1, keepdim=True), max_over(x, dim=1)], dim=1)
        maps = apply_mask(maps, mask)
        return torch.sigmoid(self.time_conv(maps))
