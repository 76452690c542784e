"""A trained run's network from its files: one detector, or the averaging ensemble `mgrec ensemble` made, with the
EMA weights of a checkpoint (`load_run_network`, what detection, pseudo-labelling and ensembles load)."""

from __future__ import annotations

from torch import nn

from mgrec.config import Config, ModelConfig
from mgrec.errors import InputError
from mgrec.model.detector import build_detector, upgrade_state_dict
from mgrec.model.end_to_end import split_state
from mgrec.model.ensemble import EnsembleDetector
from mgrec.run import RunDir, load_into


def build_model(cfg: ModelConfig, ensemble_members: int | None = None) -> nn.Module:
    """The network of a run: one detector, or an ensemble of `ensemble_members` detectors of `cfg`."""
    if ensemble_members is None:
        return build_detector(cfg)
    return EnsembleDetector([build_detector(cfg) for _ in range(ensemble_members)])


def load_run_network(run: RunDir, checkpoint: str = "best") -> tuple[Config, list[str], nn.Module]:
    """A finished run's config, classes and network (one detector, or the members of a run made by
    `mgrec ensemble`) with the EMA weights of `checkpoint`, in eval mode on the CPU."""
    run.require_finished(checkpoint)
    run.read_format_version()
    config = run.read_config()
    classes = run.read_classes(expected_count=config.model.num_classes)
    ensemble = run.read_ensemble()
    if ensemble is not None and ensemble.get("fusion") == "detections":
        raise InputError(f"{run.path} fuses its members' detections: it has no single network (detect, evaluate "
                         "and report take it; other uses take one of its members, in members/)")
    weights, metadata = run.read_weights(checkpoint, use_ema=True)
    run.check_weights_match(checkpoint, metadata, config)
    if ensemble:  # counted before that many detectors are built: an edited count of 10**9 would exhaust memory
        held = {key.split(".")[1] for key in weights if key.startswith("members.")}
        if len(held) != ensemble["members"]:
            raise InputError(f"{run.format_path} [ensemble.members]: {ensemble['members']}, but "
                             f"{run.weights_path(checkpoint)} holds {len(held)} members")
    model = build_model(config.model, ensemble["members"] if ensemble else None)
    if config.end_to_end:  # its features come from the adapted backbone (extraction reads the adapters)
        weights, _ = split_state(weights, str(run.weights_path(checkpoint)))
    load_into(model, weights, run.weights_path(checkpoint), upgrade=upgrade_state_dict)
    return config, classes, model.eval()
