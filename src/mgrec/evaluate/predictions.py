"""Reading and writing predictions.

Four input forms:
- JSON (ActivityNet results style): `{"results": {video_id: [{"segment": [start_s, end_s],
  "label": name, "label_id": int, "score": float}, ...]}}`. Each entry needs `label` or
  `label_id` (both, if given, must name the same class) and `score`; an optional
  `"segment(frames)": [start, end]` (written by `Detection.to_json`) is kept as frames. Other
  top-level keys (`version`, `external_data`, `mgrec`, which `save_predictions` also writes) are
  not needed, so files from other tools and from older mgrec read too.
- The CSV table `save_predictions_csv` writes (`mgrec detect --format csv`), recognised by its header.
- JSON lines, one detection with its `video` per line, as `mgrec stream` prints its emissions (a stream's
  log saved from stdout: its hard set).
- A folder of SMG-style CSV files, one per video (`VIDEO.csv`, or `VIDEO/VIDEO_finelabels.csv` as
  `mgrec detect --format smg` writes them): no header, rows `class(1..K),start_frame,end_frame`
  with an optional fourth `score` column (a folder uses it on every row of every file or on none;
  without it every score is 1.0), read by `mgrec.smg_csv.read_prediction_rows`. Seconds are frames / fps.

Writing: results JSON (`save_predictions`: ActivityNet-complete, with `version`, `results`,
`external_data`, which the official evaluator and DETAD require, and an `mgrec` block saying
which set the file holds and where it came from, read back by `read_predictions_info`), and one flat
CSV with a header (`save_predictions_csv`); SMG-style files per video are written by
`mgrec.smg_csv.write_smg_labels`.

Every problem raises `InputError` naming the file and the key path or line.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import numbers
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import mgrec
from mgrec.errors import InputError, shown_key, where
from mgrec.files import (
    as_real,
    atomic_write_text,
    brief,
    counted,
    decode_utf8,
    is_finite_real,
    is_hidden,
    listed,
    not_a_file,
    number_refusal,
    parse_json,
    part_of,
    path_argument,
    read_json,  # one JSON reader: line:column, duplicate keys, UTF-8
    refuse_wide_text,
    text_lines,
)
from mgrec.files import is_number as _is_number
from mgrec.provenance import command_line, provenance
from mgrec.records import Detection, check_class_list, recorded_name_problem
from mgrec.smg_csv import (
    csv_files,
    decimal_number,
    fps_problem,
    prediction_files,
    read_prediction_rows,
    refuse_an_incomplete_set,
    whole_number,
)
from mgrec.timeline import FeatureGrid

# What `version` says in results JSON; the official evaluator only checks that the key exists.
RESULTS_VERSION = "mgrec-results-1"
# The block of mgrec's own facts in results JSON (ActivityNet tools ignore keys they do not know).
MGREC_KEY = "mgrec"
UNKNOWN_EXTERNAL_DATA = {
    "used": None,
    "details": "not recorded by mgrec: features from a backbone pretrained on other data count as external data",
}

# Which detections a results JSON holds, as its `MGREC_KEY` block's `set` says: every reader acts on it (a ranked list
# is scored and drawn at the threshold it records, a hard set whole), so another value cannot be passed over
PREDICTION_SETS = {"hard": "the hard set, what `mgrec detect` writes by default",
                   "ranked": "the ranked list of every detection, `mgrec detect --all`"}
CSV_COLUMNS = ("video", "start_s", "end_s", "start_frame", "end_frame", "label", "score")
# Said where a prediction's class id does not fit the class list it is read against: a file of another run, or
# ground truth whose classes are only the labels it holds (an annotations file without some class)
ANOTHER_CLASS_LIST = "; were the predictions made with another class list than this one"


def load_predictions(
    path: str | Path,
    classes: list[str],
    fps: float | None = None,
    fps_by_video: Mapping[str, float] | None = None,
) -> dict[str, list[Detection]]:
    """Predictions per video from a results JSON file or a folder of SMG-style CSV files.

    For a CSV folder give `fps` (one rate for all videos) or `fps_by_video`. A file in SMG's layout
    `VIDEO/VIDEO_finelabels.csv` belongs to the video its folder names; a flat file to its stem, less
    a `_finelabels` ending (`Sample0036_finelabels.csv` -> `Sample0036`). With `fps_by_video`, a flat
    file whose stem is no video id belongs to the id its stem starts with followed by "_" (`cam_1_pred.csv`
    -> `cam_1`; the longest such id wins).
    """
    path = path_argument(path, "load_predictions: path")
    classes, fps_by_video = _checked_load_arguments(classes, fps_by_video)  # (fps: each file's, by its video)
    if path.is_dir():
        return _load_csv_folder(path, classes, fps, fps_by_video)
    if not path.is_file():
        kind = not_a_file(path.stat().st_mode) if path.exists() else None
        raise InputError(f"{path}: {kind}, not a predictions file or folder" if kind else
                         f"{path}: no such predictions file or folder")
    # By content, not by suffix: whatever `mgrec detect` wrote reads back under any name.
    head = _first_text(path)
    if _is_json_lines(path):
        return _load_json_lines(path, classes)
    if head.startswith("{"):
        return _load_json(path, classes)
    if _is_table_head(head):
        return _load_table_csv(path, classes)
    with open(path, "rb") as handle:  # told apart by its text, which another encoding hides: say which
        refuse_wide_text(path, handle.read(4))
    if _is_subtitles(head):
        raise InputError(f"{path}: subtitles (`mgrec detect --format srt` or `vtt`), {_SUBTITLES_UNSCORED}")
    raise InputError(
        f"{path}: not a predictions file; expected results JSON ({{\"results\": ...}}), the CSV table of "
        f"`mgrec detect --format csv` (header {','.join(CSV_COLUMNS)}), the JSON lines `mgrec stream` prints, or a "
        "folder of SMG-style CSV files"
    )


def load_predictions_with_info(
    path: str | Path,
    classes: list[str],
    fps: float | None = None,
    fps_by_video: Mapping[str, float] | None = None,
) -> tuple[dict[str, list[Detection]], dict[str, Any]]:
    """`load_predictions` and `read_predictions_info` of one file, a results JSON parsed once (`mgrec score` parsed
    a ranked list of a million detections twice, 180 MB each time: a third of its time). What each refuses is
    refused as by the two called in turn: a detection before the `MGREC_KEY` block."""
    path = path_argument(path, "load_predictions: path")
    if not is_results_json(path):
        return load_predictions(path, classes, fps, fps_by_video), read_predictions_info(path)
    classes, fps_by_video = _checked_load_arguments(classes, fps_by_video)
    document = read_json(path, "predictions")
    return _results_of(document, path, classes), _info_block(document, path)


def _checked_load_arguments(classes: object, fps_by_video: object) -> tuple[list[str], Mapping[str, float] | None]:
    """`load_predictions`'s other arguments, refused by name before any file is read. Unchecked, classes=None was a
    raw TypeError, a str ("PEN") was read as a list of its characters (`unknown class 'PEN'; known: PEN`), and a list
    of label ids (`range(7)`) as class names; fps_by_video=[50] a raw TypeError at the first file of a folder."""
    classes = check_class_list(classes)  # as score() and OfflineDetector take one
    if fps_by_video is not None and not isinstance(fps_by_video, Mapping):
        raise InputError(f"fps_by_video: expected a mapping {{video_id: frames per second}} or None, got "
                         f"{brief(fps_by_video)}")
    return classes, fps_by_video


def read_predictions_info(path: str | Path) -> dict[str, Any]:
    """The `MGREC_KEY` block of a results JSON file written by `save_predictions` (which set it holds,
    its threshold, run, checkpoint, provenance); {} for a file without one: results JSON written by
    other tools or by mgrec before the block existed, the CSV table, JSON lines, a folder of SMG-style CSV files."""
    path = Path(path)
    if path.is_dir() or not path.is_file():
        return {}
    head = _first_text(path)
    if not head.startswith("{") or _is_json_lines(path):  # a stream's emissions record nothing of the kind
        return {}
    return _info_block(read_json(path, "predictions"), path)


def _info_block(document: object, path: Path) -> dict[str, Any]:
    """The `MGREC_KEY` block of the results JSON `document` of `path`, checked (`read_predictions_info`)."""
    block = document.get(MGREC_KEY, {}) if isinstance(document, dict) else {}
    if not isinstance(block, dict):
        raise InputError(f"{where(path, key=MGREC_KEY)}: expected an object (what mgrec recorded), got {block!r}")
    # another value ("Ranked", "all") was read as a file that does not say: a ranked list scored at 0 with every
    # candidate counted (F1 19 for 36), and without the note that says so of a file recording nothing
    if block.get("set") is not None and not (isinstance(block["set"], str) and block["set"] in PREDICTION_SETS):
        raise InputError(f"{where(path, key=f'{MGREC_KEY}.set')}: expected "
                         + " or ".join(f"{name!r} ({words})" for name, words in PREDICTION_SETS.items())
                         + f", or no key where it is not known; got {brief(block['set'])}")
    # names of how the file was made, printed by `score` ("tuned on [1]") and written into its scores
    name = recorded_name_problem(block)
    if name is not None:
        raise InputError(f"{where(path, key=f'{MGREC_KEY}.{name}')}: expected a name (a string) or null, got "
                         f"{brief(block[name])}")
    return block


def is_csv_table(path: str | Path) -> bool:
    """Whether `path` is a file holding the CSV table of `mgrec detect --format csv` (by its header, as
    `load_predictions` tells it)."""
    path = Path(path)
    return path.is_file() and _is_table_head(_first_text(path))


def is_results_json(path: str | Path) -> bool:
    """Whether `path` is a file holding one results JSON document (ActivityNet's layout; not JSON lines, not a
    CSV table, not a folder)."""
    path = Path(path)
    if not path.is_file():
        return False
    head = _first_text(path)
    return head.startswith("{") and not _is_json_lines(path)


def _is_table_head(head: str) -> bool:
    """Whether `head` (a file's first text) starts with the table's header row, read as CSV: a table written back
    quoted (R's write.csv, pandas with QUOTE_ALL or QUOTE_NONNUMERIC: `"video","start_s",...`) has the same header,
    and was refused as "not a predictions file", its header named as the one expected."""
    first = head.split("\n", 1)[0].strip()
    try:
        cells = next(csv.reader([first]), [])
    except csv.Error:
        return False
    return tuple(cells) == CSV_COLUMNS


# Subtitles are written for a player: a class name and a rounded score per cue, no class id, no set or threshold
_SUBTITLES_UNSCORED = ("which are text for a player (class names, scores rounded to 2 digits, no class ids), not "
                       "read back: give what `mgrec detect` writes to be read, a results JSON (--out "
                       "detections.json), a CSV table or SMG label files")
_SUBRIP_TIMING = re.compile(r"\d+\s*\n\s*\d+:\d\d:\d\d,\d{3} --> ")


def _is_subtitles(head: str) -> bool:
    """Whether `head` (a file's first text) opens a WebVTT or SubRip file, as `mgrec detect --format vtt|srt` writes."""
    return head.startswith("WEBVTT") or _SUBRIP_TIMING.match(head) is not None


def _first_text(path: Path, size: int = 4096) -> str:
    try:
        with open(path, "rb") as handle:
            start = handle.read(size)
    except OSError as exc:
        raise InputError(f"{path}: cannot read predictions: {exc.strerror or exc}") from None
    return start.decode("utf-8-sig", errors="replace").lstrip()


# ---------------------------------------------------------------------------------------------
# JSON


def _load_json(path: Path, classes: list[str]) -> dict[str, list[Detection]]:
    return _results_of(read_json(path, "predictions"), path, classes)


def _results_of(document: object, path: Path, classes: list[str]) -> dict[str, list[Detection]]:
    """The detections of results JSON `document` (of `path`). Each video's entries are let go once read (`results`
    keeps None there): a million parsed entries and the detections made of them were both held at once."""
    if not isinstance(document, dict) or "results" not in document:
        found = ("; it holds annotations (a 'database' object), the ground truth, not predictions (`mgrec score --gt` "
                 "takes it)"
                 if isinstance(document, dict) and "database" in document else "")
        if isinstance(document, dict) and {"video-id", "t-start", "t-end"} <= set(document):
            # ActionFormer's evaluation keeps its results as columns (and `label` as the class's index), and users
            # save that dict as JSON: the message said only that a 'results' key was missing
            found = ("; it holds columns video-id, t-start, t-end, label, score (ActionFormer's results), not "
                     "detections per video: write them as {\"results\": {video_id: [{\"segment\": [t-start, t-end], "
                     "\"label_id\": label, \"score\": score}, ...]}} (label_id where label is the class's index)")
        raise InputError(f"{path}: expected a JSON object with a 'results' key{found}")
    results = document["results"]
    if not isinstance(results, dict):
        raise InputError(f"{where(path, key='results')}: expected an object {{video_id: [detections]}}")
    class_ids = {name: i for i, name in enumerate(classes)}
    predictions: dict[str, list[Detection]] = {}
    for video_id in list(results):
        entries = results[video_id]
        if not isinstance(entries, list):
            raise InputError(f"{where(path, key=f'results.{video_id}')}: expected a list of detections")
        predictions[video_id] = [
            _parse_plain_entry(entry, video_id, classes, class_ids)
            or _parse_entry(entry, _json_location(path, f"results.{video_id}[{i}]"), video_id, classes, class_ids)
            for i, entry in enumerate(entries)
        ]
        results[video_id] = entries = None
    return predictions


# How far the first line of a predictions file is read to tell JSON lines: a stream's line is under 1 KB, but a
# record with keys of another tool's may be longer than the first 4 KB `_first_text` reads
FIRST_LINE_LIMIT = 1 << 20


def _is_json_lines(path: Path) -> bool:
    """Whether `path` holds one detection per line, as `mgrec stream` prints them (its first line alone a JSON
    object with a video or a segment; a results JSON's first line is not one). A line lacking one of the two is the
    reader's to name: lines with `segment(frames)` alone were read as one JSON document, "not valid JSON: Extra
    data" at line 2."""
    with open(path, "rb") as handle:
        start = handle.read(FIRST_LINE_LIMIT)
    # the first line that holds anything (blank lines are skipped, as the reader skips them); \r alone ends one too
    text = start.decode("utf-8-sig", errors="replace").lstrip()
    first = re.match(r"[^\r\n]*", text).group().strip()
    if len(first) == len(text.rstrip()) and re.match(r'\{\s*"video"\s*:', first) and not first.endswith("}"):
        return True  # a stream's one line, cut (killed while writing it): its reader says so
    if not (first.startswith("{") and first.endswith("}")):
        return False
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):  # the file's own reader then says what is wrong with it, and where
        return False
    return isinstance(record, dict) and ("video" in record or "segment" in record)


def _load_json_lines(path: Path, classes: list[str]) -> dict[str, list[Detection]]:
    """The emissions of `mgrec stream` saved from its stdout (`> stream.jsonl`), one JSON object per line: each a
    detection of the results JSON with its video (`Emission.to_json`). A stream's emissions are its hard set."""
    class_ids = {name: i for i, name in enumerate(classes)}
    predictions: dict[str, list[Detection]] = {}
    emitted: dict[str, tuple[float, int]] = {}  # video -> the latest emitted_at read, and its line
    seen: dict[tuple, int] = {}  # (video, emitted_at, detection) -> its line
    text = decode_utf8(path, path.read_bytes())
    lines = text_lines(text)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number == len(lines) and not text.endswith(("\n", "\r")):
            _refuse_a_cut_last_line(line, path, number)
        record = parse_json(line, path, "predictions", line=number)  # duplicate keys, depth, huge numbers
        video_id = record.get("video") if isinstance(record, dict) else None
        if not isinstance(video_id, str) or not video_id:
            raise InputError(f"{where(path, line=number, key='video')}: expected a detection with its video id, got "
                             f"{brief(record)}")
        at = lambda field, number=number: where(path, line=number, key=field.lstrip(".") or None)  # noqa: E731
        detection = _parse_plain_entry(record, video_id, classes, class_ids) or _parse_entry(record, at, video_id,
                                                                                             classes, class_ids)
        predictions.setdefault(video_id, []).append(detection)
        _refuse_a_second_session(record.get("emitted_at") if "emitted_at" in record else None, detection, emitted,
                                 seen, path, number)
    return predictions


def _refuse_a_cut_last_line(line: str, path: Path, number: int) -> None:
    """InputError where the last line of a JSON-lines file, unended by a line break, is not whole JSON: a `mgrec
    stream` killed while writing an emission (Ctrl-C, a lost SSH session, OOM) leaves half of it, which was a bare
    `not valid JSON` error. The lines before it are whole, but they are not scored without the user's word: the file
    is the stream's record of what it decided, and the cut emission is a gesture it did decide."""
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        if exc.pos < len(line.rstrip()):  # a mistake inside the line, not its end missing: parse_json names it
            return
        raise InputError(f"{path}:{number}: the last line is cut short ({len(line)} characters, then the file ends "
                         "without a line break): a `mgrec stream` killed while writing an emission leaves one so. "
                         + (f"The {counted(number - 1, 'line')} before it {'is' if number == 2 else 'are'} whole: "
                            "remove the cut line (sed -i '$d' FILE) to score them, knowing that the stream's last "
                            "emission is lost" if number > 1 else "Nothing before it: run the stream again")) from None
    except (ValueError, RecursionError):
        return


def _refuse_a_second_session(emitted_at: object, detection: Detection, emitted: dict[str, tuple[float, int]],
                             seen: dict[tuple, int], path: Path, number: int) -> None:
    """One stream's emissions of a video come in the order they were decided (`emitted_at` never goes back) and
    each once: a video whose emissions start over, or repeat a line, is two sessions appended to one file
    (`>> log.jsonl` twice, a rerun after Ctrl-C), and scoring both would count every gesture twice, half of them
    as false positives."""
    if emitted_at is None:
        return  # another tool's lines, or mgrec's before emitted_at: nothing to tell sessions by
    at = where(path, line=number, key="emitted_at")
    if not _is_number(emitted_at) or not math.isfinite(emitted_at) or emitted_at < 0:
        raise InputError(f"{at}: expected the seconds of stream at which the gesture was emitted (a number >= 0), "
                         f"got {brief(emitted_at)}")
    video_id = detection.video_id
    latest = emitted.get(video_id)
    again = seen.setdefault((video_id, float(emitted_at), detection), number)
    back = latest is not None and emitted_at < latest[0]
    if back or again != number:
        earlier = (f"line {latest[1]} emitted video {video_id!r} at {latest[0]:g} s" if back
                   else f"line {again} holds the same emission")
        raise InputError(f"{at}: {emitted_at:g} s, but {earlier}: its emissions start over, two stream sessions of "
                         "one video in one file (appended with >>?); keep each session's lines in a file of its own, "
                         "or remove the earlier session's")
    emitted[video_id] = (float(emitted_at), number)


def _json_location(path: Path, key: str) -> Callable[[str], str]:
    return lambda field: where(path, key=key + field)


def _parse_entry(
    entry: object, at: Callable[[str], str], video_id: str, classes: list[str], class_ids: dict[str, int]
) -> Detection:
    """One detection of a JSON entry (or a CSV row read into the same keys); `at(".field")` says where."""
    if not isinstance(entry, dict):
        raise InputError(f"{at('')}: expected an object with segment, label and score")
    start, end = _segment_of(entry, at)
    label_id = _label_id_of(entry, at, classes, class_ids)
    score = _score_of(entry, at)
    start_frame, end_frame = _frames_of(entry, at)
    return Detection(
        video_id=video_id, start=start, end=end, label_id=label_id, label=classes[label_id],
        score=score, start_frame=start_frame, end_frame=end_frame,
    )


def _parse_plain_entry(entry: object, video_id: str, classes: list[str], class_ids: dict[str, int]) -> Detection | None:
    """`_parse_entry`'s Detection of an entry of the plain form (what mgrec and other tools write: a float segment
    [start, end], 0 <= start < end, both finite; a finite float score; a known label, a label_id in range, or both
    of one class; no frames or integer frames 0 <= start <= end), made without its checks one by one; None for any
    other entry, which `_parse_entry` then reads (and names what is wrong). The two give the same Detection
    (tests/evaluate/test_predictions.py checks it on random entries): a million of them were read at 25 us each."""
    if type(entry) is not dict:
        return None
    segment, score = entry.get("segment"), entry.get("score")
    if not (type(segment) is list and len(segment) == 2 and type(score) is float and -math.inf < score < math.inf):
        return None
    start, end = segment
    if not (type(start) is float and type(end) is float and 0.0 <= start < end < math.inf):
        return None
    label, label_id = entry.get("label"), entry.get("label_id")
    if label is not None:
        known = class_ids.get(label) if type(label) is str else None
        if known is None or not (label_id is None or (type(label_id) is int and label_id == known)):
            return None
        label_id = known
    elif not (type(label_id) is int and 0 <= label_id < len(classes)):
        return None
    frames = entry.get("segment(frames)")
    if frames is None:
        start_frame = end_frame = None
    elif type(frames) is list and len(frames) == 2:
        start_frame, end_frame = frames
        if not (type(start_frame) is int and type(end_frame) is int and 0 <= start_frame <= end_frame):
            return None
    else:
        return None
    return Detection(video_id=video_id, start=start, end=end, label_id=label_id, label=classes[label_id], score=score,
                     start_frame=start_frame, end_frame=end_frame)


def repeats_words(predictions: Mapping[str, list[Detection]], path: str | Path) -> str:
    """The detections of `path` that repeat another exactly, in words ("3000 of the 6000 detections in p.json repeat
    another exactly (...; first: ...)"), or "" where none does: a file joined to itself (`cat a.csv a.csv`), a
    folder's files doubled, results written twice. `score` counts each copy as a false positive, the page of `report
    --detections` each in its counts and rates; both say so."""
    counts = Counter(d for items in predictions.values() for d in items)
    repeated = sum(count - 1 for count in counts.values())
    if not repeated:
        return ""
    first = next(d for d, count in counts.items() if count > 1)
    return (f"{part_of(repeated, sum(map(len, predictions.values())), 'detection')} in {path} "
            f"repeat{'s' * (repeated == 1)} another exactly "
            f"(video, class, segment and score; first: {first.video_id} {first.label} [{first.start:g}, "
            f"{first.end:g}] s)")


def segment_problem(start: object, end: object) -> str | None:
    """What is wrong with a segment's times (seconds), as every predictions reader refuses it (and the annotations
    reader a negative start); None when nothing is. Shared with `score` and `save_predictions`, which take segments
    given in Python: what they let through, a reader refused. Each time is read by `mgrec.files.as_real`, as `score`
    reads every field: a 0-d torch tensor or numpy array (a model's output) is its number, as the metrics take it
    (refused here, "expected a finite start before its end, got [tensor(1.), tensor(2.)]" named no fault)."""
    if type(start) is float and type(end) is float and 0.0 <= start < end < math.inf:  # what the readers meet
        return None
    numbers_given = [as_real(start), as_real(end)]
    if not (is_finite_real(numbers_given[0]) and is_finite_real(numbers_given[1])
            and numbers_given[0] < numbers_given[1]):
        # a value that is no number quoted as such: the str '1.0' printed as 1.0 read as a good segment, [1.0, 2.0]
        shown = [value if isinstance(value, numbers.Real) else brief(value) for value in (start, end)]
        why = "; ".join(f"{field}: {number_refusal(value)}" for field, value, number
                        in zip(("start", "end"), (start, end), numbers_given) if number is None)
        return f"expected a finite start before its end, got [{shown[0]}, {shown[1]}]" + (f" ({why})" if why else "")
    start, end = numbers_given
    # As in the annotations reader: times count from the video's start, and a negative one is a bug in
    # whatever wrote the file (mgrec clips its detections to the video), not a detection to score.
    if start < 0:
        return f"start {start:g} s is negative (times count from the video's start), got [{start}, {end}]"
    return None


def _segment_of(entry: dict, at: Callable[[str], str]) -> tuple[float, float]:
    segment = entry.get("segment")
    if segment is None:
        other = next((keys for keys in (("t-start", "t-end"), ("start", "end"), ("start_s", "end_s"))
                      if all(key in entry for key in keys)), None)  # another tool's keys for the same two times
        hint = "" if other is None else f" (it has {other[0]!r} and {other[1]!r}: give them as segment)"
        raise InputError(f"{at('')}: missing 'segment' [start_s, end_s]{hint}")
    if not (isinstance(segment, list) and len(segment) == 2 and all(_is_number(t) for t in segment)):
        raise InputError(f"{at('.segment')}: expected [start_s, end_s] numbers, got {segment!r}")
    problem = segment_problem(*segment)
    if problem is not None:
        raise InputError(f"{at('.segment')}: {problem}")
    return float(segment[0]), float(segment[1])


def _label_id_of(entry: dict, at: Callable[[str], str], classes: list[str], class_ids: dict[str, int]) -> int:
    label_id = entry.get("label_id")
    label = entry.get("label")
    if label_id is None and label is None:
        raise InputError(f"{at('')}: missing 'label' (class name) or 'label_id'")
    if label_id is not None and not (isinstance(label_id, int) and not isinstance(label_id, bool)
                                     and 0 <= label_id < len(classes)):
        raise InputError(
            f"{at('.label_id')}: expected an integer in [0, {len(classes)}), got {label_id!r}"
            + (f"{ANOTHER_CLASS_LIST} ({len(classes)}: {brief(classes)})" if isinstance(label_id, int) else "")
        )
    if label is not None and not isinstance(label, str):
        index_hint = ""
        if isinstance(label, int) and not isinstance(label, bool):  # ActionFormer's results hold class ids here
            index_hint = (f" (if {label} is the class's index in [0, {len(classes)}) of {brief(classes)}, give it "
                          "as label_id)")
        raise InputError(f"{at('.label')}: expected a class name (string), got {brief(label)}{index_hint}")
    if label is not None and label not in class_ids:
        # a class's index written as text ("3": a tool that writes every field as a string)
        index_hint = (f" (if {label} is the class's index in [0, {len(classes)}), give it as label_id, a number)"
                      if label.isascii() and label.isdigit() and int(label) < len(classes) else "")
        raise InputError(f"{at('.label')}: unknown class {label!r}; known: {classes}{index_hint}")
    if label is not None and label_id is not None and class_ids[label] != label_id:
        raise InputError(
            f"{at('')}: label {label!r} is class {class_ids[label]} but label_id is {label_id}{ANOTHER_CLASS_LIST} "
            f"({len(classes)}: {brief(classes)})"
        )
    return class_ids[label] if label_id is None else label_id


def _score_of(entry: dict, at: Callable[[str], str]) -> float:
    score = entry.get("score")
    if score is None:
        raise InputError(f"{at('')}: missing 'score'")
    if not _is_number(score) or not math.isfinite(score):
        raise InputError(f"{at('.score')}: expected a finite number, got {score!r}")
    return float(score)


def _frames_of(entry: dict, at: Callable[[str], str]) -> tuple[int | None, int | None]:
    frames = entry.get("segment(frames)")
    if frames is None:
        return None, None
    if not (isinstance(frames, list) and len(frames) == 2
            and all(isinstance(f, int) and not isinstance(f, bool) for f in frames)
            and 0 <= frames[0] <= frames[1]):
        raise InputError(
            f"{at('.segment(frames)')}: expected [start_frame, end_frame] integers, "
            f"0 <= start <= end, got {frames!r}"
        )
    return frames[0], frames[1]


# ---------------------------------------------------------------------------------------------
# CSV table (`save_predictions_csv`)


def _load_table_csv(path: Path, classes: list[str]) -> dict[str, list[Detection]]:
    class_ids = {name: i for i, name in enumerate(classes)}
    predictions: dict[str, list[Detection]] = {}
    rows = csv.reader(io.StringIO(decode_utf8(path, path.read_bytes()), newline=""), strict=True)
    next(rows)  # the header, checked by the caller
    while True:
        first_line = rows.line_num + 1  # where the row starts: a quote never closed reads on to the file's end
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"{where(path, line=first_line)}: not a row of {','.join(CSV_COLUMNS)} ({exc}; a line "
                             "break or quote inside a cell must be in a quoted cell, its quotes doubled)") from None
        line = rows.line_num
        if not row:
            continue
        if len(row) != len(CSV_COLUMNS):
            raise InputError(f"{where(path, line=line)}: expected {len(CSV_COLUMNS)} columns "
                             f"({','.join(CSV_COLUMNS)}), got {len(row)}")
        cells = dict(zip(CSV_COLUMNS, row))
        cells["video"], cells["label"] = from_spreadsheet_text(cells["video"]), from_spreadsheet_text(cells["label"])
        video_id = cells["video"]
        if not video_id:
            raise InputError(f"{where(path, line=line, key='video')}: empty video id")
        entry = {"segment": [_csv_number(path, line, cells, "start_s"), _csv_number(path, line, cells, "end_s")],
                 "label": cells["label"], "score": _csv_number(path, line, cells, "score")}
        if cells["start_frame"] or cells["end_frame"]:
            entry["segment(frames)"] = [_csv_number(path, line, cells, "start_frame", integer=True),
                                        _csv_number(path, line, cells, "end_frame", integer=True)]
        at = lambda field, line=line: where(path, line=line, key=field.lstrip(".") or None)  # noqa: E731
        predictions.setdefault(video_id, []).append(_parse_plain_entry(entry, video_id, classes, class_ids)
                                                    or _parse_entry(entry, at, video_id, classes, class_ids))
    return predictions


def _csv_number(path: Path, line: int, cells: dict[str, str], column: str, integer: bool = False) -> float | int:
    text = cells[column]
    try:  # ASCII numbers only, as the other CSV readers take them: int("６８６１") and float("1_37.2") are numbers
        return whole_number(text.strip()) if integer else decimal_number(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise InputError(f"{where(path, line=line, key=column)}: expected {kind}, got {text!r}") from None


# ---------------------------------------------------------------------------------------------
# SMG-style CSV folder


def _video_id_for(file: Path, folder: Path, fps_by_video: Mapping[str, float] | None) -> str:
    if file.parent != folder:  # SMG's layout (`prediction_files`): the folder names the video, as the file does
        video_id = file.parent.name
        if fps_by_video is not None and video_id not in fps_by_video:  # `x_1/x_1_finelabels.csv` was read as x's
            raise InputError(f"{file}: video {brief(video_id)} (its folder) is not in the ground truth")
        return video_id
    stem = file.stem.removesuffix("_finelabels") if file.stem != "_finelabels" else file.stem
    if fps_by_video is None or stem in fps_by_video:
        return stem
    owners = [v for v in fps_by_video if file.stem.startswith(v + "_")]
    if not owners:
        raise InputError(f"{file}: its name matches no video id with a known fps (expected '<video_id>[_...].csv')")
    return max(owners, key=len)


def _load_csv_folder(
    folder: Path, classes: list[str], fps: float | None, fps_by_video: Mapping[str, float] | None
) -> dict[str, list[Detection]]:
    if fps is None and fps_by_video is None:
        # the ways to give it named: the bare "needs the frame rate" left a caller to guess the keyword
        raise InputError(f"{folder}: reading SMG-style CSV predictions needs the frame rate (fps), since their rows "
                         "count frames: give fps= (one rate for every video) or fps_by_video= (each video's, as "
                         "the ground truth's AnnotationSet.videos give them)")
    # Flat (`VIDEO.csv`) or SMG's own layout, which `mgrec detect --format smg` writes
    # (`VIDEO/VIDEO_finelabels.csv`).
    refuse_an_incomplete_set(folder)
    files = prediction_files(folder)
    read = set(files)
    unread = [path for path in sorted(csv_files(folder.glob("*/*"))) if path not in read
              and not is_hidden(path, folder)  # SMG's frame-count files, copied with the tree, are no labels
              and not path.stem.endswith("_data")]
    if unread:  # left out, their videos would count as all missed: F1 65 -> 59 for one file named VIDEO.csv
        raise InputError(f"{unread[0]}: a .csv file in a video's folder that is not named "
                         f"{unread[0].parent.name}_finelabels.csv, so it would not be read"
                         f"{f' (and {len(unread) - 1} more)' if len(unread) > 1 else ''}; SMG's layout is "
                         "VIDEO/VIDEO_finelabels.csv (or flat VIDEO.csv): rename it, or move it out of the folder")
    if not files:
        subtitles = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".srt", ".vtt") and not is_hidden(p))
        if subtitles:
            raise InputError(f"{folder}: holds subtitles ({subtitles[0].name}, ...: `mgrec detect --format "
                             f"{subtitles[0].suffix.lower()[1:]}`) and no .csv prediction files; subtitles are "
                             + _SUBTITLES_UNSCORED.removeprefix("which are "))
        deeper = sorted(folder.glob("*/*/*_finelabels.csv"))
        detections = sorted(folder.glob("detections_*.json"))  # a run's folder given for its detections
        raise InputError(f"{folder}: no .csv prediction files in this folder (nor VIDEO/VIDEO_finelabels.csv)"
                         + (f"; {deeper[0].parent.parent} holds them one folder down: give that folder" if deeper
                            else f"; it holds {detections[0]} (`mgrec evaluate` writes a split's detections "
                                 "there): give that file" if detections else ""))
    predictions: dict[str, list[Detection]] = {}
    source_of: dict[str, Path] = {}
    # The first file of each column count (3: no score, 4: scored). Files without rows hold no clue.
    # Both kinds in one folder are two sets put together (the hard set of one run, every score 1.0,
    # beside another's ranked list): scored as one, F1 and mAP would mean nothing.
    first_with: dict[int, Path] = {}
    for file in files:
        video_id = _video_id_for(file, folder, fps_by_video)
        if video_id in source_of:
            raise InputError(f"{file}: video {video_id} already read from {source_of[video_id]}")
        video_fps = fps_by_video[video_id] if fps_by_video is not None else fps
        if fps_problem(video_fps):
            raise InputError(f"{file}: video {video_id}: {fps_problem(video_fps)}")
        source_of[video_id] = file
        predictions[video_id], columns = _read_csv_file(file, video_id, classes, float(video_fps))
        if columns is not None:
            first_with.setdefault(columns, file)
        if len(first_with) > 1:
            raise InputError(
                f"{folder}: mixes prediction files without a score column ({first_with[3]}: 3 columns) and with "
                f"one ({first_with[4]}: 4 columns), e.g. the hard set of one `mgrec detect` beside the ranked list "
                "(--all) of another; score a folder of one kind"
            )
    return predictions


