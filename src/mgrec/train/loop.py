"""`mgrec train`: the training loop, validation on val, checkpoints and resume.

Reads top to bottom: set-up (devices, processes, data, model, optimiser), then epochs of
crops -> forward -> targets -> loss -> step -> EMA, validating the EMA weights on the val split
every `eval_every` epochs and after the last one, and keeping the selected (`train.select_checkpoint`)
and the last checkpoint. Model selection never looks at the test split.

Determinism: every epoch's crops and noise come from generators seeded by (seed, epoch), and a
checkpoint is written at the end of every epoch, so `--resume` after a crash replays exactly
the epochs that an uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mgrec.config import (
    Config,
    StreamConfig,
    check_for_training,
    checked_config,
    config_from_record,
    flat_keys,
    key_origin,
    to_dict,
)
from mgrec.data.balance import ClassBalancer, anchor_probabilities
from mgrec.data.datasets import VideoSample, draw_training_crops, make_batch
from mgrec.data.features import FeatureSidecar, read_sidecar, recipe_differences, sidecar_path, video_id_of
from mgrec.data.streams import stream_path
from mgrec.data.transforms import CropTransforms
from mgrec.devices import float32_default, process_device, process_rank, resolve_device
from mgrec.errors import InputError
from mgrec.evaluate.f1 import threshold_phrase, tune_thresholds
from mgrec.evaluate.scoring import score, val_scores_phrase
from mgrec.files import (
    bool_argument,
    brief,
    callable_argument,
    counted,
    path_argument,
    read_from_here_note,
    read_json,
    resolve_path,
    shell_word,
)
from mgrec.model.detector import build_detector, upgrade_state_dict
from mgrec.model.end_to_end import ADAPTED_BACKBONE, EndToEndDetector, detector_of, ema_copy
from mgrec.model.memory import check_fits, count_parameters
from mgrec.postprocess.second_opinion import SecondOpinion, SegmentClassifier
from mgrec.postprocess.video import detect_video
from mgrec.records import segments_digest
from mgrec.run import RunDir, load_into, next_commands, refuse_a_folder_training_reads, refuse_a_run_path_not_utf8
from mgrec.terminal import said_once
from mgrec.train.assign import make_points
from mgrec.train.data import SplitData, checked_annotations, class_counts, crop_anchors, load_split
from mgrec.train.losses import DetectionLoss
from mgrec.train.pseudo import (
    UNLABELED,
    check_teacher,
    check_unlabeled,
    label_videos,
    unlabeled_files,
    without_pseudo_labels,
)
from mgrec.train.step import TrainStep, lr_factor, training_network


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict  # fractions, as stored: f1, f1_miga, average_mAP, score_threshold
    seconds: float
    epochs: int = 0
    select_metric: str = "f1"
    select_checkpoint: str = "best"  # "last": the last epoch was kept, whatever its val score
    tuned_on: str | None = None  # the split the score threshold was tuned on (None: no val split)
    rank: int = 0  # under torchrun, only rank 0 validates and knows the selected epoch
    first_epoch: int = 0  # the first epoch this call trained (> 0 after --resume)
    class_thresholds: list[float] | None = None  # tuned beside the score threshold (postprocess.thresholds: per_class)
    empty_test: str | None = None  # data.test_split, where the annotations hold no video of it (`next_commands`)

    def summary(self, next_steps: bool = True) -> str:
        """The readable end of `mgrec train`: time, the selected epoch and its val scores (percent), and
        (`next_steps`) the commands that come next."""
        done = self.epochs - self.first_epoch  # `seconds` covers these only
        if done <= 0:  # resumed after its last epoch: nothing trained now
            which, per_epoch = f"all {self.epochs} epochs before (resumed: nothing left to train)", ""
        else:
            which = f"epochs {self.first_epoch}-{self.epochs - 1} (resumed)" if self.first_epoch else \
                counted(done, "epoch")
            per_epoch = f" ({_duration(self.seconds / done)} per epoch)"
        lines = [f"finished {which} in {_duration(self.seconds)}{per_epoch}"]
        if self.rank != 0:
            return f"process {self.rank}: {lines[0]}; process 0 wrote the run directory {self.run_dir}"
        m = self.best_metrics
        threshold = threshold_phrase(m["score_threshold"], self.class_thresholds)
        if self.tuned_on is None:
            lines.append(f"no val split: kept the last epoch ({self.best_epoch}) and the configured {threshold}")
        else:
            which = (f"kept the last epoch ({self.best_epoch}), val" if self.select_checkpoint == "last"
                     else f"selected epoch {self.best_epoch} by val {self.select_metric}:")
            lines.append(f"{which} {val_scores_phrase(m, self.tuned_on, self.class_thresholds)}")
        lines.append(f"run directory: {self.run_dir}")
        if next_steps:
            lines.append(next_commands(self.run_dir, self.empty_test, self.tuned_on))
        return "\n".join(lines)


def _percent(fraction: float) -> str:
    """Printed scores are percent, as `mgrec evaluate` and the report print them; files keep fractions."""
    return f"{100 * fraction:.2f}%"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class MetricsLog:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl (and to TensorBoard when installed:
    `pip install 'mgrec[tensorboard]'`, then `tensorboard --logdir RUN_DIR/tensorboard`).

    Both keep fractions (F1 0.6709, not 67.09); only what is printed is in percent.

    `steps_done`: the optimiser steps the training goes on from (a `--resume`'s, else 0). Each epoch's scalars are
    logged at the step it ends on, and TensorBoard hides every event of an earlier writer at the first step this one
    takes or later (`purge_step`), as `RunDir.keep_metrics_before` drops those records from metrics.jsonl: a run
    killed after an epoch's metrics but before its checkpoint redoes that epoch, and its curves showed the epoch twice;
    a fresh start over a start that never checkpointed showed the earlier start's curves beside its own.
    """

    def __init__(self, run: RunDir, enabled: bool, listener: Callable[[dict], None] | None = None,
                 steps_done: int = 0):
        self.run, self.enabled, self.listener = run, enabled, listener
        self.tensorboard = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # torch imports the tensorboard package here: absent, no TensorBoard logs
                SummaryWriter = None
            if SummaryWriter is not None:
                self.tensorboard = SummaryWriter(str(self.tensorboard_dir), purge_step=steps_done + 1)

    @property
    def tensorboard_dir(self) -> Path:
        return self.run.path / "tensorboard"

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.run.append_metrics(record)
        if self.listener is not None:
            self.listener(copy.deepcopy(record))  # the caller's to keep or change
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.tensorboard.add_scalar(f"{record['kind']}/{key}", value, record.get("step", record["epoch"]))

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def validate(model, split, config: Config, classes: list[str],
             second_opinion: SecondOpinion | None = None) -> tuple[dict, dict]:
    """Ranked detections on `split` (rescored by the run's `second_opinion`, if any) -> score threshold (and, with
    `postprocess.thresholds: per_class`, one per class) tuned on it -> scores. Returns the scores and the ranked
    detections, by video."""
    ranked = {
        s.video_id: detect_video(detector_of(model), sample_features(model, s, config), s.grid, config.postprocess,
                                 classes, s.video_id, second_opinion=second_opinion)
        for s in split.samples
    }
    threshold, class_thresholds = tune_thresholds(split.ground_truth, ranked, len(classes), config.postprocess)
    return score(split.ground_truth, ranked, classes, threshold, split="val", class_thresholds=class_thresholds), ranked


