"""CPU memory allocator settings for fast tensor code (no torch import: the command line calls this first)."""

from __future__ import annotations

# glibc mallopt parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
_MMAP_THRESHOLD_MAX = 32 << 20
_TRIM_THRESHOLD = 1 << 30


def keep_freed_cpu_memory() -> bool:
    """Let glibc's malloc reuse freed tensor memory instead of returning it to the system.

    PyTorch's CPU allocator is plain malloc. By default glibc serves blocks above its (adaptive)
    mmap threshold with fresh mmaps and trims the heap top, so the multi-megabyte activations of
    every forward pass come back as fresh pages: thousands of page faults per SMG-scale forward
    pass, paid in system time (the measured figures: benchmarks/results/README.md). With
    blocks up to 32 MB kept on the heap and no trimming below 1 GB, they drop to almost none; the
    price is that the process keeps its peak memory until it exits. The effect is the same as
    running with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...

    Returns whether the settings were applied (False where the C library is not glibc, e.g. macOS
    or musl: nothing changes there). Called by the `mgrec` command line and the speed benchmark.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
