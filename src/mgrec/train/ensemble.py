"""`mgrec ensemble RUN_A RUN_B ... --out RUN_E`: several trained runs made into one run directory.

The members' selected (EMA) weights are averaged at the output, per point (`mgrec.model.ensemble`):
members must share the classes, the feature grid, the network layout (the `model` section) and the
post-processing (the `postprocess` section), and their ensemble is one network with one decode and one
NMS. The ensemble's F1 score threshold is tuned on the val split, as training does for a single run.
RUN_E is a complete run directory with all members' weights inside it (it does not refer back to the
member runs), which `detect`, `evaluate`, `stream` and `report` read like any other run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgrec.config import MAX_SEED, Config, load_config, to_dict
from mgrec.data.annotations import val_videos_at_hand
from mgrec.data.features import read_run_recipe, read_sidecar, recipe_differences
from mgrec.devices import process_rank
from mgrec.errors import InputError
from mgrec.files import callable_argument, check_writable, counted, part_of, path_argument, shell_word
from mgrec.model.ensemble import EnsembleDetector
from mgrec.model.load import load_run_network
from mgrec.postprocess.second_opinion import SecondOpinion, run_classifier
from mgrec.run import (
    RunDir,
    checked_members,
    join_split_records,
    member_paths,
    new_ensemble_dir,
    pseudo_labelled_members,
    refuse_a_folder_training_reads,
    refuse_a_run_path_not_utf8,
    refuse_a_written_ensemble_dir,
    refuse_members_trained_on,
    run_data_path,
)
from mgrec.terminal import said_once
from mgrec.train.data import checked_annotations, load_split
from mgrec.train.loop import TrainResult, check_same_config, refuse_before_training, train, validate

# The settings members must share: the grid the features are read on, how they become network inputs,
# and the network's layout.
SHARED_DATA_KEYS = ("feature_dim", "stride", "window", "fps", "normalize")
# Post-processing settings compared elsewhere: the second opinion with its classifier (`shared_second_opinion`).
UNSHARED_POSTPROCESS_KEYS = ("second_opinion",)


@dataclass
class EnsembleResult:
    run_dir: Path
    members: list[str]
    val_metrics: dict | None  # f1, f1_miga, average_mAP, score_threshold on val (None: no val split)


def check_compatible(first: tuple[Path, Config, list[str]], other: tuple[Path, Config, list[str]]) -> None:
    """InputError naming the first setting in which two members differ."""
    (path_a, config_a, classes_a), (path_b, config_b, classes_b) = first, other
    if classes_a != classes_b:
        raise InputError(f"{path_b}: its classes differ from those of {path_a}; an ensemble needs the same classes")
    for key in SHARED_DATA_KEYS:
        a, b = getattr(config_a.data, key), getattr(config_b.data, key)
        if a != b:
            raise InputError(f"{path_b} [data.{key}]: {b!r}, but {path_a} has {a!r}; the members must read the "
                             "same features on the same grid, made into network inputs the same way")
    streams_a, streams_b = (stream_layout(config) for config in (config_a, config_b))
    if streams_a != streams_b:
        raise InputError(f"{path_b} [data.streams]: {streams_b!r}, but {path_a} has {streams_a!r}; the members must "
                         "read the same input streams, on the same grids")
    for name in recipe_names(config_a):
        recipe_a, recipe_b = RunDir(path_a).stream_recipe_path(name), RunDir(path_b).stream_recipe_path(name)
        if recipe_a.is_file() and recipe_b.is_file():
            differences = recipe_differences(read_sidecar(recipe_b), read_sidecar(recipe_a), reference=str(path_a))
            if differences:
                raise InputError(f"{recipe_b}: {path_b} was trained on features made another way than {path_a}'s "
                                 f"({recipe_a}): {'; '.join(differences)}; averaged "
                                 "outputs read one input (--fusion detections gives each member its own)")
    model_a, model_b = to_dict(config_a)["model"], to_dict(config_b)["model"]
    for key in model_a:
        if model_a[key] != model_b[key]:
            raise InputError(f"{path_b} [model.{key}]: {model_b[key]!r}, but {path_a} has {model_a[key]!r}; the "
                             "members' outputs are averaged point by point, so their networks must have the same "
                             "layout (train them from one config with different seeds)")
    # one decode and one NMS of the averaged outputs, with one post-processing: the first member's was taken, the
    # others' settings (another NMS, top-k, minimum duration, threshold mode) dropped, as the order of the runs fell
    post_a, post_b = to_dict(config_a)["postprocess"], to_dict(config_b)["postprocess"]
    for key in post_a:
        if key not in UNSHARED_POSTPROCESS_KEYS and post_a[key] != post_b[key]:
            raise InputError(f"{path_b} [postprocess.{key}]: {post_b[key]!r}, but {path_a} has {post_a[key]!r}; "
                             "the averaged outputs are decoded and suppressed once, with one post-processing, which "
                             "the members must share (--fusion detections keeps each member's own)")


def stream_layout(config: Config) -> list[dict]:
    """A config's input streams as the network reads them: everything but the folders they lie in."""
    return [{key: value for key, value in stream.items() if key != "features"}
            for stream in to_dict(config)["data"]["streams"]] + [{"grid_stream": config.data.main_stream().name}]


