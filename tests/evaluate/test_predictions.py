"""Prediction files: round trips and one clear InputError per kind of bad input."""

import csv
import json
import re

import pytest

import mgrec
from mgrec.errors import InputError
from mgrec.evaluate.predictions import (
    MGREC_KEY,
    load_predictions,
    read_predictions_info,
    save_predictions,
    save_predictions_csv,
)
from mgrec.records import Detection

CLASSES = ["arms akimbo", "folding arms", "moving legs"]


def detection(video, start, end, label_id, score, frames=None):
    start_frame, end_frame = frames if frames else (None, None)
    return Detection(video, start, end, label_id, CLASSES[label_id], score, start_frame, end_frame)


def test_json_round_trip(tmp_path):
    pred = {
        "Sample0036": [
            detection("Sample0036", 1.25, 2.5, 2, 0.875, (35, 70)),
            detection("Sample0036", 3.0, 4.1, 0, 0.5),
        ],
        "Sample0037": [],
    }
    path = tmp_path / "out" / "pred.json"
    save_predictions(pred, path)
    assert load_predictions(path, CLASSES) == pred
    assert [p.name for p in path.parent.iterdir()] == ["pred.json"]  # no temporary file left
    save_predictions({"Sample0040": []}, path)  # overwrite in place
    assert load_predictions(path, CLASSES) == {"Sample0040": []}


# What the official ActivityNet evaluator (Evaluation/eval_detection.py) and DETAD check before
# reading a results file: these keys must all be there, or they refuse it.
ACTIVITYNET_PREDICTION_FIELDS = ("results", "version", "external_data")


def read_like_activitynet(path, classes):
    """The official evaluator's reading of a results file, restated: the field check, then per
    entry the class looked up by name, float segment ends and the score."""
    data = json.loads(path.read_text())
    assert all(field in data for field in ACTIVITYNET_PREDICTION_FIELDS), sorted(data)
    activity_index = {name: i for i, name in enumerate(classes)}
    return [
        (video_id, float(r["segment"][0]), float(r["segment"][1]), activity_index[r["label"]], r["score"])
        for video_id, entries in data["results"].items()
        for r in entries
    ]


def test_results_json_is_activitynet_complete(tmp_path):
    pred = {"Sample0036": [detection("Sample0036", 1.25, 2.5, 2, 0.875, (35, 70))], "Sample0037": []}
    info = {"set": "hard", "score_threshold": 0.3125, "threshold_tuned_on": "val", "run": "runs/demo",
            "checkpoint": "best"}
    path = tmp_path / "pred.json"
    save_predictions(pred, path, info=info)

    assert read_like_activitynet(path, CLASSES) == [("Sample0036", 1.25, 2.5, 2, 0.875)]
    document = json.loads(path.read_text())
    assert isinstance(document["version"], str) and document["version"]
    assert set(document["external_data"]) == {"used", "details"}
    assert document["external_data"]["used"] is None  # unknown here, and said so
    block = document[MGREC_KEY]
    assert {k: block[k] for k in info} == info
    assert block["mgrec_version"] == mgrec.__version__
    assert {"command", "date", "git_commit", "machine"} <= set(block["provenance"])
    assert read_predictions_info(path) == block
    assert load_predictions(path, CLASSES) == pred  # the extra keys change nothing for mgrec


def test_results_json_keeps_callers_provenance_and_external_data(tmp_path):
    path = tmp_path / "pred.json"
    record = {"command": "mgrec evaluate runs/demo", "date": "2025-01-01T00:00:00+00:00"}
    external = {"used": True, "details": "EfficientNet-Lite0 pretrained on ImageNet"}
    save_predictions({}, path, info={"set": "ranked", "provenance": record}, external_data=external)
    document = json.loads(path.read_text())
    assert document["external_data"] == external
    assert document[MGREC_KEY]["provenance"] == record
    with pytest.raises(InputError, match="mgrec_version"):
        save_predictions({}, path, info={"mgrec_version": "9"})
    save_predictions({}, path, info={"run": tmp_path / "runs" / "demo"})  # paths are written as text
    assert read_predictions_info(path)["run"] == str(tmp_path / "runs" / "demo")
    with pytest.raises(InputError, match="info: holds a value JSON cannot write .*set .* is not JSON"):
        save_predictions({}, path, info={"splits": {"val"}})


def test_results_json_without_the_activitynet_keys_still_reads(tmp_path):
    # What mgrec wrote before `version`, `external_data` and `mgrec` existed.
    path = tmp_path / "old.json"
    old = {"results": {"v": [{"segment": [0.5, 1.5], "label": "moving legs", "label_id": 2, "score": 0.25,
                              "segment(frames)": [14, 42]}]}}
    path.write_text(json.dumps(old, indent=1))
    assert load_predictions(path, CLASSES) == {"v": [detection("v", 0.5, 1.5, 2, 0.25, (14, 42))]}
    assert read_predictions_info(path) == {}


def test_annotations_given_as_predictions_are_named_as_the_ground_truth(tmp_path):
    # `mgrec score --gt A --pred annotations.json` (--gt and --pred swapped) said only "expected a JSON object with a
    # 'results' key"
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps({"classes": ["a"], "database": {}}))
    with pytest.raises(InputError, match=r"annotations.json: expected a JSON object with a 'results' key; it holds "
                                         r"annotations \(a 'database' object\), the ground truth, not predictions "
                                         r"\(`mgrec score --gt` takes it\)$"):
        load_predictions(path, ["a"])


def test_read_predictions_info_of_other_forms_and_bad_blocks(tmp_path):
    table = tmp_path / "pred.csv"
    save_predictions_csv({"a": [detection("a", 1.0, 2.0, 0, 0.5)]}, table)
    assert read_predictions_info(table) == {}
    assert read_predictions_info(tmp_path) == {}  # a folder of SMG-style CSV files
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"results": {}, MGREC_KEY: ["hard"]}))
    with pytest.raises(InputError, match=r"bad.json \[mgrec\]: expected an object"):
        read_predictions_info(bad)


