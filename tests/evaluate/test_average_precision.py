"""ActivityNet-style AP: hand-computed values and a brute-force reference."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgrec.errors import InputError
from mgrec.evaluate.average_precision import (
    DEFAULT_TIOU_THRESHOLDS,
    average_precision,
    interpolated_ap,
)
from mgrec.records import Detection, Segment

NAMES = ["a", "b", "c"]


def seg(video, start, end, label=0):
    return Segment(video, float(start), float(end), label, NAMES[label], start_frame=start, end_frame=end)


def det(video, start, end, label=0, score=0.5):
    return Detection(video, float(start), float(end), label, NAMES[label], score, start_frame=start, end_frame=end)


def test_perfect_predictions_give_map_one():
    gt = {"x": [seg("x", 0, 10, 0), seg("x", 20, 25, 1)], "y": [seg("y", 3, 9, 2)]}
    pred = {v: [det(v, g.start_frame, g.end_frame, g.label_id, 0.8) for g in items] for v, items in gt.items()}
    result = average_precision(gt, pred, 3)
    assert result.thresholds == DEFAULT_TIOU_THRESHOLDS
    np.testing.assert_array_equal(result.ap, np.ones((5, 3)))
    assert result.mAP == {t: 1.0 for t in DEFAULT_TIOU_THRESHOLDS} and result.average_mAP == 1.0


def test_false_positive_ranked_in_the_middle():
    gt = {"x": [seg("x", 0, 10), seg("x", 20, 30)]}
    pred = {"x": [det("x", 0, 10, score=0.9), det("x", 50, 60, score=0.8), det("x", 20, 30, score=0.7)]}
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> envelope 1, 2/3, 2/3 -> AP = 1/2 + 1/2 * 2/3.
    result = average_precision(gt, pred, 1)
    np.testing.assert_allclose(result.ap[:, 0], 5 / 6)
    assert result.average_mAP == pytest.approx(5 / 6)


def test_a_ground_truth_is_matched_once_so_a_duplicate_detection_is_a_false_positive():
    gt = {"x": [seg("x", 0, 10), seg("x", 20, 30)]}
    pred = {"x": [det("x", 0, 10, score=0.9), det("x", 1, 10, score=0.8), det("x", 20, 30, score=0.7)]}
    np.testing.assert_allclose(average_precision(gt, pred, 1).ap[:, 0], 5 / 6)


def test_threshold_uses_greater_or_equal():
    gt = {"x": [seg("x", 0, 10)]}
    pred = {"x": [det("x", 0, 5)]}  # tIoU exactly 0.5
    np.testing.assert_array_equal(average_precision(gt, pred, 1).ap[:, 0], [1, 1, 1, 0, 0])


def test_absent_classes():
    gt = {"x": [seg("x", 0, 10, 0), seg("x", 20, 30, 1)]}
    pred = {"x": [det("x", 0, 10, 0), det("x", 40, 50, 2)]}  # class 1 unpredicted, class 2 has no GT
    result = average_precision(gt, pred, 3)
    assert (result.ap[:, 0] == 1).all() and (result.ap[:, 1] == 0).all() and np.isnan(result.ap[:, 2]).all()
    assert result.mAP[0.5] == 0.5  # mean over classes 0 and 1 only


def test_duplicate_ground_truth_is_not_removed():
    gt = {"x": [seg("x", 0, 10), seg("x", 0, 10)]}
    pred = {"x": [det("x", 0, 10)]}
    np.testing.assert_allclose(average_precision(gt, pred, 1).ap[:, 0], 0.5)


def test_class_predicted_in_another_video_does_not_match():
    gt = {"x": [seg("x", 0, 10)], "y": []}
    pred = {"y": [det("y", 0, 10, score=0.9)], "x": [det("x", 0, 10, score=0.5)]}
    # The higher-scored prediction is in the wrong video: precision 1/2 at recall 1.
    np.testing.assert_allclose(average_precision(gt, pred, 1).ap[:, 0], 0.5)


def test_interpolated_ap_envelope():
    # recall 0.5 at precision 1, then recall 1.0 at precision 2/3: 0.5 * 1 + 0.5 * 2/3
    assert interpolated_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(5 / 6)
    assert interpolated_ap(np.array([0.0, 0.5]), np.array([0.0, 1.0])) == pytest.approx(0.5)
    assert interpolated_ap(np.zeros(0), np.zeros(0)) == 0.0  # no predictions


def test_label_id_out_of_range_is_an_error():
    with pytest.raises(InputError, match=r"gt \[.x.\] #0: expected a label_id >= 0 and < 2"):
        average_precision({"x": [seg("x", 0, 10, 2)]}, {}, 2)


# ------------------------------------------------------------------------------- brute force


def exact_tiou(a, b):
    intersection = max(0, min(a.end_frame, b.end_frame) - max(a.start_frame, b.start_frame))
    union = (a.end_frame - a.start_frame) + (b.end_frame - b.start_frame) - intersection
    return Fraction(intersection, union)


def brute_ap(gt, pred, num_classes, thresholds):
    """Explicit PR lists; AP = sum over recall steps of the best precision at that recall or beyond."""
    ap = np.full((len(thresholds), num_classes), np.nan)
    for label in range(num_classes):
        num_gt = sum(g.label_id == label for items in gt.values() for g in items)
        if num_gt == 0:
            continue
        ranked = sorted(
            [(v, p) for v, items in pred.items() for p in items if p.label_id == label], key=lambda vp: -vp[1].score
        )
        for t_index, t in enumerate(thresholds):
            t = Fraction(str(t))
            taken, tp, precisions, recalls = set(), 0, [], []
            for k, (video, p) in enumerate(ranked, start=1):
                best, best_tiou = None, Fraction(-1)
                for j, g in enumerate(gt.get(video, [])):
                    if g.label_id == label and (video, j) not in taken and exact_tiou(g, p) > best_tiou:
                        best, best_tiou = j, exact_tiou(g, p)
                if best is not None and best_tiou >= t:
                    taken.add((video, best))
                    tp += 1
                precisions.append(Fraction(tp, k))
                recalls.append(Fraction(tp, num_gt))
            total, previous_recall = Fraction(0), Fraction(0)
            for k, recall in enumerate(recalls):
                if recall > previous_recall:
                    total += (recall - previous_recall) * max(precisions[k:])
                    previous_recall = recall
            ap[t_index, label] = float(total)
    return ap


@st.composite
def scenes(draw):
    spans = st.tuples(st.integers(0, 30), st.integers(1, 12), st.integers(0, 2))
    scores = st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])
    gt, pred = {}, {}
    for v in range(draw(st.integers(1, 3))):
        video = f"v{v}"
        gt[video] = [seg(video, s, s + n, c) for s, n, c in draw(st.lists(spans, max_size=6))]
        pred[video] = [det(video, s, s + n, c, draw(scores)) for s, n, c in draw(st.lists(spans, max_size=8))]
    return gt, pred


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_matches_brute_force(scene):
    gt, pred = scene
    result = average_precision(gt, pred, 3)
    expected = brute_ap(gt, pred, 3, DEFAULT_TIOU_THRESHOLDS)
    np.testing.assert_allclose(result.ap, expected, rtol=0, atol=1e-12)
    for i, t in enumerate(DEFAULT_TIOU_THRESHOLDS):
        column = expected[i][~np.isnan(expected[i])]
        if column.size:
            assert result.mAP[t] == pytest.approx(column.mean(), abs=1e-12)
        else:
            assert math.isnan(result.mAP[t])


def test_thresholds_the_scores_would_name_alike_are_refused_and_a_repeat_counts_once():
    # `--tious 0.3,0.3000001,0.7`: the scores' `mAP` named both "0.3" and kept one, while average mAP was the mean
    # over all three (64.35 printed beside @0.3 66.54 and @0.7 59.97); `score(..., tiou_thresholds=[0.3, 0.3, 0.7])`
    # counted 0.3 twice in average mAP under one key
    from mgrec.errors import InputError
    from mgrec.evaluate.average_precision import parse_tious
    from mgrec.evaluate.scoring import score

    with pytest.raises(InputError, match=r"--tious 0.3,0.3000001,0.7: tIoU thresholds 0.3 and 0.3000001 are one "
                                         r"threshold in the scores, which name each by 6 significant digits \('0.3'\)"):
        parse_tious("0.3,0.3000001,0.7")
    assert parse_tious("0.3,0.3,0.7") == (0.3, 0.7)
    gt = {"v": [Segment("v", 0.0, 2.0, 0, "a"), Segment("v", 5.0, 6.0, 0, "a")]}
    ranked = {"v": [Detection("v", 0.0, 2.0, 0, "a", 0.9), Detection("v", 5.0, 5.6, 0, "a", 0.8)]}
    with pytest.raises(InputError, match=r"tIoU thresholds 0.5 and 0.5000001 are one threshold"):
        score(gt, ranked, ["a"], 0.5, tiou_thresholds=[0.5, 0.5000001])
    once = score(gt, ranked, ["a"], 0.5, tiou_thresholds=[0.3, 0.7])
    twice = score(gt, ranked, ["a"], 0.5, tiou_thresholds=[0.3, 0.3, 0.7])
    assert twice["mAP"] == once["mAP"] == {"0.3": 1.0, "0.7": 0.5}
    assert twice["average_mAP"] == once["average_mAP"] == pytest.approx(0.75)
