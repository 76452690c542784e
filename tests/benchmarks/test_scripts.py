"""The benchmark scripts run end to end at tiny sizes, so they cannot rot; their helpers are checked by hand."""

import hashlib
import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mgrec.config import load_config
from mgrec.data.annotations import load_annotations
from mgrec.data.demo import GRID
from mgrec.data.demo import RAREST_TO_COMMONEST as DEMO_RATIO
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.model.detector import build_detector
from mgrec.provenance import PROVENANCE_KEY

REPO = Path(__file__).resolve().parents[2]
DEMO_BASE = REPO / "src" / "mgrec" / "configs" / "demo" / "base.yaml"
TINY_MODEL = ["model.embed_dim=16", "model.mlp_dim=32", "model.head_dim=16"]
SPEED_KEYS = {
    "params", "flops_forward_2304", "train_step_s_bs2", "train_step_s_bs8", "peak_mem_train_bs2_bytes",
    "infer_s_2304", "infer_s_6912", "infer_net_s_2304", "infer_post_s_2304", "online_update_s",
    "device", "dtype", "model", PROVENANCE_KEY,
}
PROVENANCE_FIELDS = {"command", "date", "git_commit", "machine", "torch", "threads", "mgrec"}
RESULTS = REPO / "benchmarks" / "results"
SPEED_CAMPAIGN = RESULTS / "2026-11-26_aef645c_speed-cpu"


def assert_provenance(result: dict, command_start: str, threads: int | None) -> dict:
    """The result carries the provenance record of the command that wrote it (`threads` None: any count)."""
    record = result[PROVENANCE_KEY]
    assert set(record) == PROVENANCE_FIELDS
    assert record["command"].startswith(command_start), record["command"]
    assert record["torch"] == torch.__version__
    assert record["threads"] == threads if threads is not None else record["threads"] >= 1
    if (REPO / ".git").exists() and shutil.which("git"):
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", record["git_commit"]), record["git_commit"]
    return record


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def speed():
    return load_script("speed")


@pytest.fixture(scope="module")
def ablation():
    return load_script("ablation")


# -- speed.py ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_speed_writes_every_key(speed, tmp_path):
    out = tmp_path / "speed.json"
    argv = ["--device", "cpu", "--model", "actionformer", "--config", str(DEMO_BASE), "--length", "64",
            "--repeats", "1", "--online-updates", "1", "--online-history", "64", "--skip-bs8", "--threads", "1",
            "--json", str(out)]
    assert speed.main(argv) == 0
    result = json.loads(out.read_text())
    assert SPEED_KEYS <= result.keys()
    config = load_config(DEMO_BASE, ["model.variant=actionformer"])
    assert result["params"] == sum(p.numel() for p in build_detector(config.model).parameters())
    assert result["model"] == "actionformer" and result["device"] == "cpu"
    assert_provenance(result, "python benchmarks/speed.py --device cpu --model actionformer", threads=1)
    assert (result["length"], result["long_length"]) == (64, 192)
    assert result["train_step_s_bs8"] is None  # --skip-bs8
    for key in ("train_step_s_bs2", "infer_s_2304", "infer_s_6912", "infer_net_s_2304", "infer_post_s_2304",
                "online_update_s"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["flops_forward_2304"] > 0
    if Path("/proc/self/status").exists():
        assert "VmHWM" in result["peak_mem_method"]
        assert result["peak_mem_train_bs2_bytes"] >= result["mem_before_train_bs2_bytes"] > 0


def test_speed_rejects_a_length_the_pyramid_cannot_halve(speed, tmp_path, capsys):
    argv = ["--device", "cpu", "--config", str(DEMO_BASE), "--length", "100", "--json", str(tmp_path / "x.json")]
    assert speed.main(argv) == 2
    assert "--length 100 must be a multiple of the largest pyramid stride 16" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_speed_refuses_a_config_without_data_fps_before_timing(speed, tmp_path, capsys):
    # The feature grid comes from `DataConfig.grid` alone (no silent 28 fps): data.fps must be set.
    config = tmp_path / "no_fps.yaml"
    config.write_text(f"base: {DEMO_BASE}\ndata:\n  fps: null\n", encoding="utf-8")
    argv = ["--device", "cpu", "--config", str(config), "--length", "64", "--json", str(tmp_path / "x.json")]
    assert speed.main(argv) == 2
    assert "the features' fps is unknown: set data.fps" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_forward_flops_of_a_convolution_match_the_hand_count(speed):
    class OneConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(6, 10, kernel_size=3, padding=1, bias=False)

        def forward(self, x, mask):
            return self.conv(x) * mask

    # 2 FLOPs per multiply-add: 2 * C_in * C_out * kernel * T
    assert speed.forward_flops(OneConv(), input_dim=6, length=50, device=torch.device("cpu")) == 2 * 6 * 10 * 3 * 50


def test_random_ground_truth_lies_inside_the_crop(speed):
    config = load_config(DEMO_BASE)
    features, mask, segments, labels = speed.random_crops(
        3, 64, config, torch.device("cpu"), torch.Generator().manual_seed(1)
    )
    assert features.shape == (3, config.model.input_dim, 64) and bool(mask.all())
    for seg, lab in zip(segments, labels):
        assert seg.shape == (speed.SEGMENTS_PER_CROP, 2)
        assert bool((seg[:, 0] >= 0).all() and (seg[:, 1] <= 64).all() and (seg[:, 1] > seg[:, 0]).all())
        assert bool((lab >= 0).all() and (lab < config.model.num_classes).all())


def test_a_training_step_trains_and_time_training_restores_the_weights(speed):
    config = load_config(DEMO_BASE, ["model.variant=dyfadet", *TINY_MODEL])
    torch.manual_seed(0)
    model = build_detector(config.model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    step = speed.make_train_step(model, config, batch=2, length=64, device=torch.device("cpu"), bf16=False)
    losses = [step() for _ in range(3)]
    assert all(math.isfinite(loss) for loss in losses)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, initial[k])]
    assert changed, "AdamW steps left every weight unchanged"

    model.load_state_dict(initial)
    timed = speed.time_training(model, config, 2, 64, torch.device("cpu"), False, repeats=1)
    assert len(timed["samples"]) == 1 and timed["samples"][0] > 0
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_the_compiled_training_step_is_timed_apart_from_its_first_step(speed, monkeypatch):
    config = load_config(DEMO_BASE, ["model.variant=dyfadet", *TINY_MODEL])
    torch.manual_seed(0)
    model = build_detector(config.model)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    compiled = []
    real_compile = torch.compile

    def traced_only(network, **options):  # dynamo without inductor: the same path, in seconds
        compiled.append(options)
        return real_compile(network, backend="eager", **options)

    monkeypatch.setattr(torch, "compile", traced_only)
    timed = speed.time_training(model, config, 2, 64, torch.device("cpu"), False, repeats=2, compile=True)
    assert compiled == [{"dynamic": False, "options": {"fallback_random": True}}]  # as the training loop compiles it
    # the first step (tracing, here without inductor) is timed apart from the steps after it
    assert timed["compile_s"] > max(timed["samples"]) and len(timed["samples"]) == 2
    assert all(torch.equal(v, initial[k]) for k, v in model.state_dict().items())


