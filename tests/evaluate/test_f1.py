"""F1 rules: hand-computed cases, brute-force references and threshold tuning."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgrec.errors import InputError
from mgrec.evaluate.f1 import (
    F1Result,
    apply_score_threshold,
    f1_miga,
    f1_strict,
    hard_set,
    tune_class_thresholds,
    tune_score_threshold,
    tune_thresholds,
)
from mgrec.evaluate.matching import tiou
from mgrec.records import Detection, Segment

NAMES = ["a", "b", "c"]


def seg(video, start, end, label=0, fps=1.0):
    """Ground truth given in frames; seconds = frames / fps."""
    return Segment(video, start / fps, end / fps, label, NAMES[label], start_frame=start, end_frame=end)


def det(video, start, end, label=0, score=0.5, fps=1.0):
    return Detection(video, start / fps, end / fps, label, NAMES[label], score, start_frame=start, end_frame=end)


def kit_f1(correct, num_gt, num_pred):
    precision = correct / num_pred if num_pred else 0.0
    recall = correct / num_gt if num_gt else 0.0
    return 2 * precision * recall / (precision + recall + 1e-7)


# ------------------------------------------------------------------------------- hand cases


def test_one_prediction_finds_two_ground_truths_in_miga_but_one_in_strict():
    gt = {"v": [seg("v", 0, 10), seg("v", 5, 15)]}
    pred = {"v": [det("v", 2, 13)]}  # tIoU 8/13 with both
    miga = f1_miga(gt, pred)
    assert (miga.correct, miga.num_gt, miga.num_pred) == (2, 2, 1)
    assert miga.precision == 2.0 and miga.recall == 1.0
    strict = f1_strict(gt, pred)
    assert (strict.overall.correct, strict.overall.num_gt, strict.overall.num_pred) == (1, 2, 1)
    assert strict.overall.precision == 1.0 and strict.overall.recall == 0.5


def test_tiou_exactly_at_threshold_does_not_match():
    gt = {"v": [seg("v", 0, 10)]}
    assert f1_miga(gt, {"v": [det("v", 0, 3)]}).correct == 0  # tIoU = 0.3
    assert f1_strict(gt, {"v": [det("v", 0, 3)]}).overall.correct == 0
    assert f1_miga(gt, {"v": [det("v", 0, 3.001)]}).correct == 1
    assert f1_strict(gt, {"v": [det("v", 0, 3.001)]}).overall.correct == 1


def test_frame_exact_threshold_tie_survives_conversion_to_seconds():
    # At 28 fps, frames [2, 12] vs [2, 5] give 0.30000000000000004 in float seconds.
    start, end = 2 / 28, 12 / 28
    assert tiou(start, end, 2 / 28, 5 / 28) > 0.3
    gt = {"v": [seg("v", 2, 12, fps=28)]}
    pred = {"v": [det("v", 2, 5, fps=28)]}
    assert f1_miga(gt, pred).correct == 0
    assert f1_strict(gt, pred).overall.correct == 0


def test_class_mismatch_never_matches():
    gt = {"v": [seg("v", 0, 10, label=0)]}
    pred = {"v": [det("v", 0, 10, label=1, score=0.9)]}
    assert f1_miga(gt, pred).correct == 0
    strict = f1_strict(gt, pred)
    assert strict.overall.correct == 0 and strict.matches == []
    assert strict.per_class[0].num_gt == 1 and strict.per_class[1].num_pred == 1


def test_counts_are_pooled_over_videos_not_averaged():
    gt = {"x": [seg("x", 0, 10)], "y": [seg("y", 0, 10), seg("y", 20, 30), seg("y", 40, 50)]}
    pred = {"x": [det("x", 0, 10)], "y": [det("y", 60, 70)]}
    for result in (f1_miga(gt, pred), f1_strict(gt, pred).overall):
        assert (result.correct, result.num_gt, result.num_pred) == (1, 4, 2)
        # P = 1/2, R = 1/4; the mean of per-video F1s would be (1 + 0) / 2.
        assert result.f1 == pytest.approx(2 * 0.5 * 0.25 / (0.75 + 1e-7), abs=1e-12)


def test_f1_formula_and_empty_counts():
    result = F1Result.from_counts(3, 4, 6)
    assert result.f1 == kit_f1(3, 4, 6)
    assert F1Result.from_counts(0, 0, 0).f1 == 0.0
    assert F1Result.from_counts(0, 5, 0) == F1Result(0, 5, 0, 0.0, 0.0, 0.0)


def test_videos_only_in_predictions_are_false_positives():
    gt = {"x": [seg("x", 0, 10)]}
    pred = {"x": [det("x", 0, 10)], "other": [det("other", 0, 10)]}
    assert (f1_miga(gt, pred).num_pred, f1_strict(gt, pred).overall.num_pred) == (2, 2)


def test_strict_greedy_takes_highest_score_first_and_its_best_ground_truth():
    gt = {"v": [seg("v", 0, 10), seg("v", 4, 14)]}
    first = det("v", 3, 13, score=0.9)  # tIoU 7/13 with gt 0, 9/11 with gt 1
    second = det("v", 4, 15, score=0.5)  # tIoU 6/15 with gt 0, 10/11 with gt 1
    result = f1_strict(gt, {"v": [second, first]})
    # `first` takes gt 1 (its best); `second` falls back to gt 0 (6/15 > 0.3).
    assert [(m.pred_index, m.gt_index) for m in result.matches] == [(1, 1), (0, 0)]
    assert result.matches[0].tiou == pytest.approx(9 / 11)
    # Swap the scores: `second` now goes first, takes gt 1, and `first` gets gt 0 (7/13).
    swapped = f1_strict(gt, {"v": [det("v", 4, 15, score=0.9), det("v", 3, 13, score=0.5)]})
    assert [(m.pred_index, m.gt_index) for m in swapped.matches] == [(0, 1), (1, 0)]


def test_strict_per_class_counts():
    gt = {"v": [seg("v", 0, 10, 0), seg("v", 20, 30, 1), seg("v", 40, 50, 1)]}
    pred = {"v": [det("v", 0, 10, 0), det("v", 20, 30, 1), det("v", 60, 70, 2)]}
    per_class = f1_strict(gt, pred).per_class
    assert {k: (r.correct, r.num_gt, r.num_pred) for k, r in per_class.items()} == {
        0: (1, 1, 1), 1: (1, 2, 1), 2: (0, 0, 1)
    }


def test_hard_set_keeps_scores_at_or_above_the_threshold_in_order():
    detections = [det("x", 0, 1, score=0.3), det("x", 2, 3, score=0.9), det("x", 4, 5, score=0.1)]
    assert hard_set(detections, 0.3) == detections[:2]


def test_apply_score_threshold_keeps_videos_and_uses_greater_or_equal():
    pred = {"x": [det("x", 0, 1, score=0.5), det("x", 0, 1, score=0.4)], "y": [det("y", 0, 1, score=0.1)]}
    hard = apply_score_threshold(pred, 0.5)
    assert [d.score for d in hard["x"]] == [0.5] and hard["y"] == []


# ----------------------------------------------------------------------- brute-force references


@st.composite
def scenes(draw, fps_choices=(1.0,)):
    """Random small ground truth and predictions in integer frames, converted with a random fps."""
    fps = draw(st.sampled_from(fps_choices))
    spans = st.tuples(st.integers(0, 30), st.integers(1, 12), st.integers(0, 2))
    scores = st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])
    gt, pred = {}, {}
    for v in range(draw(st.integers(1, 3))):
        video = f"v{v}"
        gt[video] = [seg(video, s, s + n, c, fps) for s, n, c in draw(st.lists(spans, max_size=6))]
        pred[video] = [
            det(video, s, s + n, c, draw(scores), fps) for s, n, c in draw(st.lists(spans, max_size=7))
        ]
    return gt, pred


def exact_tiou(a, b):
    """tIoU in exact fractions from frames (the way the starter kit sees the data)."""
    intersection = max(0, min(a.end_frame, b.end_frame) - max(a.start_frame, b.start_frame))
    union = (a.end_frame - a.start_frame) + (b.end_frame - b.start_frame) - intersection
    return Fraction(intersection, union)


THRESHOLD = Fraction(3, 10)


def brute_miga(gt, pred):
    """The starter kit's loops: per GT, scan predictions in order, first hit counts, nothing removed."""
    correct = num_gt = num_pred = 0
    for video in gt:
        num_gt += len(gt[video])
        num_pred += len(pred.get(video, []))
        for g in gt[video]:
            for p in pred.get(video, []):
                if p.label_id == g.label_id and exact_tiou(g, p) > THRESHOLD:
                    correct += 1
                    break
    return correct, num_gt, num_pred


