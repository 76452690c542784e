"""Typed configuration: dataclasses, YAML loading with validation, and `a.b=c` overrides.

Unknown keys and wrong types are `InputError`s naming the file and key, with the closest valid
key suggested. The resolved config is saved as YAML in every run directory.

Every key carries its one-line meaning beside it (field metadata `DOC`); `mgrec.config_reference`
renders docs/config.md from them, with the ActionFormer/OpenTAD -> mgrec key table. Split names are
read like the annotations' subset names (`canonical_subset`: `Validation` -> `val`).
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import datetime
import difflib
import math
import numbers
import os
import re
import stat
import types
import typing
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mgrec.errors import InputError, where
from mgrec.files import (
    brief,
    counted,
    decode_utf8,
    descriptor_named,
    file_name_problem,
    is_finite_real,
    is_number,
    listed,
    path_argument,
    resolve_path,
    shell_word,
)
from mgrec.smg_csv import MAX_FPS, fps_problem
from mgrec.timeline import FeatureGrid

# ActivityNet's subset names and mgrec's short ones name the same splits; annotations' subsets and the
# config's split names go through this one rule, so `val_split: Validation` finds subset "validation".
_SUBSET_ALIASES = {"training": "train", "validation": "val", "testing": "test"}


def canonical_subset(name: str) -> str:
    """'Training'/'validation'/'testing' -> 'train'/'val'/'test'; any other name lower-cased."""
    lowered = name.strip().lower()
    return _SUBSET_ALIASES.get(lowered, lowered)


def split_name(value: object, what: str = "split") -> str:
    """A split's name as the annotations and a run's files use it: `canonical_subset`, and one plain file name
    (`safe_child`'s rule) short enough for the longest output name it is part of (`detections_<split>_last.json`;
    also `eval_<split>.json`, `report_<split>.html`): a subset `x/../postprocess` in an annotations file made `mgrec
    evaluate` replace the run's postprocess.json. The one rule for a split named in an annotations file, on the
    command line or in a call that names files by it (a config's split names only select videos: the files are
    named by the split a command is given)."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} {brief(value)}: expected a split name such as 'test'")
    name = canonical_subset(value)
    problem = file_name_problem(name) or file_name_problem(f"detections_{name}_last.json")
    if problem:
        raise InputError(f"{what} {brief(value)} {problem}: a split's name is part of output file names "
                         "(eval_<split>.json), so it must be one plain name")
    if name.endswith("_last"):  # split `test_last`'s files would be split `test`'s at --checkpoint last
        raise InputError(f"{what} {brief(value)}: a split's name may not end in '_last', which names the last "
                         "checkpoint's outputs (eval_<split>_last.json)")
    return name


# Every key's one-line meaning lives beside it, in the field's metadata under DOC: docs/config.md is
# generated from it (`mgrec.config_reference`), and tests/test_config_reference.py fails on a key without one.
DOC = "doc"


def _doc(default: Any, meaning: str) -> Any:
    """A config field with its default and its one-line meaning; a list default is copied per instance."""
    if isinstance(default, list):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={DOC: meaning})
    return field(default=default, metadata={DOC: meaning})


def _section(cls: type, meaning: str) -> Any:
    return field(default_factory=cls, metadata={DOC: meaning})


class UnknownKey(InputError, AttributeError):
    """A config attribute set in code that is no key of its section (an AttributeError too, as for any object)."""


