"""Feature files: one (T, C) array per video plus a JSON sidecar saying how it was made.

`<features_dir>/<video_id>.npy` holds float16/float32 features, row t for the window of frames
[t*stride, t*stride + window) (see `mgrec.timeline`); `.npz` files hold the same array under the
key `feats`. The sidecar `<video_id>.json` records fps, stride, window, backbone, dim and the
number of video frames, so that a config that disagrees with the features is caught before
training instead of producing silently shifted detections.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import lzma
import math
import os
import re
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.lib import format as npy_format

from mgrec.config import FEATURE_EXTENSIONS
from mgrec.data.videos import VIDEO_SUFFIXES, another_name_advice, video_under_another_name
from mgrec.errors import InputError, RunError
from mgrec.files import (
    atomic_open,
    brief,
    id_from_name,
    is_hidden,
    is_number,
    missing_file_problem,
    missing_folder_problem,
    part_of,
    read_json,
    resolve_path,
    safe_child,
    set_aside,
    shell_word,
    spelt_alike_beside,
)
from mgrec.smg_csv import MAX_FPS, fps_problem

if TYPE_CHECKING:
    from mgrec.config import Config
    from mgrec.run import RunDir


@dataclass(frozen=True)
class FeatureSidecar:
    """How one feature file was made (written next to it as `<video_id>.json`)."""

    fps: float
    stride: int  # frames between consecutive windows
    window: int  # frames per window
    backbone: str
    dim: int  # C, the feature size
    frames: int | None  # frames in the video, when known
    weights: str | None = None  # checkpoint file or model name the backbone was loaded from
    weights_sha256: str | None = None
    num_features: int | None = None  # T, filled in by write_features
    frames_per_window: int | None = None  # a per-frame backbone read only this many frames of each window
    source_stamp: str | None = None  # "<bytes>:<mtime_ns>" of the input it was made from (`source_stamp`)
    source: str | None = None  # the input's absolute path (None: not recorded): another input of the same name
    # must not replace these features (`mgrec.extract.outputs.refuse_a_file_mgrec_did_not_write`)
    precision: str | None = None  # the backbone's forward pass, "fp32" or "bf16" (None: not recorded; skeleton, pose)


# What makes two feature files mean the same beyond their shape (stride, window and dim are checked against
# the config): features of another backbone or other weights have the right shape and mean nothing to a
# network trained on these. `data check` refuses a folder mixing them; detection, features unlike the run's.
RECIPE_FIELDS = ("backbone", "weights_sha256", "frames_per_window")


def recipe_differences(sidecar: FeatureSidecar, recipe: FeatureSidecar, fields=RECIPE_FIELDS,
                       reference: str = "the run") -> list[str]:
    """"name 'value' (<reference>: 'value')" for each of `fields` that both record and in which they differ (a
    field one of them does not record cannot be compared: features without it are allowed)."""
    return [f"{name} {getattr(sidecar, name)!r} ({reference}: {getattr(recipe, name)!r})" for name in fields
            if getattr(sidecar, name) is not None and getattr(recipe, name) is not None
            and getattr(sidecar, name) != getattr(recipe, name)]


# Two frame rates of one video closer than this are the same (a sidecar against the annotations or --fps).
FPS_TOLERANCE = 1e-3


def source_stamp(path: str | Path) -> str:
    """Size and modification time of a feature file's source ("<bytes>:<mtime_ns>"): a video replaced under
    the same name has another, so its old features are not taken for its new ones."""
    status = Path(path).stat()
    return f"{status.st_size}:{status.st_mtime_ns}"


# What `check_unchanged` says of a video extracted while it changed (`mgrec extract`, `detect` on videos).
EXTRACTED_A_PART = "its features would be of a part of it: extract it once it is complete"


def check_unchanged(path: str | Path, stamp: str, consequence: str = EXTRACTED_A_PART) -> None:
    """`path`, read to its end, must be as it was when its reading began (`stamp`, its `source_stamp` then): a
    recording still being written (a camera's or OBS's file, read while it records) or a copy still arriving was
    extracted up to where it then ended, and its features written as the video's, exit 0; the next run would find
    the stamp changed and extract it again, but detections made from them meanwhile covered part of it without a
    word. The one check of every reader that reads a file over time (extraction, `mgrec stream` of a video or of a
    memory-mapped feature file); `consequence` says what the change makes of its output. InputError naming the
    file, its sizes then and now."""
    now = source_stamp(path)
    if now != stamp:
        before, after = (int(text.partition(":")[0]) for text in (stamp, now))
        sizes = f"{before:,} bytes when its reading began, {after:,} now" if before != after else "its size the same"
        raise InputError(f"{path}: changed while it was read ({sizes}, modified since: a recording or a copy still "
                         f"being written?); {consequence}")


def sidecar_path(feature_path: str | Path) -> Path:
    """The sidecar of a feature file: same folder and stem, `.json`."""
    return Path(feature_path).with_suffix(".json")


def feature_path(features_dir: str | Path, video_id: str, ext: str, prefix: str = "") -> Path:
    """`<features_dir>/<prefix><video_id><ext>`; `ext` may be given with or without the dot.

    The video id comes from data (an annotations file), so it must be a plain file name
    (`mgrec.files.safe_child`): an id that is absolute or holds `..` or a separator would read a
    file outside the features folder, and is refused.
    """
    safe_child(features_dir, video_id, "video id")
    # an id of a plain name can make one too long with the prefix and ending: the file name's length, said of it
    return safe_child(features_dir, f"{prefix}{video_id}{feature_ending(ext)}", "feature file name")


def feature_ending(ext: str) -> str:
    """A feature file's ending as data.feature_ext gives it, with or without the dot: `.npy` for `npy`."""
    return ext if ext.startswith(".") else "." + ext


def video_id_of(path: Path, prefix: str = "") -> str:
    """The video a feature file is of: its name without the ending (`mgrec.files.id_from_name`) and, where it
    starts with the features' `prefix` (data.feature_prefix), without that either: `v_abc.npy` is video `abc`."""
    return without_prefix(id_from_name(path), prefix)