def brute_strict(gt, pred):
    correct = 0
    for video in gt:
        taken = set()
        ordered = sorted(range(len(pred.get(video, []))), key=lambda i: -pred[video][i].score)
        for i in ordered:
            p = pred[video][i]
            best, best_tiou = None, THRESHOLD
            for j, g in enumerate(gt[video]):
                if j not in taken and g.label_id == p.label_id and exact_tiou(g, p) > best_tiou:
                    best, best_tiou = j, exact_tiou(g, p)
            if best is not None:
                taken.add(best)
                correct += 1
    return correct


@settings(max_examples=200, deadline=None)
@given(scenes(fps_choices=(1.0, 28.0, 29.97, 25.0)), st.randoms(use_true_random=False))
def test_f1_miga_matches_starter_kit_loops_and_ignores_order(scene, random):
    gt, pred = scene
    correct, num_gt, num_pred = brute_miga(gt, pred)
    result = f1_miga(gt, pred)
    assert (result.correct, result.num_gt, result.num_pred) == (correct, num_gt, num_pred)
    assert result.f1 == kit_f1(correct, num_gt, num_pred)
    shuffled = {v: random.sample(items, len(items)) for v, items in pred.items()}
    assert f1_miga(gt, shuffled) == result


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_f1_strict_matches_brute_force(scene):
    gt, pred = scene
    result = f1_strict(gt, pred)
    assert result.overall.correct == brute_strict(gt, pred)
    assert result.overall.correct <= min(f1_miga(gt, pred).correct, result.overall.num_pred)
    # One to one, and each match is a same-class pair above the threshold.
    assert len({(m.video_id, m.gt_index) for m in result.matches}) == len(result.matches)
    assert len({(m.video_id, m.pred_index) for m in result.matches}) == len(result.matches)
    for m in result.matches:
        g, p = gt[m.video_id][m.gt_index], pred[m.video_id][m.pred_index]
        assert g.label_id == p.label_id and exact_tiou(g, p) > THRESHOLD
    assert sum(r.correct for r in result.per_class.values()) == result.overall.correct
    assert sum(r.num_pred for r in result.per_class.values()) == result.overall.num_pred


