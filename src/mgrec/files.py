"""Reading and writing files: strict JSON/UTF-8 reading, safe output names, and atomic writing.

Reading: `read_json` parses UTF-8 JSON and turns every failure into an `InputError` naming the
file (and line:column); duplicate keys are refused.

Output names: `safe_child(folder, name)` is the one guard for every path built from data (a video
id, a class name): `name` must be one plain file name, so nothing is written or read outside
`folder` (no `..`, no absolute path, no separator, no NUL).

Writing: readers see the old file or the complete new one, never half of one.

Everything mgrec writes (annotations, features, sidecars, checkpoints, predictions, scores,
reports) goes through here: a temporary file beside the target, fsync, rename over the target,
fsync of the folder. A writer killed at any moment leaves no partial file that counts as done.
An output that is a symbolic link is written through it (its target is replaced, the link stays);
one that is not a file at all (a named pipe, a device) is written into as it is, since there is nothing
to replace, and a rename would put a plain file in its place. One that names this process's own descriptor
(`/dev/stdout`, `/dev/fd/N`) is written through that descriptor, whatever the shell connected to it: a pipe,
a terminal, or a file it opened (`> out.json`, `>> log`: appended at its offset, never replaced).
Every output gets the same permissions (0666 less the umask: 0644 under the usual 022), and every
failure to write (read-only or full disk, a folder in the way, ...) is one `InputError` line naming
the path and the cause.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import glob
import hashlib
import json
import math
import numbers
import os
import re
import reprlib
import shlex
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from mgrec import terminal
from mgrec.errors import InputError, OutputError

# What one path component may be at most on the usual file systems (ext4, APFS, NTFS: 255).
MAX_NAME_BYTES = 255


def counted(count: int, noun: str) -> str:
    """`count` and `noun`, plural but for one: "1 video", "3 videos", "3 classes" (-es after s, x, sh, tch)."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'sh', 'tch')) else 's'}"


def part_of(part: int, whole: int, noun: str) -> str:
    """`part` of the `whole` things `noun` counts: "2 of the 3 videos", and "the one video" where there is one
    ("1 of the 1 videos" was said); the caller's verb agrees with `part`."""
    if whole == 1 and part == 1:
        return f"the one {noun}"
    return f"{part} of the {counted(whole, noun)}"


class StoppedIn:
    """Which of a command's several videos its work is in, for the words an interruption there ends with.

    Ctrl-C (or SIGTERM) in `detect`, `extract` or `evaluate` of 40 videos said "mgrec: interrupted" alone: not which
    video it stopped in, how many were finished, nor what became of their outputs. A context manager around the
    loop, `at(video)` at the start of each (those before it are finished, or failed and said so): an interruption
    (KeyboardInterrupt, the CLI's Terminated) leaves with those words as its message, its type kept ("mgrec:
    interrupted; stopped in video ..."); an error other than InputError (which names its file) carries a note naming
    the video, shown with its traceback; an output that could not be written (`OutputError`: a folder made read-only
    mid-way, a full disk) ends its message with those words. `kept(done)` says where the finished videos' outputs
    are, or that none is written yet (`done` is `total` once the loop is over).

    `each(items)` is the loop that tells it of each item and of the loop's end: work after the loop (failures listed,
    results returned) was "stopped in video LAST (N of N)", its outputs called unfinished; after it, the words say
    every one was done. Before the first item nothing is said of videos (a backbone loading is in none of them)."""

    def __init__(self, unit: str, total: int, kept: Callable[[int], str]) -> None:
        self.unit, self.total, self.kept = unit, total, kept
        self.current: str | None = None
        self.position = 0  # of the current one, from 1
        self.over = False  # `each`'s loop ended: every one was done

    def at(self, name: object) -> None:
        self.current, self.position = str(name), self.position + 1

    def each(self, items: Iterable[Any], name: Callable[[Any], object] = lambda item: item) -> Iterator[Any]:
        """`items`, each announced (`at(name(item))`) as the loop takes it, and the end of the loop recorded."""
        for item in items:
            self.at(name(item))
            yield item
        self.over = True

    def words(self) -> str:
        if self.over:
            done = f"the one {self.unit} was" if self.total == 1 else f"all {counted(self.total, self.unit)} were"
            return f"stopped after the last {self.unit}: {done} done; {self.kept(self.total)}"
        done = self.position - 1
        return (f"stopped in {self.unit} {self.current!r} ({self.position} of {self.total}: {done} finished before "
                f"it): {self.kept(done)}")

    def __enter__(self) -> StoppedIn:
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None or self.current is None:
            return False
        if isinstance(exc, OutputError):
            # A write that failed mid-batch (a folder made read-only, a full disk) said its file alone, "cannot write
            # OUT/.mgrec-incomplete: Permission denied": not what the finished videos left, nor that the same command
            # goes on from there. Said once: an outer loop's words would only repeat them.
            if not getattr(exc, "stopped_in_said", False):
                exc.args = (f"{exc}; {self.words()} (once the output can be written)",)
                exc.stopped_in_said = True
        elif isinstance(exc, Exception):
            if not isinstance(exc, InputError) and not self.over:  # after the loop the error is no video's
                exc.add_note(f"mgrec: in {self.unit} {self.current!r} ({self.position} of {self.total})")
        elif isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "Terminated":
            # `cli.Terminated` (SIGTERM) is named, not imported: the command layer sits above this one. Words
            # given already (an inner loop's, a command's own) are kept: they are nearer the work.
            if not str(exc):
                exc.args = (self.words(),)
        return False  # raised on, as it was


