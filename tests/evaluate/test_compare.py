"""`mgrec compare`: runs grouped by config (seed left out), mean ± sample std of each group's scores."""

import json
import re
import shutil
import statistics
from dataclasses import replace

import pytest

from mgrec.cli import main
from mgrec.config import Config, DataConfig, TrainConfig, save_config, to_dict
from mgrec.errors import InputError
from mgrec.evaluate.compare import compare_runs, format_comparison
from mgrec.evaluate.scoring import score
from mgrec.records import Detection, Segment
from mgrec.run import RunDir

CLASSES = ["rare", "common"]
TRUTH = {"v1": [Segment("v1", 0.0, 2.0, 0, "rare"), Segment("v1", 5.0, 7.0, 1, "common"),
                Segment("v1", 10.0, 12.0, 1, "common")],
         "v2": [Segment("v2", 1.0, 3.0, 1, "common")]}


def fake_run(root, name, seed, lr, found, truth=TRUTH):
    """A run directory holding what compare reads: config.yaml, classes.json and eval_test.json (`score` of `found`,
    the indices of the segments of TRUTH it detects, in order of the videos)."""
    run = root / name
    run.mkdir()
    config = Config(name=name, seed=seed, data=DataConfig(annotations="a.json"), train=TrainConfig(lr=lr))
    save_config(replace(config, model=replace(config.model, num_classes=2)), run / "config.yaml")
    (run / "classes.json").write_text(json.dumps(CLASSES))
    segments = [s for video in truth.values() for s in video]
    detections: dict[str, list[Detection]] = {video: [] for video in truth}
    for index in found:
        s = segments[index]
        detections[s.video_id].append(Detection(s.video_id, s.start, s.end, s.label_id, s.label, 0.9))
    first = next(iter(truth))
    detections[first].append(Detection(first, 20.0, 21.0, 0, "rare", 0.8))  # one false positive in every run
    scores = score(truth, detections, CLASSES, 0.5, split="test")
    (run / "eval_test.json").write_text(json.dumps(scores))
    return run, scores


def test_runs_are_grouped_by_config_and_each_group_gets_its_mean_and_sample_std(tmp_path):
    a1, sa1 = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1, 2, 3])
    a2, sa2 = fake_run(tmp_path, "a-seed2", 2, 1e-3, [1, 2])
    b1, sb1 = fake_run(tmp_path, "b-seed1", 1, 3e-4, [1, 2, 3])
    b2, sb2 = fake_run(tmp_path, "b-seed2", 2, 3e-4, [0, 3])
    b3, sb3 = fake_run(tmp_path, "b-seed3", 3, 3e-4, [0, 1, 2, 3])
    comparison = compare_runs([a1, b1, a2, b2, b3])
    assert [row.name for row in comparison.rows] == ["train.lr=0.001", "train.lr=0.0003"]  # name, seed left out
    first, second = comparison.rows
    assert first.runs == [a1, a2] and first.seeds == [1, 2] and second.runs == [b1, b2, b3]
    for row, runs in ((first, [sa1, sa2]), (second, [sb1, sb2, sb3])):
        for key in ("f1", "f1_miga", "average_mAP"):
            values = [s[key] for s in runs]
            assert row.measures[key].mean == pytest.approx(statistics.fmean(values))
            assert row.measures[key].std == pytest.approx(statistics.stdev(values))
        assert row.per_class_f1["rare"].mean == pytest.approx(statistics.fmean(s["per_class"]["rare"]["f1"]
                                                                               for s in runs))
    assert first.measures["f1"].mean > 0 and set(first.measures) >= {"mAP@0.5", "mAP@0.7"}
    assert comparison.instances == {"rare": 1, "common": 3} and comparison.num_videos == 2

    table = format_comparison(comparison)
    assert "2 group(s) of runs scored on test (2 videos, 4 segments)" in table
    assert f"train.lr=0.001   2     {100 * first.measures['f1'].mean:.2f} ± {100 * first.measures['f1'].std:.2f}" \
        in table
    assert table.index("rare (1)") < table.index("common (3)")  # rarest first


