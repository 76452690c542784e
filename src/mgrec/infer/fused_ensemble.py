"""`mgrec ensemble --fusion detections`: runs whose networks or inputs differ (an RGB run and a skeleton
run, an mgrec and an actionformer) made into one run that fuses their detections.

The ensemble's run directory holds each member whole in members/<m>/ (its config, classes, tuned
post-processing, feature recipes and selected weights), so it keeps working when the member runs
are moved or deleted; run.json says `{"ensemble": {"members": M, "fusion": "detections", ...}}`.
Detection (`OfflineDetector`) runs every member on its own inputs and fuses the ranked lists
(`mgrec.postprocess.detection_fusion`); the ensemble's F1 score threshold is tuned on the val split of the
members' annotations, as training tunes a run's. Runs with one network layout and one feature grid
are better averaged point by point (`mgrec.train.ensemble`, fusion "outputs").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mgrec.data.annotations import val_videos_at_hand
from mgrec.errors import EmptySplit
from mgrec.evaluate.f1 import tune_thresholds
from mgrec.evaluate.scoring import score
from mgrec.files import atomic_copy
from mgrec.infer.evaluate_run import detect_split
from mgrec.infer.offline import OfflineDetector
from mgrec.postprocess.detection_fusion import FUSION_IOU
from mgrec.run import (
    RunDir,
    checked_members,
    member_paths,
    new_ensemble_dir,
    pseudo_labelled_members,
    refuse_a_written_ensemble_dir,
    refuse_members_trained_on,
    run_data_path,
)


@dataclass
class FusedEnsemble:
    run_dir: Path
    members: list[str]
    val_metrics: dict | None  # f1, f1_miga, average_mAP, score_threshold on val (None: no val split)


def member_files(run: RunDir) -> list[Path]:
    """What a member's detection needs, as paths inside its run directory."""
    files = [run.format_path, run.config_path, run.classes_path, run.postprocess_path, run.weights_path("best"),
             run.second_opinion_path, run.splits_path]  # the videos it trained on: the ensemble is not scored on them
    files += sorted(run.path.glob("feature_recipe*.json"))
    return [path for path in files if path.exists()]


def make_fused_ensemble(run_dirs: list[str | Path], out: str | Path, log=print) -> FusedEnsemble:
    """Copy `run_dirs` into the new run directory `out` as the members of a detection-level ensemble and
    tune its score threshold on val."""
    paths = member_paths(run_dirs)
    data = RunDir(paths[0]).read_config().data if paths else None
    if data is not None:  # before anything is written: a member trained on a video the ensemble would tune on
        if data.val_split and data.annotations:  # tuned on them: a file gone missing is refused, as when averaging
            run_data_path(paths[0], "data.annotations", data.annotations,
                          "make the ensemble from the folder its members were trained in")
        refuse_members_trained_on(paths, data.val_split, val_videos_at_hand(data))
    out_run = new_ensemble_dir(out, paths)
    configs, classes = checked_members(paths)
    config = dataclasses.replace(configs[0], name=f"detection ensemble of {len(paths)}: {configs[0].name}")

    with out_run.lock():
        refuse_a_written_ensemble_dir(out_run)
        for index, path in enumerate(paths):
            target = out_run.member_path(index)
            for source in member_files(RunDir(path)):
                atomic_copy(source, target / source.relative_to(path))  # its folders made as it goes
        out_run.write_config(config)
        out_run.write_classes(classes)
        # written last: a folder without it is no ensemble (a killed copy is never read as one)
        out_run.write_format({"members": len(paths), "sources": [str(p) for p in paths], "fusion": "detections",
                              "iou_threshold": FUSION_IOU,
                              "pseudo_labelled": pseudo_labelled_members(list(zip(paths, configs)))})
        val_metrics = tune_on_val(out_run, log)
    return FusedEnsemble(out_run.path, [str(p) for p in paths], val_metrics)


def tune_on_val(out: RunDir, log) -> dict | None:
    """The ensemble's F1 score threshold, tuned on the val split of its (first member's) annotations."""
    # not `from_run`, which refuses an ensemble without postprocess.json: the one this writes
    detector = OfflineDetector.fused_ensemble(out, out.read_ensemble(), "best", "cpu", "fp32", None)
    config = detector.config
    if not config.data.annotations:
        log("the members name no annotations: keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    if not config.data.val_split:  # trained without validation: nothing to tune on (and no split '' to warn of)
        log("the members have no val split (data.val_split is empty): keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    try:
        # the members are copied and run.json written, so the folder is no longer empty: the same command is refused
        interrupted = (f"{out.path} holds the members but no tuned threshold (postprocess.json), so it is not an "
                       "ensemble that detects: remove it and make the ensemble again")
        ranked, ground_truth = detect_split(detector, config.data.val_split, interrupted=interrupted)
    except EmptySplit:
        log(f"no videos in the val split {config.data.val_split!r}: keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    threshold, class_thresholds = tune_thresholds(ground_truth, ranked, len(detector.classes), config.postprocess)
    result = score(ground_truth, ranked, detector.classes, threshold, split=config.data.val_split,
                   class_thresholds=class_thresholds)
    return out.write_ensemble_tuning(config, result, config.data.val_split)
