import dataclasses
import re
import shutil

import numpy as np
import pytest
import yaml
from tests.helpers import train_tiny_run

from mgrec.config import PostprocessConfig, load_config
from mgrec.errors import InputError
from mgrec.infer.offline import OfflineDetector
from mgrec.postprocess.second_opinion import (
    SecondOpinion,
    SegmentClassifier,
    descriptor_dim,
    lowest_score_that_can_pass,
    run_classifier,
    segment_descriptor,
)
from mgrec.records import Detection
from mgrec.run import RunDir
from mgrec.timeline import FeatureGrid
from mgrec.train.ensemble import make_ensemble


def test_the_descriptor_pools_the_stretch_by_hand():
    features = np.arange(12, dtype=np.float32)[:, None] * np.ones((1, 2), dtype=np.float32)
    descriptor = segment_descriptor(features, 2.4, 6.2)  # widened to steps 2..6 (7 is the end)
    assert descriptor.shape == (descriptor_dim(2),) == (6 * 2 + 1,)
    assert descriptor[:2].tolist() == [4.0, 4.0] and descriptor[4:6].tolist() == [6.0, 6.0]  # mean, max
    assert descriptor[2:4] == pytest.approx([np.std([2, 3, 4, 5, 6])] * 2)
    assert descriptor[6:12].tolist() == [2.5, 2.5, 4.5, 4.5, 6.0, 6.0]  # three parts of 5 steps: 2, 2, 1
    assert descriptor[-1] == pytest.approx(np.log(5.0))
    assert np.isfinite(segment_descriptor(features, 11.5, 11.5)).all()  # at least one step, inside the video
    assert np.isfinite(segment_descriptor(features, -2.0, 0.5)).all()  # a start before the first step