def test_a_set_the_block_does_not_know_is_refused_where_every_reader_reads_it(tmp_path, capsys):
    """A block whose `set` is another value (`Ranked`, `all`: edited, or another tool's) was taken for a file that
    does not say: `mgrec score` of a run's ranked list counted every candidate at 0 (F1 19.16 for 35.66), without the
    note it gives a file recording nothing; `report --detections` drew the whole list."""
    from mgrec.cli import main

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"classes": CLASSES, "database": {"v": {"subset": "test", "duration": 10.0, "fps": 10.0,
                  "annotations": [{"label": CLASSES[0], "segment": [1.0, 2.0]}]}}}))
    ranked = {"v": [detection("v", 1.0, 2.0, 0, 0.9), detection("v", 5.0, 6.0, 1, 0.2)]}
    for value in ("Ranked", "all", 1, ["ranked"]):
        path = tmp_path / "ranked.json"
        save_predictions(ranked, path, info={"set": value, "score_threshold": 0.5})
        with pytest.raises(InputError, match=r"ranked.json \[mgrec.set\]: expected 'hard' \(.*\) or 'ranked' \(.*"
                                             rf"\), or no key where it is not known; got {re.escape(repr(value))}$"):
            read_predictions_info(path)
        assert main(["score", "--gt", str(gt), "--pred", str(path)]) == 2
        assert "[mgrec.set]: expected 'hard'" in capsys.readouterr().err
    for value in ("ranked", "hard", None):  # what mgrec writes, and null for a file that does not say
        save_predictions(ranked, path, info={"set": value, "score_threshold": 0.5})
        assert read_predictions_info(path)["set"] == value


def test_json_label_by_name_or_id(tmp_path):
    path = tmp_path / "pred.json"
    path.write_text(
        json.dumps(
            {
                "results": {
                    "v": [
                        {"segment": [0, 1], "label": "folding arms", "score": 0.5},
                        {"segment": [0, 1], "label_id": 2, "score": 1},
                    ]
                }
            }
        )
    )
    loaded = load_predictions(path, CLASSES)["v"]
    assert [(d.label_id, d.label) for d in loaded] == [(1, "folding arms"), (2, "moving legs")]


def entry(**changes):
    base = {"segment": [1.0, 2.0], "label": "moving legs", "label_id": 2, "score": 0.5}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    "bad_entry, key, message",
    [
        (entry(segment=None), "results.Sample0036[1]", "missing 'segment'"),
        (entry(segment=[1.0]), "results.Sample0036[1].segment", "start_s, end_s"),
        (entry(segment=[2.0, 2.0]), "results.Sample0036[1].segment", "start before its end"),
        (entry(segment=[3.0, 2.0]), "results.Sample0036[1].segment", "start before its end"),
        (entry(segment=["1", 2]), "results.Sample0036[1].segment", "numbers"),
        (entry(segment=[-10.0, -5.0]), "results.Sample0036[1].segment", "start -10 s is negative"),
        (entry(segment=[-0.5, 2.0]), "results.Sample0036[1].segment", "start -0.5 s is negative"),
        (entry(**{"segment(frames)": [-14, 56]}), "results.Sample0036[1].segment(frames)", "0 <= start <= end"),
        (entry(label="jumping", label_id=None), "results.Sample0036[1].label", "unknown class 'jumping'"),
        (entry(label_id=3), "results.Sample0036[1].label_id", "[0, 3), got 3; were the predictions made with another "
                                                              "class list than this one (3: ['arms akimbo', "),
        (entry(label_id=True, label=None), "results.Sample0036[1].label_id", "integer"),
        (entry(label=1, label_id=None), "results.Sample0036[1].label", "got 1 (if 1 is the class's index in [0, 3) "
                                                                       "of ['arms akimbo', "),
        (entry(label="1", label_id=None), "results.Sample0036[1].label", "unknown class '1'; known: ['arms akimbo', "
                                                                         "'folding arms', 'moving legs'] (if 1 is the "
                                                                         "class's index in [0, 3), give it as "
                                                                         "label_id, a number)"),
        (entry(segment=None, **{"t-start": 1.0, "t-end": 2.0}), "results.Sample0036[1]",
         "missing 'segment' [start_s, end_s] (it has 't-start' and 't-end': give them as segment)"),
        (entry(label_id=0), "results.Sample0036[1]", "label 'moving legs' is class 2 but label_id is 0"),
        (entry(label=None, label_id=None), "results.Sample0036[1]", "missing 'label'"),
        (entry(score=None), "results.Sample0036[1]", "missing 'score'"),
        (entry(score="high"), "results.Sample0036[1].score", "finite number"),
        (entry(**{"segment(frames)": [5]}), "results.Sample0036[1].segment(frames)", "integers"),
        ("not an object", "results.Sample0036[1]", "expected an object"),
    ],
)
def test_json_entry_errors_name_file_and_key(tmp_path, bad_entry, key, message):
    path = tmp_path / "pred.json"
    path.write_text(json.dumps({"results": {"Sample0036": [entry(), bad_entry]}}))
    with pytest.raises(InputError) as error:
        load_predictions(path, CLASSES)
    assert f"pred.json [{key}]" in str(error.value)
    assert message in str(error.value)


