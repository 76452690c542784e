"""Annotations on disk: ActivityNet-style "database" JSON and SMG label CSVs.

Both readers return one in-memory `AnnotationSet` (seconds plus absolute frames, 0-based label ids,
canonical subset names `train`/`val`/`test`). Every problem in a file is an `InputError` whose
message names the file and the key path (JSON) or line (CSV) and says what was expected.

The JSON format (what ActionFormer, the official ActivityNet evaluator and DETAD read):

    {"version": "...", "classes": ["name0", "name1", ...],
     "taxonomy": [{"nodeId": 0, "nodeName": "Root", "parentId": null, "parentName": null},
                  {"nodeId": 1, "nodeName": "name0", "parentId": 0, "parentName": "Root"}, ...],
     "database": {"Sample0001": {"subset": "training", "fps": 28.0, "duration": 812.5,
                                 "annotations": [{"label": "Arms akimbo", "label_id": 8,
                                                  "segment": [12.0, 13.5],
                                                  "segment(frames)": [336, 378]}]}}}

`version`, `classes`, `taxonomy`, `num_frames` (OpenTAD's `frame`) and `segment(frames)` are optional when
reading, `duration` where `num_frames` gives the length (num_frames / fps), and `fps` where `num_frames` and
`duration` give it (OpenTAD's files) (a
taxonomy, ActivityNet's class tree, is not needed: the classes are `classes` or the label ids);
so are `label_id` (an instance's place in `classes`, or, in a file with neither, in the sorted labels)
and `fps` where the config's data.fps gives it (`load_annotations`). `save_annotations` writes all of
them that are known. `version`, `taxonomy` and `database` are the keys the official ActivityNet
evaluator and DETAD check before reading a ground-truth file; mgrec writes subset names
`train`/`val`/`test`, so give those tools `subset="val"` (their default is ActivityNet's "validation").
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgrec.config import (  # the one subset-name rule, shared with the config's split names
    DataConfig,
    canonical_subset,
    split_name,
)
from mgrec.errors import InputError, where
from mgrec.files import (
    atomic_open,
    brief,
    counted,
    decode_utf8,
    is_hidden,
    is_number,
    parse_json,
    path_argument,
    read_file_bytes,
    safe_child,
    spelling_hint,
    text_lines,
)
from mgrec.records import AnnotationSet, Segment, VideoInfo, class_names_problem
from mgrec.smg_csv import MAX_FPS, fps_problem, read_data_file, read_label_file, refuse_an_incomplete_set
from mgrec.timeline import FeatureGrid

FORMAT_VERSION = "mgrec-annotations-1"
TAXONOMY_ROOT = "Root"  # ActivityNet's name for the root node of its class tree

# Class ids 1..17 as stored in SMG label files; in memory label_id = file id - 1.
# Names from a MiGA participant's code (see the SMG notes): likely right, but not an organiser file.
SMG_CLASSES = (
    "Turtling neck and shoulder",
    "Rubbing eyes and forehead",
    "Folding arms",
    "Touching or covering suprasternal notch",
    "Moving legs",
    "Touching or scratching neck",
    "Folding arms behind body",
    "Rubbing hands and crossing finger(s)",
    "Arms akimbo",
    "Crossing legs",
    "Scratching some part of body",
    "Scratching/touching facial parts other than eyes",
    "Playing or adjusting hair",
    "Holding arms",
    "Pulling shirt collar",
    "Playing with jewelry / manipulating objects",
    "Illustrative hand gestures",
)

# The MiGA challenge split by subject (one subject per SampleXXXX video).
DEFAULT_SMG_SPLITS = "train=1-30,val=31-35,test=36-40"

# `segment(frames)` may disagree with `segment` * fps by rounding; more than this means a wrong fps.
_FRAME_TOLERANCE = 1.0


def _is_integer(value: Any) -> bool:
    """An int, or a float with no fractional part (some tools write frame numbers as 123.0)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


# ---------------------------------------------------------------------------------------------
# ActivityNet-style JSON


@dataclass(frozen=True)
class EntryError:
    """A problem with one video entry or one annotation entry of an annotations file."""

    video_id: str
    where: str  # "file [database.VID.annotations[i].segment]"
    message: str


