"""The one mapping between feature indices, frames and seconds.

Feature i covers frames [i*stride, i*stride + window); its centre lies at frame
i*stride + window/2, i.e. (i*stride + window/2)/fps seconds. Every module converts through
`FeatureGrid`; nothing else does this arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _plain(value: np.ndarray):
    """Scalars come back as Python floats/ints, arrays stay arrays."""
    return value.item() if value.ndim == 0 else value


@dataclass(frozen=True)
class FeatureGrid:
    fps: float
    stride: int
    window: int

    def index_to_seconds(self, index):
        """Feature-grid position (float or array; fractional allowed) -> seconds at its centre."""
        return _plain((np.asarray(index, dtype=np.float64) * self.stride + 0.5 * self.window) / self.fps)

    def seconds_to_index(self, seconds):
        """Seconds -> fractional feature-grid position (inverse of `index_to_seconds`)."""
        return _plain((np.asarray(seconds, dtype=np.float64) * self.fps - 0.5 * self.window) / self.stride)

    def seconds_to_frame(self, seconds):
        return _plain(np.rint(np.asarray(seconds, dtype=np.float64) * self.fps).astype(np.int64))

    def frame_to_seconds(self, frame):
        return _plain(np.asarray(frame, dtype=np.float64) / self.fps)

    def num_windows(self, num_frames: int) -> int:
        """Number of complete windows in a video of `num_frames` frames (no partial last window)."""
        if num_frames < self.window:
            return 0
        return (num_frames - self.window) // self.stride + 1

    def covered_seconds(self, num_features: int) -> float:
        """Seconds of video covered by `num_features` windows: the end of the last window."""
        return ((num_features - 1) * self.stride + self.window) / self.fps if num_features > 0 else 0.0

    def seconds_per_step(self) -> float:
        return self.stride / self.fps
