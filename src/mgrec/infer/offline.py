"""Offline detection: a trained run in, named micro-gestures out.

    detector = OfflineDetector.from_run("runs/demo-mgrec")
    detections = detector.detect("features/video.npy")      # list[Detection], ranked by score
    final = detector.hard_set(detections)                    # the thresholded set used for F1

Precision (`precision=`, `mgrec detect --precision`): `auto` runs the network's forward pass under bf16
autocast on CUDA and in float32 on a CPU, also one with native bf16: with AMX bf16 makes SMG-sized models
0.70x as long but small ones no faster (`mgrec.devices.autocast_dtype`: pass `bf16` for large models
there), with AVX512-BF16 alone it makes them slower (1.2x); decoding and NMS are float32 either way. bf16
detections agree with float32 ones within stated tolerances (tests/infer/test_agreement.py); `fp32` gives
exactly the float32 detections. `detector.precision` says which ran ("bf16" or "fp32").
"""

from __future__ import annotations

import contextlib
import numbers
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from mgrec.config import Config, PostprocessConfig, check_postprocess
from mgrec.data.annotations import load_annotations
from mgrec.data.features import (
    FPS_TOLERANCE,
    RECIPE_FIELDS,
    FeatureSidecar,
    check_feature_array,
    check_run_recipe,
    check_sidecar,
    check_unchanged,
    feature_path,
    feature_rows,
    given_array,
    list_feature_files,
    read_sidecar,
    recipe_differences,
    sidecar_mismatches,
    sidecar_path,
    source_stamp,
    video_id_of,
)
from mgrec.data.normalize import standardizer
from mgrec.data.streams import (
    duration_tolerance,
    load_video_streams,
    member_streams_advice,
    stream_folder_advice,
    stream_key,
    stream_path,
)
from mgrec.devices import autocast_dtype, float32_default, precision_name, resolve_device
from mgrec.errors import InputError, RunError
from mgrec.evaluate.f1 import hard_set
from mgrec.files import brief, is_finite_real, listed, missing_file_problem, path_argument, resolve_path
from mgrec.model.detector import Detector
from mgrec.model.end_to_end import ADAPTED_BACKBONE
from mgrec.model.heads import Predictors
from mgrec.model.load import load_run_network
from mgrec.model.memory import check_fits
from mgrec.postprocess.detection_fusion import FUSION_IOU, _fuse_detections
from mgrec.postprocess.second_opinion import SecondOpinion, run_second_opinion
from mgrec.postprocess.video import Chunking, detect_video
from mgrec.records import Detection, check_class_list, checked_video_id
from mgrec.run import RunDir
from mgrec.smg_csv import checked_fps
from mgrec.timeline import FeatureGrid

# Videos longer than this are detected in overlapping windows (`Chunking`): one window of 8192 steps
# needs about 1 GB at SMG width (`mgrec.model.memory`), whatever the video's length. 8192 steps are
# 20 min at SMG's 7 steps/s, so SMG's 12-15 min videos and the demo's are always one pass.
LONG_VIDEO_CHUNKING = Chunking(steps=8192, overlap=1024)

# What `check_unchanged` says of a feature file that changed while detection read it (a .npy is memory-mapped, its rows
# read as the network takes them; one replaced under its name keeps the old file's mapping).
DETECTED_CHANGED = ("its rows are read as detection goes (memory-mapped), so the detections made under its name may be "
                    "of the file it replaced, of a part of it, or of two versions of it: detect it again once it is "
                    "complete")


def check_read_unchanged(stamps: list[tuple[Path, str]]) -> None:
    """Every feature file a detection read (`stamps`, as `load_video_streams` fills them, each with its
    `source_stamp` from before its reading) as it was then, checked once the detections are made: a file replaced
    under the same name (renamed over, or `np.save` over it) while detection ran gave one file's detections under the
    other's name, exit 0. InputError of `check_unchanged` naming the first file changed."""
    for path, stamp in stamps:
        check_unchanged(path, stamp, DETECTED_CHANGED)


