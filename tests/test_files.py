"""mgrec.files: a path the user gives that is a symbolic link loop is named as one, by every command."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from tests.helpers import home_and_work
from tests.test_robustness import assert_input_error, mgrec, tiny_config, write_run

from mgrec.config import save_config
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.files import (
    atomic_write,
    atomic_write_text,
    check_output,
    check_output_names,
    check_writable,
    resolve_path,
    spelling_hint,
    spelt_alike_beside,
)


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


@pytest.mark.parametrize("command", ["detect", "report", "data convert"])
def test_an_out_that_is_a_link_into_a_missing_folder_is_refused_naming_the_link_and_its_target(
        capsys, tmp_path, dataset, run, command):
    """`--out report.html` a link to gone/sub/report.html (a drive not mounted): the writers made gone/sub and wrote
    the output there, where nobody looks; the shell's `>` through such a link fails."""
    link = tmp_path / "out.json"
    link.symlink_to(tmp_path / "gone" / "sub" / "out.json")
    expected = (f"cannot write {link}: it is a symbolic link to {tmp_path / 'gone' / 'sub' / 'out.json'}, whose "
                f"folder {tmp_path / 'gone' / 'sub'} does not exist; make that folder, or choose another output")
    argv = {"detect": ["detect", run, dataset.features / "synthetic_000.npy"], "report": ["report", run],
            "data convert": ["data", "convert", dataset.annotations]}[command]
    assert_input_error(mgrec(capsys, *argv, "--out", link), expected)
    for write in (lambda: check_writable(link), lambda: atomic_write_text(link, "x"),
                  lambda: atomic_write(link, lambda name: Path(name).write_text("x"))):
        with pytest.raises(InputError, match=f"^{re.escape(expected)}$"):
            write()
    assert not (tmp_path / "gone").exists() and link.is_symlink()
    (tmp_path / "gone" / "sub").mkdir(parents=True)  # the folder made: written through the link
    atomic_write_text(link, "x")
    assert (tmp_path / "gone" / "sub" / "out.json").read_text() == "x" and link.is_symlink()


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
    assert [counted(n, "class") for n in (1, 17)] == ["1 class", "17 classes"]  # not "17 classs"
    assert [counted(2, noun) for noun in ("epoch", "batch")] == ["2 epochs", "2 batches"]


def test_part_of_says_the_one_thing_where_there_is_one():
    from mgrec.files import part_of

    # "1 of the 1 videos" was said
    assert part_of(1, 1, "video") == "the one video"
    assert part_of(0, 1, "segment") == "0 of the 1 segment"
    assert part_of(2, 3, "feature file") == "2 of the 3 feature files"


# --- input files that are not files ------------------------------------------------------------------------------

def _in_time(call, seconds: float = 30.0):
    """`call()`'s result, or a failure where it waits longer than `seconds` (opening a pipe nobody writes waits
    forever: without this guard a regression would hang the suite instead of failing it)."""
    import threading

    result, raised = [], []

    def run():
        try:
            result.append(call())
        except BaseException as exc:  # raised again in the test's own thread
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "waited on a named pipe"
    if raised:
        raise raised[0]
    return result[0]


def test_read_file_bytes_refuses_what_is_not_a_file_before_opening_it(tmp_path):
    from mgrec.data.features import read_sidecar
    from mgrec.files import read_file_bytes, read_json

    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "zero.json").symlink_to("/dev/zero")  # never ends: read whole it took all memory
    (tmp_path / "folder.json").mkdir()
    for name, said in [("pipe.json", "a named pipe, not a file; give the annotations file itself"),
                       ("zero.json", "a character device, not a file; give the annotations file itself"),
                       ("folder.json", "a folder, where a annotations file goes"),
                       ("missing.json", "annotations file not found")]:
        with pytest.raises(InputError, match=re.escape(f"{tmp_path / name}: {said}")):
            _in_time(lambda: read_json(tmp_path / name, "annotations"))
    os.mkfifo(tmp_path / "a.json")  # a feature file's sidecar
    with pytest.raises(InputError, match="a.json: a named pipe, not a file; give the feature sidecar file itself"):
        _in_time(lambda: read_sidecar(tmp_path / "a.json"))
    (tmp_path / "real.json").write_text("{}")
    assert read_file_bytes(tmp_path / "real.json", "annotations") == b"{}"


