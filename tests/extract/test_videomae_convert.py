"""The converter against a reference forward pass written here from the official VideoMAE V2 design.

Official weights cannot be downloaded here, so a tiny random state dict in the official key layout
stands in: if the converted transformers model computes the same features as the reference on
the official weights, every tensor went to the right place (q/k/v order, biases, norms).
"""

import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgrec.errors import InputError
from mgrec.extract.backbones import IMAGENET_MEAN, IMAGENET_STD, load_backbone
from mgrec.extract.videomae_convert import convert_videomae_v2, sinusoid_position_table

HIDDEN, DEPTH, HEADS, MLP, PATCH, TUBELET, FRAMES, SIZE, CLASSES = 64, 2, 4, 128, 16, 2, 8, 32, 5
TOKENS = (FRAMES // TUBELET) * (SIZE // PATCH) ** 2
OVERRIDES = {"num_attention_heads": HEADS, "num_frames": FRAMES, "image_size": SIZE}


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the official names (modeling_finetune.py, use_mean_pooling, qkv_bias)."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, mean=0.0, std=0.2):
        return torch.randn(*shape, generator=generator) * std + mean

    state = {
        "patch_embed.proj.weight": rand(HIDDEN, 3, TUBELET, PATCH, PATCH, std=0.05),
        "patch_embed.proj.bias": rand(HIDDEN),
    }
    for n in range(DEPTH):
        block = {
            "norm1.weight": rand(HIDDEN, mean=1.0),
            "norm1.bias": rand(HIDDEN),
            "attn.qkv.weight": rand(3 * HIDDEN, HIDDEN),
            "attn.q_bias": rand(HIDDEN),
            "attn.v_bias": rand(HIDDEN),
            "attn.proj.weight": rand(HIDDEN, HIDDEN),
            "attn.proj.bias": rand(HIDDEN),
            "norm2.weight": rand(HIDDEN, mean=1.0),
            "norm2.bias": rand(HIDDEN),
            "mlp.fc1.weight": rand(MLP, HIDDEN),
            "mlp.fc1.bias": rand(MLP),
            "mlp.fc2.weight": rand(HIDDEN, MLP),
            "mlp.fc2.bias": rand(HIDDEN),
        }
        state.update({f"blocks.{n}.{key}": value for key, value in block.items()})
    state.update(
        {
            "fc_norm.weight": rand(HIDDEN, mean=1.0),
            "fc_norm.bias": rand(HIDDEN),
            "head.weight": rand(CLASSES, HIDDEN),
            "head.bias": rand(CLASSES),
        }
    )
    return state


def reference_positions(tokens: int, dim: int) -> torch.Tensor:
    """The sinusoid table computed entry by entry from its definition."""
    table = np.zeros((tokens, dim))
    for position in range(tokens):
        for channel in range(dim):
            angle = position / 10000 ** (2 * (channel // 2) / dim)
            table[position, channel] = math.sin(angle) if channel % 2 == 0 else math.cos(angle)
    return torch.tensor(table, dtype=torch.float32)


def reference_forward(state: dict[str, torch.Tensor], video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Official VideoMAE V2 fine-tuned ViT on video (B, 3, T, H, W): (fc_norm(mean of tokens), logits)."""
    x = F.conv3d(
        video, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=(TUBELET, PATCH, PATCH)
    )
    x = x.flatten(2).transpose(1, 2) + reference_positions(TOKENS, HIDDEN)
    batch, tokens, _ = x.shape
    head_dim = HIDDEN // HEADS

    def norm(values, name):
        return F.layer_norm(values, (HIDDEN,), state[name + ".weight"], state[name + ".bias"], eps=1e-6)

    for n in range(DEPTH):
        p = f"blocks.{n}."
        qkv_bias = torch.cat([state[p + "attn.q_bias"], torch.zeros(HIDDEN), state[p + "attn.v_bias"]])
        qkv = F.linear(norm(x, p + "norm1"), state[p + "attn.qkv.weight"], qkv_bias)
        q, k, v = qkv.reshape(batch, tokens, 3, HEADS, head_dim).permute(2, 0, 3, 1, 4)
        attention = ((q * head_dim**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        mixed = (attention @ v).transpose(1, 2).reshape(batch, tokens, HIDDEN)
        x = x + F.linear(mixed, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        hidden = F.gelu(F.linear(norm(x, p + "norm2"), state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
        x = x + F.linear(hidden, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    pooled = norm(x.mean(dim=1), "fc_norm")
    return pooled, F.linear(pooled, state["head.weight"], state["head.bias"])


def random_frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(count)]


def normalised(frames: list[np.ndarray]) -> torch.Tensor:
    """uint8 frames -> (3, T, H, W) as the official pipeline feeds them: [0, 1], ImageNet mean/std."""
    pixels = torch.from_numpy(np.stack(frames)).float().permute(3, 0, 1, 2) / 255.0
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return (pixels - mean[:, None, None, None]) / std[:, None, None, None]


def test_position_table_matches_its_definition():
    torch.testing.assert_close(sinusoid_position_table(TOKENS, HIDDEN), reference_positions(TOKENS, HIDDEN))


def test_converted_model_computes_the_official_features(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    torch.manual_seed(0)
    state = official_state_dict()
    torch.save({"model": state, "epoch": 3}, tmp_path / "official.pth")  # nested, as released
    out = convert_videomae_v2(tmp_path / "official.pth", tmp_path / "hf", OVERRIDES)

    config = json.loads((out / "config.json").read_text())
    expected = {
        "hidden_size": HIDDEN,
        "num_hidden_layers": DEPTH,
        "num_attention_heads": HEADS,
        "intermediate_size": MLP,
        "patch_size": PATCH,
        "tubelet_size": TUBELET,
        "num_frames": FRAMES,
        "image_size": SIZE,
        "use_mean_pooling": True,
        "qv_bias": True,
        "layer_norm_eps": 1e-6,
    }
    assert {key: config[key] for key in expected} == expected
    assert len(config["id2label"]) == CLASSES

    # Every transformers parameter is filled, and nothing else is stored.
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", framework="pt") as handle:
        stored = set(handle.keys())
    empty_model = VideoMAEForVideoClassification(VideoMAEConfig.from_pretrained(out))
    assert stored == set(empty_model.state_dict())

    frames = [random_frames(FRAMES, seed) for seed in (1, 2, 3)]
    reference_pooled, reference_logits = reference_forward(state, torch.stack([normalised(f) for f in frames]))

    backbone = load_backbone("videomae", out, "cpu", None, precision="fp32")  # the reference is float32
    features = backbone.clip_features(frames)
    np.testing.assert_allclose(features, reference_pooled.numpy(), atol=2e-4, rtol=1e-4)
    assert not np.allclose(features[0], features[1], atol=1e-2)  # the clips really differ

    classifier = VideoMAEForVideoClassification.from_pretrained(out).eval()
    with torch.inference_mode():
        pixels = torch.stack([normalised(f) for f in frames]).permute(0, 2, 1, 3, 4)  # (B, T, 3, H, W)
        logits = classifier(pixel_values=pixels).logits
    # transformers' fc_norm uses eps 1e-5 instead of 1e-6 here, hence the looser tolerance.
    np.testing.assert_allclose(logits.numpy(), reference_logits.numpy(), atol=2e-3, rtol=1e-3)


def test_fixed_position_embeddings_are_accepted_and_learned_ones_rejected(tmp_path):
    state = official_state_dict()
    state["pos_embed"] = reference_positions(TOKENS, HIDDEN)[None]
    torch.save(state, tmp_path / "fixed.pth")
    convert_videomae_v2(tmp_path / "fixed.pth", tmp_path / "fixed", OVERRIDES)
    assert (tmp_path / "fixed" / "model.safetensors").is_file()

    state["pos_embed"] = torch.randn(1, TOKENS, HIDDEN)
    torch.save(state, tmp_path / "learned.pth")
    with pytest.raises(InputError, match="learned.pth: pos_embed is learned"):
        convert_videomae_v2(tmp_path / "learned.pth", tmp_path / "learned", OVERRIDES)
    with pytest.raises(InputError, match="pos_embed has 16 positions but 16 frames at 32 give 32"):
        convert_videomae_v2(tmp_path / "learned.pth", tmp_path / "learned", {**OVERRIDES, "num_frames": 16})


def test_converter_input_errors(tmp_path):
    state = official_state_dict()
    torch.save({"module": state}, tmp_path / "a.pth")
    with pytest.raises(InputError, match="hidden size 64 is not a known ViT size; give num_attention_heads"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "out")
    with pytest.raises(InputError, match="config override 'depth': not allowed"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "out", {**OVERRIDES, "depth": 3})
    with pytest.raises(InputError, match="64 is not divisible by 5 heads"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "out", {**OVERRIDES, "num_attention_heads": 5})

    state["blocks.0.gamma_1"] = torch.ones(HIDDEN)  # layer scale: transformers' VideoMAE has none
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(InputError, match=r"b.pth: 1 tensors have no counterpart .*blocks.0.gamma_1"):
        convert_videomae_v2(tmp_path / "b.pth", tmp_path / "out", OVERRIDES)

    del state["blocks.0.gamma_1"], state["blocks.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "c.pth")
    with pytest.raises(InputError, match="c.pth: missing 'blocks.1.mlp.fc2.bias'"):
        convert_videomae_v2(tmp_path / "c.pth", tmp_path / "out", OVERRIDES)

    torch.save({"optimizer": {"lr": 0.1}}, tmp_path / "d.pth")
    with pytest.raises(InputError, match="d.pth: no weights found"):
        convert_videomae_v2(tmp_path / "d.pth", tmp_path / "out", OVERRIDES)
    assert not (tmp_path / "out" / "config.json").exists()


def test_hostile_checkpoints_are_one_line_naming_the_tensor(tmp_path):
    """Wrong shapes, NaN, integer weights, int keys, a missing first MLP and non-checkpoint bytes were
    tracebacks (ValueError, KeyError, AttributeError) or, for a wrong norm/head shape and NaN, a written folder."""
    expects = "transformers' VideoMAE expects"
    cases = {
        "blocks.0.attn.qkv.weight": (torch.zeros(10, HIDDEN), r"qkv.weight' has shape \(10, 64\); expected \(192, 64"),
        "blocks.0.norm1.weight": (torch.zeros(7), rf"layernorm_before.weight' has shape \(7,\); {expects} \(64,\)"),
        "head.weight": (torch.zeros(CLASSES), rf"'classifier.weight' has shape \(5,\); {expects} \(5, 64\)"),
        "patch_embed.proj.weight": (torch.zeros(HIDDEN, 3, PATCH, PATCH), "expected 5 dimensions"),
        "blocks.1.norm2.bias": (torch.full((HIDDEN,), float("nan")), "'blocks.1.norm2.bias' holds NaN or infinite"),
        "blocks.0.mlp.fc1.bias": (torch.zeros(MLP, dtype=torch.int64), "dtype torch.int64; expected floating-point"),
    }
    for n, (key, (tensor, message)) in enumerate(cases.items()):
        state = official_state_dict()
        state[key] = tensor
        torch.save(state, tmp_path / f"{n}.pth")
        with pytest.raises(InputError, match=message):
            convert_videomae_v2(tmp_path / f"{n}.pth", tmp_path / "out", OVERRIDES)
    state = official_state_dict()
    del state["blocks.0.mlp.fc1.weight"]
    torch.save(state, tmp_path / "nofc1.pth")
    with pytest.raises(InputError, match="nofc1.pth: missing 'blocks.0.mlp.fc1.weight'"):
        convert_videomae_v2(tmp_path / "nofc1.pth", tmp_path / "out", OVERRIDES)
    torch.save({1: torch.zeros(2)}, tmp_path / "intkey.pth")
    with pytest.raises(InputError, match="expected tensor names"):
        convert_videomae_v2(tmp_path / "intkey.pth", tmp_path / "out", OVERRIDES)
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(InputError, match="text.pth: not a PyTorch checkpoint"):
        convert_videomae_v2(tmp_path / "text.pth", tmp_path / "out", OVERRIDES)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputError, match="empty.pth: cannot read the checkpoint: the file is empty or cut short"):
        convert_videomae_v2(tmp_path / "empty.pth", tmp_path / "out", OVERRIDES)
    # a checkpoint with Python objects (the official one keeps its argparse.Namespace): torch's text advised
    # weights_only=False, which runs the file's code; a missing file said Python's "[Errno 2] ..."
    import argparse

    torch.save({"model": official_state_dict(), "args": argparse.Namespace(lr=1)}, tmp_path / "objects.pth")
    with pytest.raises(InputError, match=r"objects.pth: holds Python objects besides tensors, which mgrec does not "
                                         r"unpickle .*torch.save\(model.state_dict\(\), PATH\)$"):
        convert_videomae_v2(tmp_path / "objects.pth", tmp_path / "out", OVERRIDES)
    with pytest.raises(InputError, match=r"gone.pth: cannot read the checkpoint: No such file or directory$"):
        convert_videomae_v2(tmp_path / "gone.pth", tmp_path / "out", OVERRIDES)
    (tmp_path / "garbled.pth").write_bytes(b"\x80\x02garbage")  # a pickle's start, then no pickle: not objects
    with pytest.raises(InputError, match=r"garbled.pth: cannot read the checkpoint: "):
        convert_videomae_v2(tmp_path / "garbled.pth", tmp_path / "out", OVERRIDES)
    looped: dict = {}
    looped["model"] = looped  # unpickles fine (weights_only), and the unwrapping followed it forever
    pair: dict = {"module": {}}
    pair["module"]["state_dict"] = pair
    for name, state in (("loop.pth", looped), ("pair.pth", pair)):
        torch.save(state, tmp_path / name)
        with pytest.raises(InputError, match=f"{name}: its 'model'/'module'/'state_dict' entries lead back"):
            convert_videomae_v2(tmp_path / name, tmp_path / "out", OVERRIDES)
    assert not (tmp_path / "out").exists() or not (tmp_path / "out" / "config.json").exists()


def test_an_output_that_is_a_file_is_named_before_the_checkpoint_is_read(tmp_path):
    (tmp_path / "file").write_text("keep")
    with pytest.raises(InputError, match="cannot write into .*file: it is a file, not a folder"):
        convert_videomae_v2(tmp_path / "missing.pth", tmp_path / "file", OVERRIDES)
    with pytest.raises(InputError, match="a part of the path is a file, not a folder"):
        convert_videomae_v2(tmp_path / "missing.pth", tmp_path / "file" / "sub", OVERRIDES)
    assert (tmp_path / "file").read_text() == "keep"


def test_head_frame_and_size_overrides_must_be_positive_whole_numbers(tmp_path, capsys):
    """`convert-videomae --heads -4` wrote a folder whose config had -4 heads (`--heads 0` was ignored); the
    pos_embed message asked for overrides the command line did not have (now --frames / --size)."""
    from mgrec.cli import main

    torch.save(official_state_dict(), tmp_path / "a.pth")
    for value in (-4, 0, 2.5, True):
        with pytest.raises(InputError, match="config override 'num_attention_heads': expected a whole number >= 1"):
            convert_videomae_v2(tmp_path / "a.pth", tmp_path / "out", {**OVERRIDES, "num_attention_heads": value})
    assert not (tmp_path / "out" / "config.json").exists()
    with pytest.raises(SystemExit):
        main(["convert-videomae", str(tmp_path / "a.pth"), str(tmp_path / "out"), "--heads=-4"])
    assert "--heads: expected at least 1" in capsys.readouterr().err
    assert main(["convert-videomae", str(tmp_path / "a.pth"), str(tmp_path / "out"),
                 "--heads", str(HEADS), "--frames", str(FRAMES), "--size", str(SIZE)]) in (0, None)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["num_attention_heads"], config["num_frames"], config["image_size"]) == (HEADS, FRAMES, SIZE)


def test_a_conversion_stopped_by_a_file_size_limit_is_one_line_and_leaves_no_part(tmp_path):
    # safetensors' own write into a fixed `.model.safetensors.partial` (shared by two converters into one folder) was a
    # raw `SafetensorError` traceback under `ulimit -f` or on a full disk, and left that part in the folder
    import subprocess
    import sys

    torch.save(official_state_dict(), tmp_path / "official.pth")
    code = ("import resource, sys\nfrom mgrec.errors import InputError\n"
            "from mgrec.extract.videomae_convert import convert_videomae_v2\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))\n"
            f"try:\n    convert_videomae_v2(sys.argv[1], sys.argv[2], {OVERRIDES!r})\n"
            "except InputError as exc:\n    print(exc)\n")
    out = tmp_path / "hf"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "official.pth"), str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.stdout.strip() == f"cannot write {out / 'model.safetensors'}: File too large", done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == []
    convert_videomae_v2(tmp_path / "official.pth", out, OVERRIDES)  # without the limit: the whole folder
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["num_frames"] == FRAMES


def test_a_folder_holding_another_models_files_is_refused_and_kept(tmp_path):
    # convert-videomae replaced config.json and model.safetensors of any folder it was given (a Hugging Face
    # download, the checkpoint's own folder holding a file of that name); an earlier conversion is still replaced
    torch.save(official_state_dict(), tmp_path / "a.pth")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert"}')
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"already holds config.json not written by mgrec convert-videomae"):
        convert_videomae_v2(tmp_path / "a.pth", other, OVERRIDES)
    assert (other / "config.json").read_text() == '{"model_type": "bert"}'
    assert sorted(path.name for path in other.iterdir()) == ["config.json", "notes.txt"]
    torch.save(official_state_dict(), tmp_path / "model.safetensors")  # a checkpoint saved under that name
    with pytest.raises(InputError, match=r"already holds model.safetensors"):
        convert_videomae_v2(tmp_path / "model.safetensors", tmp_path, OVERRIDES)
    out = convert_videomae_v2(tmp_path / "a.pth", tmp_path / "hf", OVERRIDES)
    first = (out / "model.safetensors").read_bytes()
    torch.save(official_state_dict(seed=1), tmp_path / "a.pth")
    convert_videomae_v2(tmp_path / "a.pth", out, OVERRIDES)  # a rerun replaces its own conversion
    assert (out / "model.safetensors").read_bytes() != first


@pytest.mark.parametrize("overrides", [{"image_size": 1_600_000}, {"num_frames": 100_000_000}])
def test_a_clip_of_too_many_tokens_is_refused_before_any_table_is_built(tmp_path, overrides):
    # --size 1600000 or --frames 100000000 (a typo) built transformers' position table for 10**10 tokens: the memory
    # ran out, or the command ran on without end
    torch.save(official_state_dict(), tmp_path / "a.pth")
    with pytest.raises(InputError, match=r"make \d+ tokens .* at most 32768 are supported: check --frames and --size"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "hf", {**OVERRIDES, **overrides})
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize("key, shape", [("patch_embed.proj.weight", (HIDDEN, 3, 0, PATCH, PATCH)),
                                        ("patch_embed.proj.weight", (0, 3, TUBELET, PATCH, PATCH)),
                                        ("head.weight", (0, HIDDEN))])
def test_a_tensor_without_values_is_named(tmp_path, key, shape):
    # a tubelet of 0 was a ZeroDivisionError traceback, a hidden size of 0 'expected (0, 0)' for qkv, and a head of
    # 0 classes 'no counterpart in transformers' VideoMAE (head.bias, head.weight)'
    state = official_state_dict()
    state[key] = torch.zeros(shape)
    torch.save(state, tmp_path / "a.pth")
    expected = rf"tensor '{re.escape(key)}' has shape \(.*\), with no values; the checkpoint"
    with pytest.raises(InputError, match=expected):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "hf", OVERRIDES)


@pytest.mark.parametrize("key", ["blocks.0.attn.q_bias", "blocks.0.attn.v_bias", "fc_norm.weight", "head.weight"])
def test_a_missing_tensor_is_named_whichever_it_is(tmp_path, key):
    # without blocks.0.attn.q_bias (or fc_norm.weight, head.weight) the checkpoint was read as one without those
    # biases (pooling, head), and the rest refused: '3 tensors have no counterpart in transformers' VideoMAE'
    state = official_state_dict()
    del state[key]
    torch.save(state, tmp_path / "a.pth")
    with pytest.raises(InputError, match=rf"a.pth: missing '{re.escape(key)}'$"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "hf", OVERRIDES)


@pytest.mark.parametrize("value, message", [(3.0, "entry 'blocks.0.norm1.weight' is float, not a tensor"),
                                            (None, "entry 'blocks.0.norm1.weight' is NoneType, not a tensor"),
                                            (torch.ones(HIDDEN).to_sparse(),
                                             "tensor 'blocks.0.norm1.weight' is stored as torch.sparse_coo; "
                                             "expected a dense tensor")])
def test_a_weight_that_is_not_a_dense_tensor_is_named(tmp_path, value, message):
    # a number or None was dropped, then called "missing" though the file held it; a sparse tensor was torch's
    # NotImplementedError traceback
    state = official_state_dict()
    state["blocks.0.norm1.weight"] = value
    torch.save(state, tmp_path / "a.pth")
    with pytest.raises(InputError, match=rf"a.pth: {re.escape(message)}"):
        convert_videomae_v2(tmp_path / "a.pth", tmp_path / "hf", OVERRIDES)
    assert not (tmp_path / "hf").exists()