def brief(value: object, limit: int = 80) -> str:
    """`repr(value)`, cut to about `limit` characters, for values quoted in error messages.

    A message must stay one short line whatever the input holds (a 10 MB name, a million keys, a YAML
    alias bomb whose full repr would be gigabytes: containers are shown a few items and levels deep);
    the repr also escapes newlines, terminal escape sequences and bidi overrides, so a hostile name
    cannot rewrite the user's terminal."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = _BOUNDED_REPR.repr(value) if isinstance(value, (list, tuple, dict, set)) else repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text)} characters)"
    return text


def home_expanded(text: str) -> str:
    """`text` with a leading `~` or `~user` made that home folder, as the shell does for an unquoted word and the
    config files do for their paths: a quoted `--out '~/runs/x'` (from a script, an env file, a Makefile variable)
    made a folder named `~` in the current folder. A `~` elsewhere in the word (`a~b`, `x/~`) is kept; a `~user` of
    no user on this machine is refused, naming it. Kept as a string: a trailing '/' that says "folder" stays."""
    if not text.startswith("~"):
        return text
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        user = text[1:].split("/", 1)[0]
        if not user:  # `~` alone: "no user ''" named no problem; this user's home is unknown, not a user missing
            raise InputError(
                f"{text}: the home folder ~ names is not known here (HOME is not set, and user id {os.getuid()} has "
                f"no entry in the password database); set HOME, write the full path, or, for a folder named ~ in the "
                f"current folder, write ./{text}")
        raise InputError(
            f"{text}: no user {user!r} on this machine, whose home folder ~{user} would name; for a folder named "
            f"{text.split('/', 1)[0]} in the current folder, write ./{text}")
    return expanded


def path_argument(value: object, name: str) -> Path:
    """A path given to a Python entry point (`load_annotations`, `load_config`, ...) as a Path. Anything else was a
    raw `TypeError` from pathlib naming neither the argument nor the function: None, a number, bytes, the file's
    contents (a dict) or a list of paths, refused here by the argument's name. A leading `~` is the home folder, as
    on the command line (`home_expanded`): Python leaves it alone, so `train(config, "~/runs/x")` trained into, and
    `save_predictions(..., "~/x.json")` wrote, a folder named `~` in the current folder, and the readers said "not
    found" of a file that is there. Only a str is expanded: a pathlib.Path is the path it names, as pathlib reads it."""
    if isinstance(value, str):
        try:
            return Path(home_expanded(value))
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        # a Path is taken as it is, as pathlib takes it: it is what the CLI, a folder's listing or the caller's own
        # code made, and `Path("./~x")` is `~x`, so a file named `~x` (listed in a folder, or given as ./~x) was read
        # as user x's home folder, and a folder named `~` as this user's
        return Path(value)
    hint = (": the file's path, not its contents" if isinstance(value, dict) else
            ": one path, not a list" if isinstance(value, (list, tuple)) else
            ": decode it (bytes.decode())" if isinstance(value, bytes) else "")
    raise InputError(f"{name}: expected a path (str or pathlib.Path), got {brief(value, 60)}"
                     f"{hint}")


def bool_argument(value: object, name: str, optional: bool = False) -> None:
    """A switch given to a Python entry point (`train`'s resume, `OnlineDetector`'s compile, `stream_file`'s realtime),
    True or False (or None, where `optional`): a str is a true value, so resume="no" resumed and compile="no"
    compiled."""
    if not isinstance(value, bool) and not (optional and value is None):
        raise InputError(f"{name}: expected True or False{' (or None)' * optional}, got {brief(value)}")


def callable_argument(value: object, name: str, optional: bool = False) -> None:
    """A callable given to a Python entry point for its lines or records (`train`'s log, `score_file`'s note,
    `make_ensemble`'s log), refused by the argument's name (None too, where `optional`). Unchecked, log="x" was a raw
    `TypeError: 'str' object is not callable` at the first line, after the work had begun (or never, when nothing was
    said)."""
    if not callable(value) and not (optional and value is None):
        raise InputError(f"{name}: expected a callable (print, lambda line: None, a list's append)"
                         f"{' or None' * optional}, got {brief(value)}")


# Containers in messages: a few items and levels, never the whole structure.
_BOUNDED_REPR = reprlib.Repr()
_BOUNDED_REPR.maxlevel, _BOUNDED_REPR.maxlist, _BOUNDED_REPR.maxtuple, _BOUNDED_REPR.maxdict = 3, 6, 6, 6
_BOUNDED_REPR.maxset, _BOUNDED_REPR.maxstring, _BOUNDED_REPR.maxother, _BOUNDED_REPR.maxlong = 6, 60, 60, 40


def safe_child(folder: str | Path, name: str, what: str = "name") -> Path:
    """`folder / name`, refused (`InputError`) unless `name` is one plain file name.

    The one guard for paths built from data (video ids, class names): refused are the empty name,
    `.` and `..`, names holding a path separator (`/`, or `\\` which is one on Windows), a drive
    (`C:`), a NUL character, and names over 255 bytes. The path therefore always lies directly
    inside `folder`. `what` says what the name is, for the message (e.g. "video id").
    """
    if not isinstance(name, str):
        raise InputError(f"{what} {brief(name)}: expected a text name")
    problem = file_name_problem(name)
    if problem:
        raise InputError(f"{what} {brief(name)} {problem}; it must be a plain file name inside {folder}")
    return Path(folder) / name


def file_name_problem(name: str) -> str | None:
    """Why `name` is not one plain file name (`safe_child`'s rule), or None."""
    if name in ("", ".", ".."):
        return "is not a file name" if name else "is empty"
    if "\0" in name:
        return "contains a NUL character"
    if "/" in name or "\\" in name:
        return "contains a path separator (it would name a file in another folder)"
    if re.match(r"[A-Za-z]:", name):  # C:x is C:'s current folder on Windows
        return "starts with a drive (it would name a file in another folder)"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


def folded_name(name: str) -> str:
    """A file name as the file systems that do not tell case apart see it: macOS's (APFS, HFS+, which also take a name
    in NFC and in NFD for one: Finder writes NFD), Windows's (NTFS) and USB disks' (FAT, exFAT). Two output names of one
    key are one file there, the second written replacing the first."""
    return unicodedata.normalize("NFC", name).casefold()


# Names Windows keeps for its devices, whatever their ending (`CON.npy`, `nul.srt` cannot be files there), and the
# characters its file names cannot hold; a name may not end in a dot or a space either (Windows drops them).
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(port + n for port in ("com", "lpt") for n in "123456789")})
_WINDOWS_REFUSED = re.compile(r'[<>:"|?*\x00-\x1f]')
ONE_NAME_ELSEWHERE = "one name where case and Unicode normalisation are not told apart (macOS, Windows, FAT, exFAT)"


def windows_name_problem(name: str) -> str | None:
    """Why Windows (NTFS, and FAT and exFAT disks anywhere) cannot hold a file `name` that Linux and macOS write, or
    None."""
    device = name.split(".")[0].rstrip(" ")
    if device.casefold() in _WINDOWS_DEVICES:
        return f"{device!r} is the name of a device on Windows"
    refused = _WINDOWS_REFUSED.search(name)
    if refused:
        return f"{refused.group()!r} cannot be in a file name on Windows"
    if name.endswith((".", " ")):
        return "Windows drops the dot or space at its end"
    return None