# ---------------------------------------------------------------------------- threshold tuning


@settings(max_examples=100, deadline=None)
@given(scenes(), st.sampled_from(["f1", "f1_miga"]))
def test_tuned_threshold_is_the_highest_best_on_a_full_sweep(scene, metric):
    gt, pred = scene
    candidates = sorted({d.score for items in pred.values() for d in items})
    threshold = tune_score_threshold(gt, pred, metric)
    if not candidates:
        assert threshold == 0.0
        return

    def f1_at(t):
        hard = apply_score_threshold(pred, t)
        return f1_strict(gt, hard).overall.f1 if metric == "f1" else f1_miga(gt, hard).f1

    sweep = {t: f1_at(t) for t in candidates}
    best = max(sweep.values())
    assert threshold == max(t for t, f in sweep.items() if f == best)


def test_tuned_threshold_hand_case():
    gt = {"v": [seg("v", 0, 10), seg("v", 20, 30)]}
    pred = {"v": [det("v", 0, 10, score=0.9), det("v", 50, 60, score=0.8), det("v", 20, 30, score=0.3)]}
    # t=0.9: P 1, R 1/2 -> 0.667; t=0.8: P 1/2, R 1/2 -> 0.5; t=0.3: P 2/3, R 1 -> 0.8.
    assert tune_score_threshold(gt, pred) == 0.3
    assert tune_score_threshold(gt, pred, "f1_miga") == 0.3


def test_tune_rejects_unknown_metric():
    with pytest.raises(InputError, match="f1_miga"):
        tune_score_threshold({}, {}, "map")


# -- per-class score thresholds ------------------------------------------------------------------


def _two_class_case():
    """Class 0's true detections score 0.9 and its false ones 0.5; class 1's true ones score 0.2, and
    nothing of class 1 is false: one global threshold cannot serve both."""
    gt, pred = {"v": []}, {"v": []}
    for i in range(6):
        gt["v"].append(seg("v", 10 * i, 10 * i + 5, label=0))
        pred["v"].append(det("v", 10 * i, 10 * i + 5, label=0, score=0.9))
        pred["v"].append(det("v", 10 * i + 6, 10 * i + 9, label=0, score=0.5))
    for i in range(6, 12):
        gt["v"].append(seg("v", 10 * i, 10 * i + 5, label=1))
        pred["v"].append(det("v", 10 * i, 10 * i + 5, label=1, score=0.2))
    pred["v"].sort(key=lambda d: -d.score)
    return gt, pred


