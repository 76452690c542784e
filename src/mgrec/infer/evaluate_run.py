"""`mgrec evaluate`: a run's detections on one split, scored, written next to the run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mgrec.config import split_name
from mgrec.data.annotations import load_annotations
from mgrec.data.features import feature_file_missing
from mgrec.data.streams import stream_path
from mgrec.errors import InputError
from mgrec.evaluate.f1 import tune_thresholds
from mgrec.evaluate.predictions import save_predictions
from mgrec.evaluate.scoring import check_tuning_data, check_tuning_split, score
from mgrec.files import StoppedIn, brief, counted, resolve_path, shell_word, spelt_alike_beside
from mgrec.infer.detect import predictions_info
from mgrec.infer.offline import OfflineDetector, check_read_unchanged
from mgrec.model.fusion import GatedFusionEncoder
from mgrec.provenance import provenance
from mgrec.records import AnnotationSet, Detection, Segment
from mgrec.run import RunDir, moved_data_remedy, run_data_path
from mgrec.timeline import FeatureGrid

# The keys `mgrec evaluate --set` takes: where the run's data lies, for one call (`data_locations`).
DATA_LOCATIONS = ("data.annotations", "data.features")


def evaluate_remedy(run_dir: str | Path, key: str) -> str:
    """What `mgrec evaluate` lets a user do about a run's relative path (`key`)."""
    return ("run mgrec evaluate from the folder mgrec train ran in (the run's relative paths start there), or give "
            f"the path for this call: mgrec evaluate {shell_word(run_dir)} --set {key}=PATH")


def moved_remedy(run_dir: str | Path, key: str) -> str:
    """What `mgrec evaluate` lets a user do about a run's absolute path that is not there (`moved_data_remedy`)."""
    return moved_data_remedy(run_dir, key, this_call=f"mgrec evaluate {shell_word(run_dir)}")


def detect_split(detector: OfflineDetector, split: str, progress: bool = False, gates: GateTally | None = None,
                 interrupted: str = "the detections made so far are not kept") -> tuple[dict[str, list[Detection]],
                                                                                     dict]:
    """Ranked detections for every video of `split` of the run's annotations, and its ground truth.

    `progress`: a bar over the videos (on stderr). `gates`: a gated run's tally of where its auxiliary
    streams were let in, filled from the same forward passes. `interrupted`: the caller's words for what an
    interruption leaves (`StoppedIn`): evaluate and `mgrec ensemble` write different things, and continue
    differently (evaluate's "nothing was written, the same command again" was said of an ensemble folder that held
    its members, which the same command then refused)."""
    annotations, video_ids = split_to_score(detector, split)
    ranked = {}
    where = StoppedIn("video", len(video_ids), lambda done: interrupted)
    with where:
        for video_id in tqdm(video_ids, desc=split, unit="video", disable=not progress, leave=False):
            where.at(video_id)
            info = annotations.videos[video_id]
            if detector.members is not None:  # each member reads its own features
                ranked[video_id] = detector.detect_listed(video_id, info.fps)
                continue
            fps = detector.listed_fps(info.fps)
            stamps: list[tuple[Path, str]] = []
            features = detector.listed_features(video_id, fps, stamps)
            with gates.recording() if gates is not None else nullcontext():
                ranked[video_id] = detector.detect_read(features, video_id, fps)
            check_read_unchanged(stamps)  # a file replaced while it was read: another file's detections scored as its
            if gates is not None:
                gates.add(len(features), annotations.segments.get(video_id, []), detector.grid(fps))
    ground_truth = {v: annotations.segments.get(v, []) for v in video_ids}
    return ranked, ground_truth


