"""Helpers shared by the test modules (import as `from tests.helpers import ...`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, TrainConfig
from mgrec.data.demo import DatasetPaths
from mgrec.infer.offline import OfflineDetector
from mgrec.model.detector import build_detector

# The model size of the tests that train or detect: 3 levels, 16 channels, seconds on 2 CPU cores.
SMALL_MODEL = dict(embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                   regression_ranges=[[0, 4], [4, 8], [8, 10000]], drop_path=0.0)


def small_config(paths: DatasetPaths, *, seed: int, max_seq_len: int, train: TrainConfig,
                 postprocess: PostprocessConfig, variant: str = "mgrec") -> Config:
    """A config of the small model on a synthetic dataset (`mgrec.data.synthetic.make_synthetic_dataset`)."""
    return Config(
        seed=seed,
        data=DataConfig(annotations=str(paths.annotations), features=str(paths.features),
                        feature_dim=paths.feature_dim, max_seq_len=max_seq_len),
        model=ModelConfig(variant=variant, num_classes=len(_classes(paths)), **SMALL_MODEL),
        train=train,
        postprocess=postprocess,
    )


def train_tiny_run(root: Path, *, seed: int, postprocess: PostprocessConfig, variant: str = "mgrec"):
    """A run trained for two epochs on a synthetic dataset of 4 videos (train, train, val, test; 3 classes):
    (run folder, dataset paths, `TrainResult`)."""
    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.train.loop import train

    paths = make_synthetic_dataset(root / "data", num_videos=4, num_classes=3, feature_dim=16, length=160,
                                   subsets=("train", "train", "val", "test"))
    config = small_config(paths, seed=seed, max_seq_len=128,
                          train=TrainConfig(epochs=2, warmup_epochs=1, batch_size=2, crops_per_video=1, lr=3e-3,
                                            eval_every=1, ema_decay=0.9),
                          postprocess=postprocess, variant=variant)
    result = train(config, root / "run", log=lambda *_: None, progress=False)
    return root / "run", paths, result


def _classes(paths: DatasetPaths) -> list[str]:
    from mgrec.data.annotations import load_annotations

    return load_annotations(paths.annotations).classes


# End-to-end training on a real clip (tests/train/test_end_to_end*.py): two "gestures" of the talking
# person, in seconds of the 4-s carphone clip, and a tiny random-init VideoMAE.
SEGMENTS = [("nod", 0, [0.8, 1.6]), ("turn", 1, [2.3, 3.3])]
TINY_VIDEOMAE = dict(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                     num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, layer_norm_eps=1e-6,
                     use_mean_pooling=False)


def write_end_to_end_data(root: Path, clip: Path, train: dict) -> Path:
    """videos/ (the clip as talk_color.mp4 for training and talk_again.mp4 for validation: SMG's `_color`
    naming and a plain one), the annotations, a random-init VideoMAE folder (config.json only) and a config
    YAML training on them with `train`; returns the config's path."""
    videos = root / "videos"
    videos.mkdir(parents=True)
    shutil.copy(clip, videos / "talk_color.mp4")
    shutil.copy(clip, videos / "talk_again.mp4")
    entry = {"fps": 29.97, "duration": 4.0,
             "annotations": [{"label": name, "label_id": label, "segment": span} for name, label, span in SEGMENTS]}
    (root / "annotations.json").write_text(json.dumps({"classes": ["nod", "turn"], "database": {
        "talk": {"subset": "training", **entry}, "talk_again": {"subset": "validation", **entry}}}))
    backbone = root / "videomae"
    backbone.mkdir()
    (backbone / "config.json").write_text(json.dumps({"model_type": "videomae", **TINY_VIDEOMAE}))
    config = {
        "seed": 3,
        "data": {"annotations": str(root / "annotations.json"), "videos": str(videos), "feature_dim": 32,
                 "stride": 2, "window": 4, "max_seq_len": 64},
        "backbone": {"weights": str(backbone), "random_init": True, "image_size": 32, "frames_per_clip": 4,
                     "adapter": "spatial_temporal", "adapter_blocks": "all", "clip_batch": 32},
        # the head's channel-attention MLPs with 16 hidden units (SMALL_MODEL's have one, which a ReLU can
        # leave dead on every input: no gradient at all, whatever the input)
        "model": {"num_classes": 2, **SMALL_MODEL, "embed_dim": 32, "head_dim": 32, "attention_mlp_ratio": 2},
        "train": train,
    }
    path = root / "e2e.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny convolutions run fastest on one thread; more threads only contend on a shared machine.
    Autouse in every module that imports it (`from tests.helpers import one_torch_thread  # noqa: F401`)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_network_detector(seed: int = 0, normalize: str = "none") -> OfflineDetector:
    """An untrained real network (SMALL_MODEL, 16 input channels, 3 classes a, b, c) as a detector of features with
    stride 4 and window 16: the online and streaming tests' network, seeded."""
    torch.manual_seed(seed)
    model_cfg = ModelConfig(input_dim=16, num_classes=3, **SMALL_MODEL)
    # An untrained network scores every (step, class) near the prior: keep NMS short.
    post = PostprocessConfig(max_detections=40)
    config = Config(data=DataConfig(feature_dim=16, stride=4, window=16, max_seq_len=64, normalize=normalize),
                    model=model_cfg, postprocess=post)
    return OfflineDetector(build_detector(model_cfg).eval(), config, ["a", "b", "c"], post, Path("."))


def remuxed(video: Path, path: Path, container: str) -> Path:
    """`video`'s video packets copied, not re-encoded, into a `container` file at `path` (matroska: what
    `ffmpeg ... -f matroska -` pipes; mpegts without the codec's setup: a file that probes as 0x0)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(video)) as source, av.open(str(path), "w", format=container) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return path


def home_and_work(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A home folder (HOME) and a work folder, both empty, for tests of `~` paths (the caller chdirs where needed)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home, work
