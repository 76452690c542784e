"""The memory estimate: grows with batch, steps and width, and refuses with numbers what cannot fit."""

import pytest

from mgrec.config import ModelConfig, load_config
from mgrec.errors import InputError
from mgrec.model.memory import available_bytes, check_fits, estimate_bytes


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