def test_json_non_finite_score(tmp_path):
    path = tmp_path / "pred.json"
    path.write_text('{"results": {"v": [{"segment": [0, 1], "label_id": 0, "score": NaN}]}}')
    with pytest.raises(InputError, match=r"pred.json \[results.v\[0\].score\]: expected a finite number"):
        load_predictions(path, CLASSES)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"database": {}}', "'results' key"),
        # ActionFormer's results as its evaluation keeps them (columns), saved as JSON
        ('{"video-id": ["v"], "t-start": [1.0], "t-end": [2.0], "label": [0], "score": [0.9]}',
         "'results' key; it holds columns video-id, t-start, t-end, label, score (ActionFormer's results), not "
         'detections per video: write them as {"results": {video_id: [{"segment": [t-start, t-end], "label_id": '
         'label, "score": score}, ...]}}'),
        ('{"results": []}', "[results]: expected an object"),
        ('{"results": {"v": {}}}', "[results.v]: expected a list"),
    ],
)
def test_json_document_errors(tmp_path, text, message):
    path = tmp_path / "pred.json"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        load_predictions(path, CLASSES)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such predictions"):
        load_predictions(tmp_path / "nothing.json", CLASSES)


# ------------------------------------------------------------------------------------ CSV folder


def test_smg_csv_folder(tmp_path):
    (tmp_path / "scored").mkdir()
    (tmp_path / "scored" / "Sample0036_finelabels.csv").write_text("3,28,56,0.75\n1,100,128,0.5\n\n")
    (tmp_path / "scored" / "Sample0037.csv").write_text("")  # no detections: fits either kind
    (tmp_path / "scored" / "._Sample0036_finelabels.csv").write_bytes(b"\x00\x05\x16\x07")  # macOS's AppleDouble
    assert load_predictions(tmp_path / "scored", CLASSES, fps=28) == {
        "Sample0036": [
            detection("Sample0036", 1.0, 2.0, 2, 0.75, (28, 56)),
            detection("Sample0036", 100 / 28, 128 / 28, 0, 0.5, (100, 128)),
        ],
        "Sample0037": [],
    }
    (tmp_path / "hard").mkdir()
    (tmp_path / "hard" / "Sample0037.csv").write_text("2,0,14\n")
    assert load_predictions(tmp_path / "hard", CLASSES, fps=28) == {
        "Sample0037": [detection("Sample0037", 0.0, 0.5, 1, 1.0, (0, 14))],
    }


def test_smg_files_whose_ending_is_upper_case_are_read_or_named(tmp_path):
    """`VIDEO/VIDEO_finelabels.CSV` or a flat `VIDEO.CSV` (a Windows tool's, a spreadsheet's export) was neither read
    nor named: its video scored as all missed, with only the note that the folder had no file of it."""
    (tmp_path / "sub" / "Sample0031").mkdir(parents=True)
    (tmp_path / "sub" / "Sample0031" / "Sample0031_finelabels.CSV").write_text("1,0,10\n")
    (tmp_path / "sub" / "Sample0032.Csv").write_text("2,0,14\n")
    (tmp_path / "sub" / "Sample0031" / "Sample0031_data.CSV").write_text("100,28,0\n")  # SMG's own: no labels
    assert load_predictions(tmp_path / "sub", CLASSES, fps=28) == {
        "Sample0031": [detection("Sample0031", 0.0, 10 / 28, 0, 1.0, (0, 10))],
        "Sample0032": [detection("Sample0032", 0.0, 0.5, 1, 1.0, (0, 14))],
    }
    (tmp_path / "sub" / "Sample0031" / "other.CSV").write_text("1,0,10\n")
    with pytest.raises(InputError, match=r"Sample0031/other.CSV: a .csv file in a video's folder that is not named "
                                         r"Sample0031_finelabels.csv"):
        load_predictions(tmp_path / "sub", CLASSES, fps=28)
    # a folder holding such files is no empty folder for `detect --format smg` either
    from mgrec.infer.label_set import refuse_old_label_files

    (tmp_path / "sub" / "Sample0031" / "other.CSV").unlink()
    with pytest.raises(InputError, match=r"already holds 2 SMG label file\(s\)"):
        refuse_old_label_files(tmp_path / "sub")


def test_a_file_in_a_video_folder_that_would_not_be_read_is_named(tmp_path):
    # `Sample0031/Sample0031.csv` was passed over: its video counted as all missed (F1 65 -> 59), without a word
    for video in ("Sample0031", "Sample0032"):
        (tmp_path / "sub" / video).mkdir(parents=True)
        (tmp_path / "sub" / video / f"{video}_data.csv").write_text("100,28,0\n")  # SMG's own, copied with the tree
    (tmp_path / "sub" / "Sample0031" / "Sample0031_finelabels.csv").write_text("1,0,10\n")
    (tmp_path / "sub" / "Sample0032" / "Sample0032.csv").write_text("2,0,14\n")
    with pytest.raises(InputError, match=r"Sample0032/Sample0032.csv: a .csv file in a video's folder that is not "
                                         r"named Sample0032_finelabels.csv, so it would not be read; SMG's layout is "
                                         r"VIDEO/VIDEO_finelabels.csv"):
        load_predictions(tmp_path / "sub", CLASSES, fps=28)
    (tmp_path / "sub" / "Sample0032" / "Sample0032.csv").rename(tmp_path / "sub" / "Sample0032" /
                                                                "Sample0032_finelabels.csv")
    assert sorted(load_predictions(tmp_path / "sub", CLASSES, fps=28)) == ["Sample0031", "Sample0032"]
    # one folder too high: said where the files are
    with pytest.raises(InputError, match=rf"{tmp_path}: no .csv prediction files .*; {tmp_path / 'sub'} holds them "
                                         r"one folder down: give that folder"):
        load_predictions(tmp_path, CLASSES, fps=28)


