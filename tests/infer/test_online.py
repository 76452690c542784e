"""Online detection: offline equivalence, one emission per gesture, latency bounds, bounded memory.

Most tests use a *pointwise* stand-in network whose predictions are written into the features: at the
centre step of each gesture, channel k (its class) holds a high logit and the last two channels hold the
distances to its start and end. Its output at a step depends on that step only, so an online window
predicts exactly what the whole file predicts, and the expected emissions are known by construction.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers import one_torch_thread, tiny_network_detector  # noqa: F401 (autouse)
from torch import nn

from mgrec.config import Config, DataConfig, ModelConfig, load_config
from mgrec.errors import InputError
from mgrec.evaluate.matching import tiou
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import Emission, FeatureWindow, OnlineDetector, hard_set_postprocess
from mgrec.model.detector import DetectorOutput
from mgrec.postprocess.video import detect_video

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


@pytest.mark.parametrize("voting", [0.0, 0.3])  # voting averages the kept ends with candidates below the threshold
@pytest.mark.parametrize("nms", ["soft", "hard"])
def test_hard_set_postprocess_gives_the_same_hard_set(nms, voting):
    detector = tiny_network_detector(seed=7)
    post = replace(detector.postprocess, nms=nms, max_detections=300, voting=voting)
    features = np.random.default_rng(8).normal(size=(100, 16)).astype(np.float32)
    grid = detector.grid(FPS)
    ranked = detect_video(detector.model, features, grid, post, detector.classes, "v")
    assert len(ranked) == 300
    for rank in (0, 7, 40, 150):
        threshold = ranked[rank].score
        fast_post = hard_set_postprocess(replace(post, score_threshold=threshold))
        fast = detect_video(detector.model, features, grid, fast_post, detector.classes, "v")
        if nms == "soft" or not voting:  # hard NMS under voting stops at the cap, as the ranked list does
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


def test_a_flush_interrupted_during_its_update_gives_every_gesture_at_the_next_flush(monkeypatch):
    """Ctrl-C during `flush`'s final update marked the stream ended before the update was made: the next flush
    returned [] and the gestures still pending were lost without a word, with those an interrupted push had decided
    and left for the next push or flush to return. `flush` ends the stream once its update is made."""
    features = encode(40, [(2, 8, 0), (10, 15, 1), (18, 26, 2), (28, 34, 0), (33, 39, 1)])
    detector = pointwise_detector(PointwiseModel())
    whole = OnlineDetector(detector, FPS, lookahead=0.5, hop=8, history=80, video_id="v")
    expected = list(whole.run([features]))
    decided_at_the_end = [e for e in expected if e.emitted_at == whole.now]
    assert decided_at_the_end and len(decided_at_the_end) < len(expected)

    online = OnlineDetector(detector, FPS, lookahead=0.5, hop=8, history=80, video_id="v")
    detect_window = OnlineDetector._detect_window
    calls = []

    def interrupted_in_the_last_two(self):
        calls.append(1)
        if len(calls) in (5, 6):  # the fifth update, in push, then the final update, in flush
            raise KeyboardInterrupt
        return detect_window(self)

    monkeypatch.setattr(OnlineDetector, "_detect_window", interrupted_in_the_last_two)
    with pytest.raises(KeyboardInterrupt):
        online.push(features)
    with pytest.raises(KeyboardInterrupt):
        online.flush()
    emitted = online.flush()
    assert [e.detection for e in emitted] == [e.detection for e in expected]
    assert online.flush() == []
    with pytest.raises(InputError, match=r"^push\(\) after flush\(\)"):
        online.push(features[:1])


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


def test_feeding_a_stream_after_its_flush_is_refused_naming_what_to_make_instead():
    # push() after flush() raised a bare RuntimeError, not the InputError of the class's other misuses, and run()
    # after it raised only at its first chunk
    detector = pointwise_detector(PointwiseModel())
    online = OnlineDetector(detector, FPS, hop=4, history=64, video_id="cam")
    online.push(np.zeros((8, NUM_CLASSES + 2), dtype=np.float32))
    online.flush()
    ended = (r"after flush\(\): flush\(\) ended this stream \(video 'cam', 8 feature steps, .* s\), which takes no "
             r"more rows; for a new stream, make a new OnlineDetector\(detector, \.\.\.\) of the same loaded run")
    with pytest.raises(InputError, match=rf"^push\(\) {ended}"):
        online.push(np.zeros((1, NUM_CLASSES + 2), dtype=np.float32))
    with pytest.raises(InputError, match=rf"^run\(\) {ended}"):
        online.run([])  # when called, before any chunk is asked for
    assert online.received_steps == 8 and online.flush() == []


def test_push_after_the_flush_of_a_stream_fed_by_push_streams_says_that_flush_ended_it():
    """push() after flush() of a run of several streams fed by push_streams was refused as feeding one stream two ways
    ("feed one stream by one of them"), though the stream took no more rows either way: flush() had ended it, as
    push_streams() and push_members() said."""
    from mgrec.config import StreamConfig

    data = DataConfig(streams=[StreamConfig(name="scores", features="s", feature_dim=NUM_CLASSES, stride=4, window=16),
                               StreamConfig(name="offsets", features="o", feature_dim=2, stride=4, window=16)],
                      max_seq_len=64)
    config = Config(data=data, model=ModelConfig(input_dim=NUM_CLASSES + 2, num_classes=NUM_CLASSES, num_levels=1,
                                                 regression_ranges=[[0, 10000]]))
    detector = OfflineDetector(PointwiseModel(), config, [f"g{k}" for k in range(NUM_CLASSES)], config.postprocess,
                               Path("."))
    online = OnlineDetector(detector, FPS, hop=4, history=64, video_id="cam")
    online.push_streams({"scores": np.zeros((8, NUM_CLASSES), np.float32), "offsets": np.zeros((8, 2), np.float32)})
    online.flush()
    for method, feed in (("push", lambda: online.push(np.zeros((1, NUM_CLASSES + 2), np.float32))),
                         ("push_streams", lambda: online.push_streams({"scores": np.zeros((1, NUM_CLASSES))}))):
        with pytest.raises(InputError, match=rf"^{method}\(\) after flush\(\): flush\(\) ended this stream \(video "):
            feed()
    assert online.received_steps == 8


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
    from mgrec.devices import torch_threads

    with pytest.raises(InputError, match=r"compile: expected True or False, got 'no'"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, compile="no")
    with pytest.raises(InputError, match=r"video_id: expected a video id \(a non-empty str\), got None"):
        OnlineDetector(tiny_network_detector(), FPS, lookahead=1.0, hop=8, history=60, video_id=None)
    for threads in (0, "2", True):
        with pytest.raises(InputError, match=r"threads: expected a whole number of threads, 1 or more"):
            with torch_threads(threads):
                pass


def test_stream_fps_names_only_the_run_s_streams_and_rates_by_the_fps_rule():
    # a name the run has not (a typo, or any name for a run of one stream) was ignored, and a str or NaN fps was
    # handed to the aligner's grid
    detector = tiny_network_detector()
    for given, message in (({"pose": 30.0}, r"^stream_fps: 'pose' is not an input stream of .* \(its streams: "
                                            r"features\)$"),
                           ({"features": "30"}, r"^stream_fps\['features'\]: expected a number of frames per second"),
                           ({"features": float("nan")}, r"^stream_fps\['features'\]: expected a number of frames"),
                           ([30.0], r"^stream_fps: expected \{stream name: fps\} of the run's streams \(features\), "
                                    r"got \[30\.0\]$")):
        with pytest.raises(InputError, match=message):
            OnlineDetector(detector, FPS, lookahead=1.0, hop=8, history=60, stream_fps=given)
    # the one stream of a run without data.streams is "features", as stream_file names it
    OnlineDetector(detector, FPS, lookahead=1.0, hop=8, history=60, stream_fps={"features": FPS})


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



@pytest.mark.parametrize("where", ["on_update", "on_update_error", "_emit", "_emit_in_flush"])
def test_an_interrupt_between_an_update_s_decision_and_its_emissions_loses_no_gesture(monkeypatch, where):
    """An interrupt after an update had decided its gestures (moved them into the emitted ones, advanced the cutoff) and
    before it made their emissions (Ctrl-C there, an `on_update` callback that raised) lost them: counted as emitted,
    so never decided again, and never returned by any push or flush. The rule's state is now stored together with the
    emissions, which the next push or flush returns; every gesture of the uninterrupted stream comes exactly once."""
    rng = np.random.default_rng(11)
    gestures = draw_gestures(370, rng, min_len=6, max_len=20, max_gap=10) + [(384, 397, 1)]  # the last one ends
    features = encode(400, gestures)  # within the lookahead; 50 hops of 8: flush decides on the last hard set
    detector = pointwise_detector(PointwiseModel())
    settings = dict(lookahead=0.5, hop=8, history=80, video_id="v")
    whole = OnlineDetector(detector, FPS, **settings)
    expected, emitting = [], []  # the emissions, and the steps received at each update that emits some
    for begin in range(0, len(features), 8):
        emissions = whole.push(features[begin:begin + 8])
        expected += emissions
        emitting += [whole.received_steps] * bool(emissions)
    at_the_end = whole.flush()
    expected += at_the_end
    assert len(expected) >= 10 and at_the_end and whole.num_updates == 50

    online = OnlineDetector(detector, FPS, **settings)
    failure = ValueError("the callback failed") if where == "on_update_error" else KeyboardInterrupt()
    raised, flushing = [], []

    def fails_here(steps: int) -> bool:  # at the second update that emits gestures, or at the flush's decision
        if raised or (flushing if where == "_emit_in_flush" else steps != emitting[1]):
            return False
        raised.append(steps)
        return True

    if where.startswith("on_update"):
        def on_update(ms: float) -> None:
            if fails_here(online.received_steps):
                raise failure
        online.on_update = on_update
    else:
        emit = OnlineDetector._emit

        def interrupted_emit(self, detections, compute_ms):
            if detections and fails_here(self.received_steps):
                raise failure
            return emit(self, detections, compute_ms)
        monkeypatch.setattr(OnlineDetector, "_emit", interrupted_emit)

    emitted = []
    for begin in range(0, len(features), 24):
        try:
            emitted += online.push(features[begin:begin + 24])
        except (KeyboardInterrupt, ValueError):  # the caller goes on from where the stream's clock stands
            emitted += online.push(features[online.received_steps:begin + 24])
    flushing.append(True)
    try:
        emitted += online.flush()
    except KeyboardInterrupt:
        emitted += online.flush()
    assert len(raised) == 1
    assert [e.detection for e in emitted] == [e.detection for e in expected]
    assert online.flush() == [] and online.num_updates == 50


def test_a_fused_stream_s_post_processing_is_the_ensemble_s_not_member_0_s():
    """`FusedOnlineDetector` took its post-processing (`postprocess`, the settings a stream says it decides with) from
    member 0, whose threshold is its own run's, not the one the ensemble tuned on val on the fused scores (and it has no
    per-class ones where the ensemble has). It is now the ensemble's, as `detect` on the ensemble applies it to the
    fused lists; the stream emits the ensemble's hard set, which member 0's threshold would have emptied."""
    from mgrec.infer.online import FusedOnlineDetector

    first, second = tiny_network_detector(seed=5), tiny_network_detector(seed=6)
    features = np.random.default_rng(6).normal(size=(120, 16)).astype(np.float32)
    fps = 1000.0

    def ensemble_of(post):
        return OfflineDetector(None, first.config, first.classes, post, Path("."), members=[first, second])

    ranked = ensemble_of(first.postprocess).detect(features, video_id="video", fps=fps)
    # the ensemble's own, tuned on its fused scores (an untrained network's are near 0.01, member 0's bar is 0.3)
    ensemble = ensemble_of(replace(first.postprocess, score_threshold=ranked[10].score,
                                   class_thresholds=[ranked[6].score, ranked[10].score, ranked[14].score]))
    online = FusedOnlineDetector(ensemble, fps=fps, lookahead=0.01, hop=200, history=230, video_id="video")
    assert online.postprocess == hard_set_postprocess(ensemble.postprocess)
    assert (online.postprocess.score_threshold, online.postprocess.class_thresholds) == (
        ensemble.postprocess.score_threshold, ensemble.postprocess.class_thresholds)
    assert online.postprocess.score_threshold != first.postprocess.score_threshold
    # one update over the whole clip (a hop longer than it): the stream emits detect's hard set of the ensemble
    emitted = [e.detection for e in online.run([{0: features, 1: features}])]
    expected = ensemble.hard_set(ensemble.detect(features, video_id="video", fps=fps))
    assert sorted(map(key, emitted)) == sorted(map(key, expected)) and expected
    assert first.hard_set(emitted) == []  # at member 0's threshold, none