def sample_features(model: torch.nn.Module, sample: VideoSample, config: Config) -> np.ndarray:
    """A whole video's features (T, C): its feature file's, or, end to end, its clips through the encoder
    (every clip, in order, `backbone.clip_batch` at a time)."""
    if not isinstance(model, EndToEndDetector):
        return sample.features
    device = next(model.detector.parameters()).device
    parts = []
    with torch.no_grad():
        for clips in sample.features.iter_clips(config.backbone.clip_batch):
            parts.append(model.encoder(torch.from_numpy(clips)[None].to(device))[0].float().cpu().numpy())
    if not parts:
        raise InputError(f"{sample.video_id}: no complete window of {config.data.window} frames to encode")
    return np.concatenate(parts)


def end_to_end_recipe(config: Config, encoder: torch.nn.Module, fps: float) -> FeatureSidecar:
    """How an end-to-end run turns a video into the detector's features: the backbone's weights and the
    run's own adapters (`mgrec extract --run`, and `detect`/`stream` on raw video, read it)."""
    return FeatureSidecar(fps=fps, stride=config.data.stride, window=config.data.window,
                          backbone=f"{ADAPTED_BACKBONE}@{config.backbone.image_size}", dim=config.data.feature_dim,
                          frames=None, weights=config.backbone.weights,
                          weights_sha256=getattr(encoder, "weights_sha256", None))


def feature_recipe(stream: StreamConfig, video_id: str) -> FeatureSidecar | None:
    """The sidecar of a training video's features of one input stream (backbone, window, stride,
    weights), if it has one."""
    side = sidecar_path(stream_path(stream, video_id))
    return read_sidecar(side) if side.exists() else None


def train(config: Config, run_dir: str | Path, resume: bool = False, log=print, progress: bool | None = None,
          inputs: list[Path] = (), encoder: torch.nn.Module | None = None,
          on_metrics: Callable[[dict], None] | None = None) -> TrainResult:
    """Train `config` into the run directory `run_dir` (or continue it with `resume`).

    `log` takes the printed lines; `progress`: a step bar on stderr (None: only where stderr is a terminal, so a
    script's captured output holds no bar frames); `on_metrics` (if given) each record as it is appended to the run's
    metrics.jsonl (a copy: {"kind": "train" | "val" | "balance", "epoch", "step", ...}, fractions, not percent),
    for a caller that follows the training in numbers (teachers and students of pseudo-labelling keep their own
    logs). `inputs`: files the caller read the config from; training refuses to write over them. With
    `pseudo_labels.unlabeled`, the labelling runs come first (`mgrec.train.pseudo`). End to end
    (`data.videos`): `encoder` is the adapted backbone (`mgrec.extract.adapters.build_adapted_backbone`).
    """
    config = checked_config(config, "the config given to train")  # as a file is checked: built in code, it was not
    run_dir = path_argument(run_dir, "train: run_dir")
    # resume="no" resumed, progress="no" drew the bar; a log or listener that cannot be called was a TypeError at the
    # first line or record
    bool_argument(resume, "train: resume")
    bool_argument(progress, "train: progress", optional=True)
    callable_argument(log, "train: log")
    callable_argument(on_metrics, "train: on_metrics", optional=True)
    progress = sys.stderr.isatty() if progress is None else progress
    # float32 networks and gradients on, whatever the caller set: after torch.set_default_dtype(torch.float64) the
    # run's weights were float64 (refused by every later load), after torch.set_grad_enabled(False) the first
    # backward pass failed with a raw error, the run folder written
    with float32_default(), torch.enable_grad():
        return _train_in_a_run(config, run_dir, resume, log, progress, inputs, encoder, on_metrics)


def _train_in_a_run(config: Config, run_dir: str | Path, resume: bool, log, progress: bool, inputs: list[Path],
                    encoder: torch.nn.Module | None, on_metrics: Callable[[dict], None] | None) -> TrainResult:
    """`train`'s work, inside its float32, gradients-on scope."""
    if config.end_to_end and encoder is None:
        raise InputError("data.videos: end-to-end training needs the adapted backbone; train with `mgrec train`, "
                         "or pass encoder=mgrec.extract.adapters.build_adapted_backbone(config, device)")
    run = RunDir(run_dir)
    refuse_before_training(config, run.path)
    if config.pseudo_labels.unlabeled:  # the teacher, students and this run check one config and data: warn once
        log = said_once(log)

    def labelled_then_trained() -> TrainResult:
        return _train(config, run, resume, log, progress, inputs, *pseudo_labelled(config, run, log, progress, inputs),
                      encoder=encoder, on_metrics=on_metrics)

    if process_rank()[0] != 0:  # under torchrun, rank 0 holds the run for all ranks
        return labelled_then_trained()
    with run.lock():
        if not resume:  # refused before any teacher trains, not after
            run.check_fresh_start([*inputs, Path(config.data.annotations)])
        elif not run.can_resume() and config.pseudo_labels.unlabeled and (run.path / "teacher").is_dir():
            # killed after its teacher, before the student's first epoch: said before the pool is labelled again
            raise InputError(f"--resume: {run.state_path} not found: the student has no epoch to resume yet (its "
                             f"teacher, {run.path / 'teacher'}, is kept); start without --resume, which reuses it")
        return labelled_then_trained()


def check_same_classes(run: RunDir, classes: list[str], annotations: str) -> None:
    """A resumed run's annotations must name its classes in the order it trained them: class ids in another order
    would train its later epochs on other labels, and rewrite classes.json under its earlier ones."""
    own = run.read_classes()
    if own != classes:
        first = next((i for i, (a, b) in enumerate(zip(own, classes)) if a != b), min(len(own), len(classes)))
        raise InputError(f"--resume: {annotations} lists other classes than {run.classes_path} (first difference "
                         f"at id {first}: {brief(classes[first] if first < len(classes) else None)} there, "
                         f"{brief(own[first] if first < len(own) else None)} in the run); resume with the annotations "
                         "the run trained on")


