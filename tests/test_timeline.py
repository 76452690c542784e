import numpy as np

from mgrec.timeline import FeatureGrid


def test_centre_of_window():
    grid = FeatureGrid(fps=28.0, stride=4, window=16)
    # feature 0 covers frames [0, 16): centre frame 8
    assert grid.index_to_seconds(0) == 8 / 28
    assert grid.index_to_seconds(10) == (40 + 8) / 28


def test_round_trip_arrays():
    grid = FeatureGrid(fps=50.0, stride=4, window=16)
    index = np.array([[0.0, 3.5], [100.25, 200.0]])
    assert np.allclose(grid.seconds_to_index(grid.index_to_seconds(index)), index)


def test_num_windows_drops_partial_window():
    grid = FeatureGrid(fps=30.0, stride=4, window=16)
    assert grid.num_windows(15) == 0
    assert grid.num_windows(16) == 1
    assert grid.num_windows(19) == 1
    assert grid.num_windows(20) == 2
    assert grid.covered_seconds(2) == 20 / 30


def test_frames():
    grid = FeatureGrid(fps=25.0, stride=4, window=16)
    assert grid.seconds_to_frame(1.0) == 25
    assert grid.frame_to_seconds(50) == 2.0
