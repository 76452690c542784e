"""The paper's Table 2 on the demo benchmark: five configurations x several seeds, scored on the test split.

    python benchmarks/ablation.py --seeds 0 1 2      # results in benchmarks/results/<date>_<commit>_ablation/
    python benchmarks/ablation.py --study quality    # issue #14: balancing and crop transforms, same budget
    python benchmarks/ablation.py --study fusion     # issue #15: the demo's two sensor streams, alone and fused

`--study quality` runs `QUALITY_ROWS` instead: the paper's recipe (`demo/mgrec.yaml`, row `default`: the
default when the study began), each addition alone and together, and the recipe built from them
(`demo/default.yaml`, on the paper's network and on ActionFormer's), every row with the same epochs
and crops per epoch (balancing moves crops between classes, transforms change crops: neither trains
longer). Its table adds the val F1 of the selected epoch (the split defaults are chosen on) and the
test F1 of the rarest third of the classes (by training instances). `--study fusion` runs
`FUSION_ROWS` the same way: `demo/default.yaml` (the paper's network at batch 4 when the README's
fusion table was made, ActionFormer's with the recipe since) on the demo's sensor streams
(`mgrec.data.demo`, step 6: accelerometer on the 12.5 steps/s grid, gyroscope at half that rate),
each stream alone and both joined by each `model.fusion`; its table adds each row's parameter count.

Each (config, seed) run trains `src/mgrec/configs/demo/<config>.yaml` with `mgrec.train.loop.train` (the
config's seed replaced by the run's seed; the demo data itself is the same for every run) into
`<scratch>/<config>-seed<seed>-ep<epochs>`; model selection and the F1 score threshold come from
the val split inside training. The selected checkpoint is then scored on the TEST split with
`mgrec.infer.evaluate_run.evaluate_run`, which writes `eval_test.json` into the run directory.

Resumable: a run directory holding `eval_test.json` and this script's `ablation_run.json` is read,
not retrained; a run that stopped mid-training continues from its last epoch (`train(resume=True)`).
Results are rewritten after every run: `<out>/ablation.json` (every run, and the provenance record of
`mgrec.provenance.provenance` under "provenance") and `<out>/ablation.md` (mean +- sample std per
config, with the paper's SMG numbers for context; they are not comparable). `<out>` defaults to this
campaign's folder, `benchmarks/results/YYYY-MM-DD_<commit>_ablation` (see benchmarks/results/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mgrec.config import load_config
from mgrec.data.annotations import load_annotations
from mgrec.data.demo import DatasetPaths, build_demo, default_cache_dir
from mgrec.data.streams import load_video_streams
from mgrec.devices import resolve_device
from mgrec.errors import InputError
from mgrec.infer.evaluate_run import evaluate_run
from mgrec.infer.fused_ensemble import make_fused_ensemble
from mgrec.infer.offline import OfflineDetector
from mgrec.model.load import load_run_network
from mgrec.postprocess.detection_fusion import fuse_detections
from mgrec.provenance import PROVENANCE_KEY, campaign_name, provenance, read_provenance
from mgrec.run import RunDir
from mgrec.train.ensemble import make_ensemble
from mgrec.train.loop import train

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEMO_CONFIGS = REPO / "src" / "mgrec" / "configs" / "demo"
# Table 2 of the paper (F1 on SMG with VideoMAE V2-g features, percent), in the table's order.
PAPER_TABLE2 = {
    "actionformer": ("ActionFormer", 15.25),
    "dyfadet": ("DyFADet", 27.78),
    "dyfadet_aug": ("DyFADet + augmentation", 32.04),
    "st_noaug": ("ST attention, no augmentation", 32.69),
    "mgrec": ("augmentation + ST attention (mgrec)", 33.44),
}
# The quality study: row -> (demo config, overrides, title). alpha belongs to eq1 alone, so rows with
# another balancing method clear it.
TEMPORAL = ("transforms.time_scale_prob=0.5", "transforms.paste_prob=0.5")
FEATURE = ("transforms.channel_dropout_prob=0.5", "transforms.noise_prob=0.5", "transforms.noise_std=0.1")
ADAPTIVE = ("balance.method=adaptive", "balance.alpha=null")
REPEAT_FACTOR = ("balance.method=repeat_factor", "balance.alpha=null")


def recipe(*extra: str) -> tuple[str, ...]:
    """The recipe of `demo/default.yaml` until 2026-12-07 (repeat factor, batch 1, 4 shifted passes, standardised
    features, time scale and paste; since then with the row `default_swa`'s schedule and average too) with `extra`
    overrides, in the order the rows' run folders were named by."""
    return REPEAT_FACTOR + ("train.batch_size=1", "postprocess.shifted_passes=4", "data.normalize=video",
                            *extra) + TEMPORAL


QUALITY_ROWS = {
    "default": ("mgrec", (), "today's default: eq1 (alpha 160) + ST attention"),
    "actionformer": ("actionformer", (), "ActionFormer, Table 2's row (demo/actionformer.yaml: eq1, batch 4)"),
    "repeat_factor": ("mgrec", REPEAT_FACTOR, "repeat factor instead of eq1"),
    "adaptive": ("mgrec", ADAPTIVE, "adaptive balancing instead of eq1"),
    "temporal": ("mgrec", TEMPORAL, "+ time scale and instance paste (p 0.5 each)"),
    "feature": ("mgrec", FEATURE, "+ channel dropout and feature noise (p 0.5 each)"),
    "all": ("mgrec", ADAPTIVE + TEMPORAL + FEATURE, "adaptive + all four transforms"),
    # The schedule within the same crops (the demo's runs are still improving at their last epoch): on top of
    # the repeat-factor default, twice the optimizer steps of half the batch, a higher peak rate, no drop path.
    "batch2": ("mgrec", REPEAT_FACTOR + ("train.batch_size=2",), "repeat factor, batch 2 (same crops, 2x steps)"),
    "batch1": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1",), "repeat factor, batch 1 (same crops, 4x steps)"),
    "lr2": ("mgrec", REPEAT_FACTOR + ("train.lr=0.002",), "repeat factor, peak lr 0.002 (instead of 0.001)"),
    "no_drop_path": ("mgrec", REPEAT_FACTOR + ("model.drop_path=0.0",), "repeat factor, no drop path (0.1 before)"),
    # On the batch-1 default: is the paper's Eq. 1 still behind repeat factor, and do the crop transforms help a
    # network that is no longer short of steps?
    "batch1_eq1": ("mgrec", ("train.batch_size=1",), "batch 1 with the paper's Eq. 1 (alpha 160), not repeat factor"),
    "batch1_temporal": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1",) + TEMPORAL,
                        "batch 1, repeat factor + time scale and instance paste (p 0.5 each)"),
    # Seed stability on the batch-1 default: a longer weights' average. A higher decay alone changes nothing in
    # 720 steps (these two rows train exactly the batch-1 runs): the EMA's warm-up, min(decay, (1+t)/(10+t)),
    # stays below 0.99 until step 891, so the average holds about the last tenth of the steps whatever the decay.
    "batch1_ema995": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "train.ema_decay=0.995"),
                      "batch 1, repeat factor, weights' average at decay 0.995 (0.99 before)"),
    "batch1_ema998": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "train.ema_decay=0.998"),
                      "batch 1, repeat factor, weights' average at decay 0.998 (0.99 before)"),
    # A longer average through the warm-up (train.ema_warmup, 9 by default: the average sits at 0.9 of the run):
    # 4 puts it at 0.8 (weights ~ step**3), 2 at 0.67 (weights ~ step), with a decay that does not cut it short.
    "batch1_avg4": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "train.ema_decay=0.999", "train.ema_warmup=4"),
                    "batch 1, repeat factor, weights averaged over about the last fifth (EMA warm-up 4)"),
    "batch1_avg2": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "train.ema_decay=0.999", "train.ema_warmup=2"),
                    "batch 1, repeat factor, weights averaged over about the last third (EMA warm-up 2)"),
    # The rarest classes on the batch-1 default: repeat factor's threshold t from 0.1 to 0.3 (on the seed-0 demo
    # the three rarest classes weigh x1.9-2.9 instead of x1.1-1.7, and every class under 30% of the instances
    # is repeated).
    "batch1_rf03": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "balance.repeat_threshold=0.3"),
                    "batch 1, repeat factor with t = 0.3 (0.1 before)"),
    # Seed stability on the batch-1 default: a smaller step (each crop is a step of its own, so a step is 4x
    # noisier than at batch 4), and a stronger stochastic depth (no drop path was worse than 0.1).
    "batch1_lr05": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "train.lr=0.0005"),
                    "batch 1, peak learning rate 0.0005 (0.001 before)"),
    "batch1_dp02": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "model.drop_path=0.2"),
                    "batch 1, drop path 0.2 (0.1 before)"),
    # The batch-1 default detected in 4 passes over the features shifted by 0-3 steps, fused (validation too,
    # so the threshold is tuned on fused scores): `benchmarks/after_training.py` found it higher on val on
    # 7 of 8 row-splits without retraining.
    "batch1_shift4": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "postprocess.shifted_passes=4"),
                      "batch 1, 4 shifted detection passes fused"),
    # Subject shift on the shifted-passes default: the test subjects' errors are mostly one exercise taken for
    # another (FEL, IR, ER, ROW as ABD), so each video's features are standardised per channel by the video's
    # own statistics (`data.normalize: video`; a stream by the steps received so far).
    "batch1_norm": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "postprocess.shifted_passes=4",
                                              "data.normalize=video"),
                    "batch 1, 4 shifted passes, each video's features standardised per channel"),
    # The rarest classes on the standardised default: repeat factor's threshold t = 0.3 (as batch1_rf03 did
    # on the batch-1 recipe, where it lifted the rarest third on split 1 but lowered val F1 on both splits).
    "batch1_norm_rf03": ("mgrec", REPEAT_FACTOR + ("train.batch_size=1", "postprocess.shifted_passes=4",
                                                   "data.normalize=video", "balance.repeat_threshold=0.3"),
                         "batch 1, 4 shifted passes, standardised, repeat factor with t = 0.3"),
    # The crop transforms on the standardised default (on the batch-1 recipe they had a higher mean val F1 on
    # split 0, +0.3, and the smallest test spread there; an instance pasted from another video comes
    # standardised by its own video, as that video's crops do).
    "batch1_norm_temporal": ("mgrec", recipe(),
                             "batch 1, 4 shifted passes, standardised, + time scale and instance paste (p 0.5 each)"),
    # Seed stability on the default of 2026-12-04 midday (the paper's network with the recipe, the row above): a
    # stronger stochastic depth. On the batch-1 recipe drop path 0.2 had a lower val F1 on split 0 but a higher
    # test F1 on both splits then run.
    "default_dp02": ("mgrec", recipe("model.drop_path=0.2"),
                     "the paper's network with the recipe (the row above), drop path 0.2 (0.1 before)"),
    # The recipe without the paper's model: ActionFormer (local self-attention encoder, conv head) trained and
    # detected as `batch1_norm_temporal`. On the held-out benchmark the plain ActionFormer had a third of
    # the paper model's seed spread (paper recipe for both). Chosen on val: `demo/default.yaml` since.
    "default_actionformer": ("actionformer", recipe(),
                             "ActionFormer's network with the recipe (`demo/default.yaml` 2026-12-04 to 12-07)"),
    # The new default with twice the attention context: most test errors are one exercise taken for another at
    # a true gesture, and a wider local window (37 steps, about 3 s, against 19) lets each step see more of the
    # movement around it. Attention has no weights of its own, so the model is the same size.
    "default_af_window37": ("actionformer", recipe("model.transformer_window=37"),
                            "the new default (the row above) with a 37-step attention window (19)"),
    # Aimed at the default's confusions between exercises on unseen subjects and its seed spread: softer class
    # targets, and a stronger stochastic depth (tried on the paper's network before, not on ActionFormer's).
    "default_ls01": ("actionformer", recipe("train.label_smoothing=0.1"),
                     "the default with label smoothing 0.1 (0 before)"),
    "default_af_dp02": ("actionformer", recipe("model.drop_path=0.2"),
                        "the default with drop path 0.2 (0.1 before)"),
    # The other side of the 37-step window (lower val F1, larger spread): a 9-step one (0.7 s), also less compute
    # per online update; and centre sampling over a wider neighbourhood of each instance (2.5 strides, not 1.5),
    # more positive points for the short instances of the rare classes.
    "default_af_window9": ("actionformer", recipe("model.transformer_window=9"),
                           "the default with a 9-step attention window (19)"),
    "default_radius25": ("actionformer", recipe("train.center_radius=2.5"),
                         "the default with centre sampling radius 2.5 (1.5)"),
    # Two more on the default (2026-12-05): the paper's Eq. 1 label replication (alpha 160) instead of repeat
    # factor, now on ActionFormer's network with the standardised features and the transforms (on the paper's
    # network at batch 1 it had the highest mean val F1 with twice the spread); and twice the width (embedding
    # and head 256 channels, about 3.6x the parameters), the same crops and epochs, more compute per step.
    "default_eq1": ("actionformer", recipe("balance.method=eq1", "balance.alpha=160"),
                    "the default with the paper's Eq. 1 (alpha 160) instead of repeat factor"),
    "default_wide": ("actionformer", recipe("model.embed_dim=256", "model.head_dim=256"),
                     "the default at twice the width (embedding and head 256 channels, 128 before)"),
    # Most of the default's test errors are one class taken for another at a true gesture, not a missed
    # boundary (tIoU 0.3 is lenient): half the weight on the regression loss leaves more to classification.
    "default_reg05": ("actionformer", recipe("train.reg_loss_weight=0.5"),
                      "the default with half the regression loss weight (0.5, 1.0 before)"),
    # The default with the whole-gesture classifier's second opinion (`postprocess.second_opinion`, w = 0.25), in
    # the pipeline: validation (the selected epoch, the tuned threshold) sees the rescored detections. Measured
    # after training first (`after_training.py --groups segment_classifier`: level val F1, narrower seed spread);
    # trained with: level on val (pooled +0.44 F1, +0.28 average mAP), kept opt-in (README).
    "default_second_opinion": ("actionformer", recipe("postprocess.second_opinion=0.25"),
                               "the default with a second opinion on each detection's class (w 0.25)"),
    # Issue #20's training speed paths, checked for accuracy on the demo: bf16 autocast (on a CPU with native
    # bf16), and the same through the compiled network (train.compile; at SMG scale 0.61x the eager fp32 step;
    # the demo's small steps gain nothing, and each run here pays its compiling, minutes cold, seconds warm).
    "default_bf16": ("actionformer", recipe("train.precision=bf16"),
                     "the default (`demo/default.yaml`) trained in bf16 autocast"),
    "default_compiled_bf16": ("actionformer", recipe("train.precision=bf16", "train.compile=true"),
                              "the default trained in bf16 autocast through the compiled network"),
    # Warm-up, one of the named levers on seed spread, not measured before (2026-12-05): the default ramps
    # the learning rate up over 2 of its 15 epochs; none at all, and 5 (a third of the run, about ActionFormer's
    # share), the same crops and epochs.
    "default_warmup0": ("actionformer", recipe("train.warmup_epochs=0"),
                        "the default without learning-rate warm-up (2 epochs before)"),
    "default_warmup5": ("actionformer", recipe("train.warmup_epochs=5"),
                        "the default with 5 epochs of learning-rate warm-up (2 before)"),
    # Stochastic weight averaging's idea on the default (2026-12-07), aimed at its seed spread: the default's cosine
    # ends at 0 and its weights' average holds about the last tenth of the steps, where the weights barely move, so
    # it averages one point. Here the cosine ends at a quarter of the peak and the average holds about the last
    # quarter (ema_warmup 3: step k weighted about as k**2), weights that still move around one basin.
    "default_swa": ("actionformer", recipe("train.final_lr_fraction=0.25", "train.ema_warmup=3"),
                    "the default with the cosine ending at a quarter of the peak and the weights averaged over "
                    "about the last quarter (`demo/default.yaml` since 2026-12-07)"),
    # {unlabeled}: the demo's unlabelled pool (the test subjects' own streams: transductive); {teacher}: the
    # `default` row's run of the same seed, which is what `train --unlabeled` would train first as teacher
    "pseudo": ("mgrec", ("pseudo_labels.unlabeled={unlabeled}", "pseudo_labels.teacher={teacher}",
                         "pseudo_labels.transductive=true"),
               "+ pseudo-labels of the unlabelled pool by the `default` run of the same seed (transductive; "
               "2 trainings)"),
}
# The fusion study: row -> (demo config, the demo's sensor streams, grid stream first; model.fusion; title).
FUSION_ROWS = {
    "acc": ("default", ["acc"], "concat", "accelerometer stream alone"),
    "gyro": ("default", ["gyro"], "concat", "gyroscope stream alone (its own grid, stride 8)"),
    "concat": ("default", ["acc", "gyro"], "concat", "both, concat (one embedding of all channels)"),
    "sum": ("default", ["acc", "gyro"], "sum", "both, sum (an embedding per stream, added)"),
    "gated": ("default", ["acc", "gyro"], "gated", "both, gated (acc's encoder; gyro by input gate + each level)"),
}
# Each also scored as one ensemble of its seed runs.
ENSEMBLE_ROWS = ("default", "repeat_factor", "batch1", "batch1_norm", "batch1_norm_temporal", "default_actionformer")
# The fusion study's late fusion: per seed, the detection-level ensemble of these two rows' runs (no training
# of its own; its cost is theirs).
LATE_FUSION = ("acc", "gyro")
TEST_SPLIT = "test"
RECORD_NAME = "ablation_run.json"
TEST_KEYS = ("f1", "precision", "recall", "f1_miga", "average_mAP", "score_threshold", "num_predictions")


