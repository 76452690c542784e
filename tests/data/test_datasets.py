import numpy as np

from mgrec.data.datasets import VideoSample, crop_targets, draw_training_crops, make_batch
from mgrec.model.inputs import pad_video
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=10.0, stride=1, window=1)


def sample(length=100, segments=((10, 20), (50, 54)), labels=(0, 1)):
    feats = np.arange(length * 3, dtype=np.float32).reshape(length, 3)
    return VideoSample("v", feats, np.array(segments, dtype=float), np.array(labels), GRID)


def test_crop_keeps_instances_with_enough_inside_and_shifts_them():
    s = sample()
    seg, lab = crop_targets(s, start=15, crop_len=40, keep_fraction=0.5)
    # (10, 20) keeps 5/10 -> kept and clipped to (15, 20) -> shifted (0, 5); (50, 54) fully inside
    assert seg.tolist() == [[0.0, 5.0], [35.0, 39.0]]
    assert lab.tolist() == [0, 1]
    seg, _ = crop_targets(s, start=16, crop_len=40, keep_fraction=0.5)
    assert seg.tolist() == [[34.0, 38.0]]


def test_duplicate_entries_are_one_target():
    s = sample(segments=((10, 20), (10, 20)), labels=(0, 0))
    seg, lab = crop_targets(s, 0, 50, 0.5)
    assert len(seg) == 1 and lab.tolist() == [0]


def test_crops_are_anchored_on_entries():
    samples = [sample(length=1000, segments=((500, 510),), labels=(0,))]
    rng = np.random.default_rng(0)
    crops = draw_training_crops(samples, [(0, 0)], num_crops=50, crop_len=100, rng=rng)
    for crop in crops:
        assert crop.start + 10 <= 505 <= crop.start + 90


def test_augmented_anchor_is_drawn_more_often():
    samples = [sample(length=1000, segments=((100, 110), (800, 810)), labels=(0, 1))]
    anchors = [(0, 0)] + [(0, 1)] * 4  # class 1 replicated R=4 times
    crops = draw_training_crops(samples, anchors, num_crops=2000, crop_len=100, rng=np.random.default_rng(1))
    near_rare = sum(c.start > 500 for c in crops)
    assert 0.75 < near_rare / len(crops) < 0.85


def test_batch_is_masked_and_padded():
    short = sample(length=30, segments=((5, 8),), labels=(2,))
    batch = make_batch([short], draw_training_crops([short], [(0, 0)], 1, 64, np.random.default_rng(0)), 64, 0.5)
    assert batch.features.shape == (1, 3, 64)
    assert batch.mask[0, 0, :30].all() and not batch.mask[0, 0, 30:].any()
    assert (batch.features[0, :, 30:] == 0).all()
    assert batch.segments[0].tolist() == [[5.0, 8.0]]


def test_pad_video_to_multiple():
    x, mask = pad_video(np.ones((70, 3), dtype=np.float32), 32)
    assert x.shape == (1, 3, 96) and int(mask.sum()) == 70
