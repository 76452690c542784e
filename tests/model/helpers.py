"""Shared helpers of the model tests: masks, a tiny configuration, perturbed weights."""

import torch

from mgrec.config import MODEL_VARIANTS, ModelConfig

VARIANTS = list(MODEL_VARIANTS)


def prefix_mask(lengths, total):
    """(B, 1, total) bool mask, True on the first `lengths[b]` steps of sequence b."""
    return (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]).unsqueeze(1)


def tiny_config(variant: str, **overrides) -> ModelConfig:
    settings = dict(
        variant=variant,
        input_dim=24,
        num_classes=5,
        embed_dim=32,
        mlp_dim=48,
        head_dim=32,
        attention_mlp_ratio=4,
        transformer_heads=4,
        transformer_window=5,
        kernel_expansion=2.0,
    )
    settings.update(overrides)
    return ModelConfig(**settings)


def perturbed(model):
    """Add noise to every parameter so that no branch is silent (LayerScale 1e-4, a = 0 in the
    dyfadet fusion): a leak of padding anywhere, or a difference between two forms of the same
    computation, then shows up at full size."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def assert_same_outputs_and_gradients(ours, theirs, inputs, atol, rtol):
    """Two lists of output tensors agree, and so do the gradients of one random linear function of
    them with respect to `inputs` (parameters and input tensors).

    A parameter one side does not use at all (e.g. the neighbour weight of a one-level pyramid)
    has no gradient there and a zero one on the other side: both count as zero.
    """
    assert len(ours) == len(theirs)
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert torch.allclose(a, b, atol=atol, rtol=rtol), (index, (a - b).abs().max().item())
    generator = torch.Generator().manual_seed(2)
    weights = [torch.randn(o.shape, generator=generator, dtype=o.dtype) for o in ours]

    def grads(outputs):
        loss = sum((w * o).sum() for w, o in zip(weights, outputs))
        found = torch.autograd.grad(loss, inputs, allow_unused=True)
        return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, found)]

    for index, (a, b) in enumerate(zip(grads(ours), grads(theirs))):
        assert torch.allclose(a, b, atol=atol, rtol=rtol), (index, (a - b).abs().max().item())
