import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from tests.model.helpers import perturbed, tiny_config

from mgrec.config import PostprocessConfig
from mgrec.errors import InputError
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import Chunking, detect_video
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=10.0, stride=1, window=1)
CLASSES = ["a", "b", "c", "d", "e"]


@given(length=st.integers(1, 5000), steps=st.integers(2, 600), half=st.integers(0, 200))
def test_window_cores_tile_the_video_and_keep_half_the_overlap_as_context(length, steps, half):
    overlap = 2 * half
    if overlap >= steps:
        with pytest.raises(InputError):
            Chunking(steps, overlap)
        return
    windows = Chunking(steps, overlap).windows(length)
    assert windows[0][2] == 0 and windows[-1][3] == length
    for (start, end, core_start, core_end), following in zip(windows, windows[1:] + [None]):
        assert 0 <= start <= core_start < core_end <= end <= length and end - start <= steps
        if following is not None:
            assert following[2] == core_end  # the next core starts where this one ends
            assert core_end + half <= end and core_start - start >= (half if start else 0)


def test_chunked_detection_equals_one_pass_where_the_network_sees_less_than_the_overlap():
    torch.manual_seed(0)
    # three levels of small kernels: each output depends on far fewer than 64 steps on either side
    model = perturbed(build_detector(tiny_config("actionformer", num_levels=3,
                                                 regression_ranges=[[0, 4], [4, 8], [8, 10000]]))).eval()
    features = np.random.default_rng(0).normal(size=(600, 24)).astype(np.float32)
    post = PostprocessConfig(pre_nms_topk=100000, max_detections=100000)
    whole = detect_video(model, features, GRID, post, CLASSES, "v")
    chunked = detect_video(model, features, GRID, post, CLASSES, "v", chunking=Chunking(256, 128))
    assert len(chunked) == len(whole) > 100
    assert_the_same_detections(whole, chunked)


def assert_the_same_detections(expected, got, seconds=1e-4, score=1e-5):
    """`got` holds `expected`'s detections up to float rounding: each matched to one of the same class whose boundaries
    and score are within the tolerances. In any order: two scores 6e-10 apart (of 1842) swapped places between the
    two ways of computing them on one CPU and not on another."""
    rows = np.array([(d.label_id, d.start, d.end, d.score) for d in got])
    unmatched = np.ones(len(rows), dtype=bool)
    for d in expected:
        close = (unmatched & (rows[:, 0] == d.label_id) & (np.abs(rows[:, 1] - d.start) <= seconds)
                 & (np.abs(rows[:, 2] - d.end) <= seconds) & (np.abs(rows[:, 3] - d.score) <= score))
        assert close.any(), f"{d} has no counterpart"
        unmatched[np.flatnonzero(close)[0]] = False


def test_a_video_shorter_than_a_window_is_one_pass():
    assert Chunking(8192, 1024).windows(3000) == [(0, 3000, 0, 3000)]


def test_a_standardised_long_video_is_standardised_window_by_window_as_a_whole():
    # data.normalize = video on a video detected in windows: each window goes through the whole video's
    # statistics on its way in, which gives what the whole standardised copy gives, without the copy
    from mgrec.data.normalize import ChannelStats

    torch.manual_seed(0)
    model = perturbed(build_detector(tiny_config("mgrec", num_levels=3,
                                                 regression_ranges=[[0, 4], [4, 8], [8, 10000]]))).eval()
    features = np.random.default_rng(5).normal(loc=3.0, scale=4.0, size=(700, 24)).astype(np.float32)
    stats = ChannelStats.of(features)
    post = PostprocessConfig(max_detections=50)
    for chunking in (None, Chunking(256, 128)):
        copied = detect_video(model, stats.apply(features), GRID, post, CLASSES, "v", chunking=chunking)
        windowed = detect_video(model, features, GRID, post, CLASSES, "v", chunking=chunking, standardize=stats.apply)
        assert windowed == copied != detect_video(model, features, GRID, post, CLASSES, "v", chunking=chunking)


def test_a_chunking_of_other_than_whole_steps_is_refused_naming_the_argument():
    # Chunking(8192.0, 1024) (a size computed in Python) was taken, and detection ended in "TypeError: slice indices
    # must be integers"; Chunking(True, 0) detected in windows of one step; Chunking("8192", 1024) a TypeError of '<'
    for steps, overlap, said in ((8192.0, 1024, r"steps: expected a whole number of feature steps >= 1, got 8192\.0"),
                                 (True, 0, "steps: expected a whole number of feature steps >= 1, got True"),
                                 ("8192", 1024, "steps: expected a whole number of feature steps >= 1, got '8192'"),
                                 (0, 0, "steps: expected a whole number of feature steps >= 1, got 0"),
                                 (64, 8.0, r"overlap: expected an even whole number of steps in \[0, 64\), got 8\.0"),
                                 (64, 7, r"overlap: expected an even whole number of steps in \[0, 64\), got 7"),
                                 (64, 64, r"overlap: expected an even whole number of steps in \[0, 64\), got 64")):
        with pytest.raises(InputError, match=rf"^chunking: {said}$"):
            Chunking(steps, overlap)
    assert Chunking(np.int64(64), 8).windows(100) == Chunking(64, 8).windows(100)  # numpy's integers are whole steps