def without_prefix(stem: str, prefix: str) -> str:
    return stem[len(prefix):] if prefix and stem.startswith(prefix) and len(stem) > len(prefix) else stem


# ---------------------------------------------------------------------------------------------
# Sidecars


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional(check):
    return lambda value: value is None or check(value)


_SIDECAR_CHECKS = {
    # field: (is the value acceptable, what was expected)
    # The one frame-rate rule (also data.fps and the annotations'); is_number first: JSON integers have no size limit.
    "fps": (lambda v: is_number(v) and fps_problem(v) is None,
            f"a positive number of frames per second, at most {MAX_FPS:g}"),
    "stride": (_positive_int, "a positive integer"),
    "window": (_positive_int, "a positive integer"),
    "backbone": (lambda v: isinstance(v, str) and v != "", "a backbone name"),
    "dim": (_positive_int, "a positive integer"),
    "frames": (_optional(_positive_int), "a positive integer or null"),
    "weights": (_optional(lambda v: isinstance(v, str)), "a string or null"),
    "weights_sha256": (_optional(lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None),
                       "64 lower-case hex digits or null"),
    "num_features": (_optional(_positive_int), "a positive integer or null"),
    "frames_per_window": (_optional(_positive_int), "a positive integer or null (every frame of a window)"),
    "precision": (lambda v: v is None or v in ("fp32", "bf16"), '"fp32", "bf16" or null (not recorded)'),
    "source_stamp": (_optional(lambda v: isinstance(v, str) and re.fullmatch(r"\d+:\d+", v) is not None),
                     "'<bytes>:<mtime_ns>' of the source file, or null"),
    "source": (_optional(lambda v: isinstance(v, str) and v != ""), "the source file's path, or null"),
}
_REQUIRED_FIELDS = [f.name for f in dataclasses.fields(FeatureSidecar) if f.default is dataclasses.MISSING]


def read_sidecar(path: str | Path) -> FeatureSidecar:
    """Read and validate a sidecar JSON; unknown keys are errors (they are usually typos)."""
    path = Path(path)
    raw = read_json(path, "feature sidecar")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object with {', '.join(_REQUIRED_FIELDS)}")
    for name in raw:
        if name not in _SIDECAR_CHECKS:
            raise InputError(f"{path} [{name}]: unknown key; valid keys: {', '.join(_SIDECAR_CHECKS)}")
    for name in _REQUIRED_FIELDS:
        if name not in raw:
            raise InputError(f"{path} [{name}]: missing key")
    for name, value in raw.items():
        is_valid, expected = _SIDECAR_CHECKS[name]
        if not is_valid(value):
            raise InputError(f"{path} [{name}]: expected {expected}, got {brief(value)}")
    return FeatureSidecar(**{**raw, "fps": float(raw["fps"])})


def check_run_recipe(path: Path, recipe: FeatureSidecar, config: Config, stream: str | None = None) -> None:
    """A run's feature recipe of input stream `stream` (None: the grid stream, feature_recipe.json) must say of the
    features what the run's config says: training checked every feature file's sidecar against the stream's stride,
    window and dim, so a recipe that says otherwise was edited or copied from another run. It was used as it was:
    `evaluate`, `detect`, `stream` ran (exit 0), and `export` handed a stride-4 run's record on with stride 8, the
    recipe by which the ONNX file's users make its features."""
    if config.end_to_end:  # its recipe records the backbone that reads the clips, not the shape of feature files
        return
    streams = config.data.input_streams()
    of = streams[0] if stream is None else next((s for s in streams if s.name == stream), None)
    if of is None:
        return
    section = "data" if not config.data.streams else f"data.streams {of.name!r}"
    differ = [f"{name} {brief(got)}, where config.yaml's {section} has {key} {brief(want)}"
              for name, got, key, want in (("stride", recipe.stride, "stride", of.stride),
                                           ("window", recipe.window, "window", of.window),
                                           ("dim", recipe.dim, "feature_dim", of.feature_dim)) if want and got != want]
    if differ:
        raise RunError(f"{path}: {'; '.join(differ)}: the run was trained on features of its config's shape (the "
                         "recipe edited, or copied from another run?); restore it from a sidecar of the run's training "
                         "features")


def read_run_recipe(run: RunDir, stream: str | None = None) -> dict | None:
    """The feature recipe of a run's input stream `stream` (None: the grid stream's feature_recipe.json) as it was
    written, checked as every feature sidecar is (`read_sidecar`: its keys and their kinds); None where the run
    records none. What copies the recipe elsewhere (an export's record, an ensemble) reads it here: copied unchecked,
    a recipe with `"fps": "x"` passed into an export's record, refused only by the next detect."""
    path = run.stream_recipe_path(stream)
    if not path.exists() and not path.is_symlink():
        return None
    check_run_recipe(path, read_sidecar(path), run.read_config(), stream)
    return read_json(path, "feature recipe")


def check_sidecar_length(feature_file: str | Path, steps: int, sidecar: FeatureSidecar | None = None) -> None:
    """The one check that a feature file holds the `num_features` its sidecar records (`load_features` and
    `data check` both use it): a mismatch means an interrupted extraction or a file replaced beside its
    sidecar, whose steps would then sit on the wrong times. `sidecar`: the file's, when the caller has
    read it; otherwise it is read here, if there is one. A sidecar that cannot be read is not this
    check's business: whoever needs its fps/stride/window reads it and reports that."""
    feature_file = Path(feature_file)
    meta = sidecar_path(feature_file)
    if sidecar is None:
        if not meta.is_file():
            return
        try:
            sidecar = read_sidecar(meta)
        except InputError:
            return
    if sidecar.num_features not in (None, steps):
        raise InputError(
            f"{meta}: sidecar says {sidecar.num_features} feature steps but {feature_file.name} holds {steps} "
            "(interrupted extraction?)"
        )


