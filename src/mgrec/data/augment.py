"""Category-frequency label augmentation (paper Eq. 1).

A class c with Z_c training instances, 0 < Z_c < alpha, is rare; each of its instances is
replicated so that it appears R_c = ceil(log2(alpha / Z_c)) + 1 times in the training
annotations. Only annotations are replicated, never feature data.

What this changes for the model (the contract the trainer implements: `balance.method: eq1` in
`mgrec.data.balance`, whose replication `mgrec.train.data.crop_anchors` applies):
- The trainer draws its training crops centred on annotation entries (with a random offset
  for every draw). A rare instance listed R_c times is therefore chosen as a crop centre R_c
  times as often, and each of those crops sees it at a different position in the window, with
  different neighbours. This is where the augmentation acts.
- Replicas are NOT extra targets in the loss: within one crop the trainer removes duplicate
  targets (same label, start and end) before label assignment, so a replicated instance is
  one ground truth, not R_c stacked ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mgrec.errors import InputError
from mgrec.records import Segment


def repeat_factor(count: int, alpha: float) -> int:
    """R_c for one class with `count` instances: ceil(log2(alpha / count)) + 1, or 1 when the
    class is not rare (count >= alpha) or absent (count == 0, nothing to replicate).

    Computed without floating-point logarithms: ceil(log2(alpha / Z)) is the smallest k with
    Z * 2**k >= alpha, which is exact when alpha / Z is a power of two (log2 in floats may land
    a hair above the integer and round up one too many).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if count < 0:
        raise ValueError(f"instance count must be >= 0, got {count}")
    if count == 0 or count >= alpha:
        return 1
    doublings = 0
    while count * 2**doublings < alpha:
        doublings += 1
    return doublings + 1


def repeat_factors(class_counts: Mapping[int, int] | Sequence[int], alpha: float) -> list[int]:
    """R_c for every class. A list is indexed by class id; a dict maps class id -> count and gives
    a list over ids 0..max id (ids not in the dict have no instances, so R = 1)."""
    if isinstance(class_counts, Mapping):
        size = max(class_counts, default=-1) + 1
        counts = [class_counts.get(label_id, 0) for label_id in range(size)]
    else:
        counts = list(class_counts)
    return [repeat_factor(count, alpha) for count in counts]


def class_histogram(segments_by_video: Mapping[str, Sequence[Segment]], num_classes: int) -> list[int]:
    """Number of instances of each class over all videos."""
    histogram = [0] * num_classes
    for segments in segments_by_video.values():
        for segment in segments:
            if not 0 <= segment.label_id < num_classes:
                location = segment.source or segment.video_id
                raise InputError(f"{location}: label_id {segment.label_id} is outside 0..{num_classes - 1}")
            histogram[segment.label_id] += 1
    return histogram

