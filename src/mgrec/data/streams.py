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

Live streams (`StreamAligner`): the same rows, each as soon as every stream has passed its time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mgrec.config import DataConfig, StreamConfig
from mgrec.data.features import (
    FeatureSidecar,
    check_feature_values,
    check_sidecar,
    feature_path,
    given_array,
    load_features,
    read_sidecar,
    sidecar_path,
    source_stamp,
)
from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid

DURATION_TOLERANCE_SECONDS = 1.0
# A live stream that stops sending stalls every grid step after it, while the others' rows pile up. Past this
# lag the stall is an error naming the stream, not a buffer that grows for as long as the others send.
MAX_STREAM_LAG_SECONDS = 60.0


def resample_to_grid(features: np.ndarray, source: FeatureGrid, target: FeatureGrid, length: int) -> np.ndarray:
    """(T_s, C) features on grid `source` -> (length, C) float32 on grid `target` (module docstring).

    Exact where the grids coincide: the same grid returns the features unchanged (as float32)."""
    if source == target and len(features) == length:
        return features.astype(np.float32, copy=False)
    if len(features) == 0:
        raise ValueError("cannot resample a stream without any feature rows")
    positions = np.clip(source_positions(source, target, np.arange(length)), 0.0, len(features) - 1)
    return interpolate(features, positions)


def source_positions(source: FeatureGrid, target: FeatureGrid, steps: np.ndarray) -> np.ndarray:
    """Fractional rows of grid `source` at the centre times of rows `steps` of grid `target`."""
    return np.atleast_1d(source.seconds_to_index(target.index_to_seconds(np.asarray(steps, dtype=np.float64))))


def interpolate(features: np.ndarray, positions: np.ndarray, first_row: int = 0) -> np.ndarray:
    """Rows at fractional `positions` (within the rows held) of `features`, whose row 0 is row `first_row`
    of its stream: the linear interpolation of its two neighbours, float32."""
    local = positions - first_row
    below = np.minimum(np.floor(local).astype(np.int64), len(features) - 1)
    above = np.minimum(below + 1, len(features) - 1)
    weight = (local - below)[:, None].astype(np.float32)
    low = features[below].astype(np.float32, copy=False)
    return low + weight * (features[above].astype(np.float32, copy=False) - low)


def duration_tolerance(a: FeatureGrid, b: FeatureGrid) -> float:
    """How far two streams of one video may disagree in covered seconds: a second plus the coarser step
    (windows of different lengths end at different moments of the same recording)."""
    return DURATION_TOLERANCE_SECONDS + max(a.seconds_per_step(), b.seconds_per_step(),
                                            a.window / a.fps, b.window / b.fps)


# Where several streams' files are kept side by side (`detect --keep-features` of a run of several streams, or of an
# ensemble's member; `--member M=FOLDER` reads them so): the grid stream's in FOLDER/grid/, each other's in
# FOLDER/<stream>/.
GRID_STREAM_FOLDER = "grid"


def member_streams_advice(index: int, grid_stream: str, stream: str) -> str:
    """How member `index` (1 or more) of a detection-level ensemble, which reads several streams, is given the folder
    of its `stream` with its grid stream's: `--member` (`--stream` names member 0's)."""
    return (f"--member {index}=FOLDER, its {grid_stream!r} files in FOLDER/{GRID_STREAM_FOLDER}/ and its {stream!r} "
            f"files in FOLDER/{stream}/ (as detect --keep-features keeps them)")


def stream_folder_advice(name: str) -> str:
    """How `detect` and `stream` are given the folder of a run's stream `name` (an ensemble's member 1 and up: not so,
    `OfflineDetector.member_refusal`)."""
    return f"detect and stream take --stream {name}=FOLDER"


def stream_key(data: DataConfig, stream: StreamConfig) -> str:
    """The config key of a stream, for messages: `data.streams[i]`, or `data` for the one stream."""
    for i, candidate in enumerate(data.streams):
        if candidate.name == stream.name:
            return f"data.streams[{i}]"
    return "data"


def stream_path(stream: StreamConfig, video_id: str, folders: dict[str, Path] | None = None) -> Path:
    """`<folder>/<video_id><ext>` of one stream; `folders` may replace a stream's folder (by name)."""
    folder = (folders or {}).get(stream.name, stream.features)
    return feature_path(folder, video_id, stream.feature_ext, stream.feature_prefix)


