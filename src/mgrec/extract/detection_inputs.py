"""What `mgrec detect` and `mgrec stream` read: feature files as given, or made from the videos given with the run's
recipe; of a detection-level ensemble (an RGB run and a skeleton run), each member's, made with the member's own recipe
or read from the folder `--member M=FOLDER` names.

`inputs_for` is the one entry: it returns an `Inputs` that `mgrec.infer.detect.detect_files` and
`mgrec.infer.stream.stream_files` take as they are. The helpers after it say which folders a command reads besides its
inputs (so its output never replaces one of their files) and how to read kept features again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mgrec.data.features import sidecar_path, video_id_of
from mgrec.data.streams import GRID_STREAM_FOLDER, member_streams_advice, stream_folders
from mgrec.data.videos import video_id
from mgrec.errors import InputError
from mgrec.extract.jobs import extract_with_recipe, is_video, video_recipe
from mgrec.extract.outputs import InputsFailed
from mgrec.files import shell_word
from mgrec.run import RunDir


@dataclass
class Inputs:
    """What `detect` and `stream` read: feature files as given, or made from the videos given with the run's recipe
    (`inputs_for`)."""

    inputs: list[Path]  # the (grid stream's) feature files, one per video; of an ensemble, member 0's
    stream_folders: dict[str, Path]  # the other streams' folders made from the videos (of an ensemble: member 0's)
    member_folders: dict[int, Path] | None  # an ensemble's member -> its grid files' folder (`OfflineDetector`'s)
    member_stream_folders: dict[int, dict[str, Path]] | None  # an ensemble's member -> its other streams' folders
    reused: list[Path]  # of `inputs`, the videos whose features (every member's) were found made already


def inputs_for(run_dir: Path, inputs: list, scratch: Path, member_folders: dict[int, Path] | None,
               device: str = "cpu", progress: bool = False, failed: list[str] | None = None) -> Inputs:
    """The inputs as `detect` and `stream` read them: videos made into features in `scratch` with the run's recipe
    (`features_for`), or with each member's, of a detection-level ensemble (`members_features_for`); feature files
    as given, with the folders of --member M=FOLDER laid out as `detect --keep-features` keeps them."""
    if RunDir(run_dir).fuses_detections() and any(is_video(path) for path in inputs):  # each member's (or read)
        return members_features_for(run_dir, inputs, scratch, given=member_folders, device=device, progress=progress,
                                    failed=failed)
    if member_folders:  # feature files: member M's in its folder, laid out as --keep-features keeps them
        layouts = {m: member_layout(RunDir(run_dir).member_path(m), folder) for m, folder in member_folders.items()}
        return Inputs(list(inputs), {}, {m: grid for m, (grid, _) in layouts.items()},
                      {m: streams for m, (_, streams) in layouts.items() if streams}, [])
    reused: list[Path] = []
    files, extracted = features_for(run_dir, inputs, scratch, device=device, progress=progress, failed=failed,
                                    reused=reused)
    return Inputs(files, extracted, None, None, reused)


def features_for(run_dir: Path, inputs: list, scratch: Path, device: str = "cpu", progress: bool = False,
                 failed: list[str] | None = None, reused: list[Path] | None = None
                 ) -> tuple[list[Path], dict[str, Path]]:
    """Feature inputs as they are; recorded videos turned into features with the run's recipe first.

    A run with several input streams: each video is turned into every stream with that stream's
    recipe; the grid stream's files are returned, and the folders of the other streams' (by name).
    `failed`: where given (one stream), the videos whose features could not be made are said there and the others
    returned (an overnight batch's one bad file lost every other video's work); otherwise any failure is raised.
    `reused`: where given, the grid stream's feature files found made with the recipe already are said there."""
    videos = [Path(p) for p in inputs if is_video(p)]
    others = [Path(p) for p in inputs if not is_video(p)]
    if not videos:
        return others, {}
    if RunDir(run_dir).fuses_detections():
        raise InputError(f"{run_dir} fuses runs that may read different features: each member's features of a video "
                         "are made with its own recipe (`inputs_for`, as `mgrec detect` and `mgrec stream` do), or "
                         "given with --member M=FOLDER")
    config = RunDir(run_dir).read_config()
    # a feature file and a video of one id: refused now, by the names given, not after the video is extracted (and
    # named by its features' temporary path)
    given = {video_id_of(path, config.data.feature_prefix): path for path in others if path.is_file()}
    for video in videos:
        if video_id(video) in given:
            raise InputError(f"{given[video_id(video)]} and {video} are both video {video_id(video)!r}; "
                             "give one of them (one output would silently replace the other)")
    streams = config.data.input_streams()
    if len(streams) > 1 and others:  # the other streams of a video are made into scratch, of a file read elsewhere
        raise InputError(f"{run_dir} reads {len(streams)} streams: give either videos or the grid stream's feature "
                         "files, not both in one call")
    folders = {}
    for stream in streams[1:]:
        folders[stream.name] = scratch / stream.name
        try:
            made = [result.feature_path for result in extract_with_recipe(run_dir, videos, folders[stream.name],
                                                                          device=device, progress=progress,
                                                                          stream=stream.name)]
        except InputsFailed as exc:  # it said "the others were written" of a call that then wrote nothing
            raise InputError(str(exc).replace(" (the others were written)", "") + "\nno detections were written")
        for path in made if stream.feature_prefix else ():  # named as the stream's files are read
            for file in (sidecar_path(path), path):
                file.rename(file.with_name(stream.feature_prefix + file.name))
    main = scratch / GRID_STREAM_FOLDER if len(streams) > 1 else scratch
    try:
        results = extract_with_recipe(run_dir, videos, main, device=device, progress=progress)
    except InputsFailed as exc:
        if failed is None or len(streams) > 1:
            raise InputError(str(exc).replace(" (the others were written)", "") + "\nno detections were written")
        failed += exc.failures
        results = exc.results  # the videos that did not fail
    if reused is not None:
        reused += [result.feature_path for result in results if result.status == "skipped"]
    return others + [result.feature_path for result in results], folders