def refuse_before_training(config: Config, run_dir: Path) -> None:
    """What training (a new one or a --resume) refuses before the run folder is made (the lock) and the network
    built: a value only training uses out of its range (the seed: `mgrec.config.check_for_training`; a finished
    run holding one still loads for detection), a run path that is not UTF-8 text, a run folder that is a folder
    of inputs, an annotations file that is not there, a batch that cannot fit. `mgrec demo --fresh` asks it before
    deleting."""
    check_for_training(config)
    refuse_a_run_path_not_utf8(run_dir)
    refuse_a_folder_training_reads(run_dir, config)
    refuse_missing_annotations(config)
    check_batch_fits(config)


def refuse_missing_annotations(config: Config) -> None:
    """An annotations file the config names and that is not there, refused before the batch's memory is asked: a
    config of a batch this machine cannot fit (`smg/mgrec.yaml` on a laptop) with its data missing or misnamed was
    refused for its memory first, and only after a smaller batch for its data. The file's contents, and the rest of
    the data, are the data check's (`mgrec.data.check`), which training runs next."""
    annotations = config.data.annotations
    path = Path(annotations).expanduser()
    if annotations and not path.is_file():
        raise InputError(f"{key_origin(config, 'data.annotations')}: {annotations} not found"
                         f"{read_from_here_note(path)}; give the annotations file: --set data.annotations=FILE")