def test_a_descriptor_this_process_holds_is_read(tmp_path):
    from mgrec.files import read_file_bytes

    read_end, write_end = os.pipe()
    os.write(write_end, b'{"a": 1}')
    os.close(write_end)
    try:
        assert read_file_bytes(f"/dev/fd/{read_end}", "annotations") == b'{"a": 1}'  # as <(...) gives one
    finally:
        os.close(read_end)


@pytest.mark.parametrize("case", ["score --gt", "score --pred", "--class-map", "SMG _data.csv"])
def test_a_named_pipe_given_for_an_input_file_is_refused_not_waited_on(tmp_path, capsys, case):
    from mgrec.data.annotations import save_annotations
    from mgrec.records import AnnotationSet, VideoInfo

    annotations = tmp_path / "annotations.json"
    save_annotations(AnnotationSet(classes=["a", "b"], videos={"v": VideoInfo("v", "test", 30.0, 10.0)},
                                   segments={"v": []}), annotations)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    if case == "SMG _data.csv":
        sample = tmp_path / "smg" / "Sample0001"
        sample.mkdir(parents=True)
        (sample / "Sample0001_finelabels.csv").write_text("1,10,20\n")
        os.mkfifo(sample / "Sample0001_data.csv")
        argv = ["data", "convert", tmp_path / "smg", "--out", tmp_path / "out.json"]
        said = "Sample0001_data.csv: a named pipe, not a file"
    else:
        argv, said = {
            "score --gt": (["score", "--gt", pipe, "--pred", annotations], f"{pipe}: a named pipe, not a file"),
            "score --pred": (["score", "--gt", annotations, "--pred", pipe],
                             f"{pipe}: a named pipe, not a predictions file or folder"),
            "--class-map": (["data", "convert", annotations, "--class-map", pipe, "--out", tmp_path / "out.json"],
                            f"{pipe}: a named pipe, not a file; give the class map"),
        }[case]
    outcome = _in_time(lambda: mgrec(capsys, *argv))
    assert_input_error(outcome, said)
    assert not (tmp_path / "out.json").exists()


def test_atomic_create_text_makes_the_file_whole_once_and_a_killed_writer_leaves_nothing(tmp_path, monkeypatch):
    """A marker opened with "x" and then written was left empty by a writer killed between the two, and an empty
    marker could not say what the set it marks was made of. Created whole or not at all; of two writers, one."""
    import mgrec.files as files

    target = tmp_path / "folder" / ".marker"
    files.atomic_create_text(target, '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    with pytest.raises(FileExistsError):
        files.atomic_create_text(target, "another writer's\n")
    assert target.read_text() == '{"a": 1}\n'

    other = tmp_path / "folder" / ".other"

    def killed(source, destination):  # the writer killed with the text written, before the file takes its name
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", killed)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_create_text(other, "half\n")
    monkeypatch.undo()
    assert sorted(path.name for path in (tmp_path / "folder").iterdir()) == [".marker"]  # no file, no temporary one
    files.atomic_create_text(other, "whole\n")
    assert other.read_text() == "whole\n"


def test_an_output_folder_that_is_a_link_to_nothing_is_named_so(tmp_path):
    """`--out runs/x` where runs is a link onto a drive not mounted (or x itself a link to a folder never made): the
    folder cannot be made ("File exists"), and every writer said `a part of the path is a file, not a folder`; the
    run directory of train and ensemble said `cannot write the run directory x: File exists`."""
    from mgrec.run import RunDir

    (tmp_path / "runs").symlink_to(tmp_path / "gone")
    gone = re.escape(str(tmp_path / "gone"))
    expected = rf"runs is a symbolic link to {gone}, which does not exist; make that folder"
    for path, is_dir in ((tmp_path / "runs", True), (tmp_path / "runs" / "x", True),
                         (tmp_path / "runs" / "x" / "report.html", False)):
        with pytest.raises(InputError, match=expected):
            check_writable(path, is_dir=is_dir)
    with pytest.raises(InputError, match=r"cannot write the run directory .*runs/x: .*" + expected):
        with RunDir(tmp_path / "runs" / "x").lock():
            pass
    assert not (tmp_path / "gone").exists() and (tmp_path / "runs").is_symlink()
    (tmp_path / "gone").mkdir()  # the folder made: written through the link
    check_writable(tmp_path / "runs" / "x", is_dir=True)
    with RunDir(tmp_path / "runs" / "x").lock():
        assert (tmp_path / "gone" / "x").is_dir()


def test_the_files_asked_only_whether_mgrec_wrote_them_answer_no_for_any_unreadable_json(tmp_path, capsys):
    """An unfinished-set marker or an analysis nested past the recursion limit (100,000 brackets) was a raw
    RecursionError traceback from `score --pred FOLDER`, `detect`/`stream --format smg --out FOLDER` and `score
    --analysis FOLDER`: their readers caught the other reasons a file is not mgrec's JSON, and not that one."""
    import json

    from mgrec.evaluate.predictions import save_predictions
    from mgrec.files import json_or_none
    from mgrec.smg_csv import INCOMPLETE_MARKER

    deep = "[" * 100_000 + "]" * 100_000
    for text in (deep, "1" * 5000, b"\xff", "{", ""):
        path = tmp_path / "x.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        assert json_or_none(path) is None
    assert json_or_none(tmp_path / "missing.json") is None and json_or_none(tmp_path) is None
    path.write_text('{"a": [1]}')
    assert json_or_none(path) == {"a": [1]}

    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"classes": ["a"], "database": {"v": {"subset": "test", "duration": 10.0, "fps": 10.0,
                  "annotations": [{"label": "a", "segment": [1.0, 2.0]}]}}}))
    labels = tmp_path / "labels" / "v"
    labels.mkdir(parents=True)
    (labels / "v_finelabels.csv").write_text("1,10,20\n")
    (labels.parent / INCOMPLETE_MARKER).write_text(deep)
    assert_input_error(mgrec(capsys, "score", "--gt", gt, "--pred", labels.parent), "that did not finish")
    analysis = tmp_path / "analysis"
    analysis.mkdir()
    (analysis / "test_analysis.json").write_text(deep)
    pred = tmp_path / "pred.json"
    save_predictions({"v": []}, pred)
    assert_input_error(mgrec(capsys, "score", "--gt", gt, "--pred", pred, "--analysis", analysis),
                       "no finished mgrec analysis wrote (first: 'test_analysis.json')")


