"""The command line itself: every argument helped with its default, examples, --version, --threads, --device."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
import torch

import mgrec
from mgrec.cli import HelpFormatter, build_parser, main
from mgrec.errors import InputError


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, parser) for the top level and every sub-command, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from commands(child, (*path, name))


def help_problems(parser: argparse.ArgumentParser) -> list[str]:
    """What the help walk finds wrong: arguments without help, options whose help hides their default,
    commands whose help does not end with examples of themselves."""
    problems = []
    for path, command in commands(parser):
        where = " ".join(("mgrec", *path))
        formatter = command._get_formatter()
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not (action.help or "").strip():
                problems.append(f"{where} {name}: no help text")
                continue
            takes_value = action.option_strings and action.nargs != 0 and not action.required
            if takes_value and "default" not in formatter._expand_help(action):
                problems.append(f"{where} {name}: its help does not say its default")
        if path:  # the commands (groups too) end with examples of themselves
            tail = command.format_help().rstrip().split("examples:\n")
            examples = tail[-1].splitlines() if len(tail) > 1 else []
            if not examples or not all(line.strip().startswith(where) for line in examples):
                problems.append(f"{where}: its help does not end with examples of `{where}`")
    return problems


def test_every_argument_has_help_with_its_default_and_every_command_examples():
    parser = build_parser()
    assert help_problems(parser) == []
    names = {" ".join(path) for path, _ in commands(parser)}
    assert {"train", "evaluate", "detect", "stream", "extract", "score", "demo", "data convert"} <= names


def test_the_walk_fails_on_an_argument_without_help_or_default():
    parser = argparse.ArgumentParser(prog="mgrec", formatter_class=HelpFormatter)
    sub = parser.add_subparsers()
    p = sub.add_parser("x", formatter_class=HelpFormatter, epilog="examples:\n  mgrec x --size 3")
    p.add_argument("--size", type=int, default=3)  # no help
    p.add_argument("--cache", default=None, help="where the cache goes")  # None: must say what happens
    p.add_argument("--fps", type=float, default=25.0, help="frame rate")  # shown by the formatter: fine
    p = sub.add_parser("y", help="no examples", formatter_class=HelpFormatter)
    assert help_problems(parser) == [
        "mgrec x --size: no help text",
        "mgrec x --cache: its help does not say its default",
        "mgrec y: its help does not end with examples of `mgrec y`",
    ]


def test_help_shows_defaults_and_ends_with_examples(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["stream", "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    flat = " ".join(text.split())
    assert "seconds after a gesture's end before it is final (default: 2.0)" in flat
    assert "(default: auto)" in flat and "--device" in flat
    assert text.rstrip().splitlines()[-1].strip().startswith("mgrec stream runs/")


@pytest.mark.parametrize("command", ["detect", "evaluate", "stream"])
def test_the_precision_help_gives_the_readme_s_advice_for_large_models_on_a_cpu(command, capsys):
    # it said bf16 "was measured no faster" on a CPU, while the README advises bf16 for SMG-sized models there
    with pytest.raises(SystemExit):
        main([command, "--help"])
    flat = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps lines after a hyphen
    assert "measured no faster there" not in flat
    assert "on a CPU with AMX pass bf16 for SMG-sized models" in flat
    assert "1.2x as long with AVX512-BF16 alone" in flat  # without AMX the advice is the other way


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"mgrec {mgrec.__version__}"


@pytest.mark.parametrize(
    "argv, threads",
    [
        (["--threads", "3", "detect", "RUN", "f.npy", "--out", "o.json"], 3),
        (["detect", "RUN", "f.npy", "--out", "o.json", "--threads", "3"], 3),
        (["--threads", "2", "detect", "RUN", "f.npy", "--out", "o.json", "--threads", "4"], 4),
        (["detect", "RUN", "f.npy", "--out", "o.json"], None),
        (["data", "check", "c.yaml", "--threads", "5"], 5),
        (["train", "c.yaml", "--out", "run", "--threads", "1"], 1),
    ],
)
def test_threads_before_or_after_the_command(argv, threads):
    assert build_parser().parse_args(argv).threads == threads


def test_the_threads_help_names_onnxruntime_which_runs_on_them(capsys):
    """`mgrec extract` runs EfficientNet-Lite0 in onnxruntime by default on a CPU, on torch's number of threads, and
    `--onnx` networks too: `--threads` said "torch CPU threads" only."""
    for command in (["extract"], ["detect"], ["stream"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--help"])
        threads = " ".join(capsys.readouterr().out.split()).split("--threads THREADS", 2)[-1].strip()
        assert threads.startswith("CPU threads of torch and of onnxruntime (where it runs efficientnet-lite0 or an "
                                  "--onnx network)"), (command, threads[:120])


def test_threads_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["detect", "RUN", "f.npy", "--out", "o.json", "--threads", "0"])
    assert "expected at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # torch's thread pool segfaulted on 99999
        build_parser().parse_args(["--threads", "99999", "detect", "RUN", "f.npy", "--out", "o.json"])
    assert "expected at most 1024, got 99999" in capsys.readouterr().err
    assert build_parser().parse_args(["--threads", "1024", "evaluate", "RUN"]).threads == 1024


def test_python_dash_m_mgrec_is_the_command_line():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mgrec", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith(mgrec.__version__), done


@pytest.mark.parametrize("command", ["detect", "evaluate", "stream"])
def test_device_choice(command):
    argv = {"detect": ["detect", "RUN", "f.npy", "--out", "o.json"], "evaluate": ["evaluate", "RUN"],
            "stream": ["stream", "RUN", "f.npy"]}[command]
    assert build_parser().parse_args(argv).device == "auto"
    assert build_parser().parse_args([*argv, "--device", "cpu"]).device == "cpu"


def test_a_bad_device_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--device", "gpu"]) == 2
    assert capsys.readouterr().err.strip() == (
        "mgrec: error: --device='gpu' is not a device name (auto, cpu, cuda, cuda:N)"
    )
    if not torch.cuda.is_available():
        assert main(["detect", str(tmp_path), "f.npy", "--out", str(tmp_path / "o.json"), "--device", "cuda"]) == 2
        assert "--device='cuda' but this machine has no CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize("config", ["demo/mgrec.yaml", "FILE"])
def test_evaluate_given_a_config_instead_of_a_run_says_so(tmp_path, capsys, config):
    if config == "FILE":
        config = tmp_path / "mine.yml"
        config.write_text("seed: 1\n")
    assert main(["evaluate", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mgrec: error: {config}: is a config file, not a run directory; train it first "
                          f"(mgrec train {config} --out RUN_DIR)")
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [["evaluate"], ["report"], ["export", "--out", "net.onnx"],
                                     ["ensemble", "RUN", "--out", "ens"], ["detect", "f.npy", "--out", "d.json"]])
@pytest.mark.parametrize("name", ["config.yaml", "run.json", "checkpoints/best.safetensors"])
def test_a_file_of_a_run_given_as_the_run_names_the_run_s_folder(tmp_path, capsys, monkeypatch, command, name):
    # `mgrec evaluate RUN/config.yaml` said "is a config file ...; train it first (mgrec train RUN/config.yaml --out
    # RUN_DIR)", `export RUN/run.json` "not a run directory (a file, not a folder)", `ensemble RUN/config.yaml ...`
    # "RUN/config.yaml/config.yaml: not found"
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text('{"format": 6}')
    for file in ("config.yaml", "checkpoints/best.safetensors"):
        (run / file).write_text("seed: 1\n")
    given = Path("run") / name
    args = [command[0], str(given), *[str(run) if arg == "RUN" else arg for arg in command[1:]]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"mgrec: error: {given}: is a file of the run {run}, not a run directory: give that folder\n"
    assert not (tmp_path / "ens").exists() and not (tmp_path / "net.onnx").exists()


def test_a_file_given_as_run_directory_is_named(tmp_path, capsys):
    (tmp_path / "detections.json").write_text("{}")
    assert main(["report", str(tmp_path / "detections.json")]) == 2
    assert "detections.json: is a file, not a run directory" in capsys.readouterr().err


def test_outputs_never_replace_what_a_command_reads_or_a_run_s_own_files(tmp_path, capsys):
    from mgrec.files import check_output
    from mgrec.run import RunDir

    run = RunDir(tmp_path / "run")
    with pytest.raises(InputError, match="it belongs to a trained run"):
        check_output(run.config_path, protected=run.run_files())
    with pytest.raises(InputError, match="this command reads it"):
        check_output(tmp_path / "annotations.json", reads=[tmp_path / "annotations.json"])
    with pytest.raises(InputError, match="this command reads it"):  # a folder that holds an input
        check_output(tmp_path, reads=[tmp_path / "features" / "a.npy"])
    check_output(tmp_path / "report.html", reads=[tmp_path / "annotations.json"], protected=run.run_files())


def test_no_output_replaces_the_files_of_any_run_it_lies_in(tmp_path):
    # Only the command's own run was protected: `detect RUN --out OTHER/postprocess.json`, `--format csv --out
    # OTHER/checkpoints/best.safetensors` and `data convert ... --out OTHER/config.yaml` replaced another run's
    # files (exit 0).
    from mgrec.files import check_output
    from mgrec.run import RunDir

    other = RunDir(tmp_path / "other")
    other.path.mkdir()
    other.write_format()
    other.eval_path("test").write_text("{}")
    for name in ("postprocess.json", "checkpoints/best.safetensors", "config.yaml", "eval_test.json", "run.json"):
        with pytest.raises(InputError, match=f"would overwrite {re.escape(str(other.path / name))} \\(it belongs to a "
                                             "trained run\\)"):
            check_output(other.path / name)
    with pytest.raises(InputError, match="it belongs to a trained run"):  # a features folder that is the run's
        check_output(other.path)
    check_output(other.path / "mine.json")  # a new file beside the run's is the user's to write
    check_output(other.path / "features")
    # the command's own rewrites (report over its report) stay allowed, nothing else of that run
    check_output(other.report_path("test"), replaces=[other.report_path("test")])
    with pytest.raises(InputError, match="it belongs to a trained run"):
        check_output(other.eval_path("test"), replaces=[other.report_path("test")])
    # a run of a newer format, and one whose run.json is damaged beside its config, are runs too
    (other.path / "run.json").write_text('{"format": 99}')
    with pytest.raises(InputError, match="it belongs to a trained run"):
        check_output(other.path / "postprocess.json")
    (other.path / "run.json").write_text('{"format": 1')
    (other.path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(InputError, match="it belongs to a trained run"):
        check_output(other.path / "config.yaml")
    # a run.json that is not mgrec's (a video named "run"'s sidecar) makes no run
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "run.json").write_text('{"fps": 30}')
    check_output(tmp_path / "videos" / "config.yaml")


@pytest.mark.parametrize("value", ["nan", "inf", "x"])
def test_score_threshold_must_be_a_finite_number(value, capsys):
    # any finite number otherwise: predictions may hold logits (the loader takes them), and --tune-on on such a
    # file picks a threshold such as 5.0 that the option must be able to give again
    from mgrec.cli import finite_number, main

    with pytest.raises(SystemExit):
        main(["score", "--gt", "a.json", "--pred", "p.json", "--score-threshold", value])
    assert "expected a finite number" in capsys.readouterr().err
    assert finite_number("5") == 5.0 and finite_number("-0.5") == -0.5


@pytest.mark.parametrize("option, value, expected", [
    ("--size", "100000", "argument --size: expected a whole number in [32, 2048], got 100000"),  # blamed the video
    ("--size", "0", "argument --size: expected a whole number in [32, 2048], got 0"),  # silently 224
    ("--size", "big", "argument --size: expected a whole number in [32, 2048], got 'big'"),
    ("--window", "0", "argument --window: expected a whole number in [1, 1024], got 0"),
    ("--stride", "5000", "argument --stride: expected a whole number in [1, 1024], got 5000"),
    ("--batch", "0", "argument --batch: expected a whole number in [1, 256], got 0"),
    ("--batch", "1000000", "argument --batch: expected a whole number in [1, 256], got 1000000"),
])
def test_extract_numbers_are_refused_with_their_range_before_any_work(capsys, tmp_path, option, value, expected):
    with pytest.raises(SystemExit) as exited:
        main(["extract", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "features"), option, value])
    assert exited.value.code == 2 and expected in capsys.readouterr().err
    assert not (tmp_path / "features").exists()
    limits = {"--size": (32, 2048), "--window": (1, 1024), "--stride": (1, 1024), "--batch": (1, 256)}[option]
    for limit in limits:  # the ends of the range are allowed
        args = build_parser().parse_args(["extract", "clip.mp4", "--out", "f", option, str(limit)])
        assert getattr(args, option[2:]) == limit


def test_demo_fresh_deletes_only_a_run_and_never_the_working_directory_or_the_demo_data(tmp_path, capsys,
                                                                                        monkeypatch):
    # `--fresh` deleted whatever --out named: a folder of the user's files, `.`, the demo data itself.
    mine, work = tmp_path / "mine", tmp_path / "work"
    for folder in (mine, work):
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    cache = tmp_path / "runs" / "cache"
    monkeypatch.chdir(work)
    cases = [
        (["--out", str(mine)], f"--fresh: {mine} was not deleted: it holds 'notes.txt', which mgrec never writes"),
        (["--out", "."], "--fresh: . was not deleted: it is the working directory; choose another --out"),
        (["--out", str(tmp_path)], f"it holds {work}, the working directory"),
        (["--out", str(cache.parent), "--cache", str(cache)], f"it holds {cache}, the demo data (--cache)"),
        (["--out", str(cache), "--cache", str(cache)], f"--out {cache} lies in the demo data folder {cache} (--cache)"),
        (["--out", str(cache / "streams"), "--cache", str(cache)], "lies in the demo data folder"),
    ]
    for options, expected in cases:
        options = options if "--cache" in options else [*options, "--cache", str(cache)]
        assert main(["demo", *options, "--fresh"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mgrec: error: ") and expected in err and err.count("\n") == 1, err
    assert (mine / "notes.txt").read_text() == (work / "notes.txt").read_text() == "mine"
    assert not cache.exists()  # refused before the data is built


def test_demo_takes_a_cache_with_a_tilde_as_the_folder_it_builds_in_for_its_checks(tmp_path, capsys, monkeypatch):
    """`--cache '~/demo'` (quoted, or from a script) is built in $HOME/demo, but --out was checked against a folder
    './~/demo': `--out ~/demo/features` (the shell's ~) trained into the data folder, which a rebuild deletes."""
    import mgrec.data.demo as demo
    from mgrec.errors import InputError

    def no_build(*args, **kwargs):  # the check comes before the build; without it, fail fast, not train
        raise InputError("building the demo data")

    monkeypatch.setattr(demo, "build_demo", no_build)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for out in ("demo", "demo/features"):
        assert main(["demo", "--cache", "~/demo", "--out", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert err == (f"mgrec: error: --out {tmp_path / out} lies in the demo data folder {tmp_path}/demo (--cache), "
                       "whose folders a rebuild deletes; choose an --out outside it\n")
    assert not (tmp_path / "demo").exists() and not (tmp_path / "~").exists()


def test_demo_fresh_keeps_the_run_when_the_training_would_be_refused_anyway(tmp_path, capsys):
    # a typo that no training survives (a width no machine holds) cost the old run: deleted, then refused
    from torch import nn

    from mgrec.config import Config
    from mgrec.run import RunDir

    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    assert main(["demo", "--out", str(run.path), "--cache", str(tmp_path / "cache"), "--fresh",
                 "--set", "model.embed_dim=100000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mgrec: error: a training batch needs about "), err
    assert run.config_path.exists()


def test_demo_says_each_data_warning_once(tmp_path, capsys, monkeypatch):
    """`mgrec demo --set train.epochs=2` printed the warm-up warning twice: once in its data check's report, once
    when training checked the data again. Training's repeats of the report's warnings are left out."""
    import mgrec.train.loop as loop
    from mgrec.errors import InputError

    def training_that_checks_the_data_and_stops(config, out, resume=False, log=print, progress=None):
        from mgrec.train.data import checked_annotations

        checked_annotations(config, log=log)
        log("warning: something only training finds")
        raise InputError("stopped after the data check")

    monkeypatch.setattr(loop, "train", training_that_checks_the_data_and_stops)
    assert main(["demo", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
                 "--set", "train.epochs=2"]) == 2
    printed = capsys.readouterr()
    warm_up = "train.warmup_epochs 2 >= train.epochs 2"
    assert (printed.out + printed.err).count(warm_up) == 1
    assert "warning: something only training finds" in printed.err


def test_demo_refuses_a_bad_setting_before_building_the_data(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
                 "--set", "postprocess.second_opinion=1"]) == 2
    assert "[postprocess.second_opinion]: expected a weight in [0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("command", [["data", "convert", "SMG"], ["detect", "RUN", "f.npy"],
                                     ["detect", "RUN", "f.npy", "--format", "smg"]])
def test_an_out_of_dash_is_refused_not_written_as_a_file_named_dash(tmp_path, capsys, monkeypatch, command):
    (tmp_path / "SMG").mkdir()
    (tmp_path / "RUN").mkdir()  # a missing run folder is said first
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main([str(tmp_path / part) if part in ("SMG", "RUN") else part for part in command] + ["--out", "-"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mgrec: error: cannot write -: mgrec does not take '-' for standard output; give a ")
    assert "/dev/stdout" in err or "--format" in command
    assert not list(work.iterdir())


def test_a_threshold_above_every_score_is_said(tmp_path, capsys):
    import json

    from mgrec.data.annotations import save_annotations
    from mgrec.records import AnnotationSet, Segment, VideoInfo

    videos = {"v": VideoInfo("v", "test", 10.0, 30.0)}
    save_annotations(AnnotationSet(["a"], videos, {"v": [Segment("v", 1.0, 2.0, 0, "a")]}), tmp_path / "gt.json")
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [{"segment": [1.0, 2.0], "label": "a",
                                                                      "score": 0.95}]}}))
    command = ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json")]
    assert main([*command, "--score-threshold", "2"]) in (0, None)
    assert ("note: the score threshold 2 is above every score of split test in" in capsys.readouterr().err)
    assert main([*command, "--score-threshold", "0.5"]) in (0, None)
    assert "above every score" not in capsys.readouterr().err


