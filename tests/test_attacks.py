"""Attack suite: generated members of the hostile-input families of issue 19, in bounded time.

Each test generates inputs of one family and asserts the contract of `docs/robustness.md`: a correct
result or one clear `InputError` line (never another exception), nothing written or read outside
its folder, no input changed, and no allocation beyond what the input really holds.

- names (family 2): video ids and file names holding `..`, separators, absolute paths, drives, NUL,
  newlines, terminal escapes and bidi overrides: `safe_child`, `feature_path`, `write_smg_labels`,
  and `mgrec detect --format smg` end to end;
- numbers (family 3): feature arrays of every float width with NaN, Inf, subnormal and huge values
  (.npy and .npz): the validator refuses exactly the arrays outside its stated range; network
  outputs with NaN/Inf at real and at padded positions;
- bombs and corruption (family 4): valid .npy/.npz files cut short, with bytes overwritten or with
  their declared shape replaced: each loads or is refused, with a bounded allocation;
- extraction (family 6): skeleton frame rates and coordinates of any float.

Derandomized (the same examples every run) and bounded: MGREC_ATTACK_EXAMPLES examples per test
(default 50; a few seconds in all on one CPU core); MGREC_ATTACK_EXAMPLES=1000 MGREC_FUZZ_RANDOM=1
searches harder.
"""

from __future__ import annotations

import io
import os
import re
import tracemalloc
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib import format as npy_format
from tests.helpers import small_config

from mgrec.cli import main
from mgrec.config import PostprocessConfig, TrainConfig
from mgrec.data.features import MAX_FEATURE_ABS, feature_path, inspect_features, load_features
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.extract.skeleton import MAX_COORDINATE, NUM_JOINTS, SPINE_BASE, SPINE_SHOULDER, skeleton_window_features
from mgrec.files import safe_child
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import check_network_output
from mgrec.records import Detection
from mgrec.run import RunDir
from mgrec.smg_csv import MAX_FPS, write_smg_labels