@dataclass
class OfflineDetector:
    """A trained run, loaded for detection: its network, config, classes and tuned post-processing."""

    model: torch.nn.Module = field(repr=False)  # a repr of the whole network buried the rest in a notebook
    config: Config
    classes: list[str]
    postprocess: PostprocessConfig  # includes the score threshold tuned on val (and the per-class ones, if any)
    run_dir: Path
    checkpoint: str = "best"
    threshold_tuned_on: str | None = None  # the split the score threshold was tuned on (None: the config's)
    autocast: torch.dtype | None = None  # the forward pass's autocast dtype (None: float32)
    chunking: Chunking | None = LONG_VIDEO_CHUNKING  # None: every video in one pass
    stream_folders: dict[str, Path] | None = None  # stream name -> folder replacing the run's (data.streams)
    # A detection-level ensemble (`mgrec ensemble`, fusion "detections"): its members, each a whole run
    # with its own network and inputs, whose ranked lists `detect` fuses (`model` is then None).
    members: list[OfflineDetector] | None = None
    fusion_iou: float = FUSION_IOU
    # Members that read their own feature files of each video, not the file given to `detect`: member index ->
    # the folder of its (grid stream's) files, named as that member reads them (`mgrec detect --member M=FOLDER`;
    # from videos, `mgrec detect` makes each member's features with the member's own recipe). An RGB run and a
    # skeleton run read different files of one video; without this every member read the one given.
    member_folders: dict[int, Path] | None = None
    # The run's whole-gesture classifier and its weight (`postprocess.second_opinion` > 0), else None.
    second_opinion: SecondOpinion | None = None
    # `run_dir` as an absolute path, taken when the detector is made (None: `run_dir` resolved then): its recipes are
    # read from there when the first file with a sidecar is checked, whatever the current folder is by then (after an
    # os.chdir a relative run_dir found none, and features of another recipe passed without a word), and outputs
    # record it as their `run`
    run_root: Path | None = None
    # the notes said to the user so far: each once per detector, however many files or streams it serves
    told: set[str] = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_arguments(self)  # also when dataclasses.replace makes one

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto",
                 precision: str = "auto") -> OfflineDetector:
        """Load a run directory written by `mgrec train` (EMA weights of the selected checkpoint).

        `device`: auto (CUDA when available), cpu, cuda or cuda:N. `precision`: auto (bf16 autocast
        on CUDA, float32 on a CPU), fp32 or bf16 (see the module docstring)."""
        if not isinstance(run_dir, (str, Path)):
            raise InputError(f"run_dir: expected the path of a run directory, got {brief(run_dir)}")
        run_dir = path_argument(run_dir, "run_dir")  # "~/runs/x" as the command line and the config files read it
        torch_device = resolve_device(device, what="device")
        autocast = autocast_dtype(torch_device, precision, what="precision")  # checked before loading
        run = RunDir(run_dir)
        ensemble = run.read_ensemble()
        if ensemble is not None and ensemble.get("fusion") == "detections":
            run.refuse_unfinished()  # (a single network's run: `load_run_network` asks it)
            return cls.fused_ensemble(run, ensemble, checkpoint, device, precision, autocast)
        config, classes, model = load_run_network(run, checkpoint)
        model = model.to(torch_device)
        tuned_on = _tuned_on(run)
        return cls(model, config, classes, run.read_postprocess(config), run.path, checkpoint, tuned_on,
                   autocast=autocast, second_opinion=run_second_opinion(run, config), run_root=resolve_path(run.path))

    @classmethod
    def fused_ensemble(cls, run: RunDir, ensemble: dict, checkpoint: str, device: str, precision: str,
                       autocast: torch.dtype | None) -> OfflineDetector:
        """The detector of a detection-level ensemble (`ensemble`: its run.json's record), also of one being
        made: `from_run` refuses an unfinished one, the ensemble's own tuning on val reads it
        (`infer.fused_ensemble`)."""
        if checkpoint != "best":
            raise InputError(f"{run.path} fuses its members' selected (best) checkpoints; --checkpoint {checkpoint} "
                             "does not apply")
        run.read_format_version()
        config = run.read_config()
        classes = run.read_classes(expected_count=config.model.num_classes)
        members = [cls.from_run(run.member_path(i), device=device, precision=precision)
                   for i in range(ensemble["members"])]
        for index, member in enumerate(members):
            if member.classes != classes:
                raise InputError(f"{run.member_path(index)}: its classes differ from the ensemble's {run.classes_path}")
        tuned_on = _tuned_on(run)
        return cls(None, config, classes, run.read_postprocess(config), run.path, checkpoint, tuned_on,
                   autocast=autocast, members=members,
                   fusion_iou=float(ensemble.get("iou_threshold", FUSION_IOU)))

    @property
    def precision(self) -> str:
        """The precision of the forward pass, as outputs record it: "bf16" or "fp32"."""
        return precision_name(self.autocast)

    def grid(self, fps: float | None = None) -> FeatureGrid:
        """The feature grid of a video at `fps` (the run's data.fps wins when set, as in training); a bad fps
        is refused."""
        return self.config.data.grid(checked_fps(fps))

    def refuse_another_fps_than_the_runs(self, given: float | None, what: str = "fps") -> None:
        """A run with data.fps places every feature step by it: a different fps given for a video (`what`:
        --fps on the command line, fps in Python) would have been ignored without a word."""
        run_fps = self.config.data.fps
        if given is not None and run_fps is not None and abs(run_fps - given) > FPS_TOLERANCE:
            raise InputError(f"{what} {given:g} contradicts the run's data.fps {run_fps:g} "
                             f"({RunDir(self.run_dir).config_path}), which places every feature step in time: "
                             f"leave {what} out")

    def detect(
        self, features: np.ndarray | str | Path, video_id: str | None = None, fps: float | None = None
    ) -> list[Detection]:
        """Ranked detections for one video, given its features (T, C) or a feature file.

        With several input streams (`data.streams`), the file is the grid stream's, and the other
        streams' files of the same video are read from their folders (`stream_folders`, else the
        run's config); an array holds every stream's channels, joined on the grid. A detection-level
        ensemble gives the input to every member, or to a member of `member_folders` its own file of
        the video (made with its own recipe), and fuses their ranked lists. `fps`: the video's frame
        rate; for a file, only where neither its sidecar nor the run's data.fps says it (and refused
        when it contradicts either, `file_fps`)."""
        fps = checked_fps(fps)
        video_id = checked_video_id(video_id, optional=True)
        if not isinstance(features, (str, os.PathLike)):  # the caller's, not an ensemble's member's
            features = given_array(features, "features", "a (T, C) numpy array or a feature file's path")
        else:  # "~/x.npy" as the command line reads it (and a members' ensemble gets the expanded path)
            features = path_argument(features, "features")
        if self.members is not None:
            return self._detect_fused(features, video_id, fps)
        self.refuse_another_fps_than_the_runs(fps)  # the caller's fps (the run's own videos: `detect_listed`)
        if not isinstance(features, np.ndarray):
            path = Path(features)
            video_id = video_id or video_id_of(path, self.config.data.feature_prefix)
            stamps = [(path, source_stamp(path))] if path.is_file() else []  # before its sidecar and rows are read
            fps = self.file_fps(path, fps)
            features = load_video_streams(self.config.data, video_id, fps, folders=self.stream_folders,
                                          main_path=path, check_recipe=self.check_stream_recipe, stamps=stamps)
            self.require_fps(path, fps)
            detections = self.detect_read(features, video_id, fps)
            check_read_unchanged(stamps)  # the rows used: every file read as it was when its reading began
            return detections
        # what a feature file passes (an empty, integer or NaN array reached the network)
        check_feature_array(features, "features", self.config.data.feature_dim)
        return self.detect_read(features, video_id, fps)

    def _detect_fused(self, features: np.ndarray | str | Path, video_id: str | None,
                      fps: float | None) -> list[Detection]:
        """A detection-level ensemble's `detect`: each member's input (`member_input`), the members' own files checked
        to hold one recording (`check_member_spans`) before any member detects, then the members' ranked lists fused.
        What a member refuses is said to be the member's (`_said_as_member`)."""
        inputs = []
        for index in range(len(self.members)):
            with self._said_as_member(index, features):
                inputs.append(self.member_input(index, features, video_id))
        if self.member_folders and isinstance(features, (str, os.PathLike)):  # files of their own: one video's?
            spans = []
            for index, (member, (path, _)) in enumerate(zip(self.members, inputs)):
                with self._said_as_member(index, features):
                    spans.append((path, feature_rows(Path(path)), member.grid(member.file_fps(Path(path), fps))))
            self.check_member_spans(spans, self._video_of(features, video_id))
        ranked = []
        for index, (member, (member_features, member_video)) in enumerate(zip(self.members, inputs)):
            with self._said_as_member(index, features):
                ranked.append(member.detect(member_features, member_video, fps))
        return _fuse_detections(ranked, self.fusion_iou)

    @contextlib.contextmanager
    def _said_as_member(self, index: int, features: np.ndarray | str | Path) -> Iterator[None]:
        """An InputError raised within, said to be member `index`'s (`member_refusal`); where it read the file given to
        all, with how to give it its own (an RGB and a skeleton member read different files)."""
        try:
            yield
        except InputError as exc:
            read_the_given = index not in (self.member_folders or {}) and isinstance(features, (str, os.PathLike))
            raise self.member_refusal(index, exc, read_the_given) from exc

    def member_refusal(self, index: int, exc: InputError, read_the_given: bool) -> InputError:
        """What member `index` of a detection-level ensemble refused (`detect`, and `mgrec stream` and `evaluate
        --online` through `mgrec.infer.stream.ensemble_source`), said to be the member's; where it read the file
        given to every member (`read_the_given`), how to give it its own (an RGB and a skeleton member read different
        files); and of a member 1 and up that reads several streams, how its other streams' folders are given:
        --stream names member 0's (and refused member 1's stream, whose missing file the message said to give so)."""
        if len(self.members) == 1:
            return exc
        message = str(exc)
        streams = self.members[index].config.data.input_streams()
        for stream in streams[1:] if index else ():
            message = message.replace(stream_folder_advice(stream.name), "detect and stream take member "
                                      f"{index}'s as {member_streams_advice(index, streams[0].name, stream.name)}")
        way = ""
        if index and read_the_given:
            way = (f"; where it reads other features than the file given, give their folder: --member "
                   f"{index}=FOLDER (from videos, `mgrec detect` makes each member's)")
        return InputError(f"member {index} of {self.run_dir} ({RunDir(self.run_dir).member_path(index)}): "
                          f"{message}{way}")

    def reading(self, stream_folders: dict[str, Path] | None = None, member_folders: dict[int, Path] | None = None,
                member_stream_folders: dict[int, dict[str, Path]] | None = None) -> OfflineDetector:
        """This detector reading the other streams' files from `stream_folders` (`detect` and `stream`: --stream, or
        made from videos) and, of a detection-level ensemble, member M's files from `member_folders[M]` and its other
        streams' from `member_stream_folders[M]`. The files given and `stream_folders` are member 0's: the ensemble's
        config is member 0's. Each folder is checked as the constructor checks it; the members are new detectors."""
        if self.members is None:
            if member_stream_folders:
                raise InputError(f"member_stream_folders: {self.run_dir} is no detection-level ensemble (it has no "
                                 "members): leave it out")
            return replace(self, stream_folders=stream_folders, member_folders=member_folders or None)
        streams = dict(member_stream_folders or {})
        streams[0] = {**(stream_folders or {}), **streams.get(0, {})}
        members = [replace(member, stream_folders=streams.get(index) or member.stream_folders)
                   for index, member in enumerate(self.members)]
        return replace(self, stream_folders=stream_folders, members=members, member_folders=member_folders or None)

    def check_member_spans(self, spans: list[tuple[Path | str, int, FeatureGrid]], video_id: str | None) -> None:
        """The members of a detection-level ensemble read one video each from their own file (`--member M=FOLDER`):
        every member's (file, rows, grid) covers the seconds member 0's covers, within what two streams of a run may
        differ by (`duration_tolerance`); a member's file of another or a truncated recording was fused without a
        word (its detections ending where its file ends)."""
        first, rows, grid = spans[0]
        expected = grid.covered_seconds(rows)
        for index, (path, own_rows, own) in enumerate(spans[1:], start=1):
            covered, tolerance = own.covered_seconds(own_rows), duration_tolerance(own, grid)
            if abs(covered - expected) > tolerance:
                raise InputError(
                    f"{path}: member {index} of {self.run_dir} reads video {video_id!r} there, {own_rows} steps "
                    f"covering {covered:.2f} s, but member 0's {first} covers {expected:.2f} s (tolerance "
                    f"{tolerance:.2f} s): a different or truncated recording, or a wrong fps/stride/window in its "
                    "sidecar or config")

    def member_input(self, index: int, features: np.ndarray | str | Path, video_id: str | None
                      ) -> tuple[np.ndarray | str | Path, str | None]:
        """What member `index` of a detection-level ensemble detects in, and the video's id: the input given, or the
        same video's file in the member's own folder (`member_folders`), found by the video's id: named as the member
        reads its files (with its data.feature_prefix), or as `mgrec extract` names them (without)."""
        folder = (self.member_folders or {}).get(index)
        if folder is None:
            return features, video_id
        if not isinstance(features, (str, os.PathLike)):
            raise InputError(f"features: member {index} of {self.run_dir} reads its own feature files (member_folders: "
                             f"{folder}), found by the video's name: give the feature file, not an array")
        video = self._video_of(features, video_id)
        grid_stream = self.members[index].config.data.input_streams()[0]
        named = [stream_path(grid_stream, video, {grid_stream.name: folder}),
                 feature_path(folder, video, grid_stream.feature_ext)]
        path = next((candidate for candidate in named if candidate.is_file()), None)
        if path is None:
            names = " or ".join(dict.fromkeys(candidate.name.replace(video, "<video>") for candidate in named))
            raise InputError(f"{named[0]}: no such file: the member reads video {video!r} there (its folder "
                             f"{folder}; its files are named {names}, made with its recipe, "
                             f"{RunDir(self.run_dir).member_path(index)}/feature_recipe.json)")
        return path, video

    def input_files(self, path: Path, video_id: str) -> list[Path]:
        """The feature files `detect` reads for video `video_id` given `path`, in order, without reading them: the
        file, the run's other streams' (`stream_folders`, else the config's), and of a detection-level ensemble each
        member's (`member_input`) and theirs. What an SMG label set records each label file to be made of
        (`mgrec.infer.label_set`), so that a resumed set keeps a file only for the input it was made of."""
        if self.members is None:
            streams = self.config.data.input_streams()
            return [Path(path), *(stream_path(stream, video_id, self.stream_folders) for stream in streams[1:])]
        files: list[Path] = []
        for index, member in enumerate(self.members):
            with self._said_as_member(index, path):
                files += member.input_files(Path(self.member_input(index, path, video_id)[0]), video_id)
        return list(dict.fromkeys(files))

    def _video_of(self, features: str | Path, video_id: str | None) -> str:
        """The id of the video of a feature file given to a detection-level ensemble: `video_id`, else the file's
        name read with the ensemble's (member 0's) data.feature_prefix."""
        return video_id or video_id_of(Path(features), self.config.data.feature_prefix)

    def detect_read(self, features: np.ndarray, video_id: str | None, fps: float | None) -> list[Detection]:
        """`detect` of features already read and checked (`listed_features`, `load_video_streams`): the values
        are not scanned a second time (anything else: `detect`). A detection-level ensemble gives them to each
        member's `detect` (which checks them) and fuses the lists, as `detect` does."""
        if (not isinstance(features, np.ndarray) or isinstance(features, np.ma.MaskedArray) or features.ndim != 2
                or features.dtype.kind != "f" or not len(features)):
            raise InputError(f"features: detect_read takes a (T, C) float array already checked, got "
                             f"{type(features).__name__} {getattr(features, 'shape', '')}; give it to detect instead")
        if self.members is not None:  # each member standardises them its own way
            return self._detect_fused(features, video_id, fps)
        # data.normalize = video: the whole video's statistics, applied window by window (no whole copy)
        return self._detect(features, video_id, fps, standardizer(self.config.data.normalize, features))

    def detect_inputs(self, inputs: np.ndarray, video_id: str | None = None,
                      fps: float | None = None) -> list[Detection]:
        """Ranked detections for one video given as the network takes it: its features (T, C) after
        `data.normalize` (what `mgrec.train.data.load_split` returns); `detect` takes them as read."""
        if self.members is not None:
            raise InputError("inputs: a detection-level ensemble's members may normalise differently: give it features "
                             "as read (detect)")
        inputs = given_array(inputs, "inputs", "a (T, C) numpy array")
        check_feature_array(inputs, "inputs", self.config.data.feature_dim)
        return self._detect(inputs, checked_video_id(video_id, optional=True), checked_fps(fps), None)

    def _detect(self, inputs: np.ndarray, video_id: str | None, fps: float | None,
                standardize: Callable[[np.ndarray], np.ndarray] | None) -> list[Detection]:
        one_pass = len(inputs) if self.chunking is None else min(len(inputs), self.chunking.steps)
        check_fits(self.config.model, one_pass, 1, training=False, what=f"video {video_id or 'video'}",
                   model=self.model)  # refused with numbers, not by the allocator
        with self.precision_scope():
            return detect_video(
                self.model,
                inputs.astype(np.float32, copy=False),
                self.grid(fps),
                self.postprocess,
                self.classes,
                video_id or "video",
                autocast=self.autocast,
                chunking=self.chunking,
                standardize=standardize,
                second_opinion=self.second_opinion,
            )

    def precision_scope(self) -> contextlib.AbstractContextManager:
        """Where the network runs under the detector's precision and nothing else: float32 tensors whatever torch's
        default dtype, and with `autocast` None (fp32) no autocast at all, where a caller's own `torch.autocast`
        ran the network in bf16 while `precision` and the outputs said fp32."""
        scope = contextlib.ExitStack()
        scope.enter_context(float32_default())
        if self.autocast is None:
            scope.enter_context(torch.autocast(next(self.model.parameters()).device.type, enabled=False))
        return scope

    def detect_listed(self, video_id: str, fps: float | None) -> list[Detection]:
        """Ranked detections for a video of the run's annotations, its features read from the run's folders
        (a detection-level ensemble: each member's from its own)."""
        if self.members is not None:
            return _fuse_detections([m.detect_listed(video_id, fps) for m in self.members], self.fusion_iou)
        fps = self.listed_fps(fps)
        stamps: list[tuple[Path, str]] = []
        detections = self.detect_read(self.listed_features(video_id, fps, stamps), video_id, fps)
        check_read_unchanged(stamps)
        return detections

    def listed_fps(self, annotated: float | None) -> float | None:
        """The fps a video of the run's annotations is placed by: the run's data.fps when set (as in training,
        where it wins over the annotations' own, e.g. 30 over NTSC's 29.97), else the annotated one."""
        return annotated if self.config.data.fps is None else None

    def listed_features(self, video_id: str, fps: float | None, stamps: list[tuple[Path, str]] | None = None
                        ) -> np.ndarray:
        """The (T, C) input of a video of the run's annotations, read from the run's folders; the grid stream's
        sidecar is checked against the run's recipe first, as for a file given to `detect` (features extracted
        again another way after training were scored without a word). `stamps`: where given, filled with every file
        read and its `source_stamp` from before (`check_read_unchanged` once the rows are used)."""
        grid_file = stream_path(self.config.data.input_streams()[0], video_id, self.stream_folders)
        if grid_file.is_file():
            if stamps is not None:
                stamps.append((grid_file, source_stamp(grid_file)))
            self.sidecar_fps(grid_file)
        return load_video_streams(self.config.data, video_id, fps, folders=self.stream_folders,
                                  check_recipe=self.check_stream_recipe, stamps=stamps)

    def sidecar_fps(self, path: Path) -> float | None:
        """The fps of a (grid stream's) feature file's sidecar, after checking its recipe against the run's config."""
        # a .json (.JSON) given as features is no sidecar of its own: opening it as features says what it is
        side = sidecar_path(path)
        if Path(path).suffix.lower() == ".json" or not side.exists():
            return None
        sidecar = read_sidecar(side)
        main = self.config.data.main_stream()
        self.check_stream_recipe(None, sidecar, side)  # the config's fields and the recipe's, in one message
        check_sidecar(sidecar, stride=main.stride, window=main.window, dim=main.feature_dim, fps=main.fps,
                      source=str(side), key_prefix=stream_key(self.config.data, main) + ".")
        return sidecar.fps

    def file_fps(self, path: Path, given: float | None = None, what: str = "fps") -> float | None:
        """The frame rate of a feature file's video: its sidecar's (checked against the run, `sidecar_fps`), else
        `given` (`what`: --fps on the command line, fps in Python); None where the run's data.fps places it.

        Features without sidecars are allowed, so `given` is how a user names their fps without editing the
        run's config. It may only agree with what the sidecar or the run says: ignored silently, a wrong
        sidecar or run fps would have passed unnoticed, each detection's time scaled by the ratio."""
        given = checked_fps(given, what)
        found = self.sidecar_fps(path)
        if given is not None and found is not None and abs(found - given) > FPS_TOLERANCE:
            raise InputError(f"{sidecar_path(path)}: the sidecar says fps {found:g}, but {what} {given:g}: which is "
                             f"the video's? Leave {what} out to use the sidecar's, or extract the features again")
        self.refuse_another_fps_than_the_runs(given, what)
        if found is None and self.config.data.fps is None:  # a video the run's annotations list
            video_id = video_id_of(path, self.config.data.feature_prefix)
            found = self._annotated_fps.get(video_id)
            if given is not None and found is not None and abs(found - given) > FPS_TOLERANCE:
                # used as given, every detection's time was scaled by the ratio without a word
                raise InputError(f"{path}: video {brief(video_id)} is {found:g} fps in the run's annotations "
                                 f"({self.config.data.annotations}), but {what} {given:g}: which is the video's? "
                                 f"Leave {what} out to use the annotations' (or, for another video, give the file "
                                 "another name)")
        if found is None and given is not None:  # the sidecar's rate is noted when its recipe is checked
            self.note_another_rate(given, f"{path} ({what} {given:g})")
        return found if found is not None else given

    @cached_property
    def _annotated_fps(self) -> dict[str, float]:
        """Each video's own fps in the run's annotations file (the entries that give one), where that file is at
        hand: a video the run trained or was scored on needs no --fps. A file that cannot be read gives none (the
        caller then asks for --fps; its problems are `data check`'s)."""
        path = Path(self.config.data.annotations) if self.config.data.annotations else None
        if path is None or not path.is_file():
            return {}
        try:
            annotations = load_annotations(path)
        except InputError:
            return {}
        return {video: info.fps for video, info in annotations.videos.items() if info.fps_given}

    def note_another_rate(self, fps: float, whose: str) -> None:
        """Note (once per detector) features of a video at another fps than the run's training features (`whose`:
        the sidecar or --fps that says so): allowed, as the grid follows each video's own fps, but a feature step
        then spans another stretch of time than in training, and the gestures look longer or shorter to the network
        than any it learnt."""
        recipe = self._feature_recipes.get(None)
        if recipe is None or self.config.data.fps is not None:
            return
        recipe_path, recipe = recipe
        if abs(fps - recipe.fps) > 0.05 * recipe.fps:
            self.note_once(f"{whose}: features of a {fps:g}-fps video, where the run's ({recipe_path}) are of "
                           f"{recipe.fps:g} fps: a feature step spans {recipe.fps / fps:.2g}x the time it did in "
                           f"training; for the run's own scale, make the video {recipe.fps:g} fps first (ffmpeg -i IN "
                           f"-r {recipe.fps:g} OUT.mp4)", key="another rate")

    def note_once(self, text: str, key: str | None = None) -> None:
        """Print `text` on stderr as a note, unless this detector said it (or another note of the same `key`) before:
        a stream checks each video's window before streaming it, and the window's note came twice per video."""
        key = text if key is None else key
        if key not in self.told:
            self.told.add(key)
            print(f"note: {text}", file=sys.stderr)

    def require_fps(self, path: Path, fps: float | None) -> None:
        """Refuse a feature file whose fps nobody knows (`file_fps` found none, the run has no data.fps), naming
        the file and the ways to give it. Called after the file is loaded: its own problems come first."""
        if fps is None and self.config.data.fps is None:
            raise InputError(f"{path}: the features' fps is unknown: pass the video's frame rate with --fps "
                             f"(fps= in Python), or put the features' sidecar {sidecar_path(path).name} beside it "
                             "(mgrec extract writes one)")

    @cached_property
    def _feature_recipes(self) -> dict[str | None, tuple[Path, FeatureSidecar]]:
        """The run's recipe of each input stream that has one (None: the grid stream's feature_recipe.json, a
        name: feature_recipe_<name>.json) and what it says, read once (every input file is checked against it)."""
        run = RunDir(self.run_root)  # set by the constructor (`_check_arguments`): never None
        names = [None, *(stream.name for stream in self.config.data.input_streams()[1:])]
        paths = {name: run.stream_recipe_path(name) for name in names}
        try:
            recipes = {name: (path, read_sidecar(path)) for name, path in paths.items() if path.exists()}
            for name, (path, recipe) in recipes.items():
                check_run_recipe(path, recipe, self.config, name)
        except InputError as exc:
            # the run's problem, not the input's being checked: said once, not once per input (`RunError`)
            raise exc if isinstance(exc, RunError) else RunError(str(exc)) from exc
        return recipes

    def check_stream_recipe(self, stream: str | None, sidecar: FeatureSidecar, side: Path) -> None:
        """Features of another backbone or other weights than the run was trained on have the right shape and
        mean nothing to the network (a run of packaged-weights features found 0 gestures in custom-weights
        ones): refused where both the file's sidecar and the run's recipe of that stream (`stream`: None for
        the grid stream) record them. The grid stream's sidecar of another fps than the run's recipe is noted too
        (`note_another_rate`), once per detector."""
        streams = self.config.data.input_streams()
        if stream == streams[0].name:
            stream = None
        if stream not in self._feature_recipes:
            return
        recipe_path, recipe = self._feature_recipes[stream]
        if stream is None:
            # named by the video the sidecar records as its source where it does: features `detect` made of a video
            # lie in a temporary folder, and the note named their sidecar there, a file gone once the command ended
            self.note_another_rate(sidecar.fps, str(side) if sidecar.source is None else sidecar.source)
        # An end-to-end run's features come from its own adapted backbone, whose weights differ by checkpoint:
        # there the sha256 names a checkpoint, not another recipe.
        adapted = recipe.backbone.partition("@")[0] == ADAPTED_BACKBONE
        fields = [name for name in RECIPE_FIELDS if not (adapted and name == "weights_sha256")]
        differences = recipe_differences(sidecar, recipe, fields)
        # with the config's own fields: made with --window 16 against the run's 8 and at another size, both were
        # said, one extraction after the other
        read_as = streams[0] if stream is None else next(s for s in streams if s.name == stream)
        mismatches = sidecar_mismatches(sidecar, read_as.stride, read_as.window, read_as.feature_dim, read_as.fps,
                                        stream_key(self.config.data, read_as) + ".")
        if mismatches:
            made = ", ".join(f"{name} {value}" for name, value in (
                ("backbone", recipe.backbone), ("window", recipe.window), ("stride", recipe.stride),
                ("frames_per_window", recipe.frames_per_window)) if value is not None)
            raise InputError(f"{side}: features do not match the config: {'; '.join(mismatches + differences)}. "
                             f"The run's features were made with {made} ({recipe_path}): make them so (`mgrec detect "
                             "RUN VIDEO` makes them from the video, `--keep-features K` keeps them)")
        if differences:
            raise InputError(f"{side}: these features were made with another recipe than the run was trained on "
                             f"({recipe_path}): {'; '.join(differences)}; extract them with the run's recipe "
                             "(`mgrec detect RUN VIDEO` does)")

    def hard_set(self, detections: Iterable[Detection], threshold: float | None = None) -> list[Detection]:
        """The detections kept for F1: score >= the threshold tuned on val, or >= their class's where the run
        tuned one per class (`postprocess.thresholds: per_class`); with `threshold`, score >= it alone. Detections
        of another class list are refused (a per-class bar indexed by a foreign label id)."""
        if threshold is not None and not is_finite_real(threshold):
            raise InputError(f"threshold: expected a finite number, got {threshold!r}")
        detections = listed(detections, "detections", "a list of Detection")  # checked, then kept: read once
        stranger = next((d for d in detections if not isinstance(d, Detection)), None)
        if stranger is not None:
            raise InputError(f"detections: expected a list of Detection, got {brief(stranger)} in it")
        foreign = next((d for d in detections if not (isinstance(d.label_id, numbers.Integral)
                                                      and 0 <= d.label_id < len(self.classes)
                                                      and self.classes[d.label_id] == d.label)), None)
        if foreign is not None:
            raise InputError(f"detection of {foreign.video_id!r} at {foreign.start:g} s: label_id {foreign.label_id} "
                             f"/ label {foreign.label!r} is not a class of this run ({brief(self.classes)})")
        return hard_set(detections, threshold) if threshold is not None else self.own_hard_set(detections)

    def own_hard_set(self, detections: list[Detection]) -> list[Detection]:
        """`hard_set` at the run's thresholds of detections this detector made, unchecked: the online update's
        path, where the check would scan every detection of every window for nothing."""
        return hard_set(detections, self.postprocess.score_threshold, self.postprocess.class_thresholds)