def test_smg_csv_folder_mixing_scored_and_unscored_files_is_refused(tmp_path):
    """Files with and without scores in one folder are two sets (a hard set and another run's ranked
    list): scored together every unscored detection would rank first. Both kinds are named."""
    for video, text in (("Sample0036", "1,0,10\n"), ("Sample0037", ""), ("Sample0038", "2,0,14,0.5\n")):
        (tmp_path / video).mkdir()
        (tmp_path / video / f"{video}_finelabels.csv").write_text(text)
    with pytest.raises(InputError) as error:
        load_predictions(tmp_path, CLASSES, fps=28)
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: mixes")
    assert "Sample0036/Sample0036_finelabels.csv: 3 columns" in message
    assert "Sample0038/Sample0038_finelabels.csv: 4 columns" in message


def test_smg_csv_folder_with_fps_per_video_takes_longest_id(tmp_path):
    (tmp_path / "cam_1_pred.csv").write_text("1,0,10\n")
    (tmp_path / "cam.csv").write_text("1,0,10\n")
    loaded = load_predictions(tmp_path, CLASSES, fps_by_video={"cam": 10.0, "cam_1": 20.0})
    assert loaded["cam_1"][0].end == 0.5 and loaded["cam"][0].end == 1.0


def test_smg_csv_folder_takes_the_video_its_file_or_folder_names_not_a_video_named_like_its_start(tmp_path):
    # `x_1/x_1_finelabels.csv` beside ground truth of x and y was scored as video x (F1 100): a JSON of the same
    # predictions is refused as holding a video not in the ground truth.
    (tmp_path / "x_1").mkdir()
    (tmp_path / "x_1" / "x_1_finelabels.csv").write_text("1,10,30\n")
    with pytest.raises(InputError, match=r"x_1_finelabels.csv: video 'x_1' \(its folder\) is not in the ground truth"):
        load_predictions(tmp_path, CLASSES, fps_by_video={"x": 10.0, "y": 10.0})
    assert list(load_predictions(tmp_path, CLASSES, fps_by_video={"x": 10.0, "x_1": 10.0})) == ["x_1"]
    # with one fps for all, an id with "_" in it is the whole stem (it was cut at the first "_": `train`)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "train_subject03_0.csv").write_text("1,10,30\n")
    (flat / "val_subject01_0_finelabels.csv").write_text("1,10,30\n")
    assert sorted(load_predictions(flat, CLASSES, fps=28)) == ["train_subject03_0", "val_subject01_0"]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("1,0,10\n1,0\n", 2, "got 2 columns"),
        ("1,0,10,0.5\n1,0,10\n", 2, "earlier rows have 4"),
        ("1,0,10\nx,0,10\n", 2, "must be integers"),
        ("0,0,10\n", 1, "class 0 is outside 1..3"),
        ("4,0,10\n", 1, "class 4 is outside 1..3"),
        ("1,10,10\n", 1, "start frame 10 is not before end frame 10"),
        ("1,0,10,high\n", 1, "score must be a number"),
        ("1,0,10,inf\n", 1, "score must be finite"),
        ("1,0,10\n1,-20,-5\n", 2, "start frame -20 is negative"),
        ("1,0,10\n1,\xe9,10\n", 2, "not UTF-8 text (byte 0xe9"),
    ],
)
def test_smg_csv_errors_name_file_and_line(tmp_path, text, line, message):
    file = tmp_path / "Sample0036.csv"
    file.write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError) as error:
        load_predictions(tmp_path, CLASSES, fps=28)
    assert f"{file}:{line}:" in str(error.value) and message in str(error.value)


def test_smg_csv_folder_errors(tmp_path):
    with pytest.raises(InputError, match="no .csv"):
        load_predictions(tmp_path, CLASSES, fps=28)
    (tmp_path / "Sample0036.csv").write_text("1,0,10\n")
    with pytest.raises(InputError, match=r"needs the frame rate \(fps\), since their rows count frames: give fps= "
                                         r"\(one rate for every video\) or fps_by_video="):
        load_predictions(tmp_path, CLASSES)
    with pytest.raises(InputError, match=r"video Sample0036: fps must be in \[0.001, 1000\], got 0"):
        load_predictions(tmp_path, CLASSES, fps=0)
    with pytest.raises(InputError, match="Sample0036.csv: its name matches no video id"):
        load_predictions(tmp_path, CLASSES, fps_by_video={"Sample0037": 28})
    (tmp_path / "Sample0036_finelabels.csv").write_text("1,0,10\n")
    with pytest.raises(InputError, match="video Sample0036 already read"):
        load_predictions(tmp_path, CLASSES, fps=28)


# ---------------------------------------------------------------------------------- CSV output


