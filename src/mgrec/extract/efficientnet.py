"""EfficientNet-Lite0 for inference: the `efficientnet_lite_pytorch` network with fewer memory passes.

The package's network (the readable form, kept as it is) runs every convolution as four passes over
its output: zero padding into a new tensor, the convolution, BatchNorm, ReLU6; a block's skip
connection is a fifth. Here, for inference:

- each BatchNorm (eval mode: an affine map per channel) is folded into the convolution before it:
  w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps);
- "same" padding is the convolution's own `padding` argument, no padded copy. TensorFlow's padding is
  lopsided where the stride is 2 (the stem and four depthwise convolutions pad right and bottom one
  more than left and top); there the kernel gets that many leading rows/columns of zeros and the
  padding becomes symmetric: the same sums, the same output positions;
- on a CPU with oneDNN, each layer is one fused oneDNN kernel: convolution + ReLU6, or convolution +
  the skip connection (`torch.ops.mkldnn._convolution_pointwise`, the kernels torch.compile's CPU
  backend emits); elsewhere plain convolutions with ReLU6 in place.

`FoldedEfficientNet(model, dtype)(x)` equals `model.extract_features(x)` up to float rounding
(tests/extract/test_efficientnet.py checks both paths against the package's network). It computes in
`dtype` (float32 or bfloat16): the fused kernels take one dtype, so bf16 is its own weights rather than
autocast. MBConv blocks have no squeeze-excitation in the Lite models; drop-connect is off at inference.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from mgrec.devices import native_bf16_cpu
from mgrec.files import mgrec_cache


def fused_kernels_available(dtype: torch.dtype) -> bool:
    """Whether this torch build has oneDNN's fused convolution kernels (CPU builds with mkldnn) for `dtype`:
    bf16 ones only on a CPU with native bf16 (elsewhere oneDNN may have no bf16 kernel at all, while the
    plain path still runs, slowly)."""
    available = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    return available and (dtype != torch.bfloat16 or native_bf16_cpu())


class FoldedConv(nn.Module):
    """A "same"-padded convolution with its BatchNorm folded in, then ReLU6 if `activation`."""

    @torch.no_grad()
    def __init__(self, conv: nn.Conv2d, batch_norm: nn.BatchNorm2d, activation: bool, dtype: torch.dtype):
        super().__init__()
        weight, bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, batch_norm.running_mean, batch_norm.running_var, batch_norm.eps,
            batch_norm.weight, batch_norm.bias,
        )
        left, right, top, bottom = _same_padding(conv)
        if right < left or bottom < top:
            raise ValueError(f"FoldedConv: expected TensorFlow 'same' padding (right/bottom >= left/top) in {conv}")
        # Leading zero rows/columns in the kernel stand for the padding the left/top side lacks.
        weight = F.pad(weight.detach(), (right - left, 0, bottom - top, 0))
        self.weight = nn.Parameter(weight.to(dtype), requires_grad=False)
        self.bias = nn.Parameter(bias.detach().to(dtype), requires_grad=False)
        self.padding = [bottom, right]
        self.stride, self.dilation, self.groups = list(conv.stride), list(conv.dilation), conv.groups
        self.activation = activation
        self.fused = fused_kernels_available(dtype)  # used where the input is on a CPU

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """The layer on x; `skip` (a layer without activation only): added to its output."""
        if self.fused and x.device.type == "cpu":
            conv = torch.ops.mkldnn._convolution_pointwise
            arguments = (self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups)
            if skip is not None:
                return conv.binary(x, skip, *arguments, "add", None, None, [], None)
            activation, bounds = ("hardtanh", [0.0, 6.0]) if self.activation else ("none", [])
            return conv(x, *arguments, activation, bounds, "")
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if skip is not None:
            return x.add_(skip)
        return F.hardtanh_(x, 0.0, 6.0) if self.activation else x


class FoldedBlock(nn.Module):
    """An MBConv block: 1x1 expansion (unless the ratio is 1), depthwise convolution, 1x1 projection,
    and the skip connection where the block keeps its shape."""

    def __init__(self, block: nn.Module, dtype: torch.dtype):
        super().__init__()
        arguments = block._block_args
        if getattr(block, "has_se", False):
            raise ValueError("FoldedBlock: squeeze-excitation blocks are not folded (the Lite models have none)")
        self.expand = FoldedConv(block._expand_conv, block._bn0, True, dtype) if arguments.expand_ratio != 1 else None
        self.depthwise = FoldedConv(block._depthwise_conv, block._bn1, True, dtype)
        self.project = FoldedConv(block._project_conv, block._bn2, False, dtype)
        same_shape = _stride(arguments.stride) == 1 and arguments.input_filters == arguments.output_filters
        self.skip = block.id_skip and same_shape

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs if self.expand is None else self.expand(inputs)
        return self.project(self.depthwise(x), skip=inputs if self.skip else None)


class FoldedEfficientNet(nn.Module):
    """The feature maps of `model.extract_features` (stem, MBConv blocks, 1x1 head), for inference only,
    computed in `dtype` (inputs are cast to it)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32):
        super().__init__()
        if model.training:
            raise ValueError("FoldedEfficientNet: fold a model in eval mode (its BatchNorms use running statistics)")
        if model._global_params.relu_fn != "relu6":
            raise ValueError(f"FoldedEfficientNet: expected a Lite model (ReLU6), got {model._global_params.relu_fn}")
        self.dtype = dtype
        self.layers = nn.Sequential(
            FoldedConv(model._conv_stem, model._bn0, True, dtype),
            *[FoldedBlock(block, dtype) for block in model._blocks],
            FoldedConv(model._conv_head, model._bn1, True, dtype),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x.to(self.dtype))


