"""Scoring at scale: `mgrec score --gt ANNO.json --pred ranked.json` on ranked lists of 10^5 and 10^6 detections.

    python benchmarks/score_scale.py                                  # 10^5 and 10^6 detections, the demo's test split
    python benchmarks/score_scale.py --sizes 100000 --repeats 3
    python benchmarks/score_scale.py --baseline-src /tmp/old/src      # and the same files scored by another tree

ActivityNet-style submissions hold a ranked list of every candidate: up to a million detections. The script writes
a synthetic ranked list of each `--sizes` detections over the videos of `--split` of `--gt` (default: the demo's
annotations, `mgrec data demo`), as `mgrec detect --all` writes one (`save_predictions`: segments in seconds and
frames, float32 scores drawn at random, an `mgrec` block recording the set `ranked` and `--recorded-threshold`, the
bar `score` then cuts the hard set at), spread evenly over the videos, classes drawn at random. Each file is scored
by `mgrec score --gt GT --pred FILE --split SPLIT --json [--score-args]` in a child process with one thread
(OMP_NUM_THREADS=1), `--repeats` times: the wall seconds and CPU seconds (user + system, `os.wait4`'s rusage) of
that child, and its peak resident memory as the child reads it at exit (VmHWM in /proc/self/status; `RUN_MGREC` runs
`python -m mgrec` so). Not rusage's ru_maxrss: a child forked from this process starts with this process's
high-water mark, which holds the ranked list it wrote (2.5 GB for a million detections), and every run read as that.
With `--baseline-src`, each run is followed by the same command with that source tree first on PYTHONPATH (a
checkout of an earlier commit: `git worktree add /tmp/old COMMIT`), and the two outputs are compared byte for byte
(`same_scores`). Wall seconds depend on what else the machine runs; CPU seconds less so.

Results go to `--json` (default `benchmarks/results/YYYY-MM-DD_<commit>_score-scale/score_scale.json`), with the
provenance record of `mgrec.provenance.provenance` under "provenance".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mgrec.data.annotations import load_annotations
from mgrec.data.demo import default_cache_dir
from mgrec.evaluate.predictions import save_predictions
from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance
from mgrec.records import Detection

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
LONGEST_S = 5.0  # detections last 0.2 to 5 s, as micro-gestures do
# `python -m mgrec ...` that writes its peak resident memory (kB) to the file named by $SCORE_SCALE_PEAK at exit
RUN_MGREC = """import atexit, os, runpy, sys
def peak():
    with open('/proc/self/status') as status:
        kb = next(line.split()[1] for line in status if line.startswith('VmHWM:'))
    with open(os.environ['SCORE_SCALE_PEAK'], 'w') as out:
        out.write(kb)
atexit.register(peak)
sys.argv[0] = 'mgrec'
runpy.run_module('mgrec', run_name='__main__', alter_sys=True)
"""


def write_ranked_list(gt: Path, split: str, size: int, path: Path, threshold: float, seed: int = 0) -> int:
    """A ranked list of `size` detections over the videos of `split` of `gt`, written to `path`; returns its bytes."""
    annotations = load_annotations(gt)
    videos = annotations.split_video_ids(split, gt)
    rng = np.random.default_rng(seed)
    results = {}
    for index, video in enumerate(videos):
        info = annotations.videos[video]
        count = size // len(videos) + (index < size % len(videos))
        start = np.floor(rng.uniform(0, max(info.duration - LONGEST_S, 1.0), count) * info.fps).astype(np.int64)
        end = start + np.maximum(1, np.round(rng.uniform(0.2, LONGEST_S, count) * info.fps)).astype(np.int64)
        labels = rng.integers(0, len(annotations.classes), count)
        scores = rng.random(count, dtype=np.float32).astype(np.float64)  # float32 scores tie, as a network's do
        results[video] = [
            Detection(video, int(start[j]) / info.fps, int(end[j]) / info.fps, int(labels[j]),
                      annotations.classes[labels[j]], float(scores[j]), int(start[j]), int(end[j]))
            for j in np.argsort(-scores, kind="stable").tolist()  # ranked, as `mgrec detect --all` writes them
        ]
    save_predictions(results, path, info={"set": "ranked", "score_threshold": threshold, "class_thresholds": None})
    return path.stat().st_size


def score_once(gt: Path, pred: Path, split: str, score_args: list[str], src: Path) -> dict:
    """`python -m mgrec score` of `pred` with `src` first on PYTHONPATH, one thread: its seconds, peak memory and
    output."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    command = [sys.executable, "-c", RUN_MGREC, "score", "--gt", str(gt), "--pred", str(pred), "--split", split,
               "--json", *score_args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as folder:
        env["SCORE_SCALE_PEAK"] = peak_file = os.path.join(folder, "peak_kb")
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read().decode(errors="replace")
        if child.returncode != 0:
            raise SystemExit(f"mgrec score --pred {pred} failed ({child.returncode}):\n{stderr}")
        peak_kb = int(Path(peak_file).read_text())
    return {"wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "peak_rss_mb": round(peak_kb / 1024, 1),
            "output_sha256": hashlib.sha256(stdout).hexdigest(), "notes": stderr.count("note: ")}


def summary(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in ("wall_s", "cpu_s", "peak_rss_mb")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt", type=Path, default=default_cache_dir() / "annotations.json",
                        help="annotations JSON (default: the demo's, `mgrec data demo`)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--recorded-threshold", type=float, default=0.4,
                        help="the score threshold the ranked list records (the demo run's is 0.396)")
    parser.add_argument("--score-args", default="", help="more options of `mgrec score`, e.g. '--tune-on val'")
    parser.add_argument("--baseline-src", type=Path, help="another source tree (its src/), scored after each run")
    parser.add_argument("--workdir", type=Path, help="where the ranked lists are written (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="results file (default: this campaign's folder)")
    args = parser.parse_args(argv)
    record = provenance(["python", "benchmarks/score_scale.py", *(sys.argv[1:] if argv is None else argv)], threads=1)
    out = args.json or RESULTS / campaign_name("score-scale", record) / "score_scale.json"
    sources = {"this": REPO / "src", **({"baseline": args.baseline_src} if args.baseline_src else {})}
    result = {"gt": str(args.gt), "split": args.split, "recorded_threshold": args.recorded_threshold,
              "score_args": args.score_args,
              "baseline_src": None if args.baseline_src is None else str(args.baseline_src),
              "sizes": {}, PROVENANCE_KEY: record}
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        for size in args.sizes:
            pred = Path(folder) / f"ranked_{size}.json"
            file_bytes = write_ranked_list(args.gt, args.split, size, pred, args.recorded_threshold)
            runs = {name: [] for name in sources}
            for _ in range(args.repeats):
                for name, src in sources.items():  # interleaved: a busy spell of the machine falls on both
                    runs[name].append(score_once(args.gt, pred, args.split, args.score_args.split(), src))
                    print(f"{size} detections, {name}: {runs[name][-1]}", file=sys.stderr)
            pred.unlink()
            result["sizes"][str(size)] = {
                "file_mb": round(file_bytes / 2**20, 1), "runs": runs,
                "median": {name: summary(name_runs) for name, name_runs in runs.items()},
                "same_scores": len({run["output_sha256"] for name_runs in runs.values() for run in name_runs}) == 1,
            }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({size: entry["median"] for size, entry in result["sizes"].items()}, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
