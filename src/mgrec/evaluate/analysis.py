"""Error analysis of a detector, following DETAD (Alwassel et al., "Diagnosing Error in Temporal
Action Detectors", ECCV 2018), computed by mgrec on `Segment` / `Detection` records, plus the
curves that show how a detector behaves around its operating point.

Two sets of detections can be analysed, and every result says which one it used (`which`):
- the ranked list (`analyze`): every detection, at one tIoU threshold (0.5 by default, as in the
  paper's Fig. 3 and in DETAD's THUMOS-14 setting), matched as ActivityNet mAP matches (tIoU >=);
- the hard set (`analyze_hard_set`): the detections with score >= the score threshold that F1 is
  computed on (`f1.hard_set`), matched exactly as the one-to-one F1 matches them (tIoU >
  `f1.F1_TIOU_THRESHOLD`), every match counted. Its missed segments are those F1 misses, which the
  report's timelines mark.
The definitions follow DETAD's public toolkit:

Matching. Within each class, predictions of all videos are taken in descending score order (ties
keep their input order); each matches the still unmatched ground-truth segment of its class and
video with the highest tIoU, if that tIoU >= threshold (`comparison=">="`, ActivityNet and DETAD)
or > threshold (`comparison=">"`, the MiGA F1). Videos share no segments, so this is also the
one-to-one F1's matching (per video and class in score order) when the comparison is ">". The
primitives are those of every metric (`mgrec.evaluate.matching`: `greedy_match`, `tiou_at_least`,
`tiou_above`).

Normalised precision (the "_N" in mAP_N). With N = (number of ground-truth segments) / (number of
classes that have any), a class with n_c segments has, after its first k predictions,
precision_N = R*N / (R*N + FP) where R = TP / n_c. It makes AP comparable between groups of
segments of different sizes (the bins below). AP is the interpolated area under the
(precision_N, recall) curve, computed by mAP's `interpolated_ap`.

Ground-truth characteristics (per segment):
- relative_length: segment length / the median length of the ground-truth segments of its class
  in the analysed videos (is an instance short or long for its class?);
- length: segment length in seconds;
- instances: number of segments of the same class in the same video;
- coverage (not analysed by default): segment length / video duration, DETAD's first
  characteristic (a segment that runs past the end of the video counts as coverage 1.0). Its
  THUMOS-14 bins (`COVERAGE_BINS`, fractions of the video) do not fit micro-gestures: a 1-2 s
  gesture in a minutes-long video covers ~1 % of it, and the demo puts 96 % of its test segments
  in the first bin. `relative_length` takes its place; pass `bins={"coverage": COVERAGE_BINS, ...}`
  to get it back.
Each is cut into bins (edges e0 < e1 < ...): bin i holds values in (e_i, e_i+1], the first bin
also e0 (`Bins.ranges` prints them so). The defaults (`DEFAULT_BINS`): relative length at 0.5,
0.8, 1.25 and 2 times the class median; the paper's SMG length and instance bins.

False negatives. A segment is missed when no prediction matches it. As in DETAD, a match whose
prediction comes at a rank where its class's cumulative precision_N is <= `fn_min_precision`
(0.05; 0 for the hard set) does not count: recovering a segment only deep in a flood of false
positives is not a detection. The false-negative rate of a bin is missed / all segments in it.

False-positive profile. Per class c with G_c ground-truth segments, the predictions of rank
(k-1)*G_c .. k*G_c - 1 form the k-th slice, k = 1..10 ("1G".."10G"). Each prediction is a true
positive (matched) or one error type, judged against the ground-truth segment of the video (any
class) with the highest tIoU ("reaches the threshold": the matching's comparison):
- double detection: tIoU reaches the threshold, same class (the segment was already taken);
- wrong label: tIoU reaches the threshold, other class;
- localization: `min_tiou` (0.1) <= tIoU, below the threshold, same class;
- confusion: `min_tiou` <= tIoU, below the threshold, other class;
- background: tIoU < `min_tiou` with every segment (or the video has none).
The profile gives the share of each type in each slice. The removal gain of an error type is the
mAP_N (over the top-10G predictions) after deleting the predictions of that type, minus the mAP_N
with them.

Sensitivity. For each bin, the mAP_N of the segments in that bin: per class, keep the segments in
the bin and the predictions that are unmatched or matched to one of them (predictions matched to
segments of other bins are left out), average AP_N over the classes with segments in the bin.
The sensitivity of a characteristic is max - min over its non-empty bins.

Around the operating point (not DETAD):
- `precision_recall_curves`: per class and tIoU threshold, precision and recall after each ranked
  detection, with the ranking and matching of `average_precision` (its AP is the curve's
  `interpolated_ap`);
- `f1_threshold_curve`: the one-to-one F1, precision and recall of the hard set at every score
  threshold (exact: each distinct detection score), which shows how sensitive F1 is to the
  threshold tuned on val.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from mgrec.errors import InputError
from mgrec.evaluate.average_precision import DEFAULT_TIOU_THRESHOLDS, interpolated_ap
from mgrec.evaluate.f1 import F1_TIOU_THRESHOLD, F1Result, apply_score_threshold, bar_words, f1_strict
from mgrec.evaluate.matching import bounds, greedy_match, scores, tiou_above, tiou_at_least, tiou_matrix
from mgrec.records import Detection, Segment

SIZE_LABELS = ("XS", "S", "M", "L", "XL")
ALL_CHARACTERISTICS = ("relative_length", "coverage", "length", "instances")
# How each characteristic's bin edges are printed: "(2, 5] s", "(0.8, 1.25] × class median".
CHARACTERISTIC_UNITS = {"relative_length": "× class median", "coverage": "of the video", "length": "s",
                        "instances": "per video"}
ERROR_TYPES = ("true_positive", "double_detection", "wrong_label", "localization", "confusion", "background")
ERROR_NAMES = {
    "true_positive": "True positive",
    "double_detection": "Double detection",
    "wrong_label": "Wrong label",
    "localization": "Localization",
    "confusion": "Confusion",
    "background": "Background",
}
RANKED_LIST = "ranked list"
HARD_SET = "hard set"
COMPARISONS = (">=", ">")


@dataclass(frozen=True)
class Bins:
    """Bin edges (increasing) and one label per bin; bin i is (edges[i], edges[i+1]], the first
    bin also includes edges[0]. Without labels, up to five bins are XS, S, M, L, XL; more bins are
    labelled by their ranges."""

    edges: tuple[float, ...]
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        edges = tuple(float(e) for e in self.edges)
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise InputError(f"bin edges must be at least two increasing numbers, got {list(self.edges)}")
        labels = tuple(self.labels) or _default_labels(edges)
        if len(labels) != len(edges) - 1:
            raise InputError(f"bin edges {list(edges)} make {len(edges) - 1} bins but {len(labels)} labels were given")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, value: float) -> int | None:
        """The bin holding `value`, or None when it lies outside all bins."""
        if value < self.edges[0] or value > self.edges[-1]:
            return None
        # searchsorted(side="left") on the inner edges gives (e_i, e_i+1] intervals.
        return int(np.searchsorted(self.edges[1:-1], value, side="left"))

    def ranges(self) -> tuple[str, ...]:
        """Every bin's edges as an interval: "[0, 2]", "(2, 5]", ..., "(9.75, ∞)"."""
        return tuple(
            f"{'[' if i == 0 else '('}{_number(a)}, {_number(b)}{')' if math.isinf(b) else ']'}"
            for i, (a, b) in enumerate(zip(self.edges, self.edges[1:]))
        )


