"""The command line itself: every argument helped with its default, examples, --version, --threads, --device."""

from __future__ import annotations

import argparse

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


@pytest.mark.parametrize("value", ["2", "-0.1", "nan", "x"])
def test_score_threshold_must_be_a_probability(value, capsys):
    from mgrec.cli import main

    with pytest.raises(SystemExit):
        main(["score", "--gt", "a.json", "--pred", "p.json", "--score-threshold", value])
    assert "expected a number in [0, 1]" in capsys.readouterr().err
