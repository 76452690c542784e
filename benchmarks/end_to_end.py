"""End-to-end training steps through a frozen VideoMAE with adapters (issue #16): time and peak memory on
CPU against the memory planner, and what the planner says for VideoMAE V2-g on a GPU.

    python benchmarks/end_to_end.py --threads 1   # -> benchmarks/results/<date>_<commit>_end-to-end/end_to_end.json
    python benchmarks/end_to_end.py --reestimate RESULTS.json --json OUT.json   # planner of now, measurements of then
    python benchmarks/end_to_end.py --tiny --json /tmp/end_to_end.json               # tiny sizes (the tests)

One training step = `AdaptedVideoMAE` forward on random uint8 clips (batch 1, `--clips` clips of 16
frames), a loss on the pooled (1, clips, C) output, backward, AdamW on the adapters. Randomly
initialised backbones (no weights can be downloaded here; time and memory do not depend on the values):
`tiny` (2 layers of 32) and VideoMAE ViT-S (12 layers of 384, 6 heads, MLP 1536, patch 16, tubelet 2),
at 112 and 160 px, both adapter kinds on every layer, activation checkpointing off and on, float32
(`precision: auto` on CPU).

Each case runs in a fresh process (`OMP_WAIT_POLICY=PASSIVE`, `mgrec.allocator.keep_freed_cpu_memory`,
as the `mgrec` command line sets them), which reports the seconds of `--repeats` steps after one untimed
step (`seconds_per_step`: their median; of two, the larger), and the growth of its peak RSS (VmHWM)
over its RSS before the model was built: backbone weights, adapters with their AdamW state, input and
activations. Beside it, the planner's estimate on CPU (`mgrec.extract.adapters.estimate_end_to_end_bytes`,
device_type "cpu"), its parts, measured / estimate (at most 1 where the estimate is safe), and the
margin this case alone would need, (measured - RUNTIME_BYTES) / parts (what `adapters.MARGIN` is set
from). `--reestimate` recomputes these from an earlier file's measurements, measuring nothing. Last,
the planner's figure for VideoMAE V2-g (40 layers of 1408, 16 heads, MLP 6144, patch 14, tubelet 2) on
a CUDA device at 160 px, 16 frames per clip, 96 clips per sample, batch 1, bf16, with and without
checkpointing, against 80 GiB, and the most clips that fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
             "patch_size": 16, "tubelet_size": 2, "image_size": 64, "num_frames": 16},
    "vit-s": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536,
              "patch_size": 16, "tubelet_size": 2, "image_size": 224, "num_frames": 16},
    "vit-g": {"hidden_size": 1408, "num_hidden_layers": 40, "num_attention_heads": 16, "intermediate_size": 6144,
              "patch_size": 14, "tubelet_size": 2, "image_size": 224, "num_frames": 16},
}
SIZES = (112, 160)
KINDS = ("temporal", "spatial_temporal")
FRAMES = 16
# --tiny: the tiny config at 32 px (its native size is 64), 8 frames, 2 clips, one timed step
TINY_CASES = [("tiny", 32, "temporal", False), ("tiny", 32, "spatial_temporal", True)]
# what a case measured (the rest of its row is the planner's view, recomputed by --reestimate)
MEASURED_KEYS = ("config", "image_size", "kind", "checkpointing", "frames", "clips", "seconds_per_step", "seconds",
                 "peak_growth_bytes")
VIT_G = {"image_size": 160, "frames_per_clip": 16, "clips": 96, "batch": 1, "available_gib": 80}

CHILD = """
import json, os, sys, time
import torch
from transformers import VideoMAEConfig, VideoMAEModel
from mgrec.allocator import keep_freed_cpu_memory
from mgrec.extract.adapters import AdapterConfig, add_adapters
keep_freed_cpu_memory()
config, size, kind, checkpointing, frames, clips, repeats, threads = json.loads(sys.argv[1])
torch.set_num_threads(threads)
def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
before = status("VmRSS")
torch.manual_seed(0)
model = VideoMAEModel(VideoMAEConfig(**config, attn_implementation="sdpa"))
adapted = add_adapters(model, AdapterConfig(kind=kind), checkpointing=checkpointing, precision="fp32")
optimizer = torch.optim.AdamW(adapted.trainable_parameters(), lr=1e-4)
x = torch.randint(0, 256, (1, clips, frames, size, size, 3), dtype=torch.uint8)
def step():
    optimizer.zero_grad(set_to_none=True)
    adapted(x).square().mean().backward()
    optimizer.step()
