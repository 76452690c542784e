"""The page of a run's detections on videos without ground truth (`mgrec report RUN --detections FILE`)."""

import json
import os

import pytest
from tests.report.test_html import CLASSES, ODD_VIDEO, THRESHOLD, _detection, build_run_dir, count_bars

from mgrec.cli import main
from mgrec.config import save_config
from mgrec.errors import InputError
from mgrec.evaluate.predictions import save_predictions
from mgrec.report.detections import load_detections, write_detections_report
from mgrec.run import RunDir
from mgrec.smg_csv import write_smg_labels

RANKED = {
    "cam_1": [_detection("cam_1", 10.0, 12.0, 0, 0.9), _detection("cam_1", 10.5, 12.5, 1, 0.8),  # overlapping
              _detection("cam_1", 40.0, 41.0, 2, 0.3)],  # below the run's threshold (0.5)
    ODD_VIDEO: [_detection(ODD_VIDEO, 3.0, 7.0, 1, 0.7)],
    "cam_3": [_detection("cam_3", 1.0, 2.0, 2, 0.2)],  # nothing in its hard set
}
LENGTHS = {"cam_1": 300.0, ODD_VIDEO: 60.0, "cam_3": 30.0}


def hard_of(ranked):
    return {video: [d for d in detections if d.score >= THRESHOLD] for video, detections in ranked.items()}


@pytest.fixture
def run_dir(tmp_path):
    return build_run_dir(tmp_path)["run_dir"]


def mgrec_file(path, detections, kind):
    """A results JSON as `mgrec detect` writes it (`kind`: "hard", or "ranked" for --all)."""
    save_predictions(detections, path, info={"set": kind, "score_threshold": THRESHOLD, "class_thresholds": None,
                                              "run": "/somewhere/run", "durations": LENGTHS})
    return path


def test_a_hard_set_file_is_drawn_whole_over_each_video_s_recorded_length(run_dir, tmp_path):
    source = mgrec_file(tmp_path / "detections.json", hard_of(RANKED), "hard")
    page = write_detections_report(run_dir, source, tmp_path / "page.html").read_text(encoding="utf-8")
    bars = count_bars(page)
    assert bars.bars == {("cam_1", "det-bar"): 2, (ODD_VIDEO, "det-bar"): 1}
    assert not bars.missed and "ground truth</span>" not in page  # nothing scored, no ground-truth lanes
    assert sorted(bars.sections) == sorted(["cam_1", ODD_VIDEO, "cam_3"])  # a video without detections too
    assert {video: float(svg["data-duration"]) for video, svg in bars.timelines.items()} == LENGTHS
    lanes = {y for _, _, y in bars.geometry[("cam_1", "det-bar")]}
    assert len(lanes) == 2  # the overlapping pair, in two lanes
    assert "every detection of the file, its hard set (score ≥ 0.5)" in page
    assert "the videos' lengths, as the file records them: 6.5 minutes" in page
    assert "clip &quot;a&quot; &amp; &lt;b&gt;" in page and ODD_VIDEO not in page  # escaped
    assert "Folding &lt;arms&gt; &amp; &quot;hands&quot;" in page
    assert "/somewhere/run" in page  # the run that detected, from the file
    assert "<tr><th>network run by</th><td>PyTorch</td></tr>" in page
    # `detect --onnx` records the engine and the file, and the page says so
    save_predictions(hard_of(RANKED), tmp_path / "onnx.json", info={
        "set": "hard", "score_threshold": THRESHOLD, "run": "/somewhere/run", "durations": LENGTHS,
        "engine": "onnxruntime", "onnx": "/models/net<1>.onnx"})
    page = write_detections_report(run_dir, tmp_path / "onnx.json", tmp_path / "onnx.html").read_text(encoding="utf-8")
    assert "<tr><th>network run by</th><td>onnxruntime (<code>/models/net&lt;1&gt;.onnx</code>)</td></tr>" in page
    save_predictions(hard_of(RANKED), tmp_path / "odd.json", info={"set": "hard", "engine": ["onnxruntime"]})
    with pytest.raises(InputError, match=r"odd\.json \[mgrec\.engine\]: expected a name \(a string\) or null"):
        load_detections(run_dir, tmp_path / "odd.json")


