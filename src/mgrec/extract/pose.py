"""Body and hand landmarks from any video (MediaPipe), pooled per window: `mgrec extract --backbone pose`.

MediaPipe 0.10.21 is the last release that ships its models in the wheel, and it needs numpy<2, so
it lives in its own venv: `make pose-env`, then `.venv-pose/bin/mgrec extract --backbone pose ...`.
This module imports MediaPipe only when extracting, so the numpy part below runs anywhere.

Per frame (frames decoded at their own size, aspect kept: a 16:9 frame squashed to a square, as
the RGB backbones take it, made the head and shoulder landmarks 3.5x less accurate, measured on
carphone padded to 16:9):
- MediaPipe Pose (model_complexity=1: the full landmark model, the only one the wheel ships)
  tracks one person. Its landmarks 0-24 are kept (face, shoulders, elbows, wrists, the pose's
  hand points, hips); the legs 25-32 are left out: in upper-body videos they are out of frame
  and their guessed positions would only add noise.
- MediaPipe Hands (model_complexity=1, up to two hands) runs only on frames where the pose found a
  person with a wrist inside the frame or less than `WRIST_MARGIN` of the frame's size outside
  it: there can be no hand to find otherwise. On carphone (head and shoulders) this skips Hands
  on every frame, about 40% of the time; on Megamind the gated run keeps all 143 frames with a
  hand that running Hands on all 269 frames found, and runs it on 182. A hand is given to the
  body side whose pose wrist is nearest to the hand's own wrist point, not by MediaPipe's
  handedness label (which assumes a mirrored selfie camera); a hand whose wrist is more than
  `MAX_HAND_TO_WRIST` shoulder widths from both pose wrists (someone else's, or a false find) is
  dropped.

Normalisation, as the Kinect extractor (`mgrec.extract.skeleton`) does with its joints: pixel
coordinates (x right, y down) relative to the frame's shoulder centre (midpoint of pose landmarks
11 and 12), divided by the person's shoulder width (median over the frames with a person). The
first slot, which has no landmark, holds the shoulder centre's displacement from its mean
position (same units), so that leaning and shifting are not lost. Per frame that is
`NUM_POINTS` = 68 points x (x, y):

    0       shoulder centre - its mean over the video
    1-25    pose landmarks 0-24 (MediaPipe order: nose, eyes, ears, mouth, shoulders 11-12, ...)
    26-46   left hand, the person's own left (MediaPipe hand order: wrist, thumb 1-4, index 5-8, ...)
    47-67   right hand

Velocities are frame differences times fps (shoulder widths per second; zero for the first frame).
Each window [i*stride, i*stride + window) is pooled into

    mean position (136) | mean velocity (136, signed) | max |velocity| (136) | presence (3)

where presence is the share of the window's frames in which a person, a left hand and a right hand
were found. `POSE_DIM` = 411 values, one row per complete window like every extractor.

Missing landmarks:
- A frame with no person found is handled as the Kinect extractor handles untracked frames: it
  takes every point of the nearest earlier frame with a person (of the first one, at the start),
  so it adds no motion. Their number is counted and reported (a warning of the result, printed by
  `mgrec extract`); per window it is in the presence share. A video with no person at all is
  refused (InputError).
- A hand not found on a frame with a person keeps its last seen shape (relative to its wrist; the
  first seen shape before it is first found), moved to the pose's wrist of that side; a hand never
  found in the video is all 21 points at the pose wrist. Its presence share says how often it was
  really seen.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mgrec.data.features import (
    FeatureSidecar,
    check_feature_values,
    check_unchanged,
    source_stamp,
    write_features,
)
from mgrec.errors import InputError
from mgrec.extract.outputs import (
    ExtractResult,
    FrameCounter,
    check_length,
    check_numbers,
    finished_sidecar,
    holding,
    raise_failures,
    refuse_a_file_mgrec_did_not_write,
    skipped,
    ticking,
)
from mgrec.extract.skeleton import window_means, window_peaks
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
from mgrec.files import StoppedIn, resolve_path
from mgrec.smg_csv import fps_problem
from mgrec.timeline import FeatureGrid

POSE = "pose"  # the backbone name, recorded in the sidecar
MEDIAPIPE_VERSION = "0.10.21"
BODY_LANDMARKS = 25  # MediaPipe Pose landmarks 0-24: everything above the knees
HAND_LANDMARKS = 21
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_WRIST, RIGHT_WRIST = 11, 12, 15, 16
# The points of a frame, in order (x, y each): see the module doc.
CENTRE_SLOT, BODY_SLOT = 0, 1
LEFT_HAND_SLOT = BODY_SLOT + BODY_LANDMARKS
RIGHT_HAND_SLOT = LEFT_HAND_SLOT + HAND_LANDMARKS
NUM_POINTS = RIGHT_HAND_SLOT + HAND_LANDMARKS
POSITION_DIM = 2 * NUM_POINTS
PRESENCE_DIM = 3  # person, left hand, right hand
POSE_DIM = 3 * POSITION_DIM + PRESENCE_DIM
# Column slices of a feature row.
MEAN_POSITION = slice(0, POSITION_DIM)
MEAN_VELOCITY = slice(POSITION_DIM, 2 * POSITION_DIM)
PEAK_SPEED = slice(2 * POSITION_DIM, 3 * POSITION_DIM)
PRESENCE = slice(3 * POSITION_DIM, POSE_DIM)
# Hands run when a pose wrist lies within this share of the frame's width/height outside the frame:
# a hand reaches past its wrist, and the pose's guess of a wrist at the edge is rough. On Megamind,
# 0.2 kept every frame with a hand (0.1 lost 6 of 143).
WRIST_MARGIN = 0.2
# A found hand farther than this (shoulder widths) from both pose wrists is not this person's;
# the farthest own hand seen on Megamind was 1.27.
MAX_HAND_TO_WRIST = 2.0
DECODE_AHEAD = 16  # frames decoded ahead of MediaPipe: native-size frames can be large


@dataclass(frozen=True)
class LandmarkTrack:
    """Landmarks of every frame in pixels (x right, y down); NaN where nothing was found."""

    body: np.ndarray  # (frames, BODY_LANDMARKS, 2)
    left_hand: np.ndarray  # (frames, HAND_LANDMARKS, 2), the person's own left
    right_hand: np.ndarray  # (frames, HAND_LANDMARKS, 2)

    @property
    def person_found(self) -> np.ndarray:
        return ~np.isnan(self.body).any(axis=(1, 2))

    @property
    def frames_without_person(self) -> int:
        return int((~self.person_found).sum())


def _latest(found: np.ndarray) -> np.ndarray:
    """For each frame, the index of the latest frame at or before it where `found` (the first such, before it)."""
    latest = np.maximum.accumulate(np.where(found, np.arange(len(found)), -1))
    latest[latest < 0] = np.argmax(found)
    return latest


def _filled_hand(hand: np.ndarray, found: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """A hand on every frame: where not found, its last (else first) seen shape moved to the pose wrist."""
    if not found.any():
        return np.repeat(wrist[:, None], HAND_LANDMARKS, axis=1)
    shape = hand - hand[:, :1]  # relative to the hand's own wrist point
    moved = shape[_latest(found)] + wrist[:, None]
    return np.where(found[:, None, None], hand, moved)


def pose_window_features(track: LandmarkTrack, fps: float, window: int, stride: int,
                         source: object = "pose") -> np.ndarray:
    """Landmarks of every frame -> (num_windows, POSE_DIM) float32 (the layout: see the module doc).

    InputError naming `source` when no frame has a person, when the shoulders coincide on every
    frame (no scale), for an fps `fps_problem` refuses, and for features that fail
    `check_feature_values`."""
    problem = fps_problem(fps)
    if problem:
        raise InputError(f"{source}: {problem}")
    person = track.person_found
    if not person.any():
        raise InputError(f"{source}: no person found in any of its {len(person)} frames")
    # A hand can only be found with a person (Hands runs on those frames only); enforce it here too.
    left_found = person & ~np.isnan(track.left_hand).any(axis=(1, 2))
    right_found = person & ~np.isnan(track.right_hand).any(axis=(1, 2))
    body = track.body.astype(np.float64)
    left = _filled_hand(track.left_hand.astype(np.float64), left_found, body[:, LEFT_WRIST])
    right = _filled_hand(track.right_hand.astype(np.float64), right_found, body[:, RIGHT_WRIST])
    # Frames without a person take every point of the nearest earlier frame with one.
    points = np.concatenate([body, left, right], axis=1)[_latest(person)]

    centre = (points[:, LEFT_SHOULDER] + points[:, RIGHT_SHOULDER]) / 2
    widths = np.linalg.norm(points[person, LEFT_SHOULDER] - points[person, RIGHT_SHOULDER], axis=-1)
    scale = float(np.median(widths))
    if not scale > 1e-3:  # pixels; also catches NaN
        raise InputError(f"{source}: the shoulders coincide on most frames (shoulder width {scale:.3g} px); "
                         "cannot normalise the pose")
    displacement = centre - centre[person].mean(axis=0)
    pose = np.concatenate([displacement[:, None], points - centre[:, None]], axis=1)
    pose = pose.reshape(len(pose), -1) / scale
    velocity = np.diff(pose, axis=0, prepend=pose[:1]) * fps
    presence = np.stack([person, left_found, right_found], axis=1).astype(np.float64)

    starts = np.arange(0, len(pose) - window + 1, stride)
    with np.errstate(over="ignore"):  # a value beyond float32 becomes Inf, which the check below names
        features = np.concatenate(
            [window_means(pose, starts, window), window_means(velocity, starts, window),
             window_peaks(np.abs(velocity), starts, window), window_means(presence, starts, window)], axis=1
        ).astype(np.float32)
    check_feature_values(features, f"{source}: the features made from it")
    return features


# ---------------------------------------------------------------------------------------------
# MediaPipe


def load_mediapipe():
    """The `mediapipe` module with its legacy `solutions` API, or one InputError that says how to get it."""
    fix = f"run `make pose-env`, then `.venv-pose/bin/mgrec extract --backbone {POSE} ...`"
    try:
        import mediapipe
    except Exception as exc:  # a broken install (e.g. one beside numpy 2) fails in many ways, not only ImportError
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise InputError(f"--backbone {POSE} needs mediapipe=={MEDIAPIPE_VERSION}, which {sys.executable} "
                         f"cannot import ({reason}); {fix}") from None
    if not hasattr(mediapipe, "solutions"):
        version = getattr(mediapipe, "__version__", "?")
        raise InputError(f"--backbone {POSE} needs mediapipe=={MEDIAPIPE_VERSION}; {sys.executable} has "
                         f"mediapipe {version}, which ships neither the pose and hand models nor their API; {fix}")
    return mediapipe


class LandmarkTracker:
    """MediaPipe Pose and Hands in video mode (each frame tracked from the previous one) for one video."""

    def __init__(self, mediapipe):
        self.pose = mediapipe.solutions.pose.Pose(model_complexity=1)
        self.hands = mediapipe.solutions.hands.Hands(model_complexity=1, max_num_hands=2)

    def close(self) -> None:
        self.pose.close()
        self.hands.close()

    def __enter__(self) -> LandmarkTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def track(self, frames: Iterable[np.ndarray]) -> LandmarkTrack:
        """(H, W, 3) uint8 RGB frames in order -> their landmarks in pixels."""
        body_rows, left_rows, right_rows = [], [], []
        missing_body = np.full((BODY_LANDMARKS, 2), np.nan, dtype=np.float32)
        missing_hand = np.full((HAND_LANDMARKS, 2), np.nan, dtype=np.float32)
        for frame in frames:
            height, width = frame.shape[:2]
            size = np.array([width, height], dtype=np.float32)
            found = self.pose.process(frame).pose_landmarks
            left = right = missing_hand
            if found is None:
                body = missing_body
            else:
                normalised = np.array([(p.x, p.y) for p in found.landmark[:BODY_LANDMARKS]], dtype=np.float32)
                body = normalised * size
                wrists = normalised[[LEFT_WRIST, RIGHT_WRIST]]
                if ((wrists >= -WRIST_MARGIN) & (wrists <= 1 + WRIST_MARGIN)).all(axis=1).any():
                    hands = self.hands.process(frame).multi_hand_landmarks or []
                    found_hands = [np.array([(p.x, p.y) for p in hand.landmark], dtype=np.float32) * size
                                   for hand in hands]
                    left, right = assign_hands(found_hands, body, missing_hand)
            body_rows.append(body)
            left_rows.append(left)
            right_rows.append(right)
        if not body_rows:
            empty = np.zeros((0, 1, 2), dtype=np.float32)
            return LandmarkTrack(empty.repeat(BODY_LANDMARKS, 1), *[empty.repeat(HAND_LANDMARKS, 1)] * 2)
        return LandmarkTrack(np.stack(body_rows), np.stack(left_rows), np.stack(right_rows))


def assign_hands(hands: list[np.ndarray], body: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) of one frame: each (21, 2) hand to the side whose pose wrist is nearest its own
    wrist point (two hands: the pairing with the smaller total distance); `missing` for a side
    without one. A hand farther than MAX_HAND_TO_WRIST shoulder widths from both wrists is dropped."""
    wrists = body[[LEFT_WRIST, RIGHT_WRIST]]
    reach = MAX_HAND_TO_WRIST * float(np.linalg.norm(body[LEFT_SHOULDER] - body[RIGHT_SHOULDER]))
    hands = [h for h in hands if np.linalg.norm(wrists - h[0], axis=1).min() <= reach]
    sides = [missing, missing]
    if len(hands) == 1:
        sides[int(np.argmin(np.linalg.norm(wrists - hands[0][0], axis=1)))] = hands[0]
    elif len(hands) >= 2:  # max_num_hands=2
        first, second = hands[:2]
        kept = (np.linalg.norm(first[0] - wrists[0]) + np.linalg.norm(second[0] - wrists[1])
                <= np.linalg.norm(first[0] - wrists[1]) + np.linalg.norm(second[0] - wrists[0]))
        sides = [first, second] if kept else [second, first]
    return sides[0], sides[1]


