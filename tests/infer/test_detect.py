"""Offline detection: the Python API, `mgrec detect` in its three formats, long videos, raw videos."""

import csv
import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers import SMALL_MODEL, remuxed, small_config

from mgrec.cli import main
from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, TrainConfig
from mgrec.data.annotations import load_annotations
from mgrec.data.features import FeatureSidecar, read_sidecar, sidecar_path, write_features
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.evaluate.predictions import load_predictions
from mgrec.infer.detect import detect_files
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.offline import OfflineDetector
from mgrec.model.detector import build_detector
from mgrec.run import RunDir
from mgrec.train.loop import train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=17, feature_dim=16, length=160, seed=1,
                                   subsets=("train", "train", "val", "test"))
    config = small_config(
        paths, seed=0, max_seq_len=128,
        train=TrainConfig(epochs=3, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3, eval_every=3),
        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100),
    )
    train(config, root / "run", progress=False, log=lambda *_: None)
    return root / "run", paths


def test_api_detections_equal_evaluate_detections(trained_run):
    run, paths = trained_run
    evaluate_run(run, split="test")
    classes = load_annotations(paths.annotations).classes
    written = load_predictions(run / "detections_test.json", classes)
    detector = OfflineDetector.from_run(run)
    for video_id, expected in written.items():
        got = detector.detect(paths.features / f"{video_id}.npy")
        assert len(got) == len(expected) > 0
        for a, b in zip(got, expected):
            assert (a.label_id, a.video_id) == (b.label_id, b.video_id)
            assert a.start == pytest.approx(b.start) and a.end == pytest.approx(b.end)
            assert a.score == pytest.approx(b.score)


def test_hard_set_uses_the_threshold_tuned_on_val(trained_run):
    run, paths = trained_run
    detector = OfflineDetector.from_run(run)
    tuned = json.loads((run / "postprocess.json").read_text())["score_threshold"]
    assert detector.postprocess.score_threshold == tuned
    ranked = detector.detect(next(paths.features.glob("*.npy")))
    assert [d for d in ranked if d.score >= tuned] == detector.hard_set(ranked)


def test_detect_cli_formats(trained_run, tmp_path):
    run, paths = trained_run
    inputs = [str(paths.features)]
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "d.json")]) == 0
    results = json.loads((tmp_path / "d.json").read_text())["results"]
    assert set(results) == {p.stem for p in paths.features.glob("*.npy")}
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "d.csv"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "d.csv")))
    assert len(rows) == sum(len(v) for v in results.values())
    assert set(rows[0]) == {"video", "start_s", "end_s", "start_frame", "end_frame", "label", "score"}
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "smg"), "--format", "smg"]) == 0
    written = sorted((tmp_path / "smg").rglob("*.csv"))
    assert len(written) == len(results)
    for path in written:
        video = path.parent.name
        lines = [line for line in path.read_text().splitlines() if line]
        assert len(lines) == len(results[video])
        assert all(1 <= int(line.split(",")[0]) <= 17 for line in lines)


def test_detect_smg_refuses_a_folder_that_already_holds_label_files(trained_run, tmp_path, capsys):
    """A second `detect --format smg` into the same folder would replace some files and keep the others
    (of another run, or hard beside --all), and `mgrec score` would read them all as one set."""
    run, paths = trained_run
    inputs = sorted(paths.features.glob("*.npy"))
    out = tmp_path / "smg"
    assert main(["detect", str(run), *map(str, inputs), "--out", str(out), "--format", "smg"]) == 0
    before = {path: path.read_bytes() for path in out.rglob("*.csv")}
    capsys.readouterr()
    assert main(["detect", str(run), str(inputs[0]), "--out", str(out), "--format", "smg", "--all"]) == 2
    error = capsys.readouterr().err
    assert f"{out}: already holds {len(inputs)} SMG label file(s)" in error
    assert "remove them or choose another folder" in error
    assert f"1 of this output's 1 video (e.g. {out / inputs[0].stem / inputs[0].stem}_finelabels.csv), which it " \
        f"would replace; and {len(inputs) - 1} other files" in error
    # the same command again: the folder holds a finished set of its videos, which it would wholly replace
    assert main(["detect", str(run), *map(str, inputs), "--out", str(out), "--format", "smg"]) == 2
    error = capsys.readouterr().err
    assert f"a finished set of the same {len(inputs)} videos as this output's" in error
    assert "which this output would wholly replace; to keep it, write into another --out folder" in error
    assert {path: path.read_bytes() for path in out.rglob("*.csv")} == before  # nothing replaced
    flat = tmp_path / "flat"  # a flat VIDEO.csv is read by `mgrec score` too
    flat.mkdir()
    (flat / "Sample0001.csv").write_text("1,0,10\n")
    with pytest.raises(InputError, match="already holds 1 SMG label file"):
        detect_files(run, [inputs[0]], flat, fmt="smg")


def test_two_detects_into_one_smg_folder_at_once_leave_one_set_not_a_mix(trained_run, tmp_path, monkeypatch):
    # both found the folder empty before their work; the later one's files were written beside the earlier one's,
    # and `mgrec score` read the folder as one submission of two runs (here, of two inputs). The folder is held from
    # before its check to the set's end, as `mgrec stream` holds it: the other detect, started meanwhile, is refused
    # (it would otherwise take the first one's unfinished set for an interrupted one's and resume it)
    import mgrec.infer.detect as detect_module

    run, paths = trained_run
    inputs = sorted(paths.features.glob("*.npy"))
    out = tmp_path / "smg"
    real_trained_on, refused = detect_module.trained_on, []

    def the_other_detect_starts_meanwhile(*args):  # called after the folder was checked, before the work
        monkeypatch.setattr(detect_module, "trained_on", real_trained_on)
        with pytest.raises(InputError, match=r"smg is in use by pid .*; another mgrec stream or detect is writing "
                                             r"label files there: wait for it to finish or use another") as caught:
            detect_files(run, inputs[:1], out, fmt="smg")
        refused.append(caught.value)
        return real_trained_on(*args)

    monkeypatch.setattr(detect_module, "trained_on", the_other_detect_starts_meanwhile)
    detect_files(run, inputs[1:], out, fmt="smg")
    assert refused
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.csv")) == [
        f"{path.stem}/{path.stem}_finelabels.csv" for path in inputs[1:]]


def test_a_killed_detect_s_partial_smg_set_is_refused_by_score_and_by_detect(trained_run, tmp_path, capsys,
                                                                             monkeypatch):
    # each file is atomic, the set was not: killed after 3 of 6 files, `mgrec score` read the 3 as the whole set
    from mgrec import smg_csv

    run, paths = trained_run
    inputs = sorted(paths.features.glob("*.npy"))
    out = tmp_path / "smg"
    written = []

    def killed_after_one(path, *args, **kwargs):
        if written:
            raise KeyboardInterrupt  # the process dies here: no later file, no cleanup
        written.append(path)
        return real_write(path, *args, **kwargs)

    real_write = smg_csv.atomic_write_text
    monkeypatch.setattr(smg_csv, "atomic_write_text", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        detect_files(run, inputs, out, fmt="smg")
    monkeypatch.undo()
    assert len(list(out.rglob("*.csv"))) == 1 and (out / smg_csv.INCOMPLETE_MARKER).exists()
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(out), "--split", "test"]) == 2
    assert "did not finish" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"smg: holds the label files of an `mgrec detect` or `mgrec stream` --format "
                                         r"smg that did not finish .*run that `mgrec detect` again, as it was, to "
                                         r"detect the videos it did not finish into it"):
        smg_csv.refuse_an_incomplete_set(out)
    detect_files(run, inputs, out, fmt="smg")  # the same command: resumed (`test_an_interrupted_detect_...`)
    assert not (out / smg_csv.INCOMPLETE_MARKER).exists() and len(list(out.rglob("*.csv"))) == len(inputs)
    # two writers into one folder: the second is refused, not mixed in (its unlink was a traceback)
    from mgrec.records import Detection

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / smg_csv.INCOMPLETE_MARKER).write_text("")
    with pytest.raises(InputError, match=r"busy: another mgrec detect or stream is writing label files here"):
        smg_csv.write_smg_labels({"v": [Detection("v", 0.0, 1.0, 0, "a", 0.5)]}, tmp_path / "busy", 10.0)
    finished = tmp_path / "finished"
    detect_files(run, inputs, finished, fmt="smg")
    assert not (finished / smg_csv.INCOMPLETE_MARKER).exists() and len(list(finished.rglob("*.csv"))) == len(inputs)


def test_an_interrupted_detect_smg_set_is_resumed_by_the_same_command_as_stream_s_is(trained_run, tmp_path, capsys,
                                                                                     monkeypatch):
    """`detect --format smg` interrupted while it wrote its label files left the folder marked unfinished, and the same
    command again was refused ("remove smg and run the same command again"), where `stream --format smg`'s resumes.
    Both write through one `LabelSet`: the same command keeps the files it wrote, detects only the other videos, and
    gives the files of an uninterrupted run; another plan (the hard set for the ranked list, other videos) or a file
    changed since is refused by name, as a stream's is."""
    from mgrec import smg_csv
    from mgrec.infer import label_set
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, paths = trained_run
    inputs = sorted(paths.features.glob("*.npy"))
    whole, out = tmp_path / "whole", tmp_path / "smg"
    command = ["detect", str(run), *map(str, inputs), "--format", "smg", "--all", "--out"]
    assert main([*command, str(whole)]) == 0
    text_of, made = smg_csv.smg_label_text, []

    def interrupted_at_the_third(*args, **kwargs):  # each file's text is made as it is to be written
        if len(made) == 2:
            raise KeyboardInterrupt
        made.append(args)
        return text_of(*args, **kwargs)

    monkeypatch.setattr(label_set, "smg_label_text", interrupted_at_the_third)  # where LabelSet.write calls it
    assert main([*command, str(out)]) == 130
    monkeypatch.undo()
    assert (f"stopped in video '{inputs[2].stem}' (3 of 4: 2 finished before it): 2 of the 4 label files are in {out}, "
            f"which stays marked unfinished ({out / INCOMPLETE_MARKER}: `mgrec score` and the other readers refuse the "
            "folder); the same command again keeps them and detects the others") in capsys.readouterr().err
    first = out / inputs[0].stem / f"{inputs[0].stem}_finelabels.csv"
    kept = first.read_bytes()

    assert main([*command[:-2], "--out", str(out)]) == 2  # the hard set, where the ranked list was begun
    assert (f"{out}: holds the label files of an interrupted `mgrec detect` --format smg of other settings (the ranked "
            "list (--all) then, the hard set now; its run: ") in capsys.readouterr().err
    assert main([*command[:3], *command[-4:], str(out)]) == 2  # one video of the four
    assert "of other settings (other videos; its run: " in capsys.readouterr().err
    first.write_bytes(b"")  # emptied since: not the detections of its video
    assert main([*command, str(out)]) == 2
    assert (f"{first}: is not the label file the interrupted detect wrote for video {inputs[0].stem} (changed since, "
            "e.g. emptied, or put there by hand): remove it, and the same command detects that video again"
            ) in capsys.readouterr().err
    first.write_bytes(kept)

    detected = []
    detect = OfflineDetector.detect
    monkeypatch.setattr(OfflineDetector, "detect", lambda self, path, *a, **k: detected.append(path.stem) or
                        detect(self, path, *a, **k))
    assert main([*command, str(out)]) == 0
    assert (f"resuming the detect into {out}: 2 of 4 videos were detected before (their label files are kept); "
            "detecting the 2 others") in capsys.readouterr().err
    assert detected == [path.stem for path in inputs[2:]]  # only the videos without a file
    assert not (out / INCOMPLETE_MARKER).exists()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == \
        {p.relative_to(whole): p.read_bytes() for p in whole.rglob("*") if p.is_file()}

    # a marker of an mgrec before detect recorded its plan: its files cannot be told to be of this command's set
    older = tmp_path / "older"
    older.mkdir()
    (older / INCOMPLETE_MARKER).write_text('{"writer": "mgrec detect"}\n')
    assert main([*command, str(older)]) == 2
    assert (f"{older / INCOMPLETE_MARKER}: made by an mgrec before mgrec detect recorded what its set is made of, so "
            f"its set (0 label files of these videos in {older}) cannot be told to be this command's: remove {older}, "
            "and run the same command again") in capsys.readouterr().err