def check_output_names(outputs: Iterable[tuple[str, Path]], what: str) -> None:
    """The one check of the files (or folders) written per video, named by its id (`outputs`: (video id, path) pairs;
    `what`: what they are, for the messages), before any is written. Refused (`InputError`): a name that is not a
    plain file name (`file_name_problem`: over `MAX_NAME_BYTES`, every common file system's limit, ext4's too), and
    two names that are one file where case and
    Unicode normalisation are not told apart (`folded_name`: `S01.npy` and `s01.npy`), of two videos or of a video
    and a file already in its folder: written on macOS or Windows the second replaces the first (or is taken for it
    done), and a folder written on Linux loses a video when it is copied there. A name that only Windows cannot hold
    (`CON.npy`, `a?b.srt`) is written, with one warning naming it: Linux and macOS keep it, and refusing it would
    refuse data that never leaves them."""
    outputs = list(outputs)
    for video, path in outputs:
        problem = file_name_problem(path.name)  # over 255 bytes, or a drive (`a:b`, which every reader refuses)
        if problem:
            raise InputError(f"{brief(str(path))}: the name of the {what} of video {brief(video)} {problem}; rename "
                             "the video")
    for (video, path), (other, other_path) in alike_output_names(outputs):
        if other is not None:
            raise InputError(f"{path.parent}: the {what} of videos {two_alike_names(other, video)} would be "
                             f"{two_alike_names(other_path.name, path.name)}, {ONE_NAME_ELSEWHERE}: there the second "
                             "replaces the first; rename one of the videos, or write them into separate folders (one "
                             "call each)")
        raise InputError(f"{other_path}: already there, where the {what} of video {brief(video)} would be "
                         f"{path.name}: {two_alike_names(other_path.name, path.name)} are {ONE_NAME_ELSEWHERE}, and "
                         "one replaces the other there; rename the video or that file, or write into another folder")
    hazards: dict[str, tuple[Path, str]] = {}  # a video's first name that Windows cannot hold, and why
    for video, path in outputs:
        if video not in hazards and (problem := windows_name_problem(path.name)):
            hazards[video] = path, problem
    if hazards:
        shown = "; ".join(f"{path.name}: {problem}" for path, problem in list(hazards.values())[:3])
        more = f"; and {len(hazards) - 3} more" if len(hazards) > 3 else ""
        videos = len({video for video, _ in outputs})
        print(terminal.visible(f"warning: the {what} of {part_of(len(hazards), videos, 'video')} in "
                               f"{next(iter(hazards.values()))[0].parent} cannot be copied to Windows nor to a FAT or "
                               f"exFAT disk ({shown}{more}); rename those videos to share their files"),
              file=sys.stderr)


def alike_output_names(outputs: list[tuple[str, Path]]) -> Iterator[tuple[tuple[str, Path], tuple[str | None, Path]]]:
    """Each of `outputs` ((video id, path) pairs) whose name is one, where case and Unicode normalisation are not told
    apart (`folded_name`), with an earlier output's of another video (paired with that video and path), or with a file
    already in its folder that no output is named as (paired with None and that file): the rule of
    `check_output_names`, and of `mgrec data check` for the feature files there already."""
    first: dict[tuple[Path, str], tuple[str, Path]] = {}
    listings: dict[Path, dict[str, list[str]]] = {}
    # a file named as an output is that output's (written before, or by another video of these: said as that pair)
    named = {(path.parent, path.name) for _, path in outputs}
    for video, path in outputs:
        key = folded_name(path.name)
        other, other_path = first.setdefault((path.parent, key), (video, path))
        if other != video:
            yield (video, path), (other, other_path)
            continue
        if path.parent not in listings:
            listings[path.parent] = {}
            with contextlib.suppress(OSError):  # a folder not made yet holds nothing
                for entry in os.scandir(path.parent):
                    listings[path.parent].setdefault(folded_name(entry.name), []).append(entry.name)
        alike = [name for name in listings[path.parent].get(key, [])
                 if name != path.name and (path.parent, name) not in named]
        if alike:
            yield (video, path), (None, path.parent / alike[0])


def alike_video_ids(video_ids: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Each of `video_ids` that is one name with an earlier one where case and Unicode normalisation are not told
    apart (`folded_name`), paired with that one: the ids whose files `check_output_names` refuses side by side
    whatever they are (`<id>.npy`, `<id>/`, `<id>.srt`: an ASCII ending folds alike after both), said before any of
    them is written (`mgrec data check` end to end, `mgrec data convert`)."""
    first: dict[str, str] = {}
    for video_id in video_ids:
        other = first.setdefault(folded_name(video_id), video_id)
        if other != video_id:
            yield video_id, other


def two_alike_names(name: str, other: str) -> str:
    """Two names that fold alike (`folded_name`), for a message, quoted: escaped (`ascii`) where they differ in more
    than case, as a name in NFC and the same in NFD print alike."""
    if name.casefold() == other.casefold():
        return f"{brief(name)} and {brief(other)}"
    return f"{ascii(name)} and {ascii(other)}"


def name_too_long_problem(path: str | Path) -> str:
    """Why the system refuses `path` as too long ("File name too long"): the part of it over `MAX_NAME_BYTES` (a file or
    folder name), or the whole path over the system's limit on a path."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    for part in Path(text).parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            return (f"{brief(text)}: its part {brief(part)} is {size} bytes, longer than the {MAX_NAME_BYTES} bytes a "
                    "file or folder name may have; give a shorter name")
    size = len(text.encode("utf-8", "surrogateescape"))
    return f"{brief(text)}: the path is {size} bytes, longer than the system takes; give a shorter path"


def shell_word(value: object) -> str:
    """`value` as one word of a command line a message tells the user to run (quoted where it holds a space, a quote,
    ...: `mgrec evaluate 'my runs/a'`, which pasted unquoted was two arguments)."""
    return shlex.quote(str(value))


def not_utf8_part(path: str | Path) -> str | None:
    """The first part of `path` (made absolute: the current folder's name counts) whose name is not UTF-8 text (bytes
    of another encoding, which Python holds as lone surrogates, `\\udcff`), shown with that byte; None where every
    part is text."""
    for part in Path(os.path.abspath(path)).parts:
        try:
            part.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{brief(part)} (byte 0x{ord(part[exc.start]) - 0xDC00:02x})"
    return None


def resolve_path(path: str | Path) -> Path:
    """`Path(path).resolve()` of a path the user gave, with a symbolic-link loop (`ln -s L L`, or a -> b -> a,
    anywhere along the path) an `InputError` naming the path: Python 3.11 raises RuntimeError("Symlink loop")
    for one even when not strict, and later versions an OSError (ELOOP). Every `.resolve()` of a user's path
    goes through here."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as exc:
        loop = exc.errno == errno.ELOOP if isinstance(exc, OSError) else "loop" in str(exc).lower()
        if not loop:
            if isinstance(exc, OSError):  # e.g. another process's /proc/<pid>/fd/1: permission denied
                raise InputError(f"cannot follow {path}: {exc.strerror or exc}") from None
            raise
        raise InputError(f"{path} is a symbolic link loop (following its links leads back to them, never to a "
                         "file or folder); replace the link") from None


def output_target(path: str | Path) -> Path:
    """Where an output named `path` is written: the target of a symbolic link (the link stays a link). A link whose
    target's folder is missing is an `InputError` naming the link and its target: every writer goes through here."""
    path = Path(path)
    if not path.is_symlink():
        return path
    target = resolve_path(path)  # a link loop would otherwise be replaced by a plain file at the rename
    # Written through as the shell's `>` writes through a link: into the target's folder, never making it. The writers
    # made it, so a link onto a drive not mounted (or into a project moved away) put the output in a new folder
    # where nobody looks, as the folders of an output are refused when one of them is such a link
    # (`refuse_a_dangling_link_among`)
    if not target.parent.is_dir():
        state = "is not a folder" if target.parent.exists() else "does not exist"
        raise InputError(f"cannot write {path}: it is a symbolic link to {os.readlink(path)}, whose folder "
                         f"{target.parent} {state}; make that folder, or choose another output")
    return target


