import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import small_config

from mgrec.cli import main
from mgrec.config import PostprocessConfig, TrainConfig
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.offline import OfflineDetector
from mgrec.run import RunDir
from mgrec.train.ensemble import make_ensemble
from mgrec.train.loop import train


def config_for(paths, seed, **model):
    config = small_config(paths, seed=seed, max_seq_len=128,
                          train=TrainConfig(epochs=2, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                            eval_every=1, ema_decay=0.9),
                          postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100))
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=5, feature_dim=16, length=160, seed=0,
                                   subsets=("train", "train", "val", "test"))
    trained = []
    for seed in (3, 4):
        trained.append(root / f"run{seed}")
        train(config_for(paths, seed), trained[-1], progress=False, log=lambda *_: None)
    return paths, root, trained


def detections(run_dir, features):
    return OfflineDetector.from_run(run_dir, device="cpu", precision="fp32").detect(features)


def assert_same_detections(a, b):
    assert [(d.label, round(d.start, 4), round(d.end, 4)) for d in a] == \
        [(d.label, round(d.start, 4), round(d.end, 4)) for d in b]
    assert np.allclose([d.score for d in a], [d.score for d in b], atol=1e-5)


def test_an_ensemble_of_one_run_detects_what_the_run_detects(runs, tmp_path):
    paths, _, (first, _) = runs
    make_ensemble([first], tmp_path / "one", log=lambda *_: None)
    features = paths.features / "synthetic_003.npy"
    assert_same_detections(detections(tmp_path / "one", features), detections(first, features))
    # the threshold is tuned on val, as training tunes it
    assert RunDir(tmp_path / "one").read_tuning()["tuned_on"] == "val"
    assert RunDir(tmp_path / "one").read_tuning()["score_threshold"] == pytest.approx(
        RunDir(first).read_tuning()["score_threshold"])


@pytest.mark.parametrize("fusion", ["outputs", "detections"])
def test_an_ensemble_of_runs_trained_without_validation_keeps_their_threshold_and_says_so(runs, tmp_path, fusion):
    # the members' empty val split was "tuned on": warnings of a split '' (`--set data.val_split=val?`)
    import shutil

    from mgrec.config import load_config, save_config
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    _, _, (first, _) = runs
    member = Path(shutil.copytree(first, tmp_path / "member"))
    config = load_config(member / "config.yaml")
    config.data.val_split = ""
    save_config(config, member / "config.yaml")
    lines = []
    (make_ensemble if fusion == "outputs" else make_fused_ensemble)([member], tmp_path / "e", log=lines.append)
    assert lines == ["the members have no val split (data.val_split is empty): keeping the configured score threshold"]
    assert RunDir(tmp_path / "e").read_tuning()["tuned_on"] is None


def test_an_ensemble_of_two_identical_runs_equals_one(runs, tmp_path):
    paths, _, (first, _) = runs
    make_ensemble([first, first], tmp_path / "twice", log=lambda *_: None)
    features = paths.features / "synthetic_002.npy"
    assert_same_detections(detections(tmp_path / "twice", features), detections(first, features))


def test_an_ensemble_has_no_last_checkpoint(runs, tmp_path, capsys):
    _, _, members = runs
    make_ensemble(members, tmp_path / "e", log=lambda *_: None)
    # each member's own config recorded (its config.yaml is the first member's): what `mgrec compare` groups it by
    from mgrec.config import to_dict
    from mgrec.run import RunDir
    assert RunDir(tmp_path / "e").read_ensemble()["member_configs"] == [
        json.loads(json.dumps(to_dict(RunDir(m).read_config()))) for m in members]
    assert main(["evaluate", str(tmp_path / "e"), "--checkpoint", "last"]) == 2
    assert "is an ensemble of its members' selected (best) checkpoints; --checkpoint last does not apply" in \
        capsys.readouterr().err


