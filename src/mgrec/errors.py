"""The one exception type for problems the user can fix (bad files, keys, options).

The CLI prints an `InputError` as one clear message without a traceback; anything else is a bug.
Messages name the file (and line or key) and say what was expected.
"""

# Keys are built from data (`database.<video id>.fps`): one longer than this, or holding a character that is
# not printable (a newline, NUL, a terminal escape, a bidi override), is shown as its repr, cut to this length.
MAX_KEY_CHARS = 120


class InputError(Exception):
    """A user-fixable problem with input data, a config or a command-line option."""


class OutputError(InputError):
    """An output that could not be written (a full disk, a quota, a file-size limit, a read-only folder):
    `mgrec.files` raises it for every failed write, "cannot write <path>: <cause>". A loop over inputs that goes on
    past an input's own failure (`mgrec extract`: a video that cannot be read) stops at this one: it says nothing
    of the input, and every later input would meet it too, after its work."""


class RunError(InputError):
    """A problem of the run directory itself, met while reading an input (its feature recipe contradicting its
    config, or unreadable): a loop over inputs that goes on past an input's own failure (`detect`'s) stops at this
    one, as at an `OutputError`. Collected, it was said once per input under "no input could be read", as if the
    inputs were at fault."""


class EmptySplit(InputError):
    """An annotations file lists no video in the split asked for (`AnnotationSet.split_video_ids`): callers
    that can do without the split (an ensemble tuned on val) catch this one."""


def where(path: object, line: int | None = None, key: str | None = None) -> str:
    """Format a location for error messages: 'file.csv:12' or 'config.yaml [train.lr]'."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if key is not None:
        text += f" [{shown_key(key)}]"
    return text


def shown_key(key: str) -> str:
    """A key as written when it is printable and short; else its repr (escapes shown, never executed), cut, so
    that a message stays one short line whatever a video id or class name in the key holds."""
    if key.isprintable() and len(key) <= MAX_KEY_CHARS:
        return key
    if len(key) <= MAX_KEY_CHARS:
        return repr(key)
    return f"{key[:MAX_KEY_CHARS]!r}... ({len(key)} characters)"