def test_save_predictions_csv(tmp_path):
    pred = {"a": [detection("a", 1.0, 2.5, 1, 0.25, (28, 70))], "b": [detection("b", 0.5, 1.0, 0, 1.0)]}
    path = tmp_path / "pred.csv"
    save_predictions_csv(pred, path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["video", "start_s", "end_s", "start_frame", "end_frame", "label", "score"]
    assert rows == [
        {
            "video": "a",
            "start_s": "1.0000",
            "end_s": "2.5000",
            "start_frame": "28",
            "end_frame": "70",
            "label": "folding arms",
            "score": "0.25",
        },
        {
            "video": "b",
            "start_s": "0.5000",
            "end_s": "1.0000",
            "start_frame": "",
            "end_frame": "",
            "label": "arms akimbo",
            "score": "1.0",
        },
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["pred.csv"]


@pytest.mark.parametrize("quoting", [csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_MINIMAL])
def test_the_csv_table_written_back_quoted_reads_as_the_table(tmp_path, quoting):
    """The table read into R or pandas and written back (`write.csv`, `to_csv(quoting=QUOTE_ALL)`) quotes its header:
    `"video","start_s",...` was "not a predictions file; expected ... the CSV table of `mgrec detect --format csv`
    (header video,start_s,...)", naming the header it has as the one expected."""
    from mgrec.evaluate.predictions import is_csv_table

    pred = {"a": [detection("a", 1.0, 2.5, 1, 0.25, (28, 70))], "b": [detection("b", 0.5, 1.0, 0, 1.0)]}
    table = tmp_path / "pred.csv"
    save_predictions_csv(pred, table)
    with table.open(newline="") as handle:
        rows = list(csv.reader(handle))
    quoted = tmp_path / "quoted.csv"
    with quoted.open("w", newline="", encoding="utf-8-sig") as handle:  # with a byte-order mark, as Excel saves it
        writer = csv.writer(handle, quoting=quoting, lineterminator="\r\n")
        writer.writerow(rows[0])
        for row in rows[1:]:  # numbers as numbers where the writer leaves them unquoted
            writer.writerow([float(cell) if quoting == csv.QUOTE_NONNUMERIC and column in ("start_s", "end_s", "score")
                             else cell for column, cell in zip(rows[0], row)])
    assert is_csv_table(quoted) and load_predictions(quoted, CLASSES) == load_predictions(table, CLASSES)
    quoted.write_text('"video","start_s","end_s"\n"a",1,2\n')  # another header stays another file
    with pytest.raises(InputError, match="not a predictions file"):
        load_predictions(quoted, CLASSES)


@pytest.mark.parametrize("column, cell", [("start_s", "1_0.5"), ("end_s", "\u0663"), ("score", "\u0660.\u0665"),
                                          ("start_frame", "\uff12\uff18"), ("end_frame", "7_0")])
def test_the_csv_table_reads_numbers_in_ascii_digits_only(tmp_path, column, cell):
    # float() and int() read "1_0.5" as 10.5 and full-width or Arabic-Indic digits as numbers; the SMG CSVs and the
    # configs refuse them, and so does this reader now
    pred = {"a": [detection("a", 1.0, 2.5, 1, 0.25, (28, 70))]}
    path = tmp_path / "pred.csv"
    save_predictions_csv(pred, path)
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0][column] = cell
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kind = "an integer" if column.endswith("frame") else "a number"
    with pytest.raises(InputError, match=rf"pred.csv:2 \[{column}\]: expected {kind}, got"):
        load_predictions(path, CLASSES)


def test_csv_names_that_spreadsheets_run_as_formulas_are_escaped_and_read_back_exactly(tmp_path):
    from mgrec.evaluate.predictions import save_predictions_csv

    classes = ["=HYPERLINK(\"http://x\")", "+1", "ok"]
    pred = {"@video": [Detection(video_id="@video", start=1.0, end=2.0, label_id=0, label=classes[0], score=0.5),
                       Detection(video_id="@video", start=3.0, end=4.0, label_id=1, label=classes[1], score=0.25)]}
    save_predictions_csv(pred, tmp_path / "p.csv")
    text = (tmp_path / "p.csv").read_text()
    assert "'@video" in text and "'=HYPERLINK" in text and "'+1" in text
    back = load_predictions(tmp_path / "p.csv", classes)
    assert [(d.video_id, d.label) for d in back["@video"]] == [("@video", classes[0]), ("@video", classes[1])]
    # the escape is one to one: a name that starts with the apostrophe itself is not read as another video's
    pred = {v: [Detection(video_id=v, start=1.0, end=2.0, label_id=2, label="ok", score=0.5)]
            for v in ("=x", "'=x", "'x", "''=x")}
    save_predictions_csv(pred, tmp_path / "q.csv")
    back = load_predictions(tmp_path / "q.csv", classes)
    assert sorted(back) == sorted(pred) and all(len(items) == 1 for items in back.values())


def test_a_lone_carriage_return_in_a_name_is_written_quoted_and_a_broken_row_is_named_at_its_first_line(tmp_path):
    """csv quotes a cell holding \n, not one holding a lone \r: `detect --format csv` wrote a file `score` then
    failed on with a traceback (`new-line character seen in unquoted field`); a quote never closed was blamed
    on the file's last line."""
    classes = ["ER\r", "ok"]
    pred = {"v\r1": [Detection(video_id="v\r1", start=1.0, end=2.0, label_id=0, label="ER\r", score=0.5)],
            "w": [Detection(video_id="w", start=3.0, end=4.0, label_id=1, label="ok", score=0.25)]}
    save_predictions_csv(pred, tmp_path / "p.csv")
    back = load_predictions(tmp_path / "p.csv", classes)
    assert {v: [(d.label, d.start, d.score) for d in items] for v, items in back.items()} == \
        {"v\r1": [("ER\r", 1.0, 0.5)], "w": [("ok", 3.0, 0.25)]}
    assert (tmp_path / "p.csv").read_bytes().endswith(b"\nw,3.0000,4.0000,,,ok,0.25\n")  # others plain
    head = "video,start_s,end_s,start_frame,end_frame,label,score\n"
    (tmp_path / "q.csv").write_text(head + "w,1.0,2.0,,,ok,0.5\nw,3.0,4.0,,,ER\r,0.8\n", newline="")
    with pytest.raises(InputError, match=r"q\.csv:3: expected 7 columns"):  # the \r ends the row there
        load_predictions(tmp_path / "q.csv", classes)
    (tmp_path / "q.csv").write_text(head + 'w,1.0,2.0,,,"ok,0.5\n' + "w,3.0,4.0,,,ok,0.8\n" * 5, newline="")
    with pytest.raises(InputError, match=r"q\.csv:2: not a row of video"):
        load_predictions(tmp_path / "q.csv", classes)


def test_the_csv_table_refuses_negative_times_with_its_line(tmp_path):
    # the CSV table goes through the same entry parser as JSON
    path = tmp_path / "pred.csv"
    path.write_text("video,start_s,end_s,start_frame,end_frame,label,score\nv,1.0,2.0,,,ok,0.5\nv,-10.0,-5.0,,,ok,0.5\n")
    with pytest.raises(InputError, match=r"pred\.csv:3 \[segment\]: start -10 s is negative"):
        load_predictions(path, ["ok"])
    path.write_text("video,start_s,end_s,start_frame,end_frame,label,score\nv,0.0,2.0,,,ok,-3.5\n")
    assert load_predictions(path, ["ok"])["v"][0].score == -3.5  # scores are not probabilities everywhere (logits)


def test_save_predictions_names_a_non_finite_detection_and_writes_numpy_scalars(tmp_path):
    """A NaN score was json's "Out of range float values" naming nothing; a start of numpy's float32 was blamed on
    `info`; a list for the mapping an AttributeError."""
    import dataclasses

    import numpy as np

    good = detection("v", 1.0, 2.0, 0, 0.5)
    with pytest.raises(InputError, match=r"predictions \[v\]\[1\]\.score: expected a finite number, got nan"):
        save_predictions({"v": [good, dataclasses.replace(good, score=float("nan"))]}, tmp_path / "p.json")
    with pytest.raises(InputError, match="predictions: expected a mapping"):
        save_predictions([good], tmp_path / "p.json")
    assert not (tmp_path / "p.json").exists()
    save_predictions({"v": [dataclasses.replace(good, start=np.float32(1.0), label_id=np.int64(0))]},
                     tmp_path / "p.json")
    assert load_predictions(tmp_path / "p.json", CLASSES) == {"v": [good]}


def test_save_predictions_writes_only_what_load_predictions_reads_back(tmp_path):
    """start > end, a NaN frame, keys 1 and "1", a detection under another video's key, a label that is no name: each
    was written (then unreadable, or read back as another detection); a frame of numpy's int64 was a TypeError blaming
    `info`; an iterator of detections was written as []. Each bad one is named by its key and index, and nothing is
    written."""
    import dataclasses

    import numpy as np

    good = detection("v", 1.0, 2.0, 0, 0.5)
    path = tmp_path / "p.json"
    save_predictions({"v": iter([good])}, path)
    assert load_predictions(path, CLASSES) == {"v": [good]}
    save_predictions({"v": [dataclasses.replace(good, start_frame=np.int64(5), end_frame=np.int32(9))]}, path)
    assert load_predictions(path, CLASSES)["v"][0].start_frame == 5
    path.unlink()
    cases = [
        ({"v": [good, dataclasses.replace(good, start=3.0)]},
         "predictions [v][1].segment: expected a finite start before its end, got [3.0, 2.0]"),
        ({"v": [dataclasses.replace(good, start=-1.0)]}, "predictions [v][0].segment: start -1 s is negative"),
        ({"v": [dataclasses.replace(good, start_frame=float("nan"), end_frame=9)]},
         "predictions [v][0].segment(frames): expected [start_frame, end_frame] integers"),
        ({"v": [dataclasses.replace(good, start_frame=5)]}, "predictions [v][0].segment(frames): expected"),
        ({1: [dataclasses.replace(good, video_id=1)], "1": [dataclasses.replace(good, video_id="1")]},
         "predictions: key 1: expected a video id (a non-empty str)"),
        ({"v": [dataclasses.replace(good, video_id="w")]},
         "predictions [v][0]: its video_id 'w' is not the video it is listed under ('v')"),
        ({"v": [dataclasses.replace(good, label=3)]}, "predictions [v][0].label: expected a class name"),
        ({"v": [dataclasses.replace(good, label_id=True)]}, "predictions [v][0].label_id: expected an integer >= 0"),
        ({"v": [good, dataclasses.replace(good, label="folding arms")]},
         "predictions [v][1]: label_id 0 is 'folding arms' here but 'arms akimbo' at predictions [v][0]"),
        ({"v": [good, dataclasses.replace(good, label_id=2)]},
         "predictions [v][1]: label 'arms akimbo' is label_id 2 here but 0 at predictions [v][0]"),
        ({"v": [good, (1.0, 2.0)]}, "predictions [v][1]: expected a Detection, got (1.0, 2.0)"),
        ({"v": "abc"}, "predictions [v]: expected a list of Detection, got a str"),
    ]
    for pred, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            save_predictions(pred, path)
        assert not path.exists()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_are_named_as_such_not_as_an_unknown_file(tmp_path, fmt):
    # `detect --format srt` output given to score or report was "not a predictions file", or for their folder "no
    # .csv prediction files": both now say that subtitles are for a player and which files are read instead
    from mgrec.evaluate.subtitles import write_subtitles

    found = {"v1": [detection("v1", 1.0, 2.0, 0, 0.9)]}
    folder = tmp_path / "subtitles"
    folder.mkdir()
    (written,) = write_subtitles(found, folder, fmt)
    with pytest.raises(InputError, match=rf"{re.escape(str(written))}: subtitles \(`mgrec detect --format srt` or "
                                         r"`vtt`\), which are text for a player .* a results JSON"):
        load_predictions(written, CLASSES)
    with pytest.raises(InputError, match=rf"holds subtitles \(v1.{fmt}, ...: `mgrec detect --format {fmt}`\) and no "
                                         r".csv prediction files; subtitles are text for a player"):
        load_predictions(folder, CLASSES, fps=30.0)
    other = tmp_path / "notes.txt"
    other.write_text("1 apple\n2 pears\n")
    with pytest.raises(InputError, match="not a predictions file"):
        load_predictions(other, CLASSES)


def test_names_of_another_kind_in_the_block_are_refused_naming_the_key(tmp_path, capsys):
    """A results JSON whose `mgrec` block records `threshold_tuned_on` (or `run`, `checkpoint`, ...) as a list or a
    number: `mgrec score` printed "tuned on [1]" and wrote the list into its scores as the split tuned on."""
    from mgrec.cli import main

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"classes": CLASSES, "database": {"v": {"subset": "test", "duration": 10.0, "fps": 10.0,
                  "annotations": [{"label": CLASSES[0], "segment": [1.0, 2.0]}]}}}))
    ranked = {"v": [detection("v", 1.0, 2.0, 0, 0.9), detection("v", 5.0, 6.0, 1, 0.2)]}
    path = tmp_path / "ranked.json"
    for key, value in (("threshold_tuned_on", [1]), ("run", 5), ("checkpoint", {"a": 1}), ("split", True)):
        save_predictions(ranked, path, info={"set": "ranked", "score_threshold": 0.5, key: value})
        with pytest.raises(InputError, match=rf"ranked.json \[mgrec.{key}\]: expected a name \(a string\) or null"):
            read_predictions_info(path)
        assert main(["score", "--gt", str(gt), "--pred", str(path)]) == 2
        assert f"[mgrec.{key}]: expected a name" in capsys.readouterr().err
    save_predictions(ranked, path, info={"set": "ranked", "score_threshold": 0.5, "threshold_tuned_on": "val"})
    assert read_predictions_info(path)["threshold_tuned_on"] == "val"


