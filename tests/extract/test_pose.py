"""Pose features (`mgrec extract --backbone pose`).

The numpy part (normalisation, filling, pooling) is tested here in the main venv, which has no
MediaPipe. The real extraction runs `.venv-pose/bin/mgrec` (made by `make pose-env`) as a subprocess
on a real video; without that venv the test fails, saying how to make it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from mgrec.cli import main
from mgrec.errors import InputError
from mgrec.extract.jobs import backbone_names, extract
from mgrec.extract.pose import (
    BODY_LANDMARKS,
    BODY_SLOT,
    CENTRE_SLOT,
    HAND_LANDMARKS,
    LEFT_HAND_SLOT,
    LEFT_SHOULDER,
    LEFT_WRIST,
    MEAN_POSITION,
    MEAN_VELOCITY,
    PEAK_SPEED,
    POSE_DIM,
    PRESENCE,
    RIGHT_HAND_SLOT,
    RIGHT_SHOULDER,
    RIGHT_WRIST,
    LandmarkTrack,
    assign_hands,
    load_mediapipe,
    pose_window_features,
)

REPO = Path(__file__).resolve().parents[2]
POSE_MGREC = REPO / ".venv-pose" / "bin" / "mgrec"
WIDTH = 120.0  # shoulder width of the synthetic person, pixels
CENTRE = np.array([200.0, 200.0])


def xy(slot: int) -> list[int]:
    """The (x, y) columns of a point slot inside one block (positions, velocities or peak speeds)."""
    return [2 * slot, 2 * slot + 1]


def still_person(frames: int) -> np.ndarray:
    """(frames, 25, 2) pixels: a frontal person (their left shoulder on the image's right), points distinct."""
    rng = np.random.default_rng(0)
    body = CENTRE + rng.uniform(-150, 150, (BODY_LANDMARKS, 2))
    body[LEFT_SHOULDER] = CENTRE + [WIDTH / 2, 0]
    body[RIGHT_SHOULDER] = CENTRE - [WIDTH / 2, 0]
    return np.repeat(body[None], frames, axis=0)


HAND_SHAPE = np.random.default_rng(1).uniform(-30, 30, (HAND_LANDMARKS, 2))
HAND_SHAPE[0] = 0.0  # the hand's own wrist point


def no_hand(frames: int) -> np.ndarray:
    return np.full((frames, HAND_LANDMARKS, 2), np.nan)


def per_frame(track: LandmarkTrack, fps: float = 10.0) -> np.ndarray:
    """Windows of one frame: each row holds that frame's own position, velocity and presence."""
    return pose_window_features(track, fps, window=1, stride=1)


def test_known_motion_gives_known_positions_velocities_and_speeds():
    frames, fps, window, stride = 12, 10.0, 4, 2
    body = still_person(frames)
    body[:, LEFT_WRIST, 0] += 3.0 * np.arange(frames)  # 3 px per frame to the right
    left_hand = body[:, LEFT_WRIST][:, None] + HAND_SHAPE  # a rigid hand riding on the wrist
    features = pose_window_features(LandmarkTrack(body, left_hand, no_hand(frames)), fps, window, stride)

    assert features.shape == ((frames - window) // stride + 1, POSE_DIM) and features.dtype == np.float32
    speed = 3.0 * fps / WIDTH  # shoulder widths per second
    wrist = BODY_SLOT + LEFT_WRIST
    starts = np.arange(len(features)) * stride
    # Positions: relative to the shoulder centre, in shoulder widths, averaged over the window.
    expected_x = (body[0, LEFT_WRIST, 0] + 3.0 * (starts + (window - 1) / 2) - CENTRE[0]) / WIDTH
    np.testing.assert_allclose(features[:, MEAN_POSITION][:, xy(wrist)[0]], expected_x, rtol=1e-6)
    shoulders = features[:, MEAN_POSITION][:, xy(BODY_SLOT + LEFT_SHOULDER) + xy(BODY_SLOT + RIGHT_SHOULDER)]
    np.testing.assert_allclose(shoulders, [[0.5, 0.0, -0.5, 0.0]] * 5, atol=1e-6)
    np.testing.assert_allclose(features[:, MEAN_POSITION][:, xy(CENTRE_SLOT)], 0.0, atol=1e-7)  # no shift
    # Signed velocity: the first frame has none, so the first window's mean is 3/4 of the speed.
    velocity = features[:, MEAN_VELOCITY]
    np.testing.assert_allclose(velocity[:, xy(wrist)[0]], [speed * 3 / 4] + [speed] * 4, rtol=1e-6)
    np.testing.assert_allclose(velocity[:, xy(wrist)[1]], 0.0, atol=1e-7)
    np.testing.assert_allclose(features[:, PEAK_SPEED][:, xy(wrist)[0]], speed, rtol=1e-6)
    # The left hand moves with the wrist; nothing else moves.
    hand_columns = [c for k in range(HAND_LANDMARKS) for c in xy(LEFT_HAND_SLOT + k)]
    np.testing.assert_allclose(velocity[1:, hand_columns[0::2]], speed, rtol=1e-6)
    moving = set(hand_columns[0::2]) | {xy(wrist)[0]}
    still = [c for c in range(velocity.shape[1]) if c not in moving]
    np.testing.assert_allclose(features[:, PEAK_SPEED][:, still], 0.0, atol=1e-7)
    # Presence: a person and a left hand on every frame, never a right hand.
    np.testing.assert_allclose(features[:, PRESENCE], [[1.0, 1.0, 0.0]] * 5)


def test_a_hand_never_found_sits_on_the_pose_wrist():
    body = still_person(5)
    rows = per_frame(LandmarkTrack(body, no_hand(5), no_hand(5)))
    right_wrist = (body[0, RIGHT_WRIST] - CENTRE) / WIDTH
    for k in range(HAND_LANDMARKS):
        np.testing.assert_allclose(rows[:, MEAN_POSITION][:, xy(RIGHT_HAND_SLOT + k)], [right_wrist] * 5, rtol=1e-6)


def test_the_features_do_not_depend_on_where_the_person_is_or_how_big():
    frames = 10
    body = still_person(frames)
    body[:, RIGHT_WRIST] += np.linspace(0, 40, frames)[:, None]
    body[:, :, 1] += np.linspace(0, 6, frames)[:, None]  # the whole person drifts down
    hand = body[:, RIGHT_WRIST][:, None] + HAND_SHAPE
    original = pose_window_features(LandmarkTrack(body, no_hand(frames), hand), 25.0, 4, 2)
    moved = [2.5 * track + np.array([37.0, -11.0]) for track in (body, no_hand(frames), hand)]
    np.testing.assert_allclose(pose_window_features(LandmarkTrack(*moved), 25.0, 4, 2), original, atol=1e-5)
    # The drift shows in the centre slot: the shoulder centre's displacement from its mean.
    drift = original[:, MEAN_POSITION][:, xy(CENTRE_SLOT)[1]]
    assert drift[0] < 0 < drift[-1]
    np.testing.assert_allclose(original[:, MEAN_VELOCITY][1:, xy(CENTRE_SLOT)[1]], 6 / 9 * 25 / WIDTH, rtol=1e-5)


def test_frames_without_a_person_repeat_the_previous_one_and_are_counted():
    frames = 8
    body = still_person(frames)
    body[:, LEFT_WRIST, 1] += 5.0 * np.arange(frames)
    hand = body[:, LEFT_WRIST][:, None] + HAND_SHAPE
    for missing in (0, 5):  # at the start: the first frame with a person; later: the previous frame
        body[missing] = np.nan
        hand[missing] = np.nan
    track = LandmarkTrack(body, hand, no_hand(frames))
    assert track.frames_without_person == 2
    rows = per_frame(track)

    positions, velocity = rows[:, MEAN_POSITION], rows[:, MEAN_VELOCITY]
    np.testing.assert_array_equal(positions[0], positions[1])
    np.testing.assert_array_equal(positions[5], positions[4])
    np.testing.assert_allclose(velocity[[0, 1, 5]], 0.0, atol=1e-7)  # a repeated frame adds no motion
    wrist_y = xy(BODY_SLOT + LEFT_WRIST)[1]
    np.testing.assert_allclose(velocity[6, wrist_y], 2 * 5.0 * 10 / WIDTH, rtol=1e-6)  # two frames' motion at once
    np.testing.assert_allclose(rows[:, PRESENCE][:, 0], [0, 1, 1, 1, 1, 0, 1, 1])
    np.testing.assert_allclose(rows[:, PRESENCE][:, 1], [0, 1, 1, 1, 1, 0, 1, 1])  # no person: no hand either


def test_a_lost_hand_keeps_its_last_shape_on_the_moving_pose_wrist():
    frames = 8
    body = still_person(frames)
    body[:, LEFT_WRIST, 0] += 4.0 * np.arange(frames)
    offset = np.array([2.0, 1.0])  # the hand model's wrist point sits a little off the pose's wrist
    hand = body[:, LEFT_WRIST][:, None] + HAND_SHAPE + offset
    hand[:2] = np.nan  # not yet seen: the first seen shape
    hand[5:] = np.nan  # lost: the last seen shape
    rows = per_frame(LandmarkTrack(body, hand, no_hand(frames)))

    for frame in range(frames):
        expected = body[frame, LEFT_WRIST] + HAND_SHAPE + (offset if 2 <= frame < 5 else 0.0)
        got = rows[frame, MEAN_POSITION][[c for k in range(HAND_LANDMARKS) for c in xy(LEFT_HAND_SLOT + k)]]
        np.testing.assert_allclose(got.reshape(-1, 2), (expected - CENTRE) / WIDTH, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows[:, PRESENCE][:, 1], [0, 0, 1, 1, 1, 0, 0, 0])


def test_unusable_tracks_are_refused():
    nobody = LandmarkTrack(np.full((20, BODY_LANDMARKS, 2), np.nan), no_hand(20), no_hand(20))
    with pytest.raises(InputError, match=r"clip\.mp4: no person found in any of its 20 frames"):
        pose_window_features(nobody, 25.0, 16, 4, source="clip.mp4")
    body = still_person(20)
    body[:, RIGHT_SHOULDER] = body[:, LEFT_SHOULDER]
    with pytest.raises(InputError, match="shoulders coincide"):
        pose_window_features(LandmarkTrack(body, no_hand(20), no_hand(20)), 25.0, 16, 4)
    with pytest.raises(InputError, match="fps"):
        pose_window_features(LandmarkTrack(still_person(20), no_hand(20), no_hand(20)), 0.0, 16, 4)


def test_hands_go_to_the_nearest_wrist_and_strangers_are_dropped():
    body = still_person(1)[0]
    missing = np.full((HAND_LANDMARKS, 2), np.nan)
    near_left = body[LEFT_WRIST] + HAND_SHAPE + 3.0
    near_right = body[RIGHT_WRIST] + HAND_SHAPE - 3.0
    left, right = assign_hands([near_right, near_left], body, missing)
    assert left is near_left and right is near_right
    left, right = assign_hands([near_right], body, missing)
    assert np.isnan(left).all() and right is near_right
    far_away = body[LEFT_WRIST] + HAND_SHAPE + [3 * WIDTH, 0.0]
    left, right = assign_hands([far_away], body, missing)
    assert np.isnan(left).all() and np.isnan(right).all()


def test_pose_is_a_listed_backbone_that_takes_no_weights_or_size(tmp_path):
    assert "pose" in backbone_names()
    with pytest.raises(InputError, match="takes no --weights or --size"):
        extract([tmp_path / "clip.mp4"], tmp_path / "out", backbone="pose", size=64, progress=False)


@pytest.fixture
def without_mediapipe(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe` now raises ImportError


def test_without_mediapipe_the_error_says_how_to_get_it(without_mediapipe):
    with pytest.raises(InputError) as caught:
        load_mediapipe()
    message = str(caught.value)
    assert "\n" not in message
    assert sys.executable in message
    assert "make pose-env" in message and ".venv-pose/bin/mgrec extract --backbone pose" in message


def test_a_mediapipe_without_the_solutions_api_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", types.ModuleType("mediapipe"))
    sys.modules["mediapipe"].__version__ = "1.2.3"
    with pytest.raises(InputError, match=r"mediapipe 1\.2\.3, which ships neither .*make pose-env"):
        load_mediapipe()


def test_the_cli_fails_in_one_line_without_mediapipe(without_mediapipe, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # never read: the missing MediaPipe is found first
    assert main(["extract", str(video), "--backbone", "pose", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("mgrec: error:")
    assert "make pose-env" in err and sys.executable in err
    assert not (tmp_path / "out" / "clip.npy").exists()


def test_a_file_mgrec_did_not_write_is_not_replaced(monkeypatch, tmp_path):
    from mgrec.extract import pose

    monkeypatch.setattr(pose, "load_mediapipe", lambda: None)  # refused before MediaPipe or the video is read
    video, out = tmp_path / "clip.mp4", tmp_path / "out"
    video.write_bytes(b"")
    out.mkdir()
    (out / "clip.npy").write_bytes(b"the user's own file")
    with pytest.raises(InputError, match=r"clip.npy exists and was not written by mgrec extract"):
        pose.extract_poses([video], out, progress=False)
    assert (out / "clip.npy").read_bytes() == b"the user's own file"


@pytest.mark.slow
def test_real_video_through_the_pose_venv(tmp_path, carphone, make_video):
    if not POSE_MGREC.is_file():
        pytest.fail(f"{POSE_MGREC} is missing: run `make pose-env` (MediaPipe needs its own venv)")
    import av

    # carphone: a real person, head and shoulders, in every frame. A copy with 8 black frames gives
    # frames where nobody can be found.
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "carphone.mp4").write_bytes(carphone.read_bytes())
    with av.open(str(carphone)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    for index in range(40, 48):
        frames[index] = np.zeros_like(frames[index])
    make_video(videos / "blanked.mp4", frames, fps=30)
    out = tmp_path / "out"

    def run() -> subprocess.CompletedProcess:
        done = subprocess.run([str(POSE_MGREC), "extract", str(videos), "--backbone", "pose", "--out", str(out),
                               "--no-progress"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    done = run()
    assert done.stdout.count("extracted:") == 2
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line]  # on stderr, as every command's
    assert len(warnings) == 1 and "blanked.mp4" in warnings[0]  # carphone has a person on every frame
    missing = int(re.search(r"(\d+) of 120 frames had no person found", warnings[0]).group(1))
    assert 8 <= missing <= 16, warnings[0]  # the black frames, and a few while the tracker finds the person again

    sidecar = json.loads((out / "carphone.json").read_text())
    assert re.fullmatch(r"\d+:\d+", sidecar.pop("source_stamp"))  # the source's size and mtime
    assert sidecar.pop("source").endswith("carphone.mp4")  # and path: another video of its name does not replace it
    assert sidecar == {"fps": pytest.approx(30000 / 1001), "stride": 4, "window": 16, "backbone": "pose",
                       "dim": POSE_DIM, "frames": 120, "weights": None, "weights_sha256": None, "num_features": 27,
                       "frames_per_window": None, "precision": None}  # no network of mgrec's: no precision
    features = np.load(out / "carphone.npy")
    assert features.shape == (27, POSE_DIM) and features.dtype == np.float32 and np.isfinite(features).all()

    # A person on every frame; their hands are below the picture.
    np.testing.assert_array_equal(features[:, PRESENCE], [[1.0, 0.0, 0.0]] * 27)
    positions = features[:, MEAN_POSITION]
    # Sensible landmarks: the person faces the camera, so their left shoulder is on the image's right,
    # half a shoulder width from the centre (the scale is the median width), and the nose is above.
    np.testing.assert_allclose(positions[:, xy(BODY_SLOT + LEFT_SHOULDER)[0]], 0.5, atol=0.1)
    np.testing.assert_allclose(positions[:, xy(BODY_SLOT + RIGHT_SHOULDER)[0]], -0.5, atol=0.1)
    assert (positions[:, xy(BODY_SLOT + 0)[1]] < -0.3).all()  # nose: y points down
    # The person talks and moves their head: the face moves between windows and within them.
    face = [c for k in range(11) for c in xy(BODY_SLOT + k)]
    assert positions[:, face].std(axis=0).max() > 0.01
    assert (features[:, PEAK_SPEED][:, face].max(axis=1) > 0).all()

    blanked = np.load(out / "blanked.npy")
    assert blanked.shape == (27, POSE_DIM)
    person = blanked[:, PRESENCE][:, 0]
    assert (person[:7] == 1).all()  # windows 0-6 end before frame 40
    assert (person[8:12] < 1).all()  # windows 8-11 (frames 32-59) hold black frames

    # A second run finds both done.
    assert run().stdout.count("skipped:") == 2
