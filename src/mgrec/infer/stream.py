"""Streaming files and videos through the online detector: `mgrec stream`, and `mgrec evaluate --online`.

    summary = stream_file("runs/demo-mgrec", "features/video_01.npy")  # one JSON line per gesture, on stdout

`stream_files` replays feature files (or folders of them) one after another, each video as its own live stream
through `mgrec.infer.online.OnlineDetector` (or `FusedOnlineDetector`, for a detection-level ensemble), and prints
one JSON line per emitted gesture: the keys of the results JSON (`Detection.to_json`) plus video, emitted_at,
latency and compute_ms (`Emission.to_json`); or it writes the gestures as SMG label files, the online track's
submission. Videos decoded while they stream come in through `VideoFeatures` (made by `mgrec.extract.live`: infer
does not import extract).

What a stream of files owes its user, beyond the detector's rules:
- everything that can be refused is refused before the first update (`stream_files`: ids, label folders, every
  file read and checked as its stream will read it), so that one bad file does not stop an hour's work midway;
- Ctrl-C (or SIGTERM from `mgrec stream`) ends the video in progress as its end would and stops
  (`StreamInterrupted`), and never between an update's decision and its written lines: it waits while an update is
  made and its lines written (`_signals_held`, at most one update's time);
- an SMG folder stays marked unfinished until its last file is written, and the same call again streams only
  the videos it has no file of (`mgrec.infer.label_set.LabelSet`, as `mgrec detect --format smg` resumes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, NamedTuple, Protocol

import numpy as np

from mgrec.data.features import check_unchanged, source_stamp
from mgrec.data.streams import load_stream_files
from mgrec.data.videos import batched
from mgrec.devices import torch_threads
from mgrec.errors import InputError
from mgrec.files import (
    bool_argument,
    brief,
    check_writable,
    counted,
    part_of,
    path_argument,
)
from mgrec.infer.export import OnnxNetwork
from mgrec.infer.label_set import ARRIVES_ONCE, STREAM, Identify, LabelSet, input_identity, read_inputs
from mgrec.infer.offline import OfflineDetector, feature_files
from mgrec.infer.online import Emission, FusedOnlineDetector, OnlineDetector, checked_settings
from mgrec.smg_csv import checked_fps
from mgrec.timeline import FeatureGrid

# What `check_unchanged` says of a feature file that changed while it streamed (its rows are memory-mapped).
STREAMED_CHANGED = ("its rows are read as the stream goes (memory-mapped), so the gestures streamed may be of a part "
                    "of it, or of two versions of it: stream it again once it is complete")

# --onnx and --compile given together
ONNX_AND_COMPILE = ("--onnx runs the exported network in onnxruntime; --compile compiles the PyTorch network: give one "
                    "of them")


@dataclass(frozen=True)
class StreamSummary:
    """What a replayed stream did (`stream_file`): the line `mgrec stream` ends with, on stderr."""

    video_id: str
    emitted: int  # gestures emitted
    updates: int
    stream_seconds: float  # stream time covered by the features
    mean_compute_ms: float  # per update (network, post-processing, emission rule)
    p95_compute_ms: float
    precision: str = "fp32"  # of the network's forward pass: "fp32" or "bf16"
    offline_passes: int = 1  # the run's postprocess.shifted_passes (an ensemble's: its members' most); a stream: one
    normalize: str = "none"  # the run's data.normalize (an ensemble's: "video" where a member's is); "video": by the
    # steps received so far
    history: int = 0  # feature steps of the window the network saw (0: not recorded)
    history_seconds: float = 0.0  # the same in seconds of stream
    interrupted: bool = False  # ended by Ctrl-C (or SIGTERM from `mgrec stream`) before the file's end
    behind_seconds: float = 0.0  # `--realtime`: how far the updates fell behind the stream's pace at most
    decided_at_end: int = 0  # of the gestures emitted, those the stream's end decided (with less lookahead)
    engine: str = "pytorch"  # what ran the network: "pytorch", or "onnxruntime" (`stream --onnx`)

    def describe(self, notes: bool = True) -> str:
        """The summary line (and what went wrong: behind real time, interrupted); `notes`: the run's notes too (its
        shifted passes and normalisation, the same for every video of a run: said once for several)."""
        # The window is printed: a default that is too short for the run's gestures finds few of them, and
        # without it in the line nothing says which window ran.
        window = f", window {self.history} steps ({self.history_seconds:.1f} s)" if self.history else ""
        text = (
            f"stream {self.video_id}: {counted(self.emitted, 'gesture')} emitted in {counted(self.updates, 'update')} "
            "over "
            f"{self.stream_seconds:.1f} s of stream{window}; compute per update mean {self.mean_compute_ms:.1f} ms, "
            f"p95 {self.p95_compute_ms:.1f} ms ({self.precision} inference"
            f"{'' if self.engine == 'pytorch' else ', ' + self.engine})"
        )
        if self.behind_seconds > 0.5:
            text += (f"\nbehind real time: the updates fell up to {self.behind_seconds:.1f} s behind the stream's "
                     "pace (they took longer than the stream they covered lasted), and gestures were printed up to "
                     "that much later than their emitted_at says")
        if self.interrupted:
            text += (f"\ninterrupted at {self.stream_seconds:.1f} s of stream: the gestures still pending were "
                     "decided as at a stream's end, on what had arrived")
        if notes and self.offline_passes > 1:
            text += (f"\nnote: the run detects offline in {self.offline_passes} shifted passes "
                     "(postprocess.shifted_passes) and its score threshold was tuned on their fused scores; the "
                     "stream made one pass per update at that threshold")
        if notes and self.normalize == "video":
            text += ("\nnote: the run standardises each video by its own statistics (data.normalize: video); the "
                     "stream used those of the steps received so far, so its first seconds rest on few steps")
        return text


class VideoSource(NamedTuple):
    """One video's inputs, read and checked, as its stream takes them (`video_source`, `ensemble_source`, a video
    decoded as it streams in `stream_files`)."""

    fps: float | None  # the video's frames per second (of a detection-level ensemble: member 0's)
    # every stream's rows (an array, or rows made one by one as a video is decoded) and its own grid (None: the grid
    # stream's, the stream's clock), the grid stream first
    loaded: list[tuple[np.ndarray | Iterable[np.ndarray], FeatureGrid | None]]
    # the fps of the streams on grids of their own, by name (of an ensemble: every member's, `member_stream_names`)
    stream_fps: dict[str, float | None]
    # each feature file given, with its `source_stamp` before it was read: its rows are memory-mapped, read as the
    # stream goes, and it must be the same at the stream's end (`check_unchanged`; a video decoded as it streams
    # checks its own file)
    stamps: tuple[tuple[Path, str], ...] = ()


class VideoFeatures(Protocol):
    """A run's features of a video made while it is decoded (`mgrec.extract.live.LiveFeatures`, which the command
    line gives `stream_files`: infer does not import extract): which inputs are its videos and their ids, a video's
    frame rate, then one (C,) row per window; `close` closes what `fps` opened and no `rows` read."""

    def takes(self, path: Path) -> bool: ...

    def video_id(self, path: Path) -> str: ...

    def fps(self, video: Path) -> float: ...

    def rows(self, video: Path) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


class StreamInterrupted(KeyboardInterrupt):
    """`stream_file` ended by Ctrl-C (or SIGTERM from `mgrec stream`): the gestures that had arrived were decided and
    written first; `summary` is what the stream did, and `not_streamed` the ids of the videos `stream_files` was to
    stream after it (none for one file). `stream_files` stopped between two videos (the next one's inputs opening, a
    label file being written) raises it too, with no `summary` (no video was in progress): `streamed` names the
    videos it streamed to their end. A KeyboardInterrupt, so that a script stops as it would."""

    def __init__(self, summary: StreamSummary | None, not_streamed: list[str] | None = None) -> None:
        super().__init__()
        self.summary = summary
        self.not_streamed = [] if not_streamed is None else not_streamed  # `stream_files`: the videos after it
        self.streamed: list[str] = []  # `stream_files`: the videos this call streamed to their end
        self.label_files: list[str] = []  # `stream_files` with smg_out: the videos whose label files are written
        # `stream_files` resuming an SMG folder: the videos an earlier command streamed into it (not streamed again)
        self.streamed_earlier = 0


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while an update is made and its gestures are written (`stream_video`): one arriving in
    between would leave gestures decided (and never offered again) but unwritten. Their Python handlers are swapped
    for a recorder meanwhile and a signal that came is raised again after (masking them would not do: the kernel
    hands a signal to any thread that does not mask it, torch's among them). A second signal while one is held is
    let through at once: an update that hangs (a stuck device) must still stop at a user's insistence. Python runs
    handlers in the main thread only: elsewhere, and for a handler set outside Python, nothing is held."""
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or any(
            signal.getsignal(number) is None for number in held):
        yield
        return
    came: list[int] = []

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def record(number: int, frame) -> None:
        came.append(number)
        if len(came) > 1:
            restore()
            signal.raise_signal(number)

    previous = {number: signal.signal(number, record) for number in held}
    try:
        yield
    finally:
        restore()
        if len(came) == 1:
            signal.raise_signal(came[0])