@dataclass(frozen=True)
class RunSpec:
    config: str  # a key of PAPER_TABLE2: src/mgrec/configs/demo/<config>.yaml
    seed: int
    epochs: int
    overrides: tuple[str, ...]  # extra config overrides (besides data paths, seed, epochs)
    row: str = ""  # the study's row (Table 2: the config itself)

    def name(self) -> str:
        """Run folder name; differs whenever the training would differ."""
        name = f"{self.config}-seed{self.seed}-ep{self.epochs}"
        if self.overrides:
            name += "-" + hashlib.sha1("\n".join(self.overrides).encode()).hexdigest()[:8]
        return name


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=list(PAPER_TABLE2),
        default=list(PAPER_TABLE2),
        help="src/mgrec/configs/demo/<name>.yaml to run (default: all five)",
    )
    parser.add_argument("--study", choices=("table2", "quality", "fusion"), default="table2",
                        help="table2: the paper's Table 2 (--configs); quality: QUALITY_ROWS; fusion: FUSION_ROWS "
                             "(--rows)")
    parser.add_argument("--rows", nargs="+", choices=[*QUALITY_ROWS, *FUSION_ROWS], default=None,
                        help="rows of the quality or fusion study (default: all of the study's)")
    parser.add_argument("--runs-from", type=Path, default=None, metavar="ABLATION_JSON",
                        help="take the trained runs of an earlier campaign's ablation.json (their run folders must "
                             "still exist) instead of training: for the rows computed from runs (the fusion study's "
                             "late fusion, detection timings; default: train)")
    parser.add_argument("--time-detection", action="store_true",
                        help="fusion study: time detection per test video of every run once all are trained "
                             "(run it when nothing else uses the cores)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs (quick runs)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for ablation.json and ablation.md (default: benchmarks/results/<date>_<commit>_ablation)",
    )
    parser.add_argument(
        "--scratch", type=Path, default=REPO / "runs" / "ablation", help="folder for the run directories"
    )
    parser.add_argument("--demo-cache", type=Path, default=None,
                        help="demo data folder (default: mgrec's demo cache; with --demo-seed N > 0, demo-seedN "
                             "beside it)")
    parser.add_argument("--demo-seed", type=int, default=0,
                        help="build the demo with this seed: other subjects in train, val and test, other streams "
                             "(a held-out check of a default chosen on seed 0; runs go to <scratch>-demoN)")
    parser.add_argument("--data", type=Path, default=None, metavar="FOLDER",
                        help="train and score on a dataset built by benchmarks/heldout_data.py (annotations.json, "
                             "features/, heldout_manifest.json) instead of the demo; nothing is built, the runs go "
                             "to <scratch>-<FOLDER's name>-<hash of its annotations> (quality and table2 studies, "
                             "without the pseudo row)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra config override for every run, e.g. train.device=cuda (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.demo_seed < 0:  # numpy's generator would refuse it later, with a message that names no option
        parser.error(f"--demo-seed must be 0 or more, got {args.demo_seed}")
    if args.data is not None:
        if args.demo_seed or args.demo_cache is not None:
            parser.error("--data replaces the demo: it takes no --demo-seed or --demo-cache")
        if args.study == "fusion" or (args.rows and "pseudo" in args.rows):
            parser.error("--data has no sensor streams and no unlabelled pool: the fusion study and the pseudo row "
                         "need the demo")
    return args


def quality_plan(rows: list[str] | None, on_demo: bool = True) -> list[tuple[str, str, tuple[str, ...]]]:
    """The quality study's (row, config, overrides) in QUALITY_ROWS' order, for `rows` (None: every row); off the
    demo (`--data`) without the pseudo row, which trains on the demo's unlabelled pool."""
    return [(row, config, overrides) for row, (config, overrides, _) in QUALITY_ROWS.items()
            if (rows is None or row in rows) and (on_demo or row != "pseudo")]


def dataset_paths(folder: Path) -> tuple[DatasetPaths, dict]:
    """The paths of a dataset built by benchmarks/heldout_data.py, checked to be a complete build, and its manifest
    (recipe, seed, statistics)."""
    path = folder / "heldout_manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        feature_dim = int(manifest["feature_dim"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a complete build of benchmarks/heldout_data.py ({exc})") from None
    return DatasetPaths(folder, folder / "annotations.json", folder / "features", feature_dim), manifest


