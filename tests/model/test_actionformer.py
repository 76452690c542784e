"""ActionFormer's local self-attention and transformer block against `mgrec.model.reference`."""

import pytest
import torch
from tests.model.helpers import assert_same_outputs_and_gradients, prefix_mask

from mgrec.model import reference
from mgrec.model.actionformer import LocalSelfAttention, TransformerBlock


@pytest.mark.parametrize(("window", "length"), [(5, 16), (7, 23), (19, 64), (1, 6)])
def test_local_attention_equals_dense_banded_attention(window, length):
    torch.manual_seed(0)
    attention = LocalSelfAttention(16, heads=4, window=window)
    mask = prefix_mask([length, max(1, length - 7)], length)
    x = torch.randn(2, 16, length) * mask
    assert torch.allclose(attention(x, mask), reference.local_self_attention(attention, x, mask), atol=1e-5)


@pytest.mark.parametrize("downsample", [False, True])
def test_transformer_block_equals_the_reference(downsample):
    torch.manual_seed(0)
    block = TransformerBlock(16, heads=4, window=5, downsample=downsample, drop_path=0.1).double().eval()
    with torch.no_grad():
        block.attn_residual[0].scale.fill_(0.8)  # LayerScale 1e-4 would hide the attention
        block.mlp_residual[0].scale.fill_(0.6)
    mask = prefix_mask([24, 15], 24)
    x = (torch.randn(2, 16, 24, dtype=torch.float64) * mask).requires_grad_()
    out, out_mask = block(x, mask)
    expected, expected_mask = reference.transformer_block(block, x, mask)
    assert torch.equal(out_mask, expected_mask)
    assert_same_outputs_and_gradients([out], [expected], [x, *block.parameters()], atol=1e-10, rtol=1e-10)