class _KeysOnly:
    """A config section takes only its own keys as attributes: `config.train.learning_rate = 1` in Python would
    otherwise be kept aside and ignored, where the same typo in a file is refused with "did you mean". Names
    starting with `_` stay free (`Config._origins`, where each key's value came from)."""

    def __setattr__(self, name: str, value: Any) -> None:
        keys = type(self).__dataclass_fields__
        if not name.startswith("_") and name not in keys:
            close = difflib.get_close_matches(name, list(keys), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; its keys: {', '.join(keys)}"
            raise UnknownKey(f"{type(self).__name__} has no key {name!r}{hint}")
        object.__setattr__(self, name, value)


@dataclass
class StreamConfig(_KeysOnly):
    """One input stream of a multi-stream config (`data.streams`): its own feature files and recipe."""

    name: str = _doc("", "the stream's name (rgb, skeleton, acc, ...): errors, runs and reports name it")
    features: str = _doc("", "folder of this stream's feature files, one per video: "
                             "`<feature_prefix><video_id><feature_ext>`")
    feature_ext: str = _doc(".npy", "feature file ending: `.npy` or `.npz` (the array under key `feats`)")
    feature_prefix: str = _doc("", "text before the video id in this stream's feature file names")
    feature_dim: int = _doc(0, "C of this stream's feature vectors (its sidecar's `dim`)")
    stride: int = _doc(4, "video frames between the starts of consecutive windows of this stream")
    window: int = _doc(16, "video frames per window of this stream")
    fps: float | None = _doc(None, "frame rate this stream was sampled at; null: its sidecar's, else the video's")

    def grid(self, video_fps: float | None) -> FeatureGrid:
        """This stream's own feature grid (before it is resampled onto the data's grid)."""
        fps = self.fps if self.fps is not None else video_fps
        if fps is None:
            raise InputError(f"stream {self.name!r}: the features' fps is unknown: set its fps, or give the "
                             "video's fps (annotations, or a sidecar .json next to the features)")
        return FeatureGrid(fps=fps, stride=self.stride, window=self.window)


# With `data.streams`, these data keys are the grid stream's (`data.grid_stream`) or, for feature_dim, the
# streams' sum; a config may leave them out, and a different value is refused (`check_stream_keys`).
DERIVED_FROM_STREAMS = ("features", "feature_ext", "feature_prefix", "feature_dim", "stride", "window", "fps")
FUSIONS = ("concat", "sum", "gated")


@dataclass
class DataConfig(_KeysOnly):
    annotations: str = _doc("", "annotations file: ActivityNet-style JSON (`mgrec data convert` makes one from SMG "
                                "label folders); needed to train")
    features: str = _doc("", "folder of feature files, one per video: `<feature_prefix><video_id><feature_ext>`, "
                             "an array (T, C)")
    feature_ext: str = _doc(".npy", "feature file ending: `.npy` (the array itself) or `.npz` (the array under key "
                                    "`feats`)")
    feature_prefix: str = _doc("", "text before the video id in each feature file's name (ActionFormer's "
                                   "file_prefix: `v_` for its ActivityNet features); a file of detect or stream "
                                   "named so is the video after it")
    feature_dim: int = _doc(1408, "C, the size of one feature vector; the model's input size follows it")
    stride: int = _doc(4, "video frames between the starts of consecutive feature windows")
    window: int = _doc(16, "video frames per feature window; row t stands for its centre, (t*stride + window/2)/fps s")
    fps: float | None = _doc(None, "frame rate of the videos the features come from (also the fps of an annotations "
                                   "entry without one); null: each video's fps from the annotations (or the feature "
                                   "sidecar)")
    train_split: str = _doc("train", "annotations subset to train on (`training`, `Validation`, `testing` are read as "
                                     "train, val, test)")
    val_split: str = _doc("val", "subset validated on during training: picks the best checkpoint and tunes the F1 "
                                 "score threshold; '' trains without validation (the last epoch and "
                                 "`postprocess.score_threshold` are kept)")
    test_split: str = _doc("test", "held-out subset for final scores (`mgrec demo` scores it; `mgrec evaluate --split` "
                                   "names one)")
    max_seq_len: int = _doc(2304, "training crop length in feature steps; divisible by the largest pyramid stride "
                                  "2**(num_levels-1)")
    crop_keep_fraction: float = _doc(0.5, "a training crop must keep at least this fraction of some instance's length")
    drop_bad_videos: bool = _doc(False, "train anyway when `mgrec data check` finds errors, leaving those videos out")
    streams: list[StreamConfig] = _doc([], "several input streams per video (RGB, skeleton, ...), each "
                                           "{name, features, feature_dim, stride, window}: resampled onto one grid "
                                           "and joined by model.fusion; empty: the one stream of data.features")
    grid_stream: str = _doc("", "the stream whose feature grid all streams are resampled onto (and whose "
                                "stride/window data.stride/window become); empty: the first stream")
    normalize: str = _doc("none", "`video`: each video's features standardised per channel by the video's own mean "
                                  "and std over time before the network (a stream: by the steps received so far; "
                                  "`mgrec.data.normalize`); `none`: as read")
    videos: str = _doc("", "end-to-end training: folder of the raw videos (`<video_id>.mp4` or SMG's "
                           "`<video_id>_color.mp4`), decoded on the fly through `backbone`; one of data.features, "
                           "data.streams and data.videos per config")

    def __post_init__(self) -> None:
        # Split names follow the annotations' subset names, so `val_split: Validation` finds subset "validation".
        for name in ("train_split", "val_split", "test_split"):
            value = getattr(self, name)
            if isinstance(value, str):  # a wrong type is reported by `from_dict`, naming the file and key
                setattr(self, name, canonical_subset(value))

    def grid(self, video_fps: float | None) -> FeatureGrid:
        """The feature grid of a video: `data.fps` when set, else the video's own fps (annotations or sidecar).

        The grid every stream is resampled onto (each stream's own grid: `StreamConfig.grid`)."""
        fps = self.fps if self.fps is not None else video_fps
        if fps is None:
            raise InputError("the features' fps is unknown: set data.fps, or give the video's fps "
                             "(annotations, a sidecar .json next to the features, --fps; fps= in Python)")
        return FeatureGrid(fps=fps, stride=self.stride, window=self.window)

    def input_streams(self) -> list[StreamConfig]:
        """The streams the model reads, in the order their channels are joined: the grid stream first
        (gated fusion's main stream), then the others as listed; without `streams`, the one stream of
        `features` (named "features")."""
        if not self.streams:
            return [StreamConfig(name="features", features=self.features, feature_ext=self.feature_ext,
                                 feature_prefix=self.feature_prefix, feature_dim=self.feature_dim, stride=self.stride,
                                 window=self.window, fps=self.fps)]
        main = self.main_stream()
        return [main, *(s for s in self.streams if s is not main)]

    def main_stream(self) -> StreamConfig:
        """The grid stream: the one named by `grid_stream`, else the first (one stream: `features`)."""
        if not self.streams:
            return self.input_streams()[0]
        named = [s for s in self.streams if s.name == self.grid_stream]
        return named[0] if named else self.streams[0]


@dataclass
class ModelConfig(_KeysOnly):
    variant: str = _doc("mgrec", "the detector: mgrec (DynE encoder, spatial-temporal attention head), dyfadet (DynE "
                                 "encoder, DFA head) or actionformer (local self-attention encoder, conv head)")
    input_dim: int | None = _doc(None, "derived from data.feature_dim: leave it out (a different value is refused)")
    num_classes: int = _doc(17, "K, the number of classes (the annotations' class list)")
    fusion: str = _doc("concat", "how several data.streams are joined: concat (one embedding of all channels), "
                                 "sum (one embedding per stream, added), gated (each stream its own embedding, all "
                                 "through the same encoder layers; the other streams join the grid stream's at its "
                                 "input and at every pyramid level through learned gates)")
    stream_dims: list[int] = _doc([], "derived from data.streams (each stream's feature_dim, in order): leave it out")
    embed_dim: int = _doc(512, "channels of the embedding and of every pyramid level")
    mlp_dim: int = _doc(768, "hidden channels of the DynE layers' feed-forward MLP (mgrec, dyfadet)")
    head_dim: int = _doc(512, "channels of the head's layers")
    num_levels: int = _doc(6, "pyramid levels; level l has stride 2**l feature steps")
    stem_layers: int = _doc(2, "encoder layers at stride 1, between the embedding and the downsampling layers")
    window_size: int = _doc(1, "DynE window w of the downsampling layers (odd)")
    kernel_expansion: float = _doc(5.0, "DynE expansion k: the multi-kernel conv has size round((w+1)*k), made odd")
    head_kernel: int = _doc(3, "kernel size of the head's convs and DFA convs (odd)")
    head_layers: int = _doc(3, "layers per head tower counting the final predictor: head_layers-1 conv/DFA layers "
                               "before it")
    drop_path: float = _doc(0.1, "stochastic-depth (drop-path) rate of the encoder's residual branches")
    init_conv_std: float = _doc(0.02, "std of the DynE convs' initial weights; the released 0 leaves those convs dead")
    gate_tau: float = _doc(1.5, "offset tau of the GeReTanH gate of the DFA convs (mgrec, dyfadet)")
    attention_mlp_ratio: int = _doc(16, "channel reduction of the spatial-temporal attention's MLP (mgrec)")
    attention_kernel: int = _doc(7, "temporal kernel of the spatial-temporal attention (paper Eq. 5; odd; mgrec)")
    transformer_heads: int = _doc(4, "self-attention heads (actionformer); must divide embed_dim")
    transformer_window: int = _doc(19, "local self-attention window in feature steps (actionformer; odd)")
    cls_prior: float = _doc(0.01, "class probability the classifier starts from (its bias initialisation)")
    regression_ranges: list[list[float]] = _doc(
        [[0, 4], [4, 8], [8, 16], [16, 32], [32, 64], [64, 10000]],
        "per level [low, high]: its points learn the instances whose farther end lies this many feature steps away",
    )


@dataclass
class TrainConfig(_KeysOnly):
    epochs: int = _doc(40, "training epochs, warm-up included")
    warmup_epochs: int = _doc(5, "epochs of linear learning-rate warm-up from 0; then cosine decay to lr x "
                                 "final_lr_fraction")
    final_lr_fraction: float = _doc(0.0, "where the cosine decay ends, as a fraction of lr (0: at 0, as ActionFormer); "
                                         "with a longer weights' average (ema_warmup) a floor above 0 averages weights "
                                         "that still move, as stochastic weight averaging does")
    batch_size: int = _doc(2, "training crops per optimisation step")
    lr: float = _doc(1e-4, "peak AdamW learning rate")
    weight_decay: float = _doc(0.025, "AdamW weight decay, on conv kernels and linear matrices only")
    clip_grad: float = _doc(1.0, "clip the gradient's L2 norm to this; 0: no clipping")
    ema_decay: float = _doc(0.999, "decay of the weights' moving average (validated, saved and used to detect); "
                                   "warm-up: min(decay, (1+t)/(1+ema_warmup+t)) at step t")
    ema_warmup: float = _doc(9.0, "gamma of the moving average's warm-up: until step t = gamma/(1-ema_decay) the "
                                  "average weights step k about as k**(gamma-1), i.e. it holds about the last "
                                  "1/(gamma+1) of the steps so far; smaller: a longer average")
    center_radius: float = _doc(1.5, "centre sampling: a point is positive only within center_radius x its level's "
                                      "stride of an instance's centre")
    focal_alpha: float = _doc(0.25, "alpha of the sigmoid focal classification loss")
    focal_gamma: float = _doc(2.0, "gamma of the sigmoid focal classification loss")
    label_smoothing: float = _doc(0.0, "label smoothing of the classification targets; 0: off")
    init_loss_norm: float = _doc(100.0, "start of the loss normaliser, a moving average of the positive points' count")
    reg_loss_weight: float = _doc(1.0, "weight of the DIoU regression loss, added to the focal loss")
    crops_per_video: int = _doc(4, "random crops drawn per training video per epoch (videos are long)")
    eval_every: int = _doc(5, "epochs between validation runs (the last epoch is always validated)")
    select_metric: str = _doc("f1", "validation metric that picks the best checkpoint: f1 or average_mAP")
    select_checkpoint: str = _doc("best", "the weights a run keeps as its result (checkpoints/best): best (the "
                                          "validated epoch with the highest select_metric, ties going to the "
                                          "higher of the other of F1 and average mAP) or last (the last epoch, as "
                                          "ActionFormer does); either way the threshold is tuned on val")
    device: str = _doc("auto", "auto (CUDA when there is one), cpu, cuda or cuda:N")
    precision: str = _doc("auto", "auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16")
    compile: bool = _doc(False, "run the training steps through the compiled network (torch.compile, inductor; needs "
                                "g++ on CPU): pays off for long runs of large crops (SMG scale on a 2-core Xeon: a "
                                "step 0.8x the eager one, 0.61x with precision bf16, after 2-3 min of compiling, "
                                "about 20 s once inductor's cache holds it), not for the demo's small ones; "
                                "validation and detection stay eager")


BALANCE_METHODS = ("none", "eq1", "repeat_factor", "adaptive")
# data.normalize: features as read, or each video standardised by its own statistics (mgrec.data.normalize)
NORMALIZE_MODES = ("none", "video")
THRESHOLD_RULES = ("global", "per_class")  # postprocess.thresholds


@dataclass
class BalanceConfig(_KeysOnly):
    method: str = _doc("none", "how training crops favour rare classes: none; eq1 (the paper's Eq. 1: a class with "
                               "Z < alpha instances anchors ceil(log2(alpha/Z))+1 times as many crops); repeat_factor "
                               "(LVIS: max(1, sqrt(t/f)) for a class holding a share f of the instances); adaptive "
                               "(each epoch: rarity x how hard the class is on the training crops, no threshold)")
    alpha: int | None = _doc(None, "eq1's alpha >= 1 (classes with fewer instances are rare); only with method eq1 "
                                   "(`data.augment_alpha` of older configs is read into method and alpha)")
    repeat_threshold: float = _doc(0.1, "repeat_factor's t: classes holding a share of the training instances "
                                        "below t are repeated")
    difficulty_momentum: float = _doc(0.5, "adaptive: weight of the previous epochs in the moving average of each "
                                           "class's difficulty (its mean missed probability on positive points)")


@dataclass
class TransformsConfig(_KeysOnly):
    time_scale_prob: float = _doc(0.0, "probability that a training crop is resampled in time (features linearly "
                                       "interpolated, boundaries moved exactly)")
    time_scale_range: list[float] = _doc([0.8, 1.25], "[low, high] resampling factor, drawn log-uniformly; > 1 "
                                                      "stretches (slower motion)")
    noise_prob: float = _doc(0.0, "probability that a crop gets Gaussian feature noise")
    noise_std: float = _doc(0.0, "std of that noise, in units of each channel's std over the training features "
                                 "(`train.input_noise` of older configs is read into it, with noise_prob 1)")
    channel_dropout_prob: float = _doc(0.0, "probability that a crop has feature channels zeroed")
    channel_dropout_rate: float = _doc(0.1, "fraction of channels zeroed in such a crop (the rest scaled by "
                                            "1/(1-rate))")
    paste_prob: float = _doc(0.0, "probability that a crop gets one labelled instance of another training video "
                                  "pasted into a background stretch (rare classes drawn first)")
    paste_context: int = _doc(2, "feature steps of context cut with a pasted instance on each side")


@dataclass
class PseudoLabelConfig(_KeysOnly):
    unlabeled: str = _doc("", "folder of feature files without annotations to pseudo-label (`mgrec train "
                              "--unlabeled`); empty: no pseudo-labels")
    teacher: str = _doc("", "a trained run that labels them first; empty: training trains one (the same config "
                            "without pseudo-labels) into RUN/teacher")
    rounds: int = _doc(1, "student trainings; each but the last labels the pool anew for the next")
    min_score: float | None = _doc(None, "detections kept as pseudo-labels score at least this; null: the labelling "
                                         "run's F1 score threshold tuned on val")
    transductive: bool = _doc(False, "true when the pool holds the test subjects' own videos (labels never read): "
                                     "the report says so")


@dataclass
class PostprocessConfig(_KeysOnly):
    pre_nms_thresh: float = _doc(0.001, "a (point, class) pair is a candidate when its probability is above this")
    pre_nms_topk: int = _doc(2000, "candidates kept per pyramid level before NMS, the most probable")
    nms: str = _doc("soft", "class-wise NMS: soft (Gaussian Soft-NMS) or hard")
    iou_threshold: float = _doc(0.5, "hard NMS: a candidate overlapping a kept one of its class by a tIoU above this "
                                     "is dropped")
    sigma: float = _doc(0.5, "Gaussian Soft-NMS: scores decay by exp(-tIoU**2 / sigma)")
    min_score: float = _doc(0.001, "Soft-NMS drops candidates whose decayed score falls below this")
    voting: float = _doc(0.0, "boundary voting after NMS: each detection kept takes the score-weighted mean of the "
                              "ends of its class's candidates that overlap it by a tIoU of at least this "
                              "(ActionFormer's voting_thresh, 0.7 on THUMOS); ranks and scores unchanged; 0: off")
    max_detections: int = _doc(2000, "detections kept per video after NMS (the ranked list), and more where the "
                                     "hard set (score >= the threshold) goes on past it")
    min_duration: float = _doc(0.05, "candidates not longer than this many feature steps are dropped")
    score_threshold: float = _doc(0.3, "the hard set (F1) keeps detections scoring at least this; training replaces "
                                       "it with the value tuned on val")
    thresholds: str = _doc("global", "what training tunes on val for the hard set: global (one score threshold) or "
                                     "per_class (one per class as well, in class_thresholds)")
    threshold_shrinkage: float = _doc(10.0, "per_class: a class's threshold is pulled toward the global one, (n t_c "
                                            "+ k t) / (n + k), n its val instances and k this")
    class_thresholds: list[float] | None = _doc(None, "one score threshold per class (by label id) for the hard set "
                                                      "instead of score_threshold; training with thresholds: per_class "
                                                      "replaces it with the values tuned on val; null: score_threshold")
    shifted_passes: int = _doc(1, "offline detection (and validation) runs the network this many times, on the "
                                  "features from step 0, 1, ... on, and fuses the passes' detections as `mgrec "
                                  "ensemble --fusion detections` does (the pyramid's stride-2 levels see another "
                                  "phase each time); 1: one pass. Streaming always makes one")
    second_opinion: float = _doc(0.0, "weight w of a whole-gesture classifier's opinion on each detection's class "
                                      "(`mgrec.postprocess.second_opinion`, fitted on the train split's gestures "
                                      "before training): a score s becomes s**(1-w) * p**w; 0: off")


ADAPTER_BLOCKS_NAMED = ("all", "every_other")


@dataclass
class BackboneConfig(_KeysOnly):
    """The frozen video backbone with trainable adapters of end-to-end training (`data.videos`)."""

    weights: str = _doc("", "folder of a transformers VideoMAE (config.json + model.safetensors, e.g. from `mgrec "
                            "convert-videomae`); its hidden size must be data.feature_dim")
    random_init: bool = _doc(False, "allow a folder with config.json only: random backbone weights from `seed` "
                                    "(shape and speed tests; the run records it and warns)")
    image_size: int = _doc(160, "frames are resized to this square size (the position table follows it)")
    frames_per_clip: int = _doc(16, "frames sampled evenly from each data.window frames into one backbone clip (a "
                                    "multiple of the backbone's tubelet size, at most data.window)")
    adapter: str = _doc("temporal", "adapter kind: temporal (depthwise temporal conv in a bottleneck) or "
                                    "spatial_temporal (plus a depthwise spatial conv, the branches added)")
    adapter_blocks: str = _doc("every_other", "encoder layers followed by an adapter: all, every_other (1, 3, 5, "
                                              "...) or indices such as '0,4,8'")
    adapter_ratio: float = _doc(0.25, "adapter bottleneck channels as a share of the backbone's")
    adapter_kernel: int = _doc(3, "adapter conv kernel size (odd)")
    checkpointing: bool = _doc(True, "recompute the backbone's layers in the backward pass (activation "
                                     "checkpointing): far less memory, about a third more compute")
    clip_batch: int = _doc(16, "clips per forward pass when a whole video goes through the backbone (validation, "
                               "detection, extraction)")

    def block_list(self) -> tuple[int, ...] | str:
        """`adapter_blocks` as `AdapterConfig.blocks` takes it: a named choice or a tuple of indices."""
        text = self.adapter_blocks.strip()
        if text in ADAPTER_BLOCKS_NAMED:
            return text
        try:
            return tuple(int(part) for part in text.split(","))
        except ValueError:
            raise InputError(f"backbone.adapter_blocks: {brief(self.adapter_blocks)}; expected "
                             f"{' or '.join(ADAPTER_BLOCKS_NAMED)} or layer indices such as '1,3,5'") from None


@dataclass
class Config(_KeysOnly):
    name: str = _doc("mgrec", "the experiment's name, in the run's report title")
    seed: int = _doc(1234, "one seed for Python, NumPy and torch")
    data: DataConfig = _section(DataConfig, "the features, the annotations and the training crops")
    model: ModelConfig = _section(ModelConfig, "the network")
    train: TrainConfig = _section(TrainConfig, "optimisation, losses, validation")
    balance: BalanceConfig = _section(BalanceConfig, "class balancing: how often each class anchors a training crop")
    transforms: TransformsConfig = _section(TransformsConfig, "random transforms of the training crops")
    pseudo_labels: PseudoLabelConfig = _section(PseudoLabelConfig, "training on unlabelled videos labelled by a "
                                                                   "trained run")
    postprocess: PostprocessConfig = _section(PostprocessConfig, "from network outputs to detections: decoding, NMS, "
                                                                 "the hard set")
    backbone: BackboneConfig = _section(BackboneConfig, "end-to-end training (data.videos): the frozen VideoMAE and "
                                                        "its trainable adapters")

    @property
    def end_to_end(self) -> bool:
        """Trained from raw video through the adapted backbone (`data.videos`), not on feature files."""
        return bool(self.data.videos)

    def __post_init__(self) -> None:
        derive_from_streams(self)
        # The model reads the features as they are: its input size is the features' size, stated once.
        if self.model.input_dim is None:
            self.model.input_dim = self.data.feature_dim


def derive_from_streams(config: Config) -> None:
    """With `data.streams`: the data keys of `DERIVED_FROM_STREAMS` become the grid stream's (the
    streams are resampled onto its grid), data.feature_dim the streams' total and model.stream_dims
    each stream's; without: model.stream_dims is [data.feature_dim]. The one place these follow."""
    data = config.data
    if data.streams:
        main = data.main_stream()
        data.features, data.feature_ext, data.feature_prefix, data.stride, data.window, data.fps = (
            "", main.feature_ext, main.feature_prefix, main.stride, main.window, main.fps)
        data.feature_dim = sum(s.feature_dim for s in data.streams)
    config.model.stream_dims = [s.feature_dim for s in data.input_streams()]


MODEL_VARIANTS = ("mgrec", "dyfadet", "actionformer")
# The model keys only some variants read (`model.encoders.build_tower`, `model.heads`); every other key is read by all.
VARIANTS_READING = {
    "mlp_dim": ("mgrec", "dyfadet"),
    "window_size": ("mgrec", "dyfadet"),
    "kernel_expansion": ("mgrec", "dyfadet"),
    "init_conv_std": ("mgrec", "dyfadet"),
    "gate_tau": ("mgrec", "dyfadet"),
    "attention_mlp_ratio": ("mgrec",),
    "attention_kernel": ("mgrec",),
    "transformer_heads": ("actionformer",),
    "transformer_window": ("actionformer",),
}
MAX_LEVELS = 16
# The longest stretch of features held at once (a training crop, an online window): 2**20 steps is
# days of video at SMG's 7 steps/s; more is a typo or an attack, refused before anything is allocated.
MAX_STEPS = 2**20
MAX_SHIFTED_PASSES = 64  # each pass costs a whole detection; more is a typo
MAX_CONFIG_BYTES = 1_000_000  # a config is a few kB; anything larger is not one
MAX_BASE_DEPTH = 32
# Seeds: each epoch seeds torch with seed * 1000 + epoch, which must stay a signed 64-bit integer (torch
# refuses more: "Overflow when unpacking long long", once the run folder was written); below 2**31 it
# does for any epoch count, and every library takes it (numpy's legacy seeder asks < 2**32). Asked when
# training starts (`check_for_training`), not when a config is read: runs trained with a larger seed before
# the rule existed still load for detection, evaluation and reports.
MAX_SEED = 2**31 - 1
# Any whole number of a config: a signed 64-bit integer, which every setting fits many times over (torch takes no
# larger seed). Beyond it numbers only broke arithmetic: train.batch_size of 400 digits was an OverflowError
# traceback from the memory estimate, before the run started.
MAX_CONFIG_INT = 2**63 - 1
# Layers per tower (model.stem_layers, model.head_layers): the released detectors have 2 and 3. Layers are
# built one by one in Python before their memory can be judged, and 100000 of them took hours to build;
# 64 leaves every design of these detectors room.
MAX_LAYERS = 64
# model.kernel_expansion k: DynE's long kernel is round((window_size + 1) * k) steps, 5 as released (a
# 10-step kernel at window 1). k = 64 already spans more steps than the coarser pyramid levels hold; more
# is a typo (1e9 asked for a 2e9-step kernel per channel and died in the allocator).
MAX_KERNEL_EXPANSION = 64
# The DFA convs' gate divides by 1 + tanh(gate_tau), which vanishes as gate_tau falls: in float32 the gate is off
# by 3e-4 at -4 against float64, by 1 % at -6, by 59 % at -8, wholly lost from -10 (0 everywhere), and
# `math.tanh` gives exactly -1 from about -19 (a ZeroDivisionError at -100). DyFADet's value is 1.5.
MIN_GATE_TAU = -4.0
# Training crops per video and epoch: every epoch's crops are drawn up front, as Python objects (about
# 100 bytes each), and an epoch is crops_per_video x videos / batch_size steps. The shipped configs draw
# 2-64; 10000 is an epoch of days on SMG, while 1e9 asked for 100 GB per video before the first step.
MAX_CROPS_PER_VIDEO = 10_000
PRECISIONS = ("auto", "fp32", "bf16")  # see mgrec.devices.autocast_dtype


def find_config(name: str | Path) -> Path:
    """A config argument -> its file: the file itself when it exists, else the config of that name
    shipped in the package (package data `mgrec/configs`, found through importlib.resources, so a
    source checkout and an installed wheel reach the same files): `demo/mgrec.yaml`, `demo/mgrec`
    or `configs/demo/mgrec.yaml`. Otherwise the path unchanged (reading it says it does not exist)."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    return shipped_config(path) or path


def _shipped_root() -> Path:
    """The folder of the configs shipped with mgrec (package data, through importlib.resources)."""
    from importlib import resources

    return Path(str(resources.files("mgrec") / "configs")).resolve()


def _shipped_name(name: str | Path) -> str:
    """A config argument as a shipped config's name: `demo/mgrec`, `configs/demo/mgrec.yaml` -> `demo/mgrec.yaml`."""
    text = Path(name).as_posix().replace("\\", "/").removeprefix("configs/")
    return text if text.endswith((".yaml", ".yml")) else text + ".yaml"


def shipped_config(name: str | Path) -> Path | None:
    """The config of that name shipped with mgrec (`demo/mgrec.yaml`, `demo/mgrec`, `configs/demo/mgrec.yaml`), or
    None."""
    shipped = _shipped_root()
    candidate = resolve_path(shipped / _shipped_name(name))
    return candidate if candidate.is_relative_to(shipped) and candidate.is_file() else None


def shipped_config_names() -> list[str]:
    """The configs shipped with mgrec, by the names a config argument takes (`demo/default.yaml`, ...)."""
    shipped = _shipped_root()
    return sorted(file.relative_to(shipped).as_posix() for file in shipped.rglob("*.yaml"))


def _refuse_a_missing_config_or_a_folder(path: Path) -> None:
    """A config argument that names no file: a folder (a run's, whose config.yaml it names, or another), or nothing
    (a misspelt shipped name gets the names nearest to it)."""
    if path.is_dir():
        inside = path / "config.yaml"
        hint = (f"; the config of the run it holds is {inside} (`mgrec train {shell_word(inside)} --out NEW_RUN` "
                "trains it again)" if inside.is_file() else "")
        raise InputError(f"cannot read config {path}: a folder, where a config file (.yaml) was expected{hint}")
    if not path.exists() and not path.is_symlink() and descriptor_named(path) is None:
        raise InputError(f"cannot read config {path}: no such file, nor a config shipped with mgrec by that name "
                         f"({_shipped_hint(path)})")


def _shipped_hint(name: str | Path) -> str:
    """What a config name that names nothing may have meant: the shipped configs nearest to it, else a few shipped."""
    near = _near_shipped_names(name)
    return f"did you mean {' or '.join(near)}?" if near else f"shipped are {', '.join(shipped_config_names()[:3])}, ..."


def _near_shipped_names(name: str | Path) -> list[str]:
    """The shipped configs a name that is none may have meant: the one its path ends in after a `configs/` folder
    (`src/mgrec/configs/smg/mgrec.yaml`, the source tree's path, from another folder or an installed mgrec), else
    the names nearest to it (a misspelling)."""
    names = shipped_config_names()
    text = Path(name).as_posix().replace("\\", "/")
    tail = _shipped_name(text.rsplit("/configs/", 1)[1] if "/configs/" in text else text)
    return [tail] if tail in names else difflib.get_close_matches(tail, names, n=3, cutoff=0.8)


def load_config(path: str | Path, overrides: Iterable[str] | None = None) -> Config:
    """Read a YAML config (a file, or a config shipped with mgrec by name: see `find_config`; with an
    optional `base:` file to inherit from) and apply `overrides`: 'key=value' strings, as `--set` takes them (a
    list, or any iterable of them; a single str is refused)."""
    overrides = _override_list(overrides)
    path = find_config(path_argument(path, "load_config: path"))
    _refuse_a_missing_config_or_a_folder(path)
    raw = _read_yaml_with_base(path, seen=())
    refuse_a_foreign_config(raw, str(path))
    overridden: dict = {}
    for item in overrides:
        _apply_override(overridden, item)
    _check_overrides(overridden)
    origins = _override_origins(overrides)
    as_given = _override_origins(overrides, upgrade=False)  # the keys of older names, as the items name them
    if _sets_streams(overridden):
        _forget_one_stream_keys(raw, keep=overridden.get("data", {}))
    for item in overrides:
        _apply_upgraded_override(raw, item, str(path), as_given)
    config = from_dict(Config, raw, source=str(path))
    _expand_home(config)
    check_stream_keys(raw, config, source=str(path), origins=origins)
    validate(config, source=str(path), origins=origins)
    config._origins = (str(path), origins)  # for the rules asked later, by training (`check_for_training`)
    return config


def data_locations(overrides: object, command: str, keys: Sequence[str]) -> dict[str, str]:
    """{key: path} of `--set` items that give a run's data another place for one command (`mgrec evaluate`): read as
    `load_config` reads them (the same `key=value` form, YAML values, `~` as the home folder), each of `keys` and a
    path. The run's config.yaml is not touched: a run copied or finished, with nothing to resume, could only be
    pointed at moved data by editing it."""
    raw: dict = {}
    for item in _override_list(overrides):
        _apply_override(raw, item)
    given = flat_keys(raw)
    for key, value in given.items():
        if key not in keys:
            raise InputError(f"--set {key}: {command} takes only where the run's data lies ({', '.join(keys)}), for "
                             "this call; the run's other settings are those it was trained with")
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"--set {key}={brief(value)}: expected a path")
    return {key: os.path.expanduser(value) if value.startswith("~") else value for key, value in given.items()}


