"""The pyramid encoder's skeleton: levels, strides, masks, and what padding may not change."""

import pytest
import torch
from tests.model.helpers import VARIANTS, perturbed, prefix_mask, tiny_config

from mgrec.model.encoders import Embedding, build_tower


@pytest.mark.parametrize("variant", VARIANTS)
def test_levels_halve_time_and_carry_their_masks(variant):
    cfg = tiny_config(variant, num_levels=4, stem_layers=1)
    tower = perturbed(build_tower(cfg, Embedding(cfg.input_dim, cfg.embed_dim))).eval()
    x = torch.randn(2, cfg.input_dim, 64)
    mask = prefix_mask([64, 40], 64)
    with torch.no_grad():
        feats, masks = tower(x * mask, mask)
    assert [f.shape for f in feats] == [(2, cfg.embed_dim, 64 // 2**level) for level in range(4)]
    assert [m.shape for m in masks] == [(2, 1, 64 // 2**level) for level in range(4)]
    assert [int(m[1].sum()) for m in masks] == [40, 20, 10, 5]  # the shorter video's steps at every level
    for f, m in zip(feats, masks):
        assert torch.all(f.masked_select(~m.expand_as(f)) == 0)  # padded positions stay zero


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_padding_of_a_batch_changes_nothing_of_a_video(variant):
    # one video alone or beside a longer one (padded to its length): the same features at its real steps
    cfg = tiny_config(variant, num_levels=3, stem_layers=1)
    tower = perturbed(build_tower(cfg, Embedding(cfg.input_dim, cfg.embed_dim))).eval()
    short = torch.randn(1, cfg.input_dim, 32)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 32)), torch.randn(1, cfg.input_dim, 64)])
    with torch.no_grad():
        alone, _ = tower(short, prefix_mask([32], 32))
        padded, _ = tower(batch * prefix_mask([32, 64], 64), prefix_mask([32, 64], 64))
    for level, (a, b) in enumerate(zip(alone, padded)):
        torch.testing.assert_close(b[:1, :, : a.shape[-1]], a, atol=1e-4, rtol=1e-4, msg=f"level {level}")
