"""The one switch between the CPU-tuned forms of three blocks and their plain forms.

Three blocks have a form written for torch's CPU kernels, whose fixed costs and memory layouts
differ from an accelerator's:
- `norm.ChannelLayerNorm`: statistics by a matmul and a hand-written backward (plain form: torch's
  layer_norm on the transposed tensor);
- `dyfadet.DFAConv1d`: the gate's depthwise conv as a sum of shifted taps, long inputs in pieces
  (plain form: a real depthwise conv, the whole input at once);
- `masking.PointwiseConv1d`: a kernel-1 conv as a matrix product (plain form: the conv).
Each block's two forms compute the same function (tests/model/test_fastpath.py checks outputs and gradients).
The choice is made here and nowhere else: the CPU forms for tensors on the CPU (but for the layer norm and the
kernel-1 convs inside a compiled training graph), the plain forms elsewhere, unless a test or a benchmark forces one
of them with `forced`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_forced: bool | None = None  # None: decide by device


def compiling_for_training() -> bool:
    """Whether torch.compile is tracing a graph that autograd will differentiate (a compiled training step)."""
    return torch.compiler.is_compiling() and torch.is_grad_enabled()


def cpu_kernels(x: Tensor, in_compiled_training: bool = True) -> bool:
    """Whether the CPU-tuned forms run for the input `x`: True on the CPU (unless forced).

    `in_compiled_training=False`: a block whose CPU form may not run inside a training graph that torch.compile
    traces. With the layer norm's hand-written backward and the kernel-1 convs' products there, inductor's compiled
    backward gave NaN gradients under bf16 autocast (torch 2.13, the demo's ActionFormer network; found by
    `train.step.check_compiled_training`), where with their plain forms the gradients are within 1.1 % of the
    network's own. The DFA gate keeps its CPU form: the paper's network compiled with its plain form gave NaN logits.
    """
    if _forced is not None:
        return _forced
    if not in_compiled_training and compiling_for_training():
        return False
    return x.device.type == "cpu"


@contextmanager
def forced(cpu: bool) -> Iterator[None]:
    """Run the CPU-tuned forms (`cpu=True`) or the plain forms (`cpu=False`) on any device."""
    global _forced
    previous, _forced = _forced, cpu
    try:
        yield
    finally:
        _forced = previous
