"""Detection with a trained run: offline on whole files, online on a live stream.

- `offline`: `OfflineDetector`, a run loaded for detection (one run, an ensemble, or a fused ensemble);
- `online`: `OnlineDetector`, each gesture reported once, when final, from a growing stream;
- `stream`: feature files, folders and decoded videos streamed through it (`mgrec stream`), as JSON lines or SMG
  label files;
- `detect`: `mgrec detect` on feature files (the CLI extracts videos first), into any output format;
- `evaluate_run`: a run's detections on a split of its annotations, and their scores (`mgrec evaluate`);
- `fused_ensemble`: `mgrec ensemble --fusion detections`, runs of different networks or inputs fused at the detections;
- `agreement`: how far two detection runs of the same videos agree (bf16 against float32).
"""
