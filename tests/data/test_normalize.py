"""Per-video standardisation of input features (`mgrec.data.normalize`) and where it is applied."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, load_config
from mgrec.data.normalize import STD_FLOOR, ChannelStats, RunningChannelStats, network_inputs
from mgrec.errors import InputError
from mgrec.infer.offline import OfflineDetector
from mgrec.model.detector import build_detector
from mgrec.train.ensemble import check_compatible

FPS = 25.0


def features(rows: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # channels far from zero mean and unit scale, one of them constant
    x = rng.normal(loc=rng.uniform(-50, 50, 8), scale=rng.uniform(0.01, 20, 8), size=(rows, 8))
    x[:, 3] = 7.5
    return x.astype(np.float32)


def test_a_video_is_standardised_per_channel_by_its_own_statistics():
    x = features()
    out = network_inputs("video", x)
    assert out.dtype == np.float32 and out.shape == x.shape
    moving = [c for c in range(8) if c != 3]
    np.testing.assert_allclose(out[:, moving].mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(out[:, moving].std(0), 1.0, rtol=1e-4)
    wide = x.astype(np.float64)
    wide = wide[:, moving]
    np.testing.assert_allclose(out[:, moving], (wide - wide.mean(0)) / wide.std(0), atol=1e-4)
    assert np.all(out[:, 3] == 0.0)  # a constant channel is centred, not divided by zero
    assert network_inputs("none", x) is x
    with pytest.raises(ValueError, match="data.normalize: expected one of none, video"):
        network_inputs("per_video", x)


@pytest.mark.parametrize("chunk", [1, 7, 128, 500])
def test_running_statistics_equal_those_of_the_whole_video(chunk, monkeypatch):
    x = features(seed=1) + 1e4  # a large offset: naive sums of squares would lose the variance
    monkeypatch.setattr("mgrec.data.normalize.BLOCK_STEPS", 64)  # several blocks inside one add as well
    running = RunningChannelStats(8)
    for start in range(0, len(x), chunk):
        running.add(x[start:start + chunk])
    stats, wide = running.current(), x.astype(np.float64)
    assert stats.count == len(x)
    np.testing.assert_allclose(stats.mean, wide.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, wide.std(0), rtol=1e-9, atol=1e-9)
    whole = ChannelStats.of(x)
    np.testing.assert_allclose(whole.std, stats.std, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="no rows added"):
        RunningChannelStats(8).current()
    assert STD_FLOOR < 1e-3


def tiny_detector(normalize: str) -> OfflineDetector:
    torch.manual_seed(0)
    model_cfg = ModelConfig(input_dim=8, num_classes=2, embed_dim=16, mlp_dim=32, head_dim=16, num_levels=3,
                            regression_ranges=[[0, 4], [4, 8], [8, 10000]], drop_path=0.0)
    post = PostprocessConfig(max_detections=30)
    config = Config(data=DataConfig(feature_dim=8, stride=4, window=16, max_seq_len=64, normalize=normalize),
                    model=model_cfg, postprocess=post)
    return OfflineDetector(build_detector(model_cfg).eval(), config, ["a", "b"], post, Path("."))


def test_offline_detection_standardises_the_video_it_is_given():
    x = features(rows=200, seed=2)
    standardised = ChannelStats.of(x).apply(x)
    normalising, plain = tiny_detector("video"), tiny_detector("none")
    assert normalising.detect(x, "v", fps=FPS) == plain.detect(standardised, "v", fps=FPS)
    assert normalising.detect_inputs(standardised, "v", fps=FPS) == plain.detect(standardised, "v", fps=FPS)
    assert plain.detect(x, "v", fps=FPS) != plain.detect(standardised, "v", fps=FPS)  # the inputs matter


def test_the_key_is_checked_and_ensembles_must_agree_on_it(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  normalize: vidoe\n")
    with pytest.raises(InputError, match=r"c.yaml \[data.normalize\]: expected one of none, video, .* did you "
                                         r"mean 'video'"):
        load_config(path)
    assert load_config(path, ["data.normalize=video"]).data.normalize == "video"
    plain = Config()
    normalising = dataclasses.replace(plain, data=dataclasses.replace(plain.data, normalize="video"))
    with pytest.raises(InputError, match=r"b \[data.normalize\]: 'video', but a has 'none'"):
        check_compatible((Path("a"), plain, ["x"]), (Path("b"), normalising, ["x"]))


def test_training_and_validation_read_each_video_standardised(tmp_path):
    from mgrec.data.annotations import load_annotations
    from mgrec.data.features import load_features
    from mgrec.data.synthetic import make_synthetic_dataset
    from mgrec.train.data import load_split

    paths = make_synthetic_dataset(tmp_path, num_videos=2, num_classes=3, feature_dim=8, length=96, seed=0,
                                   subsets=("train", "val"))
    config = Config(data=DataConfig(annotations=str(paths.annotations), features=str(paths.features),
                                    feature_dim=8, max_seq_len=64, normalize="video"),
                    model=ModelConfig(num_classes=3, input_dim=8))
    annotations = load_annotations(paths.annotations)
    for split in ("train", "val"):
        (sample,) = load_split(config, annotations, split).samples
        raw = load_features(Path(paths.features) / f"{sample.video_id}.npy")
        np.testing.assert_array_equal(sample.features, ChannelStats.of(raw).apply(raw))
