"""Load a config's splits into `VideoSample`s, refusing (or explicitly dropping) bad data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mgrec.config import Config
from mgrec.data.annotations import load_annotations
from mgrec.data.check import check_dataset, grouped_problems, problem_where, videos_to_drop
from mgrec.data.datasets import VideoSample, segments_to_grid, video_clips
from mgrec.data.normalize import network_inputs
from mgrec.data.streams import load_video_streams
from mgrec.errors import InputError
from mgrec.records import AnnotationSet, Segment


@dataclass
class SplitData:
    samples: list[VideoSample]
    ground_truth: dict[str, list[Segment]]


def _every_one(videos: int) -> str:
    """The videos of a split, each of which has an error: "Every one of the 3 videos", "The one video"."""
    return "The one video" if videos == 1 else f"Every one of the {videos} videos"


def checked_annotations(config: Config, log=print, source: str = "config",
                        training: bool = True) -> tuple[AnnotationSet, set[str]]:
    """Annotations plus the ids of videos to leave out; refuses data with errors unless told to drop. `training`:
    as `check_dataset`'s (False: no advice for a training to come)."""
    report = check_dataset(config, source=source, training=training)
    # grouped as `mgrec data check` prints them (`grouped_problems`): a line per problem made one same-class overlap in
    # each of 8000 videos 8000 lines of training's start-up (data check and score --gt said it once, with the count)
    for problem, videos in grouped_problems(report.warnings):
        log(f"warning: {problem_where(problem, videos)}: {problem.message}")
    if not report.errors:
        return load_annotations(config.data.annotations, default_fps=config.data.fps), set()
    if report.dataset_errors:
        lines = "\n".join(f"  {p.where}: {p.message}" for p in report.dataset_errors)
        # a video's own error (a bad entry left out) may be what empties a split: show those too
        video_errors = [p for p in report.errors if p not in report.dataset_errors][:30]
        if video_errors:
            lines += "\n  and in single videos:\n" + "\n".join(f"  {p.where}: {p.message}" for p in video_errors)
        # not tied to one video (a wrong path, no videos in a split): data.drop_bad_videos cannot help either
        raise InputError(f"the data has {len(report.dataset_errors)} error(s) to fix first (`mgrec data check` "
                         f"lists every problem):\n{lines}")
    dropped = videos_to_drop(report)
    # entry-level errors are recorded (and their videos dropped) instead of raised
    annotations = load_annotations(config.data.annotations, entry_errors=[], default_fps=config.data.fps)
    training = annotations.video_ids(config.data.train_split)
    validation = annotations.video_ids(config.data.val_split) if config.data.val_split else []
    none_left = not set(training) - set(dropped)
    # a val split emptied so trained without validation: the last epoch kept, the configured threshold, no word
    no_val_left = bool(validation) and not set(validation) - set(dropped)
    if not config.data.drop_bad_videos or none_left or no_val_left:
        lines = "\n".join(f"  {p.where}: {p.message}" for p in report.errors[:30])
        more = f"\n  ... and {len(report.errors) - 30} more" if len(report.errors) > 30 else ""
        # dropping them all ended in "no videos in the training split", of a file that has them
        if training and none_left:
            way = (f"{_every_one(len(training))} of the training split {config.data.train_split!r} has one: fix "
                   "them (dropping the affected videos would leave nothing to train on).")
        elif no_val_left:
            way = (f"{_every_one(len(validation))} of the val split {config.data.val_split!r} "
                   "(data.val_split) has one: fix them (dropping them would leave no video to select the checkpoint "
                   "and tune the score threshold on), or train without validation: data.val_split: '' (--set "
                   "\"data.val_split=''\").")
        else:
            way = "Fix them, or pass --set data.drop_bad_videos=true to train without the affected videos."
        raise InputError(
            f"the data has {len(report.errors)} error(s) (run `mgrec data check` for the full report):\n{lines}{more}\n"
            + way
        )
    for video_id, reasons in sorted(dropped.items()):
        log(f"dropping video {video_id}: {'; '.join(reasons)}")
    return annotations, set(dropped)


def load_split(config: Config, annotations: AnnotationSet, split: str, exclude: set[str] = frozenset()) -> SplitData:
    """Network inputs and ground truth of every video of `split` (minus `exclude`): each video's
    features as the network takes them (`data.normalize` applied to the whole video), or its clips."""
    samples, ground_truth = [], {}
    for video_id in annotations.video_ids(split):
        if video_id in exclude:
            continue
        info = annotations.videos[video_id]
        features = video_clips(config, video_id, info.fps) if config.end_to_end else \
            network_inputs(config.data.normalize, load_video_streams(config.data, video_id, info.fps))
        grid = config.data.grid(info.fps)
        segments = annotations.segments.get(video_id, [])
        grid_segments, labels = segments_to_grid(segments, grid)
        samples.append(VideoSample(video_id, features, grid_segments, labels, grid))
        ground_truth[video_id] = segments
    return SplitData(samples, ground_truth)


def class_counts(samples: list[VideoSample], num_classes: int) -> list[int]:
    """Training instances per class."""
    counts = [0] * num_classes
    for sample in samples:
        for label in sample.labels:
            counts[int(label)] += 1
    return counts


def crop_anchors(samples: list[VideoSample], replication: list[int]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """(video index, segment index) entries that anchor training crops, each listed `replication[class]`
    times (eq1's R_c, paper Eq. 1; 1 for the other balancing methods), and the class of each entry.

    This is where class balancing changes what the model sees; see `mgrec.data.balance` and
    `mgrec.data.datasets` for how anchors become crops.
    """
    anchors = [
        (v, j)
        for v, sample in enumerate(samples)
        for j, label in enumerate(sample.labels)
        for _ in range(replication[int(label)])
    ]
    labels = np.array([int(samples[v].labels[j]) for v, j in anchors], dtype=np.int64)
    return anchors, labels
