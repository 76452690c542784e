"""The demo benchmark built from the seglearn/aeon wheel data (skipped when they are not installed)."""

import importlib.util
import json
import re
import shutil
import threading

import numpy as np
import pytest

from mgrec.data import demo
from mgrec.data.annotations import load_annotations
from mgrec.data.features import load_features, read_sidecar
from mgrec.errors import InputError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("seglearn") is None or importlib.util.find_spec("aeon") is None,
    reason=f"demo data not installed: {demo.INSTALL_HINT}",
)


@pytest.fixture(scope="module")
def sources():
    gestures, classes = demo.load_watch_recordings()
    return gestures, classes, demo.load_background_recordings()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return demo.build_demo(tmp_path_factory.mktemp("demo"), seed=0)


@pytest.fixture(scope="module")
def aset(built):
    return load_annotations(built.annotations)


def subject_of(video_id: str) -> int:
    return int(re.fullmatch(r"(train|val|test)_subject(\d+)_\d", video_id).group(2))


def test_sources_are_the_documented_recordings(sources):
    gestures, classes, background = sources
    assert classes == ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]
    assert len(gestures) == 140 and len({g.subject for g in gestures}) == 10
    assert sorted({b.activity for b in background}) == ["Badminton", "Running", "Standing", "Walking"]
    assert len(background) == 80 and all(len(b.signal) == 496 for b in background)  # (100-1)*5+1 samples
    for recording in gestures[:5] + background[:5]:
        np.testing.assert_allclose(recording.signal.mean(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(recording.signal.std(axis=0), 1, atol=1e-9)


def test_split_sizes_and_subjects_disjoint(aset):
    subjects = {split: {subject_of(v) for v in aset.video_ids(split)} for split in ("train", "val", "test")}
    assert [len(aset.video_ids(s)) for s in ("train", "val", "test")] == [24, 6, 6]
    assert [len(subjects[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    assert not (
        subjects["train"] & subjects["val"]
        or subjects["train"] & subjects["test"]
        or subjects["val"] & subjects["test"]
    )


def test_background_recordings_split_disjointly(sources):
    background = sources[2]
    by_split = demo.split_background(background, np.random.default_rng(3))
    ids = {split: {id(r) for r in recordings} for split, recordings in by_split.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [48, 16, 16]
    assert set.union(*ids.values()) == {id(r) for r in background}


def test_labelled_spans_hold_the_labelled_subjects_exercise(sources):
    """Inside a label (away from its cross-fades) the stream is gain x a cut of a recording of that
    subject and exercise plus the noise floor: the best least-squares fit leaves only the noise."""
    gestures, classes, background = sources
    aset, signals, _ = demo.generate_streams(gestures, classes, background, seed=5)
    half = demo.CROSSFADE // 2
    for video_id in (aset.video_ids("train")[0], aset.video_ids("test")[-1]):
        for segment in aset.segments[video_id][:6]:
            piece = signals[video_id][segment.start_frame + half : segment.end_frame - half][:40]
            residuals = {}
            # Candidates: every recording of the same subject or the same exercise.
            for recording in gestures:
                if recording.subject != subject_of(video_id) and recording.activity != segment.label:
                    continue
                windows = np.lib.stride_tricks.sliding_window_view(recording.signal, len(piece), axis=0)
                windows = windows.transpose(0, 2, 1).reshape(len(windows), -1)  # (offsets, L*6)
                target = piece.reshape(-1)
                gains = windows @ target / np.einsum("ij,ij->i", windows, windows)
                rms = np.sqrt(np.mean((target - gains[:, None] * windows) ** 2, axis=1))
                key = (recording.subject, recording.activity)
                residuals[key] = min(residuals.get(key, np.inf), rms.min())
            best = min(residuals, key=residuals.get)
            assert best == (subject_of(video_id), segment.label)
            assert residuals[best] < 1.5 * demo.NOISE_FLOOR


def test_cross_fade_blends_linearly_with_labels_at_the_midpoint():
    ones = np.ones((10 + demo.CROSSFADE, 1))
    zeros = np.zeros((20 + demo.CROSSFADE, 1))
    out = demo._cross_fade([zeros, 2 * ones, zeros])[:, 0]
    assert len(out) == 20 + 10 + 20 + demo.CROSSFADE  # nominal lengths plus the last tail
    # The middle piece starts at sample 20 (fade-in over 20..29) and ends at 30 (fade-out 30..39).
    np.testing.assert_allclose(out[:20], 0)
    np.testing.assert_allclose(out[20:30], 2 * (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(out[30:40], 2 - 2 * (np.arange(10) + 0.5) / 10)
    np.testing.assert_allclose(out[40:], 0)


def test_statistics_match_the_recipe(aset, built):
    stats = demo.demo_statistics(built.root)
    assert stats == json.loads((built.root / "manifest.json").read_text())["statistics"]
    for split, s in stats["splits"].items():
        # Drawn in U(180, 240) s; the last gesture that does not fit (at most 6 s + 1 s) is left out.
        assert 180 - 7 <= s["video_seconds"]["min"] and s["video_seconds"]["max"] <= 240
        assert 1.3 <= s["instance_seconds"]["p50"] <= 1.9, split
        assert 0.4 <= s["instance_seconds"]["p5"] and s["instance_seconds"]["p95"] <= 6.0
        assert 0.4 <= s["gap_fraction_under_1s"] <= 0.6
        assert s["instances"] == sum(len(aset.segments[v]) for v in aset.video_ids(split))
    train = list(stats["splits"]["train"]["instances_per_class"].values())
    assert train[0] == max(train) and train[-1] == min(train) and max(train) / min(train) >= 5
    # Instances never overlap and lie inside their stream.
    for video_id, segments in aset.segments.items():
        ends = [(s.start, s.end) for s in sorted(segments, key=lambda s: s.start)]
        assert all(a[1] < b[0] for a, b in zip(ends, ends[1:]))
        assert ends[0][0] > 0 and ends[-1][1] < aset.videos[video_id].duration


def test_feature_files_and_sidecars(aset, built):
    for video_id in aset.video_ids()[::7]:
        info = aset.videos[video_id]
        features = load_features(built.features / f"{video_id}.npy", expected_dim=128)
        assert features.shape == (demo.GRID.num_windows(info.num_frames), 128)
        assert info.duration == info.num_frames / 50
        sidecar = read_sidecar(built.features / f"{video_id}.json")
        assert (sidecar.fps, sidecar.stride, sidecar.window, sidecar.dim) == (50.0, 4, 16, 128)
        assert (sidecar.backbone, sidecar.frames, sidecar.num_features) == (
            "imu-window-v1",
            info.num_frames,
            len(features),
        )


def test_feature_row_depends_only_on_its_window():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((100, 6))
    base = demo.encode_windows(signal)
    assert base.shape == (demo.GRID.num_windows(100), 128) == (22, 128) and base.dtype == np.float32
    for sample in (0, 17, 99):
        changed = signal.copy()
        changed[sample, 2] += 1.0
        rows = np.flatnonzero(np.any(demo.encode_windows(changed) != base, axis=1))
        expected = [i for i in range(len(base)) if 4 * i <= sample < 4 * i + 16]
        assert rows.tolist() == expected


def test_generation_is_deterministic_given_the_seed(sources):
    first = demo.generate_streams(*sources, seed=11)
    second = demo.generate_streams(*sources, seed=11)
    other = demo.generate_streams(*sources, seed=12)
    assert first[0].segments == second[0].segments
    assert all(np.array_equal(first[1][v], second[1][v]) for v in first[1])
    assert first[0].segments != other[0].segments
    assert all(np.array_equal(first[2][v], second[2][v]) for v in first[2])


def test_the_unlabelled_pool_holds_test_subjects_streams_and_no_labels(sources, built):
    aset, signals, pool = demo.generate_streams(*sources, seed=0)
    test_subjects = {v.split("_")[1] for v in aset.video_ids("test")}
    assert len(pool) == demo.POOL_STREAMS_PER_SUBJECT * len(test_subjects)
    assert {v.split("_")[1] for v in pool} == test_subjects
    assert not set(pool) & set(signals)  # new streams, not copies of the test split's
    files = sorted(p.stem for p in built.unlabeled.glob("*.npy"))
    assert files == sorted(pool)
    annotations = built.annotations.read_text()
    assert not any(video_id in annotations for video_id in pool)  # labels withheld: written nowhere


def test_build_is_reused_until_the_manifest_disagrees(built):
    stamp = built.annotations.stat().st_mtime_ns
    assert demo.build_demo(built.root, seed=0) == built
    assert built.annotations.stat().st_mtime_ns == stamp
    manifest = json.loads((built.root / "manifest.json").read_text())
    (built.root / "manifest.json").write_text(json.dumps({**manifest, "recipe": "older"}))
    stale = built.features / "stale_video.npy"
    stale.write_bytes(b"")
    demo.build_demo(built.root, seed=0)
    assert json.loads((built.root / "manifest.json").read_text())["recipe"] == demo.RECIPE_VERSION
    assert not stale.exists() and built.annotations.stat().st_mtime_ns != stamp


def test_a_second_build_waits_for_the_first_and_reuses_it(built, tmp_path):
    """Two benchmarks started together once built the same folder side by side and one crashed on the
    other's files; now the second waits for the first one's lock and then finds the build done."""
    root = tmp_path / "demo"
    shutil.copytree(built.root, root)
    manifest = (root / "manifest.json").read_text()
    (root / "manifest.json").unlink()  # a build under way has no manifest yet
    stamp = (root / "annotations.json").stat().st_mtime_ns
    returned = []
    with demo._one_build_at_a_time(root):
        second = threading.Thread(target=lambda: returned.append(demo.build_demo(root, seed=0)))
        second.start()
        second.join(1.0)
        assert second.is_alive()  # waiting on the lock (the unchanged annotations below are the proof)
        (root / "manifest.json").write_text(manifest)  # the first build ends
    second.join(60)
    assert not second.is_alive() and returned[0].root == root
    assert (root / "annotations.json").stat().st_mtime_ns == stamp  # reused, not built again


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "mine.npy").write_bytes(b"x")
    with pytest.raises(InputError, match="not made by `build_demo`"):
        demo.build_demo(tmp_path, seed=0)
    assert (tmp_path / "features" / "mine.npy").exists()


def test_missing_package_names_the_install_command(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "seglearn" else real(name))
    with pytest.raises(InputError, match=r"seglearn.*pip install --no-deps seglearn==1\.2\.5 aeon==1\.6\.0"):
        demo.build_demo(tmp_path, seed=0)


def test_bad_ts_file_names_file_and_line(tmp_path):
    path = tmp_path / "x.ts"
    path.write_text("#comment\n@data\n1,2:3,4:5,6:7,8:9,1:2,3:Walking\n1,2:oops:Standing\n")
    with pytest.raises(InputError, match=r"x\.ts:4"):
        demo._read_ts_file(path)


def test_default_cache_dir_follows_mgrec_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MGREC_CACHE", str(tmp_path))
    assert demo.default_cache_dir() == tmp_path / "demo"


def test_class_probabilities_decay_to_the_requested_ratio():
    p = demo.class_probabilities(7, 0.1)
    assert p.sum() == pytest.approx(1)
    assert p[-1] / p[0] == pytest.approx(0.1)
    np.testing.assert_allclose(p[1:] / p[:-1], 0.1 ** (1 / 6))


def test_a_build_with_a_file_removed_or_cut_short_since_is_built_again(built, tmp_path):
    """A demo folder whose manifest was whole but one of whose files was removed or truncated since (a file
    deleted by hand, a copy cut short) was reused: the data check then advised extracting features or dropping
    the videos. The manifest lists every file and its size; such a folder is built again, and said so."""
    root = tmp_path / "demo"
    shutil.copytree(built.root, root)
    removed = sorted((root / "features").glob("*.npy"))[0]
    cut = sorted((root / "streams" / "gyro").glob("*.npy"))[-1]
    sizes = {removed: removed.stat().st_size, cut: cut.stat().st_size}
    removed.unlink()
    with open(cut, "r+b") as handle:
        handle.truncate(100)
    said = []
    demo.build_demo(root, seed=0, log=said.append)
    assert {file: file.stat().st_size for file in sizes} == sizes
    assert len(said) == 1 and f"{removed} is missing, and 1 other file" in said[0] and "building it again" in said[0]
    said.clear()
    demo.build_demo(root, seed=0, log=said.append)  # whole again: reused without a word
    assert said == []


def test_source_files_of_another_version_or_a_module_hiding_the_package_are_refused(monkeypatch, tmp_path):
    """A seglearn or aeon of other data (another version, a copy edited) built another benchmark under the same
    manifest without a word; a `seglearn.py` first on the path said the package was not installed. Both are said."""
    import importlib.machinery

    real_find_spec = importlib.util.find_spec
    fake = tmp_path / "seglearn"
    (fake / "data").mkdir(parents=True)
    watch = real_find_spec("seglearn").submodule_search_locations[0] + "/data/watch_dataset.npy"
    data = np.load(watch, allow_pickle=True).item()
    data["X"] = [x[::-1] for x in data["X"]]  # the same keys and shapes, other values
    np.save(fake / "data" / "watch_dataset.npy", data, allow_pickle=True)
    spec = importlib.machinery.ModuleSpec("seglearn", None, is_package=True)
    spec.submodule_search_locations = [str(fake)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec if name == "seglearn" else real_find_spec(name))
    with pytest.raises(InputError, match=rf"{re.escape(str(fake))}/data/watch_dataset\.npy: not the data/watch_dataset"
                                         r"\.npy of seglearn 1\.2\.5 that the demo is built from \(sha256 .*"
                                         r"seglearn 1\.2\.5 is installed\): pip install --no-deps seglearn==1\.2\.5"):
        demo.build_demo(tmp_path / "demo", seed=0)
    assert not (tmp_path / "demo" / "manifest.json").exists()

    module = importlib.machinery.ModuleSpec("seglearn", None, origin=str(tmp_path / "seglearn.py"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: module if name == "seglearn" else real_find_spec(name))
    with pytest.raises(InputError, match=rf"'seglearn' is {re.escape(str(tmp_path))}/seglearn\.py, a module .* hides"):
        demo.load_watch_recordings()

    (tmp_path / "aeon").mkdir()  # an aeon without BasicMotions
    package = importlib.machinery.ModuleSpec("aeon", None, is_package=True)
    package.submodule_search_locations = [str(tmp_path / "aeon")]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: package if name == "aeon" else real_find_spec(name))
    with pytest.raises(InputError, match=r"BasicMotions_TRAIN\.ts: cannot read \(No such file or directory; aeon "
                                         r"1\.6\.0 is installed\); the demo is built from aeon 1\.6\.0's"):
        demo.load_background_recordings()


def test_a_relative_cache_folder_gives_absolute_paths_for_the_run_to_record(built, tmp_path, monkeypatch):
    """`mgrec demo --cache demo` (or MGREC_CACHE=cache) wrote data.annotations: demo/annotations.json into the run's
    config.yaml: `mgrec evaluate .` in the run's folder, or from anywhere but where the demo ran, said not found."""
    shutil.copytree(built.root, tmp_path / "cache" / "demo")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MGREC_CACHE", "cache")
    for paths in (demo.build_demo("cache/demo", seed=0), demo.build_demo(seed=0)):
        assert paths.root == tmp_path / "cache" / "demo"
        assert paths.overrides()[0] == f"data.annotations={tmp_path}/cache/demo/annotations.json"
        assert paths.overrides()[1] == f"data.features={tmp_path}/cache/demo/features"
        assert f'"features": "{tmp_path}/cache/demo/streams/acc"' in paths.stream_overrides(["acc"])[1]
