"""The `mgrec` command: one sub-command per job; each parses, calls one function, prints.

User errors (`InputError`) are printed as one message without a traceback (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mgrec.allocator import keep_freed_cpu_memory
from mgrec.errors import InputError

DEFAULT_DEMO_CONFIG = "demo/mgrec.yaml"  # shipped in the package: src/mgrec/configs/demo/mgrec.yaml


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: with spinning, one other busy process on a
    # 2-core machine made a training step 50x slower (measured: 32 s instead of 0.6 s).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_cpu_memory()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return args.run(args) or 0
    except InputError as exc:
        print(f"mgrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mgrec: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgrec", description="Micro-gesture online recognition toolkit.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    sub = parser.add_subparsers(metavar="COMMAND")

    data = sub.add_parser("data", help="convert and check datasets").add_subparsers(metavar="ACTION")
    p = data.add_parser("convert", help="SMG label folders -> annotations JSON")
    p.add_argument("smg_root", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fps", type=float, help="fps when a sample has no SampleXXXX_data.csv")
    p.add_argument("--splits", default="train=1-30,val=31-35,test=36-40", help="subject numbers per subset")
    p.set_defaults(run=cmd_data_convert)
    p = data.add_parser("check", help="report every problem in a config's data, and suggest settings")
    p.add_argument("config", type=Path)
    p.add_argument("--augment", action="store_true", help="also print the class histogram before/after augmentation")
    _add_set(p)
    p.set_defaults(run=cmd_data_check)

    p = sub.add_parser("train", help="train a detector")
    p.add_argument("config", type=Path)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    p.add_argument("--no-progress", action="store_true")
    _add_set(p)
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("evaluate", help="score a run on a split (writes RUN_DIR/eval_<split>.json)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--tune-on", default=None, help="re-tune the F1 score threshold on this split (e.g. val)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("score", help="score a predictions file against annotations")
    p.add_argument("--gt", type=Path, required=True, help="annotations JSON")
    p.add_argument("--pred", type=Path, required=True, help="predictions JSON, or a folder of SMG-style CSVs")
    p.add_argument("--split", default="test")
    p.add_argument("--tune-on", default=None, help="choose the score threshold that maximises F1 on this split")
    p.add_argument("--score-threshold", type=float, default=0.0, help="used without --tune-on")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(run=cmd_score)

    p = sub.add_parser("detect", help="detect micro-gestures in feature files (or videos)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("inputs", nargs="+", type=Path, help="feature files or folders of them")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=["json", "csv", "smg"], default="json")
    p.add_argument("--all", action="store_true", help="write the ranked list instead of the hard set")
    p.set_defaults(run=cmd_detect)

    p = sub.add_parser("stream", help="online recognition of a live feature stream (JSON lines)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("input", type=Path, help="feature file (or video, extracted first) replayed as a stream")
    p.add_argument("--lookahead", type=float, default=2.0, help="seconds after a gesture's end before it is final")
    p.add_argument("--realtime", action="store_true", help="replay at the video's rate instead of as fast as possible")
    p.add_argument("--hop", type=int, default=None, help="feature steps per update (default: about 1 s)")
    p.add_argument("--history", type=int, default=None,
                   help="feature steps of the window the network sees (default: data.max_seq_len // 8)")
    p.add_argument("--compile", action="store_true",
                   help="compile the network for the window first (torch.compile; about a minute, needs g++): "
                        "about half the compute per update")
    p.set_defaults(run=cmd_stream)

    p = sub.add_parser("extract", help="video files (or SMG skeleton CSVs) -> per-window features + sidecars")
    p.add_argument("inputs", nargs="*", type=Path, help="video files or folders (skeleton: *_skeleton.csv)")
    p.add_argument("--out", type=Path, required=True, help="features folder")
    p.add_argument("--backbone", default="efficientnet-lite0", help="efficientnet-lite0 | videomae | skeleton")
    p.add_argument("--weights", type=Path, default=None, help="videomae: a Hugging Face format folder")
    p.add_argument("--window", type=int, default=16)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--size", type=int, default=None, help="frame size (default: the backbone's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--fps", type=float, default=None, help="skeleton CSVs without a _data.csv")
    p.add_argument("--fuse", nargs="+", type=Path, default=None, metavar="DIR",
                   help="instead of extracting: concatenate these feature folders (same videos) into --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=cmd_extract)

    p = sub.add_parser("convert-videomae", help="official VideoMAE V2 checkpoint -> Hugging Face format folder")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--heads", type=int, default=None, help="attention heads (inferred for known sizes)")
    p.set_defaults(run=cmd_convert_videomae)

    p = sub.add_parser("analyze", help="error analysis figures (false negatives/positives, sensitivity)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--annotations", type=Path, default=None, help="instead of the run config's data.annotations")
    p.set_defaults(run=cmd_analyze)

    p = sub.add_parser("report", help="one self-contained HTML report of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--split", default="test")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--annotations", type=Path, default=None, help="instead of the run config's data.annotations")
    p.set_defaults(run=cmd_report)

    p = sub.add_parser("demo", help="build the real-motion demo data, train, evaluate and report")
    p.add_argument("--out", type=Path, default=Path("runs/demo-mgrec"))
    p.add_argument("--config", default=DEFAULT_DEMO_CONFIG,
                   help="a YAML file, or the name of a shipped config (demo/dyfadet.yaml, ...) "
                        "when no such file exists")
    p.add_argument("--cache", type=Path, default=None, help="where the demo data is built")
    p.add_argument("--fresh", action="store_true", help="delete an existing run directory first")
    _add_set(p)
    p.set_defaults(run=cmd_demo)
    return parser


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=3e-4 (repeatable)")


def cmd_data_convert(args) -> None:
    from mgrec.data.annotations import parse_subject_ranges, read_smg_labels, save_annotations
    from mgrec.files import check_writable

    check_writable(args.out)
    annotations = read_smg_labels(args.smg_root, fps=args.fps, splits=parse_subject_ranges(args.splits))
    save_annotations(annotations, args.out)
    counts = {s: len(annotations.video_ids(s)) for s in annotations.subsets()}
    total = sum(len(v) for v in annotations.segments.values())
    print(f"wrote {args.out}: {total} instances in {len(annotations.videos)} videos {counts}")


def cmd_data_check(args) -> int:
    from mgrec.config import load_config
    from mgrec.data.check import check_dataset

    report = check_dataset(load_config(args.config, args.overrides), augment=args.augment)
    print(report.format())
    return 1 if report.errors else 0


def cmd_train(args) -> None:
    from mgrec.config import load_config
    from mgrec.train.loop import train

    result = train(load_config(args.config, args.overrides), args.out, resume=args.resume,
                   progress=not args.no_progress, inputs=[Path(args.config)])
    print(f"finished in {result.seconds:.0f} s; selected epoch {result.best_epoch} on val: "
          f"{json.dumps(result.best_metrics)}")
    print(f"run directory: {result.run_dir}")


def cmd_evaluate(args) -> None:
    from mgrec.evaluate.scoring import format_score_table
    from mgrec.infer.evaluate_run import evaluate_run
    from mgrec.run import RunDir

    result = evaluate_run(args.run_dir, split=args.split, tune_on=args.tune_on, checkpoint=args.checkpoint)
    print(format_score_table(result))
    print(f"wrote {RunDir(args.run_dir).eval_path(args.split, args.checkpoint)}")


def cmd_score(args) -> None:
    from mgrec.data.annotations import load_annotations
    from mgrec.evaluate.f1 import tune_score_threshold
    from mgrec.evaluate.predictions import load_predictions
    from mgrec.evaluate.scoring import format_score_table, score

    annotations = load_annotations(args.gt)
    fps = {v: info.fps for v, info in annotations.videos.items()}
    predictions = load_predictions(args.pred, annotations.classes, fps_by_video=fps)
    unknown = sorted(set(predictions) - set(annotations.videos))
    if unknown:
        raise InputError(
            f"{args.pred}: predictions for {len(unknown)} video(s) not in {args.gt}: {', '.join(unknown[:10])}"
        )

    def split_of(name: str):
        ids = annotations.video_ids(name)
        if not ids:
            raise InputError(f"{args.gt}: no videos in split {name!r} (splits: {', '.join(annotations.subsets())})")
        if not any(v in predictions for v in ids):
            # Scoring (or tuning on) a split the file does not cover would silently count every
            # gesture as missed, and tune the threshold to 0.
            raise InputError(
                f"no predictions for split {name} in {args.pred} (it covers "
                f"{len(predictions)} video(s), none of the {len(ids)} of split {name!r})"
            )
        return {v: annotations.segments.get(v, []) for v in ids}, {v: predictions.get(v, []) for v in ids}

    threshold = args.score_threshold
    if args.tune_on:
        tune_gt, tune_pred = split_of(args.tune_on)
        threshold = tune_score_threshold(tune_gt, tune_pred)
    gt, pred = split_of(args.split)
    result = score(gt, pred, annotations.classes, threshold, split=args.split)
    print(json.dumps(result, indent=1) if args.json else format_score_table(result))


def features_for(run_dir: Path, inputs: list, scratch: Path) -> list[Path]:
    """Feature inputs as they are; recorded videos turned into features with the run's recipe first."""
    from mgrec.extract.run import extract_with_recipe, is_video

    videos = [Path(p) for p in inputs if is_video(p)]
    others = [Path(p) for p in inputs if not is_video(p)]
    return others + (extract_with_recipe(run_dir, videos, scratch) if videos else [])