def members_features_for(run_dir: Path, inputs: list, scratch: Path, given: dict[int, Path] | None = None,
                         device: str = "cpu", progress: bool = False,
                         failed: list[str] | None = None) -> Inputs:
    """Videos turned into the features of each member of a detection-level ensemble, with the member's own recipe, in
    `scratch`/members/<m>/ (as the ensemble holds its members); a member in `given` reads its files from that folder
    instead (`--member M=FOLDER`: a skeleton run beside an RGB run). Every member to make features is checked to be one
    that can before any is made. A video that one member cannot make is made by no later member and not detected
    (`failed`: said there, naming the member, where given; else raised)."""
    if not all(is_video(path) for path in inputs):
        raise InputError(f"{run_dir} fuses runs that may read different features: give it videos (each member makes "
                         "its own features of them) or feature files (with --member M=FOLDER for a member that reads "
                         "other files), not both in one call")
    given = given or {}
    run = RunDir(run_dir)
    members = range(run.read_ensemble()["members"])
    for member in members:  # a member that cannot make features was found after the others had made them all
        if member in given:
            continue
        streams = RunDir(run.member_path(member)).read_config().data.input_streams()
        try:
            for stream in [None, *(s.name for s in streams[1:])]:
                video_recipe(run.member_path(member), stream)
        except InputError as exc:
            way = ("give every member's feature files instead: member 0's as the inputs, --member M=FOLDER for the "
                   "others" if member == 0 else
                   f"give its feature files with --member {member}=FOLDER (the others make theirs of the videos)")
            raise InputError(f"{member_named(run_dir, member)}: {exc}; {way}") from None
    videos = [Path(path) for path in inputs]
    made: dict[str, Path] = {}  # video id -> member 0's file
    reused: set[str] | None = None
    folders, other_streams = {}, {}
    for member in members:
        if member in given:
            folders[member], other_streams[member] = member_layout(run.member_path(member), given[member])
            continue
        member_run, member_failed, member_reused = run.member_path(member), [], []
        try:
            paths, streams = features_for(member_run, videos, scratch / "members" / str(member), device=device,
                                          progress=progress, failed=None if failed is None else member_failed,
                                          reused=member_reused)
        except InputError as exc:
            raise InputError(f"{member_named(run_dir, member)}: {exc}") from None
        if failed is not None:
            failed += [f"{member_named(run_dir, member)}: {problem}" for problem in member_failed]
        prefix = RunDir(member_run).read_config().data.feature_prefix
        ids = {video_id_of(path, prefix): path for path in paths}
        made = made if member else ids
        videos = [video for video in videos if video_id(video) in ids]  # the next members make these alone
        found = {video_id_of(path, prefix) for path in member_reused}
        reused = found if reused is None else reused & found
        folders[member] = scratch / "members" / str(member) / (GRID_STREAM_FOLDER if len(streams) else "")
        other_streams[member] = streams
    kept = {video_id(video) for video in videos}
    member_streams = {member: streams for member, streams in other_streams.items() if streams}
    return Inputs([path for video, path in made.items() if video in kept], member_streams.get(0, {}), folders,
                  member_streams, [path for video, path in made.items() if video in kept & (reused or set())])


