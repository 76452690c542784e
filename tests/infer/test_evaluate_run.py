"""`mgrec evaluate` (and `mgrec score`, which shares its rule on tuning): where a run's relative data paths are
looked for, and no F1 threshold tuned on the split being scored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers import one_torch_thread  # noqa: F401 (autouse)

from mgrec.cli import main
from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.evaluate.scoring import check_tuning_split
from mgrec.model.detector import build_detector
from mgrec.run import RunDir

SMALL = dict(embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3, regression_ranges=[[0, 4], [4, 8], [8, 10000]],
             drop_path=0.0)



def relative_run(root: Path, annotations: str = "data/annotations.json", features: str = "data/features",
                 seed: int = 1234, feature_prefix: str = "") -> Path:
    """A run (random weights) whose config names its data relative to `root`, as `mgrec train` run in `root` with
    `--set data.annotations=data/annotations.json` writes it; its feature files named `<feature_prefix><id>`."""
    make_synthetic_dataset(root / "data", num_videos=3, num_classes=3, feature_dim=8, length=96, seed=1,
                           subsets=("train", "val", "test"))
    for path in sorted((root / "data" / "features").iterdir()) if feature_prefix else ():
        path.rename(path.with_name(feature_prefix + path.name))
    model = ModelConfig(input_dim=8, num_classes=3, **SMALL)
    config = Config(seed=seed, data=DataConfig(annotations=annotations, features=features, feature_dim=8,
                                               max_seq_len=64, feature_prefix=feature_prefix),
                    model=model, postprocess=PostprocessConfig(max_detections=20))
    torch.manual_seed(0)
    RunDir(root / "run").write_for_inference(config, ["class00", "class01", "class02"], build_detector(model),
                                             score_threshold=0.1)
    return root / "run"


def test_evaluate_from_another_folder_says_where_relative_paths_are_read_from(tmp_path, monkeypatch, capsys):
    # before: only "annotations.json: annotations file not found", while `mgrec report` explained it
    run = relative_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert error == (f"mgrec: error: {run / 'config.yaml'} [data.annotations]: data/annotations.json not found "
                     f"(relative paths are read from the current directory {elsewhere}); run mgrec evaluate from the "
                     "folder mgrec train ran in (the run's relative paths start there), or give the path for this "
                     f"call: mgrec evaluate {run} --set data.annotations=PATH\n")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run", "--device", "cpu"]) == 0
    assert (run / "eval_test.json").is_file()


def test_evaluate_names_a_relative_features_folder_the_same_way(tmp_path, monkeypatch, capsys):
    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"))
    monkeypatch.chdir(run)
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    assert (f"[data.features]: data/features not found (relative paths are read from the current directory {run})"
            in capsys.readouterr().err)


def test_a_missing_absolute_path_is_not_blamed_on_the_working_directory(tmp_path, capsys):
    run = relative_run(tmp_path, annotations=str(tmp_path / "gone.json"))
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    gone = tmp_path / "gone.json"
    assert capsys.readouterr().err == (f"mgrec: error: {run / 'config.yaml'} [data.annotations]: {gone} not found "
                                       "(moved or deleted since the run was trained?); move it back, or give its new "
                                       f"place for this call: mgrec evaluate {run} --set data.annotations=NEW, or "
                                       "write its new place as data.annotations in "
                                       f"{run / 'config.yaml'} (the run has no "
                                       "checkpoints/last_state.pt to resume, which would record it)\n")


def test_a_run_whose_data_moved_is_evaluated_with_set_for_that_call(tmp_path, capsys):
    """A finished or copied run (no last_state.pt to resume) whose data moved could only be pointed at it by editing
    its config.yaml by hand; `--set data.KEY=NEW` points this call at it, config.yaml untouched, the same scores."""
    import json

    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"),
                       features=str(tmp_path / "data" / "features"))
    assert main(["evaluate", str(run), "--device", "cpu"]) == 0
    before = json.loads((run / "eval_test.json").read_text())
    assert before["data"] == {"annotations": str(tmp_path / "data" / "annotations.json"),
                              "features": str(tmp_path / "data" / "features"), "set_for_this_call": []}
    config = (run / "config.yaml").read_bytes()
    (tmp_path / "data").rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    remedy = f"give its new place for this call: mgrec evaluate {run} --set data.annotations=NEW"
    assert remedy in capsys.readouterr().err
    assert main(["evaluate", str(run), "--device", "cpu", "--set",
                 f"data.annotations={tmp_path}/moved/annotations.json",
                 "--set", f"data.features={tmp_path}/moved/features"]) == 0
    after = json.loads((run / "eval_test.json").read_text())
    for key in ("f1", "f1_miga", "average_mAP", "mAP", "per_class", "confusion", "ground_truth_sha256"):
        assert after[key] == before[key], key
    assert after["data"] == {"annotations": str(tmp_path / "moved" / "annotations.json"),
                             "features": str(tmp_path / "moved" / "features"),
                             "set_for_this_call": ["data.annotations", "data.features"]}
    assert "--set" in after["provenance"]["command"]
    assert (run / "config.yaml").read_bytes() == config  # never rewritten


def test_set_on_evaluate_refuses_a_wrong_folder_and_other_keys(tmp_path, capsys):
    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"),
                       features=str(tmp_path / "data" / "features"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(run), "--device", "cpu", "--set", f"data.features={empty}"]) == 2
    error = capsys.readouterr().err
    assert f"{empty}/" in error and "missing" in error and "of split 'test' missing" in error, error
    assert main(["evaluate", str(run), "--device", "cpu", "--set", f"data.features={tmp_path}/nowhere"]) == 2
    assert f"--set data.features={tmp_path}/nowhere: no folder there" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--device", "cpu", "--set", "data.annotations=" + str(empty)]) == 2
    assert f"--set data.annotations={empty}: no file there" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--device", "cpu", "--set", "train.lr=1"]) == 2
    assert ("--set train.lr: mgrec evaluate takes only where the run's data lies (data.annotations, data.features)"
            in capsys.readouterr().err)
    assert not (run / "eval_test.json").exists()


def test_score_refuses_to_tune_the_threshold_on_the_split_it_scores(tmp_path, monkeypatch, capsys):
    # as evaluate does: before, score tuned on the test set without a word
    run = relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["detect", "run", "data/features", "--out", "ranked.json", "--all"]) == 0
    capsys.readouterr()
    score = ["score", "--gt", "data/annotations.json", "--pred", "ranked.json", "--split", "test"]
    assert main([*score, "--tune-on", "val"]) == 0
    capsys.readouterr()
    for tune_on in ("test", "Testing"):  # the annotations' names for a split: read as `test`
        assert main([*score, "--tune-on", tune_on]) == 2
        assert capsys.readouterr().err == ("mgrec: error: --tune-on test is the split being scored; tune on "
                                           "another split (e.g. val)\n")
    assert main(["evaluate", str(run), "--device", "cpu", "--tune-on", "test"]) == 2
    assert "--tune-on test is the split being scored" in capsys.readouterr().err


def test_a_split_without_labels_is_named_before_any_video_is_detected(tmp_path, monkeypatch, capsys):
    """ActivityNet's testing videos carry no labels: evaluate detected them all, then said only "no ground-truth
    segments in split test: nothing to score against", naming neither the file nor a split to use."""
    import json

    relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    document = json.loads(Path("data/annotations.json").read_text(encoding="utf-8"))
    for entry in document["database"].values():
        if entry["subset"] == "test":
            entry["annotations"] = []
    Path("data/annotations.json").write_text(json.dumps(document), encoding="utf-8")
    assert main(["evaluate", "run", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith(
        "mgrec: error: data/annotations.json: no ground-truth segments in split 'test' (1 video, none labelled): "
        "nothing to score or tune on; use a labelled split (train, val), or detect these videos with mgrec detect")


def test_a_missing_feature_file_of_the_split_is_named_with_a_way_out(tmp_path, monkeypatch, capsys):
    """A run trained with data.drop_bad_videos lacks a file: evaluate said only "feature file not found"."""
    relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    test_file = Path("data/features/synthetic_002.npy")  # the one test video
    test_file.unlink()
    assert main(["evaluate", "run", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mgrec: error: {test_file}: feature file not found (1 of split 'test' missing); evaluate "
                          "scores every video of the split: extract the missing ones, or detect the others")
    test_file.with_name("synthetic_002 .npy").write_bytes(b"")  # of an id with a space at its end: named
    assert main(["evaluate", "run", "--device", "cpu"]) == 2
    assert ("feature file not found (1 of split 'test' missing); 'synthetic_002 .npy' is there, a name that reads the "
            "same (the two differ only in whitespace at the start or end of the name: 'synthetic_002.npy' and "
            "'synthetic_002 .npy', which print alike): rename the file, or the video id, to one spelling; evaluate "
            "scores") in capsys.readouterr().err


def test_a_feature_file_of_the_split_that_is_a_link_loop_is_named_as_one(tmp_path, monkeypatch, capsys):
    # `mgrec data check` named it a symbolic link loop, evaluate "feature file not found", for a name that is there
    relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    test_file = Path("data/features/synthetic_002.npy")  # the one test video
    test_file.unlink()
    test_file.symlink_to("synthetic_002.npy")
    assert main(["evaluate", "run", "--device", "cpu"]) == 2
    assert capsys.readouterr().err.startswith(
        f"mgrec: error: {test_file}: feature file cannot be read: a symbolic link loop (following its links leads back "
        "to them, never to a file) (1 of split 'test' missing); evaluate scores every video of the split")


def test_a_run_with_a_feature_prefix_evaluates_and_detects_its_videos_by_their_ids(tmp_path, monkeypatch, capsys):
    """ActionFormer's ActivityNet features are `v_<id>.npy`: the run reads them by id, and `detect` names a file's
    detections by the id after the prefix, so `score` matches them to the annotations."""
    import json

    relative_run(tmp_path, feature_prefix="v_")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run", "--device", "cpu"]) == 0
    assert json.loads(Path("run/eval_test.json").read_text())["num_videos"] == 1
    assert main(["detect", "run", "data/features", "--all", "--out", "ranked.json"]) == 0
    assert set(json.loads(Path("ranked.json").read_text())["results"]) == {"synthetic_000", "synthetic_001",
                                                                           "synthetic_002"}
    capsys.readouterr()
    assert main(["score", "--gt", "data/annotations.json", "--pred", "ranked.json", "--tune-on", "val"]) == 0


def test_check_tuning_split():
    check_tuning_split(None, "test")
    check_tuning_split("val", "test")
    with pytest.raises(InputError, match="--tune-on validation is the split being scored; tune on another split "
                                         r"\(val tunes the threshold a test score uses: --split test --tune-on val\)"):
        check_tuning_split("validation", "val")  # not "e.g. val", the split it refuses


def test_a_run_with_data_fps_places_its_own_videos_by_it_as_training_did(tmp_path, monkeypatch, capsys):
    # data.fps 28.2 over the annotations' 28 (as 30 over NTSC's 29.97): training placed every video by
    # data.fps, so evaluate must too, not refuse the annotations' fps as a caller's contradicting one
    import yaml

    run = relative_run(tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["fps"] = 28.2
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    for sidecar in (tmp_path / "data" / "features").glob("*.json"):
        sidecar.unlink()  # sidecars would name 28 (training's data check refuses that)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run", "--device", "cpu"]) == 0, capsys.readouterr().err


def test_a_run_saved_with_a_seed_past_the_largest_still_evaluates_and_reports_but_trains_no_more(tmp_path, monkeypatch,
                                                                                               capsys):
    # seeds were bounded to 2**31 - 1 when every config was read: runs trained with a larger one before the rule
    # existed were refused by evaluate, detect, stream and report, which never use the seed
    run = relative_run(tmp_path, seed=3_000_000_000)
    monkeypatch.chdir(tmp_path)
    assert RunDir(run).read_config().seed == 3_000_000_000
    assert main(["evaluate", "run", "--device", "cpu"]) == 0
    assert main(["report", "run"]) == 0
    capsys.readouterr()
    # training from it (a new run from its config, or a resume of it) seeds torch with it: refused, before anything
    # is written, naming the file and the key
    expected = (f"mgrec: error: {run / 'config.yaml'} [seed]: expected an integer in [0, 2147483647] (2**31 - 1) to "
                "train, got 3000000000\n")
    for options in (["--out", "again"], ["--out", "run", "--resume"]):
        assert main(["train", str(run / "config.yaml"), *options, "--no-progress"]) == 2
        assert capsys.readouterr().err == expected
    assert not (tmp_path / "again").exists()
    from mgrec.train.loop import train

    with pytest.raises(InputError, match=r"config.yaml \[seed\]: expected an integer in \[0, 2147483647\]"):
        train(RunDir(run).read_config(), tmp_path / "again", progress=False)  # the Python API too
    assert not (tmp_path / "again").exists()


def test_evaluate_on_the_training_split_says_so(tmp_path, monkeypatch, capsys):
    """ActionFormer's THUMOS layout trains on subset "validation", read as val: `evaluate --split val` then scored
    the training videos like any held-out split, without a word."""
    run = relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "train"]) == 0
    assert ("note: split train is the split this run trained on (data.train_split 'train'): its scores say how "
            "closely the run fits the videos it learnt from") in capsys.readouterr().err
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "test"]) == 0
    assert "trained on" not in capsys.readouterr().err
    # `score` of the run's ranked list says it too: the file names its run (absolutely: read from another folder)
    assert main(["detect", str(run), "data/features", "--all", "--out", "ranked.json", "--device", "cpu"]) == 0
    monkeypatch.chdir(tmp_path / "data")
    for split, said in (("train", True), ("test", False)):
        capsys.readouterr()
        assert main(["score", "--gt", "annotations.json", "--pred", "../ranked.json", "--split", split]) == 0
        assert ("note: split train is the split the run that made ../ranked.json trained on (data.train_split "
                "'train')" in capsys.readouterr().err) is said


