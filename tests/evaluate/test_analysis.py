"""DETAD-style error analysis on hand-made records with hand-computed answers."""

import math

import numpy as np
import pytest

from mgrec.errors import InputError
from mgrec.evaluate.analysis import (
    COVERAGE_BINS,
    ERROR_TYPES,
    HARD_SET,
    RANKED_LIST,
    Bins,
    analyze,
    analyze_hard_set,
    characterize,
    error_type,
    f1_threshold_curve,
    normalized_ap,
    precision_recall_curves,
)
from mgrec.evaluate.average_precision import DEFAULT_TIOU_THRESHOLDS, average_precision
from mgrec.evaluate.f1 import f1_strict, hard_set, tune_score_threshold
from mgrec.records import Detection, Segment

NAMES = ["zero", "one", "two"]


def seg(video, start, end, label):
    return Segment(video, float(start), float(end), label, NAMES[label])


def det(video, start, end, label, score):
    return Detection(video, float(start), float(end), label, NAMES[label], float(score))


# ---------------------------------------------------------------------------------------------
# Bins


def test_bins_are_closed_on_the_right_and_the_first_also_on_the_left():
    bins = Bins((0, 2, 5, 7, 9.75, math.inf))
    assert bins.labels == ("XS", "S", "M", "L", "XL")
    assert [bins.index(v) for v in (0.0, 2.0, 2.0001, 5.0, 7.5, 9.75, 9.76, 1e9)] == [0, 0, 1, 1, 3, 3, 4, 4]
    assert bins.index(-0.1) is None


def test_bins_print_their_edges():
    assert Bins((0, 2, 5, math.inf)).ranges() == ("[0, 2]", "(2, 5]", "(5, ∞)")
    assert Bins((0.5, 0.8, 1.25)).ranges() == ("[0.5, 0.8]", "(0.8, 1.25]")


def test_bins_default_labels_and_validation():
    assert Bins((-1, 15, 100, 200, math.inf)).labels == ("XS", "S", "M", "L")
    assert Bins((0, 1, 2, 3, 4, 5, 6)).labels[0] == "(0, 1]"
    with pytest.raises(InputError, match="increasing"):
        Bins((0, 2, 2))
    with pytest.raises(InputError, match="labels"):
        Bins((0, 1, 2), ("a",))


# ---------------------------------------------------------------------------------------------
# Characteristics


def test_characteristics_of_each_segment():
    gt = {
        "a": [seg("a", 0, 2, 0), seg("a", 10, 13, 0), seg("a", 20, 21, 1)],
        "b": [seg("b", 0, 6, 2)],  # runs past the end of a 5 s video
        "empty": [],
    }
    traits = {(t.video_id, t.index): t for t in characterize(gt, {"a": 100.0, "b": 5.0})}
    assert traits[("a", 0)].coverage == pytest.approx(0.02)
    # class 0 has lengths 2 and 3 (median 2.5); classes 1 and 2 one segment each
    assert traits[("a", 0)].relative_length == pytest.approx(0.8)
    assert traits[("a", 1)].relative_length == pytest.approx(1.2)
    assert traits[("a", 2)].relative_length == traits[("b", 0)].relative_length == 1.0
    assert traits[("a", 1)].length == pytest.approx(3.0)
    assert [traits[("a", i)].instances for i in range(3)] == [2, 2, 1]
    assert traits[("b", 0)].coverage == 1.0
    assert len(traits) == 4


def test_characterize_needs_a_duration_and_a_length():
    with pytest.raises(InputError, match="no duration"):
        characterize({"a": [seg("a", 0, 1, 0)]}, {})
    with pytest.raises(InputError, match="no length"):
        characterize({"a": [seg("a", 3, 3, 0)]}, {"a": 10.0})


# ---------------------------------------------------------------------------------------------
# AP helpers


def test_normalized_ap_uses_instances_per_class_not_class_size():
    # one segment, found after two false positives: precision_N = 1*N / (1*N + 2)
    assert normalized_ap(np.array([False, False, True]), num_gt=1, per_class=1.0) == pytest.approx(1 / 3)
    assert normalized_ap(np.array([False, False, True]), num_gt=1, per_class=4.0) == pytest.approx(4 / 6)


# ---------------------------------------------------------------------------------------------
# False-positive profile: one prediction of each type


