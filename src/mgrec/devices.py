"""Device names from configs and flags -> torch devices, with clear errors."""

from __future__ import annotations

import torch

from mgrec.config import PRECISIONS
from mgrec.errors import InputError


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """'auto' -> CUDA when available, else CPU; an explicit CUDA request without CUDA is an error.

    `what` names the setting in error messages (a config key or a command-line flag).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"{what}={name!r} but this machine has no CUDA device; use {what}=cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"{what}={name!r} is not a device name (auto, cpu, cuda, cuda:N)") from None


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain float32.

    `auto` is bf16 autocast on CUDA and float32 on CPU: bf16 on CPU is a choice made per run
    (`bf16`), not a silent default."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None
