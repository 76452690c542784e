"""Load test: `mgrec detect` over many feature files, and `mgrec stream` over a 10-hour stream.

    python benchmarks/load.py                       # 1000 files, a 10-hour stream, 1 s hops (hours on a CPU)
    python benchmarks/load.py --hop 125             # the same stream with 10 s hops (10x fewer updates)
    python benchmarks/load.py --hours 1 --files 200

What it measures, with the demo model size (src/mgrec/configs/demo/mgrec.yaml: 128-d features at 50 fps,
stride 4, so 12.5 feature steps per second) and random-init weights (the speed and memory of a
network do not depend on what it learned; the score threshold is calibrated so that post-processing
keeps about as many detections per second as the demo has gestures, see `calibrated_threshold`):

1. Offline: `mgrec detect RUN FOLDER --out detections.json` over `--files` feature files of
   `--steps` steps each, run as a child process: files/s, feature steps/s and the child's peak
   resident memory (`getrusage(RUSAGE_CHILDREN).ru_maxrss`).
2. Online: a synthetic feature stream of `--hours` hours pushed through `OnlineDetector` in a
   child process, one hop of features per push, generated on the fly (the whole stream never exists
   in memory). The child reads its peak resident memory (VmHWM in /proc/self/status) after every
   stream hour: flat from the first hour on means memory is bounded. Also the time per update and
   how many times faster than real time the stream was processed. The memory bound does not depend
   on the hop; the running time is proportional to the number of updates (hours * 3600 / hop seconds).

Everything runs with `--threads` torch threads (default 1; the machine is shared). Results go to
`--json` (default `benchmarks/results/YYYY-MM-DD_<commit>_load/load.json`, this campaign's folder, see
benchmarks/results/README.md), with the provenance record of `mgrec.provenance.provenance` under
"provenance".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mgrec.config import load_config
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import detect_video
from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance
from mgrec.run import RunDir
from mgrec.timeline import FeatureGrid

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "src" / "mgrec" / "configs" / "demo" / "mgrec.yaml"
RESULTS = REPO / "benchmarks" / "results"
SECONDS_PER_HOUR = 3600.0
# Random-init scores all sit near the class prior, so a fixed threshold keeps either nothing or
# thousands of detections. The threshold is set instead so that about as many detections per second
# remain as the demo has gestures (~25 in an 82 s crop): post-processing then does realistic work.
DETECTIONS_PER_SECOND = 0.3


def build_run(run_dir: Path, seed: int = 0) -> dict:
    """A run directory with the demo model size and random-init weights; returns the data settings
    and the calibrated score threshold."""
    config = replace(load_config(DEMO_CONFIG), name="load-benchmark")
    torch.manual_seed(seed)
    model = build_detector(config.model).eval()
    classes = [f"class{k}" for k in range(config.model.num_classes)]
    data = config.data
    grid = data.grid(None)
    threshold = calibrated_threshold(model, config.postprocess, grid, classes, data.feature_dim, seed)
    RunDir(run_dir).write_for_inference(config, classes, model, score_threshold=threshold)
    return {"fps": data.fps, "stride": data.stride, "window": data.window, "dim": data.feature_dim,
            "score_threshold": threshold}


def calibrated_threshold(model, post, grid: FeatureGrid, classes: list[str], dim: int, seed: int) -> float:
    """The score of the k-th best detection in one training-length window, k = DETECTIONS_PER_SECOND * seconds."""
    steps = 2 * 1024
    features = synthetic_features(np.random.default_rng(seed), steps, dim)
    ranked = detect_video(model, features, grid, post, classes, "calibration")
    wanted = max(1, round(DETECTIONS_PER_SECOND * grid.covered_seconds(steps)))
    return float(ranked[min(wanted, len(ranked)) - 1].score)


def synthetic_features(rng: np.random.Generator, steps: int, dim: int) -> np.ndarray:
    """Bounded features like the demo's (tanh of a projection), float32."""
    return np.tanh(rng.standard_normal((steps, dim), dtype=np.float32))


def write_feature_files(folder: Path, count: int, steps: int, data: dict, seed: int = 1) -> int:
    """`count` feature files of `steps` steps with sidecars; returns the bytes written."""
    rng = np.random.default_rng(seed)
    frames = (steps - 1) * data["stride"] + data["window"]
    sidecar = FeatureSidecar(fps=data["fps"], stride=data["stride"], window=data["window"], backbone="load-benchmark",
                             dim=data["dim"], frames=frames)
    for index in range(count):
        write_features(folder / f"video{index:05d}.npy", synthetic_features(rng, steps, data["dim"]), sidecar)
    return sum(p.stat().st_size for p in folder.iterdir())


