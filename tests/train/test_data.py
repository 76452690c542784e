import numpy as np
import pytest

from mgrec.config import Config
from mgrec.data.augment import repeat_factors
from mgrec.data.datasets import VideoSample
from mgrec.errors import InputError
from mgrec.timeline import FeatureGrid
from mgrec.train.data import checked_annotations, class_counts, crop_anchors

GRID = FeatureGrid(fps=10.0, stride=1, window=1)


def _video(labels):
    segments = np.array([[10.0 * i, 10.0 * i + 5] for i in range(len(labels))])
    return VideoSample("v", np.zeros((100, 2), dtype=np.float32), segments, np.array(labels, dtype=np.int64), GRID)


def test_eq1_lists_each_rare_instance_r_c_times_in_place():
    # class 0: 3 instances (common at alpha 3), class 1: 1 instance (R = ceil(log2 3) + 1 = 3),
    # class 2: 2 instances (R = ceil(log2 1.5) + 1 = 2), class 3: none
    samples = [_video([0, 1, 0]), _video([2, 0, 2]), _video([])]
    counts = class_counts(samples, 4)
    assert counts == [3, 1, 2, 0]
    anchors, labels = crop_anchors(samples, repeat_factors(counts, alpha=3))
    assert anchors == [(0, 0), (0, 1), (0, 1), (0, 1), (0, 2), (1, 0), (1, 0), (1, 1), (1, 2), (1, 2)]
    assert labels.tolist() == [0, 1, 1, 1, 0, 2, 2, 0, 2, 2]
    assert np.bincount(labels, minlength=4).tolist() == [3, 3, 4, 0]


def test_no_replication_lists_every_instance_once():
    samples = [_video([0, 1]), _video([1])]
    anchors, labels = crop_anchors(samples, [1, 1])
    assert anchors == [(0, 0), (0, 1), (1, 0)] and labels.tolist() == [0, 1, 1]


def test_a_wrong_features_path_is_refused_without_talking_of_dropping_videos(tmp_path):
    # `mgrec train CONFIG --set data.features=<typo>` said "the data has errors that dropping videos cannot fix",
    # which reads as if the user had asked to drop videos
    (tmp_path / "ann.json").write_text('{"classes": ["a"], "database": {"v": {"subset": "train", "fps": 30, '
                                       '"duration": 10, "annotations": []}}}', encoding="utf-8")
    config = Config()
    config.data.annotations, config.data.features = str(tmp_path / "ann.json"), str(tmp_path / "featurs")
    config.model.num_classes = 1
    with pytest.raises(InputError) as error:
        checked_annotations(config, log=lambda line: None)
    message = str(error.value)
    assert message.startswith("the data has 1 error(s) to fix first (`mgrec data check` lists every problem):\n")
    assert f"{tmp_path / 'featurs'}: no such folder (config data.features)" in message
    assert "dropping" not in message


def test_dropping_every_video_of_the_val_split_is_refused_as_dropping_every_training_video_is(tmp_path):
    # data.drop_bad_videos with each val video bad trained without validation without a word but "validating on 0"
    # and, at the end, "no val split: kept the last epoch ... and the configured score threshold": the checkpoint
    # was not selected and the threshold not tuned, as the config asked (a val split of no annotated instance is
    # refused by the data check for that reason)
    import dataclasses

    from tests.helpers import small_config

    from mgrec.config import PostprocessConfig, TrainConfig
    from mgrec.data.synthetic import make_synthetic_dataset

    paths = make_synthetic_dataset(tmp_path / "data", num_videos=4, num_classes=3, feature_dim=16, length=160,
                                   subsets=("train", "train", "val", "test"))
    config = small_config(paths, seed=3, max_seq_len=128, train=TrainConfig(), postprocess=PostprocessConfig())
    config.data = dataclasses.replace(config.data, drop_bad_videos=True)
    val_features = (paths.features / "synthetic_002.npy").read_bytes()
    (paths.features / "synthetic_002.npy").write_bytes(b"garbage")  # the one val video
    with pytest.raises(InputError, match=r"(?s)the data has 1 error\(s\) .*synthetic_002.npy: cannot read features.*"
                                         r"\nThe one video of the val split 'val' \(data.val_split\) has "
                                         r"one: fix them \(dropping them would leave no video to select the checkpoint "
                                         r"and tune the score threshold on\), or train without validation: "
                                         r"data.val_split: '' \(--set \"data.val_split=''\"\)\.$"):
        checked_annotations(config, log=lambda line: None)
    (paths.features / "synthetic_003.npy").write_bytes(b"garbage")  # a test video's: dropped, as before
    with pytest.raises(InputError, match=r"the data has 2 error\(s\)"):
        checked_annotations(config, log=lambda line: None)
    (paths.features / "synthetic_002.npy").write_bytes(val_features)
    said = []
    assert checked_annotations(config, log=said.append)[1] == {"synthetic_003"}
    assert [line for line in said if line.startswith("dropping")] == [
        f"dropping video synthetic_003: {paths.features / 'synthetic_003.npy'}: cannot read features (truncated or "
        "corrupt file?): not a .npy or .npz file"]


def test_one_kind_of_warning_in_many_videos_is_one_line_of_training_with_the_count(tmp_path):
    # training logged every warning of its data check on a line of its own: a gesture labelled twice in each of 8000
    # videos was 8000 lines ahead of the first epoch, where `mgrec data check` prints one with the count
    import json

    from mgrec.data.synthetic import make_synthetic_dataset

    paths = make_synthetic_dataset(tmp_path / "data", num_videos=8, num_classes=3, feature_dim=16, length=160,
                                   subsets=("train",) * 6 + ("val", "test"))
    document = json.loads(paths.annotations.read_text(encoding="utf-8"))
    for entry in document["database"].values():
        entry["annotations"].append(dict(entry["annotations"][0]))  # one instance twice in every video
    paths.annotations.write_text(json.dumps(document), encoding="utf-8")
    config = Config()
    config.data.annotations, config.data.features = str(paths.annotations), str(paths.features)
    config.model.num_classes, config.data.feature_dim = 3, 16
    said = []
    checked_annotations(config, log=said.append)
    twice = [line for line in said if "labelled twice" in line or "duplicate" in line]
    assert len(twice) == 1, said
    assert "and the same for 7 other videos" in twice[0] and "8 in all" in twice[0]