# -- ablation.py ------------------------------------------------------------------------------


def test_another_demo_seed_has_its_own_cache_and_run_folders(ablation, monkeypatch, tmp_path):
    monkeypatch.setenv("MGREC_CACHE", str(tmp_path / "cache"))
    scratch = tmp_path / "runs" / "ablation"
    assert ablation.seed_folders(0, None, scratch) == (None, scratch)  # the demo's own cache, as before
    assert ablation.seed_folders(1, None, scratch) == (tmp_path / "cache" / "demo-seed1", tmp_path / "runs" /
                                                       "ablation-demo1")
    given = tmp_path / "mine"
    assert ablation.seed_folders(2, given, scratch) == (given, tmp_path / "runs" / "ablation-demo2")


def test_a_negative_demo_seed_is_refused_naming_the_option(ablation, capsys):
    with pytest.raises(SystemExit) as refused:
        ablation.parse_args(["--study", "quality", "--demo-seed", "-1"])
    assert refused.value.code == 2
    assert "--demo-seed must be 0 or more, got -1" in capsys.readouterr().err


def test_mean_and_sample_std_by_hand(ablation):
    mean, std = ablation.mean_std([0.2, 0.4])
    assert mean == pytest.approx(0.3) and std == pytest.approx(math.sqrt(0.02))
    assert ablation.mean_std([0.25]) == (0.25, None)


def test_summary_table_rows_follow_table2_order(ablation):
    def run(config, seed, f1):
        return {
            "config": config,
            "seed": seed,
            "training": {"seconds": 10.0 * (seed + 1)},
            "test": {"f1": f1, "f1_miga": f1, "average_mAP": 0.5},
        }

    table = ablation.summary_table([run("mgrec", 0, 0.2), run("dyfadet", 0, 0.1), run("mgrec", 1, 0.4)])
    rows = table.splitlines()[2:]
    assert len(rows) == 2 and "`dyfadet`" in rows[0] and "`mgrec`" in rows[1]
    assert "| 2 (seeds 0, 1) | 30.00 ± 14.14 | 30.00 ± 14.14 | 50.00 ± 0.00 | 15 | 33.44 |" in rows[1]
    assert "| 1 (seeds 0) | 10.00 | 10.00 | 50.00 | 10 | 27.78 |" in rows[0]


def test_run_names_differ_whenever_training_differs(ablation):
    names = {
        ablation.RunSpec("mgrec", 0, 15, ()).name(),
        ablation.RunSpec("mgrec", 1, 15, ()).name(),
        ablation.RunSpec("mgrec", 0, 2, ()).name(),
        ablation.RunSpec("dyfadet", 0, 15, ()).name(),
        ablation.RunSpec("mgrec", 0, 15, ("model.embed_dim=16",)).name(),
    }
    assert len(names) == 5


@pytest.mark.skipif(
    importlib.util.find_spec("seglearn") is None or importlib.util.find_spec("aeon") is None,
    reason="demo data not installed (pip install --no-deps seglearn==1.2.5 aeon==1.6.0)",
)
@pytest.mark.slow
def test_ablation_trains_scores_and_resumes(ablation, tmp_path, monkeypatch):
    tiny = [
        f"--override={item}"
        for item in [
            *TINY_MODEL,
            "data.max_seq_len=256",
            "train.crops_per_video=1",
            "train.batch_size=8",
            "postprocess.max_detections=100",
        ]
    ]
    argv = [
        "--configs",
        "dyfadet",
        "--seeds",
        "0",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--demo-cache",
        str(tmp_path / "demo"),
        "--scratch",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "out"),
        *tiny,
    ]
    assert ablation.main(argv) == 0
    report = json.loads((tmp_path / "out" / "ablation.json").read_text())
    (run,) = report["runs"]
    run_dir = Path(run["run_dir"])
    assert run_dir.parent == tmp_path / "runs" and run_dir.name.startswith("dyfadet-seed0-ep1-")
    scored = json.loads((run_dir / "eval_test.json").read_text())
    assert scored["split"] == "test"
    assert run["test"]["f1"] == scored["f1"] and 0.0 <= scored["f1"] <= 1.0
    assert load_config(run_dir / "config.yaml").seed == 0
    assert_provenance(report, "python benchmarks/ablation.py --configs dyfadet", threads=1)
    assert "machine" not in report and "torch_version" not in report  # only inside the provenance record
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert "| DyFADet (`dyfadet`) | 1 (seeds 0) |" in table
    assert f"git commit {report[PROVENANCE_KEY]['git_commit']}." in table

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was redone")

    # finished and scored: neither trained nor scored again
    monkeypatch.setattr(ablation, "train", must_not_run)
    monkeypatch.setattr(ablation, "evaluate_run", must_not_run)
    assert ablation.main(argv) == 0
    assert json.loads((tmp_path / "out" / "ablation.json").read_text())["runs"] == [run]

    # trained but not scored: scored again (same weights, same score), not trained
    (run_dir / "eval_test.json").unlink()
    monkeypatch.setattr(ablation, "evaluate_run", evaluate_run)
    assert ablation.main(argv) == 0
    (again,) = json.loads((tmp_path / "out" / "ablation.json").read_text())["runs"]
    assert again["test"] == run["test"]

    # without --out: this campaign's folder under benchmarks/results, named by date and commit
    monkeypatch.setattr(ablation, "RESULTS", tmp_path / "results")
    out_index = argv.index("--out")
    assert ablation.main(argv[:out_index] + argv[out_index + 2 :]) == 0
    (campaign,) = (tmp_path / "results").iterdir()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_([0-9a-f]{7}(-dirty)?|nogit)_ablation", campaign.name), campaign.name
    assert json.loads((campaign / "ablation.json").read_text())["runs"][0]["test"] == run["test"]


