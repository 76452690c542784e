"""`mgrec train`: the training loop, validation on val, checkpoints and resume.

Reads top to bottom: set-up (devices, processes, data, model, optimiser), then epochs of
crops -> forward -> targets -> loss -> step -> EMA, validating the EMA weights on the val split
every `eval_every` epochs and keeping the best and the last checkpoint. Model selection never
looks at the test split.

Determinism: every epoch's crops and noise come from generators seeded by (seed, epoch), and a
checkpoint is written at the end of every epoch, so `--resume` after a crash replays exactly
the epochs that an uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mgrec.config import Config, save_config, to_dict
from mgrec.data.datasets import draw_training_crops, make_batch
from mgrec.data.features import FeatureSidecar, feature_path, read_sidecar, sidecar_path
from mgrec.devices import resolve_device
from mgrec.errors import InputError
from mgrec.evaluate.f1 import tune_score_threshold
from mgrec.files import atomic_write_text
from mgrec.evaluate.scoring import score
from mgrec.model.detector import build_detector
from mgrec.postprocess.video import detect_video
from mgrec.train.assign import assign_batch, make_points
from mgrec.train.checkpoint import (
    load_into,
    load_training_state,
    save_training_state,
    save_weights,
)
from mgrec.train.data import checked_annotations, crop_anchors, load_split
from mgrec.train.losses import DetectionLoss


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metrics: dict
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def ema_decay_at(step: int, decay: float) -> float:
    """EMA warm-up: early steps average fast so a short schedule does not keep the random init."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    ema_params = [p for p in ema.state_dict().values() if p.dtype.is_floating_point]
    params = [p for p in model.state_dict().values() if p.dtype.is_floating_point]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up from 0, then cosine decay to 0, per iteration."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def forget_epochs_from(path: Path, epoch: int) -> None:
    """Drop metrics of epochs >= `epoch` (logged by a run killed before it checkpointed them),
    so that a resumed run's log has each epoch once."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
            if line.strip() and json.loads(line).get("epoch", -1) < epoch]
    atomic_write_text(path, "".join(kept))


class MetricsLog:
    """Appends one JSON object per line to RUN_DIR/metrics.jsonl (and TensorBoard when installed)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        self.tensorboard = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(path.parent / "tensorboard"))
            except ImportError:
                pass

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "step"):
                    self.tensorboard.add_scalar(f"{record['kind']}/{key}", value, record.get("step", record["epoch"]))


def validate(model, split, config: Config, classes: list[str]) -> tuple[dict, dict]:
    """Ranked detections on `split` -> score threshold tuned on it -> scores."""
    ranked = {
        s.video_id: detect_video(model, s.features, s.grid, config.postprocess, classes, s.video_id)
        for s in split.samples
    }
    threshold = tune_score_threshold(split.ground_truth, ranked)
    return score(split.ground_truth, ranked, classes, threshold, split="val"), ranked


def feature_recipe(config: Config, video_id: str) -> FeatureSidecar | None:
    """The sidecar of a training video's features (backbone, window, stride, weights), if it has one."""
    side = sidecar_path(feature_path(config.data.features, video_id, config.data.feature_ext))
    return read_sidecar(side) if side.exists() else None


