import numpy as np

from mgrec.data.augment import repeat_factors
from mgrec.data.datasets import VideoSample
from mgrec.timeline import FeatureGrid
from mgrec.train.data import class_counts, crop_anchors

GRID = FeatureGrid(fps=10.0, stride=1, window=1)


def _video(labels):
    segments = np.array([[10.0 * i, 10.0 * i + 5] for i in range(len(labels))])
    return VideoSample("v", np.zeros((100, 2), dtype=np.float32), segments, np.array(labels, dtype=np.int64), GRID)


def test_eq1_lists_each_rare_instance_r_c_times_in_place():
    # class 0: 3 instances (common at alpha 3), class 1: 1 instance (R = ceil(log2 3) + 1 = 3),
    # class 2: 2 instances (R = ceil(log2 1.5) + 1 = 2), class 3: none
    samples = [_video([0, 1, 0]), _video([2, 0, 2]), _video([])]
    counts = class_counts(samples, 4)
    assert counts == [3, 1, 2, 0]
    anchors, labels = crop_anchors(samples, repeat_factors(counts, alpha=3))
    assert anchors == [(0, 0), (0, 1), (0, 1), (0, 1), (0, 2), (1, 0), (1, 0), (1, 1), (1, 2), (1, 2)]
    assert labels.tolist() == [0, 1, 1, 1, 0, 2, 2, 0, 2, 2]
    assert np.bincount(labels, minlength=4).tolist() == [3, 3, 4, 0]


def test_no_replication_lists_every_instance_once():
    samples = [_video([0, 1]), _video([1])]
    anchors, labels = crop_anchors(samples, [1, 1])
    assert anchors == [(0, 0), (0, 1), (1, 0)] and labels.tolist() == [0, 1, 1]