def test_names_apart_only_in_whitespace_at_their_ends_are_said_to_be_so_escaped(tmp_path):
    # A video id with a space at its end ('clip ' in the annotations, `--videos "clip "`): the hint quoted the id it
    # looks like, and the file `clip .npy` missing beside `clip.npy` had no hint at all; the user saw no difference.
    assert spelling_hint("clip ", "clip") == (" (the two differ only in whitespace at the start or end of the name: "
                                              "'clip ' and 'clip', which print alike)")
    assert "whitespace at the start or end" in spelling_hint("\tclip\u00a0", "clip")
    assert "'clip\\xa0.npy' and 'clip.npy'" in spelling_hint("clip\u00a0.npy", "clip.npy")
    assert "Unicode normalisation, case" in spelling_hint("Clip", "clip")
    assert spelling_hint("clip2", "clip") == spelling_hint("clip", "clip") == ""
    (tmp_path / "clip.npy").write_bytes(b"")
    assert spelt_alike_beside(tmp_path / "clip .npy") == (
        "; 'clip.npy' is there, a name that reads the same (the two differ only in whitespace at the start or end of "
        "the name: 'clip .npy' and 'clip.npy', which print alike): rename the file, or the video id, to one spelling")
    assert spelt_alike_beside(tmp_path / "clip .npz") == spelt_alike_beside(tmp_path / "nowhere" / "clip .npy") == ""


def test_the_duplicate_key_check_of_every_json_object_equals_its_plain_loop():
    """`_reject_duplicate_keys` runs for each object of a document (a million detections of a ranked list: it was a
    third of `mgrec score`'s reading); its fast form gives the object, keys in order, or refuses the first key met
    twice, as the plain loop does, on random objects with repeated keys."""
    import random

    from mgrec.files import _DuplicateKey, _reject_duplicate_keys, _reject_duplicate_keys_reference

    def outcome(check, pairs):
        try:
            result = check(pairs)
        except _DuplicateKey as exc:
            return ("refused", exc.args[0])
        return ("read", list(result.items()))

    rng = random.Random(0)
    refused = 0
    for _ in range(2000):
        pairs = [(rng.choice("abcdefgh"), rng.random()) for _ in range(rng.randrange(0, 7))]
        expected = outcome(_reject_duplicate_keys_reference, pairs)
        assert outcome(_reject_duplicate_keys, pairs) == expected, pairs
        refused += expected[0] == "refused"
    assert 200 < refused < 1800  # both kinds were met


