"""The assembled detector: contract shapes, padding invariance, gradient flow, init, optimiser groups."""

import math

import pytest
import torch
from tests.model.helpers import VARIANTS, perturbed, prefix_mask, tiny_config
from torch import nn

from mgrec.config import ModelConfig
from mgrec.errors import InputError
from mgrec.model import heads
from mgrec.model.detector import build_detector
from mgrec.model.dyfadet import DFAConv1d, DynETokenMixer


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_shapes_strides_and_masks(variant):
    torch.manual_seed(0)
    model = build_detector(tiny_config(variant)).eval()
    assert model.max_div_factor == 32
    mask = prefix_mask([64, 45], 64)
    out = model(torch.randn(2, 24, 64), mask)
    assert out.strides == [1, 2, 4, 8, 16, 32]
    for level, stride in enumerate(out.strides):
        length = 64 // stride
        assert out.cls_logits[level].shape == (2, length, 5)
        assert out.offsets[level].shape == (2, length, 2)
        assert out.masks[level].dtype == torch.bool
        assert torch.equal(out.masks[level], mask[:, 0, ::stride])
        assert torch.all(out.offsets[level] >= 0)
        assert torch.all(torch.isfinite(out.cls_logits[level]))


def test_default_config_builds_and_runs():
    torch.manual_seed(0)
    model = build_detector(ModelConfig(input_dim=1408)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1408, 32), torch.ones(1, 1, 32, dtype=torch.bool))
    assert [tuple(c.shape) for c in out.cls_logits] == [(1, 32 // s, 17) for s in (1, 2, 4, 8, 16, 32)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_with_garbage_does_not_change_real_outputs(variant):
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config(variant))).eval()
    video = torch.randn(1, 24, 64)
    with torch.no_grad():
        alone = model(video, torch.ones(1, 1, 64, dtype=torch.bool))
        garbage = torch.randn(1, 24, 64) * 10
        garbage[0, 3, 5], garbage[0, 7, 0] = float("nan"), float("inf")
        padded = model(torch.cat([video, garbage], -1), prefix_mask([64], 128))
    for level, stride in enumerate(alone.strides):
        real = 64 // stride
        assert torch.allclose(padded.cls_logits[level][:, :real], alone.cls_logits[level], atol=1e-5, rtol=1e-4)
        assert torch.allclose(padded.offsets[level][:, :real], alone.offsets[level], atol=1e-5, rtol=1e-4)
        assert not padded.masks[level][:, real:].any()


@pytest.mark.parametrize("variant", VARIANTS)
def test_batching_with_a_shorter_video_matches_running_it_alone(variant):
    # A real length (37) that is odd at several levels, batched next to a full-length video.
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config(variant))).eval()
    short = torch.randn(1, 24, 37)
    other = torch.randn(1, 24, 64)
    with torch.no_grad():
        batch = model(torch.cat([torch.cat([short, torch.randn(1, 24, 27)], -1), other]), prefix_mask([37, 64], 64))
        alone = model(torch.cat([short, torch.zeros(1, 24, 91)], -1), prefix_mask([37], 128))
    for level in range(len(batch.strides)):
        real = int(batch.masks[level][0].sum())
        assert real == math.ceil(37 / 2**level)
        for name in ("cls_logits", "offsets"):
            ours, reference = getattr(batch, name)[level][0, :real], getattr(alone, name)[level][0, :real]
            assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-4), (name, level)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("one_pass_limit", [0, 1 << 30], ids=["tower-by-tower", "towers-in-one-pass"])
