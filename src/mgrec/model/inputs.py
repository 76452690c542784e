"""The model's input: one whole video's (T, C) features -> padded (1, C, T_pad) tensor and mask.

The detector needs T divisible by its largest stride (`Detector.max_div_factor`); padding sits at
the end and is masked (the mask contract of `mgrec.model.masking`).
"""

from __future__ import annotations

import numpy as np
import torch


def pad_video(
    features: np.ndarray, multiple: int, padded_length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One whole video (T, C) -> (1, C, T_pad) features and (1, 1, T_pad) mask.

    T_pad is the smallest multiple of `multiple` >= T, or `padded_length` when given (a fixed input
    size, as a compiled network wants; it must be a multiple >= T).
    """
    length = features.shape[0]
    padded = -(-length // multiple) * multiple
    if padded_length is not None:
        if padded_length % multiple != 0 or padded_length < length:
            raise ValueError(f"padded_length {padded_length} must be a multiple of {multiple} and >= {length} steps")
        padded = padded_length
    x = torch.zeros(1, features.shape[1], padded, dtype=torch.float32)  # whatever torch's default dtype is
    x[0, :, :length] = torch.from_numpy(np.ascontiguousarray(features.T))
    mask = torch.zeros(1, 1, padded, dtype=torch.bool)
    mask[0, 0, :length] = True
    return x, mask
