"""Typed configuration: dataclasses, YAML loading with validation, and `a.b=c` overrides.

Unknown keys and wrong types are `InputError`s naming the file and key, with the closest valid
key suggested. The resolved config is saved as YAML in every run directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid


@dataclass
class DataConfig:
    annotations: str = ""  # ActivityNet-style JSON (see mgrec.data.annotations)
    features: str = ""  # folder with one feature file per video
    feature_ext: str = ".npy"  # .npy (T, C) or .npz with key "feats"
    feature_dim: int = 1408
    stride: int = 4  # frames between consecutive feature windows
    window: int = 16  # frames per feature window
    fps: float | None = None  # None: take fps from the annotations
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    max_seq_len: int = 2304  # training crop length in feature steps
    crop_keep_fraction: float = 0.5  # a crop must keep this much of at least one instance
    augment_alpha: int | None = None  # category-frequency label augmentation (paper Eq. 1); None = off
    drop_bad_videos: bool = False  # train anyway when `data check` finds errors (drops those videos)

    def grid(self, video_fps: float | None) -> FeatureGrid:
        """The feature grid of a video: `data.fps` when set, else the video's own fps (annotations or sidecar).

        The only place a grid is built from the config."""
        fps = self.fps if self.fps is not None else video_fps
        if fps is None:
            raise InputError("the features' fps is unknown: set data.fps, or give the video's fps "
                             "(annotations, or a sidecar .json next to the features)")
        return FeatureGrid(fps=fps, stride=self.stride, window=self.window)


@dataclass
class ModelConfig:
    variant: str = "mgrec"  # mgrec | dyfadet | actionformer
    input_dim: int | None = None  # derived: data.feature_dim (a different value is refused)
    num_classes: int = 17
    embed_dim: int = 512
    mlp_dim: int = 768
    head_dim: int = 512
    num_levels: int = 6  # pyramid levels: strides 1, 2, ..., 2**(num_levels-1)
    stem_layers: int = 2
    window_size: int = 1  # DynE window w
    kernel_expansion: float = 5.0  # DynE expansion k: multi-kernel size round((w+1)*k), odd
    head_kernel: int = 3
    head_layers: int = 3  # conv/DFA layers in the head before the final predictors
    drop_path: float = 0.1
    init_conv_std: float = 0.02  # DynE conv init; the released 0 leaves those convs dead
    gate_tau: float = 1.5  # GeReTanH offset
    attention_mlp_ratio: int = 16  # ST attention channel-MLP reduction
    attention_kernel: int = 7  # ST attention temporal kernel (paper Eq. 5)
    transformer_heads: int = 4  # actionformer variant
    transformer_window: int = 19  # actionformer local attention window
    cls_prior: float = 0.01
    regression_ranges: list[list[float]] = field(
        default_factory=lambda: [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]]
    )


@dataclass
class TrainConfig:
    epochs: int = 40
    warmup_epochs: int = 5
    batch_size: int = 2
    lr: float = 1e-4
    weight_decay: float = 0.025
    clip_grad: float = 1.0
    ema_decay: float = 0.999  # with warm-up: decay_t = min(decay, (1+t)/(10+t))
    center_radius: float = 1.5
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    label_smoothing: float = 0.0
    init_loss_norm: float = 100.0
    reg_loss_weight: float = 1.0
    input_noise: float = 0.0
    crops_per_video: int = 4  # random crops drawn per video per epoch (videos are long)
    eval_every: int = 5  # epochs between validation runs
    select_metric: str = "f1"  # val metric that picks the best checkpoint: f1 | average_mAP
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 0
    precision: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16


@dataclass
class PostprocessConfig:
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    nms: str = "soft"  # soft (Gaussian) | hard
    iou_threshold: float = 0.5  # hard NMS
    sigma: float = 0.5  # Gaussian Soft-NMS
    min_score: float = 0.001
    max_detections: int = 2000
    min_duration: float = 0.05  # in feature steps
    score_threshold: float = 0.3  # hard set for F1 (replaced by the value tuned on val)


@dataclass
class Config:
    name: str = "mgrec"
    seed: int = 1234
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)

    def __post_init__(self) -> None:
        # The model reads the features as they are: its input size is the features' size, stated once.
        if self.model.input_dim is None:
            self.model.input_dim = self.data.feature_dim


MODEL_VARIANTS = ("mgrec", "dyfadet", "actionformer")
PRECISIONS = ("auto", "fp32", "bf16")  # see mgrec.devices.autocast_dtype


def find_config(name: str | Path) -> Path:
    """A config argument -> its file: the file itself when it exists, else the config of that name
    shipped in the package (package data `mgrec/configs`, found through importlib.resources, so a
    source checkout and an installed wheel reach the same files): `demo/mgrec.yaml`, `demo/mgrec`
    or `configs/demo/mgrec.yaml`. Otherwise the path unchanged (reading it says it does not exist)."""
    from importlib import resources

    path = Path(name).expanduser()
    if path.exists():
        return path
    shipped = Path(str(resources.files("mgrec") / "configs")).resolve()
    text = path.as_posix().removeprefix("configs/")
    candidate = (shipped / (text if text.endswith((".yaml", ".yml")) else text + ".yaml")).resolve()
    return candidate if candidate.is_relative_to(shipped) and candidate.is_file() else path


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (a file, or a config shipped with mgrec by name: see `find_config`; with an
    optional `base:` file to inherit from) and apply overrides."""
    path = find_config(path)
    raw = _read_yaml_with_base(path, seen=())
    for item in overrides or []:
        _apply_override(raw, item)
    _upgrade_renamed_keys(raw, str(path))
    config = from_dict(Config, raw, source=str(path))
    validate(config, source=str(path))
    return config