def _override_list(overrides: object) -> list[str]:
    """`load_config`'s overrides as a list, read once: its loops each go over them (a generator was applied by the
    first, a check, and dropped by the one that sets the config), and each a 'key=value' str."""
    if overrides is None:
        return []
    items = listed(overrides, "overrides", "a list of 'key=value' strings")
    stranger = next((index for index, item in enumerate(items) if not isinstance(item, str)), None)
    if stranger is not None:
        raise InputError(f"overrides[{stranger}]: expected a 'key=value' string, got {brief(items[stranger])}")
    return items


def _expand_home(config: Config) -> None:
    """`~/...` in a path key read as the home folder, as a shell reads it: in `--set data.annotations=~/a.json` the
    shell leaves the ~ as it is (it expands one only at a word's start or after the = of a shell variable), and a
    YAML file never had one expanded."""
    def expand(value):
        return os.path.expanduser(value) if isinstance(value, str) and value.startswith("~") else value

    data = config.data
    data.annotations, data.features, data.videos = expand(data.annotations), expand(data.features), expand(data.videos)
    for stream in data.streams or []:
        stream.features = expand(stream.features)
    config.backbone.weights = expand(config.backbone.weights)
    config.pseudo_labels.unlabeled = expand(config.pseudo_labels.unlabeled)
    config.pseudo_labels.teacher = expand(config.pseudo_labels.teacher)


# Top-level sections of ActionFormer's and DyFADet's YAML configs that mgrec's have not.
_ACTIONFORMER_SECTIONS = ("dataset_name", "dataset", "opt", "loader", "train_cfg", "test_cfg")


def refuse_a_foreign_config(raw: Any, source: str) -> None:
    """An ActionFormer or DyFADet YAML config given as mgrec's: refused at once, each of its keys that mgrec has
    named with mgrec's key (`config_reference.KEY_MAPPING`), instead of one "unknown key" at a time."""
    found = [name for name in _ACTIONFORMER_SECTIONS if isinstance(raw, dict) and name in raw]
    if not found:
        return
    from mgrec.config_reference import KEY_MAPPING  # beside the table docs/config.md prints

    given = {f"{section}.{key}" for section, values in raw.items() if isinstance(values, dict) for key in values}
    given |= {str(key) for key, values in raw.items() if not isinstance(values, dict)}
    pairs = []
    for theirs, _, ours, _ in KEY_MAPPING:
        names = [name.split(" (")[0].strip() for name in theirs.split(",") if name.strip()]
        targets = [key.strip() for key in ours.split(",")]
        for index, name in enumerate(names):
            qualified = name if "." in name or name in given else f"model.{name}"
            if ours and qualified in given:  # `train_split, val_split` -> their own keys, one each
                pairs.append(f"{qualified} -> {targets[index] if 1 < len(names) <= len(targets) else ours}")
    raise InputError(f"{source}: an ActionFormer / DyFADet config (sections {', '.join(found)}), not mgrec's; its "
                     f"keys map to mgrec's as docs/config.md's table 'ActionFormer / OpenTAD -> mgrec' says"
                     + (f": {'; '.join(pairs)}" if pairs else "") + ". Write an mgrec config with those keys "
                     "(mgrec data check CONFIG then suggests the data's settings)")