def chunks_of(features: np.ndarray | Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of `size` rows (the last may be shorter): a file replayed as a stream, or rows made one
    by one (`VideoFeatures.rows`), each piece given as soon as its last row is made."""
    if isinstance(features, np.ndarray):
        for begin in range(0, features.shape[0], size):
            yield features[begin : begin + size]
        return
    for piece in batched(features, size):
        yield np.stack(piece)


def stream_file(
    run_dir: str | Path,
    input_path: str | Path,
    lookahead: float = 2.0,
    realtime: bool = False,
    hop: int | None = None,
    out: IO[str] | None = None,
    threads: int | None = 1,
    history: int | None = None,
    compile: bool = False,
    device: str = "auto",
    precision: str = "auto",
    stream_folders: dict[str, Path] | None = None,
    fps: float | None = None,
    wall_clock: bool = False,
) -> StreamSummary:
    """Replay a feature file as a live stream and print one JSON line per emitted gesture.

    A run with several input streams (`data.streams`): the file is the grid stream's; the other
    streams' files of the same video come from their folders (`stream_folders`, else the run's
    config), resampled onto the grid, and each update pushes one hop of all of them, joined.

    The fps comes from the file's sidecar (`<stem>.json`) or the run's `data.fps`, else from `fps` (`--fps`),
    which may not contradict them (`OfflineDetector.file_fps`). `realtime`: push
    each hop of features at the wall-clock moment its last feature would exist in a live video
    (updates only happen at hop boundaries, so finer pushing would report nothing sooner); otherwise
    as fast as possible. `hop`, `history`, `compile`: as for `OnlineDetector`. `threads`: torch CPU threads while it
    streams (None: leave torch's setting; the one before is restored after).
    One is the default because an update is a batch of one short window: more threads add
    synchronisation, not speed (on the 2-core Xeon, the demo's update took 20.8 ms on two threads against 10.6 ms
    on one: README, "The demo").
    `device`: auto, cpu, cuda or cuda:N. `precision`: auto, fp32 or bf16 (`OfflineDetector.from_run`).
    `wall_clock`: each line also holds the clock's time of its report (`Emission.to_json`).
    Returns what happened: gestures, updates, compute per update, the precision used.
    """
    input_path = path_argument(input_path, "stream_file: input_path")
    (summary,) = stream_files(run_dir, [input_path], lookahead=lookahead, realtime=realtime, hop=hop, out=out,
                              threads=threads, history=history, compile=compile, device=device, precision=precision,
                              stream_folders=stream_folders, fps=fps, single_file=True, wall_clock=wall_clock)
    return summary


def stream_files(
    run_dir: str | Path,
    inputs: list[str | Path],
    lookahead: float = 2.0,
    realtime: bool = False,
    hop: int | None = None,
    out: IO[str] | None = None,
    threads: int | None = 1,
    history: int | None = None,
    compile: bool = False,
    device: str = "auto",
    precision: str = "auto",
    stream_folders: dict[str, Path] | None = None,
    fps: float | None = None,
    smg_out: str | Path | None = None,
    on_video_end: Callable[[StreamSummary], None] | None = None,
    single_file: bool = False,
    live: VideoFeatures | None = None,
    wall_clock: bool = False,
    onnx: str | Path | None = None,
    member_folders: dict[int, Path] | None = None,
    member_stream_folders: dict[int, dict[str, Path]] | None = None,
    videos: dict[str, Path] | None = None,
) -> list[StreamSummary]:
    """Replay feature files (or folders of them) one after another, each as its own live stream, as
    `stream_file` does one: one JSON line per emitted gesture on `out` (stdout), or, with `smg_out`, the
    gestures of every video written as SMG label files (`OUT/VID/VID_finelabels.csv`, the online track's
    submission), each as its video's stream ends.

    Each video starts a new `OnlineDetector` (nothing of one stream carries into the next: its clock, window,
    running statistics); the network is loaded once, and compiled once for all (`compile_for_window`).
    Everything that can be refused is refused before the first update: ids that two files share, an SMG folder
    that holds label files already or cannot hold every video's, and every file read and checked as its stream
    will read it (features, the other streams' files, fps, the window at its fps: `video_source`), so one bad
    file does not stop the work after the videos before it were streamed. `on_video_end` hears each video's summary
    as it ends. Ctrl-C during a video ends that video as its end would and stops (`StreamInterrupted`, with that
    video's summary and the ids of the videos not streamed, `not_streamed`): the videos after it are not streamed.
    Ctrl-C between two videos stops there, with a StreamInterrupted of no summary (`streamed` names those finished).
    The SMG folder stays marked unfinished until its last video's file is written (`mgrec.smg_csv.INCOMPLETE_MARKER`:
    a partial set would be scored as the whole submission), and the same call again, into it, streams only the
    videos it has no file of (`LabelSet`): after Ctrl-C or a kill, an hour of streamed videos is kept.
    Returns one summary per video streamed, in order.
    A detection-level ensemble streams through `FusedOnlineDetector`: the files given are member 0's, and member M
    reads its file of each video from `member_folders[M]` (`OfflineDetector.member_folders`; else the file given).
    `single_file`: `stream_file`'s one path, read as it is (not a folder). `live`: the videos among `inputs` (files,
    `-` for standard input, or URLs: `mgrec.data.videos.NetworkSource`) are streamed as they are decoded, their rows
    made by it window by window (`VideoFeatures`). `wall_clock`: each JSON line also holds the clock's time of its
    report (`Emission.to_json`).
    `onnx`: the run's network exported by `mgrec export`, run by onnxruntime in its place (`OnnxNetwork.detector`).
    `videos`: the video files the command made `inputs` of, by video id: an SMG folder records of such a video the
    video, not its features, which each command makes again (`mgrec.infer.label_set.read_inputs`).
    """
    from mgrec.run import hold_label_folder

    lookahead, hop, history, fps, out = _checked_arguments(lookahead, hop, history, fps, realtime, wall_clock, out,
                                                           smg_out, onnx, compile)
    with torch_threads(threads), contextlib.ExitStack() as held:
        if live is not None:  # a source it opened to check, left unread where a later check failed: its connection
            held.callback(live.close)
        if smg_out is not None:  # one stream at a time: a second would take the first one's marker for its own
            check_writable(smg_out, is_dir=True)
            held.enter_context(hold_label_folder(smg_out))
        detector = _stream_detector(run_dir, device, precision, threads, onnx, live).reading(
            stream_folders, member_folders, member_stream_folders)
        video_ids = _video_ids(inputs, detector, single_file, live)
        labels: LabelSet | None = None
        if smg_out is not None:  # every check before the first update: a refusal after an hour of streaming loses it
            settings = {"lookahead": lookahead, "hop": hop, "history": history, "precision": detector.precision,
                        "fps": fps, **({} if onnx is None else {"onnx": str(Path(onnx).resolve())})}
            labels = LabelSet.planned(smg_out, run_dir, list(video_ids.values()), settings, STREAM,
                                      _identify(detector, video_ids, live, videos))
        _note_videos_trained_on(run_dir, list(video_ids.values()), single_file)
        paths = [path for path in video_ids if labels is None or video_ids[path] not in labels.done]
        reader = _VideoReader(detector, video_ids, fps, stream_folders, live)
        first = reader.check_all(paths, lookahead, hop, history)
        if labels is not None:
            labels.begin()
        summaries: list[StreamSummary] = []
        streamed: list[str] = []  # the videos streamed to their end (a label file may still be being written)
        try:
            for index, path in enumerate(paths):
                source = first if index == 0 else reader.source(path)
                first = None
                kept: list[Emission] | None = [] if labels is not None else None
                summary = stream_video(detector, source, video_ids[path], lookahead, realtime, hop, history,
                                       compile, out, kept, wall_clock)
                streamed.append(video_ids[path])
                if labels is not None:  # written now: a kill later keeps it, the same call again streams the others
                    labels.write(video_ids[path], [emission.detection for emission in kept],
                                 detector.grid(source.fps).fps)
                summaries.append(summary)
                if on_video_end is not None:
                    on_video_end(summary)
            if labels is not None:
                labels.end()
        except KeyboardInterrupt as interrupt:
            # Ctrl-C in a video is `stream_video`'s StreamInterrupted; one between two videos (the next one's inputs
            # opening, a label file or the set's end being written) was a bare KeyboardInterrupt, which the command
            # could only call "interrupted": both carry what was streamed, what was not, and which files are kept
            stopped = interrupt if isinstance(interrupt, StreamInterrupted) else StreamInterrupted(None)
            in_progress = {stopped.summary.video_id} if stopped.summary is not None else set()
            stopped.streamed = list(streamed)
            stopped.not_streamed = [video_ids[path] for path in paths
                                    if video_ids[path] not in {*streamed, *in_progress}]
            stopped.label_files = [] if labels is None else sorted(labels.done)
            stopped.streamed_earlier = len(video_ids) - len(paths)
            if stopped.summary is not None and on_video_end is not None:
                on_video_end(stopped.summary)
            if stopped is interrupt:
                raise
            raise stopped from None
        return summaries


def _identify(detector: OfflineDetector, video_ids: dict[Path, str], live: VideoFeatures | None,
              videos: dict[str, Path] | None) -> Identify:
    """`LabelSet.identify` of a stream's label set: each video's inputs (`read_inputs`); a video decoded as it
    streams, its file (standard input or a URL: `ARRIVES_ONCE`, it cannot be read again)."""
    given = {video: path for path, video in video_ids.items()}
    files = read_inputs(lambda video: detector.input_files(given[video], video), videos)

    def identify(video: str) -> list[tuple[str | Path, str]]:
        path = given[video]
        if not _decoded_live(live, path):
            return files(video)
        return [(path, input_identity(path, video=True) if path.is_file() else ARRIVES_ONCE)]
    return identify


def _checked_arguments(lookahead: float, hop: int | None, history: int | None, fps: float | None, realtime: bool,
                       wall_clock: bool, out: IO[str] | None, smg_out: str | Path | None, onnx: str | Path | None,
                       compile: bool) -> tuple[float, int | None, int | None, float | None, IO[str] | None]:
    """`stream_files`' arguments checked before anything is read or held: (lookahead, hop, history, fps) as the
    stream takes them, and the text stream the JSON lines go to (standard output unless `smg_out`; None with it)."""
    # realtime="no" paced the stream by the clock, wall_clock="no" added the clock's time; a path for `out` was an
    # AttributeError at the first gesture, after the stream's work
    bool_argument(realtime, "realtime")
    bool_argument(wall_clock, "wall_clock")
    # as the stream takes them, before anything is read: an SMG folder's marker records them in JSON (numpy's int64 was
    # a raw TypeError there, after every file was read and checked)
    lookahead, hop, history = checked_settings(lookahead, hop, history)
    fps = checked_fps(fps)
    if out is not None and not callable(getattr(out, "write", None)):
        hint = ": open it first (open(path, 'w')), or pass smg_out for SMG label files" * isinstance(
            out, (str, os.PathLike))
        raise InputError(f"out: expected a text stream (sys.stdout, an open file, io.StringIO), got {brief(out)}{hint}")
    if out is not None and smg_out is not None:
        raise InputError("the gestures go either to out (JSON lines) or to smg_out (SMG label files), not both")
    if wall_clock and smg_out is not None:
        raise InputError("wall_clock (--wall-clock) puts the time of each report into the JSON lines; SMG label files "
                         "(smg_out, --format smg) hold no time of report")
    if onnx is not None and compile:
        raise InputError(ONNX_AND_COMPILE)
    out = sys.stdout if out is None and smg_out is None else out  # looked up per call: the caller may redirect it
    return lookahead, hop, history, fps, out


def _stream_detector(run_dir: str | Path, device: str, precision: str, threads: int | None,
                     onnx: str | Path | None, live: VideoFeatures | None) -> OfflineDetector:
    """The run's detector, loaded once for every video (`onnx`: its exported network in onnxruntime's hands,
    `OnnxNetwork.detector`); a detection-level ensemble's refused for videos decoded as they stream."""
    detector = (OfflineDetector.from_run(run_dir, device=device, precision=precision) if onnx is None else
                OnnxNetwork.detector(run_dir, onnx, device, precision, threads))
    if detector.members is not None and live is not None:
        raise InputError(f"{detector.run_dir}: the members of a detection-level ensemble make their features "
                         "of a video whole first (give its feature files, or let `mgrec stream` make them)")
    return detector


