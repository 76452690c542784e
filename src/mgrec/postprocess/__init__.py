"""From network outputs to ranked detections, shared by training's validation and by detection.

- `decode`: per-level outputs -> candidate segments on the level-0 feature grid (pure tensor code);
- `nms`: class-wise hard NMS / Gaussian Soft-NMS, the fast form;
- `reference`: the plain loops the fast forms equal (`decode_reference`, per point; `nms_reference`,
  the textbook greedy loop, bit for bit);
- `video`: one video's features through the network, decoding and NMS to `Detection` records in
  seconds and frames (`detect_video`);
- `detection_fusion`: several detectors' ranked lists of one video fused at the detection level;
- `second_opinion`: a whole-gesture classifier that rescores each detection (opt-in).

It lives below `train` and `infer` so that neither imports the other. The hard set used for F1
(score >= a threshold) is `mgrec.evaluate.f1.hard_set`.
"""
