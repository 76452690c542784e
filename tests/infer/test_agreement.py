"""bf16 inference (`--precision`): agreement with float32 within the stated tolerances, exact float32 when
asked, the precision recorded in every output, and the online detector (eager and compiled) under it.

bf16 runs here whatever the CPU: forced bf16 is emulated (slowly) where the CPU has no native bf16, and
computes the same numbers (autocast rounds the same way), so the tolerances are checked on any machine.
"""

from __future__ import annotations

import io
import json
import traceback
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers import small_config
from tests.model.helpers import tiny_config
from torch.utils._python_dispatch import TorchDispatchMode

from mgrec import devices
from mgrec.cli import main
from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, TrainConfig
from mgrec.data.annotations import load_annotations
from mgrec.data.features import load_features
from mgrec.errors import InputError
from mgrec.infer import online as online_module
from mgrec.infer.agreement import TOLERANCES, Agreement, compare, compare_video
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.offline import OfflineDetector
from mgrec.infer.online import OnlineDetector
from mgrec.infer.stream import stream_file
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import detect_video
from mgrec.records import Detection
from mgrec.train.loop import train

# Every (point, class) candidate kept, none suppressed (hard NMS drops only a tIoU above 1): the two
# precisions are compared candidate by candidate. Soft-NMS would amplify a score difference of 1e-4
# into a different decay wherever two overlapping candidates swap ranks; benchmarks/precision.py
# measures that on the demo run (ranked list and hard set).
EVERY_CANDIDATE = PostprocessConfig(nms="hard", iou_threshold=1.0, pre_nms_thresh=0.0, pre_nms_topk=100_000,
                                    max_detections=100_000, min_duration=0.0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from mgrec.data.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("precision")
    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=5, feature_dim=16, length=160, seed=1,
                                   subsets=("train", "train", "val", "test"))
    config = small_config(
        paths, seed=0, max_seq_len=128,
        train=TrainConfig(epochs=3, warmup_epochs=1, batch_size=2, crops_per_video=2, lr=5e-3, eval_every=3),
        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100),
    )
    train(config, root / "run", progress=False, log=lambda *_: None)
    return root / "run", paths


def every_candidate(run, precision: str) -> OfflineDetector:
    detector = OfflineDetector.from_run(run, device="cpu", precision=precision)
    detector.postprocess = replace(EVERY_CANDIDATE, score_threshold=detector.postprocess.score_threshold)
    return detector


def test_bf16_detections_agree_with_fp32_within_the_stated_tolerances(trained_run):
    run, paths = trained_run
    reference, other = every_candidate(run, "fp32"), every_candidate(run, "bf16")
    assert (reference.precision, other.precision) == ("fp32", "bf16")
    files = sorted(paths.features.glob("*.npy"))
    fp32 = {p.stem: reference.detect(p) for p in files}
    bf16 = {p.stem: other.detect(p) for p in files}
    step = reference.grid(load_annotations(paths.annotations).videos[files[0].stem].fps).seconds_per_step()
    agreement = compare(fp32, bf16, step)
    assert agreement.reference_count > 3000  # every candidate of 4 videos
    assert agreement.problems() == [], agreement
    # bf16 did run: the scores moved (by far less than the tolerance)
    moved = [abs(a.score - b.score) for a, b in zip(fp32[files[0].stem], bf16[files[0].stem])]
    assert 0 < max(moved)
    assert agreement.max_score_difference < TOLERANCES.score / 5


@pytest.mark.parametrize("variant", ["mgrec", "dyfadet", "actionformer"])
def test_under_bf16_autocast_the_final_predictors_run_in_float32(variant):
    """The towers run in bf16, the final class and boundary convs in float32 (the logits' accuracy is
    theirs: `model.heads._in_float32`); probabilities stay within the score tolerance."""
    torch.manual_seed(0)
    model = build_detector(tiny_config(variant, num_levels=3)).eval()
    x, mask = torch.randn(1, 24, 96), torch.ones(1, 1, 96, dtype=torch.bool)
    with torch.inference_mode():
        fp32 = model(x, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x, mask)
    assert all(t.dtype == torch.float32 for t in bf16.cls_logits + bf16.offsets)
    for a, b, stride in zip(fp32.cls_logits, bf16.cls_logits, fp32.strides):
        assert (a.sigmoid() - b.sigmoid()).abs().max() < TOLERANCES.score
    for a, b, stride in zip(fp32.offsets, bf16.offsets, fp32.strides):
        assert ((a - b).abs() * stride).max() < 1.0  # within one feature step
    assert any(not torch.equal(a, b) for a, b in zip(fp32.cls_logits, bf16.cls_logits))  # bf16 did run


