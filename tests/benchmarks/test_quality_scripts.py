"""The quality study's pieces of benchmarks/ablation.py and benchmarks/class_thresholds.py, at tiny sizes."""

import json

import pytest
from tests.benchmarks.test_scripts import assert_provenance, load_script
from tests.helpers import small_config

from mgrec.config import PostprocessConfig, TrainConfig
from mgrec.data.synthetic import make_synthetic_dataset
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.train.loop import train


def test_rarest_third_and_the_quality_table():
    ablation = load_script("ablation")
    assert ablation.rarest_third({"a": 50, "b": 3, "c": 9, "d": 20}) == ["b", "c"]  # ceil(4 / 3) classes

    def run(row, seed, f1, rare):
        return {"row": row, "seed": seed, "training": {"seconds": 10.0, "wall_seconds": 20.0, "val": {"f1": f1}},
                "test": {"f1": f1, "f1_miga": f1, "average_mAP": 0.5}, "test_f1_per_class": {"b": rare, "c": 0.0}}

    table = ablation.quality_table([run("default", 0, 0.6, 0.2), run("default", 1, 0.8, 0.4),
                                    run("default+ensemble", "0+1", 0.9, 0.6)], ["b", "c"])
    rows = table.splitlines()
    assert "test F1, rarest third: b, c (%)" in rows[0]
    assert "| 2 (seeds 0, 1) | 70.00 ± 14.14 | 70.00 ± 14.14 | 70.00 ± 14.14 | 50.00 ± 0.00 | 15.00 ± 7.07 | 20 |" \
        in rows[2]
    assert rows[3].startswith("| ensemble of the `default` seed runs") and "| 30.00 |" in rows[3]


@pytest.mark.slow
def test_class_thresholds_script_scores_every_run_of_a_campaign(tmp_path):
    paths = make_synthetic_dataset(tmp_path / "data", num_videos=4, num_classes=5, feature_dim=16, length=160,
                                   seed=0, subsets=("train", "train", "val", "test"))
    config = small_config(paths, seed=3, max_seq_len=128,
                          train=TrainConfig(epochs=2, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                            eval_every=1, ema_decay=0.9),
                          postprocess=PostprocessConfig(pre_nms_topk=200, max_detections=100))
    train(config, tmp_path / "run", progress=False, log=lambda *_: None)
    campaign = tmp_path / "campaign" / "ablation.json"
    campaign.parent.mkdir()
    campaign.write_text(json.dumps({"runs": [{"row": "r", "seed": 3, "config": "mgrec",
                                              "run_dir": str(tmp_path / "run")}]}))
    script = load_script("class_thresholds")
    assert script.main(["--ablation", str(campaign)]) == 0
    result = json.loads((campaign.parent / "class_thresholds.json").read_text())
    assert_provenance(result, f"python benchmarks/class_thresholds.py --ablation {campaign}", threads=None)
    (run,) = result["runs"]
    # the global threshold's test F1 is what `mgrec evaluate` reports for the run
    assert run["test_f1"]["global"] == pytest.approx(evaluate_run(tmp_path / "run", "test", precision="fp32")["f1"])
    assert len(run["class_thresholds"]) == 5 and result["shrinkage"] == script.SHRINKAGE
    assert result["summary"]["r"]["test_f1_per_class"][1] is None  # one seed: no std
