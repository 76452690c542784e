"""Several input streams per video (`mgrec.data.streams`): one grid, exact times, clear errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from mgrec.config import Config, DataConfig, StreamConfig, load_config
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.data.streams import load_video_streams, resample_to_grid, stream_folders
from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid

VIDEO_FPS = 30.0
GRID = FeatureGrid(fps=VIDEO_FPS, stride=4, window=16)  # the grid stream's


def times_as_features(grid: FeatureGrid, steps: int) -> np.ndarray:
    """Features whose two channels are each row's centre time and twice it: a known function of time."""
    t = np.asarray(grid.index_to_seconds(np.arange(steps)))
    return np.stack([t, 2 * t], axis=1).astype(np.float32)


@pytest.mark.parametrize("source", [
    FeatureGrid(fps=VIDEO_FPS, stride=8, window=16),   # half the rate
    FeatureGrid(fps=VIDEO_FPS, stride=3, window=9),    # a finer rate, another window
    FeatureGrid(fps=50.0, stride=5, window=20),        # its own sensor clock
])
def test_resampling_maps_times_exactly(source):
    # A feature that is its own time stays its own time on the new grid: a moment t means the same
    # moment in every stream (linear interpolation is exact on a linear function). Beyond the
    # stream's first/last row the end value is held.
    seconds = 60.0
    steps_source = source.num_windows(int(seconds * source.fps))
    steps_grid = GRID.num_windows(int(seconds * VIDEO_FPS))
    out = resample_to_grid(times_as_features(source, steps_source), source, GRID, steps_grid)
    t = np.asarray(GRID.index_to_seconds(np.arange(steps_grid)))
    lo, hi = source.index_to_seconds(0), source.index_to_seconds(steps_source - 1)
    expected = np.clip(t, lo, hi)
    assert out.shape == (steps_grid, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], expected, atol=1e-4)
    np.testing.assert_allclose(out[:, 1], 2 * expected, atol=2e-4)


def test_a_stream_on_the_grid_is_returned_unchanged():
    features = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    assert resample_to_grid(features, GRID, GRID, 50) is features


def write_stream(folder, video_id, features, grid: FeatureGrid, frames: int):
    sidecar = FeatureSidecar(fps=grid.fps, stride=grid.stride, window=grid.window, backbone="test",
                             dim=features.shape[1], frames=frames)
    write_features(folder / f"{video_id}.npy", features, sidecar)


@pytest.fixture
def two_streams(tmp_path):
    """Video v0, 40 s at 30 fps: stream rgb (4 channels) on GRID, stream pose (2 channels) at stride 8."""
    frames = 40 * 30
    pose_grid = FeatureGrid(fps=VIDEO_FPS, stride=8, window=16)
    rng = np.random.default_rng(1)
    (tmp_path / "rgb").mkdir()
    (tmp_path / "pose").mkdir()
    rgb = rng.standard_normal((GRID.num_windows(frames), 4)).astype(np.float32)
    write_stream(tmp_path / "rgb", "v0", rgb, GRID, frames)
    write_stream(tmp_path / "pose", "v0", times_as_features(pose_grid, pose_grid.num_windows(frames)), pose_grid,
                 frames)
    data = DataConfig(streams=[
        StreamConfig(name="rgb", features=str(tmp_path / "rgb"), feature_dim=4, stride=4, window=16),
        StreamConfig(name="pose", features=str(tmp_path / "pose"), feature_dim=2, stride=8, window=16),
    ])
    Config(data=data)  # derives data.stride/window/feature_dim from the streams
    return data, rgb, tmp_path


def test_streams_are_joined_on_the_grid_streams_grid(two_streams):
    data, rgb, _ = two_streams
    joined = load_video_streams(data, "v0", VIDEO_FPS)
    assert joined.shape == (len(rgb), 6)
    np.testing.assert_array_equal(joined[:, :4], rgb)  # the grid stream untouched, first
    t = np.asarray(GRID.index_to_seconds(np.arange(len(rgb))))
    pose_grid = FeatureGrid(fps=VIDEO_FPS, stride=8, window=16)
    last = pose_grid.index_to_seconds(pose_grid.num_windows(1200) - 1)
    np.testing.assert_allclose(joined[:, 4], np.minimum(t, last), atol=1e-4)