def test_a_detections_file_whose_name_is_not_utf8_is_named_on_the_page_as_an_escape(run_dir, tmp_path):
    # a name in Latin-1 (`os.fsdecode`'s lone surrogate `\udce9`) went into the page raw, which no UTF-8 text can
    # hold: a UnicodeEncodeError traceback and no page
    source = mgrec_file(tmp_path / os.fsdecode(b"d\xe9tections.json"), hard_of(RANKED), "hard")
    page = write_detections_report(run_dir, source, tmp_path / "page.html").read_text(encoding="utf-8")
    assert "<title>mgrec detections: d\\udce9tections.json</title>" in page
    assert f"<tr><th>detections</th><td>{tmp_path}/d\\udce9tections.json</td></tr>" in page


def test_a_ranked_list_is_cut_to_the_hard_set_at_the_threshold_it_records(run_dir, tmp_path):
    source = mgrec_file(tmp_path / "ranked.json", RANKED, "ranked")
    data = load_detections(run_dir, source)
    assert {video: len(d) for video, d in data.drawn.items()} == {"cam_1": 2, ODD_VIDEO: 1, "cam_3": 0}
    assert data.bar == (THRESHOLD, None) and "ranked list cut to its hard set: score ≥ 0.5" in data.which
    # without the videos' lengths (evaluate's detections_<split>.json), a timeline spans the file's detections, those
    # below the bar too: cam_3, with nothing above it, was 1 s long, and cam_1 ended at 12.5 s, not 41
    save_predictions(RANKED, tmp_path / "no_lengths.json", info={"set": "ranked", "score_threshold": THRESHOLD})
    data = load_detections(run_dir, tmp_path / "no_lengths.json")
    assert data.durations == {"cam_1": 41.0, ODD_VIDEO: 7.0, "cam_3": 2.0}


def test_files_that_record_nothing_are_drawn_whole_and_end_at_their_last_detection(run_dir, tmp_path):
    """An SMG label folder (read at the run's fps) and a stream's JSON lines: the set and the lengths are not known."""
    RunDir(run_dir).write_recipe({"fps": 28.0, "stride": 4, "window": 16, "backbone": "b", "dim": 4, "frames": None})
    write_smg_labels(hard_of(RANKED), tmp_path / "smg", fps=28.0)  # frames, read back at the recipe's fps
    data = load_detections(run_dir, tmp_path / "smg")
    assert {video: len(d) for video, d in data.drawn.items()} == {"cam_1": 2, ODD_VIDEO: 1, "cam_3": 0}
    assert data.bar is None and "it does not say whether it holds the hard set" in data.which
    assert data.durations["cam_1"] == pytest.approx(12.5, abs=0.05) and not data.lengths_recorded
    lines = tmp_path / "stream.jsonl"
    lines.write_text("".join(json.dumps({"video": video, **d.to_json(), "emitted_at": d.end + 2.0}) + "\n"
                             for video, detections in hard_of(RANKED).items() for d in detections))
    page = write_detections_report(run_dir, lines, tmp_path / "stream.html").read_text(encoding="utf-8")
    assert count_bars(page).bars == {("cam_1", "det-bar"): 2, (ODD_VIDEO, "det-bar"): 1}
    assert "up to each video's last detection in the file (it does not record the videos' lengths)" in page

    partial = mgrec_file(tmp_path / "partial.json", hard_of(RANKED), "hard")
    document = json.loads(partial.read_text())
    del document["mgrec"]["durations"]["cam_3"]
    document["results"]["cam_1"][0]["score"] = 3.5  # another tool's logit
    partial.write_text(json.dumps(document))
    page = write_detections_report(run_dir, partial, tmp_path / "partial.html").read_text(encoding="utf-8")
    assert ("the videos' lengths where the file records them (2 of the 3 videos), and the others up to their last "
            "detection") in page
    assert "1 score(s) outside [0, 1] (another tool's logits?) are counted in the end bins" in page


def test_a_file_joined_to_itself_is_said_to_repeat_its_detections(run_dir, tmp_path, capsys):
    # another tool's results concatenated twice (or written twice): every count and rate per minute of the page was
    # doubled without a word, where `mgrec score` notes the same file
    twice = {video: detections + detections for video, detections in hard_of(RANKED).items()}
    source = tmp_path / "twice.json"
    save_predictions(twice, source)
    notes = []
    data = load_detections(run_dir, source, note=notes.append)
    words = ("3 of the 6 detections in " + str(source) + " repeat another exactly (video, class, segment and score; "
             "first: cam_1 ")
    assert data.repeats.startswith(words) and notes == [data.repeats + ": each copy is counted and drawn; a file "
                                                        "joined to itself, or written twice?"]
    page = write_detections_report(run_dir, source, tmp_path / "twice.html").read_text(encoding="utf-8")
    assert "repeat another exactly" in page and "each copy is counted and drawn" in page
    assert "repeat another exactly" in capsys.readouterr().err  # the default note, on stderr
    # a file without repeats: no word
    once = mgrec_file(tmp_path / "once.json", hard_of(RANKED), "hard")
    assert load_detections(run_dir, once, note=notes.append).repeats == "" and len(notes) == 1