def test_score_reads_an_activitynet_file_without_fps_with_the_fps_given(tmp_path, capsys):
    """ActivityNet 1.3's files have no per-video fps, and `score` has no config whose data.fps could give it."""
    import json

    document = {"database": {"v": {"subset": "testing", "duration": 30.0,
                                   "annotations": [{"label": "a", "segment": [1.0, 2.0]}]}}}
    (tmp_path / "gt.json").write_text(json.dumps(document))
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [{"segment": [1.0, 2.0], "label": "a",
                                                                      "score": 0.95}]}}))
    command = ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"), "--json"]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "gt.json [database.v]: missing key 'fps' (" in err and "--fps for mgrec score" in err
    assert main([*command, "--fps", "30"]) in (0, None)
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(1.0)
    # ActivityNet's mAP is averaged over tIoU 0.5:0.05:0.95, not THUMOS's 0.3:0.1:0.7 (the default)
    assert main([*command, "--fps", "30", "--tious", "activitynet"]) in (0, None)
    assert list(json.loads(capsys.readouterr().out)["mAP"]) == [f"{0.5 + 0.05 * i:.2f}".rstrip("0") for i in range(10)]
    assert main([*command, "--fps", "30", "--tious", "0.7,0.1,0.7"]) in (0, None)
    assert list(json.loads(capsys.readouterr().out)["mAP"]) == ["0.1", "0.7"]
    for bad in ("0", "1.5", "nan", "thumos14", ""):
        assert main([*command, "--fps", "30", "--tious", bad]) == 2
        assert f"--tious {bad}: expected thumos, activitynet, epic, or tIoU thresholds in (0, 1]" in \
            capsys.readouterr().err
    assert main([*command, "--fps", "0"]) == 2
    assert "--fps: expected a number of frames per second" in capsys.readouterr().err
    # the segments in frames: scored 0 without a word before
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [{"segment": [45.0, 60.0], "label": "a",
                                                                      "score": 0.95}]}}))
    assert main([*command, "--fps", "30"]) in (0, None)
    assert (f"note: the one detection in {tmp_path / 'p.json'} starts after its video ends (first: v at 45 s, "
            f"{tmp_path / 'gt.json'} gives it 30 s); are their segments in frames, not seconds?") in \
        capsys.readouterr().err
    # frames that say another time than the seconds: said, and the seconds scored
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [{"segment": [1.5, 2.0], "segment(frames)": [0, 1],
                                                                      "label": "a", "score": 0.95}]}}))
    assert main([*command, "--fps", "30"]) in (0, None)
    assert (f"note: 1 detection in {tmp_path / 'p.json'} has a segment(frames) more than 1.5 frames away from "
            "its segment in seconds at the video's fps (first: v [1.5, 2] s, frames [0, 1] at 30 fps); the seconds "
            "are scored") in capsys.readouterr().err


