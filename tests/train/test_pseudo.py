import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import small_config

from mgrec.config import PostprocessConfig, PseudoLabelConfig, TrainConfig
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.offline import OfflineDetector
from mgrec.run import RunDir
from mgrec.train.loop import train


def config_for(paths, seed=3, epochs=2):
    return small_config(paths, seed=seed, max_seq_len=128,
                        train=TrainConfig(epochs=epochs, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                          eval_every=1, ema_decay=0.9),
                        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pseudo")
    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=5, feature_dim=16, length=160, seed=0,
                                   subsets=("train", "train", "val", "test"))
    teacher = root / "teacher"
    train(config_for(paths), teacher, progress=False, log=lambda *_: None)
    # the unlabelled pool: the test video's features (and sidecar), as in the transductive setting
    pool = root / "pool"
    pool.mkdir()
    for name in ("synthetic_003.npy", "synthetic_003.json"):
        shutil.copy(paths.features / name, pool / name)
    return paths, root, teacher, pool


def with_pseudo(config, **pseudo):
    return dataclasses.replace(config, pseudo_labels=PseudoLabelConfig(**pseudo))


def test_pseudo_labels_are_the_teacher_s_hard_set_and_never_its_ground_truth(setup, tmp_path):
    paths, _, teacher, pool = setup
    config = with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), teacher=str(teacher), transductive=True)
    train(config, tmp_path / "a", progress=False, log=lambda *_: None)
    record = json.loads(RunDir(tmp_path / "a").pseudo_labels_path.read_text())
    hard = OfflineDetector.from_run(teacher, device="cpu", precision="fp32")
    expected = hard.hard_set(hard.detect(pool / "synthetic_003.npy"))
    assert [(d["label"], d["start"], d["end"]) for d in record["videos"]["synthetic_003"]] == \
        [(d.label, d.start, d.end) for d in expected]
    assert record["labelled_by"] == str(teacher) and record["transductive"] is True
    # the same training with the pool video's annotated labels changed: the same pseudo-labels
    annotations = json.loads(paths.annotations.read_text())
    for entry in annotations["database"]["synthetic_003"]["annotations"]:
        entry["label"] = annotations["database"]["synthetic_000"]["annotations"][0]["label"]
        entry["segment"] = [0.0, 0.5]
        entry.pop("segment(frames)", None)
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(annotations))
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, annotations=str(changed)))
    train(config, tmp_path / "b", progress=False, log=lambda *_: None)
    assert json.loads(RunDir(tmp_path / "b").pseudo_labels_path.read_text())["videos"] == record["videos"]


def test_a_teacher_with_a_second_opinion_labels_with_its_rescored_hard_set(setup, tmp_path):
    # its threshold was tuned on rescored detections: labelling without the rescoring kept a different set
    paths, _, _, pool = setup
    teacher_config = config_for(paths)
    teacher_config = dataclasses.replace(teacher_config, postprocess=dataclasses.replace(teacher_config.postprocess,
                                                                                         second_opinion=0.25))
    teacher = tmp_path / "teacher"
    train(teacher_config, teacher, progress=False, log=lambda *_: None)
    config = with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), teacher=str(teacher), transductive=True,
                         min_score=0.05)
    train(config, tmp_path / "student", progress=False, log=lambda *_: None)
    record = json.loads(RunDir(tmp_path / "student").pseudo_labels_path.read_text())
    hard = OfflineDetector.from_run(teacher, device="cpu", precision="fp32")
    assert hard.second_opinion is not None
    expected = hard.hard_set(hard.detect(pool / "synthetic_003.npy"), threshold=0.05)
    assert expected and [(d["label"], d["start"], d["end"], d["score"]) for d in record["videos"]["synthetic_003"]] == \
        [(d.label, d.start, d.end, d.score) for d in expected]


