"""The detector in paper notation: every formula written out, level by level.

The modules of `mgrec.model` compute the functions below in fused, packed and CPU-tuned forms.
Here each one is written as its paper states it, slow and plain: the mgrec paper (Sec. 3.3-3.4:
DynE's Eq. 2-3, the spatial-temporal attention's Eq. 4-5, the three-path head), DyFADet and
ActionFormer as released (see `dyfadet.py`, `actionformer.py`). DynE runs each depthwise conv
on its own, the DFA conv is an einsum over its taps, and the heads run level by level. Each fast
module cites the function here that it equals; tests/model checks that they agree, outputs and
gradients.

The functions take the fast modules only as holders of their parameters, so both forms always
run the same weights. `ReferenceDetector(detector)` runs a built detector this way; it shares the
detector's modules and has the same state-dict keys, so a checkpoint loads into either.

Notation: x is (B, C, T) features, zero at padded positions, and m its (B, 1, T) bool mask (True
at real positions); x_l, m_l are pyramid level l, of length T_l = T / 2**l. DW_k is a depthwise
conv with kernel k, LN the LayerNorm over channels at each time step, DS the stride-2 max-pool.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from mgrec.model.actionformer import LocalSelfAttention, TransformerBlock
from mgrec.model.attention import SpatialTemporalAttention
from mgrec.model.detector import Detector, DetectorOutput
from mgrec.model.dyfadet import DFAConv1d, DynELayer, DynETokenMixer
from mgrec.model.encoders import Embedding
from mgrec.model.fusion import GatedFusionEncoder, SummedEmbedding
from mgrec.model.heads import AttentionFusion, ConvTower, DetectionHead, DFAFusion, DynamicTower
from mgrec.model.masking import downsample
from mgrec.model.norm import ChannelLayerNorm

# --------------------------------------------------------------------------------------------
# Elementary pieces


def layer_norm(norm: ChannelLayerNorm, x: Tensor) -> Tensor:
    """LN(x): torch's LayerNorm over the channels of every time step."""
    return nnf.layer_norm(x.transpose(1, 2), (x.shape[1],), norm.weight, norm.bias, norm.eps).transpose(1, 2)