class _BadEntry(Exception):
    """Raised inside the parser for one entry; turned into an InputError or an EntryError."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


class _LabelTable:
    """Checks (label_id, label) pairs against the declared class list or builds one from them."""

    def __init__(self, declared: list[str] | None, first_id_key: str | None = None,
                 named_in: str = "the top-level classes list"):
        self.declared = declared
        self.named_in = named_in  # where the declared list comes from, for messages (a class map: its file)
        self.id_of_declared = {name: index for index, name in enumerate(declared or [])}
        self.first_id_key = first_id_key  # where the first instance with a label_id is, for messages
        self.label_key: dict[str, str] = {}  # label -> where it was first met, for messages
        self.name_of_id: dict[int, tuple[str, str]] = {}  # id -> (name, key where first seen)
        self.id_of_name: dict[str, tuple[int, str]] = {}
        # Pairs that disagree with the first-seen ones. When the first seen is the odd one out (one bad
        # label_id before hundreds of good ones), the good ids go missing from the built list; the
        # disagreement, not the gap, is then the cause to report.
        self.conflicts: list[_BadEntry] = []

    def resolve(self, label: str, key: str) -> int:
        """The label_id of an instance named by its label alone: its place in the class list."""
        if self.declared is None:
            first = self.first_id_key
            raise _BadEntry(key, f"missing key 'label_id': other instances carry one (the first at [{first}]); give "
                                 "every instance its label_id, or add a top-level \"classes\" list to name the "
                                 "classes by label alone")
        if label not in self.id_of_declared:
            close = difflib.get_close_matches(label, self.declared, n=1)
            hint = f"; did you mean {close[0]!r}?{spelling_hint(label, close[0])}" if close else ""
            raise _BadEntry(f"{key}.label", f"{label!r} is not in {self.named_in}{hint}")
        return self.id_of_declared[label]

    def check(self, label_id: int, label: str, key: str) -> None:
        self.label_key.setdefault(label, f"{key}.label")
        if self.declared is not None:
            self._check_declared(label_id, label, key)
            return
        if label_id < 0:
            raise _BadEntry(f"{key}.label_id", f"label_id must be >= 0, got {label_id}")
        if label_id in self.name_of_id and self.name_of_id[label_id][0] != label:
            name, first_key = self.name_of_id[label_id]
            self._conflict(f"{key}.label", f"label_id {label_id} is {label!r} here but {name!r} at [{first_key}]"
                                           f"{spelling_hint(label, name)}")
        if label in self.id_of_name and self.id_of_name[label][0] != label_id:
            other_id, first_key = self.id_of_name[label]
            self._conflict(
                f"{key}.label_id", f"label {label!r} has label_id {label_id} here but {other_id} at [{first_key}]"
            )
        self.name_of_id.setdefault(label_id, (label, key))
        self.id_of_name.setdefault(label, (label_id, key))

    def _conflict(self, key: str, message: str) -> None:
        bad = _BadEntry(key, message)
        self.conflicts.append(bad)
        raise bad

    def _check_declared(self, label_id: int, label: str, key: str) -> None:
        classes = self.declared
        if not 0 <= label_id < len(classes):
            raise _BadEntry(
                f"{key}.label_id",
                f"label_id {label_id} is outside 0..{len(classes) - 1} "
                f"({self.named_in} has {len(classes)})"
                + (": are the ids 1-based? They count from 0" if label_id == len(classes) else ""),
            )
        if classes[label_id] != label:
            if label in classes:
                hint = f"{self.named_in} lists {label!r} as label_id {classes.index(label)}"
                if classes.index(label) == label_id - 1:
                    hint += (", one less (if every id is one more than its class's place, the ids are 1-based: they "
                             "count from 0, as ActionFormer's; subtract 1 from every label_id, or leave label_id out)")
            else:
                hint = f"{label!r} is not in {self.named_in}"
            raise _BadEntry(f"{key}.label", f"label_id {label_id} is {classes[label_id]!r} in {self.named_in}, but "
                                            f"{hint}{spelling_hint(label, classes[label_id])}")

    def class_list(self, path: Path) -> list[str]:
        if self.declared is not None:
            return list(self.declared)
        ids = sorted(self.name_of_id)
        missing = [i for i in range(ids[-1] + 1) if i not in self.name_of_id] if ids else []
        if missing and self.conflicts:
            first = self.conflicts[0]
            others = len(self.conflicts) - 1
            more = f" (and {others} more annotation(s) that disagree)" if others else ""
            raise InputError(
                f"{where(path, key=first.key)}: {first.message}{more}; with no top-level \"classes\" list the "
                "label_id -> label pairs must agree everywhere"
            )
        if missing:
            one_based = (f'; or, if the ids are 1-based (they run 1..{ids[-1]}), subtract 1 from every label_id: they '
                         "count from 0, each a class's place in the class list, as ActionFormer's"
                         if missing == [0] and ids == list(range(1, len(ids) + 1)) else "")
            raise InputError(
                f"{where(path, key='database')}: label_id {', '.join(map(str, missing))} never appears, so the "
                f'class list cannot be built from the annotations; add a top-level "classes" list (or give the class '
                f"names, one per line in label-id order, to `mgrec data convert {path} --class-map FILE`, which writes "
                f"it){one_based}"
            )
        return [self.name_of_id[i][0] for i in ids]


def _check_class_names(path: Path, classes: list[str], first_key: dict[str, str]) -> None:
    """`class_names_problem` of a class list read from `path`, at its place there. `first_key`: where each name was
    first met, for a class list built from the instances."""
    problem = class_names_problem(classes)
    if problem is not None:
        index, text = problem
        raise InputError(f"{where(path, key=first_key.get(classes[index], f'classes[{index}]'))}: {text}")


def _read_class_list(path: Path, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise InputError(f"{where(path, key='classes')}: expected a list of class names, got {brief(value)}")
    for index, name in enumerate(value):
        if value.index(name) != index:
            raise InputError(f"{where(path, key=f'classes[{index}]')}: class {name!r} is listed twice")
    return value


def _require(entry: dict, name: str, key: str) -> Any:
    if name not in entry:
        raise _BadEntry(key, f"missing key {name!r}")
    return entry[name]


def _parse_video(path: Path, video_id: str, entry: Any, key: str, default_fps: float | None
                 ) -> tuple[VideoInfo, list]:
    try:  # a video id names its feature file: it must not lead out of the features folder
        safe_child("FEATURES", video_id, "video id")
    except InputError as exc:
        raise _BadEntry(key, str(exc).replace(" inside FEATURES", "")) from None
    if not isinstance(entry, dict):
        raise _BadEntry(key, f"expected an object with subset, fps, duration, annotations; got {brief(entry)}")
    subset = _require(entry, "subset", key)
    if not isinstance(subset, str) or not subset.strip():
        raise _BadEntry(f"{key}.subset", f"expected a subset name such as 'training', got {brief(subset)}")
    try:  # a split's name becomes part of file names (eval_<split>.json): one plain name
        subset = split_name(subset, "subset")
    except InputError as exc:
        raise _BadEntry(f"{key}.subset", str(exc)) from None
    # OpenTAD's files name the frame count "frame"; mgrec's, "num_frames" (null: not given)
    counts = {name: entry[name] for name in ("num_frames", "frame") if entry.get(name) is not None}
    if len(counts) == 2 and counts["num_frames"] != counts["frame"]:
        raise _BadEntry(key, f"'num_frames' {brief(counts['num_frames'])} and 'frame' {brief(counts['frame'])} differ; "
                             "both are the video's frame count: give one")
    frames_key = next(iter(counts), "num_frames")
    num_frames = counts.get(frames_key)
    if num_frames is not None and not (_is_integer(num_frames) and is_number(num_frames) and num_frames > 0):
        raise _BadEntry(f"{key}.{frames_key}", f"expected a positive whole number of frames, got {brief(num_frames)}")
    if "duration" in entry and not (is_number(entry["duration"]) and math.isfinite(entry["duration"])
                                    and entry["duration"] > 0):
        raise _BadEntry(f"{key}.duration", f"expected a positive duration in seconds, got {brief(entry['duration'])}")
    # The frame rate: the entry's own fps; else the one its frame count and duration give (OpenTAD's files); else
    # the default (data.fps, --fps, as ActionFormer's default_fps), which a config's grid uses anyway where set.
    derived = "fps" not in entry and num_frames is not None and "duration" in entry
    if "fps" not in entry and not derived and default_fps is None:
        raise _BadEntry(key, "missing key 'fps' (the video's frames per second; or a frame count, 'num_frames' or "
                             "OpenTAD's 'frame', with 'duration', which give it; to give every entry without one "
                             "an fps, as ActionFormer's default_fps does: data.fps in a config; --fps for mgrec score, "
                             "where predictions in seconds score the same at any fps and only frames need the right "
                             "one; --fps for mgrec data convert, which writes it into the file)")
    fps = entry["fps"] if "fps" in entry else num_frames / entry["duration"] if derived else default_fps
    # The one frame-rate rule (also data.fps and the sidecars'); is_number first: JSON integers have no size limit.
    if not is_number(fps) or fps_problem(fps):
        got = (f"{brief(num_frames)} frames in {brief(entry['duration'])} s, {fps:g} fps" if derived else brief(fps))
        raise _BadEntry(f"{key}.{frames_key}" if derived else f"{key}.fps",
                        f"expected a positive number of frames per second, at most {MAX_FPS:g}, got {got}")
    if "duration" not in entry and num_frames is None:
        raise _BadEntry(key, "missing key 'duration' (the video's length in seconds; or its frame count as "
                             "'num_frames', which with its fps gives the duration)")
    # A frame count without a duration (files that store frames, not seconds): num_frames frames last num_frames/fps.
    duration = entry["duration"] if "duration" in entry else num_frames / fps
    if not math.isfinite(duration) or duration <= 0:
        raise _BadEntry(f"{key}.duration", f"expected a positive duration in seconds, got {brief(duration)}")
    if "annotations" not in entry:
        raise _BadEntry(key, "missing key 'annotations' (use [] for a video without instances: a test video whose "
                             "labels are withheld)")
    annotations = entry["annotations"]
    if not isinstance(annotations, list):
        raise _BadEntry(
            f"{key}.annotations", f"expected a list (use [] for a video without instances), got {brief(annotations)}"
        )
    info = VideoInfo(
        video_id=video_id,
        subset=subset,
        fps=float(fps),
        duration=float(duration),
        num_frames=None if num_frames is None else int(num_frames),
        source=where(path, key=key),
        fps_given="fps" in entry or derived,  # its own, or given by its frame count and duration
    )
    return info, annotations


def _parse_pair(value: Any, key: str, what: str, integers: bool) -> tuple[float, float]:
    check = _is_integer if integers else is_number
    if not isinstance(value, list) or len(value) != 2 or not all(check(v) for v in value):
        raise _BadEntry(key, f"expected [start, end] {what}, got {brief(value)}")
    start, end = value
    if not (math.isfinite(start) and math.isfinite(end)):
        raise _BadEntry(key, f"start and end must be finite numbers, got {brief(value)}")
    if start < 0:
        raise _BadEntry(key, f"start {start} is negative")
    if start >= end:
        raise _BadEntry(key, f"start {start} is not before end {end}")
    return start, end


def _parse_segment(path: Path, info: VideoInfo, item: Any, key: str, labels: _LabelTable) -> Segment:
    if not isinstance(item, dict):
        raise _BadEntry(key, f"expected an object with label, label_id, segment; got {brief(item)}")
    label = _require(item, "label", key)
    if not isinstance(label, str):
        raise _BadEntry(f"{key}.label", f"expected a class name, got {brief(label)}")
    if "label_id" in item:
        label_id = item["label_id"]
        if not _is_integer(label_id):
            raise _BadEntry(f"{key}.label_id", f"expected an integer class id, got {brief(label_id)}")
        label_id = int(label_id)
    else:
        label_id = labels.resolve(label, key)
    if "segment" not in item and item.get("segment(frames)") is not None:  # frames alone: say what seconds are
        raise _BadEntry(key, f"missing key 'segment' (the instance's [start, end] in seconds, which every reader "
                             f"scores); its 'segment(frames)' {brief(item['segment(frames)'])} alone is not read: add "
                             f"'segment' as the frames / fps ({info.fps:g} for this video)")
    start, end = _parse_pair(_require(item, "segment", key), f"{key}.segment", "in seconds", integers=False)
    start_frame = end_frame = None
    if item.get("segment(frames)") is not None:
        frames_key = f"{key}.segment(frames)"
        start_frame, end_frame = (int(v) for v in _parse_pair(item["segment(frames)"], frames_key, "frames", True))
        clock = FeatureGrid(fps=info.fps, stride=1, window=1)  # absolute frames: stride and window play no part
        off = max(abs(clock.frame_to_seconds(start_frame) - start), abs(clock.frame_to_seconds(end_frame) - end))
        if off > clock.frame_to_seconds(_FRAME_TOLERANCE + 1e-6):
            raise _BadEntry(
                frames_key,
                f"[{start_frame}, {end_frame}] does not match segment [{start}, {end}] s at {info.fps} fps "
                f"(those frames are [{clock.frame_to_seconds(start_frame):g}, {clock.frame_to_seconds(end_frame):g}] "
                "s, more than a frame off); is the video's fps right?",
            )
    labels.check(label_id, label, key)
    return Segment(
        video_id=info.video_id,
        start=float(start),
        end=float(end),
        label_id=label_id,
        label=label,
        start_frame=start_frame,
        end_frame=end_frame,
        source=where(path, key=key),
    )


def _instances(database: dict) -> Iterator[tuple[str, dict]]:
    """(key, instance) of every instance entry that is an object, in file order; the rest is checked later."""
    for video_id, entry in database.items():
        items = entry.get("annotations") if isinstance(entry, dict) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield f"database.{video_id}.annotations[{index}]", item


def _first_label_id_key(database: dict) -> str | None:
    return next((key for key, item in _instances(database) if "label_id" in item), None)


def load_annotations(path: str | Path, entry_errors: list[EntryError] | None = None,
                     default_fps: float | None = None, class_map: str | Path | None = None) -> AnnotationSet:
    """Read an ActivityNet-style annotations JSON (format in the module docstring).

    Subset names become `train`/`val`/`test` (case-insensitive `training`/`validation`/`testing`;
    other names are kept, lower-cased). The class list is the top-level `classes` when present,
    otherwise it is built from the label_id -> label pairs of all annotations, which must then be
    consistent and cover ids 0..K-1. An instance without `label_id` takes its label's place in
    `classes`; in a file where no instance has a `label_id` and no `classes` list is given (ActivityNet
    1.3's own files), the classes are the labels met, sorted by name (where every label is one of SMG's
    class names: SMG's 17 classes in SMG's order). Class names must differ to a reader
    (`_check_class_names`). A video entry without `fps` takes `default_fps` (a config's data.fps,
    ActionFormer's default_fps); with none given it is an error. `class_map`: a text file of the class names, one
    per line in label-id order (OpenTAD's class_map), for a file without `classes` (with one, they must agree).

    Problems with the file as a whole (not JSON, no `database`, a bad `classes` list) always raise
    InputError. A problem inside one video entry or one annotation entry raises too, unless
    `entry_errors` is given: then the problem is appended there, that entry is left out and
    reading goes on, so that `data check` can report every problem at once.

    Segments that extend past the video's duration and duplicated ground truths are kept here;
    `data check` reports them.
    """
    path = path_argument(path, "load_annotations: path")
    if class_map is not None:
        class_map = path_argument(class_map, "load_annotations: class_map")
    if default_fps is not None and (not is_number(default_fps) or fps_problem(default_fps)):
        raise InputError(f"default_fps: expected a positive number of frames per second, at most {MAX_FPS:g}, got "
                         f"{brief(default_fps)}")
    if path.is_dir():
        raise InputError(f"{path}: a folder, where an annotations JSON file was expected; {_folder_hint(path)}")
    text = decode_utf8(path, read_file_bytes(path, "annotations"))
    _refuse_a_table_or_xml(path, text)
    raw = parse_json(text, path, "annotations")
    if not isinstance(raw, dict) or "database" not in raw:
        found = ("; it holds predictions (a \"results\" object, as `mgrec detect` writes), not ground truth: scored "
                 "with `mgrec score --pred`" if isinstance(raw, dict) and "results" in raw else "")
        raise InputError(f"{where(path, key='top level')}: expected an object with a \"database\" key{found}")
    database = raw["database"]
    if not isinstance(database, dict):
        raise InputError(f"{where(path, key='database')}: expected an object mapping video ids to videos")
    declared = _read_class_list(path, raw["classes"]) if "classes" in raw else None
    if class_map is not None:
        mapped = read_class_map(class_map)
        if declared is not None and declared != mapped:
            raise InputError(f"{where(path, key='classes')}: its classes differ from those of {class_map}: "
                             f"{_first_difference(declared, mapped)}; give the class list once")
        declared = mapped
    first_id_key = _first_label_id_key(database)
    if declared is None and first_id_key is None:  # classes named by label alone (ActivityNet 1.3's files)
        met = {item["label"] for _, item in _instances(database) if isinstance(item.get("label"), str)}
        # SMG's names take SMG's 17 classes, numbered as its label CSVs (and `--format smg` output) count them
        declared = list(SMG_CLASSES) if met and met <= set(SMG_CLASSES) else sorted(met)
    if class_map is not None and "classes" not in raw:  # with a classes list, the map must equal it (above)
        met = {item["label"] for _, item in _instances(database) if isinstance(item.get("label"), str)}
        if declared[0] not in met:
            refuse_a_header_row(class_map, declared, f"no instance of {path} is labelled so: read as class 0, it "
                                                     "gave every class of the map the id after its own")
    named_in = ("the top-level classes list" if "classes" in raw else f"the class map {class_map}"
                if class_map is not None else "the class list (its labels, sorted)")
    labels = _LabelTable(declared, first_id_key, named_in)

    def report(video_id: str, bad: _BadEntry) -> None:
        if entry_errors is None:
            raise InputError(f"{where(path, key=bad.key)}: {bad.message}")
        entry_errors.append(EntryError(video_id, where(path, key=bad.key), bad.message))

    videos: dict[str, VideoInfo] = {}
    segments: dict[str, list[Segment]] = {}
    for video_id, entry in database.items():
        key = f"database.{video_id}"
        try:
            info, items = _parse_video(path, video_id, entry, key, default_fps)
        except _BadEntry as bad:
            report(video_id, bad)
            continue
        videos[video_id] = info
        segments[video_id] = []
        for index, item in enumerate(items):
            try:
                segments[video_id].append(_parse_segment(path, info, item, f"{key}.annotations[{index}]", labels))
            except _BadEntry as bad:
                report(video_id, bad)
    classes = labels.class_list(path)
    _check_class_names(path, classes, {} if "classes" in raw or class_map is not None else labels.label_key)
    return AnnotationSet(classes=classes, videos=videos, segments=segments)


# A line of a class map that is a quoted CSV cell, alone or first in a row of cells: `"PEN"`, `"1","PEN"`, `'PEN'`.
_QUOTED_CELL = re.compile(r"""(?:"(?:[^"]|"")*"|'[^']*')(?:\s*[,;:|\t]\s*.*)?""")


