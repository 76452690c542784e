"""Decoding per-level outputs into candidate segments, against a per-point loop and hand cases."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import decode_video


def decode_py(cls_logits, offsets, masks, strides, cfg):
    """Reference: visit every (level, point, class) in order, one at a time."""
    segments, scores, labels = [], [], []
    for logits, level_offsets, mask, stride in zip(cls_logits, offsets, masks, strides):
        candidates = []
        for t, row in enumerate(logits.tolist()):
            for k, logit in enumerate(row):
                score = 1 / (1 + math.exp(-logit))
                if mask[t] and score > cfg.pre_nms_thresh:
                    candidates.append((score, t, k))
        candidates.sort(key=lambda c: -c[0])  # Python's sort is stable: (t, k) order among ties
        for score, t, k in candidates[: cfg.pre_nms_topk]:
            left, right = level_offsets[t].tolist()
            start, end = t * stride - left * stride, t * stride + right * stride
            if end - start > cfg.min_duration:
                segments.append((start, end))
                scores.append(score)
                labels.append(k)
    return segments, scores, labels


@st.composite
def pyramid_outputs(draw):
    num_levels = draw(st.integers(1, 3))
    num_classes = draw(st.integers(1, 3))
    base_length = draw(st.integers(1, 6)) * 2 ** (num_levels - 1)
    logit = st.one_of(st.sampled_from([-9.0, -1.0, 0.0, 2.0]), st.floats(-8, 8))
    offset = st.one_of(st.sampled_from([0.0, 0.01, 1.0]), st.floats(0, 10))
    cls_logits, offsets, masks = [], [], []
    for level in range(num_levels):
        length = base_length // 2**level
        cls_logits.append(torch.from_numpy(draw(hnp.arrays(np.float64, (length, num_classes), elements=logit))))
        offsets.append(torch.from_numpy(draw(hnp.arrays(np.float64, (length, 2), elements=offset))))
        masks.append(torch.from_numpy(draw(hnp.arrays(np.bool_, (length,)))))
    return cls_logits, offsets, masks, [2**level for level in range(num_levels)]


@settings(max_examples=150, deadline=None)
@given(
    outputs=pyramid_outputs(),
    pre_nms_thresh=st.sampled_from([0.001, 0.3, 0.5]),
    pre_nms_topk=st.integers(1, 12),
    min_duration=st.sampled_from([0.0, 0.05, 1.5]),
)
def test_decode_matches_per_point_loop(outputs, pre_nms_thresh, pre_nms_topk, min_duration):
    cfg = PostprocessConfig(pre_nms_thresh=pre_nms_thresh, pre_nms_topk=pre_nms_topk, min_duration=min_duration)
    detections = decode_video(*outputs, cfg)
    segments, scores, labels = decode_py(*outputs, cfg)
    assert detections.labels.tolist() == labels
    assert detections.segments.flatten().tolist() == pytest.approx([x for s in segments for x in s], abs=1e-12)
    assert detections.scores.tolist() == pytest.approx(scores, rel=1e-12)
    assert detections.segments.shape == (len(labels), 2) and detections.labels.dtype == torch.long


def one_level(logits, offsets, mask=None):
    logits = torch.tensor(logits, dtype=torch.float32)
    mask = torch.ones(len(logits), dtype=torch.bool) if mask is None else torch.tensor(mask)
    return [logits], [torch.tensor(offsets, dtype=torch.float32)], [mask]


def test_offsets_are_in_units_of_the_level_stride():
    # Level of stride 4, point t=3 sits at 12 on the level-0 grid; (1, 2) strides -> [8, 20].
    logits = [[-20.0], [-20.0], [-20.0], [3.0]]
    offsets = [[0.0, 0.0]] * 3 + [[1.0, 2.0]]
    cls_logits, level_offsets, masks = one_level(logits, offsets)
    detections = decode_video(cls_logits, level_offsets, masks, [4], PostprocessConfig())
    assert detections.segments.tolist() == [[8.0, 20.0]]
    assert detections.scores.tolist() == pytest.approx([1 / (1 + math.exp(-3.0))])
    assert detections.labels.tolist() == [0]


def test_masked_points_are_never_decoded():
    cls_logits, offsets, masks = one_level([[5.0, 5.0], [5.0, 5.0]], [[1.0, 1.0], [1.0, 1.0]], mask=[True, False])
    detections = decode_video(cls_logits, offsets, masks, [1], PostprocessConfig())
    assert detections.segments.tolist() == [[-1.0, 1.0], [-1.0, 1.0]]
    assert detections.labels.tolist() == [0, 1]


def test_topk_is_per_level_and_short_segments_are_dropped():
    level0 = one_level([[1.0], [3.0], [2.0]], [[1.0, 1.0], [1.0, 1.0], [0.01, 0.02]])
    level1 = one_level([[0.5], [4.0]], [[1.0, 1.0], [1.0, 1.0]])
    cfg = PostprocessConfig(pre_nms_topk=2, min_duration=0.05)
    detections = decode_video(*[a + b for a, b in zip(level0, level1)], [1, 2], cfg)
    # Level 0 keeps t=1 (3.0) and t=2 (2.0), then t=2 is only 0.03 long; level 1 keeps both points.
    assert detections.segments.tolist() == [[0.0, 2.0], [0.0, 4.0], [-2.0, 2.0]]


@pytest.mark.parametrize("topk", [1, 7, 60, 149, 150, 500])
def test_topk_with_many_ties_at_the_cut_keeps_the_earliest(topk):
    # Only the candidates scoring at least the k-th highest are sorted; ties at the cut must still
    # go to the earlier point, then the lower class, as a full stable sort would.
    generator = torch.Generator().manual_seed(0)
    logits = [torch.randint(0, 3, (50, 3), generator=generator).float()]
    offsets = [torch.rand(50, 2, generator=generator) * 3 + 1]
    masks = [torch.arange(50) % 7 != 3]
    cfg = PostprocessConfig(pre_nms_topk=topk)
    detections = decode_video(logits, offsets, masks, [2], cfg)
    segments, scores, labels = decode_py(logits, offsets, masks, [2], cfg)
    assert detections.labels.tolist() == labels
    assert detections.segments.flatten().tolist() == pytest.approx([x for s in segments for x in s])
    assert detections.scores.tolist() == pytest.approx(scores)


def test_bf16_outputs_are_decoded_in_float32():
    cls_logits, offsets, masks = one_level([[2.0]], [[1.0, 1.0]])
    detections = decode_video([cls_logits[0].bfloat16()], [offsets[0].bfloat16()], masks, [1], PostprocessConfig())
    assert detections.scores.dtype == torch.float32 and detections.segments.dtype == torch.float32


def test_mismatched_level_counts_are_an_error():
    cls_logits, offsets, masks = one_level([[2.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="per pyramid level"):
        decode_video(cls_logits, offsets, masks, [1, 2], PostprocessConfig())
