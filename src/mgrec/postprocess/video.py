"""One whole video through the network and post-processing to a ranked list of `Detection`s.

Used by training's validation and by `mgrec.infer`; it lives here so that neither imports the other.
The network is fully convolutional (plus local attention), so a video longer than the training
length is processed in one pass: no windows, hence no seams at window borders. Only videos longer
than the caller's `Chunking.steps` are detected in overlapping windows, whose cores tile the video
(offline detection's: 8192 steps, about 1 GB at SMG width, `mgrec.infer.offline.LONG_VIDEO_CHUNKING`:
20 minutes at SMG's 7 steps/s, 11 at the demo's 12.5; training's validation takes every video whole).

The network's outputs are checked before decoding: a NaN or Inf at a real (unmasked) position is an
`InputError` naming the video. Decoding would otherwise drop NaN scores without a word, and a broken
checkpoint or out-of-range features would look like a video with nothing in it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch

from mgrec.config import PostprocessConfig
from mgrec.errors import InputError
from mgrec.files import brief
from mgrec.model.inputs import pad_video
from mgrec.postprocess.decode import RawDetections, decode_video
from mgrec.postprocess.detection_fusion import _fuse_detections
from mgrec.postprocess.nms import nms, vote_boundaries
from mgrec.postprocess.second_opinion import SecondOpinion
from mgrec.records import Detection
from mgrec.timeline import FeatureGrid


@dataclass(frozen=True)
class Chunking:
    """Detection of a long video in windows of `steps` feature steps overlapping by `overlap` steps.

    Window i starts at i * (steps - overlap). Each window's candidates are kept only when the point
    they come from lies in its core: from overlap/2 after its start (0 for the first window) to
    overlap/2 before its end (the video's end for the last), so the cores tile the video and every
    point is decoded once; one NMS then runs over all of them. Memory is that of one window. A point
    of a core sees at least overlap/2 steps of context on each side; what lies farther (the
    network's whole-sequence statistics, its receptive field beyond that) differs from a pass over
    the whole video.
    """

    steps: int
    overlap: int

    def __post_init__(self) -> None:
        # whole steps: a float (8192.0) ended in a TypeError of the slicing, True made windows of one step
        if not _whole(self.steps) or self.steps < 1:
            raise InputError(f"chunking: steps: expected a whole number of feature steps >= 1, got {brief(self.steps)}")
        if not _whole(self.overlap) or not 0 <= self.overlap < self.steps or self.overlap % 2:
            raise InputError(f"chunking: overlap: expected an even whole number of steps in [0, {self.steps}), got "
                             f"{brief(self.overlap)}")

    def windows(self, length: int) -> list[tuple[int, int, int, int]]:
        """(start, end, core start, core end) of every window of a video of `length` steps."""
        if length <= self.steps:
            return [(0, length, 0, length)]
        hop, half = self.steps - self.overlap, self.overlap // 2
        windows, start = [], 0
        while True:
            end = min(start + self.steps, length)
            last = end == length
            windows.append((start, end, start + half if start else 0, length if last else end - half))
            if last:
                return windows
            start += hop


def _whole(value: object) -> bool:
    """An integer, not a bool (Python's or numpy's)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


@torch.inference_mode()
def detect_video(
    model: torch.nn.Module,
    features: np.ndarray,
    grid: FeatureGrid,
    post: PostprocessConfig,
    classes: list[str],
    video_id: str,
    padded_length: int | None = None,
    autocast: torch.dtype | None = None,
    chunking: Chunking | None = None,
    standardize: Callable[[np.ndarray], np.ndarray] | None = None,
    second_opinion: SecondOpinion | None = None,
) -> list[Detection]:
    """Ranked detections (descending score) for one video's features (T, C), clipped to the video.

    `padded_length`: run the network on this fixed length (masked padding changes no result), as
    a network compiled for one input size wants; default: T rounded up to the largest stride.
    `autocast`: run the network's forward pass under autocast to this dtype (detection's
    `--precision`, `mgrec.devices.autocast_dtype`) and only it; None: no autocast of its own
    (float32, as training's validation wants). Decoding and NMS run on the outputs cast to float32.
    `chunking`: a video longer than `chunking.steps` is detected in overlapping windows (`Chunking`).
    `post.shifted_passes` = N > 1: the video is detected N times, on its features from step 0, 1, ...,
    N - 1 on (each stride-2 level of the pyramid sees another phase of the video), every pass's
    detections moved back onto the video's time, and the N ranked lists fused as a detection-level
    ensemble's (`mgrec.postprocess.detection_fusion`; a gesture found by one pass alone keeps 1/N of its score).
    A video of fewer than N steps gets one pass per step.
    `standardize`: a function every window of features goes through on its way into the network
    (`data.normalize: video`: `ChannelStats.apply` with the whole video's statistics, `mgrec.data.normalize`),
    so that a long video is never copied whole.
    `second_opinion`: the run's whole-gesture classifier rescores the final ranked list
    (`mgrec.postprocess.second_opinion`; `postprocess.second_opinion` > 0).
    """
    passes = []
    for shift in range(max(1, min(post.shifted_passes, len(features)))):
        detections = _one_pass(model, features[shift:], grid, post, classes, video_id, padded_length, autocast,
                               chunking, standardize)
        passes.append([moved_detection(d, shift * grid.stride, grid) for d in detections] if shift else detections)
    ranked = passes[0] if len(passes) == 1 else within_the_cap(_fuse_detections(passes), post)
    return ranked if second_opinion is None else second_opinion.rescored(ranked, features, grid, standardize)


def hard_set_bars(post: PostprocessConfig, labels: np.ndarray) -> np.ndarray:
    """The hard set's bar of each label (float64): its class's threshold where the run tuned one per class, else the
    score threshold (`mgrec.evaluate.f1.hard_set`'s rule)."""
    if post.class_thresholds is None:
        return np.full(len(labels), post.score_threshold, dtype=np.float64)
    return np.asarray(post.class_thresholds, dtype=np.float64)[np.asarray(labels, dtype=np.int64)]


def kept_count(post: PostprocessConfig, scores: np.ndarray, labels: np.ndarray) -> int:
    """How many of a ranked list (scores descending, their labels) to keep: `post.max_detections`, or down to the last
    detection of the hard set where it is further: a long recording holds more gestures than the cap, and cutting
    there dropped detections of the hard set without a word (a 77-minute recording kept 488 of its 1219 at the demo's
    cap of 500). Only the hard set lifts the cap: a class's lower bar lifted it for every class (one never detected
    too), and so did the global threshold, which a per-class hard set does not read."""
    inside = np.flatnonzero(np.asarray(scores, dtype=np.float64) >= hard_set_bars(post, labels))
    return max(post.max_detections, int(inside[-1]) + 1 if len(inside) else 0)


def within_the_cap(ranked: list[Detection], post: PostprocessConfig) -> list[Detection]:
    """A ranked list cut to `post.max_detections`, but never inside the hard set (`kept_count`)."""
    return ranked[: kept_count(post, np.array([d.score for d in ranked], dtype=np.float64),
                               np.array([d.label_id for d in ranked], dtype=np.int64))]


def nms_within_the_cap(segments: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                       post: PostprocessConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`nms` keeping `post.max_detections`, or more while the hard set goes on (`kept_count`): the cap is
    doubled until the last kept score falls below the lowest bar of the classes among the candidates (no later
    pick can be of the hard set). The greedy picks of a larger cap begin with those of a smaller one, so the result
    is the ranked list of a cap that was large enough."""
    present = torch.unique(labels).cpu().numpy()
    floor, limit = float(hard_set_bars(post, present).min()) if len(present) else np.inf, post.max_detections
    while True:
        kept = nms(segments, scores, labels, replace(post, max_detections=limit))
        if len(kept[1]) < limit or float(kept[1][-1]) < floor:
            break
        limit *= 2
    count = kept_count(post, kept[1].double().cpu().numpy(), kept[2].cpu().numpy())  # bf16: no numpy dtype
    return kept[0][:count], kept[1][:count], kept[2][:count]


def moved_detection(detection: Detection, frames: int, grid: FeatureGrid) -> Detection:
    """A detection made on features starting `frames` frames into the video, in the video's own time."""
    seconds = grid.frame_to_seconds(frames)
    # the constructor, not dataclasses.replace: a streamed ensemble's update moves a thousand of them
    return Detection(detection.video_id, detection.start + seconds, detection.end + seconds, detection.label_id,
                     detection.label, detection.score,
                     None if detection.start_frame is None else detection.start_frame + frames,
                     None if detection.end_frame is None else detection.end_frame + frames)


def _one_pass(model: torch.nn.Module, features: np.ndarray, grid: FeatureGrid, post: PostprocessConfig,
              classes: list[str], video_id: str, padded_length: int | None, autocast: torch.dtype | None,
              chunking: Chunking | None,
              standardize: Callable[[np.ndarray], np.ndarray] | None) -> list[Detection]:
    """One pass of `detect_video` over features (T, C): each window's candidates (the whole video's one window
    without `chunking`) from the points of its core, one NMS over them all within the cap, the boundaries voted
    (`post.voting`), as records clipped to the T steps."""
    windows = chunking.windows(len(features)) if chunking is not None else [(0, len(features), 0, len(features))]
    parts = []
    for start, end, core_start, core_end in windows:
        window = features[start:end] if standardize is None else standardize(features[start:end])
        raw = _candidates(model, window, post, video_id, padded_length, autocast)
        keep = (raw.points >= core_start - start) & (raw.points < core_end - start)  # all of a single window
        parts.append((raw.segments[keep] + start, raw.scores[keep], raw.labels[keep]))
    candidates = [torch.cat(column) for column in zip(*parts)]
    segments, scores, labels = nms_within_the_cap(*candidates, post)
    if post.voting > 0:
        segments = vote_boundaries(segments, labels, *candidates, post.voting)
    duration = grid.covered_seconds(features.shape[0])
    return to_detections(
        segments.cpu().numpy(), scores.cpu().numpy(), labels.cpu().numpy(), grid, classes, video_id, duration
    )


def _candidates(model: torch.nn.Module, features: np.ndarray, post: PostprocessConfig, video_id: str,
                padded_length: int | None, autocast: torch.dtype | None) -> RawDetections:
    """The network on features (T, C) and its decoded candidates, before NMS."""
    device = next(model.parameters()).device
    x, mask = pad_video(features, model.max_div_factor, padded_length)
    # None leaves the autocast state of the caller as it is (a benchmark may wrap the whole call)
    with evaluating(model), nullcontext() if autocast is None else torch.autocast(device.type, dtype=autocast):
        out = model(x.to(device), mask.to(device))
    cls_logits = [c[0].float() for c in out.cls_logits]
    offsets = [o[0].float() for o in out.offsets]
    masks = [m[0] for m in out.masks]
    check_network_output(cls_logits, offsets, masks, video_id)
    return decode_video(cls_logits, offsets, masks, out.strides, post)


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """`model` in eval mode for one pass, its own mode restored after: a network handed over in training mode (a
    user's own loop validating its model) would otherwise detect with drop path and dropout on, at random."""
    if not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


def check_network_output(
    cls_logits: list[torch.Tensor], offsets: list[torch.Tensor], masks: list[torch.Tensor], video_id: str
) -> None:
    """InputError naming the video when a class logit or an offset at a real position is NaN or Inf.

    Per level: logits (T_l, K), offsets (T_l, 2), mask (T_l,) bool; padded positions may hold anything.
    One device synchronisation, and one check of all levels at once (few ops: it runs at every
    update of a stream); the per-level counts are taken only to name the first bad level.
    """
    def bad(values: list[torch.Tensor]) -> torch.Tensor:
        return ~torch.isfinite(torch.cat(values)) & torch.cat(masks)[:, None]

    bad_logits, bad_offsets = bad(cls_logits), bad(offsets)
    if not bool(bad_logits.any() | bad_offsets.any()):
        return
    # (levels, 2): the bad logits and the bad offsets of each level
    bounds = np.cumsum([0] + [len(m) for m in masks])
    counts = torch.stack([torch.stack([bad_logits[begin:end].sum(), bad_offsets[begin:end].sum()])
                          for begin, end in zip(bounds[:-1], bounds[1:])]).cpu()
    level = int(counts.sum(dim=1).nonzero()[0, 0])
    what = "class logits" if counts[level, 0] else "offsets"
    raise InputError(
        f"video {brief(video_id)}: the network output holds {int(counts.sum())} NaN/Inf value(s) (the first in the "
        f"{what} of pyramid level {level}); the run's weights are broken (a training that diverged?) or the "
        "features are out of range"
    )


def to_detections(
    segments: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    grid: FeatureGrid,
    classes: list[str],
    video_id: str,
    duration: float | None = None,
) -> list[Detection]:
    """Grid-unit segments -> `Detection`s in seconds and frames, clipped to the video, by descending score.

    All arithmetic is done on whole arrays first; the loop only builds the records (thousands per video).
    """
    seconds = grid.index_to_seconds(segments.astype(np.float64)) if len(segments) else np.zeros((0, 2))
    seconds = np.clip(seconds, 0.0, duration if duration is not None else np.inf)
    frames = grid.seconds_to_frame(seconds) if len(seconds) else np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    order = order[~(seconds[order, 1] <= seconds[order, 0])]  # drop those clipped away entirely (outside the video)
    labels = labels[order].astype(np.int64)
    columns = (seconds[order].tolist(), labels.tolist(), scores[order].tolist(), frames[order].tolist())
    return [
        Detection(video_id, start, end, label, classes[label], score, start_frame, end_frame)
        for (start, end), label, score, (start_frame, end_frame) in zip(*columns)
    ]
