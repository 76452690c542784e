"""What mgrec prints: text from data (class names, video ids, file names) shown safely on a terminal.

Names come from users' files and can hold terminal escape sequences, other control characters,
bidi overrides that would rewrite what the terminal shows, or characters that show as nothing. Files
keep them exact; what the CLI prints goes through `TerminalText`, which shows each such character as
a visible escape (`\\x1b`, `\\u202e`, `\\u200b`). Newlines, tabs and carriage returns (progress bars) pass.

A reader that goes away (`mgrec train ... | head`) must not stop the work: after a broken pipe
the output is dropped quietly and the command goes on (training finishes and saves).

A terminal or pipe whose encoding cannot show a character (`PYTHONIOENCODING=ascii`, a C locale; a
file name holding bytes that are not UTF-8) gets its escape instead (`\\xe9`, `\\udcff`), in both
streams: a message must never fail at being printed, least of all after the work is done.
"""

from __future__ import annotations

import io
import os
import re
import sys
import unicodedata
from collections.abc import Callable
from typing import TextIO

from mgrec.errors import InputError

# C0 controls but \t \n \r, DEL, C1 controls, the bidi marks, embeddings, overrides and isolates, lone surrogates (the
# bytes of a file name that are not UTF-8, `os.fsdecode`'s `\udcff`, which no UTF-8 text can hold: a report page
# naming such a file was a UnicodeEncodeError traceback), and the format characters that print as nothing in any
# script (soft hyphen, Mongolian vowel separator, zero-width space, word joiner, invisible operators, BOM): a class
# 'ABD\u200b' printed as 'ABD' in a table beside the real 'ABD'; so do the line and paragraph separators, the
# deprecated format characters (U+206A-F), the interlinear annotation marks, the Hangul fillers that stand alone
# (U+3164, U+FFA0, the "blank name" of chat apps), the combining grapheme joiner, the musical format characters and the
# tag characters (U+E0000-7F, which carry hidden ASCII: 'ABD' followed by tags spelling a word), but in an emoji's
# subdivision flag (`_FLAG`). The zero-width (non-)joiners and variation selectors stay: Persian, Indic scripts,
# Mongolian and emoji sequences need them.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u034f\u061c\u180e\u200b\u200e\u200f"
                     "\u2028-\u202e\u2060-\u2064\u2066-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\ud800-\udfff"
                     "\U0001d173-\U0001d17a\U000e0000-\U000e007f]")
# England's, Scotland's and Wales's flags: a black flag, the region's code in tag letters and digits, a cancel tag.
_FLAG = re.compile("(\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,6}\U000e007f)")


def visible(text: str) -> str:
    """`text` with every unsafe character replaced by its Python escape."""
    if "\U0001f3f4" in text:  # a subdivision flag's tags are kept, any other tag is escaped
        return "".join(part if index % 2 else _escaped(part) for index, part in enumerate(_FLAG.split(text)))
    return _escaped(text)


def _escaped(text: str) -> str:
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def one_line(text: str) -> str:
    """`text` as `visible` shows it, with its line breaks and tabs as escapes (`\\n`) too: a file name printed in a
    line of output (`extracted: A -> B`), which a newline in the name split in two."""
    return visible(text).replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def columns(text: str) -> int:
    """How many terminal columns `text` takes as a table's cell prints it (`one_line`): East Asian wide and fullwidth
    characters (CJK, most emoji) two, combining marks and zero-width format characters none, any other one."""
    return sum(map(_char_columns, one_line(text)))


