"""SMG-style CSV files: the challenge's label format, for annotations and for predictions alike.

One file per video, no header, one row per micro-gesture:

    class,start_frame,end_frame[,score]

with the class numbered 1..K as in the SMG label files (in memory label_id = class - 1) and
absolute frame indices of the video. The organisers' `SampleXXXX/SampleXXXX_finelabels.csv` files
have the three columns; prediction files may add a score.

This module is the one place that reads and writes the format: the annotation reader
(`mgrec.data.annotations.read_smg_labels`), the prediction reader (`mgrec.evaluate.predictions`)
and `mgrec detect --format smg` all come here. It sits at the bottom layer (it knows records and
the frame clock, nothing above), so that data, evaluate and infer may all import it.

The two readers differ on purpose in what they accept:
- `read_label_file` (annotations): exactly three whole-number columns, each row on one line, no
  negative frames, frame numbers below `MAX_FRAME`, and a header row is named as such;
- `read_prediction_rows` (predictions, possibly from other tools): parsed as CSV (quoted cells),
  three or four columns (the same count on every row; without a score every score is 1.0).
Every problem is an `InputError` naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from mgrec.errors import InputError, where
from mgrec.files import (
    StoppedIn,
    atomic_create_text,
    atomic_write_text,
    brief,
    check_output_names,
    decode_utf8,
    is_hidden,
    json_or_none,
    part_of,
    read_file_bytes,
    safe_child,
    text_lines,
)
from mgrec.records import Detection
from mgrec.timeline import FeatureGrid

# Frame numbers past this are typos or corruption (2**53 is where floats stop holding every integer).
MAX_FRAME = 2**53
# Frame rates past this are typos or corruption: Kinect records at 30 fps, high-speed cameras at a
# few hundred. An infinite or huge fps would turn every velocity into Inf or every time into 0.
MAX_FPS = 1000.0
# One frame every 1000 s; anything slower is not a video (and 1e-300 would turn frames into 1e300 s).
MIN_FPS = 0.001


def fps_problem(fps: float) -> str | None:
    """Why `fps` cannot be a video's frame rate (not a finite number, outside [MIN_FPS, MAX_FPS]), or None."""
    try:
        finite = isinstance(fps, numbers.Real) and not isinstance(fps, bool) and math.isfinite(fps)
    except OverflowError:  # an integer of hundreds of digits
        finite = False
    if not finite:
        return f"fps must be a finite number, got {brief(fps)}"
    if not MIN_FPS <= fps <= MAX_FPS:
        return f"fps must be in [{MIN_FPS:g}, {MAX_FPS:g}], got {fps:g}"
    return None


def checked_fps(fps: object, what: str = "fps") -> float | None:
    """`fps` as a float (None stays None: not given), refused by the rule every sidecar's, annotation's and
    config's fps passes (`fps_problem`), in one line naming `what` (fps, --fps) and the range.

    Unchecked, 0 or inf divided by zero, nan and 1e-300 put every detection at nan or 1e302 s, and a
    negative fps silently detected nothing. Here, beside `fps_problem`, not in `mgrec.infer.offline` (which
    re-exports it): `mgrec score --fps` imported torch for it, 1.8 s and 200 MB before anything was scored."""
    if fps is None:
        return None
    if fps_problem(fps) is not None:
        raise InputError(f"{what}: expected a number of frames per second in [{MIN_FPS:g}, {MAX_FPS:g}], "
                         f"got {brief(fps)}")
    return float(fps)


class SmgRow(NamedTuple):
    """One row of an SMG-style file, as written there."""

    line: int  # 1-based line number in the file
    class_number: int  # 1..K
    start_frame: int
    end_frame: int
    score: float = 1.0  # the optional fourth column of prediction files


# ---------------------------------------------------------------------------------------------
# Label files (annotations) and the SampleXXXX_data.csv next to them


# A frame or class number as a CSV holds one: ASCII digits, an optional sign. int() also takes "1_0" (10),
# Arabic-Indic and full-width digits, which no exporter writes.
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def whole_number(cell: str) -> int:
    """`cell` (stripped) as an int; ValueError unless it is ASCII digits with an optional sign."""
    if _WHOLE_NUMBER.fullmatch(cell) is None:
        raise ValueError(cell)
    return int(cell)


