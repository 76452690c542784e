"""The run directory module: names, validated readers, atomic writers, the lock and the commit point."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from mgrec.config import Config, save_config, to_dict
from mgrec.errors import InputError
from mgrec.run import CONFIG_KEYS_ADDED, RUN_FORMAT_VERSION, RunDir, load_into, read_weights_file, write_weights_file


def test_outputs_of_another_checkpoint_never_replace_those_of_best(tmp_path):
    run = RunDir(tmp_path)
    assert run.eval_path("test") != run.eval_path("test", "last")
    assert run.detections_path("test") != run.detections_path("test", "last")
    assert run.eval_path("test") not in run.run_files()
    with pytest.raises(InputError, match="expected one of best, last"):
        run.weights_path("../../x")


def test_a_split_names_output_files_inside_the_run_only(tmp_path):
    # `x/../postprocess` replaced the run's postprocess.json with detections, `x/../../victim` a file outside it
    run = RunDir(tmp_path)
    assert run.eval_path("Testing") == tmp_path / "eval_test.json"  # the annotations' names for a split
    for split in ("x/../postprocess", "x/../../victim", "..", "a\\b", ""):
        for path_of in (run.eval_path, run.detections_path, run.report_path):
            with pytest.raises(InputError, match="split"):
                path_of(split)


def test_the_lock_refuses_a_second_holder_and_is_free_again_afterwards(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        assert "pid" in run.lock_path.read_text()
        with pytest.raises(InputError, match="is in use by pid"):
            with RunDir(tmp_path / "run").lock():
                pass
    with run.lock():  # released by the first holder
        pass


def test_a_folder_refused_before_anything_was_written_keeps_no_lock_file(tmp_path):
    """`mgrec train --out FOLDER` refused a folder holding the user's own classes.json, and left `.lock` in it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "classes.json").write_text("{}")
    with pytest.raises(InputError, match="refused"):
        with RunDir(folder).lock():
            raise InputError("refused")
    assert sorted(p.name for p in folder.iterdir()) == ["classes.json"]
    # A process refused the lock leaves the holder's file, also where the holder made it after the refused one
    # looked (the holder has written no run.json yet): the refused one removed it.
    import mgrec.run as run_module

    real_open, holder = run_module.open_lock_file, RunDir(folder).lock()

    def holder_takes_it_meanwhile(path):
        run_module.open_lock_file = real_open
        holder.__enter__()
        return real_open(path)

    run_module.open_lock_file = holder_takes_it_meanwhile
    try:
        with pytest.raises(InputError, match="is in use"):
            with RunDir(folder).lock():
                pass
        assert RunDir(folder).lock_path.exists()
    finally:
        run_module.open_lock_file = real_open
        holder.__exit__(None, None, None)
    run = RunDir(tmp_path / "run")  # a run that wrote its format keeps its lock file (it says who held the run)
    with run.lock():
        run.write_format()
    assert run.lock_path.exists()


def test_a_fresh_start_refuses_a_committed_run_and_a_hand_written_config(tmp_path):
    run = RunDir(tmp_path / "run")
    run.check_fresh_start([])  # nothing there yet
    run.path.mkdir()
    save_config(Config(), run.config_path)  # the user's own config, not a run's
    with pytest.raises(InputError, match="was not written by mgrec train"):
        run.check_fresh_start([])
    with pytest.raises(InputError, match="one of the files training writes"):
        run.check_fresh_start([run.config_path])
    run.write_format()
    run.check_fresh_start([])  # an earlier start of mgrec that never committed an epoch
    run.checkpoints_dir.mkdir()
    torch.save({"epoch": 0}, run.state_path)
    with pytest.raises(InputError, match="pass --resume"):
        run.check_fresh_start([])


def test_a_fresh_start_refuses_a_run_json_that_is_not_mgrecs(tmp_path):
    run = RunDir(tmp_path / "features")
    run.path.mkdir()
    run.format_path.write_text(json.dumps({"fps": 30.0, "stride": 4}))  # the sidecar of a video named "run"
    with pytest.raises(InputError, match=r"run.json is not an mgrec run's .*\[format\]: expected a positive"):
        run.check_fresh_start([])
    assert json.loads(run.format_path.read_text()) == {"fps": 30.0, "stride": 4}


def test_training_refuses_an_out_that_is_a_folder_it_reads(tmp_path):
    from mgrec.config import DataConfig
    from mgrec.run import refuse_a_folder_training_reads

    config = Config(data=DataConfig(annotations=str(tmp_path / "a.json"), features=str(tmp_path / "features")))
    with pytest.raises(InputError, match=r"--out .*features is the folder of data.features, which training reads"):
        refuse_a_folder_training_reads(tmp_path / "features" / ".", config)
    refuse_a_folder_training_reads(tmp_path / "run", config)
    refuse_a_folder_training_reads(tmp_path / "features" / "run", config)  # a new folder inside it is fine


def test_weights_without_a_committed_state_do_not_block_a_fresh_start(tmp_path):
    # A kill between last.safetensors and last_state.pt of the first epoch: nothing to resume, and
    # a fresh start must be possible.
    run = RunDir(tmp_path)
    run.write_format()
    run.write_weights("last", nn.Linear(2, 2), None, {"epoch": 0})
    assert not run.can_resume() and not run.has_training()
    run.check_fresh_start([])


def test_a_fresh_start_refuses_an_ensemble_an_unfinished_one_and_the_results_of_a_model(tmp_path):
    # An ensemble has no last_state.pt: a fresh start took it for an empty folder and replaced its weights.
    ensemble = RunDir(tmp_path / "ensemble")
    ensemble.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    ensemble.write_format({"members": 2, "sources": ["r1", "r2"]})
    with pytest.raises(InputError, match=r"ensemble already holds an ensemble of 2 run\(s\) made by mgrec ensemble, "
                                         r"which training would replace .*; choose another --out"):
        ensemble.check_fresh_start([])
    unfinished = RunDir(tmp_path / "unfinished")  # killed while copying its members, before run.json
    (unfinished.member_path(0)).mkdir(parents=True)
    with pytest.raises(InputError, match=r"already holds members/ of an mgrec ensemble that did not finish"):
        unfinished.check_fresh_start([])
    evaluated = RunDir(tmp_path / "evaluated")  # a run's scores, its training state deleted
    evaluated.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    evaluated.write_eval("test", {"f1": 0.5})
    with pytest.raises(InputError, match=r"already holds eval_test.json, results of mgrec evaluate or report of a "
                                         r"model that a new training would replace; choose another --out$"):
        evaluated.check_fresh_start([])


def test_only_a_run_directory_or_an_empty_folder_is_deleted(tmp_path, monkeypatch):
    from mgrec.run import check_removable, remove_run_dir

    run = RunDir(tmp_path / "run")  # a finished run, with its scores, TensorBoard log and figures
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    run.write_eval("test", {"f1": 0.5})
    for folder in ("tensorboard", "analysis"):
        (run.path / folder).mkdir()
    remove_run_dir(run.path)
    assert not run.path.exists()
    (tmp_path / "empty").mkdir()
    remove_run_dir(tmp_path / "empty")
    remove_run_dir(tmp_path / "nothing")  # nothing there: nothing to do
    assert not (tmp_path / "empty").exists()

    mine = tmp_path / "mine"  # the user's own folder
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(InputError, match=r"--fresh: .*mine was not deleted: it holds 'notes.txt' and 1 more, which "
                                         r"mgrec never writes into a run; .* choose another --out"):
        remove_run_dir(mine)
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    (run.path / "notes.txt").write_text("mine")  # a run holding a file of the user's
    with pytest.raises(InputError, match="it holds 'notes.txt', which mgrec never writes into a run"):
        remove_run_dir(run.path)
    (run.path / "notes.txt").unlink()
    (run.path / "analysis").mkdir()  # inside the folders mgrec makes in a run, too
    (run.path / "analysis" / "test_pr.png").write_bytes(b"png")
    (run.path / "analysis" / "my_notes.md").write_text("mine")
    with pytest.raises(InputError, match="it holds 'analysis/my_notes.md', which mgrec never writes into a run"):
        remove_run_dir(run.path)
    (run.path / "analysis" / "my_notes.md").unlink()
    look_alike = tmp_path / "look-alike"  # a run's names without run.json: not a run of mgrec's
    (look_alike / "checkpoints").mkdir(parents=True)
    save_config(Config(), look_alike / "config.yaml")
    with pytest.raises(InputError, match="holds 'c.*' but no run.json, so it is not an mgrec run directory"):
        remove_run_dir(look_alike)
    RunDir(look_alike).format_path.write_text(json.dumps({"fps": 30.0}))  # the sidecar of a video named "run"
    with pytest.raises(InputError, match=r"its run.json is not an mgrec run's .*\[format\]"):
        remove_run_dir(look_alike)
    (tmp_path / "link").symlink_to(run.path)
    with pytest.raises(InputError, match="link was not deleted: it is a symbolic link"):
        remove_run_dir(tmp_path / "link")
    with pytest.raises(InputError, match="it is a file, not a run directory"):
        remove_run_dir(run.config_path)
    with pytest.raises(InputError, match=r"run was not deleted: it holds .*cache, the demo data"):
        check_removable(run.path, keep=[("the demo data", run.path / "sub" / "cache")])
    with pytest.raises(InputError, match="run was not deleted: it is the demo data"):
        check_removable(run.path, keep=[("the demo data", run.path)])
    monkeypatch.chdir(run.checkpoints_dir)
    with pytest.raises(InputError, match=r"run was not deleted: it holds .*checkpoints, the working directory"):
        remove_run_dir(run.path)
    monkeypatch.chdir(run.path)
    with pytest.raises(InputError, match=r"--fresh: \. was not deleted: it is the working directory"):
        remove_run_dir(".")
    assert (mine / "notes.txt").read_text() == "mine" and run.weights_path("best").exists()
    assert (look_alike / "config.yaml").exists() and (tmp_path / "link").is_symlink()


