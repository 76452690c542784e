"""The HTML report and `analyze_run`, built from a hand-made run directory."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mgrec.config import Config, DataConfig, save_config
from mgrec.data.annotations import save_annotations
from mgrec.errors import InputError
from mgrec.evaluate.predictions import save_predictions
from mgrec.evaluate.scoring import score
from mgrec.records import AnnotationSet, Detection, Segment, VideoInfo
from mgrec.report.html import analyze_run, write_report

CLASSES = ["Arms akimbo", "Folding <arms> & \"hands\"", "Moving legs"]
ODD_VIDEO = 'clip "a" & <b>'
THRESHOLD = 0.5


def _segment(video, start, end, label_id):
    return Segment(video, start, end, label_id, CLASSES[label_id])


def _detection(video, start, end, label_id, score_value):
    return Detection(video, start, end, label_id, CLASSES[label_id], score_value)


def build_run_dir(root: Path, augment_alpha: int | None = 4, with_metrics: bool = True) -> dict:
    """A run directory as `mgrec train` + `mgrec evaluate` leave it, with the expected bar counts.

    Returns {"run_dir", "annotations", "gt_bars": {video: n}, "det_bars": {video: n}}.
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
            _detection("Sample0036", 60.0, 61.4, 2, 0.8),
            _detection("Sample0036", 70.0, 75.0, 0, 0.6),  # false positive in the hard set
            _detection("Sample0036", 30.0, 34.0, 1, 0.2),  # below the threshold
        ],
        ODD_VIDEO: [_detection(ODD_VIDEO, 5.0, 9.5, 1, 0.7)],
        "Sample0040": [_detection("Sample0040", 1.0, 3.0, 2, 0.55), _detection("Sample0040", 4.0, 5.0, 2, 0.1)],
    }
    save_predictions(ranked, run_dir / "detections_test.json")
    gt = {v: segments[v] for v in ("Sample0036", ODD_VIDEO, "Sample0040")}
    (run_dir / "eval_test.json").write_text(json.dumps(score(gt, ranked, CLASSES, THRESHOLD, split="test")))
    save_config(Config(name="demo-run", data=DataConfig(annotations=str(annotations), augment_alpha=augment_alpha)),
                run_dir / "config.yaml")
    (run_dir / "classes.json").write_text(json.dumps(CLASSES))
    if with_metrics:
        lines = [{"kind": "train", "epoch": e, "step": 10 * (e + 1), "loss": 1.0 / (e + 1), "cls_loss": 0.6 / (e + 1),
                  "reg_loss": 0.4 / (e + 1), "lr": 1e-4, "seconds": 1.0} for e in range(4)]
        lines += [{"kind": "val", "epoch": e, "step": 10 * (e + 1), "f1": 0.1 * e, "precision": 0.2, "recall": 0.2,
                   "f1_miga": 0.1, "average_mAP": 0.05 * e, "score_threshold": 0.4} for e in (1, 3)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "run_dir": run_dir,
        "annotations": annotations,
        "gt_bars": {"Sample0036": 3, ODD_VIDEO: 1, "Sample0040": 0},
        "det_bars": {"Sample0036": 3, ODD_VIDEO: 1, "Sample0040": 1},
        "missed": {"Sample0036": {"gt-bar": 1, "det-bar": 1}, ODD_VIDEO: {"gt-bar": 0, "det-bar": 0},
                   "Sample0040": {"gt-bar": 0, "det-bar": 1}},
    }


class RectCounter(HTMLParser):
    """Counts <rect class="gt-bar|det-bar ..." data-video=...> per (video, kind), and missed ones."""

    def __init__(self):
        super().__init__()
        self.bars: dict[tuple[str, str], int] = {}
        self.missed: dict[tuple[str, str], int] = {}
        self.sections: list[str] = []
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.attributes.extend((name, value or "") for name, value in attrs)
        if tag == "section" and "video" in (attributes.get("class") or ""):
            self.sections.append(attributes["data-video"])
        if tag != "rect":
            return
        classes = (attributes.get("class") or "").split()
        for kind in ("gt-bar", "det-bar"):
            if kind in classes:
                key = (attributes["data-video"], kind)
                self.bars[key] = self.bars.get(key, 0) + 1
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


def test_text_from_the_data_is_escaped(built):
    _, _, page = built
    assert ODD_VIDEO not in page and CLASSES[1] not in page
    assert 'clip &quot;a&quot; &amp; &lt;b&gt;' in page
    assert "Folding &lt;arms&gt; &amp; &quot;hands&quot;" in page
    # the parser gives the original id back from the attribute
    assert ODD_VIDEO in count_bars(page).sections


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
    # confusion, 3 error-analysis figures, class histogram, training curves
    assert page.count('src="data:image/svg+xml;base64,') == 6
    assert "before and after category-frequency augmentation with α = 4" in page
    assert page.count("<script>") == 2


def test_augmentation_off_and_no_metrics_are_stated(tmp_path):
    run = build_run_dir(tmp_path, augment_alpha=None, with_metrics=False)
    page = write_report(run["run_dir"], out=tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert "augmentation off" in page
    assert "No metrics.jsonl" in page


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


def test_analyze_run_writes_figures_and_numbers(tmp_path):
    run = build_run_dir(tmp_path)
    paths = analyze_run(run["run_dir"])
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            f"test_{stem}.{ext}"
            for stem in ("false_negatives", "false_positives", "sensitivity")
            for ext in ("png", "svg")
        ]
        + ["test_analysis.json"]
    )
    assert all(p.parent == run["run_dir"] / "analysis" and p.stat().st_size > 0 for p in paths)
    summary = json.loads((run["run_dir"] / "analysis" / "test_analysis.json").read_text())
    assert summary["num_ground_truth"] == 4 and summary["num_predictions"] == 7
    # every test segment is found at tIoU 0.5 (the 30-34 s one by a detection below the F1 threshold)
    lengths = summary["characteristics"]["length"]
    assert sum(lengths["gt_counts"]) == 4
    assert all(rate in (None, 0.0) for rate in lengths["false_negative_rates"])
    # G = 1, 2, 1 for classes 0, 1, 2: slice 1 holds the four matches, the rest are background
    counts = summary["false_positives"]["counts"]
    assert counts[0]["true_positive"] == 4 and sum(counts[0].values()) == 4
    assert counts[1]["background"] == 2 and counts[2]["background"] == 1
    assert re.match(rb"\x89PNG", (run["run_dir"] / "analysis" / "test_sensitivity.png").read_bytes()[:4])