ATTACK = settings(
    max_examples=int(os.environ.get("MGREC_ATTACK_EXAMPLES", "50")),
    deadline=None,
    derandomize=os.environ.get("MGREC_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def assert_one_clear_line(error: InputError) -> None:
    """An InputError message a terminal shows as one short, harmless line."""
    message = str(error)
    assert message and len(message) < 1000, message
    assert not re.search(r"[\n\r\0\x1b\u202a-\u202e\u2066-\u2069]", message), repr(message)
    assert "allow_pickle" not in message and "unsafely" not in message


# ---------------------------------------------------------------------------------------------
# Names (family 2)

HOSTILE = ["..", ".", "", "/", "../x", "a/../../b", "/etc/passwd", "C:\\x", "C:x", "a\\b", "v\0", "\x1b[2J\x1b[31mred",
           "\u202eexe.txt", "line\nbreak", "x" * 256, "é" * 128, "-rf", "=HYPERLINK()", "...", " ", "a..b"]
names = st.text(alphabet=st.sampled_from(list("./\\:\0\n\x1b[2Jaé \u202e")), max_size=12) | st.sampled_from(HOSTILE)


def is_plain_name(name: str) -> bool:
    return (name not in ("", ".", "..") and not re.search(r"[/\\\0]", name) and not re.match(r"[A-Za-z]:", name)
            and len(name.encode()) <= 255)


@ATTACK
@given(name=names)
@example(name="..")
def test_safe_child_keeps_every_name_directly_inside_its_folder(name):
    folder = Path("/srv/out")
    try:
        path = safe_child(folder, name, "video id")
    except InputError as error:
        assert not is_plain_name(name)
        assert str(error).startswith("video id ")
        assert_one_clear_line(error)
        return
    assert is_plain_name(name)
    assert path.parent == folder and path.name == name


@ATTACK
@given(name=names)
def test_feature_path_never_leaves_the_features_folder(name):
    try:
        path = feature_path("/data/features", name, "npy")
    except InputError as error:
        assert_one_clear_line(error)
        return
    assert path.parent == Path("/data/features") and path.name == f"{name}.npy"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@ATTACK
@given(ids=st.lists(names, min_size=1, max_size=3, unique=True))
def test_smg_labels_are_written_inside_out_or_not_at_all(tmp_path_factory, ids):
    sandbox = tmp_path_factory.mktemp("sandbox")
    (sandbox / "keep.txt").write_text("an input")
    out = sandbox / "deep" / "out"
    before = snapshot(sandbox)
    detections = {video_id: [Detection(video_id, 1.0, 2.0, 0, "c0", 0.5)] for video_id in ids}
    try:
        written = write_smg_labels(detections, out, fps=10.0)
    except InputError as error:
        assert_one_clear_line(error)
        assert snapshot(sandbox) == before  # refused before any file was written
        return
    for path in written:
        assert path.resolve().parent.parent == out.resolve()
    after = snapshot(sandbox)
    assert {k: v for k, v in after.items() if not k.startswith("deep")} == before


# ---------------------------------------------------------------------------------------------
# `mgrec detect --format smg` on feature files with hostile names, end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack-run")
    dataset = make_synthetic_dataset(root / "data", num_videos=3, feature_dim=8, length=64,
                                     subsets=("train", "val", "test"))
    config = small_config(dataset, seed=1, max_seq_len=64, train=TrainConfig(epochs=1),
                          postprocess=PostprocessConfig(pre_nms_topk=50, max_detections=20))
    torch.manual_seed(0)
    RunDir(root / "run").write_for_inference(config, [f"c{k}" for k in range(config.model.num_classes)],
                                             build_detector(config.model), score_threshold=0.0)
    return root / "run", dataset.features / "synthetic_000.npy"


@pytest.mark.parametrize("name", ["..", "\x1b[31mred", "=cmd()", "-rf", "line\nbreak", "\u202eevil", " ", "C:x"])
def test_detect_with_hostile_file_names_writes_only_inside_out(capsys, tmp_path, tiny_run, name):
    run, source = tiny_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    data = source.read_bytes()
    (inputs / f"{name}.npy").write_bytes(data)
    (inputs / f"{name}.json").write_bytes(source.with_suffix(".json").read_bytes())  # the sidecar: fps, stride
    out = tmp_path / "out"
    code = main(["detect", str(run), str(inputs / f"{name}.npy"), "--format", "smg", "--out", str(out), "--all"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (inputs / f"{name}.npy").read_bytes() == data  # the input is untouched
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents and inputs not in p.parents]
    assert outside == []
    if code == 0:
        assert [p.relative_to(out) for p in out.rglob("*.csv")] == [Path(name) / f"{name}_finelabels.csv"]
    else:
        # a name refused for what it is: not a plain file name, or one holding a control character, which a video id
        # may not (`files.id_from_name`: outputs are written under it)
        controlled = any(unicodedata.category(char) == "Cc" for char in name)
        assert code == 2 and err.startswith("mgrec: error: ") and (controlled or not is_plain_name(name))


# ---------------------------------------------------------------------------------------------
# Numbers (family 3): the feature validator refuses exactly what is outside its stated range

FLOAT_DTYPES = [np.float16, np.float32, np.float64]


@st.composite
def feature_arrays(draw):
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    shape = draw(st.tuples(st.integers(1, 12), st.just(3)))
    edges = [0.0, 65504.0, -65504.0] if dtype == np.float16 else [0.0, 1e6, -1e6, 1e6 + 1, 3e38]  # at the bound
    elements = st.floats(width=np.finfo(dtype).bits, allow_nan=True, allow_infinity=True) | st.sampled_from(edges)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@ATTACK
@given(array=feature_arrays(), container=st.sampled_from(["npy", "npz"]))
@example(array=np.full((2, 3), 3e38, np.float32), container="npy")
@example(array=np.full((2, 3), 1e30, np.float64), container="npz")
def test_feature_values_load_exactly_when_finite_and_in_range(tmp_path_factory, array, container):
    path = tmp_path_factory.mktemp("numbers") / f"v.{container}"
    if container == "npz":
        np.savez(path, feats=array)
    else:
        np.save(path, array)
    stored = path.read_bytes()
    in_range = bool(np.all(np.abs(array.astype(np.float64)) <= MAX_FEATURE_ABS))  # NaN compares False
    try:
        loaded = load_features(path, expected_dim=3)
    except InputError as error:
        assert not in_range
        assert str(error).startswith(f"{path}: ") and ("NaN/Inf" in str(error) or "outside +-1e+06" in str(error))
        assert_one_clear_line(error)
    else:
        assert in_range
        np.testing.assert_array_equal(loaded, array.astype(np.float32))
        assert np.isfinite(loaded).all()
    assert path.read_bytes() == stored


@ATTACK
@given(
    levels=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 2**16 - 1)), min_size=1, max_size=3),
    bad=st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    where=st.tuples(st.integers(0, 2), st.integers(0, 7), st.integers(0, 2), st.booleans()),
)
def test_network_outputs_are_refused_exactly_when_a_real_position_is_not_finite(levels, bad, where):
    logits, offsets, masks = [], [], []
    for length, bits in levels:
        logits.append(torch.zeros(length, 2))
        offsets.append(torch.ones(length, 2))
        masks.append(torch.tensor([(bits >> t) & 1 == 1 for t in range(length)]))
    level, t, column, in_offsets = where
    level, t = level % len(levels), t % levels[level % len(levels)][0]
    (offsets if in_offsets else logits)[level][t, column % 2] = bad
    try:
        check_network_output(logits, offsets, masks, "v")
    except InputError as error:
        assert bool(masks[level][t]), "a padded position may hold anything"
        assert_one_clear_line(error)
    else:
        assert not bool(masks[level][t])


