"""One training step: batch -> forward -> targets -> loss -> backward -> clip -> optimiser -> EMA.

The training loop calls it, and the speed benchmark (`benchmarks/speed.py`) times it, so the
benchmark measures exactly what training runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mgrec.config import Config
from mgrec.data.datasets import Batch
from mgrec.devices import autocast_dtype, compile_failure, precision_name
from mgrec.errors import InputError
from mgrec.model.detector import COMPILED_LOGIT_TOLERANCE, DetectorOutput, logits_apart
from mgrec.train.assign import Points, assign_batch
from mgrec.train.losses import DetectionLoss, LossParts


def ema_decay_at(step: int, decay: float, warmup: float = 9.0) -> float:
    """EMA warm-up: early steps average fast so a short schedule does not keep the random init.

    min(decay, (1 + t) / (1 + warmup + t)) at step t. Until the configured decay takes over (at
    t = warmup / (1 - decay): 8991 steps for 0.999 with warmup 9), the average weights the parameters
    of step k about as k**(warmup - 1), whatever the decay: a run shorter than that is averaged by the
    warm-up alone (the demo's 720 steps are, for any decay from 0.99 up).
    """
    return min(decay, (1 + step) / (1 + warmup + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    ema_params = [p for p in ema.state_dict().values() if p.dtype.is_floating_point]
    params = [p for p in model.state_dict().values() if p.dtype.is_floating_point]
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def gradient_norm(parameters) -> torch.Tensor:
    """The L2 norm of all the gradients of `parameters` together (what `clip_grad_norm_` measures), unclipped."""
    norms = [torch.linalg.vector_norm(p.grad.detach()).float() for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def lr_factor(step: int, warmup_steps: int, total_steps: int, final: float = 0.0) -> float:
    """Linear warm-up from 0, then cosine decay to `final` (a fraction of the peak), per iteration."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def training_network(network: torch.nn.Module, compile: bool) -> torch.nn.Module:
    """What runs the training steps' forward pass: `network` itself, or with train.compile the same compiled
    by torch.compile for the one crop shape a run trains on (dynamic=False: compiled once, at the first step).
    The compiled graph draws its random numbers (drop path) as the network does (`fallback_random`), so a
    seed's compiled training takes the same draws as its eager one, and the first step can check the two
    against each other (`check_compiled_training`)."""
    return torch.compile(network, dynamic=False, options={"fallback_random": True}) if compile else network


# How far the compiled training step's gradients may stray from the network's own: the norm of the difference over
# the gradient's norm, all parameters together. Measured in float32 on a demo crop: 6e-7 for the demo's network,
# 1.3e-3 for the gated two-stream one (its 1e-6 logit differences flip a few ReLU gates of the regression tower).
COMPILED_GRADIENT_TOLERANCE = {None: 0.01, torch.bfloat16: 0.1}


def _weighted_outputs(out: DetectorOutput) -> torch.Tensor:
    """A fixed random weighting of every output (logits and offsets) at the points inside the crop: one number
    whose gradient reaches every parameter the outputs depend on, with no sums that cancel by construction."""
    weights = torch.Generator().manual_seed(0)
    total = torch.zeros((), device=out.masks[0].device)
    for outputs in (out.cls_logits, out.offsets):
        for output, inside in zip(outputs, out.masks):
            weight = torch.randn(output.shape, generator=weights).to(output.device)
            total = total + (output.float() * weight)[inside].sum()
    return total


def check_compiled_training(model: torch.nn.Module, compiled: torch.nn.Module, features: torch.Tensor,
                            mask: torch.Tensor, autocast: torch.dtype | None) -> None:
    """Refuse a compiled network whose training step is not the network's own, before it changes a weight.

    On the first crop, in training mode and under the steps' `autocast`, both run forward and backward with
    the same random draws (drop path): the logits within `COMPILED_LOGIT_TOLERANCE` of each other, and the
    gradients of a fixed random weighting of every output (`_weighted_outputs`) within
    `COMPILED_GRADIENT_TOLERANCE`. torch.compile mis-compiled a gated two-stream network for streaming
    without an error (`mgrec.infer.online.check_compiled`); a training on such a graph learns other weights.
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    cuda = [features.device] if features.device.type == "cuda" else []
    runs = []
    with torch.random.fork_rng(devices=cuda):
        draws = torch.get_rng_state(), [torch.cuda.get_rng_state(device) for device in cuda]
        for network in (model, compiled):
            torch.set_rng_state(draws[0])
            for device, state in zip(cuda, draws[1]):
                torch.cuda.set_rng_state(state, device)
            with torch.autocast(features.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                out = network(features, mask)
            gradients = torch.autograd.grad(_weighted_outputs(out), parameters, allow_unused=True)
            runs.append((out, [torch.zeros_like(p) if g is None else g.float() for p, g in zip(parameters, gradients)]))
    (own, own_gradients), (fast, fast_gradients) = runs
    own_norm = torch.sqrt(sum(g.pow(2).sum() for g in own_gradients))
    if not torch.isfinite(own_norm):
        return  # the network's own step is not finite: the step's loss check names that, not the compiler
    logits = logits_apart(own, fast)
    gradients = float(torch.sqrt(sum((a - b).pow(2).sum() for a, b in zip(own_gradients, fast_gradients))) /
                      own_norm.clamp_min(1e-30))
    logit_tolerance = COMPILED_LOGIT_TOLERANCE.get(autocast, COMPILED_LOGIT_TOLERANCE[torch.bfloat16])
    gradient_tolerance = COMPILED_GRADIENT_TOLERANCE.get(autocast, COMPILED_GRADIENT_TOLERANCE[torch.bfloat16])
    if not (logits <= logit_tolerance and gradients <= gradient_tolerance):
        gradients_said = (f"gradients {gradients:.3g} apart relative to their norm (at most {gradient_tolerance:g})"
                          if math.isfinite(gradients) else "gradients not finite (the network's own are)")
        under = f" under {precision_name(autocast)} autocast" if autocast is not None else ""
        raise InputError(f"the compiled network disagrees with the network itself on the first training crop: logits "
                         f"up to {logits:.3g} apart (at most {logit_tolerance:g} expected), {gradients_said}; "
                         f"torch.compile mis-compiled it{under}: set train.compile: false"
                         f"{' (or train.precision: fp32)' if autocast is not None else ''}; no weight was changed")


@contextmanager
def compile_errors_explained() -> Iterator[None]:
    """With train.compile, the first step compiles the forward graph and its backward pass the backward
    one: a backend that cannot build either (inductor without g++, ...) becomes a message saying what to do."""
    try:
        yield
    except torch._dynamo.exc.BackendCompilerFailed as exc:
        raise InputError(
            f"compiling the network for training failed ({compile_failure(exc)}); torch.compile needs a working "
            "C++ compiler (g++) on CPU: install one, or set train.compile: false (a run may resume either way)"
        ) from exc


@dataclass
class TrainStep:
    """Everything one optimisation step needs; called on a batch (`step(batch)`), it runs one and returns the loss
    parts, or stops the training (`InputError`) before the weights change when the loss or its gradient is not
    finite.

    `network` is what runs the forward pass (the model itself, or its DistributedDataParallel
    wrapper, either possibly compiled: train.compile); `model` holds the parameters that are
    clipped and averaged into `ema`.
    Under DDP every process gets the same global batch and trains on its share (rank::world).
    """

    model: torch.nn.Module
    network: torch.nn.Module
    ema: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    criterion: DetectionLoss
    points: Points
    config: Config
    device: torch.device
    rank: int = 0
    world: int = 1
    steps_done: int = 0
    # per class, over the steps since `take_class_stats`: summed missed probability 1 - sigmoid(logit)
    # and count of the positive points of that class (the difficulty signal of `balance.method: adaptive`)
    missed_sum: torch.Tensor | None = None
    positives: torch.Tensor | None = None
    # train.compile in one process: the first step checks the compiled network against `model`
    # (`check_compiled_training`; under DDP the compiled backward averages gradients over processes)
    compiled_unchecked: bool = False

    def __call__(self, batch: Batch) -> LossParts:
        train, num_classes = self.config.train, self.config.model.num_classes
        share = slice(self.rank, None, self.world)
        x, mask = batch.features[share].to(self.device), batch.mask[share].to(self.device)
        dtype = autocast_dtype(self.device, train.precision)
        if self.compiled_unchecked:
            with compile_errors_explained():
                check_compiled_training(self.model, self.network, x, mask, dtype)
            self.compiled_unchecked = False
        with compile_errors_explained(), torch.autocast(self.device.type, dtype=dtype or torch.float32,
                                                        enabled=dtype is not None):
            out = self.network(x, mask)
        cls_logits = torch.cat(out.cls_logits, dim=1).float()
        offsets = torch.cat(out.offsets, dim=1).float()
        valid = torch.cat(out.masks, dim=1)
        targets = assign_batch(self.points, [s.to(self.device) for s in batch.segments[share]],
                               [lab.to(self.device) for lab in batch.labels[share]],
                               num_classes, train.center_radius, valid)
        num_pos = None
        if self.world > 1:
            num_pos = targets.positive.sum().float()
            dist.all_reduce(num_pos)
        self.record_class_stats(cls_logits, targets.cls_targets, targets.positive & valid)
        parts = self.criterion(cls_logits, offsets, targets.cls_targets, targets.reg_targets, targets.positive,
                               valid, num_pos_override=num_pos)
        if not bool(torch.isfinite(parts.total.detach())):
            self.stop(f"the loss is {float(parts.total.detach())} (classification {float(parts.cls.detach())}, "
                      f"regression {float(parts.reg.detach())})", "Lower train.lr, or check the features "
                      "(`mgrec data check`)")
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over processes; the loss is a sum over the global batch. A compiled network
        # compiles its backward graph here, at the first backward pass.
        with compile_errors_explained():
            (parts.total * self.world).backward()
        if train.clip_grad > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_grad)
        else:
            norm = gradient_norm(self.model.parameters())
        if not bool(torch.isfinite(norm)):
            # a finite loss whose backward pass is not (a derivative undefined where it was taken, an overflow in
            # bf16): the step would write NaN into the weights and the EMA, and the next step stopped at a NaN loss,
            # saying the weights were not updated, with an epoch of NaN weights checkpointed
            self.stop(f"the loss is finite ({float(parts.total.detach()):.6g}) but its gradient is not (norm "
                      f"{float(norm)})", self.advice_for_gradients())
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        update_ema(self.ema, self.model, ema_decay_at(self.steps_done, train.ema_decay, train.ema_warmup))
        self.steps_done += 1
        return parts

    def stop(self, what: str, advice: str) -> None:
        """Stop the training before this step touches the weights: the run keeps the epochs it completed (none, at an
        epoch 0). The advice changes the config, which --resume refuses but for train.compile and train.device."""
        raise InputError(f"training stopped at step {self.steps_done}: {what}; the weights were not updated, and the "
                         f"run keeps the epochs it completed. {advice} (changed otherwise than in train.compile or "
                         "train.device, the config trains a new run, into another --out: --resume takes the run's own)")

    def advice_for_gradients(self) -> str:
        """What to change when the gradient of a finite loss is not finite: the settings that compute it otherwise
        first (bf16 autocast, the compiled backward pass), then the data."""
        train, changes = self.config.train, []
        if autocast_dtype(self.device, train.precision) is not None:
            changes.append("train.precision: fp32")
        if train.compile:
            changes.append("train.compile: false")
        return (f"Train with {' and '.join(changes)}, or check" if changes else "Check") + \
            " the features (`mgrec data check`), or lower train.lr"

    @torch.no_grad()
    def record_class_stats(self, cls_logits: torch.Tensor, cls_targets: torch.Tensor, positive: torch.Tensor) -> None:
        targets = cls_targets[positive].float()  # (M, K): the class(es) each positive point stands for
        missed = ((1 - torch.sigmoid(cls_logits[positive])) * targets).sum(0)
        if self.missed_sum is None:
            self.missed_sum, self.positives = torch.zeros_like(missed), torch.zeros_like(missed)
        self.missed_sum += missed
        self.positives += targets.sum(0)

    def take_class_stats(self) -> tuple[list[float], list[float]]:
        """Per-class (missed sum, positive count) since the last call, summed over processes; then reset."""
        num_classes = self.config.model.num_classes
        if self.missed_sum is None:
            return [0.0] * num_classes, [0.0] * num_classes
        stats = torch.stack([self.missed_sum, self.positives])
        if self.world > 1:
            dist.all_reduce(stats)
        self.missed_sum = self.positives = None
        return stats[0].tolist(), stats[1].tolist()
