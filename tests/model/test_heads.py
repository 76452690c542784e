"""The packed detection heads against a plain level-by-level reference, outputs and gradients."""

import pytest
import torch

from mgrec.model.detector import build_detector
from mgrec.model.heads import AttentionFusion, ConvTower, DFAFusion, DynamicTower
from mgrec.model.pyramid import PackedLevels
from tests.model.test_detector import VARIANTS, perturbed, prefix_mask, tiny_config

# --------------------------------------------------------------------------------------------
# The reference: every op level by level, as the heads module's docstring describes them.


def resize_nearest(x, length):
    """Nearest-neighbour resize of the time axis by a factor of two (down or up) or one."""
    if x.shape[-1] == length:
        return x
    return x[..., ::2] if x.shape[-1] == 2 * length else x.repeat_interleave(2, dim=-1)


def reference_attention_fusion(fusion: AttentionFusion, feats, masks):
    fused = []
    for level, mask in enumerate(masks):
        present = [path for path in range(3) if 0 <= level - 1 + path < len(feats)]
        weights = torch.softmax(fusion.path_logits[present], dim=0)
        terms = [
            fusion.attend[path](resize_nearest(feats[level - 1 + path], mask.shape[-1]), mask) * weight
            for path, weight in zip(present, weights)
        ]
        fused.append(sum(terms))
    return fused


def reference_dfa_fusion(fusion: DFAFusion, feats, masks):
    fused = []
    for level, (x, mask) in enumerate(zip(feats, masks)):
        neighbours = torch.zeros_like(x)
        if level > 0:
            neighbours = neighbours + resize_nearest(fusion.from_finer(feats[level - 1], masks[level - 1]), x.shape[-1])
        if level + 1 < len(feats):
            coarser = fusion.from_coarser(feats[level + 1], masks[level + 1])
            neighbours = neighbours + resize_nearest(coarser, x.shape[-1]) * mask
        fused.append(fusion.neighbour_weight * neighbours + fusion.own_weight * x)
    return fused


def reference_tower(tower, feats, masks):
    if isinstance(tower, ConvTower):
        for conv, norm in zip(tower.convs, tower.norms):
            feats = [norm(conv(x, m)).relu() * m for x, m in zip(feats, masks)]
        return feats
    assert isinstance(tower, DynamicTower)
    for fusion, conv in zip(tower.fusions, tower.convs):
        fuse = reference_attention_fusion if isinstance(fusion, AttentionFusion) else reference_dfa_fusion
        feats = [conv(x, m).relu() for x, m in zip(fuse(fusion, feats, masks), masks)]
    return feats


def reference_head(head, feats, masks):
    predictors = head.predictors
    cls_feats, reg_feats = reference_tower(head.cls_tower, feats, masks), reference_tower(head.reg_tower, feats, masks)
    logits = [predictors.cls(x, m).transpose(1, 2) for x, m in zip(cls_feats, masks)]
    offsets = [
        (predictors.reg(x, m) * predictors.reg_scales[level]).relu().transpose(1, 2)
        for level, (x, m) in enumerate(zip(reg_feats, masks))
    ]
    return logits, offsets


def pyramid_inputs(model, lengths, total, seed):
    """Per-level features and masks of a batch, as the neck hands them to the head."""
    generator = torch.Generator().manual_seed(seed)
    mask = prefix_mask(lengths, total)
    features = torch.randn(len(lengths), 24, total, generator=generator) * mask
    feats, masks = model.encoder(features, mask)
    return [norm(f) * m for norm, f, m in zip(model.neck, feats, masks)], masks


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("num_levels", [1, 2, 6])
def test_packed_head_equals_the_level_by_level_reference(variant, num_levels):
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config(variant, num_levels=num_levels)))
    model.eval()  # no drop-path: both runs see the same network
    feats, masks = pyramid_inputs(model, [64, 37], 64, seed=1)
    feats = [f.detach().requires_grad_() for f in feats]
    logits, offsets = model.head(feats, masks)
    ref_logits, ref_offsets = reference_head(model.head, feats, masks)
    for level in range(num_levels):
        assert torch.allclose(logits[level], ref_logits[level], atol=1e-5, rtol=1e-4), (variant, level)
        assert torch.allclose(offsets[level], ref_offsets[level], atol=1e-5, rtol=1e-4), (variant, level)

    # Gradients too: the packed head writes into slices in place, which autograd must follow.
    weights = [torch.randn(l.shape) for l in logits] + [torch.randn(o.shape) for o in offsets]

    def grads(outputs):
        loss = sum((w * o).sum() for w, o in zip(weights, outputs))
        params = [p for p in model.head.parameters()] + feats
        return torch.autograd.grad(loss, params, allow_unused=True)

    # (A parameter one of them does not use at all, e.g. the neighbour weight of a one-level
    # pyramid, has no gradient there and a zero one in the other.)
    params = list(model.head.parameters()) + feats
    for param, ours, reference in zip(params, grads(logits + offsets), grads(ref_logits + ref_offsets)):
        ours = torch.zeros_like(param) if ours is None else ours
        reference = torch.zeros_like(param) if reference is None else reference
        assert torch.allclose(ours, reference, atol=1e-4, rtol=1e-3)


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
    assert torch.equal(coarser[0, 0], torch.tensor([200.0, 200, 201, 201, 202, 202, 203, 203, 0, 0, 300, 300, 301, 301]))
    # Video 1: level 0 has 5 real steps; upsampling would copy 202 onto step 5, the mask zeroes it.
    assert torch.equal(coarser[1, 0, :8], torch.tensor([200.0, 200, 201, 201, 202, 0, 0, 0]))
    assert torch.equal(levels.spread(torch.tensor([1.0, 2.0, 3.0]), 1, 2), torch.tensor([2.0] * 6 + [3.0] * 2))
    with pytest.raises(ValueError, match="half as long"):
        PackedLevels([prefix_mask([8], 8), prefix_mask([3], 3)], gap=1)
