"""Detections as subtitles, to watch them over the video in any player: SubRip (.srt) and WebVTT (.vtt).

    mgrec detect RUN videos/clip.mp4 --format srt --out videos/    # writes videos/clip.srt beside the video

One cue per detection, in time order: its class and score ("PEN 0.89"); overlapping detections are
overlapping cues, which players stack. Class names come from data: whitespace (a line break would end a
cue) and control characters become single spaces; in WebVTT `&`, `<` and `>` are written as entities, in
SubRip, which has no escapes, `<`, `>`, `{`, `}` become look-alikes: no name can open a tag, hold the "-->"
of a timing line or position the cue.
"""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Mapping
from pathlib import Path

from mgrec.errors import InputError
from mgrec.files import StoppedIn, atomic_write_text, check_output_names, part_of, safe_child
from mgrec.records import Detection

SUBTITLE_FORMATS = ("srt", "vtt")

# Present in a subtitle folder while a writer writes into it (`claim_subtitle_folder`); hidden, so players and folder
# listings pass it by, and removed at the end.
SUBTITLES_LOCK = ".mgrec-subtitles.lock"


def timestamp(seconds: float, fmt: str) -> str:
    """HH:MM:SS,mmm (SubRip) or HH:MM:SS.mmm (WebVTT), rounded to the millisecond; hours grow past 99."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{',' if fmt == 'srt' else '.'}{millis:03d}"


# SubRip has no escapes, and players read <i>...</i>, <font ...> and {\an8} in its text as markup: these
# become look-alikes that are not (with ">" gone, no text line can hold the "-->" of a timing line either).
_SUBRIP_LOOKALIKES = str.maketrans({"<": "\u2039", ">": "\u203a", "{": "(", "}": ")"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def cue_text(detection: Detection, fmt: str) -> str:
    """"LABEL SCORE" on one line: the label's control characters and whitespace collapsed to single spaces,
    and what the format would read as markup escaped (WebVTT) or replaced by look-alikes (SubRip)."""
    label = " ".join(_CONTROL.sub(" ", detection.label).split()) or f"class {detection.label_id}"
    label = html.escape(label, quote=False) if fmt == "vtt" else label.translate(_SUBRIP_LOOKALIKES)
    return f"{label} {detection.score:.2f}"


def subtitle_text(detections: list[Detection], fmt: str) -> str:
    """A whole subtitle file of one video's detections, cues in order of start (then end) time."""
    if fmt not in SUBTITLE_FORMATS:
        raise InputError(f"subtitle format must be one of {', '.join(SUBTITLE_FORMATS)}, got {fmt!r}")
    cues = []
    for number, d in enumerate(sorted(detections, key=lambda d: (d.start, d.end)), start=1):
        timing = f"{timestamp(d.start, fmt)} --> {timestamp(d.end, fmt)}"
        cues.append(f"{number}\n{timing}\n{cue_text(d, fmt)}\n")
    header = "WEBVTT\n\n" if fmt == "vtt" else ""
    return header + "\n".join(cues)


def subtitle_paths(video_ids: list[str], out_dir: str | Path, fmt: str,
                   file_names: Mapping[str, str] | None = None) -> dict[str, Path]:
    """OUT/<name>.<fmt> of each video, refused (`InputError`) where a file is already there: it may be
    the video's own subtitles, sitting beside it, which must not be replaced. `file_names`: a video's name where it
    is not its id (a video file's own stem, `clip_color` of SMG's `clip_color.mp4`, which players pair with
    `clip_color.srt`)."""
    names = file_names or {}
    paths = {video_id: safe_child(out_dir, f"{names.get(video_id, video_id)}.{fmt}", "video id")
             for video_id in video_ids}
    # Every file goes flat into out_dir: `Clip.srt` and `clip.srt` are one file on macOS and Windows
    check_output_names(paths.items(), "subtitles")
    taken = [str(path) for path in paths.values() if path.exists() or path.is_symlink()]
    if taken:
        raise InputError(f"{taken[0]} already exists{f' (and {len(taken) - 1} more)' if len(taken) > 1 else ''}: "
                         f"subtitles are never written over a file (it may be the video's own); remove it or choose "
                         "another --out folder")
    return paths


def write_subtitles(detections_by_video: Mapping[str, list[Detection]], out_dir: str | Path, fmt: str,
                    file_names: Mapping[str, str] | None = None) -> list[Path]:
    """One subtitle file per video, `out_dir/<video_id>.<fmt>` (or the name `file_names` gives it; a video without
    detections gets a file without cues); every target is checked before any is written, the folder claimed for the
    while (`claim_subtitle_folder`). Returns the paths written."""
    with claim_subtitle_folder(out_dir, fmt):
        paths = subtitle_paths(sorted(detections_by_video), out_dir, fmt, file_names)
        written: list[Path] = []

        def kept(done: int) -> str:
            """Ctrl-C among a thousand videos' files said "interrupted" alone, and the same command again refused the
            files it had written ("already exists": they may be the videos' own): those to remove are named (each is
            whole: `atomic_write_text`)."""
            if done == len(paths):  # stopped after the last one: nothing is missing
                return f"every {fmt} file is in {out_dir}"
            if not done:
                return f"no {fmt} file is written yet: the same command again writes them all"
            names = f"{', '.join(path.name for path in written[:3])}{', ...' if done > 3 else ''}"
            return (f"{part_of(done, len(paths), f'{fmt} file')} {'is' if done == 1 else 'are'} in {out_dir} "
                    f"({names}), which the same command will not write over: remove "
                    f"{'it' if done == 1 else 'them'} and run it again")

        where = StoppedIn("video", len(paths), kept)
        with where:
            for video_id, path in where.each(paths.items(), name=lambda item: item[0]):
                atomic_write_text(path, subtitle_text(detections_by_video[video_id], fmt))
                written.append(path)
    return list(paths.values())


def claim_subtitle_folder(out_dir: str | Path, fmt: str) -> contextlib.AbstractContextManager[None]:
    """Hold the subtitle folder `out_dir` while subtitles are written into it (`mgrec.run.hold_output_folder`, by the
    lock file `SUBTITLES_LOCK`): two `mgrec detect --format srt --out OUT` at once both found OUT without their files,
    and wrote them side by side, the later one replacing the earlier one's subtitles of a video both detected in."""
    from mgrec.run import hold_output_folder

    return hold_output_folder(out_dir, SUBTITLES_LOCK, f"another writer of {fmt} subtitles is at work there: wait for "
                              "it to finish or use another --out", owner="the subtitle writer's",
                              place="the subtitle folder", reentrant=True)