def _tuned_on(run: RunDir) -> str | None:
    """The split a run's score threshold was tuned on, as its tuning record says (None: none said, the config's)."""
    tuning = run.read_tuning()
    tuned_on = tuning.get("tuned_on") if tuning is not None else None
    return tuned_on if isinstance(tuned_on, str) else None


def _check_arguments(detector: OfflineDetector) -> None:
    """Each argument of an `OfflineDetector` built in Python, checked as the run's readers check its files (`from_run`
    passes them too), in one line naming the argument; paths become `Path`s. Unchecked, a wrong kind ended in a raw
    error deep in the detection (a dict as the post-processing: "no attribute 'shifted_passes'", "bf16" as autocast:
    torch's TypeError), or in nothing at all: a network of 4 classes labelled by 3 names, or a fusion_iou of 2 that
    fused nothing."""
    d = detector
    members_given = d.members is not None
    if not isinstance(d.model, torch.nn.Module) and not (members_given and d.model is None):
        raise InputError(f"model: expected a torch.nn.Module (an mgrec detector: build_detector(config.model), or "
                         f"OfflineDetector.from_run), got {_got(d.model)}"
                         + (" (None only beside members, a detection-level ensemble's)" if d.model is None else ""))
    if not isinstance(d.config, Config):
        raise InputError(f"config: expected an mgrec.config.Config (load_config builds one), got {_got(d.config)}")
    # a class list given in Python, as score() and the annotations readers check theirs: one name twice made
    # two label ids of one class, whose detections score() then merged
    classes = listed(d.classes, "classes", "a list of class names")
    num_classes = d.config.model.num_classes
    if len(classes) != num_classes:  # the rule of the run's classes.json (`RunDir.read_classes`); first, as the
        raise InputError(f"classes: expected {num_classes} class names (config.model.num_classes), got "  # number
                         f"{len(classes)}: {brief(classes)}")  # expected is the most to say of an empty list
    d.classes = check_class_list(classes)
    if d.model is not None:
        multiple = getattr(d.model, "max_div_factor", None)  # what detection pads each video's length to
        if not isinstance(multiple, int) or isinstance(multiple, bool) or multiple < 1:
            raise InputError(f"model: expected an mgrec detector (build_detector(config.model), or a network of its "
                             f"contract, docs/contracts.md: max_div_factor and DetectorOutput), got a "
                             f"{type(d.model).__name__} whose max_div_factor is {_got(multiple)}")
        head_classes, input_dim = _network_shape(d.model)
        if head_classes is not None and head_classes != num_classes:  # 4 logits labelled by 3 names
            raise InputError(f"model: expected a network of config.model.num_classes={num_classes} classes, got one "
                             f"whose head predicts {head_classes}")
        if input_dim is not None and input_dim != d.config.data.feature_dim:
            raise InputError(f"model: expected a network of config.data.feature_dim={d.config.data.feature_dim} "
                             f"input channels, got one of {input_dim}")
    check_postprocess(d.postprocess, num_classes)
    if not isinstance(d.run_dir, (str, os.PathLike)):
        raise InputError(f"run_dir: expected the path of the run's directory, got {_got(d.run_dir)}")
    d.run_dir = Path(d.run_dir)
    if not isinstance(d.checkpoint, str) or not d.checkpoint:
        raise InputError(f"checkpoint: expected a checkpoint's name (a str: best, last), got {_got(d.checkpoint)}")
    if d.threshold_tuned_on is not None and not isinstance(d.threshold_tuned_on, str):
        raise InputError(f"threshold_tuned_on: expected None or a split's name (a str), got "
                         f"{_got(d.threshold_tuned_on)}")
    if d.autocast is not None and d.autocast is not torch.bfloat16:  # the precisions outputs name: fp32, bf16
        raise InputError(f"autocast: expected None (float32) or torch.bfloat16 (from_run's precision='bf16'), got "
                         f"{_got(d.autocast)}")
    if d.chunking is not None and not isinstance(d.chunking, Chunking):
        raise InputError(f"chunking: expected None (every video in one pass) or a Chunking(steps, overlap), got "
                         f"{_got(d.chunking)}")
    if d.stream_folders is not None:
        names = [stream.name for stream in d.config.data.input_streams()]
        if not isinstance(d.stream_folders, Mapping):
            raise InputError(f"stream_folders: expected None or a dict of stream name -> folder (streams of this "
                             f"run: {', '.join(names)}), got {_got(d.stream_folders)}")
        for name, folder in d.stream_folders.items():
            if name not in names:
                raise InputError(f"stream_folders: expected names of this run's streams ({', '.join(names)}), got "
                                 f"{brief(name)}")
            if not isinstance(folder, (str, os.PathLike)):
                raise InputError(f"stream_folders[{name!r}]: expected a folder's path, got {_got(folder)}")
        d.stream_folders = {name: Path(folder) for name, folder in d.stream_folders.items()}
    if members_given:
        if not isinstance(d.members, list) or not d.members:
            raise InputError(f"members: expected None or a non-empty list of OfflineDetector, got {_got(d.members)}")
        for index, member in enumerate(d.members):
            if not isinstance(member, OfflineDetector):
                raise InputError(f"members[{index}]: expected an OfflineDetector, got {_got(member)}")
            if member.classes != d.classes:  # fused by label id (`fused_ensemble`'s rule)
                raise InputError(f"members[{index}]: expected the classes {brief(d.classes)}, got "
                                 f"{brief(member.classes)}")
    if d.member_folders is not None:
        if not members_given:
            raise InputError(f"member_folders: {d.run_dir} is no detection-level ensemble (it has no members): "
                             "leave it out")
        if not isinstance(d.member_folders, Mapping):
            raise InputError(f"member_folders: expected None or a dict of member index -> folder, got "
                             f"{_got(d.member_folders)}")
        for index, folder in d.member_folders.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(d.members):
                raise InputError(f"member_folders: expected member indices 0..{len(d.members) - 1} (members/<m> of "
                                 f"{d.run_dir}), got {brief(index)}")
            if not isinstance(folder, (str, os.PathLike)):
                raise InputError(f"member_folders[{index}]: expected a folder's path, got {_got(folder)}")
        d.member_folders = {index: Path(folder) for index, folder in d.member_folders.items()}
    if not is_finite_real(d.fusion_iou) or not 0 < d.fusion_iou <= 1:
        raise InputError(f"fusion_iou: expected a tIoU in (0, 1], got {_got(d.fusion_iou)}")
    d.fusion_iou = float(d.fusion_iou)
    if d.second_opinion is not None and not isinstance(d.second_opinion, SecondOpinion):
        raise InputError(f"second_opinion: expected None or a SecondOpinion (run_second_opinion(run, config)), got "
                         f"{_got(d.second_opinion)}")
    if d.run_root is not None:
        if not isinstance(d.run_root, (str, os.PathLike)):
            raise InputError(f"run_root: expected None or the run directory's absolute path, got {_got(d.run_root)}")
        d.run_root = Path(d.run_root)
    else:  # taken now, whoever built the detector (a detection-level ensemble's, one built in Python on ".")
        # a relative run_dir went into every predictions file it wrote as its `run` (`predictions_info`), read from
        # other folders as another folder or none: `mgrec score` of its training split from elsewhere said nothing
        d.run_root = resolve_path(d.run_dir)


