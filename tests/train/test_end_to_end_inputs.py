"""Hostile and broken inputs of end-to-end training from raw video (data.videos + backbone): each is refused
with one InputError naming the file or key, before any work that it would spoil, never a traceback,
a silent skip or a run that quietly pairs adapters with another backbone. One test per family:

1. the videos of data.videos (not a video, cut short after a complete header, a Matroska file cut short, no
   frames, shorter than one window, two files for one id, a folder where a video should be, the folder missing or
   a file);
2. video ids and the VideoClips API (ids that would leave the folder, a NaN frame rate, a bool stride);
3. the backbone folder and its config.json (missing, a file, not JSON, a list, another model type, sizes that
   are not positive integers, heads that do not divide the width, an unknown activation, 1 channel);
4. its model.safetensors (corrupt, truncated, of another width, of more layers than config.json says);
5. the adapter settings, named by the config key the user wrote;
6. the encoder on a batch of padding only, or a mask of another length;
7. a trained run used again: its recipe missing, its backbone changed, a feature-based run, its videos moved.

The setup copies `tests/train/test_end_to_end.py`: the real clip carphone (120 frames at 29.97 fps) and a
random-init tiny VideoMAE folder (config.json only)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tests.helpers import TINY_VIDEOMAE, write_end_to_end_data

from mgrec.cli import main
from mgrec.config import load_config
from mgrec.data.videos import VideoClips, find_video
from mgrec.errors import InputError
from mgrec.extract.adapters import AdaptedBackbone, build_adapted_backbone
from mgrec.model.detector import build_detector
from mgrec.model.end_to_end import EndToEndDetector


def _setup(root: Path, carphone: Path) -> Path:
    """The real clip as a training and a validation video, annotations, a random-init VideoMAE and a
    one-epoch config (`tests.helpers.write_end_to_end_data`); returns the config's path."""
    return write_end_to_end_data(root, carphone, {
        "epochs": 1, "warmup_epochs": 1, "batch_size": 2, "crops_per_video": 2, "lr": 3e-3, "weight_decay": 0.0,
        "eval_every": 1, "ema_decay": 0.9, "device": "cpu"})


@pytest.fixture
def setup(tmp_path, carphone) -> Path:
    return _setup(tmp_path / "data", carphone)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, carphone) -> Path:
    """A finished one-epoch end-to-end run (RUN/...) beside its data; tests take a copy (`_copy`)."""
    root = tmp_path_factory.mktemp("trained")
    config = _setup(root, carphone)
    assert main(["train", str(config), "--out", str(root / "run"), "--no-progress"]) == 0
    return root


def _copy(trained: Path, tmp_path: Path) -> Path:
    """The trained run and its data, copied, with every path in the config and the run's config rewritten."""
    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    for path in (root / "e2e.yaml", root / "run" / "config.yaml"):
        path.write_text(path.read_text().replace(str(trained), str(root)))
    return root


