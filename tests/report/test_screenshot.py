"""The report in a real headless chromium: scripts run without errors, every timeline is drawn,
every figure loads, and a screenshot shows a page.

The page's own scripts count errors into <html data-js-errors="N"> and mark each timeline they
set up; `--dump-dom` after a virtual-time budget shows the DOM as the scripts left it. The
screenshot is taken by `mgrec.report.screenshot`, the code that made docs/report.png.
"""

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from test_html import build_run_dir

from mgrec.report.html import write_report
from mgrec.report.screenshot import chromium_command, find_chromium, screenshot

pytestmark = pytest.mark.browser

CHROMIUM = find_chromium()


def run_chromium(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    command = chromium_command(CHROMIUM, profile, page, *action)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def dominant_share(png: Path) -> float:
    """The share of the image's pixels that have its most common colour (1.0: a blank picture)."""
    with Image.open(png) as image:
        picture = image.convert("RGB")
    counts = picture.getcolors(maxcolors=picture.width * picture.height)
    return max(count for count, _ in counts) / (picture.width * picture.height)


class RenderedDom(HTMLParser):
    """Per video section: bars by kind, JS-drawn axis ticks, and the timeline's ready mark."""

    def __init__(self):
        super().__init__()
        self.root: dict[str, str] = {}
        self.video: str | None = None
        self.bars: dict[tuple[str, str], int] = {}
        self.ticks: dict[str, int] = {}
        self.ready: dict[str, str | None] = {}
        self.view_boxes: dict[str, str | None] = {}
        self.rows: dict[str, str | None] = {}
        self.sections: set[str] = set()
        self.details = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "html":
            self.root = attributes
        elif tag == "section" and "video" in classes:
            self.video = attributes["data-video"]
            self.ticks[self.video] = 0
        elif tag == "svg" and "timeline" in classes:
            self.ready[attributes["data-video"]] = attributes.get("data-ready")
            self.view_boxes[attributes["data-video"]] = attributes.get("viewbox")
            self.rows[attributes["data-video"]] = attributes.get("data-rows")
        elif tag == "h2":
            self.sections.add(attributes.get("id"))
        elif tag == "details":
            self.details += 1
        elif tag == "line" and "tick" in classes:
            self.ticks[self.video] += 1
        elif tag == "rect":
            for kind in ("gt-bar", "det-bar"):
                if kind in classes:
                    key = (self.video, kind)  # its section's video
                    self.bars[key] = self.bars.get(key, 0) + 1


def rendered(page: Path, profile: Path) -> RenderedDom:
    dom = RenderedDom()
    dom.feed(run_chromium(page, profile, "--dump-dom").stdout)
    return dom


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    run = build_run_dir(root)
    return run, write_report(run["run_dir"]), root


def test_scripts_run_cleanly_and_every_timeline_is_drawn(report):
    run, page, root = report
    dom = rendered(page, root / "profile")
    assert dom.root.get("data-js-errors") == "0"
    videos = run["gt_bars"]
    assert dom.root.get("data-timelines-ready") == str(len(videos))
    for video in videos:
        assert dom.ready[video] == "1", video
        # the script keeps every lane: viewBox "0 0 duration rows"
        assert dom.view_boxes[video] is not None and dom.view_boxes[video].startswith("0 0 ")
        assert dom.view_boxes[video].split()[3] == dom.rows[video] == str(1 + run["det_lanes"][video])
        assert dom.ticks[video] >= 3, video  # the time axis is drawn by the script
        assert dom.bars.get((video, "gt-bar"), 0) == run["gt_bars"][video], video
        assert dom.bars.get((video, "det-bar"), 0) == run["det_bars"][video], video


def test_a_script_error_would_be_seen(report, tmp_path):
    _, page, _ = report
    broken = tmp_path / "broken.html"
    broken.write_text(
        page.read_text(encoding="utf-8").replace("</body>", "<script>notDefinedAnywhere();</script></body>"),
        encoding="utf-8",
    )
    dom = rendered(broken, tmp_path / "profile")
    assert dom.root.get("data-js-errors") == "1"


ZOOM_PAN_RESET = """<script>
(function () {
  var svg = document.querySelector("svg.timeline");
  var root = document.documentElement;
  var box = svg.getBoundingClientRect();
  var middle = box.left + box.width / 2;
  svg.dispatchEvent(new WheelEvent("wheel", {deltaY: -100, clientX: middle, clientY: box.top + 5,
                                             bubbles: true, cancelable: true}));
  root.setAttribute("data-after-zoom", svg.getAttribute("viewBox"));
  var pointer = {pointerId: 1, pointerType: "mouse", isPrimary: true, bubbles: true, clientY: box.top + 5};
  svg.dispatchEvent(new PointerEvent("pointerdown", Object.assign({clientX: middle}, pointer)));
  svg.dispatchEvent(new PointerEvent("pointermove", Object.assign({clientX: middle - box.width / 8}, pointer)));
  svg.dispatchEvent(new PointerEvent("pointerup", Object.assign({clientX: middle - box.width / 8}, pointer)));
  root.setAttribute("data-after-drag", svg.getAttribute("viewBox"));
  svg.dispatchEvent(new MouseEvent("dblclick", {bubbles: true}));
  root.setAttribute("data-after-reset", svg.getAttribute("viewBox"));
})();
</script></body>"""


def test_wheel_zooms_drag_pans_and_double_click_resets(report, tmp_path):
    _, page, _ = report
    interactive = tmp_path / "interactive.html"
    interactive.write_text(page.read_text(encoding="utf-8").replace("</body>", ZOOM_PAN_RESET), encoding="utf-8")
    dom = rendered(interactive, tmp_path / "profile")
    assert dom.root.get("data-js-errors") == "0"
    # the first timeline is Sample0036, 120 s long; each step is viewBox "start 0 width 2"
    zoom = [float(v) for v in dom.root["data-after-zoom"].split()]
    drag = [float(v) for v in dom.root["data-after-drag"].split()]
    # one wheel step zooms in by 0.8 around the pointer (the middle): width 96 s, start 12 s
    assert zoom[2] == pytest.approx(96.0) and zoom[0] == pytest.approx(12.0, abs=0.2)
    # dragging left by 1/8 of the width moves the view 12 s later
    assert drag[2] == pytest.approx(96.0) and drag[0] == pytest.approx(zoom[0] + 12.0, abs=0.2)
    assert dom.root["data-after-reset"] == "0 0 120 3"  # one ground-truth lane, two detection lanes
    assert zoom[3] == drag[3] == 3.0


IMAGES_LOADED = """<script>
window.addEventListener("load", function () {
  var images = document.querySelectorAll("img");
  var loaded = 0;
  for (var i = 0; i < images.length; i++) if (images[i].complete && images[i].naturalWidth > 0) loaded += 1;
  document.documentElement.setAttribute("data-images", images.length + " " + loaded);
});
</script></body>"""


def test_every_panel_is_there_and_every_figure_loads(report, tmp_path):
    _, page, _ = report
    checked = tmp_path / "images.html"
    checked.write_text(page.read_text(encoding="utf-8").replace("</body>", IMAGES_LOADED), encoding="utf-8")
    dom = rendered(checked, tmp_path / "profile")
    assert dom.root.get("data-js-errors") == "0"
    total, loaded = map(int, dom.root["data-images"].split())
    # F1-threshold and PR curves, confusion, the hard set's and the ranked list's 3 analyses, histogram, training,
    # balancing
    assert total == loaded == 12
    assert {"scores", "timelines", "classes", "threshold", "confusion", "errors", "histogram", "training",
            "provenance"} <= dom.sections
    assert dom.details == 1  # the config, collapsed


def test_screenshot_shows_the_page(report, tmp_path):
    _, page, _ = report
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = screenshot(page, tmp_path / "report.png", width=1280, height=900)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(shot) as image:
        assert image.size == (1280, 900)
        colours = image.convert("RGB").getcolors(maxcolors=1280 * 900)
    # not blank: the background is most of the picture but far from all of it, and the class colours,
    # text and figures bring many more colours
    assert dominant_share(shot) < 0.9
    assert len(colours) > 30
    # and the check sees a blank page
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    assert dominant_share(screenshot(blank, tmp_path / "blank.png", width=400, height=300)) == 1.0


# Every DOM write and every layout read, in order: a read after a write makes the browser lay the page out again.
LAYOUT_READS = """<script>
(function () {
  var root = document.documentElement, wrote = false, relayouts = 0, reads = 0;
  function counted(proto, name, read) {
    var original = proto[name];
    proto[name] = function () {
      if (read) { reads += 1; if (wrote) relayouts += 1; wrote = false; } else { wrote = true; }
      return original.apply(this, arguments);
    };
  }
  counted(Element.prototype, "getBoundingClientRect", true);
  counted(Node.prototype, "appendChild", false);
  counted(Node.prototype, "removeChild", false);
  counted(Element.prototype, "setAttribute", false);
  window.addEventListener("load", function () { root.dataset.layouts = reads + " " + relayouts; });
})();
</script></head>"""


def test_the_timelines_are_measured_once_not_once_per_video(tmp_path):
    """Each axis read its width after the one before it was drawn: a layout of the whole page per video, and a page
    of the detections of 5000 videos took 42 s to set up in chromium (11 s once every width is read first)."""
    from test_html import CLASSES, _detection

    from mgrec.evaluate.predictions import save_predictions
    from mgrec.report.detections import write_detections_report

    run_dir = build_run_dir(tmp_path)["run_dir"]
    videos = {f"v{i:02d}": [_detection(f"v{i:02d}", 1.0 + i, 3.0 + i, i % len(CLASSES), 0.9)] for i in range(40)}
    source = tmp_path / "many.json"
    save_predictions(videos, source)
    page = write_detections_report(run_dir, source, tmp_path / "many.html")
    page.write_text(page.read_text(encoding="utf-8").replace("</head>", LAYOUT_READS), encoding="utf-8")
    dom = rendered(page, tmp_path / "profile")
    assert dom.root.get("data-js-errors") == "0" and dom.root.get("data-timelines-ready") == "40"
    assert all(dom.ready[video] == "1" and dom.ticks[video] >= 3 for video in videos)
    reads, relayouts = map(int, dom.root["data-layouts"].split())
    assert reads == 40 and relayouts <= 1, (reads, relayouts)


PAGE_WIDTH = """<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  root.setAttribute("data-widths", root.scrollWidth + " " + root.clientWidth);
});
</script></body>"""


def test_a_long_name_without_spaces_wraps_inside_the_page(tmp_path, monkeypatch):
    # a class name of 200 letters and a video id of 240 (both allowed) without a space ran past the page's right edge
    # in the legend and the timeline's heading: a page 2679 px wide in a 1280 px window, the counts off screen
    import test_html

    monkeypatch.setattr(test_html, "CLASSES", ["C" * 200, *test_html.CLASSES[1:]])
    monkeypatch.setattr(test_html, "ODD_VIDEO", "V" * 240)
    run = build_run_dir(tmp_path)
    page = write_report(run["run_dir"])
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PAGE_WIDTH), encoding="utf-8")
    dom = rendered(probe, tmp_path / "profile")
    assert dom.root.get("data-js-errors") == "0"
    scroll, client = map(int, dom.root["data-widths"].split())
    assert client > 600 and scroll == client