def test_without_a_teacher_one_is_trained_first_and_the_report_says_transductive(setup, tmp_path):
    paths, _, _, pool = setup
    config = with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), transductive=True)
    lines = []
    result = train(config, tmp_path / "run", progress=False, log=lines.append)
    assert RunDir(tmp_path / "run" / "teacher").read_config().pseudo_labels == PseudoLabelConfig()
    assert any("pseudo-labelled 1 unlabelled video with " in line for line in lines)
    assert any("+ 1 pseudo-labelled" in line for line in lines)
    assert result.run_dir == tmp_path / "run"
    from mgrec.infer.evaluate_run import evaluate_run
    from mgrec.report.html import load_run, training_data

    evaluate_run(tmp_path / "run", "test")
    assert "TRANSDUCTIVE, these are the test subjects' own videos" in training_data(load_run(tmp_path / "run"))
    # an ensemble holding that run (its config is its first member's) says it too, of either kind
    from mgrec.infer.fused_ensemble import make_fused_ensemble
    from mgrec.train.ensemble import make_ensemble

    teacher = tmp_path / "run" / "teacher"
    for name, make in (("averaged", make_ensemble), ("fused", make_fused_ensemble)):
        make([teacher, tmp_path / "run"], tmp_path / name, log=lambda *_: None)
        evaluate_run(tmp_path / name, "test")
        said = training_data(load_run(tmp_path / name))
        assert f"{tmp_path / 'run'} also trained on pseudo-labels of the unlabelled videos in {pool}: TRANSDUCTIVE" \
            in said, said


def test_a_bad_pool_is_refused_before_anything_trains(setup, tmp_path):
    paths, _, teacher, pool = setup
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no feature files"):
        train(with_pseudo(config_for(paths), unlabeled=str(tmp_path / "empty"), teacher=str(teacher)),
              tmp_path / "r1", progress=False, log=lambda *_: None)
    assert not (tmp_path / "r1" / "teacher").exists()
    with pytest.raises(InputError, match=r"synthetic_003.npy is a file; give the folder that holds"):
        train(with_pseudo(config_for(paths), unlabeled=str(pool / "synthetic_003.npy"), teacher=str(teacher)),
              tmp_path / "r1", progress=False, log=lambda *_: None)
    other_video = np.load(pool / "synthetic_003.npy") + 0.5  # a video of no labelled split
    bare = tmp_path / "bare"
    bare.mkdir()
    np.save(bare / "v.npy", other_video)  # no sidecar, no data.fps
    with pytest.raises(InputError, match=r"v.npy: the features' fps is unknown"):  # before the teacher trains
        train(with_pseudo(config_for(paths), unlabeled=str(bare)), tmp_path / "r2", progress=False, log=lambda *_: None)
    assert not (tmp_path / "r2" / "teacher").exists()
    # a sidecar of another grid or another recipe than the training features': labels at the wrong times, or
    # labels of features that mean something else
    sidecar = json.loads((pool / "synthetic_003.json").read_text())
    for name, change, match in (("grid", {"stride": 8}, r"v.json.*stride"),
                                ("recipe", {"backbone": "another-backbone"},
                                 r"v.json: these features were made with another .*'another-backbone' \(the tr")):
        folder = tmp_path / name
        folder.mkdir()
        np.save(folder / "v.npy", other_video)
        (folder / "v.json").write_text(json.dumps({**sidecar, **change}))
        with pytest.raises(InputError, match=match):
            train(with_pseudo(config_for(paths), unlabeled=str(folder)), tmp_path / f"r-{name}", progress=False,
                  log=lambda *_: None)
        assert not (tmp_path / f"r-{name}" / "teacher").exists()


def test_a_teacher_that_labels_nothing_in_the_whole_pool_is_a_warning_and_min_score_1_is_no_bar(setup, tmp_path):
    # at a bar no detection passes, every pool video trains as background only, its gestures taught as nothing:
    # not without a word
    paths, _, teacher, pool = setup
    lines = []
    train(with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), teacher=str(teacher), transductive=True,
                      min_score=0.9999), tmp_path / "none", progress=False, log=lines.append)
    assert any("0 instances (score >= 0.9999)" in line for line in lines)
    assert any(line.startswith("warning: ") and "labelled no gesture in the one unlabelled video: it trains "
               "as background only; lower pseudo_labels.min_score" in line for line in lines)
    with pytest.raises(InputError, match=r"\[pseudo_labels.min_score\]: expected a score in \[0, 1\) \(no detection "
                                         r"scores 1"):
        train(with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), teacher=str(teacher), transductive=True,
                          min_score=1.0), tmp_path / "one", progress=False, log=lambda *_: None)


