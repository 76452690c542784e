"""Online detection: offline equivalence, one emission per gesture, latency bounds, bounded memory.

Most tests use a *pointwise* stand-in network whose predictions are written into the features: at the
centre step of each gesture, channel k (its class) holds a high logit and the last two channels hold the
distances to its start and end. Its output at a step depends on that step only, so an online window
predicts exactly what the whole file predicts, and the expected emissions are known by construction.
"""

from __future__ import annotations

import datetime
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers import one_torch_thread  # noqa: F401 (autouse)
from torch import nn

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, load_config
from mgrec.data.features import FeatureSidecar, write_features
from mgrec.errors import InputError
from mgrec.evaluate.matching import tiou
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import (
    Emission,
    FeatureWindow,
    OnlineDetector,
    StreamInterrupted,
    StreamSummary,
    chunks_of,
    hard_set_postprocess,
    stream_file,
    stream_files,
)
from mgrec.model.detector import DetectorOutput, build_detector
from mgrec.postprocess.video import detect_video
from mgrec.run import RunDir

REPO = Path(__file__).resolve().parents[2]
NUM_CLASSES = 3
FPS = 50.0  # with stride 4: 12.5 feature steps per second, 0.08 s per step
STEP_SECONDS = 4 / FPS
GESTURE_LOGIT = 4.0  # sigmoid 0.982
BACKGROUND_LOGIT = -10.0  # below pre_nms_thresh: no candidate at all



