"""The demo benchmark: long untrimmed streams of REAL human motion with exact gesture labels.

No micro-gesture videos can be shipped, so the demo stands in for them with real wrist motion that
two PyPI wheels carry as package data (only their data files are read, each checked against its sha256 in
`SOURCE_FILES`; neither package is imported):

- gestures: seglearn 1.2.5 `seglearn/data/watch_dataset.npy`, smartwatch IMU recordings of shoulder
  physiotherapy (arXiv 1802.01489): 140 recordings at 50 Hz, 6 channels (acceleration ax, ay, az and
  angular rate wx, wy, wz), 7 exercises, 10 subjects, each recording one set of about 20 repetitions;
- background: aeon 1.6.0 BasicMotions, smartwatch acceleration + angular rate at 10 Hz, 10 s per
  recording, of people standing, walking, running and playing badminton (non-gesture motion,
  arm motion included as hard negatives).

Recipe (version `RECIPE_VERSION`; every random choice comes from one numpy Generator seeded by `seed`):

1. Signals. Every recording is brought to the same band and level so that no source gives itself
   away by its spectrum or its amplitude: 50 Hz recordings are averaged over blocks of 5 samples
   (10 Hz, the rate of the slowest source), then every recording is linearly interpolated to 50 Hz
   and standardised per channel (zero mean, unit variance over the whole recording).
2. Splits by subject: a seeded permutation of the 10 watch subjects gives 6 train, 2 val and
   2 test subjects. BasicMotions has no subject ids, so its recordings are split by recording
   (per activity 12/4/4), which keeps the background material of the splits disjoint too.
3. Streams: each stream belongs to one subject (as one SMG video shows one subject) and lasts
   up to U(180, 240) s (pieces are added while the next gesture and a 1 s gap still fit):
   background, gesture, background, gesture, ..., background. A gesture instance is
   a contiguous cut, at a random offset, of one of that subject's recordings of the drawn exercise,
   lasting LogNormal(median 1.6 s, sigma 0.62) clipped to [0.4, 6] s (p5..p95 about 0.58..4.4 s:
   from part of one repetition up to two or three). Exercises are drawn with probabilities decaying
   geometrically along the dataset's class order, the last ten times less likely than the first.
   Background pieces last LogNormal(median 1.0 s, sigma 0.7) clipped to [0.2, 6] s (half of them
   under 1 s) and are cut from a random background recording of the split. Each piece gets a random
   gain, log-uniform in [0.7, 1.4]; consecutive pieces are joined by a linear cross-fade of 10
   samples, and a gesture's labelled extent starts and ends in the middle of its cross-fades, so
   its labelled duration is its drawn duration. Last, a sensor noise floor (Gaussian, sigma 0.05)
   is added to the whole stream.
4. Features (backbone `imu-window-v1`): the stream is a "video" at 50 fps; feature i covers samples
   [4i, 4i + 16) (`mgrec.timeline.FeatureGrid(50, 4, 16)`). Each 16 x 6 window gives 144 numbers:
   the raw window (96); per-channel mean, standard deviation, minimum and maximum (24); and the
   magnitudes of FFT bins 1..4 of each mean-removed channel, divided by sqrt(16) (24). A fixed random
   projection (Gaussian with variance 1/144) plus a fixed bias in [-0.5, 0.5], both drawn from
   `PROJECTION_SEED` and identical for every build, maps them to 128 numbers, followed by tanh.

5. Unlabelled pool (for pseudo-labelling, `pseudo_labels.unlabeled`): `POOL_STREAMS_PER_SUBJECT`
   more streams of each TEST subject, made exactly as above but from a second generator seeded
   [seed, 1] (so the labelled streams are the same as without the pool), with their labels
   withheld: they are written nowhere. Training on them is transductive (the test subjects' own
   motion, never their labels), as some challenge entries did; a run says so.
6. Sensor streams (for multi-stream fusion, `data.streams`): each labelled stream's signal once
   more as two streams, one per sensor, encoded as in step 4 but from that sensor's 3 channels
   alone (16 x 3 raw window, 4 statistics and 4 FFT magnitudes per channel: 72 numbers) with its
   own fixed projection to 64 numbers: `acc` (acceleration) on the step-4 grid (stride 4,
   window 16) and `gyro` (angular rate) at half the rate (stride 8, window 16), so that fusion
   must put two rates on one grid. The 128-dim features of step 4 are unchanged.

Files in the cache folder: `annotations.json` (ActivityNet JSON; classes = the 7 exercise codes
PEN, ABD, FEL, IR, ER, TRAP, ROW), `features/<video_id>.npy` (T, 128) float32, each with a
`<video_id>.json` sidecar, `unlabeled/pool_subject<NN>_<i>.npy` (+ sidecar, no annotations),
`streams/acc/<video_id>.npy` and `streams/gyro/<video_id>.npy` (+ sidecars, step 6), and
`manifest.json` (recipe version, seed, statistics, every file written and its size), written LAST: a
folder without a matching manifest, or with a file it lists missing or of another size, is incomplete or stale
and gets rebuilt. An empty `.mgrec-demo`
file marks the folder as the demo's, so that a rebuild never deletes files of a folder it did not make.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mgrec.data.annotations import load_annotations, save_annotations
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.errors import InputError
from mgrec.files import atomic_open, counted, file_sha256, json_or_none, mgrec_cache
from mgrec.records import AnnotationSet, Segment, VideoInfo
from mgrec.timeline import FeatureGrid

# v2: v1's streams, unchanged, plus the unlabelled pool (step 5); v3: v2 unchanged, plus the sensor streams (step 6)
RECIPE_VERSION = "imu-demo-v3"
BACKBONE = "imu-window-v1"
SAMPLE_RATE = 50.0  # Hz: the "fps" of the demo videos
GRID = FeatureGrid(fps=SAMPLE_RATE, stride=4, window=16)
FEATURE_DIM = 128
PROJECTION_SEED = 20251125  # part of the backbone, so independent of the build seed
# Step 6: stream name -> (the signal's channels, its grid, its backbone, its projection seed).
SENSOR_STREAMS = {
    "acc": (slice(0, 3), GRID, "imu-acc-window-v1", PROJECTION_SEED + 1),
    "gyro": (slice(3, 6), FeatureGrid(fps=SAMPLE_RATE, stride=8, window=16), "imu-gyro-window-v1",
             PROJECTION_SEED + 2),
}
SENSOR_FEATURE_DIM = 64
OWNER_MARK = ".mgrec-demo"  # empty file marking a folder that build_demo may overwrite
BUILD_LOCK = ".build.lock"  # held while a build writes the folder (`_one_build_at_a_time`)
INSTALL_HINT = "pip install --no-deps seglearn==1.2.5 aeon==1.6.0   (in a source checkout, `make install` does it)"
SPLITS = ("train", "val", "test")
# The source files, by package and path in it: the version the recipe names and the file's sha256 there.
SOURCE_FILES = {
    ("seglearn", "data/watch_dataset.npy"):
        ("1.2.5", "eb122f23cdf06ef6bd6c6c5312958ec5cf9d038e2e6d457b8081662c75a42537"),
    ("aeon", "datasets/data/BasicMotions/BasicMotions_TRAIN.ts"):
        ("1.6.0", "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6"),
    ("aeon", "datasets/data/BasicMotions/BasicMotions_TEST.ts"):
        ("1.6.0", "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"),
}

SUBJECTS_PER_SPLIT = {"train": 6, "val": 2, "test": 2}
STREAMS_PER_SUBJECT = {"train": 4, "val": 3, "test": 3}  # 24 train, 6 val, 6 test streams
POOL_STREAMS_PER_SUBJECT = 3  # unlabelled streams of each test subject (6 in all)
BACKGROUND_PER_SPLIT = {"train": 12, "val": 4, "test": 4}  # recordings per BasicMotions activity
STREAM_SECONDS = (180.0, 240.0)
INSTANCE_SECONDS = {"median": 1.6, "sigma": 0.62, "min": 0.4, "max": 6.0}
GAP_SECONDS = {"median": 1.0, "sigma": 0.7, "min": 0.2, "max": 6.0}
RAREST_TO_COMMONEST = 0.1  # probability of the last class relative to the first
GAIN_RANGE = (0.7, 1.4)
CROSSFADE = 10  # samples; no piece is shorter, so a piece's fade-in and fade-out never overlap
NOISE_FLOOR = 0.05
COMMON_RATE = 10.0  # Hz: the band every source is reduced to (BasicMotions' sampling rate)


@dataclass(frozen=True)
class DatasetPaths:
    """Where a dataset on disk lies: its annotations JSON and its folder of feature files."""

    root: Path
    annotations: Path
    features: Path
    feature_dim: int
    unlabeled: Path | None = None  # feature files without annotations (the demo's unlabelled pool)
    streams: Path | None = None  # one folder per sensor stream (the demo's step 6): streams/<name>/<video_id>.npy

    def overrides(self) -> list[str]:
        """`load_config(..., overrides=...)` items that point a config at this dataset."""
        return [
            f"data.annotations={self.annotations}",
            f"data.features={self.features}",
            f"data.feature_dim={self.feature_dim}",
        ]

    def stream_overrides(self, names: list[str]) -> list[str]:
        """Override items that point a config at the demo's sensor streams `names` (step 6; the first is
        the grid stream unless the config names another): the annotations and `data.streams` (the data
        keys that follow the grid stream are dropped from the config: `config._forget_one_stream_keys`)."""
        unknown = [name for name in names if name not in SENSOR_STREAMS]
        if self.streams is None or not names or unknown:
            raise InputError(f"the demo has the sensor streams {', '.join(SENSOR_STREAMS)}; got {names}")
        streams = [{"name": name, "features": str(self.streams / name), "feature_dim": SENSOR_FEATURE_DIM,
                    "stride": SENSOR_STREAMS[name][1].stride, "window": SENSOR_STREAMS[name][1].window,
                    "fps": SAMPLE_RATE} for name in names]
        return [
            f"data.annotations={self.annotations}",
            f"data.streams={json.dumps(streams)}",  # JSON is YAML: one override sets the whole list
        ]


@dataclass(frozen=True)
class MotionRecording:
    """One source recording at 50 Hz, in the common band, standardised per channel."""

    signal: np.ndarray  # (n, 6) float64
    activity: str  # exercise code (gesture) or BasicMotions activity (background)
    subject: int | None  # watch subject id; None for background recordings


# ---------------------------------------------------------------------------------------------
# Building the demo


def default_cache_dir() -> Path:
    """`$MGREC_CACHE/demo` when MGREC_CACHE is set, else `~/.cache/mgrec/demo`."""
    return mgrec_cache("demo")


def build_demo(cache_dir: str | Path | None = None, seed: int = 0, force: bool = False,
               log: Callable[[str], None] | None = None) -> DatasetPaths:
    """Build the demo benchmark into `cache_dir` (default `default_cache_dir()`); return its paths.

    Does nothing when the folder already holds a complete build of this recipe version and seed
    (its `manifest.json` says so, and every file it lists is there at its size), unless `force`. A
    build takes a few seconds and needs the seglearn and aeon wheels installed (see `INSTALL_HINT`);
    only their data files are read. `log` is told why a build that was there is made again. The paths are
    absolute (a relative `cache_dir` or $MGREC_CACHE is taken from the current folder), as a run records them.
    """
    # absolute: a run records these paths in its config.yaml, which is read from any folder later
    root = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()).absolute()
    paths = DatasetPaths(root, root / "annotations.json", root / "features", FEATURE_DIM, root / "unlabeled",
                         root / "streams")
    manifest_path = root / "manifest.json"
    if not force and _manifest_matches(manifest_path, seed):
        return paths

    _claim_folder(root)
    with _one_build_at_a_time(root):
        if not force and _manifest_matches(manifest_path, seed):
            return paths  # another process built it while this one waited
        damage = None if force else _damaged_files(manifest_path, seed)
        if damage and log is not None:
            log(f"note: the demo data in {root} is incomplete ({damage}): building it again")
        _build(paths, manifest_path, seed)
    return paths


@contextlib.contextmanager
def _one_build_at_a_time(root: Path) -> Iterator[None]:
    """Hold the demo folder while building: a second process (two benchmarks started together) waits for
    the first build instead of deleting and writing the same files beside it, then finds it done. The OS
    releases the lock when a process dies, so a killed build leaves none behind. It orders builds only: a
    build that must happen (`force`, or another seed in the same folder) still replaces the files that a
    training of another process may be reading; give each seed its own folder (`mgrec demo --cache`, the
    benchmarks' demo-seedN folders)."""
    import fcntl  # POSIX, as the run directory's lock

    with open(root / BUILD_LOCK, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build(paths: DatasetPaths, manifest_path: Path, seed: int) -> None:
    started = time.perf_counter()
    gestures, classes = load_watch_recordings()
    background = load_background_recordings()
    aset, signals, pool = generate_streams(gestures, classes, background, seed)

    manifest_path.unlink(missing_ok=True)  # from here until the end the folder is incomplete
    for folder in (paths.features, paths.unlabeled, paths.streams):
        if folder.exists():
            shutil.rmtree(folder)  # another seed or recipe may have had other video ids
    features = {video_id: encode_windows(signal) for video_id, signal in signals.items()}
    write_dataset(paths, aset, features, GRID, BACKBONE)
    paths.unlabeled.mkdir(parents=True)
    for video_id, signal in pool.items():
        sidecar = FeatureSidecar(fps=SAMPLE_RATE, stride=GRID.stride, window=GRID.window, backbone=BACKBONE,
                                 dim=FEATURE_DIM, frames=len(signal))
        write_features(paths.unlabeled / f"{video_id}.npy", encode_windows(signal).astype(np.float32), sidecar)
    for name, (channels, grid, backbone, projection_seed) in SENSOR_STREAMS.items():
        folder = paths.streams / name
        folder.mkdir(parents=True)
        for video_id, signal in signals.items():
            sidecar = FeatureSidecar(fps=SAMPLE_RATE, stride=grid.stride, window=grid.window, backbone=backbone,
                                     dim=SENSOR_FEATURE_DIM, frames=len(signal))
            features = encode_windows(signal[:, channels], grid, _projection(3, SENSOR_FEATURE_DIM, projection_seed))
            write_features(folder / f"{video_id}.npy", features, sidecar)
    manifest = {
        "recipe": RECIPE_VERSION,
        "seed": seed,
        "backbone": BACKBONE,
        "feature_dim": FEATURE_DIM,
        "build_seconds": round(time.perf_counter() - started, 2),
        "statistics": annotation_statistics(aset),
        "unlabeled_videos": len(pool),
        "sensor_streams": {name: grid.stride for name, (_, grid, _, _) in SENSOR_STREAMS.items()},
        "files": _built_files(paths.root),  # checked by each later use (`_damaged_files`)
    }
    with atomic_open(manifest_path) as handle:
        handle.write(json.dumps(manifest, indent=1) + "\n")


def _claim_folder(root: Path) -> None:
    """A build deletes its old files, so it only builds into a new or empty folder or one it built before."""
    if root.is_dir() and any(root.iterdir()) and not (root / OWNER_MARK).exists():
        raise InputError(
            f"{root}: folder is not empty and was not made by `build_demo`; choose a new or empty folder for the demo"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / OWNER_MARK).touch()
    except OSError as exc:  # a file at the folder's name or above it, a read-only place
        what = "it is a file, not a folder" if root.is_file() else (exc.strerror or str(exc))
        raise InputError(f"{root}: cannot make the demo data folder there: {what} (`mgrec demo --cache FOLDER`, or "
                         "MGREC_CACHE=FOLDER in the environment, puts it elsewhere)") from None


def _manifest_matches(path: Path, seed: int) -> bool:
    manifest = json_or_none(path)  # None where missing or half-written: rebuild
    return (isinstance(manifest, dict) and manifest.get("recipe") == RECIPE_VERSION and manifest.get("seed") == seed
            and _damaged_files(path, seed) is None)


def _built_files(root: Path) -> dict[str, int]:
    """Every file a build wrote (its annotations and the files of its data folders), path relative to `root` ->
    size in bytes: the manifest's list, by which a later use finds a file removed or cut short since."""
    files = [root / "annotations.json"]
    for folder in ("features", "unlabeled", "streams"):
        files += sorted(file for file in (root / folder).rglob("*") if file.is_file())
    return {file.relative_to(root).as_posix(): file.stat().st_size for file in files}


def _damaged_files(manifest_path: Path, seed: int) -> str | None:
    """Where a build of this recipe and seed, as its manifest lists it, is not whole any more: the first file
    missing or of another size (and how many), or a manifest that lists no files; None when whole or not such a
    build (another recipe or seed is rebuilt anyway)."""
    manifest = json_or_none(manifest_path)
    if not (isinstance(manifest, dict) and manifest.get("recipe") == RECIPE_VERSION and manifest.get("seed") == seed):
        return None
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        return f"{manifest_path.name} lists no files: an older mgrec built it"
    root = manifest_path.parent
    problems = []
    for name, size in listed.items():
        file = root / name
        if not file.is_file():
            problems.append(f"{file} is missing")
        elif file.stat().st_size != size:
            problems.append(f"{file} holds {file.stat().st_size} bytes, not the {size} it was written with")
    if not problems:
        return None
    more = f", and {counted(len(problems) - 1, 'other file')}" if len(problems) > 1 else ""
    return f"{problems[0]}{more}: a file removed or cut short since it was built"


def write_dataset(
    paths: DatasetPaths, aset: AnnotationSet, features: dict[str, np.ndarray], grid: FeatureGrid, backbone: str
) -> None:
    """Write `aset` as `paths.annotations` and one `<video_id>.npy` + sidecar per video.

    Shared by the demo and the synthetic generator. Every video needs `num_frames` and a feature
    array with `grid.num_windows(num_frames)` rows.
    """
    paths.features.mkdir(parents=True, exist_ok=True)
    for video_id in aset.video_ids():
        info = aset.videos[video_id]
        array = np.asarray(features[video_id], dtype=np.float32)
        if info.num_frames is None or array.shape[0] != grid.num_windows(info.num_frames):
            raise ValueError(f"{video_id}: {array.shape[0]} feature rows for {info.num_frames} frames")
        sidecar = FeatureSidecar(
            fps=info.fps,
            stride=grid.stride,
            window=grid.window,
            backbone=backbone,
            dim=int(array.shape[1]),
            frames=info.num_frames,
        )
        write_features(paths.features / f"{video_id}.npy", array, sidecar)
    save_annotations(aset, paths.annotations)


# ---------------------------------------------------------------------------------------------
# Source recordings


def _package_dir(name: str) -> Path:
    """The installed folder of a package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise InputError(f"the demo data needs the '{name}' package installed; run: {INSTALL_HINT}")
    if not spec.submodule_search_locations:  # a module of that name earlier on the path hides the package
        raise InputError(f"the demo data needs the '{name}' package, but '{name}' is {spec.origin}, a module that "
                         f"comes first on the Python path (sys.path) and hides it; rename or move that file, or run "
                         f"from another folder (and if {name} is not installed: {INSTALL_HINT})")
    return Path(next(iter(spec.submodule_search_locations)))


def _source_file(package: str, name: str) -> Path:
    """The data file `name` of `package` (`SOURCE_FILES`), checked to be the file the recipe is built from: the
    demo of another version's data would be another benchmark than the one its manifest and numbers name."""
    path = _package_dir(package) / name
    pinned_version, pinned_sha256 = SOURCE_FILES[package, name]
    try:
        version = f"{package} {importlib.metadata.version(package)} is installed"
    except importlib.metadata.PackageNotFoundError:
        version = f"{package} is found at {path.parents[len(Path(name).parts) - 1]} with no installed version"
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror}; {version}); the demo is built from {package} "
                         f"{pinned_version}'s {name}: {INSTALL_HINT}") from None
    if digest != pinned_sha256:
        raise InputError(f"{path}: not the {name} of {package} {pinned_version} that the demo is built from (sha256 "
                         f"{digest[:12]}..., expected {pinned_sha256[:12]}...; {version}): {INSTALL_HINT}")
    return path


