"""The config reference, docs/config.md, generated from the config's dataclasses (`mgrec.config`): every key
with its type, default and one-line meaning (field metadata `DOC`), and the table of ActionFormer / DyFADet /
OpenTAD keys and their mgrec counterparts (`KEY_MAPPING`). `python -m mgrec.config_reference > docs/config.md`
writes it; tests/test_config_reference.py fails when the file is out of date or a key has no meaning.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from mgrec.config import DOC, Config

REFERENCE_PATH = "docs/config.md"
REFERENCE_COMMAND = f"python -m mgrec.config_reference > {REFERENCE_PATH}"

# ActionFormer / DyFADet YAML key, OpenTAD Python-config key, mgrec key(s), note. "" = no counterpart.
# Facts from the released code (actionformer_release, DyFADet-pytorch, OpenTAD); the test checks that
# every mgrec key named here exists.
KEY_MAPPING: tuple[tuple[str, str, str, str], ...] = (
    ("dataset.json_file", "dataset.*.ann_file", "data.annotations",
     "same JSON layout; mgrec also reads a top-level `classes` list"),
    ("dataset.feat_folder", "dataset.*.data_path", "data.features", ""),
    ("dataset.file_ext", "LoadFeats.feat_format", "data.feature_ext", "`.npy`, or `.npz` with the array under `feats`"),
    ("dataset.file_prefix", "LoadFeats.prefix", "data.feature_prefix", ""),
    ("", "dataset.*.class_map", "", "the annotations' top-level `classes` list (else the label ids, else the sorted "
     "labels)"),
    ("dataset.input_dim", "model.projection.in_channels", "data.feature_dim", "model.input_dim follows it"),
    ("dataset.num_classes", "model.rpn_head.num_classes", "model.num_classes", ""),
    ("dataset.feat_stride", "dataset.*.feature_stride, dataset.*.sample_stride", "data.stride",
     "OpenTAD: feature_stride x sample_stride"),
    ("dataset.num_frames", "dataset.*.offset_frames (= window / 2)", "data.window",
     "row t stands for (t*stride + window/2)/fps s, as in ActionFormer; a wrong window moves every time by half "
     "the difference, which no check can see in features without a sidecar"),
    ("dataset.default_fps", "", "data.fps", "null: each video's fps from the annotations; set, every video is placed "
     "at it, as ActionFormer does (an entry without one takes it; `data check` warns of entries with another)"),
    ("dataset.downsample_rate", "", "",
     "no subsampling on reading: extract with a larger stride (`mgrec extract --stride`) or save feats[::r] and "
     "multiply data.stride by r"),
    ("dataset.force_upsampling", "ResizeFeat", "", "features are read at their own length (no resizing to a fixed "
     "one, ActivityNet's setting)"),
    ("dataset.max_seq_len", "RandomTrunc.trunc_len", "data.max_seq_len", ""),
    ("dataset.trunc_thresh", "RandomTrunc.trunc_thresh", "data.crop_keep_fraction", ""),
    ("dataset.crop_ratio", "RandomTrunc.crop_ratio", "",
     "crops are max_seq_len long and drawn around an instance"),
    ("train_split, val_split", "dataset.train/val/test.subset_name",
     "data.train_split, data.val_split, data.test_split",
     "one name each, not a list; `Validation` is read as val. ActionFormer's THUMOS setting (train on "
     "`validation`, no validation, score `test`): train_split val, val_split '' (no validation: the last epoch "
     "and the config's score threshold are kept), test_split test"),
    ("model_name, model.backbone_type", "model.type", "model.variant",
     "LocPointTransformer/convTransformer: actionformer; DyFADet/DynE: dyfadet"),
    ("model.backbone_arch", "model.projection.arch", "model.stem_layers, model.num_levels",
     "(2, stem_layers, num_levels - 1); the embedding always has 2 convs"),
    ("model.embd_dim", "model.projection.out_channels", "model.embed_dim", ""),
    ("model.fpn_type, model.fpn_dim", "model.neck", "", "the neck is a LayerNorm per level (the identity FPN)"),
    ("model.head_dim", "model.rpn_head.feat_channels", "model.head_dim", ""),
    ("model.head_kernel_size", "model.rpn_head.head_kernel_size", "model.head_kernel", ""),
    ("model.head_num_layers", "model.rpn_head.num_convs (+ 1)", "model.head_layers",
     "counts the final predictor, as ActionFormer; OpenTAD's num_convs = head_layers - 1"),
    ("model.n_head", "model.projection.attn_cfg.n_head", "model.transformer_heads", ""),
    ("model.n_mha_win_size", "model.projection.attn_cfg.n_mha_win_size", "model.transformer_window",
     "one odd window for every level: no per-level list, no -1 (global attention)"),
    ("model.regression_range", "model.rpn_head.prior_generator.regression_range", "model.regression_ranges", ""),
    ("model.scale_factor", "model.rpn_head.prior_generator.strides", "", "always 2: level l has stride 2**l"),
    ("model.use_abs_pe, model.use_rel_pe", "model.projection.use_abs_pe", "", "no position encodings"),
    ("model.n_encoder_win_size (DyFADet)", "model.projection.encoder_win_size", "model.window_size", ""),
    ("model.k (DyFADet)", "model.projection.k", "model.kernel_expansion", ""),
    ("model.mlp_dim (DyFADet)", "model.projection.mlp_dim", "model.mlp_dim", ""),
    ("model.init_conv_vars (DyFADet)", "model.projection.init_conv_vars", "model.init_conv_std",
     "the released 0 leaves the DynE convs dead; mgrec defaults to 0.02"),
    ("model.dyn_head.tau (DyFADet)", "model.rpn_head.dyn_head_cfg.tau", "model.gate_tau", ""),
    ("model.input_noise (DyFADet)", "model.projection.input_noise", "transforms.noise_std",
     "mgrec's is in units of each channel's std, applied with probability transforms.noise_prob"),
    ("train_cfg.center_sample", "model.rpn_head.center_sample", "", "always `radius`"),
    ("train_cfg.center_sample_radius", "model.rpn_head.center_sample_radius", "train.center_radius",
     "centre sampling is always on"),
    ("train_cfg.head_empty_cls", "", "", "no class left out of the head: a class without a training instance is a "
     "`data check` warning"),
    ("train_cfg.loss_weight", "", "train.reg_loss_weight", "no -1 (automatic balance)"),
    ("train_cfg.cls_prior_prob", "model.rpn_head.cls_prior_prob", "model.cls_prior", ""),
    ("train_cfg.init_loss_norm", "model.rpn_head.loss_normalizer", "train.init_loss_norm", "momentum fixed at 0.9"),
    ("train_cfg.clip_grad_l2norm", "solver.clip_grad_norm", "train.clip_grad", "off: 0 in mgrec, -1 in ActionFormer"),
    ("train_cfg.droppath", "model.projection.path_pdrop", "model.drop_path", ""),
    ("train_cfg.label_smoothing", "model.rpn_head.label_smoothing", "train.label_smoothing", ""),
    ("train_cfg.dropout", "", "", "no dropout"),
    ("test_cfg.pre_nms_thresh", "post_processing.pre_nms_thresh", "postprocess.pre_nms_thresh", ""),
    ("test_cfg.pre_nms_topk", "post_processing.pre_nms_topk", "postprocess.pre_nms_topk", "per pyramid level"),
    ("test_cfg.nms_method", "post_processing.nms.use_soft_nms", "postprocess.nms", "soft or hard (no `none`)"),
    ("test_cfg.nms_sigma", "post_processing.nms.sigma", "postprocess.sigma", ""),
    ("test_cfg.iou_threshold", "post_processing.nms.iou_threshold", "postprocess.iou_threshold",
     "hard NMS only; Gaussian Soft-NMS ignores it in all three"),
    ("test_cfg.min_score", "post_processing.nms.min_score", "postprocess.min_score", ""),
    ("test_cfg.max_seg_num", "post_processing.nms.max_seg_num", "postprocess.max_detections", ""),
    ("test_cfg.duration_thresh", "", "postprocess.min_duration", "in feature steps"),
    ("test_cfg.multiclass_nms", "post_processing.nms.multiclass", "", "NMS is always class-wise"),
    ("test_cfg.voting_thresh", "post_processing.nms.voting_thresh", "postprocess.voting",
     "class-wise, as mgrec's NMS; weights the candidates' scores (ActionFormer's also their tIoU); 0 is off"),
    ("test_cfg.ext_score_file", "", "", "no external video-level classifier"),
    ("", "", "postprocess.score_threshold",
     "new: the hard set for F1 (MiGA), tuned on val at training"),
    ("opt.learning_rate", "optimizer.lr", "train.lr", "always AdamW, linear warm-up then cosine to lr x "
     "train.final_lr_fraction (default 0)"),
    ("(the cosine schedule's eta_min: 1e-8 by default)", "", "train.final_lr_fraction",
     "a fraction of train.lr, not a rate: 0 ends at 0"),
    ("opt.weight_decay", "optimizer.weight_decay", "train.weight_decay", ""),
    ("opt.epochs", "scheduler.max_epoch", "train.epochs",
     "mgrec's epochs include the warm-up, as OpenTAD's max_epoch: ActionFormer's opt.epochs + opt.warmup_epochs; "
     "an mgrec epoch draws train.crops_per_video crops (default 4) of each training video, ActionFormer's one: "
     "crops_per_video 1 counts epochs (and warm-up) as it does"),
    ("opt.type, opt.schedule_type, opt.warmup", "optimizer.type, scheduler.type", "",
     "always AdamW, a linear warm-up (train.warmup_epochs), then cosine"),
    ("opt.warmup_epochs", "scheduler.warmup_epoch", "train.warmup_epochs", ""),
    ("loader.batch_size", "solver.train.batch_size", "train.batch_size", ""),
    ("loader.num_workers", "solver.train.num_workers", "",
     "no worker processes: batches are slices of features held in memory, built in the training process"),
    ("(train.py keeps an EMA at decay 0.999)", "solver.ema", "train.ema_decay",
     "the EMA is always kept; with a warm-up"),
    ("init_rand_seed", "", "seed", ""),
    ("dataset_name, output_folder", "work_dir", "", "a run is the folder `mgrec train --out` names"),
    ("model.max_buffer_len_factor", "", "", "no buffer: each video is detected at its own length"),
    ("model.embd_kernel_size, model.embd_with_ln, model.fpn_with_ln, model.head_with_ln, model.fpn_start_level",
     "", "", "fixed: the embedding's convs of kernel 3 with LayerNorm, a LayerNorm per level (the neck), LayerNorm in "
     "ActionFormer's head tower, the head on every level"),
    ("devices", "", "train.device", "one device per process; several GPUs: launch `mgrec train` with torchrun"),
)


def config_keys(cls: type | None = None, prefix: str = "") -> list[tuple[str, dataclasses.Field]]:
    """Every key of a config dataclass (default: `Config`), dotted (`data.features`), depth first;
    a section (a nested dataclass) comes before its keys."""
    cls = Config if cls is None else cls
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        keys.append((prefix + f.name, f))
        if dataclasses.is_dataclass(hints[f.name]):
            keys += config_keys(hints[f.name], prefix + f.name + ".")
    return keys


def undocumented_keys(cls: type | None = None) -> list[str]:
    """Keys without their one line of meaning (`_doc`/`_section`: metadata DOC, one non-empty line)."""
    return [key for key, f in config_keys(cls) if not str(f.metadata.get(DOC, "")).strip() or "\n" in f.metadata[DOC]]


def _yaml_value(value: Any) -> str:
    """A default as it is written in a YAML config."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def config_reference(cls: type | None = None) -> str:
    """docs/config.md: every key of the config with its type, default and meaning, then the
    ActionFormer/OpenTAD -> mgrec key table. Raises ValueError naming any key without its meaning."""
    cls = Config if cls is None else cls
    missing = undocumented_keys(cls)
    if missing:
        raise ValueError(f"config keys without a one-line meaning (metadata {DOC!r}): {', '.join(missing)}")
    lines = [
        "# Configuration reference",
        "",
        f"Generated from the dataclasses of `src/mgrec/config.py` by `{REFERENCE_COMMAND}`; do not edit by",
        "hand (`tests/test_config_reference.py` fails when this file is out of date).",
        "",
        "A config is a YAML file with the sections below; a key left out keeps its default, `base: other.yaml`",
        "inherits from another file (its keys are overridden by this one's; the file beside this one, else a config",
        "shipped with mgrec such as `demo/default.yaml`), and any key can be set on the command line:",
        "`mgrec train CONFIG --out RUN --set data.annotations=a.json --set data.features=feats --set train.epochs=20`.",
        "Unknown keys and wrong types are refused, naming the file and the key. Numbers are read as YAML 1.2 reads",
        "them (`0123` is 123, `1e-3` a number; `1:30` and `1_0`, numbers to YAML 1.1, are refused by key).",
        "",
    ]
    lines += _key_table(cls, "", "top level")
    lines += [
        "## ActionFormer / OpenTAD -> mgrec",
        "",
        "The keys of ActionFormer's YAML configs (and of DyFADet's, which extend them) and of OpenTAD's Python",
        "configs, and the mgrec key that plays the same part; an empty mgrec cell: mgrec has no such setting.",
        "",
        "| ActionFormer / DyFADet | OpenTAD | mgrec | note |",
        "|---|---|---|---|",
    ]
    for row in KEY_MAPPING:
        cells = [", ".join(_key_cell(k.strip()) for k in column.split(",")) if column else "" for column in row[:3]]
        lines.append(f"| {' | '.join(_cell(c) for c in [*cells, row[3]])} |")
    return "\n".join(lines) + "\n"


