"""The mask contract's helpers: masked statistics and downsampling, hand-computed; the pointwise conv."""

import pytest
import torch
from tests.model.helpers import prefix_mask

from mgrec.model import fastpath
from mgrec.model.masking import (
    MaskedConv1d,
    PointwiseConv1d,
    apply_mask,
    downsample,
    mask_weights,
    masked_max,
    masked_mean,
    max_over,
)


def test_masked_mean_and_max_ignore_padding():
    x = torch.tensor([[[1.0, -2.0, 3.0, 100.0], [-5.0, -1.0, -3.0, 50.0]]])
    mask = prefix_mask([3], 4)
    assert torch.allclose(masked_mean(x, mask).squeeze(), torch.tensor([2.0 / 3.0, -3.0]))
    assert torch.equal(masked_max(x, mask).squeeze(), torch.tensor([3.0, -1.0]))


def test_masked_max_of_empty_sequence_is_zero_not_inf():
    x = torch.randn(1, 3, 4)
    assert torch.equal(masked_max(x, torch.zeros(1, 1, 4, dtype=torch.bool)), torch.zeros(1, 3, 1))


def test_max_over_gives_the_same_values_and_gradients_with_and_without_grad():
    x = torch.tensor([[[1.0, 5.0, 2.0], [-3.0, -1.0, -2.0]]], requires_grad=True)
    with torch.no_grad():
        assert torch.equal(max_over(x, -1), torch.tensor([[[5.0], [-1.0]]]))
    max_over(x, -1).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]]))


def test_downsample_pools_only_real_positions():
    # Real length 5 (odd): the window of output 2 covers inputs 3, 4 and the first padded step.
    x = torch.tensor([[[-4.0, -3.0, -7.0, -1.0, -6.0, 0.0, 0.0, 0.0]]])
    mask = prefix_mask([5], 8)
    pooled, new_mask = downsample(x, mask)
    # windows (pad -inf at the start): [-inf,-4,-3], [-3,-7,-1], [-1,-6,pad]; output 3 is padding.
    assert torch.equal(pooled, torch.tensor([[[-3.0, -1.0, -1.0, 0.0]]]))
    assert torch.equal(new_mask, torch.tensor([[[True, True, True, False]]]))


def test_masked_conv_is_zero_at_padding_despite_its_bias():
    torch.manual_seed(0)
    conv = MaskedConv1d(3, 4, 3)
    mask = prefix_mask([5], 8)
    out = conv(torch.randn(1, 3, 8) * mask, mask)
    assert torch.equal(out[..., 5:], torch.zeros(1, 4, 3))
    assert torch.all(out[..., :5] != 0)


def test_mask_weights_mask_exactly_as_the_bool_mask_in_every_dtype():
    mask = prefix_mask([5, 2], 6)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        x = torch.randn(2, 3, 6).to(dtype)
        for weights in (mask_weights(mask), mask_weights(mask, dtype)):
            masked = apply_mask(x, weights)
            assert masked.dtype == dtype  # float32 weights never promote bf16 features
            assert torch.equal(masked, apply_mask(x, mask))
            assert torch.equal(masked_mean(x, weights), masked_mean(x, mask))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_is_the_kernel_1_conv_with_its_gradients(batch, bias):
    torch.manual_seed(0)
    pointwise = PointwiseConv1d(6, 4, bias=bias)
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 4, 1, bias=bias)  # the same init draws: the same weights
    assert all(torch.equal(a, b) for a, b in zip(pointwise.parameters(), conv.parameters()))
    assert pointwise.state_dict().keys() == conv.state_dict().keys()
    x = torch.randn(batch, 6, 9, requires_grad=True)
    with fastpath.forced(cpu=False):  # the plain form is the conv itself
        assert torch.equal(pointwise(x), conv(x))
    ours, theirs = pointwise(x), conv(x)
    assert torch.allclose(ours, theirs, atol=1e-6)
    weights = torch.randn(ours.shape)
    grads = [torch.autograd.grad((weights * out).sum(), [x, *module.parameters()])
             for out, module in ((ours, pointwise), (theirs, conv))]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-5)


def test_pointwise_conv_under_bf16_autocast_gives_bf16_as_the_conv_does():
    torch.manual_seed(0)
    pointwise = PointwiseConv1d(6, 4)
    x = torch.randn(2, 6, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = pointwise(x), torch.nn.functional.conv1d(x, pointwise.weight, pointwise.bias)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    assert torch.allclose(ours.float(), theirs.float(), atol=0.02)


def test_pointwise_conv_refuses_unbatched_features_by_their_shape():
    with pytest.raises(ValueError, match=r"takes \(B, C, T\) features, got shape \(6, 9\)"):
        PointwiseConv1d(6, 4)(torch.randn(6, 9))