def test_a_metrics_line_stopped_by_a_full_disk_is_taken_back_and_said_in_one_line(tmp_path):
    # open("a").write() left the part of the line a full disk or `ulimit -f` let through (every reader of the log then
    # refused it as not JSON), and training stopped on a raw OSError traceback
    import subprocess
    import sys

    run = RunDir(tmp_path)
    run.append_metrics({"kind": "train", "epoch": 0, "loss": 1.0})
    first = run.metrics_path.read_bytes()
    code = ("import resource, sys\nfrom mgrec.errors import InputError\nfrom mgrec.run import RunDir\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(first) + 20}, resource.RLIM_INFINITY))\n"
            "try:\n    RunDir(sys.argv[1]).append_metrics({'kind': 'train', 'epoch': 1, 'loss': 0.5, 'lr': 0.1})\n"
            "except InputError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == f"cannot write {run.metrics_path}: File too large", done.stdout + done.stderr
    assert run.metrics_path.read_bytes() == first  # the cut line taken back
    assert [record["epoch"] for record in run.read_metrics()] == [0]


def test_a_lock_that_cannot_be_written_is_one_line_and_leaves_no_folder(tmp_path):
    # the holder's line, buffered, failed at its flush on a full disk (here `ulimit -f 0`) and again when the handle was
    # closed: a raw OSError traceback of `mgrec ensemble`, with OUT/.lock and the folder made for it left behind
    import subprocess
    import sys

    code = ("import resource, sys\nfrom pathlib import Path\nfrom mgrec.errors import InputError\n"
            "from mgrec.run import RunDir, hold_label_folder, lock_features_folder\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))\n"
            "for hold in (RunDir(sys.argv[1]).lock, lambda: hold_label_folder(sys.argv[2]),\n"
            "             lambda: lock_features_folder(Path(sys.argv[3]))):\n"
            "    try:\n        with hold():\n            print('held')\n"
            "    except InputError as exc:\n        print(exc)\n")
    folders = [tmp_path / name for name in ("run", "labels", "features")]
    done = subprocess.run([sys.executable, "-c", code, *map(str, folders)], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.splitlines() == [f"cannot write {folders[0] / '.lock'}: File too large",
                                        f"cannot write {folders[1] / '.mgrec-labels.lock'}: File too large",
                                        f"cannot write {folders[2] / '.mgrec-extract.lock'}: File too large"], \
        done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []


def test_metrics_log_is_strict_json_and_an_incomplete_last_line_is_dropped_on_resume(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"kind": "train", "epoch": 0, "loss": math.nan})
    run.append_metrics({"kind": "train", "epoch": 1, "loss": 1.0})
    assert json.loads(run.metrics_path.read_text().splitlines()[0])["loss"] is None
    with open(run.metrics_path, "a") as handle:
        handle.write('{"kind": "train", "ep')  # killed mid-line
    with pytest.raises(InputError, match=r"metrics.jsonl:3:\d+: metrics log file is not valid JSON"):
        run.read_metrics()
    run.keep_metrics_before(1)
    assert [r["epoch"] for r in run.read_metrics()] == [0]
    # values of the wrong kind were tracebacks in the report, or a string plotted as a category
    for line, problem in [('{"kind": "train", "epoch": 1, "loss": {"a": 1}}', r"\[loss\]: expected a finite number"),
                          ('{"kind": "val", "epoch": 1, "f1": "0.5"}', r"\[f1\]: expected a finite number"),
                          ('{"kind": "balance", "epoch": 1, "crop_shares": ["x", null]}',
                           r"\[crop_shares\]: expected a list of finite numbers or nulls")]:
        run.metrics_path.write_text('{"kind": "train", "epoch": 0, "loss": 1.0}\n' + line + "\n")
        with pytest.raises(InputError, match=r"metrics.jsonl:2 " + problem):
            run.read_metrics()
    run.metrics_path.write_text('{"kind": "balance", "epoch": 0, "crop_shares": [0.5, null]}\n')  # null: a gap
    assert run.read_metrics()[0]["crop_shares"] == [0.5, None]


def test_the_metrics_log_is_read_by_the_json_reader_of_every_other_file(tmp_path):
    """metrics.jsonl was parsed by json.loads alone: a 5000-digit number (Python's 4300-digit limit) and nesting past
    the recursion limit were raw tracebacks in `report` (ValueError, RecursionError), a UTF-8 byte-order mark (an editor
    on Windows) "metrics.jsonl:1: not a JSON object", a key twice silently the second value."""
    run = RunDir(tmp_path)
    good = '{"kind": "train", "epoch": 0, "loss": 1.0}\n'
    for line, problem in (('{"kind": "train", "epoch": 1, "step": ' + "9" * 5000 + "}",
                           "metrics log file holds a number no reader takes"),
                          ('{"kind": "train", "epoch": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                           "metrics log file nests JSON too deeply"),
                          ('{"kind": "train", "epoch": 1, "loss": 1.0, "loss": 5.0}', "key 'loss' appears twice")):
        run.metrics_path.write_text(good + line + "\n")
        with pytest.raises(InputError, match=rf"metrics.jsonl:2: {problem}"):  # what report and --resume read
            run.read_metrics()
    run.metrics_path.write_bytes(b"\xef\xbb\xbf" + good.encode())
    assert run.read_metrics() == [{"kind": "train", "epoch": 0, "loss": 1.0}]
    # --resume still drops a last line cut short, whatever the reader says of it
    run.metrics_path.write_text(good + '{"kind": "train", "epoch": 1, "step": ' + "9" * 5000)
    assert run.read_metrics(drop_incomplete_last_line=True) == [{"kind": "train", "epoch": 0, "loss": 1.0}]


def test_logged_values_out_of_their_range_are_refused_naming_line_and_key(tmp_path):
    # a val F1 of 1e308 or -3, a negative loss, crop shares above 1, epoch `true` (read as 1) or -1 (a hand edit,
    # another tool's log): plotted in the report as the run's curves without a word
    run = RunDir(tmp_path)
    good = '{"kind": "train", "epoch": 0, "loss": 1.0}\n'
    epoch_rule = r"expected a JSON object with 'kind' and an integer 'epoch' >= 0"
    for line, problem in (('{"kind": "val", "epoch": 1, "f1": 1e308}', r"\[f1\]: expected a finite number in \[0, 1\]"),
                          ('{"kind": "val", "epoch": 1, "average_mAP": -3}', r"\[average_mAP\]: .* in \[0, 1\]"),
                          ('{"kind": "train", "epoch": 1, "loss": -0.5}', r"\[loss\]: expected a finite number >= 0"),
                          ('{"kind": "balance", "epoch": 1, "crop_shares": [0.5, 1.5]}',
                           r"\[crop_shares\]: expected a list of finite numbers in \[0, 1\] or nulls"),
                          ('{"kind": "balance", "epoch": 1, "class_weights": [1.0, -2.0]}',
                           r"\[class_weights\]: .* >= 0"),
                          ('{"kind": "val", "epoch": true, "f1": 0.5}', epoch_rule),
                          ('{"kind": "val", "epoch": -1, "f1": 0.5}', epoch_rule)):
        run.metrics_path.write_text(good + line + "\n")
        with pytest.raises(InputError, match=rf"metrics.jsonl:2:? {problem}"):
            run.read_metrics()
    # what training writes: the MiGA rule's F1 may pass 1, a value that was not finite is logged as null
    run.metrics_path.write_text(good + '{"kind": "val", "epoch": 0, "f1": 1.0, "f1_miga": 1.25, "recall": null, '
                                '"score_threshold": 0.4, "class_thresholds": [0.1, 0.9]}\n')
    assert run.read_metrics()[1]["f1_miga"] == 1.25


def test_weights_with_nan_are_refused_and_dtypes_must_match(tmp_path):
    model = nn.Linear(3, 2)
    path = tmp_path / "w.safetensors"
    write_weights_file(path, model, None, {"epoch": 0})
    state, meta = read_weights_file(path)
    assert meta["run_format"] == RUN_FORMAT_VERSION
    load_into(nn.Linear(3, 2), state, path)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    write_weights_file(path, model, None, {"epoch": 0})
    with pytest.raises(InputError, match="NaN or infinite"):
        read_weights_file(path)
    with pytest.raises(InputError, match="other dtypes"):
        load_into(nn.Linear(3, 2), {k: v.double() for k, v in nn.Linear(3, 2).state_dict().items()}, path)


def test_weights_metadata_that_is_not_json_is_named_in_one_line(tmp_path):
    # metadata nested past Python's recursion limit (a hand-made or damaged file) was a raw RecursionError traceback
    # of evaluate, detect and stream
    from safetensors.torch import save_file

    path = tmp_path / "best.safetensors"
    tensors = {"weight": torch.zeros(2)}
    for text, words in (("[" * 100000 + "]" * 100000, "nests JSON too deeply"), ("{", "is not valid JSON"),
                        ("9" * 5000, "is not valid JSON"), ("[1]", "is not a JSON object")):
        save_file(tensors, str(path), metadata={"mgrec": text})
        with pytest.raises(InputError, match=rf"^checkpoint {re.escape(str(path))}: its 'mgrec' metadata {words}"):
            read_weights_file(path)


def test_weights_metadata_of_another_kind_is_refused_naming_the_key(tmp_path):
    # each was read as is: an epoch of "9", 9.0 or NaN, or a config of "x", skipped the checks that the weights are
    # those postprocess.json selected and were trained with the run's network settings (detect ran, exit 0)
    from safetensors.torch import save_file

    path = tmp_path / "best.safetensors"
    config = to_dict(Config())
    config["train"]["epochs"] = 15
    good = {"epoch": 9, "f1": 0.7, "f1_miga": 0.7, "average_mAP": 0.5, "score_threshold": 0.45, "config": config}
    write_weights_file(path, nn.Linear(2, 1), None, good)
    assert read_weights_file(path)[1]["epoch"] == 9
    for key, value, expected in (
            ("epoch", "9", "the epoch the weights are of"), ("epoch", 9.0, "the epoch"), ("epoch", True, "the epoch"),
            ("epoch", -1, "the epoch"), ("epoch", None, "the epoch"), ("epoch", math.nan, "the epoch"),
            ("epoch", 10**30, "an epoch below the 15 its config's train.epochs trains"),
            ("config", "x", "the config the weights were trained with"), ("config", [1], "the config"),
            ("config", None, "the config"), ("score_threshold", "0.45", "the val threshold"),
            ("score_threshold", math.nan, "the val threshold"), ("score_threshold", True, "the val threshold"),
            ("score_threshold", -3.0, "the val threshold"), ("f1", "x", "a finite number or null"),
            ("f1", 2.0, "a finite number in \\[0, 1\\]"), ("run_format", "x", "a positive integer"),
            ("ensemble_of", "ab", "a list of the member runs' paths"), ("kind", 5, "a name")):
        save_file({"weight": torch.zeros(2)}, str(path), metadata={"mgrec": json.dumps({**good, key: value})})
        with pytest.raises(InputError, match=rf"^checkpoint {re.escape(str(path))}: its 'mgrec' metadata \[{key}\]: "
                                             rf"expected {expected}"):
            read_weights_file(path)


def test_upgrade_runs_before_the_key_check(tmp_path):
    state = {"old_weight": torch.zeros(2, 3), "bias": torch.zeros(2)}
    model = nn.Linear(3, 2)
    load_into(model, state, tmp_path, upgrade=lambda s: {k.replace("old_", ""): v for k, v in s.items()})
    assert torch.equal(model.weight, torch.zeros(2, 3))


def test_run_format_versions(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_format_version() == 1  # runs written before run.json existed
    run.write_format()
    assert run.read_format_version() == RUN_FORMAT_VERSION
    run.format_path.write_text(json.dumps({"format": RUN_FORMAT_VERSION + 1}))
    with pytest.raises(InputError, match="upgrade mgrec"):
        run.read_format_version()


def test_a_run_config_missing_a_key_is_refused_as_damage_from_format_3(tmp_path):
    run = RunDir(tmp_path)
    run.write_format()
    run.write_config(Config())
    assert run.read_config() == Config()
    text = run.config_path.read_text()
    run.config_path.write_text(text[: text.index("transforms:")])  # cut at a line: still valid YAML
    with pytest.raises(InputError, match=r"config.yaml: \d+ key\(s\) missing \(transforms, pseudo_labels, "
                                         r"postprocess, \.\.\.\); training writes every key"):
        run.read_config()
    # format 3 wrote no pseudo_labels section: its defaults apply
    run.format_path.write_text(json.dumps({"format": 3}))
    run.config_path.write_text(text[: text.index("pseudo_labels:")] + text[text.index("postprocess:"):])
    assert run.read_config() == Config()
    # format 2 wrote data.augment_alpha and train.input_noise, and no balance or transforms sections
    run.format_path.write_text(json.dumps({"format": 2}))
    run.config_path.write_text(text[: text.index("balance:")].replace("  feature_ext:", "  augment_alpha: 160\n"
                                                                      "  feature_ext:"))
    config = run.read_config()
    assert (config.balance.method, config.balance.alpha) == ("eq1", 160)


# The config keys each run format wrote, recorded when the format was made (dotted, sections that are
# empty mappings or None count as one key). A run of format v lacks exactly the keys added after v.
RECORDED_KEYS = json.loads((Path(__file__).parent / "run_format_config_keys.json").read_text())


def config_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys |= config_keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def test_a_new_config_key_comes_with_a_new_run_format():
    """Adding a config key without a format of its own would make every older run unreadable (its
    config.yaml would be refused as damaged). Today's keys must be the current format's record, and
    each key an older format lacks must be listed in CONFIG_KEYS_ADDED after that format."""
    today = config_keys(to_dict(Config()))
    assert str(RUN_FORMAT_VERSION) in RECORDED_KEYS, (
        f"record format {RUN_FORMAT_VERSION}'s config keys in tests/run_format_config_keys.json")
    assert today == set(RECORDED_KEYS[str(RUN_FORMAT_VERSION)]), (
        "the config's keys changed: bump RUN_FORMAT_VERSION, list the new keys in CONFIG_KEYS_ADDED and record "
        f"the new key set; added {sorted(today - set(RECORDED_KEYS[str(RUN_FORMAT_VERSION)]))}")
    for version, keys in RECORDED_KEYS.items():
        added_later = [k for v, added in CONFIG_KEYS_ADDED.items() if v > int(version) for k in added]
        unlisted = [key for key in sorted(today - set(keys))
                    if not any(key == k or key.startswith(k + ".") for k in added_later)]
        assert not unlisted, f"format {version} lacks {unlisted}, which CONFIG_KEYS_ADDED does not list"


@pytest.mark.parametrize("version", sorted(int(v) for v in RECORDED_KEYS))
def test_a_run_of_each_recorded_format_reads_back_with_defaults_for_later_keys(tmp_path, version):
    """A config.yaml holding exactly the keys format `version` wrote (today's defaults as values)."""
    def keep(tree: dict, prefix: str = "") -> dict:
        kept = {}
        for key, value in tree.items():
            name = prefix + key
            if isinstance(value, dict) and value:
                inner = keep(value, name + ".")
                if inner:
                    kept[key] = inner
            elif name in RECORDED_KEYS[str(version)]:
                kept[key] = value
        return kept

    run = RunDir(tmp_path)
    run.format_path.write_text(json.dumps({"format": version}))
    run.config_path.write_text(yaml.safe_dump(keep(to_dict(Config())), sort_keys=False))
    assert run.read_config() == Config()


def test_tuned_threshold_must_be_a_probability(tmp_path):
    run = RunDir(tmp_path)
    config = Config()
    assert run.read_postprocess(config) == config.postprocess  # nothing tuned
    run.write_tuning({"score_threshold": 0.25, "tuned_on": "val"})
    assert run.read_postprocess(config).score_threshold == 0.25
    run.write_tuning({"score_threshold": 7})
    with pytest.raises(InputError, match=r"postprocess.json \[score_threshold\]"):
        run.read_postprocess(config)


def test_the_split_and_epoch_of_the_tuning_of_another_kind_are_refused_naming_the_key(tmp_path):
    # `tuned_on: 5` (or a list, or "") was read as no split: `detect` called the tuned threshold "the F1 threshold
    # from the config"; `selected_epoch: "x"` skipped the check that the best weights are the epoch the threshold was
    # tuned on, and the report printed "selected epoch x"
    run = RunDir(tmp_path)
    config = Config()
    for key, value in (("tuned_on", 5), ("tuned_on", ["val"]), ("tuned_on", ""), ("selected_epoch", "x"),
                       ("selected_epoch", 14.0), ("selected_epoch", True), ("selected_epoch", -5)):
        run.write_tuning({"score_threshold": 0.25, "tuned_on": "val", "selected_epoch": 3, key: value})
        expected = rf"postprocess.json \[{key}\]: expected .*; got {re.escape(repr(value))}$"
        with pytest.raises(InputError, match=expected):
            run.read_postprocess(config)
    for tuned_on, epoch in (("val", 0), (None, None)):  # a trained run's, and an ensemble's without a val split
        run.write_tuning({"score_threshold": 0.25, "tuned_on": tuned_on, "selected_epoch": epoch})
        assert run.read_tuning()["tuned_on"] == tuned_on and run.read_tuning()["selected_epoch"] == epoch


def test_the_settings_a_threshold_was_tuned_with_are_checked_by_the_config_rule(tmp_path):
    # a NaN, Infinity or "0.5" among them was only shown in the note that config.yaml differs from them, and detect
    # ran (exit 0): the file is damaged, not the config changed
    run = RunDir(tmp_path)
    config = Config()
    run.write_selection(config, 0.25, None, 3, "val")
    assert run.read_postprocess(config).score_threshold == 0.25
    tuned = json.loads(run.postprocess_path.read_text())
    for key, value, expected in (
            ("nms", math.nan, "a str"), ("nms", "nms", "one of soft, hard"), ("thresholds", 5, "a str"),
            ("iou_threshold", math.inf, "a finite number"), ("sigma", "0.5", "a finite number"),
            ("pre_nms_thresh", math.nan, "a finite number"), ("max_detections", True, "a whole number"),
            ("max_detections", 500.5, "a whole number"), ("pre_nms_topk", -1, "a positive number"),
            ("min_score", -1, r"a number in \[0, 1\)"), ("shifted_passes", 10**30, "a number of passes"),
            ("threshold_shrinkage", -math.inf, "a finite number")):
        run.postprocess_path.write_text(json.dumps({**tuned, key: value}))
        with pytest.raises(InputError, match=rf"postprocess.json \[{key}\]: expected {expected}.*, got "
                                             rf"{re.escape(repr(value))} \(a setting the threshold was tuned with\)"):
            run.read_postprocess(config)
    del tuned["sigma"]  # a key a run of an older format did not record: not checked, not refused
    run.postprocess_path.write_text(json.dumps(tuned))
    assert run.read_postprocess(config).score_threshold == 0.25


def test_a_writer_removes_what_a_killed_writer_of_the_same_file_left(tmp_path):
    from mgrec.files import atomic_write_text

    target = tmp_path / "detections.json"
    dead = tmp_path / ".detections.json.999999999.abc123.tmp"  # no process has this pid
    dead.write_text("half")
    alive = tmp_path / f".detections.json.{os.getpid()}.def456.tmp"  # a writer still at work
    alive.write_text("half")
    other = tmp_path / ".other.json.999999999.x.tmp"  # another file's: not ours to judge
    other.write_text("half")
    atomic_write_text(target, "{}")
    assert target.read_text() == "{}" and not dead.exists() and alive.exists() and other.exists()


def test_a_class_listed_twice_is_refused(tmp_path):
    run = RunDir(tmp_path)
    run.write_classes(["a", "a", "b"])
    with pytest.raises(InputError, match="class 'a' is listed twice"):
        run.read_classes()


def test_a_class_name_the_annotations_would_refuse_is_refused_naming_classes_json(tmp_path):
    # An empty, blank or 300-character name in a run's classes.json, or two spellings of one name: `detect` was refused
    # by the detector built from the list as `classes[0]: class name '' ...`, naming no file; `report` blamed the
    # annotations ("the run's classes differ from those of annotations.json")
    run = RunDir(tmp_path)
    for classes, index, expected in ((["", "b"], 0, "class name '' (0 characters): expected a name of 1 to 200"),
                                     (["a", "  "], 1, "class name '  ' (2 characters)"),
                                     (["a", "x" * 300], 1, "expected a name of 1 to 200 characters"),
                                     (["PEN", "PEN\u00ad"], 1, "are one name to a reader"),
                                     (["a", "b", "a"], 2, "class 'a' is listed twice")):
        run.write_classes(classes)
        with pytest.raises(InputError, match=rf"classes.json \[{index}\]: .*{re.escape(expected)}"):
            run.read_classes()


def test_no_output_is_written_among_the_members_of_a_detection_level_ensemble(tmp_path):
    # `ensemble A B --out FUSED/members/2` (or `train`, `detect --format smg`, `extract` there) wrote beside the
    # members, and every later use of FUSED was refused: "[ensemble.members]: 2, but FUSED/members holds '0', '1', '2'
    # ...; make the ensemble again"
    from mgrec.files import check_output
    from mgrec.run import new_ensemble_dir

    fused = RunDir(tmp_path / "fused")
    for member in (0, 1):
        RunDir(fused.member_path(member)).path.mkdir(parents=True)
        RunDir(fused.member_path(member)).write_format()
    fused.write_format({"members": 2, "sources": ["a", "b"], "fusion": "detections", "pseudo_labelled": []})
    members = fused.member_path(0).parent
    refused = r"would be written into .*fused/members, which holds the 2 members of the ensemble .*fused alone"
    for out in (members / "2", members / "x.json", members):
        with pytest.raises(InputError, match=rf"--out {re.escape(str(out))} {refused}"):
            check_output(out)
    with pytest.raises(InputError, match=refused):
        new_ensemble_dir(members / "2", [fused.member_path(0)])
    with pytest.raises(InputError, match=refused):
        RunDir(members / "x").check_fresh_start([])
    assert sorted(p.name for p in members.iterdir()) == ["0", "1"] and fused.read_ensemble()["members"] == 2
    check_output(fused.member_path(0) / "detections.json")  # inside a member: that run's own rules
    check_output(fused.path / "report.html")


def test_no_output_takes_the_name_of_a_run_output_not_written_yet(tmp_path):
    # `export RUN --out RUN/eval_val.onnx` wrote its record to RUN/eval_val.json (and `detect --out
    # RUN/detections_val.json` its results), which `evaluate RUN --split val` then replaced without a word: only the
    # outputs written already were protected
    from mgrec.files import check_output

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_format()
    for name in ("eval_val.json", "detections_val_last.json", "online_test.json", "report_val.html"):
        with pytest.raises(InputError, match=rf"would overwrite .*run/{name} \(it belongs to a trained run\)"):
            check_output(run.path / name)
    with pytest.raises(InputError, match="would overwrite .*run/eval_val.json"):
        check_output(run.path / "sub" / ".." / "eval_val.json")
    check_output(run.path / "report_val.html", replaces=[run.path / "report_val.html"])  # report's own
    for fine in ("net.json", "eval_val.onnx", "analysis.json"):
        check_output(run.path / fine)
    check_output(tmp_path / "eval_val.json")  # outside any run


def test_scores_recording_another_split_or_checkpoint_than_their_file_are_refused(tmp_path):
    # eval_val.json (or eval_test_last.json) copied over eval_test.json: `report` and `compare` showed the val split's
    # scores, or the last checkpoint's, as the test split's of the best, though the file records which they are
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a")]}
    scores = score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, ["a", "b"], 0.5, split="test")
    for edit, key in (({"split": "val"}, "split"), ({"checkpoint": "last"}, "checkpoint")):
        run.write_eval("test", {**scores, "checkpoint": "best", **edit})
        with pytest.raises(InputError, match=rf"eval_test.json \[{key}\]: the scores of {key} "
                                             rf"'{list(edit.values())[0]}', in the file of {key} '(test|best)'"):
            run.read_eval("test", ["a", "b"])
    for edit in ({"split": "Testing"}, {"split": None}, {}):  # another spelling of the split, or none recorded
        run.write_eval("test", {**scores, "checkpoint": "best", **edit})
        assert run.read_eval("test", ["a", "b"])["f1"] == pytest.approx(1.0)
    run.write_eval("test", {**scores, "checkpoint": "last"}, checkpoint="last")
    assert run.read_eval("test", ["a", "b"], checkpoint="last")["checkpoint"] == "last"


def test_scores_with_no_precision_or_recall_to_give_are_read(tmp_path):
    # `score` gives no recall for a class without instances and no precision for one without detections (null, not
    # 0.00): `report` and `compare` read such files, and still refuse a null where there is a number to give
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a"), Segment("v", 4.0, 6.0, 1, "b")]}
    scores = score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9), Detection("v", 8.0, 9.0, 2, "c", 0.9)]},
                   ["a", "b", "c"], 0.5, split="test")
    assert scores["per_class"]["b"]["precision"] is None and scores["per_class"]["c"]["recall"] is None
    run.write_eval("test", {**scores, "checkpoint": "best"})
    assert run.read_eval("test", ["a", "b", "c"])["per_class"] == scores["per_class"]
    for name, key in (("a", "precision"), ("a", "recall"), ("b", "recall")):
        edited = json.loads(json.dumps(scores))
        edited["per_class"][name][key] = None
        run.write_eval("test", {**edited, "checkpoint": "best"})
        with pytest.raises(InputError, match=rf"eval_test.json \[per_class.{name}\]: expected label_id in "):
            run.read_eval("test", ["a", "b", "c"])


