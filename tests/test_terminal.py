"""Names from data printed safely, and a closed pipe that never stops the work."""

from __future__ import annotations

import io
import subprocess
import sys

from tests.helpers import small_config

from mgrec import terminal
from mgrec.config import PostprocessConfig, TrainConfig, save_config
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.run import RunDir
from mgrec.terminal import TerminalText, visible


def test_control_characters_and_bidi_overrides_become_visible_escapes():
    hostile = "red\x1b[31m\u202egnp.exe\x07\x9b"
    shown = visible(hostile + "\tok\n")
    assert shown == "red\\x1b[31m\\u202egnp.exe\\x07\\x9b\tok\n"
    assert not any(c in shown for c in "\x1b\u202e\x07\x9b")


def test_characters_that_print_as_nothing_become_visible_and_the_joiners_scripts_need_stay():
    # a class 'ABD\u200b' (a zero-width space copied from a web page) printed as 'ABD' beside the real 'ABD'
    assert visible("ABD\u200b") == "ABD\\u200b" != visible("ABD")
    assert visible("\ufeffPEN \u00adx \u2060y \u061cz") == "\\ufeffPEN \\xadx \\u2060y \\u061cz"
    persian, family = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\U0001f468\u200d\U0001f469"
    assert visible(persian) == persian and visible(family) == family



def test_the_other_characters_that_print_as_nothing_become_visible_and_a_subdivision_flag_stays():
    # tag characters after a name carry hidden ASCII ('ABD' then 'ab' in tags printed as 'ABD'); a Hangul filler (a
    # chat app's "blank name"), a line separator, a deprecated format character, an interlinear annotation mark, the
    # combining grapheme joiner and a musical format character printed as nothing too
    assert visible("ABD\U000e0061\U000e0062") == "ABD\\U000e0061\\U000e0062" != visible("ABD")
    assert visible("a\u3164b\uffa0c\u2028d\u2029e\u206af\ufff9g\u034fh\U0001d173") == (
        "a\\u3164b\\uffa0c\\u2028d\\u2029e\\u206af\\ufff9g\\u034fh\\U0001d173")
    # England's flag is a black flag, 'gbeng' in tags and a cancel tag: kept whole; a tag elsewhere beside it is not
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    assert visible(f"ENG {england}") == f"ENG {england}"
    assert visible(f"\U0001f3f4\U000e0061 {england}") == f"\U0001f3f4\\U000e0061 {england}"
    emoji_text = "\u2764\ufe0f \u2764\ufe0e"  # variation selectors choose emoji or text presentation: they stay
    assert visible(emoji_text) == emoji_text

def test_the_stdout_layer_escapes_and_the_stderr_layer_keeps_progress_bar_sequences():
    out, err = io.StringIO(), io.StringIO()
    TerminalText(out, escape=True).write("class \x1b]0;pwned\x07\n")
    TerminalText(err, escape=False).write("\r 50%|#####\x1b[A")
    assert out.getvalue() == "class \\x1b]0;pwned\\x07\n"
    assert err.getvalue() == "\r 50%|#####\x1b[A"


