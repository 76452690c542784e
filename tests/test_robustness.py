"""Bad input never passes silently: each case as the user meets it, through `mgrec ...`.

Every bad input must end in exit code 2 and one line `mgrec: error: <file or key>: <what was
expected>` on stderr, without a traceback, or in a documented recovery. Cases already tested
closer to their module are linked from docs/robustness.md instead of repeated here.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
import yaml
from numpy.lib import format as npy_format
from safetensors.torch import load_file
from tests.helpers import small_config

from mgrec.cli import main
from mgrec.config import Config, PostprocessConfig, TrainConfig, save_config
from mgrec.data.annotations import save_annotations
from mgrec.data.features import FeatureSidecar, read_sidecar, write_features
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.evaluate.predictions import save_predictions, save_predictions_csv
from mgrec.files import atomic_write, atomic_write_text, check_writable, resolve_path
from mgrec.model.detector import build_detector
from mgrec.postprocess.nms import nms
from mgrec.postprocess.video import detect_video
from mgrec.records import AnnotationSet, Detection, VideoInfo
from mgrec.run import RunDir
from mgrec.smg_csv import write_smg_labels
from mgrec.timeline import FeatureGrid
from mgrec.train.loop import train

SRC = Path(__file__).resolve().parents[1] / "src" / "mgrec"
DIM = 16


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# A tiny valid dataset and run, broken one piece at a time


def tiny_config(paths) -> Config:
    return small_config(paths, seed=1, max_seq_len=64,
                        train=TrainConfig(epochs=1, warmup_epochs=0, batch_size=1, crops_per_video=1, eval_every=1),
                        postprocess=PostprocessConfig(pre_nms_topk=100, max_detections=50))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    return make_synthetic_dataset(root, num_videos=3, feature_dim=DIM, length=96, subsets=("train", "val", "test"))


@pytest.fixture(scope="module")
def config_file(dataset, tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    save_config(tiny_config(dataset), path)
    return path


def write_run(run_dir: Path, config: Config, threshold: float = 0.0) -> Path:
    """A run directory as `mgrec train` leaves it, with random-init weights."""
    torch.manual_seed(0)
    model = build_detector(config.model)
    classes = [f"class{k:02d}" for k in range(config.model.num_classes)]
    RunDir(run_dir).write_for_inference(config, classes, model, score_threshold=threshold)
    return run_dir


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs") / "run", tiny_config(dataset))


@pytest.fixture
def run_copy(run, tmp_path):
    """A private copy of the run, to break."""
    return Path(shutil.copytree(run, tmp_path / "run"))


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def mgrec(capsys, *argv) -> Outcome:
    """Run `mgrec ARGV` in this process; a raw exception (a bug) propagates and fails the test."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_input_error(outcome: Outcome, *fragments: str) -> None:
    """Exit code 2, one `mgrec: error:` message (after the warnings and notes that came before it, on the same
    stream), no traceback, every fragment in the message."""
    assert outcome.code == 2, (outcome.code, outcome.err)
    said = "\n".join(line for line in outcome.err.splitlines() if not line.startswith(("warning: ", "note: ")))
    assert said.startswith("mgrec: error: "), outcome.err
    assert "Traceback" not in outcome.err
    for fragment in fragments:
        assert fragment in outcome.err, (fragment, outcome.err)


def feature_file(dataset, video: str = "synthetic_000") -> Path:
    return dataset.features / f"{video}.npy"


