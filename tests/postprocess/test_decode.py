"""Decoding per-level outputs into candidate segments, against the library's per-point loop
(`decode_reference`) and hand cases."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mgrec.config import PostprocessConfig
from mgrec.postprocess.decode import decode_video
from mgrec.postprocess.reference import decode_reference


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
    reference = decode_reference(*outputs, cfg)
    assert detections.labels.tolist() == reference.labels.tolist()
    assert detections.segments.flatten().tolist() == pytest.approx(reference.segments.flatten().tolist(), abs=1e-12)
    assert detections.scores.tolist() == pytest.approx(reference.scores.tolist(), rel=1e-12)
    assert detections.segments.shape == (len(reference), 2) and detections.labels.dtype == torch.long


def one_level(logits, offsets, mask=None):
    logits = torch.tensor(logits, dtype=torch.float32)
    mask = torch.ones(len(logits), dtype=torch.bool) if mask is None else torch.tensor(mask)
    return [logits], [torch.tensor(offsets, dtype=torch.float32)], [mask]


BOTH = pytest.mark.parametrize("decode", [decode_video, decode_reference], ids=["decode_video", "reference"])


@BOTH
def test_offsets_are_in_units_of_the_level_stride(decode):
    # Level of stride 4, point t=3 sits at 12 on the level-0 grid; (1, 2) strides -> [8, 20].
    logits = [[-20.0], [-20.0], [-20.0], [3.0]]
    offsets = [[0.0, 0.0]] * 3 + [[1.0, 2.0]]
    cls_logits, level_offsets, masks = one_level(logits, offsets)
    detections = decode(cls_logits, level_offsets, masks, [4], PostprocessConfig())
    assert detections.segments.tolist() == [[8.0, 20.0]]
    assert detections.scores.tolist() == pytest.approx([1 / (1 + math.exp(-3.0))])
    assert detections.labels.tolist() == [0]


@BOTH
def test_masked_points_are_never_decoded(decode):
    cls_logits, offsets, masks = one_level([[5.0, 5.0], [5.0, 5.0]], [[1.0, 1.0], [1.0, 1.0]], mask=[True, False])
    detections = decode(cls_logits, offsets, masks, [1], PostprocessConfig())
    assert detections.segments.tolist() == [[-1.0, 1.0], [-1.0, 1.0]]
    assert detections.labels.tolist() == [0, 1]


@BOTH
def test_topk_is_per_level_and_short_segments_are_dropped(decode):
    level0 = one_level([[1.0], [3.0], [2.0]], [[1.0, 1.0], [1.0, 1.0], [0.01, 0.02]])
    level1 = one_level([[0.5], [4.0]], [[1.0, 1.0], [1.0, 1.0]])
    cfg = PostprocessConfig(pre_nms_topk=2, min_duration=0.05)
    detections = decode(*[a + b for a, b in zip(level0, level1)], [1, 2], cfg)
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
    reference = decode_reference(logits, offsets, masks, [2], cfg)
    assert detections.labels.tolist() == reference.labels.tolist()
    assert detections.segments.flatten().tolist() == pytest.approx(reference.segments.flatten().tolist())
    assert detections.scores.tolist() == pytest.approx(reference.scores.tolist())


def test_bf16_outputs_are_decoded_in_float32():
    cls_logits, offsets, masks = one_level([[2.0]], [[1.0, 1.0]])
    detections = decode_video([cls_logits[0].bfloat16()], [offsets[0].bfloat16()], masks, [1], PostprocessConfig())
    assert detections.scores.dtype == torch.float32 and detections.segments.dtype == torch.float32


def test_mismatched_level_counts_are_an_error():
    cls_logits, offsets, masks = one_level([[2.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="per pyramid level"):
        decode_video(cls_logits, offsets, masks, [1, 2], PostprocessConfig())


def test_the_reference_scores_extreme_logits_without_overflow():
    # exp(1000) overflows a float: the reference's sigmoid must still give 0 and 1.
    cls_logits, offsets, masks = one_level([[-1000.0, 1000.0]], [[1.0, 1.0]])
    reference = decode_reference(cls_logits, offsets, masks, [1], PostprocessConfig(pre_nms_thresh=0.0))
    assert reference.labels.tolist() == [1] and reference.scores.tolist() == [1.0]