def flat_keys(node: dict, prefix: str = "") -> dict:
    """A config's dict (`to_dict`) as {dotted key: value}: `data.streams` as its count of entries and each stream's
    keys by index (`data.streams[1].features`), so two configs compare key by key."""
    items = {}
    for key, value in node.items():
        if isinstance(value, dict):
            items.update(flat_keys(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            items[f"{prefix}{key}"] = f"{len(value)} entries"
            for index, item in enumerate(value):
                items.update(flat_keys(item, f"{prefix}{key}[{index}]."))
        else:
            items[f"{prefix}{key}"] = value
    return items


# The settings a trained network reads its inputs and computes by. The rest (where the data lies, the splits, training,
# post-processing, which the threshold's own record covers) may differ between a checkpoint's config and config.yaml;
# so may data.fps (null and the rate the sidecars give read the same; a rate the features contradict is refused by
# the recipe's checks).
NETWORK_SETTINGS = re.compile(r"model\..*|data\.(feature_dim|stride|window|normalize|grid_stream|streams)"
                              r"|data\.streams\[\d+\]\.(?!features$).*|backbone\.(?!weights$).*")


def network_settings_changed(trained: Config, now: Config) -> list[tuple[str, Any, Any]]:
    """(key, value now, value when trained) of each `NETWORK_SETTINGS` key whose value differs."""
    then, current = flat_keys(to_dict(trained)), flat_keys(to_dict(now))
    return [(key, current.get(key), then.get(key)) for key in sorted(set(then) | set(current))
            if NETWORK_SETTINGS.fullmatch(key) and then.get(key) != current.get(key)]


def config_from_record(raw: dict, source: str) -> Config:
    """A config recorded as a plain dict (`to_dict`, e.g. in a training state) read back as a config file is:
    keys of older names read into their new ones, keys added since at their defaults."""
    raw = copy.deepcopy(raw)
    _read_old_names(raw, source)
    return from_dict(Config, raw, source=source)


def keys_the_variant_ignores(config: Config) -> list[tuple[str, str]]:
    """(where, why) of each `--set` item that sets a model key `model.variant` does not read (`VARIANTS_READING`):
    `--set model.transformer_heads=8` on the mgrec variant changed nothing, without a word. A config file's keys are
    left out: a saved config holds every key, and a shared base serves every variant."""
    source, origins = getattr(config, "_origins", ("config", None))
    variant = config.model.variant
    return [(_at(source, f"model.{key}", origins),
             f"model.variant {variant} does not read it (only {' and '.join(readers)} "
             f"do{'es' if len(readers) == 1 else ''}): it changes nothing")
            for key, readers in VARIANTS_READING.items()
            if variant not in readers and origins is not None and f"model.{key}" in origins]


def key_origin(config: Config, key: str) -> str:
    """Where `key` of `config` came from, for a message: as `load_config` read it (`c.yaml [seed]`, or
    `--set seed=5 [seed]`), else `config [seed]` (a config built in code)."""
    source, origins = getattr(config, "_origins", ("config", None))
    return _at(source, key, origins)


def _override_origins(overrides: list[str], upgrade: bool = True) -> dict[str, str]:
    """Dotted key -> the `--set` item that gave it its value (the last that did; keys that old names are
    read into included, unless not `upgrade`: then the old names), so that a value out of range is blamed on
    the `--set`, not on the config file."""
    origins: dict[str, str] = {}
    for item in overrides:
        one: dict = {}
        _apply_override(one, item)
        if upgrade:
            _upgrade_renamed_keys(one, "--set")
            _upgrade_moved_keys(one, "--set")
        for key in _leaf_keys(one):
            for inner in [k for k in origins if k.startswith((f"{key}.", f"{key}["))]:
                del origins[inner]  # a later item that sets a whole section sets what it holds too
            origins[key] = item
    return origins


def key_set_twice(overrides: Iterable[str]) -> str | None:
    """Where two `--set` items give one key other values (`--set train.lr=1e-3 ... --set train.lr=3e-4`, or a section's
    mapping and one of its keys: `--set 'train={lr: 1e-3}' --set train.lr=3e-4`), what to say of it; else None.
    The last won without a word, as argparse's other options did (the command line's `_StoreOnce`); the same
    value twice says nothing new. For the command line's own items: `load_config` takes a list whose later
    items override earlier ones (a seed of `train --seeds`, the demo's data paths laid under the user's)."""
    given: dict[str, tuple[str, Any]] = {}
    for item in _override_list(overrides):
        one: dict = {}
        try:
            _apply_override(one, item)
        except InputError:  # a malformed item is said by load_config, as it reads it
            continue
        pending = [("", one)]
        while pending:
            prefix, node = pending.pop()
            for key, value in node.items():
                dotted = f"{prefix}{key}"
                if isinstance(value, dict) and value:
                    pending.append((f"{dotted}.", value))
                    continue
                earlier = given.get(dotted)
                if earlier is not None and earlier[1] != value and repr(earlier[1]) != repr(value):  # nan twice
                    return f"{dotted} given twice (--set {brief(earlier[0])}, then --set {brief(item)}); give it once"
                given[dotted] = (item, value)
    return None


def _leaf_keys(raw: dict, prefix: str = "") -> list[str]:
    """Dotted keys of the values in `raw` (a list is one value; an empty section, which sets nothing, none)."""
    keys = []
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        keys += _leaf_keys(value, f"{dotted}.") if isinstance(value, dict) else [dotted]
    return keys


def _at(source: str, key: str, origins: dict[str, str] | None, also: tuple[str, ...] = ()) -> str:
    """Where the value of `key` came from, for a message: `--set ITEM [key]` when an override gave it (or
    the section or list holding it), else `source [key]`. `also`: the other keys a rule across fields reads
    (every such rule names them here); each that came from elsewhere is named first, so that a clash with a
    `--set` is never blamed on the file alone, and the message goes on from the key it is about:
    `--set balance.method=eq1 [balance.method] and c.yaml [balance.alpha]: expected a number >= 1`."""
    place = _place(source, key, origins)
    others = [f"{_place(source, other, origins)} [{other}]" for other in dict.fromkeys(also)
              if other != key and _place(source, other, origins) != place]
    return " and ".join([*others, f"{place} [{key}]"])


def _place(source: str, key: str, origins: dict[str, str] | None) -> str:
    """`--set ITEM` when an override gave `key` its value (or the section or list holding it), else `source`."""
    part = key
    while part and part not in (origins or {}):
        part = part[:max(part.rfind("."), part.rfind("["), 0)]
    if not part:
        return source
    item = origins[part]
    return f"--set {item if len(item) <= 80 else brief(item)}"


def check_stream_keys(raw: dict, config: Config, source: str, origins: dict[str, str] | None = None) -> None:
    """Keys that `derive_from_streams` sets may be given (a saved config holds them) only with the value
    they follow: anything else would be silently replaced, so it is refused."""
    data, model = raw.get("data"), raw.get("model")
    given = [(f"data.{key}", data[key], getattr(config.data, key))
             for key in DERIVED_FROM_STREAMS if config.data.streams and isinstance(data, dict) and key in data]
    if isinstance(model, dict) and "stream_dims" in model:
        given.append(("model.stream_dims", model["stream_dims"], config.model.stream_dims))
    differing = [key for key, value, derived in given if value != derived]
    if differing and isinstance(model, dict) and model.get("input_dim") not in (None, config.data.feature_dim):
        differing.append("model.input_dim")  # `validate` refuses it alone; with the others, all are said at once
    for key, value, derived in given:
        if value != derived:
            if len(differing) > 1:  # a run's config.yaml, reused with another data.feature_dim
                raise InputError(f"{source}: {', '.join(differing)} differ from the values they follow (data.streams "
                                 "and data.feature_dim; a run's config.yaml writes them out): leave them out")
            grid = f"with data.streams it is that of the grid stream {config.data.main_stream().name!r}"
            if key.startswith("model."):
                because = "it follows data.streams"
            elif key == "data.feature_dim":
                because = "with data.streams it is the streams' total; set each stream's in its entry of data.streams"
            elif key in ("data.fps", "data.stride", "data.window"):  # the grid stream's places the grid
                because = f"{grid}; set it in that stream's entry of data.streams (each other stream's in its own)"
            else:
                because = f"{grid}; set it per stream, in each entry of data.streams"
            raise InputError(f"{_at(source, key, origins, also=('data.streams',))}: {brief(value)} differs from "
                             f"{brief(derived)}: leave it out, {because}")


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error (PyYAML keeps the last, so a
    second `train:` section would silently drop everything the first one said), and numbers are read as YAML
    1.2 reads them (`_INT`, `_FLOAT`)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        merges = [(key_node, value) for key_node, value in node.value if key_node.tag == "tag:yaml.org,2002:merge"]
        if len(merges) > 1:
            raise yaml.constructor.ConstructorError(
                None, None, "'<<' appears twice in one mapping; the second would silently replace the first "
                "(merge several with <<: [*a, *b])", merges[1][0].start_mark)
        if merges and isinstance(merges[0][1], yaml.SequenceNode):
            # which of several merged mappings wins a key they share differs between PyYAML's own code paths
            merged: dict = {}
            for mapping in merges[0][1].value:
                for key_node, _ in mapping.value if isinstance(mapping, yaml.MappingNode) else ():
                    key = self.construct_object(key_node, deep=True)
                    if isinstance(key, Hashable) and merged.setdefault(key, mapping) is not mapping:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} is given by two of the mappings merged here; YAML readers "
                            "disagree on which wins: set it in the mapping itself", key_node.start_mark)
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: its keys are defaults that the mapping's own keys may replace
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, f"a {type(key).__name__} as a key; config keys are names", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first at line {seen[key]}); the "
                    "second would silently replace the first", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# Numbers as YAML 1.2 reads them. PyYAML follows YAML 1.1, where `seed: 0123` is octal 83, `epochs: 1:30` is 90
# (base 60), `1_0` is 10 and `1e-3` is a string: a config meant none of these. Here a number is decimal digits
# (leading zeros kept decimal), 0o/0x, or a float with an optional exponent, .inf, .nan; anything else is a
# string, which the typed config then refuses by key.
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
# Digits a whole number may have as it is read: Python reads no more than 4300 decimal digits (a ValueError
# traceback) and prints none longer, which a 5000-digit hexadecimal number it reads is. Every setting has at
# most 19 (a signed 64-bit integer, `MAX_CONFIG_INT`); longer numbers than those, once read, are refused by key.
MAX_INT_DIGITS = 1000
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
_StrictLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+.0123456789"))


def _yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if _INT.match(text) is None:  # an explicit !!int tag on something else
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a whole number", node.start_mark)
    base = {"0o": 8, "0x": 16}.get(text[:2], 10)
    digits = text[2:] if base != 10 else text.lstrip("+-")
    if len(digits) > MAX_INT_DIGITS:  # Python refuses to read (or print) more than 4300 decimal digits: a traceback
        raise yaml.constructor.ConstructorError(
            None, None, f"a whole number of {len(digits)} digits; a setting has at most 19", node.start_mark)
    return int(digits if base != 10 else text, base)


def _yaml12_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = loader.construct_scalar(node)
    if _FLOAT.match(text) is None:  # an explicit !!float tag on something else
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a number", node.start_mark)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if lowered == ".nan" else float(text)


_StrictLoader.add_constructor(_INT_TAG, _yaml12_int)
_StrictLoader.add_constructor(_FLOAT_TAG, _yaml12_float)


# The values a config may expand to through YAML aliases (`&a` ... `*a`, `<<: *a`): a config holds a few hundred;
# a 20-kB file of aliases of aliases expanded to millions, hours and gigabytes before any key was checked.
MAX_YAML_VALUES = 100_000


class TooManyValues(yaml.YAMLError):
    pass


def load_yaml(text: str):
    """YAML as configs read it (`_StrictLoader`: YAML 1.2 numbers, no duplicate keys), after counting the values
    its aliases expand to (`MAX_YAML_VALUES`) on the composed node graph, which holds each aliased node once."""
    root = yaml.compose(text, Loader=_StrictLoader)
    seen, stack = 0, [] if root is None else [root]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise TooManyValues(f"its aliases (*name) expand to more than {MAX_YAML_VALUES} values; a config holds "
                                "a few hundred")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)
    return yaml.load(text, Loader=_StrictLoader)


def read_yaml_value(text: str):
    """One YAML value as configs read them (a `--set` value)."""
    return load_yaml(text)


