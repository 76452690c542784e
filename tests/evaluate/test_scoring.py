"""The score dict of the contract, on a hand-computed case, plus its errors and the table."""

import hashlib
import json
import re
from dataclasses import replace

import numpy as np
import pytest

from mgrec.errors import InputError
from mgrec.evaluate.scoring import confusion_counts, coverage_note, format_score_table, restrict_to_videos, score
from mgrec.records import Detection, Segment

CLASSES = ["x", "y", "z"]


def seg(video, start, end, label):
    return Segment(video, float(start), float(end), label, CLASSES[label])


def det(video, start, end, label, score_value):
    return Detection(video, float(start), float(end), label, CLASSES[label], score_value)


GT = {
    "a": [seg("a", 0, 10, 0), seg("a", 20, 30, 1), seg("a", 40, 50, 0)],
    "b": [seg("b", 0, 10, 2)],  # no predictions at all for this video
}
RANKED = {
    "a": [
        det("a", 1, 9, 0, 0.9),  # finds x [0, 10]
        det("a", 21, 29, 0, 0.8),  # wrong class on y [20, 30]
        det("a", 40, 50, 0, 0.2),  # finds x [40, 50] but is below the score threshold
        det("a", 60, 70, 1, 0.7),  # overlaps nothing
        det("a", 0, 3, 1, 0.6),  # tIoU exactly 0.3 with x [0, 10]: no overlap for F1 or confusion
    ]
}

CONTRACT_KEYS = {
    "split", "num_videos", "num_ground_truth", "ground_truth_sha256", "num_predictions", "score_threshold",
    "class_thresholds", "f1",
    "precision", "recall",
    "f1_miga", "precision_miga", "recall_miga", "mAP", "average_mAP", "per_class", "confusion",
}


def test_the_scored_ground_truth_digest_names_the_videos_and_segments_not_their_order():
    digest = score(GT, RANKED, CLASSES, score_threshold=0.5)["ground_truth_sha256"]
    assert score(dict(reversed(GT.items())), RANKED, CLASSES, score_threshold=0.5)["ground_truth_sha256"] == digest
    relabelled = {video: [replace(s, label_id=(s.label_id + 1) % 3, label=CLASSES[(s.label_id + 1) % 3])
                          for s in segments] for video, segments in GT.items()}
    moved = {video: [replace(s, end=s.end + 0.5) for s in segments] for video, segments in GT.items()}
    renamed = {f"{video}_2": [replace(s, video_id=f"{video}_2") for s in segments]
               for video, segments in GT.items()}
    others = [score(gt, {}, CLASSES, score_threshold=0.5)["ground_truth_sha256"] for gt in (relabelled, moved, renamed)]
    assert len({digest, *others}) == 4
    # times of numpy floats or ints (Python callers' ground truth) are the same times: the digest was a TypeError
    as_numpy = {video: [replace(s, start=np.float32(s.start), end=np.float64(s.end)) for s in segments]
                for video, segments in GT.items()}
    assert score(as_numpy, RANKED, CLASSES, score_threshold=0.5)["ground_truth_sha256"] == digest


def test_the_ground_truth_digest_is_the_one_files_already_hold():
    # eval_/online_<split>.json of runs evaluated earlier hold this digest, and compare, the report and evaluate
    # --online set them beside new scores by it: a refactor that hashed each video's rows first changed every value,
    # and compare refused a run evaluated before it beside one evaluated after, on the same annotations, as "scored on
    # different test sets". One sha256 over [[video, [[start, end, class], ...]], ...], videos and rows sorted.
    rows = sorted([video, sorted([s.start, s.end, s.label] for s in segments)] for video, segments in GT.items())
    written = "b78362959d5fcd96740965f01138bd4d01edd798af991101900f619f465d1f4c"
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest() == written
    assert score(GT, RANKED, CLASSES, score_threshold=0.5)["ground_truth_sha256"] == written


def test_hand_computed_scores():
    result = score(GT, RANKED, CLASSES, score_threshold=0.5, split="val")
    assert set(result) == CONTRACT_KEYS
    assert (result["split"], result["num_videos"], result["num_ground_truth"], result["num_predictions"]) == (
        "val", 2, 4, 4
    )
    # Hard set: 4 predictions, 1 correct, 4 ground truth.
    f1 = 2 * 0.25 * 0.25 / (0.5 + 1e-7)
    assert (result["precision"], result["recall"]) == (0.25, 0.25) and result["f1"] == pytest.approx(f1, abs=1e-12)
    assert (result["precision_miga"], result["recall_miga"]) == (0.25, 0.25)
    # Ranked list: class x has precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP 5/6; y and z have AP 0.
    assert list(result["mAP"]) == ["0.3", "0.4", "0.5", "0.6", "0.7"]
    for value in result["mAP"].values():
        assert value == pytest.approx(5 / 18)
    assert result["average_mAP"] == pytest.approx(5 / 18)
    x, y, z = (result["per_class"][name] for name in CLASSES)
    assert (x["label_id"], x["instances"], x["precision"], x["recall"]) == (0, 2, 0.5, 0.5)
    assert x["ap"] == pytest.approx(5 / 6)
    assert (y["instances"], y["ap"], y["f1"], y["precision"], y["recall"]) == (1, 0.0, 0.0, 0.0, 0.0)
    assert (z["instances"], z["ap"], z["precision"]) == (1, 0.0, None)  # nothing detected as z: no precision
    assert result["confusion"] == {
        "labels": CLASSES,
        "matrix": [[1, 0, 0], [1, 0, 0], [0, 0, 0]],
        "background": [0, 2, 0],
    }
    json.dumps(result, allow_nan=False)


def test_score_threshold_changes_f1_but_not_map():
    low = score(GT, RANKED, CLASSES, score_threshold=0.1)
    high = score(GT, RANKED, CLASSES, score_threshold=0.5)
    assert low["num_predictions"] == 5 and low["recall"] == 0.5 and high["recall"] == 0.25
    assert low["mAP"] == high["mAP"]


def test_class_without_ground_truth_has_null_ap():
    gt = {"a": [seg("a", 0, 10, 0)]}
    result = score(gt, {"a": [det("a", 0, 10, 2, 0.9)]}, CLASSES, 0.5)
    assert result["per_class"]["z"]["ap"] is None and result["per_class"]["y"]["ap"] is None
    assert result["mAP"]["0.5"] == 0.0  # mean over class x only
    json.dumps(result, allow_nan=False)
    # its F1 too: a class with neither instances nor detections has none (it read 0, as if every gesture was missed);
    # one with detections but no instance made only false positives, F1 0
    assert {k: result["per_class"]["y"][k] for k in ("f1", "precision", "recall")} == dict.fromkeys(
        ("f1", "precision", "recall"))
    assert result["per_class"]["z"]["f1"] == 0.0 and result["per_class"]["z"]["precision"] == 0.0
    assert "  y  " in format_score_table(result) and format_score_table(result).splitlines()[-2].count(" -") == 4