def test_json_lines_missing_their_segment_or_video_are_named_as_such(tmp_path):
    """The JSON lines of `mgrec stream` with `segment` removed (`segment(frames)` kept) or `video` removed: read as one
    JSON document, refused as "not valid JSON: Extra data" at line 2, naming nothing that was wrong."""
    line = {"video": "v", "segment": [1.0, 2.0], "segment(frames)": [10, 20], "label": CLASSES[0], "label_id": 0,
            "score": 0.9, "emitted_at": 4.0}
    path = tmp_path / "stream.jsonl"
    for key, expected in (("segment", r"stream.jsonl:1: missing 'segment'"),
                          ("video", r"stream.jsonl:1 \[video\]: expected a detection with its video id")):
        kept = {k: v for k, v in line.items() if k != key}
        path.write_text(json.dumps(kept) + "\n" + json.dumps(kept) + "\n")
        with pytest.raises(InputError, match=expected):
            load_predictions(path, CLASSES)
    path.write_text(json.dumps(line) + "\n")
    assert [d.video_id for d in load_predictions(path, CLASSES)["v"]] == ["v"]



def test_the_cut_last_line_of_a_stream_killed_while_writing_is_said_to_be_cut(tmp_path):
    """A `mgrec stream` killed mid-write left half a JSON line: `not valid JSON: Unterminated string` was all."""
    lines = [json.dumps({"video": "v", "segment": [float(k), k + 1.0], "label": CLASSES[0], "label_id": 0,
                         "score": 0.9, "emitted_at": k + 2.0}) for k in range(3)]
    path = tmp_path / "stream.jsonl"
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:25])
    with pytest.raises(InputError) as error:
        load_predictions(path, CLASSES)
    assert str(error.value).startswith(
        f"{path}:3: the last line is cut short (25 characters, then the file ends without a line break): a `mgrec "
        "stream` killed while writing an emission leaves one so. The 2 lines before it are whole: remove the cut line")
    # a mistake inside a whole last line, or a cut line followed by a line break, is named as before
    path.write_text(lines[0] + "\n" + lines[1][:25] + "\n")
    with pytest.raises(InputError, match=r"stream.jsonl:2:\d+: predictions file is not valid JSON"):
        load_predictions(path, CLASSES)
    path.write_text(lines[0] + "\n" + lines[1].replace("0.9", "0.9,,"))
    with pytest.raises(InputError, match=r"stream.jsonl:2:\d+: predictions file is not valid JSON"):
        load_predictions(path, CLASSES)
    path.write_text(lines[0] + "\n" + lines[1])  # whole, only the last line break missing: read
    assert len(load_predictions(path, CLASSES)["v"]) == 2
    path.write_text(lines[0][:25])  # the stream's one line, cut: not taken for a results JSON
    with pytest.raises(InputError, match=r"stream.jsonl:1: the last line is cut short \(25 characters, then the "
                                         r"file ends without a line break\).* Nothing before it: run the stream again"):
        load_predictions(path, CLASSES)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"classes": None}, r"^classes: expected a list of class names, got None"),
    ({"classes": "PEN"}, r"^classes: expected a list of class names, got a str"),
    ({"classes": [0, 1]}, r"^classes\[0\]: expected a class name \(a str\), got 0"),
    ({"classes": ["a", "a"]}, r"^classes\[1\]: class 'a' is listed twice"),
    ({"classes": ["a"], "fps_by_video": [25]}, r"^fps_by_video: expected a mapping \{video_id: frames per second\}"),
])
def test_load_predictions_names_an_argument_of_the_wrong_kind_before_reading(tmp_path, kwargs, message):
    # before: classes=None a raw TypeError; "PEN" read as its characters ("unknown class 'PEN'; known: PEN"); label ids
    # taken for names; fps_by_video=[25] a raw TypeError at a folder's first file
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"version": "1.0", "results": {"v": [
        {"segment": [1.0, 2.0], "label": "PEN", "score": 0.5}]}, "external_data": {}}))
    with pytest.raises(InputError, match=message):
        load_predictions(path, **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"info": [1]}, r"^info: expected a mapping \(a dict\) or None, got \[1\]"),
    ({"info": "ranked"}, r"^info: expected a mapping \(a dict\) or None, got 'ranked'"),
    ({"info": {"score_threshold": float("nan")}}, r"^info: holds a value JSON cannot write"),
    ({"info": {"durations": {"v": object()}}}, r"^info: holds a value JSON cannot write"),
    ({"info": {1: "x"}}, r"^info: key 1: expected str keys"),
    ({"info": {"mgrec_version": "9"}}, r"^info: must not hold 'mgrec_version'"),
    ({"external_data": "none"}, r"^external_data: expected a mapping \(a dict\) or None, got 'none'"),
    ({"external_data": {"used": float("inf")}}, r"^external_data: holds a value JSON cannot write"),
])
def test_save_predictions_names_an_info_block_it_cannot_write_or_read_back(tmp_path, kwargs, message):
    # before: dict()'s raw TypeError/ValueError for a list or str, the json module's ValueError for a NaN or an object,
    # a ValueError for mgrec_version; nothing is written now
    pred = {"v": [Detection("v", 1.0, 2.0, 0, "PEN", 0.5)]}
    with pytest.raises(InputError, match=message):
        save_predictions(pred, tmp_path / "p.json", **kwargs)
    assert not (tmp_path / "p.json").exists()
    save_predictions(pred, tmp_path / "ok.json", {"set": "ranked", "run": tmp_path, "score_threshold": 0.5})
    assert read_predictions_info(tmp_path / "ok.json")["run"] == str(tmp_path)


