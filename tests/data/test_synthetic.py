"""The synthetic SMG-shaped generator used by other tests."""

import numpy as np
import pytest

from mgrec.data.annotations import load_annotations
from mgrec.data.features import load_features, read_sidecar
from mgrec.data.synthetic import GRID, class_prototypes, make_synthetic_dataset, make_synthetic_video


def test_video_is_deterministic_given_the_seed():
    a, b, c = (make_synthetic_video(seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.features, b.features) and a.segments == b.segments
    assert not np.array_equal(a.features, c.features)


def test_video_shapes_and_time_mapping():
    video = make_synthetic_video(length=300, feature_dim=16)
    assert video.features.shape == (300, 16) and video.features.dtype == np.float32
    assert GRID.num_windows(video.info.num_frames) == 300
    assert video.info.duration == video.info.num_frames / 28.0
    for s in video.segments:
        # frames [4a + 6, 4b + 6) for feature steps [a, b), and seconds = frames / fps
        assert (s.start_frame - 6) % 4 == 0 and (s.end_frame - 6) % 4 == 0
        assert s.start == pytest.approx(s.start_frame / 28.0) and s.end == pytest.approx(s.end_frame / 28.0)
        assert 0 < s.start < s.end < video.info.duration
        assert s.label == f"class{s.label_id:02d}"


def test_signature_lies_exactly_over_the_labelled_steps():
    video = make_synthetic_video(length=512, feature_dim=64, seed=1, prototype_seed=9)
    prototypes = class_prototypes(17, 64, prototype_seed=9)
    inside = np.zeros(512, dtype=bool)
    for s in video.segments:
        a, b = (s.start_frame - 6) // 4, (s.end_frame - 6) // 4
        inside[a:b] = True
        response = video.features[a:b] @ prototypes.T / 64  # about envelope + noise/8 per step
        assert np.argmax(response.mean(axis=0)) == s.label_id
        assert response[:, s.label_id].min() > 0.15  # the envelope never drops below 1/3
    outside = video.features[~inside] @ prototypes.T / 64
    assert np.abs(outside).max() < 0.3  # only noise: 0.5/sqrt(64) per step


def test_durations_and_long_tail_are_smg_shaped():
    videos = [make_synthetic_video(seed=s, length=512) for s in range(60)]
    segments = [s for v in videos for s in v.segments]
    durations = np.array([s.duration for s in segments])
    assert 1.3 <= np.median(durations) <= 1.9
    counts = np.bincount([s.label_id for s in segments], minlength=17)
    assert counts[0] == counts.max() and counts[0] / max(counts[-1], 1) >= 5


def test_dataset_files_load_with_the_readers(tmp_path):
    paths = make_synthetic_dataset(tmp_path, seed=2, feature_dim=24)
    aset = load_annotations(paths.annotations)
    assert aset.classes == [f"class{k:02d}" for k in range(17)]
    assert [aset.videos[v].subset for v in aset.video_ids()] == ["train"] * 4 + ["val", "test"]
    for video_id in aset.video_ids():
        info = aset.videos[video_id]
        features = load_features(paths.features / f"{video_id}.npy", expected_dim=24)
        assert 288 <= len(features) <= 384 and len(features) == GRID.num_windows(info.num_frames)
        sidecar = read_sidecar(paths.features / f"{video_id}.json")
        assert (sidecar.fps, sidecar.stride, sidecar.window, sidecar.dim, sidecar.frames, sidecar.num_features) == (
            28.0, 4, 16, 24, info.num_frames, len(features)
        )
        assert aset.segments[video_id]
    again = make_synthetic_dataset(tmp_path / "again", seed=2, feature_dim=24)
    assert again.annotations.read_text() == paths.annotations.read_text()
    assert f"data.features={paths.features}" in paths.overrides()


def test_dataset_rejects_a_subset_list_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="3 subsets given for 6 videos"):
        make_synthetic_dataset(tmp_path, subsets=("train", "val", "test"))
