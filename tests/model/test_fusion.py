"""Several input streams in one detector (`mgrec.model.fusion`): concat, sum, gated."""

import pytest
import torch
from tests.model.helpers import VARIANTS, assert_same_outputs_and_gradients, perturbed, prefix_mask, tiny_config

from mgrec.config import ModelConfig, check_model
from mgrec.errors import InputError
from mgrec.model.detector import build_detector
from mgrec.model.fusion import GatedFusionEncoder, SummedEmbedding
from mgrec.model.reference import ReferenceDetector

DIMS = [16, 8]  # the main stream's channels first, as DataConfig.input_streams joins them


def streams_config(variant: str, fusion: str, **overrides) -> ModelConfig:
    return tiny_config(variant, input_dim=sum(DIMS), stream_dims=list(DIMS), fusion=fusion, **overrides)


def batch(total=64, lengths=(64, 37), dtype=torch.float32, seed=3):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(len(lengths), sum(DIMS), total, generator=generator, dtype=dtype), prefix_mask(lengths, total)


def loss_of(out):
    return sum(x.square().mean() for x in out.cls_logits + out.offsets)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gated_fusion_at_step_0_is_the_main_stream_detector(variant):
    torch.manual_seed(0)
    single = build_detector(tiny_config(variant, input_dim=DIMS[0], stem_layers=1)).eval()
    gated = build_detector(streams_config(variant, "gated", stem_layers=1)).eval()
    # The single-stream detector's weights are the gated one's main tower, neck and head.
    state = {("encoder.main." + k[len("encoder."):] if k.startswith("encoder.") else k): v
             for k, v in single.state_dict().items()}
    missing, unexpected = gated.load_state_dict(state, strict=False)
    assert not unexpected and all(any(part in k for part in (".embeddings.", ".fusions.", ".input_")) for k in missing)
    features, mask = batch()
    with torch.no_grad():
        ours, alone = gated(features, mask), single(features[:, : DIMS[0]], mask)
    # Any auxiliary input gives the same output: the zero-initialised projection silences it.
    with torch.no_grad():
        other = gated(torch.cat([features[:, : DIMS[0]], 100 * torch.randn(2, DIMS[1], 64)], dim=1), mask)
    for a, b, c in zip(ours.cls_logits + ours.offsets, alone.cls_logits + alone.offsets,
                       other.cls_logits + other.offsets):
        assert torch.equal(a, b) and torch.equal(a, c)


