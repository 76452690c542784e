"""Inputs of feature extraction: collecting video files, sharding them across processes, and
decoding in a background thread (`prefetch`) so that decoding overlaps the network's compute.

The decoding itself (`iter_frames`, `probe_video`, `sliding_windows`, ...) lives in
`mgrec.data.videos`, where end-to-end training can use it too; it is imported here so that
`mgrec.extract.video` keeps offering it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from mgrec.data.features import sidecar_path
from mgrec.data.videos import (  # noqa: F401 (re-exported: extraction's importers use them from here)
    MODALITY_SUFFIXES,
    RAW_RATE_WORDS,
    VIDEO_SUFFIXES,
    VideoStream,
    another_name_advice,
    batched,
    iter_frames,
    probe_video,
    rewrap_command,
    sliding_windows,
    video_id,
    video_under_another_name,
)
from mgrec.devices import process_rank
from mgrec.errors import InputError
from mgrec.extract.outputs import partial_path
from mgrec.files import check_output_names, counted, is_hidden, missing_file_problem

Item = TypeVar("Item")


def collect_inputs(paths: Iterable[str | Path], endings: tuple[str, ...], what: str) -> list[Path]:
    """Expand folders (recursively, sorted) into the files whose names end with one of `endings`.

    Names starting with '.' inside a folder are left out (a file named explicitly is read as it is); one
    file given twice, even by two paths, is one input. InputError for a missing path, a given file with
    another ending, a folder without any such file, or two files that would write the same feature file
    (same `video_id`).
    """
    def matches(path: Path) -> bool:
        return path.name.lower().endswith(endings)

    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            # hidden names are never inputs: macOS's AppleDouble `._clip.mp4` beside every copied file, `.git`
            named = sorted(p for p in files_under(path) if matches(p) and not is_hidden(p, path) and not p.is_dir())
            # an input of the folder that cannot be read (a link onto a drive no longer mounted, a link loop, a pipe)
            # was left out without a word: the folder's other videos extracted as if they were all of it
            unreadable = [p for p in named if not p.is_file()]
            if unreadable:
                shown = "; ".join(f"{p}: {missing_file_problem(p, what)}" for p in unreadable[:3])
                raise InputError(f"{path}: {len(unreadable)} of the {len(named)} {what}s in it cannot be read ({shown}"
                                 f"{'; ...' if len(unreadable) > 3 else ''}); a folder is extracted whole: restore "
                                 "them, or move them out of it")
            if endings == VIDEO_SUFFIXES:
                refuse_videos_under_other_names(path, named)
            if not named:
                raise InputError(f"{path}: folder holds no {what} (looked for *{', *'.join(endings)}, recursively)")
            files.extend(named)
        elif path.is_file():
            if not matches(path):
                if endings == VIDEO_SUFFIXES and (container := video_under_another_name(path)) is not None:
                    raise InputError(another_name_advice(path, container))
                raise InputError(f"{path}: not a {what}; expected a name ending in {', '.join(endings)}")
            files.append(path)
        else:
            raise InputError(f"{path}: {missing_file_problem(path, what)}")
    by_id: dict[str, Path] = {}
    for file in files:
        other = by_id.setdefault(video_id(file), file)
        if other != file and not other.samefile(file):  # one file reached twice (a folder and a path in it) is one
            raise InputError(
                f"{other} and {file} would both be stored as '{video_id(file)}'; extract them into different folders"
            )
    return list(by_id.values())


def check_feature_names(files: list[Path], out_dir: str | Path) -> None:
    """The names an extraction of `files` writes into `out_dir`, checked before any video is read
    (`mgrec.files.check_output_names`): each video's features, its sidecar, and the rows kept while it is extracted
    (`.<id>.partial.json`, the longest: a name over 255 bytes failed there, half-way through the batch)."""
    outputs = []
    for file in files:
        video = video_id(file)
        features = Path(out_dir) / f"{video}.npy"
        outputs += [(video, path) for path in (features, sidecar_path(features), sidecar_path(partial_path(features)))]
    check_output_names(outputs, "feature files")


# Endings of the files a folder of videos holds beside them that are not videos (notes, sidecars, labels, features,
# frames, audio): not opened to see whether they are. Any other file is, once (`refuse_videos_under_other_names`).
_NOT_VIDEO_ENDINGS = (
    ".txt", ".md", ".rst", ".pdf", ".doc", ".docx", ".json", ".jsonl", ".csv", ".tsv", ".xml", ".yaml", ".yml", ".ini",
    ".log", ".srt", ".vtt", ".ass", ".sub", ".npy", ".npz", ".pt", ".pth", ".pkl", ".h5", ".onnx", ".py", ".sh",
    ".html", ".htm", ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".svg", ".wav", ".mp3",
    ".flac", ".aac", ".m4a", ".ogg", ".opus", ".zip", ".tar", ".gz", ".7z", ".lock", ".partial", ".thm", ".lrf",
    ".xmp", ".db",
)


def refuse_videos_under_other_names(folder: Path, named: list[Path]) -> None:
    """InputError naming the files of `folder` (`named`: those taken as its videos) that FFmpeg opens as videos though
    their names end in none of VIDEO_SUFFIXES (a camcorder's .MOD, RealMedia's .rmvb, a .divx): they were passed by
    without a word, and the folder extracted as if the others were all of it. A file given by itself is refused so
    already (`another_name_advice`); files with an ending of `_NOT_VIDEO_ENDINGS` are not opened."""
    taken = set(named)
    found = []
    raw = False  # a raw stream among them: its rate must be given to FFmpeg (`rewrap_command`)
    for file in files_under(folder):
        if file in taken or is_hidden(file, folder) or file.name.lower().endswith(_NOT_VIDEO_ENDINGS) \
                or not file.is_file():
            continue
        video = video_under_another_name(file)
        if video is not None:
            found.append(f"{file} ({video})")
            raw = raw or video.raw
    if found:
        raw_too = f"; a raw stream gets one by {rewrap_command(raw=True)}, {RAW_RATE_WORDS}" if raw else ""
        raise InputError(f"{folder}: {counted(len(found), 'video')} under a name mgrec does not read as one, which "
                         f"would be passed by: {'; '.join(found[:5])}{'; ...' if len(found) > 5 else ''}; give "
                         f"{'them' if len(found) > 1 else 'it'} one of the endings {', '.join(VIDEO_SUFFIXES)} "
                         f"({rewrap_command(raw=False)} rewrites a container without re-encoding{raw_too}), or move "
                         f"{'them' if len(found) > 1 else 'it'} out of the folder")


def files_under(folder: Path) -> Iterator[Path]:
    """Every name under `folder`, recursively, through linked folders too (a dataset's `videos/train ->
    /mnt/...`: Path.rglob does not enter them, and their videos were left out without a word), each real
    folder once; a link to `folder` or a folder above it (`loop -> ..`) is not followed, which would walk round or
    out of what was given. Hidden folders are not entered."""
    top = Path(os.path.realpath(folder))
    seen: set[tuple[int, int]] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        status = os.stat(root)
        real = Path(os.path.realpath(root))
        if (status.st_dev, status.st_ino) in seen or (root != str(folder) and top.is_relative_to(real)):
            folders[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        folders[:] = sorted(name for name in folders if not name.startswith("."))  # sorted: the same link wins
        yield from (Path(root) / name for name in names)


def shard_for_this_process(items: list[Item]) -> list[Item]:
    """This process's share under torchrun: items[RANK::WORLD_SIZE] (everything when not launched so)."""
    rank, world_size = process_rank()
    return items[rank::world_size]


_DONE = object()
# How long a consumer that stops early waits for the producer to stop. A producer reading a file stops within a
# frame; one blocked reading a pipe that sends nothing (`mgrec stream -` of a stalled camera) stops only when data
# comes, and waiting for it kept Ctrl-C from ending the stream.
PRODUCER_STOP_WAIT_S = 1.0


def prefetch(items: Iterator[Item], max_items: int) -> Iterator[Item]:
    """Run `items` in a background thread, at most `max_items` ahead of the consumer.

    An exception in the producer is re-raised in the consumer; if the consumer stops early, the
    producer thread is told to stop and does not linger: it is waited for up to `PRODUCER_STOP_WAIT_S`, then left
    to stop at its next item (a daemon thread, which does not hold the process at its exit).
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
        thread.join(PRODUCER_STOP_WAIT_S)
