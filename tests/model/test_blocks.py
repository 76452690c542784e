"""Masked building blocks: hand-computed cases, brute-force references and mask invariants."""

import math

import pytest
import torch
import torch.nn.functional as F

from mgrec.model import blocks
from mgrec.model.blocks import (
    ChannelLayerNorm,
    DFAConv1d,
    DropPath,
    DynELayer,
    LocalSelfAttention,
    Segments,
    SpatialTemporalAttention,
    apply_depthwise,
    downsample,
    expanded_kernel_size,
    geretanh_from_doubled_shift,
    max_over,
    masked_mean,
)


def prefix_mask(lengths, total):
    return (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1)


# ---------------------------------------------------------------------------------------------
# Masked statistics, resampling, norm


def test_masked_mean_and_max_ignore_padding():
    x = torch.tensor([[[1.0, -2.0, 3.0, 100.0], [-5.0, -1.0, -3.0, 50.0]]])
    mask = prefix_mask([3], 4)
    assert torch.allclose(masked_mean(x, mask).squeeze(), torch.tensor([2.0 / 3.0, -3.0]))
    assert torch.equal(Segments.whole(mask).max(x).squeeze(), torch.tensor([3.0, -1.0]))


def test_max_over_gives_the_same_values_and_gradients_with_and_without_grad():
    x = torch.tensor([[[1.0, 5.0, 2.0], [-3.0, -1.0, -2.0]]], requires_grad=True)
    with torch.no_grad():
        assert torch.equal(max_over(x, -1), torch.tensor([[[5.0], [-1.0]]]))
    max_over(x, -1).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]))


def test_masked_max_of_empty_sequence_is_zero_not_inf():
    x = torch.randn(1, 3, 4)
    result = Segments.whole(torch.zeros(1, 1, 4, dtype=torch.bool)).max(x)
    assert torch.equal(result, torch.zeros(1, 3, 1))


def test_downsample_pools_only_real_positions():
    # Real length 5 (odd): the window of output 2 covers inputs 3, 4 and the first padded step.
    x = torch.tensor([[[-4.0, -3.0, -7.0, -1.0, -6.0, 0.0, 0.0, 0.0]]])
    mask = prefix_mask([5], 8)
    pooled, new_mask = downsample(x, mask)
    # windows (pad -inf at the start): [-inf,-4,-3], [-3,-7,-1], [-1,-6,pad]; output 3 is padding.
    assert torch.equal(pooled, torch.tensor([[[-3.0, -1.0, -1.0, 0.0]]]))
    assert torch.equal(new_mask, torch.tensor([[[True, True, True, False]]]))


def test_segments_pool_each_stretch_over_its_real_positions_only():
    # Two segments [0, 4) and [6, 9) with masked steps between them and a padded tail in video 1.
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0, 1, 0, 0]], dtype=torch.bool)[:, None]
    segments = Segments(mask, [(0, 4), (6, 9)])
    for b in range(2):
        for s, (begin, end) in enumerate(segments.bounds):
            real = x[b, :, begin:end][:, mask[b, 0, begin:end]]
            assert torch.allclose(segments.mean(x)[b, :, s], real.mean(-1), atol=1e-6)
            assert torch.equal(segments.max(x)[b, :, s], real.amax(-1))
    values = torch.tensor([[10.0, 20.0]])
    assert torch.equal(segments.spread(values)[0, :4], torch.full((4,), 10.0))
    assert torch.equal(segments.spread(values)[0, 6:], torch.full((3,), 20.0))
    # One segment: the plain masked statistics.
    whole = Segments.whole(mask)
    assert torch.allclose(whole.mean(x), masked_mean(x, mask), atol=1e-6)
    assert torch.equal(whole.max(x), torch.where(mask, x, float("-inf")).amax(-1, keepdim=True))


def test_segment_without_real_positions_pools_to_zero():
    x = torch.randn(1, 2, 6)
    mask = torch.tensor([[[1, 1, 1, 0, 0, 0]]], dtype=torch.bool)
    segments = Segments(mask, [(0, 3), (3, 6)])
    assert torch.equal(segments.max(x)[..., 1], torch.zeros(1, 2))
    assert torch.equal(segments.mean(x)[..., 1], torch.zeros(1, 2))


