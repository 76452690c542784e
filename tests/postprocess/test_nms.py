"""Class-wise hard NMS and Gaussian Soft-NMS: the fast `nms` against the library's plain loop
(`nms_reference`), bit for bit, and both against hand cases."""

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mgrec.postprocess.nms as nms_module
from mgrec.config import PostprocessConfig
from mgrec.postprocess.nms import nms, segment_iou, vote_boundaries
from mgrec.postprocess.reference import nms_reference, vote_boundaries_reference

# The hand cases below pin the semantics of both the fast form and the reference loop.
BOTH = pytest.mark.parametrize("run_nms", [nms, nms_reference], ids=["nms", "reference"])


def as_tensors(segments, scores, labels):
    return (
        torch.tensor(segments, dtype=torch.float64).reshape(-1, 2),
        torch.tensor(scores, dtype=torch.float64),
        torch.tensor(labels, dtype=torch.long),
    )


# Small grids of values make exact ties, identical segments and touching segments common.
candidate = st.tuples(
    st.one_of(st.sampled_from([0.0, 1.0, 2.0, 5.0]), st.floats(0, 20)),  # start
    # lengths are 0 or at least 1e-6: decode drops shorter ones, and denormal floats break the float64 reference
    st.one_of(st.sampled_from([0.0, 1.0, 3.0]), st.floats(1e-6, 10)),  # length
    st.one_of(st.sampled_from([0.1, 0.5, 0.9]), st.floats(0, 1)),  # score
    st.integers(0, 2),  # label
)


def unpack(candidates):
    segments = [(start, start + length) for start, length, _, _ in candidates]
    scores = [score for _, _, score, _ in candidates]
    labels = [label for _, _, _, label in candidates]
    return segments, scores, labels


@settings(max_examples=150, deadline=None)
@given(
    candidates=st.lists(candidate, max_size=25),
    iou_threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9]),
    max_detections=st.integers(1, 30),
)
def test_hard_nms_equals_the_reference_loop(candidates, iou_threshold, max_detections):
    candidates = as_tensors(*unpack(candidates))
    cfg = PostprocessConfig(nms="hard", iou_threshold=iou_threshold, max_detections=max_detections)
    assert_identical(nms(*candidates, cfg), nms_reference(*candidates, cfg))


@settings(max_examples=150, deadline=None)
@given(
    candidates=st.lists(candidate, max_size=25),
    sigma=st.sampled_from([0.1, 0.5, 0.75]),
    min_score=st.sampled_from([0.0, 0.001, 0.2]),
    max_detections=st.integers(1, 30),
)
def test_soft_nms_equals_the_reference_loop(candidates, sigma, min_score, max_detections):
    candidates = as_tensors(*unpack(candidates))
    cfg = PostprocessConfig(nms="soft", sigma=sigma, min_score=min_score, max_detections=max_detections)
    assert_identical(nms(*candidates, cfg), nms_reference(*candidates, cfg))


@pytest.mark.parametrize("method", ["hard", "soft"])
@BOTH
def test_result_is_ranked_by_score(method, run_nms):
    generator = torch.Generator().manual_seed(0)
    starts = torch.rand(300, generator=generator) * 100
    segments = torch.stack([starts, starts + torch.rand(300, generator=generator) * 20], 1)
    scores = torch.rand(300, generator=generator)
    labels = torch.randint(0, 4, (300,), generator=generator)
    _, kept_scores, _ = run_nms(segments, scores, labels, PostprocessConfig(nms=method))
    assert len(kept_scores) > 10
    assert torch.all(kept_scores[:-1] >= kept_scores[1:])


@BOTH
def test_hard_nms_keeps_one_of_two_overlapping_same_class_segments(run_nms):
    segments, scores, labels = as_tensors([(0, 10), (1, 11)], [0.6, 0.9], [3, 3])
    kept_segments, kept_scores, kept_labels = run_nms(segments, scores, labels, PostprocessConfig(nms="hard"))
    assert kept_segments.tolist() == [[1, 11]]
    assert kept_scores.tolist() == [0.9]
    assert kept_labels.tolist() == [3]