def _decoded_live(live: VideoFeatures | None, path: Path) -> bool:
    """Whether `path` is a video that `live` decodes as it streams (not a feature file)."""
    return live is not None and live.takes(path)


def _video_ids(inputs: list[str | Path], detector: OfflineDetector, single_file: bool,
               live: VideoFeatures | None) -> dict[Path, str]:
    """The files (and videos, `live`) that `inputs` name, in order, each with its video id, no two of one video
    (`distinct_video_ids`); `single_file`: the one path as it is, not a folder."""
    from mgrec.infer.detect import distinct_video_ids

    paths = [Path(input_path) for input_path in inputs] if single_file else feature_files(
        inputs, log=lambda line: print(line, file=sys.stderr), as_given=lambda path: _decoded_live(live, path))
    if not paths:
        raise InputError(f"no feature file to stream in {', '.join(map(str, inputs))}")
    return distinct_video_ids(paths, detector.config.data.feature_prefix,
                              id_of=lambda path: live.video_id(path) if _decoded_live(live, path) else None)


def _note_videos_trained_on(run_dir: str | Path, videos: list[str], single_file: bool) -> None:
    """A note on stderr where some of several `videos` are ones the run trained or validated on."""
    from mgrec.infer.detect import trained_on
    from mgrec.run import RunDir

    seen = trained_on(RunDir(run_dir), videos)
    if seen and not single_file:
        print(f"note: {part_of(len(seen), len(videos), 'video')} {'is one' if len(seen) == 1 else 'are ones'} the run "
              "trained or validated on "
              f"({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): their gestures say little about "
              "unseen videos (an online-track submission holds the test videos only)", file=sys.stderr)