@pytest.mark.parametrize("fmt, name", [("json", "d.json"), ("csv", "d.csv"), ("csv", "csv-named.json"), ("smg", "smg"),
                                       (None, "by-its-ending.csv")])
def test_score_reads_back_every_format_detect_writes(trained_run, tmp_path, capsys, fmt, name):
    """`mgrec score` on each output of `mgrec detect` gives the scores of the JSON output
    (recognised by content: a CSV table named .json reads as a CSV table)."""
    run, paths = trained_run
    inputs = [str(paths.features / f"{v}.npy") for v in load_annotations(paths.annotations).video_ids("test")]
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "ref.json")]) == 0
    # without --format, an --out ending .csv is the CSV table (it was JSON in a file named .csv)
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / name), *(["--format", fmt] if fmt else [])]) == 0
    assert fmt is not None or (tmp_path / name).read_text().startswith("video,start_s,")
    capsys.readouterr()
    scores = {}
    for pred in ("ref.json", name):
        assert (
            main(
                [
                    "score",
                    "--gt",
                    str(paths.annotations),
                    "--pred",
                    str(tmp_path / pred),
                    "--split",
                    "test",
                    "--json",
                    "--score-threshold",
                    "0",
                ]
            )
            == 0
        )
        scores[pred] = json.loads(capsys.readouterr().out)
    for key in ("num_predictions", "f1", "precision", "recall", "average_mAP"):
        assert scores[name][key] == pytest.approx(scores["ref.json"][key], abs=1e-6), key


def test_score_refuses_to_tune_on_a_split_the_predictions_do_not_cover(trained_run, tmp_path, capsys):
    run, paths = trained_run
    test_ids = load_annotations(paths.annotations).video_ids("test")
    assert (
        main(
            [
                "detect",
                str(run),
                *[str(paths.features / f"{v}.npy") for v in test_ids],
                "--out",
                str(tmp_path / "test_only.json"),
                "--all",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "score",
                "--gt",
                str(paths.annotations),
                "--pred",
                str(tmp_path / "test_only.json"),
                "--split",
                "test",
                "--tune-on",
                "val",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"no predictions for split val in {tmp_path / 'test_only.json'}" in err
    assert "to tune on it, score a ranked list of both splits' videos: `mgrec detect RUN FEATURES --all" in err


def test_evaluating_the_last_checkpoint_keeps_the_scores_of_best(trained_run):
    run, _ = trained_run
    best = evaluate_run(run, split="test")
    last = evaluate_run(run, split="test", checkpoint="last")
    assert json.loads((run / "eval_test.json").read_text())["checkpoint"] == "best"
    assert json.loads((run / "eval_test_last.json").read_text())["checkpoint"] == "last"
    assert best["threshold_tuned_on"] == last["threshold_tuned_on"] == "val"
    assert (run / "detections_test_last.json").exists()
    # and is reported as its own: report --checkpoint last (the report read the best checkpoint's files only)
    assert main(["report", str(run), "--checkpoint", "last"]) == 0
    page = (run / "report_test_last.html").read_text()
    assert "checkpoint last" in page and "checkpoint best" not in page
    assert main(["report", str(run)]) == 0 and "checkpoint best" in (run / "report_test.html").read_text()


def test_detect_names_a_missing_input(trained_run, tmp_path, capsys):
    run, paths = trained_run
    assert main(["detect", str(run), str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o.json")]) == 2
    assert "nope.npy: no such file or folder" in capsys.readouterr().err
    (tmp_path / "gone.npy").symlink_to("/mnt/gone/gone.npy")  # a file that is there, its target not: said so
    assert main(["detect", str(run), str(tmp_path / "gone.npy"), "--out", str(tmp_path / "o.json")]) == 2
    assert "gone.npy: a symbolic link to /mnt/gone/gone.npy, which does not exist" in capsys.readouterr().err
    # in a folder given whole: left out with a note, its video was missing from an output that exited 0
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(next(paths.features.glob("*.npy")), folder / "v.npy")
    (tmp_path / "gone.npy").rename(folder / "gone.npy")
    assert main(["detect", str(run), str(folder), "--out", str(tmp_path / "o.json")]) == 2
    assert (f"{folder}: 1 of the 2 feature files cannot be read (gone.npy: a symbolic link to /mnt/gone/gone.npy, "
            "which does not exist); a folder is read whole") in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def make_random_run(root, input_dim, recipe: FeatureSidecar | None = None):
    """A run directory around a randomly initialised model (what `mgrec train` writes, minus training)."""
    run = root / "run"
    config = Config(
        data=DataConfig(feature_dim=input_dim, fps=None, max_seq_len=128),
        model=ModelConfig(input_dim=input_dim, num_classes=17, **SMALL_MODEL),
        postprocess=PostprocessConfig(pre_nms_thresh=0.0, pre_nms_topk=500, max_detections=500),
    )
    model = build_detector(config.model)
    RunDir(run).write_for_inference(
        config, [f"class{i}" for i in range(17)], model, recipe=None if recipe is None else dataclasses.asdict(recipe)
    )
    return run


def test_features_of_another_frame_rate_than_the_run_s_are_noted_once(tmp_path, capsys):
    # a lab's 60-fps camera on a run trained on 25-fps videos (data.fps null): each step spans 2.4x less time than in
    # training, the gestures look longer than any the network learnt, and 9 cues came out for 6 gestures, silently
    recipe = FeatureSidecar(fps=25.0, stride=4, window=16, backbone="test", dim=8, frames=None)
    run = make_random_run(tmp_path, input_dim=8, recipe=recipe)
    features = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    for name, fps in (("a", 60.0), ("b", 60.0), ("c", 25.5)):
        write_features(tmp_path / f"{name}.npy", features, dataclasses.replace(recipe, fps=fps))
    assert main(["detect", str(run), str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out",
                 str(tmp_path / "d.json")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "a.json: features of a 60-fps video, where the run's" in err
    assert "are of 25 fps: a feature step spans 0.42x the time it did in training" in err
    assert main(["detect", str(run), str(tmp_path / "c.npy"), "--out", str(tmp_path / "e.json")]) == 0
    assert "note" not in capsys.readouterr().err  # within 5 %: the same rate to the network
    # the same rate given by --fps for a file without a sidecar: passed without a word, every time scaled
    np.save(tmp_path / "bare.npy", features)
    assert main(["detect", str(run), str(tmp_path / "bare.npy"), "--fps", "60", "--out", str(tmp_path / "f.json")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "bare.npy (--fps 60): features of a 60-fps video, where the run's" in err


def test_a_video_of_another_frame_rate_than_the_run_s_is_noted_by_its_own_name(tmp_path, carphone, capsys):
    # carphone is 29.97 fps, the run's features 25: `detect` of the video named its features' sidecar in a temporary
    # folder gone when the command ended, and `stream` of the video (decoded as it streams) said nothing at all
    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=dataclasses.replace(recipe, fps=25.0))
    said = (f"note: {carphone.resolve()}: features of a 29.97-fps video, where the run's "
            f"({run / 'feature_recipe.json'}) are of 25 fps: a feature step spans 0.83x the time it did in training")
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "d.json")]) == 0
    err = capsys.readouterr().err
    assert said in err and "mgrec-features-" not in err
    assert main(["stream", str(run), str(carphone)]) == 0
    assert f"note: {carphone}: features of a 29.97-fps video" in capsys.readouterr().err


def test_a_video_far_longer_than_training_is_detected_in_full(tmp_path):
    run = make_random_run(tmp_path, input_dim=8)
    steps = 7000  # an SMG test video at stride 4; training crops are 128 steps here
    features = np.random.default_rng(0).standard_normal((steps, 8)).astype(np.float32)
    path = tmp_path / "long.npy"
    write_features(
        path, features, FeatureSidecar(fps=28.0, stride=4, window=16, backbone="test", dim=8, frames=steps * 4 + 12)
    )
    detections = OfflineDetector.from_run(run).detect(path)
    duration = (steps * 4 + 12) / 28.0
    assert max(d.end for d in detections) > 0.9 * duration
    assert all(0 <= d.start < d.end <= duration + 1e-9 for d in detections)


def test_a_video_of_the_run_s_annotations_is_placed_by_its_annotated_fps(tmp_path, capsys):
    """A run with data.fps null (the recommended recipe) asked for --fps to detect a video its own annotations
    list, with its fps."""
    from mgrec.config import load_config, save_config

    run = make_random_run(tmp_path, input_dim=8)
    annotations = tmp_path / "ann.json"
    annotations.write_text(json.dumps({"classes": [f"class{i}" for i in range(17)], "database": {
        "clip": {"subset": "test", "fps": 28.0, "duration": 15.0, "annotations": []}}}))
    config = load_config(run / "config.yaml")
    config.data.annotations = str(annotations)
    save_config(config, run / "config.yaml")
    rows = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    (tmp_path / "bare").mkdir()
    np.save(tmp_path / "bare" / "clip.npy", rows)
    np.save(tmp_path / "bare" / "other.npy", rows)
    out = tmp_path / "d.json"
    assert main(["detect", str(run), str(tmp_path / "bare" / "clip.npy"), "--out", str(out), "--all"]) == 0
    assert main(["detect", str(run), str(tmp_path / "bare" / "clip.npy"), "--out", str(tmp_path / "e.json"), "--all",
                 "--fps", "28"]) == 0
    assert json.loads(out.read_text())["results"] == json.loads((tmp_path / "e.json").read_text())["results"]
    assert main(["detect", str(run), str(tmp_path / "bare" / "other.npy"), "--out", str(out)]) == 2  # not listed
    assert "the features' fps is unknown" in capsys.readouterr().err
    # another --fps than the annotations' was used as given, every detection's time scaled by 28/25 without a word
    capsys.readouterr()
    assert main(["detect", str(run), str(tmp_path / "bare" / "clip.npy"), "--out", str(tmp_path / "f.json"),
                 "--fps", "25"]) == 2
    assert (f"clip.npy: video 'clip' is 28 fps in the run's annotations ({annotations}), but --fps 25: which is the "
            "video's? Leave --fps out to use the annotations'") in capsys.readouterr().err
    assert not (tmp_path / "f.json").exists()
    with pytest.raises(InputError, match=r"is 28 fps in the run's annotations .*, but fps 25"):
        OfflineDetector.from_run(run).detect(tmp_path / "bare" / "clip.npy", fps=25.0)


def test_no_output_replaces_the_annotations_a_run_was_trained_on(tmp_path, monkeypatch, capsys):
    """`detect RUN F --out annotations.json` (a slip of the hand) wrote detections over the run's ground truth: the
    run's evaluate then refused the file as predictions, and labels made by hand were gone."""
    from mgrec.config import load_config, save_config
    from mgrec.run import RunDir

    run = make_random_run(tmp_path, input_dim=8)
    monkeypatch.chdir(tmp_path)
    ground_truth = json.dumps({"classes": [f"class{i}" for i in range(17)], "database": {
        "clip": {"subset": "test", "fps": 28.0, "duration": 15.0, "annotations": []}}})
    Path("ann.json").write_text(ground_truth)
    config = load_config(run / "config.yaml")
    config.data.annotations = "ann.json"  # relative, as a run records it: read from the working directory
    save_config(config, run / "config.yaml")
    assert Path("ann.json") in RunDir(run).owned_files()
    np.save("clip.npy", np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32))
    for command in (["detect", str(run), "clip.npy", "--out", "ann.json"],
                    ["report", str(run), "--detections", "d.json", "--out", "ann.json"],
                    ["export", str(run), "--out", "ann.onnx"]):  # its record is written beside it: ann.json
        if command[0] == "report":
            assert main(["detect", str(run), "clip.npy", "--out", "d.json"]) == 0
        capsys.readouterr()
        assert main(command) == 2
        assert (f"would overwrite {tmp_path / 'ann.json'} (it belongs to a trained run); choose another "
                "output") in capsys.readouterr().err
        assert Path("ann.json").read_text() == ground_truth
    # from another folder the run's relative path names another file, and the one it trained on was replaced: the
    # run records that file's full path where it was trained (splits.json's annotations_resolved)
    RunDir(run).write_splits({"annotations": "ann.json", "annotations_resolved": str(tmp_path / "ann.json"),
                              "train_split": "train", "train": [], "val_split": "val", "val": []})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert main(["detect", str(run), str(tmp_path / "clip.npy"), "--out", str(tmp_path / "ann.json")]) == 2
    assert f"would overwrite {tmp_path / 'ann.json'} (it belongs to a trained run)" in capsys.readouterr().err
    assert (tmp_path / "ann.json").read_text() == ground_truth


def test_detect_takes_the_fps_of_features_without_a_sidecar_from_fps(tmp_path, capsys):
    # Sidecars are optional and train/evaluate work without them; detect refused every such file and had no
    # --fps: the only way on was editing the run's config.yaml by hand.
    run = make_random_run(tmp_path, input_dim=8)  # data.fps: null
    rows = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    bare = tmp_path / "bare" / "clip.npy"
    bare.parent.mkdir()
    np.save(bare, rows)
    out = tmp_path / "d.json"
    assert main(["detect", str(run), str(bare), "--out", str(out), "--all"]) == 2
    assert f"{bare}: the features' fps is unknown: pass the video's frame rate with --fps" in capsys.readouterr().err
    assert main(["detect", str(run), str(bare), "--out", str(out), "--all", "--fps", "28"]) == 0
    from_option = json.loads(out.read_text())["results"]

    clip = tmp_path / "clip.npy"
    write_features(clip, rows, FeatureSidecar(fps=28.0, stride=4, window=16, backbone="test", dim=8, frames=None))
    assert main(["detect", str(run), str(clip), "--out", str(out), "--all"]) == 0
    assert json.loads(out.read_text())["results"] == from_option and from_option["clip"]
    # the SMG label files place frames by the same fps
    assert main(["detect", str(run), str(bare), "--out", str(tmp_path / "smg"), "--format", "smg", "--fps", "28"]) == 0
    capsys.readouterr()

    assert main(["detect", str(run), str(clip), "--out", str(out), "--fps", "30"]) == 2
    assert "clip.json: the sidecar says fps 28, but --fps 30: which is the video's?" in capsys.readouterr().err
    for bad in ("nan", "0", "-30", "inf", "1e-300", "1e9"):
        assert main(["detect", str(run), str(bare), "--out", str(out), "--fps", bad]) == 2
        error = capsys.readouterr().err
        assert error.startswith("mgrec: error: --fps: expected a number of frames per second in [0.001, 1000], got ")


def test_detect_on_a_raw_video_uses_the_runs_feature_recipe(tmp_path, carphone, capsys):
    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe_path = extracted[0].feature_path.with_suffix(".json")
    recipe = FeatureSidecar(**json.loads(recipe_path.read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "video.json"), "--all"]) == 0
    assert (
        main(["detect", str(run), str(extracted[0].feature_path), "--out", str(tmp_path / "feats.json"), "--all"]) == 0
    )
    from_video = json.loads((tmp_path / "video.json").read_text())["results"]
    from_features = json.loads((tmp_path / "feats.json").read_text())["results"]
    assert from_video == from_features and sum(map(len, from_video.values())) > 0
    # --keep-features: the features made from the video stay, equal to extract's, and a second detect reuses them
    # (they were made in a temporary folder and removed: scoring or streaming the video decoded it again)
    kept = tmp_path / "kept"
    capsys.readouterr()
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "kept.json"), "--all",
                 "--keep-features", str(kept)]) == 0
    assert f"kept the features of 1 video in {kept} (`mgrec stream" in capsys.readouterr().err
    assert np.array_equal(np.load(kept / extracted[0].feature_path.name), np.load(extracted[0].feature_path))
    made = (kept / extracted[0].feature_path.name).stat().st_mtime_ns
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "again.json"), "--all",
                 "--keep-features", str(kept)]) == 0
    assert (kept / extracted[0].feature_path.name).stat().st_mtime_ns == made  # reused, not made again
    # and said so (it said "kept" as of features it had made)
    assert (f"kept the features of 1 video in {kept}, 1 of them there already (the same recipe: reused, not made "
            "again)") in capsys.readouterr().err
    assert json.loads((tmp_path / "again.json").read_text())["results"] == from_video
    for folder, message in ((run, "--keep-features .* would overwrite"),  # a run's folder is the run's
                            (kept, "the inputs are feature files already")):
        inputs = [str(carphone)] if folder == run else [str(kept / extracted[0].feature_path.name)]
        assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "x.json"),
                     "--keep-features", str(folder)]) == 2
    # one unreadable video of several: the others' detections are written, and the error names the one missing (it
    # said "the others were written" of features deleted with their scratch folder, and wrote nothing)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(carphone.read_bytes()[:300_000])
    out = tmp_path / "batch.json"
    assert main(["detect", str(run), str(carphone), str(broken), "--out", str(out), "--all"]) == 2
    assert json.loads(out.read_text())["results"] == from_video
    assert main(["detect", str(run), str(broken), "--out", str(tmp_path / "none.json")]) == 2
    assert not (tmp_path / "none.json").exists()
    # SMG's clip_color.mp4 is video `clip`, and its subtitles clip_color.srt, which a player pairs with it (clip.srt
    # was written, which none loads, while the check before any work looked for clip_color.srt)
    colour = tmp_path / "videos" / "clip_color.mp4"
    colour.parent.mkdir()
    colour.write_bytes(carphone.read_bytes())
    assert main(["detect", str(run), str(colour), "--format", "srt", "--out", str(colour.parent)]) == 0
    assert sorted(p.name for p in colour.parent.iterdir()) == ["clip_color.mp4", "clip_color.srt"]