def _read_csv_file(file: Path, video_id: str, classes: list[str], fps: float) -> tuple[list[Detection], int | None]:
    """The detections of one SMG-style file and its column count (None: no rows)."""
    clock = FeatureGrid(fps=fps, stride=1, window=1)  # absolute frames: stride and window play no part
    rows, columns = read_prediction_rows(file, len(classes))
    return [
        Detection(
            video_id=video_id, start=clock.frame_to_seconds(row.start_frame), end=clock.frame_to_seconds(row.end_frame),
            label_id=row.class_number - 1, label=classes[row.class_number - 1], score=row.score,
            start_frame=row.start_frame, end_frame=row.end_frame,
        )
        for row in rows
    ], columns


# ---------------------------------------------------------------------------------------------
# Writing


def save_predictions(
    pred: Mapping[str, list[Detection]],
    path: str | Path,
    info: Mapping[str, Any] | None = None,
    external_data: Mapping[str, Any] | None = None,
) -> str:
    """Write predictions as ActivityNet results JSON (times unrounded, see `Detection.to_json`); returns the sha256
    of the bytes written (what `evaluate` names in its scores: read back, another writer's file could be hashed).

    The file holds the three keys the official ActivityNet evaluator and DETAD require
    (`version`, `results`, `external_data`) and an `MGREC_KEY` block: `info` (for example
    {"set": "hard" | "ranked", "score_threshold", "class_thresholds", "threshold_tuned_on", "run", "checkpoint"}), plus
    `mgrec_version` and a `provenance` record (command, date, git commit, machine; `info`'s own
    `provenance`, when it has one, is kept instead). `external_data` defaults to
    {"used": None, "details": ...}: whether the features' backbone was pretrained on other data
    is not known here, and None says so rather than claiming either answer.
    """
    path = path_argument(path, "save_predictions: path")
    pred = _checked_for_writing(pred)
    block = _checked_block(info, "info") or {}
    external_data = _checked_block(external_data, "external_data")
    if "mgrec_version" in block:
        raise InputError("info: must not hold 'mgrec_version': save_predictions writes it")
    block["mgrec_version"] = mgrec.__version__
    if "provenance" not in block:
        block["provenance"] = provenance(command_line())
    document = {
        "version": RESULTS_VERSION,
        "results": {video_id: [d.to_json() for d in items] for video_id, items in pred.items()},
        "external_data": dict(external_data) if external_data is not None else dict(UNKNOWN_EXTERNAL_DATA),
        MGREC_KEY: block,
    }
    # allow_nan=False: NaN is not JSON and the official evaluator's json.load would accept it silently.
    text = json.dumps(document, indent=1, allow_nan=False, default=_path_text) + "\n"
    atomic_write_text(path, text)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checked_block(value: object, name: str) -> dict[str, Any] | None:
    """`save_predictions`'s `info` or `external_data` (None: not given), as a dict of JSON values, refused by name
    before anything is written. Unchecked, a list or str was a raw TypeError or ValueError from dict(), a NaN the json
    module's `Out of range float values are not JSON compliant` (the detections checked by then, nothing written)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InputError(f"{name}: expected a mapping (a dict) or None, got {brief(value)}")
    block = dict(value)
    stranger = next((key for key in block if not isinstance(key, str)), None)
    if stranger is not None:
        raise InputError(f"{name}: key {brief(stranger)}: expected str keys (JSON's)")
    try:
        json.dumps(block, allow_nan=False, default=_path_text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError(f"{name}: holds a value JSON cannot write ({exc}); give str, numbers (finite), bool, None, "
                         "paths, and lists and dicts of them") from None
    return block


def _checked_for_writing(pred: object) -> dict[str, list[Detection]]:
    """`save_predictions`'s predictions, each detection checked by the rules `load_predictions` reads it back with
    (`_segment_of`, `_score_of`, `_frames_of`; labels as one class list reads them), before anything is written: a
    file that cannot be read back fails at the scoring, far from the code that made it. A bad one is named by its
    video key and index. numpy's scalars become the Python numbers they hold (json writes no np.int64), and each
    video's list is read once (a generator given there was written as [])."""
    if not isinstance(pred, Mapping):
        raise InputError(f"predictions: expected a mapping {{video_id: [Detection]}}, got {type(pred).__name__}")
    checked: dict[str, list[Detection]] = {}
    first_label: dict[int, tuple[str, str]] = {}  # label_id -> its label, and where first met
    first_id: dict[str, tuple[int, str]] = {}  # label -> its label_id, and where first met
    for video_id, items in pred.items():
        # a results JSON's keys are strings: 1 was written as "1", beside a "1" of its own (a key read twice)
        if not isinstance(video_id, str) or not video_id:
            raise InputError(f"predictions: key {brief(video_id)}: expected a video id (a non-empty str)")
        key = f"predictions [{shown_key(video_id)}]"
        checked[video_id] = []
        for index, d in enumerate(listed(items, key, "a list of Detection")):
            place = f"{key}[{index}]"
            if not isinstance(d, Detection):
                raise InputError(f"{place}: expected a Detection, got {brief(d)}")
            if d.video_id != video_id:  # read back, it would belong to its key's video
                raise InputError(f"{place}: its video_id {brief(d.video_id)} is not the video it is listed under "
                                 f"({brief(video_id)})")
            entry = {"segment": [_plain(d.start), _plain(d.end)], "score": _plain(d.score)}
            if d.start_frame is not None or d.end_frame is not None:  # one frame alone was dropped without a word
                entry["segment(frames)"] = [_plain(d.start_frame), _plain(d.end_frame)]
            at = lambda field, place=place: place + field  # noqa: E731
            start, end = _segment_of(entry, at)
            start_frame, end_frame = _frames_of(entry, at)
            label_id = _plain(d.label_id)
            _check_one_class_list(label_id, d.label, place, first_label, first_id)
            checked[video_id].append(dataclasses.replace(
                d, start=start, end=end, label_id=label_id, score=_score_of(entry, at), start_frame=start_frame,
                end_frame=end_frame))
    return checked