def member_layout(member_run: Path, folder: Path) -> tuple[Path, dict[str, Path]]:
    """Where a member reads its files in `folder`: its grid stream's there, or, for a member that reads several streams,
    in `folder`/grid/ with each other stream's in `folder`/<stream>/ where there is one (as `detect --keep-features`
    keeps them; a stream without its folder there is read from the member's config)."""
    streams = RunDir(member_run).read_config().data.input_streams()
    if len(streams) == 1 or not (folder / GRID_STREAM_FOLDER).is_dir():
        return folder, {}
    return folder / GRID_STREAM_FOLDER, {s.name: folder / s.name for s in streams[1:] if (folder / s.name).is_dir()}


def member_named(run_dir: Path, member: int) -> str:
    """How messages name a member of an ensemble."""
    return f"member {member} of {run_dir} ({RunDir(run_dir).member_path(member)})"


def member_folders_given(run_dir: Path, items: list[str]) -> dict[int, Path] | None:
    """`--member M=FOLDER` items -> {member index: folder}, checked against the run. Member 0 reads the files given (its
    other streams: --stream), which name the videos, so M is 1 or more."""
    if not items:
        return None
    if not RunDir(run_dir).fuses_detections():
        raise InputError(f"--member {items[0]}: {run_dir} is no detection-level ensemble (`mgrec ensemble --fusion "
                         "detections`): its network reads the files given; leave --member out")
    count = RunDir(run_dir).read_ensemble()["members"]
    folders: dict[int, Path] = {}
    for item in items:
        index, sep, folder = item.partition("=")
        # ASCII digits, a few of them: str.isdigit takes '²' and '١', and int() refused the first and a 5000-digit
        # index (Python's limit on converting long strings) with a raw traceback
        if not sep or not folder or not re.fullmatch(r"[0-9]{1,9}", index) or int(index) >= count:
            raise InputError(f"--member {item!r}: expected M=FOLDER, M a member of {run_dir} (0..{count - 1}: "
                             f"members/<M>/)")
        if int(index) == 0:
            raise InputError(f"--member {item!r}: member 0 reads the files given (they name the videos; its other "
                             "streams: --stream NAME=FOLDER); --member names the folders of members 1.."
                             f"{count - 1}")
        if int(index) in folders:
            raise InputError(f"--member: member {int(index)} is given twice")
        folders[int(index)] = Path(folder).expanduser()  # `--member 1=~/x`: the shell leaves a ~ after '=' alone
    return folders


