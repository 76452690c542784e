"""Class-wise 1D non-maximum suppression: hard NMS and Gaussian Soft-NMS, fast and exact.

Both methods are the same greedy loop, written out plainly in `mgrec.postprocess.reference`
(`nms_reference`): pick the highest current score, keep it, then lower the scores of the remaining
candidates of the same class according to their IoU with the pick (hard: drop those with
IoU > iou_threshold; soft: multiply by exp(-IoU^2 / sigma)). Classes never influence each other,
so the result is the per-class result of the released C++ `nms_1d_cpu` extension of
ActionFormer/DyFADet merged and ranked by score. One deliberate difference: Soft-NMS drops every
candidate whose score is below `min_score` when it would be picked, also one that was never
decayed (the release only drops decayed ones).

Ties in score are broken by class id, then by input position (the first one wins).

Why it is not written as that loop
----------------------------------
The plain loop makes up to `max_detections` picks of a few vector operations each over all
candidates, so its per-call overhead and O(N) work per pick dominate detection on a CPU. Here it
runs on numpy arrays in *rounds*: candidates are laid out as a (classes, candidates of the class)
block, and one round makes picks in every class at once with a fixed number of whole-block
operations. Three facts keep the result exact:

* Only overlapping candidates change. A segment that does not overlap the pick has IoU exactly 0,
  decay exp(0) = 1.0 and an unchanged score, bit for bit (hard NMS keeps it). With a class's
  segments sorted by start, those that can overlap a pick [s, e] are a contiguous *window* of
  places: they start before e, and come after the last place whose `reach` (the furthest end of
  the segments up to it, so the longest segment counts) is <= s. A pick updates its window only.
* A class can make several picks in one round. Take its `batch` highest candidates in pick order
  (score, then input position); everything else ranks lower. One whose window meets no window
  of a higher one is picked now: every candidate whose window meets its window ranks lower and
  can only fall, so the plain loop picks it before any of those, and nothing picked before it
  touches it or its window. Its score when picked and the decays it hands out (in the same order
  per candidate) are the plain loop's. The class's highest is always picked, so every round makes
  progress, and windows that are apart are common, so a large class needs far fewer rounds than
  picks.
* Scores never rise (hard NMS leaves them alone; Soft-NMS multiplies by decays <= 1 and first
  drops the candidates below `min_score`, which could never be kept, so what is left is >= 0).
  So a class's pick sequence is non-increasing, and equal scores in it come in input order: the
  plain loop's ranking is all picks sorted by (score descending, class, input position), cut at
  `max_detections`, whatever the order in which they were found. A class stops when it runs out
  (nothing left, or below `min_score`) or when its highest is below the `max_detections`-th best
  pick so far: all its later picks rank lower still.

The arithmetic per element is the plain loop's, in the same order and dtype (`segment_iou`,
then exp(IoU^2 / -sigma) with torch's exp, numpy's differs in the last bit, then the product),
so results are bit-identical to `nms_reference` for float32/float64 input on CPU
(tests/postprocess/test_nms.py checks it). Inputs on a GPU are processed on the CPU too. Memory
is O(N): the block is padded to the largest class, and classes are processed in groups so that
padding never more than doubles it (a class with many candidates does not pad hundreds of small
ones). Only classes of more than `SMALL_CLASS` candidates get windows (a Python loop sorts and
searches them class by class); a block without such a class makes one pick a class per round and
updates whole rows, the cheapest way for small classes. benchmarks/speed.py times it.
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
    lengths = ends - starts if lengths is None else lengths
    return _iou(start, end, _pick_length(start, end, ends.dtype), starts, ends, lengths)


def _pick_length(start: np.ndarray, end: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The pick's length, computed in float64 and rounded once to the segments' `dtype` (what adding a Python scalar
    did in the plain loop)."""
    return (end.astype(np.float64) - start).astype(dtype)


