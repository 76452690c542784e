import io
import json
import os
import re
import threading

import numpy as np
import pytest
import torch

from mgrec.data.features import FeatureSidecar, read_sidecar, write_features
from mgrec.devices import amx_bf16_cpu
from mgrec.errors import InputError
from mgrec.extract.jobs import extract, extract_videos, fuse_features
from mgrec.files import file_sha256
from mgrec.timeline import FeatureGrid

SIZE = 64  # small frames keep the EfficientNet runs fast; the windowing does not depend on it


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine shares 2 cores between several jobs
    yield
    torch.set_num_threads(before)


def extraction_statuses(video, out, **recipe) -> list[str]:
    """`extract_videos` of one video into `out` with this recipe on top of the tests' small frames: its statuses."""
    return [r.status for r in extract_videos([video], out, size=SIZE, batch=8, progress=False, **recipe)]


def test_video_features_and_sidecar(tmp_path, carphone):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "Sample0007_color.mp4").write_bytes(carphone.read_bytes())
    results = extract_videos([folder], tmp_path / "out", window=16, stride=4, size=SIZE, batch=4, progress=False)

    assert [(r.status, r.frames, r.num_features) for r in results] == [("extracted", 120, (120 - 16) // 4 + 1)]
    features = np.load(tmp_path / "out" / "Sample0007.npy")
    assert features.shape == (27, 1280) and features.dtype == np.float32
    assert np.isfinite(features).all() and not np.allclose(features[0], features[-1])

    sidecar = read_sidecar(tmp_path / "out" / "Sample0007.json")
    assert sidecar.fps == pytest.approx(30000 / 1001)
    assert (sidecar.stride, sidecar.window, sidecar.dim, sidecar.frames, sidecar.num_features) == (4, 16, 1280, 120, 27)
    assert sidecar.backbone == f"efficientnet-lite0@{SIZE}"
    assert sidecar.weights.endswith("efficientnet-lite0-57934424.pth")
    assert sidecar.weights_sha256 == file_sha256(sidecar.weights)

    # The time mapping: the last feature's window ends inside the video, one more would not fit.
    grid = FeatureGrid(sidecar.fps, sidecar.stride, sidecar.window)
    assert grid.num_windows(sidecar.frames) == len(features)
    last_end = (len(features) - 1) * sidecar.stride + sidecar.window
    assert last_end <= sidecar.frames < last_end + sidecar.stride
    assert grid.index_to_seconds(0) == pytest.approx(8 / sidecar.fps)


def clip_extraction(tmp_path, carphone):
    """A copy of the test clip, the output folder and a function extracting the clip into it (statuses)."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(carphone.read_bytes())
    out = tmp_path / "out"
    return video, out, lambda **recipe: extraction_statuses(video, out, **recipe)


def test_runs_resume(tmp_path, carphone):
    _, out, run = clip_extraction(tmp_path, carphone)
    assert run() == ["extracted"]
    first = np.load(out / "clip.npy")
    stamp = os.stat(out / "clip.npy").st_mtime_ns
    assert run() == ["skipped"]
    assert os.stat(out / "clip.npy").st_mtime_ns == stamp

    # A killed run leaves a temporary file and/or features without a sidecar: not done.
    (out / ".clip.npy.abc123.tmp").write_bytes(b"half")
    (out / "clip.json").unlink()
    assert run() == ["extracted"]
    np.testing.assert_array_equal(np.load(out / "clip.npy"), first)
    assert read_sidecar(out / "clip.json").num_features == len(first)

    # Another recipe replaces the features.
    assert run(stride=8) == ["extracted"]
    assert read_sidecar(out / "clip.json").stride == 8
    assert len(np.load(out / "clip.npy")) == (120 - 16) // 8 + 1


def test_a_truncated_feature_file_is_extracted_again_not_skipped(tmp_path, carphone):
    _, out, run = clip_extraction(tmp_path, carphone)
    assert run() == ["extracted"]
    first = np.load(out / "clip.npy")
    with open(out / "clip.npy", "r+b") as handle:  # cut after its sidecar was written
        handle.truncate(os.path.getsize(out / "clip.npy") - 100)
    assert run() == ["extracted"]
    np.testing.assert_array_equal(np.load(out / "clip.npy"), first)


def test_extraction_never_replaces_a_file_it_did_not_write(tmp_path, carphone):
    # --out the videos' own folder, where clip.json / other.npy are the user's files
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(carphone.read_bytes())
    (folder / "other.mp4").write_bytes(carphone.read_bytes())
    (folder / "clip.json").write_text('{"my": "labels"}')
    (folder / "other.npy").write_text("precious")
    with pytest.raises(InputError) as error:
        extract_videos([folder], folder, size=SIZE, progress=False)
    message = str(error.value)
    assert message.startswith("2 of 2 inputs failed:")  # nothing was written, so no "the others were written"
    assert f"{folder / 'clip.json'} exists and was not written by mgrec extract" in message
    assert f"{folder / 'other.npy'} exists and was not written by mgrec extract" in message
    assert (folder / "clip.json").read_text() == '{"my": "labels"}' and (folder / "other.npy").read_text() == "precious"
    # its own earlier outputs it replaces (another recipe), and the sidecar names the weights absolutely
    (folder / "clip.json").unlink()
    (folder / "other.npy").unlink()
    assert extraction_statuses(folder / "clip.mp4", folder) == ["extracted"]
    assert extraction_statuses(folder / "clip.mp4", folder, stride=8) == ["extracted"]
    assert os.path.isabs(read_sidecar(folder / "clip.json").weights)


def test_the_precision_is_a_recipe_of_its_own_recorded_in_the_sidecar(tmp_path, carphone):
    video, out, run = clip_extraction(tmp_path, carphone)
    auto, other = ("bf16", "fp32") if amx_bf16_cpu() else ("fp32", "bf16")
    assert run() == ["extracted"]  # auto: bf16 on a CPU with AMX, float32 on others
    assert read_sidecar(out / "clip.json").precision == auto
    first = np.load(out / "clip.npy")
    assert run(precision=auto) == ["skipped"]
    assert run(precision=other) == ["extracted"]  # another recipe: extracted again, recorded
    assert read_sidecar(out / "clip.json").precision == other
    fp32, bf16 = (np.load(out / "clip.npy"), first) if auto == "bf16" else (first, np.load(out / "clip.npy"))
    assert bf16.dtype == np.float32 and not np.array_equal(bf16, fp32)
    cosine = (bf16 * fp32).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() > 0.99  # the same features, to bf16's 8-bit mantissa
    # a sidecar from before the precision was recorded is trusted, as one without a source stamp is
    raw = json.loads((out / "clip.json").read_text())
    del raw["precision"]
    (out / "clip.json").write_text(json.dumps(raw))
    assert run(precision="fp32") == ["skipped"]
    with pytest.raises(InputError, match=r"--precision='fp16': expected one of auto, fp32, bf16"):
        run(precision="fp16")
    with pytest.raises(InputError, match=r"--precision: backbone skeleton runs no network"):
        extract([video], out, backbone="skeleton", precision="bf16", progress=False)


def test_bad_videos_fail_loudly_and_get_no_files(tmp_path, carphone, carphone_cut_midway, make_video):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.mp4").write_bytes(carphone.read_bytes())
    (inputs / "cut.mp4").write_bytes(carphone_cut_midway.read_bytes())
    short = [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(10)]
    make_video(inputs / "short.mp4", short)
    (inputs / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError) as error:
        extract_videos([inputs], tmp_path / "out", size=SIZE, progress=False)
    message = str(error.value)
    assert "3 of 4 inputs failed" in message
    assert "empty.mp4: cannot open the video" in message
    assert "cut.mp4: decoding" in message and "frame" in message
    assert "short.mp4: 10 frames, shorter than one window of 16 frames" in message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.json", "good.npy"]


def test_tiny_videomae_from_a_folder(tmp_path, carphone):
    from transformers import VideoMAEConfig, VideoMAEModel

    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=16, tubelet_size=2, hidden_size=48,
                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
    VideoMAEModel(config).save_pretrained(tmp_path / "weights")
    results = extract([carphone], tmp_path / "out", backbone="videomae", weights=tmp_path / "weights",
                      window=16, stride=8, batch=4, progress=False)
    assert [(r.status, r.num_features) for r in results] == [("extracted", (120 - 16) // 8 + 1)]
    sidecar = read_sidecar(tmp_path / "out" / "carphone_pristine.json")
    assert (sidecar.backbone, sidecar.dim, sidecar.frames) == ("videomae@32", 48, 120)
    assert sidecar.weights_sha256 == file_sha256(tmp_path / "weights" / "model.safetensors")
    assert np.load(tmp_path / "out" / "carphone_pristine.npy").shape == (14, 48)


def test_non_finite_features_are_refused_before_writing_and_the_other_videos_go_on(tmp_path, carphone):
    """A backbone with a NaN weight wrote NaN features with exit 0 (found later by data check, and a rerun skipped
    the file as done)."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEModel

    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=16, tubelet_size=2, hidden_size=48,
                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
    model = VideoMAEModel(config)
    with torch.no_grad():
        model.embeddings.patch_embeddings.projection.weight[0].fill_(float("nan"))
    model.save_pretrained(tmp_path / "weights")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.mp4").write_bytes(carphone.read_bytes())
    (inputs / "b.mp4").write_bytes(carphone.read_bytes())
    with pytest.raises(InputError) as error:
        extract([inputs], tmp_path / "out", backbone="videomae", weights=tmp_path / "weights", window=16, stride=8,
                batch=4, progress=False)
    message = str(error.value)
    assert "2 of 2 inputs failed" in message
    assert f"{inputs / 'a.mp4'} through videomae: 672 NaN/Inf value(s), the first at [t=0, c=0]" in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.npy"))


def write_skeleton(path, frames: int, seed: int, untracked: list[int] = ()) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 0.3, (frames, 25, 11))
    rows[:, 20, :3] = rows[:, 0, :3] + [0, 0.5, 0]  # a spine of 0.5 m
    rows[list(untracked), :, :3] = 0.0
    np.savetxt(path, rows.reshape(frames, -1), delimiter=",", fmt="%.5f")


def test_skeleton_extraction_reads_fps_and_shards(tmp_path, monkeypatch):
    for number, frames in ((1, 40), (2, 50)):
        sample = tmp_path / "smg" / f"Sample000{number}"
        sample.mkdir(parents=True)
        write_skeleton(
            sample / f"Sample000{number}_skeleton.csv", frames, number, untracked=[3, 4] if number == 2 else []
        )
        (sample / f"Sample000{number}_data.csv").write_text(f"{frames},28,4000\n")
        (sample / f"Sample000{number}_finelabels.csv").write_text("3,1,20\n")

    results = extract([tmp_path / "smg"], tmp_path / "out", backbone="skeleton", window=16, stride=4, progress=False)
    assert [(r.feature_path.name, r.num_features) for r in results] == [("Sample0001.npy", 7), ("Sample0002.npy", 9)]
    assert results[0].warnings == ()
    assert results[1].warnings == (
        f"{results[1].source}: 2 of 50 frames had no tracked person; they repeat the previous tracked pose",
    )
    sidecar = read_sidecar(tmp_path / "out" / "Sample0002.json")
    assert (sidecar.fps, sidecar.backbone, sidecar.dim, sidecar.frames, sidecar.weights) == (
        28.0,
        "skeleton",
        225,
        50,
        None,
    )
    assert np.load(tmp_path / "out" / "Sample0002.npy").shape == (9, 225)

    # Under torchrun, rank 1 of 2 takes every second input.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    results = extract([tmp_path / "smg"], tmp_path / "shard", backbone="skeleton", fps=30.0, progress=False)
    assert [r.feature_path.name for r in results] == ["Sample0002.npy"]
    assert read_sidecar(tmp_path / "shard" / "Sample0002.json").fps == 30.0


def test_skeleton_input_errors(tmp_path):
    write_skeleton(tmp_path / "a_skeleton.csv", 20, 0)
    with pytest.raises(InputError, match="a_skeleton.csv: no frame rate: pass --fps or put a_data.csv next to it"):
        extract([tmp_path / "a_skeleton.csv"], tmp_path / "out", backbone="skeleton", progress=False)
    with pytest.raises(InputError, match="takes no --weights or --size"):
        extract([tmp_path], tmp_path / "out", backbone="skeleton", size=224)
    with pytest.raises(InputError, match="--fps is for skeleton CSVs only"):
        extract([tmp_path], tmp_path / "out", fps=30.0)


@pytest.mark.parametrize("name, value, expected", [
    ("window", 0, "[1, 1024], got 0"), ("stride", -1, "[1, 1024], got -1"), ("window", 5000, "[1, 1024], got 5000"),
    ("size", 10**9, "[32, 2048], got 1000000000"), ("size", 0, "[32, 2048], got 0"),
    ("batch", True, "[1, 256], got True"), ("batch", 2.5, "[1, 256], got 2.5"), ("batch", "8", "[1, 256], got '8'"),
    ("stride", 4.0, "[1, 1024], got 4.0"), ("batch", 0, "[1, 256], got 0"), ("batch", 10**6, "[1, 256], got 1000000"),
])
def test_the_api_refuses_the_numbers_the_command_line_refuses(tmp_path, carphone, name, value, expected):
    # only the command line checked the ranges: from Python, batch=True ran as 1, size=10**9 died in the
    # decoder, stride=-1 and "8" were tracebacks
    from mgrec.extract.jobs import extract_skeletons

    expected = f"^{name}: expected a whole number in {re.escape(expected)}$"
    with pytest.raises(InputError, match=expected):
        extract([carphone], tmp_path / "out", progress=False, **{name: value})
    with pytest.raises(InputError, match=expected):
        extract_videos([carphone], tmp_path / "out", progress=False, **{name: value})
    if name in ("window", "stride"):
        with pytest.raises(InputError, match=expected):
            extract([carphone], tmp_path / "out", backbone="skeleton", progress=False, **{name: value})
        with pytest.raises(InputError, match=expected):
            extract_skeletons([carphone], tmp_path / "out", progress=False, **{name: value})
    assert not (tmp_path / "out").exists()


def test_the_ends_of_each_range_pass_the_api_check():
    from mgrec.extract import NUMBER_RANGES
    from mgrec.extract.outputs import check_numbers

    for name, (low, high) in NUMBER_RANGES.items():
        check_numbers(**{name: low})
        check_numbers(**{name: np.int64(high)})  # NumPy's integers are whole numbers too
    check_numbers(size=None)  # the backbone's own size


def write_set(folder, lengths: dict[str, int], dim: int, **recipe) -> None:
    rng = np.random.default_rng(dim)
    for vid, length in lengths.items():
        fields = {"fps": 28.0, "stride": 4, "window": 16, "backbone": f"b{dim}", "dim": dim, "frames": 4 * length + 12}
        fields.update(recipe)
        write_features(
            folder / f"{vid}.npy", rng.normal(size=(length, dim)).astype(np.float32), FeatureSidecar(**fields)
        )


def test_fuse_concatenates_channels_and_trims_to_the_shortest(tmp_path):
    write_set(tmp_path / "rgb", {"v1": 10, "v2": 7}, dim=6)
    write_set(tmp_path / "skel", {"v1": 12, "v2": 7}, dim=4)
    results = fuse_features([tmp_path / "rgb", tmp_path / "skel"], tmp_path / "fused")
    assert [(r.video_id, r.num_features, r.input_lengths) for r in results] == [("v1", 10, (10, 12)), ("v2", 7, (7, 7))]
    fused = np.load(tmp_path / "fused" / "v1.npy")
    np.testing.assert_array_equal(fused[:, :6], np.load(tmp_path / "rgb" / "v1.npy"))
    np.testing.assert_array_equal(fused[:, 6:], np.load(tmp_path / "skel" / "v1.npy")[:10])
    sidecar = json.loads((tmp_path / "fused" / "v1.json").read_text())
    assert (sidecar["backbone"], sidecar["dim"], sidecar["num_features"], sidecar["stride"]) == ("b6+b4", 10, 10, 4)


def test_fuse_errors(tmp_path):
    write_set(tmp_path / "a", {"v1": 10}, dim=3)
    write_set(tmp_path / "stride", {"v1": 10}, dim=2, stride=8)
    write_set(tmp_path / "fps", {"v1": 10}, dim=2, fps=25.0)
    write_set(tmp_path / "long", {"v1": 13}, dim=2)
    write_set(tmp_path / "other", {"v2": 10}, dim=2)
    with pytest.raises(InputError, match=r"stride.*v1.json \[stride\]: 8 here but 4 in .*a.*v1.json"):
        fuse_features([tmp_path / "a", tmp_path / "stride"], tmp_path / "out")
    with pytest.raises(InputError, match=r"v1.json \[fps\]: 25 here but 28"):
        fuse_features([tmp_path / "a", tmp_path / "fps"], tmp_path / "out")
    with pytest.raises(InputError, match="video 'v1': feature lengths differ by more than 2 steps"):
        fuse_features([tmp_path / "a", tmp_path / "long"], tmp_path / "out")
    with pytest.raises(InputError, match="other: holds different videos than .*a; missing: v1; extra: v2"):
        fuse_features([tmp_path / "a", tmp_path / "other"], tmp_path / "out")
    (tmp_path / "a" / "v1.json").unlink()
    with pytest.raises(InputError, match=r"v1.npy: no sidecar v1.json \(unfinished extraction\?\)"):
        fuse_features([tmp_path / "a", tmp_path / "long"], tmp_path / "out")
    with pytest.raises(InputError, match="at least two"):
        fuse_features([tmp_path / "a"], tmp_path / "out")
    # on the command line, options a fusion would ignore (it reads no video) are refused, not dropped
    from mgrec.cli import main

    write_set(tmp_path / "b", {"v1": 10}, dim=2)
    (tmp_path / "a" / "v1.json").unlink(missing_ok=True)
    write_set(tmp_path / "a", {"v1": 10}, dim=3)
    for extra in (["--stride", "8", "--window", "32"], ["--fps", "25"], ["--device", "cuda"], ["--run", "r"]):
        assert main(["extract", "--fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "fo"),
                     *extra]) == 2
        assert not (tmp_path / "fo").exists()


def test_the_command_line_fusion_of_one_video_says_one_video(tmp_path, capsys):
    # `mgrec extract --fuse a b` of folders of one video printed "fused 1 videos from 2 folders"
    from mgrec.cli import main

    write_set(tmp_path / "a", {"v1": 10}, dim=3)
    write_set(tmp_path / "b", {"v1": 10}, dim=2)
    assert main(["extract", "--fuse", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "fo")]) == 0
    assert f"fused 1 video from 2 folders into {tmp_path / 'fo'}" in capsys.readouterr().out


