"""A page of a run's detections on videos without ground truth: `mgrec report RUN --detections FILE`.

What `mgrec detect` (results JSON, its CSV table, SMG label folders) or `mgrec stream` (its JSON lines) found in new
videos, as one self-contained HTML page: how many detections of each class, in how many videos, at what scores and
lengths; the score distribution against the run's threshold; and a timeline per video (the run report's, with
detection lanes only; hover, zoom and pan as there). Nothing is scored: there is no ground truth.

Which detections are drawn: a file of the hard set (what `detect` writes by default, and every stream) is drawn
whole. A ranked list (`detect --all`, its JSON saying so) is cut to its hard set at the threshold the file records
(else the run's), as the run report draws the hard set. A file that does not say which set it holds is drawn whole,
and the page says so.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mgrec
from mgrec.config import class_thresholds_problem
from mgrec.data.features import read_sidecar
from mgrec.errors import InputError, where
from mgrec.evaluate.f1 import apply_score_threshold, bar_words
from mgrec.evaluate.predictions import MGREC_KEY, load_predictions_with_info, repeats_words
from mgrec.files import atomic_write_text, brief, counted, is_finite_real, part_of, resolve_path
from mgrec.records import Detection
from mgrec.report.figures import score_histogram_figure
from mgrec.report.html import (
    escape,
    figure_html,
    legend,
    page_html,
    refuse_replacing_a_file_not_a_page,
    video_timeline,
)
from mgrec.run import RunDir

# The longest video a page draws: a week. A length beyond it is a file's mistake (frames taken for seconds), and it
# would shrink every detection of its timeline to nothing.
MAX_VIDEO_SECONDS = 7 * 24 * 3600.0
# How far a detection may end past its video's recorded length (`detect` clips detections to it; JSON keeps floats
# exact): more is a file whose lengths are not its detections' videos'.
LENGTH_TOLERANCE_SECONDS = 0.01


@dataclass
class DetectionsData:
    """The detections a page draws, and what is known of them."""

    source: Path  # the file or folder they were read from
    run_dir: Path
    classes: list[str]
    drawn: dict[str, list[Detection]]  # per video, the detections drawn
    durations: dict[str, float]  # per video, the seconds its timeline spans
    info: dict  # the results JSON's `mgrec` block ({} for other files)
    which: str  # which detections are drawn, in words
    bar: tuple[float, list[float] | None] | None  # the hard set's score threshold (and per class), where known
    lengths_recorded: int  # of the videos drawn, those whose length the file records (others: to their last end)
    bar_recorded: bool = False  # whether `bar` is the one the file records (else: the run's)
    repeats: str = ""  # the drawn detections that repeat another exactly, in words ("" where none does)


def load_detections(run_dir: str | Path, source: str | Path, fps: float | None = None,
                    note: Callable[[str], None] | None = None) -> DetectionsData:
    """The detections of `source` (any predictions file or folder `mgrec score --pred` reads) in `run_dir`'s classes,
    cut to the hard set where the file holds a ranked list. `fps`: the videos' frame rate, for a folder of SMG label
    files (which count frames): the run's data.fps where it sets one (every video's rate; another is refused), else
    `fps`, else the rate of the features the run trained on (its feature recipe), said through `note` (default:
    printed on stderr), since such a run detects videos of any rate and their label files count their own frames."""
    if note is None:
        def note(line: str) -> None:
            print(f"note: {line}", file=sys.stderr)
    run = RunDir(run_dir)
    config = run.read_config()
    classes = run.read_classes()
    source = Path(source)
    if fps is not None and not source.is_dir():  # a file's segments are in seconds: the fps was passed over
        raise InputError(f"fps {fps:g} (--fps): {source} holds segments in seconds; the frame rate is of an SMG "
                         "label folder's frames: leave it out")
    if config.data.fps is not None:  # every video's features are placed at it: its label files count its frames
        if fps is not None and not math.isclose(fps, config.data.fps, rel_tol=1e-6):
            raise InputError(f"fps {fps:g} (--fps): the run's videos are {config.data.fps:g} fps (its data.fps, "
                             f"{run.config_path}); leave it out")
        fps = config.data.fps
    elif fps is None and source.is_dir() and run.recipe_path.is_file():
        # a run without data.fps detects videos of any rate (each at its own, from its features' sidecar), and their
        # label files count their own frames: the training features' rate is a guess, said as one. It was used
        # without a word, and --fps refused for contradicting it: a 25-fps video's timeline drawn at 50 fps, half
        # its length, with no way to draw it right.
        fps = read_sidecar(run.recipe_path).fps
        if fps is not None:
            note(f"{source}: SMG label files count frames, read at {fps:g} fps, the rate of the features {run.path} "
                 f"trained on ({run.recipe_path.name}); for videos of another rate, give it with --fps")
    if fps is None and source.is_dir():
        # said here, where the ways to give one are known: the reader's own message named no way to give it
        recipe_words = (f"no fps in {run.recipe_path.name}" if run.recipe_path.is_file() else
                        f"no {run.recipe_path.name}: its training features had no sidecars")
        raise InputError(f"{source}: SMG label files count frames, and {run.path} records no frame rate to read them "
                         f"at (no data.fps in {run.config_path}, {recipe_words}); give the videos' frame rate "
                         "with --fps (fps= in Python)")
    found, info = load_predictions_with_info(source, classes, fps=fps)  # info: {} but for a results JSON mgrec wrote
    if "score_threshold" in info:  # the bar it was written at (a ranked list is cut there)
        bar = (info["score_threshold"], info.get("class_thresholds"))
        problem = class_thresholds_problem(bar[1], len(classes))
        if not is_finite_real(bar[0]) or problem is not None:
            key = "score_threshold" if not is_finite_real(bar[0]) else "class_thresholds"
            raise InputError(f"{where(source, key=f'{MGREC_KEY}.{key}')}: expected "
                             f"{'a finite number' if key == 'score_threshold' else problem}, got {brief(info[key])}")
    else:
        post = run.read_postprocess(config)
        bar = (post.score_threshold, post.class_thresholds)
    if info.get("set") == "ranked":
        drawn = apply_score_threshold(found, *bar)
        which = f"the file's ranked list cut to its hard set: score ≥ {bar_words(*bar)}"
    elif info.get("set") == "hard":
        drawn, which = found, f"every detection of the file, its hard set (score ≥ {bar_words(*bar)})"
    else:
        drawn, which = found, "every detection of the file (it does not say whether it holds the hard set)"
        bar = bar if info else None  # a file of another tool's, or a stream's: its bar is not known
    lengths = _recorded_lengths(source, info)
    _check_detections_within_lengths(source, found, lengths)
    # a timeline spans its video, and at least every detection of the file on it (and a second, for an empty video):
    # of a ranked list cut to its hard set, the candidates below the bar too (those drawn alone left a video with none
    # above it 1 s long, and the page's minutes and rate per minute too low)
    durations = {video_id: max([lengths.get(video_id, 0.0), *(d.end for d in found.get(video_id, detections)), 1.0])
                 for video_id, detections in drawn.items()}
    # a file joined to itself (or written twice) doubled every count and rate of the page without a word
    repeats = repeats_words(drawn, source)
    if repeats:
        note(f"{repeats}: each copy is counted and drawn; a file joined to itself, or written twice?")
    return DetectionsData(source, Path(run_dir), classes, drawn, durations, info, which, bar,
                          lengths_recorded=len(set(drawn) & set(lengths)),
                          bar_recorded="score_threshold" in info, repeats=repeats)


def _recorded_lengths(source: Path, info: dict) -> dict[str, float]:
    """Each video's length in seconds, as the file's `durations` records it ({} where it does not)."""
    lengths = info.get("durations", {})
    if not isinstance(lengths, dict):
        raise InputError(f"{where(source, key=f'{MGREC_KEY}.durations')}: expected an object {{video id: seconds}}, "
                         f"got {brief(lengths)}")
    for video_id, seconds in lengths.items():
        if not (is_finite_real(seconds) and 0 <= seconds <= MAX_VIDEO_SECONDS):
            raise InputError(f"{where(source, key=f'{MGREC_KEY}.durations.{video_id}')}: expected a video's length in "
                             f"seconds (0 to {MAX_VIDEO_SECONDS:g}), got {brief(seconds)}")
    return {video_id: float(seconds) for video_id, seconds in lengths.items()}


def _check_detections_within_lengths(source: Path, found: dict[str, list[Detection]],
                                     lengths: dict[str, float]) -> None:
    """A detection never ends past its video's recorded length: a file where one does (its `durations` edited, or
    those of other videos) would be drawn past it under "the videos' lengths, as the file records them"."""
    for video_id, detections in found.items():
        if video_id not in lengths or not detections:
            continue
        last = max(detections, key=lambda d: d.end)
        if last.end > lengths[video_id] + LENGTH_TOLERANCE_SECONDS:
            raise InputError(
                f"{where(source, key=f'{MGREC_KEY}.durations.{video_id}')}: expected the video's length in seconds, "
                f"at least the end of its detections; got {lengths[video_id]:g}, and its detection "
                f"{brief(last.label)} at {last.start:g}–{last.end:g} s ends {last.end - lengths[video_id]:g} s past "
                "it (lengths of other videos, or detections of another file?)")


def _summary(data: DetectionsData) -> str:
    count = sum(map(len, data.drawn.values()))
    hours = sum(data.durations.values()) / 3600.0
    cards = [("video" if len(data.drawn) == 1 else "videos", str(len(data.drawn))),
             ("detection" if count == 1 else "detections", str(count)),
             ("per minute", f"{count / (60 * hours):.1f}" if hours > 0 else "–")]
    cards_html = "".join(f'<div class="card"><div class="value">{value}</div><div class="label">{label}</div></div>'
                         for label, value in cards)
    if data.lengths_recorded == len(data.drawn):
        span = "the videos' lengths, as the file records them"
    elif data.lengths_recorded:
        span = (f"the videos' lengths where the file records them "
                f"({part_of(data.lengths_recorded, len(data.drawn), 'video')}), "
                "and the others up to their last detection")
    else:
        span = "up to each video's last detection in the file (it does not record the videos' lengths)"
    repeats = (f" {escape(data.repeats)}: each copy is counted and drawn; a file joined to itself, or written twice?"
               if data.repeats else "")
    return (f'<div class="cards">{cards_html}</div><p class="note">Drawn: {escape(data.which)}. Rates and timelines '
            f"span {span}: {hours * 60:.1f} minutes in all. No ground truth: nothing is scored.{repeats}</p>")


def _per_class(data: DetectionsData) -> str:
    """The table of each class's detections (how many, in how many videos, their median score and length) and the
    histogram of their scores."""
    count = sum(map(len, data.drawn.values()))
    by_class: list[list[Detection]] = [[] for _ in data.classes]  # in the order of the videos, then the file
    videos = [0] * len(data.classes)  # of each class, the videos it was detected in
    for detections in data.drawn.values():
        for detection in detections:
            by_class[detection.label_id].append(detection)
        for label_id in {d.label_id for d in detections}:
            videos[label_id] += 1
    rows = []
    for label_id, (name, own) in enumerate(zip(data.classes, by_class)):
        median_score = f"{statistics.median(d.score for d in own):.3f}" if own else "–"
        median_length = f"{statistics.median(d.end - d.start for d in own):.2f}" if own else "–"
        share = f"{100 * len(own) / count:.1f}" if count else "–"
        rows.append(f'<tr><td class="num">{label_id}</td><td><span class="swatch c{label_id}"></span>{escape(name)}'
                    f'</td><td class="num">{len(own)}</td><td class="num">{share}</td>'
                    f'<td class="num">{videos[label_id]}</td><td class="num">{median_score}</td>'
                    f'<td class="num">{median_length}</td></tr>')
    table = ("<table><tr><th>id</th><th>class</th><th>detections</th><th>share (%)</th><th>videos</th>"
             f"<th>median score</th><th>median length (s)</th></tr>{''.join(rows)}</table>")
    scores = [[d.score for d in own] for own in by_class]
    threshold = None if data.bar is None or data.bar[1] is not None else data.bar[0]
    line = "the threshold the file records" if data.bar_recorded else "the run's threshold"
    outside = sum(1 for own in scores for score in own if not 0.0 <= score <= 1.0)
    caption = ("Scores of the drawn detections, stacked by class"
               + (f"; the line is {line} ({threshold:.4g})." if threshold is not None else ".")
               + (f" {outside} score(s) outside [0, 1] (another tool's logits?) are counted in the end bins."
                  if outside else ""))
    figure = figure_html(score_histogram_figure(data.classes, scores, threshold), "detection scores per class", caption)
    return table + figure


def _timelines(data: DetectionsData) -> str:
    sections = [video_timeline(video_id, data.durations[video_id], None, detections)
                for video_id, detections in data.drawn.items()]
    return (f"{legend(data.classes)}"
            '<p class="note">Hover a bar for its class, times and score; mouse wheel zooms, drag pans, double-click '
            "resets. Detections that overlap get lanes of their own.</p>" + "".join(sections))


def _provenance(data: DetectionsData) -> str:
    record = data.info.get("provenance") if isinstance(data.info.get("provenance"), dict) else {}

    def text(value: object) -> str:
        return "not recorded" if value is None else escape(str(value))

    rows = [
        ("detections", escape(str(resolve_path(data.source)))),
        ("run of this report", escape(str(resolve_path(data.run_dir)))),
        ("run that detected", text(data.info.get("run"))),
        ("checkpoint", text(data.info.get("checkpoint"))),
        ("inference precision", text(data.info.get("inference_precision"))),
        ("network run by", _engine(data.info)),
        ("detected by", f"<code>{text(record.get('command'))}</code>"),
        ("date (UTC)", text(record.get("date"))),
        ("git commit", text(record.get("git_commit"))),
        ("machine", text(record.get("machine"))),
        ("report made with", f"mgrec {escape(mgrec.__version__)}"),
    ]
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    return (f'<table class="provenance"><tbody>{table}</tbody></table><p class="note">From the results JSON\'s '
            "<code>mgrec</code> block; “not recorded” marks what the file does not hold (CSV tables, SMG label "
            "folders, streams' JSON lines and other tools' files hold none).</p>")


def _engine(info: dict) -> str:
    """What ran the network, as the results JSON records it: `detect --onnx` records onnxruntime and the file; a file
    of mgrec's without the key was detected by PyTorch; a file without an mgrec block says nothing."""
    if not info:
        return "not recorded"
    if info.get("engine") is None:
        return "PyTorch"
    onnx = f" (<code>{escape(str(info['onnx']))}</code>)" if info.get("onnx") is not None else ""
    return f"{escape(str(info['engine']))}{onnx}"


def write_detections_report(run_dir: str | Path, source: str | Path, out: str | Path,
                            fps: float | None = None, note: Callable[[str], None] | None = None) -> Path:
    """Write the page of `source`'s detections (`load_detections`, with `fps` and `note`) to `out`; returns its
    path."""
    refuse_replacing_a_file_not_a_page(out)
    data = load_detections(run_dir, source, fps, note)
    title = f"mgrec detections: {data.source.name}"
    sections = [
        ("summary", "Summary", _summary(data)),
        ("classes", "Per class", _per_class(data)),
        ("timelines", "Timelines", _timelines(data)),
        ("provenance", "Provenance", _provenance(data)),
    ]
    subtitle = (f'<p class="sub">run <code>{escape(resolve_path(data.run_dir).name)}</code> · '
                f"{counted(len(data.classes), 'class')} · no ground truth</p>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page_html(title, subtitle, sections, len(data.classes)))
    return out
