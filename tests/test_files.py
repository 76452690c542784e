"""mgrec.files: a path the user gives that is a symbolic link loop is named as one, by every command."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from tests.test_robustness import assert_input_error, mgrec, tiny_config, write_run

from mgrec.config import save_config
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.files import atomic_write_text, check_output, check_writable, resolve_path


def loop_message(path: Path) -> str:
    return f"{path} is a symbolic link loop"


@pytest.fixture
def loop(tmp_path) -> Path:
    """`ln -s L L`: Python 3.11's Path.resolve() raises RuntimeError on it even when not strict."""
    link = tmp_path / "L"
    os.symlink("L", link)
    return link


def test_resolve_path_names_a_symbolic_link_loop(tmp_path, loop):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    os.symlink("b.npy", a)  # a.npy -> b.npy -> a.npy
    os.symlink("a.npy", b)
    for path in (loop, a, loop / "out.json"):  # the loop itself, a loop of two, a path through a loop
        with pytest.raises(InputError, match=f"^{re.escape(loop_message(path))}"):
            resolve_path(path)
    # anything else resolves as Path.resolve does: a missing path, a dangling link
    os.symlink("nowhere", tmp_path / "dangling")
    for path in (tmp_path / "missing" / "x.json", tmp_path / "dangling"):
        assert resolve_path(path) == path.resolve()


def test_the_output_guards_and_writers_name_a_loop_and_leave_it(tmp_path, loop):
    for guard in (lambda: check_output(loop), lambda: check_output(tmp_path / "x.json", reads=[loop]),
                  lambda: check_writable(loop), lambda: check_writable(loop, is_dir=True),
                  lambda: atomic_write_text(loop, "x")):
        with pytest.raises(InputError, match=re.escape(loop_message(loop))):
            guard()
    assert loop.is_symlink() and os.readlink(loop) == "L"  # not replaced by a plain file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("dataset"), num_videos=3, feature_dim=16, length=96,
                                  subsets=("train", "val", "test"))


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs") / "run", tiny_config(dataset))


@pytest.mark.parametrize("command", ["detect", "report", "data convert", "train", "ensemble", "extract"])
def test_every_command_names_an_out_that_is_a_symbolic_link_loop(capsys, tmp_path, loop, dataset, run, command):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(dataset), config)
    argv = {"detect": ["detect", run, dataset.features / "synthetic_000.npy"], "report": ["report", run],
            "data convert": ["data", "convert", tmp_path], "train": ["train", config],
            "ensemble": ["ensemble", run, tmp_path / "run2"],  # two runs: no note is printed first
            "extract": ["extract", tmp_path / "clip.mp4"]}[command]
    (tmp_path / "clip.mp4").write_bytes(b"")  # never opened: the --out is refused first
    if command == "ensemble":
        shutil.copytree(run, tmp_path / "run2")
    assert_input_error(mgrec(capsys, *argv, "--out", loop), loop_message(loop))
    assert loop.is_symlink() and os.readlink(loop) == "L"


def test_a_config_whose_base_is_a_symbolic_link_loop_names_the_config_and_key(capsys, tmp_path, loop):
    config = tmp_path / "my.yaml"
    config.write_text("base: L\n")
    assert_input_error(mgrec(capsys, "data", "check", config), f"{config} [base]: {loop_message(loop)}")


def test_a_lone_surrogate_escape_in_json_is_refused_by_key_and_a_pair_is_read(tmp_path):
    """`"\\ud800"` is valid JSON, but no UTF-8 output can hold it: a video id or class name with one was a traceback in
    whatever wrote it first (data check, detect --format csv, report)."""
    from mgrec.files import read_json

    path = tmp_path / "a.json"
    path.write_text('{"database": {"v": {"annotations": [{"label": "bad\\ud800"}]}}}', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"{path} [database.v.annotations[0].label]: annotations file "
                                                   "holds a lone UTF-16 surrogate escape")):
        read_json(path, "annotations")
    path.write_text('{"a\\udc00": 1}', encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("[a\\udc00]: t file holds a lone")):
        read_json(path, "t")
    path.write_text('{"\\\\ud800 is text": ["\\ud83d\\ude00"]}', encoding="utf-8")  # an escaped backslash, a pair
    assert read_json(path, "t") == {"\\ud800 is text": ["\U0001F600"]}


def test_counted_is_plural_but_for_one():
    from mgrec.files import counted

    assert [counted(n, "video") for n in (0, 1, 2)] == ["0 videos", "1 video", "2 videos"]