def test_a_teacher_of_other_classes_grid_recipe_or_splits_is_refused_before_it_labels(setup, tmp_path):
    from mgrec.config import save_config

    paths, _, teacher, pool = setup

    def edited(name, edit):
        copy = Path(shutil.copytree(teacher, tmp_path / name))
        edit(copy)
        return copy

    def reversed_classes(run):
        (run / "classes.json").write_text(json.dumps(json.loads((run / "classes.json").read_text())[::-1]))

    def other_config(**data):
        def edit(run):
            config = RunDir(run).read_config()
            save_config(dataclasses.replace(config, data=dataclasses.replace(config.data, **data)), run / "config.yaml")
        return edit

    def other_recipe(run):
        recipe = json.loads((run / "feature_recipe.json").read_text())
        (run / "feature_recipe.json").write_text(json.dumps({**recipe, "backbone": "another-backbone"}))

    def trained_on_test(run):  # its record, written when it trained, says what it trained on
        record = json.loads((run / "splits.json").read_text())
        (run / "splits.json").write_text(json.dumps({**record, "train": [*record["train"], "synthetic_003"]}))

    def old_teacher_of_other_splits(run):
        other_config(train_split="test", test_split="train")(run)
        (run / "splits.json").unlink()

    for name, edit, match in (
            ("classes", reversed_classes, r"teacher: .*classes.json lists other classes than .* first difference at "
                                          r"label id 0"),
            ("stride", other_config(stride=8), r"teacher: .*config.yaml \[data.stride\]: 8, but this run has 4"),
            ("recipe", other_recipe, r"teacher: .*feature_recipe.json: the teacher was trained on features made "
                                     r"another way .*'another-backbone'"),
            ("splits", trained_on_test,
             r"teacher: .*splits saw the labels of 1 video\(s\) this run holds out: synthetic_003 \(this run's "
             r"test, the teacher trained on it\)"),
            # a teacher of format 13 has no record: its annotations are read as they are, its config's splits
            ("old-splits", old_teacher_of_other_splits,
             r"teacher: .*splits saw the labels of 1 video\(s\) this run holds out: synthetic_003 \(this run's "
             r"test, the teacher trained on it\)")):
        given = edited(name, edit)
        run = tmp_path / f"run-{name}"
        with pytest.raises(InputError, match=match):
            train(with_pseudo(config_for(paths), unlabeled=str(pool), teacher=str(given), transductive=True), run,
                  progress=False, log=lambda *_: None)
        assert not (run / "pseudo_labels.json").exists() and not (run / "config.yaml").exists()
    # what reads the same: data.fps set to the fps the sidecars give; a teacher imported without its annotations
    lines = []
    def imported(run):  # `write_for_inference`: a model trained elsewhere, with neither annotations nor a record
        other_config(annotations="")(run)
        (run / "splits.json").unlink()

    for name, edit in (("fps", other_config(fps=28.0)), ("imported", imported)):
        train(with_pseudo(config_for(paths, epochs=1), unlabeled=str(pool), teacher=str(edited(name, edit)),
                          transductive=True), tmp_path / f"run-ok-{name}", progress=False, log=lines.append)
    assert any("names no annotations: whether the teacher trained on this run's val or test videos cannot be "
               "checked" in line for line in lines)
    with pytest.raises(InputError, match=r"teacher: .*fps-30 reads its features at 30 fps, this run at 28"):
        train(with_pseudo(config_for(paths), unlabeled=str(pool), teacher=str(edited("fps-30", other_config(fps=30.0))),
                          transductive=True), tmp_path / "run-fps-30", progress=False, log=lambda *_: None)
    with pytest.raises(InputError, match=r"teacher: .*run-self is the run being trained"):
        train(with_pseudo(config_for(paths), unlabeled=str(pool), teacher=str(tmp_path / "run-self"),
                          transductive=True), tmp_path / "run-self", progress=False, log=lambda *_: None)


