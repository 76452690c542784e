"""Trainable adapters inside a frozen VideoMAE, for end-to-end training from raw video (AdaTAD's recipe).

AdaTAD (Liu et al., CVPR 2024) trains a detector on raw frames through a frozen VideoMAE whose
encoder layers are each followed by a small trainable adapter; only the adapters and the head
learn, so the optimiser holds a few percent of the backbone's weights and the memory goes to
activations. This module puts such adapters into transformers' `VideoMAEModel` (the model that
`mgrec.extract.backbones.VideoMAE` loads); `mgrec.extract.adapter_memory` estimates the memory of a training
step.

An adapter, after encoder layer i (i in `AdapterConfig.blocks`), on the layer's tokens x of shape
(clips, T'*H'*W', C) with T' = frames / tubelet and H' x W' = the patch grid:

    h     = GELU(down(x))                                   C -> C * ratio channels
    mixed = depthwise temporal conv (kernel k) of h over T', at every grid position
          [ + depthwise spatial k x k conv of h over each tubelet's H' x W' grid ]   (spatial_temporal)
    h     = h + pointwise(mixed)                            a 1x1 conv, written as a Linear over channels
    x     = x + scale * up(h)                               up starts at zero, scale at 1

`up` starts at zero so that the adapted backbone computes exactly what the frozen one does at step
0; `scale` starts at 1, not 0: with both at zero neither would ever get a gradient. At step 0 only
`up` gets a gradient (everything before it is multiplied by its zero weights), from step 1 on all
adapter parameters do. The temporal conv runs within a clip (its T' tubelets): clips of mgrec's
feature grid overlap (window 16, stride 4), so the clips of a window are not one time axis (AdaTAD's
conv runs across the clips of a window, which there do not overlap).

The frozen backbone always runs in eval mode. The layers up to the first adapter build no autograd
graph (nothing in them needs a gradient); with `checkpointing`, every layer from the first adapted
one on (with its adapter) is recomputed in the backward pass (`torch.utils.checkpoint`,
non-reentrant) and keeps only its input. Precision follows `mgrec.devices.autocast_dtype` (auto:
bf16 autocast on CUDA, float32 on CPU).

Image size: VideoMAE's position embeddings are a fixed sinusoid table over the flattened token
index (not learned, not stored in the weights), so another image size or clip length gets the table
that VideoMAE itself would build for that many tokens (`videomae_convert.sinusoid_position_table`;
bit-identical to transformers' table at the native size). The patch grid is size // patch: with
patch 14 at 160 px (ViT-g) the last 6 pixel rows and columns are not seen, as in AdaTAD.
(AdaTAD's released code instead interpolates the 224-px table bicubically over the grid; which of
the two serves a frozen backbone better can only be measured with real weights.)

Output: per clip, the mean of the last hidden state over its tokens, then `fc_norm` where the
checkpoint has one: exactly the feature `mgrec.extract.backbones.VideoMAE` extracts, so a detector
trained on extracted features sees the same kind of input, shaped (batch, clips, C).

Memory (`mgrec.extract.adapter_memory`): `estimate_end_to_end_bytes` adds up what one training step holds
(frozen float32 weights, adapters with AdamW state, pixels, the activations autograd keeps, one layer's working
set) from the config alone, and `check_end_to_end_fits` refuses a setting with the numbers before anything is
allocated, as `mgrec.model.memory` does for the detector.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mgrec.config import Config
from mgrec.data.features import read_sidecar
from mgrec.data.videos import window_clips
from mgrec.devices import autocast_dtype
from mgrec.errors import InputError
from mgrec.extract.adapter_memory import backbone_parameter_count
from mgrec.extract.backbones import IMAGENET_MEAN, IMAGENET_STD, Backbone, VideoMAE, clip_batch_start
from mgrec.extract.video import batched
from mgrec.extract.videomae_convert import sinusoid_position_table
from mgrec.files import brief, file_sha256, read_json
from mgrec.model.end_to_end import ADAPTED_BACKBONE, split_state
from mgrec.model.memory import available_bytes
from mgrec.run import RunDir

if TYPE_CHECKING:  # transformers is imported only where a model is built (it is slow to import)
    from transformers import VideoMAEConfig, VideoMAEModel

ADAPTER_KINDS = ("temporal", "spatial_temporal")
BLOCK_CHOICES = ("all", "every_other")
# Where `AdapterConfig`'s fields live in a config (`build_adapted_backbone`): messages name these keys.
BACKBONE_KEYS = {"kind": "backbone.adapter", "blocks": "backbone.adapter_blocks", "ratio": "backbone.adapter_ratio",
                 "kernel": "backbone.adapter_kernel"}


def _key(key: str | dict[str, str], field: str) -> str:
    """The name of setting `field` in messages: `key`.field, or the config key `key` maps it to."""
    return key[field] if isinstance(key, dict) else f"{key}.{field}"


@dataclass(frozen=True)
class AdapterConfig:
    """Where the adapters go and how big they are. `blocks`: encoder layer indices after which an
    adapter is inserted, or "all" (AdaTAD's released configs) or "every_other" (layers 1, 3, 5, ...)."""

    kind: str = "temporal"  # temporal | spatial_temporal
    blocks: tuple[int, ...] | str = "all"
    ratio: float = 0.25  # bottleneck channels = int(C * ratio)
    kernel: int = 3  # temporal (and spatial) kernel size, odd

    def block_indices(self, num_layers: int, key: str | dict[str, str] = "adapters") -> tuple[int, ...]:
        """The sorted layer indices for a backbone of `num_layers` layers (InputError naming `key`.blocks)."""
        if self.blocks == "all":
            return tuple(range(num_layers))
        if self.blocks == "every_other":
            return tuple(range(1, num_layers, 2))
        if isinstance(self.blocks, str) or not isinstance(self.blocks, (tuple, list)):
            raise InputError(f"{_key(key, 'blocks')}: {self.blocks!r}; expected {' or '.join(BLOCK_CHOICES)} or a "
                             "list of layer indices")
        for index in self.blocks:
            if isinstance(index, bool) or not isinstance(index, int):
                raise InputError(f"{_key(key, 'blocks')}: {index!r} is not a layer index (an integer)")
            if not 0 <= index < num_layers:
                raise InputError(f"{_key(key, 'blocks')}: layer {index} is out of range; this backbone has "
                                 f"{num_layers} layers (0..{num_layers - 1})")
        if len(set(self.blocks)) != len(self.blocks):
            raise InputError(f"{_key(key, 'blocks')}: {list(self.blocks)} names a layer twice")
        if not self.blocks:
            raise InputError(f"{_key(key, 'blocks')}: empty; nothing would be trained")
        return tuple(sorted(self.blocks))

    def hidden_channels(self, dim: int, key: str | dict[str, str] = "adapters") -> int:
        """Bottleneck width for `dim` channels (InputError naming `key`.ratio)."""
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0 < self.ratio <= 1:
            raise InputError(f"{_key(key, 'ratio')}: {self.ratio!r}; expected a down-projection ratio in (0, 1]")
        hidden = int(dim * self.ratio)
        if hidden < 1:
            raise InputError(f"{_key(key, 'ratio')}: {self.ratio} of {dim} channels leaves none; use at least "
                             f"{1 / dim:.3g}")
        return hidden

    def check(self, num_layers: int, dim: int, key: str | dict[str, str] = "adapters") -> None:
        """InputError naming `key`.kind / .blocks / .ratio / .kernel for settings this backbone cannot take."""
        if self.kind not in ADAPTER_KINDS:
            raise InputError(f"{_key(key, 'kind')}: {self.kind!r}; expected one of {', '.join(ADAPTER_KINDS)}")
        if isinstance(self.kernel, bool) or not isinstance(self.kernel, int) or self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"{_key(key, 'kernel')}: {self.kernel!r}; expected an odd size >= 1 (padding kernel // 2 "
                             "on each side keeps the token grid)")
        self.block_indices(num_layers, key)
        self.hidden_channels(dim, key)