def load_watch_recordings() -> tuple[list[MotionRecording], list[str]]:
    """The 140 seglearn watch recordings (gestures) and the 7 exercise codes, in the dataset's order."""
    path = _source_file("seglearn", "data/watch_dataset.npy")
    try:
        # A pickled dict inside a file of a package installed by pip: trusted like the package code.
        data = np.load(path, allow_pickle=True).item()
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the watch dataset ({exc}); reinstall with: {INSTALL_HINT}") from None
    for key in ("X", "y", "y_labels", "subject"):
        if key not in data:
            raise InputError(f"{path} [{key}]: missing; expected seglearn 1.2.5's watch dataset ({INSTALL_HINT})")
    classes = [str(name) for name in data["y_labels"]]
    recordings = [
        MotionRecording(_to_common_band(np.asarray(x, dtype=np.float64), SAMPLE_RATE), classes[int(y)], int(s))
        for x, y, s in zip(data["X"], data["y"], data["subject"], strict=True)
    ]
    return recordings, classes


def load_background_recordings() -> list[MotionRecording]:
    """The 80 BasicMotions recordings (train and test files together), any activity."""
    recordings = []
    for name in ("BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"):
        for series, activity in _read_ts_file(_source_file("aeon", f"datasets/data/BasicMotions/{name}")):
            recordings.append(MotionRecording(_to_common_band(series, COMMON_RATE), activity, None))
    return recordings


