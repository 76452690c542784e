"""The one switch between the CPU-tuned forms of three blocks and their plain forms.

Three blocks have a form written for torch's CPU kernels, whose fixed costs and memory layouts
differ from an accelerator's:
- `norm.ChannelLayerNorm`: statistics by a matmul and a hand-written backward (plain form: torch's
  layer_norm on the transposed tensor);
- `dyfadet.DFAConv1d`: the gate's depthwise conv as a sum of shifted taps, long inputs in pieces
  (plain form: a real depthwise conv, the whole input at once);
- `masking.PointwiseConv1d`: a kernel-1 conv as a matrix product (plain form: the conv).
Each block's two forms compute the same function (tests/model/test_fastpath.py checks outputs and gradients).
The choice is made here and nowhere else: the CPU forms for tensors on the CPU, the plain forms
elsewhere and in compiled training graphs, unless a test or a benchmark forces one of them with `forced`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_forced: bool | None = None  # None: decide by device


def cpu_kernels(x: Tensor) -> bool:
    """Whether the CPU-tuned forms run for the input `x`: True on the CPU (unless forced), except in a training graph
    torch.compile traces. Inductor picks its own kernels there, and with the CPU forms the compiled backward pass
    gave NaN gradients under bf16 autocast (torch 2.13, both demo networks; `train.step.check_compiled_training`
    found it), where the plain forms agree with the network's own gradients."""
    if _forced is not None:
        return _forced
    if torch.compiler.is_compiling() and torch.is_grad_enabled():
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