# A time, score or fps as a CSV holds one: ASCII digits with an optional sign, point and exponent (and nan or inf,
# which the callers then refuse by name). float() also takes "1_37.2", Arabic-Indic and full-width digits.
_DECIMAL_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)",
                             re.IGNORECASE)
# A row of such numbers, one regular expression for a whole line (a skeleton file has 100 per frame).
DECIMAL_ROW = re.compile(rf"\s*(?:{_DECIMAL_NUMBER.pattern})\s*(?:,\s*(?:{_DECIMAL_NUMBER.pattern})\s*)*",
                         re.IGNORECASE)


def decimal_number(cell: str) -> float:
    """`cell` (stripped) as a float; ValueError unless it is written in ASCII digits (sign, point, exponent)."""
    if _DECIMAL_NUMBER.fullmatch(cell.strip()) is None:
        raise ValueError(cell)
    return float(cell)


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank line of a small CSV file, parsed as CSV: a spreadsheet or
    pandas with quoting on writes `"1","120","158"`, the same row as `1,120,158`. A quoted cell holding a line
    break is refused: no row of these files spans two lines."""
    data = read_file_bytes(path, "CSV")
    for number, line in enumerate(text_lines(decode_utf8(path, data)), start=1):
        if not line.strip():
            continue
        try:
            cells = next(csv.reader([line], skipinitialspace=True, strict=True))
        except csv.Error as exc:
            raise InputError(f"{path}:{number}: not a row of comma-separated cells ({exc}): {brief(line)}") from None
        cells = without_trailing_empty_cells([cell.strip() for cell in cells])
        if cells:  # a row of empty cells (`,,`) is a blank line
            yield number, cells


def without_trailing_empty_cells(cells: list[str]) -> list[str]:
    """A CSV row without the empty cells at its end: a spreadsheet (Excel, Google Sheets, LibreOffice) writes every row
    as wide as the sheet's widest (`5,120,158,` where one row has a note in a fourth column, `,,,` for an empty row
    inside the table); refused as `expected 3 columns ..., found 4`. Empty cells hold no value to read."""
    end = len(cells)
    while end and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _separator_hint(cells: list[str]) -> str:
    """A hint where one cell holds another separator (a spreadsheet's export with ';', or tabs), or where some cells
    are empty (a spreadsheet's blank column before or between the values: `,5,120,158`, `5,,120,158`): else ''."""
    for separator, name in ((";", "';'"), ("\t", "tabs")):
        if len(cells) == 1 and separator in cells[0]:
            return f" (its cells are separated by {name}; SMG files separate them by commas)"
    empty = [number for number, cell in enumerate(cells, start=1) if not cell]
    if empty:
        which = ", ".join(str(number) for number in empty[:3]) + (", ..." if len(empty) > 3 else "")
        return (f" (cell{'s' if len(empty) > 1 else ''} {which} of {_shown(cells)} "
                f"{'are' if len(empty) > 1 else 'is'} empty: a blank column of the spreadsheet it was exported "
                "from? delete the column)")
    return ""


def _shown(cells: list[str]) -> str:
    """A row for a message: as written when short and printable, else a cut, escaped repr."""
    text = ",".join(cells)
    return text if len(text) <= 80 and text.isprintable() else brief(text)


def _is_header_row(cells: list[str]) -> bool:
    """Whether a file's first row names its columns (`class,start_frame,end_frame`, in any case; pandas' to_csv writes
    `,class,start,end` with its index column): no cell a number, and some cell a word."""
    return (not any(parses_as_number(cell) for cell in cells)
            and any(re.search(r"[A-Za-z]", cell) for cell in cells))


def _header_message(location: str, cells: list[str], names: str) -> str:
    """The one refusal of a header row, for label and prediction files alike."""
    return (f"{location}: looks like a header row ({_shown(cells)}); SMG files have no header, every row is {names} "
            "(pandas: to_csv(FILE, header=False, index=False))")


def _class_hint(class_number: int, classes_named: str | None = None) -> str:
    """Why a class number is outside 1..K, where it can be told: a file numbered from 0, or a class list named."""
    if class_number == 0:
        return " (SMG label files number classes from 1; a file written from 0 needs every class raised by one)"
    return f" ({classes_named})" if classes_named else ""


def _integers(path: Path, line: int, cells: list[str], names: str) -> list[int]:
    try:
        return [whole_number(cell) for cell in cells]
    except ValueError:
        if line == 1 and any(re.search(r"[A-Za-z]", cell) for cell in cells):
            raise InputError(_header_message(f"{path}:{line}", cells, names)) from None
        raise InputError(f"{path}:{line}: expected whole numbers {names}, got {_shown(cells)}{_times_hint(cells)}"
                         ) from None


# A time as a clock shows it: mm:ss, hh:mm:ss, with a fraction after a point or a comma (ELAN, subtitle tools).
_CLOCK_TIME = re.compile(r"(?:[0-9]+:)?[0-9]+:[0-9]+(?:[.,][0-9]+)?")


def _times_hint(cells: list[str]) -> str:
    """A hint where a row gives times (seconds with a fraction, hh:mm:ss.fff) instead of frame numbers, else ''."""
    if any(_CLOCK_TIME.fullmatch(cell) for cell in cells[1:]):
        return " (times as hh:mm:ss; SMG files hold frame numbers: frame = seconds x fps, rounded)"
    if any("." in cell and parses_as_number(cell) and not float(cell).is_integer() for cell in cells[1:]):
        return " (times in seconds? SMG files hold frame numbers: frame = seconds x fps, rounded)"
    return ""


def read_label_file(path: Path, num_classes: int, num_frames: int | None = None,
                    frames_source: Path | None = None, classes_named: str | None = None) -> list[SmgRow]:
    """A label file (`SampleXXXX_finelabels.csv`): `class(1..K),start_frame,end_frame` rows.

    `num_frames`: the video's frame count when known (numFrames of `frames_source`, its
    `SampleXXXX_data.csv`); a row whose frames run past it is refused, like any other bad row: it
    labels frames the video does not have (a typo, or the label file of another video).
    `classes_named`: where the K classes come from, said with a class past K (SMG's, a class map)."""
    rows = []
    names = f"class(1..{num_classes}),start_frame,end_frame"
    for line, cells in _csv_rows(path):
        if len(cells) != 3:
            raise InputError(f"{path}:{line}: expected 3 columns {names}, found {len(cells)}{_separator_hint(cells)}")
        label, start, end = _integers(path, line, cells, names)
        check_row(where(path, line=line), cells, label, start, end, num_classes, num_frames, frames_source,
                  classes_named)
        rows.append(SmgRow(line, label, start, end))
    return rows


def check_row(location: str, cells: list[str], class_number: int, start: int, end: int, num_classes: int,
              num_frames: int | None = None, frames_source: Path | None = None, classes_named: str | None = None
              ) -> None:
    """The ranges of one SMG row's class and frames, worded alike for label files (`read_label_file`) and prediction
    files (`read_prediction_rows`); InputError at `location` (file:line) otherwise. A number past MAX_FRAME (seconds
    must stay finite), a class outside 1..`num_classes`, a negative start, a start not before the end (the end is
    exclusive), and, where the video's frame count is known (`num_frames`, counted in `frames_source`), an end past
    it: a row labelling frames the video does not have (a typo, or the label file of another video)."""
    if max(abs(start), abs(end)) > MAX_FRAME:
        raise InputError(f"{location}: frame number out of range in {_shown(cells[:3])} (at most {MAX_FRAME})")
    if not 1 <= class_number <= num_classes:
        raise InputError(f"{location}: class {_shown([str(class_number)])} is outside 1..{num_classes}"
                         f"{_class_hint(class_number, classes_named)}")
    if start < 0:  # frames count from the video's first, as in the JSON readers
        raise InputError(f"{location}: start frame {start} is negative")
    if start >= end:
        raise InputError(f"{location}: start frame {start} is not before end frame {end}")
    # end == num_frames is let through: an exclusive end at the video's last frame.
    if num_frames is not None and end > num_frames:
        counted = f" (numFrames in {frames_source})" if frames_source is not None else ""
        raise InputError(f"{location}: end frame {end} is past the video's end: it has {num_frames} frames{counted}")


def parses_as_number(text: str) -> bool:
    """Whether a CSV cell reads as a number (a header cell does not)."""
    try:
        decimal_number(text)
    except ValueError:
        return False
    return True


def read_data_file(path: Path) -> tuple[int, float]:
    """SampleXXXX_data.csv: one row `numFrames,fps,maxDepth` -> (num_frames, fps).

    A header row (`numFrames,fps,maxDepth`, no cell a number) may come first. The fps must pass
    `fps_problem`: finite, > 0 and at most MAX_FPS. The one reader of these files (annotations and
    skeleton extraction alike).
    """
    rows = list(_csv_rows(path))
    hint = _separator_hint(rows[0][1]) if rows else ""
    # a header names its columns (`numFrames,fps,maxDepth`); a row of no number and no word is a row written
    # otherwise (`173;28;4500`, from a spreadsheet set to ';'), said as such below, not dropped as a header
    if rows and _is_header_row(rows[0][1]):
        rows = rows[1:]
    if len(rows) != 1:
        raise InputError(f"{path}: expected exactly one row numFrames,fps,maxDepth, found {len(rows)}{hint}")
    line, cells = rows[0]
    if len(cells) != 3:
        raise InputError(f"{path}:{line}: expected 3 columns numFrames,fps,maxDepth, found {len(cells)}"
                         f"{_separator_hint(cells)}")
    num_frames = _integers(path, line, cells[:1], "numFrames,fps,maxDepth")[0]
    try:
        fps = decimal_number(cells[1])
    except ValueError:
        raise InputError(f"{path}:{line}: fps {brief(cells[1])} is not a number") from None
    if num_frames <= 0:
        raise InputError(f"{path}:{line}: numFrames must be positive, got {num_frames}")
    problem = fps_problem(fps)
    if problem:
        raise InputError(f"{path}:{line}: {problem}")
    return num_frames, fps


# ---------------------------------------------------------------------------------------------
# Prediction files


def prediction_files(folder: Path) -> list[Path]:
    """The files of a folder of SMG-style predictions, as `mgrec score` reads them: flat `VIDEO.csv`
    files and SMG's own layout `VIDEO/VIDEO_finelabels.csv` (which `write_smg_labels` writes).

    The one list of what such a folder holds, so that `mgrec detect --format smg` refuses a folder
    whose old files would be scored together with its new ones. Hidden names are left out, as in every folder
    mgrec reads: macOS's AppleDouble `._VIDEO.csv` beside each copied file."""
    found = (sorted(csv_files(folder.glob("*"))) + sorted(path for path in csv_files(folder.glob("*/*"))
                                                          if path.stem.endswith("_finelabels")))
    return [path for path in found if not is_hidden(path, folder)]


def csv_files(paths: Iterable[Path]) -> list[Path]:
    """The paths of `paths` ending `.csv` in any case: `Sample0036_finelabels.CSV` (a Windows tool's, a spreadsheet's
    export) was neither read nor named, its video scored as all missed with only a note that it had no file."""
    return [path for path in paths if path.suffix.lower() == ".csv"]


def read_prediction_rows(file: Path, num_classes: int) -> tuple[list[SmgRow], int | None]:
    """A prediction file's `class(1..K),start_frame,end_frame[,score]` rows (score 1.0 when absent) and its
    column count (3 or 4; None for a file without rows).

    The count tells a folder's reader which files hold scores: a folder mixing both kinds is the
    hard set of one run beside the ranked list of another, and cannot be scored as one set."""
    rows: list[SmgRow] = []
    columns_seen: int | None = None
    # decode_utf8 tolerates the byte-order mark spreadsheets write, and names the line and byte of a bad one
    text = decode_utf8(file, read_file_bytes(file, "predictions CSV"))
    reader = csv.reader(io.StringIO(text, newline=""))
    lines = []
    try:
        for cells in reader:
            lines.append((reader.line_num, cells))
    except csv.Error as exc:
        raise InputError(
            f"{file}:{reader.line_num}: not a row of class,start_frame,end_frame[,score] ({exc})"
        ) from None
    for line_number, row in lines:
        row = without_trailing_empty_cells(row)
        if not row:
            continue  # blank line (or a spreadsheet's row of empty cells), no data
        location = where(file, line=line_number)
        if columns_seen is None and _is_header_row([cell.strip() for cell in row]):
            raise InputError(_header_message(location, [cell.strip() for cell in row],
                                             f"class(1..{num_classes}),start_frame,end_frame[,score]"))
        if len(row) not in (3, 4):
            index = (" (a first column of row numbers, as pandas' to_csv writes its index? save with index=False)"
                     if len(row) == 5 else "")
            raise InputError(f"{location}: expected class,start_frame,end_frame[,score], got {len(row)} columns"
                             f"{_separator_hint([cell.strip() for cell in row])}{index}")
        if columns_seen is not None and len(row) != columns_seen:
            raise InputError(f"{location}: {len(row)} columns but earlier rows have {columns_seen}")
        columns_seen = len(row)
        try:
            class_number, start_frame, end_frame = (whole_number(cell.strip()) for cell in row[:3])
        except ValueError:
            raise InputError(
                f"{location}: class, start_frame and end_frame must be integers, got {brief(row[:3])}"
                f"{_times_hint([cell.strip() for cell in row[:3]])}"
            ) from None
        check_row(location, [cell.strip() for cell in row], class_number, start_frame, end_frame, num_classes)
        score = 1.0
        if len(row) == 4:
            try:
                score = decimal_number(row[3])
            except ValueError:
                raise InputError(f"{location}: score must be a number, got {brief(row[3])}") from None
            if not math.isfinite(score):
                raise InputError(f"{location}: score must be finite, got {brief(row[3])}")
        rows.append(SmgRow(line_number, class_number, start_frame, end_frame, score))
    return rows, columns_seen


# ---------------------------------------------------------------------------------------------
# Writing


def smg_label_paths(video_ids: Iterable[str], out_dir: str | Path) -> dict[str, Path]:
    """`out_dir/VID/VID_finelabels.csv` of each video, all checked before any is written: each id a plain file
    name and the file's name too (`safe_child`), and `out_dir/VID` absent or a folder, not a file or a symbolic link
    (which would carry the file out of `out_dir`). A refusal half-way would leave a partial set, which `mgrec score`
    would read as a whole one."""
    paths = {}
    for video_id in video_ids:
        folder = safe_child(out_dir, video_id, "video id")
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            kind = "a symbolic link" if folder.is_symlink() else "a file"
            raise InputError(f"{folder}: is {kind}, where video {brief(video_id)}'s label folder goes; move it away or "
                             "choose another --out folder")
        paths[video_id] = safe_child(folder, f"{video_id}_finelabels.csv", "video id + _finelabels.csv")
    check_output_names(((video_id, path.parent) for video_id, path in paths.items()), "label folders")
    return paths


# Present while a folder's label files are written (removed after the last): a killed `mgrec detect` left a partial
# set that `mgrec score` read as a whole one. Hidden, so folder listings pass it by; the readers refuse it. It holds
# a JSON object: who writes the set ("writer"), and for `mgrec stream` and `mgrec detect` what the set is made of
# (`begin_label_set`) and the SHA-256 of each label file written so far ("written", `record_label_file`), so that an
# interrupted one can be finished by the same command, keeping exactly the files it wrote (`mgrec.infer.label_set`).
INCOMPLETE_MARKER = ".mgrec-incomplete"


def refuse_an_incomplete_set(folder: str | Path) -> None:
    """A folder of label files whose writing did not finish (`INCOMPLETE_MARKER` in it) is not a set to read."""
    marker = Path(folder) / INCOMPLETE_MARKER
    if marker.exists():
        plan = unfinished_plan(folder)
        # the writers that resume their sets (`mgrec.infer.label_set`), where the marker records the plan they need
        writer = (plan or {}).get("writer") if "videos" in (plan or {}) else None
        # a "writer" edited by hand may be any JSON: a list or an object was a TypeError (unhashable) traceback
        verb = {"mgrec stream": "stream", "mgrec detect": "detect"}.get(writer) if isinstance(writer, str) else None
        finish = (f"run that `{writer}` again, as it was, to {verb} the videos it did not finish into it, or write "
                  "them again into an empty folder") if verb else "write them again into an empty folder"
        # a marker that is no JSON object (an older mgrec's line of text, or one edited by hand) was said as any
        # unfinished set: nothing told that the marker itself is why the same command cannot resume it
        there = f"{marker} is there" if plan is not None else \
            f"{marker} is there, {_unreadable_marker(marker)}: which command wrote the set, and how, cannot be told"
        raise InputError(f"{folder}: holds the label files of an `mgrec detect` or `mgrec stream` --format smg that "
                         f"did not finish ({there}): some videos have no file; {finish}")


def _unreadable_marker(marker: Path) -> str:
    """Why `marker` is not the JSON object mgrec writes in it (`begin_label_set`), in words."""
    expected = 'expected the JSON object mgrec writes there ({"writer": ..., "videos": [...], ...})'
    try:
        text = marker.read_text(encoding="utf-8")
    except OSError as exc:
        return f"but cannot be read ({exc.strerror or exc}); {expected}"
    except UnicodeDecodeError:
        return f"but is not UTF-8 text; {expected}"
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return f"but is not JSON (it begins {brief(text[:40])}: an older mgrec's, or edited by hand); {expected}"
    return f"but is JSON that is not an object ({brief(document)}); {expected}"


def unfinished_plan(folder: str | Path) -> dict | None:
    """The JSON object of `folder`'s `INCOMPLETE_MARKER` (None: no marker, or one mgrec did not write as JSON,
    e.g. by a version before the object)."""
    plan = json_or_none(Path(folder) / INCOMPLETE_MARKER)
    return plan if isinstance(plan, dict) else None


def begin_label_set(out_dir: str | Path, plan: dict, into_empty: bool = False) -> None:
    """Mark `out_dir` as a set being written (`INCOMPLETE_MARKER`, holding `plan`), before its first file. Made
    exclusively: a second writer into the folder is refused, not mixed in.

    `into_empty`: the caller found `out_dir` without label files before its work, and its set must be alone there.
    Checked again once the marker is made (no other writer can begin meanwhile): two `mgrec detect --format smg --out
    OUT` at once (or a detect and a stream) both found OUT empty, and the later one's files were written beside the
    earlier one's, one folder scored as one submission of two runs."""
    marker = Path(out_dir) / INCOMPLETE_MARKER
    try:  # whole or not at all: a marker killed half-written could not say what the set was, nor be resumed
        atomic_create_text(marker, json.dumps(plan) + "\n")
    except FileExistsError:
        raise InputError(f"{out_dir}: another mgrec detect or stream is writing label files here, or one did not "
                         f"finish ({marker} is there); write into another folder") from None
    others = prediction_files(Path(out_dir)) if into_empty else []
    if others:
        end_label_set(out_dir)  # the folder as the other writer left it
        raise InputError(f"{out_dir}: {len(others)} SMG label file(s) were written there (e.g. {others[0]}) after this "
                         "command found it empty, by another mgrec detect or stream writing into it at the same time; "
                         "nothing of this command's was written: write into another folder")


def record_label_file(out_dir: str | Path, video_id: str, text: str, inputs: list[list[str]] | None = None) -> None:
    """Note in the marker of the set being written in `out_dir` the label file `video_id` is about to get (its text's
    SHA-256), before it is written: a resumed set keeps a file only as it was written (`unfinished_plan`'s
    "written"); one emptied or edited since counted as the video's gestures. `inputs`: what the video's input was
    ([file, identity] each, "inputs"): a resumed set keeps the file only for that input (`mgrec.infer.label_set`)."""
    plan = unfinished_plan(out_dir)
    if plan is None:
        raise InputError(f"{out_dir}: its {INCOMPLETE_MARKER} went away while label files were written there; "
                         "write the set again into an empty folder")
    plan.setdefault("written", {})[video_id] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if inputs is not None:
        plan.setdefault("inputs", {})[video_id] = inputs
    atomic_write_text(Path(out_dir) / INCOMPLETE_MARKER, json.dumps(plan) + "\n")


def end_label_set(out_dir: str | Path) -> None:
    """The set of `out_dir` is whole: its marker goes, after the last file was written. A marker already gone means the
    folder was removed, emptied or replaced while the set was written (the writers make their folders again): the
    files there are not the whole set, and a marker is put back, so that no reader takes them for one."""
    marker = Path(out_dir) / INCOMPLETE_MARKER
    try:
        marker.unlink()
    except FileNotFoundError:
        atomic_write_text(marker, "{}\n")
        raise InputError(f"{out_dir}: its {INCOMPLETE_MARKER} went away while label files were written there (the "
                         "folder removed, emptied or replaced meanwhile?), so some videos may have no file; write the "
                         "set again into an empty folder") from None


def write_smg_labels(
    detections_by_video: Mapping[str, list[Detection]],
    out_dir: str | Path,
    fps: float | Mapping[str, float],
    with_scores: bool = False,
    into_empty: bool = False,
) -> list[Path]:
    """Write one SMG-style label file per video: `out_dir/VID/VID_finelabels.csv` (`write_smg_label_file`),
    with `fps` one rate for all videos or a mapping video id -> fps. A video with no detections gets an empty
    file. The set is marked incomplete until its last file is written (`INCOMPLETE_MARKER`, which the readers
    refuse). Returns the paths written.

    Video ids come from data (feature file names): every path is checked before any file is written
    (`smg_label_paths`), and an id such as `..` is an InputError instead of a file outside `out_dir`.

    `into_empty`: the caller found `out_dir` without label files before its work, and the set must be written alone
    (`begin_label_set`). `mgrec detect` and `mgrec stream` write through `mgrec.infer.label_set` instead: each
    video's file as soon as it is made, a set the same command resumes.
    """
    paths = smg_label_paths(detections_by_video, out_dir)
    # no plan: a set of this function's is not resumed (`mgrec detect` writes through `mgrec.infer.label_set`)
    begin_label_set(out_dir, {"writer": "mgrec.smg_csv.write_smg_labels"}, into_empty)
    marker = Path(out_dir) / INCOMPLETE_MARKER
    # Ctrl-C among a thousand videos' files said "interrupted" alone: not that some files are there, in a folder
    # every reader (and the same command again) refuses while its marker says it is unfinished
    where = StoppedIn("video", len(paths), lambda done: (
        f"{part_of(done, len(paths), 'label file')} {'is' if done == 1 else 'are'} in {out_dir}, which stays marked "
        f"unfinished ({marker}: `mgrec score` and the other readers refuse the folder); remove {out_dir} and run the "
        "same command again"))
    with where:
        for video_id in where.each(sorted(detections_by_video)):
            video_fps = fps[video_id] if isinstance(fps, Mapping) else fps
            write_smg_label_file(paths[video_id], detections_by_video[video_id], video_fps, with_scores)
        end_label_set(out_dir)
    return [paths[video_id] for video_id in sorted(detections_by_video)]


def write_smg_label_file(path: Path, detections: list[Detection], fps: float, with_scores: bool = False) -> None:
    """One video's label file (`smg_label_text`), atomically (a killed writer leaves the old state, never half a
    file). The folder layout matches SMG's, so the files (without scores) read back with
    `mgrec.data.annotations.read_smg_labels(out_dir, fps=...)`."""
    atomic_write_text(path, smg_label_text(detections, fps, with_scores))


def smg_label_text(detections: list[Detection], fps: float, with_scores: bool = False) -> str:
    """One video's label file's text: rows `class,start_frame,end_frame` (class = label_id + 1, as in SMG files), plus
    a 4th `score` column when `with_scores`; sorted by start frame. Frames are the detection's own frames when set,
    else round(seconds * fps). A detection shorter than a frame (both ends rounding to one frame) is written as that
    one frame, `start,start+1`: a row `5,28,28` is no gesture, and every reader (`read_label_file`,
    `read_prediction_rows`, so `mgrec score`) refuses it, the whole folder with it."""
    clock = FeatureGrid(fps=fps, stride=1, window=1)
    rows = []
    for det in detections:
        if det.start_frame is not None and det.end_frame is not None:
            start, end = det.start_frame, det.end_frame
        else:
            start, end = clock.seconds_to_frame(det.start), clock.seconds_to_frame(det.end)
        rows.append((start, max(end, start + 1), det.label_id + 1, det.score))
    rows.sort(key=lambda row: row[:3])
    # the score as it is (repr): rounded, equal scores made ties that the file's order then broke
    return "".join(f"{label},{start},{end},{float(score)!r}\n" if with_scores else f"{label},{start},{end}\n"
                   for start, end, label, score in rows)
