"""Typed records shared by every stage: videos, ground-truth segments and detections.

Times are in seconds (float); frames are absolute video frame indices. Labels carry both the
0-based class id and the class name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mgrec.errors import EmptySplit, InputError
from mgrec.files import brief, listed, name_key, spelling_hint


@dataclass(frozen=True)
class Segment:
    """One ground-truth instance."""

    video_id: str
    start: float
    end: float
    label_id: int
    label: str
    start_frame: int | None = None
    end_frame: int | None = None
    source: str = ""  # "file:line" or "file [key]" where it was read, for error messages

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Detection:
    """One predicted instance with its confidence."""

    video_id: str
    start: float
    end: float
    label_id: int
    label: str
    score: float
    start_frame: int | None = None
    end_frame: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict:
        record = {
            "segment": [float(self.start), float(self.end)],  # unrounded: rounding can move a tIoU across 0.3
            "label": self.label,
            "label_id": int(self.label_id),
            "score": float(self.score),
        }
        if self.start_frame is not None and self.end_frame is not None:
            record["segment(frames)"] = [self.start_frame, self.end_frame]
        return record


@dataclass(frozen=True)
class VideoInfo:
    """What is known about one video, independent of its labels."""

    video_id: str
    subset: str
    fps: float
    duration: float  # seconds
    num_frames: int | None = None
    source: str = ""
    fps_given: bool = True  # False: the annotations gave no fps and a default placed it (data.fps, score --fps)


@dataclass
class AnnotationSet:
    """All annotations of a dataset: the class list, the videos and their segments."""

    classes: list[str]
    videos: dict[str, VideoInfo] = field(default_factory=dict)
    segments: dict[str, list[Segment]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def video_ids(self, subset: str | None = None) -> list[str]:
        """Video ids in a stable (sorted) order, optionally only those of one subset, named as a config or the command
        line names it: `canonical_subset`'s rule, by which the readers name the subsets (`Test`, `testing` -> `test`;
        given in Python they found no video, where `--split Test` and `test_split: testing` find them). A subset
        without videos gives [] (`split_video_ids` refuses it)."""
        if subset is not None:
            from mgrec.config import canonical_subset  # mgrec.config imports what this module does, not it

            if not isinstance(subset, str):
                raise InputError(f"subset: expected a split name such as 'test' (or None: every video), got "
                                 f"{brief(subset)}")
            names = {subset, canonical_subset(subset)}  # as given too: a set built in Python may name it so
            return sorted(v for v, info in self.videos.items() if info.subset in names)
        return sorted(self.videos)

    def split_video_ids(self, split: str, source: object) -> list[str]:
        """`video_ids(split)`, refused (`EmptySplit`, naming `source`, the annotations file) when there are none."""
        ids = self.video_ids(split)
        if not ids:
            raise EmptySplit(f"{source}: no videos in split {split!r} (splits: {', '.join(self.subsets())})")
        return ids

    def subset(self, subset: str) -> "AnnotationSet":
        ids = self.video_ids(subset)
        return AnnotationSet(
            classes=list(self.classes),
            videos={v: self.videos[v] for v in ids},
            segments={v: list(self.segments.get(v, [])) for v in ids},
        )

    def subsets(self) -> list[str]:
        return sorted({info.subset for info in self.videos.values()})


# The names a scores file (eval_<split>.json) or a results JSON's `mgrec` block records of how it was made, each a
# str or None (`recorded_name_problem`): `compare` tells evaluations apart by them, `score` and the reports print them.
EVALUATION_NAMES = ("checkpoint", "threshold_tuned_on", "inference_precision", "split", "run", "engine", "onnx")


def recorded_name_problem(record: dict) -> str | None:
    """The first key of `EVALUATION_NAMES` whose value in `record` is neither a str nor None (a list or an object
    written by hand or by another tool), or None."""
    return next((key for key in EVALUATION_NAMES if record.get(key) is not None and not isinstance(record[key], str)),
                None)


# A class name is shown in tables, figure legends and output files: a 30000-character one made the report's figures
# run out of memory.
MAX_CLASS_NAME = 200


def class_names_problem(classes: list[str]) -> tuple[int, str] | None:
    """The first problem of a list of class names, with the index of the name it is at (None: none). Every class name
    non-empty, at most MAX_CLASS_NAME characters, each once, and none the same as another to a reader (`name_key`):
    two spellings of one gesture would train as two classes, each with half its instances, and one name twice
    scores as one class whose rows overwrite each other."""
    first: dict[str, int] = {}
    for index, name in enumerate(classes):
        if not name.strip() or len(name) > MAX_CLASS_NAME:
            length = "" if len(name) > 80 else f" ({len(name)} characters)"  # `brief` counts a longer one itself
            return index, (f"class name {brief(name)}{length}: expected a name of 1 to {MAX_CLASS_NAME} characters, "
                           "not only spaces")
        earlier = first.setdefault(name_key(name), index)
        other = classes[earlier]
        if other == name and earlier != index:
            return index, f"class {brief(name)} is listed twice (first as classes[{earlier}]); each class once"
        if other != name:
            return index, (f"classes {other!r} and {name!r} are one name to a reader{spelling_hint(other, name)}; "
                           "give each class one spelling")
    return None


def segment_rows(segments: Iterable[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Some labelled segments (start, end, class name) as the digests write them, whatever their order: times as
    Python floats rounded to the millionth (numpy's float32 is no JSON; 1 and 1.0, -0.0 and 0.0 one value), sorted.
    What a run trained on (`segments_digest`, per video) and what a score was counted against
    (`mgrec.evaluate.scoring.ground_truth_digest`, every video's rows in one digest) are hashed from these rows."""
    return sorted((round(float(start), 6) + 0.0, round(float(end), 6) + 0.0, name) for start, end, name in segments)