def test_a_ratio_over_nothing_is_null_not_zero():
    # a class without instances showed recall 0.00, as if each of its gestures had been missed, and one without
    # detections precision 0.00, as if each of them had been wrong: both are ratios over nothing, none to give
    gt = {"a": [seg("a", 0, 10, 0), seg("a", 20, 30, 1)]}
    ranked = {"a": [det("a", 0, 10, 0, 0.9), det("a", 40, 50, 2, 0.8)]}  # x found; z has false positives only
    result = score(gt, ranked, CLASSES, 0.5)
    x, y, z = (result["per_class"][name] for name in CLASSES)
    assert (x["precision"], x["recall"]) == (1.0, 1.0)
    assert (y["instances"], y["f1"], y["precision"], y["recall"]) == (1, 0.0, None, 0.0)  # missed, nothing detected
    assert (z["instances"], z["ap"], z["f1"], z["precision"], z["recall"]) == (0, None, 0.0, 0.0, None)
    # the means over classes are as they were: mAP over the classes with instances, the pooled F1 counts every one
    assert result["mAP"]["0.5"] == pytest.approx(0.5) and (result["precision"], result["recall"]) == (0.5, 0.5)
    json.dumps(result, allow_nan=False)
    *_, y_row, z_row = format_score_table(result).splitlines()
    assert y_row.split()[-4:] == ["0.00", "0.00", "-", "0.00"] and z_row.split()[-4:] == ["-", "0.00", "0.00", "-"]
    assert "-: none, as a class without instances has no AP or R, one without hard-set detections no P" \
        in format_score_table(result)