def cmd_detect(args) -> None:
    import tempfile

    from mgrec.files import check_writable
    from mgrec.infer.detect import detect_files

    check_writable(args.out, is_dir=args.format == "smg")  # before any extraction: fail early
    with tempfile.TemporaryDirectory(prefix="mgrec-features-") as scratch:
        inputs = features_for(args.run_dir, args.inputs, Path(scratch))
        written = detect_files(args.run_dir, inputs, args.out, fmt=args.format, ranked=args.all)
    print(f"wrote {written}")


def cmd_stream(args) -> None:
    import tempfile

    from mgrec.infer.online import stream_file

    with tempfile.TemporaryDirectory(prefix="mgrec-features-") as scratch:
        (source,) = features_for(args.run_dir, [args.input], Path(scratch))
        stream_file(
            args.run_dir,
            source,
            lookahead=args.lookahead,
            realtime=args.realtime,
            hop=args.hop,
            history=args.history,
            threads=args.threads or 1,  # small updates are fastest on one thread
            compile=args.compile,
        )


def cmd_extract(args) -> None:
    from mgrec.extract.run import extract, fuse_features

    if args.fuse:
        if args.inputs:
            raise InputError("--fuse takes feature folders; give no other inputs")
        for fused in fuse_features(args.fuse, args.out):
            print(f"{fused.feature_path}: {fused.num_features} steps (inputs {fused.input_lengths})")
        return
    if not args.inputs:
        raise InputError("no inputs: give video files or folders")
    results = extract(
        args.inputs,
        args.out,
        backbone=args.backbone,
        weights=args.weights,
        window=args.window,
        stride=args.stride,
        size=args.size,
        device=args.device,
        batch=args.batch,
        fps=args.fps,
        progress=not args.no_progress,
    )
    for result in results:
        print(f"{result.status}: {result.source} -> {result.feature_path} ({result.num_features} windows)")
        for warning in result.warnings:
            print(f"  warning: {warning}")