def test_score_analysis_of_some_videos_analyses_those_videos_as_the_table_scores_them(tmp_path, capsys):
    """`score --videos A --analysis DIR` printed the table of A and wrote the analysis of the whole split: its numbers
    (B's gestures all missed) disagreed with the table beside it, without a word."""
    import json

    def entry(start: float) -> dict:
        return {"subset": "test", "fps": 30.0, "duration": 30.0,
                "annotations": [{"label": "a", "segment": [start, start + 1.0]},
                                {"label": "a", "segment": [9.0, 10.0]}]}

    (tmp_path / "gt.json").write_text(json.dumps({"classes": ["a"], "database": {"A": entry(1.0), "B": entry(4.0)}}))
    (tmp_path / "p.json").write_text(json.dumps({"results": {"A": [{"segment": [1.0, 2.0], "label": "a",
                                                                      "score": 0.9}]}}))
    command = ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json"), "--json"]
    assert main([*command, "--videos", "A", "--analysis", str(tmp_path / "one")]) in (0, None)
    printed = capsys.readouterr()
    assert json.loads(printed.out)["num_ground_truth"] == 2
    assert "wrote the error analysis of split test (1 video of it, as scored) into" in printed.err
    analysis = json.loads((tmp_path / "one" / "test_analysis.json").read_text())
    assert analysis["videos"] == ["A"] and analysis["hard_set"]["num_ground_truth"] == 2
    assert main([*command, "--analysis", str(tmp_path / "all")]) in (0, None)  # the whole split, as before
    assert json.loads(capsys.readouterr().out)["num_ground_truth"] == 4
    analysis = json.loads((tmp_path / "all" / "test_analysis.json").read_text())
    assert "videos" not in analysis and analysis["hard_set"]["num_ground_truth"] == 4