@pytest.mark.parametrize("method", ["hard", "soft"])
@BOTH
def test_different_classes_never_suppress_each_other(method, run_nms):
    segments, scores, labels = as_tensors([(0, 10), (0, 10)], [0.9, 0.8], [0, 1])
    _, kept_scores, kept_labels = run_nms(segments, scores, labels, PostprocessConfig(nms=method))
    assert kept_scores.tolist() == [0.9, 0.8]  # soft-NMS did not decay the other class either
    assert kept_labels.tolist() == [0, 1]


@pytest.mark.parametrize("method", ["hard", "soft"])
@BOTH
def test_touching_same_class_segments_are_both_kept_unchanged(method, run_nms):
    cfg = PostprocessConfig(nms=method, iou_threshold=0.0)
    segments, scores, labels = as_tensors([(0, 5), (5, 9)], [0.7, 0.8], [2, 2])
    kept_segments, kept_scores, _ = run_nms(segments, scores, labels, cfg)
    assert kept_segments.tolist() == [[5, 9], [0, 5]]
    assert kept_scores.tolist() == [0.8, 0.7]


@BOTH
def test_soft_nms_gaussian_decay_hand_value(run_nms):
    # IoU([0, 10], [5, 15]) = 5 / 15; the lower one is multiplied by exp(-(1/3)^2 / 0.5) = exp(-2/9).
    segments, scores, labels = as_tensors([(0, 10), (5, 15)], [0.9, 0.8], [1, 1])
    _, kept_scores, _ = run_nms(segments, scores, labels, PostprocessConfig(nms="soft", sigma=0.5))
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8 * math.exp(-2 / 9)])


@BOTH
def test_soft_nms_drops_scores_decayed_below_min_score(run_nms):
    # Identical segments: the second decays to 0.5 * exp(-1 / 0.1) = 2.3e-5 < 0.001.
    segments, scores, labels = as_tensors([(0, 4), (0, 4), (10, 12)], [0.6, 0.5, 0.0005], [0, 0, 0])
    cfg = PostprocessConfig(nms="soft", sigma=0.1, min_score=0.001)
    kept_segments, kept_scores, _ = run_nms(segments, scores, labels, cfg)
    assert kept_segments.tolist() == [[0, 4]]  # the third starts below min_score
    assert kept_scores.tolist() == [0.6]


@pytest.mark.parametrize("method", ["hard", "soft"])
@BOTH
def test_max_detections_keeps_the_highest(method, run_nms):
    segments, scores, labels = as_tensors([(0, 1), (2, 3), (4, 5), (6, 7)], [0.2, 0.9, 0.5, 0.7], [0, 1, 0, 1])
    _, kept_scores, _ = run_nms(segments, scores, labels, PostprocessConfig(nms=method, max_detections=2))
    assert kept_scores.tolist() == [0.9, 0.7]


@pytest.mark.parametrize("method", ["hard", "soft"])
@BOTH
def test_empty_input_gives_empty_output(method, run_nms):
    segments, scores, labels = as_tensors([], [], [])
    kept_segments, kept_scores, kept_labels = run_nms(segments, scores, labels, PostprocessConfig(nms=method))
    assert kept_segments.shape == (0, 2) and kept_scores.shape == (0,) and kept_labels.shape == (0,)


def test_float32_input_keeps_its_dtype():
    segments = torch.tensor([[0.0, 2.0], [1.0, 3.0]])
    scores, labels = torch.tensor([0.5, 0.4]), torch.tensor([0, 0])
    kept_segments, kept_scores, kept_labels = nms(segments, scores, labels, PostprocessConfig())
    assert kept_segments.dtype == kept_scores.dtype == torch.float32 and kept_labels.dtype == torch.long


def test_nan_scores_are_an_error():
    segments, _, labels = as_tensors([(0, 1)], [0.0], [0])
    with pytest.raises(ValueError, match="NaN"):
        nms(segments, torch.tensor([float("nan")], dtype=torch.float64), labels, PostprocessConfig())


def test_segment_iou_hand_values():
    others = np.array([[0.0, 10.0], [5.0, 15.0], [10.0, 20.0], [2.0, 4.0], [3.0, 3.0], [-5.0, 30.0]], dtype=np.float32)
    iou = segment_iou(0.0, 10.0, others[:, 0], others[:, 1])
    assert iou.tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.2, 0.0, 10 / 35])
    # Zero-length against zero-length: empty union, no overlap (not NaN).
    assert segment_iou(3.0, 3.0, np.array([3.0]), np.array([3.0])).tolist() == [0.0]
    # One segment per row against a block of segments.
    block = segment_iou(np.array([[0.0], [5.0]]), np.array([[10.0], [15.0]]), others[None, :2, 0], others[None, :2, 1])
    assert block.flatten().tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1.0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["hard", "soft"])
