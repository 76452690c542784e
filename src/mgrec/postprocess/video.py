"""One whole video through the network and post-processing to a ranked list of `Detection`s.

Used by training's validation and by `mgrec.infer`; it lives here so that neither imports the other.
The network is fully convolutional (plus local attention), so a video longer than the training
length is processed in one pass: no windows, hence no seams at window borders.
"""

from __future__ import annotations

import numpy as np
import torch

from mgrec.config import PostprocessConfig
from mgrec.model.inputs import pad_video
from mgrec.postprocess.decode import decode_video
from mgrec.postprocess.nms import nms
from mgrec.records import Detection
from mgrec.timeline import FeatureGrid


@torch.inference_mode()
def detect_video(
    model: torch.nn.Module,
    features: np.ndarray,
    grid: FeatureGrid,
    post: PostprocessConfig,
    classes: list[str],
    video_id: str,
    padded_length: int | None = None,
) -> list[Detection]:
    """Ranked detections (descending score) for one video's features (T, C), clipped to the video.

    `padded_length`: run the network on this fixed length (masked padding changes no result), as
    a network compiled for one input size wants; default: T rounded up to the largest stride.
    """
    device = next(model.parameters()).device
    x, mask = pad_video(features, model.max_div_factor, padded_length)
    out = model(x.to(device), mask.to(device))
    raw = decode_video(
        [c[0].float() for c in out.cls_logits],
        [o[0].float() for o in out.offsets],
        [m[0] for m in out.masks],
        out.strides,
        post,
    )
    segments, scores, labels = nms(raw.segments, raw.scores, raw.labels, post)
    duration = grid.covered_seconds(features.shape[0])
    return to_detections(
        segments.cpu().numpy(), scores.cpu().numpy(), labels.cpu().numpy(), grid, classes, video_id, duration
    )


def to_detections(
    segments: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    grid: FeatureGrid,
    classes: list[str],
    video_id: str,
    duration: float | None = None,
) -> list[Detection]:
    """Grid-unit segments -> `Detection`s in seconds and frames, clipped to the video, by descending score.

    All arithmetic is done on whole arrays first; the loop only builds the records (thousands per video).
    """
    seconds = grid.index_to_seconds(segments.astype(np.float64)) if len(segments) else np.zeros((0, 2))
    seconds = np.clip(seconds, 0.0, duration if duration is not None else np.inf)
    frames = grid.seconds_to_frame(seconds) if len(seconds) else np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    order = order[~(seconds[order, 1] <= seconds[order, 0])]  # drop those clipped away entirely (outside the video)
    labels = labels[order].astype(np.int64)
    columns = (seconds[order].tolist(), labels.tolist(), scores[order].tolist(), frames[order].tolist())
    return [
        Detection(video_id, start, end, label, classes[label], score, start_frame, end_frame)
        for (start, end), label, score, (start_frame, end_frame) in zip(*columns)
    ]