def check_batch_fits(config: Config) -> None:
    """A training batch that cannot fit is refused with the numbers (`mgrec.model.memory`) before the network
    is built and before the run folder is touched: a width that cannot be allocated failed in the allocator,
    and left a run folder holding a config and no run. The parameters are counted on the meta device."""
    device = resolve_device(config.train.device)
    if device.type == "cpu":  # the estimate is of host memory
        batch = max(1, config.train.batch_size // process_rank()[1])
        check_fits(config.model, config.data.max_seq_len, batch, training=True, what="a training batch",
                   parameters=count_parameters(config.model), device=device)


def pseudo_labelled(config: Config, run: RunDir, log, progress: bool, inputs) -> tuple[list[VideoSample], dict | None]:
    """The pseudo-labelled videos the run trains on besides its labelled ones, and their record
    (none without `pseudo_labels.unlabeled`). Trains the teacher and intermediate students as needed."""
    pseudo = config.pseudo_labels
    if not pseudo.unlabeled:
        return [], None
    files = unlabeled_files(pseudo.unlabeled, log)
    # Everything that can be refused is refused before a teacher trains (a training's worth of time).
    check_unlabeled(files, config, log)
    if run.can_resume() and run.config_path.exists():
        check_same_config(run, config)
        check_same_pool(run, config, files)
    distributed = process_rank()[1] > 1
    if distributed and (not pseudo.teacher or pseudo.rounds > 1):
        raise InputError("pseudo-labels under torchrun: train the teacher first and give it as "
                         "pseudo_labels.teacher, with pseudo_labels.rounds=1 (every process labels the pool)")
    plain = without_pseudo_labels(config)
    if pseudo.teacher:
        labeller = RunDir(pseudo.teacher)
        if resolve_path(labeller.path) == resolve_path(run.path):
            raise InputError(f"pseudo_labels.teacher: {pseudo.teacher} is the run being trained (--out); give a "
                             "finished run as the teacher, or leave the setting out to train one into RUN/teacher")
        labeller.require_finished("best")
        check_teacher(labeller, config, log)
    else:
        labeller = RunDir(run.path / "teacher")
        refuse_a_kept_labeller_of_another_config(labeller, plain, "teacher")
        log(f"pseudo-labels: training the teacher into {labeller.path}")
        train(plain, labeller.path, resume=labeller.can_resume(), log=log, progress=progress, inputs=inputs)
    samples, record = label_videos(labeller, files, config, pseudo.min_score, log)
    for round_number in range(1, pseudo.rounds):
        student = RunDir(run.path / f"student{round_number}")
        refuse_a_kept_labeller_of_another_config(student, plain, f"student {round_number}")
        log(f"pseudo-labels: training student {round_number} into {student.path}")
        with student.lock():
            _train(plain, student, student.can_resume(), log, progress, inputs, samples, record)
        samples, record = label_videos(student, files, config, pseudo.min_score, log)
    return samples, {**record, "transductive": pseudo.transductive, "unlabeled": pseudo.unlabeled}


# What may change between a run and its --resume: where the data lies, which device trains it and whether
# the steps run through the compiled network (no saved state depends on it: a machine without g++ resumes).
RESUMABLE_CHANGES = ("data.annotations", "data.features", "data.videos", "backbone.weights", "train.device",
                     "train.compile")
MOVABLE_STREAM = re.compile(r"data\.streams\[\d+\]\.features")  # each stream's folder may move too


def refuse_a_kept_labeller_of_another_config(labeller: RunDir, plain: Config, what: str) -> None:
    """RUN/teacher (or RUN/student<r>) kept from an earlier start of the run is continued, or reused when finished,
    with or without --resume: trained with another config, it was refused as "--resume: the config differs", an
    option not given, with "train a new run" for advice, where removing that folder trains a new one."""
    if labeller.can_resume():
        check_same_config(labeller, plain,
                          asked=f"{labeller.path}: the {what} kept from an earlier start of this run (training "
                                "continues it, or reuses it when finished)",
                          advice=f"train with the config it was trained with, or remove {labeller.path} to train a "
                                 f"new {what.split()[0]} with this one")


def check_same_config(run: RunDir, config: Config, asked: str = "--resume",
                      advice: str = "resume with the run's own config, or train a new run") -> None:
    """`--resume` continues a run as it was configured: a different config would silently mix two
    trainings (and rewrite the run's config.yaml), so any difference is refused, by key: from the run's
    config.yaml, and from the config its training state recorded (config.yaml may have been edited since).
    `asked`, `advice`: what made this a resume, and what to do instead (`mgrec demo` resumes its --out)."""
    given = flat_keys(to_dict(config))

    def refuse_differences(saved: dict, where: str, advice: str) -> None:
        changed = [k for k in sorted(set(saved) | set(given))
                   if k not in RESUMABLE_CHANGES and not MOVABLE_STREAM.fullmatch(k) and saved.get(k) != given.get(k)]
        if changed:
            shown = ", ".join(f"{k}: {saved.get(k)!r} in the run, {given.get(k)!r} now" for k in changed[:3])
            raise InputError(f"{asked}: the config differs from {where} ({shown}"
                             f"{', ...' if len(changed) > 3 else ''}); {advice}")

    refuse_differences(flat_keys(to_dict(run.read_config())), str(run.config_path), advice)
    if run.state_path.exists():
        recorded = run.read_training_state().get("config")  # states written before it was recorded: none
        if isinstance(recorded, str):  # read as config.yaml is: later keys get their defaults, old names upgraded
            recorded_config = config_from_record(json.loads(recorded), str(run.state_path))
            refuse_differences(flat_keys(to_dict(recorded_config)), f"the config {run.state_path} was trained with",
                               f"{run.config_path} was edited after the training started; restore it, or train "
                               "a new run")


def check_same_backbone(run: RunDir, config: Config, encoder: torch.nn.Module | None) -> None:
    """End to end, `--resume` continues with the backbone the run started with: backbone.weights may move,
    but adapters trained inside one VideoMAE mean nothing inside another."""
    if not config.end_to_end or not run.recipe_path.is_file():
        return
    recorded = read_sidecar(run.recipe_path).weights_sha256
    if recorded != getattr(encoder, "weights_sha256", None):
        raise InputError(f"--resume: the backbone {config.backbone.weights} is not the one {run.path} was trained with "
                         f"(sha256 {getattr(encoder, 'weights_sha256', None)}, the run recorded {recorded}); "
                         "backbone.weights may move between resumes, not change")


def check_same_recipes(run: RunDir, config: Config, video_id: str) -> None:
    """`--resume` may find the features moved (data.features), not made another way: epochs of one backbone's
    features continued on another's would train one network on two inputs, and rewrite the run's recipe.
    Each stream's training features (those of `video_id`) are checked against the recipe the run recorded."""
    for index, stream in enumerate(config.data.input_streams()):
        recorded = run.stream_recipe_path(None if index == 0 else stream.name)
        now = feature_recipe(stream, video_id)
        if now is None or not recorded.is_file():
            continue
        differences = recipe_differences(now, read_sidecar(recorded))
        if differences:
            side = sidecar_path(stream_path(stream, video_id))
            raise InputError(f"--resume: {side}: these features were made with another recipe than {run.path} was "
                             f"trained on ({recorded}): {'; '.join(differences)}; data.features may move between "
                             "resumes, not change (train a new run on these features)")


@dataclass
class TrainingData:
    """What a training reads before anything is written: the labelled (and pseudo-labelled) training videos,
    the val videos, and what is fitted on the training videos alone."""

    classes: list[str]
    train_split: SplitData  # labelled videos first, then the pseudo-labelled ones
    val_split: SplitData
    labelled_videos: int
    second_opinion: SecondOpinion | None  # postprocess.second_opinion
    balancer: ClassBalancer
    anchors: list[tuple[int, int]]  # (video index, segment index) entries that anchor crops
    anchor_labels: np.ndarray  # the class of each anchor
    transforms: CropTransforms | None  # None: no crop transform active, crops are cut exactly
    tuned_on: str | None  # the split the score threshold is tuned on: data.val_split; None: it has no video
    empty_test: str | None  # data.test_split where it has no video (SMG's challenge labels no test subject)


@dataclass
class Optimisation:
    """The networks and the optimiser state of a training, and its schedule of steps."""

    model: torch.nn.Module  # the trained weights (the detector, or end to end the adapted backbone + detector)
    ema: torch.nn.Module  # their running average: validated, selected and detected with
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    criterion: DetectionLoss
    step: TrainStep
    steps_per_epoch: int
    total_steps: int


def _train(config: Config, run: RunDir, resume: bool, log, progress: bool, inputs: list[Path],
           pseudo_samples: list[VideoSample] = (), pseudo_record: dict | None = None,
           encoder: torch.nn.Module | None = None, on_metrics: Callable[[dict], None] | None = None) -> TrainResult:
    started = time.time()
    rank, world = process_rank()
    device = process_device(config.train.device)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    say = log if is_main else (lambda *_: None)
    if config.train.batch_size % world:
        raise InputError(f"train.batch_size={config.train.batch_size} must be divisible by the {world} processes "
                         f"(each trains on an equal share of every batch): --set train.batch_size={world} or a "
                         f"multiple of {world}")
    _check_start(config, run, resume, inputs, encoder)
    data = _training_data(config, run, resume, inputs, say, pseudo_samples, device)
    if resume and run.classes_path.is_file():  # data.annotations may move between a run and its --resume
        check_same_classes(run, data.classes, config.data.annotations)
    if is_main:
        _write_run_header(config, run, data, resume, encoder, pseudo_record, say)
    opt = _optimisation(config, data, encoder, device, rank, world)
    start_epoch, best = 0, {"epoch": -1, "value": -math.inf, "metrics": {}}
    if resume:
        start_epoch, best = _restore(config, run, opt, data.balancer, say)
        if is_main:
            run.keep_metrics_before(start_epoch)

    metrics = MetricsLog(run, enabled=is_main, listener=on_metrics, steps_done=opt.step.steps_done)
    epochs = config.train.epochs
    say(_plan_line(config, data, opt, len(pseudo_samples), device, world))
    if config.train.compile:
        say("train.compile: the first step compiles the network (1-3 minutes the first time on a CPU, about 20 s "
            "once inductor's cache holds it)")
    if metrics.tensorboard is not None:
        say(f"TensorBoard: tensorboard --logdir {shell_word(metrics.tensorboard_dir)}")
    bar = _progress(opt.total_steps, opt.step.steps_done, enabled=progress and is_main)
    say = _beside_bar(say, bar)
    try:
        for epoch in range(start_epoch, epochs):
            record = _train_epoch(config, epoch, data, opt, metrics, bar)
            line = _epoch_line(record, epochs)
            last_epoch = epoch == epochs - 1
            if is_main and ((epoch + 1) % config.train.eval_every == 0 or last_epoch) and data.val_split.samples:
                result, validated = _validated(config, epoch, data, opt, metrics)
                best, mark = _selected(config, run, epoch, opt, result, best)
                line += validated + mark
            say(line)  # one line per epoch, validated or not
            if is_main:
                _write_checkpoint(config, run, epoch, opt, data.balancer, best)
            if world > 1:
                dist.barrier()
    finally:
        # also when training stops (a non-finite loss, Ctrl-C): the bar's frame is erased before the message that
        # follows (it was glued to the frame: "...lr=3.00e-03]mgrec: error: ..."), the TensorBoard logs flushed
        if bar is not None:
            bar.close()
        metrics.close()
    if is_main:
        best = _write_tuning(config, run, data, opt, best, say)
    return TrainResult(run.path, best["epoch"], best["metrics"], time.time() - started, epochs=epochs,
                       select_metric=config.train.select_metric, select_checkpoint=config.train.select_checkpoint,
                       tuned_on=data.tuned_on, rank=rank, first_epoch=start_epoch,
                       class_thresholds=best.get("class_thresholds"), empty_test=data.empty_test)


def _plan_line(config: Config, data: TrainingData, opt: Optimisation, pseudo_videos: int, device: torch.device,
               world: int) -> str:
    """The line printed before the first epoch: what trains on what, how many epochs of how many steps, where."""
    epochs = config.train.epochs
    return (
        f"training {config.model.variant} on {counted(data.labelled_videos, 'video')}"
        + (f" + {pseudo_videos} pseudo-labelled" if pseudo_videos else "")
        + f" ({len(data.anchors)} crop anchors), "
        f"validating on {counted(len(data.val_split.samples), 'video')}; {counted(epochs, 'epoch')} x "
        f"{counted(opt.steps_per_epoch, 'step')} on {device}"
        + (f" x {world} processes" if world > 1 else "")
        + ("; the epoch is numbered 0" if epochs == 1 else f"; epochs are numbered 0-{epochs - 1}")
        + ", as in metrics.jsonl; scores printed in percent"
    )


def _epoch_line(record: dict, epochs: int) -> str:
    """An epoch's printed line, of its metrics.jsonl `record` (validation adds its part: `_validated`, `_selected`);
    the epoch's number right-aligned to the width of the last one's."""
    return (f"epoch {record['epoch']:>{len(str(epochs - 1))}}  loss {record['loss']:.4f} "
            f"(cls {record['cls_loss']:.4f}, reg {record['reg_loss']:.4f})  lr {record['lr']:.2e}  "
            f"{record['seconds']:.1f} s")


def _check_start(config: Config, run: RunDir, resume: bool, inputs: list[Path], encoder) -> None:
    """A new run starts in a folder holding no run; a --resume continues one, with its own config and backbone."""
    if not resume:
        run.check_fresh_start([*inputs, Path(config.data.annotations)])
        return
    if not run.can_resume():
        held = run.results_held()  # an ensemble has no training state: starting without --resume is refused too
        raise InputError(f"--resume: {run.state_path} not found, nothing to resume "
                         + (f"({run.path} holds {held})" if held else "(start without --resume)"))
    check_same_config(run, config)
    check_same_backbone(run, config, encoder)


def _training_data(config: Config, run: RunDir, resume: bool, inputs: list[Path], say,
                   pseudo_samples: list[VideoSample], device: torch.device) -> TrainingData:
    """The training and val videos, read and checked, and what is fitted on the training videos: the second
    opinion's classifier (labelled videos only), the class balancer, the crop anchors and the crop transforms."""
    annotations, excluded = checked_annotations(config, log=say, source=str(inputs[0]) if inputs else "config")
    classes = annotations.classes
    if config.model.num_classes != len(classes):
        raise InputError(f"model.num_classes={config.model.num_classes} but {config.data.annotations} "
                         f"has {counted(len(classes), 'class')}")
    training_videos = [v for v in annotations.video_ids(config.data.train_split) if v not in excluded]
    if resume:
        val_videos = [v for v in annotations.video_ids(config.data.val_split) if v not in excluded]
        check_same_videos(run, config, training_videos, val_videos)
    if resume and not config.end_to_end and training_videos:  # before every video is read
        check_same_recipes(run, config, training_videos[0])
    train_split = load_split(config, annotations, config.data.train_split, excluded)
    val_split = load_split(config, annotations, config.data.val_split, excluded)
    if not train_split.samples:
        raise InputError(f"{config.data.annotations}: no videos in the training split {config.data.train_split!r}")
    if resume:
        check_same_labels(run, config, [*train_split.samples, *val_split.samples], classes)
    labelled_videos = len(train_split.samples)
    # the whole-gesture classifier (postprocess.second_opinion): fitted on the labelled train gestures, as the
    # network reads them; deterministic, so a resumed run fits the same one
    second_opinion = None
    if config.postprocess.second_opinion > 0:
        classifier = SegmentClassifier.fit([(s.features, s.segments, s.labels) for s in train_split.samples],
                                           len(classes))
        second_opinion = SecondOpinion(classifier, config.postprocess.second_opinion)
    train_split.samples.extend(pseudo_samples)  # trained on like any video: crops, balancing, transforms
    balancer = ClassBalancer(config.balance, class_counts(train_split.samples, len(classes)))
    anchors, anchor_labels = crop_anchors(train_split.samples, balancer.replication())
    transforms = CropTransforms(config.transforms, train_split.samples, len(classes))
    # refuse, with numbers, a validation video that cannot fit before anything is written or built (the batch
    # was asked before the run folder was made, `check_batch_fits`; the backbone of end-to-end training is
    # planned by its builder, `mgrec.extract.adapter_memory.check_training_memory`)
    if val_split.samples and device.type == "cpu":  # validation detects in whole videos
        longest = max(val_split.samples, key=lambda sample: len(sample.features))
        check_fits(config.model, len(longest.features), 1, training=False, what=f"validating on video "
                   f"{longest.video_id}", parameters=count_parameters(config.model), device=device)
    return TrainingData(classes, train_split, val_split, labelled_videos, second_opinion, balancer, anchors,
                        anchor_labels, transforms if transforms.active else None,
                        config.data.val_split if val_split.samples else None,
                        test if (test := config.data.test_split) and not annotations.video_ids(test) else None)


def _write_run_header(config: Config, run: RunDir, data: TrainingData, resume: bool, encoder, pseudo_record,
                      say) -> None:
    """The run's files written before its first epoch: format, config, classes, the splits record (a fresh start's;
    a resumed run keeps its own), the second opinion's classifier, the feature recipes (which `mgrec detect`
    follows to extract a raw video's features the same way) and the pseudo-label record; a fresh start first
    removes what an earlier start that never checkpointed wrote, and every start a killed writer's half-written
    files."""
    run.path.mkdir(parents=True, exist_ok=True)
    run.remove_temporary_files()  # half-written by a killed writer; never read
    if not resume:
        run.remove_an_earlier_start()  # its metrics log, and every file this start may not write again
    run.write_format()
    run.write_config(config)
    run.write_classes(data.classes)
    if not resume:  # a resumed run keeps the record it started with (`check_same_videos`); one started before
        run.write_splits(splits_record(config, data))  # format 14 gets none: today's splits are not what it trained on
    if data.second_opinion is not None:
        run.write_second_opinion(data.second_opinion.classifier)
    # the grid stream's recipe in feature_recipe.json, each other stream's in feature_recipe_<name>.json
    first = data.train_split.samples[0]
    if config.end_to_end:
        run.write_recipe(dataclasses.asdict(end_to_end_recipe(config, encoder, first.grid.fps)))
        if config.backbone.random_init:
            say(f"warning: backbone.random_init: the backbone {config.backbone.weights} has random weights "
                f"(seed {config.seed}); its features mean nothing for real video")
    else:
        for index, stream in enumerate(config.data.input_streams()):
            recipe = feature_recipe(stream, first.video_id)
            if recipe is not None:
                run.write_recipe(dataclasses.asdict(recipe), stream=None if index == 0 else stream.name)
    if pseudo_record is not None:
        run.write_pseudo_labels(pseudo_record)


def splits_record(config: Config, data: TrainingData) -> dict:
    """What the run trains and validates on, by video id (`RunDir.write_splits`), pseudo-labelled videos aside, and
    the hash of each one's labels (`labels_digests`)."""
    labelled = data.train_split.samples[:data.labelled_videos]
    return {"annotations": str(config.data.annotations),
            "annotations_resolved": str(resolve_path(config.data.annotations)),
            "train_split": config.data.train_split,
            "train": [s.video_id for s in labelled],
            "val_split": config.data.val_split, "val": [s.video_id for s in data.val_split.samples],
            "labels": labels_digests([*labelled, *data.val_split.samples], data.classes)}


def labels_digests(samples: list[VideoSample], classes: list[str]) -> dict[str, str]:
    """Per video, a short hash of its ground truth as training reads it: each segment's bounds on the feature grid
    and its class's name."""
    return {sample.video_id: segments_digest((start, end, classes[int(label)]) for (start, end), label
                                             in zip(sample.segments.tolist(), sample.labels.tolist()))[:16]
            for sample in samples}


def check_same_labels(run: RunDir, config: Config, samples: list[VideoSample], classes: list[str]) -> None:
    """A resumed run continues on the labels it started on (`splits_record`'s hashes; runs written before them have
    none): annotations whose gestures were relabelled, moved or removed since (the same videos and splits) trained
    one model on two sets of labels, and chose its best epoch across two sets of val labels, without a word."""
    record = run.read_splits()
    recorded = (record or {}).get("labels")
    if not recorded:
        return
    changed = [video for video, digest in labels_digests(samples, classes).items()
               if video in recorded and recorded[video] != digest]
    if changed:
        shown = ", ".join(brief(v) for v in changed[:3]) + (", ..." if len(changed) > 3 else "")
        raise InputError(f"--resume: the labels of {len(changed)} video(s) in {config.data.annotations} changed since "
                         f"the run started ({shown}; {run.splits_path} holds a hash of each video's labels): resume "
                         "with the annotations it started with, or start a new run")


def check_same_pool(run: RunDir, config: Config, files: list[Path]) -> None:
    """A resumed run goes on training on the unlabelled videos it started on (the videos of its pseudo_labels.json;
    a run recorded before them has none): a pool that gained or lost videos since changes the number of steps of
    every later epoch (an epoch is `crops_per_video` crops of each video), the learning-rate schedule with them,
    and the record of what the run trained on. Refused before the pool is labelled."""
    if not run.pseudo_labels_path.is_file():
        return
    recorded = read_json(run.pseudo_labels_path, "pseudo-label record")
    started = recorded.get("videos") if isinstance(recorded, dict) else None
    if not isinstance(started, dict):
        return
    now = [video_id_of(path, config.data.feature_prefix) for path in files]
    change = _change_words(list(started), now)
    if change:
        raise InputError(f"--resume: {UNLABELED}: {config.pseudo_labels.unlabeled} holds other videos than the "
                         f"{len(started)} the run started on ({run.pseudo_labels_path}): {change}; resume with the "
                         "pool it started on, or start a new run")


def _change_words(before: list[str], now: list[str]) -> str:
    """How a list of videos changed, in words: the videos added and removed (three of each named), or "reordered"
    (the same videos in another order); "" when it is the same list."""
    if before == now:
        return ""
    started, current = set(before), set(now)
    added = [v for v in now if v not in started]
    removed = [v for v in before if v not in current]
    return "; ".join(f"{how} {', '.join(brief(v) for v in listed[:3])}{', ...' if len(listed) > 3 else ''}"
                     for how, listed in (("now also", added), ("no longer", removed)) if listed) or "reordered"


def check_same_videos(run: RunDir, config: Config, training_videos: list[str], val_videos: list[str] | None = None,
                      asked: str = "--resume",
                      advice: str = "resume with the annotations it started with, or start a new run") -> None:
    """A resumed run continues on the videos it started on (its splits record; runs started before format 14 have
    none): annotations whose splits were redrawn since would train one model on two sets of videos. And it goes on
    validating on the videos it validated on (`val_videos`, when given): the epochs before were selected on those,
    and a best epoch chosen across two val sets compares scores of different videos (a video moved from val to
    test then scored the checkpoint it chose). `asked`, `advice`: as `check_same_config`'s."""
    record = run.read_splits()
    if record is None:
        return
    for key, split, videos, what in (("train", config.data.train_split, training_videos, "started on"),
                                     ("val", config.data.val_split, val_videos, "validated on (its epochs so far "
                                                                                "were selected on them)")):
        change = "" if videos is None else _change_words(record[key], videos)
        if not change:
            continue
        raise InputError(f"{asked}: split {split!r} of {config.data.annotations} is not the "
                         f"{counted(len(record[key]), 'video')} the run {what} ({run.splits_path}): {change}; {advice}")


def _optimisation(config: Config, data: TrainingData, encoder, device: torch.device, rank: int,
                  world: int) -> Optimisation:
    """The network (seeded: its initial weights are the seed's), its EMA copy, AdamW and the warm-up + cosine
    schedule over the training's steps, and the step that ties them together."""
    seed_everything(config.seed)
    detector = build_detector(config.model).to(device)
    model = EndToEndDetector(encoder.to(device), detector) if config.end_to_end else detector
    ema = ema_copy(model)
    network = model
    if world > 1:
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    network = training_network(network, config.train.compile)
    optimizer = torch.optim.AdamW(model.param_groups(config.train.weight_decay), lr=config.train.lr)
    crops_per_epoch = config.train.crops_per_video * len(data.train_split.samples)
    steps_per_epoch = max(1, crops_per_epoch // config.train.batch_size)
    total_steps = steps_per_epoch * config.train.epochs
    warmup_steps = steps_per_epoch * config.train.warmup_epochs
    final = config.train.final_lr_fraction
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup_steps, total_steps, final))
    criterion = DetectionLoss(config.train)
    points = training_points(detector, config, device)
    step = TrainStep(model, network, ema, optimizer, scheduler, criterion, points, config, device, rank, world,
                     compiled_unchecked=config.train.compile and world == 1)
    return Optimisation(model, ema, optimizer, scheduler, criterion, step, steps_per_epoch, total_steps)


