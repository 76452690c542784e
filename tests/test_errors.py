"""mgrec.errors: where a message points, kept to one short line whatever the data put in a key."""

import json

import pytest

from mgrec.config import load_config
from mgrec.data.annotations import load_annotations
from mgrec.errors import MAX_KEY_CHARS, InputError, where


def test_where_shows_a_plain_key_as_written():
    assert where("c.yaml", key="train.lr") == "c.yaml [train.lr]"
    assert where("a.json", line=3, key="database.Sample0001.fps") == "a.json:3 [database.Sample0001.fps]"


def test_a_key_holding_a_video_id_with_newlines_nul_or_megabytes_stays_one_short_line(tmp_path):
    # The annotations' key `database.<video id>` was printed raw: a NUL and a newline split the one-line
    # error, and a 5000-character id made a 5 KB message.
    assert where("a.json", key="database.a\x00b\nc") == "a.json ['database.a\\x00b\\nc']"
    long = where("a.json", key="database." + "v" * 5000)
    assert long.endswith("... (5009 characters)]") and len(long) < MAX_KEY_CHARS + 50
    for video_id in ("a\x00b\nc", "v" * 5000):
        path = tmp_path / "annotations.json"
        path.write_text(json.dumps({"database": {video_id: {"subset": "test", "fps": 25, "duration": 5,
                                                            "annotations": []}}}))
        with pytest.raises(InputError) as error:
            load_annotations(path)
        message = str(error.value)
        assert "\n" not in message and "\x00" not in message and len(message) < len(str(path)) + 400  # not 5 KB


def test_an_unknown_config_key_holding_a_newline_is_shown_escaped(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('train:\n  "a\\nb\\u202e": 1\n')
    with pytest.raises(InputError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path} ['train.a\\nb\\u202e']: unknown key; valid keys: epochs,")