def test_the_grid_stream_may_be_named(two_streams):
    data, rgb, _ = two_streams
    data.grid_stream = "pose"
    config = Config(data=data)
    assert [s.name for s in data.input_streams()] == ["pose", "rgb"]
    assert (config.data.stride, config.model.stream_dims) == (8, [2, 4])
    joined = load_video_streams(config.data, "v0", VIDEO_FPS)
    assert joined.shape == (FeatureGrid(VIDEO_FPS, 8, 16).num_windows(1200), 6)


def test_a_missing_stream_is_an_error_naming_video_and_stream(two_streams):
    data, _, root = two_streams
    (root / "pose" / "v0.npy").unlink()
    with pytest.raises(InputError, match=r"video v0: stream 'pose' has no feature file .*pose/v0.npy"):
        load_video_streams(data, "v0", VIDEO_FPS)


def test_a_stream_of_another_duration_is_refused(two_streams):
    data, _, root = two_streams
    pose_grid = FeatureGrid(fps=VIDEO_FPS, stride=8, window=16)
    short = times_as_features(pose_grid, pose_grid.num_windows(30 * 30))  # 30 s of a 40 s video
    write_stream(root / "pose", "v0", short, pose_grid, 900)
    with pytest.raises(InputError, match=r"video v0: stream 'pose' .* covers 29.87 s but the grid stream 'rgb' "
                                         r"covers 40.00 s \(tolerance"):
        load_video_streams(data, "v0", VIDEO_FPS)


def test_a_stream_of_the_wrong_dim_is_refused_naming_the_file(two_streams):
    data, _, root = two_streams
    data.streams[1].feature_dim = 3
    with pytest.raises(InputError, match=r"pose/v0.npy.*3"):
        load_video_streams(data, "v0", VIDEO_FPS)


def test_a_stream_file_of_the_wrong_width_names_the_stream_s_own_key(two_streams):
    # data.feature_dim is the streams' total: a message naming it sent the user to the wrong setting
    data, _, root = two_streams
    data.streams[1].feature_dim = 3
    with pytest.raises(InputError, match=r"pose/v0.npy: expected feature dimension 3 \(data.streams\[1\].feature_dim, "
                                         r"stream 'pose'\), found"):
        load_video_streams(data, "v0", VIDEO_FPS)
    data.streams[1].feature_dim = 2
    data.streams[0].feature_dim = 3
    with pytest.raises(InputError, match=r"rgb/v0.npy: expected feature dimension 3 \(data.streams\[0\].feature_dim, "
                                         r"stream 'rgb'\), found"):
        load_video_streams(data, "v0", VIDEO_FPS)


def test_a_sidecar_that_disagrees_with_its_stream_names_the_stream_key(two_streams):
    data, _, _ = two_streams
    data.streams[1].stride = 4  # the files say 8
    with pytest.raises(InputError, match=r"stride is 8 in the sidecar but 4 in the config \(data.streams\[1\].stride"):
        load_video_streams(data, "v0", VIDEO_FPS)


def test_stream_folders_from_the_command_line(two_streams, tmp_path):
    data, _, _ = two_streams
    assert stream_folders(["pose=/x/pose"], data) == {"pose": Path("/x/pose")}
    assert stream_folders(["pose=~/pose"], data) == {"pose": Path.home() / "pose"}  # as every path argument
    for bad, message in [("pose", "expected NAME=FOLDER"), ("hands=/x", "no stream 'hands'"),
                         ("=x", "expected NAME=FOLDER"),
                         # the grid stream's files are the inputs given: its folder was ignored without a word
                         ("rgb=/x", r"'rgb' is the grid stream, read from the feature files given; --stream names "
                                    r"the other streams \(pose\)")]:
        with pytest.raises(InputError, match=message):
            stream_folders([bad], data)
    with pytest.raises(InputError, match=r"'features' is the grid stream, .*; this run reads one stream: leave"):
        stream_folders(["features=/x"], DataConfig(features="f"))


def write_config(tmp_path, data: dict, model: dict | None = None):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"data": data, "model": model or {}}), encoding="utf-8")
    return path


STREAMS = [{"name": "rgb", "features": "r", "feature_dim": 4, "stride": 4, "window": 16},
           {"name": "pose", "features": "p", "feature_dim": 2, "stride": 8, "window": 16}]