def _restore(config: Config, run: RunDir, opt: Optimisation, balancer: ClassBalancer, say) -> tuple[int, dict]:
    """--resume: the training state of the last finished epoch loaded into `opt` and `balancer`; returns the
    epoch to go on with and the best epoch so far."""
    state = run.read_training_state()
    load_into(opt.model, state["model"], run.state_path, upgrade=upgrade_state_dict)
    load_into(opt.ema, state["ema"], run.state_path, upgrade=upgrade_state_dict)
    opt.optimizer.load_state_dict(state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    opt.criterion.loss_norm = float(state["loss_norm"])
    start_epoch, opt.step.steps_done = int(state["epoch"]) + 1, int(state["step"])
    best = json.loads(state["best"])
    balancer.load_state(json.loads(state["balance"]) if "balance" in state else None)
    # The best weights so far must be the epoch the state selected (or the epoch about to be redone: a kill between
    # its best and its state); they are not written again unless a later epoch beats them, so a run resumed without
    # them finished with a postprocess.json selecting weights that are gone (exit 0, "selected epoch 4").
    problem = _best_weights_problem(run, best, redone=start_epoch)
    if problem is not None:
        if start_epoch >= config.train.epochs and run.postprocess_path.exists():
            raise InputError(f"--resume: {run.path} finished training, but {problem} (epoch {best['epoch']}'s "
                             "weights, selected on val); the run cannot detect without it: put the file back, or "
                             "train a new run")
        raise InputError(f"--resume: {run.path} selected epoch {best['epoch']} as the best on val so far, but "
                         f"{problem}; resumed, it would finish without the weights it selects: put the file back, or "
                         "train a new run")
    say(f"resuming {run.path} after epoch {start_epoch - 1} (step {opt.step.steps_done})")
    return start_epoch, best


def _best_weights_problem(run: RunDir, best: dict, redone: int | None = None) -> str | None:
    """What is wrong with the run's best weights for the `best` epoch selected so far (missing, unreadable, another
    epoch's), or None; weights of the epoch `redone` are taken too (rewritten when it is validated again)."""
    if best["epoch"] < 0:  # nothing selected yet
        return None
    try:
        _, metadata = run.read_weights("best")
    except InputError as exc:
        return str(exc)
    epoch = metadata.get("epoch")
    if epoch == best["epoch"] or (redone is not None and epoch == redone):
        return None
    return f"{run.weights_path('best')} holds the weights of epoch {epoch}"


def _train_epoch(config: Config, epoch: int, data: TrainingData, opt: Optimisation, metrics: MetricsLog,
                 bar) -> dict:
    """One epoch of steps on crops drawn for it (seeded by (seed, epoch): a resumed run draws the same ones);
    returns its metrics.jsonl record (mean losses, learning rate, seconds)."""
    opt.model.train()
    rng = np.random.default_rng([config.seed, epoch])
    torch.manual_seed(config.seed * 1000 + epoch)
    transform_rng = np.random.default_rng([config.seed, epoch, 1])
    balancer, batch_size = data.balancer, config.train.batch_size
    crops = draw_training_crops(
        data.train_split.samples, data.anchors, opt.steps_per_epoch * batch_size, config.data.max_seq_len, rng,
        anchor_probabilities(data.anchor_labels, balancer.weights()),
    )
    if config.balance.method != "none":
        metrics.write({"kind": "balance", "epoch": epoch, "step": opt.step.steps_done, "method": config.balance.method,
                       "class_weights": balancer.effective_weights(), "crop_shares": balancer.crop_shares()})
    epoch_started, sums = time.time(), {"loss": 0.0, "cls_loss": 0.0, "reg_loss": 0.0}
    for i in range(opt.steps_per_epoch):
        # every process draws the same global batch and keeps its share of it (inside `step`)
        batch = make_batch(data.train_split.samples, crops[i * batch_size : (i + 1) * batch_size],
                           config.data.max_seq_len, config.data.crop_keep_fraction, data.transforms, transform_rng)
        parts = opt.step(batch)
        for key, value in (("loss", parts.total), ("cls_loss", parts.cls), ("reg_loss", parts.reg)):
            sums[key] += float(value.detach())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                epoch=epoch, loss=f"{float(parts.total.detach()):.3f}", lr=f"{opt.scheduler.get_last_lr()[0]:.2e}"
            )
    record = {
        "kind": "train",
        "epoch": epoch,
        "step": opt.step.steps_done,
        "lr": opt.scheduler.get_last_lr()[0],
        "seconds": round(time.time() - epoch_started, 3),
    }
    record.update({k: v / opt.steps_per_epoch for k, v in sums.items()})
    metrics.write(record)
    balancer.update(*opt.step.take_class_stats())
    return record