def seed_folders(demo_seed: int, demo_cache: Path | None, scratch: Path) -> tuple[Path | None, Path]:
    """The demo cache and the run folder for a demo built with `demo_seed`.

    Seed 0 keeps them. Another seed is another build of the demo: its own cache (unless one is given) and
    its own run folders, so nothing made from seed 0 is rebuilt, and no seed-0 run is taken for a run on
    this data (a run folder's name does not carry the data it trained on).
    """
    if demo_seed == 0:
        return demo_cache, scratch
    cache = demo_cache or default_cache_dir().with_name(f"demo-seed{demo_seed}")
    return cache, scratch.with_name(f"{scratch.name}-demo{demo_seed}")


def run_config(spec: RunSpec, data_overrides: list[str]):
    path = DEMO_CONFIGS / f"{spec.config}.yaml"
    overrides = [*data_overrides, f"seed={spec.seed}", f"train.epochs={spec.epochs}", *spec.overrides]
    return load_config(path, overrides)


def configured_epochs(config_name: str, epochs: int | None) -> int:
    return epochs if epochs is not None else load_config(DEMO_CONFIGS / f"{config_name}.yaml").train.epochs


def training_device(config_name: str, overrides: tuple[str, ...], data_overrides: list[str]) -> torch.device:
    """The device the runs train on (the config's train.device with the overrides), for the provenance record."""
    return resolve_device(run_config(RunSpec(config_name, 0, 1, overrides), data_overrides).train.device)


