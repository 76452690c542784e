"""What every extraction job shares (`mgrec.extract.jobs`'s video and skeleton jobs, `mgrec.extract.pose`'s):
the result record, its whole-number settings checked, the output folder held against another extraction,
resuming (a finished sidecar of the same recipe is a file done; inside a video, `PartialFeatures`: the rows a
killed extraction saved), never replacing a file mgrec did not write, frames counted as they are decoded, and the
failures of single inputs listed once every other input is done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mgrec.data.features import (
    FeatureSidecar,
    feature_file_shape,
    load_features,
    read_sidecar,
    sidecar_path,
    source_stamp,
    write_features,
)
from mgrec.devices import process_rank
from mgrec.errors import InputError
from mgrec.extract import number_problem
from mgrec.files import counted
from mgrec.run import PARTIAL_FEATURES, lock_features_folder


@dataclass(frozen=True)
class ExtractResult:
    source: Path  # the video or skeleton CSV
    feature_path: Path
    status: str  # "extracted", or "skipped" (finished earlier with the same recipe)
    frames: int | None  # as recorded in the sidecar
    num_features: int | None
    seconds: float
    warnings: tuple[str, ...] = ()  # things the user should know, each beginning with the input's path
    runtime: str | None = None  # what ran the network, "torch" or "onnxruntime" (None: none ran, or not mgrec's)


def check_numbers(**values: object) -> None:
    """The whole-number settings of an extraction (window, stride, size, batch: `mgrec.extract.NUMBER_RANGES`,
    the ranges the command line refuses too), refused by name before any work; size None is the backbone's own."""
    for name, value in values.items():
        if value is None and name == "size":
            continue
        problem = number_problem(name, value)
        if problem is not None:
            raise InputError(f"{name}: {problem}")


def holding(out_dir: str | Path) -> contextlib.AbstractContextManager:
    """The output folder held for one extraction (`mgrec.run.lock_features_folder`), from before its first look into
    it (what is done already) to its last write; the processes of one torchrun extraction hold it together."""
    return lock_features_folder(out_dir, shared=process_rank()[1] > 1)


def finished_sidecar(feature_path: Path, backbone: str, weights_sha256: str | None, window: int, stride: int,
                      fps: float | None = None, frames_per_window: int | None = None, source: Path | None = None,
                      precision: str | None = None) -> FeatureSidecar | None:
    """The sidecar of a complete feature file made with this recipe from `source` as it is now (its
    `source_stamp`; sidecars written before stamps existed are trusted), or None (then: extract).
    Sidecars written before the precision was recorded are trusted for any `precision` likewise.

    The sidecar is written last, so its presence means the feature file is complete.
    """
    meta_path = sidecar_path(feature_path)
    if not (feature_path.is_file() and meta_path.is_file()):
        return None
    try:
        done = read_sidecar(meta_path)
        complete = feature_file_shape(feature_path)[:1] == (done.num_features,)
    except InputError:
        return None  # an unreadable sidecar is replaced, like a missing one; a truncated feature file too
    if not complete:
        return None  # the file was cut or replaced after its sidecar was written
    recipe = (backbone, weights_sha256, window, stride, frames_per_window)
    same_recipe = (done.backbone, done.weights_sha256, done.window, done.stride, done.frames_per_window) == recipe
    same_precision = done.precision is None or done.precision == precision
    same_fps = fps is None or abs(done.fps - fps) <= 1e-3
    same_source = source is None or (_same_input(done, source) and (done.source_stamp is None
                                                                     or done.source_stamp == source_stamp(source)))
    return done if same_recipe and same_precision and same_fps and same_source else None


# How often, at least, the rows of a video being extracted are saved (`PartialFeatures`): a kill loses at most about
# this much of the network's work. Less often where a save takes more than `SAVE_SHARE` of the time between two: each
# save writes all the rows done (an hour of video at 30 fps, 4-frame stride and 1408-d VideoMAE V2 features: 150 MB).
PARTIAL_SAVE_SECONDS = 60.0
SAVE_SHARE = 0.05


def partial_path(feature_path: Path) -> Path:
    """Where the rows done of `feature_path`'s video are kept while it is extracted: `.<id>.partial.npy` beside it,
    its sidecar `.<id>.partial.json` (hidden names: no reader of the folder takes them for a video's features)."""
    return feature_path.with_name(PARTIAL_FEATURES.format(feature_path.stem))


