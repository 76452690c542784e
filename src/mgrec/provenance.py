"""Where a result came from: one provenance record for every result file mgrec writes.

`provenance(command)` says which command ran, when, on which code (the git commit of mgrec's
source tree), on which machine, with which torch and how many threads. Every benchmark script
stores it in its result JSON under the key `PROVENANCE_KEY`; `read_provenance` reads it back,
also from result files written before the record existed (their ad-hoc fields, no commit).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import mgrec

if TYPE_CHECKING:
    import torch

PROVENANCE_KEY = "provenance"
# What benchmark campaigns write: results being written must not make the next run of the same
# campaign look like it ran on uncommitted code.
RESULTS_FOLDER = "benchmarks/results"
DIRTY = "+dirty"


def describe_machine(device: torch.device | None = None) -> str:
    """A one-line description of the machine for result files: the GPU's name for a CUDA device,
    else the CPU model (from /proc/cpuinfo where it exists), its logical CPU count and its bf16 arithmetic;
    plus the OS. The bf16 units are named because one CPU model differs by them: a Xeon whose hypervisor
    exposes AMX ran bf16 twice as fast as float32, the same model without it slower (`mgrec.devices`)."""
    import torch  # here, not above: mgrec.evaluate's metrics read files through this module and need no torch

    from mgrec.devices import amx_bf16_cpu, native_bf16_cpu

    if device is not None and torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(device)}; {platform.platform()}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    bf16 = "AMX" if amx_bf16_cpu() else "AVX512-BF16, no AMX" if native_bf16_cpu() else "emulated"
    return f"{cpu} ({os.cpu_count()} logical CPUs; bf16: {bf16}); {platform.platform()}"


def _git(folder: Path, *args: str) -> str:
    """git's output in `folder`, run as a reader only: `git status` otherwise refreshes the checkout's index, writing
    `.git/index.lock` then renaming it, and a git killed there (by SIGXFSZ under `ulimit -f`, which git does not
    ignore as Python does; by the timeout) left the lock, which stops the user's next git command."""
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=60, check=True,
                          env=environment)
    return done.stdout


def git_commit(source: Path | str | None = None) -> str | None:
    """The commit checked out where `source` (default: mgrec's own package folder) lies, with
    `DIRTY` appended when the checkout has uncommitted changes (untracked files included, what
    lies under `RESULTS_FOLDER` excluded). None when `source` is not tracked by a git checkout
    (an installed wheel, or a package copied into an ignored folder of some repository), or when
    git is not installed."""
    source = Path(source) if source is not None else Path(mgrec.__file__).resolve().parent
    try:
        if not _git(source, "ls-files", "--", ".").strip():
            return None  # not in a checkout's tracked files (git says "not a git repository" as an error)
        top = Path(_git(source, "rev-parse", "--show-toplevel").strip())
        commit = _git(top, "rev-parse", "HEAD").strip()
        changes = _git(top, "status", "--porcelain", "--", ".", f":(exclude){RESULTS_FOLDER}")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + (DIRTY if changes.strip() else "")


# The command line `mgrec.cli.main(argv)` runs, while it runs: given argv in Python, sys.argv is the caller's.
_invoked: list[str] | None = None


@contextlib.contextmanager
def invoked_as(command: list[str] | None):
    """`command_line()` is `command` inside the block (`mgrec.cli.main` given its words in Python: ["mgrec", ...]);
    None leaves it to sys.argv."""
    global _invoked
    before, _invoked = _invoked, command
    try:
        yield
    finally:
        _invoked = before


def command_line() -> list[str]:
    """The command line that is running, as a user would type it again: `mgrec detect ...`, or `python -m mgrec
    detect ...` where Python ran mgrec's package (sys.argv[0] is then the path of its `__main__.py`, which a result
    recorded as `__main__.py detect ...`), `python -m mgrec.cli ...` for that module; a script's own name otherwise."""
    if _invoked is not None:
        return list(_invoked)
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    package = Path(mgrec.__file__).resolve().parent
    try:
        inside = first.resolve().relative_to(package.parent)
    except (OSError, ValueError):
        inside = None
    if inside is not None and inside.suffix == ".py" and inside.parts[0] == package.name:
        module = ".".join(inside.with_suffix("").parts)
        return ["python", "-m", module.removesuffix(".__main__"), *argv[1:]]
    return [first.name, *argv[1:]]


def provenance(command: list[str] | str, threads: int | None = None, device: torch.device | str | None = None) -> dict:
    """The provenance record of a result: {command, date, git_commit, machine, torch, threads, mgrec}.

    `command`: the command line that produced the result (a list is joined with shell quoting);
    `threads`: torch CPU threads the measurement ran with (default: `torch.get_num_threads()` now);
    `device`: the device measured (a CUDA device is described by its GPU, anything else by the CPU).
    `date` is UTC in ISO 8601; `git_commit` as `git_commit()`."""
    import torch

    return {
        "command": command if isinstance(command, str) else shlex.join(str(part) for part in command),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": describe_machine(None if device is None else torch.device(device)),
        "torch": torch.__version__,
        "threads": torch.get_num_threads() if threads is None else int(threads),
        "mgrec": mgrec.__version__,
    }


# Result files written before the provenance record held some of its fields at the top level.
_LEGACY_FIELDS = {"command": "command", "date": "date", "machine": "machine", "torch": "torch_version",
                  "threads": "threads"}


def read_provenance(result: dict) -> dict:
    """The provenance record of a result file's JSON object: its `PROVENANCE_KEY` entry, or, for files
    written before it existed, the fields they kept at the top level (missing ones, and the commit, None)."""
    record = result.get(PROVENANCE_KEY)
    if isinstance(record, dict):
        return record
    legacy = {key: result.get(old) for key, old in _LEGACY_FIELDS.items()}
    return {**legacy, "git_commit": None, "mgrec": None}


def campaign_name(what: str, record: dict) -> str:
    """The results folder of a campaign: `YYYY-MM-DD_<short commit>_<what>` from a provenance record
    (`-dirty` after the commit when the code had uncommitted changes, `nogit` outside a checkout)."""
    commit = record.get("git_commit")
    if commit:
        short = commit[:7] + ("-dirty" if commit.endswith(DIRTY) else "")
    else:
        short = "nogit"
    return f"{str(record['date'])[:10]}_{short}_{what}"


def main(argv: list[str] | None = None) -> None:
    """`python -m mgrec.provenance WHAT` prints the campaign folder name for WHAT now (for shell scripts);
    without WHAT, the provenance record of this checkout as JSON."""
    import json
    import sys

    argv = sys.argv[1:] if argv is None else argv
    record = provenance(["python", "-m", "mgrec.provenance", *argv])
    print(campaign_name(argv[0], record) if argv else json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