class PointwiseModel(nn.Module):
    """Reads its predictions from the features (see the module docstring).

    `jitter` > 0: every call shifts each predicted segment by a random whole number of steps in
    [-jitter, jitter] (a new draw per call), like a network whose boundaries move between updates.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, max_div_factor: int = 4, jitter: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.max_div_factor = max_div_factor
        self.jitter = jitter
        self.calls = 0
        self.anchor = nn.Parameter(torch.zeros(()))  # detect_video asks the parameters for the device

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        assert features.shape[2] % self.max_div_factor == 0
        k = self.num_classes
        logits = features[:, :k].transpose(1, 2)
        offsets = features[:, k:].transpose(1, 2).clone()
        if self.jitter:
            generator = torch.Generator().manual_seed(self.calls)
            shift = torch.randint(-self.jitter, self.jitter + 1, offsets.shape[:2], generator=generator).float()
            offsets = torch.stack([offsets[..., 0] - shift, offsets[..., 1] + shift], dim=-1)
        self.calls += 1
        return DetectorOutput([logits], [offsets.clamp(min=0)], [mask[:, 0]], [1])


def pointwise_detector(model: nn.Module, max_seq_len: int = 64) -> OfflineDetector:
    config = Config(
        data=DataConfig(feature_dim=NUM_CLASSES + 2, stride=4, window=16, max_seq_len=max_seq_len),
        model=ModelConfig(input_dim=NUM_CLASSES + 2, num_classes=NUM_CLASSES, num_levels=1,
                          regression_ranges=[[0, 10000]]),
    )
    classes = [f"g{k}" for k in range(NUM_CLASSES)]
    return OfflineDetector(model, config, classes, config.postprocess, Path("."))


def draw_gestures(length: int, rng: np.random.Generator, min_len: int, max_len: int, max_gap: int,
                  twin_every: int = 0) -> list[tuple[int, int, int]]:
    """(start, end, class) in feature steps, separated by gaps; every `twin_every`-th gesture gets an
    overlapping twin of the same class, shifted by 30% (tIoU 0.54 to 0.71), which Soft-NMS keeps
    apart above the score threshold."""
    gestures, step, count = [], int(rng.integers(1, max_gap + 1)), 0
    while True:
        size = int(rng.integers(min_len, max_len + 1))
        shift = max(1, int(0.3 * size))
        if step + size + shift >= length - 1:
            return gestures
        label = int(rng.integers(NUM_CLASSES))
        gestures.append((step, step + size, label))
        count += 1
        if twin_every and count % twin_every == 0:
            gestures.append((step + shift, step + size + shift, label))
            step += shift
        step += size + int(rng.integers(1, max_gap + 1))


def encode(length: int, gestures: list[tuple[int, int, int]]) -> np.ndarray:
    features = np.zeros((length, NUM_CLASSES + 2), dtype=np.float32)
    features[:, :NUM_CLASSES] = BACKGROUND_LOGIT
    for start, end, label in gestures:
        centre = (start + end) // 2
        features[centre, label] = GESTURE_LOGIT
        features[centre, NUM_CLASSES:] = (centre - start, end - centre)
    return features


def random_chunks(features: np.ndarray, rng: np.random.Generator, max_size: int):
    begin = 0
    while begin < len(features):
        size = int(rng.integers(1, max_size + 1))
        yield features[begin : begin + size]
        begin += size


def key(d) -> tuple:
    return (d.label_id, round(d.start, 9), round(d.end, 9), d.start_frame, d.end_frame)


def duplicates(detections) -> list[tuple]:
    return [
        (a, b)
        for i, a in enumerate(detections)
        for b in detections[i + 1 :]
        if a.label_id == b.label_id and tiou(a.start, a.end, b.start, b.end) > 0.5
    ]


def test_feature_window_keeps_the_newest_rows():
    rng = np.random.default_rng(0)
    window = FeatureWindow(length=10, dim=2)
    everything = np.zeros((0, 2), dtype=np.float32)
    for _ in range(200):
        rows = rng.normal(size=(int(rng.integers(0, 11)), 2)).astype(np.float32)
        window.append(rows)
        everything = np.concatenate([everything, rows])
        np.testing.assert_array_equal(window.view(), everything[-10:])
        assert window.capacity == 20
    with pytest.raises(ValueError):
        window.append(np.zeros((11, 2), dtype=np.float32))


@pytest.mark.parametrize("hop, lookahead, max_chunk", [(7, 1.0, 40), (1, 0.5, 3), (16, 2.0, 200)])
def test_sliding_window_matches_offline_and_latency_is_bounded(hop, lookahead, max_chunk):
    rng = np.random.default_rng(hop)
    gestures = draw_gestures(1000, rng, min_len=6, max_len=30, max_gap=20, twin_every=4)
    features = encode(1000, gestures)
    detector = pointwise_detector(PointwiseModel())
    offline = detector.hard_set(detector.detect(features, video_id="v", fps=FPS))
    assert len(offline) == len(gestures)
    assert duplicates(offline), "the stream should hold same-class pairs that NMS keeps apart"

    history = 100  # far shorter than the stream: the window slides
    online = OnlineDetector(detector, FPS, lookahead=lookahead, hop=hop, history=history, video_id="v")
    pushed, flushed = [], []
    for chunk in random_chunks(features, rng, max_chunk):
        pushed += online.push(chunk)
    flushed = online.flush()
    emitted = [e.detection for e in pushed + flushed]

    assert sorted(map(key, emitted)) == sorted(map(key, offline))
    assert all(d.video_id == "v" for d in emitted)
    hop_seconds = hop * STEP_SECONDS
    for e in pushed:
        assert lookahead - 1e-9 <= e.latency < lookahead + hop_seconds + 1e-9
        # updates happen every hop steps: emitted_at is the stream time of a multiple of hop steps
        grid = online.grid
        steps = round((e.emitted_at * grid.fps - grid.window) / grid.stride) + 1
        assert steps % hop == 0 and abs(grid.covered_seconds(steps) - e.emitted_at) < 1e-9
    end_of_stream = online.grid.covered_seconds(len(features))
    assert all(e.emitted_at == end_of_stream and e.latency >= 0 for e in flushed)
    assert pushed and max(e.detection.end for e in pushed) <= end_of_stream - lookahead
    # the emissions of one update come in the order the gestures ended
    assert [e.detection.end for e in pushed] == sorted(e.detection.end for e in pushed)


def tiny_network_detector(seed: int = 0, normalize: str = "none") -> OfflineDetector:
    torch.manual_seed(seed)
    model_cfg = ModelConfig(input_dim=16, num_classes=3, embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                            regression_ranges=[[0, 4], [4, 8], [8, 10000]], drop_path=0.0)
    # An untrained network scores every (step, class) near the prior: keep NMS short.
    post = PostprocessConfig(max_detections=40)
    config = Config(data=DataConfig(feature_dim=16, stride=4, window=16, max_seq_len=64, normalize=normalize),
                    model=model_cfg, postprocess=post)
    return OfflineDetector(build_detector(model_cfg).eval(), config, ["a", "b", "c"], post, Path("."))


@pytest.mark.parametrize("normalize, second_opinion", [("none", 0.0), ("video", 0.0), ("video", 0.5)])
def test_whole_stream_in_view_equals_offline_with_a_real_network(normalize, second_opinion):
    # data.normalize = video: offline standardises by the whole video, a stream by the steps received so far,
    # which at the update deciding everything (the last) are the whole stream. A second opinion rescores both
    # alike, and the stream's early cut (candidates that cannot reach the threshold after it) keeps the hard set.
    from mgrec.postprocess.second_opinion import SecondOpinion, SegmentClassifier

    detector = tiny_network_detector(normalize=normalize)
    features = np.random.default_rng(1).normal(loc=3.0, scale=2.0, size=(150, 16)).astype(np.float32)
    if second_opinion:
        rng = np.random.default_rng(4)
        starts = rng.integers(0, 130, 40)
        gestures = (rng.normal(size=(150, 16)), np.stack([starts, starts + rng.integers(2, 20, 40)], 1),
                    rng.integers(0, 3, 40))
        detector.second_opinion = SecondOpinion(SegmentClassifier.fit([gestures], 3), second_opinion)
        detector.postprocess = replace(detector.postprocess, second_opinion=second_opinion)
    ranked = detector.detect(features, video_id="v", fps=FPS)
    # an untrained network scores about the class prior: cut its ranked list at its 12th score
    detector.postprocess = replace(detector.postprocess, score_threshold=ranked[11].score)
    offline = detector.hard_set(ranked)
    assert len(offline) >= 12

    # the window holds the whole stream, and nothing is final before the end
    stream_seconds = detector.grid(FPS).covered_seconds(150)
    online = OnlineDetector(detector, FPS, lookahead=stream_seconds, hop=10, history=400, video_id="v")
    emitted = list(online.run(random_chunks(features, np.random.default_rng(2), 25)))
    assert sorted(map(key, (e.detection for e in emitted))) == sorted(map(key, offline))
    assert sorted(e.detection.score for e in emitted) == pytest.approx(sorted(d.score for d in offline))
    assert all(e.emitted_at == stream_seconds for e in emitted)
    assert online.num_updates == 15  # one per hop; the flush reuses the last update's predictions
    assert all(e.compute_ms > 0 for e in emitted)


def test_a_normalising_stream_standardises_each_window_by_the_steps_received_so_far(monkeypatch):
    detector = tiny_network_detector(normalize="video")
    features = np.random.default_rng(3).normal(loc=-2.0, scale=5.0, size=(90, 16)).astype(np.float32)
    seen = []
    import mgrec.infer.online as online_module
    real = online_module.detect_video

    def recording(model, window, *args, **kwargs):
        seen.append(kwargs["standardize"](window))  # what enters the network
        return real(model, window, *args, **kwargs)

    monkeypatch.setattr(online_module, "detect_video", recording)
    online = OnlineDetector(detector, FPS, lookahead=0.5, hop=30, history=40, video_id="v")
    for chunk in random_chunks(features, np.random.default_rng(4), 7):
        online.push(chunk)
    assert len(seen) == 3  # updates after 30, 60 and 90 steps, each on the newest 40 (30 at first)
    for update, window in enumerate(seen, start=1):
        received = features[: 30 * update]
        expected = (received[-40:] - received.mean(0)) / received.std(0)
        np.testing.assert_allclose(window, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_compiled_network_gives_the_same_emissions():
    # torch.compile (inductor, C++ wrapper) on a padded fixed-length window: the same gestures,
    # scores equal up to float rounding. Slow: about 45 s on 2 cores with an empty inductor cache.
    detector = tiny_network_detector()
    features = np.random.default_rng(1).normal(size=(300, 16)).astype(np.float32)
    ranked = detector.detect(features, video_id="v", fps=FPS)
    detector.postprocess = replace(detector.postprocess, score_threshold=ranked[30].score)
    eager = OnlineDetector(detector, FPS, lookahead=1.0, hop=8, history=62)
    compiled = OnlineDetector(detector, FPS, lookahead=1.0, hop=8, history=62, compile=True)
    assert compiled._padded_length == 64  # 62 rounded up to a multiple of the largest stride, 4
    expected = list(eager.run(random_chunks(features, np.random.default_rng(2), 25)))
    # Compiled once, when the detector was made: an update that compiles again (its inputs failing a guard
    # of the warm-up's) would be seconds late.
    with torch._dynamo.config.patch(error_on_recompile=True):
        emitted = list(compiled.run(random_chunks(features, np.random.default_rng(2), 25)))
    assert len(expected) >= 10
    assert [(key(e.detection), e.emitted_at) for e in emitted] == [(key(e.detection), e.emitted_at) for e in expected]
    assert [e.detection.score for e in emitted] == pytest.approx([e.detection.score for e in expected], abs=1e-6)


def test_a_failing_compile_is_a_clear_error(monkeypatch):
    def broken_compile(model, **kwargs):
        def run(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.raises(InputError, match=r"compiling the network failed \(RuntimeError: InvalidCxxCompiler.*g\+\+"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, compile=True)


def test_a_compiled_network_that_disagrees_with_the_network_is_refused(monkeypatch):
    # torch.compile mis-compiled a gated two-stream network (logits 1.4 apart on three levels): 10 gestures
    # streamed for 74, without a word
    from mgrec.model.detector import DetectorOutput

    def miscompile(model, **kwargs):
        def run(x, mask):
            out = model(x, mask)
            return DetectorOutput([c + (0.5 if level == 1 else 0.0) for level, c in enumerate(out.cls_logits)],
                                  out.offsets, out.masks, out.strides)
        return run

    monkeypatch.setattr(torch, "compile", miscompile)
    with pytest.raises(InputError, match=r"the compiled network disagrees with the network itself: logits up to 0.5 "
                                         r"apart on a test window of 60 steps .*run without --compile"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, compile=True)


@pytest.mark.parametrize("nms", ["soft", "hard"])
def test_hard_set_postprocess_gives_the_same_hard_set(nms):
    detector = tiny_network_detector(seed=7)
    post = replace(detector.postprocess, nms=nms, max_detections=300)
    features = np.random.default_rng(8).normal(size=(100, 16)).astype(np.float32)
    grid = detector.grid(FPS)
    ranked = detect_video(detector.model, features, grid, post, detector.classes, "v")
    assert len(ranked) == 300
    for rank in (0, 7, 40, 150):
        threshold = ranked[rank].score
        fast_post = hard_set_postprocess(replace(post, score_threshold=threshold))
        fast = detect_video(detector.model, features, grid, fast_post, detector.classes, "v")
        assert len(fast) < len(ranked)
        expected = [(key(d), d.score) for d in ranked if d.score >= threshold]
        assert [(key(d), d.score) for d in fast if d.score >= threshold] == expected


def test_shifting_predictions_give_one_emission_per_gesture():
    rng = np.random.default_rng(3)
    jitter = 2
    gestures = draw_gestures(1500, rng, min_len=20, max_len=40, max_gap=15)
    features = encode(1500, gestures)
    detector = pointwise_detector(PointwiseModel(jitter=jitter))
    lookahead, hop = 0.8, 2
    online = OnlineDetector(detector, FPS, lookahead=lookahead, hop=hop, history=120)
    emissions = list(online.run(random_chunks(features, rng, 9)))
    emitted = [e.detection for e in emissions]

    assert not duplicates(emitted)
    assert len(emitted) == len(gestures)
    grid = online.grid
    for start, end, label in gestures:
        found = [d for d in emitted if d.label_id == label
                 and tiou(d.start, d.end, grid.index_to_seconds(start), grid.index_to_seconds(end)) > 0.5]
        assert len(found) == 1
    pushed = emissions[: len(emissions) - sum(e.emitted_at == online.now for e in emissions)]
    assert all(e.latency >= lookahead - 1e-9 for e in pushed)
    # An end can move back across the cutoff between updates (by up to 2 * jitter steps); such
    # gestures are still emitted, later than one hop after their cutoff.
    assert any(e.latency > lookahead + hop * STEP_SECONDS + 1e-9 for e in pushed)
    assert all(e.latency < lookahead + (hop + 2 * jitter) * STEP_SECONDS + 1e-9 for e in pushed)


def test_a_push_interrupted_during_an_update_resumes_from_received_steps(monkeypatch):
    """Ctrl-C in a notebook during `push` dropped the rest of the chunk and nothing said how many rows were in: the
    stream's clock then ran behind. `received_steps` says where to resume, and the gestures are those of a stream
    never interrupted."""
    rng = np.random.default_rng(6)
    gestures = draw_gestures(400, rng, min_len=6, max_len=20, max_gap=10)
    features = encode(400, gestures)
    detector = pointwise_detector(PointwiseModel())
    whole = OnlineDetector(detector, FPS, lookahead=0.5, hop=8, history=80, video_id="v")
    expected = [e.detection for e in whole.run([features])]

    online = OnlineDetector(detector, FPS, lookahead=0.5, hop=8, history=80, video_id="v")
    detect_window = OnlineDetector._detect_window
    calls = []

    def interrupted_once(self):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return detect_window(self)

    monkeypatch.setattr(OnlineDetector, "_detect_window", interrupted_once)
    emitted = []
    with pytest.raises(KeyboardInterrupt):
        emitted += online.push(features[:100])
    assert online.received_steps == 40  # the fifth update's hop is in, the rest of the chunk is not
    emitted += online.push(features[online.received_steps:100])
    emitted += online.push(features[100:]) + online.flush()
    assert sorted(map(key, (e.detection for e in emitted))) == sorted(map(key, expected))


@pytest.mark.parametrize("lookahead", [0.0])
def test_a_lookahead_under_one_step_never_emits_a_gesture_cut_at_the_window_s_edge(lookahead):
    """At lookahead 0 a gesture still in progress, its end cut at the newest step, was final: emitted cut, then
    again whole (73 pairs on the demo's test split). A detection ending within the newest step may still grow."""
    rng = np.random.default_rng(5)
    gestures = draw_gestures(600, rng, min_len=10, max_len=30, max_gap=10)
    features = encode(600, gestures)
    detector = pointwise_detector(PointwiseModel())
    offline = detector.hard_set(detector.detect(features, video_id="v", fps=FPS))
    online = OnlineDetector(detector, FPS, lookahead=lookahead, hop=1, history=100, video_id="v")
    emissions = list(online.run(random_chunks(features, rng, 5)))
    emitted = [e.detection for e in emissions]
    assert not duplicates(emitted) and sorted(map(key, emitted)) == sorted(map(key, offline))
    assert all(e.latency >= STEP_SECONDS - 1e-9 for e in emissions if e.emitted_at < online.now)


@pytest.mark.slow
def test_memory_stays_bounded_on_a_long_stream():
    rng = np.random.default_rng(4)
    length, history = 50_000, 64
    gestures = draw_gestures(length, rng, min_len=6, max_len=12, max_gap=8)
    features = encode(length, gestures)
    detector = pointwise_detector(PointwiseModel())
    online = OnlineDetector(detector, FPS, lookahead=0.5, hop=16, history=history)
    # at most history / 7 + 2 gestures (shortest period: 6 steps + a gap of 1) overlap the window,
    # each kept at most twice (emitted, and in the last hard set)
    bound = 2 * (history // 7 + 2)
    emitted = []
    most_tracked = 0
    for chunk in random_chunks(features, rng, 100):
        emitted += online.push(chunk)
        assert online.buffered_steps <= history
        assert online._window.capacity == 2 * history
        most_tracked = max(most_tracked, online.tracked_detections)
    emitted += online.flush()
    assert online.buffered_steps == history
    assert 0 < most_tracked <= bound
    assert len(emitted) == len(gestures)
    # times are absolute: the last emission is the last gesture, near the end of the stream
    start, end, _ = gestures[-1]
    assert emitted[-1].detection.end == pytest.approx(online.grid.index_to_seconds(end))


def write_run(run_dir: Path, detector: OfflineDetector, threshold: float) -> None:
    RunDir(run_dir).write_for_inference(detector.config, detector.classes, detector.model, score_threshold=threshold)


def test_stream_file_prints_the_emissions_as_json_lines(tmp_path):
    detector = tiny_network_detector(seed=5)
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    fps = 1000.0  # fast enough to replay in real time within a test (the highest frame rate mgrec accepts)
    threshold = detector.detect(features, fps=fps)[15].score
    write_run(tmp_path / "run", detector, threshold)
    path = tmp_path / "clip.npy"
    write_features(path, features, FeatureSidecar(fps=fps, stride=4, window=16, backbone="test", dim=16, frames=None))

    out = io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # one torch thread while it streams (the default), and the caller's own setting given back after
        summary = stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=out)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert summary.emitted == len(lines) >= 10  # most of the 16+ offline detections above the threshold
    # 120 steps in hops of 8: 15 updates, each timed; flush has no new features, so no 16th update
    assert summary.updates == 15 and summary.video_id == "clip"
    assert 0 < summary.mean_compute_ms and 0 < summary.p95_compute_ms
    assert summary.stream_seconds == pytest.approx(((120 - 1) * 4 + 16) / fps)

    loaded = OfflineDetector.from_run(tmp_path / "run")
    assert loaded.postprocess.score_threshold == threshold
    online = OnlineDetector(loaded, fps, lookahead=0.01, hop=8, video_id="clip")
    expected = [e.to_json() for e in online.run(chunks_of(features, 8))]
    strip = lambda records: [{k: v for k, v in r.items() if k != "compute_ms"} for r in records]  # noqa: E731
    assert strip(lines) == strip(expected)
    # the detection's keys are those of the results JSON (Detection.to_json), unrounded as there
    assert set(lines[0]) == {"video", "segment", "segment(frames)", "label", "label_id", "score",
                             "emitted_at", "latency", "compute_ms"}
    assert all(r["video"] == "clip" and r["score"] >= round(threshold, 6) for r in lines)

    realtime = io.StringIO()
    started = time.time()
    stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, realtime=True, out=realtime, wall_clock=True)
    timed = [json.loads(line) for line in realtime.getvalue().splitlines()]
    assert strip({k: v for k, v in r.items() if k != "wall_time"} for r in timed) == strip(lines)
    # --wall-clock: the clock's time of each report, in stream order, each at or after its emitted_at into the replay
    moments = [datetime.datetime.fromisoformat(r["wall_time"].replace("Z", "+00:00")).timestamp() for r in timed]
    assert all(r["wall_time"].endswith("Z") for r in timed) and moments == sorted(moments)
    assert all(started + r["emitted_at"] - 0.005 <= moment <= time.time() for r, moment in zip(timed, moments))

    # a sidecar that disagrees with the run's config is caught, naming the sidecar
    write_features(path, features, FeatureSidecar(fps=fps, stride=8, window=16, backbone="test", dim=16, frames=None))
    with pytest.raises(InputError, match=r"clip\.json.*stride"):
        stream_file(tmp_path / "run", path, out=io.StringIO())


