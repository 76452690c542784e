"""Training and evaluation samples: videos in feature-grid units, training crops, batches.

A `VideoSample` holds one video's features (T, C) and its ground truth converted to the
level-0 feature grid (fractional indices, see `mgrec.timeline.FeatureGrid`).

Training crops (`draw_training_crops`): SMG videos are ~7000 feature steps, longer than the
training length, so each epoch draws crops of `max_seq_len` steps. Every crop is anchored on an
annotation entry of a training video, with a random offset of the anchor inside the crop; the
entries are drawn uniformly or with class-balancing weights (`mgrec.data.balance`). The paper's
category-frequency augmentation (`mgrec.data.augment`, `balance.method: eq1`) lists rare-class
entries R_c times, so those instances are R_c times as likely to anchor a crop: the model sees
rare classes in more crops, at different offsets and with different neighbours. The targets of a
crop are the video's *unique* segments inside it, so a replica never becomes a duplicate target.
A training video without any annotated gesture anchors no crop (`mgrec data check` and training
say so); the background the model learns is that around the gestures of the other videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgrec.config import Config
from mgrec.data.videos import VideoClips, find_video
from mgrec.records import Detection, Segment
from mgrec.timeline import FeatureGrid


@dataclass
class VideoSample:
    video_id: str
    # (T, C) float32; end to end, the video's clips (`mgrec.data.videos.VideoClips`, shape (T, F, H, W, 3),
    # slicing decodes): a crop is cut the same way from either
    features: np.ndarray
    segments: np.ndarray  # (N, 2) float64, level-0 grid units (fractional feature indices)
    labels: np.ndarray  # (N,) int64, 0-based class ids
    grid: FeatureGrid

    @property
    def length(self) -> int:
        return int(self.features.shape[0])


@dataclass
class Crop:
    video_index: int
    start: int  # first feature step of the crop


def video_clips(config: Config, video_id: str, fps: float | None) -> VideoClips:
    """End to end: the video of `video_id` in data.videos as clips on the feature grid (decoded when
    sliced); its fps must be the annotations'."""
    path = find_video(Path(config.data.videos), video_id)
    return VideoClips.open(path, stride=config.data.stride, window=config.data.window,
                           frames_per_clip=config.backbone.frames_per_clip, image_size=config.backbone.image_size,
                           expected_fps=config.data.fps if config.data.fps is not None else fps)


