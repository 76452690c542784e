"""mgrec: micro-gesture online recognition (temporal detection on clip features).

The Python entry points, importable from `mgrec` itself; each is loaded on first use, so `import mgrec` stays
light (no torch until a name that needs it is used):

- `OfflineDetector.from_run(RUN)`: a trained run; `.detect(path or (T, C) array)` its ranked detections,
  `.hard_set(...)` those at the run's threshold.
- `OnlineDetector(detector, fps)`: `.push(rows)` the features of a live stream, `.flush()` at its end; each gesture
  comes out once, when final. `stream_file` replays a file the way `mgrec stream` does.
- `load_config`, `checked_config`, `save_config`, `Config`: the typed config (a YAML file, or built and changed in
  code; every key checked as a file's are).
- `build_detector(config.model)`: the bare network. (Training from Python: `mgrec.train.loop.train(config, run_dir)`,
  what `mgrec train` does; `mgrec.train` is the package that holds it.)
- `score(gt, ranked, classes, score_threshold)`: the challenge's F1 and mAP of records in memory; `score_file` of
  files, as `mgrec score`.
- `load_annotations`, `load_predictions`, `save_predictions`, and the records `Segment`, `Detection`,
  `AnnotationSet`.
- `InputError`: what every problem a user can fix raises (a bad file, key, value or argument).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers see (py.typed): the names below, as their modules define them
    from mgrec.config import Config, checked_config, load_config, save_config
    from mgrec.data.annotations import load_annotations
    from mgrec.errors import InputError
    from mgrec.evaluate.predictions import load_predictions, save_predictions
    from mgrec.evaluate.scoring import score, score_file
    from mgrec.infer.offline import OfflineDetector
    from mgrec.infer.online import OnlineDetector
    from mgrec.infer.stream import stream_file
    from mgrec.model.detector import build_detector
    from mgrec.records import AnnotationSet, Detection, Segment

# name -> the module that defines it
_ENTRY_POINTS = {
    "OfflineDetector": "mgrec.infer.offline",
    "OnlineDetector": "mgrec.infer.online",
    "stream_file": "mgrec.infer.stream",
    "Config": "mgrec.config",
    "load_config": "mgrec.config",
    "checked_config": "mgrec.config",
    "save_config": "mgrec.config",
    "build_detector": "mgrec.model.detector",
    "score": "mgrec.evaluate.scoring",
    "score_file": "mgrec.evaluate.scoring",
    "load_annotations": "mgrec.data.annotations",
    "load_predictions": "mgrec.evaluate.predictions",
    "save_predictions": "mgrec.evaluate.predictions",
    "Segment": "mgrec.records",
    "Detection": "mgrec.records",
    "AnnotationSet": "mgrec.records",
    "InputError": "mgrec.errors",
}

__all__ = [  # written out, for type checkers and linters; tests/test_api.py holds it equal to _ENTRY_POINTS
    "__version__", "OfflineDetector", "OnlineDetector", "stream_file", "Config", "load_config", "checked_config",
    "save_config", "build_detector", "score", "score_file", "load_annotations", "load_predictions", "save_predictions",
    "Segment", "Detection", "AnnotationSet", "InputError",
]


def __getattr__(name: str) -> Any:
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module 'mgrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    globals()[name] = value  # the next use is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