def epoch_seconds(run_dir: Path) -> float:
    """Sum of the training epochs' wall times in metrics.jsonl (complete across resumes, validation excluded)."""
    return sum(float(record["seconds"]) for record in RunDir(run_dir).read_metrics() if record["kind"] == "train")


def run_one(spec: RunSpec, data_overrides: list[str], scratch: Path, log=print) -> dict:
    """Train (or resume, or reuse) one run and score it on the test split; returns its record."""
    run_dir = scratch / spec.name()
    record_path = run_dir / RECORD_NAME
    eval_path = RunDir(run_dir).eval_path(TEST_SPLIT)
    if record_path.exists() and eval_path.exists():
        log(f"{spec.name()}: finished earlier, reading {eval_path}")
        # the same training may serve two studies (Table 2's mgrec is the quality study's default)
        return {**json.loads(record_path.read_text(encoding="utf-8")), "row": spec.row or spec.config}

    config = run_config(spec, data_overrides)
    if record_path.exists():
        training = json.loads(record_path.read_text(encoding="utf-8"))["training"]
    else:
        resume = RunDir(run_dir).can_resume()
        log(f"{spec.name()}: {'resuming' if resume else 'training'} in {run_dir}")
        started = time.perf_counter()
        result = train(config, run_dir, resume=resume, log=log, progress=False)
        training = {
            "seconds": round(result.seconds, 2),
            "wall_seconds": round(time.perf_counter() - started, 2),  # with a pseudo-label teacher's training
            "resumed": resume,  # then `seconds` covers only the resumed part; `epoch_seconds` is complete
            "epoch_seconds": round(epoch_seconds(run_dir), 2),
            "best_epoch": result.best_epoch,
            "val": result.best_metrics,
        }
        record_path.write_text(json.dumps({"training": training}, indent=1), encoding="utf-8")

    started = time.perf_counter()
    test = evaluate_run(run_dir, TEST_SPLIT, precision="fp32")  # as training validated: rows stay comparable
    record = {
        "config": spec.config,
        "row": spec.row or spec.config,
        "seed": spec.seed,
        "epochs": spec.epochs,
        "overrides": list(spec.overrides),
        "run_dir": str(run_dir),
        "training": training,
        "test": {key: test[key] for key in TEST_KEYS},
        "test_f1_per_class": {name: row["f1"] for name, row in test["per_class"].items()},
        "test_eval_seconds": round(time.perf_counter() - started, 2),
    }
    record_path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    record["parameters"] = parameter_count(run_dir)
    record_path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    log(f"{spec.name()}: test f1 {test['f1']:.4f} f1_miga {test['f1_miga']:.4f} average mAP {test['average_mAP']:.4f}")
    return record