@dataclass
class _VideoReader:
    """How `stream_files` reads a video's inputs (`VideoSource`): a video decoded as it streams, its header (its
    rows are made at their turn); of a detection-level ensemble, each member's file (`ensemble_source`); else the
    file and the run's other streams' files (`video_source`)."""

    detector: OfflineDetector
    video_ids: dict[Path, str]
    fps: float | None  # given (`--fps`)
    stream_folders: dict[str, Path] | None
    live: VideoFeatures | None

    def source(self, path: Path) -> VideoSource:
        """`path`'s inputs, read and checked as its stream takes them."""
        detector, video_id = self.detector, self.video_ids[path]
        if _decoded_live(self.live, path):  # its rows made at their turn; the video's header read now
            video_fps = self.live.fps(path)
            detector.require_fps(path, video_fps)
            # as for its features' sidecar (`check_stream_recipe`): a video of another rate than the run's training
            # features was streamed without a word, each feature step spanning another stretch of time
            detector.note_another_rate(video_fps, str(path))
            return VideoSource(video_fps, [(self.live.rows(path), None)], {})
        if detector.members is not None:
            member_paths = [detector.member_input(m, path, video_id)[0] for m in range(len(detector.members))]
            return ensemble_source(detector, member_paths, video_id, self.fps)
        return video_source(detector, path, video_id, self.fps, self.stream_folders)

    def check_all(self, paths: list[Path], lookahead: float, hop: int | None,
                  history: int | None) -> VideoSource | None:
        """Each video's inputs read and checked now, as its stream will read them, its window at its fps included
        (`online_detector`): one bad file (another width, a NaN, a missing stream file) found at its turn stopped the
        work after the videos before it were streamed (with smg_out, nothing of them written). Returns the first
        one's source (None: no video), kept for its stream; the others are read again at their turn, so that memory
        holds one video at a time. A video streamed as decoded: its header only."""
        first = self.checked(paths[0], lookahead, hop, history) if paths else None
        for path in paths[1:]:
            self.checked(path, lookahead, hop, history)
        return first

    def checked(self, path: Path, lookahead: float, hop: int | None, history: int | None) -> VideoSource:
        """`path`'s source, its window checked at its fps as its stream will make it (`online_detector`)."""
        source = self.source(path)
        online_detector(self.detector, source, self.video_ids[path], lookahead, hop, history)
        return source