def copy_with_sidecar(dataset, folder: Path, name: str = "v", video: str = "synthetic_000") -> Path:
    """A copy of one valid feature file (and its sidecar) under another name."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(feature_file(dataset, video), folder / f"{name}.npy")
    shutil.copy(feature_file(dataset, video).with_suffix(".json"), folder / f"{name}.json")
    return folder / f"{name}.npy"


# ---------------------------------------------------------------------------------------------
# Feature files


def _missing(path: Path) -> None:
    path.unlink()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY but not really" * 5)


def _wrong_dimension(path: Path) -> None:
    np.save(path, np.zeros((40, DIM + 1), np.float32))


def _transposed(path: Path) -> None:
    np.save(path, np.zeros((DIM, 40), np.float32))


def _nan(path: Path) -> None:
    array = np.load(path)
    array[7, 3] = np.nan
    np.save(path, array)


def _inf(path: Path) -> None:
    array = np.load(path)
    array[2, 0] = -np.inf
    np.save(path, array)


def _pickled_objects(path: Path) -> None:
    # An object array is a pickle: loading it would run code chosen by whoever wrote the file.
    np.save(path, np.array([{"features": 1}, None], dtype=object), allow_pickle=True)


BAD_FEATURE_FILES = [
    (_missing, "no such file or folder"),
    (_empty, "empty (0 bytes)"),
    (_truncated, "truncated or corrupt"),
    (_garbage, "truncated or corrupt"),
    (_wrong_dimension, f"expected feature dimension {DIM} (data.feature_dim), found {DIM + 1}"),
    (_transposed, "looks transposed (C, T)"),
    (_nan, "1 NaN/Inf value(s), the first at [t=7, c=3]"),
    (_inf, "1 NaN/Inf value(s), the first at [t=2, c=0]"),
    (_pickled_objects, "cannot read features"),
]


@pytest.mark.parametrize(
    "damage, expected", BAD_FEATURE_FILES, ids=[d.__name__.strip("_") for d, _ in BAD_FEATURE_FILES]
)
def test_detect_names_a_bad_feature_file(capsys, dataset, run, tmp_path, damage, expected):
    path = copy_with_sidecar(dataset, tmp_path / "features")
    damage(path)
    outcome = mgrec(capsys, "detect", run, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(path), expected)
    assert not (tmp_path / "out.json").exists()


def test_evaluate_refuses_features_of_another_recipe_as_detect_does(capsys, dataset, run_copy, tmp_path):
    # evaluate read the run's own folder without the check detect makes: features re-extracted with another
    # backbone after training were scored without a word
    features = Path(shutil.copytree(dataset.features, tmp_path / "features"))
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["data"]["features"] = str(features)
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    sidecars = sorted(features.glob("*.json"))
    recipe = {**json.loads(sidecars[0].read_text()), "num_features": None}
    (run_copy / "feature_recipe.json").write_text(json.dumps(recipe))
    assert mgrec(capsys, "evaluate", run_copy, "--device", "cpu").code == 0  # the run's recipe
    for sidecar in sidecars:
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "backbone": "my-i3d"}))
    outcome = mgrec(capsys, "evaluate", run_copy, "--device", "cpu")
    assert_input_error(outcome, "these features were made with another recipe than the run was trained on",
                       f"backbone 'my-i3d' (the run: {recipe['backbone']!r})")


def test_detect_refuses_features_of_another_backbone_or_other_weights(capsys, dataset, run_copy, tmp_path):
    # the right shape, meaningless to the network: packaged-weights features found 0 gestures in custom-weights ones
    path = copy_with_sidecar(dataset, tmp_path / "features")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    recipe = {**sidecar, "backbone": "efficientnet-lite0@224", "weights_sha256": "a" * 64, "num_features": None}
    (run_copy / "feature_recipe.json").write_text(json.dumps(recipe))
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "backbone": "efficientnet-lite0@224",
                                                     "weights_sha256": "b" * 64}))
    outcome = mgrec(capsys, "detect", run_copy, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, f"{path.with_suffix('.json')}: these features were made with another recipe than "
                       f"the run was trained on ({run_copy / 'feature_recipe.json'}): weights_sha256 '{'b' * 64}' "
                       f"(the run: '{'a' * 64}')")
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "backbone": "my-i3d"}))
    assert_input_error(mgrec(capsys, "detect", run_copy, path, "--out", tmp_path / "out.json"),
                       "backbone 'my-i3d' (the run: 'efficientnet-lite0@224')")
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "backbone": "efficientnet-lite0@224",
                                                     "weights_sha256": "a" * 64}))
    assert mgrec(capsys, "detect", run_copy, path, "--out", tmp_path / "out.json").code == 0  # the run's recipe


def test_detect_handles_feature_files_shorter_than_the_largest_stride_and_very_long_ones(
    capsys, dataset, run, tmp_path
):
    folder = tmp_path / "features"
    sidecar = read_sidecar(feature_file(dataset).with_suffix(".json"))
    lengths = {"one": 1, "two": 2, "three": 3, "long": 5000}  # the largest stride is 4
    rng = np.random.default_rng(0)
    for name, steps in lengths.items():
        write_features(
            folder / f"{name}.npy",
            rng.standard_normal((steps, DIM)).astype(np.float32),
            replace(sidecar, frames=None, num_features=None),
        )
    out = tmp_path / "out.json"
    outcome = mgrec(capsys, "detect", run, folder, "--out", out, "--all")
    assert outcome.code == 0, outcome.err
    results = json.loads(out.read_text())["results"]
    assert sorted(results) == sorted(lengths)
    for name, steps in lengths.items():
        covered = ((steps - 1) * sidecar.stride + sidecar.window) / sidecar.fps
        for detection in results[name]:
            start, end = detection["segment"]
            assert 0 <= start < end <= covered + 1e-9, (name, detection)
    assert results["long"], "a random network scores something above threshold 0 in 5000 steps"


def test_detect_names_a_feature_file_whose_header_claims_terabytes(capsys, dataset, run, tmp_path):
    path = copy_with_sidecar(dataset, tmp_path / "features")
    with open(path, "wb") as handle:  # a bit flip in the shape: (10**12, 16) float32 is 58 TiB
        npy_format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (10**12, DIM)})
        handle.write(b"\0" * 4096)
    outcome = mgrec(capsys, "detect", run, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(path), "truncated or corrupt")


def test_detect_refuses_features_made_with_another_stride(capsys, dataset, run, tmp_path):
    path = copy_with_sidecar(dataset, tmp_path / "features")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "stride": 8}))
    outcome = mgrec(capsys, "detect", run, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(path.with_suffix(".json")), "stride is 8 in the sidecar but 4 in the config")


def test_detect_refuses_two_feature_files_of_the_same_video_id(capsys, dataset, run, tmp_path):
    first = copy_with_sidecar(dataset, tmp_path / "a", video="synthetic_000")
    second = copy_with_sidecar(dataset, tmp_path / "b", video="synthetic_001")
    outcome = mgrec(capsys, "detect", run, first, second, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(first), str(second))


def test_data_check_and_train_refuse_features_much_shorter_or_longer_than_the_video(capsys, dataset, tmp_path):
    features = Path(shutil.copytree(dataset.features, tmp_path / "features"))
    short, long = features / "synthetic_000.npy", features / "synthetic_001.npy"
    for path, steps in ((short, np.load(short).shape[0] // 2), (long, np.load(long).shape[0] * 2)):
        array = np.resize(np.load(path), (steps, DIM))
        sidecar = read_sidecar(path.with_suffix(".json"))
        write_features(path, array, replace(sidecar, num_features=None))
    config = replace(tiny_config(dataset), data=replace(tiny_config(dataset).data, features=str(features)))
    save_config(config, tmp_path / "c.yaml")

    checked = mgrec(capsys, "data", "check", tmp_path / "c.yaml")
    assert checked.code == 1
    for path in (short, long):
        line = next(line for line in checked.out.splitlines() if line.strip().startswith(f"ERROR   {path}:"))
        assert "feature steps cover" in line and "off by" in line
    trained = mgrec(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "run", "--no-progress")
    # each file is also at odds with its sidecar's frame count (the video's): two errors per file; both are training
    # videos, so dropping the affected ones is not offered (it would leave nothing to train on)
    assert_input_error(trained, "the data has 4 error(s)", str(short), str(long),
                       "The one video of the training split 'train' has one: fix them")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# Annotations, SMG label CSVs, predictions


def _annotations(dataset) -> dict:
    return json.loads(Path(dataset.annotations).read_text())


def test_train_reports_a_video_left_out_by_a_misspelt_subset(capsys, dataset, tmp_path):
    document = _annotations(dataset)
    document["database"]["synthetic_000"]["subset"] = "trainning"
    document["database"]["synthetic_001"]["subset"] = "training"  # still one training video
    (tmp_path / "ann.json").write_text(json.dumps(document))
    config = tiny_config(dataset)
    config.data.annotations = str(tmp_path / "ann.json")
    save_config(config, tmp_path / "c.yaml")
    outcome = mgrec(capsys, "train", tmp_path / "c.yaml", "--out", tmp_path / "run", "--no-progress")
    assert outcome.code == 0, outcome.err
    assert "'trainning'" in outcome.out + outcome.err


def test_score_names_the_splits_when_the_split_is_unknown(capsys, dataset, tmp_path):
    (tmp_path / "pred.json").write_text('{"results": {}}')
    outcome = mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", tmp_path / "pred.json", "--split", "tset")
    assert_input_error(outcome, str(dataset.annotations), "no videos in split 'tset'", "test, train, val")


def test_score_says_when_the_predictions_cover_only_some_videos_of_the_split(capsys, dataset, tmp_path):
    document = json.loads(Path(dataset.annotations).read_text())
    document["database"]["synthetic_001"]["subset"] = "test"  # two test videos
    (tmp_path / "ann.json").write_text(json.dumps(document))
    label = document["database"]["synthetic_002"]["annotations"][0]["label"]
    (tmp_path / "pred.json").write_text(json.dumps(
        {"results": {"synthetic_002": [{"segment": [1.0, 2.0], "label": label, "score": 0.9}]}}))
    outcome = mgrec(capsys, "score", "--gt", tmp_path / "ann.json", "--pred", tmp_path / "pred.json", "--split", "test")
    assert outcome.code == 0, outcome.err
    assert f"note: {tmp_path / 'pred.json'}: predictions cover 1 of the 2 videos of split test" in outcome.err
    outcome = mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", tmp_path / "pred.json", "--split", "test")
    assert outcome.code == 0 and "predictions cover" not in outcome.err  # the one test video is covered


HUGE = "1" + "0" * 400  # a JSON integer far beyond the float range


@pytest.mark.parametrize("where", ["fps", "segment"])
def test_annotation_numbers_beyond_the_float_range(capsys, dataset, tmp_path, where):
    text = Path(dataset.annotations).read_text()
    document = json.loads(text)
    entry = document["database"]["synthetic_000"]
    if where == "fps":
        entry["fps"] = "HUGE"
    else:
        entry["annotations"][0]["segment"][1] = "HUGE"
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(document).replace('"HUGE"', HUGE))
    outcome = mgrec(capsys, "score", "--gt", path, "--pred", tmp_path / "none.json")
    assert_input_error(outcome, str(path), "database.synthetic_000")


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_deeply_nested_json(capsys, dataset, tmp_path, which):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    gt, pred = (deep, tmp_path / "none.json") if which == "gt" else (dataset.annotations, deep)
    outcome = mgrec(capsys, "score", "--gt", gt, "--pred", pred)
    assert_input_error(outcome, str(deep))


def test_smg_frame_number_beyond_the_float_range(capsys, tmp_path):
    sample = tmp_path / "smg" / "Sample0001"
    sample.mkdir(parents=True)
    (sample / "Sample0001_finelabels.csv").write_text(f"5,28,{HUGE}\n")
    (sample / "Sample0001_data.csv").write_text("1400,28,4095\n")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann.json")
    assert_input_error(outcome, f"{sample / 'Sample0001_finelabels.csv'}:1")


def test_smg_convert_says_which_durations_are_taken_from_the_last_label(capsys, tmp_path):
    # without <sample>_data.csv (--fps given), the duration is the last label's end: `data check` then refused
    # every real feature file as too long, blaming the fps or the stride, and convert had said nothing
    for name, data_file in (("Sample0001", False), ("Sample0002", True)):
        (tmp_path / "smg" / name).mkdir(parents=True)
        (tmp_path / "smg" / name / f"{name}_finelabels.csv").write_text("3,10,40\n5,100,130\n")
        if data_file:
            (tmp_path / "smg" / name / f"{name}_data.csv").write_text("1400,28,4095\n")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann.json", "--fps", "28")
    assert outcome.code in (0, None)
    assert ("warning: 1 of the 2 videos (Sample0001) has no <sample>_data.csv: their duration is taken from their "
            "last label") in outcome.err
    # the fix it names is the file SMG ships (three columns; two were refused), and a backup folder is said
    assert "put each sample's _data.csv (one row numFrames,fps,maxDepth, as SMG ships it)" in outcome.err
    (tmp_path / "smg" / "Sample0001" / "Sample0001_data.csv").write_text("1400,28,4095\n")
    shutil.copytree(tmp_path / "smg" / "Sample0001", tmp_path / "smg" / "Sample0001_old")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann2.json")
    assert outcome.code in (0, None) and "in 2 videos" in outcome.out
    assert (f"warning: 1 folder(s) named like a sample but not SampleXXXX exactly were left out: "
            f"{tmp_path / 'smg' / 'Sample0001_old'}") in outcome.err


def test_smg_convert_warns_when_no_row_has_the_last_class(capsys, tmp_path):
    """Label files written with classes 0..16 whose rows happen to hold no class 0 were read one class off
    without a word; none of them can hold class 17."""
    sample = tmp_path / "smg" / "Sample0001"
    sample.mkdir(parents=True)
    (sample / "Sample0001_data.csv").write_text("1400,28,4095\n")
    (sample / "Sample0001_finelabels.csv").write_text("5,28,56\n16,100,130\n")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann.json")
    assert outcome.code in (0, None)
    assert ("warning: no label row has class 17 (Illustrative hand gestures): if these files number classes from 0 "
            "to 16, every instance is read as the class before its own") in outcome.err
    (sample / "Sample0001_finelabels.csv").write_text("5,28,56\n17,100,130\n")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann2.json")
    assert outcome.code in (0, None) and "class 17" not in outcome.err


def _score_csv_folder(capsys, dataset, tmp_path, content: bytes) -> tuple[Outcome, Path]:
    folder = tmp_path / "pred"
    folder.mkdir()
    file = folder / "synthetic_002.csv"
    file.write_bytes(content)
    return mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", folder), file


def test_score_csv_predictions_with_a_header_row(capsys, dataset, tmp_path):
    outcome, file = _score_csv_folder(capsys, dataset, tmp_path, b"class,start_frame,end_frame\n1,0,10\n")
    assert_input_error(outcome, f"{file}:1", "looks like a header row")


def test_score_csv_predictions_that_are_not_utf8(capsys, dataset, tmp_path):
    outcome, file = _score_csv_folder(capsys, dataset, tmp_path, b"1,0,10\n1,\xe9,20\n")
    assert_input_error(outcome, str(file), "UTF-8")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_files_in_utf16_or_utf32_are_named_so_by_every_reader(capsys, dataset, run, tmp_path, encoding):
    """Windows PowerShell's `mgrec stream ... > out.jsonl` writes UTF-16 (with its byte-order mark), as Excel's
    "Unicode text" does: the predictions' readers, which tell a file's kind by its text, said "not a predictions
    file" of a results JSON or stream's JSON lines, and the others "byte 0xff at offset 0"."""
    name = encoding[:6].upper()
    mark = codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b""  # "utf-16" and "utf-32" write their own (LE)
    save_predictions({}, tmp_path / "plain.json")
    results = (tmp_path / "plain.json").read_text(encoding="utf-8")
    stream = json.dumps({"video": "synthetic_002", "segment": [0.5, 1.5], "label": "a", "score": 0.9}) + "\n"
    annotations = Path(dataset.annotations).read_text(encoding="utf-8")
    for file, text, argv in (
            ("pred.json", results, ["score", "--gt", dataset.annotations, "--pred"]),
            ("stream.jsonl", stream, ["score", "--gt", dataset.annotations, "--pred"]),
            ("gt.json", annotations, ["score", "--pred", tmp_path / "plain.json", "--gt"]),
            ("config.yaml", Path(run, "config.yaml").read_text(encoding="utf-8"), ["data", "check"])):
        path = tmp_path / file
        path.write_bytes(mark + text.encode(encoding))
        assert_input_error(mgrec(capsys, *argv, path), f"{path}: {name} text", "by its byte-order mark",
                           "save the file as UTF-8")


