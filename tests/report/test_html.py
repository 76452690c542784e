"""The HTML report and `analyze_run`, built from a hand-made run directory."""

import base64
import copy
import html
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mgrec.config import BalanceConfig, Config, DataConfig, save_config
from mgrec.data.annotations import load_annotations, save_annotations
from mgrec.errors import InputError
from mgrec.evaluate.predictions import load_predictions, save_predictions
from mgrec.evaluate.scoring import score
from mgrec.records import AnnotationSet, Detection, Segment, VideoInfo
from mgrec.report.html import analyze_run, assign_lanes, threshold_origin, write_report
from mgrec.run import RunDir

# Hostile names: HTML in one, matplotlib math ("$...$", which fails to parse) in another.
CLASSES = ["Arms akimbo", "Folding <arms> & \"hands\"", "Moving $\\frac{$ legs"]
PROVENANCE = {"command": "mgrec evaluate run --split test <x>", "date": "2026-01-02T03:04:05+00:00",
              "git_commit": "0123456789abcdef0123+dirty", "machine": "Test CPU <4 cores>", "torch": "2.13.0+cpu",
              "threads": 4, "mgrec": "9.8.7"}
ODD_VIDEO = 'clip "a" & <b>'
THRESHOLD = 0.5


def _segment(video, start, end, label_id):
    return Segment(video, start, end, label_id, CLASSES[label_id])


def _detection(video, start, end, label_id, score_value):
    return Detection(video, start, end, label_id, CLASSES[label_id], score_value)


def build_run_dir(root: Path, augment_alpha: int | None = 4, with_metrics: bool = True,
                  with_provenance: bool = True) -> dict:
    """A run directory as `mgrec train` + `mgrec evaluate` leave it, with the expected bar counts.

    Returns {"run_dir", "annotations", "gt_bars": {video: n}, "det_bars": {video: n}, "missed": ...,
    "det_lanes": {video: n}}. Without provenance, eval_test.json is as older versions wrote it.
    """
    run_dir = root / "run"
    run_dir.mkdir(parents=True)
    videos = {
        "Sample0001": VideoInfo("Sample0001", "train", 28.0, 300.0),
        "Sample0002": VideoInfo("Sample0002", "train", 28.0, 300.0),
        "Sample0036": VideoInfo("Sample0036", "test", 28.0, 120.0),
        ODD_VIDEO: VideoInfo(ODD_VIDEO, "test", 25.0, 60.0),
        "Sample0040": VideoInfo("Sample0040", "test", 28.0, 90.0),
    }
    segments = {
        "Sample0001": [_segment("Sample0001", 10.0 * i, 10.0 * i + 2, 2) for i in range(9)] + [
            _segment("Sample0001", 200.0, 203.0, 1)
        ],
        "Sample0002": [_segment("Sample0002", 5.0, 8.0, 0), _segment("Sample0002", 50.0, 52.0, 0)],
        "Sample0036": [
            _segment("Sample0036", 10.0, 12.0, 0),  # found
            _segment("Sample0036", 30.0, 34.0, 1),  # missed: only a low-score detection
            _segment("Sample0036", 60.0, 61.5, 2),  # found
        ],
        ODD_VIDEO: [_segment(ODD_VIDEO, 5.0, 9.0, 1)],  # found
        "Sample0040": [],  # no segments, one false positive
    }
    annotations = root / "annotations.json"
    save_annotations(AnnotationSet(classes=list(CLASSES), videos=videos, segments=segments), annotations)
    ranked = {
        "Sample0036": [
            _detection("Sample0036", 10.1, 12.0, 0, 0.9),
            _detection("Sample0036", 10.5, 12.0, 1, 0.85),  # overlaps the one above: a lane of its own
            _detection("Sample0036", 60.0, 61.4, 2, 0.8),
            _detection("Sample0036", 70.0, 75.0, 0, 0.6),  # false positive in the hard set
            _detection("Sample0036", 30.0, 34.0, 1, 0.2),  # below the threshold
        ],
        ODD_VIDEO: [_detection(ODD_VIDEO, 5.0, 9.5, 1, 0.7)],
        "Sample0040": [_detection("Sample0040", 1.0, 3.0, 2, 0.55), _detection("Sample0040", 4.0, 5.0, 2, 0.1)],
    }
    save_predictions(ranked, run_dir / "detections_test.json")
    gt = {v: segments[v] for v in ("Sample0036", ODD_VIDEO, "Sample0040")}
    scores = score(gt, ranked, CLASSES, THRESHOLD, split="test")
    if with_provenance:
        scores.update({"checkpoint": "best", "threshold_tuned_on": "val", "run": str(run_dir),
                       "provenance": PROVENANCE})
        RunDir(run_dir).write_tuning({"score_threshold": THRESHOLD, "tuned_on": "val", "selected_epoch": 3})
    (run_dir / "eval_test.json").write_text(json.dumps(scores))
    balance = BalanceConfig("eq1", augment_alpha) if augment_alpha is not None else BalanceConfig()
    save_config(Config(name="demo-run", data=DataConfig(annotations=str(annotations)), balance=balance),
                run_dir / "config.yaml")
    (run_dir / "classes.json").write_text(json.dumps(CLASSES))
    if with_metrics:
        lines = [{"kind": "train", "epoch": e, "step": 10 * (e + 1), "loss": 1.0 / (e + 1), "cls_loss": 0.6 / (e + 1),
                  "reg_loss": 0.4 / (e + 1), "lr": 1e-4, "seconds": 1.0} for e in range(4)]
        lines += [{"kind": "val", "epoch": e, "step": 10 * (e + 1), "f1": 0.1 * e, "precision": 0.2, "recall": 0.2,
                   "f1_miga": 0.1, "average_mAP": 0.05 * e, "score_threshold": 0.4} for e in (1, 3)]
        shares = [1 / len(CLASSES)] * len(CLASSES)
        lines += [{"kind": "balance", "epoch": e, "step": 10 * e, "method": "eq1", "class_weights": [1.0] * len(shares),
                   "crop_shares": shares} for e in range(4)] * (augment_alpha is not None)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "run_dir": run_dir,
        "annotations": annotations,
        "gt_bars": {"Sample0036": 3, ODD_VIDEO: 1, "Sample0040": 0},
        "det_bars": {"Sample0036": 4, ODD_VIDEO: 1, "Sample0040": 1},
        "missed": {"Sample0036": {"gt-bar": 1, "det-bar": 2}, ODD_VIDEO: {"gt-bar": 0, "det-bar": 0},
                   "Sample0040": {"gt-bar": 0, "det-bar": 1}},
        "det_lanes": {"Sample0036": 2, ODD_VIDEO: 1, "Sample0040": 1},
    }


