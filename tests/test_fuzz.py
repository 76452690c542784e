"""Property-based fuzzing of every reader and of the numeric core.

Readers (annotations JSON, SMG label CSVs, predictions JSON and CSV, feature files) must either load
or raise `InputError`: any other exception is a bug. Post-processing and scoring must give finite,
ranked, in-range results for any network output and any ground truth.

Runs derandomized (the same examples every time, so the suite never flakes) with MGREC_FUZZ_EXAMPLES
examples per test (default 40); set MGREC_FUZZ_EXAMPLES=2000 and MGREC_FUZZ_RANDOM=1 to search harder.

Inputs that trigger the bugs already pinned by tests/test_robustness.py are left out (or, for a
prediction's label, tolerated) here, so that this file guards everything else: integers beyond the
float range (test_*_beyond_the_float_range), nesting deeper than Python's recursion limit
(test_deeply_nested_json), containers as a prediction's label
(test_score_predictions_with_a_label_that_is_not_a_string), CSV fields over 128 KiB
(test_score_csv_predictions_with_a_huge_field), non-UTF-8 prediction CSVs
(test_score_csv_predictions_that_are_not_utf8), .npy headers claiming more than memory holds
(test_detect_names_a_feature_file_whose_header_claims_terabytes) and infinite segments
(test_nms_with_non_finite_segments_fails_loudly_or_returns_each_candidate_once).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mgrec.config import PostprocessConfig
from mgrec.data.annotations import load_annotations, read_smg_labels
from mgrec.data.features import inspect_features, load_features
from mgrec.errors import InputError
from mgrec.evaluate.predictions import load_predictions
from mgrec.evaluate.scoring import score
from mgrec.postprocess.decode import decode_video
from mgrec.postprocess.nms import nms
from mgrec.records import Detection, Segment

FUZZ = settings(
    max_examples=int(os.environ.get("MGREC_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=os.environ.get("MGREC_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# JSON values as a parser meets them: ints within the float range (see the module docstring).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def write_text(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def loads_or_input_error(read, *args):
    """The result of `read(*args)`, or None when it raised InputError; anything else propagates."""
    try:
        return read(*args)
    except InputError as error:
        assert str(error), "an InputError must say what is wrong"
        return None


def mutate(document, path: list, value, delete: bool):
    """A copy of `document` with the node at `path` replaced by `value` (or deleted)."""
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


def node_paths(document, prefix=()) -> list[list]:
    """Every key path in a JSON document (for picking a node to mutate)."""
    paths = []
    items = (
        document.items() if isinstance(document, dict) else enumerate(document) if isinstance(document, list) else []
    )
    for key, value in items:
        paths.append([*prefix, key])
        paths.extend(node_paths(value, (*prefix, key)))
    return paths


# ---------------------------------------------------------------------------------------------
# Annotations JSON

VALID_ANNOTATIONS = {
    "version": "fuzz",
    "classes": ["wave", "nod", "shrug"],
    "database": {
        "v1": {
            "subset": "training",
            "fps": 25.0,
            "duration": 30.0,
            "num_frames": 750,
            "annotations": [
                {"label": "nod", "label_id": 1, "segment": [1.0, 2.5], "segment(frames)": [25, 62]},
                {"label": "wave", "label_id": 0, "segment": [4.0, 6.0]},
            ],
        },
        "v2": {"subset": "validation", "fps": 30, "duration": 12.0, "annotations": []},
    },
}
ANNOTATION_PATHS = node_paths(VALID_ANNOTATIONS)


def check_annotation_set(aset) -> None:
    for video_id, info in aset.videos.items():
        assert info.fps > 0 and math.isfinite(info.fps) and info.duration > 0
        for segment in aset.segments[video_id]:
            assert 0 <= segment.start < segment.end and math.isfinite(segment.end)
            assert 0 <= segment.label_id < len(aset.classes)
            assert aset.classes[segment.label_id] == segment.label


@FUZZ
@given(document=json_values)
def test_annotations_from_random_json_load_or_raise_input_error(tmp_path_factory, document):
    path = write_text(tmp_path_factory.mktemp("ann"), "ann.json", json.dumps(document))
    aset = loads_or_input_error(load_annotations, path)
    if aset is not None:
        check_annotation_set(aset)


@FUZZ
@given(which=st.sampled_from(ANNOTATION_PATHS), value=json_values, delete=st.booleans())
@example(which=["database", "v1", "annotations", 0, "label_id"], value=2**40, delete=False)
@example(which=["database", "v1", "fps"], value=float("nan"), delete=False)
def test_mutated_annotations_load_or_raise_input_error(tmp_path_factory, which, value, delete):
    document = mutate(VALID_ANNOTATIONS, which, value, delete)
    path = write_text(tmp_path_factory.mktemp("ann"), "ann.json", json.dumps(document))
    aset = loads_or_input_error(load_annotations, path)
    if aset is not None:
        check_annotation_set(aset)


@FUZZ
@given(data=st.binary(max_size=200))
def test_annotations_from_random_bytes_raise_input_error(tmp_path_factory, data):
    path = write_text(tmp_path_factory.mktemp("ann"), "ann.json", data)
    loads_or_input_error(load_annotations, path)


# ---------------------------------------------------------------------------------------------
# SMG label CSVs

smg_cells = (
    st.integers(min_value=-5, max_value=2000).map(str)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)  # beyond int64, within float range
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.text(alphabet="0123456789-+. aeXx,\t\ufeff", max_size=6)
    | st.text(max_size=5)
)
smg_lines = st.lists(smg_cells, min_size=0, max_size=5).map(",".join)


@FUZZ
@given(lines=st.lists(smg_lines, max_size=8), line_end=st.sampled_from(["\n", "\r\n"]))
@example(lines=["5,28,56", "class,start,end"], line_end="\n")
def test_smg_label_lines_load_or_raise_input_error(tmp_path_factory, lines, line_end):
    root = tmp_path_factory.mktemp("smg")
    write_text(root, "Sample0001/Sample0001_finelabels.csv", line_end.join(lines))
    write_text(root, "Sample0001/Sample0001_data.csv", "1400,28,4095\n")
    aset = loads_or_input_error(read_smg_labels, root)
    if aset is not None:
        segments = aset.segments["Sample0001"]
        text = line_end.join(lines).removeprefix("\ufeff")  # a leading byte-order mark is tolerated
        assert len(segments) == sum(1 for line in text.splitlines() if line.strip())
        for segment in segments:
            assert 0 <= segment.start_frame < segment.end_frame
            assert 0 <= segment.label_id < 17
        check_annotation_set(aset)


@FUZZ
@given(data=st.binary(max_size=120))
def test_smg_label_bytes_load_or_raise_input_error(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("smg")
    write_text(root, "Sample0001/Sample0001_finelabels.csv", data)
    write_text(root, "Sample0001/Sample0001_data.csv", "1400,28,4095\n")
    loads_or_input_error(read_smg_labels, root)


# ---------------------------------------------------------------------------------------------
# Predictions

CLASSES = ["wave", "nod", "shrug"]
VALID_PREDICTIONS = {
    "results": {
        "v1": [
            {"segment": [1.0, 2.0], "label": "nod", "label_id": 1, "score": 0.9, "segment(frames)": [25, 50]},
            {"segment": [3.0, 4.5], "label_id": 2, "score": 0.4},
        ],
        "v2": [],
    }
}
PREDICTION_PATHS = node_paths(VALID_PREDICTIONS)


def check_predictions(predictions) -> None:
    for items in predictions.values():
        for d in items:
            assert math.isfinite(d.start) and math.isfinite(d.end) and d.start < d.end
            assert math.isfinite(d.score)
            assert CLASSES[d.label_id] == d.label


@FUZZ
@given(which=st.sampled_from(PREDICTION_PATHS), value=json_scalars, delete=st.booleans())
def test_mutated_prediction_json_loads_or_raises_input_error(tmp_path_factory, which, value, delete):
    document = mutate(VALID_PREDICTIONS, which, value, delete)
    path = write_text(tmp_path_factory.mktemp("pred"), "pred.json", json.dumps(document))
    predictions = loads_or_input_error(load_predictions, path, CLASSES)
    if predictions is not None:
        check_predictions(predictions)


@FUZZ
@given(document=json_values)
def test_prediction_json_from_random_json_loads_or_raises_input_error(tmp_path_factory, document):
    path = write_text(tmp_path_factory.mktemp("pred"), "pred.json", json.dumps({"results": document}))
    try:
        predictions = loads_or_input_error(load_predictions, path, CLASSES)
    except TypeError as error:  # containers as a label: pinned in test_robustness, see the docstring
        assert "unhashable" in str(error)
        return
    if predictions is not None:
        check_predictions(predictions)


@FUZZ
@given(lines=st.lists(smg_lines, max_size=6), name=st.sampled_from(["v1.csv", "v1_finelabels.csv"]))
@example(lines=["1,0,10,0.5", "2,5,9"], name="v1.csv")
def test_prediction_csv_lines_load_or_raise_input_error(tmp_path_factory, lines, name):
    folder = tmp_path_factory.mktemp("pred")
    write_text(folder, name, "\n".join(lines))
    predictions = loads_or_input_error(load_predictions, folder, CLASSES, None, {"v1": 25.0})
    if predictions is not None:
        check_predictions(predictions)


# ---------------------------------------------------------------------------------------------
# Feature files


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".npy", ".npz"]), keep_header=st.booleans())
def test_feature_file_bytes_load_or_raise_input_error(tmp_path_factory, data, suffix, keep_header):
    folder = tmp_path_factory.mktemp("feats")
    if keep_header:  # a real header of a small array, then random bytes: the realistic corruption
        valid = folder / "valid.npy"
        np.save(valid, np.ones((4, 3), np.float32))
        data = valid.read_bytes()[:128] + data
    path = write_text(folder, f"v{suffix}", data)
    for read in (load_features, inspect_features):
        loads_or_input_error(read, path, 3)


# ---------------------------------------------------------------------------------------------
# Post-processing: any network output


EXTREMES = [0.0, 1e-30, 1e30, -1e30, float("inf"), -float("inf"), float("nan")]


@st.composite
def network_outputs(draw):
    """Per-level (logits (T_l, K), offsets (T_l, 2), mask (T_l,)) with extreme values sprinkled in."""
    length = draw(st.integers(min_value=1, max_value=600))
    num_classes = draw(st.integers(min_value=1, max_value=5))
    num_levels = draw(st.integers(min_value=1, max_value=4))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))
    logit_scale = draw(st.sampled_from([0.1, 3.0, 50.0]))
    extreme_share = draw(st.sampled_from([0.0, 0.01, 0.3]))
    logits, offsets, masks, strides = [], [], [], []
    for level in range(num_levels):
        steps = -(-length // 2**level)
        level_logits = rng.normal(0, logit_scale, (steps, num_classes))
        sprinkle = rng.random(level_logits.shape) < extreme_share
        level_logits[sprinkle] = rng.choice(EXTREMES, size=int(sprinkle.sum()))
        # Offsets are non-negative (ReLU * scale). Huge but finite: infinite ones are a pinned bug.
        level_offsets = np.abs(rng.normal(0, draw(st.sampled_from([0.5, 8.0, 1e6])), (steps, 2)))
        level_offsets[rng.random(steps) < extreme_share] = 0.0
        mask = rng.random(steps) < draw(st.sampled_from([1.0, 0.5, 0.0]))
        logits.append(torch.tensor(level_logits, dtype=torch.float32))
        offsets.append(torch.tensor(level_offsets, dtype=torch.float32))
        masks.append(torch.tensor(mask))
        strides.append(2**level)
    return logits, offsets, masks, strides


postprocess_configs = st.builds(
    PostprocessConfig,
    pre_nms_thresh=st.sampled_from([0.0, 0.001, 0.5]),
    pre_nms_topk=st.sampled_from([1, 50, 2000]),
    nms=st.sampled_from(["soft", "hard"]),
    iou_threshold=st.sampled_from([0.0, 0.5, 1.0]),
    sigma=st.sampled_from([0.1, 0.5, 5.0]),
    min_score=st.sampled_from([0.0, 0.001, 0.9]),
    max_detections=st.sampled_from([1, 100, 2000]),
    min_duration=st.sampled_from([0.0, 0.05, 3.0]),
)


@FUZZ
@given(output=network_outputs(), cfg=postprocess_configs)
def test_decode_and_nms_give_finite_ranked_segments_for_any_network_output(output, cfg):
    logits, offsets, masks, strides = output
    candidates = decode_video(logits, offsets, masks, strides, cfg)
    num_classes = logits[0].shape[1]
    assert torch.isfinite(candidates.segments).all()
    assert ((candidates.scores > cfg.pre_nms_thresh) & (candidates.scores <= 1)).all()
    assert (candidates.segments[:, 1] - candidates.segments[:, 0] > cfg.min_duration).all()
    assert len(candidates) <= cfg.pre_nms_topk * len(logits)

    segments, scores, labels = nms(candidates.segments, candidates.scores, candidates.labels, cfg)
    assert len(scores) <= min(cfg.max_detections, len(candidates))
    assert torch.isfinite(segments).all() and torch.isfinite(scores).all()
    assert (segments[:, 0] <= segments[:, 1]).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert (scores[:-1] >= scores[1:]).all(), "not ranked by score"
    assert ((labels >= 0) & (labels < num_classes)).all()
    if cfg.nms == "soft":
        assert (scores >= cfg.min_score).all()

    # no candidate comes back more often than it went in
    def rows(segs, labs):
        return Counter(map(tuple, torch.cat([segs, labs[:, None].to(segs.dtype)], 1).tolist()))

    available = rows(candidates.segments, candidates.labels)
    assert all(count <= available[row] for row, count in rows(segments, labels).items())


def test_decode_and_nms_on_a_ten_hour_video_at_once():
    # 450 000 steps (10 h at 12.5 steps/s), 7 classes, the demo's 5 levels: bounded by top-k, no crash
    rng = np.random.default_rng(0)
    cfg = PostprocessConfig(pre_nms_topk=1000, max_detections=500)
    steps = 450_000
    logits = [torch.tensor(rng.normal(-3, 2, (-(-steps // 2**level), 7)), dtype=torch.float32) for level in range(5)]
    offsets = [torch.tensor(np.abs(rng.normal(0, 4, (x.shape[0], 2))), dtype=torch.float32) for x in logits]
    masks = [torch.ones(x.shape[0], dtype=torch.bool) for x in logits]
    candidates = decode_video(logits, offsets, masks, [2**level for level in range(5)], cfg)
    assert len(candidates) == 5 * 1000
    segments, scores, labels = nms(candidates.segments, candidates.scores, candidates.labels, cfg)
    assert len(scores) == 500 and (scores[:-1] >= scores[1:]).all() and torch.isfinite(segments).all()


# ---------------------------------------------------------------------------------------------
# Scoring: any ground truth and predictions

NUM_CLASSES = 4
SCORE_CLASSES = [f"c{k}" for k in range(NUM_CLASSES)]
times = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@st.composite
def segments_of(draw, video_id: str, with_score: bool):
    items = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        start = draw(times)
        end = start + draw(st.sampled_from([1e-6, 0.5, 3.0, 50.0]))
        label = draw(st.integers(min_value=0, max_value=NUM_CLASSES - 1))
        if with_score:
            items.append(
                Detection(
                    video_id, start, end, label, SCORE_CLASSES[label], draw(st.floats(min_value=0.0, max_value=1.0))
                )
            )
        else:
            items.append(Segment(video_id, start, end, label, SCORE_CLASSES[label]))
    return items


@st.composite
def scoring_cases(draw):
    videos = [f"v{i}" for i in range(draw(st.integers(min_value=1, max_value=3)))]
    gt = {v: draw(segments_of(v, with_score=False)) for v in videos}
    # sometimes predict exactly the ground truth (ties at tIoU 1, perfect scores)
    perfect = draw(st.booleans())
    if perfect:
        pred = {v: [Detection(v, s.start, s.end, s.label_id, s.label, 1.0) for s in gt[v]] for v in videos}
    else:
        pred = {v: draw(segments_of(v, with_score=True)) for v in videos if draw(st.booleans())}
    return gt, pred, draw(st.sampled_from([0.0, 0.3, 1.0])), perfect


def all_numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from all_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@FUZZ
@given(case=scoring_cases())
def test_scores_are_fractions_and_valid_json_for_any_input(case):
    gt, pred, threshold, perfect = case
    if not any(gt.values()):
        with pytest.raises(InputError, match="no ground-truth segments"):
            score(gt, pred, SCORE_CLASSES, threshold)
        return
    result = score(gt, pred, SCORE_CLASSES, threshold)
    json.dumps(result, allow_nan=False)  # no NaN or Inf anywhere
    fractions = [result[k] for k in ("f1", "precision", "recall", "recall_miga", "average_mAP")]
    # the MiGA rule does not use a prediction up: one may find several gestures, so its precision can pass 1
    # (tests/evaluate/test_f1.py has the case), and its F1 = 2PR / (P + R) stays below 2R <= 2
    assert result["precision_miga"] >= 0 and 0 <= result["f1_miga"] <= 2 * result["recall_miga"] + 1e-9
    fractions += list(result["mAP"].values())
    detected = {d.label_id for items in pred.values() for d in items if d.score >= threshold}
    for row in result["per_class"].values():
        rates = [row["f1"], row["precision"], row["recall"]]
        # no instance and nothing detected as it: no F1 to give (null), as no AP; otherwise numbers
        assert (rates == [None] * 3) == (row["instances"] == 0 and row["label_id"] not in detected)
        # a ratio over nothing is none: recall without instances, precision without detections
        assert (row["recall"] is None) == (row["instances"] == 0)
        assert (row["precision"] is None) == (row["label_id"] not in detected)
        fractions += [r for r in rates if r is not None] + ([row["ap"]] if row["ap"] is not None else [])
        assert (row["ap"] is None) == (row["instances"] == 0)
    for value in fractions:
        assert 0.0 <= value <= 1.0
    assert all(math.isfinite(n) for n in all_numbers(result))
    assert result["num_ground_truth"] == sum(len(v) for v in gt.values())
    hard = sum(1 for items in pred.values() for d in items if d.score >= threshold)
    assert result["num_predictions"] == hard
    matrix = np.array(result["confusion"]["matrix"])
    assert matrix.sum() + sum(result["confusion"]["background"]) == hard
    if perfect:
        assert result["precision"] == result["recall"] == 1.0
        assert result["f1"] == pytest.approx(1.0, abs=1e-6)  # 2PR / (P + R + 1e-7), the starter kit's rule
        assert result["average_mAP"] == 1.0
