"""`postprocess.thresholds: per_class`: tuned on val at training, kept in the run, and the hard set's bars
everywhere the run's hard set is made (evaluate, detect, stream, report, ensembles, pseudo-labels)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from tests.helpers import train_tiny_run

from mgrec.config import PostprocessConfig
from mgrec.errors import InputError
from mgrec.evaluate.f1 import hard_set, tune_thresholds
from mgrec.infer.detect import detect_files
from mgrec.infer.evaluate_run import detect_split, evaluate_run
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.report.html import analyze_run, write_report
from mgrec.run import RunDir
from mgrec.train.ensemble import make_ensemble

SHRINKAGE = 2.0


@pytest.fixture(scope="module")
def per_class_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("class-thresholds"), seed=3,
                          postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100, thresholds="per_class",
                                                        threshold_shrinkage=SHRINKAGE))


def test_training_tunes_one_threshold_per_class_on_val(per_class_run):
    run_dir, _, result = per_class_run
    tuning = json.loads((run_dir / "postprocess.json").read_text())
    per_class = tuning["class_thresholds"]
    assert len(per_class) == 3 and all(0 <= t <= 1 for t in per_class)
    assert result.class_thresholds == per_class
    assert "at score >= its class's threshold" in result.summary(next_steps=False)
    # they are what the rule gives on the selected weights' val detections
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    ranked, gt = detect_split(detector, "val")
    threshold, expected = tune_thresholds(gt, ranked, 3, detector.postprocess)
    assert tuning["score_threshold"] == pytest.approx(threshold) and per_class == pytest.approx(expected)
    assert detector.postprocess.class_thresholds == per_class
    assert len(set(per_class)) == 3  # each class got a bar of its own here (this seed; others tie them)
    # evaluate --tune-on re-tunes them by the run's rule
    assert evaluate_run(run_dir, split="test", tune_on="val")["class_thresholds"] == pytest.approx(per_class)


@pytest.fixture(scope="module")
def bars_that_bite(per_class_run, tmp_path_factory):
    """A copy of the run whose record holds thresholds that cut each class differently: class 0 keeps every
    detection, class 1 none, class 2 those at or above its median score on test (two epochs of training
    tune nearly one bar for all, which would test little)."""
    run_dir, paths, _ = per_class_run
    copy = tmp_path_factory.mktemp("bars") / "run"
    shutil.copytree(run_dir, copy)
    ranked, _ = detect_split(OfflineDetector.from_run(copy, device="cpu"), "test")
    bars = [0.0, 1.0, float(np.median([d.score for items in ranked.values() for d in items if d.label_id == 2]))]
    tuning = json.loads((copy / "postprocess.json").read_text())
    (copy / "postprocess.json").write_text(json.dumps({**tuning, "class_thresholds": bars}))
    return copy, paths, bars


def test_evaluate_detect_and_report_cut_each_class_at_its_threshold(bars_that_bite, tmp_path):
    run_dir, paths, bars = bars_that_bite
    result = evaluate_run(run_dir, split="test")
    ranked = json.loads((run_dir / "detections_test.json").read_text())
    kept = sum(d["score"] >= bars[d["label_id"]] for items in ranked["results"].values() for d in items)
    assert result["class_thresholds"] == bars and result["num_predictions"] == kept
    labels = {d["label_id"] for items in ranked["results"].values() for d in items}
    assert 0 < kept < sum(map(len, ranked["results"].values())) and {0, 2} <= labels
    assert ranked["mgrec"]["class_thresholds"] == bars

    video = "synthetic_003"
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    features = np.load(paths.features / f"{video}.npy")
    every = detector.detect(features, video_id=video, fps=30.0)
    expected = [d for d in every if d.score >= bars[d.label_id]]
    assert detector.hard_set(every) == expected
    summary = detect_files(run_dir, [paths.features / f"{video}.npy"], tmp_path / "hard.json")
    written = json.loads((tmp_path / "hard.json").read_text())
    assert summary.detections == len(expected) == len(written["results"][video])
    assert "its class's threshold" in summary.describe() and written["mgrec"]["class_thresholds"] == bars

    page = write_report(run_dir, split="test").read_text()
    assert "tuned per class" in page and f"{min(bars):.4g} to {max(bars):.4g}" in page
    # the report's and `analyze`'s hard set is the per-class one
    assert f"The {kept} detections with score ≥ its class&#x27;s threshold" in page  # the hard set's analysis
    analyze_run(run_dir, split="test")
    analysis = json.loads((run_dir / "analysis" / "test_analysis.json").read_text())
    assert analysis["class_thresholds"] == bars and analysis["hard_set"]["class_thresholds"] == bars
    assert analysis["hard_set"]["num_predictions"] == kept


def test_a_stream_emits_the_per_class_hard_set(bars_that_bite):
    run_dir, paths, _ = bars_that_bite
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    features = np.load(paths.features / "synthetic_003.npy")
    # the window holds the whole stream, nothing final before the end: the offline hard set (one pass, as a
    # stream makes), whose early cut stops at the lowest class's bar
    detector.postprocess = dataclasses.replace(detector.postprocess, shifted_passes=1)
    offline = detector.hard_set(detector.detect(features, video_id="v", fps=30.0))
    seconds = detector.grid(30.0).covered_seconds(len(features))
    online = OnlineDetector(detector, 30.0, lookahead=seconds, hop=20, history=400, video_id="v")
    emitted = [e.detection for e in online.run([features[i:i + 25] for i in range(0, len(features), 25)])]
    assert sorted((d.start, d.end, d.label_id) for d in emitted) == sorted((d.start, d.end, d.label_id)
                                                                           for d in offline)
    assert offline and all(d.score >= detector.postprocess.class_thresholds[d.label_id] for d in emitted)


def test_ensembles_tune_per_class_thresholds_as_their_members_do(per_class_run, tmp_path):
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    run_dir, _, _ = per_class_run
    member = RunDir(run_dir).read_tuning()
    for name, make in (("outputs", make_ensemble), ("detections", make_fused_ensemble)):
        make([run_dir, run_dir], tmp_path / name, log=lambda *_: None)
        ensemble = RunDir(tmp_path / name).read_tuning()  # two identical members: the member's own bars
        assert ensemble["class_thresholds"] == pytest.approx(member["class_thresholds"], abs=1e-6), name
    # members tuned by different rules are refused by key, before anything is written
    other = tmp_path / "global"
    shutil.copytree(run_dir, other)
    config = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(config.replace("thresholds: per_class", "thresholds: global"))
    for name, make in (("mixed-outputs", make_ensemble), ("mixed-detections", make_fused_ensemble)):
        with pytest.raises(InputError, match=r"global \[postprocess.thresholds\]: 'global', but .* has 'per_class'"):
            make([run_dir, other], tmp_path / name, log=lambda *_: None)


def test_bars_set_by_hand_are_kept_by_global_tuning(per_class_run, tmp_path):
    """`thresholds: global` tunes the global threshold only: per-class bars given in the config stay the hard
    set's, in validation and after it."""
    from mgrec.evaluate.f1 import tune_score_threshold

    run_dir, _, _ = per_class_run
    config = RunDir(run_dir).read_config()
    post = dataclasses.replace(config.postprocess, thresholds="global", class_thresholds=[0.0, 1.0, 0.5])
    ranked, gt = detect_split(OfflineDetector.from_run(run_dir, device="cpu"), "val")
    assert tune_thresholds(gt, ranked, 3, post) == (tune_score_threshold(gt, ranked), [0.0, 1.0, 0.5])


