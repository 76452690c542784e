"""Per-window features from SMG Kinect skeleton CSVs (no video needed).

`SampleXXXX_skeleton.csv` has one row per video frame with 25 joints x 11 values; the world
position x, y, z (metres) of each joint sits at offsets 0-2 of its 11 values. The joints are in
the Kinect v2 order (SpineBase, SpineMid, Neck, Head, ShoulderLeft, ...; see the SMG notes).

Per frame the pose is made independent of where the person stands and how tall they are:
joints relative to SpineMid, divided by the person's mean spine length (SpineBase to
SpineShoulder, averaged over the video). SpineMid's own slot, which would always be zero, holds
the body's displacement from its mean position instead (same units), so that stepping and leaning
are not lost. Velocities are frame differences times fps (spine lengths per second; zero for
the first frame). Each window [i*stride, i*stride + window) is pooled into

    mean position (75) | mean velocity (75, signed: the direction of movement) | max |velocity| (75)

giving `SKELETON_DIM` = 225 values, one row per complete window like the video backbones.

Frames where Kinect tracked nobody are stored as all zeros; they take the pose of the nearest
earlier tracked frame (or the first tracked frame, at the start), and their number is reported.

Numbers are checked where they enter: coordinates must be finite and within +-MAX_COORDINATE, the
fps must pass `mgrec.smg_csv.fps_problem`, and the features made pass the same numeric validator
as every feature file (`mgrec.data.features.check_feature_values`), so a broken file is refused
instead of becoming NaN or all-zero features.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mgrec.data.features import check_feature_values
from mgrec.errors import InputError, where
from mgrec.files import brief, decode_utf8, read_file_bytes, text_lines
from mgrec.smg_csv import DECIMAL_ROW, fps_problem, parses_as_number, read_data_file

NUM_JOINTS = 25
VALUES_PER_JOINT = 11
SPINE_BASE, SPINE_MID, SPINE_SHOULDER = 0, 1, 20
SKELETON_DIM = 3 * NUM_JOINTS * 3
# World coordinates are metres, and Kinect v2 sees 0.5-8 m; 1e4 also admits files in millimetres
# (the features are scale-free) while anything near 1e300 (corruption) is refused before the
# spine length, a norm of squared differences, overflows to Inf and turns every feature to 0.
MAX_COORDINATE = 1e4


@dataclass(frozen=True)
class Skeleton:
    positions: np.ndarray  # (frames, 25, 3) world coordinates in metres, untracked frames filled
    untracked_frames: int  # frames that were all zeros in the file


# Text in these characters alone is ASCII numbers as numpy reads them, or something numpy refuses ('1.0.0').
_DECIMAL_CHARACTERS = re.compile(r"[0-9eE+\-.,\s]*")


def read_skeleton_csv(path: Path) -> Skeleton:
    """Read the world joint positions of every frame; InputError (file:line) for malformed rows."""
    columns = NUM_JOINTS * VALUES_PER_JOINT
    text = decode_utf8(path, read_file_bytes(path, "skeleton"))
    lines, plain = text_lines(text), _DECIMAL_CHARACTERS.fullmatch(text) is not None
    while lines and not lines[-1].strip():  # a trailing newline (or a few) is not a frame
        lines.pop()
    if not lines:
        raise InputError(f"{path}: the skeleton file holds no frames")
    rows = np.empty((len(lines), columns), dtype=np.float64)
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        if len(fields) != columns:
            raise InputError(
                f"{where(path, number)}: expected {columns} comma-separated values "
                f"({NUM_JOINTS} joints x {VALUES_PER_JOINT}), found {len(fields)}"
            )
        try:  # numpy's parser also reads '1_0.5' and full-width digits: each line is checked unless the whole
            # text is written in the characters of decimal numbers alone (one pass, not a regex per line)
            if not plain and DECIMAL_ROW.fullmatch(line) is None:
                raise ValueError(line)
            rows[number - 1] = np.array(fields, dtype=np.float64)
        except ValueError:
            bad = next(field for field in fields if not parses_as_number(field))
            raise InputError(f"{where(path, number)}: expected numbers (ASCII digits), found {brief(bad.strip(' '))}"
                             ) from None
    if not np.isfinite(rows).all():
        line = int(np.argwhere(~np.isfinite(rows))[0][0]) + 1
        raise InputError(f"{where(path, line)}: NaN or infinite value")
    positions = rows.reshape(len(lines), NUM_JOINTS, VALUES_PER_JOINT)[:, :, :3]
    out_of_range = np.abs(positions) > MAX_COORDINATE
    if out_of_range.any():
        frame, joint, axis = (int(i) for i in np.argwhere(out_of_range)[0])
        raise InputError(
            f"{where(path, frame + 1)}: joint {joint} coordinate {'xyz'[axis]} = {positions[frame, joint, axis]:.3g} "
            f"is outside +-{MAX_COORDINATE:g} (world positions in metres): a corrupt file?"
        )
    tracked = np.any(positions != 0, axis=(1, 2))
    if not tracked.any():
        raise InputError(f"{path}: no frame has a tracked skeleton (all joint positions are zero)")
    # Index of the latest tracked frame at or before each frame (the first tracked one before it).
    latest = np.maximum.accumulate(np.where(tracked, np.arange(len(tracked)), -1))
    latest[latest < 0] = np.argmax(tracked)
    positions = positions[latest]
    if spine_length(positions) < 1e-6:
        raise InputError(f"{path}: SpineBase and SpineShoulder coincide in every frame (spine length zero)")
    return Skeleton(positions, int((~tracked).sum()))


def spine_length(positions: np.ndarray) -> float:
    """Mean distance SpineBase-SpineShoulder over the frames: the person's scale."""
    return float(np.linalg.norm(positions[:, SPINE_SHOULDER] - positions[:, SPINE_BASE], axis=-1).mean())