def check_sidecar(
    sidecar: FeatureSidecar,
    stride: int,
    window: int,
    dim: int,
    fps: float | None = None,
    source: str | Path = "feature sidecar",
    key_prefix: str = "data.",
    fps_from: str | None = None,
) -> None:
    """Raise InputError listing every field where the sidecar disagrees with the config (whose keys are
    `key_prefix` + stride/window/feature_dim: `data.`, or a stream's `data.streams[i].`). `fps_from`: where `fps`
    comes from, for the message (default: the config's `key_prefix` + fps)."""
    mismatches = sidecar_mismatches(sidecar, stride, window, dim, fps, key_prefix, fps_from)
    if mismatches:
        remedy = "Re-extract the features or change the config."
        if fps is not None and abs(sidecar.fps - fps) > FPS_TOLERANCE:
            # extracting again gives the same rate: extract reads every frame of the video as it is
            remedy = fps_remedy(fps, key_prefix if fps_from is None else None) + ("" if len(mismatches) == 1 else
                                                    "; for the rest, re-extract the features or change the config.")
        raise InputError(f"{source}: features do not match the config: {'; '.join(mismatches)}. {remedy}")


def fps_remedy(fps: float, key_prefix: str | None = "data.") -> str:
    """What to do about features of a video whose frame rate is not the one the labels or config give: extracting
    again does not help, as extract keeps each video's own rate (it does not resample). `key_prefix`: the config
    key's, where the config's fps is the one refused (None: the annotations')."""
    config = "" if key_prefix is None else f" and set {key_prefix}fps to null (--set {key_prefix}fps=null)"
    return (f"Extracting again gives the same rate (extract keeps each video's own frame rate): extract from the "
            f"{fps:g} fps video whose frames the labels number (the original recording, not a re-encoded copy), or, "
            "where the labels number this video's frames, give the annotations its fps (SMG: the fps in "
            f"SampleXXXX_data.csv, then mgrec data convert again){config}")


def sidecar_mismatches(sidecar: FeatureSidecar, stride: int, window: int, dim: int, fps: float | None = None,
                       key_prefix: str = "data.", fps_from: str | None = None) -> list[str]:
    """Each field where the sidecar disagrees with the config, as `check_sidecar` says it; the fps naming where
    the sidecar's comes from (its video) and where `fps` does (`fps_from`, default the config's key)."""
    expected = {
        "stride": (stride, f"{key_prefix}stride"),
        "window": (window, f"{key_prefix}window"),
        "dim": (dim, f"{key_prefix}feature_dim"),
    }
    mismatches = [
        f"{name} is {getattr(sidecar, name)} in the sidecar but {value} in the config ({key})"
        for name, (value, key) in expected.items()
        if getattr(sidecar, name) != value
    ]
    if fps is not None and abs(sidecar.fps - fps) > FPS_TOLERANCE:
        mismatches.append(f"fps is {sidecar.fps:g} in the sidecar (the frame rate of the video the features were "
                          f"extracted from) but {fps:g} {fps_from or f'in the config ({key_prefix}fps)'}")
    return mismatches


# ---------------------------------------------------------------------------------------------
# Feature arrays
#
# Every feature array passes two guards before the network sees it:
# - its header (shape and dtype), read without loading the data, must declare a float array of at
#   most MAX_FEATURE_VALUES values that the file really holds: a corrupt or hostile header (a .npz
#   claiming 1e9 x 16, a deflate bomb) is refused before anything is allocated;
# - its values must be finite and within +-MAX_FEATURE_ABS (`check_feature_values`).

FEATURE_DTYPES = "float16/float32/float64"

# The most values one feature file may hold: 2**30 values are 4 GiB as float32, which `load_features`
# returns. Ten hours of SMG's 1408-dim features (7 steps/s) are 355 million values, of 2304-dim
# VideoMAE features at 30 fps and stride 4 622 million; more is a corrupt header or a video that
# should be split.
MAX_FEATURE_VALUES = 2**30

# The largest |value| a feature may have. Real features are orders of magnitude smaller (backbone
# outputs are activations of normalised networks; skeleton positions and velocities are in spine
# lengths). The network normalises
# right after its first convolution, so a larger scale carries no information, and from about 1e19
# its float32 (and bf16) norm statistics overflow: the output silently becomes that of all-zero
# features, or NaN. 1e6 leaves every plausible feature in and thirteen orders of magnitude between
# the largest accepted value and that overflow, across a first convolution summing thousands of
# channels.
MAX_FEATURE_ABS = 1e6

# Rows per block when scanning the values, so that a memory-mapped file is never copied whole.
_SCAN_ROWS = 4096

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members; an empty zip
_PICKLE_MAGIC = b"\x80"


@dataclass(frozen=True)
class FeatureFolder:
    """The feature files of one folder, and the entries left out."""

    files: list[Path]  # .npy/.npz files, sorted
    skipped: list[Path]  # hidden .npy/.npz names (macOS `._x.npy` AppleDouble files, `.x.npy`)

    def skipped_summary(self) -> str:
        """'2 hidden entries (._a.npy, .b.npz)', or '' when nothing was skipped."""
        if not self.skipped:
            return ""
        shown = ", ".join(brief(p.name, 40) for p in self.skipped[:3])
        more = ", ..." if len(self.skipped) > 3 else ""
        return f"{len(self.skipped)} hidden entries ({shown}{more})"

    def note(self) -> str | None:
        """A line to show the user when something was skipped, else None."""
        return f"{self.skipped[0].parent}: skipped {self.skipped_summary()}" if self.skipped else None


