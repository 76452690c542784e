"""An SMG label folder written one video's file at a time, and resumed by the same command after an interruption:
`mgrec stream --format smg` and `mgrec detect --format smg` (`LabelSet`).

    labels = LabelSet.planned(out, run_dir, videos, {"lookahead": 2.0, ...}, STREAM)
    labels.write(video, detections, fps)  # each video's file as soon as it is made, recorded in the marker first
    missing = labels.end()  # the marker goes once every video has its file; else it stays, and they are returned

The folder stays marked unfinished (`mgrec.smg_csv.INCOMPLETE_MARKER`) until its last file is written: the marker
holds the plan (what makes two commands' files one set: the run's fingerprint, the videos, the writer's settings) and
the SHA-256 of each file as it is written, with what its video's input was then (`input_identity` of each file read).
The same command again, into it, keeps exactly those files and writes the others (`_files_written_before`); another
plan, a file changed since, one it did not write, or one whose video's input is not the one it was made of is refused
by name. A folder without a marker takes a new set only where it holds no label file (`refuse_old_label_files`).
One mechanism for both writers, so that they resume alike; they differ only in their words (`LabelWriter`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mgrec.data.features import source_stamp
from mgrec.errors import InputError
from mgrec.files import atomic_write_text, brief, counted, file_sha256
from mgrec.records import Detection
from mgrec.smg_csv import (
    INCOMPLETE_MARKER,
    begin_label_set,
    end_label_set,
    prediction_files,
    record_label_file,
    refuse_an_incomplete_set,
    smg_label_paths,
    smg_label_text,
    unfinished_plan,
)


@dataclass(frozen=True)
class LabelWriter:
    """The command that writes a label set, in the words its messages use."""

    command: str  # "mgrec stream": recorded in the marker ("writer"), named where another command's set is found
    verb: str  # "stream": "the same command streams that video again", "or stream into an empty folder"
    noun: str  # "stream": "the label file the interrupted stream wrote"
    finished: str  # "streamed to their end": "2 of 3 videos were streamed to their end before"
    doing: str  # "streaming": "streaming the 1 other"


STREAM = LabelWriter("mgrec stream", "stream", "stream", "streamed to their end", "streaming")
DETECT = LabelWriter("mgrec detect", "detect", "detect", "detected", "detecting")

# A video's inputs, as a writer names them (`LabelSet.identify`): each (file or source, `input_identity`), in the order
# it reads them. The plan names videos by id only: two feature files swapped (or one replaced by a newer recording of
# that name) between an interrupted command and the same command again, and video A's kept file held the detections of
# A's old input, without a word.
Identify = Callable[[str], list[tuple[str | Path, str]]]

# The identity of an input that cannot be read again (standard input, a URL): such a video streams alone, so a set
# that kept its file was whole but for its marker; nothing else could be compared.
ARRIVES_ONCE = "arrives once"


def read_inputs(files_of: Callable[[str], list[Path]], videos: dict[str, Path] | None = None) -> Identify:
    """A writer's `LabelSet.identify`: of a video made into features by the command itself (`videos`: id -> the video
    file), the video (`input_identity`); else each feature file its detection reads (`files_of`, e.g.
    `OfflineDetector.input_files`)."""
    def identify(video_id: str) -> list[tuple[str | Path, str]]:
        source = (videos or {}).get(video_id)
        if source is not None:
            return [(source, input_identity(source, video=True))]
        return [(path, input_identity(path)) for path in files_of(video_id)]
    return identify


def input_identity(path: str | Path, video: bool = False) -> str:
    """What a label file was made of, as the marker records it: a feature file's SHA-256 (tens of MB, read in a
    fraction of a second); a video's size and modification time (`source_stamp`, the rule by which `mgrec extract`
    keeps a video's features as its own: hashing a video of several GB took seconds per video, at each write and at
    each resume), since its features are made again by each command, not always to the bit (a GPU's); "missing" for
    no file."""
    if not Path(path).is_file():
        return "missing"
    return f"video {source_stamp(path)}" if video else f"sha256 {file_sha256(path)}"


@dataclass
class LabelSet:
    """The SMG label folder a command writes (`out`): the plan its marker records (`mgrec.smg_csv.INCOMPLETE_MARKER`:
    the run, the videos, the writer's settings), each video's label file, and the videos whose files are written,
    those of an interrupted command of the same plan first (`_files_written_before`): the same command again writes
    only the others."""

    out: str | Path
    plan: dict
    label_paths: dict[str, Path]  # of every video, checked before any is written (`smg_label_paths`)
    resumed: bool  # the folder holds an interrupted set of this plan: its marker is there
    done: set[str]  # the videos whose label files are written
    writer: LabelWriter = STREAM
    identify: Identify | None = None  # each video's inputs (None: not recorded, nor checked on resume)
    # the folder holds this set's marker: a resumed set's from the start, a new one's once `begin` made it
    marked: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.marked = self.resumed

    @classmethod
    def planned(cls, out: str | Path, run_dir: str | Path, videos: list[str], settings: dict,
                writer: LabelWriter = STREAM, identify: Identify | None = None) -> LabelSet:
        """The set of `videos` by the run with the writer's `settings` (each one that makes another command's files
        other than this one's: a lookahead, the hard set or the ranked list, the precision, an exported network),
        refused where `out` holds label files that are not an interrupted set of the same plan, and resumed where it
        does (said on stderr): a kept file's video must have the inputs it was made of (`identify`). The caller holds
        the folder (`mgrec.run.hold_label_folder`): a second command into it while the first ran would take the first
        one's marker for an interrupted set's."""
        from mgrec.run import RunDir  # here: mgrec.run loads torch, which this module does not need otherwise

        label_paths = smg_label_paths(videos, out)
        plan = {"writer": writer.command, "run": str(Path(run_dir).resolve()),
                "run_fingerprint": RunDir(run_dir).detector_fingerprint(), "videos": sorted(videos), **settings}
        resumed = _files_written_before(Path(out), plan, label_paths, writer, identify)
        labels = cls(out, plan, label_paths, resumed is not None, set(resumed or ()), writer, identify)
        if labels.done:
            print(f"resuming the {writer.noun} into {out}: {len(labels.done)} of {counted(len(videos), 'video')} "
                  f"were {writer.finished} before (their label files are kept); {writer.doing} the "
                  f"{counted(len(videos) - len(labels.done), 'other')}", file=sys.stderr)
        return labels

    def begin(self) -> None:
        """The folder marked unfinished (exclusively: one writer at a time), at the latest by the first `write`: a
        caller that checked every video first may mark it before its work; one that finds a video unreadable only at
        its turn (`mgrec detect`) leaves a folder it wrote nothing into as it found it. A resumed set's marker is
        there already."""
        if not self.marked:
            begin_label_set(self.out, self.plan, into_empty=True)
            self.marked = True

    def write(self, video_id: str, detections: list[Detection], fps: float, with_scores: bool = False) -> None:
        """`video_id`'s label file (`smg_label_text`; `with_scores`: the ranked list's 4th column), written whole: a
        kill later keeps it. Recorded in the marker first, with the video's inputs as they are now (read and checked
        unchanged by the detection just made): a file it does not record is not kept."""
        text = smg_label_text(detections, fps, with_scores)
        inputs = None if self.identify is None else [[str(path), identity] for path, identity in
                                                     self.identify(video_id)]
        self.begin()
        record_label_file(self.out, video_id, text, inputs)
        atomic_write_text(self.label_paths[video_id], text)
        self.done.add(video_id)

    def missing(self) -> list[str]:
        """The planned videos that have no label file yet."""
        return sorted(set(self.label_paths) - self.done)

    def end(self) -> list[str]:
        """The set's marker goes, after the last file was written, where every planned video has its file; else the
        folder stays marked unfinished, and those videos are returned. A video `mgrec detect` could not read ended
        the set without its file: `mgrec score` took the folder for whole, the video missed, and the same command
        again refused the folder's files as not its own, where it now detects that video alone."""
        missing = self.missing()
        if not missing:
            end_label_set(self.out)
        return missing