def _read_ts_file(path: Path) -> list[tuple[np.ndarray, str]]:
    """Parse a multivariate `.ts` file: after `@data`, one series per line, channels separated by
    ':' (values by ','), the class label last. Returns [(series (n, channels), label)]."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror}); reinstall with: {INSTALL_HINT}") from None
    series = []
    in_data = False
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            in_data = True
            continue
        if not in_data:
            continue
        *channels, label = line.split(":")
        try:
            values = np.array([[float(v) for v in channel.split(",")] for channel in channels]).T
        except ValueError:
            raise InputError(f"{path}:{number}: expected comma-separated numbers per ':'-separated channel") from None
        if values.shape[1] != 6:
            raise InputError(f"{path}:{number}: expected 6 channels, found {values.shape[1]}")
        series.append((values, label.strip()))
    if not series:
        raise InputError(f"{path}: no series after '@data'")
    return series


def _to_common_band(signal: np.ndarray, rate: float) -> np.ndarray:
    """Step 1 of the recipe: reduce to 10 Hz, interpolate linearly to 50 Hz, standardise per channel."""
    if rate != COMMON_RATE:
        block = round(rate / COMMON_RATE)  # only 50 Hz sources (block 5) occur
        usable = len(signal) // block * block
        signal = signal[:usable].reshape(-1, block, signal.shape[1]).mean(axis=1)
    factor = round(SAMPLE_RATE / COMMON_RATE)
    coarse_times = np.arange(len(signal), dtype=np.float64)
    fine_times = np.arange((len(signal) - 1) * factor + 1) / factor
    upsampled = np.stack([np.interp(fine_times, coarse_times, channel) for channel in signal.T], axis=1)
    std = upsampled.std(axis=0)
    return (upsampled - upsampled.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)


# ---------------------------------------------------------------------------------------------
# Streams


def class_probabilities(num_classes: int, rarest_to_commonest: float) -> np.ndarray:
    """Geometrically decaying class probabilities: p_k proportional to r**k, r**(K-1) = the ratio."""
    ratio = rarest_to_commonest ** (1.0 / max(num_classes - 1, 1))
    weights = ratio ** np.arange(num_classes)
    return weights / weights.sum()


def lognormal_samples(rng: np.random.Generator, spec: dict[str, float]) -> int:
    """A length in samples at SAMPLE_RATE: LogNormal(spec median, spec sigma) seconds clipped to [min, max]."""
    seconds = np.clip(spec["median"] * np.exp(spec["sigma"] * rng.standard_normal()), spec["min"], spec["max"])
    return int(round(seconds * SAMPLE_RATE))


def generate_streams(
    gestures: list[MotionRecording], classes: list[str], background: list[MotionRecording], seed: int
) -> tuple[AnnotationSet, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Steps 2, 3 and 5 of the recipe: the annotation set, the (n, 6) signal of every stream, and the
    signals of the unlabelled pool (their labels are dropped here)."""
    rng = np.random.default_rng(seed)
    subjects = sorted({r.subject for r in gestures})
    if len(subjects) != sum(SUBJECTS_PER_SPLIT.values()):
        raise InputError(f"watch dataset: expected {sum(SUBJECTS_PER_SPLIT.values())} subjects, found {len(subjects)}")
    order = rng.permutation(subjects).tolist()
    subjects_of = {}
    for split in SPLITS:
        subjects_of[split], order = sorted(order[: SUBJECTS_PER_SPLIT[split]]), order[SUBJECTS_PER_SPLIT[split] :]
    background_of = split_background(background, rng)
    probabilities = class_probabilities(len(classes), RAREST_TO_COMMONEST)

    aset = AnnotationSet(classes=list(classes))
    signals = {}
    for split in SPLITS:
        for subject in subjects_of[split]:
            own = [r for r in gestures if r.subject == subject]
            for index in range(STREAMS_PER_SUBJECT[split]):
                video_id = f"{split}_subject{subject:02d}_{index}"
                signal, segments = _compose_stream(video_id, own, classes, probabilities, background_of[split], rng)
                signals[video_id] = signal
                aset.videos[video_id] = VideoInfo(
                    video_id, split, SAMPLE_RATE, len(signal) / SAMPLE_RATE, num_frames=len(signal)
                )
                aset.segments[video_id] = segments
    pool_rng = np.random.default_rng([seed, 1])  # after every labelled stream: those stay as they were
    pool = {}
    for subject in subjects_of["test"]:
        own = [r for r in gestures if r.subject == subject]
        for index in range(POOL_STREAMS_PER_SUBJECT):
            video_id = f"pool_subject{subject:02d}_{index}"
            pool[video_id], _ = _compose_stream(video_id, own, classes, probabilities, background_of["test"], pool_rng)
    return aset, signals, pool


