"""Typed records shared by every stage: videos, ground-truth segments and detections.

Times are in seconds (float); frames are absolute video frame indices. Labels carry both the
0-based class id and the class name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mgrec.errors import EmptySplit


@dataclass(frozen=True)
class Segment:
    """One ground-truth instance."""

    video_id: str
    start: float
    end: float
    label_id: int
    label: str
    start_frame: int | None = None
    end_frame: int | None = None
    source: str = ""  # "file:line" or "file [key]" where it was read, for error messages

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Detection:
    """One predicted instance with its confidence."""

    video_id: str
    start: float
    end: float
    label_id: int
    label: str
    score: float
    start_frame: int | None = None
    end_frame: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict:
        record = {
            "segment": [float(self.start), float(self.end)],  # unrounded: rounding can move a tIoU across 0.3
            "label": self.label,
            "label_id": int(self.label_id),
            "score": float(self.score),
        }
        if self.start_frame is not None and self.end_frame is not None:
            record["segment(frames)"] = [self.start_frame, self.end_frame]
        return record


@dataclass(frozen=True)
class VideoInfo:
    """What is known about one video, independent of its labels."""

    video_id: str
    subset: str
    fps: float
    duration: float  # seconds
    num_frames: int | None = None
    source: str = ""
    fps_given: bool = True  # False: the annotations gave no fps and a default placed it (data.fps, score --fps)


@dataclass
class AnnotationSet:
    """All annotations of a dataset: the class list, the videos and their segments."""

    classes: list[str]
    videos: dict[str, VideoInfo] = field(default_factory=dict)
    segments: dict[str, list[Segment]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def video_ids(self, subset: str | None = None) -> list[str]:
        """Video ids in a stable (sorted) order, optionally only those of one subset."""
        return sorted(v for v, info in self.videos.items() if subset is None or info.subset == subset)

    def split_video_ids(self, split: str, source: object) -> list[str]:
        """`video_ids(split)`, refused (`EmptySplit`, naming `source`, the annotations file) when there are none."""
        ids = self.video_ids(split)
        if not ids:
            raise EmptySplit(f"{source}: no videos in split {split!r} (splits: {', '.join(self.subsets())})")
        return ids

    def subset(self, subset: str) -> "AnnotationSet":
        ids = self.video_ids(subset)
        return AnnotationSet(
            classes=list(self.classes),
            videos={v: self.videos[v] for v in ids},
            segments={v: list(self.segments.get(v, [])) for v in ids},
        )

    def subsets(self) -> list[str]:
        return sorted({info.subset for info in self.videos.values()})