def test_the_number_checks_answer_as_their_definitions():
    """`is_number` and `is_finite_real` answer a float at once (a million of them per predictions file); everything
    else as before: no bool, no NaN or infinity where finite, no int past a float's range, numpy's scalars finite."""
    import numpy as np

    from mgrec.files import is_finite_real, is_number

    for value, number, finite in ((0.5, True, True), (-0.0, True, True), (float("nan"), True, False),
                                  (float("inf"), True, False), (3, True, True), (True, False, False),
                                  (10**400, False, False), ("1.0", False, False), (None, False, False),
                                  (np.float32(0.5), False, True), (np.float64("nan"), True, False)):
        assert (is_number(value), is_finite_real(value)) == (number, finite), value


@pytest.mark.parametrize("name", ["clip\nB.mp4", "clip\tB.mp4", "clip\x1b[2JB.mp4", "clip\rB.npy"])
def test_a_file_name_holding_a_control_character_is_no_video_id_for_extract_or_detect(name):
    # `extracted: dir/clip` and `B.mp4 -> ...` were two lines, and `clip\nB` the id of every CSV row and subtitle
    from mgrec.data.features import video_id_of
    from mgrec.data.videos import video_id
    from mgrec.files import id_from_name

    for read in (id_from_name, video_id, lambda path: video_id_of(path, "")):
        with pytest.raises(InputError) as error:
            read(Path("videos") / name)
        message = str(error.value)
        assert "\n" not in message and "\x1b" not in message and "\r" not in message
        assert "the file name holds a control character" in message and message.endswith("rename the file")
    assert id_from_name(Path("videos/clip B_é.mp4")) == "clip B_é"


def test_a_field_value_is_a_number_of_python_s_or_none_with_words_for_why():
    """`as_real`, the one conversion of a record field's value that score and every predictions reader share: numbers
    of Python and numpy, 0-d numpy arrays and torch tensors are taken as Python's; a bool, a string, a complex number
    and an array or tensor of any other shape are none, and `number_refusal` says why."""
    import numpy as np
    import torch

    from mgrec.files import as_real, number_refusal

    for value, expected in ((1.5, 1.5), (3, 3), (np.float32(0.5), 0.5), (np.int64(2), 2), (np.array(4.0), 4.0),
                            (torch.tensor(1.0), 1.0), (torch.tensor(7), 7), (torch.tensor(0.25, dtype=torch.float16),
                                                                              0.25)):
        number = as_real(value)
        assert number == expected and type(number) is type(expected), value
    for value, words in ((True, "the bool True is no number"), (np.bool_(False), "the bool False is no number"),
                         ("1.0", "the str '1.0' is no number"), (1j, "the complex 1j is no number"),
                         (torch.tensor([1.0, 2.0]), "a Tensor of shape (2,) holds 2 values"),
                         (np.zeros((1, 1)), "a ndarray of shape (1, 1) holds 1 value;"),
                         (torch.tensor(True), "a 0-d Tensor of dtype torch.bool is no real number"),
                         (None, "the NoneType None is no number")):
        assert as_real(value) is None, value
        assert number_refusal(value).startswith(words), number_refusal(value)


def test_stopped_in_names_the_video_of_an_interruption_and_keeps_errors_as_they_are():
    """`StoppedIn`: an interruption leaves with words naming the video it stopped in (its type kept, for the CLI's
    exit code); words an inner loop gave are kept; an error keeps its type and message, with a note naming the video."""
    from mgrec.files import StoppedIn

    def run(exc: BaseException, videos=("a", "b", "c")) -> BaseException:
        with pytest.raises(type(exc)) as raised, StoppedIn("video", len(videos), lambda done: f"{done} kept") as where:
            for video in videos:
                where.at(video)
                if video == "b":
                    raise exc
        return raised.value

    assert str(run(KeyboardInterrupt())) == "stopped in video 'b' (2 of 3: 1 finished before it): 1 kept"
    assert str(run(KeyboardInterrupt("said nearer the work"))) == "said nearer the work"
    error = run(RuntimeError("CUDA out of memory"))
    assert str(error) == "CUDA out of memory" and error.__notes__ == ["mgrec: in video 'b' (2 of 3)"]
    assert not hasattr(run(InputError("b.npy: bad")), "__notes__")  # it names its file
    # a write that failed mid-batch (a folder made read-only, a full disk) said its file alone: now what is kept too,
    # once, however many loops it leaves
    from mgrec.errors import OutputError

    assert str(run(OutputError("cannot write out/b.npy: Permission denied"))) == (
        "cannot write out/b.npy: Permission denied; stopped in video 'b' (2 of 3: 1 finished before it): 1 kept (once "
        "the output can be written)")
    with pytest.raises(OutputError) as twice, StoppedIn("folder", 1, lambda done: "outer words") as outer:
        outer.at("f")
        with StoppedIn("video", 1, lambda done: "inner words") as inner:
            inner.at("a")
            raise OutputError("cannot write out/a.npy: No space left on device")
    assert str(twice.value) == ("cannot write out/a.npy: No space left on device; stopped in video 'a' (1 of 1: 0 "
                                "finished before it): inner words (once the output can be written)")