def test_progress_inside_a_video_counts_its_frames(tmp_path, carphone, capsys):
    # one video: no bar over the videos, one bar over its 120 frames (the container declares them)
    extract_videos([carphone], tmp_path / "out", size=SIZE, batch=8, progress=True)
    err = capsys.readouterr().err
    assert "carphone_pristine.mp4:" in err and "/120" in err and "frame" in err
    assert "video/s" not in err
    extract_videos([carphone], tmp_path / "quiet", size=SIZE, batch=8, progress=False)
    assert capsys.readouterr().err == ""


def test_extract_command_ends_with_a_count_line(tmp_path, capsys):
    from mgrec.cli import main

    (tmp_path / "smg").mkdir()
    for number in (1, 2):
        write_skeleton(tmp_path / "smg" / f"Sample000{number}_skeleton.csv", 40, number)
    argv = ["extract", str(tmp_path / "smg"), "--backbone", "skeleton", "--fps", "28", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"2 extracted, 0 skipped (done earlier with this recipe): 2 inputs in {tmp_path / 'out'}"
    assert main(argv) == 0  # the second time both are done
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 extracted, 2 skipped")


def test_extract_says_what_ran_the_network_and_refuses_a_runtime_that_cannot_run_it(tmp_path, carphone, capsys):
    from mgrec.cli import main

    out = tmp_path / "out"
    recipe = ["extract", str(carphone), "--size", str(SIZE), "--precision", "fp32", "--out"]
    for runtime, said in (("auto", "onnxruntime"), ("torch", "torch")):
        assert main([*recipe, str(out / runtime), "--runtime", runtime]) == 0
        last = capsys.readouterr().out.splitlines()[-1]
        assert last.startswith(f"1 extracted (the network ran in {said}), 0 skipped")
    # the same recipe: the file made in torch is taken as done by onnxruntime, and holds the same features
    ran_in = {runtime: np.load(out / runtime / "carphone_pristine.npy") for runtime in ("auto", "torch")}
    np.testing.assert_allclose(ran_in["auto"], ran_in["torch"], rtol=1e-4, atol=1e-5)
    assert main([*recipe, str(out / "torch")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 extracted, 1 skipped")
    refused = {
        ("--backbone", "skeleton", "--runtime", "torch"): "--runtime: backbone skeleton runs no network of mgrec's",
        ("--precision", "bf16", "--runtime", "onnxruntime"): "--runtime onnxruntime: onnxruntime runs the float32",
        ("--fuse", str(out / "torch"), "--runtime", "torch"): "--fuse: --runtime does not apply",
        ("--fuse", str(out / "torch"), "--runtime", "torch", "--device", "cpu"): "--fuse: --device, --runtime do not",
        ("--run", str(tmp_path), "--runtime", "onnxruntime"): "--runtime onnxruntime: an end-to-end run's backbone",
    }
    for options, message in refused.items():
        inputs = [] if "--fuse" in options else [str(carphone)]
        assert main(["extract", *inputs, "--out", str(tmp_path / "refused"), *options]) != 0
        assert message in capsys.readouterr().err, options


def test_frames_per_window_is_a_recipe_of_its_own(tmp_path, bikes_clip):
    out = tmp_path / "features"
    (first,) = extract([bikes_clip], out, size=64, frames_per_window=4, progress=False)
    assert first.status == "extracted"
    assert read_sidecar(out / "bikes48.json").frames_per_window == 4
    (again,) = extract([bikes_clip], out, size=64, frames_per_window=4, progress=False)
    assert again.status == "skipped"
    (every,) = extract([bikes_clip], out, size=64, progress=False)  # every frame: another recipe, re-extracted
    assert every.status == "extracted" and read_sidecar(out / "bikes48.json").frames_per_window is None
    with pytest.raises(InputError, match="--frames-per-window: backbone skeleton reads every frame"):
        extract([bikes_clip], out, backbone="skeleton", frames_per_window=4, progress=False)


def test_a_video_replaced_under_the_same_name_is_extracted_again(tmp_path, bikes_clip, carphone):
    import shutil

    video = tmp_path / "clip.mp4"
    shutil.copy(bikes_clip, video)
    out = tmp_path / "features"
    assert extract([video], out, size=64, frames_per_window=4, progress=False)[0].status == "extracted"
    assert extract([video], out, size=64, frames_per_window=4, progress=False)[0].status == "skipped"
    first = np.load(out / "clip.npy")
    shutil.copy(carphone, video)  # another video, same name: its old features must not be taken for it
    (again,) = extract([video], out, size=64, frames_per_window=4, progress=False)
    assert again.status == "extracted"
    assert np.load(out / "clip.npy").shape != first.shape
    assert read_sidecar(out / "clip.json").source == str(video.resolve())


def test_another_video_of_the_same_name_does_not_replace_features_of_one_still_there(tmp_path, bikes_clip,
                                                                                      carphone):
    import shutil

    (tmp_path / "camA").mkdir(), (tmp_path / "camB").mkdir()
    first, second = tmp_path / "camA" / "clip.mp4", tmp_path / "camB" / "clip.mp4"
    shutil.copy(bikes_clip, first)
    shutil.copy(carphone, second)
    out = tmp_path / "features"
    assert extract([first], out, size=64, frames_per_window=4, progress=False)[0].status == "extracted"
    kept = (out / "clip.npy").read_bytes()
    # folder by folder into one features folder: camA's features (hours of work on long videos) were replaced
    with pytest.raises(InputError, match=rf"holds the features of {re.escape(str(first.resolve()))} .*another file "
                                         rf"than {re.escape(str(second))}"):
        extract([second], out, size=64, frames_per_window=4, progress=False)
    assert (out / "clip.npy").read_bytes() == kept
    # the same file under the same path is still done, by another path too (a hard link), and one whose recorded
    # source moved away may take its place
    assert extract([first], out, size=64, frames_per_window=4, progress=False)[0].status == "skipped"
    (tmp_path / "linked").mkdir()
    os.link(first, tmp_path / "linked" / "clip.mp4")
    assert extract([tmp_path / "linked" / "clip.mp4"], out, size=64, frames_per_window=4,
                   progress=False)[0].status == "skipped"
    first.rename(tmp_path / "camA" / "moved.mp4")
    assert extract([second], out, size=64, frames_per_window=4, progress=False)[0].status == "extracted"


def test_fuse_refuses_a_feature_set_given_twice_by_any_path_or_as_a_copy(tmp_path):
    """`--fuse a a` (or `a ./a/`, a link to a, a copy of a) wrote every video's channels twice, exit 0."""
    import shutil

    write_set(tmp_path / "a", {"v1": 10, "v2": 10}, dim=3)
    write_set(tmp_path / "b", {"v1": 10, "v2": 10}, dim=2)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    for twice in ([tmp_path / "a", tmp_path / "a"], [tmp_path / "a", tmp_path / "b", tmp_path / "link"],
                  [tmp_path / "a", f"{tmp_path}/./a/"]):
        with pytest.raises(InputError, match=r"given to --fuse twice.*give each folder once"):
            fuse_features(twice, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    with pytest.raises(InputError, match=r"video 'v1': .*a/v1.npy and .*copy/v1.npy hold the same features"):
        fuse_features([tmp_path / "a", tmp_path / "b", tmp_path / "copy"], tmp_path / "out")
    assert not (tmp_path / "out" / "v1.npy").exists()
    # the set extracted again in another runtime: a rounding apart, one set all the same (a hash of bytes missed it)
    for vid in ("v1", "v2"):
        again = tmp_path / "again" / f"{vid}.npy"
        write_features(again, np.load(tmp_path / "a" / f"{vid}.npy") * np.float32(1 + 3e-6),
                       read_sidecar(tmp_path / "a" / f"{vid}.json"))
    with pytest.raises(InputError, match=r"video 'v1': .*a/v1.npy and .*again/v1.npy hold the same features up to "
                                         r"float rounding \(a folder and its copy\?\)"):
        fuse_features([tmp_path / "a", tmp_path / "again"], tmp_path / "out")
    assert not (tmp_path / "out" / "v1.npy").exists()
    # two sets of one width and length whose values differ are fused
    for vid in ("v1", "v2"):
        sidecar = FeatureSidecar(fps=28.0, stride=4, window=16, backbone="other", dim=3, frames=52)
        write_features(tmp_path / "c" / f"{vid}.npy", np.ones((10, 3), np.float32), sidecar)
    fused = fuse_features([tmp_path / "a", tmp_path / "c"], tmp_path / "out")
    assert [r.input_lengths for r in fused] == [(10, 10)] * 2


def test_fuse_checks_every_video_before_writing_any_and_keeps_each_input_s_recipe(tmp_path):
    # a refusal at the last video left the others fused, which `detect FOLDER` then read as the whole set
    write_set(tmp_path / "a", {"v1": 10, "v2": 10, "v3": 10}, dim=3)
    write_set(tmp_path / "b", {"v1": 10, "v2": 10, "v3": 30}, dim=2)
    with pytest.raises(InputError, match="video 'v3': feature lengths differ"):
        fuse_features([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    # the weights' sha256, frames per window and precision were dropped: fused features of other weights
    # passed every recipe check
    sha = {"w1": "ab" * 32, "w2": "cd" * 32}
    for name in sha:
        write_set(tmp_path / name, {"v1": 10}, dim=3, weights_sha256=sha[name], frames_per_window=4, precision="bf16")
    write_set(tmp_path / "c", {"v1": 10}, dim=2)
    fused = {}
    for name in sha:
        fuse_features([tmp_path / name, tmp_path / "c"], tmp_path / f"fused-{name}")
        fused[name] = read_sidecar(tmp_path / f"fused-{name}" / "v1.json")
    assert fused["w1"].weights_sha256 != fused["w2"].weights_sha256 and len(fused["w1"].weights_sha256) == 64
    # one input of a per-frame backbone (4 frames per window), one without: the backbones as fused before, the
    # frames per window the one known (a run trained on earlier fused features takes these); precisions differ
    assert (fused["w1"].backbone, fused["w1"].frames_per_window, fused["w1"].precision) == ("b3+b2", 4, None)
    write_set(tmp_path / "d", {"v1": 10}, dim=2, frames_per_window=4, precision="bf16")
    fuse_features([tmp_path / "w1", tmp_path / "d"], tmp_path / "fused-w1d")
    same = read_sidecar(tmp_path / "fused-w1d" / "v1.json")
    assert (same.backbone, same.frames_per_window, same.precision) == ("b3+b2", 4, "bf16")
    write_set(tmp_path / "e", {"v1": 10}, dim=2, frames_per_window=16)  # two known values: both named
    fuse_features([tmp_path / "w1", tmp_path / "e"], tmp_path / "fused-w1e")
    both = read_sidecar(tmp_path / "fused-w1e" / "v1.json")
    assert (both.backbone, both.frames_per_window) == ("b3[4 frames]+b2[16 frames]", None)


def skeleton_folder(tmp_path, count: int = 2):
    """A folder of `count` short SMG skeleton CSVs (extracted with --fps: no network, no data CSV)."""
    folder = tmp_path / "smg"
    folder.mkdir()
    for number in range(1, count + 1):
        write_skeleton(folder / f"Sample000{number}_skeleton.csv", 40, number)
    return folder


HELD = r"is in use by pid \d+ on .*; another extraction is writing there: wait for it to finish or use another --out$"


def test_a_second_extraction_into_a_folder_another_one_writes_is_refused_before_writing_anything(tmp_path, carphone,
                                                                                                   capsys):
    """Two `mgrec extract --out rc` at once both exited 0, one's feature array left beside the other's sidecar."""
    from mgrec.cli import main
    from mgrec.run import FEATURES_LOCK, lock_features_folder

    out = tmp_path / "out"
    smg = skeleton_folder(tmp_path)
    with lock_features_folder(out):  # another extraction at work (another open file: refused as another process)
        assert main(["extract", str(smg), "--backbone", "skeleton", "--fps", "28", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.fullmatch(rf"mgrec: error: {re.escape(str(out))} {HELD}", err.strip())
        with pytest.raises(InputError, match=HELD):  # the Python API too, of videos, before the backbone loads
            extract_videos([carphone], out, size=SIZE, progress=False)
        write_set(tmp_path / "a", {"v1": 5}, dim=2)
        write_set(tmp_path / "b", {"v1": 5}, dim=3)
        with pytest.raises(InputError, match=HELD):
            fuse_features([tmp_path / "a", tmp_path / "b"], out)
        assert [p.name for p in out.iterdir()] == [FEATURES_LOCK]  # nothing written beside the holder's lock
    assert not out.exists()  # the holder made the folder and wrote nothing: it is gone with its lock
    assert main(["extract", str(smg), "--backbone", "skeleton", "--fps", "28", "--out", str(out)]) == 0  # free again
    assert sorted(p.name for p in out.iterdir()) == ["Sample0001.json", "Sample0001.npy", "Sample0002.json",
                                                     "Sample0002.npy"]  # the lock file goes with the extraction


def test_a_lock_file_left_by_a_killed_extraction_does_not_block_the_next(tmp_path):
    from mgrec.run import FEATURES_LOCK

    out = tmp_path / "out"
    out.mkdir()
    (out / FEATURES_LOCK).write_text("pid 999999 on elsewhere\n")  # no process holds it: the OS let it go
    results = extract([skeleton_folder(tmp_path)], out, backbone="skeleton", fps=28.0, progress=False)
    assert [r.status for r in results] == ["extracted", "extracted"]
    assert not (out / FEATURES_LOCK).exists()


def test_readers_of_a_features_folder_leave_its_lock_file_out(tmp_path):
    """A killed extraction's lock file stays in the folder: no reader takes it for a video's features."""
    from mgrec.data.features import list_feature_files
    from mgrec.run import FEATURES_LOCK

    out = tmp_path / "out"
    smg = skeleton_folder(tmp_path)
    extract([smg], out, backbone="skeleton", fps=28.0, progress=False)
    (out / FEATURES_LOCK).write_text("pid 999999 on elsewhere\n")
    listing = list_feature_files(out)
    assert [p.name for p in listing.files] == ["Sample0001.npy", "Sample0002.npy"] and listing.note() is None
    # resuming counts the two videos done, and the folder fuses with another as two videos
    assert [r.status for r in extract([smg], out, backbone="skeleton", fps=28.0, progress=False)] == ["skipped"] * 2
    other = tmp_path / "other"  # another feature set of the same videos (a folder is not fused with itself)
    for path in listing.files:
        write_features(other / path.name, np.load(path) * 2 + 1, read_sidecar(path.with_suffix(".json")))
    assert [r.video_id for r in fuse_features([out, other], tmp_path / "fused")] == ["Sample0001", "Sample0002"]


class Killed(Exception):
    """The simulated kill of an extraction inside its network."""


def network_of(recipe: dict, tmp_path) -> tuple[type, str]:
    """The backbone class `extract_videos(**recipe)` runs and the name of its method that runs the network on a batch;
    a tiny VideoMAE's weights written where the recipe names them."""
    from mgrec.extract.backbones import EfficientNetLite0, VideoMAE

    if recipe.get("backbone") != "videomae":
        return EfficientNetLite0, "frame_embeddings"
    from transformers import VideoMAEConfig, VideoMAEModel

    torch.manual_seed(0)
    config = VideoMAEConfig(image_size=32, patch_size=16, num_frames=16, tubelet_size=2, hidden_size=48,
                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=96)
    VideoMAEModel(config).save_pretrained(recipe["weights"])
    return VideoMAE, "clip_features"


def counting_network(monkeypatch, recipe, tmp_path, kill_at: int | None = None, on_kill=lambda: None) -> list:
    """The network's batches (a tuple of its inputs' hashes each) from now on, in a list; `kill_at`: the batch of that
    number (from 1) raises `Killed` instead, after `on_kill()` looked at the files."""
    backbone, method = network_of(recipe, tmp_path)
    original, batches = getattr(backbone, method), []
    original = getattr(original, "unpatched", original)  # not an earlier call's counting one

    def network(self, inputs):
        if kill_at is not None and len(batches) + 1 == kill_at:
            on_kill()
            raise Killed("killed")
        batches.append(tuple(hash(np.asarray(x).tobytes()) for x in inputs))
        return original(self, inputs)

    network.unpatched = original
    monkeypatch.setattr(backbone, method, network)
    return batches


# (recipe, the batch the kill hits, the rows saved before it, the batches a resumed run computes); 120 frames
KILLED_HALF_WAY = {
    # 8 frames a batch, killed in its 7th: frames 0-47 done, windows 0-8 (window 8 is frames 32-47); window 9 begins
    # at frame 36, in the batch of frames 32-39: batches 5 to 15 are run again
    "efficientnet-lite0": (dict(size=SIZE, batch=8), 7, 9, 11),
    # the network reads frames 0, 4, 8, ...: 8 of them a batch; killed in its 3rd: frames 0-60 read, windows 0-11
    # done (window 12 reads 48-60 but ends at frame 63, which comes with the next batch); window 12's first frame,
    # 48, is the 13th read, in the batch of the 9th to 16th: batches 2 to 4 are run again
    "efficientnet-lite0, 4 frames a window": (dict(size=SIZE, batch=8, frames_per_window=4), 3, 12, 3),
    # 4 clips a batch, windows of 16 frames every 8 (14 windows); killed in its 3rd: windows 0-7 done, 2 batches left
    "videomae": (dict(backbone="videomae", stride=8, batch=4), 3, 8, 2),
}


@pytest.mark.parametrize("backbone", KILLED_HALF_WAY)
def test_a_video_killed_half_way_resumes_after_its_saved_rows_and_ends_as_an_uninterrupted_run(tmp_path, carphone,
                                                                                               monkeypatch, capsys,
                                                                                               backbone):
    """A killed extraction restarted its video from the first frame (hours of network work on a lab recording)."""
    from mgrec.extract import outputs

    recipe, kill_at, saved, resumed = KILLED_HALF_WAY[backbone]
    recipe = {**recipe, "progress": False} | ({"weights": tmp_path / "weights"} if "backbone" in recipe else {})
    video, out, _ = clip_extraction(tmp_path, carphone)
    whole_batches = counting_network(monkeypatch, recipe, tmp_path)
    extract_videos([video], tmp_path / "whole", **recipe)
    whole = np.load(tmp_path / "whole" / "clip.npy")

    # killed in its network, the rows done were saved as they came (here every row: a save every 0 s, never spaced
    # out for the time saves take)
    monkeypatch.setattr(outputs, "PARTIAL_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(outputs, "SAVE_SHARE", float("inf"))
    partial, partial_json = out / ".clip.partial.npy", out / ".clip.partial.json"
    on_disk = []  # the rows saved when the kill came (not those saved on the way out)
    counting_network(monkeypatch, recipe, tmp_path, kill_at=kill_at,
                     on_kill=lambda: on_disk.append(read_sidecar(partial_json).num_features))
    with pytest.raises(Killed):
        extract_videos([video], out, **recipe)
    assert on_disk == [saved] and read_sidecar(partial_json).num_features == saved
    np.testing.assert_array_equal(np.load(partial), whole[:saved])
    assert not (out / "clip.npy").exists() and not (out / "clip.json").exists()

    # the rerun computes the windows after them, in the uninterrupted run's last batches: the same features, bit for bit
    batches = counting_network(monkeypatch, recipe, tmp_path)
    assert [r.status for r in extract_videos([video], out, **recipe)] == ["extracted"]
    assert len(batches) == resumed and batches == whole_batches[-resumed:]
    np.testing.assert_array_equal(np.load(out / "clip.npy"), whole)
    assert read_sidecar(out / "clip.json") == read_sidecar(tmp_path / "whole" / "clip.json")
    assert f"note: {video}: resuming at window {saved}, after the rows saved" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["clip.json", "clip.npy"]  # the saved rows are gone with it


def test_saved_rows_of_another_recipe_another_file_or_damaged_are_never_used(tmp_path, carphone, monkeypatch, capsys):
    recipe = dict(size=SIZE, batch=8, progress=False)
    video, out, _ = clip_extraction(tmp_path, carphone)
    whole_batches = counting_network(monkeypatch, recipe, tmp_path)
    extract_videos([video], tmp_path / "whole", **recipe)
    whole = np.load(tmp_path / "whole" / "clip.npy")
    # killed in its 7th batch, the rows saved on the way out (the first save was due a minute after the start)
    partial, partial_json = out / ".clip.partial.npy", out / ".clip.partial.json"
    on_disk = []
    counting_network(monkeypatch, recipe, tmp_path, kill_at=7, on_kill=lambda: on_disk.append(partial.exists()))
    with pytest.raises(Killed):
        extract_videos([video], out, **recipe)
    assert on_disk == [False] and read_sidecar(partial_json).num_features == 9
    kept = {path: path.read_bytes() for path in (partial, partial_json)}
    capsys.readouterr()

    def rerun(change, why: str, **other) -> list[str]:
        """The rows put back, `change()`d, and the video extracted again: from its first frame, saying why."""
        for path, data in kept.items():
            path.write_bytes(data)
        (out / "clip.npy").unlink(missing_ok=True)
        (out / "clip.json").unlink(missing_ok=True)
        change()
        batches = counting_network(monkeypatch, recipe, tmp_path)
        statuses = [r.status for r in extract_videos([video], out, **recipe | other)]
        err = capsys.readouterr().err
        assert f"note: {video}: the rows saved by an extraction of it that stopped ({partial}) are not used: " in err
        assert why in err and "it is extracted from its first frame" in err and "resuming" not in err
        assert not partial.exists() and not partial_json.exists()
        assert len(batches) == len(whole_batches)  # every frame through the network again
        return statuses

    def rewrite_sidecar(**values):
        partial_json.write_text(json.dumps(json.loads(kept[partial_json]) | values))

    def more_rows_than_windows():
        np.save(partial, np.zeros((28, 1280), np.float32))
        rewrite_sidecar(num_features=28)

    assert rerun(lambda: None, "made with another recipe (its stride)", stride=8) == ["extracted"]
    assert read_sidecar(out / "clip.json").stride == 8
    rerun(lambda: rewrite_sidecar(precision="bf16" if read_sidecar(partial_json).precision == "fp32" else "fp32"),
          "made with another recipe (its precision)")
    stamp = os.stat(video)
    rerun(lambda: os.utime(video, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9)),  # the video changed since
          f"they are of {video.resolve()} as it was then (size:mtime {stamp.st_size}:{stamp.st_mtime_ns}), not of "
          f"this file ({stamp.st_size}:{stamp.st_mtime_ns + 10**9})")
    np.testing.assert_array_equal(np.load(out / "clip.npy"), whole)
    kept[partial_json] = kept[partial_json].replace(str(stamp.st_mtime_ns).encode(),
                                                    str(stamp.st_mtime_ns + 10**9).encode())  # of the file as it is

    # damaged: cut, garbage, its sidecar missing or unreadable, more rows recorded than held or than the video has
    # windows, values no network makes
    rerun(lambda: partial.write_bytes(kept[partial][:-100]), "they cannot be read")
    rerun(lambda: partial.write_bytes(b"\x93NUMPY garbage" * 10), "they cannot be read")
    rerun(partial_json.unlink, ".clip.partial.json is missing (the extraction stopped while saving them)")
    rerun(lambda: partial_json.write_text("{"), "their sidecar cannot be read")
    rerun(lambda: rewrite_sidecar(num_features=10), "sidecar says 10 feature steps but .clip.partial.npy holds 9")

    def poisoned():
        rows = np.load(io.BytesIO(kept[partial]))
        rows[3, 5] = np.nan
        np.save(partial, rows)

    rerun(poisoned, "NaN/Inf value")
    rerun(more_rows_than_windows, "28 rows, more than the video's 27 windows")
    np.testing.assert_array_equal(np.load(out / "clip.npy"), whole)

    # as they were saved on the way out, they are used: 11 of the 15 batches run, the same features
    for path, data in kept.items():
        path.write_bytes(data)
    (out / "clip.npy").unlink()
    batches = counting_network(monkeypatch, recipe, tmp_path)
    assert [r.status for r in extract_videos([video], out, **recipe)] == ["extracted"]
    assert len(batches) == 11 and "resuming at window 9" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(out / "clip.npy"), whole)

    # rows left beside features written (a kill between the two) go at the next run, which skips the video
    for path, data in kept.items():
        path.write_bytes(data)
    assert [r.status for r in extract_videos([video], out, **recipe)] == ["skipped"]
    assert sorted(p.name for p in out.iterdir()) == ["clip.json", "clip.npy"]


def test_extract_says_each_warning_naming_its_input_once(tmp_path, capsys):
    # `warning: <file>: <file>: 2 of 40 frames had no tracked person; ...`: every warning names its input itself, and
    # the command put the input before it again
    from mgrec.cli import main

    (tmp_path / "smg").mkdir()
    csv = tmp_path / "smg" / "Sample0001_skeleton.csv"
    write_skeleton(csv, 40, 1, untracked=[3, 4])
    assert main(["extract", str(csv), "--backbone", "skeleton", "--fps", "28", "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {csv}: 2 of 40 frames had no tracked person; they repeat the previous tracked pose"]


def test_a_video_that_grows_while_it_is_read_is_refused_not_extracted_in_part(tmp_path, make_video, monkeypatch):
    # a recording still being written (OBS, a camera) was extracted up to where it then ended and written as the
    # video's features, exit 0: detections covered a part of it without a word
    import mgrec.extract.jobs as jobs

    video = make_video(tmp_path / "rec.mp4", [np.full((32, 32, 3), 8 * i, np.uint8) for i in range(20)])
    before = video.stat().st_size
    decode = jobs.iter_frames

    def growing(path, *args, **kwargs):
        for index, frame in enumerate(decode(path, *args, **kwargs)):
            if index == 5:  # the recorder writes on while mgrec reads
                with open(path, "ab") as file:
                    file.write(b"\0" * 1000)
            yield frame

    monkeypatch.setattr(jobs, "iter_frames", growing)
    out = tmp_path / "out"
    with pytest.raises(InputError) as error:
        extract_videos([video], out, size=32, progress=False)
    assert (f"{video}: changed while it was read ({before:,} bytes when its reading began, {before + 1000:,} now, "
            "modified since: a recording or a copy still being written?); its features would be of a part of it: "
            "extract it once it is complete") in str(error.value)
    assert not out.exists() or not any(out.iterdir())
    monkeypatch.setattr(jobs, "iter_frames", decode)  # complete now: extracted
    assert [r.status for r in extract_videos([video], out, size=32, progress=False)] == ["extracted"]


def test_a_one_frame_video_is_counted_as_one_frame(tmp_path, make_video):
    # `<file>: 1 frames, shorter than one window of 16 frames`
    video = make_video(tmp_path / "one.mp4", [np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(InputError) as error:
        extract_videos([video], tmp_path / "out", size=32, progress=False)
    assert f"{video}: 1 frame, shorter than one window of 16 frames" in str(error.value)


def two_video_streams(path, first: int, second: int):
    """A Matroska file of two video streams (a dashcam's front and rear cameras) of `first` and `second` frames."""
    import av

    with av.open(str(path), "w") as out:
        streams = [out.add_stream("mpeg4", rate=25) for _ in range(2)]
        for stream, size in zip(streams, (32, 48)):
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
        for index in range(max(first, second)):
            for stream, count, size in zip(streams, (first, second), (32, 48)):
                if index < count:
                    frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 8 * index, np.uint8), format="rgb24")
                    for packet in stream.encode(frame):
                        out.mux(packet)
        for packet in [*streams[0].encode(), *streams[1].encode()]:
            out.mux(packet)
    return path


def test_a_video_of_several_video_streams_says_which_it_read(tmp_path):
    # the first of several video streams was read without a word: a dashcam's front camera for its rear one, or a
    # 5-frame first stream refused as `5 frames, shorter than one window` beside a whole second one
    both = two_video_streams(tmp_path / "both.mkv", 20, 20)
    (result,) = extract_videos([both], tmp_path / "out", size=32, progress=False)
    assert result.frames == 20 and result.warnings == (
        f"{both}: it holds 2 video streams and mgrec reads the first, 32x32; to read another, copy it into a file of "
        "its own: ffmpeg -i IN -map 0:v:1 -c copy OUT.mkv",)
    short = two_video_streams(tmp_path / "short.mkv", 5, 20)
    with pytest.raises(InputError) as error:
        extract_videos([short], tmp_path / "out", size=32, progress=False)
    assert (f"{short}: 5 frames, shorter than one window of 16 frames (it holds 2 video streams and mgrec reads the "
            "first, 32x32; ") in str(error.value)


def test_a_full_disk_while_rows_are_saved_stops_the_extraction_and_keeps_the_rows_saved(tmp_path, carphone,
                                                                                       monkeypatch, capsys):
    """A save of a video's rows that met a full disk was taken for a failure of the video's own: the rows saved before
    (an earlier run's too) were removed, and every later video was decoded and run through the network only to meet
    the full disk in turn, all said at the end as "2 of 2 inputs failed"."""
    import errno

    from mgrec.extract import outputs

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (inputs / name).write_bytes(carphone.read_bytes())
    out = tmp_path / "out"
    monkeypatch.setattr(outputs, "PARTIAL_SAVE_SECONDS", 0.0)
    monkeypatch.setattr(outputs, "SAVE_SHARE", float("inf"))
    saves, real_save = [], np.save

    def a_disk_that_fills(handle, array, *args, **kwargs):  # the 4th save of rows on meets a full disk
        saves.append(len(array))
        if len(saves) >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(handle, array, *args, **kwargs)

    monkeypatch.setattr(np, "save", a_disk_that_fills)
    batches = counting_network(monkeypatch, {}, tmp_path)
    threads_before = set(threading.enumerate())
    with pytest.raises(InputError) as error:
        extract_videos(sorted(inputs.iterdir()), out, size=SIZE, batch=8, progress=False)
    # said with what is kept and how to go on (`StoppedIn`'s words), once the disk has room
    assert re.fullmatch(rf"cannot write {re.escape(str(out / '.a.partial.npy'))}: No space left on device; stopped in "
                        r"video '.*a\.mp4' \(1 of 2: 0 finished before it\): the features of those finished are in "
                        r".*, and the rows made of this one are saved there: the same command again skips the finished "
                        r"ones and resumes it \(once the output can be written\)", str(error.value))
    # the video's decoding thread ended with it, though the error (and its traceback) is still held here: it went
    # on decoding, the file open, for as long as the traceback was kept
    assert not [t for t in threading.enumerate() if t.name == "mgrec-decode" and t not in threads_before]
    assert read_sidecar(out / ".a.partial.json").num_features == saves[2]  # the 3rd save's rows, whole, kept
    assert sorted(p.name for p in out.iterdir()) == [".a.partial.json", ".a.partial.npy"]  # b was never begun
    assert len(batches) == 4  # the network stopped at the failed save, in a
    monkeypatch.setattr(np, "save", real_save)  # space again: a resumes after its saved rows, b follows
    assert [r.status for r in extract_videos(sorted(inputs.iterdir()), out, size=SIZE, batch=8,
                                             progress=False)] == ["extracted", "extracted"]
    assert f"note: {inputs / 'a.mp4'}: resuming at window {saves[2]}, after the rows saved" in capsys.readouterr().err


def test_frames_scaled_up_much_are_one_warning_of_each_video_in_its_result(tmp_path, make_video, capsys):
    """Frames scaled up more than 4x to the backbone's input were warned of by the video reader itself, on stderr,
    once per process through a module-level set: a Python caller of extraction never had it in
    `ExtractResult.warnings`, where every other warning of a video is. It is now one warning of each video there,
    beginning with the video's path, which `mgrec extract` prints once; nothing printed by the reader itself."""
    from mgrec.cli import main

    videos = [make_video(tmp_path / f"{name}.mp4", [np.full((40, 40, 3), 6 * i + seed, np.uint8) for i in range(20)])
              for seed, name in enumerate(("a", "b"))]
    (first,) = extract_videos(videos[:1], tmp_path / "one", size=224, progress=False)
    said = ("{}: its frames are 40x40 pixels, scaled up 5.6x (more than 4x on a side) to the backbone's input of "
            "224x224: its features see little of each gesture; a larger recording gives better ones")
    assert first.warnings == (said.format(videos[0]),)
    assert capsys.readouterr().err == ""  # in the result, not printed
    both = extract_videos(videos, tmp_path / "two", size=224, progress=False)
    assert [result.warnings for result in both] == [(said.format(video),) for video in videos]  # one each
    assert capsys.readouterr().err == ""
    assert main(["extract", *map(str, videos), "--out", str(tmp_path / "cli"), "--size", "224"]) == 0
    err = capsys.readouterr().err
    for video in videos:  # the command line says each once
        assert err.count(said.format(video)) == 1 and f"warning: {said.format(video)}" in err


@pytest.mark.parametrize("options, message", [
    ({"runtime": ""}, "--runtime '': expected one of auto, torch, onnxruntime"),
    ({"runtime": 0}, "--runtime 0: expected one of auto, torch, onnxruntime"),
    ({"runtime": "ONNXRUNTIME"}, "--runtime 'ONNXRUNTIME': expected one of auto, torch, onnxruntime"),
])
def test_a_runtime_that_names_none_is_refused_by_extract_not_taken_as_auto(tmp_path, options, message):
    # before: extract took "" and 0 as auto (`runtime or "auto"`), and extract_videos searched the inputs first
    for call in (extract, extract_videos):
        with pytest.raises(InputError) as caught:
            call([tmp_path / "nothing-here.mp4"], tmp_path / "out", size=SIZE, progress=False, **options)
        assert str(caught.value) == message, call.__name__


def test_an_empty_precision_is_refused_by_extract_not_taken_as_auto(tmp_path, carphone):
    with pytest.raises(InputError, match="^--precision='': expected one of auto, fp32, bf16$"):
        extract([carphone], tmp_path / "out", size=SIZE, progress=False, precision="")
    assert not list((tmp_path / "out").glob("*.npy"))


@pytest.mark.parametrize("name, value", [("runtime", "onnxruntime"), ("precision", "bf16"), ("size", 160),
                                         ("frames_per_window", 4), ("backbone", "videomae"), ("device", "cuda")])
def test_a_backbone_built_by_the_caller_is_not_given_the_arguments_that_build_one(tmp_path, carphone, name, value):
    # with model=, runtime="onnxruntime" (and every other building argument) was silently ignored
    with pytest.raises(InputError, match=rf"model= is a backbone already built, so {name}={re.escape(repr(value))} "
                                         "would be ignored"):
        extract_videos([carphone], tmp_path / "out", progress=False, model=object(), **{name: value})
    assert not (tmp_path / "out").exists()


def test_an_interrupted_extraction_says_true_words_before_in_and_after_its_videos(tmp_path, carphone, capsys,
                                                                                  monkeypatch):
    # the words' StoppedIn stayed active after the loop: Ctrl-C once every file was done (failures being listed, the
    # results returned) said "stopped in skeleton file 'LAST' (2 of 2: 1 finished before it)"; and it wrapped the
    # backbone's loading, which is in no video
    import mgrec.extract.backbones as backbones_module
    import mgrec.extract.jobs as jobs_module
    from mgrec.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    smg, out = skeleton_folder(tmp_path), tmp_path / "out"
    monkeypatch.setattr(jobs_module, "raise_failures", interrupted)
    assert main(["extract", str(smg), "--backbone", "skeleton", "--fps", "28", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"mgrec: interrupted; stopped after the last skeleton file: all 2 skeleton files were done; the features of "
        f"those finished are in {out}: the same command again skips them")
    videos = tmp_path / "videos"
    command = ["extract", str(carphone), "--size", str(SIZE), "--out", str(videos)]
    assert main(command) == 130  # the video extracted: no rows of it "saved", no video left to resume
    assert capsys.readouterr().err.strip() == (
        f"mgrec: interrupted; stopped after the last video: the one video was done; the features of those finished "
        f"are in {videos}: the same command again skips them")
    monkeypatch.setattr(backbones_module, "load_backbone", interrupted)
    assert main(command) == 130
    assert capsys.readouterr().err.strip() == "mgrec: interrupted"  # in no video yet: none is named


def test_a_folder_named_like_a_video_is_a_folder_for_detect_and_stream(tmp_path, bikes_clip, capsys):
    # `clip.mp4/` holding a video: `stream` decoded the folder (`cannot open the video (corrupt or truncated file?): Is
    # a directory`, blaming a file that was not there), `detect` extracted the video inside it under another id; any
    # other folder of videos is refused by both with the way to give them (row 182)
    from tests.helpers import SMALL_MODEL

    from mgrec.cli import main
    from mgrec.config import Config, DataConfig, ModelConfig
    from mgrec.extract.jobs import is_video
    from mgrec.model.detector import build_detector
    from mgrec.run import RunDir

    folder = tmp_path / "clip.mp4"
    folder.mkdir()
    (folder / "inner.mp4").write_bytes(bikes_clip.read_bytes())
    assert not is_video(folder) and is_video(folder / "inner.mp4") and is_video(tmp_path / "not_there.mp4")
    config = Config(data=DataConfig(feature_dim=8, fps=25.0), model=ModelConfig(input_dim=8, num_classes=2,
                                                                                 **SMALL_MODEL))
    run = tmp_path / "run"
    RunDir(run).write_for_inference(config, ["a", "b"], build_detector(config.model))
    for command in (["detect", str(run), str(folder), "--out", str(tmp_path / "det.json")],
                    ["stream", str(run), str(folder)]):
        capsys.readouterr()
        assert main(command) == 2
        assert (f"{folder}: folder holds no feature files (.npy, .npz), but 1 video file(s) (inner.mp4, ...): give the "
                f"video files themselves ({folder}/*.mp4)") in capsys.readouterr().err
    assert not (tmp_path / "det.json").exists()
