"""A tiny synthetic micro-gesture dataset for tests: SMG-shaped and learnable, built in milliseconds.

SMG-shaped: 28 fps videos with 16-frame feature windows every 4 frames (7 steps per second),
17 classes with long-tailed frequencies (geometric, the last class ten times rarer than the first),
and short, dense instances: LogNormal(median 11 steps = 1.6 s, sigma 0.6) clipped to [3, 40] steps,
separated by gaps of LogNormal(median 6.5 steps, just under 1 s, sigma 0.7) clipped to [1, 40] steps.

Learnable: every class has a fixed prototype vector (shared by all videos made with the same
`prototype_seed`); over an instance's feature steps the features are Gaussian noise (sigma 0.5)
plus that prototype times an envelope that rises over the first two steps and falls over the last
two, so class and extent can both be read from the features.

An instance over feature steps [a, b) is labelled from the boundary between steps a-1 and a to the
boundary between steps b-1 and b, i.e. frames [4a + 6, 4b + 6) (`FeatureGrid.index_to_seconds(a - 0.5)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgrec.data.demo import DatasetPaths, class_probabilities, write_dataset
from mgrec.records import AnnotationSet, Segment, VideoInfo
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=28.0, stride=4, window=16)
BACKBONE = "synthetic-prototypes-v1"
INSTANCE_STEPS = {"median": 11.0, "sigma": 0.6, "min": 3, "max": 40}
GAP_STEPS = {"median": 6.5, "sigma": 0.7, "min": 1, "max": 40}
RAREST_TO_COMMONEST = 0.1
NOISE = 0.5
RAMP_STEPS = 2


@dataclass(frozen=True)
class SyntheticVideo:
    """One synthetic video in memory."""

    info: VideoInfo
    features: np.ndarray  # (T, C) float32, T = GRID.num_windows(info.num_frames)
    segments: list[Segment]


def class_prototypes(num_classes: int, feature_dim: int, prototype_seed: int = 0) -> np.ndarray:
    """(K, C) random +-1 vectors: the signature each class adds to the features."""
    rng = np.random.default_rng(prototype_seed)
    return rng.choice([-1.0, 1.0], size=(num_classes, feature_dim))


def make_synthetic_video(
    video_id: str = "synthetic_000",
    length: int = 384,
    num_classes: int = 17,
    feature_dim: int = 32,
    seed: int = 0,
    prototype_seed: int = 0,
    subset: str = "train",
) -> SyntheticVideo:
    """A video of exactly `length` feature steps with its instances (see the module docstring)."""
    rng = np.random.default_rng(seed)
    prototypes = class_prototypes(num_classes, feature_dim, prototype_seed)
    probabilities = class_probabilities(num_classes, RAREST_TO_COMMONEST)
    num_frames = (length - 1) * GRID.stride + GRID.window
    features = NOISE * rng.standard_normal((length, feature_dim))
    segments = []
    step = _draw_steps(rng, GAP_STEPS)
    while True:
        steps = _draw_steps(rng, INSTANCE_STEPS)
        if step + steps + GAP_STEPS["min"] > length:
            break
        label_id = int(rng.choice(num_classes, p=probabilities))
        features[step : step + steps] += _envelope(steps)[:, None] * prototypes[label_id]
        start = float(GRID.index_to_seconds(step - 0.5))
        end = float(GRID.index_to_seconds(step + steps - 0.5))
        segments.append(
            Segment(
                video_id=video_id,
                start=start,
                end=end,
                label_id=label_id,
                label=f"class{label_id:02d}",
                start_frame=GRID.seconds_to_frame(start),
                end_frame=GRID.seconds_to_frame(end),
            )
        )
        step += steps + _draw_steps(rng, GAP_STEPS)
    info = VideoInfo(video_id, subset, GRID.fps, num_frames / GRID.fps, num_frames=num_frames)
    return SyntheticVideo(info, features.astype(np.float32), segments)


def _draw_steps(rng: np.random.Generator, spec: dict[str, float]) -> int:
    steps = round(spec["median"] * np.exp(spec["sigma"] * rng.standard_normal()))
    return int(np.clip(steps, spec["min"], spec["max"]))


def _envelope(steps: int) -> np.ndarray:
    """1 inside, rising over the first RAMP_STEPS steps and falling over the last (never 0)."""
    index = np.arange(steps)
    rise = (index + 1) / (RAMP_STEPS + 1)
    fall = (steps - index) / (RAMP_STEPS + 1)
    return np.minimum(1.0, np.minimum(rise, fall))


def make_synthetic_dataset(
    out_dir: str | Path,
    num_videos: int = 6,
    num_classes: int = 17,
    feature_dim: int = 32,
    length: int = 384,
    seed: int = 0,
    subsets: Sequence[str] = ("train", "train", "train", "train", "val", "test"),
) -> DatasetPaths:
    """Write `num_videos` synthetic videos as a dataset (annotations.json + features/ with sidecars).

    Video i (`synthetic_<i>`) belongs to `subsets[i]` and is between 3/4 `length` and `length`
    feature steps long; all videos share the class prototypes of `seed`.
    """
    if len(subsets) != num_videos:
        raise ValueError(f"{len(subsets)} subsets given for {num_videos} videos")
    rng = np.random.default_rng(seed)
    aset = AnnotationSet(classes=[f"class{k:02d}" for k in range(num_classes)])
    features = {}
    for index, subset in enumerate(subsets):
        video = make_synthetic_video(
            video_id=f"synthetic_{index:03d}",
            length=int(rng.integers(length * 3 // 4, length + 1)),
            num_classes=num_classes,
            feature_dim=feature_dim,
            seed=int(rng.integers(2**31)),
            prototype_seed=seed,
            subset=subset,
        )
        aset.videos[video.info.video_id] = video.info
        aset.segments[video.info.video_id] = video.segments
        features[video.info.video_id] = video.features
    root = Path(out_dir)
    paths = DatasetPaths(root, root / "annotations.json", root / "features", feature_dim)
    write_dataset(paths, aset, features, GRID, BACKBONE)
    return paths