def test_confusion_takes_the_ground_truth_of_highest_tiou_of_any_class():
    gt = {"a": [seg("a", 0, 10, 0), seg("a", 5, 15, 1)]}
    hard = {"a": [det("a", 6, 15, 2, 1.0), det("a", 0, 9, 2, 1.0)], "b": [det("b", 0, 1, 1, 1.0)]}
    matrix, background = confusion_counts(gt, hard, 3)
    np.testing.assert_array_equal(matrix, [[0, 0, 1], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(background, [0, 1, 0])  # video without ground truth


def test_predictions_for_unknown_videos_are_an_error_naming_them():
    with pytest.raises(InputError, match="2 video\\(s\\) without ground truth in split test: 'c', 'd'"):
        score(GT, {"c": [], "d": [], "a": []}, CLASSES, 0.5, split="test")
    restricted = restrict_to_videos({"c": [], **RANKED}, GT)
    assert restricted == {"a": RANKED["a"], "b": []}
    assert score(GT, restricted, CLASSES, 0.5) == score(GT, RANKED, CLASSES, 0.5)


def test_label_that_does_not_match_the_class_list_is_an_error():
    bad = {"a": [Detection("a", 0.0, 1.0, 0, "y", 0.9)]}
    with pytest.raises(InputError, match="video a prediction #0: label_id 0 / label 'y'"):
        score(GT, bad, CLASSES, 0.5)
    bad_gt = {"a": [Segment("a", 0.0, 1.0, 5, "x", source="labels.json [database.a.annotations[0]]")]}
    with pytest.raises(InputError, match=r"labels.json \[database.a.annotations\[0\]\]: label_id 5"):
        score(bad_gt, {}, CLASSES, 0.5)


def test_nothing_to_score_is_an_error():
    with pytest.raises(InputError, match="no ground-truth segments in split val"):
        score({"a": []}, {}, CLASSES, 0.5, split="val")
    with pytest.raises(InputError, match="finite"):
        score(GT, RANKED, CLASSES, float("nan"))


def test_format_score_table():
    table = format_score_table(score(GT, RANKED, CLASSES, 0.5, split="val"))
    lines = table.splitlines()
    assert lines[0].startswith("split val: 2 videos, 4 ground-truth segments, 4 predictions with score >= 0.5")
    assert "F1 (one-to-one, tIoU > 0.3) 25.00" in lines[1] and "F1 (MiGA rule, tIoU > 0.3)  25.00" in lines[2]
    assert "@0.3 27.78" in lines[3] and "average 27.78" in lines[3]
    assert lines[-3].split() == ["0", "x", "2", "83.33", "50.00", "50.00", "50.00"]
    assert lines[-1].split()[:4] == ["2", "z", "1", "0.00"]


def test_the_per_class_table_stays_aligned_whatever_script_the_class_names_are_in():
    # Python pads by characters: a CJK name (two columns a character), accents written as combining marks (none), an
    # emoji, an escape shown as `\x1b` (four) put every column after the name off its head
    import unicodedata

    names = ["握拳", "cafe\u0301 e\u0301\u0301", "wave \U0001F44B", "red\x1b[31m", "x" * 60, "plain"]
    truth = {"v": [Segment("v", 10.0 * i, 10.0 * i + 5, i, name) for i, name in enumerate(names)]}
    table = format_score_table(score(truth, {"v": []}, names, 0.5, split="val")).splitlines()

    def width(text):  # the columns a terminal gives the text
        return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    head = next(line for line in table if line.lstrip().startswith("id  class"))
    rows = table[table.index(head) + 1:]
    assert len(rows) == len(names)
    inst_end = width(head[:head.index("inst") + 4])
    for row in rows:
        count = row.index("  0.00") - 2  # the instance count ends two spaces before the AP's six columns
        assert width(row[:count]) == inst_end, row
    assert "xxxxxxxxx..." in rows[4] and "red\\x1b[31m" in rows[3]  # cut as before; the escape shown


def test_coverage_note_says_how_many_scored_videos_the_predictions_never_saw():
    # RANKED covers a, not b: b's one ground truth counts as missed, and the user is told so
    assert coverage_note(GT, RANKED, "test") == (
        "predictions cover 1 of the 2 videos of split test; the other one (b) counts as all missed (1 ground-truth "
        "segment; `mgrec score --videos` scores only the videos named)"
    )
    assert coverage_note(GT, {"a": [], "b": []}, "test") is None  # listed with no detections: covered
    assert coverage_note(GT, ["a", "b", "elsewhere"]) is None
    many = {f"v{i}": [seg(f"v{i}", 0, 1, 0)] for i in range(8)}
    note = coverage_note(many, ["v0"])
    assert note.startswith("predictions cover 1 of the 8 videos; the other 7 (v1, v2, v3, v4, v5, ...)")
    # the score itself is unchanged by the note: b is still all missed
    assert score(GT, RANKED, CLASSES, 0.5)["recall"] == 0.25


def test_per_class_thresholds_cut_each_class_at_its_own_bar():
    # x at 0.15 keeps both x detections (one finds [40, 50]); y and z at 0.95 keep none
    result = score(GT, RANKED, CLASSES, score_threshold=0.5, split="val", class_thresholds=[0.15, 0.95, 0.95])
    assert result["class_thresholds"] == [0.15, 0.95, 0.95] and result["score_threshold"] == 0.5
    assert result["num_predictions"] == 3  # x at 0.9, 0.8 and 0.2
    assert (result["precision"], result["recall"]) == (pytest.approx(2 / 3), 0.5)
    assert result["per_class"]["x"]["recall"] == 1.0
    assert "its class's threshold (0.15 to 0.95)" in format_score_table(result)
    assert score(GT, RANKED, CLASSES, score_threshold=0.5)["class_thresholds"] is None
    with pytest.raises(InputError, match="expected 3 finite numbers"):
        score(GT, RANKED, CLASSES, score_threshold=0.5, class_thresholds=[0.1, 0.2])


def test_the_table_says_why_the_miga_precision_passes_100():
    # one prediction spanning two gestures finds both by the MiGA rule: precision 200 was printed unexplained
    gt = {"v": [seg("v", 0.0, 1.0, 0), seg("v", 1.2, 2.2, 0)]}
    result = score(gt, {"v": [det("v", 0.0, 2.2, 0, 0.9)]}, CLASSES, 0.5)
    assert result["precision_miga"] == pytest.approx(2.0) and result["f1_miga"] == pytest.approx(4 / 3, abs=1e-6)
    assert "precision 200.00  recall 100.00  (above 100: by the MiGA rule one prediction may find several" in (
        format_score_table(result))
    assert "above 100" not in format_score_table(score(GT, RANKED, CLASSES, 0.5, split="val"))


def test_score_in_python_refuses_what_the_file_readers_refuse():
    """start after end, a NaN score (left out of F1, counted in AP), one video's list given for the mapping (a
    TypeError deep in a sort), an empty or out-of-range list of tIoUs (IndexError, average mAP 0)."""

    gt = {"v": [Segment("v", 1.0, 2.0, 0, "a")]}
    good = Detection("v", 1.0, 2.0, 0, "a", 0.9)
    assert score(gt, {"v": [good]}, ["a"], np.float32(0.5))["f1"] == pytest.approx(1.0)
    cases = [
        ({"v": [replace(good, start=2.0, end=1.0)]}, "expected a finite start before its end"),
        ({"v": [replace(good, score=float("nan"))]}, "expected a finite score, got nan"),
        ({"v": [replace(good, start=float("nan"))]}, "expected a finite start"),
        # times given as text: the message showed [1.0, 2.0], a segment that looks good
        ({"v": [replace(good, start="1.0")]}, "expected a finite start before its end, got ['1.0', 2.0]"),
        ({"v": [replace(good, label_id=1.0)]}, "does not match the class list"),
        ([good], "predictions: expected a mapping {video_id: [...]}, got list"),
        # scored under its key whatever it said: F1 1.0 for a detection of another video
        ({"v": [replace(good, video_id="w")]},
         "its video_id 'w' is not the video it is listed under ('v')"),
    ]
    for ranked, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            score(gt, ranked, ["a"], 0.5)
    with pytest.raises(InputError, match="expected a finite start before its end"):
        score({"v": [Segment("v", 2.0, 1.0, 0, "a")]}, {"v": [good]}, ["a"], 0.5)
    for tious in ([], [1.5], [float("nan")]):
        with pytest.raises(InputError, match=r"tIoU thresholds: expected one or more numbers in \(0, 1\]"):
            score(gt, {"v": [good]}, ["a"], 0.5, tiou_thresholds=tious)
    with pytest.raises(InputError, match="score threshold must be a finite number, got '0.5'"):
        score(gt, {"v": [good]}, ["a"], "0.5")


def test_predictions_of_a_video_spelt_in_another_unicode_normalisation_say_so(tmp_path):
    import unicodedata

    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    nfc = unicodedata.normalize("NFC", "café")
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "p.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {nfc: {
        "subset": "test", "fps": 30.0, "duration": 30.0, "annotations": [{"label": "a", "segment": [1.0, 2.0]}]}}}))
    nfd = unicodedata.normalize("NFD", nfc)
    save_predictions({nfd: [Detection(nfd, 1.0, 2.0, 0, "a", 0.9)]}, pred_path)
    with pytest.raises(InputError, match=r"not in .*gt.json: '.+'; '.+' reads as its video '.+' \(the two differ "
                                         r"only in Unicode normalisation.*'cafe\\u0301'"):
        score_file(load_annotations(gt_path), gt_path, pred_path, "test")



@pytest.mark.parametrize(("ids", "message"), [
    # ActivityNet's videos are files v_<id>.mp4, its annotations' keys the bare ids; other tools key results by either
    (["v_S1", "v_S2"], r"'v_S1', 'v_S2'; each is a video of .*gt.json with 'v_' before: the predictions' ids have it "
                       r"and the annotations' do not \('v_S1' is 'S1'\); write the predictions' ids as the "
                       r"annotations' do"),
    (["S1.mp4"], r"'S1.mp4'; each is a video of .*gt.json with '.mp4' after: .* \('S1.mp4' is 'S1'\)"),
    (["1", "2"], r"'1', '2'; each is a video of .*gt.json without 'S' before: the annotations' ids have it and the "
                 r"predictions' do not \('1' is 'S1'\)"),
    (["v_S1", "S2x"], r"'S2x', 'v_S1'$"),  # no one affix: the ids alone
])
def test_predictions_whose_video_ids_are_the_annotations_with_a_prefix_or_suffix_say_so(tmp_path, ids, message):
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "p.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {video: {
        "subset": "test", "fps": 30.0, "duration": 30.0, "annotations": [{"label": "a", "segment": [1.0, 2.0]}]}
        for video in ("S1", "S2")}}))
    save_predictions({video: [Detection(video, 1.0, 2.0, 0, "a", 0.9)] for video in ids}, pred_path)
    with pytest.raises(InputError, match=rf"p.json: predictions for {len(ids)} video\(s\) not in .*gt.json: "
                                         + message):
        score_file(load_annotations(gt_path), gt_path, pred_path, "test")


