"""Input streams: one video's features of every stream, on one feature grid, joined channel-wise.

A multi-stream config (`data.streams`) gives each stream its own folder and recipe (fps, stride,
window, dim): RGB clip features, Kinect skeletons, pose from video, an IMU's accelerometer. The
model needs one time axis, so every stream is put on the grid of the grid stream
(`DataConfig.main_stream`) here, and only here:

    value of stream s at grid step j = its features linearly interpolated at t_j,
    t_j = grid.index_to_seconds(j)              (the centre of step j, `mgrec.timeline`)

with a stream's own row i standing at its own centre time (i*stride_s + window_s/2)/fps_s, and the
first/last row held beyond its ends. A stream already on the grid is returned as it is, so a time t
in seconds means the same moment in every stream and in the annotations (the one grid turns seconds
into steps). A stream whose covered duration differs from the grid stream's by more than
`duration_tolerance` (a second plus the coarser step) is refused, naming the video and the stream:
that is a different or truncated recording, not a rate difference.

The joined array has the channels of the streams in `DataConfig.input_streams` order (grid stream
first) and the grid stream's length; the model splits them again (`model.stream_dims`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mgrec.config import DataConfig, StreamConfig
from mgrec.data.features import check_sidecar, feature_path, load_features, read_sidecar, sidecar_path
from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid

DURATION_TOLERANCE_SECONDS = 1.0


def resample_to_grid(features: np.ndarray, source: FeatureGrid, target: FeatureGrid, length: int) -> np.ndarray:
    """(T_s, C) features on grid `source` -> (length, C) float32 on grid `target` (module docstring).

    Exact where the grids coincide: the same grid returns the features unchanged (as float32)."""
    if source == target and len(features) == length:
        return features.astype(np.float32, copy=False)
    if len(features) == 0:
        raise ValueError("cannot resample a stream without any feature rows")
    times = target.index_to_seconds(np.arange(length, dtype=np.float64))
    positions = np.clip(np.atleast_1d(source.seconds_to_index(times)), 0.0, len(features) - 1)
    below = np.minimum(np.floor(positions).astype(np.int64), len(features) - 1)
    above = np.minimum(below + 1, len(features) - 1)
    weight = (positions - below)[:, None].astype(np.float32)
    low = features[below].astype(np.float32, copy=False)
    return low + weight * (features[above].astype(np.float32, copy=False) - low)


def duration_tolerance(a: FeatureGrid, b: FeatureGrid) -> float:
    """How far two streams of one video may disagree in covered seconds: a second plus the coarser step
    (windows of different lengths end at different moments of the same recording)."""
    return DURATION_TOLERANCE_SECONDS + max(a.seconds_per_step(), b.seconds_per_step(),
                                            a.window / a.fps, b.window / b.fps)


def stream_key(data: DataConfig, stream: StreamConfig) -> str:
    """The config key of a stream, for messages: `data.streams[i]`, or `data` for the one stream."""
    for i, candidate in enumerate(data.streams):
        if candidate.name == stream.name:
            return f"data.streams[{i}]"
    return "data"


def stream_path(stream: StreamConfig, video_id: str, folders: dict[str, Path] | None = None) -> Path:
    """`<folder>/<video_id><ext>` of one stream; `folders` may replace a stream's folder (by name)."""
    folder = (folders or {}).get(stream.name, stream.features)
    return feature_path(folder, video_id, stream.feature_ext)


def stream_fps(stream: StreamConfig, path: Path, video_fps: float | None, key: str) -> float | None:
    """A stream's fps: its config's, else its sidecar's (after checking the sidecar's recipe), else the video's."""
    side = sidecar_path(path)
    sidecar = None
    if side.exists():
        sidecar = read_sidecar(side)
        check_sidecar(sidecar, stream.stride, stream.window, stream.feature_dim, fps=stream.fps, source=side,
                      key_prefix=f"{key}.")
    if stream.fps is not None:
        return stream.fps
    return sidecar.fps if sidecar is not None else video_fps


def load_video_streams(
    data: DataConfig,
    video_id: str,
    video_fps: float | None,
    folders: dict[str, Path] | None = None,
    main_path: Path | None = None,
) -> np.ndarray:
    """One video's (T, C) model input: every stream's features on the grid stream's grid, joined.

    `video_fps`: the video's fps (annotations or the grid stream's sidecar); `folders`: stream name ->
    folder replacing the config's; `main_path`: the grid stream's file, when the caller has it (a
    file named on the command line). With one stream this is `load_features` of that file."""
    streams = data.input_streams()
    main = streams[0]
    main_file = main_path if main_path is not None else stream_path(main, video_id, folders)
    main_features = load_features(main_file, expected_dim=main.feature_dim)
    if len(streams) == 1:
        return main_features
    grid = data.grid(video_fps)
    length = len(main_features)
    parts = [main_features.astype(np.float32, copy=False)]
    for stream in streams[1:]:
        key = stream_key(data, stream)
        path = stream_path(stream, video_id, folders)
        if not path.is_file():
            raise InputError(f"video {video_id}: stream {stream.name!r} has no feature file {path} (every video "
                             f"needs every stream of data.streams; extract it, or set {key}.features)")
        features = load_features(path, expected_dim=stream.feature_dim)
        own = stream.grid(stream_fps(stream, path, video_fps, key))
        covered, expected = own.covered_seconds(len(features)), grid.covered_seconds(length)
        if abs(covered - expected) > duration_tolerance(own, grid):
            raise InputError(
                f"video {video_id}: stream {stream.name!r} ({path}) covers {covered:.2f} s but the grid stream "
                f"{main.name!r} covers {expected:.2f} s (tolerance {duration_tolerance(own, grid):.2f} s): a "
                "different or truncated recording, or a wrong fps/stride/window in its sidecar or config")
        parts.append(resample_to_grid(features, own, grid, length))
    return np.concatenate(parts, axis=1)


def stream_folders(items: list[str], data: DataConfig) -> dict[str, Path]:
    """`NAME=FOLDER` items (the command line's `--stream`) -> {name: folder}, names checked against the run."""
    names = [s.name for s in data.input_streams()]
    folders: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise InputError(f"--stream {item!r}: expected NAME=FOLDER (streams of this run: {', '.join(names)})")
        if name not in names:
            raise InputError(f"--stream {item!r}: no stream {name!r} in this run (its streams: {', '.join(names)})")
        if name in folders:
            raise InputError(f"--stream: stream {name!r} is given twice")
        folders[name] = Path(folder)
    return folders