def split_to_score(detector: OfflineDetector, split: str) -> tuple[AnnotationSet, list[str]]:
    """The run's annotations and the videos of `split`, refused before any video is detected where they cannot be
    scored: a split the run trained on, one without gestures, a feature file missing."""
    data = detector.config.data
    run_dir = detector.run_dir
    annotations = load_annotations(run_data_path(run_dir, "data.annotations", data.annotations,
                                                 evaluate_remedy(run_dir, "data.annotations"),
                                                 moved=moved_remedy(run_dir, "data.annotations")),
                                   default_fps=data.fps)
    if detector.members is None and not data.streams and detector.stream_folders is None:
        run_data_path(run_dir, "data.features", data.features, evaluate_remedy(run_dir, "data.features"),
                      folder=True, moved=moved_remedy(run_dir, "data.features"))
    video_ids = annotations.split_video_ids(split, data.annotations)
    RunDir(detector.run_dir).check_held_out(split, video_ids)
    if not any(annotations.segments.get(v) for v in video_ids):  # found before any video is detected
        labelled = [s for s in annotations.subsets() if any(annotations.segments.get(v) for v in
                                                            annotations.video_ids(s))]
        raise InputError(
            f"{data.annotations}: no ground-truth segments in split {split!r} ({counted(len(video_ids), 'video')}, "
            f"none labelled): nothing to score or tune on; use a labelled split ({', '.join(labelled) or 'none'}), or "
            "detect these videos with mgrec detect"
        )
    if detector.members is None:  # every file before the first video is detected (a member reads its own)
        _check_every_file(detector, split, video_ids)
    return annotations, video_ids


def _check_every_file(detector: OfflineDetector, split: str, video_ids: list[str]) -> None:
    """InputError naming the feature files of the split that are missing (a run trained with
    data.drop_bad_videos may lack some): evaluate scores every video of a split, or none."""
    missing = [path for stream in detector.config.data.input_streams() for video_id in video_ids
               if not (path := stream_path(stream, video_id, detector.stream_folders)).exists()]
    if missing:
        raise InputError(
            f"{missing[0]}: {feature_file_missing(missing[0])} ({len(missing)} of split {split!r} missing)"
            f"{spelt_alike_beside(missing[0])}; evaluate scores every "
            "video of the split: extract the missing ones, or detect the others (mgrec detect RUN FILES --all --out "
            "ranked.json) and score them (mgrec score --gt ANNOTATIONS --pred ranked.json), which counts the "
            "missing videos' gestures as missed")


class GateTally:
    """Where the auxiliary streams of a gated run were let in: the mean gate g of level 0
    (`mgrec.model.fusion`; averaged over channels and auxiliary streams) over the feature steps inside
    each class's ground-truth instances, and over the steps outside every instance. Read from the
    detection passes themselves; a video detected in several chunks is left out (and counted)."""

    def __init__(self, detector: OfflineDetector) -> None:
        self.encoder = detector.model.encoder
        self.classes = detector.classes
        self.streams = [s.name for s in detector.config.data.input_streams()[1:]]
        self.totals = np.zeros(len(self.classes) + 1)  # the last: background
        self.counts = np.zeros(len(self.classes) + 1)
        self.chunking = detector.chunking
        self.videos = self.skipped = 0

    @staticmethod
    def of(detector: OfflineDetector) -> GateTally | None:
        """A tally for a gated run, None for any other."""
        return GateTally(detector) if isinstance(getattr(detector.model, "encoder", None), GatedFusionEncoder) else None

    @contextmanager
    def recording(self):
        self.encoder.record_gates = True
        self.encoder.last_gates = []
        try:
            yield
        finally:
            self.encoder.record_gates = False

    def add(self, steps: int, segments: list[Segment], grid: FeatureGrid) -> None:
        """The gates of the pass just run over a video of `steps` feature steps with these instances."""
        if (self.chunking is not None and steps > self.chunking.steps) or not self.encoder.last_gates:
            self.skipped += 1
            return
        gate = self.encoder.last_gates[0][0, :steps].float().cpu().numpy()
        inside = np.zeros(steps, dtype=bool)
        for segment in segments:
            first, last = grid.seconds_to_index(segment.start), grid.seconds_to_index(segment.end)
            covered = slice(max(0, int(np.ceil(first))), max(0, int(np.floor(last)) + 1))
            self.totals[segment.label_id] += gate[covered].sum()
            self.counts[segment.label_id] += len(gate[covered])
            inside[covered] = True
        self.totals[-1] += gate[~inside].sum()
        self.counts[-1] += int((~inside).sum())
        self.videos += 1

    def result(self) -> dict:
        means = [float(t / c) if c else None for t, c in zip(self.totals, self.counts)]
        return {"level": 0, "streams": self.streams, "per_class": dict(zip(self.classes, means[:-1])),
                "background": means[-1], "videos": self.videos, "skipped_long_videos": self.skipped}