def test_score_file_in_python_says_its_notes_and_refuses_odd_arguments(tmp_path, capsys):
    # its notes were dropped by default (segments in frames scored 0 without a word), a path given for the
    # annotations was an AttributeError, split=None scored every video of the file, tious=0.5 a TypeError
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "p.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {"v": {"subset": "test", "fps": 30.0, "duration": 30.0,
                                                                         "annotations": [{"label": "a",
                                                                                          "segment": [1.0, 2.0]}]}}}))
    save_predictions({"v": [Detection("v", 45.0, 60.0, 0, "a", 0.9)]}, pred_path)  # frames written as seconds
    annotations = load_annotations(gt_path)
    assert score_file(annotations, gt_path, pred_path, "test")["f1"] == 0.0
    assert "the one detection in" in (said := capsys.readouterr().err) and "starts after its video ends" in said
    for arguments, message in (({"annotations": str(gt_path)}, "annotations: expected the AnnotationSet of"),
                               ({"split": None}, "split None: expected a split name such as 'test'"),
                               ({"split": "x/../postprocess"}, "split 'x/../postprocess' contains a path separator"),
                               ({"score_threshold": "0.3"}, "score_threshold (--score-threshold): expected a finite "
                                                            "number, got '0.3'"),
                               ({"pred_path": bytes(pred_path)}, "pred_path: expected a path"),
                               # per-class thresholds: the CLI's rules hold in Python too (they were ignored there)
                               ({"thresholds": "per_class"}, "thresholds per_class (--thresholds per_class) tunes"),
                               ({"threshold_shrinkage": 3.0}, "threshold_shrinkage (--threshold-shrinkage) pulls"),
                               *(({"tune_on": "val", "thresholds": "per_class", "threshold_shrinkage": bad},
                                  "threshold_shrinkage (--threshold-shrinkage): expected a finite number >= 0")
                                 for bad in (float("nan"), -1.0, "3"))):
        with pytest.raises(InputError, match=re.escape(message)):
            score_file(**{"annotations": annotations, "gt_path": gt_path, "pred_path": pred_path, **arguments})
    with pytest.raises(InputError, match="tIoU thresholds: expected one or more numbers"):
        score_file(annotations, gt_path, pred_path, "test", tious=[[0.3]], note=lambda line: None)
    # any iterable of tIoUs, as a list is (a set or a generator was a TypeError)
    assert list(score_file(annotations, gt_path, pred_path, "Testing", tious={0.5, 0.3},
                           note=lambda line: None)["mAP"]) == ["0.3", "0.5"]
    assert list(score_file(annotations, gt_path, pred_path, "test", tious=0.5, note=lambda line: None)["mAP"]) \
        == ["0.5"]
    with pytest.raises(InputError, match="tIoU thresholds: expected one or more numbers"):
        score_file(annotations, gt_path, pred_path, "test", tious=True, note=lambda line: None)
    with pytest.raises(InputError, match=re.escape("score_threshold (--score-threshold) 0.99 and tune_on (--tune-on) "
                                                   "test: tuning chooses the threshold")):
        score_file(annotations, gt_path, pred_path, "test", tune_on="test", score_threshold=0.99)