def test_the_next_commands_quote_a_run_directory_for_the_shell():
    from mgrec.run import next_commands

    assert next_commands("runs/a") == "next: mgrec evaluate runs/a (test scores), then mgrec report runs/a"
    assert next_commands("my runs/a") == "next: mgrec evaluate 'my runs/a' (test scores), then mgrec report 'my runs/a'"
    # a test split without videos: the val split's scores, where there is one (else the plain line)
    assert next_commands("runs/a", empty_test="test", val_split="val") == (
        "next: mgrec evaluate runs/a --split val (val scores: the test split 'test' has no videos), "
        "then mgrec report runs/a --split val")
    assert next_commands("runs/a", empty_test="test") == next_commands("runs/a")


def test_the_folder_of_a_training_still_running_is_not_deleted(tmp_path):
    from mgrec.run import remove_run_dir

    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    with run.lock():  # a training holds the run (the OS lock of another open file: as another process)
        with pytest.raises(InputError, match=r"--fresh: .*run was not deleted: it is in use by pid \d+ on "):
            remove_run_dir(run.path)
        assert run.config_path.exists()
    remove_run_dir(run.path)  # released: deleted
    assert not run.path.exists()


def killed_config_run(tmp_path):
    """A run folder whose config.yaml went missing."""
    run = RunDir(tmp_path / "lockless")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    run.config_path.unlink()
    return run