def test_cuda_matches_cpu(method):
    generator = torch.Generator().manual_seed(1)
    starts = torch.rand(2000, generator=generator, dtype=torch.float64) * 500
    segments = torch.stack([starts, starts + torch.rand(2000, generator=generator, dtype=torch.float64) * 30], 1)
    scores = torch.rand(2000, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 5, (2000,), generator=generator)
    cfg = PostprocessConfig(nms=method)
    on_cpu = nms(segments, scores, labels, cfg)
    on_gpu = nms(segments.cuda(), scores.cuda(), labels.cuda(), cfg)
    for expected, actual in zip(on_cpu, on_gpu):
        assert actual.is_cuda
        torch.testing.assert_close(actual.cpu(), expected)


# ---- exactly the plain greedy loop ---------------------------------------------------------------
# `nms` advances all classes at once on numpy arrays, updates only the window of candidates that can
# overlap a pick, and makes several picks of a class in one round when their windows are apart;
# `nms_reference` is the straightforward loop (one pick at a time over all candidates). The results
# must be identical, bit for bit: same kept candidates, scores, labels and order. Classes get windows
# only above nms.SMALL_CLASS candidates; `windows_for_every_class` lowers that bound so that small
# inputs take the windowed path too.


@contextlib.contextmanager
def windows_for_every_class():
    saved = nms_module.SMALL_CLASS
    nms_module.SMALL_CLASS = 0
    try:
        yield
    finally:
        nms_module.SMALL_CLASS = saved


def random_candidates(seed, n, num_classes, dtype, ties):
    generator = torch.Generator().manual_seed(seed)
    if ties:  # small integer grids: equal scores, identical and touching segments
        starts = torch.randint(0, 30, (n,), generator=generator).to(dtype)
        lengths = torch.randint(0, 5, (n,), generator=generator).to(dtype)
        scores = torch.randint(0, 8, (n,), generator=generator).to(dtype) / 8
    else:
        starts = torch.rand(n, generator=generator, dtype=dtype) * 300
        lengths = torch.rand(n, generator=generator, dtype=dtype) * 40
        scores = torch.rand(n, generator=generator, dtype=dtype)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return torch.stack([starts, starts + lengths], 1), scores, labels


def assert_identical(actual, expected):
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert torch.equal(a, e)