def test_one_video_twice_in_the_pool_is_refused(setup, tmp_path):
    # it would be trained on twice and recorded once (pseudo_labels.json is keyed by video id)
    paths, _, teacher, pool = setup
    features = np.load(pool / "synthetic_003.npy")
    sidecar = (pool / "synthetic_003.json").read_text()

    def pool_of(name, files):
        folder = tmp_path / name
        folder.mkdir()
        for file, make in files.items():
            make(folder / file)
            (folder / file).with_suffix(".json").write_text(sidecar)
        return folder

    for name, files, match in (
            ("npz", {"v.npy": lambda p: np.save(p, features), "v.npz": lambda p: np.savez(p, feats=features)},
             r"v.npy and .*v.npz are the same video id"),
            ("copy", {"a.npy": lambda p: np.save(p, features + 1), "b.npy": lambda p: np.save(p, features + 1)},
             r"a.npy and .*b.npy hold the same features")):
        with pytest.raises(InputError, match=match):
            train(with_pseudo(config_for(paths), unlabeled=str(pool_of(name, files)), teacher=str(teacher)),
                  tmp_path / f"run-{name}", progress=False, log=lambda *_: None)


def test_labelled_videos_and_unreadable_files_in_the_pool_are_refused_before_a_teacher_trains(setup, tmp_path):
    paths, _, _, pool = setup

    def refused(folder, match, **pseudo):
        with pytest.raises(InputError, match=match):
            train(with_pseudo(config_for(paths), unlabeled=str(folder), **pseudo), tmp_path / f"run-{folder.name}",
                  progress=False, log=lambda *_: None)
        assert not (tmp_path / f"run-{folder.name}" / "teacher").exists()

    # the labelled features folder itself: its first video is a training video
    refused(paths.features, r"synthetic_000.npy is video 'synthetic_000' of the train split .* its own labels")
    for video, split in (("synthetic_002", "val"), ("synthetic_003", "test")):
        (tmp_path / split).mkdir()
        shutil.copy(paths.features / f"{video}.npy", tmp_path / split / f"{video}.npy")
        refused(tmp_path / split, rf"{video}.npy is video '{video}' of the {split} split", transductive=False)
    refused(tmp_path / "val", r"of the val split .* selects the checkpoint", transductive=True)  # never val
    # the same videos under other names: a copy (found by its content) and a link (by the file it is)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(paths.features / "synthetic_002.npy", renamed / "val_copy.npy")
    refused(renamed, r"val_copy.npy is video 'synthetic_002' of the val split .*the same features as",
            transductive=True)
    # the val video extracted again in another runtime: its values a rounding apart (an exact hash missed it)
    values = np.load(renamed / "val_copy.npy")
    np.save(renamed / "val_copy.npy", (values * np.float32(1 + 3e-6)).astype(np.float32))
    refused(renamed, r"val_copy.npy is video 'synthetic_002' of the val split .* \(the same features as .*synthetic_002"
            r".npy up to float rounding\)", transductive=True)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "train_link.npy").symlink_to(paths.features / "synthetic_000.npy")
    refused(linked, r"train_link.npy is video 'synthetic_000' of the train split .* \(it is ", transductive=True)
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "x.npy").write_bytes(b"\x93NUMPY garbage" * 10)
    refused(garbage, r"x.npy: cannot read features")


def test_a_pool_file_is_held_to_every_video_it_is_by_name_and_by_content(setup, tmp_path):
    """A pool file was matched by its name first and then not by its content: named after a test video (allowed in the
    transductive setting) but holding a training video's features, it was pseudo-labelled without a word; and two
    copies of one test video in the pool (each found to be that video) were both labelled, one video with twice the
    weight."""
    paths, _, _, _ = setup

    def refused(folder, match):
        with pytest.raises(InputError, match=match):
            train(with_pseudo(config_for(paths), unlabeled=str(folder), transductive=True),
                  tmp_path / f"r-{folder.name}", progress=False, log=lambda *_: None)
        assert not (tmp_path / f"r-{folder.name}" / "teacher").exists()

    disguised = tmp_path / "disguised"
    disguised.mkdir()
    shutil.copy(paths.features / "synthetic_000.npy", disguised / "synthetic_003.npy")  # a train video, a test name
    refused(disguised, r"synthetic_003.npy is video 'synthetic_000' of the train split .*the same features as")
    doubled = tmp_path / "doubled"
    doubled.mkdir()
    shutil.copy(paths.features / "synthetic_003.npy", doubled / "a.npy")
    values = np.load(paths.features / "synthetic_003.npy")
    np.save(doubled / "b.npy", (values * np.float32(1 + 3e-6)).astype(np.float32))  # extracted again elsewhere
    refused(doubled, r"a.npy and .*b.npy are both video 'synthetic_003'; the pool holds each video once")


