"""The packed pyramid: its layout, neighbour gathers and per-segment statistics."""

import pytest
import torch
from tests.model.helpers import prefix_mask

from mgrec.model.masking import masked_max, masked_mean
from mgrec.model.pyramid import PackedLevels, Segments


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
    whole = Segments(mask, [(0, 9)])
    assert torch.allclose(whole.mean(x), masked_mean(x, mask), atol=1e-6)
    assert torch.equal(whole.max(x), masked_max(x, mask))


def test_segment_max_fills_masked_steps_below_any_real_value_in_every_dtype():
    # Real values far below zero, masked ones (which the contract makes zero) holding large values.
    mask = torch.tensor([[[1, 1, 0, 0, 1, 1, 0]]], dtype=torch.bool)
    x = torch.tensor([[[-1e30, -5.0, 0.0, 1e6, -3e38, -2e38, 7.0]]])
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        segments = Segments(mask, [(0, 2), (4, 6)])
        peaks = segments.max(x.to(dtype))
        assert peaks.dtype == dtype
        assert torch.equal(peaks, torch.tensor([[[-5.0, -2e38]]]).to(dtype))


def test_segment_without_real_positions_pools_to_zero():
    x = torch.randn(1, 2, 6)
    mask = torch.tensor([[[1, 1, 1, 0, 0, 0]]], dtype=torch.bool)
    segments = Segments(mask, [(0, 3), (3, 6)])
    assert torch.equal(segments.max(x)[..., 1], torch.zeros(1, 2))
    assert torch.equal(segments.mean(x)[..., 1], torch.zeros(1, 2))


def test_packed_levels_layout_and_neighbour_gathers():
    masks = [prefix_mask([8, 5], 8), prefix_mask([4, 3], 4), prefix_mask([2, 2], 2)]
    levels = PackedLevels(masks, gap=2)
    assert levels.starts == [0, 10, 16] and levels.total == 18
    feats = [torch.arange(100 * (level + 1), 100 * (level + 1) + m.shape[-1]).float().expand(2, 1, -1) * m
             for level, m in enumerate(masks)]
    packed = levels.pack(feats)
    assert torch.equal(packed[..., 8:10], torch.zeros(2, 1, 2))  # the gap
    assert all(torch.equal(a, b) for a, b in zip(levels.unpack(packed), feats))
    # Level 1 from level 0 at its even steps; level 2 from level 1: masked where level l is padded.
    assert torch.equal(levels.from_finer(packed)[0, 0], torch.tensor([100.0, 102, 104, 106, 0, 0, 200, 202]))
    assert torch.equal(levels.from_finer(packed)[1, 0], torch.tensor([100.0, 102, 104, 0, 0, 0, 200, 202]))
    # Level 0 from level 1 and level 1 from level 2, every step twice.
    coarser = levels.from_coarser(packed)
    expected = torch.tensor([200.0, 200, 201, 201, 202, 202, 203, 203, 0, 0, 300, 300, 301, 301])
    assert torch.equal(coarser[0, 0], expected)
    # Video 1: level 0 has 5 real steps; upsampling would copy 202 onto step 5, the mask zeroes it.
    assert torch.equal(coarser[1, 0, :8], torch.tensor([200.0, 200, 201, 201, 202, 0, 0, 0]))
    assert torch.equal(levels.spread(torch.tensor([1.0, 2.0, 3.0]), 1, 2), torch.tensor([2.0] * 6 + [3.0] * 2))
    with pytest.raises(ValueError, match="half as long"):
        PackedLevels([prefix_mask([8], 8), prefix_mask([3], 3)], gap=1)