@pytest.mark.parametrize("windows", ["large classes", "every class"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["soft", "hard"])
@pytest.mark.parametrize("seed", range(12))
def test_equals_the_plain_greedy_loop_bit_for_bit(seed, method, dtype, windows, monkeypatch):
    if windows == "every class":
        monkeypatch.setattr(nms_module, "SMALL_CLASS", 0)
    ties = seed % 2 == 0
    candidates = random_candidates(seed, n=40 + 30 * seed, num_classes=1 + seed % 5, dtype=dtype, ties=ties)
    cfg = PostprocessConfig(
        nms=method,
        sigma=[0.5, 0.1, 0.75][seed % 3],
        iou_threshold=[0.5, 0.0, 0.3, 1.0][seed % 4],
        min_score=[0.001, 0.0, 0.3][seed % 3],
        max_detections=[10_000, 7, 60][seed % 3],  # no cut-off, and cut-offs inside the ranking
    )
    assert_identical(nms(*candidates, cfg), nms_reference(*candidates, cfg))


@pytest.mark.parametrize("method", ["soft", "hard"])
def test_equals_the_plain_greedy_loop_at_detector_scale(method):
    # As many candidates and classes as a detector output, cut at max_detections.
    candidates = random_candidates(0, n=3000, num_classes=17, dtype=torch.float32, ties=False)
    cfg = PostprocessConfig(nms=method, sigma=0.5, max_detections=500)
    result = nms(*candidates, cfg)
    assert len(result[1]) == 500
    assert_identical(result, nms_reference(*candidates, cfg))


def test_one_large_class_among_many_small_ones_stays_exact_with_bounded_blocks(monkeypatch):
    # Classes are padded to a common length in blocks; a class with many candidates must not pad
    # hundreds of small classes to its size (memory would grow as classes x candidates).
    generator = torch.Generator().manual_seed(3)
    n_large, n_small = 4000, 400
    starts = torch.rand(n_large + n_small, generator=generator) * 1000
    segments = torch.stack([starts, starts + torch.rand(n_large + n_small, generator=generator) * 20], 1)
    scores = torch.rand(n_large + n_small, generator=generator)
    labels = torch.cat([torch.zeros(n_large, dtype=torch.long), torch.arange(1, n_small + 1)])
    block_sizes = []
    original = nms_module._ClassBlock

    def recording(*args):
        block = original(*args)
        block_sizes.append(block.current.size)
        return block

    monkeypatch.setattr(nms_module, "_ClassBlock", recording)
    cfg = PostprocessConfig(nms="soft", max_detections=300)
    assert_identical(nms(segments, scores, labels, cfg), nms_reference(segments, scores, labels, cfg))
    assert max(block_sizes) <= 2 * (n_large + n_small)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32_and_keeps_its_dtype(dtype):
    segments, scores, labels = random_candidates(5, n=200, num_classes=3, dtype=torch.float32, ties=False)
    segments, scores = segments.to(dtype), scores.to(dtype)
    kept_segments, kept_scores, kept_labels = nms(segments, scores, labels, PostprocessConfig())
    expected = nms_reference(segments.float(), scores.float(), labels, PostprocessConfig())
    assert kept_segments.dtype == kept_scores.dtype == dtype
    assert torch.equal(kept_segments.float(), expected[0]) and torch.equal(kept_labels, expected[2])
    assert torch.equal(kept_scores, expected[1].to(dtype))


@BOTH
def test_soft_nms_with_a_tiny_sigma_never_returns_nan(run_nms):
    # exp(-1 / 0.001) underflows to 0: a kept candidate (-inf) times 0 must not come back as NaN.
    segments, scores, labels = as_tensors([(0, 4), (0, 4), (0, 4)], [0.9, 0.8, 0.7], [0, 0, 0])
    cfg = PostprocessConfig(nms="soft", sigma=0.001, min_score=0.0)
    _, kept_scores, _ = run_nms(segments.float(), scores.float(), labels, cfg)
    assert kept_scores.tolist() == [pytest.approx(0.9), 0.0, 0.0]


def test_infinite_scores_are_an_error():
    segments, _, labels = as_tensors([(0, 1)], [0.0], [0])
    with pytest.raises(ValueError, match="infinity"):
        nms(segments, torch.tensor([math.inf], dtype=torch.float64), labels, PostprocessConfig())


def test_negative_scores_are_dropped_by_soft_nms_and_refused_below_a_negative_min_score():
    segments, scores, labels = as_tensors([(0, 4), (10, 12)], [0.5, -0.2], [0, 0])
    assert nms(segments, scores, labels, PostprocessConfig(nms="soft", min_score=0.0))[1].tolist() == [0.5]
    assert nms(segments, scores, labels, PostprocessConfig(nms="hard"))[1].tolist() == [0.5, -0.2]
    with pytest.raises(ValueError, match="negative scores"):
        nms(segments, scores, labels, PostprocessConfig(nms="soft", min_score=-1.0))


def test_min_score_is_compared_in_float64():
    # float32(0.9) < 0.9: a float32 comparison (0.9 rounded to float32) would keep it.
    segments = torch.tensor([[0.0, 1.0], [5.0, 6.0]])
    scores, labels = torch.tensor([0.95, 0.9]), torch.tensor([0, 0])
    _, kept_scores, _ = nms(segments, scores, labels, PostprocessConfig(nms="soft", min_score=0.9))
    assert kept_scores.tolist() == [pytest.approx(0.95)]


# ---- windows and several picks a round (large classes) -------------------------------------------


def one_class(starts, lengths, scores, dtype=torch.float64):
    starts = torch.as_tensor(starts, dtype=dtype)
    segments = torch.stack([starts, starts + torch.as_tensor(lengths, dtype=dtype)], 1)
    return segments, torch.as_tensor(scores, dtype=dtype), torch.zeros(len(starts), dtype=torch.long)


def soft_and_hard(**settings):
    return [PostprocessConfig(nms="soft", **settings), PostprocessConfig(nms="hard", iou_threshold=0.0, **settings)]


@settings(max_examples=150, deadline=None)
@given(
    candidates=st.lists(candidate, max_size=40),
    method=st.sampled_from(["soft", "hard"]),
    iou_threshold=st.sampled_from([0.0, 0.3, 0.9]),
    sigma=st.sampled_from([0.1, 0.5]),
    max_detections=st.integers(1, 45),
)
def test_windowed_path_equals_the_plain_loop_on_small_grids(candidates, method, iou_threshold, sigma, max_detections):
    # Grids of values: equal scores, identical, touching, nested and zero-length segments.
    segments, scores, labels = as_tensors(*unpack(candidates))
    cfg = PostprocessConfig(
        nms=method, iou_threshold=iou_threshold, sigma=sigma, min_score=0.0, max_detections=max_detections
    )
    with windows_for_every_class():
        actual = nms(segments, scores, labels, cfg)
    assert_identical(actual, nms_reference(segments, scores, labels, cfg))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", soft_and_hard(sigma=0.5, min_score=0.0), ids=["soft", "hard"])
def test_a_long_segment_is_reached_by_picks_far_from_its_start(cfg, dtype):
    # 400 short disjoint segments from 100 on with higher scores, and long ones starting before them
    # with lower scores: every pick inside a long segment must decay it (soft) or remove it (hard),
    # though no segment that starts near the pick is long. The window's reach is the longest so far.
    generator = torch.Generator().manual_seed(7)
    n = 400
    starts = torch.cat([100 + torch.arange(n) * 3.0, torch.tensor([0.5, 10.0, 600.0])])
    lengths = torch.cat([torch.ones(n), torch.tensor([1190.0, 400.0, 20.0])])
    scores = torch.cat([0.5 + 0.5 * torch.rand(n, generator=generator), torch.tensor([0.4, 0.45, 0.3])])
    segments, scores, labels = one_class(starts, lengths, scores, dtype)
    result = nms(segments, scores, labels, cfg)
    assert_identical(result, nms_reference(segments, scores, labels, cfg))
    kept = dict(zip(map(tuple, result[0].tolist()), result[1].tolist()))
    if cfg.nms == "soft":  # decayed by every short segment inside it, a little each time
        assert kept[(0.5, 1190.5)] < 0.4
    else:
        assert (0.5, 1190.5) not in kept and (10.0, 410.0) not in kept


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", soft_and_hard(sigma=0.5, min_score=0.0), ids=["soft", "hard"])
@pytest.mark.parametrize("seed", range(4))
def test_large_class_of_long_and_short_segments_equals_the_plain_loop(seed, cfg, dtype):
    generator = torch.Generator().manual_seed(seed)
    n = 700
    starts = torch.rand(n, generator=generator) * 1000
    long = torch.rand(n, generator=generator) < 0.05
    lengths = torch.where(long, 100 + torch.rand(n, generator=generator) * 400, torch.rand(n, generator=generator) * 5)
    segments, scores, labels = one_class(starts, lengths, torch.rand(n, generator=generator), dtype)
    assert_identical(nms(segments, scores, labels, cfg), nms_reference(segments, scores, labels, cfg))


@pytest.mark.parametrize("cfg", soft_and_hard(sigma=0.5, min_score=0.0), ids=["soft", "hard"])
@pytest.mark.parametrize("seed", range(4))
def test_large_classes_with_ties_and_zero_length_segments_equal_the_plain_loop(seed, cfg):
    # Small integer grids: many equal scores among overlapping and non-overlapping candidates (the
    # earliest input position must win), identical, touching and zero-length segments (these never
    # overlap anything: IoU 0, also with an identical zero-length one).
    generator = torch.Generator().manual_seed(seed)
    n = 900
    starts = torch.randint(0, 150, (n,), generator=generator).double()
    lengths = torch.randint(0, 6, (n,), generator=generator).double() * (torch.rand(n, generator=generator) < 0.7)
    scores = torch.randint(1, 9, (n,), generator=generator).double() / 8
    labels = torch.randint(0, 2, (n,), generator=generator)
    segments = torch.stack([starts, starts + lengths], 1)
    assert (lengths == 0).sum() > n // 4 and (labels == 0).sum() > nms_module.SMALL_CLASS
    assert_identical(nms(segments, scores, labels, cfg), nms_reference(segments, scores, labels, cfg))


@pytest.mark.parametrize("max_detections", [2000, 150])
@pytest.mark.parametrize("cfg", soft_and_hard(sigma=0.5, min_score=0.001), ids=["soft", "hard"])
def test_a_large_class_makes_several_picks_a_round(cfg, max_detections, monkeypatch):
    # What makes a class with many picks fast: most rounds pick several candidates whose windows are apart.
    generator = torch.Generator().manual_seed(5)
    n = 3000
    starts = torch.rand(n, generator=generator, dtype=torch.float64) * 3000
    segments, scores, labels = one_class(
        starts, torch.rand(n, generator=generator) * 20, torch.rand(n, generator=generator)
    )
    cfg = dataclasses.replace(cfg, max_detections=max_detections)
    rounds = []
    highest = nms_module._ClassBlock.highest

    def counting(block, batch):
        rounds.append(batch)
        return highest(block, batch)

    monkeypatch.setattr(nms_module._ClassBlock, "highest", counting)
    result = nms(segments, scores, labels, cfg)
    assert len(result[1]) >= min(max_detections, 300)
    assert len(rounds) < len(result[1]) / 4
    assert_identical(result, nms_reference(segments, scores, labels, cfg))


def test_invalid_sigma_and_iou_threshold_are_errors():
    segments, scores, labels = as_tensors([(0, 1)], [0.5], [0])
    for sigma in (0.0, -0.5, math.nan):
        with pytest.raises(ValueError, match="sigma"):
            nms(segments, scores, labels, PostprocessConfig(nms="soft", sigma=sigma))
    with pytest.raises(ValueError, match="iou_threshold"):
        nms(segments, scores, labels, PostprocessConfig(nms="hard", iou_threshold=-0.1))


# ---- boundary voting after NMS (`postprocess.voting`) -----------------------------------------------------------


def test_voting_hand_case_averages_the_ends_of_overlapping_same_class_candidates_by_score():
    # kept [10, 20] (0.9); [12, 22] (0.3) overlaps it by tIoU 8/12 = 0.67; [11, 19] (0.6) by 0.8; another class's
    # [10, 20] and the far [40, 50] never vote
    segments, scores, labels = as_tensors([(10, 20), (12, 22), (11, 19), (10, 20), (40, 50)],
                                          [0.9, 0.3, 0.6, 0.8, 0.7], [0, 0, 0, 1, 0])
    kept, kept_labels = segments[[0, 4]], labels[[0, 4]]
    for vote in (vote_boundaries, vote_boundaries_reference):
        at_06 = vote(kept, kept_labels, segments, scores, labels, 0.6)
        expected = [(0.9 * 10 + 0.3 * 12 + 0.6 * 11) / 1.8, (0.9 * 20 + 0.3 * 22 + 0.6 * 19) / 1.8]
        torch.testing.assert_close(at_06[0], torch.tensor(expected, dtype=torch.float64))
        at_07 = vote(kept, kept_labels, segments, scores, labels, 0.7)  # [12, 22] is out
        torch.testing.assert_close(at_07[0], torch.tensor([(0.9 * 10 + 0.6 * 11) / 1.5, (0.9 * 20 + 0.6 * 19) / 1.5],
                                                          dtype=torch.float64))
        assert torch.equal(at_06[1], segments[4])  # nothing else overlaps it: unchanged
        assert torch.equal(vote(kept, kept_labels, segments, scores, labels, 1.0), kept)  # only itself


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_voting_equals_the_plain_loop(seed, ties, threshold):
    segments, scores, labels = random_candidates(seed, 400, 3, torch.float32, ties)
    kept_segments, _, kept_labels = nms(segments, scores, labels, PostprocessConfig(max_detections=60))
    fast = vote_boundaries(kept_segments, kept_labels, segments, scores, labels, threshold)
    plain = vote_boundaries_reference(kept_segments, kept_labels, segments, scores, labels, threshold)
    assert fast.dtype == torch.float32 and fast.shape == kept_segments.shape
    torch.testing.assert_close(fast, plain, rtol=1e-6, atol=1e-5)
    assert not torch.equal(fast, kept_segments)  # the voting moved some ends


def test_voting_threshold_outside_zero_to_one_is_an_error():
    segments, scores, labels = as_tensors([(0, 1)], [0.5], [0])
    for threshold in (0.0, -0.5, 1.5, math.nan):
        with pytest.raises(ValueError, match="threshold must be in"):
            vote_boundaries(segments, labels, segments, scores, labels, threshold)