def test_stream_on_a_raw_video_matches_streaming_its_features(tmp_path, carphone, capsys):
    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    def strip(text):
        return [{k: v for k, v in json.loads(line).items() if k != "compute_ms"} for line in text.splitlines()]

    assert main(["stream", str(run), str(carphone), "--lookahead", "0.5"]) == 0
    printed = capsys.readouterr()
    from_video = strip(printed.out)
    # the video streams as it is decoded (its whole extraction first was minutes of silence for a long video)
    # and says what runs the backbone (onnxruntime by default in float32 on a CPU, where it is installed: it named the
    # backbone alone, where `mgrec extract` names the runtime that ran)
    from mgrec.extract.backbones import choose_runtime

    runtime = choose_runtime("efficientnet-lite0", torch.device("cpu"), None)
    assert printed.err.startswith("streaming 1 video as decoded: features made window by window with the run's "
                                  f"recipe (efficientnet-lite0, its network run in {runtime})")
    assert main(["stream", str(run), str(extracted[0].feature_path), "--lookahead", "0.5"]) == 0
    from_features = strip(capsys.readouterr().out)
    assert from_video == from_features and len(from_video) > 0


def test_a_video_piped_on_standard_input_streams_as_it_arrives_as_its_file_does(tmp_path, carphone, capsys):
    """`ffmpeg -f v4l2 -i /dev/video0 -f matroska - | mgrec stream RUN -`: a camera's frames streamed as they are
    captured. The same frames piped (carphone remuxed to Matroska, through a real pipe) give the file's gestures;
    `-` goes alone, and only to a run whose features are made as a video is decoded."""
    import os
    import pty
    import subprocess
    import sys

    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    piped = remuxed_to_matroska(carphone, tmp_path / "carphone.mkv")

    def strip(text):
        return [{k: v for k, v in json.loads(line).items() if k not in ("compute_ms", "video")}
                for line in text.splitlines()]

    assert main(["stream", str(run), str(carphone), "--lookahead", "0.5"]) == 0
    from_file = strip(capsys.readouterr().out)
    done = subprocess.run([sys.executable, "-m", "mgrec", "stream", str(run), "-", "--lookahead", "0.5"],
                          input=piped.read_bytes(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode()
    assert strip(lines) == from_file and len(from_file) > 0
    assert {json.loads(line)["video"] for line in lines.splitlines()} == {"stdin"}
    assert main(["stream", str(run), "-", str(carphone)]) == 2
    assert "- (a video piped on standard input) is streamed as it arrives, alone" in capsys.readouterr().err
    done = subprocess.run([sys.executable, "-m", "mgrec", "stream", str(run), "-"], input=carphone.read_bytes(),
                          capture_output=True, timeout=300)  # an MP4 piped: its index is at its end
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().endswith("; pipe Matroska or MPEG-TS (ffmpeg ... -f matroska -, or -f mpegts -), "
                                         "not MP4\n")
    # a Matroska cut short (the sender stopped before the duration it declared): named as a file's is, in one line
    # (it was an AttributeError: the check's hint took the name's suffix, and standard input's name was a string)
    done = subprocess.run([sys.executable, "-m", "mgrec", "stream", str(run), "-"], capture_output=True, timeout=300,
                          input=piped.read_bytes()[: piped.stat().st_size // 2])
    assert done.returncode == 2
    assert re.fullmatch(r"mgrec: error: standard input: decoding stopped at 1\.97 s \(frame 58\), but the container "
                        r"declares 4\.00 s \(truncated file\?\); .*\n", done.stderr.decode().splitlines(True)[-1])
    # nothing can be piped: standard input closed (`<&-`: an AttributeError, Python has no sys.stdin then), or a
    # terminal (`-` typed without a pipe waited in silence)
    master, terminal = pty.openpty()
    for stdin, said in ((None, "closed"), (terminal, "a terminal, not a video")):
        done = subprocess.run([sys.executable, "-m", "mgrec", "stream", str(run), "-"], capture_output=True,
                              timeout=300, stdin=stdin, preexec_fn=(lambda: os.close(0)) if stdin is None else None)
        assert done.returncode == 2 and done.stdout == b""
        assert done.stderr.decode().splitlines()[-1] == (f"mgrec: error: -: standard input is {said}; pipe a video "
                                                         "container into it (ffmpeg -i SOURCE -f matroska - | mgrec "
                                                         "stream RUN -)")
    os.close(master), os.close(terminal)


def test_a_video_read_from_the_network_streams_as_it_arrives_as_its_file_does(tmp_path, carphone, capsys,
                                                                               monkeypatch):
    """`mgrec stream RUN rtsp://camera/...`: a URL read by PyAV's own FFmpeg, without an ffmpeg program piping it.
    Served here over HTTP and raw TCP from this process: the gestures equal its file's, under a video id made of
    host and path. A URL goes alone; a password in it is in no message or id; a source that stops sending ends with
    an error naming it; a scheme FFmpeg cannot read is named with the pipe to use instead."""
    import functools
    import http.server
    import socket
    import threading

    from mgrec.data import videos
    from mgrec.data.videos import NetworkSource, stream_source
    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    served = remuxed_to_matroska(carphone, tmp_path / "served" / "carphone.mkv")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def lines():
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    def strip(emitted):
        return [{k: v for k, v in line.items() if k not in ("compute_ms", "video")} for line in emitted]

    assert main(["stream", str(run), str(carphone), "--lookahead", "0.5"]) == 0
    from_file = strip(lines())
    url = f"http://127.0.0.1:{server.server_port}/carphone.mkv"
    assert main(["stream", str(run), url, "--lookahead", "0.5"]) == 0
    from_network = lines()
    assert strip(from_network) == from_file and len(from_file) > 0
    assert {line["video"] for line in from_network} == {"127.0.0.1_carphone"}
    # in Python: the rows of the URL are the file's features, and the source is read once
    from mgrec.extract.live import LiveFeatures

    live, source = LiveFeatures(run), NetworkSource(url)
    assert live.fps(source) == pytest.approx(recipe.fps)
    assert np.array_equal(np.stack(list(live.rows(source))), np.load(extracted[0].feature_path))
    with pytest.raises(InputError, match=r"\(a video read from the network\) is one video, read as it arrives; give"):
        live.fps(source)
    with pytest.raises(InputError, match="its rows were read already"):
        next(live.rows(source))
    live = LiveFeatures(run)  # opened to be checked, then a later check failed: `close` ends the connection
    live.fps(source)
    container = live._opened[source]
    live.close()
    with pytest.raises(IndexError):  # a closed container has no streams left
        container.streams.video[0]  # noqa: B018
    with pytest.raises(InputError, match=r"its rows were read already \(or it was closed\)"):
        next(live.rows(source))

    def tcp_server(payload: bytes, stall: threading.Event) -> int:
        """A server that sends `payload` to its one client, then waits for `stall` before closing."""
        listener = socket.create_server(("127.0.0.1", 0))

        def serve():
            connection, _ = listener.accept()
            connection.sendall(payload)
            stall.wait(30)
            connection.close()
            listener.close()

        threading.Thread(target=serve, daemon=True).start()
        return listener.getsockname()[1]

    sent = threading.Event()
    sent.set()
    port = tcp_server(served.read_bytes(), sent)
    assert main(["stream", str(run), f"tcp://127.0.0.1:{port}", "--lookahead", "0.5"]) == 0
    assert strip(lines()) == from_file
    # a camera that stops sending: the stream ends with an error naming it once nothing arrived for the read timeout
    monkeypatch.setattr(videos, "NETWORK_TIMEOUTS_S", (5.0, 1.0))
    stalled = threading.Event()
    port = tcp_server(served.read_bytes()[: served.stat().st_size // 2], stalled)
    assert main(["stream", str(run), f"tcp://127.0.0.1:{port}", "--lookahead", "0.5"]) == 2
    said = capsys.readouterr().err
    stalled.set()
    assert f"mgrec: error: tcp://127.0.0.1:{port}: decoding failed at frame " in said
    assert "nothing arrived for 1 s" in said
    # a user and password in a camera's URL: in no message, and not in the video id
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert main(["stream", str(run), f"rtsp://admin:s3cret@127.0.0.1:{port}/cam/1"]) == 2
    said = capsys.readouterr().err
    assert said.splitlines()[-1] == (f"mgrec: error: rtsp://***@127.0.0.1:{port}/cam/1: cannot open it (Connection "
                                     "refused); or pipe it in: ffmpeg -i URL -c copy -f matroska - | mgrec stream "
                                     "RUN -")
    assert "s3cret" not in said
    assert NetworkSource(f"rtsp://admin:s3cret@127.0.0.1:{port}/cam/1").video_id == "127.0.0.1_cam_1"
    # a password typed unescaped (`#`, `/`, `?`, `@` in it end a URL parser's login early), a query's or fragment's
    # token, an rtmp stream key: shown masked, in str and repr, and out of the video id
    shown = {"rtsp://admin:p#s3cret@cam.local:554/x": ("rtsp://***@cam.local:554/x", "cam.local_x"),
             "http://admin:p/s3cret@cam.local/x.mkv": ("http://***@cam.local/x.mkv", "cam.local_x"),
             "http://admin:p?s@3cret@cam.local/x": ("http://***@cam.local/x", "cam.local_x"),
             "https://cdn.example/live/cam.mkv?token=s3cret": ("https://cdn.example/live/cam.mkv?***",
                                                              "cdn.example_live_cam"),
             "http://cdn.example/live.m3u8#token=s3cret": ("http://cdn.example/live.m3u8#***", "cdn.example_live.m3u8"),
             "rtmp://cdn.example/app/s3cret": ("rtmp://cdn.example/app/***", "cdn.example_app")}
    for given, (text, video) in shown.items():
        assert (str(NetworkSource(given)), NetworkSource(given).video_id) == (text, video)
        assert "s3cret" not in repr(NetworkSource(given))
    assert main(["stream", str(run), "rtsp://admin:p#s3cret@127.0.0.1:1/x"]) == 2  # FFmpeg cannot open it either
    assert "s3cret" not in capsys.readouterr().err
    assert main(["stream", str(run), "nosuch://127.0.0.1/x"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mgrec: error: nosuch://127.0.0.1/x: PyAV's FFmpeg reads no nosuch:// source; or pipe it in: ffmpeg -i URL "
        "-c copy -f matroska - | mgrec stream RUN -")
    # alone, as `-` is: a live source given with others would be opened and left unread while they stream
    assert main(["stream", str(run), url, str(carphone)]) == 2
    assert (f"{url} (a video read from the network) is streamed as it arrives, alone: give it without other "
            "inputs") in capsys.readouterr().err
    assert stream_source("runs/x.npy") == Path("runs/x.npy") and stream_source("C:/x.npy") == Path("C:/x.npy")


def remuxed_to_matroska(video: Path, path: Path) -> Path:
    """`video`'s packets in a Matroska file at `path`, as `ffmpeg ... -f matroska -` pipes a camera's."""
    return remuxed(video, path, "matroska")


def test_ctrl_c_ends_a_piped_stream_whose_source_stalls(tmp_path, carphone):
    """A camera or network source that stops sending, its pipe still open: Ctrl-C (or SIGTERM) waited for the
    decoding thread, blocked reading the pipe, so the stream neither ended nor decided its pending gestures until
    data came; with the thread left to its read, Python aborted at exit on standard input's buffer (exit 134)."""
    import signal
    import subprocess
    import sys
    import time

    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    video = remuxed_to_matroska(carphone, tmp_path / "carphone.mkv").read_bytes()
    for number in (signal.SIGINT, signal.SIGTERM):
        out, err = tmp_path / f"{number}.jsonl", tmp_path / f"{number}.err"
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            # Ctrl-C as a terminal sends it: a test run in the background (a CI job, an xdist worker) ignores SIGINT,
            # which a child inherits, and Python then installs no KeyboardInterrupt for it
            stream = subprocess.Popen([sys.executable, "-m", "mgrec", "stream", str(run), "-", "--lookahead", "0.5"],
                                      stdin=subprocess.PIPE, stdout=out_file, stderr=err_file,
                                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            stream.stdin.write(video[: 2 * len(video) // 3])  # then nothing more, the pipe left open
            stream.stdin.flush()
            deadline = time.monotonic() + 240
            while not out.read_bytes() and time.monotonic() < deadline:  # a gesture printed: the stream is on
                time.sleep(0.2)
            time.sleep(2)  # and it reaches the end of what came
            stream.send_signal(number)
            stream.wait(timeout=30)
        finally:
            stream.kill()
            stream.stdin.close()
            stream.wait()
        said = err.read_text()
        assert stream.returncode == 128 + number, said
        assert "interrupted at" in said and "Fatal Python error" not in said


def test_a_run_whose_features_are_not_made_as_decoded_streams_a_video_extracted_whole_first(tmp_path, carphone,
                                                                                            capsys, monkeypatch):
    """Several input streams, pose landmarks or an end-to-end run's adapters: the video is turned into features whole
    first, as before videos streamed as decoded, with the reason said, and the gestures are the same."""
    from dataclasses import replace

    import mgrec.extract.live as live_module
    from mgrec.extract.jobs import extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    assert live_module.live_recipe_problem(run) is None
    assert main(["stream", str(run), str(carphone), "--lookahead", "0.5"]) == 0
    as_decoded = capsys.readouterr().out

    monkeypatch.setattr(live_module, "live_recipe_problem", lambda run_dir: "it reads several input streams")
    assert main(["stream", str(run), str(carphone), "--lookahead", "0.5"]) == 0
    printed = capsys.readouterr()
    assert printed.err.startswith("turning 1 video into features with the run's recipe first (it reads several "
                                  "input streams); the stream starts once they are made")
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "compute_ms"}  # noqa: E731
                          for line in text.splitlines()]
    assert strip(printed.out) == strip(as_decoded) and as_decoded
    assert main(["stream", str(run), "-"]) == 2  # a pipe cannot be extracted whole first
    assert "- (a video piped on standard input) is streamed as it arrives, alone: " in capsys.readouterr().err
    monkeypatch.undo()

    pose = tmp_path / "pose-run"
    pose.mkdir()
    (pose / "config.yaml").write_text((run / "config.yaml").read_text())
    (pose / "feature_recipe.json").write_text(json.dumps(replace(recipe, backbone="pose", weights=None).__dict__))
    assert live_module.live_recipe_problem(pose) == "its features come from pose"


def test_live_features_are_the_extracted_file_s_rows_each_made_once_its_window_is_decoded(tmp_path, carphone,
                                                                                          monkeypatch):
    """`mgrec stream VIDEO` made the whole feature file before its first update. The rows are now made as the
    frames come out of the decoder, equal to the extracted file's bit for bit, the first one after its window's
    frames and the decoder's bounded lead, not after the whole video."""
    import mgrec.extract.live as live_module
    from mgrec.extract.jobs import DECODE_AHEAD, DEFAULT_BATCH, extract

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    decoded = []
    frames_of = live_module.iter_frames

    def counted_frames(*args, **kwargs):
        for frame in frames_of(*args, **kwargs):
            decoded.append(1)
            yield frame

    monkeypatch.setattr(live_module, "iter_frames", counted_frames)
    live = live_module.LiveFeatures(run)
    assert live.fps(carphone) == pytest.approx(recipe.fps)
    rows = live.rows(carphone)
    first = next(rows)
    assert len(decoded) <= recipe.window + DEFAULT_BATCH + DECODE_AHEAD + 2 < 120  # carphone has 120 frames
    assert np.array_equal(np.stack([first, *rows]), np.load(extracted[0].feature_path))
    assert len(decoded) == 120


def test_a_video_that_stops_decoding_mid_stream_is_named_and_the_videos_before_it_are_kept(
        tmp_path, carphone, carphone_cut_midway, capsys):
    """Streamed as decoded, a video cut short is found where its decoding stops, not before the first update: the
    error names it and the frame; with --format smg the videos streamed before it keep their label files, and the
    same command resumes after the broken one is replaced."""
    import shutil

    from mgrec.extract.jobs import extract
    from mgrec.smg_csv import INCOMPLETE_MARKER

    extracted = extract([carphone], tmp_path / "features", backbone="efficientnet-lite0", size=112, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted[0].feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"score_threshold": 0.0}))
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(carphone, videos / "a.mp4")
    shutil.copy(carphone_cut_midway, videos / "b.mp4")
    out = tmp_path / "submission"
    command = ["stream", str(run), str(videos / "a.mp4"), str(videos / "b.mp4"), "--lookahead", "0.5",
               "--format", "smg", "--out", str(out)]
    assert main(command) == 2
    printed = capsys.readouterr().err
    assert "stream a:" in printed and "b.mp4: decoding stopped at frame 56, but the container declares 120" in printed
    assert [path.name for path in out.rglob("*.csv")] == ["a_finelabels.csv"] and (out / INCOMPLETE_MARKER).exists()
    shutil.copy(carphone, videos / "b.mp4")
    assert main(command) == 0
    assert "1 of 2 videos were streamed to their end before" in capsys.readouterr().err
    assert (out / "b" / "b_finelabels.csv").read_text() == (out / "a" / "a_finelabels.csv").read_text()


def test_a_run_of_the_first_format_still_loads_and_detects_the_same(trained_run, tmp_path):
    """A run written before run.json existed: DynE/DFA weights under their old names, `train.bf16`
    and `model.input_dim` in its config.yaml. It loads, and detects exactly what the run does."""
    import shutil

    import yaml
    from safetensors.torch import load_file, save_file
    from tests.model.test_state_format import to_format_1

    from mgrec.run import read_weights_file

    run, paths = trained_run
    old = tmp_path / "old-run"
    shutil.copytree(run, old)
    (old / "run.json").unlink()
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["train"]["bf16"] = config["train"].pop("precision") == "auto"
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    for name in ("best", "last"):
        path = old / "checkpoints" / f"{name}.safetensors"
        epoch = read_weights_file(path)[1]["epoch"]  # recorded then as now; the config was not
        save_file(to_format_1(load_file(str(path))), str(path), metadata={"mgrec": json.dumps({"epoch": epoch})})
    assert "encoder.stem.0.instance_gate.weight" in load_file(str(old / "checkpoints" / "best.safetensors"))
    features = next(paths.features.glob("*.npy"))
    expected = OfflineDetector.from_run(run).detect(features)
    got = OfflineDetector.from_run(old).detect(features)
    assert [(d.label_id, d.start, d.end, d.score) for d in got] == [(d.label_id, d.start, d.end, d.score)
                                                                     for d in expected]


def test_detect_says_which_set_it_wrote_in_its_output_and_in_the_file(trained_run, tmp_path, capsys):
    run, paths = trained_run
    tuned = json.loads((run / "postprocess.json").read_text())["score_threshold"]
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "hard.json"), "--device", "cpu",
                 "--precision", "fp32"]) == 0
    captured = capsys.readouterr()
    # not a terminal: no progress bar frames in a log (the note on the run's own training videos aside)
    assert [line for line in captured.err.splitlines() if "trained or validated on" not in line] == []
    hard = json.loads((tmp_path / "hard.json").read_text())
    count = sum(map(len, hard["results"].values()))
    assert captured.out.strip().splitlines()[-1] == (
        f"wrote {tmp_path / 'hard.json'}: {count} detections in 4 videos (fp32 inference), the hard set "
        f"(score >= {tuned:.4g}, the F1 threshold tuned on val; --all writes the ranked list, for mAP)"
    )
    block = hard["mgrec"]
    assert (block["set"], block["score_threshold"], block["threshold_tuned_on"]) == ("hard", tuned, "val")
    assert (block["run"], block["checkpoint"], block["inference_precision"]) == (str(run), "best", "fp32")
    assert all(d["score"] >= tuned for items in hard["results"].values() for d in items)
    for video, seconds in block["durations"].items():  # each video's length: its features' span
        file = paths.features / f"{video}.npy"
        grid = OfflineDetector.from_run(run).grid(read_sidecar(sidecar_path(file)).fps)
        assert seconds == grid.covered_seconds(len(np.load(file)))
    assert sorted(block["durations"]) == sorted(hard["results"])

    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "ranked.json"), "--all"]) == 0
    assert "the ranked list" in capsys.readouterr().out
    ranked = json.loads((tmp_path / "ranked.json").read_text())
    assert ranked["mgrec"]["set"] == "ranked"
    assert sum(map(len, ranked["results"].values())) > count