# Where float32 features are made on purpose under bf16 autocast: the channel LayerNorm's statistics and
# the final predictors (`model.heads._in_float32`, `Predictors.classify` / `regress`), in these functions
# and whatever they call; and the detector's input, the float32 features themselves.
FLOAT32_ON_PURPOSE = {"at_least_float32", "_channel_layer_norm", "grouped_channel_layer_norm", "_in_float32",
                      "classify", "regress"}
THE_INPUT = ("detector.py", "forward")


class Float32Features(TorchDispatchMode):
    """While active, records where each float32 tensor of features was made (batch 1 first, 8 channels
    or more next to last, a time axis of at least `min_steps` last: not masks or gates): the innermost
    frame in src/mgrec/model, unless a function of FLOAT32_ON_PURPOSE is on the stack (those are counted
    in `on_purpose`)."""

    def __init__(self, min_steps: int) -> None:
        super().__init__()
        self.min_steps = min_steps
        self.makers: set[tuple[str, str]] = set()
        self.on_purpose = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if (isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.dim() >= 3
                and out.shape[0] == 1 and out.shape[-2] >= 8 and out.shape[-1] >= self.min_steps):
            frames = [frame for frame in traceback.extract_stack() if "/mgrec/model/" in frame.filename]
            if any(frame.name in FLOAT32_ON_PURPOSE for frame in frames):
                self.on_purpose += 1
            elif frames:
                self.makers.add((Path(frames[-1].filename).name, frames[-1].name))
        return out


@pytest.mark.parametrize("variant", ["mgrec", "dyfadet", "actionformer"])
@pytest.mark.parametrize("length", [96, 4096])  # the mgrec head in one pass (short inputs) and tower by tower
def test_under_bf16_autocast_the_features_stay_bf16_outside_the_norms_and_predictors(variant, length):
    """Where a float32 parameter meets bf16 features in an element-wise op, type promotion turns the
    result, and everything computed from it, into float32: twice the memory traffic for no accuracy
    that the bf16 convolutions keep. So such parameters are cast to the features' dtype (the dtype rule
    of `mgrec.model.masking`): every float32 tensor of features comes from where float32 is chosen."""
    torch.manual_seed(0)
    model = build_detector(tiny_config(variant, num_levels=3)).eval()
    x, mask = torch.randn(1, 24, length), torch.ones(1, 1, length, dtype=torch.bool)
    recorder = Float32Features(min_steps=length // 8)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16), recorder:
        model(x, mask)
    assert recorder.makers <= {THE_INPUT}, recorder.makers
    assert recorder.on_purpose > 0  # the recorder sees the norms' and the predictors' float32


def test_fp32_gives_exactly_the_float32_detections(trained_run, monkeypatch):
    run, paths = trained_run
    path = next(paths.features.glob("*.npy"))
    fp32 = OfflineDetector.from_run(run, device="cpu", precision="fp32")
    assert fp32.autocast is None and fp32.precision == "fp32"
    # the plain float32 pass, as detection ran before --precision existed
    plain = detect_video(fp32.model, load_features(path), fp32.grid(fp32.sidecar_fps(path)), fp32.postprocess,
                         fp32.classes, path.stem)
    assert fp32.detect(path) == plain
    # auto on a CPU, with or without native bf16: float32, exactly (bf16 was measured slower there)
    for native in (False, True):
        monkeypatch.setattr(devices, "native_bf16_cpu", lambda native=native: native)
        auto = OfflineDetector.from_run(run, device="cpu")
        assert auto.autocast is None and auto.precision == "fp32" and auto.detect(path) == plain


def test_detect_cli_with_precision_fp32_writes_exactly_the_float32_results(trained_run, tmp_path):
    run, paths = trained_run
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "d.json"), "--all",
                 "--precision", "fp32"]) == 0
    written = json.loads((tmp_path / "d.json").read_text())["results"]
    detector = OfflineDetector.from_run(run, device="cpu", precision="fp32")
    expected = {p.stem: [d.to_json() for d in detector.detect(p)] for p in sorted(paths.features.glob("*.npy"))}
    assert written == json.loads(json.dumps(expected))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_precision_used_is_recorded_in_every_output(trained_run, tmp_path, capsys, precision):
    run, paths = trained_run
    assert main(["detect", str(run), str(paths.features), "--out", str(tmp_path / "d.json"),
                 "--precision", precision]) == 0
    assert f"in 4 videos ({precision} inference), the hard set" in capsys.readouterr().out
    assert json.loads((tmp_path / "d.json").read_text())["mgrec"]["inference_precision"] == precision

    assert main(["evaluate", str(run), "--precision", precision]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"evaluated 1 video of split test with checkpoint best and {precision} inference "
                           "(score threshold ")
    scores = json.loads((run / "eval_test.json").read_text())
    assert scores["inference_precision"] == precision
    assert scores["provenance"]["command"].endswith(f"--precision {precision}")
    assert json.loads((run / "detections_test.json").read_text())["mgrec"]["inference_precision"] == precision

    feature = sorted(paths.features.glob("*.npy"))[-1]
    assert main(["stream", str(run), str(feature), "--lookahead", "0.5", "--precision", precision]) == 0
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary.startswith(f"stream {feature.stem}: ") and summary.endswith(f" ms ({precision} inference)")


