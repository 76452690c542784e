"""`mgrec detect`: feature files (or raw videos) in, detections out as JSON, CSV or SMG label CSVs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from mgrec.data.features import FeatureSidecar
from mgrec.errors import InputError
from mgrec.evaluate.predictions import save_predictions, save_predictions_csv
from mgrec.files import check_writable
from mgrec.infer.offline import Detector, feature_files
from mgrec.records import Detection

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def detect_files(run_dir: str | Path, inputs: list[str | Path], out: str | Path, fmt: str = "json",
                 ranked: bool = False) -> Path:
    """Detect in every input and write one output (a folder of label CSVs for fmt="smg").

    Inputs are feature files, folders of them, or video files; videos are first turned into
    features with the run's feature recipe (`feature_recipe.json`, recorded at training).
    By default the hard set (score >= the threshold tuned on val) is written, which is what a
    challenge submission or a user wants; `ranked=True` writes the full ranked list (for mAP).
    """
    from mgrec.data.annotations import write_smg_labels

    check_writable(out, is_dir=fmt == "smg")
    detector = Detector.from_run(run_dir)
    videos = [Path(p) for p in inputs if Path(p).suffix.lower() in VIDEO_SUFFIXES]
    others = [p for p in inputs if Path(p).suffix.lower() not in VIDEO_SUFFIXES]
    results: dict[str, list[Detection]] = {}
    fps_by_video: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mgrec-features-") as scratch:
        paths = feature_files(others) if others else []
        if videos:
            paths += extract_with_recipe(detector, videos, Path(scratch))
        _refuse_duplicate_ids(paths)
        for path in paths:
            detections = detector.detect(path)
            results[path.stem] = detections if ranked else detector.hard_set(detections)
            fps_by_video[path.stem] = detector.grid(detector.sidecar_fps(path)).fps
    out = Path(out)
    if fmt == "json":
        save_predictions(results, out)
    elif fmt == "csv":
        save_predictions_csv(results, out)
    else:
        write_smg_labels(results, out, fps=fps_by_video, with_scores=ranked)
    return out


def _refuse_duplicate_ids(paths: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise InputError(f"{seen[path.stem]} and {path} are both video {path.stem!r}; "
                             "one output would silently replace the other")
        seen[path.stem] = path


def run_feature_recipe(detector: Detector) -> FeatureSidecar:
    path = detector.run_dir / "feature_recipe.json"
    if not path.exists():
        raise InputError(f"{detector.run_dir} records no feature recipe (its training features had no sidecar): "
                         "extract features with `mgrec extract` and pass the feature files instead")
    return FeatureSidecar(**json.loads(path.read_text(encoding="utf-8")))


def extract_with_recipe(detector: Detector, videos: list[Path], out_dir: Path) -> list[Path]:
    """Features for raw videos, made exactly as the run's training features were (backbone, size, window, stride)."""
    from mgrec.extract.run import backbone_names, extract

    recipe = run_feature_recipe(detector)
    name, _, size = recipe.backbone.partition("@")
    if name not in backbone_names() or name == "skeleton":
        raise InputError(f"{detector.run_dir} was trained on {recipe.backbone!r} features, which mgrec cannot make "
                         "from a video; pass feature files instead")
    if recipe.weights and not Path(recipe.weights).exists():
        raise InputError(f"the run's feature weights {recipe.weights} are not on this machine")
    results = extract(videos, out_dir, backbone=name, weights=recipe.weights, window=recipe.window,
                      stride=recipe.stride, size=int(size) if size else None, progress=False)
    return [r.feature_path for r in results]