def error_zoo():
    gt = {"v": [seg("v", 10, 20, 0), seg("v", 40, 50, 1)], "w": []}
    ranked = {
        "v": [
            det("v", 10, 20, 0, 0.9),  # true positive
            det("v", 11, 20, 0, 0.8),  # tIoU 0.9 with the already matched segment: double detection
            det("v", 10, 20, 1, 0.7),  # tIoU 1 with a class-0 segment: wrong label
            det("v", 10, 14, 0, 0.6),  # tIoU 0.4, same class: localization
            det("v", 10, 13, 1, 0.5),  # tIoU 0.3, other class: confusion
            det("v", 70, 80, 0, 0.4),  # no overlap: background
            det("v", 40, 50, 1, 0.3),  # true positive
        ],
        "w": [det("w", 0, 1, 1, 0.2)],  # video without segments: background (rank 4 of class 1)
    }
    return gt, ranked


def test_error_type_of_each_prediction():
    gt, ranked = error_zoo()
    matched = {0, 6}
    types = [error_type(d, gt["v"], i in matched, 0.5, 0.1) for i, d in enumerate(ranked["v"])]
    assert types == [
        "true_positive", "double_detection", "wrong_label", "localization", "confusion", "background", "true_positive"
    ]
    assert error_type(ranked["w"][0], gt["w"], False, 0.5, 0.1) == "background"


def test_false_positive_profile_slices_per_class():
    gt, ranked = error_zoo()
    result = analyze(gt, ranked, {"v": 100.0, "w": 100.0})
    counts = result.false_positives.counts
    assert len(counts) == 10
    nonzero = [{k: v for k, v in c.items() if v} for c in counts]
    # G = 1 for both classes, so slice k holds each class's k-th prediction
    assert nonzero[:4] == [
        {"true_positive": 1, "wrong_label": 1},
        {"double_detection": 1, "confusion": 1},
        {"localization": 1, "true_positive": 1},
        {"background": 2},
    ]
    assert all(not c for c in nonzero[4:])
    fractions = result.false_positives.fractions
    assert fractions[0]["true_positive"] == 0.5 and fractions[3]["background"] == 1.0
    assert sum(fractions[9].values()) == 0.0
    assert set(counts[0]) == set(ERROR_TYPES)


def test_removal_gain_by_hand():
    gt, ranked = error_zoo()
    gain = analyze(gt, ranked, {"v": 100.0, "w": 100.0}).false_positives.removal_gain
    # N = 1. Class 0: [TP, ...] -> AP 1. Class 1: [WL, Conf, TP, BG] -> precision 1/3 at recall 1 -> AP 1/3.
    # Removing wrong-label or confusion errors leaves one FP before the TP: AP 1/2; mean 3/4 vs 2/3.
    assert gain["wrong_label"] == pytest.approx(0.75 - 2 / 3)
    assert gain["confusion"] == pytest.approx(0.75 - 2 / 3)
    assert gain["double_detection"] == pytest.approx(0.0)
    assert gain["localization"] == pytest.approx(0.0)
    # background errors come after every TP: removing them changes nothing
    assert gain["background"] == pytest.approx(0.0)
    assert "true_positive" not in gain


# ---------------------------------------------------------------------------------------------
# False negatives


def test_false_negative_rates_per_length_and_instance_bin():
    # video a: four class-0 segments (lengths 1, 3, 6, 12 s) and one class-1 segment (1 s)
    gt = {
        "a": [seg("a", 0, 1, 0), seg("a", 10, 13, 0), seg("a", 20, 26, 0), seg("a", 30, 42, 0), seg("a", 50, 51, 1)],
        "b": [seg("b", 0, 1, 2)],
    }
    ranked = {
        # finds the 3 s and the 12 s class-0 segments and the class-1 segment; a 1 s class-0
        # prediction over the class-1 segment finds nothing
        "a": [det("a", 10, 13, 0, 0.9), det("a", 30, 42, 0, 0.8), det("a", 50, 51, 1, 0.7), det("a", 50, 51, 0, 0.6)],
        "b": [],
    }
    lengths = Bins((0, 2, 5, 7, 9.75, math.inf))
    instances = Bins((0, 1, 3, math.inf), ("one", "few", "many"))
    result = analyze(gt, ranked, {"a": 60.0, "b": 60.0}, bins={"length": lengths, "instances": instances})
    length = result.characteristics["length"]
    assert length.gt_counts == (3, 1, 1, 0, 1)
    # XS: 1 s class-0 (missed), 1 s class-1 (found), 1 s in b (missed) -> 2/3
    assert length.false_negative_rates == pytest.approx((2 / 3, 0.0, 1.0, None, 0.0))
    assert length.false_negative_rates[3] is None
    count = result.characteristics["instances"]
    # class 0 in a has 4 instances ("many"); class 1 in a and class 2 in b have 1 ("one")
    assert count.gt_counts == (2, 0, 4)
    assert count.false_negative_rates[0] == pytest.approx(0.5)
    assert count.false_negative_rates[2] == pytest.approx(0.5)
    assert result.num_ground_truth == 6 and result.num_predictions == 4


