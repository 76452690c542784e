"""Masked building blocks on (B, C, T) features with a (B, 1, T) bool mask.

The mask convention, written down once here and followed by every block:
- Padding sits at the end of each sequence (the mask is True on a prefix of the time axis).
- A block's input is zero at padded positions and its output is zero there too.
- Inside a block, whatever can make padded positions non-zero (a norm's bias, a conv's bias) is
  multiplied by the mask again before anything that mixes over time (a conv, pooling, attention).
- Statistics over time (mean, max) use only real positions.
So a zero beyond the real end looks exactly like the zero padding of a convolution, and appending
any amount of padding (with any values in it, since the detector masks its input first) leaves
the outputs at real positions unchanged.

Time mixing is symmetric (non-causal) everywhere, as in DyFADet and ActionFormer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The LayerScale start value of DyFADet's/ActionFormer's "affine drop-path" residuals: a new
# residual branch starts close to the identity and grows as training needs it.
LAYER_SCALE_INIT = 1e-4
# The DFA conv aggregates long inputs in pieces of this many time steps (see `DFAConv1d.aggregate`).
DFA_PIECE_STEPS = 1024


# --------------------------------------------------------------------------------------------
# Masked statistics and resampling


def apply_mask(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the padded positions of (B, C, T) features; `mask` is (B, 1, T) bool.

    The mask is cast to the features' dtype first: multiplying by a bool tensor takes a type
    promotion path that is about ten times slower on CPU.
    """
    return x * mask.to(x.dtype)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over time of (B, C, T) features at real positions only -> (B, C, 1)."""
    weights = mask.to(x.dtype)
    total = torch.bmm(x, weights.transpose(1, 2))  # one pass: sum_t x[b, c, t] * mask[b, t]
    return total / weights.sum(dim=-1, keepdim=True).clamp(min=1.0)


def max_over(x: Tensor, dim: int) -> Tensor:
    """Max over `dim` (kept as size 1), by the op that is fastest for the job on CPU.

    amax is about ten times faster forward, but its backward compares every element with the
    result again; max(dim) tracks the arg-max and its backward only scatters. So: amax when no
    gradient flows, max(dim) when one does.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return x.max(dim=dim, keepdim=True).values
    return x.amax(dim=dim, keepdim=True)


class Segments:
    """Stretches of the time axis whose statistics over time are kept apart.

    A packed feature pyramid (`mgrec.model.pyramid.PackedLevels`) lays every level on one time
    axis; a block that pools over time must pool each level on its own. Segment s covers positions
    [begin, end) = `bounds[s]`; the positions between segments must be masked (they are never
    pooled). `Segments.whole(mask)` is the plain case: one segment, the whole axis.
    """

    def __init__(self, mask: Tensor, bounds: list[tuple[int, int]]) -> None:
        if bounds[0][0] != 0:
            raise ValueError(f"the first segment must start at 0, got bounds {bounds}")
        self.mask = mask  # (B, 1, T) bool
        self.bounds = bounds
        real = [mask[..., begin:end].sum(dim=-1, dtype=torch.float32) for begin, end in bounds]
        self.real = torch.stack(real, dim=-1)  # (B, 1, S) real positions per segment
        # Each segment's value is spread over the segment and the masked stretch that follows it.
        ends = [begin for begin, _ in bounds[1:]] + [mask.shape[-1]]
        self._spread_lengths = [end - begin for (begin, _), end in zip(bounds, ends)]

    @classmethod
    def whole(cls, mask: Tensor) -> Segments:
        return cls(mask, [(0, mask.shape[-1])])

    def mean(self, x: Tensor) -> Tensor:
        """Mean over the real positions of each segment of (B, C, T) features -> (B, C, S)."""
        zeroed = apply_mask(x, self.mask)
        # Sums over contiguous slices: a bmm with a (T, S) indicator matrix is several times
        # slower for long inputs (a matrix product with a handful of columns).
        totals = torch.cat([zeroed[..., begin:end].sum(dim=-1, keepdim=True) for begin, end in self.bounds], dim=-1)
        return totals / self.real.to(x.dtype).clamp(min=1.0)

    def max(self, x: Tensor) -> Tensor:
        """Max over the real positions of each segment -> (B, C, S).

        A segment without any real position gets 0 (not -inf), so nothing downstream turns into NaN.
        """
        lowest = torch.finfo(x.dtype).min
        filled = torch.where(self.mask, x, lowest)
        peaks = torch.cat([max_over(filled[..., begin:end], dim=-1) for begin, end in self.bounds], dim=-1)
        return torch.where(self.real > 0, peaks, torch.zeros_like(peaks))

    def spread(self, values: Tensor) -> Tensor:
        """Per-segment values (..., S) -> per-position values (..., T) (broadcast for one segment)."""
        if len(self.bounds) == 1:
            return values
        # Expanded views joined by one copy (index_select along the last axis is several times slower).
        parts = [values[..., s : s + 1].expand(*values.shape[:-1], n) for s, n in enumerate(self._spread_lengths)]
        return torch.cat(parts, dim=-1)


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


