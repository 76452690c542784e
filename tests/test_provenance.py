"""The provenance record of result files: the commit of the source tree, the machine, the command."""

import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import mgrec
from mgrec import devices
from mgrec.provenance import campaign_name, describe_machine, git_commit, provenance, read_provenance

REPO = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    """A git checkout holding a package and a results folder, everything committed."""
    root = tmp_path / "repo"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "__init__.py").write_text("")
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "benchmarks" / "results" / "old.json").write_text("{}")
    (root / ".gitignore").write_text(".venv/\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


@needs_git
def test_the_commit_of_a_clean_checkout_then_dirty_after_a_change(checkout):
    package = checkout / "src" / "pkg"
    commit = git_commit(package)
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    # results written by a campaign do not make the code dirty, new or changed
    (checkout / "benchmarks" / "results" / "new").mkdir()
    (checkout / "benchmarks" / "results" / "new" / "speed.json").write_text("{}")
    (checkout / "benchmarks" / "results" / "old.json").write_text('{"changed": 1}')
    assert git_commit(package) == commit
    # an untracked source file does
    (package / "extra.py").write_text("")
    assert git_commit(package) == commit + "+dirty"
    (package / "extra.py").unlink()
    # and so does a change to a tracked file
    (package / "__init__.py").write_text("x = 1\n")
    assert git_commit(package) == commit + "+dirty"


@needs_git
def test_the_commit_is_read_without_writing_the_checkout_s_index(checkout):
    # `git status` refreshes the index of a checkout whose files were touched, writing .git/index.lock: under a
    # file-size limit (`ulimit -f`) git was killed by SIGXFSZ there, and every mgrec command run from a checkout left
    # that lock behind (the developer's next `git commit`: "Unable to create index.lock: File exists"), and recorded
    # no commit
    import os
    import sys

    package = checkout / "src" / "pkg"
    commit = git_commit(package)
    os.utime(package / "__init__.py", (1, 1))  # the same bytes, another time: the index is out of date
    index = (checkout / ".git" / "index").read_bytes()
    code = ("import resource, sys\nfrom mgrec.provenance import git_commit\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.RLIM_INFINITY))\n"
            "print(git_commit(sys.argv[1]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(package)], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == commit, done.stdout + done.stderr
    assert not (checkout / ".git" / "index.lock").exists()
    assert git_commit(package) == commit and (checkout / ".git" / "index").read_bytes() == index  # never written


@needs_git
def test_no_commit_outside_a_checkout_or_in_its_ignored_files(tmp_path, checkout):
    (tmp_path / "installed" / "pkg").mkdir(parents=True)
    assert git_commit(tmp_path / "installed" / "pkg") is None
    # a package installed into a virtual environment that lies inside some checkout is not that checkout's code
    site = checkout / ".venv" / "lib" / "site-packages" / "pkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    assert git_commit(site) is None


def test_the_record_has_every_field():
    record = provenance(["python", "benchmarks/speed.py", "--json", "a b.json"], threads=3, device="cpu")
    assert set(record) == {"command", "date", "git_commit", "machine", "torch", "threads", "mgrec"}
    assert record["command"] == "python benchmarks/speed.py --json 'a b.json'"
    date = datetime.datetime.fromisoformat(record["date"])
    assert date.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - date).total_seconds()) < 60
    assert record["threads"] == 3 and record["torch"] == torch.__version__ and record["mgrec"] == mgrec.__version__
    assert record["machine"] == describe_machine() and "logical CPUs" in record["machine"]


@pytest.mark.parametrize("amx, native, named", [(True, True, "bf16: AMX"), (False, True, "bf16: AVX512-BF16, no AMX"),
                                                (False, False, "bf16: emulated")])
def test_the_machine_names_its_bf16_units(monkeypatch, amx, native, named):
    # one Xeon model ran bf16 twice as fast as float32 with AMX exposed and slower without: results must say which
    monkeypatch.setattr(devices, "amx_bf16_cpu", lambda: amx)
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: native)
    assert f"logical CPUs; {named})" in describe_machine()
    assert provenance("mgrec demo")["command"] == "mgrec demo"
    assert provenance([])["threads"] == torch.get_num_threads()