def train(config: Config, run_dir: str | Path, resume: bool = False, log=print, progress: bool = True) -> TrainResult:
    started = time.time()
    run_dir = Path(run_dir)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(config.train.device)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    say = log if is_main else (lambda *_: None)
    if config.train.batch_size % world:
        raise InputError(f"train.batch_size={config.train.batch_size} must be divisible by the {world} processes")

    checkpoints = run_dir / "checkpoints"
    state_path = checkpoints / "last_state.pt"
    if not resume and (checkpoints / "last.safetensors").exists():
        raise InputError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not state_path.exists():
        raise InputError(f"--resume: {state_path} not found, nothing to resume (start without --resume)")

    # data
    annotations, excluded = checked_annotations(config, log=say)
    classes = annotations.classes
    if config.model.num_classes != len(classes):
        raise InputError(f"model.num_classes={config.model.num_classes} but {config.data.annotations} has {len(classes)} classes")
    if config.model.input_dim != config.data.feature_dim:
        raise InputError(f"model.input_dim={config.model.input_dim} differs from data.feature_dim={config.data.feature_dim}")
    train_split = load_split(config, annotations, config.data.train_split, excluded)
    val_split = load_split(config, annotations, config.data.val_split, excluded)
    if not train_split.samples:
        raise InputError(f"{config.data.annotations}: no videos in the training split {config.data.train_split!r}")
    anchors = crop_anchors(train_split.samples, len(classes), config.data.augment_alpha)

    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
        atomic_write_text(run_dir / "classes.json", json.dumps(classes, indent=1))
        recipe = feature_recipe(config, train_split.samples[0].video_id)
        if recipe is not None:  # lets `mgrec detect` extract features from a raw video the same way
            atomic_write_text(run_dir / "feature_recipe.json", json.dumps(dataclasses.asdict(recipe), indent=1))

    # model, EMA, optimiser, schedule
    seed_everything(config.seed)
    model = build_detector(config.model).to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.param_groups(config.train.weight_decay), lr=config.train.lr)
    crop_len = config.data.max_seq_len
    crops_per_epoch = config.train.crops_per_video * len(train_split.samples)
    steps_per_epoch = max(1, crops_per_epoch // config.train.batch_size)
    total_steps = steps_per_epoch * config.train.epochs
    warmup_steps = steps_per_epoch * config.train.warmup_epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, warmup_steps, total_steps))
    criterion = DetectionLoss(config.train)
    with torch.no_grad():
        probe = model(torch.zeros(1, config.model.input_dim, crop_len, device=device),
                      torch.ones(1, 1, crop_len, dtype=torch.bool, device=device))
    points = make_points([m.shape[1] for m in probe.masks], probe.strides, config.model.regression_ranges)
    points = points.to(device)

    start_epoch, step, best = 0, 0, {"epoch": -1, "value": -math.inf, "metrics": {}}
    if resume:
        state = load_training_state(state_path)
        load_into(model, state["model"], state_path)
        load_into(ema, state["ema"], state_path)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        criterion.loss_norm = float(state["loss_norm"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        best = json.loads(state["best"])
        say(f"resuming {run_dir} after epoch {start_epoch - 1} (step {step})")

    if resume and is_main:
        forget_epochs_from(run_dir / "metrics.jsonl", start_epoch)
        for leftover in checkpoints.glob(".*.tmp"):  # half-written by the killed run; never read
            leftover.unlink()
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=is_main)
    use_bf16 = device.type == "cuda" and config.train.bf16
    say(f"training {config.model.variant} on {len(train_split.samples)} videos ({len(anchors)} crop anchors), "
        f"validating on {len(val_split.samples)}; {config.train.epochs} epochs x {steps_per_epoch} steps on {device}"
        + (f" x {world} processes" if world > 1 else ""))
    bar = _progress(total_steps, step, enabled=progress and is_main)
    for epoch in range(start_epoch, config.train.epochs):
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(config.seed * 1000 + epoch)
        noise_gen = torch.Generator().manual_seed(config.seed * 1000 + epoch)
        crops = draw_training_crops(train_split.samples, anchors, steps_per_epoch * config.train.batch_size, crop_len, rng)
        epoch_started, sums = time.time(), {"loss": 0.0, "cls_loss": 0.0, "reg_loss": 0.0}
        for i in range(steps_per_epoch):
            global_crops = crops[i * config.train.batch_size : (i + 1) * config.train.batch_size]
            batch = make_batch(train_split.samples, global_crops, crop_len, config.data.crop_keep_fraction,
                               config.train.input_noise, noise_gen)
            # every process draws the same global batch and keeps its share of it
            share = slice(rank, None, world)
            x, mask = batch.features[share].to(device), batch.mask[share].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = train_model(x, mask)
            cls_logits = torch.cat(out.cls_logits, dim=1).float()
            offsets = torch.cat(out.offsets, dim=1).float()
            valid = torch.cat(out.masks, dim=1)
            cls_t, reg_t, positive = assign_batch(points, [s.to(device) for s in batch.segments[share]],
                                                  [lab.to(device) for lab in batch.labels[share]],
                                                  len(classes), config.train.center_radius, valid)
            num_pos = None
            if world > 1:
                num_pos = positive.sum().float()
                dist.all_reduce(num_pos)
            parts = criterion(cls_logits, offsets, cls_t, reg_t, positive, valid, num_pos_override=num_pos)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over processes; the loss is a sum over the global batch
            (parts.total * world).backward()
            if config.train.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.clip_grad)
            optimizer.step()
            scheduler.step()
            update_ema(ema, model, ema_decay_at(step, config.train.ema_decay))
            step += 1
            for key, value in (("loss", parts.total), ("cls_loss", parts.cls), ("reg_loss", parts.reg)):
                sums[key] += float(value.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{float(parts.total.detach()):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        record = {"kind": "train", "epoch": epoch, "step": step, "lr": scheduler.get_last_lr()[0],
                  "seconds": round(time.time() - epoch_started, 3)}
        record.update({k: v / steps_per_epoch for k, v in sums.items()})
        metrics.write(record)

        last_epoch = epoch == config.train.epochs - 1
        if is_main and ((epoch + 1) % config.train.eval_every == 0 or last_epoch) and val_split.samples:
            result, _ = validate(ema, val_split, config, classes)
            value = result[config.train.select_metric]
            metrics.write({"kind": "val", "epoch": epoch, "step": step, **{k: result[k] for k in (
                "f1", "precision", "recall", "f1_miga", "average_mAP", "score_threshold")}})
            say(f"epoch {epoch}: val f1 {result['f1']:.4f} f1_miga {result['f1_miga']:.4f} "
                f"average mAP {result['average_mAP']:.4f} (threshold {result['score_threshold']:.3f})")
            if value > best["value"]:
                best = {"epoch": epoch, "value": value, "metrics": {k: result[k] for k in (
                    "f1", "f1_miga", "average_mAP", "score_threshold")}}
                save_weights(checkpoints / "best.safetensors", model, ema, {"epoch": epoch, **best["metrics"]})
        if is_main:
            save_weights(checkpoints / "last.safetensors", model, ema, {"epoch": epoch})
            # one file holds everything --resume needs, so a kill can never pair weights of one
            # epoch with optimiser state of another
            save_training_state(state_path, {
                "epoch": epoch, "step": step, "model": model.state_dict(), "ema": ema.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "loss_norm": criterion.loss_norm, "best": json.dumps(best),
            })
        if world > 1:
            dist.barrier()
    if bar is not None:
        bar.close()

    if is_main:
        if not val_split.samples:
            # no val split: the last weights are the selected ones, with the configured threshold
            save_weights(checkpoints / "best.safetensors", model, ema, {"epoch": config.train.epochs - 1})
            best = {"epoch": config.train.epochs - 1, "value": None,
                    "metrics": {"score_threshold": config.postprocess.score_threshold}}
            say("no val split: keeping the last epoch and the configured score threshold")
        post = to_dict(config)["postprocess"]
        post["score_threshold"] = best["metrics"]["score_threshold"]
        post["selected_epoch"] = best["epoch"]
        post["tuned_on"] = config.data.val_split if val_split.samples else None
        atomic_write_text(run_dir / "postprocess.json", json.dumps(post, indent=1))
    return TrainResult(run_dir, best["epoch"], best["metrics"], time.time() - started)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)