# --------------------------------------------------------------------------------------------
# Norm, conv, residual helpers


def _at_least_float32(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _channel_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """LayerNorm over dim 1 of (B, C, T) -> (output, normalised input, 1 / std), in that layout.

    Statistics are in at least float32 (as autocast does for layer_norm); the output has the
    input's dtype.
    """
    wide = _at_least_float32(x)
    centred = wide - wide.mean(dim=1, keepdim=True)
    # The sum of squares over channels as a (1, C) x (C, T) product: on CPU a reduction over
    # the strided channel axis (vector_norm, var) is several times slower than square + matmul.
    # (Outside autocast: the statistics stay in float32 under bf16 autocast too.)
    averaging = centred.new_full((1, x.shape[1]), 1.0 / x.shape[1])
    with torch.autocast(x.device.type, enabled=False):
        variance = torch.matmul(averaging, centred.square())
    rstd = variance.add_(eps).rsqrt_()
    normed = centred.mul_(rstd)
    # Two broadcast passes; addcmul with two broadcast operands is slower than both together.
    out = (normed * weight.to(normed.dtype)[:, None]).add_(bias.to(normed.dtype)[:, None]).to(x.dtype)
    return out, normed, rstd


class _ChannelLayerNormFunction(torch.autograd.Function):
    """`_channel_layer_norm` with a hand-written backward.

    torch's layer_norm wants the normalised dim last; on (B, C, T) that means transposed copies in
    and out, and every later op then reads a transposed layout: on CPU that costs several times
    the norm itself.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        out, normed, rstd = _channel_layer_norm(x, weight, bias, eps)
        ctx.save_for_backward(normed, rstd, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        normed, rstd, weight = ctx.saved_tensors
        grad = grad_out.to(normed.dtype)
        grad_weight = (grad * normed).sum(dim=(0, 2)).to(weight.dtype)
        grad_bias = grad.sum(dim=(0, 2)).to(weight.dtype)
        grad_normed = grad * weight.to(normed.dtype)[:, None]
        # d/dx of (x - mean) * rstd: remove the gradient's mean and its projection on `normed`.
        mean_grad = grad_normed.mean(dim=1, keepdim=True)
        mean_proj = (grad_normed * normed).mean(dim=1, keepdim=True)
        grad_x = (grad_normed - mean_grad).sub_(normed * mean_proj).mul_(rstd)
        return grad_x.to(grad_out.dtype), grad_weight, grad_bias, None


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every time step of (B, C, T) features (no statistics over time)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or self.bias.requires_grad):
            return _ChannelLayerNormFunction.apply(x, self.weight, self.bias, self.eps)
        # No gradient: skip the autograd.Function machinery (a fixed cost of tens of microseconds,
        # most of an online update's small norms).
        return _channel_layer_norm(x, self.weight, self.bias, self.eps)[0]


class MaskedConv1d(nn.Conv1d):
    """A 'same'-length Conv1d (odd kernel, stride 1) whose output is zero at padded positions.

    The input must already be zero at padded positions (the block convention above).
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, bias: bool = True) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for a centred conv, got {kernel_size}")
        super().__init__(in_dim, out_dim, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        return apply_mask(super().forward(x), mask)


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


class LayerScale(nn.Module):
    """A learnable per-channel scale on a residual branch (starts at `init`)."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale[:, None]


def residual_branch(dim: int, drop_path: float, layer_scale: bool) -> nn.Module:
    """DyFADet's "affine drop-path" (LayerScale then stochastic depth), or the plain identity."""
    parts = []
    if layer_scale:
        parts.append(LayerScale(dim, LAYER_SCALE_INIT))
    if drop_path > 0.0:
        parts.append(DropPath(drop_path))
    return nn.Sequential(*parts)


# --------------------------------------------------------------------------------------------
# Dynamic feature aggregation (DFA) convolution


def geretanh_from_doubled_shift(doubled: Tensor, tau: float) -> Tensor:
    """DyFADet's gate geretanh(z) = max(0, (tanh(z - tau) + tanh(tau)) / (1 + tanh(tau))), from 2 (z - tau).

    It is exactly 0 for z <= 0 (positions can be switched off) and tends to 1 for large z. With
    tanh(s) = 2 sigmoid(2 s) - 1 it is (max(sigmoid(2 (z - tau)), m) - m) * 2 / (1 + tanh(tau)),
    m = (1 - tanh(tau)) / 2: torch's CPU sigmoid is several times faster than its tanh, the factor 2
    and the shift -tau go into the gate conv (see `DFAConv1d.aggregate`), and subtracting the clamp
    floor keeps closed gates exactly 0.
    """
    t = math.tanh(tau)
    floor = (1.0 - t) / 2.0
    # clamp out of place: sigmoid's backward needs its output intact; clamp's does not need its own.
    return torch.sigmoid(doubled).clamp(min=floor).sub_(floor).mul_(2.0 / (1.0 + t))


class DFAConv1d(nn.Module):
    """Dynamic feature aggregation conv: a ka-tap conv whose input taps are re-weighted per
    (channel, time) by a non-negative dynamic gate, then channel LayerNorm and the mask.

        g[c, t] = geretanh(depthwise_conv_ka(x)[c, t])     (see `geretanh_from_doubled_shift`)
        y[o, t] = b[o] + sum_{i, c} W[o, i, c] * g[c, t] * x[c, t + i - ka // 2]

    The gate belongs to the output position t and is shared by its ka taps (DyFADet's dyn_type 'c').
    The taps are stacked from shifted views of the zero-padded input (no one-hot unfolding conv
    with C*ka output channels as in the release), and the static mixing W is one matmul-like 1x1
    conv over the (ka*C) stacked taps.

    We do NOT keep the released squared-tap quirk: there the gate module returns taps*g and the
    DFA multiplies by the taps again, so the aggregation sees taps*taps*g. That makes the output
    quadratic in the input scale, an accident of applying the gate twice, not a design choice.

    The released main-path DFA in the head derives its dynamic weights from a full conv
    (C*ka -> C, kernel ka) plus LayerNorm times a per-time gate, which costs ka times the mixing
    itself; here every DFA derives them from the cheap depthwise gate above.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, gate_tau: float) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"DFA kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.gate_tau = gate_tau
        self.gate_logits = nn.Conv1d(in_dim, in_dim, kernel_size, padding=kernel_size // 2, groups=in_dim)
        # Start with the gates open about halfway (z = tau gives g ~ 0.47 with a useful slope)
        # rather than at z ~ 0, where the gate is closed for half of the positions and flat.
        nn.init.constant_(self.gate_logits.bias, gate_tau)
        # Weight layout (out, ka * in, 1), tap-major: column i * in_dim + c is tap i of channel c.
        self.mixing = nn.Conv1d(kernel_size * in_dim, out_dim, 1)
        self.norm = ChannelLayerNorm(out_dim)

    def aggregate(self, x: Tensor) -> Tensor:
        """The gated, mixed taps before the norm: (B, in, T) -> (B, out, T).

        Long inputs go in pieces of `DFA_PIECE_STEPS` steps (each with its kernel's margin): the
        stacked taps of a piece (ka * in rows) then stay in cache from the gating to the mixing
        product; over thousands of steps at once the mixing alone is ~40% slower per step on CPU.
        """
        length = x.shape[-1]
        half = self.kernel_size // 2
        padded = F.pad(x, (half, half))
        pieces = [
            self._aggregate_padded(padded[..., begin : min(begin + DFA_PIECE_STEPS, length) + 2 * half])
            for begin in range(0, length, DFA_PIECE_STEPS)
        ]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def _aggregate_padded(self, padded: Tensor) -> Tensor:
        """`aggregate` of the steps of `padded` that have a full kernel's margin on both sides."""
        length = padded.shape[-1] - 2 * (self.kernel_size // 2)
        taps = [padded[..., i : i + length] for i in range(self.kernel_size)]
        # 2 (z - tau) for the gate: the depthwise gate conv as a sum of the shifted taps (torch's
        # depthwise conv has a fixed cost several times that of these few passes), with the shift
        # and the factor 2 folded into its (small) weights.
        gate_weight = 2.0 * self.gate_logits.weight[:, 0, :]  # (in, ka)
        doubled = torch.addcmul(2.0 * (self.gate_logits.bias - self.gate_tau)[:, None], taps[0], gate_weight[:, :1])
        for i in range(1, self.kernel_size):
            doubled.addcmul_(taps[i], gate_weight[:, i : i + 1])  # addcmul's backward needs no output
        gate = geretanh_from_doubled_shift(doubled, self.gate_tau)
        # Tap-major (B, ka * in, T): tap i of channel c at row i * in + c.
        gated = (torch.stack(taps, dim=1) * gate.unsqueeze(1)).flatten(1, 2)
        return self.mixing(gated)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return apply_mask(self.norm(self.aggregate(x)), mask)


# --------------------------------------------------------------------------------------------
# DynE layer (DyFADet's encoder layer)


def _depthwise(dim: int, kernel_size: int, init_std: float) -> nn.Conv1d:
    conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
    nn.init.normal_(conv.weight, std=init_std)
    nn.init.zeros_(conv.bias)
    return conv


def apply_depthwise(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """Run a depthwise conv; kernel 1 becomes a per-channel affine map (torch's grouped-conv
    path loops over the channels for kernel 1, dozens of times slower on CPU)."""
    if conv.kernel_size[0] == 1:
        return torch.addcmul(conv.bias[:, None], x, conv.weight[:, :, 0])
    return conv(x)


def expanded_kernel_size(window: int, expansion: float) -> int:
    """DynE's multi-kernel size K = round((w + 1) * k), bumped to the next odd number."""
    size = round((window + 1) * expansion)
    return size if size % 2 == 1 else size + 1


class DynELayer(nn.Module):
    """DyFADet's DynE layer: an optional stride-2 max-pool, then (pre-LN) token mixing and an FFN.

        u = LN(x)
        instance = DW1x1(u) * ReLU(DW1x1(masked_mean_T(u)))        (instance-dynamic branch)
        multi = ReLU(DW_w(u) + DW_K(u)) * DW_w'(u),  K = round((w+1)k) odd   (multi-kernel branch)
        x = x + residual(instance + multi + u)
        x = x + residual(FFN(LN(x))),  FFN = 1x1 conv dim -> mlp_dim, GELU, 1x1 conv -> dim

    Differences from the release, on purpose: the instance mean uses real positions only; the FFN
    norm is a channel LayerNorm instead of GroupNorm (whose statistics over time include padding);
    the five depthwise convs start at N(0, init_std), not 0 (all-zero weights and biases give
    them exactly zero gradient forever, see anchors-tad.md 1.2). DW_w and DW_K, both linear and
    centred on the same input, are run as one depthwise conv with the summed kernel.
    """

    def __init__(
        self,
        dim: int,
        mlp_dim: int,
        window: int,
        expansion: float,
        downsample: bool,
        drop_path: float,
        layer_scale: bool,
        init_std: float,
    ) -> None:
        super().__init__()
        if window % 2 != 1:
            raise ValueError(f"DynE window must be odd, got {window}")
        self.downsample = downsample
        self.window = window
        self.expanded = expanded_kernel_size(window, expansion)
        self.norm = ChannelLayerNorm(dim)
        self.instance_gate = _depthwise(dim, 1, init_std)
        self.instance_value = _depthwise(dim, 1, init_std)
        self.window_gate = _depthwise(dim, window, init_std)
        self.window_conv = _depthwise(dim, window, init_std)
        self.expanded_conv = _depthwise(dim, self.expanded, init_std)
        self.mix_residual = residual_branch(dim, drop_path, layer_scale)
        self.ffn_norm = ChannelLayerNorm(dim)
        self.ffn = nn.Sequential(nn.Conv1d(dim, mlp_dim, 1), nn.GELU(), nn.Conv1d(mlp_dim, dim, 1))
        self.ffn_residual = residual_branch(dim, drop_path, layer_scale)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.downsample:
            x, mask = downsample(x, mask)
        u = apply_mask(self.norm(x), mask)
        phi = F.relu(apply_depthwise(self.instance_gate, masked_mean(u, mask)))  # (B, C, 1)
        # instance + u = (w_fc * u + b_fc) * phi + u: one per-channel affine map of u.
        fc_weight, fc_bias = self.instance_value.weight[:, :, 0], self.instance_value.bias[:, None]
        instance_and_identity = torch.addcmul(fc_bias * phi, u, 1.0 + fc_weight * phi)
        pad = (self.expanded - self.window) // 2
        kernel = self.expanded_conv.weight + F.pad(self.window_conv.weight, (pad, pad))
        bias = self.expanded_conv.bias + self.window_conv.bias
        multi = F.relu(F.conv1d(u, kernel, bias, padding=self.expanded // 2, groups=u.shape[1]))
        mixed = torch.addcmul(instance_and_identity, multi, apply_depthwise(self.window_gate, u))
        x = apply_mask(x + self.mix_residual(mixed), mask)
        x = apply_mask(x + self.ffn_residual(self.ffn(self.ffn_norm(x))), mask)
        return x, mask


# --------------------------------------------------------------------------------------------
# Spatial-temporal attention (the paper's Eq. 4 and 5, read for 1D features)


class SpatialTemporalAttention(nn.Module):
    """CBAM-style attention of the paper (Sec. 3.4) on (B, C, T) features.

    On 1D features the paper's two branches become:
    - Eq. 4, the paper's "temporal attention", pools over time, so it yields one gate per CHANNEL:
      sigmoid(MLP(masked_mean_T(x)) + MLP(masked_max_T(x))), MLP = C -> C/ratio -> C (ReLU),
      shared by both pooled vectors.
    - Eq. 5, the paper's "spatial attention", pools over channels, so it yields one gate per TIME
      STEP: sigmoid(conv_k([mean_C(x); max_C(x)])), a 2 -> 1 conv over time with kernel k (7).
    They are applied one after the other, channel gate first (as in CBAM). Both respect the mask:
    the time pooling uses real positions only, and the (2, T) maps are zeroed at padded positions
    before the conv, so padding never reaches a real position's gate.
    """

    def __init__(self, dim: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"attention kernel must be odd, got {kernel_size}")
        hidden = max(1, dim // mlp_ratio)
        self.channel_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.time_conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2)

    def channel_gate(self, x: Tensor, segments: Segments) -> Tensor:
        """(B, C, S) gates in (0, 1) from the masked time-pooled features of each segment (Eq. 4)."""
        pooled = torch.stack([segments.mean(x), segments.max(x)], dim=1).transpose(2, 3)  # (B, 2, S, C)
        return torch.sigmoid(self.channel_mlp(pooled).sum(dim=1)).transpose(1, 2)

    def time_gate(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, 1, T) gates in (0, 1) from the channel-pooled maps (Eq. 5)."""
        maps = torch.cat([x.mean(dim=1, keepdim=True), max_over(x, dim=1)], dim=1)
        maps = apply_mask(maps, mask)
        return torch.sigmoid(self.time_conv(maps))

    def forward(self, x: Tensor, mask: Tensor, scale: Tensor | float = 1.0, segments: Segments | None = None) -> Tensor:
        """Channel gate, then time gate; times `scale` (folded into the small time gate).

        `segments`: stretches of time pooled apart for the channel gate (default: the whole axis);
        `scale`: a number or per-position (T,) weights.
        """
        segments = Segments.whole(mask) if segments is None else segments
        x = x * segments.spread(self.channel_gate(x, segments))
        return x * (apply_mask(self.time_gate(x, mask), mask) * scale)


# --------------------------------------------------------------------------------------------
# Local-window self-attention and the transformer block (ActionFormer variant)


class LocalSelfAttention(nn.Module):
    """Masked multi-head self-attention where position t sees keys within t +- window // 2.

    The time axis is cut into chunks of window // 2 steps; the queries of one chunk attend to the
    keys of that chunk and its two neighbours (3 chunks cover every key within the band), with a
    band mask and the key mask. The sequence is padded inside to a whole number of chunks, so any
    length works and the detector only needs T divisible by its largest stride.
    Every query may always attend to itself, so no softmax row is empty (padded queries are
    zeroed at the end anyway).
    """

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        if window % 2 != 1:
            raise ValueError(f"attention window must be odd, got {window}")
        self.heads = heads
        self.half = window // 2
        self.chunk = max(1, self.half)
        self.qkv = nn.Conv1d(dim, 3 * dim, 1)
        self.proj = nn.Conv1d(dim, dim, 1)

    @staticmethod
    def _neighbour_chunks(x: Tensor) -> Tensor:
        """(B, n, ..., chunk, d) -> (B, n, ..., 3 * chunk, d): each chunk with its two neighbours."""
        n = x.shape[1]
        padded = F.pad(x, (0, 0) * (x.dim() - 2) + (1, 1))  # one empty chunk before and after
        return torch.cat([padded[:, 0:n], padded[:, 1 : n + 1], padded[:, 2 : n + 2]], dim=-2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, dim, length = x.shape
        n = -(-length // self.chunk)
        extra = n * self.chunk - length
        head_dim = dim // self.heads
        qkv = F.pad(self.qkv(x), (0, extra)).reshape(batch, 3, self.heads, head_dim, n, self.chunk)
        q, k, v = qkv.permute(1, 0, 4, 2, 5, 3).unbind(0)  # each (B, n, H, chunk, head_dim)
        k, v = self._neighbour_chunks(k), self._neighbour_chunks(v)

        key_valid = F.pad(mask, (0, extra)).reshape(batch, n, 1, self.chunk, 1)
        key_valid = self._neighbour_chunks(key_valid).reshape(batch, n, 1, 1, 3 * self.chunk)
        query_pos = torch.arange(self.chunk, device=x.device)[:, None] + self.chunk
        key_pos = torch.arange(3 * self.chunk, device=x.device)[None, :]
        in_band = (query_pos - key_pos).abs() <= self.half
        allowed = in_band & (key_valid | (query_pos == key_pos))  # (B, n, 1, chunk, 3 * chunk)

        # Chunks become the batch of a 4D attention call: (B * n, H, chunk, head_dim).
        out = F.scaled_dot_product_attention(
            q.reshape(batch * n, self.heads, self.chunk, head_dim),
            k.reshape(batch * n, self.heads, 3 * self.chunk, head_dim),
            v.reshape(batch * n, self.heads, 3 * self.chunk, head_dim),
            attn_mask=allowed.reshape(batch * n, 1, self.chunk, 3 * self.chunk),
        )
        out = out.reshape(batch, n, self.heads, self.chunk, head_dim).permute(0, 2, 4, 1, 3)
        out = out.reshape(batch, dim, n * self.chunk)[..., :length]
        return apply_mask(self.proj(out), mask)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block with local attention; optionally halves the time axis first.

    Downsampling blocks max-pool the input (the same masked pooling as DynE) and then run a normal
    block at the new resolution. ActionFormer instead pools only the skip path and uses strided
    depthwise convs on q/k/v; pooling first is simpler and keeps one code path for both strides.
    The MLP is 4x wide with GELU; both residuals use LayerScale and stochastic depth.
    """

    def __init__(self, dim: int, heads: int, window: int, downsample: bool, drop_path: float) -> None:
        super().__init__()
        self.downsample = downsample
        self.attn_norm = ChannelLayerNorm(dim)
        self.attn = LocalSelfAttention(dim, heads, window)
        self.attn_residual = residual_branch(dim, drop_path, layer_scale=True)
        self.mlp_norm = ChannelLayerNorm(dim)
        self.mlp = nn.Sequential(nn.Conv1d(dim, 4 * dim, 1), nn.GELU(), nn.Conv1d(4 * dim, dim, 1))
        self.mlp_residual = residual_branch(dim, drop_path, layer_scale=True)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.downsample:
            x, mask = downsample(x, mask)
        # No re-masking of the norm's output: the attention never reads a padded key.
        x = apply_mask(x + self.attn_residual(self.attn(self.attn_norm(x), mask)), mask)
        x = apply_mask(x + self.mlp_residual(self.mlp(self.mlp_norm(x))), mask)
        return x, mask
