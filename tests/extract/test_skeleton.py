import numpy as np
import pytest

from mgrec.errors import InputError
from mgrec.extract.skeleton import (
    NUM_JOINTS,
    SKELETON_DIM,
    SPINE_BASE,
    SPINE_MID,
    SPINE_SHOULDER,
    read_sample_fps,
    read_skeleton_csv,
    skeleton_window_features,
)

HAND_RIGHT = 11


def standing_person(frames: int) -> np.ndarray:
    """(frames, 25, 3): a still pose with a 0.5 m spine; joints at distinct places."""
    rng = np.random.default_rng(0)
    pose = rng.uniform(-0.4, 0.4, (NUM_JOINTS, 3)) + np.array([0.0, 0.0, 2.5])
    pose[SPINE_BASE] = [0.0, 0.0, 2.5]
    pose[SPINE_MID] = [0.0, 0.25, 2.5]
    pose[SPINE_SHOULDER] = [0.0, 0.5, 2.5]
    return np.repeat(pose[None], frames, axis=0)


def write_skeleton_csv(path, positions: np.ndarray) -> None:
    """SMG layout: per joint x, y, z then 8 other values (orientation, pixels, ...), here junk."""
    junk = np.arange(8) + 100.0
    with open(path, "w") as handle:
        for frame in positions:
            values = np.concatenate([np.concatenate([joint, junk]) for joint in frame])
            handle.write(",".join(f"{v:.6f}" for v in values) + "\n")


def test_reading_takes_world_positions_and_fills_untracked_frames(tmp_path):
    positions = standing_person(8) + np.linspace(0, 0.07, 8)[:, None, None]
    positions[[0, 1, 5]] = 0.0  # Kinect lost the person in these frames
    write_skeleton_csv(tmp_path / "s_skeleton.csv", positions)
    skeleton = read_skeleton_csv(tmp_path / "s_skeleton.csv")
    assert skeleton.untracked_frames == 3
    expected = positions[[2, 2, 2, 3, 4, 4, 6, 7]]  # leading gap: first tracked frame; later: previous one
    np.testing.assert_allclose(skeleton.positions, expected, atol=1e-6)


