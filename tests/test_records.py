"""Tests of mgrec.records: the records and the class-list rule every Python entry point applies."""

import json

import pytest

from mgrec.errors import InputError
from mgrec.evaluate.predictions import load_predictions
from mgrec.evaluate.scoring import score
from mgrec.records import Detection, Segment, check_class_list


def test_an_empty_class_list_is_refused_as_the_argument_it_is_not_blamed_on_the_records(tmp_path):
    # before: score(gt, ranked, [], t) and load_predictions(path, []) refused the first record, "<file> [...]: label_id
    # 0 / label 'a' does not match the class list []", naming a file or record that was right
    empty = r"^classes: expected a list of class names \(label id 0 first\), got an empty one$"
    for given in ([], (), iter([])):
        with pytest.raises(InputError, match=empty):
            check_class_list(given)
    gt = {"v": [Segment("v", 1.0, 2.0, 0, "a", source="gt.json [database.v.annotations[0]]")]}
    ranked = {"v": [Detection("v", 1.0, 2.0, 0, "a", 0.9)]}
    assert score(gt, ranked, ["a"], 0.5)["f1"] == pytest.approx(1.0)
    with pytest.raises(InputError, match=empty):
        score(gt, ranked, [], 0.5)
    path = tmp_path / "pred.json"
    path.write_text(json.dumps({"results": {"v": [{"segment": [1.0, 2.0], "label": "a", "score": 0.9}]}}))
    assert len(load_predictions(path, ["a"])["v"]) == 1
    with pytest.raises(InputError, match=empty):
        load_predictions(path, [])
    # where the number of classes is known, that is the most to say: an OfflineDetector's still says it
    from dataclasses import replace

    from tests.infer.test_offline import tiny_detector

    with pytest.raises(InputError, match=r"^classes: expected 3 class names \(config.model.num_classes\), got 0: "):
        replace(tiny_detector(), classes=[])


def test_video_ids_reads_a_split_name_as_a_config_does():
    # before: annotations.video_ids("Test") and ("testing") were [] (the readers name the subset "test", and the
    # config's `test_split: Test` finds its videos), and video_ids(3) was [] too, without a word
    from mgrec.records import AnnotationSet, VideoInfo

    videos = {v: VideoInfo(v, subset, 30.0, 10.0) for v, subset in (("b", "test"), ("a", "test"), ("c", "val"))}
    annotations = AnnotationSet(classes=["x"], videos=videos)
    for name in ("test", "Test", "testing", " TESTING "):
        assert annotations.video_ids(name) == ["a", "b"], name
    assert annotations.video_ids("Validation") == ["c"] and annotations.video_ids() == ["a", "b", "c"]
    assert annotations.video_ids("train") == []  # a split without videos (split_video_ids refuses it)
    hand_made = AnnotationSet(classes=["x"], videos={"d": VideoInfo("d", "Holdout", 30.0, 10.0)})
    assert hand_made.video_ids("Holdout") == ["d"]  # a subset named otherwise in Python is found as named
    for bad in (3, ["test"], b"test"):
        with pytest.raises(InputError, match=r"^subset: expected a split name such as 'test' \(or None: every video\), "
                                             r"got "):
            annotations.video_ids(bad)