def test_intermediate_features_are_zero_at_padded_positions(variant, one_pass_limit, monkeypatch):
    # The block convention: every pyramid level and every head-tower fusion returns zeros at
    # padded positions (37 real steps: odd at several levels, where upsampling spills over), and
    # the packed head keeps the gaps between its levels zero; in both forms of the mgrec head.
    torch.manual_seed(0)
    monkeypatch.setattr(heads, "ONE_PASS_MAX_ELEMENTS", one_pass_limit)
    model = perturbed(build_detector(tiny_config(variant))).eval()
    encoder_levels, packed = [], []
    model.encoder.register_forward_hook(lambda mod, args, out: encoder_levels.extend(out[0]))
    for module in model.head.modules():
        if type(module).__name__ in ("AttentionFusion", "DFAFusion", "ConvTower", "DynamicTower"):
            module.register_forward_hook(lambda mod, args, out: packed.append((out, args[1].mask)))

    def recorded(function):
        def run(modules, x, levels, *rest):
            out = function(modules, x, levels, *rest)
            packed.append((out, levels.mask[:, None]))  # (B, G, C, N) outputs: a mask (B, 1, 1, N)
            return out
        return run

    monkeypatch.setattr(heads, "fuse_in_one_pass", recorded(heads.fuse_in_one_pass))
    monkeypatch.setattr(heads, "towers_in_one_pass", recorded(heads.towers_in_one_pass))
    mask = prefix_mask([37], 64)
    with torch.no_grad():
        model(torch.randn(1, 24, 64), mask)
    assert len(encoder_levels) == 6 and len(packed) >= 2
    for level, feats in enumerate(encoder_levels):
        padded = ~mask[..., :: 2**level].expand_as(feats)
        assert torch.equal(feats[padded], torch.zeros(int(padded.sum()))), (variant, level)
    for feats, packed_mask in packed:
        outside = ~packed_mask.expand_as(feats)
        assert outside.sum() > 0
        assert torch.equal(feats[outside], torch.zeros(int(outside.sum()))), variant


def _training_loss(out, generator):
    loss = 0.0
    for logits, offsets, mask in zip(out.cls_logits, out.offsets, out.masks):
        targets = (torch.rand(logits.shape, generator=generator) < 0.3).float()
        cls = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        loss = loss + (cls.sum(-1) * mask).sum() + ((offsets - 1.0).abs().sum(-1) * mask).sum()
    return loss


