"""The run directory: what `mgrec train` writes and every other command reads, in one place.

    RUN/
      run.json                  format version of the directory (absent in runs of format 1)
      config.yaml               the resolved config the run was trained with
      classes.json              class names in label-id order
      feature_recipe.json       how the training features were made (a feature sidecar), if known
      feature_recipe_<stream>.json  the same for each other input stream of a multi-stream run
      postprocess.json          post-processing with the score threshold tuned on val (written last:
                                a run with it is finished)
      metrics.jsonl             one JSON object per line: train and val records per epoch
      pseudo_labels.json        the pseudo-labels the run trained on, if any (`mgrec.train.pseudo`)
      second_opinion.safetensors  the whole-gesture classifier, when postprocess.second_opinion > 0
      checkpoints/best.safetensors, last.safetensors   weights (and EMA weights under `ema.`)
      checkpoints/last_state.pt everything `--resume` needs, in one file
      .lock                     held while a command writes the run
      teacher/, student<N>/     the runs that made the pseudo-labels (runs themselves)
      members/<i>/              an ensemble's member runs (run.json says `ensemble`)
      tensorboard/              TensorBoard's logs, when it is installed
      eval_<split>.json, detections_<split>.json         outputs of `mgrec evaluate` (checkpoint best;
      eval_<split>_last.json, detections_<split>_last.json  those of --checkpoint last)
      report_<split>.html       output of `mgrec report` (report_<split>_last.html: of --checkpoint last)
      analysis/                 figures and tables of `mgrec analyze` (<split>_*; <split>_last_* of --checkpoint last)
      features_<checkpoint>/    an end-to-end run's features, made with that checkpoint's adapters

The files from run.json to .lock are the run itself (`RunDir.run_files`): only training writes them.
The outputs may be rewritten by `evaluate`, `report` and `analyze`.
A training starts afresh only in a folder holding no committed training, finished run, ensemble or outputs
(`RunDir.check_fresh_start`); a folder is deleted only by `remove_run_dir`, and only when it is a run or empty.

Every writer is atomic (`mgrec.files`); every reader validates what it reads and turns any
problem into an `InputError` naming the file. Nothing here executes code on load: YAML through
`yaml.safe_load`, safetensors for weights, JSON for metadata, `torch.load(weights_only=True)` for
the optimiser state.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from mgrec.config import (
    Config,
    PostprocessConfig,
    canonical_subset,
    check_same_splits,
    check_same_threshold_rule,
    class_thresholds_problem,
    config_from_record,
    load_config,
    missing_keys,
    network_settings_changed,
    postprocess_setting_problem,
    save_config,
    split_name,
    to_dict,
)
from mgrec.errors import InputError, where
from mgrec.files import (
    append_text,
    atomic_write,
    atomic_write_text,
    brief,
    cannot_write,
    check_writable,
    counted,
    decode_utf8,
    is_hidden,
    is_number,
    listed,
    missing_file_problem,
    not_utf8_part,
    parse_json,
    path_argument,
    read_json,
    refuse_a_dangling_link_among,
    remove_dead_writers_temporaries,
    resolve_path,
    shell_word,
    text_lines,
)
from mgrec.records import class_names_problem, recorded_name_problem

# 1: the first layout (no run.json). 2: run.json; model parameters renamed (see
# `mgrec.model.detector.upgrade_state_dict`, which reads weights of format 1). 3: config.yaml has the
# balance and transforms sections and is read back whole (`read_config` refuses a key missing).
# 4: config.yaml has the pseudo_labels section. 5: and data.streams, data.grid_stream, model.fusion, model.stream_dims.
# 6: end-to-end training (below). 7: config.yaml has train.ema_warmup. 8: and train.select_checkpoint,
# postprocess.shifted_passes. 9: and data.normalize. 10: and train.compile. 11: and postprocess.second_opinion
# (with it above 0, the run holds second_opinion.safetensors). 12: and postprocess.thresholds,
# threshold_shrinkage, class_thresholds (postprocess.json may hold class_thresholds). 13: and data.feature_prefix.
# 14: splits.json, the video ids trained and validated on (no new config key).
# 15: config.yaml has train.final_lr_fraction. 16: and postprocess.voting.
# A new config key needs a new format here and its entry below, or every older run would be refused as
# damaged (`tests/test_run.py` checks the key sets recorded per format).
RUN_FORMAT_VERSION = 16
# Config keys (or whole sections) a run format added: a run of an older format lacks them, and their
# defaults apply. 5: several input streams (`data.streams`, `model.fusion`). 6: end-to-end training
# (`data.videos`, `backbone`; such a run's weights hold `detector.*` and `encoder.adapters.*`).
# 7: the weights' average warm-up exponent (`train.ema_warmup`; its default 9 is what older runs used).
# 8: which epoch a run keeps (`train.select_checkpoint`; older runs kept the best validated one) and
# the shifted detection passes (`postprocess.shifted_passes`; older runs made one). 9: per-video
# standardisation of the features (`data.normalize`; older runs read them as they are: "none").
# 10: the compiled training network (`train.compile`; older runs trained eagerly: false). 11: the whole-gesture
# classifier's weight (`postprocess.second_opinion`; older runs had none: 0). 12: a score threshold per class
# (`postprocess.thresholds`, `threshold_shrinkage`, `class_thresholds`; older runs had one: global, null).
# 13: a prefix of the feature file names (`data.feature_prefix`, and each stream's; older runs had none: "").
# 15: where the learning rate's cosine ends (`train.final_lr_fraction`; older runs decayed to 0). 16: boundary
# voting after NMS (`postprocess.voting`; older runs had none: 0).
CONFIG_KEYS_ADDED = {4: ("pseudo_labels",), 5: ("data.streams", "data.grid_stream", "model.fusion",
                                                 "model.stream_dims"), 6: ("data.videos", "backbone"),
                     7: ("train.ema_warmup",), 8: ("train.select_checkpoint", "postprocess.shifted_passes"),
                     9: ("data.normalize",), 10: ("train.compile",),
                     11: ("postprocess.second_opinion",),
                     12: ("postprocess.thresholds", "postprocess.threshold_shrinkage", "postprocess.class_thresholds"),
                     13: ("data.feature_prefix",), 15: ("train.final_lr_fraction",),
                     16: ("postprocess.voting",)}
CHECKPOINT_NAMES = ("best", "last")
# The names of the outputs `evaluate` and `report` write into a run (`RunDir.output_files`)
OUTPUT_PATTERNS = ("eval_*.json", "detections_*.json", "online_*.json", "report_*.html")
# How `mgrec ensemble` joins its members: their per-point outputs averaged (one network layout, weights
# under `members.<m>.`), or their detections fused (`mgrec.postprocess.detection_fusion`; members kept whole in
# members/<m>/, each with its own network and inputs).
ENSEMBLE_FUSIONS = ("outputs", "detections")
# What mgrec writes into a run directory besides `run_files` and `output_files`: TensorBoard logs, the figures
# of `analyze`, the features `evaluate` makes for an end-to-end run, the members of a detection ensemble, the
# teacher and students of pseudo-labelling, and the temporary files of the atomic writers and their probes.
_RUN_ENTRY = re.compile(r"checkpoints|tensorboard|analysis|features_(best|last)|members|teacher|student\d+"
                        r"|\..+\.tmp|\.mgrec-write-check\..+")


# The lock file of a features folder while an extraction writes it (`lock_features_folder`). Hidden, so that no
# reader of feature folders takes it for a video's features (`files.is_hidden`; it is no .npy either).
FEATURES_LOCK = ".mgrec-extract.lock"
# The rows of a video done so far, beside its features while it is extracted (`.<id>.partial.npy` and its sidecar
# `.<id>.partial.json`: `mgrec.extract.outputs.PartialFeatures`); hidden likewise. A killed extraction leaves them.
PARTIAL_FEATURES = ".{}.partial.npy"

# What mgrec writes inside the folders it makes in a run (beside the temporary files of its writers).
_INSIDE_RUN = {
    "checkpoints": re.compile(r"(last|best)\.safetensors|last_state\.pt"),
    "tensorboard": re.compile(r"events\.out\.tfevents\..+"),
    "analysis": re.compile(r"[^.][^/]*_[^/]+\.(png|svg|json)"),
    # a killed extraction leaves its lock file, and the rows of the video it was extracting
    "features": re.compile(r"[^.][^/]*\.(npy|json)|\.[^/]+\.partial\.(npy|json)|" + re.escape(FEATURES_LOCK)),
}
_TEMPORARY = re.compile(r"\..+\.tmp|\.mgrec-write-check\..+")


def _foreign_inside(folder: Path) -> list[str]:
    """The names inside one of the folders mgrec makes in a run that it does not write there."""
    if folder.name == "teacher" or folder.name.startswith("student"):  # a run of its own
        return RunDir(folder).foreign_entries()
    if folder.name == "members":  # members/<m>: runs of their own
        foreign = []
        for member in sorted(folder.iterdir()):
            if member.name.isdigit() and member.is_dir() and not member.is_symlink():
                foreign += [f"{member.name}/{name}" for name in RunDir(member).foreign_entries()]
            else:
                foreign.append(member.name)
        return foreign
    pattern = _INSIDE_RUN.get("features" if folder.name.startswith("features_") else folder.name)
    return sorted(entry.name for entry in folder.iterdir()
                  if pattern is None or not entry.is_file()
                  or not (pattern.fullmatch(entry.name) or _TEMPORARY.fullmatch(entry.name)))


# The values training logs in metrics.jsonl, each a finite number or null (a non-finite number is logged as
# null); the report plots them, a string or an object among them was a traceback or a wrong curve.
METRICS_NUMBERS = ("step", "lr", "seconds", "loss", "cls_loss", "reg_loss", "f1", "precision", "recall", "f1_miga",
                   "average_mAP", "score_threshold")
METRICS_NUMBER_LISTS = ("class_weights", "crop_shares", "class_thresholds")
# Their ranges, where training's values have one: val scores are fractions (the MiGA rule's F1 may pass 1), losses,
# steps, seconds, the learning rate and the class weights are never negative, crop shares are fractions. An F1 of
# 1e308 or -3 (a hand edit, another tool's log) was plotted as the run's val curve without a word.
METRICS_FRACTIONS = ("f1", "precision", "recall", "average_mAP", "crop_shares")
METRICS_NON_NEGATIVE = ("step", "lr", "seconds", "loss", "cls_loss", "reg_loss", "f1_miga", "class_weights")


def metrics_record_problem(record: dict) -> str | None:
    """"[key]: expected ..." for the first logged value of `record` that is not what training writes, else None."""
    def finite_or_null(value) -> bool:
        return value is None or (is_number(value) and math.isfinite(value))

    def in_range(key: str, value) -> bool:
        high = 1.0 if key in METRICS_FRACTIONS else math.inf
        low = 0.0 if key in METRICS_FRACTIONS or key in METRICS_NON_NEGATIVE else -math.inf
        return value is None or low <= value <= high

    def words(key: str) -> str:  # of a key with a range (only such a key's value can be out of it)
        return "in [0, 1]" if key in METRICS_FRACTIONS else ">= 0"

    for key in METRICS_NUMBERS:
        if key in record and not finite_or_null(record[key]):
            return f"[{key}]: expected a finite number or null, got {brief(record[key])}"
        if key in record and not in_range(key, record[key]):
            return f"[{key}]: expected a finite number {words(key)} or null, got {brief(record[key])}"
    for key in METRICS_NUMBER_LISTS:
        value = record.get(key)
        if key in record and value is not None and not (isinstance(value, list) and all(map(finite_or_null, value))):
            return f"[{key}]: expected a list of finite numbers or nulls (one per class), got {brief(value)}"
        if key in record and value is not None and not all(in_range(key, v) for v in value):
            return (f"[{key}]: expected a list of finite numbers {words(key)} or nulls (one per class), got "
                    f"{brief(value)}")
    return None


def weights_metadata_problem(meta: dict) -> str | None:
    """"[key]: expected ..." for the first value of a weights file's `mgrec` metadata that is not what its writers
    record (`mgrec.train.loop.checkpoint_record`, an ensemble's `ensemble_of`, the second opinion's `kind`), else None.
    Each key may be absent (each writer records its own), none of another kind: `"epoch": "9"`, `9.0` or NaN, or
    `"config": "x"`, skipped the checks of `RunDir.check_weights_match` (weights of another epoch, or trained with
    other network settings, used at this run's tuned threshold) without a word. A best checkpoint's val metrics are
    those training logs in metrics.jsonl, checked by the same rule."""
    epoch = meta.get("epoch", 0)
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0):
        return f"[epoch]: expected the epoch the weights are of (an integer >= 0), got {brief(epoch)}"
    if "config" in meta and not isinstance(meta["config"], dict):
        return f"[config]: expected the config the weights were trained with (an object), got {brief(meta['config'])}"
    epochs = meta.get("config", {}).get("train", {})
    epochs = epochs.get("epochs") if isinstance(epochs, dict) else None
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epoch >= epochs:  # epochs count from 0
        return f"[epoch]: expected an epoch below the {epochs} its config's train.epochs trains, got {epoch}"
    threshold = meta.get("score_threshold", 0.0)  # tuned on val as postprocess.json's is: a probability
    if not (is_number(threshold) and 0 <= threshold <= 1):
        return f"[score_threshold]: expected the val threshold (a number in [0, 1]), got {brief(threshold)}"
    version = meta.get("run_format", 1)
    if not (isinstance(version, int) and not isinstance(version, bool) and version >= 1):
        return f"[run_format]: expected a positive integer (the run-format version), got {brief(version)}"
    sources = meta.get("ensemble_of", [])
    if not (isinstance(sources, list) and all(isinstance(source, str) for source in sources)):
        return f"[ensemble_of]: expected a list of the member runs' paths, got {brief(sources)}"
    if not isinstance(meta.get("kind", ""), str):
        return f"[kind]: expected a name (a string), got {brief(meta['kind'])}"
    return metrics_record_problem(meta)


def open_lock_file(path: Path, owner: str = "the run's", folder: str = "the run directory"):
    """A run's `.lock` (or the lock file of `owner`, in `folder`: `lock_features_folder`'s), opened for writing the
    holder's pid without following a link: a `.lock` that links to another file (the config being trained) had that
    file truncated and overwritten before anything was said."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        if path.is_symlink() or exc.errno == errno.ELOOP:
            raise InputError(f"{path}: is a symbolic link, where {owner} lock file goes; remove it") from None
        what = "it is a file, not a folder" if path.parent.is_file() else (exc.strerror or str(exc))
        raise InputError(f"cannot write {folder} {path.parent}: {what}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or a device: nothing to write a pid into
        os.close(fd)
        raise InputError(f"{path}: is not a regular file, where {owner} lock file goes; remove it")
    return os.fdopen(fd, "a+", encoding="utf-8")


def present(path: Path) -> bool:
    """Whether a file a run reads is there: False where nothing is at its name; an InputError where something is but
    cannot be read as a file (a folder, a symbolic link loop or to nothing, a named pipe). `exists()` and `is_file()`
    are False for each of those, and the readers took such a file for absent: a `splits.json` link loop scored the
    test split without the check of the videos the run trained on (exit 0), a folder at `config.yaml` was "not
    found", a link loop at `postprocess.json` "a training that did not finish", to be resumed."""
    if not (path.is_symlink() or path.exists()):
        return False
    if not path.is_file():
        raise InputError(f"{path}: {missing_file_problem(path)}; mgrec reads it as a file of the run (restore the "
                         "run's file, or copy the run again)")
    return True


class RunDir:
    """File names, validated readers and atomic writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- names ----------------------------------------------------------------------------

    @property
    def format_path(self) -> Path:
        return self.path / "run.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def classes_path(self) -> Path:
        return self.path / "classes.json"

    @property
    def recipe_path(self) -> Path:
        """How the (grid stream's) training features were made: a feature sidecar."""
        return self.path / "feature_recipe.json"

    def stream_recipe_path(self, stream: str | None) -> Path:
        """The recipe of input stream `stream` of a multi-stream run (None: the grid stream's, `recipe_path`).
        Stream names are plain (`config.STREAM_NAME`), so the name is safe in a file name."""
        return self.recipe_path if stream is None else self.path / f"feature_recipe_{stream}.json"

    @property
    def splits_path(self) -> Path:
        """The videos the run trained and validated on, by id, as its annotations split them then (format 14)."""
        return self.path / "splits.json"

    @property
    def pseudo_labels_path(self) -> Path:
        """The pseudo-labels the run trained on (`mgrec.train.pseudo`), when it trained on any."""
        return self.path / "pseudo_labels.json"

    @property
    def postprocess_path(self) -> Path:
        return self.path / "postprocess.json"

    @property
    def second_opinion_path(self) -> Path:
        """The whole-gesture classifier of `postprocess.second_opinion` (`mgrec.postprocess.second_opinion`)."""
        return self.path / "second_opinion.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def state_path(self) -> Path:
        return self.checkpoints_dir / "last_state.pt"

    def weights_path(self, checkpoint: str) -> Path:
        _checkpoint_suffix(checkpoint)  # validates the name
        return self.checkpoints_dir / f"{checkpoint}.safetensors"

    def eval_path(self, split: str, checkpoint: str = "best") -> Path:
        """Scores of `split`; a checkpoint other than the selected one gets its own file, so that
        evaluating `last` never replaces the scores of `best`."""
        return self.path / f"eval_{split_name(split)}{_checkpoint_suffix(checkpoint)}.json"

    def detections_path(self, split: str, checkpoint: str = "best") -> Path:
        return self.path / f"detections_{split_name(split)}{_checkpoint_suffix(checkpoint)}.json"

    def online_eval_path(self, split: str, checkpoint: str = "best") -> Path:
        """Scores of `split` streamed (`mgrec evaluate --online`)."""
        return self.path / f"online_{split_name(split)}{_checkpoint_suffix(checkpoint)}.json"

    def report_path(self, split: str, checkpoint: str = "best") -> Path:
        return self.path / f"report_{split_name(split)}{_checkpoint_suffix(checkpoint)}.html"

    def run_files(self) -> list[Path]:
        """The files that make the run (written by training only; no other command may replace them)."""
        return [self.format_path, self.config_path, self.classes_path, self.recipe_path, self.postprocess_path,
                self.pseudo_labels_path, self.splits_path, self.metrics_path, self.state_path, self.lock_path,
                self.second_opinion_path, *(self.weights_path(name) for name in CHECKPOINT_NAMES),
                *sorted(self.path.glob("feature_recipe_*.json"))]

    def output_files(self) -> list[Path]:
        """The outputs of `evaluate` and `report` now in the run (only those commands rewrite them)."""
        return sorted(p for pattern in OUTPUT_PATTERNS for p in self.path.glob(pattern))

    def is_output_name(self, path: Path) -> bool:
        """Whether `path` (resolved) is where `evaluate` or `report` writes one of the run's outputs, written yet or
        not (`output_files` holds those there now)."""
        return path.parent == self.path and any(fnmatch.fnmatchcase(path.name, pattern) for pattern in OUTPUT_PATTERNS)

    def data_files(self) -> list[Path]:
        """The data outside the run that it was trained on and that its commands read again: its annotations file, as
        its config records it (a relative path is read from the working directory, as every command reads it).
        `detect RUN F --out annotations.json` wrote its detections over the ground truth the run scores against."""
        try:  # the raw file: a guard of outputs must not fail on a run that `read_config` would refuse
            raw = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return []
        data = raw.get("data") if isinstance(raw, dict) else None
        annotations = data.get("annotations") if isinstance(data, dict) else None
        files = [Path(annotations)] if isinstance(annotations, str) and annotations else []
        # and the file it named where the run was trained (`splits.json`'s annotations_resolved): a relative path,
        # read from another folder, names another file, and the ground truth was replaced from there
        try:
            record = self.read_splits()
        except InputError:
            record = None
        resolved = (record or {}).get("annotations_resolved")
        return files + ([Path(resolved)] if isinstance(resolved, str) and resolved else [])

    def owned_files(self) -> list[Path]:
        """Every file of the run a command other than training, evaluate and report must leave alone, and the data
        it was trained on (`data_files`: the ground truth belongs to the run as much as its scores of it do)."""
        return self.run_files() + self.output_files() + self.data_files()

    def detector_fingerprint(self) -> str:
        """A short hash of what a detector made from this run is (sizes and modification times of the files it
        reads: config, classes, recipes, the tuned thresholds, the best weights; a detection ensemble's members'
        too): it changes when the run is trained again, re-tuned or replaced. An interrupted `mgrec stream
        --format smg` records it, so that the run finishing the set is the run that began it."""
        digest = hashlib.sha1()
        for path in self._detector_files():
            status = path.stat()
            digest.update(f"{path.relative_to(self.path)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]

    def _detector_files(self) -> list[Path]:
        """The files of `detector_fingerprint`: the run's own but the training's log, state, lock and last weights,
        and those of a detection ensemble's members."""
        skipped = {self.lock_path, self.metrics_path, self.state_path, self.weights_path("last")}
        files = [path for path in self.run_files() if path not in skipped and path.is_file()]
        members = self.path / "members"
        for member in sorted(members.iterdir()) if members.is_dir() else ():
            files += RunDir(member)._detector_files()
        return files

    @property
    def analysis_dir(self) -> Path:
        return self.path / "analysis"

    def analysis_files(self, split: str) -> list[Path]:
        """What `analyze` of `split` finds already written in `analysis_dir` (its files start `<split>_`)."""
        if not self.analysis_dir.is_dir() or self.analysis_dir.is_symlink():
            return []
        return sorted(p for p in self.analysis_dir.iterdir() if p.name.startswith(f"{split}_"))

    def check_outputs(self, files: Iterable[Path] = (), folders: Iterable[Path] = (),
                      advice: str = "copy the run to a folder you may write and run the command there") -> None:
        """Before any work: the outputs a command writes into the run at names of mgrec's own (`eval_*`,
        `detections_*`, `report_*`, `analysis/`) must be absent or plain files and folders. A symbolic link there
        would carry the write out of the run onto whatever it names (the run's config, the annotations the
        command reads); a folder where a file goes, or a file where the folder goes, would fail after the work.
        And they must be writable: a read-only run (`chmod -R a-w`, another user's, a read-only mount) was found
        so only when the results were written, after the work (`evaluate --online` of the demo: 50 s). `advice`:
        the way out a command offers besides `copy the run` (`report --out`)."""
        files, folders = list(files), list(folders)
        for path, kind in [*((f, "file") for f in files), *((f, "folder") for f in folders)]:
            if path.is_symlink():
                raise InputError(f"{path}: is a symbolic link (to {brief(os.readlink(path))}) where mgrec writes its "
                                 f"own output {kind}, which would replace what the link names; remove the link")
            if path.exists() and not (path.is_file() if kind == "file" else path.is_dir()):
                raise InputError(f"{path}: is not a {kind}, where mgrec writes its own output {kind}; move it away")
        for path, kind in [*((f, "file") for f in files), *((f, "folder") for f in folders)]:
            try:
                check_writable(path, is_dir=kind == "folder")
            except InputError as exc:
                raise InputError(f"{exc} (this command writes its results into the run {self.path}); "
                                 f"{advice}") from None

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    # --- state ----------------------------------------------------------------------------
    # A training's commit point is `last_state.pt` (model, EMA, optimiser, epoch: one atomic file):
    # `last.safetensors` and `best.safetensors` are written before it in each epoch, so after a kill
    # anywhere the state file names the last epoch that is complete, and `--resume` replays from
    # there. Without a state file nothing is resumable, and a fresh start may write over the rest.

    def has_training(self) -> bool:
        """Whether a training has committed an epoch here (a fresh start would destroy it)."""
        return self.state_path.exists()

    def can_resume(self) -> bool:
        return self.state_path.exists()

    def require_finished(self, checkpoint: str = "best") -> None:
        """Refuse a folder that is not a finished run (before anything is loaded from it)."""
        if not self.path.is_dir():
            what = "a file, not a folder" if self.path.exists() else "no such folder"
            raise InputError(f"{self.path}: not a run directory ({what})")
        self.refuse_unfinished()
        ensemble = self.read_ensemble()
        if ensemble is not None and checkpoint != "best":  # its members' selected checkpoints, made into one run
            raise InputError(f"{self.path} is an ensemble of its members' selected (best) checkpoints; --checkpoint "
                             f"{checkpoint} does not apply")
        fused = ensemble is not None and ensemble.get("fusion") == "detections"
        # a detection-level ensemble holds no weights of its own: its members, whole, in members/<m>/
        weights = [] if fused else [self.weights_path(checkpoint)]
        for path in (self.config_path, self.classes_path, *weights):
            if not path.exists():
                raise InputError(f"{self.path} is not a finished mgrec run: {path.relative_to(self.path)} is missing")
        for index in range(ensemble["members"] if fused else 0):
            RunDir(self.member_path(index)).require_finished("best")

    def refuse_unfinished(self) -> None:
        """Refuse a run that a training or an ensemble is still writing (its lock is held), or one that stopped
        before its end: until postprocess.json, their last write, is there, its best weights are of some epoch
        and its score threshold the config's, and whatever is detected or scored with it is not the run's. Before
        that, a run whose path is not UTF-8 text (`refuse_a_run_path_not_utf8`)."""
        refuse_a_run_path_not_utf8(self.path)
        for path in self.run_files():  # before any of them is taken for absent (`present`); the lock is read below
            if path != self.lock_path:
                present(path)
        if self.lock_path.is_file() and not self.lock_path.is_symlink():  # a link is no lock mgrec took
            try:
                handle = open(self.lock_path, encoding="utf-8")
            except OSError:  # a lock file this user cannot read: nothing to learn from it
                handle = None
            if handle is not None:
                with handle:  # a shared lock: loaders never refuse each other, only a writer's exclusive one
                    _lock_or_refuse(handle, str(self.path), advice="wait for it to finish", shared=True)
        if self.postprocess_path.exists():
            return
        if self.has_training():
            raise InputError(f"{self.path} is a training that did not finish (no {self.postprocess_path.name}, which "
                             f"its last epoch writes): finish it with mgrec train {shell_word(self.config_path)} --out "
                             f"{shell_word(self.path)} --resume")
        if self.read_ensemble() is not None:
            raise InputError(f"{self.path} is an ensemble that did not finish (stopped while tuning its score "
                             f"threshold on val: no {self.postprocess_path.name}); make it again into a new --out")
        self.refuse_a_half_copied_ensemble()

    def refuse_a_half_copied_ensemble(self) -> None:
        """A detection-level ensemble killed while copying its members: members/ and no run.json (written last)."""
        if not self.format_path.exists() and self.member_path(0).parent.is_dir():
            raise InputError(f"{self.path} is an ensemble that did not finish (stopped while copying its members "
                             f"into {self.member_path(0).parent.name}/: no {self.format_path.name}); make it again "
                             "into a new --out")

    def check_fresh_start(self, inputs: list[Path]) -> None:
        """Refuse a fresh training in a folder whose files are not an earlier start of a run, or that
        would overwrite a file the training reads (its config, its annotations)."""
        if self.has_training():
            raise InputError(f"{self.path} already holds a run; pass --resume to continue it (resume=True in "
                             "Python) or choose another --out")
        refuse_a_stranger_among_members(self.path)
        refuse_a_folder_of_runs(self.path)
        own = {resolve_path(path) for path in self.run_files()}
        for path in inputs:
            if resolve_path(path) in own:
                raise InputError(f"{path} is one of the files training writes into {self.path}; "
                                 "choose another --out (training never overwrites its own inputs)")
        if not self.format_path.exists():
            foreign = [p for p in self.run_files() if p.exists() and p != self.lock_path]
            if foreign:
                raise InputError(f"{foreign[0]} was not written by mgrec train (no run.json beside it); "
                                 "choose another --out, training would overwrite it")
        else:
            try:  # a run.json of mgrec's, not a file of the same name (a video called "run"'s sidecar)
                self.read_format_version()
            except InputError as exc:
                raise InputError(f"{self.format_path} is not an mgrec run's ({exc}); choose another --out, "
                                 "training would overwrite it") from None
        held = self.results_held()
        if held is not None:
            raise InputError(f"{self.path} already holds {held}")
        if self.postprocess_path.exists():  # a finished run without its state file: copied, or an ensemble's member
            raise InputError(f"{self.path} already holds a finished run ({self.postprocess_path.name}, written when a "
                             "training ends), which cannot be resumed without its checkpoints/last_state.pt; a new "
                             "training would replace its weights: choose another --out")

    def results_held(self) -> str | None:
        """What this folder holds besides an earlier start of a training that a training must not write over
        (an ensemble, whole or being made, and what `evaluate` and `report` made of a model), with what to do
        instead; None when it holds nothing of the kind. An ensemble has no `last_state.pt`: `has_training`
        alone took it for an empty folder, and a training replaced its weights beside its scores."""
        ensemble = self.read_ensemble()
        if ensemble is not None:
            return (f"an ensemble of {ensemble['members']} run(s) made by mgrec ensemble, which training would "
                    "replace and which cannot be resumed; choose another --out")
        if self.member_path(0).parent.exists():  # copied before run.json is written: a killed ensemble
            return ("members/ of an mgrec ensemble that did not finish; choose another --out, or delete the folder "
                    "and make the ensemble again")
        outputs = self.output_files()
        if outputs:
            more = f" and {len(outputs) - 1} more" if len(outputs) > 1 else ""
            return (f"{outputs[0].name}{more}, results of mgrec evaluate or report of a model that a new training "
                    "would replace; choose another --out")
        return None

    def foreign_entries(self) -> list[str]:
        """The names in the folder, and in the folders mgrec makes inside it, that mgrec never writes into a run
        directory, sorted (relative to the run): `--fresh` deletes none of a user's files, also not
        `analysis/notes.md`. A teacher's, a student's and an ensemble member's folders are runs themselves."""
        own = {path.name for path in self.run_files() + self.output_files() if path.parent == self.path}
        foreign = []
        for entry in self.path.iterdir():
            if entry.name in own:
                continue
            if not _RUN_ENTRY.fullmatch(entry.name):
                foreign.append(entry.name)
            elif entry.is_dir() and not entry.is_symlink():
                foreign += [f"{entry.name}/{name}" for name in _foreign_inside(entry)]
        return sorted(foreign)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for one process (a training): a second one refuses instead of interleaving
        checkpoints and metrics. The OS releases the lock when the process dies, so a killed run
        leaves no stale lock; the file only says who holds it."""
        created = not self.path.exists()
        refuse_a_dangling_link_among([self.path, *self.path.parents], f"the run directory {self.path}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            what = "it is a file, not a folder" if self.path.is_file() else (exc.strerror or str(exc))
            raise InputError(f"cannot write the run directory {self.path}: {what}") from None
        lock_created = not self.lock_path.exists()
        handle = open_lock_file(self.lock_path)
        held = False  # a process refused the lock leaves the file alone: its holder may not have written anything yet
        try:
            _lock_or_refuse(handle, str(self.path))
            held = True
            _write_holder(handle, self.lock_path)
            yield
        finally:
            handle.close()
            # A run that stopped before writing anything (bad data, bad config) leaves no folder behind, and a
            # folder of the user's own that was refused keeps no lock file of ours.
            if held and created and [p.name for p in self.path.iterdir()] == [self.lock_path.name]:
                self.lock_path.unlink()
                self.path.rmdir()
            elif held and lock_created and not self.format_path.exists():
                self.lock_path.unlink(missing_ok=True)

    def remove_temporary_files(self) -> None:
        """Half-written files of killed writers (never read; `mgrec.files` names them `.NAME.<pid>.*.tmp`); those of
        writers still at work (an `evaluate`, a `report` of this run) stay."""
        for folder in (self.path, self.checkpoints_dir):
            if folder.is_dir():
                remove_dead_writers_temporaries(folder)

    def remove_an_earlier_start(self) -> None:
        """Before a fresh start writes its files: those of an earlier start that never checkpointed
        (`check_fresh_start` let it be written over), run.json and the lock aside. A file the new start does not
        write stayed as its own: the recipe of the earlier start's features (its own have no sidecar), a
        second-opinion classifier, a pseudo-label record, and the earlier start's metrics log and weights."""
        for path in self.run_files():
            if path not in (self.format_path, self.lock_path) and (path.is_file() or path.is_symlink()):
                path.unlink()

    # --- readers --------------------------------------------------------------------------

    def read_format_version(self) -> int:
        if not self.format_path.exists():
            return 1
        raw = read_json(self.format_path, "run format")
        version = raw.get("format") if isinstance(raw, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(f"{self.format_path} [format]: expected a positive integer (the run-format version)")
        if version > RUN_FORMAT_VERSION:
            raise InputError(
                f"{self.path} has run format {version}; this mgrec reads formats up to "
                f"{RUN_FORMAT_VERSION}: upgrade mgrec to use this run"
            )
        return version

    def read_ensemble(self) -> dict | None:
        """run.json's `ensemble` block of a run made by `mgrec ensemble` ({"members": M, "sources": [...]}:
        its weights hold M detectors under `members.<m>.`), or None for a trained run."""
        if not self.format_path.exists():
            return None
        raw = read_json(self.format_path, "run format")
        block = raw.get("ensemble") if isinstance(raw, dict) else None
        if block is None:
            return None
        members = block.get("members") if isinstance(block, dict) else None
        if not isinstance(members, int) or isinstance(members, bool) or members < 1:
            raise InputError(f"{self.format_path} [ensemble.members]: expected a positive integer (the number of "
                             "detectors in the ensemble)")
        if block.get("fusion", "outputs") not in ENSEMBLE_FUSIONS:
            raise InputError(f"{self.format_path} [ensemble.fusion]: expected one of {', '.join(ENSEMBLE_FUSIONS)}")
        sources = block.get("sources", [])  # the report lists them: 5 or null was a TypeError, "ab" listed as a, b
        if not (isinstance(sources, list) and all(isinstance(source, str) for source in sources)):
            raise InputError(f"{self.format_path} [ensemble.sources]: expected a list of the member runs' paths (as "
                             f"mgrec ensemble writes it), got {brief(sources)}")
        pseudo = block.get("pseudo_labelled", [])  # ensembles made before it was recorded: none
        if not (isinstance(pseudo, list) and all(
                isinstance(m, dict) and isinstance(m.get("member"), str) and isinstance(m.get("unlabeled"), str)
                and isinstance(m.get("transductive"), bool) for m in pseudo)):
            raise InputError(f"{self.format_path} [ensemble.pseudo_labelled]: expected a list of "
                             "{member, unlabeled, transductive} records (as mgrec ensemble writes it)")
        recorded = block.get("member_configs")  # ensembles made before it was recorded: none
        if recorded is not None and not (isinstance(recorded, list) and recorded
                                         and all(isinstance(config, dict) for config in recorded)):
            raise InputError(f"{self.format_path} [ensemble.member_configs]: expected a list of configs, one per "
                             f"member (as mgrec ensemble writes them), got {brief(recorded)}")
        if block.get("fusion") == "detections":  # each member a run of its own in members/<m>: all of them used
            if "sources" in block and len(sources) != members:
                raise InputError(f"{self.format_path} [ensemble.members]: {members}, but [ensemble.sources] lists "
                                 f"{len(sources)} run(s); make the ensemble again")
            folder = self.member_path(0).parent
            found = sorted(p.name for p in folder.iterdir() if not is_hidden(p, folder)) if folder.is_dir() else []
            if found != sorted(str(m) for m in range(members)):
                raise InputError(f"{self.format_path} [ensemble.members]: {members}, but {folder} holds "
                                 f"{', '.join(map(brief, found)) or 'nothing'} (expected the members 0 to "
                                 f"{members - 1}); make the ensemble again")
        return block

    def fuses_detections(self) -> bool:
        """Whether the run is a detection-level ensemble (`mgrec ensemble --fusion detections`): it holds its members,
        whole, in members/<m>/, and no network of its own."""
        ensemble = self.read_ensemble()
        return ensemble is not None and ensemble.get("fusion") == "detections"

    def member_path(self, index: int) -> Path:
        """Member `index` of a detection-level ensemble: a run directory of its own inside this one."""
        return self.path / "members" / str(index)

    def read_config(self) -> Config:
        if not present(self.config_path):
            self.refuse_a_half_copied_ensemble()  # killed before its config: said as such
            raise InputError(f"{self.config_path}: not found; expected the run's config (written by mgrec train)")
        config = load_config(self.config_path)
        version = self.read_format_version()
        if version >= 3:  # written whole by `write_config`: a missing key is damage
            later = [key for v, keys in CONFIG_KEYS_ADDED.items() if v > version for key in keys]
            missing = [key for key in missing_keys(yaml.safe_load(self.config_path.read_text(encoding="utf-8")))
                       if not any(key == k or key.startswith(k + ".") for k in later)]
            if missing:
                shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
                raise InputError(f"{self.config_path}: {len(missing)} key(s) missing ({shown}); training writes "
                                 "every key, so the file is damaged (truncated?): restore it from a copy")
        return config

    def read_classes(self, expected_count: int | None = None) -> list[str]:
        classes = read_json(self.classes_path, "class list")
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
            raise InputError(f"{self.classes_path}: expected a non-empty JSON list of class names")
        # the rule of every class list read from a file (the annotations'): an empty, blank or 30000-character name,
        # or two spellings of one name, was refused only by the detector built from it, as `classes[0]: ...`,
        # naming no file
        problem = class_names_problem(classes)
        if problem is not None:
            raise InputError(f"{self.classes_path} [{problem[0]}]: {problem[1]}")
        if expected_count is not None and len(classes) != expected_count:
            raise InputError(
                f"{self.classes_path}: {len(classes)} class names, but the run's config.yaml has "
                f"model.num_classes={expected_count}"
            )
        return classes

    def read_postprocess(self, config: Config) -> PostprocessConfig:
        """The config's post-processing with the score threshold tuned on val (when training tuned one), and the
        per-class thresholds tuned with it (`postprocess.thresholds: per_class`; a run of format 11 or older
        has none)."""
        tuned = self.read_tuning()
        if tuned is None:
            return config.postprocess
        per_class = tuned.get("class_thresholds", config.postprocess.class_thresholds)
        problem = class_thresholds_problem(per_class, config.model.num_classes)
        if problem is not None:
            raise InputError(f"{self.postprocess_path} [class_thresholds]: expected {problem} (model.num_classes of "
                             "the run's config.yaml)")
        return replace(config.postprocess, score_threshold=tuned["score_threshold"], class_thresholds=per_class)

    def postprocess_changed_since_tuning(self, config: Config) -> list[str]:
        """The post-processing settings of the run's config.yaml that differ from those its threshold was tuned
        with (postprocess.json records them): `nms: hard` written into config.yaml after training kept the threshold
        tuned under soft NMS, without a word. Each as `postprocess.KEY is NOW in config.yaml, THEN when tuned`."""
        tuned = self.read_tuning()
        if tuned is None:
            return []
        now = to_dict(config)["postprocess"]
        kept = ("score_threshold", "class_thresholds")  # what tuning wrote, not what it was tuned with
        return [f"postprocess.{key} is {now[key]!r} in config.yaml, {tuned[key]!r} when the threshold was tuned"
                for key in now if key not in kept and key in tuned and tuned[key] != now[key]]

    def read_tuning(self) -> dict | None:
        """postprocess.json: {score_threshold, tuned_on, selected_epoch, ...}, or None when absent."""
        if not self.postprocess_path.exists():
            return None
        tuned = read_json(self.postprocess_path, "post-processing")
        threshold = tuned.get("score_threshold") if isinstance(tuned, dict) else None
        if not is_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise InputError(
                f"{self.postprocess_path} [score_threshold]: expected a number in [0, 1] (the threshold tuned on val)"
            )
        per_class = tuned.get("class_thresholds")
        problem = class_thresholds_problem(per_class)
        if problem is not None:
            raise InputError(f"{self.postprocess_path} [class_thresholds]: expected {problem}")
        # Of another kind, these were passed over without a word: `tuned_on: 5` (or a list) was read as no split, and
        # detect called the tuned threshold "from the config"; `selected_epoch: "x"` skipped the check that the best
        # weights are the epoch the threshold was tuned on, and the report printed "selected epoch x".
        tuned_on = tuned.get("tuned_on")
        if tuned_on is not None and not (isinstance(tuned_on, str) and tuned_on.strip()):
            raise InputError(f"{self.postprocess_path} [tuned_on]: expected the name of the split the threshold was "
                             f"tuned on, or null (configured, not tuned); got {brief(tuned_on)}")
        epoch = tuned.get("selected_epoch")
        if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0):
            raise InputError(f"{self.postprocess_path} [selected_epoch]: expected the epoch whose weights were "
                             f"selected (an integer >= 0), or null (an ensemble's); got {brief(epoch)}")
        # The settings it was tuned with, by the rule of a config's postprocess section: a NaN, Infinity or "0.5"
        # there was only shown in a note that config.yaml differs (the file is damaged, not the config changed).
        problem = postprocess_setting_problem(tuned)
        if problem is not None:
            raise InputError(f"{self.postprocess_path} [{problem[0]}]: expected {problem[1]}, got "
                             f"{brief(tuned[problem[0]])} (a setting the threshold was tuned with); the file is not "
                             "as mgrec wrote it (edited?)")
        return {**tuned, "score_threshold": float(threshold),
                **({} if per_class is None else {"class_thresholds": [float(t) for t in per_class]})}

    def read_weights(self, checkpoint: str = "best", use_ema: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
        """State dict of a checkpoint (its EMA copy when present and `use_ema`) and its metadata."""
        return read_weights_file(self.weights_path(checkpoint), use_ema)

    def check_weights_match(self, checkpoint: str, metadata: dict, config: Config) -> None:
        """Refuse weights that are not what the run's other files say: the network's settings in config.yaml
        (`network_settings_changed`) edited since the checkpoint was trained with them, or `best` weights of
        another epoch or threshold than postprocess.json selected (a checkpoint copied in from another run or
        epoch). Either detected silently with other inputs or other weights at the threshold tuned for these
        (test F1 72.8 -> 13.4 for `data.normalize: none` written into the demo run's config.yaml). Checkpoints
        written before they recorded their config are compared by epoch and threshold only."""
        path = self.weights_path(checkpoint)
        trained = metadata.get("config")
        if isinstance(trained, dict):
            changed = network_settings_changed(config_from_record(trained, f"{path} metadata"), config)
            if changed:
                shown = "; ".join(f"{key} is {now!r}, {then!r} when trained" for key, now, then in changed[:3])
                raise InputError(f"{self.config_path}: {shown}{'; ...' if len(changed) > 3 else ''} (the weights "
                                 f"{path} record what they were trained with): the network would read other inputs "
                                 "or compute otherwise; restore config.yaml, or train a run with these settings")
        tuning = self.read_tuning() if checkpoint == "best" else None
        if tuning is None:
            return
        epoch, selected = metadata.get("epoch"), tuning.get("selected_epoch")
        threshold = metadata.get("score_threshold")
        if isinstance(epoch, int) and isinstance(selected, int) and epoch != selected:
            found = f"the weights of epoch {epoch}, but {self.postprocess_path} selected epoch {selected}"
        elif is_number(threshold) and is_number(tuning["score_threshold"]) and threshold != tuning["score_threshold"]:
            found = (f"weights whose val threshold was {threshold:g}, but {self.postprocess_path} holds "
                     f"{tuning['score_threshold']:g}")
        else:
            return
        raise InputError(f"{path} holds {found}: the threshold was tuned on other weights (a checkpoint copied from "
                         "another run or epoch?); put the run's own checkpoint back, or train again")

    def read_training_state(self) -> dict:
        try:
            return torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
            raise InputError(
                f"training state {self.state_path} cannot be read ({exc}); delete it to restart the run"
            ) from None

    def read_metrics(self, drop_incomplete_last_line: bool = False, num_classes: int | None = None) -> list[dict]:
        """The records of metrics.jsonl, each a JSON object with `kind` and `epoch`; with `num_classes`, each of
        its per-class lists (`METRICS_NUMBER_LISTS`) one value per class of the run.

        A run killed while writing leaves an incomplete last line; `drop_incomplete_last_line`
        lets `--resume` ignore it (that epoch is trained again), any other bad line is an error.
        """
        if not self.metrics_path.exists():
            return []
        try:
            data = self.metrics_path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.metrics_path}: cannot read the metrics log ({exc.strerror or exc})") from None
        # the one JSON reader of every other file (a byte-order mark, duplicate keys, a 5000-digit number, nesting
        # deeper than Python's recursion limit): json.loads here let the last two out as raw tracebacks
        lines = text_lines(decode_utf8(self.metrics_path, data))
        records = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = parse_json(line, self.metrics_path, "metrics log", line=number)
            except InputError:
                if drop_incomplete_last_line and number == len(lines):
                    break
                raise
            epoch = record.get("epoch") if isinstance(record, dict) else None
            if (not isinstance(record, dict) or "kind" not in record or not isinstance(epoch, int)
                    or isinstance(epoch, bool) or epoch < 0):  # `true` was epoch 1, -1 a point left of the curve
                raise InputError(
                    f"{self.metrics_path}:{number}: expected a JSON object with 'kind' and an integer 'epoch' >= 0"
                )
            problem = metrics_record_problem(record)
            if problem is not None:
                raise InputError(f"{self.metrics_path}:{number} {problem}")
            # a list of another length was drawn as far as it went (the other classes' lines left empty) or cut
            key = next((key for key in METRICS_NUMBER_LISTS if num_classes is not None
                        and isinstance(record.get(key), list) and len(record[key]) != num_classes), None)
            if key is not None:
                raise InputError(f"{self.metrics_path}:{number} [{key}]: expected {num_classes} values, one per class "
                                 f"of the run ({self.classes_path.name}), got {len(record[key])} (the log of another "
                                 "run?)")
            records.append(record)
        return records

    # --- writers (training) ---------------------------------------------------------------

    def write_format(self, ensemble: dict | None = None) -> None:
        """run.json; `ensemble` ({"members": M, "sources": [...]}) for a run made by `mgrec ensemble`."""
        content = {"format": RUN_FORMAT_VERSION, **({"ensemble": ensemble} if ensemble is not None else {})}
        atomic_write_text(self.format_path, json.dumps(content, indent=1))

    def write_config(self, config: Config) -> None:
        save_config(config, self.config_path)

    def write_classes(self, classes: list[str]) -> None:
        atomic_write_text(self.classes_path, json.dumps(classes, indent=1))

    def write_splits(self, record: dict) -> None:
        """`{"annotations", "train_split", "train", "val_split", "val"}`: the split names and video ids trained
        and validated on (`read_splits` is what every later command compares the annotations with)."""
        atomic_write_text(self.splits_path, json.dumps(record, indent=1))

    def read_splits(self) -> dict | None:
        """The record `write_splits` wrote; None for a run started before format 14, which has none. An ensemble made
        by `mgrec ensemble` holds its members' records joined (each member trained on its own videos)."""
        if not self.splits_path.exists():
            ensemble = self.read_ensemble()
            if ensemble is None or ensemble.get("fusion") != "detections":
                return None
            records = [RunDir(self.member_path(m)).read_splits() for m in range(ensemble["members"])]
            return None if None in records else join_split_records(records)
        raw = read_json(self.splits_path, "splits record")
        names, lists = ("annotations", "train_split", "val_split"), ("train", "val")
        keys = ("annotations", "train_split", "train", "val_split", "val")
        # written since (runs before them have none): labels, per video the hash of its ground truth
        # (`mgrec.train.loop.labels_digests`); annotations_resolved, the full path of the annotations file trained on
        labels = raw.get("labels", {}) if isinstance(raw, dict) else None
        if not (isinstance(raw, dict) and set(raw) - {"labels", "annotations_resolved"} == set(keys)
                and all(isinstance(raw[k], str) for k in names)
                and all(isinstance(raw[k], list) and all(isinstance(v, str) for v in raw[k]) for k in lists)
                and isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())
                and isinstance(raw.get("annotations_resolved", ""), str)):
            raise InputError(f"{self.splits_path}: expected {{{', '.join(keys)}}} (the split names and video ids the "
                             "run trained and validated on, as mgrec train writes them), and optionally labels (the "
                             "hashes of their labels) and annotations_resolved (the annotations' full path)")
        return raw

    def no_splits_record(self) -> str | None:
        """Words for a run without the record of the videos it trained and validated on (`read_splits` None): a run
        started before format 14, one of `write_for_inference`, or one copied without its splits.json (the format
        cannot tell which: a run resumed since keeps the record it started with). What reads the record skipped its
        checks without a word; the caller says which check it skipped. None where the record is there (or
        unreadable: reading it says so)."""
        try:
            if self.read_splits() is not None:
                return None
        except InputError:
            return None
        return (f"{self.path} has no {self.splits_path.name} (the record of the videos it trained and validated on: "
                "a run started before mgrec wrote one, made from weights trained elsewhere, or copied without it)")

    def check_held_out(self, split: str, video_ids: Iterable[str],
                       advice: str = "score the run on videos it did not train or validate on, or train it again on "
                                     "the new splits") -> None:
        """Refuse to score `split` when any of its videos was one this run trained or validated on, by its record: the
        annotations it names were changed since (their splits redrawn: `data convert --splits` into the same file),
        and the run would be scored on its own training videos, or on those that chose its checkpoint and tuned its
        threshold, without a word. The training and validation splits themselves may be scored.
        `advice`: what to do instead (an ensemble's differs)."""
        record = self.read_splits()
        if not split or record is None:
            return
        used = (("train_split", "train", "trained on", "trained"),
                ("val_split", "val", "validated on (they chose its checkpoint and tuned its score threshold)",
                 "validated"))
        for split_key, videos_key, what, when in used:
            if not record[split_key] or split_name(split) == split_name(record[split_key]):
                continue  # a run trained without validation (val_split ""), or that split itself, asked for by name
            used_videos = set(record[videos_key])
            seen = [video for video in video_ids if video in used_videos]
            if seen:
                shown = ", ".join(brief(v) for v in seen[:3]) + (", ..." if len(seen) > 3 else "")
                members = self.member_path(0).parent
                recorded = self.splits_path if self.splits_path.exists() else members / "*" / "splits.json"
                raise InputError(f"{len(seen)} video(s) of split {split!r} are videos this run {what} ({shown}; "
                                 f"{recorded}: split {record[split_key]!r} of {record['annotations']} when it "
                                 f"{when}): the annotations' splits changed since; {advice}")

    def write_pseudo_labels(self, record: dict) -> None:
        atomic_write_text(self.pseudo_labels_path, json.dumps(record, indent=1))

    def write_recipe(self, recipe: dict, stream: str | None = None) -> None:
        atomic_write_text(self.stream_recipe_path(stream), json.dumps(recipe, indent=1))

    def write_tuning(self, tuning: dict) -> None:
        atomic_write_text(self.postprocess_path, json.dumps(tuning, indent=1))

    def write_selection(self, config: Config, score_threshold: float, class_thresholds: list[float] | None,
                        selected_epoch: int | None, tuned_on: str | None, val_scores: dict | None = None) -> None:
        """postprocess.json, the one place it is assembled: the config's post-processing with the score threshold
        (and per-class ones) detection uses, the epoch selected (None: an ensemble, weights made elsewhere), the
        split they were tuned on (None: configured) and, for an ensemble, its val scores."""
        tuning = {**to_dict(config)["postprocess"], "score_threshold": score_threshold,
                  "class_thresholds": class_thresholds, "selected_epoch": selected_epoch, "tuned_on": tuned_on}
        self.write_tuning(tuning if val_scores is None else {**tuning, "val_scores": val_scores})

    def write_weights(
        self, checkpoint: str, model: torch.nn.Module, ema: torch.nn.Module | None, metadata: dict
    ) -> None:
        write_weights_file(self.weights_path(checkpoint), model, ema, metadata)

    def write_second_opinion(self, classifier: torch.nn.Module) -> None:
        """The whole-gesture classifier of `postprocess.second_opinion` (buffers only), atomically."""
        write_weights_file(self.second_opinion_path, classifier, None, {"kind": "second_opinion"})

    def read_second_opinion(self, config: Config) -> dict[str, torch.Tensor]:
        """The state (buffers) of the run's whole-gesture classifier, for a run whose `postprocess.second_opinion` is
        above 0 (`mgrec.postprocess.second_opinion.run_classifier` makes the classifier of it)."""
        path = self.second_opinion_path
        if not path.exists():
            raise InputError(f"{path} does not exist, but the run's postprocess.second_opinion is "
                             f"{config.postprocess.second_opinion:g}: training writes it before its first epoch; the "
                             "run is incomplete (copied without it?)")
        return read_weights_file(path, use_ema=False)[0]  # a classifier has no averaged copy

    def write_training_state(self, state: dict) -> None:
        atomic_write(self.state_path, lambda temp: torch.save(state, temp))

    def append_metrics(self, record: dict) -> None:
        """One line of metrics.jsonl. Non-finite numbers are written as null (bare NaN is not JSON)."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        append_text(self.metrics_path, json.dumps(clean, allow_nan=False) + "\n")

    def keep_metrics_before(self, epoch: int) -> None:
        """Drop metrics of epochs >= `epoch` (logged by a run killed before it checkpointed them), so
        that a resumed run's log has each epoch once; an incomplete last line is dropped too."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.read_metrics(drop_incomplete_last_line=True) if r["epoch"] < epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def write_for_inference(
        self,
        config: Config,
        classes: list[str],
        model: torch.nn.Module,
        score_threshold: float | None = None,
        recipe: dict | None = None,
    ) -> None:
        """The files detection reads, for a model trained elsewhere (tests, benchmarks, imported
        weights): format, config, classes, `best` weights, and the score threshold when given."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_format()
        self.write_config(config)
        self.write_classes(classes)
        self.write_weights("best", model, None, {"epoch": 0})
        if score_threshold is not None:
            self.write_selection(config, score_threshold, config.postprocess.class_thresholds, None, None)
        if recipe is not None:
            self.write_recipe(recipe)

    # --- writers (outputs) ----------------------------------------------------------------

    def read_eval(self, split: str, classes: list[str], checkpoint: str = "best") -> dict:
        """eval_<split>.json (`write_eval`'s), checked for the keys the report shows and their kinds, its classes
        those of the run, `classes` (`_score_problem`; and its per-class thresholds, where it has them: one number in
        [0, 2] per class of the run)."""
        path = self.eval_path(split, checkpoint)
        if not present(path):
            command = (f"mgrec evaluate {shell_word(self.path)} --split {shell_word(split)}"
                       f"{checkpoint_option(checkpoint)}")
            raise InputError(f"{path}: not found; expected the run's scores: run `{command}` first (it writes them)")
        scores = read_json(path, "scores")
        missing = [key for key in _SCORE_KEYS if not isinstance(scores, dict) or key not in scores]
        if missing:
            raise InputError(f"{path}: missing key(s) {', '.join(missing)}; expected the output of mgrec evaluate")
        threshold = scores["score_threshold"]
        if not (is_number(threshold) and 0 <= threshold <= 1):
            raise InputError(f"{path} [score_threshold]: expected a number in [0, 1], got {brief(threshold)}")
        problem = _score_problem(scores, classes)
        if problem is not None:
            key, expected = problem
            raise InputError(f"{path} [{key}]: expected {expected}; the file is not as mgrec evaluate wrote it "
                             "(edited?): evaluate the run again")
        problem = class_thresholds_problem(scores.get("class_thresholds"), len(classes))
        if problem is not None:
            raise InputError(f"{path} [class_thresholds]: expected {problem}")
        _refuse_scores_of_another_file(path, scores, split, checkpoint)
        return scores

    def write_ensemble_tuning(self, config: Config, val_scores: dict | None, split: str | None) -> dict | None:
        """An ensemble's postprocess.json (it trains no epoch to select): the members' post-processing with the
        score threshold(s) of `val_scores`, the `mgrec score` dict of the ensemble on `split`, or, without them (no
        val split, no annotations at hand), the configured ones. Returns the val scores recorded (None without)."""
        post = config.postprocess
        if val_scores is None:
            self.write_selection(config, post.score_threshold, post.class_thresholds, None, None)
            return None
        metrics = {k: val_scores[k] for k in ("f1", "f1_miga", "average_mAP", "score_threshold", "class_thresholds")}
        self.write_selection(config, metrics["score_threshold"], metrics["class_thresholds"], None, split, metrics)
        return metrics

    def write_eval(self, split: str, result: dict, checkpoint: str = "best") -> Path:
        path = self.eval_path(split, checkpoint)
        atomic_write_text(path, json.dumps(result, indent=1))
        return path

    def write_online_eval(self, split: str, result: dict, checkpoint: str = "best") -> Path:
        path = self.online_eval_path(split, checkpoint)
        atomic_write_text(path, json.dumps(result, indent=1))
        return path

    def read_online_eval(self, split: str, classes: list[str], checkpoint: str = "best") -> dict | None:
        """online_<split>.json (`write_online_eval`'s), checked as `read_eval` checks its scores, with its `online`
        block's numbers; None where the run was not evaluated online."""
        path = self.online_eval_path(split, checkpoint)
        if not present(path):
            return None
        scores = read_json(path, "online scores")
        missing = [key for key in (*_SCORE_KEYS, "online") if not isinstance(scores, dict) or key not in scores]
        if missing:
            raise InputError(f"{path}: missing key(s) {', '.join(missing)}; expected the output of mgrec evaluate "
                             "--online")
        problem = _score_problem(scores, classes) or _online_problem(scores["online"])
        if problem is not None:
            key, expected = problem
            raise InputError(f"{path} [{key}]: expected {expected}; the file is not as mgrec evaluate --online wrote "
                             "it (edited?): evaluate the run online again")
        _refuse_scores_of_another_file(path, scores, split, checkpoint)
        return scores


# What the report reads from eval_<split>.json (the "Scores" contract, docs/contracts.md).
_SCORE_KEYS = (
    "num_videos", "num_ground_truth", "num_predictions", "score_threshold", "f1", "precision", "recall", "f1_miga",
    "average_mAP", "mAP", "per_class", "confusion",
)


def _refuse_scores_of_another_file(path: Path, scores: dict, split: str, checkpoint: str) -> None:
    """Scores whose record names another split or checkpoint than their file's name (eval_val.json, or
    eval_test_last.json, copied over eval_test.json): shown and compared as the test split's, or the best
    checkpoint's, without a word."""
    for key, expected, recorded in (("split", split_name(split), scores.get("split")),
                                    ("checkpoint", checkpoint, scores.get("checkpoint"))):
        if isinstance(recorded, str) and (canonical_subset(recorded) if key == "split" else recorded) != expected:
            raise InputError(f"{path} [{key}]: the scores of {key} {brief(recorded)}, in the file of {key} "
                             f"{expected!r} (another evaluation's file copied over it?): evaluate the run again")


def _is_tiou_key(key: str) -> bool:
    """Whether `key` of a scores dict's `mAP` names a tIoU threshold in (0, 1] (`tiou_key` writes them: "0.3")."""
    try:
        value = float(key)
    except ValueError:
        return False
    return 0 < value <= 1 and key == key.strip()


def _names_words(names: list[str]) -> str:
    """Class names for a message: the first five, each quoted as `brief` quotes a value."""
    return ", ".join(map(brief, names[:5])) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


# The largest count a scores file may hold: the largest integer a float (and the report page's JavaScript) holds
# exactly. A count of 10**30 edited into eval_test.json was shown by the report as that many videos.
MAX_COUNT = 2**53


def is_count(value: object) -> bool:
    """Whether `value` is a count a scores file records: an int in [0, MAX_COUNT], not a bool (JSON's true)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _online_problem(online: object) -> tuple[str, str] | None:
    """(key, what was expected) of the first value of the `online` block of online_<split>.json that the report and
    `mgrec evaluate --online` cannot show, else None: every value they print, each by its own key (a count edited
    into '<script>...' went raw into the page, a latency or count taken out was a KeyError traceback)."""
    if not isinstance(online, dict):
        return "online", "an object: the lookahead, window, updates, latency and compute of the streams"

    def seconds(value: object, allow_none: bool = False) -> bool:
        return value is None and allow_none or is_number(value) and math.isfinite(value) and value >= 0


    for key, valid, expected in (
            ("lookahead", seconds, "a number of seconds >= 0"),
            ("window_seconds", seconds, "a number of seconds >= 0"),
            ("updates", is_count, "a count"),
            ("decided_while_streaming", is_count, "a count"),
            ("decided_at_the_end", is_count, "a count")):
        if not valid(online.get(key)):
            return f"online.{key}", expected
    # a latency is null where no gesture was decided while streaming (`evaluate_online`), the mean compute never
    for block, keys, allow_none in (("latency_seconds", ("mean", "median", "p95", "max"), True),
                                    ("compute_ms_per_update", ("mean",), False)):
        figures = online.get(block)
        if not isinstance(figures, dict):
            return f"online.{block}", f"an object of {', '.join(keys)}"
        for key in keys:
            if key not in figures or not seconds(figures[key], allow_none):
                return f"online.{block}.{key}", "a number >= 0" + (" or null" if allow_none else "")
    return None


def checkpoint_option(checkpoint: str) -> str:
    """The option that names `checkpoint` in a command given as advice: none for the default, best."""
    return "" if checkpoint == "best" else f" --checkpoint {checkpoint}"


def same_scored_set(scores: dict, other: dict) -> bool:
    """Whether two scores (`eval_<split>.json`, `online_<split>.json`, ...) were counted against the same ground truth:
    the same counts, and the same `ground_truth_sha256` where both record it (files written before it, without, are
    judged by their counts)."""
    if scored_set_words(scores) != scored_set_words(other):
        return False
    digests = scores.get("ground_truth_sha256"), other.get("ground_truth_sha256")
    return None in digests or digests[0] == digests[1]


def scored_sets_words(scores: dict, other: dict, names: tuple[str, str]) -> str:
    """How two scores' sets differ (`same_scored_set` is False), in words, each named by `names`: their counts, or
    that only the ground truth behind the same counts differs."""
    words, other_words = scored_set_words(scores), scored_set_words(other)
    if words != other_words:
        return f"{names[0]}: {words}; {names[1]}: {other_words}"
    return (f"{names[0]} and {names[1]}: {words} each, but other videos or labels (their ground_truth_sha256 "
            "differ)")


def scored_set_words(scores: dict) -> str:
    """What a split's scores were counted over (`eval_<split>.json`, `online_<split>.json`), in words: two files of
    one split that differ here were scored before and after its labels or videos changed, and compare nothing."""
    return f"{counted(scores['num_videos'], 'video')}, {counted(scores['num_ground_truth'], 'ground-truth segment')}"


def _score_problem(scores: dict, classes: list[str]) -> tuple[str, str] | None:
    """(key, what was expected) of the first value of a scores dict the report cannot show, or None. Its classes must be
    the run's, `classes`, in their order: the report tables the scores' names and ids beside the run's timelines."""
    num_classes = len(classes)
    def fraction(value, high: float = 1.0) -> bool:
        return is_number(value) and 0 <= value <= high


    # the counts too: `compare` tells scored sets apart by them, and a "6" beside a 6 (or True for 1 instance) was
    # a set that differed in nothing it could name (a StopIteration traceback), None printed as "None videos"
    for key in ("num_videos", "num_ground_truth", "num_predictions"):
        if not is_count(scores[key]):
            return key, "a count"
    # how the scores were made, by name: `compare` tells evaluations apart by them (a list or an object there was a
    # TypeError traceback from its grouping) and the report prints them
    name = recorded_name_problem(scores)
    if name is not None:
        return name, "a name (a string) or null"
    for key in ("f1", "precision", "recall", "recall_miga", "average_mAP"):
        if key in scores and not fraction(scores[key]):
            return key, "a number in [0, 1]"
    for key in ("precision_miga", "f1_miga"):  # the MiGA rule's may pass 1: one prediction can find two segments
        if key in scores and not fraction(scores[key], math.inf):
            return key, "a number >= 0"
    if not (isinstance(scores["mAP"], dict) and scores["mAP"] and all(fraction(v) for v in scores["mAP"].values())):
        return "mAP", "a mapping of tIoU to numbers in [0, 1]"
    # the headline numbers are made of the others (`F1Result.from_counts`, `average_mAP` the mean over the tIoUs): a
    # headline edited by hand (or merged from another file) was shown by `report` and averaged by `compare` as the
    # run's, each number in range, beside the precision and recall that contradict it
    made = _made_headline(scores)
    if made is not None:
        return made
    for tiou in scores["mAP"]:  # each named by its tIoU (`tiou_key`): 'mAP@zz' was shown as a score of the run
        if not _is_tiou_key(tiou):
            return f"mAP.{tiou}", "a tIoU threshold in (0, 1] as the key (0.3, 0.5, ...)"
    confusion = scores["confusion"]
    labels = confusion.get("labels") if isinstance(confusion, dict) else None
    if not (isinstance(labels, list) and len(labels) == num_classes and all(isinstance(n, str) for n in labels)
            and len(set(labels)) == num_classes):
        return "confusion.labels", f"the names of the run's {counted(num_classes, 'class')}"
    if labels != classes:  # other names (renamed by hand) or the run's in another order: rows shown under other classes
        at = next(index for index, (name, ours) in enumerate(zip(labels, classes)) if name != ours)
        return "confusion.labels", (f"the run's classes in their order (its classes.json: {_names_words(classes)}); "
                                    f"got {brief(labels[at])} at [{at}], where the run has {brief(classes[at])}")
    per_class = scores["per_class"]
    if not isinstance(per_class, dict):
        return "per_class", "a mapping of each class name to its scores"
    # the class that is missing or foreign, by name: "a mapping of each class name" left the user to diff the file
    # against classes.json by hand (a class dropped, or renamed in one file and not the other)
    foreign = [name for name in per_class if name not in classes]
    if foreign:
        return f"per_class.{foreign[0]}", (f"the scores of one of the run's classes (its classes.json: "
                                           f"{_names_words(classes)}); {brief(foreign[0])} is none of them")
    absent = [name for name in classes if name not in per_class]
    if absent:
        return "per_class", (f"the scores of each of the run's classes (its classes.json: {_names_words(classes)}); "
                             f"{brief(absent[0])} has none" + (f" (nor {len(absent) - 1} more)" if len(absent) > 1
                                                                else ""))
    for name, entry in per_class.items():
        label_id = entry.get("label_id") if isinstance(entry, dict) else None
        valid = (isinstance(label_id, int) and not isinstance(label_id, bool) and 0 <= label_id < num_classes
                 and is_count(entry.get("instances"))
                 and (entry.get("ap") is None or fraction(entry.get("ap")))
                 # null where there is none (`score`): recall and F1 of a class without instances (F1 where nothing
                 # was detected as it either), precision of one without detections, whose F1 is 0 then
                 and all(fraction(entry.get(k)) or entry.get(k) is None and entry.get("instances") == 0
                         for k in ("f1", "recall"))
                 and (fraction(entry.get("precision"))
                      or entry.get("precision") is None and (entry.get("instances") == 0 or entry.get("f1") == 0)))
        if valid and label_id != classes.index(name):
            return f"per_class.{name}.label_id", f"{classes.index(name)}, the class's place in the run's classes.json"
        if not valid:
            return f"per_class.{name}", (f"label_id in [0, {num_classes}), instances (a count), ap, f1, precision and "
                                         "recall in [0, 1] (null only for a class without instances, and precision "
                                         "for one without detections)")

    def counts(row: object) -> bool:
        return isinstance(row, list) and len(row) == num_classes and all(map(is_count, row))

    matrix = confusion.get("matrix")
    if not (isinstance(matrix, list) and len(matrix) == num_classes and all(counts(row) for row in matrix)):
        return "confusion.matrix", f"{num_classes} rows of {num_classes} counts"
    if confusion.get("background") is not None and not counts(confusion["background"]):
        return "confusion.background", f"{num_classes} counts"
    if "fusion_gates" in scores:
        gates = scores["fusion_gates"]

        def gate(value: object) -> bool:
            return value is None or fraction(value)

        if not (isinstance(gates, dict) and isinstance(gates.get("per_class"), dict)
                and all(gate(v) for v in gates["per_class"].values()) and gate(gates.get("background"))
                and isinstance(gates.get("streams"), list) and all(isinstance(n, str) for n in gates["streams"])
                and is_count(gates.get("videos")) and is_count(gates.get("skipped_long_videos", 0))):
            return "fusion_gates", ("per_class and background gates in [0, 1] (or null), the names of the streams and "
                                    "counts of videos")
        # tabled by class name beside each class's F1: a name of no class was a row of its own, its F1 '–'
        unknown = [name for name in gates["per_class"] if name not in classes]
        if unknown:
            return f"fusion_gates.per_class.{unknown[0]}", "a gate of one of the run's classes (its classes.json)"
    return None


def _made_headline(scores: dict) -> tuple[str, str] | None:
    """(key, what was expected) of the first headline number of a scores dict (its values checked in range) that is
    not what its parts make: F1 of its precision and recall (strict; and by the MiGA rule, where given), average mAP
    the mean of the mAP at each tIoU. None where they agree to 1e-6, which holds the starter kit's 1e-7 guard
    against 0/0 in `F1Result.from_counts` (so the run layer needs nothing of the evaluate layer)."""
    for f1, precision, recall in (("f1", "precision", "recall"), ("f1_miga", "precision_miga", "recall_miga")):
        if not all(is_number(scores.get(key)) for key in (f1, precision, recall)):
            continue  # an older file without the MiGA rule's precision and recall
        p, r = scores[precision], scores[recall]
        made = 2 * p * r / (p + r) if p + r else 0.0
        if abs(scores[f1] - made) > 1e-6:
            return f1, (f"{made:.6g}, the F1 of its {precision} {p:.6g} and {recall} {r:.6g} (2PR / (P + R)), got "
                        f"{scores[f1]:.6g}")
    made = sum(scores["mAP"].values()) / len(scores["mAP"])
    if is_number(scores.get("average_mAP")) and abs(scores["average_mAP"] - made) > 1e-6:
        return "average_mAP", f"{made:.6g}, the mean of its mAP at each tIoU, got {scores['average_mAP']:.6g}"
    return None


def _checkpoint_suffix(checkpoint: str) -> str:
    if checkpoint not in CHECKPOINT_NAMES:
        raise InputError(f"checkpoint {checkpoint!r}: expected one of {', '.join(CHECKPOINT_NAMES)}")
    return "" if checkpoint == "best" else f"_{checkpoint}"


# --------------------------------------------------------------------------------------------
# Making and removing run directories


def pseudo_labelled_members(members: list[tuple[Path, Config]]) -> list[dict]:
    """The members of an ensemble that trained on pseudo-labels, for its run.json record (`pseudo_labelled`): the
    ensemble's config is its first member's, so without this a transductive member (trained on the test subjects'
    own videos) would go unsaid in the ensemble's report."""
    return [{"member": str(path), "unlabeled": config.pseudo_labels.unlabeled,
             "transductive": config.pseudo_labels.transductive}
            for path, config in members if config.pseudo_labels.unlabeled]


def files_of_runs_around(path: str | Path) -> list[Path]:
    """The files of every mgrec run that `path` is or lies in (a folder above it holding mgrec's run.json):
    what no command's output may replace (`mgrec.files.check_output` asks it for every output, so that
    `detect --out OTHER_RUN/postprocess.json` is refused as `--out OWN_RUN/postprocess.json` was). `path` itself
    too where it names an output `evaluate` or `report` writes into its run, not written yet: `export RUN --out
    RUN/eval_val.onnx` wrote its record to RUN/eval_val.json, which `evaluate RUN --split val` then replaced."""
    target = resolve_path(path)
    runs = [RunDir(folder) for folder in (target, *target.parents)]
    return [file for run in runs if holds_a_run(run)
            for file in (*run.owned_files(), *([target] if run.is_output_name(target) else []))]


def refuse_a_stranger_among_members(out: str | Path, option: str = "--out") -> None:
    """`out` (any output: a file, a folder, a run) may not be, or lie in, the `members/` folder of a detection-level
    ensemble but inside one of its members: that folder holds the members alone, and the ensemble refuses anything
    else there (`read_ensemble`). `ensemble A B --out FUSED/members/2` (or `train`, `detect --format smg`, `extract`
    there) wrote a run beside the members, and every later use of FUSED was refused: "make the ensemble again"."""
    target = resolve_path(out)
    for folder in (target, *target.parents):
        if folder.name != "members" or not holds_a_run(RunDir(folder.parent)):
            continue
        try:
            raw = read_json(RunDir(folder.parent).format_path, "run format")
        except InputError:
            continue
        block = raw.get("ensemble") if isinstance(raw, dict) else None
        members = block.get("members") if isinstance(block, dict) and block.get("fusion") == "detections" else None
        if not isinstance(members, int):
            continue
        entry = target.relative_to(folder).parts[:1]
        if not entry or entry[0] not in {str(m) for m in range(members)}:
            raise InputError(f"{option} {out} would be written into {folder}, which holds the {members} members of "
                             f"the ensemble {folder.parent} alone (the ensemble refuses anything else there); choose "
                             "another output")


def refuse_a_folder_of_runs(out: str | Path, option: str = "--out") -> None:
    """`out`, not a run itself, that holds other runs in its subfolders (`runs/`, as `--out runs/$NAME` gives with
    NAME empty): a new run (`train`, `demo`, an ensemble) was written straight into it, its files beside the other
    runs' folders, without a word. The folders mgrec makes inside a run (teacher/, members/, ...) are the run's own."""
    folder = Path(out)
    if RunDir(folder).format_path.exists() or not folder.is_dir():
        return
    try:
        inside = sorted(child for child in folder.iterdir()
                        if not _RUN_ENTRY.fullmatch(child.name) and child.is_dir() and holds_a_run(RunDir(child)))
    except OSError:
        return
    if inside:
        shown = ", ".join(str(child) for child in inside[:2]) + (f" and {len(inside) - 2} more" if len(inside) > 2
                                                                 else "")
        raise InputError(f"{option} {out} holds other runs in its subfolders ({shown}); a run is written into a "
                         f"folder of its own: give the run's own folder ({option} {folder / 'NAME'})")


def run_around(path: str | Path) -> RunDir | None:
    """The run `path` is or lies in (the nearest folder holding one, as `files_of_runs_around` tells them), if any."""
    target = resolve_path(path)
    return next((run for run in map(RunDir, (target, *target.parents)) if holds_a_run(run)), None)


def holds_a_run(run: RunDir) -> bool:
    """Whether a folder is a run's, for protecting its files: a run.json holding an integer format (of any version:
    a newer mgrec's run is protected too), or one that cannot be read beside the run's config or classes (damaged).
    A run.json of something else (a video named "run"'s sidecar, an object without "format") makes no run."""
    if not run.format_path.is_file():
        return False
    try:
        raw = read_json(run.format_path, "run format")
    except InputError:
        return run.config_path.is_file() or run.classes_path.is_file()
    return isinstance(raw, dict) and isinstance(raw.get("format"), int) and not isinstance(raw.get("format"), bool)


def refuse_members_trained_on(members: list[Path], split: str, video_ids: list[str]) -> None:
    """An ensemble tunes its threshold on `split` (its members' val split, whose videos are `video_ids`): refused,
    before anything is written, when a member trained on one of them (by the member's record: the annotations'
    splits were redrawn between trainings)."""
    advice = "the ensemble would tune its threshold on them; leave this member out, or train it again on the new splits"
    for member in members:
        try:
            RunDir(member).check_held_out(split, video_ids, advice)
        except InputError as exc:
            raise InputError(f"ensemble member {member}: {exc}") from None


def join_split_records(records: list[dict]) -> dict:
    """The splits record of an ensemble: every video any member trained or validated on (each in the order seen)."""
    joined = {"annotations": records[0]["annotations"], "train_split": records[0]["train_split"],
              "train": list(dict.fromkeys(v for r in records for v in r["train"])),
              "val_split": records[0]["val_split"], "val": list(dict.fromkeys(v for r in records for v in r["val"]))}
    if "annotations_resolved" in records[0]:
        joined["annotations_resolved"] = records[0]["annotations_resolved"]
    return joined


def member_paths(run_dirs: object) -> list[Path]:
    """The run directories given in Python (an ensemble's members, the runs `compare_runs` compares), as paths; one
    path given alone is refused (a str would be iterated a character at a time), and so are None, a dict (its keys
    were taken for the runs) and an item that is no path (pathlib's raw TypeError)."""
    if isinstance(run_dirs, (str, os.PathLike)):
        raise InputError(f"run_dirs: expected a list of run directories, got one path ({run_dirs}); give [path, ...]")
    given = listed(run_dirs, "run_dirs", "a list of run directories")
    return [path_argument(path, f"run_dirs[{index}]") for index, path in enumerate(given)]


def checked_members(paths: list[Path]) -> tuple[list[Config], list[str]]:
    """The members' configs and their classes, each member checked before any network is loaded or file written:
    a finished run (its selected weights), not itself an ensemble (its runs are given instead), not trained end
    to end (each member would read its own adapted features), every one with the first one's classes, one
    threshold rule and one set of splits for all (`check_same_threshold_rule`, `check_same_splits`): what both
    ways of making an ensemble (averaged outputs, fused detections) ask of their members."""
    configs, classes = [], None
    for path in paths:
        run = RunDir(path)
        run.require_finished("best")
        if run.format_path.exists() and run.read_ensemble() is not None:
            raise InputError(f"{path} is itself an ensemble; give the runs it was made of")
        config = run.read_config()
        if config.end_to_end:
            raise InputError(f"{path} was trained end to end (data.videos); ensembles take runs trained on feature "
                             "files (`mgrec extract --run` makes a run's features, for feature-based training)")
        own = run.read_classes(expected_count=config.model.num_classes)
        if classes is not None and own != classes:
            raise InputError(f"{path}: its classes differ from those of {paths[0]}; an ensemble needs the same classes")
        classes = own
        configs.append(config)
    check_same_threshold_rule(list(zip(paths, configs)))
    check_same_splits(list(zip(paths, configs)))
    return configs, classes or []


def new_ensemble_dir(out: str | Path, members: list[Path]) -> RunDir:
    """The run directory `out` for an ensemble of `members` (`mgrec ensemble`): refused when there are no
    members, when it is a folder a member reads, when it is one of them or inside one, or when it exists and is
    not empty (an ensemble is written anew)."""
    if not members:
        raise InputError("an ensemble needs at least one run")
    refuse_an_out_the_members_read(out, members)
    refuse_a_stranger_among_members(out)
    run = RunDir(out)
    target = resolve_path(run.path)
    if target in {resolve_path(p) for p in members}:
        raise InputError(f"{out}: the ensemble would overwrite one of its members; choose another --out")
    for member in members:  # a run inside a run: the member's own files would hold another run's
        if resolve_path(member) in target.parents:
            raise InputError(f"{out} is inside the member {member}; an ensemble is a run of its own: choose an --out "
                             "outside its members")
    if run.path.exists() and not run.path.is_dir():
        raise InputError(f"{out} is not a folder; the ensemble is written into a new folder")
    refuse_a_folder_of_runs(out)
    if run.path.exists() and any(run.path.iterdir()):
        raise InputError(f"{out} exists and is not empty; the ensemble is written into a new folder")
    return run


def refuse_a_written_ensemble_dir(run: RunDir) -> None:
    """Inside the ensemble's lock, before its first write: the folder holds nothing but the lock. Another command
    may have written it between `new_ensemble_dir`'s check and the lock (a second `ensemble --out` into the same
    folder, paused while it loaded its members, wrote its run over the first's, beside the first's evaluation)."""
    written = sorted(path.name for path in run.path.iterdir() if path != run.lock_path)
    if written:
        raise InputError(f"{run.path} is no longer empty (another command wrote {brief(written[0])} there while this "
                         "one loaded its members); the ensemble is written into a new folder")


def remove_run_dir(path: str | Path, keep: Iterable[tuple[str, str | Path]] = (), option: str = "--fresh") -> None:
    """Delete the run directory `path` (`mgrec demo --fresh`): the one way mgrec deletes a folder it is given,
    and only after `check_removable` (same arguments) found it to be a run or empty."""
    check_removable(path, keep, option)
    if not os.path.lexists(path):
        return
    lock_path = RunDir(path).lock_path
    with contextlib.ExitStack() as held:
        if lock_path.is_file():  # never the folder of a training that is running: hold its lock while deleting
            try:
                handle = held.enter_context(open(lock_path, encoding="utf-8"))
            except OSError as exc:
                raise InputError(f"{option}: cannot delete {path}: {exc.strerror or brief(str(exc))}") from None
            _lock_or_refuse(handle, f"{option}: {path} was not deleted: it")
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise InputError(f"{option}: cannot delete {path}: {exc.strerror or brief(str(exc))}") from None


def _lock_or_refuse(handle, what: str, advice: str = "wait for it to finish or use another --out",
                    shared: bool = False) -> None:
    """Take the exclusive (or `shared`) lock of the open lock file `handle` (`RunDir.lock`; released when it
    is closed), or refuse naming its holder; `what` starts the message (the run directory), `advice` ends it.

    Only a lock held elsewhere is refused. A file system without flock (some FUSE mounts; NFS refuses an
    exclusive lock on a file opened for reading) raises other errors: there the lock cannot protect
    anything, and refusing would name a holder that died long ago (a run copied with its .lock)."""
    import fcntl

    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return
        handle.seek(0)
        holder = handle.read(200).strip() or "another process"
        raise InputError(f"{what} is in use by {holder}; {advice}") from None


FEATURES_LOCK_ADVICE = "another extraction is writing there: wait for it to finish or use another --out"
# How often a lock file found removed by its holder just after it was opened is opened again: more would mean a
# file system whose inode numbers change (some FUSE mounts), where the check could never pass.
_LOCK_OPENINGS = 5


@contextlib.contextmanager
def lock_features_folder(folder: str | Path, shared: bool = False) -> Iterator[None]:
    """Hold the features folder `folder` for one extraction (`mgrec extract --out`, and the extractions of `detect`
    and `evaluate`): a second one into it is refused before it writes anything, where the two interleaved and left
    one's feature array beside the other's sidecar. `shared`: the processes of one torchrun extraction, each writing
    its own share of the inputs, hold it together (and refuse a lone extraction, as it refuses them).

    The OS releases the lock when its process dies, so a killed extraction's lock file blocks nobody; the file is
    removed when the extraction ends, and a folder made for it that stayed empty with it."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "it is a file, not a folder" if folder.is_file() else (exc.strerror or str(exc))
        raise InputError(f"cannot write the features folder {folder}: {what}") from None
    path = folder / FEATURES_LOCK
    handle = _open_held_lock(path, str(folder), FEATURES_LOCK_ADVICE, shared)
    try:
        if not shared:  # the holders of a shared lock would mix their lines
            _write_holder(handle, path)
        yield
    finally:
        _release_removing(handle, path)
        if created:
            with contextlib.suppress(OSError):  # not empty: features were written, or another process holds it now
                folder.rmdir()


# Held by `mgrec stream` and `mgrec detect` --format smg in their label folder while they work (`hold_label_folder`).
LABELS_LOCK = ".mgrec-labels.lock"

# The output folders this process holds (`hold_output_folder` with `reentrant`), by lock file: a command that holds
# a folder for all its work and calls a writer that holds it again holds it once (flock refuses a second opening of
# one file, even in one process).
_FOLDERS_HELD: dict[Path, int] = {}


@contextlib.contextmanager
def hold_output_folder(folder: str | Path, lock_name: str, advice: str, owner: str, place: str,
                       reentrant: bool = False) -> Iterator[None]:
    """Hold the output folder `folder` for one writer, by the hidden lock file `folder/lock_name` (flock, which FAT
    sticks mounted on Linux honour too): another process that tries is refused, naming the holder, with `advice`.
    Released when the block ends or the process dies, so a killed writer blocks nobody; the lock file is removed at
    the end, as is a folder made for it that stayed empty. `owner` and `place` name the lock and its folder in
    messages (`open_lock_file`). `reentrant`: held again by this process (a writer called inside the command that
    holds the folder), it is held once; otherwise a second hold in one process is refused as another's."""
    folder = Path(folder)
    path = folder / lock_name
    key = path.absolute()
    if reentrant and key in _FOLDERS_HELD:  # held by this process already: a writer inside the command that holds it
        _FOLDERS_HELD[key] += 1
        try:
            yield
        finally:
            _FOLDERS_HELD[key] -= 1
        return
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "it is a file, not a folder" if folder.is_file() else (exc.strerror or str(exc))
        raise InputError(f"cannot write {place} {folder}: {what}") from None
    handle = _open_held_lock(path, str(folder), advice, False, owner=owner, place=place)
    if reentrant:
        _FOLDERS_HELD[key] = 1
    try:
        _write_holder(handle, path)
        yield
    finally:
        _FOLDERS_HELD.pop(key, None)
        _release_removing(handle, path)
        if created:
            with contextlib.suppress(OSError):  # not empty: files were written
                folder.rmdir()


def hold_label_folder(folder: str | Path) -> Iterator[None]:
    """Hold the SMG label folder `folder` for one `mgrec stream` or `mgrec detect` --format smg (`hold_output_folder`):
    a second one into it while the first ran found the first one's unfinished-set marker, took it for an interrupted
    set's and "resumed", both writing the same videos into one set."""
    return hold_output_folder(folder, LABELS_LOCK, "another mgrec stream or detect is writing label files there: wait "
                              "for it to finish or use another --out", owner="the label writer's",
                              place="the label folder")


def _write_holder(handle, path: Path) -> None:
    """Who holds a lock, in its file `path`: what the refusal of another process names. Written past the handle's
    buffer: on a full disk (or under `ulimit -f 0`) a buffered line failed at the flush, then again when the handle
    was closed on the way out, a raw `OSError` traceback that also kept the lock file, and the folder made for it,
    from being removed. It is now `cannot write <path>: <cause>`, and they go as after any refusal."""
    handle.flush()
    handle.seek(0)
    handle.truncate()
    try:
        os.write(handle.fileno(), f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except OSError as exc:
        raise cannot_write(path, exc) from None


def _open_held_lock(path: Path, what: str, advice: str, shared: bool, owner: str = "the extraction's",
                    place: str = "the features folder"):
    """The lock file `path` opened and locked (`_lock_or_refuse`), the very file `path` names now: a holder that
    ends removes its file while it still holds it (`_release_removing`), and a process that had opened it just
    before then holds a lock on a file no longer in the folder, which another would not see: it opens the new one.
    `owner` and `place` name the lock and its folder in messages (`open_lock_file`)."""
    for _ in range(_LOCK_OPENINGS - 1):
        handle = _open_and_lock(path, what, advice, shared, owner, place)
        if _names(path, handle):
            return handle
        handle.close()
    return _open_and_lock(path, what, advice, shared, owner, place)


def _open_and_lock(path: Path, what: str, advice: str, shared: bool, owner: str, place: str):
    handle = open_lock_file(path, owner=owner, folder=place)
    try:
        _lock_or_refuse(handle, what, advice, shared)
    except BaseException:
        handle.close()
        raise
    return handle


def _names(path: Path, handle) -> bool:
    """Whether `path` is the open file `handle` (not removed, nor replaced by another file since it was opened)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    own = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino)


def _release_removing(handle, path: Path) -> None:
    """Remove the lock file `path` while still holding its lock (`handle`), then let it go: whoever opened it meanwhile
    finds it removed (`_open_held_lock`). A shared holder removes it only when it is the last: it then gets the
    exclusive lock (on a file system without flock the file stays, harmless)."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held already by a lone holder; by the last shared one
        if _names(path, handle):
            path.unlink()
    except OSError:
        pass  # other holders of a shared lock are still at work, or the file went: it is theirs to remove
    finally:
        handle.close()


def check_removable(path: str | Path, keep: Iterable[tuple[str, str | Path]] = (), option: str = "--fresh") -> None:
    """Refuse, naming what the folder holds, to delete `path` unless it is missing, empty, or recognisably an
    mgrec run directory: its run.json is mgrec's (or it holds only the lock and temporary files of a start
    killed before its first write) and nothing in it is a name mgrec does not write into a run (a file of the
    user's inside would go with it). Never a link or a file, nor a folder that is or holds the working
    directory or a folder of `keep` ((what, folder) pairs, e.g. the demo data). `option` asks for the deletion."""
    path = Path(path)
    refuse = f"{option}: {path} was not deleted:"
    todo = "choose another --out, or delete it yourself"
    target = resolve_path(path)
    # asked even of a folder not made yet: the demo builds its data (`keep`) before the deletion
    for what, folder in (("the working directory", Path.cwd()), *keep):
        folder = resolve_path(folder)
        if folder == target or target in folder.parents:
            where = "it is" if folder == target else f"it holds {folder},"
            raise InputError(f"{refuse} {where} {what}; choose another --out")
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():  # rmtree of a link would delete (or fail on) what it points to
        kind = "a symbolic link" if path.is_symlink() else "a file"
        raise InputError(f"{refuse} it is {kind}, not a run directory; choose another --out")
    run = RunDir(path)
    try:
        foreign = run.foreign_entries()
    except OSError as exc:
        raise InputError(f"{refuse} it cannot be listed ({exc.strerror or brief(str(exc))}); {todo}") from None
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise InputError(f"{refuse} it holds {brief(foreign[0])}{more}, which mgrec never writes into a run; "
                         f"{option} deletes only an mgrec run directory or an empty folder: {todo}")
    if run.format_path.exists():
        try:
            run.read_format_version()
        except InputError as exc:
            raise InputError(f"{refuse} its run.json is not an mgrec run's ({exc}); {todo}") from None
        return
    written = [entry.name for entry in path.iterdir() if not _STARTED.fullmatch(entry.name)]
    if written:  # training writes run.json first: these files are not of a run's start
        raise InputError(f"{refuse} it holds {brief(written[0])} but no run.json, so it is not an mgrec run "
                         f"directory; {todo}")


# All that a training killed before its first write leaves (run.json is written first): the lock and
# temporary files.
_STARTED = re.compile(r"\.lock|\..+\.tmp")


# --------------------------------------------------------------------------------------------
# Weights files (safetensors); also used for files outside a run directory


def write_weights_file(path: Path, model: torch.nn.Module, ema: torch.nn.Module | None, metadata: dict) -> None:
    """Model weights (and EMA weights under the prefix `ema.`) in one safetensors file."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    meta = {"mgrec": json.dumps({**metadata, "run_format": RUN_FORMAT_VERSION})}
    atomic_write(path, lambda temp: save_file(tensors, temp, metadata=meta))


def read_weights_file(path: Path, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict (the EMA copy when present and `use_ema`) and the metadata stored with it.

    Every tensor must be floating point (or bool/integer buffers) and finite: a NaN checkpoint
    would otherwise load and silently detect nothing.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            text = (handle.metadata() or {}).get("mgrec", "{}")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"checkpoint {path} is not a readable safetensors file: {exc}") from None
    try:  # parsed apart from the file's reading: metadata nested past Python's recursion limit was a raw traceback
        meta = json.loads(text)
    except RecursionError:
        raise InputError(f"checkpoint {path}: its 'mgrec' metadata nests JSON too deeply to be mgrec's") from None
    except ValueError as exc:  # json's errors, and Python's limit of 4300 digits on an integer
        raise InputError(f"checkpoint {path}: its 'mgrec' metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"checkpoint {path}: its 'mgrec' metadata is not a JSON object")
    problem = weights_metadata_problem(meta)
    if problem is not None:
        raise InputError(f"checkpoint {path}: its 'mgrec' metadata {problem}; the file is not as mgrec wrote it "
                         "(edited, or another tool's?): put the run's own checkpoint back, or train again")
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    plain = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
    state = ema if use_ema and ema else plain
    for key, tensor in state.items():
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise InputError(
                f"checkpoint {path}: tensor {key} holds NaN or infinite values; the training that wrote it diverged"
            )
    return state, meta


def load_into(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    source: Path,
    upgrade: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load a state dict (after `upgrade`, which renames the keys of older formats), turning
    mismatches of keys, shapes or dtypes into a clear error about the configuration."""
    if upgrade is not None:
        state = upgrade(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    wrong_type = sorted(k for k in set(own) & set(state) if own[k].dtype != state[k].dtype)
    if missing or unexpected or wrong or wrong_type:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            details.append(
                f"{len(wrong)} with other shapes (e.g. {k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
            )
        if wrong_type:
            k = wrong_type[0]
            details.append(
                f"{len(wrong_type)} with other dtypes (e.g. {k}: file {state[k].dtype}, model {own[k].dtype})"
            )
        raise InputError(
            f"checkpoint {source} does not fit the model built from the run's config: {'; '.join(details)}. "
            "Was it written by another model configuration?"
        )
    model.load_state_dict(state)


def refuse_a_folder_training_reads(run_dir: Path, config: Config, reader: str = "training") -> None:
    """The run folder must not be a folder of inputs (features, streams, videos, unlabelled features): the
    run's files would land among them, and one of them could replace an input of the same name. `reader`:
    who reads `config`'s folders, for the message (an ensemble's member)."""
    data = config.data
    folders = [("data.features", data.features), ("data.videos", data.videos),
               ("pseudo_labels.unlabeled", config.pseudo_labels.unlabeled),
               *((f"data.streams[{i}].features", stream.features) for i, stream in enumerate(data.streams))]
    target = resolve_path(run_dir)
    for key, folder in folders:
        if folder and resolve_path(folder) == target:
            raise InputError(f"--out {run_dir} is the folder of {key}, which {reader} reads; choose another --out")


def refuse_a_run_path_not_utf8(run_dir: str | Path) -> None:
    """A run folder whose path is not UTF-8 text (a folder named in Latin-1 on the way): the safetensors library
    opens no such path, and the path recorded in the run's JSON files is refused when read back as not text. A run
    trained there failed at its end, its checkpoint named unreadable after every epoch was written; evaluating a run
    copied there wrote detections its report then refused. Refused before anything is read or written."""
    part = not_utf8_part(run_dir)
    if part is not None:
        raise InputError(f"{brief(str(run_dir))}: the run folder's path is not UTF-8 text: its part {part} is in "
                         "another encoding; mgrec records a run's path in its files, which hold text, and the "
                         "safetensors library opens no such path: rename that folder (or use another one)")


def refuse_an_out_the_members_read(out: str | Path, run_dirs: list[str | Path]) -> None:
    """The ensemble's folder may not be a folder its members read (their features, videos, streams, unlabelled
    features): training's refusal, asked with each member's config before anything is written. A member that
    cannot be read is left to the ensemble that reads it to report."""
    for path in run_dirs:
        try:
            config = RunDir(path).read_config()
        except InputError:
            continue
        refuse_a_folder_training_reads(Path(out), config, reader=f"the member {path}")


def next_commands(run_dir: str | Path, empty_test: str | None = None, val_split: str | None = None) -> str:
    """The line that tells a user what to run on a new run directory (quoted for a shell: paths with spaces).

    `empty_test`: the test split, where it has no videos (the challenge's SMG labels its train and val subjects
    only): `mgrec evaluate RUN` would then stop on "no videos in split", so the line names the val split instead,
    where there is one (`val_split`)."""
    quoted = shell_word(run_dir)
    if empty_test is not None and val_split:
        split = f"--split {shell_word(val_split)}"
        return (f"next: mgrec evaluate {quoted} {split} (val scores: the test split {empty_test!r} has no videos), "
                f"then mgrec report {quoted} {split}")
    return f"next: mgrec evaluate {quoted} (test scores), then mgrec report {quoted}"


def run_data_path(run_dir: str | Path, key: str, value: str | Path, remedy: str, folder: bool = False,
                  moved: str | None = None) -> Path:
    """A path of a run's config (`key`: data.annotations, data.features), or an error that says where it was
    looked for and what to do: a relative path is read from the current directory, as `mgrec train` read it, so a
    command run from another folder found nothing and said only "annotations.json: annotations file not found".
    `remedy`: what the calling command lets the user do about a relative path (`mgrec report`: pass the annotations
    file explicitly); `moved`: about an absolute one that is not there (the data moved, or the run was copied to
    another machine), by default `moved_data_remedy` (record the new place in the run). A path this user may not
    look into (another user's home) is said so, not a raw PermissionError traceback."""
    label = where(Path(run_dir) / "config.yaml", key=key)
    path = Path(value)
    if not str(value) or str(path) == ".":
        raise InputError(f"{label}: no {'folder' if folder else 'file'} given")
    try:
        there = path.is_dir() if folder else path.is_file()
    except OSError as exc:  # Path.is_file() swallows only "not there": EACCES on a folder on the way is raised
        raise InputError(f"{label}: cannot look at {path}: {exc.strerror or exc} (a folder on the way is not open "
                         f"to this user); {moved or moved_data_remedy(run_dir, key, 'ask for read access')}") from None
    if not there:
        if path.is_absolute():  # where it is read from is not the question
            raise InputError(f"{label}: {path} not found (moved or deleted since the run was trained?); "
                             f"{moved or moved_data_remedy(run_dir, key)}")
        raise InputError(f"{label}: {path} not found (relative paths are read from the current directory "
                         f"{Path.cwd()}); {remedy}")
    return path


def moved_data_remedy(run_dir: str | Path, key: str, first: str = "move it back", this_call: str | None = None) -> str:
    """What a user does when a run's data (`key`) is no longer where its config.yaml says (the data moved, the run
    was copied to another machine or user): the command that records the new place in the run where it can resume
    (its config is rewritten, the features' recipe still checked), else the key to edit in its config.yaml. `first`:
    the other way out, said first. `this_call`: the command that takes the new place for one call (`mgrec evaluate
    RUN`, with `--set KEY=NEW`), said before the ways that change the run: a finished or copied run's only way was
    to edit its config.yaml by hand."""
    run = RunDir(run_dir)
    here = f", or give its new place for this call: {this_call} --set {key}=NEW" if this_call else ""
    if run.can_resume():
        return (f"{first}{here}, or record its new place in the run: mgrec train {shell_word(run.config_path)} --out "
                f"{shell_word(run.path)} --resume --set {key}=NEW")
    return (f"{first}{here}, or write its new place as {key} in {run.config_path} (the run has no "
            f"{run.state_path.relative_to(run.path)} to resume, which would record it)")
