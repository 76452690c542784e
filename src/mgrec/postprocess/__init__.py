"""From model outputs to ranked detections: decoding (`decode`) and class-wise (Soft-)NMS (`nms`).

Pure tensor code on the level-0 feature grid (no seconds, no records), so that training's
validation and offline/online detection share it without importing each other.
"""
