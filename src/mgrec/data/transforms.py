"""Random transforms of training crops (`transforms` in the config), each applied with its probability.

In the order they are applied to one crop:

1. time scale: the crop is cut from a stretch of the video `crop_len / s` steps long and resampled
   by a factor s drawn log-uniformly from `time_scale_range`: output step i holds the features at
   source position start + i / s (linear interpolation), and a boundary at source position p moves
   to (p - start) * s, exactly. s > 1 stretches the motion (slower), s < 1 compresses it.
2. instance paste: one labelled instance of a training video (its class drawn with probability
   proportional to 1 / Z_c, rare classes first), with `paste_context` steps on each side, is copied
   over a stretch of the crop that no ground truth of the crop's own video touches. Its targets (the
   instance, and any other instance of the donor inside the cut, under the crop's keep fraction) are
   added. Where no free stretch is long enough, nothing is pasted.
3. channel dropout: a fraction `channel_dropout_rate` of the channels is zeroed for the whole crop
   and the others scaled by 1 / (1 - rate), which keeps each channel's expected value.
4. feature noise: Gaussian noise of std `noise_std` times each channel's std over the training
   features, on the crop's real steps.

Every draw comes from the `rng` the trainer seeds per epoch, so a seed gives the same crops.
"""

from __future__ import annotations

import math

import numpy as np

from mgrec.config import TransformsConfig
from mgrec.data.datasets import Crop, CropItem, VideoSample, crop_targets, cut_crop


def channel_std(samples: list[VideoSample]) -> np.ndarray:
    """Each channel's std over all steps of `samples` (float64 sums; 1 where a channel is constant)."""
    total = sum(len(s.features) for s in samples)
    mean = sum(s.features.sum(axis=0, dtype=np.float64) for s in samples) / total
    var = sum(((s.features - mean) ** 2).sum(axis=0, dtype=np.float64) for s in samples) / total
    std = np.sqrt(var)
    return np.where(std > 0, std, 1.0).astype(np.float32)


def resample_window(length: int, start: int, crop_len: int, scale: float) -> tuple[int, int, int]:
    """(source start, source steps, output steps) of a crop of `crop_len` resampled by `scale`: the
    source stretch is moved back from the video's end where needed so the output is as long as it can be."""
    span = min(length, math.ceil((crop_len - 1) / scale) + 1)  # source steps the output reaches
    out_len = min(crop_len, math.floor((span - 1) * scale + 1e-9) + 1)
    return max(0, min(start, length - span)), span, out_len


