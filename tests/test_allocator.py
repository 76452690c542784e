"""keep_freed_cpu_memory: freed activations are reused instead of coming back as fresh pages."""

import os
import subprocess
import sys

import pytest

from mgrec.allocator import keep_freed_cpu_memory

# A fresh process (the allocator settings are process-wide): forward passes of a detector, counting
# the minor page faults of the last two after warm-up.
FORWARD_FAULTS = """
import resource, sys, torch
from mgrec.allocator import keep_freed_cpu_memory
from mgrec.config import ModelConfig
from mgrec.model.detector import build_detector
if sys.argv[1] == "keep":
    assert keep_freed_cpu_memory()
torch.set_num_threads(1)
model = build_detector(
    ModelConfig(input_dim=256, num_classes=7, embed_dim=256, mlp_dim=256, head_dim=256, num_levels=5)
).eval()
x, mask = torch.randn(1, 256, 2048), torch.ones(1, 1, 2048, dtype=torch.bool)
with torch.inference_mode():
    for _ in range(2):
        model(x, mask)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(2):
        model(x, mask)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


# glibc's default mmap threshold adapts to what the process freed, so whether a plain process
# faults depends on the machine (a CI machine measured 1 fault, this one 35000). A fixed 128 KB
# threshold, set from outside as a user or a distribution might, makes every activation a fresh
# mmap: the control always shows the problem, and keep_freed_cpu_memory must undo it.
FORCE_FRESH_PAGES = "glibc.malloc.mmap_threshold=131072"


def _faults(mode: str) -> int:
    # The same environment whatever ran before in this test process: `mgrec.cli.main` sets
    # OMP_WAIT_POLICY, under which OpenMP adds a fixed ~2000 faults of its own to any forward pass.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | {"GLIBC_TUNABLES": FORCE_FRESH_PAGES}
    done = subprocess.run([sys.executable, "-c", FORWARD_FAULTS, mode], capture_output=True, text=True, check=True,
                          env=env)
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings (Linux only)")
def test_forward_passes_stop_faulting_in_fresh_pages():
    # The fewer of two processes: the kernel's own memory management (kdamond's proactive reclaim on
    # this VM kind) now and then takes back pages of a kept heap, adding faults no setting avoids (a
    # busy CI machine measured about 1200 of them; the control has about 365000).
    default, kept = _faults("default"), min(_faults("keep") for _ in range(2))
    assert default > 10_000, default  # the control: activations come back as fresh pages
    assert kept < default / 5, (kept, default)


def test_reports_whether_it_applied():
    assert keep_freed_cpu_memory() is (sys.platform.startswith("linux"))
