"""The SMG label folder that `mgrec stream` and `mgrec detect` --format smg write and resume (`LabelSet`)."""

import json
import os

import pytest

from mgrec.errors import InputError
from mgrec.infer.label_set import DETECT, STREAM, LabelSet, _files_written_before, read_inputs
from mgrec.smg_csv import INCOMPLETE_MARKER, smg_label_paths


@pytest.mark.parametrize("edit, said", [
    ({"writer": ["mgrec detect"]}, r"did not finish \(.*\.mgrec-incomplete is there\): some videos have no file; "
                                   r"write them again into an empty folder$"),
    ({"writer": {"a": 1}}, r"did not finish .*write them again into an empty folder$"),
    ({"set": ["hard"]}, r"of other settings \(\['hard'\] then, the hard set now; its run: /runs/a\): finish it"),
    ({"fps": list(range(100_000))}, r"of other settings \(fps \[0, 1, 2, 3, 4, 5, \.\.\.\] then, None now; its run: "),
    ({"run": ["x"] * 100_000, "fps": 25.0}, r"\(fps 25\.0 then, None now; its run: \['x', 'x', 'x', 'x', 'x', 'x', "
                                            r"\.\.\.\]\): finish it with its own command, or detect into an empty"),
])
def test_a_marker_edited_by_hand_is_refused_in_one_short_line(tmp_path, edit, said):
    """The marker is a file anyone may edit: a "writer" or "set" that is a list or an object was a TypeError traceback
    (a dict looked up by it), and a setting of 100,000 numbers made an error line as long."""
    plan = {"writer": "mgrec detect", "run": "/runs/a", "run_fingerprint": "f", "videos": ["v"], "set": "hard",
            "precision": "fp32", "fps": None}
    (tmp_path / INCOMPLETE_MARKER).write_text(json.dumps({**plan, **edit, "written": {}}))
    with pytest.raises(InputError, match=said) as caught:
        _files_written_before(tmp_path, plan, smg_label_paths(["v"], tmp_path), DETECT)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("text, said", [
    ("mgrec detect is writing this folder's label files\n", r"is there, but is not JSON \(it begins \"mgrec detect is "
                                                            r"writing this folder's la\": an older mgrec's, or edited "
                                                            r"by hand\)"),
    ('{"writer": "mgrec detect", ', r"is there, but is not JSON \(it begins"),
    ('["mgrec detect"]\n', r"is there, but is JSON that is not an object \(\['mgrec detect'\]\)"),
    (b"\xff\xfe{}", r"is there, but is not UTF-8 text"),
])
def test_a_marker_that_is_not_a_json_object_is_said_to_be_the_reason(tmp_path, text, said):
    """A marker that is not the JSON object mgrec writes (an older mgrec's line of text, one cut or edited by hand)
    was said as any unfinished set ("did not finish ... write them again into an empty folder"): not that the marker
    itself cannot be read, which is why the same command cannot resume the set."""
    plan = {"writer": "mgrec detect", "run": "/runs/a", "run_fingerprint": "f", "videos": ["v"], "set": "hard"}
    marker = tmp_path / INCOMPLETE_MARKER
    marker.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError, match=said) as caught:
        _files_written_before(tmp_path, plan, smg_label_paths(["v"], tmp_path), DETECT)
    assert str(caught.value).startswith(f"{tmp_path}: holds the label files of an `mgrec detect` or `mgrec stream`")
    assert ("expected the JSON object mgrec writes there ({\"writer\": ..., \"videos\": [...], ...}): which "
            "command wrote the set, and how, cannot be told): some videos have no file; write them again into an "
            "empty folder") in str(caught.value)


def test_a_kept_label_file_of_a_video_made_into_features_is_held_to_the_video(tmp_path):
    """A video turned into features by the command itself is recorded as the video (its size and modification time, as
    `mgrec extract` keeps a video's features: its features are made again by each command, not always to the bit), and
    a newer recording of its name is refused on resume; a record edited by hand is said so."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"recording")
    identify = read_inputs(lambda _: [tmp_path / "scratch" / "clip.npy"], {"clip": video})
    plan = {"writer": "mgrec stream", "run": "/runs/a", "run_fingerprint": "f", "videos": ["clip"]}
    out = tmp_path / "out"
    out.mkdir()
    labels = LabelSet(out, plan, smg_label_paths(["clip"], out), False, set(), STREAM, identify)
    labels.write("clip", [], 30.0)  # interrupted before its end: the marker stays
    assert _files_written_before(out, plan, labels.label_paths, STREAM, identify) == {"clip"}
    os.utime(video, ns=(0, 10**18))  # a newer recording of that name (its size the same)
    with pytest.raises(InputError, match=rf"clip_finelabels.csv: is the label file the interrupted stream wrote for "
                                         rf"video clip of another input \(it was made of {video} as it was then, and "
                                         rf"{video} is another file now"):
        _files_written_before(out, plan, labels.label_paths, STREAM, identify)
    marker = out / INCOMPLETE_MARKER
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "inputs": {"clip": "x"}}))
    with pytest.raises(InputError, match=r"\[inputs\] does not record what it was made of \(edited by hand\?\)"):
        _files_written_before(out, plan, labels.label_paths, STREAM, identify)