def split_background(background: list[MotionRecording], rng: np.random.Generator,
                     per_split: dict[str, int] = BACKGROUND_PER_SPLIT) -> dict[str, list]:
    """BasicMotions' recordings split by recording: of each activity's (shuffled), `per_split[split]` to a split."""
    by_split: dict[str, list] = {split: [] for split in SPLITS}
    for activity in sorted({r.activity for r in background}):
        recordings = [r for r in background if r.activity == activity]
        if len(recordings) != sum(per_split.values()):
            raise InputError(f"BasicMotions: expected {sum(per_split.values())} '{activity}' recordings")
        shuffled = [recordings[i] for i in rng.permutation(len(recordings))]
        for split in SPLITS:
            by_split[split] += shuffled[: per_split[split]]
            shuffled = shuffled[per_split[split] :]
    return by_split


def _compose_stream(
    video_id: str,
    own: list[MotionRecording],
    classes: list[str],
    probabilities: np.ndarray,
    background: list[MotionRecording],
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[Segment]]:
    """One stream: alternate background and gesture pieces until the drawn length is reached."""
    target = int(rng.uniform(*STREAM_SECONDS) * SAMPLE_RATE)
    pieces: list[np.ndarray] = []  # each holds its own length + CROSSFADE samples (its fade-out tail)
    segments = []
    position = 0  # start of the next piece, in samples
    while True:
        gap = lognormal_samples(rng, GAP_SECONDS)
        pieces.append(cut(background[rng.integers(len(background))], gap, rng))
        position += gap
        length = lognormal_samples(rng, INSTANCE_SECONDS)
        if position + length + int(GAP_SECONDS["median"] * SAMPLE_RATE) > target:
            break
        label_id = int(rng.choice(len(classes), p=probabilities))
        candidates = [r for r in own if r.activity == classes[label_id]]
        pieces.append(cut(candidates[rng.integers(len(candidates))], length, rng))
        # The piece fades in over [position, position + CROSSFADE) and out over the same span
        # after its end, so it dominates from the middle of one fade to the middle of the other.
        start = position + CROSSFADE // 2
        end = start + length
        segments.append(
            Segment(
                video_id=video_id,
                start=start / SAMPLE_RATE,
                end=end / SAMPLE_RATE,
                label_id=label_id,
                label=classes[label_id],
                start_frame=start,
                end_frame=end,
            )
        )
        position += length
    signal = _cross_fade(pieces)
    signal += NOISE_FLOOR * rng.standard_normal(signal.shape)
    return signal, segments