def _number(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:g}"


def _default_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    count = len(edges) - 1
    if count <= len(SIZE_LABELS):
        return SIZE_LABELS[:count]
    return tuple(f"({a:g}, {b:g}]" for a, b in zip(edges, edges[1:]))


RELATIVE_LENGTH_BINS = Bins((0.0, 0.5, 0.8, 1.25, 2.0, math.inf))  # times the median length of the class
COVERAGE_BINS = Bins((0.0, 0.02, 0.04, 0.06, 0.08, 1.0))  # DETAD's THUMOS-14 coverage bins
LENGTH_BINS = Bins((0.0, 2.0, 5.0, 7.0, 9.75, math.inf))  # seconds; the paper's SMG bins
INSTANCE_BINS = Bins((0.0, 15.0, 100.0, 200.0, math.inf))  # the paper's SMG bins (counts are >= 1)
# the characteristics analysed by default, in this order
DEFAULT_BINS = {"relative_length": RELATIVE_LENGTH_BINS, "length": LENGTH_BINS, "instances": INSTANCE_BINS}


@dataclass(frozen=True)
class GroundTruthTraits:
    """The characteristics of one ground-truth segment, `gt[video_id][index]`."""

    video_id: str
    index: int
    label_id: int
    relative_length: float
    coverage: float
    length: float
    instances: int

    def value(self, characteristic: str) -> float:
        return float(getattr(self, characteristic))


