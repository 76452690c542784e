"""Datasets in, network inputs out: annotations, feature files and their checks, training crops.

- `annotations`: ActivityNet-style JSON (and SMG's CSVs through `mgrec.smg_csv`) -> `AnnotationSet`;
- `features`: feature files and their sidecars (the recipe that made them), checked on reading;
- `videos`: raw videos decoded with PyAV, and a video as clips on the feature grid (end to end);
- `streams`: several input streams of one video joined on one feature grid;
- `normalize`: each video's features standardised by their own statistics (`data.normalize: video`);
- `augment`: the paper's category-frequency augmentation (Eq. 1) and class histograms;
- `balance`: class balancing of training crops (Eq. 1, repeat factor, adaptive);
- `transforms`: crop transforms (time scale, instance paste, feature noise, channel dropout);
- `datasets`: videos on the feature grid, training crops and batches;
- `check`: every problem of a dataset at its place (`mgrec data check`), and suggested settings;
- `demo`: the real-motion demo benchmark, built on the user's machine;
- `synthetic`: a tiny SMG-shaped dataset for the tests.
"""