def _plain(value: object) -> object:
    """A number as the Python int or float it holds (numpy's scalars: np.int64(5)); anything else as it is, for the
    reader's rules to refuse (a bool, numpy's too, is no number)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _check_one_class_list(label_id: object, label: object, place: str, first_label: dict[int, tuple[str, str]],
                          first_id: dict[str, tuple[int, str]]) -> None:
    """A detection's label_id and label as one class list reads them back: an integer >= 0 and a non-empty name,
    each label_id always with one label and each label with one label_id (`_label_id_of` refuses the file
    otherwise, whatever class list it is read with)."""
    if not (isinstance(label_id, int) and not isinstance(label_id, bool) and label_id >= 0):
        raise InputError(f"{place}.label_id: expected an integer >= 0, got {brief(label_id)}")
    if not isinstance(label, str) or not label:
        raise InputError(f"{place}.label: expected a class name (a non-empty str), got {brief(label)}")
    other, first = first_label.setdefault(label_id, (label, place))
    if other != label:
        raise InputError(f"{place}: label_id {label_id} is {label!r} here but {other!r} at {first}; no class list "
                         "reads both back")
    other_id, first = first_id.setdefault(label, (label_id, place))
    if other_id != label_id:
        raise InputError(f"{place}: label {label!r} is label_id {label_id} here but {other_id} at {first}; no class "
                         "list reads both back")


def _path_text(value: object) -> str:
    """JSON for the paths an `info` block may hold (a run directory, a checkpoint file); nothing else."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"save_predictions: {type(value).__name__} {value!r} in info is not JSON")


# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets (OWASP's
# CSV injection list); a leading apostrophe makes it text, and every spreadsheet hides the apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """`text` with an apostrophe before it where it starts a formula, or an apostrophe itself: so that the video
    `'=x` is not written as `=x` is, and both read back as what they were (`from_spreadsheet_text`)."""
    return "'" + text if text.startswith((*_FORMULA_START, "'")) else text


def from_spreadsheet_text(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith((*_FORMULA_START, "'")) else text


def save_predictions_csv(pred: Mapping[str, list[Detection]], path: str | Path) -> None:
    """Write one CSV with a header: video,start_s,end_s,start_frame,end_frame,label,score.

    Frame cells are empty for detections without frames. Names that a spreadsheet would run as a
    formula are written with a leading apostrophe (`spreadsheet_text`); reading removes it.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # The csv module quotes a cell holding \n (the line terminator) but not a lone \r, which every CSV reader then
    # takes for a line break: a row with one (a video id or class name of such a file) is written fully quoted.
    quoting_all = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for video_id, items in pred.items():
        for d in items:
            row = [spreadsheet_text(video_id), f"{d.start:.4f}", f"{d.end:.4f}",
                   "" if d.start_frame is None else d.start_frame, "" if d.end_frame is None else d.end_frame,
                   spreadsheet_text(d.label), repr(float(d.score))]  # exact: rounded scores tie
            (quoting_all if "\r" in row[0] + row[5] else writer).writerow(row)
    atomic_write_text(Path(path), buffer.getvalue())
