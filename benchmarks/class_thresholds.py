"""Per-class score thresholds (issue #14, item 5): do they beat the one global threshold on test?

    python benchmarks/class_thresholds.py --ablation benchmarks/results/<campaign>/ablation.json

For every run of an ablation/quality campaign: the ranked detections of its val and test splits
(EMA weights of the selected checkpoint, fp32); the global threshold is the run's own, tuned on val
by training; the per-class thresholds are tuned on val too (`mgrec.evaluate.f1.tune_class_thresholds`,
coordinate ascent on the pooled strict F1, shrunk toward the global threshold with k = --shrinkage,
fixed beforehand, not chosen on test). Both are then applied to test. Writes
`class_thresholds.json` (per run, and mean ± std per row) next to the campaign's ablation.json unless
--json says otherwise, with the provenance record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from mgrec.data.annotations import load_annotations
from mgrec.evaluate.f1 import apply_score_threshold, f1_strict, tune_class_thresholds
from mgrec.infer.offline import OfflineDetector
from mgrec.provenance import PROVENANCE_KEY, provenance
from mgrec.train.data import load_split

SHRINKAGE = 10.0  # a class needs 10 val instances before its own threshold counts half


def ranked_detections(detector: OfflineDetector, split: str):
    """Ground truth and ranked detections of every video of `split` of the run's annotations."""
    config = detector.config
    data = load_split(config, load_annotations(config.data.annotations), split)
    ranked = {s.video_id: detector.detect_inputs(s.features, s.video_id, fps=s.grid.fps) for s in data.samples}
    return data.ground_truth, ranked


def measure_run(run_dir: str, shrinkage: float) -> dict:
    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    config, classes = detector.config, detector.classes
    val_gt, val_ranked = ranked_detections(detector, config.data.val_split)
    test_gt, test_ranked = ranked_detections(detector, config.data.test_split)
    glob = detector.postprocess.score_threshold
    per_class = tune_class_thresholds(val_gt, val_ranked, len(classes), glob, shrinkage)

    def f1(gt, ranked, thresholds):
        return f1_strict(gt, apply_score_threshold(ranked, glob, thresholds)).overall.f1

    return {
        "run_dir": run_dir,
        "global_threshold": glob,
        "class_thresholds": dict(zip(classes, per_class)),
        "val_f1": {"global": f1(val_gt, val_ranked, None), "per_class": f1(val_gt, val_ranked, per_class)},
        "test_f1": {"global": f1(test_gt, test_ranked, None), "per_class": f1(test_gt, test_ranked, per_class)},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ablation", type=Path, required=True, help="ablation.json of a campaign (its runs)")
    parser.add_argument("--shrinkage", type=float, default=SHRINKAGE, help=f"k (default {SHRINKAGE:g})")
    parser.add_argument("--json", type=Path, default=None, help="result file (default: beside --ablation)")
    args = parser.parse_args(argv)
    campaign = json.loads(args.ablation.read_text(encoding="utf-8"))
    results = []
    for run in campaign["runs"]:
        results.append({"row": run.get("row", run["config"]), "seed": run["seed"],
                        **measure_run(run["run_dir"], args.shrinkage)})
        r = results[-1]
        print(f"{r['row']} seed {r['seed']}: test F1 global {100 * r['test_f1']['global']:.2f} "
              f"per-class {100 * r['test_f1']['per_class']:.2f}")
    rows = {}
    for r in results:
        rows.setdefault(r["row"], []).append(r)
    summary = {}
    for row, group in rows.items():
        summary[row] = {}
        for split in ("val_f1", "test_f1"):
            for kind in ("global", "per_class"):
                values = [100 * r[split][kind] for r in group]
                summary[row][f"{split}_{kind}"] = [statistics.fmean(values),
                                                  statistics.stdev(values) if len(values) > 1 else None]
        print(f"{row}: test F1 global {summary[row]['test_f1_global'][0]:.2f}, per-class "
              f"{summary[row]['test_f1_per_class'][0]:.2f} (mean over {len(group)} seeds)")
    out = args.json or args.ablation.with_name("class_thresholds.json")
    document = {PROVENANCE_KEY: provenance(["python", "benchmarks/class_thresholds.py", *argv], threads=None),
                "shrinkage": args.shrinkage, "summary": summary, "runs": results}
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