def _files_written_before(out: Path, plan: dict, label_paths: dict[str, Path], writer: LabelWriter,
                          identify: Identify | None = None) -> set[str] | None:
    """The videos whose label files an interrupted command of `writer` wrote into the SMG folder `out`, each file as
    it was written (its SHA-256 in the marker; any other is refused by name), where `plan` (the videos, the run's
    fingerprint, the writer's settings; the run's path is recorded, not compared) is the one that command recorded in
    the folder's marker, and each file's video has the inputs it was made of (`identify`,
    `_refuse_other_inputs`): the same command again writes only the others. None for a folder without a marker, which
    must hold no label files. Any other unfinished folder is refused: a set of two runs, or of two lookaheads, or the
    hard set beside the ranked list, would be scored as one submission."""
    marker = out / INCOMPLETE_MARKER
    if not marker.exists():
        refuse_old_label_files(out, label_paths)
        return None
    earlier = unfinished_plan(out)
    if earlier is None or earlier.get("writer") != plan["writer"]:
        refuse_an_incomplete_set(out)  # another command's unfinished set (or an API writer's): nothing to resume
    present = {video: path for video, path in label_paths.items() if path.is_file()}
    if "videos" not in earlier:  # an `mgrec detect` before its marker recorded a plan: which set it was is unknown
        raise InputError(f"{marker}: made by an mgrec before {writer.command} recorded what its set is made of, so "
                         f"its set ({counted(len(present), 'label file')} of these videos in {out}) cannot be told to "
                         f"be this command's: remove {out}, and run the same command again")
    # The run is the one of the fingerprint, wherever it is now: a run moved or renamed (its files as they were) began
    # the set, and its old path, refused as "other settings", could not be given again: the written videos were lost.
    differ = [key for key in plan if key != "run" and earlier.get(key) != plan[key]]
    if differ:
        said = {"run_fingerprint": "the run's files changed since (trained, tuned or replaced)",
                "videos": "other videos",
                "set": f"{_set_words(earlier.get('set'))} then, {_set_words(plan.get('set'))} now"}
        # the marker's values shown cut (`brief`): one edited by hand (a list of 100,000 numbers) made a line as long
        what = "; ".join(said.get(key, f"{key} {brief(earlier.get(key))} then, {brief(plan[key])} now")
                         for key in differ)
        run = earlier.get("run")
        raise InputError(f"{out}: holds the label files of an interrupted `{writer.command}` --format smg of other "
                         f"settings ({what}; its run: {run if isinstance(run, str) and len(run) < 500 else brief(run)})"
                         f": finish it with its own command, or {writer.verb} into an empty folder")
    # A file is kept as it was written (its SHA-256 in the marker, `record_label_file`): one emptied or edited since,
    # or one of a video the command was killed before recording, counted as that video's gestures.
    written = earlier.get("written", {})
    if not (isinstance(written, dict) and all(isinstance(v, str) and isinstance(h, str) for v, h in written.items())):
        what = (f"no label file of {out} can be told from one changed since: "
                f"{_remove_the_files(len(present), writer)}" if present else
                f"{out} holds no label file yet: remove the marker, and the same command {writer.verb}s every video")
        raise InputError(f"{marker} [written]: expected the SHA-256 of each label file the {writer.noun} wrote (video "
                         f"-> hex digest, as mgrec writes it), got {brief(written)}: the marker was edited, and {what}")
    if present and "written" not in earlier:  # a marker of an mgrec before files were recorded: the plan only
        raise InputError(f"{marker}: made by an mgrec before label files were recorded in it (no \"written\"), so "
                         f"none of the {counted(len(present), 'label file')} in {out} can be told from one changed "
                         f"since or put there by hand: {_remove_the_files(len(present), writer)}")
    # every such file named at once: one a run, the other files found one by one, one run each
    changed = {video: path for video, path in present.items() if written.get(video) != file_sha256(path)}
    if changed:
        video, path = next(iter(changed.items()))
        more = "" if len(changed) == 1 else f" (and {counted(len(changed) - 1, 'other')} of the {len(present)}: " \
            f"{', '.join(str(p) for p in list(changed.values())[1:4])}{', ...' * (len(changed) > 4)})"
        raise InputError(f"{path}: is not the label file the interrupted {writer.noun} wrote for video {video}{more} "
                         f"(changed since, e.g. emptied, or put there by hand): "
                         f"{_remove_the_files(len(changed), writer)}")
    done = set(present)
    others = sorted(set(prediction_files(out)) - {label_paths[video] for video in done})
    if others:
        raise InputError(f"{out}: holds {len(others)} label file(s) the interrupted {writer.noun} did not write (e.g. "
                         f"{others[0]}): remove them, or {writer.verb} into an empty folder")
    _refuse_other_inputs(marker, earlier, done, label_paths, writer, identify)
    return done


