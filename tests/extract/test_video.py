import threading

import pytest

import mgrec.data.videos
import mgrec.extract.video
from mgrec.errors import InputError
from mgrec.extract.video import collect_inputs, prefetch, shard_for_this_process


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
    before = set(threading.enumerate())  # another test's producer may still be winding down in this process

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
    # the producer sets `closed` on its way out; on a loaded machine it may still be finishing that very moment
    ours = [thread for thread in threading.enumerate() if thread.name == "mgrec-decode" and thread not in before]
    for thread in ours:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in ours)


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



def test_collect_inputs_follows_linked_folders_once_and_not_up(tmp_path):
    # `videos/cam2 -> /mnt/cam2`: Path.rglob did not enter it, and its videos were left out without a word
    (tmp_path / "videos" / "cam1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for name in ("videos/cam1/a.mp4", "elsewhere/b.mp4", "outside.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "videos" / "cam2").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "videos" / "cam2again").symlink_to(tmp_path / "elsewhere")  # one real folder: walked once
    (tmp_path / "videos" / "cam1" / "up").symlink_to(tmp_path)  # a loop out of and round what was given
    (tmp_path / "videos" / "self").symlink_to(tmp_path / "videos")
    assert [p.name for p in collect_inputs([tmp_path / "videos"], (".mp4",), "video file")] == ["a.mp4", "b.mp4"]