def test_detect_help_says_the_hard_set_is_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "By default the HARD SET is written" in text and "--all" in text
    assert "(default: the hard set, score >= the threshold tuned on val)" in text


def test_detect_and_evaluate_show_a_bar_over_the_videos_when_asked(trained_run, tmp_path, capsys):
    from mgrec.infer.detect import detect_files

    run, paths = trained_run
    summary = detect_files(run, [paths.features], tmp_path / "d.json", progress=True)
    assert (summary.videos, summary.ranked, summary.threshold_tuned_on) == (4, False, "val")
    err = capsys.readouterr().err  # the bar's first frame (later ones are skipped within 0.1 s), then cleared
    assert "detect:" in err and "0/4" in err and "video/s" in err
    evaluate_run(run, split="test", progress=True)
    assert "test:" in (err := capsys.readouterr().err) and "0/1" in err


def test_evaluate_ends_with_a_count_line_and_records_the_set_of_its_detections(trained_run, capsys):
    run, _ = trained_run
    assert main(["evaluate", str(run), "--device", "cpu", "--precision", "fp32"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("evaluated 1 video of split test with checkpoint best and fp32 inference "
                           "(score threshold ")
    assert f"tuned on val); wrote {run / 'eval_test.json'} and {run / 'detections_test.json'}" in last
    block = json.loads((run / "detections_test.json").read_text())["mgrec"]
    assert (block["set"], block["threshold_tuned_on"], block["checkpoint"], block["split"]) == (
        "ranked", "val", "best", "test")
    assert block["score_threshold"] == json.loads((run / "eval_test.json").read_text())["score_threshold"]


def test_a_folder_with_appledouble_junk_is_detected_without_it(trained_run, tmp_path):
    run, paths = trained_run
    folder = tmp_path / "features"
    shutil.copytree(paths.features, folder)
    (folder / "._x.npy").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    assert main(["detect", str(run), str(folder), "--out", str(tmp_path / "d.json")]) == 0
    assert "._x" not in json.loads((tmp_path / "d.json").read_text())["results"]


@pytest.mark.parametrize("recipe_text, message", [
    ("{not json", r"feature_recipe\.json:1:2: feature sidecar file is not valid JSON"),
    ('{"fps": 25.0}', r"feature_recipe\.json \[stride\]: missing key"),
])
def test_a_malformed_feature_recipe_is_named_with_its_key(tmp_path, recipe_text, message):
    from mgrec.extract.jobs import extract_with_recipe

    run = make_random_run(tmp_path, input_dim=8)
    (run / "feature_recipe.json").write_text(recipe_text)
    with pytest.raises(InputError, match=message):
        extract_with_recipe(run, [tmp_path / "video.mp4"], tmp_path / "features")


def test_score_says_when_it_is_given_the_hard_set(trained_run, tmp_path, capsys):
    run, paths = trained_run
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "hard.json")]) == 0
    capsys.readouterr()
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(tmp_path / "hard.json")]) == 0
    captured = capsys.readouterr()
    assert "holds the hard set" in captured.err
    # scored at the threshold it was cut at, which it records (it said "score >= 0", and its JSON a threshold of 0)
    recorded = json.loads((tmp_path / "hard.json").read_text())["mgrec"]["score_threshold"]
    assert recorded > 0 and f"predictions with score >= {recorded:.4g}" in captured.out
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(tmp_path / "hard.json"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["score_threshold"] == recorded and scores["threshold_tuned_on"] == "val"
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(tmp_path / "hard.json"), "--score-threshold",
                 "0", "--json"]) == 0  # every detection of the hard set: the same F1
    assert json.loads(capsys.readouterr().out)["f1"] == scores["f1"]
    # a hard set with detections below its bar (edited, or joined from another file): they are not counted, and said
    document = json.loads((tmp_path / "hard.json").read_text())
    video = next(v for v, items in document["results"].items() if items)
    document["results"][video].append({**document["results"][video][0], "score": recorded / 2})
    (tmp_path / "edited.json").write_text(json.dumps(document))
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(tmp_path / "edited.json")]) == 0
    said = capsys.readouterr().err
    assert re.search(rf"note: 1 of the \d+ detections in {re.escape(str(tmp_path / 'edited.json'))} scores below the "
                     "threshold it records as its hard set's", said), said


