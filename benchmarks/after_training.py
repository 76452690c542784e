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
- `averaged_checkpoints`: the mean of the selected and the last checkpoint's weights (both EMA weights),
  threshold tuned on val: a weight average of two points of one training (the same as the run when the
  last epoch was selected), asked of for seed spread at no training cost;
- `val_crossfit`: the two checkpoint rules compared on val alone. For every split of the val videos into
  two halves A and B (all of them; sizes differ by at most one): `select` keeps whichever of the
  selected and the last checkpoint has the higher F1 on A, `last` keeps the last; both tune the
  threshold on A and are scored on B. Mean F1 on B over the splits. (Epochs other than these two are not
  kept by training, so `select` chooses between two.)
- `shifts`: the video's features shifted by 0..S-1 steps (the first s steps dropped, detections moved
  back by s steps), each detected with the run's own setting (`shift_0` is the run itself; a run trained
  with `postprocess.shifted_passes` N makes N passes from each shift) and all of them fused at the
  detection level (`mgrec.postprocess.detection_fusion.fuse_detections`, as `mgrec ensemble --fusion detections`):
  the pyramid's stride-2 levels see another phase of the video in each pass.
- `time_scales`: test-time resampling. Each video's features resampled in time by 0.8 and by 1.25
  (linear interpolation on the feature grid, as the `transforms.time_scale_prob` crop transform trains
  with), detected with the run's own setting, the detections mapped back onto the video's grid; each
  scale alone (`time_scale_X`) and both fused with the run's own detections (`time_scales_fused`). Only
  the detection time grows.
- `logit_adjustment_X`: the network's class logits raised by X * log(n_max / n_c), n_c the class's
  instances in the train split (post-hoc logit adjustment, Menon et al., ICLR 2021): one number per run
  that moves scores toward the rare classes (X < 0: away from them, undoing some of what class balancing
  did), where a per-class threshold (`class_thresholds.py`) has seven to fit on val. Reported with the mean
  F1 of the rarest third of the classes (`rare_f1`).
- `passes_N`: the run's own detections made in N shifted passes instead of its `postprocess.shifted_passes`
  (features shifted by 0..N-1 steps, fused, as detection does), threshold tuned on val: the pyramid's
  top level has stride 16, so 16 passes see every phase of the video at every level; with the rarest
  third's F1 (`rare_f1`);
- `segment_classifier_wX`: a second opinion on each detection's class, as `postprocess.second_opinion: X`
  gives it (`mgrec.postprocess.second_opinion`): a multinomial logistic regression (class-weighted, L2, LBFGS;
  deterministic) fitted on the train split's labelled gestures, each described by its features pooled over
  the gesture (mean, std and max per channel, the means of its three thirds, its log length), each also with
  moved ends; a detection's score s becomes s ** (1 - X) * p ** X, p the classifier's probability of the
  detection's class on the detected stretch. Here the run's own detections are rescored after training (its
  checkpoint and threshold were chosen without it).
  On the demo most errors are one exercise taken for another at a true gesture: this asks whether a
  whole-gesture view of the class, which the detector's points do not have, separates them. The
  classifier's accuracy on the val and test gestures (true ends) is kept as `segment_classifier_accuracy`.