def cut(recording: MotionRecording, length: int, rng: np.random.Generator, crossfade: int = CROSSFADE,
        gain_range: tuple[float, float] = GAIN_RANGE) -> np.ndarray:
    """A random contiguous cut of length + `crossfade` samples (its fade-out tail), with a gain log-uniform in
    `gain_range`."""
    total = length + crossfade
    if len(recording.signal) < total:
        raise InputError(f"a {recording.activity} recording has {len(recording.signal)} samples, need {total}")
    offset = int(rng.integers(len(recording.signal) - total + 1))
    gain = np.exp(rng.uniform(np.log(gain_range[0]), np.log(gain_range[1])))
    return gain * recording.signal[offset : offset + total]


def _cross_fade(pieces: list[np.ndarray]) -> np.ndarray:
    """The demo's joins: a linear cross-fade over CROSSFADE samples."""
    return overlap_add(pieces, (np.arange(CROSSFADE) + 0.5) / CROSSFADE)


def overlap_add(pieces: list[np.ndarray], fade_in: np.ndarray) -> np.ndarray:
    """Pieces joined end to end, each one's last len(fade_in) samples overlapping the next one's first: the next
    fades in by `fade_in` while the one before fades out by 1 - fade_in (where a piece is shorter than its two
    fades, its fade-out is the one applied where they meet)."""
    crossfade = len(fade_in)
    total = sum(len(p) - crossfade for p in pieces) + crossfade
    out = np.zeros((total, pieces[0].shape[1]))
    position = 0
    for index, piece in enumerate(pieces):
        weights = np.ones(len(piece))
        if index > 0:
            weights[:crossfade] = fade_in
        if index < len(pieces) - 1:
            weights[-crossfade:] = 1.0 - fade_in
        out[position : position + len(piece)] += weights[:, None] * piece
        position += len(piece) - crossfade
    return out


