import pytest

from mgrec.config import Config, load_config, save_config
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

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*/*.yaml"))
    assert files, "no configs shipped"
    for path in files:
        assert isinstance(load_config(path), Config), path
