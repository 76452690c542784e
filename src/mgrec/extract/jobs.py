"""The `mgrec extract` job: videos (or SMG skeleton CSVs) in, one feature file per video out.

For every input, `<out_dir>/<video_id>.npy` holds a (T, C) float32 array with one row per
complete window [i*stride, i*stride + window) (the last, partial window is dropped, so
T == FeatureGrid.num_windows(frames)), and `<video_id>.json` the sidecar (see
`mgrec.data.features`). The id is the file stem without an SMG `_color`/`_skeleton` suffix.

Runs resume: an input whose finished sidecar matches this run's recipe (backbone and input size,
weights sha256, window, stride) is skipped. Features are written atomically and the sidecar
last, so a killed run never leaves a file that counts as done. A video killed half-way resumes
inside it: its rows done are saved every minute (`mgrec.extract.outputs.PartialFeatures`), and the
next run's network starts after them, decoding the frames before without converting them. Under torchrun
each process takes inputs[RANK::WORLD_SIZE] and its own GPU (LOCAL_RANK); no process group is needed.

An input that cannot be read does not stop the others: it gets no files, and once every other
input is done one InputError lists all failures.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mgrec import terminal
from mgrec.data.features import (
    FeatureSidecar,
    check_feature_values,
    check_run_recipe,
    check_sidecar_length,
    check_unchanged,
    inspect_features,
    load_features,
    read_sidecar,
    repeated_feature_files,
    sidecar_path,
    source_stamp,
    write_features,
)
from mgrec.devices import precision_name, process_device
from mgrec.errors import InputError, OutputError
from mgrec.extract import MAX_BATCH
from mgrec.extract.backbones import Backbone, window_offsets
from mgrec.extract.outputs import (
    ExtractResult,
    FrameCounter,
    PartialFeatures,
    check_length,
    check_numbers,
    finished_sidecar,
    holding,
    raise_failures,
    refuse_a_file_mgrec_did_not_write,
    remove_partial,
    skipped,
    ticking,
)
from mgrec.extract.pose import POSE, extract_poses
from mgrec.extract.skeleton import SKELETON_DIM, read_sample_fps, read_skeleton_csv, skeleton_window_features
from mgrec.extract.video import (
    VIDEO_SUFFIXES,
    check_feature_names,
    collect_inputs,
    iter_frames,
    prefetch,
    probe_video,
    shard_for_this_process,
    video_id,
)
from mgrec.files import StoppedIn, check_output_names, check_writable, is_hidden, missing_folder_problem, resolve_path
from mgrec.model.end_to_end import ADAPTED_BACKBONE
from mgrec.run import RunDir
from mgrec.smg_csv import fps_problem
from mgrec.timeline import FeatureGrid

DEFAULT_BACKBONE = "efficientnet-lite0"
SKELETON = "skeleton"
# Frames decoded ahead of the network; bounded so that memory stays flat on long videos.
DECODE_AHEAD = 64
# Network inputs per forward pass (`mgrec extract --batch`): frames of a per-frame CNN, clips of a video transformer.
DEFAULT_BATCH = 8


@dataclass(frozen=True)
class FuseResult:
    video_id: str
    feature_path: Path
    num_features: int
    input_lengths: tuple[int, ...]  # T of each input folder, in order; they differ when truncated


def is_video(path: str | Path) -> bool:
    """Whether an input of `detect` or `stream` is a video file: named with one of VIDEO_SUFFIXES, and not a folder.
    A folder named like a video (`clip.mp4/`, a download unpacked under the video's name) is a folder, read as one:
    `stream` tried to decode it (`cannot open the video (corrupt or truncated file?): Is a directory`), `detect`
    extracted the videos inside it, where any other folder of videos is refused with the way to give them."""
    path = Path(path)
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.is_dir()


def videos_by_id(inputs: Iterable[str | Path]) -> dict[str, Path]:
    """The video files among `detect`'s or `stream`'s inputs (`is_video`), by video id."""
    return {video_id(Path(path)): Path(path) for path in inputs if is_video(path)}


def extract_with_recipe(run_dir: str | Path, videos: list[Path], out_dir: Path, device: str = "cpu",
                        progress: bool = False, stream: str | None = None, checkpoint: str = "best"
                        ) -> list[ExtractResult]:
    """Features for raw videos, made exactly as a run's training features were (backbone, size,
    window, stride: its `feature_recipe.json`), for detecting with that run. `stream`: of a run with
    several input streams, the recipe of that stream (`feature_recipe_<stream>.json`; None: the grid stream's).
    An end-to-end run's features come from its backbone with the adapters of `checkpoint`. Returns each video's
    result (its feature file, and whether it was made or found made with the recipe already: `ExtractResult`)."""
    recipe, name, size = video_recipe(run_dir, stream)
    if name == ADAPTED_BACKBONE:
        return extract_with_run(run_dir, videos, out_dir, checkpoint, device, progress)
    results = extract(videos, out_dir, backbone=name, weights=recipe.weights, window=recipe.window,
                      stride=recipe.stride, size=size, device=device, progress=progress,
                      frames_per_window=recipe.frames_per_window, precision=recipe.precision)
    for warning in (warning for result in results for warning in result.warnings):
        print(terminal.visible(f"warning: {warning}"), file=sys.stderr)  # said by `mgrec extract` too; here for detect
    return results


def video_recipe(run_dir: str | Path, stream: str | None = None) -> tuple[FeatureSidecar, str, int | None]:
    """The run's recipe of a stream's features (None: the grid stream's), checked to be one mgrec can make from a
    video: the sidecar, the backbone's name and its image size (None: native)."""
    run = RunDir(run_dir)
    path = run.stream_recipe_path(stream)
    which = f"stream {stream!r}'s" if stream is not None else "its"
    if not path.exists():
        raise InputError(f"{run.path} records no feature recipe for {which} features ({path.name}: the training "
                         "features had no sidecar): extract features with `mgrec extract` and pass the feature "
                         "files instead" + (" (--stream NAME=FOLDER for each other stream)" if stream else ""))
    recipe = read_sidecar(path)
    # one that contradicts the run's config made every video into features of its shape, each then refused; a folder
    # of the recipe alone (`LiveFeatures` of benchmarks/extraction.py) has no config to contradict
    if run.config_path.exists():
        check_run_recipe(path, recipe, run.read_config(), stream)
    name, _, size = recipe.backbone.partition("@")
    if name == ADAPTED_BACKBONE:
        return recipe, name, None
    if name not in backbone_names() or name == "skeleton":
        features = f"stream {stream!r}'s features" if stream is not None else "its features"
        raise InputError(f"{run.path} was trained on {recipe.backbone!r} features ({features}), which mgrec "
                         "cannot make from a video; pass feature files instead"
                         + (" (--stream NAME=FOLDER for each other stream)" if stream else ""))
    if recipe.weights and not Path(recipe.weights).exists():
        raise InputError(f"the run's feature weights {recipe.weights} (recorded in {path}) are not found from "
                         f"{Path.cwd()}; run from the folder they were extracted from, or put them there")
    return recipe, name, int(size) if size else None


def extract_with_run(run_dir: str | Path, videos: Iterable[str | Path], out_dir: str | Path, checkpoint: str = "best",
                     device: str = "cpu", progress: bool = True) -> list[ExtractResult]:
    """`mgrec extract --run RUN`: the features an end-to-end run's detector reads (its backbone with the
    adapters of `checkpoint`, its window, stride and clip sampling), so that a user can go on with
    feature-based training; resumable like any extraction (the recipe's hash covers the adapters)."""
    from mgrec.extract.adapters import AdaptedBackbone

    config = RunDir(run_dir).read_config()
    model = AdaptedBackbone(run_dir, checkpoint, str(process_device(device, what="--device")))
    # clips per forward pass is no part of the recipe: a run's larger backbone.clip_batch is taken MAX_BATCH at a time
    return extract_videos(videos, out_dir, window=config.data.window, stride=config.data.stride,
                          batch=min(config.backbone.clip_batch, MAX_BATCH), progress=progress, model=model)


def backbone_names() -> list[str]:
    from mgrec.extract.backbones import VIDEO_BACKBONES

    return [*VIDEO_BACKBONES, SKELETON, POSE]


def extract(
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    backbone: str = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    window: int = 16,
    stride: int = 4,
    size: int | None = None,
    device: str = "cpu",
    batch: int = DEFAULT_BATCH,
    fps: float | None = None,
    progress: bool = True,
    frames_per_window: int | None = None,
    precision: str | None = None,
    runtime: str | None = None,
) -> list[ExtractResult]:
    """Dispatch to `extract_skeletons` for backbone 'skeleton', to `mgrec.extract.pose.extract_poses` for
    'pose' (`device` and `batch` do not apply: MediaPipe runs on the CPU, frame by frame), else to `extract_videos`."""
    check_numbers(window=window, stride=stride, size=size, batch=batch)  # before any work, whichever backbone
    check_writable(out_dir, is_dir=True)  # before any work: an --out that is a file, read-only, a full disk
    if frames_per_window is not None and backbone in (SKELETON, POSE):
        raise InputError(f"--frames-per-window: backbone {backbone} reads every frame of a window")
    for name, value in (("--precision", precision), ("--runtime", runtime)):
        if value is not None and backbone in (SKELETON, POSE):
            raise InputError(f"{name}: backbone {backbone} runs no network of mgrec's "
                             "(skeleton: none; pose: MediaPipe)")
    if backbone == SKELETON:
        if weights is not None or size is not None:
            raise InputError("backbone skeleton: takes no --weights or --size (it reads joint positions)")
        return extract_skeletons(inputs, out_dir, window, stride, fps, progress)
    if fps is not None:
        raise InputError("--fps is for skeleton CSVs only: videos are read at their own frame rate")
    if backbone == POSE:
        if weights is not None or size is not None:
            raise InputError("backbone pose: takes no --weights or --size (MediaPipe's models; frames at their size)")
        return extract_poses(inputs, out_dir, window, stride, progress)
    return extract_videos(inputs, out_dir, backbone, weights, window, stride, size, device, batch, progress,
                          frames_per_window=frames_per_window, precision="auto" if precision is None else precision,
                          runtime="auto" if runtime is None else runtime)  # "" or 0 are refused, not taken as auto


def extract_videos(
    videos: Iterable[str | Path],
    out_dir: str | Path,
    backbone: str = DEFAULT_BACKBONE,
    weights: str | Path | None = None,
    window: int = 16,
    stride: int = 4,
    size: int | None = None,
    device: str = "cpu",
    batch: int = DEFAULT_BATCH,
    progress: bool = True,
    model: Backbone | None = None,
    frames_per_window: int | None = None,
    precision: str = "auto",
    runtime: str = "auto",
) -> list[ExtractResult]:
    """Extract features of video files (folders are searched recursively for .mp4 .avi .mkv .mov .webm).

    `size`: frames are resized to size x size (None: the backbone's native size, 224 for
    efficientnet-lite0; a VideoMAE takes only its config's image_size). `batch`: frames per
    forward pass for efficientnet-lite0, clips per forward pass for videomae. `weights`: a
    checkpoint file (efficientnet-lite0; default: the packaged ImageNet weights) or a Hugging
    Face folder (videomae). The sidecar's backbone reads e.g. 'efficientnet-lite0@224'. `model`: a
    backbone built by the caller; the arguments that build one (`backbone`, `weights`, `size`, `device`,
    `frames_per_window`, `precision`, `runtime`) must then keep their defaults, or it is refused (they would
    be ignored).
    `frames_per_window`: efficientnet-lite0 averages only that many frames of each window, on frames the
    windows share (`backbones.window_offsets`: 4 of 16 with stride 4 run the CNN on a quarter of the
    frames); recorded in the sidecar, so it is a recipe of its own. `precision`: auto | fp32 | bf16, of the
    backbone's forward pass (`backbones.load_backbone`); the one used is recorded in the sidecar, a recipe of
    its own too. `runtime`: auto | torch | onnxruntime, what runs that forward pass (`backbones.choose_runtime`:
    the same features up to float rounding, not recorded in the sidecar; each result names it).
    """
    from mgrec.extract.backbones import check_runtime, load_backbone

    if model is not None:
        build = {"backbone": (backbone, DEFAULT_BACKBONE), "weights": (weights, None), "size": (size, None),
                 "device": (device, "cpu"), "frames_per_window": (frames_per_window, None),
                 "precision": (precision, "auto"), "runtime": (runtime, "auto")}
        ignored = [f"{name}={value!r}" for name, (value, default) in build.items() if value != default]
        if ignored:
            raise InputError(f"extract_videos: model= is a backbone already built, so {', '.join(ignored)} would "
                             "be ignored; pass them to load_backbone instead, or leave them out")
    check_numbers(window=window, stride=stride, size=None if model is not None else size, batch=batch)
    check_runtime(runtime)  # before the inputs are searched and the folder held
    files = collect_inputs(videos, VIDEO_SUFFIXES, "video file")
    check_feature_names(files, out_dir)  # every process checks the whole set
    files = shard_for_this_process(files)
    # each video's features are written as it ends, and the rows of one interrupted are saved (`PartialFeatures`)
    where = StoppedIn("video", len(files), lambda done: f"the features of those finished are in {out_dir}" + (
        ": the same command again skips them" if done == len(files) else ", and the rows made of this one are saved "
        "there: the same command again skips the finished ones and resumes it"))
    with holding(out_dir):  # before the backbone loads: a second extraction into the folder is refused at once
        model = model or load_backbone(backbone, weights, str(process_device(device, what="--device")), size,
                                       frames_per_window, precision, runtime)
        with where:  # the videos' loop and what follows it (`StoppedIn.each`), not the loading: it is in no video
            return _extract_video_files(files, Path(out_dir), model, window, stride, batch, progress, where)


def _extract_video_files(files: list[Path], out_dir: Path, model: Backbone, window: int, stride: int, batch: int,
                         progress: bool, where: StoppedIn) -> list[ExtractResult]:
    """`extract_videos`'s work, in its held output folder; `where` is told each video it starts, and the loop's end."""
    recipe_name = f"{model.name}@{model.image_size}"
    recipe_precision = precision_name(model.autocast)
    if model.frames_per_window is not None:
        window_offsets(window, stride, model.frames_per_window)  # refused here, before any video is decoded

    results, failures = [], []
    for path in where.each(tqdm(files, desc="videos", unit="video", disable=not progress or len(files) < 2)):
        feature_path = out_dir / f"{video_id(path)}.npy"
        done = finished_sidecar(feature_path, recipe_name, model.weights_sha256, window, stride,
                                 frames_per_window=model.frames_per_window, source=path, precision=recipe_precision)
        if done is not None:
            remove_partial(feature_path)  # left by a run killed between writing the features and removing them
            results.append(skipped(path, feature_path, done))
            continue
        started = time.perf_counter()
        stream = None
        try:
            refuse_a_file_mgrec_did_not_write(feature_path, path)  # before decoding: nothing lost, no time either
            stamp = source_stamp(path)  # before reading: a file changed meanwhile is re-extracted next time
            stream = probe_video(path)
            grid = FeatureGrid(stream.fps, stride, window)
            recipe = FeatureSidecar(
                fps=stream.fps,
                stride=stride,
                window=window,
                backbone=recipe_name,
                dim=model.dim,
                frames=None,  # known once decoded
                # absolute: `detect RUN VIDEO` from another folder finds the weights through the run's recipe
                weights=str(resolve_path(model.weights)) if model.weights else str(model.weights),
                weights_sha256=model.weights_sha256,
                frames_per_window=model.frames_per_window,
                source_stamp=stamp,
                source=str(resolve_path(path)),
                precision=recipe_precision,
            )
            # the rows a killed extraction of this video saved: the network starts after them
            partial = PartialFeatures(feature_path, recipe, path)
            start = partial.resume(grid.num_windows(stream.declared_frames) if stream.declared_frames else None)
            first = model.first_frame(start, window, stride, batch)
            needed = model.frame_needed(window, stride)
            keep = needed if not first else lambda index: index >= first and (needed is None or needed(index))
            said: list[str] = []  # its frame size's warning (`check_frame_size`), one, in its result's warnings
            frames = FrameCounter(iter_frames(path, model.image_size, keep=keep, warn=said.append))
            # A second bar inside the video: an hour of video is minutes of work even on a GPU.
            # closed on the way out, an error too: its decoding thread must not outlive the video (it did, with the
            # file open, for as long as the error's traceback was kept)
            with tqdm(total=stream.declared_frames or None, desc=path.name, unit="frame", leave=False,
                      disable=not progress) as frame_bar, closing(prefetch(iter(frames), DECODE_AHEAD)) as ahead:
                decoded = ticking(ahead, frame_bar)
                features = partial.collect(model.window_features(decoded, window, stride, batch, start=start))
            check_length(path, frames.count, window)
            check_unchanged(path, stamp)  # a recording still being written was extracted up to where it was
            if start and len(features) != grid.num_windows(frames.count):  # a video without a declared frame count
                raise InputError(f"{path}: {frames.count} frames, {grid.num_windows(frames.count)} windows, fewer than "
                                 f"the {start} rows an earlier extraction saved for it; they are removed: extract "
                                 "it again")
            # a damaged backbone or an overflow: refused before the file is written, not found later by data check
            check_feature_values(features, f"{path} through {model.name}")
        except OutputError:
            # a write that failed (its rows saved, a full disk): no failure of the video's, and every later video would
            # meet it after its work; the rows saved before stay, whole, for the next run to resume from
            raise
        except InputError as exc:
            remove_partial(feature_path)  # its rows would only lead to the same failure
            several = stream.several_streams_note() if stream is not None else ""
            failures.append(f"{exc} ({several})" if several else str(exc))
            continue
        assert len(features) == grid.num_windows(frames.count), "windowing disagrees with FeatureGrid"
        write_features(feature_path, features, dataclasses.replace(recipe, frames=frames.count))
        remove_partial(feature_path)
        late = () if stream.late_start < 1 / stream.fps else (
            f"{path}: its first frame is shown {stream.late_start:.2f} s into the file (the video track starts late); "
            f"mgrec's times count from that frame: a player shows them {stream.late_start:.2f} s later",)
        several = (f"{path}: {stream.several_streams_note()}",) if stream.video_streams > 1 else ()
        results.append(
            ExtractResult(path, feature_path, "extracted", frames.count, len(features), time.perf_counter() - started,
                          late + several + tuple(said), model.runtime)
        )
    raise_failures(failures, len(files), results)
    return results


def extract_skeletons(
    csvs: Iterable[str | Path],
    out_dir: str | Path,
    window: int = 16,
    stride: int = 4,
    fps: float | None = None,
    progress: bool = True,
) -> list[ExtractResult]:
    """Skeleton features (`mgrec.extract.skeleton`) of SMG `*_skeleton.csv` files, or of all such
    files in folders (recursively).

    `fps`: the frame rate (needed for velocities and the sidecar); None reads it from the
    `SampleXXXX_data.csv` next to each `SampleXXXX_skeleton.csv`.
    """
    check_numbers(window=window, stride=stride)
    if fps is not None and fps_problem(fps):
        raise InputError(f"--fps: {fps_problem(fps)}")
    # SMG sample folders also hold label and data CSVs: only *_skeleton.csv files are inputs.
    files = collect_inputs(csvs, ("_skeleton.csv",), "skeleton CSV")
    check_feature_names(files, out_dir)  # every process checks the whole set
    files = shard_for_this_process(files)
    where = StoppedIn("skeleton file", len(files), lambda done: f"the features of those finished are in {out_dir}: "
                      "the same command again skips them")
    with holding(out_dir), where:
        return _extract_skeleton_files(files, Path(out_dir), window, stride, fps, progress, where)


def _extract_skeleton_files(files: list[Path], out_dir: Path, window: int, stride: int, fps: float | None,
                            progress: bool, where: StoppedIn) -> list[ExtractResult]:
    """`extract_skeletons`'s work, in its held output folder; `where` is told each file it starts, and the loop's
    end."""
    results, failures = [], []
    for path in where.each(tqdm(files, desc="skeletons", unit="file", disable=not progress)):
        feature_path = out_dir / f"{video_id(path)}.npy"
        started = time.perf_counter()
        try:
            stamp = source_stamp(path)  # before reading: a file changed meanwhile is re-extracted next time
            sample_fps = fps if fps is not None else _sample_fps(path)
            done = finished_sidecar(feature_path, SKELETON, None, window, stride, sample_fps, source=path)
            if done is not None:
                results.append(skipped(path, feature_path, done))
                continue
            refuse_a_file_mgrec_did_not_write(feature_path, path)
            skeleton = read_skeleton_csv(path)
            frames = len(skeleton.positions)
            check_length(path, frames, window)
        except InputError as exc:
            failures.append(str(exc))
            continue
        features = skeleton_window_features(skeleton.positions, sample_fps, window, stride, source=path)
        sidecar = FeatureSidecar(
            fps=sample_fps, stride=stride, window=window, backbone=SKELETON, dim=SKELETON_DIM, frames=frames,
            source_stamp=stamp, source=str(resolve_path(path)),
        )
        write_features(feature_path, features, sidecar)
        warnings = ()
        if skeleton.untracked_frames:
            warnings = (
                f"{path}: {skeleton.untracked_frames} of {frames} frames had no tracked person; "
                "they repeat the previous tracked pose",
            )
        results.append(
            ExtractResult(
                path, feature_path, "extracted", frames, len(features), time.perf_counter() - started, warnings
            )
        )
    raise_failures(failures, len(files), results)
    return results


def _sample_fps(skeleton_csv: Path) -> float:
    data_csv = skeleton_csv.with_name(f"{video_id(skeleton_csv)}_data.csv")
    if not data_csv.is_file():
        raise InputError(f"{skeleton_csv}: no frame rate: pass --fps or put {data_csv.name} next to it")
    return read_sample_fps(data_csv)


# Two feature sets of one video may differ by a frame or two of decoding; more means different videos.
MAX_LENGTH_DIFFERENCE = 2


def fuse_features(dirs: list[str | Path], out_dir: str | Path) -> list[FuseResult]:
    """Concatenate the feature sets in `dirs` (same videos, same fps/stride/window) along C.

    Lengths may differ by up to `MAX_LENGTH_DIFFERENCE` steps: all are cut to the shortest (the
    result lists each input's length). The fused sidecar's backbone joins the inputs' with '+'.
    """
    dirs = [Path(d) for d in dirs]
    out_dir = Path(out_dir)
    if len(dirs) < 2:
        raise InputError("--fuse needs at least two feature folders")
    if resolve_path(out_dir) in {resolve_path(d) for d in dirs}:
        raise InputError(f"{out_dir}: the fused features must go to a folder other than the inputs")
    seen: dict[Path, Path] = {}
    for folder in dirs:  # fused with itself, every channel came twice: a network twice as wide on the same inputs
        first = seen.setdefault(resolve_path(folder), folder)
        if first is not folder:
            also = "" if str(first) == str(folder) else f" (as {first})"
            raise InputError(f"{folder}: given to --fuse twice{also}; fusion concatenates the channels of different "
                             "feature sets (RGB and skeleton, say): give each folder once")
    feature_sets = [_feature_files(d) for d in dirs]
    for folder, files in zip(dirs[1:], feature_sets[1:]):
        missing, extra = sorted(feature_sets[0].keys() - files.keys()), sorted(files.keys() - feature_sets[0].keys())
        if missing or extra:
            raise InputError(
                f"{folder}: holds different videos than {dirs[0]}"
                + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                + (f"; extra: {', '.join(extra[:5])}" if extra else "")
            )

    check_output_names([(vid, path) for vid in sorted(feature_sets[0])
                        for path in (out_dir / f"{vid}.npy", sidecar_path(out_dir / f"{vid}.npy"))], "fused features")
    with holding(out_dir):
        # every video checked (sidecars, values, lengths, the outputs) before the first is written: a refusal
        # half-way left a folder of some fused videos, which `detect FOLDER` then read as the whole set
        plans = [_fuse_plan(vid, [files[vid] for files in feature_sets], out_dir) for vid in sorted(feature_sets[0])]
        results = []
        for vid, paths, sidecars, lengths, feature_path in plans:
            shortest = min(lengths)
            fused = np.concatenate([load_features(p, expected_dim=s.dim)[:shortest] for p, s in zip(paths, sidecars)],
                                   axis=1)
            write_features(feature_path, fused, fused_sidecar(sidecars, fused.shape[1]))
            results.append(FuseResult(vid, feature_path, shortest, lengths))
        return results


def _fuse_plan(vid: str, paths: list[Path], out_dir: Path) -> tuple:
    """One video's inputs to fuse, checked without keeping their values: (vid, paths, sidecars, lengths, output)."""
    sidecars = [read_sidecar(sidecar_path(p)) for p in paths]
    first = sidecars[0]
    for path, sidecar in zip(paths[1:], sidecars[1:]):
        for field in ("stride", "window"):
            if getattr(sidecar, field) != getattr(first, field):
                raise InputError(
                    f"{sidecar_path(path)} [{field}]: {getattr(sidecar, field)} here but "
                    f"{getattr(first, field)} in {sidecar_path(paths[0])}; fused features must share it"
                )
        if abs(sidecar.fps - first.fps) > 1e-3:
            raise InputError(
                f"{sidecar_path(path)} [fps]: {sidecar.fps:g} here but {first.fps:g} in "
                f"{sidecar_path(paths[0])}; fused features must share it"
            )
    lengths = tuple(inspect_features(p, expected_dim=s.dim)[0] for p, s in zip(paths, sidecars))
    for path, length, sidecar in zip(paths, lengths, sidecars):
        check_sidecar_length(path, length, sidecar)
    if max(lengths) - min(lengths) > MAX_LENGTH_DIFFERENCE:
        listing = ", ".join(f"{p} has {n}" for p, n in zip(paths, lengths))
        raise InputError(
            f"video '{vid}': feature lengths differ by more than {MAX_LENGTH_DIFFERENCE} steps ({listing}); "
            "are these the same video?"
        )
    _refuse_the_same_features_twice(vid, paths, [(n, s.dim) for n, s in zip(lengths, sidecars)])
    feature_path = out_dir / f"{vid}.npy"
    refuse_a_file_mgrec_did_not_write(feature_path, None)
    return vid, paths, sidecars, lengths, feature_path


def _refuse_the_same_features_twice(vid: str, paths: list[Path], shapes: list[tuple[int, int]]) -> None:
    """Two inputs of one video holding the same features (a folder and its copy, a link into another, the video
    extracted again in another runtime): fused, every channel came twice. Only files of one shape are read to
    compare (`repeated_feature_files`), so inputs of different widths cost nothing."""
    for repeat in repeated_feature_files(paths, dict(enumerate(shapes))):
        raise InputError(f"video '{vid}': {paths[repeat.first]} and {paths[repeat.then]} {repeat.how} (a folder and "
                         "its copy?); fusion concatenates the channels of different feature sets: give each set once")


def fused_sidecar(sidecars: list[FeatureSidecar], dim: int) -> FeatureSidecar:
    """The sidecar of features fused from inputs with `sidecars`, keeping every input's recipe (`RECIPE_FIELDS`)
    comparable: the backbones joined with '+' (each with its frames per window where two inputs record different
    ones), the weights' sha256 a hash of the inputs' (another checkpoint in any input gives another one)."""
    first = sidecars[0]
    frames = [s.frames for s in sidecars if s.frames is not None]
    # one known frames-per-window value (a per-frame backbone's) is the fused features' own; two different
    # ones are named in the backbones, the one field that can hold both
    known = {s.frames_per_window for s in sidecars if s.frames_per_window is not None}
    backbones = [s.backbone if len(known) <= 1 or s.frames_per_window is None
                 else f"{s.backbone}[{s.frames_per_window} frames]" for s in sidecars]
    shas = [s.weights_sha256 for s in sidecars]
    precisions = {s.precision for s in sidecars}
    return FeatureSidecar(
        fps=first.fps,
        stride=first.stride,
        window=first.window,
        backbone="+".join(backbones),
        dim=dim,
        frames=min(frames) if frames else None,
        weights=" + ".join(s.weights or "none" for s in sidecars),
        weights_sha256=None if not any(shas) else hashlib.sha256(
            "+".join(sha or "none" for sha in shas).encode()).hexdigest(),
        frames_per_window=known.pop() if len(known) == 1 else None,
        precision=precisions.pop() if len(precisions) == 1 else None,
    )


def _feature_files(folder: Path) -> dict[str, Path]:
    """video id -> feature file (.npy/.npz) in a folder; every one must have its sidecar."""
    if not folder.is_dir():
        raise InputError(f"{folder}: {missing_folder_problem(folder, 'feature folder')}")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".npy", ".npz") or is_hidden(path):
            continue
        if not sidecar_path(path).is_file():
            raise InputError(f"{path}: no sidecar {sidecar_path(path).name} (unfinished extraction?)")
        if path.stem in files:
            raise InputError(f"{folder}: both {files[path.stem].name} and {path.name} hold '{path.stem}'")
        files[path.stem] = path
    if not files:
        raise InputError(f"{folder}: no feature files (.npy/.npz) found")
    return files
