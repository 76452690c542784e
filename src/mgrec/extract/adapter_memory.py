"""Memory of one end-to-end training step (adapters in a frozen VideoMAE, `mgrec.extract.adapters`), estimated
before anything is allocated, so that a step that cannot fit is refused with the numbers instead of failing in
the allocator: parameters counted without building the model, what autograd keeps per token, the working set
of a layer, the optimiser's copies, calibrated against peak RSS (`benchmarks/end_to_end.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mgrec.config import Config
from mgrec.devices import autocast_dtype
from mgrec.errors import InputError
from mgrec.model.memory import available_bytes

if TYPE_CHECKING:  # transformers is imported only where a model is built (it is slow to import)
    from transformers import VideoMAEConfig

    from mgrec.extract.adapters import AdaptedVideoMAE, AdapterConfig  # noqa: F401 (annotations)


# What autograd keeps for the backward pass, per token, counted with torch.autograd.graph.saved_tensors_hooks
# (tests/extract/test_adapters.py checks the count against this formula):
# - an encoder layer with frozen weights keeps no input for a weight gradient; it keeps both LayerNorm
#   inputs, query, key, value and the attention output (SDPA's flash kernel, on CPU and CUDA, keeps no
#   T x T matrix): 6 x C, plus the GELU input (the MLP width). Under autocast also a low-precision copy
#   of each weight matrix (4 C^2 + 2 C x MLP), which the input gradient needs. In float32 always: the
#   mean and 1/std of both LayerNorms and SDPA's log-sum-exp per head.
LAYER_SAVED_PER_TOKEN_C = 6
LAYER_SAVED_PER_TOKEN_FLOAT32 = 4  # + heads
# - an adapter keeps its input and the up-projection's output (for `scale`), 2 x C, and in bottleneck
#   widths: the GELU input, the temporal conv's input, the pointwise input, the up-projection's input,
#   and the spatial conv's input for spatial_temporal.
ADAPTER_SAVED_PER_TOKEN_C = 2
ADAPTER_SAVED_PER_TOKEN_HIDDEN = {"temporal": 4, "spatial_temporal": 5}
# The working set of one layer on top of what is kept (checked against peak RSS, not counted): its MLP
# activation before and after GELU and a few C-wide tensors (residual stream, its gradient, normed copies).
WORKING_PER_TOKEN_MLP = 2
WORKING_PER_TOKEN_C = 6
# AdamW on the adapters: weights, gradients, two moments, float32.
ADAPTER_COPIES = 4
# Calibrated against peak RSS on CPU, float32 (benchmarks/end_to_end.py; the figures are in
# benchmarks/results/2026-12-03_e6c777e-dirty_end-to-end/, end_to_end_reestimated.md against these values):
# - the first training step grows the process by 40-55 MB beyond the parts even for the tiny model
#   (thread pools, kernel caches, convolution buffers): RUNTIME_BYTES.
# - glibc keeps freed activation memory in fragments. With checkpointing this grows with depth: each
#   layer's small kept input splits the hole its freed working set left, so the next layer's working
#   set goes to fresh memory. Measured on ViT-S at 160 px: up to 0.45 working sets per checkpointed
#   layer beyond the other parts (0.47 in a probe with 8 clips); CPU_CHECKPOINTING_SLACK counts 0.4,
#   which the margin multiplies too. A GPU's caching allocator behaves otherwise: not measured (no GPU
#   here), so on CUDA no such term is added.
# - MARGIN: without checkpointing peak RSS exceeded the parts by up to 22%; 1.4 covers that with room
#   (all 16 measured cases came out at 0.57-0.88 of the estimate). On CUDA the same MARGIN is an
#   assumption, not a measurement.
RUNTIME_BYTES = 64 * 2**20
CPU_CHECKPOINTING_SLACK = 0.4
MARGIN = 1.4
DEVICE_TYPES = ("cpu", "cuda")


def backbone_parameter_count(config: VideoMAEConfig) -> int:
    """Parameters of transformers' VideoMAEModel for `config`, without building it."""
    c, mlp = config.hidden_size, config.intermediate_size
    patch = config.num_channels * config.tubelet_size * config.patch_size**2 * c + c
    attention = 4 * c * c + c + (2 * c if config.qv_bias else 0)  # q, k, v, out; out bias; q and v biases
    layer = attention + 2 * c * mlp + mlp + c + 2 * 2 * c  # + MLP + two LayerNorms
    final_norm = 0 if config.use_mean_pooling else 2 * c
    return patch + config.num_hidden_layers * layer + final_norm