def replayed_clip(tmp_path: Path, fps: float = 1000.0) -> tuple[Path, Path, np.ndarray, OfflineDetector]:
    """A run of the tiny network (its threshold at its 16th detection) and a 120-step clip with its sidecar at
    `fps` (1000: 0.5 s of stream, replayed in real time within a test): run, clip, features, detector."""
    detector = tiny_network_detector(seed=5)
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    write_run(tmp_path / "run", detector, detector.detect(features, fps=1000.0)[15].score)
    path = tmp_path / "clip.npy"
    write_features(path, features, FeatureSidecar(fps=fps, stride=4, window=16, backbone="t", dim=16, frames=None))
    return tmp_path / "run", path, features, detector


def test_an_interrupted_stream_decides_what_arrived_and_a_reader_gone_away_stops_it(tmp_path, monkeypatch):
    """Ctrl-C (and SIGTERM) ended a live session without the gestures it had seen but not yet decided, and
    without the summary; a closed stdout (`| head -1`) let the stream run to its end and exit 0."""
    import mgrec.infer.online as online_module

    _, path, features, _ = replayed_clip(tmp_path)
    fps = 1000.0
    replay = online_module._replay

    def interrupted_at_the_ninth_hop(*args):
        for index, chunk in enumerate(replay(*args)):
            if index == 8:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(online_module, "_replay", interrupted_at_the_ninth_hop)
    out = io.StringIO()
    with pytest.raises(StreamInterrupted) as stopped:  # a KeyboardInterrupt: a script stops, as it did before
        stream_file(tmp_path / "run", path, lookahead=2.0, hop=8, out=out)
    summary = stopped.value.summary
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    online = OnlineDetector(OfflineDetector.from_run(tmp_path / "run"), fps, lookahead=2.0, hop=8, video_id="clip")
    expected = [e.to_json() for e in online.run(chunks_of(features[:64], 8))]  # the 8 hops that arrived, then flushed
    assert summary.interrupted and summary.updates == 8 and lines and len(lines) == len(expected)
    assert [line["segment"] for line in lines] == [e["segment"] for e in expected]
    assert "interrupted at 0.3 s of stream: the gestures still pending were decided" in summary.describe()

    monkeypatch.setattr(online_module, "_replay", replay)

    class GoneAway(io.StringIO):  # what `terminal.TerminalText` is after a broken pipe
        broken = True

    with pytest.raises(InputError, match=r"the reader of the stream's output went away after 0 gesture\(s\), at "):
        stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=GoneAway())


def test_ctrl_c_while_gestures_are_written_waits_until_they_are(tmp_path):
    """A Ctrl-C arriving while an update's gestures were written (a slow pipe) lost the rest of them: decided, so
    never offered again, and not written."""
    import os
    import signal

    _, path, _, _ = replayed_clip(tmp_path)
    whole = io.StringIO()
    stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=whole)
    expected = whole.getvalue().splitlines()

    class InterruptedOnTheThirdLine(io.StringIO):
        lines = 0

        def write(self, text):
            self.lines += 1
            if self.lines == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return super().write(text)

    out = InterruptedOnTheThirdLine()
    # Python's own Ctrl-C handler, whatever the test process set (a pytest-xdist worker ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(StreamInterrupted):
            stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=out)
    finally:
        signal.signal(signal.SIGINT, previous)
    strip = lambda lines: [{k: v for k, v in json.loads(line).items() if k != "compute_ms"} for line in lines]  # noqa: E731
    assert len(expected) > 3 and strip(out.getvalue().splitlines()[:3]) == strip(expected[:3])


