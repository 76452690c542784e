"""Detection heads: pyramid features -> per-level class logits and boundary offsets.

Every head has two separate towers, one for classification and one for regression (the released
structure of DyFADet and ActionFormer), each of `head_layers - 1` layers, followed by the final
predictors. All weights are shared over pyramid levels, except a regression Scale per level.

- `mgrec` (the paper, Sec. 3.4): each tower layer fuses, for every level l, three paths: level l-1
  downsampled to T_l, level l, and level l+1 upsampled to T_l (nearest; a missing neighbour at the
  ends is skipped). Each path goes through its own spatial-temporal attention module
  (`blocks.SpatialTemporalAttention`, shared over levels). The paths are summed with learnable
  weights softmax(w_path) over the paths present at that level (all equal at the start; at the
  end levels the softmax runs over the two present paths). Then a DFA conv and ReLU.
  Like DyFADet's head, the fusion happens in every tower layer, so mgrec and dyfadet differ only in
  the fusion.
- `dyfadet` (DyFADet's dynamic head, anchors-tad.md 1.3): each tower layer computes
  h_l = a * (DFA(f_{l-1}) resized + DFA(f_{l+1}) resized) + b * f_l with scalars a = 0, b = 1 at
  the start, then a DFA conv and ReLU.
- `actionformer`: each tower layer is a masked conv (kernel `head_kernel`), channel LayerNorm, ReLU.

Final predictors: cls = masked conv (kernel `head_kernel`) -> num_classes, bias set to the logit of
`cls_prior`; reg = masked conv -> 2, times a learnable Scale per level (starting at 1), ReLU.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mgrec.config import ModelConfig
from mgrec.model.blocks import (
    ChannelLayerNorm,
    DFAConv1d,
    MaskedConv1d,
    SpatialTemporalAttention,
    apply_mask,
    resize_nearest,
)


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

    def classify(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        """Per level (B, T_l, num_classes) raw logits (zero at padded positions)."""
        return [self.cls(x, mask).transpose(1, 2).contiguous() for x, mask in zip(feats, masks)]

    def regress(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        """Per level (B, T_l, 2) non-negative distances to start and end, in units of the level stride."""
        return [
            (self.reg(x, mask) * self.reg_scales[level]).relu().transpose(1, 2).contiguous()
            for level, (x, mask) in enumerate(zip(feats, masks))
        ]


class ConvTower(nn.Module):
    """ActionFormer's head tower: layers of [masked conv, channel LayerNorm, ReLU]."""

    def __init__(self, dims: list[int], kernel_size: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([MaskedConv1d(a, b, kernel_size, bias=False) for a, b in zip(dims[:-1], dims[1:])])
        self.norms = nn.ModuleList([ChannelLayerNorm(b) for b in dims[1:]])

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        for conv, norm in zip(self.convs, self.norms):
            feats = [apply_mask(norm(conv(x, mask)).relu(), mask) for x, mask in zip(feats, masks)]
        return feats


class AttentionFusion(nn.Module):
    """mgrec's cross-scale fusion: softmax-weighted sum of three attended paths (l-1, l, l+1)."""

    def __init__(self, dim: int, mlp_ratio: int, kernel_size: int) -> None:
        super().__init__()
        # Index 0: from the finer level l-1, 1: level l itself, 2: from the coarser level l+1.
        self.attend = nn.ModuleList([SpatialTemporalAttention(dim, mlp_ratio, kernel_size) for _ in range(3)])
        self.path_logits = nn.Parameter(torch.zeros(3))

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        fused = []
        for level, mask in enumerate(masks):
            present = [path for path in range(3) if 0 <= level - 1 + path < len(feats)]
            weights = torch.softmax(self.path_logits[present], dim=0)
            total = None
            for path, weight in zip(present, weights):
                # Upsampling can copy a real value onto the first padded step; the attention
                # ignores padded positions in its statistics and zeroes them in its output.
                x = resize_nearest(feats[level - 1 + path], mask.shape[-1])
                term = self.attend[path](x, mask, scale=weight)
                total = term if total is None else total + term
            fused.append(total)
        return fused


class DFAFusion(nn.Module):
    """DyFADet's cross-scale fusion: h_l = a * (DFA(f_{l-1}) + DFA(f_{l+1}), resized) + b * f_l."""

    def __init__(self, dim: int, kernel_size: int, gate_tau: float) -> None:
        super().__init__()
        self.from_finer = DFAConv1d(dim, dim, kernel_size, gate_tau)
        self.from_coarser = DFAConv1d(dim, dim, kernel_size, gate_tau)
        # a = 0, b = 1: the layer starts as its own level only and learns how much to mix in.
        self.neighbour_weight = nn.Parameter(torch.zeros(()))
        self.own_weight = nn.Parameter(torch.ones(()))

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        fused = []
        for level, (x, mask) in enumerate(zip(feats, masks)):
            neighbours = torch.zeros_like(x)
            if level > 0:
                finer = self.from_finer(feats[level - 1], masks[level - 1])
                neighbours = neighbours + resize_nearest(finer, x.shape[-1])
            if level + 1 < len(feats):
                coarser = self.from_coarser(feats[level + 1], masks[level + 1])
                neighbours = neighbours + apply_mask(resize_nearest(coarser, x.shape[-1]), mask)
            fused.append(self.neighbour_weight * neighbours + self.own_weight * x)
        return fused


class DynamicTower(nn.Module):
    """Tower layers of [cross-scale fusion, DFA conv, ReLU] (mgrec and dyfadet heads)."""

    def __init__(self, fusions: list[nn.Module], convs: list[DFAConv1d]) -> None:
        super().__init__()
        self.fusions = nn.ModuleList(fusions)
        self.convs = nn.ModuleList(convs)

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
        for fusion, conv in zip(self.fusions, self.convs):
            feats = fusion(feats, masks)
            feats = [conv(x, mask).relu() for x, mask in zip(feats, masks)]
        return feats


class DetectionHead(nn.Module):
    """Separate cls and reg towers followed by the shared final predictors."""

    def __init__(self, cls_tower: nn.Module, reg_tower: nn.Module, predictors: Predictors) -> None:
        super().__init__()
        self.cls_tower = cls_tower
        self.reg_tower = reg_tower
        self.predictors = predictors

    def forward(self, feats: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: (B, T_l, num_classes) logits and (B, T_l, 2) offsets."""
        cls_logits = self.predictors.classify(self.cls_tower(feats, masks), masks)
        offsets = self.predictors.regress(self.reg_tower(feats, masks), masks)
        return cls_logits, offsets


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
    return DetectionHead(_tower(cfg), _tower(cfg), predictors)