def test_a_run_still_written_or_stopped_before_its_end_is_not_used_for_detection(tmp_path):
    # evaluate / detect / stream / report read best weights of some epoch with the config's threshold from a
    # training still running or killed (and their outputs then stayed beside the finished run)
    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))  # imported weights: no training, usable
    run.require_finished()
    with run.lock():  # a training holds it
        with pytest.raises(InputError, match=r"run is in use by pid \d+ on .*; wait for it to finish$"):
            run.require_finished()
    run.write_training_state({"epoch": 3})  # stopped after an epoch, before postprocess.json
    with pytest.raises(InputError, match=r"run is a training that did not finish \(no postprocess.json, which its "
                                         r"last epoch writes\): finish it with mgrec train .*config.yaml --out .*run "
                                         r"--resume$"):
        run.require_finished()
    run.write_tuning({"score_threshold": 0.4, "tuned_on": "val"})
    run.require_finished()

    ensemble = RunDir(tmp_path / "ensemble")  # killed while tuning on val
    ensemble.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    ensemble.write_format({"members": 2, "sources": ["a", "b"]})
    with pytest.raises(InputError, match=r"ensemble is an ensemble that did not finish \(stopped while tuning its "
                                         r"score threshold on val: no postprocess.json\); make it again"):
        ensemble.require_finished()
    copying = RunDir(tmp_path / "copying")  # a detection-level ensemble killed while copying its members
    (copying.member_path(0) / "checkpoints").mkdir(parents=True)
    for read in (copying.require_finished, copying.read_config):
        with pytest.raises(InputError, match=r"copying is an ensemble that did not finish \(stopped while copying its "
                                             r"members into members/: no run.json\); make it again"):
            read()
    # inside the lock (a --resume whose config went missing), the config is named, not the process's own lock
    lockless = killed_config_run(tmp_path)
    with lockless.lock():
        with pytest.raises(InputError, match=r"config.yaml: not found; expected the run's config"):
            lockless.read_config()
    # an edited ensemble record is named, not an AttributeError in the report
    edited = RunDir(tmp_path / "edited")
    edited.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    edited.write_format({"members": 2, "sources": ["a", "b"], "pseudo_labelled": "x"})
    with pytest.raises(InputError, match=r"\[ensemble.pseudo_labelled\]: expected a list of"):
        edited.read_ensemble()
    # the report of a killed training says so (it sent the user to mgrec evaluate, which refuses the run)
    from mgrec.report.html import load_run

    killed = RunDir(tmp_path / "killed")
    killed.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    killed.write_training_state({"epoch": 3})
    with pytest.raises(InputError, match=r"killed is a training that did not finish"):
        load_run(killed.path)