def remove_partial(feature_path: Path) -> None:
    """The saved rows of `feature_path`'s video removed (sidecar first: rows without one are never trusted); a file
    that cannot be removed stays, to be replaced or removed by the next extraction of the video."""
    rows = partial_path(feature_path)
    for path in (sidecar_path(rows), rows):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


class PartialFeatures:
    """The feature rows of one video done so far, kept beside its output while it is extracted (`partial_path`), so
    that an extraction killed inside a video resumes at its first window not saved, not at its first frame.

    The rows and their sidecar are written by `write_features` (atomically, the sidecar last: a sidecar on disk
    describes complete rows, as many as its num_features); the sidecar is `recipe`, the one the video's features
    will have, frames not yet known: backbone and size, weights sha256, window, stride, frames per window, precision,
    fps, and the video's path and stamp (size and modification time). Rows are saved every `every` seconds (at least:
    `SAVE_SHARE`) and when the extraction stops on an exception other than the video's own `InputError` (Ctrl-C,
    out of memory); SIGKILL loses the rows since the last save. They are removed once the video's features are written
    (`remove_partial`), and when it fails as an input (its rows would only lead to the same failure).
    """

    def __init__(self, feature_path: Path, recipe: FeatureSidecar, source: Path, every: float | None = None):
        self.feature_path = feature_path
        self.path = partial_path(feature_path)
        self.recipe = recipe
        self.source = source
        self.every = PARTIAL_SAVE_SECONDS if every is None else every
        self.rows = np.empty((0, recipe.dim), np.float32)  # grown by doubling; rows [0, count) are done
        self.count = 0
        self.saved = 0  # rows on disk

    def resume(self, windows: int | None = None) -> int:
        """Take the rows an earlier extraction of this video saved with this recipe as done: their count, the first
        window to compute (0: none). Rows of another recipe, of another file or of this one changed since (another
        size or modification time), unreadable ones (cut, corrupt, without their sidecar, values no extraction
        makes) and more of them than the video's `windows` (when known) are removed, with a note on stderr."""
        if not (self.path.exists() or sidecar_path(self.path).exists()):
            return 0
        problem = self._load(windows)
        if problem is not None:
            remove_partial(self.feature_path)
            _note(f"{self.source}: the rows saved by an extraction of it that stopped ({self.path}) are not used: "
                  f"{problem}; it is extracted from its first frame")
            return 0
        _note(f"{self.source}: resuming at window {self.count}, after the rows saved by an extraction of it that "
              f"stopped ({self.path})")
        return self.count

    def _load(self, windows: int | None) -> str | None:
        """The saved rows loaded, or why they are not used."""
        meta = sidecar_path(self.path)
        if not meta.is_file():
            return f"{meta.name} is missing (the extraction stopped while saving them)"
        try:
            saved = read_sidecar(meta)
        except InputError as exc:
            return f"their sidecar cannot be read ({exc})"
        recipe = self.recipe
        fields = ("backbone", "weights_sha256", "window", "stride", "frames_per_window", "precision", "dim")
        differ = [name for name in fields if getattr(saved, name) != getattr(recipe, name)]
        differ += ["fps"] * (abs(saved.fps - recipe.fps) > 1e-3)
        if differ:
            return f"they were made with another recipe (its {', '.join(differ)})"
        if saved.source_stamp != recipe.source_stamp or not _same_input(saved, self.source):
            return (f"they are of {saved.source} as it was then (size:mtime {saved.source_stamp}), "
                    f"not of this file ({recipe.source_stamp})")
        try:
            rows = load_features(self.path, expected_dim=recipe.dim)  # its length checked against the sidecar's
        except InputError as exc:
            return f"they cannot be read ({exc})"
        if windows is not None and len(rows) > windows:
            return f"{len(rows)} rows, more than the video's {windows} windows"
        self.rows, self.count, self.saved = rows, len(rows), len(rows)
        return None

    def collect(self, rows: Iterable[np.ndarray]) -> np.ndarray:
        """All the video's rows, (T, dim) float32: those resumed, then `rows` (the network's, from the first window
        after them) taken as they come and saved as described above."""
        due = time.monotonic() + self.every
        try:
            for row in rows:
                if self.count == len(self.rows):
                    grown = np.empty((max(64, 2 * len(self.rows)), self.recipe.dim), np.float32)
                    grown[:self.count] = self.rows[:self.count]
                    self.rows = grown
                self.rows[self.count] = row
                self.count += 1
                if time.monotonic() >= due:
                    began = time.monotonic()
                    self.save()
                    due = time.monotonic() + max(self.every, (time.monotonic() - began) / SAVE_SHARE)
        except InputError:
            raise  # the video's own failure: its rows are removed
        except BaseException:
            with contextlib.suppress(Exception):  # the exception that stopped the extraction is the one to say
                self.save()
            raise
        return self.rows[:self.count]

    def save(self) -> None:
        if self.count > self.saved:
            write_features(self.path, self.rows[:self.count], self.recipe)
            self.saved = self.count


