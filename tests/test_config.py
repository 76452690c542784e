import re
from pathlib import Path

import pytest

from mgrec.config import Config, DataConfig, canonical_subset, load_config, save_config
from mgrec.errors import InputError
from mgrec.smg_csv import fps_problem


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  lrr: 0.1\n")
    with pytest.raises(InputError, match=r"c.yaml \[train.lrr\]: unknown key; did you mean 'train.lr'"):
        load_config(path)


def test_a_key_in_the_wrong_section_is_sent_to_the_section_it_belongs_to(tmp_path):
    # `lr` under model listed model's 23 keys ("valid keys: variant, input_dim, ..."), and nothing said it is train's
    cases = {"model:\n  lr: 0.1\n": r"\[model.lr\]: unknown key; lr is a key of train, not of model: did you mean "
                                     r"'train.lr'\?$",
             "epochs: 3\n": r"\[epochs\]: unknown key; epochs is a key of train, not of the top level: did you mean "
                            r"'train.epochs'\?$",
             "train:\n  seed: 3\n": r"\[train.seed\]: unknown key; seed is a key of the top level, not of train: "
                                     r"did you mean 'seed'\?$",
             "model:\n  window: 3\n": r"\[model.window\]: unknown key; window is a key of data, not of model: did "
                                       r"you mean 'data.window' or 'model.window_size'\?$"}
    for text, message in cases.items():
        with pytest.raises(InputError, match=r"c.yaml " + message):
            load_config(write(tmp_path, "c.yaml", text))
    with pytest.raises(InputError, match=r"^--set \[train.embed_dim\]: unknown key; embed_dim is a key of model, "
                                         r"not of train: did you mean 'model.embed_dim'\?$"):
        load_config(write(tmp_path, "c.yaml", "seed: 1\n"), ["train.embed_dim=64"])


