import numpy as np
import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from mgrec.extract import efficientnet
from mgrec.extract.efficientnet import (
    FoldedConv,
    FoldedEfficientNet,
    OnnxEfficientNet,
    fused_kernels_available,
    onnx_model,
)


@pytest.fixture(scope="module")
def package_network():
    """The package's EfficientNet-Lite0 (the readable form) with BatchNorm statistics far from 0 and 1,
    so that a fold that forgot the mean, the variance, gamma or beta would show."""
    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1.0, 1.0)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


@pytest.fixture(params=["fused oneDNN kernels", "plain convolutions"])
def kernels(request, monkeypatch):
    if request.param == "fused oneDNN kernels":
        if not fused_kernels_available(torch.float32):
            pytest.skip("this torch build has no oneDNN")
    else:
        monkeypatch.setattr(efficientnet, "fused_kernels_available", lambda dtype: False)
    return request.param


@pytest.mark.parametrize("size", [224, 97])  # native, and an odd size (the pads are fixed at build time)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_folded_network_equals_the_packages(package_network, kernels, size, memory_format):
    folded = FoldedEfficientNet(package_network).to(memory_format=memory_format)
    assert all(layer.fused == (kernels == "fused oneDNN kernels") for layer in folded.modules()
               if isinstance(layer, FoldedConv))
    x = torch.randn(2, 3, size, size).contiguous(memory_format=memory_format)
    with torch.inference_mode():
        expected = package_network.extract_features(x)
        got = folded(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert expected.abs().max() > 1.0 and expected.std() > 0.1  # a real signal, not a saturated one


def test_bf16_folded_network_is_as_close_to_float32_as_bf16_autocast(package_network, kernels):
    # bf16 weights and activations throughout (what autocast does to every convolution), so its error
    # against float32 is of the same size as the package's network under bf16 autocast
    if kernels == "fused oneDNN kernels" and not fused_kernels_available(torch.bfloat16):
        pytest.skip("no fused bf16 kernels on a CPU without native bf16")
    folded = FoldedEfficientNet(package_network, torch.bfloat16).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 128, 128).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected = package_network.extract_features(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = package_network.extract_features(x).float()
        got = folded(x)
    assert got.dtype == torch.bfloat16
    error = (got.float() - expected).norm() / expected.norm()
    autocast_error = (autocast - expected).norm() / expected.norm()
    assert error < 2 * autocast_error and error < 0.01, (error, autocast_error)


def test_folding_keeps_the_packages_weights_untouched(package_network):
    before = {name: value.clone() for name, value in package_network.state_dict().items()}
    FoldedEfficientNet(package_network)
    after = package_network.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_only_an_eval_mode_lite_network_is_folded(package_network):
    with pytest.raises(ValueError, match="eval mode"):
        FoldedEfficientNet(EfficientNet.from_name("efficientnet-lite0").train())
    with pytest.raises(ValueError, match="Lite model"):
        FoldedEfficientNet(EfficientNet.from_name("efficientnet-b0").eval())


def test_bf16_uses_fused_kernels_only_on_a_cpu_with_native_bf16(package_network, monkeypatch):
    # oneDNN may have no bf16 kernel on an older CPU; the plain path runs bf16 anywhere (slowly)
    monkeypatch.setattr(efficientnet, "native_bf16_cpu", lambda: False)

    def fused(dtype):
        return {layer.fused for layer in FoldedEfficientNet(package_network, dtype).modules()
                if isinstance(layer, FoldedConv)}

    assert fused(torch.bfloat16) == {False}
    assert fused(torch.float32) == {torch.backends.mkldnn.is_available()}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MGREC_CACHE", str(tmp_path / "cache"))  # onnxruntime's graphs: not the user's cache


@pytest.mark.parametrize("size", [224, 97])
def test_the_onnx_graph_in_onnxruntime_gives_the_packages_pooled_embeddings_of_uint8_frames(package_network, size):
    folded = FoldedEfficientNet(package_network)
    frames = torch.randint(0, 256, (3, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    got = OnnxEfficientNet(folded, "random-batch-norms", threads=1)(frames.numpy())
    pixels = (frames.permute(0, 3, 1, 2).float() - 127.0) / 128.0  # what EfficientNetLite0 feeds the package
    with torch.inference_mode():
        expected = package_network.extract_features(pixels).mean(dim=(2, 3)).numpy()
    assert got.shape == expected.shape == (3, 1280) and got.dtype == expected.dtype
    torch.testing.assert_close(torch.from_numpy(got), torch.from_numpy(expected), rtol=1e-4, atol=1e-4)
    assert expected.std() > 0.1


def test_only_the_float32_network_becomes_an_onnx_graph(package_network):
    with pytest.raises(ValueError, match="float32"):
        onnx_model(FoldedEfficientNet(package_network, torch.bfloat16))


def test_the_graph_is_built_once_then_read_from_the_cache_and_built_again_where_the_cache_is_wrong(
        package_network, monkeypatch):
    folded = FoldedEfficientNet(package_network)
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    built = []
    real_build = efficientnet.onnx_model
    monkeypatch.setattr(efficientnet, "onnx_model", lambda network: (built.append(1), real_build(network))[1])
    first = OnnxEfficientNet(folded, "key", threads=1)(frames)
    cached = efficientnet.onnx_cache_path("key")
    assert built == [1] and cached.is_file()
    np.testing.assert_array_equal(OnnxEfficientNet(folded, "key", threads=1)(frames), first)
    assert built == [1]  # read from the cache: no onnx import, no build
    # not a graph, or the graph of other weights (the key lied): built again, and the cache replaced
    for wrong in (b"not a graph", efficientnet.onnx_model(FoldedEfficientNet(EfficientNet.from_name(
            "efficientnet-lite0").eval())).SerializeToString()):
        cached.write_bytes(wrong)
        built.clear()
        np.testing.assert_array_equal(OnnxEfficientNet(folded, "key", threads=1)(frames), first)
        assert built == [1] and cached.read_bytes() != wrong
    # a cache that cannot be written: the network still runs, built each time
    monkeypatch.setenv("MGREC_CACHE", str(cached))  # a file where the folder should be
    built.clear()
    np.testing.assert_array_equal(OnnxEfficientNet(folded, "other", threads=1)(frames), first)
    assert built == [1]


def test_a_cache_file_that_is_a_named_pipe_a_device_or_huge_is_not_read_but_built_again(package_network, monkeypatch):
    import os
    import threading

    folded = FoldedEfficientNet(package_network)
    frames = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    cached = efficientnet.onnx_cache_path("pipe")
    cached.parent.mkdir(parents=True)
    os.mkfifo(cached)  # nobody writes it: reading it waited forever
    made = []
    reader = threading.Thread(target=lambda: made.append(OnnxEfficientNet(folded, "pipe", threads=1)), daemon=True)
    reader.start()
    reader.join(timeout=60)  # a few seconds of build (a daemon thread: one that hangs does not keep pytest)
    assert not reader.is_alive(), "the cache's named pipe was opened, read or written"
    assert made[0](frames).shape == (1, 1280) and cached.is_file()  # built, and the pipe replaced by the graph
    # a symbolic link at the cache's name: the graph replaces the link, not the file it leads to
    elsewhere = cached.parent.parent / "notes.txt"
    elsewhere.write_text("a user's file")
    linked = efficientnet.onnx_cache_path("linked")
    linked.symlink_to(elsewhere)
    np.testing.assert_array_equal(OnnxEfficientNet(folded, "linked", threads=1)(frames), made[0](frames))
    assert elsewhere.read_text() == "a user's file" and linked.is_file() and not linked.is_symlink()
    monkeypatch.setattr(efficientnet, "MAX_GRAPH_BYTES", 1000)  # a file larger than any graph: not read
    assert efficientnet._cached_graph(cached) is None
    for not_a_file in ("/dev/zero", cached.parent):  # a device that never ends, a folder
        assert efficientnet._cached_graph(not_a_file) is None
    loop = cached.parent / "loop.onnx"
    loop.symlink_to(loop)
    assert efficientnet._cached_graph(loop) is None


def test_a_new_graph_removes_the_graphs_of_the_same_weights_that_other_builds_left(package_network):
    # each mgrec version or edit of efficientnet.py left a 13 MB graph in the cache for ever
    folder = efficientnet.onnx_cache_path("key").parent
    folder.mkdir(parents=True)
    old_build = folder / "efficientnet-lite0_key_0123456789abcdef.onnx"
    other_weights = folder / "efficientnet-lite0_k2_0123456789abcdef.onnx"
    installed_build = folder / "efficientnet-lite0_key_mgrec-0.3.0.onnx"  # an install without sources names it so
    for path in (old_build, other_weights, installed_build):
        path.write_bytes(b"an old graph")
    # a user's graph quantized from the cached one and kept beside it, named like a build but not by a build's key
    quantized = folder / "efficientnet-lite0_key_0123456789abcdef_int8.onnx"
    quantized.write_bytes(b"a user's graph")
    users_file = folder.parent / "notes.txt"
    users_file.write_text("a user's file")
    (folder / "efficientnet-lite0_key_linked.onnx").symlink_to(users_file)
    (folder / "efficientnet-lite0_key_folder.onnx").mkdir()
    OnnxEfficientNet(FoldedEfficientNet(package_network), "key", threads=1)
    assert sorted(path.name for path in folder.iterdir()) == sorted([
        efficientnet.onnx_cache_path("key").name, other_weights.name, "efficientnet-lite0_key_linked.onnx",
        "efficientnet-lite0_key_folder.onnx", quantized.name])
    assert users_file.read_text() == "a user's file"