def _random_entry(rng, classes):
    """An entry of a results JSON, each field of the plain form or, now and then, of another (ints, NaN, bools,
    strings, times out of order, a label of another class, frames reversed, a key missing)."""

    def pick(plain, others):
        return plain if rng.random() < 0.8 else rng.choice(others)

    start = rng.choice([0.0, -0.0, round(rng.uniform(0, 9), 2), rng.uniform(0, 9)])
    end = start + rng.choice([0.5, 1.0, rng.uniform(0.01, 3)])
    label_id = rng.randrange(len(classes))
    entry = {
        "segment": pick([start, end], [[int(start), end], [start, start], [end, start], [-1.0, end],
                                       [start, float("inf")], [float("nan"), end], [start], "1,2", [True, end],
                                       [start, 10**400], None]),
        "score": pick(rng.choice([0.5, 0.25, rng.random()]), [1, True, float("nan"), -float("inf"), "0.5", None,
                                                             10**400]),
        "label": pick(classes[label_id], [None, classes[(label_id + 1) % len(classes)], "unknown", 1, ""]),
        "label_id": pick(label_id, [None, (label_id + 1) % len(classes), len(classes), -1, True, 1.0, "0"]),
    }
    if rng.random() < 0.5:
        frames = [int(start * 50), int(end * 50)]
        entry["segment(frames)"] = pick(frames, [frames[::-1] if frames[0] != frames[1] else [5, 4], [-1, 3],
                                                 [1.0, 3], [True, 3], [3], None, "3,4"])
    for key in list(entry):
        if rng.random() < 0.03:
            del entry[key]
    return entry if rng.random() < 0.99 else rng.choice([[], "entry", None])