# What mgrec reads as labels, said where a file of another form is given as annotations.
_LABEL_FORMS = ("mgrec reads annotations as JSON (ActivityNet's form: a \"database\" of videos, each with its subset, "
                "fps and segments in seconds; OpenTAD's) and converts SMG label folders (`mgrec data convert "
                "SMG_ROOT`: SampleXXXX/SampleXXXX_finelabels.csv, rows class,start_frame,end_frame); write the labels "
                "in one of these forms (README, \"Your own features\")")


# A row of THUMOS14's per-class annotation files (`Billiards_val.txt`: `video_validation_0000051 82.9 83.7`): a video
# id and the start and end in seconds, separated by spaces (or tabs).
_THUMOS_ROW = re.compile(r"\S+[ \t]+[0-9]+(?:\.[0-9]*)?[ \t]+[0-9]+(?:\.[0-9]*)?")
_THUMOS_ADVICE = ("THUMOS14's per-class annotation files (rows video start end, in seconds; one file per class, "
                  "<Class>_val.txt, <Class>_test.txt), which mgrec does not read: they give no video's duration or "
                  "frame rate. OpenTAD's and ActionFormer's thumos14.json hold the same annotations with both, as an "
                  "annotations JSON: give that file (`mgrec data convert thumos14.json --out annotations.json`)")