def separable_videos(count: int = 4, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Class 0 lifts channel 0 over its gesture, class 1 channel 1: pooled, the classes part cleanly."""
    rng = np.random.default_rng(seed)
    videos = []
    for v in range(count):
        features = rng.normal(0.0, 0.3, (200, 2)).astype(np.float32)
        segments, labels = [], []
        for i, start in enumerate(range(5, 190, 20)):
            label = (i + v) % 2
            features[start:start + 10, label] += 2.0
            segments.append([start, start + 10])
            labels.append(label)
        videos.append((features, np.asarray(segments, dtype=float), np.asarray(labels)))
    return videos


def test_the_classifier_learns_pooled_gestures_deterministically():
    videos = separable_videos()
    classifier = SegmentClassifier.fit(videos, num_classes=2)
    for features, segments, labels in separable_videos(seed=1):  # other videos of the same kind
        descriptors = np.stack([segment_descriptor(features, a, b) for a, b in segments])
        assert (classifier.probabilities(descriptors).argmax(1) == labels).all()
    again = SegmentClassifier.fit(videos, num_classes=2)
    assert all(np.array_equal(a, b) for a, b in zip(classifier.state_dict().values(), again.state_dict().values()))
    with pytest.raises(InputError, match="postprocess.second_opinion: the train split has no labelled gesture"):
        SegmentClassifier.fit([(videos[0][0], np.zeros((0, 2)), np.zeros(0, dtype=int))], num_classes=2)


def test_rescoring_multiplies_in_the_opinion_and_ranks_again():
    videos = separable_videos()
    classifier = SegmentClassifier.fit(videos, num_classes=2)
    features = videos[0][0]  # its gesture at steps 5..15 is class 0
    grid = FeatureGrid(fps=10.0, stride=1, window=1)
    start, end = grid.index_to_seconds(5.0), grid.index_to_seconds(15.0)
    ranked = [Detection("v", start, end, 1, "b", 0.8), Detection("v", start, end, 0, "a", 0.6)]
    assert SecondOpinion(classifier, 0.0).rescored(ranked, features, grid) == ranked
    moved = SecondOpinion(classifier, 0.5).rescored(ranked, features, grid)
    assert [d.label_id for d in moved] == [0, 1]  # the right class comes first
    p = classifier.probabilities(segment_descriptor(features, 5.0, 15.0)[None])[0]
    assert [d.score for d in moved] == pytest.approx([0.6 ** 0.5 * p[0] ** 0.5, 0.8 ** 0.5 * p[1] ** 0.5])
    # `standardize` reaches the stretch as the network reads it: the same as standardising the whole video
    mean, std = features.mean(0), features.std(0)
    through = SecondOpinion(classifier, 0.5).rescored(ranked, features, grid, lambda x: (x - mean) / std)
    direct = SecondOpinion(classifier, 0.5).rescored(ranked, (features - mean) / std, grid)
    assert [d.score for d in through] == pytest.approx([d.score for d in direct])


def test_no_score_below_the_bar_reaches_the_threshold():
    rng = np.random.default_rng(0)
    for weight in (0.0, 0.25, 0.5, 0.9):
        threshold = 0.3
        bar = lowest_score_that_can_pass(threshold, weight)
        scores, opinions = rng.uniform(0, 1, 10000), rng.uniform(0, 1, 10000)
        after = scores ** (1 - weight) * opinions ** weight
        assert not ((after >= threshold) & (scores < bar)).any()
        assert bar ** (1 - weight) * 1.0 ** weight == pytest.approx(threshold)  # and the bar is tight


@pytest.fixture(scope="module")
def run_with_opinion(tmp_path_factory):
    run_dir, paths, _ = train_tiny_run(tmp_path_factory.mktemp("second-opinion"), seed=3,
                                       postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100,
                                                                     second_opinion=0.25))
    return run_dir, paths


def test_a_run_keeps_its_classifier_and_detection_applies_it(run_with_opinion):
    run_dir, paths = run_with_opinion
    run = RunDir(run_dir)
    assert run.second_opinion_path.exists() and run.second_opinion_path in run.run_files()
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    assert detector.second_opinion is not None and detector.second_opinion.weight == 0.25
    # the classifier the run saved is the one its train split fits (deterministic)
    from mgrec.data.annotations import load_annotations
    from mgrec.train.data import load_split

    train_split = load_split(detector.config, load_annotations(paths.annotations), "train")
    fitted = SegmentClassifier.fit([(s.features, s.segments, s.labels) for s in train_split.samples], 3)
    assert all(np.array_equal(a, b) for a, b in zip(fitted.state_dict().values(),
                                                    detector.second_opinion.classifier.state_dict().values()))
    # detection = the network's ranked list, rescored
    video = sorted(p.stem for p in paths.features.glob("*.npy"))[0]
    features = np.load(paths.features / f"{video}.npy")
    with_opinion = detector.detect(features, video_id=video, fps=30.0)
    opinion, detector.second_opinion = detector.second_opinion, None
    plain = detector.detect(features, video_id=video, fps=30.0)
    assert with_opinion == opinion.rescored(plain, features, detector.grid(30.0))
    assert with_opinion != plain

    # a run whose file is gone is refused by name
    copy = run_dir.parent / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "second_opinion.safetensors").unlink()
    with pytest.raises(InputError, match="second_opinion.safetensors does not exist, but the run's "
                                         "postprocess.second_opinion is 0.25"):
        OfflineDetector.from_run(copy, device="cpu")


def test_ensembles_carry_the_members_second_opinion(run_with_opinion, tmp_path):
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    run_dir, paths = run_with_opinion
    video = sorted(p.stem for p in paths.features.glob("*.npy"))[0]
    features = np.load(paths.features / f"{video}.npy")
    alone = OfflineDetector.from_run(run_dir, device="cpu").detect(features, video_id=video, fps=30.0)
    for name, make in (("outputs", make_ensemble), ("detections", make_fused_ensemble)):
        make([run_dir, run_dir], tmp_path / name, log=lambda *_: None)
        ensemble = OfflineDetector.from_run(tmp_path / name, device="cpu")
        found = ensemble.detect(features, video_id=video, fps=30.0)
        # two identical members: the run's own (rescored) detections
        assert [(d.start, d.end, d.label_id) for d in found] == [(d.start, d.end, d.label_id) for d in alone], name
        assert [d.score for d in found] == pytest.approx([d.score for d in alone], abs=1e-6), name
    assert (tmp_path / "outputs" / "second_opinion.safetensors").exists()
    assert (tmp_path / "detections" / "members" / "0" / "second_opinion.safetensors").exists()
    # members that rescore differently are not averaged
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    saved = run_classifier(RunDir(run_dir), RunDir(run_dir).read_config())
    RunDir(other).write_second_opinion(_another_classifier(saved))
    with pytest.raises(InputError, match="another classifier than"):
        make_ensemble([run_dir, other], tmp_path / "mixed", log=lambda *_: None)
    # the same fit with sums in another order (another thread count) differs by about 1e-11: the same classifier
    RunDir(other).write_second_opinion(_another_classifier(saved, 1e-11))
    make_ensemble([run_dir, other], tmp_path / "rounded", log=lambda *_: None)


def _another_classifier(classifier: SegmentClassifier, move: float = 1.0) -> SegmentClassifier:
    changed = SegmentClassifier(classifier.mean.numel(), classifier.num_classes)
    changed.load_state_dict(classifier.state_dict())
    changed.bias.add_(move)
    return changed


def test_what_does_not_carry_a_second_opinion_refuses_it(run_with_opinion, tmp_path):
    run_dir, paths = run_with_opinion
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(yaml.safe_load((run_dir / "config.yaml").read_text())))
    with pytest.raises(InputError, match=r"--set pseudo_labels.unlabeled=/tmp/pool \[pseudo_labels.unlabeled\] and "
                                         r".*c.yaml \[postprocess.second_opinion\]: a second opinion is not "
                                         "available with pseudo_labels.unlabeled yet"):
        load_config(config, ["pseudo_labels.unlabeled=/tmp/pool"])
    with pytest.raises(InputError, match=r"postprocess.second_opinion\]: expected a weight in \[0, 1\)"):
        load_config(config, ["postprocess.second_opinion=1.0"])
    assert dataclasses.asdict(load_config(config, []).postprocess)["second_opinion"] == 0.25


def test_a_classifier_no_fit_makes_is_refused_by_its_file(run_with_opinion, tmp_path):
    """Finite but degenerate buffers (a zero std, a huge weight) gave NaN scores: NaN in JSON, no detection in
    the hard set, a traceback in ensembles."""
    run_dir, _ = run_with_opinion
    saved = run_classifier(RunDir(run_dir), RunDir(run_dir).read_config())
    for name, edit, message in (("std", lambda c: c.std.zero_(), "std down to 0"),
                                ("weight", lambda c: c.weight.fill_(1.7e308), "weight up to 1.7e+308 in size"),
                                ("bias", lambda c: c.bias.fill_(-1e7), "bias up to 1e+07 in size")):
        copy = tmp_path / name
        shutil.copytree(run_dir, copy)
        damaged = _another_classifier(saved, 0.0)
        edit(damaged)
        RunDir(copy).write_second_opinion(damaged)
        with pytest.raises(InputError, match=rf"second_opinion.safetensors: {re.escape(message)}.*not a fitted "
                                             "whole-gesture classifier"):
            OfflineDetector.from_run(copy, device="cpu")


def test_an_ensemble_of_a_member_with_a_damaged_classifier_names_that_member(run_with_opinion, tmp_path, capsys):
    from mgrec.cli import main

    run_dir, _ = run_with_opinion
    damaged = tmp_path / "damaged"
    shutil.copytree(run_dir, damaged)
    (damaged / "second_opinion.safetensors").write_bytes(b"not safetensors")
    assert main(["ensemble", str(run_dir), str(damaged), "--out", str(tmp_path / "ens")]) == 2
    err = capsys.readouterr().err
    assert str(damaged / "second_opinion.safetensors") in err and "members" not in err
    assert not (tmp_path / "ens").exists()  # refused before anything was written
