"""Peak memory of one forward (inference) or forward + backward (training) pass, per variant and size.

    python benchmarks/memory.py --json benchmarks/results/<campaign>/memory.json

Each case runs in a fresh process and reports the growth of its peak RSS (VmHWM) over one pass on
random features, and that growth per (batch item x feature step x embedding channel): the factor
`mgrec.model.memory` uses to estimate, before allocating, whether a training crop or a video fits.
CPU, fp32, one thread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mgrec.provenance import PROVENANCE_KEY, provenance

# (config, steps, batch, training)
CASES = [
    ("demo/mgrec.yaml", 1024, 4, True), ("demo/mgrec.yaml", 4096, 1, True), ("demo/mgrec.yaml", 8192, 1, False),
    ("demo/dyfadet.yaml", 1024, 4, True), ("demo/actionformer.yaml", 1024, 4, True),
    ("demo/actionformer.yaml", 8192, 1, False),
    ("smg/mgrec.yaml", 2304, 2, True), ("smg/mgrec.yaml", 2304, 1, False), ("smg/dyfadet.yaml", 2304, 2, True),
    ("smg/actionformer.yaml", 2304, 2, True), ("smg/dyfadet.yaml", 6912, 1, False),
]

CHILD = """
import sys, torch
from mgrec.config import load_config
from mgrec.model.detector import build_detector
config, steps, batch, training = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
torch.set_num_threads(1)
cfg = load_config(config).model
model = build_detector(cfg)
def peak():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
x, mask = torch.randn(batch, cfg.input_dim, steps), torch.ones(batch, 1, steps, dtype=torch.bool)
before = peak()
if training:
    out = model(x, mask)
    (sum(o.sum() for o in out.cls_logits) + sum(o.sum() for o in out.offsets)).backward()
else:
    with torch.no_grad():
        model.eval()(x, mask)
print(peak() - before, cfg.variant, cfg.embed_dim)
"""


def measure(config: str, steps: int, batch: int, training: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, config, str(steps), str(batch), "1" if training else "0"],
                          capture_output=True, text=True, check=True, timeout=600)
    growth, variant, embed_dim = done.stdout.split()
    growth = int(growth)
    return {"config": config, "variant": variant, "steps": steps, "batch": batch, "training": training,
            "peak_growth_bytes": growth, "bytes_per_step_channel": growth / (batch * steps * int(embed_dim))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="result file to write")
    parser.add_argument("--quick", action="store_true", help="only the two smallest cases (for the tests)")
    args = parser.parse_args(argv)
    cases = CASES[:1] + CASES[2:3] if args.quick else CASES
    results = []
    for case in cases:
        results.append(measure(*case))
        print(json.dumps(results[-1]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    document = {PROVENANCE_KEY: provenance(["python", "benchmarks/memory.py", *(argv or sys.argv[1:])], threads=1),
                "cases": results}
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
