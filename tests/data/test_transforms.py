import numpy as np
import pytest

from mgrec.config import TransformsConfig
from mgrec.data.datasets import Crop, VideoSample, crop_targets, make_batch
from mgrec.data.transforms import CropTransforms, free_starts, occupied_steps, resample_crop
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=10.0, stride=1, window=1)


def ramp_video(length=400, segments=((100.0, 112.5), (150.25, 170.0)), labels=(0, 1)) -> VideoSample:
    """Channel 0 holds the step index itself, so a resampled feature says which source position it came from."""
    features = np.stack([np.arange(length, dtype=np.float32), np.ones(length, np.float32)], axis=1)
    return VideoSample("ramp", features, np.array(segments), np.array(labels), GRID)


@pytest.mark.parametrize("scale", [0.8, 0.93, 1.0, 1.25])
def test_time_scale_moves_boundaries_exactly_with_the_features(scale):
    video = ramp_video()
    start, crop_len = 80, 128
    item = resample_crop(video, start, crop_len, scale, keep_fraction=0.5)
    # output step i holds source position start + i / scale (linear interpolation of a ramp is exact)
    steps = np.arange(len(item.features))
    assert item.features[:, 0] == pytest.approx(start + steps / scale, abs=1e-4)
    assert len(item.features) <= crop_len
    # a boundary at source position p sits at (p - start) * scale: where the features say p
    expected = (video.segments - start) * scale
    kept = expected[:, 1] <= len(item.features)
    assert item.segments == pytest.approx(expected[kept])
    for begin, end in item.segments:
        at = np.interp([begin, end], steps, item.features[:, 0])
        assert at == pytest.approx([begin / scale + start, end / scale + start], abs=1e-4)


def test_time_scale_near_the_end_of_a_video_moves_back_to_stay_long():
    video = ramp_video(length=200)
    item = resample_crop(video, 190, 128, 1.25, keep_fraction=0.5)
    assert len(item.features) == 128 and item.features[-1, 0] == pytest.approx(199.0, abs=0.5)


def dense_videos(count=4, length=300, seed=0):
    rng = np.random.default_rng(seed)
    videos = []
    for v in range(count):
        starts = np.sort(rng.choice(np.arange(5, length - 20, 25), size=6, replace=False)).astype(float)
        segments = np.stack([starts + rng.uniform(0, 2, 6), starts + rng.uniform(6, 14, 6)], axis=1)
        labels = rng.integers(0, 3, size=6)
        labels[0] = 2 if v == 0 else labels[0]
        features = rng.normal(size=(length, 8)).astype(np.float32)
        videos.append(VideoSample(f"v{v}", features, segments, labels, GRID))
    return videos


def test_pasting_never_overlaps_a_ground_truth_of_the_crop():
    videos = dense_videos()
    transforms = CropTransforms(TransformsConfig(paste_prob=1.0, paste_context=2), videos, num_classes=3)
    rng = np.random.default_rng(7)
    pasted = 0
    for trial in range(200):
        crop = Crop(int(rng.integers(len(videos))), int(rng.integers(0, 200)))
        video = videos[crop.video_index]
        own, _ = crop_targets(video, crop.start, 96, 0.5)
        item = transforms(videos, crop, 96, 0.5, rng)
        taken = occupied_steps(video.segments - crop.start, len(item.features))
        for begin, end in item.segments[len(own):]:
            pasted += 1
            assert not taken[int(np.floor(begin)) : int(np.ceil(end))].any(), (trial, begin, end)
        # what was pasted is a donor's features, verbatim, somewhere in the crop
        assert item.segments[: len(own)] == pytest.approx(own)
    assert pasted > 50  # the test saw pastes


def test_free_starts_are_exactly_the_free_windows():
    taken = np.array([0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert free_starts(taken, 3).tolist() == [3]
    assert free_starts(taken, 2).tolist() == [0, 3, 4]
    assert free_starts(taken, 9).tolist() == []


def test_a_fixed_seed_gives_the_same_crops_and_the_video_is_never_changed():
    videos = dense_videos()
    before = [v.features.copy() for v in videos]
    cfg = TransformsConfig(time_scale_prob=0.5, noise_prob=0.5, noise_std=0.1, channel_dropout_prob=0.5,
                           paste_prob=0.5)
    transforms = CropTransforms(cfg, videos, num_classes=3)
    crops = [Crop(v % 4, 10 * v) for v in range(8)]
    first = make_batch(videos, crops, 96, 0.5, transforms, np.random.default_rng([1, 2, 1]))
    second = make_batch(videos, crops, 96, 0.5, transforms, np.random.default_rng([1, 2, 1]))
    assert first.features.equal(second.features) and first.mask.equal(second.mask)
    assert all(a.equal(b) for a, b in zip(first.segments, second.segments))
    other = make_batch(videos, crops, 96, 0.5, transforms, np.random.default_rng([1, 3, 1]))
    assert not first.features.equal(other.features)
    assert all(np.array_equal(v.features, b) for v, b in zip(videos, before))


def test_channel_dropout_zeroes_its_share_and_keeps_the_expectation():
    videos = dense_videos(count=1)
    cfg = TransformsConfig(channel_dropout_prob=1.0, channel_dropout_rate=0.25)
    item = CropTransforms(cfg, videos, 3)(videos, Crop(0, 0), 64, 0.5, np.random.default_rng(0))
    zero = np.flatnonzero(~item.features.any(axis=0))
    assert len(zero) == 2  # 25 % of 8 channels
    kept = np.setdiff1d(np.arange(8), zero)
    assert item.features[:, kept] == pytest.approx(videos[0].features[:64, kept] / 0.75)


def test_noise_is_scaled_to_each_channel_s_spread():
    length = 4000
    rng = np.random.default_rng(0)
    features = np.stack([rng.normal(0, 10, length), rng.normal(0, 0.1, length)], axis=1).astype(np.float32)
    video = VideoSample("v", features, np.zeros((0, 2)), np.zeros(0, np.int64), GRID)
    transforms = CropTransforms(TransformsConfig(noise_prob=1.0, noise_std=0.5), [video], 1)
    item = transforms([video], Crop(0, 0), length, 0.5, np.random.default_rng(1))
    added = (item.features - features).std(axis=0)
    assert added == pytest.approx([5.0, 0.05], rel=0.05)


def test_no_transform_is_active_by_default():
    assert not CropTransforms(TransformsConfig(), dense_videos(count=1), 3).active
    assert not CropTransforms(TransformsConfig(noise_prob=1.0), dense_videos(count=1), 3).active  # std 0