def video_source(detector: OfflineDetector, path: Path, video_id: str, fps: float | None,
                 stream_folders: dict[str, Path] | None, fps_said_as: str = "--fps") -> VideoSource:
    """One video's inputs, read and checked (`stream_files`, `mgrec evaluate --online`): its fps
    (`OfflineDetector.file_fps`; `fps_said_as` names where `fps` came from), every stream's rows and grid (the file
    is the grid stream's; `load_stream_files`), and the fps of each stream on its own grid."""
    # before any reading: the rows are memory-mapped, read as the stream goes; every other stream's file is stamped
    # as it is read (`load_stream_files`), all checked at the stream's end
    stamps = [(path, source_stamp(path))]
    video_fps = detector.file_fps(path, fps, what=fps_said_as)
    loaded = load_stream_files(detector.config.data, video_id, video_fps, folders=stream_folders, main_path=path,
                               check_recipe=detector.check_stream_recipe, stamps=stamps)
    detector.require_fps(path, video_fps)  # named here: OnlineDetector's grid would not say which file
    stream_fps = {s.name: grid.fps for s, (_, grid) in zip(detector.config.data.input_streams(), loaded)
                  if grid is not None}
    return VideoSource(video_fps, loaded, stream_fps, tuple(stamps))


def ensemble_source(detector: OfflineDetector, paths: list[Path], video_id: str,
                    fps: float | None | list[float | None], fps_said_as: str = "--fps", files_given: bool = True
                    ) -> VideoSource:
    """One video's inputs for a detection-level ensemble's stream (`FusedOnlineDetector`), read and checked: each
    member's rows from its file (`paths[m]`), as `video_source` reads a run's (`fps`: the video's, or each member's),
    every stream of every member in the place of a run's streams, named as `member_stream_names` names them, each but
    member 0's grid stream with its grid (`_replay` hands each the rows that exist by then), and the fps of each by
    name (a member's grid stream: the member's fps). `files_given`: `paths` are the files a user gave (`mgrec stream`),
    so a member refusing the one it shares with member 0 is told how to give it its own (`--member`); False where
    each member's file comes from its own config (`evaluate --online`), which has no such option."""
    given = fps if isinstance(fps, list) else [fps] * len(detector.members)
    sources = []
    for index, (member, path, member_fps) in enumerate(zip(detector.members, paths, given)):
        try:  # said to be the member's, as `detect` says it: the member's recipe was said as the run's
            sources.append(video_source(member, path, video_id, member_fps, member.stream_folders, fps_said_as))
        except InputError as exc:
            shared = files_given and index > 0 and path == paths[0]
            raise detector.member_refusal(index, exc, read_the_given=shared) from None
    detector.check_member_spans([(path, len(source.loaded[0][0]), member.grid(source.fps))
                                 for member, path, source in zip(detector.members, paths, sources)], video_id)
    loaded, stream_fps = [], {}
    for index, (member, source) in enumerate(zip(detector.members, sources)):
        streams = member.config.data.input_streams()
        for stream, name, (rows, grid) in zip(streams, member_stream_names(member, index), source.loaded):
            if stream is streams[0]:  # the member's grid stream: its grid at the member's fps
                grid, stream_fps[name] = (None if index == 0 else member.grid(source.fps)), source.fps
            elif stream.name in source.stream_fps:
                stream_fps[name] = source.stream_fps[stream.name]
            loaded.append((rows, grid))
    return VideoSource(sources[0].fps, loaded, stream_fps,
                       tuple(dict.fromkeys(stamp for source in sources for stamp in source.stamps)))