def test_class_thresholds_serve_classes_one_global_threshold_cannot():
    gt, pred = _two_class_case()
    glob = tune_score_threshold(gt, pred)
    best_global = f1_strict(gt, apply_score_threshold(pred, glob)).overall.f1
    assert best_global < 0.9
    thresholds = tune_class_thresholds(gt, pred, 2, glob, shrinkage=0.0)
    assert 0.5 < thresholds[0] <= 0.9 and thresholds[1] <= 0.2
    assert f1_strict(gt, apply_score_threshold(pred, glob, thresholds)).overall.f1 == pytest.approx(1.0, abs=1e-6)


def test_class_thresholds_shrink_toward_the_global_one():
    gt, pred = _two_class_case()
    glob = tune_score_threshold(gt, pred)
    own = tune_class_thresholds(gt, pred, 3, glob, shrinkage=0.0)
    shrunk = tune_class_thresholds(gt, pred, 3, glob, shrinkage=6.0)  # 6 instances per class: half way
    assert shrunk[:2] == pytest.approx([(o + glob) / 2 for o in own[:2]])
    assert shrunk[2] == own[2] == glob  # no predictions of class 2: the global threshold
    assert tune_class_thresholds(gt, pred, 3, glob, shrinkage=1e9) == pytest.approx([glob] * 3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6), st.integers(0, 2), st.floats(0.01, 1.0)),
                min_size=1, max_size=30),
       st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6), st.integers(0, 2)), min_size=1, max_size=15))
def test_unshrunk_class_thresholds_never_lower_the_f1_of_the_global_threshold(raw_pred, raw_gt):
    pred = {"v": sorted((det("v", s, s + n, label=c, score=p) for s, n, c, p in raw_pred), key=lambda d: -d.score)}
    gt = {"v": [seg("v", s, s + n, label=c) for s, n, c in raw_gt]}
    glob = tune_score_threshold(gt, pred)
    thresholds = tune_class_thresholds(gt, pred, 3, glob, shrinkage=0.0)
    global_f1 = f1_strict(gt, apply_score_threshold(pred, glob)).overall.f1
    assert f1_strict(gt, apply_score_threshold(pred, glob, thresholds)).overall.f1 >= global_f1 - 1e-12


def test_tune_thresholds_follows_the_configured_rule():
    from mgrec.config import PostprocessConfig

    gt, pred = _two_class_case()
    glob = tune_score_threshold(gt, pred)
    assert tune_thresholds(gt, pred, 2, PostprocessConfig()) == (glob, None)
    # global tuning keeps bars set by hand
    assert tune_thresholds(gt, pred, 2, PostprocessConfig(class_thresholds=[0.3, 0.4])) == (glob, [0.3, 0.4])
    per_class = PostprocessConfig(thresholds="per_class", threshold_shrinkage=3.0, class_thresholds=[0.3, 0.4])
    assert tune_thresholds(gt, pred, 2, per_class) == (glob, tune_class_thresholds(gt, pred, 2, glob, 3.0))
    with pytest.raises(InputError, match="'global' or 'per_class'"):
        tune_thresholds(gt, pred, 2, PostprocessConfig(thresholds="per-class"))


def test_per_class_tuning_takes_scores_up_to_the_largest_float():
    import math

    from mgrec.config import PostprocessConfig
    from mgrec.evaluate.f1 import tune_thresholds
    from mgrec.records import Detection, Segment

    gt = {"v": [Segment("v", 1.0, 2.0, 0, "a")]}
    ranked = {"v": [Detection("v", 1.0, 2.0, 0, "a", 1.7976931348623157e308), Detection("v", 5.0, 6.0, 1, "b", 0.5)]}
    threshold, bars = tune_thresholds(gt, ranked, 2, PostprocessConfig(thresholds="per_class"))
    assert all(map(math.isfinite, bars)) and math.isfinite(threshold)