def test_stopped_in_says_nothing_of_videos_before_the_first_and_every_one_done_after_the_last():
    # `each` tells it of the loop's end: work after the loop was "stopped in video 'c' (3 of 3: 2 finished before it)"
    from mgrec.files import StoppedIn

    def stopped(at: str, videos=("a", "b", "c")) -> BaseException:
        where = StoppedIn("video", len(videos), lambda done: f"{done} kept")
        with pytest.raises(KeyboardInterrupt) as raised, where:
            if at == "before":
                raise KeyboardInterrupt
            for video in where.each(videos):
                if video == at:
                    raise KeyboardInterrupt
            raise KeyboardInterrupt
        return raised.value

    assert str(stopped("before")) == ""  # the CLI's bare "mgrec: interrupted"
    assert str(stopped("b")) == "stopped in video 'b' (2 of 3: 1 finished before it): 1 kept"
    assert str(stopped("after")) == "stopped after the last video: all 3 videos were done; 3 kept"
    assert str(stopped("after", ["a"])) == "stopped after the last video: the one video was done; 1 kept"


def test_a_tilde_path_given_in_python_is_the_home_folder_as_on_the_command_line(tmp_path, monkeypatch):
    # Python leaves a leading ~ alone: save_predictions(..., "~/x.json") wrote, and train(config, "~/runs/x") trained
    # into, a folder named `~` in the current folder; from_run, detect and the readers said "not found"
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.files import path_argument
    from mgrec.infer.offline import OfflineDetector

    home, work = home_and_work(tmp_path, monkeypatch)
    dataset = make_synthetic_dataset(home / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "val", "test"))
    write_run(home / "run", tiny_config(dataset))
    monkeypatch.chdir(work)
    feature = sorted(dataset.features.glob("*.npy"))[0]
    detector = OfflineDetector.from_run("~/run")
    ranked = detector.detect(f"~/data/{feature.parent.name}/{feature.name}")
    assert ranked == detector.detect(feature)
    save_predictions({feature.stem: ranked}, "~/ranked.json")
    assert (home / "ranked.json").is_file() and not (work / "~").exists()
    assert load_annotations(f"~/data/{dataset.annotations.name}").classes
    # a ~ elsewhere is a name's; a ~user of no user is refused, naming the argument
    assert path_argument("x/~", "path") == Path("x/~")
    with pytest.raises(InputError, match=r"^load_annotations: path: ~no-such-user-mgrec/a.json: no user "):
        load_annotations("~no-such-user-mgrec/a.json")


def test_a_path_object_is_not_read_as_a_home_folder_nor_is_an_unknown_home_called_a_missing_user(tmp_path,
                                                                                                monkeypatch):
    # pathlib drops a leading "./": Path("./~x.npy") is "~x.npy", so a file named ~x.npy (listed in a folder, or given
    # as ./~x.npy) was expanded again as user "x.npy"'s home: `mgrec detect RUN .` said "no user 'x.npy'", and a
    # folder named ~ would have been read from the home folder
    from mgrec.files import path_argument
    from mgrec.infer.offline import OfflineDetector

    home, work = home_and_work(tmp_path, monkeypatch)
    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "val", "test"))
    write_run(tmp_path / "run", tiny_config(dataset))
    feature = sorted(dataset.features.glob("*.npy"))[0]
    (work / "~").mkdir()
    for copy in (work / "~" / "x", work / "~x"):  # ./~/x.npy (the home folder holds no x.npy) and ./~x.npy
        shutil.copy(feature, copy.with_suffix(".npy"))
        shutil.copy(feature.with_suffix(".json"), copy.with_suffix(".json"))
    monkeypatch.chdir(work)
    assert path_argument(Path("./~/x.npy"), "features") == Path("~/x.npy")
    detector = OfflineDetector.from_run(tmp_path / "run")
    ranked = [detector.detect(path, "v") for path in (Path("./~x.npy"), Path("./~/x.npy"), feature)]
    assert ranked[0] == ranked[1] == ranked[2]
    assert path_argument("~/x.npy", "features") == home / "x.npy"  # a str is what a person typed: expanded
    # no HOME and no password entry: "no user ''" named none
    monkeypatch.delenv("HOME")
    monkeypatch.setattr("pwd.getpwuid", lambda uid: (_ for _ in ()).throw(KeyError(uid)))
    with pytest.raises(InputError, match=r"^out: ~/x: the home folder ~ names is not known here \(HOME is not set"):
        path_argument("~/x", "out")