@pytest.mark.parametrize(
    "line,replacement,message",
    [
        (3, "1,2,3", r"s_skeleton.csv:3: expected 275 comma-separated values \(25 joints x 11\), found 3"),
        (2, None, r"s_skeleton.csv:2: expected numbers \(ASCII digits\), found 'abc'"),
        (4, "", r"s_skeleton.csv:4: expected 275 comma-separated values .* found 1"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, line, replacement, message):
    path = tmp_path / "s_skeleton.csv"
    write_skeleton_csv(path, standing_person(5))
    lines = path.read_text().splitlines()
    lines[line - 1] = replacement if replacement is not None else "abc," + lines[line - 1].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n\n")
    with pytest.raises(InputError, match=message):
        read_skeleton_csv(path)


@pytest.mark.parametrize("cell", ["1_0.5", "\uff11", "0x1p3", "1.0.0"])
def test_a_number_not_written_in_ascii_digits_is_named_not_read_as_another(tmp_path, cell):
    # numpy's float parser read '1_0.5' as 10.5 and a full-width '1' as 1 (exit 0)
    path = tmp_path / "s_skeleton.csv"
    write_skeleton_csv(path, standing_person(3))
    lines = path.read_text().splitlines()
    lines[1] = f"{cell}," + lines[1].split(",", 1)[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"s_skeleton.csv:2: expected numbers \\(ASCII digits\\), found '{cell}'"):
        read_skeleton_csv(path)


def test_files_without_any_tracked_person_are_rejected(tmp_path):
    write_skeleton_csv(tmp_path / "z_skeleton.csv", np.zeros((4, NUM_JOINTS, 3)))
    with pytest.raises(InputError, match="z_skeleton.csv: no frame has a tracked skeleton"):
        read_skeleton_csv(tmp_path / "z_skeleton.csv")
    (tmp_path / "e_skeleton.csv").write_text("\n")
    with pytest.raises(InputError, match="e_skeleton.csv: the skeleton file holds no frames"):
        read_skeleton_csv(tmp_path / "e_skeleton.csv")


def test_features_of_a_moving_hand_by_hand():
    fps, window, stride = 30.0, 8, 4
    positions = standing_person(40)
    positions[:, HAND_RIGHT, 0] += 0.01 * np.arange(40)  # 1 cm per frame to the right
    features = skeleton_window_features(positions, fps, window, stride)
    assert features.shape == ((40 - 8) // 4 + 1, SKELETON_DIM) and features.dtype == np.float32

    mean_pose, mean_velocity, peak_speed = np.split(features, 3, axis=1)
    hand_x = 3 * HAND_RIGHT
    speed = 0.01 / 0.5 * fps  # spine lengths per second
    # Window 0 contains frame 0, whose velocity is defined as zero.
    assert mean_velocity[0, hand_x] == pytest.approx(speed * 7 / 8, rel=1e-5)
    np.testing.assert_allclose(mean_velocity[1:, hand_x], speed, rtol=1e-5)
    np.testing.assert_allclose(peak_speed[:, hand_x], speed, rtol=1e-5)
    others = np.delete(np.arange(SKELETON_DIM // 3), hand_x)
    np.testing.assert_allclose(mean_velocity[:, others], 0, atol=1e-6)
    np.testing.assert_allclose(peak_speed[:, others], 0, atol=1e-6)
    # Positions relative to SpineMid in spine lengths; the hand's x is its mean over the window.
    shoulder = 3 * SPINE_SHOULDER + np.arange(3)
    np.testing.assert_allclose(mean_pose[:, shoulder], np.tile([0.0, 0.5, 0.0], (len(features), 1)), atol=1e-6)
    start_x = (positions[0, HAND_RIGHT, 0] - positions[0, SPINE_MID, 0]) / 0.5
    expected_x = start_x + 0.02 * (np.arange(len(features)) * stride + 3.5)
    np.testing.assert_allclose(mean_pose[:, hand_x], expected_x, rtol=1e-5)
    # The body did not move, so SpineMid's slot (displacement from its mean) is zero.
    np.testing.assert_allclose(mean_pose[:, 3 * SPINE_MID : 3 * SPINE_MID + 3], 0, atol=1e-6)


def test_features_ignore_where_the_person_stands_and_their_size():
    rng = np.random.default_rng(1)
    positions = standing_person(30) + rng.normal(0, 0.02, (30, NUM_JOINTS, 3))
    features = skeleton_window_features(positions, 28.0, 16, 4)
    moved = skeleton_window_features(positions + np.array([1.0, -0.3, 0.8]), 28.0, 16, 4)
    taller = skeleton_window_features(positions * 1.3, 28.0, 16, 4)
    np.testing.assert_allclose(moved, features, atol=1e-5)
    np.testing.assert_allclose(taller, features, atol=1e-5)

    # Walking changes only the SpineMid slots (body displacement); the body-centred pose stays.
    walking = positions + (0.01 * np.arange(30))[:, None, None] * np.array([1.0, 0.0, 0.0])
    walked = skeleton_window_features(walking, 28.0, 16, 4)
    spine_mid = [block * 75 + 3 * SPINE_MID + axis for block in range(3) for axis in range(3)]
    np.testing.assert_allclose(np.delete(walked, spine_mid, axis=1), np.delete(features, spine_mid, axis=1), atol=1e-5)
    assert not np.allclose(walked[:, spine_mid], features[:, spine_mid], atol=1e-3)


def test_read_sample_fps(tmp_path):
    path = tmp_path / "Sample0001_data.csv"
    path.write_text("24800,28,4000\n")
    assert read_sample_fps(path) == 28.0
    path.write_text("numFrames,fps,maxDepth\n24800,29.97,4000\n")
    assert read_sample_fps(path) == 29.97
    path.write_text("numFrames,fps\n")
    with pytest.raises(InputError, match="Sample0001_data.csv: expected exactly one row numFrames,fps,maxDepth"):
        read_sample_fps(path)


@pytest.mark.parametrize("fps", ["0", "-5", "inf", "nan", "-inf", "1e300", "1001"])
def test_a_sample_fps_that_is_not_a_frame_rate_is_refused(tmp_path, fps):
    path = tmp_path / "Sample0001_data.csv"
    path.write_text(f"24800,{fps},4000\n")
    with pytest.raises(InputError, match=r"Sample0001_data.csv:1: fps must be (a finite number|in \[0.001, 1000\])"):
        read_sample_fps(path)


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), 0.0, -5.0, 1e300])
def test_window_features_refuse_an_fps_that_is_not_a_frame_rate(fps):
    with pytest.raises(InputError, match=r"^s_skeleton.csv: fps must be"):
        skeleton_window_features(standing_person(20), fps, 8, 4, source="s_skeleton.csv")


@pytest.mark.parametrize("value", ["1e300", "-2e4", "1.5e308"])
def test_coordinates_far_outside_any_room_are_refused(tmp_path, value):
    positions = standing_person(6)
    path = tmp_path / "s_skeleton.csv"
    write_skeleton_csv(path, positions)
    lines = path.read_text().splitlines()
    fields = lines[3].split(",")
    fields[11 * HAND_RIGHT + 1] = value  # y of the right hand, frame 4
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_skeleton_csv(path)
    expected = f"{path}:4: joint {HAND_RIGHT} coordinate y = {float(value):.3g} is outside +-10000"
    assert str(info.value).startswith(expected)


def test_coordinates_in_millimetres_give_the_same_features(tmp_path):
    positions = standing_person(30) + np.random.default_rng(2).normal(0, 0.02, (30, NUM_JOINTS, 3))
    write_skeleton_csv(tmp_path / "mm_skeleton.csv", positions * 1000)
    millimetres = read_skeleton_csv(tmp_path / "mm_skeleton.csv").positions
    np.testing.assert_allclose(
        skeleton_window_features(millimetres, 28.0, 16, 4), skeleton_window_features(positions, 28.0, 16, 4), atol=1e-4
    )


def test_features_beyond_the_feature_range_are_refused_not_written():
    # A spine of 1 micrometre (allowed) and a hand 1 km away: positions of 1e9 spine lengths.
    positions = standing_person(20)
    positions[:, SPINE_SHOULDER] = positions[:, SPINE_BASE] + [0.0, 1e-6, 0.0]
    positions[10:, HAND_RIGHT, 0] = 1000.0
    with pytest.raises(InputError, match=r"^s_skeleton.csv: the features made from it: \d+ value\(s\) outside"):
        skeleton_window_features(positions, 28.0, 8, 4, source="s_skeleton.csv")