def _read_yaml_with_base(path: Path, seen: tuple) -> dict:
    if path in seen:
        raise InputError(f"{path}: config inherits from itself via 'base'")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of sections (data, model, train, ...), got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    merged = _read_yaml_with_base((path.parent / base).resolve(), seen + (path,))
    _deep_update(merged, raw)
    return merged


def _deep_update(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _apply_override(raw: dict, item: str) -> None:
    """`train.lr=3e-4` -> raw["train"]["lr"] = 3e-4 (value parsed as YAML)."""
    if "=" not in item:
        raise InputError(f"override {item!r}: expected key=value, e.g. train.lr=3e-4")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"override {item!r}: {part} is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(text)
    except yaml.YAMLError:
        node[parts[-1]] = text


# Keys of older configs (and of the config.yaml of older runs), each read into its one new key.
# Giving both the old and the new key is refused: two keys must never disagree.
_RENAMED_KEYS = {
    ("train", "bf16"): ("precision", lambda on: "auto" if on else "fp32"),  # bf16 was CUDA-only
}


def _upgrade_renamed_keys(raw: dict, source: str) -> None:
    for (section, old), (new, convert) in _RENAMED_KEYS.items():
        values = raw.get(section)
        if not isinstance(values, dict) or old not in values:
            continue
        if new in values:
            raise InputError(f"{source} [{section}.{old}]: replaced by {section}.{new}; give only {section}.{new}")
        old_value = values.pop(old)
        if not isinstance(old_value, bool):
            raise InputError(f"{source} [{section}.{old}]: expected true or false, got {old_value!r}")
        values[new] = convert(old_value)


def from_dict(cls, raw: Any, source: str, prefix: str = ""):
    """Build dataclass `cls` from a plain dict, checking keys and types."""
    if not isinstance(raw, dict):
        raise InputError(f"{source} [{prefix or 'top level'}]: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
            raise InputError(f"{source} [{full}]: unknown key{hint}")
        values[key] = _convert(hints[key], value, source, full)
    return cls(**values)


def _convert(hint, value, source: str, key: str):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source, prefix=key + ".")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _convert(inner[0], value, source, key)
    if origin is list:
        if not isinstance(value, list):
            raise InputError(f"{source} [{key}]: expected a list, got {value!r}")
        (item_hint,) = typing.get_args(hint)
        return [_convert(item_hint, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise InputError(f"{source} [{key}]: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def validate(config: Config, source: str) -> None:
    """Checks across fields that types alone cannot express."""
    m = config.model
    check_model(m, source)
    if m.input_dim != config.data.feature_dim:
        raise InputError(f"{source} [model.input_dim]: {m.input_dim} differs from data.feature_dim="
                         f"{config.data.feature_dim}; leave model.input_dim out (it follows data.feature_dim)")
    if len(m.regression_ranges) != m.num_levels:
        raise InputError(
            f"{source} [model.regression_ranges]: {len(m.regression_ranges)} ranges for {m.num_levels} levels"
        )
    if config.data.max_seq_len % (2 ** (m.num_levels - 1)) != 0:
        raise InputError(
            f"{source} [data.max_seq_len]: {config.data.max_seq_len} must be divisible by the largest pyramid "
            f"stride {2 ** (m.num_levels - 1)}"
        )
    if config.postprocess.nms not in ("soft", "hard"):
        raise InputError(f"{source} [postprocess.nms]: expected 'soft' or 'hard', got {config.postprocess.nms!r}")
    if config.train.precision not in PRECISIONS:
        raise InputError(f"{source} [train.precision]: expected one of {', '.join(PRECISIONS)}, "
                         f"got {config.train.precision!r}")
    if config.train.select_metric not in ("f1", "average_mAP"):
        raise InputError(f"{source} [train.select_metric]: expected 'f1' or 'average_mAP'")
    for name in ("stride", "window", "feature_dim", "max_seq_len"):
        if getattr(config.data, name) <= 0:
            raise InputError(f"{source} [data.{name}]: must be positive")
    positive = {"train.epochs": config.train.epochs, "train.batch_size": config.train.batch_size,
                "train.eval_every": config.train.eval_every, "train.crops_per_video": config.train.crops_per_video,
                "train.lr": config.train.lr, "postprocess.sigma": config.postprocess.sigma,
                "postprocess.max_detections": config.postprocess.max_detections,
                "postprocess.pre_nms_topk": config.postprocess.pre_nms_topk}
    for key, value in positive.items():
        if not value > 0:
            raise InputError(f"{source} [{key}]: must be positive, got {value}")
    within = {
        "train.ema_decay": (config.train.ema_decay, 0.0, 1.0),
        "data.crop_keep_fraction": (config.data.crop_keep_fraction, 0.0, 1.0),
        "postprocess.iou_threshold": (config.postprocess.iou_threshold, 0.0, 1.0),
    }
    for key, (value, low, high) in within.items():
        if not low <= value <= high:
            raise InputError(f"{source} [{key}]: must lie in [{low}, {high}], got {value}")
    if config.train.warmup_epochs < 0:
        raise InputError(f"{source} [train.warmup_epochs]: must be >= 0, got {config.train.warmup_epochs}")
    if config.data.fps is not None and not config.data.fps > 0:
        raise InputError(f"{source} [data.fps]: must be positive, or null to take the fps from the annotations")
    if config.data.augment_alpha is not None and config.data.augment_alpha < 1:
        raise InputError(f"{source} [data.augment_alpha]: must be >= 1 or null (off)")


def check_model(m: ModelConfig, source: str = "model config") -> None:
    """Model settings that the network cannot be built with, reported by config key (the one
    place: `validate` runs it for a config file, `build_detector` for a ModelConfig built in code)."""

    def fail(key: str, expected: str) -> None:
        raise InputError(f"{source} [model.{key}]: expected {expected}, got {getattr(m, key)!r}")

    if m.variant not in MODEL_VARIANTS:
        close = difflib.get_close_matches(m.variant, MODEL_VARIANTS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"{source} [model.variant]: {m.variant!r} is not one of {', '.join(MODEL_VARIANTS)}{hint}")
    for key in ("input_dim", "num_classes", "embed_dim", "mlp_dim", "head_dim", "num_levels", "head_layers"):
        if not isinstance(getattr(m, key), int) or getattr(m, key) < 1:
            fail(key, "a positive integer")
    if m.stem_layers < 0:
        fail("stem_layers", "a non-negative integer")
    for key in ("head_kernel", "window_size", "attention_kernel", "transformer_window"):
        if getattr(m, key) < 1 or getattr(m, key) % 2 != 1:
            fail(key, "an odd positive integer (centred kernels/windows)")
    if not m.kernel_expansion > 0:
        fail("kernel_expansion", "a positive number")
    if not 0.0 <= m.drop_path < 1.0:
        fail("drop_path", "a rate in [0, 1)")
    if not 0.0 < m.cls_prior < 1.0:
        fail("cls_prior", "a probability in (0, 1)")
    if m.attention_mlp_ratio < 1:
        fail("attention_mlp_ratio", "a positive integer")
    if m.transformer_heads < 1 or m.embed_dim % m.transformer_heads != 0:
        fail("transformer_heads", f"a positive divisor of embed_dim={m.embed_dim}")


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def save_config(config: Config, path: str | Path) -> None:
    from mgrec.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