def test_auto_is_recorded_as_the_precision_it_picked(trained_run, monkeypatch):
    run, paths = trained_run
    monkeypatch.setattr(devices, "native_bf16_cpu", lambda: True)  # auto is float32 on a CPU all the same
    result = evaluate_run(run, split="test", device="cpu")
    assert result["inference_precision"] == "fp32"
    assert result["provenance"]["command"].endswith("--precision auto")


def test_a_bad_precision_is_refused_naming_the_option(trained_run, capsys):
    run, paths = trained_run
    with pytest.raises(SystemExit) as exit_info:
        main(["detect", str(run), str(paths.features), "--out", "x.json", "--precision", "fp16"])
    assert exit_info.value.code == 2
    assert "argument --precision: invalid choice: 'fp16'" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"precision='half': expected one of auto, fp32, bf16"):
        OfflineDetector.from_run(run, precision="half")


# -- the network's forward only -----------------------------------------------------------------


class AutocastRecorder(torch.nn.Module):
    """A stand-in network that records the autocast state its forward pass runs under."""

    max_div_factor = 4

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[torch.dtype | None] = []

    def forward(self, features, mask):
        from mgrec.model.detector import DetectorOutput

        enabled = torch.is_autocast_enabled("cpu")
        self.seen.append(torch.get_autocast_dtype("cpu") if enabled else None)
        logits = torch.full((1, features.shape[2], self.num_classes), -10.0)
        return DetectorOutput([logits], [torch.ones(1, features.shape[2], 2)], [mask[:, 0]], [1])


def recorder_detector(autocast) -> OfflineDetector:
    config = Config(data=DataConfig(feature_dim=5, stride=4, window=16, max_seq_len=64),
                    model=ModelConfig(num_classes=3))
    return OfflineDetector(AutocastRecorder(), config, ["a", "b", "c"], config.postprocess, run_dir=".",
                           autocast=autocast)


def test_autocast_covers_the_forward_only_and_none_leaves_the_callers_state():
    model = AutocastRecorder()
    grid = Config().data.grid(50.0)
    features = np.zeros((20, 5), dtype=np.float32)
    detect_video(model, features, grid, PostprocessConfig(), ["a", "b", "c"], "v", autocast=torch.bfloat16)
    assert model.seen == [torch.bfloat16] and not torch.is_autocast_enabled("cpu")
    detect_video(model, features, grid, PostprocessConfig(), ["a", "b", "c"], "v")
    assert model.seen[-1] is None  # training's validation: float32
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller's own autocast (benchmarks/speed.py --dtype bf16)
        detect_video(model, features, grid, PostprocessConfig(), ["a", "b", "c"], "v")
    assert model.seen[-1] == torch.bfloat16


def test_the_online_detector_runs_the_network_at_the_detectors_precision():
    for autocast in (None, torch.bfloat16):
        detector = recorder_detector(autocast)
        online = OnlineDetector(detector, fps=50.0, lookahead=0.5, hop=4, history=32)
        list(online.run([np.zeros((20, 5), dtype=np.float32)]))
        assert online.num_updates == 5 and set(detector.model.seen) == {autocast}


