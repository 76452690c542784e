"""State format 1 -> 2: old weights files still load (`upgrade_state_dict`), a seed builds the same
weights, and the parameter order (by which optimizer state is stored) is that of format 1."""

import pytest
import torch
from tests.model.helpers import VARIANTS, perturbed, prefix_mask, tiny_config

from mgrec.model.detector import build_detector, upgrade_state_dict

DYNE_KERNELS = ("instance_gate", "instance_value", "window_gate", "window_conv", "expanded_conv")


def to_format_1(state):
    """A format-2 state dict written as format 1 wrote it: the DFA gate and the DynE kernels as
    nn.Conv1d modules (`<dfa>.gate_logits.weight`, `<dyne>.window_conv.bias`, ...)."""
    old = {}
    for key, value in state.items():
        key = key.replace(".gate_weight", ".gate_logits.weight").replace(".gate_bias", ".gate_logits.bias")
        for kernel in DYNE_KERNELS:
            for kind in ("weight", "bias"):
                key = key.replace(f".mixer.{kernel}_{kind}", f".{kernel}.{kind}")
        old[key] = value
    return old


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_format_1_state_dict_upgrades_and_loads_with_identical_outputs(variant):
    torch.manual_seed(0)
    cfg = tiny_config(variant, stem_layers=1, window_size=3)
    model = perturbed(build_detector(cfg)).eval()
    old = to_format_1(model.state_dict())
    if variant != "actionformer":
        # Keys as format 1 wrote them (read from a format-1 run).
        assert {"encoder.stem.0.instance_gate.weight", "encoder.branch.0.expanded_conv.bias",
                "head.cls_tower.convs.0.gate_logits.weight"} <= set(old)
    upgraded = upgrade_state_dict(old)
    assert list(upgraded) == list(model.state_dict())
    fresh = build_detector(cfg).eval()
    fresh.load_state_dict(upgraded)  # strict: every key known, none missing
    features, mask = torch.randn(2, 24, 64), prefix_mask([64, 40], 64)
    with torch.no_grad():
        out, again = model(features, mask), fresh(features, mask)
    assert all(torch.equal(a, b) for a, b in zip(out.cls_logits + out.offsets, again.cls_logits + again.offsets))


def test_upgrade_is_idempotent_and_keeps_prefixes():
    state = build_detector(tiny_config("dyfadet")).state_dict()
    assert upgrade_state_dict(state) == state  # the same keys holding the same tensors
    old = to_format_1(state)
    assert upgrade_state_dict(upgrade_state_dict(old)) == upgrade_state_dict(old) == state
    # A weights file holds the EMA copy under "ema."
    with_ema = {**old, **{f"ema.{k}": v for k, v in old.items()}}
    assert upgrade_state_dict(with_ema) == {**state, **{f"ema.{k}": v for k, v in state.items()}}


def test_the_parameter_order_is_that_of_format_1():
    # Optimizer state in a resume file is stored by parameter position; format 1's order, read
    # from a format-1 build, for a DynE layer and a DFA fusion.
    model = build_detector(tiny_config("dyfadet", num_levels=2, stem_layers=1, head_layers=2))
    names = list(to_format_1({name: None for name, _ in model.named_parameters()}))
    dyne = [n.removeprefix("encoder.stem.0.") for n in names if n.startswith("encoder.stem.0.")]
    assert dyne == [
        "norm.weight", "norm.bias",
        "instance_gate.weight", "instance_gate.bias", "instance_value.weight", "instance_value.bias",
        "window_gate.weight", "window_gate.bias", "window_conv.weight", "window_conv.bias",
        "expanded_conv.weight", "expanded_conv.bias",
        "ffn_norm.weight", "ffn_norm.bias", "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias",
    ]
    fusion = [n.removeprefix("head.cls_tower.") for n in names if n.startswith("head.cls_tower.")]
    assert fusion == [
        "fusions.0.neighbour_weight", "fusions.0.own_weight",
        "fusions.0.from_finer.gate_logits.weight", "fusions.0.from_finer.gate_logits.bias",
        "fusions.0.from_finer.mixing.weight", "fusions.0.from_finer.mixing.bias",
        "fusions.0.from_finer.norm.weight", "fusions.0.from_finer.norm.bias",
        "fusions.0.from_coarser.gate_logits.weight", "fusions.0.from_coarser.gate_logits.bias",
        "fusions.0.from_coarser.mixing.weight", "fusions.0.from_coarser.mixing.bias",
        "fusions.0.from_coarser.norm.weight", "fusions.0.from_coarser.norm.bias",
        "convs.0.gate_logits.weight", "convs.0.gate_logits.bias", "convs.0.mixing.weight", "convs.0.mixing.bias",
        "convs.0.norm.weight", "convs.0.norm.bias",
    ]