# ---------------------------------------------------------------------------------------------
# Corrupted, truncated and bomb headers (family 4): loaded or refused, never a large allocation


def valid_file(container: str) -> bytes:
    buffer = io.BytesIO()
    array = np.arange(24, dtype=np.float32).reshape(8, 3)
    if container == "npz":
        np.savez_compressed(buffer, feats=array)
    else:
        np.save(buffer, array)
    return buffer.getvalue()


@st.composite
def damaged_files(draw):
    container = draw(st.sampled_from(["npy", "npz"]))
    data = bytearray(valid_file(container))
    how = draw(st.sampled_from(["truncate", "overwrite", "shape", "insert", "declare"]))
    if how == "declare":  # a well-formed header declaring any shape and dtype, over 96 bytes of data
        shape = draw(st.lists(st.integers(0, 10**12), min_size=0, max_size=3).map(tuple))
        descr = draw(st.sampled_from(["<f4", "<f2", ">f8", "<i8", "|O", "<c16", "|V16"]))
        header = io.BytesIO()
        npy_format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
        member = header.getvalue() + bytes(96)
        if container == "npz":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("feats.npy", member)
            member = buffer.getvalue()
        return container, member
    if how == "truncate":
        data = data[: draw(st.integers(1, len(data) - 1))]
    elif how == "overwrite":
        start = draw(st.integers(0, min(len(data) - 1, 160)))
        patch = draw(st.binary(min_size=1, max_size=8))
        data[start : start + len(patch)] = patch
    elif how == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    else:  # a declared shape of any size, in the .npy header (stored uncompressed in the npz too)
        shape = draw(st.tuples(st.integers(0, 10**15), st.integers(0, 10**6)))
        text = repr(shape).encode()
        data = bytearray(bytes(data).replace(b"(8, 3)", text.ljust(6)[: max(6, len(text))], 1))
    return container, bytes(data)