def test_score_file_of_some_videos_scores_only_those_and_refuses_videos_of_another_split(tmp_path):
    """One streamed video scored against its split counted every other video's gestures as missed: its F1 said
    little of the stream. `videos` scores the ones named; one of another split (or none) is refused by name."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    def entry(subset: str) -> dict:
        return {"subset": subset, "fps": 30.0, "duration": 30.0,
                "annotations": [{"label": "a", "segment": [1.0, 2.0]}, {"label": "a", "segment": [5.0, 6.0]}]}

    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "p.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {"Sample0036": entry("test"),
                                                                  "Sample0037": entry("test"),
                                                                  "Sample0031": entry("val")}}))
    save_predictions({"Sample0036": [Detection("Sample0036", 1.0, 2.0, 0, "a", 0.9),
                                     Detection("Sample0036", 5.0, 6.0, 0, "a", 0.8)]}, pred_path)
    annotations = load_annotations(gt_path)
    notes: list[str] = []
    whole = score_file(annotations, gt_path, pred_path, "test", note=notes.append)
    assert whole["recall"] == 0.5 and whole["videos"] is None and whole["num_videos"] == 2
    assert any("the other one (Sample0037) counts as all missed" in line and "--videos" in line for line in notes)

    notes.clear()
    one = score_file(annotations, gt_path, pred_path, "test", note=notes.append, videos=["Sample0036"])
    assert one["recall"] == 1.0 and one["f1"] == pytest.approx(1.0)
    assert one["num_videos"] == 1 and one["num_ground_truth"] == 2
    assert one["videos"] == ["Sample0036"] and not any("missed" in line for line in notes)
    assert format_score_table(one).startswith("split test (Sample0036 only): 1 video, 2 ground-truth segments")
    # the other test video named too: its gestures are missed again, as they should be
    assert score_file(annotations, gt_path, pred_path, "test", note=notes.append,
                      videos=["Sample0036", "Sample0037"])["recall"] == 0.5
    for videos, message in ((["Sample0031"], "videos: 'Sample0031' is a video of split 'val' of"),
                            (["sample0036"], "videos: 'sample0036' is not a video of .*did you mean 'Sample0036'"),
                            # a look-alike letter (Cyrillic U+0430 for 'a') prints as the id it is not: shown escaped
                            (["S\u0430mple0036"], r"is not a video of .*did you mean 'Sample0036'\? "
                                                   r"\('S\\u0430mple0036' and 'Sample0036' differ\)"),
                            (["Sample0O36"], "is not a video of .*did you mean 'Sample0036'\\?$"),
                            # a space at an end, in quotes alone, was easy to miss: said as such
                            (["Sample0036 "], r"did you mean 'Sample0036'\? \(the two differ only in whitespace at the "
                                              r"start or end of the name: 'Sample0036 ' and 'Sample0036', which print "
                                              r"alike\)$"),
                            (["Sample9999"], "videos: 'Sample9999' is not a video of"),
                            ("Sample0036", "videos: expected a list of video ids"),
                            ([], "videos: expected one or more video ids")):
        with pytest.raises(InputError, match=message):
            score_file(annotations, gt_path, pred_path, "test", note=notes.append, videos=videos)


def test_a_ranked_list_that_records_no_threshold_is_said_to_be_scored_whole(tmp_path, capsys):
    """A results JSON whose mgrec block says `"set": "ranked"` but holds no score threshold (the keys cut by a script,
    another tool's block): scored without a threshold, F1 counted every candidate of the list (demo: 24.08 for a run
    of 64.23) without a word, where the same file without the set key got a note."""
    from mgrec.cli import main
    from mgrec.evaluate.predictions import save_predictions

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {"v": {
        "subset": "test", "fps": 30.0, "duration": 60.0,
        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}}}))
    ranked = {"v": [Detection("v", float(s), s + 2.0, 0, "a", p) for s, p in zip(range(0, 100, 10),
                                                                              (0.9, 0.8, 0.7, 0.6, 0.5) + (0.1,) * 5)]}
    save_predictions(ranked, tmp_path / "ranked.json", {"set": "ranked", "run": "/somewhere/run"})
    assert main(["score", "--gt", str(gt_path), "--pred", str(tmp_path / "ranked.json")]) == 0
    err = capsys.readouterr().err
    assert (f"note: {tmp_path / 'ranked.json'} holds a ranked list (its mgrec.set) but records no score threshold, "
            "and none was given: F1 counts every candidate of the list") in err
    assert "--score-threshold T, or --tune-on SPLIT" in err
    assert main(["score", "--gt", str(gt_path), "--pred", str(tmp_path / "ranked.json"), "--score-threshold",
                 "0.5"]) == 0  # a bar given: nothing to say
    assert "records no score threshold" not in capsys.readouterr().err


def test_score_file_without_a_threshold_counts_every_detection_even_logits_and_says_when_mAP_means_little(tmp_path):
    # a file of logits: the default bar of 0 dropped every negative score without a word (F1 from a third of them)
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions, save_predictions_csv
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {"v": {
        "subset": "test", "fps": 30.0, "duration": 60.0,
        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]},
        "u": {"subset": "val", "fps": 30.0, "duration": 60.0, "annotations": []}}}))
    annotations = load_annotations(gt_path)
    hits = [Detection("v", float(s), s + 2.0, 0, "a", score) for s, score in zip(range(0, 50, 10),
                                                                               (-2.0, -1.0, 0.5, 1.0, -0.5))]
    # a val detection's lower score is not the test split's bar
    save_predictions({"v": hits, "u": [Detection("u", 1.0, 2.0, 0, "a", -7.0)]}, tmp_path / "logits.json")
    notes = []
    result = score_file(annotations, gt_path, tmp_path / "logits.json", "test", note=notes.append)
    assert result["num_predictions"] == 5 and result["f1"] == pytest.approx(1.0) and result["score_threshold"] == -2.0
    assert score_file(annotations, gt_path, tmp_path / "logits.json", "test", score_threshold=0.0,
                      note=notes.append)["num_predictions"] == 2  # a bar given is a bar kept
    # the val video's detection is left out of test's scores, with a word (ActivityNet's evaluator counts it)
    outside = (f"{tmp_path / 'logits.json'}: the 1 predictions of 1 video(s) outside split test ('u') are not "
               "scored (--split names the videos scored)")
    # a results file that records no threshold, scored without one: F1 counts every detection, with a word (a
    # ranked list saved from Python without its threshold scored F1 24 for a run of F1 71, silently)
    no_threshold = (f"{tmp_path / 'logits.json'} records no score threshold and none was given: F1 counts every "
                    "detection, as it should for a hard set; for a ranked list (every candidate, as other tools "
                    "write, or `mgrec detect --all`) it is far too low: give --score-threshold T, or --tune-on SPLIT "
                    "to tune one on SPLIT of --gt")
    assert notes == [outside, no_threshold, outside]
    notes.clear()
    # every score the same (SMG label files have none): mAP follows the file's order, and a note says so
    save_predictions({"v": [replace(d, score=1.0) for d in hits]}, tmp_path / "flat.json")
    score_file(annotations, gt_path, tmp_path / "flat.json", "test", note=notes.append)
    assert len(notes) == 2 and "records no score threshold" in notes[0] and "has the score 1 (a file" in notes[1]
    # a CSV table does not say which set it holds
    notes.clear()
    save_predictions_csv({"v": hits[2:4]}, tmp_path / "table.csv")
    score_file(annotations, gt_path, tmp_path / "table.csv", "test", note=notes.append)
    assert len(notes) == 2 and "is a CSV table, which does not record whether it holds the hard set" in notes[0]
    assert "records no score threshold and none was given" in notes[1]  # `detect --all --out x.csv`: F1 23 for 65
    # nor does a folder of SMG files with a score column (`detect --all --format smg`); without one, a hard set
    notes.clear()
    (tmp_path / "smg").mkdir()
    (tmp_path / "smg" / "v.csv").write_text("1,0,60,0.9\n1,300,360,0.2\n")
    score_file(annotations, gt_path, tmp_path / "smg", "test", note=notes.append)
    assert any("records no score threshold and none was given" in n for n in notes)
    notes.clear()
    (tmp_path / "smg" / "v.csv").write_text("1,0,60\n1,300,360\n")
    score_file(annotations, gt_path, tmp_path / "smg", "test", note=notes.append)
    assert not any("records no score threshold" in n for n in notes)
    # the ranked list of a run (`mgrec detect --all`) is scored at the threshold it records, as `evaluate` scores the
    # run: at 0 its whole ranked list was the hard set (F1 24 for a run of F1 72, without a word)
    notes.clear()
    ranked = {"v": [replace(d, score=p) for d, p in zip(hits, (0.9, 0.8, 0.7, 0.2, 0.1))]}
    save_predictions(ranked, tmp_path / "ranked.json", {"set": "ranked", "score_threshold": 0.5,
                                                         "class_thresholds": None, "threshold_tuned_on": "val"})
    result = score_file(annotations, gt_path, tmp_path / "ranked.json", "test", note=notes.append)
    assert result["num_predictions"] == 3 and result["score_threshold"] == 0.5
    assert notes == [f"{tmp_path / 'ranked.json'} is the ranked list of a run: F1 at the threshold it records (0.5, "
                     "tuned on val); --score-threshold 0 counts every detection, --tune-on SPLIT tunes one on SPLIT "
                     "of --gt"]
    assert score_file(annotations, gt_path, tmp_path / "ranked.json", "test", score_threshold=0.0,
                      note=notes.append)["num_predictions"] == 5
    # what a run cannot have recorded (an edited -1 scored every candidate as the hard set, "at the threshold it
    # records"), each refused by its key
    for block, key, expected in (({"score_threshold": "high"}, "score_threshold", "a number in [0, 1]"),
                                 ({"score_threshold": -1}, "score_threshold", "a number in [0, 1]"),
                                 ({"score_threshold": 0.5, "class_thresholds": [-1.0]}, "class_thresholds",
                                  "null or a list of numbers in [0, "),
                                 ({"score_threshold": 0.5, "class_thresholds": [0.5, 0.5]}, "class_thresholds",
                                  "one threshold per class of the run's")):
        save_predictions(ranked, tmp_path / "odd.json", {"set": "ranked", **block})
        with pytest.raises(InputError, match=re.escape(f"odd.json [mgrec.{key}]: expected {expected}")):
            score_file(annotations, gt_path, tmp_path / "odd.json", "test", note=notes.append)
    # ids of videos the annotations lack are quoted: a leading space or a newline in one was invisible, or split
    # the one-line error
    save_predictions({video: [replace(d, video_id=video) for d in hits] for video in (" v", "w\n")},
                     tmp_path / "ids.json")
    with pytest.raises(InputError, match=re.escape("predictions for 2 video(s) not in") + ".*" +
                       re.escape("' v', 'w\\n'")):
        score_file(annotations, gt_path, tmp_path / "ids.json", "test", note=notes.append)


def test_an_smg_folder_written_with_classes_from_0_gets_a_hint_with_its_shifted_f1(tmp_path):
    # 0-based class ids in SMG label files (1..K) scored 0.00 F1 without a word
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"classes": ["a", "b", "c"], "database": {"v": {
        "subset": "test", "fps": 10.0, "duration": 60.0,
        "annotations": [{"label": "b", "segment": [1.0, 3.0]}, {"label": "c", "segment": [5.0, 8.0]}]}}}))
    annotations = load_annotations(gt_path)
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "v.csv").write_text("1,10,30\n2,50,80\n")  # b and c written from 0
    notes = []
    result = score_file(annotations, gt_path, tmp_path / "pred", "test", note=notes.append)
    assert result["f1"] == 0
    assert notes[-1] == (f"F1 is 0, but with every class id of {tmp_path / 'pred'} one higher it would be 100.00%: "
                         "were the classes written from 0? SMG label files number them 1 to K")
    (tmp_path / "pred" / "v.csv").write_text("2,10,30\n3,50,80\n")  # right: nothing to say
    notes.clear()
    assert score_file(annotations, gt_path, tmp_path / "pred", "test", note=notes.append)["f1"] == pytest.approx(1.0)
    assert not any("F1 is 0" in n for n in notes)


def test_the_videos_tuned_on_are_not_called_unscored(tmp_path):
    """`score --split test --tune-on val` of a file covering both said the val predictions "are not scored"."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    database = {video: {"subset": subset, "fps": 30.0, "duration": 60.0,
                        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}
                for video, subset in (("t", "test"), ("v", "val"), ("w", "train"))}
    gt_path.write_text(json.dumps({"classes": ["a"], "database": database}))
    predictions = {video: [Detection(video, float(s), s + 2.0, 0, "a", 0.5 + s / 100) for s in range(0, 50, 10)]
                   for video in ("t", "v", "w")}
    save_predictions(predictions, tmp_path / "p.json")
    notes = []
    score_file(load_annotations(gt_path), gt_path, tmp_path / "p.json", "test", tune_on="val", note=notes.append)
    assert [n for n in notes if "not scored" in n] == [
        f"{tmp_path / 'p.json'}: the 5 predictions of 1 video(s) outside split test ('w') are not scored (--split "
        "names the videos scored, --tune-on those tuned on)"]