def test_ensembles_of_as_many_runs_of_one_config_are_one_group_apart_from_their_members(tmp_path):
    runs = [fake_run(tmp_path, f"a-seed{seed}", seed, 1e-3, found)[0] for seed, found in ((1, [0, 1]), (2, [0, 2]))]
    ensembles = []
    for name, seed, found in (("e1", 1, [0, 1, 2]), ("e2", 4, [0, 1, 2, 3])):
        run, _ = fake_run(tmp_path, name, seed, 1e-3, found)
        (run / "run.json").write_text(json.dumps({"format": 14, "ensemble": {"members": 2, "sources": []}}))
        ensembles.append(run)
    rows = compare_runs([*runs, *ensembles]).rows
    assert [(row.name, row.runs) for row in rows] == [("ensemble=no", runs), ("ensemble=2 runs", ensembles)]


def test_ensembles_are_grouped_and_named_by_their_members_configs_not_the_first_members(tmp_path, capsys):
    # an ensemble's config.yaml is its first member's: one of an lr 1e-3 and an lr 3e-4 run was grouped with one of
    # two lr 1e-3 runs, and both named as lr 1e-3 ensembles, their mean taken over the two
    from mgrec.config import load_config, to_dict

    def ensemble(name, seed, lrs):
        run, _ = fake_run(tmp_path, name, seed, lrs[0], [0, 1, 2])
        configs = []
        for i, lr in enumerate(lrs):  # as mgrec ensemble records them: each member's config as read from its run
            config = Config(name=f"m{i}", seed=seed + i, data=DataConfig(annotations="a.json"),
                            train=TrainConfig(lr=lr))
            save_config(replace(config, model=replace(config.model, num_classes=2)), tmp_path / "member.yaml")
            configs.append(to_dict(load_config(tmp_path / "member.yaml")))
        (run / "run.json").write_text(json.dumps({"format": 16, "ensemble": {
            "members": len(lrs), "sources": [], "member_configs": configs}}))
        return run

    mixed = ensemble("mixed", 1, [1e-3, 3e-4])
    alike = ensemble("alike", 2, [1e-3, 1e-3])
    swapped = ensemble("swapped", 3, [3e-4, 1e-3])  # the same members in another order: the same group
    rows = compare_runs([mixed, alike, swapped]).rows
    assert [(row.name, row.runs) for row in rows] == [("train.lr=[0.0003, 0.001]", [mixed, swapped]),
                                                      ("train.lr=0.001", [alike])]
    assert main(["compare", str(mixed), str(alike)]) == 0
    assert "train.lr=[0.0003, 0.001]  1" in capsys.readouterr().out
    # the same members' detections fused (each member a run in members/<m>): another method, another group
    fused, _ = fake_run(tmp_path, "fused", 4, 1e-3, [0, 1, 2])
    (fused / "members").mkdir()
    for index, lr in enumerate([1e-3, 3e-4]):
        fake_run(fused / "members", str(index), 10 + index, lr, [0])
    (fused / "run.json").write_text(json.dumps({"format": 16, "ensemble": {"members": 2, "fusion": "detections",
                                                                          "sources": ["a", "b"]}}))
    rows = compare_runs([mixed, fused]).rows
    assert [(row.name, row.runs) for row in rows] == [("ensemble=2 runs", [mixed]),
                                                      ("ensemble=2 runs, detections fused", [fused])]
    # names holding ", " are each quoted in the notes: three of them ran together into one list
    plain, _ = fake_run(tmp_path, "plain", 5, 1e-3, [0, 1])
    assert main(["compare", str(mixed), str(plain)]) == 0
    assert ("note: 2 group(s) of one run ('ensemble=2 runs, train.lr=[0.0003, 0.001]', 'ensemble=no, "
            "train.lr=0.001'): one training is one draw") in capsys.readouterr().out
    # a record that is not one config per member is refused by its key
    (mixed / "run.json").write_text(json.dumps({"format": 16, "ensemble": {"members": 2, "member_configs": [{}]}}))
    with pytest.raises(InputError, match=r"run.json \[ensemble.member_configs\]: 1 config\(s\), but "
                                         r"\[ensemble.members\] is 2: expected one per member"):
        compare_runs([mixed, alike])
    (mixed / "run.json").write_text(json.dumps({"format": 16, "ensemble": {"members": 2, "member_configs": "x"}}))
    with pytest.raises(InputError, match=r"run.json \[ensemble.member_configs\]: expected a list of configs, one "
                                         r"per member"):
        compare_runs([mixed, alike])