def test_loaders_share_a_run_and_a_file_system_without_locks_refuses_nothing(tmp_path, monkeypatch):
    import errno
    import fcntl

    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    with run.lock():
        pass  # a finished training leaves its .lock (and a copy of the run carries it)
    with open(run.lock_path, encoding="utf-8") as other_loader:  # loaders probe with a shared lock
        fcntl.flock(other_loader, fcntl.LOCK_SH | fcntl.LOCK_NB)
        run.require_finished()  # two detect jobs at once: neither refuses the other

    def no_locks_here(handle, operation):  # NFS refuses an exclusive lock on a read-only file; FUSE has none
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", no_locks_here)
    run.require_finished()  # not "in use by" the long-dead trainer named in the copied .lock


def test_a_lock_file_that_is_a_link_is_refused_and_what_it_names_is_untouched(tmp_path):
    # `open(.lock, "a+")` followed the link: the config being trained was truncated to "pid ... on host"
    victim = tmp_path / "config.yaml"
    victim.write_text("seed: 1\n")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.lock_path.symlink_to(victim)
    with pytest.raises(InputError, match=r"run/.lock: is a symbolic link, where the run's lock file goes; remove it"):
        with run.lock():
            pass
    assert victim.read_text() == "seed: 1\n"
    run.lock_path.unlink()
    os.mkfifo(run.lock_path)
    with pytest.raises(InputError, match=r"run/.lock: is not a regular file"):
        with run.lock():
            pass


def test_an_ensemble_folder_written_by_another_command_after_its_check_is_refused_under_the_lock(tmp_path):
    """Two `ensemble --out E`: the second, paused after its check that E was empty, wrote its run over the first's
    finished one (and beside its evaluation). Under the lock, before the first write, the folder is checked again."""
    from mgrec.run import refuse_a_written_ensemble_dir

    run = RunDir(tmp_path / "E")
    with run.lock():
        refuse_a_written_ensemble_dir(run)  # only the lock: a new ensemble's folder
        (run.path / "eval_test.json").write_text("{}")  # another ensemble finished and was evaluated meanwhile
        with pytest.raises(InputError, match=r"E is no longer empty \(another command wrote 'eval_test.json' there"):
            refuse_a_written_ensemble_dir(run)


# --- weights that are not what the run's other files say ---------------------------------------------------------

@pytest.fixture(scope="module")
def two_tiny_runs(tmp_path_factory):
    """Two runs of one layout trained on the same data with other seeds (so other weights and thresholds)."""
    from tests.helpers import train_tiny_run

    from mgrec.config import PostprocessConfig

    root = tmp_path_factory.mktemp("weights-match")
    post = PostprocessConfig(pre_nms_topk=200, max_detections=100)
    return [train_tiny_run(root / f"seed{seed}", seed=seed, postprocess=post)[0] for seed in (3, 4)]


def _copy(run: Path, to: Path) -> RunDir:
    import shutil

    shutil.copytree(run, to)
    return RunDir(to)


def test_a_network_setting_edited_into_config_yaml_after_training_is_refused_when_loading(two_tiny_runs, tmp_path):
    # data.normalize: none written into the demo run's config.yaml took test F1 from 72.8 to 13.4 at the threshold
    # tuned for the run, without a word
    from mgrec.model.load import load_run_network

    run = _copy(two_tiny_runs[0], tmp_path / "run")
    load_run_network(run)  # as trained
    raw = yaml.safe_load(run.config_path.read_text())
    raw["train"]["epochs"], raw["data"]["annotations"] = 99, "/elsewhere/annotations.json"  # training, a path
    raw["postprocess"]["iou_threshold"] = 0.2  # post-processing: postprocess.json's own record says so
    run.config_path.write_text(yaml.safe_dump(raw))
    load_run_network(run)
    raw["data"]["normalize"], raw["model"]["drop_path"] = "video", 0.3
    run.config_path.write_text(yaml.safe_dump(raw))
    for checkpoint in ("best", "last"):
        with pytest.raises(InputError, match=rf"{run.config_path}: data.normalize is 'video', 'none' when trained; "
                                             rf"model.drop_path is 0.3, 0.0 when trained \(the weights "
                                             rf".*{checkpoint}.safetensors record what they were trained with\)"):
            load_run_network(run, checkpoint)


def test_best_weights_of_another_run_are_refused_when_loading(two_tiny_runs, tmp_path):
    # a best.safetensors copied in from another run of the same layout was used at this run's threshold: the
    # demo found 5 gestures instead of 64
    from mgrec.model.load import load_run_network

    run = _copy(two_tiny_runs[0], tmp_path / "run")
    other = RunDir(two_tiny_runs[1])
    own_meta, other_meta = run.read_weights("best")[1], other.read_weights("best")[1]
    assert own_meta["score_threshold"] != other_meta["score_threshold"]
    run.weights_path("best").write_bytes(other.weights_path("best").read_bytes())
    with pytest.raises(InputError, match=r"best.safetensors holds (the weights of epoch \d, but .*postprocess.json "
                                         r"selected epoch \d|weights whose val threshold was .*, but "
                                         r".*postprocess.json holds .*): the threshold was tuned on other weights \(a "
                                         r"checkpoint copied from another run or epoch\?\)"):
        load_run_network(run)


