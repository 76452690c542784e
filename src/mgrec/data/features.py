"""Feature files: one (T, C) array per video plus a JSON sidecar saying how it was made.

`<features_dir>/<video_id>.npy` holds float16/float32 features, row t for the window of frames
[t*stride, t*stride + window) (see `mgrec.timeline`); `.npz` files hold the same array under the
key `feats`. The sidecar `<video_id>.json` records fps, stride, window, backbone, dim and the
number of video frames, so that a config that disagrees with the features is caught before
training instead of producing silently shifted detections.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mgrec.errors import InputError
from mgrec.files import atomic_open, read_json

# Rows per block when scanning for NaN/Inf, so that a memory-mapped file is never copied whole.
_SCAN_ROWS = 4096


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


def sidecar_path(feature_path: str | Path) -> Path:
    """The sidecar of a feature file: same folder and stem, `.json`."""
    return Path(feature_path).with_suffix(".json")


def feature_path(features_dir: str | Path, video_id: str, ext: str) -> Path:
    """`<features_dir>/<video_id><ext>`; `ext` may be given with or without the dot."""
    return Path(features_dir) / f"{video_id}{ext if ext.startswith('.') else '.' + ext}"


# ---------------------------------------------------------------------------------------------
# Sidecars


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional(check):
    return lambda value: value is None or check(value)


_SIDECAR_CHECKS = {
    # field: (is the value acceptable, what was expected)
    "fps": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
            "a positive number"),
    "stride": (_positive_int, "a positive integer"),
    "window": (_positive_int, "a positive integer"),
    "backbone": (lambda v: isinstance(v, str) and v != "", "a backbone name"),
    "dim": (_positive_int, "a positive integer"),
    "frames": (_optional(_positive_int), "a positive integer or null"),
    "weights": (_optional(lambda v: isinstance(v, str)), "a string or null"),
    "weights_sha256": (_optional(lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None),
                       "64 lower-case hex digits or null"),
    "num_features": (_optional(_positive_int), "a positive integer or null"),
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
            raise InputError(f"{path} [{name}]: expected {expected}, got {value!r}")
    return FeatureSidecar(**{**raw, "fps": float(raw["fps"])})


def check_sidecar(
    sidecar: FeatureSidecar,
    stride: int,
    window: int,
    dim: int,
    fps: float | None = None,
    source: str | Path = "feature sidecar",
) -> None:
    """Raise InputError listing every field where the sidecar disagrees with the config."""
    expected = {
        "stride": (stride, "data.stride"),
        "window": (window, "data.window"),
        "dim": (dim, "data.feature_dim"),
    }
    mismatches = [
        f"{name} is {getattr(sidecar, name)} in the sidecar but {value} in the config ({key})"
        for name, (value, key) in expected.items()
        if getattr(sidecar, name) != value
    ]
    if fps is not None and abs(sidecar.fps - fps) > 1e-3:
        mismatches.append(f"fps is {sidecar.fps:g} in the sidecar but {fps:g} for this video")
    if mismatches:
        raise InputError(
            f"{source}: features do not match the config: {'; '.join(mismatches)}. "
            "Re-extract the features or change the config."
        )


# ---------------------------------------------------------------------------------------------
# Feature arrays


def _open_array(path: Path) -> np.ndarray:
    """The raw stored array (not yet validated); memory-mapped for `.npy`, read for `.npz`."""
    if not path.is_file():
        raise InputError(f"{path}: feature file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: feature file is empty (0 bytes); extract this video again")
    try:
        # np.load decides by the file's magic bytes, so a misnamed .npy/.npz still loads right.
        # Memory-mapped first, even for a full read: numpy then checks the header's shape against the
        # file size, so a corrupt header claiming terabytes is an error instead of a huge allocation.
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if "feats" not in loaded.files:
                    raise InputError(
                        f"{path}: no array 'feats' in this .npz; it holds: {', '.join(loaded.files) or 'nothing'}"
                    )
                return loaded["feats"]
        return loaded
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(f"{path}: cannot read features (truncated or corrupt file?): {exc}") from None


def _validate(array: np.ndarray, path: Path, expected_dim: int | None) -> tuple[int, int]:
    if array.dtype.kind != "f":
        raise InputError(f"{path}: expected float16/float32 features, found dtype {array.dtype}")
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
        raise InputError(f"{path}: expected feature dimension {expected_dim} (data.feature_dim), found {dim}")
    bad_count = 0
    first_bad = None
    for begin in range(0, length, _SCAN_ROWS):
        bad = ~np.isfinite(array[begin : begin + _SCAN_ROWS])
        if bad.any():
            bad_count += int(bad.sum())
            if first_bad is None:
                row, col = np.argwhere(bad)[0]
                first_bad = (begin + int(row), int(col))
    if bad_count:
        raise InputError(
            f"{path}: {bad_count} NaN/Inf value(s), the first at [t={first_bad[0]}, c={first_bad[1]}]"
        )
    return length, dim


def inspect_features(path: str | Path, expected_dim: int | None = None) -> tuple[int, int]:
    """Validate a feature file like `load_features` and return its (T, C), without loading it
    into memory (`.npy` is memory-mapped; the NaN/Inf scan still reads every value)."""
    path = Path(path)
    return _validate(_open_array(path), path, expected_dim)


def load_features(path: str | Path, expected_dim: int | None = None) -> np.ndarray:
    """Load a feature file as a (T, C) float32 array.

    InputError naming the file for: a missing, empty, truncated or corrupt file; an `.npz` without
    `feats`; a non-float array; not 2-D; T or C zero; C != expected_dim (a transposed (C, T) array
    is recognised and named); NaN or Inf values (how many and where the first is).
    """
    path = Path(path)
    array = _open_array(path)
    _validate(array, path, expected_dim)
    return np.array(array, dtype=np.float32, order="C")  # a real copy: the memory map is closed after


def write_features(path: str | Path, features: np.ndarray, sidecar: FeatureSidecar) -> FeatureSidecar:
    """Write a feature array (float16 or float32, kept as given) and then its sidecar.

    Each file is written atomically and the sidecar last, after removing any old one: a sidecar
    on disk therefore always describes a complete feature file. `.npz` paths store the array under
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
    meta_path.unlink(missing_ok=True)
    with atomic_open(path, binary=True) as handle:
        if path.suffix.lower() == ".npz":
            np.savez(handle, feats=features)
        else:
            np.save(handle, features)
    with atomic_open(meta_path) as handle:
        json.dump(dataclasses.asdict(sidecar), handle, indent=2)
        handle.write("\n")
    return sidecar