def _iou(start, end, length, starts, ends, lengths) -> np.ndarray:
    """`segment_iou` with the pick's length given, rounded to the segments' dtype."""
    right, left = np.minimum(ends, end), np.maximum(starts, start)
    # max(right - left, 0), written as right - min(right, left): the same values, a faster numpy path.
    intersection = right - np.minimum(right, left)
    union = lengths + length
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
    Soft-NMS with a negative `min_score` (a decayed negative score would rise); `cfg.sigma` must be
    positive for Soft-NMS and `cfg.iou_threshold` >= 0 for hard NMS.
    """
    if segments.ndim != 2 or segments.shape[1] != 2:
        raise ValueError(f"nms: segments must have shape (N, 2), got {tuple(segments.shape)}")
    if scores.shape != segments.shape[:1] or labels.shape != segments.shape[:1]:
        raise ValueError(
            f"nms: scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must have shape ({segments.shape[0]},)"
        )
    if cfg.nms not in ("soft", "hard"):
        raise ValueError(f"nms: postprocess.nms must be 'soft' or 'hard', got {cfg.nms!r}")
    # Both keep a segment that does not overlap the pick unchanged (what the windows rely on).
    if cfg.nms == "soft" and not cfg.sigma > 0:
        raise ValueError(f"nms: postprocess.sigma must be positive, got {cfg.sigma}")
    if cfg.nms == "hard" and cfg.iou_threshold < 0:
        raise ValueError(f"nms: postprocess.iou_threshold must be >= 0, got {cfg.iou_threshold}")
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


def vote_boundaries(kept_segments: Tensor, kept_labels: Tensor, segments: Tensor, scores: Tensor, labels: Tensor,
                    threshold: float) -> Tensor:
    """Boundary voting after NMS (`postprocess.voting`; ActionFormer's `voting_thresh`, here class-wise as its NMS is):
    each kept segment becomes the score-weighted mean of the candidates of its class (those NMS was given, at their
    scores before any decay) whose tIoU with it is at least `threshold` in (0, 1]. The kept one is among them
    (tIoU 1), so a segment that nothing else overlaps that much stays as it is. Returns the kept segments voted,
    (M, 2), in their dtype and on their device; ranks, scores and labels are NMS's.

    `mgrec.postprocess.reference.vote_boundaries_reference` is the plain loop over every candidate. Here a class's
    candidates are sorted by start, and only those that can reach the tIoU are visited: a candidate of length L_j
    with tIoU >= t with [a, b] has L_j <= (b - a) / t, so it starts after a - (b - a) / t and before b."""
    if not 0 < threshold <= 1:
        raise ValueError(f"vote_boundaries: threshold must be in (0, 1], got {threshold}")
    kept_np, kept_labels_np = _cpu_array(kept_segments).astype(np.float64), _cpu_array(kept_labels)
    segments_np, scores_np, labels_np = (_cpu_array(x) for x in (segments, scores, labels))
    segments_np, scores_np = segments_np.astype(np.float64), scores_np.astype(np.float64)
    voted = kept_np.copy()
    for label in np.unique(kept_labels_np):
        of_class = np.flatnonzero(labels_np == label)
        order = of_class[np.argsort(segments_np[of_class, 0], kind="stable")]
        starts, ends, weights = segments_np[order, 0], segments_np[order, 1], scores_np[order]
        for row in np.flatnonzero(kept_labels_np == label):
            start, end = kept_np[row]
            begin = np.searchsorted(starts, start - (end - start) / threshold, side="right")
            stop = np.searchsorted(starts, end, side="left")
            near = slice(begin, stop)  # those that can reach the tIoU
            voters = np.flatnonzero(segment_iou(start, end, starts[near], ends[near]) >= threshold) + begin
            total = weights[voters].sum()
            if total > 0:
                voted[row, 0] = (weights[voters] * starts[voters]).sum() / total
                voted[row, 1] = (weights[voters] * ends[voters]).sum() / total
    return torch.from_numpy(voted).to(device=kept_segments.device, dtype=kept_segments.dtype)


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
    _, first, counts = np.unique(labels[candidates], return_index=True, return_counts=True)

    picks = _Picks(labels, len(candidates), limit)
    largest_first = np.argsort(-counts, kind="stable")
    while largest_first.size and limit > 0:
        # The next classes by size, as many as fit in a block padded to at most twice their size.
        padded = counts[largest_first[0]] * np.arange(1, largest_first.size + 1)
        group_size = np.count_nonzero(padded <= 2 * np.cumsum(counts[largest_first]))
        group, largest_first = largest_first[:group_size], largest_first[group_size:]
        _rounds(_ClassBlock(segments, scores, candidates, first[group], counts[group]), picks, cfg, min_kept)
    return picks.ranked()


class _Picks:
    """Every pick made so far (input position, score), in no particular order."""

    def __init__(self, labels: np.ndarray, capacity: int, limit: int):
        self.labels = labels
        self.positions = np.empty(capacity, dtype=np.int64)
        self.scores = np.empty(capacity, dtype=np.float64)
        self.count, self.limit = 0, limit
        self._bar, self._bar_count = -np.inf, 0

    def add(self, positions: np.ndarray, scores: np.ndarray) -> None:
        end = self.count + len(scores)
        self.positions[self.count : end] = positions
        self.scores[self.count : end] = scores
        self.count = end

    def bar(self) -> float:
        """At most the `limit`-th highest score so far (-inf before): a class whose scores are all
        below it can stop. Recomputed every limit/16 picks: a bar a little low only costs rounds."""
        if self.count >= self.limit and self.count >= self._bar_count + self.limit // 16:
            self._bar = float(np.partition(self.scores[: self.count], self.count - self.limit)[self.count - self.limit])
            self._bar_count = self.count
        return self._bar

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        positions, scores = self.positions[: self.count], self.scores[: self.count]
        # The plain loop's order: higher score, then lower class, then earlier input position.
        order = np.lexsort((positions, self.labels[positions], -scores))[: self.limit]
        return positions[order], scores[order]


SMALL_CLASS = 256  # classes of at most this many candidates get no windows (they are their own)
BATCH, MAX_BATCH, TENTATIVES = 8, 32, 64  # candidates per class considered in a round (see _rounds)


class _ClassBlock:
    """Candidates of some classes as (class, k-th candidate of the class) arrays, padded with removed ones.

    Columns are in input order: argmax takes the earliest input position among equal scores. In a
    `windowed` block, `by_start[c]` lists the columns of class c by segment start, and `lo`, `hi`
    give each column the window [lo, hi) of those places outside which no segment overlaps its
    segment. The `*_at` arrays are flat views or flat indices: row * width + column (or place).
    """

    def __init__(self, segments, scores, candidates, first, counts):
        rows = np.repeat(np.arange(len(counts)), counts)
        cols = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        members = candidates[np.repeat(first, counts) + cols]
        shape = (len(counts), int(counts.max()))
        self.positions = np.zeros(shape, dtype=np.int64)
        self.starts = np.zeros(shape, dtype=segments.dtype)
        self.ends = np.zeros(shape, dtype=segments.dtype)
        self.current = np.full(shape, -np.inf, dtype=scores.dtype)  # -inf: kept, suppressed or padding
        self.positions[rows, cols] = members
        self.starts[rows, cols] = segments[members, 0]
        self.ends[rows, cols] = segments[members, 1]
        self.lengths = self.ends - self.starts
        self.current[rows, cols] = scores[members]

        # Places from hi on start at or after the column's end e; places before lo end by its start s
        # (reach: the furthest end so far, the longest segment included). Either way their
        # intersection with [s, e] is exactly 0 (see segment_iou). A small class is its own window.
        self.windowed = bool(counts.max() > SMALL_CLASS)
        if self.windowed:
            self.by_start = np.broadcast_to(np.arange(shape[1]), shape).copy()
            self.lo, self.hi = np.zeros(shape, dtype=np.int64), np.repeat(counts[:, None], shape[1], axis=1)
            for row in np.flatnonzero(counts > SMALL_CLASS):
                order = np.argsort(self.starts[row, : counts[row]], kind="stable")
                starts, ends = self.starts[row, order], self.ends[row, order]
                reach = np.maximum.accumulate(ends)
                self.lo[row, order] = np.searchsorted(reach, starts, side="right")
                self.hi[row, order] = np.searchsorted(starts, ends, side="left")
                self.by_start[row, : counts[row]] = order
        self._flatten()

    def keep_rows(self, rows: np.ndarray) -> None:
        windows = ("by_start", "lo", "hi") if self.windowed else ()
        for name in ("positions", "starts", "ends", "lengths", "current") + windows:
            setattr(self, name, getattr(self, name)[rows])
        self._flatten()

    def _flatten(self) -> None:
        self.row_start = np.arange(self.current.shape[0]) * self.current.shape[1]
        for name in ("positions", "starts", "ends", "lengths", "current"):
            setattr(self, name + "_at", getattr(self, name).reshape(-1))  # views
        if self.windowed:
            self.by_start_at = (self.by_start + self.row_start[:, None]).reshape(-1)
            self.lo_at = (self.lo + self.row_start[:, None]).reshape(-1)
            self.hi_at = (self.hi + self.row_start[:, None]).reshape(-1)
            self.span_at = np.maximum(self.hi - self.lo, 0).reshape(-1)

    def highest(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices and scores, (batch, classes), of the `batch` highest candidates of each class
        in pick order (score, then input position); scores -inf where a class has fewer left."""
        at = np.empty((batch, self.current.shape[0]), dtype=np.int64)
        best = np.empty((batch, self.current.shape[0]), dtype=self.current.dtype)
        for j in range(batch):
            at[j] = self.row_start + self.current.argmax(axis=1)
            best[j] = self.current_at[at[j]]
            if batch > 1:
                self.current_at[at[j]] = -np.inf  # taken out for the next argmax
        if batch > 1:  # put back (a class that ran out took some column again, at -inf: that one stays)
            self.current_at[at[best > -np.inf]] = best[best > -np.inf]
        return at, best

    def window_iou(self, picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, IoU) of the candidates in the windows of `picks` (flat indices), the windows
        one after another: no two may share a candidate."""
        lo, span = self.lo_at[picks], self.span_at[picks]
        near = self.by_start_at[np.arange(span.sum()) + np.repeat(lo - (np.cumsum(span) - span), span)]
        start, end = self.starts_at[picks], self.ends_at[picks]
        length = _pick_length(start, end, end.dtype)  # the segments' dtype
        pick = (np.repeat(x, span) for x in (start, end, length))
        return near, _iou(*pick, self.starts_at[near], self.ends_at[near], self.lengths_at[near])


def _rounds(block: _ClassBlock, picks: _Picks, cfg: PostprocessConfig, min_kept: np.float64) -> None:
    """Run the greedy loop of every class in `block` until each class stops; record the picks."""
    dtype = block.starts.dtype
    neg_sigma = np.asarray(-cfg.sigma, dtype=dtype)
    threshold = np.asarray(cfg.iou_threshold, dtype=dtype)
    # Removed candidates are -inf, and -inf * 0 = NaN: a decay can underflow to 0 (IoU <= 1) when sigma < ~0.01.
    decay_can_vanish = np.exp(np.asarray(-2 / cfg.sigma, dtype=dtype)) == 0

    def decay(scores: np.ndarray, iou: np.ndarray) -> None:  # in place, the plain loop's arithmetic
        if cfg.nms == "hard":
            scores[iou > threshold] = -np.inf
        else:
            iou *= iou
            iou /= neg_sigma
            scores *= torch.from_numpy(iou).exp_().numpy()  # torch's exp: the same values as before
            if decay_can_vanish:
                np.fmax(scores, -np.inf, out=scores)  # NaN -> -inf: removed ones stay removed

    batch, most = 0, 0
    with np.errstate(invalid="ignore", under="ignore"):
        while True:
            wanted = 1
            if block.windowed:  # about twice the most a class picked last round; fewer while many classes
                classes, width = block.current.shape  # are left (each candidate is a pass over the block)
                wanted = min(max(2 * most, BATCH), max(TENTATIVES // classes, BATCH), MAX_BATCH, width)
            if batch != wanted:
                batch = wanted
                higher = np.tri(batch, k=-1, dtype=bool)[:, :, None]  # higher[j, i]: i < j
            at, best = block.highest(batch)
            picked = (best > -np.inf) & (best >= min_kept)
            if batch > 1:  # and their window meets no window of a higher one (see the module docstring)
                lo, hi = block.lo_at[at], block.hi_at[at]
                picked &= ~((lo[:, None] < hi[None]) & (lo[None] < hi[:, None]) & higher).any(axis=1)
            going = picked[0] & (best[0] >= picks.bar())
            picked &= going
            kept = at[picked]
            picks.add(block.positions_at[kept], best[picked])
            if not going.any():
                return

            block.current_at[kept] = -np.inf
            if block.windowed:
                most = picked.sum(axis=0).max()
                near, iou = block.window_iou(kept)
                scores = block.current_at[near]
                decay(scores, iou)
                block.current_at[near] = scores
            else:  # one pick a class, at[0], and whole rows (classes that stopped are cleared below)
                pick_starts, pick_ends = block.starts_at[at[0], None], block.ends_at[at[0], None]
                decay(block.current, segment_iou(pick_starts, pick_ends, block.starts, block.ends, block.lengths))
            if going.sum() <= len(going) // 2:  # drop stopped classes, a copy only now and then
                block.keep_rows(going)
            elif not going.all():
                block.current[~going] = -np.inf  # stopped: never picks again