def median_lengths(gt: Mapping[str, Sequence[Segment]]) -> dict[int, float]:
    """Per class id, the median length in seconds of its ground-truth segments (classes without any are absent)."""
    lengths: dict[int, list[float]] = {}
    for segments in gt.values():
        for segment in segments:
            lengths.setdefault(segment.label_id, []).append(segment.duration)
    return {label_id: float(np.median(values)) for label_id, values in sorted(lengths.items())}


def characterize(
    gt: Mapping[str, Sequence[Segment]], video_durations: Mapping[str, float]
) -> list[GroundTruthTraits]:
    """Relative length, coverage, length and same-class instance count of every ground-truth segment."""
    traits = []
    for video_id, segments in gt.items():
        if segments and video_id not in video_durations:
            raise InputError(f"video {video_id}: no duration known, needed for the coverage of its segments")
        duration = video_durations.get(video_id, 0.0)
        if segments and not duration > 0:
            raise InputError(f"video {video_id}: duration must be positive for coverage, got {duration}")
        for index, segment in enumerate(segments):
            if not segment.end > segment.start:
                place = segment.source or f"video {video_id} segment #{index}"
                raise InputError(f"{place}: segment [{segment.start}, {segment.end}] has no length")
    medians = median_lengths(gt)
    for video_id, segments in gt.items():
        per_class: dict[int, int] = {}
        for segment in segments:
            per_class[segment.label_id] = per_class.get(segment.label_id, 0) + 1
        for index, segment in enumerate(segments):
            traits.append(
                GroundTruthTraits(
                    video_id=video_id,
                    index=index,
                    label_id=segment.label_id,
                    relative_length=segment.duration / medians[segment.label_id],
                    coverage=min(1.0, segment.duration / video_durations[video_id]),
                    length=segment.duration,
                    instances=per_class[segment.label_id],
                )
            )
    return traits


# ---------------------------------------------------------------------------------------------
# Matching

DetectionKey = tuple[str, int]  # (video_id, index into ranked[video_id])
SegmentKey = tuple[str, int]  # (video_id, index into gt[video_id])


def _reaches(comparison: str):
    """The threshold comparison of a matching rule: tIoU >= t (ActivityNet, DETAD) or > t (MiGA F1)."""
    if comparison not in COMPARISONS:
        raise InputError(f"tIoU comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}")
    return tiou_at_least if comparison == ">=" else tiou_above


def rank_by_class(ranked: Mapping[str, Sequence[Detection]]) -> dict[int, list[DetectionKey]]:
    """Per class id, the predictions of all videos in descending score order (ties: input order)."""
    keys = [(video_id, i) for video_id, detections in ranked.items() for i in range(len(detections))]
    order = sorted(range(len(keys)), key=lambda n: -ranked[keys[n][0]][keys[n][1]].score)
    by_class: dict[int, list[DetectionKey]] = {}
    for n in order:
        video_id, i = keys[n]
        by_class.setdefault(ranked[video_id][i].label_id, []).append(keys[n])
    return by_class