def list_feature_files(folder: str | Path) -> FeatureFolder:
    """The `.npy`/`.npz` files of a folder (not recursive), leaving out hidden names.

    Hidden names are never features: macOS writes `._x.npy` metadata files (AppleDouble) beside
    every file copied to a foreign disk, and a name starting with `.` would give a video id that
    starts with one (`...npy` is video `..`). InputError when the folder holds no feature file, and when one of its
    feature names cannot be read (a link to a file gone, a link loop, a pipe, a folder): left out with a note, its
    video was missing from a detection or a submission that exited 0, as `mgrec extract` no longer does either.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: {missing_folder_problem(folder, 'feature folder')}")
    files, skipped, unreadable = [], [], []
    for entry in sorted(folder.iterdir()):
        if entry.suffix.lower() not in FEATURE_EXTENSIONS:
            continue
        (skipped if is_hidden(entry) else files if entry.is_file() else unreadable).append(entry)
    if unreadable:
        shown = "; ".join(f"{entry.name}: {missing_file_problem(entry, 'feature file')}" for entry in unreadable[:3])
        raise InputError(f"{folder}: {part_of(len(unreadable), len(files) + len(unreadable), 'feature file')} "
                         f"cannot be "
                         f"read ({shown}{'; ...' if len(unreadable) > 3 else ''}); a folder is read whole: restore "
                         "them, or move them out of it")
    listing = FeatureFolder(files, skipped)
    if not files:
        note = f"; skipped {listing.skipped_summary()}" if skipped else ""
        raise InputError(f"{folder}: folder holds no feature files ({', '.join(FEATURE_EXTENSIONS)}){note}"
                         + (_videos_instead(folder) or _subfolders_instead(folder)))
    return listing


def _subfolders_instead(folder: Path) -> str:
    """Where a data set's root was given for its features folder (`~/.cache/mgrec/demo` for
    `~/.cache/mgrec/demo/features`): the subfolders that hold feature files, to give instead; '' when none does."""
    holding = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir() and not is_hidden(p)):
        try:  # a subfolder this user cannot read (lost+found) holds nothing to give
            count = sum(1 for p in child.iterdir() if p.suffix.lower() in FEATURE_EXTENSIONS and not is_hidden(p))
        except OSError:
            continue
        if count:
            holding.append(f"{child} ({count})")
    if not holding:
        return ""
    shown = ", ".join(holding[:3]) + (", ..." if len(holding) > 3 else "")
    return f", but its subfolder{'s' if len(holding) > 1 else ''} {shown} hold{'' if len(holding) > 1 else 's'} " \
           f"some: give {'one of them' if len(holding) > 1 else 'that folder'} (folders are not searched deeper)"


def _videos_instead(folder: Path) -> str:
    """What to do with a folder of videos given where features are read: '' when it holds none."""
    from mgrec.data.videos import VIDEO_SUFFIXES

    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not is_hidden(p))
    if not videos:
        return ""
    return (f", but {len(videos)} video file(s) ({videos[0].name}, ...): give the video files themselves "
            f"({folder}/*{videos[0].suffix}), or make their features with mgrec extract {shell_word(folder)} --out "
            "FEATURES")


def _dtype_name(dtype: np.dtype) -> str:
    name = str(dtype)  # a structured dtype can be a long text: the message stays short
    return name if len(name) <= 60 else name[:60] + "..."


def _check_dtype(dtype: np.dtype, source: object) -> None:
    if dtype.hasobject:
        raise InputError(
            f"{source}: cannot read features: not a plain array: it holds Python objects "
            f"(dtype {_dtype_name(dtype)}), which mgrec never unpickles; save the features as a {FEATURE_DTYPES} array"
        )
    # kind "f" with these sizes: not float128 (no network takes it), byte order either way.
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8) or dtype.fields is not None:
        raise InputError(f"{source}: expected {FEATURE_DTYPES} features, found dtype {_dtype_name(dtype)}")


def given_array(value: object, what: object, expected: str) -> np.ndarray:
    """Features given in Python as the numpy array the checks and the network's input take: a numpy array as it is, a
    torch tensor (what a notebook holds after its own model: any device, with or without grad, bfloat16 widened to
    float32) as the array of its values, so that it passes the checks and gives the detections of the same values as
    an array (it was refused: "got Tensor"). Anything else is refused naming `what` and what it takes (`expected`);
    the dtype, shape and values are the checks' to judge, as for a file. torch is looked up, never imported: `import
    mgrec` loads no torch, and a tensor exists only where torch was imported."""
    if isinstance(value, np.ndarray):
        return value
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds each of its values exactly
            tensor = tensor.float()
        try:
            return tensor.cpu().numpy()
        except (RuntimeError, TypeError) as exc:  # a sparse, meta or quantized tensor has no array of values
            raise InputError(f"{what}: a torch tensor ({tensor.layout}, {tensor.dtype}, on {tensor.device}) that has "
                             f"no plain array of values ({str(exc).splitlines()[0]}); give a dense tensor or a numpy "
                             "array") from None
    raise InputError(f"{what}: expected {expected}, got {type(value).__name__}")


def check_feature_values(array: np.ndarray, source: object) -> None:
    """The numeric validator of feature arrays: a float16/32/64 dtype, every value finite and within
    +-`MAX_FEATURE_ABS` (why that bound: see its comment). `source` names the file for the message.

    Scans in blocks of rows, so a memory-mapped file is never copied whole. InputError saying how
    many values are bad and where the first is: NaN/Inf first, then values out of range.
    """
    if isinstance(array, np.ma.MaskedArray):  # its comparisons skip masked values: a NaN under the mask passed
        raise InputError(f"{source}: a masked array (numpy.ma); mgrec reads every value: give array.filled(VALUE)")
    if isinstance(array, np.ndarray) and type(array) not in (np.ndarray, np.memmap):
        # A subclass redefines arithmetic: numpy.matrix's `*` is a matrix product, which made the normalisation's
        # `features * scale` a ValueError about shapes (or, for a square one, other numbers without a word).
        raise InputError(f"{source}: a {type(array).__module__}.{type(array).__name__}, a subclass of numpy.ndarray "
                         "with arithmetic of its own; give a plain array: numpy.asarray(x)")
    _check_dtype(array.dtype, source)
    rows = array if array.ndim == 2 else array.reshape(array.shape[0] if array.ndim else 1, -1)
    # The bound in the array's own dtype (float16 cannot even hold 1e6: its own maximum, 65504, is the bound).
    limit = np.asarray(min(MAX_FEATURE_ABS, float(np.finfo(array.dtype).max)), dtype=array.dtype)
    non_finite = too_large = 0
    first_non_finite = first_too_large = None
    for begin in range(0, len(rows), _SCAN_ROWS):
        block = rows[begin : begin + _SCAN_ROWS]
        magnitude = np.abs(block)
        if (magnitude <= limit).all():  # the one pass taken by good files (NaN compares False)
            continue
        bad = ~np.isfinite(block)
        big = ~bad & (magnitude > limit)
        non_finite += int(bad.sum())
        too_large += int(big.sum())
        if first_non_finite is None and bad.any():
            row, col = np.argwhere(bad)[0]
            first_non_finite = (begin + int(row), int(col))
        if first_too_large is None and big.any():
            row, col = np.argwhere(big)[0]
            first_too_large = (begin + int(row), int(col), float(block[row, col]))
    if non_finite:
        t, c = first_non_finite
        raise InputError(f"{source}: {non_finite} NaN/Inf value(s), the first at [t={t}, c={c}]")
    if too_large:
        t, c, value = first_too_large
        raise InputError(
            f"{source}: {too_large} value(s) outside +-{MAX_FEATURE_ABS:g}, the first {value:.3g} at [t={t}, c={c}]; "
            "features this large are corrupt or unscaled, and overflow the network (rescale them)"
        )


@contextlib.contextmanager
def _quiet_header_parse():
    """Silence numpy's warning for a header it could parse only after filtering it (a Python 2 `10L`).

    numpy retries such a header and warns "created on Python 2" before mgrec has checked it: on a
    corrupt header (`(-10L, 3)`) that stray warning came before mgrec's own one-line error, and on a
    real Python 2 file it says nothing the user needs. Only this warning, only while numpy reads a header."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*created on Python 2", category=UserWarning)
        yield


def _read_npy_header(handle) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the header of a .npy stream, without reading the data."""
    version = npy_format.read_magic(handle)
    if version not in ((1, 0), (2, 0)):
        # 3.0 is only written for structured dtypes with non-Latin-1 field names: never features.
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not one of a plain array (1.0, 2.0)")
    read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:
        with _quiet_header_parse():
            return read(handle)  # at most 10,000 bytes of header, parsed as a literal (never evaluated)
    except (ValueError, OSError, EOFError):
        raise
    except Exception as exc:
        # numpy's header parser lets the tokenizer's own errors through (tokenize.TokenError,
        # SyntaxError) for a mangled header: one more way of saying it is corrupt.
        raise ValueError(f"cannot parse the header ({type(exc).__name__})") from None


def _check_declared(path: Path, shape: tuple, dtype: np.dtype, data_bytes: int) -> None:
    """Refuse a header before its data is read: a non-float dtype, a shape the file (or .npz member)
    does not hold, or more than MAX_FEATURE_VALUES values."""
    _check_dtype(dtype, path)
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise InputError(
            f"{path}: cannot read features (truncated or corrupt file?): shape {brief(shape)} in the header"
        )
    count = math.prod(shape)
    if count * dtype.itemsize > data_bytes:
        raise InputError(
            f"{path}: cannot read features (truncated or corrupt file?): the header declares shape {brief(shape)} "
            f"({count * dtype.itemsize:,} bytes of {_dtype_name(dtype)}) but the file holds {data_bytes:,} bytes"
        )
    if count * dtype.itemsize < data_bytes:  # np.save called twice on one open file: the first array alone read
        raise InputError(
            f"{path}: holds {data_bytes - count * dtype.itemsize:,} bytes after its array of shape {brief(shape)} "
            "(arrays appended with np.save to one file?); a feature file is one array: save the video's features "
            "once, the parts joined (np.concatenate)"
        )
    if count > MAX_FEATURE_VALUES:
        raise InputError(
            f"{path}: shape {brief(shape)} is {count:,} values; one feature file may hold at most "
            f"{MAX_FEATURE_VALUES:,} (4 GiB as float32): split the video, or lower the frame rate of the features"
        )


def _reason(exc: BaseException) -> str:
    """numpy's or zipfile's reason, one short line; its advice to load pickles "unsafely" is not relayed."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "allow_pickle" in text or "pickle" in text:
        return "not a plain array (it holds pickled Python objects, which mgrec never loads)"
    return text if len(text) <= 200 else text[:200] + "..."


def _open_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        shape, _, dtype = _read_npy_header(handle)
        header_bytes = handle.tell()
    _check_declared(path, shape, dtype, path.stat().st_size - header_bytes)
    # Memory-mapped: `inspect_features` then reads the values block by block, never a whole copy.
    with _quiet_header_parse():  # np.load parses the header again
        return np.load(path, mmap_mode="r", allow_pickle=False)


def _open_npz(path: Path) -> np.ndarray:
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
        member = next((name for name in ("feats.npy", "feats") if name in members), None)
        if member is None:
            keys = [name.removesuffix(".npy") for name in members]
            shown = ", ".join(brief(key, 40) if not key.isidentifier() else key for key in keys[:10])
            more = f", ... ({len(keys)} in all)" if len(keys) > 10 else ""
            raise InputError(f"{path}: no array 'feats' in this .npz; it holds: {shown or 'nothing'}{more}")
        info = archive.getinfo(member)
        # file_size is the size the archive declares for the member; zipfile never returns more than
        # that, so the declared sizes bound what a deflate bomb can make us read.
        with archive.open(member) as stream:
            shape, fortran_order, dtype = _read_npy_header(stream)
            header_bytes = stream.tell()
            _check_declared(path, shape, dtype, info.file_size - header_bytes)
            nbytes = math.prod(shape) * dtype.itemsize
            data = stream.read(nbytes)
    if len(data) < nbytes:
        raise InputError(f"{path}: cannot read features (truncated or corrupt file?): the 'feats' array is cut short")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def feature_rows(path: str | Path) -> int:
    """The number of rows (steps) of a feature file, from its header (`.npy`: the values are not read)."""
    return len(_open_array(Path(path)))


def feature_file_missing(path: str | Path) -> str:
    """Why there is no feature file at `path`, which is not a file: "feature file not found", or, where a name is
    there (a link to a file gone, a drive not mounted; a link loop), what it is, as `mgrec data check` says it:
    `mgrec evaluate` and the readers called a link loop "not found", sending the user looking for a file."""
    if not os.path.lexists(path):
        return "feature file not found"
    return f"feature file cannot be read: {missing_file_problem(path, 'feature file')}"


def _open_array(path: Path) -> np.ndarray:
    """The raw stored array (header checked, values not yet); memory-mapped for `.npy`, read for `.npz`."""
    if not path.is_file():
        if path.exists():  # a pipe, a device or a folder: nothing mgrec can memory-map or seek in
            raise InputError(f"{path}: not a regular file (a pipe, device or folder); mgrec reads feature "
                             "files: write the features to a .npy file first")
        raise InputError(f"{path}: {feature_file_missing(path)}{spelt_alike_beside(path)}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: feature file is empty (0 bytes); extract this video again")
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_NPY_MAGIC))
        # Decided by the magic bytes, as np.load does, so a misnamed .npy/.npz still loads right.
        if start.startswith(_NPY_MAGIC):
            return _open_npy(path)
        if start[:4] in _ZIP_MAGICS:
            return _open_npz(path)
        if start.startswith(_PICKLE_MAGIC):
            raise InputError(
                f"{path}: cannot read features: a Python pickle, not a plain array (mgrec never unpickles files)"
            )
        arrays = [path.with_suffix(ending) for ending in (".npy", ".npz") if path.with_suffix(ending).is_file()]
        if path.suffix.lower() == ".json":
            if arrays:  # `detect RUN features/x.json`: the sidecar, given for its array
                raise InputError(f"{path}: is the sidecar of the features {arrays[0].name} (what extraction "
                                 f"recorded), not features: give {arrays[0]}")
            # annotations, predictions or a sidecar without its array, given as features
            raise InputError(f"{path}: a JSON file, not features (a .npy or .npz array of shape (T, C)); no "
                             f"{path.stem}.npy or .npz is beside it")
        if path.suffix.lower() in VIDEO_SUFFIXES:  # `OfflineDetector.detect("clip.mp4")`: features come first
            raise InputError(f"{path}: a video, not a feature file: turn it into features first (`mgrec extract`, or "
                             "`mgrec detect RUN VIDEO`, which extracts with the run's recipe)")
        # `detect RUN clip.mxf` (a file named as features that is damaged is damaged features)
        if path.suffix.lower() not in FEATURE_EXTENSIONS and (container := video_under_another_name(path)):
            raise InputError(another_name_advice(path, container))
        raise InputError(f"{path}: cannot read features (truncated or corrupt file?): not a .npy or .npz file")
    except (ValueError, OSError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error,
            lzma.LZMAError) as exc:
        # RuntimeError: an encrypted zip member; NotImplementedError: an unknown zip compression.
        raise InputError(f"{path}: cannot read features (truncated or corrupt file?): {_reason(exc)}") from None


def check_feature_array(array: np.ndarray, source: object, expected_dim: int | None) -> None:
    """What every feature file passes, for an array given in Python (`source` names it in the message): a
    (T, C) float16/32/64 array with T and C above 0 and C = `expected_dim`, every value finite and within
    +-`MAX_FEATURE_ABS`."""
    _validate(array, source, expected_dim)


def _validate(array: np.ndarray, path: Path | object, expected_dim: int | None,
              dim_key: str = "data.feature_dim") -> tuple[int, int]:
    _check_dtype(array.dtype, path)
    if array.ndim != 2:
        raise InputError(f"{path}: expected a 2-D array (T, C), found shape {array.shape}")
    length, dim = array.shape
    if length == 0 or dim == 0:
        raise InputError(f"{path}: feature array is empty, shape {array.shape}")
    if expected_dim is not None and dim != expected_dim:
        if length == expected_dim:
            raise InputError(
                f"{path}: shape {array.shape} looks transposed (C, T); features must be stored as (T, C) "
                f"with C = {expected_dim}"
            )
        raise InputError(f"{path}: expected feature dimension {expected_dim} ({dim_key}), found {dim}")
    check_feature_values(array, path)
    return length, dim


def inspect_features(path: str | Path, expected_dim: int | None = None,
                     dim_key: str = "data.feature_dim") -> tuple[int, int]:
    """Validate a feature file like `load_features` and return its (T, C), without loading it
    into memory (`.npy` is memory-mapped; the value scan still reads every value)."""
    path = Path(path)
    return _validate(_open_array(path), path, expected_dim, dim_key)


def feature_file_shape(path: str | Path) -> tuple[int, ...]:
    """The shape a feature file's header declares, after checking that the file holds that much data
    (memory-mapped: nothing is read but the header). InputError for a missing, truncated or corrupt file."""
    return tuple(_open_array(Path(path)).shape)


def load_features(path: str | Path, expected_dim: int | None = None, dim_key: str = "data.feature_dim") -> np.ndarray:
    """Load a feature file as a (T, C) float32 array.

    InputError naming the file for: a missing, empty, truncated or corrupt file; a header declaring
    more data than the file holds or more than `MAX_FEATURE_VALUES` values (checked before reading);
    an `.npz` without `feats`; an array that is not float16/32/64 (a pickled object array is named
    as such, never loaded); not 2-D; T or C zero; C != expected_dim (a transposed (C, T) array is
    recognised and named; `dim_key` is the config key the message names, a stream's own in a run of several
    streams); NaN or Inf values, or values beyond +-`MAX_FEATURE_ABS` (how many and
    where the first is); a sidecar whose `num_features` is not T (`check_sidecar_length`).
    """
    path = Path(path)
    array = _open_array(path)
    length, _ = _validate(array, path, expected_dim, dim_key)
    check_sidecar_length(path, length)  # `inspect_features` leaves it to its caller (data check reports both)
    return np.array(array, dtype=np.float32, order="C")  # a real copy: the memory map is closed after


# Rows of a feature file compared with another's (`feature_fingerprint`): evenly spaced, the first and last among
# them. Reading them from a memory-mapped .npy reads those rows only.
FINGERPRINT_ROWS = 16
# Two files hold the same features when their fingerprints differ at each value by at most this fraction of the
# largest value of its channel (`same_features`): a copy stored float16 (a relative 4.9e-4) or the same video
# extracted again in another runtime (onnxruntime's EfficientNet-Lite0 within 2e-6 of torch's) is within it; two
# recordings are not: their sensors' noise alone differs by more.
COPY_TOLERANCE = 1e-3
# Each channel (column) by its own largest value, not the file's: a channel in other units far larger than the
# rest (a frame width of 1920, a frame rate beside embeddings of 0 to 6) made the tolerance of every channel so wide
# that two videos alike in it alone were one. A channel whose values are all far smaller than the file's largest (a
# nearly dead unit, where another runtime's rounding or float16's subnormals are not relative to the value) is held to
# this fraction of the file's largest value instead.
CHANNEL_FLOOR = 1e-2


def feature_fingerprint(path: str | Path) -> np.ndarray:
    """The rows of a feature file that `same_features` compares (`FINGERPRINT_ROWS` of them, float32; all rows of a
    shorter file). The values are not validated (`inspect_features` does that). InputError for a file that cannot
    be opened, or holds no (T, C) float array."""
    path = Path(path)
    array = _open_array(path)
    _check_dtype(array.dtype, path)
    if array.ndim != 2:
        raise InputError(f"{path}: expected a 2-D array (T, C), found shape {array.shape}")
    rows = np.unique(np.linspace(0, len(array) - 1, min(len(array), FINGERPRINT_ROWS)).round().astype(np.int64))
    return np.asarray(array[rows], dtype=np.float32)


def same_features(first: np.ndarray, then: np.ndarray) -> str | None:
    """Whether two fingerprints (`feature_fingerprint`, (rows, C) of files of one shape) are one video's features:
    "hold the same features" where equal, "hold the same features up to float rounding" where every value is within
    `COPY_TOLERANCE` of its channel's largest (`CHANNEL_FLOOR`), else None. NaN or infinity compare as different
    (their files' own checks refuse them)."""
    if not (np.isfinite(first).all() and np.isfinite(then).all()):
        return None  # an infinity made the tolerance below infinite: such a file matched every file of its shape
    difference = np.abs(first - then)
    if not difference.any():
        return "hold the same features"
    if (difference <= np.maximum(_channel_limits(first), _channel_limits(then))).all():
        return "hold the same features up to float rounding"
    return None


def _channel_limits(fingerprint: np.ndarray) -> np.ndarray:
    """How far a copy's values may be from `fingerprint`'s in each channel (C,), as this file's side of the limit
    (`same_features` takes the larger of the two files'): `COPY_TOLERANCE` of the channel's largest value, at least
    `CHANNEL_FLOOR` of the file's."""
    scale = np.abs(fingerprint).max(axis=0, initial=0.0)
    return COPY_TOLERANCE * np.maximum(scale, CHANNEL_FLOOR * scale.max(initial=0.0))


class Repeat(NamedTuple):
    """`files[then]` is `files[first]` again (`repeated_feature_files`); `how` says so, in words for a message."""
    first: int
    then: int
    how: str  # "are one file", "hold the same features" or "hold the same features up to float rounding"


def repeated_feature_files(files: Sequence[Path], shapes: Mapping[int, tuple[int, ...]]) -> list[Repeat]:
    """The files of `files` that repeat an earlier one, each paired with the first it repeats: one file reached
    twice (a link, or two names that resolve to it) or the same values under another name (a copy, `.npy` or
    `.npz`, float16 or float32, or the video extracted again in another runtime: `same_features`). `shapes` gives
    each file's shape by its index; a file without one (unreadable: its own check reports it) is left out. Only
    files of one shape can hold the same values, so only they are compared (`_repeats_among`: by a few values of
    their fingerprints before the whole ones): nothing is read where no two shapes agree."""
    repeats: list[Repeat] = []
    real_first: dict[Path, int] = {}
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, path in enumerate(files):
        if index not in shapes:
            continue
        try:
            first = real_first.setdefault(resolve_path(path), index)
        except InputError:  # a link loop: the file's own check says so
            continue
        if first != index:
            repeats.append(Repeat(first, index, "are one file"))
        else:
            by_shape.setdefault(tuple(shapes[index]), []).append(index)
    for group in (g for g in by_shape.values() if len(g) > 1):
        # a file changed or broken since its shape was read raises InputError: left out, its own check says so
        repeats += _repeats_among(group, lambda index: feature_fingerprint(files[index]))
    return sorted(repeats, key=lambda repeat: repeat.then)


# Values of each fingerprint compared first: those that differ most between the files (a pair that differs there by
# more than the tolerance is not compared whole). The first values would not do: videos that open on the same frames
# (a black screen, a title card) agree there, and every pair of them was compared whole.
PROBE_VALUES = 64
# Files whose values the probe positions are chosen from (evenly spaced among them): enough to see which values vary.
PROBE_SAMPLE = 256


def _repeats_among(indices: Sequence[int], read: Callable[[int], np.ndarray]) -> list[Repeat]:
    """Each of the files `indices` whose fingerprint (`read(index)`, InputError for a file that cannot be read: left
    out) repeats an earlier one's (`same_features`), paired with the first of the files it repeats. Fingerprints of
    another shape than most of the sample's (a file changed since its shape was read) are compared only with their
    like.

    Not every pair is compared: two copies are within the tolerance at every value, so at the one value that varies
    most between the files too. The files are sorted by that value, and each is compared only with those within its
    tolerance there (then by the probe values, then whole): thousands of files of one shape cost about what reading
    them does, where comparing every pair grew with their square.

    What is held: the whole fingerprints of `PROBE_SAMPLE` files (the probe positions are chosen from them), and of
    every other file only its probe values and their limits; the few pairs whose probes agree are compared whole by
    reading their fingerprints again. Holding every fingerprint cost 90 KB a file at 1408 channels (VideoMAE-g):
    720 MB for 8000 videos of one length."""
    if len(indices) < 2:
        return []
    sample: dict[int, np.ndarray | None] = {}
    for position in np.linspace(0, len(indices) - 1, min(len(indices), PROBE_SAMPLE)).astype(int).tolist():
        try:
            sample[indices[position]] = read(indices[position])
        except InputError:
            sample[indices[position]] = None  # left out, as below
    shapes = [fingerprint.shape for fingerprint in sample.values() if fingerprint is not None]
    if not shapes:  # none of the sample could be read: the rest may be
        return _repeats_among([index for index in indices if index not in sample], read)
    shape = max(shapes, key=shapes.count)  # the group's shape; another is compared in its own search (`others`)
    finite = [f for f in sample.values() if f is not None and f.shape == shape and np.isfinite(f).all()]
    size = math.prod(shape)
    # the spread of the middle half of the sample: values most files share (a ReLU's zeros) do not sort them apart
    if finite and size:
        low, high = np.quantile(np.stack([f.reshape(-1) for f in finite]), [0.25, 0.75], axis=0)
        positions = np.argsort(-(high - low), kind="stable")[:PROBE_VALUES]
    else:  # no finite fingerprint in the sample: any positions find the same copies
        positions = np.arange(min(size, PROBE_VALUES))
    channels = positions % shape[-1] if size else positions
    # a fingerprint holding NaN or infinity repeats nothing (`same_features`), and would spoil the sort below
    kept, others, probe_list, limit_list = [], [], [], []
    for index in indices:
        try:
            fingerprint = sample[index] if index in sample else read(index)
        except InputError:
            continue
        if fingerprint is None:
            continue
        if fingerprint.shape != shape:
            others.append(index)
        elif np.isfinite(fingerprint).all():
            kept.append(index)
            probe_list.append(fingerprint.reshape(-1)[positions])  # copies: the fingerprint itself is let go
            # each file's side of the limit at each probe value (`_channel_limits` of the probe's channel): a channel
            # far larger than the rest does not widen the others' (every file of such a set a candidate of every other)
            limit_list.append(_channel_limits(fingerprint)[channels])
    held = {index: sample[index] for index in kept if index in sample}  # the sample's others are let go
    del sample, finite
    repeats = _repeats_among(others, read)
    if len(kept) < 2:
        return repeats
    if not size:  # files of no rows (or channels) hold the same nothing: the first's copies
        return repeats + [Repeat(kept[0], index, "hold the same features") for index in kept[1:]]
    probes, probe_limits = np.stack(probe_list), np.stack(limit_list)

    def whole(position: int) -> np.ndarray | None:
        """The fingerprint of `kept[position]`: held, or read again (None where it cannot be, or changed shape)."""
        if kept[position] in held:
            return held[kept[position]]
        try:
            fingerprint = read(kept[position])
        except InputError:
            return None
        return fingerprint if fingerprint.shape == shape else None

    # each file's window on the sorting value, its own tolerance widened by float32 rounding: a pair of copies is
    # within the window of the file of the larger limit there, so it is found from that file
    key = probes[:, 0].astype(np.float64)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    reach = probe_limits[:, 0].astype(np.float64) * (1 + 1e-5)
    starts = np.searchsorted(sorted_key, key - reach, side="left")
    stops = np.searchsorted(sorted_key, key + reach, side="right")
    earlier_of: list[list[int]] = [[] for _ in kept]
    for position, (start, stop) in enumerate(zip(starts, stops)):
        for other in order[start:stop].tolist():
            if other != position:
                earlier_of[max(position, other)].append(min(position, other))
    first_of: dict[int, int] = {}
    for position in range(1, len(kept)):
        if not earlier_of[position]:
            continue
        earlier = np.unique(earlier_of[position])  # in file order: the first file a copy repeats is the one named
        limits = np.maximum(probe_limits[earlier], probe_limits[position])
        near = earlier[(np.abs(probes[earlier] - probes[position]) <= limits).all(axis=1)].tolist()
        this = whole(position) if near else None
        for candidate in near if this is not None else []:
            that = whole(candidate)
            how = None if that is None else same_features(that, this)
            if how is not None:
                first = first_of.get(candidate, candidate)
                first_of[position] = first
                repeats.append(Repeat(kept[first], kept[position], how))
                break
    return repeats


def write_features(path: str | Path, features: np.ndarray, sidecar: FeatureSidecar) -> FeatureSidecar:
    """Write a feature array (float16 or float32, kept as given) and then its sidecar.

    Each file is written atomically and the sidecar last, the old one set aside meanwhile (`set_aside`): a sidecar
    on disk therefore always describes a complete feature file. Where the array cannot be written (a full disk), the
    old pair stays as it was. `.npz` paths store the array under
    `feats`. Returns the sidecar as written (with `num_features` = T).
    """
    path = Path(path)
    if features.ndim != 2 or features.dtype not in (np.float16, np.float32):
        raise ValueError(f"features must be a 2-D float16/float32 (T, C) array, got {features.dtype} {features.shape}")
    if features.shape[1] != sidecar.dim:
        raise ValueError(f"sidecar dim {sidecar.dim} does not match features of shape {features.shape}")
    if sidecar.num_features not in (None, features.shape[0]):
        raise ValueError(f"sidecar num_features {sidecar.num_features} does not match features {features.shape}")
    sidecar = dataclasses.replace(sidecar, num_features=int(features.shape[0]))
    meta_path = sidecar_path(path)
    with set_aside(meta_path, unless_changed=path):  # back where the array could not be written and is as it was
        with atomic_open(path, binary=True) as handle:
            if path.suffix.lower() == ".npz":
                np.savez(handle, feats=features)
            else:
                np.save(handle, features)
    with atomic_open(meta_path) as handle:
        json.dump(dataclasses.asdict(sidecar), handle, indent=2)
        handle.write("\n")
    return sidecar