def recipe_names(config: Config) -> list[str | None]:
    """The recipes a run of `config` records: None for the grid stream's, the other streams' by name."""
    return [None, *(stream.name for stream in config.data.input_streams()[1:])]


def averaging_refused(run_dirs: list[str | Path]) -> str | None:
    """Why the members' outputs cannot be averaged point by point (`check_compatible`'s message), or None
    when they can. Runs that cannot be read at all are left to the ensemble that reads them to report."""
    try:
        members = [(Path(path), RunDir(path).read_config(), RunDir(path).read_classes()) for path in run_dirs]
    except InputError:
        return None
    # a member's damaged classifier is an error of that member, named by its own file, not a reason to fuse
    # detections (whose copy of the member would then be blamed)
    for path, config, _ in members:
        if config.postprocess.second_opinion > 0:
            run_classifier(RunDir(path), config)
    try:
        for member in members[1:]:
            check_compatible(members[0], member)
        shared_second_opinion([(path, config) for path, config, _ in members])
    except InputError as exc:
        return str(exc)
    return None


def make_ensemble(run_dirs: list[str | Path], out: str | Path, log=print) -> EnsembleResult:
    """Write the ensemble of `run_dirs` into the new run directory `out` and tune its threshold on val."""
    paths = member_paths(run_dirs)
    out = path_argument(out, "make_ensemble: out")
    callable_argument(log, "make_ensemble: log")
    refuse_a_run_path_not_utf8(out)
    checked_members(paths)  # first: what a member is (an ensemble, end to end, ...) before where its data lies
    data = RunDir(paths[0]).read_config().data if paths else None
    if data is not None:  # before anything is written: a member trained on a video the ensemble would tune on
        if data.val_split and data.annotations:  # tuned on val: data moved since training is refused now, as the
            # fused ensemble refuses it, not after the ensemble's config and weights were written (by data check's
            # words, with a --set that mgrec ensemble does not take)
            remedy = "make the ensemble from the folder its members were trained in"
            run_data_path(paths[0], "data.annotations", data.annotations, remedy)
            if not data.streams:
                run_data_path(paths[0], "data.features", data.features, remedy, folder=True)
        refuse_members_trained_on(paths, data.val_split, val_videos_at_hand(data))
    out_run = new_ensemble_dir(out, paths)
    loaded = [(path, *load_run_network(RunDir(path), "best")) for path in paths]
    for path, config, classes, _ in loaded[1:]:
        check_compatible((paths[0], loaded[0][1], loaded[0][2]), (path, config, classes))
    second_opinion = shared_second_opinion([(path, config) for path, config, *_ in loaded])
    _, config, classes, _ = loaded[0]
    config = dataclasses.replace(config, name=f"ensemble of {len(paths)}: {config.name}")
    ensemble = EnsembleDetector([model for *_, model in loaded]).eval()
    # `detect` extracts features from raw video the members' way; read (and checked) before anything is written
    recipes = {name: read_run_recipe(RunDir(paths[0]), name) for name in recipe_names(config)}

    with out_run.lock():
        refuse_a_written_ensemble_dir(out_run)
        # each member's own config: the ensemble's is the first member's, and `mgrec compare` groups ensembles by
        # what their members were (one of lr 1e-3 and lr 5e-4 was grouped and named as one of two lr 1e-3 runs)
        out_run.write_format({"members": len(paths), "sources": [str(p) for p in paths],
                              "pseudo_labelled": pseudo_labelled_members([(p, c) for p, c, *_ in loaded]),
                              "member_configs": [to_dict(c) for _, c, *_ in loaded]})
        out_run.write_config(config)
        out_run.write_classes(classes)
        records = [RunDir(path).read_splits() for path in paths]
        if None not in records:  # every video a member trained on, which the ensemble's scores must leave out
            out_run.write_splits(join_split_records(records))
        else:  # an ensemble of them records none either: said, not skipped without a word
            missing = [RunDir(path).no_splits_record() for path, record in zip(paths, records) if record is None]
            log(f"note: {missing[0]}{f' (and {len(missing) - 1} more members)' if len(missing) > 1 else ''}: the "
                "ensemble records no splits.json either, so evaluate cannot check its scored videos against those "
                "its members trained on")
        for name, recipe in recipes.items():
            if recipe is not None:
                out_run.write_recipe(recipe, stream=name)
        out_run.write_weights("best", ensemble, None, {"ensemble_of": [str(p) for p in paths]})
        if second_opinion is not None:
            out_run.write_second_opinion(second_opinion.classifier)
        val_metrics = tune_on_val(ensemble, config, classes, out_run, log, second_opinion)
    return EnsembleResult(out_run.path, [str(p) for p in paths], val_metrics)


