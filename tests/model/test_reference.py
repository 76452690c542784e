"""The fast detector equals `mgrec.model.reference` for every variant: outputs and gradients on a
padded batch, through `ReferenceDetector`, which shares the detector's parameters."""

import pytest
import torch
from tests.model.helpers import VARIANTS, assert_same_outputs_and_gradients, perturbed, prefix_mask, tiny_config

from mgrec.model.detector import build_detector
from mgrec.model.reference import ReferenceDetector


def padded_batch(lengths, total, dtype, seed=1):
    """Features with garbage (not zeros) in the padding, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), 24, total, generator=generator, dtype=dtype)
    return features, prefix_mask(lengths, total)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_detector_equals_the_reference_detector(variant):
    # float64: the ReLUs make gradients jump where a value crosses 0, and float32 rounding of two
    # different forms can put a value within 1e-7 of 0 on different sides. A window > 1 (the
    # DynE kernel merge), one stem layer and the released head depth; 37 real steps in 64: odd
    # lengths at several levels.
    torch.manual_seed(0)
    cfg = tiny_config(variant, window_size=3, stem_layers=1, head_kernel=5)
    model = perturbed(build_detector(cfg).double()).eval()  # eval: no drop-path
    reference = ReferenceDetector(model)
    features, mask = padded_batch([64, 37], 64, torch.float64)
    features.requires_grad_()
    out, expected = model(features, mask), reference(features, mask)
    assert out.strides == expected.strides
    assert all(torch.equal(a, b) for a, b in zip(out.masks, expected.masks))
    inputs = [*model.parameters(), features]
    assert_same_outputs_and_gradients(out.cls_logits + out.offsets, expected.cls_logits + expected.offsets, inputs,
                                      atol=1e-9, rtol=1e-9)


def test_the_reference_detector_shares_parameters_and_state_dict_keys():
    model = build_detector(tiny_config("mgrec"))
    reference = ReferenceDetector(model)
    assert list(reference.state_dict()) == list(model.state_dict())
    assert all(a is b for a, b in zip(reference.parameters(), model.parameters()))
    # A checkpoint of one loads into the other.
    other = ReferenceDetector(build_detector(tiny_config("mgrec")))
    other.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), model.parameters()))


def test_the_reference_matches_in_float32_too():
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config("mgrec"))).eval()
    features, mask = padded_batch([64, 45], 64, torch.float32)
    with torch.no_grad():
        out, expected = model(features, mask), ReferenceDetector(model)(features, mask)
    for a, b in zip(out.cls_logits + out.offsets, expected.cls_logits + expected.offsets):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
