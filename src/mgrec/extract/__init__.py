"""Feature extraction: raw videos (or SMG skeleton CSVs) -> one (T, C) feature file per video.

`video` decodes and windows frames, `backbones` turns frames into features, `skeleton` does the
same for Kinect joints, `videomae_convert` turns official VideoMAE V2 checkpoints into
transformers folders, and `run` is the `mgrec extract` job (resumable, shardable, fusing).
"""