def test_training_piped_into_a_reader_that_leaves_finishes_and_saves(tmp_path):
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=3, num_classes=3, feature_dim=8, length=64, seed=0,
                                   subsets=("train", "val", "test"))
    config = small_config(paths, seed=0, max_seq_len=64,
                          train=TrainConfig(epochs=2, warmup_epochs=0, batch_size=1, crops_per_video=1, eval_every=1),
                          postprocess=PostprocessConfig(pre_nms_topk=50, max_detections=20))
    save_config(config, tmp_path / "c.yaml")
    process = subprocess.Popen([sys.executable, "-m", "mgrec.cli", "train", str(tmp_path / "c.yaml"), "--out",
                                str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # `| head -0`: the reader is gone before the first line
    stderr = process.communicate(timeout=300)[1].decode()
    assert process.returncode == 0, stderr
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr
    run = RunDir(tmp_path / "run")
    assert run.weights_path("best").exists() and run.postprocess_path.exists()


def test_text_the_stream_cannot_encode_is_escaped_not_an_error(tmp_path, monkeypatch):
    # PYTHONIOENCODING=ascii: a non-ASCII path raised UnicodeEncodeError after the work was done (exit 1)
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    for escape in (True, False):  # stdout's layer and stderr's
        TerminalText(ascii_out, escape=escape).write("caf\u00e9 \u4e2d \udcff\n")
    ascii_out.flush()
    assert ascii_out.buffer.getvalue().decode("ascii") == "caf\\xe9 \\u4e2d \\udcff\n" * 2
    # through the command line: the summary line names the non-ASCII output
    from mgrec.cli import main

    root = tmp_path / "smg"
    (root / "Sample0001").mkdir(parents=True)
    (root / "Sample0001" / "Sample0001_finelabels.csv").write_text("1,10,20\n")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", stdout)
    out = tmp_path / "annotations_\u00e9.json"
    assert main(["data", "convert", str(root), "--out", str(out), "--fps", "28", "--splits", "train=1"]) == 0
    sys.stdout.flush()
    assert "annotations_\\xe9.json" in stdout.buffer.getvalue().decode("ascii") and out.exists()


def test_a_full_disk_under_standard_output_is_one_line_and_a_non_zero_exit(tmp_path):
    # `> /dev/full`: the write or the flush fails with ENOSPC; a traceback from terminal.py said it before
    import os

    if not os.path.exists("/dev/full"):
        import pytest

        pytest.skip("no /dev/full on this system")
    for command in (["--version"], ["data", "check", "--help"]):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "mgrec.cli", *command], stdout=full, stderr=subprocess.PIPE,
                                  text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == "mgrec: error: cannot write standard output: No space left on device"
    # the stderr layer drops its own failures: there is nowhere left to say them
    class Full(io.StringIO):
        def write(self, text):
            raise OSError(28, "No space left on device")

    TerminalText(Full(), escape=False, name="standard error").write("progress")


def test_the_bytes_of_a_name_that_are_not_utf8_are_shown_as_escapes():
    # `os.fsdecode` holds them as lone surrogates, which no UTF-8 text (a report page, a log file) can hold
    import os

    assert visible(os.fsdecode(b"r\xe9sultats/d\xff.json")) == "r\\udce9sultats/d\\udcff.json"
    assert visible("résumé 😀 \U0001F600") == "résumé 😀 \U0001F600"  # paired text is left as it is


def test_a_cell_of_a_table_is_as_wide_as_the_terminal_shows_it():
    from mgrec.terminal import cell, columns

    assert columns("握拳") == 4 and columns("e\u0301") == 1 and columns("\x1b") == 4 and columns("\U0001F44B") == 2
    assert cell("握拳", 6) == "握拳  " and cell("e\u0301", 3) == "e\u0301  " and cell("ab", 1) == "ab"
    assert cell("握拳握拳握拳", 8, limit=8) == "握拳... "  # cut at a whole character, then padded
    assert cell("x" * 60, 48, limit=48) == "x" * 45 + "..."


def test_a_cell_of_a_table_holds_a_name_with_a_line_break_on_its_one_line():
    """A class `a\\nb` (the annotations' readers take it) split a row of the score table in two, and a tab moved the
    columns after it: a cell shows them as escapes, and a column is as wide as those."""
    from mgrec.terminal import cell, columns

    assert columns("a\nb") == 4 and columns("a\tb") == 4
    assert cell("a\nb", 6) == "a\\nb  " and cell("a\tb", 4) == "a\\tb"
    assert cell("x\n" * 30, 10, limit=10) == "x\\nx\\nx..."


def test_one_line_escapes_the_line_breaks_and_tabs_visible_lets_pass():
    name = "dir\nwith\ttab\r\x1b[31m/clip.mp4"
    assert terminal.visible(name).count("\n") == 1
    assert terminal.one_line(name) == "dir\\nwith\\ttab\\r\\x1b[31m/clip.mp4"
    assert "\n" not in terminal.one_line(name) and "\x1b" not in terminal.one_line(name)


def test_said_once_passes_each_warning_or_note_once_and_every_other_line():
    """The seeds of `train --seeds` (and a pseudo-labelled run's teacher and students) each said every warning of their
    one config and data again: N seeds, the warm-up's warning N times."""
    from mgrec.terminal import said_once

    lines = []
    log = said_once(lambda line="", **kwargs: lines.append((line, kwargs)))
    for seed in (1, 2):
        log("warning: c.yaml [train.warmup_epochs]: 2 >= 1")
        log("note: 3 videos have no sidecar")
        log(f"seed {seed}: training", end="")
        log("epoch 1")
    log("warning: another")
    assert lines == [("warning: c.yaml [train.warmup_epochs]: 2 >= 1", {}), ("note: 3 videos have no sidecar", {}),
                     ("seed 1: training", {"end": ""}), ("epoch 1", {}), ("seed 2: training", {"end": ""}),
                     ("epoch 1", {}), ("warning: another", {})]
