"""DyFADet's pieces: GeReTanH, the DFA conv and the DynE layer, hand-computed and against
`mgrec.model.reference`."""

import math

import pytest
import torch
import torch.nn.functional as F
from tests.model.helpers import assert_same_outputs_and_gradients, prefix_mask

from mgrec.model import dyfadet, fastpath, reference
from mgrec.model.dyfadet import (
    DFAConv1d,
    DynELayer,
    conv_default_init,
    depthwise,
    expanded_kernel_size,
    geretanh_from_doubled_shift,
)

PATHS = pytest.mark.parametrize("cpu_kernels", [True, False], ids=["cpu-kernels", "plain"])

# ---------------------------------------------------------------------------------------------
# GeReTanH and the DFA conv


def test_geretanh_from_doubled_shift_is_the_gate():
    tau = 1.5
    z = torch.linspace(-5, 8, 301)
    assert torch.allclose(geretanh_from_doubled_shift(2 * (z - tau), tau), reference.geretanh(z, tau), atol=1e-6)
    # Exactly 0 for z <= 0 (positions can be switched off), tends to 1 for large z.
    assert torch.equal(geretanh_from_doubled_shift(2 * (torch.tensor([-10.0, -1.0, 0.0]) - tau), tau), torch.zeros(3))
    assert geretanh_from_doubled_shift(torch.tensor([60.0]), tau).item() == pytest.approx(1.0, abs=1e-6)


def _dfa_with_constant_gate(weights_by_tap, gate_logit, bias=0.0):
    """A 1-channel DFA whose gate logit is the constant `gate_logit` and whose taps are weighted."""
    dfa = DFAConv1d(1, 1, len(weights_by_tap), gate_tau=1.5)
    with torch.no_grad():
        dfa.gate_weight.zero_()
        dfa.gate_bias.fill_(gate_logit)
        dfa.mixing.weight.copy_(torch.tensor(weights_by_tap).view(1, -1, 1))
        dfa.mixing.bias.fill_(bias)
    return dfa


@PATHS
def test_dfa_open_gate_hand_computed(cpu_kernels):
    # taps (t-1, t, t+1) weighted (1, 10, 100), zero padding at both ends.
    dfa = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=50.0)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    with fastpath.forced(cpu_kernels):
        assert torch.allclose(dfa.aggregate(x), torch.tensor([[[210.0, 321.0, 432.0, 43.0]]]))


@PATHS
def test_dfa_gate_scales_taps_and_closed_gate_leaves_bias(cpu_kernels):
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    half_open = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=1.5)
    g = math.tanh(1.5) / (1.0 + math.tanh(1.5))
    expected = g * torch.tensor([[[210.0, 321.0, 432.0, 43.0]]])
    closed = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=-1.0, bias=0.5)
    with fastpath.forced(cpu_kernels):
        assert torch.allclose(half_open.aggregate(x), expected, atol=1e-4)
        assert torch.equal(closed.aggregate(x), torch.full((1, 1, 4), 0.5))


def test_dfa_with_open_gate_is_a_conv_then_layer_norm():
    torch.manual_seed(0)
    in_dim, out_dim, k = 5, 6, 3
    dfa = DFAConv1d(in_dim, out_dim, k, gate_tau=1.5)
    conv_weight = torch.randn(out_dim, in_dim, k)
    with torch.no_grad():
        dfa.gate_weight.zero_()
        dfa.gate_bias.fill_(50.0)
        # tap-major layout: column i * in_dim + c holds conv_weight[:, c, i]
        dfa.mixing.weight.copy_(conv_weight.permute(0, 2, 1).reshape(out_dim, k * in_dim, 1))
    x = torch.randn(2, in_dim, 9)
    mask = prefix_mask([9, 6], 9)
    x = x * mask
    expected = dfa.norm(F.conv1d(x, conv_weight, dfa.mixing.bias, padding=1)) * mask
    assert torch.allclose(dfa(x, mask), expected, atol=1e-5)


@PATHS
@pytest.mark.parametrize("piece_steps", [1024, 4, 3])
def test_dfa_equals_the_reference(piece_steps, cpu_kernels, monkeypatch):
    # The reference: the gate from a real depthwise conv, the taps by unfolding, an einsum; random,
    # asymmetric weights so that a tap taken from the wrong side shows. Short pieces: a long input
    # aggregated piece by piece on the CPU path gives the same result. Gradients too (float64).
    monkeypatch.setattr(dyfadet, "DFA_PIECE_STEPS", piece_steps)
    torch.manual_seed(3)
    in_dim, out_dim, k, tau = 4, 5, 5, 0.7
    dfa = DFAConv1d(in_dim, out_dim, k, gate_tau=tau).double()
    with torch.no_grad():
        dfa.gate_weight.normal_()
        dfa.gate_bias.normal_()
    mask = prefix_mask([11, 8], 11)
    x = (torch.randn(2, in_dim, 11, dtype=torch.float64) * mask).requires_grad_()
    with fastpath.forced(cpu_kernels):
        out = dfa(x, mask)
    expected = reference.dfa_conv(dfa, x, mask)
    assert_same_outputs_and_gradients([out], [expected], [x, *dfa.parameters()], atol=1e-10, rtol=1e-10)