def test_detect_on_a_raw_video_makes_every_stream_of_a_two_stream_run(tmp_path, carphone, capsys):
    # Two streams of one video by two recipes (EfficientNet at 112 px every 4 frames, and every 8 frames):
    # from the video, detect makes each with its own recipe, and finds what it finds on the feature files
    # (the second stream's named with a prefix, v_<id>.npy: made so from the video too).
    import torch

    from mgrec.config import StreamConfig
    from mgrec.extract.jobs import extract

    fine = extract([carphone], tmp_path / "fine", backbone="efficientnet-lite0", size=112, progress=False)[0]
    coarse = extract([carphone], tmp_path / "coarse", backbone="efficientnet-lite0", size=112, stride=8,
                     progress=False)[0]
    recipes = {name: FeatureSidecar(**json.loads(r.feature_path.with_suffix(".json").read_text()))
               for name, r in (("fine", fine), ("coarse", coarse))}
    for file in (coarse.feature_path, coarse.feature_path.with_suffix(".json")):  # this stream's files: v_<id>
        file.rename(file.with_name("v_" + file.name))
    dim = recipes["fine"].dim
    config = Config(
        data=DataConfig(max_seq_len=128, streams=[
            StreamConfig(name="fine", features=str(tmp_path / "fine"), feature_dim=dim, stride=4, window=16),
            StreamConfig(name="coarse", features=str(tmp_path / "coarse"), feature_dim=dim, stride=8, window=16,
                         feature_prefix="v_")]),
        model=ModelConfig(num_classes=17, fusion="gated", **SMALL_MODEL),
        postprocess=PostprocessConfig(pre_nms_thresh=0.0, pre_nms_topk=500, max_detections=500),
    )
    model = build_detector(config.model)
    with torch.no_grad():  # open the gate's projection, so that the second stream changes the detections
        for fusion in model.encoder.fusions[0]:
            fusion.project_out.weight.normal_(std=0.5)
    run = tmp_path / "run"
    RunDir(run).write_for_inference(config, [f"class{i}" for i in range(17)], model,
                                    recipe=dataclasses.asdict(recipes["fine"]))
    RunDir(run).write_recipe(dataclasses.asdict(recipes["coarse"]), stream="coarse")
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "video.json"), "--all"]) == 0
    assert main(["detect", str(run), str(fine.feature_path), "--out", str(tmp_path / "feats.json"), "--all"]) == 0
    from_video = json.loads((tmp_path / "video.json").read_text())["results"]
    from_features = json.loads((tmp_path / "feats.json").read_text())["results"]
    assert from_video == from_features and sum(map(len, from_video.values())) > 0
    # in a detection-level ensemble, first or second beside a run of one stream: each makes its features of the video,
    # kept as FOLDER/members/<m>/grid and /<stream>, and the command printed reads them back
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    single = make_random_run(tmp_path / "single", input_dim=dim, recipe=recipes["fine"])
    for order in ((run, single), (single, run)):
        ensemble = tmp_path / f"ensemble_{order.index(run)}"
        make_fused_ensemble(list(order), ensemble, log=lambda *_: None)
        kept, outputs = tmp_path / f"kept_{order.index(run)}", []
        assert main(["detect", str(ensemble), str(carphone), "--keep-features", str(kept), "--all",
                     "--out", str(tmp_path / "from_video.json")]) == 0
        command = re.search(r"`mgrec detect RUN ([^`]*)` reads them", capsys.readouterr().err).group(1).split()
        assert (kept / "members" / str(order.index(run)) / "grid").is_dir()
        assert main(["detect", str(ensemble), *command, "--all", "--out", str(tmp_path / "from_kept.json")]) == 0
        for name in ("from_video.json", "from_kept.json"):
            outputs.append(json.loads((tmp_path / name).read_text())["results"])
            (tmp_path / name).unlink()
        assert outputs[0] == outputs[1] and sum(map(len, outputs[0].values())) > 0
        # streamed (a member of several streams was refused), its streams joined on its grid as they arrive: from the
        # video as from the kept files, and, with a lookahead longer than the video, detect's hard set
        tuned = json.loads((ensemble / "postprocess.json").read_text())  # random weights: every score is low
        (ensemble / "postprocess.json").write_text(json.dumps({**tuned, "score_threshold": 0.0}))
        streamed, _ = [], capsys.readouterr()
        for inputs in ([str(carphone)], command):
            assert main(["stream", str(ensemble), *inputs, "--lookahead", "100", "--hop", "1"]) == 0
            streamed.append(sorted((line["label"], line["segment(frames)"], line["score"])
                                   for line in map(json.loads, capsys.readouterr().out.splitlines())))
        assert main(["detect", str(ensemble), *command, "--out", str(tmp_path / "hard.json")]) == 0
        hard = sorted((d["label"], d["segment(frames)"], d["score"])
                      for d in json.loads((tmp_path / "hard.json").read_text())["results"][carphone.stem])
        (tmp_path / "hard.json").unlink()
        assert [e[:2] for e in streamed[0]] == [e[:2] for e in streamed[1]] == [h[:2] for h in hard] and hard
        assert np.allclose([e[2] for e in streamed[0]], [h[2] for h in hard], rtol=0, atol=1e-6)
    # in Python, that member's rows go by stream name; a refused chunk takes nothing of any member
    from mgrec.infer.online import FusedOnlineDetector

    online = FusedOnlineDetector(OfflineDetector.from_run(ensemble, device="cpu"), fps=30.0, video_id="v")
    rows = np.zeros((4, dim), dtype=np.float32)
    for chunks, said in (({0: rows, 1: {"fine": rows, "nope": rows}}, "member 1: no stream 'nope' in this run"),
                         ({0: {"fine": rows}}, "member 0: this member reads one stream: give its rows as an array"),
                         ({1: {"fine": rows, "coarse": rows[:, :3]}}, r"member 1: stream 'coarse': expected an array")):
        with pytest.raises(InputError, match=said):
            online.push_members(chunks)
    assert online.received_steps == online._others[0].received_steps == 0
    online.push_members({1: {"fine": rows, "coarse": rows[:2]}, 0: rows})
    assert online.received_steps == 4 and online._others[0].received_steps > 0
    # two members of several streams: where the second's streams drift too far apart, the first's take nothing either;
    # a member whose streams released no grid step yet gets its rows at the end; more rows than a window at once
    three = tmp_path / "ensemble_three"
    make_fused_ensemble([single, run, run], three, log=lambda *_: None)
    online = FusedOnlineDetector(OfflineDetector.from_run(three, device="cpu"), fps=30.0, video_id="v")
    first, second = online._others
    apart = np.zeros((600, dim), dtype=np.float32)  # 80 s of the fine stream, nothing of the coarse one
    with pytest.raises(InputError, match=r"member 2: stream\(s\) coarse more than 60 s behind the others"):
        online.push_members({1: {"fine": rows, "coarse": rows[:2]}, 2: {"fine": apart}, 0: rows})
    assert first._aligner.snapshot()[2] == second._aligner.snapshot()[2] == [0, 0]
    assert online.received_steps == first.received_steps == second.received_steps == 0
    online.push_members({1: {"fine": rows[:1]}, 2: {"fine": rows, "coarse": rows[:2]}, 0: rows})
    assert first.received_steps == 0 and second.received_steps > 0  # member 1: no coarse row yet
    with pytest.raises(InputError, match="this stream is fed by push_streams"):
        online.push_members({1: np.zeros((2, 2 * dim), dtype=np.float32)})  # joined rows beside its streams
    online.push_members({1: {"coarse": rows[:1]}})
    online.flush()
    assert first.received_steps == 1 and second.received_steps == 4  # released at the end, as detect reads them
    wide = FusedOnlineDetector(OfflineDetector.from_run(three, device="cpu"), fps=30.0, video_id="v")
    long = np.zeros((3 * wide._others[1].history, dim), dtype=np.float32)
    wide.push_members({2: {"fine": long, "coarse": long[: len(long) // 2]}, 0: rows})  # a ValueError, half-fed
    # ahead of member 0: held, not in the member's window (before, the member's window took them at once)
    assert wide._held_rows(2) > 0 and wide._others[1].received_steps <= len(rows)
    wide.flush()
    assert wide._others[1].received_steps > wide._others[1].history
    # with several streams, one unreadable video of several stops the whole call, and says nothing was written
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(carphone.read_bytes()[:300_000])
    assert main(["detect", str(run), str(carphone), str(broken), "--out", str(tmp_path / "batch.json")]) == 2
    assert not (tmp_path / "batch.json").exists()
    said = capsys.readouterr().err  # (it said "the others were written" of features in a folder then removed)
    assert "no detections were written" in said and "the others were written" not in said
    # a stream without a recipe cannot be made from a video, and says which
    (run / "feature_recipe_coarse.json").unlink()
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "x.json")]) == 2


def test_a_run_loaded_by_a_relative_path_checks_recipes_after_a_chdir(trained_run, tmp_path, monkeypatch):
    # the recipes were read at the first detect: after an os.chdir a relative run path found none, and features
    # of another recipe were detected without a word
    import json
    import shutil

    run, paths = trained_run
    other = tmp_path / "other"
    other.mkdir()
    feature = sorted(paths.features.glob("*.npy"))[0]
    shutil.copy(feature, other / feature.name)
    sidecar = json.loads(feature.with_suffix(".json").read_text())
    (other / feature.with_suffix(".json").name).write_text(json.dumps({**sidecar, "backbone": "another-backbone"}))
    assert (Path(run) / "feature_recipe.json").exists()
    monkeypatch.chdir(Path(run).parent)
    detector = OfflineDetector.from_run(Path(run).name, device="cpu")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"these features were made with another recipe than the run was trained on"):
        detector.detect(other / feature.name)
    # the recipes are still read only when a file with a sidecar is checked: a run whose recipe cannot be read
    # detects arrays (and files without sidecars) as before
    copy = Path(shutil.copytree(run, tmp_path / "copy"))
    recipe = json.loads((copy / "feature_recipe.json").read_text())
    (copy / "feature_recipe.json").write_text(json.dumps({**recipe, "added_later": 1}))
    rows = np.load(feature)
    assert isinstance(OfflineDetector.from_run(copy, device="cpu").detect(rows, fps=28.0), list)
    with pytest.raises(InputError, match=r"config.yaml: not a run directory \(a file, not a folder\)"):
        OfflineDetector.from_run(Path(run) / "config.yaml", device="cpu")
    for bad, message in (((None,), "run_dir: expected the path of a run directory"),
                         ((run,), "device=None is not a device name")):
        with pytest.raises(InputError, match=re.escape(message)):
            OfflineDetector.from_run(*bad, device=None if bad[0] is not None else "cpu")


