"""A feature pyramid packed on one time axis, so that a detection head runs each op once for all levels.

The heads share their weights over the pyramid levels. Run level by level, a head costs one call
per op per level: a few thousand small calls per forward pass, whose fixed costs (not arithmetic)
are most of the time on short inputs such as an online window. Packed, the levels lie side by side,

    [ level 0 | gap | level 1 | gap | ... | level L-1 ]      (B, C, N), N = sum T_l + (L - 1) * gap

and each op of the head runs once. Packing changes no result:
- the gaps are masked zeros at least as wide as the widest half-kernel of the head, so a
  convolution at the edge of a level sees zeros there, as it does at the end of an unpacked level;
- statistics over time (the attention's channel gate) are taken per level (`Segments`);
- per-level weights (regression scales, path weights) are spread to the positions of their level.
The cross-scale paths of the heads read the neighbouring levels through `from_finer` and
`from_coarser`, which gather each level's neighbour resized to it (nearest neighbour: every second step of the
finer level, every step of the coarser level twice).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mgrec.model.masking import apply_mask, mask_weights, max_over


class Segments:
    """Stretches of the time axis whose statistics over time are kept apart.

    A packed pyramid (`PackedLevels`) lays every level on one time axis; a block that pools over
    time must pool each level on its own. Segment s covers positions [begin, end) = `bounds[s]`;
    the positions between segments must be masked (they are never pooled). `mean` and `max` are
    `masking.masked_mean` and `masking.masked_max` of each segment, for all segments at once.
    """

    def __init__(self, mask: Tensor, bounds: list[tuple[int, int]]) -> None:
        if bounds[0][0] != 0:
            raise ValueError(f"the first segment must start at 0, got bounds {bounds}")
        self.mask = mask  # (B, 1, T) bool
        self.weights = mask_weights(mask)  # the same as 0/1 float32, cast once for every pooling
        self.bounds = bounds
        real = [mask[..., begin:end].sum(dim=-1, dtype=torch.float32) for begin, end in bounds]
        self.real = torch.stack(real, dim=-1)  # (B, 1, S) real positions per segment
        self._has_real = self.real > 0
        self._floors: dict[torch.dtype, Tensor] = {}
        # Each segment's value is spread over the segment and the masked stretch that follows it.
        ends = [begin for begin, _ in bounds[1:]] + [mask.shape[-1]]
        self._spread_lengths = [end - begin for (begin, _), end in zip(bounds, ends)]

    def mean(self, x: Tensor) -> Tensor:
        """Mean over the real positions of each segment of (B, C, T) features -> (B, C, S)."""
        zeroed = apply_mask(x, self.weights)
        # Sums over contiguous slices: a bmm with a (T, S) indicator matrix is much
        # slower for long inputs (a matrix product with a handful of columns).
        totals = torch.cat([zeroed[..., begin:end].sum(dim=-1, keepdim=True) for begin, end in self.bounds], dim=-1)
        return totals / self.real.to(x.dtype).clamp(min=1.0)

    def max(self, x: Tensor) -> Tensor:
        """Max over the real positions of each segment -> (B, C, S); 0 for a segment without any."""
        filled = x + self._floor(x.dtype)  # one fill for all segments
        peaks = torch.cat([max_over(filled[..., begin:end], dim=-1) for begin, end in self.bounds], dim=-1)
        return torch.where(self._has_real, peaks, 0.0)

    def _floor(self, dtype: torch.dtype) -> Tensor:
        """0 at real positions, the lowest finite value of `dtype` at masked ones (B, 1, T).

        Added to features that are zero at masked positions (the mask contract), it fills them with the
        lowest value, as `torch.where(mask, x, lowest)` would, at a fraction of its cost on CPU (torch's
        where is not vectorised there). Anything a real value could be is far above the fill.
        """
        if dtype not in self._floors:
            self._floors[dtype] = (1.0 - self.weights).to(dtype) * torch.finfo(dtype).min
        return self._floors[dtype]

    def spread(self, values: Tensor) -> Tensor:
        """Per-segment values (..., S) -> per-position values (..., T) (broadcast for one segment)."""
        if len(self.bounds) == 1:
            return values
        # Expanded views joined by one copy (index_select along the last axis is much slower).
        parts = [values[..., s : s + 1].expand(*values.shape[:-1], n) for s, n in enumerate(self._spread_lengths)]
        return torch.cat(parts, dim=-1)


class PackedLevels:
    """The layout of a packed pyramid, built from the per-level masks (B, 1, T_l), T_l = T_0 / 2**l."""

    def __init__(self, masks: list[Tensor], gap: int) -> None:
        if gap < 1:
            raise ValueError(f"the gap between packed levels must be at least 1 step, got {gap}")
        self.gap = gap
        self.lengths = [m.shape[-1] for m in masks]
        if any(coarse * 2 != fine for fine, coarse in zip(self.lengths, self.lengths[1:])):
            raise ValueError(f"each level must be half as long as the one before, got lengths {self.lengths}")
        self.starts = []
        position = 0
        for length in self.lengths:
            self.starts.append(position)
            position += length + gap
        self.total = position - gap
        self.mask = self.pack(masks)  # (B, 1, N), False in the gaps
        # The same as 0/1 float32: the head applies it some hundred times per pass (`masking.apply_mask`).
        self.weights = mask_weights(self.mask)
        self._segments: dict[tuple[int, int], Segments] = {}

    @property
    def count(self) -> int:
        """Number of levels."""
        return len(self.lengths)

    def span(self, first: int, last: int) -> slice:
        """The packed positions of levels first..last (inclusive), with the gaps between them."""
        return slice(self.starts[first], self.starts[last] + self.lengths[last])

    def pack(self, feats: list[Tensor]) -> Tensor:
        """Per-level (B, C, T_l) -> (B, C, N), zeros (or False) in the gaps."""
        return self._with_gaps(feats)

    def unpack(self, x: Tensor, dim: int = -1) -> list[Tensor]:
        """(..., N, ...) packed along `dim` -> per-level views (..., T_l, ...)."""
        return [x.narrow(dim, start, length) for start, length in zip(self.starts, self.lengths)]

    def segments(self, first: int, last: int) -> Segments:
        """The levels first..last as segments of `span(first, last)` (for statistics per level)."""
        key = (first, last)
        if key not in self._segments:
            span = self.span(first, last)
            bounds = [(self.starts[level] - span.start, self.starts[level] - span.start + self.lengths[level])
                      for level in range(first, last + 1)]
            self._segments[key] = Segments(self.mask[..., span], bounds)
        return self._segments[key]

    def spread(self, per_level: Tensor, first: int = 0, last: int | None = None) -> Tensor:
        """(L,) values, one per level -> (n,) values at the positions of `span(first, last)`."""
        last = self.count - 1 if last is None else last
        return self.segments(first, last).spread(per_level[first : last + 1])

    def from_finer(self, source: Tensor, source_start: int = 0) -> Tensor:
        """Over `span(1, L-1)`: each level l holds level l-1 at its even steps (stride-2 nearest).

        `source` holds packed positions from `source_start` on, at least levels 0..L-2.
        """
        parts = []
        for level in range(1, self.count):
            begin = self.starts[level - 1] - source_start
            parts.append(source[..., begin : begin + self.lengths[level - 1] : 2])
        return self._join(parts, self.span(1, self.count - 1))

    def from_coarser(self, source: Tensor, source_start: int = 0) -> Tensor:
        """Over `span(0, L-2)`: each level l holds level l+1 with every step repeated twice.

        `source` holds packed positions from `source_start` on, at least levels 1..L-1.
        """
        parts = []
        for level in range(self.count - 1):
            begin = self.starts[level + 1] - source_start
            coarse = source[..., begin : begin + self.lengths[level + 1], None]
            parts.append(coarse.expand(*coarse.shape[:-1], 2).flatten(-2))
        return self._join(parts, self.span(0, self.count - 2))

    def _join(self, parts: list[Tensor], span: slice) -> Tensor:
        """Per-level pieces -> one tensor over `span` with zero gaps, masked there: upsampling can
        copy a real value onto a padded step, and the block convention wants zeros at padding."""
        return apply_mask(self._with_gaps(parts), self.weights[..., span])

    def _with_gaps(self, parts: list[Tensor]) -> Tensor:
        """Consecutive levels' pieces joined along time with `gap` zeros between them."""
        gap = parts[0].new_zeros(parts[0].shape[:-1] + (self.gap,))
        joined = [parts[0]]
        for part in parts[1:]:
            joined += [gap, part]
        return torch.cat(joined, dim=-1)