def test_channel_layer_norm_normalises_each_time_step_over_channels():
    torch.manual_seed(0)
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(2, 6, 5)
    reference = F.layer_norm(x.permute(0, 2, 1), (6,), norm.weight, norm.bias).permute(0, 2, 1)
    assert torch.allclose(norm(x), reference, atol=1e-6)
    # Statistics are per time step: changing one step leaves the others alone.
    y = x.clone()
    y[:, :, 4] = 1000.0
    assert torch.allclose(norm(y)[..., :4], norm(x)[..., :4], atol=1e-6)


def test_channel_layer_norm_is_accurate_under_bf16_autocast():
    # Features far from zero: variance computed in bf16 would lose most of its digits.
    torch.manual_seed(0)
    norm = ChannelLayerNorm(64)
    x = (torch.randn(2, 64, 50) * 3 + 100).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = norm(x)
    reference = F.layer_norm(x.float().transpose(1, 2), (64,)).transpose(1, 2)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), reference, atol=0.02)


def test_channel_layer_norm_gradients_match_the_native_layer_norm():
    torch.manual_seed(0)
    x = (torch.randn(2, 6, 5, dtype=torch.float64) * 3 + 1).requires_grad_()
    weight = torch.rand(6, dtype=torch.float64).add_(0.5).requires_grad_()
    bias = torch.randn(6, dtype=torch.float64).requires_grad_()
    upstream = torch.randn(2, 6, 5, dtype=torch.float64)
    norm = ChannelLayerNorm(6).double()
    norm.weight, norm.bias = torch.nn.Parameter(weight), torch.nn.Parameter(bias)
    ours = torch.autograd.grad((norm(x) * upstream).sum(), (x, norm.weight, norm.bias))
    native = F.layer_norm(x.transpose(1, 2), (6,), norm.weight, norm.bias).transpose(1, 2)
    reference = torch.autograd.grad((native * upstream).sum(), (x, norm.weight, norm.bias))
    for a, b in zip(ours, reference):
        assert torch.allclose(a, b, atol=1e-10)


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training():
    torch.manual_seed(0)
    drop = DropPath(0.5)
    x = torch.ones(64, 3, 4)
    assert torch.equal(drop.eval()(x), x)
    out = drop.train()(x)
    per_sample = out.flatten(1)
    dropped = (per_sample == 0).all(dim=1)
    kept = (per_sample == 2.0).all(dim=1)  # rescaled by 1 / keep = 2
    assert torch.all(dropped | kept)
    assert 0 < int(dropped.sum()) < 64


def test_apply_depthwise_kernel_one_matches_conv():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(4, 4, 1, groups=4)
    x = torch.randn(2, 4, 7)
    assert torch.allclose(apply_depthwise(conv, x), conv(x), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# GeReTanH and the DFA conv


def geretanh(z, tau):
    """DyFADet's gate as written in the paper."""
    return torch.relu((torch.tanh(z - tau) + math.tanh(tau)) / (1.0 + math.tanh(tau)))


def test_geretanh_from_doubled_shift_is_the_gate():
    tau = 1.5
    z = torch.linspace(-5, 8, 301)
    assert torch.allclose(geretanh_from_doubled_shift(2 * (z - tau), tau), geretanh(z, tau), atol=1e-6)
    # Exactly 0 for z <= 0 (positions can be switched off), tends to 1 for large z.
    assert torch.equal(geretanh_from_doubled_shift(2 * (torch.tensor([-10.0, -1.0, 0.0]) - tau), tau), torch.zeros(3))
    assert geretanh_from_doubled_shift(torch.tensor([60.0]), tau).item() == pytest.approx(1.0, abs=1e-6)


def _dfa_with_constant_gate(weights_by_tap, gate_logit, bias=0.0):
    """A 1-channel DFA whose gate logit is the constant `gate_logit` and whose taps are weighted."""
    dfa = DFAConv1d(1, 1, len(weights_by_tap), gate_tau=1.5)
    with torch.no_grad():
        dfa.gate_logits.weight.zero_()
        dfa.gate_logits.bias.fill_(gate_logit)
        dfa.mixing.weight.copy_(torch.tensor(weights_by_tap).view(1, -1, 1))
        dfa.mixing.bias.fill_(bias)
    return dfa


def test_dfa_open_gate_hand_computed():
    # taps (t-1, t, t+1) weighted (1, 10, 100), zero padding at both ends.
    dfa = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=50.0)
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    assert torch.allclose(dfa.aggregate(x), torch.tensor([[[210.0, 321.0, 432.0, 43.0]]]))