def segments_to_grid(segments: list[Segment] | list[Detection], grid: FeatureGrid) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth (or a teacher's detections taken as such) in seconds -> (N, 2) fractional feature indices and
    (N,) labels."""
    if not segments:
        return np.zeros((0, 2)), np.zeros((0,), dtype=np.int64)
    seconds = np.array([[s.start, s.end] for s in segments], dtype=np.float64)
    return grid.seconds_to_index(seconds), np.array([s.label_id for s in segments], dtype=np.int64)


def draw_training_crops(
    samples: list[VideoSample],
    anchors: list[tuple[int, int]],
    num_crops: int,
    crop_len: int,
    rng: np.random.Generator,
    probabilities: np.ndarray | None = None,
) -> list[Crop]:
    """Draw `num_crops` crops, each anchored on an entry of `anchors` = (video index, segment index),
    uniformly or with `probabilities` (one per anchor: class balancing, `mgrec.data.balance`).

    Videos no longer than `crop_len` are used whole (start 0). A video without any anchor is not
    drawn, unless no video has one: then every crop is a uniformly random stretch of a random video.
    """
    crops = []
    if not anchors:
        for _ in range(num_crops):
            v = int(rng.integers(len(samples)))
            crops.append(Crop(v, _random_start(samples[v].length, crop_len, rng)))
        return crops
    if probabilities is None:
        picks = rng.integers(len(anchors), size=num_crops)
    else:
        picks = rng.choice(len(anchors), size=num_crops, p=probabilities)
    for pick in picks:
        v, s = anchors[int(pick)]
        sample = samples[v]
        if sample.length <= crop_len:
            crops.append(Crop(v, 0))
            continue
        centre = float(sample.segments[s].mean())
        # the anchor lands anywhere in the middle 80% of the crop
        start = int(round(centre - rng.uniform(0.1, 0.9) * crop_len))
        crops.append(Crop(v, int(np.clip(start, 0, sample.length - crop_len))))
    return crops


def _random_start(length: int, crop_len: int, rng: np.random.Generator) -> int:
    return 0 if length <= crop_len else int(rng.integers(0, length - crop_len + 1))


def crop_targets(
    sample: VideoSample, start: int, crop_len: int, keep_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Segments of `sample` inside [start, start + crop_len), shifted to the crop and clipped.

    A segment is kept when at least `keep_fraction` of its length lies inside the crop: a sliver of
    a gesture at the border is not a learnable target.
    """
    end = start + min(crop_len, sample.length)
    seg = sample.segments
    if len(seg) == 0:
        return np.zeros((0, 2)), np.zeros((0,), dtype=np.int64)
    inside = np.clip(seg, start, end)
    kept_len = inside[:, 1] - inside[:, 0]
    full_len = np.maximum(seg[:, 1] - seg[:, 0], 1e-6)
    keep = kept_len / full_len >= keep_fraction
    # unique rows: the same instance listed twice (e.g. a duplicate annotation) is one target
    targets = np.unique(np.concatenate([inside[keep] - start, sample.labels[keep, None]], axis=1), axis=0)
    return targets[:, :2], targets[:, 2].astype(np.int64)


@dataclass
class CropItem:
    """One training crop before batching: its features and its targets in crop grid units."""

    features: np.ndarray  # (L, C) float32 (end to end: (L, F, H, W, 3) uint8 clips), L <= the crop length
    segments: np.ndarray  # (N, 2) float64
    labels: np.ndarray  # (N,) int64


def cut_crop(sample: VideoSample, start: int, crop_len: int, keep_fraction: float) -> CropItem:
    """The crop [start, start + crop_len) of a video, as it is (no transform)."""
    segments, labels = crop_targets(sample, start, crop_len, keep_fraction)
    return CropItem(sample.features[start : start + crop_len], segments, labels)


@dataclass
class Batch:
    features: torch.Tensor  # (B, C, T) float32; end to end: clips (B, T, F, H, W, 3) uint8
    mask: torch.Tensor  # (B, 1, T) bool
    segments: list[torch.Tensor]  # per item (N_i, 2) level-0 grid units
    labels: list[torch.Tensor]  # per item (N_i,)


def make_batch(
    samples: list[VideoSample], crops: list[Crop], crop_len: int, keep_fraction: float, transform=None,
    rng: np.random.Generator | None = None,
) -> Batch:
    """Stack crops into a padded (B, C, crop_len) batch with its mask and targets.

    `transform` (`mgrec.data.transforms.CropTransforms`, with `rng`) cuts and transforms each crop;
    without it crops are cut as they are."""
    items = [
        transform(samples, crop, crop_len, keep_fraction, rng) if transform is not None
        else cut_crop(samples[crop.video_index], crop.start, crop_len, keep_fraction)
        for crop in crops
    ]
    first = items[0].features
    clips = first.ndim == 5  # decoded clips, end to end: kept uint8 and time-first (the encoder reads them so)
    if clips:
        features = torch.zeros(len(crops), crop_len, *first.shape[1:], dtype=torch.uint8)
    else:
        features = torch.zeros(len(crops), first.shape[1], crop_len)
    mask = torch.zeros(len(crops), 1, crop_len, dtype=torch.bool)
    for i, item in enumerate(items):
        if clips:
            features[i, : len(item.features)] = torch.from_numpy(item.features)
        else:
            features[i, :, : len(item.features)] = torch.from_numpy(np.ascontiguousarray(item.features.T))
        mask[i, 0, : len(item.features)] = True
    return Batch(features, mask, [torch.from_numpy(item.segments).float() for item in items],
                 [torch.from_numpy(item.labels) for item in items])