def test_detect_says_which_videos_the_run_trained_or_validated_on(trained_run, tmp_path, capsys):
    # `detect RUN FEATURES_FOLDER --format smg` wrote every video of the folder, train and val among the test ones,
    # into what looks like a challenge submission, without a word
    run, paths = trained_run
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "all.json"), "--device", "cpu"]) == 0
    assert ("note: 3 of the 4 videos are ones the run trained or validated on (synthetic_000, synthetic_001, "
            "synthetic_002): their detections say little about unseen videos") in capsys.readouterr().err
    test_file = paths.features / "synthetic_003.npy"
    assert main(["detect", str(run), str(test_file), "--out", str(tmp_path / "test.json"), "--device", "cpu"]) == 0
    assert "trained or validated on" not in capsys.readouterr().err


def test_torch_s_default_dtype_and_a_caller_s_autocast_leave_detection_as_it_is(trained_run):
    # after torch.set_default_dtype(torch.float64) the run's network was built in float64 and its checkpoint refused
    # as "another model configuration"; inside a caller's torch.autocast(bf16) an fp32 detector ran in bf16 and
    # said fp32
    run, paths = trained_run
    features = paths.features / "synthetic_003.npy"
    detector = OfflineDetector.from_run(run, precision="fp32")
    expected = [(d.label_id, d.start, d.end, d.score) for d in detector.detect(features)]
    torch.set_default_dtype(torch.float64)
    try:
        loaded = OfflineDetector.from_run(run, precision="fp32")
        assert next(loaded.model.parameters()).dtype == torch.float32
        assert [(d.label_id, d.start, d.end, d.score) for d in loaded.detect(features)] == expected
        assert torch.get_default_dtype() == torch.float64  # the caller's, given back
    finally:
        torch.set_default_dtype(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert [(d.label_id, d.start, d.end, d.score) for d in detector.detect(features)] == expected


def test_one_bad_feature_file_of_a_batch_is_named_and_the_others_detections_written(trained_run, tmp_path, capsys):
    """A folder whose one file had another width stopped detect at that file, and nothing of the others was written
    (an overnight batch lost every video's work); the others are written now, and the bad one named (exit 2)."""
    run, paths = trained_run
    folder = tmp_path / "features"
    shutil.copytree(paths.features, folder)
    good = sorted(p.stem for p in folder.glob("*.npy"))
    np.save(folder / "aaa_wide.npy", np.zeros((50, 64), dtype=np.float32))  # first in the folder's order
    out = tmp_path / "d.json"
    assert main(["detect", str(run), str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "1 input(s) could not be read, and their detections are not in" in error and "aaa_wide.npy" in error
    assert sorted(json.loads(out.read_text())["results"]) == good
    # from Python the first bad file is raised, as before
    with pytest.raises(InputError, match="aaa_wide.npy"):
        detect_files(run, [folder], tmp_path / "python.json")
    # nothing readable: nothing written
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    np.save(lonely / "aaa_wide.npy", np.zeros((50, 64), dtype=np.float32))
    assert main(["detect", str(run), str(lonely), "--out", str(tmp_path / "none.json")]) == 2
    assert "no input could be read, nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "none.json").exists()


def test_an_ensemble_of_runs_that_read_different_features_detects_a_video_each_member_on_its_own(tmp_path, carphone,
                                                                                                   capsys):
    # An RGB run and a skeleton run fused at the detection level read different files of one video: `detect` refused
    # videos ("extract each member's"), and given one member's files the other member refused their recipe, so such
    # an ensemble could only be evaluated on its own annotations. Now each member makes its own features of a video
    # (here two recipes: EfficientNet every 4 frames and every 8), or reads them from --member M=FOLDER.
    from mgrec.extract.jobs import extract
    from mgrec.infer.fused_ensemble import make_fused_ensemble
    from mgrec.postprocess.detection_fusion import fuse_detections

    made = {stride: extract([carphone], tmp_path / f"every{stride}", backbone="efficientnet-lite0", size=112,
                            stride=stride, progress=False)[0].feature_path for stride in (4, 8)}
    runs = []
    for stride, path in made.items():
        recipe = FeatureSidecar(**json.loads(path.with_suffix(".json").read_text()))
        config = Config(data=DataConfig(feature_dim=recipe.dim, fps=None, stride=stride, window=16, max_seq_len=128),
                        model=ModelConfig(input_dim=recipe.dim, num_classes=17, **SMALL_MODEL),
                        postprocess=PostprocessConfig(pre_nms_thresh=0.0, pre_nms_topk=500, max_detections=500))
        torch.manual_seed(stride)
        runs.append(tmp_path / f"run{stride}")
        RunDir(runs[-1]).write_for_inference(config, [f"class{i}" for i in range(17)], build_detector(config.model),
                                             recipe=dataclasses.asdict(recipe))
    ensemble = tmp_path / "both"
    make_fused_ensemble(runs, ensemble, log=lambda *_: None)

    def results(name):
        return json.loads((tmp_path / name).read_text())["results"]

    assert main(["detect", str(ensemble), str(carphone), "--out", str(tmp_path / "video.json"), "--all"]) == 0
    assert main(["detect", str(ensemble), str(made[4]), "--member", f"1={made[8].parent}",
                 "--out", str(tmp_path / "files.json"), "--all"]) == 0
    members = [OfflineDetector.from_run(run, device="cpu", precision="fp32").detect(path)
               for run, path in zip(runs, made.values())]
    video = made[4].stem
    fused = fuse_detections(members)
    assert [d["segment"] for d in results("video.json")[video]] == [[d.start, d.end] for d in fused]
    assert results("video.json") == results("files.json") and len(fused) > max(map(len, members)) > 0
    # without --member every member reads the file given, and the second refuses a recipe not its own
    assert main(["detect", str(ensemble), str(made[4]), "--out", str(tmp_path / "x.json")]) == 2
    assert re.search(f"member 1 of {ensemble} .*stride is 4 in the sidecar but 8 in the config.*; where it reads other "
                     r"features than the file given, give their folder: --member 1=FOLDER", capsys.readouterr().err)
    # --keep-features keeps each member's, as the ensemble holds its members, and says how to read them again
    kept = tmp_path / "kept"
    assert main(["detect", str(ensemble), str(carphone), "--out", str(tmp_path / "kept.json"), "--all",
                 "--keep-features", str(kept)]) == 0
    said = capsys.readouterr().err
    assert f"`mgrec detect RUN {kept}/members/0 --member 1={kept}/members/1` reads them" in said
    assert main(["detect", str(ensemble), str(kept / "members" / "0"), "--member", f"1={kept / 'members' / '1'}",
                 "--out", str(tmp_path / "again.json"), "--all"]) == 0
    assert results("again.json") == results("video.json")
    assert main(["detect", str(ensemble), str(carphone), "--out", str(tmp_path / "reused.json"), "--all",
                 "--keep-features", str(kept)]) == 0
    assert "1 of them there already" in capsys.readouterr().err
    # beside videos, --member gives a member's files (a skeleton run's, which no video makes) and the others make theirs
    skeleton = Path(shutil.copytree(ensemble, tmp_path / "with_skeleton"))
    recipe_path = skeleton / "members" / "1" / "feature_recipe.json"
    recipe_path.write_text(json.dumps({**json.loads(recipe_path.read_text()), "backbone": "skeleton"}))
    assert main(["detect", str(skeleton), str(carphone), "--out", str(tmp_path / "refused.json")]) == 2
    assert re.search(f"member 1 of {skeleton} .*cannot make from a video.*; give its feature files with --member "
                     "1=FOLDER", capsys.readouterr().err)
    assert not (tmp_path / "refused.json").exists()
    assert main(["detect", str(ensemble), str(carphone), "--member", f"1={made[8].parent}",
                 "--out", str(tmp_path / "beside.json"), "--all"]) == 0
    assert results("beside.json") == results("video.json")
    # a member whose files are named with a prefix (data.feature_prefix) finds a video's made without it
    prefixed = Path(shutil.copytree(ensemble, tmp_path / "prefixed"))
    member_config = prefixed / "members" / "1" / "config.yaml"
    member_config.write_text(member_config.read_text().replace("feature_prefix: ''", "feature_prefix: pose_"))
    assert "feature_prefix: pose_" in member_config.read_text()
    assert main(["detect", str(prefixed), str(carphone), "--out", str(tmp_path / "prefixed.json"), "--all"]) == 0
    assert results("prefixed.json") == results("video.json")
    # what is refused, each before any work, naming what to give
    for options, message in (
        ([str(made[4]), "--member", f"2={kept}"], r"M a member of .* \(0..1: members/<M>/\)"),
        ([str(made[4]), "--member", f"0={kept}"], "member 0 reads the files given"),
        ([str(made[4]), "--member", "1"], "expected M=FOLDER"),
        ([str(made[4]), "--member", f"1={kept}", "--member", f"1={tmp_path}"], "member 1 is given twice"),
        ([str(made[4]), "--member", f"1={tmp_path}"],
         f"member 1 of {ensemble} .*: no such file: the member reads video '{video}' there"),
        ([str(made[4]), str(carphone)], "give it videos .* or feature files .*, not both"),
        ([str(made[4]), "--stream", f"x={kept}"], "no stream 'x' in this run"),
        ([str(carphone), "--onnx", str(tmp_path / "net.onnx"), "--keep-features", str(tmp_path / "k2")],
         "fuses the detections of 2 runs, each with its own network"),  # before any video is turned into features
    ):
        assert main(["detect", str(ensemble), *options, "--out", str(tmp_path / "refused.json")]) == 2, options
        assert re.search(message, capsys.readouterr().err), options
    assert not (tmp_path / "k2").exists()
    # an output among the member's kept features, named as a video's sidecar there (the detections replaced it)
    clash = kept / "members" / "1" / f"{video}.json"
    before = clash.read_bytes()
    assert main(["detect", str(ensemble), str(carphone), "--keep-features", str(kept), "--out", str(clash)]) == 2
    assert "the name of video" in capsys.readouterr().err and clash.read_bytes() == before
    assert main(["detect", str(ensemble), str(made[4]), "--member", f"1={made[8].parent}",
                 "--out", str(made[8].with_suffix(".json"))]) == 2
    assert "would overwrite" in capsys.readouterr().err
    # streamed, each member on a window of its own features (one every 4 frames, the other every 8): from the video as
    # from the files (it was refused: the ensemble "records no feature recipe")
    streamed = Path(shutil.copytree(ensemble, tmp_path / "streamed"))
    tuned = json.loads((streamed / "postprocess.json").read_text())  # random weights: every score is low
    (streamed / "postprocess.json").write_text(json.dumps({**tuned, "score_threshold": 0.0}))
    lines = {}
    for name, inputs in (("video", [str(carphone)]), ("files", [str(made[4]), "--member", f"1={made[8].parent}"])):
        assert main(["stream", str(streamed), *inputs, "--lookahead", "1"]) == 0
        lines[name] = [{k: v for k, v in json.loads(line).items() if k in ("label", "segment(frames)", "score")}
                       for line in capsys.readouterr().out.splitlines()]
    assert lines["video"] == lines["files"] and lines["video"]
    # with the finer member second, its last rows end after the coarser member 0's last: the final update sees them
    # (they were left out where member 0's rows were a whole number of hops), and with a lookahead longer than the
    # video, whose window then holds it all, the stream emits detect's hard set
    coarse_first = tmp_path / "coarse_first"
    make_fused_ensemble(runs[::-1], coarse_first, log=lambda *_: None)
    (coarse_first / "postprocess.json").write_text(json.dumps({**tuned, "score_threshold": 0.0}))
    longer = tmp_path / "longer"  # the finer member's features, one row (4 frames) longer than the video's coarse ones
    longer.mkdir()
    rows = np.load(made[4])
    np.save(longer / made[4].name, np.concatenate([rows, rows[-1:]]))
    side = json.loads(made[4].with_suffix(".json").read_text())
    (longer / made[4].with_suffix(".json").name).write_text(json.dumps(
        {**side, "num_features": len(rows) + 1, "frames": side["frames"] + 4}))
    assert (len(rows) + 1) * 4 + 12 > len(np.load(made[8])) * 8 + 8  # it ends after member 0's last window
    assert main(["stream", str(coarse_first), str(made[8]), "--member", f"1={longer}", "--lookahead", "100",
                 "--hop", "1"]) == 0
    emitted = sorted((line["label"], line["segment(frames)"], line["score"])
                     for line in map(json.loads, capsys.readouterr().out.splitlines()))
    assert main(["detect", str(coarse_first), str(made[8]), "--member", f"1={longer}",
                 "--out", str(tmp_path / "coarse_first.json")]) == 0
    hard = sorted((d["label"], d["segment(frames)"], d["score"]) for d in results("coarse_first.json")[video])
    assert [e[:2] for e in emitted] == [h[:2] for h in hard] and len(hard) > 10
    assert np.allclose([e[2] for e in emitted], [h[2] for h in hard], rtol=0, atol=1e-6)
    assert main(["detect", str(runs[0]), str(made[4]), "--member", f"1={kept}", "--out", str(tmp_path / "r.json")]) == 2
    assert "is no detection-level ensemble" in capsys.readouterr().err
    assert not list(tmp_path.glob("refused.json")) and not (tmp_path / "r.json").exists()


def test_keep_features_with_a_folder_of_videos_says_to_give_the_videos(trained_run, tmp_path, capsys):
    # a folder holding only videos was called "feature files already" under --keep-features (without it, detect said
    # to give the videos themselves)
    run, paths = trained_run
    videos = tmp_path / "myvids"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"a video, not decoded here")
    assert main(["detect", str(run), str(videos), "--out", str(tmp_path / "d.json"),
                 "--keep-features", str(tmp_path / "kept")]) == 2
    said = capsys.readouterr().err
    assert "but 1 video file(s) (clip.mp4, ...): give the video files themselves" in said, said
    assert "feature files already" not in said and not (tmp_path / "kept").exists()
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "d.json"),
                 "--keep-features", str(tmp_path / "kept")]) == 2
    assert "the inputs are feature files already: leave it out" in capsys.readouterr().err