def match_predictions(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    by_class: Mapping[int, Sequence[DetectionKey]],
    tiou: float,
    comparison: str = ">=",
) -> dict[DetectionKey, SegmentKey]:
    """Greedy one-to-one matching per class in score order (see the module docstring).

    Returns the matched segment of every matched prediction; unmatched ones are absent.
    """
    reaches = _reaches(comparison)
    matches: dict[DetectionKey, SegmentKey] = {}
    for label_id, keys in by_class.items():
        # Videos never share a segment, so each video's predictions (still in rank order) match on their own.
        ranked_in_video: dict[str, list[int]] = {}
        for video_id, i in keys:
            ranked_in_video.setdefault(video_id, []).append(i)
        for video_id, indices in ranked_in_video.items():
            segments = gt.get(video_id, [])
            candidates = [j for j, segment in enumerate(segments) if segment.label_id == label_id]
            if not candidates:
                continue
            overlaps = tiou_matrix(
                bounds([ranked[video_id][i] for i in indices]), bounds([segments[j] for j in candidates])
            )
            for row, column in greedy_match(overlaps, reaches(overlaps, tiou)):
                matches[(video_id, indices[row])] = (video_id, candidates[column])
    return matches


def instances_per_class(gt: Mapping[str, Sequence[Segment]]) -> float:
    """DETAD's N: ground-truth segments per class, over the classes that have any."""
    counts = _gt_counts(gt)
    if not counts:
        raise InputError("no ground-truth segments: nothing to analyse")
    return sum(counts.values()) / len(counts)


