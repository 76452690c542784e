"""The training loop end to end on tiny synthetic data: learning, resume, SIGKILL, DDP."""

import dataclasses
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._inductor.exc
from functorch.compile import make_boxed_func
from safetensors.torch import load_file
from tests.helpers import small_config
from torch._dynamo.backends.common import aot_autograd

from mgrec.config import (
    BalanceConfig,
    Config,
    PostprocessConfig,
    TrainConfig,
    TransformsConfig,
    save_config,
    validate,
)
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.run import RunDir
from mgrec.train.loop import _better_epoch, train
from mgrec.train.step import ema_decay_at, lr_factor


def tiny_config(paths, **train_overrides) -> Config:
    train_cfg = dict(epochs=4, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3, eval_every=2, ema_decay=0.9)
    train_cfg.update(train_overrides)
    return small_config(paths, seed=3, max_seq_len=128, train=TrainConfig(**train_cfg),
                        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    return make_synthetic_dataset(
        root,
        num_videos=4,
        num_classes=17,
        feature_dim=16,
        length=160,
        seed=0,
        subsets=("train", "train", "val", "test"),
    )


def test_schedules():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    # train.final_lr_fraction: the same cosine, ending at a floor; the warm-up is not moved
    assert lr_factor(100, 10, 100, final=0.3) == pytest.approx(0.3)
    assert lr_factor(55, 10, 100, final=0.3) == pytest.approx(0.65)
    assert lr_factor(9, 10, 100, final=0.3) == pytest.approx(1.0)
    assert lr_factor(0, 10, 100, final=0.3) == pytest.approx(0.1)
    # EMA warm-up: early steps follow the weights closely, later ones use the configured decay
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10**6, 0.999) == 0.999
    assert ema_decay_at(0, 0.999, warmup=3.0) == pytest.approx(0.25)


def averaged_step(steps: int, decay: float, warmup: float) -> float:
    """The moving average, after `steps` updates, of a parameter that equals the step number."""
    average = 0.0
    for step in range(steps):
        beta = ema_decay_at(step, decay, warmup)
        average = beta * average + (1.0 - beta) * step
    return average


@pytest.mark.parametrize("warmup", [3.0, 9.0])
def test_the_ema_warmup_alone_averages_a_short_run_as_a_power_of_the_step(warmup):
    # Weights about k**(warmup - 1): the average sits at warmup / (warmup + 1) of the run.
    steps = 720  # the demo's batch-1 run
    assert averaged_step(steps, 0.999, warmup) / steps == pytest.approx(warmup / (warmup + 1), abs=0.01)
    # A decay the warm-up stays below for the whole run changes nothing: with the default warm-up (9),
    # any decay from 0.99 up (the demo's base config has 0.99).
    lowest = 0.99 if warmup == 9.0 else 0.999
    assert averaged_step(steps, lowest, warmup) == averaged_step(steps, 0.9999, warmup)


@pytest.mark.slow
def test_overfits_one_video_to_perfect_f1(tmp_path):
    paths = make_synthetic_dataset(
        tmp_path / "data", num_videos=1, num_classes=17, feature_dim=16, length=128, seed=5, subsets=("train",)
    )
    config = tiny_config(paths, epochs=60, warmup_epochs=2, crops_per_video=4, eval_every=20, lr=5e-3)
    config.data.val_split = "train"  # learning one video by heart is the point here
    config.data.test_split = "train"
    result = train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    scores = evaluate_run(tmp_path / "run", split="train")
    assert scores["f1"] == pytest.approx(1.0), (result.best_metrics, scores["f1"])


def test_run_directory_contents_and_refusals(dataset, tmp_path):
    config = tiny_config(dataset, epochs=2, eval_every=1)
    run = tmp_path / "run"
    followed: list[dict] = []
    train(config, run, progress=False, log=lambda *_: None, on_metrics=followed.append)
    for name in (
        "config.yaml",
        "classes.json",
        "metrics.jsonl",
        "postprocess.json",
        "checkpoints/best.safetensors",
        "checkpoints/last.safetensors",
        "checkpoints/last_state.pt",
    ):
        assert (run / name).exists(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert sum('"kind": "val"' in line for line in lines) == 2
    # `on_metrics` is given each record of metrics.jsonl as it is written, in order, as numbers
    assert followed == [json.loads(line) for line in lines]
    assert [r["epoch"] for r in followed if r["kind"] == "val"] == [0, 1] and 0 <= followed[-1]["f1"] <= 1
    with pytest.raises(InputError, match="already holds a run"):
        train(config, run, progress=False, log=lambda *_: None)
    with pytest.raises(InputError, match="nothing to resume"):
        train(config, tmp_path / "other", resume=True, progress=False, log=lambda *_: None)
    # A finished run without its state file (copied without it, or an ensemble's member) is not a killed
    # start: a new training would have replaced its weights and tuning.
    (run / "checkpoints/last_state.pt").unlink()
    weights = (run / "checkpoints/best.safetensors").read_bytes()
    with pytest.raises(InputError, match="already holds a finished run"):
        train(config, run, progress=False, log=lambda *_: None)
    assert (run / "checkpoints/best.safetensors").read_bytes() == weights


def test_a_run_records_its_videos_and_is_not_scored_on_them_after_the_splits_are_redrawn(tmp_path):
    # The annotations were recorded by path only: redrawing their splits (`data convert --splits` into the same
    # file) made `evaluate` score the run on a video it trained on, without a word, and `--resume` train on others.
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=4, num_classes=3, feature_dim=16, length=160, seed=0,
                                   subsets=("train", "train", "val", "test"))
    config = tiny_config(paths, epochs=2)
    run = tmp_path / "run"
    train(config, run, progress=False, log=lambda *_: None)
    record = json.loads((run / "splits.json").read_text())
    labels = record.pop("labels")  # a hash of each video's labels: `--resume` goes on with the same ones
    # the annotations' full path where it was trained: no command's output may replace them, from any folder
    assert record.pop("annotations_resolved") == str(paths.annotations.resolve())
    assert record == {"annotations": str(paths.annotations), "train_split": "train",
                      "train": ["synthetic_000", "synthetic_001"], "val_split": "val", "val": ["synthetic_002"]}
    assert sorted(labels) == ["synthetic_000", "synthetic_001", "synthetic_002"]
    assert evaluate_run(run, device="cpu")["num_videos"] == 1
    from mgrec.report.html import write_report

    document = json.loads(paths.annotations.read_text())
    database = document["database"]
    database["synthetic_001"]["subset"], database["synthetic_003"]["subset"] = "test", "train"
    paths.annotations.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"1 video\(s\) of split 'test' are videos this run trained on "
                                         r"\('synthetic_001'; .*splits.json: split 'train' of .* when it trained\)"):
        evaluate_run(run, device="cpu")
    assert evaluate_run(run, split="train", device="cpu")["num_videos"] == 2  # its own training videos, asked for
    # a video it validated on (it chose the checkpoint and tuned the threshold) moved to test: scored without a word
    database["synthetic_001"]["subset"], database["synthetic_003"]["subset"] = "train", "val"
    database["synthetic_002"]["subset"] = "test"
    paths.annotations.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"1 video\(s\) of split 'test' are videos this run validated on \(they chose "
                                         r"its checkpoint and tuned its score threshold\) \('synthetic_002'; "
                                         r".*splits.json: split 'val' of .* when it validated\).*did not train or "
                                         r"validate on"):
        evaluate_run(run, device="cpu")
    with pytest.raises(InputError, match="are videos this run validated on"):
        write_report(run, split="test")
    database["synthetic_001"]["subset"], database["synthetic_003"]["subset"] = "test", "train"
    database["synthetic_002"]["subset"] = "val"
    paths.annotations.write_text(json.dumps(document))
    with pytest.raises(InputError, match="are videos this run trained on"):
        write_report(run, split="test")
    # a resumed run continues on the videos it started on
    with pytest.raises(InputError, match=r"--resume: split 'train' of .* is not the 2 videos the run started on "
                                         r"\(.*splits.json\): now also 'synthetic_003'; no longer 'synthetic_001'"):
        train(config, run, resume=True, progress=False, log=lambda *_: None)
    # a run started before format 14 has no record: resumed, it gets none from today's annotations (which are not
    # what it trained on), and is checked against the annotations as they are
    (run / "splits.json").unlink()
    train(config, run, resume=True, progress=False, log=lambda *_: None)
    assert not (run / "splits.json").exists()