def test_the_command_line_says_when_a_run_is_given_twice_or_alone(runs, tmp_path, capsys):
    _, _, (first, second) = runs
    assert main(["ensemble", str(first), f"{first}/", "--out", str(tmp_path / "twice")]) in (0, None)
    err = capsys.readouterr().err
    assert f"note: {first.resolve()} is given 2 times" in err and "one distinct run" in err
    assert main(["ensemble", str(first), str(second), "--out", str(tmp_path / "two")]) in (0, None)
    assert "note:" not in capsys.readouterr().err


def test_an_ensemble_is_a_run_that_evaluate_and_detect_take(runs, tmp_path, capsys):
    paths, _, members = runs
    out = tmp_path / "both"
    result = make_ensemble(members, out, log=lambda *_: None)
    assert result.members == [str(m) for m in members] and result.val_metrics is not None
    assert json.loads((out / "run.json").read_text())["ensemble"]["members"] == 2
    scores = evaluate_run(out, "test")
    assert 0.0 <= scores["f1"] <= 1.0 and scores["threshold_tuned_on"] == "val"
    assert main(["detect", str(out), str(paths.features / "synthetic_003.npy"), "--out", str(tmp_path / "d.json")]) == 0
    assert json.loads((tmp_path / "d.json").read_text())["results"]
    assert main(["report", str(out), "--split", "test"]) in (0, None)
    assert "No metrics.jsonl" in next(out.glob("report_*.html")).read_text(encoding="utf-8")  # nothing was trained