def test_resuming_a_run_with_pseudo_labels_added_is_refused_before_a_teacher_trains(setup, tmp_path):
    paths, _, teacher, pool = setup
    run = Path(shutil.copytree(teacher, tmp_path / "run"))
    with pytest.raises(InputError, match=r"pseudo_labels.unlabeled"):
        train(with_pseudo(config_for(paths), unlabeled=str(pool), transductive=True), run, resume=True,
              progress=False, log=lambda *_: None)
    assert not (run / "teacher").exists()


def test_resuming_a_student_whose_pool_gained_or_lost_videos_is_refused_before_they_are_labelled(setup, tmp_path):
    # --resume labelled the pool as it was now and went on: a video added to the folder since (or removed) changed
    # the number of steps of every later epoch, and with it the learning-rate schedule, without a word, and
    # pseudo_labels.json was rewritten to the new pool as if the run had trained on it from the start
    paths, _, teacher, original = setup
    pool = Path(shutil.copytree(original, tmp_path / "pool"))
    config = with_pseudo(config_for(paths, epochs=3), unlabeled=str(pool), teacher=str(teacher), transductive=True)
    run = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_after_epoch_0(record):
        if record["kind"] == "val" and record["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train(config, run, progress=False, log=lambda *_: None, on_metrics=stop_after_epoch_0)
    record = RunDir(run).pseudo_labels_path.read_bytes()
    state = (run / "checkpoints/last_state.pt").read_bytes()
    features = np.load(pool / "synthetic_003.npy")
    np.save(pool / "extra.npy", np.random.default_rng(0).standard_normal(features.shape).astype(features.dtype))
    shutil.copy(pool / "synthetic_003.json", pool / "extra.json")
    labelled = []
    with pytest.raises(InputError, match=rf"--resume: pseudo_labels.unlabeled \(train --unlabeled\): {pool} holds "
                                         r"other videos than the 1 the run started on \(.*pseudo_labels.json\): now "
                                         r"also 'extra'; resume with the pool it started on, or start a new run"):
        train(config, run, resume=True, progress=False, log=labelled.append)
    (pool / "synthetic_003.npy").unlink()
    with pytest.raises(InputError, match=r"holds other videos than the 1 the run started on .*: now also 'extra'; no "
                                         r"longer 'synthetic_003'; resume with"):
        train(config, run, resume=True, progress=False, log=labelled.append)
    assert not any(line.startswith("pseudo-labelled") for line in labelled)  # refused before labelling
    assert RunDir(run).pseudo_labels_path.read_bytes() == record
    assert (run / "checkpoints/last_state.pt").read_bytes() == state


def test_resume_before_the_student_s_first_epoch_says_to_start_without_it(setup, tmp_path):
    # killed after the teacher, before the student's first epoch: --resume labelled the pool again, then
    # said "nothing to resume (start without --resume)"
    paths, _, teacher, pool = setup
    run = tmp_path / "run"
    shutil.copytree(teacher, run / "teacher")
    with pytest.raises(InputError, match=r"--resume: .*last_state.pt not found: the student has no epoch to resume "
                                         r"yet \(its teacher, .*teacher, is kept\); start without --resume"):
        train(with_pseudo(config_for(paths), unlabeled=str(pool), transductive=True), run, resume=True,
              progress=False, log=lambda *_: None)
    assert {p.name for p in run.iterdir()} <= {".lock", "teacher"}  # nothing labelled or written


def test_the_teacher_reads_the_pool_its_way_and_the_student_its_own(setup):
    # a teacher trained on features as read labels them as read; a standardising student trains on them standardised
    import numpy as np

    from mgrec.data.features import load_features
    from mgrec.data.normalize import ChannelStats
    from mgrec.train.pseudo import label_videos

    paths, _, teacher, pool = setup
    student = config_for(paths)
    student = dataclasses.replace(student, data=dataclasses.replace(student.data, normalize="video"))
    # every ranked detection (min score 0): the labels then show which inputs the teacher read
    (sample,), record = label_videos(RunDir(teacher), [pool / "synthetic_003.npy"], student, 0.0, log=lambda *_: None)
    raw = load_features(pool / "synthetic_003.npy")
    np.testing.assert_array_equal(sample.features, ChannelStats.of(raw).apply(raw))
    hard = OfflineDetector.from_run(teacher, device="cpu", precision="fp32")
    expected = hard.hard_set(hard.detect(pool / "synthetic_003.npy"), threshold=0.0)
    assert [(d["label"], d["start"], d["end"]) for d in record["videos"]["synthetic_003"]] == \
        [(d.label, d.start, d.end) for d in expected] != []


def test_a_pool_file_named_with_the_feature_prefix_is_the_labelled_video_after_it(tmp_path):
    """With data.feature_prefix `v_`, a pool file `v_abc.npy` is video `abc`: a labelled video (val, test) copied
    into the pool is found by its name as without a prefix."""
    from pathlib import Path

    from mgrec.train.pseudo import pool_repeats

    pool = [Path("pool/v_abc.npy"), Path("pool/abc.npy"), Path("pool/v_other.npy")]
    twice, twins = pool_repeats(pool, dict.fromkeys(pool, (10, 4)), {"abc": tmp_path / "labelled" / "v_abc.npy"},
                                "v_")
    assert twins == {pool[0]: [("abc", "")], pool[1]: [("abc", "")]}
    assert twice == [(pool[0], pool[1], "are both video 'abc'")]


def test_a_pool_of_many_clips_of_one_length_is_searched_for_labelled_videos_without_comparing_every_pair(
        tmp_path, monkeypatch):
    """Clips of one length (a lab's 10-s recordings) all share a shape: each pool file was compared with every
    labelled file of it, pool x labelled comparisons. The search sorts them as `repeated_feature_files` does, and
    still finds the labelled video re-extracted a rounding apart under another name."""
    from mgrec.data import features
    from mgrec.train.pseudo import pool_repeats

    generator = np.random.default_rng(0)
    (tmp_path / "labelled").mkdir()
    (tmp_path / "pool").mkdir()
    labelled = {}
    for index in range(150):
        labelled[f"v{index}"] = tmp_path / "labelled" / f"v{index}.npy"
        np.save(labelled[f"v{index}"], generator.normal(size=(40, 8)).astype(np.float32))
    pool = []
    for index in range(150):
        pool.append(tmp_path / "pool" / f"clip{index}.npy")
        np.save(pool[-1], generator.normal(size=(40, 8)).astype(np.float32))
    np.save(pool[77], (np.load(labelled["v31"]) * np.float32(1 + 3e-6)).astype(np.float32))
    compared = []
    same = features.same_features
    monkeypatch.setattr(features, "same_features", lambda a, b: compared.append(1) or same(a, b))
    twice, twins = pool_repeats(pool, dict.fromkeys(pool, (40, 8)), labelled)
    assert twins == {pool[77]: [("v31", f" (the same features as {labelled['v31']} up to float rounding)")]}
    assert twice == []
    assert len(compared) < 300  # every pair would be 150 x 150 = 22500


def test_a_pool_folder_missing_empty_or_unreadable_is_said_of_the_setting(setup, tmp_path):
    # the folder's own problems were said as any folder's ("x: folder holds no feature files"), without the setting
    # or the --unlabeled flag that gave it; the setting's own messages after them were never reached
    paths, _, teacher, _ = setup
    (tmp_path / "empty").mkdir()
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "a.npy").symlink_to(loop / "b.npy")
    (loop / "b.npy").symlink_to(loop / "a.npy")
    for folder, problem in (("empty", "folder holds no feature files"), ("gone", "no such folder"),
                            ("loop", "2 of the 2 feature files cannot be read")):
        with pytest.raises(InputError) as error:
            train(with_pseudo(config_for(paths), unlabeled=str(tmp_path / folder), teacher=str(teacher)),
                  tmp_path / f"r-{folder}", progress=False, log=lambda *_: None)
        assert str(error.value).startswith(f"pseudo_labels.unlabeled (train --unlabeled): {tmp_path / folder}: "
                                           f"{problem}"), error.value
        assert not (tmp_path / f"r-{folder}").exists()


