"""The memory estimate: grows with batch, steps and width, and refuses with numbers what cannot fit."""

import time

import pytest
from tests.model.helpers import VARIANTS, tiny_config

from mgrec.config import ModelConfig, load_config
from mgrec.errors import InputError
from mgrec.model.detector import build_detector
from mgrec.model.memory import available_bytes, check_fits, count_parameters, estimate_bytes


def test_the_estimate_grows_with_the_pass_and_training_costs_more_than_inference():
    cfg = ModelConfig(input_dim=128, embed_dim=128)
    one = estimate_bytes(cfg, 1024, 1, training=True)
    assert estimate_bytes(cfg, 2048, 1, training=True) > one and estimate_bytes(cfg, 1024, 2, training=True) > one
    assert estimate_bytes(cfg, 1024, 1, training=False) < one


def test_the_estimate_is_above_the_measured_peak_of_the_smg_training_step():
    # benchmarks/memory.py: smg/mgrec.yaml, batch 2 x 2304 steps, training: 2.03 GB peak growth
    cfg = load_config("smg/mgrec.yaml").model
    estimate = estimate_bytes(cfg, 2304, 2, training=True)
    assert 2.03e9 < estimate < 2 * 2.03e9


def test_a_pass_that_cannot_fit_is_refused_with_the_numbers():
    cfg = ModelConfig(input_dim=1408, embed_dim=512)
    with pytest.raises(InputError, match=r"a training batch needs about .* GiB \(2 x 262144 feature steps, mgrec, "
                                         r"training\), but 1\.0 GiB is available; lower train.batch_size"):
        check_fits(cfg, 262144, 2, training=True, what="a training batch", available=2**30)
    check_fits(cfg, 256, 1, training=False, what="video v", available=2**30)  # fits


def test_available_memory_is_read_on_linux():
    assert available_bytes() is None or available_bytes() > 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameters_are_counted_without_allocating_the_network(variant):
    cfg = tiny_config(variant)
    assert count_parameters(cfg) == sum(p.numel() for p in build_detector(cfg).parameters())
    started = time.monotonic()  # model.embed_dim=100000: terabytes, measured on the meta device in no time
    assert count_parameters(tiny_config(variant, embed_dim=100_000, mlp_dim=10**9)) > 10**10
    assert time.monotonic() - started < 20


def test_a_network_too_large_to_hold_is_refused_naming_its_widths():
    cfg = ModelConfig(input_dim=128, embed_dim=512, mlp_dim=10**9)
    parameters = count_parameters(cfg)
    with pytest.raises(InputError, match=r"^a training batch needs about .* GiB \(2 x 2304 feature steps, mgrec, "
                                         r"training\), but 1\.0 GiB is available; the network's [\d,]+ parameters "
                                         r"take .* GiB of it with the optimizer's and the EMA's copies; lower "
                                         r"model.embed_dim, model.mlp_dim or model.head_dim$"):
        check_fits(cfg, 2304, 2, training=True, what="a training batch", parameters=parameters, available=2**30)
    with pytest.raises(InputError, match=r"^a network of model.embed_dim=512, model.mlp_dim=768, model.head_dim="
                                         r"1000000000 and model.num_classes=17 holds a tensor of more than 2\*\*63 "
                                         r"bytes, more than any machine has; lower them$"):
        count_parameters(ModelConfig(input_dim=128, head_dim=10**9))  # torch: "Storage size calculation overflowed"
    # a network to be built on a GPU is not judged by host memory, as one built there is not
    check_fits(cfg, 2304, 2, training=True, what="a training batch", parameters=parameters, available=2**30,
               device="cuda")