def test_an_smg_folder_of_a_run_without_a_frame_rate_is_read_at_the_fps_given(run_dir, tmp_path, capsys):
    write_smg_labels(hard_of(RANKED), tmp_path / "smg", fps=28.0)
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "smg")]) == 2
    err = capsys.readouterr().err  # the way to give the rate is named: the reader's message named none
    assert "records no frame rate to read them at (no data.fps in" in err
    assert "give the videos' frame rate with --fps" in err
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "smg"), "--fps", "28"]) == 0
    page = (tmp_path / "smg.html").read_text(encoding="utf-8")
    assert count_bars(page).bars == {("cam_1", "det-bar"): 2, (ODD_VIDEO, "det-bar"): 1}
    assert main(["report", str(run_dir), "--fps", "28"]) == 2  # a run's own report: no frames to read
    assert "--fps: the frame rate of --detections' SMG label files" in capsys.readouterr().err


def test_an_smg_folder_of_videos_at_another_rate_than_the_training_features_is_read_at_the_fps_given(
        run_dir, tmp_path, capsys):
    """A run without data.fps detects videos of any rate (`mgrec detect` notes one that differs from its training
    features'), and their label files count their own frames: read at the recipe's rate, a 28-fps video's page was
    drawn at 25 fps without a word, and --fps 28 was refused for contradicting the recipe."""
    RunDir(run_dir).write_recipe({"fps": 25.0, "stride": 4, "window": 16, "backbone": "b", "dim": 4, "frames": None})
    write_smg_labels(hard_of(RANKED), tmp_path / "smg", fps=28.0)  # the videos' own 28 fps
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "smg"), "--fps", "28"]) == 0
    assert "note:" not in capsys.readouterr().err
    data = load_detections(run_dir, tmp_path / "smg", fps=28.0)
    assert data.durations["cam_1"] == pytest.approx(12.5, abs=0.05)  # the gesture's own end, not 12.5 * 28 / 25
    notes = []
    guessed = load_detections(run_dir, tmp_path / "smg", note=notes.append)  # no --fps: the recipe's, said
    assert guessed.durations["cam_1"] == pytest.approx(12.5 * 28 / 25, abs=0.05)
    assert len(notes) == 1 and "read at 25 fps, the rate of the features" in notes[0] and "--fps" in notes[0]
    # --fps of a file in seconds was passed over without a word
    source = mgrec_file(tmp_path / "detections.json", hard_of(RANKED), "hard")
    assert main(["report", str(run_dir), "--detections", str(source), "--fps", "28"]) == 2
    assert "holds segments in seconds" in capsys.readouterr().err
    # a run whose data.fps sets every video's rate: another is refused, naming the setting
    config = RunDir(run_dir).read_config()
    config.data.fps = 25.0
    save_config(config, RunDir(run_dir).config_path)
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "smg"), "--fps", "28"]) == 2
    assert "fps 28 (--fps): the run's videos are 25 fps (its data.fps" in capsys.readouterr().err


def test_the_command_writes_beside_the_file_and_refuses_what_does_not_apply(run_dir, tmp_path, capsys):
    source = mgrec_file(tmp_path / "detections.json", hard_of(RANKED), "hard")
    before = source.read_bytes()
    assert main(["report", str(run_dir), "--detections", str(source)]) == 0
    assert (tmp_path / "detections.html").is_file() and source.read_bytes() == before
    assert f"report: {tmp_path / 'detections.html'}" in capsys.readouterr().out
    assert main(["report", str(run_dir), "--detections", str(source), "--split", "val"]) == 2
    assert "--split: a page of --detections has no split" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--detections", str(source), "--out", str(source)]) == 2
    assert "would overwrite" in capsys.readouterr().err and source.read_bytes() == before
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "none.json")]) == 2
    assert f"--detections {tmp_path / 'none.json'}: no such file or folder" in capsys.readouterr().err
    for key, value, said in (("score_threshold", "high", "expected a finite number"),
                             ("durations", {"cam_1": -5}, "durations.cam_1]: expected a video's length in seconds"),
                             ("durations", {"cam_1": 1e300}, "durations.cam_1]: expected a video's length in seconds"),
                             ("durations", [300.0], "durations]: expected an object")):
        edited = json.loads(before)
        edited["mgrec"][key] = value
        (tmp_path / "edited.json").write_text(json.dumps(edited))
        assert main(["report", str(run_dir), "--detections", str(tmp_path / "edited.json")]) == 2
        printed = capsys.readouterr().err
        assert f"edited.json [mgrec.{key}" in printed and said in printed, printed
        assert not (tmp_path / "edited.html").exists()


