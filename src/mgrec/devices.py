"""Device names from configs and flags -> torch devices, with clear errors."""

from __future__ import annotations

import torch

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
