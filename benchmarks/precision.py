"""float32 against bf16 inference (`--precision`, issue #20): agreement and scores on a trained run, and speed.

    CAMPAIGN=benchmarks/results/$(python -m mgrec.provenance precision)    # YYYY-MM-DD_<commit>_precision
    python benchmarks/precision.py --run runs/demo-mgrec --threads 2 --json $CAMPAIGN/precision.json
    python benchmarks/precision.py --quick --json /tmp/precision.json      # tiny sizes (the tests)

Two parts, both written to one JSON (with the provenance record of `mgrec.provenance.provenance`):

- `agreement` (with `--run`): the run's `--split` detected twice, `OfflineDetector.from_run(...,
  precision="fp32")` and `precision="bf16"` (bf16 autocast forced, also where it is emulated), then
  `mgrec.infer.agreement.compare` on the ranked lists and on the hard sets (score >= the run's tuned
  threshold): counts, the fraction of fp32 detections with a partner within one feature step, score
  differences, each against `agreement.TOLERANCES`; and F1 / average mAP of each precision
  (`evaluate.scoring.score`, as `mgrec evaluate` scores).
- `speed`: one video of random features through `postprocess.video.detect_video` (network, decoding,
  Soft-NMS: what `infer_s_*` of speed.py times) for each config and length, fp32 and bf16 interleaved
  (fp32, bf16, fp32, bf16, ...) so that the load of other processes falls on both alike; after one
  untimed call of each, the median of `--repeats` calls, the bf16/fp32 ratio, and for the SMG config
  the ratio to the released DyFADet's recorded figure (`speed.py`'s `ANCHORS`, same machine type,
  same setting).

Run it with `OMP_WAIT_POLICY=PASSIVE` (as the `mgrec` command line sets it) on a machine that other
processes share: with OpenMP's default, spinning threads made fp32 inference 20x slower while one other
process held a core. The policy and the load average at the start and the end are recorded.

Whether this CPU has native bf16 (`mgrec.devices.native_bf16_cpu`) and what `--precision auto` picks
here are recorded too: without native bf16 (AVX512-BF16 or AMX) torch emulates bf16 and convolutions
fall back to a slow generic kernel, so the bf16 timings there show the cost of forcing it, not a speed-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mgrec.allocator import keep_freed_cpu_memory
from mgrec.config import load_config
from mgrec.data.annotations import load_annotations
from mgrec.devices import autocast_dtype, native_bf16_cpu, precision_name
from mgrec.evaluate.f1 import hard_set
from mgrec.evaluate.scoring import score
from mgrec.infer.agreement import TOLERANCES, compare
from mgrec.infer.evaluate_run import detect_split
from mgrec.infer.offline import OfflineDetector
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import detect_video
from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("demo/mgrec.yaml", "smg/mgrec.yaml")
LENGTHS = (2304, 6912)  # the SMG setting of speed.py: a training crop and a video 3x as long
PRECISIONS = ("fp32", "bf16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16}
ANCHOR_KEYS = {2304: "infer_s_2304", 6912: "infer_s_6912"}  # speed.py's keys of the released DyFADet
# --quick: a 16-channel model of the demo settings and short videos, one timed call each
QUICK_MODEL = ["model.embed_dim=16", "model.mlp_dim=32", "model.head_dim=16"]
QUICK_LENGTHS = (64, 192)


def speed_anchors() -> tuple[str, dict]:
    """The released DyFADet's recorded figures (`ANCHORS` of benchmarks/speed.py, its `RATIO_BASE`)."""
    spec = importlib.util.spec_from_file_location("benchmark_speed", REPO / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RATIO_BASE, module.ANCHORS[module.RATIO_BASE]


# -- agreement and scores on a trained run ----------------------------------------------------


def measure_agreement(run_dir: Path, split: str) -> dict:
    detectors = {p: OfflineDetector.from_run(run_dir, device="cpu", precision=p) for p in PRECISIONS}
    ranked, seconds, ground_truth = {}, {}, {}
    for name, detector in detectors.items():
        started = time.perf_counter()
        ranked[name], ground_truth = detect_split(detector, split)
        seconds[name] = time.perf_counter() - started
    reference = detectors["fp32"]
    threshold, class_thresholds = reference.postprocess.score_threshold, reference.postprocess.class_thresholds
    videos = load_annotations(reference.config.data.annotations).videos
    step = {v: reference.grid(videos[v].fps).seconds_per_step() for v in ground_truth}  # as detect_split's grids
    hard = {name: {v: hard_set(d, threshold, class_thresholds) for v, d in lists.items()}
            for name, lists in ranked.items()}
    result = {"run": str(run_dir), "split": split, "videos": len(ground_truth), "score_threshold": threshold,
              "class_thresholds": class_thresholds,
              "tolerances": {"count_fraction": TOLERANCES.count_fraction,
                             "unmatched_fraction": TOLERANCES.unmatched_fraction, "score": TOLERANCES.score},
              "detect_split_s": seconds}
    for name, (ref, other) in {"ranked": (ranked["fp32"], ranked["bf16"]),
                               "hard": (hard["fp32"], hard["bf16"])}.items():
        agreement = compare(ref, other, step)
        result[f"{name}_agreement"] = {**agreement.to_json(), "problems": agreement.problems()}
    result["scores"] = {}
    for name, lists in ranked.items():
        scores = score(ground_truth, lists, reference.classes, threshold, split=split,
                       class_thresholds=class_thresholds)
        result["scores"][name] = {key: scores[key] for key in ("f1", "f1_miga", "average_mAP", "num_predictions")
                                  if key in scores}
    f1 = {name: s["f1"] for name, s in result["scores"].items()}
    mean_ap = {name: s["average_mAP"] for name, s in result["scores"].items()}
    result["f1_difference_points"] = 100 * (f1["bf16"] - f1["fp32"])
    result["average_mAP_difference_points"] = 100 * (mean_ap["bf16"] - mean_ap["fp32"])
    return result


# -- speed ------------------------------------------------------------------------------------


def measure_speed(config_name: str, length: int, repeats: int, overrides: list[str]) -> dict:
    config = load_config(config_name, overrides)
    torch.manual_seed(0)
    model = build_detector(config.model).eval()
    features = np.random.default_rng(length).standard_normal((length, config.model.input_dim), dtype=np.float32)
    grid = config.data.grid(30.0)  # data.fps where set; random features have no video of their own
    classes = [f"class{k}" for k in range(config.model.num_classes)]

    def run(precision: str) -> float:
        started = time.perf_counter()
        detect_video(model, features, grid, config.postprocess, classes, "benchmark", autocast=DTYPES[precision])
        return time.perf_counter() - started

    for precision in PRECISIONS:  # warm-up: lazy initialisation, allocator, caches
        run(precision)
    samples = {p: [] for p in PRECISIONS}
    for _ in range(repeats):
        for precision in PRECISIONS:  # interleaved: other load on the machine falls on both alike
            samples[precision].append(run(precision))
    medians = {p: statistics.median(samples[p]) for p in PRECISIONS}
    return {"config": config_name, "length": length, "samples_s": samples, "median_s": medians,
            "bf16_over_fp32": medians["bf16"] / medians["fp32"]}


def with_anchor_ratios(row: dict, anchors: dict) -> dict:
    key = ANCHOR_KEYS.get(row["length"])
    if not row["config"].startswith("smg/") or key not in anchors:
        return row
    return {**row, "dyfadet_release_s": anchors[key],
            "ratio_to_dyfadet_release": {p: row["median_s"][p] / anchors[key] for p in PRECISIONS}}


# -- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="a trained run, for the agreement (default: none)")
    parser.add_argument("--split", default="test", help="the run's split to detect (default test)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per precision, interleaved (default 5)")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="configs timed (default: %(default)s)")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS), help="video lengths in steps")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for the tests: a 16-channel demo model, lengths 64 and 192, one call each")
    parser.add_argument("--json", type=Path, default=None,
                        help="result file (default: benchmarks/results/<date>_<commit>_precision/precision.json)")
    args = parser.parse_args(argv)
    keep_freed_cpu_memory()  # as the mgrec command line does
    torch.set_num_threads(args.threads)
    record = provenance(["python", "benchmarks/precision.py", *(sys.argv[1:] if argv is None else argv)],
                        threads=args.threads)
    out = args.json or REPO / "benchmarks" / "results" / campaign_name("precision", record) / "precision.json"
    configs, lengths, repeats, overrides = args.configs, args.lengths, args.repeats, []
    if args.quick:
        configs, lengths, repeats, overrides = ["demo/mgrec.yaml"], list(QUICK_LENGTHS), 1, QUICK_MODEL

    document: dict = {PROVENANCE_KEY: record, "native_bf16_cpu": native_bf16_cpu(),
                      "auto_precision_cpu": precision_name(autocast_dtype(torch.device("cpu"), "auto")),
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average_at_start": os.getloadavg()}
    if args.run is not None:
        document["agreement"] = measure_agreement(args.run, args.split)
        print(json.dumps(document["agreement"]), flush=True)
    base, anchors = speed_anchors()
    document["speed_anchor"] = base
    document["speed"] = []
    for config_name in configs:
        for length in lengths:
            row = with_anchor_ratios(measure_speed(config_name, length, repeats, overrides), anchors)
            document["speed"].append(row)
            print(json.dumps(row), flush=True)
    document["load_average_at_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