def _fields(detection):
    """A Detection's fields with their types and reprs: -0.0 and 0.0, 1 and 1.0 and True differ here."""
    import dataclasses

    return [(type(value), repr(value)) for value in dataclasses.astuple(detection)]


def test_the_fast_reading_of_a_plain_entry_gives_what_the_checked_reading_gives():
    """`_parse_plain_entry` makes the Detection of an entry of the plain form without asking `_parse_entry`'s questions
    one by one (a million entries of a ranked list were read at 25 us each); on random entries, each field now and
    then of another form, it gives exactly `_parse_entry`'s Detection or leaves the entry to it (None), and never
    takes an entry `_parse_entry` refuses."""
    import random

    from mgrec.evaluate.predictions import _parse_entry, _parse_plain_entry

    rng = random.Random(0)
    class_ids = {name: i for i, name in enumerate(CLASSES)}
    fast = left = refused = 0
    for _ in range(5000):
        entry = _random_entry(rng, CLASSES)
        try:
            expected = _parse_entry(entry, lambda field: f"e{field}", "v", CLASSES, class_ids)
        except InputError:
            expected = None
        found = _parse_plain_entry(entry, "v", CLASSES, class_ids)
        if found is None:
            left += 1
            refused += expected is None
            continue
        assert expected is not None, entry
        assert _fields(found) == _fields(expected), entry
        fast += 1
    assert fast > 1000 and left - refused > 100 and refused > 1000  # each way was taken


def test_predictions_and_what_the_file_records_come_from_one_parse(tmp_path, monkeypatch):
    """`mgrec score` read a results JSON twice, for its detections and for its `mgrec` block: 180 MB parsed twice for
    a ranked list of a million detections. `load_predictions_with_info` parses it once and gives what the two
    readers give; a bad detection is named before a bad block, as when they were called in turn."""
    import mgrec.evaluate.predictions as predictions_module
    from mgrec.evaluate.predictions import load_predictions_with_info

    pred = {"a": [detection("a", 1.0, 2.0, 1, 0.5, (50, 100)), detection("a", 0, 3, 2, 1, None)], "b": []}
    path = tmp_path / "ranked.json"
    save_predictions(pred, path, info={"set": "ranked", "score_threshold": 0.25})
    parsed = []
    read_json = predictions_module.read_json
    monkeypatch.setattr(predictions_module, "read_json", lambda *args: parsed.append(args) or read_json(*args))
    found, info = load_predictions_with_info(path, CLASSES)
    assert len(parsed) == 1
    monkeypatch.undo()
    assert found == load_predictions(path, CLASSES) == pred
    assert info == read_predictions_info(path) and info["score_threshold"] == 0.25
    table = tmp_path / "table.csv"
    save_predictions_csv(pred, table)
    assert load_predictions_with_info(table, CLASSES) == (load_predictions(table, CLASSES), {})
    document = json.loads(path.read_text())
    document["results"]["a"][1]["score"] = "high"
    document[MGREC_KEY]["set"] = "all"
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=re.escape(f"{path} [results.a[1].score]: expected a finite number")):
        load_predictions_with_info(path, CLASSES)
