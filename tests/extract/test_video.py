import threading

import numpy as np
import pytest

from mgrec.errors import InputError
from mgrec.extract.video import (
    batched,
    collect_inputs,
    iter_frames,
    prefetch,
    probe_video,
    shard_for_this_process,
    sliding_windows,
    video_id,
)
from mgrec.timeline import FeatureGrid


@pytest.mark.parametrize("length", [0, 5, 15, 16, 17, 19, 20, 21, 40, 121])
@pytest.mark.parametrize("window,stride", [(16, 4), (16, 16), (8, 3), (1, 1), (4, 6)])
def test_sliding_windows_are_the_complete_windows_of_the_feature_grid(length, window, stride):
    items = list(range(length))
    windows = list(sliding_windows(iter(items), window, stride))
    brute_force = [items[s : s + window] for s in range(0, length - window + 1, stride)]
    assert windows == brute_force
    assert len(windows) == FeatureGrid(30.0, stride, window).num_windows(length)


def test_sliding_windows_consume_the_whole_stream():
    consumed = []

    def stream():
        for item in range(10):
            consumed.append(item)
            yield item

    assert len(list(sliding_windows(stream(), 4, 4))) == 2  # items 8 and 9 belong to no window
    assert consumed == list(range(10))


def test_batched():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched([], 3)) == []


def test_prefetch_keeps_order_and_reraises_the_producers_error():
    def producer():
        yield from range(5)
        raise InputError("broken at 5")

    received = []
    with pytest.raises(InputError, match="broken at 5"):
        for item in prefetch(producer(), max_items=2):
            received.append(item)
    assert received == [0, 1, 2, 3, 4]


def test_prefetch_stops_its_thread_when_the_consumer_stops_early():
    closed = threading.Event()

    def endless():
        try:
            count = 0
            while True:
                yield count
                count += 1
        finally:
            closed.set()

    stream = prefetch(endless(), max_items=3)
    assert [next(stream) for _ in range(4)] == [0, 1, 2, 3]
    stream.close()
    assert closed.wait(timeout=5)
    assert not any(thread.name == "mgrec-decode" for thread in threading.enumerate())


def test_video_id_drops_smg_modality_suffixes(tmp_path):
    assert video_id(tmp_path / "Sample0001_color.mp4") == "Sample0001"
    assert video_id(tmp_path / "Sample0001_skeleton.csv") == "Sample0001"
    assert video_id(tmp_path / "clip.b.mp4") == "clip.b"
    assert video_id(tmp_path / "_color.mp4") == "_color"


def test_collect_inputs(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/x.mp4", "a/deep/y.MKV", "a/notes.txt", "b.avi"):
        (tmp_path / name).write_bytes(b"")
    found = collect_inputs([tmp_path / "a", tmp_path / "b.avi"], (".mp4", ".mkv", ".avi"), "video file")
    assert found == [tmp_path / "a/deep/y.MKV", tmp_path / "a/x.mp4", tmp_path / "b.avi"]

    with pytest.raises(InputError, match="notes.txt: not a video file"):
        collect_inputs([tmp_path / "a/notes.txt"], (".mp4",), "video file")
    with pytest.raises(InputError, match="missing.mp4: no such file"):
        collect_inputs([tmp_path / "missing.mp4"], (".mp4",), "video file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: folder holds no video file"):
        collect_inputs([tmp_path / "empty"], (".mp4",), "video file")
    (tmp_path / "a/x_color.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="would both be stored as 'x'"):
        collect_inputs([tmp_path / "a"], (".mp4",), "video file")


def test_shard_for_this_process(monkeypatch):
    items = list(range(7))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert shard_for_this_process(items) == items
    shards = []
    for rank in range(3):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "3")
        shards.append(shard_for_this_process(items))
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(InputError, match="RANK=3"):
        shard_for_this_process(items)


def test_decoding_a_real_video(carphone):
    stream = probe_video(carphone)
    assert stream.fps == pytest.approx(30000 / 1001)
    assert (stream.width, stream.height, stream.declared_frames) == (176, 144, 120)
    frames = list(iter_frames(carphone, 32))
    assert len(frames) == 120
    assert frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
    # A real video: consecutive frames are similar, but the clip is not a still image.
    difference = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    assert 0 < np.median(difference) < 20
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > np.median(difference)


def test_a_file_cut_short_is_an_input_error_naming_it(carphone, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(carphone.read_bytes()[:300_000])  # its index sits at the end: it cannot be opened
    with pytest.raises(InputError, match="cut.mp4: cannot open"):
        probe_video(cut)
    with pytest.raises(InputError, match="cut.mp4: decoding failed at frame 0"):
        list(iter_frames(cut, 32))


def test_a_video_failing_midway_names_the_frame(carphone_cut_midway):
    assert probe_video(carphone_cut_midway).declared_frames == 120
    decoded = 0
    with pytest.raises(InputError, match=r"carphone_cut.mp4: decoding (failed at|stopped at) frame (\d+)") as error:
        for _ in iter_frames(carphone_cut_midway, 32):
            decoded += 1
    assert 0 < decoded < 120
    assert f"frame {decoded}" in str(error.value)
