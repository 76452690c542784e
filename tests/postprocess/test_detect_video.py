"""`detect_video`, the path detection and validation take: network, decoding, NMS, records."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import decode_video
from mgrec.postprocess.reference import nms_reference
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


@pytest.mark.parametrize("method", ["soft", "hard"])
def test_detect_video_is_decode_then_nms_then_records(method):
    features = np.random.default_rng(1).normal(size=(37, 5)).astype(np.float32)  # odd: one padded step
    network = TwoLevelNetwork(5)
    post = PostprocessConfig(nms=method, pre_nms_thresh=0.05, max_detections=40)
    detections = detect_video(network, features, GRID, post, CLASSES, "v")

    with torch.inference_mode():
        x = torch.zeros(1, 5, 38)
        x[0, :, :37] = torch.from_numpy(features.T)
        mask = torch.arange(38)[None, None] < 37
        out = network(x, mask)
        raw = decode_video([c[0] for c in out.cls_logits], [o[0] for o in out.offsets], [m[0] for m in out.masks],
                           out.strides, post)
        segments, scores, labels = nms_reference(raw.segments, raw.scores, raw.labels, post)
    expected = to_detections(segments.numpy(), scores.numpy(), labels.numpy(), GRID, CLASSES, "v",
                             GRID.covered_seconds(37))
    assert len(expected) > 5
    assert detections == expected


def test_shifted_passes_fuse_the_detections_of_the_shifted_features_moved_back_onto_the_video():
    from dataclasses import replace

    from mgrec.postprocess.detection_fusion import fuse_detections

    features = np.random.default_rng(2).normal(size=(41, 5)).astype(np.float32)
    network = TwoLevelNetwork(5)
    one = PostprocessConfig(pre_nms_thresh=0.05, max_detections=30)
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