def _validated(config: Config, epoch: int, data: TrainingData, opt: Optimisation,
               metrics: MetricsLog) -> tuple[dict, str]:
    """Validates the EMA weights on val (threshold tuned there) and logs the scores; returns them and the epoch
    line's val part."""
    val_started = time.time()
    result, _ = validate(opt.ema, data.val_split, config, data.classes, data.second_opinion)
    metrics.write(
        {
            "kind": "val",
            "epoch": epoch,
            "step": opt.step.steps_done,
            **{k: result[k] for k in ("f1", "precision", "recall", "f1_miga", "average_mAP", "score_threshold")},
            **({} if result["class_thresholds"] is None else {"class_thresholds": result["class_thresholds"]}),
        }
    )
    line = (
        f"  | val F1 {_percent(result['f1'])}  F1 MiGA {_percent(result['f1_miga'])}  "
        f"average mAP {_percent(result['average_mAP'])}  threshold {result['score_threshold']:.3f}"
        f"{'' if result['class_thresholds'] is None else ' (and per class)'}  "
        f"{time.time() - val_started:.1f} s"
    )
    return result, line


def _selected(config: Config, run: RunDir, epoch: int, opt: Optimisation, result: dict, best: dict) -> tuple[dict, str]:
    """Keeps the validated epoch's weights as the run's "best" ones when train.select_checkpoint says so (the epoch
    that beats the best so far, or the last one); returns the best epoch so far and the mark its line then ends
    with ("" when the earlier one stays)."""
    if config.train.select_checkpoint == "best":
        keep, mark = _better_epoch(config.train.select_metric, result, best), f"  best {config.train.select_metric}"
    else:  # "last": the last epoch, validated for its score threshold
        keep, mark = epoch == config.train.epochs - 1, "  kept: the last epoch"
    if not keep:
        return best, ""
    best = {
        "epoch": epoch,
        "value": result[config.train.select_metric],
        "metrics": {k: result[k] for k in ("f1", "f1_miga", "average_mAP", "score_threshold")},
        "class_thresholds": result["class_thresholds"],
    }
    run.write_weights("best", opt.model, opt.ema, checkpoint_record(config, epoch, best["metrics"]))
    return best, mark