def test_a_realtime_stream_whose_updates_fall_behind_says_by_how_much(tmp_path, monkeypatch):
    """`--realtime` with updates slower than a hop of stream printed each gesture later than its emitted_at and
    latency said, and the summary was silent about it."""
    _, path, _, _ = replayed_clip(tmp_path)
    update = OnlineDetector._update

    def slow(self, cutoff):  # 0.1 s an update, against 0.032 s of stream a hop
        time.sleep(0.1)
        return update(self, cutoff)

    monkeypatch.setattr(OnlineDetector, "_update", slow)
    summary = stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, realtime=True, out=io.StringIO())
    # 15 updates of 0.1 s over 0.5 s of stream: about 1 s behind; at most every update's sleep and compute (on a busy
    # machine its compute alone took 82 ms an update, and a fixed bar of 2 s failed)
    worst = summary.updates * (0.1 + summary.p95_compute_ms / 1000)
    assert 0.6 < summary.behind_seconds < worst + 0.3
    assert f"behind real time: the updates fell up to {summary.behind_seconds:.1f} s behind" in summary.describe()
    assert stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=io.StringIO()).behind_seconds == 0.0
    # updates of 0.1 s every 0.256 s of stream keep its pace: not behind (the time of an update is not a lag; the
    # measure after each update said 0.1 s)
    _, slower, _, _ = replayed_clip(tmp_path / "b", fps=125.0)
    kept_pace = stream_file(tmp_path / "run", slower, lookahead=0.01, hop=8, realtime=True, out=io.StringIO())
    if 0.1 + kept_pace.p95_compute_ms / 1000 < 0.2:  # a machine that keeps the pace (a busy one may not)
        assert kept_pace.behind_seconds < 0.05 and "behind real time" not in kept_pace.describe()