# Names of this process's own open descriptors: /dev/stdout, /dev/fd/3, /proc/self/fd/1, /proc/<pid>/fd/1.
_DESCRIPTOR_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_DESCRIPTOR_PATTERN = re.compile(r"/(?:dev/fd|proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd)/(\d{1,9})")
_MAX_LINK_HOPS = 40  # as the kernel's own limit on a chain of symbolic links


def descriptor_named(path: str | Path) -> int | None:
    """The open file descriptor `path` names, or None: `/dev/stdout` is 1, `/dev/fd/N` and `/proc/self/fd/N`
    are N, and so is a symbolic link (or a chain of them) leading to such a name, however spelled (`//dev/stdout`,
    `fdlink/1` where fdlink is a link to /dev/fd).
    Such an output is whatever the shell connected: a pipe, a terminal, or a file opened for writing or appending
    (`> f`, `>> f`), which must be written through the descriptor at its offset, not reopened (truncating what
    `>>` keeps) nor replaced by a new file. Following the links to their end would not do: the end of
    /proc/self/fd/1 is `pipe:[N]` or the file itself."""
    text = str(path)
    for _ in range(_MAX_LINK_HOPS):
        # the folder resolved (a link to /dev/fd, `//dev`), the last name kept: /dev/stdout itself is a link
        folder, name = os.path.split(text if text.startswith("/") else os.path.join(os.getcwd(), text))
        text = os.path.join(os.path.realpath(folder), name)
        if text in _DESCRIPTOR_NAMES:
            return _DESCRIPTOR_NAMES[text]
        match = _DESCRIPTOR_PATTERN.fullmatch(text)
        if match is not None:
            own = not text.startswith("/proc/") or text.split("/")[2] in ("self", "thread-self", str(os.getpid()))
            return int(match.group(1)) if own else None
        try:
            target = os.readlink(text)
        except OSError:  # not a link (or not there): a plain path
            return None
        text = os.path.join(os.path.dirname(text), target)
    return None


def check_descriptor_writable(path: str | Path, fd: int) -> None:
    """`InputError` unless descriptor `fd` (which `path` names) is open for writing: closed (`>&-`) or opened
    for reading (`1</dev/null`) is refused before any work, not after it."""
    import fcntl

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise cannot_write(Path(path), exc) from None
    if flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
        raise InputError(f"cannot write {path}: descriptor {fd} is open for reading only")


