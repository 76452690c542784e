"""Online versus offline detection of a trained run: F1, latency after a gesture's end, compute per update.

    python benchmarks/online_eval.py runs/demo-mgrec --split test --json $CAMPAIGN/online_eval_test.json

CAMPAIGN is the campaign's folder, `benchmarks/results/YYYY-MM-DD_<commit>_online-test`, whose name
`python -m mgrec.provenance online-test` prints (benchmarks/results/README.md). The JSON holds the
provenance record of `mgrec.provenance.provenance` under "provenance".

Every video of the split is replayed as a stream, as fast as possible, one hop of features per push
(so every push is one update), once per lookahead (default 0.5, 1, 2 and 4 s) and per window length
(`--history`, default the detector's, data.max_seq_len // 8). The online emissions of a video form its
hard set; offline, the hard set comes from one pass over the whole file. Both are scored with the
strict one-to-one F1 and the MiGA starter-kit F1 (tIoU > 0.3).

Latency is the stream time between a gesture's end and its emission, over the emissions made while
streaming; those made by the final flush (end of the file, no lookahead left) are only counted. Compute
is the wall time of one update (network, post-processing, emission rule) on this machine's CPU, with
`--threads` torch threads (default 1: small models run fastest on one thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgrec.data.annotations import load_annotations
from mgrec.data.features import feature_path, load_features
from mgrec.errors import InputError
from mgrec.evaluate.f1 import f1_miga, f1_strict
from mgrec.infer.export import OnnxNetwork
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.infer.stream import chunks_of
from mgrec.provenance import PROVENANCE_KEY, provenance, read_provenance
from mgrec.records import Detection, Segment

F1_TIOU = 0.3
DEFAULT_LOOKAHEADS = (0.5, 1.0, 2.0, 4.0)


@dataclass
class Video:
    video_id: str
    features: np.ndarray  # (T, C) float32
    fps: float
    ground_truth: list[Segment]


def load_split(
    detector: OfflineDetector, split: str, annotations_path: str | None, features_dir: str | None
) -> list[Video]:
    """The videos of `split` with features and ground truth (paths default to the run's config)."""
    data = detector.config.data
    annotations_path = annotations_path or data.annotations
    features_dir = features_dir or data.features
    annotations = load_annotations(annotations_path)
    video_ids = annotations.video_ids(split)
    if not video_ids:
        splits = ", ".join(annotations.subsets())
        raise InputError(f"{annotations_path}: no videos in split {split!r} (splits: {splits})")
    return [
        Video(
            video_id,
            load_features(feature_path(features_dir, video_id, data.feature_ext), expected_dim=data.feature_dim),
            annotations.videos[video_id].fps,
            annotations.segments.get(video_id, []),
        )
        for video_id in video_ids
    ]


def scores(videos: list[Video], hard: dict[str, list[Detection]]) -> dict:
    ground_truth = {v.video_id: v.ground_truth for v in videos}
    strict = f1_strict(ground_truth, hard, F1_TIOU).overall
    miga = f1_miga(ground_truth, hard, F1_TIOU)
    return {
        "f1": strict.f1,
        "precision": strict.precision,
        "recall": strict.recall,
        "f1_miga": miga.f1,
        "num_predictions": strict.num_pred,
        "num_ground_truth": strict.num_gt,
    }


def evaluate_offline(detector: OfflineDetector, videos: list[Video]) -> dict:
    hard, seconds = {}, []
    for video in videos:
        started = time.perf_counter()
        hard[video.video_id] = detector.hard_set(detector.detect(video.features, video.video_id, video.fps))
        seconds.append(time.perf_counter() - started)
    return {**scores(videos, hard), "compute_ms_per_video": 1000.0 * float(np.median(seconds))}


def evaluate_online(
    detector: OfflineDetector,
    videos: list[Video],
    lookahead: float,
    hop: int | None,
    history: int | None,
    compile: bool = False,
) -> dict:
    hard: dict[str, list[Detection]] = {}
    latencies, flush_latencies, compute_ms = [], [], []
    last = None
    for video in videos:
        online = OnlineDetector(
            detector, video.fps, lookahead=lookahead, hop=hop, history=history, video_id=video.video_id, compile=compile
        )
        last = online
        emitted = []
        for chunk in chunks_of(video.features, online.hop):
            updates_before = online.num_updates
            emissions = online.push(chunk)
            if online.num_updates > updates_before:
                compute_ms.append(online.last_compute_ms)
            latencies += [e.latency for e in emissions]
            emitted += emissions
        final = online.flush()
        flush_latencies += [e.latency for e in final]
        emitted += final
        hard[video.video_id] = [e.detection for e in emitted]
    return {
        "lookahead": lookahead,
        "hop": last.hop,
        "history": last.history,
        **scores(videos, hard),
        "latency_median": _percentile(latencies, 50),
        "latency_p95": _percentile(latencies, 95),
        "emitted_while_streaming": len(latencies),
        "emitted_at_flush": len(flush_latencies),
        "updates": len(compute_ms),
        "compute_ms_median": _percentile(compute_ms, 50),
        "compute_ms_p95": _percentile(compute_ms, 95),
    }


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def format_table(result: dict) -> str:
    def cell(value, digits=3):
        return "-" if value is None else f"{value:.{digits}f}"

    off = result["offline"]
    lines = [
        f"run {result['run_dir']}, split {result['split']}: {result['num_videos']} videos, "
        f"{off['num_ground_truth']} gestures; CPU, {read_provenance(result)['threads']} torch thread(s)"
        + (", compiled online network" if result["compiled_online_network"] else "")
        + (", online network in onnxruntime" if result.get("onnx_online_network") else ""),
        f"{'mode':<8} {'history':>7} {'hop':>4} {'lookahead':>9} {'F1':>6} {'F1 MiGA':>7} {'#pred':>6} "
        f"{'lat p50':>7} {'lat p95':>7} {'ms p50':>7} {'ms p95':>7}",
        f"{'offline':<8} {'-':>7} {'-':>4} {'-':>9} {cell(off['f1']):>6} {cell(off['f1_miga']):>7} "
        f"{off['num_predictions']:>6} {'-':>7} {'-':>7} {cell(off['compute_ms_per_video'], 1):>7} {'(video)':>7}",
    ]
    for row in result["online"]:
        lines.append(
            f"{'online':<8} {row['history']:>7} {row['hop']:>4} {row['lookahead']:>9g} {cell(row['f1']):>6} "
            f"{cell(row['f1_miga']):>7} {row['num_predictions']:>6} {cell(row['latency_median'], 2):>7} "
            f"{cell(row['latency_p95'], 2):>7} {cell(row['compute_ms_median'], 1):>7} "
            f"{cell(row['compute_ms_p95'], 1):>7}"
        )
    lines.append("lat: seconds from a gesture's end to its emission while streaming; ms: compute per update")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--annotations", default=None, help="default: the run's data.annotations")
    parser.add_argument("--features", default=None, help="default: the run's data.features")
    parser.add_argument("--lookaheads", type=float, nargs="+", default=list(DEFAULT_LOOKAHEADS))
    parser.add_argument("--hop", type=int, default=None, help="feature steps per update (default: about 1 s)")
    parser.add_argument(
        "--history",
        type=int,
        nargs="+",
        default=[None],
        help="window length(s) in feature steps (default: the detector's, data.max_seq_len // 8)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--compile", action="store_true", help="online detection with the compiled network")
    parser.add_argument("--onnx", type=Path, default=None,
                        help="online detection with this file of `mgrec export RUN` in onnxruntime (offline: PyTorch)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    detector = OfflineDetector.from_run(args.run_dir, checkpoint=args.checkpoint, device="cpu")
    videos = load_split(detector, args.split, args.annotations, args.features)
    offline = evaluate_offline(detector, videos)
    if args.onnx is not None and args.compile:
        parser.error("--onnx runs the exported network in onnxruntime; --compile compiles the PyTorch one: give one")
    if args.onnx is not None:  # the stream's network, as `mgrec stream --onnx` runs it
        online_detector = dataclasses.replace(
            detector, model=OnnxNetwork.for_detector(args.onnx, detector, threads=args.threads))
    else:
        online_detector = detector
    result = {
        "run_dir": str(args.run_dir),
        "split": args.split,
        "num_videos": len(videos),
        "compiled_online_network": args.compile,
        "onnx_online_network": None if args.onnx is None else str(args.onnx),
        PROVENANCE_KEY: provenance(["python", "benchmarks/online_eval.py", *argv], threads=args.threads, device="cpu"),
        "score_threshold": detector.postprocess.score_threshold,
        "class_thresholds": detector.postprocess.class_thresholds,
        "offline": offline,
        "online": [
            evaluate_online(online_detector, videos, lookahead, args.hop, history, args.compile)
            for history in args.history
            for lookahead in args.lookaheads
        ],
    }
    print(format_table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    try:
        main()
    except InputError as exc:
        sys.exit(f"error: {exc}")