def _char_columns(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cell(text: str, width: int, limit: int | None = None) -> str:
    """`text` on one line (`one_line`: a class `a\\nb` split the table's row in two, its columns counted as one), cut
    to `limit` columns (ending "...") where longer, then padded with spaces to `width` columns: a table's column of
    names stays aligned whatever script or escapes they hold. Python's format pads by characters, and every column
    after a name in CJK (two columns a character), with accents written as combining marks (none), or with a control
    character (`\\x1b`: four) stood off its head."""
    shown = one_line(text)
    if limit is not None and columns(shown) > limit:
        kept, used = [], 0
        for char in shown:
            used += _char_columns(char)
            if used > limit - 3:
                break
            kept.append(char)
        shown = "".join(kept) + "..."
    return shown + " " * max(0, width - columns(shown))


MAX_LINE_CHARS = 2000


def bounded(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """`text` with every line longer than `limit` cut in its middle: an error quotes the value it refuses, which
    a hostile file can make megabytes long, while its start (file and key) and end (what was expected) matter."""
    def cut(line: str) -> str:
        if len(line) <= limit:
            return line
        head, tail = limit * 2 // 3, limit // 3
        return f"{line[:head]} ... ({len(line) - head - tail} characters left out) ... {line[-tail:]}"

    return "\n".join(cut(line) for line in text.split("\n"))


class TerminalText(io.TextIOBase):
    """A text stream in front of stdout or stderr: broken pipes absorbed, and with `escape` unsafe
    characters shown as escapes. stderr is not escaped (progress bars move the cursor with escape
    sequences); the messages mgrec writes there go through `visible` themselves.

    Any other failure to write (a full disk, `> /dev/full`, a quota) is an `InputError` naming the stream, so
    the command ends with one line on stderr and a non-zero exit instead of a traceback; stderr's own failures
    are dropped (there is nowhere left to say them)."""

    def __init__(self, stream: TextIO, escape: bool, name: str = "standard output") -> None:
        self.stream = stream
        self.escape = escape
        self.name = name
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(self._encodable(visible(text) if self.escape else text))
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def _failed(self, exc: OSError) -> None:
        self._drop_output()
        if not isinstance(exc, BrokenPipeError) and self.name != "standard error":
            raise InputError(f"cannot write {self.name}: {exc.strerror or exc}") from None

    def _encodable(self, text: str) -> str:
        """`text` with each character the stream's encoding lacks as its backslash escape."""
        encoding = getattr(self.stream, "encoding", None) or "utf-8"  # StringIO has none: it takes anything
        try:
            text.encode(encoding)
        except UnicodeEncodeError:
            return text.encode(encoding, "backslashreplace").decode(encoding)
        except LookupError:  # an encoding Python does not know: the stream's own error is the best we can do
            pass
        return text

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except OSError as exc:
                self._failed(exc)

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.stream, "encoding", "utf-8")

    def _drop_output(self) -> None:
        # Point the descriptor at /dev/null too, so the interpreter's own flush at exit stays quiet.
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass


class _Closed(io.TextIOBase):
    """Where text goes when the shell closed the stream (`>&-`: Python's sys.stdout is None): nowhere, without
    an error. Not /dev/null opened in its place, which would take the free descriptor 1 and make `--out
    /dev/stdout` write into it silently instead of being refused."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False


def said_once(log: Callable[..., object]) -> Callable[..., object]:
    """`log`, passing each distinct warning or note once: the trainings of one command (the seeds of `train --seeds`, a
    pseudo-labelled run's teacher, students and final run) check the same config and data, and each said every
    warning again (N seeds: the warm-up's warning N times). Other lines pass as they are."""
    said: set[str] = set()

    def once(line: object = "", *args, **kwargs) -> object:
        text = str(line)
        if text.startswith(("warning:", "note:")):
            if text in said:
                return None
            said.add(text)
        return log(line, *args, **kwargs)

    return once


def install() -> None:
    """Route sys.stdout (escaped) and sys.stderr through `TerminalText` (once); a closed one writes nowhere."""
    for name, escape, said in (("stdout", True, "standard output"), ("stderr", False, "standard error")):
        stream = getattr(sys, name)
        if stream is None:
            stream = _Closed()
        if not isinstance(stream, TerminalText):
            setattr(sys, name, TerminalText(stream, escape, said))