def test_dfa_gate_scales_taps_and_closed_gate_leaves_bias():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    half_open = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=1.5)
    g = math.tanh(1.5) / (1.0 + math.tanh(1.5))
    expected = g * torch.tensor([[[210.0, 321.0, 432.0, 43.0]]])
    assert torch.allclose(half_open.aggregate(x), expected, atol=1e-4)
    closed = _dfa_with_constant_gate([1.0, 10.0, 100.0], gate_logit=-1.0, bias=0.5)
    assert torch.equal(closed.aggregate(x), torch.full((1, 1, 4), 0.5))


def test_dfa_with_open_gate_is_a_conv_then_layer_norm():
    torch.manual_seed(0)
    in_dim, out_dim, k = 5, 6, 3
    dfa = DFAConv1d(in_dim, out_dim, k, gate_tau=1.5)
    conv_weight = torch.randn(out_dim, in_dim, k)
    with torch.no_grad():
        dfa.gate_logits.weight.zero_()
        dfa.gate_logits.bias.fill_(50.0)
        # tap-major layout: column i * in_dim + c holds conv_weight[:, c, i]
        dfa.mixing.weight.copy_(conv_weight.permute(0, 2, 1).reshape(out_dim, k * in_dim, 1))
    x = torch.randn(2, in_dim, 9)
    mask = prefix_mask([9, 6], 9)
    x = x * mask
    expected = dfa.norm(F.conv1d(x, conv_weight, dfa.mixing.bias, padding=1)) * mask
    assert torch.allclose(dfa(x, mask), expected, atol=1e-5)


@pytest.mark.parametrize("piece_steps", [1024, 4, 3])
def test_dfa_matches_the_formula_with_a_depthwise_gate_conv(piece_steps, monkeypatch):
    # The reference: gate logits from the gate module's depthwise conv itself, the taps by
    # unfolding; random, asymmetric weights so that a tap taken from the wrong side shows.
    # Short pieces: a long input aggregated piece by piece gives the same result.
    monkeypatch.setattr(blocks, "DFA_PIECE_STEPS", piece_steps)
    torch.manual_seed(3)
    in_dim, out_dim, k, tau = 4, 5, 5, 0.7
    dfa = DFAConv1d(in_dim, out_dim, k, gate_tau=tau)
    with torch.no_grad():
        dfa.gate_logits.weight.normal_()
        dfa.gate_logits.bias.normal_()
    x = torch.randn(2, in_dim, 11)
    gate = geretanh(dfa.gate_logits(x), tau)  # (B, in, T)
    taps = F.pad(x, (k // 2, k // 2)).unfold(-1, k, 1)  # (B, in, T, k): taps[..., i] = x[t + i - k // 2]
    weight = dfa.mixing.weight[:, :, 0].view(out_dim, k, in_dim)  # tap-major columns
    expected = torch.einsum("oic,bcti,bct->bot", weight, taps, gate) + dfa.mixing.bias[:, None]
    assert torch.allclose(dfa.aggregate(x), expected, atol=1e-5)


def test_dfa_gate_belongs_to_the_output_position():
    # Gate logits from a depthwise conv that only looks at x[t] (centre tap): a gate closed at t
    # zeroes output t even though its neighbours' inputs are non-zero.
    dfa = _dfa_with_constant_gate([1.0, 1.0, 1.0], gate_logit=0.0)
    with torch.no_grad():
        dfa.gate_logits.weight.copy_(torch.tensor([[[0.0, 100.0, 0.0]]]))
    x = torch.tensor([[[1.0, -1.0, 1.0]]])  # logit -100 at t=1: gate closed there
    out = dfa.aggregate(x)
    assert out[0, 0, 1].item() == 0.0
    assert out[0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)  # gate ~1 at t=0: 0 + 1 - 1
    assert out[0, 0, 2].item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# DynE layer


# (w, k) of the released THUMOS, ANet, HACS, EPIC-verb and EPIC-noun configs
@pytest.mark.parametrize(
    ("window", "expansion", "size"), [(1, 5.0, 11), (15, 1.2, 19), (3, 1.2, 5), (5, 2.0, 13), (1, 4.0, 9)]
)
def test_expanded_kernel_size_matches_released_configs(window, expansion, size):
    assert expanded_kernel_size(window, expansion) == size


def _dyne_reference(layer, x, mask):
    """DynE written out with each conv run separately (no kernel merging), eval mode, no downsample."""
    m = mask.float()
    u = layer.norm(x) * m
    mean = (u * m).sum(-1, keepdim=True) / m.sum(-1, keepdim=True)
    phi = F.relu(layer.instance_gate(mean))
    instance = layer.instance_value(u) * phi
    multi = F.relu(layer.window_conv(u) + layer.expanded_conv(u)) * layer.window_gate(u)
    y = (x + layer.mix_residual(instance + multi + u)) * m
    return (y + layer.ffn_residual(layer.ffn(layer.ffn_norm(y)))) * m


@pytest.mark.parametrize("window", [1, 3])
def test_dyne_matches_a_plain_reference(window):
    torch.manual_seed(0)
    layer = DynELayer(8, 12, window, 2.0, downsample=False, drop_path=0.1, layer_scale=True, init_std=0.3).eval()
    mask = prefix_mask([20, 13], 20)
    x = torch.randn(2, 8, 20) * mask
    out, out_mask = layer(x, mask)
    assert torch.equal(out_mask, mask)
    assert torch.allclose(out, _dyne_reference(layer, x, mask), atol=1e-5)


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


# ---------------------------------------------------------------------------------------------
# Spatial-temporal attention


def test_spatial_temporal_attention_gates_are_in_unit_interval_and_match_formulas():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7)
    mask = prefix_mask([12, 7], 12)
    x = torch.randn(2, 8, 12) * 3
    channel = attention.channel_gate(x, Segments.whole(mask))
    time = attention.time_gate(x * channel, mask)
    assert channel.shape == (2, 8, 1) and time.shape == (2, 1, 12)
    assert torch.all((channel > 0) & (channel < 1)) and torch.all((time > 0) & (time < 1))
    # Eq. 4 by hand for the second (shorter) video: pooling over its 7 real steps only.
    real = x[1, :, :7]
    mlp = attention.channel_mlp
    expected = torch.sigmoid(mlp(real.mean(-1)) + mlp(real.amax(-1)))
    assert torch.allclose(channel[1, :, 0], expected, atol=1e-6)
    # Eq. 5 by hand: channel mean and max of the channel-gated features, conv over time.
    gated = x[1:] * channel[1:]
    maps = torch.cat([gated.mean(1, keepdim=True), gated.amax(1, keepdim=True)], 1) * mask[1:]
    assert torch.allclose(time[1:], torch.sigmoid(attention.time_conv(maps)), atol=1e-6)


def test_spatial_temporal_attention_ignores_whatever_is_in_the_padding():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7)
    mask = prefix_mask([12, 7], 12)
    clean = torch.randn(2, 8, 12) * mask
    dirty = clean + torch.randn(2, 8, 12) * 5 * ~mask
    out = attention(dirty, mask)
    assert torch.allclose(out, attention(clean, mask), atol=1e-6)
    assert torch.equal(out[1, :, 7:], torch.zeros(8, 5))


