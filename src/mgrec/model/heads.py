"""Detection heads: pyramid features -> per-level class logits and boundary offsets.

Every head has two separate towers, one for classification and one for regression (the released
structure of DyFADet and ActionFormer), each of `head_layers - 1` layers, followed by the final
predictors. All weights are shared over pyramid levels, except a regression Scale per level.

- `mgrec` (the paper, Sec. 3.4): each tower layer fuses, for every level l, three paths: level l-1
  downsampled to T_l, level l, and level l+1 upsampled to T_l (nearest; a missing neighbour at the
  ends is skipped). Each path goes through its own spatial-temporal attention module
  (`attention.SpatialTemporalAttention`, Eq. 4-5, shared over levels). The paths are summed with learnable
  weights softmax(w_path) over the paths present at that level (all equal at the start; at the
  end levels the softmax runs over the two present paths). Then a DFA conv and ReLU.
  Like DyFADet's head, the fusion happens in every tower layer, so mgrec and dyfadet differ only in
  the fusion.
- `dyfadet` (DyFADet's dynamic head, libs/modeling/heads.py of its release): each tower layer computes
  h_l = a * (DFA(f_{l-1}) resized + DFA(f_{l+1}) resized) + b * f_l with scalars a = 0, b = 1 at
  the start, then a DFA conv and ReLU.
- `actionformer`: each tower layer is a masked conv (kernel `head_kernel`), channel LayerNorm, ReLU.

Final predictors: cls = masked conv (kernel `head_kernel`) -> num_classes, bias set to the logit of
`cls_prior`; reg = masked conv -> 2, times a learnable Scale per level (starting at 1), ReLU. Both
convs run in float32 also under bf16 autocast (`_in_float32`).

The towers and predictors run on the packed pyramid (`mgrec.model.pyramid.PackedLevels`): all
levels side by side on one time axis, so each op runs once for all levels instead of once per
level, which makes the head much faster on short inputs such as an online window. The results
are those of the level-by-level computation described above, written out in
`mgrec.model.reference` (`head`, `conv_tower`, `attention_fusion`, `dfa_fusion`); tests compare
the two. On short inputs the mgrec head goes further: both towers, and the three attention paths of
each layer, run in one pass (`towers_in_one_pass`, below `ONE_PASS_MAX_ELEMENTS`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgrec.config import ModelConfig
from mgrec.model.attention import SpatialTemporalAttention
from mgrec.model.dyfadet import DFAConv1d, dfa_in_one_pass
from mgrec.model.masking import MaskedConv1d, apply_mask, max_over
from mgrec.model.norm import ChannelLayerNorm, at_least_float32, autocast_off
from mgrec.model.pyramid import PackedLevels, Segments


class Predictors(nn.Module):
    """The final classifier and regressor, shared over levels."""

    def __init__(self, in_dim: int, num_classes: int, kernel_size: int, num_levels: int, cls_prior: float) -> None:
        super().__init__()
        self.cls = MaskedConv1d(in_dim, num_classes, kernel_size)
        self.reg = MaskedConv1d(in_dim, 2, kernel_size)
        self.reg_scales = nn.Parameter(torch.ones(num_levels))
        # Start every class probability at the prior so the focal loss is not swamped by the
        # many background positions in the first steps.
        nn.init.constant_(self.cls.bias, -math.log((1.0 - cls_prior) / cls_prior))
        # Start every distance at about one stride: behind the final ReLU, a regressor that starts
        # negative at the positive points gets no gradient and never recovers (seen with small heads).
        nn.init.normal_(self.reg.weight, std=0.01)
        nn.init.constant_(self.reg.bias, 1.0)

    def classify(self, x: Tensor, levels: PackedLevels) -> list[Tensor]:
        """Per level (B, T_l, num_classes) raw logits (zero at padded positions), at least float32."""
        return levels.unpack(_in_float32(self.cls, x, levels.weights).transpose(1, 2), dim=1)

    def regress(self, x: Tensor, levels: PackedLevels) -> list[Tensor]:
        """Per level (B, T_l, 2) non-negative distances to start and end, in units of the level stride
        (at least float32)."""
        scales = levels.spread(self.reg_scales)
        return levels.unpack((_in_float32(self.reg, x, levels.weights) * scales).relu().transpose(1, 2), dim=1)


def _in_float32(conv: MaskedConv1d, x: Tensor, mask: Tensor) -> Tensor:
    """`conv(x, mask)` in at least float32, also under autocast (without autocast: `conv(x, mask)`).

    A logit is a sum of hundreds of products of both signs plus the prior bias (about -4.6), far
    smaller than its terms, so bf16 inputs and weights (8-bit mantissas) cost most of its accuracy.
    Measured on the trained demo run under CPU bf16 autocast: the error of the logits fell from std
    0.016 (max 0.051) to 0.0046 (max 0.028) with these two convs in float32, and that of the offsets
    from 0.017 to 0.009 feature steps; they are a tiny part of the compute (num_classes + 2 outputs).
    """
    wide = at_least_float32(x)
    with autocast_off(x.device.type):
        return conv(wide, mask)


class ConvTower(nn.Module):
    """ActionFormer's head tower: layers of [masked conv, channel LayerNorm, ReLU] (`reference.conv_tower`)."""

    def __init__(self, dims: list[int], kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([MaskedConv1d(a, b, kernel_size, bias=False) for a, b in zip(dims[:-1], dims[1:])])
        self.norms = nn.ModuleList([ChannelLayerNorm(b) for b in dims[1:]])

    def forward(self, x: Tensor, levels: PackedLevels) -> Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = apply_mask(norm(conv(x, levels.weights)).relu(), levels.weights)
        return x


def attend_packed(attention: SpatialTemporalAttention, x: Tensor, mask: Tensor, scale: Tensor,
                  segments: Segments) -> Tensor:
    """`attention(x, mask) * scale` on packed levels: Eq. 4 pools each level (segment) on its own.

    `scale` holds one weight per position (the level's path weight), folded into the small time gate.
    """
    x = x * segments.spread(attention.channel_gate(segments.mean(x), segments.max(x)))
    gate = apply_mask(attention.time_gate(x, mask), mask) * scale
    return x * gate.to(x.dtype)  # a float32 scale would promote x (the dtype rule of `mgrec.model.masking`)


def attend_paths(attentions: list[SpatialTemporalAttention], paths: Tensor, mask: Tensor, scales: Tensor,
                 segments: Segments, groups: int = 1) -> Tensor:
    """(B, G, C, N): per group g, sum_p attentions[p](paths[:, p], mask) * scales[p] over the paths p
    of that group, on packed levels, all paths in one pass.

    `paths` (B, P, C, N): one input per attention module, each laid over the whole packed pyramid;
    `scales` (P, N): each path's weight at every position (0 where a path has no input); `segments`:
    the levels, pooled one by one (Eq. 4). Each op runs once for the P paths, with the modules'
    weights stacked: the head's fusion is three small attentions per tower layer, whose fixed costs
    per op, not their arithmetic, are most of their time on an online window.
    Each path p equals `attend_packed(attentions[p], paths[:, p], mask, scales[p], segments)`. The
    paths are in G groups of P / G consecutive ones (the three paths of each of the G fusions).
    """
    batch, count, channels, length = paths.shape
    flat = paths.reshape(batch, count * channels, length)
    # Eq. 4 for every path at once: the two pooled vectors of every (path, level) through the
    # path's MLP, one batched matmul per linear layer over the P paths.
    pooled = torch.stack([segments.mean(flat), segments.max(flat)], dim=1)  # (B, 2, P*C, S)
    pooled = pooled.unflatten(2, (count, channels)).permute(2, 0, 1, 4, 3).reshape(count, -1, channels)
    first = [attention.channel_mlp[0] for attention in attentions]
    second = [attention.channel_mlp[2] for attention in attentions]
    hidden = torch.baddbmm(torch.stack([layer.bias for layer in first])[:, None],
                           pooled, torch.stack([layer.weight for layer in first]).transpose(1, 2)).relu()
    logits = torch.baddbmm(torch.stack([layer.bias for layer in second])[:, None],
                           hidden, torch.stack([layer.weight for layer in second]).transpose(1, 2))
    logits = logits.unflatten(1, (batch, 2, -1)).sum(dim=2)  # (P, B, S, C): mean's MLP + max's MLP
    channel_gates = torch.sigmoid(logits).permute(1, 0, 3, 2).reshape(batch, count * channels, -1)
    gated = (flat * segments.spread(channel_gates)).view(batch, count, channels, length)
    # Eq. 5 for every path at once: one conv from the (mean, max) maps of the P paths to their P time
    # gates, whose kernel is block-diagonal (path p reads its own two maps only). On CPU, torch's
    # grouped conv costs several times a dense one of this size.
    maps = torch.stack([gated.mean(dim=2), max_over(gated, dim=2).squeeze(2)], dim=2).flatten(1, 2)  # (B, 2P, N)
    time_convs = [attention.time_conv for attention in attentions]
    kernels = torch.stack([conv.weight[0] for conv in time_convs])  # (P, 2, k)
    own_maps = torch.eye(count, dtype=kernels.dtype, device=kernels.device)[:, :, None, None]
    time_logits = F.conv1d(apply_mask(maps, mask), (own_maps * kernels[:, None]).flatten(1, 2),
                           torch.cat([conv.bias for conv in time_convs]), padding=time_convs[0].padding)
    time_gates = (apply_mask(torch.sigmoid(time_logits), mask) * scales).to(gated.dtype)  # (B, P, N)
    # The weighted sum over each group's paths (an einsum here runs as N tiny matrix products on CPU).
    gated = gated.unflatten(1, (groups, -1))
    time_gates = time_gates.unflatten(1, (groups, -1))[:, :, :, None]
    fused = gated[:, :, 0] * time_gates[:, :, 0]
    for path in range(1, gated.shape[2]):
        fused.addcmul_(gated[:, :, path], time_gates[:, :, path])  # its backward needs no output
    return fused


# Packed pyramids (B, C, N) of at most this many numbers go through the mgrec head's towers in one
# pass (`towers_in_one_pass`: both towers, all three attention paths of a layer at once), larger ones
# tower by tower and path by path. One pass saves fixed costs per op, which dominate on short inputs
# (an online window); laying the neighbour paths over all levels costs about a fifth more
# arithmetic, which dominates on long ones. Measured on a 2-core Xeon, one thread, one fusion layer
# with 128 channels and 5 levels (an ad-hoc timing, 2026-12-04): the three paths in one pass take
# 0.80x the time of path by path at 128 steps (33k numbers), 0.95x at 256 (65k), 1.11x at 512 (129k);
# forward and backward 0.84x, 1.02x, 1.13x. Running both towers together then takes 0.92x the time of
# one after the other on a 128-step online window of the demo model (4.5 against 4.9 ms).
ONE_PASS_MAX_ELEMENTS = 1 << 16


class AttentionFusion(nn.Module):
    """mgrec's cross-scale fusion: softmax-weighted sum of three attended paths (l-1, l, l+1).

    Reference: `reference.attention_fusion`.
    """

    def __init__(self, dim: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        # Index 0: from the finer level l-1, 1: level l itself, 2: from the coarser level l+1.
        self.attend = nn.ModuleList([SpatialTemporalAttention(dim, mlp_ratio, kernel_size) for _ in range(3)])
        self.path_logits = nn.Parameter(torch.zeros(3))

    def path_weights(self, num_levels: int) -> Tensor:
        """(3, L): softmax(path_logits) over the paths present at each level (an end level has two)."""
        present = torch.ones(3, num_levels, dtype=torch.bool, device=self.path_logits.device)
        present[0, 0] = False  # level 0 has no finer level
        present[2, -1] = False  # the last level has no coarser level
        logits = self.path_logits[:, None].expand(3, num_levels)
        return torch.softmax(logits.masked_fill(~present, float("-inf")), dim=0)

    def forward(self, x: Tensor, levels: PackedLevels) -> Tensor:
        """One pass per path (`attend_packed`), each over the levels that have its input only.

        On short inputs the head runs its two towers' fusions in one pass instead (`fuse_in_one_pass`).
        """
        last = levels.count - 1
        weights = self.path_weights(levels.count)
        fused = attend_packed(self.attend[1], x, levels.weights, levels.spread(weights[1]), levels.segments(0, last))
        if last == 0:
            return fused
        # The neighbour paths cover the levels that have that neighbour: 1..L-1 and 0..L-2. They
        # add in place into slices: the attention's output is not needed by its backward.
        for path, first, final, neighbour in ((0, 1, last, levels.from_finer), (2, 0, last - 1, levels.from_coarser)):
            span = levels.span(first, final)
            scale = levels.spread(weights[path], first, final)
            segments = levels.segments(first, final)
            mask = levels.weights[..., span]
            fused[..., span] += attend_packed(self.attend[path], neighbour(x), mask, scale, segments)
        return fused


def fuse_in_one_pass(fusions: list[AttentionFusion], xs: Tensor, levels: PackedLevels) -> Tensor:
    """(B, G, C, N) -> (B, G, C, N): fusion g on xs[:, g], the 3 G paths in one pass (`attend_paths`).

    The finer and coarser paths are laid over the whole packed pyramid, zero at the levels without
    that neighbour (the first and the last), where their weight is 0.
    """
    batch, groups, channels, length = xs.shape
    flat = xs.reshape(batch, groups * channels, length)  # the neighbour gathers are channel-wise
    last = levels.count - 1
    if last == 0:
        finer = coarser = torch.zeros_like(flat)
    else:  # the neighbour paths cover the levels that have that neighbour: 1..L-1 and 0..L-2
        finer = _over_all_levels(levels.from_finer(flat), levels.span(1, last), levels.total)
        coarser = _over_all_levels(levels.from_coarser(flat), levels.span(0, last - 1), levels.total)
    # (B, G, 3, C, N) -> (B, 3 G, C, N): the three paths of each fusion side by side
    paths = torch.stack([finer, flat, coarser], dim=1).view(batch, 3, groups, channels, length)
    paths = paths.transpose(1, 2).reshape(batch, 3 * groups, channels, length)
    segments = levels.segments(0, last)
    # (3 G, N); 0 where a path is absent
    scales = segments.spread(torch.cat([fusion.path_weights(levels.count) for fusion in fusions]))
    attentions = [attention for fusion in fusions for attention in fusion.attend]
    return attend_paths(attentions, paths, levels.weights, scales, segments, groups)


def _over_all_levels(x: Tensor, covered: slice, total: int) -> Tensor:
    """(B, C, n) features of the packed positions `covered` -> (B, C, total), zero elsewhere."""
    return F.pad(x, (covered.start, total - covered.stop))


class DFAFusion(nn.Module):
    """DyFADet's cross-scale fusion: h_l = a * (DFA(f_{l-1}) + DFA(f_{l+1}), resized) + b * f_l.

    Reference: `reference.dfa_fusion`.
    """

    def __init__(self, dim: int, kernel_size: int, gate_tau: float) -> None:
        super().__init__()
        self.from_finer = DFAConv1d(dim, dim, kernel_size, gate_tau)
        self.from_coarser = DFAConv1d(dim, dim, kernel_size, gate_tau)
        # a = 0, b = 1: the layer starts as its own level only and learns how much to mix in.
        self.neighbour_weight = nn.Parameter(torch.zeros(()))
        self.own_weight = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor, levels: PackedLevels) -> Tensor:
        last = levels.count - 1
        fused = self.own_weight * x
        if last > 0:
            # Each DFA runs only on the levels it is read from: 0..L-2 (finer), 1..L-1 (coarser).
            sources = levels.span(0, last - 1)
            finer = self.from_finer(x[..., sources], levels.weights[..., sources])
            fused[..., levels.span(1, last)] += self.neighbour_weight * levels.from_finer(finer, sources.start)
            sources = levels.span(1, last)
            coarser = self.from_coarser(x[..., sources], levels.weights[..., sources])
            fused[..., levels.span(0, last - 1)] += self.neighbour_weight * levels.from_coarser(coarser, sources.start)
        return fused


class DynamicTower(nn.Module):
    """Tower layers of [cross-scale fusion, DFA conv, ReLU] (mgrec and dyfadet heads; `reference.dynamic_tower`)."""

    def __init__(self, fusions: list[nn.Module], convs: list[DFAConv1d]) -> None:
        super().__init__()
        self.fusions = nn.ModuleList(fusions)
        self.convs = nn.ModuleList(convs)

    def forward(self, x: Tensor, levels: PackedLevels) -> Tensor:
        for fusion, conv in zip(self.fusions, self.convs):
            x = conv(fusion(x, levels), levels.weights).relu()
        return x


class DetectionHead(nn.Module):
    """Separate cls and reg towers followed by the shared final predictors, on the packed pyramid.

    Reference: `reference.head`, level by level.
    """

    def __init__(self, cls_tower: nn.Module, reg_tower: nn.Module, predictors: Predictors, gap: int) -> None:
        super().__init__()
        self.cls_tower = cls_tower
        self.reg_tower = reg_tower
        self.predictors = predictors
        self.gap = gap  # zero steps between packed levels: the widest half-kernel of the head
        # mgrec's towers (attention fusion, DFA convs) can run side by side (`towers_in_one_pass`)
        self.towers_run_together = all(
            isinstance(tower, DynamicTower) and all(isinstance(f, AttentionFusion) for f in tower.fusions)
            for tower in (cls_tower, reg_tower)
        )

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per-level features (B, C, T_l) and masks -> per level (B, T_l, num_classes) logits and
        (B, T_l, 2) offsets."""
        levels = PackedLevels(masks, self.gap)
        x = levels.pack(feats)
        if self.towers_run_together and x.numel() <= ONE_PASS_MAX_ELEMENTS:
            both = towers_in_one_pass([self.cls_tower, self.reg_tower], x, levels)
            cls_features, reg_features = both[:, 0], both[:, 1]
        else:
            cls_features, reg_features = self.cls_tower(x, levels), self.reg_tower(x, levels)
        return self.predictors.classify(cls_features, levels), self.predictors.regress(reg_features, levels)


def towers_in_one_pass(towers: list[DynamicTower], x: Tensor, levels: PackedLevels) -> Tensor:
    """(B, C, N) -> (B, G, C', N): the G towers of the mgrec head on the same input, each layer of
    all of them in one pass (`fuse_in_one_pass`, `dyfadet.dfa_in_one_pass`): an online window's
    head is two towers of small ops whose fixed costs are most of its time."""
    xs = x[:, None].expand(-1, len(towers), -1, -1)
    for layer in range(len(towers[0].convs)):
        fused = fuse_in_one_pass([tower.fusions[layer] for tower in towers], xs, levels)
        xs = dfa_in_one_pass([tower.convs[layer] for tower in towers], fused, levels.weights[:, None]).relu()
    return xs


def _tower(cfg: ModelConfig) -> nn.Module:
    dims = [cfg.embed_dim] + [cfg.head_dim] * (cfg.head_layers - 1)
    if cfg.variant == "actionformer":
        return ConvTower(dims, cfg.head_kernel)
    if cfg.variant == "mgrec":
        fusions = [AttentionFusion(d, cfg.attention_mlp_ratio, cfg.attention_kernel) for d in dims[:-1]]
    else:
        fusions = [DFAFusion(d, cfg.head_kernel, cfg.gate_tau) for d in dims[:-1]]
    convs = [DFAConv1d(a, b, cfg.head_kernel, cfg.gate_tau) for a, b in zip(dims[:-1], dims[1:])]
    return DynamicTower(fusions, convs)


def build_head(cfg: ModelConfig) -> DetectionHead:
    """The head for `cfg.variant` (mgrec, dyfadet or actionformer)."""
    in_dim = cfg.head_dim if cfg.head_layers > 1 else cfg.embed_dim
    predictors = Predictors(in_dim, cfg.num_classes, cfg.head_kernel, cfg.num_levels, cfg.cls_prior)
    kernels = [cfg.head_kernel] + ([cfg.attention_kernel] if cfg.variant == "mgrec" else [])
    return DetectionHead(_tower(cfg), _tower(cfg), predictors, gap=max(1, max(kernels) // 2))