def evaluated_detector(run: RunDir, checkpoint: str, device: str, precision: str,
                       features: str | Path | None, data: Mapping[str, str] | None = None) -> OfflineDetector:
    """The run loaded for evaluation; `features`: the folder of the split's features instead of data.features (an
    end-to-end run's, which must be given). `data`: {key of `DATA_LOCATIONS`: path} where the run's data lies for
    this call (`--set data.features=NEW`: the data moved), each checked there; config.yaml is left as it is."""
    detector = OfflineDetector.from_run(run.path, checkpoint=checkpoint, device=device, precision=precision)
    if data:
        detector.config = dataclasses.replace(detector.config, data=dataclasses.replace(
            detector.config.data, **_given_data(run, detector, data)))
    if features is not None:
        detector.config = dataclasses.replace(detector.config,
                                              data=dataclasses.replace(detector.config.data, features=str(features)))
    elif detector.config.end_to_end:
        raise InputError(f"{run.path} was trained end to end: its features are made from data.videos first "
                         "(`mgrec evaluate` does so)")
    return detector


def _given_data(run: RunDir, detector: OfflineDetector, data: Mapping[str, str]) -> dict[str, str]:
    """The DataConfig fields `data` sets, each refused where it cannot be the run's data: a key evaluate does not take,
    a path that is not there, data.features of a run that reads its features elsewhere."""
    if not isinstance(data, Mapping) or not all(isinstance(key, str) and isinstance(value, (str, Path))
                                                 for key, value in data.items()):
        raise InputError(f"data: expected {{key: path}} of {', '.join(DATA_LOCATIONS)}, got {brief(data)}")
    fields = {}
    for key, value in data.items():
        if key not in DATA_LOCATIONS:
            raise InputError(f"--set {key}: mgrec evaluate takes only where the run's data lies "
                             f"({', '.join(DATA_LOCATIONS)}), for this call")
        if key == "data.features" and (detector.members is not None or detector.config.data.streams
                                       or detector.config.end_to_end):
            raise InputError(f"--set data.features: {run.path} does not read its features from data.features (its "
                             "members', streams' or videos' own places do)")
        path = Path(value)
        folder = key == "data.features"
        try:
            there = path.is_dir() if folder else path.is_file()
        except OSError as exc:
            raise InputError(f"--set {key}={value}: cannot look at it: {exc.strerror or exc}") from None
        if not there:
            relative = "" if path.is_absolute() else f" (relative paths are read from the current folder {Path.cwd()})"
            raise InputError(f"--set {key}={value}: no {'folder' if folder else 'file'} there{relative}")
        fields[key.split(".", 1)[1]] = str(value)
    return fields