- `threshold_*`: other rules for the score threshold, all tuned on val alone, against `oracle_threshold`
  (the threshold tuned on test), which narrows the seed spread on the demo: whether a steadier rule on val
  gets some of that. `threshold_plateau_X`: the median of the thresholds whose val F1 is within X of the
  best (the argmax of a small val is one draw); `threshold_smoothed_W`: the argmax of the val F1 curve
  averaged over W neighbouring thresholds on each side; `threshold_relative_topK`: every video's scores
  divided by the mean of its K highest before tuning and applying (label-free at detection time, so a
  subject whose scores run lower than val's keeps its gestures); `threshold_rate_split` and
  `threshold_rate_video`: the val-tuned threshold read as a rate instead of a score: val keeps r detections
  per feature step at it, and test keeps its r x (steps) highest-scored detections, pooled over the split
  or in each video (label-free at detection time; where a subject's scores run lower or higher than
  val's, the count keeps what the bar would not).
- `voting_X`: boundary voting after NMS (`postprocess.voting: X`; `voting_0` is the run's own setting): each kept
  detection's ends the score-weighted mean of its class's candidates overlapping it by a tIoU >= X (ActionFormer's
  voting_thresh, 0.7 on THUMOS); with the rarest third's F1 and the ranked lists' average mAP, since voting moves
  boundaries only (scores and ranks stay).
- `across_classes_tiou_X`: the run's own detections, then one gesture at a time: going down the ranked
  list, a detection is dropped when a kept, higher one of another class overlaps it by a tIoU >= X
  (`suppressed_across_classes`). On the demo most errors are one exercise taken for another at a true
  gesture; this asks whether dropping the weaker class helps.
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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mgrec.data.annotations import load_annotations
from mgrec.data.datasets import VideoSample
from mgrec.data.transforms import resample_steps
from mgrec.evaluate.analysis import f1_threshold_curve
from mgrec.evaluate.average_precision import average_precision
from mgrec.evaluate.f1 import apply_score_threshold, f1_strict, tune_score_threshold
from mgrec.evaluate.matching import tiou
from mgrec.infer.offline import OfflineDetector
from mgrec.postprocess.detection_fusion import fuse_detections
from mgrec.postprocess.second_opinion import SecondOpinion, SegmentClassifier, segment_descriptor
from mgrec.postprocess.video import moved_detection
from mgrec.provenance import PROVENANCE_KEY, provenance
from mgrec.records import Detection
from mgrec.train.data import SplitData, load_split

NMS_SIGMAS = (0.1, 0.25, 0.5, 1.0)
NMS_IOUS = (0.3, 0.5, 0.7)
ACROSS_CLASS_IOUS = (0.1, 0.3, 0.5, 0.7)
TIME_SCALES = (0.8, 1.25)
LOGIT_ADJUSTMENTS = (-0.25, 0.25, 0.5, 1.0)
PASSES = (1, 2, 8, 16)
SEGMENT_WEIGHTS = (0.25, 0.5)
THRESHOLD_PLATEAUS = (0.01, 0.03)
THRESHOLD_SMOOTHING = (20, 40)
THRESHOLD_TOP = (5, 20)
VOTING = (0.5, 0.6, 0.7, 0.8, 0.9)
GROUPS = ("nms", "shifts", "checkpoint", "time_scales", "across_classes", "logit_adjustment",
          "averaged_checkpoints", "passes", "segment_classifier", "threshold_rules", "voting")


def split_detections(detector: OfflineDetector, data: SplitData,
                     inputs: Callable[[np.ndarray], np.ndarray] = lambda features: features,
                     back: Callable[[Detection, VideoSample], Detection] = lambda detection, sample: detection):
    """Ground truth and ranked detections of a loaded split (`load_split`), each video detected on
    `inputs(its features)`, each detection put back on the video's own time by `back`."""
    return data.ground_truth, {
        sample.video_id: [back(d, sample) for d in detector.detect_inputs(inputs(sample.features), sample.video_id,
                                                                          fps=sample.grid.fps)]
        for sample in data.samples}


def shifted_detections(detector: OfflineDetector, data: SplitData, shift: int):
    """`split_detections` with each video's features shifted by `shift` steps (the first ones dropped)."""
    return split_detections(detector, data, lambda features: features[shift:],
                            lambda d, sample: moved_detection(d, shift * sample.grid.stride, sample.grid))


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


def resampled(features: np.ndarray, scale: float) -> np.ndarray:
    """(T, C) features resampled in time by `scale` (> 1: more steps), as the crop transform resamples."""
    return resample_steps(features, int(np.floor((len(features) - 1) * scale + 1e-9)) + 1, scale).astype(np.float32)


def scaled_back(detection: Detection, scale: float, grid, duration: float) -> Detection:
    """A detection made on features resampled by `scale`, on the original video's grid (step u is step
    u / scale), clipped to the video's `duration` seconds as detection clips (an edge the detector clipped to
    the resampled video moves with the mapping)."""
    start, end = (min(max(grid.index_to_seconds(grid.seconds_to_index(t) / scale), 0.0), duration)
                  for t in (detection.start, detection.end))
    if detection.start_frame is None:
        return dataclasses.replace(detection, start=start, end=end)
    start_frame, end_frame = (int(f) for f in grid.seconds_to_frame([start, end]))
    return dataclasses.replace(detection, start=start, end=end, start_frame=start_frame, end_frame=end_frame)


def scaled_detections(detector: OfflineDetector, data: SplitData, scale: float):
    """`split_detections` with each video's features resampled in time by `scale`."""
    return split_detections(detector, data, lambda features: resampled(features, scale),
                            lambda d, sample: scaled_back(d, scale, sample.grid,
                                                          sample.grid.covered_seconds(sample.length)))


class LogitAdjusted(torch.nn.Module):
    """A detector network whose class logits are raised by `shift` (K,) at every position."""

    def __init__(self, network: torch.nn.Module, shift: torch.Tensor):
        super().__init__()
        self.network = network
        self.max_div_factor = network.max_div_factor
        self.register_buffer("shift", shift)

    def forward(self, features: torch.Tensor, mask: torch.Tensor):
        out = self.network(features, mask)
        return dataclasses.replace(out, cls_logits=[logits + self.shift for logits in out.cls_logits])


def logit_shift(train_counts: list[int], tau: float) -> torch.Tensor:
    """tau * log(n_max / n_c) per class: 0 for the most frequent class, more the rarer a class is (a class
    with no train instance counts as one, the rarest possible)."""
    counts = torch.tensor(train_counts, dtype=torch.float32).clamp(min=1.0)
    return tau * torch.log(counts.max() / counts)


def segment_classifier(data: SplitData, num_classes: int) -> SegmentClassifier:
    """The second opinion's classifier (`mgrec.postprocess.second_opinion`) fitted on a split's gestures."""
    return SegmentClassifier.fit([(s.features, s.segments, s.labels) for s in data.samples], num_classes)


def classifier_accuracy(classifier: SegmentClassifier, data: SplitData) -> float:
    """Share of a split's labelled gestures (their true ends) whose most probable class is their own."""
    hits = [int(classifier.probabilities(segment_descriptor(s.features, start, end)[None])[0].argmax() == label)
            for s in data.samples for (start, end), label in zip(s.segments, s.labels)]
    return float(np.mean(hits)) if hits else 0.0


def segment_rescored(split: tuple[dict, dict[str, list[Detection]]], data: SplitData,
                     classifier: SegmentClassifier, weight: float) -> tuple[dict, dict[str, list[Detection]]]:
    """A split's ranked detections rescored by the second opinion at `weight` (`SecondOpinion.rescored`; the
    split's features are already standardised as the network read them)."""
    gt, ranked = split
    opinion = SecondOpinion(classifier, weight)
    samples = {sample.video_id: sample for sample in data.samples}
    return gt, {video_id: opinion.rescored(detections, samples[video_id].features, samples[video_id].grid)
                for video_id, detections in ranked.items()}


def plateau_threshold(gt: dict, ranked: dict, drop: float) -> float:
    """The median of the thresholds whose F1 on (gt, ranked) is within `drop` of the best."""
    curve = f1_threshold_curve(gt, ranked)
    return float(np.median(curve.thresholds[curve.f1 >= curve.f1.max() - drop]))


def smoothed_threshold(gt: dict, ranked: dict, width: int) -> float:
    """The threshold at the highest point of the F1 curve averaged over `width` neighbours on each side
    (the highest such threshold on ties)."""
    curve = f1_threshold_curve(gt, ranked)
    smooth = np.convolve(np.pad(curve.f1, width, mode="edge"), np.ones(2 * width + 1) / (2 * width + 1), "valid")
    return float(curve.thresholds[np.flatnonzero(smooth == smooth.max()).max()])


def relative_scores(ranked: dict[str, list[Detection]], top: int) -> dict[str, list[Detection]]:
    """Every video's detection scores divided by the mean of its `top` highest."""
    out = {}
    for video_id, detections in ranked.items():
        highest = sorted((d.score for d in detections), reverse=True)[:top]
        scale = statistics.fmean(highest) if highest else 1.0
        out[video_id] = [dataclasses.replace(d, score=d.score / scale) for d in detections]
    return out


def kept_at_rate(ranked: dict[str, list[Detection]], lengths: dict[str, int], rate: float,
                 per_video: bool) -> dict[str, list[Detection]]:
    """The round(rate x steps) highest-scored detections, pooled over the videos or in each video."""
    if per_video:
        return {v: sorted(d, key=lambda x: -x.score)[: round(rate * lengths[v])] for v, d in ranked.items()}
    scores = sorted((d.score for detections in ranked.values() for d in detections), reverse=True)
    keep = round(rate * sum(lengths[v] for v in ranked))
    threshold = scores[keep - 1] if 0 < keep <= len(scores) else (-np.inf if keep > len(scores) else np.inf)
    return apply_score_threshold(ranked, threshold)


def rate_matched(val: tuple[dict, dict], test: tuple[dict, dict], lengths: dict[str, int], per_video: bool) -> dict:
    """Val and test strict F1 when test keeps as many detections per feature step as val keeps at its tuned
    threshold (val's F1 is the tuned threshold's: the rate is read from it)."""
    threshold = tune_score_threshold(*val)
    val_kept = apply_score_threshold(val[1], threshold)
    rate = sum(len(d) for d in val_kept.values()) / sum(lengths[v] for v in val[1])
    return {"val": f1_strict(val[0], val_kept).overall.f1,
            "test": f1_strict(test[0], kept_at_rate(test[1], lengths, rate, per_video)).overall.f1}


def at_threshold(val: tuple[dict, dict], test: tuple[dict, dict], threshold: float) -> dict:
    """Val and test strict F1 at a given score threshold."""
    return {split: f1_strict(gt, apply_score_threshold(ranked, threshold)).overall.f1
            for split, (gt, ranked) in (("val", val), ("test", test))}


def averaged_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean of two state dicts of one network (floating tensors; others, such as counters, from `a`)."""
    return {name: (a[name] + b[name]) / 2 if a[name].is_floating_point() else a[name] for name in a}


def val_tuned(val: tuple[dict, dict], test: tuple[dict, dict], rare: list[int] | None = None,
              num_classes: int | None = None) -> dict:
    """Val and test strict F1 at the threshold tuned on val; with `rare` (class ids) also their mean F1, with
    `num_classes` also the ranked lists' average mAP (no threshold)."""
    threshold = tune_score_threshold(*val)
    scores = {}
    for split, (gt, ranked) in (("val", val), ("test", test)):
        result = f1_strict(gt, apply_score_threshold(ranked, threshold))
        scores[split] = result.overall.f1
        if rare is not None:
            scores[f"{split}_rare_f1"] = statistics.fmean(
                result.per_class[c].f1 if c in result.per_class else 0.0 for c in rare)
        if num_classes is not None:
            scores[f"{split}_average_mAP"] = average_precision(gt, ranked, num_classes).average_mAP
    return scores


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


def measure_run(run_dir: str, shifts: int, groups: tuple[str, ...] = GROUPS) -> dict:
    """Val and test F1 of one run under the variants of `groups` (the run's own setting, `shift_0`, and the
    oracle threshold always)."""
    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    config = detector.config
    annotations = load_annotations(config.data.annotations)
    # Each split read (and standardised) once, for every variant below.
    val_data, test_data = (load_split(config, annotations, split)
                           for split in (config.data.val_split, config.data.test_split))
    own = detector.postprocess
    variants = {}
    nms_variants = [*((f"soft_nms_sigma_{s:g}", {"nms": "soft", "sigma": s}) for s in NMS_SIGMAS),
                    *((f"hard_nms_tiou_{t:g}", {"nms": "hard", "iou_threshold": t}) for t in NMS_IOUS)]
    for name, change in nms_variants if "nms" in groups else []:
        detector.postprocess = dataclasses.replace(own, **change)
        variants[name] = val_tuned(shifted_detections(detector, val_data, 0),
                                   shifted_detections(detector, test_data, 0))
    detector.postprocess = own
    passes = {s: (shifted_detections(detector, val_data, s), shifted_detections(detector, test_data, s))
              for s in range(shifts if "shifts" in groups else 1)}
    for s, (val, test) in passes.items():
        variants[f"shift_{s}"] = val_tuned(val, test)
    test_gt, test_ranked = passes[0][1]
    variants["oracle_threshold"] = {
        "val": variants["shift_0"]["val"],
        "test": f1_strict(test_gt, apply_score_threshold(test_ranked, tune_score_threshold(test_gt, test_ranked)))
        .overall.f1}

    result = {"run_dir": run_dir, "f1": variants}
    if "checkpoint" in groups:
        last = OfflineDetector.from_run(run_dir, checkpoint="last", device="cpu", precision="fp32")
        last_val, last_test = shifted_detections(last, val_data, 0), shifted_detections(last, test_data, 0)
        variants["last_checkpoint"] = val_tuned(last_val, last_test)
        result["val_crossfit"] = crossfit(passes[0][0][0], passes[0][0][1], last_val[1])

    if "averaged_checkpoints" in groups:
        last = OfflineDetector.from_run(run_dir, checkpoint="last", device="cpu", precision="fp32")
        averaged = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
        averaged.model.load_state_dict(averaged_weights(detector.model.state_dict(), last.model.state_dict()))
        variants["averaged_checkpoints"] = val_tuned(shifted_detections(averaged, val_data, 0),
                                                     shifted_detections(averaged, test_data, 0))

    def fused(lists: list[tuple[dict, dict[str, list[Detection]]]]) -> tuple[dict, dict[str, list[Detection]]]:
        """Several passes over one split fused per video as detection does (`detect_video`): the ranked list cut
        at `max_detections`."""
        gt = lists[0][0]
        return gt, {v: fuse_detections([ranked[v] for _, ranked in lists])[: own.max_detections] for v in gt}

    if "shifts" in groups:
        variants[f"shifts_0_to_{shifts - 1}_fused"] = val_tuned(*(fused([passes[s][index] for s in passes])
                                                                   for index in (0, 1)))
    # The run's own setting (its shifted_passes included), unshifted: what the variants below start from.
    own_val, own_test = passes[0]
    if "time_scales" in groups:
        scaled = {scale: tuple(scaled_detections(detector, data, scale) for data in (val_data, test_data))
                  for scale in TIME_SCALES}
        for scale, (val, test) in scaled.items():
            variants[f"time_scale_{scale:g}"] = val_tuned(val, test)
        variants["time_scales_fused"] = val_tuned(*(fused([own_split] + [scaled[scale][index] for scale in TIME_SCALES])
                                                    for index, own_split in enumerate((own_val, own_test))))
    counts = [0] * len(detector.classes)  # train instances per class
    for segment in (s for video in annotations.video_ids(config.data.train_split)
                    for s in annotations.segments.get(video, [])):
        counts[segment.label_id] += 1
    # the rarest third as the ablation tables count it (`ablation.rarest_third`): ceil(K / 3) classes, ties by id
    rare = sorted(range(len(counts)), key=lambda c: counts[c])[: -(-len(counts) // 3)]
    if "voting" in groups:
        num_classes = len(detector.classes)
        variants[f"voting_{own.voting:g}"] = val_tuned(own_val, own_test, rare, num_classes)
        for threshold in (t for t in VOTING if t != own.voting):
            detector.postprocess = dataclasses.replace(own, voting=threshold)
            variants[f"voting_{threshold:g}"] = val_tuned(shifted_detections(detector, val_data, 0),
                                                          shifted_detections(detector, test_data, 0), rare, num_classes)
        detector.postprocess = own
    if "passes" in groups:
        variants[f"passes_{own.shifted_passes}"] = val_tuned(own_val, own_test, rare)
        for passes in (n for n in PASSES if n != own.shifted_passes):
            detector.postprocess = dataclasses.replace(own, shifted_passes=passes)
            variants[f"passes_{passes}"] = val_tuned(shifted_detections(detector, val_data, 0),
                                                     shifted_detections(detector, test_data, 0), rare)
        detector.postprocess = own
    if "logit_adjustment" in groups:
        variants["logit_adjustment_0"] = val_tuned(own_val, own_test, rare)
        network = detector.model
        for tau in LOGIT_ADJUSTMENTS:
            detector.model = LogitAdjusted(network, logit_shift(counts, tau))
            variants[f"logit_adjustment_{tau:g}"] = val_tuned(shifted_detections(detector, val_data, 0),
                                                               shifted_detections(detector, test_data, 0), rare)
        detector.model = network
    if "segment_classifier" in groups:
        train_data = load_split(config, annotations, config.data.train_split)
        classifier = segment_classifier(train_data, len(detector.classes))
        result["segment_classifier_accuracy"] = {"val": classifier_accuracy(classifier, val_data),
                                                 "test": classifier_accuracy(classifier, test_data)}
        variants["segment_classifier_w0"] = val_tuned(own_val, own_test, rare, len(detector.classes))
        for weight in SEGMENT_WEIGHTS:
            variants[f"segment_classifier_w{weight:g}"] = val_tuned(
                segment_rescored(own_val, val_data, classifier, weight),
                segment_rescored(own_test, test_data, classifier, weight), rare, len(detector.classes))
    if "threshold_rules" in groups:
        for drop in THRESHOLD_PLATEAUS:
            variants[f"threshold_plateau_{drop:g}"] = at_threshold(own_val, own_test, plateau_threshold(*own_val, drop))
        for width in THRESHOLD_SMOOTHING:
            variants[f"threshold_smoothed_{width}"] = at_threshold(own_val, own_test,
                                                                   smoothed_threshold(*own_val, width))
        lengths = {sample.video_id: sample.length for data in (val_data, test_data) for sample in data.samples}
        for name, per_video in (("split", False), ("video", True)):
            variants[f"threshold_rate_{name}"] = rate_matched(own_val, own_test, lengths, per_video)
        for top in THRESHOLD_TOP:
            variants[f"threshold_relative_top{top}"] = val_tuned(*((gt, relative_scores(ranked, top))
                                                                   for gt, ranked in (own_val, own_test)))
    for iou in ACROSS_CLASS_IOUS if "across_classes" in groups else []:
        val, test = ((gt, {v: suppressed_across_classes(r, iou) for v, r in ranked.items()})
                     for gt, ranked in (own_val, own_test))
        variants[f"across_classes_tiou_{iou:g}"] = val_tuned(val, test)
    return result


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
            for split in group[0]["f1"][variant]:  # val, test (and val_rare_f1, test_rare_f1)
                values = [100 * r["f1"][variant][split] for r in group]
                summary[row][variant][split] = [statistics.fmean(values),
                                                statistics.stdev(values) if len(values) > 1 else None]
        for rule in ("select", "last") if all("val_crossfit" in r for r in group) else ():
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
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS),
                        help="variant groups to measure (default: all; the run's own setting always)")
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
                        **measure_run(run["run_dir"], args.shifts, tuple(args.groups))})
        print(f"{results[-1]['row']} seed {run['seed']}: " + ", ".join(
            f"{name} {100 * f1['test']:.2f}" for name, f1 in results[-1]["f1"].items()), flush=True)
    summary = summarise(results)
    for row, variants in summary.items():
        for name, f1 in variants.items():
            if name.startswith("val_crossfit"):
                print(f"{row:12s} {name:24s} half B of val {f1[0]:.2f} ± {f1[1] or 0:.2f}")
                continue
            print(f"{row:12s} {name:24s} " + "   ".join(f"{split} {mean:.2f} ± {std or 0:.2f}"
                                                           for split, (mean, std) in f1.items()))
    out = args.json or args.ablation.with_name("after_training.json")
    document = {PROVENANCE_KEY: provenance(["python", "benchmarks/after_training.py", *argv], threads=1),
                "shifts": args.shifts if "shifts" in args.groups else None, "groups": args.groups,
                "summary": summary, "runs": results}
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
