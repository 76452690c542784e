"""Scoring detections against ground truth.

- `matching`: tIoU, the two threshold comparisons (MiGA's >, ActivityNet's >=) with one rounding
  tolerance, and greedy one-to-one matching: every module below builds on these;
- `f1`: the hard set, the MiGA starter-kit F1 and the one-to-one F1, score-threshold tuning;
- `average_precision`: ActivityNet-style AP / mAP and the interpolated AP;
- `analysis`: the DETAD error analysis (false negatives, false positives, sensitivity);
- `scoring`: all scores of one prediction set as the `mgrec score` dict, and its table;
- `predictions`: reading and writing prediction files (results JSON, SMG-style CSV folders);
- `subtitles`: detections as SubRip / WebVTT subtitles, to watch over the video.

Records in, numbers out: nothing here imports `mgrec.data` or the network.
"""
