"""Convert an official VideoMAE V2 checkpoint into a transformers VideoMAE folder.

The official checkpoints (e.g. `vit_g_hybrid_pt_1200e_k710_ft.pth`: ViT-giant, 1408-d, patch 14,
40 blocks, 16 heads, MLP 6144, tubelet 2, 16 frames at 224, mean pooling with `fc_norm`, a
710-class head) use the layout of VideoMAE V2's `modeling_finetune.py`; transformers' VideoMAE
computes the same network under other names:

    patch_embed.proj                 -> videomae.embeddings.patch_embeddings.projection
    blocks.N.norm1 / norm2           -> videomae.encoder.layer.N.layernorm_before / layernorm_after
    blocks.N.attn.qkv (+ q_bias, v_bias; the key has no bias)
                                     -> videomae.encoder.layer.N.attention.attention.query / key / value
    blocks.N.attn.proj               -> videomae.encoder.layer.N.attention.output.dense
    blocks.N.mlp.fc1 / fc2           -> videomae.encoder.layer.N.intermediate.dense / output.dense
    fc_norm (mean pooling) or norm   -> fc_norm or videomae.layernorm
    head                             -> classifier

Position embeddings are the fixed sinusoid table in both, so they are not stored (a stored
`pos_embed` is checked against it). The architecture is read from the tensor shapes; the
number of heads cannot be, so it comes from `HEADS_BY_HIDDEN_SIZE` or `config_overrides`, and
the clip shape (16 frames at 224, also not in the weights) from the defaults or the overrides.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from mgrec.errors import InputError
from mgrec.files import atomic_write, check_writable

# The standard ViT sizes: S, B, L, H, g.
HEADS_BY_HIDDEN_SIZE = {384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
DEFAULT_NUM_FRAMES = 16
DEFAULT_IMAGE_SIZE = 224
# The clip's tokens, (frames / tubelet) * (size / patch) ** 2: 1568 for the official 16 frames at 224 (64 frames at 448
# give 25088). Attention is quadratic in them and transformers builds their position table as Python lists, so a
# mistyped --size 1600000 or --frames 100000000 exhausted the memory instead of being refused.
MAX_TOKENS = 32768
OVERRIDABLE = ("image_size", "num_frames", "num_attention_heads", "layer_norm_eps")

# Per block: official suffix -> transformers suffix (q/k/v are split out of qkv separately).
_BLOCK_KEYS = {
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "attn.proj.weight": "attention.output.dense.weight",
    "attn.proj.bias": "attention.output.dense.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "mlp.fc1.weight": "intermediate.dense.weight",
    "mlp.fc1.bias": "intermediate.dense.bias",
    "mlp.fc2.weight": "output.dense.weight",
    "mlp.fc2.bias": "output.dense.bias",
}


def load_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an official checkpoint, unwrapped from its 'model'/'module' nesting."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:  # said as a person would: "[Errno 2] No such file or directory: '...'" was Python's
        raise InputError(f"{path}: cannot read the checkpoint: {exc.strerror or exc}") from None
    if not head:
        raise InputError(f"{path}: cannot read the checkpoint: the file is empty or cut short")
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise InputError(f"{path}: not a PyTorch checkpoint (a torch.save file is a zip archive or a pickle)")
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text advises weights_only=False, which runs the file's code: said in mgrec's words instead
        if "Unsupported global" in str(exc):  # an object of some class
            raise InputError(f"{path}: holds Python objects besides tensors, which mgrec does not unpickle (it never "
                             "runs a file's code); save the weights alone: torch.save(model.state_dict(), "
                             "PATH)") from None
        raise InputError(f"{path}: cannot read the checkpoint: its pickle is garbled or cut short") from None
    except (OSError, RuntimeError, EOFError) as exc:
        reason = str(exc) or "the file is empty or cut short"
        raise InputError(f"{path}: cannot read the checkpoint: {reason}") from None
    except Exception as exc:  # noqa: BLE001 - the unpickler meets arbitrary bytes: KeyError, ValueError, ...
        kind = type(exc).__name__
        raise InputError(f"{path}: not a PyTorch checkpoint (torch.save file): {kind}: {exc}") from None
    unwrapped = set()  # a dict holding itself ({"model": d}) unpickles fine and looped forever
    while isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
        nested = next(
            (state[key] for key in ("model", "module", "state_dict") if isinstance(state.get(key), dict)), None
        )
        if nested is None:
            raise InputError(f"{path}: no weights found; top-level keys: {', '.join(map(str, state)) or 'none'}")
        if id(nested) in unwrapped:
            raise InputError(f"{path}: its 'model'/'module'/'state_dict' entries lead back to themselves; no weights "
                             "found")
        unwrapped.add(id(state))
        state = nested
    if not isinstance(state, dict):
        raise InputError(f"{path}: expected a state dict, found {type(state).__name__}")
    tensors = dict(state)
    for key, value in tensors.items():
        if not isinstance(key, str):
            raise InputError(f"{path}: expected tensor names (strings) as keys, found {type(key).__name__} {key!r}")
        # A weight stored as a number or None was dropped, then said to be "missing" while the file held it; a
        # sparse one broke the checks below with torch's NotImplementedError. A state dict holds dense tensors.
        if not isinstance(value, torch.Tensor):
            raise InputError(f"{path}: entry '{key}' is {type(value).__name__}, not a tensor; expected a state dict "
                             "of tensors alone")
        if value.layout != torch.strided:
            raise InputError(f"{path}: tensor '{key}' is stored as {value.layout}; expected a dense tensor")
        if not value.is_floating_point():
            raise InputError(f"{path}: tensor '{key}' has dtype {value.dtype}; expected floating-point weights")
        if value.numel() == 0:  # a 0 in patch_embed's tubelet or patch divided by zero; a 0-class head was dropped
            raise InputError(f"{path}: tensor '{key}' has shape {tuple(value.shape)}, with no values; the "
                             "checkpoint is damaged")
        if not torch.isfinite(value).all():
            raise InputError(f"{path}: tensor '{key}' holds NaN or infinite values; the checkpoint is damaged")
    # Checkpoints saved from DistributedDataParallel prefix every key with 'module.'.
    return {key.removeprefix("module."): value for key, value in tensors.items()}


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """(num_positions, dim) fixed position embeddings: sin on even, cos on odd channels,
    angle = position / 10000 ** (2 * (channel // 2) / dim) (VideoMAE's table)."""
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angle = position / torch.pow(10000.0, exponent)[None]
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def infer_config(state: dict[str, torch.Tensor], source: str | Path, overrides: dict | None = None) -> dict:
    """VideoMAEConfig arguments read from the tensor shapes (plus defaults and `overrides`)."""
    overrides = dict(overrides or {})
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise InputError(f"config override '{key}': not allowed; choose from {', '.join(OVERRIDABLE)}")
        if key != "layer_norm_eps" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"config override '{key}': expected a whole number >= 1, got {value!r}")
    if "patch_embed.proj.weight" not in state:
        raise InputError(f"{source}: no 'patch_embed.proj.weight'; not a VideoMAE V2 fine-tuned checkpoint")
    if state["patch_embed.proj.weight"].ndim != 5:
        raise InputError(
            f"{source}: 'patch_embed.proj.weight' has shape {tuple(state['patch_embed.proj.weight'].shape)}; "
            "expected 5 dimensions (hidden, channels, tubelet, patch, patch) of a video Conv3d"
        )
    hidden, channels, tubelet, patch, patch_w = state["patch_embed.proj.weight"].shape
    if patch != patch_w:
        raise InputError(f"{source}: non-square patches ({patch}x{patch_w}) are not supported")
    depth = len({int(m.group(1)) for key in state if (m := re.match(r"blocks\.(\d+)\.", key))})
    if depth == 0:
        raise InputError(f"{source}: no transformer blocks ('blocks.N.*') in the checkpoint")
    if "blocks.0.mlp.fc1.weight" not in state:
        raise InputError(f"{source}: missing 'blocks.0.mlp.fc1.weight'")
    heads = overrides.get("num_attention_heads", HEADS_BY_HIDDEN_SIZE.get(hidden))
    if heads is None:
        raise InputError(
            f"{source}: hidden size {hidden} is not a known ViT size; give num_attention_heads in the config "
            "overrides (convert-videomae --heads)"
        )
    if hidden % heads:
        raise InputError(f"{source}: hidden size {hidden} is not divisible by {heads} heads")
    config = {
        "image_size": overrides.get("image_size", DEFAULT_IMAGE_SIZE),
        "num_frames": overrides.get("num_frames", DEFAULT_NUM_FRAMES),
        "patch_size": patch,
        "tubelet_size": tubelet,
        "num_channels": channels,
        "hidden_size": hidden,
        "num_hidden_layers": depth,
        "num_attention_heads": heads,
        "intermediate_size": state["blocks.0.mlp.fc1.weight"].shape[0],
        "hidden_act": "gelu",
        # VideoMAE V2 builds every LayerNorm with eps 1e-6.
        "layer_norm_eps": overrides.get("layer_norm_eps", 1e-6),
        # Each read from any of its tensors, not one: a checkpoint missing blocks.0.attn.q_bias (or fc_norm.weight,
        # head.weight) was read as one without, and its other biases refused as having 'no counterpart'
        "qv_bias": any(re.fullmatch(r"blocks\.\d+\.attn\.[qv]_bias", key) for key in state),
        "use_mean_pooling": "fc_norm.weight" in state or "fc_norm.bias" in state,
        "num_labels": next((state[key].shape[0] for key in ("head.weight", "head.bias") if key in state), 0),
        "architectures": ["VideoMAEForVideoClassification"],
    }
    if config["image_size"] % patch or config["num_frames"] % tubelet:
        raise InputError(
            f"{source}: image size {config['image_size']} must be a multiple of the patch size {patch} and "
            f"num_frames {config['num_frames']} a multiple of the tubelet size {tubelet}"
        )
    tokens = (config["num_frames"] // tubelet) * (config["image_size"] // patch) ** 2
    if tokens > MAX_TOKENS:
        raise InputError(
            f"{source}: {config['num_frames']} frames at {config['image_size']} pixels make {tokens} tokens (frames / "
            f"tubelet {tubelet} x (size / patch {patch}) squared); at most {MAX_TOKENS} are supported: check --frames "
            "and --size (num_frames, image_size)"
        )
    return config


def convert_state_dict(state: dict[str, torch.Tensor], config: dict, source: str | Path) -> dict[str, torch.Tensor]:
    """Rename (and split qkv of) an official state dict into the transformers
    `VideoMAEForVideoClassification` layout. Every official tensor must be used exactly once."""
    hidden = config["hidden_size"]
    unused = set(state)
    converted: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in state:
            raise InputError(f"{source}: missing '{key}'")
        unused.discard(key)
        return state[key]

    converted["videomae.embeddings.patch_embeddings.projection.weight"] = take("patch_embed.proj.weight")
    converted["videomae.embeddings.patch_embeddings.projection.bias"] = take("patch_embed.proj.bias")
    if "pos_embed" in state:
        _check_fixed_positions(take("pos_embed"), config, source)
    for n in range(config["num_hidden_layers"]):
        official, ours = f"blocks.{n}.", f"videomae.encoder.layer.{n}."
        # Cloned: safetensors refuses tensors that share memory, as slices of qkv would.
        qkv = take(official + "attn.qkv.weight")
        if tuple(qkv.shape) != (3 * hidden, hidden):
            raise InputError(
                f"{source}: '{official}attn.qkv.weight' has shape {tuple(qkv.shape)}; expected {(3 * hidden, hidden)}"
            )
        query, key, value = (part.clone() for part in qkv.split(hidden, dim=0))
        converted[ours + "attention.attention.query.weight"] = query
        converted[ours + "attention.attention.key.weight"] = key
        converted[ours + "attention.attention.value.weight"] = value
        if config["qv_bias"]:
            converted[ours + "attention.attention.query.bias"] = take(official + "attn.q_bias")
            converted[ours + "attention.attention.value.bias"] = take(official + "attn.v_bias")
        for old, new in _BLOCK_KEYS.items():
            converted[ours + new] = take(official + old)
    if config["use_mean_pooling"]:
        converted["fc_norm.weight"], converted["fc_norm.bias"] = take("fc_norm.weight"), take("fc_norm.bias")
    else:
        converted["videomae.layernorm.weight"], converted["videomae.layernorm.bias"] = (
            take("norm.weight"),
            take("norm.bias"),
        )
    if config["num_labels"]:
        converted["classifier.weight"], converted["classifier.bias"] = take("head.weight"), take("head.bias")
    if unused:
        raise InputError(
            f"{source}: {len(unused)} tensors have no counterpart in transformers' VideoMAE "
            f"(e.g. {', '.join(sorted(unused)[:4])}); layer scale (gamma_1/gamma_2), learned position "
            "embeddings and pre-training (encoder./decoder.) checkpoints are not supported"
        )
    return {name: tensor.contiguous() for name, tensor in converted.items()}


def check_shapes(tensors: dict[str, torch.Tensor], config: dict, source: str | Path) -> None:
    """Every converted tensor must have the shape transformers' VideoMAE (built on the meta device) expects."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    with torch.device("meta"):
        expected = VideoMAEForVideoClassification(VideoMAEConfig(**config)).state_dict()
    for name, tensor in tensors.items():
        if name in expected and tensor.shape != expected[name].shape:
            raise InputError(
                f"{source}: the tensor converted to '{name}' has shape {tuple(tensor.shape)}; "
                f"transformers' VideoMAE expects {tuple(expected[name].shape)}"
            )


def _check_fixed_positions(pos_embed: torch.Tensor, config: dict, source: str | Path) -> None:
    tokens = (config["num_frames"] // config["tubelet_size"]) * (config["image_size"] // config["patch_size"]) ** 2
    table = pos_embed.reshape(-1, pos_embed.shape[-1]).float()
    if table.shape[0] != tokens:
        raise InputError(
            f"{source}: pos_embed has {table.shape[0]} positions but {config['num_frames']} frames at "
            f"{config['image_size']} give {tokens}; set num_frames / image_size in the config overrides "
            "(convert-videomae --frames / --size)"
        )
    if not torch.allclose(table, sinusoid_position_table(tokens, table.shape[1]), atol=1e-4):
        raise InputError(f"{source}: pos_embed is learned, not the fixed sinusoid table transformers' VideoMAE uses")


def _converted_here(weights: Path) -> bool:
    """Whether `weights` is a conversion of this module's (its safetensors metadata names the checkpoint)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            return "converted_from" in (handle.metadata() or {})
    except Exception:  # noqa: BLE001 - not a safetensors file at all (a checkpoint saved under that name, text, ...)
        return False


def _check_not_another_models_folder(out_dir: Path, checkpoint_path: Path) -> None:
    """`out_dir`'s config.json and model.safetensors are replaced only when they are an earlier conversion's: another
    model's folder (a Hugging Face download, the user's own files) kept them, and lost them to the conversion."""
    weights, config = out_dir / "model.safetensors", out_dir / "config.json"
    if weights.is_file() and _converted_here(weights):
        return
    found = [path.name for path in (config, weights) if path.exists() or path.is_symlink()]
    if found:
        raise InputError(
            f"{out_dir}: already holds {' and '.join(found)} not written by mgrec convert-videomae (another model's "
            f"folder?), which converting {checkpoint_path.name} would replace; give a new or empty folder"
        )


def convert_videomae_v2(checkpoint_path: str | Path, out_dir: str | Path, config_overrides: dict | None = None) -> Path:
    """Write `out_dir/config.json` and `out_dir/model.safetensors` for `--backbone videomae --weights out_dir`.

    `config_overrides` may set image_size, num_frames, num_attention_heads, layer_norm_eps.
    The weights keep the checkpoint's dtype. Returns `out_dir`.
    """
    from safetensors.torch import save_file
    from transformers import VideoMAEConfig

    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    check_writable(out_dir, is_dir=True)  # before the (long) load of a large checkpoint
    _check_not_another_models_folder(out_dir, checkpoint_path)
    state = load_official_state_dict(checkpoint_path)
    config = infer_config(state, checkpoint_path, config_overrides)
    tensors = convert_state_dict(state, config, checkpoint_path)
    check_shapes(tensors, config, checkpoint_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Weights first, config last, each whole or not at all (mgrec.files: a temporary name of this writer's own, then
    # the rename): a folder with a config is complete. A fixed temporary name was shared by two converters into one
    # folder, safetensors' and transformers' own writes on a full disk were raw tracebacks, and save_pretrained's
    # config.json was written in place (cut by a full disk, it still marked the folder complete).
    (out_dir / "config.json").unlink(missing_ok=True)
    atomic_write(out_dir / "model.safetensors", lambda temp: save_file(
        tensors, temp, metadata={"format": "pt", "converted_from": checkpoint_path.name}))
    hf_config = VideoMAEConfig(**config)
    if hasattr(hf_config, "validate"):  # as save_pretrained does before it writes
        hf_config.validate()
    atomic_write(out_dir / "config.json", lambda temp: hf_config.to_json_file(temp, use_diff=True))
    return out_dir