def segments_digest(segments: Iterable[tuple[float, float, str]]) -> str:
    """The sha256 of some labelled segments' rows (`segment_rows`): what a run trained on, per video
    (`mgrec.train.loop.labels_digests`)."""
    return hashlib.sha256(json.dumps(segment_rows(segments)).encode()).hexdigest()


def checked_video_id(video_id: object, what: str = "video_id", optional: bool = False) -> str | None:
    """A video id given in Python (`OfflineDetector.detect`, `OnlineDetector`): a non-empty str, which every detection
    and emission carries (and results JSON keys it by); None only where `optional` (not given: the file's name, or
    "video"). Unchecked, `detect(x, video_id=5)` returned detections of video 5 (an int), which `save_predictions`
    and `score` then refused far from the call, and "" was silently named "video"."""
    if video_id is None and optional:
        return None
    if not isinstance(video_id, str) or not video_id:
        raise InputError(f"{what}: expected a video id (a non-empty str{', or None' * optional}), got "
                         f"{brief(video_id)}")
    return video_id


def check_class_list(classes: object, what: str = "classes") -> list[str]:
    """A class list given in Python (`score`, `OfflineDetector`), as a list read once: names (str) in label-id order,
    with no `class_names_problem` (the rule the annotations readers apply to a file's list)."""
    names = listed(classes, what, "a list of class names")
    if not names:  # every label was then refused as "does not match the class list []", blaming the file it came from
        raise InputError(f"{what}: expected a list of class names (label id 0 first), got an empty one")
    stranger = next((index for index, name in enumerate(names) if not isinstance(name, str)), None)
    if stranger is not None:
        raise InputError(f"{what}[{stranger}]: expected a class name (a str), got {brief(names[stranger])}")
    problem = class_names_problem(names)
    if problem is not None:
        raise InputError(f"{what}[{problem[0]}]: {problem[1]}")
    return names