_THUMOS_FILES_READ = 200


def _thumos_files(folder: Path) -> list[Path]:
    """The text files in `folder` whose first line is a row of THUMOS14's per-class annotation files (of the first
    _THUMOS_FILES_READ: THUMOS14 has 20 classes, and a folder of thousands of other text files is not its)."""
    found = []
    for file in sorted(folder.glob("*.txt"))[:_THUMOS_FILES_READ]:
        try:
            with open(file, encoding="utf-8", errors="replace") as handle:
                first = handle.readline(1000).strip()
        except OSError:
            continue
        if _THUMOS_ROW.fullmatch(first):
            found.append(file)
    return found


def _refuse_a_table_or_xml(path: Path, text: str) -> None:
    """InputError where an annotations file is a table of labels (CSV or TSV: another tool's export, ELAN's, a
    spreadsheet's; an SMG label file) or XML (ELAN's .eaf), by its first line: refused as `<file>:1:1: annotations
    file is not valid JSON: Expecting value`, which named neither what the file is nor what mgrec reads."""
    head = text.lstrip()
    if not head or head[0] in "{[":
        return
    first = head.split("\n", 1)[0].strip()
    if _THUMOS_ROW.fullmatch(first):  # refused as `not valid JSON: Expecting value`, which named neither
        raise InputError(f"{path}: looks like one of {_THUMOS_ADVICE}")
    if head.startswith("<"):
        kind = "XML (ELAN's .eaf, or another tool's XML export?)"
    else:
        separator = max((",", ";", "\t"), key=first.count)
        if not first.count(separator):
            return  # not a table: the JSON reader says where it fails
        cells = [cell.strip() for cell in first.split(separator)]
        if separator == "," and len(cells) == 3 and all(re.fullmatch(r"[0-9]+", cell) for cell in cells):
            raise InputError(f"{path}: an SMG label file (rows class,start_frame,end_frame), not an annotations JSON; "
                             "convert the folder of the SampleXXXX folders once (`mgrec data convert SMG_ROOT --out "
                             "annotations.json`), and give that JSON")
        named = {",": "commas", ";": "semicolons", "\t": "tabs"}[separator]
        kind = (f"a table of {len(cells)} columns separated by {named}, first line {brief(first)} (an ELAN, Excel or "
                "spreadsheet export?)")
    raise InputError(f"{path}: {kind}, not an annotations JSON; {_LABEL_FORMS}")