def member_stream_names(member: OfflineDetector, index: int) -> list[str]:
    """How a stream of an ensemble names member `index`'s streams: "1" for its grid stream, "1/pose" for another."""
    streams = member.config.data.input_streams()
    return [str(index)] + [f"{index}/{stream.name}" for stream in streams[1:]]


def _member_and_stream(name: str) -> tuple[int, str]:
    """A name of `member_stream_names` -> (member index, stream name; "" for the member's grid stream)."""
    index, _, stream = name.partition("/")
    return int(index), stream


def online_detector(detector: OfflineDetector, source: VideoSource, video_id: str, lookahead: float,
                    hop: int | None = None, history: int | None = None, compile: bool = False) -> OnlineDetector:
    """The online detector of one video's `source`, at its fps and its streams' (`stream_fps`); of a detection-level
    ensemble (`ensemble_source`), a `FusedOnlineDetector`: each member at its fps, its streams at theirs."""
    if detector.members is None:
        return OnlineDetector(detector, source.fps, lookahead=lookahead, hop=hop, history=history, video_id=video_id,
                              compile=compile, stream_fps=source.stream_fps)
    member_fps, member_stream_fps = {}, {}
    for name, value in source.stream_fps.items():
        index, stream = _member_and_stream(name)
        if stream:
            member_stream_fps.setdefault(index, {})[stream] = value
        else:
            member_fps[index] = value
    return FusedOnlineDetector(detector, source.fps, lookahead=lookahead, hop=hop, history=history, video_id=video_id,
                               compile=compile, member_fps=member_fps, member_stream_fps=member_stream_fps)