# The other measure, which decides between epochs of the same select_metric: on a small val set F1 is a ratio of
# small counts, and epochs often tie in it exactly (in the worked example, epoch 4 at 85 mAP and epoch 9 at 100).
TIE_BREAK_METRIC = {"f1": "average_mAP", "average_mAP": "f1"}


def _better_epoch(select_metric: str, result: dict, best: dict) -> bool:
    """Whether this epoch's val result beats the best so far: a higher select_metric, or the same and a higher
    tie-break metric (the earlier epoch is kept when both tie)."""
    tie_break = TIE_BREAK_METRIC[select_metric]
    return (result[select_metric], result[tie_break]) > (best["value"], best["metrics"].get(tie_break, -math.inf))


def checkpoint_record(config: Config, epoch: int, metrics: dict | None = None) -> dict:
    """What a checkpoint's metadata records: its epoch, its val metrics when validated (the score threshold tuned
    with it among them), and the config it was trained with (`RunDir.check_weights_match` compares them with the
    run's postprocess.json and config.yaml when the weights are loaded)."""
    return {"epoch": epoch, **(metrics or {}), "config": to_dict(config)}


def _write_checkpoint(config: Config, run: RunDir, epoch: int, opt: Optimisation, balancer: ClassBalancer,
                      best: dict) -> None:
    """The epoch's "last" weights and the training state --resume continues from."""
    run.write_weights("last", opt.model, opt.ema, checkpoint_record(config, epoch))
    # one file holds everything --resume needs, so a kill can never pair weights of one
    # epoch with optimiser state of another
    run.write_training_state(
        {
            "epoch": epoch,
            "step": opt.step.steps_done,
            "model": opt.model.state_dict(),
            "ema": opt.ema.state_dict(),
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(),
            "loss_norm": opt.criterion.loss_norm,
            "best": json.dumps(best),
            "balance": json.dumps(balancer.state()),
            "config": json.dumps(to_dict(config)),  # what --resume must continue (config.yaml can be edited)
        }
    )