def test_score_csv_predictions_with_a_huge_field(capsys, dataset, tmp_path):
    outcome, file = _score_csv_folder(capsys, dataset, tmp_path, b"1,0," + b"1" * 200_000 + b"\n")
    assert_input_error(outcome, f"{file}:1")


def _score_json(capsys, dataset, tmp_path, text: str) -> tuple[Outcome, Path]:
    path = tmp_path / "pred.json"
    path.write_text(text)
    return mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", path), path


def test_score_predictions_with_a_video_twice(capsys, dataset, tmp_path):
    one = '[{"segment": [0.5, 1.5], "label_id": 0, "score": 0.9}]'
    outcome, path = _score_json(
        capsys, dataset, tmp_path, f'{{"results": {{"synthetic_002": {one}, "synthetic_002": []}}}}'
    )
    assert_input_error(outcome, str(path), "synthetic_002")


def test_score_predictions_with_a_label_that_is_not_a_string(capsys, dataset, tmp_path):
    outcome, path = _score_json(
        capsys,
        dataset,
        tmp_path,
        '{"results": {"synthetic_002": [{"segment": [0, 1], "label": ["class00"], "score": 1}]}}',
    )
    assert_input_error(outcome, str(path), "results.synthetic_002[0].label")


def test_score_predictions_with_a_number_beyond_the_float_range(capsys, dataset, tmp_path):
    outcome, path = _score_json(
        capsys,
        dataset,
        tmp_path,
        f'{{"results": {{"synthetic_002": [{{"segment": [0, {HUGE}], "label_id": 0, "score": 1}}]}}}}',
    )
    assert_input_error(outcome, str(path), "results.synthetic_002[0].segment")


# ---------------------------------------------------------------------------------------------
# Run directories and weights


def test_detect_names_a_corrupt_safetensors_file(capsys, dataset, run_copy, tmp_path):
    weights = run_copy / "checkpoints" / "best.safetensors"
    for content in (weights.read_bytes()[:5000], b"", b"not safetensors at all"):
        weights.write_bytes(content)
        outcome = mgrec(capsys, "detect", run_copy, feature_file(dataset), "--out", tmp_path / "out.json")
        assert_input_error(outcome, f"checkpoint {weights} is not a readable safetensors file")


def test_detect_with_weights_of_another_model_configuration(capsys, dataset, run_copy, tmp_path):
    config = tiny_config(dataset)
    config.model.embed_dim = 32  # the weights were written for 16
    save_config(config, run_copy / "config.yaml")
    outcome = mgrec(capsys, "detect", run_copy, feature_file(dataset), "--out", tmp_path / "out.json")
    assert_input_error(
        outcome,
        "does not fit the model built from the run's config",
        "with other shapes",
        "another model configuration",
    )


def test_detect_on_an_unfinished_run(capsys, dataset, run_copy, tmp_path):
    (run_copy / "checkpoints" / "best.safetensors").unlink()
    outcome = mgrec(capsys, "detect", run_copy, feature_file(dataset), "--out", tmp_path / "out.json")
    assert_input_error(outcome, f"{run_copy} is not a finished mgrec run: checkpoints/best.safetensors is missing")