def test_tuning_says_what_it_tuned_on_and_refuses_where_no_detection_finds_a_gesture(tmp_path):
    """`score --tune-on val` of a file with one val detection tuned the threshold on it without a word (test F1 0.5
    for 69); one whose val detections find no gesture tuned an arbitrary threshold (F1 0 at every one)."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    database = {video: {"subset": subset, "fps": 30.0, "duration": 60.0,
                        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}
                for video, subset in (("t", "test"), ("v", "val"))}
    gt_path.write_text(json.dumps({"classes": ["a"], "database": database}))
    annotations = load_annotations(gt_path)
    test = [Detection("t", float(s), s + 2.0, 0, "a", 0.5) for s in range(0, 50, 10)]
    save_predictions({"t": test, "v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)]}, tmp_path / "one.json")
    notes = []
    score_file(annotations, gt_path, tmp_path / "one.json", "test", tune_on="val", note=notes.append)
    assert [n for n in notes if "tuned on" in n] == [
        f"score threshold 0.9 tuned on split val of {tmp_path / 'one.json'}: 1 video, 5 ground-truth segments and 1 "
        "detection; fewer detections than gestures there: a hard set or a truncated list (the threshold can only rise "
        "above its lowest score), where tuning wants the ranked list of every candidate (`mgrec detect RUN FEATURES "
        "--all`)"]
    # val detections that find none of val's gestures (seconds read as frames, another video's): nothing to tune
    save_predictions({"t": test, "v": [Detection("v", 51.0 + s / 10, 51.5 + s / 10, 0, "a", 0.5 + s / 100)
                                       for s in range(8)]}, tmp_path / "none.json")
    with pytest.raises(InputError, match=re.escape(
            f"{tmp_path / 'none.json'}: its 8 detections of split 'val' find none of its 5 ground-truth segments "
            "(tIoU > 0.3): every threshold scores F1 0 there, so there is nothing to tune")):
        score_file(annotations, gt_path, tmp_path / "none.json", "test", tune_on="val", note=notes.append)



def test_score_json_records_what_the_threshold_was_tuned_on(tmp_path, capsys):
    """`score --tune-on val --json` said on stderr what it tuned on (videos, gestures, detections), but its JSON held
    the split's name alone: a script comparing thresholds could not see one tuned on a single detection."""
    from mgrec.cli import main
    from mgrec.evaluate.predictions import save_predictions

    gt_path = tmp_path / "gt.json"
    database = {video: {"subset": subset, "fps": 30.0, "duration": 60.0,
                        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}
                for video, subset in (("t", "test"), ("v", "val"), ("w", "val"))}
    gt_path.write_text(json.dumps({"classes": ["a"], "database": database}))
    test = [Detection("t", float(s), s + 2.0, 0, "a", 0.5) for s in range(0, 50, 10)]
    save_predictions({"t": test, "v": [Detection("v", 0.0, 2.0, 0, "a", 0.9)], "w": []}, tmp_path / "one.json")
    command = ["score", "--gt", str(gt_path), "--pred", str(tmp_path / "one.json"), "--split", "test", "--json"]
    assert main([*command, "--tune-on", "val"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold_tuned_on"] == "val"
    assert result["tuning_data"] == {"split": "val", "num_videos": 2, "num_ground_truth": 10, "num_predictions": 1}
    assert main([*command, "--score-threshold", "0.4"]) == 0  # not tuned here: null, as threshold_tuned_on
    assert json.loads(capsys.readouterr().out)["tuning_data"] is None


def test_tied_scores_are_noted_as_making_map_depend_on_the_file_s_order(tmp_path):
    """Scores rounded by another tool tie, and average precision then ranks them in the file's order (66.24 against
    66.30 for one file reversed), without a word; exact scores, as mgrec writes them, raise no note."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"classes": ["a", "b"], "database": {"t": {
        "subset": "test", "fps": 30.0, "duration": 60.0,
        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}}}))
    annotations = load_annotations(gt_path)
    scores = [0.9, 0.8, 0.8, 0.7, 0.8]  # three of class a tie; the class-b detection at 0.9 ties with nothing
    detections = [Detection("t", float(s), s + 2.0, 0, "a", score) for s, score in zip(range(0, 50, 10), scores)]
    save_predictions({"t": [*detections, Detection("t", 1.0, 2.0, 1, "b", 0.9)]}, tmp_path / "tied.json")
    notes = []
    score_file(annotations, gt_path, tmp_path / "tied.json", "test", note=notes.append)
    assert [n for n in notes if "share their score" in n] == [
        f"3 detections of split test in {tmp_path / 'tied.json'} share their score with another of their class: mAP "
        "ranks tied detections in the file's order (as ActivityNet's evaluator does), so another order of the same "
        "detections may give a slightly different mAP; F1 does not depend on the order"]
    save_predictions({"t": [replace(d, score=d.score + i / 1000) for i, d in enumerate(detections)]},
                     tmp_path / "exact.json")
    notes.clear()
    score_file(annotations, gt_path, tmp_path / "exact.json", "test", note=notes.append)
    assert not [n for n in notes if "share their score" in n]


def test_detections_repeated_exactly_are_noted_with_the_first_of_them(tmp_path):
    """A CSV table or a folder of label files joined to itself (`cat a.csv a.csv`) took F1 from 59.50 to 40.84
    without a word: each copy is scored, as a false positive where its first is matched. Said, with the first."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.evaluate.scoring import score_file

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"classes": ["a"], "database": {"t": {
        "subset": "test", "fps": 30.0, "duration": 60.0,
        "annotations": [{"label": "a", "segment": [float(s), s + 2.0]} for s in range(0, 50, 10)]}}}))
    annotations = load_annotations(gt_path)
    detections = [Detection("t", float(s), s + 2.0, 0, "a", 0.5 + s / 100) for s in range(0, 50, 10)]
    for name, listed, f1 in (("once.json", detections, 1.0), ("twice.json", detections + detections[:2], 10 / 12)):
        save_predictions({"t": listed}, tmp_path / name)
        notes = []
        assert score_file(annotations, gt_path, tmp_path / name, "test", note=notes.append)["f1"] == \
            pytest.approx(f1)
        repeated = [n for n in notes if "repeat another exactly" in n]
        assert repeated == ([] if name == "once.json" else [
            f"2 of the 7 detections in {tmp_path / name} repeat another exactly (video, class, segment and score; "
            "first: t a [0, 2] s): each copy is scored, as a false positive where the first is matched; a file "
            "joined to itself, or written twice?"])


