"""The training loop end to end on tiny synthetic data: learning, resume, SIGKILL, DDP."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import small_config

from mgrec.config import Config, PostprocessConfig, TrainConfig, save_config
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.errors import InputError
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.run import RunDir
from mgrec.train.loop import train
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
    # EMA warm-up: early steps follow the weights closely, later ones use the configured decay
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(10**6, 0.999) == 0.999


@pytest.mark.slow
def test_overfits_one_video_to_perfect_f1(tmp_path):
    paths = make_synthetic_dataset(
        tmp_path / "data", num_videos=1, num_classes=17, feature_dim=16, length=128, seed=5, subsets=("train",)
    )
    config = tiny_config(paths, epochs=60, warmup_epochs=2, crops_per_video=4, eval_every=20, lr=5e-3)
    config.data.val_split = "train"  # learning one video by heart is the point here
    config.data.test_split = "train"
    config.train.input_noise = 0.0
    result = train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    scores = evaluate_run(tmp_path / "run", split="train")
    assert scores["f1"] == pytest.approx(1.0), (result.best_metrics, scores["f1"])


def test_run_directory_contents_and_refusals(dataset, tmp_path):
    config = tiny_config(dataset, epochs=2, eval_every=1)
    run = tmp_path / "run"
    train(config, run, progress=False, log=lambda *_: None)
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
    with pytest.raises(InputError, match="already holds a run"):
        train(config, run, progress=False, log=lambda *_: None)
    with pytest.raises(InputError, match="nothing to resume"):
        train(config, tmp_path / "other", resume=True, progress=False, log=lambda *_: None)


def test_cuda_request_without_cuda_is_a_clear_error(dataset, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tiny_config(dataset, device="cuda")
    with pytest.raises(InputError, match="no CUDA device"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)


def test_resume_matches_uninterrupted_run(dataset, tmp_path):
    full = tmp_path / "full"
    train(tiny_config(dataset), full, progress=False, log=lambda *_: None)
    # the same 4-epoch schedule, crashed after 2 checkpointed epochs, then resumed
    interrupted = tmp_path / "interrupted"
    config = tiny_config(dataset)
    _train_epochs_then_stop(config, interrupted, stop_after=2)
    train(config, interrupted, resume=True, progress=False, log=lambda *_: None)
    a = load_file(str(full / "checkpoints/last.safetensors"))
    b = load_file(str(interrupted / "checkpoints/last.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


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


def test_a_non_finite_loss_stops_training_before_the_weights_change(dataset, tmp_path):
    config = tiny_config(dataset, epochs=2, eval_every=1)
    config.train.focal_gamma = float("nan")  # the loss is NaN from the first step
    with pytest.raises(InputError, match=r"training stopped at step 0: the loss is nan"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    assert not RunDir(tmp_path / "run").has_training()  # nothing committed, no NaN checkpoint
