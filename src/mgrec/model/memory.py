"""How much memory a pass of the detector needs, estimated before anything is allocated.

The activations of the network grow with batch x feature steps x embedding channels. Peak memory
per (batch item x step x channel) was measured for each variant, training (forward + backward)
and inference, at demo and SMG sizes (`benchmarks/memory.py`, results in
`benchmarks/results/2026-12-03_9a5ec1a-dirty_memory/memory.json`): within 12% across sizes for one variant,
but up to 28% apart between two machines of the same kind (the CI machine measured 180 bytes for
inference where the campaign machine measured 141: allocator and kernel choices differ). The
factors below are the largest value measured on either machine plus about 30%, so the estimate errs
on the high side.

Gated fusion (`mgrec.model.fusion`) runs the encoder once per input stream: its activations are
counted once per stream, as if the whole network were repeated (the head is not, so this errs high too).

Training and detection call `check_fits` first: a crop or a video that cannot fit is refused with
the numbers (estimate and memory available), instead of failing inside the allocator or swapping.
Training asks before the network is built and before anything is written into the run folder: the
network's parameters are counted on PyTorch's meta device (`count_parameters`), so a width that
cannot be allocated (`model.embed_dim: 100000`) is measured without being allocated.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mgrec.config import ModelConfig
from mgrec.errors import InputError
from mgrec.model.detector import build_detector

# bytes per (batch item x feature step x embedding channel), largest measured value + about 30%
TRAINING_BYTES_PER_STEP_CHANNEL = {"mgrec": 1300, "dyfadet": 1800, "actionformer": 850}
INFERENCE_BYTES_PER_STEP_CHANNEL = 240
# AdamW: the weights, their gradients and two moments; EMA: one more copy
TRAINING_COPIES_OF_WEIGHTS = 5


def estimate_bytes(cfg: ModelConfig, steps: int, batch: int, training: bool, num_parameters: int = 0) -> int:
    """Peak memory of one pass over `batch` sequences of `steps` feature steps (inputs included)."""
    per_step_channel = TRAINING_BYTES_PER_STEP_CHANNEL[cfg.variant] if training else INFERENCE_BYTES_PER_STEP_CHANNEL
    towers = len(cfg.stream_dims) if cfg.fusion == "gated" and cfg.stream_dims else 1
    activations = per_step_channel * batch * steps * cfg.embed_dim * towers
    inputs = 4 * batch * steps * cfg.input_dim
    weights = 4 * num_parameters * (TRAINING_COPIES_OF_WEIGHTS if training else 1)
    return int(activations + inputs + weights)


def available_bytes() -> int | None:
    """Memory the system can give now (Linux MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def count_parameters(cfg: ModelConfig) -> int:
    """The parameters of the detector `cfg` describes, counted without allocating them: it is built on
    PyTorch's meta device (shapes only, no storage), so a network too large to build is measured first."""
    try:
        with torch.device("meta"):
            detector = build_detector(cfg)
    except RuntimeError as exc:
        if "overflow" not in str(exc).lower():
            raise
        # torch cannot even describe a tensor of more than 2**63 bytes ("Storage size calculation overflowed")
        raise InputError(f"a network of model.embed_dim={cfg.embed_dim}, model.mlp_dim={cfg.mlp_dim}, model.head_dim="
                         f"{cfg.head_dim} and model.num_classes={cfg.num_classes} holds a tensor of more than 2**63 "
                         "bytes, more than any machine has; lower them") from None
    return sum(p.numel() for p in detector.parameters())


def check_fits(cfg: ModelConfig, steps: int, batch: int, training: bool, what: str,
               model: torch.nn.Module | None = None, available: int | None = None,
               parameters: int = 0, device: torch.device | str = "cpu") -> None:
    """InputError when the estimate of the pass exceeds the memory available (`available`, default:
    what the system reports; nothing is checked where it reports nothing). With `model`, its weights
    count too, and nothing is checked when it lives on a GPU (the estimate is of host memory); before
    the network is built, `parameters` (`count_parameters`) and `device` (where it will live) say the same."""
    device = next(model.parameters()).device if model is not None else torch.device(device)
    if device.type != "cpu":
        return
    available = available_bytes() if available is None else available
    num_parameters = parameters if model is None else sum(p.numel() for p in model.parameters())
    needed = estimate_bytes(cfg, steps, batch, training, num_parameters)
    if available is not None and needed > available:
        weights = estimate_bytes(cfg, 0, batch, training, num_parameters)  # no feature step: the weights alone
        if 2 * weights > needed:  # the network itself is most of it: its sizes are what to lower
            copies = " with the optimizer's and the EMA's copies" if training else ""
            advice = (f"the network's {num_parameters:,} parameters take {weights / 2**30:.1f} GiB of it{copies}; "
                      "lower model.embed_dim, model.mlp_dim or model.head_dim")
        else:
            advice = "lower train.batch_size, data.max_seq_len or model.embed_dim" if training else "split the video"
        raise InputError(
            f"{what} needs about {needed / 2**30:.1f} GiB ({batch} x {steps} feature steps, {cfg.variant}, "
            f"{'training' if training else 'inference'}), but {available / 2**30:.1f} GiB is available; {advice}"
        )