def refuse_old_label_files(out: Path, planned: dict[str, Path] | None = None) -> None:
    """Refuse an SMG output folder that already holds prediction files, before any work.

    Each video's file would be replaced without a word and the others kept, and `mgrec score` reads
    every file of the folder as one set: videos of another run or another set (hard vs --all)
    would be scored with the new ones. Only a folder with none is safe to write into.
    `planned`: the label file of each video this output writes (`smg_label_paths`), where known: the message then says
    how the old files relate to them. A folder holding exactly those, a finished set of the same videos (the same
    command run twice), would be wholly replaced, not partly; others would be read beside the new ones."""
    refuse_an_incomplete_set(out)
    old = prediction_files(out)
    if not old:
        return
    if planned is None:
        raise InputError(
            f"{out}: already holds {len(old)} SMG label file(s) (e.g. {old[0]}), which this output would replace "
            "(those of its videos) or leave beside its own for `mgrec score` to read as one set (the others); "
            "remove them or choose another folder"
        )
    mine = {path.resolve() for path in planned.values()}
    replaced = [path for path in old if path.resolve() in mine]
    kept = [path for path in old if path.resolve() not in mine]
    if not kept and len(replaced) == len(mine):
        raise InputError(
            f"{out}: already holds {len(old)} SMG label file(s) (e.g. {old[0]}): a finished set of the same "
            f"{counted(len(mine), 'video')} as this output's, by an earlier mgrec detect or stream into it (this "
            "command run again?), which this output would wholly replace; to keep it, write into another --out "
            "folder; to write it again, remove it first"
        )
    parts = []
    if replaced:
        parts.append(f"{len(replaced)} of this output's {counted(len(mine), 'video')} (e.g. {replaced[0]}), which it "
                     "would replace")
    if kept:
        parts.append(f"{counted(len(kept), 'other file')} (e.g. {kept[0]}), which it would leave beside its own for "
                     "`mgrec score` to read as one set")
    raise InputError(f"{out}: already holds {len(old)} SMG label file(s): {'; and '.join(parts)}; remove them or "
                     "choose another folder")


