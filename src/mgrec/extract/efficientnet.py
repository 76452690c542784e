"""EfficientNet-Lite0 for inference: the `efficientnet_lite_pytorch` network with fewer memory passes.

The package's network (the readable form, kept as it is) runs every convolution as four passes over
its output: zero padding into a new tensor, the convolution, BatchNorm, ReLU6. In eval mode a
BatchNorm is an affine map per channel, so it folds into the convolution before it
(w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)); a symmetric "same"
padding is the convolution's own `padding` argument (no padded copy); ReLU6 runs in place. What is left
is one convolution per layer, plus an in-place clamp where the layer has one, and an explicit pad only
where TensorFlow's "same" padding is asymmetric (the stem and the four stride-2 depthwise
convolutions pad right and bottom only). MBConv blocks have no squeeze-excitation in the Lite models;
drop-connect is off at inference.

`FoldedEfficientNet(model)(x)` equals `model.extract_features(x)` up to float rounding
(tests/extract/test_efficientnet.py checks it against the package's network).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


class FoldedConv(nn.Module):
    """A "same"-padded convolution with its BatchNorm folded in, then ReLU6 if `activation`."""

    @torch.no_grad()
    def __init__(self, conv: nn.Conv2d, batch_norm: nn.BatchNorm2d, activation: bool):
        super().__init__()
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, batch_norm.running_mean, batch_norm.running_var, batch_norm.eps,
            batch_norm.weight, batch_norm.bias,
        )
        self.weight = nn.Parameter(weight.detach(), requires_grad=False)
        self.bias = nn.Parameter(bias.detach(), requires_grad=False)
        self.stride, self.dilation, self.groups = conv.stride, conv.dilation, conv.groups
        left, right, top, bottom = _same_padding(conv)
        if left == right and top == bottom:
            self.pad, self.padding = None, (top, left)
        else:
            self.pad, self.padding = (left, right, top, bottom), (0, 0)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return F.hardtanh_(x, 0.0, 6.0) if self.activation else x


class FoldedBlock(nn.Module):
    """An MBConv block: 1x1 expansion (unless the ratio is 1), depthwise convolution, 1x1 projection,
    and the skip connection where the block keeps its shape."""

    def __init__(self, block: nn.Module):
        super().__init__()
        arguments = block._block_args
        if getattr(block, "has_se", False):
            raise ValueError("FoldedBlock: squeeze-excitation blocks are not folded (the Lite models have none)")
        self.expand = FoldedConv(block._expand_conv, block._bn0, True) if arguments.expand_ratio != 1 else None
        self.depthwise = FoldedConv(block._depthwise_conv, block._bn1, True)
        self.project = FoldedConv(block._project_conv, block._bn2, False)
        self.residual = (
            block.id_skip and _stride(arguments.stride) == 1 and arguments.input_filters == arguments.output_filters
        )

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs if self.expand is None else self.expand(inputs)
        x = self.project(self.depthwise(x))
        return x.add_(inputs) if self.residual else x


class FoldedEfficientNet(nn.Module):
    """The feature maps of `model.extract_features` (stem, MBConv blocks, 1x1 head), for inference only."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if model.training:
            raise ValueError("FoldedEfficientNet: fold a model in eval mode (its BatchNorms use running statistics)")
        if model._global_params.relu_fn != "relu6":
            raise ValueError(f"FoldedEfficientNet: expected a Lite model (ReLU6), got {model._global_params.relu_fn}")
        self.layers = nn.Sequential(
            FoldedConv(model._conv_stem, model._bn0, True),
            *[FoldedBlock(block) for block in model._blocks],
            FoldedConv(model._conv_head, model._bn1, True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def _same_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(left, right, top, bottom): the zero padding the package applies before `conv`."""
    static = getattr(conv, "static_padding", None)
    # no padding is the package's own Identity module (not torch's)
    if any(conv.padding) or not (isinstance(static, nn.ZeroPad2d) or type(static).__name__ == "Identity"):
        raise ValueError(f"FoldedConv: expected the package's statically 'same'-padded convolution, got {conv}")
    return tuple(int(p) for p in static.padding) if isinstance(static, nn.ZeroPad2d) else (0, 0, 0, 0)


def _stride(stride: int | list[int] | tuple[int, ...]) -> int:
    return stride if isinstance(stride, int) else int(stride[0])