def data_used(detector: OfflineDetector, data: Mapping[str, str] | None) -> dict:
    """What an evaluation records of the data it read: the annotations and features folder (absolute, None where the
    run reads its features elsewhere), and the keys `--set` gave for that call (empty: the run's config.yaml's)."""
    config = detector.config.data
    single = detector.members is None and not config.streams
    return {"annotations": str(resolve_path(config.annotations)),
            "features": str(resolve_path(config.features)) if single and config.features else None,
            "set_for_this_call": sorted(data or {})}


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    tune_on: str | None = None,
    checkpoint: str = "best",
    device: str = "auto",
    progress: bool = False,
    precision: str = "auto",
    features: str | Path | None = None,
    data: Mapping[str, str] | None = None,
) -> dict:
    """Score the run on `split`; the F1 threshold is the one tuned on val at training, or re-tuned on `tune_on`.

    Writes RUN_DIR/eval_<split>.json (the keys of `mgrec score --json`, plus the checkpoint and the
    split the threshold was tuned on) and detections_<split>.json; for `checkpoint="last"`,
    eval_<split>_last.json and detections_<split>_last.json. `device`: auto, cpu, cuda or cuda:N;
    `progress`: a bar over the videos (on stderr). `precision`: auto, fp32 or bf16 (`OfflineDetector.from_run`);
    the one used is recorded in both files (key `inference_precision`: "fp32" or "bf16"; `precision` is F1's).
    `features`: the folder of the split's feature files instead of the run's data.features (an end-to-end
    run's, made with its adapters: `mgrec.extract.jobs.extract_with_run`). `data`: {"data.annotations" or
    "data.features": path}: where the run's data lies for this call (it moved), in place of config.yaml's, which is
    left as it is; the files record what was read (`data`).
    """
    split = split_name(split)  # `testing` is `test`, as the annotations read it; one plain name (it names files)
    tune_on = None if tune_on is None else split_name(tune_on, "tune_on")
    run = RunDir(run_dir)
    detector = evaluated_detector(run, checkpoint, device, precision, features, data)
    post = detector.postprocess
    threshold, class_thresholds, tuned_on = post.score_threshold, post.class_thresholds, detector.threshold_tuned_on
    check_tuning_split(tune_on, split)
    # the run's files are written once the whole split is detected and scored: an interruption leaves none half
    interrupted = (f"nothing was written into the run (evaluate writes its files once every video of split {split} "
                   "is scored): the same command again detects them all")
    if tune_on is not None:  # re-tuned by the run's own rule (postprocess.thresholds)
        tune_ranked, tune_gt = detect_split(detector, tune_on, progress, interrupted=interrupted)
        check_tuning_data(tune_gt, tune_ranked, tune_on, detector.config.data.annotations, f"run {run.path}")
        (threshold, class_thresholds), tuned_on = tune_thresholds(tune_gt, tune_ranked, len(detector.classes),
                                                                  post), tune_on
    gates = GateTally.of(detector)
    ranked, ground_truth = detect_split(detector, split, progress, gates, interrupted)
    result = score(ground_truth, ranked, detector.classes, threshold, split=split, class_thresholds=class_thresholds)
    if gates is not None:
        result["fusion_gates"] = gates.result()
    command = ["mgrec", "evaluate", str(run.path), "--split", split, "--checkpoint", checkpoint]
    command += ["--tune-on", tune_on] if tune_on else []
    command += ["--precision", precision]
    command += [part for key, value in (data or {}).items() for part in ("--set", f"{key}={value}")]
    # the run's absolute path: "run" as typed (`mgrec evaluate run`) named nothing once the file was read elsewhere
    result.update({"checkpoint": checkpoint, "threshold_tuned_on": tuned_on, "run": str(resolve_path(run.path)),
                   "inference_precision": detector.precision, "data": data_used(detector, data),
                   "provenance": provenance(command)})
    info = {**predictions_info(detector, ranked=True, threshold=threshold, tuned_on=tuned_on,
                               class_thresholds=class_thresholds),
            "split": split, "provenance": result["provenance"]}
    # The detections first, the scores last and naming the detections' bytes: a kill or a full disk between the two
    # writes leaves scores that do not name the detections beside them, which the report refuses (scores written
    # first were paired with the detections of an earlier evaluate, and shown with them)
    result["detections_sha256"] = save_predictions(ranked, run.detections_path(split, checkpoint), info=info)
    run.write_eval(split, result, checkpoint)
    return result


