"""Detection with a trained run: offline on whole files, online on a live stream."""
