"""How far choices after training move trained runs' F1 (issue #14): NMS, threshold, checkpoint, shifted passes.

    python benchmarks/after_training.py --ablation benchmarks/results/<campaign>/ablation.json --rows batch1

Nothing is retrained. For every run of the chosen rows of an ablation/quality campaign (EMA weights of
the selected checkpoint, fp32, one thread), the ranked detections of val and test are made again under
each variant, the score threshold is tuned on val (as training does) and applied to test:
- `nms`: class-wise Soft-NMS with sigma in NMS_SIGMAS, hard NMS at the tIoUs in NMS_IOUS (the run's own
  setting is Soft-NMS, sigma 0.5);
- `oracle_threshold`: the run's own detections with the threshold tuned on test itself, an upper
  bound of what any threshold rule on val could give;
- `last_checkpoint`: the last epoch's weights instead of the epoch selected on val (the same when the
  last epoch was selected), threshold tuned on val;
- `val_crossfit`: the two checkpoint rules compared on val alone. For every split of the val videos into
  two halves A and B (all of them; sizes differ by at most one): `select` keeps whichever of the
  selected and the last checkpoint has the higher F1 on A, `last` keeps the last; both tune the
  threshold on A and are scored on B. Mean F1 on B over the splits. (Epochs other than these two are not
  kept by training, so `select` chooses between two.)
- `shifts`: the video's features shifted by 0..S-1 steps (the first s steps dropped, detections moved
  back by s steps), each pass's detections alone, and all passes fused at the detection level
  (`mgrec.postprocess.fusion.fuse_detections`, as `mgrec ensemble --fusion detections`): the pyramid's
  stride-2 levels see another phase of the video in each pass.
- `across_classes_tiou_X`: those fused passes (the demo default's own setting), then one gesture at a
  time: going down the ranked list, a detection is dropped when a higher one of another class that was
  kept overlaps it by a tIoU >= X (`suppressed_across_classes`). On the demo most errors are one
  exercise taken for another at a true gesture; this asks whether dropping the weaker class helps.
Writes `after_training.json` (per run, and mean ± sample std per row and variant) beside the
campaign's ablation.json unless --json says otherwise, with the provenance record.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import sys
from pathlib import Path

import torch

from mgrec.data.annotations import load_annotations
from mgrec.evaluate.f1 import apply_score_threshold, f1_strict, tune_score_threshold
from mgrec.evaluate.matching import tiou
from mgrec.infer.offline import OfflineDetector
from mgrec.postprocess.fusion import fuse_detections
from mgrec.postprocess.video import moved_detection
from mgrec.provenance import PROVENANCE_KEY, provenance
from mgrec.records import Detection
from mgrec.train.data import load_split

NMS_SIGMAS = (0.1, 0.25, 0.5, 1.0)
NMS_IOUS = (0.3, 0.5, 0.7)
ACROSS_CLASS_IOUS = (0.1, 0.3, 0.5, 0.7)


def shifted_detections(detector: OfflineDetector, split: str, shift: int):
    """Ground truth and ranked detections of `split`, each video's features shifted by `shift` steps."""
    config = detector.config
    data = load_split(config, load_annotations(config.data.annotations), split)
    ranked = {}
    for sample in data.samples:
        ranked[sample.video_id] = [
            moved_detection(d, shift * sample.grid.stride, sample.grid)
            for d in detector.detect_inputs(sample.features[shift:], sample.video_id, fps=sample.grid.fps)
        ]
    return data.ground_truth, ranked


def suppressed_across_classes(ranked: list[Detection], iou_threshold: float) -> list[Detection]:
    """A ranked list with every detection dropped that overlaps a kept, higher-ranked one of another class
    by a tIoU >= `iou_threshold` (greedy, from the top; same-class overlaps are left to NMS). Dropping depends
    only on higher detections, so a score threshold applied after it keeps what it would keep applied before."""
    kept: list[Detection] = []
    for detection in ranked:
        if not any(k.label_id != detection.label_id and tiou(k.start, k.end, detection.start, detection.end)
                   >= iou_threshold for k in kept):
            kept.append(detection)
    return kept


def val_tuned(val: tuple[dict, dict], test: tuple[dict, dict]) -> dict:
    """Val and test strict F1 at the threshold tuned on val."""
    threshold = tune_score_threshold(*val)
    return {split: f1_strict(gt, apply_score_threshold(ranked, threshold)).overall.f1
            for split, (gt, ranked) in (("val", val), ("test", test))}


