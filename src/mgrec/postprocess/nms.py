"""Class-wise 1D non-maximum suppression: hard NMS and Gaussian Soft-NMS.

Both methods are the same greedy loop: pick the highest current score, keep it, then lower the
scores of the remaining candidates of the same class according to their IoU with the pick
(hard: drop those with IoU > iou_threshold; soft: multiply by exp(-IoU^2 / sigma)). Classes never
influence each other, so the result is the per-class result of the released C++ `nms_1d_cpu`
extension of ActionFormer/DyFADet merged and ranked by score. One deliberate difference:
Soft-NMS drops every candidate whose score is below `min_score` when it would be picked, also
one that was never decayed (the release only drops decayed ones).

Ties in score are broken by class id, then by input position (the first one wins).

Why it is written this way (speed, with the results of the plain loop)
---------------------------------------------------------------------
The plain loop makes up to `max_detections` (2000) picks of a few vector operations each, and
the per-call overhead of those small operations was nearly all of its time (~0.1 s a video).
Here the loop runs on numpy arrays and advances all classes at once: candidates are laid out
as a (classes, candidates of the class) block, and one *round* makes the next pick of every
class with a handful of whole-block operations. The merge back into one ranking is exact:

* a class's picks do not depend on the other classes, so each class's pick sequence is the
  one the plain loop makes for it;
* scores never rise (hard NMS leaves them alone; Soft-NMS multiplies by decays <= 1 and first
  drops the candidates below `min_score`, which could never be kept, so what is left is >= 0),
  hence each class's sequence is non-increasing and the plain loop's output is all picks sorted
  by (score descending, class, pick number), cut at `max_detections`;
* a class stops when it runs out (nothing left, or below `min_score`), or when its last pick
  scores below the `max_detections`-th best pick so far: all its later picks rank lower still.

The arithmetic per element is the plain loop's, in the same order and dtype (`segment_iou`,
then exp(IoU^2 / -sigma) with torch's exp, numpy's differs in the last bit, then the product),
so results are bit-identical to the former pure-PyTorch loop for float32/float64 input on CPU
(tests/postprocess/test_nms.py checks it against that loop). Inputs on a GPU are processed on
the CPU too. Memory is O(N): the block is padded to the largest class, and classes are
processed in groups so that padding never more than doubles it (a class with many candidates
does not pad hundreds of small ones).

On the benchmark output (17 classes, 2000 picks out of ~11000) this takes ~10 ms instead of
~100 ms. The speed-up is the number of classes picking at once: when one class holds nearly
all picks, the rounds are sequential again and cost about what the plain loop did.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mgrec.config import PostprocessConfig


def segment_iou(start, end, starts: np.ndarray, ends: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """IoU of the segment [start, end] with each segment [starts[i], ends[i]]; 0 where the union is empty.

    `start` and `end` may be arrays that broadcast against `starts` and `ends` (one segment per row);
    `lengths` is `ends - starts` when the caller has it already.
    """
    start, end = np.asarray(start), np.asarray(end)
    right, left = np.minimum(ends, end), np.maximum(starts, start)
    # max(right - left, 0), written as right - min(right, left): the same values, a faster numpy path.
    intersection = right - np.minimum(right, left)
    # The pick's length is rounded once to the segments' dtype (what adding a Python scalar did).
    union = (ends - starts if lengths is None else lengths) + (end.astype(np.float64) - start).astype(ends.dtype)
    union -= intersection
    # Two zero-length segments have an empty union; they do not overlap.
    np.maximum(union, np.finfo(union.dtype).tiny, out=union)
    intersection /= union
    return intersection


def nms(segments: Tensor, scores: Tensor, labels: Tensor, cfg: PostprocessConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Class-wise NMS of candidates; returns (segments (M, 2), scores (M,), labels (M,)) ranked by score.

    `cfg.nms == "hard"`: a candidate is removed when its IoU with a kept one of the same class is
    > `cfg.iou_threshold`; scores are unchanged. `cfg.nms == "soft"`: Gaussian Soft-NMS, each
    candidate's score is multiplied by exp(-IoU^2 / `cfg.sigma`) for every kept one of the same
    class (picked before it), and candidates whose score falls below `cfg.min_score` are dropped.
    At most `cfg.max_detections` are returned, on the input's device and in its dtypes.

    The loop runs on the CPU (float16/bfloat16 in float32). Scores must be finite, and >= 0 for
    Soft-NMS with a negative `min_score` (a decayed negative score would rise).
    """
    if segments.ndim != 2 or segments.shape[1] != 2:
        raise ValueError(f"nms: segments must have shape (N, 2), got {tuple(segments.shape)}")
    if scores.shape != segments.shape[:1] or labels.shape != segments.shape[:1]:
        raise ValueError(
            f"nms: scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must have shape ({segments.shape[0]},)"
        )
    if cfg.nms not in ("soft", "hard"):
        raise ValueError(f"nms: postprocess.nms must be 'soft' or 'hard', got {cfg.nms!r}")
    segments_np, scores_np, labels_np = (_cpu_array(x) for x in (segments, scores, labels))
    if not np.isfinite(scores_np).all():
        raise ValueError("nms: scores contain NaN or infinity (the model output is broken)")
    if not np.isfinite(segments_np).all():
        raise ValueError("nms: segments contain NaN or infinity (the model output is broken)")
    if cfg.nms == "soft" and cfg.min_score < 0 and (scores_np < 0).any():
        raise ValueError("nms: Soft-NMS of negative scores needs min_score >= 0")

    positions, kept = _greedy(segments_np, scores_np, labels_np, cfg)
    index = torch.from_numpy(positions).to(segments.device)
    kept_scores = torch.from_numpy(kept).to(device=scores.device, dtype=scores.dtype)
    return segments[index], kept_scores, labels[index]