def _first_difference(listed: list[str], mapped: list[str]) -> str:
    """Where two class lists part, in words: both lists quoted whole were cut where they were still equal (a 7th name
    differing, or an 8th, read as two equal lists)."""
    for index, (ours, theirs) in enumerate(zip(listed, mapped)):
        if ours != theirs:
            return f"class {index} is {brief(ours)} there and {brief(theirs)} in the map"
    if len(listed) > len(mapped):
        return (f"it lists {counted(len(listed), 'class')} and the map {len(mapped)}; the first the map lacks is class "
                f"{len(mapped)}, {brief(listed[len(mapped)])}")
    return (f"the map lists {counted(len(mapped), 'class')} and it {len(listed)}; the first it lacks is class "
            f"{len(listed)}, "
            f"{brief(mapped[len(listed)])}")


# The words of a column's name: pandas' to_csv of one column writes the name as a first line (`class_name`, `label`,
# `Gesture`, `category name`; `0` for a column without a name), which a class map read as its first class.
_HEADER_WORDS = {"class", "classes", "cls", "name", "names", "label", "labels", "category", "categories", "action",
                 "actions", "gesture", "gestures"}
_HEADER_AFFIXES = {"id", "idx", "index", "type", "text", "str", "string", "of"}  # beside a word above only


def looks_like_a_header(line: str) -> bool:
    """Whether a class map's line reads as a column's name (`_HEADER_WORDS`, in any case and spelling: `class_name`,
    `ClassName`, `label-name`) or as pandas' name of an unnamed column (`0`)."""
    words = {word.lower() for word in re.split(r"[\s_.-]+|(?<=[a-z])(?=[A-Z])", line.strip()) if word}
    return line.strip() == "0" or (bool(words & _HEADER_WORDS) and words <= _HEADER_WORDS | _HEADER_AFFIXES)


def refuse_a_header_row(class_map: Path, classes: list[str], unused: str) -> None:
    """InputError where the first class of a class map looks like a column's name (`looks_like_a_header`) and the
    labels give it no place (`unused`: how, in words, and what reading it as a class did): a header row
    (`class_name`, as pandas' to_csv writes one column) was read as the first class, every other class one place
    off, with at most a warning. A first class no label uses that is named otherwise is a class (one with no
    instance in these files); one named `label` that the labels use is one too."""
    if looks_like_a_header(classes[0]):
        raise InputError(f"{class_map} [line 1]: {brief(classes[0])} looks like a header row (a column's name, as "
                         f"pandas' to_csv writes one column), not a class: {unused}; a class map is the class names "
                         "alone, one per line, the line's place its label id: remove line 1 (pandas: "
                         "to_csv(FILE, header=False, index=False))")


def read_class_map(path: str | Path) -> list[str]:
    """A class map as OpenTAD keeps one (its `class_map`, THUMOS's `category_idx.txt`): a UTF-8 text file of the
    class names, one per line, in label-id order; spaces around a name and blank lines after the last are left out.
    A blank line before a name is refused: line k names class k of SMG label files, and a skipped line (a deleted
    name) moved every later class to the one before it, without a word."""
    path = Path(path)
    text = decode_utf8(path, read_file_bytes(path, "class map (a text file, one class name per line)"))
    lines = [(number, line.strip()) for number, line in enumerate(text_lines(text), start=1) if line.strip()]
    if not lines:
        raise InputError(f"{path}: the class map names no class; expected one class name per line, in label-id order")
    named = {number for number, _ in lines}
    blank = next((number for number in range(1, lines[-1][0]) if number not in named), None)
    if blank is not None:
        raise InputError(f"{path} [line {blank}]: blank line before the class names end: line k names class k, so "
                         "every later class would move up by one; name the class of this line, or remove the line "
                         "if no class is missing")
    # A list or table saved as CSV with its text quoted (R's write.csv, pandas' QUOTE_ALL or QUOTE_NONNUMERIC, a
    # spreadsheet's "quote all text cells"): the quotes were kept in the names ('"PEN"'), a quoted header row
    # ('"name"') taken for class 1, and a quoted table ('"1","PEN"') for names, all without a word
    quoted = next(((number, name) for number, name in lines if _QUOTED_CELL.fullmatch(name)), None)
    if quoted is not None:
        number, shown = quoted
        raise InputError(f"{path} [line {number}]: {brief(shown)}: the line is in quotes (a list or table saved as CSV "
                         "with its text quoted: R's write.csv, pandas' to_csv(quoting=...), a spreadsheet?); a class "
                         "map is one class name per line as written, the line's place its label id: save the names "
                         "alone, without quotes, a header row or ids")
    # THUMOS's classidx.txt ("7 BaseballPitch"), or a table of ids and names saved from a spreadsheet or pandas
    # ("7,BaseballPitch", "7;...", "7:...", often under a header row "id,name"): the numbers were kept in the names
    numbered = [bool(re.fullmatch(r"\d+(\s+|\s*[,;:|]\s*)\S.*", name)) for _, name in lines]
    # pandas' index column has no name: its header row starts with the separator (`,class_name`), under one class too
    header = (len(lines) > 2 or (len(lines) == 2 and lines[0][1][0] in ",;|\t")) and not numbered[0] \
        and all(numbered[1:])
    if all(numbered) or header:
        number, shown = lines[int(header)]
        raise InputError(f"{path} [line {number}]: {brief(shown)}: the lines look numbered"
                         + (f" (under a header row {brief(lines[0][1])})" if header else "")
                         + "; a class map is one class name per line, the line's place its label id: remove the "
                         + ("header and the " if header else "") + "numbers (with the lines in their order)")
    first_line: dict[str, int] = {}
    for number, name in lines:
        if first_line.setdefault(name, number) != number:
            raise InputError(f"{path} [line {number}]: class {brief(name)} is named again (first at line "
                             f"{first_line[name]}); each class once, at the line of its label id")
    names = [name for _, name in lines]
    _check_class_names(path, names, {name: f"line {number}" for number, name in lines})
    return names


