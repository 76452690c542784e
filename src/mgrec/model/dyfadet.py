"""DyFADet's pieces: the GeReTanH gate, the DFA conv, the DynE layer (as released in
yangle15/DyFADet-pytorch, libs/modeling/blocks.py: `DynELayer`, `DTFAM`, `TemporalGate`).

The forms here are fused for speed; `mgrec.model.reference` writes each one out as in the paper
(`geretanh`, `dfa_conv`, `dyne_layer`), and tests/model checks that both agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgrec.model import fastpath
from mgrec.model.masking import PointwiseConv1d, apply_mask, downsample, mask_weights, masked_mean
from mgrec.model.norm import ChannelLayerNorm, grouped_channel_layer_norm
from mgrec.model.residual import residual_branch

# On CPU the DFA conv aggregates long inputs in pieces of this many time steps (see `DFAConv1d.aggregate`).
DFA_PIECE_STEPS = 1024


def conv_default_init(weight: Tensor, bias: Tensor) -> None:
    """torch's default nn.Conv1d init of a (out, in / groups, k) weight and its bias, drawn in its order.

    The DFA gate and the DynE kernels are plain parameters; in state format 1 they were nn.Conv1d
    modules. Drawing the same numbers in the same order keeps what a seed builds unchanged.
    """
    with torch.no_grad():
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(weight.shape[1] * weight.shape[2])
        nn.init.uniform_(bias, -bound, bound)


# --------------------------------------------------------------------------------------------
# GeReTanH and the dynamic feature aggregation (DFA) conv


def geretanh_from_doubled_shift(doubled: Tensor, tau: float) -> Tensor:
    """DyFADet's gate geretanh(z) = max(0, (tanh(z - tau) + tanh(tau)) / (1 + tanh(tau))), from 2 (z - tau).

    Reference: `reference.geretanh`. It is exactly 0 for z <= 0 (positions can be switched off) and
    tends to 1 for large z. With tanh(s) = 2 sigmoid(2 s) - 1 it is
    (max(sigmoid(2 (z - tau)), m) - m) * 2 / (1 + tanh(tau)), m = (1 - tanh(tau)) / 2: torch's CPU
    sigmoid is much faster than its tanh, the factor 2 and the shift -tau go into the gate
    conv (see `DFAConv1d`), and subtracting the clamp floor keeps closed gates exactly 0.
    """
    t = math.tanh(tau)
    floor = (1.0 - t) / 2.0
    # clamp out of place: sigmoid's backward needs its output intact; clamp's does not need its own.
    return torch.sigmoid(doubled).clamp(min=floor).sub_(floor).mul_(2.0 / (1.0 + t))


class DFAConv1d(nn.Module):
    """Dynamic feature aggregation conv: a ka-tap conv whose input taps are re-weighted per
    (channel, time) by a non-negative dynamic gate, then channel LayerNorm and the mask.

        g[c, t] = geretanh(sum_i gate_weight[c, 0, i] * x[c, t + i - ka // 2] + gate_bias[c])
        y[o, t] = b[o] + sum_{i, c} W[o, i, c] * g[c, t] * x[c, t + i - ka // 2]

    Reference: `reference.dfa_conv` (the same as an einsum over the taps). The gate is a depthwise
    conv of x; it belongs to the output position t and is shared by its ka taps (DyFADet's dyn_type
    'c'). The taps are stacked from shifted views of the zero-padded input (no one-hot unfolding
    conv with C*ka output channels as in the release), and the static mixing W is one 1x1 conv
    over the (ka*C) stacked taps.

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
        # The gate's depthwise conv kernel, in torch's (in, 1, ka) layout, and its bias.
        self.gate_weight = nn.Parameter(torch.empty(in_dim, 1, kernel_size))
        self.gate_bias = nn.Parameter(torch.empty(in_dim))
        conv_default_init(self.gate_weight, self.gate_bias)
        # Start with the gates open about halfway (z = tau gives g ~ 0.47 with a useful slope)
        # rather than at z ~ 0, where the gate is closed for half of the positions and flat.
        nn.init.constant_(self.gate_bias, gate_tau)
        # Weight layout (out, ka * in, 1), tap-major: column i * in_dim + c is tap i of channel c.
        self.mixing = PointwiseConv1d(kernel_size * in_dim, out_dim)
        self.norm = ChannelLayerNorm(out_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return apply_mask(self.norm(self.aggregate(x)), mask)

    def aggregate(self, x: Tensor) -> Tensor:
        """The gated, mixed taps before the norm: (B, in, T) -> (B, out, T).

        On CPU (`fastpath.cpu_kernels`) long inputs go in pieces of `DFA_PIECE_STEPS` steps (each
        with its kernel's margin): the stacked taps of a piece (ka * in rows) then stay in cache
        from the gating to the mixing product, where the whole input at once would not.
        """
        length = x.shape[-1]
        half = self.kernel_size // 2
        padded = F.pad(x, (half, half))
        if not fastpath.cpu_kernels(x):
            return self._aggregate_padded(padded, shifted_taps_gate=False)
        pieces = [
            padded[..., begin : min(begin + DFA_PIECE_STEPS, length) + 2 * half]
            for begin in range(0, length, DFA_PIECE_STEPS)
        ]
        pieces = [self._aggregate_padded(piece, shifted_taps_gate=True) for piece in pieces]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def _aggregate_padded(self, padded: Tensor, shifted_taps_gate: bool) -> Tensor:
        """`aggregate` of the steps of `padded` that have a full kernel's margin on both sides."""
        length = padded.shape[-1] - 2 * (self.kernel_size // 2)
        taps = [padded[..., i : i + length] for i in range(self.kernel_size)]
        # The gate conv yields 2 (z - tau) directly: the factor 2 and the shift of
        # `geretanh_from_doubled_shift` are folded into its (small) weight and bias.
        weight, bias = 2.0 * self.gate_weight, 2.0 * (self.gate_bias - self.gate_tau)
        if shifted_taps_gate:
            # In the taps' dtype: under autocast float32 weights would promote the gate, and every
            # pass after it, to float32 (the dtype rule of `mgrec.model.masking`).
            weight, bias = weight.to(padded.dtype), bias.to(padded.dtype)
            # The depthwise conv as a sum of the shifted taps: torch's CPU depthwise conv has a
            # fixed cost far above that of these few passes.
            doubled = torch.addcmul(bias[:, None], taps[0], weight[:, :, 0])
            for i in range(1, self.kernel_size):
                doubled.addcmul_(taps[i], weight[:, :, i])  # addcmul's backward needs no output
        else:
            doubled = F.conv1d(padded, weight, bias, groups=padded.shape[1])
        gate = geretanh_from_doubled_shift(doubled, self.gate_tau)
        # Tap-major (B, ka * in, T): tap i of channel c at row i * in + c.
        gated = (torch.stack(taps, dim=1) * gate.unsqueeze(1)).flatten(1, 2)
        return self.mixing(gated)


def dfa_in_one_pass(convs: list[DFAConv1d], xs: Tensor, mask: Tensor) -> Tensor:
    """(B, G, in, T) -> (B, G, out, T): convs[g] on xs[:, g] (`DFAConv1d.forward`), the G convs in one pass.

    For a few short inputs at once (the head's two towers on an online window), where the fixed
    cost of an op is most of its time: the gates' depthwise convs run as one over all G * in
    channels (shifted taps), the mixings as one batched matrix product, the norms as one
    (`norm.grouped_channel_layer_norm`). The convs must share kernel size, gate tau and norm eps.
    """
    batch, groups, channels, length = xs.shape
    kernel_size, tau = convs[0].kernel_size, convs[0].gate_tau
    half = kernel_size // 2
    padded = F.pad(xs, (half, half))
    taps = [padded[..., i : i + length] for i in range(kernel_size)]  # (B, G, in, T) each
    # (G, in, k), in the inputs' dtype, as in `_aggregate_padded`
    weight = 2.0 * torch.stack([conv.gate_weight[:, 0] for conv in convs]).to(xs.dtype)
    bias = 2.0 * (torch.stack([conv.gate_bias for conv in convs]) - tau)[..., None].to(xs.dtype)
    doubled = torch.addcmul(bias, taps[0], weight[..., 0:1])
    for i in range(1, kernel_size):
        doubled.addcmul_(taps[i], weight[..., i : i + 1])
    gate = geretanh_from_doubled_shift(doubled, tau)
    # Tap-major rows per group (B, G, k * in, T), as each conv's mixing weight wants them.
    gated = (torch.stack(taps, dim=2) * gate.unsqueeze(2)).flatten(2, 3)
    mixing = torch.stack([conv.mixing.weight[:, :, 0] for conv in convs])  # (G, out, k * in)
    mixed = torch.matmul(mixing, gated)  # under autocast in its dtype; the bias too (the dtype rule)
    mixed = mixed + torch.stack([conv.mixing.bias for conv in convs])[..., None].to(mixed.dtype)
    normed = grouped_channel_layer_norm(mixed, torch.stack([conv.norm.weight for conv in convs]),
                                        torch.stack([conv.norm.bias for conv in convs]), convs[0].norm.eps)
    return apply_mask(normed, mask)


# --------------------------------------------------------------------------------------------
# DynE layer (DyFADet's encoder layer; the paper's Eq. 2-3)


def expanded_kernel_size(window: int, expansion: float) -> int:
    """DynE's multi-kernel size K = round((w + 1) * k), bumped to the next odd number."""
    size = round((window + 1) * expansion)
    return size if size % 2 == 1 else size + 1


def depthwise(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """'Same'-length depthwise conv of (B, C, T) with a (C, 1, k) kernel. Kernel 1 runs as a
    per-channel affine map: torch's grouped conv loops over the channels for kernel 1, which is
    much slower on CPU."""
    if weight.shape[-1] == 1:  # in x's dtype, as the conv is under autocast (the dtype rule of `mgrec.model.masking`)
        return torch.addcmul(bias[:, None].to(x.dtype), x, weight[:, :, 0].to(x.dtype))
    return F.conv1d(x, weight, bias, padding=weight.shape[-1] // 2, groups=x.shape[1])


def _depthwise_parameters(dim: int, kernel_size: int, init_std: float) -> tuple[nn.Parameter, nn.Parameter]:
    """A depthwise kernel (dim, 1, k) ~ N(0, init_std) and a zero bias."""
    weight = nn.Parameter(torch.empty(dim, 1, kernel_size))
    bias = nn.Parameter(torch.empty(dim))
    conv_default_init(weight, bias)  # overwritten below; drawn to keep the seed's stream (`conv_default_init`)
    nn.init.normal_(weight, std=init_std)
    nn.init.zeros_(bias)
    return weight, bias


def _merged_kernel(a: Tensor, b: Tensor) -> Tensor:
    """Two centred depthwise kernels (C, 1, odd k) -> one kernel whose conv is the sum of theirs."""
    if a.shape[-1] < b.shape[-1]:
        a, b = b, a
    pad = (a.shape[-1] - b.shape[-1]) // 2
    return a + F.pad(b, (pad, pad))


class DynETokenMixer(nn.Module):
    """DynE's token mixing on u = LN(x): its two branches plus u itself (the paper's Eq. 2 + 3).

        phi      = ReLU(DW1x1_gate(masked_mean_T(u)))                  (B, C, 1)
        instance = DW1x1_value(u) * phi                                 instance-dynamic branch
        multi    = ReLU(DW_w(u) + DW_K(u)) * DW_w,gate(u)               multi-kernel branch
        output   = instance + multi + u

    DWk is a depthwise conv with kernel k and bias; the parameters are named after the branch
    (`instance_gate_*`, `instance_value_*`, `window_gate_*`, `window_conv_*`, `expanded_conv_*`).
    The paper writes both branches with DFA convs; DyFADet's released layer, followed here, has
    these static depthwise convs and the instance gate.
    Reference: `reference.dyne_mixer`, which runs the five convs one by one. Here instance + u is
    one per-channel affine map of u, and DW_w and DW_K (both linear and centred on the same input)
    run as one depthwise conv with the summed kernel.
    """

    def __init__(self, dim: int, window: int, expanded: int, init_std: float) -> None:
        super().__init__()
        self.instance_gate_weight, self.instance_gate_bias = _depthwise_parameters(dim, 1, init_std)
        self.instance_value_weight, self.instance_value_bias = _depthwise_parameters(dim, 1, init_std)
        self.window_gate_weight, self.window_gate_bias = _depthwise_parameters(dim, window, init_std)
        self.window_conv_weight, self.window_conv_bias = _depthwise_parameters(dim, window, init_std)
        self.expanded_conv_weight, self.expanded_conv_bias = _depthwise_parameters(dim, expanded, init_std)

    def forward(self, u: Tensor, mask: Tensor) -> Tensor:
        phi = F.relu(depthwise(masked_mean(u, mask), self.instance_gate_weight, self.instance_gate_bias))
        # instance + u = (w_value * u + b_value) * phi + u: one per-channel affine map of u (its
        # small (B, C, 1) factors in u's dtype: the dtype rule of `mgrec.model.masking`).
        value_weight, value_bias = self.instance_value_weight[:, :, 0], self.instance_value_bias[:, None]
        scale, shift = (1.0 + value_weight * phi).to(u.dtype), (value_bias * phi).to(u.dtype)
        instance_and_identity = torch.addcmul(shift, u, scale)
        kernel = _merged_kernel(self.expanded_conv_weight, self.window_conv_weight)
        bias = self.expanded_conv_bias + self.window_conv_bias
        multi = F.relu(F.conv1d(u, kernel, bias, padding=kernel.shape[-1] // 2, groups=u.shape[1]))
        return torch.addcmul(instance_and_identity, multi, depthwise(u, self.window_gate_weight, self.window_gate_bias))


class DynELayer(nn.Module):
    """DyFADet's DynE layer: an optional stride-2 max-pool, then (pre-LN) token mixing and an FFN.

        x = DS(x)                                      (downsampling layers only)
        u = LN(x)
        x = x + residual(mixer(u))                     (`DynETokenMixer`: Eq. 2 + 3 + u)
        x = x + residual(FFN(LN(x))),  FFN = 1x1 conv dim -> mlp_dim, GELU, 1x1 conv -> dim

    Reference: `reference.dyne_layer`. Differences from the release, on purpose: the instance mean
    uses real positions only; the FFN norm is a channel LayerNorm instead of GroupNorm (whose
    statistics over time include padding); the five depthwise convs start at N(0, init_std), not 0
    (the release's default: all-zero weights and biases give them exactly zero gradient forever).
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
        self.norm = ChannelLayerNorm(dim)
        self.mixer = DynETokenMixer(dim, window, expanded_kernel_size(window, expansion), init_std)
        self.mix_residual = residual_branch(dim, drop_path, layer_scale)
        self.ffn_norm = ChannelLayerNorm(dim)
        self.ffn = nn.Sequential(PointwiseConv1d(dim, mlp_dim), nn.GELU(), PointwiseConv1d(mlp_dim, dim))
        self.ffn_residual = residual_branch(dim, drop_path, layer_scale)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.downsample:
            x, mask = downsample(x, mask)
        weights = mask_weights(mask, x.dtype)  # cast once for the four uses below
        u = apply_mask(self.norm(x), weights)
        x = apply_mask(x + self.mix_residual(self.mixer(u, weights)), weights)
        x = apply_mask(x + self.ffn_residual(self.ffn(self.ffn_norm(x))), weights)
        return x, mask