def read_sample_fps(path: Path) -> float:
    """The frame rate from an SMG `SampleXXXX_data.csv` (`numFrames,fps,maxDepth`; header optional).

    Read by `mgrec.smg_csv.read_data_file`, the one reader of these files: the fps is finite, > 0
    and at most `mgrec.smg_csv.MAX_FPS`."""
    return read_data_file(path)[1]


def window_means(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(frames, C) -> (len(starts), C): the mean over frames [s, s + window) for each start s, from cumulative
    sums (the sum over [s, s + window) is cum[s + window] - cum[s])."""
    cumulative = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    return (cumulative[starts + window] - cumulative[starts]) / window


def window_peaks(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(frames, C) -> (len(starts), C): the maximum over frames [s, s + window) for each start s."""
    if not len(starts):
        return np.zeros((0, values.shape[1]))
    return sliding_window_view(values, window, axis=0)[starts].max(axis=-1)


def skeleton_window_features(
    positions: np.ndarray, fps: float, window: int, stride: int, source: object = "skeleton"
) -> np.ndarray:
    """(frames, 25, 3) world joints -> (num_windows, SKELETON_DIM) float32 (see the module doc).

    InputError (naming `source`) for an fps that `fps_problem` refuses, and for features that fail
    `check_feature_values` (a pose too degenerate to normalise: values beyond its range)."""
    problem = fps_problem(fps)
    if problem:
        raise InputError(f"{source}: {problem}")
    centre = positions[:, SPINE_MID]
    pose = positions - centre[:, None]
    pose[:, SPINE_MID] = centre - centre.mean(axis=0)
    pose = pose.reshape(len(pose), -1) / spine_length(positions)
    velocity = np.diff(pose, axis=0, prepend=pose[:1]) * fps

    starts = np.arange(0, len(pose) - window + 1, stride)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes Inf, which the check below names
        features = np.concatenate([window_means(pose, starts, window), window_means(velocity, starts, window),
                                   window_peaks(np.abs(velocity), starts, window)], axis=1).astype(np.float32)
    check_feature_values(features, f"{source}: the features made from it")
    return features