# Checks a stream's sidecar against how a run's features of that stream were made (`OfflineDetector`):
# called with the stream's name, its sidecar and the sidecar's path.
RecipeCheck = Callable[[str, FeatureSidecar, Path], None]


def stream_fps(stream: StreamConfig, path: Path, video_fps: float | None, key: str,
               check_recipe: RecipeCheck | None = None) -> float | None:
    """A stream's fps: its config's, else its sidecar's (after checking the sidecar against the config and,
    with `check_recipe`, against the run's recipe of this stream), else the video's."""
    side = sidecar_path(path)
    sidecar = None
    if side.exists():
        sidecar = read_sidecar(side)
        if check_recipe is not None:  # a run's: the config's fields and its recipe's, every difference in one message
            check_recipe(stream.name, sidecar, side)
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
    check_recipe: RecipeCheck | None = None,
    stamps: list[tuple[Path, str]] | None = None,
) -> np.ndarray:
    """One video's (T, C) model input: every stream's features on the grid stream's grid, joined.

    `video_fps`: the video's fps (annotations or the grid stream's sidecar); `folders`: stream name ->
    folder replacing the config's; `main_path`: the grid stream's file, when the caller has it (a
    file named on the command line); `check_recipe`: checks each other stream's sidecar against a run's
    recipe (the grid stream's is the caller's to check); `stamps`: where given, each file read is appended with its
    `source_stamp` from before it was read, for the caller to check once it has used the rows (`check_unchanged`: a
    .npy is memory-mapped, read as it is used). With one stream this is `load_features` of that file."""
    loaded = load_stream_files(data, video_id, video_fps, folders, main_path, check_recipe, stamps)
    if len(loaded) == 1:
        return loaded[0][0]
    (main_features, grid), length = loaded[0], len(loaded[0][0])
    parts = [main_features.astype(np.float32, copy=False)]
    parts += [resample_to_grid(features, own, grid, length) for features, own in loaded[1:]]
    return np.concatenate(parts, axis=1)


def load_stream_files(
    data: DataConfig,
    video_id: str,
    video_fps: float | None,
    folders: dict[str, Path] | None = None,
    main_path: Path | None = None,
    check_recipe: RecipeCheck | None = None,
    stamps: list[tuple[Path, str]] | None = None,
) -> list[tuple[np.ndarray, FeatureGrid | None]]:
    """Every stream's features of one video, each on its own grid, checked (files, dims, recipes,
    durations) but not resampled: (features, grid) per stream in `DataConfig.input_streams` order
    (with one stream, its grid is None: it is the data's). Arguments as for `load_video_streams`."""
    streams = data.input_streams()
    main = streams[0]
    main_file = main_path if main_path is not None else stream_path(main, video_id, folders)
    _stamp(main_file, stamps)
    main_features = load_features(main_file, expected_dim=main.feature_dim,
                                  dim_key=f"{stream_key(data, main)}.feature_dim, stream {main.name!r}"
                                  if data.streams else "data.feature_dim")
    if len(streams) == 1:
        return [(main_features, None)]
    grid = data.grid(video_fps)
    length = len(main_features)
    loaded: list[tuple[np.ndarray, FeatureGrid | None]] = [(main_features, grid)]
    for stream in streams[1:]:
        key = stream_key(data, stream)
        path = stream_path(stream, video_id, folders)
        if not path.is_file():
            raise InputError(f"video {video_id}: stream {stream.name!r} has no feature file {path} (every video "
                             f"needs every stream of data.streams; extract it, or set {key}.features; "
                             f"{stream_folder_advice(stream.name)})")
        _stamp(path, stamps)
        features = load_features(path, expected_dim=stream.feature_dim,
                                 dim_key=f"{key}.feature_dim, stream {stream.name!r}")
        own = stream.grid(stream_fps(stream, path, video_fps, key, check_recipe))
        covered, expected = own.covered_seconds(len(features)), grid.covered_seconds(length)
        if abs(covered - expected) > duration_tolerance(own, grid):
            raise InputError(
                f"video {video_id}: stream {stream.name!r} ({path}) covers {covered:.2f} s but the grid stream "
                f"{main.name!r} covers {expected:.2f} s (tolerance {duration_tolerance(own, grid):.2f} s): a "
                "different or truncated recording, or a wrong fps/stride/window in its sidecar or config")
        loaded.append((features, own))
    return loaded


