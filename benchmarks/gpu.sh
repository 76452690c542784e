#!/usr/bin/env bash
# GPU benchmarks, for a machine with CUDA PyTorch and transformers but no network and no package
# registry (nothing is installed; mgrec runs from src/ through PYTHONPATH):
#
#   bash benchmarks/gpu.sh            # writes JSON to $OUT, < 8 min (default: this campaign's folder,
#                                     # benchmarks/results/YYYY-MM-DD_<commit>_gpu; see benchmarks/results/README.md)
#   bash benchmarks/gpu.sh --smoke    # the same steps on CPU at tiny sizes (seconds): checks the script
#
# 1. benchmarks/speed.py on CUDA for mgrec, dyfadet and actionformer, fp32 and bf16 (autocast),
#    batch 8 included: speed_cuda_<model>_<dtype>.json.
# 2. The end-to-end training step (issue #16): benchmarks/end_to_end.py --full-step on CUDA for ViT-B and
#    ViT-g (random weights) at 160 px, crops of 96 clips of 16 frames, batch 1, bf16 autocast
#    (train.precision auto), checkpointing: seconds per step, decode seconds, snippets/s, peak memory
#    (max_memory_allocated) beside the planner's estimate: end_to_end_step_vit-{b,g}.{json,md}.
# 3. Feature extraction with the VideoMAE V2 giant configuration (random init, since no weights can be
#    downloaded here), bf16 autocast, SDPA attention, 32 clips per forward: extract_videomae_giant.json
#    - model alone: clips/s on random clips, and achieved TFLOP/s (FlopCounterMode FLOPs of one clip x clips/s);
#    - end to end: `mgrec.extract.jobs.extract` on a generated 30 s, 28 fps, 320x240 video (noise plus
#      moving shapes, encoded with PyAV), with the random giant saved by save_pretrained in a temp folder.
# Every JSON holds the provenance record of mgrec.provenance.provenance under "provenance".
# Every step has its own time limit; a step that fails or times out is listed in failures.txt and the
# others still run; the script then exits with status 1.
set -uo pipefail

SMOKE=0
case "${1:-}" in
  --smoke) SMOKE=1 ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu.sh [--smoke]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
if [ "$SMOKE" = 1 ]; then
  OUT="${OUT:-$(mktemp -d)}"
else
  if [ -z "${OUT:-}" ]; then
    CAMPAIGN=$("$PYTHON" -m mgrec.provenance gpu) || CAMPAIGN="$(date -u +%F)_nogit_gpu"
    OUT="benchmarks/results/$CAMPAIGN"
  fi
fi
mkdir -p "$OUT"
FAILURES="$OUT/failures.txt"
: > "$FAILURES"
STARTED=$SECONDS

# run LIMIT_SECONDS NAME COMMAND...: run a step with a time limit, log it, note a failure
run() {
  local limit=$1 name=$2
  shift 2
  echo "== $name (limit ${limit}s, $((SECONDS - STARTED))s elapsed)"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local status=${PIPESTATUS[0]}
  if [ "$status" -ne 0 ]; then
    echo "$name: exit status $status (124 = time limit); see $name.log" | tee -a "$FAILURES"
  fi
}

"$PYTHON" - > "$OUT/environment.txt" 2>&1 <<'PY'
import platform, torch, transformers
print("python", platform.python_version(), "| torch", torch.__version__, "| transformers", transformers.__version__)
print("cuda available:", torch.cuda.is_available(), "| cuda", torch.version.cuda)
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0))
try:
    import av
    print("PyAV", av.__version__)
except ImportError:
    print("PyAV not installed: the end-to-end extraction step will fail")
PY
command -v nvidia-smi > /dev/null && nvidia-smi >> "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# -- 1. detector speed ----------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  run 120 speed_smoke "$PYTHON" benchmarks/speed.py --device cpu --model mgrec --dtype bf16 \
    --config src/mgrec/configs/demo/base.yaml --length 64 --repeats 1 --online-updates 2 --online-history 64 \
    --skip-bs8 --threads 1 --json "$OUT/speed_cpu_smoke.json"
