import pytest

from mgrec.config import Config, DataConfig, load_config, save_config
from mgrec.errors import InputError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  lrr: 0.1\n")
    with pytest.raises(InputError, match=r"c.yaml \[train.lrr\]: unknown key; did you mean 'train.lr'"):
        load_config(path)


def test_wrong_type_names_file_and_key(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  epochs: many\n")
    with pytest.raises(InputError, match=r"c.yaml \[train.epochs\]: expected int"):
        load_config(path)


def test_overrides_and_yaml_scientific_notation(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  lr: 1e-4\n")
    config = load_config(path, ["train.epochs=3", "model.variant=dyfadet", "data.augment_alpha=null"])
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.epochs == 3 and config.model.variant == "dyfadet"
    assert config.data.augment_alpha is None


def test_base_inheritance_and_round_trip(tmp_path):
    write(tmp_path, "base.yaml", "seed: 7\ntrain:\n  epochs: 9\n  lr: 0.001\n")
    child = write(tmp_path, "child.yaml", "base: base.yaml\ntrain:\n  epochs: 2\n")
    config = load_config(child)
    assert (config.seed, config.train.epochs, config.train.lr) == (7, 2, 0.001)
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == config


def test_cross_field_checks(tmp_path):
    path = write(tmp_path, "c.yaml", "model:\n  variant: mgrec2\n")
    with pytest.raises(InputError, match="did you mean 'mgrec'"):
        load_config(path)
    path = write(tmp_path, "d.yaml", "data:\n  max_seq_len: 100\n")
    with pytest.raises(InputError, match=r"\[data.max_seq_len\]"):
        load_config(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(write(tmp_path, "bad.yaml", "train: [1, 2\n"))
    with pytest.raises(InputError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "mgrec" / "configs"
    files = sorted(root.glob("*/*.yaml"))
    assert files, "no configs shipped"
    for path in files:
        assert isinstance(load_config(path), Config), path


def test_model_input_dim_follows_the_feature_dim_and_a_different_value_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  feature_dim: 96\n")
    assert load_config(path).model.input_dim == 96
    assert Config(data=DataConfig(feature_dim=7)).model.input_dim == 7
    path.write_text("data:\n  feature_dim: 96\nmodel:\n  input_dim: 95\n")
    with pytest.raises(InputError, match=r"\[model.input_dim\]: 95 differs from data.feature_dim=96"):
        load_config(path)


def test_the_old_bf16_key_reads_into_precision_and_both_keys_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  bf16: false\n")
    assert load_config(path).train.precision == "fp32"
    path.write_text("train:\n  bf16: true\n")
    assert load_config(path).train.precision == "auto"  # bf16 on CUDA only, as before
    path.write_text("train:\n  bf16: true\n  precision: bf16\n")
    with pytest.raises(InputError, match=r"\[train.bf16\]: replaced by train.precision"):
        load_config(path)
    path.write_text("train:\n  precision: fp16\n")
    with pytest.raises(InputError, match=r"\[train.precision\]: expected one of auto, fp32, bf16"):
        load_config(path)


def test_the_feature_grid_comes_from_data_fps_or_the_video(tmp_path):
    data = DataConfig(stride=4, window=16, fps=None)
    assert data.grid(28.0).fps == 28.0
    assert DataConfig(stride=4, window=16, fps=50.0).grid(28.0).fps == 50.0  # the config wins
    with pytest.raises(InputError, match="fps is unknown"):
        data.grid(None)


def test_precision_auto_is_bf16_on_cuda_and_fp32_on_cpu():
    import torch

    from mgrec.devices import autocast_dtype

    assert autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype(torch.device("cuda"), "auto") is torch.bfloat16
    assert autocast_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), "fp32") is None
