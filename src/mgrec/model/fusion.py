"""Several input streams in one detector: concat, sum, or gated residual fusion (`model.fusion`).

The input (B, sum_s C_s, T) holds the streams' channels side by side, the grid stream first
(`DataConfig.input_streams`; `model.stream_dims` = [C_0, C_1, ...]). All streams share the mask.
- `concat`: one embedding of all channels: exactly the one-stream detector with input_dim = sum C_s.
- `sum`:    each stream has its own embedding, and the embeddings are added,
                e = sum_s Embedding_s(x_s),
            before the shared stem and pyramid (`SummedEmbedding`).
- `gated`:  the main stream (s = 0) goes through the variant's encoder, and the others join it twice.
            First, at its input: each other stream's features x_s get a conv (kernel 3) of their own,
            Q_s, zero-initialised, added to the main embedding's first conv C x_0 through a gate,
                C x_0 <- C x_0 + sum_s h_s * Q_s x_s,   h_s = sigmoid(V_s [C x_0; Q_s x_s]),
            so that where the gates open this is concat's first layer (C and Q_s side by side): gated
            can learn what concat learns. Then, every stream has its own embedding; the main stream
            and every other stream
            run through the variant's encoder layers, the same layers (shared weights) for all, so
            that fusion adds a stream's embedding and the gates, not a second encoder. At every
            pyramid level l (after the stem, and after each downsampling layer) each auxiliary
            stream's level a_l is injected into the main one,
                x_l <- x_l + g_l * P_l(a_l),     g_l = sigmoid(W_l [x_l; a_l])
            per channel and time step, with P_l = 1x1 conv -> ReLU -> 1x1 conv, its last conv
            zero-initialised (`GatedResidual`), and the fused x_l goes on into the next layer, so
            coarser levels see the auxiliary streams too. At step 0 P_l = 0, so the detector is the
            main stream's detector alone; the first step moves P_l's last conv (its input, P_l's
            hidden layer, is not zero), and from then on the gate W_l learns too.
            Why shared layers, the input gate and open gates: with a second encoder per stream (twice
            the parameters) and no input gate, the demo's test F1 fell 11 points below its val F1 (two
            seeds: val 72.0, test 60.6), against 3 for concat; with shared layers it was 63.9, still
            under concat's 68.1: the streams met only after their embeddings, where concat lets them
            meet in the first layer. With the input gate, gates starting at 0.5 gave val 71.6 (3 seeds),
            starting open (`GATE_OPEN_BIAS`) val 71.9, chosen on val
            (docs/quality.md, "Several input streams, measured").
`mgrec.model.reference.encoder` writes the same three forms out level by level.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mgrec.config import ModelConfig
from mgrec.model.encoders import Embedding, PyramidEncoder, build_tower
from mgrec.model.masking import MaskedConv1d, PointwiseConv1d, apply_mask


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """The encoder for `cfg.variant` (`mgrec.model.encoders.build_tower`) and `cfg.fusion` of its input streams."""
    dims = cfg.stream_dims or [cfg.input_dim]
    if len(dims) == 1 or cfg.fusion == "concat":
        return build_tower(cfg, Embedding(cfg.input_dim, cfg.embed_dim))
    if cfg.fusion == "sum":
        return build_tower(cfg, SummedEmbedding(dims, cfg.embed_dim))
    main = build_tower(cfg, Embedding(dims[0], cfg.embed_dim))
    return GatedFusionEncoder(dims, main, [Embedding(dim, cfg.embed_dim) for dim in dims[1:]], cfg.embed_dim)


class SummedEmbedding(nn.Module):
    """`sum` fusion: one `Embedding` per stream over its own channels, added."""

    def __init__(self, stream_dims: list[int], embed_dim: int) -> None:
        super().__init__()
        self.stream_dims = list(stream_dims)
        self.embeddings = nn.ModuleList([Embedding(dim, embed_dim) for dim in stream_dims])

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        parts = x.split(self.stream_dims, dim=1)
        total = self.embeddings[0](parts[0], mask)
        for embedding, part in zip(self.embeddings[1:], parts[1:]):
            total = total + embedding(part, mask)  # each embedding is zero at padded positions
        return total


# The gates start open (sigmoid(2) = 0.88): the zero-initialised projections alone make step 0 the main
# stream's model, and an open gate lets a projection learn as fast as concat's weights would; the gate
# then learns where to close.
GATE_OPEN_BIAS = 2.0


class GatedResidual(nn.Module):
    """x + g * P(a), g = sigmoid(W [x; a]) per channel and time; P's last conv starts at zero."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = PointwiseConv1d(2 * dim, dim)
        nn.init.constant_(self.gate.bias, GATE_OPEN_BIAS)
        self.project_in = PointwiseConv1d(dim, dim)
        self.project_out = PointwiseConv1d(dim, dim)
        nn.init.zeros_(self.project_out.weight)
        nn.init.zeros_(self.project_out.bias)

    def forward(self, x: Tensor, a: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The fused features (zero at padded positions) and the gate g (B, C, T)."""
        gate = torch.sigmoid(self.gate(torch.cat([x, a], dim=1)))
        injected = self.project_out(torch.relu(self.project_in(a)))
        return apply_mask(x + gate * injected, mask), gate


class GatedFusionEncoder(nn.Module):
    """`gated` fusion: the main encoder, one embedding per auxiliary stream (the encoder's layers are
    shared by all streams), a `GatedResidual` per auxiliary stream and level.

    Same interface as `PyramidEncoder`. `record_gates = True` keeps each level's gate, averaged over
    channels and auxiliary streams, in `last_gates` ((B, T_l) per level), for the report's "where
    did the auxiliary streams help" table."""

    def __init__(self, stream_dims: list[int], main: PyramidEncoder, embeddings: list[nn.Module],
                 embed_dim: int) -> None:
        super().__init__()
        if len(embeddings) != len(stream_dims) - 1:
            raise ValueError(f"{len(stream_dims)} streams need {len(stream_dims) - 1} auxiliary embeddings")
        self.stream_dims = list(stream_dims)
        self.main = main
        self.embeddings = nn.ModuleList(embeddings)
        # the input gate: Q_s (zero-initialised) and V_s per auxiliary stream
        self.input_projections = nn.ModuleList([MaskedConv1d(dim, embed_dim, 3, bias=False)
                                                for dim in stream_dims[1:]])
        for projection in self.input_projections:
            nn.init.zeros_(projection.weight)
        self.input_gates = nn.ModuleList([PointwiseConv1d(2 * embed_dim, embed_dim) for _ in stream_dims[1:]])
        for gate in self.input_gates:
            nn.init.constant_(gate.bias, GATE_OPEN_BIAS)
        num_levels = len(main.branch) + 1
        self.fusions = nn.ModuleList(
            [nn.ModuleList([GatedResidual(embed_dim) for _ in range(num_levels)]) for _ in embeddings]
        )
        self.record_gates = False
        self.last_gates: list[Tensor] = []

    def forward(self, x: Tensor, mask: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        parts = x.split(self.stream_dims, dim=1)

        def inject(first: Tensor) -> Tensor:  # the input gate (module docstring)
            total = torch.zeros_like(first)
            for projection, gate, part in zip(self.input_projections, self.input_gates, parts[1:]):
                projected = projection(part, mask)
                total = total + torch.sigmoid(gate(torch.cat([first, projected], dim=1))) * projected
            return total

        h = self.main.embedding(parts[0], mask, inject=inject)
        others = [embedding(part, mask) for embedding, part in zip(self.embeddings, parts[1:])]
        m = mask
        for layer in self.main.stem:
            others = [layer(a, mask)[0] for a in others]
            h, m = layer(h, mask)
        gates: list[Tensor] = []
        h = self._fuse(0, h, others, m, gates)
        feats, masks = [h], [m]
        for i, layer in enumerate(self.main.branch):
            level_mask = m
            others = [layer(a, level_mask)[0] for a in others]
            h, m = layer(h, level_mask)
            h = self._fuse(i + 1, h, others, m, gates)
            feats.append(h)
            masks.append(m)
        self.last_gates = gates
        return feats, masks

    def _fuse(self, level: int, h: Tensor, others: list[Tensor], mask: Tensor, gates: list[Tensor]) -> Tensor:
        level_gates = []
        for fusions, a in zip(self.fusions, others):
            h, gate = fusions[level](h, a, mask)
            level_gates.append(gate)
        if self.record_gates:
            gates.append(torch.stack(level_gates).mean(dim=(0, 2)).detach())
        return h