def _read_yaml_with_base(path: Path, seen: tuple) -> dict:
    if resolve_path(path) in map(resolve_path, seen):
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise InputError(f"{chain}: these configs inherit from each other in a loop (their 'base' keys)")
    try:
        if descriptor_named(path) is None and (stat.S_ISFIFO(os.stat(path).st_mode)
                                               or stat.S_ISSOCK(os.stat(path).st_mode)):
            # opening a named pipe waits for a writer, which one nobody writes never gets: a hang (a descriptor this
            # process holds, /dev/stdin or <(...)'s /dev/fd/N, is open already and reads)
            raise InputError(f"{path}: is a named pipe or a socket, not a file; give the config file itself")
        with open(path, "rb") as handle:  # read to the limit, not stat'ed: a device (/dev/zero) has no size
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise InputError(f"{path}: more than {MAX_CONFIG_BYTES} bytes is not a config")
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror or exc}") from None
    text = decode_utf8(path, data)  # names the line of a byte that is not UTF-8
    try:
        raw = load_yaml(text) or {}
    except TooManyValues as exc:
        raise InputError(f"{path}: {exc}") from None
    except yaml.MarkedYAMLError as exc:  # where, then what: "config.yaml:6:1: not valid YAML: key 'train' ..."
        mark = exc.problem_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise InputError(f"{path}{at}: not valid YAML: {(exc.problem or exc.context or str(exc))[:300]}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {brief(str(exc), 300)}") from None
    except RecursionError:
        raise InputError(f"{path}: nests too deeply to be a config") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of sections (data, model, train, ...), got {type(raw).__name__}")
    base = raw.pop("base", None)
    # each file's keys of older names are read into their new ones before it is laid over its base, so that a
    # key it gives overrides its base's, whatever name either uses
    _read_old_names(raw, str(path))
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise InputError(f"{path} [base]: expected the path of the config to inherit from, got {brief(base)}")
    if len(seen) >= MAX_BASE_DEPTH:
        raise InputError(f"{path} [base]: more than {MAX_BASE_DEPTH} configs inherit from each other")
    try:  # a symbolic link loop is named with the config and key that lead to it
        beside = resolve_path(path.parent / Path(base).expanduser())
        # a file beside the config first (a shipped name's file too: `demo/actionformer.yaml` is `actionformer.yaml`
        # beside a copy of the shipped folder, whose edits count), else a config shipped with mgrec by name; never
        # one that happens to be in the current folder, which would load the same config differently elsewhere
        same_name = resolve_path(path.parent / Path(base).name)
        shipped = shipped_config(base)
        # (a file `fusion.yaml` with `base: demo/fusion.yaml` means the shipped one, not itself)
        same_name_there = shipped and same_name.is_file() and same_name != resolve_path(path)
        target = beside if beside.exists() else same_name if same_name_there else (shipped or beside)
        if not Path(target).exists():
            raise InputError(f"{base!r} is neither a file beside it ({beside}) nor a config shipped with mgrec "
                             f"({_shipped_hint(base)})")
        if Path(target).is_dir():
            raise InputError(f"{base!r} is a folder ({target}); expected a config file (a .yaml)")
        target = resolve_path(target)
    except InputError as exc:
        raise InputError(f"{path} [base]: {exc}") from None
    merged = _read_yaml_with_base(target, seen + (path,))
    if _sets_streams(raw):
        _forget_one_stream_keys(merged, keep=raw.get("data", {}))
    _deep_update(merged, raw)
    return merged


def _sets_streams(raw: dict) -> bool:
    return isinstance(raw.get("data"), dict) and bool(raw["data"].get("streams"))


def _forget_one_stream_keys(raw: dict, keep) -> None:
    """A config (or override) that sets data.streams replaces what its base said about the one stream of
    data.features: those keys follow the streams now (`derive_from_streams`), except where it sets them too."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in DERIVED_FROM_STREAMS:
            if key not in keep:
                data.pop(key, None)


def _deep_update(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _check_overrides(overridden: dict) -> None:
    """Unknown keys and values of the wrong type in `--set` are reported as `--set`'s, not the config file's."""
    overridden = copy.deepcopy(overridden)
    _read_old_names(overridden, "--set")
    from_dict(Config, overridden, source="--set")


def _names_a_list(parts: list[str]) -> bool:
    """Whether the dotted key `parts` is a list setting (data.streams, transforms.time_scale_range): a number after it
    is an index, not a key (a mapping's keys, as postprocess.class_thresholds' class names, may be numbers)."""
    node: Any = Config()
    for part in parts:
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            return False
        node = getattr(node, part)
    return isinstance(node, list)


def _apply_override(raw: dict, item: str) -> None:
    """`train.lr=3e-4` -> raw["train"]["lr"] = 3e-4 (value parsed as YAML)."""
    if "=" not in item:
        raise InputError(f"override {item!r}: expected key=value, e.g. train.lr=3e-4")
    key, text = item.split("=", 1)
    parts = key.strip().split(".")
    # messages name list items so (data.streams[0].stride), and a user may write data.streams.0.stride: --set cannot
    # reach into lists
    listed = next((index for index, part in enumerate(parts)
                   if "[" in part or (part.isdigit() and _names_a_list(parts[:index]))), None)
    if listed is not None:
        part = parts[listed]
        bracket = "[" in part
        whole = ".".join(parts[:listed] + ([part[: part.index("[")]] if bracket else []))
        said = part if bracket else ".".join(parts[max(0, listed - 1): listed + 1])
        raise InputError(f"--set {brief(item)}: {said} is an item of a list, which --set cannot change alone; give "
                         f"the whole list (--set '{whole}=[...]') or edit it in the config")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise InputError(f"override {item!r}: {part} is not a section")
    try:
        value = read_yaml_value(text)
    except TooManyValues as exc:
        raise InputError(f"--set {brief(item)}: {exc}") from None
    except RecursionError:
        raise InputError(f"--set {brief(item)}: nests too deeply to be a config value") from None
    except yaml.YAMLError as exc:
        if text.strip()[:1] in ("'", '"'):
            # a quoted value YAML cannot read was taken as the value, quotes and all: `--set
            # 'data.annotations="C:\data\a.json"'` (\d is no escape in double quotes) read the file '"C:\data\a.json"'
            problem = getattr(exc, "problem", None) or str(exc)
            raise InputError(f"--set {brief(item)}: its quoted value is not valid YAML ({brief(problem, 120)}): quote "
                             "the whole value once ('...' takes it as written, with '' for a '; \"...\" reads "
                             "backslash escapes, \\n, \\\\), or leave the quotes out") from None
        value = text
    if _holds_a_yaml_comment(text):
        # YAML reads ' #' as the start of a comment: `--set "name=run #3"` named the run 'run', and a folder
        # `--set "data.features=feats #2"` became 'feats', without a word. On a command line a # is part of the value.
        value = text.strip()
    elif value is not None and not isinstance(value, (str, list)) and _key_type(parts) is str:
        # a text key (a name, a folder, a split, layer indices) given a word YAML reads as something else: a folder
        # named by its date (`--set data.features=2026-12-07`) was refused as datetime.date(2026, 12, 7), `--set
        # name=0777` as 777, `--set backbone.adapter_blocks=3` as 3, `--set 'name=ablation: no paste'` as a mapping. On
        # a command line the text is the value.
        value = text.strip()
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        _deep_update(node[parts[-1]], value)  # a section's keys laid over the config's, as `base:` lays them
    else:
        node[parts[-1]] = value


def _key_type(parts: list[str]) -> Any:
    """The type of the config key `parts` (`["data", "features"]` -> str; Optional[X] -> X), or None where the parts
    name no key of `Config` (a typo, an old name, a list item: said by their own checks)."""
    node: Any = Config
    for part in parts:
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return None
        node = hints[part]
        if typing.get_origin(node) in (typing.Union, types.UnionType):
            inner = [option for option in typing.get_args(node) if option is not type(None)]
            node = inner[0] if len(inner) == 1 else None
    return node


def _holds_a_yaml_comment(text: str) -> bool:
    """Whether YAML reads a comment in `text`: a '#' at its start or after a space, outside quotes (between the
    tokens its scanner finds, or after the last)."""
    if "#" not in text:
        return False
    try:
        tokens = list(yaml.scan(text, Loader=_StrictLoader))
    except yaml.YAMLError:  # not YAML: the value is its text anyway
        return False
    end = 0
    for token in tokens:
        if "#" in text[end:token.start_mark.index]:
            return True
        end = max(end, token.end_mark.index)
    return "#" in text[end:]


def _apply_upgraded_override(raw: dict, item: str, source: str, origins: dict[str, str]) -> None:
    """A `--set` item laid over the config's keys (already read into their new names, file by file), as one
    more layer: an item of an older name is read into its new keys first, which it then sets, so that it
    overrides the config whatever name either uses."""
    section, _, rest = item.split("=", 1)[0].strip().partition(".")
    if (section, rest.split(".", 1)[0]) not in _OLD_NAMES:
        _apply_override(raw, item)  # as given: a mapping's keys laid over the config's
        return
    one: dict = {}
    _apply_override(one, item)
    _read_old_names(one, source, origins)
    for new_section, values in one.items():
        raw.setdefault(new_section, {}).update(values)


def _read_old_names(raw: dict, source: str, origins: dict[str, str] | None = None) -> None:
    """Keys of older names in `raw` (one config file, a `--set` item, a recorded config) read into their new ones;
    a removed key holding anything but its old default, or an old key beside its new one, refused."""
    _upgrade_renamed_keys(raw, source, origins)
    _upgrade_moved_keys(raw, source, origins)
    _drop_removed_keys(raw, source, origins)


# Keys of older configs (and of the config.yaml of older runs), each read into its one new key.
# Giving both the old and the new key is refused: two keys must never disagree.
_RENAMED_KEYS = {
    ("train", "bf16"): ("precision", lambda on: "auto" if on else "fp32"),  # bf16 was CUDA-only
}


# Keys that no longer exist. Old configs (and old runs' config.yaml) that hold the old default still
# load; any other value is refused, since it would silently do nothing.
_REMOVED_KEYS = {
    ("train", "num_workers"): (0, "batches are built in the training process from features held in memory"),
}


# Keys that moved to another section: (section, old key, new section, the new keys of a value).
_MOVED_KEYS = (
    ("data", "augment_alpha", "balance", lambda a: {"method": "eq1", "alpha": a}),
    # 0 was "no noise": said outright, so that it also turns off noise a config below it gave
    ("train", "input_noise", "transforms",
     lambda s: {"noise_std": s, "noise_prob": 1.0} if s else {"noise_prob": 0.0}),
)

# Every (section, key) of an older name.
_OLD_NAMES = {*_RENAMED_KEYS, *_REMOVED_KEYS, *((section, key) for section, key, *_ in _MOVED_KEYS)}


def _upgrade_moved_keys(raw: dict, source: str, origins: dict[str, str] | None = None) -> None:
    """Keys that moved to another section (and may set a second key there), read into their new home.

    `data.augment_alpha: A` -> `balance.method: eq1`, `balance.alpha: A` (null: nothing, balance is off
    by default); `train.input_noise: S` -> `transforms.noise_std: S`, `transforms.noise_prob: 1` (it was
    added to every crop). Giving the old key and the new section's keys is refused."""
    for section, old, new_section, convert in _MOVED_KEYS:
        values = raw.get(section)
        if not isinstance(values, dict) or old not in values:
            continue
        value = values.pop(old)
        if value is None:
            continue
        new_values = convert(value)
        target = raw.setdefault(new_section, {})
        if not isinstance(target, dict):
            continue  # `from_dict` reports the section that is not a mapping
        clash = [key for key in new_values if key in target]
        if clash:
            where_ = _at(source, f"{section}.{old}", origins, also=(f"{new_section}.{clash[0]}",))
            raise InputError(f"{where_}: replaced by {new_section}.{clash[0]}; give only the {new_section} keys")
        target.update(new_values)


def _drop_removed_keys(raw: dict, source: str, origins: dict[str, str] | None = None) -> None:
    for (section, old), (default, why) in _REMOVED_KEYS.items():
        values = raw.get(section)
        if isinstance(values, dict) and old in values and values.pop(old) != default:
            raise InputError(f"{_at(source, f'{section}.{old}', origins)}: this key was removed ({why}); delete it")


def _upgrade_renamed_keys(raw: dict, source: str, origins: dict[str, str] | None = None) -> None:
    for (section, old), (new, convert) in _RENAMED_KEYS.items():
        values = raw.get(section)
        if not isinstance(values, dict) or old not in values:
            continue
        if new in values:
            raise InputError(f"{_at(source, f'{section}.{old}', origins, also=(f'{section}.{new}',))}: replaced by "
                             f"{section}.{new}; give only {section}.{new}")
        old_value = values.pop(old)
        if not isinstance(old_value, bool):
            raise InputError(f"{_at(source, f'{section}.{old}', origins)}: expected true or false, got "
                             f"{brief(old_value)}")
        values[new] = convert(old_value)