def test_spatial_temporal_attention_ignores_padding_length():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7)
    x = torch.randn(1, 8, 10)
    alone = attention(x, torch.ones(1, 1, 10, dtype=torch.bool))
    padded = attention(torch.cat([x, torch.zeros(1, 8, 6)], -1), prefix_mask([10], 16))
    assert torch.allclose(padded[..., :10], alone, atol=1e-6)
    assert torch.equal(padded[..., 10:], torch.zeros(1, 8, 6))


# ---------------------------------------------------------------------------------------------
# Local self-attention


def _dense_local_attention(attention, x, mask):
    """Brute force: full (T, T) attention with a band mask |i - j| <= half and the key mask."""
    batch, dim, length = x.shape
    heads, head_dim = attention.heads, dim // attention.heads
    q, k, v = attention.qkv(x).reshape(batch, 3, heads, head_dim, length).permute(1, 0, 2, 4, 3)
    pos = torch.arange(length)
    band = (pos[:, None] - pos[None, :]).abs() <= attention.half
    allowed = band & (mask[:, :, None, :] | torch.eye(length, dtype=torch.bool))  # (B, 1, T, T)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    out = (weights @ v).permute(0, 1, 3, 2).reshape(batch, dim, length)
    return attention.proj(out) * mask


@pytest.mark.parametrize(("window", "length"), [(5, 16), (7, 23), (19, 64), (1, 6)])
def test_local_attention_matches_dense_banded_attention(window, length):
    torch.manual_seed(0)
    attention = LocalSelfAttention(16, heads=4, window=window)
    mask = prefix_mask([length, max(1, length - 7)], length)
    x = torch.randn(2, 16, length) * mask
    assert torch.allclose(attention(x, mask), _dense_local_attention(attention, x, mask), atol=1e-5)
