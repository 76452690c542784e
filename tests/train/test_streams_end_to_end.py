"""A run with two input streams at different rates, through every path: data check, train, evaluate,
detect (with another folder for a stream), stream (online), and the errors a wrong stream gives."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from tests.helpers import SMALL_MODEL

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, StreamConfig, TrainConfig
from mgrec.data.check import check_dataset
from mgrec.data.features import FeatureSidecar, load_features, read_sidecar, write_features
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.detect import detect_files
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.stream import stream_file
from mgrec.run import RunDir
from mgrec.train.loop import train

MAIN_DIM = 20  # the synthetic features' first channels are the main stream, the rest the auxiliary one


@pytest.fixture(scope="module")
def two_stream_data(tmp_path_factory):
    """A synthetic dataset split by channels into stream `main` (stride 4) and stream `aux` at half the
    rate (stride 8: every other row, which lies exactly on its own grid)."""
    root = tmp_path_factory.mktemp("streams")
    paths = make_synthetic_dataset(root, num_videos=4, num_classes=3, feature_dim=32, length=160,
                                   subsets=("train", "train", "val", "test"))
    for name in ("main", "aux"):
        (root / name).mkdir()
    for path in sorted(paths.features.glob("*.npy")):
        features, sidecar = load_features(path), read_sidecar(path.with_suffix(".json"))
        write_features(root / "main" / path.name, features[:, :MAIN_DIM],
                       FeatureSidecar(sidecar.fps, 4, 16, "test-main", MAIN_DIM, sidecar.frames))
        write_features(root / "aux" / path.name, features[::2, MAIN_DIM:],
                       FeatureSidecar(sidecar.fps, 8, 16, "test-aux", 32 - MAIN_DIM, sidecar.frames))
    return paths, root


def streams_config(paths, root, fusion: str) -> Config:
    data = DataConfig(annotations=str(paths.annotations), max_seq_len=128, streams=[
        StreamConfig(name="main", features=str(root / "main"), feature_dim=MAIN_DIM, stride=4, window=16),
        StreamConfig(name="aux", features=str(root / "aux"), feature_dim=32 - MAIN_DIM, stride=8, window=16),
    ])
    return Config(
        seed=3, data=data,
        model=ModelConfig(num_classes=3, fusion=fusion, **SMALL_MODEL),
        train=TrainConfig(epochs=2, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3, eval_every=1),
        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100),
    )


@pytest.fixture(scope="module")
def gated_run(two_stream_data, tmp_path_factory):
    paths, root = two_stream_data
    run_dir = tmp_path_factory.mktemp("run") / "gated"
    torch.set_num_threads(1)
    train(streams_config(paths, root, "gated"), run_dir, log=lambda *_: None, progress=False)
    return run_dir


def test_data_check_covers_every_stream(two_stream_data):
    paths, root = two_stream_data
    config = streams_config(paths, root, "gated")
    report = check_dataset(config)
    assert not report.errors
    assert [(s["name"], s["dim"], s["stride"], s["grid"]) for s in report.streams] == [
        ("main", MAIN_DIM, 4, True), ("aux", 32 - MAIN_DIM, 8, False)]
    assert "  aux: dim 12, stride 8, window 16" in report.format()
    # a truncated auxiliary file is an error of that stream's file
    aux = root / "aux" / "synthetic_003.npy"
    saved = aux.read_bytes(), aux.with_suffix(".json").read_bytes()
    try:
        features = load_features(aux)
        write_features(aux, features[: len(features) // 2],
                       FeatureSidecar(50.0, 8, 16, "test-aux", 32 - MAIN_DIM, None))
        errors = check_dataset(config).errors
        assert any("aux/synthetic_003.npy" in p.where and "of stream 'aux'" in p.message for p in errors)
    finally:
        aux.write_bytes(saved[0])
        aux.with_suffix(".json").write_bytes(saved[1])


@pytest.mark.slow
def test_a_gated_two_stream_run_trains_evaluates_detects_and_streams(gated_run, two_stream_data, tmp_path):
    paths, root = two_stream_data
    config = RunDir(gated_run).read_config()
    assert [s.name for s in config.data.streams] == ["main", "aux"] and config.model.stream_dims == [20, 12]
    result = evaluate_run(gated_run, "test", precision="fp32")
    assert 0 <= result["f1"] <= 1 and RunDir(gated_run).eval_path("test").exists()

    # detect: the grid stream's file; the other stream from the run's folder or from --stream's
    test_file = root / "main" / "synthetic_003.npy"
    first = detect_files(gated_run, [test_file], tmp_path / "a.json", ranked=True, precision="fp32")
    elsewhere = tmp_path / "aux-copy"
    shutil.copytree(root / "aux", elsewhere)
    second = detect_files(gated_run, [test_file], tmp_path / "b.json", ranked=True, precision="fp32",
                          stream_folders={"aux": elsewhere})
    a, b = (json.loads((tmp_path / f"{n}.json").read_text())["results"] for n in "ab")
    assert a == b and first.detections == second.detections > 0
    # the auxiliary stream matters: other auxiliary features give other detections
    noise = tmp_path / "aux-noise"
    noise.mkdir()
    aux = load_features(root / "aux" / "synthetic_003.npy")
    write_features(noise / "synthetic_003.npy", np.random.default_rng(0).normal(size=aux.shape).astype(np.float32),
                   read_sidecar(root / "aux" / "synthetic_003.json"))
    detect_files(gated_run, [test_file], tmp_path / "c.json", ranked=True, precision="fp32",
                 stream_folders={"aux": noise})
    assert json.loads((tmp_path / "c.json").read_text())["results"] != a

    # online: the whole stream in view gives the offline hard set
    detector = OfflineDetector.from_run(gated_run, precision="fp32")
    offline = detector.hard_set(detector.detect(test_file))
    out = io.StringIO()
    summary = stream_file(gated_run, test_file, lookahead=30.0, hop=8, history=512, out=out, precision="fp32")
    emitted = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary.emitted == len(offline)
    assert sorted((e["label"], round(e["segment"][0], 4)) for e in emitted) == sorted(
        (d.label, round(d.start, 4)) for d in offline)


def test_a_run_used_without_its_stream_is_a_clear_error(gated_run, two_stream_data, tmp_path):
    _, root = two_stream_data
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(root / "main" / "synthetic_003.npy", lonely)
    shutil.copy(root / "main" / "synthetic_003.json", lonely)
    with pytest.raises(InputError, match=r"video synthetic_003: stream 'aux' has no feature file .*empty"):
        detect_files(gated_run, [lonely / "synthetic_003.npy"], tmp_path / "x.json",
                     stream_folders={"aux": tmp_path / "empty"})
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    write_features(wrong / "synthetic_003.npy", np.zeros((40, 5), np.float32),
                   FeatureSidecar(50.0, 8, 16, "test-aux", 5, None))
    with pytest.raises(InputError, match=r"wrong/synthetic_003"):
        detect_files(gated_run, [lonely / "synthetic_003.npy"], tmp_path / "x.json", stream_folders={"aux": wrong})
    # the other stream's features made another way than the run's (its recipe in feature_recipe_aux.json): only
    # the grid stream's file was checked, and detect and stream ran on them
    other_recipe = tmp_path / "other-recipe"
    other_recipe.mkdir()
    aux = root / "aux" / "synthetic_003.npy"
    features, sidecar = load_features(aux), read_sidecar(aux.with_suffix(".json"))
    write_features(other_recipe / "synthetic_003.npy", features,
                   FeatureSidecar(sidecar.fps, 8, 16, "another-backbone", sidecar.dim, sidecar.frames))
    recipe_error = (r"other-recipe/synthetic_003.json: these features were made with another recipe than the run was "
                    r"trained on \(.*feature_recipe_aux.json\): backbone 'another-backbone' \(the run: 'test-aux'\)")
    with pytest.raises(InputError, match=recipe_error):
        detect_files(gated_run, [lonely / "synthetic_003.npy"], tmp_path / "x.json",
                     stream_folders={"aux": other_recipe})
    with pytest.raises(InputError, match=recipe_error):
        stream_file(gated_run, lonely / "synthetic_003.npy", stream_folders={"aux": other_recipe}, out=io.StringIO())
    # push() of one stream's rows to a run of two: the message points to push_streams
    from mgrec.infer.online import OnlineDetector

    online = OnlineDetector(OfflineDetector.from_run(gated_run), fps=50.0)
    with pytest.raises(InputError, match=r"expected shape \(T, 32\) \(the joined rows of the run's 2 streams; "
                                         r"push_streams takes each stream's own chunks by name\), got \(4, 20\)"):
        online.push(np.zeros((4, MAIN_DIM), np.float32))
    # one stream fed by push (joined rows) and push_streams both: the aligner's count of released grid steps and the
    # detector's clock drifted apart, every later time 0.8 s late, without an error
    online.push(np.zeros((4, 32), np.float32))  # the refused chunk above fed nothing; joined rows are a way to feed
    with pytest.raises(InputError, match=r"this stream is fed by push\(\); push_streams\(\) too would put rows "
                                         r"beside the aligned grid steps"):
        online.push_streams({"main": np.zeros((4, MAIN_DIM), np.float32)})
    by_streams = OnlineDetector(OfflineDetector.from_run(gated_run), fps=50.0)
    by_streams.push_streams({"main": np.zeros((4, MAIN_DIM), np.float32)})
    with pytest.raises(InputError, match=r"this stream is fed by push_streams\(\); push\(\) too"):
        by_streams.push(np.zeros((4, 32), np.float32))


@pytest.mark.slow
def test_evaluate_and_report_show_where_the_gate_let_the_auxiliary_stream_in(gated_run):
    from mgrec.report.html import write_report

    result = evaluate_run(gated_run, "val", precision="fp32")
    gates = result["fusion_gates"]
    assert gates["streams"] == ["aux"] and gates["videos"] == 1 and gates["level"] == 0
    values = [v for v in gates["per_class"].values() if v is not None] + [gates["background"]]
    assert values and all(0 < v < 1 for v in values)
    page = write_report(gated_run, split="val").read_text(encoding="utf-8")
    assert 'id="fusion"' in page and "mean gate" in page
