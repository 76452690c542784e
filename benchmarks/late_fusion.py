"""Detection-level ensembles of runs that differ (issue #14): per seed, the runs of two or more campaign rows
fused by `mgrec ensemble --fusion detections`, scored on test beside each member alone.

    python benchmarks/late_fusion.py --members QUALITY/ablation.json:default TABLE2/ablation.json:actionformer \
        --seeds 0 1 2 --json benchmarks/results/<campaign>/late_fusion.json

A member is `ABLATION_JSON:ROW`: the run of that row (a Table 2 campaign's rows are its configs) and seed in
an earlier `benchmarks/ablation.py` campaign, whose run folder must still exist; nothing is trained. Every
member and every ensemble is evaluated on the test split here, with this code (fp32), the ensemble's F1
score threshold tuned on val as `mgrec ensemble` does. Writes the JSON (per seed and mean ± std) and a
Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.fused_ensemble import make_fused_ensemble
from mgrec.provenance import PROVENANCE_KEY, provenance
from mgrec.run import RunDir

REPO = Path(__file__).resolve().parents[1]
KEYS = ("f1", "f1_miga", "average_mAP")


def member_run(spec: str, seed: int) -> tuple[str, Path, list[str]]:
    """`ABLATION_JSON:ROW` -> (row, the run folder of that row and seed, the campaign's rarest third)."""
    path, _, row = spec.rpartition(":")
    campaign = json.loads(Path(path).read_text(encoding="utf-8"))
    for record in campaign["runs"]:
        if (record.get("row") or record["config"]) == row and record["seed"] == seed:
            return row, Path(record["run_dir"]), campaign.get("rarest_third", [])
    raise SystemExit(f"{path}: no run of row {row!r} with seed {seed}")


def scores(run_dir: Path, rare: list[str]) -> dict:
    result = evaluate_run(run_dir, "test", device="cpu", precision="fp32")
    out = {key: result[key] for key in KEYS}
    if rare:
        # a rare class without test instances that nothing was detected as has no F1 (null): left out of the mean
        values = [result["per_class"][name]["f1"] for name in rare if result["per_class"][name]["f1"] is not None]
        out["rarest_third_f1"] = statistics.fmean(values) if values else None
    return out


def mean_std(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.2f}" if len(values) < 2 else f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", nargs="+", required=True, metavar="ABLATION_JSON:ROW")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, default=REPO / "runs" / "late_fusion")
    args = parser.parse_args(argv)

    rows: dict[str, list[dict]] = {}
    fused_name = " + ".join(spec.rpartition(":")[2] for spec in args.members) + ", detections fused"
    for seed in args.seeds:
        members = [member_run(spec, seed) for spec in args.members]
        rare = members[0][2]
        for row, run_dir, _ in members:
            rows.setdefault(row, []).append({"seed": seed, "run_dir": str(run_dir), **scores(run_dir, rare)})
        out = args.scratch / f"{'-'.join(row for row, *_ in members)}-seed{seed}"
        if not RunDir(out).format_path.exists():
            make_fused_ensemble([run_dir for _, run_dir, _ in members], out, log=lambda *_: None)
        val = RunDir(out).read_tuning()["val_scores"]
        rows.setdefault(fused_name, []).append({"seed": seed, "run_dir": str(out), "val_f1": val["f1"],
                                                **scores(out, rare)})
        print(json.dumps({name: runs[-1] for name, runs in rows.items()}), flush=True)

    command = ["python", "benchmarks/late_fusion.py", "--members", *args.members, "--seeds",
               *map(str, args.seeds), "--json", str(args.json)]
    result = {"members": args.members, "rows": rows, PROVENANCE_KEY: provenance(command)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    lines = ["| row | seeds | test F1 (%) | test F1 MiGA (%) | test average mAP (%) | test F1, rarest third (%) |",
             "|---|---|---|---|---|---|"]
    for name, runs in rows.items():
        rare = [r["rarest_third_f1"] for r in runs if "rarest_third_f1" in r]
        lines.append(f"| {name} | {', '.join(str(r['seed']) for r in runs)} | "
                     + " | ".join(mean_std([r[key] for r in runs]) for key in KEYS)
                     + f" | {mean_std(rare) if rare else '–'} |")
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