def cmd_convert_videomae(args) -> None:
    from mgrec.extract.videomae_convert import convert_videomae_v2

    overrides = {"num_attention_heads": args.heads} if args.heads else None
    print(f"wrote {convert_videomae_v2(args.checkpoint, args.out, overrides)}")


def cmd_analyze(args) -> None:
    from mgrec.report.html import analyze_run

    for path in analyze_run(args.run_dir, split=args.split, annotations=args.annotations):
        print(path)


def cmd_report(args) -> None:
    from mgrec.report.html import write_report

    print(f"report: {write_report(args.run_dir, split=args.split, out=args.out, annotations=args.annotations)}")


def cmd_demo(args) -> None:
    """The main job on a fresh machine: real-motion demo data -> check -> train -> test scores -> report."""
    import shutil

    from mgrec.config import load_config
    from mgrec.data.check import check_dataset
    from mgrec.data.demo import build_demo, default_cache_dir, demo_statistics, format_statistics
    from mgrec.evaluate.scoring import format_score_table
    from mgrec.infer.evaluate_run import evaluate_run
    from mgrec.report.html import write_report
    from mgrec.run import RunDir
    from mgrec.train.loop import train

    paths = build_demo(args.cache or default_cache_dir())
    print(f"demo data: {paths.root}")
    print(format_statistics(demo_statistics(paths.root)))
    overrides = [*paths.overrides(), *args.overrides]
    config = load_config(args.config, overrides)
    report = check_dataset(config, augment=config.data.augment_alpha is not None)
    print(report.format())
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    resume = RunDir(args.out).can_resume()
    result = train(config, args.out, resume=resume)
    print(f"trained in {result.seconds:.0f} s; selected epoch {result.best_epoch} on val")
    scores = evaluate_run(args.out, split=config.data.test_split)
    print(format_score_table(scores))
    print(f"report: {write_report(args.out, split=config.data.test_split)}")


if __name__ == "__main__":
    sys.exit(main())