def _cpu_array(x: Tensor) -> np.ndarray:
    x = x.detach()
    if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
        x = x.float()  # numpy has no bfloat16; float16 is computed in float32 as well
    return x.cpu().numpy()


def _greedy(segments: np.ndarray, scores: np.ndarray, labels: np.ndarray, cfg: PostprocessConfig):
    """(input positions, scores) of the kept candidates, in rank order. Numpy in, numpy out."""
    limit = cfg.max_detections
    # Soft-NMS: a candidate below min_score can never be kept (scores only decrease) and only kept
    # ones decay others, so it can go now. Hard NMS keeps every unsuppressed candidate, however low.
    # (A float64 scalar: scores are compared with min_score in float64, as the plain loop did.)
    min_kept = np.float64(cfg.min_score if cfg.nms == "soft" else -np.inf)
    candidates = np.flatnonzero(scores >= min_kept)
    candidates = candidates[np.argsort(labels[candidates], kind="stable")]  # by class, input order within
    classes, first, counts = np.unique(labels[candidates], return_index=True, return_counts=True)

    picks = _Picks(len(candidates), limit)
    largest_first = np.argsort(-counts, kind="stable")
    while largest_first.size and limit > 0:
        # The next classes by size, as many as fit in a block padded to at most twice their size.
        padded = counts[largest_first[0]] * np.arange(1, largest_first.size + 1)
        group_size = np.count_nonzero(padded <= 2 * np.cumsum(counts[largest_first]))
        group, largest_first = largest_first[:group_size], largest_first[group_size:]
        block = _ClassBlock(segments, scores, candidates, classes[group], first[group], counts[group])
        _rounds(block, picks, cfg, min_kept)
    return picks.ranked()


