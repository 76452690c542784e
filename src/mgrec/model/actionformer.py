"""ActionFormer's encoder layer (happyharrycn/actionformer_release, libs/modeling/blocks.py):
local-window self-attention in a pre-LN transformer block.

Reference: `reference.local_self_attention`, `reference.transformer_block`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mgrec.model.masking import PointwiseConv1d, apply_mask, downsample
from mgrec.model.norm import ChannelLayerNorm
from mgrec.model.residual import residual_branch


class LocalSelfAttention(nn.Module):
    """Masked multi-head self-attention where position t sees keys within t +- window // 2.

    Reference: `reference.local_self_attention` (a dense (T, T) attention with a band mask). Here
    the time axis is cut into chunks of window // 2 steps; the queries of one chunk attend to the
    keys of that chunk and its two neighbours (3 chunks cover every key within the band), with a
    band mask and the key mask. The sequence is padded inside to a whole number of chunks, so any
    length works and the detector only needs T divisible by its largest stride.
    Every query may always attend to itself, so no softmax row is empty (padded queries are
    zeroed at the end anyway).
    """

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        if window % 2 != 1:
            raise ValueError(f"attention window must be odd, got {window}")
        self.heads = heads
        self.half = window // 2
        self.chunk = max(1, self.half)
        self.qkv = PointwiseConv1d(dim, 3 * dim)
        self.proj = PointwiseConv1d(dim, dim)

    @staticmethod
    def _neighbour_chunks(x: Tensor) -> Tensor:
        """(B, n, ..., chunk, d) -> (B, n, ..., 3 * chunk, d): each chunk with its two neighbours."""
        n = x.shape[1]
        padded = F.pad(x, (0, 0) * (x.dim() - 2) + (1, 1))  # one empty chunk before and after
        return torch.cat([padded[:, 0:n], padded[:, 1 : n + 1], padded[:, 2 : n + 2]], dim=-2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, dim, length = x.shape
        # Ceil division of non-negative numbers only: ONNX's integer Div truncates, so an exported -(-a // b) is a
        # floor, and an exported network of any length but a multiple of the chunk cut its last chunk off.
        n = (length + self.chunk - 1) // self.chunk
        extra = n * self.chunk - length
        head_dim = dim // self.heads
        qkv = F.pad(self.qkv(x), (0, extra)).reshape(batch, 3, self.heads, head_dim, n, self.chunk)
        q, k, v = qkv.permute(1, 0, 4, 2, 5, 3).unbind(0)  # each (B, n, H, chunk, head_dim)
        k, v = self._neighbour_chunks(k), self._neighbour_chunks(v)

        key_valid = F.pad(mask, (0, extra)).reshape(batch, n, 1, self.chunk, 1)
        key_valid = self._neighbour_chunks(key_valid).reshape(batch, n, 1, 1, 3 * self.chunk)
        query_pos = torch.arange(self.chunk, device=x.device)[:, None] + self.chunk
        key_pos = torch.arange(3 * self.chunk, device=x.device)[None, :]
        in_band = (query_pos - key_pos).abs() <= self.half
        allowed = in_band & (key_valid | (query_pos == key_pos))  # (B, n, 1, chunk, 3 * chunk)

        # Chunks become the batch of a 4D attention call: (B * n, H, chunk, head_dim).
        out = F.scaled_dot_product_attention(
            q.reshape(batch * n, self.heads, self.chunk, head_dim),
            k.reshape(batch * n, self.heads, 3 * self.chunk, head_dim),
            v.reshape(batch * n, self.heads, 3 * self.chunk, head_dim),
            attn_mask=allowed.reshape(batch * n, 1, self.chunk, 3 * self.chunk),
        )
        out = out.reshape(batch, n, self.heads, self.chunk, head_dim).permute(0, 2, 4, 1, 3)
        out = out.reshape(batch, dim, n * self.chunk)[..., :length]
        return apply_mask(self.proj(out), mask)


class TransformerBlock(nn.Module):
    """Pre-LN transformer block with local attention; optionally halves the time axis first.

        x = DS(x)                                      (downsampling blocks only)
        x = x + residual(LocalAttention(LN(x)))
        x = x + residual(MLP(LN(x))),  MLP = 1x1 conv dim -> 4 dim, GELU, 1x1 conv -> dim

    Reference: `reference.transformer_block`. Downsampling blocks max-pool the input (the same
    masked pooling as DynE) and then run a normal block at the new resolution. ActionFormer instead
    pools only the skip path and uses strided depthwise convs on q/k/v; pooling first is simpler
    and keeps one code path for both strides. Both residuals use LayerScale and stochastic depth.
    """

    def __init__(self, dim: int, heads: int, window: int, downsample: bool, drop_path: float) -> None:
        super().__init__()
        self.downsample = downsample
        self.attn_norm = ChannelLayerNorm(dim)
        self.attn = LocalSelfAttention(dim, heads, window)
        self.attn_residual = residual_branch(dim, drop_path, layer_scale=True)
        self.mlp_norm = ChannelLayerNorm(dim)
        self.mlp = nn.Sequential(PointwiseConv1d(dim, 4 * dim), nn.GELU(), PointwiseConv1d(4 * dim, dim))
        self.mlp_residual = residual_branch(dim, drop_path, layer_scale=True)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        if self.downsample:
            x, mask = downsample(x, mask)
        # No re-masking of the norm's output: the attention never reads a padded key.
        x = apply_mask(x + self.attn_residual(self.attn(self.attn_norm(x), mask)), mask)
        x = apply_mask(x + self.mlp_residual(self.mlp(self.mlp_norm(x))), mask)
        return x, mask
