"""`data check` on a tiny dataset with planted problems: each is found, at the right place."""

import json
import os
import re
import shlex
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from mgrec.config import Config, DataConfig, StreamConfig, load_config
from mgrec.data.check import (
    Problem,
    check_dataset,
    grouped_problems,
    problem_where,
    schedule_problem,
    suggest_settings,
    videos_to_drop,
)
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.errors import InputError

FPS, STRIDE, WINDOW, DIM = 10.0, 4, 16, 8
STEPS = (200 - WINDOW) // STRIDE + 1  # 20 s at 10 fps -> 200 frames -> 47 windows


def _config(tmp_path) -> Config:
    config = Config()
    config.data.annotations = str(tmp_path / "ann.json")
    config.data.features = str(tmp_path / "feats")
    config.data.stride, config.data.window, config.data.feature_dim = STRIDE, WINDOW, DIM
    config.model.num_classes = 3
    return config


def _entry(subset, *segments):
    return {
        "subset": subset,
        "fps": FPS,
        "duration": 20.0,
        "annotations": [{"label": f"c{c}", "label_id": c, "segment": [s, e]} for c, s, e in segments],
    }


def _sidecar(**changes):
    fields = {"fps": FPS, "stride": STRIDE, "window": WINDOW, "backbone": "test", "dim": DIM, "frames": 200}
    return FeatureSidecar(**{**fields, **changes})


def _features(folder, video_id, steps=STEPS, dim=DIM, sidecar=True, ext=".npy", **sidecar_changes):
    # each video its own values: videos of one length holding the same features are one video twice
    array = np.random.default_rng(zlib.crc32(video_id.encode())).standard_normal((steps, dim)).astype(np.float32)
    path = folder / f"{video_id}{ext}"
    if sidecar:
        write_features(path, array, _sidecar(dim=dim, **sidecar_changes))
    else:
        np.save(path, array)
    return array


@pytest.fixture
def planted(tmp_path):
    """A dataset with one planted problem per video (see the comments)."""
    database = {
        "ok": _entry(
            "training",
            (0, 1.0, 3.0),
            (1, 5.0, 7.0),
            (1, 5.0, 7.0),  # duplicate ground truth
            (2, 19.0, 21.0),  # ends 1 s after the video
            (0, 4.0, 3.0),  # start >= end
        ),
        "late": _entry("training", (0, 25.0, 26.0)),  # starts after the video ends; no sidecar
        "missing": _entry("training", (1, 2.0, 3.0)),  # no feature file
        "nan": _entry("validation", (0, 2.0, 3.0)),  # NaN in the features
        "dim": _entry("validation", (1, 2.0, 3.0)),  # 6-dim features, no sidecar
        "drift": _entry("testing", (2, 2.0, 3.0)),  # 30 steps only, sidecar says 47
        "stride": _entry("testing", (2, 2.0, 3.0)),  # sidecar stride 8
        "empty": _entry("testing"),  # no instances
        "other": _entry("holdout", (0, 2.0, 3.0)),  # in no configured split
    }
    document = {"classes": ["c0", "c1", "c2"], "database": database}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    folder = tmp_path / "feats"
    folder.mkdir()
    _features(folder, "ok")
    _features(folder, "late", sidecar=False)
    array = _features(folder, "nan")
    array[5, 2] = np.nan
    np.save(folder / "nan.npy", array)
    _features(folder, "dim", dim=6, sidecar=False)
    _features(folder, "drift", steps=30, sidecar=False)
    (folder / "drift.json").write_text(json.dumps({**_sidecar().__dict__, "num_features": STEPS}), encoding="utf-8")
    _features(folder, "stride", stride=8)
    _features(folder, "empty")
    _features(folder, "other")
    _features(folder, "stray")  # no annotations entry
    return tmp_path


def test_every_planted_problem_is_found_at_its_place(planted):
    report = check_dataset(_config(planted))
    ann, feats = str(planted / "ann.json"), planted / "feats"
    expected = [
        ("error", f"{ann} [database.ok.annotations[4].segment]", "ok", "not before end"),
        ("warning", f"{ann} [database.ok.annotations[2]]", "ok", "duplicate ground truth"),
        ("warning", f"{ann} [database.ok.annotations[3]]", "ok", "1.000 s after the video ends"),
        ("error", f"{ann} [database.late.annotations[0]]", "late", "after the video ends (20.000 s)"),
        ("error", str(feats / "missing.npy"), "missing", "feature file missing"),
        ("error", str(feats / "nan.npy"), "nan", "1 NaN/Inf value(s), the first at [t=5, c=2]"),
        ("error", str(feats / "dim.npy"), "dim", "expected feature dimension 8 (data.feature_dim), found 6"),
        ("error", str(feats / "drift.npy"), "drift", "off by -6.8 s"),
        ("error", str(feats / "drift.json"), "drift", "sidecar says 47 feature steps but drift.npy holds 30"),
        ("error", str(feats / "stride.json"), "stride", "stride is 8 in the sidecar but 4 in the config"),
        ("warning", f"{ann} [database.empty]", "empty", "no annotated instances"),
        ("warning", ann, None, "'holdout' (1) are in none of the configured splits"),
        ("warning", str(feats / "stray.npy"), "stray", "no entry in the annotations"),
        ("warning", str(feats), None, "2 feature file(s) have no sidecar"),
    ]
    found = {(p.severity, p.where, p.video_id): p.message for p in report.problems}
    assert sorted(found) == sorted((s, w, v) for s, w, v, _ in expected)
    for severity, location, video_id, fragment in expected:
        assert fragment in found[(severity, location, video_id)]
    assert "training draws no crop" not in found[("warning", f"{ann} [database.empty]", "empty")]  # a test video

    assert report.videos_per_split == {"train": 3, "val": 2, "test": 3}
    assert report.counts_per_split["train"] == {"c0": 2, "c1": 3, "c2": 1}
    assert report.counts_per_split["test"] == {"c0": 0, "c1": 0, "c2": 2}
    assert sorted(videos_to_drop(report)) == ["dim", "drift", "late", "missing", "nan", "ok", "stride"]
    assert len(videos_to_drop(report)["drift"]) == 2
    assert report.dataset_errors == []

    # training videos are 47 steps long, instances 2.5-5 steps: the smallest pyramid fits
    assert report.suggestions == {
        "data.max_seq_len": 64,
        "model.num_levels": 2,
        "model.regression_ranges": [[0, 4], [4, 10000]],
    }
    text = report.format()
    assert "Instances per class and split" in text
    assert "Problems: 8 error(s), 6 warning(s)" in text
    assert f"ERROR   {feats / 'nan.npy'}: 1 NaN/Inf" in text
    # each suggestion pastes into a shell as it is printed (unquoted, `[[0, 4], [4, 10000]]` split at its spaces)
    overrides = [shlex.split(line.strip())[1] for line in text.splitlines() if line.startswith("  --set ")]
    assert overrides == ["data.max_seq_len=64", "model.num_levels=2", "model.regression_ranges=[[0,4],[4,10000]]"]
    applied = load_config("demo/default.yaml", overrides)
    assert applied.model.regression_ranges == [[0, 4], [4, 10000]] and applied.data.max_seq_len == 64
    # a config that already sets them is told nothing (the demo was told to set what its shipped config sets)
    config = _config(planted)
    config.data.max_seq_len, config.model.num_levels = 64, 2
    config.model.regression_ranges = [[0, 4], [4, 10000]]
    assert check_dataset(config).suggestions == {}
    config.data.max_seq_len = 128
    assert check_dataset(config).suggestions == {"data.max_seq_len": 64}


def test_balancing_histograms(planted):
    config = _config(planted)
    with pytest.raises(InputError, match=r"balance.method is none; set it \(--set balance.method=repeat_factor, "
                                         "mgrec.s default recipe"):
        check_dataset(config, balance=True)
    config.balance.method, config.balance.alpha = "eq1", 3
    report = check_dataset(config, balance=True)
    # train: c0 x2, c1 x3 (with the duplicate), c2 x1; alpha 3 -> R = 2, 1, 3
    assert report.histogram_before == [2, 3, 1]
    assert report.histogram_after == [4, 3, 3]
    assert "before   after" in report.format() and "(eq1)" in report.format()
    config.balance.method, config.balance.alpha = "repeat_factor", None
    config.balance.repeat_threshold = 0.5
    report = check_dataset(config, balance=True)
    # shares 2/6, 3/6, 1/6 -> max(1, sqrt(0.5 / f)) = sqrt(1.5), 1, sqrt(3)
    assert report.histogram_after == pytest.approx([2 * 1.5**0.5, 3, 3**0.5])


