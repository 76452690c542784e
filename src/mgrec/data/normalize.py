"""Per-video standardisation of input features (`data.normalize: video`).

Each channel c of a video's features x (T, C) is centred and scaled by that video's own statistics:

    x'[t, c] = (x[t, c] - mean_c) / max(std_c, STD_FLOOR),   mean_c, std_c over the video's T steps

so what one subject (or camera, or sensor placement) adds to every step of its videos, an offset or a
gain per channel, is gone before the network sees them. The statistics use nothing but the features:
no label is read, and a test video is normalised by itself.

Where it happens (the seam): the code that holds a WHOLE video computes its statistics. Training
(`mgrec.train.data.load_split`: training crops, validation) and pseudo-labelling keep the video
standardised in memory (`network_inputs`); detection and evaluation
(`mgrec.infer.offline.OfflineDetector.detect`) hand the statistics to
`mgrec.postprocess.video.detect_video`, which standardises each window as it enters the network, so
that a long (memory-mapped) video is never copied whole. A stream never holds the whole video:
`mgrec.infer.online.OnlineDetector` standardises each window with the statistics of every step received
so far (`RunningChannelStats`, exact running sums in float64), which become the offline ones once the
stream has passed its whole length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mgrec.config import NORMALIZE_MODES

# A channel that barely moves within a video (a constant one: std 0) is centred, not blown up.
STD_FLOOR = 1e-5
# Statistics are summed over blocks of this many steps, so a memory-mapped 10-hour video is not
# copied whole to float64.
BLOCK_STEPS = 65536


@dataclass(frozen=True)
class ChannelStats:
    """Mean and standard deviation (population) of every channel over `count` steps, float64 (C,)."""

    mean: np.ndarray
    std: np.ndarray
    count: int

    @classmethod
    def of(cls, features: np.ndarray) -> ChannelStats:
        """The statistics of features (T, C), T >= 1."""
        running = RunningChannelStats(features.shape[1])
        running.add(features)
        return running.current()

    def apply(self, features: np.ndarray) -> np.ndarray:
        """(features - mean) / max(std, STD_FLOOR), as float32 (a new array; float32 arithmetic, so a long
        video needs one float32 copy, not a float64 one)."""
        scale = (1.0 / np.maximum(self.std, STD_FLOOR)).astype(np.float32)
        out = np.subtract(features, self.mean.astype(np.float32), dtype=np.float32)
        out *= scale
        return out


class RunningChannelStats:
    """Channel statistics of all rows added so far: sums in float64, O(C) memory however long the stream.

    Sums of x and x^2 per block, with each block centred on its own mean first (Chan et al.'s pairwise
    update), so the variance keeps its precision over millions of steps.
    """

    def __init__(self, channels: int) -> None:
        self.count = 0
        self.mean = np.zeros(channels, dtype=np.float64)
        self._sum_sq = np.zeros(channels, dtype=np.float64)  # sum of squared deviations from `mean`

    def add(self, rows: np.ndarray) -> None:
        for start in range(0, len(rows), BLOCK_STEPS):
            block = np.asarray(rows[start:start + BLOCK_STEPS], dtype=np.float64)
            n = len(block)
            block_mean = block.mean(axis=0)
            block_sum_sq = np.square(block - block_mean).sum(axis=0)
            total = self.count + n
            delta = block_mean - self.mean
            self.mean = self.mean + delta * (n / total)
            self._sum_sq = self._sum_sq + block_sum_sq + np.square(delta) * (self.count * n / total)
            self.count = total

    def current(self) -> ChannelStats:
        if self.count == 0:
            raise ValueError("no rows added: the statistics of an empty stream are undefined")
        return ChannelStats(self.mean.copy(), np.sqrt(self._sum_sq / self.count), self.count)


def standardizer(mode: str, features: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
    """What turns windows of a whole video's raw features (T, C) into network inputs under
    `data.normalize = mode`: None for "none" (as read), the video's `ChannelStats.apply` for "video"."""
    if mode == "none" or len(features) == 0:
        return None
    if mode == "video":
        return ChannelStats.of(features).apply
    raise ValueError(f"data.normalize: expected one of {', '.join(NORMALIZE_MODES)}, got {mode!r}")


def network_inputs(mode: str, features: np.ndarray) -> np.ndarray:
    """A whole video's raw features (T, C) as the network takes them under `data.normalize = mode`."""
    standardize = standardizer(mode, features)
    return features if standardize is None else standardize(features)
