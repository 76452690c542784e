"""Streaming video decoding with PyAV, and the sliding windows that feature extraction runs on.

Frames are decoded at the video's native frame rate, one at a time, and resized straight to
size x size (aspect ratio not kept), as the paper ("all frames are resized to 224x224") and the
official VideoMAE V2 feature extraction do. Nothing holds the whole video: `sliding_windows`
keeps a ring buffer of `window` items, and `prefetch` decodes in a background thread into a
bounded queue so that decoding overlaps the network's compute.

There is no OpenCV fallback: PyAV reads every container and codec FFmpeg knows.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TypeVar

import numpy as np

from mgrec.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")

# SMG names its files SampleXXXX_color.mp4, SampleXXXX_skeleton.csv, ... while the annotations
# use SampleXXXX; dropping these suffixes gives features the ids the annotations use.
MODALITY_SUFFIXES = ("_color", "_skeleton")

Item = TypeVar("Item")


def video_id(path: Path) -> str:
    """The id a video's features are stored under: the file stem without an SMG modality suffix."""
    stem = path.stem
    for suffix in MODALITY_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def collect_inputs(paths: Iterable[str | Path], endings: tuple[str, ...], what: str) -> list[Path]:
    """Expand folders (recursively, sorted) into the files whose names end with one of `endings`.

    InputError for a missing path, a given file with another ending, a folder without any such
    file, or two inputs that would write the same feature file (same `video_id`).
    """
    def matches(path: Path) -> bool:
        return path.name.lower().endswith(endings)

    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and matches(p))
            if not found:
                raise InputError(f"{path}: folder holds no {what} (looked for *{', *'.join(endings)}, recursively)")
            files.extend(found)
        elif path.is_file():
            if not matches(path):
                raise InputError(f"{path}: not a {what}; expected a name ending in {', '.join(endings)}")
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    by_id: dict[str, Path] = {}
    for file in files:
        other = by_id.setdefault(video_id(file), file)
        if other != file:
            raise InputError(
                f"{other} and {file} would both be stored as '{video_id(file)}'; extract them into different folders"
            )
    return list(by_id.values())


def shard_for_this_process(items: list[Item]) -> list[Item]:
    """This process's share under torchrun: items[RANK::WORLD_SIZE] (everything when not launched so)."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world_size:
        raise InputError(f"environment: RANK={rank} must lie in [0, WORLD_SIZE={world_size})")
    return items[rank::world_size]


@dataclass(frozen=True)
class VideoStream:
    path: Path
    fps: float
    width: int
    height: int
    declared_frames: int  # from the container header; 0 when the container does not say


def probe_video(path: Path) -> VideoStream:
    """Open a video and read its first video stream's frame rate and size."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream in this file")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            if not rate or rate <= 0:
                raise InputError(f"{path}: the video stream has no frame rate")
            return VideoStream(
                path, float(rate), stream.codec_context.width, stream.codec_context.height, stream.frames
            )
    except av.FFmpegError as exc:
        raise InputError(f"{path}: cannot open the video (corrupt or truncated file?): {exc}") from None


def iter_frames(path: Path, size: int | None) -> Iterator[np.ndarray]:
    """Every frame of the video in display order as a (size, size, 3) uint8 RGB array; `size=None`:
    at the video's own size and aspect (what a landmark model wants: `mgrec.extract.pose`).

    Raises InputError naming the file and the frame index where decoding failed, including a
    stream that ends before the number of frames its container declares (a truncated file).
    """
    import av

    index = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame- and slice-threaded decoding inside FFmpeg
            for frame in container.decode(stream):
                # swscale's bilinear filter widens with the scale factor, so downscaling is anti-aliased.
                yield frame.to_ndarray(width=size, height=size, format="rgb24", interpolation="BILINEAR")
                index += 1
            declared = stream.frames
    except av.FFmpegError as exc:
        raise InputError(f"{path}: decoding failed at frame {index} (corrupt or truncated file?): {exc}") from None
    if declared and index < declared:
        raise InputError(
            f"{path}: decoding stopped at frame {index}, but the container declares {declared} frames (truncated file?)"
        )


def sliding_windows(items: Iterable[Item], window: int, stride: int) -> Iterator[list[Item]]:
    """Windows [i*stride, i*stride + window) over a stream, complete windows only.

    Keeps only the last `window` items (a ring buffer). Consumes the whole stream, so that a
    decoding error after the last complete window still surfaces.
    """
    buffer: deque[Item] = deque(maxlen=window)
    for count, item in enumerate(items, start=1):
        buffer.append(item)
        if count >= window and (count - window) % stride == 0:
            yield list(buffer)


def batched(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive lists of `size` items (the last one may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


_DONE = object()


def prefetch(items: Iterator[Item], max_items: int) -> Iterator[Item]:
    """Run `items` in a background thread, at most `max_items` ahead of the consumer.

    An exception in the producer is re-raised in the consumer; if the consumer stops early, the
    producer thread is told to stop and does not linger.
    """
    handoff: queue.Queue = queue.Queue(maxsize=max_items)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    break
            else:
                put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_DONE, exc))
        finally:
            # Close the source here, in its own thread, so that its files are released now.
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="mgrec-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()