def test_collect_inputs_leaves_out_hidden_names_and_takes_one_file_given_twice_once(tmp_path):
    # A macOS `._clip.mp4` beside clip.mp4 failed the extraction ("1 of 2 inputs failed"); the folder and a
    # path into it were "both stored as 'clip'; extract them into different folders", though one file.
    for name in ("clip.mp4", "._clip.mp4", ".hidden/other.mp4", "sub/.cache.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert collect_inputs([tmp_path], (".mp4",), "video file") == [tmp_path / "clip.mp4"]
    assert collect_inputs([tmp_path, tmp_path / "sub" / ".." / "clip.mp4"], (".mp4",), "video file") == [
        tmp_path / "clip.mp4"]
    assert collect_inputs([tmp_path / "._clip.mp4"], (".mp4",), "video file") == [tmp_path / "._clip.mp4"]

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


@pytest.mark.parametrize("name", ["VIDEO_SUFFIXES", "MODALITY_SUFFIXES", "VideoStream", "video_id", "probe_video",
                                  "iter_frames", "sliding_windows", "batched"])
def test_the_decoding_moved_to_data_is_still_importable_from_here(name):
    # extract/jobs.py, pose.py and backbones.py import these from mgrec.extract.video.
    assert getattr(mgrec.extract.video, name) is getattr(mgrec.data.videos, name)


@pytest.mark.parametrize("rate", ["1000000:1", "1:100000"])
def test_a_frame_rate_no_sidecar_could_hold_is_refused_before_extracting(tmp_path, rate):
    """A 1e6-fps video was extracted, its sidecar then unreadable (past the fps rule), and the rerun refused it as a
    file mgrec had not written."""
    from mgrec.data.videos import probe_video

    path = tmp_path / "v.y4m"
    frame = b"FRAME\n" + bytes(16 * 16 * 3 // 2)
    path.write_bytes(f"YUV4MPEG2 W16 H16 F{rate} Ip A1:1 C420jpeg\n".encode() + frame * 3)
    with pytest.raises(InputError, match=r"v.y4m: the video stream's frame rate is \S+ fps; mgrec places frames by "
                                         r"rates of 0.001 to 1000 fps"):
        probe_video(path)


def test_collect_inputs_names_a_video_of_a_folder_that_cannot_be_read_instead_of_leaving_it_out(tmp_path):
    """A link to a video on a drive no longer mounted, a link loop or a pipe under a video's name, in a folder given:
    it was left out without a word (the folder's other videos extracted, `1 extracted` of the 3 there); given
    itself, a pipe or a dangling link was 'no such file or folder'."""
    import os

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"")
    (tmp_path / "videos" / "b.mp4").symlink_to("/nonexistent/b.mp4")
    with pytest.raises(InputError, match=r"b\.mp4: a symbolic link to /nonexistent/b\.mp4, which does not exist") as e:
        collect_inputs([tmp_path / "videos"], (".mp4",), "video file")
    assert "1 of the 2 video files in" in str(e.value) and "a folder is extracted whole" in str(e.value)
    (tmp_path / "videos" / "b.mp4").unlink()
    os.symlink("c.mp4", tmp_path / "videos" / "d.mp4")
    os.symlink("d.mp4", tmp_path / "videos" / "c.mp4")
    with pytest.raises(InputError, match=r"2 of the 3 video files .*c\.mp4: a symbolic link loop"):
        collect_inputs([tmp_path / "videos"], (".mp4",), "video file")
    for name in ("c.mp4", "d.mp4"):
        (tmp_path / "videos" / name).unlink()
    os.mkfifo(tmp_path / "videos" / "e.mp4")
    with pytest.raises(InputError, match=r"e\.mp4: a named pipe, not a video file"):
        collect_inputs([tmp_path / "videos"], (".mp4",), "video file")
    with pytest.raises(InputError, match=r"e\.mp4: a named pipe, not a video file"):  # given itself
        collect_inputs([tmp_path / "videos" / "e.mp4"], (".mp4",), "video file")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    with pytest.raises(InputError, match=r"gone\.mp4: a symbolic link to .*nowhere\.mp4, which does not exist"):
        collect_inputs([tmp_path / "gone.mp4"], (".mp4",), "video file")
    # hidden names stay left out, a link to a video is read, and a missing path is still said to be missing
    (tmp_path / "videos" / "e.mp4").unlink()
    (tmp_path / "videos" / "._a.mp4").symlink_to("/nonexistent/a.mp4")
    (tmp_path / "videos" / "f.mp4").symlink_to("a.mp4")
    assert [p.name for p in collect_inputs([tmp_path / "videos"], (".mp4",), "video file")] == ["a.mp4", "f.mp4"]
    with pytest.raises(InputError, match="missing.mp4: no such file or folder"):
        collect_inputs([tmp_path / "missing.mp4"], (".mp4",), "video file")


def test_a_video_under_a_name_mgrec_does_not_read_as_one_is_said_to_be_one(tmp_path, make_video):
    # a camcorder's clip.MOD (RealMedia's .rmvb, a .divx) was `not a video file`
    import numpy as np

    from mgrec.data.videos import VIDEO_SUFFIXES

    video = make_video(tmp_path / "clip.mkv", [np.zeros((32, 32, 3), np.uint8)] * 4)
    named = video.rename(tmp_path / "clip.MOD")
    with pytest.raises(InputError) as error:
        collect_inputs([named], VIDEO_SUFFIXES, "video file")
    assert str(error.value).startswith(f"{named}: a video (Matroska / WebM) under a name mgrec does not read as one; "
                                       "give it one of the endings .mp4, .m4v, ")
    assert str(error.value).endswith("(ffmpeg -i IN -c copy OUT.mkv rewrites its container without re-encoding)")
    text = tmp_path / "notes.txt"
    text.write_text("no video\n")
    with pytest.raises(InputError, match=r"notes.txt: not a video file; expected a name ending in \.mp4"):
        collect_inputs([text], VIDEO_SUFFIXES, "video file")


def test_a_folder_reads_the_common_containers_and_refuses_a_video_it_would_pass_by(tmp_path, make_video):
    # a folder's clip.mxf (a professional camera's), .vob, .dv, .3g2, .f4v were passed by without a word
    import numpy as np

    from mgrec.data.videos import VIDEO_SUFFIXES

    folder = tmp_path / "videos"
    folder.mkdir()
    frames = [np.zeros((32, 32, 3), np.uint8)] * 4
    make_video(folder / "a.mp4", frames)
    for name in ("b.mxf", "c.VOB", "d.dv", "e.3g2", "f.f4v", "g.MOD"):
        make_video(tmp_path / "x.mkv", frames).rename(folder / name)
    (folder / "README.txt").write_text("the clips of session 3\n")
    (folder / "a.json").write_text("{}")
    (folder / "notes").write_text("no ending, no video\n")
    (folder / ".DS_Store").write_bytes(b"\0" * 64)
    with pytest.raises(InputError) as error:
        collect_inputs([folder], VIDEO_SUFFIXES, "video file")
    message = str(error.value)
    assert message.startswith(f"{folder}: 1 video under a name mgrec does not read as one, which would be passed by: "
                              f"{folder / 'g.MOD'} (Matroska / WebM); give it one of the endings .mp4, ")
    assert "README" not in message and "notes" not in message and "a.json" not in message
    (folder / "g.MOD").unlink()
    found = collect_inputs([folder], VIDEO_SUFFIXES, "video file")
    assert [p.name for p in found] == ["a.mp4", "b.mxf", "c.VOB", "d.dv", "e.3g2", "f.f4v"]


def test_feature_names_one_file_on_macos_or_windows_or_too_long_are_refused_before_any_video_is_read(tmp_path):
    """`S01.mp4` and `s01.mp4` (two cameras' folders) were extracted into S01.npy and s01.npy: one file on macOS,
    Windows and exFAT disks (the second replacing the first, or skipped as done there), and a folder that loses a
    video copied there. A video id of 242 bytes, whose features (246) and sidecar fit, failed at its hidden rows
    `.<id>.partial.json` (256 bytes) mid-batch, with a message naming that file. Both refused by name, before any
    video is opened (the files here are empty: no video is)."""
    from mgrec.extract.jobs import extract_skeletons, extract_videos

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "S01.mp4").write_bytes(b"")
    (tmp_path / "b" / "s01.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"the feature files of videos 'S01' and 's01' would be 'S01.npy' and "
                                         r"'s01.npy', one name where case and Unicode normalisation"):
        extract_videos([tmp_path / "a" / "S01.mp4", tmp_path / "b" / "s01.mp4"], tmp_path / "out")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "S01.npy").write_bytes(b"")  # an earlier call's features
    with pytest.raises(InputError, match=r"S01.npy: already there, where the feature files of video 's01' would be "
                                         r"s01.npy"):
        extract_videos([tmp_path / "b" / "s01.mp4"], tmp_path / "out")
    long = tmp_path / "a" / f"{'x' * 242}.mp4"
    long.write_bytes(b"")
    with pytest.raises(InputError, match=r"long/\.x+'\.\.\. \(\d+ characters\): the name of the feature files of "
                                         r"video 'x+'.* is longer than 255 bytes; rename the video"):
        extract_videos([long], tmp_path / "long")
    for name in ("S01_skeleton.csv", "s01_skeleton.csv"):
        (tmp_path / name).write_text("")
    with pytest.raises(InputError, match=r"videos 'S01' and 's01' would be"):
        extract_skeletons([tmp_path / "S01_skeleton.csv", tmp_path / "s01_skeleton.csv"], tmp_path / "skeleton")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["S01_skeleton.csv", "a", "b", "out", "s01_skeleton.csv"]