def test_score_refuses_options_it_would_ignore_and_a_tuning_split_without_gestures(tmp_path, capsys):
    """--score-threshold beside --tune-on, and --threshold-shrinkage without per_class, were silently ignored; a
    tuning split without gestures tuned an arbitrary threshold (above every score: F1 0)."""
    import json

    from mgrec.data.annotations import save_annotations
    from mgrec.records import AnnotationSet, Segment, VideoInfo

    videos = {"v": VideoInfo("v", "test", 10.0, 30.0), "w": VideoInfo("w", "val", 10.0, 30.0)}
    save_annotations(AnnotationSet(["a"], videos, {"v": [Segment("v", 1.0, 2.0, 0, "a")]}), tmp_path / "gt.json")
    (tmp_path / "p.json").write_text(json.dumps({"results": {
        v: [{"segment": [1.0, 2.0], "label": "a", "score": 0.95}] for v in ("v", "w")}}))
    command = ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "p.json")]
    for extra, message in ((["--tune-on", "val", "--score-threshold", "0.99"], "give one of them"),
                           (["--threshold-shrinkage", "3"], "it needs thresholds per_class (--thresholds per_class)"),
                           (["--tune-on", "val"], "split 'val' has no gestures to tune the threshold on"),
                           # a --fps no video uses was dropped without a word
                           (["--fps", "30"], "--fps 30 would not be used: every video of")):
        assert main([*command, *extra]) == 2
        assert message in capsys.readouterr().err
    # --fps where only some videos lack one: said; where every video has its own, refused, even one equal to it
    document = json.loads((tmp_path / "gt.json").read_text())
    document["database"]["v"]["fps"] = 30.0
    (tmp_path / "own.json").write_text(json.dumps(document))
    assert main(["score", "--gt", str(tmp_path / "own.json"), "--pred", str(tmp_path / "p.json"), "--fps", "30"]) == 2
    assert "--fps 30 would not be used: every video of" in capsys.readouterr().err
    del document["database"]["w"]["fps"]
    (tmp_path / "some.json").write_text(json.dumps(document))
    assert main(["score", "--gt", str(tmp_path / "some.json"), "--pred", str(tmp_path / "p.json"), "--fps", "30"]) \
        in (0, None)
    assert "note: --fps 30 places the frames of the videos of" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a split's name is part of output names (eval_<split>.json)
        main([*command, "--split", "x/../victim"])
    assert "argument --split: split 'x/../victim' contains a path separator" in capsys.readouterr().err
    # the annotations' names for a split are the command line's too (`testing` was "no videos in split 'testing'")
    assert main([*command, "--split", "Testing", "--json"]) in (0, None)
    assert json.loads(capsys.readouterr().out)["split"] == "test"



def test_the_seeds_summary_is_mean_and_std_of_the_members_val_scores_and_says_when_there_is_no_val():
    from pathlib import Path

    from mgrec.train.ensemble import seed_spread
    from mgrec.train.loop import TrainResult

    def result(f1, mAP):
        return TrainResult(Path("r"), 3, {"f1": f1, "f1_miga": f1, "average_mAP": mAP, "score_threshold": 0.3}, 1.0,
                           tuned_on="val")

    assert seed_spread([result(0.70, 0.60), result(0.74, 0.64)]) == (
        "2 seeds, val (mean ± std over seeds): F1 72.00 ± 2.83, F1 (MiGA rule) 72.00 ± 2.83, average mAP 62.00 ± 2.83")
    # without a val split a run records its threshold alone: this was a KeyError after every member had trained
    no_val = TrainResult(Path("r"), 3, {"score_threshold": 0.3}, 1.0)
    assert seed_spread([no_val, no_val]) == "2 seeds: no val split, so no val scores to compare"


@pytest.mark.parametrize("argv, usage, unknown", [
    (["detect", "run", "x.npy", "--out", "y.json", "--bogus"], "usage: mgrec detect ", "--bogus"),
    (["data", "check", "my.yaml", "--epochs", "3"], "usage: mgrec data check ", "--epochs 3"),
    (["--bogus"], "usage: mgrec [-h]", "--bogus"),
    (["--bogus", "detect", "run", "x.npy", "--out", "y.json"], "usage: mgrec [-h]", "--bogus"),
])
def test_an_unknown_option_is_said_under_its_command_s_usage_line(argv, usage, unknown, capsys):
    # argparse said it under mgrec's own usage line, which lists no option of the command
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(usage)
    assert f"error: unrecognized arguments: {unknown}" in err.rstrip().splitlines()[-1]


def test_a_feature_file_and_a_video_of_one_id_are_refused_before_the_video_is_extracted(tmp_path, capsys):
    # refused after the video's features were extracted, naming their temporary path
    from torch import nn

    from mgrec.config import Config
    from mgrec.run import RunDir

    run = RunDir(tmp_path / "run")
    run.write_for_inference(Config(), ["a"], nn.Linear(2, 2))
    (tmp_path / "feats").mkdir()
    (tmp_path / "videos").mkdir()
    (tmp_path / "feats" / "clip.npy").write_bytes(b"")
    (tmp_path / "videos" / "clip.mp4").write_bytes(b"not read")
    assert main(["detect", str(run.path), str(tmp_path / "feats" / "clip.npy"), str(tmp_path / "videos" / "clip.mp4"),
                 "--out", str(tmp_path / "d.json")]) == 2
    assert capsys.readouterr().err == (f"mgrec: error: {tmp_path / 'feats' / 'clip.npy'} and "
                                       f"{tmp_path / 'videos' / 'clip.mp4'} are both video 'clip'; give one of them "
                                       "(one output would silently replace the other)\n")