def test_score_reads_an_iterator_of_each_video_once():
    """Each video's list was looped over by the check and then scored: an iterator given there had been emptied by
    then, and scored F1 0.0 for a perfect detection (a list: 1.0); a generator of tIoUs gave no mAP."""
    gt = {"v": iter([Segment("v", 1.0, 2.0, 0, "a")])}
    ranked = {"v": (d for d in [Detection("v", 1.0, 2.0, 0, "a", 0.9)])}
    result = score(gt, ranked, iter(["a"]), 0.5, tiou_thresholds=(t for t in [0.5]), class_thresholds=iter([0.5]))
    assert result["f1"] == pytest.approx(1.0) and result["average_mAP"] == pytest.approx(1.0)
    with pytest.raises(InputError, match=r"^predictions \['v'\]: expected a list of Detection, got a str"):
        score({"v": []}, {"v": "abc"}, ["a"], 0.5)


def test_score_refuses_a_class_named_twice_as_the_annotations_readers_do():
    """["A", "A"] merged the rows of the two label ids into one per-class row, without a word."""
    gt = {"v": [Segment("v", 1.0, 2.0, 0, "a")]}
    ranked = {"v": [Detection("v", 1.0, 2.0, 0, "a", 0.9)]}
    for classes, message in ((["a", "a"], "classes[1]: class 'a' is listed twice (first as classes[0])"),
                             (["a", "A "], "classes[1]: classes 'a' and 'A ' are one name to a reader"),
                             ("ab", "classes: expected a list of class names, got a str"),
                             (["a", 1], "classes[1]: expected a class name (a str), got 1")):
        with pytest.raises(InputError, match=re.escape(message)):
            score(gt, ranked, classes, 0.5)


def test_score_refuses_a_negative_start_and_a_bool_for_a_number_as_the_file_readers_do():
    """A start of -5 s (the readers refuse it) was scored; True was taken for the threshold 1.0."""
    gt = {"v": [Segment("v", 1.0, 2.0, 0, "a")]}
    good = Detection("v", 1.0, 2.0, 0, "a", 0.9)
    with pytest.raises(InputError, match=re.escape("video v ground truth #0: start -5 s is negative (times count "
                                                   "from the video's start)")):
        score({"v": [Segment("v", -5.0, 1.5, 0, "a")]}, {"v": [good]}, ["a"], 0.5)
    with pytest.raises(InputError, match=re.escape("video v prediction #0: start -1 s is negative")):
        score(gt, {"v": [replace(good, start=-1.0)]}, ["a"], 0.5)
    with pytest.raises(InputError, match="score threshold must be a finite number, got True"):
        score(gt, {"v": [good]}, ["a"], True)
    with pytest.raises(InputError, match=re.escape("per-class score thresholds: expected 1 finite numbers")):
        score(gt, {"v": [good]}, ["a"], 0.5, class_thresholds=[True])
    for bad in (replace(good, start=True), replace(good, score=False)):
        with pytest.raises(InputError, match="expected a finite"):
            score(gt, {"v": [bad]}, ["a"], 0.5)