def test_evaluate_writes_its_scores_last_naming_the_detections_and_report_refuses_another_pair(tmp_path, monkeypatch):
    """Scores were written before detections: an evaluate stopped between the two (a kill, a full disk) left new
    scores beside an earlier evaluate's detections, and the report showed them together."""
    import hashlib
    import json

    from mgrec.report.html import write_report

    run = relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)

    def full_disk(*_):
        raise InputError("cannot write eval_test.json: No space left on device")

    with monkeypatch.context() as patched:  # stopped between its two writes: the detections alone, no scores
        patched.setattr(RunDir, "write_eval", full_disk)
        assert main(["evaluate", str(run), "--device", "cpu", "--split", "test"]) == 2
    assert (run / "detections_test.json").is_file() and not (run / "eval_test.json").exists()
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "test"]) == 0
    detections = run / "detections_test.json"
    scores = json.loads((run / "eval_test.json").read_text())
    assert scores["detections_sha256"] == hashlib.sha256(detections.read_bytes()).hexdigest()
    write_report(run)
    detections.write_text(json.dumps(json.loads(detections.read_text())))  # another writer's bytes
    with pytest.raises(InputError, match=r"eval_test.json names other detections than .*detections_test.json"):
        write_report(run)


def test_post_processing_edited_in_config_yaml_after_tuning_is_noted(tmp_path, monkeypatch, capsys):
    """`nms: hard` written into a trained run's config.yaml kept the threshold tuned under soft NMS, without a word."""
    run = relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "test"]) == 0
    assert "edited since training" not in capsys.readouterr().err
    config = (run / "config.yaml").read_text()
    assert "  nms: soft\n" in config
    (run / "config.yaml").write_text(config.replace("  nms: soft\n", "  nms: hard\n"))
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "test"]) == 0
    assert (f"note: {run}: postprocess.nms is 'hard' in config.yaml, 'soft' when the threshold was tuned (edited "
            "since training?)") in capsys.readouterr().err
    assert main(["evaluate", str(run), "--device", "cpu", "--split", "test", "--tune-on", "val"]) == 0
    assert "edited since training" not in capsys.readouterr().err  # tuned anew for the settings now