def stream_video(detector: OfflineDetector, source: VideoSource, video_id: str, lookahead: float,
                 realtime: bool = False, hop: int | None = None, history: int | None = None, compile: bool = False,
                 out: IO[str] | None = None, kept: list[Emission] | None = None,
                 wall_clock: bool = False) -> StreamSummary:
    """One video's stream (`stream_files`, `mgrec evaluate --online`) of its `source` (`video_source`,
    `ensemble_source`): each emission written to `out` as a JSON line (`wall_clock`: with the clock's time of its
    report), or appended to `kept`."""
    fused = detector.members is not None  # each member's rows in the place of a run's streams (`ensemble_source`)
    online = online_detector(detector, source, video_id, lookahead, hop, history, compile)
    count, update_ms = 0, []
    online.on_update = update_ms.append  # every update's time, also where one call makes two

    def write(update: Callable[[], list[Emission]]) -> None:
        """`update` (a push or the flush) made and its gestures written, a signal held until both are done: one arriving
        between the update's return and its lines lost them (returned, so never offered again, and never written)."""
        nonlocal count
        with _signals_held():
            for emission in update():
                count += 1
                if kept is not None:
                    kept.append(emission)
                    continue
                out.write(json.dumps(emission.to_json(wall_clock)) + "\n")
                out.flush()
                if getattr(out, "broken", False):  # `terminal.TerminalText` after a broken pipe: nobody reads on
                    raise InputError(f"the reader of the stream's output went away after {count - 1} gesture(s), "
                                     f"at {online.now:.1f} s of stream: stopped (a live session would otherwise run "
                                     "on, its gestures dropped)")

    names = ([name for m, member in enumerate(detector.members) for name in member_stream_names(member, m)] if fused
             else [s.name for s in detector.config.data.input_streams()])
    interrupted, behind = False, 0.0
    started = time.monotonic()  # as `_replay`'s own clock, within its first step
    try:
        for chunk in _replay(source.loaded, names, online.hop, online.grid, realtime):
            if realtime:  # how late this hop is pushed: `_replay` waited for its moment unless updates ran over it
                grid_rows = chunk.get(names[0], ()) if isinstance(chunk, dict) else chunk
                received = online.received_steps + len(grid_rows)
                behind = max(behind, time.monotonic() - started - online.grid.covered_seconds(received))
            if not isinstance(chunk, dict):
                write(lambda: online.push(chunk))
            elif fused:
                write(lambda: online.push_members(_by_member(chunk, detector)))
            else:
                write(lambda: online.push_streams(chunk))
    except KeyboardInterrupt:  # Ctrl-C is how a live session ends: what arrived is decided, as at a stream's end
        interrupted = True
    streamed = count
    write(online.flush)
    if not interrupted:  # a file changed while its rows were read: the gestures were of a part of it, or of two
        for path, stamp in source.stamps:
            check_unchanged(path, stamp, STREAMED_CHANGED)
    times = np.asarray(update_ms) if update_ms else np.zeros(1)
    engine = "onnxruntime" if isinstance(detector.model, OnnxNetwork) else "pytorch"
    # what the notes say of offline detection: of a detection-level ensemble its members', each detecting with its own
    # post-processing and inputs (the ensemble's postprocess.json and config are member 0's, of which `detect` uses
    # the thresholds alone: a member 1 of 3 shifted passes, or standardised by video, went without its note)
    runs = detector.members or [detector]
    summary = StreamSummary(
        video_id, emitted=count, updates=online.num_updates, stream_seconds=online.now,
        mean_compute_ms=float(times.mean()), p95_compute_ms=float(np.percentile(times, 95)),
        precision=detector.precision, offline_passes=max(run.postprocess.shifted_passes for run in runs),
        normalize="video" if any(run.config.data.normalize == "video" for run in runs) else "none",
        history=online.history,
        history_seconds=online.history * online.grid.seconds_per_step(), interrupted=interrupted,
        behind_seconds=behind, decided_at_end=count - streamed, engine=engine)
    if interrupted:
        raise StreamInterrupted(summary)
    return summary