@PATHS
def test_dfa_gate_belongs_to_the_output_position(cpu_kernels):
    # Gate logits from a depthwise conv that only looks at x[t] (centre tap): a gate closed at t
    # zeroes output t even though its neighbours' inputs are non-zero.
    dfa = _dfa_with_constant_gate([1.0, 1.0, 1.0], gate_logit=0.0)
    with torch.no_grad():
        dfa.gate_weight.copy_(torch.tensor([[[0.0, 100.0, 0.0]]]))
    x = torch.tensor([[[1.0, -1.0, 1.0]]])  # logit -100 at t=1: gate closed there
    with fastpath.forced(cpu_kernels):
        out = dfa.aggregate(x)
    assert out[0, 0, 1].item() == 0.0
    assert out[0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)  # gate ~1 at t=0: 0 + 1 - 1
    assert out[0, 0, 2].item() == pytest.approx(0.0, abs=1e-6)


def test_the_gate_and_depthwise_kernels_draw_torch_conv_init():
    # The DFA gate and the DynE kernels were nn.Conv1d modules in state format 1: the same seed
    # must still give the same numbers, and leave the generator where the conv left it.
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 6, 5, groups=6)
    after_conv = torch.rand(4)
    torch.manual_seed(0)
    weight, bias = torch.empty(6, 1, 5), torch.empty(6)
    conv_default_init(weight, bias)
    assert torch.equal(weight, conv.weight) and torch.equal(bias, conv.bias)
    assert torch.equal(torch.rand(4), after_conv)


# ---------------------------------------------------------------------------------------------
# DynE layer


# (w, k) of the released THUMOS, ANet, HACS, EPIC-verb and EPIC-noun configs
@pytest.mark.parametrize(
    ("window", "expansion", "size"), [(1, 5.0, 11), (15, 1.2, 19), (3, 1.2, 5), (5, 2.0, 13), (1, 4.0, 9)]
)
def test_expanded_kernel_size_matches_released_configs(window, expansion, size):
    assert expanded_kernel_size(window, expansion) == size


def test_depthwise_kernel_one_matches_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(4, 4, 1, groups=4)
    x = torch.randn(2, 4, 7)
    assert torch.allclose(depthwise(x, conv.weight, conv.bias), conv(x), atol=1e-6)


# window 1 and 3 with expansion 2 (K = 5, 9); window 5 with expansion 0.5 (K = 3 < w)
@pytest.mark.parametrize(("window", "expansion", "downsample"), [(1, 2.0, False), (3, 2.0, False), (3, 2.0, True),
                                                                   (5, 0.5, False)])
def test_dyne_equals_the_reference(window, expansion, downsample):
    # float64: the ReLUs make gradients jump at 0 (see test_reference.py).
    torch.manual_seed(0)
    layer = DynELayer(8, 12, window, expansion, downsample, drop_path=0.1, layer_scale=True, init_std=0.3)
    layer = layer.double().eval()
    with torch.no_grad():
        layer.mix_residual[0].scale.fill_(0.7)  # LayerScale 1e-4 would hide the mixer
    mask = prefix_mask([20, 13], 20)
    x = (torch.randn(2, 8, 20, dtype=torch.float64) * mask).requires_grad_()
    out, out_mask = layer(x, mask)
    expected, expected_mask = reference.dyne_layer(layer, x, mask)
    assert torch.equal(out_mask, expected_mask)
    assert_same_outputs_and_gradients([out], [expected], [x, *layer.parameters()], atol=1e-10, rtol=1e-10)


def test_dyne_downsampling_halves_time_and_ignores_padding():
    torch.manual_seed(0)
    layer = DynELayer(8, 12, 3, 2.0, downsample=True, drop_path=0.0, layer_scale=True, init_std=0.3).eval()
    x = torch.randn(1, 8, 16)
    short, short_mask = layer(x, torch.ones(1, 1, 16, dtype=torch.bool))
    padded = torch.cat([x, torch.zeros(1, 8, 16)], dim=-1)
    long, long_mask = layer(padded, prefix_mask([16], 32))
    assert short.shape == (1, 8, 8) and long.shape == (1, 8, 16)
    assert torch.allclose(long[..., :8], short, atol=1e-5)
    assert torch.equal(long[..., 8:], torch.zeros(1, 8, 8))
    assert torch.equal(long_mask, prefix_mask([8], 16))