def test_evaluate_online_scores_what_mgrec_stream_emits_and_the_report_shows_it_beside_offline(tmp_path, capsys):
    """The online track had no score of its own: every video streamed by hand, its lines scored. `evaluate --online`
    streams the split as `mgrec stream` does and scores the emissions; the report shows them beside offline."""
    import io
    import json

    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.scoring import score_file
    from mgrec.infer.stream import stream_file
    from mgrec.report.html import write_report

    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"),
                       features=str(tmp_path / "data" / "features"))
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))  # random weights: score low
    threads_before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["evaluate", str(run), "--online", "--device", "cpu", "--lookahead", "0.5"]) == 0
        # the updates ran on one thread, as `mgrec stream` runs them, and the process's setting is given back
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads_before)
    printed = capsys.readouterr().out
    online = json.loads((run / "online_test.json").read_text())
    assert "streamed 1 video of split test with checkpoint best, lookahead 0.5 s" in printed
    assert online["online"]["threads"] == online["provenance"]["threads"] == 1 and "(fp32, 1 thread)" in printed
    assert online["provenance"]["command"].endswith("--threads 1")
    assert online["online"]["lookahead"] == 0.5 and online["online"]["updates"] > 0
    assert online["online"]["decided_while_streaming"] + online["online"]["decided_at_the_end"] \
        == online["num_predictions"] > 0
    latency = online["online"]["latency_seconds"]
    assert latency["mean"] is None or 0.5 <= latency["median"] <= latency["p95"] <= latency["max"]
    # the same as streaming the test video with `mgrec stream` and scoring its lines
    annotations = load_annotations(tmp_path / "data" / "annotations.json")
    (video,) = annotations.video_ids("test")
    lines = io.StringIO()
    stream_file(run, tmp_path / "data" / "features" / f"{video}.npy", lookahead=0.5, out=lines, device="cpu")
    log = tmp_path / "log.jsonl"
    log.write_text(lines.getvalue())
    scored = score_file(annotations, tmp_path / "data" / "annotations.json", log, "test", note=lambda line: None)
    assert scored["num_predictions"] == online["num_predictions"] and scored["f1"] == online["f1"]

    assert main(["evaluate", str(run), "--device", "cpu"]) == 0  # offline: the report shows both
    report = write_report(run).read_text()
    assert 'id="online">Online (streamed)</h2>' in report and "0.5 s after its end" in report
    assert main(["evaluate", str(run), "--online", "--device", "cpu"]) == 0
    assert "offline (eval_test.json): F1" in capsys.readouterr().out  # said beside the offline scores
    # scores of the split as it was (its labels edited, its videos redrawn since) were set beside today's as equals
    offline = json.loads((run / "eval_test.json").read_text())
    (run / "eval_test.json").write_text(json.dumps({**offline, "num_ground_truth": offline["num_ground_truth"] + 1}))
    assert main(["evaluate", str(run), "--online", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "offline (eval_test.json)" not in printed
    assert (f"note: {run / 'eval_test.json'} was scored on another set of split test (offline: 1 video, "
            f"{offline['num_ground_truth'] + 1} ground-truth segments; streamed: 1 video, "
            f"{offline['num_ground_truth']} ground-truth segments); run `mgrec evaluate {run} --split test` "
            "again") in printed
    # the same counts, other ground truth (a video renamed, a gesture relabelled): told apart by its digest
    assert len(offline["ground_truth_sha256"]) == 64
    (run / "eval_test.json").write_text(json.dumps({**offline, "ground_truth_sha256": "0" * 64}))
    assert main(["evaluate", str(run), "--online", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "offline (eval_test.json)" not in printed
    assert (f"(offline and streamed: 1 video, {offline['num_ground_truth']} ground-truth segments each, but other "
            "videos or labels (their ground_truth_sha256 differ))") in printed
    # the report likewise: the online scores beside offline ones of another set are named, not tabled as equals
    (run / "eval_test.json").write_text(json.dumps(offline))
    online_now = json.loads((run / "online_test.json").read_text())
    (run / "online_test.json").write_text(json.dumps({**online_now,
                                                      "num_ground_truth": online_now["num_ground_truth"] + 1}))
    report = write_report(run).read_text()
    assert 'id="online">Online (streamed)</h2>' in report and "replayed as a live stream" not in report
    assert (f"online_test.json was scored on another set of split test (streamed: 1 video, "
            f"{offline['num_ground_truth'] + 1} ground-truth segments; offline: 1 video, {offline['num_ground_truth']} "
            "ground-truth segments)") in report
    # options of the other kind of evaluation are refused by name
    assert main(["evaluate", str(run), "--online", "--tune-on", "val"]) == 2
    assert "--tune-on re-tunes the offline threshold" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--lookahead", "1"]) == 2
    assert "--lookahead is the streams' (--online)" in capsys.readouterr().err
    # an online file edited by hand is named, not shown
    edited = json.loads((run / "online_test.json").read_text())
    edited["online"]["latency_seconds"]["mean"] = "fast"
    (run / "online_test.json").write_text(json.dumps(edited))
    with pytest.raises(InputError, match=r"online_test.json \[online.latency_seconds.mean\]: expected a number >= 0"):
        write_report(run)


def test_the_scores_name_the_run_by_its_absolute_path_whatever_path_evaluate_was_given(tmp_path, monkeypatch, capsys):
    """eval_<split>.json (and online_<split>.json) recorded the run as typed: `mgrec evaluate run` wrote "run": "run",
    which named nothing once the file was read from another folder (the report's "run directory" among them)."""
    import json

    from mgrec.report.html import write_report

    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"),
                       features=str(tmp_path / "data" / "features"))
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run", "--device", "cpu"]) == 0
    assert main(["evaluate", "./run/", "--device", "cpu", "--online", "--lookahead", "0.5"]) == 0
    for name in ("eval_test.json", "online_test.json"):
        recorded = json.loads((run / name).read_text())["run"]
        assert recorded == str(run.resolve()) and Path(recorded).is_absolute(), (name, recorded)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # read from another folder, it still names the run
    assert RunDir(json.loads((run / "eval_test.json").read_text())["run"]).read_config().seed == 1234
    page = write_report(run).read_text(encoding="utf-8")
    assert f"<td>{run.resolve()}</td>" in page


def test_evaluate_says_when_the_run_has_no_record_of_its_training_videos(tmp_path, monkeypatch, capsys):
    # a run copied without its splits.json: the check that split test holds no video it trained on was skipped silently
    run = relative_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    for online in ([], ["--online"]):
        assert main(["evaluate", "run", "--device", "cpu", *online]) == 0
        assert ("note: run has no splits.json (the record of the videos it trained and validated on: a run started "
                "before mgrec wrote one, made from weights trained elsewhere, or copied without it): split test's "
                "videos were not checked to be none of them" in capsys.readouterr().err)
    RunDir(run).write_splits({"annotations": "data/annotations.json", "train_split": "train", "train": [],
                              "val_split": "val", "val": []})
    assert main(["evaluate", "run", "--device", "cpu"]) == 0
    assert "splits.json" not in capsys.readouterr().err


def test_a_feature_file_of_the_split_replaced_while_evaluate_reads_it_is_named_and_nothing_scored(tmp_path,
                                                                                                monkeypatch, capsys):
    """`mgrec evaluate` reads each video's features memory-mapped as the network takes them; a file replaced under its
    name meanwhile had another recording's detections scored as the video's, exit 0. It is now checked once the
    video is detected (`check_unchanged`, as `mgrec detect` and `mgrec stream` check theirs)."""
    import numpy as np

    import mgrec.infer.offline as offline_module

    run = relative_run(tmp_path, annotations=str(tmp_path / "data" / "annotations.json"),
                       features=str(tmp_path / "data" / "features"))
    detect_video = offline_module.detect_video

    def replaced_meanwhile(*args, **kwargs):
        detections = detect_video(*args, **kwargs)
        target = tmp_path / "data" / "features" / f"{args[5]}.npy"  # the video just detected
        np.save(tmp_path / "other.npy", np.zeros((96, 8), np.float32))
        (tmp_path / "other.npy").replace(target)
        return detections

    monkeypatch.setattr(offline_module, "detect_video", replaced_meanwhile)
    assert main(["evaluate", str(run), "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mgrec: error: {tmp_path / 'data' / 'features'}/synthetic_")
    assert "changed while it was read (" in error and error.endswith("detect it again once it is complete\n")
    assert not (run / "eval_test.json").exists()