@pytest.mark.parametrize("false_positives, missed", [(18, False), (19, True)])
def test_a_match_after_too_many_false_positives_is_a_false_negative(false_positives, missed):
    # one segment, N = 1: after k FPs the match has precision_N = 1 / (1 + k); DETAD keeps it only if > 0.05
    gt = {"v": [seg("v", 0, 1, 0)]}
    ranked = {"v": [det("v", 10 + i, 11 + i, 0, 0.9 - 0.01 * i) for i in range(false_positives)]}
    ranked["v"].append(det("v", 0, 1, 0, 0.1))
    result = analyze(gt, ranked, {"v": 100.0})
    assert result.characteristics["length"].false_negative_rates[0] == (1.0 if missed else 0.0)
    # the AP curve itself still counts the late match
    assert result.map_n == pytest.approx(1 / (1 + false_positives))


def test_coverage_on_request_and_the_default_characteristics():
    gt = {"v": [seg("v", 0, 2, 0), seg("v", 10, 13, 0), seg("v", 20, 30, 0)]}
    default = analyze(gt, {"v": [det("v", 10, 13, 0, 0.5)]}, {"v": 100.0})
    assert tuple(default.characteristics) == ("relative_length", "length", "instances")
    # lengths 2, 3, 10 s: median 3, relative 0.67, 1, 3.33 -> S, M, XL
    assert default.characteristics["relative_length"].gt_counts == (0, 1, 1, 0, 1)
    result = analyze(gt, {"v": [det("v", 10, 13, 0, 0.5)]}, {"v": 100.0},
                     bins={"coverage": COVERAGE_BINS, "instances": None})
    assert tuple(result.characteristics) == ("relative_length", "coverage", "length")
    coverage = result.characteristics["coverage"]
    assert coverage.bins.labels == ("XS", "S", "M", "L", "XL")
    assert coverage.gt_counts == (1, 1, 0, 0, 1)  # 0.02 -> XS, 0.03 -> S, 0.10 -> XL
    assert coverage.false_negative_rates == (1.0, 0.0, None, None, 1.0)
    with pytest.raises(InputError, match="unknown characteristic"):
        analyze(gt, {}, {"v": 100.0}, bins={"colour": COVERAGE_BINS})


def test_relative_length_bins_spread_micro_gestures_that_coverage_piles_up():
    # 1-3 s gestures in 4-minute videos, as in the demo: a fraction of the video below 2 % each
    rng = np.random.default_rng(3)
    gt = {}
    for v in range(5):
        video = f"v{v}"
        starts = np.sort(rng.uniform(0, 230, size=40))
        gt[video] = [seg(video, s, s + rng.uniform(0.4, 3.0), int(rng.integers(0, 3))) for s in starts]
    result = analyze(gt, {}, {f"v{v}": 240.0 for v in range(5)}, bins={"coverage": COVERAGE_BINS})
    coverage = result.characteristics["coverage"].gt_counts
    relative = result.characteristics["relative_length"].gt_counts
    assert coverage[0] == sum(coverage)  # every gesture in the first coverage bin
    assert max(relative) < 0.5 * sum(relative) and sum(count > 0 for count in relative) >= 4


# ---------------------------------------------------------------------------------------------
# Sensitivity


def test_map_n_per_bin_and_sensitivity_by_hand():
    gt = {"v": [seg("v", 0, 2, 0), seg("v", 10, 20, 0)]}
    ranked = {"v": [det("v", 10, 20, 0, 0.9), det("v", 50, 60, 0, 0.8), det("v", 0, 2, 0, 0.7)]}
    bins = Bins((0, 5, math.inf), ("short", "long"))
    result = analyze(gt, ranked, {"v": 100.0}, bins={"length": bins})
    length = result.characteristics["length"]
    # N = 2. short: [FP, TP] (the long match is left out) -> precision 2/3 at recall 1.
    # long: [TP, FP] -> precision 1 at recall 1.
    assert length.map_n == pytest.approx((2 / 3, 1.0))
    assert length.sensitivity == pytest.approx(1 / 3)
    # all: [TP, FP, TP] -> 0.5 * 1 + 0.5 * 2/3
    assert result.map_n == pytest.approx(5 / 6)