def test_wrong_type_names_file_and_key(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  epochs: many\n")
    with pytest.raises(InputError, match=r"c.yaml \[train.epochs\]: expected int"):
        load_config(path)


def test_a_whole_number_in_quotes_is_refused_saying_the_quotes_are_the_matter(tmp_path):
    # `epochs: "10"` said "expected int, got '10'", the value the user sees as 10; `lr: "1e-3"` is read
    path = write(tmp_path, "c.yaml", 'train:\n  epochs: "10"\n  lr: "1e-3"\n')
    with pytest.raises(InputError, match=r"c.yaml \[train.epochs\]: expected int, got '10' \(a number in quotes is "
                                         r"text: write it without the quotes\)$"):
        load_config(path)
    with pytest.raises(InputError, match=r"^--set \[seed\]: expected int, got '5' \(a number in quotes"):
        load_config(write(tmp_path, "c.yaml", "seed: 1\n"), ["seed='5'"])
    with pytest.raises(InputError, match=r"\[train.epochs\]: expected int, got 'many'$"):  # a word is no number
        load_config(write(tmp_path, "c.yaml", "train:\n  epochs: many\n"))


def test_overrides_and_yaml_scientific_notation(tmp_path):
    path = write(tmp_path, "c.yaml", "train:\n  lr: 1e-4\n")
    config = load_config(path, ["train.epochs=3", "model.variant=dyfadet", "balance.method=adaptive"])
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.epochs == 3 and config.model.variant == "dyfadet"
    assert config.balance.method == "adaptive"


def test_old_augment_alpha_and_input_noise_are_read_into_their_sections(tmp_path):
    old = write(tmp_path, "old.yaml", "data:\n  augment_alpha: 160\ntrain:\n  input_noise: 0.001\n")
    config = load_config(old)
    assert (config.balance.method, config.balance.alpha) == ("eq1", 160)
    assert (config.transforms.noise_std, config.transforms.noise_prob) == (0.001, 1.0)
    off = load_config(write(tmp_path, "off.yaml", "data:\n  augment_alpha: null\ntrain:\n  input_noise: 0\n"))
    assert off.balance.method == "none" and off.transforms.noise_prob == 0
    # an override of the old key works on a new config, and the saved config round-trips
    config = load_config(write(tmp_path, "new.yaml", "seed: 1\n"), ["data.augment_alpha=100"])
    assert (config.balance.method, config.balance.alpha) == ("eq1", 100)
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


def test_balance_keys_cannot_disagree(tmp_path):
    both = write(tmp_path, "both.yaml", "data:\n  augment_alpha: 160\nbalance:\n  method: adaptive\n")
    with pytest.raises(InputError, match=r"both.yaml \[data.augment_alpha\]: replaced by balance.method"):
        load_config(both)
    with pytest.raises(InputError, match=r"\[balance.alpha\]: expected a number >= 1 \(eq1 needs it\)"):
        load_config(write(tmp_path, "a.yaml", "balance:\n  method: eq1\n"))
    with pytest.raises(InputError, match=r"\[balance.alpha\]: expected null \(method adaptive has no alpha\)"):
        load_config(write(tmp_path, "b.yaml", "balance:\n  method: adaptive\n  alpha: 100\n"))
    with pytest.raises(InputError, match=r"\[balance.method\]: .* did you mean 'adaptive'"):
        load_config(write(tmp_path, "c.yaml", "balance:\n  method: adaptve\n"))
    with pytest.raises(InputError, match=r"\[transforms.time_scale_range\]"):
        load_config(write(tmp_path, "d.yaml", "transforms:\n  time_scale_range: [1.2, 0.8]\n"))


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


def test_a_folder_or_a_misspelt_name_given_as_the_config_says_what_to_give(tmp_path, monkeypatch):
    # `mgrec train runs/mine --out r2` said "cannot read config runs/mine: Is a directory", and `mgrec data check
    # demo/defualt.yaml` "cannot read config demo/defualt.yaml: No such file or directory"
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    with pytest.raises(InputError, match=r"^cannot read config runs/mine: a folder, where a config file \(.yaml\) "
                                         r"was expected$"):
        load_config("runs/mine")
    write(run, "config.yaml", "seed: 1\n")
    with pytest.raises(InputError, match=r"^cannot read config runs/mine: a folder, where a config file \(.yaml\) "
                                         r"was expected; the config of the run it holds is runs/mine/config.yaml "
                                         r"\(`mgrec train runs/mine/config.yaml --out NEW_RUN` trains it again\)$"):
        load_config("runs/mine")
    for name in ("demo/defualt.yaml", "demo/defualt", "configs/demo/mgrc.yaml", "configs\\demo\\mgrc.yaml"):
        with pytest.raises(InputError, match=rf"^cannot read config {re.escape(name)}: no such file, nor a config "
                                             r"shipped with mgrec by that name \(did you mean "
                                             r"demo/(default|mgrec).yaml"):
            load_config(name)
    with pytest.raises(InputError, match=r"mine.yml: no such file, nor a config shipped with mgrec by that name "
                                         r"\(shipped are demo/actionformer.yaml, demo/base.yaml, demo/default.yaml, "
                                         r"\.\.\.\)$"):
        load_config(tmp_path / "mine.yml")


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


def test_split_names_are_read_like_subset_names(tmp_path):
    from mgrec.data import annotations

    path = write(tmp_path, "c.yaml", "data:\n  train_split: Training\n  val_split: VALIDATION\n")
    config = load_config(path, ["data.test_split=testing"])
    assert (config.data.train_split, config.data.val_split, config.data.test_split) == ("train", "val", "test")
    assert DataConfig(val_split=" Validation ").val_split == "val"
    assert DataConfig(train_split="Holdout").train_split == "holdout"  # other names only lower-cased
    # One rule for both: a config's split finds the annotations' subset of the same name.
    assert annotations.canonical_subset is canonical_subset
    save_config(config, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml").data.val_split == "val"
    # a split named `test_last` wrote over split `test`'s files of --checkpoint last (eval_test_last.json)
    from mgrec.config import split_name

    with pytest.raises(InputError, match=r"subset 'Test_Last': a split's name may not end in '_last'"):
        split_name("Test_Last", "subset")
    assert split_name("last") == "last" and split_name("lastly") == "lastly"


def test_null_means_empty_for_a_text_key_whose_default_is_empty_and_nowhere_else(tmp_path):
    """ActionFormer writes `file_prefix: ~` for no prefix: a null text key whose empty default means "none" is
    read as that empty default; a null where a name is needed (a split) is still refused."""
    path = write(tmp_path, "c.yaml", "data:\n  feature_prefix: ~\npseudo_labels:\n  teacher: null\n")
    config = load_config(path)
    assert (config.data.feature_prefix, config.pseudo_labels.teacher) == ("", "")
    path = write(tmp_path, "c.yaml", "data:\n  val_split: ~\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.val_split\]: expected str, got null"):
        load_config(path)


def test_a_split_that_is_not_a_name_is_refused(tmp_path):
    path = write(tmp_path, "c.yaml", "data:\n  val_split: 3\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.val_split\]: expected str"):
        load_config(path)
    path = write(tmp_path, "c.yaml", "data:\n  train_split: ['validation']\n")  # ActionFormer's lists
    with pytest.raises(InputError, match=r"c.yaml \[data.train_split\]: expected one name, not a list: write "
                                         r"train_split: 'validation'"):
        load_config(path)


@pytest.mark.parametrize("prefix", ["../", "a/b", ".hidden", "a\\b", "x" * 65])
def test_a_feature_prefix_stays_a_plain_visible_name_fragment(tmp_path, prefix):
    path = write(tmp_path, "c.yaml", f"data:\n  feature_prefix: {prefix!r}\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.feature_prefix\]: expected text of at most 64 characters "
                                         r"without '/', '\\' or a leading '.'"):
        load_config(path)
    streams = (f"data:\n  streams:\n  - {{name: a, features: f, feature_dim: 2, feature_prefix: {prefix!r}}}\n"
               "model:\n  fusion: concat\n")
    with pytest.raises(InputError, match=r"\[data.streams\[0\].feature_prefix\]: expected text of at most 64"):
        load_config(write(tmp_path, "s.yaml", streams))


@pytest.mark.parametrize("ext", [".pt", ".foo", "pth", ""])
def test_a_feature_ending_mgrec_cannot_read_is_refused_by_key(tmp_path, ext):
    """OpenTAD's feat_format takes `pt`: `.pt` files were opened as .npz and blamed for their keys, file by file."""
    with pytest.raises(InputError, match=r"c.yaml \[data.feature_ext\]: expected .npy or .npz, got .*torch's .pt"):
        load_config(write(tmp_path, "c.yaml", f"data:\n  feature_ext: {ext!r}\n"))
    streams = (f"data:\n  streams:\n  - {{name: a, features: f, feature_dim: 2, feature_ext: {ext!r}}}\n"
               "model:\n  fusion: concat\n")
    with pytest.raises(InputError, match=r"\[data.streams\[0\].feature_ext\]: expected .npy or .npz"):
        load_config(write(tmp_path, "s.yaml", streams))
    for good in (".npz", "npy", ".NPY"):
        assert load_config(write(tmp_path, "g.yaml", f"data:\n  feature_ext: {good!r}\n")).data.feature_ext == good


def test_a_feature_prefix_is_read():
    config = Config()
    config.data.feature_prefix = "v_"
    assert config.data.input_streams()[0].feature_prefix == "v_"


def test_every_number_must_be_finite_and_in_its_range(tmp_path):
    cases = {
        "train:\n  lr: .inf\n": r"\[train.lr\]: expected a finite number, got inf",
        "train:\n  weight_decay: .nan\n": r"\[train.weight_decay\]: expected a finite number",
        "train:\n  focal_gamma: -1\n": r"\[train.focal_gamma\]: expected a number >= 0",
        "data:\n  fps: .inf\n": r"\[data.fps\]: expected a finite number",
        "postprocess:\n  score_threshold: 1.5\n": r"\[postprocess.score_threshold\]: expected a number in \[0, 1\]",
        "model:\n  num_levels: 20\n": r"\[model.num_levels\]: expected at most 16",
        "model:\n  num_levels: 2\n  regression_ranges: [[0, 8], [4, 2]]\n": r"\[model.regression_ranges\]",
        "model:\n  regression_ranges: [[0, .inf], [1, 2]]\n":
            r"\[model.regression_ranges\[0\]\[1\]\]: expected a finite",
    }
    for text, message in cases.items():
        path = write(tmp_path, "c.yaml", text)
        with pytest.raises(InputError, match=message):
            load_config(path)


def test_hostile_config_files_give_one_line_errors(tmp_path):
    nested = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    cases = {
        nested: r"(nests too deeply|not valid YAML)",
        bomb: r"c.yaml: its aliases \(\*name\) expand to more than 100000 values",
        "base: [a.yaml]\n": r"\[base\]: expected the path of the config to inherit from",
        "base: 3\n": r"\[base\]: expected the path",
        "data: " + "{" * 3000 + "}" * 3000 + "\n": r"(nests too deeply|not valid YAML|expected)",
    }
    for text, message in cases.items():
        path = write(tmp_path, "c.yaml", text)
        with pytest.raises(InputError, match=message) as error:
            load_config(path)
        assert len(str(error.value)) < 400 and "\n" not in str(error.value)


def test_a_removed_key_still_loads_at_its_old_default_and_is_refused_otherwise(tmp_path):
    assert load_config(write(tmp_path, "c.yaml", "train:\n  num_workers: 0\n")).train.lr > 0
    with pytest.raises(InputError, match=r"\[train.num_workers\]: this key was removed"):
        load_config(write(tmp_path, "c.yaml", "train:\n  num_workers: 4\n"))


# data.fps follows the one frame-rate rule (`mgrec.smg_csv.fps_problem`), like annotations and sidecars.
FPS_VALUES = [1e300, 1e-300, 1000.5, 0.0, -5.0, 0.5, 28.0, 1000.0]


def test_a_huge_data_fps_is_refused_naming_the_key(tmp_path):
    path = write(tmp_path, "c.yaml", "data:\n  fps: 1.0e+300\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.fps\]: expected a positive number of frames per second, "
                                         r"at most 1000, or null .*, got 1e\+300"):
        load_config(path)


@pytest.mark.parametrize("fps", FPS_VALUES)
def test_data_fps_is_refused_exactly_when_the_frame_rate_rule_refuses_it(tmp_path, fps):
    path = write(tmp_path, "c.yaml", f"data:\n  fps: {fps!r}\n")
    if fps_problem(fps) is None:
        assert load_config(path).data.fps == fps
    else:
        with pytest.raises(InputError, match=r"c.yaml \[data.fps\]: expected a positive number of frames"):
            load_config(path)


def test_an_integer_too_large_for_a_float_is_an_input_error(tmp_path):
    path = write(tmp_path, "c.yaml", "data:\n  fps: 1" + "0" * 400 + "\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.fps\]: expected a finite number"):
        load_config(path)


@pytest.mark.parametrize("text, key, value", [
    ("seed: 0123\n", "seed", 123),  # YAML 1.1: octal 83
    ("train:\n  batch_size: 0010\n", "train.batch_size", 10),  # YAML 1.1: 8
    ("train:\n  lr: 1e-3\n", "train.lr", 0.001),  # YAML 1.1: the string "1e-3"
])
def test_numbers_read_as_yaml_1_2_reads_them(tmp_path, text, key, value):
    config = load_config(write(tmp_path, "n.yaml", text))
    for part in key.split("."):
        config = getattr(config, part)
    assert config == value


@pytest.mark.parametrize("text, override, message", [
    ("train:\n  epochs: 1:30\n", None, r"n.yaml \[train.epochs\]: expected"),  # YAML 1.1: 90 (base 60)
    ("train:\n  epochs: 1_0\n", None, r"n.yaml \[train.epochs\]: expected"),  # YAML 1.1: 10
    ("train:\n  epochs: 2\n", "train.epochs=1_0", r"\[train.epochs\]: expected"),
    ("train:\n  epochs: 2\n", "data.fps=1:00", r"\[data.fps\]: expected"),  # YAML 1.1: 60
])
def test_yaml_1_1_numbers_are_refused_by_key_not_read_as_other_numbers(tmp_path, text, override, message):
    with pytest.raises(InputError, match=message):
        load_config(write(tmp_path, "n.yaml", text), [override] if override else None)


def test_merge_keys_given_twice_or_disagreeing_are_refused(tmp_path):
    twice = "a: &a {epochs: 5}\nb: &b {epochs: 7}\ntrain:\n  <<: *a\n  <<: *b\n"
    with pytest.raises(InputError, match=r"m.yaml:5:3: not valid YAML: '<<' appears twice in one mapping"):
        load_config(write(tmp_path, "m.yaml", twice))
    for merged in ("[{epochs: 5}, {epochs: 7}]", "[{e: 5}, {e: 7}]"):  # PyYAML picked 7 in one, 5 in the other
        with pytest.raises(InputError, match=r"key '(epochs|e)' is given by two of the mappings merged here"):
            load_config(write(tmp_path, "m.yaml", f"train:\n  <<: {merged}\n"))


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\ntrain:\n  epochs: 1\nmodel:\n  num_classes: 7\ntrain:\n  lr: 0.0005\n")
    with pytest.raises(InputError, match=r"dup.yaml:6:1: not valid YAML: key 'train' appears twice in one mapping "
                                         r"\(first at line 2\)"):
        load_config(path)
    path.write_text("train:\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(InputError, match=r"dup.yaml:3:3: .*key 'epochs' appears twice"):
        load_config(path)


def test_a_config_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nnotes: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.yaml:2: not UTF-8 text \(byte 0xe9"):
        load_config(path)


def test_a_bad_override_is_reported_as_the_overrides_not_the_files(tmp_path):
    path = tmp_path / "c.yaml"
    save_config(Config(data=DataConfig(annotations="a.json", features="f")), path)
    with pytest.raises(InputError, match=r"^--set \[train.epoch\]: unknown key; did you mean 'train.epochs'\?"):
        load_config(path, ["train.epoch=1"])
    with pytest.raises(InputError, match=r"^--set \[train.epochs\]: expected int"):
        load_config(path, ["train.epochs=abc"])
    assert load_config(path, ["train.epochs=3"]).train.epochs == 3
    # a key the file itself gets wrong is still the file's
    path.write_text(path.read_text() + "\nmisc: 1\n")
    with pytest.raises(InputError, match=r"c.yaml \[misc\]: unknown key"):
        load_config(path, ["train.epochs=3"])


def test_base_may_name_a_config_shipped_with_mgrec(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: demo/default.yaml\ntrain:\n  epochs: 3\n")
    config = load_config(path)
    assert config.model.variant == "actionformer" and config.train.epochs == 3  # the shipped default, then mine
    path.write_text("base: demo/nothing.yaml\n")
    with pytest.raises(InputError, match=r"mine.yaml \[base\]: 'demo/nothing.yaml' is neither a file beside it"):
        load_config(path)
    # a file named as the shipped config it inherits from: the shipped one, not itself ("a loop")
    named = tmp_path / "fusion.yaml"
    named.write_text("base: demo/fusion.yaml\ntrain:\n  epochs: 2\n")
    config = load_config(named)
    assert config.model.fusion == "gated" and config.train.epochs == 2


def test_a_seed_is_at_most_what_every_epoch_seed_derived_from_it_allows(tmp_path):
    import torch

    from mgrec.config import MAX_SEED, check_for_training

    # each epoch seeds torch with seed * 1000 + epoch: 2**62 overflowed it once the run folder was written
    for seed in (MAX_SEED + 1, 2**62, 2**63 - 1, -1):
        config = load_config(write(tmp_path, "c.yaml", f"seed: {seed}\n"))  # read: a saved run's config must load
        assert config.seed == seed
        with pytest.raises(InputError, match=r"^\S*c.yaml \[seed\]: expected an integer in \[0, 2147483647\] "
                                             rf"\(2\*\*31 - 1\) to train, got {seed}$"):
            check_for_training(config)
    check_for_training(load_config(write(tmp_path, "c.yaml", f"seed: {MAX_SEED}\n")))
    torch.manual_seed(MAX_SEED * 1000 + 10**9)  # a billion epochs later, still a valid seed
    # a config built in code says so
    with pytest.raises(InputError, match=r"^config \[seed\]: expected an integer in"):
        check_for_training(Config(seed=MAX_SEED + 1))
    with pytest.raises(InputError, match=r"^--set seed=2147483648 \[seed\]: expected an integer in"):
        check_for_training(load_config("demo/default.yaml", ["seed=2147483648"]))


def test_a_value_out_of_range_given_with_set_is_blamed_on_the_set(tmp_path):
    # the range rules named the config file (or the shipped demo config) for a value it does not hold
    for config in (write(tmp_path, "my.yaml", "seed: 1\n"), "demo/default.yaml"):
        with pytest.raises(InputError, match=r"^--set train.epochs=0 \[train.epochs\]: expected a positive number, "
                                             r"got 0$"):
            load_config(config, ["train.epochs=0"])
    path = write(tmp_path, "my.yaml", "train:\n  epochs: 0\n")
    cases = {
        ("train.epochs=3", "train.input_noise=-1"):  # read into its new key
            r"^--set train.input_noise=-1 \[transforms.noise_std\]: expected a number in \[0, 10\]",
        ("train={epochs: 0}",): r"^--set train=\{epochs: 0\} \[train.epochs\]",  # a whole section
        ("train.epochs=3", "model.regression_ranges=[[0, .inf]]"):
            r"^--set model.regression_ranges=\[\[0, .inf\]\] \[model.regression_ranges\[0\]\[1\]\]: expected a finite",
        ("train.epochs=3", "model.head_layers=100000"):  # the model's rules too
            r"^--set model.head_layers=100000 \[model.head_layers\]: expected at most 64 layers",
    }
    for overrides, message in cases.items():
        with pytest.raises(InputError, match=message):
            load_config(path, list(overrides))
    # the file's own value is still the file's, whatever else is set
    with pytest.raises(InputError, match=r"my.yaml \[train.epochs\]: expected a positive number, got 0"):
        load_config(path, ["train.lr=0.001"])
    with pytest.raises(InputError, match=r"^--set train.epochs=0 \[train.epochs\]"):  # the last --set of a key
        load_config(path, ["train.epochs=3", "train.epochs=0"])


def test_an_embedding_width_is_refused_only_by_the_variant_whose_heads_split_it(tmp_path):
    # `--set model.embed_dim=30` on mgrec or dyfadet was refused for transformer_heads, which only actionformer reads:
    # "[model.transformer_heads]: expected a positive divisor of embed_dim=30, got 4" (its default, never set)
    from mgrec.model.detector import build_detector

    for variant in ("mgrec", "dyfadet"):
        config = load_config("demo/default.yaml", [f"model.variant={variant}", "model.embed_dim=30",
                                                   "model.head_dim=30", "model.mlp_dim=32", "model.num_levels=3",
                                                   "model.regression_ranges=[[0, 4], [4, 8], [8, 10000]]"])
        assert (config.model.embed_dim, config.model.transformer_heads) == (30, 4)
        build_detector(config.model)  # the network is built with it
    with pytest.raises(InputError, match=r"^--set model.embed_dim=30 \[model.embed_dim\] and --set model.variant="
                                         r"actionformer \[model.variant\] and \S*default.yaml "
                                         r"\[model.transformer_heads\]: expected a positive divisor of embed_dim=30"):
        load_config("demo/default.yaml", ["model.variant=actionformer", "model.embed_dim=30"])
    with pytest.raises(InputError, match=r"\[model.transformer_heads\]: expected a positive integer, got 0$"):
        load_config("demo/default.yaml", ["model.variant=mgrec", "model.transformer_heads=0"])


def test_a_rule_across_keys_names_where_each_key_came_from(tmp_path):
    # a clash of a --set with the file blamed the file alone ("default.yaml [balance.alpha]: expected a number
    # >= 1 (eq1 needs it), got None" for `--set balance.method=eq1`); now every key from elsewhere comes first and
    # the message goes on from the key it is about
    with pytest.raises(InputError, match=r"^--set balance.method=eq1 \[balance.method\] and \S*default.yaml "
                                         r"\[balance.alpha\]: expected a number >= 1 \(eq1 needs it\), got None$"):
        load_config("demo/default.yaml", ["balance.method=eq1"])
    path = write(tmp_path, "c.yaml", "data:\n  features: feats\nbalance:\n  method: eq1\n  alpha: 2\n")
    cases = {
        ("balance.method=none",): r"^--set balance.method=none \[balance.method\] and \S*c.yaml \[balance.alpha\]: "
                                  r"expected null \(method none has no alpha\), got 2$",
        ("balance.method=none", "balance.alpha=3"): r"^--set balance.method=none \[balance.method\] and --set "
                                                    r"balance.alpha=3 \[balance.alpha\]: expected null",
        ("model.num_levels=5",): r"^--set model.num_levels=5 \[model.num_levels\] and \S*c.yaml "
                                 r"\[model.regression_ranges\]: 6 ranges for 5 levels$",
        ("data.max_seq_len=100",): r"^\S*c.yaml \[model.num_levels\] and --set data.max_seq_len=100 "
                                   r"\[data.max_seq_len\]: 100 must be divisible",
        ("model.fusion=sum",): r"^\S*c.yaml \[data.streams\] and --set model.fusion=sum \[model.fusion\]: sum joins "
                               r"two or more data.streams",
        ("data.videos=clips",): r"^--set data.videos=clips \[data.videos\] and \S*c.yaml \[data.features\]: given "
                                r"with data.videos",
        ("model.variant=actionformer", "model.embed_dim=30", "model.transformer_heads=4"):
            r"^--set model.embed_dim=30 \[model.embed_dim\] and --set model.variant=actionformer \[model.variant\] "
            r"and --set model.transformer_heads=4 \[model.transformer_heads\]: expected a positive divisor of "
            r"embed_dim=30 \(actionformer's self-attention splits the embedding among its heads\), got 4$",
        ("data.normalize=bogus",): r"^--set data.normalize=bogus \[data.normalize\]: expected one of",  # one key too
    }
    for overrides, message in cases.items():
        with pytest.raises(InputError, match=message):
            load_config(path, list(overrides))
    # keys of one place: that place alone, as before
    with pytest.raises(InputError, match=r"^\S*c.yaml \[balance.alpha\]: expected null \(method none has no alpha\)"):
        load_config(write(tmp_path, "c.yaml", "balance:\n  method: none\n  alpha: 2\n"))
    # a --set overrides the config whatever name either uses (each is read into its new name first)
    old = write(tmp_path, "old.yaml", "train:\n  bf16: true\n")
    assert load_config(old).train.precision == "auto" and load_config(old, ["train.precision=fp32"]).train.precision \
        == "fp32"
    assert load_config(old, ["train.bf16=false"]).train.precision == "fp32"
    new = write(tmp_path, "new.yaml", "train:\n  precision: fp32\n")
    assert load_config(new, ["train.bf16=true"]).train.precision == "auto"
    assert (load_config(path, ["data.augment_alpha=2"]).balance.method, load_config(path, ["data.augment_alpha=2"])
            .balance.alpha) == ("eq1", 2)
    noisy = write(tmp_path, "noisy.yaml", "train:\n  input_noise: 0.1\n")
    assert load_config(noisy).transforms.noise_prob == 1.0
    assert load_config(noisy, ["train.input_noise=0"]).transforms.noise_prob == 0.0  # was silently ignored
    assert load_config(noisy, ["train.input_noise=0.2"]).transforms.noise_std == 0.2  # was refused
    # within one file, an old key beside its new name is still refused, naming both
    with pytest.raises(InputError, match=r"both.yaml \[train.bf16\].*replaced by train.precision"):
        load_config(write(tmp_path, "both.yaml", "train:\n  bf16: true\n  precision: fp32\n"))


def test_layer_counts_kernel_expansion_and_crops_per_video_have_an_upper_bound(tmp_path):
    from mgrec.config import MAX_CROPS_PER_VIDEO, MAX_KERNEL_EXPANSION, MAX_LAYERS

    # building 100000 layers hung; a 2e9-step kernel and 1e9 crops per video died in the allocator
    cases = {
        "model:\n  head_layers: 100000\n": r"c.yaml \[model.head_layers\]: expected at most 64 layers, got 100000",
        "model:\n  stem_layers: 100000\n": r"c.yaml \[model.stem_layers\]: expected at most 64 layers, got 100000",
        "model:\n  kernel_expansion: 1.0e9\n":
            r"c.yaml \[model.kernel_expansion\]: expected a positive number, at most 64, got 1000000000.0",
        "train:\n  crops_per_video: 1000000000\n":
            r"c.yaml \[train.crops_per_video\]: expected a positive number of crops, at most 10000, got 1000000000",
    }
    for text, message in cases.items():
        with pytest.raises(InputError, match=message):
            load_config(write(tmp_path, "c.yaml", text))
    at_the_limits = (f"model:\n  head_layers: {MAX_LAYERS}\n  stem_layers: {MAX_LAYERS}\n  kernel_expansion: "
                     f"{MAX_KERNEL_EXPANSION}\ntrain:\n  crops_per_video: {MAX_CROPS_PER_VIDEO}\n")
    assert load_config(write(tmp_path, "c.yaml", at_the_limits)).model.head_layers == MAX_LAYERS


def test_yaml_merge_keys_are_read_and_the_mappings_own_keys_win(tmp_path):
    # `<<: *anchor` was refused: "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'".
    path = write(tmp_path, "c.yaml", "data:\n  streams:\n    - &rgb {name: rgb, features: f, feature_dim: 8}\n"
                                     "    - <<: *rgb\n      name: flow\n      features: g\n"
                                     "train:\n  <<: {epochs: 2, lr: 0.5}\n  epochs: 1\n")
    config = load_config(path)
    assert [(s.name, s.feature_dim) for s in config.data.streams] == [("rgb", 8), ("flow", 8)]
    assert (config.train.epochs, config.train.lr) == (1, 0.5)
    twice = write(tmp_path, "twice.yaml", "train:\n  <<: {lr: 0.5}\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(InputError, match=r"twice.yaml:4:3: not valid YAML: key 'epochs' appears twice"):
        load_config(twice)


def test_a_key_that_is_a_list_is_an_input_error(tmp_path):
    # `? [a, b]` made a raw TypeError: unhashable type: 'list'.
    path = write(tmp_path, "c.yaml", "name: x\n? [a, b]\n: 1\n")
    with pytest.raises(InputError, match=r"c.yaml:2:3: not valid YAML: a list as a key; config keys are names"):
        load_config(path)


def test_an_empty_section_names_its_key(tmp_path):
    # was "c.yaml [train.]: expected a mapping, got None"
    with pytest.raises(InputError, match=r"c.yaml \[train\]: expected a mapping of keys, got nothing \(a section "
                                         r"without keys: give its keys, or delete it\)$"):
        load_config(write(tmp_path, "c.yaml", "train:\n"))
    with pytest.raises(InputError, match=r"--set \[train\]: expected a mapping of keys, got 3$"):
        load_config(write(tmp_path, "d.yaml", "{}"), ["train=3"])


def test_base_loops_name_every_config_of_the_loop_and_a_folder_is_no_base(tmp_path):
    # a -> b -> c -> a was reported as "b.yaml: config inherits from itself"; `base: /tmp` as
    # "cannot read config /tmp: Is a directory", without the config or key that named it.
    write(tmp_path, "b.yaml", "base: c.yaml\n")
    write(tmp_path, "c.yaml", "base: a.yaml\n")
    a = write(tmp_path, "a.yaml", "base: b.yaml\n")
    with pytest.raises(InputError) as error:
        load_config(a)
    loop = f"{a} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'c.yaml'} -> {tmp_path / 'a.yaml'}"
    assert str(error.value) == f"{loop}: these configs inherit from each other in a loop (their 'base' keys)"
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match=r"d.yaml \[base\]: 'folder' is a folder \(.*folder\); expected a config file"):
        load_config(write(tmp_path, "d.yaml", "base: folder\n"))


def test_set_on_a_list_item_says_to_give_the_whole_list(tmp_path):
    # Messages name list items as data.streams[0].stride; `--set data.streams[0].stride=8` answered
    # "unknown key; did you mean 'data.streams'?".
    with pytest.raises(InputError) as error:
        load_config("demo/fusion.yaml", ["data.streams[0].stride=8"])
    assert str(error.value) == (
        "--set 'data.streams[0].stride=8': streams[0] is an item of a list, which --set cannot change alone; give "
        "the whole list (--set 'data.streams=[...]') or edit it in the config")
    # the index as a key of its own (as a dotted path would have it) was refused as "expected a list, got {'0': ...}"
    with pytest.raises(InputError) as error:
        load_config("demo/fusion.yaml", ["data.streams.0.stride=8"])
    assert str(error.value) == (
        "--set 'data.streams.0.stride=8': streams.0 is an item of a list, which --set cannot change alone; give "
        "the whole list (--set 'data.streams=[...]') or edit it in the config")


def test_per_class_thresholds_are_checked_by_key(tmp_path):
    path = write(tmp_path, "c.yaml", "model:\n  num_classes: 3\npostprocess:\n  class_thresholds: [0.2, 0.3, 0.4]\n")
    assert load_config(path).postprocess.class_thresholds == [0.2, 0.3, 0.4]
    with pytest.raises(InputError, match=r"\[postprocess.thresholds\]: expected one of global, per_class, got "
                                         r"'perclass'; did you mean 'per_class'\?"):
        load_config(path, ["postprocess.thresholds=perclass"])
    with pytest.raises(InputError, match=r"\[postprocess.class_thresholds\]: 2 thresholds for 3 classes"):
        load_config(path, ["postprocess.class_thresholds=[0.1,0.2]"])
    with pytest.raises(InputError, match=r"\[postprocess.class_thresholds\[2\]\]: expected a score threshold in "
                                         r"\[0, 2\] \(above 1: none of the class\), got 2.5"):
        load_config(path, ["postprocess.class_thresholds=[0.1,0.2,2.5]"])
    with pytest.raises(InputError, match=r"\[postprocess.threshold_shrinkage\]: expected a number >= 0"):
        load_config(path, ["postprocess.threshold_shrinkage=-1"])


def test_a_base_is_found_beside_the_config_or_shipped_never_in_the_current_folder(tmp_path, monkeypatch):
    """`base: other.yaml` of sub/child.yaml loaded ./other.yaml when run from the folder above, and refused it
    from sub/: one config, two meanings."""
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "child.yaml", "base: other.yaml\n")
    write(tmp_path, "other.yaml", "base: demo/default.yaml\ntrain: {epochs: 777}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"child.yaml \[base\]: 'other.yaml' is neither a file beside it"):
        load_config("sub/child.yaml")
    # a folder named like a shipped config in the current folder does not hide the shipped one
    (tmp_path / "demo" / "default.yaml").mkdir(parents=True)
    assert load_config(write(tmp_path / "sub", "plain.yaml", "base: demo/default.yaml\n")).name == "demo-default"


def test_an_old_key_in_a_config_overrides_its_base_s_new_one(tmp_path):
    """`data.augment_alpha` in a config whose shipped base sets balance.method was refused, blaming the config."""
    config = load_config(write(tmp_path, "o1.yaml", "base: demo/default.yaml\ndata:\n  augment_alpha: 2\n"))
    assert (config.balance.method, config.balance.alpha) == ("eq1", 2)
    config = load_config(write(tmp_path, "o2.yaml", "base: demo/default.yaml\ntrain:\n  bf16: true\n"))
    assert config.train.precision == "auto"  # bf16: true was read as auto (bf16 was CUDA-only)
    with pytest.raises(InputError, match=r"o3.yaml \[train.bf16\]: replaced by train.precision; give only"):
        load_config(write(tmp_path, "o3.yaml", "train:\n  bf16: true\n  precision: fp32\n"))


def test_a_recorded_config_reads_back_as_a_config_file_does():
    """A training state's recorded config (a plain dict) gets the defaults of keys added since and the new names
    of old ones, so a resume after an upgrade is not refused as "config.yaml was edited"."""
    from mgrec.config import config_from_record, to_dict

    recorded = to_dict(Config())
    del recorded["postprocess"]["thresholds"]  # a key a later format added
    recorded["train"]["bf16"] = False  # and an old name
    del recorded["train"]["precision"]
    read = config_from_record(recorded, "last_state.pt")
    assert read.postprocess.thresholds == "global" and read.train.precision == "fp32"
    assert recorded["train"]["bf16"] is False  # the record itself is left as it was


def test_a_saved_config_reads_back_strings_that_look_like_numbers_as_strings(tmp_path):
    from mgrec.config import save_config

    config = load_config(write(tmp_path, "c.yaml", "name: '1e3'\ndata:\n  annotations: '1:30'\n  features: '0123'\n"))
    assert (config.name, config.data.annotations, config.data.features) == ("1e3", "1:30", "0123")
    save_config(config, tmp_path / "saved.yaml")
    again = load_config(tmp_path / "saved.yaml")
    assert (again.name, again.data.annotations, again.data.features) == ("1e3", "1:30", "0123")


def test_a_config_is_read_to_its_size_limit_and_aliases_and_set_values_are_bounded(tmp_path):
    # /dev/zero has no size to stat: 6.5 GB were read before a MemoryError
    with pytest.raises(InputError, match=r"/dev/zero: more than 1000000 bytes is not a config"):
        load_config("/dev/zero")
    # a named pipe nobody writes: opening it waited forever, as a config and as a base
    import os

    os.mkfifo(tmp_path / "pipe.yaml")
    for config in (tmp_path / "pipe.yaml", write(tmp_path, "child.yaml", "base: pipe.yaml\n")):
        with pytest.raises(InputError, match=r"pipe.yaml: is a named pipe or a socket, not a file"):
            load_config(config)
    # a pipe this process holds open reads (`mgrec train <(cat c.yaml)`, stdin)
    read_end, write_end = os.pipe()
    os.write(write_end, b"seed: 7\n")
    os.close(write_end)
    try:
        assert load_config(f"/dev/fd/{read_end}").seed == 7
    finally:
        os.close(read_end)
    # an alias fanned out to 640000 values in a 16-kB file (a minute and 600 MB before a key was checked)
    fan = "model:\n  regression_ranges: [&a [" + ", ".join(["1"] * 800) + "], " + ", ".join(["*a"] * 799) + "]\n"
    with pytest.raises(InputError, match=r"its aliases \(\*name\) expand to more than 100000 values"):
        load_config(write(tmp_path, "fan.yaml", fan))
    with pytest.raises(InputError, match=r"--set 'name=\[\[\[.*: nests too deeply to be a config value"):
        load_config(write(tmp_path, "c.yaml", "seed: 1\n"), ["name=" + "[" * 5000])


def test_a_section_given_to_set_is_laid_over_the_config_s_and_numbers_follow_yaml_1_2(tmp_path):
    path = write(tmp_path, "c.yaml", "train: {lr: 0.003, device: cpu, crops_per_video: 1}\n")
    # a mapping replaced the whole section: lr, device and crops_per_video silently back to their defaults
    config = load_config(path, ["train={epochs: 1}"])
    assert (config.train.epochs, config.train.lr, config.train.device, config.train.crops_per_video) == (1, 0.003,
                                                                                                          "cpu", 1)
    # a quoted number is read by YAML 1.2's rule, not Python's float() (1_0e-3 was 0.01, Arabic-Indic digits 0.003)
    assert load_config(path, ["train.lr='1e-3'"]).train.lr == 1e-3
    for text in ("1_0e-3", "\u0660.\u0660\u0660\u0663", "\uff11e-4"):
        with pytest.raises(InputError, match=r"\[train.lr\]"):
            load_config(path, [f"train.lr={text}"])
    # at 1 no probability is above the candidate threshold: F1 0 at a "tuned" threshold 0, without a word
    with pytest.raises(InputError, match=r"postprocess.pre_nms_thresh.*\[0, 1\) \(at 1 nothing is ever detected\)"):
        load_config(path, ["postprocess.pre_nms_thresh=1"])


def test_a_gate_offset_float32_cannot_hold_is_refused(tmp_path):
    # model.gate_tau had no rule: -100 was a ZeroDivisionError traceback in the first training step (1 + tanh(-100)
    # is 0), and from about -10 the DFA convs' gate was 0 everywhere in float32, without a word
    import torch

    from mgrec.model.dyfadet import geretanh_from_doubled_shift
    from mgrec.model.reference import geretanh

    path = write(tmp_path, "c.yaml", "model: {variant: dyfadet}\n")
    for value in ("-100", "-10", "-4.5"):
        with pytest.raises(InputError, match=rf"--set model.gate_tau={value} \[model.gate_tau\]: expected a number >= "
                                             r"-4 \(the gate divides by 1 \+ tanh\(gate_tau\)"):
            load_config(path, [f"model.gate_tau={value}"])
    assert load_config(path, ["model.gate_tau=-4"]).model.gate_tau == -4.0
    z = torch.linspace(-3, 6, 501, dtype=torch.float64)  # at the bound the float32 gate is the float64 one
    got = geretanh_from_doubled_shift((2 * (z + 4.0)).float(), -4.0).double()
    assert float((got - geretanh(z, -4.0)).abs().max()) < 1e-3


def test_a_soft_nms_floor_no_score_reaches_is_refused(tmp_path):
    # postprocess.min_score=1 (allowed as a fraction): Soft-NMS keeps a candidate only while its score is >= it, and
    # no sigmoid score reaches 1: training selected its checkpoint on a val F1 of 0 at a "tuned" threshold of 0,
    # exit 0, and data check said nothing
    path = write(tmp_path, "c.yaml", "postprocess: {nms: soft}\n")
    with pytest.raises(InputError, match=r"--set postprocess.min_score=1 \[postprocess.min_score\]: expected a "
                                         r"number in \[0, 1\) \(at 1 nothing is ever detected\)"):
        load_config(path, ["postprocess.min_score=1"])
    assert load_config(path, ["postprocess.min_score=0.999"]).postprocess.min_score == 0.999


def test_a_shipped_config_copied_elsewhere_loads_as_the_shipped_one(tmp_path):
    # `base: actionformer.yaml` was read beside the copy: "neither a file beside it nor a config shipped with mgrec"
    import shutil

    from mgrec.config import shipped_config

    for name in ("demo/default.yaml", "demo/fusion.yaml", "smg/mgrec.yaml", "smg/mgrec_end_to_end.yaml"):
        copy = tmp_path / Path(name).name
        shutil.copy(shipped_config(name), copy)
        assert load_config(copy) == load_config(name), name
    # a copy of the whole folder reads its own bases, edits and all (`demo/base.yaml` is the copy's base.yaml)
    folder = Path(shutil.copytree(shipped_config("demo/default.yaml").parent, tmp_path / "mine"))
    (folder / "base.yaml").write_text((folder / "base.yaml").read_text().replace("epochs: 15", "epochs: 3"))
    assert load_config(folder / "default.yaml").train.epochs == 3
    assert load_config("demo/default.yaml").train.epochs == 15


def test_a_run_s_config_reused_with_other_features_names_every_derived_key_at_once(tmp_path):
    # a run's config.yaml holds model.stream_dims and model.input_dim; with another data.feature_dim each was
    # refused in turn, one fix and one rerun per key
    from mgrec.run import RunDir

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(load_config("demo/default.yaml"))
    text = run.config_path.read_text().replace("feature_dim: 128", "feature_dim: 2048")
    (tmp_path / "mine.yaml").write_text(text)
    with pytest.raises(InputError, match=r"mine.yaml: model.stream_dims, model.input_dim differ from the values they "
                                         r"follow .*: leave them out"):
        load_config(tmp_path / "mine.yaml")


def test_an_actionformer_config_is_refused_at_once_with_its_keys_mapped(tmp_path):
    """ActionFormer's YAML given as mgrec's stopped at `dataset_name` (unknown key), then `train_split` ('did you
    mean train?'), then `dataset` ('did you mean data?'): one foreign key at a time, none named as mgrec's."""
    text = ("dataset_name: thumos\ntrain_split: ['validation']\nmodel_name: LocPointTransformer\n"
            "dataset:\n  feat_stride: 4\n  num_frames: 16\n  file_prefix: ~\nmodel:\n  n_mha_win_size: 19\n"
            "  fpn_type: identity\nopt:\n  learning_rate: 0.0001\ntest_cfg:\n  max_seg_num: 200\n")
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, "af.yaml", text))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'af.yaml'}: an ActionFormer / DyFADet config (sections dataset_name, "
                              "dataset, opt, test_cfg), not mgrec's")
    for pair in ("dataset.feat_stride -> data.stride", "dataset.num_frames -> data.window",
                 "dataset.file_prefix -> data.feature_prefix", "model_name -> model.variant",
                 "train_split -> data.train_split;",
                 "model.n_mha_win_size -> model.transformer_window", "opt.learning_rate -> train.lr",
                 "test_cfg.max_seg_num -> postprocess.max_detections"):
        assert pair in message
    assert "fpn_type" not in message  # no mgrec counterpart: not named as if it had one


def test_a_config_changed_in_code_refuses_a_key_it_does_not_have_and_is_checked_before_it_is_saved(tmp_path):
    """In Python a typo'd attribute was kept aside and ignored, and `save_config` wrote a file `load_config` then
    refused; both now fail where the mistake is made, naming the key."""
    from mgrec.config import UnknownKey

    config = Config()
    with pytest.raises(UnknownKey, match=r"TrainConfig has no key 'epoch'; did you mean 'epochs'\?"):
        config.train.epoch = 3
    with pytest.raises(AttributeError):  # what any Python object without the attribute gives, too
        config.data.featurs = "f"
    config.train.lr = "fast"
    with pytest.raises(InputError, match=r"saved.yaml \[train.lr\]: expected float, got 'fast'"):
        save_config(config, tmp_path / "saved.yaml")
    assert not (tmp_path / "saved.yaml").exists()
    # a section set as a dict set every other key of it back to its default (batch_size, warm-up, ...)
    from mgrec.config import checked_config

    config = Config()
    config.train = {"epochs": 1}
    with pytest.raises(InputError, match=r"\[train\]: expected a TrainConfig, got dict; set its keys one by one"):
        checked_config(config)


def test_a_tilde_in_a_path_key_is_the_home_folder(tmp_path, monkeypatch):
    # `--set data.annotations=~/.cache/mgrec/demo/annotations.json`: the shell leaves that ~ alone (it is no word's
    # start), and the data check then said "~/.cache/...: annotations file not found"
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config("demo/default.yaml", ["data.annotations=~/demo/annotations.json", "data.features=~/feats",
                                               "pseudo_labels.unlabeled=~/pool"])
    assert config.data.annotations == str(tmp_path / "demo" / "annotations.json")
    assert config.data.features == str(tmp_path / "feats") and config.pseudo_labels.unlabeled == str(tmp_path / "pool")
    assert load_config("demo/default.yaml", ["data.features=a~b"]).data.features == "a~b"  # only a leading ~


def test_overrides_are_read_once_and_a_single_str_is_refused(tmp_path):
    """A generator of overrides was used up by the first of load_config's loops, a check: the override was then
    dropped without a word; a str was read as overrides of one character each ("override 't': expected key=value")."""
    path = write(tmp_path, "c.yaml", "train:\n  epochs: 5\n")
    assert load_config(path, (item for item in ["train.epochs=3"])).train.epochs == 3
    assert load_config(path, ("train.epochs=4",)).train.epochs == 4
    with pytest.raises(InputError, match=r"^overrides: expected a list of 'key=value' strings, got a str$"):
        load_config(path, "train.epochs=3")
    with pytest.raises(InputError, match=r"^overrides\[1\]: expected a 'key=value' string, got 3$"):
        load_config(path, ["train.epochs=3", 3])


def test_crop_transforms_that_make_meaningless_crops_or_never_apply_are_refused(tmp_path):
    """From an attack: a time-scale range of [1e-300, 1e300] (crops one step long, val F1 1.28), noise 1e20 times each
    channel's spread (F1 7.3), and paste context wider than a crop (instance paste never found room) trained without
    a word."""
    refused = {
        "transforms.time_scale_range=[1e-300, 1e300]": r"\[transforms.time_scale_range\]: expected \[low, high\] "
                                                      r"with 0.25 <= low <= high <= 4",
        "transforms.time_scale_range=[0.8, 5]": r"\[transforms.time_scale_range\]",
        "transforms.noise_std=1e20": r"\[transforms.noise_std\]: expected a number in \[0, 10\]",
        "transforms.paste_context=64": r"\[transforms.paste_context\]: 64 steps of context on each side of a pasted "
                                       r"instance leave no room in a crop of 128 steps; expected at most 63",
    }
    base = ["data.max_seq_len=128", "transforms.paste_prob=0.5"]
    for override, message in refused.items():
        with pytest.raises(InputError, match=message):
            load_config("demo/default.yaml", [*base, override])
    config = load_config("demo/default.yaml", [*base, "transforms.time_scale_range=[0.25, 4]",
                                               "transforms.noise_std=10", "transforms.paste_context=63"])
    assert config.transforms.paste_context == 63
    assert load_config("demo/default.yaml", ["transforms.paste_prob=0", "transforms.paste_context=1000"])



def test_a_source_tree_path_or_a_misspelt_base_names_the_shipped_config(tmp_path, monkeypatch):
    # README's `mgrec data check src/mgrec/configs/smg/mgrec.yaml` run outside the checkout (or with mgrec installed)
    # said only "shipped are demo/actionformer.yaml, ...", and `base: demo/defualt.yaml` in a config got no
    # "did you mean", where the same name given as the config argument did
    monkeypatch.chdir(tmp_path)
    for name in ("src/mgrec/configs/smg/mgrec.yaml", "../x/configs/smg/mgrec", "../x/configs/smg/mgrc.yaml"):
        with pytest.raises(InputError, match=rf"^cannot read config {re.escape(name)}: no such file, nor a config "
                                             r"shipped with mgrec by that name \(did you mean smg/mgrec.yaml"):
            load_config(name)
    write(tmp_path, "mine.yaml", "base: demo/defualt.yaml\n")
    with pytest.raises(InputError, match=r"mine.yaml \[base\]: 'demo/defualt.yaml' is neither a file beside it .* nor "
                                         r"a config shipped with mgrec \(did you mean demo/default.yaml"):
        load_config(tmp_path / "mine.yaml")
    write(tmp_path, "other.yaml", "base: missing.yaml\n")
    with pytest.raises(InputError, match=r"nor a config shipped with mgrec \(shipped are demo/actionformer.yaml, "
                                         r"demo/base.yaml, demo/default.yaml, \.\.\.\)$"):
        load_config(tmp_path / "other.yaml")


@pytest.mark.parametrize("number, digits", [("9" * 5000, 5000), ("-" + "9" * 4400, 4400), ("0x" + "f" * 5000, 5000)])
def test_a_whole_number_of_thousands_of_digits_is_a_yaml_error_naming_its_line(tmp_path, number, digits):
    # Python reads no more than 4300 decimal digits and prints none longer (a ValueError traceback from the loader,
    # or from the message quoting a 5000-digit hexadecimal number)
    path = write(tmp_path, "big.yaml", f"train:\n  epochs: {number}\n")
    with pytest.raises(InputError, match=rf"big.yaml:2:11: not valid YAML: a whole number of {digits} digits; "
                                         r"a setting has at most 19$"):
        load_config(path)
    with pytest.raises(InputError, match=r"\[train.epochs\]: expected int, got '9999.*'... \(5000 characters\)"):
        load_config(write(tmp_path, "c.yaml", "train:\n  epochs: 2\n"), ["train.epochs=" + "9" * 5000])


@pytest.mark.parametrize("key", ["train.batch_size", "train.epochs", "train.eval_every", "seed"])
def test_a_whole_number_beyond_64_bits_is_refused_by_key(tmp_path, key):
    # train.batch_size of 400 digits passed the positive-number rule and was an OverflowError traceback from the
    # memory estimate of `mgrec train`; train.epochs of 400 digits trained "forever"
    path = write(tmp_path, "c.yaml", "train:\n  epochs: 2\n")
    for number in ("9" * 400, str(2**63), "0x" + "f" * 999):
        with pytest.raises(InputError, match=rf"\[{key}\]: expected a whole number within \+-9223372036854775807 "
                                             r"\(a signed 64-bit integer; no setting is larger\), got \d+"):
            load_config(path, [f"{key}={number}"])
    config = load_config(path, [f"{key}={2**63 - 1}"])  # the largest is still read (refused later by its own rule)
    for part in key.split("."):
        config = getattr(config, part)
    assert config == 2**63 - 1


@pytest.mark.parametrize("text, key, said", [
    ("name: yes\n", "name", "got True: YAML reads the unquoted value as true/false (YAML reads yes, no, on, off and "
                            "true, false so); put it in quotes to keep it as written (key: '...')"),
    ("data:\n  test_split: no\n", "data.test_split", "got False: YAML reads the unquoted value as true/false (YAML "
                                                     "reads yes, no, on, off and true, false so); put it in quotes "
                                                     "to keep it as written (key: '...')"),
    ("train:\n  epochs: on\n", "train.epochs", "got True (YAML reads an unquoted yes, no, on, off, true or false as "
                                               "true)"),
    ("name: 2024-01-01\n", "name", "got 2024-01-01: YAML reads the unquoted value as a date; put it in quotes to "
                                   "keep it as written (key: '...')"),
])
def test_a_word_yaml_types_as_a_boolean_or_a_date_is_named_as_yaml_read_it(tmp_path, text, key, said):
    # `name: yes` was "expected str, got True": the user wrote neither True nor a boolean
    with pytest.raises(InputError, match=re.escape(f"c.yaml [{key}]: expected ") + r"\w+, .*" + re.escape(said) + "$"):
        load_config(write(tmp_path, "c.yaml", text))


def test_a_hash_in_a_set_value_is_part_of_the_value_not_a_yaml_comment(tmp_path):
    path = write(tmp_path, "c.yaml", "seed: 1\n")
    # YAML reads ' #' as a comment: the run was named 'run', the folder read 'feats', the name null, without a word
    config = load_config(path, ["name=run #3", "data.features=feats #2/x", "data.annotations=#1.json"])
    assert (config.name, config.data.features, config.data.annotations) == ("run #3", "feats #2/x", "#1.json")
    # a '#' inside a word or inside quotes was never a comment, and stays as it was read
    assert load_config(path, ["name=a#b"]).name == "a#b"
    assert load_config(path, ["name='x #y'"]).name == "x #y"
    # a number with a note after it is not a number: refused by key, showing the value as typed
    with pytest.raises(InputError, match=r"--set \[train.lr\]: expected float, got '3e-4 # my note'"):
        load_config(path, ["train.lr=3e-4 # my note"])


def test_a_text_key_takes_the_word_given_to_set_as_typed_and_a_file_says_to_quote_it(tmp_path):
    path = write(tmp_path, "c.yaml", "seed: 1\n")
    # YAML read these words as a date, numbers, a boolean, a mapping: refused as `expected str, got
    # datetime.date(2026, 12, 7)`, `got 777` (of 0777), `got True` (of on)
    config = load_config(path, ["data.features=2026-12-07", "name=0777", "data.train_split=2024",
                                "data.feature_prefix=01", "data.annotations=on", "backbone.adapter_blocks=3"])
    assert (config.data.features, config.name, config.data.train_split, config.data.feature_prefix,
            config.data.annotations) == ("2026-12-07", "0777", "2024", "01", "on")
    assert config.backbone.block_list() == (3,)
    assert load_config(path, ["name=ablation: no paste"]).name == "ablation: no paste"
    # other keys keep YAML 1.2's reading, and null stays null (refused for a text key that has no empty meaning)
    assert load_config(path, ["seed=0777"]).seed == 777
    with pytest.raises(InputError, match=r"--set \[seed\]: expected int"):
        load_config(path, ["seed=2026-12-07"])
    with pytest.raises(InputError, match=r"--set \[name\]: expected str, got null"):
        load_config(path, ["name=null"])
    # in a file the word is YAML's to read: refused saying how YAML read it and to quote it
    for text, shown, kind in (("data:\n  features: 2026-12-07\n", "2026-12-07", "a date"),
                              ("name: 0777\n", "777", "a number"), ("data:\n  train_split: no\n", "False", "true/")):
        with pytest.raises(InputError, match=rf"d.yaml \[(data\.)?\w+\]: expected str, got {shown}: YAML reads the "
                                             rf"unquoted value as {kind}.*put it in quotes"):
            load_config(write(tmp_path, "d.yaml", text))
    assert load_config(write(tmp_path, "q.yaml", "data:\n  features: '2026-12-07'\n")).data.features == "2026-12-07"


def test_a_quoted_set_value_yaml_cannot_read_is_refused_not_taken_with_its_quotes(tmp_path):
    path = write(tmp_path, "c.yaml", "seed: 1\n")
    # taken as the value, quotes and all: the annotations read from the file '"C:\data\a.json"', the run named '"run'
    for item, problem in (('data.annotations="C:\\data\\a.json"', "found unknown escape character 'd'"),
                          ('name="run', "found unexpected end of stream"),
                          ("name='it's'", "expected '<document start>'")):
        with pytest.raises(InputError, match=rf"^--set {re.escape(repr(item))}: its quoted value is not valid YAML "
                                             rf"\(.*{re.escape(problem)}.*\): quote the whole value once"):
            load_config(path, [item])
    # quoted as YAML reads it, or unquoted text YAML cannot read (a text key's own word), is taken as before
    config = load_config(path, ["data.annotations='C:\\data\\a.json'", "name='it''s'", "data.features=[a"])
    assert (config.data.annotations, config.name, config.data.features) == ("C:\\data\\a.json", "it's", "[a")


def test_a_set_key_the_model_variant_does_not_read_is_said_to_change_nothing(tmp_path):
    # `--set model.transformer_heads=8` on the mgrec variant (or attention_kernel on actionformer) trained exactly the
    # run without it, and nothing said so
    from mgrec.config import keys_the_variant_ignores

    path = write(tmp_path, "c.yaml", "model: {variant: mgrec, transformer_window: 9}\n")
    config = load_config(path, ["model.transformer_heads=8", "model.attention_kernel=9", "model.embed_dim=256"])
    assert keys_the_variant_ignores(config) == [
        ("--set model.transformer_heads=8 [model.transformer_heads]",
         "model.variant mgrec does not read it (only actionformer does): it changes nothing")]
    config = load_config(path, ["model.variant=actionformer", "model.mlp_dim=128", "model.transformer_heads=8"])
    assert keys_the_variant_ignores(config) == [
        ("--set model.mlp_dim=128 [model.mlp_dim]",
         "model.variant actionformer does not read it (only mgrec and dyfadet do): it changes nothing")]
    assert keys_the_variant_ignores(Config()) == []  # a config built in code: no --set


def test_a_wrong_value_set_in_code_is_named_with_its_python_type_not_explained_as_yaml():
    # before: `config.train.epochs = True` said "got True (YAML reads an unquoted yes, no, on, off, true or false as
    # true)" and `config.data.annotations = 5` "YAML reads the unquoted value as a number; put it in quotes to keep it
    # as written (key: '...')": no YAML had read either, and quotes in a YAML file were no way on for code
    import datetime

    from mgrec.config import checked_config

    cases = [
        ("train", "epochs", True, r"\[train.epochs\]: expected int, got True \(bool\)$"),
        ("train", "epochs", 2.5, r"\[train.epochs\]: expected int, got 2.5 \(float\)$"),
        ("train", "epochs", None, r"\[train.epochs\]: expected int, got None \(NoneType\)$"),
        ("train", "epochs", "5", r"\[train.epochs\]: expected int, got '5' \(str; a number in quotes is text: write it "
                                 r"without the quotes\)$"),
        ("train", "lr", False, r"\[train.lr\]: expected float, got False \(bool\)$"),
        ("data", "annotations", 5, r"\[data.annotations\]: expected str, got 5 \(int\)$"),
        ("data", "features", datetime.date(2024, 1, 1), r"\[data.features\]: expected str, got .*2024.* \(date\)$"),
    ]
    for section, key, value, said in cases:
        config = Config()
        setattr(getattr(config, section), key, value)
        with pytest.raises(InputError, match=r"^the config given " + said):
            checked_config(config)
    config = Config()
    config.train.epochs = 5.0  # a whole number, as a file's `epochs: 5.0` is read
    assert checked_config(config).train.epochs == 5
    # a file still gets its YAML reading explained
    with pytest.raises(InputError, match=r"\[train.epochs\]: expected int, got True \(YAML reads an unquoted yes"):
        load_config("demo/default.yaml", overrides=["train.epochs=yes"])
