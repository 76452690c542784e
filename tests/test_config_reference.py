"""docs/config.md: generated from the config dataclasses, every key with its line, never out of date."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from mgrec import config_reference as reference_module
from mgrec.config import DOC, Config, _doc, _section
from mgrec.config_reference import (
    KEY_MAPPING,
    REFERENCE_COMMAND,
    REFERENCE_PATH,
    config_keys,
    config_reference,
    undocumented_keys,
)

ROOT = Path(__file__).resolve().parents[1]


def key_rows(text):
    """The rows of the key tables: key -> (type, default as written, meaning)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("`") and "." in cells[0] or cells[0] in ("`name`", "`seed`"):
            rows[cells[0].strip("`")] = (cells[1], cells[2].strip("`"), cells[3])
        if line.startswith("## ActionFormer"):
            break
    return rows


def test_every_config_key_has_its_line():
    assert undocumented_keys() == []


def test_a_key_without_its_line_is_caught():
    @dataclasses.dataclass
    class Inner:
        documented: int = _doc(1, "has its line")
        bare: int = 2

    @dataclasses.dataclass
    class Outer:
        inner: Inner = _section(Inner, "a section")
        two_lines: str = _doc("", "first line\nsecond line")

    assert undocumented_keys(Outer) == ["inner.bare", "two_lines"]
    with pytest.raises(ValueError, match="inner.bare, two_lines"):
        config_reference(Outer)


def test_docs_config_md_is_up_to_date():
    written = (ROOT / REFERENCE_PATH).read_text(encoding="utf-8")
    assert written == config_reference(), f"{REFERENCE_PATH} is out of date: run `{REFERENCE_COMMAND}`"


def test_reference_gives_every_key_its_type_default_and_meaning():
    rows = key_rows(config_reference())
    leaves = [(key, f) for key, f in config_keys() if not dataclasses.is_dataclass(f.default_factory)]
    assert sorted(rows) == sorted(key for key, _ in leaves)
    for key, f in leaves:
        type_text, default_text, meaning = rows[key]
        assert type_text == str(f.type)
        declared = f.default_factory() if f.default is dataclasses.MISSING else f.default
        assert yaml.safe_load(default_text) == declared, key  # the default as a config would write it
        assert meaning == f.metadata[DOC]


def test_key_mapping_names_existing_mgrec_keys_and_the_usual_suspects():
    known = {key for key, _ in config_keys()}
    for _, _, ours, _ in KEY_MAPPING:
        for key in filter(None, (k.strip() for k in ours.split(","))):
            assert key in known, f"KEY_MAPPING names {key!r}, which is not a config key"
    reference = config_reference()
    for key in ("dataset.max_seq_len", "model.fpn_type", "train_cfg.center_sample_radius", "test_cfg.pre_nms_topk",
                "post_processing.pre_nms_topk", "model.projection.arch", "scheduler.max_epoch"):
        assert f"`{key}`" in reference, key


def test_the_generator_command_prints_the_reference(capsys):
    reference_module.main([])
    assert capsys.readouterr().out == config_reference()
    with pytest.raises(SystemExit):
        reference_module.main(["--unknown"])


def test_reference_defaults_are_the_declared_ones_not_derived_values():
    # model.input_dim is derived from data.feature_dim when a Config is built; the reference says null.
    assert Config().model.input_dim == 1408
    assert key_rows(config_reference())["model.input_dim"][1] == "null"
