"""Training: label assignment (`assign`), losses (`losses`), the loop and checkpoints."""