def _zero_grad_names(model):
    return [name for name, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_parameter_gets_a_gradient(variant):
    # drop_path=0: a random drop of the same branch for both samples would zero its gradient.
    torch.manual_seed(0)
    model = build_detector(tiny_config(variant, drop_path=0.0)).train()
    generator = torch.Generator().manual_seed(0)
    features, mask = torch.randn(2, 24, 64), prefix_mask([64, 50], 64)
    _training_loss(model(features, mask), generator).backward()
    zero = _zero_grad_names(model)
    if variant == "dyfadet":
        # The cross-scale neighbour branches are scaled by a learnable a that starts at 0, so only
        # they wait for the first step (a itself gets a gradient).
        assert zero and all(".from_finer." in n or ".from_coarser." in n for n in zero), zero
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        optimizer.step()
        optimizer.zero_grad()
        _training_loss(model(features, mask), generator).backward()
        zero = _zero_grad_names(model)
    assert zero == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("variant", VARIANTS)
def test_class_bias_starts_at_the_prior(variant):
    model = build_detector(tiny_config(variant, cls_prior=0.02))
    bias = model.head.predictors.cls.bias
    assert torch.allclose(torch.sigmoid(bias), torch.full_like(bias, 0.02))
    assert torch.equal(model.head.predictors.reg_scales.detach(), torch.ones(6))


@pytest.mark.parametrize("variant", VARIANTS)
def test_regression_starts_alive_at_every_point(variant):
    # a regressor starting below zero behind the ReLU never receives a gradient there
    torch.manual_seed(3)
    model = build_detector(tiny_config(variant))
    x = torch.randn(2, 24, 64)
    mask = torch.ones(2, 1, 64, dtype=torch.bool)
    offsets = torch.cat(model(x, mask).offsets, dim=1)
    assert (offsets > 0).float().mean() > 0.95


@pytest.mark.parametrize("variant", VARIANTS)
def test_param_groups_decay_only_the_conv_and_linear_kernels(variant):
    model = build_detector(tiny_config(variant))
    decay, no_decay = model.param_groups(0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for p in decay["params"]] + [id(p) for p in no_decay["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert len(set(ids)) == len(ids)
    # Decayed: the weights of conv and linear modules, the DFA gate kernels, the DynE kernels.
    kernels = set()
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            kernels.add(id(module.weight))
        if isinstance(module, DFAConv1d):
            kernels.add(id(module.gate_weight))
        if isinstance(module, DynETokenMixer):
            kernels.update(id(p) for name, p in module.named_parameters() if name.endswith("_weight"))
    assert {id(p) for p in decay["params"]} == kernels
    # Each group in `parameters()` order (optimizer state is stored by position).
    order = {id(p): i for i, p in enumerate(model.parameters())}
    for group in (decay, no_decay):
        positions = [order[id(p)] for p in group["params"]]
        assert positions == sorted(positions)


def test_input_checks():
    model = build_detector(tiny_config("mgrec"))
    with pytest.raises(InputError, match="max_div_factor"):
        model(torch.randn(1, 24, 48), torch.ones(1, 1, 48, dtype=torch.bool))
    with pytest.raises(InputError, match="input_dim"):
        model(torch.randn(1, 23, 64), torch.ones(1, 1, 64, dtype=torch.bool))
    with pytest.raises(InputError, match="mask"):
        model(torch.randn(1, 24, 64), torch.ones(1, 1, 64))


def test_input_checks_of_the_features_kind_rank_and_dtype():
    """The bare network from Python (README, "In Python"): features given as numpy, without the batch dim, of no
    steps or in float64/float16 were raw errors deep inside torch (torch.where, a conv's dtype or kernel size)."""
    model = build_detector(tiny_config("mgrec")).eval()
    mask = torch.ones(1, 1, 64, dtype=torch.bool)
    with pytest.raises(InputError, match=r"torch tensor \(B, C, T\), got ndarray: torch.from_numpy"):
        model(torch.randn(1, 24, 64).numpy(), mask)
    with pytest.raises(InputError, match=r"shape \(B, C, T\), got shape \(24, 64\): add the batch dim"):
        model(torch.randn(24, 64), mask)
    with pytest.raises(InputError, match="positive multiple of max_div_factor"):
        model(torch.randn(1, 24, 0), torch.ones(1, 1, 0, dtype=torch.bool))
    with pytest.raises(InputError, match="real numbers"):
        model(torch.randn(1, 24, 64, dtype=torch.complex64), mask)
    with pytest.raises(InputError, match="mask must be a bool tensor"):
        model(torch.randn(1, 24, 64), mask.numpy())
    features = torch.randn(1, 24, 64)
    with torch.no_grad():
        expected = model(features, mask).cls_logits[0]
        # float64 casts back to the same float32 numbers; float16 rounds them first (about 1e-3 relative)
        for dtype, tolerance in ((torch.float64, 1e-6), (torch.float16, 1e-2)):
            got = model(features.to(dtype), mask).cls_logits[0]
            assert got.dtype == torch.float32
            assert torch.allclose(got, expected, atol=tolerance)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"variant": "dyfade"}, "model.variant"),
        ({"head_kernel": 4}, "model.head_kernel"),
        ({"variant": "actionformer", "transformer_heads": 5}, "model.transformer_heads"),
        ({"num_levels": 0}, "model.num_levels"),
        ({"input_dim": None}, "model.input_dim"),
    ],
)
def test_bad_model_settings_are_input_errors_naming_the_key(overrides, key):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        build_detector(tiny_config(**{"variant": "mgrec", **overrides}))


def test_build_detector_given_a_whole_config_says_which_part_it_takes():
    from mgrec.config import Config
    from mgrec.errors import InputError

    with pytest.raises(InputError, match=r"build_detector takes a model config \(config.model\), got Config"):
        build_detector(Config())


def test_input_dim_changed_on_a_built_config_is_named_not_the_stream_dims_derived_from_it():
    """In Python, `config.model.input_dim = 64` on a config of 128-wide features: the refusal named
    model.stream_dims, a derived key the user never set, as the one that was wrong."""
    from mgrec.config import Config, DataConfig

    config = Config(data=DataConfig(feature_dim=128))
    config.model.input_dim = 64
    with pytest.raises(InputError, match=r"\[model.input_dim.*\]: expected 128, the features' width "
                                         r"\(data.feature_dim.*set data.feature_dim.*got 64"):
        build_detector(config.model)