def test_empty_bins_have_no_map_and_do_not_count_in_the_spread():
    gt = {"v": [seg("v", 0, 1, 0)]}
    result = analyze(gt, {"v": [det("v", 0, 1, 0, 0.9)]}, {"v": 100.0})
    length = result.characteristics["length"]
    assert length.map_n == (1.0, None, None, None, None)
    assert length.sensitivity == 0.0


# ---------------------------------------------------------------------------------------------
# Invariants on random data, and bad input


def test_invariants_on_random_detections():
    rng = np.random.default_rng(0)
    gt, ranked, durations = {}, {}, {}
    for v in range(4):
        video = f"v{v}"
        durations[video] = 200.0
        starts = rng.uniform(0, 180, size=12)
        gt[video] = [seg(video, s, s + rng.uniform(0.5, 12), int(rng.integers(0, 3))) for s in starts]
        pred_starts = rng.uniform(0, 180, size=40)
        ranked[video] = [
            det(video, s, s + rng.uniform(0.5, 12), int(rng.integers(0, 3)), rng.uniform()) for s in pred_starts
        ]
    result = analyze(gt, ranked, durations)
    # every slice k holds, per class, the predictions of rank (k-1)G_c .. kG_c - 1
    per_class_gt = {c: sum(s.label_id == c for v in gt.values() for s in v) for c in range(3)}
    per_class_pred = {c: sum(d.label_id == c for v in ranked.values() for d in v) for c in range(3)}
    for k, counts in enumerate(result.false_positives.counts):
        expected = sum(max(0, min(per_class_pred[c], (k + 1) * g) - k * g) for c, g in per_class_gt.items())
        assert sum(counts.values()) == expected
    for characteristic in result.characteristics.values():
        assert sum(characteristic.gt_counts) == 48
        assert all(0.0 <= value <= 1.0 for value in characteristic.map_n if value is not None)
    json_ready = result.to_json()
    assert json_ready["characteristics"]["length"]["edges"][-1] is None  # inf


def test_predictions_for_unknown_videos_and_empty_ground_truth_are_errors():
    with pytest.raises(InputError, match="without a ground-truth entry"):
        analyze({"v": [seg("v", 0, 1, 0)]}, {"x": [det("x", 0, 1, 0, 0.5)]}, {"v": 10.0})
    with pytest.raises(InputError, match="no ground-truth segments"):
        analyze({"v": []}, {"v": []}, {"v": 10.0})


def test_a_value_outside_the_bins_names_the_segment():
    gt = {"v": [Segment("v", 0.0, 30.0, 0, "zero", source="ann.json [database.v.annotations[0]]")]}
    with pytest.raises(InputError, match=r"ann.json \[database.v.annotations\[0\]\]: length 30"):
        analyze(gt, {"v": []}, {"v": 100.0}, bins={"length": Bins((0, 10, 20))})


# ---------------------------------------------------------------------------------------------
# The hard set: the operating point


def random_run(seed: int, videos: int = 4, classes: int = 3):
    """Ground truth and ranked detections on a 0.1 s grid (so that tIoUs hit thresholds exactly)."""
    rng = np.random.default_rng(seed)
    gt, ranked, durations = {}, {}, {}
    for v in range(videos):
        video = f"v{v}"
        durations[video] = 200.0
        gt[video] = []
        for _ in range(10):
            start = round(float(rng.uniform(0, 180)), 1)
            length = round(float(rng.uniform(0.5, 8)), 1)
            gt[video].append(seg(video, start, start + length, int(rng.integers(classes))))
        ranked[video] = []
        for segment in gt[video]:  # detections near each segment, some shifted, some of another class
            for _ in range(2):
                shift = round(float(rng.normal(0, 1.0)), 1)
                label = segment.label_id if rng.uniform() < 0.7 else int(rng.integers(classes))
                ranked[video].append(det(video, segment.start + shift, segment.end + shift, label,
                                         round(float(rng.uniform()), 2)))
        for _ in range(10):  # background
            start = round(float(rng.uniform(0, 190)), 1)
            score = round(float(rng.uniform()), 2)
            ranked[video].append(det(video, start, start + 2.0, int(rng.integers(classes)), score))
    return gt, ranked, durations


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_set_misses_are_the_one_to_one_f1_misses(seed):
    gt, ranked, durations = random_run(seed)
    threshold = 0.4
    hard = {v: hard_set(items, threshold) for v, items in ranked.items()}
    matched = {(m.video_id, m.gt_index) for m in f1_strict(gt, hard).matches}
    every = {(v, j) for v, segments in gt.items() for j in range(len(segments))}
    result = analyze_hard_set(gt, ranked, durations, threshold)
    assert result.which == HARD_SET and result.score_threshold == threshold and result.comparison == ">"
    assert result.missed == every - matched
    assert result.num_predictions == sum(map(len, hard.values()))
    ranked_result = analyze(gt, ranked, durations)
    assert ranked_result.which == RANKED_LIST and ranked_result.score_threshold is None
    assert ranked_result.num_predictions == sum(map(len, ranked.values()))