def test_features_unlike_the_run_s_are_refused_with_every_difference_and_the_run_s_recipe(trained_run, tmp_path):
    # made with another window and another backbone: the window was said, and the backbone only once features of the
    # right window were made again; now both, with what the run's were made with
    run, paths = trained_run
    feature = sorted(paths.features.glob("*.npy"))[0]
    recipe = json.loads((Path(run) / "feature_recipe.json").read_text())
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(feature, other / feature.name)
    sidecar = json.loads(feature.with_suffix(".json").read_text())
    (other / feature.with_suffix(".json").name).write_text(json.dumps(
        {**sidecar, "window": sidecar["window"] * 2, "backbone": "another-backbone"}))
    with pytest.raises(InputError) as refused:
        OfflineDetector.from_run(run, device="cpu").detect(other / feature.name)
    said = str(refused.value)
    assert f"window is {sidecar['window'] * 2} in the sidecar but {sidecar['window']} in the config" in said
    assert f"backbone 'another-backbone' (the run: {recipe['backbone']!r})" in said
    assert (f"The run's features were made with backbone {recipe['backbone']}, window {recipe['window']}, stride "
            f"{recipe['stride']}") in said and "`mgrec detect RUN VIDEO` makes them from the video" in said


def test_streaming_a_video_of_several_video_streams_says_which_it_reads(tmp_path, capsys):
    # `mgrec extract` and `detect RUN VIDEO` say that a file of several video streams is read from its first; `mgrec
    # stream RUN VIDEO` (its features made as it is decoded) read the first without a word
    from tests.extract.test_jobs import two_video_streams

    from mgrec.extract.jobs import extract_videos
    from mgrec.extract.live import LiveFeatures

    both = two_video_streams(tmp_path / "both.mkv", 20, 20)
    (extracted,) = extract_videos([both], tmp_path / "features", size=32, progress=False)
    recipe = FeatureSidecar(**json.loads(extracted.feature_path.with_suffix(".json").read_text()))
    run = make_random_run(tmp_path, input_dim=recipe.dim, recipe=recipe)
    capsys.readouterr()
    assert LiveFeatures(run).fps(both) == pytest.approx(25.0)
    assert capsys.readouterr().err == (f"note: {both}: it holds 2 video streams and mgrec reads the first, 32x32; to "
                                       "read another, copy it into a file of its own: ffmpeg -i IN -map 0:v:1 -c copy "
                                       "OUT.mkv\n")