def pointwise(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """A kernel-1 conv, written as one (`masking.PointwiseConv1d` computes it as a matrix product)."""
    return nnf.conv1d(x, conv.weight, conv.bias)


def pointwise_mlp(mlp: nn.Sequential, x: Tensor) -> Tensor:
    """[kernel-1 conv, GELU, kernel-1 conv] (the FFN of DynE and of the transformer block)."""
    first, activation, second = mlp
    return pointwise(second, activation(pointwise(first, x)))


def mean_over_time(x: Tensor, m: Tensor) -> Tensor:
    """AvgPool_T: the mean of (B, C, T) over the real time steps -> (B, C)."""
    m = m.to(x.dtype)
    return (x * m).sum(dim=-1) / m.sum(dim=-1).clamp(min=1.0)


def max_over_time(x: Tensor, m: Tensor) -> Tensor:
    """MaxPool_T: the max of (B, C, T) over the real time steps -> (B, C); 0 if there is none.

    (max(dim), not amax: of tied maxima, one gets the gradient, as in the fast modules.)
    """
    peak = x.masked_fill(~m, float("-inf")).max(dim=-1).values
    return torch.where(m.any(dim=-1), peak, torch.zeros_like(peak))


def depthwise(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """DW_k(x): a 'same'-length depthwise conv with a (C, 1, k) kernel and a bias."""
    return nnf.conv1d(x, weight, bias, padding=weight.shape[-1] // 2, groups=x.shape[1])


def geretanh(z: Tensor, tau: float) -> Tensor:
    """DyFADet's gate: max(0, (tanh(z - tau) + tanh(tau)) / (1 + tanh(tau))). 0 for z <= 0, -> 1."""
    return torch.relu((torch.tanh(z - tau) + math.tanh(tau)) / (1.0 + math.tanh(tau)))


def resize(x: Tensor, length: int) -> Tensor:
    """Nearest-neighbour resize of a neighbouring level to `length` steps: DS takes every second
    step of the finer level, US repeats every step of the coarser level twice."""
    if x.shape[-1] == 2 * length:
        return x[..., ::2]
    if 2 * x.shape[-1] == length:
        return x.repeat_interleave(2, dim=-1)
    raise ValueError(f"a neighbouring level of {x.shape[-1]} steps cannot be resized to {length}")


# --------------------------------------------------------------------------------------------
# DyFADet: the DFA conv and the DynE layer


def dfa_conv(dfa: DFAConv1d, x: Tensor, m: Tensor) -> Tensor:
    """The DFA conv (fast form: `dyfadet.DFAConv1d`):

        taps[c, t, i] = x[c, t + i - ka // 2]                       (zero outside the sequence)
        g[c, t]       = geretanh(DW_ka(x)[c, t])                     one gate per (channel, time)
        y[o, t]       = b[o] + sum_{i, c} W[o, i, c] * g[c, t] * taps[c, t, i]
        out           = LN(y) * m
    """
    ka = dfa.kernel_size
    taps = nnf.pad(x, (ka // 2, ka // 2)).unfold(-1, ka, 1)  # (B, C, T, ka)
    g = geretanh(depthwise(x, dfa.gate_weight, dfa.gate_bias), dfa.gate_tau)  # (B, C, T)
    W = dfa.mixing.weight[:, :, 0].reshape(-1, ka, x.shape[1])  # (out, ka, C): the columns are tap-major
    y = torch.einsum("oic,bcti,bct->bot", W, taps, g) + dfa.mixing.bias[:, None]
    return layer_norm(dfa.norm, y) * m


def dyne_mixer(mixer: DynETokenMixer, u: Tensor, m: Tensor) -> Tensor:
    """DynE's two branches on u = LN(DS(x)), plus u (fast form: `dyfadet.DynETokenMixer`):

        phi      = ReLU(DW_1,gate(AvgPool_T(u)))                           (B, C, 1)
        instance = DW_1,value(u) * phi                                      Eq. 2, instance-dynamic
        multi    = ReLU(DW_w(u) + DW_K(u)) * DW_w,gate(u)                   Eq. 3, multi-kernel

    (The paper writes DFA convs in both branches; the released layer has these static ones.)
    """
    pooled = mean_over_time(u, m)[..., None]
    phi = torch.relu(depthwise(pooled, mixer.instance_gate_weight, mixer.instance_gate_bias))
    instance = depthwise(u, mixer.instance_value_weight, mixer.instance_value_bias) * phi
    window = depthwise(u, mixer.window_conv_weight, mixer.window_conv_bias)
    expanded = depthwise(u, mixer.expanded_conv_weight, mixer.expanded_conv_bias)
    psi = depthwise(u, mixer.window_gate_weight, mixer.window_gate_bias)
    multi = torch.relu(window + expanded) * psi
    return instance + multi + u


def dyne_layer(layer: DynELayer, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """The DynE layer (fast form: `dyfadet.DynELayer`):

        x = DS(x)                                       (downsampling layers)
        u = LN(x) * m
        x = (x + residual(instance + multi + u)) * m
        x = (x + residual(FFN(LN(x)))) * m
    """
    if layer.downsample:
        x, m = downsample(x, m)
    u = layer_norm(layer.norm, x) * m
    x = (x + layer.mix_residual(dyne_mixer(layer.mixer, u, m))) * m
    x = (x + layer.ffn_residual(pointwise_mlp(layer.ffn, layer_norm(layer.ffn_norm, x)))) * m
    return x, m


# --------------------------------------------------------------------------------------------
# ActionFormer: local self-attention and the transformer block


def local_self_attention(attention: LocalSelfAttention, x: Tensor, m: Tensor) -> Tensor:
    """Multi-head self-attention where query t sees the real keys s with |t - s| <= window // 2,
    and always itself (fast form: `actionformer.LocalSelfAttention`):

        A = softmax_s(q_t . k_s / sqrt(d) over the allowed s),   out = proj(sum_s A[t, s] v_s) * m
    """
    batch, dim, length = x.shape
    heads, head_dim = attention.heads, dim // attention.heads
    qkv = pointwise(attention.qkv, x).reshape(batch, 3, heads, head_dim, length)
    q, k, v = qkv.permute(1, 0, 2, 4, 3)  # (B, H, T, d)
    t = torch.arange(length, device=x.device)
    band = (t[:, None] - t[None, :]).abs() <= attention.half
    allowed = band & (m[:, :, None, :] | torch.eye(length, dtype=torch.bool, device=x.device))  # (B, 1, T, T)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
    A = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    out = (A @ v).permute(0, 1, 3, 2).reshape(batch, dim, length)
    return pointwise(attention.proj, out) * m


def transformer_block(block: TransformerBlock, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """The pre-LN transformer block (fast form: `actionformer.TransformerBlock`):

        x = DS(x)                                       (downsampling blocks)
        x = (x + residual(LocalAttention(LN(x)))) * m
        x = (x + residual(MLP(LN(x)))) * m
    """
    if block.downsample:
        x, m = downsample(x, m)
    x = (x + block.attn_residual(local_self_attention(block.attn, layer_norm(block.attn_norm, x), m))) * m
    x = (x + block.mlp_residual(pointwise_mlp(block.mlp, layer_norm(block.mlp_norm, x)))) * m
    return x, m


# --------------------------------------------------------------------------------------------
# The encoder: embedding, then the pyramid layer by layer


def embedding(emb: Embedding, x: Tensor, m: Tensor) -> Tensor:
    """Two masked convs (kernel 3), each followed by LN and ReLU."""
    for conv, norm in zip(emb.convs, emb.norms):
        x = torch.relu(layer_norm(norm, conv(x, m))) * m
    return x


def _layer(module: nn.Module, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    return dyne_layer(module, x, m) if isinstance(module, DynELayer) else transformer_block(module, x, m)


def encoder(enc: nn.Module, x: Tensor, m: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """The feature pyramid: x_0 = the stem's output, x_l = layer_l(x_{l-1}) at half the length.

    Several input streams (`mgrec.model.fusion`): `sum` adds one embedding per stream; `gated` runs a
    tower per stream and injects each auxiliary level a_l into the main one as
    x_l + sigmoid(W_l [x_l; a_l]) * P_l(a_l)."""
    if isinstance(enc, GatedFusionEncoder):
        return gated_encoder(enc, x, m)
    if isinstance(enc.embedding, SummedEmbedding):
        parts = x.split(enc.embedding.stream_dims, dim=1)
        x = sum(embedding(e, part, m) for e, part in zip(enc.embedding.embeddings, parts))
    else:
        x = embedding(enc.embedding, x, m)
    for module in enc.stem:
        x, m = _layer(module, x, m)
    feats, masks = [x], [m]
    for module in enc.branch:
        x, m = _layer(module, x, m)
        feats.append(x)
        masks.append(m)
    return feats, masks


def gated_encoder(enc: GatedFusionEncoder, x: Tensor, m: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Every stream through its embedding and the shared encoder layers; at each level the main
    stream's features get each auxiliary stream's added through its gate, and go on to the next level fused."""
    parts = x.split(enc.stream_dims, dim=1)
    # the input gate: C x_0 + sum_s sigmoid(V_s [C x_0; Q_s x_s]) * Q_s x_s, then the embedding's norms
    main = enc.main.embedding
    first = main.convs[0](parts[0], m)
    injected = first
    for projection, gate, part in zip(enc.input_projections, enc.input_gates, parts[1:]):
        q = nnf.conv1d(part, projection.weight, padding=projection.kernel_size[0] // 2) * m
        injected = injected + torch.sigmoid(nnf.conv1d(torch.cat([first, q], dim=1), gate.weight, gate.bias)) * q
    x_0 = torch.relu(layer_norm(main.norms[0], injected)) * m
    x_0 = torch.relu(layer_norm(main.norms[1], main.convs[1](x_0, m))) * m
    h = [x_0, *(embedding(e, part, m) for e, part in zip(enc.embeddings, parts[1:]))]
    for module in enc.main.stem:
        h = [_layer(module, h_s, m)[0] for h_s in h]

    def fuse(level: int) -> Tensor:
        fused = h[0]
        for fusions, a in zip(enc.fusions, h[1:]):
            fused = gated_residual(fusions[level], fused, a, m)
        return fused

    h[0] = fuse(0)
    feats, masks = [h[0]], [m]
    for level, module in enumerate(enc.main.branch, start=1):
        outputs = [_layer(module, h_s, m) for h_s in h]
        h, m = [out[0] for out in outputs], outputs[0][1]
        h[0] = fuse(level)
        feats.append(h[0])
        masks.append(m)
    return feats, masks


def gated_residual(fusion: nn.Module, x: Tensor, a: Tensor, m: Tensor) -> Tensor:
    """x + sigmoid(W [x; a]) * P(a), P = 1x1 conv -> ReLU -> 1x1 conv; zero at padded positions."""
    gate = torch.sigmoid(nnf.conv1d(torch.cat([x, a], dim=1), fusion.gate.weight, fusion.gate.bias))
    injected = nnf.conv1d(torch.relu(nnf.conv1d(a, fusion.project_in.weight, fusion.project_in.bias)),
                          fusion.project_out.weight, fusion.project_out.bias)
    return (x + gate * injected) * m


# --------------------------------------------------------------------------------------------
# The mgrec head's spatial-temporal attention (Eq. 4-5) and the three heads' towers


def spatial_temporal_attention(attention: SpatialTemporalAttention, x: Tensor, m: Tensor) -> Tensor:
    """The paper's spatial-temporal attention on 1D features (fast form: `attention.SpatialTemporalAttention`):

        a_T = sigmoid(MLP(AvgPool_T(x)) + MLP(MaxPool_T(x)))                 Eq. 4, one gate per channel
        x'  = a_T * x
        a_S = sigmoid(Conv_k([AvgPool_C(x'); MaxPool_C(x')] * m))            Eq. 5, one gate per time step
        out = a_S * x' * m
    """
    mlp = attention.channel_mlp
    a_T = torch.sigmoid(mlp(mean_over_time(x, m)) + mlp(max_over_time(x, m)))  # (B, C)
    x = a_T[..., None] * x
    maps = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1) * m  # (B, 2, T)
    a_S = torch.sigmoid(attention.time_conv(maps))  # (B, 1, T)
    return a_S * x * m


def attention_fusion(fusion: AttentionFusion, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
    """mgrec's three-path fusion at every level l (fast form: `heads.AttentionFusion`):

        h_l = sum_p w_p,l * STA_p(resize(x_{l-1+p}) * m_l),   p = 0 (finer), 1 (level l), 2 (coarser)

    over the paths p whose level exists, w_l = softmax(path_logits) over those paths only.
    """
    fused = []
    for level, m in enumerate(masks):
        present = [p for p in range(3) if 0 <= level - 1 + p < len(feats)]
        w = torch.softmax(fusion.path_logits[present], dim=0)
        fused.append(sum(
            w_p * spatial_temporal_attention(fusion.attend[p], _level_input(feats[level - 1 + p], m), m)
            for p, w_p in zip(present, w)
        ))
    return fused


def dfa_fusion(fusion: DFAFusion, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
    """DyFADet's cross-scale fusion at every level l (fast form: `heads.DFAFusion`):

        h_l = a * (resize(DFA_finer(x_{l-1})) + resize(DFA_coarser(x_{l+1}))) * m_l + b * x_l

    a missing neighbour (at the ends) contributing nothing.
    """
    fused = []
    for level, (x, m) in enumerate(zip(feats, masks)):
        neighbours = torch.zeros_like(x)
        if level > 0:
            finer = dfa_conv(fusion.from_finer, feats[level - 1], masks[level - 1])
            neighbours = neighbours + _level_input(finer, m)
        if level + 1 < len(feats):
            coarser = dfa_conv(fusion.from_coarser, feats[level + 1], masks[level + 1])
            neighbours = neighbours + _level_input(coarser, m)
        fused.append(fusion.neighbour_weight * neighbours + fusion.own_weight * x)
    return fused


def _level_input(x: Tensor, m: Tensor) -> Tensor:
    """Level features or a neighbouring level's, resized to the mask's level and masked there."""
    return (x if x.shape[-1] == m.shape[-1] else resize(x, m.shape[-1])) * m


def dynamic_tower(tower: DynamicTower, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
    """mgrec's and DyFADet's tower: each layer x_l <- ReLU(DFA(h_l)), h = the layer's fusion."""
    for fusion, conv in zip(tower.fusions, tower.convs):
        fuse = attention_fusion if isinstance(fusion, AttentionFusion) else dfa_fusion
        feats = [torch.relu(dfa_conv(conv, h, m)) for h, m in zip(fuse(fusion, feats, masks), masks)]
    return feats


def conv_tower(tower: ConvTower, feats: list[Tensor], masks: list[Tensor]) -> list[Tensor]:
    """ActionFormer's tower: each layer x_l <- ReLU(LN(conv(x_l))) * m_l."""
    for conv, norm in zip(tower.convs, tower.norms):
        feats = [torch.relu(layer_norm(norm, conv(x, m))) * m for x, m in zip(feats, masks)]
    return feats


def head(detection_head: DetectionHead, feats: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """The detection head level by level (fast form: `heads.DetectionHead`, on the packed pyramid):

        logits_l  = cls_conv(cls_tower(x)_l)                                       (B, T_l, K)
        offsets_l = ReLU(scale_l * reg_conv(reg_tower(x)_l))                        (B, T_l, 2)
    """

    def tower(module: nn.Module) -> list[Tensor]:
        run = conv_tower if isinstance(module, ConvTower) else dynamic_tower
        return run(module, feats, masks)

    predictors = detection_head.predictors
    cls_feats, reg_feats = tower(detection_head.cls_tower), tower(detection_head.reg_tower)
    logits = [predictors.cls(x, m).transpose(1, 2) for x, m in zip(cls_feats, masks)]
    offsets = [
        torch.relu(predictors.reg(x, m) * predictors.reg_scales[level]).transpose(1, 2)
        for level, (x, m) in enumerate(zip(reg_feats, masks))
    ]
    return logits, offsets


# --------------------------------------------------------------------------------------------
# The whole detector


def detector_forward(model: Detector | ReferenceDetector, features: Tensor, mask: Tensor) -> DetectorOutput:
    """Encoder, neck (LN per level), head; the outputs of `Detector.forward`."""
    x = torch.where(mask, features, 0.0)  # padded positions may hold anything
    feats, masks = encoder(model.encoder, x, mask)
    feats = [layer_norm(norm, x_l) * m_l for norm, x_l, m_l in zip(model.neck, feats, masks)]
    logits, offsets = head(model.head, feats, masks)
    return DetectorOutput(logits, offsets, [m_l.squeeze(1) for m_l in masks], list(model.strides))


class ReferenceDetector(nn.Module):
    """A detector's own modules run through `detector_forward` (inputs as for `Detector`, unchecked).

    It holds the detector's modules, not copies: the same parameters (a gradient reaches both) and
    the same state-dict keys (a checkpoint loads into either).
    """

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.encoder = detector.encoder
        self.neck = detector.neck
        self.head = detector.head
        self.strides = list(detector.strides)
        self.max_div_factor = detector.max_div_factor

    def forward(self, features: Tensor, mask: Tensor) -> DetectorOutput:
        return detector_forward(self, features, mask)
