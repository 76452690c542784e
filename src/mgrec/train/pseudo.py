"""Pseudo-labels: unlabelled videos labelled by a trained run, then trained on with the labelled ones.

    mgrec train demo/mgrec.yaml --out runs/x --unlabeled ~/.cache/mgrec/demo/unlabeled

With `pseudo_labels.unlabeled` set, `train` first gets a labelling run (the teacher): the run named
by `pseudo_labels.teacher`, or one it trains into RUN/teacher with the same config minus the
pseudo-labels. The teacher's selected EMA weights detect every feature file of the folder, and its
hard set (score >= its F1 threshold tuned on val, or `pseudo_labels.min_score`) becomes that
video's ground truth. The student then trains on the labelled videos plus these, like any video
(crops, balancing and transforms alike). With `rounds` > 1, each student but the last (in
RUN/student<r>) labels the pool anew for the next. Every round is a full training: the cost is
(rounds + 1) trainings without a given teacher.

Only the feature files of the folder are read (and their sidecars, for the fps): never an
annotation, so the labels of videos that happen to be annotated elsewhere (the test subjects' own
videos, in the transductive setting, `pseudo_labels.transductive`) are never seen. The labels used
are written to RUN/pseudo_labels.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from mgrec.config import Config, PseudoLabelConfig
from mgrec.data.datasets import VideoSample, segments_to_grid
from mgrec.data.features import (
    FPS_TOLERANCE,
    FeatureSidecar,
    check_sidecar,
    check_sidecar_length,
    feature_file_shape,
    feature_path,
    inspect_features,
    list_feature_files,
    load_features,
    read_sidecar,
    recipe_differences,
    repeated_feature_files,
    sidecar_path,
    video_id_of,
)
from mgrec.data.normalize import network_inputs
from mgrec.errors import InputError
from mgrec.evaluate.f1 import bar_words, hard_set
from mgrec.files import counted, is_hidden, part_of
from mgrec.model.load import load_run_network
from mgrec.postprocess.second_opinion import run_second_opinion
from mgrec.postprocess.video import detect_video
from mgrec.run import RunDir


def without_pseudo_labels(config: Config) -> Config:
    """The config a teacher (or an intermediate student's labels) is trained with."""
    return dataclasses.replace(config, pseudo_labels=PseudoLabelConfig())


# How messages name the unlabelled folder: set in a config, or by `mgrec train --unlabeled FOLDER`
UNLABELED = "pseudo_labels.unlabeled (train --unlabeled)"


def unlabeled_files(folder: str | Path, log=print) -> list[Path]:
    """The pool's feature files. What the pool leaves out is said (`log`): hidden names (`._x.npy`), as `detect` says
    them, and sidecars without their feature file (a video whose array is gone: the pool was one video short
    without a word)."""
    if Path(folder).is_file():
        raise InputError(f"{UNLABELED}: {folder} is a file; give the folder that holds the unlabelled "
                         "feature files")
    try:  # a missing or empty folder, a name that cannot be read: said of the setting, as every pool problem is
        listing = list_feature_files(folder)
    except InputError as error:
        raise InputError(f"{UNLABELED}: {error}") from None
    if listing.note() is not None:
        log(f"note: {UNLABELED}: {listing.note()}")
    sidecars = {sidecar_path(path) for path in listing.files + listing.skipped}
    alone = sorted(path for path in Path(folder).glob("*.json") if path not in sidecars and not is_hidden(path))
    if alone:
        shown = ", ".join(path.name for path in alone[:3]) + (", ..." if len(alone) > 3 else "")
        one = len(alone) == 1
        log(f"note: {UNLABELED}: {counted(len(alone), 'sidecar')} in {folder} without {'its' if one else 'their'} "
            f"feature file ({shown}): {'that video is' if one else 'those videos are'} not in the pool")
    return listing.files


def check_unlabeled(files: list[Path], config: Config, log=print) -> None:
    """Before any teacher trains: every unlabelled file reads as features of the run's width, made the way the
    training features were (its sidecar's stride, window, fps and recipe) and placed in time (an fps known),
    and none is a video the run is trained, selected or tested on: by its name, by the file it is (a link), or
    by its content (a copy under another name).

    Only the split each annotated video id belongs to is looked at, never a label. A training video has
    labels already; a val video pseudo-labelled would be trained on and then select the checkpoint and the
    threshold; a test video is allowed only in the declared transductive setting (`pseudo_labels.transductive`).
    Files without a sidecar are read at data.fps, and noted where the training features record a recipe: theirs
    cannot be held to it (another backbone of the same width was pseudo-labelled without a word).
    """
    from mgrec.data.annotations import load_annotations

    data = config.data
    annotations = load_annotations(data.annotations, default_fps=data.fps)
    split_of = {video: split for split in (data.train_split, data.val_split, data.test_split) if split
                for video in annotations.video_ids(split)}
    labelled = {video: feature_path(data.features, video, data.feature_ext, data.feature_prefix) for video in split_of}
    recipe_file, recipe = training_recipe(config, annotations)
    shapes = {path: inspect_features(path, expected_dim=data.feature_dim) for path in files}
    refuse_one_id_twice(files, data.feature_prefix)
    twice, twins = pool_repeats(files, shapes, labelled, data.feature_prefix)
    for first, then, how in twice:
        raise InputError(f"{UNLABELED}: {first} and {then} {how}; the pool holds each video once")
    for path in files:
        for video, how in twins.get(path, []):  # every video it is: a test video's name, a train video's features
            split = split_of[video]
            if split == data.test_split and config.pseudo_labels.transductive:
                continue
            why = ("it is trained on with its own labels" if split == data.train_split else
                   "it selects the checkpoint and the threshold" if split == data.val_split else
                   "set pseudo_labels.transductive: true to label the test videos on purpose, and say so")
            raise InputError(f"{UNLABELED}: {path} is video {video!r} of the {split} split in "
                             f"{data.annotations}{how} ({why}); give a folder of videos outside the labelled splits")
    for path in files:
        check_unlabeled_sidecar(path, shapes[path][0], config, recipe, recipe_file)
    bare = [path for path in files if not sidecar_path(path).is_file()]
    if bare and recipe is not None:
        first = bare[0] if len(bare) == 1 else f"first: {bare[0]}"
        log(f"note: {UNLABELED}: {part_of(len(bare), len(files), 'feature file')} of the pool "
            f"{'has' if len(bare) == 1 else 'have'} no sidecar ({first}), so how "
            f"{'it was' if len(bare) == 1 else 'they were'} made cannot be checked against the training features' "
            f"recipe ({recipe_file}: backbone {recipe.backbone}); {'it is' if len(bare) == 1 else 'they are'} read "
            f"at data.fps {config.data.fps:g}: extract the pool with the training features' recipe (mgrec extract "
            "writes a sidecar beside each file)")


def refuse_one_id_twice(files: list[Path], prefix: str = "") -> None:
    """Two files of one video id in the pool (x.npy and x.npz): one video twice, trained on with twice the weight and
    recorded once, by its id. Files of one video under two names are `pool_repeats`'."""
    seen: dict[str, Path] = {}
    for path in files:
        other = seen.setdefault(video_id_of(path, prefix), path)
        if other != path:
            raise InputError(f"{UNLABELED}: {other} and {path} are the same video id; the pool holds each "
                             "video once")


def training_recipe(config: Config, annotations) -> tuple[Path | None, FeatureSidecar | None]:
    """The sidecar of the first training video's features (where it is, what it says): how the training features
    were made, which pool files and a given teacher are held to. None where it is missing or unreadable (a broken
    training sidecar is training's to report, not the pool's)."""
    train_ids = annotations.video_ids(config.data.train_split)
    if not train_ids:
        return None, None
    data = config.data
    side = sidecar_path(feature_path(data.features, train_ids[0], data.feature_ext, data.feature_prefix))
    if side.is_file():
        with contextlib.suppress(InputError):
            return side, read_sidecar(side)
    return side, None


def check_unlabeled_sidecar(path: Path, length: int, config: Config, recipe: FeatureSidecar | None,
                            recipe_file: Path | None) -> None:
    """An unlabelled file's sidecar agrees with the config (stride, window, dim, fps) and with the training
    features' recipe (`recipe`, read from `recipe_file`), as a labelled file's must; and its fps is known
    (the sidecar's or data.fps): pseudo-labels on another grid would sit at the wrong times."""
    data, side = config.data, sidecar_path(path)
    sidecar = read_sidecar(side) if side.is_file() else None
    if sidecar is not None:
        check_sidecar(sidecar, data.stride, data.window, data.feature_dim, fps=data.fps, source=side)
        check_sidecar_length(path, length, sidecar)
        differences = recipe_differences(sidecar, recipe, reference="the training features") if recipe else []
        if differences:
            raise InputError(f"{UNLABELED}: {side}: these features were made with another recipe than "
                             f"the training features ({recipe_file}): {'; '.join(differences)}")
    if (sidecar is None or sidecar.fps is None) and data.fps is None:
        raise InputError(f"{path}: the features' fps is unknown: put its sidecar {side.name} beside it "
                         "(mgrec extract writes one), or set data.fps")


# What a given teacher must share with the run it labels for: the features, read on the same grid (its detections
# are placed on the student's grid). How they become network inputs (data.normalize) may differ: each reads them
# its own way (`label_videos`).
TEACHER_DATA_KEYS = ("feature_dim", "stride", "window")


def check_teacher(teacher: RunDir, config: Config, log=print) -> None:
    """A run given as `pseudo_labels.teacher` labels videos for this run: its label ids must name this run's classes
    (the annotations'), its features be read on this run's grid, made the same way (its recorded recipe against
    the training features'), and it must not have trained on a video this run validates or tests on, nor validated
    on one it tests on (their labels would reach this run through the pseudo-labels; sharing this run's val split,
    as the teacher training makes into RUN/teacher does, is what training on val labels means anyway). Refused
    before any video is labelled."""
    from mgrec.data.annotations import load_annotations

    annotations = load_annotations(config.data.annotations, default_fps=config.data.fps)
    classes = annotations.classes
    run_config = teacher.read_config()
    own_classes = teacher.read_classes()
    if own_classes != classes:
        first = next((i for i, (a, b) in enumerate(zip(own_classes, classes)) if a != b), min(len(own_classes),
                                                                                            len(classes)))
        raise InputError(f"pseudo_labels.teacher: {teacher.classes_path} lists other classes than "
                         f"{config.data.annotations} ({len(own_classes)} against {len(classes)}; the first difference "
                         f"at label id {first}): the teacher's label ids would name other gestures")
    for key in TEACHER_DATA_KEYS:
        own, wanted = getattr(run_config.data, key), getattr(config.data, key)
        if own != wanted:
            raise InputError(f"pseudo_labels.teacher: {teacher.config_path} [data.{key}]: {own!r}, but this run has "
                             f"{wanted!r}; the teacher must read the features this run trains on, on the same grid")
    if run_config.data.streams:
        raise InputError(f"pseudo_labels.teacher: {teacher.path} reads several input streams (data.streams); a teacher "
                         "labels the one feature file of each unlabelled video")
    features, recipe = training_recipe(config, annotations)
    teacher_recipe = read_sidecar(teacher.recipe_path) if teacher.recipe_path.is_file() else None
    # the fps each reads its features at: data.fps where set (it overrides), else its features' own
    own_fps = run_config.data.fps or (teacher_recipe.fps if teacher_recipe else None)
    wanted_fps = config.data.fps or (recipe.fps if recipe else None)
    if own_fps is not None and wanted_fps is not None and abs(own_fps - wanted_fps) > FPS_TOLERANCE:
        raise InputError(f"pseudo_labels.teacher: {teacher.path} reads its features at {own_fps:g} fps, this run at "
                         f"{wanted_fps:g} (data.fps or the features' sidecars); the teacher must read them on the same "
                         "grid")
    if recipe is not None and teacher_recipe is not None:
        differences = recipe_differences(teacher_recipe, recipe, reference="the training features")
        if differences:
            raise InputError(f"pseudo_labels.teacher: {teacher.recipe_path}: the teacher was trained on features made "
                             f"another way than this run's ({features}): {'; '.join(differences)}")
    record = teacher.read_splits()  # what the teacher trained and validated on, recorded when it did (format 14)
    if record is not None:
        _refuse_leaks(teacher, config, annotations, set(record["train"]), set(record["val"]), record["annotations"])
        return
    # a teacher of format 13 or older: its annotations where they are here (a relative path is read from the
    # current folder, as training read it; an absolute one that is not here was another machine's, and cannot be
    # compared), as they are now
    taught_from = Path(run_config.data.annotations)
    if str(run_config.data.annotations) in ("", "."):  # a run imported without its data (`write_for_inference`)
        log(f"note: pseudo_labels.teacher: {teacher.config_path} names no annotations: whether the teacher trained on "
            "this run's val or test videos cannot be checked")
        return
    if not taught_from.is_file():
        if not taught_from.is_absolute():
            raise InputError(f"pseudo_labels.teacher: {teacher.config_path} [data.annotations]: {taught_from} not "
                             f"found (relative paths are read from the current directory {Path.cwd()}); train "
                             "from the folder the teacher was trained in, so that its splits can be compared with "
                             "this run's")
        log(f"note: pseudo_labels.teacher: {taught_from} (the teacher's annotations) is not here: whether it trained "
            "on this run's val or test videos cannot be checked")
        return
    taught = load_annotations(taught_from, default_fps=run_config.data.fps)
    trained_on = set(taught.video_ids(run_config.data.train_split))
    validated_on = set(taught.video_ids(run_config.data.val_split)) if run_config.data.val_split else set()
    _refuse_leaks(teacher, config, annotations, trained_on, validated_on, str(taught_from))


def _refuse_leaks(teacher: RunDir, config: Config, annotations, trained_on: set[str], validated_on: set[str],
                  taught_from: str) -> None:
    """Refuse a teacher that trained on a video this run validates or tests on, or validated on one it tests on."""
    leaked = [(video, split, "trained") for split in (config.data.val_split, config.data.test_split) if split
              for video in annotations.video_ids(split) if video in trained_on]
    if config.data.test_split:
        leaked += [(video, config.data.test_split, "validated")
                   for video in annotations.video_ids(config.data.test_split) if video in validated_on]
    if leaked:
        shown = ", ".join(f"{video} (this run's {split}, the teacher {how} on it)" for video, split, how in leaked[:3])
        raise InputError(f"pseudo_labels.teacher: {teacher.path} saw the labels of {len(leaked)} video(s) this run "
                         f"holds out: {shown}{', ...' if len(leaked) > 3 else ''} (its annotations: {taught_from}); "
                         "their labels would reach this run through the pseudo-labels")


def pool_repeats(pool: list[Path], shapes: dict[Path, tuple[int, int]], labelled: dict[str, Path], prefix: str = ""
                 ) -> tuple[list[tuple[Path, Path, str]], dict[Path, list[tuple[str, str]]]]:
    """What the unlabelled pool repeats, by one copy search over the labelled files and the pool
    (`repeated_feature_files`: a link, a copy under another name, or the video extracted again in another runtime,
    found without comparing every pair):
    - pairs of pool files that are one video (first, then, how: words for a message); two pool files that are one
      labelled video, by name or by content, are one such pair;
    - each pool file that is an annotated video: file -> [(video id, how it was found)], by its name and by its
      content, each (a file named after a test video may hold a training video's features).
    Only the labelled files of a pool file's shape are read past their header; one that cannot be read is left out
    (it is training's to report: `data.drop_bad_videos` may leave it out)."""
    found: dict[Path, list[tuple[str, str]]] = {}
    for path in pool:
        if video_id_of(path, prefix) in labelled:
            found[path] = [(video_id_of(path, prefix), "")]
    pool_shapes = {tuple(shapes[path]) for path in pool}
    videos, labelled_shapes = [], []
    for video, file in labelled.items():
        if file.is_file():
            with contextlib.suppress(InputError):
                shape = tuple(feature_file_shape(file))
                if shape in pool_shapes:
                    videos.append(video)
                    labelled_shapes.append(shape)
    # the labelled files first: a pool file is paired with the first file it repeats, so with a labelled one if any
    files = [labelled[video] for video in videos] + list(pool)
    all_shapes = dict(enumerate(labelled_shapes + [tuple(shapes[path]) for path in pool]))
    twice = []
    for repeat in repeated_feature_files(files, all_shapes):
        if repeat.then < len(videos):
            continue  # labelled videos that repeat each other are `data check`'s to report
        then = files[repeat.then]
        if repeat.first >= len(videos):
            twice.append((files[repeat.first], then, repeat.how))
            continue
        video, file = videos[repeat.first], labelled[videos[repeat.first]]
        how = (f" (it is {file})" if repeat.how == "are one file" else
               f" (the same features as {file}{' up to float rounding' * repeat.how.endswith('float rounding')})")
        if all(video != known for known, _ in found.get(then, [])):
            found.setdefault(then, []).append((video, how))
    holder: dict[str, Path] = {}
    for path in pool:  # two pool files that are one labelled video are that video twice
        for video, _ in found.get(path, []):
            other = holder.setdefault(video, path)
            if other != path:
                twice.append((other, path, f"are both video {video!r}"))
    return twice, found


def label_videos(labeller: RunDir, files: list[Path], config: Config, min_score: float | None,
                 log=print) -> tuple[list[VideoSample], dict]:
    """Each file's features with the labelling run's hard set as ground truth; and the record of it."""
    run_config, classes, model = load_run_network(labeller, "best")
    # the labelling run's hard set (its per-class thresholds where it tuned them), or min_score for every class
    tuned = labeller.read_postprocess(run_config)
    threshold = min_score if min_score is not None else tuned.score_threshold
    class_thresholds = tuned.class_thresholds if min_score is None else None
    # a labelling run with a second opinion tuned its threshold on rescored detections: it labels with them too
    second_opinion = run_second_opinion(labeller, run_config)
    samples, record = [], {}
    for path in files:
        video_id = video_id_of(path, config.data.feature_prefix)
        features = load_features(path, expected_dim=config.data.feature_dim)
        side = sidecar_path(path)  # checked with the pool (`check_unlabeled_sidecar`): an fps is known
        grid = config.data.grid(read_sidecar(side).fps if side.exists() else None)
        # the labelling run reads the video as it was trained to; the training run as it is configured to
        inputs = network_inputs(config.data.normalize, features)
        teacher_inputs = inputs if run_config.data.normalize == config.data.normalize else \
            network_inputs(run_config.data.normalize, features)
        kept = hard_set(detect_video(model, teacher_inputs, grid, run_config.postprocess, classes, video_id,
                                     second_opinion=second_opinion), threshold, class_thresholds)
        samples.append(VideoSample(video_id, inputs, *segments_to_grid(kept, grid), grid))
        record[video_id] = [{"label": d.label, "start": d.start, "end": d.end, "score": d.score} for d in kept]
    found = sum(len(v) for v in record.values())
    log(f"pseudo-labelled {counted(len(files), 'unlabelled video')} with {labeller.path}: "
        f"{counted(found, 'instance')} (score >= {bar_words(threshold, class_thresholds)})")
    if found == 0:  # the pool's gestures are taught as background, every one of them
        pool = ("the one unlabelled video: it trains" if len(files) == 1
                else f"any of the {len(files)} unlabelled videos: they train")
        log(f"warning: {labeller.path} labelled no gesture in {pool} as "
            "background only; lower pseudo_labels.min_score, or check that the pool holds videos of these gestures")
    return samples, {"labelled_by": str(labeller.path), "min_score": threshold, "class_thresholds": class_thresholds,
                     "videos": record}
