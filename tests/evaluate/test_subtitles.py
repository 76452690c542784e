"""Subtitles of detections (SubRip, WebVTT): the exact text, hostile class names, and never over a file."""

import pytest
from tests.test_robustness import tiny_config, write_run

from mgrec.cli import main
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.evaluate.subtitles import subtitle_text, timestamp, write_subtitles
from mgrec.records import Detection


def test_cues_are_in_time_order_with_class_and_score():
    found = [Detection("v", 3725.5, 3726.0004, 1, "wave", 0.5), Detection("v", 1.25, 2.0, 0, "nod", 0.876)]
    assert subtitle_text(found, "srt") == (
        "1\n00:00:01,250 --> 00:00:02,000\nnod 0.88\n\n"
        "2\n01:02:05,500 --> 01:02:06,000\nwave 0.50\n")
    assert subtitle_text(found, "vtt") == (
        "WEBVTT\n\n"
        "1\n00:00:01.250 --> 00:00:02.000\nnod 0.88\n\n"
        "2\n01:02:05.500 --> 01:02:06.000\nwave 0.50\n")
    assert subtitle_text([], "srt") == "" and subtitle_text([], "vtt") == "WEBVTT\n\n"
    assert timestamp(0.0004, "srt") == "00:00:00,000" and timestamp(59.9996, "vtt") == "00:01:00.000"
    assert timestamp(360000.0, "srt") == "100:00:00,000"  # past 99 hours the hours grow
    with pytest.raises(InputError, match="srt, vtt"):
        subtitle_text(found, "ass")


def test_a_class_name_cannot_end_a_cue_or_open_a_tag():
    hostile = [Detection("v", 0.0, 1.0, 0, "a\n\nb ---> <i>&{\\an8}\x00\u2028c", 0.5)]
    srt = subtitle_text(hostile, "srt")
    assert srt == "1\n00:00:00,000 --> 00:00:01,000\na b ---\u203a \u2039i\u203a&(\\an8) c 0.50\n"  # one line
    vtt = subtitle_text(hostile, "vtt")
    assert vtt.endswith("a b ---&gt; &lt;i&gt;&amp;{\\an8} c 0.50\n")
    for text in (srt, vtt):
        assert text.count("-->") == 1 and len(text.strip().split("\n")) == (3 if text is srt else 5)


def test_subtitles_are_never_written_over_a_file(tmp_path):
    found = {"clip": [Detection("clip", 0.0, 1.0, 0, "nod", 0.5)], "other": []}
    (tmp_path / "clip.srt").write_text("the video's own subtitles")
    with pytest.raises(InputError, match=r"clip.srt already exists: subtitles are never written over a file"):
        write_subtitles(found, tmp_path, "srt")
    assert (tmp_path / "clip.srt").read_text() == "the video's own subtitles"
    assert not (tmp_path / "other.srt").exists()  # checked before any is written
    assert [p.name for p in write_subtitles(found, tmp_path, "vtt")] == ["clip.vtt", "other.vtt"]
    with pytest.raises(InputError, match="video id"):
        write_subtitles({"../x": []}, tmp_path, "srt")


def test_detect_writes_subtitles_beside_the_inputs(tmp_path, capsys):
    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=2, feature_dim=8, length=96,
                                     subsets=("train", "test"))
    run = write_run(tmp_path / "run", tiny_config(dataset))
    inputs = sorted(str(p) for p in dataset.features.glob("*.npy"))
    # the features' own folder: only new files are written there
    assert main(["detect", str(run), *inputs, "--format", "srt", "--out", str(dataset.features)]) == 0
    written = sorted(p.name for p in dataset.features.glob("*.srt"))
    assert written == ["synthetic_000.srt", "synthetic_001.srt"]
    assert (dataset.features / "synthetic_000.srt").read_text().startswith("1\n00:00:")
    capsys.readouterr()
    assert main(["detect", str(run), inputs[0], "--format", "srt", "--out", str(dataset.features)]) == 2
    assert "synthetic_000.srt already exists" in capsys.readouterr().err