def _same_padding(conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(left, right, top, bottom): the zero padding the package applies before `conv`."""
    static = getattr(conv, "static_padding", None)
    # no padding is the package's own Identity module (not torch's)
    if any(conv.padding) or not (isinstance(static, nn.ZeroPad2d) or type(static).__name__ == "Identity"):
        raise ValueError(f"FoldedConv: expected the package's statically 'same'-padded convolution, got {conv}")
    return tuple(int(p) for p in static.padding) if isinstance(static, nn.ZeroPad2d) else (0, 0, 0, 0)


def _stride(stride: int | list[int] | tuple[int, ...]) -> int:
    return stride if isinstance(stride, int) else int(stride[0])


ONNX_OPSET = 17


def onnx_model(network: FoldedEfficientNet):
    """`network` (float32) as an `onnx.ModelProto`, layer for layer, with the input's preparation and the pooling
    inside: uint8 RGB frames (N, H, W, 3) in, (N, 1280) embeddings out, i.e. the global average of
    `network(((frames - 127) / 128)` in NCHW)`. Built with onnx's helpers from the folded weights (no tracing, and
    the graph reads as the network does).

    Why: on a 2-core Xeon without AMX (AVX512, no bf16 units) onnxruntime's CPU kernels ran this float32 network
    2.2x as fast as the fused oneDNN kernels above on two threads (228-248 against 107-113 frames/s at 224 px, 8
    frames a batch) and 1.55x on one, embeddings at cosine 0.9999999 (ad hoc, 2026-12-07; end to end:
    benchmarks/extraction.py)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if network.dtype != torch.float32:
        raise ValueError(f"onnx_model: onnxruntime runs the float32 network; got {network.dtype}")
    nodes, weights = [], []

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(value, name))
        return name

    constant("pixel_offset", torch.tensor(127.0).numpy())
    constant("pixel_scale", torch.tensor(128.0).numpy())
    constant("relu6_low", torch.tensor(0.0).numpy())
    constant("relu6_high", torch.tensor(6.0).numpy())
    # The Lite models come from TensorFlow, which feeds them (pixel - 127) / 128 (`EfficientNetLite0`).
    nodes += [helper.make_node("Cast", ["frames"], ["pixels"], to=TensorProto.FLOAT),
              helper.make_node("Sub", ["pixels", "pixel_offset"], ["centred"]),
              helper.make_node("Div", ["centred", "pixel_scale"], ["scaled"]),
              helper.make_node("Transpose", ["scaled"], ["x0"], perm=[0, 3, 1, 2])]
    count = 0

    def conv(layer: FoldedConv, x: str, skip: str | None = None) -> str:
        nonlocal count
        count += 1
        name = f"conv{count}"
        pad_h, pad_w = layer.padding  # symmetric: FoldedConv moved TensorFlow's extra right/bottom into the kernel
        nodes.append(helper.make_node(
            "Conv", [x, constant(f"{name}.weight", layer.weight.detach().numpy()),
                     constant(f"{name}.bias", layer.bias.detach().numpy())], [name],
            pads=[pad_h, pad_w, pad_h, pad_w], strides=layer.stride, dilations=layer.dilation, group=layer.groups))
        if skip is not None:
            nodes.append(helper.make_node("Add", [name, skip], [f"{name}.sum"]))
            return f"{name}.sum"
        if layer.activation:
            nodes.append(helper.make_node("Clip", [name, "relu6_low", "relu6_high"], [f"{name}.relu6"]))
            return f"{name}.relu6"
        return name

    x = "x0"
    for layer in network.layers:
        if isinstance(layer, FoldedBlock):
            inputs = x
            x = x if layer.expand is None else conv(layer.expand, x)
            x = conv(layer.project, conv(layer.depthwise, x), skip=inputs if layer.skip else None)
        else:
            x = conv(layer, x)
    nodes += [helper.make_node("GlobalAveragePool", [x], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["embeddings"], axis=1)]
    graph = helper.make_graph(
        nodes, "efficientnet_lite0_embeddings",
        [helper.make_tensor_value_info("frames", TensorProto.UINT8, ["frames", "height", "width", 3])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["frames", None])], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="mgrec")
    onnx.checker.check_model(model)
    return model


@functools.cache
def _graph_builder() -> str:
    """What the cached graphs were built by: this module's source (any change to how a graph is built is another
    key); an install without sources: mgrec's version."""
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    except OSError:
        from mgrec import __version__

        return f"mgrec-{__version__}"


def onnx_cache_path(weights_sha256: str) -> Path:
    """Where the graph of the weights with this sha256 is cached, as built by this version of `onnx_model`."""
    return mgrec_cache("onnx") / f"efficientnet-lite0_{weights_sha256[:16]}_{_graph_builder()}.onnx"


# The graph of EfficientNet-Lite0 is 13 MB (its float32 weights); a cache file many times that is not one.
MAX_GRAPH_BYTES = 256 << 20


def _cached_graph(path: Path) -> bytes | None:
    """The bytes of the cached graph `path`, or None where it is not a regular file of at most `MAX_GRAPH_BYTES`: a
    named pipe there (read_bytes waited forever for a writer), a device (/dev/zero never ends), a huge file (read
    whole into memory). Opened without blocking, then checked on the descriptor: what was checked is what is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None  # not there, a symbolic link loop, a folder without permission: built again
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_GRAPH_BYTES:
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_GRAPH_BYTES + 1)  # a file that grew after fstat: still bounded
    return data if len(data) <= MAX_GRAPH_BYTES else None


def _cache_graph(path: Path, graph: bytes) -> None:
    """Put `graph` at `path`, the whole file at once, or nothing (a cache that cannot be written costs the build next
    time). A new file is renamed over the name, whatever is there: `atomic_open`, made for outputs, writes into a named
    pipe (which waited forever for a reader) and through a symbolic link into its target (another file replaced by a
    graph); a cache's name is mgrec's own."""
    temp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(graph)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)  # a folder there: refused, and the graph is built next time
        temp_name = None
        _remove_other_builds(path)
    except OSError:
        pass
    finally:
        if temp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)


# What `_graph_builder` names a build by: a source's sha256 prefix, or an install's mgrec version.
_BUILD_KEY = re.compile(r"[0-9a-f]{16}|mgrec-[0-9A-Za-z.+!-]+")


def _remove_other_builds(path: Path) -> None:
    """Remove the graphs of the same weights that another version of this module built (each edit or mgrec version
    left one 13 MB file behind, for ever). Graphs of other weights stay; only regular files of the cache's own naming,
    the weights' name and a build key (`_BUILD_KEY`), are removed: a user's `..._int8.onnx` quantized from a cached
    graph and kept beside it was named like one, and went. Two mgrec versions used in turn each build their graph again
    (about a second)."""
    weights_part = path.name.rsplit("_", 1)[0]
    for other in path.parent.glob(f"{weights_part}_*.onnx"):
        if other.name == path.name or not _BUILD_KEY.fullmatch(other.name[len(weights_part) + 1:-len(".onnx")]):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if stat.S_ISREG(other.lstat().st_mode):
                other.unlink()


class OnnxEfficientNet:
    """`onnx_model(network)` in an onnxruntime session on `threads` CPU threads: uint8 RGB frames (N, H, W, 3) in,
    float32 embeddings (N, 1280) out.

    The graph is cached in mgrec's cache folder (`onnx_cache_path`, by the weights' sha256 and this module's source):
    building it needs `import onnx`, whose start-up (0.8 s on the 2-core Xeon, its ml_dtypes extension) was most of
    the time to a streamed video's first row. A cached graph is used only after it gave `network`'s embeddings on a
    test frame; one that did not, or could not be read, is built again and replaced. A cache that cannot be written
    costs the build next time, nothing else."""

    def __init__(self, network: FoldedEfficientNet, weights_sha256: str, threads: int):
        self.threads = threads
        cached = onnx_cache_path(weights_sha256)
        try:
            graph = _cached_graph(cached)
            if graph is not None:
                self.session = self._session(graph)
                if self._agrees_with(network):
                    return
        except Exception:  # noqa: BLE001 - a cache file missing, unreadable or not a graph (onnxruntime's errors
            pass  # derive from Exception only): built again below
        graph = onnx_model(network).SerializeToString()
        self.session = self._session(graph)
        _cache_graph(cached, graph)

    def _session(self, graph: bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        # Its threads sleep when idle rather than spin (what mgrec's OMP_WAIT_POLICY=PASSIVE does for torch's):
        # the decoding thread needs the same cores between batches.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    @torch.inference_mode()
    def _agrees_with(self, network: FoldedEfficientNet) -> bool:
        """Whether the session gives `network`'s pooled embeddings of one 32x32 test frame (a few milliseconds)."""
        frame = (np.arange(32 * 32 * 3, dtype=np.int64) * 37 % 256).astype(np.uint8).reshape(1, 32, 32, 3)
        pixels = (torch.from_numpy(frame).permute(0, 3, 1, 2).float() - 127.0) / 128.0
        expected = network(pixels).mean(dim=(2, 3)).numpy()
        return bool(np.allclose(self(frame), expected, rtol=1e-3, atol=1e-4))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"frames": frames})[0]