@ATTACK
@given(damaged=damaged_files(), reader=st.sampled_from([load_features, inspect_features]))
def test_damaged_feature_files_load_or_are_refused_without_large_allocations(tmp_path_factory, damaged, reader):
    container, data = damaged
    path = tmp_path_factory.mktemp("damaged") / f"v.{container}"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        reader(path, 3)
    except InputError as error:
        assert str(error).startswith(f"{path}: ")
        assert_one_clear_line(error)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak:,} bytes allocated for a {len(data)}-byte file"
    assert path.read_bytes() == data


# ---------------------------------------------------------------------------------------------
# Extraction (family 6): any frame rate and any coordinate scale


def standing_person(frames: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    pose = rng.uniform(-0.4, 0.4, (NUM_JOINTS, 3)) + np.array([0.0, 0.0, 2.5])
    pose[SPINE_SHOULDER] = pose[SPINE_BASE] + [0.0, 0.5, 0.0]
    moves = rng.normal(0, 0.01, (frames, NUM_JOINTS, 3))
    return pose[None] + moves


@ATTACK
@given(
    fps=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([28.0, MAX_FPS, 0.0, -5.0]),
    scale=st.floats(1e-3, MAX_COORDINATE / 4) | st.sampled_from([1.0, 1000.0]),
)
def test_skeleton_features_are_finite_and_in_range_or_refused(fps, scale):
    try:
        features = skeleton_window_features(standing_person(24) * scale, fps, 8, 4, source="s_skeleton.csv")
    except InputError as error:
        assert str(error).startswith("s_skeleton.csv: ")
        assert_one_clear_line(error)
        assert not (np.isfinite(fps) and 0 < fps <= MAX_FPS) or "outside" in str(error)
        return
    assert np.isfinite(fps) and 0 < fps <= MAX_FPS
    assert np.isfinite(features).all() and np.abs(features).max() <= MAX_FEATURE_ABS


# ---------------------------------------------------------------------------------------------
# Outputs that collide with inputs or with a run (family 1 and 2)


def _snapshot(*folders: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for folder in folders for p in folder.rglob("*") if p.is_file()}


@pytest.fixture()
def evaluated_run(tmp_path, tiny_run):
    """A copy of the tiny run with every kind of file: outputs of evaluate and report, metrics, lock."""
    import shutil

    source_run, feature = tiny_run
    run = RunDir(tmp_path / "run")
    shutil.copytree(source_run, run.path)
    data = feature.parent.parent
    features = tmp_path / "features"
    shutil.copytree(feature.parent, features)
    (run.eval_path("test")).write_text("{}")
    (run.detections_path("test")).write_text('{"results": {}}')
    run.append_metrics({"kind": "train", "epoch": 0, "loss": 1.0})
    run.lock_path.write_text("")
    return run, features, data / "annotations.json"


def test_no_output_may_replace_an_input_or_a_file_of_the_run(capsys, tmp_path, evaluated_run):
    run, features, annotations = evaluated_run
    feature = features / "synthetic_000.npy"
    targets = [feature, feature.with_suffix(".json"), *run.owned_files()]
    before = _snapshot(run.path, features)
    for out in targets:
        for command in (["detect", run.path, feature, "--out", out], ["detect", run.path, features, "--out", out],
                        ["report", run.path, "--annotations", annotations, "--out", out]):
            if command[0] == "report" and (out.name.startswith("report_") or run.path not in out.parents):
                continue  # a report may replace a report; it reads no feature file
            assert main([str(c) for c in command]) == 2, (command, out)
            err = capsys.readouterr().err
            assert err.startswith("mgrec: error: --out") and "would overwrite" in err and "Traceback" not in err
    assert _snapshot(run.path, features) == before


def test_report_out_must_be_an_html_file_or_a_folder(capsys, tmp_path, evaluated_run):
    """`report --out notes.txt` replaced the user's notes with HTML; `--out reports` (meant: a folder) made a
    file named `reports`."""
    run, _, annotations = evaluated_run
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    for out in (notes, tmp_path / "reports"):
        assert main(["report", str(run.path), "--annotations", str(annotations), "--out", str(out)]) == 2
        assert "a report is an HTML file; give a name ending in .html, or a folder" in capsys.readouterr().err
    assert notes.read_text() == "keep" and not (tmp_path / "reports").exists()


def test_an_output_inside_an_input_folder_may_only_be_a_new_file(capsys, tmp_path, evaluated_run):
    run, features, _ = evaluated_run
    assert main(["detect", str(run.path), str(features), "--out", str(features / "detections.json")]) == 0
    assert (features / "detections.json").exists()


@pytest.mark.parametrize("command", [
    ["train", "CONFIG", "--out", "FILE", "--no-progress"],
    ["extract", "VIDEO", "--out", "FILE"],
    ["detect", "RUN", "FEATURE", "--out", "FOLDER"],
    ["data", "convert", "FOLDER", "--out", "FOLDER"],
])
def test_an_out_of_the_wrong_kind_is_one_line_before_any_work(capsys, tmp_path, evaluated_run, command):
    from mgrec.config import save_config

    run, features, _ = evaluated_run
    (tmp_path / "afile").write_text("keep me")
    (tmp_path / "afolder").mkdir()
    save_config(run.read_config(), tmp_path / "c.yaml")
    names = {"CONFIG": tmp_path / "c.yaml", "FILE": tmp_path / "afile", "FOLDER": tmp_path / "afolder",
             "RUN": run.path, "FEATURE": features / "synthetic_000.npy", "VIDEO": tmp_path / "v.mp4"}
    (tmp_path / "v.mp4").write_bytes(b"not a video")
    assert main([str(names.get(part, part)) for part in command]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mgrec: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "keep me"


# ---------------------------------------------------------------------------------------------
# Corrupted, truncated and duplicated run files (family 1)

RUN_FILE_DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "empty": lambda data: b"",
    "garbage": lambda data: b"\x00\xff garbage \x1b[31m",
    "duplicated": lambda data: data + data,
}


@pytest.mark.parametrize("damage", sorted(RUN_FILE_DAMAGE))
@pytest.mark.parametrize("name", ["run.json", "config.yaml", "classes.json", "postprocess.json",
                                  "checkpoints/best.safetensors"])
def test_a_damaged_run_file_is_one_clear_line_in_detect(capsys, evaluated_run, name, damage):
    run, features, _ = evaluated_run
    path = run.path / name
    path.write_bytes(RUN_FILE_DAMAGE[damage](path.read_bytes()))
    feature, out = features / "synthetic_000.npy", run.path.parent / "o.json"
    code = main(["detect", str(run.path), str(feature), "--out", str(out)])
    err = capsys.readouterr().err
    if code == 0:  # a duplicated YAML or JSON document can still be the same valid content
        assert damage == "duplicated", (name, err)
        return
    assert code == 2 and err.startswith("mgrec: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    assert name.split("/")[-1] in err or "checkpoint" in err, err


# ---------------------------------------------------------------------------------------------
# The config loader (family 5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("abtrin:{}[]-&*!|>#'\"0.9e\n ")), max_size=200))
def test_any_config_text_loads_or_is_one_clear_line(tmp_path, text):
    from mgrec.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except InputError as error:
        assert_one_clear_line(error)


# ---------------------------------------------------------------------------------------------
# Output hygiene (family 7)


@settings(max_examples=30, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda name: name.strip()))  # blank names are refused
def test_whatever_a_class_is_called_the_score_table_prints_no_control_character(name):
    from mgrec.evaluate.scoring import format_score_table, score
    from mgrec.records import Segment
    from mgrec.terminal import visible

    classes = [name, name + "2"]
    truth = {"v": [Segment(video_id="v", start=1.0, end=2.0, label_id=0, label=classes[0])]}
    ranked = {"v": [Detection(video_id="v", start=1.0, end=2.0, label_id=0, label=classes[0], score=0.9)]}
    shown = visible(format_score_table(score(truth, ranked, classes, 0.5, split="test")))
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown)