def test_checkpoints_that_record_no_config_are_compared_by_epoch_and_threshold(two_tiny_runs, tmp_path):
    # checkpoints written before they recorded their config are read, and still matched with postprocess.json
    from safetensors import safe_open
    from safetensors.torch import save_file

    from mgrec.model.load import load_run_network

    run = _copy(two_tiny_runs[0], tmp_path / "run")
    path = run.weights_path("best")
    with safe_open(str(path), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        meta = json.loads(handle.metadata()["mgrec"])
    del meta["config"]
    save_file(tensors, str(path), metadata={"mgrec": json.dumps(meta)})
    raw = yaml.safe_load(run.config_path.read_text())
    raw["data"]["normalize"] = "video"  # nothing recorded to compare it with
    run.config_path.write_text(yaml.safe_dump(raw))
    load_run_network(run)
    save_file(tensors, str(path), metadata={"mgrec": json.dumps({**meta, "score_threshold": 0.123})})
    with pytest.raises(InputError, match=r"holds weights whose val threshold was 0.123, but"):
        load_run_network(run)


def test_a_features_folder_lock_opened_just_before_its_holder_ended_is_taken_again(tmp_path):
    """The holder removes its lock file as it ends: a process that had opened it just before locked a file no longer
    in the folder, and a third one, creating a new file, would have written beside it."""
    import mgrec.run as run_module
    from mgrec.run import FEATURES_LOCK, lock_features_folder

    folder = tmp_path / "features"
    folder.mkdir()
    real_open, holder = run_module.open_lock_file, lock_features_folder(folder)
    holder.__enter__()

    def holder_ends_once_opened(path, **names):
        run_module.open_lock_file = real_open
        handle = real_open(path, **names)
        holder.__exit__(None, None, None)  # removes the file this process has just opened, and lets it go
        return handle

    run_module.open_lock_file = holder_ends_once_opened
    try:
        with lock_features_folder(folder):
            assert (folder / FEATURES_LOCK).exists()  # the file it holds is the one in the folder
            with pytest.raises(InputError, match="another extraction is writing there"):
                with lock_features_folder(folder):
                    pass
    finally:
        run_module.open_lock_file = real_open
    assert list(folder.iterdir()) == []


def test_the_processes_of_one_torchrun_extraction_hold_its_folder_together(tmp_path):
    from mgrec.run import FEATURES_LOCK, lock_features_folder

    folder = tmp_path / "features"
    with lock_features_folder(folder, shared=True):
        with lock_features_folder(folder, shared=True):  # rank 1 beside rank 0
            with pytest.raises(InputError, match=r"in use by another process; another extraction is writing there"):
                with lock_features_folder(folder):  # a lone extraction
                    pass
        assert (folder / FEATURES_LOCK).exists()  # rank 0 still writes: the last one to end removes it
    assert not folder.exists()
    with lock_features_folder(folder):
        with pytest.raises(InputError, match=r"in use by pid \d+"):
            with lock_features_folder(folder, shared=True):
                pass


def test_a_killed_extraction_s_lock_file_in_a_run_leaves_it_deletable(tmp_path):
    """`evaluate` of an end-to-end run extracts into RUN/features_best; one killed there left its lock file, and the
    rows of the video it was extracting (`mgrec.extract.outputs.PartialFeatures`)."""
    from mgrec.run import FEATURES_LOCK, PARTIAL_FEATURES, remove_run_dir

    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    (run.path / "features_best").mkdir()
    (run.path / "features_best" / FEATURES_LOCK).write_text("pid 999999 on elsewhere\n")
    rows = run.path / "features_best" / PARTIAL_FEATURES.format("Sample0007")
    rows.write_bytes(b"rows")
    rows.with_suffix(".json").write_text("{}")
    assert rows.name == ".Sample0007.partial.npy" and run.foreign_entries() == []
    (run.path / "features_best" / ".notes.npy").write_bytes(b"mine")  # another hidden name is no extraction's
    assert run.foreign_entries() == ["features_best/.notes.npy"]
    (run.path / "features_best" / ".notes.npy").unlink()
    remove_run_dir(run.path)
    assert not run.path.exists()


def test_a_run_trained_without_validation_is_scored_on_any_split_but_its_training_videos(tmp_path):
    """`data.val_split: ""` (train on everything, keep the configured threshold): its record's empty val split was
    read as a split name, and every later evaluate, report and analyze of the run was refused ("split ''")."""
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_splits({"annotations": "a.json", "train_split": "train", "train": ["t1"], "val_split": "", "val": []})
    run.check_held_out("test", ["x1", "x2"])
    with pytest.raises(InputError, match=r"1 video\(s\) of split 'test' are videos this run trained on \('t1'"):
        run.check_held_out("test", ["x1", "t1"])


def test_a_run_folder_whose_path_is_not_utf8_is_refused_before_anything_is_read_or_written(tmp_path):
    # safetensors opens no such path: a run trained there failed at its end, its checkpoint called unreadable after
    # every epoch was written; a run copied there was evaluated into detections its report refused as not text
    import os

    from mgrec.config import Config
    from mgrec.train.loop import refuse_before_training

    latin1 = tmp_path / os.fsdecode(b"r\xe9sultats") / "run"
    latin1.mkdir(parents=True)  # a run copied there
    expected = (r"the run folder's path is not UTF-8 text: its part 'r\\udce9sultats' \(byte 0xe9\) is in another "
                r"encoding; mgrec records a run's path in its files, which hold text, and the safetensors library "
                r"opens no such path: rename that folder")
    new_run = tmp_path / os.fsdecode(b"r\xe9sultats-2") / "run"  # a run to train there
    for check in (RunDir(latin1).require_finished, RunDir(latin1).refuse_unfinished,
                  lambda: refuse_before_training(Config(), new_run)):
        with pytest.raises(InputError, match=expected.replace("sultats", "sultats(-2)?")):
            check()
    assert not new_run.parent.exists() and not any(latin1.iterdir())
    RunDir(tmp_path / "résultats").refuse_unfinished()  # UTF-8 text of any script is a path like any


def test_the_commands_a_message_gives_are_quoted_for_a_shell(tmp_path):
    # `finish it with mgrec train /data/my runs/a/config.yaml --out /data/my runs/a --resume`, pasted, was four
    # arguments where two were meant
    import shlex

    run = RunDir(tmp_path / "my runs" / "it's a run")
    run.checkpoints_dir.mkdir(parents=True)
    run.state_path.write_bytes(b"")  # a training that did not finish
    with pytest.raises(InputError, match="finish it with mgrec train ") as error:
        run.refuse_unfinished()
    command = str(error.value).split("finish it with ")[1]
    assert shlex.split(command) == ["mgrec", "train", str(run.config_path), "--out", str(run.path), "--resume"]
    with pytest.raises(InputError, match="expected the run's scores: run `") as error:
        run.read_eval("my split", ["a"])
    command = str(error.value).split("run `")[1].split("`")[0]
    assert shlex.split(command) == ["mgrec", "evaluate", str(run.path), "--split", "my split"]


def _online_scores() -> dict:
    """online_test.json as `mgrec evaluate --online` writes it, of one video and two classes."""
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    classes = ["PEN", "ABD"]
    gt = {"v": [Segment("v", 1.0, 2.0, 0, "PEN"), Segment("v", 4.0, 5.0, 1, "ABD")]}
    emitted = {"v": [Detection("v", 1.0, 2.0, 0, "PEN", 0.9)]}
    scores = score(gt, emitted, classes, 0.5, split="test")
    scores["online"] = {"lookahead": 2.0, "window_steps": 128, "window_seconds": 10.24, "updates": 40,
                        "latency_seconds": {"mean": 2.4, "median": 2.4, "p95": 2.4, "max": 2.4},
                        "decided_while_streaming": 1, "decided_at_the_end": 0,
                        "compute_ms_per_update": {"mean": 11.2, "p95_of_the_slowest_video": 14.2}, "threads": 1}
    return scores


def test_every_value_of_an_online_block_that_is_shown_is_checked_by_its_key(tmp_path):
    # the report printed decided_while_streaming as it was (a '<script>' edited in ran in the page) and read the
    # latencies and counts by key (one taken out: a KeyError traceback; a null compute mean: a TypeError)
    run = RunDir(tmp_path)
    scores = _online_scores()
    run.write_online_eval("test", scores)
    assert run.read_online_eval("test", ["PEN", "ABD"])["online"] == scores["online"]
    no_latency = json.loads(json.dumps(scores))  # no gesture decided while streaming: every latency null
    no_latency["online"]["latency_seconds"] = dict.fromkeys(("mean", "median", "p95", "max"))
    run.write_online_eval("test", no_latency)
    assert run.read_online_eval("test", ["PEN", "ABD"])["online"]["latency_seconds"]["p95"] is None

    def edited(path: tuple[str, ...], value: object) -> dict:
        document = json.loads(json.dumps(scores))
        block = document["online"]
        for key in path[:-1]:
            block = block[key]
        if value is KeyError:
            del block[path[-1]]
        else:
            block[path[-1]] = value
        return document

    for path, value, expected in (
            (("decided_while_streaming",), "<script>alert(1)</script>", "a count"),
            (("decided_while_streaming",), KeyError, "a count"),
            (("decided_at_the_end",), -1, "a count"),
            (("updates",), 2.5, "a count"),
            (("lookahead",), math.nan, "a number of seconds >= 0"),
            (("lookahead",), True, "a number of seconds >= 0"),
            (("window_seconds",), -10.24, "a number of seconds >= 0"),
            (("latency_seconds", "p95"), KeyError, "a number >= 0 or null"),
            (("latency_seconds", "mean"), "fast", "a number >= 0 or null"),
            (("latency_seconds",), [], "an object of mean, median, p95, max"),
            (("compute_ms_per_update", "mean"), None, "a number >= 0"),
    ):
        run.write_online_eval("test", edited(path, value))
        key = re.escape(".".join(("online", *path)))
        with pytest.raises(InputError, match=rf"online_test.json \[{key}\]: expected {re.escape(expected)}[;:]"):
            run.read_online_eval("test", ["PEN", "ABD"])
    run.write_online_eval("test", {**scores, "online": [1]})
    with pytest.raises(InputError, match=r"online_test.json \[online\]: expected an object"):
        run.read_online_eval("test", ["PEN", "ABD"])


def test_scores_of_other_class_names_or_in_another_order_than_the_run_s_are_refused(tmp_path):
    # eval_test.json with its classes renamed by hand ('<b>a</b>'), or in another order, was reported: the per-class
    # table and the confusion matrix under the file's names beside the run's timelines; ids swapped between two
    # classes were refused as "not scored against the annotations" with the same counts on both sides
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    classes = ["a", "b"]
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a"), Segment("v", 4.0, 6.0, 1, "b")]}
    scores = {**score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, classes, 0.5, split="test"),
              "checkpoint": "best"}
    run.write_eval("test", scores)
    assert run.read_eval("test", classes)["confusion"]["labels"] == classes
    renamed = json.loads(json.dumps(scores).replace('"a"', '"<b>a</b>"').replace('"b"', '"<b>b</b>"'))
    reordered = json.loads(json.dumps(scores))
    reordered["confusion"]["labels"].reverse()
    reordered["per_class"]["a"]["label_id"], reordered["per_class"]["b"]["label_id"] = 1, 0
    swapped_ids = json.loads(json.dumps(scores))
    swapped_ids["per_class"]["a"]["label_id"], swapped_ids["per_class"]["b"]["label_id"] = 1, 0
    for edited, message in (
            (renamed, r"\[confusion.labels\]: expected the run's classes in their order \(its classes.json: 'a', "
                      r"'b'\); got '<b>a</b>' at \[0\], where the run has 'a'; the file is not as mgrec"),
            (reordered, r"\[confusion.labels\]: expected the run's classes in their order \(its classes.json: "
                        r"'a', 'b'\); got 'b' at \[0\], where the run has 'a';"),
            (swapped_ids, r"\[per_class.a.label_id\]: expected 0, the class's place in the run's classes.json;")):
        run.write_eval("test", edited)
        with pytest.raises(InputError, match=r"eval_test.json " + message):
            run.read_eval("test", classes)
        run.write_online_eval("test", {**edited, "online": _online_scores()["online"]})
        with pytest.raises(InputError, match=r"online_test.json " + message.split(" the file is")[0]):
            run.read_online_eval("test", classes)


