"""The channel LayerNorm, on both of its paths (mgrec.model.fastpath), against torch's layer_norm."""

import contextlib

import pytest
import torch
import torch.nn.functional as F

from mgrec.model import fastpath, reference
from mgrec.model.norm import ChannelLayerNorm, autocast_off

PATHS = pytest.mark.parametrize("cpu_kernels", [True, False], ids=["cpu-kernels", "plain"])


@PATHS
def test_channel_layer_norm_normalises_each_time_step_over_channels(cpu_kernels):
    torch.manual_seed(0)
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(2, 6, 5)
    with fastpath.forced(cpu_kernels):
        out = norm(x)
        # Statistics are per time step: changing one step leaves the others alone.
        y = x.clone()
        y[:, :, 4] = 1000.0
        assert torch.allclose(norm(y)[..., :4], out[..., :4], atol=1e-6)
    assert torch.allclose(out, reference.layer_norm(norm, x), atol=1e-6)


@PATHS
def test_channel_layer_norm_is_accurate_under_bf16_autocast(cpu_kernels):
    # Features far from zero: variance computed in bf16 would lose most of its digits.
    torch.manual_seed(0)
    norm = ChannelLayerNorm(64)
    x = (torch.randn(2, 64, 50) * 3 + 100).bfloat16()
    with fastpath.forced(cpu_kernels), torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x)
    expected = F.layer_norm(x.float().transpose(1, 2), (64,)).transpose(1, 2)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected, atol=0.02)


@PATHS
def test_channel_layer_norm_gradients_match_the_native_layer_norm(cpu_kernels):
    torch.manual_seed(0)
    x = (torch.randn(2, 6, 5, dtype=torch.float64) * 3 + 1).requires_grad_()
    upstream = torch.randn(2, 6, 5, dtype=torch.float64)
    norm = ChannelLayerNorm(6).double()
    with torch.no_grad():
        norm.weight.copy_(torch.rand(6, dtype=torch.float64) + 0.5)
        norm.bias.copy_(torch.randn(6, dtype=torch.float64))
    with fastpath.forced(cpu_kernels):
        ours = torch.autograd.grad((norm(x) * upstream).sum(), (x, norm.weight, norm.bias))
    native = torch.autograd.grad((reference.layer_norm(norm, x) * upstream).sum(), (x, norm.weight, norm.bias))
    for a, b in zip(ours, native):
        assert torch.allclose(a, b, atol=1e-10)


def test_the_cpu_kernels_run_on_cpu_tensors_unless_forced():
    x = torch.zeros(1)
    assert fastpath.cpu_kernels(x)
    with fastpath.forced(False):
        assert not fastpath.cpu_kernels(x)
        with fastpath.forced(True):
            assert fastpath.cpu_kernels(x)
        assert not fastpath.cpu_kernels(x)
    assert fastpath.cpu_kernels(x)
    assert not fastpath.cpu_kernels(torch.zeros(1, device="meta"))


def test_autocast_off_switches_autocast_off_only_where_it_is_on():
    x = torch.randn(4, 4)
    # Without autocast: nothing to switch off, and no autocast call (a compiled graph holding one is not cached).
    assert isinstance(autocast_off("cpu"), contextlib.nullcontext)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16
        with autocast_off("cpu"):
            assert (x @ x).dtype == torch.float32
        assert (x @ x).dtype == torch.bfloat16


def test_in_a_compiled_training_graph_the_norm_is_the_written_out_form_in_float32(monkeypatch):
    """Inside a graph torch.compile traces for training, the norm is the out-of-place written form whose float32
    output is not cast back to a bf16 input's dtype: cast back, inductor's compiled backward (torch 2.13 CPU) gave NaN
    weight and bias gradients at some pyramid levels of the paper's network under bf16 autocast, and F.layer_norm
    NaN input and weight gradients (the test below)."""
    torch.manual_seed(0)
    norm = ChannelLayerNorm(8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(2, 8, 6) * 3).bfloat16()
    monkeypatch.setattr(fastpath, "compiling_for_training", lambda: True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, reference.layer_norm(norm, x.float()), atol=1e-5)
    # and its gradients are the native layer norm's (float64, as the other paths are held to)
    x64 = (torch.randn(2, 8, 6, dtype=torch.float64) * 3 + 1).requires_grad_()
    upstream = torch.randn(2, 8, 6, dtype=torch.float64)
    norm64 = ChannelLayerNorm(8).double()
    ours = torch.autograd.grad((norm64(x64) * upstream).sum(), (x64, norm64.weight, norm64.bias))
    native = torch.autograd.grad((reference.layer_norm(norm64, x64) * upstream).sum(),
                                 (x64, norm64.weight, norm64.bias))
    for a, b in zip(ours, native):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.slow
def test_compiled_under_bf16_the_norm_s_gradients_are_its_own():
    """torch.compile of a training step under bf16 autocast: the norm's gradients as the eager norm's (F.layer_norm
    there gave NaN for the input and the weight, torch 2.13 CPU)."""
    torch.manual_seed(0)
    norm = ChannelLayerNorm(128)
    x = (torch.randn(1, 128, 128) * 3).bfloat16()
    weights = torch.linspace(0.1, 1, x.numel()).view_as(x)
    gradients = []
    for network in (norm, torch.compile(norm, dynamic=False)):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = network(xi)
        gradients.append(torch.autograd.grad((y.float() * weights).sum(), (xi, norm.weight, norm.bias)))
    for own, compiled in zip(*gradients):  # within 1 % of their norm (bf16 rounding of the eager output)
        assert torch.isfinite(compiled).all()
        assert (compiled.float() - own.float()).norm() <= 0.01 * own.float().norm()