@pytest.mark.parametrize("argv, option", [
    (["score", "--gt", "g.json", "--pred", "p.json", "--score-threshold", "0_5"], "--score-threshold"),
    (["score", "--gt", "g.json", "--pred", "p.json", "--fps", "٣٠"], "--fps"),
    (["stream", "RUN", "f.npy", "--hop", "2_4"], "--hop"),
    (["stream", "RUN", "f.npy", "--lookahead", "٣"], "--lookahead"),
    (["--threads", "١", "score", "--gt", "g.json", "--pred", "p.json"], "--threads"),
    (["extract", "v.mp4", "--out", "o", "--batch", "1_6"], "--batch"),
])
def test_command_line_numbers_are_ascii_digits_as_every_number_mgrec_reads(argv, option, capsys):
    # float() and int() read "0_5" as 5 and Arabic-Indic digits as numbers: --score-threshold 0_5 scored at 5
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected a" in err and ("ASCII digits" in err or "got '1_6'" in err)


def test_tious_are_ascii_digits_too():
    from mgrec.evaluate.average_precision import parse_tious

    assert parse_tious("0.5,0.7") == (0.5, 0.7)
    for text in ("٠.5", "0_5"):
        with pytest.raises(InputError, match="expected thumos, activitynet, epic, or tIoU thresholds"):
            parse_tious(text)


def test_no_abbreviations_and_a_group_without_its_action_shows_its_own_help(capsys):
    # `--score 0.5` was read as --score-threshold (a script's abbreviation breaks once an option is added)
    with pytest.raises(SystemExit):
        main(["score", "--gt", "g.json", "--pred", "p.json", "--score", "0.5"])
    assert "unrecognized arguments: --score 0.5" in capsys.readouterr().err
    # `mgrec data` printed mgrec's own help; `mgrec data --threads 1 check` was "invalid choice: '1'"
    assert main(["data"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: mgrec data [-h] [--threads THREADS] ACTION")
    with pytest.raises(SystemExit) as exit_:
        main(["data", "--threads", "1", "check", "--help"])
    assert exit_.value.code == 0 and "usage: mgrec data check" in capsys.readouterr().out


@pytest.mark.parametrize("argv, option", [
    (["score", "--gt", "a.json", "--pred", "p.json", "--gt", "b.json"], "--gt"),
    (["score", "--gt", "g.json", "--pred", "p.json", "--split", "test", "--split", "val"], "--split"),
    (["detect", "RUN", "f.npy", "--out", "a.json", "--out", "b.json"], "--out"),
    (["extract", "--fuse", "a", "b", "--fuse", "c", "--out", "f"], "--fuse"),
    (["detect", "RUN", "f.npy", "--out", "o.json", "--threads", "2", "--threads", "4"], "--threads"),
])
def test_an_option_given_twice_with_other_values_is_refused(argv, option, capsys):
    # argparse kept the last and dropped the first without a word: `score --gt a.json ... --gt b.json` scored
    # against b.json, `extract --fuse a b --fuse c` fused c alone
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}: given twice ({option} " in err and "give it once" in err
    assert "Traceback" not in err


def test_an_option_given_twice_alike_and_options_that_add_up_are_taken():
    args = build_parser().parse_args(["score", "--gt", "g.json", "--pred", "p.json", "--split", "Test", "--split",
                                      "test", "--pred", "p.json"])
    assert (str(args.pred), args.split) == ("p.json", "test")
    args = build_parser().parse_args(["data", "check", "c.yaml", "--set", "seed=1", "--set", "train.epochs=2"])
    assert args.overrides == ["seed=1", "train.epochs=2"]
    # before the command and after it: the command's own (a shell alias holding `mgrec --threads 2`)
    assert build_parser().parse_args(["--threads", "2", "detect", "RUN", "f.npy", "--out", "o.json", "--threads",
                                      "4"]).threads == 4
    # the same value twice, NaN included (NaN != NaN read as two values: "given twice (--fps nan, then --fps nan)"; the
    # command then refuses the value itself, by name)
    args = build_parser().parse_args(["detect", "RUN", "f.npy", "--out", "o.json", "--fps", "nan", "--fps", "nan"])
    assert args.fps != args.fps


@pytest.mark.parametrize("command", [["data", "check", "c.yaml"], ["train", "c.yaml", "--out", "r"],
                                     ["demo", "--out", "r"]])
def test_a_key_given_other_values_by_two_set_items_is_refused(command, capsys):
    # the last won without a word: a script's `--set train.lr=3e-4` with `--set train.lr=1e-3` appended trained at 1e-3
    for sets, first, then in ((["train.lr=3e-4", "seed=1", "train.lr=1e-3"], "train.lr=3e-4", "train.lr=1e-3"),
                              (["train={lr: 3e-4, epochs: 2}", "train.lr=1e-3"], "train={lr: 3e-4, epochs: 2}",
                               "train.lr=1e-3"),
                              (["model.regression_ranges=[[0,4],[4,99]]", "model.regression_ranges=[[0,4]]"],
                               "model.regression_ranges=[[0,4],[4,99]]", "model.regression_ranges=[[0,4]]")):
        argv = list(command)
        for item in sets:
            argv += ["--set", item]
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(argv)
        err = capsys.readouterr().err
        key = then.split("=")[0]
        assert exit_.value.code == 2 and f"argument --set: {key} given twice (--set {first!r}, then --set {then!r}); " \
            "give it once" in err
    # the same value twice (also written otherwise), a section's other keys, and other keys are taken
    args = build_parser().parse_args([*command, "--set", "train.lr=1e-3", "--set", "train.lr=0.001", "--set",
                                      "train={epochs: 2}", "--set", "train.epochs=2", "--set", "data.fps=.nan",
                                      "--set", "data.fps=.nan"])
    assert args.overrides[-1] == "data.fps=.nan"


def test_sigterm_during_a_command_is_said_in_one_line_and_exits_143(monkeypatch, capsys):
    # a scheduler's SIGTERM (a job's time limit) ended evaluate, detect or train in silence; Ctrl-C said so
    import os
    import signal
    import time

    import mgrec.cli

    def terminated_while_working(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not stop the command")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(mgrec.cli, "cmd_score", terminated_while_working)
    assert main(["score", "--gt", "g.json", "--pred", "p.json"]) == 143
    assert capsys.readouterr().err == "mgrec: terminated\n"
    assert signal.getsignal(signal.SIGTERM) is before  # the process's own handler is back
    # not an Exception: a reader's `except Exception` on the way called the file it was reading corrupt (a resumed
    # training's state: "delete it to restart the run")
    assert not issubclass(mgrec.cli.Terminated, Exception)


@pytest.mark.parametrize("command", [["detect", "RUN", "--out", "x.json"], ["extract", "--out", "features"]])
def test_a_url_given_to_a_command_of_files_is_sent_to_stream_without_its_password(command, capsys):
    """A URL made a path lost a slash and printed its password: `rtsp:/admin:pw@cam/1: no such file or folder`."""
    with pytest.raises(SystemExit) as exit:
        main([*command, "rtsp://admin:s3cret@cam.local/1"])
    assert exit.value.code == 2
    said = capsys.readouterr().err
    assert ("rtsp://***@cam.local/1 is a URL: `mgrec stream RUN URL` reads a network source as it arrives; this "
            "command reads files") in said
    assert "s3cret" not in said


def test_detect_and_stream_refuse_an_out_whose_name_says_another_format(tmp_path, capsys):
    # `--out clip.srt` wrote a results JSON named clip.srt (no player reads it), and `--format srt --out clip.srt`
    # (or `--format smg --out sub.csv`) made a folder of that name: each is refused before any work, saying how
    from tests.test_robustness import tiny_config, write_run

    from mgrec.data.synthetic import make_synthetic_dataset

    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=2, feature_dim=8, length=96,
                                     subsets=("train", "test"))
    run = write_run(tmp_path / "run", tiny_config(dataset))
    features = str(sorted(dataset.features.glob("*.npy"))[0])
    refused = {
        ("--out", "clip.srt"): "subtitles are written one file per video, into a folder: --format srt --out FOLDER",
        ("--out", "clip.VTT"): "--format vtt --out FOLDER",
        ("--format", "srt", "--out", "clip.srt"): "--format srt writes a folder of files, one per video",
        ("--format", "smg", "--out", "sub.csv"): r"VIDEO/VIDEO_finelabels.csv\), and sub.csv names a file",
    }
    for options, message in refused.items():
        options = [str(tmp_path / o) if o.startswith(("clip", "sub")) else o for o in options]
        assert main(["detect", str(run), features, *options]) == 2
        assert re.search(message, capsys.readouterr().err), options
    # the stream's submission alike (it made a folder sub.csv/)
    assert main(["stream", str(run), features, "--format", "smg", "--out", str(tmp_path / "sub.csv")]) == 2
    assert "VIDEO/VIDEO_finelabels.csv), and sub.csv names a file: give a folder" in capsys.readouterr().err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("clip", "sub"))]
    assert main(["detect", str(run), features, "--format", "srt", "--out", str(tmp_path / "subtitles")]) == 0
    assert [p.suffix for p in (tmp_path / "subtitles").iterdir()] == [".srt"]
    # subtitles into a detection-level ensemble's members/ folder, which holds its members alone (they broke it)
    from mgrec.run import RunDir

    fused = RunDir(tmp_path / "fused")
    for member in (0, 1):
        fused.member_path(member).mkdir(parents=True)
        RunDir(fused.member_path(member)).write_format()
    fused.write_format({"members": 2, "sources": ["a", "b"], "fusion": "detections", "pseudo_labelled": []})
    members = fused.member_path(0).parent
    assert main(["detect", str(run), features, "--format", "srt", "--out", str(members)]) == 2
    assert "which holds the 2 members of the ensemble" in capsys.readouterr().err
    assert sorted(p.name for p in members.iterdir()) == ["0", "1"]