@needs_git
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="the tests do not run from a git checkout")
def test_the_record_of_this_checkout_names_its_commit():
    commit = provenance([])["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit), commit
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert commit.removesuffix("+dirty") == head.stdout.strip()


def test_reading_results_written_before_the_record():
    old = {"model": "mgrec", "command": "python benchmarks/speed.py", "date": "2026-11-26T01:28:10+00:00",
           "machine": "AMD EPYC", "torch_version": "2.13.0+cpu", "threads": 2}
    assert read_provenance(old) == {"command": "python benchmarks/speed.py", "date": "2026-11-26T01:28:10+00:00",
                                    "git_commit": None, "machine": "AMD EPYC", "torch": "2.13.0+cpu", "threads": 2,
                                    "mgrec": None}
    new = {"provenance": provenance(["x"])}
    assert read_provenance(new) is new["provenance"]


def test_campaign_folder_names():
    record = {"date": "2026-11-26T01:28:10+00:00", "git_commit": "aef645c" + "0" * 33}
    assert campaign_name("speed-cpu", record) == "2026-11-26_aef645c_speed-cpu"
    dirty = record | {"git_commit": "aef645c" + "0" * 33 + "+dirty"}
    assert campaign_name("load", dirty) == "2026-11-26_aef645c-dirty_load"
    assert campaign_name("gpu", record | {"git_commit": None}) == "2026-11-26_nogit_gpu"


def test_the_command_line_prints_a_campaign_name(capsys):
    from mgrec.provenance import main

    main(["speed-cpu"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_([0-9a-f]{7}(-dirty)?|nogit)_speed-cpu\n", capsys.readouterr().out)


def test_the_command_is_recorded_as_a_user_would_type_it_again(monkeypatch, tmp_path):
    # `python -m mgrec detect ...` recorded "__main__.py detect ...", which runs nothing; `mgrec export` recorded
    # "mgrec export" alone; `mgrec.cli.main(argv)` in Python recorded the calling program's sys.argv
    from mgrec.cli import main
    from mgrec.provenance import command_line

    package = Path(mgrec.__file__).resolve().parent
    monkeypatch.setattr("sys.argv", [str(package / "__main__.py"), "detect", "runs/a", "v.npy", "--out", "d.json"])
    assert command_line() == ["python", "-m", "mgrec", "detect", "runs/a", "v.npy", "--out", "d.json"]
    monkeypatch.setattr("sys.argv", [str(package / "cli.py"), "detect", "r"])
    assert command_line() == ["python", "-m", "mgrec.cli", "detect", "r"]
    monkeypatch.setattr("sys.argv", ["/home/u/.venv/bin/mgrec", "detect", "r"])
    assert command_line() == ["mgrec", "detect", "r"]
    monkeypatch.setattr("sys.argv", [str(tmp_path / "my_script.py"), "--fast"])
    assert command_line() == ["my_script.py", "--fast"]

    # a result written by main(argv) records argv, whatever sys.argv holds
    (tmp_path / "g.json").write_text('{"classes": ["a"], "database": {"v": {"subset": "test", "fps": 10, '
                                     '"duration": 10, "annotations": [{"label": "a", "segment": [1, 2]}]}}}')
    (tmp_path / "p.json").write_text('{"results": {"v": [{"label": "a", "segment": [1, 2], "score": 0.9}]}}')
    recorded = []
    monkeypatch.setattr("mgrec.cli.cmd_score", lambda args: recorded.append(command_line()))
    main(["score", "--gt", str(tmp_path / "g.json"), "--pred", str(tmp_path / "p.json")])
    assert recorded == [["mgrec", "score", "--gt", str(tmp_path / "g.json"), "--pred", str(tmp_path / "p.json")]]
    assert command_line() == ["my_script.py", "--fast"]  # sys.argv's again once main returns
    # what a detection file records
    from mgrec.evaluate.predictions import save_predictions
    from mgrec.provenance import invoked_as

    with invoked_as(["mgrec", "detect", "r", "v.npy", "--out", "d.json"]):
        save_predictions({}, tmp_path / "d.json")
    import json

    record = json.loads((tmp_path / "d.json").read_text())["mgrec"]["provenance"]
    assert record["command"] == "mgrec detect r v.npy --out d.json"