def detect_milliseconds(run_dir: Path, repeats: int = 3) -> float:
    """CPU time of `OfflineDetector.detect` (network, decoding, NMS; float32) per test video of a run, the
    best of `repeats` passes, with the features already loaded (and resampled onto the grid)."""
    detector = OfflineDetector.from_run(run_dir, device="cpu", precision="fp32")
    annotations = load_annotations(detector.config.data.annotations)
    # a detection-level ensemble: every member on its own features, then the fusion
    members = detector.members if detector.members is not None else [detector]
    videos = [(v, annotations.videos[v].fps,
               [load_video_streams(m.config.data, v, annotations.videos[v].fps) for m in members])
              for v in annotations.video_ids(TEST_SPLIT)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for video_id, fps, features in videos:
            ranked = [m.detect(f, video_id=video_id, fps=fps) for m, f in zip(members, features)]
            if detector.members is not None:
                fuse_detections(ranked, detector.fusion_iou)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(videos)


def parameter_count(run_dir: Path) -> int:
    """Parameters of a run's network (all its streams' towers and fusion included)."""
    _, _, model = load_run_network(RunDir(run_dir), "best")
    return sum(p.numel() for p in model.parameters())


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _percent(values: list[float]) -> str:
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def rarest_mean(f1_per_class: dict[str, float | None], rare: list[str]) -> float:
    """Mean test F1 of the rarest classes, those with an F1 to give (a class without test instances that nothing was
    detected as has none: `score`'s per-class null); NaN where none has."""
    values = [f1_per_class[name] for name in rare if f1_per_class[name] is not None]
    return statistics.fmean(values) if values else math.nan


def rarest_third(train_counts: dict[str, int]) -> list[str]:
    """The ceil(K / 3) classes with the fewest training instances (ties: the class listed first)."""
    order = sorted(train_counts, key=lambda name: train_counts[name])
    return order[: -(-len(order) // 3)]


def quality_table(runs: list[dict], rare: list[str], fusion: bool = False) -> str:
    """Markdown: one row per quality-study (or fusion-study) row, mean ± std over seeds, val F1 and
    rare-class F1 included (and the fusion study's parameter counts)."""
    lines = [
        "| row | runs | val F1 (%) | test F1 (%) | test F1 MiGA (%) | test average mAP (%) "
        f"| test F1, rarest third: {', '.join(rare)} (%) | training time (s) |"
        + (" parameters | detect, ms per test video |" if fusion else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|---|" if fusion else ""),
    ]
    if fusion:
        titles = {**{row: title for row, (*_, title) in FUSION_ROWS.items()},
                  "late": f"both, late: the `{LATE_FUSION[0]}` and `{LATE_FUSION[1]}` runs' detections fused "
                          "(`mgrec ensemble --fusion detections`)"}
    else:
        titles = {**{row: title for row, (_, _, title) in QUALITY_ROWS.items()},
                  **{f"{row}+ensemble": f"ensemble of the `{row}` seed runs" for row in ENSEMBLE_ROWS}}
    for row, title in titles.items():
        group = [r for r in runs if r.get("row") == row]
        if not group:
            continue
        rare_f1 = [rarest_mean(r["test_f1_per_class"], rare) for r in group]
        lines.append(
            f"| {title} (`{row}`) | {len(group)} (seeds {', '.join(str(r['seed']) for r in group)}) "
            f"| {_percent([r['training']['val']['f1'] for r in group])} "
            f"| {_percent([r['test']['f1'] for r in group])} "
            f"| {_percent([r['test']['f1_miga'] for r in group])} "
            f"| {_percent([r['test']['average_mAP'] for r in group])} "
            f"| {_percent(rare_f1)} "
            f"| {statistics.fmean(r['training'].get('wall_seconds', r['training']['seconds']) for r in group):.0f} |"
            + (f" {group[0].get('parameters', 0):,} | {_milliseconds(group)} |" if fusion else "")
        )
    return "\n".join(lines)


def _milliseconds(group: list[dict]) -> str:
    values = [r["detect_ms"] for r in group if "detect_ms" in r]
    if not values:
        return "–"
    mean, std = mean_std(values)
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def members_tag(members: list[dict]) -> str:
    """A short hash of the member runs' folders, for the folder of a run made from them: two campaigns in one
    scratch folder with other overrides (`--override train.precision=bf16`) have members of the same seeds and
    epochs, and the second reused the first one's ensemble, scored as its own."""
    names = "\n".join(Path(m["run_dir"]).name for m in members)
    return hashlib.sha1(names.encode()).hexdigest()[:8]


def late_fusion_one(seed: int, members: list[dict], scratch: Path, log=print) -> dict:
    """One seed's detection-level ensemble of the LATE_FUSION rows' runs, scored on test like a run."""
    run_dir = scratch / f"late-{'-'.join(LATE_FUSION)}-seed{seed}-ep{members[0]['epochs']}-{members_tag(members)}"
    if not RunDir(run_dir).eval_path(TEST_SPLIT).exists():
        if not RunDir(run_dir).format_path.exists():
            make_fused_ensemble([m["run_dir"] for m in members], run_dir, log=log)
        evaluate_run(run_dir, TEST_SPLIT, precision="fp32")
    test = json.loads(RunDir(run_dir).eval_path(TEST_SPLIT).read_text(encoding="utf-8"))
    tuning = RunDir(run_dir).read_tuning()
    return {
        "config": members[0]["config"], "row": "late", "seed": seed, "epochs": members[0]["epochs"],
        "overrides": [], "run_dir": str(run_dir),
        "training": {"seconds": sum(m["training"].get("wall_seconds", m["training"]["seconds"]) for m in members),
                     "val": {"f1": tuning["val_scores"]["f1"], "score_threshold": tuning["score_threshold"]}},
        "parameters": sum(m.get("parameters", 0) for m in members),
        "test": {key: test[key] for key in TEST_KEYS},
        "test_f1_per_class": {name: r["f1"] for name, r in test["per_class"].items()},
    }


def ensemble_one(row: str, members: list[dict], scratch: Path, log=print) -> dict:
    """The ensemble of a row's seed runs (`mgrec ensemble`), scored on test like a run; reused when done."""
    seeds = [m["seed"] for m in members]
    epochs = members[0]["epochs"]
    run_dir = scratch / f"{row}-ensemble-seeds{'-'.join(map(str, seeds))}-ep{epochs}-{members_tag(members)}"
    if not RunDir(run_dir).eval_path(TEST_SPLIT).exists():
        if not RunDir(run_dir).format_path.exists():
            make_ensemble([m["run_dir"] for m in members], run_dir, log=log)
        evaluate_run(run_dir, TEST_SPLIT, precision="fp32")
    test = json.loads(RunDir(run_dir).eval_path(TEST_SPLIT).read_text(encoding="utf-8"))
    tuning = RunDir(run_dir).read_tuning()
    val = tuning.get("val_scores") or {}  # written by `make_ensemble` when it tuned on val
    return {
        "config": members[0]["config"], "row": f"{row}+ensemble", "seed": "+".join(map(str, seeds)),
        "epochs": members[0]["epochs"], "overrides": members[0]["overrides"], "run_dir": str(run_dir),
        "training": {"seconds": sum(m["training"].get("wall_seconds", m["training"]["seconds"]) for m in members),
                     "val": {"f1": val.get("f1", float("nan")), "score_threshold": tuning["score_threshold"]}},
        "test": {key: test[key] for key in TEST_KEYS},
        "test_f1_per_class": {name: r["f1"] for name, r in test["per_class"].items()},
    }


def summary_table(runs: list[dict]) -> str:
    """Markdown: one row per config (Table 2 order) with mean ± std over its seeds."""
    lines = [
        "| configuration | runs | test F1 (%) | test F1 MiGA (%) | test average mAP (%) | training time (s) "
        "| paper F1 on SMG (%) |",
        "|---|---|---|---|---|---|---|",
    ]
    for config, (title, paper_f1) in PAPER_TABLE2.items():
        group = [r for r in runs if r["config"] == config]
        if not group:
            continue
        seconds = [r["training"]["seconds"] for r in group]
        lines.append(
            f"| {title} (`{config}`) | {len(group)} (seeds {', '.join(str(r['seed']) for r in group)}) "
            f"| {_percent([r['test']['f1'] for r in group])} "
            f"| {_percent([r['test']['f1_miga'] for r in group])} "
            f"| {_percent([r['test']['average_mAP'] for r in group])} "
            f"| {statistics.fmean(seconds):.0f} | {paper_f1:.2f} |"
        )
    return "\n".join(lines)


def write_results(out: Path, runs: list[dict], meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps({**meta, "runs": runs}, indent=1) + "\n", encoding="utf-8")
    epochs = sorted({r["epochs"] for r in runs})
    quality = meta.get("study") in ("quality", "fusion")
    fusion = meta.get("study") == "fusion"
    data = meta.get("data")  # a dataset of benchmarks/heldout_data.py instead of the demo (--data)
    benchmark = "the demo benchmark" if data is None else "the held-out-style benchmark (benchmarks/heldout_data.py)"
    text = [
        ("# Fusion study on the demo's sensor streams (issue #15)" if fusion else
         f"# Quality study on {benchmark} (issue #14)" if quality else f"# Table 2 on {benchmark}"),
        "",
        (f"Test split of the demo data (built with seed {meta['demo_seed']}), " if data is None else
         f"Test split of {meta['demo_root']} (recipe {data['recipe']}, built with seed {data['seed']}), ")
        + f"train.epochs = {', '.join(map(str, epochs))}; "
        "F1 = strict one-to-one F1 at tIoU 0.3 with the score threshold tuned on val, MiGA = the challenge "
        "starter kit's F1. Mean ± sample standard deviation over seeds. "
        + ("Every row trains the same epochs with the same crops per epoch; val F1 is the selected epoch's."
           if quality else "The paper's numbers are F1 on SMG with VideoMAE V2-g features: context only, not "
           "comparable with the demo."),
        "",
        quality_table(runs, meta["rarest_third"], fusion=fusion) if quality else summary_table(runs),
        "",
    ]
    record = read_provenance(meta)
    text += [
        f"Command: `{record['command']}`  ",
        f"Machine: {record['machine']}; torch {record['torch']}, {record['threads']} threads; {record['date']}; "
        f"git commit {record['git_commit']}.",
    ]
    overrides = {}  # per row: the config overrides its runs trained with (the same for every seed)
    for r in runs:
        if r["overrides"]:
            overrides.setdefault(r.get("row", r["config"]), r["overrides"])
    text += [f"Overrides of `{row}`: {', '.join(f'`{o}`' for o in values)}.  " for row, values in overrides.items()]
    (out / "ablation.md").write_text("\n".join(text) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise InputError(f"--threads must be at least 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        if args.epochs is not None and args.epochs < 1:
            raise InputError(f"--epochs must be at least 1, got {args.epochs}")
        demo_seed = args.demo_seed
        manifest = None  # of a dataset given by --data
        if args.data is not None:
            paths, manifest = dataset_paths(args.data.expanduser().resolve())
            # a run folder's name does not carry its data: the runs of a dataset go to a folder named by its
            # annotations' content, so a rebuild with another seed, or another folder of the same name, trains anew
            fingerprint = hashlib.sha1(paths.annotations.read_bytes()).hexdigest()[:8]
            args.scratch = args.scratch.with_name(f"{args.scratch.name}-{paths.root.name}-{fingerprint}")
        else:
            args.demo_cache, args.scratch = seed_folders(demo_seed, args.demo_cache, args.scratch)
            paths = build_demo(args.demo_cache, seed=demo_seed)
        device = training_device(args.configs[0], tuple(args.override), paths.overrides())
        meta = {
            PROVENANCE_KEY: provenance(["python", "benchmarks/ablation.py", *argv], device=device),
            "demo_root": str(paths.root),
            "data": manifest,
            "demo_seed": demo_seed,
            "split": TEST_SPLIT,
            "study": args.study,
        }
        if args.study in ("quality", "fusion"):
            annotations = load_annotations(paths.annotations)
            counts = dict.fromkeys(annotations.classes, 0)
            for segments in annotations.subset("train").segments.values():
                for segment in segments:
                    counts[annotations.classes[segment.label_id]] += 1
            meta["train_instances"] = counts
            meta["rarest_third"] = rarest_third(counts)
        if args.study == "quality":
            plan = quality_plan(args.rows, on_demo=args.data is None)
        elif args.study == "fusion":
            plan = [(row, config, (*paths.stream_overrides(names), f"model.fusion={fusion}"))
                    for row, (config, names, fusion, _) in FUSION_ROWS.items() if args.rows is None or row in args.rows]
        else:
            plan = [(config, config, ()) for config in args.configs]
        if args.out is None:
            what = args.study if args.study in ("quality", "fusion") else "ablation"
            what += f"-demo{demo_seed}" if demo_seed != 0 else ""
            what += f"-{paths.root.name}" if args.data is not None else ""
            args.out = RESULTS / campaign_name(what, meta[PROVENANCE_KEY])
        runs = []
        if args.runs_from is not None:
            earlier = json.loads(args.runs_from.read_text(encoding="utf-8"))["runs"]
            runs = [r for r in earlier if r.get("row") in {row for row, *_ in plan} and r.get("seed") in args.seeds]
            meta["runs_from"] = str(args.runs_from)
            plan = []
        for row, config, overrides in plan:
            epochs = configured_epochs(config, args.epochs)
            for seed in args.seeds:
                teacher = args.scratch / RunSpec(QUALITY_ROWS["default"][0], seed, epochs, tuple(args.override)).name()
                filled = tuple(o.format(unlabeled=paths.unlabeled, teacher=teacher) if args.study == "quality" else o
                               for o in overrides)
                spec = RunSpec(config, seed, epochs, (*filled, *args.override), row=row)
                # the fusion rows' overrides point at the demo's sensor streams themselves
                record = run_one(spec, [] if args.study == "fusion" else paths.overrides(), args.scratch)
                if row == "pseudo":  # the teacher's training is part of the cost
                    teacher_record = json.loads((teacher / RECORD_NAME).read_text(encoding="utf-8"))["training"]
                    record["training"]["wall_seconds"] = (record["training"].get("wall_seconds", 0) +
                                                          teacher_record.get("wall_seconds", teacher_record["seconds"]))
                runs.append(record)
                write_results(args.out, runs, meta)
        if args.study == "fusion":
            for seed in args.seeds:
                members = [next((r for r in runs if r["row"] == row and r["seed"] == seed), None)
                           for row in LATE_FUSION]
                if all(members):
                    runs.append(late_fusion_one(seed, members, args.scratch))
                    write_results(args.out, runs, meta)
        if args.study == "fusion" and args.time_detection:
            # timed after every training, so that no training shares the cores with the clock
            for record in runs:
                record["detect_ms"] = round(detect_milliseconds(Path(record["run_dir"])), 2)
            write_results(args.out, runs, meta)
        if args.study == "quality":
            for row in ENSEMBLE_ROWS:
                members = [r for r in runs if r["row"] == row]
                if len(members) > 1:
                    runs.append(ensemble_one(row, members, args.scratch))
                    write_results(args.out, runs, meta)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.study in ("quality", "fusion"):
        print(quality_table(runs, meta["rarest_third"], fusion=args.study == "fusion"))
    else:
        print(summary_table(runs))
    print(f"wrote {args.out / 'ablation.json'} and {args.out / 'ablation.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