@pytest.mark.parametrize(
    "name, content",
    [
        ("classes.json", "[not json"),
        ("classes.json", '["class00", "class01"]'),  # the model has 17 classes
        ("postprocess.json", "{}"),  # no score_threshold
    ],
)
def test_detect_with_a_broken_run_file(capsys, dataset, run_copy, tmp_path, name, content):
    (run_copy / name).write_text(content)
    outcome = mgrec(capsys, "detect", run_copy, feature_file(dataset), "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(run_copy / name))


def test_resume_with_an_unreadable_training_state(capsys, config_file, run_copy):
    state = run_copy / "checkpoints" / "last_state.pt"
    state.write_bytes(b"PK\x03\x04 truncated zip")
    outcome = mgrec(capsys, "train", config_file, "--out", run_copy, "--resume", "--no-progress")
    assert_input_error(outcome, f"training state {state} cannot be read", "delete it to restart the run")


# ---------------------------------------------------------------------------------------------
# Config and devices


def test_config_typo_on_the_command_line(capsys, config_file, tmp_path):
    outcome = mgrec(capsys, "train", config_file, "--out", tmp_path / "run", "--set", "train.lrr=0.1")
    assert_input_error(outcome, "--set [train.lrr]: unknown key; did you mean 'train.lr'?")  # not the file's
    assert not (tmp_path / "run").exists()


def test_device_typo(capsys, config_file, tmp_path):
    outcome = mgrec(capsys, "train", config_file, "--out", tmp_path / "run", "--set", "train.device=gpu")
    assert_input_error(outcome, "train.device='gpu' is not a device name")


OUT_OF_RANGE = [
    "train.batch_size=0",  # ZeroDivisionError in the loop
    "train.eval_every=0",  # ZeroDivisionError after the first epoch
    "train.epochs=0",  # KeyError 'score_threshold' at the end
    "train.lr=-0.001",  # torch ValueError
    "train.ema_decay=1.5",  # silently extrapolates the EMA weights
    "postprocess.sigma=0",  # Soft-NMS scores become NaN
    "postprocess.max_detections=0",  # silently no detections at all
    "postprocess.pre_nms_topk=-1",  # silently drops the last candidate of every level
]


@pytest.mark.parametrize("override", OUT_OF_RANGE)
def test_out_of_range_settings_are_refused_before_any_work(capsys, config_file, override):
    outcome = mgrec(capsys, "data", "check", config_file, "--set", override)
    assert_input_error(outcome, f"[{override.split('=')[0]}]")


@pytest.fixture
def small_video(tmp_path):
    path = tmp_path / "clip.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for index in range(20):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * index, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_extract_from_a_video_without_frames(capsys, tmp_path):
    path = tmp_path / "zero.avi"
    with av.open(str(path), "w") as container:  # a valid container whose stream has no frames
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    outcome = mgrec(capsys, "extract", path, "--out", tmp_path / "features", "--size", "32", "--no-progress")
    assert_input_error(outcome, "1 of 1 inputs failed", f"{path}: no frames could be decoded")
    assert not list((tmp_path / "features").glob("zero.*"))


@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_extract_on_a_device_that_is_not_there(capsys, small_video, tmp_path, device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    outcome = mgrec(
        capsys,
        "extract",
        small_video,
        "--out",
        tmp_path / "features",
        "--size",
        "32",
        "--device",
        device,
        "--no-progress",
    )
    assert_input_error(outcome, device)


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--hop", "0", "argument --hop: expected at least 1, got 0"),
        ("--history", "0", "argument --history: expected at least 1, got 0"),
        ("--lookahead", "nan", "argument --lookahead: expected a finite number, got nan"),
        ("--lookahead", "-1", "argument --lookahead: expected a number >= 0, got -1"),
    ],
)
def test_stream_options_out_of_range(capsys, dataset, run, option, value, expected):
    # refused by the option's name before the run loads (`hop must be at least 1` named no option)
    with pytest.raises(SystemExit) as exit_:
        main(["stream", str(run), str(feature_file(dataset)), option, value])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and expected in captured.err and captured.out == ""


# ---------------------------------------------------------------------------------------------
# Output paths


def _unwritable_outputs(tmp_path: Path) -> dict[str, Path]:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    return {"in /proc": Path("/proc/forbidden/out.json"), "under a file": blocker / "out.json"}


@pytest.mark.parametrize("fmt", ["json", "csv", "smg"])
@pytest.mark.parametrize("place", ["in /proc", "under a file"])
def test_detect_to_an_output_that_cannot_be_written(capsys, dataset, run, tmp_path, fmt, place):
    out = _unwritable_outputs(tmp_path)[place]
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--out", out, "--format", fmt)
    assert_input_error(outcome, str(out.parent))


def test_convert_to_an_output_that_cannot_be_written(capsys, tmp_path):
    sample = tmp_path / "smg" / "Sample0001"
    sample.mkdir(parents=True)
    (sample / "Sample0001_finelabels.csv").write_text("5,28,56\n")
    (sample / "Sample0001_data.csv").write_text("1400,28,4095\n")
    out = Path("/proc/forbidden/ann.json")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", out)
    assert_input_error(outcome, str(out.parent))


# ---------------------------------------------------------------------------------------------
# Post-processing of a broken network output


