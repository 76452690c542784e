"""What every extraction job shares (`mgrec.extract.jobs`'s video and skeleton jobs, `mgrec.extract.pose`'s):
the result record, its whole-number settings checked, the output folder held against another extraction,
resuming (a finished sidecar of the same recipe is a file done), never replacing a file mgrec did not write,
frames counted as they are decoded, and the failures of single inputs listed once every other input is done.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mgrec.data.features import FeatureSidecar, feature_file_shape, read_sidecar, sidecar_path, source_stamp
from mgrec.devices import process_rank
from mgrec.errors import InputError
from mgrec.extract import number_problem
from mgrec.run import lock_features_folder


@dataclass(frozen=True)
class ExtractResult:
    source: Path  # the video or skeleton CSV
    feature_path: Path
    status: str  # "extracted", or "skipped" (finished earlier with the same recipe)
    frames: int | None  # as recorded in the sidecar
    num_features: int | None
    seconds: float
    warnings: tuple[str, ...] = ()  # things the user should know, e.g. untracked skeleton frames


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
    """Some inputs of an extraction failed, each said in `failures`; the others' features were written."""

    def __init__(self, message: str, failures: list[str]):
        super().__init__(message)
        self.failures = failures


def raise_failures(failures: list[str], total: int) -> None:
    if failures:
        listing = "\n  ".join(failures)
        others = " (the others were written)" if len(failures) < total else ""
        raise InputsFailed(f"{len(failures)} of {total} inputs failed{others}:\n  {listing}", failures)


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


def check_length(path: Path, frames: int, window: int) -> None:
    if frames == 0:
        raise InputError(f"{path}: no frames could be decoded")
    if frames < window:
        raise InputError(f"{path}: {frames} frames, shorter than one window of {window} frames")
