"""`mgrec detect`: feature files in, detections out as JSON, CSV, SMG label CSVs or subtitles (SRT, VTT).

Raw videos are turned into feature files first, with the run's feature recipe, by the CLI
(`mgrec.extract.jobs.extract_with_recipe`): detection itself only reads features.

By default the hard set is written (score >= the F1 threshold tuned on val); `ranked=True` writes
the ranked list, which is what mAP (here or in the ActivityNet evaluator or DETAD) must be computed
on: the hard set's mAP is lower, because the low-scoring detections it drops count towards recall.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mgrec.data.features import feature_file_shape, video_id_of
from mgrec.errors import InputError, RunError
from mgrec.evaluate.f1 import bar_words
from mgrec.evaluate.predictions import save_predictions, save_predictions_csv
from mgrec.evaluate.subtitles import SUBTITLE_FORMATS, claim_subtitle_folder, subtitle_paths, write_subtitles
from mgrec.files import StoppedIn, check_writable, counted, part_of
from mgrec.infer.export import OnnxNetwork
from mgrec.infer.label_set import DETECT, LabelSet, read_inputs
from mgrec.infer.offline import OfflineDetector, feature_files
from mgrec.records import Detection
from mgrec.run import RunDir, hold_label_folder
from mgrec.smg_csv import INCOMPLETE_MARKER, checked_fps


@dataclass(frozen=True)
class DetectSummary:
    """What `detect_files` wrote: where, how much, and which set."""

    path: Path
    videos: int
    detections: int
    ranked: bool  # the ranked list (every detection) or the hard set
    score_threshold: float  # the hard set's bar: the F1 threshold of the run
    threshold_tuned_on: str | None  # the split it was tuned on (None: the config's threshold)
    precision: str = "fp32"  # of the network's forward pass: "fp32" or "bf16"
    class_thresholds: list[float] | None = None  # the bar of each class instead, where the run tuned them
    engine: str = "pytorch"  # what ran the network: "pytorch", or "onnxruntime" (`detect --onnx`)
    missing: int = 0  # --format smg: the videos of its set without a label file (unreadable): the set is unfinished
    kept: int = 0  # --format smg resumed: the label files an interrupted detect of the same plan wrote, kept

    def describe(self) -> str:
        """The final line of `mgrec detect`: the counts and which set the file holds."""
        tuned = f"tuned on {self.threshold_tuned_on}" if self.threshold_tuned_on else "from the config"
        if self.ranked:
            which = "the ranked list (every detection, for mAP; without --all: the hard set)"
        else:
            which = (f"the hard set (score >= {bar_words(self.score_threshold, self.class_thresholds)}, the F1 "
                     f"threshold {tuned}; --all writes the ranked list, for mAP)")
        unfinished = (f"; {self.path} stays marked unfinished ({self.path / INCOMPLETE_MARKER}): "
                      f"{counted(self.missing, 'video')} of its set {'has' if self.missing == 1 else 'have'} no label "
                      "file" if self.missing else "")
        written = f"{counted(self.detections, 'detection')} in {counted(self.videos, 'video')}"
        # a resumed set whose every other video failed to read said "0 detections in 0 videos" alone, as if OUT were
        # empty: the files the interrupted detect wrote are in it, kept
        if self.kept:
            before = f"the {counted(self.kept, 'label file')} an interrupted detect wrote there, kept"
            written = f"{written}, beside {before}" if self.videos else f"no new label file; {before}"
        return (f"wrote {self.path}: {written} "
                f"({self.precision} inference{'' if self.engine == 'pytorch' else ', ' + self.engine}), {which}"
                f"{unfinished}")


def detect_files(run_dir: str | Path, inputs: list[str | Path], out: str | Path, fmt: str = "json",
                 ranked: bool = False, device: str = "auto", progress: bool = False,
                 precision: str = "auto", stream_folders: dict[str, Path] | None = None,
                 fps: float | None = None, subtitle_names: dict[str, str] | None = None,
                 failed: list[str] | None = None, member_folders: dict[int, Path] | None = None,
                 member_stream_folders: dict[int, dict[str, Path]] | None = None,
                 onnx: str | Path | None = None, videos: dict[str, Path] | None = None) -> DetectSummary:
    """Detect in every input and write one output (a folder of label CSVs for fmt="smg").

    Inputs are feature files or folders of them.
    By default the hard set (score >= the threshold tuned on val) is written, which is what a
    challenge submission or a user wants; `ranked=True` writes the full ranked list (for mAP).
    `progress`: a bar over the files (on stderr). `precision`: auto, fp32 or bf16 (`OfflineDetector.from_run`);
    the one used is in the JSON file's `mgrec` block and in the summary. `stream_folders`: a run with
    several input streams reads the other streams' files from these folders (by name) instead of its config's.
    `fps`: the videos' frame rate (`--fps`), for files whose sidecar and run do not say it (`OfflineDetector.file_fps`).
    `subtitle_names`: a video's subtitle file name where it is not its id (a video file's own stem).
    `failed`: where given, a file that cannot be read (another width, NaN, no fps known) is said there and the others'
    detections are written (one bad file of an overnight batch lost every other video's work); otherwise it is raised.
    `member_folders`, `member_stream_folders`: a detection-level ensemble whose members read different features reads
    member M's files of each video from `member_folders[M]` (`OfflineDetector.member_folders`), and the other streams
    of a member that reads several from `member_stream_folders[M]`; the inputs name the videos, and they and
    `stream_folders` are member 0's.
    `onnx`: the run's network exported by `mgrec export`, run by onnxruntime in its place (`OnnxNetwork.detector`); the
    JSON file's `mgrec` block names it.
    `videos`: the video files the command made `inputs` of, by video id: a label folder records of such a video the
    video, not its features, which each command makes again (`mgrec.infer.label_set.read_inputs`).
    """
    folder_output = fmt == "smg" or fmt in SUBTITLE_FORMATS  # a file per video, in the folder OUT
    check_writable(out, is_dir=folder_output)
    # a subtitle folder is held from here to its last file (`claim_subtitle_folder`), a label folder too
    # (`hold_label_folder`, as `mgrec stream` holds it): another writer into it is refused before this one's work, not
    # found mixed with it after, nor its unfinished set taken for an interrupted one's and resumed
    with (claim_subtitle_folder(out, fmt) if fmt in SUBTITLE_FORMATS else
          hold_label_folder(out) if fmt == "smg" else contextlib.nullcontext()):
        fps = checked_fps(fps, "--fps")  # before the run is loaded
        if onnx is None:
            detector = OfflineDetector.from_run(run_dir, device=device, precision=precision)
        else:
            detector = OnnxNetwork.detector(run_dir, onnx, device, precision)
        detector = detector.reading(stream_folders, member_folders, member_stream_folders)
        paths = feature_files(inputs, log=lambda line: print(line, file=sys.stderr))
        video_ids = distinct_video_ids(paths, detector.config.data.feature_prefix)
        labels: LabelSet | None = None
        if fmt == "smg":  # each video gets OUT/<id>/<id>_finelabels.csv: every one checked before any work, and OUT
            # refused where it holds label files already (said against these: a finished set of the same videos, or
            # not), but those of an interrupted detect of the same plan, which are kept: only the others are detected
            settings = {"set": "ranked" if ranked else "hard", "precision": detector.precision, "fps": fps,
                        **({} if onnx is None else {"onnx": str(Path(onnx).resolve())})}
            given = {video: path for path, video in video_ids.items()}
            # each label file recorded with its video's inputs: a resumed set keeps it only for them (two feature
            # files swapped since, and video A's kept file held the detections of A's old input)
            identify = read_inputs(lambda video: detector.input_files(given[video], video), videos)
            labels = LabelSet.planned(out, run_dir, list(video_ids.values()), settings, DETECT, identify)
            paths = [path for path in paths if video_ids[path] not in labels.done]
        seen = trained_on(RunDir(run_dir), video_ids.values())
        if seen:
            print(f"note: {part_of(len(seen), len(video_ids), 'video')} {'is one' if len(seen) == 1 else 'are ones'} "
                  "the run trained or validated on "
                  f"({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): their detections say little about "
                  "unseen videos (a challenge submission holds the test videos only)", file=sys.stderr)
        if fmt in SUBTITLE_FORMATS:  # OUT/<id>.srt: refused before any work where a file is there already
            subtitle_paths(list(video_ids.values()), out, fmt, subtitle_names)
        results: dict[str, list[Detection]] = {}
        durations: dict[str, float] = {}  # seconds each video's features cover (a report's timelines end there)
        # a label folder gets each video's file as soon as it is detected (`LabelSet.write`): an interruption after
        # hours keeps every finished video's, and the same command detects only the others; the other formats are
        # one file (or one per video, in one go) written once every video is detected: nothing is half written
        where = StoppedIn("video", len(paths), lambda done: (
            _label_set_kept(labels) if labels is not None else f"nothing was written to {out} (detect writes it once "
            "every video is detected); the same command again detects them all"))
        with where:
            for path in where.each(tqdm(paths, desc="detect", unit="video", disable=not progress, leave=False),
                                   name=video_ids.get):
                try:
                    video_fps = detector.file_fps(path, fps, what="--fps")
                    detections = detector.detect(path, video_ids[path], fps=video_fps)
                except RunError:  # the run's own (its recipe): every later input would meet it too
                    raise
                except InputError as exc:
                    if failed is None:
                        raise
                    failed.append(str(exc))
                    continue
                results[video_ids[path]] = detections if ranked else detector.hard_set(detections)
                grid = detector.grid(video_fps)
                durations[video_ids[path]] = grid.covered_seconds(feature_file_shape(path)[0])
                if labels is not None:
                    labels.write(video_ids[path], results[video_ids[path]], grid.fps, with_scores=ranked)
            if not results and not (labels and labels.done):  # a resumed set whose every file was there: it ends now
                # (a new label set's folder is left as it was found: its marker is made with its first file)
                raise InputError("no input could be read, nothing was written:\n  " + "\n  ".join(failed or []))
            # a video that could not be read (`failed`) has no file: the folder stays marked unfinished, so that it is
            # not scored as a whole set, and the same command again detects that video alone
            missing = [] if labels is None else labels.end()
        out = Path(out)
        summary = DetectSummary(out, len(results), sum(map(len, results.values())), ranked,
                                detector.postprocess.score_threshold, detector.threshold_tuned_on, detector.precision,
                                detector.postprocess.class_thresholds, "pytorch" if onnx is None else "onnxruntime",
                                len(missing), 0 if labels is None else len(labels.done) - len(results))
        if fmt == "json":
            engine = {} if onnx is None else {"engine": "onnxruntime", "onnx": str(Path(onnx).resolve())}
            info = {**predictions_info(detector, ranked), **engine, "durations": durations}
            save_predictions(results, out, info=info)
        elif fmt == "csv":
            save_predictions_csv(results, out)
        elif fmt in SUBTITLE_FORMATS:
            write_subtitles(results, out, fmt, subtitle_names)
        return summary


def _label_set_kept(labels: LabelSet) -> str:
    """What an interruption of `mgrec detect --format smg` keeps: the label files written so far, in a folder marked
    unfinished until the last one, which the same command finishes; or the whole set, where it ended just before."""
    marker = Path(labels.out) / INCOMPLETE_MARKER
    total = len(labels.label_paths)
    if not labels.missing() and not marker.exists():  # stopped as its marker went: the set is whole
        return f"every one of the {counted(total, 'label file')} is in {labels.out}: the set is whole"
    if not marker.exists():  # stopped before its first file: the folder as it was found
        return f"no label file was written to {labels.out}; the same command again detects them all"
    # Ctrl-C among a thousand videos' files said "interrupted" alone: not that some files are there, in a folder the
    # readers refuse while its marker says it is unfinished, nor that the same command finishes it
    return (f"{part_of(len(labels.done), total, 'label file')} {'is' if len(labels.done) == 1 else 'are'} in "
            f"{labels.out}, which stays marked unfinished ({marker}: `mgrec score` and the other readers refuse the "
            f"folder); the same command again keeps them and detects the others")


def trained_on(run: RunDir, videos: Iterable[str]) -> list[str]:
    """Those of `videos` the run trained or validated on, by the record of its splits (none for a run started before
    format 14, which has no record)."""
    record = run.read_splits() or {}
    known = set(record.get("train", [])) | set(record.get("val", []))
    return [video for video in videos if video in known]


def predictions_info(detector: OfflineDetector, ranked: bool, threshold: float | None = None,
                     tuned_on: str | None = None, class_thresholds: list[float] | None = None) -> dict:
    """The `mgrec` block of a results JSON: which set it holds, where its thresholds come from (the score
    threshold, and the per-class ones where the run tuned them), and the precision of the network's forward
    pass ("fp32" or "bf16").

    `threshold`, `tuned_on`, `class_thresholds`: thresholds other than the run's (re-tuned by `evaluate
    --tune-on`)."""
    return {
        "set": "ranked" if ranked else "hard",
        "score_threshold": detector.postprocess.score_threshold if threshold is None else threshold,
        "class_thresholds": detector.postprocess.class_thresholds if threshold is None else class_thresholds,
        "threshold_tuned_on": detector.threshold_tuned_on if threshold is None else tuned_on,
        "run": str(detector.run_root),  # absolute: the file is read from other folders
        "checkpoint": detector.checkpoint,
        "inference_precision": detector.precision,
    }


def distinct_video_ids(paths: list[Path], prefix: str,
                       id_of: Callable[[Path], str | None] = lambda path: None) -> dict[Path, str]:
    """The video id each file names (`video_id_of`: its name, less the run's data.feature_prefix; `id_of`'s, for a
    file it names: a video's), refused where two files name one video (one output would replace the other)."""
    seen: dict[str, Path] = {}
    for path in paths:
        video = id_of(path) or video_id_of(path, prefix)
        if video in seen:
            raise InputError(f"{seen[video]} and {path} are both video {video!r}; "
                             "one output would silently replace the other")
        seen[video] = path
    return {path: video for video, path in seen.items()}