def test_output_names_one_file_where_case_or_normalisation_is_not_told_apart_are_refused(tmp_path, capsys):
    """Outputs named by video id: `S01.npy` and `s01.npy` (or `café` in NFC and in NFD) are two files here and one on
    macOS, Windows and exFAT disks, the second written replacing the first; and a folder written here lost a video
    copied there. Refused before anything is written, of two videos and of a video and a file already there."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    with pytest.raises(InputError, match=r"the feature files of videos 'S01' and 's01' would be 'S01.npy' and "
                                         r"'s01.npy', one name where case and Unicode normalisation are not told "
                                         r"apart"):
        check_output_names([("S01", tmp_path / "S01.npy"), ("s01", tmp_path / "s01.npy")], "feature files")
    with pytest.raises(InputError, match=re.escape(f"videos {ascii(nfc)} and {ascii(nfd)} would be {ascii(nfc)} and "
                                                   f"{ascii(nfd)}, one name")):
        check_output_names([(nfc, tmp_path / nfc), (nfd, tmp_path / nfd)], "label folders")
    (tmp_path / "S01.npy").write_bytes(b"")
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'S01.npy'))}: already there, where the "
                                         r"feature files of video 's01' would be s01.npy: 'S01.npy' and 's01.npy' are "
                                         r"one name"):
        check_output_names([("s01", tmp_path / "s01.npy")], "feature files")
    # the same name again (a video extracted again, resumed), other videos and other folders: no objection
    check_output_names([("S01", tmp_path / "S01.npy"), ("S02", tmp_path / "S02.npy"),
                        ("s01", tmp_path / "other" / "s01.npy")], "feature files")
    assert capsys.readouterr().err == ""


def test_output_names_over_255_bytes_refused_and_windows_only_hazards_warned(tmp_path, capsys):
    """A name over 255 bytes (126 two-byte letters and `.json`) fails on every common file system, ext4 too: refused
    naming the video. A name that only Windows cannot hold (`CON.npy`, `a?b.npy`, a trailing dot) is written, as
    Linux and macOS keep it, with one warning naming the files."""
    long = "\u00e9" * 126
    with pytest.raises(InputError, match=r"the name of the feature files of video '\u00e9+'.* is longer than 255 "
                                         r"bytes; rename the video"):
        check_output_names([(long, tmp_path / f"{long}.npy"), (long, tmp_path / f"{long}.json")], "feature files")
    videos = ["CON", "nul", "com1", "a?b", "fine"]
    check_output_names([(video, tmp_path / f"{video}.npy") for video in videos], "feature files")
    assert capsys.readouterr().err == (
        f"warning: the feature files of 4 of the 5 videos in {tmp_path} cannot be copied to Windows nor to a FAT or "
        "exFAT disk (CON.npy: 'CON' is the name of a device on Windows; nul.npy: 'nul' is the name of a device on "
        "Windows; com1.npy: 'com1' is the name of a device on Windows; and 1 more); rename those videos to share "
        "their files\n")
    check_output_names([("end.", tmp_path / "end."), ("a|b", tmp_path / "a|b")], "label folders")  # SMG's, no ending
    assert capsys.readouterr().err == (
        f"warning: the label folders of 2 of the 2 videos in {tmp_path} cannot be copied to Windows nor to a FAT or "
        "exFAT disk (end.: Windows drops the dot or space at its end; a|b: '|' cannot be in a file name on Windows); "
        "rename those videos to share their files\n")