def test_nms_with_non_finite_segments_fails_loudly_or_returns_each_candidate_once():
    segments = torch.tensor([[-float("inf"), float("inf")], [0.0, 1.0], [0.5, 1.5]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.zeros(3, dtype=torch.long)
    try:
        kept_segments, kept_scores, _ = nms(segments, scores, labels, PostprocessConfig(nms="soft"))
    except ValueError as error:
        assert "segment" in str(error)
        return
    assert len(kept_scores) <= 3
    assert torch.isfinite(kept_scores).all()


# ---------------------------------------------------------------------------------------------
# What is never loaded


def _calls(pattern: str) -> list[tuple[str, int, str]]:
    """(file relative to src/mgrec, line, text) of every source line matching `pattern`."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if re.search(pattern, line):
                found.append((path.relative_to(SRC).as_posix(), number, line.strip()))
    return found


def test_nothing_executes_code_while_loading_a_file():
    torch_loads = _calls(r"torch\.load\(")
    assert torch_loads, "the grep found nothing: has the source moved?"
    for file, number, line in torch_loads:
        assert "weights_only=True" in line, f"{file}:{number}: {line}"
    assert _calls(r"\bpickle\.loads?\(|\bdill\.|\bjoblib\.load|\bmarshal\.loads?\(|\bshelve\.open") == []
    # configs (files and --set values) are read by one loader: PyYAML's safe loader that also refuses a key given
    # twice and reads numbers as YAML 1.2 does
    assert [(file, line) for file, _, line in _calls(r"yaml\.(unsafe_)?load\(|yaml\.full_load|Loader=")] == [
        ("config.py", "root = yaml.compose(text, Loader=_StrictLoader)"),  # counted first (`load_yaml`)
        ("config.py", "return yaml.load(text, Loader=_StrictLoader)"),
        # a --set value's tokens (where its comments begin): the scanner makes tokens, never objects
        ("config.py", "tokens = list(yaml.scan(text, Loader=_StrictLoader))")]
    from mgrec.config import _StrictLoader, _yaml12_float, _yaml12_int

    assert issubclass(_StrictLoader, yaml.SafeLoader)
    # no tag of its own: the safe loader's, with its own readers of the two number tags
    safe = yaml.SafeLoader.yaml_constructors
    own = {tag: f for tag, f in _StrictLoader.yaml_constructors.items() if safe.get(tag) != f}
    assert own == {"tag:yaml.org,2002:int": _yaml12_int, "tag:yaml.org,2002:float": _yaml12_float}
    assert _StrictLoader.yaml_constructors.keys() == yaml.SafeLoader.yaml_constructors.keys()
    assert _calls(r"\btorch\.jit\.load|trust_remote_code=True|(?<![.\w])(eval|exec)\(") == []
    # The one pickle: a data file inside the pip-installed seglearn wheel (see docs/robustness.md).
    pickled = _calls(r"allow_pickle=True")
    assert [(file, line) for file, _, line in pickled] == [
        ("data/demo.py", "data = np.load(path, allow_pickle=True).item()")
    ]


# ---------------------------------------------------------------------------------------------
# Crash safety: writers interrupted at the last moment leave the old file, and no temporary file


def _writers():
    """name -> write(folder, version) -> the path written."""

    def predictions(version):
        return {"v": [Detection("v", 1.0, 2.0, 0, "c0", version / 10)]}

    def annotations(version):
        return AnnotationSet(
            classes=["c0"], videos={"v": VideoInfo("v", "train", 10.0, float(version))}, segments={"v": []}
        )

    def written(path, write):
        write(path)
        return path

    return {
        "predictions json": lambda folder, v: written(folder / "p.json", lambda p: save_predictions(predictions(v), p)),
        "predictions csv": lambda folder, v: written(
            folder / "p.csv", lambda p: save_predictions_csv(predictions(v), p)
        ),
        "annotations": lambda folder, v: written(folder / "a.json", lambda p: save_annotations(annotations(v), p)),
        "smg labels": lambda folder, v: write_smg_labels(predictions(v), folder, 10.0, with_scores=True)[0],
        "run metadata": lambda folder, v: written(folder / "postprocess.json", lambda p: atomic_write_text(p, str(v))),
    }


@pytest.mark.parametrize("writer", ["predictions json", "predictions csv", "annotations", "smg labels", "run metadata"])
def test_an_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch, writer):
    write = _writers()[writer]
    path = write(tmp_path, 1)
    before = path.read_bytes()

    def killed(fd):
        raise KeyboardInterrupt  # as if the process died just before the new file reached the disk

    monkeypatch.setattr("os.fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path, 2)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# Crash safety: a kill between the two files of a checkpoint


@pytest.fixture(scope="module")
def killed_between_weights_and_state(dataset, tmp_path_factory):
    """An uninterrupted 3-epoch run, and the same run killed after epoch 1's last.safetensors was
    written but before its last_state.pt was, then resumed (resume must read one consistent file)."""
    root = tmp_path_factory.mktemp("killed")
    config = tiny_config(dataset)
    config.train = replace(config.train, epochs=3, eval_every=3, batch_size=1, crops_per_video=1, lr=3e-3)
    quiet = {"progress": False, "log": lambda *_: None}
    train(config, root / "full", **quiet)

    class Killed(Exception):
        pass

    original = RunDir.write_training_state

    def killed_at_epoch_1(self, state):
        if state["epoch"] == 1:
            raise Killed
        original(self, state)

    RunDir.write_training_state = killed_at_epoch_1
    try:
        with pytest.raises(Killed):
            train(config, root / "killed", **quiet)
    finally:
        RunDir.write_training_state = original
    train(config, root / "killed", resume=True, **quiet)
    return root / "full", root / "killed"


def test_resume_after_a_kill_between_weights_and_state_matches_the_uninterrupted_run(killed_between_weights_and_state):
    full, killed = killed_between_weights_and_state
    a = load_file(str(full / "checkpoints" / "last.safetensors"))
    b = load_file(str(killed / "checkpoints" / "last.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_metrics_log_has_each_epoch_once_after_resume(killed_between_weights_and_state):
    _, killed = killed_between_weights_and_state
    records = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in records if r["kind"] == "train"]
    assert epochs == [0, 1, 2]


# ---------------------------------------------------------------------------------------------
# Paths built from data (issue 19, family 2): one guard, `mgrec.files.safe_child`


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder` with its bytes (None for folders): to prove nothing changed."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_detect_smg_never_writes_outside_out_for_a_video_id_dotdot(capsys, dataset, run, tmp_path):
    inputs = tmp_path / "in"
    path = copy_with_sidecar(dataset, inputs, name="..")  # the file `...npy`: video id '..'
    out = tmp_path / "deep" / "out"
    before = _tree(tmp_path)
    outcome = mgrec(capsys, "detect", run, path, "--format", "smg", "--out", out)
    assert_input_error(outcome, "video id '..' is not a file name", str(out))
    after = _tree(tmp_path)
    assert not [name for name in after if name.endswith("_finelabels.csv")]
    assert {name: data for name, data in after.items() if name in before} == before  # the inputs are untouched


@pytest.mark.parametrize("video_id", ["../outside", "/tmp/abs", "a/../../outside"])
def test_annotation_ids_cannot_read_features_outside_the_features_folder(capsys, dataset, tmp_path, video_id):
    document = _annotations(dataset)
    document["database"][video_id] = document["database"].pop("synthetic_000")
    (tmp_path / "ann.json").write_text(json.dumps(document))
    config = tiny_config(dataset)
    config.data.annotations = str(tmp_path / "ann.json")
    save_config(config, tmp_path / "c.yaml")
    for command in (["data", "check", tmp_path / "c.yaml"],
                    ["train", tmp_path / "c.yaml", "--out", tmp_path / "run", "--no-progress"]):
        outcome = mgrec(capsys, *command)
        assert outcome.code in (1, 2) and "Traceback" not in outcome.err, outcome
        assert f"{video_id!r}" in outcome.out + outcome.err
        assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_smg_writer_refuses_every_hostile_id_before_writing_any_file(tmp_path):
    detections = {"good": [Detection("good", 1.0, 2.0, 0, "c0", 0.5)], "..": []}
    with pytest.raises(InputError, match="video id '..'"):
        write_smg_labels(detections, tmp_path / "out", 10.0)
    assert not (tmp_path / "out" / "good").exists()


# ---------------------------------------------------------------------------------------------
# Writing outputs: every OSError is one line naming the path and the cause (family 2)


def test_an_output_that_is_a_folder_or_a_file_of_the_wrong_kind(capsys, dataset, run, tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("keep me")
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--out", tmp_path / "folder")
    assert_input_error(outcome, f"cannot write {tmp_path / 'folder'}: it is a folder")
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--format", "smg", "--out", tmp_path / "file")
    assert_input_error(outcome, f"cannot write into {tmp_path / 'file'}: it is a file, not a folder")
    assert (tmp_path / "file").read_text() == "keep me"
    with pytest.raises(InputError, match="it ends with '/', so it names a folder"):
        check_writable(f"{tmp_path}/report/")
    # through the command line too: argparse's Path("results/") dropped the '/', and a file results was written
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--out", f"{tmp_path}/results/")
    assert_input_error(outcome, f"cannot write {tmp_path}/results/: it ends with '/', so it names a folder")
    outcome = mgrec(capsys, "data", "convert", tmp_path, "--out", f"{tmp_path}/ann/")
    assert_input_error(outcome, f"cannot write {tmp_path}/ann/: it ends with '/'")
    assert not (tmp_path / "results").exists() and not (tmp_path / "ann").exists()


def _fail_with(monkeypatch, number: int, where: str = "os.fsync") -> None:
    def fail(*args, **kwargs):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(where, fail)


def test_a_full_disk_is_found_before_the_work(capsys, dataset, run, tmp_path, monkeypatch):
    _fail_with(monkeypatch, errno.ENOSPC)  # what a full disk answers to the probe's fsync
    out = tmp_path / "out.json"
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--out", out)
    assert_input_error(outcome, f"cannot write {out}: No space left on device")
    assert list(tmp_path.iterdir()) == []


def _write_predictions(path):
    save_predictions({"v": [Detection("v", 1.0, 2.0, 0, "c0", 0.5)]}, path)


def _write_features(path):
    sidecar = FeatureSidecar(fps=10.0, stride=1, window=1, backbone="b", dim=2, frames=None)
    write_features(path, np.zeros((3, 2), np.float32), sidecar)


def _write_weights(path):
    from mgrec.run import write_weights_file

    write_weights_file(path, torch.nn.Linear(2, 2), None, {})


def _write_torch(path):
    atomic_write(path, lambda temp: torch.save({"x": torch.zeros(3)}, temp))


WRITERS = {"predictions": _write_predictions, "features": _write_features, "weights": _write_weights,
           "torch state": _write_torch}
TARGETS = {"predictions": "out.json", "features": "v.npy", "weights": "w.safetensors", "torch state": "state.pt"}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("cause", [errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO])
def test_every_writer_turns_an_oserror_into_one_line_naming_path_and_cause(tmp_path, monkeypatch, writer, cause):
    target = tmp_path / "out" / TARGETS[writer]
    _fail_with(monkeypatch, cause)
    with pytest.raises(InputError) as info:
        WRITERS[writer](target)
    assert str(info.value) == f"cannot write {target}: {os.strerror(cause)}"
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no temporary file left


def test_a_library_that_reports_a_full_disk_in_its_own_words(tmp_path, monkeypatch):
    # torch.save on a full disk raises "RuntimeError: [enforce fail at inline_container.cc:672] . unexpected pos"
    def torch_on_a_full_disk(temp):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr("os.statvfs", lambda folder: SimpleNamespace(f_bavail=0))
    with pytest.raises(InputError, match=r"^cannot write .*state.pt: No space left on device$"):
        atomic_write(tmp_path / "state.pt", torch_on_a_full_disk)
    monkeypatch.setattr("os.statvfs", lambda folder: SimpleNamespace(f_bavail=10**6))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # a real bug, with space left, stays a bug
        atomic_write(tmp_path / "state.pt", torch_on_a_full_disk)
    assert list(tmp_path.iterdir()) == []


def test_a_library_s_quota_or_file_size_failure_is_a_cannot_write(tmp_path):
    """A quota (EDQUOT, common on clusters) or a file-size limit (EFBIG) ended in the library's traceback:
    safetensors quotes the errno, torch.save says only "unexpected pos"."""
    def safetensors_over_quota(temp):
        raise RuntimeError("Error while serializing: I/O error: Disk quota exceeded (os error 122)")

    with pytest.raises(InputError, match=r"^cannot write .*w.safetensors: Disk quota exceeded$"):
        atomic_write(tmp_path / "w.safetensors", safetensors_over_quota)
    # torch.save past `ulimit -f` (in a process of its own: the limit holds for the whole process)
    code = ("import resource, sys, torch; from mgrec.files import atomic_write; from mgrec.errors import InputError\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))\n"
            "try:\n    atomic_write(sys.argv[1], lambda temp: torch.save(torch.zeros(1 << 20), temp))\n"
            "except InputError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "state.pt")], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == f"cannot write {tmp_path / 'state.pt'}: File too large", out.stdout + out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_numpy_short_write_on_a_full_disk(tmp_path, monkeypatch):
    # np.save to a handle on a full disk raises OSError("200000 requested and 65504 written"), without errno
    def short_write(*args, **kwargs):
        raise OSError("200000 requested and 65504 written")

    monkeypatch.setattr(np, "save", short_write)
    monkeypatch.setattr("os.statvfs", lambda folder: SimpleNamespace(f_bavail=0))
    with pytest.raises(InputError, match=r"^cannot write .*v\.npy: No space left on device$"):
        _write_features(tmp_path / "v.npy")
    monkeypatch.setattr("os.statvfs", lambda folder: SimpleNamespace(f_bavail=10**6))
    with pytest.raises(InputError, match=r"^cannot write .*v\.npy: '200000 requested and 65504 written'$"):
        _write_features(tmp_path / "v.npy")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "cause, where, expected",
    [
        (errno.EROFS, "tempfile.mkstemp", "Read-only file system"),
        (errno.EACCES, "tempfile.mkstemp", "Permission denied"),
        (errno.ENOSPC, "os.fsync", "No space left on device"),
    ],
)
def test_check_writable_names_path_and_cause(tmp_path, monkeypatch, cause, where, expected):
    _fail_with(monkeypatch, cause, where)
    with pytest.raises(InputError, match=rf"^cannot write {re.escape(str(tmp_path))}/x.json: {expected}$"):
        check_writable(tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_for_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(InputError, match="Permission denied"):
            check_writable(folder / "x.json")
        with pytest.raises(InputError, match="Permission denied"):
            atomic_write_text(folder / "x.json", "{}")
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------------------------------------
# Numbers (family 3): features the network cannot take, network outputs that are NaN


@pytest.mark.parametrize("scale, value", [(1e30, None), (1.0, 3e38)], ids=["x1e30", "3e38"])
def test_detect_refuses_features_that_would_overflow_the_network(capsys, dataset, run, tmp_path, scale, value):
    path = copy_with_sidecar(dataset, tmp_path / "features")
    array = np.load(path) * np.float32(scale)
    if value is not None:
        array[5, 2] = value
    np.save(path, array)
    outcome = mgrec(capsys, "detect", run, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(path), "outside +-1e+06", "overflow the network")
    assert not (tmp_path / "out.json").exists()


class _NaNNetwork(torch.nn.Module):
    """A stand-in detector whose outputs hold NaN at one real position (a diverged checkpoint)."""

    max_div_factor = 1

    def __init__(self, bad: str):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.bad = bad

    def forward(self, x, mask):
        length = x.shape[-1]
        logits, offsets = torch.zeros(1, length, 2), torch.ones(1, length, 2)
        if self.bad == "logits":
            logits[0, 3, 1] = float("nan")
        else:
            offsets[0, 3, 1] = float("inf")
        return SimpleNamespace(cls_logits=[logits], offsets=[offsets], masks=[mask[:, 0]], strides=[1])


@pytest.mark.parametrize("bad", ["logits", "offsets"])
def test_nan_network_outputs_are_an_error_naming_the_video(bad):
    features = np.zeros((10, 4), np.float32)
    grid = FeatureGrid(fps=10.0, stride=1, window=1)
    with pytest.raises(InputError) as info:
        detect_video(_NaNNetwork(bad), features, grid, PostprocessConfig(), ["a", "b"], "Sample\x1b[2J0001")
    message = str(info.value)
    what = "class logits" if bad == "logits" else "offsets"
    assert message.startswith(f"video 'Sample\\x1b[2J0001': the network output holds 1 NaN/Inf value(s) (the first "
                              f"in the {what} of pyramid level 0)")
    assert "\x1b" not in message


def test_nan_in_padded_positions_is_not_an_error():
    class PaddedNaN(_NaNNetwork):
        max_div_factor = 16

        def forward(self, x, mask):
            out = super().forward(x, mask)
            out.cls_logits[0][0, 3, 1] = 0.0
            out.cls_logits[0][0, -1] = float("nan")  # past the 10 real steps
            return out

    detections = detect_video(PaddedNaN("logits"), np.zeros((10, 4), np.float32),
                              FeatureGrid(fps=10.0, stride=1, window=1), PostprocessConfig(), ["a", "b"], "v")
    assert isinstance(detections, list)


# ---------------------------------------------------------------------------------------------
# Resource bombs (family 4): a header is checked before anything is allocated


def test_detect_refuses_an_npz_whose_header_claims_1e9_rows(capsys, dataset, run, tmp_path):
    path = tmp_path / "features" / "v.npz"
    path.parent.mkdir()
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**9, DIM)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("feats.npy", header.getvalue() + bytes(2**20))
    outcome = mgrec(capsys, "detect", run, path, "--out", tmp_path / "out.json")
    assert_input_error(outcome, str(path), "truncated or corrupt", f"(1000000000, {DIM})")


# ---------------------------------------------------------------------------------------------
# Output hygiene (family 7): one mode for every output, checkpoints included


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_every_output_gets_the_mode_the_umask_gives(dataset, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        for name, write in WRITERS.items():
            write(tmp_path / name / TARGETS[name])
        write_run(tmp_path / "run", tiny_config(dataset))
    finally:
        os.umask(old)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in written) and any(p.suffix == ".pt" for p in written)
    assert {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in written} == {
        str(p.relative_to(tmp_path)): oct(mode) for p in written
    }


# ---------------------------------------------------------------------------------------------
# Extraction (family 6): numbers that are not a frame rate or a position are refused, not extracted


def _smg_sample(root: Path, fps: str = "28", coordinate: str | None = None) -> Path:
    sample = root / "smg" / "Sample0001"
    sample.mkdir(parents=True)
    rows = np.random.default_rng(0).normal(0, 0.3, (40, 25, 11))
    rows[:, 20, :3] = rows[:, 0, :3] + [0, 0.5, 0]  # a spine of 0.5 m
    lines = [",".join(f"{v:.5f}" for v in row) for row in rows.reshape(40, -1)]
    if coordinate is not None:
        fields = lines[9].split(",")
        fields[11 * 7] = coordinate  # x of joint 7, frame 10
        lines[9] = ",".join(fields)
    (sample / "Sample0001_skeleton.csv").write_text("\n".join(lines) + "\n")
    (sample / "Sample0001_data.csv").write_text(f"40,{fps},4000\n")
    return root / "smg"


@pytest.mark.parametrize(
    "fps, option, coordinate, expected",
    [
        ("inf", None, None, "Sample0001_data.csv:1: fps must be a finite number, got inf"),
        ("nan", None, None, "Sample0001_data.csv:1: fps must be a finite number, got nan"),
        ("1e300", None, None, "Sample0001_data.csv:1: fps must be in [0.001, 1000], got 1e+300"),
        ("28", "inf", None, "fps must be a finite number, got inf"),
        ("28", None, "1e300", "Sample0001_skeleton.csv:10: joint 7 coordinate x = 1e+300 is outside +-10000"),
        ("28", None, "-3e305", "Sample0001_skeleton.csv:10: joint 7 coordinate x = -3e+305 is outside +-10000"),
    ],
    ids=["fps inf", "fps nan", "fps 1e300", "--fps inf", "x 1e300", "x -3e305"],
)
def test_skeleton_extraction_refuses_numbers_that_make_nan_or_zero_features(
    capsys, tmp_path, fps, option, coordinate, expected
):
    root = _smg_sample(tmp_path, fps, coordinate)
    argv = ["extract", root, "--backbone", "skeleton", "--out", tmp_path / "features"]
    outcome = mgrec(capsys, *argv, *(["--fps", option] if option else []), "--no-progress")
    assert_input_error(outcome, expected)
    assert not list(tmp_path.rglob("*.npy"))  # no NaN or all-zero features were written


# Outputs that are not plain files: a link is written through, a pipe or device is written into


def test_an_output_that_is_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "target.json"
    target.write_text("original")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    check_writable(link)


def test_an_output_that_is_a_named_pipe_is_written_into_not_replaced(tmp_path):
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    check_writable(pipe)  # no probe file beside it is needed
    _write_predictions(pipe)
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert json.loads(received[0])["results"]["v"][0]["label"] == "c0"
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)  # still a pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file


def test_an_output_naming_an_open_descriptor_is_written_through_it(tmp_path):
    """/dev/stdout, /dev/fd/N: whatever the shell connected. A pipe gets the bytes; a file opened for
    appending (`>> log`) keeps what it held and its inode (it was replaced by a new file, `>>` lost)."""
    from mgrec.files import atomic_write, descriptor_named

    assert [descriptor_named(p) for p in ("/dev/stdout", "/dev/stderr", "/dev/fd/7", f"/proc/{os.getpid()}/fd/5",
                                          "/proc/self/fd/3", "/proc/1/fd/1", "/tmp/dev/stdout")] == \
        [1, 2, 7, 5, 3, None, None]
    read_end, write_end = os.pipe()
    try:
        check_writable(f"/dev/fd/{write_end}")
        _write_predictions(f"/dev/fd/{write_end}")
        os.close(write_end)
        with os.fdopen(read_end, "rb") as reader:
            assert json.loads(reader.read())["results"]["v"][0]["label"] == "c0"
    finally:
        with contextlib.suppress(OSError):
            os.close(write_end)
    log = tmp_path / "app.log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    with open(log, "a") as appended:
        atomic_write_text(f"/dev/fd/{appended.fileno()}", "first\n")
        atomic_write(f"/dev/fd/{appended.fileno()}", lambda name: Path(name).write_text("second\n"))
    assert log.read_text() == "earlier line\nfirst\nsecond\n" and log.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.log"]  # nothing beside it


def test_a_descriptor_is_found_through_links_and_other_spellings_and_checked_before_work(tmp_path):
    from mgrec.files import descriptor_named

    folder_link = tmp_path / "fdlink"  # a link to the folder /dev/fd: fdlink/1 is descriptor 1
    folder_link.symlink_to("/dev/fd")
    assert descriptor_named(folder_link / "1") == 1 and descriptor_named("/dev/fd/../stdout") is None
    link = tmp_path / "out.csv"
    link.symlink_to("/dev/stdout")
    chain = tmp_path / "chain"
    chain.symlink_to(link)
    assert [descriptor_named(p) for p in (link, chain, "//dev/stdout", "/dev/./stderr", "/proc/thread-self/fd/4",
                                          "/dev/fd/99999999999999999999", tmp_path / "plain")] == [1, 1, 1, 2, 4, None,
                                                                                                  None]
    log = tmp_path / "app.log"
    log.write_text("earlier line\n")
    with open(log, "a") as appended:
        fd_link = tmp_path / "fd-link"
        fd_link.symlink_to(f"/dev/fd/{appended.fileno()}")
        atomic_write_text(fd_link, "appended\n")  # through the link: appended, not replaced
    assert log.read_text() == "earlier line\nappended\n" and fd_link.is_symlink()
    with open(log) as read_only:
        with pytest.raises(InputError, match=rf"cannot write /dev/fd/{read_only.fileno()}: descriptor "
                                             rf"{read_only.fileno()} is open for reading only"):
            check_writable(f"/dev/fd/{read_only.fileno()}")



def test_a_path_that_cannot_be_followed_is_one_line(monkeypatch):
    # another process's /proc/<pid>/fd/1: realpath meets "permission denied" (a traceback before)
    def denied(self, strict=False):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(Path, "resolve", denied)
    with pytest.raises(InputError, match="cannot follow /proc/1/fd/1: Permission denied"):
        resolve_path("/proc/1/fd/1")


def test_closed_or_swapped_standard_streams(dataset, run, tmp_path):
    """`>&-` closed stdout (a traceback, exit 120, nothing written); `--out /dev/stderr` put the closing line
    into the data; a read-only stdout failed only after the work."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "mgrec", "--threads", "1", "detect", str(run), str(feature_file(dataset))]

    def shell(args: list[str], redirect: str) -> subprocess.CompletedProcess:
        line = " ".join(f"'{a}'" for a in args) + " " + redirect
        return subprocess.run(["bash", "-c", line], capture_output=True, timeout=300, text=True)

    closed = shell([*command, "--out", str(tmp_path / "d.json")], ">&-")
    assert closed.returncode == 0 and "Traceback" not in closed.stderr and (tmp_path / "d.json").exists()
    refused = shell([*command, "--out", "/dev/stdout"], ">&-")
    assert refused.returncode == 2 and refused.stderr.startswith("mgrec: error: cannot write /dev/stdout")
    assert "Traceback" not in refused.stderr and "Exception ignored" not in refused.stderr
    reading = shell([*command, "--out", "/dev/stdout"], "1</dev/null")
    assert reading.returncode == 2 and "descriptor 1 is open for reading only" in reading.stderr
    swapped = shell([*command, "--out", "/dev/stderr", "--format", "csv"], "")
    assert swapped.stderr.startswith("video,start_s") and "wrote /dev/stderr" not in swapped.stderr
    assert swapped.stdout.startswith("wrote /dev/stderr")


def test_an_output_with_a_long_name_gets_a_temporary_file_that_fits(tmp_path):
    long_name = tmp_path / ("x" * 250)  # fits the 255-byte limit; ".NAME.<pid>.<random>.tmp" would not
    atomic_write_text(long_name, "kept")
    atomic_write_text(long_name, "replaced")
    assert long_name.read_text() == "replaced" and sorted(p.name for p in tmp_path.iterdir()) == [long_name.name]


def test_detect_to_dev_stdout_in_a_pipe_writes_the_json_there(dataset, run):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mgrec", "--threads", "1", "detect", str(run),
                           str(feature_file(dataset)), "--out", "/dev/stdout"], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert set(json.loads(done.stdout)["results"]) == {"synthetic_000"}  # stdout holds the JSON alone
    assert b"wrote /dev/stdout" in done.stderr


def test_detect_into_a_pipe_writes_the_json_alone_there_and_its_summary_on_stderr(capsys, dataset, run, tmp_path):
    import threading

    out = tmp_path / "out"
    os.mkfifo(out)
    received = []
    reader = threading.Thread(target=lambda: received.append(out.read_bytes()))
    reader.start()
    outcome = mgrec(capsys, "detect", run, feature_file(dataset), "--out", out)
    reader.join(timeout=30)
    assert outcome.code == 0 and outcome.out == ""
    assert "wrote " in outcome.err
    assert set(json.loads(received[0])["results"]) == {"synthetic_000"}  # the pipe holds the JSON alone
    assert stat.S_ISFIFO(os.stat(out).st_mode)


def test_an_ensemble_into_a_file_and_scores_with_a_bad_threshold_are_one_line(capsys, run, tmp_path):
    from mgrec.run import _SCORE_KEYS, RunDir

    a_file = tmp_path / "afile"
    a_file.write_text("x")
    outcome = mgrec(capsys, "ensemble", run, run, "--out", a_file)
    assert outcome.code == 2 and "Traceback" not in outcome.err
    assert outcome.err.splitlines()[-1].endswith("afile is not a folder; the ensemble is written into a new folder")
    assert a_file.read_text() == "x"
    for bad in ("x", [1], float("nan"), 1.5):
        path = tmp_path / "eval_test.json"
        path.write_text(json.dumps({**{key: 0 for key in _SCORE_KEYS}, "score_threshold": bad}))
        with pytest.raises(InputError, match=r"eval_test.json \[score_threshold\]: expected a number in \[0, 1\]"):
            RunDir(tmp_path).read_eval("test", ["a", "b", "c"])


@pytest.mark.parametrize("command, output", [
    (("evaluate",), "detections_test.json"), (("evaluate",), "eval_test.json"),
    (("evaluate", "--checkpoint", "last"), "eval_test_last.json"), (("report",), "report_test.html"),
    (("analyze",), "analysis"), (("analyze",), "analysis/test_analysis.json"),
])
def test_a_link_at_a_runs_own_output_name_is_refused_before_it_replaces_what_it_names(
        capsys, dataset, run_copy, tmp_path, command, output):
    """evaluate, report and analyze write at names of their own in the run: a link there once carried the write
    onto the run's config.yaml (the run destroyed) or the annotations it read."""
    victim = run_copy / "config.yaml"
    before = victim.read_bytes()
    link = run_copy / output
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(victim if output != "analysis" else tmp_path)
    if command[0] != "evaluate":  # report and analyze read its scores
        assert mgrec(capsys, "evaluate", run_copy).code == 0
    outcome = mgrec(capsys, command[0], run_copy, *command[1:])
    assert_input_error(outcome, f"{link}: is a symbolic link", "remove the link")
    assert victim.read_bytes() == before and link.is_symlink()


def test_analyze_refuses_a_file_where_its_folder_goes_and_a_run_may_be_named_like_a_config(
        capsys, run_copy, tmp_path):
    assert mgrec(capsys, "evaluate", run_copy).code == 0
    (run_copy / "analysis").write_text("notes")
    assert_input_error(mgrec(capsys, "analyze", run_copy), f"{run_copy / 'analysis'}: is not a folder")
    assert (run_copy / "analysis").read_text() == "notes"
    named = Path(shutil.copytree(run_copy, tmp_path / "run.yaml"))  # `mgrec train ... --out run.yaml` makes one
    assert mgrec(capsys, "evaluate", named).code == 0
    assert_input_error(mgrec(capsys, "evaluate", tmp_path / "other.yaml"), "is a config file, not a run directory")


@pytest.mark.parametrize("row, expected", [
    ("1,1_0,2_0", "expected whole numbers"), ("1,\u0663\u0660,40", "expected whole numbers"),
    ("1,\uff11\uff10\uff10,200", "expected whole numbers"),
])
def test_smg_label_numbers_are_ascii_digits_and_rows_end_at_line_breaks_only(capsys, tmp_path, row, expected):
    """int() took "1_0" as 10 and Arabic-Indic or full-width digits; str.splitlines() broke a row at U+2028."""
    sample = tmp_path / "smg" / "Sample0001"
    sample.mkdir(parents=True)
    labels = sample / "Sample0001_finelabels.csv"
    (sample / "Sample0001_data.csv").write_text("1400,28,4095\n")
    labels.write_text(f"5,28,56\n{row}\n", encoding="utf-8")
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann.json")
    assert_input_error(outcome, f"{labels}:2", expected)
    labels.write_text("5,28,56\n1,10,20\u20281,30,40\n2,x,9\n", encoding="utf-8")  # one row, then line 3
    outcome = mgrec(capsys, "data", "convert", tmp_path / "smg", "--out", tmp_path / "ann.json")
    assert_input_error(outcome, f"{labels}:2")
    assert not (tmp_path / "ann.json").exists()


def test_score_names_an_smg_prediction_frame_beyond_the_float_range(capsys, dataset, tmp_path):
    outcome, file = _score_csv_folder(capsys, dataset, tmp_path, f"1,0,{'9' * 400}\n".encode())
    assert_input_error(outcome, f"{file}:1", "frame number out of range")
    (tmp_path / "b").mkdir()
    outcome, file = _score_csv_folder(capsys, dataset, tmp_path / "b", "1,0,1_0,0.5\n".encode())
    assert_input_error(outcome, f"{file}:1", "must be integers")


def test_a_file_name_that_is_not_utf8_is_refused_before_its_id_reaches_an_output(capsys, dataset, run, tmp_path):
    """Its id went into the CSV as a traceback (UnicodeEncodeError) after the work, into JSON as a lone surrogate."""
    folder = tmp_path / "f"
    folder.mkdir()
    copy_with_sidecar(dataset, folder, os.fsdecode(b"bad\xffname"))
    for fmt in ("csv", "json", "srt"):
        out = tmp_path / (f"out.{fmt}" if fmt != "srt" else "subtitles")  # srt: a folder (out.srt is refused)
        outcome = mgrec(capsys, "detect", run, folder, "--format", fmt, "--out", out)
        assert_input_error(outcome, "the file name is not UTF-8 text", "rename the file")
        assert not out.exists()


@pytest.mark.parametrize("case", ["long id", "file", "link"])
def test_detect_smg_checks_every_label_path_before_writing_any(capsys, dataset, run, tmp_path, case):
    """A 245-byte id (its `_finelabels.csv` name past 255 bytes) or OUT/<id> as a file failed after `a/` was written
    (a partial set that score reads as whole); OUT/<id> as a link to another folder took that video's file there."""
    inputs = tmp_path / "in"
    copy_with_sidecar(dataset, inputs, "a")
    other = "v" * 245 if case == "long id" else "zz"
    copy_with_sidecar(dataset, inputs, other)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    if case == "file":
        (out / other).write_text("notes")
    elif case == "link":
        (out / other).symlink_to(elsewhere)
    outcome = mgrec(capsys, "detect", run, inputs, "--format", "smg", "--out", out)
    assert_input_error(outcome, *{"long id": ["is longer than 255 bytes"], "file": [f"{out / other}: is a file"],
                                  "link": [f"{out / other}: is a symbolic link"]}[case])
    assert not list(out.rglob("*.csv")) and not list(elsewhere.iterdir())


def test_an_error_quoting_a_huge_value_stays_a_readable_line(capsys, dataset, tmp_path):
    """A 1 MB label (or a segment of a million numbers) made a megabyte-long error line."""
    from mgrec.terminal import MAX_LINE_CHARS

    pred = tmp_path / "pred.json"
    for entry in ({"segment": [1.0, 2.0], "label": "x" * 10**6, "score": 0.5},
                  {"segment": [1.0] * 10**6, "label": "a", "score": 0.5}):
        pred.write_text(json.dumps({"results": {"synthetic_002": [entry]}}))
        outcome = mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", pred)
        assert_input_error(outcome, str(pred), "characters left out")
        assert max(map(len, outcome.err.splitlines())) < MAX_LINE_CHARS + 100


def test_a_demo_cache_that_is_a_file_is_one_line(capsys, tmp_path):
    # FileExistsError / NotADirectoryError tracebacks from the folder's creation
    (tmp_path / "cachefile").write_text("hi")
    for cache in (tmp_path / "cachefile", tmp_path / "cachefile" / "sub"):
        outcome = mgrec(capsys, "demo", "--cache", cache, "--out", tmp_path / "run", "--threads", "1")
        assert_input_error(outcome, f"{cache}: cannot make the demo data folder there")
    assert (tmp_path / "cachefile").read_text() == "hi" and not (tmp_path / "run").exists()


def test_a_folder_given_as_a_run_or_as_predictions_names_where_the_run_or_its_detections_are(capsys, run_copy,
                                                                                            dataset, tmp_path):
    # right after the demo: `evaluate` of the data folder or of RUN/checkpoints said "config.yaml: not found", and
    # `score --pred RUN` "no .csv prediction files", naming neither the run nor its detections
    data = tmp_path / "data"
    data.mkdir()
    (data / "annotations.json").write_text(Path(dataset.annotations).read_text())
    assert_input_error(mgrec(capsys, "evaluate", data), f"{data}: not a run directory (no config.yaml, run.json); it "
                       "holds annotations.json, data rather than a run", "runs/demo-mgrec")
    assert_input_error(mgrec(capsys, "evaluate", run_copy / "checkpoints"),
                       f"it lies in the run {run_copy.resolve()}: give that folder")
    assert_input_error(mgrec(capsys, "report", tmp_path), f"the run in it: {run_copy}")
    (run_copy / "detections_test.json").write_text("{}")
    assert_input_error(mgrec(capsys, "score", "--gt", dataset.annotations, "--pred", run_copy),
                       f"it holds {run_copy / 'detections_test.json'} (`mgrec evaluate` writes a split's detections "
                       "there): give that file")
    (tmp_path / "empty").mkdir()  # nothing of a run, no run near: the run's own check says what is missing
    assert_input_error(mgrec(capsys, "evaluate", tmp_path / "empty"), "config.yaml: not found")
