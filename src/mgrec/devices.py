"""Device names from configs and flags -> torch devices, with clear errors; the precision of
training, extraction and detection (`autocast_dtype`); what a failed torch.compile says (`compile_failure`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mgrec.config import PRECISIONS
from mgrec.errors import InputError


def resolve_device(name: str, what: str = "train.device") -> torch.device:
    """'auto' -> CUDA when available, else CPU; an explicit CUDA request without CUDA is an error.

    `what` names the setting in error messages (a config key or a command-line flag).
    """
    if not isinstance(name, str):
        raise InputError(f"{what}={name!r} is not a device name (auto, cpu, cuda, cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"{what}={name!r} but this machine has no CUDA device; use {what}=cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"{what}={name!r} is not a device name (auto, cpu, cuda, cuda:N)") from None



def process_rank() -> tuple[int, int]:
    """(rank, number of processes) of this process: torchrun's RANK and WORLD_SIZE, (0, 1) without it."""
    rank, world = _environment_count("RANK", 0), _environment_count("WORLD_SIZE", 1)
    if not 0 <= rank < world:
        raise InputError(f"environment: RANK={rank} must lie in [0, WORLD_SIZE={world})")
    return rank, world


def process_device(name: str, what: str = "train.device") -> torch.device:
    """`resolve_device`, and under torchrun (LOCAL_RANK set) a CUDA device without an index (`cuda`, or `auto` on a
    machine with CUDA) is this process's own GPU; `cuda:N` stays what it says."""
    device = resolve_device(name, what)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", _environment_count("LOCAL_RANK", 0))
    return device


def _environment_count(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"environment: {name}={text!r} must be a whole number (torchrun sets it)") from None

# --------------------------------------------------------------------------------------------
# Precision (`train.precision`; `mgrec detect / evaluate / stream --precision`)

