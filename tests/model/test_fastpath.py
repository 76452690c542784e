"""The CPU-tuned and the plain forms (`mgrec.model.fastpath`) compute the same detector."""

import pytest
import torch
from tests.model.helpers import VARIANTS, assert_same_outputs_and_gradients, perturbed, prefix_mask, tiny_config

from mgrec.model import fastpath
from mgrec.model.detector import build_detector


@pytest.mark.parametrize("variant", VARIANTS)
def test_both_paths_give_the_same_outputs_and_gradients(variant):
    # float64 for the gradients (the ReLUs' jumps at 0, see test_reference.py); float32 outputs too.
    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config(variant)).double()).eval()
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 24, 64, generator=generator, dtype=torch.float64).requires_grad_()
    mask = prefix_mask([64, 37], 64)

    def run(cpu_kernels, model, features):
        with fastpath.forced(cpu_kernels):
            out = model(features, mask)
        return out.cls_logits + out.offsets

    assert_same_outputs_and_gradients(run(True, model, features), run(False, model, features),
                                      [*model.parameters(), features], atol=1e-9, rtol=1e-9)
    model, features = model.float(), features.detach().float()
    with torch.no_grad():
        for a, b in zip(run(True, model, features), run(False, model, features)):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


def test_a_compiled_training_graph_takes_the_plain_forms():
    # with the CPU forms, inductor's compiled backward gave NaN gradients under bf16 autocast (both demo networks);
    # a compiled inference graph (streaming, no gradients) keeps them
    from mgrec.model.masking import PointwiseConv1d

    layer = PointwiseConv1d(4, 3)
    traced = []

    def recording_backend(graph, example_inputs):
        traced.append({str(node.target) for node in graph.graph.nodes if node.op == "call_function"})
        return graph.forward

    features = torch.randn(1, 4, 8)
    torch._dynamo.reset()
    torch.compile(layer, backend=recording_backend)(features)
    with torch.no_grad():
        torch._dynamo.reset()
        torch.compile(layer, backend=recording_backend)(features)
    training, inference = traced
    assert any("conv1d" in op for op in training) and not any("addmm" in op for op in training), training
    assert any("addmm" in op for op in inference), inference
