import pytest
import torch
from tests.model.helpers import perturbed, prefix_mask, tiny_config

from mgrec.model.detector import build_detector
from mgrec.model.ensemble import EnsembleDetector, mean_probability_logits
from mgrec.model.load import build_model


def _outputs(model, length=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 24, length, generator=generator)
    with torch.no_grad():
        return model.eval()(x, prefix_mask([length, 40], length))


def _same(a, b, tolerance=0.0):
    for level in range(len(a.strides)):
        torch.testing.assert_close(a.cls_logits[level], b.cls_logits[level], atol=tolerance, rtol=tolerance)
        torch.testing.assert_close(a.offsets[level], b.offsets[level], atol=tolerance, rtol=tolerance)
        assert torch.equal(a.masks[level], b.masks[level])


def test_an_ensemble_of_one_gives_the_detector_s_own_outputs():
    torch.manual_seed(0)
    detector = perturbed(build_detector(tiny_config("mgrec")))
    _same(_outputs(EnsembleDetector([detector])), _outputs(detector), tolerance=1e-5)


def test_an_ensemble_of_two_identical_detectors_equals_one():
    torch.manual_seed(0)
    detector = perturbed(build_detector(tiny_config("dyfadet")))
    twin = build_detector(tiny_config("dyfadet"))
    twin.load_state_dict(detector.state_dict())
    _same(_outputs(EnsembleDetector([detector, twin])), _outputs(detector), tolerance=1e-5)


def test_probabilities_and_offsets_are_averaged_point_by_point():
    torch.manual_seed(0)
    a = perturbed(build_detector(tiny_config("actionformer")))
    torch.manual_seed(1)
    b = perturbed(build_detector(tiny_config("actionformer")))
    out_a, out_b, out_e = _outputs(a), _outputs(b), _outputs(EnsembleDetector([a, b]))
    for level in range(len(out_e.strides)):
        mean_probability = (out_a.cls_logits[level].sigmoid() + out_b.cls_logits[level].sigmoid()) / 2
        torch.testing.assert_close(out_e.cls_logits[level].sigmoid(), mean_probability, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(out_e.offsets[level], (out_a.offsets[level] + out_b.offsets[level]) / 2)


def test_members_must_share_the_pyramid_and_the_builder_gives_a_run_s_network():
    four_levels = tiny_config("mgrec", num_levels=4, regression_ranges=[[0, 4], [4, 8], [8, 16], [16, 10000]])
    with pytest.raises(ValueError, match="different pyramids"):
        EnsembleDetector([build_detector(tiny_config("mgrec")), build_detector(four_levels)])
    assert isinstance(build_model(tiny_config("mgrec"), 3), EnsembleDetector)
    assert len(build_model(tiny_config("mgrec"), 3).members) == 3
    assert not isinstance(build_model(tiny_config("mgrec")), EnsembleDetector)
    # saturated probabilities keep a finite logit
    assert torch.isfinite(mean_probability_logits([torch.tensor([80.0, -80.0])])).all()