step()
seconds = []
for _ in range(repeats):
    started = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds, "peak_growth_bytes": status("VmHWM") - before}))
"""


def measure(config: str, size: int, kind: str, checkpointing: bool, frames: int, clips: int, repeats: int,
            threads: int) -> dict:
    """One case in a fresh process: its step times and peak RSS growth, with the planner's view (`assess`)."""
    arguments = [CONFIGS[config], size, kind, checkpointing, frames, clips, repeats, threads]
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arguments)], capture_output=True, text=True,
                          check=True, timeout=1800, env=environment)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = sorted(measured["seconds"])
    case = {"config": config, "image_size": size, "kind": kind, "checkpointing": checkpointing, "frames": frames,
            "clips": clips, "seconds_per_step": seconds[len(seconds) // 2], "seconds": measured["seconds"],
            "peak_growth_bytes": measured["peak_growth_bytes"]}
    return assess(case)


def assess(case: dict) -> dict:
    """`case` with the planner's estimate for it on CPU, its parts, measured / estimate (at most 1 where
    the estimate is safe) and the margin this case alone would need: (measured - RUNTIME_BYTES) / parts."""
    import torch
    from transformers import VideoMAEConfig

    from mgrec.extract.adapters import MARGIN, RUNTIME_BYTES, AdapterConfig, end_to_end_memory

    plan = (VideoMAEConfig(**CONFIGS[case["config"]]), case["image_size"], case["frames"], case["clips"], 1,
            case["checkpointing"], torch.float32, AdapterConfig(kind=case["kind"]))
    parts = end_to_end_memory(*plan, device_type="cpu")
    estimate = int(MARGIN * sum(parts.values())) + RUNTIME_BYTES  # as estimate_end_to_end_bytes
    growth = case["peak_growth_bytes"]
    return {**case, "estimate_bytes": estimate, "measured_over_estimate": growth / estimate, "estimate_parts": parts,
            "margin": MARGIN, "runtime_bytes": RUNTIME_BYTES,
            "margin_needed": (growth - RUNTIME_BYTES) / sum(parts.values())}


def vit_g_plan() -> dict:
    """The planner's figures for VideoMAE V2-g at `VIT_G` on a CUDA device, bf16, checkpointing on and off."""
    import torch
    from transformers import VideoMAEConfig

    from mgrec.extract.adapters import (
        AdapterConfig,
        adapter_parameter_count,
        backbone_parameter_count,
        end_to_end_memory,
        estimate_end_to_end_bytes,
    )

    config, setting = VideoMAEConfig(**CONFIGS["vit-g"]), VIT_G
    available = setting["available_gib"] * 2**30
    result = {**setting, "dtype": "bf16", "device_type": "cuda", "adapters": "temporal, every layer, ratio 0.25",
              "backbone_parameters": backbone_parameter_count(config),
              "adapter_parameters": adapter_parameter_count(config, AdapterConfig())}
    for checkpointing in (True, False):
        plan = (config, setting["image_size"], setting["frames_per_clip"])
        rest = (setting["batch"], checkpointing, torch.bfloat16)
        most = 0
        while estimate_end_to_end_bytes(*plan, most + 1, *rest, device_type="cuda") <= available:
            most += 1
        estimate = estimate_end_to_end_bytes(*plan, setting["clips"], *rest, device_type="cuda")
        parts = end_to_end_memory(*plan, setting["clips"], *rest, device_type="cuda")
        result["checkpointing" if checkpointing else "no_checkpointing"] = {
            "estimate_bytes": estimate, "estimate_gib": estimate / 2**30,
            "parts_gib": {name: value / 2**30 for name, value in parts.items()},
            "fits": estimate <= available, "most_clips_that_fit": most}
    return result


def table(document: dict) -> str:
    lines = ["| config | px | adapter | checkpointing | clips | s/step | peak RSS growth MiB | estimate MiB | "
             "measured / estimate | margin needed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case in document["cases"]:
        lines.append(f"| {case['config']} | {case['image_size']} | {case['kind']} | "
                     f"{'on' if case['checkpointing'] else 'off'} | {case['clips']} | {case['seconds_per_step']:.2f} | "
                     f"{case['peak_growth_bytes'] / 2**20:.0f} | {case['estimate_bytes'] / 2**20:.0f} | "
                     f"{case['measured_over_estimate']:.2f} | {case['margin_needed']:.2f} |")
    g = document["vit_g"]
    for name in ("checkpointing", "no_checkpointing"):
        row = g[name]
        lines.append(f"\nViT-g on CUDA, {g['image_size']} px, {g['clips']} x {g['frames_per_clip']} frames, bf16, "
                     f"{name.replace('_', ' ')}: {row['estimate_gib']:.1f} GiB estimated "
                     f"({'fits' if row['fits'] else 'does not fit'} in {g['available_gib']} GiB; "
                     f"at most {row['most_clips_that_fit']} clips)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per case (default 1)")
    parser.add_argument("--clips", type=int, default=4, help="clips of 16 frames per training step (default 4)")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per case, after one untimed (default 2)")
    parser.add_argument("--configs", nargs="+", default=["tiny", "vit-s"], choices=["tiny", "vit-s"])
    parser.add_argument("--tiny", action="store_true", help="two tiny cases at 32 px, one timed step (the tests)")
    parser.add_argument("--reestimate", type=Path, default=None,
                        help="measure nothing: the planner of this checkout against the measurements of an earlier "
                             "result file (what recalibrating the planner is checked with)")
    parser.add_argument("--note", default="", help="recorded as is, e.g. what else ran on the machine")
    parser.add_argument("--json", type=Path, default=None,
                        help="result file (default: benchmarks/results/<date>_<commit>_end-to-end/end_to_end.json)")
    args = parser.parse_args(argv)
    record = provenance(["python", "benchmarks/end_to_end.py", *(sys.argv[1:] if argv is None else argv)],
                        threads=args.threads)
    out = args.json or REPO / "benchmarks" / "results" / campaign_name("end-to-end", record) / "end_to_end.json"
    started = time.perf_counter()
    if args.reestimate is not None:
        measured = json.loads(args.reestimate.read_text())
        document = {PROVENANCE_KEY: record, "note": args.note, "measurements_from": str(args.reestimate),
                    "measured_by": measured[PROVENANCE_KEY], "measurement_note": measured.get("note", ""),
                    "cases": [assess({key: case[key] for key in MEASURED_KEYS}) for case in measured["cases"]]}
    else:
        if args.tiny:
            cases, frames, clips, repeats = TINY_CASES, 8, 2, 1
        else:
            cases = [(c, s, k, p) for c in args.configs for s in SIZES for k in KINDS for p in (False, True)]
            frames, clips, repeats = FRAMES, args.clips, args.repeats
        document = {PROVENANCE_KEY: record, "note": args.note, "omp_wait_policy": "PASSIVE",
                    "freed_memory_kept": True, "load_average_at_start": os.getloadavg(), "cases": []}
        for case in cases:
            row = measure(*case, frames=frames, clips=clips, repeats=repeats, threads=args.threads)
            document["cases"].append(row)
            print(json.dumps({key: value for key, value in row.items() if key != "estimate_parts"}), flush=True)
        document["load_average_at_end"] = os.getloadavg()
    document["vit_g"] = vit_g_plan()
    document["wall_seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    out.with_suffix(".md").write_text(table(document))
    print(table(document))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