class RectCounter(HTMLParser):
    """Counts <rect class="gt-bar|det-bar ..."> per (video: its <svg class="timeline" data-video=...>, kind), and
    missed ones."""

    def __init__(self):
        super().__init__()
        self.bars: dict[tuple[str, str], int] = {}
        self.missed: dict[tuple[str, str], int] = {}
        self.sections: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.geometry: dict[tuple[str, str], list[tuple[float, float, float]]] = {}  # (start, end, y) per bar
        self.timelines: dict[str, dict[str, str]] = {}  # video -> attributes of its <svg class="timeline">

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.attributes.extend((name, value or "") for name, value in attrs)
        if tag == "section" and "video" in (attributes.get("class") or ""):
            self.sections.append(attributes["data-video"])
        if tag == "svg" and "timeline" in (attributes.get("class") or ""):
            self.timelines[attributes["data-video"]] = attributes
            self.video = attributes["data-video"]  # its bars' video
        if tag != "rect":
            return
        classes = (attributes.get("class") or "").split()
        for kind in ("gt-bar", "det-bar"):
            if kind in classes:
                key = (self.video, kind)
                self.bars[key] = self.bars.get(key, 0) + 1
                start, width = float(attributes["x"]), float(attributes["width"])
                self.geometry.setdefault(key, []).append((start, start + width, float(attributes["y"])))
                if "miss" in classes:
                    self.missed[key] = self.missed.get(key, 0) + 1


def count_bars(page: str) -> RectCounter:
    counter = RectCounter()
    counter.feed(page)
    return counter


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = build_run_dir(tmp_path_factory.mktemp("report"))
    path = write_report(run["run_dir"])
    return run, path, path.read_text(encoding="utf-8")


def test_report_is_written_next_to_the_run(built):
    run, path, page = built
    assert path == run["run_dir"] / "report_test.html"
    assert page.startswith("<!DOCTYPE html>")


def test_report_references_nothing_outside_the_file(built):
    _, _, page = built
    assert "http://" not in page and "https://" not in page
    counter = count_bars(page)
    for name, value in counter.attributes:
        if name in ("src", "href"):
            assert value.startswith(("data:", "#")), (name, value[:60])
    assert "@import" not in page and "url(" not in page


def test_every_video_has_its_timeline_with_the_right_bars(built):
    run, _, page = built
    counter = count_bars(page)
    assert sorted(counter.sections) == sorted(run["gt_bars"])
    for video, expected in run["gt_bars"].items():
        assert counter.bars.get((video, "gt-bar"), 0) == expected, video
    for video, expected in run["det_bars"].items():
        assert counter.bars.get((video, "det-bar"), 0) == expected, video
    for video, kinds in run["missed"].items():
        for kind, expected in kinds.items():
            assert counter.missed.get((video, kind), 0) == expected, (video, kind)


def test_counts_of_one_are_singular_in_the_page(built):
    # a video's timeline with one ground-truth segment said "1 segments", and a split of one video "1 videos"
    from types import SimpleNamespace

    from mgrec.report.html import _headline

    _, _, page = built
    assert "1 segment (1 found)" in page and "0 segments (0 found)" in page and " 1 segments" not in page
    scores = {"f1": 0.5, "f1_miga": 0.5, "precision": 0.5, "recall": 0.5, "average_mAP": 0.5, "mAP": {0.5: 0.5},
              "num_predictions": 2}
    one = SimpleNamespace(ground_truth={"v": [object()]}, ranked={"v": [object(), object()]})
    line = _headline(scores, one, SimpleNamespace(matches=[], bar="0.5"))
    assert "1 video, 1 ground-truth segment; F1" in line and "the hard set misses the one segment: the" in line


def test_text_from_the_data_is_escaped(built):
    _, _, page = built
    assert ODD_VIDEO not in page and CLASSES[1] not in page
    assert 'clip &quot;a&quot; &amp; &lt;b&gt;' in page
    assert "Folding &lt;arms&gt; &amp; &quot;hands&quot;" in page
    # the parser gives the original id back from the attribute
    assert ODD_VIDEO in count_bars(page).sections


BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def test_bidi_controls_in_data_text_are_shown_as_escapes(tmp_path, monkeypatch):
    """A video id or class name holding a bidi override or isolate would reverse the page's text after
    it (another id, class or score shown than the data holds): the page and its figures show escapes."""
    module = sys.modules[__name__]  # build_run_dir reads the names from here
    monkeypatch.setattr(module, "ODD_VIDEO", "clip \u202eevil\u2066 x\u2069")
    monkeypatch.setattr(module, "CLASSES", [CLASSES[0] + " \u202bR", *CLASSES[1:]])
    run = build_run_dir(tmp_path)
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert not BIDI.search(page)
    assert "<h3>clip \\u202eevil\\u2066 x\\u2069<span" in page
    assert "Arms akimbo \\u202bR" in page
    figures = [base64.b64decode(data).decode("utf-8")
               for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]
    assert not any(BIDI.search(svg) for svg in figures)
    assert any("Arms akimbo \\u202bR" in svg for svg in figures)


def test_line_breaks_and_tabs_in_data_text_are_shown_as_escapes(tmp_path, monkeypatch):
    """A class `a\\nb` or a video id with a tab was shown as a space (another name than the data holds, and one
    that another class or video may have); the page and its figures show `\\n` and `\\t`, the config its lines."""
    module = sys.modules[__name__]  # build_run_dir reads the names from here
    monkeypatch.setattr(module, "ODD_VIDEO", "clip\tx\ny")
    monkeypatch.setattr(module, "CLASSES", [CLASSES[0] + "\nR", *CLASSES[1:]])
    run = build_run_dir(tmp_path)
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert "<h3>clip\\tx\\ny<span" in page and 'data-video="clip\\tx\\ny"' in page
    assert "Arms akimbo\\nR" in page and "Arms akimbo\nR" not in page
    assert "\t" not in page
    figures = [base64.b64decode(data).decode("utf-8")
               for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]
    assert any("Arms akimbo\\nR" in svg for svg in figures)
    assert not any("Arms akimbo\nR" in svg for svg in figures)
    config = re.search(r'<pre class="config">(.*?)</pre>', page, re.S).group(1)
    assert config.count("\n") == (run["run_dir"] / "config.yaml").read_text(encoding="utf-8").count("\n")


def test_hover_text_has_class_times_score_tiou_and_match(built):
    _, _, page = built
    assert "Arms akimbo · 10.10–12.00 s · score 0.900 · best tIoU 0.95 with Arms akimbo · matched" in page
    assert "Arms akimbo · 70.00–75.00 s · score 0.600 · best tIoU 0.00 with Arms akimbo · not matched" in page
    assert "ground truth · missed" in page