def _key_cell(text: str) -> str:
    """`key` (a remark in parentheses after it stays outside the code span; a remark alone is plain)."""
    if text.startswith("("):
        return text
    key, _, remark = text.partition(" (")
    return f"`{key}`" + (f" ({remark}" if remark else "")


def _declared_default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _key_table(cls: type, prefix: str, title: str) -> list[str]:
    """The table of `cls`'s plain keys, then one table per section it holds."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    lines = [f"## {title}", "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for f in fields:
        if not dataclasses.is_dataclass(hints[f.name]):
            cells = [f"`{prefix}{f.name}`", str(f.type), f"`{_yaml_value(_declared_default(f))}`", f.metadata[DOC]]
            lines.append(f"| {' | '.join(_cell(c) for c in cells)} |")
    lines.append("")
    for f in fields:
        if dataclasses.is_dataclass(hints[f.name]):
            key = prefix + f.name
            lines += _key_table(hints[f.name], key + ".", f"`{key}`: {f.metadata[DOC]}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """`python -m mgrec.config_reference` prints docs/config.md."""
    import argparse

    argparse.ArgumentParser(prog="python -m mgrec.config_reference", description=main.__doc__).parse_args(argv)
    print(config_reference(), end="")


if __name__ == "__main__":
    main()