def _note(line: str) -> None:
    tqdm.write(f"note: {line}", file=sys.stderr)  # above a progress bar, where one is shown


def refuse_a_file_mgrec_did_not_write(feature_path: Path, source: Path | None) -> None:
    """Extraction replaces only its own earlier outputs of the same input (a sidecar mgrec reads, a feature array,
    or an array a killed extraction left without its sidecar): with --out the videos' own folder, `clip.json` or
    `clip.npy` may be the user's own file, and replacing it would lose it; features of another input of the same
    name (`camA/clip.mp4` extracted earlier, `camB/clip.mp4` now) are hours of work of a video that is still there.
    A recorded source that is gone (moved, renamed) is no longer anyone's: its features may be replaced. `source`
    None: an output made of no one input file (fused features), which replaces mgrec's own outputs only."""
    meta_path = sidecar_path(feature_path)
    if meta_path.exists():
        try:
            earlier = read_sidecar(meta_path)
        except InputError:
            earlier = None
        foreign = None if earlier is not None else meta_path  # ours: so is the array beside it, even cut
        if earlier is not None and source is not None and not _same_input(earlier, source):
            raise InputError(f"{feature_path} holds the features of {earlier.source} (its sidecar says so), another "
                             f"file than {source}, both stored as {feature_path.stem!r}: extract them into different "
                             "folders, or delete those features first to replace them")
    else:
        foreign = feature_path if feature_path.exists() and not _reads(feature_file_shape, feature_path) else None
    if foreign is not None:
        raise InputError(f"{foreign} exists and was not written by mgrec extract; extracting would replace it: "
                         "move it, or choose another --out")


def _same_input(sidecar: FeatureSidecar, source: Path) -> bool:
    """Whether features with `sidecar` may be `source`'s: they record no source, or `source` itself (by any path,
    a hard link too), or one that is gone (moved or renamed: its stamp then says whether it is the same file), or
    a copy with its size and time (`cp -p`, the same stamp)."""
    recorded = sidecar.source
    if recorded is None:
        return True
    try:
        if not Path(recorded).exists():
            return True
        return os.path.samefile(recorded, source) or sidecar.source_stamp == source_stamp(source)
    except (OSError, ValueError):  # a recorded path no file system takes (hand-edited): nobody's
        return True


def _reads(read, path: Path) -> bool:
    """Whether `read(path)` (mgrec's sidecar or feature-file reader) accepts the file."""
    try:
        read(path)
    except InputError:
        return False
    return True


def skipped(source: Path, feature_path: Path, done: FeatureSidecar) -> ExtractResult:
    return ExtractResult(source, feature_path, "skipped", done.frames, done.num_features, 0.0)


class InputsFailed(InputError):
    """Some inputs of an extraction failed, each said in `failures`; the others' features were written, and `results`
    are theirs."""

    def __init__(self, message: str, failures: list[str], results: list[ExtractResult] | None = None):
        super().__init__(message)
        self.failures = failures
        self.results = results or []


def raise_failures(failures: list[str], total: int, results: list[ExtractResult] | None = None) -> None:
    """InputsFailed listing `failures`, with the `results` of the inputs that did not fail, where any failed."""
    if failures:
        listing = "\n  ".join(failures)
        others = " (the others were written)" if len(failures) < total else ""
        raise InputsFailed(f"{len(failures)} of {total} inputs failed{others}:\n  {listing}", failures, results)


class FrameCounter:
    """Passes items through and counts them (the frame count is known only after decoding)."""

    def __init__(self, items: Iterator):
        self.items = items
        self.count = 0

    def __iter__(self):
        for item in self.items:
            self.count += 1
            yield item


def ticking(items: Iterator, bar) -> Iterator:
    """Passes items through, advancing `bar` as the network takes them (not as they are decoded ahead)."""
    for item in items:
        bar.update(1)
        yield item


def check_length(path: Path | str, frames: int, window: int) -> None:
    if frames == 0:
        raise InputError(f"{path}: no frames could be decoded")
    if frames < window:
        raise InputError(f"{path}: {counted(frames, 'frame')}, shorter than one window of {window} frames")