def evaluate_online(
    run_dir: str | Path,
    split: str = "test",
    lookahead: float = 2.0,
    checkpoint: str = "best",
    device: str = "auto",
    precision: str = "auto",
    progress: bool = False,
    features: str | Path | None = None,
    threads: int | None = 1,
    data: Mapping[str, str] | None = None,
) -> dict:
    """The online track's scores of a run on `split`: every video replayed as a live stream, as `mgrec stream` does
    (`mgrec.infer.stream.stream_video`: a fresh stream per video, the default hop and window, `lookahead` seconds
    after a gesture's end before it is reported, on `threads` torch threads: one by default, as `mgrec stream`, since
    small updates are fastest on one; None: torch's setting), its emissions scored as its hard set at the run's
    threshold.

    Writes RUN_DIR/online_<split>.json (online_<split>_last.json for `checkpoint="last"`): the keys of
    `eval_<split>.json` (F1, and the mAP of the emissions, a hard set: lower than the ranked list's), and `online`:
    the lookahead and window, the latency of the gestures decided while streaming (seconds from a gesture's end to
    its report: mean, median, p95, max; those the end of a video decided, with less lookahead, are counted apart),
    and the compute per update (ms, on this machine, and the threads it ran on). `features`: as for `evaluate_run`."""
    from mgrec.devices import torch_threads
    from mgrec.infer.online import Emission
    from mgrec.infer.stream import ensemble_source, stream_video, video_source

    split = split_name(split)
    run = RunDir(run_dir)
    detector = evaluated_detector(run, checkpoint, device, precision, features, data)
    annotations, video_ids = split_to_score(detector, split)
    grid_stream = detector.config.data.input_streams()[0]
    data_annotations = detector.config.data.annotations
    emitted: dict[str, list[Detection]] = {}
    streamed_latency: list[float] = []
    summaries = []
    update_threads = torch.get_num_threads() if threads is None else threads
    where = StoppedIn("video", len(video_ids), lambda done: "nothing was written into the run (evaluate writes its "
                      f"files once every video of split {split} is scored): the same command again streams them all")
    with where:
        for video_id in tqdm(video_ids, desc=f"{split} online", unit="video", disable=not progress, leave=False):
            where.at(video_id)
            kept: list[Emission] = []
            listed_fps = detector.listed_fps(annotations.videos[video_id].fps)
            said_as = f"the fps of {data_annotations} for it"
            if detector.members is None:
                source = video_source(detector, stream_path(grid_stream, video_id, detector.stream_folders), video_id,
                                      listed_fps, detector.stream_folders, fps_said_as=said_as)
            else:  # a detection-level ensemble: each member's file from its own folders, as `detect_listed` reads them
                paths = [stream_path(m.config.data.input_streams()[0], video_id, m.stream_folders)
                         for m in detector.members]
                # each member places it by its own data.fps, as detect_listed
                annotated = annotations.videos[video_id].fps
                source = ensemble_source(detector, paths, video_id, [m.listed_fps(annotated) for m in detector.members],
                                         fps_said_as=said_as, files_given=False)
            with torch_threads(update_threads):
                summary = stream_video(detector, source, video_id, lookahead, kept=kept)
            emitted[video_id] = [emission.detection for emission in kept]
            streamed_latency += [emission.latency for emission in kept[: len(kept) - summary.decided_at_end]]
            summaries.append(summary)
    post = detector.postprocess
    ground_truth = {v: annotations.segments.get(v, []) for v in video_ids}
    result = score(ground_truth, emitted, detector.classes, post.score_threshold, split=split,
                   class_thresholds=post.class_thresholds)
    updates = sum(s.updates for s in summaries)
    latency = np.asarray(streamed_latency)
    latency_seconds = dict.fromkeys(("mean", "median", "p95", "max")) if not streamed_latency else {
        "mean": float(latency.mean()), "median": float(np.median(latency)),
        "p95": float(np.percentile(latency, 95)), "max": float(latency.max())}
    result["online"] = {
        "lookahead": float(lookahead),
        "window_steps": summaries[0].history,
        "window_seconds": summaries[0].history_seconds,
        "updates": updates,
        "latency_seconds": latency_seconds,
        "decided_while_streaming": len(streamed_latency),
        "decided_at_the_end": sum(s.decided_at_end for s in summaries),
        "compute_ms_per_update": {
            "mean": float(sum(s.mean_compute_ms * s.updates for s in summaries) / max(updates, 1)),
            "p95_of_the_slowest_video": float(max(s.p95_compute_ms for s in summaries)),
        },
        "threads": update_threads,
    }
    command = ["mgrec", "evaluate", str(run.path), "--split", split, "--checkpoint", checkpoint, "--online",
               "--lookahead", f"{lookahead:g}", "--precision", precision, "--threads", str(update_threads)]
    command += [part for key, value in (data or {}).items() for part in ("--set", f"{key}={value}")]
    result.update({"checkpoint": checkpoint, "threshold_tuned_on": detector.threshold_tuned_on,
                   "run": str(resolve_path(run.path)),  # absolute, as evaluate_run's
                   "inference_precision": detector.precision, "data": data_used(detector, data),
                   "provenance": provenance(command, threads=update_threads)})
    run.write_online_eval(split, result, checkpoint)
    return result