# /proc/cpuinfo flags of native bf16 arithmetic: AVX512-BF16 (Cooper Lake, Zen 4 and later) and
# AMX-BF16 (Sapphire Rapids and later). Read only where torch cannot say.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX): whether forced bf16 runs on real bf16
    kernels (EfficientNet's fused oneDNN layers need them) and is worth timing; benchmarks record it. Native is
    not faster: `--precision auto` of feature extraction asks `amx_bf16_cpu`, that of the detector neither.

    Without it torch still runs bf16, but emulated: convolutions fall back to a slow generic kernel
    (measured on a 2-core AVX2 machine: the SMG model at T = 2304 took 65-80 s instead of 0.6 s).
    Asks torch first (`torch.cpu._is_avx512_bf16_supported`, `_is_amx_tile_supported`: private, so
    possibly gone in a later torch), then the flags of /proc/cpuinfo; where neither can be read: False.
    """
    return _cpu_has(("_is_avx512_bf16_supported", "_is_amx_tile_supported"), NATIVE_BF16_FLAGS)


# /proc/cpuinfo flag of bf16 matrix units: AMX-BF16 (Sapphire Rapids and later, where the hypervisor exposes it).
AMX_BF16_FLAGS = frozenset({"amx_bf16"})


def amx_bf16_cpu() -> bool:
    """Whether this CPU has AMX matrix units for bf16, where bf16 is faster than float32; AVX512-BF16 alone
    computes bf16 natively but no faster. `--precision auto` of feature extraction follows it (`extraction_dtype`).

    Measured with torch 2.13, 2 threads: on a 2-core Xeon with AMX, `mgrec extract` with EfficientNet-Lite0
    took 8.5 s in bf16 against 14.6 s in fp32 for a 60 s video (benchmarks/results/2026-12-04_886148a_extraction/);
    on a 2-core Xeon whose hypervisor exposes AVX512-BF16 but not AMX (the same CPU model, another day), 20.3 s
    against 18.5 s, and the SMG-sized detector at T = 2304 0.72 s against 0.59 s
    (benchmarks/results/2026-12-07_9c84116-dirty_no-amx/). Asks torch first
    (`torch.cpu._is_amx_tile_supported`, private), then the flags of /proc/cpuinfo; where neither can be read: False.
    """
    return _cpu_has(("_is_amx_tile_supported",), AMX_BF16_FLAGS)


def _cpu_has(probe_names: tuple[str, ...], flags: frozenset[str]) -> bool:
    """Whether any of torch's private CPU queries `probe_names` says yes, where torch has all of them and they answer;
    else whether /proc/cpuinfo lists any of `flags` (False where it cannot be read)."""
    probes = [getattr(torch.cpu, name, None) for name in probe_names]
    if all(callable(probe) for probe in probes):
        try:
            return any(bool(probe()) for probe in probes)
        except Exception:  # noqa: BLE001 - a private query may fail in any way; the flags decide then
            pass
    return bool(cpuinfo_flags() & flags)


def cpuinfo_flags(path: Path | None = None) -> set[str]:
    """The CPU feature flags listed in /proc/cpuinfo, or `path` (empty where it cannot be read: not Linux,
    no access)."""
    try:
        text = (CPUINFO if path is None else path).read_text(errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags.update(value.split())
    return flags


def autocast_dtype(device: torch.device, precision: str, what: str = "precision") -> torch.dtype | None:
    """The autocast dtype of the network's forward pass for `precision`, or None for plain float32: in
    training (`train.precision`), feature extraction and detection (`--precision`) alike.

    `auto`: bf16 on CUDA, float32 on a CPU, whatever it offers; `bf16`: bf16 on any device (emulated,
    hence slow, on a CPU without native bf16: `native_bf16_cpu`); `fp32`: never autocast.
    Why not bf16 on a CPU with native bf16: measured on one (a 2-core Xeon with AVX512-BF16 and AMX,
    torch 2.13; `benchmarks/precision.py` and `benchmarks/speed.py`, docs/speed.md "bf16 on CPU"), bf16 autocast
    makes the SMG-sized detector 0.70x as long but the demo's small model no faster (1.07x) and its online
    update slower (12.7 against 10.7 ms): small element-wise ops and depthwise convs, where autocast adds
    casts and saves little arithmetic. Which one a run is, `auto` cannot tell before timing it.
    On a CPU with AVX512-BF16 and no AMX, bf16 made the SMG-sized detector slower too (0.72 against 0.59 s at
    T = 2304, benchmarks/results/2026-12-07_9c84116-dirty_no-amx/).
    `auto` picks what is not slower; bf16 stays one flag away, with its agreement with float32 stated and
    measured (`mgrec.infer.agreement`: boundaries within one feature step, scores within 0.01).
    `what` names the setting in error messages.
    """
    if precision not in PRECISIONS:
        raise InputError(f"{what}={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def extraction_dtype(device: torch.device, precision: str, what: str = "--precision") -> torch.dtype | None:
    """The dtype of a video backbone's forward pass (`mgrec extract --precision`): as `autocast_dtype`,
    except that `auto` is bf16 also on a CPU with AMX (`amx_bf16_cpu`).

    Video backbones are large convolutions and matrix products, where bf16 pays on AMX's matrix units, unlike
    the detector: on a 2-core Xeon with AMX (torch 2.13, benchmarks/results/2026-12-04_886148a_extraction/),
    `mgrec extract` with EfficientNet-Lite0 took 8.5 s in bf16 against 14.6 s in fp32 for a 60 s video,
    start-up included, with window features at cosine 0.9993 to fp32's; VideoMAE ViT-S 2.2-3.1x as fast.
    With AVX512-BF16 alone bf16 was slower (`amx_bf16_cpu`), so `auto` is float32 there.
    The precision is recorded in the sidecars: bf16 features are a recipe of their own, and
    `--precision fp32` keeps the float32 one (a run's features are extracted again with the run's own).
    """
    dtype = autocast_dtype(device, precision, what)
    if precision == "auto" and device.type == "cpu" and amx_bf16_cpu():
        return torch.bfloat16
    return dtype


def precision_name(dtype: torch.dtype | None) -> str:
    """The name recorded in outputs for an autocast dtype: "bf16", or "fp32" for none."""
    return {None: "fp32", torch.bfloat16: "bf16"}[dtype]


def compile_failure(exc: BaseException) -> str:
    """What went wrong when torch.compile could not build a network, in one line: dynamo wraps the
    backend's error (inductor's missing C++ compiler, ...) in one whose own first line names only
    the backend, so the wrapped error's type and first line are what a user needs to see."""
    inner = getattr(exc, "inner_exception", None) or exc
    first_line = (str(inner).strip().splitlines() or [""])[0]
    return f"{type(inner).__name__}: {first_line}"


@contextmanager
def float32_default() -> Iterator[None]:
    """torch's default dtype float32 inside (and as it was after): mgrec's networks and their inputs are float32
    whatever a caller set. After `torch.set_default_dtype(torch.float64)`, networks were built in float64: their
    checkpoints were refused as "another model configuration" by a normal process, a run's own weights refused
    by that process, and detection stopped at a raw dtype error."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def checked_threads(threads: object) -> int | None:
    """A number of CPU threads given in Python (`stream_file`, `OnnxNetwork`): a whole number, 1 or more, or None
    (torch's setting). Unchecked, OnnxNetwork(threads=0) silently took every core torch uses, "2" was onnxruntime's
    raw TypeError, and a negative count its own error."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads: expected a whole number of threads, 1 or more (or None: torch's setting), got "
                         f"{threads!r}")
    return threads


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to `threads` (None: left as they are) for the block, and given back after: a Python
    caller's process keeps its own setting."""
    checked_threads(threads)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
