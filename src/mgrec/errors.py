"""The one exception type for problems the user can fix (bad files, keys, options).

The CLI prints an `InputError` as one clear message without a traceback; anything else is a bug.
Messages name the file (and line or key) and say what was expected.
"""


class InputError(Exception):
    """A user-fixable problem with input data, a config or a command-line option."""


def where(path: object, line: int | None = None, key: str | None = None) -> str:
    """Format a location for error messages: 'file.csv:12' or 'config.yaml [train.lr]'."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if key is not None:
        text += f" [{key}]"
    return text