# Records as arrays, and the check of records given in Python (the metrics of mgrec.evaluate, mgrec.postprocess's
# fusion of detections): here, below both.


def bounds(items: Sequence[Segment | Detection]) -> np.ndarray:
    """(N, 2) array of (start, end) seconds: `_bounds_reference`'s array, a column at a time (an array of a million
    (start, end) tuples took 4 times as long; every score of a ranked list calls it for each video)."""
    count = len(items)
    result = np.empty((count, 2), dtype=np.float64)
    result[:, 0] = np.fromiter((item.start for item in items), dtype=np.float64, count=count)
    result[:, 1] = np.fromiter((item.end for item in items), dtype=np.float64, count=count)
    return result


def _bounds_reference(items: Sequence[Segment | Detection]) -> np.ndarray:
    """`bounds` as its definition (tests/evaluate/test_matching.py checks them equal)."""
    return np.array([(item.start, item.end) for item in items], dtype=np.float64).reshape(-1, 2)


def scores(detections: Sequence[Detection]) -> np.ndarray:
    return np.array([d.score for d in detections], dtype=np.float64)


def check_records(per_video: object, name: str, scored: bool, num_classes: int | None = None) -> None:
    """The records a metric is given in Python, checked once per call, video by video and vectorised: a mapping
    {video_id: list of Segment (`scored` False) or Detection}, each with finite times, start <= end, an integer
    label_id >= 0 (and < `num_classes` where the metric knows the class count) and, for a detection, a finite score.
    Before, a start after its end or a NaN time scored as a miss, a NaN score ranked nowhere in F1 and first in AP, a
    negative label_id was a class of its own, a float one was cut to an int, and a list of dicts was an
    AttributeError deep inside: each a number or a traceback, not what was wrong. `name` names the argument."""
    kind = "Detection" if scored else "Segment"
    if not isinstance(per_video, Mapping):
        raise InputError(f"{name}: expected a mapping {{video_id: [{kind}, ...]}}, got {type(per_video).__name__}")
    for video_id, items in per_video.items():
        place = f"{name} [{brief(video_id)}]"
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            raise InputError(f"{place}: expected a list of {kind}, got {type(items).__name__}")
        if not items:
            continue
        fields = ("start", "end", "label_id", "score") if scored else ("start", "end", "label_id")
        try:
            times = bounds(items)
            labels = np.array([item.label_id for item in items])
            values = scores(items) if scored else np.zeros(len(items))
        except AttributeError:
            index = next(i for i, item in enumerate(items) if not all(hasattr(item, key) for key in fields))
            raise InputError(f"{place} #{index}: expected a {kind} (mgrec.records; load_predictions and "
                             f"load_annotations read files into them), got {brief(items[index])}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{place}: expected numbers for start, end, label_id{' and score' if scored else ''} "
                             f"({exc})") from None
        bad = np.flatnonzero(~np.isfinite(times).all(axis=1) | (times[:, 0] > times[:, 1]))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected finite times with start <= end, got "
                             f"[{items[index].start!r}, {items[index].end!r}]")
        if labels.dtype.kind not in "iu":  # 1.5 was cut to class 1, True was class 1
            index = next((i for i, item in enumerate(items) if not _integral(item.label_id)), None)
            if index is not None:
                raise InputError(f"{place} #{index}: expected an integer label_id, got {brief(items[index].label_id)}")
            labels = np.array([int(item.label_id) for item in items], dtype=np.int64)  # e.g. torch's 0-d tensors
        limit = "" if num_classes is None else f" and < {num_classes} (the number of classes)"
        bad = np.flatnonzero((labels < 0) | (labels >= (np.iinfo(np.int64).max if num_classes is None
                                                         else num_classes)))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected a label_id >= 0{limit}, got {items[index].label_id!r}")
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            index = int(bad[0])
            raise InputError(f"{place} #{index}: expected a finite score, got {items[index].score!r}")


def _integral(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        return float(value).is_integer()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False