def is_stream(path: str | Path) -> bool:
    """True when `path` names one of this process's descriptors (`descriptor_named`), or (it, or what a link
    there points to) exists and is neither a file nor a folder: a named pipe, a device, a socket."""
    if descriptor_named(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not_a_file(mode) is not None


@contextlib.contextmanager
def _descriptor_handle(path: str | Path, fd: int, binary: bool) -> Iterator[IO]:
    """A handle writing into descriptor `fd` (a duplicate: closing it leaves `fd` open), after whatever Python
    still buffers for stdout and stderr, so the lines stay in order."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        duplicate = os.dup(fd)
    except OSError as exc:
        raise cannot_write(Path(path), exc) from None
    handle = open(duplicate, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""}))
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise cannot_write(Path(path), exc) from None


def mgrec_cache(name: str) -> Path:
    """mgrec's cache folder `name`: under `$MGREC_CACHE` when it is set, else under `~/.cache/mgrec` (the demo's data,
    onnxruntime's graphs of EfficientNet-Lite0)."""
    base = os.environ.get("MGREC_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "mgrec") / name


@contextlib.contextmanager
def atomic_open(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """`with atomic_open(path) as handle: handle.write(...)`; on an exception `path` is untouched
    (a pipe or device is written into directly: see the module docstring)."""
    fd = descriptor_named(path)
    if fd is not None:
        with _descriptor_handle(path, fd, binary) as handle:
            yield handle
        return
    path = output_target(path)
    mode = "wb" if binary else "w"
    text = {} if binary else {"encoding": "utf-8", "newline": ""}
    if is_stream(path):
        try:
            with open(path, mode, **text) as handle:
                yield handle
        except OSError as exc:
            raise cannot_write(path, exc) from None
        return
    with _temporary_beside(path) as temp_name:
        with open(temp_name, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """For libraries that write to a file name themselves: `write(temp_name)`, then the rename (a pipe or
    device: `write(path)`; one of this process's descriptors: `write` into a temporary folder, then copied
    into the descriptor)."""
    fd = descriptor_named(path)
    if fd is not None:
        with tempfile.TemporaryDirectory(prefix="mgrec-out-") as folder:
            temp_name = os.path.join(folder, Path(path).name)
            write(temp_name)
            with open(temp_name, "rb") as source, _descriptor_handle(path, fd, binary=True) as target:
                shutil.copyfileobj(source, target)
        return
    path = output_target(path)
    if is_stream(path):
        try:
            write(str(path))
        except OSError as exc:
            raise cannot_write(path, exc) from None
        return
    with _temporary_beside(path) as temp_name:
        try:
            write(temp_name)
        except (OSError, InputError):
            raise
        except Exception as exc:
            # Libraries report a failed write in their own words (torch.save: "unexpected pos 576 vs 534";
            # safetensors: "I/O error: Disk quota exceeded (os error 122)"): their errno where they give it, else
            # ask the file system, before the temporary file is removed and frees its space again.
            code = _library_write_errno(exc, temp_name, path.parent)
            if code is not None:
                raise OSError(code, os.strerror(code)) from None
            raise
        with open(temp_name, "rb+") as handle:
            os.fsync(handle.fileno())


_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors) quote an errno


def _library_write_errno(exc: Exception, temp_name: str, folder: Path) -> int | None:
    """The errno behind a library's failed write into `temp_name`: the one its message quotes, else the one a
    write of 1 MiB more at the file's end meets (a full disk, a quota, a file-size limit: torch.save says only
    "unexpected pos"), else ENOSPC where the file system is full; None for a failure that is no write's. The quoted
    errno is trusted as the write's; a failure of another kind (a pickling TypeError) costs the 1-MiB probe first."""
    quoted = _OS_ERROR.search(str(exc))
    if quoted is not None:
        return int(quoted.group(1))
    if "No space left on device" in str(exc):
        return errno.ENOSPC
    try:
        with open(temp_name, "ab") as handle:
            handle.write(bytes(1 << 20))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as probe:
        return probe.errno
    return errno.ENOSPC if _disk_full(folder) else None


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def atomic_copy(source: str | Path, destination: str | Path) -> None:
    """A copy of the file `source` at `destination` (its mode and times kept, then the mode of every output), written
    as every output is: whole or not at all. `shutil.copy2` straight into the destination left the bytes copied so far
    where a full disk or a file-size limit stopped it (a member's weights cut at 2 MB inside `mgrec ensemble`'s
    folder, under the member's own run.json), and said so in a raw traceback."""
    try:
        with open(source, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
    atomic_write(destination, lambda temp: shutil.copy2(source, temp))


def append_text(path: str | Path, text: str) -> None:
    """`text` added at the end of the file `path` (a log of one JSON object a line: `metrics.jsonl`), all of it or
    none: a write that fails part-way (a full disk, a quota, a file-size limit) is cut back to where the file ended, and
    is one `InputError` naming the file and the cause. A plain `open(path, "a").write(...)` left the part of the line
    written so far (which every reader of the log then refused as not JSON) and a raw traceback."""
    path = Path(path)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = 0
            while written < len(data):  # a write may take part of the bytes (up to a file-size limit), then fail
                written += os.write(fd, data[written:])
        except OSError as exc:
            error = cannot_write(path, exc)  # before the cut, which frees the space a full disk would be asked for
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)
            raise error from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def set_aside(path: str | Path, unless_changed: str | Path) -> Iterator[None]:
    """The file `path` moved out of the way (to a temporary name beside it, `.NAME.<pid>.aside.tmp`) for the block,
    then removed; where the block fails and the file `unless_changed` is still the one it was before the block,
    `path` is put back. For a pair of files where one describes the other (a feature file's sidecar): the description
    is gone while the file it describes is replaced, and comes back where the replacement failed (a full disk: the
    file is as it was). Removing it at once lost the description of a file still whole (the rows an extraction saved,
    untrusted without it). A writer killed in the block leaves no description; its temporary name goes as every killed
    writer's does. The put back is a rename: it needs no space on a full disk."""
    path = Path(path)
    aside = path.with_name(f"{_temporary_prefix(path)}{os.getpid()}.aside.tmp")
    before = _identity(unless_changed)
    try:
        os.replace(path, aside)
        moved = True
    except FileNotFoundError:
        moved = False
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        yield
    except BaseException:
        if moved and before is not None and _identity(unless_changed) == before:
            with contextlib.suppress(OSError):
                os.replace(aside, path)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(aside)


def _identity(path: str | Path) -> tuple | None:
    """Which file `path` is now, and as of when (device, inode, size, modification time), or None where none is."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def atomic_create_text(path: str | Path, text: str) -> None:
    """`atomic_write_text` for a file that must not exist yet: FileExistsError where it does (of two writers, one
    wins), and a writer killed at any moment leaves no file or the whole one. Opening with "x" and then writing left
    an empty file where the writer was killed between the two, which readers could not tell from a stranger's."""
    with _temporary_beside(output_target(path), exclusive=True) as temp_name:
        with open(temp_name, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def _temporary_beside(path: Path, exclusive: bool = False) -> Iterator[str]:
    """A temporary file's name beside `path`, put in its place when the block ends without an exception (`exclusive`:
    linked there, FileExistsError where `path` exists; else renamed over it)."""
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_temporaries(path)
        # The writer's pid is in the name: a later writer of the same file removes what a killed one left.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{_temporary_prefix(path)}{os.getpid()}.",
                                         suffix=".tmp")
    except OSError as exc:
        raise cannot_write(path, exc) from None
    os.close(fd)
    try:
        yield temp_name
        # The mode is set after the writer is done, not at creation: mkstemp makes the file private
        # (0600), and so do writers that replace the file by a new one of their own (safetensors),
        # while outputs are meant to be shared like any file the user creates.
        os.chmod(temp_name, 0o666 & ~_umask())
        if exclusive:  # a link fails where the name exists, as a rename does not; the temporary name then goes
            os.link(temp_name, path)
            os.unlink(temp_name)
        else:
            os.replace(temp_name, path)
        _fsync_folder(path.parent)
    except BaseException as exc:
        # The message first: it may ask whether the disk is full, which removing the file would change.
        error = cannot_write(path, exc) if isinstance(exc, OSError) and not (
            exclusive and isinstance(exc, FileExistsError)) else None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        if error is not None:
            raise error from None
        raise


def _temporary_prefix(path: Path) -> str:
    """The start of the names of `path`'s temporary files: `.NAME.`, or, where NAME is so long that the
    temporary name (dots, pid, random part, `.tmp`: about 25 bytes more; 42 allowed) would pass the 255-byte
    limit of one name, `.` and a digest of NAME: an output whose own name fits must never fail at its temporary
    file."""
    if len(path.name.encode("utf-8", "surrogateescape")) + 42 <= MAX_NAME_BYTES:
        return f".{path.name}."
    digest = hashlib.sha256(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f".mgrec-{digest}."


def _remove_abandoned_temporaries(path: Path) -> None:
    """Temporary files of earlier writers of `path` whose process is gone (killed mid-write): never
    read, never complete, only clutter beside the output."""
    for candidate in path.parent.glob(f"{glob.escape(_temporary_prefix(path))}*.tmp"):
        if _writer_is_gone(candidate):
            with contextlib.suppress(OSError):
                candidate.unlink()


# `_temporary_beside`'s names: `.NAME.<pid>.<mkstemp's letters>.tmp`, or `.mgrec-<digest>.<pid>...` for a long NAME
# (DOTALL: a NAME may hold any character but '/')
_TEMPORARY_NAME = re.compile(r"\..*\.([0-9]+)\.[A-Za-z0-9_]+\.tmp", re.DOTALL)


def remove_dead_writers_temporaries(folder: Path) -> None:
    """Every temporary file in `folder` whose writer is gone; those of writers still at work stay (a resumed
    training cleaning its run removed the file an `evaluate` was writing there). A writer is judged on this
    machine: one on another host sharing the folder reads as gone."""
    for candidate in folder.glob(".*.tmp"):
        if _writer_is_gone(candidate):
            with contextlib.suppress(OSError):
                candidate.unlink()


def _writer_is_gone(temporary: Path) -> bool:
    """Whether the process that named `temporary` (`_TEMPORARY_NAME`) no longer runs; False for another name."""
    found = _TEMPORARY_NAME.fullmatch(temporary.name)
    return found is not None and not _process_alive(int(found.group(1)))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # exists, owned by someone else; or a number no pid is: not ours to judge
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _disk_full(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except (OSError, AttributeError):  # AttributeError: no statvfs on Windows
        return False


_CAUSES = {
    errno.EISDIR: "it is a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",  # mkdir(parents) under a file
}


def cannot_write(path: str | Path, exc: OSError) -> OutputError:
    """One line naming the path and the cause ("No space left on device", "Read-only file system", ...)."""
    cause = _CAUSES.get(exc.errno) or exc.strerror
    if cause is None:
        # An OSError without errno: numpy's short write ("200000 requested and 65504 written").
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        cause = os.strerror(errno.ENOSPC) if _disk_full(folder) else brief(str(exc))
    return OutputError(f"cannot write {path}: {cause}")


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks by hashlib (a results file of a long split is tens of MB, a
    checkpoint several GB)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_output(out: str | Path, reads: Iterable[str | Path] = (), protected: Iterable[str | Path] = (),
                 replaces: Iterable[str | Path] = (), option: str = "--out") -> None:
    """The one guard of every command's output, called before any work.

    `out` (a file, or a folder and what lies in it) must not be, or hold, a file the command reads
    (`reads`: files, or folders whose existing files are all read) or a file no command may replace
    (`protected`: e.g. the command's own run's files, `mgrec.run.RunDir.owned_files`; the files of every
    run `out` lies in are always protected, but for the outputs this command rewrites, `replaces`). Inside
    a folder that is read, only a new file may be written. `option`: how the command line names `out`."""
    from mgrec.run import files_of_runs_around, refuse_a_stranger_among_members  # mgrec.run builds on this module

    refuse_a_stranger_among_members(out, option)
    target = resolve_path(out)
    rewritten = {resolve_path(path) for path in replaces}
    protected = [path for path in (*protected, *files_of_runs_around(target)) if resolve_path(path) not in rewritten]
    for kind, paths in (("reads", reads), ("protected", protected)):
        for path in paths:
            path = resolve_path(path)
            overwrites = path == target or target in path.parents
            if kind == "reads" and path.is_dir() and path in target.parents and target.exists():
                overwrites = True  # an existing file inside a folder the command reads
            if overwrites:
                why = "this command reads it" if kind == "reads" else "it belongs to a trained run"
                shown = target if path in target.parents else path
                raise InputError(f"{option} {out} would overwrite {shown} ({why}); choose another output")


def check_writable(path: str | Path, is_dir: bool = False) -> None:
    """Fail early, before any long work, when `path` (a file, or a folder to write into) cannot be written.

    Probes with a real one-byte write and fsync, so that a full disk is found now, not after the work.
    """
    shown = path
    if str(path) == "-":  # the Unix habit for standard output; written as it is, it made a file named "-"
        name = "a folder name" if is_dir else "a file name, or /dev/stdout for standard output"
        raise InputError(f"cannot write -: mgrec does not take '-' for standard output; give {name} "
                         "(one named '-' by its full path)")
    fd = descriptor_named(path)
    if fd is not None:  # written through the open descriptor
        if is_dir:
            raise InputError(f"cannot write into {shown}: it names an open descriptor (standard output?), not a "
                             "folder")
        check_descriptor_writable(path, fd)
        return
    resolve_path(path)  # a symbolic link loop is named as one, not by the error the probe would meet in it
    if not is_dir and isinstance(path, str) and path.endswith(("/", os.sep)):
        raise InputError(f"cannot write {shown}: it ends with '/', so it names a folder; give a file name")
    path = Path(path) if is_dir else output_target(path)
    if not is_dir and is_stream(path):  # a pipe or device: written into, nothing is created beside it
        if not os.access(path, os.W_OK):
            raise InputError(f"cannot write {shown}: {os.strerror(errno.EACCES)}")
        return
    if is_dir and path.exists() and not path.is_dir():
        raise InputError(f"cannot write into {shown}: it is a file, not a folder")
    if not is_dir and path.is_dir():
        raise InputError(f"cannot write {shown}: it is a folder")
    folder = path if is_dir else path.parent
    # The folders the probe makes are removed after it (the writers make them again): a command refused after
    # this check, before its first output, leaves nothing behind.
    created = [folder, *folder.parents]
    created = created[: next((i for i, f in enumerate(created) if f.exists()), len(created))]
    refuse_a_dangling_link_among(created, shown)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".mgrec-write-check.")
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise cannot_write(shown, exc) from None
    finally:
        for made in created:  # deepest first
            with contextlib.suppress(OSError):
                made.rmdir()


def _umask() -> int:
    # Linux shows the umask in /proc without changing it; os.umask can only read it by setting it,
    # which would briefly give every other thread's new files the wrong mode.
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _DuplicateKey(Exception):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # The json module would keep the last of two equal keys; a duplicated video id would then
    # silently drop the first video's annotations. Called for every object of a document (a million detections of
    # a ranked list): the dict is built at C speed, and only an object that lost a key to a repeat is walked, to
    # name the first key met twice (`_reject_duplicate_keys_reference`, the plain loop, says the same)
    result = dict(pairs)
    if len(result) != len(pairs):
        _reject_duplicate_keys_reference(pairs)
    return result


def _reject_duplicate_keys_reference(pairs: list[tuple[str, Any]]) -> dict:
    """The object of `pairs`, refusing the first key met a second time: the definition `_reject_duplicate_keys`
    computes (tests/test_files.py checks them equal)."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def not_a_file(mode: int) -> str | None:
    """What a path of stat mode `mode` is when it is neither a file nor a folder ("a named pipe", ...), else None."""
    for test, kind in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return kind
    return None


def refuse_a_dangling_link_among(folders: Iterable[Path], shown: object) -> None:
    """Before the folders an output goes into are made: one of them that is a symbolic link to nothing (a link onto
    a drive not mounted) cannot be made ("File exists"), and was named "a part of the path is a file"."""
    for folder in folders:
        if folder.is_symlink() and not folder.exists():
            raise InputError(f"cannot write {shown}: {folder} is {missing_file_problem(folder, 'folder')}; make that "
                             "folder, or choose another output")


def missing_file_problem(path: str | Path, what: str = "file") -> str:
    """Why nothing can be read at `path`, which is neither a file nor a folder: "no such file or folder", "a symbolic
    link to T, which does not exist" (a dataset's links onto a drive no longer mounted), "a symbolic link loop", or
    what it is ("a named pipe, not a `what`", ...). A dangling link or a pipe exists: calling it missing sent the
    user looking for a file that is there."""
    path = Path(path)
    link = _broken_link_problem(path, "a file")
    if link is not None:
        return link
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "no such file or folder"
    kind = "a folder" if stat.S_ISDIR(mode) else not_a_file(mode)
    return f"{kind}, not a {what}" if kind else "no such file or folder"


def read_from_here_note(path: str | Path) -> str:
    """" (relative paths are read from the current directory /x)" for a relative path that is not there, else "": a
    config's relative data paths are read from the folder a command runs in, and a command run from another folder
    than the config's data found nothing there and said only "annotations.json: annotations file not found"."""
    path = Path(path).expanduser()
    return "" if path.is_absolute() else f" (relative paths are read from the current directory {Path.cwd()})"


def missing_folder_problem(path: str | Path, what: str = "folder") -> str:
    """Why `path` cannot be listed as a `what` (a folder): "no such folder", "a file, not a `what`" (a feature file
    given for the folder that holds it), "a symbolic link to T, which does not exist", "a symbolic link loop", "a
    named pipe, not a `what`". Each was "folder not found", which sent the user looking for a path that is there."""
    path = Path(path)
    link = _broken_link_problem(path, "a folder")
    if link is not None:
        return link
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return "no such folder" if exc.errno == errno.ENOENT else f"cannot be read: {exc.strerror or exc}"
    kind = "a file" if stat.S_ISREG(mode) else not_a_file(mode)
    return f"{kind}, not a {what}" if kind else "no such folder"


def _broken_link_problem(path: Path, target: str) -> str | None:
    """What is wrong with `path` when it is a symbolic link that leads to nothing (a dangling link, a loop)."""
    if not path.is_symlink():
        return None
    try:
        path.stat()
    except FileNotFoundError:
        return f"a symbolic link to {os.readlink(path)}, which does not exist"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a symbolic link loop (following its links leads back to them, never to {target})"
        return f"cannot be read: {exc.strerror or exc}"
    return None


def read_file_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of `path`, a `what` file; every failure is an InputError naming it and what was expected.

    A named pipe, a socket or a device is refused before it is opened: opening a pipe that nobody writes waits
    forever, and /dev/zero or /dev/urandom never end. A descriptor this process holds (`/dev/stdin`, the
    `/dev/fd/N` of a shell's `<(...)`) is open already, and is read."""
    path = Path(path)
    try:
        kind = not_a_file(os.stat(path).st_mode)
        if kind is not None and descriptor_named(path) is None:
            raise InputError(f"{path}: {kind}, not a file; give the {what} file itself")
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a folder, where a {what} file goes") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file: {exc.strerror or exc}") from None


def read_json(path: str | Path, what: str) -> Any:
    """Parse a UTF-8 JSON file; every failure is an InputError naming the file (and line:column)."""
    return parse_json(decode_utf8(Path(path), read_file_bytes(path, what)), Path(path), what)


def json_or_none(path: str | Path) -> Any:
    """The JSON document of `path`, or None where it cannot be read as one for any reason (missing, not UTF-8, not
    JSON, nested past Python's recursion limit, a number of 5000 digits): for the files whose reader asks only "did
    mgrec write this?" (an unfinished-set marker, an analysis, the demo's manifest), where no is an answer, not an
    error. Each caught some of these reasons and not RecursionError, a raw traceback of `score`, `detect` and
    `stream` for a marker of 100,000 brackets."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and json's errors are ValueErrors
        return None


def parse_json(text: str, path: Path, what: str, line: int | None = None) -> Any:
    """`read_json`'s parsing of `text`, the whole of file `path` or (`line`) one line of it (JSON lines): every
    failure an InputError naming the file and line:column."""
    shown = str(path) if line is None else f"{path}:{line}"
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
        if "\\ud" in text or "\\uD" in text:  # an escaped surrogate: rare; one C-speed re-encoding says if lone
            try:
                json.dumps(document, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                _refuse_lone_surrogates(path, what, document)
        return document
    except json.JSONDecodeError as exc:
        at = f"{path}:{exc.lineno}:{exc.colno}" if line is None else f"{path}:{line}:{exc.colno}"
        raise InputError(f"{at}: {what} file is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{shown}: {what} file nests JSON too deeply to be a {what} file") from None
    except _DuplicateKey as exc:
        raise InputError(
            f"{shown}: key {exc.args[0]!r} appears twice in one JSON object; the second would silently "
            "replace the first"
        ) from None
    except ValueError as exc:  # Python's limit of 4300 digits on an integer written in decimal
        raise InputError(f"{shown}: {what} file holds a number no reader takes ({exc})") from None


def _refuse_lone_surrogates(path: Path, what: str, document: Any) -> None:
    """InputError naming the first string (or key) of a parsed JSON document that holds half of a UTF-16 surrogate
    pair (`"\\ud800"` is valid JSON): such text cannot be written to any UTF-8 output, so a video id or a class name
    holding one failed with a traceback in whatever wrote it first."""
    def lone(text: object) -> bool:
        try:
            isinstance(text, str) and text.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False

    pending: list[tuple[tuple, Any]] = [((), document)]  # key path (built into text only for the bad string), node
    while pending:
        keys, node = pending.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for name, value in items:
            if lone(name) or lone(value):
                child = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in (*keys, name)).lstrip(".")
                shown = child.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
                raise InputError(f"{path} [{shown[:200]}]: {what} file holds a lone UTF-16 surrogate escape "
                                 "(\\ud800-\\udfff without its pair), which is not text")
            pending.append(((*keys, name), value))


def decode_utf8(path: Path, data: bytes) -> str:
    refuse_wide_text(path, data)
    try:
        return data.decode("utf-8-sig")  # tolerate a byte-order mark written by some editors
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def refuse_wide_text(path: Path, data: bytes) -> None:
    """InputError where `data` (a file's first bytes, or all of them) begins with the byte-order mark of UTF-16 or
    UTF-32: read as UTF-8 such a file was "byte 0xff at offset 0", or "not a predictions file" of its JSON."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16's: ff fe begins both LE marks
        encoding, writers = "UTF-32", ""
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, writers = "UTF-16", " (Windows PowerShell's `>` and Excel's \"Unicode text\" write it)"
    else:
        return
    raise InputError(f"{path}: {encoding} text{writers}, by its byte-order mark; mgrec reads UTF-8: save the file as "
                     "UTF-8")


def name_key(name: str) -> str:
    """A name as a reader sees it: Unicode-normalised (NFKC), case-folded, spaces collapsed, and without the
    characters that print as nothing (Unicode's format characters: soft hyphen, zero-width space and joiners, BOM).
    Two class names or video ids with one key look the same in any message ('café' in NFC and in NFD: a file copied
    from macOS keeps its name's NFD)."""
    visible = "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf")
    return " ".join(visible.casefold().split())


def file_name_key(name: str) -> str:
    """`name_key` of a file name's stem, its ending kept: `clip .npy` (of a video id with a space at its end) reads
    as `clip.npy`, which `name_key` of the whole name, a space inside it, does not say."""
    stem, ending = os.path.splitext(name)
    return name_key(stem) + ending.casefold()


def _apart_in_end_spaces(name: str, other: str) -> bool:
    """Whether two names differ only in whitespace at their ends, or at their stems' ends (`clip .npy`)."""
    (stem, ending), (other_stem, other_ending) = os.path.splitext(name), os.path.splitext(other)
    return name.strip() == other.strip() or (ending == other_ending and stem.strip() == other_stem.strip())


def spelt_alike_remedy(path: Path, other: str) -> str:
    """What to do where a file `path` is missing and `other` beside it has a name that reads the same (`data check`
    lists the folder once for every video, `spelt_alike_beside` once for one)."""
    return (f"{ascii(other)} is there, a name that reads the same{spelling_hint(path.name, other)}: rename the file, "
            "or the video id, to one spelling")


def spelt_alike_beside(path: Path) -> str:
    """Where the file `path` is not found: "; <spelt_alike_remedy>" for a file beside it whose name reads the same
    (`file_name_key`: the file of a video id with a space at its end, or in another Unicode normalisation), else ""
    (also where the folder cannot be listed)."""
    key = file_name_key(path.name)
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(path.parent), key=lambda e: e.name):
            if entry.name != path.name and file_name_key(entry.name) == key and entry.is_file():
                return f"; {spelt_alike_remedy(path, entry.name)}"
    return ""


def spelling_hint(name: str, other: str) -> str:
    """Said where two names that differ look the same (`name_key`, or `file_name_key` of two file names), showing
    where they differ, escaped (`ascii`): whitespace at either end is said as such, as quotes alone hid it from a
    reader ('clip ' and 'clip')."""
    if name == other or (name_key(name) != name_key(other) and file_name_key(name) != file_name_key(other)):
        return ""
    if _apart_in_end_spaces(name, other):
        return (f" (the two differ only in whitespace at the start or end of the name: {ascii(name)} and "
                f"{ascii(other)}, which print alike)")
    return (f" (the two differ only in Unicode normalisation, case, spaces or invisible characters: {ascii(name)} and "
            f"{ascii(other)})")


# Folders of a system's metadata, never of data: a zip made by macOS's Finder holds `__MACOSX/`, a copy of the tree
# of AppleDouble files (`__MACOSX/Sample0001/._Sample0001_finelabels.csv`) that unzip elsewhere writes out.
METADATA_FOLDERS = ("__MACOSX",)


def is_hidden(path: str | Path, root: str | Path | None = None) -> bool:
    """Whether mgrec leaves a file out of every folder it reads: its name, or that of a folder between `root` and
    it, starts with a dot (macOS's AppleDouble `._clip.mp4` beside every copied file, `.git`, editors' files) or is
    one of `METADATA_FOLDERS`."""
    path = Path(path)
    parts = path.relative_to(root).parts if root is not None else (path.name,)
    return any(part.startswith(".") or part in METADATA_FOLDERS for part in parts)


def id_from_name(path: Path) -> str:
    """The video id a file's name gives (its stem), refused unless it is text: a name of bytes that are not UTF-8
    (Python holds them as lone surrogates) cannot go into the JSON, CSV or subtitle outputs the id is written to,
    nor one holding a control character (a newline, a tab, ESC): `extract` and `detect` both name videos here, so
    they agree on which names are ids."""
    try:
        path.stem.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{brief(str(path))}: the file name is not UTF-8 text, and its name is the video id that "
                         "outputs are written under; rename the file") from None
    control = next((char for char in path.stem if unicodedata.category(char) == "Cc"), None)
    if control is not None:
        # a line break in an id split the `extracted: ...` line and every CSV row, subtitle and SMG line it went into
        raise InputError(f"{brief(str(path))}: the file name holds a control character ({control!r}: a line break, "
                         "tab or terminal escape), and its name is the video id that outputs (CSV rows, subtitles, "
                         "JSON lines) are written under; rename the file")
    return path.stem


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def text_lines(text: str) -> list[str]:
    """The lines of a text file as a CSV or JSON-lines reader counts them: split at \\n, \\r\\n and \\r alone
    (str.splitlines also splits at \\v, \\f, \\x1c-\\x1e, \\x85, U+2028 and U+2029, which made one row two and
    every later line number wrong). A final line break ends the last line, as with splitlines."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def is_number(value: Any) -> bool:
    """An int or float that fits a float (JSON allows integers of any size)."""
    if type(value) is float:  # nearly every number read (a million scores and times): no further question
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def as_real(value: Any) -> int | float | None:
    """A record field's value (a time, a score, a label id) as a Python number, or None where it is none: an int or
    float as it is; numpy's scalars, a 0-d numpy array and a 0-d torch tensor (a model's output, `float(t)` not
    called) as their `.item()`. Not a bool (Python counts True as 1), a string, a complex number, nor an array or
    tensor of any other shape: one of several values is no field's value. `number_refusal` says why in words. Duck-
    typed (`.shape`, `.item()`): no torch import here, which the metrics do without."""
    kind = type(value)
    if kind is float or kind is int:  # nearly every value (the file readers' million): no further question
        return value
    if isinstance(value, numbers.Real):
        if isinstance(value, bool) or _numpy_bool(value):  # Python's and numpy's
            return None
        item = value.item() if hasattr(value, "item") else value  # numpy's scalars as Python's
        return item if isinstance(item, (int, float)) and not isinstance(item, bool) else float(item)
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (str, bytes)) and len(tuple(shape)) == 0 \
            and callable(getattr(value, "item", None)):
        try:
            item = value.item()
        except (TypeError, ValueError, RuntimeError):
            return None
        if type(item) is float or type(item) is int:  # not a bool tensor's True, a complex one's value, a str
            return item
    return None


def _numpy_bool(value: Any) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")  # np.bool_, numpy 1 and 2


def number_refusal(value: Any) -> str:
    """Why `as_real` took `value` for no number, in words for a message: "a Tensor of shape (3,) holds 3 values; a
    field takes one number (a 0-d tensor or array, or float(t))", "the str '1.0' is no number"."""
    if isinstance(value, bool) or _numpy_bool(value):  # Python's and numpy's
        return f"the bool {bool(value)!r} is no number, though Python counts True as 1"
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (str, bytes)):
        try:
            dims = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            dims = None
        if dims:  # a tensor or array of one or more dimensions
            count = math.prod(dims)
            return (f"a {type(value).__name__} of shape {dims} holds {count} value{'s' * (count != 1)}; a field takes "
                    "one number (a 0-d tensor or array, or float(t))")
        if dims == ():
            return f"a 0-d {type(value).__name__} of dtype {getattr(value, 'dtype', '?')} is no real number"
    return f"the {type(value).__name__} {brief(value)} is no number"


def is_finite_real(value: Any) -> bool:
    """A finite number given in Python: an int or float, or numpy's scalars (np.float32(0.5)); not a bool, which
    Python counts as an int (True taken for a threshold of 1.0), and not NaN or an infinity."""
    if type(value) is float:  # the common case, without numbers.Real's abstract-class check (slow, per value)
        return math.isfinite(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past a float's range (10**400)
        return False


def listed(value: Any, what: str, expected: str) -> list:
    """`value`, a list or any other iterable given in Python, as a list read once. A generator or iterator checked
    by one loop and worked on by the next was empty by then: filter(...) given to hard_set kept nothing, and score
    counted every detection of an iter(...) as missing. A str is refused, not read as a list of its characters
    (one override "train.epochs=3" was 14 overrides of one character), and so is a mapping, whose loop gives its
    keys. `what` names the argument, `expected` says what it takes ("a list of detections")."""
    if isinstance(value, (str, bytes, Mapping)):
        raise InputError(f"{what}: expected {expected}, got a {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise InputError(f"{what}: expected {expected}, got {brief(value)}") from None