# -- heldout_data.py -------------------------------------------------------------------------

NEEDS_DEMO_DATA = pytest.mark.skipif(
    importlib.util.find_spec("seglearn") is None or importlib.util.find_spec("aeon") is None,
    reason="demo data not installed (pip install --no-deps seglearn==1.2.5 aeon==1.6.0)",
)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """The held-out-style benchmark built once (seed 0) and the script's module."""
    module = load_script("heldout_data")
    root = tmp_path_factory.mktemp("heldout") / "data"
    assert module.main(["--out", str(root), "--seed", "0"]) == 0
    return module, root


@NEEDS_DEMO_DATA
def test_heldout_benchmark_splits_subjects_and_labels_inside_its_streams(heldout):
    module, root = heldout
    annotations = load_annotations(root / "annotations.json")
    subjects = {split: {v.split("_")[1] for v in annotations.video_ids(split)} for split in module.SPLITS}
    assert {split: len(s) for split, s in subjects.items()} == module.SUBJECTS_PER_SPLIT
    assert not (subjects["train"] & subjects["val"] or subjects["train"] & subjects["test"]
                or subjects["val"] & subjects["test"])
    for video_id in annotations.video_ids():
        info = annotations.videos[video_id]
        features = np.load(root / "features" / f"{video_id}.npy")
        assert features.shape == (GRID.num_windows(info.num_frames), module.FEATURE_DIM)
        assert np.all(np.abs(features) < 1.0)  # softsign
        segments = sorted(annotations.segments[video_id], key=lambda s: s.start)
        assert segments and all(0 < s.start < s.end < info.duration for s in segments)
        assert all(a.end < b.start for a, b in zip(segments, segments[1:]))  # background between gestures
        lengths = [s.duration for s in segments]
        assert min(lengths) >= module.INSTANCE_SECONDS["min"] - 1e-9
        assert max(lengths) <= module.INSTANCE_SECONDS["max"] + 1e-9
    # the imbalance is another than the demo's, along another class order
    train = np.bincount([s.label_id for v in annotations.video_ids("train") for s in annotations.segments[v]],
                        minlength=annotations.num_classes)
    assert module.RAREST_TO_COMMONEST != DEMO_RATIO and train.min() < train.max() / 5
    assert list(np.argsort(-train)) != list(range(annotations.num_classes))


@NEEDS_DEMO_DATA
def test_heldout_build_is_reproducible_and_refuses_a_folder_it_did_not_make(heldout, tmp_path, capsys):
    module, root = heldout
    again = tmp_path / "again"
    assert module.main(["--out", str(again), "--seed", "0"]) == 0
    assert (again / "annotations.json").read_bytes() == (root / "annotations.json").read_bytes()
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    assert module.main(["--out", str(tmp_path / "theirs")]) == 2
    assert "not built by this script" in capsys.readouterr().err
    assert (tmp_path / "theirs" / "notes.txt").read_text() == "mine"


@NEEDS_DEMO_DATA
def test_heldout_build_recovers_from_a_killed_build_and_keeps_no_other_seeds_files(heldout, tmp_path):
    module, root = heldout
    folder = tmp_path / "data"
    assert module.main(["--out", str(folder), "--seed", "1"]) == 0
    (folder / "heldout_manifest.json").unlink()  # as a build killed before its last write leaves it
    assert module.main(["--out", str(folder), "--seed", "0"]) == 0
    assert sorted(p.name for p in (folder / "features").iterdir()) == sorted(p.name for p in
                                                                             (root / "features").iterdir())
    with pytest.raises(SystemExit):
        module.main(["--out", str(folder), "--seed", "-1"])


def test_the_quality_plan_off_the_demo_has_no_pseudo_row(ablation):
    # without --rows every row was planned, the pseudo row last, with the demo's unlabelled pool "None"
    assert [row for row, *_ in ablation.quality_plan(None)][-1] == "pseudo"
    off_demo = [row for row, *_ in ablation.quality_plan(None, on_demo=False)]
    assert "pseudo" not in off_demo and len(off_demo) == len(ablation.QUALITY_ROWS) - 1
    assert [row for row, *_ in ablation.quality_plan(["actionformer", "default"])] == ["default", "actionformer"]


def test_ablation_data_option_refuses_what_needs_the_demo(ablation, capsys, tmp_path):
    for extra in (["--demo-seed", "1"], ["--study", "fusion"], ["--study", "quality", "--rows", "pseudo"]):
        with pytest.raises(SystemExit):
            ablation.parse_args(["--data", str(tmp_path), *extra])
        assert "--data" in capsys.readouterr().err
    with pytest.raises(ablation.InputError, match="heldout_manifest.json: not a complete build"):
        ablation.dataset_paths(tmp_path)


@NEEDS_DEMO_DATA
@pytest.mark.slow
def test_ablation_trains_on_the_heldout_benchmark_in_its_own_run_folders(ablation, heldout, tmp_path):
    _, root = heldout
    argv = ["--study", "quality", "--rows", "actionformer", "--seeds", "0", "--epochs", "1", "--threads", "1",
            "--data", str(root), "--scratch", str(tmp_path / "runs" / "ablation"), "--out", str(tmp_path / "out"),
            *[f"--override={item}" for item in [*TINY_MODEL, "data.max_seq_len=256", "train.crops_per_video=1",
                                                "train.batch_size=8", "postprocess.max_detections=100"]]]
    assert ablation.main(argv) == 0
    report = json.loads((tmp_path / "out" / "ablation.json").read_text())
    (run,) = report["runs"]
    # never a demo run's folder, nor one of another build in a folder of the same name
    fingerprint = hashlib.sha1((root / "annotations.json").read_bytes()).hexdigest()[:8]
    assert Path(run["run_dir"]).parent == tmp_path / "runs" / f"ablation-data-{fingerprint}"
    assert load_config(Path(run["run_dir"]) / "config.yaml").data.annotations == str(root / "annotations.json")
    assert report["data"]["recipe"] == "heldout-v1" and report["rarest_third"]
    table = (tmp_path / "out" / "ablation.md").read_text()
    assert f"Test split of {root} (recipe heldout-v1, built with seed 0)" in table