def test_class_count_and_unknown_labels(tmp_path):
    document = {"classes": ["c0", "c1", "c2", "c3"], "database": {"v": _entry("training", (3, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "v")
    report = check_dataset(_config(tmp_path))
    assert [(p.where, p.video_id) for p in report.errors] == [
        (f"{tmp_path / 'ann.json'} [classes]", None),
        (f"{tmp_path / 'ann.json'} [database.v.annotations[0]]", "v"),
    ]
    assert "4 classes in the annotations but model.num_classes is 3" in report.errors[0].message
    assert "beyond the model's 3 classes" in report.errors[1].message
    assert len(report.dataset_errors) == 1
    assert "no videos in split 'val'" in " ".join(p.message for p in report.warnings)


def test_unreadable_annotations_and_missing_features_folder(tmp_path):
    (tmp_path / "ann.json").write_text('{"database": {\n "v": }}', encoding="utf-8")
    report = check_dataset(_config(tmp_path))
    [problem] = report.problems
    assert problem.where.startswith(f"{tmp_path / 'ann.json'}:2:")
    assert "not valid JSON" in problem.message
    assert "Problems: 1 error(s)" in report.format()

    document = {"classes": ["c0", "c1", "c2"], "database": {"v": _entry("training", (0, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    report = check_dataset(_config(tmp_path))
    assert [(p.where, p.message) for p in report.errors] == [
        (str(tmp_path / "feats"), "no such folder (config data.features)")
    ]


def test_relative_data_paths_that_are_not_there_name_the_key_the_folder_they_were_read_from_and_the_fix(
        tmp_path, monkeypatch):
    # `mgrec data check smg/mgrec.yaml` run from another folder than the data's said only
    # "data/smg/annotations.json: annotations file not found" (`mgrec train` named the key, the folder and the fix),
    # and "feats: no such folder (config data.features)"
    monkeypatch.chdir(tmp_path)
    config = load_config("smg/mgrec.yaml", ["data.features=feats"])
    [problem] = check_dataset(config).problems
    assert problem.message == ("data/smg/annotations.json not found (relative paths are read from the current "
                               f"directory {tmp_path}); give the annotations file: --set data.annotations=FILE")
    assert problem.where.endswith("configs/smg/mgrec.yaml [data.annotations]")
    config = load_config("smg/mgrec.yaml", ["data.annotations=ann.json", "data.features=feats"])
    [problem] = check_dataset(config).problems
    assert problem.where == "--set data.annotations=ann.json [data.annotations]"
    (tmp_path / "ann.json").write_text(json.dumps({"classes": [f"c{i}" for i in range(17)], "database": {
        "v": _entry("training", (0, 1.0, 2.0))}}), encoding="utf-8")
    assert [(p.where, p.message) for p in check_dataset(config).errors] == [
        ("feats", f"no such folder (config data.features; relative paths are read from the current directory "
                  f"{tmp_path})")]


@pytest.mark.parametrize("kind, message", [
    ("file", "a file, not a features folder"),  # a feature file given for the folder that holds it
    ("dangling", "a symbolic link to /nonexistent/drive, which does not exist"),  # a drive not mounted
    ("loop", "a symbolic link loop (following its links leads back to them, never to a folder)"),
    ("pipe", "a named pipe, not a features folder"),
])
def test_data_features_that_is_there_but_no_folder_says_what_it_is(tmp_path, kind, message):
    # each was "features folder not found", which sent the user looking for a path that is there
    document = {"classes": ["c0", "c1", "c2"], "database": {"v": _entry("training", (0, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    feats = tmp_path / "feats"
    if kind == "file":
        _features(tmp_path, "feats")
        (tmp_path / "feats.npy").rename(feats)
    elif kind == "dangling":
        feats.symlink_to("/nonexistent/drive")
    elif kind == "loop":
        feats.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(feats)
    else:
        os.mkfifo(feats)
    report = check_dataset(_config(tmp_path))
    assert [(p.where, p.message) for p in report.errors] == [(str(feats), f"{message} (config data.features)")]


def test_suggest_settings_by_hand():
    # instances 8..80 steps, p99 about 79 -> half 39.6 -> L = floor(log2 39.6) = 5
    suggestions, stats = suggest_settings([100 * i for i in range(1, 12)], [8.0] * 50 + [80.0] * 50)
    assert suggestions["model.num_levels"] == 5
    assert suggestions["model.regression_ranges"] == [[0, 4], [4, 8], [8, 16], [16, 32], [32, 10000]]
    # p90 of 100..1100 is 1000 steps -> next multiple of max(32, 2**4) -> 1024
    assert suggestions["data.max_seq_len"] == 1024
    # half-lengths 4 (level 1: [4, 8)) and 40 (top level)
    assert stats["instances per level (by half-length)"] == [0, 50, 0, 0, 50]

    suggestions, _ = suggest_settings([9000] * 3, [1000.0] * 10)
    assert suggestions["model.num_levels"] == 8  # floor(log2 500) = 8, the maximum
    assert suggestions["data.max_seq_len"] == 2304  # capped; 2304 = 18 * 128


@pytest.mark.filterwarnings("error")  # numpy's "invalid value encountered in cast" would be a garbage count
def test_an_absurd_duration_is_reported_as_drift_not_a_crash(tmp_path):
    # 1e300 s is more frames than an int64 holds: the count is capped at MAX_FRAME, still far off the features.
    document = {"classes": ["c0", "c1", "c2"], "database": {"v": {**_entry("training", (0, 1.0, 2.0)),
                                                                  "duration": 1e300}}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "v")
    report = check_dataset(_config(tmp_path))
    [drift] = [p for p in report.errors if p.where == str(tmp_path / "feats" / "v.npy")]
    assert re.search(r"\(\d{15,} steps expected at fps 10", drift.message), drift.message


def test_disagreeing_label_ids_are_the_reported_cause_without_a_table_of_zeros(tmp_path):
    # No classes list and the first-seen c0 carries id 2: data check names that, as the reader does,
    # not "label_id 0 never appears", and shows no instance table of a class list it could not build.
    database = {"a": _entry("training", (0, 1.0, 2.0), (1, 3.0, 4.0)), "b": _entry("training", (0, 5.0, 6.0))}
    database["a"]["annotations"][0]["label_id"] = 2
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    report = check_dataset(_config(tmp_path))
    [problem] = report.problems
    assert problem.where == f"{tmp_path / 'ann.json'} [database.b.annotations[0].label_id]"
    assert problem.message.startswith("label 'c0' has label_id 0 here but 2 at [database.a.annotations[0]]")
    text = report.format()
    assert "Instances per class" not in text and "total" not in text
    assert text.startswith("Problems: 1 error(s), 0 warning(s)")


@pytest.mark.parametrize("broken", [{"fps": 0}, {"fps": None}, {"subset": None}, {"duration": None}])
def test_a_refused_video_entry_does_not_make_its_features_orphans(tmp_path, broken):
    entry = {**_entry("training", (0, 1.0, 2.0)), **broken}
    entry = {key: value for key, value in entry.items() if value is not None}  # None: the key is missing
    document = {"classes": ["c0", "c1", "c2"], "database": {"good": _entry("training", (1, 1.0, 2.0)), "bad": entry}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("good", "bad", "stray"):
        _features(tmp_path / "feats", video_id)
    report = check_dataset(_config(tmp_path))
    [error] = report.errors
    assert error.video_id == "bad" and error.where.startswith(f"{tmp_path / 'ann.json'} [database.bad")
    # only the real orphan: bad.npy has an entry, a refused one
    orphans = [p.where for p in report.warnings if "no entry in the annotations" in p.message]
    assert orphans == [str(tmp_path / "feats" / "stray.npy")]


def test_a_val_split_without_instances_is_an_error_before_training(tmp_path):
    # training stopped at its first validation ("no ground-truth segments in split val"), every epoch lost
    document = {"classes": ["c0", "c1", "c2"],
                "database": {"t": _entry("training", (0, 1.0, 2.0)), "v1": _entry("validation"),
                             "v2": _entry("validation")}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    messages = [p.message for p in check_dataset(_config(tmp_path)).errors]
    assert "split 'val' (data.val_split) has 2 video(s) but no annotated instance: validation selects the " \
        "checkpoint and tunes the score threshold on its instances; annotate them, or leave the videos out of " \
        "that split to train without validation" in messages
    document["database"]["v2"] = _entry("validation", (1, 3.0, 4.0))
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    assert not any("no annotated instance" in p.message for p in check_dataset(_config(tmp_path)).errors)


def test_an_empty_split_names_the_subset_no_split_takes(tmp_path):
    # a val subset named 'valid' trained with no validation at all (an untuned threshold), said only as "in none
    # of the configured splits"
    document = {"classes": ["c0", "c1", "c2"],
                "database": {"t": _entry("training", (0, 1.0, 2.0)), "v": _entry("valid", (1, 3.0, 4.0)),
                             "x": _entry("test", (2, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    warnings = [p.message for p in check_dataset(_config(tmp_path)).warnings]
    assert "no videos in split 'val'; the annotations name a subset 'valid' (1 video) that no split takes: " \
        "--set data.val_split=valid?" in warnings
    document["database"]["v"]["subset"] = "test"  # nothing left to suggest
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    assert "no videos in split 'val'" in [p.message for p in check_dataset(_config(tmp_path)).warnings]


def test_a_feature_file_named_in_another_unicode_normalisation_is_named_as_such(tmp_path):
    # a file copied from macOS keeps its name in NFD, the annotations hold NFC: "feature file missing (extract
    # features for this video)" beside "no entry in the annotations", two paths that print the same
    import unicodedata

    nfc = unicodedata.normalize("NFC", "café_01")
    document = {"classes": ["c0", "c1", "c2"], "database": {nfc: _entry("training", (0, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", unicodedata.normalize("NFD", nfc))
    errors = [p.message for p in check_dataset(_config(tmp_path)).errors]
    assert any(message.startswith("feature file missing ('cafe\\u0301_01.npy' is there, a name that reads the same "
                                  "(the two differ only in Unicode normalisation") for message in errors), errors


def test_a_video_id_with_a_space_at_its_end_names_the_feature_file_of_the_id_without(tmp_path):
    # `"v1 "` in the annotations, `v1.npy` extracted: "feature file missing" of `v1 .npy` beside "no entry in the
    # annotations" of `v1.npy`, and nothing said the two were one video
    document = {"classes": ["c0", "c1", "c2"], "database": {"v1 ": _entry("training", (0, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "v1")
    errors = [p.message for p in check_dataset(_config(tmp_path)).errors]
    assert ("feature file missing ('v1.npy' is there, a name that reads the same (the two differ only in whitespace "
            "at the start or end of the name: 'v1 .npy' and 'v1.npy', which print alike): rename the file, or the "
            "video id, to one spelling)") in errors, errors


def test_feature_files_of_two_recipes_in_one_folder_are_an_error(tmp_path):
    # the same shape, another meaning: features of other weights mixed into a training folder
    document = {"classes": ["c0", "c1", "c2"],
                "database": {"a": _entry("training", (0, 1.0, 2.0)), "b": _entry("training", (1, 3.0, 4.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "a", weights_sha256="1" * 64)
    _features(tmp_path / "feats", "b", weights_sha256="2" * 64)
    [mixed] = [p for p in check_dataset(_config(tmp_path)).errors if "different recipes" in p.message]
    assert mixed.where == str(tmp_path / "feats")
    assert f"{tmp_path / 'feats' / 'a.npy'} with backbone 'test', weights sha256 {'1' * 64}" in mixed.message
    assert f"{tmp_path / 'feats' / 'b.npy'} with 'test', {'2' * 64}, None; extract every video" in mixed.message
    _features(tmp_path / "feats", "b", weights_sha256="1" * 64)
    assert not [p for p in check_dataset(_config(tmp_path)).errors if "different recipes" in p.message]


def test_a_class_with_instances_elsewhere_but_none_in_training_is_a_warning(tmp_path):
    # a class relabelled away in train but present in test: "Problems: 0 error(s), 0 warning(s)" before
    document = {"classes": ["c0", "c1", "c2"], "database": {
        "t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 4.0)),
        "v": _entry("validation", (0, 1.0, 2.0), (2, 3.0, 4.0)),
        "s": _entry("testing", (2, 1.0, 2.0), (2, 5.0, 6.0), (1, 8.0, 9.0)),
    }}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("t", "v", "s"):
        _features(tmp_path / "feats", video_id)
    report = check_dataset(_config(tmp_path))
    assert not report.errors
    assert [p.message for p in report.warnings] == [
        "class 'c2' has no instance in the training split 'train' (1 in 'val', 2 in 'test'): the network cannot "
        "learn it, and its F1 and AP there are 0"]
    # a class in no split at all (a class list longer than the labels used), and THUMOS-style data trained on
    # "validation" with val_split left at it: both passed with no word
    document["classes"].append("c3")
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    config = _config(tmp_path)
    config.model.num_classes = 4
    config.data.train_split = config.data.val_split = "val"  # what `validation` in a config file is read as
    warnings = [(p.where, p.message) for p in check_dataset(config).warnings]
    assert ("config [data.val_split]", "'val' is also the training split (data.train_split): it chooses the checkpoint "
            "and tunes the score threshold on the videos the network is trained on; set data.val_split to a split of "
            "other videos") in warnings
    assert any("class 'c3' has no instance in the training split 'val' (nor in any other): the network cannot learn "
               "it, and it is scored nowhere (AP '-', F1 '-' or 0 where something is detected as it: no instance to "
               "find)" in message
               for _, message in warnings)
    # ActionFormer's THUMOS setting: trained on validation, validated on test (the threshold chosen on test)
    config.data.train_split, config.data.val_split = "train", "test"
    warnings = [(p.where, p.message) for p in check_dataset(config).warnings]
    assert ("config [data.val_split]", "'test' is also the test split (data.test_split): the checkpoint and the score "
            "threshold are chosen on the videos evaluate scores, so the test score is optimistic; set data.val_split "
            "to a split of other videos (THUMOS: hold out some of its validation videos)") in warnings


def test_a_warm_up_that_fills_the_run_is_a_warning_naming_the_peak_it_reaches():
    # `--set train.epochs=1` on a config warming up for 2: the rate rose to half of train.lr and never decayed
    assert schedule_problem(15, 2) is None
    assert schedule_problem(1, 2) == (
        "train.warmup_epochs 2 >= train.epochs 1: the learning rate rises for the whole run to 50% of train.lr and "
        "never decays; set config.train.warmup_epochs = 0 for the schedule's cosine decay")
    assert "to 100% of train.lr" in schedule_problem(5, 5)
    assert "set config.train.warmup_epochs = N with N < 5 for" in schedule_problem(5, 5)


def test_a_warm_up_that_fills_the_run_is_fixed_where_its_value_came_from(tmp_path):
    # `train()` from Python was told "set --set train.warmup_epochs=N with N < 1", a command-line flag it cannot pass
    built = Config()
    built.train.epochs, built.train.warmup_epochs = 1, 2
    assert "never decays; set config.train.warmup_epochs = 0 for the schedule's" in schedule_problem(1, 2, built)
    assert "--set" not in schedule_problem(1, 2, built)
    path = tmp_path / "c.yaml"
    path.write_text("base: demo/default.yaml\ntrain:\n  epochs: 3\n  warmup_epochs: 3\n")
    assert schedule_problem(3, 3, load_config(path)).endswith(
        f"never decays; set train.warmup_epochs: N with N < 3 in {path} (or pass --set train.warmup_epochs=N with "
        "N < 3) for the schedule's cosine decay")
    assert schedule_problem(3, 4, load_config(path, ["train.warmup_epochs=4"])).endswith(
        "never decays; pass --set train.warmup_epochs=N with N < 3 instead for the schedule's cosine decay")
    # a config mgrec ships: its file is the installed package's (and the key may be set in its base), not one to edit
    shipped = load_config("demo/fusion.yaml", ["train.epochs=2"])
    assert schedule_problem(2, shipped.train.warmup_epochs, shipped).endswith(
        "never decays; pass --set train.warmup_epochs=N with N < 2 for the schedule's cosine decay")


def _train_and_val_document() -> dict:
    """Annotations of a training and a validation video with one instance of each class."""
    return {"classes": ["c0", "c1", "c2"], "database": {
        "t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 4.0), (2, 5.0, 6.0)),
        "v": _entry("validation", (0, 1.0, 2.0), (1, 3.0, 4.0), (2, 5.0, 6.0)),
    }}


def _write_train_and_val(tmp_path, document: dict | None = None, **features) -> None:
    """`document` (default `_train_and_val_document()`) as tmp_path/ann.json, and each of its two videos' features in
    tmp_path/feats (`features`: `_features`' settings)."""
    document = _train_and_val_document() if document is None else document
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("t", "v"):
        _features(tmp_path / "feats", video_id, **features)


def test_a_split_left_empty_to_go_without_it_is_no_split(tmp_path):
    """`data.val_split: ''` is how a config trains without validation (what `train` itself advises), yet data check
    warned `no videos in split ''` and printed an empty column for it. An empty val or test split is now no split;
    the training split is always one (an empty one is still an error)."""
    document = _train_and_val_document()
    document["database"]["v"]["subset"] = "testing"
    _write_train_and_val(tmp_path, document)
    config = _config(tmp_path)
    config.data.val_split = ""
    report = check_dataset(config)
    assert report.problems == []
    assert list(report.counts_per_split) == list(report.videos_per_split) == ["train", "test"]
    config.data.test_split = ""
    assert list(check_dataset(config).videos_per_split) == ["train"]
    config.data.train_split = ""
    assert [p.message.split(";")[0] for p in check_dataset(config).errors] == ["no videos in split ''"]


def test_data_check_warns_of_a_set_key_the_model_variant_does_not_read(tmp_path):
    from mgrec.config import load_config

    _write_train_and_val(tmp_path)
    (tmp_path / "c.yaml").write_text(f"data: {{annotations: {tmp_path / 'ann.json'}, features: {tmp_path / 'feats'}, "
                                     f"stride: {STRIDE}, window: {WINDOW}, feature_dim: {DIM}}}\n"
                                     "model: {num_classes: 3}\n", encoding="utf-8")
    config = load_config(tmp_path / "c.yaml", ["model.transformer_window=9"])
    assert [(p.where, p.message) for p in check_dataset(config).warnings if "changes nothing" in p.message] == [
        ("--set model.transformer_window=9 [model.transformer_window]",
         "model.variant mgrec does not read it (only actionformer does): it changes nothing")]


def test_a_setting_given_with_set_is_placed_at_the_set_item(tmp_path):
    """`mgrec data check c.yaml --set train.warmup_epochs=500` warned `c.yaml [train.warmup_epochs]: ... pass --set
    train.warmup_epochs=N with N < 15 instead`: the place named the file, which did not set it (as for data.val_split,
    data.test_split and data.fps), where data.annotations and postprocess.min_duration named the `--set` item. Each
    setting data check names is now placed where its value came from."""
    from mgrec.config import load_config

    document = _train_and_val_document()
    document["database"]["t"]["fps"] = 2 * FPS
    _write_train_and_val(tmp_path, document)
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{annotations: {tmp_path / 'ann.json'}, features: {tmp_path / 'feats'}, stride: {STRIDE}, "
                    f"window: {WINDOW}, feature_dim: {DIM}}}\nmodel: {{num_classes: 3}}\n", encoding="utf-8")
    overrides = ["train.epochs=2", "train.warmup_epochs=5", "data.val_split=train", f"data.fps={FPS:g}"]
    wheres = {p.where for p in check_dataset(load_config(path, overrides), source=str(path)).warnings}
    assert {"--set train.warmup_epochs=5 [train.warmup_epochs]", "--set data.val_split=train [data.val_split]",
            f"--set data.fps={FPS:g} [data.fps]"} <= wheres
    path.write_text(path.read_text() + "train: {epochs: 2, warmup_epochs: 5}\n", encoding="utf-8")
    wheres = {p.where for p in check_dataset(load_config(path), source=str(path)).warnings}
    assert f"{path} [train.warmup_epochs]" in wheres  # the file's own value: the file


def test_a_video_id_too_long_for_its_feature_file_name_is_that_videos_error(tmp_path):
    """A video id of 253 characters passes as an id, but `<id>.npy` is 257 bytes, more than a file name may have:
    data check stopped there with one error, `video id 'xxx...' (257 characters) is longer than 255 bytes` (the
    file name's length, said of the id), and reported nothing else. It is now an error of that video (which
    data.drop_bad_videos can leave out), the rest of the data checked, the name it makes named as the file name."""
    long_id = "x" * 253
    document = _train_and_val_document()
    document["database"][long_id] = _entry("training", (0, 1.0, 2.0))
    _write_train_and_val(tmp_path, document)
    (tmp_path / "feats" / "v.npy").unlink()
    problems = check_dataset(_config(tmp_path)).errors
    assert [(p.where, p.video_id) for p in problems] == [(str(tmp_path / "feats"), long_id),
                                                          (str(tmp_path / "feats" / "v.npy"), "v")]
    assert problems[0].message.startswith("feature file name 'xxx") and "(257 characters) is longer than 255 bytes" \
        in problems[0].message


def test_data_check_says_when_the_warm_up_fills_the_run(tmp_path):
    _write_train_and_val(tmp_path)
    config = _config(tmp_path)
    config.train.epochs, config.train.warmup_epochs = 1, 2
    assert ("config [train.warmup_epochs]", schedule_problem(1, 2)) in [(p.where, p.message)
                                                                       for p in check_dataset(config).warnings]
    assert any(p.message.endswith("set config.train.warmup_epochs = 0 for the schedule's cosine decay")
               for p in check_dataset(config).warnings)  # a config built in code: no --set to pass
    config.train.epochs = 3
    assert not any("warmup" in p.where for p in check_dataset(config).warnings)


def test_data_check_counts_the_training_instances_no_pyramid_point_can_learn(tmp_path):
    # Instances within one feature step got no positive point (the assignment's strict centre test) and were
    # dropped from training; `data check` said "0 error(s)".
    step = STRIDE / FPS  # seconds per feature step
    document = {"classes": ["c0", "c1", "c2"], "database": {
        "t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 3.0 + 0.5 * step), (2, 5.0, 6.0), (2, 8.0, 8.0 + 0.9 * step)),
        "v": _entry("validation", (0, 1.0, 2.0), (1, 3.0, 3.0 + 0.1 * step), (2, 5.0, 6.0)),
    }}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("t", "v"):
        _features(tmp_path / "feats", video_id)
    warnings = [p.message for p in check_dataset(_config(tmp_path)).warnings if "pyramid point" in p.message]
    assert warnings == [f"2 of the 4 training instances are too short for any pyramid point to learn (no feature step "
                        f"lies inside them), first 't' [3.000, {3.0 + 0.5 * step:.3f}] s (0.50 steps); training never "
                        "sees them: extract the features at a finer stride (data.stride), or check their times"]


def test_data_check_names_the_instances_postprocess_min_duration_drops(tmp_path):
    # `postprocess.min_duration: 1e9` (or 50, meant as frames or milliseconds): decoding dropped every candidate
    # not longer than it, so training selected its checkpoint on a val F1 of 0 at a "tuned" threshold of 0, and
    # `data check` said "0 error(s)"
    document = {"classes": ["c0", "c1", "c2"], "database": {
        "t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 3.8)),  # 2.5 and 2 steps (0.4 s each)
        "v": _entry("validation", (2, 5.0, 6.2)),  # 3 steps
    }}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("t", "v"):
        _features(tmp_path / "feats", video_id)
    config = _config(tmp_path)
    report = check_dataset(config)
    assert not [p for p in report.errors + report.warnings if "min_duration" in p.message]
    config.postprocess.min_duration = 2.5
    warnings = [p.message for p in check_dataset(config).warnings if "min_duration" in p.message]
    assert len(warnings) == 1 and warnings[0].startswith(
        "2 of the 3 annotated instances are not longer than postprocess.min_duration, 2.5 feature steps (the longest "
        "of them 't' [1.000, 2.000] s, 2.50 steps): detection drops every candidate this short")
    config.postprocess.min_duration = 1e9
    errors = [p.message for p in check_dataset(config).errors if "min_duration" in p.message]
    assert len(errors) == 1 and errors[0].startswith("every one of the 3 annotated instances is not longer than "
                                                     "postprocess.min_duration, 1e+09 feature steps")


def test_a_duration_that_disagrees_with_the_frame_count_is_an_error(tmp_path):
    """The instance checks read duration, the feature checks num_frames: duration 1e12 hid an instance at
    5000 s (0 errors); a disagreement within a second or 2 % (metadata rounding) is not one."""
    (tmp_path / "feats").mkdir()
    frames = int(round(20.0 * FPS))
    entries = {"wrong": {**_entry("training", (0, 5000.0, 5001.0)), "duration": 1e12, "num_frames": frames},
               "rounded": {**_entry("training", (0, 1.0, 2.0)), "duration": 20.0 + 0.5, "num_frames": frames}}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": entries}))
    for video_id in entries:
        _features(tmp_path / "feats", video_id)
    report = check_dataset(_config(tmp_path))
    messages = [(p.video_id, p.message) for p in report.errors]
    assert ("wrong", f"duration 1e+12 s disagrees with num_frames {frames} at {FPS:g} fps (20 s); correct the wrong "
                     "one") in messages
    assert not any(video_id == "rounded" for video_id, _ in messages)


def test_an_activitynet_file_without_fps_or_label_ids_is_read_with_the_configs_fps(tmp_path):
    # ActivityNet 1.3's layout: no fps (ActionFormer's default_fps gives it), labels without ids
    database = {"t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 4.0)), "v": _entry("validation", (2, 1.0, 2.0)),
                "s": _entry("testing", (1, 5.0, 6.0), (2, 8.0, 9.0))}
    for entry in database.values():
        del entry["fps"]
        for item in entry["annotations"]:
            del item["label_id"]
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in database:
        _features(tmp_path / "feats", video_id)
    config = _config(tmp_path)
    missing = {p.where for p in check_dataset(config).errors if "missing key 'fps'" in p.message}
    assert missing == {f"{tmp_path / 'ann.json'} [database.{video_id}]" for video_id in database}
    config.data.fps = FPS
    report = check_dataset(config)
    assert not report.errors and report.classes == ["c0", "c1", "c2"]
    # ActivityNet's testing split: thousands of unlabelled videos, one warning for them all (a line each before)
    document = json.loads((tmp_path / "ann.json").read_text(encoding="utf-8"))
    for index in range(4):
        document["database"][f"u{index}"] = {"subset": "testing", "duration": 20.0, "annotations": []}
        _features(tmp_path / "feats", f"u{index}")
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    report = check_dataset(config)
    assert not report.errors
    assert [(p.where, p.message) for p in report.warnings if "no annotated instances" in p.message] == [
        (str(tmp_path / "ann.json"), "4 of the 5 videos of split 'test' have no annotated instances (first: u0, u1, "
                                     "u2)")]
    # a training video without gestures anchors no crop: said, since it is not drawn at all
    document["database"]["u0"]["subset"] = "training"
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    [quiet] = [p for p in check_dataset(config).warnings if p.video_id == "u0"]
    assert quiet.message == ("video has no annotated instances: training draws no crop from it (crops are anchored "
                             "on gestures; background is learnt around the gestures of the other videos)")
    (tmp_path / "feats" / "s.npy").rename(tmp_path / "feats" / "ss.npy")  # another video's name ending alike: no hint
    [missing] = check_dataset(config).errors
    assert missing.message == "feature file missing (extract features for this video)"
    np.savez(tmp_path / "feats" / "s.npz", feats=np.zeros((STEPS, DIM), np.float32))  # under data.feature_ext .npy
    [missing] = check_dataset(config).errors
    assert missing.message == "feature file missing (s.npz is there: set data.feature_ext: .npz)"
    (tmp_path / "feats" / "s.npz").unlink()
    (tmp_path / "feats" / "ss.npy").rename(tmp_path / "feats" / "v_s.npy")  # ActionFormer's ActivityNet file names
    [missing] = check_dataset(config).errors
    assert (missing.where, missing.message) == (str(tmp_path / "feats" / "s.npy"), "feature file missing (v_s.npy is "
                                                "there: set data.feature_prefix: 'v_' to read files named "
                                                "<prefix><video_id>.npy)")
    (tmp_path / "feats" / "v_s.npy").rename(tmp_path / "feats" / "imu_feat_s.npy")  # a prefix with a '_' of its own
    [missing] = check_dataset(config).errors
    assert "imu_feat_s.npy is there: set data.feature_prefix: 'imu_feat_'" in missing.message
    (tmp_path / "feats" / "imu_feat_s.npy").rename(tmp_path / "feats" / "s_i3d.npy")  # OpenTAD's LoadFeats suffix
    [missing] = check_dataset(config).errors
    assert missing.message == ("feature file missing (s_i3d.npy is there: mgrec reads <prefix><video_id>.npy, nothing "
                               "between the id and the ending; rename the files without '_i3d' (in bash: for f in "
                               '*_i3d.npy; do mv "$f" "${f%_i3d.npy}.npy"; done))')
    (tmp_path / "feats" / "s_i3d.npy").rename(tmp_path / "feats" / "v_s.npy")
    # ActionFormer's file_prefix: every file named v_<id>.npy, read as such, none an orphan
    for path in (tmp_path / "feats").glob("*.npy"):
        if not path.name.startswith("v_"):
            path.rename(path.with_name("v_" + path.name))
            path.with_suffix(".json").rename(path.with_name("v_" + path.stem + ".json"))
    config.data.feature_prefix = "v_"
    report = check_dataset(config)
    assert not report.errors and not [p for p in report.warnings if "no entry in the annotations" in p.message]


def test_a_feature_file_that_is_a_link_to_a_file_gone_or_a_pipe_is_not_said_to_be_missing(tmp_path):
    """Features on a drive no longer mounted (links to them), or a pipe under a video's name: `feature file missing
    (extract features for this video)`, which sent the user extracting what is there."""
    database = {"t": _entry("training", (0, 1.0, 2.0), (1, 3.0, 4.0), (2, 5.0, 6.0)),
                "v": _entry("validation", (0, 1.0, 2.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "t")
    (tmp_path / "feats" / "v.npy").symlink_to("/mnt/gone/v.npy")
    [unread] = check_dataset(_config(tmp_path)).errors
    assert (unread.where, unread.message) == (str(tmp_path / "feats" / "v.npy"), (
        "feature file cannot be read: a symbolic link to /mnt/gone/v.npy, which does not exist (restore it, or "
        "extract features for this video)"))
    (tmp_path / "feats" / "v.npy").unlink()
    os.mkfifo(tmp_path / "feats" / "v.npy")
    [unread] = check_dataset(_config(tmp_path)).errors
    assert unread.message.startswith("feature file cannot be read: a named pipe, not a feature file")
    (tmp_path / "feats" / "v.npy").unlink()
    [missing] = check_dataset(_config(tmp_path)).errors  # nothing there: missing, as before
    assert missing.message == "feature file missing (extract features for this video)"


def test_many_instances_with_one_problem_are_listed_a_few_then_counted(tmp_path):
    # a million duplicate segments in one video printed a million warnings (193 MB)
    segments = [(0, 1.0, 2.0)] * 9 + [(1, 19.5, 22.0)] * 7  # 8 duplicates; 7 ending after the video (6 duplicates)
    database = {"v": _entry("training", *segments), "w": _entry("validation", (0, 1.0, 2.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in database:
        _features(tmp_path / "feats", video_id)
    warnings = [p.message for p in check_dataset(_config(tmp_path)).warnings if p.video_id == "v"]
    duplicates = [m for m in warnings if m.startswith("duplicate ground truth")]
    late = [m for m in warnings if m.startswith("instance ends at")]
    assert len(duplicates) == 5 and len(late) == 5
    counted = [m for m in warnings if m.startswith("and ")]
    assert sorted(m.split(" instance(s)")[0] for m in counted) == ["and 2 more", "and 9 more"]
    assert any("like " in m and ": duplicate ground truth" in m for m in counted)


def test_one_kind_of_instance_problem_in_many_videos_is_printed_once_with_the_count(tmp_path):
    # 8000 videos, each with one gesture labelled twice (overlapping), printed one line each: 130 lines ahead of
    # `mgrec score`'s table, 530 in data check; each message names its own instance, so none were said alike
    database = {f"v{index}": _entry("training", (0, 1.0, 2.0), (0, 1.1, 2.1), (1, 5.0, 6.0)) for index in range(8)}
    database["w"] = _entry("validation", (1, 19.5, 22.0), (2, 3.0, 4.0))  # one instance problem of another kind
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in database:
        _features(tmp_path / "feats", video_id)
    report = check_dataset(_config(tmp_path))
    assert sum("overlaps" in p.message for p in report.warnings) == 8  # every problem kept: counts go by them
    printed = [(problem.message, videos) for problem, videos in grouped_problems(report.warnings)]
    overlaps = [(message, videos) for message, videos in printed if "labelled twice" in message]
    assert len(overlaps) == 1 and overlaps[0][1] == [f"v{index}" for index in range(8)]
    assert sum(message.startswith("instance ends at") for message, _ in printed) == 1


def test_a_config_fps_other_than_the_annotations_is_a_warning_with_the_drift(tmp_path):
    # smg/*.yaml's data.fps 28 beside `_data.csv` files of 30 fps: labels drifted 7 % against the features (val F1
    # 93 -> 13 in a helper's run) and `data check` said nothing
    document = _train_and_val_document()
    document["database"]["v"]["fps"] = 12.0
    _write_train_and_val(tmp_path, document)
    config = _config(tmp_path)
    config.data.fps = FPS
    warnings = [(p.where, p.message) for p in check_dataset(config).warnings if p.where.endswith("[data.fps]")]
    assert warnings == [("config [data.fps]", f"{FPS:g} places the features of 1 video(s) whose annotations give "
                         f"another fps (first 'v': 12, {tmp_path / 'ann.json'} [database.v]): unless the features were "
                         f"made from the videos resampled to {FPS:g} fps, their labels drift against them by up to "
                         "20.0%; --set data.fps=null takes each video's own")]
    config.data.fps = None  # each video's own: nothing to say
    assert not [p for p in check_dataset(config).warnings if p.where.endswith("[data.fps]")]


def test_a_sidecar_frame_count_that_fits_neither_its_file_nor_the_annotations_is_an_error(tmp_path):
    # `frames: 3000` beside a file of 818 steps and a video of 3286 frames passed; detect then wrote SMG rows past
    # the video's end
    document = _train_and_val_document()
    document["database"]["t"]["num_frames"] = 200
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "t", frames=100)  # 22 windows by its frames; the file holds 47
    _features(tmp_path / "feats", "v", frames=210)  # 49 windows: 2 steps (0.8 s) off, a padded extraction is fine
    errors = [(p.where, p.message) for p in check_dataset(_config(tmp_path)).errors]
    sidecar = str(tmp_path / "feats" / "t.json")
    assert (sidecar, "frames 100 make 22 windows (stride 4, window 16), but t.npy holds 47 (off by +10.0 s): the "
                     "sidecar of another video, or a wrong frame count?") in errors
    assert (sidecar, f"frames 100, but {tmp_path / 'ann.json'} [database.t] gives the video 200 frames: the sidecar "
                     "of another video, or a wrong frame count?") in errors
    assert not [e for e in errors if "v.json" in e[0]]


def test_features_of_another_length_are_measured_against_the_frame_count_they_were_expected_from(tmp_path):
    """An entry whose frame count and duration disagree (an error of its own) said `46 feature steps cover 7.0 s but
    the video lasts 7.0 s (100 steps expected ...)`: the expected count came from the frames, the length said from
    the duration. Both figures now come from the frame count."""
    config = _config(tmp_path)
    config.data.stride, config.data.window, config.data.fps = 4, 16, 28.0
    (tmp_path / "feats").mkdir()
    annotations = {"v": {"subset": "training", "fps": 28.0, "duration": 20.0, "num_frames": 1400,  # 50 s of frames
                         "annotations": [{"label": "c0", "label_id": 0, "segment": [3.0, 9.0]}]}}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": annotations}))
    np.save(tmp_path / "feats" / "v.npy", np.zeros((137, DIM), np.float32))  # 20 s of steps
    drift = [p.message for p in check_dataset(config).errors if "feature steps cover" in p.message]
    assert drift and "but the video lasts 1400 frames (50.0 s at 28 fps) (347 steps expected at fps 28" in drift[0]


def test_a_frame_count_at_the_videos_own_fps_is_measured_at_the_config_fps(tmp_path):
    """An entry of 20 s at 20 fps (num_frames 400) under data.fps 10, its features made from the video resampled to 10
    fps (47 steps, what `data check`'s fps warning asks for): its 400 frames were counted at 10 fps, 40 s, and the
    features called 20 s short (an error; training refused), where the same entry without num_frames passed. The
    frame count is now turned into the config's fps, as the duration is."""
    config = _config(tmp_path)
    config.data.fps = FPS
    (tmp_path / "feats").mkdir()
    entry = {**_entry("training", (0, 1.0, 3.0)), "fps": 2 * FPS, "num_frames": 400}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": {"v": entry}}))
    _features(tmp_path / "feats", "v")  # 47 steps at 10 fps: 20 s
    assert [p.message for p in check_dataset(config).errors] == []
    _features(tmp_path / "feats", "v", steps=30)  # 12 s: short by 8 s, said in the video's own frames
    drift = [p.message for p in check_dataset(config).errors if "feature steps cover" in p.message]
    assert drift == ["30 feature steps cover 13.2 s but the video lasts 400 frames (20.0 s at 20 fps) (47 steps "
                     "expected at fps 10, stride 4, window 16); off by -6.8 s: wrong fps or stride, or an incomplete "
                     "extraction?"]


@pytest.mark.parametrize("extra_steps, refused", [(1, False), (2, False), (3, True), (-2, False), (-3, True)])
def test_features_may_stray_from_the_duration_by_two_steps_where_a_step_is_longer_than_the_tolerance(
        tmp_path, extra_steps, refused):
    """ActionFormer's ActivityNet features (stride 16 at 15 fps: 1.07-s steps) keep the partial last window, one
    step more than complete windows: over the 1.0-s tolerance, so every such video was an error and training
    refused to start. Two steps of slack where they last longer than the tolerance; three are still an error."""
    config = _config(tmp_path)
    config.data.stride, config.data.window, config.data.fps = 16, 16, 15.0
    (tmp_path / "feats").mkdir()
    annotations = {"v": {"subset": "training", "fps": 15.0, "duration": 64.0,  # 960 frames, 60 complete windows
                         "annotations": [{"label": "c0", "label_id": 0, "segment": [3.0, 9.0]}]}}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": annotations}))
    np.save(tmp_path / "feats" / "v.npy", np.zeros((60 + extra_steps, DIM), np.float32))
    messages = [p.message for p in check_dataset(config).errors]
    assert any("feature steps cover" in m for m in messages) == refused, messages


def _videos_in_splits(tmp_path, subsets: dict[str, str], ext: str = ".npy") -> Config:
    """One 20-s video of each id in its subset, each with its own features (`ext`) and an instance."""
    database = {video_id: _entry(subset, (0, 2.0, 3.0)) for video_id, subset in subsets.items()}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": database}),
                                       encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in subsets:
        _features(tmp_path / "feats", video_id, ext=ext)
    config = _config(tmp_path)
    config.data.feature_ext = ext
    return config


def _twin(folder, video_id, of, how, ext=".npy"):
    """Video `video_id`'s features made `of`'s again: a copy (another container's where it is .npz: written
    anew), a symbolic link to its file, or the video extracted again in another runtime (rounding apart)."""
    source, target = folder / f"{of}{ext}", folder / f"{video_id}{ext}"
    target.unlink()
    if how == "link":
        target.symlink_to(source)
    elif how == "extracted again":
        values = np.load(source)
        rounding = 1 + 2e-6 * np.random.default_rng(0).standard_normal(values.shape)
        np.save(target, (values * rounding).astype(np.float32))
    elif ext == ".npz":  # the same values, stored uncompressed: other bytes on disk
        np.savez(target, feats=np.load(source)["feats"])
    else:
        shutil.copy(source, target)


def test_video_ids_whose_feature_files_are_one_name_elsewhere_or_not_windows_names_are_said(tmp_path):
    """Ids whose feature files are one name where case and Unicode normalisation are not told apart (macOS, Windows,
    exFAT), or names Windows cannot hold, passed data check in silence, though `mgrec extract` and `detect --format
    smg` refuse or warn of them (`check_output_names`, whose rule data check now follows): two files here, a warning
    (copied, one replaces the other); one file here, an error (one video read with the other's features)."""
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    config = _videos_in_splits(tmp_path, {"Test_subject02_0": "training", "test_subject02_0": "training",
                                          nfc: "training", nfd: "training", "CON": "training", "v": "validation"})
    feats = tmp_path / "feats"
    report = check_dataset(config)
    assert not report.errors
    said = {(p.video_id, p.message.split(":")[0]) for p in report.warnings if "feature files" in p.message or
            "Windows" in p.message}
    assert said == {("test_subject02_0", "videos 'Test_subject02_0' and 'test_subject02_0' have the feature files "
                     "'Test_subject02_0.npy' and 'test_subject02_0.npy', one name where case and Unicode "
                     "normalisation are not told apart (macOS, Windows, FAT, exFAT)"),
                    (nfc, "videos 'cafe\\u0301' and 'caf\\xe9' have the feature files 'cafe\\u0301.npy' and "
                          "'caf\\xe9.npy', one name where case and Unicode normalisation are not told apart (macOS, "
                          "Windows, FAT, exFAT)"),
                    ("CON", "'CON' is the name of a device on Windows")}
    # what the writers do with the two, every one named (detect's alone was; stream's and subtitles' refusals not)
    assert ("copied there, one replaces the other, and mgrec extract (feature files), detect and stream --format smg "
            "(label folders) and subtitles refuse the two; rename one of the videos (its entry and its feature files)"
            in next(p.message for p in report.warnings if p.video_id == "test_subject02_0"))
    # one file here, as on a file system that does not tell case apart: an error, whatever the splits
    (feats / "test_subject02_0.npy").unlink()
    (feats / "test_subject02_0.npy").hardlink_to(feats / "Test_subject02_0.npy")
    [error] = [p for p in check_dataset(config).errors if "one file here" in p.message]
    assert error.video_id == "test_subject02_0" and error.where == str(feats / "test_subject02_0.npy")
    # a file of the folder that is no video's, alike a video's: copied, one replaces the other
    (feats / "V.npy").write_bytes((feats / "v.npy").read_bytes())
    assert [p.message for p in check_dataset(config).warnings if p.where == str(feats / "V.npy") and p.video_id ==
            "v"] == ["'V.npy' and 'v.npy' are one name where case and Unicode normalisation are not told apart (macOS, "
                     "Windows, FAT, exFAT): copied there, one replaces the other (v.npy holds the features of video "
                     "'v'); rename or remove it"]


@pytest.mark.parametrize("how, ext", [("copy", ".npy"), ("copy", ".npz"), ("link", ".npy"),
                                      ("extracted again", ".npy")])
def test_a_test_video_copied_into_training_under_another_id_is_an_error_naming_both(tmp_path, how, ext):
    # a test video's features copied into training under another id (its entry duplicated as "train") passed with
    # "0 error(s), 0 warning(s)", and training scored the model on a video it trained on
    config = _videos_in_splits(tmp_path, {"a": "training", "copy": "training", "v": "validation", "t": "testing"},
                               ext)
    assert not check_dataset(config).errors  # distinct features, some of one shape: nothing said
    feats = tmp_path / "feats"
    _twin(feats, "copy", "t", how, ext)
    report = check_dataset(config)
    [error] = report.errors
    same = {"link": "are one file", "copy": "hold the same features",
            "extracted again": "hold the same features up to float rounding"}[how]
    assert error.where == str(feats / f"copy{ext}") and error.video_id == "copy"
    assert error.message == (f"copy (split train) and t (split test) {same} ({feats / f'copy{ext}'}, "
                             f"{feats / f't{ext}'}): a video in two splits scores the model on what it trained on; "
                             "remove one of them from the annotations")
    assert not [p for p in report.warnings if "remove one of them" in p.message]
    # data.drop_bad_videos leaves the copy out of training and keeps the test split whole
    assert list(videos_to_drop(report)) == ["copy"] and report.dataset_errors == []


def test_a_val_video_that_is_a_test_video_is_an_error_tied_to_the_val_video(tmp_path):
    config = _videos_in_splits(tmp_path, {"a": "training", "v": "validation", "t": "testing"})
    _twin(tmp_path / "feats", "v", "t", "copy")
    [error] = check_dataset(config).errors
    assert error.video_id == "v"
    assert error.message.startswith("v (split val) and t (split test) hold the same features (")
    assert "scores the model on what it was selected on" in error.message


def test_one_video_twice_within_a_split_is_a_warning(tmp_path):
    # twice its weight in training, or counted twice in a score: worth a look, not a leak
    config = _videos_in_splits(tmp_path, {"a": "training", "a2": "training", "v": "validation", "t": "testing",
                                          "t2": "testing"})
    _twin(tmp_path / "feats", "a2", "a", "copy")
    _twin(tmp_path / "feats", "t2", "t", "link")
    report = check_dataset(config)
    assert not report.errors
    said = {p.video_id: (p.where, p.message) for p in report.warnings if "remove one of them" in p.message}
    feats = tmp_path / "feats"
    assert said == {
        "a2": (str(feats / "a2.npy"), f"a (split train) and a2 (split train) hold the same features "
                                      f"({feats / 'a.npy'}, {feats / 'a2.npy'}): the video is trained on twice (twice "
                                      "its weight); remove one of them from the annotations"),
        "t2": (str(feats / "t2.npy"), f"t (split test) and t2 (split test) are one file ({feats / 't.npy'}, "
                                      f"{feats / 't2.npy'}): the video counts twice in the test scores; remove one of "
                                      "them from the annotations"),
    }


def test_a_video_twice_across_splits_is_found_in_every_input_stream(tmp_path):
    # data.streams: each stream's folder is compared on its own (one error per stream that repeats the video)
    config = _videos_in_splits(tmp_path, {"a": "training", "copy": "training", "v": "validation", "t": "testing"})
    (tmp_path / "feats").rename(tmp_path / "rgb")
    (tmp_path / "pose").mkdir()
    for video_id in ("a", "copy", "v", "t"):
        _features(tmp_path / "pose", video_id, dim=4)
    config.data = DataConfig(annotations=config.data.annotations, streams=[
        StreamConfig(name="rgb", features=str(tmp_path / "rgb"), feature_dim=DIM, stride=STRIDE, window=WINDOW),
        StreamConfig(name="pose", features=str(tmp_path / "pose"), feature_dim=4, stride=STRIDE, window=WINDOW)])
    config = Config(data=config.data, model=config.model)  # derives data.feature_dim from the streams
    assert not check_dataset(config).errors
    _twin(tmp_path / "pose", "copy", "t", "copy")
    [error] = check_dataset(config).errors
    assert error.where == str(tmp_path / "pose" / "copy.npy")
    assert "copy (split train) and t (split test) hold the same features" in error.message
    _twin(tmp_path / "rgb", "copy", "t", "copy")
    assert sorted(p.where for p in check_dataset(config).errors) == [str(tmp_path / "pose" / "copy.npy"),
                                                                     str(tmp_path / "rgb" / "copy.npy")]


def test_instances_of_one_class_overlapping_by_more_than_half_are_a_warning_with_their_tiou(tmp_path):
    # an SMG row copied with shifted frames (5,20,70 then 5,25,72) passed unsaid: only exact copies were duplicates
    database = {"v": _entry("training",
                            (0, 2.0, 6.0), (0, 2.5, 6.2),  # tIoU 3.5 / 4.2 = 0.83: one gesture twice
                            (1, 2.0, 6.0),  # another class over the same time: a gesture beside another
                            (2, 10.0, 12.0), (2, 11.5, 13.5))}  # one class, tIoU 0.5 / 3.5: one gesture after another
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": database}),
                                       encoding="utf-8")
    (tmp_path / "feats").mkdir()
    _features(tmp_path / "feats", "v")
    report = check_dataset(_config(tmp_path))
    overlaps = [p for p in report.problems if "of the same class" in p.message]
    ann = tmp_path / "ann.json"
    assert [(p.severity, p.where, p.video_id) for p in overlaps] == [
        ("warning", f"{ann} [database.v.annotations[1]]", "v")]
    assert overlaps[0].message.startswith("overlaps [database.v.annotations[0]] of the same class 'c0' in video 'v': "
                                          "[2.000, 6.000] s and [2.500, 6.200] s, tIoU 0.83 > 0.5: one gesture "
                                          "labelled twice")
    assert report.errors == []


def test_one_problem_of_many_videos_is_one_line_with_the_count_and_the_settings_that_fix_it_are_suggested(tmp_path):
    # SMG's config beside 128-dim features at each video's 50 fps: 72 error lines, 2 per video, and the suggested
    # settings left out data.feature_dim and data.fps, the two that fix them all
    videos = [f"t{i}" for i in range(6)]
    database = {v: _entry("training", (0, 2.0, 3.0)) for v in videos} | {"w": _entry("validation", (1, 2.0, 3.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": database}),
                                       encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in database:
        _features(tmp_path / "feats", video_id, dim=6)
    (tmp_path / "feats" / "w.json").unlink()  # one video's problems differ: without a sidecar, no fps to disagree
    config = _config(tmp_path)
    config.data.fps = 12.0
    report = check_dataset(config)
    assert len(report.errors) == 7 + 6  # every file's width, every sidecar's dim and fps: each still a problem
    text = report.format()
    assert "Problems: 13 error(s)" in text
    problem_lines = [line for line in text.splitlines() if line.startswith(("  ERROR", "  WARNING"))]
    feats = tmp_path / "feats"
    assert (f"  ERROR   {feats / 't0.npy'}, and the same for 6 other videos ('t1', 't2', 't3', ...; 7 in all): "
            "expected feature dimension 8 (data.feature_dim), found 6") in problem_lines
    assert sum(line.startswith(f"  ERROR   {feats / 't0.json'}, and the same for 5 other videos ('t1', 't2', 't3', "
                               "...; 6 in all): features do not match the config: dim is 6") for line in problem_lines)
    assert not any(f"{feats / 't1.npy'}" in line or f"{feats / 't1.json'}" in line for line in problem_lines)
    assert report.suggestions["data.feature_dim"] == 6
    assert report.suggestions["data.fps"] is None  # every sidecar gives its video's fps in the annotations
    overrides = [shlex.split(line.strip())[1] for line in text.splitlines() if line.startswith("  --set ")]
    assert overrides[:2] == ["data.feature_dim=6", "data.fps=null"]
    assert "data.feature_dim and data.fps: what the feature files and sidecars say" in text
    config.data.feature_dim, config.data.fps = 6, None
    fixed = check_dataset(config)
    assert fixed.errors == [] and not {"data.feature_dim", "data.fps"} & set(fixed.suggestions)


def test_sidecars_of_one_fps_other_than_the_annotations_and_the_config_suggest_that_fps(tmp_path):
    _write_train_and_val(tmp_path, fps=2 * FPS)
    config = _config(tmp_path)
    config.data.fps = 12.0
    assert check_dataset(config).suggestions["data.fps"] == 2 * FPS
    _features(tmp_path / "feats", "v", fps=3 * FPS)  # sidecars of two rates: no one setting fixes both
    assert "data.fps" not in check_dataset(config).suggestions


def test_a_data_set_root_given_for_data_features_names_the_subfolder(tmp_path, monkeypatch):
    # --set data.features=~/.cache/mgrec/demo (the data set, not its features/): every video's file was
    # "missing (extract features for this video)"; now the subfolder that holds them is named, once for all
    from tests.test_robustness import tiny_config

    from mgrec.data.synthetic import make_synthetic_dataset

    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "val", "test"))
    config = tiny_config(dataset)
    config.data.features = str(dataset.features.parent)
    errors = check_dataset(config).errors
    assert len(errors) == 3
    assert {p.message for p in errors} == {
        f"feature file missing (the subfolder {dataset.features} holds it: set data.features: {dataset.features})"}
    # a subfolder this user cannot enter (lost+found; root enters all, so asking is made to fail) was a PermissionError
    (dataset.features.parent / "lost+found").mkdir()
    asking = Path.is_file

    def refusing(self):
        if self.parent.name == "lost+found":
            raise PermissionError(13, "Permission denied", str(self))
        return asking(self)

    monkeypatch.setattr(Path, "is_file", refusing)
    assert {p.message for p in check_dataset(config).errors} == {
        f"feature file missing (the subfolder {dataset.features} holds it: set data.features: {dataset.features})"}


def test_the_videos_folder_given_as_the_features_says_so_and_dropping_every_training_video_is_not_offered(tmp_path):
    # `data.features=videos` (the folder of clip.mp4, ...): "feature file missing (extract features for this video)"
    # for each, then "Fix them, or pass --set data.drop_bad_videos=true", which dropped every video and ended in
    # "no videos in the training split 'train'" of a file that has them
    from mgrec.train.data import checked_annotations

    config = _config(tmp_path)
    database = {"a": _entry("training", (0, 1.0, 3.0), (1, 5.0, 7.0), (2, 8.0, 9.0)),
                "b": _entry("validation", (0, 2.0, 3.0), (1, 5.0, 7.0), (2, 8.0, 9.0)),
                "c": _entry("testing", (2, 2.0, 3.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}))
    videos = tmp_path / "videos"
    videos.mkdir()
    for video_id in database:
        (videos / f"{video_id}{'.MP4' if video_id == 'c' else '.mp4'}").write_bytes(b"a video, not decoded here")
    config.data.features = str(videos)
    report = check_dataset(config)
    missing = [p for p in report.errors if "feature file missing" in p.message]
    assert len(missing) == 3 and all(f"the video itself, is there: data.features is the folder of its feature files; "
                                     f"make them with mgrec extract {videos} --out FEATURES" in p.message
                                     for p in missing)
    for drop in (False, True):
        config.data.drop_bad_videos = drop
        with pytest.raises(InputError, match="The one video of the training split 'train' has one: fix "
                                             "them") as refused:
            checked_annotations(config, log=lambda *_: None)
        assert "drop_bad_videos" not in str(refused.value)


def test_files_under_a_prefix_or_an_ending_not_configured_are_one_line_each_for_all_videos(tmp_path):
    # a folder of ActionFormer's `v_<id>.npy` read without data.feature_prefix (or a stream's): a line per video
    # ("v_t0.npy is there: set data.feature_prefix: 'v_'", the file's own name kept them apart) and a line per file
    # ("no entry in the annotations"), 72 lines for the demo's 36 videos, where one setting fixes them all
    videos = [f"t{i}" for i in range(6)]
    database = {v: _entry("training", (0, 2.0, 3.0)) for v in videos} | {"w": _entry("validation", (1, 2.0, 3.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": database}),
                                       encoding="utf-8")
    feats = tmp_path / "feats"
    feats.mkdir()
    for video_id in database:
        _features(feats, "v_" + video_id)
    report = check_dataset(_config(tmp_path))
    assert len(report.errors) == 7 and len(report.warnings) >= 7  # each still a problem: counts, exit code
    lines = [line for line in report.format().splitlines() if line.startswith(("  ERROR", "  WARNING"))]
    assert [line for line in lines if "feature file missing" in line] == [
        f"  ERROR   {feats / 't0.npy'}, and the same for 6 other videos ('t1', 't2', 't3', ...; 7 in all): feature "
        "file missing (v_t0.npy is there: set data.feature_prefix: 'v_' to read files named <prefix><video_id>.npy)"]
    assert [line for line in lines if "no entry in the annotations" in line] == [
        f"  WARNING {feats / 'v_t0.npy'}, and the same for 6 other videos ('v_t1', 'v_t2', 'v_t3', ...; 7 in all): "
        "feature file has no entry in the annotations (not used)"]
    for video_id in database:  # .npz files under the default .npy: one line too
        (feats / f"v_{video_id}.npy").unlink()
        np.savez(feats / f"{video_id}.npz", feats=np.zeros((STEPS, DIM), np.float32))
    lines = [line for line in check_dataset(_config(tmp_path)).format().splitlines() if "feature file missing" in line]
    assert lines == [f"  ERROR   {feats / 't0.npy'}, and the same for 6 other videos ('t1', 't2', 't3', ...; 7 in "
                     "all): feature file missing (t0.npz is there: set data.feature_ext: .npz)"]


def test_one_problem_of_many_videos_is_grouped_in_linear_time():
    """`data check` of 100,000 videos whose feature files were all missing (a dataset's features not extracted yet, a
    wrong data.features): the report's grouping listed the group's videos again for each of its problems, 10^10
    steps, past 10 minutes (20,000 here: 40 s); now 37 s for the whole check."""
    import time

    problems = [Problem("error", f"f/v{i}.npy", "feature file missing", f"v{i}") for i in range(20_000)]
    problems.append(Problem("warning", "a.json", "a warning of no video"))
    started = time.perf_counter()
    grouped = grouped_problems(problems)
    assert time.perf_counter() - started < 10  # 40 s before, well under a second now: room for a busy machine
    assert [(first.where, len(videos)) for first, videos in grouped] == [("f/v0.npy", 20_000), ("a.json", 0)]


def test_the_grid_streams_sidecar_is_checked_against_the_videos_fps_as_the_one_streams_is(tmp_path):
    # With data.streams, the grid stream's features were measured at its sidecar's fps and never against the video's:
    # training places them at the video's (the annotations'), so features extracted at half the rate passed data check
    # without a word, and training then refused the other stream's file, which was right, for the grid stream's length.
    database = {"v": _entry("training", (0, 2.0, 3.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"classes": ["c0"], "database": database}), encoding="utf-8")
    for name in ("rgb", "pose"):
        (tmp_path / name).mkdir()
    half = FPS / 2  # 20 s at 5 fps: 100 frames
    _features(tmp_path / "rgb", "v", steps=(100 - WINDOW) // STRIDE + 1, fps=half, frames=100)
    _features(tmp_path / "pose", "v", dim=4)
    config = Config(data=DataConfig(annotations=str(tmp_path / "ann.json"), streams=[
        StreamConfig(name="rgb", features=str(tmp_path / "rgb"), feature_dim=DIM, stride=STRIDE, window=WINDOW),
        StreamConfig(name="pose", features=str(tmp_path / "pose"), feature_dim=4, stride=STRIDE, window=WINDOW)]))
    config.model.num_classes = 1
    errors = check_dataset(config).errors
    assert [error.where for error in errors] == [str(tmp_path / "rgb" / "v.json"), str(tmp_path / "rgb" / "v.npy")]
    assert (f"fps is 5 in the sidecar (the frame rate of the video the features were extracted from) but 10 in the "
            f"annotations ({tmp_path / 'ann.json'} [database.v])") in errors[0].message
    assert "22 feature steps cover 10.0 s but the video lasts 20.0 s (47 steps expected at fps 10" in errors[1].message
    # another stream may run at its own rate: the same file as pose's is no error
    shutil.rmtree(tmp_path / "pose")
    shutil.copytree(tmp_path / "rgb", tmp_path / "pose")
    config.data.streams[1].feature_dim = DIM
    config = Config(data=config.data, model=config.model)
    assert [error.where for error in check_dataset(config).errors] == [str(tmp_path / "rgb" / "v.json"),
                                                                       str(tmp_path / "rgb" / "v.npy")]


def test_the_videos_folder_given_as_the_features_is_said_so_for_every_name_a_video_is_read_under(tmp_path):
    # `data.features` given SMG's videos folder (`Sample0001_color.mp4`, the name `data.videos` reads) or videos with
    # an ending in mixed case (`clip.Mp4`): "feature file missing (extract features for this video)", where the
    # videos of other names were said to be the videos themselves
    config = _config(tmp_path)
    database = {"Sample0001": _entry("training", (0, 1.0, 3.0)), "clip": _entry("validation", (0, 2.0, 3.0))}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}))
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("Sample0001_color.mp4", "clip.Mp4"):
        (videos / name).write_bytes(b"a video, not decoded here")
    config.data.features = str(videos)
    missing = {p.video_id: p.message for p in check_dataset(config).errors if "feature file missing" in p.message}
    for video_id, name in (("Sample0001", "Sample0001_color.mp4"), ("clip", "clip.Mp4")):
        assert missing[video_id].startswith(f"feature file missing ({name}, the video itself, is there: "
                                            "data.features is the folder of its feature files;")


def test_hidden_files_of_the_features_folder_are_no_orphans(tmp_path):
    # A folder copied from macOS holds `._<id>.npy` (AppleDouble) beside every file: each was "feature file has no entry
    # in the annotations (not used)", of a file no reader of a features folder takes for features
    document = {"classes": ["c0", "c1", "c2"], "database": {"good": _entry("training", (1, 1.0, 2.0))}}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in ("good", "stray"):
        _features(tmp_path / "feats", video_id)
    for name in ("._good.npy", "._stray.npy", ".cache.npy"):
        (tmp_path / "feats" / name).write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    orphans = [p.where for p in check_dataset(_config(tmp_path)).warnings if "no entry in the annotations" in p.message]
    assert orphans == [str(tmp_path / "feats" / "stray.npy")]


def test_the_videos_folder_given_as_the_features_is_listed_once_not_once_per_video(tmp_path, monkeypatch):
    """`data.features` given a folder of N videos (or anything with many entries) and none of the feature files: the
    search for a subfolder holding each missing file listed the whole folder again for every video, N^2 steps (2,000
    videos: 25 s; 100,000 would have run for most of a day); the folder is now listed once."""
    config = _config(tmp_path)
    database = {f"v{i}": _entry("training", (0, 1.0, 3.0)) for i in range(20)}
    (tmp_path / "ann.json").write_text(json.dumps({"database": database}))
    videos = tmp_path / "videos"
    videos.mkdir()
    for video_id in database:
        (videos / f"{video_id}.mp4").write_bytes(b"a video, not decoded here")
    (videos / "features").mkdir()  # a subfolder, searched for each missing file
    config.data.features = str(videos)
    listed = []
    iterdir, scandir = Path.iterdir, os.scandir
    monkeypatch.setattr(Path, "iterdir", lambda self: listed.append(Path(self)) or iterdir(self))
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(Path(path)) or scandir(path))
    missing = [p for p in check_dataset(config).errors if "the video itself, is there" in p.message]
    assert len(missing) == 20
    assert listed.count(videos) <= 2  # the missing files' remedies once, the orphans once


def test_a_class_count_other_than_the_annotations_suggests_the_annotations_count(tmp_path):
    # the README's minimal config (model.num_classes: 5) on data of 3 classes: the error said "3 classes in the
    # annotations but model.num_classes is 5", and the suggested settings, pasted, left training refused for it
    _write_train_and_val(tmp_path)
    config = _config(tmp_path)
    config.model.num_classes = 5
    report = check_dataset(config)
    assert any("3 classes in the annotations but model.num_classes is 5" in p.message for p in report.errors)
    assert report.suggestions["model.num_classes"] == 3
    text = report.format()
    assert "  --set model.num_classes=3\n" in text
    assert "model.num_classes: what the annotations say" in text
    assert "  annotations' classes: 3 (c0, c1, c2)" in text
    config.model.num_classes = 3
    fixed = check_dataset(config)
    assert not any("num_classes" in p.message for p in fixed.errors) and "model.num_classes" not in fixed.suggestions


def test_score_gt_refuses_what_data_check_calls_an_error_and_warns_of_its_warnings(tmp_path, capsys):
    """`mgrec score --gt` read an annotations file without data check's checks of its entries: a duration that
    disagrees with the frame count, an instance past the video's end, were scored as they were (exit 0, no word).
    It now runs the same checks (`entry_problems`): data check's errors refused, its warnings warned, same words."""
    from mgrec.cli import main

    frames = int(round(20.0 * FPS))
    ann, pred = tmp_path / "ann.json", tmp_path / "pred.json"
    pred.write_text(json.dumps({"results": {"v": [{"segment": [1.0, 3.0], "label": "c0", "score": 0.9}]}}))

    def write(entry: dict) -> None:
        ann.write_text(json.dumps({"classes": ["c0", "c1", "c2"], "database": {"v": entry}}), encoding="utf-8")

    def check_messages(severity: str) -> list[str]:
        (tmp_path / "feats").mkdir(exist_ok=True)
        _features(tmp_path / "feats", "v")
        config = _config(tmp_path)
        config.data.train_split = config.data.val_split = "test"
        return [f"{p.where}: {p.message}" for p in check_dataset(config).problems
                if p.severity == severity and p.video_id == "v"]

    score = ["score", "--gt", str(ann), "--pred", str(pred), "--split", "test"]
    # fps, duration and frame count disagree: an error of data check, refused by score in its words
    write({**_entry("testing", (0, 1.0, 3.0)), "duration": 1e12, "num_frames": frames})
    assert main(score) == 2
    err = capsys.readouterr().err
    said = check_messages("error")
    assert said == [f"{ann} [database.v]: duration 1e+12 s disagrees with num_frames {frames} at {FPS:g} fps (20 s); "
                    "correct the wrong one"]
    assert f"mgrec: error: {said[0]}; {ann} cannot be scored as it is" in err
    # an instance starting after the video's end: an error too
    write(_entry("testing", (0, 1.0, 3.0), (1, 25.0, 26.0)))
    assert main(score) == 2
    err = capsys.readouterr().err
    assert f"{ann} [database.v.annotations[1]]: instance starts at 25.000 s, after the video ends (20.000 s)" in err
    # one ending past it: data check's warning, warned, and the file scored
    write(_entry("testing", (0, 1.0, 3.0), (1, 19.0, 21.0)))
    assert main(score) in (0, None)
    err = capsys.readouterr().err
    said = check_messages("warning")
    assert said and all(f"warning: {line}" in err for line in said)
    assert "1.000 s after the video ends (20.000 s)" in err
    # a clean file: no word
    write(_entry("testing", (0, 1.0, 3.0)))
    assert main(score) in (0, None)
    assert "warning" not in capsys.readouterr().err


def test_an_end_to_end_video_scaled_up_much_is_one_warning_of_data_check_naming_it(tmp_path, make_video):
    """End to end, a video whose frames the backbone's input scales up more than 4x was warned of by the video reader
    itself on stderr (once per process, through a module-level set). It is now a warning of `mgrec data check` (which
    training logs), naming the file and both sizes, once per video, as data check says every other."""
    from fractions import Fraction

    import yaml
    from tests.helpers import write_end_to_end_data

    from mgrec.config import load_config

    frames = [np.full((16, 16, 3), 2 * i, np.uint8) for i in range(120)]
    clip = make_video(tmp_path / "clip.mp4", frames, fps=Fraction(30000, 1001))
    path = write_end_to_end_data(tmp_path / "data", clip, {"epochs": 1, "device": "cpu"})
    raw = yaml.safe_load(path.read_text())
    raw["backbone"]["image_size"] = 112
    path.write_text(yaml.safe_dump(raw))
    report = check_dataset(load_config(path))
    upscaled = [(p.where, p.message, p.video_id) for p in report.warnings if "scaled up" in p.message]
    message = ("its frames are 16x16 pixels, scaled up 7.0x (more than 4x on a side) to the backbone's input of "
               "112x112: its features see little of each gesture; a larger recording gives better ones")
    videos = tmp_path / "data" / "videos"
    assert upscaled == [(str(videos / "talk_color.mp4"), message, "talk"),
                        (str(videos / "talk_again.mp4"), message, "talk_again")]


def test_end_to_end_video_ids_that_fold_alike_or_windows_cannot_hold_are_warnings_naming_the_writers(tmp_path,
                                                                                                       make_video):
    """End to end (data.videos, no feature files), ids that fold alike (`Talk` / `talk`) or that Windows cannot hold
    (`CON`) passed data check in silence: its rule looked at feature files only, though extract, detect and stream
    --format smg and subtitles refuse (or warn of) the same ids. Now a warning at each entry, naming those writers."""
    import shutil
    from fractions import Fraction

    from tests.helpers import write_end_to_end_data

    from mgrec.config import load_config

    frames = [np.full((16, 16, 3), 2 * i, np.uint8) for i in range(120)]
    clip = make_video(tmp_path / "clip.mp4", frames, fps=Fraction(30000, 1001))
    path = write_end_to_end_data(tmp_path / "data", clip, {"epochs": 1, "device": "cpu"})
    annotations = tmp_path / "data" / "annotations.json"
    document = json.loads(annotations.read_text())
    for video_id in ("Talk", "CON"):
        document["database"][video_id] = document["database"]["talk"]
        shutil.copy(clip, tmp_path / "data" / "videos" / f"{video_id}_color.mp4")
    annotations.write_text(json.dumps(document))
    report = check_dataset(load_config(path))
    assert not report.errors
    said = {(p.where, p.video_id, p.message) for p in report.warnings if "Windows" in p.message}
    assert said == {
        (f"{annotations} [database.talk]", "talk",
         "videos 'Talk' and 'talk' are one name where case and Unicode normalisation are not told apart (macOS, "
         "Windows, FAT, exFAT): their files (videos, features, label folders) copied there, one replaces the other, "
         "and mgrec extract (feature files), detect and stream --format smg (label folders) and subtitles refuse the "
         "two; rename one of the videos (its entry and its files)"),
        (f"{annotations} [database.CON]", "CON",
         "'CON' is the name of a device on Windows: the files mgrec names after the video (its --format smg label "
         "folder, its features) cannot be copied to Windows nor to a FAT or exFAT disk; rename the video to share "
         "them")}


def test_many_classes_without_training_instances_are_printed_once_per_kind_with_the_count(tmp_path):
    # 2000 classes, 1641 of them without a training instance: 1641 lines of data check (and of training's start-up),
    # one per class; a class's problem concerns no video, so the grouping of alike problems passed it by
    names = [f"c{index}" for index in range(9)]
    document = {"classes": names, "database": {
        "t": _entry("training", (0, 1.0, 2.0)),
        "v": _entry("validation", (0, 1.0, 2.0), (1, 3.0, 4.0), (2, 5.0, 6.0), (3, 7.0, 8.0), (4, 9.0, 10.0)),
    }}
    (tmp_path / "ann.json").write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / "feats").mkdir()
    for video_id in document["database"]:
        _features(tmp_path / "feats", video_id)
    config = _config(tmp_path)
    config.model.num_classes = len(names)
    report = check_dataset(config)
    untrained = [p for p in report.warnings if "has no instance in the training split" in p.message]
    assert len(untrained) == 8  # every problem kept: the counts go by them
    printed = [problem_where(problem, subjects) + ": " + problem.message
               for problem, subjects in grouped_problems(report.warnings) if problem in untrained]
    assert len(printed) == 2, printed
    assert "the same for 3 other classes ('c2', 'c3', 'c4', ...; 4 in all): class 'c1' has" in printed[0]
    assert "the same for 3 other classes ('c6', 'c7', 'c8', ...; 4 in all): class 'c5' has" in printed[1]
    assert sum("has no instance in the training split" in line for line in report.format().splitlines()) == 2


def test_a_streams_configs_unset_annotations_hint_offers_no_data_features(tmp_path):
    # The hint for an unset data.annotations offered the demo's `--set data.features=...` to every config, and
    # a config with data.streams then refused that very override (data.features is the grid stream's there):
    # it offers only the keys the config reads.
    config = Config(data=DataConfig(streams=[
        StreamConfig(name="a", features=str(tmp_path / "a"), feature_dim=DIM, stride=STRIDE, window=WINDOW)]))
    with pytest.raises(InputError, match=r"\[data\.annotations\]: not set") as caught:
        check_dataset(config)
    assert "data.features" not in str(caught.value)
    plain = _config(tmp_path)
    plain.data.annotations = ""
    with pytest.raises(InputError, match=r"--set data\.annotations=\S+ --set data\.features=\S+\)$"):
        check_dataset(plain)


def test_alike_problems_of_two_folders_are_grouped_per_folder():
    # data.streams: the same 5 unannotated videos in the rgb and the skeleton folder were one line naming the rgb
    # folder ("5 in all"), counted as 10 warnings; the skeleton folder's files were never named.
    message = "feature file has no entry in the annotations (not used)"
    problems = [Problem("warning", f"feats/{stream}/v{i}.npy", message, f"v{i}")
                for stream in ("rgb", "skeleton") for i in range(5)]
    grouped = grouped_problems(problems)
    assert [(first.where, videos) for first, videos in grouped] == [
        ("feats/rgb/v0.npy", [f"v{i}" for i in range(5)]), ("feats/skeleton/v0.npy", [f"v{i}" for i in range(5)])]
    # one folder, each video's place naming it further on (an annotations entry): still one line
    entries = [Problem("warning", f"ann.json [database.v{i}.annotations[{i}]]", "labelled twice", f"v{i}")
               for i in range(5)]
    assert len(grouped_problems(entries)) == 1


def test_many_video_ids_that_fold_alike_are_one_line_of_the_report_not_one_each(tmp_path):
    """Each pair of ids that fold alike (`Sample0001` / `sample0001`) is its own message, naming its two ids: 500 such
    pairs printed 500 lines of 400 characters each, where every other problem said alike of many videos is one line
    with their count (`grouped_problems`). Now one line per kind, its first pair with the others counted; the
    report keeps each problem (the counts, data.drop_bad_videos)."""
    from mgrec.data.annotations import load_annotations
    from mgrec.data.check import check_entries, video_id_name_problems

    pairs = [f"Sample{i:04d}" for i in range(8)]
    config = _videos_in_splits(tmp_path, {video: subset for name in pairs
                                          for video, subset in ((name, "training"), (name.lower(), "validation"))})
    report = check_dataset(config)
    alike = [p for p in report.warnings if "one name where" in p.message]
    assert len(alike) == 8
    lines = [line for line in report.format().splitlines() if "one name where" in line]
    assert len(lines) == 1 and "and the same for 7 other videos" in lines[0] and "8 in all" in lines[0], lines
    # the ids' own warnings (end to end, `mgrec data convert`): grouped alike
    aset = load_annotations(tmp_path / "ann.json")
    assert len(video_id_name_problems(aset, list(aset.videos))) == 8
    said: list[str] = []
    check_entries(aset, tmp_path / "ann.json", list(aset.videos), said.append, names=True)
    assert len([line for line in said if "one name where" in line]) == 1, said