def test_an_interrupted_detect_or_evaluate_names_the_video_it_stopped_in(trained_run, tmp_path, capsys, monkeypatch):
    """Ctrl-C (or SIGTERM) in `detect` of several videos, or in `evaluate`, said "mgrec: interrupted" alone: not which
    video it stopped in, how many were finished, nor that nothing was written yet."""
    run, paths = trained_run
    detect, calls = OfflineDetector.detect, []

    def interrupted_at_the_second(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return detect(self, path, *args, **kwargs)

    monkeypatch.setattr(OfflineDetector, "detect", interrupted_at_the_second)
    videos = sorted(paths.features.glob("*.npy"))
    out = tmp_path / "d.json"
    assert main(["detect", str(run), *map(str, videos), "--out", str(out)]) == 130
    assert (f"mgrec: interrupted; stopped in video '{videos[1].stem}' (2 of 4: 1 finished before it): nothing was "
            f"written to {out} (detect writes it once every video is detected)") in capsys.readouterr().err
    assert not out.exists()

    def terminated_in_the_first(self, *args, **kwargs):
        from mgrec.cli import Terminated

        raise Terminated

    monkeypatch.setattr(OfflineDetector, "detect_read", terminated_in_the_first)
    assert main(["evaluate", str(run), "--split", "test"]) == 143
    assert ("mgrec: terminated; stopped in video 'synthetic_003' (1 of 1: 0 finished before it): nothing was written "
            "into the run (evaluate writes its files once every video of split test is scored)"
            ) in capsys.readouterr().err


def test_a_run_recipe_that_contradicts_its_config_is_said_once_as_the_runs(tmp_path, carphone, capsys):
    # a feature_recipe.json of stride 8 beside config.yaml's stride 4 was said once per input under "no input could
    # be read, nothing was written", as if the inputs were at fault; and a video was first made into features of the
    # recipe's stride 8, each then refused
    recipe = FeatureSidecar(fps=25.0, stride=4, window=16, backbone="efficientnet-lite0@112", dim=8, frames=None)
    run = make_random_run(tmp_path, input_dim=8, recipe=dataclasses.replace(recipe, stride=8))
    features = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    for name in ("a", "b", "c"):
        write_features(tmp_path / f"{name}.npy", features, recipe)
    inputs = [str(tmp_path / f"{name}.npy") for name in ("a", "b", "c")]
    said = f"{run / 'feature_recipe.json'}: stride 8, where config.yaml's data has stride 4"
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err
    assert err.count(said) == 1 and "no input could be read" not in err
    kept = tmp_path / "kept"
    assert main(["detect", str(run), str(carphone), "--out", str(tmp_path / "v.json"), "--keep-features",
                 str(kept)]) == 2
    err = capsys.readouterr().err
    assert err.count(said) == 1 and "no input could be read" not in err
    assert not list(kept.glob("*.npy"))  # refused before any extraction
    # an unreadable recipe is the run's too where a sidecar is checked against it; arrays are still detected
    (run / "feature_recipe.json").write_text("{not json")
    assert main(["detect", str(run), *inputs, "--out", str(tmp_path / "d.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("feature_recipe.json:1:2: feature sidecar file is not valid JSON") == 1
    assert "no input could be read" not in err
    assert isinstance(OfflineDetector.from_run(run, device="cpu").detect(features, fps=25.0), list)


def test_detect_smg_writes_each_video_s_label_file_as_it_is_detected_and_an_unreadable_one_keeps_the_set_open(
        trained_run, tmp_path, capsys, monkeypatch):
    """`detect --format smg` wrote no label file before every video was detected: stopped after hours of detection, it
    kept nothing. Each file is now written as its video is detected, and the same command detects only the others.
    A video that could not be read ended the set without its file: `mgrec score` took the folder for whole, and the
    same command again refused the files as not its own; the folder now stays unfinished until that video has its
    file, and the same command, the file made readable, detects it alone."""
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, paths = trained_run
    folder = tmp_path / "features"
    shutil.copytree(paths.features, folder)
    inputs = sorted(folder.glob("*.npy"))
    whole, out = tmp_path / "whole", tmp_path / "smg"
    assert main(["detect", str(run), str(folder), "--format", "smg", "--out", str(whole)]) == 0
    detect, detected = OfflineDetector.detect, []

    def interrupted_in_the_third(self, path, *args, **kwargs):
        if len(detected) == 2:
            raise KeyboardInterrupt
        detected.append(path.stem)
        return detect(self, path, *args, **kwargs)

    monkeypatch.setattr(OfflineDetector, "detect", interrupted_in_the_third)
    command = ["detect", str(run), str(folder), "--format", "smg", "--out", str(out)]
    assert main(command) == 130
    assert (f"stopped in video '{inputs[2].stem}' (3 of 4: 2 finished before it): 2 of the 4 label files are in "
            f"{out}, which stays marked unfinished ({out / INCOMPLETE_MARKER}: `mgrec score` and the other readers "
            "refuse the folder); the same command again keeps them and detects the others") in capsys.readouterr().err
    assert sorted(p.parent.name for p in out.rglob("*.csv")) == detected
    monkeypatch.undo()

    # an unreadable video: the others' files are written, the set stays open, and says how to finish it
    good = inputs[3].read_bytes()
    np.save(inputs[3], np.full((50, 16), np.nan, dtype=np.float32))
    assert main(command) == 2
    said = capsys.readouterr()
    error = said.err
    assert (f"1 input(s) could not be read, and their detections are not in {out} ({out} stays marked unfinished, "
            "which `mgrec score` refuses: make them readable and run the same command again, which keeps the label "
            "files written and detects only them; or detect the others into an empty folder):\n  "
            f"{inputs[3]}: ") in error
    assert f"{out / INCOMPLETE_MARKER}): 1 video of its set has no label file" in said.out + said.err
    assert (out / INCOMPLETE_MARKER).exists() and len(list(out.rglob("*.csv"))) == 3
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(out), "--split", "test"]) == 2
    assert "did not finish" in capsys.readouterr().err
    inputs[3].write_bytes(good)
    monkeypatch.setattr(OfflineDetector, "detect", lambda self, path, *a, **k: detected.append(path.stem) or
                        detect(self, path, *a, **k))
    assert main(command) == 0
    assert detected[2:] == [inputs[3].stem]  # the unreadable one alone
    assert not (out / INCOMPLETE_MARKER).exists()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == \
        {p.relative_to(whole): p.read_bytes() for p in whole.rglob("*") if p.is_file()}
    # nothing readable into an empty folder: the folder is left as it was found, no marker made
    lonely, empty = tmp_path / "lonely", tmp_path / "empty"
    lonely.mkdir()
    np.save(lonely / "aaa_wide.npy", np.zeros((50, 64), dtype=np.float32))
    assert main(["detect", str(run), str(lonely), "--format", "smg", "--out", str(empty)]) == 2
    assert "no input could be read, nothing was written" in capsys.readouterr().err
    assert not empty.exists() or not any(empty.iterdir())


def test_a_resumed_detect_smg_whose_other_videos_all_fail_says_the_label_files_it_kept(trained_run, tmp_path, capsys):
    """Resumed, with every video left to detect unreadable, `detect --format smg` ended "wrote OUT: 0 detections in 0
    videos", as if OUT were empty: the label files of the interrupted detect are there, kept, and said so."""
    run, paths = trained_run
    folder = tmp_path / "features"
    shutil.copytree(paths.features, folder)
    inputs = sorted(folder.glob("*.npy"))
    np.save(inputs[3], np.full((50, 16), np.nan, dtype=np.float32))
    out = tmp_path / "smg"
    command = ["detect", str(run), str(folder), "--format", "smg", "--out", str(out)]
    assert main(command) == 2  # three files written, the set left unfinished
    said = capsys.readouterr()
    assert re.search(rf"wrote {re.escape(str(out))}: \d+ detections? in 3 videos \(", said.out + said.err)
    assert main(command) == 2  # resumed: the three kept, the fourth unreadable again
    said = capsys.readouterr()
    assert (f"wrote {out}: no new label file; the 3 label files an interrupted detect wrote there, kept (") in \
        said.out + said.err
    assert "0 detections in 0 videos" not in said.out + said.err
    assert len(list(out.rglob("*.csv"))) == 3


def test_a_label_folder_that_cannot_be_written_mid_way_says_which_files_are_kept_and_how_to_go_on(
        trained_run, tmp_path, capsys, monkeypatch):
    """A label folder made read-only mid-way (or its disk filled) said "cannot write OUT/.mgrec-incomplete: Operation
    not permitted" alone: not that the files written before are kept, nor that the same command goes on from them once
    the folder can be written (`StoppedIn`'s words, as an interruption's)."""
    import errno

    from mgrec import smg_csv
    from mgrec.files import cannot_write
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, paths = trained_run
    out = tmp_path / "smg"
    inputs = sorted(Path(paths.features).glob("*.npy"))
    real_write, writes = smg_csv.atomic_write_text, []

    def refused_from_the_second_video(path, text):
        writes.append(path)
        if len(list(out.rglob("*.csv"))) == 1:  # `chmod a-w OUT` once the first video's file is there
            raise cannot_write(path, PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(path)))
        real_write(path, text)

    monkeypatch.setattr(smg_csv, "atomic_write_text", refused_from_the_second_video)
    command = ["detect", str(run), str(paths.features), "--format", "smg", "--out", str(out)]
    assert main(command) == 2
    assert (f"mgrec: error: cannot write {out / INCOMPLETE_MARKER}: Operation not permitted; stopped in video "
            f"'{inputs[1].stem}' (2 of 4: 1 finished before it): 1 of the 4 label files is in {out}, which stays "
            f"marked unfinished ({out / INCOMPLETE_MARKER}: `mgrec score` and the other readers refuse the folder); "
            "the same command again keeps them and detects the others (once the output can be written)") in \
        capsys.readouterr().err
    monkeypatch.undo()
    assert main(command) == 0  # writable again: the same command goes on
    assert "resuming the detect" in capsys.readouterr().err and len(list(out.rglob("*.csv"))) == 4


def test_a_resumed_detect_smg_keeps_a_label_file_only_for_the_input_it_was_made_of(trained_run, tmp_path, capsys,
                                                                                  monkeypatch):
    """The marker named the videos by id alone: a feature file replaced by a newer recording of its name (or two
    swapped) between an interrupted `detect --format smg` and the same command again, and the video's kept label file
    held the detections of its old input, exit 0. Each file is recorded with its video's inputs (SHA-256); a marker of
    an mgrec before that keeps its files as it did."""
    from mgrec import smg_csv
    from mgrec.infer import label_set
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, paths = trained_run
    features = tmp_path / "features"
    shutil.copytree(paths.features, features)
    inputs = sorted(features.glob("*.npy"))
    out = tmp_path / "smg"
    command = ["detect", str(run), *map(str, inputs), "--format", "smg", "--out", str(out)]
    text_of, made = smg_csv.smg_label_text, []

    def interrupted_at_the_third(*args, **kwargs):
        if len(made) == 2:
            raise KeyboardInterrupt
        made.append(args)
        return text_of(*args, **kwargs)

    monkeypatch.setattr(label_set, "smg_label_text", interrupted_at_the_third)  # where LabelSet.write calls it
    assert main(command) == 130
    monkeypatch.undo()
    capsys.readouterr()
    first = inputs[0].stem
    kept = inputs[0].read_bytes()
    np.save(inputs[0], np.load(inputs[1]))  # a newer recording of that name
    assert main(command) == 2
    assert (f"{out / first / f'{first}_finelabels.csv'}: is the label file the interrupted detect wrote for video "
            f"{first} of another input (it was made of {inputs[0]} as it was then, and {inputs[0]} is another file "
            "now (replaced, or swapped with another video's, since)): remove it, and the same command detects that "
            "video again") in capsys.readouterr().err
    inputs[0].write_bytes(kept)

    marker = out / INCOMPLETE_MARKER  # an older mgrec's marker, without the inputs: its files kept, as they were
    marker.write_text(json.dumps({key: value for key, value in json.loads(marker.read_text()).items()
                                  if key != "inputs"}))
    np.save(inputs[0], np.load(inputs[1]))
    assert main(command) == 0
    assert "resuming the detect into" in capsys.readouterr().err
