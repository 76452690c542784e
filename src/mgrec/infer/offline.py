"""Offline detection: a trained run in, named micro-gestures out.

    detector = Detector.from_run("runs/demo-mgrec")
    detections = detector.detect("features/video.npy")      # list[Detection], ranked by score
    final = detector.hard_set(detections)                    # the thresholded set used for F1
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mgrec.config import Config, PostprocessConfig, load_config
from mgrec.files import read_json
from mgrec.data.features import check_sidecar, load_features, read_sidecar, sidecar_path
from mgrec.errors import InputError
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import detect_video
from mgrec.records import Detection
from mgrec.timeline import FeatureGrid
from mgrec.train.checkpoint import load_into, load_weights
from mgrec.devices import resolve_device

FEATURE_SUFFIXES = (".npy", ".npz")


@dataclass
class Detector:
    model: torch.nn.Module
    config: Config
    classes: list[str]
    postprocess: PostprocessConfig  # includes the score threshold tuned on val
    run_dir: Path

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best", device: str = "auto") -> "Detector":
        """Load a run directory written by `mgrec train` (EMA weights of the selected checkpoint)."""
        run_dir = Path(run_dir)
        for name in ("config.yaml", "classes.json", f"checkpoints/{checkpoint}.safetensors"):
            if not (run_dir / name).exists():
                raise InputError(f"{run_dir} is not a finished mgrec run: {name} is missing")
        config = load_config(run_dir / "config.yaml")
        classes = read_json(run_dir / "classes.json", "class list")
        if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)) or len(classes) != config.model.num_classes:
            raise InputError(f"{run_dir / 'classes.json'}: expected a list of {config.model.num_classes} class names "
                             f"(model.num_classes in config.yaml)")
        post = config.postprocess
        post_path = run_dir / "postprocess.json"
        if post_path.exists():
            tuned = read_json(post_path, "post-processing")
            threshold = tuned.get("score_threshold") if isinstance(tuned, dict) else None
            if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
                raise InputError(f"{post_path} [score_threshold]: expected a number (the threshold tuned on val)")
            post = replace(post, score_threshold=float(threshold))
        model = build_detector(config.model)
        weights_path = run_dir / "checkpoints" / f"{checkpoint}.safetensors"
        weights, _ = load_weights(weights_path, use_ema=True)
        load_into(model, weights, weights_path)
        model = model.to(resolve_device(device)).eval()
        return cls(model, config, classes, post, run_dir)

    def grid(self, fps: float | None = None) -> FeatureGrid:
        data = self.config.data
        fps = data.fps or fps
        if fps is None:
            raise InputError("the features' fps is unknown: give a sidecar .json next to the features or set data.fps")
        return FeatureGrid(fps=fps, stride=data.stride, window=data.window)

    def detect(self, features: np.ndarray | str | Path, video_id: str | None = None, fps: float | None = None) -> list[Detection]:
        """Ranked detections for one video, given its features (T, C) or a feature file."""
        if not isinstance(features, np.ndarray):
            path = Path(features)
            video_id = video_id or path.stem
            fps = fps or self.sidecar_fps(path)
            features = load_features(path, expected_dim=self.config.data.feature_dim)
        elif features.ndim != 2 or features.shape[1] != self.config.data.feature_dim:
            raise InputError(f"features of shape {features.shape}: expected (T, {self.config.data.feature_dim})")
        return detect_video(self.model, features.astype(np.float32, copy=False), self.grid(fps), self.postprocess,
                            self.classes, video_id or "video")

    def sidecar_fps(self, path: Path) -> float | None:
        """The fps of a feature file's sidecar, after checking its recipe against the run's config."""
        side = sidecar_path(path)
        if not side.exists():
            return None
        sidecar = read_sidecar(side)
        data = self.config.data
        check_sidecar(sidecar, stride=data.stride, window=data.window, dim=data.feature_dim, fps=data.fps, source=str(side))
        return sidecar.fps

    def hard_set(self, detections: list[Detection], threshold: float | None = None) -> list[Detection]:
        """The detections kept for F1: score >= the threshold tuned on val (or `threshold`)."""
        threshold = self.postprocess.score_threshold if threshold is None else threshold
        return [d for d in detections if d.score >= threshold]


def feature_files(inputs: list[str | Path]) -> list[Path]:
    """Expand files and folders into feature files (sorted; a folder contributes its .npy/.npz files)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix in FEATURE_SUFFIXES)
            if not found:
                raise InputError(f"{item}: folder holds no feature files ({', '.join(FEATURE_SUFFIXES)})")
            files.extend(found)
        elif item.exists():
            files.append(item)
        else:
            raise InputError(f"{item}: no such file or folder")
    return files