class _Picks:
    """Every pick made so far (score, class, pick number within the class, input position)."""

    def __init__(self, capacity: int, limit: int):
        self.scores = np.empty(capacity, dtype=np.float64)
        self.classes = np.empty(capacity, dtype=np.int64)
        self.numbers = np.empty(capacity, dtype=np.int64)
        self.positions = np.empty(capacity, dtype=np.int64)
        self.count, self.limit = 0, limit

    def add(self, scores: np.ndarray, classes: np.ndarray, number: int, positions: np.ndarray) -> None:
        end = self.count + len(scores)
        self.scores[self.count : end] = scores
        self.classes[self.count : end] = classes
        self.numbers[self.count : end] = number
        self.positions[self.count : end] = positions
        self.count = end

    def bar(self) -> float:
        """The `limit`-th highest score so far (-inf before): a class whose pick scored below it can stop."""
        if self.count < self.limit:
            return -np.inf
        return float(np.partition(self.scores[: self.count], self.count - self.limit)[self.count - self.limit])

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.count
        # What the plain loop picks first: higher score, then lower class, then earlier pick.
        order = np.lexsort((self.numbers[:n], self.classes[:n], -self.scores[:n]))[: self.limit]
        return self.positions[order], self.scores[order]


class _ClassBlock:
    """Candidates of some classes as (class, k-th candidate of the class) arrays, padded with removed ones."""

    def __init__(self, segments, scores, candidates, classes, first, counts):
        rows = np.repeat(np.arange(len(classes)), counts)
        cols = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        members = candidates[np.repeat(first, counts) + cols]
        shape = (len(classes), int(counts.max()))
        self.classes = classes
        self.positions = np.zeros(shape, dtype=np.int64)
        self.starts = np.zeros(shape, dtype=segments.dtype)
        self.ends = np.zeros(shape, dtype=segments.dtype)
        self.current = np.full(shape, -np.inf, dtype=scores.dtype)  # -inf: kept, suppressed or padding
        self.positions[rows, cols] = members
        self.starts[rows, cols] = segments[members, 0]
        self.ends[rows, cols] = segments[members, 1]
        self.lengths = self.ends - self.starts
        self.current[rows, cols] = scores[members]

    def keep_rows(self, rows: np.ndarray) -> None:
        for name in ("classes", "positions", "starts", "ends", "lengths", "current"):
            setattr(self, name, getattr(self, name)[rows])


def _rounds(block: _ClassBlock, picks: _Picks, cfg: PostprocessConfig, min_kept: np.float64) -> None:
    """Run the greedy loop of every class in `block` until each class stops; record the picks."""
    dtype = block.starts.dtype
    neg_sigma = np.asarray(-cfg.sigma, dtype=dtype)
    threshold = np.asarray(cfg.iou_threshold, dtype=dtype)
    # Removed candidates are -inf, and -inf * 0 = NaN: a decay can underflow to 0 (IoU <= 1) when sigma < ~0.01.
    decay_can_vanish = np.exp(np.asarray(-2 / cfg.sigma, dtype=dtype)) == 0
    number = 0
    with np.errstate(invalid="ignore", under="ignore"):
        while True:
            rows = np.arange(len(block.classes))
            cols = block.current.argmax(axis=1)  # the first maximum: the earliest input position
            best = block.current[rows, cols]
            going = (best > -np.inf) & (best >= min_kept)
            picks.add(best[going], block.classes[going], number, block.positions[rows[going], cols[going]])
            going &= best >= picks.bar()
            if not going.any():
                return
            if going.sum() <= len(rows) // 2:  # drop stopped classes, a copy only now and then
                block.keep_rows(going)
                rows, cols = np.arange(len(block.classes)), cols[going]
            elif not going.all():
                block.current[~going] = -np.inf  # stopped: never picks again

            block.current[rows, cols] = -np.inf
            pick_starts, pick_ends = block.starts[rows, cols, None], block.ends[rows, cols, None]
            iou = segment_iou(pick_starts, pick_ends, block.starts, block.ends, block.lengths)
            if cfg.nms == "hard":
                block.current[iou > threshold] = -np.inf
            else:
                iou *= iou
                iou /= neg_sigma
                block.current *= torch.from_numpy(iou).exp_().numpy()  # torch's exp: the same values as before
                if decay_can_vanish:
                    np.fmax(block.current, -np.inf, out=block.current)  # NaN -> -inf: removed ones stay removed
            number += 1