def test_a_per_class_table_missing_a_class_or_naming_another_names_that_class(tmp_path):
    # "[per_class]: expected a mapping of each class name to its scores" for both: the user diffed the file against
    # classes.json by hand to find the class dropped or renamed. Its entries in another order are the same scores.
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    classes = ["a", "b", "c"]
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a"), Segment("v", 4.0, 6.0, 1, "b")]}
    scores = {**score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, classes, 0.5, split="test"),
              "checkpoint": "best"}
    dropped = json.loads(json.dumps(scores))
    del dropped["per_class"]["b"], dropped["per_class"]["c"]
    renamed = json.loads(json.dumps(scores))
    renamed["per_class"]["x"] = renamed["per_class"].pop("c")
    for edited, message in (
            (dropped, r"\[per_class\]: expected the scores of each of the run's classes \(its classes.json: 'a', 'b', "
                      r"'c'\); 'b' has none \(nor 1 more\); the file is not as mgrec evaluate wrote it"),
            (renamed, r"\[per_class.x\]: expected the scores of one of the run's classes \(its classes.json: 'a', "
                      r"'b', 'c'\); 'x' is none of them;")):
        run.write_eval("test", edited)
        with pytest.raises(InputError, match=r"eval_test.json " + message):
            run.read_eval("test", classes)
    reordered = {**scores, "per_class": dict(reversed(scores["per_class"].items()))}
    run.write_eval("test", reordered)
    assert run.read_eval("test", classes)["per_class"] == scores["per_class"]


def test_scores_whose_map_is_not_named_by_tious_are_refused_by_the_key(tmp_path):
    # an mAP keyed '<i>x</i>' or 'zz' (edited by hand) was reported as `mAP@zz 10.00` beside the run's scores
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a")]}
    scores = {**score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, ["a"], 0.5, split="test"),
              "checkpoint": "best"}
    assert list(scores["mAP"]) == ["0.3", "0.4", "0.5", "0.6", "0.7"]
    run.write_eval("test", {**scores, "mAP": {"0.5": 1.0, "1": 1.0, "0.05": 1.0}})
    assert run.read_eval("test", ["a"])["mAP"]["1"] == 1.0
    for key in ("zz", "<i>x</i>", "0", "1.5", "nan", "-0.5", " 0.5"):
        run.write_eval("test", {**scores, "mAP": {"0.3": 1.0, key: 1.0}})
        with pytest.raises(InputError, match=rf"eval_test.json \[mAP.{re.escape(key)}\]: expected a tIoU threshold in "
                                             r"\(0, 1\] as the key"):
            run.read_eval("test", ["a"])


def test_a_headline_score_that_its_parts_do_not_make_is_refused_by_the_key(tmp_path):
    # eval_test.json's F1 edited by hand (0.60 where its precision and recall make 0.6933) was reported and averaged by
    # `compare` as the run's (demo: 3 such runs `65.00 ± 5.00`), every value in its range; average mAP alike
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a"), Segment("v", 5.0, 7.0, 0, "a")]}
    found = [Detection("v", 0.0, 2.0, 0, "a", 0.9), Detection("v", 9.0, 9.5, 0, "a", 0.8),
             Detection("v", 12.0, 13.0, 0, "a", 0.7)]
    scores = {**score(gt, {"v": found}, ["a"], 0.5, split="test"), "checkpoint": "best"}
    assert 0 < scores["f1"] < 1 and 0 < scores["average_mAP"] < 1
    run.write_eval("test", scores)
    assert run.read_eval("test", ["a"])["f1"] == scores["f1"]  # as evaluate wrote it: read
    for key, value in (("f1", 0.6), ("f1_miga", 0.9), ("average_mAP", 0.25)):
        run.write_eval("test", {**scores, key: value})
        with pytest.raises(InputError, match=rf"eval_test.json \[{key}\]: expected [0-9.]+, the .*, got {value}; the "
                                             r"file is not as mgrec evaluate wrote it \(edited\?\)"):
            run.read_eval("test", ["a"])
    nothing = {**score(gt, {"v": []}, ["a"], 0.5, split="test"), "checkpoint": "best"}  # precision and recall 0
    run.write_eval("test", nothing)
    assert run.read_eval("test", ["a"])["f1"] == 0


def test_an_ensemble_whose_sources_are_not_a_list_of_paths_is_refused_by_the_key(tmp_path):
    # run.json's ensemble.sources edited to 5 or null: `mgrec report` stopped on a TypeError traceback; a string was
    # listed a character at a time ('an ensemble of 2 runs: <, b, >, x, ...')
    run = RunDir(tmp_path)
    for sources in (["a", "b"], None):
        block = {"members": 2, **({"sources": sources} if sources is not None else {})}  # none: an early ensemble
        run.format_path.write_text(json.dumps({"format": RUN_FORMAT_VERSION, "ensemble": block}))
        assert run.read_ensemble()["members"] == 2
    for sources in (5, None, "<b>x</b>", {"a": 1}, ["a", None]):
        run.format_path.write_text(json.dumps({"format": RUN_FORMAT_VERSION,
                                               "ensemble": {"members": 2, "sources": sources}}))
        with pytest.raises(InputError, match=r"run.json \[ensemble.sources\]: expected a list of the member runs' "
                                             r"paths \(as mgrec ensemble writes it\), got "):
            run.read_ensemble()


def test_a_metrics_list_of_another_length_than_the_run_s_classes_is_refused_by_line_and_key(tmp_path):
    # the balance records of a 7-class run's log holding 3 crop shares (another run's log copied in, or edited): the
    # report's class-balancing figure drew 3 lines and left the other 4 classes empty, without a word
    run = RunDir(tmp_path)
    run.metrics_path.write_text('{"kind": "train", "epoch": 0, "loss": 1.0}\n'
                                '{"kind": "balance", "epoch": 0, "class_weights": [1, 1], "crop_shares": [0.5, null]}\n'
                                '{"kind": "val", "epoch": 0, "f1": 0.5, "class_thresholds": [0.3, 0.4]}\n')
    assert len(run.read_metrics(num_classes=2)) == 3 and len(run.read_metrics()) == 3
    for key, line in (("class_weights", 2), ("crop_shares", 2), ("class_thresholds", 3)):
        lines = run.metrics_path.read_text().splitlines()
        record = json.loads(lines[line - 1])
        lines[line - 1] = json.dumps({**record, key: record[key] + [0.1]})
        (tmp_path / "other").mkdir(exist_ok=True)
        other = RunDir(tmp_path / "other")
        other.metrics_path.write_text("\n".join(lines) + "\n")
        with pytest.raises(InputError, match=rf"metrics.jsonl:{line} \[{key}\]: expected 2 values, one per class of "
                                             r"the run \(classes.json\), got 3 \(the log of another run\?\)"):
            other.read_metrics(num_classes=2)
        assert len(other.read_metrics()) == 3  # a resume reads it as before


def test_fusion_gates_of_no_class_of_the_run_or_of_a_count_of_another_kind_are_refused(tmp_path):
    # eval_test.json's fusion_gates with a class renamed by hand were tabled as a row of their own (F1 '–'), and
    # "videos": true as 'True videos'
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a")]}
    scores = {**score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, ["a", "b"], 0.5, split="test"),
              "checkpoint": "best"}
    gates = {"level": 0, "streams": ["pose"], "per_class": {"a": 0.4, "b": None}, "background": 0.1, "videos": 1,
             "skipped_long_videos": 0}
    run.write_eval("test", {**scores, "fusion_gates": gates})
    assert run.read_eval("test", ["a", "b"])["fusion_gates"] == gates
    for edited, message in (({"per_class": {"a": 0.4, "<b>x</b>": 0.2}},
                             r"\[fusion_gates.per_class.<b>x</b>\]: expected a gate of one of the run's classes"),
                            ({"videos": True}, r"\[fusion_gates\]: expected per_class and background gates"),
                            ({"skipped_long_videos": -1}, r"\[fusion_gates\]: expected per_class and background")):
        run.write_eval("test", {**scores, "fusion_gates": {**gates, **edited}})
        with pytest.raises(InputError, match=r"eval_test.json " + message):
            run.read_eval("test", ["a", "b"])