def val_videos_at_hand(data: DataConfig) -> list[str]:
    """The video ids of `data.val_split` in `data.annotations`, where both are given and the file is here (an
    ensemble of runs checks its members against them before it tunes on them); [] otherwise."""
    if not data.val_split or not data.annotations or not Path(data.annotations).is_file():
        return []
    return load_annotations(data.annotations, default_fps=data.fps).video_ids(data.val_split)


def _segment_record(segment: Segment) -> dict:
    record: dict[str, Any] = {
        "label": segment.label,
        "label_id": segment.label_id,
        "segment": [segment.start, segment.end],
    }
    if segment.start_frame is not None and segment.end_frame is not None:
        record["segment(frames)"] = [segment.start_frame, segment.end_frame]
    return record


def taxonomy(classes: list[str]) -> list[dict[str, Any]]:
    """ActivityNet's `taxonomy` for a flat class list: a root node (nodeId 0, parentId and parentName
    null) and one leaf per class (nodeId label_id + 1) whose parent is the root.

    Tools that read ActivityNet's taxonomy take the classes to be the nodes that are nobody's parent,
    matched by parentId or by parentName, so the root takes a name no class has."""
    root = TAXONOMY_ROOT
    while root in classes:
        root += "_"
    nodes = [{"nodeId": 0, "nodeName": root, "parentId": None, "parentName": None}]
    nodes += [{"nodeId": i + 1, "nodeName": name, "parentId": 0, "parentName": root} for i, name in enumerate(classes)]
    return nodes


def save_annotations(aset: AnnotationSet, path: str | Path) -> None:
    """Write `aset` in the JSON format that `load_annotations` reads, atomically.

    Writes the top-level `classes`, their `taxonomy`, canonical subset names, `num_frames` and
    `segment(frames)` when known. Videos are written in sorted order; segments in their stored order.
    """
    orphans = sorted(set(aset.segments) - set(aset.videos))
    if orphans:
        raise ValueError(f"segments for videos without VideoInfo: {', '.join(orphans[:5])}")
    database = {}
    for video_id in aset.video_ids():
        info = aset.videos[video_id]
        entry: dict[str, Any] = {"subset": canonical_subset(info.subset), "fps": info.fps, "duration": info.duration}
        if info.num_frames is not None:
            entry["num_frames"] = info.num_frames
        entry["annotations"] = [_segment_record(s) for s in aset.segments.get(video_id, [])]
        database[video_id] = entry
    document = {"version": FORMAT_VERSION, "classes": list(aset.classes), "taxonomy": taxonomy(aset.classes),
                "database": database}
    with atomic_open(path) as handle:
        json.dump(document, handle, indent=1, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


# ---------------------------------------------------------------------------------------------
# SMG label CSVs

_SAMPLE_NAME = re.compile(r"Sample([0-9]+)")
# What a misspelt sample folder looks like (`sample0002`, `SAMPLE0002`, other scripts' digits): named
# as an error instead of being left out of the annotations without a word.
_SAMPLE_NAME_LOOSE = re.compile(r"sample(\d+)", re.IGNORECASE)


MAX_SUBJECT = 9999


def parse_subject_ranges(text: str) -> dict[str, set[int]]:
    """'train=1-30,val=31-35,test=36-40' -> {'train': {1..30}, 'val': {31..35}, 'test': {36..40}}.

    An item is `name=first-last` or `name=number`; a name may appear in several items (their
    subjects are joined). Subset names are made canonical. A subject in two subsets is an error.
    """
    if len(text) > 1000:
        raise InputError(f"subject ranges: {len(text)} characters; expected a short list such as {DEFAULT_SMG_SPLITS}")
    result: dict[str, set[int]] = {}
    owner: dict[int, str] = {}
    for item in (part.strip() for part in text.split(",")):
        match = re.fullmatch(r"([A-Za-z_]\w*)\s*=\s*([0-9]+)(?:\s*-\s*([0-9]+))?", item)  # ASCII digits
        if not match:
            raise InputError(f"subject ranges {text!r}: item {item!r}: expected name=first-last, e.g. train=1-30")
        name = canonical_subset(match.group(1))
        first = int(match.group(2))
        last = int(match.group(3) or first)
        if first > last:
            raise InputError(f"subject ranges {text!r}: item {item!r}: first subject {first} is after last {last}")
        if last > MAX_SUBJECT:  # Sample ids have four digits; a huge range would only build a huge set
            raise InputError(f"subject ranges: item {item[:40]!r}: subjects are numbered 1..{MAX_SUBJECT}")
        for subject in range(first, last + 1):
            if owner.get(subject, name) != name:
                raise InputError(f"subject ranges {text!r}: subject {subject} is in both {owner[subject]} and {name}")
            owner[subject] = name
        result.setdefault(name, set()).update(range(first, last + 1))
    return result


def skipped_sample_folders(root: str | Path) -> list[Path]:
    """Folders `data convert` leaves out although their names start like a sample's (`Sample0003_old`, a backup;
    `Sample0003-labels`): said by `data convert`, not skipped without a word."""
    root = Path(root)
    return sorted(p for p in (_folders_to_depth_two(root) if root.is_dir() else [])
                  if _SAMPLE_NAME_LOOSE.match(p.name) and not _SAMPLE_NAME_LOOSE.fullmatch(p.name))


def _folder_hint(folder: Path) -> str:
    """What to give instead of a folder given as annotations: the SMG label folder's conversion (only where it holds
    sample folders: it fails elsewhere), the annotations.json in it, or what an annotations file is."""
    try:
        samples = any(_SAMPLE_NAME_LOOSE.match(p.name) for p in _folders_to_depth_two(folder))
    except OSError:
        samples = False
    if samples:  # an SMG label folder given where its converted JSON goes
        return (f"an SMG label folder (SampleXXXX/SampleXXXX_finelabels.csv) is converted once: mgrec data convert "
                f"{folder} --out annotations.json")
    if (folder / "annotations.json").is_file():
        return f"it holds {folder / 'annotations.json'}: give that file"
    thumos = _thumos_files(folder)
    if thumos:
        return f"it holds {thumos[0].name}{f' and {len(thumos) - 1} more' if len(thumos) > 1 else ''}, {_THUMOS_ADVICE}"
    return ("the ground truth is one JSON file with a \"database\" key (`mgrec data convert` writes one from SMG label "
            "folders or another toolkit's annotations)")


def _folders_to_depth_two(root: Path) -> list[Path]:
    """The folders in `root` and one level deeper, where SMG's sample folders may lie; hidden ones and macOS's zip
    metadata (`is_hidden`: `__MACOSX/Sample0001`, which holds no labels) left out, as a second copy of a sample."""
    folders = [p for p in root.iterdir() if p.is_dir() and not is_hidden(p, root)]
    return folders + [p for parent in folders for p in parent.iterdir() if p.is_dir() and not is_hidden(p, root)]


def _find_sample_dirs(root: Path) -> dict[str, Path]:
    """SampleXXXX folders directly in `root` or one level deeper (the challenge's layout)."""
    candidates = _folders_to_depth_two(root)
    found: dict[str, Path] = {}
    by_number: dict[int, Path] = {}
    for folder in sorted(candidates):
        exact = _SAMPLE_NAME.fullmatch(folder.name)
        if not exact:
            loose = _SAMPLE_NAME_LOOSE.fullmatch(folder.name)
            if loose:  # on a case-sensitive disk its label file would never be found: say so, do not skip it
                digits = loose.group(1)
                expected = "Sample" + str(int(digits)).zfill(len(digits))
                raise InputError(f"{folder}: a sample folder must be spelled {expected!r} exactly (Sample, capital S, "
                                 "then digits 0-9), and its files likewise; rename it")
            continue
        if folder.name in found:
            raise InputError(f"{root}: {folder.name} is there twice: {found[folder.name]} and {folder}")
        # Sample1 and Sample0001 are the same subject's video: reading both would count it twice.
        number = int(exact.group(1))
        if number in by_number:
            raise InputError(f"{root}: {by_number[number]} and {folder} are both sample {number}; keep one")
        found[folder.name] = folder
        by_number[number] = folder
    return found


# How deep below the root given, and through how many folders, `data convert` looks for labelled sample folders to
# name where the root holds none within its reach: the challenge's downloads unpack as
# SMG/smg_data_phase1/smg_skeleton_train/Sample0001, one level more than a root's reach when SMG/ is given.
_LOOK_DEEPER_LEVELS = 4
_LOOK_DEEPER_FOLDERS = 10_000


def _deeper_label_roots_hint(root: Path) -> str:
    """Where a root holding no sample folder within reach has labelled ones deeper (the challenge's download given
    whole: `SMG/` for `SMG/smg_data_phase1/smg_skeleton_train/Sample0001/Sample0001_finelabels.csv`): the folders
    to give instead, the one above each sample folder's parent, as `; ...` for the message; '' where none is found."""
    roots: list[Path] = []
    level, seen = [root], 0
    for _ in range(_LOOK_DEEPER_LEVELS):
        deeper = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p, root))
            except OSError:
                continue
            for child in children:
                seen += 1
                exact = _SAMPLE_NAME.fullmatch(child.name)
                if exact and (child / f"{child.name}_finelabels.csv").is_file():
                    label_root = child.parent.parent if child.parent.parent != root else child.parent
                    if label_root not in roots:
                        roots.append(label_root)
                elif not exact:
                    deeper.append(child)
            if seen > _LOOK_DEEPER_FOLDERS:
                break
        level = deeper
    if not roots:
        return ""
    shown = ", ".join(str(r) for r in roots[:3]) + (", ..." if len(roots) > 3 else "")
    return (f"; labelled sample folders (SampleXXXX/SampleXXXX_finelabels.csv) lie deeper: give "
            f"{'that folder' if len(roots) == 1 else 'one of these folders'} as the root: {shown}")