def test_score_file_names_a_note_that_cannot_be_called():
    # before: note="x" was a raw TypeError ('str' object is not callable) at the first note, after the scoring
    from mgrec.evaluate.scoring import score_file

    with pytest.raises(InputError, match=r"^score_file: note: expected a callable .* or None, got 'notes.txt'$"):
        score_file(None, "gt.json", "pred.json", note="notes.txt")


def _random_items(rng, classes, video, detections=True):
    """Segments or detections of `video`, each field now and then of another form than the readers make (numpy
    scalars, ints, NaN, a label of another class, another video, times out of order)."""
    items = []
    for _ in range(rng.randrange(1, 6)):
        label_id = rng.randrange(len(classes))
        start = rng.choice([0.0, -0.0, 1.5, rng.uniform(0, 9)])
        fields = dict(video_id=video, start=start, end=start + rng.choice([0.5, rng.uniform(0.1, 2)]),
                      label_id=label_id, label=classes[label_id])
        if detections:
            fields["score"] = rng.choice([0.5, rng.random()])
        if rng.random() < 0.15:
            key = rng.choice(sorted(fields))
            fields[key] = rng.choice({
                "video_id": ["other", video + " "], "start": [np.float32(1.0), 1, float("nan"), -0.5, 99.0],
                "end": [np.float64(20.0), 20, float("inf"), 0.0], "label_id": [np.int64(label_id), True, -1, 9, 1.0],
                "label": [classes[(label_id + 1) % len(classes)], "x"],
                "score": [np.float32(0.5), 1, float("nan"), True, "0.5"]}[key])
        kind = Detection if detections else rng.choice([Segment, Detection]) if "score" in fields else Segment
        if kind is Detection and "score" not in fields:
            fields["score"] = 0.5
        items.append(kind(**fields) if rng.random() < 0.98 else ("not", "an item"))
    return items


def test_the_fast_check_of_scored_items_refuses_what_its_reference_refuses():
    """`score` checks every detection given to it; a detection of the plain form (what the readers make) passes at
    once, any other is asked each question (`_check_items_reference`): on random items, numpy scalars, ints, NaN,
    other labels and videos among them, both pass the same lists and refuse the others with the same message."""
    import random

    from mgrec.evaluate.scoring import _check_items, _check_items_reference

    def outcome(check, items, what):
        try:
            check(items, CLASSES, what, "v")
        except InputError as exc:
            return str(exc)
        return None

    rng = random.Random(0)
    passed = refused = 0
    for _ in range(3000):
        what = rng.choice(["prediction", "ground truth"])
        items = _random_items(rng, CLASSES, "v", detections=what == "prediction")
        expected = outcome(_check_items_reference, items, what)
        assert outcome(_check_items, items, what) == expected, items
        passed += expected is None
        refused += expected is not None
    assert passed > 500 and refused > 500


def test_the_confusion_matrix_counted_in_blocks_of_predictions_is_the_one_of_all_at_once(monkeypatch):
    """`confusion_counts` compares `CONFUSION_ROWS` predictions at a time with a video's ground truth (a hard set of
    166,000 detections made 93 MB arrays): blocks of 3 give the counts of one block, on random data with tied
    tIoUs (segments on a grid of whole seconds) and detections outside any gesture."""
    import random

    import mgrec.evaluate.scoring as scoring_module

    rng = random.Random(0)
    for _ in range(30):
        gt, hard = {}, {}
        for video in ("a", "b", "c"):
            gt[video] = [Segment(video, s, s + rng.randrange(1, 4), k, CLASSES[k])
                         for s, k in ((rng.randrange(0, 20), rng.randrange(len(CLASSES)))
                                      for _ in range(rng.randrange(0, 5)))]
            hard[video] = [Detection(video, s, s + rng.randrange(1, 4), k, CLASSES[k], rng.random())
                           for s, k in ((rng.randrange(0, 25), rng.randrange(len(CLASSES)))
                                        for _ in range(rng.randrange(0, 12)))]
        monkeypatch.setattr(scoring_module, "CONFUSION_ROWS", 10**6)
        matrix, background = confusion_counts(gt, hard, len(CLASSES))
        monkeypatch.setattr(scoring_module, "CONFUSION_ROWS", 3)
        blocks = confusion_counts(gt, hard, len(CLASSES))
        assert np.array_equal(blocks[0], matrix) and np.array_equal(blocks[1], background)


def test_score_takes_fields_of_0d_tensors_as_the_metrics_do_and_refuses_other_shapes_naming_the_field():
    """A researcher's records straight from a model's outputs (0-d torch tensors, numpy scalars and 0-d arrays:
    float(t) not called) were refused, "expected a finite start before its end, got [tensor(1.), tensor(2.)]", while
    the metrics below score took them. One conversion (`mgrec.files.as_real`) reads every field: they score as the
    same records of Python numbers, and a tensor of several values, a string or a bool is refused by its field."""
    import torch

    gt = {"v": [Segment("v", torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0), "a")]}
    ranked = {"v": [Detection("v", torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0), "a", torch.tensor(0.9)),
                    Detection("v", np.float32(3.0), np.array(4.0), np.int64(0), "a", np.array(0.4))]}
    plain_gt = {"v": [Segment("v", 1.0, 2.0, 0, "a")]}
    plain = {"v": [Detection("v", 1.0, 2.0, 0, "a", 0.9), Detection("v", 3.0, 4.0, 0, "a", 0.4)]}
    assert score(gt, ranked, ["a"], 0.5) == score(plain_gt, plain, ["a"], 0.5)
    good = plain["v"][0]
    cases = [
        (replace(good, start=torch.tensor([1.0, 1.5])), "start: a Tensor of shape (2,) holds 2 values; a field takes "
                                                        "one number (a 0-d tensor or array, or float(t))"),
        (replace(good, end=np.array([2.0])), "end: a ndarray of shape (1,) holds 1 value"),
        (replace(good, start=True), "start: the bool True is no number"),
        (replace(good, end="2.0"), "end: the str '2.0' is no number"),
        (replace(good, score=torch.tensor([0.9, 0.8])), "expected a finite score, got tensor([0.9000, 0.8000]) "
                                                        "(score: a Tensor of shape (2,) holds 2 values"),
        (replace(good, score=torch.tensor(True)), "(score: a 0-d Tensor of dtype torch.bool is no real number)"),
        (replace(good, label_id=torch.tensor([0, 0])), "(label_id: a Tensor of shape (2,) holds 2 values"),
        (replace(good, label_id=torch.tensor(0.0)), "label_id 0.0 / label 'a' does not match the class list"),
    ]
    for item, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            score(plain_gt, {"v": [item]}, ["a"], 0.5)
