"""`detect_video`, the path detection and validation take: network, decoding, NMS, records."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import decode_video
from mgrec.postprocess.reference import nms_reference, vote_boundaries_reference
from mgrec.postprocess.video import detect_video, to_detections
from mgrec.timeline import FeatureGrid

GRID = FeatureGrid(fps=28.0, stride=4, window=16)
CLASSES = ["a", "b", "c"]


class TwoLevelNetwork(torch.nn.Module):
    """A stand-in detector: per-step linear heads on level 0 and on a 2x-pooled level 1."""

    max_div_factor = 2

    def __init__(self, dim: int):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.cls = torch.nn.Parameter(torch.randn(dim, len(CLASSES), generator=generator))
        self.reg = torch.nn.Parameter(torch.randn(dim, 2, generator=generator))

    def forward(self, x, mask):
        levels = [(x, mask), (torch.nn.functional.avg_pool1d(x, 2), mask[:, :, ::2])]
        return SimpleNamespace(
            cls_logits=[level.transpose(1, 2) @ self.cls for level, _ in levels],
            offsets=[torch.nn.functional.softplus(level.transpose(1, 2) @ self.reg) * 3 for level, _ in levels],
            masks=[level_mask[:, 0] for _, level_mask in levels],
            strides=[1, 2],
        )


@pytest.mark.parametrize("voting", [0.0, 0.5])
@pytest.mark.parametrize("method", ["soft", "hard"])
def test_detect_video_is_decode_then_nms_then_voting_then_records(method, voting):
    features = np.random.default_rng(1).normal(size=(37, 5)).astype(np.float32)  # odd: one padded step
    network = TwoLevelNetwork(5)
    # a threshold above every score: the cap is the cap (a hard set past it is kept: test_the_cap_never_cuts_...)
    post = PostprocessConfig(nms=method, pre_nms_thresh=0.05, max_detections=40, score_threshold=1.0, voting=voting)
    detections = detect_video(network, features, GRID, post, CLASSES, "v")

    with torch.inference_mode():
        x = torch.zeros(1, 5, 38)
        x[0, :, :37] = torch.from_numpy(features.T)
        mask = torch.arange(38)[None, None] < 37
        out = network(x, mask)
        raw = decode_video([c[0] for c in out.cls_logits], [o[0] for o in out.offsets], [m[0] for m in out.masks],
                           out.strides, post)
        segments, scores, labels = nms_reference(raw.segments, raw.scores, raw.labels, post)
        if voting:
            unvoted = segments
            segments = vote_boundaries_reference(segments, labels, raw.segments, raw.scores, raw.labels, voting)
            assert not torch.equal(segments, unvoted)  # the voting moves ends here
    expected = to_detections(segments.numpy(), scores.numpy(), labels.numpy(), GRID, CLASSES, "v",
                             GRID.covered_seconds(37))
    assert len(expected) > 5
    assert detections == expected or voting  # the voting's sums are in another order than the plain loop's
    assert [(d.label, d.score) for d in detections] == [(d.label, d.score) for d in expected]
    np.testing.assert_allclose([(d.start, d.end) for d in detections], [(d.start, d.end) for d in expected],
                               rtol=0, atol=1e-6)


def test_shifted_passes_fuse_the_detections_of_the_shifted_features_moved_back_onto_the_video():
    from dataclasses import replace

    from mgrec.postprocess.detection_fusion import fuse_detections

    features = np.random.default_rng(2).normal(size=(41, 5)).astype(np.float32)
    network = TwoLevelNetwork(5)
    one = PostprocessConfig(pre_nms_thresh=0.05, max_detections=30, score_threshold=1.0)
    fused = detect_video(network, features, GRID, replace(one, shifted_passes=3), CLASSES, "v")

    passes = [detect_video(network, features, GRID, one, CLASSES, "v")]
    for shift in (1, 2):  # a detection of features[shift:] starts `shift` steps (4 frames each) later
        frames = shift * GRID.stride
        passes.append([replace(d, start=d.start + frames / GRID.fps, end=d.end + frames / GRID.fps,
                               start_frame=d.start_frame + frames, end_frame=d.end_frame + frames)
                       for d in detect_video(network, features[shift:], GRID, one, CLASSES, "v")])
    assert fused == fuse_detections(passes)[:30]
    assert len(fused) == 30 and fused != passes[0]
    assert all(0 <= d.start < d.end <= GRID.covered_seconds(41) for d in fused)
    # one pass per step at most: a 2-step video makes 2 passes, not 3
    short = features[:2]
    assert detect_video(network, short, GRID, replace(one, shifted_passes=3), CLASSES, "v") == detect_video(
        network, short, GRID, replace(one, shifted_passes=2), CLASSES, "v")


def test_a_network_in_training_mode_detects_in_eval_mode_and_keeps_its_mode():
    """A user's own loop validating its model hands it over in training mode: dropout must not make the detections
    random, and the network must come back in the mode it was handed over in."""

    class WithDropout(TwoLevelNetwork):
        def forward(self, x, mask):
            return super().forward(torch.nn.functional.dropout(x, 0.5, self.training), mask)

    features = np.random.default_rng(2).normal(size=(40, 5)).astype(np.float32)
    post = PostprocessConfig(pre_nms_thresh=0.05, max_detections=40)
    network = WithDropout(5).eval()
    expected = detect_video(network, features, GRID, post, CLASSES, "v")
    network.train()
    assert [detect_video(network, features, GRID, post, CLASSES, "v") for _ in range(2)] == [expected, expected]
    assert network.training


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_the_cap_never_cuts_the_hard_set(kind):
    # a long recording holds more gestures than postprocess.max_detections: the ranked list was cut there, and with
    # it the hard set (488 of a 77-minute recording's 1280 detections at the demo's cap of 500), without a word
    from mgrec.postprocess.nms import nms
    from mgrec.postprocess.video import nms_within_the_cap, within_the_cap

    rng = np.random.default_rng(0)
    starts = np.arange(40, dtype=np.float64) * 10.0  # 40 gestures apart from one another, 25 of them above 0.5
    segments = torch.tensor(np.stack([starts, starts + 2.0], axis=1))
    scores = torch.tensor(np.r_[rng.uniform(0.6, 0.9, 25), rng.uniform(0.05, 0.4, 15)])
    labels = torch.tensor(rng.integers(0, 3, 40))
    post = PostprocessConfig(nms=kind, max_detections=10, score_threshold=0.5, min_score=0.001)
    kept = nms_within_the_cap(segments, scores, labels, post)
    assert len(kept[1]) == 25 and bool((kept[1] >= 0.5).all())  # every one of the hard set, none below past the cap
    everything = nms(segments, scores, labels, PostprocessConfig(nms=kind, max_detections=100, min_score=0.001))
    assert all(torch.equal(a, b[:25]) for a, b in zip(kept, everything))  # the ranked list of a cap large enough
    few = PostprocessConfig(nms=kind, max_detections=30, score_threshold=0.5, min_score=0.001)
    assert len(nms_within_the_cap(segments, scores, labels, few)[1]) == 30  # under the cap: the cap, as before
    per_class = PostprocessConfig(nms=kind, max_detections=10, score_threshold=0.95, class_thresholds=[0.5, 0.95, 0.95])
    by_class = nms_within_the_cap(segments, scores, labels, per_class)
    last = max(i for i, (s, c) in enumerate(zip(by_class[1], by_class[2])) if s >= per_class.class_thresholds[c])
    assert len(by_class[1]) == last + 1 == 24  # to the last of the hard set (of class 0 at 0.5, the others at 0.95)
    ranked = to_detections(kept[0].numpy(), kept[1].numpy(), kept[2].numpy(), GRID, CLASSES, "v", 500.0)
    assert within_the_cap(ranked, replace_cap(post, 5)) == ranked and len(within_the_cap(ranked, replace_cap(
        post, 5, threshold=0.85))) == max(5, sum(d.score >= 0.85 for d in ranked))


def replace_cap(post, cap, threshold=None):
    from dataclasses import replace

    return replace(post, max_detections=cap, score_threshold=post.score_threshold if threshold is None else threshold)


@pytest.mark.parametrize("kind", ["soft", "hard"])
def test_the_cap_is_lifted_by_the_hard_set_alone_not_by_a_class_never_detected(kind):
    # per-class thresholds: the list went on past the cap down to the lowest bar of any class, also one of a class the
    # video never shows (a bar of 0: every candidate of every class kept, 40 for a cap of 10), and down to the global
    # score threshold, which a per-class hard set does not read; now it goes on to the last detection of the hard set
    from dataclasses import replace

    from mgrec.evaluate.f1 import hard_set
    from mgrec.postprocess.video import nms_within_the_cap, within_the_cap

    rng = np.random.default_rng(0)
    starts = np.arange(40, dtype=np.float64) * 10.0  # 40 gestures apart from one another, of classes 0 and 1 only
    segments = torch.tensor(np.stack([starts, starts + 2.0], axis=1))
    scores = torch.tensor(rng.permutation(np.r_[rng.uniform(0.6, 0.9, 25), rng.uniform(0.05, 0.4, 15)]))
    labels = torch.tensor(rng.integers(0, 2, 40))
    for bars, threshold in (([0.5, 0.5, 0.0], 0.5), ([0.7, 0.8, 0.8], 0.1), ([0.5, 0.95, 0.95], 0.95)):
        post = PostprocessConfig(nms=kind, max_detections=10, score_threshold=threshold, class_thresholds=bars,
                                 min_score=0.001)
        kept = nms_within_the_cap(segments, scores, labels, post)
        ranked = to_detections(kept[0].numpy(), kept[1].numpy(), kept[2].numpy(), GRID, CLASSES, "v", 500.0)
        inside = [i for i, d in enumerate(ranked) if d.score >= bars[d.label_id]]
        assert len(ranked) == max(10, inside[-1] + 1), bars  # to the hard set's last, or the cap
        assert len(hard_set(ranked, threshold, bars)) == sum(
            float(s) >= bars[int(c)] for s, c in zip(scores, labels))  # none of the hard set cut
        tail = [replace(ranked[-1], score=0.0)] * 5  # below every bar of its class
        assert within_the_cap(ranked + tail, post) == ranked  # the fused list's cut alike