def test_members_that_cannot_be_averaged_and_bad_outputs_are_refused(runs, tmp_path):
    paths, root, (first, second) = runs
    wide = root / "wide"
    if not wide.exists():
        train(config_for(paths, 3, embed_dim=24, head_dim=24), wide, progress=False, log=lambda *_: None)
    with pytest.raises(InputError, match=r"\[model.embed_dim\]: 24, but .* has 16; .* same layout"):
        make_ensemble([first, wide], tmp_path / "e1")
    with pytest.raises(InputError, match="would overwrite one of its members"):
        make_ensemble([first, second], second)
    with pytest.raises(InputError, match=r"checkpoints/ens is inside the member .*; an ensemble is a run of its own"):
        make_ensemble([first, second], Path(second) / "checkpoints" / "ens")
    assert not (Path(second) / "checkpoints" / "ens").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty"):
        make_ensemble([first], tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    make_ensemble([first], tmp_path / "e2", log=lambda *_: None)
    with pytest.raises(InputError, match="is itself an ensemble"):
        make_ensemble([tmp_path / "e2", first], tmp_path / "e3")


@pytest.mark.parametrize("fusion", ["outputs", "detections"])
def test_an_ensemble_refuses_an_out_that_is_a_folder_its_members_read(runs, tmp_path, capsys, fusion):
    # training's refusal (`refuse_a_folder_training_reads`), which the ensemble did not ask: an empty folder of
    # data.features took the ensemble's files
    paths, _, (first, _) = runs
    member = Path(shutil.copytree(first, tmp_path / "member"))
    features = tmp_path / "features"
    features.mkdir()
    text = (member / "config.yaml").read_text()
    (member / "config.yaml").write_text(text.replace(str(paths.features), str(features)))
    assert main(["ensemble", str(first), str(member), "--out", str(features), "--fusion", fusion]) == 2
    err = capsys.readouterr().err
    assert err == (f"mgrec: error: --out {features} is the folder of data.features, which the member {member} "
                   "reads; choose another --out\n")
    assert not any(features.iterdir())


@pytest.mark.slow
def test_train_with_seeds_trains_the_members_and_their_ensemble(runs, tmp_path, capsys):
    paths, _, _ = runs
    config = tmp_path / "c.yaml"
    from mgrec.config import save_config

    save_config(config_for(paths, 7), config)
    assert main(["train", str(config), "--out", str(tmp_path / "x"), "--seeds", "2", "--no-progress"]) in (0, None)
    for seed in (7, 8):
        assert RunDir(tmp_path / f"x-seed{seed}").read_config().seed == seed
    assert RunDir(tmp_path / "x").read_ensemble()["members"] == 2
    out = capsys.readouterr().out
    assert "ensemble of 2 runs: val F1" in out
    members = " ".join(str(tmp_path / name) for name in ("x-seed7", "x-seed8", "x"))
    assert f"the seeds and their ensemble side by side, once each is evaluated: mgrec compare {members}" in out
    # what one training gives and how much it varies, before the ensemble's line
    assert re.search(r"2 seeds, val \(mean ± std over seeds\): F1 \d+\.\d\d ± \d+\.\d\d, F1 \(MiGA rule\) "
                     r"\d+\.\d\d ± \d+\.\d\d, average mAP \d+\.\d\d ± \d+\.\d\d\n", out), out


def test_train_with_seeds_refuses_before_training_what_the_ensemble_would_refuse_after(runs, tmp_path, capsys,
                                                                                      monkeypatch):
    # a full --out, seeds past the largest and `--out .` were found after every member had trained (or, for
    # ".", as a traceback)
    from mgrec.config import save_config

    paths, _, _ = runs
    config = tmp_path / "c.yaml"
    save_config(config_for(paths, 7), config)
    full = tmp_path / "notes"
    full.mkdir()
    (full / "a.txt").write_text("mine")
    for options, expected in [
        (["--out", str(full)], "notes exists and is not empty; the ensemble is written into a new folder"),
        (["--out", str(tmp_path / "big"), "--set", "seed=2147483647"],
         "--seeds 2 from seed 2147483647 would train seed 2147483648, past the largest seed 2147483647"),
    ]:
        assert main(["train", str(config), *options, "--seeds", "2", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mgrec: error: ") and expected in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "notes"]  # nothing trained
    # a later member's folder already holding a run was found after the earlier members had trained
    taken = tmp_path / "ens-seed8"
    shutil.copytree(runs[2][0], taken)
    assert main(["train", str(config), "--out", str(tmp_path / "ens"), "--seeds", "2", "--no-progress"]) == 2
    assert "ens-seed8 already holds a run; pass --resume" in capsys.readouterr().err
    assert not (tmp_path / "ens-seed7").exists()
    shutil.rmtree(taken)
    # a later member's folder that is the features folder: found after the earlier members had trained
    features = tmp_path / "ens-seed8"
    shutil.copytree(paths.features, features)
    assert main(["train", str(config), "--out", str(tmp_path / "ens"), "--seeds", "2", "--no-progress", "--set",
                 f"data.features={features}"]) == 2
    assert f"--out {features} is the folder of data.features, which training reads" in capsys.readouterr().err
    assert not (tmp_path / "ens-seed7").exists()
    shutil.rmtree(features)
    monkeypatch.chdir(full)  # `--out .` (a traceback: "." has no name to name the members after)
    assert main(["train", str(config), "--out", ".", "--seeds", "2", "--no-progress"]) == 2
    assert "notes exists and is not empty" in capsys.readouterr().err
    # end to end: every member trained (hours on a GPU) before the ensemble refused them
    assert main(["train", "smg/mgrec_end_to_end.yaml", "--out", str(tmp_path / "e2e"), "--seeds", "2"]) == 2
    assert "--seeds with data.videos (end to end): ensembles take runs trained on feature files" in (
        capsys.readouterr().err)
    assert not (tmp_path / "e2e-seed1234").exists()


def test_members_of_other_features_or_other_splits_are_refused_and_an_edited_member_count_is_named(runs, tmp_path):
    # a member trained on another backbone's features was averaged with the others (one input read for both),
    # and a member trained on the test split was scored on it, both without a word
    import dataclasses

    from mgrec.config import save_config
    from mgrec.train.ensemble import averaging_refused

    _, _, (first, second) = runs
    other_features = Path(shutil.copytree(second, tmp_path / "other-features"))
    recipe = json.loads((first / "feature_recipe.json").read_text())
    (other_features / "feature_recipe.json").write_text(json.dumps({**recipe, "backbone": "another-backbone"}))
    with pytest.raises(InputError, match=r"other-features was trained on features made another way than .*"
                                         r"backbone 'another-backbone'"):
        make_ensemble([first, other_features], tmp_path / "e1")
    assert "made another way" in averaging_refused([first, other_features])  # `--fusion auto` fuses detections
    other_splits = Path(shutil.copytree(second, tmp_path / "other-splits"))
    config = RunDir(other_splits).read_config()
    save_config(dataclasses.replace(config, data=dataclasses.replace(config.data, train_split="test",
                                                                     test_split="train")), other_splits / "config.yaml")
    with pytest.raises(InputError, match=r"other-splits \[data.train_split\]: 'test', but .* has 'train'"):
        make_ensemble([first, other_splits], tmp_path / "e2")
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    with pytest.raises(InputError, match=r"\[data.train_split\]"):
        make_fused_ensemble([first, other_splits], tmp_path / "e3")
    # annotations are compared where both files are here: a member trained on another machine names a path
    # that is not (its ensemble is tuned on the first member's annotations, as before)
    from mgrec.config import check_same_splits

    elsewhere = RunDir(second).read_config()
    elsewhere = dataclasses.replace(elsewhere, data=dataclasses.replace(elsewhere.data,
                                                                        annotations="/cluster/job42/ann.json"))
    check_same_splits([(first, RunDir(first).read_config()), (second, elsewhere)])
    # a relative path that is not here was read from another current folder: the check is not skipped for it
    moved = dataclasses.replace(elsewhere, data=dataclasses.replace(elsewhere.data, annotations="ann_leak.json"))
    with pytest.raises(InputError, match=r"\[data.annotations\]: 'ann_leak.json' not found \(relative paths are read "
                                         r"from the current directory .*\); run this from the folder the members"):
        check_same_splits([(first, RunDir(first).read_config()), (second, moved)])
    # every stream's recipe goes with the ensemble (`detect` extracts from raw video by it)
    make_ensemble([first, second], tmp_path / "e4", log=lambda *_: None)
    assert json.loads((tmp_path / "e4" / "feature_recipe.json").read_text()) == recipe
    # an edited member count is refused from the weights' keys before that many detectors are built
    record = json.loads((tmp_path / "e4" / "run.json").read_text())
    record["ensemble"]["members"] = 10**9
    (tmp_path / "e4" / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=r"\[ensemble.members\]: 1000000000, but .*best.safetensors holds 2 members"):
        OfflineDetector.from_run(tmp_path / "e4", device="cpu")


def test_train_with_seeds_bounds_the_count_and_checks_resumable_members_first(runs, tmp_path, capsys):
    from mgrec.config import save_config

    paths, _, (first, _) = runs
    config = tmp_path / "c.yaml"
    save_config(config_for(paths, 7), config)
    # a count of 5e7 built a 7.5-GB list of members before anything was said
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(config), "--out", str(tmp_path / "big"), "--seeds", "50000000"])
    assert exit_.value.code == 2 and "argument --seeds: expected at most 1000 seeds" in capsys.readouterr().err
    # a resumable later member with another config was found after the earlier members had trained
    shutil.copytree(first, tmp_path / "ens-seed8")  # seed 3's run where seed 8's would be
    assert main(["train", str(config), "--out", str(tmp_path / "ens"), "--seeds", "2", "--resume",
                 "--no-progress"]) == 2
    assert "--resume: the config differs from" in capsys.readouterr().err
    assert not (tmp_path / "ens-seed7").exists()


@pytest.mark.parametrize("fusion", ["outputs", "detections"])
def test_an_ensemble_whose_folder_another_command_writes_meanwhile_is_refused_under_its_lock(runs, tmp_path,
                                                                                            monkeypatch, fusion):
    """A second `ensemble --out E`, paused after its check that E was empty while the first finished and was
    evaluated, wrote its run over the first's: both kinds check the folder again under the lock, writing nothing."""
    import mgrec.infer.fused_ensemble
    import mgrec.train.ensemble
    from mgrec.infer.fused_ensemble import make_fused_ensemble

    _, _, (first, _) = runs
    module = mgrec.train.ensemble if fusion == "outputs" else mgrec.infer.fused_ensemble
    checked = module.new_ensemble_dir

    def another_command_writes_after_the_check(out, members):
        run = checked(out, members)
        run.path.mkdir(parents=True)
        (run.path / "eval_test.json").write_text('{"theirs": true}')
        return run

    monkeypatch.setattr(module, "new_ensemble_dir", another_command_writes_after_the_check)
    make = make_ensemble if fusion == "outputs" else make_fused_ensemble
    with pytest.raises(InputError, match=r"E is no longer empty \(another command wrote 'eval_test.json' there"):
        make([first], tmp_path / "E", log=lambda *_: None)
    assert sorted(p.name for p in (tmp_path / "E").iterdir()) == ["eval_test.json"]


def test_a_members_malformed_recipe_is_refused_before_the_ensemble_is_written(runs, tmp_path):
    # The first member's feature_recipe.json is copied into the ensemble; compared only where every member has one, a
    # recipe with `"fps": "x"` beside a member without one was copied unchecked, and the ensemble written around it.
    _, _, (first, second) = runs
    broken = Path(shutil.copytree(first, tmp_path / "broken"))
    recipe = json.loads((broken / "feature_recipe.json").read_text())
    (broken / "feature_recipe.json").write_text(json.dumps({**recipe, "fps": "x"}))
    without = Path(shutil.copytree(second, tmp_path / "without"))
    (without / "feature_recipe.json").unlink()
    with pytest.raises(InputError, match=r"broken/feature_recipe\.json \[fps\]: expected a positive number of frames"):
        make_ensemble([broken, without], tmp_path / "e", log=lambda *_: None)
    assert not (tmp_path / "e" / "config.yaml").exists() and not (tmp_path / "e" / "feature_recipe.json").exists()


def test_members_of_other_post_processing_are_not_averaged_with_the_first_ones(runs, tmp_path, capsys):
    # the averaged outputs were decoded and suppressed with the first member's post-processing alone: the other's
    # NMS, top-k or threshold mode dropped without a word, and `ensemble A B` and `ensemble B A` were two models
    import dataclasses

    from mgrec.config import save_config
    from mgrec.train.ensemble import averaging_refused

    _, _, (first, second) = runs
    hard = Path(shutil.copytree(second, tmp_path / "hard-nms"))
    config = RunDir(hard).read_config()
    save_config(dataclasses.replace(config, postprocess=dataclasses.replace(config.postprocess, nms="hard",
                                                                            max_detections=7)), hard / "config.yaml")
    with pytest.raises(InputError, match=r"hard-nms \[postprocess.nms\]: 'hard', but .*run3 has 'soft'; the averaged "
                                         r"outputs are decoded and suppressed once, with one post-processing, which "
                                         r"the members must share \(--fusion detections keeps each member's own\)"):
        make_ensemble([first, hard], tmp_path / "e1")
    with pytest.raises(InputError, match=r"run3 \[postprocess.nms\]: 'soft', but .*hard-nms has 'hard'"):
        make_ensemble([hard, first], tmp_path / "e2")
    assert not (tmp_path / "e1").exists() and not (tmp_path / "e2").exists()
    assert "[postprocess.nms]" in averaging_refused([first, hard])
    # `--fusion auto` (the default) fuses their detections instead, each member with its own, and says why
    assert main(["ensemble", str(first), str(hard), "--out", str(tmp_path / "e3")]) == 0
    assert "fusing detections: " in capsys.readouterr().out
    assert RunDir(tmp_path / "e3").read_ensemble()["fusion"] == "detections"


@pytest.mark.slow
def test_train_with_seeds_under_torchrun_makes_the_ensemble_once(runs, tmp_path):
    # `torchrun --nproc_per_node 2 -m mgrec.cli train C --out E --seeds 2`: every process made the ensemble after
    # the seeds; the second failed on the first's lock, torchrun killed the first mid-write, and E was left
    # holding run.json without postprocess.json. Process 1 also said "2 seeds: no val split".
    import os
    import subprocess
    import sys

    from mgrec.config import save_config

    paths, _, _ = runs
    config = tmp_path / "c.yaml"
    save_config(config_for(paths, 7), config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "mgrec.cli", "train", str(config), "--out", str(tmp_path / "x"), "--seeds", "2", "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, timeout=300, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert RunDir(tmp_path / "x").read_ensemble()["members"] == 2
    assert RunDir(tmp_path / "x").postprocess_path.is_file()
    assert done.stdout.count("ensemble of 2 runs: val F1") == 1, done.stdout
    assert f"process 1: trained the 2 seeds; process 0 makes their ensemble {tmp_path / 'x'}" in done.stdout
    assert "no val split" not in done.stdout + done.stderr


@pytest.mark.parametrize(("run_dirs", "out", "log", "message"), [
    (None, "e", print, r"^run_dirs: expected a list of run directories, got None$"),
    (["a", 5], "e", print, r"^run_dirs\[1\]: expected a path \(str or pathlib.Path\), got 5$"),
    (["a", "b"], 5, print, r"^make_ensemble: out: expected a path \(str or pathlib.Path\), got 5$"),
    (["a", "b"], "e", "ensemble.log", r"^make_ensemble: log: expected a callable .*, got 'ensemble.log'$"),
])
def test_make_ensemble_names_an_argument_of_the_wrong_kind_before_any_work(tmp_path, run_dirs, out, log, message):
    # before: None and [.., 5] raw TypeErrors, out=5 pathlib's; log="x" taken, a TypeError at its first line (after the
    # ensemble's folder was made), or never a word where nothing was logged
    with pytest.raises(InputError, match=message):
        make_ensemble(run_dirs, out if out == 5 else tmp_path / out, log=log)
    assert not (tmp_path / "e").exists()


def test_an_ensemble_of_a_member_copied_without_its_splits_record_says_it_records_none(runs, tmp_path):
    # before: the ensemble's splits.json (what evaluate checks the scored videos against) was left out without a word
    _, _, (first, second) = runs
    copied = tmp_path / "copied"
    shutil.copytree(second, copied)
    (copied / "splits.json").unlink()
    lines = []
    make_ensemble([first, copied], tmp_path / "e", log=lines.append)
    assert (f"note: {copied} has no splits.json (the record of the videos it trained and validated on: a run started "
            "before mgrec wrote one, made from weights trained elsewhere, or copied without it): the ensemble records "
            "no splits.json either, so evaluate cannot check its scored videos against those its members trained on"
            in lines)
    assert not (tmp_path / "e" / "splits.json").exists()
    lines.clear()
    make_ensemble([first, second], tmp_path / "e2", log=lines.append)
    assert not any("splits.json" in line for line in lines)
    assert (tmp_path / "e2" / "splits.json").is_file()


@pytest.mark.parametrize("key", ["annotations", "features"])
def test_an_ensemble_of_a_member_whose_data_moved_is_refused_before_anything_is_written(runs, tmp_path, key):
    # before: the ensemble's folder was written (config, weights, splits.json), then tuning on val stopped on data
    # check's "config [data.annotations]: ... not found; give the annotations file: --set data.annotations=FILE",
    # an option mgrec ensemble does not take, the half-made ensemble left behind
    _, _, (first, second) = runs
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    config = RunDir(moved).read_config()
    recorded = str(getattr(config.data, key))
    (moved / "config.yaml").write_text((moved / "config.yaml").read_text().replace(recorded, f"/gone/{key}"))
    with pytest.raises(InputError) as error:
        make_ensemble([moved, second], tmp_path / "e", log=lambda *_: None)
    assert str(error.value) == (f"{moved / 'config.yaml'} [data.{key}]: /gone/{key} not found (moved or deleted since "
                                "the run was trained?); move it back, or record its new place in the run: mgrec train "
                                f"{moved / 'config.yaml'} --out {moved} --resume --set data.{key}=NEW")
    assert not (tmp_path / "e").exists()


def test_train_with_seeds_into_an_out_holding_their_ensemble_says_how_to_keep_the_seeds(runs, tmp_path, capsys):
    # every seed trained, then the ensemble killed (or failed) while it was written: the same command, with --resume
    # or without, said "choose another --out", which named new member folders and trained every seed again
    from mgrec.config import save_config

    paths, _, (first, second) = runs
    config = tmp_path / "c.yaml"
    save_config(config_for(paths, 7), config)
    shutil.copytree(first, tmp_path / "ens-seed7")
    shutil.copytree(second, tmp_path / "ens-seed8")
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "config.yaml").write_text("half written")
    for resume in ([], ["--resume"]):
        assert main(["train", str(config), "--out", str(tmp_path / "ens"), "--seeds", "2", *resume,
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert (f"{tmp_path / 'ens'} exists and is not empty (an ensemble killed or failed while it was written?), "
                "and 2 of the 2 seed runs of this command are there beside it (ens-seed7, ...); another --out would "
                f"train every seed again under its own name. To keep the seeds' runs, remove {tmp_path / 'ens'} and "
                f"give the same command{'' if resume else ' with --resume'} (it continues") in err, err
        assert (f"mgrec ensemble {tmp_path / 'ens-seed7'} {tmp_path / 'ens-seed8'} --out OTHER") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "ens", "ens-seed7", "ens-seed8"]


def test_train_with_seeds_resume_refuses_where_no_seed_has_an_epoch_and_says_which_start_over(runs, tmp_path, capsys):
    # `train --resume` of one run refuses a folder with nothing to resume; `--seeds N --resume` of a misspelt --out
    # trained every seed from scratch without a word, and one of the seeds that had kept no epoch, as silently
    from mgrec.config import save_config

    paths, _, (_, fourth) = runs
    config = tmp_path / "c.yaml"
    save_config(config_for(paths, 3), config)
    assert main(["train", str(config), "--out", str(tmp_path / "typo"), "--seeds", "2", "--resume",
                 "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"mgrec: error: --resume: none of the 2 seed runs of this command has an epoch to resume (no "
        f"checkpoints/last_state.pt in {tmp_path / 'typo-seed3'} nor the others): check --out and --set seed, or "
        "start without --resume\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    shutil.copytree(fourth, tmp_path / "ens-seed4")  # seed 4 finished; seed 3 never started
    assert main(["train", str(config), "--out", str(tmp_path / "ens"), "--seeds", "2", "--resume",
                 "--no-progress"]) in (0, None)
    out = capsys.readouterr().out
    assert f"seed 3: training into {tmp_path / 'ens-seed3'} (from its start: it kept no epoch to resume)\n" in out
    assert f"seed 4: training into {tmp_path / 'ens-seed4'}\n" in out
    assert RunDir(tmp_path / "ens").read_ensemble()["members"] == 2


def test_train_with_seeds_warns_of_the_warm_up_once_and_not_again_for_the_ensemble(runs, tmp_path, capsys):
    # the ensemble's threshold tuning said it once more, of OUT/config.yaml (a file nothing trains from), advising to
    # set config.train.warmup_epochs there after every seed had trained; and each seed said it again, the same words
    paths, _, _ = runs
    config = config_for(paths, 7)
    config.train.epochs = 1
    from mgrec.config import save_config

    save_config(config, tmp_path / "c.yaml")
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "x"), "--seeds", "2", "--no-progress"]) \
        in (0, None)
    captured = capsys.readouterr()
    warnings = [line for line in (captured.out + captured.err).splitlines()
                if "train.warmup_epochs 1 >= train.epochs 1" in line]
    assert len(warnings) == 1 and str(tmp_path / "c.yaml") in warnings[0], warnings


def test_train_with_seeds_refuses_a_later_members_name_taken_by_a_file_before_the_first_trains(runs, tmp_path, capsys):
    # x-seed8 a file: refused when its training began, after seed 7 had trained
    paths, _, _ = runs
    from mgrec.config import save_config

    save_config(config_for(paths, 7), tmp_path / "c.yaml")
    (tmp_path / "x-seed8").write_text("notes")
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "x"), "--seeds", "2", "--no-progress"]) == 2
    assert f"cannot write into {tmp_path / 'x-seed8'}: it is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "x-seed7").exists() and (tmp_path / "x-seed8").read_text() == "notes"
