"""Channel LayerNorm on (B, C, T) features: LayerNorm over C at every time step.

Used by every paper here (DyFADet's and ActionFormer's "LayerNorm" on (B, C, T) tensors), and
written for speed on CPU: torch's layer_norm wants the normalised dim last; on (B, C, T) that means
transposed copies in and out, and every later op then reads a transposed layout, which on CPU costs
more than the norm itself. So on CPU (`fastpath.cpu_kernels`) the norm works in the (B, C, T)
layout, with its statistics by a matmul and a hand-written backward; elsewhere it is torch's
layer_norm on the transposed tensor. Reference: `mgrec.model.reference.layer_norm`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgrec.model import fastpath


class ChannelLayerNorm(nn.Module):
    """LayerNorm over channels at every time step of (B, C, T) features (no statistics over time).

    The output has the input's dtype, on either path (statistics in at least float32).
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if fastpath.compiling_for_training():
            # Inductor's compiled backward (torch 2.13 CPU) gave NaN gradients for bf16 inputs: of F.layer_norm for
            # the input and weight (with or without autocast, made float32 first or not), and of this written-out
            # form, cast back to bf16, for the weight and bias at some pyramid levels of the paper's network. Its
            # float32 output takes the next layer's autocast instead; the network's own gradients then.
            return channel_layer_norm_out_of_place(x, self.weight, self.bias, self.eps)
        if not fastpath.cpu_kernels(x):
            normed = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.weight, self.bias, self.eps)
            return normed.transpose(1, 2).to(x.dtype)  # autocast runs layer_norm in float32
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad or self.bias.requires_grad):
            return _ChannelLayerNormFunction.apply(x, self.weight, self.bias, self.eps)
        # No gradient: skip the autograd.Function machinery (a fixed cost per call that is most of
        # the time of an online update's small norms).
        return _channel_layer_norm(x, self.weight, self.bias, self.eps)[0]


def autocast_off(device_type: str) -> AbstractContextManager:
    """A block run without autocast: `torch.autocast(device_type, enabled=False)` when autocast is on.

    When it is off, nothing: switching off an autocast that is not on changes no result, but it puts
    autocast calls into a compiled graph, and AOTAutograd's cache does not take such graphs, so every
    start of `mgrec stream --compile` traced and lowered the network again (6 s of a 13-s warm start).
    """
    return torch.autocast(device_type, enabled=False) if torch.is_autocast_enabled(device_type) else nullcontext()


def at_least_float32(x: Tensor) -> Tensor:
    """`x` as float32 where it is of a narrower float (bf16, fp16); float32 and float64 as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _channel_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """LayerNorm over dim 1 of (B, C, T) -> (output, normalised input, 1 / std), in that layout.

    Statistics are in at least float32 (as autocast does for layer_norm); the output has the
    input's dtype.
    """
    wide = at_least_float32(x)
    centred = wide - wide.mean(dim=1, keepdim=True)
    # The sum of squares over channels as a (1, C) x (C, T) product: on CPU a reduction over
    # the strided channel axis (vector_norm, var) is much slower than square + matmul.
    # (Outside autocast: the statistics stay in float32 under bf16 autocast too.)
    averaging = centred.new_full((1, x.shape[1]), 1.0 / x.shape[1])
    with autocast_off(x.device.type):
        variance = torch.matmul(averaging, centred.square())
    rstd = variance.add_(eps).rsqrt_()
    normed = centred.mul_(rstd)
    # Two broadcast passes; addcmul with two broadcast operands is slower than both together.
    out = (normed * weight.to(normed.dtype)[:, None]).add_(bias.to(normed.dtype)[:, None]).to(x.dtype)
    return out, normed, rstd


def channel_layer_norm_out_of_place(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """LayerNorm over dim 1 of (B, C, T) as written: (x - mean) / sqrt(var + eps) * weight + bias, in at least
    float32, and so is the output (not cast back to a bf16 input's dtype); out of place, for autograd to
    differentiate inside a compiled training graph."""
    wide = at_least_float32(x)
    centred = wide - wide.mean(dim=1, keepdim=True)
    variance = centred.square().mean(dim=1, keepdim=True)
    normed = centred * (variance + eps).rsqrt()
    return normed * weight.to(normed.dtype)[:, None] + bias.to(normed.dtype)[:, None]


def grouped_channel_layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """G channel LayerNorms in one pass: LayerNorm over dim 2 of (B, G, C, T), group g with its own
    weight[g] and bias[g] (G, C). For a few small inputs at once (the head's two towers on an online
    window); out of place, so autograd differentiates it. Statistics in at least float32; the output
    has the input's dtype.
    """
    wide = at_least_float32(x)
    averaging = wide.new_full((1, x.shape[2]), 1.0 / x.shape[2])
    with autocast_off(x.device.type):
        centred = wide - torch.matmul(averaging, wide)  # means and variances by (1, C) x (C, T) products
        variance = torch.matmul(averaging, centred.square())
    normed = centred * (variance + eps).rsqrt()
    return (normed * weight.to(normed.dtype)[..., None] + bias.to(normed.dtype)[..., None]).to(x.dtype)


class _ChannelLayerNormFunction(torch.autograd.Function):
    """`_channel_layer_norm` with the layer-norm gradient written out: the forward works in place
    (fewer passes over memory), which autograd cannot differentiate through."""

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
