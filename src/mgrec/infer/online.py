"""Online detection: micro-gestures from a live feature stream, each reported once, as soon as it is final.

    online = OnlineDetector(OfflineDetector.from_run("runs/demo-mgrec"), fps=50.0, lookahead=2.0)
    for chunk in chunks:                          # (T_chunk, C) feature arrays as they arrive
        for emission in online.push(chunk):
            print(emission.detection.label, emission.detection.start, emission.latency)
    for emission in online.flush():               # end of the stream: everything pending is final
        ...

A run with several input streams (`data.streams`) takes one chunk per stream per step,
`online.push_streams({"rgb": rgb_chunk, "skeleton": skeleton_chunk})`: the streams are put on the grid
as they arrive (`mgrec.data.streams.StreamAligner`), each grid step once every stream has passed its time.

`mgrec.infer.stream` replays feature files and decoded videos this way (`mgrec stream`, `evaluate --online`).

How an update works
-------------------
The newest `history` feature steps are kept in a bounded buffer, the *window*. Every `hop` steps the
network and the post-processing run on the whole window exactly as offline detection runs on a whole
file (`mgrec.postprocess.video.detect_video`); the detections are shifted from window time to stream
time (the window starts at stream step `window_start`) and cut to the hard set (score >= the threshold
tuned on val, `OfflineDetector.postprocess.score_threshold`, or the threshold of the detection's class where the
run tuned one per class).

Time. The stream time `now` of an update is the moment its newest feature became available: the end
of that feature's frame window, `FeatureGrid.covered_seconds(steps received)`. An emission records
`emitted_at = now` and `latency = now - gesture end`.

Finality. The cutoff of an update is `now - lookahead`, or `now` less one feature step for a lookahead
shorter than that; a detection is final when its end lies at or before the cutoff, i.e. the network has
seen at least `lookahead` seconds (and one step) of what follows the gesture. A detection that ends within
the newest step is cut off by the window's edge and may still grow: at lookahead 0 each gesture in
progress was emitted cut there, then again whole.

The emission rule (each gesture once)
-------------------------------------
Update k decides the stretch of time (cutoff of update k-1, cutoff of update k]. A detection D of
update k's hard set with end <= cutoff_k is emitted when both hold:

1. D is final for the first time: its end lies after the previous cutoff, or D re-detects (same class,
   tIoU > 0.5) a detection that was still pending (end after the cutoff) at the previous update.
   Predictions move between updates; without the second clause a gesture whose predicted end moved
   back across the cutoff would never be emitted.
2. D is not a re-detection of a gesture already emitted: the recently emitted detections and the
   update's hard set are matched one to one (same class, tIoU > 0.5, highest tIoU first) and only
   unmatched detections are new. One to one, not "overlaps any", so that two detections which NMS
   kept apart within one update stay two, as they are in offline detection.

Consequences, by design:
- Every emission has latency >= max(lookahead, one step), and < that + hop seconds, unless its
  predicted end moved back between two updates (then it is later by that amount).
- Each stretch is decided once, with `lookahead` seconds of context after it. A detection that shows
  up only after its stretch was decided is never emitted: a score that rises above the threshold late,
  or an artefact at the left edge of the window, where the window cuts off the context.
- A gesture that is below the threshold at the update deciding it is not emitted.
- `flush()` decides everything that is left (cutoff = +inf): those emissions may have latency < lookahead.
- When the window holds the whole stream at the end and nothing is final before `flush()` (lookahead
  longer than the stream), the emissions are exactly the offline hard set of the whole stream.

Memory stays bounded on endless streams: the buffer holds at most `history` steps (stored in
2 * history rows, moved when full: amortised one copy per step); emitted detections are kept for
matching only while their end lies inside the window (an earlier one cannot overlap anything the window
can detect); the pending set is part of the last update's hard set.

Compute per update
------------------
Only the hard set is needed, so the post-processing skips what cannot reach it
(`hard_set_postprocess`): candidates scoring below the threshold before NMS are not decoded and the
(Soft-)NMS loop stops at the first pick below the threshold. Greedy NMS picks in descending score and a
lower candidate never changes a higher pick, so the hard set is the same as offline; the NMS loop,
which dominated an update when it ranked every candidate of the window, shrinks to about the size of
the hard set.

Window length: accuracy versus compute
--------------------------------------
The network's convolutions have a finite receptive field, but the DynE instance-dynamic branch and the
channel part of the spatial-temporal attention pool (mean, max) over the whole window, so predictions
depend on the window, not only on the neighbourhood of a gesture. A longer window sees statistics
closer to those of the training crops; a shorter one costs less per update. The default is an eighth
of the training crop (`data.max_seq_len // 8`: 128 steps = 10 s on the demo, 288 steps = 41 s on
SMG), chosen on the demo's validation split with `benchmarks/online_eval.py`: at a 2 s lookahead,
windows from 512 down to 96 steps gave about the offline F1 and shorter ones a little less (a 1 s
lookahead costs a little at every length), while the compute per update fell with the window down
to a floor: the network is nearly all of an update, and the several hundred small operations of one
forward pass cost about the same at any window length. The figures are in
`benchmarks/results/README.md` ("Online recognition" and "Figures moved out of docstrings").
The default is never shorter than deciding a gesture needs: lookahead and one hop after it, and the
gesture itself before them, up to twice the start of the top level's regression range
(`default_history`); on a run with short crops (the worked example's 128 steps) that is the longer one.

Per-video normalisation (`data.normalize: video`)
-------------------------------------------------
Offline, a video's features are standardised by the whole video's statistics (`mgrec.data.normalize`).
A stream has no whole video yet: each window is standardised by the statistics of every step received
so far (running sums, O(C) memory), which are the offline ones once the stream has passed its whole
length. Early in a stream they rest on a few seconds and differ more from the offline ones.

Compiled network (`compile=True`, `mgrec stream --compile`)
-----------------------------------------------------------
Most of an update is the fixed cost of those small operations, which `torch.compile` (inductor,
with its C++ wrapper) fuses into a few compiled kernels. The window is then always padded to one
fixed length (masked padding changes no result), so the network is compiled once, when the
detector is created: slow the first time (`speed.py`'s `online_compile_s`; inductor caches the
result on disk for later runs), and a C++ compiler must be installed.

Precision: the network runs as the detector's forward pass does offline (`OfflineDetector.autocast`,
from `--precision`), compiled or not; the compiled network is traced under that autocast.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import numbers
import os
import sys
import threading
import time
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from mgrec.config import MAX_STEPS, Config, PostprocessConfig
from mgrec.data.features import check_feature_values, given_array
from mgrec.data.normalize import RunningChannelStats
from mgrec.data.streams import MAX_STREAM_LAG_SECONDS, StreamAligner
from mgrec.devices import compile_failure
from mgrec.errors import InputError
from mgrec.evaluate.matching import greedy_match, same_class_tiou, tiou_above
from mgrec.files import bool_argument, brief
from mgrec.infer.offline import OfflineDetector
from mgrec.model.detector import COMPILED_LOGIT_TOLERANCE, logits_apart
from mgrec.model.inputs import pad_video
from mgrec.model.memory import check_fits
from mgrec.postprocess.detection_fusion import _fuse_detections
from mgrec.postprocess.second_opinion import lowest_score_that_can_pass
from mgrec.postprocess.video import detect_video, moved_detection
from mgrec.records import Detection, checked_video_id
from mgrec.smg_csv import checked_fps

# Same class and tIoU above this: the same gesture seen by two updates.
SAME_GESTURE_TIOU = 0.5
# Default update interval in seconds of stream (rounded to whole feature steps).
DEFAULT_HOP_SECONDS = 1.0
# Default window: at least the training crop length (data.max_seq_len) divided by this (see "Window
# length" above for the measurements behind it), and at least what a gesture needs (`default_history`).
DEFAULT_HISTORY_DIVISOR = 8


def gesture_steps(config: Config) -> int:
    """The longest gesture, in feature steps, that the network's levels below the top one learn: twice where the
    top level's regression range begins (capped at the training crop, the longest stretch the network saw).

    A level learns the gestures whose centre lies this many steps from their farther end, half their length
    (`model.regression_ranges`); the top range is open-ended, so its start is the one bound the run records
    on the gestures it was made for (`mgrec data check` sizes the levels so that the longest 1% of the training
    gestures fall there)."""
    top_start = config.model.regression_ranges[-1][0]
    return min(config.data.max_seq_len, math.ceil(2 * top_start))


def default_history(config: Config, lookahead_steps: int, hop: int) -> int:
    """The window an `OnlineDetector` uses when none is given, in feature steps: the most of

    - an eighth of the training crop, `data.max_seq_len // 8` (measured on the demo, "Window length" above);
    - the largest pyramid stride (the network's input must hold one step of its top level);
    - what deciding a gesture needs: at the update that decides it, a gesture ends up to `lookahead` and one hop
      before the newest step, and the whole gesture must still be inside the window (`gesture_steps`).

    The last was missing: the worked example's run (crop 128 steps, 0.16 s a step) got 20 steps, lookahead
    and hop and nothing more, and its stream emitted 1 gesture where offline detection finds all 6 cut-ins;
    with the gesture's 16 steps it gets 36 and emits those 6 (README, "Worked example"). The demo's (128
    steps) and SMG's (288) defaults stay the crop's eighth."""
    return max(config.data.max_seq_len // DEFAULT_HISTORY_DIVISOR, shortest_history(config, lookahead_steps, hop),
               lookahead_steps + hop + 1 + gesture_steps(config))


def shortest_history(config: Config, lookahead_steps: int, hop: int) -> int:
    """The shortest window an `OnlineDetector` takes, in feature steps: lookahead and one hop with a step to
    spare (a gesture must still be in the window at the update that decides it), and the largest pyramid
    stride (the network's input must hold one step of its top level)."""
    return max(lookahead_steps + hop + 1, 2 ** (config.model.num_levels - 1))


@dataclass(frozen=True)
class Emission:
    """One gesture reported by the online detector, with when it was reported."""

    detection: Detection  # times and frames are absolute within the stream
    emitted_at: float  # stream seconds of the update that reported it
    compute_ms: float  # wall time of that update (network, post-processing and the emission rule)
    wall_time: float | None = None  # the clock's time (Unix seconds) when the update reported it

    @property
    def latency(self) -> float:
        """Seconds of stream between the end of the gesture and its report."""
        return self.emitted_at - self.detection.end

    def to_json(self, wall_clock: bool = False) -> dict:
        """The JSON line `mgrec stream` prints for this emission: the video, the detection's keys in the
        results JSON (`Detection.to_json`: segment, segment(frames), label, label_id, score), then when
        and how fast it was reported; `wall_clock`: also `wall_time`, that moment on the clock (UTC, ISO 8601 to the
        millisecond), for a live source. Left out by default: the lines of two replays of one file are the same."""
        line = {
            "video": self.detection.video_id,
            **self.detection.to_json(),
            "emitted_at": round(self.emitted_at, 4),
            "latency": round(self.latency, 4),
            "compute_ms": round(self.compute_ms, 3),
        }
        if wall_clock and self.wall_time is not None:
            moment = datetime.datetime.fromtimestamp(self.wall_time, tz=datetime.timezone.utc)
            line["wall_time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return line


class FeatureWindow:
    """The newest `length` rows of a stream, contiguous in memory (a view, no copy per read).

    Rows are stored in an array of 2 * length rows; when it is full, the newest rows move to its
    front. Each row is thus copied at most twice, whatever the length of the stream.
    """

    def __init__(self, length: int, dim: int):
        self.length = length
        self._store = np.zeros((2 * length, dim), dtype=np.float32)
        self._begin = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._begin

    @property
    def capacity(self) -> int:
        return self._store.shape[0]

    def append(self, rows: np.ndarray) -> None:
        """Add rows (at most `length` of them); the oldest rows beyond `length` are dropped."""
        count = rows.shape[0]
        if count > self.length:
            raise ValueError(f"FeatureWindow.append: {count} rows exceed the window length {self.length}")
        if self._end + count > self.capacity:
            keep = min(len(self), self.length - count)
            # The source rows lie beyond `length` and the destination before it: no overlap.
            self._store[:keep] = self._store[self._end - keep : self._end]
            self._begin, self._end = 0, keep
        self._store[self._end : self._end + count] = rows
        self._end += count
        self._begin = max(self._begin, self._end - self.length)

    def view(self) -> np.ndarray:
        """The rows in stream order, (len, dim); valid until the next `append`."""
        return self._store[self._begin : self._end]


@dataclass(frozen=True)
class WindowPlan:
    """How an `OnlineDetector` updates: seconds of stream after a gesture's end before it is reported, feature steps
    between updates, and feature steps of the window the network sees; `note`: what the user should hear of it (a
    window too short for the run's longest gestures), else None."""

    lookahead: float
    hop: int
    history: int
    note: str | None = None


@dataclass(frozen=True)
class _Decision:
    """What the emission rule decided at one update (`OnlineDetector._decide`), before it is stored (`_commit`)."""

    emitted_now: list[Detection]  # the gestures it emits, in the order they ended
    cutoff: float  # everything ending at or before this is decided
    hard: list[Detection]  # the update's hard set
    pending: list[Detection]  # the part of it not final yet
    emitted: list[Detection]  # the emitted detections (these among them) whose end lies inside the window


def checked_settings(lookahead: object, hop: object = None, history: object = None
                     ) -> tuple[float, int | None, int | None]:
    """A stream's lookahead (seconds), hop and history (feature steps), refused by name where they are of the wrong
    kind, and returned as Python's float and ints (numpy's number types are taken: an SMG folder's marker records the
    settings in JSON, `stream_files`); None stays None (the default)."""
    if isinstance(lookahead, bool) or not isinstance(lookahead, numbers.Real) or not (
            math.isfinite(lookahead) and lookahead >= 0):
        raise InputError(f"lookahead must be a finite number of seconds >= 0, got {lookahead!r}")
    for name, value in (("hop", hop), ("history", history)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
            raise InputError(f"{name} must be a whole number of feature steps, got {value!r}")
    return float(lookahead), None if hop is None else int(hop), None if history is None else int(history)


def plan_window(config: Config, step_seconds: float, lookahead: object, hop: object = None,
                history: object = None) -> WindowPlan:
    """The checked lookahead, hop and window of a stream on a grid of `step_seconds` per feature step (hop and
    history None: their defaults, about a second and `default_history`)."""
    lookahead, hop, history = checked_settings(lookahead, hop, history)
    hop = hop if hop is not None else max(1, round(DEFAULT_HOP_SECONDS / step_seconds))
    if hop < 1:
        raise InputError(f"hop must be at least 1 feature step, got {hop}")
    # A gesture must still be inside the window at the update that decides it, with some
    # context before it: lookahead and one hop must fit in the window with room to spare.
    if lookahead / step_seconds > MAX_STEPS:
        raise InputError(f"a lookahead of {lookahead:g} s is more than an online window may hold "
                         f"({MAX_STEPS} feature steps, {MAX_STEPS * step_seconds:g} s)")
    lookahead_steps = math.ceil(lookahead / step_seconds)
    needed = shortest_history(config, lookahead_steps, hop)
    window = history if history is not None else default_history(config, lookahead_steps, hop)
    if window > MAX_STEPS:
        # checked before anything is allocated: the window holds history x feature_dim numbers
        # named as both the command line and Python (OnlineDetector's arguments) name them
        source = ("history (--history)" if history is not None else
                  f"hop (--hop) {hop}" if hop > lookahead_steps else f"lookahead (--lookahead) {lookahead:g} s")
        raise InputError(
            f"an online window of {window} feature steps (from {source}) is more than {MAX_STEPS}; "
            "use a shorter history, hop or lookahead"
        )
    if window < needed:
        raise InputError(
            f"history of {window} feature steps is too short for lookahead {lookahead:g} s "
            f"({lookahead_steps} steps) and hop {hop}: give at least {needed} steps "
            f"(and at least the largest pyramid stride, {2 ** (config.model.num_levels - 1)})"
        )
    gesture = gesture_steps(config)
    room = window - lookahead_steps - hop - 1  # what an update's window holds of the gesture it decides
    note = None
    if room < gesture:  # allowed (a shorter window is faster), but the longer gestures are lost
        note = (f"a window of {window} feature steps leaves {room} for the gesture an update decides, after "
                f"lookahead and hop; the run's gestures reach {gesture} steps, and longer ones are missed (the default "
                f"window holds them: {window - room + gesture} steps or more)")
    return WindowPlan(lookahead, hop, window, note)


def checked_chunks(chunks: object) -> Iterable:
    """`run`'s chunks, refused by name when called (not at the first emission asked for): a whole (T, C) array was
    pushed one 1-D row at a time (`expected shape (T, 128), got (128,)` of chunk 1), a str one character at a time,
    a dict by its keys, and None a raw `TypeError: 'NoneType' object is not iterable`."""
    if isinstance(chunks, (np.ndarray, torch.Tensor)):
        raise InputError(f"chunks: expected an iterable of (T, C) arrays (the stream's chunks, in order), got one "
                         f"{type(chunks).__name__} of shape {tuple(chunks.shape)}: give [array], or push(array) then "
                         "flush()")
    if isinstance(chunks, (str, bytes, dict)) or not isinstance(chunks, Iterable):
        raise InputError(f"chunks: expected an iterable of (T, C) arrays (the stream's chunks, in order), got "
                         f"{brief(chunks)}")
    return chunks


def checked_stream_fps(stream_fps: object, detector: OfflineDetector) -> dict[str, float] | None:
    """`stream_fps` as {name of one of the run's input streams: fps}, each fps by `checked_fps`'s rule. Unchecked, a
    name the run has not (a typo, or any name for a run of one stream) was ignored, so its stream was put on the
    grid at another rate than the one given, and a str or NaN fps was read as a rate of the aligner's grid."""
    if stream_fps is None:
        return None
    names = [stream.name for stream in detector.config.data.input_streams()]
    if not isinstance(stream_fps, dict):
        raise InputError(f"stream_fps: expected {{stream name: fps}} of the run's streams ({', '.join(names)}), got "
                         f"{brief(stream_fps)}")
    for name, fps in stream_fps.items():
        if name not in names:
            raise InputError(f"stream_fps: {brief(name)} is not an input stream of {detector.run_dir} (its streams: "
                             f"{', '.join(names)})")
    return {name: checked_fps(fps, f"stream_fps[{name!r}]") for name, fps in stream_fps.items()}


def checked_detector(detector: object) -> None:
    """The detector a stream runs: an `OfflineDetector`. A run's path given for it (as `from_run` takes it) or None was
    an AttributeError ("'str' object has no attribute 'members'")."""
    if not isinstance(detector, OfflineDetector):
        hint = (": load the run first, with OfflineDetector.from_run(path)"
                if isinstance(detector, (str, os.PathLike)) else "")
        raise InputError(f"detector: expected an OfflineDetector (OfflineDetector.from_run(RUN)), got "
                         f"{brief(detector)}{hint}")


class OnlineDetector:
    """Detects micro-gestures in a stream of feature chunks and reports each once, when final.

    `detector`: a loaded run (`OfflineDetector.from_run`); `fps`: frames per second of the stream's video
    (where the run has `data.fps`, that one, and None or the same may be given: another is refused);
    `lookahead`: seconds of stream after a gesture's end before it is reported; `hop`: feature steps between
    updates (default: about one second); `history`: feature steps of the window the network sees (default:
    `default_history`, data.max_seq_len // 8 or what deciding a gesture needs if that is more); `video_id`: the id
    every emission's detection carries; `compile`: run a compiled network (see "Compiled network" above);
    `stream_fps`: a run of several streams (`data.streams`): a stream's fps where its config leaves it out (its
    sidecar's, `StreamAligner`; default `fps`). The emission rule is described in the module docstring.
    """

    def __init__(
        self,
        detector: OfflineDetector,
        fps: float | None = None,
        lookahead: float = 2.0,
        hop: int | None = None,
        history: int | None = None,
        video_id: str = "stream",
        compile: bool = False,
        stream_fps: dict[str, float] | None = None,
    ):
        checked_detector(detector)
        if detector.members is not None:
            raise InputError(f"{detector.run_dir} fuses the detections of runs with different networks or inputs: "
                             "stream it with FusedOnlineDetector (`mgrec stream` does)")
        fps = checked_fps(fps)  # the offline detector's rule: nan, 0, -30, "30" or 1e-300 are refused here
        bool_argument(compile, "compile")
        checked_video_id(video_id)  # it goes into every emission and score
        stream_fps = checked_stream_fps(stream_fps, detector)
        self.detector = detector
        self.postprocess = hard_set_postprocess(detector.postprocess)
        detector.refuse_another_fps_than_the_runs(fps)
        self.grid = detector.grid(fps)
        self.video_id = video_id
        self.feature_dim = detector.config.data.feature_dim
        plan = plan_window(detector.config, self.grid.seconds_per_step(), lookahead, hop, history)
        self.lookahead, self.hop, self.history = plan.lookahead, plan.hop, plan.history
        if plan.note is not None:
            detector.note_once(plan.note)
        # the window and one pass over it must fit
        check_fits(detector.config.model, self.history, 1, training=False, what="the online window",
                   model=detector.model)

        self._network = detector.model
        self._padded_length: int | None = None  # fixed network input length (compiled network only)
        if compile:
            self._network, self._padded_length = compile_for_window(detector.model, self.history, self.feature_dim,
                                                                     detector.autocast)
        self._window = FeatureWindow(self.history, self.feature_dim)
        # data.normalize = video: the statistics of every step received so far (the stream has no end yet)
        self._stats = RunningChannelStats(self.feature_dim) if detector.config.data.normalize == "video" else None
        self._received = 0  # feature steps pushed so far
        self._since_update = 0  # of those, pushed after the last update
        self._chunks = 0  # chunks pushed so far, for error messages
        self._cutoff = -math.inf  # everything ending at or before this is decided
        self._last_hard: list[Detection] = []  # hard set of the last update (stream time)
        self._pending: list[Detection] = []  # the part of it that was not final yet
        self._emitted: list[Detection] = []  # emitted detections whose end lies inside the window
        self._flushed = False
        self._undelivered: list[Emission] = []  # decided, not yet returned (`_handed_over`): a push raised after them
        self._feeding: str | None = None  # "push" or "push_streams", the first used (`_refuse_mixing`)
        # held by the push or flush running now (`_one_caller`). Reentrant: Ctrl-C arrives in the main thread, and
        # between `acquire` returning and `try` it left a plain lock held for good, so that every later push of the
        # stream (an interrupted push is resumed by the next) was refused as another thread's
        self._in_use = threading.RLock()
        # several input streams: their live rows joined on the grid (None: one stream, pushed as it is)
        self._aligner = StreamAligner(detector.config.data, fps, stream_fps) if detector.config.data.streams else None
        self.num_updates = 0
        self.last_compute_ms = 0.0
        # hears each update's compute time in ms (`stream_video` keeps them for its summary: a call can make
        # several updates, e.g. a flush of a run of several streams, and `last_compute_ms` holds only the last). Told
        # after the update is stored: where it raises, the push or flush raises and the next one returns its gestures
        self.on_update: Callable[[float], None] | None = None
        self._decides = True  # False: a fused ensemble's member, whose window the ensemble's updates read

    # -- public interface ---------------------------------------------------------------------

    @property
    def buffered_steps(self) -> int:
        """Feature steps currently held (at most `history`)."""
        return len(self._window)

    @property
    def tracked_detections(self) -> int:
        """Detections kept for the emission rule: the emitted ones inside the window and the last hard set."""
        return len(self._emitted) + len(self._last_hard)  # the pending ones are part of the last hard set

    @property
    def now(self) -> float:
        """Stream seconds at which the newest feature became available (0 before any feature)."""
        return self.grid.covered_seconds(self._received)

    @property
    def received_steps(self) -> int:
        """Feature steps pushed so far: the stream's clock (every time is counted from them)."""
        return self._received

    def push(self, chunk: np.ndarray) -> list[Emission]:
        """Add features (T_chunk, C) in stream order; returns the gestures that became final.

        A chunk may hold any number of steps: it is cut at the hop boundaries, so updates happen
        every `hop` steps whatever the chunk sizes are. A chunk that is refused (a NaN row, another width)
        changes nothing. The stream's clock is the count of steps pushed, so a chunk left out (a sensor's
        dropout) moves every later time earlier by its length: push rows in its place (zeros, or the last
        row again) to keep the clock. Where push is interrupted during an update (Ctrl-C), the steps before
        that update are in and the rest of the chunk is not: push `chunk[received_steps - before:]` again (the
        next push or flush returns the gestures the interrupted one had decided, and makes the update again).
        """
        with self._one_caller("push"):
            self._refuse_after_flush("push")  # first, as `push_streams` has it: after flush, no way of feeding is open
            self._refuse_mixing("push")
            self._push_rows(chunk, fed_by="push")
            return self._handed_over()

    @contextlib.contextmanager
    def _one_caller(self, method: str) -> Iterator[None]:
        """Refuse a push or flush while another runs (from another thread): two threads feeding one stream
        interleaved their rows into one window and clock without an error. Calls one after another from
        different threads (a thread pool's workers taking turns) are a stream's order, and pass. The lock is the
        calling thread's to take again: `FusedOnlineDetector.flush` holds it while it calls `OnlineDetector.flush`,
        and a hold left by an interrupt is retaken; no push calls another."""
        if not self._in_use.acquire(blocking=False):
            raise InputError(f"{method}() was called while another push or flush of this stream was running, from "
                             "another thread: one stream's rows come in one order; feed it from one thread at a "
                             "time (or give each source its own OnlineDetector)")
        try:
            yield
        finally:
            self._in_use.release()

    def _refuse_mixing(self, method: str) -> None:
        """Refuse feeding one stream by both `push` (rows of every stream joined) and `push_streams`: the aligner
        counts the grid steps it released, so rows pushed beside it shifted every later time (0.8 s late after
        10 joined rows), without an error."""
        if self._feeding not in (None, method):
            raise InputError(f"this stream is fed by {self._feeding}(); {method}() too would put rows beside the "
                             f"aligned grid steps and move every later time: feed one stream by one of them")

    def _row_ready_seconds(self, step: int) -> float:
        """Stream seconds at which this stream's joined row `step` exists: the end of its window on the grid, or, of a
        run of several streams, once each of its streams' rows it joins does (`StreamAligner.ready_seconds`)."""
        return self.grid.covered_seconds(step + 1) if self._aligner is None else self._aligner.ready_seconds(step)

    def _refuse_after_flush(self, method: str) -> None:
        """Refuse feeding a stream that `flush` ended, as the other misuses are refused (`_refuse_mixing`,
        `_one_caller`): its clock, window and emissions are of the stream that ended; a new one starts from a new
        detector of the same loaded run."""
        if self._flushed:
            raise InputError(f"{method}() after flush(): flush() ended this stream (video {self.video_id!r}, "
                             f"{self._received} feature steps, {self.now:.1f} s), which takes no more rows; for a new "
                             f"stream, make a new {type(self).__name__}(detector, ...) of the same loaded run (and "
                             "call flush() only at a stream's end)")

    def _push_rows(self, chunk: np.ndarray, fed_by: str) -> None:
        """A chunk as it was given (`push`; the joined rows of `push_streams` and `flush`): counted, checked, taken."""
        self._refuse_after_flush(fed_by)
        self._chunks += 1
        self._push_checked(self._checked(chunk), fed_by)

    def _push_checked(self, chunk: np.ndarray, fed_by: str) -> None:
        """Checked rows into the stream, updating every `hop` steps (a fused ensemble's member: its window only); the
        gestures the updates decide wait in `_undelivered` for the caller's `_handed_over`."""
        self._feeding = fed_by  # after the check: a refused chunk changes nothing
        if not self._decides:  # a fused ensemble's member: its window and statistics only; the ensemble updates
            self._take(chunk)  # `_since_update` too: the ensemble's final update reads it
            return
        offset = 0
        while offset < chunk.shape[0]:
            # 0 after an interrupted update (its hop is in, `_since_update` still full): it is made again first
            take = min(chunk.shape[0] - offset, self.hop - self._since_update)
            self._take(chunk[offset : offset + take])
            offset += take
            if self._since_update == self.hop:
                self._update(cutoff=self.now - max(self.lookahead, self.grid.seconds_per_step()))

    def _handed_over(self) -> list[Emission]:
        """The gestures decided and not yet returned, which the push or flush calling this returns: those of an earlier
        call that raised after its updates had decided them (Ctrl-C, an `on_update` that raised) come first. The one
        place they leave the detector: an update stores them with the rule's state that says they are emitted
        (`_commit`), so none counts as emitted without being returned by some call."""
        emissions, self._undelivered = self._undelivered, []
        return emissions

    def _take(self, rows: np.ndarray) -> None:
        """Checked rows into the stream: the window (which keeps the last `history` of any number), the running
        statistics, the clock and the count since the last update."""
        self._window.append(rows[-self.history:])
        if self._stats is not None:
            self._stats.add(rows)
        self._received += rows.shape[0]
        self._since_update += rows.shape[0]

    def push_streams(self, chunks: dict[str, np.ndarray]) -> list[Emission]:
        """Add features of a run with several input streams: {stream name: (T_s, C_s) rows} in stream
        order, any streams, any sizes; the grid steps every stream has passed go on as `push` does."""
        if self._aligner is None:
            raise InputError("this run reads one stream: push its features with push(chunk)")
        with self._one_caller("push_streams"):
            self._refuse_after_flush("push_streams")
            self._refuse_mixing("push_streams")
            rows = self._aligner.push(chunks)
            self._feeding = "push_streams"
            if len(rows):
                self._push_rows(rows, fed_by="push_streams")
            return self._handed_over()

    def flush(self) -> list[Emission]:
        """End of the stream: decide everything still pending and return what is emitted. Where flush is interrupted
        (Ctrl-C during its update), the stream has not ended: the next flush returns every gesture (those an
        interrupted push had decided too)."""
        with self._one_caller("flush"):
            if self._flushed:
                return self._handed_over()  # []; or those of a flush interrupted once it had ended the stream
            if self._aligner is not None:  # the last grid steps wait for the streams' ends
                rows = self._aligner.flush()
                if len(rows):
                    self._push_rows(rows, fed_by="push_streams")
            self._final_update()
            self._flushed = True  # once the final update is made: an interrupted one is made again
            return self._handed_over()

    def _final_update(self) -> None:
        if self._received == 0:
            return
        if self._since_update > 0 or self.num_updates == 0:
            self._update(cutoff=math.inf)
            return
        # No features since the last update: its predictions still hold, only the cutoff moves.
        self._commit(self._decide(self._last_hard, math.inf), self.last_compute_ms, counted=False)

    def run(self, chunks: Iterable[np.ndarray | dict[str, np.ndarray]]) -> Iterator[Emission]:
        """Push every chunk of an iterable (per-stream dicts for a run with several streams), then flush;
        yields emissions as they happen."""
        self._refuse_after_flush("run")  # when called, not at the first chunk
        return self._run(checked_chunks(chunks), self.push_streams)

    def _run(self, chunks: Iterable, push_dict: Callable[[dict], list[Emission]]) -> Iterator[Emission]:
        for chunk in chunks:
            yield from push_dict(chunk) if isinstance(chunk, dict) else self.push(chunk)
        yield from self.flush()

    # -- one update ---------------------------------------------------------------------------

    def _update(self, cutoff: float) -> None:
        """One update: the window's hard set, the emission rule's decision on it, both committed with the gestures it
        emits (`_commit`), then `on_update` told its time. An interrupt before the commit leaves the update to be made
        again; one after it (an `on_update` that raised) leaves its gestures for the next push or flush to return."""
        started = time.perf_counter()
        decision = self._decide(self._detect_window(), cutoff)
        compute_ms = (time.perf_counter() - started) * 1000.0
        self._commit(decision, compute_ms)
        if self.on_update is not None:
            self.on_update(compute_ms)

    def _detect_window(self) -> list[Detection]:
        """The hard set of the current window, in stream time and stream frames."""
        return self.detector.own_hard_set(self._window_detections(self.postprocess))

    def _window_detections(self, post: PostprocessConfig) -> list[Detection]:
        """The current window's ranked detections with `post`, in stream time and stream frames."""
        window = self._window.view()
        with self.detector.precision_scope():
            detections = detect_video(
                self._network,
                window,
                self.grid,
                post,
                self.detector.classes,
                self.video_id,
                self._padded_length,
                autocast=self.detector.autocast,
                standardize=None if self._stats is None else self._stats.current().apply,
                second_opinion=self.detector.second_opinion,
            )
        # Window time 0 is the first frame of the window's first feature: stream frame start*stride.
        frame_offset = self._window_start * self.grid.stride
        return [moved_detection(d, frame_offset, self.grid) for d in detections]

    @property
    def _window_start(self) -> int:
        """The stream step of the window's first row."""
        return self._received - len(self._window)

    def _decide(self, hard: list[Detection], cutoff: float) -> _Decision:
        """The emission rule applied to an update's hard set: the gestures it emits and the rule's next state. Changes
        nothing: `_commit` stores the state with the gestures, so that an interrupt between the two loses neither."""
        redetections = _one_to_one_matches(self._emitted, hard)
        new = [
            d
            for i, d in enumerate(hard)
            if d.end <= cutoff
            and i not in redetections
            and (d.end > self._cutoff or _same_gesture_as_any(d, self._pending))
        ]
        new.sort(key=lambda d: (d.end, -d.score))  # in the order the gestures ended
        window_start_seconds = self.grid.frame_to_seconds(self._window_start * self.grid.stride)
        emitted = [e for e in self._emitted + new if e.end > window_start_seconds]
        return _Decision(new, cutoff, hard, [d for d in hard if d.end > cutoff], emitted)

    def _commit(self, decision: _Decision, compute_ms: float, counted: bool = True) -> None:
        """An update's `decision` made the rule's state, its gestures (as `Emission`s) put with those waiting to be
        returned (`_handed_over`); `counted`: an update of the network (the final one on the last update's hard set
        is not). Everything is made first and then stored with no call and no allocation between the stores: Python
        runs a signal's handler (Ctrl-C's KeyboardInterrupt) only at a call or a loop's jump back, so an interrupt
        leaves all of them stored or none (a gesture counted as emitted and never returned was lost for good: the
        next update takes it for a re-detection)."""
        undelivered = self._undelivered + self._emit(decision.emitted_now, compute_ms)
        num_updates = self.num_updates + 1 if counted else self.num_updates
        cutoff, hard, pending, emitted = decision.cutoff, decision.hard, decision.pending, decision.emitted
        self._cutoff = cutoff
        self._last_hard = hard
        self._pending = pending
        self._emitted = emitted
        self._undelivered = undelivered
        self.last_compute_ms = compute_ms
        self.num_updates = num_updates
        self._since_update = 0

    def _emit(self, detections: list[Detection], compute_ms: float) -> list[Emission]:
        reported = time.time()
        return [Emission(d, self.now, compute_ms, reported) for d in detections]

    def _checked(self, chunk: np.ndarray, first_step: int | None = None) -> np.ndarray:
        """`chunk` checked as the stream's chunk number `_chunks` (counted when given), named with the step its rows
        begin at (`first_step`: where rows held before it come first, `FusedOnlineDetector`; else the stream's)."""
        where = f"stream chunk {self._chunks} (steps {self._received if first_step is None else first_step}..)"
        chunk = given_array(chunk, where, f"a numpy array (T, {self.feature_dim})")
        if chunk.ndim != 2 or chunk.shape[1] != self.feature_dim:
            streams = self.detector.config.data.streams
            joined = (f" (the joined rows of the run's {len(streams)} streams; push_streams takes each stream's "
                      "own chunks by name)" if streams else "")
            raise InputError(f"{where}: expected shape (T, {self.feature_dim}){joined}, got {chunk.shape}")
        # The validator every feature file passes (float dtype, finite, within +-1e6): one value of 1e30 would
        # ruin the running statistics, and the float32 cast would turn 1e300 into Inf, for the rest of the stream.
        check_feature_values(chunk, where)
        return chunk.astype(np.float32, copy=False)


class FusedOnlineDetector(OnlineDetector):
    """The stream of a detection-level ensemble (`mgrec ensemble --fusion detections`: an RGB run and a skeleton run):
    every member sees a window of its own features, on its own grid; each update (every hop of member 0's steps, which
    keep the stream's clock) fuses the members' ranked lists of their windows as `detect` fuses whole videos
    (`fuse_detections`), and the emission rule decides on the ensemble's hard set (its threshold, tuned on val).

    Member 0's rows go to `push` (or `push_streams`), or with the others' to `push_members({m: rows})`: each row once it
    exists (at the end of its window, on the member's grid), before the push whose update should see it;
    `push_members` takes the others' rows first. A member that reads several input streams takes its streams' rows by
    name, `{m: {stream: rows}}`, joined on its grid as `push_streams` joins a run's. Another member's rows ahead of
    member 0's (a member's whole file pushed first, a source that runs ahead) are held until member 0's rows reach
    their time, as `StreamAligner` holds a stream's, up to the lag it allows (`MAX_STREAM_LAG_SECONDS`; further ahead
    is refused, naming the member): a member's window holds the same seconds as member 0's. A member that has no row
    yet counts as having missed (a fused score is the members' mean); rows of other members after member 0's last are
    seen by the final update (`flush`).
    `member_fps`: a member's own fps where the video's rate reaches it otherwise (its features' sidecar; default
    `fps`); `member_stream_fps`: of a member of several streams, each other stream's fps (`stream_fps` of
    `OnlineDetector`). `history`: member 0's window in its steps; the others' windows span the same seconds (default:
    each its own default for the ensemble's lookahead and hop)."""

    def __init__(self, detector: OfflineDetector, fps: float | None = None, lookahead: float = 2.0,
                 hop: int | None = None, history: int | None = None, video_id: str = "stream", compile: bool = False,
                 member_fps: dict[int, float | None] | None = None,
                 member_stream_fps: dict[int, dict[str, float]] | None = None):
        checked_detector(detector)
        if detector.members is None:
            raise InputError(f"{detector.run_dir} is no detection-level ensemble: stream it with OnlineDetector")
        member_stream_fps = member_stream_fps or {}
        super().__init__(detector.members[0], fps, lookahead, hop, history, video_id, compile,
                         member_stream_fps.get(0))
        self.ensemble = detector
        # The ensemble's own post-processing, as `detect` applies it to the fused lists: its thresholds (tuned on val on
        # the fused scores, per class where it tuned so) make the hard set. Member 0's, which `OnlineDetector` took, is
        # that of member 0's ranked list alone (`_ranked`, as each member's), and was what the stream said it used.
        self.postprocess = hard_set_postprocess(detector.postprocess)
        window_seconds = self.history * self.grid.seconds_per_step()
        self._others: list[OnlineDetector] = []
        for index, member in enumerate(detector.members[1:], start=1):
            own_fps = (member_fps or {}).get(index, fps)
            try:  # hop 1: it never updates, and its window is checked against no hop of its own
                step = member.grid(own_fps).seconds_per_step()
                if history is None:  # its own default for the ensemble's hop in its steps (with hop 1, a hop longer
                    # than that default left the gestures before its window out of every fused update)
                    hop_steps = max(1, math.ceil(self.hop * self.grid.seconds_per_step() / step))
                    window = plan_window(member.config, step, lookahead, hop_steps).history
                else:
                    window = max(1, round(window_seconds / step))
                other = OnlineDetector(member, own_fps, lookahead, hop=1, history=window, video_id=video_id,
                                       compile=compile, stream_fps=member_stream_fps.get(index))
            except InputError as exc:
                raise InputError(f"member {index} of {detector.run_dir} ({member.run_dir}): {exc}") from None
            other._decides = False
            self._others.append(other)
        # each other member's rows that do not exist yet at member 0's time (`_release`), in order
        self._held: list[list[np.ndarray]] = [[] for _ in self._others]
        # every member's ranked list, as `detect` fuses them (a candidate below a member's own threshold counts
        # towards a fused score), one pass each
        self._ranked = [replace(m.postprocess, shifted_passes=1) for m in detector.members]

    def push_members(self, chunks: dict[int, np.ndarray | dict[str, np.ndarray]]) -> list[Emission]:
        """Rows of any members {index: (T_m, C_m)}, or {index: {stream: rows}} for a member of several streams, each in
        its stream order: the others' first, then member 0's, which may update (returns the gestures that became
        final). Every chunk is checked before any is taken, and a member's streams that cannot be joined take none."""
        if not isinstance(chunks, dict):
            raise InputError(f"push_members: expected a dict of member index -> rows, got {brief(chunks)}")
        for index in chunks:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(self._others):
                raise InputError(f"push_members: expected member indices 0..{len(self._others)} (members/<m> of "
                                 f"{self.ensemble.run_dir}), got {brief(index)}")
        with self._one_caller("push_members"):
            self._refuse_after_flush("push_members")
            members = [self, *self._others]
            rows_of, fed_by = {}, {}
            for index, rows in chunks.items():
                member, fed_by[index] = members[index], "push_streams" if isinstance(rows, dict) else "push"
                try:
                    if fed_by[index] == "push_streams" and member._aligner is None:
                        raise InputError("this member reads one stream: give its rows as an array (T, C)")
                    member._refuse_mixing(fed_by[index])
                    if fed_by[index] == "push":  # counted and named as `push` would: its rows begin after those held
                        member._chunks += 1
                        rows = member._checked(rows, member.received_steps + (self._held_rows(index) if index else 0))
                    rows_of[index] = rows
                except InputError as exc:
                    raise InputError(f"member {index}: {exc}") from None
            # the members of several streams join theirs on their grids: all of them, or none where one is refused
            taken: list[tuple[StreamAligner, tuple]] = []
            for index in [i for i in rows_of if fed_by[i] == "push_streams"]:
                aligner = members[index]._aligner
                taken.append((aligner, aligner.snapshot()))
                try:
                    rows_of[index] = aligner.push(rows_of[index])
                except InputError as exc:
                    for each, before in taken:
                        each.restore(before)
                    raise InputError(f"member {index}: {exc}") from None
            # held rows wait for member 0's: past the lag a stream's aligner allows, the wait is an error, not a buffer
            # that grows for as long as a member runs ahead (or member 0 sends nothing)
            horizon = self.grid.covered_seconds(self._received + len(rows_of.get(0, ())))
            for index, rows in rows_of.items():
                if not index or not len(rows):
                    continue
                other = members[index]
                reach = other.grid.covered_seconds(other.received_steps + self._held_rows(index) + len(rows))
                if reach - horizon > MAX_STREAM_LAG_SECONDS:
                    for each, before in taken:
                        each.restore(before)
                    raise InputError(f"member {index}: its rows would reach {reach:.1f} s of stream, more than "
                                     f"{MAX_STREAM_LAG_SECONDS:g} s ahead of member 0's {horizon:.1f} s: a member's "
                                     "rows are held until member 0's reach their time; push each member's rows as "
                                     "they exist, member 0's beside them (push_members({0: rows, 1: rows}))")
            for index, feeding in fed_by.items():  # fed so from now on, rows released or not (flush, mixing)
                members[index]._feeding = feeding
            for index, rows in rows_of.items():
                if index and len(rows):
                    self._held[index - 1].append(rows)
            self._release(until=self.now)
            if 0 in rows_of and len(rows_of[0]):
                self._push_checked(rows_of[0], fed_by=fed_by[0])
            self._release(until=self.now)  # what exists by member 0's newest row is in the windows, updated or not
            return self._handed_over()

    def _held_rows(self, index: int) -> int:
        """Rows of member `index` (1 or more) held, not yet in its window."""
        return sum(len(rows) for rows in self._held[index - 1])

    def _release(self, until: float = math.inf, final: bool = False) -> None:
        """Into each other member's window, the rows it holds that exist by `until` (stream seconds: a row exists at the
        end of its window, on the member's grid, as `_replay` hands a stream's rows; a member of several streams' joined
        row once each of its streams' rows does, `StreamAligner.ready_seconds`); the rest stay held. `final`: the
        stream has ended, every row held exists."""
        for other, held in zip(self._others, self._held):
            if not held:
                continue
            rows = held[0] if len(held) == 1 else np.concatenate(held)
            count = len(rows) if final else 0
            while count < len(rows) and other._row_ready_seconds(other.received_steps + count) <= until:
                count += 1
            if count:
                other._push_checked(rows[:count], fed_by=other._feeding or "push")
            held[:] = [rows[count:]] if count < len(rows) else []

    def run(self, chunks: Iterable[np.ndarray | dict]) -> Iterator[Emission]:
        """Push every chunk (member 0's rows, or {member: rows or {stream: rows}}), then flush; yields emissions as they
        happen."""
        self._refuse_after_flush("run")  # when called, not at the first chunk
        return self._run(checked_chunks(chunks), self.push_members)

    def flush(self) -> list[Emission]:
        """End of the stream: the other members' streams joined to their ends, then everything still pending decided."""
        with self._one_caller("flush"):
            for index, other in enumerate(self._others, start=1):
                if not self._flushed and other._aligner is not None:  # the last grid steps wait for the streams' ends
                    try:
                        rows = other._aligner.flush()
                    except InputError as exc:
                        raise InputError(f"member {index}: {exc}") from None
                    if len(rows):
                        self._held[index - 1].append(rows)
            return super().flush()

    def _detect_window(self) -> list[Detection]:
        self._release(until=self.now)  # the others' rows that exist by this update's time
        ranked = [self._window_detections(self._ranked[0])]
        ranked += [other._window_detections(post) if other.received_steps else []
                   for other, post in zip(self._others, self._ranked[1:])]
        for other in self._others:
            other._since_update = 0
        return self.ensemble.own_hard_set(_fuse_detections(ranked, self.ensemble.fusion_iou))  # `self.postprocess`'s

    def _final_update(self) -> None:
        self._release(final=True)
        if self._received and any(other._since_update for other in self._others):
            # rows of other members since the last update (after member 0's last row): one more update sees them
            self._since_update = max(self._since_update, 1)
        super()._final_update()


# Compiled networks by model, input length and autocast dtype: streams of one process (one detector
# per camera, or per video in benchmarks/online_eval.py) share one compilation.
_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[int, torch.dtype | None], torch.nn.Module]] = (
    weakref.WeakKeyDictionary()
)


def compile_for_window(model: torch.nn.Module, history: int, feature_dim: int,
                       autocast: torch.dtype | None = None) -> tuple[torch.nn.Module, int]:
    """The network compiled for windows of up to `history` steps, and the fixed length it runs on.

    Compiled here, by one forward pass on zeros, so that the first update is not a minute late.
    `autocast`: the dtype the updates run the network under (`detect_video`'s `autocast`); the
    warm-up pass runs under it too, since torch.compile traces (and guards on) the autocast state.
    """
    length = -(-history // model.max_div_factor) * model.max_div_factor
    key = (length, autocast)
    if key in _COMPILED.get(model, {}):
        return _COMPILED[model][key], length
    compiled = torch.compile(model, dynamic=False, options={"cpp_wrapper": True})
    device = next(model.parameters()).device
    print(f"compiling the network for {length}-step windows (about a minute the first time) ...", file=sys.stderr)
    precision = nullcontext() if autocast is None else torch.autocast(device.type, dtype=autocast)
    try:
        with torch.inference_mode(), precision:
            # Inputs made as an update makes them (`detect_video`: pad_video inside inference mode). The
            # compiled code is guarded on its inputs' dispatch keys too: zeros made outside inference
            # mode made the first update compile again (10 s, even with a warm inductor cache).
            features, mask = pad_video(np.zeros((length, feature_dim), dtype=np.float32), model.max_div_factor,
                                       length)
            compiled(features.to(device), mask.to(device))
    except Exception as exc:  # inductor's errors (no C++ compiler, ...) come in many types
        raise InputError(
            f"compiling the network failed ({compile_failure(exc)}); torch.compile needs a working "
            "C++ compiler (g++); run without --compile to use the network as it is"
        ) from exc
    check_compiled(model, compiled, length, feature_dim, autocast)
    _COMPILED.setdefault(model, {})[key] = compiled
    return compiled, length


def check_compiled(model: torch.nn.Module, compiled: torch.nn.Module, length: int, feature_dim: int,
                   autocast: torch.dtype | None) -> None:
    """Refuse a compiled network whose outputs are not the network's: on a full window and a half-filled one of
    seeded features, under the updates' `autocast`, every level's logits within `COMPILED_LOGIT_TOLERANCE`.
    torch.compile mis-compiled the gated fusion of two streams (logits 1.34 apart on three levels, 10 gestures
    streamed for 74) without an error."""
    device = next(model.parameters()).device
    tolerance = COMPILED_LOGIT_TOLERANCE.get(autocast, COMPILED_LOGIT_TOLERANCE[torch.bfloat16])
    precision = nullcontext() if autocast is None else torch.autocast(device.type, dtype=autocast)
    rng = np.random.default_rng(0)
    with torch.inference_mode(), precision:
        for steps in (length, max(1, length // 2)):
            features, mask = pad_video(rng.standard_normal((steps, feature_dim)).astype(np.float32),
                                       model.max_div_factor, length)
            own, fast = (network(features.to(device), mask.to(device)) for network in (model, compiled))
            apart = logits_apart(own, fast)
            if not apart <= tolerance:
                raise InputError(f"the compiled network disagrees with the network itself: logits up to {apart:.3g} "
                                 f"apart on a test window of {steps} steps (at most {tolerance:g} expected); "
                                 "torch.compile mis-compiled it: run without --compile")


def hard_set_postprocess(post: PostprocessConfig) -> PostprocessConfig:
    """Post-processing settings that yield the same hard set (score >= `post.score_threshold`, or >= the class's
    `post.class_thresholds`) faster.

    Candidates below the threshold before NMS are dropped (the bar sits a hair below the threshold
    because decoding keeps scores strictly above `pre_nms_thresh`, in float32), and Soft-NMS stops at
    the first pick below the threshold (`min_score`). Either way only candidates that can never be in
    the hard set go: NMS picks in descending score, and a lower candidate never lowers a higher one.
    A stream makes one pass per update (`shifted_passes` is for offline detection: a fused score is a
    mean over passes, so a candidate below the threshold in one pass could still count). With boundary voting
    (`postprocess.voting` > 0) no candidate is dropped before NMS: a kept detection's ends are averaged with those of
    the candidates of its class overlapping it, whatever their score. With a second
    opinion (`postprocess.second_opinion` = w > 0) the bar is the least score that can still reach the threshold
    after it, threshold ** (1 / (1 - w)) (`lowest_score_that_can_pass`). With a threshold per class
    (`postprocess.class_thresholds`) the threshold here is the lowest of them: a candidate below it can reach
    no class's hard set.
    """
    lowest = post.score_threshold if post.class_thresholds is None else min(post.class_thresholds)
    threshold = lowest_score_that_can_pass(lowest, post.second_opinion)
    return replace(
        post,
        # boundary voting (`postprocess.voting`) averages the kept ends with those of candidates below the threshold
        pre_nms_thresh=post.pre_nms_thresh if post.voting > 0 else max(post.pre_nms_thresh, threshold * (1 - 1e-6)),
        min_score=max(post.min_score, threshold),
        shifted_passes=1,
    )


def _one_to_one_matches(emitted: list[Detection], hard: list[Detection]) -> set[int]:
    """Indices into `hard` of the detections that re-detect an emitted one.

    Greedy one-to-one matching on same-class tIoU > SAME_GESTURE_TIOU, highest tIoU first (ties: the
    earlier emitted, then the earlier in `hard`).
    """
    overlaps = same_class_tiou(emitted, hard)
    pairs = greedy_match(overlaps, tiou_above(overlaps, SAME_GESTURE_TIOU), best_pair_first=True)
    return {column for _, column in pairs}


def _same_gesture_as_any(detection: Detection, others: list[Detection]) -> bool:
    return bool(tiou_above(same_class_tiou([detection], others), SAME_GESTURE_TIOU).any())