def resample_steps(chunk: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """(out_len, C): output step u of `chunk` (T, C) resampled in time by `scale` is source position u / scale,
    linearly between its two neighbouring steps (the last step repeats past the end)."""
    positions = np.arange(out_len) / scale
    left = np.minimum(np.floor(positions).astype(np.int64), len(chunk) - 1)
    right = np.minimum(left + 1, len(chunk) - 1)
    frac = (positions - left).astype(np.float32)[:, None]
    return (1 - frac) * chunk[left] + frac * chunk[right]


def resample_crop(sample: VideoSample, start: int, crop_len: int, scale: float, keep_fraction: float) -> CropItem:
    """The crop of `crop_len` steps from `start`, resampled in time by `scale` (module docstring, 1.)."""
    start, span, out_len = resample_window(sample.length, start, crop_len, scale)
    features = resample_steps(sample.features[start : start + span], out_len, scale)
    segments, labels = crop_targets(sample, start, span, keep_fraction)
    return CropItem(features.astype(np.float32), np.clip(segments * scale, 0, out_len), labels)


def occupied_steps(segments: np.ndarray, length: int) -> np.ndarray:
    """(length,) bool: the steps [t, t+1) that any of `segments` (crop units) touches. Given all of a
    video's ground truth, kept as a target or not: a sliver at the crop's border is still a gesture."""
    taken = np.zeros(length, dtype=bool)
    for begin, end in segments:
        taken[max(0, math.floor(begin)) : max(0, min(length, math.ceil(end)))] = True
    return taken


def free_starts(taken: np.ndarray, piece_len: int) -> np.ndarray:
    """Starts p where [p, p + piece_len) holds no taken step."""
    if piece_len > len(taken):
        return np.zeros(0, dtype=np.int64)
    taken_before = np.concatenate([[0], np.cumsum(taken)])
    windows = taken_before[piece_len:] - taken_before[:-piece_len]
    return np.flatnonzero(windows == 0)


class CropTransforms:
    """The configured transforms, with what they need from the training set (channel spreads, the
    instances that can be pasted and their class weights)."""

    def __init__(self, cfg: TransformsConfig, samples: list[VideoSample], num_classes: int):
        self.cfg = cfg
        self.std = channel_std(samples) if cfg.noise_prob > 0 else None
        self.donors = [(v, j) for v, s in enumerate(samples) for j in range(len(s.labels))]
        counts = np.bincount([int(samples[v].labels[j]) for v, j in self.donors], minlength=num_classes)
        # rare classes first: a class is drawn with probability proportional to 1 / Z_c, then one of its instances
        weights = np.array([1.0 / counts[int(samples[v].labels[j])] ** 2 for v, j in self.donors])
        self.donor_probabilities = weights / weights.sum() if len(weights) else None

    @property
    def active(self) -> bool:
        c = self.cfg
        return any(p > 0 for p in (c.time_scale_prob, c.noise_prob * c.noise_std, c.channel_dropout_prob,
                                   c.paste_prob))

    def __call__(self, samples: list[VideoSample], crop: Crop, crop_len: int, keep_fraction: float,
                 rng: np.random.Generator) -> CropItem:
        cfg, sample = self.cfg, samples[crop.video_index]
        if rng.random() < cfg.time_scale_prob:
            low, high = cfg.time_scale_range
            scale = float(np.exp(rng.uniform(math.log(low), math.log(high))))
            item = resample_crop(sample, crop.start, crop_len, scale, keep_fraction)
            start, _, _ = resample_window(sample.length, crop.start, crop_len, scale)
            ground_truth = (sample.segments - start) * scale
        else:
            item = cut_crop(sample, crop.start, crop_len, keep_fraction)
            ground_truth = sample.segments - crop.start
        if rng.random() < cfg.paste_prob and self.donor_probabilities is not None:
            item = self.paste(samples, item, occupied_steps(ground_truth, len(item.features)), keep_fraction, rng)
        if rng.random() < cfg.channel_dropout_prob:
            dim = item.features.shape[1]
            dropped = rng.choice(dim, size=round(cfg.channel_dropout_rate * dim), replace=False)
            item.features = item.features / (1 - cfg.channel_dropout_rate)
            item.features[:, dropped] = 0
        if rng.random() < cfg.noise_prob and cfg.noise_std > 0:
            noise = rng.standard_normal(item.features.shape, dtype=np.float32)
            item.features = item.features + cfg.noise_std * self.std * noise
        return item

    def paste(self, samples: list[VideoSample], item: CropItem, taken: np.ndarray, keep_fraction: float,
              rng: np.random.Generator) -> CropItem:
        """Paste one instance (with context) over a free stretch of `item` (module docstring, 2.)."""
        v, j = self.donors[int(rng.choice(len(self.donors), p=self.donor_probabilities))]
        donor = samples[v]
        begin, end = donor.segments[j]
        cut_start = max(0, math.floor(begin) - self.cfg.paste_context)
        cut_end = min(donor.length, math.ceil(end) + self.cfg.paste_context)
        starts = free_starts(taken, cut_end - cut_start)
        if len(starts) == 0:
            return item
        at = int(starts[rng.integers(len(starts))])
        features = item.features.copy()
        features[at : at + cut_end - cut_start] = donor.features[cut_start:cut_end]
        segments, labels = crop_targets(donor, cut_start, cut_end - cut_start, keep_fraction)
        return CropItem(features, np.concatenate([item.segments, segments + at]),
                        np.concatenate([item.labels, labels]))
