"""`mgrec data check`: find every problem in a dataset before training, and suggest settings.

Reads the annotations and, for each video of the train/val/test splits, its feature file and
sidecar in every input stream (end to end: its video file). Every problem is collected (one bad
file does not hide the next) as a `Problem` with its location. Errors make training wrong or
impossible; warnings are worth a look.

The file reads in that order: the report (`Problem`, `CheckReport`, its printing), `check_dataset`, then its parts
in the order it calls them (the annotations and the config, each entry, the video or feature files), and the
suggested settings last.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from mgrec.config import (
    FEATURE_EXTENSIONS,
    Config,
    DataConfig,
    ModelConfig,
    StreamConfig,
    key_origin,
    keys_the_variant_ignores,
    shipped_config,
)
from mgrec.data.annotations import EntryError, load_annotations
from mgrec.data.augment import class_histogram
from mgrec.data.balance import ClassBalancer
from mgrec.data.demo import default_cache_dir
from mgrec.data.features import (
    FPS_TOLERANCE,
    RECIPE_FIELDS,
    FeatureSidecar,
    check_sidecar,
    check_sidecar_length,
    feature_ending,
    feature_file_shape,
    inspect_features,
    read_sidecar,
    repeated_feature_files,
    sidecar_path,
    without_prefix,
)
from mgrec.data.streams import stream_key, stream_path
from mgrec.data.videos import VIDEO_SUFFIXES, names_video
from mgrec.errors import InputError, where
from mgrec.files import (
    ONE_NAME_ELSEWHERE,
    alike_output_names,
    alike_video_ids,
    brief,
    counted,
    file_name_key,
    is_hidden,
    missing_file_problem,
    missing_folder_problem,
    part_of,
    read_from_here_note,
    shell_word,
    spelt_alike_remedy,
    two_alike_names,
    windows_name_problem,
)
from mgrec.records import AnnotationSet, Segment, VideoInfo
from mgrec.smg_csv import MAX_FRAME
from mgrec.terminal import cell, columns
from mgrec.timeline import FeatureGrid

# ---------------------------------------------------------------------------------------------
# The report: every problem at its place, printed grouped; the suggestions; what training drops


@dataclass
class Problem:
    severity: str  # "error" | "warning"
    where: str  # file, with line or key when known
    message: str
    video_id: str | None = None  # the video it concerns, when it concerns one video
    # the message as said alike of every video, where it names the video's own file (`v_<id>.npy is there`): what
    # the report's printing groups by (`grouped_problems`); None: the message itself
    alike: str | None = field(default=None, compare=False)
    # the class it concerns, when it concerns one class and no video: grouped as a video's are (500 classes without
    # training instances were 500 lines)
    class_name: str | None = field(default=None, compare=False)

    @property
    def subject(self) -> str | None:
        """What the printing groups alike problems over (`grouped_problems`): the video's id, else the class's name,
        else None: a problem printed alone."""
        return self.video_id if self.video_id is not None else self.class_name


@dataclass
class CheckReport:
    problems: list[Problem]
    classes: list[str]
    counts_per_split: dict[str, dict[str, int]]  # split -> class name -> instances
    videos_per_split: dict[str, int]
    suggestions: dict[str, Any] = field(default_factory=dict)  # config key -> suggested value
    statistics: dict[str, Any] = field(default_factory=dict)  # what the suggestions are based on
    histogram_before: list[int] | None = None  # train instances per class
    histogram_after: list[float] | None = None  # the same, times the class's crop weight (balance.method)
    balance_method: str = "none"
    streams: list[dict] = field(default_factory=list)  # data.streams: name, dim, stride, window, fps, grid

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def dataset_errors(self) -> list[Problem]:
        """Errors not tied to one video: dropping videos cannot work around these."""
        return [p for p in self.errors if p.video_id is None]

    def format(self) -> str:
        """Human-readable report: instance tables, every problem with its location, suggestions."""
        # Without a class list (the annotations could not be read) the table would only show zeros.
        lines = _count_table(self) if self.classes else []
        if self.streams:
            lines += ["", "Input streams (resampled onto the grid stream's grid):"]
            lines += [f"  {s['name']}: dim {s['dim']}, stride {s['stride']}, window {s['window']}, fps "
                      f"{'from sidecar/annotations' if s['fps'] is None else s['fps']}"
                      + ("  (grid stream)" if s["grid"] else "") for s in self.streams]
        if self.histogram_before is not None and self.histogram_after is not None:
            lines += [""] + _balance_table(self)
        lines += [""] * bool(lines) + [f"Problems: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        lines += [_problem_line(first, videos) for first, videos in grouped_problems(self.errors + self.warnings)]
        if self.suggestions:
            from_files = [key for key in self.suggestions if key in _FILE_SETTINGS]
            notes = [f"{' and '.join(from_files)}: what the feature files and sidecars say"] if from_files else []
            from_annotations = [key for key in self.suggestions if key in _ANNOTATION_SETTINGS]
            notes += [f"{' and '.join(from_annotations)}: what the annotations say"] if from_annotations else []
            if len(from_files) + len(from_annotations) < len(self.suggestions):
                notes.append("the others: " * bool(notes) + "starting points for new data, from the training "
                             "split's lengths alone; a config's value chosen on val, as the shipped configs' were, "
                             "is the better one" + ("; they count lengths at the config's fps: rerun once data.fps "
                                                    "is set") * ("data.fps" in from_files))
            lines += ["", f"Suggested settings that differ from the config ({'; '.join(notes)}; command-line "
                          "overrides for data check and train):"]
            # compact JSON (valid YAML), quoted for the shell: `--set model.regression_ranges=[[0, 4], ...]` unquoted
            # split at its spaces into arguments argparse refused
            compact = {key: json.dumps(value, separators=(",", ":")) for key, value in self.suggestions.items()}
            lines += [f"  --set {shlex.quote(f'{key}={value}')}" for key, value in compact.items()]
            lines += ["Based on:"]
            lines += [f"  {key}: {value}" for key, value in self.statistics.items()]
        return "\n".join(lines)


# The suggestions read from the feature files and sidecars (`_file_suggestions`), not from the lengths.
_FILE_SETTINGS = ("data.feature_dim", "data.fps")
# The suggestions read from the annotations: their class count (a config copied from another dataset's).
_ANNOTATION_SETTINGS = ("model.num_classes",)


# Up to this many videos with one same problem (severity and message) are a line each; more are one line with the
# count and the first few: a config's feature_dim other than every file's was two lines per video (72 for SMG's 36).
_VIDEOS_EACH = 3


def grouped_problems(problems: list[Problem]) -> list[tuple[Problem, list[str]]]:
    """Each problem with the videos (or classes) it stands for, in the order first seen: itself alone (neither: []),
    or, for a message said alike of more than _VIDEOS_EACH videos (classes), its first with every such video (class
    name). Only the printing groups: the report keeps every problem (the counts, the exit code and
    data.drop_bad_videos go by them)."""
    alike: dict[tuple[str, str, str], list[Problem]] = {}
    for problem in problems:
        if problem.subject is not None:
            alike.setdefault(_alike_key(problem), []).append(problem)
    # each group's videos listed once (listed again for each of its problems, 100,000 videos missing their
    # feature files took 10^10 steps: data check ran past an hour)
    subjects_of = {key: list(dict.fromkeys(p.subject for p in group)) for key, group in alike.items()}
    grouped: list[tuple[Problem, list[str]]] = []
    shown: set[tuple[str, str, str]] = set()
    for problem in problems:
        if problem.subject is None:
            grouped.append((problem, []))
            continue
        key = _alike_key(problem)
        subjects = subjects_of[key]
        if len(subjects) <= _VIDEOS_EACH:
            grouped.append((problem, [problem.subject]))
        elif key not in shown:
            shown.add(key)
            grouped.append((problem, subjects))
    return grouped


def _alike_key(problem: Problem) -> tuple[str, str, str]:
    """What `grouped_problems` groups by: the severity, the message, and the place up to its video's (class's) own
    part (its last mention: `feats/v1.npy` -> `feats/`; `ann.json [database.v1.annotations[2]]` -> `ann.json
    [database.`), so that videos alike in one folder make one line, and those of another folder (another stream's:
    data.streams) their own; grouped by the message alone, the second folder's problems were counted and never
    named. A place that does not name its video groups by the message alone."""
    head = problem.where.rpartition(problem.subject)[0]
    return problem.severity, problem.alike or problem.message, head


def _problem_line(problem: Problem, videos: list[str]) -> str:
    """One line of the report: a problem at its place, or the first of many videos' with the count and the first
    few (the rest are alike: the same message, each at its own video's file)."""
    return f"  {problem.severity.upper():7} {problem_where(problem, videos)}: {problem.message}"


def problem_where(problem: Problem, videos: list[str]) -> str:
    """Where `problem` is (`grouped_problems`' videos): its place, or the first of many videos' with the count of the
    others and the first few."""
    where = problem.where
    if len(videos) > 1:
        others = ", ".join(brief(v) for v in videos[1 : _VIDEOS_EACH + 1])
        other = "other video" if problem.video_id is not None else "other class"
        where += f", and the same for {counted(len(videos) - 1, other)} ({others}, ...; {len(videos)} in all)"
    return where


# A class name's column in the tables: longer names are cut ("..."), as `mgrec evaluate`'s table cuts them (a
# 200-character name made every row of the table 200 columns wide).
MAX_NAME_COLUMNS = 48


def _class_column_width(classes: list[str]) -> int:
    """The tables' class column: the widest name, up to MAX_NAME_COLUMNS."""
    return max([min(columns(name), MAX_NAME_COLUMNS) for name in classes] + [len("class")])


def _count_table(report: CheckReport) -> list[str]:
    splits = list(report.counts_per_split)
    width = _class_column_width(report.classes)
    lines = ["Instances per class and split", f"{'class':{width}}" + "".join(f"{s:>8}" for s in splits)]
    for name in report.classes:
        counts = "".join(f"{report.counts_per_split[s][name]:>8}" for s in splits)
        lines.append(cell(name, width, MAX_NAME_COLUMNS) + counts)
    lines.append(f"{'total':{width}}" + "".join(f"{sum(report.counts_per_split[s].values()):>8}" for s in splits))
    lines.append(f"{'videos':{width}}" + "".join(f"{report.videos_per_split[s]:>8}" for s in splits))
    return lines


def _balance_table(report: CheckReport) -> list[str]:
    width = _class_column_width(report.classes)
    adaptive = report.balance_method == "adaptive"
    note = " (adaptive: its first epoch; training adapts the weights every epoch)" * adaptive
    lines = [f"Training instances before and after class balancing ({report.balance_method}): crop anchors per "
             f"class{note}", f"{'class':{width}}  before   after"]
    for name, before, after in zip(report.classes, report.histogram_before, report.histogram_after):
        # weighted anchors: fractions of one
        lines.append(f"{cell(name, width, MAX_NAME_COLUMNS)}{before:>8}{after:>8.1f}")
    return lines


def videos_to_drop(report: CheckReport) -> dict[str, list[str]]:
    """Videos with errors -> the reasons ('where: message'), for training with data.drop_bad_videos.

    Errors not tied to a video (`report.dataset_errors`) cannot be dropped; the trainer must stop.
    """
    reasons: dict[str, list[str]] = {}
    for problem in report.errors:
        if problem.video_id is not None:
            reasons.setdefault(problem.video_id, []).append(f"{problem.where}: {problem.message}")
    return reasons


# ---------------------------------------------------------------------------------------------
# The check: annotations, then each video's files (its feature files per stream, or its video end to end)


def check_dataset(config: Config, balance: bool = False, source: str = "config", training: bool = True) -> CheckReport:
    """Check annotations and features named by `config.data` and collect every problem.

    Reported as errors: unreadable annotations or entries (bad keys, types, labels, start >= end,
    negative times), a class count that differs from model.num_classes, labels beyond it, an empty
    training split, a val split without instances, instances that start after the video ends, a
    duration that disagrees with the entry's frame count, every instance no longer than
    postprocess.min_duration (`undetectable_problem`); missing or unreadable feature files (with
    where they may be: `_missing_feature_problem`), a missing features folder, wrong feature
    dimension, NaN/Inf, sidecars that disagree with the config, the file or the annotations'
    frame count, feature files of two recipes in one folder, features whose length disagrees with
    the video's by more than `allowed_drift`, and videos of two splits whose feature files are one
    file or hold the same features (`repeated_video_problems`); end to end, video files that are
    missing, unreadable, of another fps, cut short or of another length (`_video_file_problems`).
    Reported as warnings: videos without instances, instances ending after the video ends,
    duplicated ground truths, instances of one class overlapping by a tIoU above SAME_CLASS_OVERLAP_TIOU
    (`same_class_overlaps`), some instances no longer than postprocess.min_duration, instances no
    pyramid point can learn (`unlearnable_problem`), config keys the model variant does not read
    (`keys_the_variant_ignores`), one video twice within a split (the same
    features under two ids), feature files without an annotations entry, missing sidecars,
    videos in no configured split, empty val/test splits, a val or test split that is the training
    split or a val split that is the test split (`same_split_problems`), classes without a training
    instance, a data.fps other than the annotations' (`_config_fps_problems`), and a warm-up that fills
    the run (`schedule_problem`).

    `training` False leaves out what only a training to come can act on (the warm-up): an ensemble tunes its
    threshold on its members' config, whose runs trained already.

    Raises InputError where the config names no annotations, or no data.features where it reads them (not end to
    end, data.videos, nor with data.streams, which name their own), and for `balance` with balance.method none.

    The suggestions are the data settings the feature files and sidecars say (`_file_suggestions`), then the
    lengths' (`suggest_settings`), each where the config's value differs.

    With `balance`, the report also holds the training class histogram before and after class
    balancing (`balance.method`, `mgrec.data.balance`): instances, and the crop anchors they weigh.
    """
    data = config.data
    if balance and config.balance.method == "none":
        raise InputError("data check --balance: balance.method is none; set it (--set balance.method=repeat_factor, "
                         "mgrec's default recipe; balance.method=eq1 --set balance.alpha=100, the paper's; or "
                         "balance.method=adaptive)")
    # end to end is data.videos set (`Config.end_to_end`); data.streams name their own folders
    needed = ("annotations",) if config.end_to_end or data.streams else ("annotations", "features")
    for key in needed:
        if not getattr(data, key):
            example = {"annotations": "annotations.json", "features": "features/"}[key]
            demo = default_cache_dir()
            # the demo's settings for the keys this config reads: data.features is refused beside data.streams
            # (each stream names its folder), so it is offered only where it is needed
            demo_files = {"annotations": demo / "annotations.json", "features": demo / "features"}
            demo_sets = " ".join(f"--set data.{k}={demo_files[k]}" for k in needed)
            raise InputError(f"{_setting_place(config, f'data.{key}', source)}: not set; add it to the config or pass "
                             f"--set data.{key}={example} (the demo data, once `mgrec demo` has built it: "
                             f"{demo_sets})")
    # the training split, and the val and test splits the config names ('' goes without one: no validation)
    splits = list(dict.fromkeys([data.train_split, *(s for s in (data.val_split, data.test_split) if s)]))
    annotations_path = Path(data.annotations)

    problems: list[Problem] = []
    entry_errors: list[EntryError] = []
    try:
        aset = load_annotations(annotations_path, entry_errors, default_fps=data.fps)
    except InputError as exc:
        if not os.path.lexists(annotations_path):  # said as `mgrec train` says it (`refuse_missing_annotations`)
            problems.append(Problem("error", _setting_place(config, "data.annotations", source),
                                    f"{data.annotations} not found{read_from_here_note(annotations_path)}; give the "
                                    "annotations file: --set data.annotations=FILE"))
        else:
            problems.append(_problem_from_error(exc, annotations_path, None))
        return CheckReport(
            problems=problems,
            classes=[],
            counts_per_split={split: {} for split in splits},
            videos_per_split={split: 0 for split in splits},
        )
    problems += [Problem("error", e.where, e.message, e.video_id) for e in entry_errors]
    refused_videos = {e.video_id for e in entry_errors}

    problems += _annotation_problems(aset, annotations_path, config, splits, source, training)
    video_steps: dict[str, int] = {}  # each readable video's length on the model's grid, for the suggestions
    if config.end_to_end:  # raw videos, decoded through the backbone: each must open at the annotations' fps
        for split in splits:
            for video_id in aset.video_ids(split):
                found, steps = _video_file_problems(aset.videos[video_id], config)
                problems += found
                if steps is not None:
                    video_steps[video_id] = steps
        # no feature file to say them by (`_file_name_problems`): said of the ids, as `data convert` says them
        problems += video_id_name_problems(aset, [video_id for split in splits for video_id in aset.video_ids(split)])
    # Every stream's files, each against its own recipe and the video's duration (the grid stream first:
    # its lengths are the videos' lengths on the model's grid).
    streams = [] if config.end_to_end else data.input_streams()
    # what the one stream's files say of data.feature_dim and data.fps (--set cannot reach a data.streams item)
    values = _FileValues()
    for stream in streams:
        problems += _stream_problems(stream, stream is streams[0], aset, splits, data,
                                     set(aset.videos) | refused_videos, video_steps,
                                     values if not data.streams else None)

    report = CheckReport(
        problems=problems,
        classes=list(aset.classes),
        counts_per_split={
            split: dict(zip(aset.classes, class_histogram(aset.subset(split).segments, aset.num_classes)))
            for split in splits
        },
        videos_per_split={split: len(aset.video_ids(split)) for split in splits},
    )
    report.suggestions, report.statistics = _file_suggestions(values, data)
    if aset.num_classes and aset.num_classes != config.model.num_classes:  # an error above; its setting suggested
        report.suggestions["model.num_classes"] = aset.num_classes
        shown = ", ".join(aset.classes[:5]) + ", ..." * (aset.num_classes > 5)
        report.statistics["annotations' classes"] = f"{aset.num_classes} ({shown})"
    train = aset.subset(data.train_split)
    if train.videos:
        lengths, statistics = _length_suggestions(train, config, video_steps)
        report.suggestions.update(lengths)
        report.statistics.update(statistics)
    if data.streams:  # what `mgrec data check` shows per stream
        report.streams = [
            {"name": s.name, "dim": s.feature_dim, "stride": s.stride, "window": s.window, "fps": s.fps,
             "grid": s is streams[0]} for s in streams]
    if balance:
        report.histogram_before = class_histogram(train.segments, aset.num_classes)
        weights = ClassBalancer(config.balance, report.histogram_before).effective_weights()
        report.histogram_after = [count * weight for count, weight in zip(report.histogram_before, weights)]
        report.balance_method = config.balance.method
        report.statistics["class_weights"] = [round(weight, 4) for weight in weights]
    return report


def _setting_place(config: Config, key: str, source: str) -> str:
    """Where the value of the config `key` came from, for a problem's place: the `--set` item that gave it, else the
    config file (`key_origin`: as `load_config` read it; `source`, the caller's name for it, where the config was
    built in code). Every setting data check names is placed so: the file was named for a value `--set` gave."""
    place = key_origin(config, key)
    return f"{source} [{key}]" if place == f"config [{key}]" else place


def _problem_from_error(exc: InputError, path: str | Path, video_id: str | None) -> Problem:
    """Split an InputError 'LOCATION: message' (LOCATION starting with `path`) into a Problem."""
    text = str(exc)
    prefix = str(Path(path))
    if text.startswith(prefix) and ": " in text[len(prefix) :]:
        cut = text.index(": ", len(prefix))
        return Problem("error", text[:cut], text[cut + 2 :], video_id)
    return Problem("error", prefix, text, video_id)


# ---------------------------------------------------------------------------------------------
# The annotations and the config


def _annotation_problems(aset: AnnotationSet, annotations_path: Path, config: Config, splits: list[str],
                         source: str, training: bool = True) -> list[Problem]:
    """What the annotations and the config say of each other: the class count, the splits (empty, unused, one
    another's), classes no training instance teaches, the schedule, keys the model variant does not read, instances
    no pyramid point can learn or no detection can keep (postprocess.min_duration), the frame rates, a val split
    without instances, and each video's entry (`entry_problems`) and whether it has instances."""
    data = config.data
    problems: list[Problem] = []
    if aset.num_classes != config.model.num_classes:
        problems.append(Problem(
            "error", where(annotations_path, key="classes"),
            f"{counted(aset.num_classes, 'class')} in the annotations but model.num_classes is "
            f"{config.model.num_classes}",
        ))
    problems += _empty_and_unused_split_problems(aset, annotations_path, data, splits)
    problems += [Problem("warning", _setting_place(config, f"data.{key}", source), message)
                 for key, message in same_split_problems(data.train_split, data.val_split, data.test_split)]
    problems += _untrained_class_problems(aset, annotations_path, data.train_split, splits)
    schedule = schedule_problem(config.train.epochs, config.train.warmup_epochs, config) if training else None
    if schedule:
        problems.append(Problem("warning", _setting_place(config, "train.warmup_epochs", source), schedule))
    problems += [Problem("warning", where, why) for where, why in keys_the_variant_ignores(config)]
    unlearnable = unlearnable_problem(
        [(video_id, *_grid_instances(aset, video_id, data)) for video_id in aset.video_ids(data.train_split)],
        config.model, config.train.center_radius)
    if unlearnable:
        problems.append(Problem("warning", str(annotations_path), unlearnable))
    short = undetectable_problem(
        [(video_id, *_grid_instances(aset, video_id, data)) for split in splits for video_id in aset.video_ids(split)],
        config.postprocess.min_duration)
    if short is not None:
        problems.append(Problem(short[0], _setting_place(config, "postprocess.min_duration", source), short[1]))
    problems += _config_fps_problems([aset.videos[v] for split in splits for v in aset.video_ids(split)], data.fps,
                                     _setting_place(config, "data.fps", source))
    val_videos = aset.video_ids(data.val_split) if data.val_split else []
    if val_videos and not any(aset.segments.get(video_id) for video_id in val_videos):
        # training would stop at its first validation, with every epoch before it lost
        problems.append(Problem(
            "error", str(annotations_path),
            f"split {data.val_split!r} (data.val_split) has {len(val_videos)} video(s) but no annotated instance: "
            "validation selects the checkpoint and tunes the score threshold on its instances; annotate them, or "
            "leave the videos out of that split to train without validation",
        ))

    for split in splits:
        video_ids = aset.video_ids(split)
        problems += entry_problems(aset, video_ids, config.model.num_classes)
        problems += _unlabelled_problems(aset, split, video_ids, annotations_path, split == data.train_split)
    return problems


def _empty_and_unused_split_problems(aset: AnnotationSet, annotations_path: Path, data: DataConfig,
                                     splits: list[str]) -> list[Problem]:
    """Configured splits without videos (the training split's an error; with the subset it may have meant,
    `_split_hint`), and subsets of the annotations that no split takes."""
    problems = []
    unused = {s: len(aset.video_ids(s)) for s in aset.subsets() if s not in splits}
    keys = {data.train_split: "train_split", data.val_split: "val_split", data.test_split: "test_split"}
    empty = [split for split in splits if not aset.video_ids(split)]
    for split in empty:
        severity = "error" if split == data.train_split else "warning"
        hint = _split_hint(split, keys.get(split), unused, alone=len(empty) == 1)
        problems.append(Problem(severity, str(annotations_path), f"no videos in split {split!r}{hint}"))
    if unused:
        listed = ", ".join(f"{name!r} ({count})" for name, count in unused.items())
        problems.append(Problem(
            "warning", str(annotations_path),
            f"videos in subsets {listed} are in none of the configured splits ({', '.join(splits)}) and are not used",
        ))
    return problems


def _split_hint(split: str, key: str | None, unused: dict[str, int], alone: bool) -> str:
    """Which subset of the annotations an empty split may have meant: one no split takes (a val split named
    'valid' or 'dev'), named with the setting that takes it; by its name, or, for the one empty split (`alone`),
    the largest such subset."""
    close = difflib.get_close_matches(split, list(unused), n=1, cutoff=0.3)
    if key is None or not (close or alone and unused):
        return ""
    name = (close or [max(unused, key=unused.get)])[0]
    return (f"; the annotations name a subset {name!r} ({counted(unused[name], 'video')}) that no split takes: "
            f"--set data.{key}={name}?")


def same_split_problems(train_split: str, val_split: str, test_split: str) -> list[tuple[str, str]]:
    """(config key, message) for a val or test split that is the training split, or a val split that is the test
    split: THUMOS-style data trains on "validation", and a val_split left at its default then chose the checkpoint
    and the score threshold on the training videos, and scored them, without a word (`data check` and `train` say
    it)."""
    problems = []
    for key, split, role in (("val_split", val_split, "chooses the checkpoint and tunes the score threshold"),
                             ("test_split", test_split, "is what evaluate scores")):
        if split and split == train_split:
            problems.append((key, f"{split!r} is also the training split (data.train_split): it {role} on the "
                                  f"videos the network is trained on; set data.{key} to a split of other videos"))
    # ActionFormer's THUMOS config validates on "test": the test score then comes with a checkpoint and a
    # threshold chosen on the test videos themselves (what `evaluate --tune-on` refuses)
    if val_split and val_split == test_split and val_split != train_split:
        problems.append(("val_split", f"{val_split!r} is also the test split (data.test_split): the checkpoint "
                                      "and the score threshold are chosen on the videos evaluate scores, so the test "
                                      "score is optimistic; set data.val_split to a split of other videos (THUMOS: "
                                      "hold out some of its validation videos)"))
    return problems


def _untrained_class_problems(aset: AnnotationSet, annotations_path: Path, train_split: str,
                              splits: list[str]) -> list[Problem]:
    """A class with no instance in the training split (whether or not other splits have some): the network never
    sees it, and its F1 and AP are 0 where it has instances (a labelling or split mistake, or a class list longer than
    the labels used)."""
    def counts(split: str) -> list[int]:
        return class_histogram(aset.subset(split).segments, aset.num_classes)

    if not aset.video_ids(train_split):
        return []  # reported as "no videos in split" already
    trained = counts(train_split)
    others = {split: counts(split) for split in splits if split != train_split}
    problems = []
    for label_id, name in enumerate(aset.classes):
        elsewhere = {split: count[label_id] for split, count in others.items() if count[label_id]}
        if trained[label_id] == 0:
            listed = ", ".join(f"{count} in {split!r}" for split, count in elsewhere.items()) or "nor in any other"
            problems.append(Problem(
                "warning", str(annotations_path),
                f"class {name!r} has no instance in the training split {train_split!r} ({listed}): the network "
                "cannot learn it, " + ("and its F1 and AP there are 0" if elsewhere else
                                       "and it is scored nowhere (AP '-', F1 '-' or 0 where something is detected "
                                       "as it: no instance to find)"),
                class_name=name, alike=f"untrained class, {'scored' if elsewhere else 'in no split'}",
            ))
    return problems


def schedule_problem(epochs: int, warmup_epochs: int, config: Config | None = None) -> str | None:
    """The learning-rate schedule (`train.step.lr_factor`) when the warm-up fills the run: the rate rises for every
    step, never reaches train.lr and never decays (`--set train.epochs=1` on a config warming up for 2). Said by
    `data check` and `train`, not refused: a short trial run is a fair thing to train.

    The advice fits where `config`'s train.warmup_epochs came from (`key_origin`): a config file (its key there, or
    `--set` on the command line), a `--set` item, or a config built in code (None too: `train()` from Python, whose
    user has no `--set` to pass)."""
    if warmup_epochs < epochs:
        return None
    peak = epochs / warmup_epochs
    value = "0" if epochs <= 1 else f"N with N < {epochs}"
    place = key_origin(config, "train.warmup_epochs").rpartition(" [")[0] if config is not None else "config"
    if place == "config":
        fix = f"set config.train.warmup_epochs = {value}"
    elif place.startswith("--set "):
        fix = f"pass --set train.warmup_epochs={value} instead"
    elif shipped_config(place) is not None:  # mgrec's own file, in the installed package: not one to edit
        fix = f"pass --set train.warmup_epochs={value}"
    else:
        fix = f"set train.warmup_epochs: {value} in {place} (or pass --set train.warmup_epochs={value})"
    return (f"train.warmup_epochs {warmup_epochs} >= train.epochs {epochs}: the learning rate rises for the whole run "
            f"to {peak:.0%} of train.lr and never decays; {fix} for the schedule's cosine decay")


def unlearnable_problem(videos: list[tuple[str, np.ndarray, FeatureGrid]], model: ModelConfig,
                        center_radius: float) -> str | None:
    """Of the training videos' (video id, (N, 2) instances in grid units, grid), the instances no pyramid point can
    learn (`unlearnable_segments`: within about one feature step, mostly), counted, the first
    named; None when there are none. Said by `data check` and `train`: training dropped them without a word."""
    strides = [2**level for level in range(model.num_levels)]
    found = [(video_id, segments[index], grid) for video_id, segments, grid in videos
             for index in np.flatnonzero(unlearnable_segments(segments, strides, model.regression_ranges,
                                                              center_radius))]
    if not found:
        return None
    total = sum(len(segments) for _, segments, _ in videos)
    video_id, (first, last), grid = found[0]
    return (f"{part_of(len(found), total, 'training instance')} {'is' if len(found) == 1 else 'are'} too short for "
            "any pyramid point to learn (no "
            f"feature step lies inside them), first {brief(video_id)} [{grid.index_to_seconds(first):.3f}, "
            f"{grid.index_to_seconds(last):.3f}] s ({last - first:.2f} steps); training never sees them: extract the "
            "features at a finer stride (data.stride), or check their times")


def unlearnable_segments(
    segments: np.ndarray, strides: list[int], regression_ranges: list[list[float]], center_radius: float = 1.5,
) -> np.ndarray:
    """(N,) bool: the segments ((N, 2) [start, end], level-0 grid units) that no pyramid point can learn, wherever
    a crop starts: no whole grid position of any level lies strictly inside the segment's centre region with its
    larger distance to the ends in that level's regression range (the rule of `mgrec.train.assign.assign_targets`,
    without the competition between overlapping segments; a test proves the two equal). A segment within one
    feature step ([10.3, 10.9]; [10, 11]) has no position strictly inside it: training never sees it, and `data
    check` and `train` say how many there are."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    if len(segments) > 1:  # blocks of segments, so that the (N, W) positions below stay small
        block = max(1, _POSITIONS_PER_BLOCK // _region_width(segments, max(strides), center_radius))
        if block < len(segments):
            return np.concatenate([unlearnable_segments(segments[i:i + block], strides, regression_ranges,
                                                        center_radius) for i in range(0, len(segments), block)])
    starts, ends = segments[:, :1], segments[:, 1:]
    centres = 0.5 * (starts + ends)
    learnable = np.zeros(len(segments), dtype=bool)
    for stride, (low, high) in zip(strides, regression_ranges):
        region_start = np.maximum(centres - center_radius * stride, starts)
        region_end = np.minimum(centres + center_radius * stride, ends)
        # a crop may start at any step, so any whole position is some crop's point on this level
        offsets = np.arange(_region_width(segments, stride, center_radius))
        positions = np.floor(region_start) + 1 + offsets  # (N, W): the whole positions after region_start
        largest = np.maximum(positions - starts, ends - positions)
        qualifies = (positions < region_end) & (largest >= low) & (largest <= high)
        learnable |= qualifies.any(axis=1)
    return ~learnable


# How many (segment, position) pairs `unlearnable_segments` holds at once (a few arrays of 8-byte values each).
_POSITIONS_PER_BLOCK = 1 << 22


def _region_width(segments: np.ndarray, stride: int, center_radius: float) -> int:
    """How many whole positions after a centre region's start can lie inside it: the region is at most 2 x
    center_radius strides wide and is cut to its segment, so a radius beyond half the longest segment adds nothing
    (`train.center_radius: 1e9`, the whole segment, asked for 864 GiB of positions)."""
    longest = float(np.max(segments[:, 1] - segments[:, 0], initial=0.0))
    return int(min(2 * center_radius * stride, longest)) + 2


def undetectable_problem(videos: list[tuple[str, np.ndarray, FeatureGrid]], min_duration: float
                         ) -> tuple[str, str] | None:
    """(severity, message) for the instances of the configured splits (video id, (N, 2) instances in grid units, grid)
    that are not longer than `postprocess.min_duration` steps, which decoding drops every candidate as short as (so
    they can never be detected); None when there are none. Every instance: an error (training would select its
    checkpoint on a val F1 of 0 at a "tuned" threshold of 0, and evaluate score nothing), some: a warning. A value
    meant as frames, milliseconds or seconds (`min_duration: 50`) did that without a word."""
    found = [(video_id, segments[index], grid) for video_id, segments, grid in videos
             for index in np.flatnonzero(segments[:, 1] - segments[:, 0] <= min_duration)]
    if not found:
        return None
    total = sum(len(segments) for _, segments, _ in videos)
    video_id, (first, last), grid = max(found, key=lambda item: item[1][1] - item[1][0])
    every = len(found) == total
    return ("error" if every else "warning",
            f"{'every one' if every else f'{len(found)}'} of the {total} annotated instances "
            f"{'is' if every else 'are'} not longer than postprocess.min_duration, {min_duration:g} feature steps "
            f"(the longest of them {brief(video_id)} [{grid.index_to_seconds(first):.3f}, "
            f"{grid.index_to_seconds(last):.3f}] s, {last - first:.2f} steps): detection drops every candidate this "
            "short, so they can never be found; min_duration counts feature steps (data.stride frames each), not "
            "frames, seconds or milliseconds")


def _grid_instances(aset: AnnotationSet, video_id: str, data: DataConfig) -> tuple[np.ndarray, FeatureGrid]:
    """A video's instances on its feature grid, as training places them (`mgrec.train.data.load_split`)."""
    from mgrec.data.datasets import segments_to_grid  # here: it imports torch, which `score --gt` needs not

    grid = data.grid(aset.videos[video_id].fps)
    return segments_to_grid(aset.segments.get(video_id, []), grid)[0], grid


def _config_fps_problems(videos: list[VideoInfo], config_fps: float | None, place: str) -> list[Problem]:
    """`data.fps` places every video's features on the grid; videos whose annotations give another fps (SMG's
    `_data.csv`) had their frame labels turned into seconds at that one. Unless the features were made from the
    videos resampled to data.fps (ActionFormer's default_fps), every label drifts against them (about 7 % from 30
    to 28 fps) and training learns almost nothing: a warning, with the first such video and a count."""
    other = [info for info in videos
             if config_fps is not None and info.fps_given and abs(info.fps - config_fps) > FPS_TOLERANCE]
    if not other:
        return []
    first = other[0]
    return [Problem("warning", place,
                    f"{config_fps:g} places the features of {len(other)} video(s) whose annotations give another fps "
                    f"(first {brief(first.video_id)}: {first.fps:g}, {first.source}): unless the features were made "
                    f"from the videos resampled to {config_fps:g} fps, their labels drift against them by up to "
                    f"{max(abs(info.fps / config_fps - 1) for info in other):.1%}; --set data.fps=null takes each "
                    "video's own")]


# ---------------------------------------------------------------------------------------------
# Each video's entry and instances (also `mgrec score --gt`'s check of its annotations)


def entry_problems(aset: AnnotationSet, video_ids: list[str], num_classes: int) -> list[Problem]:
    """The problems of the entries of `video_ids` in the annotations file alone: a duration that disagrees with the
    frame count (`_frame_count_problems`), and each video's instances against its entry and `num_classes`
    (`_segment_problems`). What `data check` says of each video's entry, and what `mgrec score --gt` refuses or warns
    of before scoring (`check_entries`)."""
    problems: list[Problem] = []
    for video_id in video_ids:
        problems += _frame_count_problems(aset.videos[video_id])
        problems += _segment_problems(aset.videos[video_id], aset.segments.get(video_id, []), num_classes)
    return problems


def check_entries(aset: AnnotationSet, annotations_path: str | Path, video_ids: list[str],
                  warn: Callable[[str], None], refused: str = "cannot be scored as it is", names: bool = False) -> None:
    """The checks `data check` makes of each entry of an annotations file (`entry_problems`), for a reader of the
    file alone (`mgrec score --gt`, `mgrec data convert`): its errors refused (InputError: the first, with the count
    of the others, ending "<file> `refused`"), its warnings given to `warn`, one line each as data check prints them
    ("<file> [key]: message"). `names`: the ids' names too (`video_id_name_problems`), for a file written for
    training (`data convert`), whose ids name the files of every later step."""
    problems = entry_problems(aset, video_ids, aset.num_classes)
    if names:
        problems += video_id_name_problems(aset, video_ids)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        first = errors[0]
        more = (f" (and {counted(len(errors) - 1, 'other error')} in its entries; `mgrec data check` lists them)"
                if len(errors) > 1 else "")
        raise InputError(f"{first.where}: {first.message}{more}; {annotations_path} {refused}")
    for problem, videos in grouped_problems([problem for problem in problems if problem.severity == "warning"]):
        warn(f"{problem_where(problem, videos)}: {problem.message}")


def _frame_count_problems(info: VideoInfo) -> list[Problem]:
    """A video entry whose duration disagrees with its frame count: the instance checks (`_segment_problems`) read
    `duration`, the feature checks `num_frames`, and a wrong one of the two hid an instance thousands of seconds past
    the features (a second or 2 % covers metadata rounding)."""
    if info.num_frames is None:
        return []
    frames_seconds = info.num_frames / info.fps
    if abs(info.duration - frames_seconds) > max(1.0, 0.02 * frames_seconds):
        return [Problem("error", info.source,
                        f"duration {info.duration:.6g} s disagrees with num_frames {info.num_frames} at {info.fps:g} "
                        f"fps ({frames_seconds:.6g} s); correct the wrong one", info.video_id)]
    return []


# Up to this many instances of a video with one kind of problem are listed each; the rest are counted in one line.
_INSTANCE_PROBLEMS_EACH = 5
# Two instances of one class overlapping by a tIoU above this are one gesture labelled twice: the default hard NMS
# (postprocess.iou_threshold 0.5) keeps one detection of a class where two overlap by more, so the other instance is
# a miss no detector avoids; and the F1's tIoU > 0.3 matches a detection of either to both. Real repeats of a
# gesture follow each other (SMG's rubbing eyes, rubbing again): they touch or overlap a little, not by half.
SAME_CLASS_OVERLAP_TIOU = 0.5
# How many later instances of its class (by start) each instance is compared with, at most.
_OVERLAP_NEIGHBOURS = 16


def _frames_hint(info: VideoInfo, segment: Segment) -> str:
    """Why an instance may start after its video's end: its `segment` holds frame numbers, not seconds (another
    tool's frame-based export; OpenTAD's and ActionFormer's files hold seconds), where as frames it lies in the
    video. Said, not assumed: a wrong duration gives the same sign."""
    start, end = segment.start / info.fps, segment.end / info.fps
    if end > info.duration + 1 / info.fps:
        return ""
    return (f"; frame numbers rather than seconds? At the video's {info.fps:g} fps they are [{start:.3f}, "
            f"{end:.3f}] s, inside it: 'segment' takes seconds (frame / fps); frames go in 'segment(frames)'")


def _segment_problems(info: VideoInfo, segments: list[Segment], num_classes: int) -> list[Problem]:
    """The problems of a video's instances against its entry and the model: labels beyond its classes, instances
    after the video's end, duplicates and same-class overlaps; the first few of each kind, then a count."""
    problems = []
    video_id = info.video_id
    tolerance = FeatureGrid(fps=info.fps, stride=1, window=1).frame_to_seconds(1)  # one frame of rounding
    first_of: dict[tuple, Segment] = {}
    found: dict[str, list[Problem]] = {}  # each kind of instance problem: the first few, then a count

    def add(kind: str, severity: str, segment: Segment, message: str) -> None:
        # said alike of every video with this kind of problem (`grouped_problems`): each message names its own
        # instance, so 8000 videos with a same-class overlap each were 130 lines ahead of `mgrec score`'s table
        found.setdefault(kind, []).append(Problem(severity, segment.source, message, video_id,
                                                  alike=f"instance problem: {kind}"))

    for segment in segments:
        if segment.label_id >= num_classes:
            add("label", "error", segment,
                f"label {segment.label!r} (label_id {segment.label_id}) is beyond the model's "
                f"{counted(num_classes, 'class')}")
        if segment.start >= info.duration:
            add("after the end", "error", segment,
                f"instance starts at {segment.start:.3f} s, after the video ends ({info.duration:.3f} s)"
                + _frames_hint(info, segment))
        elif segment.end > info.duration + tolerance:
            add("ends late", "warning", segment,
                f"instance ends at {segment.end:.3f} s, {segment.end - info.duration:.3f} s after the video ends "
                f"({info.duration:.3f} s)")
        if segment.start_frame is not None and segment.end_frame is not None:
            identity = (segment.label_id, "frames", segment.start_frame, segment.end_frame)
        else:
            identity = (segment.label_id, "seconds", round(segment.start, 6), round(segment.end, 6))
        if identity in first_of:
            add("duplicate", "warning", segment,
                f"duplicate ground truth: same label and times as {first_of[identity].source}")
        else:
            first_of[identity] = segment
    # exact copies are said as duplicates above; the overlaps are between the distinct instances
    for segment, other, overlap in same_class_overlaps(list(first_of.values())):
        add("overlap", "warning", segment,
            f"overlaps {_key_beside(other.source, segment.source)} of the same class {segment.label!r} in video "
            f"{brief(video_id)}: [{other.start:.3f}, {other.end:.3f}] s and [{segment.start:.3f}, {segment.end:.3f}] "
            f"s, tIoU {overlap:.2f} > {SAME_CLASS_OVERLAP_TIOU:g}: one gesture labelled twice (a copied row with "
            "shifted frames?); training and the one-to-one F1 matching take them as two gestures and NMS leaves a "
            "detection for one of them only: remove or merge one")
    for listed in found.values():  # a million duplicates were a million lines (193 MB of warnings)
        problems += listed[:_INSTANCE_PROBLEMS_EACH]
        if len(listed) > _INSTANCE_PROBLEMS_EACH:
            first = listed[0]
            problems.append(Problem(first.severity, info.source, f"and {len(listed) - _INSTANCE_PROBLEMS_EACH} more "
                                    f"instance(s) of this video like {first.where}: {first.message}", video_id,
                                    alike=first.alike))
    return problems


def same_class_overlaps(segments: list[Segment]) -> list[tuple[Segment, Segment, float]]:
    """(instance, an earlier instance of its class, their tIoU) for each instance overlapping one of its class by a
    tIoU above SAME_CLASS_OVERLAP_TIOU, in the order of their starts; each instance is named once, with the first
    such partner. Instances of different classes may overlap (a hand rubbing the eyes while the legs cross)."""
    found = []
    by_class: dict[int, list[Segment]] = {}
    for segment in segments:
        by_class.setdefault(segment.label_id, []).append(segment)
    for same in by_class.values():
        same.sort(key=lambda s: (s.start, s.end))
        named: set[int] = set()
        for i, first in enumerate(same):
            # tIoU <= (first.end - later.start) / first's length: a later instance starting past `beyond` (first's
            # midpoint, for a SAME_CLASS_OVERLAP_TIOU of 0.5) overlaps it by no more than SAME_CLASS_OVERLAP_TIOU.
            # Real data has one or two before it; a hostile stack of a million instances is compared
            # _OVERLAP_NEIGHBOURS deep (its instances are named by their nearer neighbours all the same).
            beyond = first.start + (1 - SAME_CLASS_OVERLAP_TIOU) * first.duration
            for j in range(i + 1, min(i + 1 + _OVERLAP_NEIGHBOURS, len(same))):
                later = same[j]
                if later.start >= beyond:
                    break
                if j in named:
                    continue
                inter = min(first.end, later.end) - later.start
                overlap = inter / (first.duration + later.duration - inter)
                if overlap > SAME_CLASS_OVERLAP_TIOU:
                    named.add(j)
                    found.append((later, first, overlap))
    return sorted(found, key=lambda item: (item[0].start, item[0].end))


def _key_beside(source: str, beside: str) -> str:
    """`source` ("file [key]") as its key alone where `beside` is in the same file: a message about one instance of
    a file names another by its key."""
    file, _, key = source.partition(" [")
    return f"[{key}" if key and beside.partition(" [")[0] == file else source


# Up to this many videos of a split without instances are a warning each; more are one warning for the split
# (ActivityNet's testing split is thousands of unlabelled videos: a line each buried every other problem).
_UNLABELLED_EACH = 3


def _unlabelled_problems(aset: AnnotationSet, split: str, video_ids: list[str], annotations_path: Path,
                         training: bool) -> list[Problem]:
    """The videos of `split` without an instance: a warning each, or one for the split past _UNLABELLED_EACH."""
    unlabelled = [v for v in video_ids if not aset.segments[v]]
    # training crops are anchored on gestures (`mgrec.data.datasets.draw_training_crops`): say what that means
    why = (": training draws no crop from it (crops are anchored on gestures; background is learnt around the "
           "gestures of the other videos)") if training and len(unlabelled) < len(video_ids) else ""
    if len(unlabelled) <= _UNLABELLED_EACH:
        return [Problem("warning", aset.videos[v].source, f"video has no annotated instances{why}", v)
                for v in unlabelled]
    return [Problem("warning", str(annotations_path),
                    f"{part_of(len(unlabelled), len(video_ids), 'video')} of split {split!r} "
                    f"{'has' if len(unlabelled) == 1 else 'have'} no annotated instances "
                    f"(first: {', '.join(unlabelled[:3])}){why}")]


# ---------------------------------------------------------------------------------------------
# Video files (end to end)


def _video_file_problems(info: VideoInfo, config: Config) -> tuple[list[Problem], int | None]:
    """End to end: problems with one video file of data.videos (missing, unreadable, another fps, shorter
    than one window, cut short after a header that declares every frame, a length that disagrees with the
    annotations' duration), and its number of feature steps."""
    try:
        from mgrec.data.datasets import video_clips  # here: it imports torch, which `score --gt` needs not

        clips = video_clips(config, info.video_id, info.fps)
        # Training decodes clips on the fly: a file cut short would otherwise fail only when a crop reaches
        # its end, epochs in. Its first and last frames are decoded now (two short seeks).
        clips.check_readable()
    except InputError as exc:
        return [_problem_from_error(exc, config.data.videos, info.video_id)], None
    # its frames scaled up more than MAX_UPSCALE (`check_frame_size`): said here, where training logs it, once
    warned = [Problem("warning", str(clips.path), warning.removeprefix(f"{clips.path}: "), info.video_id)
              for warning in clips.warnings]
    grid = config.data.grid(info.fps)
    expected = _expected_steps(info, grid)
    drift = _drift_past_allowed(grid, clips.length, expected)
    if drift is not None:
        return warned + [Problem("error", str(clips.path),
                        f"{clips.frame_count} frames ({clips.length} clips) but the video lasts {info.duration:.1f} "
                        f"s in the annotations ({expected} clips expected at fps {grid.fps:g}); off by {drift:+.1f} "
                        "s: another video, or a wrong duration?", info.video_id)], clips.length
    return warned, clips.length


# ---------------------------------------------------------------------------------------------
# Feature files, one input stream at a time


def _stream_problems(stream: StreamConfig, is_grid: bool, aset: AnnotationSet, splits: list[str], data: DataConfig,
                     listed: set[str], video_steps: dict[str, int], values: _FileValues | None) -> list[Problem]:
    """Every file of one input stream against its own recipe and its video's duration, its folder's mixed
    recipes, missing sidecars and orphans (`listed`: every video with an entry, refused or not); the grid stream's
    lengths go into `video_steps` (the videos' lengths on the model's grid), and what its files say of the settings
    into `values`, when given."""
    problems: list[Problem] = []
    key = stream_key(data, stream)
    features_dir = Path(stream.features)
    if not features_dir.is_dir():
        problem = missing_folder_problem(features_dir, "features folder")
        here = read_from_here_note(features_dir)[2:-1] if problem == "no such folder" else ""
        return [Problem("error", str(features_dir),
                        f"{problem} (config {key}.features{'; ' + here if here else ''})")]
    without_sidecar: list[str] = []
    recipes: dict[tuple, str] = {}  # values of RECIPE_FIELDS -> the first file made so
    names = _FolderNames(features_dir)
    readable: list[SplitFile] = []  # each video's file that reads as features, in split order (train first)
    for split in splits:
        for video_id in aset.video_ids(split):
            found, steps = _feature_file_problems(aset.videos[video_id], stream, key, is_grid, without_sidecar,
                                                  recipes=recipes, names=names, values=values)
            problems += found
            if steps is not None:
                # inspected with expected_dim: its width is the stream's
                readable.append(SplitFile(video_id, split, stream_path(stream, video_id), (steps, stream.feature_dim)))
                if is_grid:
                    video_steps[video_id] = steps
    problems += repeated_video_problems(readable, data.train_split)
    problems += _file_name_problems(stream, [video_id for split in splits for video_id in aset.video_ids(split)])
    if len(recipes) > 1:  # same shape, other meaning: a model trained on a mix learns from both as one
        (first, first_file), (other, other_file) = list(recipes.items())[:2]
        problems.append(Problem(
            "error", str(features_dir),
            f"the feature files were made with {len(recipes)} different recipes: {first_file} with backbone "
            f"{first[0]!r}, weights sha256 {first[1]}, frames per window {first[2]}; {other_file} with "
            f"{other[0]!r}, {other[1]}, {other[2]}; extract every video with one recipe",
        ))
    if without_sidecar:
        problems.append(Problem(
            "warning", str(features_dir),
            f"{len(without_sidecar)} feature file(s) have no sidecar .json, so their fps/stride/window could "
            f"not be checked against the config (first: {without_sidecar[0]})",
        ))
    # A video whose entry was refused still has its entry: its features are not orphans.
    problems += _orphan_problems(features_dir, stream, listed)
    return problems


def _feature_file_problems(info: VideoInfo, stream: StreamConfig, key: str, is_grid: bool,
                           without_sidecar: list[str], recipes: dict[tuple, str], names: _FolderNames,
                           values: _FileValues | None) -> tuple[list[Problem], int | None]:
    """Problems with one video's feature file and sidecar of one stream (`key`: its config key, `data` or
    `data.streams[i]`; `is_grid`: the grid stream, whose rate is the video's), and its number of feature steps.
    `recipes` collects each recipe seen (backbone, weights sha256, frames per window) with the first file made so;
    `names`: the stream folder's names, to say what a missing file is there as; `values`: the file's width and its
    sidecar's fps, when given."""
    video_id = info.video_id
    try:
        path = stream_path(stream, video_id)
    except InputError as exc:  # an id whose file name, with the prefix and ending, is past what a file name may be
        return [_problem_from_error(exc, stream.features, video_id)], None
    if not path.is_file():
        return [_missing_feature_problem(path, video_id, stream, key, names)], None
    problems = []
    try:
        steps, _ = inspect_features(path, stream.feature_dim, "data.feature_dim" if key == "data"
                                    else f"{key}.feature_dim, stream {stream.name!r}")
        dim = stream.feature_dim
    except InputError as exc:
        problems.append(_problem_from_error(exc, path, video_id))
        steps, dim = None, _declared_dim(path, stream.feature_dim)
    if values is not None and dim is not None:
        values.dims.append(dim)
    meta = sidecar_path(path)
    sidecar_fps = None
    if meta.is_file():
        try:
            sidecar = read_sidecar(meta)
            sidecar_fps = sidecar.fps
            if values is not None:
                values.fps.append((info, sidecar.fps))
            recipes.setdefault(tuple(getattr(sidecar, name) for name in RECIPE_FIELDS), str(path))
            # The grid stream is the video's clock: its sidecar must agree with the video's fps. Another
            # stream may have its own rate (an IMU at 50 Hz beside a 30 fps video).
            check_fps = stream.grid(info.fps).fps if is_grid or stream.fps is not None else None
            fps_from = None if stream.fps is not None else f"in the annotations ({info.source or video_id})"
            check_sidecar(sidecar, stream.stride, stream.window, stream.feature_dim, check_fps, source=meta,
                          key_prefix=f"{key}.", fps_from=fps_from)
            if steps is not None:
                check_sidecar_length(path, steps, sidecar)
                problems += _sidecar_frames_problems(sidecar, meta, path, steps, info, video_id)
        except InputError as exc:
            problems.append(_problem_from_error(exc, meta, video_id))
    else:
        without_sidecar.append(str(path))
    # training places the grid stream at the video's fps (`DataConfig.grid`), another stream at its sidecar's
    grid = stream.grid(stream.fps or (None if is_grid else sidecar_fps) or info.fps)
    if steps is not None:
        # the video's length in this stream's own frames (another stream may run at its own rate)
        expected = _expected_steps(info, grid)
        drift = _drift_past_allowed(grid, steps, expected)
        if drift is not None:
            covered = grid.covered_seconds(steps)
            # its length as the expected count was made from it: by frame count where the entry has one (a duration
            # that disagrees with it is an error of its own), so that the two figures of the line agree
            lasts = f"{info.duration:.1f} s" if info.num_frames is None else \
                f"{info.num_frames} frames ({info.num_frames / info.fps:.1f} s at {info.fps:g} fps)"
            problems.append(Problem(
                "error", str(path),
                f"{steps} feature steps cover {covered:.1f} s but the video lasts {lasts} "
                f"({expected} steps expected at fps {grid.fps:g}, stride {stream.stride}, window {stream.window}"
                + (f" of stream {stream.name!r}" if key != "data" else "") + "); "
                f"off by {drift:+.1f} s: wrong fps or stride, or an incomplete extraction?",
                video_id,
            ))
    return problems, steps


class _FolderNames:
    """A features folder's file names, listed once when first asked, by what a missing `<id>.npy` may be there as:
    under a prefix (what follows each `_` or `-` of a name), with a suffix (what precedes them, with the name's
    ending), spelt alike, in a subfolder, or as the video itself. ActionFormer's ActivityNet features are named
    `v_<id>.npy` (its dataset.file_prefix), OpenTAD's may carry a suffix (`<id>_i3d.npy`, its LoadFeats suffix), and
    a missing `<id>.npy` beside one is said so, with the setting that reads them (data.feature_prefix) or the
    renaming."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.prefixed: dict[str, str] | None = None  # "<id>.npy" -> "v_<id>.npy"; None until listed
        self.suffixed: dict[str, str] = {}  # "<id>.npy" -> "<id>_i3d.npy"
        self.alike: dict[str, str] = {}  # `file_name_key` -> a name with it
        self.videos: dict[str, str] = {}  # "<id>_color" -> "<id>_color.mp4": the files with a video's ending, by stem
        self.subfolders: list[str] = []

    def with_prefix(self, name: str) -> str | None:
        """A file of the folder named `name` with more before it (`v_<id>.npy` for `<id>.npy`)."""
        self._list()
        return self.prefixed.get(name)

    def with_suffix(self, name: str) -> str | None:
        """A file of the folder named `name` with more before its ending (`<id>_i3d.npy` for `<id>.npy`)."""
        self._list()
        return self.suffixed.get(name)

    def spelt_otherwise(self, name: str) -> str | None:
        """A file of the folder whose name differs from `name` only as two names that look the same do
        (`file_name_key`: Unicode normalisation, case: a file copied from macOS keeps its name's NFD; whitespace at the
        ends of the stem: a video id `clip ` of the annotations, file `clip .npy`, beside `clip.npy`)."""
        self._list()
        other = self.alike.get(file_name_key(name))
        return other if other != name else None

    def in_a_subfolder(self, name: str) -> Path | None:
        """A file `name` in a subfolder of the folder (`DEMO/features/x.npy` for `DEMO/x.npy`), or None."""
        self._list()

        def holds_it(child: Path) -> bool:
            try:  # is_file raises for a subfolder this user cannot enter (lost+found)
                return (child / name).is_file()
            except OSError:
                return False

        return next((self.folder / child / name for child in self.subfolders if holds_it(self.folder / child)), None)

    def video_of(self, video_id: str) -> str | None:
        """A video file of the folder named as `data.videos` reads the video of `video_id` (`find_video`)."""
        self._list()
        return self.videos.get(video_id) or next(
            (name for stem, name in self.videos.items() if names_video(stem, video_id)), None)

    def _list(self) -> None:
        if self.prefixed is None:
            self.prefixed = {}
            for entry in sorted(os.scandir(self.folder), key=lambda e: e.name) if self.folder.is_dir() else []:
                if is_hidden(entry.name):
                    continue
                stem, ending = os.path.splitext(entry.name)
                for cut in (i for i, c in enumerate(stem) if c in "_-" and 0 < i < len(stem) - 1):
                    self.prefixed.setdefault(entry.name[cut + 1:], entry.name)
                    self.suffixed.setdefault(stem[:cut] + ending, entry.name)
                self.alike.setdefault(file_name_key(entry.name), entry.name)
                if ending.lower() in VIDEO_SUFFIXES and entry.is_file():
                    self.videos.setdefault(stem, entry.name)
                if _is_folder(entry):
                    self.subfolders.append(entry.name)


def _is_folder(entry: os.DirEntry) -> bool:
    try:  # as Path.is_dir: a link to a folder is one, an entry that cannot be read is none
        return entry.is_dir()
    except OSError:
        return False


def _missing_feature_problem(path: Path, video_id: str, stream: StreamConfig, key: str, names: _FolderNames
                             ) -> Problem:
    """The error of a video's feature file `path` that is not a file, with what to do: where a name the folder holds
    (`names`), another ending, a subfolder or the video itself says what went wrong, how to read the files so."""
    what = f"stream {stream.name!r}'s feature file" if key != "data" else "feature file"
    if os.path.lexists(path):  # a link to a file gone (a drive not mounted), a link loop, a pipe: not missing
        return Problem("error", str(path), f"{what} cannot be read: {missing_file_problem(path, 'feature file')} "
                                           "(restore it, or extract features for this video)", video_id)
    prefixed = names.with_prefix(path.name)
    other_ending = next((path.with_suffix(ext) for ext in FEATURE_EXTENSIONS
                         if ext != path.suffix.lower() and path.with_suffix(ext).is_file()), None)
    spelt = names.spelt_otherwise(path.name)
    suffixed = names.with_suffix(path.name)
    alike = None  # the remedy said alike of every video whose file is named so, for grouping
    if spelt:
        remedy = spelt_alike_remedy(path, spelt)
    elif prefixed:
        remedy = (f"{prefixed} is there: set {key}.feature_prefix: {prefixed[: -len(path.name)]!r} to read files "
                  f"named <prefix><video_id>{path.suffix}")
        alike = remedy.replace(prefixed, f"{prefixed[: -len(path.name)]}<video_id>{path.suffix}", 1)
    elif other_ending is not None:  # `.npz` files under the default data.feature_ext
        remedy = f"{other_ending.name} is there: set {key}.feature_ext: {other_ending.suffix}"
        alike = remedy.replace(other_ending.name, f"<video_id>{other_ending.suffix}", 1)
    elif suffixed:
        extra = suffixed[len(path.stem):-len(path.suffix)]
        remedy = (f"{suffixed} is there: mgrec reads <prefix><video_id>{path.suffix}, nothing between the id and "
                  f"the ending; rename the files without {extra!r} (in bash: for f in *{extra}{path.suffix}; do mv "
                  f'"$f" "${{f%{extra}{path.suffix}}}{path.suffix}"; done)')
        alike = remedy.replace(suffixed, f"<video_id>{extra}{path.suffix}", 1)
    elif (below := names.in_a_subfolder(path.name)) is not None:  # the data set's root given for its features folder
        remedy = f"the subfolder {below.parent} holds it: set {key}.features: {below.parent}"
    elif video := _the_video_itself(names, path, video_id):  # the videos' folder given for the features
        remedy = (f"{video}, the video itself, is there: {key}.features is the folder of its feature files; "
                  f"make them with mgrec extract {shell_word(path.parent)} --out FEATURES and set "
                  f"{key}.features: FEATURES")
    else:
        remedy = "extract features for this video"
    return Problem("error", str(path), f"{what} missing ({remedy})", video_id,
                   alike=alike and f"{what} missing ({alike})")


def _the_video_itself(names: _FolderNames, path: Path, video_id: str) -> str | None:
    """The name of the video of `video_id` in the folder where its feature file `path` was looked for (`clip.mp4` or
    `clip_color.mp4` beside no `clip.npy`: the videos' folder given as the features'), or None."""
    return next(filter(None, (names.video_of(stem) for stem in dict.fromkeys((path.stem, video_id)))), None)


def _declared_dim(path: Path, expected: int) -> int | None:
    """The width (C of (T, C)) a feature file that failed its check declares in its header, for the suggestions;
    None where the header cannot be read or is not (T, C) (a transposed file's first axis is `expected`)."""
    try:
        shape = feature_file_shape(path)
    except InputError:
        return None
    return shape[1] if len(shape) == 2 and shape[0] != expected else None


def _sidecar_frames_problems(sidecar: FeatureSidecar, meta: Path, path: Path, steps: int, info: VideoInfo,
                             video_id: str) -> list[Problem]:
    """A sidecar's `frames` (the video's frame count) against the steps its file holds, within `allowed_drift`
    (ActionFormer-style features may pad a window or two), and against the frames the annotations give at the same
    fps, within MAX_DRIFT_SECONDS: `detect --format smg` writes frames by it, so a wrong one placed rows past the
    video's end unsaid."""
    if sidecar.frames is None:
        return []
    own = FeatureGrid(fps=sidecar.fps, stride=sidecar.stride, window=sidecar.window)
    problems = []
    windows = own.num_windows(sidecar.frames)
    off = _drift_past_allowed(own, steps, windows)
    if off is not None:
        problems.append(Problem("error", str(meta), f"frames {sidecar.frames} make {windows} "
                                f"windows (stride {sidecar.stride}, window {sidecar.window}), but {path.name} holds "
                                f"{steps} (off by {off:+.1f} s): the sidecar of another video, or a wrong frame count?",
                                video_id))
    if info.num_frames is not None and abs(sidecar.fps - info.fps) <= FPS_TOLERANCE and \
            abs(sidecar.frames - info.num_frames) / info.fps > MAX_DRIFT_SECONDS:
        problems.append(Problem("error", str(meta), f"frames {sidecar.frames}, but {info.source} gives the video "
                                f"{info.num_frames} frames: the sidecar of another video, or a wrong frame count?",
                                video_id))
    return problems


class SplitFile(NamedTuple):
    """A video's feature file of one stream, with the split the video is in and the file's (T, C)."""
    video_id: str
    split: str
    path: Path
    shape: tuple[int, int]


def repeated_video_problems(files: list[SplitFile], train_split: str) -> list[Problem]:
    """Two videos whose feature files are one file (a link, two ids that lead to one file) or hold the same features
    (a copy under another id): one video twice. In two splits, an error: the model is scored on a video it trained
    on, or selected its checkpoint and threshold on (an optimistic score nothing else reveals); tied to the video of
    the earlier split (`files` lists train, val, test in order), so data.drop_bad_videos leaves the copy out of
    training and keeps the held-out split whole. In one split, a warning: the video counts twice. Only files of
    one shape are compared (`repeated_feature_files`)."""
    problems = []
    for repeat in repeated_feature_files([f.path for f in files], {i: f.shape for i, f in enumerate(files)}):
        first, then = files[repeat.first], files[repeat.then]
        both = (f"{first.video_id} (split {first.split}) and {then.video_id} (split {then.split}) {repeat.how} "
                f"({first.path}, {then.path})")
        if first.split != then.split:
            problems.append(Problem("error", str(first.path), f"{both}: a video in two splits scores the model on "
                                    f"what it {'trained' if first.split == train_split else 'was selected'} on; remove "
                                    "one of them from the annotations", first.video_id))
        else:
            counted_twice = "is trained on twice (twice its weight)" if first.split == train_split else \
                f"counts twice in the {first.split} scores"
            problems.append(Problem("warning", str(then.path), f"{both}: the video {counted_twice}; remove one of "
                                    "them from the annotations", then.video_id))
    return problems


# What the printing groups the problems of ids that fold alike by (`Problem.alike`): each message names its two ids,
# so 500 such pairs were 500 lines of 400 characters; now the first, with the count and the first few of the others.
_ALIKE_IDS = "ids one name elsewhere"
_ALIKE_FILES = "feature files one name elsewhere"


# What every writer of per-video files does with two ids that fold alike (`mgrec.files.check_output_names`): said
# by data check and data convert, so that a user learns it before training, not at the first detect after it.
_WRITERS_REFUSE = ("mgrec extract (feature files), detect and stream --format smg (label folders) and subtitles refuse "
                   "the two")


def video_id_name_problems(aset: AnnotationSet, video_ids: list[str]) -> list[Problem]:
    """Warnings of `video_ids` whose names the writers of per-video files (`mgrec.files.check_output_names`) refuse
    side by side (`alike_video_ids`: `Sample0001` and `sample0001`, `café` in NFC and NFD) or warn of (a name
    Windows cannot hold, `windows_name_problem`: the label folder is named as the id itself), at each one's entry:
    for the ids without feature files to say them by (`_file_name_problems`): end to end, and `mgrec data convert`."""
    problems = [Problem("warning", aset.videos[video].source, f"videos {two_alike_names(other, video)} are "
                        f"{ONE_NAME_ELSEWHERE}: their files (videos, features, label folders) copied there, one "
                        f"replaces the other, and {_WRITERS_REFUSE}; rename one of the videos (its entry and its "
                        "files)", video, alike=_ALIKE_IDS)
                for video, other in alike_video_ids(video_ids)]
    for video in video_ids:
        problem = windows_name_problem(video)
        if problem:
            problems.append(Problem("warning", aset.videos[video].source, f"{problem}: the files mgrec names after the "
                                    "video (its --format smg label folder, its features) cannot be copied to Windows "
                                    "nor to a FAT or exFAT disk; rename the video to share them", video))
    return problems


def _file_name_problems(stream: StreamConfig, video_ids: list[str]) -> list[Problem]:
    """The videos' feature files whose names are one file where case and Unicode normalisation are not told apart, or
    that Windows cannot hold: the rule mgrec's writers follow (`mgrec.files.check_output_names`, which refuses the
    first and warns of the second), said before training. Two such files here (Linux) are read right, a warning: the
    folder copied to macOS, Windows or an exFAT disk loses one, and every per-video writer refuses the two ids
    (`_WRITERS_REFUSE`). Where they are one file here (this file system does not tell them apart), one video is read
    with the other's features, an error. A video whose file is missing is said by its own check (and a folder without
    any of them is not listed again)."""
    outputs = []
    for video_id in video_ids:
        with contextlib.suppress(InputError):  # a name too long for a file: its own check says so
            if (path := stream_path(stream, video_id)).is_file():
                outputs.append((video_id, path))
    problems = []
    for (video, path), (other, other_path) in alike_output_names(outputs):
        names = two_alike_names(other_path.name, path.name)
        if other is None:  # a file of the folder that is no video's (unlisted): copied, one replaces the other
            problems.append(Problem("warning", str(other_path), f"{names} are {ONE_NAME_ELSEWHERE}: copied there, one "
                                    f"replaces the other ({path.name} holds the features of video {brief(video)}); "
                                    "rename or remove it", video, alike=f"a file alike: {_ALIKE_FILES}"))
            continue
        both = f"videos {two_alike_names(other, video)} have the feature files {names}, {ONE_NAME_ELSEWHERE}"
        if os.path.samefile(path, other_path):
            problems.append(Problem("error", str(path), f"{both}, as this file system is: one file here, so one of "
                                    "the videos is read with the other's features; rename one of the videos (its "
                                    "entry and its feature files)", video, alike=f"one file here: {_ALIKE_FILES}"))
        else:
            problems.append(Problem("warning", str(path), f"{both}: copied there, one replaces the other, and "
                                    f"{_WRITERS_REFUSE}; rename one of the videos (its entry and its feature files)",
                                    video, alike=_ALIKE_FILES))
    for video, path in outputs:
        problem = windows_name_problem(path.name)
        if problem:
            problems.append(Problem("warning", str(path), f"{problem}: the feature file cannot be copied to Windows "
                                    "nor to a FAT or exFAT disk; rename the video to share its files", video))
    return problems


def _orphan_problems(features_dir: Path, stream: StreamConfig, listed: set[str]) -> list[Problem]:
    """Feature files of videos the annotations do not list (`listed`: every video id with an entry); hidden names
    are never features (`is_hidden`: macOS's `._<id>.npy` beside every copied file)."""
    suffix = feature_ending(stream.feature_ext)
    problems = []
    for path in sorted(features_dir.iterdir()):
        video_id = without_prefix(path.stem, stream.feature_prefix)
        if path.suffix == suffix and not is_hidden(path) and path.is_file() and video_id not in listed:
            # its video id, so that the printing groups them: a folder of `v_<id>.npy` read without
            # data.feature_prefix was a line per file besides the one of each missing `<id>.npy`
            problems.append(Problem("warning", str(path), "feature file has no entry in the annotations (not used)",
                                    video_id))
    return problems


# ---------------------------------------------------------------------------------------------
# A video's length against its features' or clips'


# Features and annotations may disagree by up to this much before the time axis is suspect, or by two
# steps where two steps last longer (`allowed_drift`).
MAX_DRIFT_SECONDS = 1.0


def allowed_drift(grid: FeatureGrid) -> float:
    """How far, in seconds, a feature file's length may stray from its video's before the time axis is suspect:
    MAX_DRIFT_SECONDS, or two steps where that is longer. Extractors pad a partial last window or two (ActionFormer's
    ActivityNet features keep ceil(frames / 16) at 15 fps, one more 1.07-s step than complete windows)."""
    return max(MAX_DRIFT_SECONDS, 2 * grid.seconds_per_step())


def _drift_past_allowed(grid: FeatureGrid, steps: int, expected: int) -> float | None:
    """How far, in seconds, `steps` feature steps stray from the `expected` on `grid`, where that is past
    `allowed_drift`; None within it."""
    drift = (steps - expected) * grid.seconds_per_step()
    return drift if abs(drift) > allowed_drift(grid) else None


def _expected_steps(info: VideoInfo, grid: FeatureGrid) -> int:
    """How many steps of `grid` the video's length makes (its frame count, else its duration): what its features
    should hold, and, on the model's grid, its length where they cannot be read."""
    return grid.num_windows(_video_frames(info, grid.fps))


def _video_frames(info: VideoInfo, fps: float) -> int:
    """The video's length in frames at `fps`: its frame count where the entry gives one (counted at the entry's
    own fps: 400 frames at 20 fps are 200 at a data.fps of 10), else its duration."""
    if info.num_frames is not None:
        if abs(fps - info.fps) <= FPS_TOLERANCE:
            return info.num_frames
        return int(round(info.num_frames / info.fps * fps))
    clock = FeatureGrid(fps=fps, stride=1, window=1)
    # A duration past MAX_FRAME frames is corruption (reported as drift); capped, it stays a count of frames.
    return clock.seconds_to_frame(min(info.duration, clock.frame_to_seconds(MAX_FRAME)))


# ---------------------------------------------------------------------------------------------
# Suggested settings


@dataclass
class _FileValues:
    """What the feature files and sidecars of the one stream say of its settings (for the suggestions)."""
    dims: list[int] = field(default_factory=list)  # each file's width, where its header reads
    fps: list[tuple[VideoInfo, float]] = field(default_factory=list)  # each readable sidecar's fps, with its video


def _file_suggestions(values: _FileValues, data: DataConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data settings the files say, where the config's differ (each then an error on every video, one line in
    the report): data.feature_dim where every file has one other width; data.fps where sidecars disagree with a
    set one: null (each video's own rate) where every sidecar gives its video's fps in the annotations, else their
    one fps. None where the files disagree among themselves: no one setting fixes those. With the statistics."""
    suggestions: dict[str, Any] = {}
    statistics: dict[str, Any] = {}
    dims = sorted(set(values.dims))
    if len(dims) == 1 and dims[0] != data.feature_dim:
        suggestions["data.feature_dim"] = dims[0]
        every = "the one file" if len(values.dims) == 1 else f"all {len(values.dims)} files"
        statistics["feature files' dimension"] = f"{dims[0]} ({every})"
    rates = [fps for _, fps in values.fps]
    if data.fps is None or not any(abs(fps - data.fps) > FPS_TOLERANCE for fps in rates):
        return suggestions, statistics
    own = all(info.fps_given and abs(fps - info.fps) <= FPS_TOLERANCE for info, fps in values.fps)
    if own:
        suggestions["data.fps"] = None
    elif max(rates) - min(rates) <= FPS_TOLERANCE:
        suggestions["data.fps"] = rates[0]
    shown = ", ".join(f"{fps:g}" for fps in sorted(set(rates))[:5]) + ", ..." * (len(set(rates)) > 5)
    statistics["sidecars' fps"] = (f"{shown} ({len(rates)} sidecars" + ", each its video's fps in the annotations"
                                   * own + f"; data.fps is {data.fps:g})")
    return suggestions, statistics


def _length_suggestions(train: AnnotationSet, config: Config, video_steps: dict[str, int]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings `suggest_settings` gives for the training split's lengths that differ from the config's, and the
    statistics they come from."""
    data = config.data
    suggestions, statistics = suggest_settings(
        [video_steps.get(v, _expected_steps(info, data.grid(info.fps))) for v, info in train.videos.items()],
        [_instance_steps(s, train.videos[s.video_id], config) for segs in train.segments.values() for s in segs],
    )
    # only what differs from the config: the shipped demo config was told to set what it sets
    current = {"data.max_seq_len": data.max_seq_len, "model.num_levels": config.model.num_levels,
               "model.regression_ranges": [list(r) for r in config.model.regression_ranges]}
    return {key: value for key, value in suggestions.items() if value != current[key]}, statistics


def _instance_steps(segment: Segment, info: VideoInfo, config: Config) -> float:
    return segment.duration / config.data.grid(info.fps).seconds_per_step()


# ActionFormer's crop length: longer crops cost memory for little gain.
MAX_SEQ_LEN_CAP = 2304
# The suggested crop holds this percentile of training videos whole.
SEQ_LEN_PERCENTILE = 90
# The longest instances that the top pyramid level is sized for (percentile of lengths).
LONG_INSTANCE_PERCENTILE = 99
# The pyramid depths the suggestion chooses among.
MIN_LEVELS, MAX_LEVELS = 2, 8
# Where the top level's regression range ends (ActionFormer's: open in practice).
TOP_RANGE_END = 10000


def suggest_settings(video_steps: list[int], instance_steps: list[float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Suggest pyramid depth, regression ranges and crop length from training-set lengths.

    Lengths are in feature steps. Regression ranges follow ActionFormer's pattern, in level-0
    steps: level 0 [0, 4], level l [2**(l+1), 2**(l+2)], top level [2**L, TOP_RANGE_END]. A point at
    an instance's centre regresses half its length, so an instance of n steps trains the level
    whose range holds n/2. The number of levels L is chosen so the long instances (the
    LONG_INSTANCE_PERCENTILE length) land in the top level: L = floor(log2(n_long / 2)), within
    MIN_LEVELS..MAX_LEVELS. The crop length max_seq_len is the SEQ_LEN_PERCENTILE video length
    rounded up to a multiple of max(32, top stride 2**(L-1)), capped at MAX_SEQ_LEN_CAP (rounded
    down to that multiple): most videos fit whole and memory stays bounded.

    Returns (suggestions keyed by config override, the statistics they come from).
    """
    long_instance = float(np.percentile(instance_steps, LONG_INSTANCE_PERCENTILE)) if instance_steps else 0.0
    levels = MIN_LEVELS
    if long_instance >= 2:
        levels = min(MAX_LEVELS, max(MIN_LEVELS, math.floor(math.log2(long_instance / 2))))
    ranges = [[0, 4]] + [[2 ** (level + 1), 2 ** (level + 2)] for level in range(1, levels - 1)]
    ranges.append([2**levels, TOP_RANGE_END])

    quantum = max(32, 2 ** (levels - 1))
    typical_video = float(np.percentile(video_steps, SEQ_LEN_PERCENTILE))
    cap = MAX_SEQ_LEN_CAP // quantum * quantum
    max_seq_len = max(quantum, min(cap, math.ceil(typical_video / quantum) * quantum))

    per_level = [0] * levels
    for steps in instance_steps:
        per_level[_level_of(steps / 2, ranges)] += 1

    suggestions = {"data.max_seq_len": max_seq_len, "model.num_levels": levels, "model.regression_ranges": ranges}
    statistics = {
        "training videos": len(video_steps),
        f"video length p{SEQ_LEN_PERCENTILE} (steps)": round(typical_video, 1),
        "video length max (steps)": int(max(video_steps)),
        "training instances": len(instance_steps),
        "instance length p50 (steps)": round(float(np.median(instance_steps)), 2) if instance_steps else None,
        f"instance length p{LONG_INSTANCE_PERCENTILE} (steps)": round(long_instance, 2),
        "instances per level (by half-length)": per_level,
    }
    return suggestions, statistics


def _level_of(half_length: float, ranges: list[list[int]]) -> int:
    """The level whose regression range holds a centre point's target; the top range is open."""
    for level, (_, high) in enumerate(ranges[:-1]):
        if half_length < high:
            return level
    return len(ranges) - 1