def test_hard_set_uses_the_f1_comparison_at_the_exact_threshold():
    # tIoU exactly 0.3: F1 (tIoU > 0.3) misses the segment; a >= comparison would find it
    gt = {"v": [seg("v", 0, 10, 0)]}
    ranked = {"v": [det("v", 0, 3, 0, 0.9)]}
    assert analyze_hard_set(gt, ranked, {"v": 100.0}, 0.5).missed == {("v", 0)}
    assert analyze(gt, ranked, {"v": 100.0}, tiou=0.3).missed == frozenset()
    # below the threshold the detection is not in the hard set at all
    assert analyze_hard_set(gt, {"v": [det("v", 0, 10, 0, 0.2)]}, {"v": 100.0}, 0.5).missed == {("v", 0)}
    assert error_type(ranked["v"][0], gt["v"], False, 0.3, 0.1, ">") == "localization"
    assert error_type(ranked["v"][0], gt["v"], False, 0.3, 0.1, ">=") == "double_detection"


def test_descriptions_and_json_name_the_set_and_the_bin_edges():
    gt, ranked, durations = random_run(0)
    hard = analyze_hard_set(gt, ranked, durations, 0.41)
    assert hard.describe() == "hard set (score ≥ 0.41), tIoU > 0.3"
    assert analyze(gt, ranked, durations).describe() == "ranked list, tIoU ≥ 0.5"
    summary = hard.to_json()
    assert summary["which"] == "hard set" and summary["num_missed"] == len(hard.missed)
    assert summary["characteristics"]["length"]["ranges"] == ["[0, 2]", "(2, 5]", "(5, 7]", "(7, 9.75]", "(9.75, ∞)"]
    assert summary["characteristics"]["relative_length"]["unit"] == "× class median"


# ---------------------------------------------------------------------------------------------
# Curves around the operating point


@pytest.mark.parametrize("seed", [0, 4])
def test_precision_recall_curves_give_average_precision_s_ap(seed):
    gt, ranked, _ = random_run(seed)
    curves = precision_recall_curves(gt, ranked)
    expected = average_precision(gt, ranked, 3)
    assert sorted(curves) == list(DEFAULT_TIOU_THRESHOLDS)
    for t, tiou in enumerate(DEFAULT_TIOU_THRESHOLDS):
        for label_id, curve in curves[tiou].items():
            assert curve.ap == pytest.approx(expected.ap[t, label_id])
            assert np.all(np.diff(curve.scores) <= 0) and np.all(np.diff(curve.recall) >= 0)


def test_a_pr_curve_by_hand_and_its_operating_point():
    gt = {"v": [seg("v", 0, 10, 0), seg("v", 20, 30, 0)]}
    ranked = {"v": [det("v", 50, 60, 0, 0.9), det("v", 0, 10, 0, 0.8), det("v", 20, 30, 0, 0.3)]}
    curve = precision_recall_curves(gt, ranked, tious=[0.5])[0.5][0]
    assert curve.precision == pytest.approx([0.0, 0.5, 2 / 3])
    assert curve.recall == pytest.approx([0.0, 0.5, 1.0])
    assert curve.at_threshold(0.5) == pytest.approx((0.5, 0.5))
    assert curve.at_threshold(0.95) is None


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_f1_threshold_curve_is_f1_of_the_hard_set_at_every_threshold(seed):
    gt, ranked, _ = random_run(seed)
    curve = f1_threshold_curve(gt, ranked)
    assert np.all(np.diff(curve.thresholds) > 0)
    for threshold in [0.0, 0.05, 0.333, 0.5, float(curve.thresholds[3]), 0.97, 1.0]:
        hard = {v: hard_set(items, threshold) for v, items in ranked.items()}
        expected = f1_strict(gt, hard).overall
        got = curve.at(threshold)
        if expected.num_pred == 0:
            assert got is None
            continue
        assert (got.f1, got.precision, got.recall, got.num_pred) == pytest.approx(
            (expected.f1, expected.precision, expected.recall, expected.num_pred))
    assert curve.best_threshold == pytest.approx(tune_score_threshold(gt, ranked))