def _network_shape(model: torch.nn.Module) -> tuple[int | None, int | None]:
    """The classes an mgrec network's head predicts and the channels it reads (one detector, an ensemble's first
    member, an end-to-end run's detector, a compiled one), None where the module is none of mgrec's."""
    head_classes = input_dim = None
    for module in model.modules():
        if head_classes is None and isinstance(module, Predictors):
            head_classes = module.cls.out_channels
        if input_dim is None and isinstance(module, Detector):
            input_dim = module.input_dim
        if head_classes is not None and input_dim is not None:
            break
    return head_classes, input_dim


def _got(value: object) -> str:
    """A value as messages quote it: `brief`'s repr of a plain value, the kind of anything else (the repr of a network
    or its state dict runs to pages)."""
    plain = isinstance(value, (type(None), numbers.Number, str, bytes, os.PathLike, torch.dtype))
    return brief(value) if plain or type(value) in (list, tuple, dict, set) else type(value).__name__


def feature_files(inputs: list[str | Path], log=None, as_given: Callable[[Path], bool] = lambda path: False
                  ) -> list[Path]:
    """Expand files and folders into feature files (sorted; a folder contributes its .npy/.npz files,
    without hidden ones: `mgrec.data.features.list_feature_files`; `log` hears what was skipped).
    A file named explicitly is read as it is; one file reached twice (a folder and a file in it, a shell glob's
    slip) is one input, as in `mgrec extract`. An input `as_given` takes is kept as it is (a video streamed as it
    is decoded, `-` for standard input)."""
    files: list[Path] = []
    for given in inputs:
        # a path given as text made a Path; anything else (a URL streamed as it arrives) as it is
        item = Path(given) if isinstance(given, (str, os.PathLike)) else given
        if as_given(item):
            files.append(item)
        elif not isinstance(item, Path):
            raise InputError(f"{item}: not a feature file or folder (a URL is streamed by `mgrec stream` alone)")
        elif item.is_dir():
            listing = list_feature_files(item)
            if listing.note() is not None and log is not None:
                log(listing.note())
            files.extend(listing.files)
        elif item.exists():
            files.append(item)
        else:
            raise InputError(f"{item}: {missing_file_problem(item, 'feature file')}")
    # One file by its name in its folder, not by its contents: two names of one file (a link) are two videos' ids.
    seen: set[Path] = set()
    unique = []
    for file in files:
        identity = Path(os.path.realpath(file.parent)) / file.name if isinstance(file, Path) else file
        if identity not in seen:
            seen.add(identity)
            unique.append(file)
    return unique
