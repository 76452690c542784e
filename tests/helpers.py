"""Helpers shared by the test modules (import as `from tests.helpers import ...`)."""

from __future__ import annotations

from mgrec.config import Config, DataConfig, ModelConfig, PostprocessConfig, TrainConfig
from mgrec.data.demo import DatasetPaths

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


def _classes(paths: DatasetPaths) -> list[str]:
    from mgrec.data.annotations import load_annotations

    return load_annotations(paths.annotations).classes