def _write_tuning(config: Config, run: RunDir, data: TrainingData, opt: Optimisation, best: dict, say) -> dict:
    """After the last epoch: postprocess.json, the selected epoch's score threshold(s) and where they were
    tuned (written last, it marks the run finished); without a val split the last weights are selected, with
    the configured threshold. Returns the selected epoch's record."""
    if not data.val_split.samples:
        last = config.train.epochs - 1
        run.write_weights("best", opt.model, opt.ema, checkpoint_record(config, last))
        best = {
            "epoch": last,
            "value": None,
            "metrics": {"score_threshold": config.postprocess.score_threshold},
            "class_thresholds": config.postprocess.class_thresholds,
        }
        say("no val split: keeping the last epoch and the configured score threshold")
    problem = _best_weights_problem(run, best)
    if problem is not None:  # removed or replaced while the run trained: postprocess.json would mark it finished
        raise InputError(f"{problem}, but training selected epoch {best['epoch']} as the best on val (the file was "
                         "removed or replaced while the run trained, or, resumed after a kill between an epoch's best "
                         "weights and its state, that epoch trained again did not win again: on a machine whose "
                         f"training is not deterministic); {run.path} is not finished, and cannot detect without it: "
                         "train a new run")
    never = _never_above_zero(config, run, data, best)
    if never is not None:
        say(never)
    # class thresholds: tuned with the threshold (per_class), else none; a resumed run's record from before has none
    run.write_selection(config, best["metrics"]["score_threshold"], best.get("class_thresholds"), best["epoch"],
                        data.tuned_on)
    return best


def _never_above_zero(config: Config, run: RunDir, data: TrainingData, best: dict) -> str | None:
    """The warning for a run whose every validation (those before a --resume too, in metrics.jsonl) scored F1 0 and
    average mAP 0: the epoch kept is the first of equal zeros (`_better_epoch`'s tie rule), or the last, and its
    score threshold was tuned where no threshold found anything; said nowhere before, the summary read as a
    selection. None where a validation scored above 0, or there was none."""
    val = [record for record in run.read_metrics() if record.get("kind") == "val"]
    if not val or any(record.get("f1", 0) > 0 or record.get("average_mAP", 0) > 0 for record in val):
        return None
    epochs = sorted({record["epoch"] for record in val})
    listed = ", ".join(map(str, epochs[:6])) + (", ..." if len(epochs) > 6 else "")
    when = (f"its one validation, epoch {epochs[0]}" if len(epochs) == 1
            else f"each of its {len(epochs)} validations, epochs {listed}")
    videos = len(data.val_split.samples)
    of = "its one video" if videos == 1 else f"its {videos} videos"
    kept = (f"epoch {best['epoch']} is kept, the one validated" if len(epochs) == 1
            else f"epoch {best['epoch']} is kept as the last" if config.train.select_checkpoint == "last"
            else f"epoch {best['epoch']} is kept only as the first of equal zeros")
    return (f"warning: val never scored above 0 (F1 0 and average mAP 0 at {when}): no detection matched a gesture "
            f"of {of}; {kept}, so the selection and the score threshold tuned on val mean nothing. Check for too few "
            f"epochs to learn (train.epochs {config.train.epochs}, train.warmup_epochs {config.train.warmup_epochs}), "
            "the data (`mgrec data check`: features and annotations of other videos, rates or classes?), and "
            "thresholds that drop every candidate before the ranked list (postprocess.pre_nms_thresh "
            f"{config.postprocess.pre_nms_thresh:g}, postprocess.min_score {config.postprocess.min_score:g}, "
            f"postprocess.min_duration {config.postprocess.min_duration:g})")


def training_points(model: torch.nn.Module, config: Config, device: torch.device):
    """The points of the pyramid of a training crop, with their regression ranges."""
    crop_len = config.data.max_seq_len
    with torch.no_grad():
        probe = model(
            torch.zeros(1, config.model.input_dim, crop_len, device=device),
            torch.ones(1, 1, crop_len, dtype=torch.bool, device=device),
        )
    return make_points([m.shape[1] for m in probe.masks], probe.strides, config.model.regression_ranges).to(device)


def _progress(total: int, initial: int, enabled: bool):
    """A step bar on stderr, or None. Whether a bar suits the output (a terminal, not a log file) is the
    caller's choice: `mgrec train` shows one only when stdout and stderr are terminals."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)


def _beside_bar(log, bar):
    """`log` that clears the bar before a line and redraws it after, so no line is glued to a bar frame."""
    if bar is None:
        return log

    def write(*args) -> None:
        with bar.external_write_mode():
            log(*args)

    return write