def test_headline_table_and_figures(built):
    run, _, page = built
    scores = json.loads((run["run_dir"] / "eval_test.json").read_text())
    assert f'<div class="value">{100 * scores["f1"]:.2f}</div>' in page
    assert f'<div class="value">{100 * scores["average_mAP"]:.2f}</div>' in page
    assert page.count('<tr><td class="num">') == len(CLASSES)
    # F1-threshold and PR curves, confusion, 2 x 3 error-analysis figures, class histogram, training curves, balancing
    assert page.count('src="data:image/svg+xml;base64,') == 12
    assert "the crop anchors they weigh after class balancing (eq1, α = 4; paper Eq. 1)" in page
    assert "What the class balancer did" in page
    assert page.count("<script>") == 2


@pytest.mark.slow
def test_augmentation_off_and_no_metrics_are_stated(tmp_path):
    run = build_run_dir(tmp_path, augment_alpha=None, with_metrics=False)
    page = write_report(run["run_dir"], out=tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert "class balancing off" in page
    assert "No metrics.jsonl" in page


@pytest.mark.slow
def test_missing_or_bad_inputs_are_input_errors(tmp_path):
    run = build_run_dir(tmp_path)
    with pytest.raises(InputError, match="no videos in split 'nope'"):
        write_report(run["run_dir"], split="nope")
    (run["run_dir"] / "metrics.jsonl").write_text('{"kind": "train", "epoch": 0}\nnot json\n')
    with pytest.raises(InputError, match=r"metrics.jsonl:2"):
        write_report(run["run_dir"])
    (run["run_dir"] / "eval_test.json").unlink()
    with pytest.raises(InputError, match="eval_test.json: not found"):
        write_report(run["run_dir"])
    with pytest.raises(InputError, match="data.annotations"):
        write_report(run["run_dir"], annotations=tmp_path / "missing.json")


def test_edited_scores_or_detections_are_refused_by_key(tmp_path):
    """Values of the wrong kind were tracebacks (ValueError, AttributeError, IndexError) or shown as they were
    (F1 7.0 as 700 %); a detections file that no longer matches the scores gave a page contradicting itself."""
    import json
    import shutil

    run = build_run_dir(tmp_path / "made")
    scores_path, detections_path = run["run_dir"] / "eval_test.json", run["run_dir"] / "detections_test.json"
    scores, detections = json.loads(scores_path.read_text()), json.loads(detections_path.read_text())
    name = next(iter(scores["per_class"]))
    edits = {
        "f1": ({**scores, "f1": "0.7"}, r"\[f1\]: expected a number in \[0, 1\]"),
        "f1 above one": ({**scores, "f1": 7.0}, r"\[f1\]: expected a number in \[0, 1\]"),
        "mAP": ({**scores, "mAP": [1, 2]}, r"\[mAP\]: expected a mapping"),
        "per_class": ({**scores, "per_class": []}, r"\[per_class\]: expected a mapping"),
        "label_id": ({**scores, "per_class": {**scores["per_class"], name: {**scores["per_class"][name],
                                                                             "label_id": 9}}},
                     rf"\[per_class.{name}\]: expected label_id in \[0, "),
        "confusion": ({**scores, "confusion": None}, r"\[confusion.labels\]: expected the names of the run's"),
        "matrix": ({**scores, "confusion": {**scores["confusion"], "matrix": [[1]]}}, r"\[confusion.matrix\]"),
        # each of these was a traceback (KeyError, ValueError, AttributeError), or an empty table shown as if true
        "no labels": ({**scores, "confusion": {k: v for k, v in scores["confusion"].items() if k != "labels"}},
                      r"\[confusion.labels\]"),
        "one label": ({**scores, "confusion": {**scores["confusion"], "labels": ["class00"]}}, r"\[confusion.labels\]"),
        "background": ({**scores, "confusion": {**scores["confusion"], "background": [1]}},
                       r"\[confusion.background\]: expected \d+ counts"),
        "background text": ({**scores, "confusion": {**scores["confusion"], "background": "x"}},
                            r"\[confusion.background\]"),
        "gates": ({**scores, "fusion_gates": [1, 2]}, r"\[fusion_gates\]: expected per_class"),
        "gate text": ({**scores, "fusion_gates": {"per_class": {name: "high"}, "background": None, "streams": ["a"],
                                                   "videos": 1}}, r"\[fusion_gates\]"),
        "no classes": ({**scores, "per_class": {}},
                       r"\[per_class\]: expected the scores of each of the run.s classes .*Arms akimbo. has none"),
        "no mAP": ({**scores, "mAP": {}}, r"\[mAP\]: expected a mapping"),
    }
    for case, (edited, message) in edits.items():
        scores_path.write_text(json.dumps(edited))
        with pytest.raises(InputError, match=r"eval_test.json " + message):
            write_report(run["run_dir"])
    # the MiGA rule's precision and F1 may pass 1 (one prediction finds two segments): an unedited file
    # (its F1 made of its precision and recall, as `read_eval` checks)
    recall_miga = scores["recall_miga"]
    scores_path.write_text(json.dumps({**scores, "precision_miga": 2.0,
                                       "f1_miga": 2 * 2.0 * recall_miga / (2.0 + recall_miga)}))
    write_report(run["run_dir"])
    scores_path.write_text(json.dumps(scores))
    # every video's detections removed, its entry kept (without the entries: `check_evaluated_detections`)
    detections_path.write_text(json.dumps({**detections, "results": {v: [] for v in detections["results"]}}))
    with pytest.raises(InputError, match=r"detections_test.json and .*eval_test.json do not agree"):
        write_report(run["run_dir"])
    shutil.rmtree(tmp_path / "made")


def test_a_split_without_ground_truth_is_named_with_the_annotations_file(tmp_path, capsys):
    """The analysis said only "no ground-truth segments", naming neither the split nor the file."""
    from mgrec.cli import main

    run = build_run_dir(tmp_path)
    document = json.loads(run["annotations"].read_text(encoding="utf-8"))
    for entry in document["database"].values():
        if entry["subset"] == "test":
            entry["annotations"] = []
    unlabelled = tmp_path / "copy.json"
    unlabelled.write_text(json.dumps(document), encoding="utf-8")
    expected = f"{unlabelled}: no ground-truth segments in split 'test' (3 videos, none labelled)"
    for command in ("report", "analyze"):
        assert main([command, str(run["run_dir"]), "--annotations", str(unlabelled)]) == 2
        assert expected in capsys.readouterr().err, command


def test_the_report_of_an_ensemble_of_other_configs_says_how_they_differ_and_whose_config_it_shows(tmp_path):
    # an ensemble's config.yaml is its first member's: its report showed it as "the resolved config the run was
    # trained with" (lr 0.001) for an ensemble of an lr 1e-3 and an lr 3e-4 run, without a word
    from mgrec.config import TrainConfig, load_config, to_dict
    from mgrec.report.html import load_run, training_data

    run = build_run_dir(tmp_path)
    members = []
    for index, lr in enumerate((1e-3, 3e-4)):
        save_config(Config(name=f"m{index}", seed=index, data=DataConfig(annotations=str(run["annotations"])),
                           train=TrainConfig(lr=lr)), tmp_path / "member.yaml")
        members.append(to_dict(load_config(tmp_path / "member.yaml")))
    (run["run_dir"] / "run.json").write_text(json.dumps({"format": 16, "ensemble": {
        "members": 2, "sources": ["a", "b"], "member_configs": members}}))
    said = training_data(load_run(run["run_dir"]))
    assert said == ("an ensemble of 2 runs: a, b; its members' configs differ (train.lr 0.001, 0.0003): config.yaml "
                    "below is the first member's")
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert "<summary>config.yaml: the resolved config of the ensemble's first member</summary>" in page
    # members of one config (seeds): nothing to say of them
    (run["run_dir"] / "run.json").write_text(json.dumps({"format": 16, "ensemble": {
        "members": 2, "sources": ["a", "b"], "member_configs": [members[0], {**members[0], "seed": 7}]}}))
    assert training_data(load_run(run["run_dir"])) == "an ensemble of 2 runs: a, b"


def test_report_on_annotations_the_run_was_not_scored_against_is_refused(tmp_path):
    """`report --annotations OTHER` showed eval_test.json's scores (on the run's own annotations) beside OTHER's
    ground truth: a recall of 81 % over 8 segments that the detections find 5 of."""
    run = build_run_dir(tmp_path)
    document = json.loads(run["annotations"].read_text(encoding="utf-8"))
    test_videos = [v for v, entry in document["database"].items() if entry["subset"] == "test"]
    other = tmp_path / "other.json"
    dropped = copy.deepcopy(document)
    first = next(v for v in test_videos if dropped["database"][v]["annotations"])
    dropped["database"][first]["annotations"] = dropped["database"][first]["annotations"][1:]
    other.write_text(json.dumps(dropped), encoding="utf-8")
    with pytest.raises(InputError, match=rf"eval_test.json was not scored against {re.escape(str(other))}: it counts "
                                         r"\d+ instances of split 'test'.*mgrec score --gt "):
        write_report(run["run_dir"], annotations=other)
    with pytest.raises(InputError, match="was not scored against"):  # `analyze` too (it replaced the run's analysis)
        analyze_run(run["run_dir"], annotations=other)
    assert not (run["run_dir"] / "analysis").exists()
    moved = copy.deepcopy(document)  # as many instances of each class, one of them elsewhere: found by none
    segment = next(item for v in test_videos for item in moved["database"][v]["annotations"])
    segment["segment"] = [0.0, 0.5]
    segment.pop("segment(frames)", None)
    other.write_text(json.dumps(moved), encoding="utf-8")
    with pytest.raises(InputError, match=r"was not scored against"):
        write_report(run["run_dir"], annotations=other)
    # the same counts and finds, other times: a gesture's end 1 ms later (found as before) was taken for the file's
    shifted = copy.deepcopy(document)
    segment = next(item for v in test_videos for item in shifted["database"][v]["annotations"])
    segment["segment"] = [segment["segment"][0], segment["segment"][1] + 0.001]
    segment.pop("segment(frames)", None)
    other.write_text(json.dumps(shifted), encoding="utf-8")
    with pytest.raises(InputError, match=rf"eval_test.json was not scored against {re.escape(str(other))}: the same "
                                         r"\d+ instances of split 'test', \d+ found, but other videos, times or labels "
                                         r"\(its ground_truth_sha256 is not this file's\); report the run on the "
                                         r"annotations it was evaluated on .*mgrec score --gt "):
        write_report(run["run_dir"], annotations=other)
    with pytest.raises(InputError, match="ground_truth_sha256 is not this file's"):
        analyze_run(run["run_dir"], annotations=other)
    other.write_text(json.dumps(document), encoding="utf-8")  # the same annotations under another name: as before
    write_report(run["run_dir"], annotations=other, out=tmp_path / "same.html")
    analyze_run(run["run_dir"], annotations=other)
    analysis = json.loads((run["run_dir"] / "analysis" / "test_analysis.json").read_text(encoding="utf-8"))
    assert analysis["annotations"] == str(other)  # which ground truth the figures were drawn against


@pytest.mark.slow
def test_analyze_run_writes_figures_and_numbers(tmp_path):
    run = build_run_dir(tmp_path)
    paths = analyze_run(run["run_dir"])
    names = sorted(p.name for p in paths)
    stems = [f"{prefix}{stem}" for prefix in ("", "hard_set_") for stem in ("false_negatives", "false_positives",
                                                                             "sensitivity")]
    assert names == sorted(
        [f"test_{stem}.{ext}" for stem in [*stems, "f1_threshold", "pr_curves"] for ext in ("png", "svg")]
        + ["test_analysis.json"]
    )
    assert all(p.parent == run["run_dir"] / "analysis" and p.stat().st_size > 0 for p in paths)
    summary = json.loads((run["run_dir"] / "analysis" / "test_analysis.json").read_text())
    assert summary["score_threshold"] == THRESHOLD
    ranked, hard = summary["ranked_list"], summary["hard_set"]
    assert ranked["which"] == "ranked list" and hard["which"] == "hard set"
    assert ranked["num_ground_truth"] == 4 and ranked["num_predictions"] == 8
    assert hard["num_predictions"] == 6 and hard["score_threshold"] == THRESHOLD
    # every test segment is found at tIoU 0.5 (the 30-34 s one by a detection below the F1 threshold) ...
    lengths = ranked["characteristics"]["length"]
    assert sum(lengths["gt_counts"]) == 4
    assert all(rate in (None, 0.0) for rate in lengths["false_negative_rates"])
    # ... but the hard set misses that one, as F1 and the timelines do
    assert hard["num_missed"] == 1 == sum(run["missed"][v]["gt-bar"] for v in run["missed"])
    # G = 1, 2, 1 for classes 0, 1, 2, so slice k holds ranks k of classes 0 and 2 and ranks 2k-1, 2k of
    # class 1 (0.85: a wrong label over the class-0 segment; 0.7 and 0.2: matches)
    counts = [{k: v for k, v in c.items() if v} for c in ranked["false_positives"]["counts"]]
    assert counts[:4] == [{"true_positive": 3, "wrong_label": 1}, {"true_positive": 1, "background": 2},
                          {"background": 1}, {}]
    assert re.match(rb"\x89PNG", (run["run_dir"] / "analysis" / "test_sensitivity.png").read_bytes()[:4])

    # the same analysis of any predictions file: `mgrec score --analysis` on the run's detections (a file that
    # records its threshold, as any run's ranked list does) against its annotations
    from mgrec.cli import main

    out = tmp_path / "of the file"
    assert main(["score", "--gt", str(run["annotations"]), "--pred", str(run["run_dir"] / "detections_test.json"),
                 "--score-threshold", str(THRESHOLD), "--analysis", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == names
    of_file = json.loads((out / "test_analysis.json").read_text())
    assert of_file["predictions"] == str(run["run_dir"] / "detections_test.json")
    assert {k: v for k, v in of_file.items() if k != "predictions"} == {k: v for k, v in summary.items()
                                                                         if k != "checkpoint"}
    assert summary["checkpoint"] == "best"
    assert main(["score", "--gt", str(run["annotations"]), "--pred", str(run["run_dir"] / "detections_test.json"),
                 "--analysis", str(run["run_dir"])]) == 2  # a run's folder is not a place for other files

    # the last checkpoint's evaluation (`evaluate --checkpoint last`) is analysed beside the best's, not over it
    last_ranked = {video: items[:1] for video, items in load_predictions(run["run_dir"] / "detections_test.json",
                                                                        CLASSES).items()}
    save_predictions(last_ranked, run["run_dir"] / "detections_test_last.json")
    gt = load_annotations(run["annotations"]).segments
    last_scores = score({v: gt[v] for v in last_ranked}, last_ranked, CLASSES, THRESHOLD, split="test")
    last_scores.update({"checkpoint": "last", "threshold_tuned_on": "val", "run": str(run["run_dir"])})
    (run["run_dir"] / "eval_test_last.json").write_text(json.dumps(last_scores))
    assert main(["analyze", str(run["run_dir"]), "--checkpoint", "last"]) == 0
    last = json.loads((run["run_dir"] / "analysis" / "test_last_analysis.json").read_text())
    assert last["checkpoint"] == "last" and last["ranked_list"]["num_predictions"] == 3
    assert json.loads((run["run_dir"] / "analysis" / "test_analysis.json").read_text()) == summary
    assert (run["run_dir"] / "analysis" / "test_last_hard_set_sensitivity.png").is_file()


def test_score_analysis_replaces_an_earlier_analysis_only_and_never_writes_through_a_link(built, tmp_path, capsys):
    """`score --analysis FOLDER` wrote its 17 files over whatever bore their names: the user's own files, and
    through symbolic links the annotations and predictions it read (exit 0)."""
    from mgrec.cli import main
    from mgrec.report.html import error_analysis_names

    run = built[0]
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_bytes(Path(run["annotations"]).read_bytes())
    pred.write_bytes((run["run_dir"] / "detections_test.json").read_bytes())
    command = ["score", "--gt", str(gt), "--pred", str(pred), "--score-threshold", str(THRESHOLD), "--analysis"]
    kept = {path: path.read_bytes() for path in (gt, pred)}
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "test_analysis.json").symlink_to(gt)
    (linked / "test_pr_curves.svg").symlink_to(pred)
    assert main([*command, str(linked)]) == 2
    assert "is a symbolic link (to" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "test_analysis.json").write_text('{"my": "notes"}')
    assert main([*command, str(mine)]) == 2
    assert ("holds 1 file(s) of the names the analysis writes that no finished mgrec analysis wrote (first: "
            "'test_analysis.json')") in capsys.readouterr().err
    assert (mine / "test_analysis.json").read_text() == '{"my": "notes"}'
    assert {path: path.read_bytes() for path in kept} == kept
    # an analysis's own folder takes the next analysis; the user's files of other names stay, even named test_*
    ours = tmp_path / "ours"
    assert main([*command, str(ours)]) == 0
    assert sorted(p.name for p in ours.iterdir()) == sorted(error_analysis_names("test"))  # the names it checks
    for name in ("notes.txt", "test_notes.txt"):
        (ours / name).write_text("mine")
    assert main([*command, str(ours)]) == 0
    assert (ours / "notes.txt").read_text() == (ours / "test_notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "test_notes.txt").write_text("mine")  # no file of the analysis's names: nothing to refuse
    assert main([*command, str(fresh)]) == 0
    # an analysis stopped part-way leaves its mark first: the next one may replace what it left
    (ours / "test_analysis.json").write_text('{"split": "test", "complete": false}')
    (ours / "test_pr_curves.png").write_bytes(b"half")
    assert main([*command, str(ours)]) == 0 and json.loads((ours / "test_analysis.json").read_text())["complete"]
    # a run's own analysis folder is `mgrec analyze`'s, of the run's detections
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    (other_run / "run.json").write_text('{"format": 14}')
    assert main([*command, str(other_run / "analysis")]) == 2
    assert f"is inside the run {other_run}" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Every detection is shown; what the hard set misses is what the timelines show


def test_lanes_are_as_few_as_possible_and_never_overlap():
    def items(*spans):
        return [_detection("v", start, end, 0, 0.5) for start, end in spans]

    assert assign_lanes([]) == []
    assert assign_lanes(items((0, 1), (1, 2), (2, 3))) == [0, 0, 0]  # touching bars share a lane
    assert assign_lanes(items((5, 9), (0, 6), (1, 2), (3, 4), (8, 10))) == [1, 0, 1, 1, 0]
    assert max(assign_lanes(items((0, 10), (1, 9), (2, 8), (3, 7)))) == 3


def test_lanes_are_those_of_the_first_free_lane_scan():
    """assign_lanes keeps its free and busy lanes in heaps; the rule it implements, written as a scan of every lane
    per item (what it was: 10 s for 20k overlapping detections), gives the same lanes."""
    import random

    def first_free_lane(items):
        lane_ends, lanes = [], [0] * len(items)
        for i in sorted(range(len(items)), key=lambda i: (items[i].start, items[i].end)):
            lane = next((n for n, end in enumerate(lane_ends) if end <= items[i].start), len(lane_ends))
            lane_ends[lane:lane + 1] = [items[i].end]
            lanes[i] = lane
        return lanes

    rng = random.Random(0)
    for _ in range(200):
        starts = [rng.choice([rng.uniform(0, 30), float(rng.randint(0, 30))]) for _ in range(rng.randint(1, 40))]
        spans = [(start, start + rng.choice([rng.uniform(0.1, 8), 1.0, 2.0])) for start in starts]
        detections = [_detection("v", start, end, 0, 0.5) for start, end in spans]
        assert assign_lanes(detections) == first_free_lane(detections)
    nested = [_detection("v", i * 1e-3, 100 - i * 1e-3, 0, 0.5) for i in range(5000)]  # all overlap one another
    assert sorted(assign_lanes(nested)) == list(range(5000))


def test_overlapping_detections_get_their_own_lane_and_none_is_hidden(built):
    run, _, page = built
    counter = count_bars(page)
    for video, lanes in run["det_lanes"].items():
        bars = counter.geometry.get((video, "det-bar"), [])
        assert len(bars) == run["det_bars"][video]
        rows = {y for _, _, y in bars}
        assert len(rows) == lanes, video
        for row in rows:
            spans = sorted((start, end) for start, end, y in bars if y == row)
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), video
        gt_rows = {y for _, _, y in counter.geometry.get((video, "gt-bar"), [])}
        assert max(gt_rows, default=0) < min(rows)  # detections lie below the ground truth
        timeline = counter.timelines[video]
        assert timeline["data-rows"] == str(1 + lanes)
        assert timeline["viewbox"].split()[3] == str(1 + lanes)


def test_the_hard_set_analysis_misses_what_the_timelines_mark(built):
    run, _, page = built
    counter = count_bars(page)
    marked = sum(counter.missed.get((video, "gt-bar"), 0) for video in run["gt_bars"])
    total = sum(run["gt_bars"].values())
    assert f"It misses {marked} of the {total} segments: exactly the dashed ground-truth bars" in page
    assert f"the hard set misses {marked} of the {total} segments" in page
    # and the ranked list's analysis says which set it is about
    assert "The ranked list (DETAD's setting)" in page and "false negative analysis of the hard set" in page


# ---------------------------------------------------------------------------------------------
# Per-class AP at each tIoU, bins


class TableCells(HTMLParser):
    """The text of every cell of the per-class table, row by row."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.header: list[str] = []
        self.inside = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("class") == "per-class":
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_per_class_table_has_ap_at_every_tiou_and_the_misses(built):
    run, _, page = built
    parser = TableCells()
    parser.feed(page)
    header, *rows = parser.rows
    assert header == ["id", "class", "instances", "missed", "AP@0.3", "AP@0.4", "AP@0.5", "AP@0.6", "AP@0.7", "AP",
                      "F1", "precision", "recall"]
    scores = json.loads((run["run_dir"] / "eval_test.json").read_text())
    assert [row[1] for row in rows] == CLASSES
    for row in rows:
        per_class = scores["per_class"][row[1]]
        at_tiou = [float(value) for value in row[4:9]]
        assert sum(at_tiou) / 5 == pytest.approx(100 * per_class["ap"], abs=0.01)
        assert int(row[3]) == round(per_class["instances"] * (1 - per_class["recall"]))
    # class 1: its 30-34 s segment has only a detection below the threshold
    assert rows[1][3] == "1"


def test_per_class_table_shows_no_recall_for_a_class_without_instances(tmp_path):
    # the split's one gesture of class 2 gone: its detections are false positives alone, and the table read recall
    # 0.00, as if its gestures had been missed; it has none to give, as it has no AP
    run = build_run_dir(tmp_path)
    annotations = load_annotations(run["annotations"])
    segments = {video: [s for s in items if not (video == "Sample0036" and s.label_id == 2)]
                for video, items in annotations.segments.items()}
    save_annotations(AnnotationSet(annotations.classes, annotations.videos, segments), run["annotations"])
    gt = {video: segments[video] for video in ("Sample0036", ODD_VIDEO, "Sample0040")}
    scores = score(gt, load_predictions(run["run_dir"] / "detections_test.json", CLASSES), CLASSES, THRESHOLD,
                   split="test")
    assert scores["per_class"][CLASSES[2]]["recall"] is None
    path = run["run_dir"] / "eval_test.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **scores}))
    parser = TableCells()
    parser.feed(write_report(run["run_dir"]).read_text(encoding="utf-8"))
    header, *rows = parser.rows
    cells = dict(zip(header, rows[2]))
    assert (cells["instances"], cells["AP"], cells["F1"], cells["precision"], cells["recall"]) == (
        "0", "–", "0.00", "0.00", "–")
    assert dict(zip(header, rows[0]))["recall"] == "100.00"


def test_every_bin_is_printed_with_its_edges(built):
    _, _, page = built
    for text in ("<b>XS</b> [0, 0.5]:", "<b>XL</b> (2, ∞):", "<b>XS</b> [0, 2]:", "<b>XL</b> (9.75, ∞):",
                 "<b>L</b> (200, ∞):"):
        assert text in page
    # the median length of each class in the split: relative length's unit
    assert "Arms akimbo 2.00 s, Folding &lt;arms&gt; &amp; &quot;hands&quot; 4.00 s" in page


# ---------------------------------------------------------------------------------------------
# Provenance


def test_provenance_is_stated(built):
    run, _, page = built
    for value in ("2026-01-02T03:04:05+00:00", "0123456789abcdef0123+dirty (uncommitted changes)", "9.8.7",
                  "Test CPU &lt;4 cores&gt;", "mgrec evaluate run --split test &lt;x&gt;", "2.13.0+cpu"):
        assert value in page, value
    assert "<tr><th>checkpoint</th><td>best</td></tr>" in page
    assert "tuned on val at training (selected epoch 3; postprocess.json)" in page
    config = (run["run_dir"] / "config.yaml").read_text()
    assert "<details><summary>config.yaml" in page
    assert html.escape(config) in page and "name: demo-run" in config
    assert "checkpoint best · score threshold 0.5, tuned on val" in page


def test_a_run_an_older_eval_file_recorded_relative_is_shown_by_its_folder(tmp_path):
    """eval_<split>.json recorded the run as typed to `mgrec evaluate` ("run"), relative to a folder it does not
    name: the page showed "run" as the run directory. It now shows the folder the file is in, and what it records."""
    run = build_run_dir(tmp_path)
    path = run["run_dir"] / "eval_test.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "run": "run"}))
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert (f"<tr><th>run directory</th><td>{run['run_dir'].resolve()} (eval_test.json records it as run, relative to "
            "the folder mgrec evaluate ran in)</td></tr>") in page
    path.write_text(json.dumps({**json.loads(path.read_text()), "run": str(run["run_dir"].resolve())}))
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert f"<tr><th>run directory</th><td>{run['run_dir'].resolve()}</td></tr>" in page  # absolute: as recorded


def test_a_run_moved_since_it_was_evaluated_is_shown_where_it_is_with_where_it_was(tmp_path):
    """A run evaluated at /elsewhere/run, then moved or copied (`scp -r`, renamed): the page named /elsewhere/run
    as the run directory it shows, a folder that may be on no machine its reader has."""
    run = build_run_dir(tmp_path)
    path = run["run_dir"] / "eval_test.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "run": "/elsewhere/run"}))
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert (f"<tr><th>run directory</th><td>{run['run_dir'].resolve()} (evaluated at /elsewhere/run, as eval_test.json "
            "records; moved or copied since)</td></tr>") in page


def test_where_the_threshold_came_from():
    tuning = {"score_threshold": 0.4, "tuned_on": "val", "selected_epoch": 7}
    assert threshold_origin({"threshold_tuned_on": "val"}, tuning) == (
        "tuned on val at training (selected epoch 7; postprocess.json)")
    assert threshold_origin({"threshold_tuned_on": "train"}, tuning) == "tuned on train by mgrec evaluate --tune-on"
    assert threshold_origin({"threshold_tuned_on": None}, None) == "not tuned: the config's postprocess.score_threshold"
    assert threshold_origin({}, tuning) == "not recorded"  # an eval file older than the key


@pytest.mark.slow
def test_an_older_eval_file_says_not_recorded(tmp_path):
    run = build_run_dir(tmp_path, with_provenance=False)
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert "<tr><th>checkpoint</th><td>not recorded</td></tr>" in page
    assert "<tr><th>threshold tuned</th><td>not recorded</td></tr>" in page
    assert "<tr><th>machine</th><td>not recorded</td></tr>" in page
    assert "checkpoint not recorded · score threshold 0.5, not recorded" in page


@pytest.mark.slow
def test_a_threshold_tuned_by_evaluate_or_not_tuned_says_so(tmp_path):
    run = build_run_dir(tmp_path)
    path = run["run_dir"] / "eval_test.json"
    scores = json.loads(path.read_text())
    path.write_text(json.dumps({**scores, "threshold_tuned_on": "train"}))
    assert "tuned on train by mgrec evaluate --tune-on" in write_report(run["run_dir"]).read_text(encoding="utf-8")
    path.write_text(json.dumps({**scores, "threshold_tuned_on": None}))
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert "not tuned: the config&#x27;s postprocess.score_threshold" in page


@pytest.mark.slow
def test_report_out_as_a_folder_and_never_over_the_run_or_its_inputs(built, tmp_path, capsys):
    from mgrec.cli import main

    run = built[0]["run_dir"]
    folder = tmp_path / "reports"
    folder.mkdir()
    assert main(["report", str(run), "--out", str(folder) + "/"]) == 0
    assert (folder / "report_test.html").exists()
    assert main(["report", str(run), "--out", str(tmp_path / "new") + "/"]) == 0
    assert (tmp_path / "new" / "report_test.html").exists()  # a trailing slash means a folder
    before = (run / "config.yaml").read_text()
    assert main(["report", str(run), "--out", str(run / "config.yaml")]) == 2
    assert f"would overwrite {run / 'config.yaml'}" in capsys.readouterr().err
    assert (run / "config.yaml").read_text() == before


def test_a_timeline_draws_at_most_its_highest_scoring_detections():
    # `report RUN --detections FILE` of 10^6 detections (another tool's file, every candidate kept): a 100 MB page,
    # 600 lanes per video, every bar drawn
    from mgrec.report.html import MAX_TIMELINE_DETECTIONS, video_timeline

    count = MAX_TIMELINE_DETECTIONS + 500
    detections = [Detection("v", i * 0.01, i * 0.01 + 5.0, 0, "a", score=(i % 1000) / 1000) for i in range(count)]
    segments = [Segment("v", 1.0, 6.0, 0, "a")]
    page = video_timeline("v", 40.0, segments, detections, matched_gt={0}, matched_det={999, 1000})
    drawn = [float(s) for s in re.findall(r"score (\d\.\d+)", page)]
    assert len(drawn) == MAX_TIMELINE_DETECTIONS and min(drawn) >= sorted(d.score for d in detections)[500]
    assert (f"{count} detections (2 matched, " in page and f"the {MAX_TIMELINE_DETECTIONS} highest-scoring drawn, "
            "500 not" in page)
    assert page.count("det-bar c0 miss") == MAX_TIMELINE_DETECTIONS - 1  # the matched one drawn (score 0.999) kept
    assert "highest-scoring" not in video_timeline("v", 40.0, None, detections[:10])


def test_one_of_a_thing_is_counted_in_the_singular(built):
    # one video, segment or detection was said '1 segments (1 found) · 1 detections (1 matched)' on every timeline of
    # a video with one gesture, as in the headline and the PR panels ('1 segments, AP@0.5'), where mgrec says '1
    # segment' everywhere else (mgrec.files.counted)
    from mgrec.report.html import video_timeline

    one = video_timeline("v", 10.0, [Segment("v", 1.0, 2.0, 0, "a")], [Detection("v", 1.0, 2.0, 0, "a", 0.9)],
                         matched_gt={0}, matched_det={0})
    assert "1 segment (1 found) · 1 detection (1 matched) · 10.0 s" in one
    assert "<span class=\"counts\">1 detection · 10.0 s" in video_timeline("v", 10.0, None, [Detection(
        "v", 1.0, 2.0, 0, "a", 0.9)])
    _, _, page = built
    assert "1 segment (1 found) · 1 detection (1 matched) · 60.0 s" in page  # ODD_VIDEO
    assert "3 segments (2 found) · 4 detections (2 matched, 2 lanes)" in page
    assert "3 videos, 4 ground-truth segments; F1" in page
    figures = [base64.b64decode(data).decode("utf-8")
               for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]
    assert any("1 segment, AP@0.5" in svg for svg in figures) and not any("1 segments" in svg for svg in figures)


def test_the_timelines_note_says_which_videos_draw_only_their_highest_scoring_detections(tmp_path, monkeypatch):
    # a video of more detections than a timeline draws had its counts say '... the 2000 highest-scoring drawn, 3060
    # not' under a note saying the hard set was drawn, 'every one of them'
    import mgrec.report.html as report_html

    run = build_run_dir(tmp_path)
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert "(score ≥ 0.5), every one of them: detections that overlap" in page
    monkeypatch.setattr(report_html, "MAX_TIMELINE_DETECTIONS", 3)  # Sample0036's hard set holds 4
    page = write_report(run["run_dir"]).read_text(encoding="utf-8")
    assert ("(score ≥ 0.5), every one of them but in 1 video of more than 3, whose timelines draw their 3 "
            "highest-scoring (their counts say how many are not drawn; the scores count them all): detections") in page
    assert "4 detections (2 matched, 2 lanes, the 3 highest-scoring drawn, 1 not)" in page


def test_a_report_replaces_an_earlier_page_of_mgrecs_but_never_a_file_of_the_users(built, tmp_path, capsys):
    from mgrec.cli import main

    run = built[0]["run_dir"]
    notes = tmp_path / "notes.html"
    notes.write_text("<html><body>my notes</body></html>\n", encoding="utf-8")
    assert main(["report", str(run), "--out", str(notes)]) == 2
    err = capsys.readouterr().err
    assert f"--out {notes}: {notes} is there already and is not a page an mgrec report wrote" in err
    assert "choose another --out, or move that file away" in err
    assert notes.read_text(encoding="utf-8") == "<html><body>my notes</body></html>\n"
    # the run's own name holding the user's file: refused, by the API too
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "report_test.html").write_text("my notes\n", encoding="utf-8")
    with pytest.raises(InputError, match="the report: .*report_test.html is there already and is not a page"):
        write_report(copy)
    assert (copy / "report_test.html").read_text(encoding="utf-8") == "my notes\n"
    # a page of the detections beside the file it draws, where the user's own viewer page is
    detections = tmp_path / "det.json"
    shutil.copy(run / "detections_test.json", detections)
    (tmp_path / "det.html").write_text("<!DOCTYPE html>\n<title>viewer</title>\n", encoding="utf-8")
    assert main(["report", str(run), "--detections", str(detections)]) == 2
    assert "the page: " in capsys.readouterr().err
    assert (tmp_path / "det.html").read_text(encoding="utf-8") == "<!DOCTYPE html>\n<title>viewer</title>\n"
    # an earlier page of mgrec's (a report, a detections page) and an empty file are written again
    page = tmp_path / "page.html"
    assert main(["report", str(run), "--out", str(page)]) == 0
    assert main(["report", str(run), "--detections", str(detections), "--out", str(page)]) == 0
    assert "<title>mgrec detections: det.json</title>" in page.read_text(encoding="utf-8")
    assert main(["report", str(run), "--out", str(page)]) == 0
    empty = tmp_path / "empty.html"
    empty.touch()
    assert main(["report", str(run), "--out", str(empty)]) == 0
    assert empty.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_analyze_replaces_an_earlier_analysis_in_the_run_but_never_a_file_of_the_users(tmp_path, capsys):
    from mgrec.cli import main

    run = build_run_dir(tmp_path)["run_dir"]
    (run / "analysis").mkdir()
    mine = run / "analysis" / "test_pr_curves.svg"
    mine.write_text("my own figure\n", encoding="utf-8")
    assert main(["analyze", str(run)]) == 2
    err = capsys.readouterr().err
    assert (f"{run / 'analysis'} holds 1 file(s) of the names the analysis writes that no finished mgrec analysis "
            "wrote (first: 'test_pr_curves.svg'); move them out of it") in err
    assert mine.read_text(encoding="utf-8") == "my own figure\n"
    with pytest.raises(InputError, match="no finished mgrec analysis wrote"):  # the API's writer refuses it too
        analyze_run(run)
    assert mine.read_text(encoding="utf-8") == "my own figure\n"
    assert not (run / "analysis" / "test_analysis.json").exists()
    mine.unlink()
    assert main(["analyze", str(run)]) == 0
    assert main(["analyze", str(run)]) == 0  # an earlier analysis is written again
    assert mine.read_text(encoding="utf-8").startswith("<?xml")


def test_a_long_video_id_is_written_once_per_timeline_not_once_per_bar():
    # every bar of a timeline carried its video's id: one video of 2000 detections with a 10000-character id (the
    # annotations' limit) made `report --detections` a 20 MB page; the id is the timeline's, said by its <svg>
    from mgrec.report.html import video_timeline

    video_id = "w" * 10000
    segments = [Segment(video_id, index * 1.0, index * 1.0 + 0.5, 0, "a") for index in range(50)]
    detections = [Detection(video_id, index * 0.1, index * 0.1 + 0.5, 0, "a", 0.9) for index in range(500)]
    html = video_timeline(video_id, 60.0, segments, detections)
    assert html.count(video_id) <= 3  # the section, its heading, its timeline
    assert len(html) < 200 * (len(segments) + len(detections)) + 4 * len(video_id)
    counter = RectCounter()
    counter.feed(html)
    assert counter.bars == {(video_id, "gt-bar"): 50, (video_id, "det-bar"): 500}


def test_analyze_without_scores_refuses_detections_that_are_not_the_splits_ranked_list(tmp_path):
    """With no eval_test.json to cross-check it, `mgrec analyze` took a hard set, another split's or checkpoint's
    detections, or a file with the split's videos cut out, for the split's ranked list (exit 0; every missing video's
    gestures counted as missed)."""
    run = build_run_dir(tmp_path)
    run_dir = Path(run["run_dir"])
    (run_dir / "eval_test.json").unlink()
    detections = run_dir / "detections_test.json"
    original = json.loads(detections.read_text(encoding="utf-8"))
    for key, value in (("set", "hard"), ("split", "val"), ("checkpoint", "last")):
        detections.write_text(json.dumps({**original, "mgrec": {**original.get("mgrec", {}), key: value}}))
        with pytest.raises(InputError, match=rf"detections_test.json \[mgrec.{key}\]: '{value}', expected "):
            analyze_run(run_dir)
    detections.write_text(json.dumps({**original, "results": {}}))
    with pytest.raises(InputError, match=r"detections_test.json: no entry for \d+ videos? of split 'test'"):
        analyze_run(run_dir)
    assert not (run_dir / "analysis").exists()
    detections.write_text(json.dumps(original))
    assert analyze_run(run_dir)


def test_the_offline_and_streamed_per_class_table_lists_the_classes_by_label_id_as_the_main_one():
    # it listed them in scores.json's order while the main per-class table sorts them by label id
    from mgrec.report.html import _online

    per_class = {"zeta": {"label_id": 1, "instances": 2, "f1": 0.5},
                 "alpha": {"label_id": 0, "instances": 3, "f1": 1.0}}
    scores = {"f1": 0.7, "f1_miga": 0.7, "precision": 0.7, "recall": 0.7, "per_class": per_class}
    stats = {"mean": 1.0, "median": 1.0, "p95": 1.0, "max": 1.0}
    online = {**scores, "per_class": {"zeta": {"f1": 0.25}, "alpha": {"f1": 0.75}},
              "online": {"latency_seconds": stats, "compute_ms_per_update": stats, "lookahead": 1.0,
                         "window_seconds": 8.0, "decided_while_streaming": 4, "decided_at_the_end": 1, "updates": 9}}
    page = _online(scores, online)
    assert page.index("<td>alpha</td>") < page.index("<td>zeta</td>")
