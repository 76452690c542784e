"""Run-directory checkpoints: weights as safetensors, training state for `--resume`.

Every file is written atomically (temporary file in the same folder, fsync, rename), so a run
killed at any moment leaves either the previous complete checkpoint or the new one, never half of
one. Nothing here executes code on load: safetensors for weights, JSON for metadata and
`torch.load(weights_only=True)` for optimizer state.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mgrec.errors import InputError
from mgrec.files import atomic_write


def save_weights(path: Path, model: torch.nn.Module, ema: torch.nn.Module | None, metadata: dict) -> None:
    """Model weights (and EMA weights under the prefix `ema.`) in one safetensors file."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    meta = {"mgrec": json.dumps(metadata)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_weights(path: Path, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """State dict (the EMA copy when present and `use_ema`) and the metadata stored with it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("mgrec", "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"checkpoint {path} is not a readable safetensors file: {exc}") from None
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    plain = {k: v for k, v in tensors.items() if not k.startswith("ema.")}
    return (ema if use_ema and ema else plain), meta


def load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict, turning shape/key mismatches into a clear error about the configuration."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            details.append(f"{len(wrong)} with other shapes (e.g. {k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)})")
        raise InputError(
            f"checkpoint {source} does not fit the model built from the run's config: {'; '.join(details)}. "
            "Was it written by another model configuration?"
        )
    model.load_state_dict(state)


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise InputError(f"training state {path} cannot be read ({exc}); delete it to restart the run") from None
