"""The paper's spatial-temporal attention (Eq. 4-5): formulas, the mask, the reference and the
packed adapter of the head."""

import torch
from tests.model.helpers import assert_same_outputs_and_gradients, prefix_mask

from mgrec.model import reference
from mgrec.model.attention import SpatialTemporalAttention
from mgrec.model.heads import attend_packed, attend_paths
from mgrec.model.masking import masked_max, masked_mean
from mgrec.model.pyramid import Segments


def test_spatial_temporal_attention_gates_are_in_unit_interval_and_match_formulas():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7)
    mask = prefix_mask([12, 7], 12)
    x = torch.randn(2, 8, 12) * 3
    channel = attention.channel_gate(masked_mean(x, mask), masked_max(x, mask))
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


def test_spatial_temporal_attention_equals_the_reference():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7).double()
    mask = prefix_mask([12, 7], 12)
    x = (torch.randn(2, 8, 12, dtype=torch.float64) * 3 * mask).requires_grad_()
    out, expected = attention(x, mask), reference.spatial_temporal_attention(attention, x, mask)
    assert_same_outputs_and_gradients([out], [expected], [x, *attention.parameters()], atol=1e-10, rtol=1e-10)


def test_the_packed_adapter_with_one_segment_is_the_attention_times_the_scale():
    torch.manual_seed(0)
    attention = SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7)
    mask = prefix_mask([12, 7], 12)
    x = torch.randn(2, 8, 12) * mask
    scale = torch.rand(12)
    packed = attend_packed(attention, x, mask, scale, Segments(mask, [(0, 12)]))
    assert torch.allclose(packed, attention(x, mask) * scale, atol=1e-6)


def test_attending_all_paths_at_once_is_each_attention_times_its_scale_summed_per_group():
    # Three paths in one pass (stacked weights, a block-diagonal time conv) against the modules one
    # by one, with two segments pooled apart and a padded video; in one group (summed) and in three
    # (apart); outputs and gradients.
    torch.manual_seed(0)
    attentions = torch.nn.ModuleList([SpatialTemporalAttention(8, mlp_ratio=2, kernel_size=7) for _ in range(3)])
    attentions = attentions.double()
    mask = prefix_mask([20, 13], 20)
    paths = (torch.randn(2, 3, 8, 20, dtype=torch.float64) * mask[:, None]).requires_grad_()
    scales = torch.rand(3, 20, dtype=torch.float64)
    bounds = [(0, 12), (16, 20)]  # a masked gap between them, as between packed levels
    gapped = mask.clone()
    gapped[..., 12:16] = False
    segments = Segments(gapped, bounds)
    summed = attend_paths(list(attentions), paths * gapped[:, None], gapped.double(), scales, segments)
    apart = attend_paths(list(attentions), paths * gapped[:, None], gapped.double(), scales, segments, groups=3)
    attended = []
    for path, attention in enumerate(attentions):
        x = paths[:, path] * gapped
        per_segment = [attention(x[..., begin:end], gapped[..., begin:end]) for begin, end in bounds]
        attended.append(torch.cat([per_segment[0], torch.zeros_like(x[..., 12:16]), per_segment[1]], dim=-1))
    weighted = [a * scale for a, scale in zip(attended, scales)]
    expected = [sum(weighted), *weighted]
    assert summed.shape == (2, 1, 8, 20) and apart.shape == (2, 3, 8, 20)
    assert_same_outputs_and_gradients([summed[:, 0], *apart.unbind(1)], expected, [paths, *attentions.parameters()],
                                      atol=1e-10, rtol=1e-10)


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