def crossfit(val_gt: dict, selected: dict, last: dict) -> dict:
    """Mean F1 on half B of val of the rules `select` and `last`, over every split of val into halves."""
    def sub(mapping: dict, ids) -> dict:
        return {v: mapping[v] for v in ids}

    ids = sorted(val_gt)
    totals = {"select": [], "last": []}
    for half_a in itertools.combinations(ids, len(ids) // 2):
        half_b = [v for v in ids if v not in half_a]
        on_b = {}
        for name, ranked in (("selected", selected), ("last", last)):
            threshold = tune_score_threshold(sub(val_gt, half_a), sub(ranked, half_a))
            on_b[name] = tuple(f1_strict(sub(val_gt, half), apply_score_threshold(sub(ranked, half), threshold))
                               .overall.f1 for half in (half_a, half_b))
        totals["select"].append(on_b["selected"][1] if on_b["selected"][0] > on_b["last"][0] else on_b["last"][1])
        totals["last"].append(on_b["last"][1])
    return {name: statistics.fmean(values) for name, values in totals.items()}


def measure_run(run_dir: str, shifts: int) -> dict:
    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    val_split, test_split = detector.config.data.val_split, detector.config.data.test_split
    own = detector.postprocess
    variants = {}
    for name, change in [*((f"soft_nms_sigma_{s:g}", {"nms": "soft", "sigma": s}) for s in NMS_SIGMAS),
                         *((f"hard_nms_tiou_{t:g}", {"nms": "hard", "iou_threshold": t}) for t in NMS_IOUS)]:
        detector.postprocess = dataclasses.replace(own, **change)
        variants[name] = val_tuned(shifted_detections(detector, val_split, 0),
                                   shifted_detections(detector, test_split, 0))
    detector.postprocess = own
    passes = {s: (shifted_detections(detector, val_split, s), shifted_detections(detector, test_split, s))
              for s in range(shifts)}
    for s, (val, test) in passes.items():
        variants[f"shift_{s}"] = val_tuned(val, test)
    test_gt, test_ranked = passes[0][1]
    variants["oracle_threshold"] = {
        "val": variants["shift_0"]["val"],
        "test": f1_strict(test_gt, apply_score_threshold(test_ranked, tune_score_threshold(test_gt, test_ranked)))
        .overall.f1}

    last = OfflineDetector.from_run(run_dir, checkpoint="last", device="cpu", precision="fp32")
    last_val, last_test = shifted_detections(last, val_split, 0), shifted_detections(last, test_split, 0)
    variants["last_checkpoint"] = val_tuned(last_val, last_test)
    crossfit_f1 = crossfit(passes[0][0][0], passes[0][0][1], last_val[1])

    def fused(index: int) -> tuple[dict, dict[str, list[Detection]]]:
        gt = passes[0][index][0]
        return gt, {v: fuse_detections([passes[s][index][1][v] for s in passes]) for v in gt}

    variants[f"shifts_0_to_{shifts - 1}_fused"] = val_tuned(fused(0), fused(1))
    for iou in ACROSS_CLASS_IOUS:
        val, test = (((gt, {v: suppressed_across_classes(r, iou) for v, r in ranked.items()}))
                     for gt, ranked in (fused(0), fused(1)))
        variants[f"across_classes_tiou_{iou:g}"] = val_tuned(val, test)
    return {"run_dir": run_dir, "f1": variants, "val_crossfit": crossfit_f1}


def summarise(results: list[dict]) -> dict:
    """Per row and variant: [mean, sample std] of val and test F1 in percent."""
    rows: dict[str, list[dict]] = {}
    for r in results:
        rows.setdefault(r["row"], []).append(r)
    summary = {}
    for row, group in rows.items():
        summary[row] = {}
        for variant in group[0]["f1"]:
            summary[row][variant] = {}
            for split in ("val", "test"):
                values = [100 * r["f1"][variant][split] for r in group]
                summary[row][variant][split] = [statistics.fmean(values),
                                                statistics.stdev(values) if len(values) > 1 else None]
        for rule in ("select", "last"):
            values = [100 * r["val_crossfit"][rule] for r in group]
            summary[row][f"val_crossfit_{rule}"] = [statistics.fmean(values),
                                                     statistics.stdev(values) if len(values) > 1 else None]
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ablation", type=Path, required=True, help="ablation.json of a campaign (its runs)")
    parser.add_argument("--rows", nargs="+", default=None, help="rows of the campaign to measure (default: all)")
    parser.add_argument("--shifts", type=int, default=4, help="shifted passes 0..S-1 (default 4)")
    parser.add_argument("--json", type=Path, default=None, help="result file (default: beside --ablation)")
    args = parser.parse_args(argv)
    if args.shifts < 1:
        parser.error("--shifts must be at least 1")
    torch.set_num_threads(1)
    campaign = json.loads(args.ablation.read_text(encoding="utf-8"))
    runs = [r for r in campaign["runs"] if args.rows is None or r.get("row", r["config"]) in args.rows]
    if not runs:
        parser.error(f"{args.ablation}: no runs of rows {args.rows}")
    results = []
    for run in runs:
        results.append({"row": run.get("row", run["config"]), "seed": run["seed"],
                        **measure_run(run["run_dir"], args.shifts)})
        print(f"{results[-1]['row']} seed {run['seed']}: " + ", ".join(
            f"{name} {100 * f1['test']:.2f}" for name, f1 in results[-1]["f1"].items()), flush=True)
    summary = summarise(results)
    for row, variants in summary.items():
        for name, f1 in variants.items():
            if name.startswith("val_crossfit"):
                print(f"{row:12s} {name:24s} half B of val {f1[0]:.2f} ± {f1[1] or 0:.2f}")
                continue
            print(f"{row:12s} {name:24s} val {f1['val'][0]:.2f} ± {f1['val'][1] or 0:.2f}   "
                  f"test {f1['test'][0]:.2f} ± {f1['test'][1] or 0:.2f}")
    out = args.json or args.ablation.with_name("after_training.json")
    document = {PROVENANCE_KEY: provenance(["python", "benchmarks/after_training.py", *argv], threads=1),
                "shifts": args.shifts, "summary": summary, "runs": results}
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
