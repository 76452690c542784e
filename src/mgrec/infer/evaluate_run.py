"""`mgrec evaluate`: a run's detections on one split, scored, written next to the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mgrec.data.annotations import load_annotations
from mgrec.data.streams import load_video_streams
from mgrec.errors import InputError
from mgrec.evaluate.f1 import tune_score_threshold
from mgrec.evaluate.predictions import save_predictions
from mgrec.evaluate.scoring import score
from mgrec.infer.detect import predictions_info
from mgrec.infer.offline import LONG_VIDEO_CHUNKING, OfflineDetector
from mgrec.model.fusion import GatedFusionEncoder
from mgrec.model.inputs import pad_video
from mgrec.provenance import provenance
from mgrec.records import Detection
from mgrec.run import RunDir


def detect_split(detector: OfflineDetector, split: str, progress: bool = False
                 ) -> tuple[dict[str, list[Detection]], dict]:
    """Ranked detections for every video of `split` of the run's annotations, and its ground truth.

    `progress`: a bar over the videos (on stderr)."""
    data = detector.config.data
    annotations = load_annotations(data.annotations)
    video_ids = annotations.video_ids(split)
    if not video_ids:
        raise InputError(
            f"{data.annotations}: no videos in split {split!r} (splits: {', '.join(annotations.subsets())})"
        )
    ranked = {}
    for video_id in tqdm(video_ids, desc=split, unit="video", disable=not progress, leave=False):
        features = load_video_streams(data, video_id, annotations.videos[video_id].fps,
                                      folders=detector.stream_folders)
        ranked[video_id] = detector.detect(features, video_id=video_id, fps=annotations.videos[video_id].fps)
    ground_truth = {v: annotations.segments.get(v, []) for v in video_ids}
    return ranked, ground_truth


def fusion_gates(detector: OfflineDetector, split: str) -> dict | None:
    """Where the auxiliary streams of a gated run were let in: the mean gate g of level 0
    (`mgrec.model.fusion`; averaged over channels and auxiliary streams) over the feature steps inside
    each class's ground-truth instances of `split`, and over the steps outside every instance. None for
    a run without gated fusion. Videos longer than one detection pass are left out (and counted)."""
    model, data = detector.model, detector.config.data
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, GatedFusionEncoder):
        return None
    annotations = load_annotations(data.annotations)
    totals, counts = np.zeros(len(detector.classes) + 1), np.zeros(len(detector.classes) + 1)  # last: background
    videos, skipped = 0, 0
    device = next(model.parameters()).device
    encoder.record_gates = True
    try:
        for video_id in annotations.video_ids(split):
            info = annotations.videos[video_id]
            features = load_video_streams(data, video_id, info.fps, folders=detector.stream_folders)
            if len(features) > LONG_VIDEO_CHUNKING.steps:
                skipped += 1
                continue
            x, mask = pad_video(features.astype(np.float32, copy=False), model.max_div_factor)
            with torch.no_grad():
                model(x.to(device), mask.to(device))
            gate = encoder.last_gates[0][0, : len(features)].float().cpu().numpy()
            grid = detector.grid(info.fps)
            inside = np.zeros(len(features), dtype=bool)
            for segment in annotations.segments.get(video_id, []):
                first, last = grid.seconds_to_index(segment.start), grid.seconds_to_index(segment.end)
                steps = slice(max(0, int(np.ceil(first))), max(0, int(np.floor(last)) + 1))
                totals[segment.label_id] += gate[steps].sum()
                counts[segment.label_id] += len(gate[steps])
                inside[steps] = True
            totals[-1] += gate[~inside].sum()
            counts[-1] += int((~inside).sum())
            videos += 1
    finally:
        encoder.record_gates = False
    means = [float(t / c) if c else None for t, c in zip(totals, counts)]
    return {"level": 0, "streams": [s.name for s in data.input_streams()[1:]],
            "per_class": dict(zip(detector.classes, means[:-1])), "background": means[-1],
            "videos": videos, "skipped_long_videos": skipped}


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    tune_on: str | None = None,
    checkpoint: str = "best",
    device: str = "auto",
    progress: bool = False,
    precision: str = "auto",
) -> dict:
    """Score the run on `split`; the F1 threshold is the one tuned on val at training, or re-tuned on `tune_on`.

    Writes RUN_DIR/eval_<split>.json (the keys of `mgrec score --json`, plus the checkpoint and the
    split the threshold was tuned on) and detections_<split>.json; for `checkpoint="last"`,
    eval_<split>_last.json and detections_<split>_last.json. `device`: auto, cpu, cuda or cuda:N;
    `progress`: a bar over the videos (on stderr). `precision`: auto, fp32 or bf16 (`OfflineDetector.from_run`);
    the one used is recorded in both files (key `inference_precision`: "fp32" or "bf16"; `precision` is F1's).
    """
    run = RunDir(run_dir)
    detector = OfflineDetector.from_run(run.path, checkpoint=checkpoint, device=device, precision=precision)
    threshold, tuned_on = detector.postprocess.score_threshold, detector.threshold_tuned_on
    if tune_on is not None:
        if tune_on == split:
            raise InputError(f"--tune-on {tune_on} is the split being scored; tune on another split (e.g. val)")
        tune_ranked, tune_gt = detect_split(detector, tune_on, progress)
        threshold, tuned_on = tune_score_threshold(tune_gt, tune_ranked), tune_on
    ranked, ground_truth = detect_split(detector, split, progress)
    result = score(ground_truth, ranked, detector.classes, threshold, split=split)
    gates = fusion_gates(detector, split)
    if gates is not None:
        result["fusion_gates"] = gates
    command = ["mgrec", "evaluate", str(run.path), "--split", split, "--checkpoint", checkpoint]
    command += ["--tune-on", tune_on] if tune_on else []
    command += ["--precision", precision]
    result.update({"checkpoint": checkpoint, "threshold_tuned_on": tuned_on, "run": str(run.path),
                   "inference_precision": detector.precision, "provenance": provenance(command)})
    run.write_eval(split, result, checkpoint)
    info = {**predictions_info(detector, ranked=True, threshold=threshold, tuned_on=tuned_on),
            "split": split, "provenance": result["provenance"]}
    save_predictions(ranked, run.detections_path(split, checkpoint), info=info)
    return result