def test_a_damaged_record_of_class_thresholds_is_refused_by_key(per_class_run, tmp_path):
    run_dir, _, _ = per_class_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    tuning = json.loads((copy / "postprocess.json").read_text())
    for bad, message in (([0.1, 0.2], r"postprocess.json \[class_thresholds\]: expected one threshold per class of "
                                      r"the run's 3, got 2 \(model.num_classes of the run's config.yaml\)"),
                         ([0.1, 0.2, 2.5], r"postprocess.json \[class_thresholds\]: expected null or a list of "
                                           r"numbers in \[0, 2\]"),
                         ("0.3", r"postprocess.json \[class_thresholds\]: expected null")):
        (copy / "postprocess.json").write_text(json.dumps({**tuning, "class_thresholds": bad}))
        with pytest.raises(InputError, match=message):
            OfflineDetector.from_run(copy, device="cpu")
    # a record without the key (a run of format 11 or older) leaves the config's bars: none there, by hand here
    del tuning["class_thresholds"]
    (copy / "postprocess.json").write_text(json.dumps(tuning))
    assert OfflineDetector.from_run(copy, device="cpu").postprocess.class_thresholds is None
    config = (copy / "config.yaml").read_text()
    (copy / "config.yaml").write_text(config.replace("class_thresholds: null", "class_thresholds: [0.1, 0.2, 0.3]"))
    assert OfflineDetector.from_run(copy, device="cpu").postprocess.class_thresholds == [0.1, 0.2, 0.3]
    # a class best served by none of its detections gets a bar just above its top score, which may pass 1
    (copy / "postprocess.json").write_text(json.dumps({**tuning, "class_thresholds": [0.1, 1.0000000000000002, 0.3]}))
    assert OfflineDetector.from_run(copy, device="cpu").postprocess.class_thresholds[1] > 1


