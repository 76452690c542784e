"""The mask contract, and the masked statistics, resampling and convolution every block builds on.

Features are (B, C, T) with a (B, 1, T) bool mask, True at real positions. The contract, written
down once here and followed by every block:
- Padding sits at the end of each sequence (the mask is True on a prefix of the time axis).
- A block's input is zero at padded positions and its output is zero there too.
- Inside a block, whatever can make padded positions non-zero (a norm's bias, a conv's bias) is
  multiplied by the mask again before anything that mixes over time (a conv, pooling, attention).
- Statistics over time (mean, max) use only real positions.
So a zero beyond the real end looks exactly like the zero padding of a convolution, and appending
any amount of padding (with any values in it, since the detector masks its input first) leaves
the outputs at real positions unchanged.

Time mixing is symmetric (non-causal) everywhere, as in DyFADet and ActionFormer.

The dtype rule, under bf16 autocast: features stay in the dtype the convolutions give them (bf16).
Autocast casts only the inputs of matrix products and convolutions; wherever a float32 parameter
(a gate kernel, a LayerScale, a path weight) meets bf16 features in an element-wise op, type
promotion would make the result float32, and every op after it would move twice the bytes. So such
parameters are cast to the features' dtype first (`.to(x.dtype)`, a no-op in float32). Float32 is
kept on purpose in two places only: the statistics of the channel LayerNorm (`norm.py`) and the
final predictors (`heads._in_float32`). tests/infer/test_agreement.py checks every module's
features under autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgrec.model import fastpath


def apply_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the padded positions of (B, C, T) features; `mask` is (B, 1, T) bool, or its 0/1 weights
    (`mask_weights`) when a block applies one mask many times.

    A bool mask is cast to the features' dtype first: multiplying by a bool tensor takes a slower
    type-promotion path on CPU. Weights already in the features' dtype skip the cast, which is a
    copy of its own (a few microseconds, paid about 200 times in a forward pass of the demo model).
    """
    return x * (mask if mask.dtype == x.dtype else mask.to(x.dtype))


def mask_weights(mask: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """A (B, 1, T) bool mask as 0/1 weights, for blocks that apply it many times (`apply_mask`)."""
    return mask.to(dtype)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over time of (B, C, T) features at real positions only -> (B, C, 1); `mask`: bool or its weights."""
    weights = mask.to(x.dtype)
    total = torch.bmm(x, weights.transpose(1, 2))  # one pass: sum_t x[b, c, t] * mask[b, t]
    return total / weights.sum(dim=-1, keepdim=True).clamp(min=1.0)


def masked_max(x: Tensor, mask: Tensor) -> Tensor:
    """Max over time of (B, C, T) features at real positions only -> (B, C, 1).

    A sequence without any real position gets 0 (not -inf), so nothing downstream turns into NaN.
    (`mgrec.model.pyramid.Segments.max` is the same statistic for several stretches of one axis.)
    """
    peak = max_over(torch.where(mask, x, torch.finfo(x.dtype).min), dim=-1)
    return torch.where(mask.any(dim=-1, keepdim=True), peak, torch.zeros_like(peak))


def max_over(x: Tensor, dim: int) -> Tensor:
    """Max over `dim` (kept as size 1), by the op that is fastest for the job on CPU.

    amax is much faster forward, but its backward compares every element with the result again;
    max(dim) tracks the arg-max and its backward only scatters. So: amax when no gradient flows,
    max(dim) when one does.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return x.max(dim=dim, keepdim=True).values
    return x.amax(dim=dim, keepdim=True)


def downsample(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Halve the time axis: max-pool (kernel 3, stride 2) over real positions; mask[..., ::2].

    Padded positions are filled with the lowest finite value before pooling, so a window at the
    real end never sees padding (the pooled value would otherwise depend on the padding's zeros).
    Every kept position has at least one real input (its centre), so no fill value survives.
    """
    lowest = torch.finfo(x.dtype).min
    pooled = F.max_pool1d(torch.where(mask, x, lowest), kernel_size=3, stride=2, padding=1)
    new_mask = mask[..., ::2]
    return apply_mask(pooled, new_mask), new_mask


class MaskedConv1d(nn.Conv1d):
    """A 'same'-length Conv1d (odd kernel, stride 1) whose output is zero at padded positions.

    The input must already be zero at padded positions (the contract above).
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, bias: bool = True) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a centred conv, got {kernel_size}")
        super().__init__(in_dim, out_dim, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return apply_mask(super().forward(x), mask)


class PointwiseConv1d(nn.Conv1d):
    """A kernel-1 Conv1d (same parameters, init and state dict) computed as a matrix product:
    y[b] = W x[b] + bias, W = weight[:, :, 0].

    torch's CPU convolution takes oneDNN's path under bf16 autocast, with layout copies of its input
    and output that cost more than the product itself; as addmm / baddbmm the product runs straight
    on the (C, T) layout. Measured on the 2-core Xeon (AVX512-BF16 + AMX), one thread, the SMG model's
    shapes (an ad-hoc timing, 2026-12-04): 1.7-3.8x faster in bf16, 2-7 % faster in float32. Off the CPU
    (`fastpath.cpu_kernels`) it is the conv.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__(in_dim, out_dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        if x.dim() != 3:
            raise ValueError(f"a pointwise conv takes (B, C, T) features, got shape {tuple(x.shape)}")
        if not fastpath.cpu_kernels(x, in_compiled_training=False):  # on a GPU the conv is as fast (and takes TF32)
            return super().forward(x)
        weight = self.weight[:, :, 0]
        if self.bias is None:
            return torch.matmul(weight, x)
        if x.shape[0] == 1:  # addmm: the bias is added inside the product
            return torch.addmm(self.bias[:, None], weight, x[0]).unsqueeze(0)
        return torch.baddbmm(self.bias[None, :, None], weight.expand(x.shape[0], -1, -1), x)
