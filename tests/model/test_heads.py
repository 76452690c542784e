"""The packed detection heads against the level-by-level reference (`mgrec.model.reference.head`),
outputs and gradients."""

import pytest
import torch
from tests.model.helpers import VARIANTS, assert_same_outputs_and_gradients, perturbed, prefix_mask, tiny_config

from mgrec.model import heads, reference
from mgrec.model.detector import build_detector


def pyramid_inputs(model, lengths, total, seed):
    """Per-level features and masks of a batch, as the neck hands them to the head."""
    generator = torch.Generator().manual_seed(seed)
    mask = prefix_mask(lengths, total)
    features = torch.randn(len(lengths), 24, total, generator=generator, dtype=torch.float64) * mask
    feats, masks = model.encoder(features, mask)
    return [norm(f) * m for norm, f, m in zip(model.neck, feats, masks)], masks


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("num_levels", [1, 2, 6])
@pytest.mark.parametrize("one_pass_limit", [0, 1 << 30], ids=["tower-by-tower", "towers-in-one-pass"])
def test_packed_head_equals_the_level_by_level_reference(variant, num_levels, one_pass_limit, monkeypatch):
    # mgrec's head has two forms, chosen by input size (`heads.ONE_PASS_MAX_ELEMENTS`): both are checked.
    monkeypatch.setattr(heads, "ONE_PASS_MAX_ELEMENTS", one_pass_limit)
    # In float64: the towers' ReLUs make gradients jump where a value crosses 0, and in float32 the
    # two forms' rounding can put a value within 1e-7 of 0 on different sides.
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config(variant, num_levels=num_levels)).double())
    model.eval()  # no drop-path: both runs see the same network
    feats, masks = pyramid_inputs(model, [64, 37], 64, seed=1)
    feats = [f.detach().requires_grad_() for f in feats]
    logits, offsets = model.head(feats, masks)
    ref_logits, ref_offsets = reference.head(model.head, feats, masks)
    # Gradients too: the packed head writes into slices in place, which autograd must follow.
    inputs = list(model.head.parameters()) + feats
    assert_same_outputs_and_gradients(logits + offsets, ref_logits + ref_offsets, inputs, atol=1e-9, rtol=1e-9)