def adapter_parameter_count(config: VideoMAEConfig, cfg: AdapterConfig) -> int:
    """Parameters of the adapters `cfg` puts into a VideoMAE of `config`."""
    c, hidden = config.hidden_size, cfg.hidden_channels(config.hidden_size)
    convs = (hidden * cfg.kernel + hidden) + ((hidden * cfg.kernel**2 + hidden) if cfg.kind == "spatial_temporal"
                                              else 0)
    one = (c * hidden + hidden) + convs + (hidden * hidden + hidden) + (hidden * c + c) + 1
    return one * len(cfg.block_indices(config.num_hidden_layers))


def end_to_end_memory(config: VideoMAEConfig, image_size: int, frames_per_clip: int, clips: int, batch: int,
                      checkpointing: bool, dtype: torch.dtype = torch.float32, adapters: AdapterConfig | None = None,
                      *, device_type: str) -> dict[str, int]:
    """The parts of `estimate_end_to_end_bytes`, in bytes, before the margin. `kept_activations` is
    what autograd holds when the forward pass ends (exactly: the tests count it); `recomputed` what
    checkpointing brings back for one layer during the backward pass; `allocator_slack` the freed
    but fragmented memory measured on CPU with checkpointing."""
    if adapters is None:
        from mgrec.extract.adapters import AdapterConfig  # here: the adapters module imports this one

        adapters = AdapterConfig()
    if dtype not in (torch.float32, torch.bfloat16):
        raise InputError(f"dtype {dtype}: expected torch.float32, or torch.bfloat16 for bf16 autocast")
    if device_type not in DEVICE_TYPES:
        raise InputError(f"device type {device_type!r}: expected one of {', '.join(DEVICE_TYPES)}")
    c, mlp, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    act = 4 if dtype == torch.float32 else 2  # under autocast the residual stream and the layers are bf16
    blocks = adapters.block_indices(layers)
    hidden = adapters.hidden_channels(c)
    grid = image_size // config.patch_size
    tokens = batch * clips * (frames_per_clip // config.tubelet_size) * grid * grid

    weight_copies = 0 if act == 4 else (4 * c * c + 2 * c * mlp) * act
    convs = hidden * adapters.kernel * (1 + (adapters.kernel if adapters.kind == "spatial_temporal" else 0))
    adapter_copies = 0 if act == 4 else (2 * c * hidden + hidden * hidden + convs) * act
    layer_saved = tokens * ((LAYER_SAVED_PER_TOKEN_C * c + mlp) * act
                            + (LAYER_SAVED_PER_TOKEN_FLOAT32 + config.num_attention_heads) * 4) + weight_copies
    adapter_width = ADAPTER_SAVED_PER_TOKEN_C * c + ADAPTER_SAVED_PER_TOKEN_HIDDEN[adapters.kind] * hidden
    adapter_saved = tokens * adapter_width * act + adapter_copies
    working = tokens * (WORKING_PER_TOKEN_MLP * mlp + WORKING_PER_TOKEN_C * c) * act
    slack = 0
    if checkpointing:
        # Each layer from the first adapted one on keeps only its input; one at a time (with its
        # adapter) is recomputed for its backward pass.
        kept = (layers - blocks[0]) * tokens * c * act
        recomputed = layer_saved + adapter_saved
        if device_type == "cpu":
            slack = int(CPU_CHECKPOINTING_SLACK * (layers - blocks[0]) * working)
    else:
        # The first adapted layer itself builds no graph: nothing before its adapter needs a gradient.
        kept = (layers - blocks[0] - 1) * layer_saved + len(blocks) * adapter_saved
        if act != 4:  # the first adapter's down-projection: its input needs no gradient, so no weight copy
            kept -= c * hidden * act
        recomputed = 0
    return {
        "backbone_weights": backbone_parameter_count(config) * 4,  # float32, no gradients, no optimiser state
        "adapter_weights_and_adamw": adapter_parameter_count(config, adapters) * 4 * ADAPTER_COPIES,
        "pixels": batch * clips * frames_per_clip * 3 * image_size**2 * (1 + 4),  # uint8 in, one float copy
        "kept_activations": kept,
        "recomputed": recomputed,
        "working_set": working,
        "allocator_slack": slack,
    }


def estimate_end_to_end_bytes(config: VideoMAEConfig, image_size: int, frames_per_clip: int, clips: int, batch: int,
                              checkpointing: bool, dtype: torch.dtype = torch.float32,
                              adapters: AdapterConfig | None = None, *, device_type: str) -> int:
    """Peak memory of one training step (forward, backward, AdamW on the adapters) of an adapted
    VideoMAE of `config` on `batch` samples of `clips` clips of `frames_per_clip` frames at
    `image_size`, under autocast to `dtype` (float32: none), on a `device_type` ("cpu" or "cuda")
    device: MARGIN x the sum of `end_to_end_memory`'s parts + RUNTIME_BYTES. The detector head on
    the (batch, clips, C) features is not included (see `mgrec.model.memory`)."""
    parts = end_to_end_memory(config, image_size, frames_per_clip, clips, batch, checkpointing, dtype, adapters,
                              device_type=device_type)
    return int(MARGIN * sum(parts.values())) + RUNTIME_BYTES


def check_end_to_end_fits(config: VideoMAEConfig, image_size: int, frames_per_clip: int, clips: int, batch: int,
                          checkpointing: bool, dtype: torch.dtype, available: int,
                          adapters: AdapterConfig | None = None, what: str = "end-to-end training", *,
                          device_type: str) -> None:
    """InputError with the numbers when `estimate_end_to_end_bytes` exceeds `available` bytes (the
    caller says what is available: `mgrec.model.memory.available_bytes()` on CPU, free GPU memory on CUDA)."""
    plan = (config, image_size, frames_per_clip, clips, batch, checkpointing, dtype, adapters)
    parts = end_to_end_memory(*plan, device_type=device_type)
    needed = estimate_end_to_end_bytes(*plan, device_type=device_type)
    if needed > available:
        gib = {name: f"{value / 2**30:.1f}" for name, value in parts.items()}
        raise InputError(
            f"{what} needs about {needed / 2**30:.1f} GiB ({batch} x {clips} clips of {frames_per_clip} frames at "
            f"{image_size} px, {config.num_hidden_layers} layers of {config.hidden_size}, "
            f"{'checkpointing' if checkpointing else 'no checkpointing'}, {str(dtype).removeprefix('torch.')}; "
            f"activations kept {gib['kept_activations']}, weights {gib['backbone_weights']} GiB), but "
            f"{available / 2**30:.1f} GiB is available; use fewer clips per sample, a smaller image size"
            f"{'' if checkpointing else ', or activation checkpointing'}"
        )


def check_training_memory(config: Config, adapted: AdaptedVideoMAE, device: torch.device, processes: int = 1,
                          available: int | None = None) -> str:
    """Refuse (InputError with the numbers) an end-to-end training step that cannot fit on `device`,
    else return the line that says what it is expected to take (`mgrec train` prints it first)."""
    device = torch.device(device)
    dtype = autocast_dtype(device, config.train.precision) or torch.float32
    batch = max(1, config.train.batch_size // processes)
    if available is None:
        available = (torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else available_bytes())
    plan = (adapted.backbone.config, config.backbone.image_size, config.backbone.frames_per_clip,
            config.data.max_seq_len, batch, config.backbone.checkpointing, dtype)
    if available is not None:
        check_end_to_end_fits(*plan, available, adapted.config, what="an end-to-end training step",
                              device_type=device.type)
    needed = estimate_end_to_end_bytes(*plan, adapted.config, device_type=device.type)
    recompute = "checkpointing" if config.backbone.checkpointing else "no checkpointing"
    room = f"{available / 2**30:.1f} GiB available" if available is not None else "available memory unknown"
    return (f"end-to-end training step on {device}: about {needed / 2**30:.1f} GiB estimated per process for "
            f"{batch} x {config.data.max_seq_len} clips of {config.backbone.frames_per_clip} frames at "
            f"{config.backbone.image_size} px ({recompute}, {str(dtype).removeprefix('torch.')}), {room}")