def test_a_stream_s_saved_output_is_scored_as_its_hard_set(tmp_path, capsys):
    """`mgrec stream ... > log.jsonl` could not be scored (`not valid JSON: Extra data`): each line is a detection
    with its video, read as the results JSON's entries are."""
    from mgrec.cli import main
    from mgrec.evaluate.predictions import load_predictions, save_predictions

    _, path, _, detector = replayed_clip(tmp_path)
    fps = 1000.0
    log = tmp_path / "log.jsonl"
    with log.open("w") as out:
        stream_file(tmp_path / "run", path, lookahead=0.01, hop=8, out=out)
    read = load_predictions(log, detector.classes)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [d.to_json()["segment"] for d in read["clip"]] == [line["segment"] for line in lines] and len(lines) >= 10
    save_predictions(read, tmp_path / "same.json")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"classes": detector.classes, "database": {"clip": {
        "subset": "test", "fps": fps, "duration": 0.5,
        "annotations": [{"label": line["label"], "segment": line["segment"]} for line in lines[::2]]}}}))
    scores = []
    for predictions in (log, tmp_path / "same.json"):
        assert main(["score", "--gt", str(gt), "--pred", str(predictions), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0]["f1"] == scores[1]["f1"] and scores[0]["num_predictions"] == len(lines)
    assert 0.6 < scores[0]["f1"] < 1  # every other detection is a gesture
    # read by its first line whole: one past 4 KB (another tool's keys), or lines ended by \r alone, were taken for
    # a results JSON ("Extra data")
    padded = [{**lines[0], "pad": "x" * 5000}, *lines[1:]]
    for name, ending in (("long.jsonl", "\n"), ("cr.jsonl", "\r"), ("blank-first.jsonl", "\n\n")):
        (tmp_path / name).write_text("".join(ending + json.dumps(line) for line in padded), newline="")
        assert load_predictions(tmp_path / name, detector.classes) == read
    # `mgrec stream ... >> log.jsonl` run twice (a rerun after Ctrl-C): both sessions were scored, every gesture
    # twice, F1 halved without a word
    twice = tmp_path / "twice.jsonl"
    twice.write_text(log.read_text() * 2)
    with pytest.raises(InputError, match=rf"twice.jsonl:{len(lines) + 1} \[emitted_at\]: .* but line {len(lines)} "
                                         r"emitted video 'clip' at .*start over, two stream sessions of one video"):
        load_predictions(twice, detector.classes)
    twice.write_text(json.dumps(lines[-1]) + "\n" + json.dumps(lines[-1]) + "\n")  # a session of one emission, rerun
    with pytest.raises(InputError, match=r"twice.jsonl:2 \[emitted_at\]: .* but line 1 holds the same emission"):
        load_predictions(twice, detector.classes)
    twice.write_text(json.dumps({**lines[0], "emitted_at": -5}) + "\n")
    with pytest.raises(InputError, match=r"twice.jsonl:1 \[emitted_at\]: expected the seconds of stream .* got -5"):
        load_predictions(twice, detector.classes)
    log.write_text(log.read_text() + "{not json\n")
    with pytest.raises(InputError, match=rf"log.jsonl:{len(lines) + 1}:2: predictions file is not valid JSON"):
        load_predictions(log, detector.classes)
    log.write_text(json.dumps(lines[0])[:-1] + ', "video": "other"}\n')  # as the results JSON's reader refuses it
    with pytest.raises(InputError, match=r"log.jsonl:1: key 'video' appears twice in one JSON object"):
        load_predictions(log, detector.classes)
    log.write_text(json.dumps(lines[0])[:-1] + ', "x": ' + "9" * 5000 + "}\n")  # past Python's 4300 digits
    with pytest.raises(InputError, match=r"log.jsonl(:1)?: predictions file holds a number no reader takes"):
        load_predictions(log, detector.classes)


THREE_VIDEOS = ("Sample0036", "Sample0037", "Sample0038")


def folder_of_three_videos(tmp_path: Path, features: np.ndarray) -> Path:
    """tmp_path/videos holding `features` as each of THREE_VIDEOS (1000 fps, stride 4, window 16), to stream."""
    videos = tmp_path / "videos"
    sidecar = FeatureSidecar(fps=1000.0, stride=4, window=16, backbone="t", dim=16, frames=None)
    for name in THREE_VIDEOS:
        write_features(videos / f"{name}.npy", features, sidecar)
    return videos


def interrupt_a_video(monkeypatch, video: int = 2) -> list[int]:
    """Ctrl-C at the 5th hop of the `video`-th video a stream replays; the list grows by one per video replayed."""
    import mgrec.infer.online as online_module

    replay, calls = online_module._replay, []

    def interrupted_in_that_video(*args):
        calls.append(1)
        for index, chunk in enumerate(replay(*args)):
            if len(calls) == video and index == 4:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(online_module, "_replay", interrupted_in_that_video)
    return calls


def test_streaming_a_folder_makes_each_video_its_own_stream_and_an_smg_submission(tmp_path, capsys, monkeypatch):
    """An online-track submission was written from the JSON lines by hand, one `mgrec stream` per video: a folder (or
    several files) is streamed video by video, each from a fresh stream (nothing of one carries into the next), and
    `--format smg` writes every video's gestures as SMG label files once all were streamed to their end."""
    from mgrec.cli import main
    from mgrec.evaluate.predictions import load_predictions
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, _, features, detector = replayed_clip(tmp_path)
    videos = tmp_path / "videos"
    sidecar = FeatureSidecar(fps=1000.0, stride=4, window=16, backbone="t", dim=16, frames=None)
    clips = {"Sample0036": features, "Sample0037": features[::-1].copy(), "Sample0038": features[40:].copy()}
    for name, rows in clips.items():
        write_features(videos / f"{name}.npy", rows, sidecar)
    alone = {}
    for name in clips:  # each streamed by itself, the reference
        out = io.StringIO()
        stream_file(run, videos / f"{name}.npy", lookahead=0.01, hop=8, out=out)
        alone[name] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(alone.values())

    assert main(["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8"]) == 0
    printed = capsys.readouterr()
    together = [json.loads(line) for line in printed.out.splitlines()]
    strip = lambda records: [{k: v for k, v in r.items() if k != "compute_ms"} for r in records]  # noqa: E731
    assert strip(together) == strip([line for name in clips for line in alone[name]])
    assert [line.split(":")[0] for line in printed.err.splitlines() if line.startswith("stream ")] == [
        f"stream {name}" for name in clips]
    assert f"streamed 3 videos: {len(together)} gestures written on stdout" in printed.err
    # the saved lines of one video scored on that video alone (`--videos`), not with the split's others missed
    log, gt = tmp_path / "log.jsonl", tmp_path / "gt.json"
    log.write_text("".join(json.dumps(line) + "\n" for line in alone["Sample0036"]))
    gt.write_text(json.dumps({"classes": detector.classes, "database": {name: {
        "subset": "test", "fps": 1000.0, "duration": 0.5,
        "annotations": [{"label": line["label"], "segment": line["segment"]} for line in alone[name]]}
        for name in clips}}))
    with pytest.raises(SystemExit):
        main(["score", "--gt", str(gt), "--pred", str(log), "--json", "--videos", " Sample0036,"])
    assert "--videos: expected video ids separated by commas" in capsys.readouterr().err
    assert main(["score", "--gt", str(gt), "--pred", str(log), "--json", "--videos", "Sample0036"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["videos"] == ["Sample0036"] and scored["recall"] == 1.0 and scored["num_videos"] == 1

    submission = tmp_path / "submission"
    assert main(["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", "--format", "smg",
                 "--out", str(submission)]) == 0
    printed = capsys.readouterr()
    assert printed.out == "" and f"into {submission} as SMG label files" in printed.err
    written = load_predictions(submission, detector.classes, fps_by_video=dict.fromkeys(clips, 1000.0))
    for name in clips:  # the stream's frames and classes, as the lines said them
        assert sorted((d.label_id, d.start_frame, d.end_frame) for d in written[name]) == sorted(
            (line["label_id"], *line["segment(frames)"]) for line in alone[name])
    # a folder holding label files already is refused before any stream
    assert main(["stream", str(run), str(videos), "--format", "smg", "--out", str(submission)]) == 2
    printed = capsys.readouterr()
    assert "already holds 3 SMG label file" in printed.err and "stream Sample0036" not in printed.err
    assert main(["stream", str(run), str(videos), "--out", str(tmp_path / "elsewhere")]) == 2
    assert "--out is the folder of --format smg's label files" in capsys.readouterr().err
    assert main(["stream", str(run), str(videos), "--format", "smg", "--out", str(tmp_path / "timed"),
                 "--wall-clock"]) == 2  # label files hold no time of report
    assert "--format smg's label files hold no time of report" in capsys.readouterr().err
    assert not (tmp_path / "timed").exists()

    # interrupted in the second video: that video is decided as at its end, the third is not streamed; the first
    # video's file is kept and the folder marked unfinished (a partial set would be scored as the whole submission)
    calls = interrupt_a_video(monkeypatch)
    stopped = tmp_path / "stopped"
    command = ["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", "--format", "smg",
               "--out", str(stopped)]
    assert main(command) == 130
    printed = capsys.readouterr()
    assert len(calls) == 2 and "interrupted at" in printed.err
    assert f"{stopped} holds the label files of the 1 video streamed to its end and is marked unfinished" in \
        printed.err and "the same command again streams the others into it" in printed.err
    assert [path.name for path in stopped.rglob("*.csv")] == ["Sample0036_finelabels.csv"]
    assert (stopped / INCOMPLETE_MARKER).exists()
    assert main(["score", "--gt", str(gt), "--pred", str(stopped)]) == 2
    assert "did not finish" in capsys.readouterr().err
    # the same command again streams the two others into it, and the set is the uninterrupted one's
    calls.clear()
    monkeypatch.undo()
    assert main(command) == 0
    printed = capsys.readouterr()
    assert f"resuming the stream into {stopped}: 1 of 3 videos were streamed to their end before" in printed.err
    assert [line.split(":")[0] for line in printed.err.splitlines() if line.startswith("stream ")] == [
        "stream Sample0037", "stream Sample0038"]
    assert not (stopped / INCOMPLETE_MARKER).exists()
    for name in clips:
        relative = Path(name) / f"{name}_finelabels.csv"
        assert (stopped / relative).read_text() == (submission / relative).read_text()


def test_one_bad_file_among_several_is_refused_before_the_first_video_is_streamed(tmp_path, capsys):
    """A folder whose last file was of another width (or of an unknown fps, or NaN) was found bad at its turn: the
    videos before it had been streamed (hours, at --realtime), and with --format smg nothing of them was written.
    Every file is read and checked as its stream will read it before the first update."""
    from mgrec.cli import main

    run, _, features, _ = replayed_clip(tmp_path)
    sidecar = FeatureSidecar(fps=1000.0, stride=4, window=16, backbone="t", dim=16, frames=None)
    nan = features.copy()
    nan[50, 3] = np.nan
    for name, write_bad, message in (
            ("width", lambda path: write_features(path, features[:, :8].copy(), replace(sidecar, dim=8)),
             r"Sample0099.json: features do not match the config: dim is 8"),
            ("fps", lambda path: np.save(path, features), r"Sample0099.npy: the features' fps is unknown"),
            ("nan", lambda path: np.save(path, nan), r"Sample0099.npy: 1 NaN/Inf value")):
        videos = tmp_path / name
        write_features(videos / "Sample0036.npy", features, sidecar)
        write_features(videos / "Sample0037.npy", features[::-1].copy(), sidecar)
        write_bad(videos / "Sample0099.npy")  # streamed last
        if name == "nan":  # its fps known: the NaN is what is wrong
            (videos / "Sample0099.json").write_text((videos / "Sample0036.json").read_text())
        with pytest.raises(InputError, match=message):
            stream_files(run, [videos], lookahead=0.01, hop=8, out=io.StringIO())
        submission = tmp_path / f"submission-{name}"
        for extra in ([], ["--format", "smg", "--out", str(submission)]):
            assert main(["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", *extra]) == 2
            printed = capsys.readouterr()
            assert printed.out == "" and "stream Sample0036" not in printed.err and "Sample0099." in printed.err
        assert not submission.exists() or not any(submission.rglob("*.csv"))


def test_an_interrupted_folder_says_which_videos_were_not_streamed_and_the_run_s_notes_once(tmp_path, capsys,
                                                                                            monkeypatch):
    """One folder of three videos stopped in its second said nothing of the third (the line counted the inputs
    given, one folder, not its videos), and the run's notes (normalisation, shifted passes) came after every video's
    summary: twice the same notes per video of a submission."""
    from mgrec.cli import main

    detector = tiny_network_detector(seed=5)
    detector.config.data.normalize = "video"  # a note each summary said
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    write_run(tmp_path / "run", detector, 0.5)
    videos = folder_of_three_videos(tmp_path, features)
    assert main(["stream", str(tmp_path / "run"), str(videos), "--lookahead", "0.01", "--hop", "8"]) == 0
    printed = capsys.readouterr().err
    assert printed.count("stream Sample00") == 3 and printed.count("note: the run standardises each video") == 1
    summary = StreamSummary("v", 1, 2, 3.0, 1.0, 1.0, offline_passes=4, normalize="video")
    assert "note:" in summary.describe() and "note:" not in summary.describe(notes=False)

    calls = interrupt_a_video(monkeypatch)
    with pytest.raises(StreamInterrupted) as stopped:
        stream_files(tmp_path / "run", [videos], lookahead=0.01, hop=8, out=io.StringIO())
    assert stopped.value.summary.video_id == "Sample0037" and stopped.value.not_streamed == ["Sample0038"]
    calls.clear()
    assert main(["stream", str(tmp_path / "run"), str(videos), "--lookahead", "0.01", "--hop", "8"]) == 130
    printed = capsys.readouterr().err
    assert "stopped: the 1 video after the interrupted one was not streamed (Sample0038)" in printed


def test_a_stream_into_a_folder_an_unfinished_writer_left_names_detect_and_stream(tmp_path, capsys):
    """A folder holding `.mgrec-incomplete` refused `mgrec stream --format smg` with `holds the label files of an
    mgrec detect --format smg that did not finish ...; detect again`: a stream writes such folders too."""
    from mgrec.cli import main
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, path, _, _ = replayed_clip(tmp_path)
    (tmp_path / "left").mkdir()
    (tmp_path / "left" / INCOMPLETE_MARKER).write_text("")
    assert main(["stream", str(run), str(path), "--format", "smg", "--out", str(tmp_path / "left")]) == 2
    printed = capsys.readouterr()
    assert "holds the label files of an `mgrec detect` or `mgrec stream` --format smg that did not finish" in \
        printed.err and "write them again into an empty folder" in printed.err and "stream clip" not in printed.err


def test_an_unfinished_stream_folder_is_finished_only_by_the_stream_that_began_it(tmp_path, capsys, monkeypatch):
    """A stream killed half-way keeps its finished videos' label files in a folder marked unfinished, with what the
    set is made of: another lookahead, the run trained again, or a file put there meanwhile would make a set of two
    streams, scored as one submission, and a second stream while one runs took its marker for an interrupted one's.
    Each is refused, naming it; the stream that began it finishes it, its run moved meanwhile or not."""
    import os

    from mgrec.cli import main
    from mgrec.run import hold_label_folder
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, _, features, _ = replayed_clip(tmp_path)
    videos = folder_of_three_videos(tmp_path, features)
    out = tmp_path / "out"
    command = ["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", "--format", "smg",
               "--out", str(out)]
    interrupt_a_video(monkeypatch)
    assert main(command) == 130
    monkeypatch.undo()
    capsys.readouterr()
    first = out / "Sample0036" / "Sample0036_finelabels.csv"
    written = first.read_text()

    assert main([*command[:4], "1", *command[5:]]) == 2  # another lookahead
    assert "of other settings (lookahead 0.01 then, 1.0 now" in capsys.readouterr().err
    assert main(command[:2] + [str(videos / "Sample0036.npy")] + command[3:]) == 2  # other videos
    assert "(other videos;" in capsys.readouterr().err
    weights = run / "checkpoints" / "best.safetensors"
    status = weights.stat()
    os.utime(weights, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))  # the run trained again
    assert main(command) == 2
    assert "the run's files changed since (trained, tuned or replaced)" in capsys.readouterr().err
    os.utime(weights, ns=(status.st_atime_ns, status.st_mtime_ns))
    (out / "Sample0099.csv").write_text("1,0,5\n")  # a file the stream did not write
    assert main(command) == 2
    assert "holds 1 label file(s) the interrupted stream did not write (e.g. " in capsys.readouterr().err
    (out / "Sample0099.csv").unlink()
    assert first.read_text() == written and (out / INCOMPLETE_MARKER).exists()  # every refusal changed nothing
    assert main(["detect", str(run), str(videos), "--format", "smg", "--out", str(out)]) == 2
    assert "run that `mgrec stream` again, as it was" in capsys.readouterr().err
    with hold_label_folder(out):  # the same command while another stream writes there: not a resume of it
        assert main(command) == 2
    assert f"{out} is in use by" in capsys.readouterr().err and first.read_text() == written

    moved = run.rename(tmp_path / "moved-run")  # the run, its files as they were, moved (it was "other settings")
    assert main([command[0], str(moved), *command[2:]]) == 0
    assert "1 of 3 videos were streamed to their end before" in capsys.readouterr().err
    assert len(list(out.rglob("*_finelabels.csv"))) == 3 and not (out / INCOMPLETE_MARKER).exists()


def test_a_resumed_stream_keeps_its_label_files_only_as_it_wrote_them_and_a_marker_is_made_whole(tmp_path, capsys,
                                                                                                monkeypatch):
    """An interrupted `--format smg` stream's label file emptied (or edited) since was kept on resume as the video's
    gestures (a video without any); one whose writing was killed before the marker recorded it too. Each is refused by
    name until removed, and the same command then streams that video again. A stream killed while it made the marker
    left an empty one, which no command could resume: the marker is made whole or not at all."""
    import os

    from mgrec.cli import main
    from mgrec.smg_csv import INCOMPLETE_MARKER, unfinished_plan

    run, _, features, _ = replayed_clip(tmp_path)
    videos = folder_of_three_videos(tmp_path, features)
    whole = tmp_path / "whole"
    command = ["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", "--format", "smg", "--out"]
    assert main([*command, str(whole)]) == 0
    out = tmp_path / "out"

    def killed(source, destination):  # killed as the marker, written whole beside it, was to take its name
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", killed)
    assert main([*command, str(out)]) == 130
    monkeypatch.undo()
    assert not (out / INCOMPLETE_MARKER).exists()  # nothing begun: the same command starts the set afresh

    interrupt_a_video(monkeypatch)
    assert main([*command, str(out)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    first = out / "Sample0036" / "Sample0036_finelabels.csv"
    written = first.read_text()
    assert written and set(unfinished_plan(out)["written"]) == {"Sample0036"}
    for changed in ("", written + "2,0,5\n"):  # emptied; a row added by hand
        first.write_text(changed)
        assert main([*command, str(out)]) == 2
        assert (f"{first}: is not the label file the interrupted stream wrote for video Sample0036 (changed since, "
                "e.g. emptied") in capsys.readouterr().err
        assert first.read_text() == changed and (out / INCOMPLETE_MARKER).exists()  # the refusal changed nothing
    third = out / "Sample0038" / "Sample0038_finelabels.csv"
    third.parent.mkdir()
    third.write_text("1,0,5\n")  # a file the stream was killed before recording, or put there by hand
    first.write_text(written)
    assert main([*command, str(out)]) == 2
    assert f"{third}: is not the label file the interrupted stream wrote for video Sample0038" in \
        capsys.readouterr().err
    first.unlink()
    third.unlink()
    assert main([*command, str(out)]) == 0  # every video streamed again but none it kept
    assert "resuming the stream" not in capsys.readouterr().err  # no file was kept: nothing to resume from
    assert not (out / INCOMPLETE_MARKER).exists()
    for name in THREE_VIDEOS:
        assert (out / name / f"{name}_finelabels.csv").read_text() == \
            (whole / name / f"{name}_finelabels.csv").read_text()


def test_a_push_while_another_thread_s_push_runs_is_refused_and_turns_taken_pass():
    """Two threads pushing into one stream interleaved their rows into one window and clock, unrefused. A push
    (or flush) that arrives while another runs is refused; pushes from threads taking turns are one stream."""
    import threading

    online = OnlineDetector(tiny_network_detector(seed=3), 1000.0, lookahead=0.01, hop=8, history=64)
    rows = np.random.default_rng(4).normal(size=(8, 16)).astype(np.float32)
    entered, release = threading.Event(), threading.Event()
    update = online._update

    def slow_update(cutoff):  # the first update waits until the other thread has tried its push
        entered.set()
        release.wait(timeout=30)
        return update(cutoff)

    online._update = slow_update
    first = threading.Thread(target=online.push, args=(rows,))
    first.start()
    assert entered.wait(timeout=30)
    for call in (lambda: online.push(rows), online.flush):
        with pytest.raises(InputError, match=r"while another push or flush of this stream was running"):
            call()
    release.set()
    first.join(timeout=30)
    assert online.received_steps == 8 and online.num_updates == 1  # the refused calls changed nothing
    online._update = update
    turns = [threading.Thread(target=online.push, args=(rows,)) for _ in range(3)]
    for thread in turns:  # one after another, each from its own thread
        thread.start()
        thread.join()
    assert online.received_steps == 32 and online.num_updates == 4
    online.flush()


def test_a_hold_left_by_an_interrupt_between_acquire_and_try_does_not_lock_out_the_thread_s_next_push():
    """Ctrl-C raised in the main thread just after `_one_caller`'s acquire, before its `try`, left the lock held:
    every later push of the stream was refused as another thread's. The hold is the thread's own to retake."""
    import threading

    online = OnlineDetector(tiny_network_detector(seed=3), 1000.0, lookahead=0.01, hop=8, history=64)
    rows = np.random.default_rng(4).normal(size=(8, 16)).astype(np.float32)
    assert online._in_use.acquire(blocking=False)  # the interrupted call's hold, never released
    online.push(rows)
    assert online.received_steps == 8
    refused = []

    def other_thread_push():
        try:
            online.push(rows)
        except InputError as error:
            refused.append(str(error))

    other = threading.Thread(target=other_thread_push)
    other.start()
    other.join(timeout=30)
    assert refused and "while another push or flush of this stream was running" in refused[0]
    assert online.received_steps == 8


def test_a_run_with_shifted_passes_streams_one_pass_and_says_so(tmp_path):
    detector = tiny_network_detector(seed=5)
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    fps = 100.0
    threshold = detector.detect(features, fps=fps)[15].score
    path = tmp_path / "clip.npy"
    write_features(path, features, FeatureSidecar(fps=fps, stride=4, window=16, backbone="test", dim=16, frames=None))
    outputs, summaries = [], []
    for passes in (1, 4):
        config = replace(detector.config, postprocess=replace(detector.config.postprocess, shifted_passes=passes))
        run = tmp_path / f"run{passes}"
        RunDir(run).write_for_inference(config, detector.classes, detector.model, score_threshold=threshold)
        outputs.append(io.StringIO())
        summaries.append(stream_file(run, path, lookahead=0.01, hop=8, out=outputs[-1]))
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "compute_ms"}  # noqa: E731
                          for line in text.splitlines()]
    assert strip(outputs[0].getvalue()) == strip(outputs[1].getvalue()) != []
    assert "note:" not in summaries[0].describe()
    assert "detects offline in 4 shifted passes" in summaries[1].describe()
    # offline, the same run fuses four passes
    offline = OfflineDetector.from_run(tmp_path / "run4")
    assert offline.detect(features, fps=fps) != OfflineDetector.from_run(tmp_path / "run1").detect(features, fps=fps)
    assert "data.normalize" not in summaries[1].describe()


def test_a_normalising_run_streams_from_a_file_and_says_how(tmp_path):
    detector = tiny_network_detector(seed=5, normalize="video")
    features = np.random.default_rng(6).normal(loc=4.0, size=(120, 16)).astype(np.float32)
    fps = 100.0
    path = tmp_path / "clip.npy"
    write_features(path, features, FeatureSidecar(fps=fps, stride=4, window=16, backbone="test", dim=16, frames=None))
    RunDir(tmp_path / "run").write_for_inference(detector.config, detector.classes, detector.model,
                                                 score_threshold=detector.detect(features, fps=fps)[10].score)
    out = io.StringIO()
    summary = stream_file(tmp_path / "run", path, lookahead=10.0, hop=8, out=out)
    # with the whole stream in view at its end, the emissions are the offline hard set (whole-video statistics)
    offline = OfflineDetector.from_run(tmp_path / "run")
    streamed = sorted((d["label"], *d["segment"]) for d in map(json.loads, out.getvalue().splitlines()))
    expected = sorted((d.label, d.start, d.end) for d in offline.hard_set(offline.detect(features, fps=fps)))
    assert len(streamed) == len(expected) > 0
    assert [s[0] for s in streamed] == [e[0] for e in expected]
    np.testing.assert_allclose([s[1:] for s in streamed], [e[1:] for e in expected], atol=1e-6)
    assert "stream used those of the steps received so far" in summary.describe()


def test_default_window_is_an_eighth_of_the_training_crop_or_what_the_lookahead_needs():
    detector = pointwise_detector(PointwiseModel(), max_seq_len=1024)
    assert OnlineDetector(detector, FPS, lookahead=2.0, hop=4).history == 128
    # 30 s of lookahead = 375 steps: the default grows to fit it (and a hop) instead of failing
    assert OnlineDetector(detector, FPS, lookahead=30.0, hop=4).history == 375 + 4 + 1
    assert OnlineDetector(detector, FPS, lookahead=2.0, hop=4, history=100).history == 100


def test_the_default_window_holds_the_lookahead_a_hop_and_a_gesture_the_levels_learn():
    # The worked example's run (examples/cut_in.yaml: crops of 128 steps, 0.16 s a step, top level from 8 steps):
    # its default was lookahead and hop alone, 20 steps, and its stream found 1 of the 6 cut-ins offline finds.
    config = load_config(REPO / "examples" / "cut_in.yaml")
    detector = OfflineDetector(PointwiseModel(num_classes=2), config, ["a", "b"], config.postprocess, Path("."))
    online = OnlineDetector(detector, 25.0, lookahead=2.0)
    assert (online.hop, online.history) == (6, 13 + 6 + 1 + 2 * 8)
    # the demo's and SMG's defaults stay an eighth of their crops, the window measured there
    for name, expected in (("demo/default.yaml", 128), ("smg/mgrec.yaml", 288)):
        config = load_config(REPO / "src" / "mgrec" / "configs" / name)
        classes = [f"g{k}" for k in range(config.model.num_classes)]
        shipped = OfflineDetector(PointwiseModel(), config, classes, config.postprocess, Path("."))
        assert OnlineDetector(shipped, None, lookahead=2.0).history == expected, name


def test_a_window_given_too_short_for_the_gestures_is_noted(capsys):
    # `--history 38`, the least the refusal asked for, left no room for the gestures: 11 emitted for 49, silently
    config = load_config(REPO / "examples" / "cut_in.yaml")
    detector = OfflineDetector(PointwiseModel(num_classes=2), config, ["a", "b"], config.postprocess, Path("."))
    OnlineDetector(detector, 25.0, lookahead=2.0, history=24)
    assert ("note: a window of 24 feature steps leaves 4 for the gesture an update decides, after lookahead and hop; "
            "the run's gestures reach 16 steps, and longer ones are missed (the default window holds them: 36 steps "
            "or more)") in capsys.readouterr().err
    OnlineDetector(detector, 25.0, lookahead=2.0, history=24)  # a second stream of the same detector: said once
    OnlineDetector(detector, 25.0, lookahead=2.0, history=36)
    assert "note" not in capsys.readouterr().err


def test_the_default_window_finds_what_offline_detection_finds():
    # Gestures of 12-16 steps, which the levels below the top learn (top range from 8 steps: up to 16 long).
    # Before, the default window (26 steps: lookahead 13, hop 12, 1) no longer held a gesture's centre at the
    # update deciding it, and the stream missed most of them.
    rng = np.random.default_rng(11)
    gestures = draw_gestures(600, rng, min_len=12, max_len=16, max_gap=20)
    features = encode(600, gestures)
    detector = pointwise_detector(PointwiseModel(), max_seq_len=64)
    detector.config = replace(detector.config, model=replace(detector.config.model, num_levels=2,
                                                             regression_ranges=[[0, 8], [8, 10000]]))
    online = OnlineDetector(detector, FPS, lookahead=1.0)
    assert (online.hop, online.history) == (12, 13 + 12 + 1 + 16)
    emitted = [e.detection for e in online.run(random_chunks(features, rng, 9))]
    offline = detector.hard_set(detector.detect(features, video_id="stream", fps=FPS))
    assert len(offline) == len(gestures) > 20
    assert sorted(map(key, emitted)) == sorted(map(key, offline))


@pytest.mark.parametrize("fps", [0, 0.0, float("inf"), float("nan"), -30.0, "30", 1e-300, True, 1e9])
def test_a_bad_fps_is_refused_naming_fps_and_the_range(fps):
    # through the Python API: before, ZeroDivisionError (0, inf), a ValueError about int conversion (nan),
    # TypeError ("30"), nothing detected (-30) or segments at 1e302 s (1e-300)
    with pytest.raises(InputError, match=r"^fps: expected a number of frames per second in \[0\.001, 1000\], got "):
        OnlineDetector(pointwise_detector(PointwiseModel()), fps)


def test_bad_input_is_reported():
    detector = pointwise_detector(PointwiseModel())
    with pytest.raises(InputError, match="history of 10 feature steps is too short"):
        OnlineDetector(detector, FPS, lookahead=1.0, hop=5, history=10)
    with pytest.raises(InputError, match="lookahead"):
        OnlineDetector(detector, FPS, lookahead=-1.0)
    # through the Python API, values the command line's parser would have refused
    for kwargs, message in (({"hop": 2.5}, "hop must be a whole number of feature steps, got 2.5"),
                            ({"history": float("nan")}, "history must be a whole number"),
                            ({"lookahead": "2"}, "lookahead must be a finite number of seconds >= 0, got '2'"),
                            ({"hop": True}, "hop must be a whole number")):
        with pytest.raises(InputError, match=message):
            OnlineDetector(detector, FPS, **kwargs)
    with pytest.raises(InputError, match=r"from hop \(--hop\) 99999999\) is more than"):
        OnlineDetector(detector, FPS, hop=99999999)
    OnlineDetector(detector, FPS, lookahead=np.float32(1.0))  # numpy's scalars are numbers (was refused)
    online = OnlineDetector(detector, FPS, hop=4, history=64)
    with pytest.raises(InputError, match=r"a masked array \(numpy.ma\)"):  # a NaN under its mask passed
        online.push(np.ma.masked_invalid(np.full((3, NUM_CLASSES + 2), np.nan, dtype=np.float32)))
    online = OnlineDetector(detector, FPS, hop=4, history=64)
    online.push(np.zeros((3, NUM_CLASSES + 2), dtype=np.float32))
    with pytest.raises(InputError, match=r"stream chunk 2 \(steps 3\.\.\).*shape \(T, 5\)"):
        online.push(np.zeros((3, 7), dtype=np.float32))
    bad = np.zeros((2, NUM_CLASSES + 2), dtype=np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(InputError, match=r"stream chunk 3 \(steps 3\.\.\): 1 NaN/Inf value\(s\), the first at \[t=1"):
        online.push(bad)
    bad[1, 0] = 1e30  # finite, but would ruin the running statistics (and 1e300 overflows float32 to Inf)
    with pytest.raises(InputError, match=r"stream chunk 4 .*1 value\(s\) outside \+-1e\+06, the first 1e\+30"):
        online.push(bad.astype(np.float64))
    with pytest.raises(InputError, match=r"expected float16/float32/float64 features, found dtype int64"):
        online.push(np.zeros((2, NUM_CLASSES + 2), dtype=np.int64))
    assert online.flush() == [] and online.flush() == []
    with pytest.raises(RuntimeError, match="flushed"):
        online.push(np.zeros((1, NUM_CLASSES + 2), dtype=np.float32))


def test_emission_latency_and_json():
    detector = pointwise_detector(PointwiseModel())
    d = detector.hard_set(detector.detect(encode(40, [(10, 20, 1)]), video_id="v", fps=FPS))[0]
    emission = Emission(d, emitted_at=d.end + 1.25, compute_ms=3.0)
    assert emission.latency == pytest.approx(1.25)
    record = emission.to_json()
    assert record["label"] == "g1" and record["latency"] == 1.25 and record["compute_ms"] == 3.0
    assert record == {"video": "v", **d.to_json(), "emitted_at": round(d.end + 1.25, 4), "latency": 1.25,
                      "compute_ms": 3.0}
    assert record["segment"] == [d.start, d.end] and record["segment(frames)"] == [d.start_frame, d.end_frame]


def test_stream_command_keeps_stdout_json_and_ends_with_a_summary_on_stderr(tmp_path, capsys):
    from mgrec.cli import main

    detector = tiny_network_detector(seed=5)
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    threshold = detector.detect(features, fps=1000.0)[15].score
    write_run(tmp_path / "run", detector, threshold)
    path = tmp_path / "clip.npy"
    write_features(path, features, FeatureSidecar(fps=1000.0, stride=4, window=16, backbone="t", dim=16, frames=None))
    assert main(["stream", str(tmp_path / "run"), str(path), "--lookahead", "0.01", "--hop", "8",
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]  # every stdout line is JSON
    assert len(lines) >= 10
    summary = captured.err.strip().splitlines()[-1]
    assert summary.startswith(f"stream clip: {len(lines)} gestures emitted in 15 updates over ")
    assert "compute per update mean " in summary and " ms, p95 " in summary
    # the window that ran (here the default: lookahead 3 steps, hop 8, 1, and 16 of a gesture; 0.004 s a step)
    assert " of stream, window 28 steps (0.1 s); compute per update" in summary


def test_sigterm_ends_a_stream_as_ctrl_c_does_with_the_summary_and_128_plus_its_number(tmp_path, capsys,
                                                                                         monkeypatch):
    """SIGTERM (how a session manager ends a process) exited 143 having printed nothing: no pending gesture, no
    summary."""
    import os
    import signal

    import mgrec.infer.online as online_module
    from mgrec.cli import main

    _, path, _, _ = replayed_clip(tmp_path)
    replay = online_module._replay

    def terminated_at_the_ninth_hop(*args):
        for index, chunk in enumerate(replay(*args)):
            if index == 8:
                os.kill(os.getpid(), signal.SIGTERM)
            yield chunk

    monkeypatch.setattr(online_module, "_replay", terminated_at_the_ninth_hop)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["stream", str(tmp_path / "run"), str(path), "--lookahead", "0.01", "--hop", "8",
                 "--device", "cpu"]) == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before  # the handler was the stream's only
    err = capsys.readouterr().err
    assert "gestures emitted in 8 updates" in err and "interrupted at " in err


def test_stream_takes_the_fps_of_features_without_a_sidecar_from_fps(tmp_path, capsys):
    from mgrec.cli import main

    detector = tiny_network_detector(seed=5)  # data.fps: null, as a run trained on annotations' fps
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    write_run(tmp_path / "run", detector, detector.detect(features, fps=1000.0)[15].score)
    args = ["stream", str(tmp_path / "run"), "--lookahead", "0.01", "--hop", "8", "--device", "cpu"]
    bare = tmp_path / "bare" / "clip.npy"  # sidecars are optional
    bare.parent.mkdir()
    np.save(bare, features)
    assert main([*args[:2], str(bare), *args[2:]]) == 2
    error = capsys.readouterr().err
    assert f"{bare}: the features' fps is unknown: pass the video's frame rate with --fps" in error
    assert error.count("\n") == 1

    assert main([*args[:2], str(bare), *args[2:], "--fps", "1000"]) == 0
    from_option = capsys.readouterr().out
    clip = tmp_path / "clip.npy"
    write_features(clip, features, FeatureSidecar(fps=1000.0, stride=4, window=16, backbone="t", dim=16, frames=None))
    assert main([*args[:2], str(clip), *args[2:]]) == 0
    strip = lambda text: [{k: v for k, v in json.loads(line).items() if k != "compute_ms"}  # noqa: E731
                          for line in text.splitlines()]
    assert strip(from_option) == strip(capsys.readouterr().out) != []

    # a sidecar and --fps that disagree: neither is taken, both are named
    assert main([*args[:2], str(clip), *args[2:], "--fps", "500"]) == 2
    assert "clip.json: the sidecar says fps 1000, but --fps 500" in capsys.readouterr().err
    for bad in ("nan", "0", "-30", "inf", "1e-300"):
        assert main([*args[:2], str(bare), *args[2:], "--fps", bad]) == 2
        assert "--fps: expected a number of frames per second in [0.001, 1000]" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"history": 2_000_000_000}, "online window of 2000000000 feature steps"),
    ({"lookahead": 1e308}, "a lookahead of 1e.308 s is more than an online window may hold"),
    ({"lookahead": float("nan")}, "lookahead must be a finite number"),
])
def test_an_online_window_beyond_the_limit_is_refused_before_allocating(kwargs, message):
    with pytest.raises(InputError, match=message):
        OnlineDetector(tiny_network_detector(), fps=25.0, **kwargs)