def test_the_network_is_compiled_under_the_autocast_it_runs_with(monkeypatch):
    compiled_under = []

    def fake_compile(model, **kwargs):
        def run(features, mask):
            compiled_under.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
            return model(features, mask)
        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = AutocastRecorder()
    first, length = online_module.compile_for_window(model, 30, 5, torch.bfloat16)
    # the warm-up pass traced under bf16, and the two passes checking it against the network ran under it too
    assert length == 32 and compiled_under == [torch.bfloat16] * 3
    assert online_module.compile_for_window(model, 30, 5, torch.bfloat16)[0] is first  # cached
    second, _ = online_module.compile_for_window(model, 30, 5, None)  # another precision: its own compilation
    assert second is not first and compiled_under == [torch.bfloat16] * 3 + [None] * 3


@pytest.mark.slow
def test_the_compiled_network_under_bf16_agrees_with_the_eager_one():
    """torch.compile (inductor) of the network under bf16 autocast: the same gestures as the eager bf16
    network within the stated tolerances. Slow: a compilation (tens of seconds on 2 cores)."""
    torch.manual_seed(0)
    model_cfg = tiny_config("mgrec", input_dim=16, num_classes=3, num_levels=3)
    config = Config(data=DataConfig(feature_dim=16, stride=4, window=16, max_seq_len=64), model=model_cfg,
                    postprocess=EVERY_CANDIDATE)
    model = build_detector(model_cfg).eval()
    features = np.random.default_rng(1).normal(size=(90, 16)).astype(np.float32)
    detector = OfflineDetector(model, config, ["a", "b", "c"], replace(EVERY_CANDIDATE, score_threshold=0.0),
                               run_dir=".", autocast=torch.bfloat16)
    # the whole stream in one window, decided at the end: one update, the offline candidates
    stream_seconds = detector.grid(50.0).covered_seconds(90)
    eager = OnlineDetector(detector, 50.0, lookahead=stream_seconds, hop=90, history=200)
    compiled = OnlineDetector(detector, 50.0, lookahead=stream_seconds, hop=90, history=200, compile=True)
    expected = [e.detection for e in eager.run([features])]
    got = [e.detection for e in compiled.run([features])]
    agreement = compare_video(expected, got, detector.grid(50.0).seconds_per_step())
    assert agreement.reference_count > 400 and agreement.problems() == [], agreement


# -- the agreement measure itself ----------------------------------------------------------------


def det(start: float, end: float, label: int, score: float) -> Detection:
    return Detection("v", start, end, label, f"c{label}", score)


def test_agreement_pairs_by_class_boundaries_within_one_step_and_closest_score():
    step = 0.1
    reference = [det(1.0, 2.0, 0, 0.9), det(1.02, 2.0, 0, 0.3), det(5.0, 6.0, 1, 0.5), det(8.0, 9.0, 2, 0.4)]
    other = [
        det(1.01, 2.05, 0, 0.305),  # near both class-0 detections: goes with the closer score (0.3)
        det(0.95, 1.98, 0, 0.895),
        det(5.0, 6.15, 1, 0.5),  # 1.5 steps away: no partner
        det(8.0, 9.0, 0, 0.4),  # another class: no partner
    ]
    agreement = compare_video(reference, other, step)
    assert (agreement.matched, agreement.reference_count, agreement.other_count) == (2, 4, 4)
    assert agreement.max_score_difference == pytest.approx(0.005)
    assert agreement.max_boundary_steps == pytest.approx(0.5)
    assert agreement.matched_fraction == 0.5 and agreement.count_difference == 0.0
    assert agreement.problems() == ["only 2 of 4 detections have a partner within one feature step (50.00%)"]


def test_agreement_problems_name_each_tolerance():
    agreement = Agreement(reference_count=200, other_count=196, matched=197, max_score_difference=0.02,
                          scores_beyond=3, max_boundary_steps=0.5)
    problems = agreement.problems()
    assert len(problems) == 3
    assert problems[0] == "196 detections against 200 (2.00% > 1%)"
    assert "197 of 200" in problems[1] and "0.0200 (> 0.01)" in problems[2]
    assert agreement.scores_within_fraction == pytest.approx(194 / 197)
    # one video missing on one side counts as nothing detected there
    assert compare({"a": [det(0, 1, 0, 0.5)]}, {}, 0.1).to_json()["matched_fraction"] == 0.0


def test_stream_file_reports_the_precision(trained_run):
    run, paths = trained_run
    feature = sorted(paths.features.glob("*.npy"))[-1]
    summary = stream_file(run, feature, lookahead=0.5, out=io.StringIO(), device="cpu", precision="bf16")
    assert summary.precision == "bf16" and summary.describe().endswith("(bf16 inference)")
