"""Several runs' scores side by side, mean ± std over each group of seeds: `mgrec compare RUN... [--split test]`.

One training is one draw: the demo's three seeds of one config spread over 1-4 test F1 points, so a quality claim
rests on several seeds. Runs are grouped by their training config with the seed and the name left out (`train --seeds
N` makes one such group; ensembles of as many runs of one config are another), and each group is one row: how many
runs, and the mean and sample standard deviation over them of strict F1, F1 by the MiGA rule, average mAP, mAP at each
tIoU, and each class's F1. A row is named by what sets its config apart from the other rows'. Every run must have been
scored on the same split of the same videos (`mgrec evaluate RUN --split SPLIT` first): means over different test
sets compare nothing, and are refused.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from mgrec.config import to_dict
from mgrec.errors import InputError
from mgrec.files import brief, counted
from mgrec.run import RunDir, member_paths, same_scored_set, scored_sets_words
from mgrec.terminal import cell, columns

# How a run's evaluation was made, beyond its config (eval_<split>.json's keys): said where a group's runs differ.
EVALUATED_WITH = ("inference_precision", "threshold_tuned_on", "checkpoint")
# The headline measures of a row, as eval_<split>.json names them, and how the table heads them.
MEASURES = {"f1": "F1", "f1_miga": "F1 MiGA", "average_mAP": "avg mAP"}


@dataclass(frozen=True)
class Spread:
    """The mean of some runs' values and their sample standard deviation (None for one run)."""

    mean: float
    std: float | None

    @staticmethod
    def of(values: list[float]) -> Spread:
        return Spread(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None)

    def percent(self) -> str:
        return f"{100 * self.mean:.2f}" + (f" ± {100 * self.std:.2f}" if self.std is not None else "")

    def to_json(self) -> dict:
        return {"mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class Draw:
    """What makes one run of a group one draw of its config: two runs of one draw are one run counted twice (a copy).
    `key` compares them; `words` say it (`seed 1`; an ensemble's `members of seeds 1, 2`)."""

    key: str
    words: str
    ensemble: bool = False


@dataclass(frozen=True)
class GroupRow:
    """One group of runs (one config, its seeds) and its scores."""

    name: str  # what sets the group's config apart from the other groups' ("" for the only group)
    runs: list[Path]
    seeds: list[int | None]  # each run's config's seed (an ensemble's is its first member's)
    measures: dict[str, Spread]  # MEASURES' keys, and "mAP@<tIoU>" for each tIoU
    per_class_f1: dict[str, Spread]  # class name -> its F1 over the runs (classes without instances left out)
    evaluated: dict[str, list] = field(default_factory=dict)  # how its runs were evaluated: EVALUATED_WITH's key ->
    # the values met, in order (one where its runs were evaluated alike)
    draws: list[Draw] = field(default_factory=list)  # what each run is a draw of (`_draw`), in the order of `runs`

    def repeated_draws(self) -> list[str]:
        """The words of the draws met more than once among the group's runs (one run copied under two names)."""
        keys = [draw.key for draw in self.draws]
        return list(dict.fromkeys(draw.words for draw in self.draws if keys.count(draw.key) > 1))

    @property
    def mixed(self) -> dict[str, list]:
        """How the runs' evaluations differ, where they do: EVALUATED_WITH's key -> the values met, in order."""
        return {key: values for key, values in self.evaluated.items() if len(values) > 1}

    def to_json(self) -> dict:
        return {"name": self.name, "runs": [str(run) for run in self.runs], "seeds": self.seeds,
                "draws": [draw.words for draw in self.draws],
                "measures": {key: spread.to_json() for key, spread in self.measures.items()},
                "per_class_f1": {name: spread.to_json() for name, spread in self.per_class_f1.items()},
                "mixed": self.mixed, "evaluated": self.evaluated}


@dataclass(frozen=True)
class Comparison:
    """The rows of `compare_runs`, and the scored set they share."""

    split: str
    num_videos: int
    instances: dict[str, int]  # class name -> its instances in the scored split
    rows: list[GroupRow]

    def evaluated_apart(self) -> dict[str, dict[str, list]]:
        """How the groups' evaluations differ from one group to another, where they do: EVALUATED_WITH's key -> each
        row's name -> the values its runs met. Two rows whose thresholds were tuned on other splits (`evaluate
        --tune-on train` beside the training's val), or run at other precisions, differ by that as well as by their
        configs: the table named the row by its config alone, and the difference in F1 was the config's."""
        if len(self.rows) < 2:
            return {}
        return {key: {row.name: row.evaluated.get(key, []) for row in self.rows} for key in EVALUATED_WITH
                if len({repr(row.evaluated.get(key, [])) for row in self.rows}) > 1}

    def to_json(self) -> dict:
        return {"split": self.split, "num_videos": self.num_videos, "instances": self.instances,
                "rows": [row.to_json() for row in self.rows], "evaluated_apart": self.evaluated_apart()}


def compare_runs(run_dirs: list[str | Path], split: str = "test", checkpoint: str = "best") -> Comparison:
    """Group `run_dirs` by config (seed and name left out) and summarise each group's scores on `split` (the
    evaluation of `checkpoint`, `mgrec evaluate --checkpoint`), in the order the groups' first runs were given."""
    run_dirs = member_paths(run_dirs)
    if not run_dirs:
        raise InputError("compare needs at least one run directory")
    groups: dict[str, list[tuple[Path, int | None, dict, Draw]]] = {}
    configs: dict[str, dict] = {}
    scored_set: tuple[Path, int, dict[str, int]] | None = None
    first_tious: tuple[Path, list[str]] | None = None
    for given in run_dirs:
        run = RunDir(given)
        config = run.read_config()
        scores = run.read_eval(split, run.read_classes(), checkpoint)
        instances = {name: entry["instances"] for name, entry in scores["per_class"].items()}
        scored = (run.path, scores["num_videos"], instances)
        if scored_set is None:
            scored_set, first_scores = scored, scores
        elif scored[1:] == scored_set[1:] and not same_scored_set(scores, first_scores):
            # the same counts of videos and of each class's instances, but other ids or segments (their digests)
            raise InputError(f"{run.path} and {scored_set[0]} were scored on different {split} sets "
                             f"({scored_sets_words(scores, first_scores, ('this run', 'that one'))}): means over "
                             "different videos compare nothing; evaluate them on the same annotations")
        elif scored[1:] != scored_set[1:]:
            raise InputError(f"{run.path} and {scored_set[0]} were scored on different {split} sets "
                             f"({_set_difference(scored[1:], scored_set[1:])}): means over different "
                             f"{'videos' if _set_words(*scored[1:]) != _set_words(*scored_set[1:]) else 'classes'} "
                             "compare nothing; evaluate them on the same annotations, with the same class list")
        tious = list(scores["mAP"])
        if first_tious is None:
            first_tious = (run.eval_path(split, checkpoint), tious)
        elif tious != first_tious[1]:  # a row read the first run's tIoUs in every run (KeyError), the table its heads
            raise InputError(f"{run.eval_path(split, checkpoint)} [mAP]: at tIoU {', '.join(tious)}, but "
                             f"{first_tious[0]} at {', '.join(first_tious[1])}: average mAP over other tIoUs compares "
                             "nothing (the file edited, or not written by mgrec evaluate?); evaluate the runs again")
        ensemble = run.read_ensemble()
        members = None if ensemble is None else _member_configs(run, ensemble)
        key, flat = _group_key(config, ensemble, members, _data_read(scores, run.eval_path(split, checkpoint)))
        # the same folder by another path (a symbolic link to it, its absolute path beside a relative one, `a/../a`)
        # is the same run, counted twice in its group's mean as a run of a seed of its own
        same = next((path for path, *_ in groups.get(key, []) if _same_folder(path, run.path)), None)
        if same is not None:
            also = "" if same == run.path else f" (as {same}: the same folder)"
            raise InputError(f"{given}: given twice{also}; each run counts once in its group's mean")
        draw = _draw(config, ensemble, members)
        _refuse_scores_of_another_draw(run, split, checkpoint, scores, draw, groups.get(key, []))
        groups.setdefault(key, []).append((run.path, config.seed, scores, draw))
        configs[key] = flat
    names = _group_names(configs)
    rows = [_row(names[key], members) for key, members in groups.items()]
    assert scored_set is not None
    return Comparison(split, scored_set[1], scored_set[2], rows)


def _refuse_scores_of_another_draw(run: RunDir, split: str, checkpoint: str, scores: dict, draw: Draw,
                                  group: list[tuple[Path, int | None, dict, Draw]]) -> None:
    """Refuse a run whose evaluation records the very detections of another draw of its group (`detections_sha256`,
    which `mgrec evaluate` writes): two trainings of other seeds (or ensembles of other members) never detect alike,
    so one run's eval file was copied into the other's folder (`cp`, a sync). Averaged, one run's scores counted
    twice as two seeds, the std shrunk toward 0, without a word; a run copied whole (the same seed) is noted as
    such by `format_comparison`. Eval files that do not record the digest (older ones) are not compared."""
    digest = scores.get("detections_sha256")
    if not isinstance(digest, str):
        return
    for path, _seed, other, other_draw in group:
        if other.get("detections_sha256") == digest and other_draw.key != draw.key:
            raise InputError(f"{run.eval_path(split, checkpoint)} [detections_sha256]: the same detections as "
                             f"{RunDir(path).eval_path(split, checkpoint)}, but this run is of {draw.words} and "
                             f"that one of {other_draw.words}: runs of other seeds never detect alike (one run's eval "
                             "file copied into the other's folder?); `mgrec evaluate` each run again, so that each "
                             "holds its own scores")


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a == b or a.samefile(b)
    except OSError:
        return False


def _set_words(videos: object, instances: dict[str, int]) -> str:
    return f"{counted(videos, 'video')}, {counted(sum(instances.values()), 'segment')}"  # "1 video", not "1 videos"


def _set_difference(this: tuple[object, dict[str, int]], first: tuple[object, dict[str, int]]) -> str:
    """What sets two scored sets (video count, class name -> instances) apart, `this` against `first`: their counts,
    or where those are the same, their classes (other names: runs of other class lists) or a class's instances."""
    words = f"{_set_words(*this)} against {_set_words(*first)}"
    if _set_words(*this) != _set_words(*first):
        return words
    ours, theirs = this[1], first[1]
    if set(ours) != set(theirs):
        only = [name for name in ours if name not in theirs]
        other = [name for name in theirs if name not in ours]
        return (f"{words}, but of other classes: {', '.join(map(brief, only[:3]))}{', ...' * (len(only) > 3)} "
                f"against {', '.join(map(brief, other[:3]))}{', ...' * (len(other) > 3)}")
    name = next(name for name in ours if ours[name] != theirs[name])
    return f"{words}, but class {brief(name)} has {ours[name]} instances against {theirs[name]}"


# The config's keys that name a file or folder: compared by the file or folder they name, not by how it was spelt
PATH_KEYS = ("data.annotations", "data.features", "data.videos", "backbone.weights", "pseudo_labels.unlabeled",
             "pseudo_labels.teacher")


def _data_read(scores: dict, path: Path) -> dict[str, str]:
    """The data an evaluation read, where its eval file records it (`mgrec evaluate`'s "data": the annotations and
    the features folder, as `--set` gave them for that call or config.yaml named them): {config key: path}, {} for an
    eval file written before it was recorded (the run's config then says). A record not as mgrec writes it is refused
    by its key: taken for absent, the run would be grouped by paths its evaluation may not have read."""
    record = scores.get("data")
    if record is None:
        return {}
    if not isinstance(record, dict):
        raise InputError(f"{path} [data]: expected the data the evaluation read ({{\"annotations\": path, "
                         f"\"features\": path or null, ...}}), got {brief(record)}; evaluate the run again")
    read = {}
    for name, optional in (("annotations", False), ("features", True)):
        value = record.get(name)
        if value is None and optional:  # a run that reads its features elsewhere (streams, an ensemble's members)
            continue
        if not isinstance(value, str) or not value:
            raise InputError(f"{path} [data.{name}]: expected the path the evaluation read"
                             f"{' (or null)' if optional else ''}, got {brief(value)}; evaluate the run again")
        read[f"data.{name}"] = value
    return read


def _group_key(config, ensemble: dict | None, members: list[dict] | None,
               data_read: dict[str, str] | None = None) -> tuple[str, dict]:
    """The key runs of one group share (their config, less seed and name; for an ensemble, its members' config and
    how many they are: `ensemble` its run.json block, `members` its members' configs where known) and the flattened
    config its name is drawn from. Paths are compared by what they name
    (`_same_path_words`): seeds of one config whose features folder was given as `features/` and `features`, or
    relative and absolute, were two groups of one run each, their mean and spread never made. `data_read`: the data
    the evaluation read (`_data_read`), which stands for the config's: a run evaluated with `--set
    data.annotations=... --set data.features=...` (its data moved) was grouped apart from the runs that read the same
    files, and its row named by config.yaml's old paths."""
    flat = _flat_config(to_dict(config))
    # an ensemble is not one more seed of its members' config; ensembles of as many runs of one config are a group
    if members is not None:  # its config is its first member's: grouped and named by what its members were
        flat = _merged([_flat_config(member) for member in members])
    for key, value in (data_read or {}).items():
        flat[key] = _same_path_words(value)
    # and by how it fuses them: averaged outputs and fused detections of the same members are two methods
    flat["ensemble"] = ("no" if ensemble is None else f"{ensemble['members']} runs"
                        + (", detections fused" if ensemble.get("fusion") == "detections" else ""))
    return repr(sorted(flat.items())), flat


def _draw(config, ensemble: dict | None, members: list[dict] | None) -> Draw:
    """What a run is one draw of, among the runs of its group (`_group_key`'s arguments): a trained run, its seed;
    an ensemble, its members: each one's seed and config, as recorded (`members`); else the runs it was made of, by
    path; else, for one made before either was recorded, its first member's seed, said as such. An ensemble's
    config.yaml and seed are its first member's: two ensembles of other runs whose first members shared a seed were
    noted as one run counted twice."""
    if ensemble is None:
        return Draw(repr(("seed", config.seed)), f"seed {config.seed}")
    if members is not None:  # the same members in another order are the same ensemble (their outputs averaged)
        seeds = [member.get("seed") for member in members]
        key = sorted((repr(seed), repr(sorted(_flat_config(member).items()))) for seed, member in zip(seeds, members))
        return Draw(repr(("members", key)), f"members of seeds {', '.join(map(str, seeds))}", ensemble=True)
    sources = ensemble.get("sources")
    if isinstance(sources, list) and len(sources) == ensemble["members"] and all(isinstance(s, str) for s in sources):
        return Draw(repr(("sources", sorted(map(_same_path_words, sources)))),
                    f"members {', '.join(map(brief, sources))}", ensemble=True)
    return Draw(repr(("first seed", config.seed)), f"members of seeds {config.seed}, ... (the others not recorded)",
                ensemble=True)


def _flat_config(tree: dict) -> dict[str, object]:
    """A config as `_group_key` compares it: flattened, seed and name left out, paths by what they name; as JSON
    holds it, so that a config run.json records (lists) and one read from its YAML (tuples) are alike."""
    flat = _flattened(json.loads(json.dumps(tree)))
    for varying in ("seed", "name"):
        flat.pop(varying, None)
    for key in PATH_KEYS:
        if isinstance(flat.get(key), str):
            flat[key] = _same_path_words(flat[key])
    if isinstance(flat.get("data.streams"), list):
        flat["data.streams"] = [{**stream, "features": _same_path_words(stream["features"])}
                                if isinstance(stream, dict) and isinstance(stream.get("features"), str) else stream
                                for stream in flat["data.streams"]]
    return flat


def _member_configs(run: RunDir, ensemble: dict) -> list[dict] | None:
    """An ensemble's members' configs: each member's own of a detection-level ensemble (members/<m>), those
    run.json records of one that averages outputs; None for one made before they were recorded (its config, the
    first member's, then stands for all)."""
    if ensemble.get("fusion") == "detections":
        return [to_dict(RunDir(run.member_path(m)).read_config()) for m in range(ensemble["members"])]
    recorded = ensemble.get("member_configs")
    if recorded is not None and len(recorded) != ensemble["members"]:
        raise InputError(f"{run.format_path} [ensemble.member_configs]: {len(recorded)} config(s), but "
                         f"[ensemble.members] is {ensemble['members']}: expected one per member; make the ensemble "
                         "again")
    return recorded


def member_differences(run: RunDir) -> dict[str, list]:
    """Where an ensemble's members' configs differ (seed and name left out): key -> each member's value, in member
    order; {} for a run that is no ensemble, one whose members share a config, or one made before they were recorded.
    Its config.yaml is its first member's, and the report showed it as "the config the run was trained with"."""
    ensemble = run.read_ensemble()
    members = None if ensemble is None else _member_configs(run, ensemble)
    if not members:
        return {}
    flats = [_flat_config(member) for member in members]
    keys = sorted({key for flat in flats for key in flat})
    return {key: [flat.get(key) for flat in flats] for key in keys
            if len({repr(flat.get(key)) for flat in flats}) > 1}


def _merged(members: list[dict[str, object]]) -> dict[str, object]:
    """The members' flattened configs as one: a key's value where they agree, else the sorted list of theirs (an
    ensemble of lr 1e-3 and lr 5e-4 is `train.lr=[0.0005, 0.001]`, whatever the members' order)."""
    keys = sorted({key for member in members for key in member})
    merged: dict[str, object] = {}
    for key in keys:
        values = [member.get(key) for member in members]
        merged[key] = values[0] if all(repr(v) == repr(values[0]) for v in values) else sorted(values, key=repr)
    return merged


def _same_path_words(value: str) -> str:
    """A path of a config as one spelling of what it names: the real path where it is found from here (a link, a
    relative path, a `..` or a trailing `/` resolved), else its normal form (`a/./b/` as `a/b`); '' stays unset."""
    if not value:
        return value
    return os.path.realpath(value) if os.path.exists(value) else os.path.normpath(value)


def _flattened(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flattened(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _group_names(configs: dict[str, dict]) -> dict[str, str]:
    """Each group named by the config keys whose values are not the same in every group (`key=value, ...`)."""
    keys = sorted({key for flat in configs.values() for key in flat})
    differing = [key for key in keys if len({repr(flat.get(key)) for flat in configs.values()}) > 1]
    return {group: ", ".join(f"{key}={_value_words(flat.get(key))}" for key in differing)
            for group, flat in configs.items()}


def _value_words(value: object) -> str:
    return "unset" if value is None else str(value)


def _row(name: str, members: list[tuple[Path, int | None, dict, Draw]]) -> GroupRow:
    scores = [member[2] for member in members]
    measures = {key: Spread.of([s[key] for s in scores]) for key in MEASURES}
    for tiou in scores[0]["mAP"]:
        measures[f"mAP@{tiou}"] = Spread.of([s["mAP"][tiou] for s in scores])
    per_class = {class_name: Spread.of([s["per_class"][class_name]["f1"] for s in scores])
                 for class_name, entry in scores[0]["per_class"].items() if entry["instances"] > 0}
    # what the config does not hold but the evaluation chose: a group evaluated two ways is two draws of two things
    evaluated = {key: list(dict.fromkeys(s.get(key) for s in scores)) for key in EVALUATED_WITH}
    return GroupRow(name, [member[0] for member in members], [member[1] for member in members], measures, per_class,
                    evaluated, [member[3] for member in members])


def format_comparison(comparison: Comparison) -> str:
    """The comparison as text: a table of the headline measures, then one of each class's F1 (in %)."""
    rows = comparison.rows
    names = [row.name or "(one config)" for row in rows]
    width = max(len("group"), *map(columns, names))
    heads = list(MEASURES.values()) + [key for key in rows[0].measures if key not in MEASURES]
    keys = list(MEASURES) + [key for key in rows[0].measures if key not in MEASURES]
    column = max(16, *(len(h) for h in heads))
    scored = _set_words(comparison.num_videos, comparison.instances)
    lines = [f"{len(rows)} group(s) of runs scored on {comparison.split} ({scored}); mean ± sample std over each "
             "group's runs, in %",
             f"{'group':<{width}}  runs  " + "".join(f"{h:<{column}}" for h in heads).rstrip()]
    for name, row in zip(names, rows):
        cells = "".join(f"{row.measures[key].percent():<{column}}" for key in keys if key in row.measures)
        lines.append(f"{cell(name, width)}  {len(row.runs):<4}  {cells}".rstrip())
    classes = [name for name in comparison.instances if comparison.instances[name] > 0]
    rarest_first = sorted(classes, key=lambda name: comparison.instances[name])
    # each class's column as wide as its head and two spaces: a longer name ran into the next head, and every column
    # after it stood apart from its cells
    class_heads = {c: f"{c} ({comparison.instances[c]})" for c in rarest_first}
    widths = {c: max(column, columns(head) + 2) for c, head in class_heads.items()}
    lines += ["", "F1 per class, rarest in the scored split first (instances):",
              f"{'group':<{width}}  " + "".join(cell(class_heads[c], widths[c]) for c in rarest_first).rstrip()]
    for name, row in zip(names, rows):
        lines.append(f"{cell(name, width)}  " + "".join(f"{row.per_class_f1[c].percent():<{widths[c]}}"
                                                      for c in rarest_first).rstrip())
    for name, row in zip(names, rows):
        repeated = row.repeated_draws()
        if repeated and not row.draws[0].ensemble:
            seeds = ", ".join(words.removeprefix("seed ") for words in repeated)
            lines.append(f"note: {name}: runs of seed {seeds} count more than once (one run copied? the same seed "
                         "trains the same run on one machine, and another on another CPU)")
        elif repeated:  # an ensemble's draw is its members: the same members, one ensemble copied or made twice
            lines.append(f"note: {name}: ensembles of {'; '.join(repeated)} count more than once (one ensemble "
                         "copied, or made twice of the same runs?)")
    for name, row in zip(names, rows):
        if row.mixed:
            said = "; ".join(f"{key} {' / '.join(map(str, values))}" for key, values in row.mixed.items())
            lines.append(f"note: {name}: its runs were evaluated differently ({said}): `mgrec evaluate` them alike "
                         "for a mean of one thing")
    apart = comparison.evaluated_apart()
    if apart:
        # each row's name quoted: names hold ", " themselves (`ensemble=no, train.lr=0.001`)
        said = "; ".join(f"{key}: " + ", ".join(f"{' / '.join(map(str, values))} ('{name}')"
                                                for name, values in by_row.items())
                         for key, by_row in apart.items())
        lines.append(f"note: the groups were evaluated differently ({said}): a difference between them may be the "
                     "evaluation's, not the config's; `mgrec evaluate` them alike to compare the configs")
    single = [name for name, row in zip(names, rows) if len(row.runs) == 1]
    if single:
        # each name quoted: names hold ", " themselves (`ensemble=no, train.lr=0.001`), and three of them ran together
        quoted = ", ".join(f"'{name}'" for name in single[:3])
        lines.append(f"note: {len(single)} group(s) of one run ({quoted}{', ...' * (len(single) > 3)})"
                     ": one training is one draw, and its spread is not known")
    return "\n".join(lines)

