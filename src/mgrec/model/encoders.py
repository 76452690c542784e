"""Encoders: clip features (B, input_dim, T) -> a feature pyramid of `num_levels` levels.

Both encoders share one skeleton (`PyramidEncoder`): an embedding (2 masked convs, kernel 3, no
bias, each followed by channel LayerNorm and ReLU), `stem_layers` layers at stride 1, then
`num_levels - 1` layers that each halve the time axis. Level 0 is the stem output; level l has
stride 2**l. They differ only in the layer:
- `mgrec` and `dyfadet`: DyFADet's DynE layer (the stem with window 1 and no LayerScale or
  drop-path, the downsampling layers with `window_size`, LayerScale and drop-path, as released);
- `actionformer`: pre-LN transformer blocks with local-window self-attention.
Reference: `mgrec.model.reference.encoder`, layer by layer.
"""

from __future__ import annotations

from torch import Tensor, nn

from mgrec.config import ModelConfig
from mgrec.model.actionformer import TransformerBlock
from mgrec.model.dyfadet import DynELayer
from mgrec.model.masking import MaskedConv1d, apply_mask, mask_weights
from mgrec.model.norm import ChannelLayerNorm


class Embedding(nn.Module):
    """Two masked convs (kernel 3, no bias), each followed by channel LayerNorm and ReLU."""

    def __init__(self, input_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [MaskedConv1d(input_dim, embed_dim, 3, bias=False), MaskedConv1d(embed_dim, embed_dim, 3, bias=False)]
        )
        self.norms = nn.ModuleList([ChannelLayerNorm(embed_dim), ChannelLayerNorm(embed_dim)])

    def forward(self, x: Tensor, mask: Tensor, inject=None) -> Tensor:
        """`inject`: a function of the first conv's output whose result is added to it before its norm
        (gated fusion's early injection of the other streams, `mgrec.model.fusion`)."""
        weights = mask_weights(mask, x.dtype)  # cast once for the four uses below
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = conv(x, weights)
            if index == 0 and inject is not None:
                y = y + inject(y)
            x = apply_mask(norm(y).relu(), weights)
        return x


class PyramidEncoder(nn.Module):
    """Embedding, stride-1 stem layers, then stride-2 layers; every layer maps (x, mask) -> (x, mask)."""

    def __init__(self, embedding: nn.Module, stem: list[nn.Module], branch: list[nn.Module]) -> None:
        super().__init__()
        self.embedding = embedding
        self.stem = nn.ModuleList(stem)
        self.branch = nn.ModuleList(branch)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """(B, C_in, T) features zero at padded positions -> per-level features and masks."""
        x = self.embedding(x, mask)
        for layer in self.stem:
            x, mask = layer(x, mask)
        feats, masks = [x], [mask]
        for layer in self.branch:
            x, mask = layer(x, mask)
            feats.append(x)
            masks.append(mask)
        return feats, masks


def build_tower(cfg: ModelConfig, embedding: nn.Module) -> PyramidEncoder:
    """One `PyramidEncoder` of `cfg.variant`'s layers after `embedding`."""
    dim, num_down = cfg.embed_dim, cfg.num_levels - 1
    if cfg.variant == "actionformer":

        def block(downsample: bool) -> TransformerBlock:
            return TransformerBlock(dim, cfg.transformer_heads, cfg.transformer_window, downsample, cfg.drop_path)

        stem = [block(downsample=False) for _ in range(cfg.stem_layers)]
        return PyramidEncoder(embedding, stem, [block(downsample=True) for _ in range(num_down)])

    def dyne(window: int, downsample: bool) -> DynELayer:
        # As released: the stem has window 1, no LayerScale and no drop-path; the downsampling
        # layers use `window_size` with both.
        return DynELayer(
            dim,
            cfg.mlp_dim,
            window,
            cfg.kernel_expansion,
            downsample=downsample,
            drop_path=cfg.drop_path if downsample else 0.0,
            layer_scale=downsample,
            init_std=cfg.init_conv_std,
        )

    stem = [dyne(1, downsample=False) for _ in range(cfg.stem_layers)]
    branch = [dyne(cfg.window_size, downsample=True) for _ in range(num_down)]
    return PyramidEncoder(embedding, stem, branch)