def shared_second_opinion(members: list[tuple[Path, Config]]) -> SecondOpinion | None:
    """The members' second opinion (`postprocess.second_opinion`), which an ensemble averaging their outputs
    applies once: the same weight and the same classifier in every member (runs trained on the same data
    fit the same one), else refused by name."""
    (first_path, first), *others = members
    weight = first.postprocess.second_opinion
    classifier = run_classifier(RunDir(first_path), first) if weight > 0 else None
    for path, config in others:
        if config.postprocess.second_opinion != weight:
            raise InputError(f"{path} [postprocess.second_opinion]: {config.postprocess.second_opinion:g}, but "
                             f"{first_path} has {weight:g}; the members must rescore their detections alike")
        if classifier is not None:
            own = run_classifier(RunDir(path), config)
            # the same data fits the same classifier up to float rounding (LBFGS's sums vary with the thread count)
            if not all(torch.allclose(a, b, rtol=1e-6, atol=1e-8)
                       for a, b in zip(classifier.state_dict().values(), own.state_dict().values())):
                raise InputError(f"{RunDir(path).second_opinion_path}: another classifier than {first_path}'s (fitted "
                                 "on other train data?); the members of an ensemble must share it")
    return None if classifier is None else SecondOpinion(classifier, weight)


def tune_on_val(ensemble: EnsembleDetector, config: Config, classes: list[str], out: RunDir, log,
                second_opinion: SecondOpinion | None = None) -> dict | None:
    """The ensemble's score threshold (and per-class ones, as the members' `postprocess.thresholds` asks), tuned
    on the val split of the members' data (as training does), on
    detections rescored by the members' `second_opinion`, if they have one."""
    if not config.data.annotations:
        log("the members' config names no annotations: keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    if not config.data.val_split:  # trained without validation: nothing to tune on (and no split '' to warn of)
        log("the members have no val split (data.val_split is empty): keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    # the members trained already: a warm-up warning here told to edit OUT/config.yaml, a file nothing trains from,
    # after `train --seeds N` had said it for each seed
    annotations, excluded = checked_annotations(config, log=log, source=str(out.config_path), training=False)
    val = load_split(config, annotations, config.data.val_split, excluded)
    if not val.samples:
        log(f"no videos in the val split {config.data.val_split!r}: keeping the configured score threshold")
        return out.write_ensemble_tuning(config, None, None)
    result, _ = validate(ensemble, val, config, classes, second_opinion)
    return out.write_ensemble_tuning(config, result, config.data.val_split)


def train_seeds(config_path: str | Path, overrides: list[str], out: Path, count: int, resume: bool = False,
                log=print, progress: bool = True) -> list[Path]:
    """`mgrec train --seeds N`: the config (with its `--set` overrides) trained with seeds seed, seed+1, ... into
    OUT-seed<S>, one after the other; returns the member runs, for `make_ensemble` or `make_fused_ensemble` to
    make OUT of. `out` is absolute: "." names no folder to name the members after, and a link is not followed.

    What the ensemble would refuse after the trainings (hours of them) is refused before the first: end-to-end
    runs, an OUT holding a run or inside training's inputs, a seed past `MAX_SEED`, and every member's folder
    (holding another run, or with `resume` a run of another config; a folder training reads, as `train` refuses
    its own: `refuse_before_training`)."""
    config = load_config(config_path, overrides)
    if config.end_to_end:
        raise InputError("--seeds with data.videos (end to end): ensembles take runs trained on feature files; "
                         "train the seeds one by one, or on features (`mgrec extract --run` makes a run's features)")
    seeds = range(config.seed, config.seed + count)
    if seeds[-1] > MAX_SEED:
        raise InputError(f"--seeds {count} from seed {config.seed} would train seed {seeds[-1]}, past the "
                         f"largest seed {MAX_SEED}; lower seed or --seeds")
    members = {seed: out.with_name(f"{out.name}-seed{seed}") for seed in seeds}
    refuse_a_taken_ensemble_out(out, list(members.values()), resume)
    refuse_a_run_path_not_utf8(out)
    refuse_a_folder_training_reads(out, config)
    new_ensemble_dir(out, list(members.values()))
    seeded = {seed: load_config(config_path, [*overrides, f"seed={seed}"]) for seed in seeds}
    if resume and not any(RunDir(member).can_resume() for member in members.values()):
        # `train --resume` of one run refuses a folder with nothing to resume; the seeds (a misspelt --out) all
        # started from scratch without a word, hours of training where an earlier one was meant to go on
        first = RunDir(members[seeds[0]])
        raise InputError(f"--resume: none of the {counted(count, 'seed run')} of this command has an epoch to resume "
                         f"(no {first.state_path.relative_to(first.path)} in {first.path}"
                         f"{' nor the others' if count > 1 else ''}): check --out and --set seed, or start without "
                         "--resume")
    for seed, member in members.items():  # every member's folder before the first trains, not after the others did
        # what `train` refuses of its run folder before it trains, asked of each member here: OUT-seed<S> that is
        # the features folder (or the videos', a stream's, the unlabelled pool's) was found after the earlier
        # members had trained
        refuse_before_training(seeded[seed], member)
        # a member's name taken by a file (or a folder this user cannot write) failed when that member's training
        # began, after the earlier ones had trained
        check_writable(member, is_dir=True)
        if resume and RunDir(member).can_resume():
            check_same_config(RunDir(member), seeded[seed])
        else:
            RunDir(member).check_fresh_start([Path(config_path), Path(seeded[seed].data.annotations)])
    results = []
    log = said_once(log)  # the seeds' trainings check one config and data: each warning once, not per seed
    for seed, member in members.items():
        fresh = resume and not RunDir(member).can_resume()
        from_start = " (from its start: it kept no epoch to resume)" if fresh else ""
        log(f"seed {seed}: training into {member}{from_start}")
        result = train(seeded[seed], member, resume=resume and RunDir(member).can_resume(), log=log,
                       progress=progress, inputs=[Path(config_path)])
        log(result.summary(next_steps=False))
        results.append(result)
    if process_rank()[0] == 0:  # under torchrun the other processes hold no val scores (rank 0 validates)
        log(seed_spread(results))
    return list(members.values())


def refuse_a_taken_ensemble_out(out: Path, members: list[Path], resume: bool) -> None:
    """`train --seeds N --out OUT` where OUT already holds a run or other files. Where some of the seeds' runs
    (OUT-seed<S>) are trained already, OUT is most often their ensemble, made or left half-written (killed, or
    failed, after the seeds had trained): "choose another --out" would have trained every seed again under the
    new name, hours of it, so the refusal says how to keep them."""
    if RunDir(out).format_path.exists():
        held = "already holds a run"
    elif out.is_dir() and any(out.iterdir()):
        held = "exists and is not empty"
    else:
        return
    trained = [member for member in members if RunDir(member).format_path.exists()]
    if not trained:  # nothing of this command's yet: another --out costs nothing
        if RunDir(out).format_path.exists():
            raise InputError(f"{out} already holds a run; choose another --out for the ensemble")
        return  # `new_ensemble_dir` refuses a folder that is not empty
    ensemble = None
    with contextlib.suppress(InputError, OSError):
        ensemble = RunDir(out).read_ensemble()
    sources = [str(Path(source)) for source in (ensemble or {}).get("sources", [])]
    if sources == [str(member) for member in members] and RunDir(out).postprocess_path.exists():
        what = f"{out} already holds the ensemble of this command's {counted(len(members), 'seed')}: it has finished"
    else:
        what = (f"{out} {held} (an ensemble killed or failed while it was written?), and "
                f"{part_of(len(trained), len(members), 'seed run')} of this command "
                f"{'is' if len(trained) == 1 else 'are'} there beside it ({trained[0].name}"
                f"{', ...' if len(trained) > 1 else ''})")
    again = "the same command with --resume" if not resume else "the same command"
    runs = " ".join(shell_word(member) for member in members)
    raise InputError(f"{what}; another --out would train every seed again under its own name. To keep the seeds' "
                     f"runs, remove {out} and give {again} (it continues the seeds that are not finished and makes "
                     f"their ensemble anew), or make the ensemble elsewhere: mgrec ensemble {runs} --out OTHER")


def seed_spread(results: list[TrainResult]) -> str:
    """The members' selected val scores as mean ± std over the seeds (what one training of the config gives,
    and how much it varies), for the line before the ensemble's."""
    scored = [r for r in results if "f1" in r.best_metrics]  # without a val split: the threshold alone
    if not scored:
        return f"{len(results)} seeds: no val split, so no val scores to compare"
    parts = []
    for key, name in (("f1", "F1"), ("f1_miga", "F1 (MiGA rule)"), ("average_mAP", "average mAP")):
        values = 100 * np.array([r.best_metrics[key] for r in scored])
        parts.append(f"{name} {values.mean():.2f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.2f}")
    return f"{len(scored)} seeds, {scored[0].tuned_on} (mean ± std over seeds): " + ", ".join(parts)