def _stamp(path: Path, stamps: list[tuple[Path, str]] | None) -> None:
    """`path` with its `source_stamp` of now appended to `stamps` (where given), before its reading; a file already
    there keeps the stamp it had (a caller that stamped it earlier, before reading its sidecar)."""
    if stamps is not None and Path(path).is_file() and all(Path(path) != done for done, _ in stamps):
        stamps.append((Path(path), source_stamp(path)))


class StreamAligner:
    """Live features of several streams -> the joined rows `load_video_streams` makes of whole files,
    each grid step as soon as every stream has passed its time, so online detection needs no file.

        aligner = StreamAligner(config.data, video_fps)
        rows = aligner.push({"rgb": rgb_chunk, "skeleton": skeleton_chunk})   # (n, C) rows ready now
        rows = aligner.flush()                                                  # the rest, at the end

    Grid step j is ready when the grid stream has delivered row j and every other stream has
    delivered the rows around t_j (its row at or after t_j). Until the end, a stream's last row is
    not known to be its last, so the rows beyond it wait; `flush` holds each stream's last row
    from there on, as `resample_to_grid` does, so the rows are exactly those of the whole files.
    Memory stays bounded: each stream keeps only the rows the next pending grid step still needs.
    """

    def __init__(self, data: DataConfig, video_fps: float | None, stream_fps: dict[str, float] | None = None) -> None:
        """`stream_fps`: a stream's fps where its config leaves it out and its sidecar gives it (as
        `load_stream_files` reads it); else the video's."""
        self.streams = data.input_streams()
        self.grid = data.grid(video_fps)
        own_fps = [s.fps if s.fps is not None else (stream_fps or {}).get(s.name, video_fps) for s in self.streams]
        self.stream_grids = [self.grid] + [s.grid(fps) for s, fps in zip(self.streams[1:], own_fps[1:])]
        self._held = [np.zeros((0, s.feature_dim), dtype=np.float32) for s in self.streams]
        self._first_row = [0] * len(self.streams)  # stream row number of _held[s][0]
        self._received = [0] * len(self.streams)
        self._next_step = 0  # the first grid step not released yet

    def push(self, chunks: dict[str, np.ndarray]) -> np.ndarray:
        """Add rows of any streams (by name, each (n, its dim)); returns the joined grid rows now ready.

        Every chunk is checked before any is taken, and a push that leaves a stream too far behind is undone: a
        refused push changes nothing, so the caller may send it again corrected without the streams slipping
        against each other."""
        if not isinstance(chunks, dict):
            raise InputError(f"expected {{stream name: (T, C) rows}}, got {type(chunks).__name__}")
        checked = []
        for name, chunk in chunks.items():
            index = self._index(name)
            expected = self.streams[index].feature_dim
            chunk = given_array(chunk, f"stream {name!r}", f"an array (T, {expected})")
            if chunk.ndim != 2 or chunk.shape[1] != expected:
                raise InputError(f"stream {name!r}: expected an array (T, {expected}), got "
                                 f"{getattr(chunk, 'shape', type(chunk).__name__)}")
            check_feature_values(chunk, f"stream {name!r} (rows {self._received[index]}..)")
            checked.append((index, chunk.astype(np.float32, copy=False)))
        before = self.snapshot()
        for index, chunk in checked:
            self._held[index] = np.concatenate([self._held[index], chunk])
            self._received[index] += len(chunk)
        rows = self._release(final=False)
        try:
            self._check_lag()
        except InputError:  # undone: the rows it released are released again by the push that follows
            self.restore(before)
            raise
        return rows

    def snapshot(self) -> tuple:
        """What the aligner holds now, for `restore`: a caller feeding several aligners at once (an ensemble's members)
        undoes the pushes that went through when a later one is refused."""
        return list(self._held), list(self._first_row), list(self._received), self._next_step

    def restore(self, snapshot: tuple) -> None:
        self._held, self._first_row, self._received, self._next_step = snapshot

    def _check_lag(self) -> None:
        covered = [grid.covered_seconds(n) for grid, n in zip(self.stream_grids, self._received)]
        held = [len(rows) * grid.seconds_per_step() for rows, grid in zip(self._held, self.stream_grids)]
        if max(held) > MAX_STREAM_LAG_SECONDS:
            behind = [s.name for s, c in zip(self.streams, covered) if c < max(covered) - MAX_STREAM_LAG_SECONDS]
            names = behind or [self.streams[int(np.argmin(covered))].name]
            raise InputError(f"stream(s) {', '.join(names)} more than {MAX_STREAM_LAG_SECONDS:g} s behind the others "
                             f"(received up to {min(covered):.1f} s, the others up to {max(covered):.1f} s): no grid "
                             "step can be detected until every stream of the run arrives")

    def flush(self) -> np.ndarray:
        """End of every stream: the grid rows still waiting (each stream's last row held beyond its end)."""
        missing = [s.name for s, n in zip(self.streams, self._received) if n == 0]
        if missing and any(self._received):  # some streams sent rows, others none (no stream at all: an empty one)
            raise InputError(f"stream(s) {', '.join(missing)} sent no features: every stream of the run is needed")
        return self._release(final=True)

    def ready_seconds(self, step: int) -> float:
        """Seconds of the video at which grid step `step` can be joined, its streams' rows fed as they exist: the end
        of its grid stream's window, and of the window of each other stream's row after its time (`_release`)."""
        times = [self.grid.covered_seconds(step + 1)]
        for grid in self.stream_grids[1:]:
            position = max(0.0, float(source_positions(grid, self.grid, np.array([step]))[0]))
            times.append(grid.covered_seconds(math.ceil(position) + 1))
        return max(times)

    def _index(self, name: str) -> int:
        for index, stream in enumerate(self.streams):
            if stream.name == name:
                return index
        raise InputError(f"no stream {name!r} in this run (its streams: {', '.join(s.name for s in self.streams)})")

    def _release(self, final: bool) -> np.ndarray:
        steps = np.arange(self._next_step, self._received[0])
        positions = [np.clip(source_positions(g, self.grid, steps), 0.0, None) for g in self.stream_grids[1:]]
        ready = len(steps)
        for s, position in enumerate(positions, start=1):
            if final:
                position[:] = np.minimum(position, self._received[s] - 1)
            else:  # the rows around each position must have arrived
                needed = np.floor(position) + (position > np.floor(position))
                ready = min(ready, int(np.searchsorted(needed, self._received[s] - 1, side="right")))
        ready = ready if self._received[0] and all(self._received) else 0
        if ready == 0:
            return np.zeros((0, sum(s.feature_dim for s in self.streams)), dtype=np.float32)
        parts = [self._held[0][self._next_step - self._first_row[0]:][:ready]]
        for s, position in enumerate(positions, start=1):
            parts.append(interpolate(self._held[s], position[:ready], self._first_row[s]))
        self._next_step += ready
        self._forget()
        return np.concatenate(parts, axis=1)

    def _forget(self) -> None:
        """Drop the rows no later grid step needs: those before the row below the next step's position."""
        keep_from = [self._next_step]
        for grid in self.stream_grids[1:]:
            position = max(0.0, float(source_positions(grid, self.grid, np.array([self._next_step]))[0]))
            keep_from.append(int(np.floor(position)))
        for s, first in enumerate(keep_from):
            # another stream keeps at least its last row: at the end, steps beyond it hold that row
            first = min(first, self._received[s] if s == 0 else max(0, self._received[s] - 1))
            drop = first - self._first_row[s]
            if drop > 0:
                self._held[s] = self._held[s][drop:]
                self._first_row[s] = first


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
        if name == names[0]:  # its files are the inputs named on the command line
            others = (f"--stream names the other streams ({', '.join(names[1:])})" if len(names) > 1 else
                      "this run reads one stream: leave --stream out")
            raise InputError(f"--stream {item!r}: {name!r} is the grid stream, read from the feature files given; "
                             f"{others}")
        if name in folders:
            raise InputError(f"--stream: stream {name!r} is given twice")
        folders[name] = Path(folder).expanduser()  # `--stream pose=~/x`: the shell leaves a ~ after '=' alone
    return folders