def test_pool_files_without_a_sidecar_are_noted_where_the_training_features_record_a_recipe(setup, tmp_path):
    # a pool file without a sidecar, read at data.fps, was pseudo-labelled without a word: its recipe (another
    # backbone of the same width?) was never held to the training features' as a pool sidecar's is
    from mgrec.train.pseudo import check_unlabeled

    paths, _, _, pool = setup
    bare = tmp_path / "bare"
    bare.mkdir()
    np.save(bare / "a.npy", np.load(pool / "synthetic_003.npy") + 0.5)
    np.save(bare / "b.npy", np.load(pool / "synthetic_003.npy") + 0.25)
    config = dataclasses.replace(config_for(paths), data=dataclasses.replace(config_for(paths).data, fps=28.0))
    lines = []
    check_unlabeled([bare / "a.npy", bare / "b.npy"], config, lines.append)
    assert lines == [f"note: pseudo_labels.unlabeled (train --unlabeled): 2 of the 2 feature files of the pool have no "
                     f"sidecar (first: {bare / 'a.npy'}), so how they were made cannot be checked against the "
                     f"training features' recipe ({paths.features / 'synthetic_000.json'}: backbone "
                     f"{json.loads((paths.features / 'synthetic_000.json').read_text())['backbone']}); they are read "
                     "at data.fps 28: extract the pool with the training features' recipe (mgrec extract writes a "
                     "sidecar beside each file)"]
    lines.clear()
    check_unlabeled([pool / "synthetic_003.npy"], with_pseudo(config, transductive=True), lines.append)
    assert lines == []  # a pool file with its sidecar was checked, nothing to note


