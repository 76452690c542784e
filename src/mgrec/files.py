"""Reading and writing files: strict JSON/UTF-8 reading, and atomic writing.

Reading: `read_json` parses UTF-8 JSON and turns every failure into an `InputError` naming the
file (and line:column); duplicate keys are refused.

Writing: readers see the old file or the complete new one, never half of one.

Everything mgrec writes (annotations, features, sidecars, checkpoints, predictions, scores,
reports) goes through here: a temporary file beside the target, fsync, rename over the target,
fsync of the folder. A writer killed at any moment leaves no partial file that counts as done.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from mgrec.errors import InputError


@contextlib.contextmanager
def atomic_open(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """`with atomic_open(path) as handle: handle.write(...)`; on an exception `path` is untouched."""
    path = Path(path)
    with _temporary_beside(path) as temp_name:
        mode = "wb" if binary else "w"
        with open(temp_name, mode, encoding=None if binary else "utf-8", newline=None if binary else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """For libraries that write to a file name themselves: `write(temp_name)`, then the rename."""
    path = Path(path)
    with _temporary_beside(path) as temp_name:
        write(temp_name)
        with open(temp_name, "rb+") as handle:
            os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        # mkstemp makes the file private (0600); results are meant to be shared like any file
        os.chmod(temp_name, 0o666 & ~_umask())
        yield temp_name
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_writable(path: str | Path, is_dir: bool = False) -> None:
    """Fail early, before any long work, when `path` (a file, or a folder to write into) cannot be written."""
    folder = Path(path) if is_dir else Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".mgrec-write-check.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not is_dir and Path(path).is_dir():
        raise InputError(f"cannot write {path}: it is a folder")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # The json module would keep the last of two equal keys; a duplicated video id would then
    # silently drop the first video's annotations.
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def read_json(path: str | Path, what: str) -> Any:
    """Parse a UTF-8 JSON file; every failure is an InputError naming the file (and line:column)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file: {exc.strerror}") from None
    text = decode_utf8(path, data)
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}:{exc.colno}: {what} file is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{path}: {what} file nests JSON too deeply to be a {what} file") from None
    except _DuplicateKey as exc:
        raise InputError(
            f"{path}: key {exc.args[0]!r} appears twice in one JSON object; the second would silently "
            "replace the first"
        ) from None


def decode_utf8(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # tolerate a byte-order mark written by some editors
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def is_number(value: Any) -> bool:
    """An int or float that fits a float (JSON allows integers of any size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True
