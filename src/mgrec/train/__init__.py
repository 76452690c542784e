"""Training a run.

- `data`: a config's splits loaded into `VideoSample`s, bad data refused or dropped, crop anchors;
- `assign`: the points of the pyramid and the ground truth each point regresses (label assignment);
- `losses`: focal classification and DIoU regression losses;
- `step`: one optimisation step (forward, targets, loss, backward, optimiser, EMA);
- `loop`: `mgrec train`, set-up, epochs, validation, checkpoints and --resume;
- `pseudo`: pseudo-labels of unlabelled videos, from a teacher run;
- `ensemble`: `mgrec ensemble` of runs with one pyramid, and `train --seeds`.
"""