def test_the_miga_rule_computed_class_by_class_is_its_whole_matrix():
    """Which ground-truth segments the MiGA rule finds, and the best score finding each (`tune_score_threshold`), are
    now computed one class at a time (`_found_by_class`): the whole matrix of a video, masked to its classes, held
    93 MB arrays for a hard set of 166,000 detections. On random videos with tied tIoUs (whole frames at 28 fps) and
    tied scores, both give `_found_by`'s answers exactly."""
    import random

    import numpy as np

    from mgrec.evaluate.f1 import _found, _found_at, _found_by
    from mgrec.evaluate.matching import scores

    rng = random.Random(0)
    found_some = 0
    for _ in range(300):
        gt = [seg("v", s, s + rng.randrange(1, 30), rng.randrange(3), fps=28.0)
              for s in (rng.randrange(0, 100) for _ in range(rng.randrange(1, 6)))]
        pred = [det("v", s, s + rng.randrange(1, 30), rng.randrange(3), rng.choice([0.5, 0.25, rng.random()]), 28.0)
                for s in (rng.randrange(0, 100) for _ in range(rng.randrange(1, 12)))]
        hits = _found_by(gt, pred, 0.3)
        assert np.array_equal(_found(gt, pred, 0.3), hits.any(axis=1))
        assert np.array_equal(_found_at(gt, pred, 0.3), np.where(hits, scores(pred)[None, :], -np.inf).max(axis=1))
        found_some += hits.any()
    assert found_some > 100


def test_the_best_threshold_of_every_candidate_at_once_is_the_one_of_each_f1_result():
    """`_best_threshold` computes `F1Result.from_counts`'s F1 of every candidate at once (tuning on a ranked list of
    a million scores made a million F1Results); each F1 is the same float, so the threshold chosen is the same,
    ties (equal F1 at several candidates) to the highest, with no predictions or no ground truth at some."""
    import random

    import numpy as np

    from mgrec.evaluate.f1 import _best_threshold, _best_threshold_reference

    rng = random.Random(0)
    for _ in range(500):
        size = rng.randrange(1, 40)
        candidates = np.sort(np.array([rng.choice([0.5, 0.25, rng.random()]) for _ in range(size)]))
        num_pred = np.sort(np.array([rng.randrange(0, 30) for _ in range(size)]))[::-1]
        correct = np.minimum(num_pred, np.array([rng.randrange(0, 30) for _ in range(size)]))
        num_gt = rng.choice([0, 1, 7, 30, 10**6])
        assert _best_threshold(candidates, correct, num_pred, num_gt) == \
            _best_threshold_reference(candidates, correct, num_pred, num_gt)


# ------------------------------------------------------------------------------- hard_set's arguments


@pytest.mark.parametrize("class_thresholds, label_id, expected", [
    ([0.5], 1, r"label_id 1 has no class threshold \(class_thresholds holds 1: label ids 0 to 0\)"),  # IndexError
    ([0.5, 0.1], -1, r"label_id -1 has no class threshold"),  # took class 1's bar
    ([0.5, float("nan")], 0, r"class_thresholds: expected one number per class \(not NaN\), got \[0.5, nan\]"),
    ([], 0, r"class_thresholds: expected one number per class \(not NaN\), got \[\]"),
])
def test_hard_set_refuses_class_thresholds_that_do_not_fit(class_thresholds, label_id, expected):
    with pytest.raises(InputError, match=expected):
        hard_set([det("v", 1, 2, label=label_id, score=0.9)], 0.5, class_thresholds)


@pytest.mark.parametrize("threshold", [float("nan"), None, "0.5"])
def test_hard_set_refuses_a_threshold_that_is_no_number(threshold):
    """NaN kept nothing without a word."""
    with pytest.raises(InputError, match=r"score_threshold: expected a number \(inf keeps nothing, -inf everything\)"):
        hard_set([det("v", 1, 2, score=0.9)], threshold)


def test_hard_set_takes_infinite_bars_as_nothing_or_everything():
    detections = [det("v", 1, 2, label=0, score=0.9), det("v", 1, 2, label=1, score=0.1)]
    assert hard_set(detections, float("inf")) == [] and hard_set(detections, float("-inf")) == detections
    assert [d.label_id for d in hard_set(detections, 0.5, [float("inf"), float("-inf")])] == [1]


def test_hard_set_keeps_by_class():
    kept = hard_set([det("v", 1, 2, label=0, score=0.4), det("v", 1, 2, label=1, score=0.4)], 0.9, [0.5, 0.3])
    assert [d.label_id for d in kept] == [1]