def _stopped_after_its_first_epoch(tmp_path):
    """A run of 3 epochs on 4 synthetic videos (2 train, 1 val, 1 test), stopped after its first epoch's validation:
    (the dataset's paths, its config, the run's folder, its last_state.pt's bytes)."""
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=4, num_classes=3, feature_dim=16, length=160, seed=0,
                                   subsets=("train", "train", "val", "test"))
    config = tiny_config(paths, epochs=3)
    run = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_after_epoch_0(record):
        if record.get("kind") == "val" and record["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train(config, run, progress=False, log=lambda *_: None, on_metrics=stop_after_epoch_0)
    return paths, config, run, (run / "checkpoints/last_state.pt").read_bytes()


def test_a_resumed_run_goes_on_validating_on_the_videos_it_validated_on(tmp_path):
    # Only the training videos were compared on --resume: annotations whose val split was redrawn since (a val video
    # moved to test, a test video to val) resumed without a word; the best epoch was then chosen across two val sets,
    # the record still named the old one, and evaluate scored on test the video that had chosen the checkpoint.
    paths, config, run, state = _stopped_after_its_first_epoch(tmp_path)
    document = json.loads(paths.annotations.read_text())
    database = document["database"]
    database["synthetic_002"]["subset"], database["synthetic_003"]["subset"] = "test", "val"
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(document))
    moved = dataclasses.replace(config, data=dataclasses.replace(config.data, annotations=str(swapped)))
    with pytest.raises(InputError, match=r"--resume: split 'val' of .*swapped.json is not the 1 video the run "
                                         r"validated on \(its epochs so far were selected on them\) \(.*splits.json\): "
                                         r"now also 'synthetic_003'; no longer 'synthetic_002'; resume with the "
                                         "annotations it started with"):
        train(moved, run, resume=True, progress=False, log=lambda *_: None)
    assert (run / "checkpoints/last_state.pt").read_bytes() == state  # nothing trained
    # the annotations moved elsewhere, their splits as they were: resumed
    same = tmp_path / "same.json"
    same.write_text(paths.annotations.read_text())
    result = train(dataclasses.replace(config, data=dataclasses.replace(config.data, annotations=str(same))), run,
                   resume=True, progress=False, log=lambda *_: None)
    assert result.first_epoch == 1


def test_a_resumed_run_goes_on_training_on_the_labels_it_started_on(tmp_path):
    # Only the videos of each split were compared on --resume: annotations whose gestures were relabelled since (the
    # same videos and splits) resumed without a word, the later epochs trained on other labels than the first.
    paths, config, run, state = _stopped_after_its_first_epoch(tmp_path)
    original = paths.annotations.read_text()
    document = json.loads(original)
    names = document["classes"] if isinstance(document.get("classes"), list) else None
    for video in ("synthetic_001", "synthetic_002"):  # a training video's gesture, then a val video's, relabelled
        document = json.loads(original)
        gesture = document["database"][video]["annotations"][0]
        gesture["label_id"] = (gesture["label_id"] + 1) % 3
        if names:
            gesture["label"] = names[gesture["label_id"]]
        paths.annotations.write_text(json.dumps(document))
        with pytest.raises(InputError, match=rf"--resume: the labels of 1 video\(s\) in .* changed since the run "
                                             rf"started \('{video}'; .*splits.json holds a hash"):
            train(config, run, resume=True, progress=False, log=lambda *_: None)
        assert (run / "checkpoints/last_state.pt").read_bytes() == state  # nothing trained
    paths.annotations.write_text(original)
    assert train(config, run, resume=True, progress=False, log=lambda *_: None).first_epoch == 1


def test_training_into_an_ensemble_is_refused_and_leaves_it_whole(dataset, tmp_path):
    # An ensemble's folder has no last_state.pt: training took it for an empty one, replaced its weights,
    # dropped run.json's ensemble block and left its scores beside the new model.
    config = tiny_config(dataset, epochs=1)
    ensemble = RunDir(tmp_path / "ensemble")
    ensemble.write_for_inference(config, ["a"], torch.nn.Linear(2, 2), score_threshold=0.5)
    ensemble.write_format({"members": 2, "sources": ["run-a", "run-b"]})
    ensemble.write_eval("test", {"f1": 0.5})
    before = {path: path.read_bytes() for path in ensemble.path.rglob("*") if path.is_file() and path.name != ".lock"}
    with pytest.raises(InputError, match=r"ensemble already holds an ensemble of 2 run\(s\) made by mgrec ensemble"):
        train(config, ensemble.path, progress=False, log=lambda *_: None)
    with pytest.raises(InputError, match=r"--resume: .*last_state.pt not found, nothing to resume \(.*ensemble holds "
                                         r"an ensemble of 2 run\(s\) .*; choose another --out\)"):
        train(config, ensemble.path, resume=True, progress=False, log=lambda *_: None)
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(p for p in ensemble.path.rglob("*") if p.is_file() and p.name != ".lock") == sorted(before)