def test_the_hard_set_is_the_class_wise_cut():
    from mgrec.records import Detection

    found = [Detection("v", 0.0, 1.0, c, "xyz"[c], s) for c, s in ((0, 0.5), (1, 0.5), (2, 0.2), (0, 0.1))]
    assert hard_set(found, 0.3, [0.4, 0.6, 0.1]) == [found[0], found[2]]
    assert hard_set(found, 0.3) == found[:2]


def test_a_teacher_with_class_thresholds_labels_with_its_per_class_hard_set(bars_that_bite):
    from mgrec.train.pseudo import label_videos

    run_dir, paths, bars = bars_that_bite
    labeller = RunDir(run_dir)
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    files = [paths.features / "synthetic_003.npy"]
    _, record = label_videos(labeller, files, labeller.read_config(), None, log=lambda *_: None)
    labels = record["videos"]["synthetic_003"]
    assert record["class_thresholds"] == bars and labels
    assert all(d["score"] >= bars[detector.classes.index(d["label"])] for d in labels)
    assert not any(d["label"] == detector.classes[1] for d in labels)  # its bar is 1.0
    # min_score, when given, is the one bar for every class
    _, at_min = label_videos(labeller, files, labeller.read_config(), 0.0, log=lambda *_: None)
    assert at_min["class_thresholds"] is None and len(at_min["videos"]["synthetic_003"]) > len(labels)


def test_score_reproduces_a_per_class_run_from_its_ranked_detections(per_class_run, tmp_path, capsys):
    """`mgrec score --tune-on val --thresholds per_class` on the run's `detect --all` output tunes the bars
    training tuned, and scores test as `evaluate` does."""
    from mgrec.cli import main

    run_dir, paths, _ = per_class_run
    expected = evaluate_run(run_dir, split="test")
    ranked = tmp_path / "ranked.json"
    detect_files(run_dir, sorted(paths.features.glob("*.npy")), ranked, ranked=True)
    command = ["score", "--gt", str(paths.annotations), "--pred", str(ranked), "--tune-on", "val", "--json"]
    assert main([*command, "--thresholds", "per_class", "--threshold-shrinkage", str(SHRINKAGE)]) in (0, None)
    scored = json.loads(capsys.readouterr().out)
    assert scored["class_thresholds"] == pytest.approx(expected["class_thresholds"])
    assert scored["f1"] == pytest.approx(expected["f1"]) and scored["num_predictions"] == expected["num_predictions"]
    assert main(command) in (0, None)
    assert json.loads(capsys.readouterr().out)["class_thresholds"] is None  # one threshold by default
    assert main(["score", "--gt", str(paths.annotations), "--pred", str(ranked), "--thresholds", "per_class"]) == 2
    assert "give tune_on (--tune-on SPLIT)" in capsys.readouterr().err