else
  for model in mgrec dyfadet actionformer; do
    for dtype in fp32 bf16; do
      run 60 "speed_cuda_${model}_${dtype}" "$PYTHON" benchmarks/speed.py --device cuda --model "$model" \
        --dtype "$dtype" --repeats 10 --json "$OUT/speed_cuda_${model}_${dtype}.json"
    done
  done
fi

# -- 2. end-to-end training step ------------------------------------------------------------
# One process per backbone, each with its own limit: a ViT-g failure (e.g. out of memory) keeps ViT-B's
# figures. Each builds its random backbone and a 31 s noise video first (no network: no sample video).
if [ "$SMOKE" = 1 ]; then
  run 120 end_to_end_step_smoke "$PYTHON" benchmarks/end_to_end.py --full-step --tiny --device cpu --threads 1 \
    --json "$OUT/end_to_end_step_smoke.json"
else
  run 90 end_to_end_step_vit-b "$PYTHON" benchmarks/end_to_end.py --full-step --device cuda --configs vit-b \
    --sizes 160 --clips 96 --batch 1 --repeats 3 --threads 8 --json "$OUT/end_to_end_step_vit-b.json"
  run 150 end_to_end_step_vit-g "$PYTHON" benchmarks/end_to_end.py --full-step --device cuda --configs vit-g \
    --sizes 160 --clips 96 --batch 1 --repeats 2 --threads 8 --json "$OUT/end_to_end_step_vit-g.json"
fi

# -- 3. VideoMAE giant extraction throughput ------------------------------------------------
# Whatever the speed and end-to-end runs left of the 8 minutes (at least 60 s, at most 200 s).
EXTRACT_LIMIT=$((470 - (SECONDS - STARTED)))
EXTRACT_LIMIT=$((EXTRACT_LIMIT < 60 ? 60 : (EXTRACT_LIMIT > 200 ? 200 : EXTRACT_LIMIT)))
run "$EXTRACT_LIMIT" extract_videomae "$PYTHON" - "$OUT" "$SMOKE" <<'PY'
"""VideoMAE extraction throughput: the network alone on random clips, then mgrec's extraction end to end."""

import json
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import VideoMAEConfig, VideoMAEModel

from mgrec.provenance import provenance

out_dir, smoke = Path(sys.argv[1]), sys.argv[2] == "1"
device = torch.device("cpu" if smoke else "cuda")
if smoke:  # a tiny VideoMAE with the giant's clip layout (16 frames, tubelets of 2), 2 s of video
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=16,
                 image_size=32)
    batch, repeats, video_seconds = 4, 1, 2.0
else:  # VideoMAE V2 giant (ViT-g/14), as used for the SMG features
    shape = dict(hidden_size=1408, num_hidden_layers=40, num_attention_heads=16, intermediate_size=6144, patch_size=14,
                 image_size=224)
    batch, repeats, video_seconds = 32, 5, 30.0
config = VideoMAEConfig(**shape, tubelet_size=2, num_frames=16, attn_implementation="sdpa")
FPS, WIDTH, HEIGHT = 28, 320, 240
results = {"device": str(device), "smoke": smoke, "config": shape | {"tubelet_size": 2, "num_frames": 16},
           "batch": batch,
           "provenance": provenance(["bash", "benchmarks/gpu.sh", *(["--smoke"] if smoke else [])], device=device)}


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast():
    # mgrec's extractor keeps float32 weights and runs under bf16 autocast on CUDA
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def clips_per_second(model, clips):
    """Median over `repeats` forward passes of one batch (after one warm-up pass)."""
    times = []
    with torch.inference_mode(), autocast():
        for i in range(repeats + 1):
            synchronize()
            started = time.perf_counter()
            model(pixel_values=clips).last_hidden_state.mean(dim=1).float()
            synchronize()
            if i > 0:
                times.append(time.perf_counter() - started)
    return clips.shape[0] / statistics.median(times)


