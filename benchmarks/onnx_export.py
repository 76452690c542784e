"""A run's exported ONNX network against the run itself: same detections on a split, and the network's time.

    python benchmarks/onnx_export.py RUN_DIR --json benchmarks/results/<campaign>/onnx_export.json
        [--split test] [--lengths 128 2304] [--threads 1]

Exports RUN_DIR's network (`mgrec export`, timed), detects every video of the split with the run and with the
file run by onnxruntime in its place (`OnnxNetwork`, the run's own post-processing around it), and counts the
detections of each, those with the same class and frames, and the largest score difference. Then times the
network alone, PyTorch eager against onnxruntime, on random features of each length (median of repeats).

Writes the JSON (with the provenance record) and prints a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from mgrec.infer.evaluate_run import detect_split
from mgrec.infer.export import OnnxNetwork, export_onnx
from mgrec.infer.offline import OfflineDetector
from mgrec.provenance import PROVENANCE_KEY, provenance


def same_detections(expected: dict, found: dict) -> dict:
    """Detections of both, per video; those of the same (class, start frame, end frame) in both counted, and the
    largest score difference between such pairs."""
    counts = {"run": 0, "onnx": 0, "same_class_and_frames": 0, "largest_score_difference": 0.0}
    for video, ranked in expected.items():
        own, other = ({(d.label, d.start_frame, d.end_frame): d.score for d in detections}
                      for detections in (ranked, found[video]))
        counts["run"] += len(ranked)
        counts["onnx"] += len(found[video])
        same = own.keys() & other.keys()
        counts["same_class_and_frames"] += len(same)
        counts["largest_score_difference"] = max([counts["largest_score_difference"],
                                                  *(abs(own[key] - other[key]) for key in same)])
    return counts


def median_ms(call, repeats: int) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 2304])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        record = export_onnx(args.run_dir, Path(folder) / "net.onnx")
        print(record.describe())
        own = OfflineDetector.from_run(args.run_dir, device="cpu", precision="fp32")
        onnx_network = OnnxNetwork(record.onnx_path, threads=args.threads)
        through_onnx = dataclasses.replace(own, model=onnx_network)
        expected, ground_truth = detect_split(own, args.split)
        found, _ = detect_split(through_onnx, args.split)
        counts = same_detections(expected, found)
        counts["videos"] = len(ground_truth)
        megabytes = record.onnx_path.stat().st_size / 2**20

        network = own.model.eval()
        timings = []
        for length in args.lengths:
            features = torch.randn(1, network.input_dim, length)
            mask = torch.ones(1, 1, length, dtype=torch.bool)
            repeats = max(5, 4000 // length)
            with torch.inference_mode():
                timings.append({"length": length,
                                "pytorch_ms": median_ms(lambda: network(features, mask), repeats),
                                "onnxruntime_ms": median_ms(lambda: onnx_network(features, mask), repeats)})
    result = {
        "run_dir": str(args.run_dir), "split": args.split, "threads": args.threads,
        "export_seconds": record.seconds, "checked_lengths": record.checked_lengths,
        "largest_difference_at_check": record.largest_difference,
        "onnx_megabytes": megabytes, "detections": counts, "network_times": timings,
        PROVENANCE_KEY: provenance(sys.argv, threads=args.threads),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"detections": counts, "network_times": timings}, indent=2))


if __name__ == "__main__":
    main()