def test_help_examples_set_the_data_paths_of_the_shipped_config_they_name():
    # `mgrec train --help` showed `mgrec train smg/mgrec.yaml ... --set data.features=data/smg/features`, the
    # folder above the one the SMG configs and the README's step 1 use (data/smg/features/videomae_v2_g): every
    # video's file was then missing. An example's --set of a path a shipped config names must be that path.
    import shlex

    from mgrec.config import load_config

    checked = 0
    for path, command in commands(build_parser()):
        tail = command.format_help().split("examples:\n")
        for line in (tail[-1].splitlines() if path and len(tail) > 1 else []):
            words = shlex.split(line.split("#")[0])
            shipped = [w for w in words if re.fullmatch(r"(demo|smg)/\w+\.yaml", w)]
            sets = dict(words[i + 1].split("=", 1) for i, w in enumerate(words[:-1]) if w == "--set")
            for key in ("data.annotations", "data.features"):
                if shipped and sets.get(key, "...") != "...":
                    assert sets[key] == getattr(load_config(shipped[0]).data, key.split(".")[1]), line
                    checked += 1
    assert checked >= 2


@pytest.mark.parametrize("argv, said", [
    (["detect", "RUN", "-lead.npy", "--out", "x.json"], "the following arguments are required: INPUT"),
    (["detect", "RUN", "a.npy", "-lead.npy", "--out", "x.json"], "unrecognized arguments: -lead.npy"),
    (["score", "--gt", "a.json", "--pred", "-lead.npy"], "argument --pred: expected one argument"),
    (["report", "RUN", "--out", "-lead.npy"], "argument --out: expected one argument"),
])
def test_a_file_name_beginning_with_a_dash_is_named_with_the_spelling_that_works(argv, said, capsys, tmp_path,
                                                                                 monkeypatch):
    # argparse takes `-lead.npy` for an option and its error never named it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-lead.npy").write_bytes(b"")
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err
    assert f"error: {said} ('-lead.npy' begins with '-', so it was read as an option, not as a file name; write " \
           "'./-lead.npy')" in err
    with pytest.raises(SystemExit):  # no file name given with a dash: argparse's words alone
        main(["detect", "RUN", "-x", "--out", "x.json"])
    assert "begins with '-'" not in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a negative number is a value, not a file
        main(["stream", "RUN", "a.npy", "--hop", "-3"])
    assert "begins with '-'" not in capsys.readouterr().err


ANNOTATIONS = ('{"classes": ["a"], "database": {"v": {"subset": "train", "fps": 30, "duration": 10, '
               '"annotations": [{"label": "a", "segment": [1, 2]}]}}}')


