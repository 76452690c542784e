"""Load a config's splits into `VideoSample`s, refusing (or explicitly dropping) bad data."""

from __future__ import annotations

from dataclasses import dataclass

from mgrec.config import Config
from mgrec.data.annotations import load_annotations
from mgrec.data.augment import repeat_factors
from mgrec.data.check import check_dataset, videos_to_drop
from mgrec.data.datasets import VideoSample, segments_to_grid
from mgrec.data.features import feature_path, load_features
from mgrec.errors import InputError
from mgrec.records import AnnotationSet, Segment


@dataclass
class SplitData:
    samples: list[VideoSample]
    ground_truth: dict[str, list[Segment]]


def checked_annotations(config: Config, log=print, source: str = "config") -> tuple[AnnotationSet, set[str]]:
    """Annotations plus the ids of videos to leave out; refuses data with errors unless told to drop."""
    report = check_dataset(config, source=source)
    for problem in report.warnings:
        log(f"warning: {problem.where}: {problem.message}")
    if not report.errors:
        return load_annotations(config.data.annotations), set()
    if report.dataset_errors:
        lines = "\n".join(f"  {p.where}: {p.message}" for p in report.dataset_errors)
        # a video's own error (a bad entry left out) may be what empties a split: show those too
        video_errors = [p for p in report.errors if p not in report.dataset_errors][:30]
        if video_errors:
            lines += "\n  and in single videos:\n" + "\n".join(f"  {p.where}: {p.message}" for p in video_errors)
        raise InputError(f"the data has errors that dropping videos cannot fix:\n{lines}")
    if not config.data.drop_bad_videos:
        lines = "\n".join(f"  {p.where}: {p.message}" for p in report.errors[:30])
        more = f"\n  ... and {len(report.errors) - 30} more" if len(report.errors) > 30 else ""
        raise InputError(
            f"the data has {len(report.errors)} error(s) (run `mgrec data check` for the full report):\n{lines}{more}\n"
            "Fix them, or pass --set data.drop_bad_videos=true to train without the affected videos."
        )
    dropped = videos_to_drop(report)
    for video_id, reasons in sorted(dropped.items()):
        log(f"dropping video {video_id}: {'; '.join(reasons)}")
    # entry-level errors are recorded (and their videos dropped) instead of raised
    return load_annotations(config.data.annotations, entry_errors=[]), set(dropped)


def load_split(config: Config, annotations: AnnotationSet, split: str, exclude: set[str] = frozenset()) -> SplitData:
    """Features and ground truth of every video of `split` (minus `exclude`)."""
    samples, ground_truth = [], {}
    for video_id in annotations.video_ids(split):
        if video_id in exclude:
            continue
        info = annotations.videos[video_id]
        path = feature_path(config.data.features, video_id, config.data.feature_ext)
        features = load_features(path, expected_dim=config.data.feature_dim)
        grid = config.data.grid(info.fps)
        segments = annotations.segments.get(video_id, [])
        grid_segments, labels = segments_to_grid(segments, grid)
        samples.append(VideoSample(video_id, features, grid_segments, labels, grid))
        ground_truth[video_id] = segments
    return SplitData(samples, ground_truth)


def crop_anchors(samples: list[VideoSample], num_classes: int, alpha: int | None) -> list[tuple[int, int]]:
    """(video index, segment index) entries that anchor training crops; rare classes repeated R_c times.

    This is where category-frequency augmentation (paper Eq. 1) changes what the model sees; see
    `mgrec.data.datasets` for how anchors become crops.
    """
    counts = [0] * num_classes
    for sample in samples:
        for label in sample.labels:
            counts[int(label)] += 1
    factors = repeat_factors(counts, alpha) if alpha is not None else [1] * num_classes
    return [
        (v, j)
        for v, sample in enumerate(samples)
        for j, label in enumerate(sample.labels)
        for _ in range(factors[int(label)])
    ]