class Adapter(nn.Module):
    """One adapter on (clips, T'*H'*W', C) tokens: bottleneck, depthwise temporal (and spatial) conv,
    pointwise mix, zero-initialised up-projection, scaled residual (see the module docstring)."""

    def __init__(self, dim: int, cfg: AdapterConfig):
        super().__init__()
        hidden = cfg.hidden_channels(dim)
        self.down = nn.Linear(dim, hidden)
        self.temporal = nn.Conv1d(hidden, hidden, cfg.kernel, padding=cfg.kernel // 2, groups=hidden)
        self.spatial = (nn.Conv2d(hidden, hidden, cfg.kernel, padding=cfg.kernel // 2, groups=hidden)
                        if cfg.kind == "spatial_temporal" else None)
        self.pointwise = nn.Linear(hidden, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        t, height, width = grid
        h = F.gelu(self.down(x))
        clips, _, channels = h.shape
        cube = h.view(clips, t, height, width, channels)
        # Temporal: one sequence of T' tubelets per clip and grid position.
        along_time = cube.permute(0, 2, 3, 4, 1).reshape(clips * height * width, channels, t)
        mixed = self.temporal(along_time).view(clips, height, width, channels, t).permute(0, 4, 1, 2, 3)
        if self.spatial is not None:
            # Spatial: one H' x W' image per clip and tubelet.
            per_frame = cube.permute(0, 1, 4, 2, 3).reshape(clips * t, channels, height, width)
            mixed = mixed + self.spatial(per_frame).view(clips, t, channels, height, width).permute(0, 1, 3, 4, 2)
        h = h + self.pointwise(mixed.reshape(clips, t * height * width, channels))
        # Back in x's dtype: under autocast a float32 sum would change what the next frozen layer computes.
        return x + (self.scale * self.up(h)).to(x.dtype)


class AdaptedVideoMAE(nn.Module):
    """A frozen transformers `VideoMAEModel` with trainable adapters after some of its layers.

    `forward(frames)`: uint8 RGB frames (batch, clips, frames, H, W, 3), as `mgrec.extract.video`
    decodes them, -> (batch, clips, C) pooled clip features (mean over tokens, then `fc_norm`
    where given). `tokens(pixels)`: normalised (clips, frames, 3, H, W) -> last hidden state.
    Build it with `add_adapters`."""

    # Children whose weights are frozen: an end-to-end checkpoint leaves them out (`mgrec.model.end_to_end`).
    frozen_prefixes = ("backbone", "fc_norm")
    weights_sha256: str | None = None  # of the backbone's weights, set by `build_adapted_backbone`

    def __init__(self, backbone: VideoMAEModel, cfg: AdapterConfig, fc_norm: nn.LayerNorm | None = None,
                 checkpointing: bool = False, precision: str = "auto"):
        super().__init__()
        config = backbone.config
        cfg.check(config.num_hidden_layers, config.hidden_size)
        autocast_dtype(torch.device("cpu"), precision)  # an unknown precision fails here, not in the first step
        self.backbone = backbone
        self.fc_norm = fc_norm
        self.config = cfg
        self.checkpointing = checkpointing
        self.precision = precision
        self.adapters = nn.ModuleDict(
            {str(i): Adapter(config.hidden_size, cfg) for i in cfg.block_indices(config.num_hidden_layers)})
        self.first_adapted = min(int(i) for i in self.adapters)
        self.patch = config.patch_size
        self.tubelet = config.tubelet_size
        native = backbone.embeddings.position_embeddings  # (1, tokens, C), not a buffer: moved by hand
        self._positions: dict[tuple[int, torch.device], torch.Tensor] = {(native.shape[1], native.device): native}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1) * 255, persistent=False)
        for parameter in self.frozen_parameters():
            parameter.requires_grad_(False)
        self.train(self.training)

    # -- parameters ------------------------------------------------------------------------------

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The adapters' parameters, the ones training moves (`EndToEndDetector.param_groups` hands them to the
        optimiser in decay groups; a bare loop, as `benchmarks/end_to_end.py`, may take these)."""
        return list(self.adapters.parameters())

    def frozen_parameters(self) -> list[nn.Parameter]:
        frozen = list(self.backbone.parameters())
        return frozen + ([] if self.fc_norm is None else list(self.fc_norm.parameters()))

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor], source: str = "adapter weights") -> None:
        """Load the adapters' weights (`self.adapters.state_dict()`: what a run's checkpoint keeps of the encoder,
        under `adapters.`); InputError naming `source` and the first mismatching tensor."""
        own = self.adapters.state_dict()
        if differing := sorted(set(own) ^ set(state)):
            name = differing[0]
            raise InputError(f"{source}: adapter tensor '{name}' is {'missing' if name in own else 'unexpected'} "
                             f"(the adapter settings differ from those it was trained with)")
        for name, value in own.items():
            if tuple(state[name].shape) != tuple(value.shape):
                raise InputError(f"{source}: adapter tensor '{name}' has shape {tuple(state[name].shape)}, expected "
                                 f"{tuple(value.shape)}")
        self.adapters.load_state_dict(state)

    def train(self, mode: bool = True) -> AdaptedVideoMAE:
        super().train(mode)
        # Frozen means deterministic too: the backbone's dropout (if its config has any) stays off.
        self.backbone.eval()
        if self.fc_norm is not None:
            self.fc_norm.eval()
        return self

    # -- forward ---------------------------------------------------------------------------------

    def position_table(self, tokens: int, device: torch.device) -> torch.Tensor:
        """(1, tokens, C) sinusoid table for `tokens` positions (the backbone's own at its native size)."""
        key = (tokens, device)
        if key not in self._positions:
            table = sinusoid_position_table(tokens, self.backbone.config.hidden_size)[None].to(device)
            self._positions[key] = table
        return self._positions[key]

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (clips, frames, 3, H, W) -> the last hidden state (clips, T'*H'*W', C)."""
        clips, frames, _, height, width = pixels.shape
        grid = (frames // self.tubelet, height // self.patch, width // self.patch)
        embeddings = self.backbone.embeddings
        # The patch projection itself (the embeddings module refuses sizes other than the config's).
        x = embeddings.patch_embeddings.projection(pixels.permute(0, 2, 1, 3, 4)).flatten(2).transpose(1, 2)
        # As VideoMAEEmbeddings: the table in x's dtype (bf16 under autocast), so the sums match.
        x = x + self.position_table(x.shape[1], x.device).type_as(x)
        for index in range(len(self.backbone.encoder.layer)):
            if self.checkpointing and torch.is_grad_enabled() and index >= self.first_adapted:
                x = checkpoint(self._block, index, x, grid, use_reentrant=False)
            else:
                x = self._block(index, x, grid)
        if self.backbone.layernorm is not None:
            x = self.backbone.layernorm(x)
        return x

    def _block(self, index: int, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        x = self.backbone.encoder.layer[index](x)
        adapter = self.adapters[str(index)] if str(index) in self.adapters else None
        return x if adapter is None else adapter(x, grid)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        self._check_frames(frames)
        batch, clips = frames.shape[:2]
        # One float copy, laid out (clips, 3, frames, H, W) as the patch projection reads it, normalised
        # in place with the same arithmetic as VideoMAE.clip_features: (pixel - 255 mean) / (255 std).
        count, height, width = frames.shape[2:5]
        pixels = torch.empty(batch * clips, 3, count, height, width, device=frames.device)
        pixels.copy_(frames.flatten(0, 1).permute(0, 4, 1, 2, 3)).sub_(self.mean).div_(self.std)
        dtype = autocast_dtype(frames.device, self.precision)
        with torch.autocast(frames.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            pooled = self.tokens(pixels.transpose(1, 2)).mean(dim=1)
            if self.fc_norm is not None:
                pooled = self.fc_norm(pooled)
        return pooled.view(batch, clips, -1)

    def _check_frames(self, frames: torch.Tensor) -> None:
        if frames.dtype != torch.uint8 or frames.ndim != 6 or frames.shape[-1] != 3:
            raise InputError(f"frames: {frames.dtype} {tuple(frames.shape)}; expected uint8 RGB "
                             f"(batch, clips, frames, height, width, 3)")
        count, height, width = frames.shape[2:5]
        if count % self.tubelet or height < self.patch or width < self.patch:
            raise InputError(f"frames: clips of {count} frames of {height} x {width}; this VideoMAE needs a multiple "
                             f"of {self.tubelet} frames of at least {self.patch} x {self.patch} pixels")


def add_adapters(model: VideoMAEModel, cfg: AdapterConfig, fc_norm: nn.LayerNorm | None = None,
                 checkpointing: bool = False, precision: str = "auto") -> AdaptedVideoMAE:
    """`model` with adapters after the layers `cfg.blocks` names; every weight of `model` (and of
    `fc_norm`, the checkpoint's pooling norm where it has one) is frozen in place (requires_grad False),
    only the adapters train. `checkpointing`: recompute the layers from the first adapted one on in
    the backward pass; `precision`: auto | fp32 | bf16, as `train.precision` (`devices.autocast_dtype`).
    InputError naming adapters.<key> for settings the model cannot take.

    From a checkpoint folder: `vm = mgrec.extract.backbones.VideoMAE(folder, device)`, then
    `add_adapters(vm.encoder, cfg, fc_norm=vm.fc_norm)`."""
    adapted = AdaptedVideoMAE(model, cfg, fc_norm, checkpointing, precision)
    return adapted.to(next(model.parameters()).device)


# --------------------------------------------------------------------------------------------
# The adapted backbone of a config (`data.videos`, `backbone.*`), for training and for a trained run

RANDOM_INIT = "random-init"


def build_adapted_backbone(config: Config, device: str | torch.device = "cpu") -> AdaptedVideoMAE:
    """The config's VideoMAE (`backbone.weights`) with fresh adapters (seeded by `seed`), on `device`.

    `backbone.random_init`: the folder holds config.json only and the weights are drawn from `seed`,
    so the same config rebuilds the same backbone (the run's detection does). InputError naming
    `backbone.*` for a folder, size or clip length this VideoMAE cannot take, and naming
    data.feature_dim when it is not the backbone's hidden size. Everything that can be checked from
    config.json and the safetensors header is checked before a weight is allocated."""
    backbone = config.backbone
    folder = Path(backbone.weights)
    device = torch.device(device)
    shape = read_videomae_config(folder)
    weights = folder / "model.safetensors"
    if backbone.random_init:
        if weights.exists():
            raise InputError(f"backbone.random_init: {folder} holds model.safetensors; set backbone.random_init "
                             "to false to train with those weights")
    else:
        check_videomae_weights(weights, shape)
    if shape.hidden_size != config.data.feature_dim:
        raise InputError(f"data.feature_dim: {config.data.feature_dim}, but the backbone {folder} has "
                         f"{shape.hidden_size} channels; set data.feature_dim: {shape.hidden_size}")
    if backbone.frames_per_clip % shape.tubelet_size:
        raise InputError(f"backbone.frames_per_clip: {backbone.frames_per_clip}; the backbone {folder} takes a "
                         f"multiple of its tubelet size {shape.tubelet_size}")
    if backbone.image_size < shape.patch_size:
        raise InputError(f"backbone.image_size: {backbone.image_size}; the backbone {folder} needs at least its "
                         f"patch size {shape.patch_size}")
    adapters = AdapterConfig(kind=backbone.adapter, blocks=backbone.block_list(), ratio=backbone.adapter_ratio,
                             kernel=backbone.adapter_kernel)
    adapters.check(shape.num_hidden_layers, shape.hidden_size, key=BACKBONE_KEYS)
    _check_weights_fit(shape, folder)
    if backbone.random_init:
        from transformers import VideoMAEModel

        shape._attn_implementation = "sdpa"
        torch.manual_seed(config.seed)
        model, fc_norm = VideoMAEModel(shape).eval().to(device), None
        # no weights file to hash: the shape and the seed are what make these weights
        weights_sha256 = hashlib.sha256(
            f"{RANDOM_INIT}:{file_sha256(folder / 'config.json')}:seed={config.seed}".encode()).hexdigest()
    else:
        loaded = VideoMAE(folder, device)
        model, fc_norm, weights_sha256 = loaded.encoder, loaded.fc_norm, loaded.weights_sha256
    torch.manual_seed(config.seed)  # the adapters' own initialisation, the same on every rebuild
    adapted = add_adapters(model, adapters, fc_norm, checkpointing=backbone.checkpointing,
                           precision=config.train.precision)
    adapted.weights_sha256 = weights_sha256
    return adapted


# config.json keys that size the network: transformers divides by some and allocates by all of them, so
# each must be a positive integer before a model is built from it.
VIDEOMAE_SIZE_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "patch_size",
                      "tubelet_size", "num_frames")


def read_videomae_config(folder: Path) -> VideoMAEConfig:
    """`folder/config.json` as transformers' VideoMAEConfig; InputError naming the folder or the file and the
    key for anything a VideoMAE cannot be built from (another model type, a size that is not a positive
    integer, heads that do not divide the width, an unknown activation, RGB not 3 channels)."""
    from transformers import VideoMAEConfig
    from transformers.activations import ACT2FN

    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise InputError(f"backbone.weights: {folder} has no config.json ({problem}); expected the folder of a "
                         "VideoMAE's config.json and model.safetensors")
    path = folder / "config.json"
    if not path.is_file():
        raise InputError(f"backbone.weights: {folder} has no config.json (the VideoMAE's shape)")
    raw = read_json(path, "VideoMAE config")
    if not isinstance(raw, dict):
        raise InputError(f"{path}: a JSON {type(raw).__name__}; expected an object of VideoMAE settings")
    kind = raw.get("model_type", "videomae")
    if kind != "videomae":
        raise InputError(f"{path}: model_type {brief(kind)}; backbone.weights takes a VideoMAE (model_type "
                         "videomae), as `mgrec convert-videomae` writes it")
    for key in VIDEOMAE_SIZE_KEYS:
        value = raw.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{path}: {key} {brief(value)}; expected a positive integer")
    if raw.get("num_channels", 3) != 3:
        raise InputError(f"{path}: num_channels {brief(raw['num_channels'])}; frames are RGB, expected 3")
    if not isinstance(raw.get("hidden_act", "gelu"), str) or raw.get("hidden_act", "gelu") not in ACT2FN:
        raise InputError(f"{path}: hidden_act {brief(raw['hidden_act'])}; expected an activation transformers "
                         "knows, such as gelu")
    try:
        shape = VideoMAEConfig(**raw)
    except Exception as exc:  # transformers validates the other keys, with error types that vary by version
        raise InputError(f"{path}: not a VideoMAE config: {' '.join(str(exc).split())}") from None
    if shape.hidden_size % shape.num_attention_heads:
        raise InputError(f"{path}: hidden_size {shape.hidden_size} is not a multiple of num_attention_heads "
                         f"{shape.num_attention_heads}")
    return shape


def check_videomae_weights(weights: Path, shape: VideoMAEConfig) -> None:
    """InputError naming `weights` (model.safetensors) when it is missing, not a readable safetensors file,
    or holds backbone tensors of other shapes (or other layers) than config.json describes: read from its
    header only, before transformers loads (and would stop with a traceback on) any of it. Names are those of
    the checkpoint less a "videomae." prefix (a classifier's); a tensor whose name the loader maps differently
    (q_bias) is left to it."""
    from safetensors import SafetensorError, safe_open
    from transformers import VideoMAEModel

    if not weights.is_file():
        raise InputError(f"{weights}: not found; backbone.weights needs the VideoMAE's weights (`mgrec "
                         "convert-videomae` writes them), or backbone.random_init: true for random ones")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            found = {name.removeprefix("videomae."): tuple(handle.get_slice(name).get_shape())
                     for name in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{weights}: not a readable safetensors file (corrupt or truncated?): {exc}") from None
    # The tensors' shapes do not depend on the image size or clip length (the position table is no tensor of the
    # checkpoint), so a one-token model on the meta device lists them without allocating or building a table.
    probe = shape.to_dict() | {"image_size": shape.patch_size, "num_frames": shape.tubelet_size}
    probe.pop("model_type", None)
    with torch.device("meta"):
        model = VideoMAEModel(type(shape)(**probe))
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    expected |= {"fc_norm.weight": (shape.hidden_size,), "fc_norm.bias": (shape.hidden_size,)}
    config_json = weights.parent / "config.json"
    for name, size in sorted(found.items()):
        if name in expected and size != expected[name]:
            raise InputError(f"{weights}: tensor '{name}' has shape {size}, but {config_json} describes "
                             f"{expected[name]}: the weights are of another VideoMAE (use the config.json that came "
                             "with them)")
        layer = re.match(r"encoder\.layer\.(\d+)\.", name)
        if layer and int(layer.group(1)) >= shape.num_hidden_layers:
            # transformers would leave the deeper layers out without a word: a shallower network than trained
            raise InputError(f"{weights}: tensor '{name}' is of a layer the VideoMAE of {config_json} does not have "
                             f"({shape.num_hidden_layers} layers); the weights are of another VideoMAE (use the "
                             "config.json that came with them)")


def _check_weights_fit(shape: VideoMAEConfig, folder: Path) -> None:
    """InputError before allocating a backbone whose float32 weights alone exceed the memory available (a
    typo in config.json's sizes should not become an out-of-memory kill)."""
    needed = backbone_parameter_count(shape) * 4
    available = available_bytes()
    if available is not None and needed > available:
        raise InputError(f"backbone.weights: the VideoMAE of {folder / 'config.json'} has "
                         f"{backbone_parameter_count(shape) / 1e6:.0f} M parameters, {needed / 2**30:.1f} GiB in "
                         f"float32, but {available / 2**30:.1f} GiB is available")


class AdaptedBackbone(Backbone):
    """A trained end-to-end run's backbone (its VideoMAE with the adapters of one checkpoint) as an
    extraction backbone: `mgrec extract --run`, and detection on raw video, write the features its
    detector reads. Clips are made as in training (`clip_frame_picks` of each window)."""

    name = ADAPTED_BACKBONE

    def __init__(self, run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu"):
        run = RunDir(run_dir)
        run.require_finished(checkpoint)
        run.read_format_version()
        config = run.read_config()
        if not config.end_to_end:
            raise InputError(f"{run.path} was trained on feature files, not end to end (no data.videos): its "
                             "features are made by `mgrec extract` with the run's feature recipe")
        # Training writes the recipe before the first checkpoint: without it nothing says which backbone the
        # adapters were trained in, and adapters in another backbone make features that mean nothing.
        if not run.recipe_path.is_file():
            raise InputError(f"{run.recipe_path}: missing; an end-to-end run records its backbone there (the run is "
                             "damaged: restore it from a copy)")
        recipe = read_sidecar(run.recipe_path)
        self.model = build_adapted_backbone(config, device)
        if recipe.weights_sha256 != self.model.weights_sha256:
            what = (f"config.json and seed {config.seed} (backbone.random_init)" if config.backbone.random_init
                    else "model.safetensors")
            raise InputError(f"the backbone {config.backbone.weights} is not the one {run.path} was trained with: its "
                             f"{what} give sha256 {self.model.weights_sha256}, the run recorded "
                             f"{recipe.weights_sha256}; put back the backbone it was trained with")
        weights, _ = run.read_weights(checkpoint, use_ema=True)
        _, encoder_state = split_state(weights, str(run.weights_path(checkpoint)))
        adapter_state = {k.removeprefix("adapters."): v for k, v in encoder_state.items()}
        self.model.load_adapter_state_dict(adapter_state, source=str(run.weights_path(checkpoint)))
        self.model.eval()
        self.device = torch.device(device)
        self.frames_per_clip = config.backbone.frames_per_clip
        self.dim = config.data.feature_dim
        self.image_size = config.backbone.image_size
        self.weights = run.weights_path(checkpoint)
        # Features depend on the backbone and on this checkpoint's adapters: both go into the recipe's hash.
        self.weights_sha256 = hashlib.sha256(
            f"{self.model.weights_sha256}:{file_sha256(self.weights)}".encode()).hexdigest()

    def first_frame(self, start, window, stride, batch) -> int:
        return clip_batch_start(start, batch) * stride

    @torch.inference_mode()
    def window_features(self, frames, window, stride, batch, start=0) -> Iterator[np.ndarray]:
        first = clip_batch_start(start, batch)
        clips = window_clips(frames, window, stride, self.frames_per_clip, first=first)
        for number, chunk in enumerate(batched(clips, batch)):
            rows = self.model(torch.from_numpy(np.stack(chunk))[None].to(self.device))[0].float().cpu().numpy()
            yield from rows[start - first:] if number == 0 else rows  # the first batch's windows before `start`: done