def child_env(threads: int) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def measure_detect(run_dir: Path, features: Path, out: Path, files: int, steps: int, threads: int) -> dict:
    """`mgrec detect` as a child process: wall time, throughput and its peak RSS."""
    command = [sys.executable, "-m", "mgrec.cli", "detect", str(run_dir), str(features), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, env=child_env(threads), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"mgrec detect failed ({done.returncode}):\n{done.stderr[-3000:]}")
    # ru_maxrss (KiB on Linux) is the largest of the waited-for children: only this one so far.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = json.loads(out.read_text(encoding="utf-8"))["results"]
    return {
        "files": files,
        "steps_per_file": steps,
        "seconds": round(seconds, 2),
        "files_per_second": round(files / seconds, 2),
        "steps_per_second": round(files * steps / seconds, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "videos_in_output": len(results),
        "detections_written": sum(len(v) for v in results.values()),
    }


def memory_mib() -> dict:
    """Current (VmRSS) and peak (VmHWM) resident memory of this process, in MiB."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return {"rss_mib": values["VmRSS"], "peak_rss_mib": values["VmHWM"]}


def stream_worker(run_dir: Path, hours: float, hop: int | None, threads: int, seed: int) -> dict:
    """Push `hours` of synthetic features through OnlineDetector, one hop per push (as a live source
    delivers them, so every push is one update); memory after every stream hour."""
    from mgrec.infer.offline import OfflineDetector
    from mgrec.infer.online import OnlineDetector

    torch.set_num_threads(threads)
    detector = OfflineDetector.from_run(run_dir, device="cpu")
    data = detector.config.data
    online = OnlineDetector(detector, data.fps, lookahead=2.0, hop=hop)
    steps_per_hour = round(SECONDS_PER_HOUR / online.grid.seconds_per_step())
    total_steps = round(hours * steps_per_hour)
    rng = np.random.default_rng(seed)
    per_hour, emitted, pushed, update_seconds = [], 0, 0, []
    next_report = min(steps_per_hour, total_steps)
    started = time.perf_counter()
    while pushed < total_steps:
        size = min(online.hop, total_steps - pushed)
        chunk = synthetic_features(rng, size, data.feature_dim)
        push_started = time.perf_counter()
        emitted += len(online.push(chunk))
        update_seconds.append(time.perf_counter() - push_started)
        pushed += size
        if pushed >= next_report:
            per_hour.append({
                "stream_hours": round(pushed / steps_per_hour, 3),
                "wall_seconds": round(time.perf_counter() - started, 1),
                "updates": online.num_updates,
                "emitted": emitted,
                "buffered_steps": online.buffered_steps,
                "tracked_detections": online.tracked_detections,
                **memory_mib(),
            })
            print(json.dumps(per_hour[-1]), file=sys.stderr, flush=True)
            next_report = min(next_report + steps_per_hour, total_steps)
    emitted += len(online.flush())
    seconds = time.perf_counter() - started
    update_ms = 1000.0 * np.array(update_seconds)
    return {
        "hours": hours,
        "steps": total_steps,
        "hop_steps": online.hop,
        "history_steps": online.history,
        "lookahead_s": online.lookahead,
        "seconds": round(seconds, 1),
        "updates": online.num_updates,
        "updates_per_second": round(online.num_updates / seconds, 2),
        "update_ms_median": round(float(np.median(update_ms)), 1),
        "update_ms_p99": round(float(np.percentile(update_ms, 99)), 1),
        "times_real_time": round(hours * SECONDS_PER_HOUR / seconds, 2),
        "emitted": emitted,
        "emitted_per_stream_second": round(emitted / (hours * SECONDS_PER_HOUR), 3),
        "per_hour": per_hour,
    }


def measure_stream(run_dir: Path, hours: float, hop: int | None, threads: int) -> dict:
    """`stream_worker` in a child process, so that its memory is its own."""
    command = [sys.executable, __file__, "--stream-worker", str(run_dir), "--hours", str(hours),
               "--threads", str(threads)] + (["--hop", str(hop)] if hop else [])
    done = subprocess.run(command, env=child_env(threads), stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"stream worker failed ({done.returncode})")
    return json.loads(done.stdout)


def pick_hours(per_hour: list[dict], wanted: tuple[float, ...]) -> dict:
    """Peak RSS at the stream hours asked for (those the stream reached)."""
    by_hour = {round(c["stream_hours"], 3): c for c in per_hour}
    return {f"{h:g}h": by_hour[h]["peak_rss_mib"] for h in wanted if h in by_hour}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="feature files for mgrec detect")
    parser.add_argument("--steps", type=int, default=256, help="feature steps per file (256 = 20 s of demo video)")
    parser.add_argument("--hours", type=float, default=10.0, help="length of the stream")
    parser.add_argument("--hop", type=int, default=None,
                        help="feature steps per update (default: the detector's, about 1 s); one push per update")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the results (default: benchmarks/results/<date>_<commit>_load/load.json)")
    parser.add_argument("--work-dir", type=Path, default=None, help="kept afterwards (default: a temporary folder)")
    parser.add_argument("--skip-detect", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--stream-worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.stream_worker is not None:
        print(json.dumps(stream_worker(args.stream_worker, args.hours, args.hop, args.threads, seed=2)))
        return

    record = provenance(["python", "benchmarks/load.py", *argv], threads=args.threads)
    out = args.json or RESULTS / campaign_name("load", record) / "load.json"
    with tempfile.TemporaryDirectory(prefix="mgrec-load-") as temporary:
        work = args.work_dir or Path(temporary)
        run_dir = work / "run"
        data = build_run(run_dir)
        result = {
            "arguments": {"files": args.files, "steps": args.steps, "hours": args.hours, "hop": args.hop,
                          "threads": args.threads},
            PROVENANCE_KEY: record,
            "model": "src/mgrec/configs/demo/mgrec.yaml (random-init weights)",
            "score_threshold": data["score_threshold"],
        }
        if not args.skip_detect:
            features = work / "features"
            features.mkdir(parents=True, exist_ok=True)
            written = write_feature_files(features, args.files, args.steps, data)
            print(f"wrote {args.files} feature files ({written / 2**20:.0f} MiB); running mgrec detect", flush=True)
            result["detect"] = measure_detect(run_dir, features, work / "detections.json", args.files, args.steps,
                                              args.threads)
            print(json.dumps(result["detect"]), flush=True)
        if not args.skip_stream:
            print(f"streaming {args.hours:g} h of features", flush=True)
            stream = measure_stream(run_dir, args.hours, args.hop, args.threads)
            stream["peak_rss_mib_at"] = pick_hours(stream["per_hour"], (1.0, 5.0, 10.0))
            result["stream"] = stream
            print(json.dumps({k: v for k, v in stream.items() if k != "per_hour"}), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