def test_the_gated_branch_wakes_up_after_one_step():
    torch.manual_seed(0)
    model = build_detector(streams_config("mgrec", "gated"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fusion = model.encoder.fusions[0][0]
    features, mask = batch()
    loss_of(model(features, mask)).backward()
    # Step 0: the projection's last conv learns (its input is not zero); the gate gets no gradient
    # yet (it multiplies a zero projection), and nothing before the zero conv does either.
    assert fusion.project_out.weight.grad.abs().sum() > 0
    assert fusion.gate.weight.grad.abs().sum() == 0
    # the same at the input gate: its zero projection Q learns, its gate V waits for Q
    encoder = model.encoder
    assert encoder.input_projections[0].weight.grad.abs().sum() > 0
    assert encoder.input_gates[0].weight.grad.abs().sum() == 0
    optimizer.step()
    optimizer.zero_grad()
    assert fusion.project_out.weight.abs().sum() > 0
    loss_of(model(features, mask)).backward()
    assert fusion.gate.weight.grad.abs().sum() > 0
    assert fusion.project_in.weight.grad.abs().sum() > 0
    assert encoder.input_gates[0].weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.embeddings[0].parameters())


@pytest.mark.parametrize("fusion", ["sum", "gated"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_fusion_equals_the_reference_detector(variant, fusion):
    torch.manual_seed(0)
    cfg = streams_config(variant, fusion, window_size=3, stem_layers=1, head_kernel=5)
    model = perturbed(build_detector(cfg).double()).eval()  # perturbed: the gated projection is not zero
    reference = ReferenceDetector(model)
    features, mask = batch(dtype=torch.float64)
    features.requires_grad_()
    out, expected = model(features, mask), reference(features, mask)
    inputs = [*model.parameters(), features]
    assert_same_outputs_and_gradients(out.cls_logits + out.offsets, expected.cls_logits + expected.offsets, inputs,
                                      atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("fusion", ["concat", "sum", "gated"])
def test_padding_does_not_reach_real_positions(fusion):
    torch.manual_seed(0)
    model = perturbed(build_detector(streams_config("mgrec", fusion))).eval()
    features, _ = batch(total=64, lengths=(40,))
    short_mask = prefix_mask([40], 64)
    garbage = features.clone()
    garbage[..., 40:] = 1e3
    with torch.no_grad():
        a, b = model(features, short_mask), model(garbage, short_mask)
    for x, y, m in zip(a.cls_logits, b.cls_logits, a.masks):
        assert torch.allclose(x[m], y[m], atol=1e-5)


def test_concat_is_the_one_stream_detector_and_sum_has_one_embedding_per_stream():
    concat = build_detector(streams_config("mgrec", "concat"))
    single = build_detector(tiny_config("mgrec", input_dim=sum(DIMS)))
    assert list(concat.state_dict()) == list(single.state_dict())
    summed = build_detector(streams_config("mgrec", "sum"))
    assert isinstance(summed.encoder.embedding, SummedEmbedding)
    assert [e.convs[0].in_channels for e in summed.encoder.embedding.embeddings] == DIMS
    gated = build_detector(streams_config("mgrec", "gated"))
    assert isinstance(gated.encoder, GatedFusionEncoder) and len(gated.encoder.embeddings) == 1
    # the encoder's layers are shared by the streams: gated adds an embedding and the gates, not an encoder
    extra = sum(p.numel() for p in gated.parameters()) - sum(p.numel() for p in concat.parameters())
    gates = sum(p.numel() for module in (gated.encoder.fusions, gated.encoder.input_gates,
                                         gated.encoder.input_projections) for p in module.parameters())
    embedding = sum(p.numel() for p in gated.encoder.embeddings.parameters())
    assert extra == gates + embedding - (sum(DIMS) - DIMS[0]) * 32 * 3


def test_gates_are_recorded_per_level_when_asked():
    model = build_detector(streams_config("mgrec", "gated")).eval()
    features, mask = batch()
    model.encoder.record_gates = True
    with torch.no_grad():
        model(features, mask)
    gates = model.encoder.last_gates
    assert [g.shape for g in gates] == [(2, 64 // 2**level) for level in range(len(gates))]
    assert all(((g > 0) & (g < 1)).all() for g in gates)


@pytest.mark.parametrize(
    "overrides, key",
    [
        (dict(fusion="gated", stream_dims=[24]), "model.fusion"),
        (dict(fusion="sum", stream_dims=[]), "model.fusion"),
        (dict(fusion="gated", stream_dims=[16, 4]), "model.stream_dims"),
        (dict(fusion="gatd", stream_dims=[16, 8]), "did you mean 'gated'"),
    ],
)
def test_bad_fusion_settings_are_refused_by_key(overrides, key):
    with pytest.raises(InputError, match=key.replace("[", r"\[")):
        check_model(tiny_config("mgrec", input_dim=24, **overrides))


def test_the_memory_estimate_counts_one_encoder_per_gated_stream():
    from mgrec.model.memory import estimate_bytes

    one = estimate_bytes(tiny_config("mgrec", input_dim=24), steps=1024, batch=2, training=True)
    gated = estimate_bytes(streams_config("mgrec", "gated"), steps=1024, batch=2, training=True)
    concat = estimate_bytes(streams_config("mgrec", "concat"), steps=1024, batch=2, training=True)
    assert concat == one and gated > 1.9 * one