def test_a_teacher_kept_from_an_earlier_start_of_another_config_is_refused_by_its_folder(setup, tmp_path):
    # a fresh start (no --resume) of a run whose RUN/teacher was kept from an earlier start with another config:
    # "--resume: the config differs ...; resume with the run's own config, or train a new run", an option not
    # given, and no word that removing RUN/teacher trains a new teacher
    paths, _, teacher, pool = setup
    run = tmp_path / "run"
    shutil.copytree(teacher, run / "teacher")
    config = config_for(paths)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=1e-3))
    lines = []
    with pytest.raises(InputError) as error:
        train(with_pseudo(config, unlabeled=str(pool), transductive=True), run, progress=False, log=lines.append)
    assert str(error.value) == (
        f"{run / 'teacher'}: the teacher kept from an earlier start of this run (training continues it, or reuses it "
        f"when finished): the config differs from {run / 'teacher' / 'config.yaml'} (train.lr: 0.003 in the run, "
        f"0.001 now); train with the config it was trained with, or remove {run / 'teacher'} to train a new teacher "
        "with this one")
    assert not any("training the teacher" in line for line in lines)
    assert sorted(p.name for p in run.iterdir()) == ["teacher"]


def test_the_pool_says_what_it_leaves_out(tmp_path):
    # a sidecar whose feature file is gone and a hidden `._x.npy` were left out of the pool without a word (detect
    # notes the hidden names of its folders)
    from mgrec.train.pseudo import unlabeled_files

    pool = tmp_path / "pool"
    pool.mkdir()
    for name in ("a", "b"):
        np.save(pool / f"{name}.npy", np.zeros((8, 4), np.float32))
        (pool / f"{name}.json").write_text("{}")
    (pool / "b.npy").unlink()  # its sidecar stays
    np.save(pool / "._a.npy", np.zeros((8, 4), np.float32))
    said = []
    assert unlabeled_files(pool, said.append) == [pool / "a.npy"]
    assert said == [f"note: pseudo_labels.unlabeled (train --unlabeled): {pool}: skipped 1 hidden entries ('._a.npy')",
                    f"note: pseudo_labels.unlabeled (train --unlabeled): 1 sidecar in {pool} without its feature "
                    "file (b.json): that video is not in the pool"]
