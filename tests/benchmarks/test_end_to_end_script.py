"""benchmarks/end_to_end.py at tiny sizes (--tiny): cases in fresh processes, the planner beside them, ViT-g."""

import json

import pytest
import torch
from tests.benchmarks.test_scripts import assert_provenance, load_script

from mgrec.extract.adapters import estimate_end_to_end_bytes


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