def test_ensembles_whose_first_members_share_a_seed_are_two_draws_and_a_copied_one_is_said_so(tmp_path, capsys):
    # an ensemble's config.yaml (its seed) is its first member's: two ensembles of other runs whose first members
    # shared a seed were noted as one run copied, its seed counting more than once
    def ensemble(name, seeds, fusion=None):
        run, _ = fake_run(tmp_path, name, seeds[0], 1e-3, [0, 1, 2])
        members = []
        for seed in seeds:  # as mgrec ensemble records them, each member's seed in its config
            config = Config(name=f"m{seed}", seed=seed, data=DataConfig(annotations="a.json"),
                            train=TrainConfig(lr=1e-3))
            members.append(json.loads(json.dumps(to_dict(replace(config, model=replace(config.model, num_classes=2))))))
        block = {"members": len(seeds), "sources": [f"runs/a-seed{seed}" for seed in seeds], "member_configs": members}
        (run / "run.json").write_text(json.dumps({"format": 16, "ensemble": block}))
        return run

    first, other = ensemble("e12", [1, 2]), ensemble("e13", [1, 3])
    assert main(["compare", str(first), str(other)]) == 0
    assert "more than once" not in capsys.readouterr().out
    row, = compare_runs([first, other]).rows
    assert row.seeds == [1, 1] and [draw.words for draw in row.draws] == ["members of seeds 1, 2",
                                                                          "members of seeds 1, 3"]
    # one ensemble copied under another name (its members the same runs, in any order) still counts twice, said so
    copy = tmp_path / "e12-copy"
    shutil.copytree(first, copy)
    swapped = ensemble("e21", [2, 1])
    assert main(["compare", str(first), str(other), str(copy), str(swapped), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["draws"] == [
        "members of seeds 1, 2", "members of seeds 1, 3", "members of seeds 1, 2", "members of seeds 2, 1"]
    assert main(["compare", str(first), str(other), str(copy)]) == 0
    assert ("note: (one config): ensembles of members of seeds 1, 2 count more than once (one ensemble copied, or "
            "made twice of the same runs?)") in capsys.readouterr().out
    # ensembles made before their members' configs were recorded: told apart by the runs they were made of
    for run in (first, other, copy):
        block = json.loads((run / "run.json").read_text())["ensemble"]
        (run / "run.json").write_text(json.dumps({"format": 15, "ensemble": {
            "members": 2, "sources": block["sources"]}}))
    assert main(["compare", str(first), str(other)]) == 0
    assert "more than once" not in capsys.readouterr().out
    assert main(["compare", str(first), str(other), str(copy)]) == 0
    assert ("note: (one config): ensembles of members 'runs/a-seed1', 'runs/a-seed2' count more than once"
            in capsys.readouterr().out)
    # detection-level ensembles: by their members' own configs (members/<m>)
    fused = []
    for name, seeds in (("f12", [1, 2]), ("f13", [1, 3])):
        run, _ = fake_run(tmp_path, name, seeds[0], 1e-3, [0, 1, 2])
        (run / "members").mkdir()
        for index, seed in enumerate(seeds):
            fake_run(run / "members", str(index), seed, 1e-3, [0])
        (run / "run.json").write_text(json.dumps({"format": 16, "ensemble": {
            "members": 2, "fusion": "detections", "sources": ["a", "b"]}}))
        fused.append(run)
    assert main(["compare", *map(str, fused)]) == 0
    assert "more than once" not in capsys.readouterr().out
    shutil.copytree(fused[0], tmp_path / "f12-copy")
    assert main(["compare", *map(str, fused), str(tmp_path / "f12-copy")]) == 0
    assert "ensembles of members of seeds 1, 2 count more than once" in capsys.readouterr().out


def test_a_group_whose_runs_were_evaluated_differently_is_said_so(tmp_path, capsys):
    runs = [fake_run(tmp_path, f"a-seed{seed}", seed, 1e-3, found)[0] for seed, found in ((1, [0, 1]), (2, [0, 2]))]
    scores = json.loads((runs[1] / "eval_test.json").read_text())
    scores.update({"inference_precision": "bf16", "threshold_tuned_on": "val"})
    (runs[1] / "eval_test.json").write_text(json.dumps(scores))
    (row,) = compare_runs(runs).rows
    assert row.mixed == {"inference_precision": [None, "bf16"], "threshold_tuned_on": [None, "val"]}
    assert main(["compare", *map(str, runs)]) == 0
    assert ("note: (one config): its runs were evaluated differently (inference_precision None / bf16; "
            "threshold_tuned_on None / val)") in capsys.readouterr().out


def test_groups_evaluated_differently_from_each_other_are_said_so(tmp_path, capsys):
    # one run's threshold tuned on val (training), the other's re-tuned on train (`evaluate --tune-on train`): the
    # table named the rows by their learning rates alone, the F1 difference taken for theirs, without a word
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    b1, _ = fake_run(tmp_path, "b-seed1", 1, 3e-4, [0, 1, 2])
    b2, _ = fake_run(tmp_path, "b-seed2", 2, 3e-4, [0, 1])
    for run, tuned_on in ((a1, "val"), (b1, "train"), (b2, "train")):
        scores = json.loads((run / "eval_test.json").read_text())
        (run / "eval_test.json").write_text(json.dumps({**scores, "threshold_tuned_on": tuned_on}))
    comparison = compare_runs([a1, b1, b2])
    assert comparison.evaluated_apart() == {"threshold_tuned_on": {"train.lr=0.001": ["val"],
                                                                   "train.lr=0.0003": ["train"]}}
    assert [row.mixed for row in comparison.rows] == [{}, {}]  # each group alike within
    assert main(["compare", str(a1), str(b1), str(b2)]) == 0
    assert ("note: the groups were evaluated differently (threshold_tuned_on: val ('train.lr=0.001'), train "
            "('train.lr=0.0003')): a difference between them may be the evaluation's, not the config's") \
        in capsys.readouterr().out
    assert main(["compare", str(a1), str(b1), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["evaluated_apart"] == {"threshold_tuned_on": {"train.lr=0.001": ["val"],
                                                                  "train.lr=0.0003": ["train"]}}
    # evaluated alike: no note
    scores = json.loads((a1 / "eval_test.json").read_text())
    (a1 / "eval_test.json").write_text(json.dumps({**scores, "threshold_tuned_on": "train"}))
    assert compare_runs([a1, b1, b2]).evaluated_apart() == {}
    assert main(["compare", str(a1), str(b1), str(b2)]) == 0
    assert "evaluated differently" not in capsys.readouterr().out


def test_one_run_and_one_copied_run_are_said_so(tmp_path, capsys):
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    b1, _ = fake_run(tmp_path, "b-seed1", 1, 3e-4, [0, 1, 2])
    b1_copy, _ = fake_run(tmp_path, "b-copy", 1, 3e-4, [0, 1, 2])
    assert main(["compare", str(a1), str(b1), str(b1_copy)]) == 0
    printed = capsys.readouterr().out
    assert "note: train.lr=0.0003: runs of seed 1 count more than once" in printed
    assert "note: 1 group(s) of one run ('train.lr=0.001'): one training is one draw, and its spread is not known" \
        in printed
    assert main(["compare", str(a1), str(b1), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in document["rows"]] == ["train.lr=0.001", "train.lr=0.0003"]
    assert document["rows"][0]["measures"]["f1"]["std"] is None


def test_runs_scored_on_other_videos_unevaluated_or_given_twice_are_refused(tmp_path, capsys):
    # (one video was said "1 videos")
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    fewer = {"v1": TRUTH["v1"]}
    other, _ = fake_run(tmp_path, "other", 2, 1e-3, [0], truth=fewer)
    with pytest.raises(InputError, match=r"were scored on different test sets \(1 video, 3 segments against 2 "
                                         r"videos, 4 segments\): means over different videos compare nothing"):
        compare_runs([a1, other])
    with pytest.raises(InputError, match=r"a-seed1: given twice"):
        compare_runs([a1, a1])
    # the same counts of videos and of each class's instances, other videos (ids of another annotations file): told
    # apart by the scored ground truth's digest, not by the counts
    renamed = {f"vid_{video}": [replace(s, video_id=f"vid_{video}") for s in segments]
               for video, segments in TRUTH.items()}
    renamed_run, renamed_scores = fake_run(tmp_path, "renamed", 3, 1e-3, [], truth=renamed)
    assert renamed_scores["ground_truth_sha256"] != json.loads((a1 / "eval_test.json").read_text())[
        "ground_truth_sha256"]
    with pytest.raises(InputError, match=r"renamed and .*a-seed1 were scored on different test sets \(this run and "
                                         r"that one: 2 videos, 4 ground-truth segments each, but other videos or "
                                         r"labels"):
        compare_runs([a1, renamed_run])
    scores = json.loads((a1 / "eval_test.json").read_text())
    (a1 / "eval_test.json").unlink()
    (a1 / "eval_val.json").write_text(json.dumps({**scores, "split": "val"}))  # scored on val alone
    assert main(["compare", str(a1)]) == 2
    assert f"run `mgrec evaluate {a1} --split test` first" in capsys.readouterr().err
    assert main(["compare", str(a1), "--split", "val"]) == 0


def test_one_run_given_by_two_paths_is_refused_as_given_twice(tmp_path, monkeypatch):
    """A run and a symbolic link to it (or its absolute path beside a relative one) were two runs of one seed: the
    same scores counted twice in the group's mean and its std shrunk, with only the note of a copied run."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    a2, _ = fake_run(tmp_path, "a-seed2", 2, 1e-3, [0, 1, 2, 3])
    link = tmp_path / "latest"
    link.symlink_to(a1, target_is_directory=True)
    with pytest.raises(InputError, match=rf"latest: given twice \(as {a1}: the same folder\); each run counts once"):
        compare_runs([a1, a2, link])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"given twice \(as a-seed1: the same folder\)"):
        compare_runs(["a-seed1", a1])
    assert len(compare_runs([a1, a2]).rows[0].runs) == 2


def test_runs_of_other_class_lists_on_as_many_segments_are_refused_naming_the_classes(tmp_path):
    """Two runs scored on sets of as many videos and segments but other classes (another class list, a class renamed;
    or one class's instances moved to another) were refused as scored on `(2 videos, 4 segments against 2 videos, 4
    segments)`: the same words twice, and no word of what differed."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    renamed, _ = fake_run(tmp_path, "renamed", 2, 1e-3, [0, 1])
    scores = json.loads((renamed / "eval_test.json").read_text())
    scores["per_class"] = {"Rubbing eyes": scores["per_class"]["rare"], "common": scores["per_class"]["common"]}
    scores["confusion"]["labels"] = ["Rubbing eyes", "common"]
    (renamed / "eval_test.json").write_text(json.dumps(scores))
    (renamed / "classes.json").write_text(json.dumps(scores["confusion"]["labels"]))  # a run of its own class list
    with pytest.raises(InputError, match=r"\(2 videos, 4 segments against 2 videos, 4 segments, but of other "
                                         r"classes: 'Rubbing eyes' against 'rare'\): means over different classes"):
        compare_runs([a1, renamed])
    moved, _ = fake_run(tmp_path, "moved", 3, 1e-3, [0, 1])
    scores = json.loads((moved / "eval_test.json").read_text())
    scores["per_class"]["rare"]["instances"], scores["per_class"]["common"]["instances"] = 2, 2
    (moved / "eval_test.json").write_text(json.dumps(scores))
    with pytest.raises(InputError, match=r"4 segments, but class 'rare' has 2 instances against 1\)"):
        compare_runs([a1, moved])


def test_runs_whose_map_has_other_tious_are_refused_naming_the_file(tmp_path):
    """An eval file whose mAP is at other tIoUs than another run's (edited, or written by another tool): in one group a
    raw `KeyError: '0.4'`; in another group its cells moved left under the first row's heads (mAP@0.5 printed as
    mAP@0.4), without a word."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    a2, _ = fake_run(tmp_path, "a-seed2", 2, 1e-3, [0, 1, 2])
    b1, _ = fake_run(tmp_path, "b-seed1", 1, 3e-4, [0, 1, 2])
    for run in (a2, b1):
        scores = json.loads((run / "eval_test.json").read_text())
        del scores["mAP"]["0.4"]
        (run / "eval_test.json").write_text(json.dumps(scores))
    for runs in ([a1, a2], [a1, b1]):
        with pytest.raises(InputError, match=rf"{runs[1]}/eval_test.json \[mAP\]: at tIoU 0.3, 0.5, 0.6, 0.7, but "
                                             rf"{a1}/eval_test.json at 0.3, 0.4, 0.5, 0.6, 0.7: average mAP"):
            compare_runs(runs)
    assert len(compare_runs([a2, b1]).rows) == 2


def test_counts_of_another_kind_in_an_eval_file_are_refused_naming_the_key(tmp_path, capsys):
    """An eval file whose counts were edited into another kind (`"num_videos": "2"`, an instance count `true`, the
    video count removed): beside a run of the same set, a raw `StopIteration` traceback (the two sets differed in
    nothing the message could name); alone, a table "scored on test (None videos, ...)"."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    edits = {"videos-text": ("num_videos", lambda s: s.update(num_videos="2")),
             "videos-gone": ("num_videos", lambda s: s.pop("num_videos")),
             "instances-true": ("per_class.rare", lambda s: s["per_class"]["rare"].update(instances=True)),
             "instances-negative": ("per_class.rare", lambda s: s["per_class"]["rare"].update(instances=-1))}
    for name, (key, edit) in edits.items():
        run, scores = fake_run(tmp_path, name, 2, 1e-3, [0, 2])
        edit(scores)
        (run / "eval_test.json").write_text(json.dumps(scores))
        expected = (rf"{run}/eval_test.json: missing key\(s\) num_videos" if name == "videos-gone"
                    else rf"{run}/eval_test.json \[{key}\]: expected (a count|.*instances \(a count\))")
        for runs in ([a1, run], [run]):
            assert main(["compare", *map(str, runs)]) == 2
            err = capsys.readouterr().err
            assert re.search(expected, err) and "Traceback" not in err, err


def test_the_per_class_table_keeps_each_cell_under_its_class_when_names_are_long(tmp_path):
    """A class name longer than a column (`Scratching or touching facial parts other than the eyes`, `Rubbing eyes`
    with its count) ran into the next head (`Rubbing eyes (1)common (3)`), and every head after it stood to the right
    of its cells."""
    long_names = ["Rubbing eyes and more", "Scratching or touching facial parts other than the eyes"]
    runs = []
    for seed in (1, 2):
        run, _ = fake_run(tmp_path, f"a-seed{seed}", seed, 1e-3, [0, 1, seed + 1])
        scores = json.loads((run / "eval_test.json").read_text())
        scores["per_class"] = dict(zip(long_names, scores["per_class"].values()))
        scores["confusion"]["labels"] = long_names
        (run / "eval_test.json").write_text(json.dumps(scores))
        (run / "classes.json").write_text(json.dumps(long_names))
        runs.append(run)
    comparison = compare_runs(runs)
    lines = format_comparison(comparison).splitlines()
    head = next(line for line in lines if long_names[0] in line)
    cells = lines[lines.index(head) + 1]
    for name in long_names:
        column = head.index(name)
        assert head[column - 2:column] == "  "  # two spaces before each head
        spread = comparison.rows[0].per_class_f1[name].percent()
        assert cells[column:column + len(spread)] == spread  # its cell under it


def test_names_of_how_a_run_was_evaluated_of_another_kind_are_refused_naming_the_key(tmp_path, capsys):
    """An eval file whose `threshold_tuned_on`, `checkpoint` or `inference_precision` was edited into a list or an
    object (another tool's file, a hand edit): `compare` grouping the runs' evaluations died with `TypeError:
    unhashable type: 'list'`."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    for key, value in (("threshold_tuned_on", ["val"]), ("checkpoint", {"best": True}), ("inference_precision", 32)):
        run, scores = fake_run(tmp_path, f"{key}-seed2", 2, 1e-3, [0, 2])
        scores[key] = value
        (run / "eval_test.json").write_text(json.dumps(scores))
        assert main(["compare", str(a1), str(run)]) == 2
        err = capsys.readouterr().err
        assert f"{run}/eval_test.json [{key}]: expected a name (a string) or null" in err and "Traceback" not in err


def test_seeds_of_one_config_whose_paths_are_spelt_otherwise_are_one_group(tmp_path, monkeypatch):
    """The same features folder given as `features/` and `features`, relative and absolute, or through a link: one
    config, its seeds one group (they were two groups of one run each, with no mean and no spread)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "features").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "features")
    runs = []
    for seed, features in enumerate(["features", str(tmp_path / "features") + "/", "./link", "other/./x/"], start=1):
        run, _ = fake_run(tmp_path, f"a-seed{seed}", seed, 1e-3, [0, seed % 4])
        config = RunDir(run).read_config()
        config.data.features = features
        save_config(config, run / "config.yaml")
        runs.append(run)
    comparison = compare_runs(runs)
    assert [len(row.runs) for row in comparison.rows] == [3, 1]  # a folder not found from here: as spelt, normalised
    assert comparison.rows[0].measures["f1"].std is not None
    assert comparison.rows[1].name == "data.features=other/x"


def test_a_run_evaluated_on_moved_data_is_grouped_and_named_by_the_data_its_evaluation_read(tmp_path, monkeypatch):
    """`mgrec evaluate RUN --set data.annotations=... --set data.features=...` (the run's data moved): its eval file
    records the data read ("data"), and compare groups and names it by that, not by config.yaml's old paths (it was
    a group of its own, "data.annotations=/old/a.json, data.features=/old/features"). An eval file without the record
    (written before it) is grouped by its config; a record not as mgrec writes it is refused by its key."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "features").mkdir()
    (tmp_path / "a.json").write_text("{}")
    here = {"annotations": str(tmp_path / "a.json"), "features": str(tmp_path / "features")}
    runs = []
    for seed, (paths, read) in enumerate([(("a.json", "features"), here), (("/old/a.json", "/old/features"), here),
                                          (("a.json", "features"), None), (("/old/a.json", "/old/features"), None)],
                                         start=1):
        run, scores = fake_run(tmp_path, f"seed{seed}", seed, 1e-3, [0, seed % 4])
        config = RunDir(run).read_config()
        config.data.annotations, config.data.features = paths
        save_config(config, run / "config.yaml")
        if read is not None:
            (run / "eval_test.json").write_text(json.dumps({**scores, "data": {
                **read, "set_for_this_call": ["data.annotations", "data.features"] if seed == 2 else []}}))
        runs.append(run)
    comparison = compare_runs(runs)
    assert [[run.name for run in row.runs] for row in comparison.rows] == [["seed1", "seed2", "seed3"], ["seed4"]]
    assert comparison.rows[1].name == "data.annotations=/old/a.json, data.features=/old/features"
    assert comparison.rows[0].name == f"data.annotations={tmp_path / 'a.json'}, data.features={tmp_path / 'features'}"
    for record, message in (([1], r"eval_test.json \[data\]: expected the data the evaluation read"),
                            ({"annotations": 5}, r"eval_test.json \[data.annotations\]: expected the path the "
                                                 r"evaluation read, got 5"),
                            ({**here, "features": ""}, r"\[data.features\]: expected the path the evaluation read "
                                                       r"\(or null\), got ''")):
        scores = json.loads((runs[0] / "eval_test.json").read_text())
        (runs[0] / "eval_test.json").write_text(json.dumps({**scores, "data": record}))
        with pytest.raises(InputError, match=message):
            compare_runs(runs)


@pytest.mark.parametrize(("run_dirs", "message"), [
    ([5], r"^run_dirs\[0\]: expected a path \(str or pathlib.Path\), got 5$"),
    (["runs/a", None], r"^run_dirs\[1\]: expected a path \(str or pathlib.Path\), got None$"),
    ({"runs/a": 1}, r"^run_dirs: expected a list of run directories, got a dict$"),
    ("runs/a", r"^run_dirs: expected a list of run directories, got one path \(runs/a\)"),
])
def test_compare_runs_names_run_dirs_of_the_wrong_kind(run_dirs, message):
    # before: [5] pathlib's raw TypeError; a dict compared its keys without a word; one str read its characters as runs
    with pytest.raises(InputError, match=message):
        compare_runs(run_dirs)


def test_an_eval_file_copied_into_a_run_of_another_seed_is_refused_naming_both_files(tmp_path):
    """One run's eval_test.json copied into another seed's folder (`cp`, a sync): its scores were averaged as a second
    seed's, the std shrunk toward 0 (demo: F1 69.33 ± 0.00 over 2 runs), without a word. The digest of the detections
    `mgrec evaluate` records tells them apart: two trainings of other seeds never detect alike."""
    a1, _ = fake_run(tmp_path, "a-seed1", 1, 1e-3, [0, 1])
    a2, _ = fake_run(tmp_path, "a-seed2", 2, 1e-3, [0, 1, 2])
    scores = json.loads((a1 / "eval_test.json").read_text())
    scores["detections_sha256"] = "ab" * 32
    (a1 / "eval_test.json").write_text(json.dumps(scores))
    shutil.copy(a1 / "eval_test.json", a2 / "eval_test.json")
    with pytest.raises(InputError, match=rf"^{a2 / 'eval_test.json'} \[detections_sha256\]: the same detections as "
                                         rf"{a1 / 'eval_test.json'}, but this run is of seed 2 and that one of seed 1: "
                                         "runs of other seeds never detect alike"):
        compare_runs([a1, a2])
    # a run copied whole (its seed too) is still compared, and noted as counted twice
    shutil.copytree(a1, tmp_path / "copy")
    assert "runs of seed 1 count more than once" in format_comparison(compare_runs([a1, tmp_path / "copy"]))
    # runs of other seeds with their own detections are compared as before
    scores["detections_sha256"] = "cd" * 32
    (a2 / "eval_test.json").write_text(json.dumps(scores))
    assert len(compare_runs([a1, a2]).rows[0].runs) == 2