def test_cuda_request_without_cuda_is_a_clear_error(dataset, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tiny_config(dataset, device="cuda")
    with pytest.raises(InputError, match="no CUDA device"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)


def test_the_learning_rate_decays_to_final_lr_and_resumes_on_the_same_schedule(dataset, tmp_path):
    """train.final_lr_fraction reaches the optimiser: each epoch's logged rate is lr x lr_factor(step) with the floor,
    the last one the floor's; a run stopped after two epochs resumes on that schedule, not on one ending at 0."""
    config = tiny_config(dataset, final_lr_fraction=0.25)
    _train_epochs_then_stop(config, tmp_path / "run", stop_after=2)
    train(config, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)
    logged = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    trained = [record for record in logged if record["kind"] == "train"]
    steps_per_epoch = trained[0]["step"]
    total = steps_per_epoch * config.train.epochs
    assert [record["lr"] for record in trained] == pytest.approx(
        [3e-3 * lr_factor(record["step"], steps_per_epoch, total, 0.25) for record in trained])
    assert trained[-1]["lr"] == pytest.approx(0.25 * 3e-3)


def test_missing_annotations_are_said_before_a_batch_too_large_for_memory(dataset, tmp_path):
    """`mgrec train smg/mgrec.yaml` without SMG data here was refused for its batch of 16 x 2304 steps (more memory
    than the machine has) and, after a smaller batch, for its missing annotations: the data comes first."""
    config = tiny_config(dataset, batch_size=100_000)
    with pytest.raises(InputError, match="a training batch needs about"):  # the data there: memory is the refusal
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    config.data.annotations = str(tmp_path / "nowhere.json")
    with pytest.raises(InputError, match=rf"\[data.annotations\]: {tmp_path}/nowhere.json not found; give the "
                                         r"annotations file: --set data.annotations=FILE$"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_resume_matches_uninterrupted_run(dataset, tmp_path):
    full = tmp_path / "full"
    train(tiny_config(dataset), full, progress=False, log=lambda *_: None)
    # the same 4-epoch schedule, crashed after 2 checkpointed epochs, then resumed
    interrupted = tmp_path / "interrupted"
    config = tiny_config(dataset)
    _train_epochs_then_stop(config, interrupted, stop_after=2)
    resumed = train(config, interrupted, resume=True, progress=False, log=lambda *_: None)
    assert resumed.summary().startswith("finished epochs 2-3 (resumed) in ")
    again = train(config, interrupted, resume=True, progress=False, log=lambda *_: None)  # nothing left
    assert again.summary().startswith("finished all 4 epochs before (resumed: nothing left to train) in ")
    a = load_file(str(full / "checkpoints/last.safetensors"))
    b = load_file(str(interrupted / "checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_adaptive_balancing_and_crop_transforms_resume_exactly_and_log_what_the_balancer_did(dataset, tmp_path):
    def config():
        c = tiny_config(dataset)
        c.balance = BalanceConfig("adaptive")
        c.transforms = TransformsConfig(time_scale_prob=0.5, noise_prob=0.5, noise_std=0.1, channel_dropout_prob=0.5,
                                        paste_prob=0.5)
        return c

    full = tmp_path / "full"
    train(config(), full, progress=False, log=lambda *_: None)
    interrupted = tmp_path / "interrupted"
    _train_epochs_then_stop(config(), interrupted, stop_after=2)
    train(config(), interrupted, resume=True, progress=False, log=lambda *_: None)
    a = load_file(str(full / "checkpoints/last.safetensors"))
    b = load_file(str(interrupted / "checkpoints/last.safetensors"))
    assert all(torch.equal(a[key], b[key]) for key in a)
    records = [r for r in RunDir(full).read_metrics() if r["kind"] == "balance"]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3] and {r["method"] for r in records} == {"adaptive"}
    assert all(sum(r["crop_shares"]) == pytest.approx(1.0) for r in records)
    assert records[0]["crop_shares"] != records[-1]["crop_shares"]  # difficulty moved the weights
    resumed = [r for r in RunDir(interrupted).read_metrics() if r["kind"] == "balance"]
    assert [r["crop_shares"] for r in resumed] == [r["crop_shares"] for r in records]


def _train_epochs_then_stop(config, run, stop_after):
    """Run the loop but stop (as a crash would) once `stop_after` epochs are checkpointed."""

    class Stop(Exception):
        pass

    original = RunDir.write_training_state
    saved = []

    def save_then_maybe_stop(self, state):
        original(self, state)
        saved.append(state["epoch"])
        if len(saved) == stop_after:
            raise Stop

    RunDir.write_training_state = save_then_maybe_stop
    try:
        with pytest.raises(Stop):
            train(config, run, progress=False, log=lambda *_: None)
    finally:
        RunDir.write_training_state = original


def _cli(*args):
    return [sys.executable, "-m", "mgrec.cli", *map(str, args)]


def _metric_lines(run):
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_same_weights(dataset, tmp_path):
    config = tiny_config(dataset, epochs=16, eval_every=4)
    config_path = tmp_path / "config.yaml"
    save_config(config, config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(
        _cli("train", config_path, "--out", reference, "--no-progress"), check=True, env=env, capture_output=True
    )

    run = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for _ in range(20):
        resume = ["--resume"] if (run / "checkpoints" / "last_state.pt").exists() else []
        before = _metric_lines(run)
        proc = subprocess.Popen(
            _cli("train", config_path, "--out", run, "--no-progress", *resume),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if kills < 3:
            # kill at a random moment once this attempt has made progress (mid-epoch, mid-save, ...)
            while proc.poll() is None and _metric_lines(run) <= before:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err.decode()
    else:
        pytest.fail("training never finished")
    assert kills >= 2
    a = load_file(str(reference / "checkpoints/last.safetensors"))
    b = load_file(str(run / "checkpoints/last.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not list((run / "checkpoints").glob(".*.tmp")), "a temporary file was left behind"


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(dataset, tmp_path):
    # no input noise or drop path: those draw random numbers per sample, which ranks draw differently
    config = tiny_config(dataset, epochs=2, eval_every=2, batch_size=2)
    config_path = tmp_path / "config.yaml"
    save_config(config, config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single", tmp_path / "ddp"
    subprocess.run(
        _cli("train", config_path, "--out", single, "--no-progress"), check=True, env=env, capture_output=True
    )
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mgrec.cli",
        "train",
        str(config_path),
        "--out",
        str(double),
        "--no-progress",
    ]
    done = subprocess.run(torchrun, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    a = load_file(str(single / "checkpoints/last.safetensors"))
    b = load_file(str(double / "checkpoints/last.safetensors"))
    for key in a:
        # same global batch, gradients summed in another order: equal up to float rounding
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-4, atol=1e-5, err_msg=key)


def test_a_non_finite_loss_stops_training_before_the_weights_change(dataset, tmp_path, monkeypatch):
    from mgrec.train.losses import DetectionLoss

    config = tiny_config(dataset, epochs=2, eval_every=1)
    computed = DetectionLoss.__call__

    def nan_loss(self, *args, **kwargs):  # the loss is NaN from the first step (a NaN setting is refused first)
        parts = computed(self, *args, **kwargs)
        return parts._replace(total=parts.total * float("nan"))

    monkeypatch.setattr(DetectionLoss, "__call__", nan_loss)
    with pytest.raises(InputError, match=r"training stopped at step 0: the loss is nan"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()  # nothing committed, no NaN checkpoint


class FakeSummaryWriter:
    """Stands in for torch.utils.tensorboard.SummaryWriter (tensorboard is an optional extra)."""

    instances: list = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
        FakeSummaryWriter.instances.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def close(self):
        self.closed = True


def test_one_line_per_epoch_beside_the_bar_in_percent_with_tensorboard_and_a_summary(dataset, tmp_path, capsys,
                                                                                      monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeSummaryWriter))
    FakeSummaryWriter.instances.clear()
    run = tmp_path / "run"
    # lines go to stderr, where the bar is: as in a terminal, or `2>&1` into one file
    result = train(tiny_config(dataset, epochs=3, eval_every=2), run, progress=True,
                   log=lambda line: print(line, file=sys.stderr))
    err = capsys.readouterr().err
    lines = err.split("\n")
    assert any("step" in line and "\r" in line for line in lines), "a progress bar was drawn"
    # each printed line starts on a cleared line: a bar frame is erased ("\r   \r") before it, never glued to it
    printed = [line.split("\r")[-1] for line in lines]
    epoch_lines = [line for line in printed if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["0", "1", "2"]  # one per epoch, numbered as stored
    # (an epoch line glued to a bar frame; other lines may name an epoch: "epoch 0 is kept ...")
    assert not any("epoch " in line and "  loss " in line and not line.startswith("epoch ") for line in printed)
    for line in epoch_lines:
        assert all(part in line for part in ("loss ", "(cls ", ", reg ", "lr ", " s")), line
    validated = [line for line in epoch_lines if "| val " in line]
    assert [line.split()[1] for line in validated] == ["1", "2"]  # eval_every=2, and the last epoch

    records = RunDir(run).read_metrics()
    val = [r for r in records if r["kind"] == "val"]
    for line, record in zip(validated, val):
        assert 0 <= record["f1"] <= 1  # the file keeps fractions; the line prints percent
        assert f"val F1 {100 * record['f1']:.2f}%" in line and f"average mAP {100 * record['average_mAP']:.2f}%" in line
    train_loss = [r for r in records if r["kind"] == "train"][0]
    assert f"loss {train_loss['loss']:.4f} (cls {train_loss['cls_loss']:.4f}" in epoch_lines[0]

    (writer,) = FakeSummaryWriter.instances
    assert writer.closed and writer.log_dir == str(run / "tensorboard")
    assert f"TensorBoard: tensorboard --logdir {run / 'tensorboard'}" in printed
    tags = {tag for tag, _, _ in writer.scalars}
    assert {"train/loss", "train/cls_loss", "train/reg_loss", "train/lr", "val/f1", "val/average_mAP"} <= tags
    assert all(0 <= value <= 1 for tag, value, _ in writer.scalars if tag == "val/f1")

    summary = result.summary().splitlines()
    best = result.best_metrics
    assert summary[0].startswith("finished 3 epochs in ")
    assert summary[1] == (
        f"selected epoch {result.best_epoch} by val f1: F1 {100 * best['f1']:.2f}%, F1 (MiGA rule) "
        f"{100 * best['f1_miga']:.2f}%, average mAP {100 * best['average_mAP']:.2f}% at score threshold "
        f"{best['score_threshold']:.4g} (tuned on val)"
    )
    assert summary[2:] == [f"run directory: {run}",
                           f"next: mgrec evaluate {run} (test scores), then mgrec report {run}"]


def test_a_training_that_stops_erases_its_bar_before_the_error_and_closes_its_tensorboard_log(dataset, tmp_path,
                                                                                               capsys, monkeypatch):
    # The bar and the TensorBoard writer were closed only after the last epoch: a training stopped by an error (here a
    # NaN loss at step 2) or Ctrl-C left the bar's last frame on the line, and `mgrec: error: ...` was printed glued
    # to it ("...lr=3.00e-03]mgrec: error: training stopped"); the TensorBoard events were never flushed.
    import types

    from mgrec.train.losses import DetectionLoss

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeSummaryWriter))
    FakeSummaryWriter.instances.clear()
    computed, calls = DetectionLoss.__call__, []

    def nan_at_the_third_step(self, *args, **kwargs):
        parts = computed(self, *args, **kwargs)
        calls.append(None)
        return parts._replace(total=parts.total * float("nan")) if len(calls) == 3 else parts

    monkeypatch.setattr(DetectionLoss, "__call__", nan_at_the_third_step)
    try:
        train(tiny_config(dataset, epochs=3, eval_every=2), tmp_path / "run", progress=True, log=lambda *_: None)
    except InputError as exc:  # printed as the CLI prints it, while the training's frames are still alive
        print(f"mgrec: error: {exc}", file=sys.stderr)
    err = capsys.readouterr().err
    before, error = err.split("mgrec: error: ")
    assert "step/s" in before, "a progress bar was drawn"
    assert before.endswith("\r") and before.split("\r")[-2].strip() == "", "the error is printed on a cleared line"
    assert error.startswith("training stopped at step 2: the loss is nan")
    (writer,) = FakeSummaryWriter.instances
    assert writer.closed and [tag for tag, _, _ in writer.scalars].count("train/loss") == 2  # epochs 0 and 1


def test_a_resumed_training_s_tensorboard_log_drops_the_steps_it_redoes(tmp_path, monkeypatch):
    # killed after epoch 1's metrics but before its checkpoint, the run redoes epoch 1: its scalars were logged twice
    # at the same step, and TensorBoard drew the epoch twice (metrics.jsonl dropped the first, `keep_metrics_before`)
    import types

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeSummaryWriter))
    FakeSummaryWriter.instances.clear()
    _, config, run, _ = _stopped_after_its_first_epoch(tmp_path)
    (first,) = FakeSummaryWriter.instances
    assert first.purge_step == 1  # a fresh start: an earlier start's events (none here) all hidden
    state_step = RunDir(run).read_training_state()["step"]  # epoch 0's end, where the resume goes on from
    logged = {(tag, step) for tag, _, step in first.scalars}
    assert ("train/loss", state_step) in logged and ("train/loss", 2 * state_step) in logged  # epochs 0 and 1
    train(config, run, resume=True, progress=False, log=lambda *_: None)
    second = FakeSummaryWriter.instances[-1]
    assert second.purge_step == state_step + 1  # the first step of the redone epoch 1
    kept = sorted(step for tag, _, step in first.scalars if tag == "train/loss" and step < second.purge_step)
    redone = sorted(step for tag, _, step in second.scalars if tag == "train/loss")
    assert kept + redone == [state_step, 2 * state_step, 3 * state_step]  # each epoch once in the curves
    assert min(step for _, _, step in second.scalars) >= second.purge_step


def test_a_training_whose_val_never_scored_above_zero_says_its_selection_means_nothing(dataset, tmp_path,
                                                                                       monkeypatch):
    # every validation at F1 0 and mAP 0 kept the first validated epoch (the tie rule) and the summary read as a
    # selection ("selected epoch 0 by val f1: F1 0.00%"), without a word
    import mgrec.train.loop as loop

    real, calls = loop.validate, []
    scored: dict = {}  # the n-th validation's scores, where not all 0

    def validate(*args, **kwargs):
        result, ranked = real(*args, **kwargs)
        calls.append(None)
        return {**result, **scored.get(len(calls), {"f1": 0.0, "f1_miga": 0.0, "average_mAP": 0.0})}, ranked

    monkeypatch.setattr(loop, "validate", validate)
    lines: list[str] = []
    train(tiny_config(dataset, epochs=2, warmup_epochs=0, eval_every=1), tmp_path / "zero", log=lines.append)
    (warning,) = [line for line in lines if "never scored above 0" in line]
    assert warning.startswith("warning: val never scored above 0 (F1 0 and average mAP 0 at each of its 2 validations, "
                              "epochs 0, 1): no detection matched a gesture of its one video; epoch 0 is kept only as "
                              "the first of equal zeros, so the selection and the score threshold tuned on val mean "
                              "nothing. Check for too few epochs to learn (train.epochs 2, train.warmup_epochs 0), the "
                              "data (`mgrec data check`")
    assert "postprocess.pre_nms_thresh 0.001" in warning
    # one validation above 0 (mAP alone): the selection means something, nothing said
    calls.clear()
    scored[2] = {"f1": 0.0, "f1_miga": 0.0, "average_mAP": 0.1}
    lines.clear()
    train(tiny_config(dataset, epochs=2, warmup_epochs=0, eval_every=1), tmp_path / "some", log=lines.append)
    assert not any("never scored above 0" in line for line in lines)


def test_train_command_prints_plain_lines_when_the_output_is_not_a_terminal(dataset, tmp_path, capsys):
    from mgrec.cli import main

    config_path = tmp_path / "config.yaml"
    save_config(tiny_config(dataset, epochs=2, eval_every=2), config_path)
    assert main(["train", str(config_path), "--out", str(tmp_path / "run")]) == 0  # no --no-progress
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err and "step/s" not in captured.err  # no bar in a log file
    lines = captured.out.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["0", "1"]
    assert any(line.startswith("finished 2 epochs in ") for line in lines)
    assert any(line.startswith("selected epoch 1 by val f1: F1 ") and line.count("%") == 3 for line in lines)


def test_the_plan_line_numbers_one_epoch_as_one_and_several_as_a_range(dataset, tmp_path):
    # a 1-epoch trial run said "epochs are numbered 0-0"
    lines = []
    train(tiny_config(dataset, epochs=1, warmup_epochs=0, eval_every=1), tmp_path / "one", log=lines.append)
    (plan,) = [line for line in lines if line.startswith("training ")]
    assert "validating on 1 video; 1 epoch x " in plan  # the count was bare: "validating on 1; "
    assert "; the epoch is numbered 0, as in metrics.jsonl; scores printed in percent" in plan
    assert "0-0" not in plan
    lines.clear()
    train(tiny_config(dataset, epochs=2, warmup_epochs=0, eval_every=2), tmp_path / "two", log=lines.append)
    (plan,) = [line for line in lines if line.startswith("training ")]
    assert "; 2 epochs x " in plan and "; epochs are numbered 0-1, as in metrics.jsonl;" in plan


def test_a_training_stopped_by_ctrl_c_or_sigterm_says_that_resume_continues_it(dataset, tmp_path, capsys,
                                                                                 monkeypatch):
    """A training stopped by Ctrl-C (or a scheduler's SIGTERM) said 'mgrec: interrupted' and nothing of the epochs it
    kept: a user trained again from scratch. Where a run keeps a complete epoch, the line now says --resume continues
    it; before its first checkpoint it says nothing more."""
    import mgrec.train.ensemble
    import mgrec.train.loop
    from mgrec.cli import Terminated, main

    config_path = tmp_path / "config.yaml"
    save_config(tiny_config(dataset), config_path)
    out = tmp_path / "run"

    def stopped(config, run_dir, **kwargs):
        if checkpointed:
            RunDir(run_dir).checkpoints_dir.mkdir(parents=True, exist_ok=True)
            RunDir(run_dir).state_path.write_bytes(b"state")
        raise stop()

    monkeypatch.setattr(mgrec.train.loop, "train", stopped)
    for checkpointed, stop, code, said in [(False, KeyboardInterrupt, 130, "interrupted"),
                                           (True, KeyboardInterrupt, 130, "interrupted"),
                                           (True, Terminated, 143, "terminated")]:
        assert main(["train", str(config_path), "--out", str(out)]) == code
        err = capsys.readouterr().err
        resume = "; the run keeps its last complete epoch: the same command with --resume continues it\n"
        assert err == f"mgrec: {said}{resume if checkpointed else chr(10)}"

    def seeds_stopped(config_path, overrides, out, count, **kwargs):  # the second seed's run (seed 4) kept an epoch
        RunDir(out.with_name(f"{out.name}-seed4")).checkpoints_dir.mkdir(parents=True)
        RunDir(out.with_name(f"{out.name}-seed4")).state_path.write_bytes(b"state")
        raise KeyboardInterrupt

    monkeypatch.setattr(mgrec.train.ensemble, "train_seeds", seeds_stopped)
    assert main(["train", str(config_path), "--out", str(tmp_path / "seeds"), "--seeds", "2"]) == 130
    assert capsys.readouterr().err == ("mgrec: interrupted; the seeds' runs keep their last complete epochs: the same "
                                       "command with --resume continues them\n")


def test_tensorboard_is_an_extra():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert any(req.startswith("tensorboard") for req in pyproject["project"]["optional-dependencies"]["tensorboard"])


def test_summary_without_val_and_on_other_ranks():
    from mgrec.train.loop import TrainResult

    no_val = TrainResult(Path("r"), 19, {"score_threshold": 0.25}, 75.0, epochs=20)
    assert no_val.summary(next_steps=False).splitlines() == [
        "finished 20 epochs in 1 min 15 s (3.8 s per epoch)",
        "no val split: kept the last epoch (19) and the configured score threshold 0.25",
        "run directory: r",
    ]
    other = TrainResult(Path("r"), -1, {}, 3725.0, epochs=20, rank=1)
    assert other.summary() == "process 1: finished 20 epochs in 1 h 02 min (3 min 06 s per epoch); " \
        "process 0 wrote the run directory r"


def test_a_fresh_start_after_a_crash_begins_a_new_metrics_log(dataset, tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_format()
    run.append_metrics({"kind": "train", "epoch": 0, "loss": 9.0, "stale": True})  # never checkpointed
    (run.path / ".config.yaml.999999999.x.tmp").write_text("half")  # a writer killed mid-write
    # a writer still at work beside the training (an evaluate, a report): its file is not the training's to remove
    at_work = run.path / f".report_test.html.{os.getpid()}.abcd.tmp"
    at_work.write_text("being written")
    train(tiny_config(dataset, epochs=2, eval_every=2), run.path, progress=False, log=lambda *_: None)
    records = run.read_metrics()
    assert [r["epoch"] for r in records if r["kind"] == "train"] == [0, 1]
    assert not any(r.get("stale") for r in records)
    assert list(run.path.glob(".*.tmp")) == [at_work]


def test_a_fresh_start_after_a_crash_keeps_no_file_of_the_earlier_start_that_it_does_not_write(dataset, tmp_path):
    # A fresh start in the folder of a start that never checkpointed removed only its metrics log: a file the new start
    # does not write stayed as the run's own. Its features now without sidecars, the earlier features' recipe stayed
    # in feature_recipe.json (what detect extracts a raw video with, and `--resume` checks features against), and the
    # earlier start's second-opinion classifier stayed beside a run that has none (copied into its ensembles).
    class Stop(Exception):
        pass

    def stop_before_the_first_checkpoint(record):
        if record["kind"] == "train":
            raise Stop

    run = RunDir(tmp_path / "run")
    earlier = tiny_config(dataset, epochs=2, eval_every=2)
    earlier.postprocess = dataclasses.replace(earlier.postprocess, second_opinion=0.5)
    with pytest.raises(Stop):
        train(earlier, run.path, progress=False, log=lambda *_: None, on_metrics=stop_before_the_first_checkpoint)
    assert run.recipe_path.is_file() and run.second_opinion_path.is_file() and not run.has_training()
    bare = tmp_path / "bare"  # the same features, without their sidecars
    bare.mkdir()
    for path in Path(earlier.data.features).glob("*.npy"):
        shutil.copy(path, bare / path.name)
    config = tiny_config(dataset, epochs=1)
    config.data = dataclasses.replace(config.data, features=str(bare))
    train(config, run.path, progress=False, log=lambda *_: None)
    assert not run.recipe_path.exists() and not run.second_opinion_path.exists()
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == ["best.safetensors", "last.safetensors",
                                                                       "last_state.pt"]


@pytest.mark.slow
def test_a_training_killed_at_every_fsync_resumes_to_the_weights_of_the_uninterrupted_run(dataset, tmp_path,
                                                                                         monkeypatch):
    """Every point where a write is made durable is a point where a kill can land: kill the run
    there (each in turn), then resume (or start again when nothing was committed): the end is the
    same as a run never killed."""
    import os

    config = tiny_config(dataset, epochs=2, eval_every=1)
    quiet = {"progress": False, "log": lambda *_: None}
    real_fsync = os.fsync
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    train(config, tmp_path / "full", **quiet)
    monkeypatch.setattr(os, "fsync", real_fsync)
    expected = load_file(str(tmp_path / "full" / "checkpoints" / "last.safetensors"))

    class Killed(BaseException):  # not an Exception: nothing on the way may catch it
        pass

    for k in range(len(calls)):
        count = 0

        def killing(fd, k=k):
            nonlocal count
            count += 1
            if count > k:
                raise Killed
            real_fsync(fd)

        run = RunDir(tmp_path / f"killed_at_{k}")
        monkeypatch.setattr(os, "fsync", killing)
        with pytest.raises(Killed):
            train(config, run.path, **quiet)
        monkeypatch.setattr(os, "fsync", real_fsync)
        train(config, run.path, resume=run.can_resume(), **quiet)
        got = load_file(str(run.weights_path("last")))
        assert got.keys() == expected.keys() and all(torch.equal(got[key], expected[key]) for key in got), k


def test_resume_refuses_a_config_that_differs_from_the_run_s(dataset, tmp_path, monkeypatch):
    config = tiny_config(dataset, epochs=2, eval_every=2)
    _train_epochs_then_stop(config, tmp_path / "run", stop_after=1)
    longer = tiny_config(dataset, epochs=3, eval_every=2)
    with pytest.raises(InputError, match=r"--resume: the config differs from .*config.yaml \(train.epochs: 2 in the "
                                         r"run, 3 now\)"):
        train(longer, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)
    moved = tiny_config(dataset, epochs=2, eval_every=2)
    moved.train.device = "cpu"  # where it trains may change, and whether its steps are compiled
    moved.train.compile = True
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda network, **options: real_compile(network, backend="eager", **options))
    train(moved, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)
    assert RunDir(tmp_path / "run").read_config().train.compile


def test_resume_refuses_features_moved_to_a_folder_of_another_recipe(dataset, tmp_path):
    # data.features may move between resumes; features made another way were trained on for the later epochs,
    # and the run's recipe silently rewritten to theirs
    config = tiny_config(dataset, epochs=2, eval_every=2)
    _train_epochs_then_stop(config, tmp_path / "run", stop_after=1)
    recipe = (tmp_path / "run" / "feature_recipe.json").read_text()
    other = Path(shutil.copytree(config.data.features, tmp_path / "other"))
    for side in other.glob("*.json"):
        side.write_text(json.dumps({**json.loads(side.read_text()), "backbone": "another-backbone"}))
    moved = tiny_config(dataset, epochs=2, eval_every=2)
    moved.data.features = str(other)
    with pytest.raises(InputError, match=r"--resume: .*other/.*\.json: these features were made with another recipe "
                                         r"than .* trained on .*backbone 'another-backbone'.*data.features may move"):
        train(moved, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)
    assert (tmp_path / "run" / "feature_recipe.json").read_text() == recipe
    moved.data.features = str(Path(shutil.copytree(config.data.features, tmp_path / "same")))  # moved, same recipe
    train(moved, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)


def test_resume_refuses_annotations_that_list_the_classes_in_another_order(dataset, tmp_path):
    # data.annotations may move between resumes; one with the classes reordered trained the later epochs on other
    # labels and rewrote classes.json, exit 0
    config = tiny_config(dataset, epochs=2, eval_every=2)
    _train_epochs_then_stop(config, tmp_path / "run", stop_after=1)
    classes = (tmp_path / "run" / "classes.json").read_text()
    document = json.loads(Path(config.data.annotations).read_text())
    order = document["classes"][::-1]
    document["classes"] = order
    for entry in document["database"].values():
        for instance in entry["annotations"]:
            instance["label_id"] = order.index(instance["label"])
    reordered = tmp_path / "reordered.json"
    reordered.write_text(json.dumps(document))
    moved = tiny_config(dataset, epochs=2, eval_every=2)
    moved.data.annotations = str(reordered)
    with pytest.raises(InputError, match=r"--resume: .*reordered.json lists other classes than .*classes.json \(first "
                                         r"difference at id 0"):
        train(moved, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)
    assert (tmp_path / "run" / "classes.json").read_text() == classes


def test_resume_refuses_a_config_yaml_edited_after_the_training_started(dataset, tmp_path):
    """The run's config.yaml was the only record: editing epochs 2 -> 4 there and resuming restarted the
    learning-rate schedule on a 4-epoch curve, a run of neither length."""
    config = tiny_config(dataset, epochs=2, eval_every=2)
    _train_epochs_then_stop(config, tmp_path / "run", stop_after=1)
    run = RunDir(tmp_path / "run")
    edited = tiny_config(dataset, epochs=4, eval_every=2)
    run.write_config(edited)
    with pytest.raises(InputError, match=r"--resume: the config differs from the config .*last_state.pt was trained "
                                         r"with \(train.epochs: 2 in the run, 4 now\); .*config.yaml was edited"):
        train(edited, run.path, resume=True, progress=False, log=lambda *_: None)


def test_resuming_a_finished_run_checks_the_checkpoints_it_reports_done(dataset, tmp_path):
    config = tiny_config(dataset, epochs=1, eval_every=1)
    train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    best = tmp_path / "run" / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:100])
    with pytest.raises(InputError, match=r"--resume: .*run finished training, but checkpoint .*best.safetensors is "
                                         "not a readable safetensors file"):
        train(config, tmp_path / "run", resume=True, progress=False, log=lambda *_: None)


def test_select_checkpoint_last_keeps_the_last_epoch_with_its_val_threshold(dataset, tmp_path):
    config = tiny_config(dataset, epochs=3, eval_every=1, select_checkpoint="last")
    run = tmp_path / "run"
    result = train(config, run, progress=False, log=lambda *_: None)
    last_val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                if '"kind": "val"' in line][-1]
    tuning = json.loads((run / "postprocess.json").read_text())
    assert tuning["selected_epoch"] == last_val["epoch"] == 2
    assert tuning["score_threshold"] == last_val["score_threshold"]
    best = load_file(str(run / "checkpoints/best.safetensors"))
    last = load_file(str(run / "checkpoints/last.safetensors"))
    assert best.keys() == last.keys() and all(torch.equal(best[k], last[k]) for k in best)
    assert "kept the last epoch (2), val F1 " in result.summary()
    with pytest.raises(InputError, match=r"\[train.select_checkpoint\]: expected one of best, last, got 'newest'"):
        validate(dataclasses.replace(config, train=dataclasses.replace(config.train, select_checkpoint="newest")),
                 "config.yaml")


def test_an_epoch_tied_in_the_select_metric_is_kept_for_a_higher_tie_break_metric():
    best = {"epoch": 4, "value": 1.0, "metrics": {"f1": 1.0, "average_mAP": 0.8375}}
    assert _better_epoch("f1", {"f1": 1.0, "average_mAP": 1.0}, best)
    assert not _better_epoch("f1", {"f1": 1.0, "average_mAP": 0.8375}, best)  # both tie: the earlier stays
    assert not _better_epoch("f1", {"f1": 0.99, "average_mAP": 1.0}, best)  # F1 first, whatever the mAP
    by_map = {"epoch": 4, "value": 0.8, "metrics": {"f1": 0.7, "average_mAP": 0.8}}
    assert _better_epoch("average_mAP", {"f1": 0.75, "average_mAP": 0.8}, by_map)
    first = {"epoch": -1, "value": -math.inf, "metrics": {}}  # before the first validation
    assert _better_epoch("f1", {"f1": 0.0, "average_mAP": 0.0}, first)


def test_training_keeps_the_tied_epoch_of_higher_map(dataset, tmp_path, monkeypatch):
    # Three validations that tie in F1, as small val sets do; the second has the highest mAP.
    scripted = iter([(1.0, 0.80), (1.0, 0.95), (1.0, 0.90)])

    def scripted_validate(model, split, config, classes, second_opinion=None):
        f1, average_map = next(scripted)
        return {"f1": f1, "precision": f1, "recall": f1, "f1_miga": f1, "average_mAP": average_map,
                "score_threshold": 0.3, "class_thresholds": None}, {}

    monkeypatch.setattr("mgrec.train.loop.validate", scripted_validate)
    result = train(tiny_config(dataset, epochs=3, eval_every=1), tmp_path / "run", progress=False,
                   log=lambda *_: None)
    assert result.best_epoch == 1 and result.best_metrics["average_mAP"] == 0.95
    assert json.loads((tmp_path / "run" / "postprocess.json").read_text())["selected_epoch"] == 1


@pytest.mark.slow
def test_a_compiled_training_trains_the_weights_of_the_eager_one(dataset, tmp_path):
    # train.compile runs the steps through torch.compile's network (inductor), which fuses the same
    # arithmetic in another order: the weights agree to float rounding, drop path included (the compiled
    # graph takes the random draws eager takes), and its first step checked it against the network itself.
    def with_drop_path(config):
        return dataclasses.replace(config, model=dataclasses.replace(config.model, drop_path=0.3))

    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train(with_drop_path(tiny_config(dataset)), eager, progress=False, log=lambda *_: None)
    said = []
    train(with_drop_path(tiny_config(dataset, compile=True)), compiled, progress=False,
          log=lambda *args: said.append(str(args[0])))
    assert any("the first step compiles the network" in line for line in said)  # not a silent wait of minutes
    assert RunDir(compiled).read_config().train.compile
    a = load_file(str(eager / "checkpoints/last.safetensors"))
    b = load_file(str(compiled / "checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=key)
    assert any(not torch.equal(a[key], b[key]) for key in a), "the compiled network was not used"


def test_a_network_that_cannot_be_compiled_stops_training_with_what_to_do(dataset, tmp_path, monkeypatch):
    def no_compiler(graph, example_inputs):  # as inductor fails on a machine without g++
        raise RuntimeError("Compiler: g++ not found")

    real_compile, options_given = torch.compile, []

    def compile_with(backend):
        def compile(network, **options):
            options_given.append(options)
            stand_in_takes = {k: v for k, v in options.items() if k != "options"}  # not inductor's settings
            return real_compile(network, backend=backend, **stand_in_takes)
        return compile

    monkeypatch.setattr(torch, "compile", compile_with(no_compiler))
    with pytest.raises(InputError, match=r"compiling the network for training failed \(RuntimeError: Compiler: g\+\+ "
                                         r"not found\); torch.compile needs a working C\+\+ compiler \(g\+\+\) on "
                                         r"CPU: install one, or set train.compile: false"):
        train(tiny_config(dataset, compile=True), tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()
    # one fixed crop shape: compiled once per run; drop path's random draws as eager makes them
    assert options_given == [{"dynamic": False, "options": {"fallback_random": True}}]

    # the backward graph compiles at the first backward pass, after a forward pass that worked
    def backward_fails(graph, example_inputs):
        raise torch._inductor.exc.InductorError(RuntimeError("Compiler: g++ not found"), None)

    forward_as_traced = aot_autograd(fw_compiler=lambda gm, _: make_boxed_func(gm.forward), bw_compiler=backward_fails)
    monkeypatch.setattr(torch, "compile", compile_with(forward_as_traced))
    with pytest.raises(InputError, match=r"compiling the network for training failed \(RuntimeError: Compiler: g\+\+ "
                                         r"not found\); torch.compile needs"):
        train(tiny_config(dataset, compile=True), tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()


def test_train_in_python_draws_a_bar_only_where_stderr_is_a_terminal(dataset, tmp_path, capsys):
    # train(config, run, log=lambda line: None) in a script or notebook cell whose output is captured wrote a
    # tqdm frame per step into it; the command line already asked for a terminal
    train(tiny_config(dataset, epochs=1, eval_every=1), tmp_path / "quiet", log=lambda *_: None)
    assert "step" not in capsys.readouterr().err
    train(tiny_config(dataset, epochs=1, eval_every=1), tmp_path / "asked", log=lambda *_: None, progress=True)
    assert "step" in capsys.readouterr().err


def test_train_builds_float32_networks_with_gradients_whatever_the_caller_set(dataset, tmp_path):
    # torch.set_default_dtype(torch.float64) trained float64 weights that every later load refused; with
    # torch.set_grad_enabled(False) the first backward pass raised a raw error after the run folder was written
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    try:
        train(tiny_config(dataset, epochs=1, eval_every=1), tmp_path / "run", progress=False, log=lambda *_: None)
        assert torch.get_default_dtype() == torch.float64 and not torch.is_grad_enabled()  # the caller's, given back
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_grad_enabled(True)
    weights = load_file(str(tmp_path / "run" / "checkpoints" / "last.safetensors"))
    assert {tensor.dtype for tensor in weights.values() if tensor.is_floating_point()} == {torch.float32}


def test_a_network_compiled_wrong_stops_training_before_its_first_step(dataset, tmp_path, monkeypatch):
    # torch.compile mis-compiled a gated two-stream network without an error (streaming saw logits 1.34 apart);
    # a training through such a graph learns other weights, so the first step checks it against the network
    from mgrec.model.detector import DetectorOutput

    def miscompile(network, **options):
        def run(features, mask):
            out = network(features, mask)
            return DetectorOutput([c * 1.5 for c in out.cls_logits], out.offsets, out.masks, out.strides)
        return run

    monkeypatch.setattr(torch, "compile", miscompile)
    with pytest.raises(InputError, match=r"the compiled network disagrees with the network itself on the first "
                                         r"training crop: logits up to .* apart .*set train.compile: false"):
        train(tiny_config(dataset, compile=True), tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()


@pytest.mark.parametrize("override", [
    "model.embed_dim=100000", "model.mlp_dim=1000000000", "model.head_dim=1000000000", "model.kernel_expansion=1e9",
    "model.head_layers=100000", "model.stem_layers=100000", "train.crops_per_video=1000000000",
    "seed=9223372036854775807",
])
def test_sizes_that_cannot_fit_are_refused_before_the_run_folder_exists(dataset, tmp_path, capsys, override):
    # each built (or hung building) the network, or drew crops, after the run folder was written
    from mgrec.cli import main

    config_path = tmp_path / "config.yaml"
    save_config(tiny_config(dataset), config_path)
    started = time.monotonic()
    code = main(["train", str(config_path), "--out", str(tmp_path / "run"), "--set", "train.device=cpu", "--set",
                 override, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mgrec: error: ") and err.count("\n") == 1, err
    key = override.split("=")[0]
    assert f"[{key}]" in err or "GiB is available" in err or f"{key}=1000000000" in err, err
    assert not (tmp_path / "run").exists() and time.monotonic() - started < 30



def test_a_config_changed_in_code_is_checked_before_the_run_folder_is_made(dataset, tmp_path):
    # train(dataclasses.replace(...)) with a string epoch count, a NaN learning rate or batch 0 failed deep in
    # training (TypeError, torch's ValueError, ZeroDivisionError) after run.json and config.yaml were written
    import dataclasses

    config = tiny_config(dataset, epochs=1)
    for change, message in (({"epochs": "1"}, r"\[train.epochs\]: expected int, got '1'"),
                            ({"lr": float("nan")}, r"\[train.lr\]: expected a finite number, got nan"),
                            ({"batch_size": 0}, r"\[train.batch_size\]: expected a positive number, got 0")):
        with pytest.raises(InputError, match=r"the config given to train " + message):
            train(dataclasses.replace(config, train=dataclasses.replace(config.train, **change)), tmp_path / "run",
                  progress=False, log=lambda *_: None)
        assert not (tmp_path / "run").exists()


def test_resume_lets_each_stream_s_folder_move_and_names_the_stream_key_that_changed(tmp_path):
    # a two-stream run could not resume once its stream folders moved: the whole data.streams lists were shown,
    # about 1 KB each, without saying which key differed
    from mgrec.config import DataConfig, StreamConfig, checked_config
    from mgrec.train.loop import check_same_config

    def two_streams(root, gyro_stride=8):
        data = DataConfig(streams=[StreamConfig(name="acc", features=str(root / "acc"), feature_dim=4, stride=4),
                                   StreamConfig(name="gyro", features=str(root / "gyro"), feature_dim=2,
                                                stride=gyro_stride)])
        return checked_config(Config(data=data))

    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(two_streams(tmp_path / "old"))
    check_same_config(run, two_streams(tmp_path / "moved"))  # the folders moved: resumable
    with pytest.raises(InputError, match=r"--resume: the config differs from .*config.yaml \(data.streams\[1\].stride: "
                                         r"8 in the run, 4 now"):
        check_same_config(run, two_streams(tmp_path / "old", gyro_stride=4))


@pytest.mark.parametrize("damage", ["deleted", "truncated", "another epoch's"])
def test_resume_refuses_a_run_whose_best_weights_so_far_are_gone(dataset, tmp_path, damage):
    """Killed after its last epoch's state but before postprocess.json (or mid-run, where no later epoch beats the
    best), with checkpoints/best.safetensors deleted, cut short or replaced: --resume wrote postprocess.json selecting
    the lost weights, said "selected epoch 1" and exited 0; evaluate then refused the run."""
    config = tiny_config(dataset, epochs=2, eval_every=1)
    train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    run = RunDir(tmp_path / "run")
    selected = json.loads(run.postprocess_path.read_text())["selected_epoch"]
    run.postprocess_path.unlink()  # killed before the run's end was written
    best = run.weights_path("best")
    if damage == "deleted":
        best.unlink()
    elif damage == "truncated":
        best.write_bytes(best.read_bytes()[:100])
    else:
        best.write_bytes(run.weights_path("last").read_bytes())
        if selected == 1:  # "last" is epoch 1's: make the selected epoch 0 in the state
            state = run.read_training_state()
            state["best"] = json.dumps({**json.loads(state["best"]), "epoch": 0})
            torch.save(state, run.state_path)
    with pytest.raises(InputError, match=r"--resume: .*run selected epoch \d as the best on val so far, but .*"
                                         "best.safetensors.*; resumed, it would finish without the weights it selects"):
        train(config, run.path, resume=True, progress=False, log=lambda *_: None)
    assert not run.postprocess_path.exists()


def test_a_run_whose_best_weights_are_removed_while_it_trains_is_not_marked_finished(dataset, tmp_path, monkeypatch):
    """checkpoints/best.safetensors deleted while the run trained (a clean-up script, a disk quota): training wrote
    postprocess.json, selecting weights that were gone, and said "selected epoch ..." (exit 0)."""
    original = RunDir.write_training_state

    def save_then_delete_best(self, state):
        original(self, state)
        self.weights_path("best").unlink(missing_ok=True)

    monkeypatch.setattr(RunDir, "write_training_state", save_then_delete_best)
    run = RunDir(tmp_path / "run")
    with pytest.raises(InputError, match=r"best.safetensors does not exist, but training selected epoch \d as the best "
                                         r"on val \(the file was removed or replaced while the run trained, or"):
        train(tiny_config(dataset, epochs=2, eval_every=1), run.path, progress=False, log=lambda *_: None)
    assert not run.postprocess_path.exists()


@pytest.mark.parametrize("argument, value, message", [
    ("run_dir", None, r"^train: run_dir: expected a path \(str or pathlib.Path\), got None$"),
    ("resume", "no", r"^train: resume: expected True or False, got 'no'$"),  # a true value: it resumed
    ("progress", "no", r"^train: progress: expected True or False \(or None\), got 'no'$"),  # it drew the bar
    ("log", "train.log", r"^train: log: expected a callable .*, got 'train.log'$"),
    ("on_metrics", [], r"^train: on_metrics: expected a callable .*, got \[\]$"),
])
def test_train_in_python_names_an_argument_of_the_wrong_kind(dataset, tmp_path, argument, value, message):
    """`train(config, run_dir, ...)` from Python (README, "In Python"): run_dir None was a pathlib TypeError, a log or
    on_metrics that cannot be called a TypeError at the first line, resume="no" resumed and progress="no" drew a bar."""
    given = {"run_dir": tmp_path / "run", "progress": False, "log": lambda *_: None, argument: value}
    with pytest.raises(InputError, match=message):
        train(tiny_config(dataset, epochs=1, eval_every=1), **given)
    assert not (tmp_path / "run").exists()


def test_the_next_commands_name_the_val_split_where_the_test_split_has_no_videos(tmp_path):
    # SMG's challenge labels its train and val subjects only: `mgrec train` ended by telling the user to run
    # `mgrec evaluate RUN` (the test split), which then stopped on "no videos in split 'test'".
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=3, num_classes=3, feature_dim=16, length=160,
                                   seed=0, subsets=("train", "train", "val"))
    run = tmp_path / "run"
    result = train(tiny_config(paths, epochs=1, eval_every=1), run, progress=False, log=lambda *_: None)
    assert result.summary().splitlines()[-1] == (
        f"next: mgrec evaluate {run} --split val (val scores: the test split 'test' has no videos), "
        f"then mgrec report {run} --split val")