def test_class_names_with_matplotlib_math_draw(run_dir, tmp_path):
    """CLASSES holds "$\\frac{$": the histogram's legend must draw it as text (math mode fails to parse it)."""
    assert "$" in CLASSES[2]
    source = mgrec_file(tmp_path / "d.json", {"v": [_detection("v", 1.0, 2.0, 2, 0.9)]}, "hard")
    assert write_detections_report(run_dir, source, tmp_path / "d.html").stat().st_size > 0


def test_a_detection_past_its_video_s_recorded_length_is_refused_not_drawn_past_it(run_dir, tmp_path, capsys):
    """The page said its timelines span "the videos' lengths, as the file records them" while one ran 49991 s past
    a 10 s video's recorded length (and counted 833 minutes where the file records 6.5)."""
    source = mgrec_file(tmp_path / "detections.json", hard_of(RANKED), "hard")
    edited = json.loads(source.read_text())
    edited["results"]["cam_3"] = [{"segment": [50000.0, 50001.0], "label": CLASSES[0], "label_id": 0, "score": 0.9}]
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert main(["report", str(run_dir), "--detections", str(tmp_path / "edited.json")]) == 2
    printed = capsys.readouterr().err
    assert "edited.json [mgrec.durations.cam_3]: expected the video's length in seconds, at least the end of its " \
           "detections; got 30, and its detection 'Arms akimbo' at 50000–50001 s ends 49971 s past it" in printed
    assert not (tmp_path / "edited.html").exists()
    edited["results"]["cam_3"][0]["segment"] = [29.0, 30.0]  # up to the video's end: drawn
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert load_detections(run_dir, tmp_path / "edited.json").durations["cam_3"] == 30.0


def test_detections_that_are_no_file_or_folder_are_named_for_what_they_are(run_dir, tmp_path, capsys, monkeypatch):
    """A link to a file gone was "no such file or folder"; a pipe (`--detections /dev/stdin` after `|`) was refused
    as an output `/proc/PID/fd/pipe:[N].html`; the root folder a `ValueError` traceback (no name to give the page)."""
    monkeypatch.chdir(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    (tmp_path / "gone.json").symlink_to(tmp_path / "mnt" / "det.json")
    os.mkfifo(tmp_path / "pipe.json")
    for given, said in (("gone.json", f"a symbolic link to {tmp_path / 'mnt' / 'det.json'}, which does not exist"),
                        ("pipe.json", "a named pipe, not a predictions file or folder"),
                        ("/", "the root folder gives no name to the page; give --out PAGE.html")):
        assert main(["report", str(run_dir), "--detections", given]) == 2
        assert f"--detections {given}: {said}" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*before, "gone.json", "pipe.json"])  # no page
    # a folder's page is named after the folder, whole, beside it or in the --out folder alike
    RunDir(run_dir).write_recipe({"fps": 28.0, "stride": 4, "window": 16, "backbone": "b", "dim": 4, "frames": None})
    write_smg_labels(hard_of(RANKED), tmp_path / "sub.v2", fps=28.0)
    (tmp_path / "pages").mkdir()
    for out in ([], ["--out", "pages"]):
        assert main(["report", str(run_dir), "--detections", "sub.v2", *out]) == 0
    assert (tmp_path / "sub.v2.html").is_file() and (tmp_path / "pages" / "sub.v2.html").is_file()


def test_the_histogram_s_line_is_named_for_where_its_threshold_comes_from(run_dir, tmp_path):
    """A file detected by another run at 0.7 (this run's threshold: 0.5): its line was captioned "the run's
    threshold (0.7)", a threshold this run does not have."""
    source = tmp_path / "other.json"
    save_predictions(hard_of(RANKED), source, info={"set": "hard", "score_threshold": 0.7, "class_thresholds": None})
    page = write_detections_report(run_dir, source, tmp_path / "other.html").read_text(encoding="utf-8")
    assert "the line is the threshold the file records (0.7)." in page and "run's threshold" not in page
    save_predictions(RANKED, source, info={"set": "ranked"})  # it records none: cut, and drawn, at the run's
    page = write_detections_report(run_dir, source, tmp_path / "other.html").read_text(encoding="utf-8")
    assert "the line is the run's threshold (0.5)." in page