# -- gpu.sh ---------------------------------------------------------------------------------


def test_gpu_script_parses():
    subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "gpu.sh")], check=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils timeout")
def test_gpu_script_smoke_mode_runs_on_cpu(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("av")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHON": sys.executable,
        "OUT": str(tmp_path),
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu.sh"), "--smoke"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "failures.txt").read_text() == ""
    speed_result = json.loads((tmp_path / "speed_cpu_smoke.json").read_text())
    assert speed_result["dtype"] == "bf16" and speed_result["params"] > 0
    assert_provenance(speed_result, "python benchmarks/speed.py --device cpu --model mgrec --dtype bf16", threads=1)
    extraction = json.loads((tmp_path / "extract_videomae_smoke.json").read_text())
    assert_provenance(extraction, "bash benchmarks/gpu.sh --smoke", threads=None)
    # 2 s at 28 fps = 56 frames; 16-frame windows every 4 frames: (56 - 16) // 4 + 1 = 11 clips
    assert (extraction["end_to_end"]["frames"], extraction["end_to_end"]["clips"]) == (56, 11)
    assert extraction["model_alone"]["clips_per_s"] > 0
    # the end-to-end training step, tiny, on the noise video (no sample video cached under this HOME)
    step = json.loads((tmp_path / "end_to_end_step_smoke.json").read_text())
    assert_provenance(step, "python benchmarks/end_to_end.py --full-step --tiny --device cpu", threads=1)
    assert step["video"]["source"].startswith("synthetic")
    (case,) = step["cases"]
    assert case["device"] == "cpu" and case["seconds_per_step"] > 0 and case["snippets_per_second"] > 0
    assert (tmp_path / "end_to_end_step_smoke.md").is_file()


def test_speed_table_shows_ratios_to_the_released_dyfadet(speed, tmp_path):
    keys = [key for key, *_ in speed.TABLE_ROWS]
    result = {key: None for key in keys} | {
        "model": "mgrec",
        "device": "cpu",
        "dtype": "fp32",
        "params": 2_500_000,
        "flops_forward_2304": 98.3e9,
        "train_step_s_bs2": 3.885,
        "train_step_compiled_s_bs2": 1.76,
        "infer_s_2304": 0.97,
        "online_update_s": 0.02,
        "online_history_steps": 2048,
        "machine": "test",
        "torch_version": "x",
        "threads": 2,
        "load_average_start": [1.0, 1.0, 1.0],
        "date": "today",
        "command": "python benchmarks/speed.py",
        "peak_mem_method": "VmHWM",
    }
    path = tmp_path / "mgrec.json"
    path.write_text(json.dumps(result))
    assert speed.main(["table", str(path), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "| parameters (M) | 2.50 | — | — |" in table
    assert "| forward GFLOPs, T = 2304 | 98.3 (0.50×) | 196.7 | — |" in table
    assert "| training step, batch 2 (s) | 3.88 (0.50×) | 7.77 | 3.42 | mgrec <= 3.88 |" in table
    assert "| training step, batch 8 (s) | — | — | — |" in table
    # the compiled step's ratio is to the released training step; its goal is issue #20's 0.25x
    assert "|   with the compiled network (s) | 1.76 (0.23×) | — | — | mgrec <= 1.94 |" in table
    assert "- mgrec train_step_compiled_s_bs2 = 1.76 meets the goal <= 1.942" in table
    assert "- mgrec train_step_s_bs2 = 3.885 meets the goal <= 3.885" in table
    assert "- mgrec infer_s_2304 = 0.97 MISSES the goal <= 0.291" in table
    assert "- mgrec online_update_s = 0.02 MISSES the goal <= 0.01" in table


def test_speed_table_reads_the_committed_results_written_before_the_provenance_record(speed, tmp_path):
    paths = [SPEED_CAMPAIGN / f"speed_cpu_{model}.json" for model in ("mgrec", "dyfadet", "actionformer")]
    assert speed.main(["table", *map(str, paths), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()

    def numbers(text: str) -> list[str]:  # the speed table's rows without the goal column (goals change)
        start = text.index("| | ")
        return [row.rsplit("|", 2)[0] for row in text[start : text.index("\n\n", start)].splitlines()]

    assert numbers(table) == numbers((SPEED_CAMPAIGN / "speed_cpu.md").read_text())
    old = json.loads(paths[0].read_text())
    assert PROVENANCE_KEY not in old
    assert f"| {old['date']} | — | `{old['command']}` |" in table  # no commit was recorded then


def test_speed_table_shows_the_provenance_of_new_results(speed, tmp_path):
    result = json.loads((SPEED_CAMPAIGN / "speed_cpu_mgrec.json").read_text())
    for key in ("machine", "torch_version", "threads", "date", "command"):
        del result[key]
    result[PROVENANCE_KEY] = {
        "command": "python benchmarks/speed.py --device cpu",
        "date": "2027-01-01T00:00:00+00:00",
        "git_commit": "f" * 40,
        "machine": "a machine",
        "torch": "9.9",
        "threads": 3,
        "mgrec": "0.1.0",
    }
    path = tmp_path / "new.json"
    path.write_text(json.dumps(result))
    assert speed.main(["table", str(path), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "| | mgrec (cpu fp32, 3 threads) |" in table
    assert (
        f"| mgrec | a machine | 9.9 | 3 | [1.08, 1.35, 1.24] | 2027-01-01T00:00:00+00:00 | {'f' * 40} "
        "| `python benchmarks/speed.py --device cpu` |" in table
    )


# -- load.py ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def load():
    return load_script("load")


@pytest.mark.slow
def test_load_runs_detect_and_a_stream_and_records_its_provenance(load, tmp_path):
    out = tmp_path / "load.json"
    # 0.002 h = 7.2 s of demo stream: 90 feature steps, a handful of updates
    load.main(["--files", "2", "--steps", "64", "--hours", "0.002", "--threads", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/load.py --files 2", threads=1)
    assert "machine" not in result
    assert result["detect"]["files"] == result["detect"]["videos_in_output"] == 2
    assert result["stream"]["steps"] == 90 and result["stream"]["updates"] > 0


def test_load_writes_into_a_campaign_folder_by_default(load, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "RESULTS", tmp_path)
    load.main(["--skip-detect", "--skip-stream"])
    (campaign,) = tmp_path.iterdir()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_([0-9a-f]{7}(-dirty)?|nogit)_load", campaign.name), campaign.name
    result = json.loads((campaign / "load.json").read_text())
    record = assert_provenance(result, "python benchmarks/load.py --skip-detect --skip-stream", threads=1)
    assert campaign.name.startswith(record["date"][:10])


# -- memory.py --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="memory.py reads peak RSS from /proc")
def test_memory_quick_writes_its_cases_and_provenance(tmp_path):
    from mgrec.model.memory import INFERENCE_BYTES_PER_STEP_CHANNEL, TRAINING_BYTES_PER_STEP_CHANNEL

    memory = load_script("memory")
    out = tmp_path / "campaign" / "memory.json"
    assert memory.main(["--json", str(out), "--quick"]) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, f"python benchmarks/memory.py --json {out} --quick", threads=1)
    cases = result["cases"]
    assert [(c["config"], c["steps"], c["batch"], c["training"]) for c in cases] == [
        ("demo/mgrec.yaml", 1024, 4, True), ("demo/mgrec.yaml", 8192, 1, False)
    ]
    embed_dim = load_config("demo/mgrec.yaml").model.embed_dim
    for case in cases:
        assert case["variant"] == "mgrec" and case["peak_growth_bytes"] > 0
        per_item = case["batch"] * case["steps"] * embed_dim
        assert case["bytes_per_step_channel"] == pytest.approx(case["peak_growth_bytes"] / per_item)
        # `mgrec.model.memory` estimates from these factors plus a margin: it must not underestimate.
        factor = TRAINING_BYTES_PER_STEP_CHANNEL["mgrec"] if case["training"] else INFERENCE_BYTES_PER_STEP_CHANNEL
        assert case["bytes_per_step_channel"] < factor


# -- online_eval.py ---------------------------------------------------------------------------


def test_online_eval_records_its_provenance(tmp_path):
    from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig
    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.run import RunDir

    online_eval = load_script("online_eval")
    paths = make_synthetic_dataset(
        tmp_path / "data", num_videos=2, num_classes=3, feature_dim=16, length=96, subsets=("train", "test")
    )
    model_config = ModelConfig(
        input_dim=16,
        num_classes=3,
        embed_dim=16,
        mlp_dim=32,
        head_dim=16,
        num_levels=3,
        regression_ranges=[[0, 4], [4, 8], [8, 10000]],
        drop_path=0.0,
    )
    config = Config(
        data=DataConfig(
            annotations=str(paths.annotations), features=str(paths.features), feature_dim=16, max_seq_len=64
        ),
        model=model_config,
        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=40),
    )
    torch.manual_seed(0)
    RunDir(tmp_path / "run").write_for_inference(
        config, ["a", "b", "c"], build_detector(model_config).eval(), score_threshold=0.0
    )
    out = tmp_path / "online.json"
    result = online_eval.main([str(tmp_path / "run"), "--split", "test", "--lookaheads", "1", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written[PROVENANCE_KEY] == result[PROVENANCE_KEY]
    assert_provenance(written, f"python benchmarks/online_eval.py {tmp_path / 'run'} --split test", threads=1)
    assert "threads" not in written and written["num_videos"] == 1 and len(written["online"]) == 1


@pytest.mark.slow
def test_compile_start_times_a_cold_and_a_warm_start(tmp_path):
    out = tmp_path / "compile_start.json"
    argv = ["--json", str(out), "--warm", "1", "--updates", "2",
            *[part for item in TINY_MODEL for part in ("--override", item)]]
    assert load_script("compile_start").main(argv) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/compile_start.py --json", threads=1)
    assert result["overrides"] == TINY_MODEL and len(result["warm"]) == 1
    for start in (result["cold"], *result["warm"]):
        assert start["process_s"] > start["setup_s"] > 0
        assert start["compiled_update_ms"] > 0 and start["eager_update_ms"] > 0
        assert start["history"] == 128  # the demo's window: data.max_seq_len // 8
    # The warm start found the cold one's lowered graph and compiled code in the shared cache (a graph that
    # enters autocast bypasses AOTAutograd's cache: `mgrec.model.norm.autocast_off`).
    assert result["cold"]["aot_autograd"].get("autograd_cache_saved") == 1
    assert result["warm"][0]["aot_autograd"].get("autograd_cache_hit") == 1
    assert result["warm"][0]["inductor_fx_graph_cache"].get("fxgraph_cache_hit") == 1
    assert result["warm"][0]["setup_s"] < result["cold"]["setup_s"]


# -- after_training.py ----------------------------------------------------------------------


def test_after_training_reproduces_the_runs_own_setting_and_bounds_it_by_the_oracle(tmp_path):
    from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig
    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.run import RunDir

    levers = load_script("after_training")
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=3, num_classes=3, feature_dim=16, length=96,
                                   subsets=("train", "val", "test"))
    model_config = ModelConfig(input_dim=16, num_classes=3, embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                               regression_ranges=[[0, 4], [4, 8], [8, 10000]], drop_path=0.0)
    config = Config(
        data=DataConfig(annotations=str(paths.annotations), features=str(paths.features), feature_dim=16,
                        max_seq_len=64),
        model=model_config,
        postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=40),
    )
    torch.manual_seed(0)
    RunDir(tmp_path / "run").write_for_inference(config, ["a", "b", "c"], build_detector(model_config).eval(),
                                                 score_threshold=0.0)
    checkpoints = tmp_path / "run" / "checkpoints"
    shutil.copy(checkpoints / "best.safetensors", checkpoints / "last.safetensors")  # trained: the last epoch won
    campaign = tmp_path / "ablation.json"
    campaign.write_text(json.dumps({"runs": [{"config": "mgrec", "row": "r", "seed": 0,
                                              "run_dir": str(tmp_path / "run")}]}))
    assert levers.main(["--ablation", str(campaign), "--shifts", "2"]) == 0
    written = json.loads((tmp_path / "after_training.json").read_text())
    assert_provenance(written, f"python benchmarks/after_training.py --ablation {campaign}", threads=1)
    f1 = written["runs"][0]["f1"]
    assert set(f1) == {"soft_nms_sigma_0.1", "soft_nms_sigma_0.25", "soft_nms_sigma_0.5", "soft_nms_sigma_1",
                       "hard_nms_tiou_0.3", "hard_nms_tiou_0.5", "hard_nms_tiou_0.7", "shift_0", "shift_1",
                       "oracle_threshold", "last_checkpoint", "shifts_0_to_1_fused", "across_classes_tiou_0.1",
                       "across_classes_tiou_0.3", "across_classes_tiou_0.5", "across_classes_tiou_0.7",
                       "time_scale_0.8", "time_scale_1.25", "time_scales_fused", "logit_adjustment_0",
                       "logit_adjustment_-0.25", "logit_adjustment_0.25", "logit_adjustment_0.5", "logit_adjustment_1",
                       "averaged_checkpoints", "passes_1", "passes_2", "passes_8", "passes_16",
                       "segment_classifier_w0", "segment_classifier_w0.25", "segment_classifier_w0.5",
                       "threshold_plateau_0.01", "threshold_plateau_0.03", "threshold_smoothed_20",
                       "threshold_smoothed_40", "threshold_relative_top5", "threshold_relative_top20",
                       "threshold_rate_split", "threshold_rate_video", "voting_0", "voting_0.5", "voting_0.6",
                       "voting_0.7", "voting_0.8", "voting_0.9"}
    # no voting is the run's own setting, with the rarest third and the ranked lists' mAP beside it
    assert {split: f1["voting_0"][split] for split in ("val", "test")} == f1["shift_0"]
    assert f1["voting_0.7"].keys() == f1["voting_0"].keys() == {"val", "test", "val_rare_f1", "test_rare_f1",
                                                                 "val_average_mAP", "test_average_mAP"}
    # no second opinion is the run's own setting; the classifier's accuracy on true gestures is kept beside
    assert {split: f1["segment_classifier_w0"][split] for split in ("val", "test")} == f1["shift_0"]
    assert set(f1["segment_classifier_w0.25"]) == {"val", "test", "val_rare_f1", "test_rare_f1", "val_average_mAP",
                                                   "test_average_mAP"}
    assert set(written["runs"][0]["segment_classifier_accuracy"]) == {"val", "test"}
    assert f1["soft_nms_sigma_0.5"] == f1["shift_0"]  # the run's own post-processing, unshifted
    # no adjustment is the run's own setting, now with the rarest third's F1 beside it
    assert {split: f1["logit_adjustment_0"][split] for split in ("val", "test")} == f1["shift_0"]
    assert set(f1["logit_adjustment_0.5"]) == {"val", "test", "val_rare_f1", "test_rare_f1"}
    assert written["summary"]["r"]["logit_adjustment_1"]["test_rare_f1"][0] == 100 * f1["logit_adjustment_1"][
        "test_rare_f1"]
    assert f1["last_checkpoint"] == f1["shift_0"]  # last = selected here: both rules agree everywhere
    assert f1["averaged_checkpoints"] == f1["shift_0"]  # and their average is the run
    # the run detects in one pass: passes_1 is the run itself, with the rarest third beside it
    assert {split: f1["passes_1"][split] for split in ("val", "test")} == f1["shift_0"]
    assert f1["passes_8"].keys() == {"val", "test", "val_rare_f1", "test_rare_f1"}
    crossfit = written["runs"][0]["val_crossfit"]
    assert crossfit["select"] == crossfit["last"]
    assert f1["oracle_threshold"]["test"] >= f1["shift_0"]["test"]
    assert f1["threshold_rate_split"]["val"] == f1["shift_0"]["val"]  # the rate is read at val's tuned threshold
    assert written["summary"]["r"]["shift_0"]["test"] == [100 * f1["shift_0"]["test"], None]
    # A shifted pass's detections are moved back onto the video's own time: none starts before the
    # dropped steps, and the unshifted pass is the detector's own output.
    from mgrec.data.annotations import load_annotations
    from mgrec.infer.offline import OfflineDetector

    detector = OfflineDetector.from_run(tmp_path / "run", device="cpu")
    test_data = levers.load_split(detector.config, load_annotations(paths.annotations), "test")
    _, unshifted = levers.shifted_detections(detector, test_data, 0)
    _, shifted = levers.shifted_detections(detector, test_data, 3)
    videos = load_annotations(paths.annotations).videos
    for video_id, detections in shifted.items():
        features = np.load(paths.features / f"{video_id}.npy")
        assert unshifted[video_id] == detector.detect(features, video_id, fps=videos[video_id].fps)
        assert detections and min(d.start_frame for d in detections) >= 3 * config.data.stride
        assert detections != unshifted[video_id]
    # A subset of the groups: the run's own setting and the oracle always, the rest as asked
    subset_json = tmp_path / "ts.json"
    assert levers.main(["--ablation", str(campaign), "--groups", "time_scales", "--json", str(subset_json)]) == 0
    subset = json.loads(subset_json.read_text())
    assert set(subset["runs"][0]["f1"]) == {"shift_0", "oracle_threshold", "time_scale_0.8", "time_scale_1.25",
                                           "time_scales_fused"}
    assert subset["runs"][0]["f1"]["shift_0"] == f1["shift_0"] and "val_crossfit" not in subset["runs"][0]


def test_kept_at_rate_keeps_the_highest_scored_detections_per_step_pooled_or_per_video():
    from mgrec.records import Detection

    levers = load_script("after_training")

    def detections(*scores):
        return [Detection(video_id="v", start=0.0, end=1.0, label_id=0, label="a", score=s) for s in scores]

    ranked = {"a": detections(0.9, 0.8, 0.1), "b": detections(0.5, 0.4, 0.3)}
    lengths = {"a": 10, "b": 30}
    pooled = levers.kept_at_rate(ranked, lengths, 0.1, per_video=False)  # 4 of the 40 steps' detections
    assert [d.score for d in pooled["a"]] == [0.9, 0.8] and [d.score for d in pooled["b"]] == [0.5, 0.4]
    per_video = levers.kept_at_rate(ranked, lengths, 0.1, per_video=True)  # 1 in a, 3 in b
    assert [d.score for d in per_video["a"]] == [0.9] and [d.score for d in per_video["b"]] == [0.5, 0.4, 0.3]
    assert all(not d for d in levers.kept_at_rate(ranked, lengths, 0.0, per_video=False).values())
    assert levers.kept_at_rate(ranked, lengths, 1.0, per_video=False) == ranked  # more asked than detected: all


def test_averaged_weights_are_the_mean_of_the_floating_tensors():
    levers = load_script("after_training")
    a = {"w": torch.tensor([1.0, 3.0]), "steps": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "steps": torch.tensor(9)}
    averaged = levers.averaged_weights(a, b)
    assert averaged["w"].tolist() == [2.0, 4.0] and averaged["steps"].item() == 4


def test_logit_adjustment_raises_each_class_by_tau_log_of_its_rarity():
    from mgrec.config import ModelConfig

    levers = load_script("after_training")
    shift = levers.logit_shift([100, 10, 50], tau=0.5)
    assert shift.tolist() == pytest.approx([0.0, 0.5 * np.log(10.0), 0.5 * np.log(2.0)])
    assert levers.logit_shift([100, 0, 50], tau=1.0)[1].item() == pytest.approx(np.log(100.0))  # none: as one
    model_config = ModelConfig(input_dim=8, num_classes=3, embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                               regression_ranges=[[0, 4], [4, 8], [8, 10000]])
    torch.manual_seed(0)
    network = build_detector(model_config).eval()
    adjusted = levers.LogitAdjusted(network, shift)
    features, mask = torch.randn(1, 8, 32), torch.ones(1, 1, 32, dtype=torch.bool)
    with torch.inference_mode():
        plain, moved = network(features, mask), adjusted(features, mask)
    assert adjusted.max_div_factor == network.max_div_factor
    for before, after in zip(plain.cls_logits, moved.cls_logits):
        assert torch.allclose(after - before, shift.expand_as(before))
    assert all(torch.equal(a, b) for a, b in zip(plain.offsets, moved.offsets))


def test_suppression_across_classes_drops_the_weaker_class_only_where_a_kept_one_overlaps():
    from mgrec.records import Detection

    levers = load_script("after_training")
    ranked = [Detection("v", 0.0, 10.0, 0, "x", 0.9),
              Detection("v", 1.0, 10.0, 1, "y", 0.8),  # tIoU 0.9 with the first, another class: dropped
              Detection("v", 0.0, 9.0, 0, "x", 0.7),  # the same class as the first: left to NMS
              Detection("v", 5.0, 15.0, 2, "z", 0.6),  # tIoU 1/3 with the first, 4/15 with the third
              Detection("v", 1.0, 10.5, 0, "x", 0.5)]  # tIoU 0.95 with the dropped y, 0.39 with z
    assert levers.suppressed_across_classes(ranked, 0.5) == [ranked[0], ranked[2], ranked[3], ranked[4]]
    # z goes at 0.3; the last x stays: what was dropped suppresses nothing
    assert levers.suppressed_across_classes(ranked, 0.3) == [ranked[0], ranked[2], ranked[4]]
    assert levers.suppressed_across_classes(ranked, 0.95) == ranked
    # A threshold applied after the suppression keeps what it keeps applied before (dropping looks upwards only).
    for cut in range(len(ranked) + 1):
        assert levers.suppressed_across_classes(ranked[:cut], 0.5) == levers.suppressed_across_classes(
            ranked, 0.5)[: len(levers.suppressed_across_classes(ranked[:cut], 0.5))]


def test_time_scaled_detection_maps_back_onto_the_video_grid():
    from mgrec.records import Detection
    from mgrec.timeline import FeatureGrid

    levers = load_script("after_training")
    features = np.arange(11, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    stretched = levers.resampled(features, 1.25)
    assert len(stretched) == 13 and np.allclose(stretched[:, 0], np.arange(13) / 1.25)  # step u is step u / 1.25
    assert np.array_equal(levers.resampled(features, 1.0), features)
    assert np.allclose(levers.resampled(features, 0.8)[:, 0], np.arange(9) / 0.8)
    grid = FeatureGrid(fps=50.0, stride=4, window=16)
    # found at steps 10..20 of the stretched video: steps 8..16 of the video itself
    found = Detection("v", grid.index_to_seconds(10.0), grid.index_to_seconds(20.0), 0, "x", 0.9, 0, 0)
    back = levers.scaled_back(found, 1.25, grid, duration=100.0)
    assert [grid.seconds_to_index(back.start), grid.seconds_to_index(back.end)] == pytest.approx([8.0, 16.0])
    assert (back.start_frame, back.end_frame) == tuple(grid.seconds_to_frame([back.start, back.end]))
    assert (back.label_id, back.score) == (0, 0.9)
    # An edge the detector clipped to the resampled video stays inside the video itself.
    edges = Detection("v", 0.0, grid.covered_seconds(9), 0, "x", 0.9, 0, 0)  # all of 9 steps resampled by 0.8
    clipped = levers.scaled_back(edges, 0.8, grid, duration=grid.covered_seconds(11))
    assert clipped.start == 0.0 and clipped.end <= grid.covered_seconds(11) and clipped.start_frame >= 0


def test_threshold_rules_on_a_hand_made_f1_curve():
    """Five detections of one class on five gestures, scores 0.9..0.5, the third (0.7) a miss: thresholds
    0.9, 0.8, 0.7, 0.6, 0.5 give F1 2/6, 4/7, 4/8, 6/9, 8/10; best 0.8 at 0.5."""
    from mgrec.records import Detection, Segment

    levers = load_script("after_training")
    gt = {"v": [Segment("v", 10.0 * i, 10.0 * i + 5, 0, "x") for i in range(5)]}
    ranked = {"v": [Detection("v", 10.0 * i + (100 if i == 2 else 0), 10.0 * i + 5 + (100 if i == 2 else 0), 0, "x",
                              0.9 - 0.1 * i) for i in range(5)]}
    assert levers.plateau_threshold(gt, ranked, 0.0) == pytest.approx(0.5)
    # within 0.14 of 0.8: 0.8 (at 0.5) and 0.667 (at 0.6); their median
    assert levers.plateau_threshold(gt, ranked, 0.14) == pytest.approx(0.55)
    # averaged over one neighbour each side (edges repeated): 0.5 -> (0.667 + 0.8 + 0.8) / 3 is the highest
    assert levers.smoothed_threshold(gt, ranked, 1) == pytest.approx(0.5)
    # divided by the mean of the two highest scores (0.85): the order is kept, the top is near 1
    relative = levers.relative_scores(ranked, 2)["v"]
    assert [d.score for d in relative] == pytest.approx([s / 0.85 for s in (0.9, 0.8, 0.7, 0.6, 0.5)])
    assert levers.relative_scores({"w": []}, 2) == {"w": []}


def test_val_crossfit_scores_each_rule_on_the_half_it_did_not_choose_on():
    """Selected weights find only video a's gesture, the last weights only b's. Choosing on {a} keeps the
    selected weights, which then miss b; choosing on {b} keeps the last ones, which then miss a. The last
    rule tunes its threshold on {a} (no detections there: threshold 0) and finds b."""
    from mgrec.records import Detection, Segment

    levers = load_script("after_training")
    gt = {v: [Segment(v, 1.0, 2.0, 0, "x")] for v in ("a", "b")}
    found = {v: [Detection(v, 1.0, 2.0, 0, "x", 0.9)] for v in ("a", "b")}
    selected = {"a": found["a"], "b": []}
    last = {"a": [], "b": found["b"]}
    result = levers.crossfit(gt, selected, last)
    assert result["select"] == 0.0 and result["last"] == pytest.approx(0.5, abs=1e-6)


# -- compiled_variants.py -------------------------------------------------------------------


@pytest.mark.parametrize("stride, padding, dilation, kernel", [(1, 1, 1, 3), (1, 0, 1, 1), (2, 2, 2, 3), (1, 2, 1, 5)])
def test_convolution_as_one_matrix_product_equals_conv1d(stride, padding, dilation, kernel):
    import torch.nn.functional as F

    variants = load_script("compiled_variants")
    conv = variants.conv1d_as_matmul(F.conv1d)
    torch.manual_seed(0)
    x, weight, bias = torch.randn(1, 6, 23), torch.randn(4, 6, kernel), torch.randn(4)
    expected = F.conv1d(x, weight, bias, stride, padding, dilation)
    assert torch.allclose(conv(x, weight, bias, stride, padding, dilation), expected, atol=1e-5)
    assert torch.allclose(conv(x, weight, None, (stride,), (padding,), (dilation,)),
                          F.conv1d(x, weight, None, stride, padding, dilation), atol=1e-5)
    grouped = torch.randn(6, 1, kernel)  # grouped convolutions are left to conv1d
    assert torch.equal(conv(x, grouped, None, stride, padding, dilation, 6),
                       F.conv1d(x, grouped, None, stride, padding, dilation, 6))


def test_compiled_variants_runs_each_variant_in_its_own_process(tmp_path):
    from mgrec.config import Config, DataConfig, ModelConfig
    from mgrec.run import RunDir

    variants = load_script("compiled_variants")
    model_config = ModelConfig(variant="actionformer", input_dim=8, num_classes=3, embed_dim=16, head_dim=16,
                               num_levels=3, regression_ranges=[[0, 4], [4, 8], [8, 10000]], transformer_heads=2)
    config = Config(data=DataConfig(annotations="a.json", features="f", feature_dim=8, max_seq_len=64),
                    model=model_config)
    torch.manual_seed(0)
    RunDir(tmp_path / "run").write_for_inference(config, ["a", "b", "c"], build_detector(model_config).eval(),
                                                 score_threshold=0.5)
    out = tmp_path / "variants.json"
    assert variants.main([str(tmp_path / "run"), "--variants", "eager", "mm_convs", "--window", "32",
                          "--repeats", "3", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    assert_provenance(written, f"python benchmarks/compiled_variants.py {tmp_path / 'run'}", threads=1)
    eager, mm_convs = written["results"]
    assert eager["variant"] == "eager" and eager["max_logit_diff"] == 0.0 and eager["median_ms"] > 0
    assert mm_convs["variant"] == "mm_convs" and 0 < mm_convs["max_logit_diff"] < 1e-4


def test_onnx_export_counts_the_detections_both_have_whatever_one_lacks():
    from mgrec.records import Detection

    same_detections = load_script("onnx_export").same_detections

    def detection(label: int, start_frame: int, score: float) -> Detection:
        return Detection("v", start_frame / 25, start_frame / 25 + 1, label, f"c{label}", score, start_frame,
                         start_frame + 25)

    own = [detection(0, 10, 0.9), detection(1, 50, 0.8), detection(0, 90, 0.7)]
    # the file's list lacks the first: paired in sorted order, every later pair was counted as different
    found = [detection(1, 50, 0.79), detection(0, 90, 0.7)]
    counts = same_detections({"v": own}, {"v": found})
    assert (counts["run"], counts["onnx"], counts["same_class_and_frames"]) == (3, 2, 2)
    assert abs(counts["largest_score_difference"] - 0.01) < 1e-9


# -- score_scale.py ---------------------------------------------------------------------------


def test_score_scale_scores_a_synthetic_ranked_list_and_compares_two_source_trees(tmp_path):
    from mgrec.data.synthetic import make_synthetic_dataset

    paths = make_synthetic_dataset(tmp_path / "data", num_videos=2, num_classes=3, feature_dim=4, length=64,
                                   subsets=("test", "test"))
    out = tmp_path / "score_scale.json"
    argv = ["--gt", str(paths.annotations), "--sizes", "50", "--baseline-src", str(REPO / "src"), "--json", str(out)]
    assert load_script("score_scale").main(argv) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/score_scale.py --gt", threads=1)
    entry = result["sizes"]["50"]
    assert set(entry["runs"]) == {"this", "baseline"} and entry["same_scores"]
    for run in (*entry["runs"]["this"], *entry["runs"]["baseline"]):
        assert run["cpu_s"] > 0 and run["wall_s"] > 0 and run["peak_rss_mb"] > 10