def test_a_streams_config_derives_the_grid_and_the_model_input(tmp_path):
    config = load_config(write_config(tmp_path, {"streams": STREAMS}, {"fusion": "gated"}))
    assert (config.data.feature_dim, config.data.stride, config.data.window) == (6, 4, 16)
    assert (config.model.input_dim, config.model.stream_dims, config.model.fusion) == (6, [4, 2], "gated")


@pytest.mark.parametrize("data, model, message", [
    # where each is set instead: a grid setting in the grid stream's entry, the width per stream (it is their total)
    ({"streams": STREAMS, "stride": 8}, {}, r"\[data.stride\]: 8 differs from 4: leave it out, with data.streams it "
                                            r"is that of the grid stream 'rgb'; set it in that stream's entry of "
                                            r"data.streams \(each other stream's in its own\)$"),
    ({"streams": STREAMS, "feature_dim": 4}, {}, r"\[data.feature_dim\]: 4 differs from 6: leave it out, with "
                                                 r"data.streams it is the streams' total; set each stream's in its "
                                                 r"entry of data.streams$"),
    ({"streams": STREAMS, "features": "f"}, {}, r"\[data.features\]"),
    ({"streams": STREAMS}, {"stream_dims": [2, 4]}, r"\[model.stream_dims\]"),
    ({"streams": [STREAMS[0], {**STREAMS[1], "name": "rgb"}]}, {}, r"\[data.streams\[1\].name\]: stream .rgb. is"),
    ({"streams": [STREAMS[0], {**STREAMS[1], "features": ""}]}, {}, r"\[data.streams\[1\].features\]"),
    # one recipe file, feature_recipe_<name>.json, where the file system folds case
    ({"streams": [STREAMS[0], {**STREAMS[1], "name": "RGB"}]}, {},
     r"\[data.streams\[1\].name\]: stream 'RGB' is named twice \('rgb'\); names must differ, in more"),
    # one sensor fed twice: a copy-paste slip nothing told
    ({"streams": [STREAMS[0], {**STREAMS[1], "features": "./r/"}]}, {}, r"\[data.streams\[1\].features\]: streams "
                                                                       r"'rgb' and 'pose' read the same files"),
    ({"streams": [STREAMS[0], {**STREAMS[1], "name": "a/b"}]}, {}, r"\[data.streams\[1\].name\]"),
    ({"streams": [STREAMS[0], {**STREAMS[1], "stride": 0}]}, {}, r"\[data.streams\[1\].stride\]"),
    ({"streams": STREAMS, "grid_stream": "hands"}, {}, r"\[data.grid_stream\]: expected one of the streams"),
    ({"streams": [STREAMS[0]]}, {"fusion": "gated"}, r"\[model.fusion\]: gated joins two or more"),
    ({"streams": [{**STREAMS[0], "strid": 4}]}, {}, r"\[data.streams\[0\].strid\]: unknown key; did you mean"),
])
def test_bad_streams_configs_are_refused_by_key(tmp_path, data, model, message):
    with pytest.raises(InputError, match=message):
        load_config(write_config(tmp_path, data, model))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_live_streams_give_exactly_the_rows_of_the_whole_files(two_streams, seed):
    # Chunks of random sizes per stream, in a random order of streams: the released rows, joined, are
    # the rows of load_video_streams.
    from mgrec.data.streams import StreamAligner

    data, _, root = two_streams
    whole = load_video_streams(data, "v0", VIDEO_FPS)
    files = {"rgb": np.load(root / "rgb" / "v0.npy"), "pose": np.load(root / "pose" / "v0.npy")}
    rng = np.random.default_rng(seed)
    aligner = StreamAligner(data, VIDEO_FPS)
    sent = {name: 0 for name in files}
    released, most_held = [], 0
    while any(sent[name] < len(files[name]) for name in files):
        name = rng.choice([n for n in files if sent[n] < len(files[n])])
        size = int(rng.integers(1, 12))
        released.append(aligner.push({name: files[name][sent[name]: sent[name] + size]}))
        sent[name] += size
    released.append(aligner.flush())
    np.testing.assert_array_equal(np.concatenate(released), whole)

    # Fed as a live source would (both streams up to the same moment, hop by hop), the aligner holds only
    # a few rows, whatever the length of the stream.
    aligner = StreamAligner(data, VIDEO_FPS)
    live = []
    for start in range(0, len(files["rgb"]), 8):
        live.append(aligner.push({"rgb": files["rgb"][start: start + 8],
                                  "pose": files["pose"][start // 2: start // 2 + 4]}))
        most_held = max(most_held, max(len(held) for held in aligner._held))
    assert most_held <= 10 and sum(map(len, live)) >= len(whole) - 3  # all but the last rows without flush
    np.testing.assert_array_equal(np.concatenate([*live, aligner.flush()]), whole)


def test_a_grid_step_exists_when_the_aligner_fed_rows_as_they_exist_releases_it(two_streams):
    # `ready_seconds` says when a joined step can be released (a fused ensemble holds a member's joined rows pushed
    # ahead until then): each stream's rows fed as they exist, the steps released by a moment are those existing by it
    from mgrec.data.streams import StreamAligner

    data, _, root = two_streams
    files = {"rgb": np.load(root / "rgb" / "v0.npy"), "pose": np.load(root / "pose" / "v0.npy")}
    aligner = StreamAligner(data, VIDEO_FPS)
    grids = dict(zip(("rgb", "pose"), aligner.stream_grids))
    sent, released = {"rgb": 0, "pose": 0}, 0
    for now in np.arange(0.1, 41.0, 0.37):
        chunks = {}
        for name, rows in files.items():
            existing = sent[name]
            while existing < len(rows) and grids[name].covered_seconds(existing + 1) <= now:
                existing += 1
            chunks[name], sent[name] = rows[sent[name]:existing], existing
        released += len(aligner.push(chunks))
        assert released == sum(aligner.ready_seconds(step) <= now for step in range(len(files["rgb"]))), now


def test_live_streams_refuse_an_unknown_stream_or_a_wrong_dim(two_streams):
    from mgrec.data.streams import StreamAligner

    data, _, _ = two_streams
    aligner = StreamAligner(data, VIDEO_FPS)
    with pytest.raises(InputError, match="no stream 'hands'"):
        aligner.push({"hands": np.zeros((2, 2), np.float32)})
    with pytest.raises(InputError, match=r"stream 'pose': expected an array \(T, 2\)"):
        aligner.push({"pose": np.zeros((2, 3), np.float32)})
    aligner.push({"rgb": np.zeros((5, 4), np.float32)})
    with pytest.raises(InputError, match="pose sent no features"):
        aligner.flush()


def test_a_refused_push_changes_nothing_and_a_stalled_stream_is_named(two_streams):
    from mgrec.data.streams import MAX_STREAM_LAG_SECONDS, StreamAligner

    data, _, root = two_streams
    files = {"rgb": np.load(root / "rgb" / "v0.npy"), "pose": np.load(root / "pose" / "v0.npy")}
    aligner = StreamAligner(data, VIDEO_FPS)
    good = {"rgb": files["rgb"][:8], "pose": files["pose"][:4]}
    for bad, message in ((dict(good, hands=files["pose"][:4]), "no stream 'hands'"),
                         (dict(good, pose=np.full((4, 2), 1e30, np.float32)), r"stream 'pose' \(rows 0\.\.\): 8 value"),
                         (dict(good, pose=files["pose"][:4].astype(np.int64)), "found dtype int64")):
        with pytest.raises(InputError, match=message):
            aligner.push(bad)
        assert aligner._received == [0, 0]  # the good chunk of that push was not taken either
    rows = [aligner.push(good)]
    rest = {"rgb": files["rgb"][8:], "pose": files["pose"][4:]}
    np.testing.assert_array_equal(np.concatenate([*rows, aligner.push(rest), aligner.flush()]),
                                  load_video_streams(data, "v0", VIDEO_FPS))
    # one stream stops: past the lag bound the stall is an error naming it, not an ever-growing buffer
    aligner = StreamAligner(data, VIDEO_FPS)
    steps_per_second = 1.0 / aligner.grid.seconds_per_step()
    chunk = np.zeros((8, 4), np.float32)
    with pytest.raises(InputError, match=r"stream\(s\) pose more than 60 s behind the others"):
        for _ in range(int(MAX_STREAM_LAG_SECONDS * steps_per_second / 8) + 2):
            aligner.push({"rgb": chunk})
    # the refused push was undone (its rows were kept before): sent again with the other stream, it goes through
    received = list(aligner._received)
    with pytest.raises(InputError, match="behind the others"):
        aligner.push({"rgb": chunk})
    assert aligner._received == received
    late = int(aligner._received[0] * aligner.grid.seconds_per_step() / aligner.stream_grids[1].seconds_per_step())
    rows = aligner.push({"rgb": chunk, "pose": np.zeros((late + 8, 2), np.float32)})
    assert len(rows) > 0
    # one stream sent rows and another none: said at the end whichever stream is missing (the grid stream too)
    lone = StreamAligner(data, VIDEO_FPS)
    lone.push({"pose": np.zeros((6, 2), np.float32)})
    with pytest.raises(InputError, match="rgb sent no features"):
        lone.flush()
    assert len(StreamAligner(data, VIDEO_FPS).flush()) == 0  # nothing at all: an empty stream
    with pytest.raises(InputError, match=r"expected \{stream name: \(T, C\) rows\}, got list"):
        StreamAligner(data, VIDEO_FPS).push([chunk])


@pytest.mark.parametrize("frames, imu_seconds", [(300, 10.0), (300, 9.6), (307, 10.3), (290, 9.45)])
def test_a_finer_stream_at_its_own_rate_replayed_live_gives_the_files_rows(tmp_path, frames, imu_seconds):
    # A 50 Hz stream (fps only in its sidecar) beside 30 fps video features, ending a little before or
    # after them: the replay of `mgrec stream` through the live aligner gives load_video_streams' rows.
    from mgrec.data.streams import StreamAligner, load_stream_files
    from mgrec.infer.stream import _replay

    imu = FeatureGrid(fps=50.0, stride=1, window=2)
    rng = np.random.default_rng(frames)
    for name, grid, count in (("rgb", GRID, frames), ("imu", imu, int(imu_seconds * 50))):
        (tmp_path / name).mkdir()
        write_stream(tmp_path / name, "v0", rng.standard_normal((grid.num_windows(count), 3)).astype(np.float32),
                     grid, count)
    data = DataConfig(streams=[StreamConfig(name="rgb", features=str(tmp_path / "rgb"), feature_dim=3),
                               StreamConfig(name="imu", features=str(tmp_path / "imu"), feature_dim=3, stride=1,
                                            window=2)])
    Config(data=data)
    whole = load_video_streams(data, "v0", VIDEO_FPS)
    loaded = load_stream_files(data, "v0", VIDEO_FPS)
    aligner = StreamAligner(data, VIDEO_FPS, stream_fps={"imu": 50.0})
    rows = [aligner.push(chunk) for chunk in _replay(loaded, ["rgb", "imu"], 8, GRID, realtime=False)]
    np.testing.assert_array_equal(np.concatenate([*rows, aligner.flush()]), whole)


def test_data_check_counts_a_stream_at_its_own_rate_in_its_own_frames(tmp_path):
    # Annotations with num_frames (video frames at 30 fps) and a 50 Hz stream: no false length error.
    from mgrec.data.check import check_dataset

    imu = FeatureGrid(fps=50.0, stride=5, window=20)
    for name, grid, count in (("rgb", GRID, 300), ("imu", imu, 500)):
        (tmp_path / name).mkdir()
        write_stream(tmp_path / name, "v0", np.zeros((grid.num_windows(count), 2), np.float32), grid, count)
    (tmp_path / "a.json").write_text(json.dumps({"classes": ["x"], "database": {"v0": {
        "subset": "train", "fps": VIDEO_FPS, "duration": 10.0, "num_frames": 300,
        "annotations": [{"label": "x", "label_id": 0, "segment": [1.0, 2.0]}]}}}))
    config = Config(data=DataConfig(annotations=str(tmp_path / "a.json"), streams=[
        StreamConfig(name="rgb", features=str(tmp_path / "rgb"), feature_dim=2),
        StreamConfig(name="imu", features=str(tmp_path / "imu"), feature_dim=2, stride=5, window=20)]))
    config.model.num_classes = 1
    assert not check_dataset(config).errors
