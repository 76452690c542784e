"""Offline detection cost as videos grow to 10 hours, and what chunking long videos costs in accuracy.

    python benchmarks/cost_curves.py --json benchmarks/results/<campaign>/cost_curves.json [--run RUN_DIR]

1. Cost: `OfflineDetector.detect` on a feature file of T steps (random features, 1408-d, written as
   .npy in blocks by this process) with a random-init SMG-size model (`smg/<model>.yaml`), for T
   from 2304 to 250k steps (SMG's grid is 7 steps/s: 250k steps = 10 h). Each T runs in a fresh
   process, which reports the wall time of `detect` (loading the file included) and its peak RSS
   growth (VmHWM) during `detect`, the features it loads included. Videos longer than
   `LONG_VIDEO_CHUNKING.steps` are detected in overlapping windows.
2. With --run: the run's test split detected in one pass and in windows of 1024 and 512 steps
   (overlap 256 and 128), F1 and average mAP side by side: how far chunked detections are from one
   pass (the network's whole-sequence statistics and its receptive field beyond the overlap differ).

Writes the JSON (provenance record included), a Markdown table and a PNG plot beside it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from mgrec.provenance import PROVENANCE_KEY, provenance

LENGTHS = [2304, 8192, 32768, 65536, 131072, 250000]
QUICK_LENGTHS = [256, 2048]

CHILD = """
import json, sys, time
import numpy as np, torch
from mgrec.config import load_config
from mgrec.infer.offline import OfflineDetector, LONG_VIDEO_CHUNKING
from mgrec.model.detector import build_detector
from mgrec.run import RunDir
config_name, steps, folder, dim = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(int(sys.argv[5]))
config = load_config(config_name, [f"data.feature_dim={dim}", "data.fps=28.0"])
torch.manual_seed(0)
model = build_detector(config.model)
run = RunDir(f"{folder}/run")
run.write_for_inference(config, [f"c{i}" for i in range(config.model.num_classes)], model, score_threshold=0.3)
path = f"{folder}/video.npy"  # written by the parent: making it here would raise the peak measured below
detector = OfflineDetector.from_run(run.path, device="cpu", precision="fp32")
def peak():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024
before = peak()
started = time.perf_counter()
detections = detector.detect(path, fps=28.0)
seconds = time.perf_counter() - started
features_bytes = steps * config.data.feature_dim * 4
print(json.dumps({"steps": steps, "seconds": seconds, "peak_growth_bytes": peak() - before,
                  "features_bytes": features_bytes, "chunked": steps > LONG_VIDEO_CHUNKING.steps,
                  "detections": len(detections)}))
"""


def write_features(path: Path, steps: int, dim: int) -> None:
    """Random features (steps, dim) float32 as .npy, written in blocks (never all in memory)."""
    rng, out = np.random.default_rng(0), np.lib.format.open_memmap(path, "w+", np.float32, (steps, dim))
    for first in range(0, steps, 8192):
        out[first : first + 8192] = rng.standard_normal((min(8192, steps - first), dim), dtype=np.float32)
    out.flush()
    del out


def measure_cost(config: str, steps: int, dim: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        write_features(Path(folder) / "video.npy", steps, dim)
        done = subprocess.run([sys.executable, "-c", CHILD, config, str(steps), folder, str(dim), str(threads)],
                              capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(done.stdout.strip().splitlines()[-1])


def chunking_accuracy(run_dir: str) -> list[dict]:
    """The run's test split in one pass and in windows: F1 and average mAP of each."""
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.scoring import score
    from mgrec.infer.offline import OfflineDetector
    from mgrec.postprocess.video import Chunking
    from mgrec.train.data import load_split

    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    config = detector.config
    split = load_split(config, load_annotations(config.data.annotations), config.data.test_split)
    rows = []
    for chunking in (None, Chunking(1024, 256), Chunking(512, 128)):
        detector.chunking = chunking
        ranked = {s.video_id: detector.detect_inputs(s.features, s.video_id, fps=s.grid.fps) for s in split.samples}
        result = score(split.ground_truth, ranked, detector.classes, detector.postprocess.score_threshold, "test")
        rows.append({"chunking": None if chunking is None else [chunking.steps, chunking.overlap],
                     "longest_video_steps": max(len(s.features) for s in split.samples),
                     "f1": result["f1"], "average_mAP": result["average_mAP"],
                     "num_predictions": result["num_predictions"]})
    return rows


def write_plot(costs: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = figure.subplots(1, 2)
    hours = [c["steps"] / 7 / 3600 for c in costs]
    left.plot(hours, [c["seconds"] for c in costs], marker="o")
    left.set_xlabel("video length (h at 7 steps/s)")
    left.set_ylabel("detect time (s)")
    right.plot(hours, [c["peak_growth_bytes"] / 2**30 for c in costs], marker="o", label="peak RSS growth")
    right.plot(hours, [c["features_bytes"] / 2**30 for c in costs], linestyle="--", label="the features")
    right.set_xlabel("video length (h at 7 steps/s)")
    right.set_ylabel("GiB")
    right.legend(fontsize=8)
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="result file to write")
    parser.add_argument("--config", default="smg/mgrec.yaml", help="model config (random weights)")
    parser.add_argument("--dim", type=int, default=1408, help="feature size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", default=None, help="a trained run: chunked against one-pass accuracy on its test")
    parser.add_argument("--quick", action="store_true", help="two short lengths (for the tests)")
    args = parser.parse_args(argv)
    costs = []
    for steps in QUICK_LENGTHS if args.quick else LENGTHS:
        costs.append(measure_cost(args.config, steps, args.dim, args.threads))
        print(json.dumps(costs[-1]))
    document = {PROVENANCE_KEY: provenance(["python", "benchmarks/cost_curves.py", *argv], threads=args.threads),
                "config": args.config, "feature_dim": args.dim, "costs": costs}
    if args.run:
        document["chunking_accuracy"] = chunking_accuracy(args.run)
        print(json.dumps(document["chunking_accuracy"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1) + "\n")
    lines = ["| steps | hours at 7 steps/s | chunked | detect (s) | s per 1k steps | peak RSS growth (MiB) | "
             "features (MiB) |", "|---|---|---|---|---|---|---|"]
    for c in costs:
        lines.append(f"| {c['steps']} | {c['steps'] / 7 / 3600:.2f} | {'yes' if c['chunked'] else 'no'} | "
                     f"{c['seconds']:.2f} | {1000 * c['seconds'] / c['steps']:.3f} | "
                     f"{c['peak_growth_bytes'] / 2**20:.0f} | {c['features_bytes'] / 2**20:.0f} |")
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")
    write_plot(costs, args.json.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