def from_dict(cls, raw: Any, source: str, prefix: str = ""):
    """Build dataclass `cls` from a plain dict, checking keys and types."""
    if not isinstance(raw, dict):
        got = "nothing (a section without keys: give its keys, or delete it)" if raw is None else brief(raw)
        raise InputError(f"{source} [{prefix.removesuffix('.') or 'top level'}]: expected a mapping of keys, got {got}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = list(fields)
    values = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in names:
            hint = _unknown_key_hint(key, names, prefix, elsewhere=cls in _CONFIG_CLASSES)
            raise InputError(f"{where(source, key=full)}: unknown key{hint}")
        if value is None and hints[key] is str and fields[key].default == "":
            # a text key whose empty default means "none" (a prefix, a folder, a teacher): YAML's null
            # (ActionFormer's `file_prefix: ~`) says the same
            value = ""
        values[key] = _convert(hints[key], value, source, full)
    return cls(**values)


def _unknown_key_hint(key: object, names: list[str], prefix: str, elsewhere: bool = True) -> str:
    """What an unknown key `prefix + key` may have meant: the same key where it belongs, in another section (`lr`
    under model is train.lr: a typo's nearest key in its own section, or the list of them, said nothing of it), and
    the nearest key of its own section (a misspelling). `elsewhere`: whether `names` are a config section's, whose
    sibling sections are looked in."""
    section = prefix.removesuffix(".")
    homes = [home for home in _config_keys() if home.rsplit(".", 1)[-1] == key] if elsewhere else []
    close = [f"{prefix}{name}" for name in difflib.get_close_matches(str(key), names, n=1)]
    if homes:
        there = ", ".join(dict.fromkeys(home.rpartition(".")[0] or "the top level" for home in homes))
        here = f"of {section}" if section else "of the top level"
        meant = " or ".join(f"'{name}'" for name in [*homes, *close])
        return f"; {key} is a key of {there}, not {here}: did you mean {meant}?"
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"


def _config_keys() -> list[str]:
    """Every key of a config by its dotted name: the top level's and each section's (`seed`, `train.lr`, ...)."""
    keys = []
    for section in dataclasses.fields(Config):
        hint = typing.get_type_hints(Config)[section.name]
        inner = dataclasses.fields(hint) if dataclasses.is_dataclass(hint) else ()
        keys += [section.name] if not inner else [f"{section.name}.{f.name}" for f in inner]
    return keys


_CONFIG_CLASSES = (Config, StreamConfig, *(f.default_factory for f in dataclasses.fields(Config)
                                          if f.default_factory is not dataclasses.MISSING))


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
            raise InputError(f"{source} [{key}]: expected a list, got {brief(value)}")
        (item_hint,) = typing.get_args(hint)
        return [_convert(item_hint, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits: YAML reads it exactly, no float holds it
            raise InputError(f"{source} [{key}]: expected a finite number, got {brief(value)}") from None
    if hint is float and isinstance(value, str) and _FLOAT.match(value.strip()):
        try:  # a quoted number ("1e-4"), read by YAML 1.2's rule, not Python's (which takes 1_0e-3 and ٠.٣)
            return float(value)
        except ValueError:
            pass
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is str and isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        # ActionFormer's `train_split: ['validation']`: one name there too, in a list
        raise InputError(f"{source} [{key}]: expected one name, not a list: write {key.split('.')[-1]}: "
                         f"{brief(value[0])}")
    in_code = _SET_IN_CODE.get()
    if in_code:  # `config.train.epochs = True` in Python: no YAML read it, and "put it in quotes (key: '...')" misled
        raise InputError(f"{source} [{key}]: expected {getattr(hint, '__name__', hint)}, got {brief(value)} "
                         f"({type(value).__name__}{_quoted_number(value)})")
    got = "null" if value is None else brief(value)  # the config's own word for it
    if hint is str and isinstance(value, (bool, int, float, datetime.date)):
        # `features: 2026-12-07` (a folder named by its date), `name: 0777`, `train_split: no`: YAML's reading of an
        # unquoted word, shown as Python's repr (datetime.date(2026, 12, 7)) with no word on how to keep the text
        kind = ("true/false (YAML reads yes, no, on, off and true, false so)" if isinstance(value, bool) else
                "a date" if isinstance(value, datetime.date) else "a number")
        shown = value.isoformat() if isinstance(value, datetime.date) else brief(value)
        raise InputError(f"{source} [{key}]: expected str, got {shown}: YAML reads the unquoted value as {kind}; put "
                         "it in quotes to keep it as written (key: '...')")
    raise InputError(f"{source} [{key}]: expected {getattr(hint, '__name__', hint)}, got {got}{_yaml_typed_it(value)}")


# True while `checked_config` reads a config set in code: a wrong value is named with its Python type, not explained as
# YAML's reading of a word the user never wrote (`_yaml_typed_it`)
_SET_IN_CODE: contextvars.ContextVar[bool] = contextvars.ContextVar("mgrec_config_set_in_code", default=False)


def _quoted_number(value: object) -> str:
    """"; a number in quotes is text: ..." for a str holding a number, where a number was expected; else ""."""
    if isinstance(value, str) and (_INT.match(value.strip()) or _FLOAT.match(value.strip())):
        return "; a number in quotes is text: write it without the quotes"
    return ""


def _yaml_typed_it(value: object) -> str:
    """Why a value the user wrote as a word came out as another kind, for a key that is not text (text keys say it
    above): YAML types unquoted yes, no, on, off (true and false) as booleans and 2024-01-01 as a date. `epochs: yes`
    was "expected int, got True": the user wrote neither True nor a boolean."""
    if isinstance(value, bool):
        return f" (YAML reads an unquoted yes, no, on, off, true or false as {str(value).lower()})"
    if isinstance(value, datetime.date):
        return " (YAML reads an unquoted YYYY-MM-DD as a date)"
    quoted = _quoted_number(value)
    # `epochs: "10"` said "expected int, got '10'", while `lr: "1e-3"` is read (row 224's rule for quoted floats)
    return f" ({quoted[2:]})" if quoted else ""


def validate(config: Config, source: str, origins: dict[str, str] | None = None) -> None:
    """Checks across fields that types alone cannot express. `origins`: the keys `--set` gave, which every
    rule names instead of `source` (`_override_origins`); a rule across fields names each key it reads
    that came from elsewhere too (`_at`)."""
    def at(key: str, *also: str) -> str:
        return _at(source, key, origins, also)

    m = config.model
    if m.input_dim != config.data.feature_dim:
        raise InputError(f"{at('model.input_dim', 'data.feature_dim')}: {m.input_dim} differs from data.feature_dim="
                         f"{config.data.feature_dim}; leave model.input_dim out (it follows data.feature_dim)")
    _check_streams(config, at)
    _check_end_to_end(config, at)
    check_model(m, source, origins)
    _check_numbers(config, source, origins)
    if len(m.regression_ranges) != m.num_levels:
        raise InputError(
            f"{at('model.regression_ranges', 'model.num_levels')}: {len(m.regression_ranges)} ranges for "
            f"{m.num_levels} levels"
        )
    if config.data.max_seq_len % (2 ** (m.num_levels - 1)) != 0:
        raise InputError(
            f"{at('data.max_seq_len', 'model.num_levels')}: {config.data.max_seq_len} must be divisible by the "
            f"largest pyramid stride {2 ** (m.num_levels - 1)}"
        )
    check_choice(at('data.normalize'), config.data.normalize, NORMALIZE_MODES)
    check_choice(at('postprocess.nms'), config.postprocess.nms, ("soft", "hard"))
    check_choice(at('postprocess.thresholds'), config.postprocess.thresholds, THRESHOLD_RULES)
    class_thresholds = config.postprocess.class_thresholds
    if class_thresholds is not None and len(class_thresholds) != m.num_classes:
        raise InputError(f"{at('postprocess.class_thresholds', 'model.num_classes')}: {len(class_thresholds)} "
                         f"thresholds for {counted(m.num_classes, 'class')}; expected one per class, or null")
    for label_id, threshold in enumerate(class_thresholds or []):
        if not 0 <= threshold <= MAX_CLASS_THRESHOLD:
            raise InputError(f"{at(f'postprocess.class_thresholds[{label_id}]')}: expected a score threshold in "
                             f"[0, {MAX_CLASS_THRESHOLD:g}] (above 1: none of the class), got {brief(threshold)}")
    check_choice(at('train.precision'), config.train.precision, PRECISIONS)
    balance = config.balance
    check_choice(at('balance.method'), balance.method, BALANCE_METHODS)
    # alpha belongs to eq1 alone: a value beside another method would silently do nothing
    if (balance.method == "eq1") != (balance.alpha is not None):
        expected = ("a number >= 1 (eq1 needs it)" if balance.method == "eq1"
                    else f"null (method {balance.method} has no alpha)")
        raise InputError(f"{at('balance.alpha', 'balance.method')}: expected {expected}, got {brief(balance.alpha)}")
    scale = config.transforms.time_scale_range
    if len(scale) != 2 or not MIN_TIME_SCALE <= scale[0] <= scale[1] <= 1 / MIN_TIME_SCALE:
        # beyond 4x either way a crop holds gestures no annotation has (a 1e-300 factor made crops one step long,
        # and val F1 1.28 followed without a word)
        raise InputError(f"{at('transforms.time_scale_range')}: expected [low, high] with {MIN_TIME_SCALE:g} <= low "
                         f"<= high <= {1 / MIN_TIME_SCALE:g} (a crop resampled at most 4x either way), got "
                         f"{brief(scale)}")
    transforms = config.transforms
    if transforms.paste_prob > 0 and 2 * transforms.paste_context + 1 > config.data.max_seq_len:
        # no pasted stretch ever fits a crop: instance paste did nothing, without a word
        raise InputError(f"{at('transforms.paste_context', 'data.max_seq_len')}: {transforms.paste_context} steps of "
                         f"context on each side of a pasted instance leave no room in a crop of "
                         f"{config.data.max_seq_len} steps; expected at most {(config.data.max_seq_len - 1) // 2}")
    check_choice(at('train.select_metric'), config.train.select_metric, ("f1", "average_mAP"))
    check_choice(at('train.select_checkpoint'), config.train.select_checkpoint, ("best", "last"))
    if config.postprocess.second_opinion > 0:
        # the whole-gesture classifier is fitted on one stream's feature files and applied by one network's
        # detection: what reads other inputs, or labels with a teacher, does not carry it yet
        for key, given in (("data.streams", config.data.streams), ("data.videos", config.data.videos),
                           ("pseudo_labels.unlabeled", config.pseudo_labels.unlabeled)):
            if given:
                raise InputError(f"{at('postprocess.second_opinion', key)}: a second opinion is not available with "
                                 f"{key} yet; set postprocess.second_opinion: 0")
    ranges = m.regression_ranges
    if any(len(r) != 2 or not 0 <= r[0] < r[1] for r in ranges) or any(b[0] < a[0] for a, b in zip(ranges, ranges[1:])):
        raise InputError(f"{at('model.regression_ranges')}: expected [low, high] pairs with 0 <= low < high, "
                         f"increasing from level to level, got {brief(ranges)}")


def _check_end_to_end(config: Config, at) -> None:
    """The one rule for a config's inputs: data.features (one stream), data.streams, or data.videos
    (end to end); with videos, what training on decoded clips cannot do yet is refused by key. `at(key,
    *also)`: where a key came from (`validate`'s)."""
    data = config.data
    if not data.videos:
        return
    for key, given in (("data.features", data.features), ("data.streams", data.streams)):
        if given:
            raise InputError(f"{at(key, 'data.videos')}: given with data.videos; a config trains either on feature "
                             f"files (data.features or data.streams) or end to end on raw videos (data.videos), "
                             "not both")
    if not config.backbone.weights:
        raise InputError(f"{at('backbone.weights', 'data.videos')}: data.videos trains through a VideoMAE; expected "
                         "the folder of its config.json and model.safetensors")
    if data.normalize != "none":
        raise InputError(f"{at('data.normalize', 'data.videos')}: {brief(data.normalize)} standardises feature "
                         "files; with data.videos the features are made inside the network: expected 'none'")
    if config.train.compile:
        raise InputError(f"{at('train.compile', 'data.videos')}: compiles the detector trained on feature files; "
                         "with data.videos (a VideoMAE with adapters, recomputed in the backward pass) expected false")
    if config.pseudo_labels.unlabeled:
        raise InputError(f"{at('pseudo_labels.unlabeled', 'data.videos')}: not available with data.videos "
                         "(pseudo-labels are made from feature files)")
    active = [f.name for f in dataclasses.fields(TransformsConfig)
              if f.name.endswith("_prob") and getattr(config.transforms, f.name) > 0]
    if active:
        raise InputError(f"{at(f'transforms.{active[0]}', 'data.videos')}: feature transforms do not apply to "
                         "decoded clips (data.videos); set it to 0")
    config.backbone.block_list()
    if config.backbone.frames_per_clip > data.window:
        raise InputError(f"{at('backbone.frames_per_clip', 'data.window')}: {config.backbone.frames_per_clip} frames "
                         f"per clip from windows of data.window={data.window} frames; expected at most {data.window}")


STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FEATURE_EXTENSIONS = (".npy", ".npz")  # what `mgrec.data.features` reads
# A feature file name's prefix stays inside the features folder and is not hidden (mgrec reads no dot-file).
FEATURE_PREFIX = re.compile(r"(?:[^./\\\x00][^/\\\x00]{0,63})?")
FEATURE_PREFIX_RULE = "text of at most 64 characters without '/', '\\' or a leading '.' (empty: no prefix)"


def _stream_files(stream: StreamConfig) -> tuple[str, str, str]:
    """What names a stream's feature files: its folder (as the file system resolves it), prefix and ending."""
    return os.path.realpath(stream.features), stream.feature_prefix, stream.feature_ext


def _check_streams(config: Config, at) -> None:
    """data.streams, data.grid_stream and model.fusion, which only make sense together. `at(key, *also)`:
    where a key came from (`validate`'s)."""
    data, fusion = config.data, config.model.fusion
    names = [s.name for s in data.streams]
    for i, stream in enumerate(data.streams):
        key = f"data.streams[{i}]"
        if not STREAM_NAME.fullmatch(stream.name):
            raise InputError(f"{at(f'{key}.name')}: expected a name of letters, digits, '_', '-', '.' "
                             f"(e.g. rgb, skeleton), got {brief(stream.name)}")
        folded = [name.casefold() for name in names[:i]]
        if stream.name.casefold() in folded:  # its recipe file, feature_recipe_<name>.json: one file where case folds
            first = names[folded.index(stream.name.casefold())]
            raise InputError(f"{at(f'{key}.name', f'data.streams[{names.index(first)}].name')}: stream "
                             f"{stream.name!r} is named twice ({first!r}); names must differ, in more than case")
        if not stream.features:
            raise InputError(f"{at(f'{key}.features')}: expected the folder of stream {stream.name!r}'s features")
        files = _stream_files(stream)
        same = next((j for j, other in enumerate(data.streams[:i]) if _stream_files(other) == files), None)
        if same is not None:  # one sensor fed twice (a copy-paste slip): nothing would tell
            raise InputError(f"{at(f'{key}.features', f'data.streams[{same}].features')}: streams "
                             f"{data.streams[same].name!r} and {stream.name!r} read the same files "
                             f"({brief(stream.features)}, prefix {brief(stream.feature_prefix)}, "
                             f"{brief(stream.feature_ext)}); give each stream its own")
        if not (isinstance(stream.feature_prefix, str) and FEATURE_PREFIX.fullmatch(stream.feature_prefix)):
            raise InputError(f"{at(f'{key}.feature_prefix')}: expected {FEATURE_PREFIX_RULE}, got "
                             f"{brief(stream.feature_prefix)}")
        for field_name in ("feature_dim", "stride", "window"):
            if getattr(stream, field_name) < 1:
                raise InputError(f"{at(f'{key}.{field_name}')}: expected a positive integer, got "
                                 f"{brief(getattr(stream, field_name))}")
        if stream.fps is not None and fps_problem(stream.fps) is not None:
            raise InputError(f"{at(f'{key}.fps')}: expected a positive number of frames per second, at most "
                             f"{MAX_FPS:g}, or null, got {brief(stream.fps)}")
    # after the streams: with them, data.feature_prefix is the grid stream's (`derive_from_streams`)
    for key, ext in [*((f"data.streams[{i}].feature_ext", s.feature_ext) for i, s in enumerate(data.streams)),
                     ("data.feature_ext", data.feature_ext)]:  # the streams' first: data's is derived from one
        if ("." + ext.lstrip(".")).lower() not in FEATURE_EXTENSIONS:  # `.pt` was read as an .npz, blamed on its keys
            raise InputError(f"{at(key)}: expected {' or '.join(FEATURE_EXTENSIONS)}, got {brief(ext)} (torch's .pt "
                             "files are not read: save each array with numpy.save)")
    if not (isinstance(data.feature_prefix, str) and FEATURE_PREFIX.fullmatch(data.feature_prefix)):
        raise InputError(f"{at('data.feature_prefix')}: expected {FEATURE_PREFIX_RULE}, got "
                         f"{brief(data.feature_prefix)}")
    if data.grid_stream and data.grid_stream not in names:
        expected = f"one of the streams ({', '.join(names)})" if names else "empty (there are no data.streams)"
        raise InputError(f"{at('data.grid_stream', 'data.streams')}: expected {expected}, got "
                         f"{brief(data.grid_stream)}")
    if data.streams and config.pseudo_labels.unlabeled:
        raise InputError(f"{at('pseudo_labels.unlabeled', 'data.streams')}: pseudo-labelling reads one stream's "
                         "files and cannot be combined with data.streams yet; leave one of them out")
    if fusion != "concat" and len(data.streams) < 2:
        raise InputError(f"{at('model.fusion', 'data.streams')}: {fusion} joins two or more data.streams, and this "
                         f"config has {len(data.streams)}; use concat or give data.streams")


# Allowed values of every number in the config (besides being finite, which `_check_numbers` asks
# of all of them): key -> (test, what is expected).
# transforms.time_scale_range's bounds (MIN_TIME_SCALE to its inverse) and transforms.noise_std's
MIN_TIME_SCALE = 0.25
MAX_NOISE_STD = 10.0
_POSITIVE = (lambda v: v > 0, "a positive number")
_NON_NEGATIVE = (lambda v: v >= 0, "a number >= 0")
_FRACTION = (lambda v: 0 <= v <= 1, "a number in [0, 1]")
# a probability a candidate must be above (`probs > pre_nms_thresh`): 1 leaves no candidate at all
_BELOW_ONE = (lambda v: 0 <= v < 1, "a number in [0, 1) (at 1 nothing is ever detected)")
_NUMBER_RULES = {
    "data.stride": _POSITIVE, "data.window": _POSITIVE, "data.feature_dim": _POSITIVE,
    "data.max_seq_len": (lambda v: 0 < v <= MAX_STEPS, f"a positive number of steps <= {MAX_STEPS}"),
    "data.fps": (lambda v: v is None or fps_problem(v) is None,  # the one frame-rate rule (annotations, sidecars too)
                 f"a positive number of frames per second, at most {MAX_FPS:g}, or null to take the fps from the "
                 "annotations"),
    "data.crop_keep_fraction": _FRACTION,
    "train.epochs": _POSITIVE, "train.warmup_epochs": _NON_NEGATIVE, "train.batch_size": _POSITIVE,
    "train.lr": _POSITIVE, "train.final_lr_fraction": _FRACTION, "train.weight_decay": _NON_NEGATIVE,
    "train.clip_grad": _NON_NEGATIVE,
    "train.ema_decay": _FRACTION, "train.ema_warmup": _POSITIVE, "train.center_radius": _POSITIVE,
    "train.focal_alpha": (lambda v: v <= 1, "a number <= 1 (negative: no class weighting)"),
    "train.focal_gamma": _NON_NEGATIVE, "train.label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "train.init_loss_norm": _POSITIVE, "train.reg_loss_weight": _NON_NEGATIVE,
    "train.crops_per_video": (lambda v: 0 < v <= MAX_CROPS_PER_VIDEO,
                              f"a positive number of crops, at most {MAX_CROPS_PER_VIDEO}"),
    "train.eval_every": _POSITIVE,
    "balance.alpha": (lambda v: v is None or v >= 1, "a number >= 1, or null"),
    "balance.repeat_threshold": (lambda v: 0 < v <= 1, "a share of the instances in (0, 1]"),
    "balance.difficulty_momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "transforms.time_scale_prob": _FRACTION, "transforms.noise_prob": _FRACTION,
    "transforms.noise_std": (lambda v: 0 <= v <= MAX_NOISE_STD, f"a number in [0, {MAX_NOISE_STD:g}] (in units of each "
                             "channel's spread: beyond it the noise drowns the features)"),
    "transforms.channel_dropout_prob": _FRACTION,
    "transforms.channel_dropout_rate": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "transforms.paste_prob": _FRACTION, "transforms.paste_context": _NON_NEGATIVE,
    "pseudo_labels.rounds": _POSITIVE,
    "pseudo_labels.min_score": (lambda v: v is None or 0 <= v < 1,
                                "a score in [0, 1) (no detection scores 1: nothing would be labelled), or null"),
    "postprocess.pre_nms_thresh": _BELOW_ONE, "postprocess.pre_nms_topk": _POSITIVE,
    "postprocess.iou_threshold": _FRACTION, "postprocess.sigma": _POSITIVE, "postprocess.voting": _FRACTION,
    # Soft-NMS keeps a candidate only while its decayed score is >= min_score, and no sigmoid score reaches 1
    "postprocess.min_score": _BELOW_ONE,
    "postprocess.max_detections": _POSITIVE, "postprocess.min_duration": _NON_NEGATIVE,
    "postprocess.score_threshold": _FRACTION, "postprocess.threshold_shrinkage": _NON_NEGATIVE,
    "postprocess.shifted_passes": (lambda v: 0 < v <= MAX_SHIFTED_PASSES,
                                   f"a number of passes in [1, {MAX_SHIFTED_PASSES}]"),
    "postprocess.second_opinion": (lambda v: 0 <= v < 1, "a weight in [0, 1)"),
    "backbone.image_size": _POSITIVE, "backbone.frames_per_clip": _POSITIVE,
    "backbone.adapter_ratio": (lambda v: 0 < v <= 1, "a ratio in (0, 1]"),
    "backbone.adapter_kernel": (lambda v: v >= 1 and v % 2 == 1, "an odd kernel size >= 1"),
    "backbone.clip_batch": _POSITIVE,
}


# Rules only training asks (`check_for_training`), in `_NUMBER_RULES`' form: a finished run's config.yaml
# that breaks one still loads, since detecting, scoring and reporting never use the value.
_TRAINING_RULES = {
    "seed": (lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}] (2**31 - 1)"),
}


# A class best served by none of its detections is given a bar just above its top score, which may be 1: a bar
# above 1 keeps none of the class.
MAX_CLASS_THRESHOLD = 2.0


def class_thresholds_problem(values: Any, num_classes: int | None = None) -> str | None:
    """What a record of per-class thresholds was expected to be, when `values` is not that (None: it is): null, or
    a list of numbers in [0, MAX_CLASS_THRESHOLD], one per class (`num_classes`, when given)."""
    if values is None:
        return None
    if not (isinstance(values, list) and all(is_number(t) and 0 <= t <= MAX_CLASS_THRESHOLD for t in values)):
        return (f"null or a list of numbers in [0, {MAX_CLASS_THRESHOLD:g}] (one threshold per class; above 1: none of "
                f"the class), got {brief(values)}")
    if num_classes is not None and len(values) != num_classes:
        return f"one threshold per class of the run's {num_classes}, got {len(values)}"
    return None


def check_same_threshold_rule(members: list[tuple[Path, Config]]) -> None:
    """InputError naming the first ensemble member whose `postprocess.thresholds` or `threshold_shrinkage` differs
    from the first member's: an ensemble tunes its thresholds on val by one rule, taken from its members."""
    (first, config), *others = members
    for path, other in others:
        for key in ("thresholds", "threshold_shrinkage"):
            a, b = getattr(config.postprocess, key), getattr(other.postprocess, key)
            if a != b:
                raise InputError(f"{path} [postprocess.{key}]: {brief(b)}, but {first} has {brief(a)}; an "
                                 "ensemble tunes its score thresholds on val by one rule: give runs trained with the "
                                 "same one")


def check_same_splits(members: list[tuple[Path, Config]]) -> None:
    """InputError naming the first ensemble member trained on other annotations or other splits than the first
    member: the ensemble is tuned on the first member's val split and scored on its test split, which another
    member may have trained on (a member trained on test scored a perfect test without a word)."""
    (first, config), *others = members
    for path, other in others:
        for key in ("train_split", "val_split", "test_split"):
            a, b = getattr(config.data, key), getattr(other.data, key)
            if a != b:
                raise InputError(f"{path} [data.{key}]: {brief(b)}, but {first} has {brief(a)}; the members of an "
                                 "ensemble must be trained, tuned and tested on the same splits")
        # compared where both files are here: a member trained on another machine names an absolute path that is
        # not; a relative path that is not here was written where another folder is current (it would skip the check)
        a, b = Path(config.data.annotations), Path(other.data.annotations)
        for member, named in ((first, a), (path, b)):
            if str(named) not in ("", ".") and not named.is_absolute() and not named.is_file():
                raise InputError(f"{member} [data.annotations]: {brief(str(named))} not found (relative paths "
                                 f"are read from the current directory {Path.cwd()}); run this from the folder the "
                                 "members were trained in, so that their annotations can be compared")
        if a.is_file() and b.is_file() and resolve_path(a) != resolve_path(b) and a.read_bytes() != b.read_bytes():
            raise InputError(f"{path} [data.annotations]: {brief(str(b))}, but {first} has {brief(str(a))}, another "
                             "file; the members of an ensemble must share their annotations")


def check_for_training(config: Config) -> None:
    """The rules of `_TRAINING_RULES`, asked when a training starts or resumes
    (`mgrec.train.loop.refuse_before_training`), each value blamed on where it came from (`key_origin`)."""
    for key, (test, expected) in _TRAINING_RULES.items():
        value = _lookup(config, key)
        if not test(value):
            raise InputError(f"{key_origin(config, key)}: expected {expected} to train, got {brief(value)}")


def _check_numbers(config: Config, source: str, origins: dict[str, str] | None = None) -> None:
    """Every number of the config is finite (inf and NaN are never a setting), and in its range."""
    for key, value in _numbers(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{_at(source, key, origins)}: expected a finite number, got {value}")
        if isinstance(value, int) and abs(value) > MAX_CONFIG_INT:
            raise InputError(f"{_at(source, key, origins)}: expected a whole number within +-{MAX_CONFIG_INT} (a "
                             f"signed 64-bit integer; no setting is larger), got {brief(value)}")
        rule = _NUMBER_RULES.get(key)
        if rule is not None and value is not None and not rule[0](value):
            raise InputError(f"{_at(source, key, origins)}: expected {rule[1]}, got {brief(value)}")
    for key, rule in _NUMBER_RULES.items():  # optional numbers (None) are checked by their rule too
        value = _lookup(config, key)
        if value is None and not rule[0](value):
            raise InputError(f"{_at(source, key, origins)}: expected {rule[1]}, got null")


def _numbers(node: Any, prefix: str = ""):
    """(dotted key, value) of every number in a config dataclass, lists included."""
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _numbers(getattr(node, f.name), f"{prefix}{f.name}" if not prefix else f"{prefix}.{f.name}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _numbers(item, f"{prefix}[{i}]")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, node


def _lookup(config: Config, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def check_choice(where: str, value: object, choices: Sequence[str]) -> None:
    """A setting that takes one of a few names: anything else is refused at `where` (the key, as `_at` names it),
    with the choices listed and the nearest one suggested."""
    if isinstance(value, str) and value in choices:
        return
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise InputError(f"{where}: expected one of {', '.join(choices)}, got {brief(value)}{hint}")


def check_model(m: ModelConfig, source: str = "model config", origins: dict[str, str] | None = None) -> None:
    """Model settings that the network cannot be built with, reported by config key (the one
    place: `validate` runs it for a config file, `build_detector` for a ModelConfig built in code).
    Widths (embed_dim, mlp_dim, head_dim, ...) have no bound here: what they cost depends on the crop and
    the machine, and training asks `mgrec.model.memory` before the network is built."""

    def fail(key: str, expected: str, also: tuple[str, ...] = ()) -> None:  # `also`: the other keys the rule reads
        raise InputError(f"{_at(source, f'model.{key}', origins, also)}: expected {expected}, got "
                         f"{brief(getattr(m, key))}")

    check_choice(_at(source, 'model.variant', origins), m.variant, MODEL_VARIANTS)
    for key in ("input_dim", "num_classes", "embed_dim", "mlp_dim", "head_dim", "num_levels", "head_layers"):
        if not isinstance(getattr(m, key), int) or getattr(m, key) < 1:
            fail(key, "a positive integer")
    if m.num_levels > MAX_LEVELS:  # each level halves the time axis: 16 levels already need crops of 32768 steps
        fail("num_levels", f"at most {MAX_LEVELS}")
    if m.stem_layers < 0:
        fail("stem_layers", "a non-negative integer")
    for key in ("stem_layers", "head_layers"):
        if getattr(m, key) > MAX_LAYERS:
            fail(key, f"at most {MAX_LAYERS} layers")
    for key in ("head_kernel", "window_size", "attention_kernel", "transformer_window"):
        if getattr(m, key) < 1 or getattr(m, key) % 2 != 1:
            fail(key, "an odd positive integer (centred kernels/windows)")
    if not 0 < m.kernel_expansion <= MAX_KERNEL_EXPANSION:
        fail("kernel_expansion", f"a positive number, at most {MAX_KERNEL_EXPANSION}")
    if not 0.0 <= m.drop_path < 1.0:
        fail("drop_path", "a rate in [0, 1)")
    if not 0.0 < m.cls_prior < 1.0:
        fail("cls_prior", "a probability in (0, 1)")
    if not m.gate_tau >= MIN_GATE_TAU:
        fail("gate_tau", f"a number >= {MIN_GATE_TAU:g} (the gate divides by 1 + tanh(gate_tau), which float32 "
                         "loses below it: the gate is 0 everywhere from about -10)")
    if m.attention_mlp_ratio < 1:
        fail("attention_mlp_ratio", "a positive integer")
    if m.transformer_heads < 1:
        fail("transformer_heads", "a positive integer")
    if m.variant == "actionformer" and m.embed_dim % m.transformer_heads != 0:
        # only actionformer's self-attention splits the embedding among heads: the other variants never read
        # transformer_heads, and `--set model.embed_dim=30` on them was refused for its unused default 4
        fail("transformer_heads", f"a positive divisor of embed_dim={m.embed_dim} (actionformer's self-attention "
                                  "splits the embedding among its heads)", also=("model.embed_dim", "model.variant"))
    check_choice(_at(source, 'model.fusion', origins), m.fusion, FUSIONS)
    if (len(m.stream_dims) == 1 and isinstance(m.stream_dims[0], int) and m.stream_dims[0] >= 1
            and m.stream_dims[0] != m.input_dim):
        # one stream: its width came from data.feature_dim, so the key set by hand was input_dim (in Python, after
        # the config was built), not the derived stream_dims the message named before
        fail("input_dim", f"{m.stream_dims[0]}, the features' width (data.feature_dim; model.input_dim and "
                          "model.stream_dims follow it): set data.feature_dim, or leave model.input_dim as it was",
             also=("data.feature_dim",))
    if m.stream_dims and (any(not isinstance(d, int) or d < 1 for d in m.stream_dims)
                          or sum(m.stream_dims) != m.input_dim):
        fail("stream_dims", f"positive sizes that add up to input_dim={m.input_dim} (it follows data.streams)",
             also=("model.input_dim", "data.streams"))
    if m.fusion != "concat" and len(m.stream_dims) < 2:
        fail("fusion", "concat for one input stream (sum and gated join two or more data.streams)",
             also=("model.stream_dims", "data.streams"))


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def missing_keys(raw: Any) -> list[str]:
    """Dotted keys of a complete config (as `save_config` writes it) that `raw`, a parsed YAML mapping,
    lacks: a config written whole and read back short was damaged (e.g. truncated)."""
    def walk(expected: dict, given: Any, prefix: str) -> list[str]:
        missing = []
        for key, value in expected.items():
            if not isinstance(given, dict) or key not in given:
                missing.append(prefix + key)
            elif isinstance(value, dict):
                missing += walk(value, given[key], f"{prefix}{key}.")
        return missing

    return walk(to_dict(Config()), raw, "")


class _ConfigDumper(yaml.SafeDumper):
    """yaml.safe_dump, quoting every string that YAML 1.1 or 1.2 would read as something else (a path named
    `1e3` is a string to PyYAML's own reader, a number to `_StrictLoader`)."""


_YAML_11, _YAML_12 = yaml.SafeDumper.yaml_implicit_resolvers, _StrictLoader.yaml_implicit_resolvers
_ConfigDumper.yaml_implicit_resolvers = {first: _YAML_11.get(first, []) + _YAML_12.get(first, [])
                                         for first in {*_YAML_11, *_YAML_12}}


def checked_config(config: object, source: str = "the config given") -> Config:
    """A config built or changed in code (`dataclasses.replace` on a loaded one) checked as `load_config` checks a
    file, and returned as that file would load: every key's type, every range and every rule across keys (a string
    for an epoch count, a NaN learning rate or batch 0 failed deep in training, after the run folder was begun).
    Paths may be `Path` objects; they come back as strings, as a file gives them."""
    if not isinstance(config, Config):
        raise InputError(f"{source}: expected an mgrec.config.Config (load_config builds one), got "
                         f"{type(config).__name__}")
    for section in dataclasses.fields(Config):
        value, expected = getattr(config, section.name), section.default_factory() \
            if section.default_factory is not dataclasses.MISSING else None
        # `config.train = {"epochs": 1}` set every other key of the section back to its default, without a word
        if expected is not None and dataclasses.is_dataclass(expected) and not isinstance(value, type(expected)):
            raise InputError(f"{source} [{section.name}]: expected a {type(expected).__name__}, got "
                             f"{type(value).__name__}; set its keys one by one (config.{section.name}.KEY = ...), "
                             "which keeps the others")

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "shape", None) == ():
            return value.item()  # a numpy number (a sweep over np.logspace): the Python number it holds
        return str(value) if isinstance(value, Path) else value

    try:
        raw = load_yaml(yaml.dump(plain(to_dict(config)), Dumper=_ConfigDumper, sort_keys=False))
    except yaml.YAMLError as exc:  # a value no config file can hold (an object of another kind)
        raise InputError(f"{source}: holds a value a config cannot: {brief(str(exc), 200)}") from None
    set_in_code = _SET_IN_CODE.set(True)
    try:
        checked = from_dict(Config, raw, source=source)
    finally:
        _SET_IN_CODE.reset(set_in_code)
    check_stream_keys(raw, checked, source=source)
    validate(checked, source=source)
    if hasattr(config, "_origins"):
        checked._origins = config._origins
    return checked


# Each postprocess key's type as its annotation names it (the module's annotations are strings): float, int, str;
# class_thresholds has a rule of its own (`class_thresholds_problem`).
_POSTPROCESS_TYPES = {f.name: f.type for f in dataclasses.fields(PostprocessConfig)
                      if f.type in ("float", "int", "str")}
# The postprocess keys that take one of a few names.
_POSTPROCESS_CHOICES = {"nms": ("soft", "hard"), "thresholds": THRESHOLD_RULES}


def postprocess_setting_problem(settings: dict) -> tuple[str, str] | None:
    """(key, what was expected) of the first post-processing setting in `settings` (keys of `PostprocessConfig`; the
    others are not looked at) that is not of its key's type and range (`_NUMBER_RULES`), else None. The one rule of a
    PostprocessConfig given in Python (`check_postprocess`) and of the settings a run's postprocess.json records it
    was tuned with (`mgrec.run.RunDir.read_tuning`): values as they are, never converted (a "0.5" is no number)."""
    for key, hint in _POSTPROCESS_TYPES.items():
        if key not in settings:
            continue
        value = settings[key]
        if hint == "float" and not is_finite_real(value):
            return key, "a finite number"
        if hint == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            return key, "a whole number"
        if hint == "str" and not isinstance(value, str):
            return key, "a str"
        rule = _NUMBER_RULES.get(f"postprocess.{key}")
        if rule is not None and not rule[0](value):
            return key, rule[1]
    for key, choices in _POSTPROCESS_CHOICES.items():
        if key in settings and settings[key] not in choices:
            return key, f"one of {', '.join(choices)}"
    return None


def check_postprocess(postprocess: object, num_classes: int | None = None, what: str = "postprocess") -> None:
    """A `PostprocessConfig` given in Python (`OfflineDetector(..., postprocess=...)`) checked by the rules a config
    file's postprocess section passes: each key's type and range (`_NUMBER_RULES`), nms and thresholds among their
    names, one class threshold per class (of `num_classes`, when given). `what` names the argument in messages.

    Unchecked, a threshold given as "0.3" was a TypeError deep in decoding, and two class thresholds for three
    classes an IndexError in hard_set. A dict is refused, not read as a section: the keys it lacks would fall back
    to their defaults, the run's tuned threshold among them."""
    if isinstance(postprocess, dict):
        raise InputError(f"{what}: expected an mgrec.config.PostprocessConfig, got a dict; change a loaded one's keys "
                         "with dataclasses.replace(detector.postprocess, KEY=...), which keeps the others")
    if not isinstance(postprocess, PostprocessConfig):
        got = brief(postprocess) if isinstance(postprocess, (type(None), str, numbers.Number)) else \
            type(postprocess).__name__
        raise InputError(f"{what}: expected an mgrec.config.PostprocessConfig (config.postprocess), got {got}")
    for key, choices in _POSTPROCESS_CHOICES.items():  # first: their message suggests the nearest name
        check_choice(f"{what}.{key}", getattr(postprocess, key), choices)
    problem = postprocess_setting_problem(dataclasses.asdict(postprocess))
    if problem is not None:
        raise InputError(f"{what}.{problem[0]}: expected {problem[1]}, got {brief(getattr(postprocess, problem[0]))}")
    problem = class_thresholds_problem(postprocess.class_thresholds, num_classes)
    if problem is not None:
        raise InputError(f"{what}.class_thresholds: expected {problem}")


def save_config(config: Config, path: str | Path) -> None:
    """`config` written to `path` as YAML, checked first as `checked_config` checks it: a file `load_config` would
    refuse (a string where a number goes, set in code) is never written."""
    from mgrec.files import atomic_write_text

    path = path_argument(path, "save_config: path")
    checked = checked_config(config, source=f"the config to write to {path}")
    atomic_write_text(path, yaml.dump(to_dict(checked), Dumper=_ConfigDumper, sort_keys=False))