def _write_video(path: Path, frames: int, fps: int = 30) -> Path:
    """`frames` random 32 x 32 frames; 0 frames: a valid AVI whose stream is empty."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
        for _ in range(frames):
            image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _edit_annotations(config: Path, video: str, **changes) -> None:
    path = config.parent / "annotations.json"
    annotations = json.loads(path.read_text())
    annotations["database"][video].update(changes)
    path.write_text(json.dumps(annotations))


def _errors(capsys, config: Path) -> str:
    """`mgrec data check CONFIG`: must find errors (exit 1); its ERROR lines."""
    assert main(["data", "check", str(config)]) == 1
    return "\n".join(line for line in capsys.readouterr().out.splitlines() if "ERROR" in line)


# -- 1. the videos of data.videos -------------------------------------------------------------------


def _not_a_video(videos, carphone):
    (videos / "talk_again.mp4").write_bytes(b"this is not a video " * 20)
    return "talk_again.mp4: cannot open the video (corrupt or truncated file?)"


def _cut_after_a_complete_header(videos, carphone_cut_midway):
    # the index is up front: the file opens and declares 120 frames, but its data ends near frame 56
    shutil.copy(carphone_cut_midway, videos / "talk_again.mp4")
    return "talk_again.mp4: frame 119 could not be decoded, but the video should have 120 frames (truncated file?)"


def _a_matroska_file_cut_short(videos, carphone):
    # Matroska declares only a duration, and its packets were counted: 70 % of the file opened as a whole 2.7-s
    # video, and only its disagreeing with the annotations' 4.0 s was said ("another video, or a wrong duration?")
    import av

    (videos / "talk_again.mp4").unlink()
    whole = videos.parent / "talk_again.mkv"
    with av.open(str(carphone)) as source, av.open(str(whole), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    (videos / "talk_again.mkv").write_bytes(whole.read_bytes()[: whole.stat().st_size * 7 // 10])
    return ("talk_again.mkv: its frames stop at 2.74 s (frame 82), but the container declares 4.00 s (truncated "
            "file?)")


def _no_frames(videos, _):
    (videos / "talk_again.mp4").unlink()
    _write_video(videos / "talk_again.avi", 0)
    _edit_annotations(videos.parent / "e2e.yaml", "talk_again", fps=30.0, duration=0.1, annotations=[])
    return "talk_again.avi: 0 frames, shorter than one window of 4 frames"


def _shorter_than_a_window(videos, _):
    (videos / "talk_again.mp4").unlink()
    _write_video(videos / "talk_again.mp4", 2)
    _edit_annotations(videos.parent / "e2e.yaml", "talk_again", fps=30.0, duration=2 / 30, annotations=[])
    return "talk_again.mp4: 2 frames, shorter than one window of 4 frames"


def _two_files_for_one_id(videos, carphone):
    shutil.copy(carphone, videos / "talk_again_color.MKV")
    return "videos: two videos for 'talk_again': talk_again.mp4 and talk_again_color.MKV; keep one of them"


def _a_folder_named_as_the_video(videos, _):
    (videos / "talk_again.mp4").unlink()
    (videos / "talk_again.mp4").mkdir()
    return "talk_again.mp4: not a file (a folder, or a link to nothing); expected the video of 'talk_again'"


def _another_frame_rate(videos, _):
    _edit_annotations(videos.parent / "e2e.yaml", "talk_again", fps=25.0)
    return "talk_again.mp4: the video runs at 29.970 fps but its annotations at 25.000 fps"


@pytest.mark.parametrize("damage", [_not_a_video, _cut_after_a_complete_header, _a_matroska_file_cut_short, _no_frames,
                                    _shorter_than_a_window, _two_files_for_one_id, _a_folder_named_as_the_video,
                                    _another_frame_rate])
def test_a_bad_video_is_an_error_of_data_check_naming_the_file(setup, carphone, carphone_cut_midway, capsys,
                                                                  damage):
    source = carphone_cut_midway if damage is _cut_after_a_complete_header else carphone
    expected = damage(setup.parent / "videos", source)
    errors = _errors(capsys, setup)
    assert expected in errors, errors
    # the training video is fine and says nothing; a val video emptied of its instances leaves val with none
    assert errors.count("ERROR") - errors.count("has 1 video(s) but no annotated instance") == 1


@pytest.mark.parametrize("make", ["missing", "a file"])
def test_a_videos_folder_that_is_not_there_names_it_for_every_video(setup, capsys, make):
    videos = setup.parent / "videos"
    shutil.rmtree(videos)
    if make == "a file":
        videos.write_text("not a folder")
    errors = _errors(capsys, setup)
    problem = "no such folder" if make == "missing" else "not a folder"
    assert f"videos: {problem} (looking for the video of 'talk')" in errors
    assert f"videos: {problem} (looking for the video of 'talk_again')" in errors


def test_training_refuses_a_video_cut_short_before_the_first_step(setup, carphone_cut_midway, capsys, tmp_path):
    # It used to pass data check and fail only when a crop reached the missing frames, epochs into training.
    shutil.copy(carphone_cut_midway, setup.parent / "videos" / "talk_color.mp4")
    assert main(["train", str(setup), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "talk_color.mp4: frame 119 could not be decoded" in captured.err
    assert "training mgrec on" not in captured.out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_refuses_a_video_shorter_than_one_window(setup, capsys, tmp_path):
    # Before: a traceback from the backbone on zero clips (training video) or from np.concatenate (validation).
    _shorter_than_a_window(setup.parent / "videos", None)
    assert main(["train", str(setup), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "talk_again.mp4: 2 frames, shorter than one window of 4 frames" in capsys.readouterr().err


# -- 2. video ids and the VideoClips API ------------------------------------------------------------


@pytest.mark.parametrize("video_id, problem", [
    ("../videos/talk_again", "contains a path separator"),
    ("/etc/passwd", "contains a path separator"),
    ("..", "is not a file name"),
    ("", "is empty"),
])
def test_a_video_id_that_would_leave_the_folder_is_refused(carphone, tmp_path, video_id, problem):
    (tmp_path / "videos").mkdir()
    shutil.copy(carphone, tmp_path / "talk_again.mp4")  # beside the folder: what '../talk_again' would reach
    with pytest.raises(InputError, match=f"video id .* {problem}.*; it must be a plain file name inside"):
        find_video(tmp_path / "videos", video_id)


def test_video_clips_refuse_a_nan_frame_rate_a_bool_stride_and_no_window(carphone, tmp_path):
    grid = dict(stride=2, window=4, frames_per_clip=4, image_size=32)
    with pytest.raises(InputError, match="runs at 29.970 fps but its annotations at nan fps"):
        VideoClips.open(carphone, **grid, expected_fps=float("nan"))  # NaN compared unequal, so it passed
    with pytest.raises(InputError, match="stride must be a positive integer, got True"):
        VideoClips.open(carphone, **{**grid, "stride": True})
    with pytest.raises(InputError, match="120 frames, shorter than one window of 121 frames"):
        VideoClips.open(carphone, **{**grid, "window": 121})
    clips = VideoClips.open(carphone, **grid)
    clips.check_readable()  # a whole file: both ends decode
    assert clips.length == 59


def test_check_readable_finds_a_file_cut_short_after_its_header(carphone_cut_midway):
    clips = VideoClips.open(carphone_cut_midway, stride=2, window=4, frames_per_clip=4, image_size=32)
    assert clips.frame_count == 120  # what the header declares
    with pytest.raises(InputError, match=r"carphone_cut.mp4: frame 119 could not be decoded, but the video should "
                                         r"have 120 frames \(truncated file\?\)"):
        clips.check_readable()


# -- 3. the backbone folder and its config.json ------------------------------------------------------


def _config_json(**changes):
    return json.dumps({"model_type": "videomae", **TINY_VIDEOMAE, **changes})


@pytest.mark.parametrize("content, message", [
    ("{not json", r"config.json:1:2: VideoMAE config file is not valid JSON"),
    ("[1, 2]", r"config.json: a JSON list; expected an object of VideoMAE settings"),
    (json.dumps({"model_type": "bert", "hidden_size": 32}), r"config.json: model_type 'bert'; backbone.weights takes "
                                                            r"a VideoMAE"),
    (_config_json(hidden_size="big"), r"config.json: hidden_size 'big'; expected a positive integer"),
    (_config_json(num_hidden_layers=0), r"config.json: num_hidden_layers 0; expected a positive integer"),
    (_config_json(patch_size=0), r"config.json: patch_size 0; expected a positive integer"),
    (_config_json(tubelet_size=True), r"config.json: tubelet_size True; expected a positive integer"),
    (_config_json(num_attention_heads=5), r"config.json: hidden_size 32 is not a multiple of num_attention_heads 5"),
    (_config_json(hidden_act="swishy"), r"config.json: hidden_act 'swishy'; expected an activation"),
    (_config_json(num_channels=1), r"config.json: num_channels 1; frames are RGB, expected 3"),
    (_config_json(layer_norm_eps="x"), r"config.json: not a VideoMAE config: .*layer_norm_eps"),
])
def test_a_bad_config_json_is_named_with_its_key(setup, content, message):
    (setup.parent / "videomae" / "config.json").write_text(content)
    with pytest.raises(InputError, match=message) as error:
        build_adapted_backbone(load_config(setup))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("make, message", [
    ("missing", r"backbone.weights: .*videomae has no config.json \(no such folder\); expected the folder of a "
                r"VideoMAE's config.json and model.safetensors"),
    ("a file", r"backbone.weights: .*videomae has no config.json \(not a folder\)"),
    ("no config.json", r"backbone.weights: .*videomae has no config.json"),
])
def test_a_backbone_folder_that_is_not_one_is_named(setup, capsys, make, message):
    folder = setup.parent / "videomae"
    shutil.rmtree(folder)
    if make == "a file":
        folder.write_text("x")
    elif make == "no config.json":
        folder.mkdir()
    with pytest.raises(InputError, match=message):
        build_adapted_backbone(load_config(setup))


def test_a_config_too_big_for_memory_is_refused_before_it_is_allocated(setup, capsys, tmp_path):
    (setup.parent / "videomae" / "config.json").write_text(_config_json(
        hidden_size=32768, intermediate_size=131072, num_hidden_layers=64, num_attention_heads=32))
    assert main(["train", str(setup), "--out", str(tmp_path / "run"), "--set", "data.feature_dim=32768",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "config.json has 824709 M parameters, 3072.3 GiB in float32, but" in err and "GiB is available" in err


# -- 4. model.safetensors ---------------------------------------------------------------------------


def _save_weights(folder: Path, **changes) -> Path:
    from transformers import VideoMAEConfig, VideoMAEModel

    torch.manual_seed(0)
    VideoMAEModel(VideoMAEConfig(**{**TINY_VIDEOMAE, **changes})).save_pretrained(folder)
    return folder / "model.safetensors"


@pytest.mark.parametrize("damage, message", [
    ("garbage", r"model.safetensors: not a readable safetensors file \(corrupt or truncated\?\): .*header"),
    ("truncated", r"model.safetensors: not a readable safetensors file \(corrupt or truncated\?\)"),
    ("wider", r"model.safetensors: tensor '.*' has shape \(48,?.*\), but .*config.json describes \(32,?.*\): the "
              r"weights are of another VideoMAE"),
    ("deeper", r"model.safetensors: tensor 'encoder.layer.2\..*' is of a layer the VideoMAE of .*config.json does "
               r"not have \(2 layers\)"),
])
def test_bad_weights_are_named_before_transformers_loads_them(setup, tmp_path, damage, message):
    target = setup.parent / "videomae" / "model.safetensors"
    if damage == "garbage":
        target.write_bytes(b"garbage")
    elif damage == "truncated":
        data = _save_weights(tmp_path / "ok").read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif damage == "wider":
        shutil.copy(_save_weights(tmp_path / "wide", hidden_size=48, intermediate_size=96), target)
    else:  # transformers would drop the third layer without a word
        shutil.copy(_save_weights(tmp_path / "deep", num_hidden_layers=3), target)
    with pytest.raises(InputError, match=message):
        build_adapted_backbone(load_config(setup, ["backbone.random_init=false"]))


def test_matching_weights_load_and_random_init_refuses_them(setup, tmp_path):
    shutil.copy(_save_weights(tmp_path / "ok"), setup.parent / "videomae" / "model.safetensors")
    adapted = build_adapted_backbone(load_config(setup, ["backbone.random_init=false"]))
    assert adapted.backbone.config.num_hidden_layers == 2 and len(adapted.weights_sha256) == 64
    with pytest.raises(InputError, match="backbone.random_init: .* holds model.safetensors"):
        build_adapted_backbone(load_config(setup))


# -- 5. the adapter settings, by their config keys -------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("backbone.adapter_blocks=0,5", r"^backbone.adapter_blocks: layer 5 is out of range; this backbone has 2 layers"),
    ("backbone.adapter_blocks=1,1", r"^backbone.adapter_blocks: \[1, 1\] names a layer twice"),
    ("backbone.adapter_blocks=1,,3", r"backbone.adapter_blocks: '1,,3'; expected all or every_other"),
    ("backbone.adapter_blocks=every", r"backbone.adapter_blocks: 'every'; expected all or every_other"),
    ("backbone.adapter=temporl", r"^backbone.adapter: 'temporl'; expected one of temporal, spatial_temporal"),
    ("backbone.image_size=8", r"^backbone.image_size: 8; the backbone .* needs at least its patch size 16"),
    ("backbone.frames_per_clip=2", None),  # a multiple of the tubelet: accepted
])
def test_adapter_settings_are_named_by_the_key_the_user_wrote(setup, override, message):
    if message is None:
        assert build_adapted_backbone(load_config(setup, [override])).tubelet == 2
        return
    with pytest.raises(InputError, match=message):
        build_adapted_backbone(load_config(setup, [override]))


# -- 6. the encoder on padding ------------------------------------------------------------------------


def test_the_encoder_is_not_called_on_a_batch_of_padding_only(setup):
    config = load_config(setup)
    model = EndToEndDetector(build_adapted_backbone(config), build_detector(config.model)).eval()
    frames = torch.zeros(2, 16, 4, 32, 32, 3, dtype=torch.uint8)
    features = model.encode(frames, torch.zeros(2, 1, 16, dtype=torch.bool))
    assert features.shape == (2, 32, 16) and not features.any()
    mask = torch.zeros(2, 1, 16, dtype=torch.bool)
    mask[0, 0, :3] = True  # the valid clips are encoded, the padding stays zero
    features = model.encode(frames, mask)
    assert features[0, :, :3].abs().sum() > 0 and not features[:, :, 3:].any() and not features[1].any()
    with torch.no_grad():
        model(frames, torch.zeros(2, 1, 16, dtype=torch.bool))  # the detector runs on it too
    with pytest.raises(InputError, match=r"frames \(2, 16, 4, 32, 32, 3\) with mask \(2, 1, 8\)"):
        model.encode(frames, torch.ones(2, 1, 8, dtype=torch.bool))


# -- 7. a trained run used again ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_trained_run_refuses_another_backbone_a_missing_recipe_and_moved_videos(trained, tmp_path, capsys):
    root = _copy(trained, tmp_path)
    run, video = root / "run", root / "videos" / "talk_again.mp4"

    def extract() -> int:
        return main(["extract", str(video), "--run", str(run), "--out", str(root / "features"), "--no-progress"])

    # the backbone changed since training (here: config.json; with random_init the seed counts too)
    config_json = root / "videomae" / "config.json"
    original = config_json.read_text()
    config_json.write_text(_config_json(layer_norm_eps=1e-5))
    assert extract() == 2
    err = capsys.readouterr().err
    assert f"the backbone {root / 'videomae'} is not the one {run} was trained with" in err
    assert "config.json and seed 3 (backbone.random_init)" in err and "put back the backbone" in err
    config_json.write_text(original)

    # the recipe that records the backbone is gone: nothing could tell a changed backbone, so it is refused
    recipe = run / "feature_recipe.json"
    saved = recipe.read_bytes()
    recipe.unlink()
    assert extract() == 2
    assert "feature_recipe.json: missing; an end-to-end run records its backbone there" in capsys.readouterr().err
    recipe.write_bytes(saved)
    assert not (root / "features").exists() or not list((root / "features").glob("*.npy"))

    assert extract() == 0  # and with everything back in place it works
    assert np.load(root / "features" / "talk_again.npy").shape == (59, 32)

    # evaluate with data.videos moved away names the folder (the run reads its videos from its config)
    (root / "videos").rename(root / "moved")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "val", "--device", "cpu", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert f"config.yaml [data.videos]: {root / 'videos'}: no such folder (the run reads its videos there)" in error


@pytest.mark.slow  # trains the module's run (about 3 s) when it runs alone
def test_a_feature_based_run_is_not_an_adapted_backbone(trained, tmp_path):
    root = _copy(trained, tmp_path)
    config_path = root / "run" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["data"].update(videos="", features=str(root / "features"))
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(InputError, match="was trained on feature files, not end to end"):
        AdaptedBackbone(root / "run")