def flops_of_one_clip():
    """FLOPs of one clip, counted on the meta device (no compute) with eager attention: FlopCounterMode
    does not count every SDPA kernel (e.g. the CPU one), eager attention is plain matmuls, same FLOPs."""
    eager = VideoMAEConfig.from_dict(config.to_dict() | {"attn_implementation": "eager"})
    with torch.device("meta"):
        meta_model = VideoMAEModel(eager).eval()
        clip = torch.randn(1, config.num_frames, 3, config.image_size, config.image_size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(pixel_values=clip)
    return counter.get_total_flops()


torch.manual_seed(0)
model = VideoMAEModel(config).eval().to(device)
results["params"] = sum(p.numel() for p in model.parameters())
flops_per_clip = flops_of_one_clip()
clips = torch.randn(batch, config.num_frames, 3, config.image_size, config.image_size, device=device)
rate = clips_per_second(model, clips)
results["model_alone"] = {"flops_per_clip": flops_per_clip, "clips_per_s": rate,
                          "achieved_tflops": flops_per_clip * rate / 1e12, "weights": "float32, bf16 autocast"}
if device.type == "cuda":
    results["model_alone"]["peak_mem_bytes"] = torch.cuda.max_memory_allocated(device)
    model_bf16 = model.to(torch.bfloat16)
    rate_bf16 = clips_per_second(model_bf16, clips.to(torch.bfloat16))
    results["model_alone_bf16_weights"] = {"clips_per_s": rate_bf16, "achieved_tflops": flops_per_clip * rate_bf16 / 1e12}
print(json.dumps(results, indent=1), flush=True)


def write_test_video(path, seconds):
    """Noise plus two moving shapes, MPEG-4 at FPS, WIDTH x HEIGHT (frames change, as real ones do)."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(round(seconds * FPS)):
            frame = rng.integers(0, 64, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            x, y = (7 * i) % (WIDTH - 40), (3 * i) % (HEIGHT - 40)
            frame[y:y + 40, x:x + 40] = (220, 40, 40)
            frame[HEIGHT - 60 - y // 2:HEIGHT - 30 - y // 2, WIDTH - 50 - x // 2:WIDTH - 10 - x // 2] = (40, 200, 90)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


scratch = Path(tempfile.mkdtemp(prefix="mgrec-gpu-bench-"))
try:
    from mgrec.extract.jobs import extract

    del clips
    model.to(torch.bfloat16).cpu().save_pretrained(scratch / "weights")  # bf16 halves what is written and hashed
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    video = scratch / "noise.mp4"
    write_test_video(video, video_seconds)
    started = time.perf_counter()
    (done,) = extract([video], scratch / "features", backbone="videomae", weights=scratch / "weights",
                      device=device.type, batch=batch, progress=False)
    wall = time.perf_counter() - started
    results["end_to_end"] = {
        "video": f"{video_seconds:g} s, {FPS} fps, {WIDTH}x{HEIGHT} MPEG-4", "frames": done.frames,
        "clips": done.num_features, "clips_per_s": done.num_features / done.seconds,
        "video_seconds_per_s": video_seconds / done.seconds, "seconds_decode_and_model": done.seconds,
        "seconds_with_model_loading": wall,
        "note": "seconds_decode_and_model covers decoding, resizing and the network for this video; the wall time "
                "adds loading the weights from disk and hashing them",
    }
except Exception as exc:  # the model-alone numbers above stay valid; say why this part is missing
    results["end_to_end"] = None
    results["end_to_end_error"] = f"{type(exc).__name__}: {exc}"
    raise
finally:
    shutil.rmtree(scratch, ignore_errors=True)
    (out_dir / ("extract_videomae_smoke.json" if smoke else "extract_videomae_giant.json")).write_text(
        json.dumps(results, indent=1) + "\n")
    print(json.dumps(results.get("end_to_end") or results.get("end_to_end_error"), indent=1))
PY

echo "== done in $((SECONDS - STARTED)) s; results in $OUT"
if [ -s "$FAILURES" ]; then
  echo "failed steps:" >&2
  cat "$FAILURES" >&2
  exit 1
fi