def test_two_detects_into_one_subtitle_folder_at_once_are_refused_not_mixed(tmp_path, capsys):
    """Two `detect --format srt --out OUT` at once both found OUT without their files and wrote side by side, the
    later one replacing the earlier one's subtitles of a video both detected in. The folder is held now (a flock'd
    lock file, as `mgrec stream` holds an SMG label folder), the second detect refused before its work, naming the
    first; no lock file stays after a run, and a killed writer's blocks nobody."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import mgrec
    from mgrec.evaluate.subtitles import SUBTITLES_LOCK

    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=2, feature_dim=8, length=96,
                                     subsets=("train", "test"))
    run = write_run(tmp_path / "run", tiny_config(dataset))
    inputs = sorted(str(p) for p in dataset.features.glob("*.npy"))
    out = tmp_path / "subs"
    script = ("import sys\nfrom mgrec.evaluate.subtitles import claim_subtitle_folder\n"
              f"with claim_subtitle_folder({str(out)!r}, 'srt'):\n"
              "    print('held', flush=True)\n    sys.stdin.read()\n")
    env = {**os.environ, "PYTHONPATH": str(Path(mgrec.__file__).parents[1])}
    other = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        assert other.stdout.readline() == "held\n"  # a detect at work in OUT
        assert main(["detect", str(run), *inputs, "--format", "srt", "--out", str(out)]) == 2
        refused = capsys.readouterr().err
        assert (f"{out} is in use by pid {other.pid} on {socket.gethostname()}; another writer of srt subtitles is "
                "at work there: wait for it to finish or use another --out") in refused
        assert sorted(p.name for p in out.iterdir()) == [SUBTITLES_LOCK]  # nothing of this detect's
        with pytest.raises(InputError, match="another writer of vtt subtitles is at work there"):
            write_subtitles({"clip": []}, out, "vtt")
    finally:
        other.communicate("")
    assert main(["detect", str(run), *inputs, "--format", "srt", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["synthetic_000.srt", "synthetic_001.srt"]  # no lock file stays
    # a detect after it: refused, its file is there
    assert main(["detect", str(run), inputs[0], "--format", "srt", "--out", str(out)]) == 2
    assert "synthetic_000.srt already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["synthetic_000.srt", "synthetic_001.srt"]
    # a writer killed mid-way left its lock file: the system let its lock go, so the next one takes it
    killed = subprocess.Popen([sys.executable, "-c", script.replace("subs", "subs2")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    assert killed.stdout.readline() == "held\n"
    killed.kill()
    killed.communicate()
    assert (tmp_path / "subs2" / SUBTITLES_LOCK).is_file()
    assert main(["detect", str(run), inputs[0], "--format", "vtt", "--out", str(tmp_path / "subs2")]) == 0
    assert sorted(p.name for p in (tmp_path / "subs2").iterdir()) == ["synthetic_000.vtt"]


def test_subtitles_that_one_file_system_takes_for_one_file_are_refused(tmp_path):
    """Every subtitle file goes flat into --out: videos `Clip` and `clip` (two folders' features, two cameras) wrote
    Clip.srt and clip.srt, one file on FAT, exFAT, macOS and Windows, the second replacing the first without a word."""
    found = {"Clip": [Detection("Clip", 0.0, 1.0, 0, "nod", 0.5)], "clip": [], "other": []}
    with pytest.raises(InputError, match=r"the subtitles of videos 'Clip' and 'clip' would be 'Clip.srt' and "
                                         r"'clip.srt', one name where case and Unicode normalisation are not told "
                                         r"apart \(macOS, Windows, FAT, exFAT\): there the second replaces the first; "
                                         r"rename one of the videos, or write them into separate folders \(one call "
                                         r"each\)"):
        write_subtitles(found, tmp_path, "srt")
    assert list(tmp_path.iterdir()) == []  # nothing written, no lock file left
    assert len(write_subtitles({"Clip": [], "other": []}, tmp_path, "srt")) == 2


def test_an_interrupted_subtitle_set_names_the_video_and_the_files_to_remove(tmp_path, capsys, monkeypatch):
    """Ctrl-C (or SIGTERM) while `detect --format srt` wrote its files said "mgrec: interrupted" alone, and the same
    command again refused the files it had written ("already exists"), which the user could not tell from the videos'
    own subtitles: the video it stopped in, how many files are there and which, each whole."""
    from mgrec.cli import Terminated
    from mgrec.evaluate import subtitles

    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "test", "test"))
    run = write_run(tmp_path / "run", tiny_config(dataset))
    inputs = sorted(str(p) for p in dataset.features.glob("*.npy"))
    real_write, written = subtitles.atomic_write_text, []

    def stopped_at_the_third(path, text, stop=KeyboardInterrupt):
        if len(written) == 2:
            raise stop
        real_write(path, text)
        written.append(path.name)

    out = tmp_path / "subs"
    monkeypatch.setattr(subtitles, "atomic_write_text", stopped_at_the_third)
    assert main(["detect", str(run), *inputs, "--format", "srt", "--out", str(out)]) == 130
    assert capsys.readouterr().err.endswith(
        f"mgrec: interrupted; stopped in video 'synthetic_002' (3 of 3: 2 finished before it): 2 of the 3 srt files "
        f"are in {out} (synthetic_000.srt, synthetic_001.srt), which the same command will not write over: remove "
        "them and run it again\n")
    assert sorted(p.name for p in out.iterdir()) == ["synthetic_000.srt", "synthetic_001.srt"]  # no lock, no half
    written.clear()
    monkeypatch.setattr(subtitles, "atomic_write_text", lambda path, text: stopped_at_the_third(path, text, Terminated))
    found = {"a": [Detection("a", 0.0, 1.0, 0, "nod", 0.5)], "b": [], "c": []}
    with pytest.raises(Terminated, match=r"^stopped in video 'c' \(3 of 3: 2 finished before it\): 2 of the 3 vtt "
                                         r"files are in .*other \(a.vtt, b.vtt\), which the same command will not "
                                         r"write over: remove them and run it again$"):
        write_subtitles(found, tmp_path / "other", "vtt")
