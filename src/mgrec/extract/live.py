"""A run's features of a video made window by window while it is decoded, for `mgrec stream VIDEO`.

`extract_with_recipe` turns a whole video into a feature file before anything reads it: a stream of a
15-minute video said nothing for minutes. `LiveFeatures` makes the same rows (the run's recipe, the same
backbone batches, hence the same numbers) as the frames come out of the decoder, so that each row reaches the
online detector as soon as its window has been decoded, as a camera's would. The video is a file, a container piped
on standard input (`-`), or a URL read from the network (`NetworkSource`: a camera's RTSP stream); the last two
arrive once, as they are sent (`arrives_once`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mgrec import terminal
from mgrec.data.features import check_unchanged, source_stamp
from mgrec.data.videos import PIPE_FORMATS, NetworkSource, check_frame_size, open_network_video, open_piped_video
from mgrec.errors import InputError
from mgrec.extract.jobs import DECODE_AHEAD, DEFAULT_BATCH, is_video, video_recipe
from mgrec.extract.outputs import FrameCounter, check_length
from mgrec.extract.video import iter_frames, prefetch, probe_video, video_id

# `mgrec stream RUN -`: a video container piped on standard input (a camera through ffmpeg), streamed as video
# `stdin`.
PIPED = Path("-")
PIPED_ID = "stdin"
# Its name in messages: a path, as the decoder's checks take one (a truncated Matroska piped was an AttributeError
# on the string's missing suffix where the file's was named).
PIPED_NAME = Path("standard input")
PIPED_HOW = "pipe a video container into it (ffmpeg -i SOURCE -f matroska - | mgrec stream RUN -)"

# What `check_unchanged` says of a video file that changed while it streamed.
STREAMED_A_PART = ("the gestures streamed were of a part of it, up to where it then ended: stream it once it is "
                   "complete, or stream the recording as it is made (pipe it: ffmpeg ... -f matroska - | mgrec stream "
                   "RUN -)")

# A source `mgrec stream` reads: a video or feature file (or folder), `-`, or a URL.
Source = Path | NetworkSource


def arrives_once(source: Source) -> bool:
    """Whether `source` is read once, as it arrives (`-` or a URL), rather than a file that can be read again: such a
    source is streamed alone, its features made as it is decoded."""
    return source == PIPED or isinstance(source, NetworkSource)


def described(source: Source) -> str:
    """`source` in a message: `-` and a URL with what they are."""
    if source == PIPED:
        return "- (a video piped on standard input)"
    return f"{source} (a video read from the network)" if isinstance(source, NetworkSource) else str(source)


class LiveFeatures:
    """The features a run reads of a video, made as the video is decoded: `fps(video)` before the first row,
    then `rows(video)` one (C,) row per window. The video is a file, `PIPED` (`-`: a container read from standard
    input as it arrives) or a `NetworkSource` (a URL, read as it arrives). Only runs whose features a video backbone
    makes in one stream (`live_recipe_problem` says why not, for the others: they are extracted whole first)."""

    def __init__(self, run_dir: str | Path, device: str = "cpu", stdin: BinaryIO | None = None) -> None:
        from mgrec.devices import process_device
        from mgrec.extract.backbones import load_backbone

        recipe, name, size = video_recipe(run_dir)
        self.window, self.stride = recipe.window, recipe.stride
        self.model = load_backbone(name, recipe.weights, str(process_device(device, what="--device")), size,
                                   recipe.frames_per_window, recipe.precision)
        self.stdin = stdin  # where `-` is read from (None: standard input's file, `_standard_input`)
        self._opened: dict[Source, object] = {}  # the container of a source that arrives once, opened by `fps`,
        # until `rows` takes it
        self._read: set[Source] = set()  # such sources opened so far: each is read once
        self._said: set[str] = set()  # the warnings said on stderr (a file's frame size: by `fps`, then not by `rows`)

    def takes(self, source: Source) -> bool:
        """Whether `source` is a video this streams (a video file, `-` or a URL), rather than a feature file."""
        return arrives_once(source) or is_video(source)

    def video_id(self, source: Source) -> str:
        if source == PIPED:
            return PIPED_ID
        return source.video_id if isinstance(source, NetworkSource) else video_id(source)

    def fps(self, video: Source) -> float:
        """The video's frame rate, from its header (decoding has not started). A file of several video streams is said
        to be read from its first, as `mgrec extract` says it (a dashcam's rear camera streamed as its front one)."""
        if not arrives_once(video):
            stream = probe_video(video)
            # before the first update
            self._warn(check_frame_size(video, stream.width, stream.height, self.model.image_size))
            if stream.video_streams > 1:
                print(f"note: {terminal.one_line(str(video))}: {stream.several_streams_note()}", file=sys.stderr)
            return stream.fps
        if video in self._read:
            raise InputError(f"{described(video)} is one video, read as it arrives; give it once")
        self._read.add(video)
        if video == PIPED:
            self._opened[video], rate = open_piped_video(self.stdin or _standard_input(), str(PIPED_NAME))
        else:
            self._opened[video], rate = open_network_video(video)
        return rate

    def _warn(self, warning: str | None) -> None:
        """A warning of a video (`check_frame_size`'s, beginning with its path) said on stderr, as the notes of `fps`
        are, once per video: a file's size is probed by `fps` and decoded again by `rows`."""
        if warning is not None and warning not in self._said:
            self._said.add(warning)
            print(terminal.visible(f"warning: {warning}"), file=sys.stderr)

    def close(self) -> None:
        """Close the sources `fps` opened whose rows were never read (a check after it failed): a camera's connection
        is not left open."""
        for container in self._opened.values():
            container.close()
        self._opened.clear()

    def rows(self, video: Source) -> Iterator[np.ndarray]:
        """Each window's feature as soon as its frames are decoded and run through the backbone (in the batches of
        `mgrec extract`, so the rows equal its file's); a video shorter than one window, or one that stops
        decoding, raises InputError naming it."""
        opened = None
        if arrives_once(video):
            if video not in self._read:
                self.fps(video)  # its header read first
            opened = self._opened.pop(video, None)  # the rows' now: closed at their end
            if opened is None:
                raise InputError(f"{described(video)} is one video, read as it arrives; its rows were read already "
                                 "(or it was closed)")
        name = PIPED_NAME if video == PIPED else str(video)  # a URL shown without its password
        # a file, stamped before decoding: one changed while it streamed (a recording still being written) is said
        # at its end, as extraction says it (`check_unchanged`)
        stamp = None if opened is not None else source_stamp(video)
        frames = FrameCounter(iter_frames(name, self.model.image_size, container=opened,
                                          keep=self.model.frame_needed(self.window, self.stride), warn=self._warn))
        with closing(prefetch(iter(frames), DECODE_AHEAD)) as decoded:  # its thread ends with the rows, or an error
            try:
                yield from self.model.window_features(decoded, self.window, self.stride, DEFAULT_BATCH)
            except InputError as exc:
                if video == PIPED and frames.count == 0:  # an MP4 piped opens, and fails at its first frame
                    raise InputError(f"{exc}; {PIPE_FORMATS}") from None
                raise
        check_length(name, frames.count, self.window)
        if stamp is not None:
            check_unchanged(video, stamp, STREAMED_A_PART)


def _standard_input() -> BinaryIO:
    """Standard input's file, unbuffered: the decoding thread reads it, and a source that stalls keeps that thread
    blocked in a read after Ctrl-C ends the stream. Read through `sys.stdin.buffer`, it held the buffer's lock then,
    and Python aborted at its exit (`could not acquire lock for <_io.BufferedReader name='<stdin>'>`, exit 134) after
    the stream's last gestures. Refused when nothing can be piped there: closed (`<&-`, where Python has no
    sys.stdin: an AttributeError), or a terminal (`-` typed without a pipe waited for a video in silence)."""
    if sys.stdin is None:
        raise InputError(f"-: standard input is closed; {PIPED_HOW}")
    if sys.stdin.isatty():
        raise InputError(f"-: standard input is a terminal, not a video; {PIPED_HOW}")
    return sys.stdin.buffer.raw


def live_recipe_problem(run_dir: str | Path) -> str | None:
    """Why the run's features of a video cannot be made while it streams (None: they can): several input
    streams, or features of an end-to-end run's adapters or of pose landmarks, which are extracted whole first.
    InputError where no features of the run can be made from a video at all."""
    from mgrec.extract.jobs import ADAPTED_BACKBONE, POSE
    from mgrec.run import RunDir

    run = RunDir(run_dir)
    if len(run.read_config().data.input_streams()) > 1:
        return "it reads several input streams"
    _, name, _ = video_recipe(run_dir)  # a run that records no recipe mgrec can make is refused, as by extraction
    if name in (ADAPTED_BACKBONE, POSE):
        return f"its features come from {name}"
    return None
