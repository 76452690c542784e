"""Device names from configs and flags -> torch devices, with clear errors."""

from __future__ import annotations

import os
import platform
from pathlib import Path

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


def describe_machine(device: torch.device | None = None) -> str:
    """A one-line description of the machine for result files: the GPU's name for a CUDA device,
    else the CPU model (from /proc/cpuinfo where it exists) and its logical CPU count; plus the OS."""
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}; {platform.platform()}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu} ({os.cpu_count()} logical CPUs); {platform.platform()}"