def _gt_counts(gt: Mapping[str, Sequence[Segment]]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for segments in gt.values():
        for segment in segments:
            counts[segment.label_id] = counts.get(segment.label_id, 0) + 1
    return counts


def normalized_precision_recall(
    is_tp: np.ndarray, num_gt: int, per_class: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (precision_N, recall) over a ranked list of true-positive flags."""
    tp = np.cumsum(is_tp, dtype=np.float64)
    fp = np.cumsum(~is_tp, dtype=np.float64)
    recall = tp / num_gt
    scaled = recall * per_class
    # scaled + fp is positive from the first prediction on: each one is either a TP or an FP
    return scaled / (scaled + fp), recall


def normalized_ap(is_tp: np.ndarray, num_gt: int, per_class: float) -> float:
    """AP_N of one class from the true-positive flags of its ranked predictions."""
    precision, recall = normalized_precision_recall(np.asarray(is_tp, dtype=bool), num_gt, per_class)
    return interpolated_ap(precision, recall)


def drop_low_precision_matches(
    matches: Mapping[DetectionKey, SegmentKey],
    by_class: Mapping[int, Sequence[DetectionKey]],
    gt_counts: Mapping[int, int],
    per_class: float,
    min_precision: float,
) -> dict[DetectionKey, SegmentKey]:
    """The matches whose prediction ranks where its class's cumulative precision_N > min_precision."""
    kept = {}
    for label_id, keys in by_class.items():
        if label_id not in gt_counts:
            continue
        is_tp = np.array([key in matches for key in keys], dtype=bool)
        precision, _ = normalized_precision_recall(is_tp, gt_counts[label_id], per_class)
        for key, tp, value in zip(keys, is_tp, precision):
            if tp and value > min_precision:
                kept[key] = matches[key]
    return kept


def error_type(
    detection: Detection,
    segments: Sequence[Segment],
    matched: bool,
    tiou: float,
    min_tiou: float,
    comparison: str = ">=",
) -> str:
    """True positive or the DETAD error type of one prediction (see the module docstring)."""
    if matched:
        return "true_positive"
    if not segments:
        return "background"
    overlaps = tiou_matrix(bounds([detection]), bounds(segments))[0]
    nearest = int(np.argmax(overlaps))  # the first segment on ties
    same_class = segments[nearest].label_id == detection.label_id
    if _reaches(comparison)(overlaps[nearest], tiou):
        return "double_detection" if same_class else "wrong_label"
    if tiou_at_least(overlaps[nearest], min_tiou):
        return "localization" if same_class else "confusion"
    return "background"


# ---------------------------------------------------------------------------------------------
# The three analyses


@dataclass(frozen=True)
class CharacteristicAnalysis:
    """False-negative rate and mAP_N of each bin of one characteristic."""

    name: str
    bins: Bins
    gt_counts: tuple[int, ...]
    false_negative_rates: tuple[float | None, ...]  # None: no segment in the bin
    map_n: tuple[float | None, ...]  # None: no segment in the bin

    @property
    def sensitivity(self) -> float | None:
        """max - min of mAP_N over the bins that hold segments."""
        values = [v for v in self.map_n if v is not None]
        return max(values) - min(values) if values else None

    @property
    def unit(self) -> str:
        return CHARACTERISTIC_UNITS.get(self.name, "")


@dataclass(frozen=True)
class FalsePositiveProfile:
    """Error types of the predictions in the slices 1G..10G, and the gain of removing each type."""

    counts: tuple[dict[str, int], ...]  # slice k-1 -> error type -> number of predictions
    removal_gain: dict[str, float]  # error type (not true_positive) -> mAP_N gain

    @property
    def fractions(self) -> tuple[dict[str, float], ...]:
        """Share of each type per slice; all 0.0 for a slice without predictions."""
        shares = []
        for counts in self.counts:
            total = sum(counts.values())
            shares.append({name: (count / total if total else 0.0) for name, count in counts.items()})
        return tuple(shares)


@dataclass(frozen=True)
class ErrorAnalysis:
    """The three DETAD analyses of one set of detections (`which`: the ranked list or the hard set)."""

    which: str  # RANKED_LIST or HARD_SET
    tiou: float
    comparison: str  # ">=" (ActivityNet, DETAD) or ">" (the MiGA F1): how a tIoU reaches `tiou`
    score_threshold: float | None  # the hard set's threshold; None for the ranked list
    min_tiou: float
    num_ground_truth: int
    num_predictions: int
    instances_per_class: float
    map_n: float  # over all segments and predictions: the reference line of the sensitivity plot
    characteristics: dict[str, CharacteristicAnalysis]
    false_positives: FalsePositiveProfile
    missed: frozenset[SegmentKey]  # the segments counted as false negatives
    median_lengths: dict[int, float]  # class id -> median segment length (s): relative length's unit
    class_thresholds: list[float] | None = None  # the hard set's bar per class, where it was cut so

    def describe(self) -> str:
        """"ranked list, tIoU >= 0.5", "hard set (score >= 0.41), tIoU > 0.3" or, cut per class, "hard set (score
        >= its class's threshold (0.2 to 0.6)), tIoU > 0.3"."""
        which = self.which
        if self.score_threshold is not None:
            which = f"{self.which} (score ≥ {bar_words(self.score_threshold, self.class_thresholds)})"
        return f"{which}, tIoU {'≥' if self.comparison == '>=' else '>'} {self.tiou:g}"

    def to_json(self) -> dict:
        """Plain JSON-ready dict (bins as edges, ranges and labels; inf as null)."""
        def edge(value: float) -> float | None:
            return None if math.isinf(value) else value

        return {
            "which": self.which,
            "tiou": self.tiou,
            "comparison": self.comparison,
            "score_threshold": self.score_threshold,
            "class_thresholds": self.class_thresholds,
            "min_tiou": self.min_tiou,
            "num_ground_truth": self.num_ground_truth,
            "num_predictions": self.num_predictions,
            "num_missed": len(self.missed),
            "instances_per_class": self.instances_per_class,
            "map_n": self.map_n,
            "median_lengths": {str(label_id): value for label_id, value in self.median_lengths.items()},
            "characteristics": {
                name: {
                    "edges": [edge(e) for e in c.bins.edges],
                    "ranges": list(c.bins.ranges()),
                    "unit": c.unit,
                    "labels": list(c.bins.labels),
                    "gt_counts": list(c.gt_counts),
                    "false_negative_rates": list(c.false_negative_rates),
                    "map_n": list(c.map_n),
                    "sensitivity": c.sensitivity,
                }
                for name, c in self.characteristics.items()
            },
            "false_positives": {
                "slices": [f"{k + 1}G" for k in range(len(self.false_positives.counts))],
                "counts": list(self.false_positives.counts),
                "fractions": list(self.false_positives.fractions),
                "removal_gain": self.false_positives.removal_gain,
            },
        }


def _bin_of(traits: GroundTruthTraits, name: str, bins: Bins, gt: Mapping[str, Sequence[Segment]]) -> int:
    value = traits.value(name)
    index = bins.index(value)
    if index is None:
        segment = gt[traits.video_id][traits.index]
        place = segment.source or f"video {traits.video_id} segment #{traits.index}"
        raise InputError(f"{place}: {name} {value:g} lies outside the {name} bins {list(bins.edges)}")
    return index


def false_negative_rates(
    bin_of_segment: Mapping[SegmentKey, int], num_bins: int, matched: set[SegmentKey]
) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """(segments per bin, fraction of them not in `matched`; None for empty bins)."""
    totals, missed = [0] * num_bins, [0] * num_bins
    for key, b in bin_of_segment.items():
        totals[b] += 1
        missed[b] += key not in matched
    return tuple(totals), tuple((m / t if t else None) for m, t in zip(missed, totals))


def map_n_per_bin(
    bin_of_segment: Mapping[SegmentKey, int],
    num_bins: int,
    by_class: Mapping[int, Sequence[DetectionKey]],
    matches: Mapping[DetectionKey, SegmentKey],
    gt: Mapping[str, Sequence[Segment]],
    per_class: float,
) -> tuple[float | None, ...]:
    """mAP_N of the segments in each bin (see "Sensitivity" in the module docstring)."""
    values: list[float | None] = []
    for b in range(num_bins):
        counts: dict[int, int] = {}
        for (video_id, j), segment_bin in bin_of_segment.items():
            if segment_bin == b:
                label_id = gt[video_id][j].label_id
                counts[label_id] = counts.get(label_id, 0) + 1
        if not counts:
            values.append(None)
            continue
        aps = []
        for label_id, num_gt in counts.items():
            flags = [
                key in matches
                for key in by_class.get(label_id, [])
                if key not in matches or bin_of_segment[matches[key]] == b
            ]
            aps.append(normalized_ap(np.array(flags, dtype=bool), num_gt, per_class))
        values.append(float(np.mean(aps)))
    return tuple(values)


def false_positive_profile(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    by_class: Mapping[int, Sequence[DetectionKey]],
    matches: Mapping[DetectionKey, SegmentKey],
    tiou: float,
    min_tiou: float,
    per_class: float,
    slices: int = 10,
    comparison: str = ">=",
) -> FalsePositiveProfile:
    """Error types in the slices 1G..`slices`G and the mAP_N gain of removing each error type."""
    gt_counts = _gt_counts(gt)
    counts = [{name: 0 for name in ERROR_TYPES} for _ in range(slices)]
    kept_types: dict[int, list[str]] = {}  # class -> error types of its top slices*G_c predictions
    for label_id, num_gt in gt_counts.items():
        keys = by_class.get(label_id, [])[: slices * num_gt]
        types = [
            error_type(ranked[v][i], gt.get(v, []), (v, i) in matches, tiou, min_tiou, comparison) for v, i in keys
        ]
        kept_types[label_id] = types
        for rank, name in enumerate(types):
            counts[rank // num_gt][name] += 1

    def mean_ap(removed: str | None) -> float:
        aps = []
        for label_id, num_gt in gt_counts.items():
            flags = [name == "true_positive" for name in kept_types[label_id] if name != removed]
            aps.append(normalized_ap(np.array(flags, dtype=bool), num_gt, per_class))
        return float(np.mean(aps))

    base = mean_ap(None)
    gains = {name: mean_ap(name) - base for name in ERROR_TYPES if name != "true_positive"}
    return FalsePositiveProfile(counts=tuple(counts), removal_gain=gains)


def analyze(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    video_durations: Mapping[str, float],
    tiou: float = 0.5,
    bins: Mapping[str, Bins | None] | None = None,
    min_tiou: float = 0.1,
    fn_min_precision: float = 0.05,
    slices: int = 10,
    comparison: str = ">=",
) -> ErrorAnalysis:
    """DETAD's false-negative, false-positive and sensitivity analyses of ranked predictions.

    `gt` holds every video of the analysed split (possibly with no segments); `ranked` the
    predictions of (some of) those videos; `video_durations` the duration in seconds of every
    video with segments. Predictions for videos not in `gt` are an error. `bins` changes
    `DEFAULT_BINS`: characteristic (of `ALL_CHARACTERISTICS`) -> its bins, or None to leave a
    default one out. `comparison` is how a tIoU reaches `tiou`.
    """
    unknown = sorted(set(ranked) - set(gt))
    if unknown:
        raise InputError(
            f"predictions for {len(unknown)} video(s) without a ground-truth entry: {', '.join(unknown[:5])}"
            + (" ..." if len(unknown) > 5 else "")
        )
    if not 0 < min_tiou <= tiou <= 1:
        raise InputError(f"tIoU thresholds must satisfy 0 < min_tiou <= tiou <= 1, got {min_tiou} and {tiou}")
    merged = {**DEFAULT_BINS, **(bins or {})}
    unknown_characteristics = sorted(set(merged) - set(ALL_CHARACTERISTICS))
    if unknown_characteristics:
        raise InputError(
            f"unknown characteristic(s) {', '.join(unknown_characteristics)}; expected {', '.join(ALL_CHARACTERISTICS)}"
        )
    chosen = {name: merged[name] for name in ALL_CHARACTERISTICS if merged.get(name) is not None}
    _reaches(comparison)
    per_class = instances_per_class(gt)
    gt_counts = _gt_counts(gt)
    traits = characterize(gt, video_durations)
    by_class = rank_by_class(ranked)
    matches = match_predictions(gt, ranked, by_class, tiou, comparison)
    detected = set(drop_low_precision_matches(matches, by_class, gt_counts, per_class, fn_min_precision).values())

    characteristics = {}
    for name in chosen:
        bin_of_segment = {(t.video_id, t.index): _bin_of(t, name, chosen[name], gt) for t in traits}
        totals, fn_rates = false_negative_rates(bin_of_segment, len(chosen[name]), detected)
        characteristics[name] = CharacteristicAnalysis(
            name=name,
            bins=chosen[name],
            gt_counts=totals,
            false_negative_rates=fn_rates,
            map_n=map_n_per_bin(bin_of_segment, len(chosen[name]), by_class, matches, gt, per_class),
        )

    overall = [
        normalized_ap(np.array([k in matches for k in by_class.get(label_id, [])], dtype=bool), num_gt, per_class)
        for label_id, num_gt in gt_counts.items()
    ]
    return ErrorAnalysis(
        which=RANKED_LIST,
        tiou=tiou,
        comparison=comparison,
        score_threshold=None,
        min_tiou=min_tiou,
        num_ground_truth=sum(gt_counts.values()),
        num_predictions=sum(len(d) for d in ranked.values()),
        instances_per_class=per_class,
        map_n=float(np.mean(overall)),
        characteristics=characteristics,
        false_positives=false_positive_profile(
            gt, ranked, by_class, matches, tiou, min_tiou, per_class, slices, comparison
        ),
        missed=frozenset((t.video_id, t.index) for t in traits) - detected,
        median_lengths=median_lengths(gt),
    )


def analyze_hard_set(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    video_durations: Mapping[str, float],
    score_threshold: float,
    bins: Mapping[str, Bins | None] | None = None,
    min_tiou: float = 0.1,
    slices: int = 10,
    class_thresholds: Sequence[float] | None = None,
) -> ErrorAnalysis:
    """The same analyses at the operating point: the hard set (score >= `score_threshold`, or >= their
    class's `class_thresholds`) of `ranked`, matched as the one-to-one F1 matches (tIoU > `F1_TIOU_THRESHOLD`),
    every match counted (no precision floor). Its `missed` segments are exactly those `f1.f1_strict` misses."""
    hard = apply_score_threshold(ranked, score_threshold, class_thresholds)
    result = analyze(gt, hard, video_durations, tiou=F1_TIOU_THRESHOLD, bins=bins, min_tiou=min_tiou,
                     fn_min_precision=0.0, slices=slices, comparison=">")
    return replace(result, which=HARD_SET, score_threshold=float(score_threshold),
                   class_thresholds=None if class_thresholds is None else [float(t) for t in class_thresholds])


# ---------------------------------------------------------------------------------------------
# Around the operating point


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall of one class at one tIoU after each of its ranked detections."""

    label_id: int
    tiou: float
    num_gt: int
    scores: np.ndarray  # the class's detection scores, descending
    precision: np.ndarray
    recall: np.ndarray

    @property
    def ap(self) -> float:
        """The interpolated AP: `average_precision`'s AP of this class at this tIoU."""
        return interpolated_ap(self.precision, self.recall)

    def at_threshold(self, score_threshold: float) -> tuple[float, float] | None:
        """(precision, recall) of the detections with score >= `score_threshold`; None when there are none."""
        count = int(np.count_nonzero(self.scores >= score_threshold))
        return None if count == 0 else (float(self.precision[count - 1]), float(self.recall[count - 1]))


def precision_recall_curves(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    tious: Sequence[float] = DEFAULT_TIOU_THRESHOLDS,
) -> dict[float, dict[int, PRCurve]]:
    """tIoU -> class id -> PR curve, for every class with ground truth (ActivityNet ranking and matching:
    all videos' detections of a class by descending score, tIoU >= threshold)."""
    gt_counts = _gt_counts(gt)
    by_class = rank_by_class(ranked)
    curves: dict[float, dict[int, PRCurve]] = {}
    for tiou in tious:
        matches = match_predictions(gt, ranked, by_class, float(tiou))
        curves[float(tiou)] = {}
        for label_id, num_gt in sorted(gt_counts.items()):
            keys = by_class.get(label_id, [])
            is_tp = np.array([key in matches for key in keys], dtype=bool)
            tp = np.cumsum(is_tp, dtype=np.float64)
            precision = tp / np.arange(1, len(keys) + 1) if keys else np.zeros(0)
            curves[float(tiou)][label_id] = PRCurve(
                label_id=label_id,
                tiou=float(tiou),
                num_gt=num_gt,
                scores=scores([ranked[v][i] for v, i in keys]),
                precision=precision,
                recall=tp / num_gt,
            )
    return curves


@dataclass(frozen=True)
class ThresholdCurve:
    """One-to-one F1 (with its precision and recall) of the hard set at each score threshold.

    `thresholds` are the distinct detection scores, ascending. Between two of them the hard set
    does not change: any threshold t in (thresholds[k-1], thresholds[k]] gives the values at k.
    """

    thresholds: np.ndarray
    num_gt: int
    num_predictions: np.ndarray  # size of the hard set at each threshold
    correct: np.ndarray  # its one-to-one matches
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray

    def at(self, score_threshold: float) -> F1Result | None:
        """Precision, recall and F1 of the hard set at `score_threshold` (None above every score)."""
        k = int(np.searchsorted(self.thresholds, score_threshold, side="left"))
        if k == len(self.thresholds):
            return None
        return F1Result.from_counts(int(self.correct[k]), self.num_gt, int(self.num_predictions[k]))

    @property
    def best_threshold(self) -> float | None:
        """The threshold with the highest F1 (the highest such on ties, as `f1.tune_score_threshold`)."""
        if not len(self.thresholds):
            return None
        return float(self.thresholds[np.flatnonzero(self.f1 == self.f1.max()).max()])


def f1_threshold_curve(
    gt: Mapping[str, Sequence[Segment]],
    ranked: Mapping[str, Sequence[Detection]],
    tiou_threshold: float = F1_TIOU_THRESHOLD,
) -> ThresholdCurve:
    """F1, precision and recall of `f1.f1_strict` on the hard set at every distinct score.

    One matching pass suffices: the one-to-one matching takes detections in descending score order
    and never looks at lower-scored ones, so the hard set at t keeps exactly the matches of the
    full list whose detection scores >= t (as in `f1.tune_score_threshold`).
    """
    strict = f1_strict(gt, ranked, tiou_threshold)
    all_scores = np.sort(np.concatenate([scores(items) for items in ranked.values()] + [np.zeros(0)]))
    match_scores = np.sort(np.array([ranked[m.video_id][m.pred_index].score for m in strict.matches], dtype=float))
    thresholds = np.unique(all_scores)
    num_pred = all_scores.size - np.searchsorted(all_scores, thresholds, side="left")
    correct = match_scores.size - np.searchsorted(match_scores, thresholds, side="left")
    results = [F1Result.from_counts(int(c), strict.overall.num_gt, int(n)) for c, n in zip(correct, num_pred)]
    return ThresholdCurve(
        thresholds=thresholds,
        num_gt=strict.overall.num_gt,
        num_predictions=num_pred,
        correct=correct,
        precision=np.array([r.precision for r in results]),
        recall=np.array([r.recall for r in results]),
        f1=np.array([r.f1 for r in results]),
    )