@pytest.mark.parametrize("argv", [
    ["detect", "{long}", "f.npy", "--out", "d.json"],  # a run
    ["data", "convert", "{long}.json", "--out", "d.json"],  # an input
    ["data", "check", "{long}.yaml"],  # a config
    ["score", "--gt", "{long}.json", "--pred", "p.json"],  # annotations
    ["data", "convert", "a.json", "--out", "{long}.json"],  # an output
])
def test_a_name_longer_than_the_system_takes_is_one_line_naming_it(argv, tmp_path, monkeypatch, capsys):
    # Path.exists() and is_file() raise "File name too long" (they swallow only "not there"): a raw OSError traceback
    # from whichever check met the path first, in every command
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text(ANNOTATIONS)
    long = "y" * 300
    assert main([word.replace("{long}", long) for word in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(r"^mgrec: error: '.*'\.\.\. \(\d+ characters\): its part 'yyyy.*'\.\.\. \(30\d characters\) is "
                     r"30\d bytes, longer than the 255 bytes a file or folder name may have; give a shorter name$", err)


def test_a_path_longer_than_the_system_takes_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text(ANNOTATIONS)
    deep = "/".join(["z" * 200] * 30)  # every name fits; the path (6000 bytes) does not
    assert main(["data", "convert", "a.json", "--out", f"{deep}/d.json"]) == 2
    assert re.search(r"^mgrec: error: '.*'\.\.\. \(\d+ characters\): the path is 6\d\d\d bytes, longer than the "
                     r"system takes; give a shorter path$", capsys.readouterr().err)


@pytest.mark.parametrize("argv, said", [
    (["evaluate", "RUN", "--spilt", "test"],
     "unrecognized arguments: --spilt test ('--spilt' is not an option of mgrec evaluate; did you mean --split?)"),
    (["detect", "RUN", "a.npy", "--outt", "x.json"],  # the misspelling left --out out: argparse named only --out
     "the following arguments are required: --out ('--outt' is not an option of mgrec detect; did you mean --out?)"),
    (["data", "check", "c.yaml", "--balanse"],
     "unrecognized arguments: --balanse ('--balanse' is not an option of mgrec data check; did you mean --balance?)"),
    (["train", "c.yaml", "--out", "r", "--seed=3"],
     "unrecognized arguments: --seed=3 ('--seed' is not an option of mgrec train; did you mean --seeds?)"),
    (["detect", "RUN", "a.npy", "--out", "x.json", "--frobnicate"],
     "unrecognized arguments: --frobnicate ('--frobnicate' is not an option of mgrec detect; `mgrec detect --help` "
     "lists them)"),
])
def test_a_misspelt_option_is_named_with_the_option_it_is_closest_to(argv, said, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert f"error: {said}\n" in capsys.readouterr().err


def test_an_unknown_command_is_not_blamed_on_the_command_s_options(capsys):
    # `--split` is an option of evaluate, not of mgrec's own parser, which refuses the misspelt command
    with pytest.raises(SystemExit):
        main(["evalute", "RUN", "--split", "test"])
    err = capsys.readouterr().err
    assert "invalid choice: 'evalute'" in err
    assert "is not an option" not in err


def test_data_convert_warns_of_a_splits_subset_no_config_reads(tmp_path, capsys):
    # `--splits train=1-30,val=31-35,tset=36-40` wrote subset 'tset' without a word; a config's test split then
    # held no video, found only by a later data check
    for subject in (1, 31, 36):
        sample = tmp_path / "smg" / f"Sample{subject:04d}"
        sample.mkdir(parents=True)
        (sample / f"{sample.name}_finelabels.csv").write_text("3,10,40\n17,60,90\n", encoding="utf-8")
        (sample / f"{sample.name}_data.csv").write_text("300,28,4000\n", encoding="utf-8")
    out = tmp_path / "ann.json"
    assert main(["data", "convert", str(tmp_path / "smg"), "--out", str(out),
                 "--splits", "train=1-30,val=31-35,tset=36-40"]) == 0
    assert ("warning: --splits: subset 'tset' (1 video) is none of train, val, test, the splits a config reads "
            "(data.train_split, data.val_split, data.test_split), so only a config that names it uses its videos; "
            "did you mean 'test'?\n") in capsys.readouterr().err
    assert mgrec.load_annotations(out).video_ids("tset") == ["Sample0036"]  # written as asked
    assert main(["data", "convert", str(tmp_path / "smg"), "--out", str(tmp_path / "b.json"),
                 "--splits", "training=1-30,validation=31-35,test=36-40"]) == 0  # the long names are the same splits
    assert "warning: --splits" not in capsys.readouterr().err


def test_data_convert_of_a_json_warns_of_subsets_no_config_reads_and_of_no_training_video(tmp_path, capsys):
    """A JSON whose subsets are 'dev' and 'unlabeled' (or THUMOS's 'validation' and 'testing' alone) was converted
    without a word: a config at its default splits then trained on nothing, found only by a later data check."""
    database = {f"v{i}": {"subset": subset, "fps": 30.0, "duration": 60.0,
                          "annotations": [{"label": "a", "segment": [1.0, 3.0]}]}
                for i, subset in enumerate(["dev", "unlabeled", "unlabeled", "validation", "testing"])}
    (tmp_path / "in.json").write_text(json.dumps({"database": database}))
    assert main(["data", "convert", str(tmp_path / "in.json"), "--out", str(tmp_path / "out.json")]) == 0
    err = capsys.readouterr().err
    assert (f"warning: {tmp_path / 'in.json'}: subset 'unlabeled' (2 videos) is none of train, val, test, the splits "
            "a config reads (data.train_split, data.val_split, data.test_split), so only a config that names it uses "
            "its videos\n") in err
    assert f"warning: {tmp_path / 'in.json'}: subset 'dev' (1 video) is none of" in err
    assert (f"warning: {tmp_path / 'in.json'}: no video is in subset 'train', the one a config trains on by default "
            "(data.train_split); the file's subsets are 'dev' (1), 'test' (1), 'unlabeled' (2), 'val' (1): name the "
            "one to train on in the config (data.train_split, and data.val_split, data.test_split for the others)"
            "\n") in err
    assert mgrec.load_annotations(tmp_path / "out.json").video_ids("unlabeled") == ["v1", "v2"]  # written as it was
    for i, subset in enumerate(["Training", "validation", "testing", "train", "val"]):  # the splits by other names
        database[f"v{i}"]["subset"] = subset
    (tmp_path / "in.json").write_text(json.dumps({"database": database}))
    assert main(["data", "convert", str(tmp_path / "in.json"), "--out", str(tmp_path / "b.json")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_data_convert_warns_of_video_ids_every_per_video_writer_refuses_or_windows_cannot_hold(tmp_path, capsys):
    """A JSON whose ids fold alike (`Sample0001` / `sample0001`, `café` in NFC / NFD) or that Windows cannot hold
    (`CON`) was converted without a word, though extract, detect and stream --format smg and subtitles refuse (or
    warn of) them later (`files.check_output_names`): converted as it is, with a warning at each entry. SMG sample
    folders cannot be such ids (`Sample` and ASCII digits, spelled exactly, each subject once: refused)."""
    import unicodedata

    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    entry = {"subset": "training", "fps": 30.0, "duration": 60.0,
             "annotations": [{"label": "a", "segment": [1.0, 3.0]}]}
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"database": {vid: entry for vid in ("Sample0001", "sample0001", nfc, nfd, "CON")}}))
    assert main(["data", "convert", str(source), "--out", str(tmp_path / "out.json")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "Windows" in line]
    alike = ("are one name where case and Unicode normalisation are not told apart (macOS, Windows, FAT, exFAT): "
             "their files (videos, features, label folders) copied there, one replaces the other, and mgrec extract "
             "(feature files), detect and stream --format smg (label folders) and subtitles refuse the two; rename one "
             "of the videos (its entry and its files)")
    assert sorted(warned) == sorted([
        f"warning: {source} [database.sample0001]: videos 'Sample0001' and 'sample0001' {alike}",
        f"warning: {source} [database.{nfc}]: videos 'cafe\\u0301' and 'caf\\xe9' {alike}",
        f"warning: {source} [database.CON]: 'CON' is the name of a device on Windows: the files mgrec names after the "
        "video (its --format smg label folder, its features) cannot be copied to Windows nor to a FAT or exFAT disk; "
        "rename the video to share them"])
    assert len(mgrec.load_annotations(tmp_path / "out.json").videos) == 5  # written as it was
    for name in ("Sample0001", "sample0001"):  # an SMG folder: refused, as before
        (tmp_path / "smg" / name).mkdir(parents=True)
        (tmp_path / "smg" / name / f"{name}_finelabels.csv").write_text("1,10,20\n")
        (tmp_path / "smg" / name / f"{name}_data.csv").write_text("100,28,0\n")
    assert main(["data", "convert", str(tmp_path / "smg"), "--out", str(tmp_path / "smg.json")]) == 2
    assert "a sample folder must be spelled 'Sample0001' exactly" in capsys.readouterr().err


def test_score_does_not_load_torch_to_score_a_file(tmp_path):
    """`mgrec score` needs no network: it imported torch for its --fps check (`checked_fps`, in mgrec.infer.offline
    then), 1.8 s and 200 MB before anything was scored, whatever the file's size. A file of another tool (no run
    recorded) is scored without it."""
    import subprocess
    import sys

    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.records import Detection

    paths = make_synthetic_dataset(tmp_path / "data", num_videos=2, num_classes=3, feature_dim=4, length=64,
                                   subsets=("test", "test"))
    pred = tmp_path / "ranked.json"
    save_predictions({"synthetic_000": [Detection("synthetic_000", 1.0, 2.0, 0, "class00", 0.5)]}, pred)
    code = ("import sys; from mgrec.cli import main; code = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "score", "--gt", str(paths.annotations), "--pred", str(pred),
                           "--split", "test", "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("False"), done.stdout[-200:]


def test_no_folder_for_temporary_files_is_one_line_naming_what_was_tried(monkeypatch, tmp_path, capsys):
    # torch asks Python for the temporary folder as `train`, `stream` or `evaluate` build their first network: with
    # /tmp full (a small tmpfs), over a quota or under `ulimit -f`, a raw "FileNotFoundError: No usable temporary
    # directory found in [...]" traceback
    import tempfile

    import mgrec.cli as cli

    gone = tmp_path / "full"
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(gone)])
    monkeypatch.setattr(cli, "cmd_score", lambda args: tempfile.gettempdir())
    assert cli.main(["score", "--gt", "a.json", "--pred", "b.json"]) == 2
    assert capsys.readouterr().err == (f"mgrec: error: no folder for temporary files can be written (tried "
                                       f"{[str(gone)]}: a full disk, a quota, a file-size limit or read-only "
                                       "folders); free space there, or set TMPDIR to a folder that can be written\n")


@pytest.mark.parametrize("argv", [
    ["data", "check", "c.yaml", "--set", "data.annotations=/locked/annotations.json"],
    ["score", "--gt", "/locked/annotations.json", "--pred", "p.json"],
])
def test_a_path_this_user_may_not_look_at_is_one_line_naming_it(argv, tmp_path, monkeypatch, capsys):
    # a run copied from root, its config naming data under /root (0700): Path.is_file() raises "Permission denied"
    # (it swallows only "not there"), a raw PermissionError traceback from data check, train, ensemble
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("data: {features: feats}\n")
    real = {name: getattr(Path, name) for name in ("is_file", "is_dir", "exists", "stat")}

    def guarded(name):
        def check(self, *args, **kwargs):
            if str(self).startswith("/locked"):
                raise PermissionError(13, "Permission denied", str(self))
            return real[name](self, *args, **kwargs)
        return check

    for name in real:
        monkeypatch.setattr(Path, name, guarded(name))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == ("mgrec: error: /locked/annotations.json: Permission denied (this user may not open it, or a folder "
                   "on its way); ask its owner for access, or copy it where you may read it and give that path\n")


def test_an_empty_path_word_is_refused_not_taken_for_the_current_folder(tmp_path, monkeypatch, capsys):
    # `--unlabeled "$POOL"` with POOL unset pseudo-labelled the feature files of the current folder, `--out ""`
    # trained into it: Path("") is "."; every path of every command now refuses the empty word
    monkeypatch.chdir(tmp_path)
    import numpy as np
    np.save(tmp_path / "v.npy", np.zeros((4, 8), dtype=np.float32))
    for argv, argument in ((["train", "c.yaml", "--out", "r", "--unlabeled", ""], "--unlabeled"),
                           (["train", "c.yaml", "--out", ""], "--out"),
                           (["train", "", "--out", "r"], "CONFIG"),
                           (["ensemble", "a", "b", "--out", ""], "--out"),
                           (["detect", "run", ""], "INPUT"),
                           (["stream", "run", ""], "INPUT"),
                           (["extract", "", "--out", "f"], "VIDEO")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and (f"error: argument {argument}: expected a path, got an empty word (a shell "
                                          "variable unset or empty?); name the current folder as .") in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.npy"]
    parser = build_parser()
    paths = [action for sub in parser._subparsers._group_actions[0].choices.values() for action in sub._actions
             if action.type is Path]
    assert not paths, [action.dest for action in paths]  # every path argument refuses the empty word


def test_a_quoted_tilde_path_is_the_home_folder_in_every_command(tmp_path, monkeypatch, capsys):
    # `--out '~/runs/x'` (quoted: a script, an env file, a Makefile variable) made a folder named `~` in the current
    # folder, for every command but demo --cache; every path argument now takes a leading ~ as the shell does
    from tests.helpers import home_and_work
    from tests.test_robustness import tiny_config, write_run

    from mgrec.config import save_config
    from mgrec.data.synthetic import make_synthetic_dataset

    home, work = home_and_work(tmp_path, monkeypatch)
    dataset = make_synthetic_dataset(tmp_path / "data", num_videos=3, feature_dim=8, length=96,
                                     subsets=("train", "val", "test"))
    save_config(tiny_config(dataset), tmp_path / "tiny.yaml")
    run = write_run(tmp_path / "run", tiny_config(dataset))
    monkeypatch.chdir(work)
    features = str(sorted(dataset.features.glob("*.npy"))[0])
    assert main(["train", str(tmp_path / "tiny.yaml"), "--out", "~/runs/x", "--no-progress"]) == 0
    assert (home / "runs" / "x" / "run.json").is_file()
    assert main(["detect", str(run), features, "--out", "~/det.json"]) == 0
    assert (home / "det.json").is_file()
    assert main(["data", "convert", str(dataset.annotations), "--out", "~/ann.json"]) == 0
    assert (home / "ann.json").is_file()
    assert not (work / "~").exists()
    capsys.readouterr()
    # every path argument of the parser, as a Path (train's config) or kept as written (report's --out folder/)
    parser = build_parser()
    assert parser.parse_args(["train", "~/c.yaml", "--out", "~"]).config == home / "c.yaml"
    assert parser.parse_args(["train", "c.yaml", "--out", "~"]).out == home
    assert parser.parse_args(["report", "r", "--out", "~/pages/"]).out == f"{home}/pages/"
    assert parser.parse_args(["detect", "r", "~/v.npy", "--out", "o.json"]).inputs == [home / "v.npy"]
    # a ~ elsewhere in the word is a name's
    assert parser.parse_args(["train", "a~b.yaml", "--out", "x/~"]).out == Path("x/~")
    assert parser.parse_args(["train", "a~b.yaml", "--out", "x"]).config == Path("a~b.yaml")
    # a ~user of no user is refused, naming it
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "c.yaml", "--out", "~no-such-user-mgrec/x"])
    assert ("argument --out: ~no-such-user-mgrec/x: no user 'no-such-user-mgrec' on this machine"
            in capsys.readouterr().err)
