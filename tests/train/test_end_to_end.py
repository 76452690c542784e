"""End-to-end training from raw video (issue #16): a tiny random-weight VideoMAE with adapters, on a
real clip (carphone: 120 frames at 29.97 fps), decoded on the fly. The backbone never moves, every
adapter and detector parameter learns, a run stores no backbone weights, and the whole path, `mgrec
train` on videos -> `evaluate` -> `extract --run` -> `detect` on the raw video, works and overfits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tests.helpers import write_end_to_end_data

from mgrec.cli import main
from mgrec.config import load_config
from mgrec.data.datasets import Crop, make_batch
from mgrec.errors import InputError
from mgrec.extract.adapters import build_adapted_backbone
from mgrec.model.detector import build_detector
from mgrec.model.end_to_end import EndToEndDetector, ema_copy, split_state
from mgrec.run import RunDir
from mgrec.train.assign import make_points
from mgrec.train.data import load_split
from mgrec.train.losses import DetectionLoss
from mgrec.train.step import TrainStep


@pytest.fixture
def end_to_end_data(tmp_path, carphone):
    """The real clip as a training and a validation video, annotations, a random-init VideoMAE and a config
    that trains long enough to overfit it (`tests.helpers.write_end_to_end_data`)."""
    return write_end_to_end_data(tmp_path, carphone, {
        "epochs": 30, "warmup_epochs": 2, "batch_size": 2, "crops_per_video": 6, "lr": 3e-3, "weight_decay": 0.0,
        "eval_every": 10, "ema_decay": 0.9, "device": "cpu"})


def _model(config):
    encoder = build_adapted_backbone(config)
    return EndToEndDetector(encoder, build_detector(config.model))


def test_one_step_keeps_the_backbone_bit_identical_and_two_steps_reach_every_trainable_parameter(end_to_end_data):
    config = load_config(end_to_end_data)
    from mgrec.data.annotations import load_annotations

    annotations = load_annotations(config.data.annotations)
    split = load_split(config, annotations, "train")
    (sample,) = split.samples
    assert sample.length == (120 - 4) // 2 + 1  # every complete window of the clip
    model = _model(config)
    frozen_before = {k: v.clone() for k, v in model.encoder.backbone.state_dict().items()}
    ema = ema_copy(model)
    assert ema.encoder.backbone is model.encoder.backbone  # shared, not a second copy
    assert ema.encoder.adapters is not model.encoder.adapters
    optimizer = torch.optim.AdamW(model.param_groups(0.05), lr=1e-2)
    probe = model.detector(torch.zeros(1, 32, 64), torch.ones(1, 1, 64, dtype=torch.bool))
    points = make_points([m.shape[1] for m in probe.masks], probe.strides, config.model.regression_ranges)
    step = TrainStep(model, model, ema, optimizer, None, DetectionLoss(config.train), points, config,
                     torch.device("cpu"))
    batch = make_batch(split.samples, [Crop(0, 0), Crop(0, 0)], 64, 0.5)
    assert batch.features.dtype == torch.uint8 and batch.features.shape == (2, 64, 4, 32, 32, 3)
    assert batch.mask[0, 0].sum() == sample.length

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert {n.split(".")[0] for n, _ in trainable} == {"detector", "encoder"}
    assert all(n.startswith("encoder.adapters.") for n, _ in trainable if n.startswith("encoder"))
    had_gradient = {n: False for n, _ in trainable}
    for number in range(2):
        step(batch)
        for name, parameter in trainable:
            had_gradient[name] |= parameter.grad is not None and bool(parameter.grad.any())
        for name, value in model.encoder.backbone.state_dict().items():
            assert torch.equal(value, frozen_before[name]), (number, name)  # bit for bit
    assert all(p.grad is None for p in model.encoder.backbone.parameters())
    assert [name for name, had in had_gradient.items() if not had] == []


def test_a_checkpoint_holds_the_detector_and_the_adapters_only(end_to_end_data):
    config = load_config(end_to_end_data)
    model = _model(config)
    state = model.state_dict()
    assert state and all(k.startswith(("detector.", "encoder.adapters.")) for k in state)
    detector, encoder = split_state(state, "weights")
    assert set(detector) == set(model.detector.state_dict())
    assert set(encoder) == {f"adapters.{k}" for k in model.encoder.adapters.state_dict()}
    other = _model(load_config(end_to_end_data, ["seed=4"]))
    other.load_state_dict(state)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in state.items())
    with pytest.raises(RuntimeError, match="missing keys"):
        other.load_state_dict({k: v for k, v in state.items() if not k.startswith("encoder.")})
    with pytest.raises(InputError, match="not the weights of an end-to-end run"):
        split_state(model.detector.state_dict(), "weights")
    # the same config rebuilds the same random backbone (detection on a trained run relies on it)
    again = build_adapted_backbone(config)
    assert all(torch.equal(v, again.backbone.state_dict()[k]) for k, v in model.encoder.backbone.state_dict().items())


@pytest.mark.parametrize("override, message", [
    ("data.features=feats", r"\[data.features\]: given with data.videos"),
    ("backbone.weights=", r"\[backbone.weights\]"),
    ("transforms.noise_prob=0.5", r"\[transforms.noise_prob\]"),
    ("data.normalize=video", r"\[data.normalize\]: 'video' standardises feature files; .* expected 'none'"),
    ("train.compile=true", r"\[train.compile\]: compiles the detector trained on feature files; .* expected false"),
    ("backbone.frames_per_clip=8", r"\[backbone.frames_per_clip\]: 8 frames per clip from windows of data.window=4"),
    ("backbone.adapter_blocks=one", r"backbone.adapter_blocks"),
])
def test_configs_that_cannot_train_end_to_end_are_refused_by_key(end_to_end_data, override, message):
    with pytest.raises(InputError, match=message):
        load_config(end_to_end_data, [override])


def test_the_backbone_must_match_the_config(end_to_end_data, tmp_path):
    with pytest.raises(InputError, match="data.feature_dim: 48, but the backbone .* has 32 channels"):
        build_adapted_backbone(load_config(end_to_end_data, ["data.feature_dim=48"]))
    with pytest.raises(InputError, match="backbone.frames_per_clip: 3; .* multiple of its tubelet size 2"):
        build_adapted_backbone(load_config(end_to_end_data, ["backbone.frames_per_clip=3"]))
    with pytest.raises(InputError, match="has no config.json"):
        build_adapted_backbone(load_config(end_to_end_data, [f"backbone.weights={tmp_path / 'nothing'}"]))
    with pytest.raises(InputError, match=r"model.safetensors"):  # random weights are asked for, never assumed
        build_adapted_backbone(load_config(end_to_end_data, ["backbone.random_init=false"]))


@pytest.mark.slow
def test_train_on_videos_overfits_one_video_then_evaluate_extract_and_detect_use_the_adapted_backbone(
        end_to_end_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(end_to_end_data), "--out", str(run), "--no-progress"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "end-to-end training step on cpu: about" in printed
    assert "warning: backbone.random_init" in captured.err and "warning:" not in printed  # warnings on stderr
    weights, _ = RunDir(run).read_weights("best")
    assert weights and all(k.startswith(("detector.", "encoder.adapters.")) for k in weights)  # no backbone copy
    recipe = json.loads((run / "feature_recipe.json").read_text())
    assert recipe["backbone"] == "videomae-adapted@32" and len(recipe["weights_sha256"]) == 64

    # its own video, scored: every gesture found, nothing else
    assert main(["evaluate", str(run), "--split", "train", "--device", "cpu", "--no-progress"]) == 0
    result = json.loads((run / "eval_train.json").read_text())
    assert result["f1"] == pytest.approx(1.0), result

    # `extract --run`: the features the detector reads, made by the backbone with the trained adapters
    features = tmp_path / "features"
    assert main(["extract", str(Path(end_to_end_data).parent / "videos" / "talk_color.mp4"), "--run", str(run),
                 "--out", str(features), "--no-progress"]) == 0
    extracted = np.load(features / "talk.npy")
    evaluated = np.load(run / "features_best" / "talk.npy")
    assert extracted.shape == (59, 32)
    np.testing.assert_array_equal(extracted, evaluated)
    config = load_config(end_to_end_data)
    untrained = build_adapted_backbone(config)
    from mgrec.data.videos import VideoClips

    clips = VideoClips.open(Path(config.data.videos) / "talk_color.mp4", stride=2, window=4, frames_per_clip=4,
                            image_size=32)
    with torch.no_grad():
        frozen = untrained(torch.from_numpy(clips.clips(0, 59))[None])[0].numpy()
    assert not np.allclose(extracted, frozen, atol=1e-4)  # the adapters learned something

    # detection on the raw video goes through the same adapted backbone
    out = tmp_path / "detections.json"
    assert main(["detect", str(run), str(Path(end_to_end_data).parent / "videos" / "talk_again.mp4"),
                 "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    detections = json.loads(out.read_text())
    found = sorted((d["label"], round(d["segment"][0], 1)) for d in detections["results"]["talk_again"])
    assert [label for label, _ in found] == ["nod", "turn"], found


def _short_training(end_to_end_data, epochs: int = 3):
    return load_config(end_to_end_data, [f"train.epochs={epochs}", "train.crops_per_video=2", "train.eval_every=1",
                                         "train.warmup_epochs=1"])


def test_resume_after_a_crash_gives_the_weights_of_the_uninterrupted_run(end_to_end_data, tmp_path):
    from mgrec.train.loop import train

    config = _short_training(end_to_end_data)
    full = tmp_path / "full"
    train(config, full, progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))

    class Crash(Exception):
        pass

    original = RunDir.write_training_state

    def save_then_crash(self, state):
        original(self, state)
        if state["epoch"] == 1:
            raise Crash

    interrupted = tmp_path / "interrupted"
    RunDir.write_training_state = save_then_crash
    try:
        with pytest.raises(Crash):
            train(config, interrupted, progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))
    finally:
        RunDir.write_training_state = original
    # a new process builds the backbone afresh: the adapters come back from the training state
    resumed = train(config, interrupted, resume=True, progress=False, log=lambda *_: None,
                    encoder=build_adapted_backbone(config))
    assert resumed.first_epoch == 2
    a, _ = RunDir(full).read_weights("last", use_ema=False)
    b, _ = RunDir(interrupted).read_weights("last", use_ema=False)
    assert a.keys() == b.keys() and any(k.startswith("encoder.adapters.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_on_videos_needs_the_backbone_and_ensembles_refuse_end_to_end_runs(end_to_end_data, tmp_path):
    from mgrec.train.ensemble import make_ensemble
    from mgrec.train.loop import train

    config = _short_training(end_to_end_data, epochs=1)
    with pytest.raises(InputError, match="end-to-end training needs the adapted backbone"):
        train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    train(config, tmp_path / "run", progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))
    with pytest.raises(InputError, match="trained end to end"):
        make_ensemble([tmp_path / "run", tmp_path / "run"], tmp_path / "ensemble", log=lambda *_: None)
    from mgrec.infer.evaluate_run import evaluate_run

    with pytest.raises(InputError, match="trained end to end: its features are made from data.videos first"):
        evaluate_run(tmp_path / "run", split="train", device="cpu")


def test_data_check_opens_every_video_at_the_annotations_fps(end_to_end_data, capsys):
    assert main(["data", "check", str(end_to_end_data)]) == 0
    folder = Path(end_to_end_data).parent
    annotations = json.loads((folder / "annotations.json").read_text())
    annotations["database"]["talk_again"]["fps"] = 25.0
    annotations["database"]["talk"]["duration"] = 9.0
    annotations["database"]["gone"] = {"subset": "validation", "fps": 29.97, "duration": 4.0, "annotations": []}
    (folder / "annotations.json").write_text(json.dumps(annotations))
    capsys.readouterr()
    assert main(["data", "check", str(end_to_end_data)]) == 1
    printed = capsys.readouterr().out
    assert "talk_again.mp4" in printed and "29.97" in printed and "25" in printed  # the fps of both
    assert "gone" in printed and "gone_color" in printed  # the names looked for
    assert "talk_color.mp4" in printed and "lasts 9.0 s" in printed  # a length that disagrees with the duration


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(end_to_end_data, tmp_path):
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    config = yaml.safe_load(Path(end_to_end_data).read_text())
    config["train"].update(epochs=2, crops_per_video=2, eval_every=2, warmup_epochs=1)
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single, double = tmp_path / "single", tmp_path / "ddp"
    command = ["-m", "mgrec.cli", "train", str(path), "--no-progress", "--out"]
    done = subprocess.run([sys.executable, *command, str(single)], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run([*torchrun, *command, str(double)], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    a = load_file(str(single / "checkpoints/last.safetensors"))
    b = load_file(str(double / "checkpoints/last.safetensors"))
    assert a.keys() == b.keys() and any(".adapters." in key for key in a)
    for key in a:
        # the same global batch, each process encoding its own crop: equal up to float rounding, which AdamW at
        # lr 3e-3 turns into up to about 1e-5 where a gradient is near zero (a wrong share or a missing
        # average moves weights by the order of the learning rate)
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-3, atol=1e-4, err_msg=key)


def test_resume_refuses_a_backbone_that_changed_since_the_run_started(end_to_end_data, tmp_path):
    from mgrec.train.loop import train

    config = _short_training(end_to_end_data, epochs=1)
    run = tmp_path / "run"
    train(config, run, progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))
    shape = Path(config.backbone.weights) / "config.json"
    shape.write_text(json.dumps({**json.loads(shape.read_text()), "layer_norm_eps": 1e-5}))
    with pytest.raises(InputError, match="--resume: the backbone .* is not the one .* was trained with"):
        train(config, run, resume=True, progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))


def test_extract_with_a_run_takes_no_recipe_options_and_evaluate_names_a_moved_videos_folder(end_to_end_data,
                                                                                             tmp_path, capsys):
    from mgrec.train.loop import train

    config = _short_training(end_to_end_data, epochs=1)
    run = tmp_path / "run"
    train(config, run, progress=False, log=lambda *_: None, encoder=build_adapted_backbone(config))
    video = Path(config.data.videos) / "talk_color.mp4"
    assert main(["extract", str(video), "--run", str(run), "--window", "8", "--out", str(tmp_path / "f")]) == 2
    assert "--run: --window come from the run's recipe; give none of them" in capsys.readouterr().err
    Path(config.data.videos).rename(tmp_path / "moved")
    assert main(["evaluate", str(run), "--split", "train", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "config.yaml [data.videos]" in error and "no such folder" in error