def _refuse_other_inputs(marker: Path, earlier: dict, done: set[str], label_paths: dict[str, Path],
                         writer: LabelWriter, identify: Identify | None) -> None:
    """Each kept label file's video has now the inputs it was made of (the marker's "inputs", `LabelSet.write`),
    compared by identity in the order they are read, not by path (a folder of features moved keeps its set); every
    file whose video's input differs is named at once. A marker of an mgrec before inputs were recorded keeps its files
    as it did (they are checked as written, `_files_written_before`)."""
    if identify is None or "inputs" not in earlier:
        return
    recorded = earlier["inputs"] if isinstance(earlier["inputs"], dict) else {}
    changed = {video: why for video in sorted(done)
               if (why := _other_input(marker, recorded.get(video), identify(video))) is not None}
    if changed:
        video, why = next(iter(changed.items()))
        others = [str(label_paths[other]) for other in list(changed)[1:]]
        more = f" (and {counted(len(others), 'other')}: {', '.join(others[:3])}{', ...' * (len(others) > 3)})" \
            if others else ""
        raise InputError(f"{label_paths[video]}: is the label file the interrupted {writer.noun} wrote for video "
                         f"{video} of another input ({why}){more}: {_remove_the_files(len(changed), writer)}")


def _other_input(marker: Path, then: object, now: list[tuple[str | Path, str]]) -> str | None:
    """How a video's inputs now (`now`: file, identity) differ from those its label file was made of (`then`, the
    marker's record), in words; None where they are the same."""
    # the same run reads as many files for a video (its fingerprint is the plan's): another count, a record edited
    if not (isinstance(then, list) and len(then) == len(now) and all(
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item) for item in then)):
        return f"{marker} [inputs] does not record what it was made of (edited by hand?)"
    for (old, was), (path, identity) in zip(then, now):
        if identity != was:
            now_is = "is not there" if identity == "missing" else "is another file"
            return f"it was made of {old} as it was then, and {path} {now_is} now (replaced, or swapped with another " \
                "video's, since)"
    return None


def _set_words(kind: object) -> str:
    """A plan's "set" (`mgrec detect`'s) in words."""
    # a marker edited by hand may hold any JSON there: a list was a TypeError (unhashable) traceback
    words = {"ranked": "the ranked list (--all)", "hard": "the hard set"}
    return words[kind] if isinstance(kind, str) and kind in words else brief(kind)


def _remove_the_files(count: int, writer: LabelWriter) -> str:
    """What to do with `count` label files a resume cannot keep."""
    it, videos = ("it", "that video") if count == 1 else ("them", "those videos")
    return f"remove {it}, and the same command {writer.verb}s {videos} again"