def stream_folders_read(run_dir: Path, items: list[str], extracted: dict[str, Path]) -> dict[str, Path] | None:
    """The other streams' folders: made from a video (`features_for`), else given by --stream, else the run's."""
    if items and extracted:
        raise InputError("--stream names the other streams' folders of feature files; for videos they are made "
                         "from the video with the run's recipes: leave --stream out")
    given = streams_given(run_dir, items, RunDir(run_dir).read_config().data) if items else {}
    return {**given, **extracted} or None


def streams_given(run_dir: Path, items: list[str], data) -> dict[str, Path]:
    """`--stream NAME=FOLDER` items -> {name: folder}, checked against the run's streams (`data`: its data config; of
    a detection-level ensemble, member 0's). A stream of another member of an ensemble is refused with how that member
    is given it: `no stream 'gyro' in this run (its streams: features)` was all it said, of a stream the message of
    its missing file had said to give so."""
    try:
        return stream_folders(items, data)
    except InputError:
        run, own = RunDir(run_dir), [stream.name for stream in data.input_streams()]
        if not run.fuses_detections():
            raise
        for item in items:
            name = item.partition("=")[0]
            for member in range(1, run.read_ensemble()["members"]) if name not in own else ():
                streams = RunDir(run.member_path(member)).read_config().data.input_streams()
                if name not in [stream.name for stream in streams]:
                    continue
                given = (member_streams_advice(member, streams[0].name, name) if name != streams[0].name else
                         f"--member {member}=FOLDER, FOLDER holding the files of {name}, its grid stream")
                others = ", ".join(stream.name for stream in data.input_streams()[1:]) or "none: it reads one"
                raise InputError(f"--stream {item!r}: stream {name!r} is read by {member_named(run_dir, member)}; "
                                 f"--stream names member 0's other streams ({others}): give member {member}'s as "
                                 f"{given}") from None
        raise


def feature_folders_read(run_dir: Path, stream_items: list[str], member_folders: dict[int, Path] | None
                          ) -> list[Path]:
    """The folders of feature files `detect` reads besides its inputs, whose files (features and sidecars) its --out
    must not replace: a detection-level ensemble's members' (--member M=FOLDER), and the other streams' of a run of
    several (--stream NAME=FOLDER, else its config's; each member's own of an ensemble). `--out FOLDER/v.json` wrote
    the results over the sidecar of video v's features there, which no command could read again."""
    run = RunDir(run_dir)
    folders = list((member_folders or {}).values())
    try:
        members = ([RunDir(run.member_path(m)) for m in range(run.read_ensemble()["members"])]
                   if RunDir(run_dir).fuses_detections() else [])
        configs = [(each, each.read_config().data) for each in (run, *members)]
    except InputError:  # an unreadable run: loading it says so, after the command's own checks of its options
        configs = []
    for each, data in configs:
        given = streams_given(run_dir, stream_items, data) if each is run and stream_items else {}
        folders += [given.get(stream.name, Path(stream.features)) for stream in data.input_streams()[1:]]
    return [folder for folder in folders if str(folder) and folder.is_dir()]


def kept_members_command(run_dir: Path, keep_features: Path, given: dict[int, Path] | None) -> str:
    """The command that detects again with the features an ensemble's `detect --keep-features K` kept (`given`: the
    members read from --member folders, not made)."""
    run, kept, given = RunDir(run_dir), keep_features / "members", given or {}
    grid, streams = member_layout(run.member_path(0), kept / "0")
    words = [shell_word(grid), *("--stream " + shell_word(f"{name}={folder}") for name, folder in streams.items())]
    words += ["--member " + shell_word(f"{m}={given.get(m, kept / str(m))}")
              for m in range(1, run.read_ensemble()["members"])]
    return f"`mgrec detect RUN {' '.join(words)}` reads them"