def test_a_run_s_moved_data_is_refused_with_the_key_and_the_way_to_record_its_new_place(tmp_path, monkeypatch):
    # before: "RUN/config.yaml [data.annotations]: /home/alice/... not found (moved or deleted since the run was
    # trained?)", nothing said of what to do (evaluate has no --set; report's --annotations was not named)
    from mgrec.run import run_data_path

    run = tmp_path / "my run"
    (run / "checkpoints").mkdir(parents=True)
    gone = "/home/alice/mgrec/demo/annotations.json"
    with pytest.raises(InputError) as error:
        run_data_path(run, "data.annotations", gone, "run it from the training's folder")
    assert str(error.value) == (f"{run / 'config.yaml'} [data.annotations]: {gone} not found (moved or deleted since "
                                "the run was trained?); move it back, or write its new place as data.annotations in "
                                f"{run / 'config.yaml'} (the run has no checkpoints/last_state.pt to resume, which "
                                "would record it)")
    (run / "checkpoints" / "last_state.pt").write_bytes(b"")
    with pytest.raises(InputError) as error:
        run_data_path(run, "data.features", "/gone/features", "-", folder=True)
    assert str(error.value).endswith(f"; move it back, or record its new place in the run: mgrec train '{run}/"
                                     f"config.yaml' --out '{run}' --resume --set data.features=NEW")
    with pytest.raises(InputError, match=r"\(moved or deleted since the run was trained\?\); pass --annotations F$"):
        run_data_path(run, "data.annotations", gone, "-", moved="pass --annotations F")


def test_a_run_s_data_this_user_may_not_look_into_is_an_input_error(tmp_path, monkeypatch):
    # before: a raw PermissionError traceback from Path.is_file() (a run copied from root, its data under /root)
    from mgrec.run import run_data_path

    def refused(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "is_file", refused)
    monkeypatch.setattr(Path, "is_dir", refused)
    with pytest.raises(InputError) as error:
        run_data_path(tmp_path, "data.annotations", "/root/demo/annotations.json", "-", moved="pass it")
    assert str(error.value) == (f"{tmp_path / 'config.yaml'} [data.annotations]: cannot look at /root/demo/"
                                "annotations.json: Permission denied (a folder on the way is not open to this user); "
                                "pass it")


def test_outputs_into_a_read_only_run_are_refused_before_the_work(tmp_path, monkeypatch):
    # before: `mgrec evaluate --online RUN` of a read-only run (chmod -R a-w, another user's) streamed every video
    # (50 s on the demo), then stopped on "cannot write RUN/online_test.json: Permission denied"
    import mgrec.files

    run = RunDir(tmp_path)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(mgrec.files.tempfile, "mkstemp", refused)
    with pytest.raises(InputError) as error:
        run.check_outputs(files=[run.online_eval_path("test")])
    assert str(error.value) == (f"cannot write {tmp_path / 'online_test.json'}: Permission denied (this command writes "
                                f"its results into the run {tmp_path}); copy the run to a folder you may write and "
                                "run the command there")
    with pytest.raises(InputError, match=r"\(this command writes its results into the run .*\); give --out FILE$"):
        run.check_outputs(folders=[run.analysis_dir], advice="give --out FILE")
    assert not run.analysis_dir.exists()
    monkeypatch.undo()
    run.check_outputs(files=[run.eval_path("test")], folders=[run.analysis_dir])  # a writable run passes
    assert sorted(os.listdir(tmp_path)) == []


def test_a_run_without_its_splits_record_is_named(tmp_path):
    # before: a run copied without splits.json read as one started before format 14, without a word: evaluate skipped
    # the check that the scored split holds none of its training videos, ensemble dropped its own record
    run = RunDir(tmp_path)
    assert run.no_splits_record() == (f"{tmp_path} has no splits.json (the record of the videos it trained and "
                                      "validated on: a run started before mgrec wrote one, made from weights "
                                      "trained elsewhere, or copied without it)")
    run.write_splits({"annotations": "a.json", "train_split": "train", "train": ["v1"], "val_split": "val",
                      "val": ["v2"]})
    assert run.no_splits_record() is None


def test_a_fresh_start_refuses_a_folder_holding_other_runs_in_its_subfolders(tmp_path, monkeypatch, capsys):
    # `mgrec train CONFIG --out runs/` (`--out runs/$NAME`, NAME empty) trained straight into runs/, its files beside
    # the other runs' folders, without a word; train, --seeds, ensemble and demo now refuse it, naming two of them
    from tests.test_robustness import tiny_config, write_run

    from mgrec.cli import main
    from mgrec.data.synthetic import make_synthetic_dataset

    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "val", "test"))
    save_config(tiny_config(dataset), tmp_path / "tiny.yaml")
    runs = tmp_path / "runs"
    for name in ("a", "b", "c"):
        write_run(runs / name, tiny_config(dataset))
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    message = (f"--out {runs} holds other runs in its subfolders ({runs / 'a'}, {runs / 'b'} and 1 more); a run is "
               f"written into a folder of its own: give the run's own folder (--out {runs / 'NAME'})")
    with pytest.raises(InputError) as refused:
        RunDir(runs).check_fresh_start([])
    assert str(refused.value) == message
    for argv in (["train", str(tmp_path / "tiny.yaml"), "--out", f"{runs}/"],
                 ["train", str(tmp_path / "tiny.yaml"), "--out", str(runs), "--seeds", "2"],
                 ["ensemble", str(runs / "a"), str(runs / "b"), "--out", str(runs)],
                 ["demo", "--out", str(runs), "--cache", str(tmp_path / "cache")]):
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before
    assert not (tmp_path / "cache").exists() and not list(tmp_path.glob("runs-seed*"))
    # a run's own folders (a teacher's) are no other runs: a fresh start in a folder holding its teacher goes on
    write_run(tmp_path / "pseudo" / "teacher", tiny_config(dataset))
    RunDir(tmp_path / "pseudo").check_fresh_start([])


def test_a_run_file_that_is_there_but_is_no_file_is_refused_not_taken_for_absent(tmp_path):
    # `exists()` and `is_file()` are False for a symbolic link loop, a link to nothing and a folder: a splits.json
    # link loop was read as a run without the record (evaluate scored the test split without checking its videos,
    # exit 0), a folder at config.yaml was "not found", a loop at postprocess.json "a training that did not finish"
    run = RunDir(tmp_path)
    run.write_format()
    run.write_config(Config())
    run.write_tuning({"score_threshold": 0.25, "tuned_on": "val"})
    run.refuse_unfinished()  # a finished run's files: nothing to say

    def damage(path: Path, how: str) -> None:
        if how == "loop":
            path.symlink_to(path.name)
        elif how == "dangling":
            path.symlink_to("/nonexistent/x")
        else:
            path.mkdir()

    cases = [(run.splits_path, "loop", "a symbolic link loop"), (run.postprocess_path, "loop", "a symbolic link loop"),
             (run.recipe_path, "folder", "a folder, not a file"),
             (run.metrics_path, "dangling", "a symbolic link to /nonexistent/x, which does not exist")]
    for path, how, words in cases:
        kept = path.read_bytes() if path.is_file() else None
        if kept is not None:
            path.unlink()
        damage(path, how)
        with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: {re.escape(words)}.*a file of the run"):
            run.refuse_unfinished()
        path.rmdir() if how == "folder" else path.unlink()
        if kept is not None:
            path.write_bytes(kept)
    run.config_path.unlink()
    damage(run.config_path, "folder")
    with pytest.raises(InputError, match=r"config.yaml: a folder, not a file"):
        run.read_config()
    damage(run.eval_path("test", "best"), "loop")
    with pytest.raises(InputError, match=r"eval_test.json: a symbolic link loop"):
        run.read_eval("test", ["a"])
    damage(run.online_eval_path("test", "best"), "loop")
    with pytest.raises(InputError, match=r"online_test.json: a symbolic link loop"):
        run.read_online_eval("test", ["a"])


def test_counts_of_a_scores_file_past_a_float_s_exact_integers_or_of_another_kind_are_refused(tmp_path):
    # `"num_videos": 10**30` was shown by the report as that many videos; `num_ground_truth` was not looked at: "5"
    # or -3 passed, and a file without it was a KeyError traceback of the report (its scored set's words)
    from mgrec.evaluate.scoring import score
    from mgrec.records import Detection, Segment

    run = RunDir(tmp_path)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a")]}
    scores = {**score(gt, {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, ["a", "b"], 0.5, split="test"),
              "checkpoint": "best"}
    run.write_eval("test", scores)
    assert run.read_eval("test", ["a", "b"])["num_ground_truth"] == 1
    for key, value in (("num_videos", 10**30), ("num_videos", 2**53 + 1), ("num_predictions", 10**30),
                       ("num_ground_truth", "5"), ("num_ground_truth", -3), ("num_ground_truth", True),
                       ("num_ground_truth", 1.0), ("num_ground_truth", 10**30)):
        run.write_eval("test", {**scores, key: value})
        with pytest.raises(InputError, match=rf"eval_test.json \[{key}\]: expected a count"):
            run.read_eval("test", ["a", "b"])
    run.write_eval("test", {key: value for key, value in scores.items() if key != "num_ground_truth"})
    with pytest.raises(InputError, match=r"eval_test.json: missing key\(s\) num_ground_truth"):
        run.read_eval("test", ["a", "b"])
    online = {"lookahead": 2.0, "window_seconds": 8.0, "updates": 10**30, "decided_while_streaming": 0,
              "decided_at_the_end": 1, "latency_seconds": {"mean": None, "median": None, "p95": None, "max": None},
              "compute_ms_per_update": {"mean": 1.0}}
    run.write_online_eval("test", {**scores, "online": online})
    with pytest.raises(InputError, match=r"online_test.json \[online.updates\]: expected a count"):
        run.read_online_eval("test", ["a", "b"])