def extract_poses(
    videos: Iterable[str | Path],
    out_dir: str | Path,
    window: int = 16,
    stride: int = 4,
    progress: bool = True,
) -> list:
    """Pose features (see the module doc) of video files, or of all videos in folders (recursively).

    Resumes, writes and fails as `mgrec.extract.jobs.extract_videos` does: a video whose finished
    sidecar has this recipe (backbone 'pose', window, stride) is skipped; features are written
    atomically and the sidecar last; a video that fails does not stop the others, and one
    InputError lists all failures at the end. Returns `mgrec.extract.outputs.ExtractResult`s, whose
    warnings count the frames without a person."""

    check_numbers(window=window, stride=stride)
    mediapipe = load_mediapipe()  # before any work: the one fix is another venv
    files = collect_inputs(videos, VIDEO_SUFFIXES, "video file")
    check_feature_names(files, out_dir)  # every process checks the whole set
    files = shard_for_this_process(files)
    where = StoppedIn("video", len(files), lambda done: f"the features of those finished are in {out_dir}: the same "
                      "command again skips them")
    with holding(out_dir), where:
        return _extract_pose_files(files, Path(out_dir), mediapipe, window, stride, progress, where)


def _extract_pose_files(files: list[Path], out_dir: Path, mediapipe, window: int, stride: int, progress: bool,
                        where: StoppedIn) -> list:
    """`extract_poses`'s work, in its held output folder; `where` is told each video it starts, and the loop's end."""
    results, failures = [], []
    for path in where.each(tqdm(files, desc="videos", unit="video", disable=not progress or len(files) < 2)):
        feature_path = out_dir / f"{video_id(path)}.npy"
        done = finished_sidecar(feature_path, POSE, None, window, stride, source=path)
        if done is not None:
            results.append(skipped(path, feature_path, done))
            continue
        started = time.perf_counter()
        try:
            refuse_a_file_mgrec_did_not_write(feature_path, path)  # before decoding: nothing lost, no time either
            stamp = source_stamp(path)  # before reading: a file changed meanwhile is re-extracted next time
            stream = probe_video(path)
            # size None: PyAV keeps each frame's own size (see the module doc for why not a square).
            frames = FrameCounter(iter_frames(path, None))
            with tqdm(total=stream.declared_frames or None, desc=path.name, unit="frame", leave=False,
                      disable=not progress) as frame_bar, LandmarkTracker(mediapipe) as tracker, \
                    closing(prefetch(iter(frames), DECODE_AHEAD)) as ahead:  # its thread ends with the video
                track = tracker.track(ticking(ahead, frame_bar))
            check_length(path, frames.count, window)
            check_unchanged(path, stamp)  # a recording still being written was extracted up to where it was
            features = pose_window_features(track, stream.fps, window, stride, source=path)
        except InputError as exc:
            failures.append(str(exc))
            continue
        grid = FeatureGrid(stream.fps, stride, window)
        assert len(features) == grid.num_windows(frames.count), "windowing disagrees with FeatureGrid"
        sidecar = FeatureSidecar(fps=stream.fps, stride=stride, window=window, backbone=POSE, dim=POSE_DIM,
                                 frames=frames.count, source_stamp=stamp, source=str(resolve_path(path)))
        write_features(feature_path, features, sidecar)
        warnings = ()
        if track.frames_without_person:
            warnings = (
                f"{path}: {track.frames_without_person} of {frames.count} frames had no person found; "
                "they repeat the previous frame's landmarks",
            )
        results.append(ExtractResult(path, feature_path, "extracted", frames.count, len(features),
                                     time.perf_counter() - started, warnings))
    raise_failures(failures, len(files), results)
    return results