def _unlabelled_in_no_split(unlabelled: list[tuple[str, Path]], subset_of: dict[int, str]) -> list[str]:
    """The sample folders of `unlabelled` to leave out: their subject is in no split, as the challenge's test
    subjects come without labels. One holding a label file under another name (`Sample03_finelabels.csv`)
    is not among them: its labels are there, misnamed, and refused as such."""
    return [name for name, folder in unlabelled
            if int(_SAMPLE_NAME.fullmatch(name).group(1)) not in subset_of
            and not any(p.name.lower().endswith("finelabels.csv") and not p.name.startswith(".")
                        for p in folder.iterdir())]


def sample_range(names: list[str]) -> str:
    """Sample folder names for a message: `Sample0031-Sample0036` when their numbers run on without a gap, else
    the first three (and `...`)."""
    ordered = sorted(names, key=lambda name: int(_SAMPLE_NAME.fullmatch(name).group(1)))
    numbers = [int(_SAMPLE_NAME.fullmatch(name).group(1)) for name in ordered]
    if len(ordered) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(ordered[:3]) + (", ..." if len(ordered) > 3 else "")


def read_smg_labels(
    root: str | Path, fps: float | None = None, splits: dict[str, set[int]] | None = None,
    class_map: str | Path | None = None, left_out: list[str] | None = None,
) -> AnnotationSet:
    """Read SMG label folders `root/SampleXXXX/SampleXXXX_finelabels.csv` into an AnnotationSet.

    Sample folders are looked for in `root` and one level deeper, so the challenge layout
    (`smg_data_phase1/smg_skeleton_train/Sample0001/`) works when `root` is `smg_data_phase1`.
    A sample folder without a `_finelabels.csv` is an error (an unlabelled video is not a video
    without instances) when its subject is in a split: a labelled split must be complete. One whose
    subject is in no split (the challenge's unlabelled test subjects) is left out, its name appended
    to `left_out` when that is given. An empty label file is allowed: a video with no instances.

    Label rows are `class(1..K),start_frame,end_frame` with absolute frame indices, no header
    (read by `mgrec.smg_csv.read_label_file`; `mgrec.smg_csv.write_smg_labels` writes them).
    Times are frame / fps. The fps comes from `SampleXXXX_data.csv` (`numFrames,fps,maxDepth`),
    which also gives the number of frames and so the duration; without that file the `fps`
    argument is used and the duration is taken as (last labelled end frame + 1) / fps, which
    can be shorter than the real video. A data file's fps wins over the `fps` argument, which is for the
    samples without one; an `fps` argument that no sample reads (each has its data file) and that contradicts
    one is an error, and so is a label row that ends past the data file's frame count.

    `splits` maps subset name -> subject numbers (Sample0007 is subject 7); default
    train 1-30, val 31-35, test 36-40 (the MiGA challenge split).

    `class_map`: a text file of the class names, one per line (`read_class_map`), line k naming the
    files' class k, for a dataset in SMG's layout with other classes (iMiGUE's 32, one's own);
    default SMG's 17 (`SMG_CLASSES`).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: SMG label folder not found (expected SampleXXXX/SampleXXXX_finelabels.csv inside)")
    refuse_an_incomplete_set(root)
    if splits is None:
        splits = parse_subject_ranges(DEFAULT_SMG_SPLITS)
    subset_of: dict[int, str] = {}
    for name, subjects in splits.items():
        for subject in subjects:
            if subject in subset_of:
                raise InputError(f"splits: subject {subject} is in both {subset_of[subject]} and {name}")
            subset_of[subject] = canonical_subset(name)

    sample_dirs = _find_sample_dirs(root)
    if not sample_dirs:
        thumos = _thumos_files(root)
        if thumos:  # a folder of THUMOS14's text files: "no SampleXXXX folders" named neither what it holds nor the way
            raise InputError(f"{root}: no SampleXXXX folders here; it holds {thumos[0].name}"
                             f"{f' and {len(thumos) - 1} more' if len(thumos) > 1 else ''}, {_THUMOS_ADVICE}")
        raise InputError(f"{root}: no SampleXXXX folders here or one level deeper{_deeper_label_roots_hint(root)}")
    unlabelled = [(name, d) for name, d in sample_dirs.items() if not (d / f"{name}_finelabels.csv").is_file()]
    outside = _unlabelled_in_no_split(unlabelled, subset_of)
    for name in outside:
        del sample_dirs[name]
    if left_out is not None:
        left_out.extend(outside)
    if not sample_dirs:  # nothing labelled to convert: an empty annotations file helps no one
        raise InputError(f"{root}: none of its {len(outside)} sample folder(s) ({sample_range(outside)}) has a "
                         "SampleXXXX_finelabels.csv; point the root at the labelled samples")
    unlabelled = [(name, d) for name, d in unlabelled if name not in outside]
    if unlabelled:
        shown = "; ".join(f"{d / (name + '_finelabels.csv')} expected, found "
                          f"{', '.join(brief(p.name) for p in sorted(d.glob('*.csv'))[:3]) or 'no .csv file'}"
                          for name, d in unlabelled[:3])
        # the other way out, for a folder refused for its split and not for a misnamed file
        in_split = any(int(_SAMPLE_NAME.fullmatch(name).group(1)) in subset_of for name, _ in unlabelled)
        raise InputError(
            f"{root}: no SampleXXXX_finelabels.csv in {len(unlabelled)} sample folder(s) ({shown}); name each label "
            "file after its folder, or point the root at the labelled samples only"
            + (" (or leave subjects without labels, as the challenge's test subjects, out of the splits)"
               if in_split else "")
        )

    if fps is not None and fps_problem(fps):
        raise InputError(f"--fps: {fps_problem(fps)} (SMG videos: 28)")
    classes = read_class_map(class_map) if class_map is not None else list(SMG_CLASSES)
    classes_named = (f"the {counted(len(classes), 'class')} of {class_map}, line k naming class k"
                     if class_map is not None
                     else "SMG's classes; label files of another class list need --class-map FILE")
    aset = AnnotationSet(classes=classes)
    # `fps` is for the samples without a data file; beside them, a sample's own data file keeps its rate (refusing
    # it left a set of both kinds no way to convert: without --fps the first kind is refused, with it the second)
    fps_read_by = [name for name, folder in sample_dirs.items() if not (folder / f"{name}_data.csv").exists()]
    for name, folder in sample_dirs.items():
        labels_path = folder / f"{name}_finelabels.csv"
        subject = int(_SAMPLE_NAME.fullmatch(name).group(1))
        if subject not in subset_of:
            ranges = ", ".join(f"{k}={min(v)}-{max(v)}" for k, v in splits.items() if v)
            raise InputError(f"{labels_path}: subject {subject} is in no split ({ranges}); pass the subject ranges")
        data_path = folder / f"{name}_data.csv"
        num_frames = None
        video_fps = fps
        if data_path.exists():  # a pipe or a folder there is named as such by its reader
            num_frames, video_fps = read_data_file(data_path)
            if fps is not None and abs(fps - video_fps) > 1e-6 and not fps_read_by:
                raise InputError(f"{data_path}: fps {video_fps:g} contradicts the fps {fps:g} passed, which no sample "
                                 "reads (each has its _data.csv); drop --fps")
        elif fps is None:
            raise InputError(
                f"{folder}: no {name}_data.csv to read the fps from; pass --fps (the SMG paper reports 28)"
            )
        # Read after the data file: its frame count bounds the rows.
        rows = read_label_file(labels_path, len(classes), num_frames, data_path, classes_named)
        if num_frames is None and not rows:
            raise InputError(
                f"{labels_path}: empty label file and no {name}_data.csv, so the video's length is unknown"
            )
        # Frames are absolute indices; FeatureGrid's stride/window play no part in frame <-> seconds.
        clock = FeatureGrid(fps=video_fps, stride=1, window=1)
        frames_in_video = num_frames if num_frames is not None else max(row.end_frame for row in rows) + 1
        aset.videos[name] = VideoInfo(
            video_id=name,
            subset=subset_of[subject],
            fps=video_fps,
            duration=clock.frame_to_seconds(frames_in_video),
            num_frames=num_frames,
            source=str(data_path if num_frames is not None else labels_path),
        )
        aset.segments[name] = [
            Segment(
                video_id=name,
                start=clock.frame_to_seconds(row.start_frame),
                end=clock.frame_to_seconds(row.end_frame),
                label_id=row.class_number - 1,
                label=classes[row.class_number - 1],
                start_frame=row.start_frame,
                end_frame=row.end_frame,
                source=f"{labels_path}:{row.line}",
            )
            for row in rows
        ]
    if class_map is not None and not any(s.label_id == len(classes) - 1 for v in aset.segments.values() for s in v):
        second = brief(classes[1]) if len(classes) > 1 else "nothing"
        refuse_a_header_row(Path(class_map), classes, f"no label row of {root} has class {len(classes)} "
                                                      f"({classes[-1]}), the map's last line: read as class 1, it "
                                                      "pushed every class one line down, the rows of class 1 named "
                                                      f"{brief(classes[0])}, those of class 2 {second}, ...")
    return aset