def test_streaming_arguments_of_the_wrong_kind_are_named():
    # compile="no" compiled (a non-empty str is true); video_id=None went into every emission; threads=0 or "2" ended
    # in torch's raw RuntimeError after the model had loaded
    from mgrec.infer.online import torch_threads

    with pytest.raises(InputError, match=r"compile: expected True or False, got 'no'"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, compile="no")
    with pytest.raises(InputError, match=r"video_id: expected a video id \(a non-empty str\), got None"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, video_id=None)
    for threads in (0, "2", True):
        with pytest.raises(InputError, match=r"threads: expected a whole number of threads, 1 or more"):
            with torch_threads(threads):
                pass


def test_a_resume_names_every_label_file_it_cannot_keep_at_once_and_an_old_or_edited_marker_for_what_it_is(
        tmp_path, capsys, monkeypatch):
    """An interrupted `--format smg` stream's folder whose label files cannot be kept was refused one file at a time
    (a folder of 50 streamed videos: 50 runs to learn them); a marker of an mgrec before label files were recorded in
    it ("written" absent) was said to hold files `changed since, e.g. emptied, or put there by hand`; a "written"
    edited into another kind was read as no file written, and with no label file there the resumed stream ended in a
    raw `TypeError` as it recorded its first."""
    import json

    from mgrec.cli import main
    from mgrec.smg_csv import INCOMPLETE_MARKER

    run, _, features, _ = replayed_clip(tmp_path)
    names = THREE_VIDEOS
    videos = folder_of_three_videos(tmp_path, features)
    command = ["stream", str(run), str(videos), "--lookahead", "0.01", "--hop", "8", "--format", "smg", "--out"]
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert main([*command, str(whole)]) == 0
    interrupt_a_video(monkeypatch, video=3)
    assert main([*command, str(out)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    files = [out / name / f"{name}_finelabels.csv" for name in names[:2]]
    texts = [path.read_text() for path in files]
    marker = out / INCOMPLETE_MARKER
    plan = json.loads(marker.read_text())
    assert set(plan["written"]) == set(names[:2])
    for path in files:
        path.write_text("")
    assert main([*command, str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"{files[0]}: is not the label file the interrupted stream wrote for video Sample0036 (and 1 other of the "
            f"2: {files[1]}) (changed since, e.g. emptied, or put there by hand): remove them, and the same command "
            "streams those videos again") in err
    for path, text in zip(files, texts):
        path.write_text(text)
    marker.write_text(json.dumps({key: value for key, value in plan.items() if key != "written"}))  # an old marker
    assert main([*command, str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"{marker}: made by an mgrec before label files were recorded in it (no \"written\"), so none of the 2 "
            f"label files in {out} can be told from one changed since or put there by hand: remove them") in err
    marker.write_text(json.dumps({**plan, "written": None}))  # edited
    assert main([*command, str(out)]) == 2
    assert f"{marker} [written]: expected the SHA-256 of each label file" in capsys.readouterr().err
    for path in files:
        path.unlink()
    assert main([*command, str(out)]) == 2  # was a raw TypeError once the first video was streamed
    assert f"{out} holds no label file yet: remove the marker, and the same command" in capsys.readouterr().err
    for path, text in zip(files, texts):
        path.write_text(text)
    marker.write_text(json.dumps(plan))
    assert main([*command, str(out)]) == 0
    assert "2 of 3 videos were streamed to their end before" in capsys.readouterr().err
    assert not marker.exists()
    for name in names:
        assert (out / name / f"{name}_finelabels.csv").read_text() == \
            (whole / name / f"{name}_finelabels.csv").read_text()


@pytest.mark.parametrize("given, said", [("runs/x", r"got 'runs/x': load the run first, with "
                                          r"OfflineDetector.from_run\(path\)"), (None, "got None$")])
def test_an_online_detector_given_no_offline_detector_says_what_it_takes(given, said):
    """`OnlineDetector("runs/x", fps=30)` (a run's path, as `from_run` takes it) or None: a raw AttributeError,
    "'str' object has no attribute 'members'"."""
    from mgrec.infer.online import FusedOnlineDetector

    for kind in (OnlineDetector, FusedOnlineDetector):
        with pytest.raises(InputError, match=r"^detector: expected an OfflineDetector \(OfflineDetector.from_run\(RUN\)"
                                             rf"\), {said}"):
            kind(given, fps=30.0)


@pytest.mark.parametrize("given, message", [
    ({"realtime": "no"}, r"^realtime: expected True or False, got 'no'$"),  # a true value: paced by the clock
    ({"wall_clock": "no"}, r"^wall_clock: expected True or False, got 'no'$"),  # it added the clock's time
    ({"out": "gestures.jsonl"}, r"^out: expected a text stream \(sys.stdout, an open file, io.StringIO\), got "
                                r"'gestures.jsonl': open it first"),
])
def test_stream_file_names_an_argument_of_the_wrong_kind_before_streaming(tmp_path, given, message):
    """`stream_file(run, path, out="gestures.jsonl")`: an AttributeError ('str' object has no attribute 'write') at the
    first gesture, after the stream's work; a str for realtime or wall_clock was taken as True."""
    with pytest.raises(InputError, match=message):
        stream_file(tmp_path / "run", tmp_path / "v.npy", **given)


def test_run_names_chunks_that_are_no_iterable_of_chunks_when_called():
    # before: None a raw TypeError at the first emission asked for; a whole (T, C) array pushed one 1-D row at a time
    # (`expected shape (T, 16), got (16,)` of "chunk 1"); a str or dict iterated by its characters or keys
    online = OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60)
    rows = np.zeros((20, online.feature_dim), np.float32)
    for chunks, message in ((None, r"got None$"), ("rows.npy", r"got 'rows.npy'$"), ({"a": rows}, r"got \{'a': "),
                            (rows, r"got one ndarray of shape \(20, \d+\): give \[array\], or push\(array\)"),
                            (torch.from_numpy(rows), r"got one Tensor of shape")):
        with pytest.raises(InputError, match=r"^chunks: expected an iterable of \(T, C\) arrays .*" + message):
            online.run(chunks)
    assert isinstance(list(online.run([rows, rows])), list)