# ---------------------------------------------------------------------------------------------
# Features


def _projection(channels: int = 6, dim: int = FEATURE_DIM, seed: int = PROJECTION_SEED,
                window: int = GRID.window) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = window * channels + 4 * channels + 4 * channels
    return rng.standard_normal((inputs, dim)) / np.sqrt(inputs), rng.uniform(-0.5, 0.5, dim)


def encode_windows(signal: np.ndarray, grid: FeatureGrid = GRID,
                   projection: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Step 4 of the recipe: (n, 6) signal -> (GRID.num_windows(n), 128) float32 features; step 6 gives
    one sensor's (n, 3) channels, its grid and its projection."""
    windows = np.lib.stride_tricks.sliding_window_view(signal, grid.window, axis=0)[:: grid.stride]  # (T, ch, w)
    centred = windows - windows.mean(axis=2, keepdims=True)
    spectrum = np.abs(np.fft.rfft(centred, axis=2))[:, :, 1:5] / np.sqrt(grid.window)
    encoded = np.concatenate(
        [
            windows.reshape(len(windows), -1),
            windows.mean(axis=2),
            windows.std(axis=2),
            windows.min(axis=2),
            windows.max(axis=2),
            spectrum.reshape(len(windows), -1),
        ],
        axis=1,
    )
    weights, bias = _projection() if projection is None else projection
    return np.tanh(encoded @ weights + bias).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Statistics


def annotation_statistics(aset: AnnotationSet) -> dict:
    """Instances per class per split, stream lengths, instance durations and gaps (plain JSON types)."""
    stats: dict = {"classes": list(aset.classes), "splits": {}}
    for split in aset.subsets():
        ids = aset.video_ids(split)
        segments = [s for v in ids for s in aset.segments.get(v, [])]
        durations = np.array([s.duration for s in segments])
        gaps = np.array([g for v in ids for g in _gaps(aset.segments.get(v, []))])
        lengths = np.array([aset.videos[v].duration for v in ids])
        counts = np.bincount([s.label_id for s in segments], minlength=aset.num_classes)
        stats["splits"][split] = {
            "videos": len(ids),
            "instances": len(segments),
            "instances_per_class": dict(zip(aset.classes, counts.tolist(), strict=True)),
            "video_seconds": {
                "min": round(float(lengths.min()), 1),
                "median": round(float(np.median(lengths)), 1),
                "max": round(float(lengths.max()), 1),
                "total": round(float(lengths.sum()), 1),
            },
            "instance_seconds": _percentiles(durations),
            "gap_seconds": _percentiles(gaps),
            "gap_fraction_under_1s": round(float(np.mean(gaps < 1.0)), 3) if len(gaps) else None,
        }
    return stats


def _gaps(segments: list[Segment]) -> list[float]:
    ordered = sorted(segments, key=lambda s: s.start)
    return [b.start - a.end for a, b in zip(ordered, ordered[1:])]


def _percentiles(values: np.ndarray) -> dict | None:
    if len(values) == 0:
        return None
    points = np.percentile(values, [5, 25, 50, 75, 95])
    return {f"p{p}": round(float(v), 2) for p, v in zip((5, 25, 50, 75, 95), points, strict=True)}


def demo_statistics(root: str | Path) -> dict:
    """`annotation_statistics` of the demo built in `root` (reads its annotations.json)."""
    return annotation_statistics(load_annotations(Path(root) / "annotations.json"))


def format_statistics(stats: dict) -> str:
    """A few aligned lines per split for printing `annotation_statistics` output."""
    lines = []
    for split, s in stats["splits"].items():
        v = s["video_seconds"]
        lines.append(
            f"{split}: {counted(s['videos'], 'video')}, {v['total'] / 60:.1f} min "
            f"(each {v['min']:.0f}-{v['max']:.0f} s, "
            f"median {v['median']:.0f} s), {counted(s['instances'], 'instance')}"
        )
        lines.append("  per class: " + ", ".join(f"{name} {n}" for name, n in s["instances_per_class"].items()))
        d = s["instance_seconds"]
        if d:
            lines.append(f"  instance s p5/p50/p95: {d['p5']}/{d['p50']}/{d['p95']}; "
                         f"gaps under 1 s: {s['gap_fraction_under_1s']:.0%}")
    return "\n".join(lines)
