"""benchmarks/precision.py runs end to end at tiny sizes (--quick), with the agreement part on a tiny run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from tests.helpers import small_config

from mgrec.config import PostprocessConfig, TrainConfig
from mgrec.data.annotations import load_annotations
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.model.detector import build_detector
from mgrec.provenance import PROVENANCE_KEY
from mgrec.run import RunDir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def precision_script():
    spec = importlib.util.spec_from_file_location("benchmark_precision", REPO / "benchmarks" / "precision.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tiny_run(root: Path) -> Path:
    """A run directory around a randomly initialised small model, on a synthetic dataset with a test split."""
    paths = make_synthetic_dataset(root / "data", num_videos=2, num_classes=4, feature_dim=16, length=96, seed=2,
                                   subsets=("val", "test"))
    config = small_config(paths, seed=0, max_seq_len=64, train=TrainConfig(),
                          postprocess=PostprocessConfig(max_detections=50))
    torch.manual_seed(0)
    # a threshold above the random network's scores: its ranked list is cut at the cap (a hard set is never cut)
    RunDir(root / "run").write_for_inference(config, load_annotations(paths.annotations).classes,
                                             build_detector(config.model), score_threshold=0.9)
    return root / "run"


def test_quick_run_writes_agreement_scores_and_interleaved_timings(precision_script, tmp_path):
    threads = torch.get_num_threads()
    try:
        assert precision_script.main(["--quick", "--run", str(tiny_run(tmp_path)), "--threads", "1",
                                      "--json", str(tmp_path / "precision.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "precision.json").read_text())
    assert result[PROVENANCE_KEY]["command"].startswith("python benchmarks/precision.py --quick")
    assert result[PROVENANCE_KEY]["threads"] == 1
    assert isinstance(result["native_bf16_cpu"], bool) and result["auto_precision_cpu"] in ("fp32", "bf16")

    agreement = result["agreement"]
    assert agreement["videos"] == 1 and agreement["split"] == "test"
    ranked = agreement["ranked_agreement"]
    assert ranked["reference_count"] == 50 and 0 <= ranked["max_score_difference"] < 0.01
    assert set(agreement["scores"]) == {"fp32", "bf16"}
    assert {"f1", "average_mAP"} <= set(agreement["scores"]["fp32"])
    assert agreement["f1_difference_points"] == pytest.approx(
        100 * (agreement["scores"]["bf16"]["f1"] - agreement["scores"]["fp32"]["f1"]))

    rows = result["speed"]
    assert [(r["config"], r["length"]) for r in rows] == [("demo/mgrec.yaml", 64), ("demo/mgrec.yaml", 192)]
    for row in rows:
        assert all(len(row["samples_s"][p]) == 1 and row["median_s"][p] > 0 for p in ("fp32", "bf16"))
        assert row["bf16_over_fp32"] == pytest.approx(row["median_s"]["bf16"] / row["median_s"]["fp32"])
        assert "ratio_to_dyfadet_release" not in row  # only the SMG config is comparable to the release


def test_only_the_smg_rows_get_the_ratio_to_the_released_dyfadet(precision_script):
    base, anchors = precision_script.speed_anchors()
    assert base == "DyFADet release" and anchors["infer_s_2304"] > 0
    row = {"config": "smg/mgrec.yaml", "length": 2304, "median_s": {"fp32": 0.5, "bf16": 0.25}}
    ratios = precision_script.with_anchor_ratios(row, anchors)["ratio_to_dyfadet_release"]
    assert ratios == {"fp32": 0.5 / anchors["infer_s_2304"], "bf16": 0.25 / anchors["infer_s_2304"]}
    assert "ratio_to_dyfadet_release" not in precision_script.with_anchor_ratios({**row, "length": 100}, anchors)