def _by_member(chunk: dict[str, np.ndarray], detector: OfflineDetector) -> dict[int, np.ndarray | dict]:
    """A chunk of `_replay` named by `member_stream_names` -> `push_members`' chunks: a member of one stream its rows, a
    member of several {stream: rows}."""
    members: dict[int, np.ndarray | dict] = {}
    for name, rows in chunk.items():
        index, stream = _member_and_stream(name)
        streams = detector.members[index].config.data.input_streams()
        if len(streams) == 1:
            members[index] = rows
        else:
            members.setdefault(index, {})[stream or streams[0].name] = rows
    return members


def _replay(loaded: list[tuple[np.ndarray | Iterable[np.ndarray], FeatureGrid | None]], names: list[str], hop: int,
            grid: FeatureGrid, realtime: bool) -> Iterator[np.ndarray | dict[str, np.ndarray]]:
    """Chunks of one hop of the grid stream (its rows an array, or made one by one as a video is decoded:
    `VideoFeatures`); with `realtime`, each at the wall-clock moment its last feature would exist. Several
    streams: each chunk is a dict holding, per stream, the rows that exist by then (a row exists at the end of its
    window, on its stream's own grid)."""
    started = time.monotonic()
    received = 0
    sent = [0] * len(loaded)
    for chunk in chunks_of(loaded[0][0], hop):
        received += chunk.shape[0]
        now = grid.covered_seconds(received)
        if realtime:
            time.sleep(max(0.0, started + now - time.monotonic()))
        if len(loaded) == 1:
            yield chunk
            continue
        parts = {names[0]: chunk}
        for s, (features, own) in enumerate(loaded[1:], start=1):
            existing = sent[s]
            while existing < len(features) and own.covered_seconds(existing + 1) <= now:
                existing += 1
            parts[names[s]] = features[sent[s]:existing]
            sent[s] = existing
        yield parts
    if len(loaded) > 1:  # rows of the other streams that end after the grid stream's last window
        yield {names[s]: features[sent[s]:] for s, (features, _) in enumerate(loaded) if s > 0}
