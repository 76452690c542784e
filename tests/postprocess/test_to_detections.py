"""Grid-unit detections to `Detection` records, against a one-record-at-a-time loop."""

import numpy as np
import pytest

from mgrec.postprocess.video import to_detections
from mgrec.records import Detection
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=28.0, stride=4, window=16)
CLASSES = ["a", "b", "c"]


def to_detections_py(segments, scores, labels, grid, classes, video_id, duration=None):
    """Reference: convert, clip and skip one candidate at a time, highest score first (ties: input order)."""
    detections = []
    for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
        start, end = (float(grid.index_to_seconds(float(x))) for x in segments[i])
        start, end = max(start, 0.0), max(end, 0.0)
        if duration is not None:
            start, end = min(start, duration), min(end, duration)
        if end <= start:
            continue
        frames = (int(grid.seconds_to_frame(start)), int(grid.seconds_to_frame(end)))
        label = int(labels[i])
        detections.append(Detection(video_id, start, end, label, classes[label], float(scores[i]), *frames))
    return detections


@pytest.mark.parametrize("duration", [None, 12.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_the_per_record_loop(duration, dtype):
    rng = np.random.default_rng(0)
    starts = rng.uniform(-20, 100, 300)  # some lie (partly) before 0 or after the end of the video
    segments = np.stack([starts, starts + rng.uniform(0, 30, 300)], 1).astype(dtype)
    scores = rng.choice([0.9, 0.5, 0.25], 300).astype(dtype)  # ties keep the input order
    labels = rng.integers(0, 3, 300)
    detections = to_detections(segments, scores, labels, GRID, CLASSES, "v", duration)
    assert 0 < len(detections) < 300
    assert detections == to_detections_py(segments, scores, labels, GRID, CLASSES, "v", duration)
    assert all(type(d.start) is float and type(d.label_id) is int and type(d.start_frame) is int for d in detections)


def test_no_candidates_give_no_detections():
    empty = np.zeros((0, 2), dtype=np.float32)
    assert to_detections(empty, np.zeros(0, np.float32), np.zeros(0, np.int64), GRID, CLASSES, "v", 5.0) == []
